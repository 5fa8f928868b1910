//! Fault injection against real servers: throwaway Redis and PostgreSQL
//! instances that the tests stop and restart, and a TCP fault proxy that
//! adds latency, black-holes or cuts connections. Never the shared servers.
//!
//! Assertions are about outcomes (every call returns, the breaker opens and
//! fails fast, service resumes, nothing acknowledged is lost, nothing is
//! duplicated), with loose time bounds only. The measured figures (recovery
//! time, fast-fail latency, share of failed calls) are printed: run
//! `cargo test -p dbx-tests --test faults -- --nocapture --test-threads 1`.
#![cfg(all(feature = "redis", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

use dbx::{BreakerState, Dbx, ErrorKind, params};
use dbx_tests::fault::{FaultProxy, Mode, PostgresServer, RedisServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings that make recovery quick, as the README recommends for the goal
/// of recovering within a second of the server coming back.
const FAST_RECOVERY: &str = "timeout=300ms&connect_timeout=300ms&acquire_timeout=300ms\
    &retry_max_attempts=2&retry_min_backoff=20ms&retry_max_backoff=100ms\
    &breaker_consecutive_failures=3&breaker_open_for=300ms&health_check_interval=100ms";

/// Pause between calls during an outage: a steady client, not a spin loop.
const PACE: Duration = Duration::from_millis(2);

/// Loose bound for "returns within its timeout plus a margin".
const CALL_BOUND: Duration = Duration::from_secs(3);

struct Outage {
    calls: u32,
    failed: u32,
    fast_fails: Vec<Duration>,
    slowest: Duration,
}

impl Outage {
    fn new() -> Self {
        Outage {
            calls: 0,
            failed: 0,
            fast_fails: Vec::new(),
            slowest: Duration::ZERO,
        }
    }

    fn record<T>(&mut self, took: Duration, r: &dbx::Result<T>) {
        assert!(
            took < CALL_BOUND,
            "a call took {took:?} while the server was down"
        );
        self.calls += 1;
        self.slowest = self.slowest.max(took);
        if let Err(e) = r {
            self.failed += 1;
            if e.kind() == ErrorKind::CircuitOpen {
                self.fast_fails.push(took);
            }
        }
    }

    fn report(&self, what: &str, recovery: Duration) {
        let mut ff = self.fast_fails.clone();
        ff.sort();
        let p50 = ff.get(ff.len() / 2).copied().unwrap_or_default();
        eprintln!(
            "[measure] {what}: recovery after restart {recovery:?}; {} of {} calls failed during the outage ({:.0}%); \
             fast-fail (CircuitOpen) p50 {p50:?} over {} calls; slowest call {:?}",
            self.failed,
            self.calls,
            100.0 * f64::from(self.failed) / f64::from(self.calls.max(1)),
            ff.len(),
            self.slowest,
        );
    }
}

/// Wait until `op` succeeds, returning how long it took.
async fn until_ok<F, Fut, T>(mut op: F, limit: Duration) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = dbx::Result<T>>,
{
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let r = op().await;
        assert!(t.elapsed() < CALL_BOUND, "a call hung");
        if r.is_ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "no recovery within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_no_hang_breaker_recovery_no_lost_writes() {
    // AOF with fsync on every write: an acknowledged write survives a crash.
    let server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let db = Dbx::connect(&format!(
        "redis://127.0.0.1:{}/0?{FAST_RECOVERY}",
        server.port()
    ))
    .await
    .unwrap();
    let kv = db.kv().unwrap();
    let mut acked = Vec::new();
    for i in 0..50 {
        let key = format!("ack:{i}");
        kv.set(&key, b"v", None).await.unwrap();
        acked.push(key);
    }
    server.stop();
    let mut outage = Outage::new();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(2) {
        let key = format!("ack:down:{}", outage.calls);
        let t = Instant::now();
        let r = kv.set(&key, b"v", None).await;
        outage.record(t.elapsed(), &r);
        if r.is_ok() {
            acked.push(key);
        }
        tokio::time::sleep(PACE).await;
    }
    assert!(outage.failed > 0);
    assert_eq!(db.breaker_state(), BreakerState::Open, "the breaker opened");
    assert!(
        !outage.fast_fails.is_empty(),
        "calls failed fast while open"
    );
    server.restart();
    let recovery = until_ok(|| kv.get("ack:0"), Duration::from_secs(10)).await;
    outage.report("redis restart", recovery);
    for key in &acked {
        assert!(
            kv.exists(key).await.unwrap(),
            "acknowledged write {key} was lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_through_fault_proxy_latency_black_hole_and_cuts() {
    let server = RedisServer::start(&[]);
    let proxy = FaultProxy::start(server.addr()).await;
    let db = Dbx::connect(&format!("redis://{}/0?{FAST_RECOVERY}", proxy.addr()))
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("k", b"v", None).await.unwrap();

    // Latency above the timeout: a Timeout error, not a hang.
    proxy.set(Mode::Latency(Duration::from_millis(600)));
    let t = Instant::now();
    let e = kv.get("k").await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::CircuitOpen),
        "{e}"
    );
    assert!(t.elapsed() < CALL_BOUND);
    proxy.set(Mode::Pass);
    until_ok(|| kv.get("k"), Duration::from_secs(10)).await;

    // Black hole: every call returns within its bounds.
    proxy.set(Mode::BlackHole);
    proxy.cut_all();
    let mut outage = Outage::new();
    for _ in 0..10 {
        let t = Instant::now();
        let r = kv.get("k").await;
        outage.record(t.elapsed(), &r);
    }
    assert!(outage.failed >= 8, "{} of 10 failed", outage.failed);
    proxy.set(Mode::Pass);
    let recovery = until_ok(|| kv.get("k"), Duration::from_secs(10)).await;
    outage.report("redis black hole", recovery);

    // Connections cut mid-flight: errors, then the shared connection reconnects.
    proxy.cut_all();
    let recovery = until_ok(|| kv.get("k"), Duration::from_secs(10)).await;
    eprintln!("[measure] redis connections cut: recovered in {recovery:?}");
    // Refused while reset: fails fast, then recovers.
    proxy.set(Mode::Reset);
    let t = Instant::now();
    assert!(kv.get("k").await.is_err());
    assert!(t.elapsed() < CALL_BOUND);
    proxy.set(Mode::Pass);
    until_ok(|| kv.get("k"), Duration::from_secs(10)).await;
}

/// With a connect timeout short enough that a reconnect (two attempts and a
/// pause of 500 ms) fits within the operation timeout, the Redis driver
/// bounds commands itself and the core starts no timer of its own: every
/// call must still come back within its bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_calls_stay_bounded_when_the_driver_times_them() {
    let server = RedisServer::start(&[]);
    let proxy = FaultProxy::start(server.addr()).await;
    // 2 x 200 ms + 500 ms <= 1500 ms: the driver times the commands.
    let db = Dbx::connect(&format!(
        "redis://{}/0?timeout=1500ms&connect_timeout=200ms&retry_max_attempts=1&breaker=false",
        proxy.addr()
    ))
    .await
    .unwrap();
    assert!(db.database().backend().enforces_timeouts());
    let kv = db.kv().unwrap();
    kv.set("k", b"v", None).await.unwrap();

    proxy.set(Mode::Latency(Duration::from_millis(2500)));
    let t = Instant::now();
    let e = kv.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_transient(), "{e}");
    assert!(t.elapsed() < CALL_BOUND, "{:?}", t.elapsed());
    proxy.set(Mode::Pass);
    until_ok(|| kv.get("k"), Duration::from_secs(10)).await;

    proxy.set(Mode::BlackHole);
    proxy.cut_all();
    for _ in 0..5 {
        let t = Instant::now();
        assert!(kv.get("k").await.is_err());
        assert!(t.elapsed() < CALL_BOUND, "{:?}", t.elapsed());
    }
    proxy.set(Mode::Pass);
    until_ok(|| kv.get("k"), Duration::from_secs(10)).await;

    // A connect timeout too long for that: the core times each attempt.
    let db = Dbx::connect(&format!(
        "redis://{}/0?timeout=300ms&connect_timeout=300ms",
        proxy.addr()
    ))
    .await
    .unwrap();
    assert!(!db.database().backend().enforces_timeouts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_no_hang_recovery_no_duplicates() {
    let server = PostgresServer::start();
    let url = format!("{}?{FAST_RECOVERY}", server.url());
    let db = Dbx::connect(&url).await.unwrap();
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE events (token TEXT NOT NULL)", params![])
        .await
        .unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        let token = format!("before-{i}");
        sql.execute(
            "INSERT INTO events (token) VALUES ($1)",
            params![token.clone()],
        )
        .await
        .unwrap();
        acked.push(token);
    }
    server.stop();
    let mut outage = Outage::new();
    let down = Instant::now();
    let mut i = 0;
    while down.elapsed() < Duration::from_secs(2) {
        let token = format!("down-{i}");
        i += 1;
        let t = Instant::now();
        // A non-idempotent insert: retried only if it provably never left.
        let r = sql
            .execute(
                "INSERT INTO events (token) VALUES ($1)",
                params![token.clone()],
            )
            .await;
        outage.record(t.elapsed(), &r);
        if r.is_ok() {
            acked.push(token);
        }
        tokio::time::sleep(PACE).await;
    }
    assert!(outage.failed > 0);
    assert_eq!(db.breaker_state(), BreakerState::Open);
    server.start_again();
    let recovery = until_ok(|| sql.query("SELECT 1", params![]), Duration::from_secs(15)).await;
    outage.report("postgresql restart", recovery);
    // More inserts after recovery, through the same handle.
    for i in 0..20 {
        let token = format!("after-{i}");
        sql.execute(
            "INSERT INTO events (token) VALUES ($1)",
            params![token.clone()],
        )
        .await
        .unwrap();
        acked.push(token);
    }
    let dupes: i64 = sql
        .query_one_as(
            "SELECT COUNT(*) FROM (SELECT token FROM events GROUP BY token HAVING COUNT(*) > 1) d",
            params![],
        )
        .await
        .unwrap();
    assert_eq!(dupes, 0, "a retried insert was applied twice");
    for token in &acked {
        let n: i64 = sql
            .query_one_as(
                "SELECT COUNT(*) FROM events WHERE token = $1",
                params![token.clone()],
            )
            .await
            .unwrap();
        assert_eq!(n, 1, "acknowledged insert {token} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_fault_proxy_black_hole_and_cuts() {
    let server = PostgresServer::start();
    let proxy = FaultProxy::start(server.addr()).await;
    let db = Dbx::connect(&format!("{}?{FAST_RECOVERY}", server.url_via(proxy.addr())))
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    assert_eq!(
        sql.query_one_as::<i32>("SELECT 1", params![])
            .await
            .unwrap(),
        1
    );
    proxy.set(Mode::BlackHole);
    proxy.cut_all();
    let mut outage = Outage::new();
    for _ in 0..10 {
        let t = Instant::now();
        let r = sql.query("SELECT 1", params![]).await;
        outage.record(t.elapsed(), &r);
    }
    assert!(outage.failed >= 8);
    proxy.set(Mode::Pass);
    let recovery = until_ok(|| sql.query("SELECT 1", params![]), Duration::from_secs(10)).await;
    outage.report("postgresql black hole", recovery);
    proxy.cut_all();
    let recovery = until_ok(|| sql.query("SELECT 1", params![]), Duration::from_secs(10)).await;
    eprintln!("[measure] postgresql connections cut: recovered in {recovery:?}");
}

// --- recovery with every default setting ---------------------------------------

/// URL parameters added to the default-settings tests, to compare other
/// settings with the same measurement (`DBX_FAULT_PARAMS`, default none).
fn extra_params() -> String {
    std::env::var("DBX_FAULT_PARAMS").unwrap_or_default()
}

/// Crash-and-restart cycles per server in the default-settings tests
/// (`DBX_FAULT_CYCLES`, default 2); the figures are printed per cycle.
fn cycles() -> usize {
    std::env::var("DBX_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// `tasks` tasks running `op` in a loop, each remembering when it last
/// succeeded. Stops when dropped.
struct Load {
    last_ok: Arc<Vec<Mutex<Option<Instant>>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start<F, Fut>(tasks: usize, op: F) -> Load
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let last_ok: Arc<Vec<Mutex<Option<Instant>>>> =
            Arc::new((0..tasks).map(|_| Mutex::new(None)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|i| {
                let (op, last_ok, stop) = (op.clone(), last_ok.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let ok = op().await;
                        assert!(t.elapsed() < Duration::from_secs(11), "a call hung");
                        if ok {
                            *last_ok[i].lock().unwrap() = Some(Instant::now());
                        }
                        tokio::time::sleep(PACE).await;
                    }
                })
            })
            .collect();
        Load {
            last_ok,
            stop,
            tasks,
        }
    }

    /// Wait until every task has succeeded after `since`; returns when the
    /// first and the last of them did.
    async fn resumed_after(&self, since: Instant, limit: Duration) -> (Instant, Instant) {
        loop {
            let times: Vec<Option<Instant>> = self
                .last_ok
                .iter()
                .map(|m| (*m.lock().unwrap()).filter(|t| *t > since))
                .collect();
            if times.iter().all(Option::is_some) {
                let times: Vec<Instant> = times.into_iter().flatten().collect();
                return (*times.iter().min().unwrap(), *times.iter().max().unwrap());
            }
            assert!(
                since.elapsed() < limit,
                "service did not resume within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// When `port` first accepts a TCP connection (polled every millisecond).
async fn port_opens(port: u16) -> Instant {
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// When the server on `port` is ready, as `ready` judges one connection
/// (polled every 2 ms).
async fn ready_at<F, Fut>(ready: F) -> Instant
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if ready().await {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Redis answers PING with anything but `-LOADING`.
async fn redis_ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut buf = [0u8; 64];
    let reply = async {
        s.write_all(b"PING\r\n").await?;
        s.read(&mut buf).await
    };
    match tokio::time::timeout(Duration::from_millis(500), reply).await {
        Ok(Ok(n)) => n > 0 && !buf[..n].starts_with(b"-LOADING"),
        _ => false,
    }
}

/// PostgreSQL accepts a login (trust): its first answer to a startup
/// message is an authentication request (`R`), not an error (`E`, for
/// example 57P03 while it recovers from a crash).
async fn postgres_ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let body = b"\x00\x03\x00\x00user\x00postgres\x00database\x00postgres\x00\x00";
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(body);
    let mut first = [0u8; 1];
    let reply = async {
        s.write_all(&msg).await?;
        s.read_exact(&mut first).await
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), reply).await,
        Ok(Ok(_))
    ) && first[0] == b'R'
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Crash the server under `load` and start it again, `cycles()` times,
/// printing when the server was ready and when the load was served again.
/// `stop` and `start` block (they run on a blocking thread); `ready` judges
/// one connection to `port`.
async fn crash_cycles<R, Fut>(
    what: &str,
    db: &Dbx,
    load: &Load,
    port: u16,
    stop: impl Fn(),
    start: impl FnOnce() + Clone + Send + 'static,
    ready: R,
) where
    R: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for cycle in 1..=cycles() {
        load.resumed_after(Instant::now(), Duration::from_secs(10))
            .await;
        stop();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_ne!(
            db.breaker_state(),
            BreakerState::Closed,
            "the breaker opened"
        );
        let restarting = Instant::now();
        let restart = tokio::task::spawn_blocking(start.clone());
        let opened = port_opens(port).await;
        let ready = ready_at(&ready).await;
        restart.await.unwrap();
        let (first, all) = load
            .resumed_after(restarting, Duration::from_secs(15))
            .await;
        eprintln!(
            "[measure] {what} defaults, crash {cycle}: ready {} after the port reopened; \
             first of 20 tasks served {} after ready ({} after the port reopened), all 20 {} after ready",
            ms(ready - opened),
            ms(first.saturating_duration_since(ready)),
            ms(first - opened),
            ms(all.saturating_duration_since(ready)),
        );
    }
}

/// With every default setting, 20 tasks of load, Redis killed (SIGKILL) and
/// restarted: service resumes soon after the server is ready again. Prints
/// the figures per cycle; asserts only that service resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_resume_service_soon_after_a_redis_crash() {
    let server = RedisServer::start(&[]);
    let port = server.port();
    let db = Dbx::connect(&format!("redis://127.0.0.1:{port}/0?{}", extra_params()))
        .await
        .unwrap();
    let kv = db.kv().unwrap().clone();
    kv.set("k", b"v", None).await.unwrap();
    let load = Load::start(20, move || {
        let kv = kv.clone();
        async move { kv.get("k").await.is_ok() }
    });
    let s = server.clone();
    crash_cycles(
        "redis",
        &db,
        &load,
        port,
        || server.stop(),
        move || s.restart(),
        || redis_ready(port),
    )
    .await;
    load.stop().await;
}

/// The same for PostgreSQL, crashed with an immediate shutdown (it then
/// refuses logins with 57P03 while it recovers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_resume_service_soon_after_a_postgres_crash() {
    let server = Arc::new(PostgresServer::start());
    let port = server.port();
    let db = Dbx::connect(&format!("{}?{}", server.url(), extra_params()))
        .await
        .unwrap();
    let sql = db.sql().unwrap().clone();
    let load = Load::start(20, move || {
        let sql = sql.clone();
        async move { sql.query("SELECT 1", params![]).await.is_ok() }
    });
    let s = server.clone();
    crash_cycles(
        "postgresql",
        &db,
        &load,
        port,
        || server.stop(),
        move || s.start_again(),
        || postgres_ready(port),
    )
    .await;
    load.stop().await;
}

/// With every default setting, a server that stops answering (black-holed
/// by the proxy, like a server frozen with SIGSTOP) holds a caller no longer
/// than `retry_max_elapsed` (10s): the attempt in progress is cut there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_bound_a_call_to_a_frozen_server() {
    let server = RedisServer::start(&[]);
    let proxy = FaultProxy::start(server.addr()).await;
    let db = Dbx::connect(&format!("redis://{}/0?{}", proxy.addr(), extra_params()))
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("k", b"v", None).await.unwrap();
    proxy.set(Mode::BlackHole);
    let t = Instant::now();
    let e = kv.get("k").await.unwrap_err();
    let took = t.elapsed();
    eprintln!(
        "[measure] redis defaults, frozen server: the call returned {e} after {}",
        ms(took)
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(took < Duration::from_secs(11), "{took:?}");
    proxy.set(Mode::Pass);
    proxy.cut_all();
    until_ok(|| kv.get("k"), Duration::from_secs(10)).await;
}
