//! Qdrant: the vector conformance suite against a real server, plus URLs,
//! API-key redaction, unreachable servers, authentication, spans and the
//! escape hatch.
//!
//! The server is `DBX_TEST_QDRANT_URL` (e.g. `qdrant://127.0.0.1:6334`;
//! `scripts/start-qdrant.sh` starts one when a binary is found). Without it
//! every test that needs a server prints a loud `SKIPPED` line and returns.
//! Tests that need a server of their own (an API key, a server that goes
//! away) start a throwaway one from the binary `QDRANT_BIN` on free loopback
//! ports, and skip loudly without it. URL and option errors, redaction and
//! the unreachable-server test need no server and always run.

use dbx::serde_json::json;
use dbx::vector::{Condition, Distance, Filter, Point, PointId, Search};
use dbx::{ConnectOptions, Dbx, ErrorKind, RetryConfig};
use dbx_tests::loud;
use dbx_tests::{expect_kind, table};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn url() -> Option<String> {
    std::env::var("DBX_TEST_QDRANT_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

fn skipped(what: &str) {
    loud(&format!(
        "SKIPPED: no Qdrant (set DBX_TEST_QDRANT_URL, e.g. qdrant://127.0.0.1:6334, to run the Qdrant tests): {what}"
    ));
}

fn skipped_no_bin(what: &str) {
    loud(&format!(
        "SKIPPED: no Qdrant binary (set QDRANT_BIN to a qdrant executable to run this test on a throwaway server): {what}"
    ));
}

/// The shared test server, or `None` (said loudly) when there is none.
pub(crate) async fn connect() -> Option<Dbx> {
    let Some(url) = url() else {
        skipped("a vector conformance test");
        return None;
    };
    Some(Dbx::connect(&url).await.unwrap())
}

mod vector {
    dbx_tests::vector_conformance!(crate::qdrant::connect);
}

#[cfg(feature = "cache")]
async fn connect_cached() -> Option<Dbx> {
    let Some(url) = url() else {
        skipped("a cached vector search test");
        return None;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(
        Dbx::connect(&format!("{url}{sep}cache=true"))
            .await
            .unwrap(),
    )
}
#[cfg(feature = "cache")]
mod cache_vector {
    dbx_tests::cache_vector_conformance!(crate::qdrant::connect_cached);
}

use dbx_tests::fault::free_port;

// --- URLs and options (no server needed) ----------------------------------------

#[tokio::test]
async fn invalid_urls_and_parameters_are_config_errors() {
    for (url, says) in [
        ("qdrant://", "no host"),
        ("qdrant://127.0.0.1:6334/docs", "no path"),
        ("qdrant://127.0.0.1:6334?no_such_option=1", "no_such_option"),
        ("qdrant://127.0.0.1:6334?api_key=k3y-v4lue", "api_key"),
        ("qdrant://admin:k3y-v4lue@127.0.0.1:6334", "no user names"),
        ("qdrant://127.0.0.1:0", "port"),
        ("qdrant://127.0.0.1:99999", "port"),
        ("qdrant://127.0.0.1?timeout=soon", "timeout"),
        ("qdrant://127.0.0.1?pool_max_size=0", "pool_max_size"),
    ] {
        let e = expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(says), "{url}: {e}");
        assert!(!e.to_string().contains("k3y-v4lue"), "{url}: {e}");
        assert!(!e.is_transient(), "{e}");
    }
    // Both schemes reach the driver (and fail on the closed port, not on
    // the URL).
    let port = free_port();
    for scheme in ["qdrant", "qdrants"] {
        let e = Dbx::builder(&format!("{scheme}://127.0.0.1:{port}"))
            .connect_timeout(Duration::from_millis(800))
            .retry(RetryConfig::disabled())
            .connect()
            .await
            .unwrap_err();
        assert_ne!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert_eq!(e.backend(), Some("qdrant"), "{e}");
    }
}

#[tokio::test]
async fn unreachable_server_is_a_bounded_transient_error() {
    let port = free_port();
    let start = Instant::now();
    let e = Dbx::builder(&format!("qdrant://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(800))
        .connect()
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.backend(), Some("qdrant"));
}

// --- redaction -----------------------------------------------------------------

const KEY: &str = "k3y-v4lue-never-shown";

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(KEY), "{what} leaks the API key:\n{text}");
}

fn shown(x: &(impl std::fmt::Debug + ?Sized)) -> String {
    format!("{x:?} {x:#?}")
}

/// The API key never shows in `Debug`, `Display` or errors, whether
/// operations fail or succeed. (Logs and spans are audited with a global
/// subscriber in `tests/security.rs`, which has a test binary of its own.)
#[tokio::test]
async fn the_api_key_never_appears() {
    let mut seen = Vec::new();

    // Without a server: options, the builder, and connect errors.
    let closed = free_port();
    for url in [
        format!("qdrant://:{KEY}@127.0.0.1:{closed}"),
        format!("qdrants://:{KEY}@127.0.0.1:{closed}?timeout=2s"),
        format!("qdrant://x:{KEY}@127.0.0.1:{closed}"),
        format!("qdrant://127.0.0.1:{closed}?api_key={KEY}"),
        format!("qdrant://:{KEY}@127.0.0.1:{closed}/path"),
    ] {
        let o = ConnectOptions::from_url(&url).unwrap();
        seen.push(o.to_string());
        seen.push(shown(&o));
        let e = Dbx::builder(&url)
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
            .unwrap_err();
        seen.push(e.to_string());
        seen.push(shown(&e));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            seen.push(s.to_string());
            seen.push(format!("{s:?}"));
            src = s.source();
        }
    }
    let builder = Dbx::builder(&format!("qdrant://127.0.0.1:{closed}")).password(KEY);
    seen.push(shown(&builder));
    let e = builder.connect().await.unwrap_err();
    seen.push(e.to_string());
    seen.push(shown(&e));

    // With a server (one without a key ignores the header): operations that
    // succeed and fail, all traced.
    if let Some(base) = url() {
        let base = base.trim_end_matches('/');
        let with_key = base.replacen("://", &format!("://:{KEY}@"), 1);
        let db = Dbx::connect(&with_key).await.unwrap();
        let c = db.vectors().unwrap().collection(&table("redact"));
        c.create(2, Distance::Dot).await.unwrap();
        c.upsert_one(Point::new(1u64, vec![1.0, 0.0]))
            .await
            .unwrap();
        let hits = c.search(&Search::new(vec![1.0, 0.0], 1)).await.unwrap();
        assert_eq!(hits[0].id, PointId::Num(1));
        let e = expect_kind(
            c.upsert_one(Point::new(2u64, vec![1.0, 0.0, 0.0])).await,
            ErrorKind::InvalidInput,
        );
        seen.push(shown(&e));
        let e = expect_kind(
            db.vectors()
                .unwrap()
                .collection(&table("missing"))
                .count()
                .await,
            ErrorKind::NotFound,
        );
        seen.push(shown(&e));
        seen.push(shown(&db));
        seen.push(db.options().to_string());
        seen.push(shown(db.options()));
        seen.push(shown(db.qdrant().unwrap()));
        seen.push(shown(&db.health().await.unwrap()));
        seen.push(shown(&db.stats()));
        c.drop().await.unwrap();
        db.close().await;
    } else {
        skipped("the server half of the redaction test");
    }
    for s in &seen {
        assert_clean("output", s);
    }
}

// --- against the shared server ------------------------------------------------------

#[tokio::test]
async fn escape_hatch_reaches_the_official_client() {
    let Some(db) = connect().await else {
        return;
    };
    assert_eq!(db.backend_name(), "qdrant");
    let raw = db.qdrant().unwrap();
    assert!(!raw.server_version().is_empty());
    let health = raw.client().unwrap().health_check().await.unwrap();
    assert_eq!(health.version, raw.server_version());
    // What dbx creates, the raw client sees, and the other way round.
    let name = table("hatch");
    let c = db.vectors().unwrap().collection(&name);
    c.create(3, Distance::Euclid).await.unwrap();
    assert!(
        raw.client()
            .unwrap()
            .collection_exists(&name)
            .await
            .unwrap()
    );
    let h = db.health().await.unwrap();
    assert_eq!(h.backend, "qdrant");
    raw.client()
        .unwrap()
        .delete_collection(&name)
        .await
        .unwrap();
    assert_eq!(c.info().await.unwrap(), None);
    // Other backends' hatches say what this is.
    #[cfg(feature = "mongo")]
    {
        let e = expect_kind(db.mongo().map(drop), ErrorKind::Unsupported);
        assert!(e.to_string().contains("qdrant"), "{e}");
    }
    db.close().await;
    expect_kind(db.qdrant().map(drop), ErrorKind::Closed);
    expect_kind(c.count().await, ErrorKind::Closed);
    expect_kind(db.health().await, ErrorKind::Closed);
}

#[tokio::test]
async fn payloads_keep_their_types_on_the_server() {
    let Some(db) = connect().await else {
        return;
    };
    let c = db.vectors().unwrap().collection(&table("payload_types"));
    c.create(2, Distance::Cosine).await.unwrap();
    let payload = json!({
        "int": 7, "neg": -3, "max": i64::MAX, "min": i64::MIN,
        "whole_float": 2.0, "float": -0.125, "tiny": 1e-300,
        "s": "", "b": false, "n": null, "empty_list": [], "empty_obj": {},
        "mixed": [1, 1.5, "x", null, [true], {"k": [2]}],
    });
    c.upsert_one(
        Point::new(1u64, vec![1.0, 0.0])
            .with_payload(payload.clone())
            .unwrap(),
    )
    .await
    .unwrap();
    let got = c.get_one(1u64).await.unwrap().unwrap();
    assert_eq!(
        dbx::serde_json::Value::Object(got.payload.unwrap()),
        payload
    );
    // Integers match as integers, whole floats do not.
    let n = c
        .count_where(&Filter::new().must(Condition::eq("int", 7)))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = c
        .count_where(&Filter::new().must(Condition::eq("whole_float", 2)))
        .await
        .unwrap();
    assert_eq!(n, 0, "Qdrant matches integers against integers only");
    // An integer the gRPC Value cannot carry is refused before sending.
    let big = Point::new(2u64, vec![0.0, 1.0])
        .with_payload(json!({"big": u64::MAX}))
        .unwrap();
    let e = expect_kind(c.upsert_one(big).await, ErrorKind::InvalidInput);
    assert!(e.to_string().contains("big"), "{e}");
    assert_eq!(c.count().await.unwrap(), 1);
    c.drop().await.unwrap();
}

#[tokio::test]
async fn server_rejections_are_typed() {
    let Some(db) = connect().await else {
        return;
    };
    let c = db.vectors().unwrap().collection(&table("rejections"));
    c.create(4, Distance::Dot).await.unwrap();
    let e = expect_kind(c.create(4, Distance::Dot).await, ErrorKind::Conflict);
    assert_eq!(e.backend(), Some("qdrant"));
    let e = expect_kind(
        c.upsert_one(Point::new(1u64, vec![1.0; 3])).await,
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("expected 4, got 3"), "{e}");
    assert!(
        std::error::Error::source(&e).is_some(),
        "the server's error is kept"
    );
    let e = expect_kind(
        c.search(&Search::new(vec![1.0; 2], 1)).await,
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("dimension"), "{e}");
    assert_eq!(c.count().await.unwrap(), 0);
    // Below the handle (which checks lengths within a call): Qdrant itself
    // refuses a request with one bad vector whole.
    let store = dbx::driver::Backend::vectors(db.qdrant().unwrap()).unwrap();
    let e = expect_kind(
        store
            .upsert(
                c.name(),
                &[
                    Point::new(5u64, vec![1.0; 4]),
                    Point::new(6u64, vec![1.0; 3]),
                ],
            )
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("expected 4, got 3"), "{e}");
    // The bad point is never written. Whether the good one before it is
    // depends on the server: Qdrant 1.19 refuses the request whole, 1.16
    // applies the points before the bad one (seen with both).
    assert!(
        c.get(&[PointId::from(6u64)]).await.unwrap().is_empty(),
        "the bad point is not written"
    );
    c.delete(&[PointId::from(5u64)]).await.unwrap();
    c.drop().await.unwrap();
    let e = expect_kind(c.count().await, ErrorKind::NotFound);
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn collections_with_named_vectors_are_unsupported_not_misread() {
    use dbx::qdrant::qdrant_client::qdrant::{
        CreateCollectionBuilder, Distance as QDistance, VectorParamsBuilder, VectorsConfigBuilder,
    };
    let Some(db) = connect().await else {
        return;
    };
    let name = table("named");
    let mut vectors = VectorsConfigBuilder::default();
    vectors.add_named_vector_params("text", VectorParamsBuilder::new(3, QDistance::Cosine));
    db.qdrant()
        .unwrap()
        .client()
        .unwrap()
        .create_collection(CreateCollectionBuilder::new(&name).vectors_config(vectors))
        .await
        .unwrap();
    let c = db.vectors().unwrap().collection(&name);
    let e = expect_kind(c.info().await, ErrorKind::Unsupported);
    assert!(e.to_string().contains("named vectors"), "{e}");
    assert!(db.vectors().unwrap().list().await.unwrap().contains(&name));
    assert_eq!(c.count().await.unwrap(), 0);
    assert!(c.drop().await.unwrap());
}

// --- throwaway servers ----------------------------------------------------------------

fn qdrant_bin() -> Option<PathBuf> {
    std::env::var_os("QDRANT_BIN")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

/// A Qdrant of this test's own on free loopback ports, killed when dropped.
struct TempQdrant {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TempQdrant {
    fn start(bin: &PathBuf, api_key: Option<&str>) -> TempQdrant {
        TempQdrant::start_with(bin, api_key, None, false)
    }

    /// A one-node Qdrant cluster (distributed mode: what custom sharding
    /// needs), ready for collections.
    async fn start_cluster(bin: &PathBuf) -> TempQdrant {
        let server = TempQdrant::start_with(bin, None, None, true);
        // Consensus settles after the ports open.
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("qdrant://127.0.0.1:{}", server.port);
        loop {
            if let Ok(db) = Dbx::connect(&url).await {
                let raw = db.qdrant().unwrap().client().unwrap();
                if raw.list_collections().await.is_ok() && raw.health_check().await.is_ok() {
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the Qdrant cluster did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// With TLS on the gRPC port when `tls` gives certificate and key files.
    fn start_with(
        bin: &PathBuf,
        api_key: Option<&str>,
        tls: Option<(&std::path::Path, &std::path::Path)>,
        cluster: bool,
    ) -> TempQdrant {
        let dir = tempfile::tempdir().unwrap();
        // Hold both ports until the server is about to bind them.
        let grpc = TcpListener::bind("127.0.0.1:0").unwrap();
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = grpc.local_addr().unwrap().port();
        let http_port = http.local_addr().unwrap().port();
        drop((grpc, http));
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir.path())
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__GRPC_PORT", port.to_string())
            .env("QDRANT__SERVICE__HTTP_PORT", http_port.to_string())
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .env("QDRANT__STORAGE__STORAGE_PATH", dir.path().join("storage"))
            .env(
                "QDRANT__STORAGE__SNAPSHOTS_PATH",
                dir.path().join("snapshots"),
            )
            .env("QDRANT__LOG_LEVEL", "WARN")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(key) = api_key {
            cmd.env("QDRANT__SERVICE__API_KEY", key);
        }
        if cluster {
            let p2p = free_port();
            cmd.env("QDRANT__CLUSTER__ENABLED", "true")
                .env("QDRANT__CLUSTER__P2P__PORT", p2p.to_string())
                .args(["--uri", &format!("http://127.0.0.1:{p2p}")]);
        }
        if let Some((cert, key)) = tls {
            cmd.env("QDRANT__SERVICE__ENABLE_TLS", "true")
                .env("QDRANT__TLS__CERT", cert)
                .env("QDRANT__TLS__KEY", key);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Qdrant did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        TempQdrant {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for TempQdrant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_wrong_api_key_is_a_permanent_auth_error() {
    let Some(bin) = qdrant_bin() else {
        skipped_no_bin("a wrong API key is a permanent Auth error");
        return;
    };
    let right = "right-key-5f2c";
    let server = TempQdrant::start(&bin, Some(right));
    let port = server.port;
    for url in [
        format!("qdrant://:{KEY}@127.0.0.1:{port}"),
        format!("qdrant://127.0.0.1:{port}"),
    ] {
        let start = Instant::now();
        let e = Dbx::builder(&url)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert!(!e.is_transient(), "{e}");
        assert_eq!(e.attempts(), 1, "Auth is not retried: {e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_clean("the error", &format!("{e} {e:?}"));
    }
    // The right key, in the URL or through the builder.
    for db in [
        Dbx::connect(&format!("qdrant://:{right}@127.0.0.1:{port}"))
            .await
            .unwrap(),
        Dbx::builder(&format!("qdrant://127.0.0.1:{port}"))
            .password(right)
            .connect()
            .await
            .unwrap(),
    ] {
        assert!(!format!("{db:?} {}", db.options()).contains(right));
        let c = db.vectors().unwrap().collection(&table("authed"));
        c.create(2, Distance::Cosine).await.unwrap();
        c.upsert_one(Point::new(1u64, vec![1.0, 0.0]))
            .await
            .unwrap();
        assert_eq!(c.count().await.unwrap(), 1);
        c.drop().await.unwrap();
    }
}

#[tokio::test]
async fn a_server_that_goes_away_gives_bounded_transient_errors() {
    let Some(bin) = qdrant_bin() else {
        skipped_no_bin("a server that goes away gives bounded transient errors");
        return;
    };
    let server = TempQdrant::start(&bin, None);
    let db = Dbx::builder(&format!("qdrant://127.0.0.1:{}", server.port))
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .retry(RetryConfig::disabled())
        .connect()
        .await
        .unwrap();
    let c = db.vectors().unwrap().collection("things");
    c.create(2, Distance::Dot).await.unwrap();
    c.upsert_one(Point::new(1u64, vec![1.0, 0.0]))
        .await
        .unwrap();
    drop(server);
    for _ in 0..3 {
        let start = Instant::now();
        let e = c.count().await.unwrap_err();
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
        let e = db.health().await.unwrap_err();
        assert!(e.is_transient(), "{e}");
    }
}

/// Several URLs (`qdrant://h1:p1,h2:p2`, the nodes of one cluster, each of
/// which serves any request), stood in for by two independent servers
/// holding the same collection: stop the first, and searches continue on
/// the second (the failed attempt is retried there), the breaker stays
/// closed, `stats()` shows the first avoided and `health()` shows it down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_urls_fail_over_when_one_server_stops() {
    let Some(bin) = qdrant_bin() else {
        skipped_no_bin("several URLs fail over when one server stops");
        return;
    };
    let (a, b) = (TempQdrant::start(&bin, None), TempQdrant::start(&bin, None));
    let name = table("failover");
    for port in [a.port, b.port] {
        let db = Dbx::connect(&format!("qdrant://127.0.0.1:{port}"))
            .await
            .unwrap();
        let c = db.vectors().unwrap().collection(&name);
        c.create(2, Distance::Cosine).await.unwrap();
        c.upsert_one(
            Point::new(1u64, vec![1.0, 0.0])
                .with_payload(json!({ "server": port }))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let db = Dbx::builder(&format!(
        "qdrant://127.0.0.1:{},127.0.0.1:{}",
        a.port, b.port
    ))
    .timeout(Duration::from_secs(2))
    .connect_timeout(Duration::from_secs(2))
    .connect()
    .await
    .unwrap();
    let c = db.vectors().unwrap().collection(&name);
    let served_by = |hits: Vec<dbx::vector::ScoredPoint>| {
        hits[0].payload.as_ref().unwrap()["server"]
            .as_u64()
            .unwrap()
    };
    let search = Search::new(vec![1.0, 0.0], 1).with_payload(true);
    assert_eq!(
        served_by(c.search(&search).await.unwrap()),
        u64::from(a.port),
        "calls go to the first URL"
    );
    let health = db.health().await.unwrap();
    assert_eq!(health.nodes.len(), 2);
    assert!(health.nodes.iter().all(|n| n.is_up()), "{:?}", health.nodes);

    let (first, second) = (
        format!("127.0.0.1:{}", a.port),
        format!("127.0.0.1:{}", b.port),
    );
    drop(a);
    for _ in 0..20 {
        let start = Instant::now();
        let hits = c.search(&search).await.unwrap();
        assert_eq!(served_by(hits), u64::from(b.port));
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }
    assert_eq!(c.count().await.unwrap(), 1);
    let nodes = db.stats().nodes;
    assert_eq!(
        nodes
            .iter()
            .map(|n| (n.addr.as_str(), n.state))
            .collect::<Vec<_>>(),
        [
            (first.as_str(), dbx::NodeState::Avoided),
            (second.as_str(), dbx::NodeState::Up)
        ],
        "{nodes:?}"
    );
    assert_eq!(db.breaker_state(), dbx::BreakerState::Closed);
    assert_eq!(db.stats().breaker_opened, 0);
    let health = db.health().await.unwrap();
    assert_eq!(
        health.nodes.iter().map(|n| n.state).collect::<Vec<_>>(),
        [dbx::NodeState::Down, dbx::NodeState::Up],
        "{:?}",
        health.nodes
    );
    // With every server gone: typed transient errors, within the timeout.
    drop(b);
    let start = Instant::now();
    let e = c.search(&search).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_transient(), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

/// `read_consistency`, `write_ordering` and `shard_key` reach the server
/// (a one-node cluster: custom sharding needs distributed mode): the
/// consistency options are accepted; a collection sharded by a custom key
/// (made with the official client) takes points and searches through a
/// handle whose URL names the key, and each key sees its own points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_options_and_shard_keys_reach_the_server() {
    let Some(bin) = qdrant_bin() else {
        skipped_no_bin("consistency options and shard keys");
        return;
    };
    let server = TempQdrant::start_cluster(&bin).await;
    let url = format!("qdrant://127.0.0.1:{}", server.port);
    let db = Dbx::connect(&format!(
        "{url}?read_consistency=majority&write_ordering=strong"
    ))
    .await
    .unwrap();
    let c = db.vectors().unwrap().collection(&table("consistent"));
    c.create(2, Distance::Cosine).await.unwrap();
    c.upsert_one(Point::new(1u64, vec![1.0, 0.0]))
        .await
        .unwrap();
    assert_eq!(c.count().await.unwrap(), 1);
    assert_eq!(
        c.search(&Search::new(vec![1.0, 0.0], 5))
            .await
            .unwrap()
            .len(),
        1
    );
    c.drop().await.unwrap();

    use dbx::qdrant::qdrant_client::qdrant as q;
    let name = table("sharded");
    let raw = db.qdrant().unwrap().client().unwrap();
    raw.create_collection(
        q::CreateCollectionBuilder::new(&name)
            .vectors_config(q::VectorParamsBuilder::new(2, q::Distance::Cosine))
            .sharding_method(q::ShardingMethod::Custom.into()),
    )
    .await
    .unwrap();
    for key in ["tenant-a", "tenant-b"] {
        raw.create_shard_key(q::CreateShardKeyRequestBuilder::new(&name).request(
            q::CreateShardKeyBuilder::default().shard_key(q::shard_key::Key::Keyword(key.into())),
        ))
        .await
        .unwrap();
    }
    let tenant = |key: &str| format!("{url}?shard_key={key}");
    let a = Dbx::connect(&tenant("tenant-a")).await.unwrap();
    let b = Dbx::connect(&tenant("tenant-b")).await.unwrap();
    let (ca, cb) = (
        a.vectors().unwrap().collection(&name),
        b.vectors().unwrap().collection(&name),
    );
    ca.upsert_one(Point::new(1u64, vec![1.0, 0.0]))
        .await
        .unwrap();
    ca.upsert_one(Point::new(2u64, vec![0.0, 1.0]))
        .await
        .unwrap();
    cb.upsert_one(Point::new(3u64, vec![1.0, 0.0]))
        .await
        .unwrap();
    assert_eq!(ca.count().await.unwrap(), 2);
    assert_eq!(cb.count().await.unwrap(), 1);
    let hits = cb.search(&Search::new(vec![1.0, 0.0], 5)).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        [PointId::from(3u64)]
    );
    assert!(ca.get(&[PointId::from(3u64)]).await.unwrap().is_empty());
    cb.delete(&[PointId::from(3u64)]).await.unwrap();
    assert_eq!(cb.count().await.unwrap(), 0);
    assert_eq!(ca.count().await.unwrap(), 2);
    // Without a key, a write to a custom-sharded collection is the
    // server's error, typed.
    let e = db
        .vectors()
        .unwrap()
        .collection(&name)
        .upsert_one(Point::new(9u64, vec![1.0, 0.0]))
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    raw.delete_collection(&name).await.unwrap();
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_permanent_connect_error() {
    let Some(bin) = qdrant_bin() else {
        skipped_no_bin("an untrusted server certificate is a permanent Connect error");
        return;
    };
    // A self-signed certificate, which no root store trusts.
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        loud("SKIPPED: no openssl CLI to make a certificate: the TLS test");
        return;
    }
    let server = TempQdrant::start_with(&bin, None, Some((&cert, &key)), false);
    // qdrants:// speaks TLS (rustls on ring) and refuses the certificate.
    let start = Instant::now();
    let e = Dbx::builder(&format!("qdrants://127.0.0.1:{}", server.port))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(!e.is_transient(), "{e}");
    assert!(e.is_never_sent(), "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
}
