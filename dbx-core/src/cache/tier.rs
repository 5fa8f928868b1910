//! The shared second tier: results and tag versions on another database's
//! key-value store, so several instances share them.
//!
//! Keys, under `dbx:cache:<namespace>:`:
//! - `v:<tag>`: the tag's version, a random 64-bit token (decimal). A tag
//!   without one gets a new random token, so a version lost to eviction or
//!   a flush never brings back entries stamped with an older one.
//! - `e:<hash>`: a result, under a 128-bit hash of the read and its tags'
//!   tokens; the value repeats the read, which is compared, so a hash
//!   collision is a miss, never a wrong answer. Stored with the TTL plus the
//!   stale window as its expiry.

use super::codec::{Reader, Writer};
use super::{CacheConfig, Payload, Tag};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::Kv;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

const MAGIC: &[u8] = b"dbx\x01";
/// Most tag versions remembered; past it the memory starts over.
const MAX_TOKENS: usize = 100_000;

#[derive(Debug, Clone)]
pub(crate) struct Tier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kv: Kv,
    prefix: String,
    timeout: Duration,
    sync: Duration,
    /// Versions read from the tier, and when.
    tokens: RwLock<HashMap<Box<str>, (u64, Instant)>>,
    /// When the tier failed, it is left alone until this time (milliseconds
    /// after `epoch`): reads go to the database without waiting for it.
    down_until: AtomicU64,
    epoch: Instant,
}

/// The code of the error a resting tier gives.
pub(crate) const RESTING: &str = "dbx-cache-tier-resting";

/// How long a failed tier is left alone before it is tried again.
const REST: Duration = Duration::from_secs(1);

fn random_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn fnv(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = seed;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Tier {
    pub(crate) fn new(kv: Kv, config: &CacheConfig) -> Tier {
        Tier {
            inner: Arc::new(Inner {
                kv,
                prefix: format!("dbx:cache:{}:", config.namespace),
                timeout: config.tier_timeout,
                sync: config.sync,
                tokens: RwLock::new(HashMap::new()),
                down_until: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.inner.epoch)
            .as_millis() as u64
    }

    /// Call the tier, unless it failed less than [`REST`] ago; bounded by
    /// the tier timeout. A failure rests the tier.
    async fn bounded<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if self.now_ms() < self.inner.down_until.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::Connect,
                "the cache's shared tier failed less than a second ago; not asked",
            )
            .set_never_sent(true)
            .with_code(RESTING));
        }
        let r = match tokio::time::timeout(self.inner.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the cache's shared tier did not answer within {:?}",
                    self.inner.timeout
                ),
            )),
        };
        if r.is_err() {
            let until = self.now_ms() + REST.as_millis() as u64;
            self.inner.down_until.fetch_max(until, Ordering::Relaxed);
        }
        r
    }

    fn version_key(&self, tag: &Tag) -> String {
        format!("{}v:{}", self.inner.prefix, tag.full)
    }

    /// The current tokens of `tags`: remembered ones younger than the sync
    /// interval, the others read from the tier (and created if missing).
    pub(crate) async fn tokens<'a>(&self, tags: impl Iterator<Item = &'a Tag>) -> Result<Vec<u64>> {
        let tags: Vec<&Tag> = tags.collect();
        let now = Instant::now();
        let mut out = vec![0u64; tags.len()];
        let mut missing = Vec::new();
        {
            let known = self
                .inner
                .tokens
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (i, t) in tags.iter().enumerate() {
                match known.get(&*t.full) {
                    Some((token, at)) if now.saturating_duration_since(*at) < self.inner.sync => {
                        out[i] = *token;
                    }
                    _ => missing.push(i),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = missing.iter().map(|&i| self.version_key(tags[i])).collect();
        let values = self.bounded(self.inner.kv.mget(&keys)).await?;
        for (j, &i) in missing.iter().enumerate() {
            let parsed = values
                .get(j)
                .and_then(|v| v.as_deref())
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
            out[i] = match parsed {
                Some(t) => t,
                None => {
                    let fresh = random_token();
                    let kv = &self.inner.kv;
                    if self
                        .bounded(kv.set_nx(&keys[j], fresh.to_string(), None))
                        .await?
                    {
                        fresh
                    } else {
                        // Another instance created it (or a bad value sits
                        // there: replace it).
                        match self.bounded(kv.get(&keys[j])).await? {
                            Some(v)
                                if std::str::from_utf8(&v)
                                    .ok()
                                    .and_then(|s| s.parse::<u64>().ok())
                                    .is_some() =>
                            {
                                std::str::from_utf8(&v)
                                    .ok()
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or(fresh)
                            }
                            _ => {
                                self.bounded(kv.set(&keys[j], fresh.to_string(), None))
                                    .await?;
                                fresh
                            }
                        }
                    }
                }
            };
        }
        self.remember(missing.iter().map(|&i| (tags[i], out[i])), now);
        Ok(out)
    }

    fn remember<'a>(&self, tokens: impl Iterator<Item = (&'a Tag, u64)>, at: Instant) {
        let mut known = self
            .inner
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() > MAX_TOKENS {
            known.clear();
        }
        for (t, token) in tokens {
            known.insert(t.full.clone(), (token, at));
        }
    }

    /// Give `tags` new tokens in the tier (and here at once).
    pub(crate) async fn bump(&self, tags: &[Tag]) -> Result<()> {
        let tokens: Vec<u64> = tags.iter().map(|_| random_token()).collect();
        let entries: Vec<(String, String)> = tags
            .iter()
            .zip(&tokens)
            .map(|(t, token)| (self.version_key(t), token.to_string()))
            .collect();
        let result = self.bounded(self.inner.kv.mset(&entries, None)).await;
        // Forget what was remembered either way: on success the new tokens
        // hold; on failure the next read asks the tier again.
        match &result {
            Ok(()) => self.remember(tags.iter().zip(tokens), Instant::now()),
            Err(_) => {
                let mut known = self
                    .inner
                    .tokens
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for t in tags {
                    known.remove(&*t.full);
                }
            }
        }
        result
    }

    /// The tier's key of a read (`base`) under `tokens`.
    pub(crate) fn entry_key(&self, base: &[u8], tokens: &[u64], _local: &[u8]) -> String {
        let tokens: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        let a = fnv(0xcbf2_9ce4_8422_2325, &[base, &[0], &tokens]);
        let b = fnv(0x6c62_272e_07bb_0142, &[&tokens, &[1], base]);
        format!("{}e:{a:016x}{b:016x}", self.inner.prefix)
    }

    /// The result stored under `key` for the read `base`, with its age;
    /// `None` if missing, older than `ttl + swr`, or not this read's.
    pub(crate) async fn get(
        &self,
        key: &str,
        base: &[u8],
        ttl: Duration,
        swr: Duration,
    ) -> Result<Option<(Payload, Duration)>> {
        let Some(bytes) = self.bounded(self.inner.kv.get(key)).await? else {
            return Ok(None);
        };
        let mut r = Reader::new(&bytes);
        if r.take(MAGIC.len()) != Some(MAGIC) || r.bytes() != Some(base) {
            return Ok(None);
        }
        let Some(written) = r.varint() else {
            return Ok(None);
        };
        let age = Duration::from_millis(now_ms().saturating_sub(written));
        if age >= ttl.saturating_add(swr) {
            return Ok(None);
        }
        Ok(r.payload().filter(|_| r.is_empty()).map(|p| (p, age)))
    }

    /// Store a result for the read `base` under `key`.
    pub(crate) async fn put(
        &self,
        key: &str,
        base: &[u8],
        payload: &Payload,
        ttl: Duration,
        swr: Duration,
    ) -> Result<()> {
        let mut w = Writer::with_capacity(64 + base.len());
        w.buf.extend_from_slice(MAGIC);
        w.bytes(base);
        w.varint(now_ms());
        w.payload(payload);
        if w.buf.len() > crate::kv::MAX_VALUE_LEN {
            return Ok(());
        }
        let expiry = ttl.saturating_add(swr).max(Duration::from_millis(1));
        self.bounded(self.inner.kv.set(key, w.buf, Some(expiry)))
            .await
    }
}
