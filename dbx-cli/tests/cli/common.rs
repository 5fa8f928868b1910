//! Helpers: run the built `dbx` binary in a clean environment, unique names,
//! the servers' URLs, and clean-up guards.

use assert_cmd::Command;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// PostgreSQL (trust auth), from `DBX_TEST_POSTGRES_URL` or the local default.
pub fn postgres_url() -> String {
    env_url(
        "DBX_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

/// Redis, from `DBX_TEST_REDIS_URL` or the local default.
pub fn redis_url() -> String {
    env_url("DBX_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// The MongoDB-wire server, from `DBX_TEST_MONGO_URL` or SecantusDB's
/// default port (`scripts/start-mongo.sh` starts it).
pub fn mongo_url() -> String {
    env_url("DBX_TEST_MONGO_URL", "mongodb://127.0.0.1:27018")
}

/// Qdrant, only when `DBX_TEST_QDRANT_URL` is set (`scripts/start-qdrant.sh`).
pub fn qdrant_url() -> Option<String> {
    std::env::var("DBX_TEST_QDRANT_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A name no other test or run uses: `dbxcli_<pid>_<n>_<what>`.
pub fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "dbxcli_{}_{}_{nanos}_{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `dbx` binary, run in `dir` with no colour, no config from the
/// environment and no dbx.toml unless the test writes one.
pub fn dbx_in(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbx"));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.to_ascii_uppercase().starts_with("DBX_DATABASES__") || k == "DBX_CONFIG" {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("NO_COLOR");
    // A bug must show as a failure, not be hidden by a backtrace setting.
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

/// What a run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Assert exit 0 and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success:\n{self:#?}");
        &self.stdout
    }

    /// Assert this exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}:\n{self:#?}");
        self
    }

    /// Assert stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{self:#?}"
        );
        self
    }

    /// Assert stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{self:#?}"
        );
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self:#?}"))
    }
}

/// Run `dbx ARGS` in `dir`, with `stdin` if given. Every run is checked to
/// have ended without a panic or a backtrace.
#[track_caller]
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_with(dbx_in(dir), args)
}

/// Run a prepared command.
#[track_caller]
pub fn run_with(mut cmd: Command, args: &[&str]) -> Run {
    let out = cmd.args(args).output().expect("run dbx");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for bad in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "internal error",
    ] {
        assert!(!run.stderr.contains(bad), "dbx {args:?} crashed:\n{run:#?}");
    }
    assert!(
        run.code == 0 || run.code == 1 || run.code == 2,
        "dbx {args:?}: unexpected exit:\n{run:#?}"
    );
    run
}

/// Run `dbx ARGS` in a fresh temporary directory.
#[track_caller]
pub fn run(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    run_in(dir.path(), args)
}

/// Runs `dbx ARGS` when dropped (clean-up that happens even when an
/// assertion fails first).
pub struct Cleanup(pub Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = std::env::temp_dir();
        for args in &self.0 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = dbx_in(&dir).args(&args).output();
        }
    }
}

/// Run a future to completion (for seeding data through the dbx library).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Say loudly that a test was skipped: written to the process's stderr
/// itself, past the harness's capture, so it shows when the test passes.
pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("SKIPPED: {what}\n").as_bytes());
}
