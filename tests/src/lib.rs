//! The cross-backend conformance suite of dbx.
//!
//! Each capability's behaviour is written once, as async functions taking a
//! connected [`Dbx`], and run against every backend that offers it by the
//! [`kv_conformance!`] and [`sql_conformance!`] macros, on both a
//! current-thread and a multi-thread Tokio runtime (the SQLite driver runs
//! blocking work differently on each). Each test uses its own key prefix or
//! table, so runs against shared servers never collide.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

#[cfg(feature = "cache")]
pub mod cache;
pub mod docs;
pub mod failover;
pub mod fault;
pub mod kv;
pub mod kv_model;
pub mod sql;
pub mod vector;

use dbx::{Dbx, Error, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Say something past the test harness's output capture (written to the
/// process's stderr itself), so that it shows even when the test passes:
/// a SKIPPED line, a `[measure]` figure.
pub fn loud(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// A key prefix no other test (or test run) uses.
pub fn prefix(test: &str) -> String {
    format!("dbx-test:{test}:{}:", unique())
}

/// Delete the keys that earlier test runs left behind on a shared server:
/// every `dbx-test:` key whose process (the pid in its prefix) is gone.
/// Keys of runs still in progress are left alone.
pub async fn sweep_stale_test_keys(db: &Dbx) {
    use futures_util::TryStreamExt;
    let kv = db.kv().unwrap();
    let keys: Vec<String> = kv.scan("dbx-test:").try_collect().await.unwrap();
    for key in keys {
        let pid = key
            .split(':')
            .nth(2)
            .and_then(|unique| unique.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let gone = pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if gone {
            kv.delete(&key).await.unwrap();
        }
    }
}

/// A table name no other test (or test run) uses.
pub fn table(test: &str) -> String {
    format!("t_{test}_{}", unique())
}

/// A column type in the backend's dialect, for the portable names
/// `int`, `float`, `text`, `bool`, `bytes`, `json`, `timestamp`, `uuid`, `decimal`.
pub fn ty(db: &Dbx, portable: &str) -> &'static str {
    match (db.backend_name(), portable) {
        (_, "int") => "BIGINT",
        (_, "float") => "DOUBLE PRECISION",
        (_, "text") => "TEXT",
        (_, "bool") => "BOOLEAN",
        ("sqlite", "bytes") => "BLOB",
        (_, "bytes") => "BYTEA",
        ("sqlite", "json") => "JSON",
        (_, "json") => "JSONB",
        ("sqlite", "timestamp") => "TIMESTAMP",
        (_, "timestamp") => "TIMESTAMPTZ",
        (_, "uuid") => "UUID",
        // SQLite's NUMERIC affinity turns long decimals into lossy floats;
        // a declared type containing TEXT keeps them exact.
        ("sqlite", "decimal") => "DECIMAL TEXT",
        (_, "decimal") => "NUMERIC",
        (backend, other) => panic!("no {other} type for {backend}"),
    }
}

/// Whether the backend's text type can hold NUL characters.
pub fn text_allows_nul(db: &Dbx) -> bool {
    db.backend_name() == "sqlite"
}

/// Assert that `r` failed with `kind`, and return the error.
#[track_caller]
pub fn expect_kind<T: std::fmt::Debug>(r: Result<T, Error>, kind: ErrorKind) -> Error {
    match r {
        Err(e) if e.kind() == kind => e,
        Err(e) => panic!("expected a {kind} error, got {e} ({e:?})"),
        Ok(v) => panic!("expected a {kind} error, got Ok({v:?})"),
    }
}

/// What a suite's connect function returns: a database, or `None` when the
/// backend's server is not available (the connect function says so loudly
/// and the tests return without running).
pub trait TestDb {
    /// The database to test, if any.
    fn into_db(self) -> Option<Dbx>;
}

impl TestDb for Dbx {
    fn into_db(self) -> Option<Dbx> {
        Some(self)
    }
}

impl TestDb for Option<Dbx> {
    fn into_db(self) -> Option<Dbx> {
        self
    }
}

/// Generates one `#[tokio::test]` per listed test, on both runtime flavors.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($connect:path, $module:ident, [$($test:ident),* $(,)?]) => {
        mod current_thread {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $test() {
                    let Some(db) = $crate::TestDb::into_db($connect().await) else {
                        return;
                    };
                    $crate::$module::$test(&db).await;
                }
            )*
        }
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(db) = $crate::TestDb::into_db($connect().await) else {
                        return;
                    };
                    $crate::$module::$test(&db).await;
                }
            )*
        }
    };
}

/// A `tracing_subscriber` writer that keeps everything written, for tests
/// that read the spans and events dbx emits.
#[derive(Clone, Default, Debug)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// What was written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
