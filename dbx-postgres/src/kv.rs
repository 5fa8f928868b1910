//! `KvStore` on a PostgreSQL table.
//!
//! Table (created on first use, in the first schema of the `search_path`):
//! `key bytea PRIMARY KEY, value bytea NOT NULL, expires_at bigint` (Unix
//! milliseconds of the server's clock, NULL for no expiry), with a partial
//! index on `expires_at`. Keys are stored as their UTF-8 bytes: PostgreSQL
//! text cannot hold NUL, and `bytea` compares bytewise, which for UTF-8 is
//! code point order, so a prefix scan is a range scan on the primary key
//! (`key >= prefix AND key < successor(prefix)`) that matches literally.
//!
//! Every operation is one statement, so it runs on the shared pipelined
//! clients: `incr` is an `INSERT ... ON CONFLICT DO UPDATE` whose update
//! only happens when the stored value is a well-formed counter and the sum
//! fits, so it is atomic and leaves the value untouched on error. Reads
//! filter out expired rows; writes sweep expired rows in the background at
//! most once per second.

use crate::conn::{self, Conns};
use crate::error::{BACKEND, sqlstate};
use crate::router::Router;
use dbx_core::driver::{KvStore, ScanPage};
use dbx_core::kv::{add_counter, parse_counter};
use dbx_core::{Error, ErrorKind, Result, Ttl};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::types::{ToSql, Type};

/// Most expired rows one sweep deletes.
const SWEEP_BATCH: u32 = 1000;
/// Least time between two sweeps.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The server's clock in Unix milliseconds, fixed for one statement.
const NOW: &str = "(floor(extract(epoch from statement_timestamp()) * 1000))::int8";

#[derive(Debug)]
struct Statements {
    exists_table: String,
    create: String,
    get: String,
    ttl: String,
    set: String,
    set_nx: String,
    delete: String,
    expire: String,
    incr: String,
    mget: String,
    mset: String,
    scan_bounded: String,
    scan_open: String,
    sweep: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let live = format!("(expires_at IS NULL OR expires_at > {NOW})");
        let upsert = "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at";
        let i64_range = "BETWEEN -9223372036854775808 AND 9223372036854775807";
        Statements {
            exists_table: "SELECT to_regclass($1) IS NOT NULL".to_owned(),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (key bytea PRIMARY KEY, value bytea NOT NULL, expires_at bigint);
                 CREATE INDEX IF NOT EXISTS \"{table}_expires_at\" ON {t} (expires_at) WHERE expires_at IS NOT NULL"
            ),
            get: format!("SELECT value FROM {t} WHERE key = $1 AND {live}"),
            ttl: format!("SELECT expires_at - {NOW} FROM {t} WHERE key = $1 AND {live}"),
            set: format!("INSERT INTO {t} (key, value, expires_at) VALUES ($1, $2, {NOW} + $3) {upsert}"),
            set_nx: format!(
                "INSERT INTO {t} (key, value, expires_at) VALUES ($1, $2, {NOW} + $3) {upsert}
                 WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= {NOW}"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1 RETURNING {live}"),
            expire: format!("UPDATE {t} SET expires_at = {NOW} + $2 WHERE key = $1 AND {live}"),
            incr: format!(
                "INSERT INTO {t} AS cur (key, value, expires_at)
                 VALUES ($1, convert_to(CAST($2 AS int8)::text, 'UTF8'), NULL)
                 ON CONFLICT (key) DO UPDATE SET
                   value = CASE WHEN cur.expires_at IS NOT NULL AND cur.expires_at <= {NOW} THEN EXCLUDED.value
                           ELSE convert_to((encode(cur.value, 'escape')::numeric + $2)::text, 'UTF8') END,
                   expires_at = CASE WHEN cur.expires_at IS NOT NULL AND cur.expires_at <= {NOW} THEN NULL
                                ELSE cur.expires_at END
                 WHERE (cur.expires_at IS NOT NULL AND cur.expires_at <= {NOW})
                    OR CASE WHEN octet_length(cur.value) <= 20
                                 AND encode(cur.value, 'escape') ~ '^(0|-?[1-9][0-9]*)$'
                            THEN encode(cur.value, 'escape')::numeric {i64_range}
                                 AND encode(cur.value, 'escape')::numeric + $2 {i64_range}
                            ELSE false END
                 RETURNING value"
            ),
            mget: format!(
                "SELECT k.i, t.value FROM unnest($1::bytea[]) WITH ORDINALITY AS k(key, i)
                 JOIN {t} t ON t.key = k.key
                 WHERE t.expires_at IS NULL OR t.expires_at > {NOW}"
            ),
            mset: format!(
                "INSERT INTO {t} (key, value, expires_at)
                 SELECT k, v, {NOW} + $3 FROM unnest($1::bytea[], $2::bytea[]) AS u(k, v) {upsert}"
            ),
            scan_bounded: format!(
                "SELECT key FROM {t} WHERE key >= $1 AND key < $2 AND {live} ORDER BY key LIMIT $3"
            ),
            scan_open: format!("SELECT key FROM {t} WHERE key >= $1 AND {live} ORDER BY key LIMIT $2"),
            sweep: format!(
                "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= {NOW} \
                 LIMIT {SWEEP_BATCH} FOR UPDATE SKIP LOCKED)"
            ),
        }
    }
}

#[derive(Debug)]
pub(crate) struct PgKv {
    /// The primary (every write, the table's creation, sweeps).
    conns: Arc<Conns>,
    /// Where reads go (`replica_reads`).
    router: Arc<Router>,
    table: String,
    sql: Arc<Statements>,
    ready: AtomicBool,
    creating: tokio::sync::Mutex<()>,
    started: Instant,
    /// Milliseconds after `started` of the last sweep.
    last_sweep: AtomicU64,
}

fn ttl_ms(ttl: Option<Duration>) -> Option<i64> {
    // TTLs are checked by the core: 1 ms to 100 years.
    ttl.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

fn decode_err(e: tokio_postgres::Error) -> Error {
    Error::decode(format!("unexpected key-value row: {e}"))
        .with_source(e)
        .with_backend(BACKEND)
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` (empty prefix, or only 0xFF bytes).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = prefix.to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xFF {
            bytes.push(last + 1);
            return Some(bytes);
        }
    }
    None
}

impl PgKv {
    pub(crate) fn new(router: Arc<Router>) -> Self {
        let conns = router.primary.clone();
        let table = conns.settings.kv_table.clone();
        PgKv {
            sql: Arc::new(Statements::new(&table)),
            table,
            conns,
            router,
            ready: AtomicBool::new(false),
            creating: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Create the table on first use (only if it is missing, so a role
    /// without CREATE rights can use an existing table).
    async fn ensure(&self) -> Result<()> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        // Boxed: the first use's future would otherwise size every operation's.
        Box::pin(self.create_table()).await
    }

    async fn create_table(&self) -> Result<()> {
        let _one = self.creating.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let handle = self.conns.handle().await?;
        let guard = handle.guard();
        let quoted = format!("\"{}\"", self.table);
        let r = async {
            let rows = conn::internal(
                &handle,
                &self.conns.settings,
                &self.sql.exists_table,
                &[Type::TEXT],
                &[&quoted],
            )
            .await?;
            let exists = rows
                .first()
                .map(|r| r.try_get::<_, bool>(0))
                .transpose()
                .map_err(decode_err)?
                .unwrap_or(false);
            if !exists {
                match handle.client().batch_execute(&self.sql.create).await {
                    Ok(()) => {}
                    Err(e) => {
                        let e = crate::error::map_err(e);
                        // Another process created it at the same moment.
                        if !matches!(sqlstate(&e), Some("42P07" | "23505")) {
                            return Err(e);
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        guard.disarm();
        r?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// A statement that only reads, on the connections reads go to.
    async fn read(
        &self,
        sql: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.ensure().await?;
        let conns = self.router.for_read();
        let r = async {
            let handle = conns.handle().await?;
            let guard = handle.guard();
            let r = conn::internal(&handle, &conns.settings, sql, types, params).await;
            guard.disarm();
            r
        }
        .await;
        r.map_err(|e| self.router.read_failed(conns, e))
    }

    /// A statement that writes (and returns rows), on the primary.
    async fn query(
        &self,
        sql: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.ensure().await?;
        self.router.wrote();
        let handle = self.conns.handle().await?;
        let guard = handle.guard();
        let r = conn::internal(&handle, &self.conns.settings, sql, types, params).await;
        guard.disarm();
        r
    }

    async fn execute(
        &self,
        sql: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.ensure().await?;
        self.router.wrote();
        let handle = self.conns.handle().await?;
        let guard = handle.guard();
        let r = conn::internal_execute(&handle, &self.conns.settings, sql, types, params).await;
        guard.disarm();
        r
    }

    /// After a write: sweep expired rows in the background, at most once per
    /// [`SWEEP_INTERVAL`], bounded by the operation timeout.
    fn maybe_sweep(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_INTERVAL.as_millis() as u64
            || self
                .last_sweep
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (conns, sql) = (self.conns.clone(), self.sql.clone());
        rt.spawn(async move {
            let limit = conns.settings.timeout;
            let work = async {
                let handle = conns.handle().await?;
                let guard = handle.guard();
                let r =
                    conn::internal_execute(&handle, &conns.settings, &sql.sweep, &[], &[]).await;
                guard.disarm();
                r
            };
            match tokio::time::timeout(limit, work).await {
                Ok(Ok(n)) if n > 0 => tracing::debug!(swept = n, "postgres kv: swept expired keys"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "postgres kv: sweeping expired keys failed")
                }
                Err(_) => tracing::debug!("postgres kv: sweeping expired keys timed out"),
            }
        });
    }

    async fn write<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_ok() {
            self.maybe_sweep();
        }
        r
    }
}

#[async_trait::async_trait]
impl KvStore for PgKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let rows = self
            .read(&self.sql.get, &[Type::BYTEA], &[&key.as_bytes()])
            .await?;
        rows.first()
            .map(|r| r.try_get::<_, Vec<u8>>(0))
            .transpose()
            .map_err(decode_err)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let r = self
            .execute(
                &self.sql.set,
                &[Type::BYTEA, Type::BYTEA, Type::INT8],
                &[&key.as_bytes(), &value, &ttl_ms(ttl)],
            )
            .await
            .map(drop);
        self.write(r).await
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        let r = self
            .execute(
                &self.sql.set_nx,
                &[Type::BYTEA, Type::BYTEA, Type::INT8],
                &[&key.as_bytes(), &value, &ttl_ms(ttl)],
            )
            .await
            .map(|n| n > 0);
        self.write(r).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let r = self
            .query(&self.sql.delete, &[Type::BYTEA], &[&key.as_bytes()])
            .await
            .and_then(|rows| {
                rows.first()
                    .map(|r| r.try_get::<_, bool>(0))
                    .transpose()
                    .map_err(decode_err)
            })
            .map(|live| live == Some(true));
        self.write(r).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.ttl(key).await? != Ttl::Missing)
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let k = key.as_bytes();
        for _ in 0..3 {
            let rows = self
                .query(&self.sql.incr, &[Type::BYTEA, Type::INT8], &[&k, &delta])
                .await?;
            if let Some(row) = rows.first() {
                let value: Vec<u8> = row.try_get(0).map_err(decode_err)?;
                self.maybe_sweep();
                return parse_counter(key, &value);
            }
            // Not updated: the stored value is not a counter, or the sum
            // does not fit. Read it to say which (the value is untouched).
            if let Some(current) = self.get(key).await? {
                let n = parse_counter(key, &current)?;
                add_counter(key, n, delta)?;
            }
            // It changed in between: try again.
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("key {key:?} kept changing while it was incremented"),
        )
        .set_transient(true))
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let bytes: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let rows = self
            .read(&self.sql.mget, &[Type::BYTEA_ARRAY], &[&bytes])
            .await?;
        let mut out = vec![None; keys.len()];
        for row in &rows {
            let i: i64 = row.try_get(0).map_err(decode_err)?;
            let value: Vec<u8> = row.try_get(1).map_err(decode_err)?;
            if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(value);
            }
        }
        Ok(out)
    }

    async fn mset(&self, entries: &[(&str, &[u8])], ttl: Option<Duration>) -> Result<()> {
        // One statement may not update a row twice: the last entry of a key wins.
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
        let mut keys: Vec<&[u8]> = Vec::with_capacity(entries.len());
        let mut values: Vec<&[u8]> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match position.get(k) {
                Some(&i) => values[i] = v,
                None => {
                    position.insert(k, keys.len());
                    keys.push(k.as_bytes());
                    values.push(v);
                }
            }
        }
        let r = self
            .execute(
                &self.sql.mset,
                &[Type::BYTEA_ARRAY, Type::BYTEA_ARRAY, Type::INT8],
                &[&keys, &values, &ttl_ms(ttl)],
            )
            .await
            .map(drop);
        self.write(r).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let r = self
            .execute(
                &self.sql.expire,
                &[Type::BYTEA, Type::INT8],
                &[&key.as_bytes(), &ttl_ms(Some(ttl))],
            )
            .await
            .map(|n| n > 0);
        self.write(r).await
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let rows = self
            .read(&self.sql.ttl, &[Type::BYTEA], &[&key.as_bytes()])
            .await?;
        let Some(row) = rows.first() else {
            return Ok(Ttl::Missing);
        };
        Ok(
            match row.try_get::<_, Option<i64>>(0).map_err(decode_err)? {
                None => Ttl::Persistent,
                Some(ms) => Ttl::Expires(Duration::from_millis(ms.max(1) as u64)),
            },
        )
    }

    async fn scan_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage> {
        let limit = limit.clamp(1, 10_000) as i64;
        // Keyset pagination: the next page starts right after the cursor.
        let lower = match cursor {
            Some(c) if c.as_bytes() >= prefix.as_bytes() => {
                let mut after = c.as_bytes().to_vec();
                after.push(0);
                after
            }
            _ => prefix.as_bytes().to_vec(),
        };
        let rows = match successor(prefix.as_bytes()) {
            Some(upper) => {
                self.read(
                    &self.sql.scan_bounded,
                    &[Type::BYTEA, Type::BYTEA, Type::INT8],
                    &[&lower, &upper, &limit],
                )
                .await?
            }
            None => {
                self.read(
                    &self.sql.scan_open,
                    &[Type::BYTEA, Type::INT8],
                    &[&lower, &limit],
                )
                .await?
            }
        };
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let bytes: Vec<u8> = row.try_get(0).map_err(decode_err)?;
            keys.push(String::from_utf8(bytes).map_err(|e| {
                Error::decode(format!(
                    "a key in table {:?} is not valid UTF-8 (written outside dbx?)",
                    self.table
                ))
                .with_source(e)
                .with_backend(BACKEND)
            })?);
        }
        let cursor = if keys.len() as i64 == limit {
            keys.last().cloned()
        } else {
            None
        };
        Ok(ScanPage::new(keys, cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_bounds_the_prefix() {
        assert_eq!(successor(b"ab").as_deref(), Some(&b"ac"[..]));
        assert_eq!(successor(b""), None);
        assert_eq!(successor(b"a\xff").as_deref(), Some(&b"b"[..]));
        assert_eq!(successor(b"\xff\xff"), None);
        let s = successor("ü".as_bytes()).unwrap();
        for key in ["ü", "üx", "ü\u{10FFFF}", "ü\0"] {
            assert!(
                key.as_bytes() >= "ü".as_bytes() && key.as_bytes() < s.as_slice(),
                "{key:?}"
            );
        }
    }
}
