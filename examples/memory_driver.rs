//! A complete dbx driver in one file: key-value storage in process memory.
//!
//! ```text
//! cargo run -p examples --example memory_driver
//! ```
//!
//! It is the driver of the "writing a driver" guide (`dbx-core/README.md`),
//! and the key-value conformance suite runs against it
//! (`tests/tests/suite/memory.rs`), so it keeps every rule of the contract:
//! TTLs with millisecond resolution, Redis-like `incr`, all-or-nothing
//! `mset`, literal prefix scans. The driver writes no retry, timeout,
//! breaker, metric or span: the handles in `dbx-core` add all of those.

use dbx::driver::{Backend, Driver, KvStore, ScanPage, add_counter, async_trait, parse_counter};
use dbx::kv::Ttl;
use dbx::{ConnectOptions, Dbx, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The driver: serves `memory:` URLs (`memory:` or `memory:name`; each
/// connect opens a new, empty store).
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryDriver;

#[async_trait]
impl Driver for MemoryDriver {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["memory"]
    }

    async fn connect(&self, _options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(MemoryBackend::default()))
    }
}

/// One store: the backend, offering the key-value capability.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    kv: Arc<MemoryKv>,
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(self.kv.clone())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {}

    /// Nothing here can stall, so the core needs no timer per call.
    fn enforces_timeouts(&self) -> bool {
        true
    }
}

/// An entry: the value and when it expires.
#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// The key-value store. Keys are kept sorted, so a prefix scan is a range
/// and its cursor is simply the last key returned.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<String, Entry>>,
}

impl MemoryKv {
    /// The map. (A lock poisoned by a panic elsewhere still holds
    /// consistent data: every change below is one map operation.) Expired
    /// entries are dropped when they are next touched; a long-lived store
    /// would also sweep them in the background, as the contract asks.
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live entry of `key`, dropping it if it has expired.
    fn live<'m>(map: &'m mut BTreeMap<String, Entry>, key: &str) -> Option<&'m mut Entry> {
        let now = Instant::now();
        if map.get(key).is_some_and(|e| !e.live(now)) {
            map.remove(key);
        }
        map.get_mut(key)
    }
}

/// TTLs arrive checked by the handle (above zero, whole milliseconds).
fn expiry(ttl: Option<Duration>) -> Option<Instant> {
    ttl.map(|t| Instant::now() + t)
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(Self::live(&mut self.map(), key).map(|e| e.value.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let entry = Entry {
            value: value.to_vec(),
            expires: expiry(ttl),
        };
        self.map().insert(key.to_owned(), entry);
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        let mut map = self.map();
        if Self::live(&mut map, key).is_some() {
            return Ok(false);
        }
        let entry = Entry {
            value: value.to_vec(),
            expires: expiry(ttl),
        };
        map.insert(key.to_owned(), entry);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut map = self.map();
        let existed = Self::live(&mut map, key).is_some();
        map.remove(key);
        Ok(existed)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(Self::live(&mut self.map(), key).is_some())
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let mut map = self.map();
        match Self::live(&mut map, key) {
            Some(entry) => {
                // The contract's rules, shared by every driver: ASCII
                // decimal i64 or WrongType; overflow is OutOfRange.
                let next = add_counter(key, parse_counter(key, &entry.value)?, delta)?;
                entry.value = next.to_string().into_bytes();
                Ok(next)
            }
            None => {
                let entry = Entry {
                    value: delta.to_string().into_bytes(),
                    expires: None,
                };
                map.insert(key.to_owned(), entry);
                Ok(delta)
            }
        }
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut map = self.map();
        Ok(keys
            .iter()
            .map(|k| Self::live(&mut map, k).map(|e| e.value.clone()))
            .collect())
    }

    async fn mset(&self, entries: &[(&str, &[u8])], ttl: Option<Duration>) -> Result<()> {
        // One lock for all: no reader sees half of it.
        let mut map = self.map();
        for (key, value) in entries {
            let entry = Entry {
                value: value.to_vec(),
                expires: expiry(ttl),
            };
            map.insert((*key).to_owned(), entry);
        }
        Ok(())
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        Ok(match Self::live(&mut self.map(), key) {
            Some(entry) => {
                entry.expires = expiry(Some(ttl));
                true
            }
            None => false,
        })
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        Ok(match Self::live(&mut self.map(), key) {
            None => Ttl::Missing,
            Some(Entry { expires: None, .. }) => Ttl::Persistent,
            Some(Entry {
                expires: Some(at), ..
            }) => {
                // Millisecond resolution, rounded up, never zero for a live key.
                let left = at.saturating_duration_since(Instant::now());
                let ms = left.as_nanos().div_ceil(1_000_000).max(1);
                Ttl::Expires(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
            }
        })
    }

    async fn scan_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let now = Instant::now();
        let map = self.map();
        let start = match cursor {
            Some(after) => Excluded(after.to_owned()),
            None => Included(prefix.to_owned()),
        };
        let keys: Vec<String> = map
            .range((start, Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.live(now))
            .map(|(k, _)| k.clone())
            .take(limit)
            .collect();
        // A full page may have more after it; a short page is the last.
        let cursor = (keys.len() == limit)
            .then(|| keys.last().cloned())
            .flatten();
        Ok(ScanPage::new(keys, cursor))
    }
}

/// Connect through the facade with the driver registered.
pub async fn connect() -> Result<Dbx> {
    Dbx::builder("memory:").driver(MemoryDriver).connect().await
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let db = connect().await?;
    let kv = db.kv()?;
    kv.set("greeting", b"hello", Some(Duration::from_secs(60)))
        .await?;
    kv.incr("visits", 1).await?;
    println!(
        "memory driver: greeting = {:?}, visits = {}, ttl = {:?}, keys = {:?}",
        kv.get("greeting").await?.map(String::from_utf8),
        kv.incr("visits", 0).await?,
        kv.ttl("greeting").await?,
        kv.scan_keys("").await?,
    );
    db.close().await;
    Ok(())
}
