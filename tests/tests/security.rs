//! Security audit: no secret (URL password, password-style parameter, bound
//! parameter value) ever appears in tracing output, `Debug` or `Display` of
//! dbx's public types, or errors, while operations fail and succeed.
//!
//! Its own test binary, so its global subscriber captures everything dbx logs.
#![allow(clippy::unwrap_used, clippy::panic)]

use dbx::{Databases, Dbx, params};
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

const SECRETS: &[&str] = &["hunter2", "topsecret", "k3y-v4lue", "param-s3cret"];

use dbx_tests::Capture;

fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let c = Capture::default();
            let writer = c.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .init();
            c
        })
        .clone()
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks {s:?}:\n{text}");
    }
}

fn shown(x: &(impl std::fmt::Debug + ?Sized)) -> String {
    format!("{x:?} {x:#?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_debug_display_or_errors() {
    let log = capture();
    let mut seen = Vec::new();

    // Options and URLs with secrets, and the errors they give.
    for url in [
        "postgres://app:hunter2@127.0.0.1:1/db?sslpassword=topsecret&application_name=audit",
        "redis://:hunter2@127.0.0.1:1/0?api_key=k3y-v4lue",
        "mongodb://u:hunter2@127.0.0.1:1/db",
        "sqlite::memory:?password=topsecret",
        "sqlite://u:hunter2@host/x.db",
        "unknown://u:hunter2@h/x?token=k3y-v4lue",
        "redis://u:hunter2%zz@h/0",
        "qdrant://:hunter2@127.0.0.1:1",
        "qdrants://:hunter2@127.0.0.1:1?timeout=2s",
        "qdrant://apikey:hunter2@127.0.0.1:1",
        "qdrant://127.0.0.1:1?api_key=k3y-v4lue",
    ] {
        if let Ok(o) = dbx::ConnectOptions::from_url(url) {
            seen.push(o.to_string());
            seen.push(shown(&o));
        }
        let e = Dbx::connect(url).await.unwrap_err();
        seen.push(e.to_string());
        seen.push(shown(&e));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            seen.push(s.to_string());
            src = s.source();
        }
    }
    let builder = Dbx::builder("sqlite::memory:")
        .password("hunter2")
        .param("api_key", "k3y-v4lue");
    seen.push(shown(&builder));
    seen.push(builder.connect().await.unwrap_err().to_string());

    // A working database with statement logging on: SQL text is recorded,
    // bound values never are; operations succeed and fail.
    let db = Dbx::builder("sqlite::memory:")
        .param("log_statements", "true")
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    sql.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)",
        params![],
    )
    .await
    .unwrap();
    sql.execute(
        "INSERT INTO t (id, v) VALUES ($1, $2)",
        params![1, "param-s3cret"],
    )
    .await
    .unwrap();
    let e = sql
        .execute(
            "INSERT INTO t (id, v) VALUES ($1, $2)",
            params![2, "param-s3cret"],
        )
        .await
        .unwrap_err();
    seen.push(e.to_string());
    seen.push(shown(&e));
    let rows = sql
        .query("SELECT v FROM t WHERE v = $1", params!["param-s3cret"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the value is stored verbatim");
    let _ = sql
        .query("SELECT nope FROM t WHERE v = $1", params!["param-s3cret"])
        .await;
    let kv = db.kv().unwrap();
    kv.set("session", b"param-s3cret", None).await.unwrap();
    let _ = kv.incr("session", 1).await;
    seen.push(shown(&db));
    seen.push(shown(sql));
    seen.push(shown(kv));
    seen.push(shown(&db.stats()));
    seen.push(shown(&db.health().await.unwrap()));
    seen.push(shown(db.options()));
    db.close().await;

    // A password-protected Redis: operations succeed with the right
    // password and fail with a wrong one, all while being traced.
    #[cfg(feature = "redis")]
    {
        let server = dbx_tests::fault::RedisServer::start(&["--requirepass", "hunter2"]);
        let good = format!(
            "redis://:hunter2@127.0.0.1:{}/0?log_statements=true",
            server.port()
        );
        let db = Dbx::connect(&good).await.unwrap();
        let kv = db.kv().unwrap();
        kv.set("secret-key", b"param-s3cret", None).await.unwrap();
        assert_eq!(
            kv.get("secret-key").await.unwrap().as_deref(),
            Some(&b"param-s3cret"[..])
        );
        let _ = kv.incr("secret-key", 1).await;
        seen.push(shown(&db));
        seen.push(shown(&db.stats()));
        seen.push(shown(db.options()));
        seen.push(db.options().to_string());
        db.close().await;
        let bad = format!("redis://:topsecret@127.0.0.1:{}/0", server.port());
        let e = Dbx::connect(&bad).await.unwrap_err();
        assert_eq!(e.kind(), dbx::ErrorKind::Auth);
        seen.push(e.to_string());
        seen.push(shown(&e));
    }

    // Qdrant with an API key (a server without keys ignores it): operations
    // succeed and fail while traced, and the spans name the backend.
    #[cfg(feature = "qdrant")]
    match std::env::var("DBX_TEST_QDRANT_URL") {
        Ok(url) if !url.trim().is_empty() => {
            use dbx::vector::{Distance, Point, Search};
            let with_key = url.trim_end_matches('/').replacen("://", "://:hunter2@", 1);
            let db = Dbx::connect(&with_key).await.unwrap();
            let c = db
                .vectors()
                .unwrap()
                .collection(&dbx_tests::table("security"));
            c.create(2, Distance::Dot).await.unwrap();
            c.upsert_one(Point::new(1u64, vec![1.0, 0.0]))
                .await
                .unwrap();
            c.search(&Search::new(vec![1.0, 0.0], 1)).await.unwrap();
            let e = c
                .upsert_one(Point::new(2u64, vec![1.0, 0.0, 0.0]))
                .await
                .unwrap_err();
            seen.push(shown(&e));
            seen.push(shown(&db));
            seen.push(shown(db.options()));
            seen.push(db.options().to_string());
            seen.push(shown(db.qdrant().unwrap()));
            c.drop().await.unwrap();
            db.close().await;
            let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
            assert!(
                logged.contains("db.system.name=\"qdrant\"") && logged.contains("vector.search"),
                "Qdrant spans were captured"
            );
        }
        _ => {
            let _ = std::io::stderr().write_all(
                b"SKIPPED: no Qdrant (set DBX_TEST_QDRANT_URL, e.g. qdrant://127.0.0.1:6334): the Qdrant part of the security audit\n",
            );
        }
    }

    // dbx.toml with the password from the environment.
    let dbs = Databases::from_toml_with(
        "[databases.main]\nurl = \"sqlite::memory:\"\n[databases.main.retry]\nmax_attempts = 2\n",
        "dbx.toml",
        vec![(
            "DBX_DATABASES__OTHER__URL".to_owned(),
            "postgres://u:hunter2@127.0.0.1:1/x".to_owned(),
        )],
        &dbx::registry(),
    )
    .await
    .unwrap_err();
    seen.push(dbs.to_string());
    seen.push(shown(&dbs));
    let e = dbx::core::config::parse(
        "[databases.a]\nurl = \"postgres://u:hunter2@h/db\" oops",
        "dbx.toml",
        Vec::new(),
    )
    .unwrap_err();
    seen.push(e.to_string());

    for (i, s) in seen.iter().enumerate() {
        assert_clean(&format!("item {i}"), s);
    }
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("db.operation"), "spans were captured");
    assert!(
        logged.contains("INSERT INTO t (id, v) VALUES ($1, $2)"),
        "statement text is logged when asked"
    );
    assert_clean("tracing output", &logged);
}
