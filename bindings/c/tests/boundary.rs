//! The FFI boundary seen from Rust: a panic inside the library (here, a call
//! made from inside a Tokio runtime, where blocking on another runtime
//! panics) comes back as `DBX_ERR_PANIC` with a message, never an unwind
//! into the caller; and the thread's last error is per thread.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char};

use dbx_c::ffi::{dbx_close, dbx_connect, dbx_db, dbx_last_error};
use dbx_c::{DBX_ERR_INVALID_CONFIG, DBX_ERR_PANIC, DBX_OK};

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: buf is writable for its length; len_out may be NULL.
    let rc = unsafe { dbx_last_error(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) };
    assert_eq!(rc, DBX_OK);
    // SAFETY: dbx_last_error NUL-terminated it within the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_inside_becomes_a_status_code() {
    let mut db: *mut dbx_db = std::ptr::null_mut();
    // SAFETY: a NUL-terminated literal and a writable out-pointer.
    let rc = unsafe { dbx_connect(c"sqlite::memory:".as_ptr(), &mut db) };
    assert_eq!(rc, DBX_ERR_PANIC);
    assert!(db.is_null());
    let msg = last_error();
    assert!(msg.contains("internal error in libdbx"), "{msg}");
}

#[test]
fn the_last_error_is_per_thread() {
    let mut db: *mut dbx_db = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { dbx_connect(c"nosuchscheme://x".as_ptr(), &mut db) };
    assert_eq!(rc, DBX_ERR_INVALID_CONFIG);
    assert!(last_error().contains("nosuchscheme"));
    std::thread::spawn(|| {
        assert_eq!(last_error(), "");
        let mut db: *mut dbx_db = std::ptr::null_mut();
        // SAFETY: as above.
        assert_eq!(
            unsafe { dbx_connect(c"sqlite::memory:".as_ptr(), &mut db) },
            DBX_OK
        );
        // SAFETY: db is the live handle just opened, closed once.
        assert_eq!(unsafe { dbx_close(db) }, DBX_OK);
    })
    .join()
    .expect("thread");
    assert!(last_error().contains("nosuchscheme"));
}
