//! `KvStore` on a SQLite table.
//!
//! Table (created on first use): `key TEXT PRIMARY KEY, value BLOB NOT NULL,
//! expires_at INTEGER` (Unix milliseconds, NULL for no expiry), WITHOUT ROWID,
//! with a partial index on `expires_at`. Reads filter out expired rows, so an
//! expired key is never returned; writes sweep up to [`SWEEP_BATCH`] expired
//! rows at most once per [`SWEEP_INTERVAL_MS`].
//!
//! Prefix scans are range scans on the primary key (`key >= prefix AND key <
//! successor(prefix)`), which match the prefix literally: SQLite's BINARY
//! collation compares UTF-8 bytes, whose order is code point order.

use crate::error::map_err;
use crate::pool::Pool;
use crate::stmt::write_transaction;
use dbx_core::driver::{KvStore, ScanPage};
use dbx_core::kv::{add_counter, parse_counter};
use dbx_core::{Result, Ttl};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most expired rows one sweep deletes.
pub(crate) const SWEEP_BATCH: i64 = 1000;
/// Least time between two sweeps.
pub(crate) const SWEEP_INTERVAL_MS: i64 = 1000;

#[derive(Debug)]
pub(crate) struct SqliteKv {
    pub(crate) pool: Arc<Pool>,
    /// Statements, with the (checked) table name filled in once.
    sql: Arc<Statements>,
    ready: AtomicBool,
    last_sweep: Arc<AtomicI64>,
}

#[derive(Debug)]
struct Statements {
    create: String,
    get: String,
    get_with_expiry: String,
    ttl: String,
    set: String,
    set_nx: String,
    delete: String,
    expire: String,
    sweep: String,
    scan: [String; 4],
}

impl Statements {
    fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let live = "(expires_at IS NULL OR expires_at > ?2)";
        let scan = |upper: bool, after: bool| {
            format!(
                "SELECT key FROM {t} WHERE key >= ?1 {} {} AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key LIMIT ?3",
                if upper { "AND key < ?4" } else { "" },
                if after { "AND key > ?5" } else { "" },
            )
        };
        Statements {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at INTEGER) WITHOUT ROWID;
                 CREATE INDEX IF NOT EXISTS \"{table}_expires_at\" ON {t} (expires_at) WHERE expires_at IS NOT NULL;"
            ),
            get: format!("SELECT value FROM {t} WHERE key = ?1 AND {live}"),
            get_with_expiry: format!("SELECT value, expires_at FROM {t} WHERE key = ?1 AND {live}"),
            ttl: format!("SELECT expires_at FROM {t} WHERE key = ?1 AND {live}"),
            set: format!(
                "INSERT INTO {t} (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
            ),
            set_nx: format!(
                "INSERT INTO {t} (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                 WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= ?4"
            ),
            delete: format!("DELETE FROM {t} WHERE key = ?1 RETURNING {live}"),
            expire: format!("UPDATE {t} SET expires_at = ?3 WHERE key = ?1 AND {live}"),
            sweep: format!(
                "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= ?1 LIMIT {SWEEP_BATCH})"
            ),
            scan: [scan(false, false), scan(false, true), scan(true, false), scan(true, true)],
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn expiry(now: i64, ttl: Option<Duration>) -> Option<i64> {
    // TTLs are checked by the core (1 ms to 100 years), so this cannot overflow.
    ttl.map(|t| now + t.as_millis() as i64)
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` if there is none (empty prefix, or only `char::MAX`).
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl SqliteKv {
    pub(crate) fn new(pool: Arc<Pool>, table: &str) -> Self {
        SqliteKv {
            pool,
            sql: Arc::new(Statements::new(table)),
            ready: AtomicBool::new(false),
            last_sweep: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Run `f` with the table in place, on a pooled connection.
    async fn run<R, F>(&self, f: F) -> Result<R>
    where
        F: Fn(&Connection, &Statements) -> Result<R> + Send + Sync + 'static,
        R: Send + 'static,
    {
        let sql = self.sql.clone();
        let create = !self.ready.load(Ordering::Acquire);
        let r = self
            .pool
            .run(move |c| {
                if create {
                    c.execute_batch(&sql.create).map_err(map_err)?;
                }
                f(c, &sql)
            })
            .await;
        if create && r.is_ok() {
            self.ready.store(true, Ordering::Release);
        }
        r
    }

    /// Like [`run`](Self::run) for writes: also sweeps expired rows now and then.
    async fn write<R, F>(&self, f: F) -> Result<R>
    where
        F: Fn(&Connection, &Statements, i64) -> Result<R> + Send + Sync + 'static,
        R: Send + 'static,
    {
        let last = self.last_sweep.clone();
        self.run(move |c, s| {
            let now = now_ms();
            let r = f(c, s, now)?;
            let prev = last.load(Ordering::Relaxed);
            if now - prev >= SWEEP_INTERVAL_MS
                && last
                    .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let swept = c
                    .prepare_cached(&s.sweep)
                    .and_then(|mut st| st.execute(params![now]));
                if let Err(e) = swept {
                    tracing::debug!(error = %e, "sqlite kv: sweeping expired keys failed");
                }
            }
            Ok(r)
        })
        .await
    }
}

fn set_on(
    c: &Connection,
    s: &Statements,
    key: &str,
    value: &[u8],
    expires: Option<i64>,
) -> Result<()> {
    c.prepare_cached(&s.set)
        .and_then(|mut st| st.execute(params![key, value, expires]))
        .map_err(map_err)?;
    Ok(())
}

#[async_trait::async_trait]
impl KvStore for SqliteKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.run(move |c, s| {
            c.prepare_cached(&s.get)
                .and_then(|mut st| {
                    st.query_row(params![key, now_ms()], |r| r.get(0))
                        .optional()
                })
                .map_err(map_err)
        })
        .await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |c, s, now| set_on(c, s, &key, &value, expiry(now, ttl)))
            .await
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |c, s, now| {
            let n = c
                .prepare_cached(&s.set_nx)
                .and_then(|mut st| st.execute(params![key, value, expiry(now, ttl), now]))
                .map_err(map_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |c, s, now| {
            let live: Option<bool> = c
                .prepare_cached(&s.delete)
                .and_then(|mut st| st.query_row(params![key, now], |r| r.get(0)).optional())
                .map_err(map_err)?;
            Ok(live == Some(true))
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.ttl(key).await? != Ttl::Missing)
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let key = key.to_owned();
        self.write(move |c, s, now| {
            // IMMEDIATE takes the write lock first, so two increments on
            // different connections cannot both read the old value.
            let tx = write_transaction(c)?;
            let current: Option<(Vec<u8>, Option<i64>)> = tx
                .prepare_cached(&s.get_with_expiry)
                .and_then(|mut st| {
                    st.query_row(params![key, now], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(map_err)?;
            let (value, expires) = match current {
                Some((bytes, expires)) => (parse_counter(&key, &bytes)?, expires),
                None => (0, None),
            };
            let next = add_counter(&key, value, delta)?;
            set_on(&tx, s, &key, next.to_string().as_bytes(), expires)?;
            tx.commit().map_err(map_err)?;
            Ok(next)
        })
        .await
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.run(move |c, s| {
            // One read transaction: every value comes from the same snapshot.
            let tx = c.unchecked_transaction().map_err(map_err)?;
            let now = now_ms();
            let mut st = tx.prepare_cached(&s.get).map_err(map_err)?;
            let mut out = Vec::with_capacity(keys.len());
            for k in &keys {
                out.push(
                    st.query_row(params![k, now], |r| r.get(0))
                        .optional()
                        .map_err(map_err)?,
                );
            }
            drop(st);
            tx.commit().map_err(map_err)?;
            Ok(out)
        })
        .await
    }

    async fn mset(&self, entries: &[(&str, &[u8])], ttl: Option<Duration>) -> Result<()> {
        let entries: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect();
        self.write(move |c, s, now| {
            let tx = write_transaction(c)?;
            let expires = expiry(now, ttl);
            for (k, v) in &entries {
                set_on(&tx, s, k, v, expires)?;
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |c, s, now| {
            let n = c
                .prepare_cached(&s.expire)
                .and_then(|mut st| st.execute(params![key, now, expiry(now, Some(ttl))]))
                .map_err(map_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let key = key.to_owned();
        self.run(move |c, s| {
            let now = now_ms();
            let found: Option<Option<i64>> = c
                .prepare_cached(&s.ttl)
                .and_then(|mut st| st.query_row(params![key, now], |r| r.get(0)).optional())
                .map_err(map_err)?;
            Ok(match found {
                None => Ttl::Missing,
                Some(None) => Ttl::Persistent,
                Some(Some(at)) => Ttl::Expires(Duration::from_millis((at - now).max(1) as u64)),
            })
        })
        .await
    }

    async fn scan_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage> {
        let prefix = prefix.to_owned();
        let cursor = cursor.map(str::to_owned);
        let limit = limit.clamp(1, 10_000) as i64;
        self.run(move |c, s| {
            let upper = successor(&prefix);
            let variant = usize::from(cursor.is_some()) + 2 * usize::from(upper.is_some());
            let mut st = c.prepare_cached(&s.scan[variant]).map_err(map_err)?;
            let now = now_ms();
            st.raw_bind_parameter(1, &prefix).map_err(map_err)?;
            st.raw_bind_parameter(2, now).map_err(map_err)?;
            st.raw_bind_parameter(3, limit).map_err(map_err)?;
            if let Some(u) = &upper {
                st.raw_bind_parameter(4, u).map_err(map_err)?;
            }
            if let Some(after) = &cursor {
                st.raw_bind_parameter(5, after).map_err(map_err)?;
            }
            let mut rows = st.raw_query();
            let mut keys = Vec::new();
            while let Some(r) = rows.next().map_err(map_err)? {
                keys.push(r.get::<_, String>(0).map_err(map_err)?);
            }
            let next = if keys.len() as i64 == limit {
                keys.last().cloned()
            } else {
                None
            };
            Ok(ScanPage::new(keys, next))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_bounds_the_prefix() {
        assert_eq!(successor("ab").as_deref(), Some("ac"));
        assert_eq!(successor(""), None);
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(successor("\u{10FFFF}"), None);
        for key in ["ab", "ab\u{10FFFF}x", "ab\0", "abzzzz"] {
            let s = successor("ab").unwrap();
            assert!(key >= "ab" && key < s.as_str(), "{key:?}");
        }
        assert!("ac" >= successor("ab").unwrap().as_str());
    }
}
