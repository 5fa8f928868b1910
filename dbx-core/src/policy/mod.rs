//! Resilience, written once for every driver: per-attempt timeouts, retry
//! with exponential backoff and jitter, a retry budget, a circuit breaker, a
//! concurrency limit (bulkhead) and an optional rate limit.
//!
//! Every operation of every handle runs through them in this order:
//!
//! ```text
//! closed check -> concurrency limit -> rate limit -> circuit breaker -> retry -> timeout -> driver
//! ```
//!
//! so the timeout bounds each attempt, the retry loop sits inside one
//! breaker decision, and the limits count logical operations, not attempts.
//!
//! # What is retried
//!
//! An attempt's error is retried only if it is transient
//! ([`Error::is_transient`](crate::Error::is_transient)) **and** the operation
//! is safe to repeat: reads, idempotent writes (`set`, `delete`, `expire`,
//! `mset`), or any operation whose error proves it never reached the server
//! ([`Error::is_never_sent`](crate::Error::is_never_sent): connection refused,
//! no pooled connection). `incr`, `set_nx` and SQL `execute` are not retried
//! after an ambiguous failure unless the caller marks them idempotent
//! ([`Sql::idempotent`](crate::Sql::idempotent),
//! [`Kv::idempotent`](crate::Kv::idempotent)). Statements inside a transaction
//! are never retried one by one; [`Sql::transaction_with`](crate::Sql::transaction_with)
//! can re-run a whole transaction on serialization failures and deadlocks.
//! A retry budget (a share of recent successes plus a small floor per second)
//! keeps a struggling server from a retry storm.
//!
//! # The circuit breaker
//!
//! It opens after `consecutive_failures` transient failures in a row, or when
//! at least `min_calls` operations in the last `window` saw a failure rate of
//! `failure_rate` or more. While open, operations fail at once with
//! [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen) without touching
//! the network. After `open_for` it lets `half_open_probes` operations through:
//! one success closes it, a failure opens it again. Only transient errors count
//! as failures: a constraint violation or bad input says nothing about the
//! server's health.
//!
//! Recovery does not wait for user traffic: while the breaker is open a
//! background task pings the database every `health_check_interval` (default
//! 100ms) and closes the breaker on the first success, so service resumes
//! within about that long of the server being ready. A successful
//! [`Database::health`](crate::Database::health) closes it too. A server that
//! answers it is up but not ready yet (Redis `LOADING`, PostgreSQL `57P03`
//! during crash recovery; [`Error::is_not_ready`](crate::Error::is_not_ready))
//! sends a probe back to waiting only 50ms, not a whole `open_for`. For a
//! gentler return, `health_check_interval=off` leaves recovery to the probes
//! of user calls after `breaker_open_for`.
//!
//! # The time an operation may take
//!
//! Each attempt ends at the smaller of its own deadline (`timeout`, default
//! 5s) and the operation's total limit (`retry_max_elapsed`, default 10s,
//! counted from the call, waits for limits and backoff included), so no
//! call waits longer than `retry_max_elapsed`, even on a frozen server.
//!
//! # Cancellation
//!
//! Dropping an operation's future stops it at its next await point. The
//! connection it used goes back to its pool clean or is discarded: SQLite
//! rolls back any transaction left open before reuse; network drivers discard
//! a connection whose request was cut off mid-flight. A dropped
//! [`SqlTransaction`](crate::SqlTransaction) is rolled back. Permits of the limits
//! and breaker probes are released by guards, so nothing leaks.

pub(crate) mod breaker;
pub(crate) mod engine;
mod limit;
mod retry;

pub use breaker::{BreakerConfig, BreakerState};
pub use limit::LimitConfig;
pub use retry::RetryConfig;

pub(crate) use limit::{ConcurrencyLimit, RateLimit};
pub(crate) use retry::RetryBudget;

use crate::error::{Error, Result};
use std::time::Duration;

/// Every resilience setting of one database.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// Retry with backoff.
    pub retry: RetryConfig,
    /// Circuit breaker.
    pub breaker: BreakerConfig,
    /// Concurrency and rate limits.
    pub limit: LimitConfig,
    /// How often a background task pings the database while the breaker is
    /// open, closing it on the first success. Default 100ms; `None` (URL
    /// `health_check_interval=off`) leaves recovery to user calls' probes
    /// after `breaker_open_for`, a gentler return.
    pub health_check_interval: Option<Duration>,
    /// How long [`Database::close`](crate::Database::close) waits for
    /// operations in flight before closing the pools.
    pub close_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            limit: LimitConfig::default(),
            health_check_interval: Some(DEFAULT_HEALTH_CHECK_INTERVAL),
            close_timeout: Duration::from_secs(10),
        }
    }
}

/// Default `health_check_interval`: an open breaker's database is pinged
/// this often, so service resumes within about this long of the server
/// being ready again.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(100);

impl Policy {
    /// Check every value, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        self.retry.validate()?;
        self.breaker.validate()?;
        self.limit.validate()?;
        if self.health_check_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "health_check_interval must be above zero (or off)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
