//! Retry configuration, backoff and the retry budget.

use crate::{Error, Result};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How failed attempts are retried.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Most attempts per operation, the first included (1 disables retries). Default 3.
    pub max_attempts: u32,
    /// First backoff delay. Default 10ms.
    pub min_backoff: Duration,
    /// Largest backoff delay. Default 1s.
    pub max_backoff: Duration,
    /// Most time an operation may take in all, counted from the call:
    /// attempts, backoff and waits for limits. An attempt in progress is cut
    /// off at this bound too, so it is a real upper bound. Default 10s.
    pub max_elapsed: Duration,
    /// Randomize each delay (full jitter), so clients do not retry in lockstep. Default on.
    pub jitter: bool,
    /// Retries allowed per successful operation, over time (0.0 to 1.0). Default 0.2.
    pub budget_ratio: f64,
    /// Retries allowed per second whatever the successes. Default 10.
    pub budget_min_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(10),
            jitter: true,
            budget_ratio: 0.2,
            budget_min_per_sec: 10,
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn disabled() -> Self {
        RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        }
    }

    /// Check the values, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::invalid_config(
                "retry_max_attempts must be at least 1 (1 disables retries)",
            ));
        }
        if self.min_backoff.is_zero() {
            return Err(Error::invalid_config(
                "retry_min_backoff must be above zero",
            ));
        }
        if self.max_backoff < self.min_backoff {
            return Err(Error::invalid_config(format!(
                "retry_max_backoff ({:?}) must not be below retry_min_backoff ({:?})",
                self.max_backoff, self.min_backoff
            )));
        }
        if self.max_elapsed.is_zero() {
            return Err(Error::invalid_config(
                "retry_max_elapsed must be above zero",
            ));
        }
        if !(0.0..=1.0).contains(&self.budget_ratio) {
            return Err(Error::invalid_config(format!(
                "retry_budget_ratio must be from 0 to 1, got {}",
                self.budget_ratio
            )));
        }
        Ok(())
    }

    /// Delays for re-running whole transactions: the same curve, no count limit.
    pub(crate) fn backoff_unbounded(&self) -> impl Iterator<Item = Duration> + use<> {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .without_max_times();
        if self.jitter {
            b.with_jitter().build()
        } else {
            b.build()
        }
    }

    /// The sequence of delays between attempts.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            b.with_jitter().build()
        } else {
            b.build()
        }
    }
}

/// Milli-tokens per retry.
const TOKEN: i64 = 1000;

/// A retry budget: successes deposit `ratio` of a token, each retry
/// withdraws one; when empty, a floor of `min_per_sec` retries per second
/// still goes through. Lock-free; a success costs one atomic load once the
/// budget is full.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    balance: AtomicI64,
    cap: i64,
    deposit: i64,
    /// Floor limiter: theoretical arrival time in ns since `epoch` (GCRA).
    floor_tat: AtomicU64,
    floor_interval_ns: u64,
    epoch: Instant,
}

impl RetryBudget {
    pub(crate) fn new(cfg: &RetryConfig) -> Self {
        let deposit = (cfg.budget_ratio * TOKEN as f64) as i64;
        RetryBudget {
            // Start full enough for a burst of retries right after connecting.
            balance: AtomicI64::new(10 * TOKEN),
            cap: (100 * TOKEN).max(10 * TOKEN),
            deposit,
            floor_tat: AtomicU64::new(0),
            floor_interval_ns: if cfg.budget_min_per_sec == 0 {
                u64::MAX
            } else {
                1_000_000_000 / u64::from(cfg.budget_min_per_sec)
            },
            epoch: Instant::now(),
        }
    }

    pub(crate) fn on_success(&self) {
        if self.deposit > 0 && self.balance.load(Ordering::Relaxed) < self.cap {
            self.balance.fetch_add(self.deposit, Ordering::Relaxed);
        }
    }

    /// Take one retry from the budget; `false` if there is none.
    pub(crate) fn try_withdraw(&self) -> bool {
        let mut cur = self.balance.load(Ordering::Relaxed);
        while cur >= TOKEN {
            match self.balance.compare_exchange_weak(
                cur,
                cur - TOKEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        self.try_floor()
    }

    fn try_floor(&self) -> bool {
        if self.floor_interval_ns == u64::MAX {
            return false;
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut tat = self.floor_tat.load(Ordering::Relaxed);
        loop {
            // At most one floor retry per interval.
            if tat > now {
                return false;
            }
            let next = now + self.floor_interval_ns;
            match self.floor_tat.compare_exchange_weak(
                tat,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(t) => tat = t,
            }
        }
    }
}
