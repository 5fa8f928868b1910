//! Migrations (`dbx::migrate`) against real SQLite (a temporary file) and
//! PostgreSQL (127.0.0.1:5432): ordering, a failure rolling back that
//! migration only, the no-transaction marker, checksums, down migrations,
//! dry runs, the embedded macro, and ten processes racing.
//!
//! Every test writes its own migration files with names of its own (tables
//! and the bookkeeping table carry a unique suffix), so tests share the
//! PostgreSQL server without meeting.

use dbx::migrate::{Direction, Event, Migrations, Migrator, State};
use dbx::{Dbx, ErrorKind, params};

use std::sync::{Arc, Mutex};

const PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of each dialect: a fresh SQLite file and the shared
/// PostgreSQL (with the directory keeping the file alive).
async fn databases() -> Vec<(Dbx, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Dbx::connect(&format!("sqlite:{}", dir.path().join("m.db").display()))
        .await
        .unwrap();
    let pg = Dbx::connect(PG).await.unwrap();
    vec![(sqlite, dir), (pg, tempfile::tempdir().unwrap())]
}

/// Write migration files into a new directory; `{t}` in names and texts is
/// replaced by `suffix`.
fn write(files: &[(&str, &str)], suffix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text.replace("{t}", suffix)).unwrap();
    }
    dir
}

fn unique(test: &str) -> String {
    dbx_tests::table(test).trim_start_matches("t_").to_owned()
}

async fn count(db: &Dbx, table: &str) -> i64 {
    let (n,): (i64,) = db
        .sql()
        .unwrap()
        .query_one_as(&format!("SELECT count(*) FROM {table}"), params![])
        .await
        .unwrap();
    n
}

async fn exists(db: &Dbx, table: &str) -> bool {
    db.sql()
        .unwrap()
        .query(&format!("SELECT 1 FROM {table}"), params![])
        .await
        .is_ok()
}

async fn drop_tables(db: &Dbx, tables: &[String]) {
    for t in tables {
        let _ = db
            .sql()
            .unwrap()
            .execute(&format!("DROP TABLE IF EXISTS {t}"), params![])
            .await;
    }
}

/// Up in order, status, down one and down to zero, up to a version; the
/// events a progress bar would show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_status_down_in_order() {
    for (db, _keep) in databases().await {
        let s = unique("order");
        let files = write(
            &[
                (
                    "0001_users.sql",
                    "CREATE TABLE users_{t} (id BIGINT PRIMARY KEY, name TEXT NOT NULL);",
                ),
                ("0001_users.down.sql", "DROP TABLE users_{t};"),
                (
                    "0002_seed.sql",
                    "INSERT INTO users_{t} VALUES (1, 'ada'); INSERT INTO users_{t} VALUES (2, 'bob');",
                ),
                ("0002_seed.down.sql", "DELETE FROM users_{t};"),
                (
                    "10_posts.sql",
                    "CREATE TABLE posts_{t} (id BIGINT, user_id BIGINT);\nCREATE INDEX posts_user_{t} ON posts_{t} (user_id);",
                ),
                ("10_posts.down.sql", "DROP TABLE posts_{t};"),
                ("README.md", "not a migration"),
            ],
            &s,
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let m = Migrator::new(Migrations::from_dir(files.path()).unwrap())
            .table(&format!("mig_{s}"))
            .unwrap()
            .on_event(move |e| seen.lock().unwrap().push(e.clone()));
        let st = m.status(db.database()).await.unwrap();
        assert_eq!(st.len(), 3);
        assert!(st.iter().all(|s| s.state == State::Pending), "{st:?}");

        let done = m.up_to(db.database(), 2).await.unwrap();
        assert_eq!(done.iter().map(|d| d.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(count(&db, &format!("users_{s}")).await, 2);
        assert!(!exists(&db, &format!("posts_{s}")).await);
        let done = m.up(db.database()).await.unwrap();
        assert_eq!(done.iter().map(|d| d.version).collect::<Vec<_>>(), [10]);
        assert!(
            m.up(db.database()).await.unwrap().is_empty(),
            "nothing left"
        );
        let st = m.status(db.database()).await.unwrap();
        assert!(
            st.iter().all(|s| matches!(s.state, State::Applied { .. })),
            "{st:?}"
        );
        m.verify(db.database()).await.unwrap();
        {
            let ev = events.lock().unwrap();
            assert!(
                ev.contains(&Event::Planned(2)) && ev.contains(&Event::Planned(1)),
                "{ev:?}"
            );
            let finished = ev
                .iter()
                .filter(|e| matches!(e, Event::Finished(_)))
                .count();
            assert_eq!(finished, 3);
        }

        // down: the last one; down_to(1): the rest above 1; up again.
        let d = m.down(db.database()).await.unwrap();
        assert_eq!(
            (d.len(), d[0].version, d[0].direction),
            (1, 10, Direction::Down)
        );
        assert!(!exists(&db, &format!("posts_{s}")).await);
        let d = m.down_to(db.database(), 1).await.unwrap();
        assert_eq!(d.iter().map(|d| d.version).collect::<Vec<_>>(), [2]);
        assert_eq!(count(&db, &format!("users_{s}")).await, 0);
        let d = m.down_to(db.database(), 0).await.unwrap();
        assert_eq!(d.iter().map(|d| d.version).collect::<Vec<_>>(), [1]);
        assert!(!exists(&db, &format!("users_{s}")).await);
        assert_eq!(count(&db, &format!("mig_{s}")).await, 0);
        assert_eq!(m.up(db.database()).await.unwrap().len(), 3);
        assert_eq!(count(&db, &format!("users_{s}")).await, 2);

        // Bad targets.
        let e = m.up_to(db.database(), 7).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("no migration 7"), "{e}");
        drop_tables(
            &db,
            &[
                format!("posts_{s}"),
                format!("users_{s}"),
                format!("mig_{s}"),
            ],
        )
        .await;
    }
}

/// A statement failing in migration 2 rolls back migration 2 whole (its
/// first statement too) and stops; migration 1 stays; fixing the file lets
/// the next run go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_rolls_back_that_migration_only() {
    for (db, _keep) in databases().await {
        let s = unique("fail");
        let files = write(
            &[
                ("1_a.sql", "CREATE TABLE a_{t} (x BIGINT);"),
                (
                    "2_b.sql",
                    "CREATE TABLE b_{t} (x BIGINT);\nINSERT INTO a_{t} VALUES (1);\nINSERT INTO no_such_table_{t} VALUES (1);",
                ),
                ("3_c.sql", "CREATE TABLE c_{t} (x BIGINT);"),
            ],
            &s,
        );
        let m = Migrator::new(Migrations::from_dir(files.path()).unwrap())
            .table(&format!("mig_{s}"))
            .unwrap();
        let e = m.up(db.database()).await.unwrap_err();
        assert!(e.message().contains("migration 2 b (up) failed"), "{e}");
        assert!(e.message().contains(&format!("no_such_table_{s}")), "{e}");
        assert!(exists(&db, &format!("a_{s}")).await);
        assert_eq!(
            count(&db, &format!("a_{s}")).await,
            0,
            "the insert of migration 2 was rolled back"
        );
        assert!(
            !exists(&db, &format!("b_{s}")).await,
            "the table of migration 2 was rolled back"
        );
        assert!(!exists(&db, &format!("c_{s}")).await, "the run stopped");
        let st = m.status(db.database()).await.unwrap();
        assert!(matches!(st[0].state, State::Applied { .. }));
        assert_eq!(st[1].state, State::Pending);
        // Fix it and go on.
        std::fs::write(
            files.path().join("2_b.sql"),
            format!("CREATE TABLE b_{s} (x BIGINT);\nINSERT INTO a_{s} VALUES (1);"),
        )
        .unwrap();
        let m = Migrator::new(Migrations::from_dir(files.path()).unwrap())
            .table(&format!("mig_{s}"))
            .unwrap();
        assert_eq!(m.up(db.database()).await.unwrap().len(), 2);
        assert_eq!(count(&db, &format!("a_{s}")).await, 1);
        drop_tables(
            &db,
            &[
                format!("a_{s}"),
                format!("b_{s}"),
                format!("c_{s}"),
                format!("mig_{s}"),
            ],
        )
        .await;
    }
}

/// Checksums: comment and whitespace edits pass, SQL edits are refused by
/// verify and by every run, and so are a missing file and a file added
/// below an applied version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_detect_edits_but_not_comments_or_whitespace() {
    for (db, _keep) in databases().await {
        let s = unique("sum");
        let files = write(
            &[
                (
                    "1_a.sql",
                    "CREATE TABLE a_{t} (x BIGINT, note TEXT DEFAULT 'two  spaces');",
                ),
                ("3_c.sql", "CREATE TABLE c_{t} (x BIGINT);"),
            ],
            &s,
        );
        let table = format!("mig_{s}");
        let load = || {
            Migrator::new(Migrations::from_dir(files.path()).unwrap())
                .table(&table)
                .unwrap()
        };
        load().up(db.database()).await.unwrap();
        // Reformatted, with comments: still the same migration.
        std::fs::write(
            files.path().join("1_a.sql"),
            format!("-- the a table\nCREATE TABLE a_{s} (\n    x BIGINT, /* the note */\n    note TEXT DEFAULT 'two  spaces'\n) ;\n"),
        )
        .unwrap();
        load().verify(db.database()).await.unwrap();
        // Whitespace inside a string is data: an edit.
        std::fs::write(
            files.path().join("1_a.sql"),
            format!("CREATE TABLE a_{s} (x BIGINT, note TEXT DEFAULT 'two spaces');"),
        )
        .unwrap();
        let e = load().verify(db.database()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(
            e.message()
                .contains("migration 1 a was edited after it was applied"),
            "{e}"
        );
        let e = load().up(db.database()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "runs refuse too: {e}");
        let st = load().status(db.database()).await.unwrap();
        assert!(matches!(st[0].state, State::Edited { .. }), "{st:?}");
        std::fs::write(
            files.path().join("1_a.sql"),
            format!("CREATE TABLE a_{s} (x BIGINT, note TEXT DEFAULT 'two  spaces');"),
        )
        .unwrap();
        // A file added below the highest applied version.
        std::fs::write(
            files.path().join("2_b.sql"),
            format!("CREATE TABLE b_{s} (x BIGINT);"),
        )
        .unwrap();
        let e = load().up(db.database()).await.unwrap_err();
        assert!(
            e.message()
                .contains("migration 2 b is not applied, but 3 is"),
            "{e}"
        );
        std::fs::remove_file(files.path().join("2_b.sql")).unwrap();
        // A file removed after it was applied.
        std::fs::remove_file(files.path().join("3_c.sql")).unwrap();
        let e = load().verify(db.database()).await.unwrap_err();
        assert!(e.message().contains("migration 3 c is applied"), "{e}");
        let st = load().status(db.database()).await.unwrap();
        assert!(matches!(st[1].state, State::Missing { .. }), "{st:?}");
        drop_tables(&db, &[format!("a_{s}"), format!("c_{s}"), table.clone()]).await;
    }
}

/// `-- dbx:no-transaction`: CREATE INDEX CONCURRENTLY on PostgreSQL (which
/// refuses to run in a transaction), VACUUM on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_no_transaction_marker_runs_outside_a_transaction() {
    for (db, _keep) in databases().await {
        let s = unique("notx");
        let files = write(
            &[
                ("1_t.sql", "CREATE TABLE t_{t} (x BIGINT);"),
                (
                    "2_idx.postgres.sql",
                    "-- dbx:no-transaction\nCREATE INDEX CONCURRENTLY t_x_{t} ON t_{t} (x);\nCREATE INDEX CONCURRENTLY t_x2_{t} ON t_{t} ((x + 1));",
                ),
                (
                    "2_idx.sqlite.sql",
                    "-- dbx:no-transaction\nCREATE INDEX t_x_{t} ON t_{t} (x);\nVACUUM;",
                ),
            ],
            &s,
        );
        let m = Migrator::new(Migrations::from_dir(files.path()).unwrap())
            .table(&format!("mig_{s}"))
            .unwrap();
        let plan = m.plan_up(db.database(), None).await.unwrap();
        assert_eq!(plan.len(), 2);
        assert!(!plan[1].transactional);
        assert_eq!(m.up(db.database()).await.unwrap().len(), 2);
        m.verify(db.database()).await.unwrap();
        // Without the marker, PostgreSQL refuses.
        if db.backend_name() == "postgresql" {
            let files = write(
                &[(
                    "1_idx.sql",
                    "CREATE INDEX CONCURRENTLY t_x3_{t} ON t_{t} (x);",
                )],
                &s,
            );
            let m = Migrator::new(Migrations::from_dir(files.path()).unwrap())
                .table(&format!("mig2_{s}"))
                .unwrap();
            let e = m.up(db.database()).await.unwrap_err();
            assert!(
                e.message()
                    .contains("cannot run inside a transaction block"),
                "{e}"
            );
            drop_tables(&db, &[format!("mig2_{s}")]).await;
        }
        drop_tables(&db, &[format!("t_{s}"), format!("mig_{s}")]).await;
    }
}

/// A dry run gives the steps and their SQL and changes nothing; the default
/// table name; the embedded macro; bad inputs are typed errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_embedded_migrations_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = Dbx::connect(&format!("sqlite:{}", dir.path().join("e.db").display()))
        .await
        .unwrap();
    let m = Migrator::new(dbx::migrations!("migrations-fixture").unwrap());
    let plan = m.plan_up(db.database(), None).await.unwrap();
    assert_eq!(plan.len(), 2);
    assert!(plan[0].sql.contains("CREATE TABLE fixture_notes"));
    assert!(
        !exists(&db, "fixture_notes").await,
        "a dry run changes nothing"
    );
    m.up(db.database()).await.unwrap();
    let (body,): (String,) = db
        .sql()
        .unwrap()
        .query_one_as("SELECT body FROM fixture_notes", params![])
        .await
        .unwrap();
    assert_eq!(
        body, "it's; not -- a comment",
        "the script reached the server whole"
    );
    assert_eq!(count(&db, dbx::migrate::DEFAULT_TABLE).await, 2);
    let down = m.plan_down(db.database(), Some(0)).await.unwrap();
    assert_eq!(down.len(), 2);
    assert_eq!(down[0].direction, Direction::Down);
    assert_eq!(down[1].sql.trim(), "DROP TABLE fixture_notes;");
    assert_eq!(m.down_to(db.database(), 0).await.unwrap().len(), 2);
    assert!(!exists(&db, "fixture_notes").await);
    // A migration without a down file cannot be reverted.
    let no_down = write(&[("1_a.sql", "CREATE TABLE nodown (x BIGINT);")], "x");
    let m2 = Migrator::new(Migrations::from_dir(no_down.path()).unwrap())
        .table("mig_nodown")
        .unwrap();
    m2.up(db.database()).await.unwrap();
    let e = m2.down(db.database()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.message().contains("migration 1 a has no down file"),
        "{e}"
    );

    // Bad input.
    let e = Migrations::from_dir(dir.path().join("nope")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.message().contains("nope"), "{e}");
    let bad = write(&[("1-init.sql", "SELECT 1;")], "x");
    let e = Migrations::from_dir(bad.path()).unwrap_err();
    assert!(e.message().contains("1-init.sql"), "{e}");
    let e = Migrator::new(Migrations::embedded(&[]).unwrap())
        .table("x; DROP TABLE users")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    let kv = Dbx::connect("redis://127.0.0.1:6379").await.unwrap();
    let e = m.up(kv.database()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("not on redis"), "{e}");
}

/// Ten processes start at once and all run the same migrations on one
/// database: each migration is applied exactly once (its insert into a log
/// table happens once), every process succeeds, and together they report
/// each version once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_processes_racing_apply_each_migration_once() {
    let race = env!("CARGO_BIN_EXE_dbx-migrate-race");
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite:{}", dir.path().join("race.db").display());
    for url in [sqlite_url.as_str(), PG] {
        let s = unique("race");
        let mut files = vec![(
            "0001_log.sql".to_owned(),
            "CREATE TABLE log_{t} (v BIGINT NOT NULL);".to_owned(),
        )];
        for v in 2..=8 {
            files.push((
                format!("{v:04}_step{v}.sql"),
                format!(
                    "INSERT INTO log_{{t}} VALUES ({v});\nCREATE TABLE step{v}_{{t}} (x BIGINT);"
                ),
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mig = write(&refs, &s);
        let table = format!("mig_{s}");
        let children: Vec<_> = (0..10)
            .map(|_| {
                std::process::Command::new(race)
                    .args([url, &mig.path().display().to_string(), &table])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a contender failed on {url}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                applied.push(line.parse::<u64>().unwrap());
            }
        }
        applied.sort_unstable();
        assert_eq!(
            applied,
            (1..=8).collect::<Vec<u64>>(),
            "each version applied by exactly one process on {url}"
        );
        let db = Dbx::connect(url).await.unwrap();
        assert_eq!(
            count(&db, &format!("log_{s}")).await,
            7,
            "each insert ran once on {url}"
        );
        assert_eq!(count(&db, &table).await, 8);
        let mut tables: Vec<String> = (2..=8).map(|v| format!("step{v}_{s}")).collect();
        tables.extend([format!("log_{s}"), table.clone()]);
        drop_tables(&db, &tables).await;
        dbx_tests::loud(&format!(
            "[measure] migration race on {}: 10 processes, 8 migrations, each applied once",
            db.backend_name()
        ));
    }
}
