//! MongoDB: the key-value and document conformance suites against a real
//! MongoDB-wire server, plus URLs, the pool, transactions, authentication
//! and bad input.
//!
//! The server is `DBX_TEST_MONGO_URL` (default `mongodb://127.0.0.1:27018`,
//! where `scripts/start-mongo.sh` starts SecantusDB). Tests that need a
//! special server (authentication) start a throwaway SecantusDB of their own
//! on a free loopback port.

use dbx::serde_json::json;
use dbx::{Dbx, ErrorKind, FindOptions};
use dbx_tests::{expect_kind, table};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn url() -> String {
    std::env::var("DBX_TEST_MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27018".to_owned())
}

/// `url()` with a database path and extra parameters.
fn url_with(db: &str, params: &str) -> String {
    let base = url();
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b.to_owned(), Some(q.to_owned())),
        None => (base, None),
    };
    let base = base.trim_end_matches('/');
    let mut u = format!("{base}/{db}");
    let q: Vec<String> = query
        .into_iter()
        .chain((!params.is_empty()).then(|| params.to_owned()))
        .collect();
    if !q.is_empty() {
        u.push('?');
        u.push_str(&q.join("&"));
    }
    u
}

/// This test process's database, named after the time and process id;
/// databases of earlier runs older than an hour are dropped first, so the
/// collections stay small (the shared server lives across runs).
async fn test_db() -> &'static str {
    static DB: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DB.get_or_init(|| async {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let admin = Dbx::connect(&url_with("admin", "")).await.unwrap();
        let client = admin.mongo().unwrap().client().unwrap();
        for name in client.list_database_names().await.unwrap() {
            let stale = name
                .strip_prefix("dbx_test_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<u64>().ok())
                .is_some_and(|secs| secs + 3600 < now);
            if stale {
                client.database(&name).drop().await.unwrap();
            }
        }
        admin.close().await;
        format!("dbx_test_{now}_{}", std::process::id())
    })
    .await
}

async fn connect() -> Dbx {
    Dbx::connect(&url_with(test_db().await, "")).await.unwrap()
}

mod kv {
    dbx_tests::kv_conformance!(crate::mongo::connect);
}

#[cfg(feature = "cache")]
async fn connect_cached() -> Dbx {
    Dbx::connect(&url_with(test_db().await, "cache=true"))
        .await
        .unwrap()
}
#[cfg(feature = "cache")]
mod cache_kv {
    dbx_tests::cache_kv_conformance!(crate::mongo::connect_cached);
}
#[cfg(feature = "cache")]
mod cache_docs {
    dbx_tests::cache_docs_conformance!(crate::mongo::connect_cached);
}

mod docs {
    dbx_tests::docs_conformance!(crate::mongo::connect);
}

// --- URLs and options ---------------------------------------------------------

#[tokio::test]
async fn invalid_database_names_are_config_errors() {
    for db in ["a.b", "a$b", "a%20b", "a%22b", "a*b", &"d".repeat(64)] {
        let e = expect_kind(
            Dbx::connect(&url_with(db, "")).await,
            ErrorKind::InvalidConfig,
        );
        assert!(e.to_string().contains("database name"), "{db}: {e}");
    }
}

#[tokio::test]
async fn invalid_urls_and_parameters_are_config_errors() {
    let e = expect_kind(
        Dbx::connect(&url_with("x", "no_such_option=1")).await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("no_such_option"), "{e}");
    expect_kind(
        Dbx::connect("mongodb+srv://cluster.example.com:27017/x").await,
        ErrorKind::InvalidConfig,
    );
    expect_kind(Dbx::connect("mongodb:///x").await, ErrorKind::InvalidConfig);
    expect_kind(
        Dbx::connect(&url_with("x", "pool_max_size=3&maxPoolSize=4")).await,
        ErrorKind::InvalidConfig,
    );
    expect_kind(
        Dbx::connect(&url_with("x", "kv_collection=a$b")).await,
        ErrorKind::InvalidConfig,
    );
    let e = expect_kind(
        Dbx::connect(&url_with("x", "readPreference=sometimes")).await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("mongodb"), "{e}");
}

#[tokio::test]
async fn driver_options_pass_through_and_the_pool_is_exposed() {
    let db = Dbx::connect(&url_with(
        "dbx_test",
        "maxPoolSize=3&appName=dbx-tests&retryWrites=true",
    ))
    .await
    .unwrap();
    assert_eq!(db.backend_name(), "mongodb");
    let status = db.pool_status().unwrap();
    assert_eq!(status.max_size, 3);
    let c = db.docs().unwrap().collection(&table("pool"));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.insert_one(&json!({"i": i})).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(c.count(&json!({})).await.unwrap(), 12);
    // The driver checks connections back in just after an operation
    // returns, so the figures settle a moment later.
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = loop {
        let s = db.pool_status().unwrap();
        if s.in_use == 0 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.size >= 1 && status.size <= 3, "{status:?}");
    assert_eq!(status.in_use, 0, "{status:?}");
    assert_eq!(status.idle, status.size, "{status:?}");
    let health = db.health().await.unwrap();
    assert_eq!(health.backend, "mongodb");
    assert!(health.pool.is_some());
    let stats = db.stats();
    assert!(stats.operations >= 13, "{stats:?}");
    c.drop().await.unwrap();
    // pool_max_size sets the driver's pool.
    let db = Dbx::builder(&url_with(test_db().await, ""))
        .pool_max_size(2)
        .connect()
        .await
        .unwrap();
    assert_eq!(db.pool_status().unwrap().max_size, 2);
}

/// `with_options`: a second handle on the same client whose operations
/// carry a read preference, read concern and write concern; it sees the
/// same data, has its own policy, and closing it leaves the client open.
/// An impossible write concern (`w: 5` on one server), per handle or in the
/// URL, proves the concern is sent: the server answers
/// UnsatisfiableWriteConcern (code 100).
#[tokio::test]
async fn per_handle_read_and_write_concerns() {
    use dbx::mongo::mongodb::options::{
        Acknowledgment, DatabaseOptions, ReadConcern, ReadPreference, SelectionCriteria,
        WriteConcern,
    };
    let db = connect().await;
    let name = table("concerns");
    let reports = db
        .mongo()
        .unwrap()
        .with_options(
            DatabaseOptions::builder()
                .selection_criteria(SelectionCriteria::ReadPreference(
                    ReadPreference::SecondaryPreferred { options: None },
                ))
                .read_concern(ReadConcern::local())
                .write_concern(
                    WriteConcern::builder()
                        .w(Acknowledgment::Nodes(1))
                        .journal(true)
                        .build(),
                )
                .build(),
        )
        .unwrap();
    let c = reports.docs().unwrap().collection(&name);
    c.insert_one(&json!({"k": 1})).await.unwrap();
    assert_eq!(
        db.docs()
            .unwrap()
            .collection(&name)
            .count(&json!({}))
            .await
            .unwrap(),
        1
    );
    assert_eq!(c.find_one(&json!({"k": 1})).await.unwrap().unwrap()["k"], 1);
    let kv = reports.kv().unwrap();
    kv.set(&format!("{name}:k"), b"v", None).await.unwrap();
    assert_eq!(
        db.kv()
            .unwrap()
            .get(&format!("{name}:k"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );

    let impossible = db
        .mongo()
        .unwrap()
        .with_options(
            DatabaseOptions::builder()
                .write_concern(WriteConcern::builder().w(Acknowledgment::Nodes(5)).build())
                .build(),
        )
        .unwrap();
    let refused = impossible
        .docs()
        .unwrap()
        .collection(&name)
        .insert_one(&json!({"k": 2}))
        .await;
    let e = refused.unwrap_err();
    assert_eq!(e.code(), Some("100"), "UnsatisfiableWriteConcern: {e}");
    assert!(!e.is_transient(), "{e}");
    // The same from the URL (`w=5`).
    let by_url = Dbx::connect(&url_with(test_db().await, "w=5"))
        .await
        .unwrap();
    let e = by_url
        .docs()
        .unwrap()
        .collection(&name)
        .insert_one(&json!({"k": 3}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("100"), "{e}");

    // Closing the second handle leaves the client open.
    reports.close().await;
    assert_eq!(
        c.count(&json!({})).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert!(
        db.docs()
            .unwrap()
            .collection(&name)
            .count(&json!({}))
            .await
            .unwrap()
            >= 1
    );
    db.docs().unwrap().collection(&name).drop().await.unwrap();
}

/// A refused port is a `Connect` error with the driver's reason, reported
/// as soon as the driver's monitor sees it: not a bare `Timeout` after the
/// whole connect timeout (30 s here; the bound below is half of it).
#[tokio::test]
async fn refused_connection_is_a_connect_error_with_its_reason() {
    for url in [
        format!("mongodb://127.0.0.1:{}/x", free_port()),
        format!(
            "mongodb://127.0.0.1:{},127.0.0.1:{}/x",
            free_port(),
            free_port()
        ),
    ] {
        let start = Instant::now();
        let e = Dbx::builder(&url)
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::Connect, "{url}: {e} after {took:?}");
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
        assert!(std::error::Error::source(&e).is_some(), "{e:?}");
        assert!(took < Duration::from_secs(15), "{url}: waited {took:?}");
    }
}

#[tokio::test]
async fn unreachable_server_is_a_bounded_transient_error() {
    let port = free_port();
    let start = Instant::now();
    let e = Dbx::builder(&format!("mongodb://127.0.0.1:{port}/x"))
        .connect_timeout(Duration::from_millis(800))
        .connect()
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.is_transient(), "{e}");
}

// --- backend-specific behaviour ----------------------------------------------

#[tokio::test]
async fn kv_lives_in_its_collection_with_a_ttl_index() {
    let coll = table("kv");
    let db = Dbx::connect(&url_with(test_db().await, &format!("kv_collection={coll}")))
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("k", b"v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    kv.set("p", b"w", None).await.unwrap();
    let c = db.docs().unwrap().collection(&coll);
    assert!(
        c.list_indexes()
            .await
            .unwrap()
            .contains(&"dbx_kv_exp".to_owned())
    );
    let k = c.find_one(&json!({"_id": "k"})).await.unwrap().unwrap();
    assert!(k["v"].get("$binary").is_some(), "{k}");
    assert!(k["exp"].get("$date").is_some(), "{k}");
    let p = c.find_one(&json!({"_id": "p"})).await.unwrap().unwrap();
    assert!(p.get("exp").is_none(), "{p}");
    // Canonical counters are numbers on the server, so incr is one $inc;
    // anything else stays bytes, and both read back exactly.
    kv.set("n", b"41", None).await.unwrap();
    kv.set("z", b"007", None).await.unwrap();
    assert_eq!(kv.incr("n", 1).await.unwrap(), 42);
    let n = c.find_one(&json!({"_id": "n"})).await.unwrap().unwrap();
    assert_eq!(n["n"], 42, "{n}");
    assert_eq!(kv.get("n").await.unwrap().as_deref(), Some(&b"42"[..]));
    assert_eq!(kv.get("z").await.unwrap().as_deref(), Some(&b"007"[..]));
    assert_eq!(
        kv.incr("z", 1).await.unwrap_err().kind(),
        ErrorKind::WrongType
    );
    // A counter written as bytes by another client still counts.
    c.insert_one(&json!({"_id": "old", "v": {"$binary": {"base64": "MTA=", "subType": "00"}}}))
        .await
        .unwrap();
    assert_eq!(kv.incr("old", 5).await.unwrap(), 15);
    assert_eq!(kv.get("old").await.unwrap().as_deref(), Some(&b"15"[..]));
    // A document the KV layer did not write is a typed error, not a panic.
    c.insert_one(&json!({"_id": "foreign", "v": "text"}))
        .await
        .unwrap();
    expect_kind(kv.get("foreign").await, ErrorKind::WrongType);
    c.drop().await.unwrap();
}

#[tokio::test]
async fn transactions_use_sessions() {
    let db = connect().await;
    let raw = db.mongo().unwrap();
    assert!(
        raw.supports_transactions(),
        "the test server reports a replica set, so it must support transactions"
    );
    let docs = db.docs().unwrap();
    let name = table("tx_isolation");
    let c = docs.collection(&name);
    c.insert_one(&json!({"_id": 0})).await.unwrap();
    let mut tx = docs.begin().await.unwrap();
    tx.insert_one(&name, &json!({"_id": 1})).await.unwrap();
    // Not visible outside before commit.
    assert_eq!(c.count(&json!({})).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(c.count(&json!({})).await.unwrap(), 2);
    // A transaction dropped without commit is rolled back.
    let mut tx = docs.begin().await.unwrap();
    tx.insert_one(&name, &json!({"_id": 2})).await.unwrap();
    drop(tx);
    assert_eq!(c.count(&json!({"_id": 2})).await.unwrap(), 0);
    c.drop().await.unwrap();
}

#[tokio::test]
async fn update_pipelines() {
    let db = connect().await;
    let c = db.docs().unwrap().collection(&table("pipeline"));
    c.insert_one(&json!({"_id": 1, "x": 2})).await.unwrap();
    c.update_one(
        &json!({"_id": 1}),
        &json!([{"$set": {"y": {"$add": ["$x", 1]}}}]),
    )
    .await
    .unwrap();
    assert_eq!(
        c.find_one(&json!({"_id": 1})).await.unwrap(),
        Some(json!({"_id": 1, "x": 2, "y": 3}))
    );
    c.drop().await.unwrap();
}

#[tokio::test]
async fn server_rejections_are_typed() {
    let db = connect().await;
    let c = db.docs().unwrap().collection(&table("server_errors"));
    c.insert_one(&json!({"a": 1})).await.unwrap();
    // Valid shape, rejected by the server: a bad $regex option / $type name.
    let e = c
        .find_one(&json!({"a": {"$type": "no-such-type"}}))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Query, "{e}");
    assert!(!e.is_transient(), "{e}");
    assert_eq!(e.backend(), Some("mongodb"));
    c.drop().await.unwrap();
}

#[tokio::test]
async fn escape_hatch_reaches_the_official_driver() {
    use dbx::mongo::mongodb::bson::doc;
    let db = connect().await;
    let raw = db.mongo().unwrap();
    let reply = raw
        .database()
        .unwrap()
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();
    assert_eq!(
        reply
            .get_f64("ok")
            .ok()
            .or(reply.get_i32("ok").ok().map(f64::from)),
        Some(1.0)
    );
    db.close().await;
    expect_kind(db.mongo().map(drop), ErrorKind::Closed);
}

// --- authentication on a throwaway server -------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn secantusd() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DBX_TEST_SECANTUSD") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").ok()?;
    let p = PathBuf::from(home).join(".cache/dbx-venv/bin/secantusd-py");
    p.exists().then_some(p)
}

/// A SecantusDB of this test's own, killed when dropped.
struct TempServer {
    child: Child,
    port: u16,
}

impl TempServer {
    fn start(bin: &PathBuf, dir: &std::path::Path, extra: &[&str]) -> TempServer {
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(dir)
            .args(["--log-level", "WARNING"])
            // The server is killed (SIGKILL) when dropped: commit durably.
            .arg("--sync-on-commit")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.args(extra);
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "SecantusDB did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        TempServer { child, port }
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn authentication_failures_are_permanent_and_never_show_the_password() {
    let Some(bin) = secantusd() else {
        eprintln!("SKIPPED authentication test: no secantusd-py (run scripts/start-mongo.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let server = TempServer::start(&bin, dir.path(), &[]);
        let db = Dbx::connect(&format!("mongodb://127.0.0.1:{}/admin", server.port))
            .await
            .unwrap();
        use dbx::mongo::mongodb::bson::doc;
        db.mongo()
            .unwrap()
            .database()
            .unwrap()
            .run_command(doc! { "createUser": "app", "pwd": "right-pass", "roles": ["root"] })
            .await
            .unwrap();
        db.close().await;
    }
    let server = TempServer::start(&bin, dir.path(), &["--auth"]);
    let wrong = format!("mongodb://app:wrong-pass@127.0.0.1:{}/admin", server.port);
    let e = Dbx::builder(&wrong)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.is_transient(), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("wrong-pass"), "{shown}");
    // The mechanism option passes through to the driver.
    let right = format!(
        "mongodb://app:right-pass@127.0.0.1:{}/admin?authMechanism=SCRAM-SHA-256",
        server.port
    );
    let db = Dbx::connect(&right).await.unwrap();
    assert!(!format!("{db:?}").contains("right-pass"));
    let c = db.docs().unwrap().collection("authed");
    c.insert_one(&json!({"a": 1})).await.unwrap();
    assert_eq!(c.count(&json!({})).await.unwrap(), 1);
    // Without credentials the server refuses the command: Auth, permanent.
    let anon = Dbx::builder(&format!("mongodb://127.0.0.1:{}/admin", server.port))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    match anon {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Auth, "{e}"),
        Ok(anon) => {
            let e = anon
                .docs()
                .unwrap()
                .collection("authed")
                .find_one(&json!({}))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
            assert!(!e.is_transient(), "{e}");
        }
    }
    let _ = FindOptions::new();
}

#[tokio::test]
async fn standalone_servers_refuse_transactions_clearly() {
    let Some(bin) = secantusd() else {
        eprintln!("SKIPPED standalone test: no secantusd-py (run scripts/start-mongo.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TempServer::start(&bin, dir.path(), &["--standalone"]);
    let db = Dbx::connect(&format!("mongodb://127.0.0.1:{}/app", server.port))
        .await
        .unwrap();
    assert!(!db.mongo().unwrap().supports_transactions());
    let e = expect_kind(
        db.docs().unwrap().begin().await.map(drop),
        ErrorKind::Unsupported,
    );
    assert!(e.to_string().contains("replica set"), "{e}");
    // Everything else works; mset writes every entry (one by one here).
    let kv = db.kv().unwrap();
    kv.mset(&[("a", b"1".as_slice()), ("b", b"2".as_slice())], None)
        .await
        .unwrap();
    assert_eq!(
        kv.mget(&["a", "b"]).await.unwrap(),
        vec![Some(b"1".to_vec()), Some(b"2".to_vec())]
    );
    let c = db.docs().unwrap().collection("things");
    c.insert_one(&json!({"x": 1})).await.unwrap();
    assert_eq!(c.count(&json!({})).await.unwrap(), 1);
}

#[tokio::test]
async fn a_server_that_goes_away_gives_bounded_transient_errors() {
    let Some(bin) = secantusd() else {
        eprintln!("SKIPPED server-loss test: no secantusd-py (run scripts/start-mongo.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TempServer::start(&bin, dir.path(), &[]);
    let db = Dbx::builder(&format!("mongodb://127.0.0.1:{}/app", server.port))
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .retry(dbx::RetryConfig::disabled())
        .connect()
        .await
        .unwrap();
    let c = db.docs().unwrap().collection("things");
    c.insert_one(&json!({"x": 1})).await.unwrap();
    drop(server);
    for _ in 0..3 {
        let start = Instant::now();
        let e = c.find_one(&json!({})).await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
        assert!(
            matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
            "{e}"
        );
        assert!(e.is_transient(), "{e}");
        let e = db.kv().unwrap().set("k", b"v", None).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
    }
}
