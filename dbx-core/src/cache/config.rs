//! The cache's settings, read from a database's options.

use crate::error::{Error, Result};
use crate::options::ConnectOptions;
use crate::util::parse_duration;
use std::time::Duration;

/// A database's cache settings (see the [module docs](super#settings)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most entries held. Every entry is weighed at least
    /// `max_bytes / max_entries` (6,710 bytes with the defaults), so one
    /// weighted bound holds both limits.
    pub max_entries: u64,
    /// Most bytes held, as the weigher counts them: the key and the value's
    /// heap bytes plus a fixed overhead. The process's real memory per entry
    /// is about twice that for small rows (measured: 394 counted, 820 bytes
    /// of RSS per cached one-row result), so size this at about half the
    /// memory you mean the cache to take.
    pub max_bytes: u64,
    /// TTL of policies without their own.
    pub ttl: Duration,
    /// Stale window of policies without their own.
    pub swr: Duration,
    /// How long this instance trusts the shared tier's versions it read.
    pub sync: Duration,
    /// Longest wait for the shared tier before going to the database.
    pub tier_timeout: Duration,
    /// Prefix of this database's keys in the shared tier.
    pub namespace: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(60),
            swr: Duration::ZERO,
            sync: Duration::from_secs(1),
            tier_timeout: Duration::from_millis(100),
            namespace: String::new(),
        }
    }
}

/// The URL parameters of the cache, each with its `[cache]` key.
pub(crate) const PARAMS: &[(&str, &str)] = &[
    ("cache", "enabled"),
    ("cache_max_entries", "max_entries"),
    ("cache_max_bytes", "max_bytes"),
    ("cache_ttl", "ttl"),
    ("cache_swr", "swr"),
    ("cache_sync", "sync"),
    ("cache_tier_timeout", "tier_timeout"),
    ("cache_namespace", "namespace"),
];

/// `64MiB`, `512KB`, `1GB`, or a number of bytes.
pub(crate) fn parse_bytes(field: &str, v: &str) -> Result<u64> {
    crate::util::parse_size(v)
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "{field} must be a size above zero such as 64MiB or 1000000, got {:?}",
                crate::util::truncate(v, 40)
            ))
        })
}

fn positive(field: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "{field} must be a whole number above zero, got {:?}",
                crate::util::truncate(v, 40)
            ))
        })
}

fn nonzero_duration(field: &str, v: &str) -> Result<Duration> {
    let d = parse_duration(field, v)?;
    if d.is_zero() {
        return Err(Error::invalid_config(format!("{field} must be above zero")));
    }
    Ok(d)
}

/// Check one cache parameter's value (URL, builder or `dbx.toml`).
pub(crate) fn check(param: &str, v: &str) -> Result<()> {
    let mut c = CacheConfig::default();
    set(&mut c, param, v)
}

fn set(c: &mut CacheConfig, param: &str, v: &str) -> Result<()> {
    match param {
        "cache" => {
            crate::settings::parse_bool(param, v)?;
        }
        "cache_max_entries" => c.max_entries = positive(param, v)?,
        "cache_max_bytes" => c.max_bytes = parse_bytes(param, v)?,
        "cache_ttl" => {
            c.ttl = nonzero_duration(param, v)?;
            if c.ttl > super::MAX_TTL {
                return Err(Error::invalid_config(format!(
                    "{param} is above the limit of one year"
                )));
            }
        }
        "cache_swr" => {
            c.swr = parse_duration(param, v)?;
            if c.swr > super::MAX_TTL {
                return Err(Error::invalid_config(format!(
                    "{param} is above the limit of one year"
                )));
            }
        }
        "cache_sync" => c.sync = parse_duration(param, v)?,
        "cache_tier_timeout" => c.tier_timeout = nonzero_duration(param, v)?,
        "cache_namespace" => {
            let ns = v.trim();
            let ok = ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if ns.is_empty() || ns.len() > 128 || !ok {
                return Err(Error::invalid_config(format!(
                    "{param} must be 1 to 128 letters, digits, `_`, `-` or `.`"
                )));
            }
            c.namespace = ns.to_owned();
        }
        _ => {}
    }
    Ok(())
}

impl CacheConfig {
    /// The cache settings of `options`, or `None` when the cache is off:
    /// on with `cache=true` or any other cache setting, off with
    /// `cache=false` or none.
    pub fn from_options(options: &ConnectOptions) -> Result<Option<CacheConfig>> {
        let mut c = CacheConfig::default();
        let mut any = false;
        for (param, _) in PARAMS {
            if let Some(v) = options.param(param) {
                set(&mut c, param, v)?;
                any = true;
            }
        }
        if let Some(v) = options.param("cache")
            && !crate::settings::parse_bool("cache", v)?
        {
            return Ok(None);
        }
        if !any {
            return Ok(None);
        }
        if c.namespace.is_empty() {
            c.namespace = default_namespace(options);
        }
        Ok(Some(c))
    }
}

/// A name for this database's keys in a shared tier: a hash of the
/// scheme, hosts, port and path (never the credentials), so instances that
/// open the same URL share, and different databases do not collide.
fn default_namespace(options: &ConnectOptions) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let port = options.port().map(|p| p.to_string()).unwrap_or_default();
    for part in [options.scheme(), options.host(), &port, options.path()] {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn settings_parse_and_bad_ones_name_themselves() {
        let o =
            ConnectOptions::from_url("sqlite::memory:?cache_max_bytes=1MiB&cache_ttl=5s").unwrap();
        let c = CacheConfig::from_options(&o).unwrap().unwrap();
        assert_eq!(c.max_bytes, 1 << 20);
        assert_eq!(c.ttl, Duration::from_secs(5));
        assert_eq!(c.namespace.len(), 16);
        let off = ConnectOptions::from_url("sqlite::memory:?cache=false&cache_ttl=5s").unwrap();
        assert!(CacheConfig::from_options(&off).unwrap().is_none());
        let none = ConnectOptions::from_url("sqlite::memory:").unwrap();
        assert!(CacheConfig::from_options(&none).unwrap().is_none());
        for (url, name) in [
            ("sqlite::memory:?cache_max_entries=0", "cache_max_entries"),
            ("sqlite::memory:?cache_max_bytes=0", "cache_max_bytes"),
            ("sqlite::memory:?cache_max_bytes=lots", "cache_max_bytes"),
            ("sqlite::memory:?cache_ttl=-5s", "cache_ttl"),
            ("sqlite::memory:?cache_ttl=0s", "cache_ttl"),
            ("sqlite::memory:?cache_ttl=9999999h", "cache_ttl"),
            ("sqlite::memory:?cache=maybe", "cache"),
        ] {
            let e = ConnectOptions::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(e.to_string().contains(name), "{url}: {e}");
        }
    }

    #[test]
    fn dbx_toml_has_a_cache_table() {
        let text = "[databases.app]\nurl = \"sqlite::memory:\"\n[databases.app.cache]\nttl = \"5s\"\nmax_bytes = \"8MiB\"\n";
        let dbs = crate::config::parse(text, "dbx.toml", Vec::<(String, String)>::new()).unwrap();
        let c = CacheConfig::from_options(&dbs[0].1).unwrap().unwrap();
        assert_eq!((c.ttl, c.max_bytes), (Duration::from_secs(5), 8 << 20));
        let bad =
            "[databases.app]\nurl = \"sqlite::memory:\"\n[databases.app.cache]\nttl = \"-1s\"\n";
        let e = crate::config::parse(bad, "dbx.toml", Vec::<(String, String)>::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("cache"), "{e}");
    }
}
