//! PostgreSQL with several hosts: a primary and a streaming standby named in
//! one URL. `target_session_attrs` (all six of libpq's values),
//! `load_balance_hosts=random`, the SQL and KV conformance suites through a
//! multi-host URL, bad URLs, and a failover under insert load (the primary
//! crashes, the standby is promoted).
//!
//! The shared pair is `DBX_TEST_POSTGRES_REPLICA_URL` (scripts/test.sh
//! starts one with scripts/start-pg-replica.sh). Without it the tests that
//! need it print a loud `SKIPPED` line and return. The failover test starts
//! a pair of its own.

use dbx::{Dbx, ErrorKind, params};
use dbx_tests::expect_kind;
use dbx_tests::failover::Topology;
use dbx_tests::loud;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn url() -> Option<String> {
    std::env::var("DBX_TEST_POSTGRES_REPLICA_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

fn skipped(what: &str) {
    loud(&format!(
        "SKIPPED: no PostgreSQL primary + standby (set DBX_TEST_POSTGRES_REPLICA_URL, e.g. \
         $(scripts/start-pg-replica.sh)): {what}"
    ));
}

pub(crate) async fn connect() -> Option<Dbx> {
    let Some(url) = url() else {
        skipped("a conformance test on a multi-host URL");
        return None;
    };
    Some(
        Dbx::connect(&format!("{url}?target_session_attrs=read-write"))
            .await
            .unwrap(),
    )
}

mod kv {
    dbx_tests::kv_conformance!(crate::postgres_replica::connect);
}

mod sql {
    dbx_tests::sql_conformance!(crate::postgres_replica::connect);
}

async fn in_recovery(db: &Dbx) -> bool {
    let (r,): (bool,) = db
        .sql()
        .unwrap()
        .query_one_as("SELECT pg_is_in_recovery()", params![])
        .await
        .unwrap();
    r
}

/// Each `target_session_attrs` lands on the right server, for the shared
/// clients and the pooled connections (transactions) alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_session_attrs_pick_the_right_server() {
    let Some(url) = url() else {
        return skipped("target_session_attrs");
    };
    // The URL lists the primary first.
    let (primary, standby) = {
        let hosts = url.split_once('@').unwrap().1.split('/').next().unwrap();
        let (a, b) = hosts.split_once(',').unwrap();
        (a.to_owned(), b.to_owned())
    };
    let reversed = url.replace(
        &format!("{primary},{standby}"),
        &format!("{standby},{primary}"),
    );
    for (u, attrs, standby_expected) in [
        (&url, "any", false),
        (&reversed, "any", true),
        (&reversed, "read-write", false),
        (&reversed, "primary", false),
        (&url, "read-only", true),
        (&url, "standby", true),
        (&url, "prefer-standby", true),
    ] {
        let db = Dbx::connect(&format!("{u}?target_session_attrs={attrs}"))
            .await
            .unwrap();
        assert_eq!(in_recovery(&db).await, standby_expected, "{attrs} on {u}");
        let in_tx = db
            .sql()
            .unwrap()
            .transaction(async move |tx| {
                let (r,): (bool,) = tx
                    .query_one_as("SELECT pg_is_in_recovery()", params![])
                    .await?;
                Ok(r)
            })
            .await
            .unwrap();
        assert_eq!(in_tx, standby_expected, "{attrs} on {u}, in a transaction");
        db.close().await;
    }
    // prefer-standby with no standby left in the list: the primary.
    let only_primary = url.replace(&format!(",{standby}"), "");
    let db = Dbx::connect(&format!(
        "{only_primary}?target_session_attrs=prefer-standby"
    ))
    .await
    .unwrap();
    assert!(!in_recovery(&db).await);
    // standby with only the primary: a transient Connect error saying why.
    let e = expect_kind(
        Dbx::connect(&format!(
            "{only_primary}?target_session_attrs=standby&connect_timeout=3s"
        ))
        .await,
        ErrorKind::Connect,
    );
    assert!(e.to_string().contains("is a primary"), "{e}");
    assert!(e.is_transient());
    // Writes on a standby are refused by the server, typed.
    let db = Dbx::connect(&format!("{url}?target_session_attrs=standby"))
        .await
        .unwrap();
    let e = db
        .sql()
        .unwrap()
        .execute("CREATE TABLE dbx_never (x int)", params![])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
}

/// `load_balance_hosts=random` spreads new connections over both hosts.
#[tokio::test]
async fn load_balance_hosts_random_uses_every_host() {
    let Some(url) = url() else {
        return skipped("load_balance_hosts");
    };
    let mut seen = HashMap::new();
    for _ in 0..24 {
        let db = Dbx::connect(&format!("{url}?load_balance_hosts=random&shared_clients=1"))
            .await
            .unwrap();
        *seen.entry(in_recovery(&db).await).or_insert(0) += 1;
        db.close().await;
    }
    assert_eq!(seen.len(), 2, "24 connects all went to one host: {seen:?}");
}

#[tokio::test]
async fn bad_multi_host_urls_are_typed_errors() {
    for (url, needle) in [
        (
            "postgres://u@h1:5432,h2:5432/db?target_session_attrs=master",
            "target_session_attrs",
        ),
        (
            "postgres://u@h1:5432,h2:5432/db?load_balance_hosts=always",
            "load_balance_hosts",
        ),
        ("postgres://u@h1:5432,h1:5432/db", "twice"),
        ("postgres://u@h1:5432,,h2/db", "empty entry"),
        ("postgres://u@h1,h2/db?port=5433", "each host its port"),
        ("postgres://u@/db?host=h1,h2", "list in the URL"),
        ("postgres://u@h1,/tmp/x/db", "empty entry"),
    ] {
        let e = expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
    // Nobody listens on either host: Connect, naming each.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let started = Instant::now();
    let e = expect_kind(
        Dbx::connect(&format!(
            "postgres://postgres:hunter2@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=primary&connect_timeout=3s",
            ports[0], ports[1]
        ))
        .await,
        ErrorKind::Connect,
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    for p in &ports {
        assert!(e.to_string().contains(&p.to_string()), "{e}");
    }
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}

/// The primary crashes under insert load from 20 tasks and the standby is
/// promoted: inserts fail with typed transient errors while there is no
/// primary, resume on the new one without a restart, and every
/// acknowledged insert is there exactly once (synchronous replication; dbx
/// never repeats an insert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_crash_and_promotion_under_insert_load() {
    if url().is_none() {
        return skipped("failover under insert load");
    }
    let pair = Topology::start("start-pg-replica.sh");
    let db = Dbx::connect(&format!(
        "{}?target_session_attrs=read-write&timeout=5s",
        pair.url
    ))
    .await
    .unwrap();
    let sql = db.sql().unwrap().clone();
    sql.execute(
        "CREATE TABLE failover_log (task int NOT NULL, n int NOT NULL)",
        params![],
    )
    .await
    .unwrap();

    // (sent, done, task, n, ok)
    type Log = Vec<(Instant, Instant, i32, i32, bool)>;
    let log: Arc<Mutex<Log>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let last_error: Arc<Mutex<String>> = Arc::default();
    let writers: Vec<_> = (0..20)
        .map(|t| {
            let (sql, log, stop, last_error) =
                (sql.clone(), log.clone(), stop.clone(), last_error.clone());
            tokio::spawn(async move {
                let mut n = 0i32;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let r = sql
                        .execute(
                            "INSERT INTO failover_log (task, n) VALUES ($1, $2)",
                            params![t, n],
                        )
                        .await;
                    if let Err(e) = &r {
                        assert!(e.is_transient(), "{e}");
                        *last_error.lock().unwrap() = e.to_string();
                    }
                    log.lock()
                        .unwrap()
                        .push((sent, Instant::now(), t, n, r.is_ok()));
                    n += 1;
                    if r.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let script = |arg: &str| {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/start-pg-replica.sh");
        assert!(
            std::process::Command::new("bash")
                .arg(script)
                .arg(arg)
                .arg(&pair.url)
                .status()
                .unwrap()
                .success()
        );
    };
    let crashed = Instant::now();
    script("--stop-primary");
    tokio::time::sleep(Duration::from_millis(300)).await;
    script("--promote");
    let promoted = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let first_ok = log
        .iter()
        .filter(|c| c.4 && c.0 >= promoted)
        .map(|c| c.1)
        .min()
        .unwrap_or_else(|| {
            panic!(
                "no insert succeeded after the promotion; last error: {}",
                last_error.lock().unwrap()
            )
        });
    let last_failure = log.iter().filter(|c| !c.4).map(|c| c.1).max();
    let rows: Vec<(i32, i32)> = sql
        .query_as("SELECT task, n FROM failover_log", params![])
        .await
        .unwrap();
    let mut count: HashMap<(i32, i32), u32> = HashMap::new();
    for r in rows {
        *count.entry(r).or_insert(0) += 1;
    }
    let acked: Vec<(i32, i32)> = log.iter().filter(|c| c.4).map(|c| (c.2, c.3)).collect();
    let lost = acked.iter().filter(|k| !count.contains_key(k)).count();
    let duplicated = count.values().filter(|&&c| c > 1).count();
    let longest = log.iter().map(|c| c.1 - c.0).max().unwrap();
    loud(&format!(
        "[measure] postgres failover: promoted {:?} after the crash; first insert on the new primary {:?} after the promotion, all succeed {:?} after it; \
         {} inserts, {} acknowledged, {} failed, {lost} acknowledged lost, {duplicated} duplicated; longest call {longest:?}",
        promoted - crashed,
        first_ok.saturating_duration_since(promoted),
        last_failure.map_or(Duration::ZERO, |t| t.saturating_duration_since(promoted)),
        log.len(),
        acked.len(),
        log.len() - acked.len(),
    ));
    assert_eq!(lost, 0, "acknowledged inserts lost");
    assert_eq!(duplicated, 0, "inserts duplicated");
    assert!(
        longest <= Duration::from_millis(5500),
        "a call took {longest:?}"
    );
    assert!(!in_recovery(&db).await);
    db.close().await;
}

async fn show_read_only(sql: &dbx::Sql) -> String {
    let (v,): (String,) = sql
        .query_one_as("SHOW transaction_read_only", params![])
        .await
        .unwrap();
    v
}

/// `replica_reads=true`: plain reads on the standby, writes and everything
/// else on the primary, reads after a write on the primary for the
/// read-your-writes window, and reads on the primary while the standby
/// lags beyond `max_replica_lag`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reads_route_reads_to_the_standby() {
    let Some(url) = url() else {
        return skipped("replica_reads");
    };
    let db = Dbx::connect(&format!(
        "{url}?replica_reads=true&read_your_writes=500ms&max_replica_lag=1s"
    ))
    .await
    .unwrap();
    let sql = db.sql().unwrap();
    assert_eq!(
        show_read_only(sql).await,
        "on",
        "a plain read on the standby"
    );
    // Not a plain read (a function outside the known side-effect-free
    // list): the primary.
    let (r,): (bool,) = sql
        .query_one_as("SELECT pg_is_in_recovery()", params![])
        .await
        .unwrap();
    assert!(!r);
    // That also started the read-your-writes window.
    assert_eq!(show_read_only(sql).await, "off");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(show_read_only(sql).await, "on");

    // Write, then read it back at once: the primary.
    let t = dbx_tests::table("replica_reads");
    sql.execute(&format!("CREATE TABLE {t} (x int)"), params![])
        .await
        .unwrap();
    sql.execute(&format!("INSERT INTO {t} VALUES (1)"), params![])
        .await
        .unwrap();
    let (n,): (i64,) = sql
        .query_one_as(&format!("SELECT count(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(show_read_only(sql).await, "off");
    // Later: the standby, which has the row too.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(show_read_only(sql).await, "on");
    let (n,): (i64,) = sql
        .query_one_as(&format!("SELECT count(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Transactions: the primary.
    let in_tx = sql
        .transaction(async move |tx| {
            let (v,): (String,) = tx
                .query_one_as("SHOW transaction_read_only", params![])
                .await?;
            Ok(v)
        })
        .await
        .unwrap();
    assert_eq!(in_tx, "off");
    // Key-value: a read right after a write sees it.
    let kv = db.kv().unwrap();
    for i in 0..20 {
        let k = format!("{}{i}", dbx_tests::prefix("ryw"));
        kv.set(&k, b"v", None).await.unwrap();
        assert_eq!(kv.get(&k).await.unwrap().as_deref(), Some(&b"v"[..]));
    }
    let raw = db
        .database()
        .backend_as::<dbx::postgres::PostgresBackend>()
        .unwrap();
    assert!(raw.replica().is_some());
    // Health asks each host what it is; stats shows where calls go.
    let health = db.health().await.unwrap();
    let roles: Vec<_> = health.nodes.iter().map(|n| (n.role, n.state)).collect();
    assert_eq!(
        roles,
        [
            (dbx::NodeRole::Primary, dbx::NodeState::Up),
            (dbx::NodeRole::Replica, dbx::NodeState::Up)
        ],
        "{:?}",
        health.nodes
    );
    let nodes = db.stats().nodes;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(nodes[0].addr, health.nodes[0].addr);
    assert_eq!(nodes[1].addr, health.nodes[1].addr);
    assert!(nodes[1].lag.is_some(), "{nodes:?}");

    // The standby stops replaying: once its lag passes 1 s, reads go to
    // the primary; once it catches up, to the standby again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let standby = Dbx::connect(&format!("{url}?target_session_attrs=standby"))
        .await
        .unwrap();
    let other = Dbx::connect(&format!("{url}?target_session_attrs=read-write"))
        .await
        .unwrap();
    let _: Vec<dbx::Row> = standby
        .sql()
        .unwrap()
        .query("SELECT pg_wal_replay_pause()", params![])
        .await
        .unwrap();
    let paused = async {
        for _ in 0..40 {
            other
                .sql()
                .unwrap()
                .execute(&format!("INSERT INTO {t} VALUES (2)"), params![])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if show_read_only(sql).await == "off" {
                return true;
            }
        }
        false
    };
    let moved = paused.await;
    // stats() shows the standby avoided, with its lag.
    let nodes = db.stats().nodes;
    let lagging = nodes.iter().find(|n| n.role == dbx::NodeRole::Replica);
    let lagging_state = lagging.map(|n| (n.state, n.lag));
    let _: Vec<dbx::Row> = standby
        .sql()
        .unwrap()
        .query("SELECT pg_wal_replay_resume()", params![])
        .await
        .unwrap();
    assert!(
        moved,
        "reads stayed on a standby lagging beyond max_replica_lag"
    );
    let (state, lag) = lagging_state.unwrap_or_else(|| panic!("no standby in {nodes:?}"));
    assert_eq!(state, dbx::NodeState::Avoided, "{nodes:?}");
    assert!(lag.is_some_and(|l| l > Duration::from_secs(1)), "{nodes:?}");
    let mut back = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if show_read_only(sql).await == "on" {
            back = true;
            break;
        }
    }
    assert!(
        back,
        "reads did not return to the standby after it caught up"
    );
    sql.execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// A standby that is down: reads fall back to the primary (the policy's
/// retry of the failed read goes there), writes are not affected.
#[tokio::test]
async fn replica_reads_with_the_standby_down_use_the_primary() {
    let Some(url) = url() else {
        return skipped("replica_reads with the standby down");
    };
    let primary = url.split_once('@').unwrap().1.split(',').next().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = Dbx::connect(&format!(
        "postgres://postgres@{primary},127.0.0.1:{dead}/postgres?replica_reads=true&connect_timeout=2s"
    ))
    .await
    .unwrap();
    for _ in 0..5 {
        assert_eq!(show_read_only(db.sql().unwrap()).await, "off");
    }
    let health = db.health().await.unwrap();
    let states: Vec<_> = health
        .nodes
        .iter()
        .map(|n| (n.addr.as_str(), n.role, n.state))
        .collect();
    let dead_addr = format!("127.0.0.1:{dead}");
    assert_eq!(
        states,
        [
            (primary, dbx::NodeRole::Primary, dbx::NodeState::Up),
            (
                dead_addr.as_str(),
                dbx::NodeRole::Peer,
                dbx::NodeState::Down
            )
        ]
    );
    assert!(health.nodes[1].error.is_some());
    // The breaker counts none of the standby's failures against the
    // database: the reads went to the primary.
    assert_eq!(db.breaker_state(), dbx::BreakerState::Closed);
}

#[tokio::test]
async fn bad_replica_settings_are_typed_errors() {
    for (url, needle) in [
        ("postgres://u@h1/db?replica_reads=true", "list of hosts"),
        (
            "postgres://u@h1,h2/db?replica_reads=true&target_session_attrs=standby",
            "target_session_attrs",
        ),
        (
            "postgres://u@h1,h2/db?read_your_writes=1s",
            "replica_reads=true",
        ),
        (
            "postgres://u@h1,h2/db?replica_reads=true&max_replica_lag=soon",
            "max_replica_lag",
        ),
        ("postgres://u@h1,h2/db?replica_reads=maybe", "replica_reads"),
    ] {
        let e = expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
}
