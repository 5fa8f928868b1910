//! `dbx migrate` on SQLite and PostgreSQL: new, up (dry run, --to), status,
//! verify, down, and bad input (a missing directory, a bad file name, an
//! edited migration, a missing down file).

use crate::common::*;
use std::path::Path;

/// Write `text` after the comment `dbx migrate new` put in `file`.
fn append(dir: &Path, file: &str, text: &str) {
    let path = dir.join("migrations").join(file);
    let mut old = std::fs::read_to_string(&path).unwrap();
    old.push_str(text);
    std::fs::write(path, old).unwrap();
}

fn lifecycle(target: &str, table: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let m = |args: &[&str]| {
        let mut all = vec!["migrate", "--table", table];
        all.extend_from_slice(args);
        run_in(dir, &all)
    };
    let users = format!("{table}_users");
    m(&["new", "create_users"]).stdout_has("created migrations/0001_create_users.sql");
    m(&["new", "add_index"]).stdout_has("migrations/0002_add_index.down.sql");
    append(
        dir,
        "0001_create_users.sql",
        &format!("CREATE TABLE {users} (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\n"),
    );
    append(
        dir,
        "0001_create_users.down.sql",
        &format!("DROP TABLE {users};\n"),
    );
    append(
        dir,
        "0002_add_index.sql",
        &format!("CREATE INDEX {users}_name ON {users} (name);\n"),
    );
    append(
        dir,
        "0002_add_index.down.sql",
        &format!("DROP INDEX {users}_name;\n"),
    );

    let r = m(&["status", target]);
    assert_eq!(r.ok().matches("pending").count(), 2, "{r:?}");
    // A dry run prints the SQL and changes nothing.
    let r = m(&["up", target, "--dry-run"]);
    r.stdout_has(&format!("CREATE TABLE {users}"))
        .stdout_has("dry run: 2 migrations would run");
    assert_eq!(m(&["status", target]).ok().matches("pending").count(), 2);
    // Up to 1, then the rest, as JSON.
    m(&["up", target, "--to", "1"]).stdout_has("applied 1 create_users");
    let r = m(&["--json", "up", target]);
    let done = r.json();
    assert_eq!(done[0]["version"], 2, "{r:?}");
    assert_eq!(done.as_array().unwrap().len(), 1);
    m(&["up", target]).stdout_has("nothing to apply");
    let r = m(&["--json", "status", target]);
    let st = r.json();
    assert!(
        st.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "applied"),
        "{r:?}"
    );
    m(&["verify", target]).stdout_has("ok: 2 applied migrations match their files");
    // A comment is not an edit; a changed statement is.
    append(dir, "0001_create_users.sql", "-- reviewed\n");
    m(&["verify", target]).ok();
    let path = dir.join("migrations/0001_create_users.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("NOT NULL", "NULL")).unwrap();
    m(&["verify", target])
        .code(1)
        .stderr_has("migration 1 create_users was edited after it was applied");
    m(&["down", target]).code(1).stderr_has("was edited");
    std::fs::write(&path, text).unwrap();
    // Down: the last, then all.
    m(&["down", target]).stdout_has("reverted 2 add_index");
    m(&["down", target, "--to", "0", "--dry-run"]).stdout_has(&format!("DROP TABLE {users}"));
    m(&["down", target, "--to", "0"]).stdout_has("reverted 1 create_users");
    let r = run_in(dir, &["query", target, &format!("SELECT 1 FROM {users}")]);
    assert_eq!(r.code, 1, "the table is gone: {r:?}");
    run_in(dir, &["query", target, &format!("DROP TABLE {table}")]).ok();
}

#[test]
fn migrate_lifecycle_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let target = format!("sqlite:{}", tmp.path().join("app.db").display());
    lifecycle(&target, &unique("mig"));
}

#[test]
fn migrate_lifecycle_on_postgres() {
    lifecycle(&postgres_url(), &unique("mig"));
}

#[test]
fn migrate_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let target = format!("sqlite:{}", dir.join("bad.db").display());
    // No migrations directory: a usage error naming it, before connecting.
    run_in(dir, &["migrate", "--dir", "nowhere", "up", &target])
        .code(2)
        .stderr_has("nowhere");
    // A file that is not a migration name.
    std::fs::create_dir(dir.join("migrations")).unwrap();
    std::fs::write(dir.join("migrations/1-init.sql"), "SELECT 1;").unwrap();
    run_in(dir, &["migrate", "status", &target])
        .code(2)
        .stderr_has("1-init.sql");
    std::fs::remove_file(dir.join("migrations/1-init.sql")).unwrap();
    // A bad name for `new`, a bad table name.
    run_in(dir, &["migrate", "new", "drop table"]).code(2);
    run_in(dir, &["migrate", "--table", "x;y", "status", &target])
        .code(2)
        .stderr_has("not a table name");
    // A migration without a down file cannot be reverted.
    run_in(dir, &["migrate", "new", "--no-down", "only_up"]).ok();
    append(
        dir,
        "0001_only_up.sql",
        "CREATE TABLE only_up (x BIGINT);\n",
    );
    run_in(dir, &["migrate", "up", &target]).ok();
    run_in(dir, &["migrate", "down", &target])
        .code(1)
        .stderr_has("no down file");
    // A failing migration: the database's message, exit 1, nothing kept.
    run_in(dir, &["migrate", "new", "--no-down", "broken"]).ok();
    append(
        dir,
        "0002_broken.sql",
        "CREATE TABLE b (x BIGINT);\nSELEC nonsense;\n",
    );
    run_in(dir, &["migrate", "up", &target])
        .code(1)
        .stderr_has("migration 2 broken (up) failed");
    let r = run_in(dir, &["--json", "migrate", "status", &target]);
    assert_eq!(r.json()[1]["state"], "pending", "{r:?}");
    // Migrations run on SQL databases only.
    run_in(dir, &["migrate", "status", &redis_url()])
        .code(1)
        .stderr_has("not on redis");
    // A URL with a password is never echoed.
    let r = run_in(
        dir,
        &[
            "migrate",
            "status",
            "postgres://postgres:s3cretpw@127.0.0.1:1/x",
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        !r.stdout.contains("s3cretpw") && !r.stderr.contains("s3cretpw"),
        "{r:?}"
    );
}
