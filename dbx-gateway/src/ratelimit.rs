//! Per-principal and per-IP rate limits: in this process (GCRA, governor),
//! or shared by every replica through a dbx key-value store (fixed windows
//! counted with `incr`, expired with a TTL).

use crate::config::{Rate, RateLimitConfig};
use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One limit (per principal or per IP).
#[derive(Debug)]
enum Limiter {
    Local(DefaultKeyedRateLimiter<String>),
    Shared { kv: dbx::Kv, rate: Rate },
}

/// The limits in force.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    per_principal: Option<Limiter>,
    per_ip: Option<Limiter>,
    prefix: String,
}

fn local(rate: Rate) -> Limiter {
    let burst = NonZeroU32::new(rate.requests).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(rate.per_secs) / rate.requests.max(1);
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    Limiter::Local(DefaultKeyedRateLimiter::keyed(quota))
}

impl RateLimits {
    /// Build the limits; `shared` is the key-value store of
    /// `shared_database` when one is configured.
    pub(crate) fn new(cfg: &RateLimitConfig, shared: Option<dbx::Kv>) -> RateLimits {
        let make = |r: &Option<Rate>| {
            r.map(|rate| match &shared {
                Some(kv) => Limiter::Shared {
                    kv: kv.clone(),
                    rate,
                },
                None => local(rate),
            })
        };
        RateLimits {
            per_principal: make(&cfg.per_principal),
            per_ip: make(&cfg.per_ip),
            prefix: cfg.key_prefix.clone(),
        }
    }

    /// Count one request from `ip`; 429 with the seconds to wait when over the limit.
    pub(crate) async fn check_ip(&self, ip: &str) -> Result<(), ApiError> {
        match &self.per_ip {
            Some(l) => self.check_one(l, "ip", ip).await,
            None => Ok(()),
        }
    }

    /// Count one request of `principal`.
    pub(crate) async fn check_principal(&self, principal: &str) -> Result<(), ApiError> {
        match &self.per_principal {
            Some(l) => self.check_one(l, "principal", principal).await,
            None => Ok(()),
        }
    }

    async fn check_one(&self, l: &Limiter, scope: &str, id: &str) -> Result<(), ApiError> {
        match l {
            Limiter::Local(rl) => match rl.check_key(&id.to_owned()) {
                Ok(()) => Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    Err(ApiError::too_many(
                        wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                        format!("rate limit per {scope} exceeded"),
                    ))
                }
            },
            Limiter::Shared { kv, rate } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let window = now / rate.per_secs;
                // Ids are hashed into the key: no user text in key names.
                let key = format!(
                    "{}{scope}:{:016x}:{window}",
                    self.prefix,
                    fnv1a(id.as_bytes())
                );
                let n = match kv.incr(&key, 1).await {
                    Ok(n) => n,
                    Err(e) => {
                        // The shared store is down: fail open, loudly.
                        tracing::warn!(error = %e, "rate limit store unavailable; request let through");
                        return Ok(());
                    }
                };
                if n == 1
                    && let Err(e) = kv
                        .expire(&key, Duration::from_secs(rate.per_secs * 2))
                        .await
                {
                    tracing::warn!(error = %e, "rate limit window could not be given a TTL");
                }
                if n > i64::from(rate.requests) {
                    let retry = (window + 1) * rate.per_secs - now;
                    return Err(ApiError::too_many(
                        retry,
                        format!("rate limit per {scope} exceeded"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Drop idle in-process limiter state (called now and then).
    pub(crate) fn prune(&self) {
        for l in [&self.per_principal, &self.per_ip].into_iter().flatten() {
            if let Limiter::Local(rl) = l {
                rl.retain_recent();
            }
        }
    }
}

/// FNV-1a, 64 bits: a stable hash for window keys.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
