//! Redis Sentinel: the key-value conformance suite through the sentinels,
//! bad URLs, and the primary killed with `kill -9` under write load.
//!
//! The shared setup is `DBX_TEST_REDIS_SENTINEL_URL` (scripts/test.sh starts
//! one with scripts/start-redis-sentinel.sh: a primary, a replica and 3
//! sentinels). Without it the tests that need it print a loud `SKIPPED` line
//! and return. The failover test starts a setup of its own.

use dbx::redis::redis::{self as rr, cmd};
use dbx::{Dbx, ErrorKind};
use dbx_tests::expect_kind;
use dbx_tests::failover::{Topology, WriteLoad, kill9, process_id};
use dbx_tests::loud;
use std::time::{Duration, Instant};

fn url() -> Option<String> {
    std::env::var("DBX_TEST_REDIS_SENTINEL_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub(crate) async fn connect() -> Option<Dbx> {
    let Some(url) = url() else {
        loud(
            "SKIPPED: no Redis Sentinel (set DBX_TEST_REDIS_SENTINEL_URL, e.g. \
             $(scripts/start-redis-sentinel.sh)): a Redis Sentinel test",
        );
        return None;
    };
    Some(Dbx::connect(&url).await.unwrap())
}

mod kv {
    dbx_tests::kv_conformance!(crate::redis_sentinel::connect);
}

/// The sentinels' first address, as `redis://host:port`.
fn first_sentinel(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let first = rest.split([',', '/']).next().unwrap();
    format!("redis://{first}")
}

/// What the sentinels name as the primary of `dbxmaster`.
async fn named_primary(url: &str) -> Option<(String, u16)> {
    let client = rr::Client::open(first_sentinel(url)).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg("dbxmaster")
        .query_async(&mut conn)
        .await
        .ok()
}

#[tokio::test]
async fn bad_sentinel_urls_are_typed_errors() {
    for (url, needle) in [
        ("redis+sentinel://127.0.0.1:1", "no master"),
        ("redis+sentinel://127.0.0.1:1/", "no master"),
        ("redis+sentinel://127.0.0.1:1/m/x", "database index"),
        ("redis+sentinel://127.0.0.1:1,127.0.0.1:1/m", "twice"),
        ("redis://127.0.0.1:1?sentinel_password=x", "redis+sentinel"),
        (
            "redis+sentinel://127.0.0.1:1/m?sentinel_username=u",
            "sentinel_password",
        ),
    ] {
        let e = expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(needle), "{url}: {e}");
        assert!(!e.to_string().contains("=x"), "{e}");
    }
    // No sentinel listening: a transient Connect error naming each one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = expect_kind(
        Dbx::connect(&format!(
            "redis+sentinel://127.0.0.1:{port}/m?connect_timeout=2s"
        ))
        .await,
        ErrorKind::Connect,
    );
    assert!(e.to_string().contains(&port.to_string()), "{e}");
    // A master the sentinels do not know.
    let Some(url) = url() else {
        loud("SKIPPED: no Redis Sentinel: unknown master name");
        return;
    };
    let started = Instant::now();
    let e = expect_kind(
        Dbx::connect(&url.replace("/dbxmaster", "/no-such-master")).await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("no-such-master"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Through the sentinels, dbx runs on the primary itself: raw commands,
/// exclusive connections and pub/sub work as on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_on_the_primary() {
    let Some(db) = connect().await else { return };
    let raw = db.redis().unwrap();
    assert!(!raw.is_cluster());
    let info: String = raw.cmd(cmd("INFO").arg("replication")).await.unwrap();
    assert!(info.contains("role:master"), "{info}");
    let (_, named) = named_primary(&url().unwrap()).await.unwrap();
    let nodes = raw.probe_nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].addr.ends_with(&format!(":{named}")), "{nodes:?}");
    assert_eq!(nodes[0].error, None);
    let server: String = raw.cmd(cmd("INFO").arg("server")).await.unwrap();
    assert!(server.contains(&format!("tcp_port:{named}")), "{server}");
    let mut ex = raw.exclusive().await.unwrap();
    let n: i64 = ex.cmd(&cmd("DBSIZE")).await.unwrap();
    assert!(n >= 0);
    let health = db.health().await.unwrap();
    assert_eq!(
        health.nodes, nodes,
        "health shows the primary the sentinels named"
    );
    assert_eq!(db.stats().nodes.len(), 1);
    assert_eq!(db.stats().nodes[0].role, dbx::NodeRole::Primary);
}

/// `kill -9` the primary while 20 tasks write: the sentinels promote the
/// replica, dbx follows (`+switch-master`, or asking again after an
/// error), every call ends within its timeout, failed writes are typed
/// transient errors, and every acknowledged write is on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_under_write_load_follows_the_promotion() {
    if url().is_none() {
        loud(
            "SKIPPED: no Redis Sentinel test run (set DBX_TEST_REDIS_SENTINEL_URL): sentinel failover",
        );
        return;
    }
    let setup = Topology::start("start-redis-sentinel.sh");
    let timeout = Duration::from_secs(5);
    let db = Dbx::connect(&format!("{}?timeout=5s", setup.url))
        .await
        .unwrap();
    let raw = db.redis().unwrap();
    let old = named_primary(&setup.url).await.unwrap();
    let info: String = raw.cmd(cmd("INFO").arg("server")).await.unwrap();
    let kv = db.kv().unwrap();
    let load = WriteLoad::start(kv, 20, "dbx-failover:");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    kill9(process_id(&info));

    let mut promoted = None;
    while killed.elapsed() < Duration::from_secs(30) {
        if let Some(now) = named_primary(&setup.url).await
            && now != old
        {
            promoted = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let promoted = promoted.expect("the sentinels promoted no replica within 30 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let f = load.finish(kv, killed, promoted).await;
    loud(&format!(
        "[measure] redis sentinel failover: new primary named {:?} after the kill (down-after 1 s); {f:?}",
        promoted - killed
    ));
    // Writes go to the new primary.
    let replication: String = raw.cmd(cmd("INFO").arg("replication")).await.unwrap();
    assert!(replication.contains("role:master"), "{replication}");
    let server: String = raw.cmd(cmd("INFO").arg("server")).await.unwrap();
    assert_ne!(process_id(&server), process_id(&info));
    assert!(
        f.longest_call <= timeout + Duration::from_millis(500),
        "a write took {:?}, beyond its {timeout:?} timeout",
        f.longest_call
    );
    assert_eq!(f.lost, 0, "acknowledged writes lost");
    assert!(
        f.acknowledged > 100,
        "only {} writes acknowledged",
        f.acknowledged
    );
    db.close().await;
}

/// `replica_reads=true`: key-value reads run on a replica (its GET count
/// grows), writes on the primary; a read may be stale, so the test waits
/// for replication before reading back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reads_run_on_a_replica() {
    let Some(url) = url() else {
        return loud("SKIPPED: no Redis Sentinel: replica reads");
    };
    let client = rr::Client::open(first_sentinel(&url)).unwrap();
    let mut sentinel = client.get_multiplexed_async_connection().await.unwrap();
    let replicas: Vec<std::collections::HashMap<String, String>> = cmd("SENTINEL")
        .arg("REPLICAS")
        .arg("dbxmaster")
        .query_async(&mut sentinel)
        .await
        .unwrap();
    let port = &replicas[0]["port"];
    let replica = rr::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut replica = replica.get_multiplexed_async_connection().await.unwrap();
    let gets = async |conn: &mut rr::aio::MultiplexedConnection| -> u64 {
        let stats: String = cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await
            .unwrap();
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };

    let db = Dbx::connect(&format!("{url}?replica_reads=true"))
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    let key = format!("{}k", dbx_tests::prefix("replica-reads"));
    kv.set(&key, b"v", None).await.unwrap();
    let before = gets(&mut replica).await;
    let mut seen = false;
    for _ in 0..50 {
        if kv.get(&key).await.unwrap().as_deref() == Some(&b"v"[..]) {
            seen = true;
        }
    }
    assert!(seen, "the replica never had the key");
    let after = gets(&mut replica).await;
    assert!(
        after >= before + 50,
        "{before} -> {after} GETs on the replica"
    );
    assert!(kv.delete(&key).await.unwrap());
    let e = expect_kind(
        Dbx::connect("redis://127.0.0.1:1?replica_reads=true").await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("redis+sentinel"), "{e}");
}
