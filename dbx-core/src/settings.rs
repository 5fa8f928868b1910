//! The one schema of dbx's own settings: every common and resilience
//! setting is declared once here, with its URL parameter, its `dbx.toml`
//! table and key, and how its value is parsed and applied. URL parsing
//! ([`ConnectOptions::set_param`]), `dbx.toml` and its environment
//! overrides ([`crate::config`]), the builder's `param` and the lists in
//! "unknown parameter" errors all read this table, so adding a setting
//! touches this file (and the field it sets) only.
//!
//! Backend-specific parameters are not here: each driver declares them
//! ([`Driver::params`](crate::driver::Driver::params)).

use crate::error::{Error, Result};
use crate::options::ConnectOptions;
use crate::util::parse_duration;

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The URL parameter (`retry_max_attempts`).
    pub param: &'static str,
    /// The `dbx.toml` table of a database it sits in (`retry`), or `""` for
    /// the database's own table.
    pub table: &'static str,
    /// Its key in that table (`max_attempts`).
    pub key: &'static str,
    /// What it sets, for the documentation.
    pub doc: &'static str,
    apply: fn(&mut ConnectOptions, &str, &str) -> Result<()>,
}

impl Setting {
    /// Parse `value` and set it on `options` (errors name the parameter).
    pub fn apply(&self, options: &mut ConnectOptions, value: &str) -> Result<()> {
        (self.apply)(options, self.param, value)
    }
}

const fn s(
    param: &'static str,
    table: &'static str,
    key: &'static str,
    doc: &'static str,
    apply: fn(&mut ConnectOptions, &str, &str) -> Result<()>,
) -> Setting {
    Setting {
        param,
        table,
        key,
        doc,
        apply,
    }
}

fn parse_u32(field: &str, v: &str) -> Result<u32> {
    v.trim()
        .parse::<u32>()
        .map_err(|_| Error::invalid_config(format!("{field} must be a whole number, got {v:?}")))
}

fn parse_f64(field: &str, v: &str) -> Result<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| Error::invalid_config(format!("{field} must be a number, got {v:?}")))
}

pub(crate) fn parse_bool(field: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid_config(format!(
            "{field} must be true or false, got {v:?}"
        ))),
    }
}

/// Every setting, in the order the documentation lists them.
pub static SETTINGS: &[Setting] = &[
    // --- connections and timeouts ---
    s(
        "pool_max_size",
        "",
        "pool_max_size",
        "most connections the pool opens (per backend default)",
        |o, f, v| {
            let n = v.trim().parse::<usize>().map_err(|_| {
                Error::invalid_config(format!(
                    "{f} {:?} is not a whole number",
                    crate::util::truncate(v, 40)
                ))
            })?;
            o.set_pool_max_size(n).map(drop)
        },
    ),
    s(
        "timeout",
        "",
        "timeout",
        "deadline of one operation attempt (5s)",
        |o, f, v| o.set_timeout(parse_duration(f, v)?).map(drop),
    ),
    s(
        "connect_timeout",
        "",
        "connect_timeout",
        "deadline of opening one connection (10s)",
        |o, f, v| o.set_connect_timeout(parse_duration(f, v)?).map(drop),
    ),
    s(
        "acquire_timeout",
        "",
        "acquire_timeout",
        "longest wait for a free pooled connection (10s)",
        |o, f, v| o.set_acquire_timeout(parse_duration(f, v)?).map(drop),
    ),
    s(
        "log_statements",
        "",
        "log_statements",
        "put SQL text (placeholders only) on spans (false)",
        |_, f, v| parse_bool(f, v).map(drop),
    ),
    // --- retry ---
    s(
        "retry_max_attempts",
        "retry",
        "max_attempts",
        "attempts per operation, the first included (3)",
        |o, f, v| {
            o.policy_mut().retry.max_attempts = parse_u32(f, v)?;
            Ok(())
        },
    ),
    s(
        "retry_min_backoff",
        "retry",
        "min_backoff",
        "first backoff delay (10ms)",
        |o, f, v| {
            o.policy_mut().retry.min_backoff = parse_duration(f, v)?;
            Ok(())
        },
    ),
    s(
        "retry_max_backoff",
        "retry",
        "max_backoff",
        "largest backoff delay (1s)",
        |o, f, v| {
            o.policy_mut().retry.max_backoff = parse_duration(f, v)?;
            Ok(())
        },
    ),
    s(
        "retry_max_elapsed",
        "retry",
        "max_elapsed",
        "most time an operation takes in all (10s)",
        |o, f, v| {
            o.policy_mut().retry.max_elapsed = parse_duration(f, v)?;
            Ok(())
        },
    ),
    s(
        "retry_jitter",
        "retry",
        "jitter",
        "randomize backoff delays (true)",
        |o, f, v| {
            o.policy_mut().retry.jitter = parse_bool(f, v)?;
            Ok(())
        },
    ),
    s(
        "retry_budget_ratio",
        "retry",
        "budget_ratio",
        "retries allowed per success (0.2)",
        |o, f, v| {
            o.policy_mut().retry.budget_ratio = parse_f64(f, v)?;
            Ok(())
        },
    ),
    s(
        "retry_budget_min_per_sec",
        "retry",
        "budget_min_per_sec",
        "retries allowed per second regardless (10)",
        |o, f, v| {
            o.policy_mut().retry.budget_min_per_sec = parse_u32(f, v)?;
            Ok(())
        },
    ),
    // --- circuit breaker ---
    s(
        "breaker",
        "breaker",
        "enabled",
        "whether the breaker is on (true)",
        |o, f, v| {
            o.policy_mut().breaker.enabled = parse_bool(f, v)?;
            Ok(())
        },
    ),
    s(
        "breaker_consecutive_failures",
        "breaker",
        "consecutive_failures",
        "failures in a row that open it (5)",
        |o, f, v| {
            o.policy_mut().breaker.consecutive_failures = parse_u32(f, v)?;
            Ok(())
        },
    ),
    s(
        "breaker_failure_rate",
        "breaker",
        "failure_rate",
        "failure rate in the window that opens it (0.5)",
        |o, f, v| {
            o.policy_mut().breaker.failure_rate = parse_f64(f, v)?;
            Ok(())
        },
    ),
    s(
        "breaker_window",
        "breaker",
        "window",
        "the rolling window of the rate (10s)",
        |o, f, v| {
            o.policy_mut().breaker.window = parse_duration(f, v)?;
            Ok(())
        },
    ),
    s(
        "breaker_min_calls",
        "breaker",
        "min_calls",
        "fewest calls in the window before the rate counts (20)",
        |o, f, v| {
            o.policy_mut().breaker.min_calls = parse_u32(f, v)?;
            Ok(())
        },
    ),
    s(
        "breaker_open_for",
        "breaker",
        "open_for",
        "how long it stays open before user calls probe (1s)",
        |o, f, v| {
            o.policy_mut().breaker.open_for = parse_duration(f, v)?;
            Ok(())
        },
    ),
    s(
        "breaker_half_open_probes",
        "breaker",
        "half_open_probes",
        "probes let through at once while half-open (1)",
        |o, f, v| {
            o.policy_mut().breaker.half_open_probes = parse_u32(f, v)?;
            Ok(())
        },
    ),
    // --- limits ---
    s(
        "max_concurrency",
        "limit",
        "max_concurrency",
        "most operations in flight (none)",
        |o, f, v| {
            o.policy_mut().limit.max_concurrency = Some(parse_u32(f, v)? as usize);
            Ok(())
        },
    ),
    s(
        "rate_limit",
        "limit",
        "rate_limit",
        "operations per second (none)",
        |o, f, v| {
            o.policy_mut().limit.rate_per_sec = Some(parse_f64(f, v)?);
            Ok(())
        },
    ),
    s(
        "rate_burst",
        "limit",
        "rate_burst",
        "operations allowed at once above the rate",
        |o, f, v| {
            o.policy_mut().limit.rate_burst = parse_u32(f, v)?;
            Ok(())
        },
    ),
    // --- health and shutdown ---
    s(
        "health_check_interval",
        "",
        "health_check_interval",
        "ping period while the breaker is open, or off (100ms)",
        |o, f, v| {
            o.policy_mut().health_check_interval = match v.trim().to_ascii_lowercase().as_str() {
                "off" | "none" | "false" | "0" => None,
                _ => Some(parse_duration(f, v)?),
            };
            Ok(())
        },
    ),
    s(
        "close_timeout",
        "",
        "close_timeout",
        "how long close() waits for operations in flight (10s)",
        |o, f, v| {
            o.policy_mut().close_timeout = parse_duration(f, v)?;
            Ok(())
        },
    ),
    // --- result cache ---
    s(
        "cache",
        "cache",
        "enabled",
        "turn the result cache on (false; any other cache setting turns it on)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_max_entries",
        "cache",
        "max_entries",
        "most entries the result cache holds (10000)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_max_bytes",
        "cache",
        "max_bytes",
        "most bytes the result cache holds (64MiB)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_ttl",
        "cache",
        "ttl",
        "TTL of cached reads whose policy sets none (60s)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_swr",
        "cache",
        "swr",
        "stale-while-revalidate window of such reads (0s)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_sync",
        "cache",
        "sync",
        "how long versions read from the shared tier are trusted (1s)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_tier_timeout",
        "cache",
        "tier_timeout",
        "longest wait for the shared tier (100ms)",
        |_, f, v| check_cache(f, v),
    ),
    s(
        "cache_namespace",
        "cache",
        "namespace",
        "prefix of this database's keys in the shared tier (from the URL)",
        |_, f, v| check_cache(f, v),
    ),
];

/// Check a result cache setting (they are read from the parameters when
/// the database opens).
fn check_cache(field: &str, value: &str) -> Result<()> {
    #[cfg(feature = "cache")]
    return crate::cache::config::check(field, value);
    #[cfg(not(feature = "cache"))]
    {
        let _ = value;
        Err(Error::invalid_config(format!(
            "{field}: the result cache needs dbx's `cache` cargo feature"
        )))
    }
}

/// The setting of a URL parameter.
pub fn by_param(param: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.param == param)
}

/// The setting of a `dbx.toml` key in a table (`""` for the database's own).
pub fn by_key(table: &str, key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.table == table && s.key == key)
}

/// Every URL parameter of the table.
pub fn params() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|s| s.param)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_setting_applies() {
        let mut params: Vec<&str> = params().collect();
        params.sort_unstable();
        params.dedup();
        assert_eq!(params.len(), SETTINGS.len(), "a URL parameter twice");
        let mut keys: Vec<(&str, &str)> = SETTINGS.iter().map(|s| (s.table, s.key)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len(), "a dbx.toml key twice");
        for s in SETTINGS {
            assert!(!s.doc.is_empty(), "{}", s.param);
            let mut o = ConnectOptions::new("x");
            let e = s.apply(&mut o, "not a value").unwrap_err();
            assert!(e.message().contains(s.param), "{}: {e}", s.param);
        }
    }
}
