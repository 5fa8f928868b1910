//! The circuit breaker: lock-free, per database.

use crate::shard::{Padded, SHARDS, shard};
use crate::{Error, ErrorKind, Result};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Circuit breaker settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Whether the breaker is on. Default on.
    pub enabled: bool,
    /// Transient failures in a row that open it (0 = never by count). Default 5.
    pub consecutive_failures: u32,
    /// Failure rate in the window that opens it (0.0 to 1.0; 1.0 only on all failing). Default 0.5.
    pub failure_rate: f64,
    /// The rolling window the failure rate is measured over. Default 10s.
    pub window: Duration,
    /// Fewest operations in the window before the rate counts. Default 20.
    pub min_calls: u32,
    /// How long it stays open before letting probes through. Default 1s.
    pub open_for: Duration,
    /// Operations let through at once while half-open. Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 20,
            open_for: Duration::from_secs(1),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// A breaker that never opens.
    pub fn disabled() -> Self {
        BreakerConfig {
            enabled: false,
            ..BreakerConfig::default()
        }
    }

    /// Check the values, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(Error::invalid_config(format!(
                "breaker_failure_rate must be from 0 to 1, got {}",
                self.failure_rate
            )));
        }
        if self.window < Duration::from_millis(10) {
            return Err(Error::invalid_config(
                "breaker_window must be at least 10ms",
            ));
        }
        if self.open_for.is_zero() {
            return Err(Error::invalid_config("breaker_open_for must be above zero"));
        }
        if self.half_open_probes == 0 {
            return Err(Error::invalid_config(
                "breaker_half_open_probes must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Operations flow.
    Closed,
    /// Operations fail fast with `CircuitOpen`.
    Open,
    /// A limited number of probes are let through.
    HalfOpen,
}

impl BreakerState {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
const BUCKETS: usize = 10;

/// One slice of the rolling window.
#[derive(Debug, Default)]
struct Bucket {
    /// Index of the time slice this bucket counts for.
    slice: AtomicU64,
    /// failures << 32 | total
    counts: AtomicU64,
}

/// How long an open breaker waits before the next probe when the last one
/// met a server that is up but not ready yet (starting, loading, recovering),
/// at most `open_for`.
pub(crate) const NOT_READY_RETRY: Duration = Duration::from_millis(50);

/// How an operation that the breaker let through ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It succeeded.
    Healthy,
    /// It failed in a way that says nothing about the server's health (a
    /// constraint, bad input the driver refused): not counted at all.
    Ignored,
    /// A transient failure: the server or the way to it is unwell.
    Failed,
    /// The server answered that it is alive but not ready yet.
    NotReady,
}

impl Outcome {
    /// The outcome an operation's result means for the breaker.
    pub(crate) fn of<T>(result: &Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Healthy,
            // One server of several failed; the others still serve.
            Err(e) if e.is_partial() => Outcome::Ignored,
            Err(e) if e.is_not_ready() => Outcome::NotReady,
            Err(e)
                if e.is_transient()
                    && !matches!(e.kind(), ErrorKind::CircuitOpen | ErrorKind::Closed) =>
            {
                Outcome::Failed
            }
            Err(_) => Outcome::Ignored,
        }
    }
}

/// What the breaker let through; hand it back with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Breaker off, or closed.
    Normal,
    /// A half-open probe.
    Probe,
    /// Breaker disabled: nothing to record.
    Off,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    system: &'static str,
    cfg: BreakerConfig,
    state: AtomicU8,
    /// While open: when the next probe may go (ms on this breaker's clock).
    probe_at_ms: AtomicU64,
    consecutive: AtomicU32,
    probes: AtomicU32,
    /// The rolling window, one copy per thread shard so that counting a
    /// success never contends; the failure path sums all shards.
    buckets: Box<[Padded<[Bucket; BUCKETS]>]>,
    slice_ms: u64,
    epoch: Instant,
    opened_total: AtomicU64,
    /// Woken whenever the breaker opens (the background health probe waits
    /// on it, so nothing runs while the breaker stays closed).
    opened: std::sync::Arc<tokio::sync::Notify>,
}

impl Breaker {
    pub(crate) fn new(system: &'static str, cfg: BreakerConfig) -> Self {
        let slice_ms = (cfg.window.as_millis() as u64 / BUCKETS as u64).max(1);
        Breaker {
            system,
            cfg,
            state: AtomicU8::new(CLOSED),
            probe_at_ms: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            probes: AtomicU32::new(0),
            buckets: (0..SHARDS).map(|_| Padded::default()).collect(),
            slice_ms,
            epoch: Instant::now(),
            opened_total: AtomicU64::new(0),
            opened: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified each time the breaker opens.
    pub(crate) fn opened_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.opened.clone()
    }

    fn now_ms(&self) -> u64 {
        // Tokio's clock, so tests can pause and advance time.
        self.ms_at(tokio::time::Instant::now())
    }

    /// Milliseconds since this breaker's epoch: the clock of its window.
    pub(crate) fn ms_at(&self, at: tokio::time::Instant) -> u64 {
        at.into_std()
            .saturating_duration_since(self.epoch)
            .as_millis() as u64
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// How many times it has opened.
    pub(crate) fn opened_total(&self) -> u64 {
        self.opened_total.load(Ordering::Relaxed)
    }

    /// May an operation go ahead?
    pub(crate) fn allow(&self) -> Result<Pass> {
        if !self.cfg.enabled {
            return Ok(Pass::Off);
        }
        match self.state.load(Ordering::Acquire) {
            CLOSED => Ok(Pass::Normal),
            OPEN => {
                let probe_at = self.probe_at_ms.load(Ordering::Acquire);
                let now = self.now_ms();
                if now < probe_at {
                    return Err(self.open_error(probe_at - now));
                }
                // Time is up: one caller moves it to half-open.
                let _ = self.state.compare_exchange(
                    OPEN,
                    HALF_OPEN,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                self.try_probe()
            }
            _ => self.try_probe(),
        }
    }

    fn try_probe(&self) -> Result<Pass> {
        let prev = self.probes.fetch_add(1, Ordering::AcqRel);
        if prev < self.cfg.half_open_probes {
            Ok(Pass::Probe)
        } else {
            self.probes.fetch_sub(1, Ordering::AcqRel);
            Err(self.open_error(0))
        }
    }

    fn open_error(&self, left_ms: u64) -> Error {
        let msg = if left_ms > 0 {
            format!("circuit breaker is open after repeated failures; next probe in {left_ms}ms")
        } else {
            "circuit breaker is half-open and its probe is in flight".to_owned()
        };
        Error::new(ErrorKind::CircuitOpen, msg).set_transient(true)
    }

    /// Record an operation's outcome; `at` is when it ended (the caller has
    /// read the clock already, so the success path reads it no more).
    /// Record an outcome at `now_ms` (from [`ms_at`](Breaker::ms_at)).
    ///
    /// A probe that meets a server not ready yet opens the breaker again for
    /// only [`NOT_READY_RETRY`]: the server is coming back, so the next probe
    /// should not wait a whole `open_for`.
    ///
    /// An [`Ignored`](Outcome::Ignored) outcome changes nothing: a probe that
    /// ends so only gives its slot back (the breaker stays half-open), and a
    /// normal call neither counts in the window nor ends a failure streak.
    pub(crate) fn record(&self, pass: Pass, outcome: Outcome, now_ms: u64) {
        let failed = match outcome {
            Outcome::Healthy => false,
            Outcome::Failed | Outcome::NotReady => true,
            Outcome::Ignored => {
                if pass == Pass::Probe {
                    self.probes.fetch_sub(1, Ordering::AcqRel);
                }
                return;
            }
        };
        match pass {
            Pass::Off => {}
            Pass::Probe => {
                self.probes.fetch_sub(1, Ordering::AcqRel);
                match outcome {
                    Outcome::NotReady => self.hold(now_ms),
                    Outcome::Failed => self.trip(now_ms),
                    Outcome::Healthy | Outcome::Ignored => self.close(),
                }
            }
            Pass::Normal => {
                self.count(failed, now_ms);
                if failed {
                    let run = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
                    let by_count =
                        self.cfg.consecutive_failures > 0 && run >= self.cfg.consecutive_failures;
                    if by_count || self.rate_exceeded(now_ms) {
                        self.trip(now_ms);
                    }
                } else if self.consecutive.load(Ordering::Relaxed) != 0 {
                    self.consecutive.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    /// Back to open after a probe met a server that is not ready yet: the
    /// next probe may go after [`NOT_READY_RETRY`] (at most `open_for`). Not
    /// counted as a new opening.
    fn hold(&self, now_ms: u64) {
        let wait = NOT_READY_RETRY.min(self.cfg.open_for).as_millis() as u64;
        self.probe_at_ms.store(now_ms + wait, Ordering::Release);
        self.state.store(OPEN, Ordering::Release);
        tracing::debug!(target: "dbx", system = self.system, "dbx: the server is not ready yet; probing again soon");
    }

    /// Open now (from closed or half-open).
    fn trip(&self, now_ms: u64) {
        let open_ms = self.cfg.open_for.as_millis() as u64;
        self.probe_at_ms
            .store(now_ms.saturating_add(open_ms), Ordering::Release);
        if self.state.swap(OPEN, Ordering::AcqRel) != OPEN {
            self.opened.notify_one();
            self.opened_total.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("dbx.client.breaker.transitions", "db.system.name" => self.system, "state" => "open")
                .increment(1);
            tracing::warn!(
                target: "dbx",
                system = self.system,
                open_for = ?self.cfg.open_for,
                "dbx: circuit breaker opened"
            );
        }
    }

    /// Close and forget past failures (a probe succeeded).
    pub(crate) fn close(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
        for b in self.buckets.iter().flat_map(|s| s.0.iter()) {
            b.counts.store(0, Ordering::Relaxed);
        }
        if self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            metrics::counter!("dbx.client.breaker.transitions", "db.system.name" => self.system, "state" => "closed")
                .increment(1);
            tracing::info!(target: "dbx", system = self.system, "dbx: circuit breaker closed");
        }
    }

    fn count(&self, failed: bool, now_ms: u64) {
        let slice = now_ms / self.slice_ms;
        let b = &self.buckets[shard()].0[(slice % BUCKETS as u64) as usize];
        let seen = b.slice.load(Ordering::Relaxed);
        if seen != slice
            && b.slice
                .compare_exchange(seen, slice, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            b.counts.store(0, Ordering::Relaxed);
        }
        b.counts
            .fetch_add(1 | (u64::from(failed) << 32), Ordering::Relaxed);
    }

    fn rate_exceeded(&self, now_ms: u64) -> bool {
        if self.cfg.min_calls == 0 && self.cfg.failure_rate >= 1.0 {
            return false;
        }
        let now_slice = now_ms / self.slice_ms;
        let (mut total, mut failures) = (0u64, 0u64);
        for b in self.buckets.iter().flat_map(|s| s.0.iter()) {
            let slice = b.slice.load(Ordering::Relaxed);
            if now_slice.saturating_sub(slice) < BUCKETS as u64 {
                let c = b.counts.load(Ordering::Relaxed);
                total += c & 0xFFFF_FFFF;
                failures += c >> 32;
            }
        }
        total >= u64::from(self.cfg.min_calls.max(1))
            && failures as f64 >= self.cfg.failure_rate * total as f64
    }
}
