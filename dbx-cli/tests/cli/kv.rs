//! `dbx kv` on Redis, SQLite and PostgreSQL.

use crate::common::*;
use std::path::Path;

/// set/get/ttl/scan/del under `prefix` on `target`.
fn kv_roundtrip(dir: &Path, target: &str, prefix: &str) {
    let kv = |args: &[&str]| {
        let mut all = vec!["kv", target];
        all.extend_from_slice(args);
        run_in(dir, &all)
    };
    let key = |k: &str| format!("{prefix}{k}");

    assert_eq!(kv(&["set", &key("a"), "hello, wörld"]).ok(), "OK\n");
    assert_eq!(kv(&["get", &key("a")]).ok(), "hello, wörld\n");
    assert_eq!(kv(&["ttl", &key("a")]).ok(), "persistent\n");
    // A value that looks like an option, and an injection-looking one.
    kv(&["set", &key("dash"), "--not-an-option"]).ok();
    assert_eq!(kv(&["get", &key("dash")]).ok(), "--not-an-option\n");

    // A TTL: some time left, at most what was set (no timing assertion
    // beyond that bound).
    kv(&["set", &key("t"), "soon", "--ttl", "1h"]).ok();
    let out = kv(&["ttl", &key("t")]).ok().trim().to_owned();
    let secs: f64 = out.strip_suffix('s').unwrap().parse().unwrap();
    assert!(secs > 0.0 && secs <= 3600.0, "{out}");
    let v = run_in(dir, &["--json", "kv", target, "ttl", &key("t")]).json();
    assert_eq!(v["state"], "expires");
    assert!(v["ttl_ms"].as_u64().unwrap() <= 3_600_000);

    // Bytes that are not UTF-8: hex by default (with a note), --hex,
    // --base64, --raw, and base64 in JSON.
    let file = dir.join("bin");
    std::fs::write(&file, [0xff, 0x00, 0x01, b'A']).unwrap();
    kv(&["set", &key("bin"), "--file", file.to_str().unwrap()]).ok();
    let r = kv(&["get", &key("bin")]);
    assert_eq!(r.ok(), "ff000141\n");
    r.stderr_has("not UTF-8");
    assert_eq!(kv(&["get", &key("bin"), "--hex"]).ok(), "ff000141\n");
    assert_eq!(
        kv(&["get", &key("a"), "--hex"]).ok(),
        "68656c6c6f2c2077c3b6726c64\n"
    );
    assert_eq!(kv(&["get", &key("bin"), "--base64"]).ok(), "/wABQQ==\n");
    let raw = dbx_in(dir)
        .args(["kv", target, "get", &key("bin"), "--raw"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    assert_eq!(raw.stdout, [0xff, 0x00, 0x01, b'A']);
    let v = run_in(dir, &["--json", "kv", target, "get", &key("bin")]).json();
    assert_eq!(v["encoding"], "base64");
    assert_eq!(v["value"], "/wABQQ==");
    assert_eq!(v["size"], 4);

    // Scan: sorted, literal prefix, --limit.
    for i in 0..5 {
        kv(&["set", &key(&format!("scan:{i}")), &i.to_string()]).ok();
    }
    kv(&["set", &key("scan_not"), "x"]).ok();
    let out = kv(&["scan", &key("scan:")]).ok().to_owned();
    let expected: Vec<String> = (0..5).map(|i| key(&format!("scan:{i}"))).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        kv(&["scan", &key("scan:"), "--limit", "2"])
            .ok()
            .lines()
            .count(),
        2
    );
    let v = run_in(dir, &["--json", "kv", target, "scan", &key("scan:")]).json();
    assert_eq!(v.as_array().unwrap().len(), 5);
    assert_eq!(v[0], key("scan:0").as_str());
    // `%` and `_` are not wildcards.
    assert_eq!(kv(&["scan", &key("scan%")]).ok(), "");

    // Delete, and missing keys.
    assert_eq!(kv(&["del", &key("a")]).ok(), "deleted\n");
    assert_eq!(
        kv(&["del", &key("a")]).ok(),
        "not found (nothing to delete)\n"
    );
    kv(&["get", &key("a")])
        .code(1)
        .stderr_has(&format!("key `{}` not found", key("a")));
    let r = kv(&["ttl", &key("a")]);
    r.code(1);
    assert_eq!(r.stdout, "missing\n");
    let v = run_in(dir, &["--json", "kv", target, "del", &key("dash")]).json();
    assert_eq!(v["deleted"], true);

    // Invalid input from dbx: an empty key.
    kv(&["get", ""]).code(1).stderr_has("invalid_input");
}

/// Deletes every key under `prefix` when dropped.
struct DeletePrefix {
    target: String,
    prefix: String,
}

impl Drop for DeletePrefix {
    fn drop(&mut self) {
        let dir = std::env::temp_dir();
        let Ok(out) = dbx_in(&dir)
            .args(["kv", &self.target, "scan", &self.prefix])
            .output()
        else {
            return;
        };
        for key in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = dbx_in(&dir).args(["kv", &self.target, "del", key]).output();
        }
    }
}

#[test]
fn redis_kv_commands() {
    let dir = tempfile::tempdir().unwrap();
    let target = redis_url();
    let prefix = format!("{}:", unique("kv"));
    let cleanup = DeletePrefix {
        target: target.clone(),
        prefix: prefix.clone(),
    };
    kv_roundtrip(dir.path(), &target, &prefix);
    drop(cleanup);
    assert_eq!(
        run_in(dir.path(), &["kv", &target, "scan", &prefix]).ok(),
        "",
        "cleaned up"
    );
}

#[test]
fn sqlite_kv_commands() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite:{}", dir.path().join("kv.db").display());
    kv_roundtrip(dir.path(), &target, "k:");
}

#[test]
fn postgres_kv_commands() {
    let dir = tempfile::tempdir().unwrap();
    let target = postgres_url();
    let prefix = format!("{}:", unique("kv"));
    let _cleanup = DeletePrefix {
        target: target.clone(),
        prefix: prefix.clone(),
    };
    kv_roundtrip(dir.path(), &target, &prefix);
}

#[test]
fn set_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite:{}", dir.path().join("kv.db").display());
    let mut cmd = dbx_in(dir.path());
    cmd.write_stdin("from stdin\n");
    run_with(cmd, &["kv", &target, "set", "k", "--file", "-"]).ok();
    assert_eq!(
        run_in(dir.path(), &["kv", &target, "get", "k"]).ok(),
        "from stdin\n\n"
    );
    run_in(dir.path(), &["kv", &target, "set", "k"])
        .code(2)
        .stderr_has("<VALUE>");
}
