//! Help, completions, usage errors, health, stats, and dbx.toml names.

use crate::common::*;
use predicates::prelude::*;
use predicates::str::{contains, is_empty};

/// `--help` of every command and subcommand prints its own text and exits 0.
#[test]
fn help_works_for_every_subcommand() {
    let cases: &[(&[&str], &str)] = &[
        (&["--help"], "Talk to any dbx database"),
        (&["health", "--help"], "Check that databases answer"),
        (&["query", "--help"], "Parameters are always bound"),
        (&["kv", "--help"], "Key-value commands"),
        (&["kv", "t", "get", "--help"], "Print a key's value"),
        (&["kv", "t", "set", "--help"], "Time to live"),
        (&["kv", "t", "del", "--help"], "Delete a key"),
        (&["kv", "t", "scan", "--help"], "start with PREFIX"),
        (&["kv", "t", "ttl", "--help"], "time to live"),
        (&["docs", "--help"], "Document commands"),
        (&["docs", "t", "find", "--help"], "MongoDB query document"),
        (&["vectors", "--help"], "Vector commands"),
        (&["vectors", "t", "search", "--help"], "The query vector"),
        (&["vectors", "t", "list", "--help"], "List the collections"),
        (&["vectors", "t", "info", "--help"], "dimension"),
        (&["stats", "--help"], "statistics"),
        (&["completions", "--help"], "completion script"),
        (&["help", "query"], "Parameters are always bound"),
    ];
    for (args, needle) in cases {
        let r = run(args);
        r.code(0).stdout_has(needle).stdout_has("Usage: dbx");
    }
    run(&["--version"]).code(0).stdout_has("dbx ");
}

#[test]
fn completions_produce_a_script_for_each_shell() {
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef dbx"),
        ("fish", "complete -c dbx"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        dbx_in(dir.path())
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(
                contains(needle)
                    .and(contains("health"))
                    .and(contains("vectors")),
            )
            .stderr(is_empty());
    }
    run(&["completions", "tcsh"]).code(2);
}

#[test]
fn usage_errors_exit_2() {
    run(&["frobnicate"]).code(2).stderr_has("error:");
    run(&["query", "sqlite::memory:"])
        .code(2)
        .stderr_has("<SQL>");
    run(&["kv", "sqlite::memory:", "set", "k", "v", "--ttl", "soon"])
        .code(2)
        .stderr_has("not a duration");
    run(&["--timeout", "0s", "health", "sqlite::memory:"])
        .code(2)
        .stderr_has("above zero");
    run(&["docs", "sqlite::memory:", "find", "c", "{not json"])
        .code(2)
        .stderr_has("invalid JSON");
    run(&[
        "vectors",
        "sqlite::memory:",
        "search",
        "c",
        "--vector",
        "[1, \"a\"]",
    ])
    .code(2)
    .stderr_has("component 1");
    run(&["health", "nope://x"])
        .code(2)
        .stderr_has("unknown scheme");
    run(&[
        "query",
        "sqlite::memory:",
        "SELECT $1",
        "@/nonexistent/params.txt",
    ])
    .code(2)
    .stderr_has("cannot read parameter file");
}

#[test]
fn health_of_healthy_databases_exits_0() {
    let (pg, redis) = (postgres_url(), redis_url());
    let r = run(&["health", "sqlite::memory:", &redis, &pg]);
    let out = r.ok();
    for needle in [
        "TARGET",
        "LATENCY",
        "POOL",
        "BREAKER",
        "sqlite",
        "redis",
        "postgresql",
        "closed",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    assert_eq!(out.matches(" ok ").count(), 3, "{out}");
    assert!(r.stderr.is_empty(), "{r:?}");

    let r = run(&["--json", "health", "sqlite::memory:", &redis]);
    let v = r.json();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["ok"], true, "{item}");
        assert!(item["latency_ms"].as_f64().unwrap() >= 0.0, "{item}");
        assert_eq!(item["breaker"], "closed");
        assert!(item["pool"]["max_size"].as_u64().unwrap() > 0, "{item}");
        assert!(item["nodes"].is_array());
    }
    assert_eq!(items[1]["backend"], "redis");
}

#[test]
fn health_of_an_unreachable_database_exits_1_with_the_reason() {
    let r = run(&["--timeout", "1s", "health", "redis://127.0.0.1:1"]);
    r.code(1)
        .stdout_has("FAILED")
        .stderr_has("error: redis://127.0.0.1:1: ")
        .stderr_has("127.0.0.1:1")
        .stderr_has("connect");

    // One bad database fails the run; the good one is still reported.
    let r = run(&[
        "--json",
        "--timeout",
        "1s",
        "health",
        "sqlite::memory:",
        "redis://127.0.0.1:1",
    ]);
    r.code(1);
    let v = r.json();
    assert_eq!(v[0]["ok"], true, "{v}");
    assert_eq!(v[1]["ok"], false, "{v}");
    assert_eq!(v[1]["error"]["kind"], "connect", "{v}");
    assert!(
        v[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{v}"
    );
}

#[test]
fn stats_after_one_round_trip() {
    let r = run(&["stats", &redis_url()]);
    let out = r.ok();
    for needle in [
        "backend",
        "redis",
        "health",
        "ok (",
        "operations",
        "errors",
        "retries",
        "breaker",
        "pool",
        "latency",
        "p50",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    let v = run(&["--json", "stats", "sqlite::memory:"]).json();
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(v["health"]["ok"], true);
    assert!(v["operations"].is_u64());
    assert!(v["errors_by_kind"].is_object());
    assert!(v["latency_ms"].is_object());
    assert_eq!(v["breaker"], "closed");

    run(&["--timeout", "1s", "stats", "redis://127.0.0.1:1"])
        .code(1)
        .stderr_has("error:");
}

const CONFIG: &str = r#"
[databases.local]
url = "sqlite:local.db"

[databases.memory]
url = "sqlite::memory:"
"#;

#[test]
fn names_from_dbx_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dbx.toml"),
        format!(
            "{CONFIG}\n[databases.cache]\nurl = \"{}\"\n[databases.cache.retry]\nmax_attempts = 2\n",
            redis_url()
        ),
    )
    .unwrap();

    // Every database of the file when no TARGET is given, sorted by name.
    let out = run_in(dir.path(), &["health"]).ok().to_owned();
    let names: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["cache", "local", "memory"], "{out}");

    run_in(
        dir.path(),
        &["query", "local", "CREATE TABLE t (a INTEGER)"],
    )
    .ok();
    run_in(
        dir.path(),
        &["query", "local", "INSERT INTO t VALUES ($1)", "7"],
    )
    .ok();
    let out = run_in(dir.path(), &["query", "local", "SELECT a FROM t"])
        .ok()
        .to_owned();
    assert!(out.contains('7'), "{out}");
    assert!(
        dir.path().join("local.db").exists(),
        "a relative sqlite path is relative to the working directory"
    );

    // Unknown names list the known ones; exit 2, nothing attempted.
    run_in(dir.path(), &["query", "nope", "SELECT 1"])
        .code(2)
        .stderr_has("unknown database `nope`")
        .stderr_has("cache, local, memory");
    run_in(dir.path(), &["health", "local", "nope"])
        .code(2)
        .stderr_has("cache, local, memory");

    // --config from elsewhere.
    let other = tempfile::tempdir().unwrap();
    let path = dir.path().join("dbx.toml");
    run_in(
        other.path(),
        &["--config", path.to_str().unwrap(), "health", "memory"],
    )
    .ok();
    run_in(other.path(), &["query", "memory", "SELECT 1"])
        .code(2)
        .stderr_has("no dbx.toml here");
    run_in(other.path(), &["--config", "missing.toml", "health"])
        .code(2)
        .stderr_has("cannot read missing.toml");
}

#[test]
fn environment_overrides_and_defines_databases() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dbx.toml"), CONFIG).unwrap();
    let mut cmd = dbx_in(dir.path());
    cmd.env("DBX_DATABASES__EXTRA__URL", "sqlite::memory:");
    let r = run_with(cmd, &["query", "extra", "SELECT 40 + 2 AS answer"]);
    assert!(r.ok().contains("42"), "{r:?}");

    // Without a file, the environment alone can name databases.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = dbx_in(empty.path());
    cmd.env("DBX_DATABASES__ONLY__URL", "sqlite::memory:");
    run_with(cmd, &["health"]).ok();
}

#[test]
fn invalid_config_files_are_usage_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dbx.toml"),
        "[databases.a]\nurl = \"sqlite::memory:\"\npool_max_sise = 3\n",
    )
    .unwrap();
    run_in(dir.path(), &["health"])
        .code(2)
        .stderr_has("dbx.toml")
        .stderr_has("pool_max_sise");
    // A URL target does not read the file.
    run_in(dir.path(), &["health", "sqlite::memory:"]).ok();
}

#[test]
fn capabilities_a_backend_lacks_are_errors() {
    run(&["docs", "sqlite::memory:", "find", "c"])
        .code(1)
        .stderr_has("does not offer the document capability");
    run(&["query", &redis_url(), "SELECT 1"])
        .code(1)
        .stderr_has("does not offer the sql capability");
}

#[test]
fn colour_only_when_asked() {
    let r = run(&[
        "--color",
        "always",
        "query",
        "sqlite::memory:",
        "SELECT NULL AS n",
    ]);
    assert!(r.ok().contains("\x1b["), "{r:?}");
    // Not a terminal: no colour in auto mode.
    let r = run(&["query", "sqlite::memory:", "SELECT NULL AS n"]);
    assert!(!r.ok().contains('\x1b'), "{r:?}");
    let r = run(&[
        "--color",
        "never",
        "query",
        "sqlite::memory:",
        "SELECT NULL AS n",
    ]);
    assert!(!r.ok().contains('\x1b'), "{r:?}");
    // Errors too.
    let r = run(&["--color", "always", "query", "sqlite::memory:", "SELEC"]);
    r.code(1).stderr_has("\x1b[1;31merror:");
}

/// A topology with one node down: each node is listed; the database still
/// answers (exit 0) unless `--strict`.
#[test]
fn health_lists_each_node_and_strict_fails_on_a_down_one() {
    let pg = postgres_url();
    let rest = pg.strip_prefix("postgres://").unwrap();
    let (userinfo, rest) = rest.split_once('@').unwrap();
    let (hostport, path) = rest.split_once('/').unwrap();
    let url = format!("postgres://{userinfo}@{hostport},127.0.0.1:1/{path}");

    let r = run(&["--timeout", "1s", "health", &url]);
    let out = r.ok();
    for needle in [
        "degraded",
        "NODE",
        "ROLE",
        "STATE",
        "127.0.0.1:1",
        "down",
        hostport,
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    let v = run(&["--timeout", "1s", "--json", "health", &url]).json();
    let nodes = v[0]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{v}");
    let down = nodes.iter().find(|n| n["addr"] == "127.0.0.1:1").unwrap();
    assert_eq!(down["state"], "down", "{v}");
    assert!(down["error"].is_string(), "{v}");
    let up = nodes.iter().find(|n| n["addr"] == hostport).unwrap();
    assert_eq!(up["state"], "up", "{v}");

    run(&["--timeout", "1s", "health", "--strict", &url])
        .code(1)
        .stderr_has("node 127.0.0.1:1");
    run(&["health", "--strict", &redis_url()]).ok();
}
