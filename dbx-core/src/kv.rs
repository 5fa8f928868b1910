//! The key-value capability: the [`KvStore`] trait drivers implement and
//! the [`Kv`] handle applications use.
//!
//! # The contract
//!
//! Every backend that offers key-value storage behaves the same way; the
//! conformance suite in the `tests` crate pins each rule on each backend.
//!
//! - **Keys** are non-empty UTF-8 strings of at most [`MAX_KEY_LEN`] bytes.
//!   Any character is allowed, including `*`, `?`, `%`, `_`, quotes and NUL.
//! - **Values** are bytes, at most [`MAX_VALUE_LEN`] long (empty is fine).
//! - **TTL**: `set` and `mset` take an optional time to live; `expire` sets
//!   one on an existing key. TTLs have millisecond resolution (a fraction is
//!   rounded up) and must be above zero and at most [`MAX_TTL`]; anything else
//!   is [`InvalidInput`](crate::ErrorKind::InvalidInput). An expired key is
//!   gone for every operation (get, exists, ttl, scan, set-if-absent, incr);
//!   backends sweep expired entries in the background.
//!   A plain `set` without TTL removes any previous TTL, as in Redis.
//! - **incr** works on values that are ASCII-decimal `i64` numbers, as Redis's
//!   INCRBY: a missing key starts at 0; a value that is not such a number is
//!   [`WrongType`](crate::ErrorKind::WrongType); overflow is
//!   [`OutOfRange`](crate::ErrorKind::OutOfRange) and leaves the value as it was;
//!   an existing TTL is kept. It is atomic under concurrency.
//! - **ttl** tells apart a missing key ([`Ttl::Missing`]), a key without
//!   expiry ([`Ttl::Persistent`]) and one that expires ([`Ttl::Expires`]).
//! - **mget** returns one entry per requested key, in order; **mset** writes
//!   all entries or none.
//! - **scan** matches the prefix literally (no glob or `LIKE` meaning for `*`,
//!   `?`, `[`, `%`, `_`) and yields every live key with that prefix exactly
//!   once, in unspecified order, page by page. Keys written or deleted during
//!   a scan may or may not be seen.

use crate::policy::engine::{Changed, Ctx, Op};
use crate::{Error, ErrorKind, Result};
use async_trait::async_trait;
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest value, in bytes (fits a MongoDB document with room to spare).
pub const MAX_VALUE_LEN: usize = 16_000_000;
/// Longest TTL: 100 years.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// Keys per page that [`Kv::scan`] asks the backend for.
pub const DEFAULT_SCAN_PAGE: usize = 500;

/// What [`Kv::ttl`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No such key (or it expired).
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this much time (millisecond resolution).
    Expires(Duration),
}

/// One page of a prefix scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanPage {
    /// Keys of this page.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when the scan is complete.
    pub cursor: Option<String>,
}

impl ScanPage {
    /// A page of keys and the cursor of the next one.
    pub fn new(keys: Vec<String>, cursor: Option<String>) -> Self {
        ScanPage { keys, cursor }
    }
}

/// Key-value storage, as a driver implements it.
///
/// Applications use [`Kv`], which validates input against the contract (see
/// the [module docs](self)) before calling these methods, so drivers may rely
/// on keys being non-empty and at most [`MAX_KEY_LEN`] bytes, values at most
/// [`MAX_VALUE_LEN`] bytes, and TTLs between 1 ms and [`MAX_TTL`].
#[async_trait]
pub trait KvStore: Send + Sync + fmt::Debug + 'static {
    /// The value of `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Store `value` under `key`, replacing any value and TTL.
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()>;
    /// Store only if `key` is absent (or expired); `true` if stored.
    async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool>;
    /// Remove `key`; `true` if it existed.
    async fn delete(&self, key: &str) -> Result<bool>;
    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool>;
    /// Add `delta` to the integer at `key` and return the new value.
    async fn incr(&self, key: &str, delta: i64) -> Result<i64>;
    /// Values of several keys, in order, in one round trip.
    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Store several entries atomically, each with the same optional TTL.
    async fn mset(&self, entries: &[(&str, &[u8])], ttl: Option<Duration>) -> Result<()>;
    /// Set the TTL of an existing key; `false` if it does not exist.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;
    /// The TTL state of `key`.
    async fn ttl(&self, key: &str) -> Result<Ttl>;
    /// One page of keys starting with `prefix`, continuing from `cursor`
    /// (`None` for the first page). `limit` is a hint of the page size.
    async fn scan_page(&self, prefix: &str, cursor: Option<&str>, limit: usize)
    -> Result<ScanPage>;
    /// Whether [`scan_page`](KvStore::scan_page) may return a key more
    /// than once across pages (Redis SCAN does while its table rehashes).
    /// When `true`, [`Kv::scan`] remembers the keys it has yielded and skips
    /// repeats, so callers still see each key once.
    fn scan_may_repeat(&self) -> bool {
        false
    }
}

/// Check a key against the contract.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        Err(Error::invalid_input("key is empty"))
    } else if key.len() > MAX_KEY_LEN {
        Err(Error::invalid_input(format!(
            "key is {} bytes long; the limit is {MAX_KEY_LEN}",
            key.len()
        )))
    } else {
        Ok(())
    }
}

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        Err(Error::invalid_input(format!(
            "value is {} bytes long; the limit is {MAX_VALUE_LEN}",
            value.len()
        )))
    } else {
        Ok(())
    }
}

/// Check a TTL against the contract and round it up to whole milliseconds.
pub fn check_ttl(ttl: Duration) -> Result<Duration> {
    if ttl.is_zero() {
        return Err(Error::invalid_input("TTL must be above zero"));
    }
    if ttl > MAX_TTL {
        return Err(Error::invalid_input(format!(
            "TTL of {}s is above the limit of 100 years",
            ttl.as_secs()
        )));
    }
    let ms = ttl.as_millis() + u128::from(!ttl.subsec_nanos().is_multiple_of(1_000_000));
    Ok(Duration::from_millis(ms as u64))
}

fn check_opt_ttl(ttl: Option<Duration>) -> Result<Option<Duration>> {
    ttl.map(check_ttl).transpose()
}

/// Check a key, its value and an optional TTL; the TTL as stored.
fn check_entry(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<Option<Duration>> {
    check_key(key)?;
    check_value(value)?;
    check_opt_ttl(ttl)
}

/// Parse a stored value as `incr` does: ASCII decimal `i64`, as Redis.
pub fn parse_counter(key: &str, value: &[u8]) -> Result<i64> {
    let text = std::str::from_utf8(value).ok();
    let well_formed = text.is_some_and(|t| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && t != "-0"
    });
    match text
        .filter(|_| well_formed)
        .and_then(|t| t.parse::<i64>().ok())
    {
        Some(n) => Ok(n),
        None => Err(Error::new(
            ErrorKind::WrongType,
            format!(
                "value of key {:?} is not an integer or out of range",
                short(key)
            ),
        )),
    }
}

/// Add `delta` to a counter, as `incr` does, with a typed overflow error.
pub fn add_counter(key: &str, current: i64, delta: i64) -> Result<i64> {
    current.checked_add(delta).ok_or_else(|| {
        Error::new(
            ErrorKind::OutOfRange,
            format!(
                "incrementing key {:?} by {delta} would overflow",
                short(key)
            ),
        )
    })
}

fn short(key: &str) -> &str {
    match key.char_indices().nth(64) {
        Some((i, _)) => &key[..i],
        None => key,
    }
}

/// A stream of keys from [`Kv::scan`].
pub type KeyStream = Pin<Box<dyn Stream<Item = Result<String>> + Send + 'static>>;

/// The key-value handle of a database: `db.kv()?`.
///
/// Cheap to clone. Every method validates its input against the
/// [contract](self), then runs through the database's policy (timeout,
/// closed check; retries and circuit breaking arrive with the resilience work).
///
/// ```
/// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
/// use std::time::Duration;
/// let kv = db.kv()?;
/// kv.set("session:1", b"data", Some(Duration::from_secs(60))).await?;
/// assert_eq!(kv.get("session:1").await?.as_deref(), Some(&b"data"[..]));
/// assert_eq!(kv.incr("visits", 1).await?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Kv {
    store: Arc<dyn KvStore>,
    pub(crate) ctx: Arc<Ctx>,
    force_idempotent: bool,
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("backend", &self.ctx.backend())
            .finish_non_exhaustive()
    }
}

impl Kv {
    pub(crate) fn new(store: Arc<dyn KvStore>, ctx: Arc<Ctx>) -> Self {
        Kv {
            store,
            ctx,
            force_idempotent: false,
        }
    }

    /// A handle that treats every operation as safe to repeat, so `incr`
    /// and `set_nx` are retried on transient errors too. Only for callers
    /// who accept that a retried increment may apply twice.
    pub fn idempotent(&self) -> Kv {
        Kv {
            force_idempotent: true,
            ..self.clone()
        }
    }

    /// `op`, retried as idempotent if the handle says so.
    fn op(&self, op: Op) -> Op {
        op.forced(self.force_idempotent)
    }

    /// The value of `key`, or `None` if it is missing or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let op = self.op(Op::idempotent("kv.get"));
        self.ctx.check(op, check_key(key))?;
        self.ctx.run(op, || self.store.get(key)).await
    }

    /// Store `value` under `key` with an optional TTL, replacing any previous
    /// value and TTL.
    pub async fn set(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let value = value.as_ref();
        let op = self.op(Op::idempotent("kv.set"));
        let ttl = self.ctx.check(op, check_entry(key, value, ttl))?;
        let r = self.ctx.run(op, || self.store.set(key, value, ttl)).await;
        self.ctx.changed(Changed::Key(key), &r).await;
        r
    }

    /// Store only if `key` is absent or expired; `true` if this call stored it.
    pub async fn set_nx(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let value = value.as_ref();
        let op = self.op(Op::once("kv.set_nx"));
        let ttl = self.ctx.check(op, check_entry(key, value, ttl))?;
        let r = self
            .ctx
            .run(op, || self.store.set_nx(key, value, ttl))
            .await;
        self.ctx.changed(Changed::Key(key), &r).await;
        r
    }

    /// Remove `key`; `true` if it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let op = self.op(Op::idempotent("kv.delete"));
        self.ctx.check(op, check_key(key))?;
        let r = self.ctx.run(op, || self.store.delete(key)).await;
        self.ctx.changed(Changed::Key(key), &r).await;
        r
    }

    /// Whether `key` exists (and has not expired).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let op = self.op(Op::idempotent("kv.exists"));
        self.ctx.check(op, check_key(key))?;
        self.ctx.run(op, || self.store.exists(key)).await
    }

    /// Atomically add `delta` (may be negative) to the integer stored at
    /// `key`, starting from 0 if missing; returns the new value. The key's
    /// TTL, if any, is kept.
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let op = self.op(Op::once("kv.incr"));
        self.ctx.check(op, check_key(key))?;
        let r = self.ctx.run(op, || self.store.incr(key, delta)).await;
        self.ctx.changed(Changed::Key(key), &r).await;
        r
    }

    /// Values of several keys, in the order asked, in one round trip.
    pub async fn mget<K: AsRef<str> + Sync>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let op = self.op(Op::idempotent("kv.mget"));
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.ctx
            .check(op, keys.iter().try_for_each(|k| check_key(k)))?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.ctx.run(op, || self.store.mget(&keys)).await
    }

    /// Store several entries, all or none, each with the same optional TTL.
    /// When a key appears twice, the last entry wins.
    pub async fn mset<K, V>(&self, entries: &[(K, V)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
        V: AsRef<[u8]> + Sync,
    {
        let op = self.op(Op::idempotent("kv.mset"));
        let entries: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let checked = entries
            .iter()
            .try_for_each(|(k, v)| check_key(k).and_then(|()| check_value(v)))
            .and_then(|()| check_opt_ttl(ttl));
        let ttl = self.ctx.check(op, checked)?;
        if entries.is_empty() {
            return Ok(());
        }
        let r = self.ctx.run(op, || self.store.mset(&entries, ttl)).await;
        if self.ctx.caching() {
            let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
            self.ctx.changed(Changed::Keys(&keys), &r).await;
        }
        r
    }

    /// Give an existing key a TTL; `false` if the key does not exist.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let op = self.op(Op::idempotent("kv.expire"));
        let ttl = self
            .ctx
            .check(op, check_key(key).and_then(|()| check_ttl(ttl)))?;
        let r = self.ctx.run(op, || self.store.expire(key, ttl)).await;
        self.ctx.changed(Changed::Key(key), &r).await;
        r
    }

    /// Whether `key` is missing, persistent, or expiring (and when).
    pub async fn ttl(&self, key: &str) -> Result<Ttl> {
        let op = self.op(Op::idempotent("kv.ttl"));
        self.ctx.check(op, check_key(key))?;
        self.ctx.run(op, || self.store.ttl(key)).await
    }

    /// Decode the value of `key` from JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::decode(format!(
                    "value of key {:?} is not the expected JSON: {e}",
                    short(key)
                ))
                .with_source(e)
                .with_backend(self.ctx.backend())
                .with_operation("kv.get")
            }),
        }
    }

    /// Store `value` as JSON.
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            Error::invalid_input(format!("value cannot be serialized as JSON: {e}"))
                .with_source(e)
                .with_backend(self.ctx.backend())
                .with_operation("kv.set")
        })?;
        self.set(key, bytes, ttl).await
    }

    /// Every live key that starts with `prefix` (literally), as a stream that
    /// fetches pages of [`DEFAULT_SCAN_PAGE`] keys as it is consumed.
    pub fn scan(&self, prefix: &str) -> KeyStream {
        self.scan_with_page_size(prefix, DEFAULT_SCAN_PAGE)
    }

    /// Like [`scan`](Kv::scan) with a chosen page size (at least 1).
    pub fn scan_with_page_size(&self, prefix: &str, page_size: usize) -> KeyStream {
        struct State {
            kv: Kv,
            prefix: String,
            cursor: Option<String>,
            buffer: VecDeque<String>,
            started: bool,
            page_size: usize,
            seen: Option<std::collections::HashSet<String>>,
        }
        let state = State {
            kv: self.clone(),
            prefix: prefix.to_owned(),
            cursor: None,
            buffer: VecDeque::new(),
            started: false,
            page_size: page_size.max(1),
            seen: self.store.scan_may_repeat().then(Default::default),
        };
        Box::pin(futures_util::stream::try_unfold(
            state,
            |mut st| async move {
                loop {
                    if let Some(key) = st.buffer.pop_front() {
                        return Ok(Some((key, st)));
                    }
                    if st.started && st.cursor.is_none() {
                        return Ok(None);
                    }
                    if st.prefix.len() > MAX_KEY_LEN {
                        return Err(Error::invalid_input(format!(
                            "scan prefix is {} bytes long; the limit is {MAX_KEY_LEN}",
                            st.prefix.len()
                        ))
                        .with_backend(st.kv.ctx.backend())
                        .with_operation("kv.scan"));
                    }
                    let (kv, prefix, cursor, limit) =
                        (&st.kv, &st.prefix, st.cursor.as_deref(), st.page_size);
                    let page = kv
                        .ctx
                        .run(Op::idempotent("kv.scan"), || {
                            kv.store.scan_page(prefix, cursor, limit)
                        })
                        .await?;
                    st.started = true;
                    st.cursor = page.cursor;
                    match &mut st.seen {
                        Some(seen) => st
                            .buffer
                            .extend(page.keys.into_iter().filter(|k| seen.insert(k.clone()))),
                        None => st.buffer.extend(page.keys),
                    }
                }
            },
        ))
    }

    /// Collect every live key that starts with `prefix`.
    pub async fn scan_keys(&self, prefix: &str) -> Result<Vec<String>> {
        use futures_util::TryStreamExt;
        self.scan(prefix).try_collect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rules() {
        assert_eq!(
            check_ttl(Duration::ZERO).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            check_ttl(Duration::from_micros(1)).unwrap(),
            Duration::from_millis(1)
        );
        assert_eq!(
            check_ttl(Duration::from_micros(1500)).unwrap(),
            Duration::from_millis(2)
        );
        assert_eq!(
            check_ttl(Duration::from_millis(7)).unwrap(),
            Duration::from_millis(7)
        );
        assert!(check_ttl(MAX_TTL).is_ok());
        assert!(check_ttl(Duration::MAX).is_err());
    }

    #[test]
    fn key_rules() {
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        let e = check_key(&"k".repeat(MAX_KEY_LEN + 1)).unwrap_err();
        assert!(e.to_string().contains("1025"), "{e}");
    }

    #[test]
    fn counters_parse_like_redis() {
        assert_eq!(parse_counter("k", b"0").unwrap(), 0);
        assert_eq!(parse_counter("k", b"-17").unwrap(), -17);
        assert_eq!(
            parse_counter("k", b"9223372036854775807").unwrap(),
            i64::MAX
        );
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"+1",
            b"01",
            b"-0",
            b"1.0",
            b"abc",
            b"\xff",
            b"9223372036854775808",
        ] {
            assert_eq!(
                parse_counter("k", bad).unwrap_err().kind(),
                ErrorKind::WrongType,
                "{bad:?}"
            );
        }
        assert_eq!(
            add_counter("k", i64::MAX, 1).unwrap_err().kind(),
            ErrorKind::OutOfRange
        );
        assert_eq!(add_counter("k", 5, -7).unwrap(), -2);
    }
}
