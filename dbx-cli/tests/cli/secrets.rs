//! Passwords never appear in anything the CLI prints.

use crate::common::*;

const PASSWORD: &str = "s3cretpw";

#[track_caller]
fn assert_no_secret(r: &Run) {
    assert!(
        !r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD),
        "the password leaked:\n{r:#?}"
    );
}

#[test]
fn a_password_in_a_url_is_never_echoed() {
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/x");
    let cases: Vec<Vec<&str>> = vec![
        vec!["health", &url],
        vec!["--json", "health", &url],
        vec!["-v", "health", &url],
        vec!["-v", "query", &url, "SELECT 1"],
        vec!["--json", "query", &url, "SELECT 1"],
        vec!["-v", "kv", &url, "get", "k"],
        vec!["-v", "stats", &url],
        vec!["--json", "stats", &url],
    ];
    for args in cases {
        let mut all = vec!["--timeout", "1s"];
        all.extend(args);
        let r = run(&all);
        r.code(1).stderr_has("error:");
        assert_no_secret(&r);
    }
    // The target is named, redacted.
    let r = run(&["--timeout", "1s", "health", &url]);
    r.stdout_has("postgres://postgres:***@127.0.0.1:1/x");
}

#[test]
fn a_password_in_a_malformed_url_is_never_echoed() {
    for url in [
        format!("postgres://postgres:{PASSWORD}@[::1/x"),
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:99999/x"),
        format!("redis://:{PASSWORD}@127.0.0.1:6379/?bogus_param=1"),
    ] {
        let r = run(&["-v", "health", &url]);
        assert_ne!(r.code, 0, "{r:?}");
        assert_no_secret(&r);
    }
}

#[test]
fn a_password_sent_to_redis_is_never_echoed() {
    // Whatever the server makes of it (accepted or refused), the output
    // does not carry what was sent.
    let url = redis_url().replacen("redis://", &format!("redis://default:{PASSWORD}@"), 1);
    let r = run(&["-v", "--timeout", "2s", "kv", &url, "get", "k"]);
    r.code(1);
    assert_no_secret(&r);
}

#[test]
fn passwords_from_dbx_toml_and_the_environment_are_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dbx.toml"),
        format!(
            "[databases.db]\nurl = \"postgres://postgres@127.0.0.1:1/x\"\npassword = \"{PASSWORD}\"\n"
        ),
    )
    .unwrap();
    for args in [
        &["--timeout", "1s", "-v", "health"][..],
        &["--timeout", "1s", "--json", "health", "db"],
        &["--timeout", "1s", "-v", "stats", "db"],
        &["query", "nope", "SELECT 1"],
    ] {
        let r = run_in(dir.path(), args);
        assert_ne!(r.code, 0, "{r:?}");
        assert_no_secret(&r);
    }
    let mut cmd = dbx_in(dir.path());
    cmd.env(
        "DBX_DATABASES__ENVDB__URL",
        format!("redis://:{PASSWORD}@127.0.0.1:1"),
    );
    let r = run_with(cmd, &["--timeout", "1s", "-v", "health", "envdb"]);
    r.code(1).stdout_has("envdb");
    assert_no_secret(&r);
}
