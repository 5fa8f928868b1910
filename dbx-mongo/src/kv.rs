//! Key-value storage on one collection.
//!
//! Each key is a document `{_id: key, v: <binary>, exp: <date>?}`, or
//! `{_id: key, n: <int64>, exp: <date>?}` when the value is a counter in
//! canonical form (ASCII decimal `i64`, as `incr` writes it: the bytes are
//! exactly `n`'s decimal text, so `get` returns what was stored) and `incr`
//! is one atomic `$inc` on the server. A TTL
//! index on `exp` (`expireAfterSeconds: 0`) lets the server sweep expired
//! keys, but MongoDB's TTL monitor runs only about once a minute, so every
//! read also filters on `exp` against the client's clock: an expired key is
//! gone for every operation the moment it expires.

use crate::Shared;
use crate::error::{BACKEND, is_duplicate_key, map_err};
use async_trait::async_trait;
use dbx_core::driver::{KvStore, ScanPage};
use dbx_core::kv::{add_counter, parse_counter};
use dbx_core::{Error, ErrorKind, Result, Ttl};
use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Rounds of `incr` (update, else insert) before giving up; more than one
/// only when the key appears, expires or changes type concurrently.
const MAX_ATTEMPTS: usize = 1_000;

#[derive(Debug)]
pub(crate) struct MongoKv {
    pub(crate) shared: Arc<Shared>,
    pub(crate) collection: String,
    pub(crate) ttl_index: tokio::sync::OnceCell<()>,
}

fn bin(value: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: value.to_vec(),
    })
}

/// Documents that have not expired at `now`: no `exp`, or a later one.
/// (Written as `$not: {$lte}` rather than an `$or`, which SecantusDB
/// plans as a collection scan; on mongod both use the `_id` index.)
fn live(now: DateTime) -> Document {
    doc! { "exp": { "$not": { "$lte": now } } }
}

fn live_key(key: &str, now: DateTime) -> Document {
    let mut d = doc! { "_id": key };
    d.extend(live(now));
    d
}

fn expiry(now: DateTime, ttl: Duration) -> DateTime {
    DateTime::from_millis(
        now.timestamp_millis()
            .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    )
}

/// The counter a value stands for, if its bytes are exactly the canonical
/// decimal text of an `i64`.
fn canonical_counter(value: &[u8]) -> Option<i64> {
    parse_counter("", value)
        .ok()
        .filter(|n| n.to_string().as_bytes() == value)
}

fn entry(value: &[u8], exp: Option<DateTime>) -> Document {
    let mut d = match canonical_counter(value) {
        Some(n) => doc! { "n": n },
        None => doc! { "v": bin(value) },
    };
    if let Some(exp) = exp {
        d.insert("exp", exp);
    }
    d
}

fn value_of(key: &str, doc: &Document) -> Result<Vec<u8>> {
    match (doc.get("v"), doc.get("n")) {
        (Some(Bson::Binary(b)), _) => Ok(b.bytes.clone()),
        (None, Some(Bson::Int64(n))) => Ok(n.to_string().into_bytes()),
        (None, Some(Bson::Int32(n))) => Ok(n.to_string().into_bytes()),
        _ => Err(Error::new(
            ErrorKind::WrongType,
            format!(
                "the document of key {:?} has no binary `v` or integer `n` field (not written by dbx?)",
                key.chars().take(64).collect::<String>()
            ),
        )
        .with_backend(BACKEND)),
    }
}

impl MongoKv {
    fn coll(&self) -> Result<Collection<Document>> {
        self.shared.check_open()?;
        Ok(self.shared.db.collection(&self.collection))
    }

    /// Create the TTL index once per process (idempotent on the server).
    async fn ensure_ttl_index(&self) -> Result<()> {
        self.ttl_index
            .get_or_try_init(|| async {
                let model = mongodb::IndexModel::builder()
                    .keys(doc! { "exp": 1 })
                    .options(
                        IndexOptions::builder()
                            .name("dbx_kv_exp".to_owned())
                            .expire_after(Duration::ZERO)
                            .build(),
                    )
                    .build();
                self.coll()?
                    .create_index(model)
                    .await
                    .map(drop)
                    .map_err(map_err)
            })
            .await
            .map(|_| ())
    }

    /// Store `value` under `key` only if it is absent or expired at `now`.
    async fn put_if_absent(
        &self,
        coll: &Collection<Document>,
        key: &str,
        value: &[u8],
        exp: Option<DateTime>,
        now: DateTime,
    ) -> Result<bool> {
        // Matches only an expired document; a live one makes the upsert
        // insert a second `_id`, which the server refuses.
        let filter = doc! { "_id": key, "exp": { "$lte": now } };
        match coll
            .replace_one(filter, entry(value, exp))
            .upsert(true)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }
}

#[async_trait]
impl KvStore for MongoKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let doc = self
            .coll()?
            .find_one(live_key(key, DateTime::now()))
            .projection(doc! { "v": 1, "n": 1 })
            .await
            .map_err(map_err)?;
        doc.map(|d| value_of(key, &d)).transpose()
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        if ttl.is_some() {
            self.ensure_ttl_index().await?;
        }
        let exp = ttl.map(|t| expiry(DateTime::now(), t));
        self.coll()?
            .replace_one(doc! { "_id": key }, entry(value, exp))
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        if ttl.is_some() {
            self.ensure_ttl_index().await?;
        }
        let now = DateTime::now();
        let exp = ttl.map(|t| expiry(now, t));
        let coll = self.coll()?;
        self.put_if_absent(&coll, key, value, exp, now).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let r = self
            .coll()?
            .delete_one(live_key(key, DateTime::now()))
            .await
            .map_err(map_err)?;
        Ok(r.deleted_count > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let doc = self
            .coll()?
            .find_one(live_key(key, DateTime::now()))
            .projection(doc! { "_id": 1 })
            .await
            .map_err(map_err)?;
        Ok(doc.is_some())
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let coll = self.coll()?;
        // Only counters that stay within i64 match, so the server never
        // overflows; a miss is then told apart by reading the entry.
        let bound = if delta >= 0 {
            doc! { "$type": "long", "$lte": i64::MAX - delta }
        } else {
            doc! { "$type": "long", "$gte": i64::MIN - delta }
        };
        for _ in 0..MAX_ATTEMPTS {
            let now = DateTime::now();
            let mut filter = live_key(key, now);
            filter.insert("n", bound.clone());
            let updated = coll
                .find_one_and_update(filter, doc! { "$inc": { "n": delta } })
                .projection(doc! { "n": 1 })
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_err)?;
            if let Some(d) = updated {
                return match d.get("n") {
                    Some(Bson::Int64(n)) => Ok(*n),
                    _ => {
                        Err(Error::decode("incr: the server returned no counter")
                            .with_backend(BACKEND))
                    }
                };
            }
            let current = coll.find_one(live_key(key, now)).await.map_err(map_err)?;
            match current {
                None => {
                    let new = add_counter(key, 0, delta)?;
                    if self
                        .put_if_absent(&coll, key, new.to_string().as_bytes(), None, now)
                        .await?
                    {
                        return Ok(new);
                    }
                }
                Some(d) => {
                    // Not a live in-range counter: a value that is not a
                    // number (WrongType), an overflow (OutOfRange), or a
                    // counter stored as bytes by another client.
                    let old = value_of(key, &d)?;
                    let new = add_counter(key, parse_counter(key, &old)?, delta)?;
                    if d.contains_key("v") {
                        let exp = d.get("exp").cloned().unwrap_or(Bson::Null);
                        let r = coll
                            .update_one(
                                doc! { "_id": key, "v": bin(&old), "exp": exp },
                                doc! { "$set": { "n": new }, "$unset": { "v": "" } },
                            )
                            .await
                            .map_err(map_err)?;
                        if r.matched_count == 1 {
                            return Ok(new);
                        }
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("incr lost {MAX_ATTEMPTS} races in a row"),
        )
        .set_transient(true)
        .with_backend(BACKEND))
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut filter = doc! { "_id": { "$in": keys } };
        filter.extend(live(DateTime::now()));
        let docs: Vec<Document> = self
            .coll()?
            .find(filter)
            .projection(doc! { "v": 1, "n": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut found: HashMap<String, Vec<u8>> = HashMap::with_capacity(docs.len());
        for d in docs {
            if let Ok(k) = d.get_str("_id") {
                let v = value_of(k, &d)?;
                found.insert(k.to_owned(), v);
            }
        }
        Ok(keys.iter().map(|k| found.get(*k).cloned()).collect())
    }

    async fn mset(&self, entries: &[(&str, &[u8])], ttl: Option<Duration>) -> Result<()> {
        if ttl.is_some() {
            self.ensure_ttl_index().await?;
        }
        let exp = ttl.map(|t| expiry(DateTime::now(), t));
        // The last entry of a repeated key wins.
        let mut last: HashMap<&str, &[u8]> = HashMap::with_capacity(entries.len());
        for (k, v) in entries {
            last.insert(k, v);
        }
        let coll = self.coll()?;
        if self.shared.transactions {
            // All or none: one transaction.
            let mut session = self.shared.start_transaction().await?;
            for (k, v) in &last {
                if let Err(e) = coll
                    .replace_one(doc! { "_id": *k }, entry(v, exp))
                    .upsert(true)
                    .session(&mut session)
                    .await
                {
                    let _ = session.abort_transaction().await;
                    return Err(map_err(e));
                }
            }
            session.commit_transaction().await.map_err(map_err)
        } else {
            // A standalone server has no transactions: the input was checked
            // before this point, so only a server failure can stop halfway.
            for (k, v) in &last {
                coll.replace_one(doc! { "_id": *k }, entry(v, exp))
                    .upsert(true)
                    .await
                    .map_err(map_err)?;
            }
            Ok(())
        }
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.ensure_ttl_index().await?;
        let now = DateTime::now();
        let r = self
            .coll()?
            .update_one(
                live_key(key, now),
                doc! { "$set": { "exp": expiry(now, ttl) } },
            )
            .await
            .map_err(map_err)?;
        Ok(r.matched_count > 0)
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let now = DateTime::now();
        let doc = self
            .coll()?
            .find_one(live_key(key, now))
            .projection(doc! { "exp": 1 })
            .await
            .map_err(map_err)?;
        Ok(match doc {
            None => Ttl::Missing,
            Some(d) => match d.get("exp") {
                Some(Bson::DateTime(exp)) => {
                    let ms = exp
                        .timestamp_millis()
                        .saturating_sub(now.timestamp_millis());
                    Ttl::Expires(Duration::from_millis(ms.max(1) as u64))
                }
                _ => Ttl::Persistent,
            },
        })
    }

    async fn scan_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage> {
        // Keys with the prefix are one contiguous range in `_id` order:
        // start at the prefix (or after the cursor) and stop at the first key
        // without it. No regex, so no character has a pattern meaning.
        let start = match cursor {
            Some(c) => doc! { "$gt": c },
            None => doc! { "$gte": prefix },
        };
        let mut filter = doc! { "_id": start };
        filter.extend(live(DateTime::now()));
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let docs: Vec<Document> = self
            .coll()?
            .find(filter)
            .projection(doc! { "_id": 1 })
            .sort(doc! { "_id": 1 })
            .limit(limit)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let full = docs.len() as i64 == limit;
        let mut keys = Vec::with_capacity(docs.len());
        for d in docs {
            let Ok(k) = d.get_str("_id") else { continue };
            if !k.starts_with(prefix) {
                return Ok(ScanPage::new(keys, None));
            }
            keys.push(k.to_owned());
        }
        let next = if full { keys.last().cloned() } else { None };
        Ok(ScanPage::new(keys, next))
    }
}
