//! The cached handles: [`CachedSql`], [`CachedKv`], [`CachedCollection`]
//! and [`CachedVectors`], each a plain handle plus a [`CachePolicy`].

use super::codec::Writer;
use super::sqltext::read_info;
use super::store::{Cache, Read};
use super::{CachePolicy, Payload, Resolved, Tag, TagKind};
use crate::document::{Collection, FindOptions};
use crate::error::{Error, Result};
use crate::kv::Kv;
use crate::policy::engine::Ctx;
use crate::row::Row;
use crate::sql::{BoundedRows, Sql, decode_all, first_row};
use crate::value::Value;
use crate::vector::{ScoredPoint, Search, VectorCollection};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// Room left in a read's key for the versions of its tags, so stamping it
/// does not reallocate (measured: a realloc was a tenth of a hit).
const STAMP_ROOM: usize = 64;

/// A policy checked against the database's defaults once, when the handle
/// is made; a bad one fails each read.
#[derive(Debug, Clone)]
struct Checked(std::result::Result<Resolved, String>);

impl Checked {
    fn new(ctx: &Ctx, policy: &CachePolicy) -> Checked {
        let defaults = ctx.cache().map(|c| c.config().clone()).unwrap_or_default();
        Checked(
            policy
                .resolve(&defaults)
                .map_err(|e| e.message().to_owned()),
        )
    }

    fn get(&self, ctx: &Ctx, op: &'static str) -> Result<&Resolved> {
        self.0.as_ref().map_err(|m| {
            Error::invalid_config(m.clone())
                .with_backend(ctx.backend())
                .with_operation(op)
        })
    }
}

/// The cache, if this database has one, and the checked policy.
fn cache_and_policy<'a>(
    ctx: &'a Ctx,
    checked: &'a Checked,
    op: &'static str,
) -> Result<Option<(&'a Arc<Cache>, &'a Resolved)>> {
    let policy = checked.get(ctx, op)?;
    Ok(ctx.cache().map(|c| (c, policy)))
}

/// What the cache knows about one statement text.
#[derive(Debug)]
struct SqlInfo {
    cacheable: bool,
    tags: Vec<Tag>,
}

/// The statements this thread has looked at, so a repeated query is one
/// hash lookup instead of a scan of its text.
fn sql_info(sql: &str) -> Arc<SqlInfo> {
    thread_local! {
        static MEMO: std::cell::RefCell<HashMap<Box<str>, Arc<SqlInfo>, super::store::Hasher>> =
            std::cell::RefCell::new(HashMap::with_hasher(super::store::Hasher::new()));
    }
    let compute = || {
        let info = read_info(sql);
        Arc::new(SqlInfo {
            cacheable: info.cacheable,
            tags: info
                .tables
                .iter()
                .map(|t| Tag::new(TagKind::Table, t))
                .collect(),
        })
    };
    if sql.len() > 4096 {
        return compute();
    }
    MEMO.try_with(|memo| {
        if let Some(info) = memo.borrow().get(sql) {
            return info.clone();
        }
        let info = compute();
        let mut memo = memo.borrow_mut();
        if memo.len() >= 512 {
            memo.clear();
        }
        memo.insert(sql.into(), info.clone());
        info
    })
    .unwrap_or_else(|_| compute())
}

impl Sql {
    /// A handle whose reads are cached by `policy` (see [`crate::cache`]).
    /// Statements that are not cacheable reads run uncached; with the
    /// database's cache off, every statement does.
    pub fn cached(&self, policy: CachePolicy) -> CachedSql {
        CachedSql {
            checked: Checked::new(&self.ctx, &policy),
            sql: self.clone(),
        }
    }
}

/// SQL reads through the cache: from [`Sql::cached`].
#[derive(Debug, Clone)]
pub struct CachedSql {
    sql: Sql,
    checked: Checked,
}

impl CachedSql {
    fn tag(&self, e: Error, op: &'static str) -> Error {
        e.with_backend(self.sql.ctx.backend()).with_operation(op)
    }

    /// The rows of a query: cached if it is a cacheable read, run
    /// uncached otherwise.
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let view = |p: &Payload| match p {
            Payload::Rows(rows) => Some(rows.to_vec()),
            _ => None,
        };
        match self.cached(sql, params, view).await? {
            Some(rows) => Ok(rows),
            None => self.sql.query(sql, params).await,
        }
    }

    /// At most `max_rows` rows of a query, as [`Sql::query_bounded`]
    /// returns them: cached if it is a cacheable read (the entry holds at
    /// most `max_rows + 1` rows, under a key of its own for each
    /// `max_rows`, so memory stays bounded), run uncached otherwise.
    pub async fn query_bounded(
        &self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        let view = |p: &Payload| match p {
            Payload::Rows(rows) => Some(BoundedRows::cut(
                rows.iter()
                    .take(max_rows.saturating_add(1))
                    .cloned()
                    .collect(),
                max_rows,
            )),
            _ => None,
        };
        match self.cached_as(sql, params, Some(max_rows), view).await? {
            Some(rows) => Ok(rows),
            None => self.sql.query_bounded(sql, params, max_rows).await,
        }
    }

    /// The first row of a query (the whole result is what is cached).
    async fn query_first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let view = |p: &Payload| match p {
            Payload::Rows(rows) => Some(rows.first().cloned()),
            _ => None,
        };
        match self.cached(sql, params, view).await? {
            Some(row) => Ok(row),
            None => self.sql.query_optional(sql, params).await,
        }
    }

    /// `view` of the cached result of a cacheable read; `None` to run it
    /// uncached.
    async fn cached<T>(
        &self,
        sql: &str,
        params: &[Value],
        view: impl FnOnce(&Payload) -> Option<T>,
    ) -> Result<Option<T>> {
        self.cached_as(sql, params, None, view).await
    }

    /// [`cached`](Self::cached) of the whole result (`bound` `None`), or of
    /// its first `bound + 1` rows, kept under a key of their own.
    async fn cached_as<T>(
        &self,
        sql: &str,
        params: &[Value],
        bound: Option<usize>,
        view: impl FnOnce(&Payload) -> Option<T>,
    ) -> Result<Option<T>> {
        let ctx = &self.sql.ctx;
        let Some((cache, policy)) = cache_and_policy(ctx, &self.checked, "sql.query")? else {
            return Ok(None);
        };
        let info = sql_info(sql);
        if !info.cacheable {
            cache.bypass();
            return Ok(None);
        }
        let mut key = Writer::with_capacity(sql.len() + 18 + params.len() * 12 + STAMP_ROOM);
        match bound {
            None => key.byte(b'S'),
            Some(max) => {
                key.byte(b'B');
                key.varint(u64::try_from(max).unwrap_or(u64::MAX));
            }
        }
        key.str(sql);
        for p in params {
            key.value(p);
        }
        let read = Read {
            op: "sql.query",
            key: key.buf,
            sql: true,
            tags: &info.tags,
            policy,
        };
        let load = || {
            let (handle, sql, params) = (self.sql.clone(), sql.to_owned(), params.to_vec());
            async move {
                let rows = match bound {
                    None => handle.query(&sql, &params).await?,
                    // One row past the bound, to know whether there were more.
                    Some(max) => {
                        let cap = max.saturating_add(1);
                        handle.query_bounded(&sql, &params, cap).await?.rows
                    }
                };
                Ok(Payload::Rows(rows.into()))
            }
            .boxed()
        };
        Ok(Some(cache.read(read, load, view).await?))
    }

    crate::sql::query_conveniences!();
}

impl Kv {
    /// A handle whose gets are cached by `policy` (see [`crate::cache`]).
    /// Writes through any handle of the database drop the key's entries.
    pub fn cached(&self, policy: CachePolicy) -> CachedKv {
        CachedKv {
            checked: Checked::new(&self.ctx, &policy),
            kv: self.clone(),
        }
    }
}

/// Key-value gets through the cache: from [`Kv::cached`].
#[derive(Debug, Clone)]
pub struct CachedKv {
    kv: Kv,
    checked: Checked,
}

impl CachedKv {
    /// The value of `key`, or `None` (a missing key is cached too). The
    /// policy's TTL applies, not the key's own: a key that expires in the
    /// store is served until its cached entry does, so keep the policy's
    /// TTL at or below the keys' TTLs.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let ctx = &self.kv.ctx;
        let Some((cache, policy)) = cache_and_policy(ctx, &self.checked, "kv.get")? else {
            return self.kv.get(key).await;
        };
        ctx.check(
            crate::policy::engine::Op::idempotent("kv.get"),
            crate::kv::check_key(key),
        )?;
        let mut k = Vec::with_capacity(key.len() + 1 + STAMP_ROOM);
        k.push(b'K');
        k.extend_from_slice(key.as_bytes());
        let tags = [Tag::new(TagKind::Key, key)];
        let read = Read {
            op: "kv.get",
            key: k,
            sql: false,
            tags: &tags,
            policy,
        };
        let load = || {
            let (kv, key) = (self.kv.clone(), key.to_owned());
            async move { Ok(Payload::Bytes(kv.get(&key).await?.map(Into::into))) }.boxed()
        };
        let view = |p: &Payload| match p {
            Payload::Bytes(b) => Some(b.as_deref().map(<[u8]>::to_vec)),
            _ => None,
        };
        cache.read(read, load, view).await
    }

    /// Decode the value of `key` from JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::decode(format!(
                    "value of key {:?} is not the expected JSON: {e}",
                    crate::util::short(key)
                ))
                .with_source(e)
                .with_backend(self.kv.ctx.backend())
                .with_operation("kv.get")
            }),
        }
    }

    /// Values of several keys, in order, cached as one entry (dropped when
    /// any of the keys is written).
    pub async fn mget<K: AsRef<str> + Sync>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let ctx = &self.kv.ctx;
        let Some((cache, policy)) = cache_and_policy(ctx, &self.checked, "kv.mget")? else {
            return self.kv.mget(keys).await;
        };
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        ctx.check(
            crate::policy::engine::Op::idempotent("kv.mget"),
            keys.iter().try_for_each(|k| crate::kv::check_key(k)),
        )?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut k = Writer::default();
        k.byte(b'M');
        for key in &keys {
            k.str(key);
        }
        let tags: Vec<Tag> = keys.iter().map(|k| Tag::new(TagKind::Key, k)).collect();
        let read = Read {
            op: "kv.mget",
            key: k.buf,
            sql: false,
            tags: &tags,
            policy,
        };
        let load = || {
            let kv = self.kv.clone();
            let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            async move { Ok(Payload::Many(kv.mget(&keys).await?.into())) }.boxed()
        };
        let view = |p: &Payload| match p {
            Payload::Many(values) => Some(values.to_vec()),
            _ => None,
        };
        cache.read(read, load, view).await
    }
}

impl Collection {
    /// A handle whose finds and counts are cached by `policy` (see
    /// [`crate::cache`]). Writes to the collection through any handle of
    /// the database drop its entries.
    pub fn cached(&self, policy: CachePolicy) -> CachedCollection {
        CachedCollection {
            checked: Checked::new(self.ctx(), &policy),
            collection: self.clone(),
        }
    }
}

/// Document reads through the cache: from [`Collection::cached`].
#[derive(Debug, Clone)]
pub struct CachedCollection {
    collection: Collection,
    checked: Checked,
}

fn json_key(w: &mut Writer, v: Option<&serde_json::Value>) {
    match v {
        None => w.byte(0),
        Some(v) => {
            w.byte(1);
            w.str(&v.to_string());
        }
    }
}

impl CachedCollection {
    async fn read<F, T>(
        &self,
        op: &'static str,
        mut key: Writer,
        load: F,
        view: impl FnOnce(&Payload) -> Option<T>,
    ) -> Result<Option<T>>
    where
        F: FnOnce(Collection) -> futures_util::future::BoxFuture<'static, Result<Payload>>,
    {
        let ctx = self.collection.ctx();
        let Some((cache, policy)) = cache_and_policy(ctx, &self.checked, op)? else {
            return Ok(None);
        };
        let name = self.collection.name();
        key.str(name);
        let tags = [Tag::new(TagKind::Docs, name)];
        let read = Read {
            op,
            key: key.buf,
            sql: false,
            tags: &tags,
            policy,
        };
        let collection = self.collection.clone();
        Ok(Some(
            cache.read(read, move || load(collection), view).await?,
        ))
    }

    fn find_key(kind: u8, filter: &serde_json::Value, options: &FindOptions) -> Writer {
        let mut w = Writer::default();
        w.byte(kind);
        json_key(&mut w, Some(filter));
        json_key(&mut w, options.projection.as_ref());
        json_key(&mut w, options.sort.as_ref());
        w.varint(options.limit.map_or(0, |n| n.saturating_add(1)));
        w.varint(options.skip.unwrap_or(0));
        w
    }

    /// Every matching document (mind the size of the result).
    pub async fn find_all(
        &self,
        filter: &serde_json::Value,
        options: FindOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let key = Self::find_key(b'F', filter, &options);
        let f = filter.clone();
        let o = options.clone();
        let load = move |c: Collection| {
            async move { Ok(Payload::Docs(c.find_all(&f, o).await?.into())) }.boxed()
        };
        let view = |p: &Payload| match p {
            Payload::Docs(d) => Some(d.to_vec()),
            _ => None,
        };
        match self.read("docs.find", key, load, view).await? {
            None => self.collection.find_all(filter, options).await,
            Some(docs) => Ok(docs),
        }
    }

    /// Every matching document decoded into `T`.
    pub async fn find_all_as<T: DeserializeOwned>(
        &self,
        filter: &serde_json::Value,
        options: FindOptions,
    ) -> Result<Vec<T>> {
        self.find_all(filter, options)
            .await?
            .into_iter()
            .map(crate::document::from_document)
            .collect::<Result<Vec<T>>>()
            .map_err(|e| {
                e.with_backend(self.collection.ctx().backend())
                    .with_operation("docs.find")
            })
    }

    /// The first document matching `filter`.
    pub async fn find_one(&self, filter: &serde_json::Value) -> Result<Option<serde_json::Value>> {
        let key = Self::find_key(b'O', filter, &FindOptions::default());
        let f = filter.clone();
        let load = move |c: Collection| {
            async move {
                let doc = c.find_one(&f).await?;
                Ok(Payload::Docs(doc.into_iter().collect()))
            }
            .boxed()
        };
        let view = |p: &Payload| match p {
            Payload::Docs(d) => Some(d.first().cloned()),
            _ => None,
        };
        match self.read("docs.find_one", key, load, view).await? {
            None => self.collection.find_one(filter).await,
            Some(doc) => Ok(doc),
        }
    }

    /// The number of matching documents.
    pub async fn count(&self, filter: &serde_json::Value) -> Result<u64> {
        let mut key = Writer::default();
        key.byte(b'C');
        json_key(&mut key, Some(filter));
        let f = filter.clone();
        let load =
            move |c: Collection| async move { Ok(Payload::Count(c.count(&f).await?)) }.boxed();
        let view = |p: &Payload| match p {
            Payload::Count(n) => Some(*n),
            _ => None,
        };
        match self.read("docs.count", key, load, view).await? {
            None => self.collection.count(filter).await,
            Some(n) => Ok(n),
        }
    }
}

impl VectorCollection {
    /// A handle whose searches are cached by `policy` (see
    /// [`crate::cache`]). Writes to the collection through any handle of
    /// the database drop its entries.
    pub fn cached(&self, policy: CachePolicy) -> CachedVectors {
        CachedVectors {
            checked: Checked::new(self.ctx(), &policy),
            collection: self.clone(),
        }
    }
}

/// Vector searches through the cache: from [`VectorCollection::cached`].
#[derive(Debug, Clone)]
pub struct CachedVectors {
    collection: VectorCollection,
    checked: Checked,
}

impl CachedVectors {
    /// The points nearest to the query, best first.
    pub async fn search(&self, search: &Search) -> Result<Vec<ScoredPoint>> {
        let ctx = self.collection.ctx();
        let Some((cache, policy)) = cache_and_policy(ctx, &self.checked, "vector.search")? else {
            return self.collection.search(search).await;
        };
        let name = self.collection.name();
        let mut key = Writer::with_capacity(32 + search.vector.len() * 4 + STAMP_ROOM);
        key.byte(b'V');
        key.str(name);
        key.f32s(&search.vector);
        key.varint(search.limit as u64);
        match search.score_threshold {
            None => key.byte(0),
            Some(t) => {
                key.byte(1);
                key.buf.extend_from_slice(&t.to_bits().to_le_bytes());
            }
        }
        key.byte(
            u8::from(search.include.payload)
                | (u8::from(search.include.vectors) << 1)
                | (u8::from(search.exact) << 2),
        );
        key.varint(search.hnsw_ef.map_or(0, |ef| ef as u64));
        if let Some(filter) = &search.filter {
            key.str(&format!("{filter:?}"));
        }
        let tags = [Tag::new(TagKind::Vectors, name)];
        let read = Read {
            op: "vector.search",
            key: key.buf,
            sql: false,
            tags: &tags,
            policy,
        };
        let load = || {
            let (c, s) = (self.collection.clone(), search.clone());
            async move { Ok(Payload::Points(c.search(&s).await?.into())) }.boxed()
        };
        let view = |p: &Payload| match p {
            Payload::Points(p) => Some(p.to_vec()),
            _ => None,
        };
        cache.read(read, load, view).await
    }
}
