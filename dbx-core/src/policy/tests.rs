//! Over 600 lines on purpose: every test here shares the one scripted
//! driver and its helpers, and reads as one specification of the engine;
//! split it by concern if it grows much further.
//!
//! The policy's own logic, driven by a scripted in-process driver on Tokio's
//! paused clock. The driver stands in for no database behaviour: it only
//! fails on cue, so retry, breaker, limits and shutdown can be checked
//! deterministically. Database behaviour is tested against real servers in
//! the `tests` crate.

use crate::driver::Backend;
use crate::kv::{KvStore, ScanPage, Ttl};
use crate::policy::BreakerState;
use crate::{ConnectOptions, Database, Error, ErrorKind, Result};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
enum Step {
    Succeed,
    /// A transient error after the request was sent (ambiguous).
    Transient,
    /// A transient error that proves the request never left.
    Refused,
    /// A permanent error.
    Permanent,
    /// The server answers it is up but not ready yet (starting, loading).
    NotReady,
    /// One server of several failed while the others answer.
    Partial,
    /// Take this long, then succeed.
    Slow(Duration),
}

#[derive(Debug, Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    calls: AtomicUsize,
    pings: AtomicUsize,
}

#[derive(Debug, Clone)]
struct Fake(Arc<Script>);

impl Fake {
    fn new(steps: &[Step]) -> Self {
        Fake(Arc::new(Script {
            steps: Mutex::new(steps.iter().copied().collect()),
            ..Script::default()
        }))
    }
    fn push(&self, steps: &[Step]) {
        self.0.steps.lock().unwrap().extend(steps.iter().copied());
    }
    fn calls(&self) -> usize {
        self.0.calls.load(Ordering::SeqCst)
    }
    fn pings(&self) -> usize {
        self.0.pings.load(Ordering::SeqCst)
    }
    async fn step(&self) -> Result<()> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let step = self
            .0
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Step::Succeed);
        match step {
            Step::Succeed => Ok(()),
            Step::Transient => {
                Err(Error::new(ErrorKind::Connect, "connection reset").set_transient(true))
            }
            Step::Refused => Err(Error::new(ErrorKind::Connect, "connection refused")
                .set_transient(true)
                .set_never_sent(true)),
            Step::Permanent => Err(Error::new(ErrorKind::Conflict, "duplicate key")),
            Step::NotReady => Err(Error::new(ErrorKind::Connect, "the server is starting up")
                .set_never_sent(true)
                .set_not_ready(true)),
            Step::Partial => Err(
                Error::new(ErrorKind::Connect, "connection refused by node b")
                    .set_transient(true)
                    .set_partial(true),
            ),
            Step::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl KvStore for Fake {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>> {
        self.step().await.map(|()| Some(b"v".to_vec()))
    }
    async fn set(&self, _: &str, _: &[u8], _: Option<Duration>) -> Result<()> {
        self.step().await
    }
    async fn set_nx(&self, _: &str, _: &[u8], _: Option<Duration>) -> Result<bool> {
        self.step().await.map(|()| true)
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        self.step().await.map(|()| true)
    }
    async fn exists(&self, _: &str) -> Result<bool> {
        self.step().await.map(|()| true)
    }
    async fn incr(&self, _: &str, delta: i64) -> Result<i64> {
        self.step().await.map(|()| delta)
    }
    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        self.step().await.map(|()| vec![None; keys.len()])
    }
    async fn mset(&self, _: &[(&str, &[u8])], _: Option<Duration>) -> Result<()> {
        self.step().await
    }
    async fn expire(&self, _: &str, _: Duration) -> Result<bool> {
        self.step().await.map(|()| true)
    }
    async fn ttl(&self, _: &str) -> Result<Ttl> {
        self.step().await.map(|()| Ttl::Persistent)
    }
    async fn scan_page(&self, _: &str, _: Option<&str>, _: usize) -> Result<ScanPage> {
        self.step().await.map(|()| ScanPage::default())
    }
}

#[async_trait]
impl Backend for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(Arc::new(self.clone()))
    }
    async fn ping(&self) -> Result<()> {
        self.0.pings.fetch_add(1, Ordering::SeqCst);
        self.step().await
    }
    async fn close(&self) {}
}

/// A database over the scripted driver. The background health probe is off
/// unless `params` sets it, so tests of other logic count calls exactly;
/// [`open_db_defaults`] keeps every default.
fn open_db(fake: &Fake, params: &str) -> Database {
    let probe = if params.contains("health_check_interval") {
        ""
    } else {
        "health_check_interval=off&"
    };
    open_db_defaults(fake, &format!("{probe}retry_jitter=false&{params}"))
}

fn open_db_defaults(fake: &Fake, params: &str) -> Database {
    let opts = ConnectOptions::from_url(&format!("fake://x?{params}")).unwrap();
    opts.policy().validate().unwrap();
    Database::new(Arc::new(fake.clone()), opts)
}

/// A database over the scripted driver whose breaker five transient
/// failures have just opened (one attempt per operation; `params` adds to that).
async fn tripped(params: &str) -> (Fake, Database) {
    let fake = Fake::new(&[Transient; 5]);
    let db = open_db(&fake, &format!("retry_max_attempts=1&{params}"));
    for _ in 0..5 {
        let _ = db.kv().unwrap().get("k").await;
    }
    assert_eq!(db.breaker_state(), BreakerState::Open);
    (fake, db)
}

use Step::*;

#[tokio::test(start_paused = true)]
async fn transient_reads_are_retried_until_success() {
    let fake = Fake::new(&[Transient, Transient, Succeed]);
    let db = open_db(&fake, "");
    assert!(db.kv().unwrap().get("k").await.unwrap().is_some());
    assert_eq!(fake.calls(), 3);
    assert_eq!(db.retries(), 2);
}

/// Every logical operation counts once in the stats, however many attempts
/// it took and whether it failed; a failure also counts by its kind.
#[tokio::test(start_paused = true)]
async fn stats_count_each_operation_once() {
    let fake = Fake::new(&[Transient, Transient, Succeed, Permanent, Succeed]);
    let db = open_db(&fake, "");
    let kv = db.kv().unwrap();
    assert!(kv.get("k").await.is_ok());
    assert!(kv.get("k").await.is_err());
    assert!(kv.get("k").await.is_ok());
    let stats = db.stats();
    assert_eq!(fake.calls(), 5);
    assert_eq!(stats.operations, 3, "{stats:?}");
    assert_eq!(stats.errors(), 1, "{stats:?}");
    assert_eq!(stats.retries, 2, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let fake = Fake::new(&[Permanent, Succeed]);
    let db = open_db(&fake, "");
    let e = db.kv().unwrap().get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!((fake.calls(), e.attempts()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_ops_retry_only_when_never_sent() {
    let fake = Fake::new(&[Transient]);
    let db = open_db(&fake, "");
    let kv = db.kv().unwrap();
    assert_eq!(
        kv.incr("k", 1).await.unwrap_err().kind(),
        ErrorKind::Connect
    );
    assert_eq!(fake.calls(), 1, "an ambiguous incr is not repeated");
    fake.push(&[Refused, Succeed]);
    assert_eq!(kv.incr("k", 1).await.unwrap(), 1);
    assert_eq!(fake.calls(), 3, "a refused incr is repeated");
    fake.push(&[Transient, Succeed]);
    assert!(kv.set_nx("k", "v", None).await.is_err());
    fake.push(&[Transient, Succeed]);
    assert_eq!(
        kv.idempotent().incr("k", 1).await.unwrap(),
        1,
        "marked idempotent"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_and_elapsed_time_are_bounded() {
    let fake = Fake::new(&[Transient, Transient, Transient, Succeed]);
    let db = open_db(&fake, "retry_max_attempts=2");
    let e = db.kv().unwrap().get("k").await.unwrap_err();
    assert_eq!((e.attempts(), fake.calls()), (2, 2));
    assert!(e.to_string().contains("after 2 attempts"), "{e}");

    let fake = Fake::new(&[Transient, Transient, Transient, Succeed]);
    let db = open_db(
        &fake,
        "retry_max_attempts=10&retry_min_backoff=40ms&retry_max_elapsed=100ms",
    );
    let start = tokio::time::Instant::now();
    assert!(db.kv().unwrap().get("k").await.is_err());
    // 40ms then 80ms of backoff would pass 100ms: only one retry is taken.
    assert_eq!(fake.calls(), 2);
    assert!(start.elapsed() <= Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn each_attempt_has_its_own_timeout() {
    let fake = Fake::new(&[Slow(Duration::from_secs(60)), Succeed]);
    let db = open_db(&fake, "timeout=100ms");
    assert!(db.kv().unwrap().get("k").await.unwrap().is_some());
    assert_eq!(fake.calls(), 2);
    let fake = Fake::new(&[Slow(Duration::from_secs(60))]);
    let db = open_db(&fake, "timeout=100ms&retry_max_attempts=1");
    let e = db.kv().unwrap().get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_transient());
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_fails_fast_probes_and_closes() {
    let fake = Fake::new(&[Transient; 5]);
    let db = open_db(&fake, "retry_max_attempts=1&breaker_open_for=1s");
    let kv = db.kv().unwrap();
    for _ in 0..5 {
        assert_eq!(kv.get("k").await.unwrap_err().kind(), ErrorKind::Connect);
    }
    assert_eq!(db.breaker_state(), BreakerState::Open);
    assert_eq!(db.breaker_opened(), 1);
    let e = kv.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    assert!(e.is_never_sent() && e.is_transient());
    assert_eq!(fake.calls(), 5, "an open breaker does not touch the driver");
    tokio::time::advance(Duration::from_millis(1001)).await;
    // Half-open: one probe goes through and closes it.
    assert!(kv.get("k").await.is_ok());
    assert_eq!(db.breaker_state(), BreakerState::Closed);
    assert_eq!(fake.calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_and_only_one_probe_runs() {
    // The breaker counts logical operations: retries inside one are one outcome.
    let fake = Fake::new(&[Transient; 15]);
    let db = open_db(&fake, "retry_max_attempts=3&breaker_open_for=1s");
    let kv = db.kv().unwrap().clone();
    for _ in 0..4 {
        let _ = kv.get("k").await;
    }
    assert_eq!(db.breaker_state(), BreakerState::Closed);
    let _ = kv.get("k").await;
    assert_eq!(db.breaker_state(), BreakerState::Open);
    assert_eq!(fake.calls(), 15);
    tokio::time::advance(Duration::from_millis(1001)).await;
    // While one slow probe is in flight, other callers fail fast.
    fake.push(&[Slow(Duration::from_millis(50))]);
    let (a, b) = tokio::join!(kv.get("k"), async {
        tokio::task::yield_now().await;
        kv.get("k").await
    });
    assert!(a.is_ok(), "the probe succeeded");
    assert_eq!(b.unwrap_err().kind(), ErrorKind::CircuitOpen);
    assert_eq!(db.breaker_state(), BreakerState::Closed);
    // Open it again; a failing probe gets one attempt and reopens it.
    fake.push(&[Transient; 15]);
    for _ in 0..5 {
        let _ = kv.get("k").await;
    }
    assert_eq!(db.breaker_state(), BreakerState::Open);
    tokio::time::advance(Duration::from_millis(1001)).await;
    let before = fake.calls();
    fake.push(&[Transient, Succeed]);
    assert_eq!(kv.get("k").await.unwrap_err().kind(), ErrorKind::Connect);
    assert_eq!(fake.calls(), before + 1, "a probe is not retried");
    assert_eq!(db.breaker_state(), BreakerState::Open);
    assert_eq!(db.breaker_opened(), 3);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_opens_the_breaker() {
    let fake = Fake::new(&[]);
    let db = open_db(
        &fake,
        "retry_max_attempts=1&breaker_consecutive_failures=0&breaker_failure_rate=0.5&breaker_min_calls=20",
    );
    let kv = db.kv().unwrap();
    for i in 0..19 {
        fake.push(&[if i % 2 == 0 { Transient } else { Succeed }]);
        let _ = kv.get("k").await;
        assert_eq!(db.breaker_state(), BreakerState::Closed, "call {i}");
    }
    fake.push(&[Transient]);
    let _ = kv.get("k").await;
    assert_eq!(db.breaker_state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_do_not_trip_the_breaker() {
    let fake = Fake::new(&[Permanent; 20]);
    let db = open_db(&fake, "");
    for _ in 0..20 {
        let _ = db.kv().unwrap().get("k").await;
    }
    assert_eq!(db.breaker_state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn concurrency_limit_bounds_the_wait() {
    let fake = Fake::new(&[Slow(Duration::from_secs(5))]);
    let db = open_db(&fake, "max_concurrency=1&acquire_timeout=50ms");
    let kv = db.kv().unwrap().clone();
    let held = tokio::spawn({
        let kv = kv.clone();
        async move { kv.get("k").await }
    });
    tokio::task::yield_now().await;
    assert_eq!(db.concurrency_in_use(), Some(1));
    let e = kv.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PoolTimeout);
    assert!(e.is_never_sent());
    assert!(held.await.unwrap().is_ok());
    assert_eq!(db.concurrency_in_use(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn rate_limit_spaces_operations() {
    let fake = Fake::new(&[]);
    let db = open_db(&fake, "rate_limit=10&rate_burst=1");
    let start = tokio::time::Instant::now();
    for _ in 0..4 {
        db.kv().unwrap().get("k").await.unwrap();
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(400),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_budget_stops_a_retry_storm() {
    let fake = Fake::new(&[Transient; 200]);
    let db = open_db(
        &fake,
        "retry_max_attempts=2&retry_budget_ratio=0&retry_budget_min_per_sec=1&breaker=false",
    );
    for _ in 0..50 {
        let _ = db.kv().unwrap().get("k").await;
    }
    // 10 tokens to start with, plus at most one floor retry per (virtual) second.
    assert!(db.retries() <= 12, "{} retries", db.retries());
    assert!(db.retries() >= 10);
}

#[tokio::test(start_paused = true)]
async fn close_waits_for_operations_in_flight() {
    let fake = Fake::new(&[Slow(Duration::from_millis(200))]);
    let db = open_db(&fake, "");
    let kv = db.kv().unwrap().clone();
    let op = tokio::spawn(async move { kv.get("k").await });
    tokio::task::yield_now().await;
    assert_eq!(db.in_flight(), 1);
    let closer = tokio::spawn({
        let db = db.clone();
        async move { db.close().await }
    });
    tokio::task::yield_now().await;
    assert_eq!(
        db.kv().unwrap().get("k").await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert!(
        op.await.unwrap().is_ok(),
        "the operation in flight finished"
    );
    assert!(closer.await.unwrap(), "close saw it finish");
    assert_eq!(db.in_flight(), 0);

    let fake = Fake::new(&[Slow(Duration::from_secs(60))]);
    let db = open_db(&fake, "");
    let kv = db.kv().unwrap().clone();
    let _op = tokio::spawn(async move { kv.get("k").await });
    tokio::task::yield_now().await;
    assert!(
        !db.close_within(Duration::from_millis(50)).await,
        "gave up waiting"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_operations_release_everything() {
    let fake = Fake::new(&[Slow(Duration::from_secs(60))]);
    let db = open_db(&fake, "max_concurrency=2");
    let kv = db.kv().unwrap();
    let r = tokio::time::timeout(Duration::from_millis(10), kv.get("k")).await;
    assert!(r.is_err(), "the caller gave up");
    assert_eq!(db.in_flight(), 0);
    assert_eq!(db.concurrency_in_use(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn background_probe_closes_a_recovered_breaker() {
    let (fake, db) = tripped("breaker_open_for=60s&health_check_interval=100ms").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(fake.0.pings.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        db.breaker_state(),
        BreakerState::Closed,
        "noticed long before open_for"
    );
    let h = db.health().await.unwrap();
    assert_eq!(h.breaker, BreakerState::Closed);
}

/// With every default, an open breaker closes within one probe interval
/// (100ms) of the server answering again, and nothing is pinged while the
/// breaker is closed.
#[tokio::test(start_paused = true)]
async fn defaults_recover_within_the_probe_interval() {
    let fake = Fake::new(&[]);
    let db = open_db_defaults(&fake, "");
    let kv = db.kv().unwrap();
    kv.get("k").await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(fake.pings(), 0, "no probing while the breaker is closed");
    // Five operations fail with transient errors after all their retries.
    fake.push(&[Transient; 15]);
    for _ in 0..5 {
        let _ = kv.get("k").await;
    }
    assert_eq!(db.breaker_state(), BreakerState::Open);
    // The server is back (the script succeeds from here on).
    tokio::time::sleep(Duration::from_millis(110)).await;
    assert_eq!(
        db.breaker_state(),
        BreakerState::Closed,
        "closed by the probe, long before breaker_open_for (1s)"
    );
    assert_eq!(fake.pings(), 1);
    assert!(kv.get("k").await.is_ok());
}

/// The background probe keeps pinging a server that answers "not ready"
/// and closes the breaker on the first ping after it is ready.
#[tokio::test(start_paused = true)]
async fn background_probe_waits_out_a_server_that_is_not_ready() {
    let (fake, db) = tripped("breaker_open_for=60s&health_check_interval=100ms").await;
    fake.push(&[NotReady, NotReady, NotReady]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fake.pings(), 3);
    assert_eq!(db.breaker_state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.pings(), 4);
    assert_eq!(db.breaker_state(), BreakerState::Closed);
}

/// A user call's probe that meets a server not ready yet sends the breaker
/// back to waiting for 50ms, not a whole `breaker_open_for`.
#[tokio::test(start_paused = true)]
async fn probe_meeting_a_server_not_ready_probes_again_soon() {
    let (fake, db) = tripped("breaker_open_for=1s").await;
    let kv = db.kv().unwrap();
    tokio::time::advance(Duration::from_millis(1001)).await;
    fake.push(&[NotReady]);
    let e = kv.get("k").await.unwrap_err();
    assert!(e.is_not_ready(), "{e}");
    assert_eq!(db.breaker_state(), BreakerState::Open);
    let e = kv.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen, "{e}");
    tokio::time::advance(Duration::from_millis(51)).await;
    assert!(kv.get("k").await.is_ok(), "probed again after 50ms");
    assert_eq!(db.breaker_state(), BreakerState::Closed);
    assert_eq!(db.breaker_opened(), 1, "not counted as a new opening");
}

/// `health()` reaching the server closes an open breaker, so it never says
/// OK while user calls keep failing with CircuitOpen.
#[tokio::test(start_paused = true)]
async fn successful_health_check_closes_an_open_breaker() {
    let (fake, db) = tripped("breaker_open_for=60s").await;
    let kv = db.kv().unwrap();
    assert_eq!(
        kv.get("k").await.unwrap_err().kind(),
        ErrorKind::CircuitOpen
    );
    fake.push(&[Transient]);
    assert!(db.health().await.is_err());
    assert_eq!(db.breaker_state(), BreakerState::Open, "a failed check");
    let h = db.health().await.unwrap();
    assert_eq!(h.breaker, BreakerState::Closed);
    assert!(kv.get("k").await.is_ok());
}

/// `retry_max_elapsed` bounds the whole call, an attempt in progress
/// included: a frozen server holds a caller no longer than that.
#[tokio::test(start_paused = true)]
async fn total_limit_cuts_an_attempt_in_progress() {
    let fake = Fake::new(&[Slow(Duration::from_secs(40))]);
    let db = open_db(&fake, "timeout=30s&retry_max_elapsed=10s");
    let start = tokio::time::Instant::now();
    let e = db.kv().unwrap().get("k").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.to_string().contains("retry_max_elapsed"), "{e}");
    assert_eq!(fake.calls(), 1);

    // With the defaults (5s per attempt, 10s in all) a frozen server gets
    // two attempts, the second cut short by the total limit.
    let fake = Fake::new(&[Slow(Duration::from_secs(60)); 3]);
    let db = open_db_defaults(&fake, "");
    let start = tokio::time::Instant::now();
    let e = db.kv().unwrap().get("k").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10), "{e}");
    assert_eq!((fake.calls(), e.attempts()), (2, 2), "{e}");
}

/// Input is checked before the policy: a bad key during a half-open
/// breaker is no probe, and does not close the breaker.
#[tokio::test(start_paused = true)]
async fn bad_input_while_half_open_does_not_close_the_breaker() {
    let (fake, db) = tripped("breaker_open_for=1s").await;
    let kv = db.kv().unwrap();
    tokio::time::advance(Duration::from_millis(1001)).await;
    let e = kv.get("").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!((e.backend(), e.operation()), (Some("fake"), Some("kv.get")));
    assert_ne!(
        db.breaker_state(),
        BreakerState::Closed,
        "a bad key proves nothing"
    );
    assert_eq!(fake.calls(), 5, "the driver was not called");
    // A real probe still decides.
    fake.push(&[Transient]);
    assert_eq!(kv.get("k").await.unwrap_err().kind(), ErrorKind::Connect);
    assert_eq!(db.breaker_state(), BreakerState::Open);
    // A probe that ends in an error saying nothing about the server's
    // health (a constraint) leaves it half-open for the next probe.
    tokio::time::advance(Duration::from_millis(1001)).await;
    fake.push(&[Permanent]);
    assert_eq!(kv.get("k").await.unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(db.breaker_state(), BreakerState::HalfOpen);
    assert!(kv.get("k").await.is_ok());
    assert_eq!(db.breaker_state(), BreakerState::Closed);
}

/// Bad calls take no rate-limit token and no concurrency slot.
#[tokio::test(start_paused = true)]
async fn bad_input_takes_no_rate_limit_token_or_slot() {
    let fake = Fake::new(&[]);
    let db = open_db(&fake, "rate_limit=10&rate_burst=1");
    let kv = db.kv().unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(
            kv.set("", b"v", None).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kv.set("k", b"v", Some(Duration::ZERO))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    }
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no bad call waited for a token"
    );
    kv.get("k").await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the burst token was still there"
    );
    assert_eq!(db.stats().errors_by_kind.len(), 1, "{:?}", db.stats());

    let fake = Fake::new(&[Slow(Duration::from_secs(5))]);
    let db = open_db(&fake, "max_concurrency=1&acquire_timeout=50ms");
    let kv = db.kv().unwrap().clone();
    let held = tokio::spawn({
        let kv = kv.clone();
        async move { kv.get("k").await }
    });
    tokio::task::yield_now().await;
    assert_eq!(db.concurrency_in_use(), Some(1));
    let e = kv.get("").await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "refused at once, not PoolTimeout"
    );
    assert!(held.await.unwrap().is_ok());
}

/// Neither bad input nor errors that say nothing about the server's health
/// end a streak of transient failures.
#[tokio::test(start_paused = true)]
async fn bad_calls_do_not_reset_the_failure_streak() {
    let fake = Fake::new(&[
        Transient, Transient, Transient, Transient, Permanent, Transient,
    ]);
    let db = open_db(&fake, "retry_max_attempts=1&breaker_consecutive_failures=5");
    let kv = db.kv().unwrap();
    for _ in 0..4 {
        let _ = kv.get("k").await;
    }
    assert!(kv.get("").await.is_err());
    assert_eq!(kv.get("k").await.unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(db.breaker_state(), BreakerState::Closed);
    let _ = kv.get("k").await;
    assert_eq!(
        db.breaker_state(),
        BreakerState::Open,
        "the fifth failure in a row"
    );
}

/// Failures of one server of several (marked partial by the driver)
/// neither open the breaker nor count in its failure rate; they are still
/// retried and counted in the stats.
#[tokio::test(start_paused = true)]
async fn partial_failures_do_not_open_the_breaker() {
    let fake = Fake::new(&[Partial; 30]);
    let db = open_db(
        &fake,
        "retry_max_attempts=1&breaker_consecutive_failures=5&breaker_min_calls=5",
    );
    let kv = db.kv().unwrap();
    for _ in 0..30 {
        let e = kv.get("k").await.unwrap_err();
        assert!(e.is_partial(), "{e:?}");
    }
    assert_eq!(db.breaker_state(), BreakerState::Closed);
    assert_eq!(db.breaker_opened(), 0);
    assert_eq!(db.stats().errors(), 30);
    // The same failures unmarked open it.
    fake.push(&[Transient; 5]);
    for _ in 0..5 {
        let _ = kv.get("k").await;
    }
    assert_eq!(db.breaker_state(), BreakerState::Open);
    // Retried like any transient failure.
    let fake = Fake::new(&[Partial, Partial]);
    let db = open_db(&fake, "retry_max_attempts=3");
    assert!(db.kv().unwrap().get("k").await.is_ok());
    assert_eq!(fake.calls(), 3);
}

#[test]
fn health_check_interval_can_be_turned_off() {
    let o = ConnectOptions::from_url("fake://x").unwrap();
    assert_eq!(
        o.policy().health_check_interval,
        Some(Duration::from_millis(100))
    );
    let o = ConnectOptions::from_url("fake://x?health_check_interval=off").unwrap();
    assert_eq!(o.policy().health_check_interval, None);
    let o = ConnectOptions::from_url("fake://x?health_check_interval=1s").unwrap();
    assert_eq!(
        o.policy().health_check_interval,
        Some(Duration::from_secs(1))
    );
}

#[test]
fn nonsense_policy_values_name_the_field() {
    let cases = [
        ("retry_max_attempts=0", "retry_max_attempts"),
        ("retry_min_backoff=0s", "retry_min_backoff"),
        (
            "retry_min_backoff=2s&retry_max_backoff=1s",
            "retry_max_backoff",
        ),
        ("retry_budget_ratio=1.5", "retry_budget_ratio"),
        ("breaker_failure_rate=1.2", "breaker_failure_rate"),
        ("breaker_failure_rate=-0.1", "breaker_failure_rate"),
        ("breaker_open_for=0ms", "breaker_open_for"),
        ("breaker_half_open_probes=0", "breaker_half_open_probes"),
        ("max_concurrency=0", "max_concurrency"),
        ("rate_limit=0", "rate_limit"),
        ("rate_limit=-5", "rate_limit"),
        ("health_check_interval=0s", "health_check_interval"),
        ("retry_max_attempts=many", "retry_max_attempts"),
        ("breaker=maybe", "breaker"),
    ];
    for (params, field) in cases {
        let e = ConnectOptions::from_url(&format!("fake://x?{params}"))
            .and_then(|o| o.policy().validate())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{params}");
        assert!(e.to_string().contains(field), "{params}: {e}");
    }
}
