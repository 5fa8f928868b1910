//! Redis Cluster: the key-value conformance suite, unchanged, on a 6-node
//! cluster (3 primaries + 3 replicas), cluster-aware raw commands, bad
//! URLs and seeds, and a primary killed with `kill -9` under write load.
//!
//! The shared cluster is `DBX_TEST_REDIS_CLUSTER_URL` (scripts/test.sh starts
//! one with scripts/start-redis-cluster.sh). Without it the tests that need
//! it print a loud `SKIPPED` line and return. The failover test starts a
//! cluster of its own with the same script and stops it when done.

use dbx::redis::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use dbx::redis::redis::{self as rr, cmd};
use dbx::{ConnectOptions, Dbx, ErrorKind};
use dbx_tests::failover::{Topology, WriteLoad, kill9, process_id};
use dbx_tests::loud;
use dbx_tests::{expect_kind, prefix};
use std::time::{Duration, Instant};

fn url() -> Option<String> {
    std::env::var("DBX_TEST_REDIS_CLUSTER_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The shared test cluster, or `None` (said loudly) when there is none.
pub(crate) async fn connect() -> Option<Dbx> {
    let Some(url) = url() else {
        loud(
            "SKIPPED: no Redis Cluster (set DBX_TEST_REDIS_CLUSTER_URL, e.g. \
             $(scripts/start-redis-cluster.sh)): a Redis Cluster test",
        );
        return None;
    };
    Some(Dbx::connect(&url).await.unwrap())
}

mod kv {
    dbx_tests::kv_conformance!(crate::redis_cluster::connect);
}

/// Keys of several slots (and so of several primaries) through the raw
/// API: multi-key commands are split by slot; a transaction or pipeline
/// over several slots and SCAN are refused naming why; hash tags keep keys
/// together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_commands_are_routed_by_slot() {
    let Some(db) = connect().await else { return };
    let raw = db.redis().unwrap();
    assert!(raw.is_cluster());
    let p = prefix("cluster-raw");
    let keys: Vec<String> = (0..30).map(|i| format!("{p}{i}")).collect();
    let mut mset = cmd("MSET");
    for k in &keys {
        mset.arg(k).arg(format!("v-{k}"));
    }
    let () = raw.cmd(&mset).await.unwrap();
    let values: Vec<String> = raw.cmd(cmd("MGET").arg(&keys)).await.unwrap();
    assert_eq!(
        values,
        keys.iter().map(|k| format!("v-{k}")).collect::<Vec<_>>()
    );
    let n: i64 = raw.cmd(cmd("EXISTS").arg(&keys)).await.unwrap();
    assert_eq!(n, 30);

    // The keys really are spread over the primaries.
    let mut owners = std::collections::HashSet::new();
    let nodes: String = raw.cmd(cmd("CLUSTER").arg("NODES")).await.unwrap();
    for k in &keys {
        let slot: i64 = raw.cmd(cmd("CLUSTER").arg("KEYSLOT").arg(k)).await.unwrap();
        let owner = nodes.lines().find(|l| {
            l.contains("master")
                && l.split(' ').skip(8).any(|r| match r.split_once('-') {
                    Some((lo, hi)) => (lo.parse().unwrap()..=hi.parse().unwrap()).contains(&slot),
                    None => r.parse::<i64>().ok() == Some(slot),
                })
        });
        owners.insert(owner.unwrap().split(' ').next().unwrap().to_owned());
    }
    assert_eq!(owners.len(), 3, "30 keys on {} primaries", owners.len());

    let mut tx = rr::pipe();
    tx.atomic().set(&keys[0], "x").set(&keys[1], "y");
    let e = expect_kind(raw.pipeline::<()>(&tx).await, ErrorKind::InvalidInput);
    assert!(e.to_string().contains("hash tag"), "{e}");
    assert_eq!(
        raw.cmd::<String>(cmd("GET").arg(&keys[0])).await.unwrap(),
        format!("v-{}", keys[0]),
        "nothing of the refused transaction ran"
    );
    let e = expect_kind(
        raw.cmd::<rr::Value>(cmd("SCAN").arg(0)).await,
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("every primary"), "{e}");

    let tag = format!("{{{p}user}}");
    let mut tx = rr::pipe();
    tx.atomic()
        .set(format!("{tag}:a"), 1)
        .incr(format!("{tag}:a"), 41)
        .get(format!("{tag}:a"));
    let ((), n, got): ((), i64, i64) = raw.pipeline(&tx).await.unwrap();
    assert_eq!((n, got), (42, 42));

    expect_kind(raw.exclusive().await, ErrorKind::Unsupported);
    expect_kind(raw.shared_connection(), ErrorKind::Unsupported);
    let nodes = raw.probe_nodes().await.unwrap();
    assert_eq!(nodes.len(), 6, "{nodes:?}");
    assert!(
        nodes.iter().all(|n| n.error.is_none() && n.is_up()),
        "{nodes:?}"
    );
    let primaries: Vec<_> = nodes
        .iter()
        .filter(|n| n.role == dbx::redis::NodeRole::Primary)
        .collect();
    assert_eq!(primaries.len(), 3);
    let slots: u32 = primaries
        .iter()
        .flat_map(|n| &n.slots)
        .map(|(lo, hi)| u32::from(hi - lo) + 1)
        .sum();
    assert_eq!(slots, 16384);
    let mut conn = raw.cluster_connection().unwrap();
    let pong: String = rr::AsyncCommands::ping(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let () = raw.cmd(cmd("DEL").arg(&keys)).await.unwrap_or(());
    let _: i64 = raw.cmd(cmd("DEL").arg(format!("{tag}:a"))).await.unwrap();
    let health = db.health().await.unwrap();
    assert_eq!(
        health
            .nodes
            .iter()
            .map(|n| (&n.addr, n.role))
            .collect::<Vec<_>>(),
        nodes.iter().map(|n| (&n.addr, n.role)).collect::<Vec<_>>()
    );
    assert_eq!(db.stats().nodes.len(), 6);
}

/// A cluster URL that cannot work is a typed error naming the problem,
/// within the connect timeout.
#[tokio::test]
async fn bad_cluster_urls_and_seeds_are_typed_errors() {
    for (url, needle) in [
        ("redis+cluster://", "no node"),
        ("redis+cluster://127.0.0.1:1,,127.0.0.1:2", "empty entry"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7000", "twice"),
        ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
        ("redis://127.0.0.1:7000,127.0.0.1:7001", "redis+cluster://"),
        ("redis+cluster://a:1,redis://b:2", "port"),
        ("redis+cluster://a:1?tls_insecure=true", "rediss"),
    ] {
        let e = expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
    // A seed that is a plain Redis server.
    let started = Instant::now();
    let e = expect_kind(
        Dbx::connect("redis+cluster://127.0.0.1:6379?connect_timeout=5s").await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("not in cluster mode"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nobody listens: refused, well within the connect timeout.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Dbx::connect(&format!(
        "redis+cluster://127.0.0.1:{port}?connect_timeout=2s"
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{e}"
    );
    // Secrets stay out of errors.
    let e = Dbx::connect(&format!(
        "redis+cluster://:hunter2@127.0.0.1:{port}?connect_timeout=1s"
    ))
    .await
    .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    let o = ConnectOptions::from_url("redis+cluster://:hunter2@h1:1,h2:2").unwrap();
    assert!(!format!("{o:?}").contains("hunter2"));
}

/// `(host, port)` of the primary serving `key`, from CLUSTER SLOTS of a
/// random node (`None` when that node does not answer).
async fn primary_of(db: &Dbx, key: &str) -> Option<(String, u16)> {
    let raw = db.redis().unwrap();
    let slot: i64 = raw.cmd(cmd("CLUSTER").arg("KEYSLOT").arg(key)).await.ok()?;
    let v: rr::Value = raw.cmd(cmd("CLUSTER").arg("SLOTS")).await.ok()?;
    let rr::Value::Array(ranges) = v else {
        panic!("{v:?}")
    };
    for r in ranges {
        let rr::Value::Array(parts) = r else { panic!() };
        let lo: i64 = rr::from_redis_value(parts[0].clone()).unwrap();
        let hi: i64 = rr::from_redis_value(parts[1].clone()).unwrap();
        if (lo..=hi).contains(&slot) {
            let rr::Value::Array(node) = parts[2].clone() else {
                panic!()
            };
            let host: String = rr::from_redis_value(node[0].clone()).unwrap();
            let port: u16 = rr::from_redis_value(node[1].clone()).unwrap();
            return Some((host, port));
        }
    }
    None
}

/// `kill -9` the primary that serves every key of the write load, while
/// 20 tasks write: its replica takes over (cluster-node-timeout 1 s), dbx
/// follows the new slot map without any action, every call ends within its
/// timeout, failed writes are typed transient errors, and every write that
/// was acknowledged is there afterwards. Prints the figures of the README's
/// reliability table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_primary_under_write_load_loses_no_acknowledged_write() {
    if url().is_none() {
        loud(
            "SKIPPED: no Redis Cluster test run (set DBX_TEST_REDIS_CLUSTER_URL): cluster failover",
        );
        return;
    }
    let cluster = Topology::start("start-redis-cluster.sh");
    let timeout = Duration::from_secs(5);
    let db = Dbx::connect(&format!("{}?timeout=5s", cluster.url))
        .await
        .unwrap();
    let tag = "{dbx-failover}:";
    let (host, port) = primary_of(&db, tag).await.unwrap();
    let mut conn = db.redis().unwrap().cluster_connection().unwrap();
    let info: String = rr::from_redis_value(
        conn.route_command(
            cmd("INFO").arg("server").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port,
            }),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    // A second load on a slot of another primary: the breaker is per
    // database, but one primary's failure must not stop the others' slots.
    let mut other = None;
    for i in 0..100 {
        let t = format!("{{dbx-healthy-{i}}}:");
        if primary_of(&db, &t)
            .await
            .is_some_and(|p| p != (host.clone(), port))
        {
            other = Some(t);
            break;
        }
    }
    let other = other.expect("no tag on another primary");
    let kv = db.kv().unwrap();
    let load = WriteLoad::start(kv, 20, tag);
    let healthy = WriteLoad::start(kv, 4, &other);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    kill9(process_id(&info));

    // The new primary is ready when another node serves the slot. Redis
    // elects it in about 2 s (cluster-node-timeout 1 s); on a loaded CI
    // machine gossip can take much longer, and how fast Redis elects is not
    // what this test is about, so the wait is generous and a miss prints
    // every node's view and log.
    let mut promoted = None;
    while killed.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(now)) =
            tokio::time::timeout(Duration::from_secs(1), primary_of(&db, tag)).await
            && now != (host.clone(), port)
        {
            promoted = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(promoted) = promoted else {
        panic!(
            "no node serves the killed primary's slot 60 s after the kill \
             (dbx's view; the nodes' own view and logs follow)\n{}",
            cluster.diagnostics()
        );
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let f = load.finish(kv, killed, promoted).await;
    let h = healthy.finish(kv, killed, killed).await;
    loud(&format!(
        "[measure] redis cluster failover: new primary {:?} after the kill (cluster-node-timeout 1 s); {f:?}; \
         writes to another primary meanwhile: {h:?}; breaker opened {} times",
        promoted - killed,
        db.stats().breaker_opened
    ));
    assert_eq!(h.lost, 0, "acknowledged writes to the healthy primary lost");
    assert!(
        !h.kinds.contains("circuit_open"),
        "one primary's failure opened the breaker for the others: {h:?}"
    );
    assert_eq!(
        db.stats().breaker_opened,
        0,
        "the breaker opened on one node's failure"
    );
    let health = db.health().await.unwrap();
    assert_eq!(health.nodes.len(), 6, "{:?}", health.nodes);
    assert!(
        health.nodes.iter().any(|n| n.state == dbx::NodeState::Down),
        "the killed node shows as down: {:?}",
        health.nodes
    );
    assert_eq!(db.stats().nodes, health.nodes);
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
