//! Concurrency limit (bulkhead) and rate limit.

use crate::{Error, ErrorKind, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Limits on how much work one database takes at once.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct LimitConfig {
    /// Most operations in flight at once; further ones wait up to the
    /// acquire timeout. `None` (default): no limit beyond the pools.
    pub max_concurrency: Option<usize>,
    /// Most operations started per second, smoothed; `None` (default): no limit.
    pub rate_per_sec: Option<f64>,
    /// Operations that may start at once above the smooth rate. Default 0
    /// (taken as 1).
    pub rate_burst: u32,
}

impl LimitConfig {
    /// Check the values, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.max_concurrency == Some(0) {
            return Err(Error::invalid_config("max_concurrency must be at least 1"));
        }
        if let Some(r) = self.rate_per_sec
            && !(r > 0.0 && r <= 1e9)
        {
            return Err(Error::invalid_config(format!(
                "rate_limit must be above 0 and at most 1e9 per second, got {r}"
            )));
        }
        Ok(())
    }
}

/// The bulkhead: a semaphore whose waits are bounded.
#[derive(Debug)]
pub(crate) struct ConcurrencyLimit {
    sem: Semaphore,
    max: usize,
}

impl ConcurrencyLimit {
    pub(crate) fn new(max: usize) -> Self {
        ConcurrencyLimit {
            sem: Semaphore::new(max),
            max,
        }
    }

    pub(crate) async fn acquire(&self, wait: Duration) -> Result<SemaphorePermit<'_>> {
        if let Ok(p) = self.sem.try_acquire() {
            return Ok(p);
        }
        match tokio::time::timeout(wait, self.sem.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Error::new(
                ErrorKind::Closed,
                "the database handle was closed",
            )),
            Err(_) => Err(Error::new(
                ErrorKind::PoolTimeout,
                format!(
                    "concurrency limit of {} operations reached; no slot became free within {wait:?}",
                    self.max
                ),
            )),
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.max - self.sem.available_permits()
    }
}

/// A smooth rate limit (GCRA) on one atomic: callers over the rate wait for
/// their slot, bounded by `max_wait`.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval_ns: u64,
    burst_ns: u64,
    tat: AtomicU64,
    epoch: Instant,
}

impl RateLimit {
    pub(crate) fn new(per_sec: f64, burst: u32) -> Self {
        let interval_ns = (1e9 / per_sec).max(1.0) as u64;
        RateLimit {
            interval_ns,
            burst_ns: interval_ns * u64::from(burst.saturating_sub(1)),
            tat: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        let now = tokio::time::Instant::now().into_std();
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    pub(crate) async fn wait(&self, max_wait: Duration) -> Result<()> {
        let now = self.now_ns();
        let mut tat = self.tat.load(Ordering::Relaxed);
        let delay = loop {
            let start = tat.max(now);
            let delay = start.saturating_sub(now + self.burst_ns);
            if delay > max_wait.as_nanos() as u64 {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("rate limit: no slot within {max_wait:?}"),
                )
                .set_never_sent(true));
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break delay,
                Err(t) => tat = t,
            }
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_nanos(delay)).await;
        }
        Ok(())
    }
}
