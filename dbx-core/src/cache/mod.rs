//! The result cache: read-through caching of SQL queries, key-value gets,
//! document finds and vector searches, with one load per key, TTL with
//! stale-while-revalidate, tags, invalidation on writes and an optional
//! shared second tier. Cargo feature `cache`; off by default, and enabled
//! per database by its settings.
//!
//! ```
//! # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
//! use dbx_core::{params, cache::CachePolicy};
//! use std::time::Duration;
//! // Open the database with `?cache=true` (or a `[cache]` table in dbx.toml).
//! let users = db.sql()?.cached(
//!     CachePolicy::ttl(Duration::from_secs(60))
//!         .swr(Duration::from_secs(30))
//!         .tags(["users"]),
//! );
//! let rows = users.query("SELECT id, name FROM users WHERE id = $1", params![1]).await?;
//! // A write through the same database drops what it changes ...
//! db.sql()?.execute("UPDATE users SET name = $1 WHERE id = $2", params!["ada", 1]).await?;
//! // ... so this read goes to the database again.
//! let rows = users.query("SELECT id, name FROM users WHERE id = $1", params![1]).await?;
//! // Or drop by tag, for writes dbx cannot see.
//! db.cache()?.invalidate_tag("users").await;
//! # let _ = rows; Ok(()) }
//! ```
//!
//! # What is cached
//!
//! Only reads, through a cached handle: [`Sql::cached`](crate::Sql::cached)
//! (plain reads without clock or session functions; anything else runs
//! uncached, see the [SQL rule](#sql)), [`Kv::cached`](crate::Kv::cached)
//! (`get`, `get_json`, `mget`), [`Collection::cached`](crate::Collection::cached)
//! (`find_all`, `find_one`, `count`) and
//! [`VectorCollection::cached`](crate::VectorCollection::cached) (`search`).
//! The key is the statement (or key, filter, search) with its parameters;
//! errors are never cached.
//!
//! # Freshness
//!
//! An entry is fresh for its TTL. For the `swr` window after that it is
//! *stale*: a read gets it at once and one background load replaces it.
//! After that it is gone. Concurrent reads of a missing key make one
//! backend call, which all of them wait for. Time is Tokio's clock.
//!
//! # Invalidation
//!
//! Every entry carries tags: the policy's own, and what dbx derives (the
//! tables a query reads, the key of a get, the collection of a find or
//! search). Each tag has a version; an entry is found only under the
//! versions it was loaded with, so bumping a version drops every entry of
//! the tag at once, in this process and in the shared tier. Writes through
//! the same database bump what they change: a KV write its key, a document
//! or vector write its collection, a SQL write the tables it names (a write
//! inside a transaction at commit). Explicitly: [`Cache::invalidate_tag`],
//! [`Cache::invalidate_table`], [`Cache::invalidate_all`].
//!
//! ## SQL
//!
//! The tables of a statement are read from its text by a conservative
//! rule: a read depends on every name after `FROM` or `JOIN`; a write
//! changes the table after `INSERT INTO`, `UPDATE`, `DELETE FROM`, `MERGE
//! INTO`, `TRUNCATE`, `ALTER TABLE` or `DROP TABLE`; any other statement
//! that may write (`CALL`, `DO`, a `WITH` that writes, a function that may
//! write, `CASCADE`, a script) drops every cached SQL result of the
//! database. What the text does not show is not seen: triggers, cascading
//! foreign keys, views, and writes by other programs. Tag such reads and
//! invalidate the tag, or keep their TTL short.
//!
//! # The shared tier
//!
//! [`Cache::set_shared_tier`] adds a second tier on the key-value store of
//! another database (Redis, typically), so several instances of a service
//! share results and invalidations. Values are stored in a compact binary
//! form under keys derived from the read and its tags' versions; the
//! versions live in the tier too. An instance sees another's invalidation
//! within `cache_sync` (1 s by default); its own at once. Any failure or
//! slow answer of the tier (over `cache_tier_timeout`, 100 ms) makes the
//! read go to the database instead, and the tier is left alone for a second
//! (so a dead tier costs nothing per read): the tier never turns a read into
//! an error. A write also waits for the tier to take the new versions
//! (bounded the same way).
//!
//! # Settings
//!
//! | URL parameter | `dbx.toml` `[cache]` key | default |
//! |---|---|---|
//! | `cache` | `enabled` | `false` (any other setting turns it on) |
//! | `cache_max_entries` | `max_entries` | 10000 |
//! | `cache_max_bytes` | `max_bytes` | 64 MiB (`64MiB`, `512KB`, bytes) |
//! | `cache_ttl` | `ttl` | 60s (for policies without their own) |
//! | `cache_swr` | `swr` | 0s |
//! | `cache_sync` | `sync` | 1s |
//! | `cache_tier_timeout` | `tier_timeout` | 100ms |
//! | `cache_namespace` | `namespace` | derived from the URL, without credentials |
//!
//! `max_bytes` counts what the weigher sees (key, value, a fixed overhead);
//! the process's memory per small entry is about twice that (820 bytes of
//! RSS per cached one-row result against 394 counted), and every entry
//! counts at least `max_bytes / max_entries`. Each thread also keeps its
//! last 64 fresh hits of at most 4 KiB each, so a hot key read again on the
//! same thread touches no memory other threads write.
//!
//! With the cache off, cached handles read straight through: turning the
//! cache on or off is a configuration change, not a code change.
//!
//! # Metrics
//!
//! `dbx.client.cache.requests` (counter, `dbx.cache.result` = `hit` |
//! `stale` | `miss` | `bypass`), `dbx.client.cache.loads` (counter,
//! `error.type` on failures), `dbx.client.cache.evictions` (counter),
//! `dbx.client.cache.tier.errors` (counter), `dbx.client.cache.size` (gauge,
//! bytes) and `dbx.client.cache.entries` (gauge, published by `stats()`),
//! all with `db.system.name`. A cached read's span is `dbx.cache` with
//! `dbx.cache.result`; a load's `db.operation` span is inside it.

mod codec;
pub(crate) mod config;
mod handles;
pub(crate) mod sqltext;
mod store;
mod tier;

pub use config::CacheConfig;
pub use handles::{CachedCollection, CachedKv, CachedSql, CachedVectors};
pub use store::Cache;

use crate::error::{Error, Result};
use crate::row::Row;
use crate::vector::ScoredPoint;
use std::sync::Arc;
use std::time::Duration;

/// Longest TTL or stale window of a policy: one year.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Most tags of one policy.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 256;

/// How a cached handle caches: time to live, stale-while-revalidate window
/// and tags. Built with [`CachePolicy::ttl`] (or [`default`](CachePolicy::default)
/// for the database's configured TTL). A bad policy (a zero TTL, an empty
/// tag) makes each read of its handle fail with
/// [`InvalidConfig`](crate::ErrorKind::InvalidConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePolicy {
    ttl: Option<Duration>,
    swr: Option<Duration>,
    tags: Vec<String>,
}

impl CachePolicy {
    /// Fresh for `ttl` after loading.
    pub fn ttl(ttl: Duration) -> Self {
        CachePolicy {
            ttl: Some(ttl),
            ..CachePolicy::default()
        }
    }

    /// After the TTL, serve the stale value for up to `swr` more while one
    /// background load replaces it.
    pub fn swr(mut self, swr: Duration) -> Self {
        self.swr = Some(swr);
        self
    }

    /// Add tags, to invalidate with [`Cache::invalidate_tag`].
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Add one tag.
    pub fn tag(self, tag: impl Into<String>) -> Self {
        self.tags([tag])
    }

    /// Check the policy and fill in the database's defaults.
    pub(crate) fn resolve(&self, defaults: &CacheConfig) -> Result<Resolved> {
        let ttl = self.ttl.unwrap_or(defaults.ttl);
        let swr = self.swr.unwrap_or(defaults.swr);
        if ttl.is_zero() {
            return Err(Error::invalid_config("cache TTL must be above zero"));
        }
        for (what, d) in [("TTL", ttl), ("stale window (swr)", swr)] {
            if d > MAX_TTL {
                return Err(Error::invalid_config(format!(
                    "cache {what} of {}s is above the limit of one year",
                    d.as_secs()
                )));
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(Error::invalid_config(format!(
                "a cache policy has {} tags; the limit is {MAX_TAGS}",
                self.tags.len()
            )));
        }
        let tags = self
            .tags
            .iter()
            .map(|t| Tag::checked(TagKind::User, t))
            .collect::<Result<Vec<_>>>()?;
        Ok(Resolved {
            ttl,
            swr,
            tags: tags.into(),
        })
    }
}

/// A checked policy with the database's defaults filled in.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) ttl: Duration,
    pub(crate) swr: Duration,
    pub(crate) tags: Arc<[Tag]>,
}

/// What a tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    /// Every entry of the database.
    All,
    /// Every SQL entry.
    AllSql,
    /// A table.
    Table,
    /// A key-value key.
    Key,
    /// A document collection.
    Docs,
    /// A vector collection.
    Vectors,
    /// A tag of a policy.
    User,
}

impl TagKind {
    fn prefix(self) -> &'static str {
        match self {
            TagKind::All => "*",
            TagKind::AllSql => "sql*",
            TagKind::Table => "t:",
            TagKind::Key => "k:",
            TagKind::Docs => "d:",
            TagKind::Vectors => "v:",
            TagKind::User => "u:",
        }
    }
}

/// One tag: its kind and name (as `t:users`, the shared tier's name for
/// it) and the version slot it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) full: Box<str>,
    pub(crate) slot: u32,
}

/// Version slots: a tag's version is its slot's counter. Tags that share a
/// slot invalidate each other, which drops more than needed, never less.
pub(crate) const SLOTS: usize = 4096;

impl Tag {
    pub(crate) fn new(kind: TagKind, name: &str) -> Tag {
        let prefix = kind.prefix();
        let mut full = String::with_capacity(prefix.len() + name.len());
        full.push_str(prefix);
        full.push_str(name);
        Tag {
            slot: slot_of(&full),
            full: full.into(),
        }
    }

    fn checked(kind: TagKind, name: &str) -> Result<Tag> {
        if name.is_empty() {
            return Err(Error::invalid_config("a cache tag is empty"));
        }
        if name.len() > MAX_TAG_LEN {
            return Err(Error::invalid_config(format!(
                "a cache tag is {} bytes long; the limit is {MAX_TAG_LEN}",
                name.len()
            )));
        }
        Ok(Tag::new(kind, name))
    }
}

/// A fast, fixed hash (FNV-1a) of a tag, for its slot.
fn slot_of(full: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in full.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % SLOTS as u64) as u32
}

/// A cached result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    Rows(Box<[Row]>),
    Bytes(Option<Box<[u8]>>),
    Many(Box<[Option<Vec<u8>>]>),
    Docs(Box<[serde_json::Value]>),
    Points(Box<[ScoredPoint]>),
    Count(u64),
}

impl Payload {
    /// Roughly the bytes the value holds on the heap, for the weigher.
    pub(crate) fn approx_size(&self) -> usize {
        fn value(v: &crate::Value) -> usize {
            use crate::Value::*;
            32 + match v {
                Text(s) | Decimal(s) => s.len(),
                Bytes(b) => b.len(),
                Json(j) => json(j),
                _ => 0,
            }
        }
        fn json(v: &serde_json::Value) -> usize {
            use serde_json::Value::*;
            32 + match v {
                String(s) => s.len(),
                Array(a) => a.iter().map(json).sum(),
                Object(o) => o.iter().map(|(k, v)| k.len() + 24 + json(v)).sum(),
                _ => 0,
            }
        }
        match self {
            Payload::Rows(rows) => {
                let columns: usize = rows
                    .first()
                    .map_or(0, |r| r.columns().iter().map(|c| c.len() + 24).sum());
                columns
                    + rows
                        .iter()
                        .map(|r| 40 + r.values().iter().map(value).sum::<usize>())
                        .sum::<usize>()
            }
            Payload::Bytes(b) => b.as_ref().map_or(0, |b| b.len()),
            Payload::Many(v) => v.iter().map(|b| 24 + b.as_ref().map_or(0, Vec::len)).sum(),
            Payload::Docs(d) => d.iter().map(json).sum(),
            Payload::Points(p) => p
                .iter()
                .map(|p| {
                    48 + p.vector.as_ref().map_or(0, |v| v.len() * 4)
                        + p.payload
                            .as_ref()
                            .map_or(0, |m| m.iter().map(|(k, v)| k.len() + 24 + json(v)).sum())
                })
                .sum(),
            Payload::Count(_) => 0,
        }
    }
}

/// What the cache of a database has done: `db.stats().cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from the cache, fresh.
    pub hits: u64,
    /// Reads answered with a stale value while a refresh ran.
    pub stale_hits: u64,
    /// Reads that found nothing usable and waited for a load (or joined one).
    pub misses: u64,
    /// Reads a cached handle ran uncached (not cacheable).
    pub bypasses: u64,
    /// Backend calls made to fill the cache (misses and refreshes).
    pub loads: u64,
    /// Loads that failed (their errors are not cached).
    pub load_errors: u64,
    /// Entries removed to stay within the capacity.
    pub evictions: u64,
    /// Tag invalidations (explicit and by writes).
    pub invalidations: u64,
    /// Entries held now (approximate: removals settle lazily).
    pub entries: u64,
    /// Bytes held now, as the weigher counts them.
    pub bytes: u64,
    /// Reads the shared tier answered.
    pub tier_hits: u64,
    /// Reads the shared tier did not have.
    pub tier_misses: u64,
    /// Shared tier calls that failed or timed out (reads then went to the database).
    pub tier_errors: u64,
}

/// Drop what a write changed.
pub(crate) async fn changed(cache: &Cache, what: crate::policy::engine::Changed<'_>) {
    use crate::policy::engine::Changed;
    let tags = match what {
        Changed::Key(k) => vec![Tag::new(TagKind::Key, k)],
        Changed::Keys(keys) => keys.iter().map(|k| Tag::new(TagKind::Key, k)).collect(),
        Changed::Docs(c) => vec![Tag::new(TagKind::Docs, c)],
        Changed::Vectors(c) => vec![Tag::new(TagKind::Vectors, c)],
        Changed::Sql(sql) => match sqltext::writes(sql) {
            sqltext::Writes::Nothing => return,
            sqltext::Writes::Tables(tables) => {
                tables.iter().map(|t| Tag::new(TagKind::Table, t)).collect()
            }
            sqltext::Writes::Unknown => vec![Tag::new(TagKind::AllSql, "")],
        },
    };
    cache.invalidate(&tags).await;
}

#[cfg(test)]
mod tests;
