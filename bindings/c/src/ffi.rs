//! The `extern "C"` functions: the FFI boundary, and the only module where
//! `unsafe` is allowed. Every function checks its pointers, runs inside
//! `guard` (no panic crosses into C) and returns a status code.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int};
use std::time::Duration;

use dbx::Dbx;

use crate::{
    DBX_ERR_BUFFER_TOO_SMALL, DBX_ERR_INVALID_INPUT, DBX_ERR_INVALID_UTF8, DBX_ERR_NULL_ARGUMENT,
    DBX_ERR_PANIC, DBX_OK, Failure, Outcome, block_on, guard, last_error, params_from_json,
    rows_to_json, status_name,
};

/// An open database: create with `dbx_connect`, release with `dbx_close`.
/// Opaque to C. One handle may be used from several threads at once.
#[allow(non_camel_case_types)]
pub struct dbx_db {
    db: Dbx,
}

impl std::fmt::Debug for dbx_db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.db, f)
    }
}

/// A NUL-terminated UTF-8 argument, or the status naming what is wrong.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL (checked above); the caller promises a NUL-terminated
    // string valid for 'a (the documented contract of every entry point).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map_err(|e| {
        Failure::new(
            DBX_ERR_INVALID_UTF8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// The handle behind a `dbx_db*` argument.
///
/// # Safety
/// `db` is NULL or a handle from `dbx_connect` not yet passed to `dbx_close`.
unsafe fn handle<'a>(db: *const dbx_db) -> Outcome<&'a Dbx> {
    // SAFETY: the caller promises db is NULL or a live handle from dbx_connect
    // (a Box leaked by it, freed only by dbx_close); as_ref handles NULL.
    unsafe { db.as_ref() }
        .map(|h| &h.db)
        .ok_or_else(|| Failure::null("db"))
}

/// Store `value` through an optional out-pointer.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: not NULL (checked); the caller promises it is writable.
        unsafe { out.write(value) };
    }
}

/// Connect to the database a URL names (`sqlite::memory:`,
/// `redis://127.0.0.1:6379`, `postgres://user@host/db?connect_timeout=2s`...)
/// and store a new handle in `*out` (set to NULL on failure).
///
/// # Safety
/// `url` is a NUL-terminated string; `out` is valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_connect(url: *const c_char, out: *mut *mut dbx_db) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: out is not NULL and the caller promises it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller promises url is NULL or NUL-terminated.
        let url = unsafe { text(url, "url") }?;
        let db = block_on(Dbx::connect(url))??;
        let handle = Box::into_raw(Box::new(dbx_db { db }));
        // SAFETY: as above; the pointer is now owned by the caller until dbx_close.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Close a handle: new calls fail, calls in flight get up to the URL's
/// `close_timeout` (default 10s) to finish, then the connections close and
/// the handle is freed. NULL is a no-op. The handle must not be used (by
/// any thread) after this call.
///
/// # Safety
/// `db` is NULL or a handle from `dbx_connect` not yet closed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_close(db: *mut dbx_db) -> c_int {
    guard(|| {
        if db.is_null() {
            return Ok(());
        }
        // SAFETY: the caller promises db came from dbx_connect (Box::into_raw)
        // and is closed once, so we own the box again.
        let handle = unsafe { Box::from_raw(db) };
        block_on(handle.db.close())?;
        Ok(())
    })
}

/// The backend name of a handle (`"sqlite"`, `"redis"`, `"postgres"`) as a
/// static string, or NULL when `db` is NULL.
///
/// # Safety
/// `db` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_backend_name(db: *const dbx_db) -> *const c_char {
    // SAFETY: the caller promises db is NULL or a live handle.
    match unsafe { handle(db) } {
        Ok(db) => match db.backend_name() {
            "sqlite" => c"sqlite".as_ptr(),
            "redis" => c"redis".as_ptr(),
            "postgres" => c"postgres".as_ptr(),
            _ => c"other".as_ptr(),
        },
        Err(_) => std::ptr::null(),
    }
}

/// One real round trip to the database; its latency in microseconds goes
/// to `*latency_us_out` (may be NULL).
///
/// # Safety
/// `db` is a live handle; `latency_us_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_health(db: *const dbx_db, latency_us_out: *mut u64) -> c_int {
    guard(|| {
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        let health = block_on(db.health())??;
        let us = u64::try_from(health.latency.as_micros()).unwrap_or(u64::MAX);
        // SAFETY: the caller promises latency_us_out is NULL or writable.
        unsafe { put(latency_us_out, us) };
        Ok(())
    })
}

/// Read a key into the caller's buffer.
///
/// `*found_out` (required) is 1 when the key exists, 0 when it does not
/// (then `*len_out` is 0 and the call still returns `DBX_OK`). When it
/// exists, `*len_out` (required) is the value's length; if `cap` is smaller,
/// nothing is copied and the call returns `DBX_ERR_BUFFER_TOO_SMALL`: call
/// again with a buffer of at least `*len_out` bytes (`buf` may be NULL when
/// `cap` is 0, to ask for the length). Values are binary and not
/// NUL-terminated.
///
/// # Safety
/// `db` is a live handle; `key` is NUL-terminated; `buf` is NULL or
/// writable for `cap` bytes; `len_out` and `found_out` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_kv_get(
    db: *const dbx_db,
    key: *const c_char,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    found_out: *mut c_int,
) -> c_int {
    guard(|| {
        if len_out.is_null() {
            return Err(Failure::null("len_out"));
        }
        if found_out.is_null() {
            return Err(Failure::null("found_out"));
        }
        // SAFETY: both checked not NULL; the caller promises they are writable.
        unsafe {
            len_out.write(0);
            found_out.write(0);
        }
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises key is NULL or NUL-terminated.
        let key = unsafe { text(key, "key") }?;
        if buf.is_null() && cap > 0 {
            return Err(Failure::null("buf (with cap > 0)"));
        }
        let value = block_on(async { db.kv()?.get(key).await })??;
        let Some(value) = value else {
            return Ok(());
        };
        // SAFETY: as above.
        unsafe {
            found_out.write(1);
            len_out.write(value.len());
        }
        if value.len() > cap {
            return Err(Failure::new(
                DBX_ERR_BUFFER_TOO_SMALL,
                format!(
                    "the value of {key:?} is {} bytes; the buffer holds {cap}",
                    value.len()
                ),
            ));
        }
        if !value.is_empty() {
            // SAFETY: buf is not NULL here (cap >= len > 0 and NULL with cap > 0
            // was rejected), the caller promises cap writable bytes, and
            // len <= cap; a Vec never overlaps caller memory.
            unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), buf, value.len()) };
        }
        Ok(())
    })
}

/// Read a key into memory the library allocates (one round trip, any size).
///
/// `*found_out` (required) is 1 when the key exists, else 0. When it
/// exists, `*value_out` (required) points to `*len_out` (required) bytes
/// to be released with `dbx_free_bytes(*value_out, *len_out)`; otherwise
/// (and on failure) `*value_out` is NULL and `*len_out` 0. An empty value
/// is a non-NULL pointer with length 0 (still freed with `dbx_free_bytes`).
///
/// # Safety
/// `db` is a live handle; `key` is NUL-terminated; `value_out`, `len_out`
/// and `found_out` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_kv_get_alloc(
    db: *const dbx_db,
    key: *const c_char,
    value_out: *mut *mut u8,
    len_out: *mut usize,
    found_out: *mut c_int,
) -> c_int {
    guard(|| {
        if value_out.is_null() {
            return Err(Failure::null("value_out"));
        }
        if len_out.is_null() {
            return Err(Failure::null("len_out"));
        }
        if found_out.is_null() {
            return Err(Failure::null("found_out"));
        }
        // SAFETY: all three checked not NULL; the caller promises they are writable.
        unsafe {
            value_out.write(std::ptr::null_mut());
            len_out.write(0);
            found_out.write(0);
        }
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises key is NULL or NUL-terminated.
        let key = unsafe { text(key, "key") }?;
        let Some(value) = block_on(async { db.kv()?.get(key).await })?? else {
            return Ok(());
        };
        let len = value.len();
        // A boxed slice: exactly `len` bytes, so dbx_free_bytes can rebuild it.
        let ptr = Box::into_raw(value.into_boxed_slice()).cast::<u8>();
        // SAFETY: as above; ownership of ptr passes to the caller (dbx_free_bytes).
        unsafe {
            value_out.write(ptr);
            len_out.write(len);
            found_out.write(1);
        }
        Ok(())
    })
}

/// Release bytes this library returned (`dbx_kv_get_alloc`), with the
/// length it returned alongside. NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or a pointer from `dbx_kv_get_alloc` not yet freed, and
/// `len` is the length returned with it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_free_bytes(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        let slice = std::ptr::slice_from_raw_parts_mut(ptr, len);
        // SAFETY: the caller promises ptr and len came from Box::into_raw of
        // a boxed [u8] of that length in dbx_kv_get_alloc, freed once.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// Set a key to `value_len` bytes at `value` (binary-safe; `value` may be
/// NULL when `value_len` is 0), expiring after `ttl_ms` milliseconds
/// (0: no expiry).
///
/// # Safety
/// `db` is a live handle; `key` is NUL-terminated; `value` is readable for
/// `value_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_kv_set(
    db: *const dbx_db,
    key: *const c_char,
    value: *const u8,
    value_len: usize,
    ttl_ms: u64,
) -> c_int {
    guard(|| {
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises key is NULL or NUL-terminated.
        let key = unsafe { text(key, "key") }?;
        let bytes: &[u8] = if value_len == 0 {
            &[]
        } else if value.is_null() {
            return Err(Failure::null("value (with value_len > 0)"));
        } else {
            // SAFETY: not NULL; the caller promises value_len readable bytes
            // that stay unchanged during the call.
            unsafe { std::slice::from_raw_parts(value, value_len) }
        };
        let ttl = (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms));
        block_on(async { db.kv()?.set(key, bytes, ttl).await })??;
        Ok(())
    })
}

/// Delete a key; `*deleted_out` (may be NULL) is 1 if it existed, else 0.
///
/// # Safety
/// `db` is a live handle; `key` is NUL-terminated; `deleted_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_kv_delete(
    db: *const dbx_db,
    key: *const c_char,
    deleted_out: *mut c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises key is NULL or NUL-terminated.
        let key = unsafe { text(key, "key") }?;
        let existed = block_on(async { db.kv()?.delete(key).await })??;
        // SAFETY: the caller promises deleted_out is NULL or writable.
        unsafe { put(deleted_out, c_int::from(existed)) };
        Ok(())
    })
}

/// Add `delta` to the integer stored at a key (a missing key counts as 0)
/// and store the new value in `*value_out` (required).
///
/// # Safety
/// `db` is a live handle; `key` is NUL-terminated; `value_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_kv_incr(
    db: *const dbx_db,
    key: *const c_char,
    delta: i64,
    value_out: *mut i64,
) -> c_int {
    guard(|| {
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises key is NULL or NUL-terminated.
        let key = unsafe { text(key, "key") }?;
        if value_out.is_null() {
            return Err(Failure::null("value_out"));
        }
        let value = block_on(async { db.kv()?.incr(key, delta).await })??;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { value_out.write(value) };
        Ok(())
    })
}

/// The parameters argument: NULL (none) or JSON text.
///
/// # Safety
/// `params_json` is NULL or NUL-terminated.
unsafe fn params(params_json: *const c_char) -> Outcome<Vec<dbx::Value>> {
    let text = if params_json.is_null() {
        None
    } else {
        // SAFETY: not NULL; the caller promises a NUL-terminated string.
        Some(unsafe { text(params_json, "params_json") }?)
    };
    params_from_json(text).map_err(|e| Failure::new(DBX_ERR_INVALID_INPUT, e))
}

/// Run a statement that returns no rows, with parameters bound as `$1`,
/// `$2`... from `params_json` (a JSON array, or NULL for none); the number
/// of rows it changed goes to `*affected_out` (may be NULL).
///
/// # Safety
/// `db` is a live handle; `sql` and `params_json` (if not NULL) are
/// NUL-terminated; `affected_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_sql_execute(
    db: *const dbx_db,
    sql: *const c_char,
    params_json: *const c_char,
    affected_out: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises sql is NULL or NUL-terminated.
        let sql = unsafe { text(sql, "sql") }?;
        // SAFETY: the caller promises params_json is NULL or NUL-terminated.
        let params = unsafe { params(params_json) }?;
        let n = block_on(async { db.sql()?.execute(sql, &params).await })??;
        // SAFETY: the caller promises affected_out is NULL or writable.
        unsafe { put(affected_out, n) };
        Ok(())
    })
}

/// Run a query with parameters bound from `params_json` (a JSON array, or
/// NULL) and store its rows in `*json_out` (required) as a new
/// NUL-terminated string `{"columns": [...], "rows": [[...], ...]}`, to be
/// released with `dbx_free_string`. `*json_out` is NULL on failure.
///
/// # Safety
/// `db` is a live handle; `sql` and `params_json` (if not NULL) are
/// NUL-terminated; `json_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_sql_query(
    db: *const dbx_db,
    sql: *const c_char,
    params_json: *const c_char,
    json_out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        if json_out.is_null() {
            return Err(Failure::null("json_out"));
        }
        // SAFETY: not NULL; the caller promises it is writable.
        unsafe { json_out.write(std::ptr::null_mut()) };
        // SAFETY: the caller promises db is NULL or a live handle.
        let db = unsafe { handle(db) }?;
        // SAFETY: the caller promises sql is NULL or NUL-terminated.
        let sql = unsafe { text(sql, "sql") }?;
        // SAFETY: the caller promises params_json is NULL or NUL-terminated.
        let params = unsafe { params(params_json) }?;
        let rows = block_on(async { db.sql()?.query(sql, &params).await })??;
        // serde_json escapes U+0000, so the text has no interior NUL.
        let text = CString::new(rows_to_json(&rows))
            .map_err(|e| Failure::new(DBX_ERR_PANIC, format!("row JSON has a NUL: {e}")))?;
        // SAFETY: as above; ownership passes to the caller (dbx_free_string).
        unsafe { json_out.write(text.into_raw()) };
        Ok(())
    })
}

/// Release a string this library returned (`dbx_sql_query`). NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from this library not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the caller promises s came from CString::into_raw in this
        // library and is freed once. Dropping a CString cannot panic.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Copy the calling thread's last error message (empty after a successful
/// call) into `buf` as a NUL-terminated string. `*len_out` (may be NULL) is
/// the message length without the NUL. When `cap` is too small (`cap <
/// len + 1`) the message is cut to fit (still NUL-terminated, if `cap > 0`)
/// and `DBX_ERR_BUFFER_TOO_SMALL` is returned. Does not change the last error.
///
/// # Safety
/// `buf` is NULL or writable for `cap` bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbx_last_error(
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
) -> c_int {
    let copied = std::panic::catch_unwind(|| {
        let message = last_error();
        let bytes = message.as_bytes();
        // SAFETY: the caller promises len_out is NULL or writable.
        unsafe { put(len_out, bytes.len()) };
        if cap == 0 {
            // Not even room for the NUL.
            return DBX_ERR_BUFFER_TOO_SMALL;
        }
        if buf.is_null() {
            return DBX_ERR_NULL_ARGUMENT;
        }
        let n = bytes.len().min(cap - 1);
        // SAFETY: buf is not NULL and writable for cap bytes (caller's
        // promise); n + 1 <= cap; a String never overlaps caller memory.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
        if n < bytes.len() {
            DBX_ERR_BUFFER_TOO_SMALL
        } else {
            DBX_OK
        }
    });
    copied.unwrap_or(DBX_ERR_PANIC)
}

/// The stable name of a status code (`"ok"`, `"timeout"`...) as a static
/// NUL-terminated string; `"unknown"` for any other number. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn dbx_status_name(status: c_int) -> *const c_char {
    status_name(status).as_ptr()
}
