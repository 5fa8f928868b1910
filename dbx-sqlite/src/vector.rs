//! `VectorStore` on SQLite tables, with exact (brute-force) search.
//!
//! # Storage
//!
//! A catalog table, `dbx_vector_collections (name TEXT PRIMARY KEY,
//! dimension INTEGER, distance TEXT)`, created on first use, and one table per
//! collection, `"dbx_vec_<name>"` (see [`table_name`]), created and dropped
//! together with its catalog row in one transaction:
//!
//! ```sql
//! CREATE TABLE "dbx_vec_docs" (
//!     id BLOB PRIMARY KEY NOT NULL,  -- encoded so memcmp order is PointId order
//!     vector BLOB NOT NULL,          -- little-endian f32, 4 bytes per component
//!     payload TEXT NOT NULL          -- a JSON object
//! )
//! ```
//!
//! It is an ordinary rowid table: a WITHOUT ROWID table keeps whole rows in
//! index pages, whose local payload limit (about 1000 bytes on 4 KiB pages)
//! would push every vector of more than ~250 dimensions to overflow pages.
//! Cosine collections store their vectors normalised
//! ([`Distance::prepare`]), as Qdrant does.
//!
//! # Search
//!
//! One pass over the table (`SELECT rowid, id, vector`, plus `payload` only
//! when there is a filter), reading each vector blob in place and decoding it
//! into one reused buffer, scoring it with [`Distance::score`] and keeping a
//! bounded heap of the best `limit` (ties by ascending id). A point that
//! cannot enter the heap is dropped before its id is decoded or its payload
//! parsed, so with a filter only the payloads of would-be winners are parsed.
//! Payload and vector of the winners are read afterwards by rowid, in the
//! same read transaction. A long scan is stopped at the operation deadline by
//! the pool's progress handler, like any statement.

use crate::error::map_err;
use crate::pool::Pool;
use crate::stmt::write_transaction;
use dbx_core::vector::{
    CollectionInfo, Distance, Filter, Include, Point, PointId, Record, ScoredPoint, Search,
    VectorStore, check_collection_name, collection_not_found, dimension_mismatch,
};
use dbx_core::{Error, ErrorKind, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const CREATE_CATALOG: &str = "CREATE TABLE IF NOT EXISTS dbx_vector_collections (
    name TEXT PRIMARY KEY NOT NULL,
    dimension INTEGER NOT NULL,
    distance TEXT NOT NULL
)";

#[derive(Debug)]
pub(crate) struct SqliteVectors {
    pool: Arc<Pool>,
    /// Whether the catalog is known to exist.
    ready: AtomicBool,
}

/// The quoted name of a collection's table: `"dbx_vec_<name>"`. SQLite
/// compares table names without regard to ASCII case while collection
/// names are case-sensitive, so an upper-case letter is written as `^`
/// and its lower-case form (`Docs` is `"dbx_vec_^docs"`); `^` cannot occur
/// in a collection name, so the mapping is one to one. The name must have
/// passed [`check_collection_name`] (no `"`).
pub(crate) fn table_name(collection: &str) -> String {
    let mut t = String::with_capacity(collection.len() + 12);
    t.push_str("\"dbx_vec_");
    for c in collection.chars() {
        if c.is_ascii_uppercase() {
            t.push('^');
            t.push(c.to_ascii_lowercase());
        } else {
            t.push(c);
        }
    }
    t.push('"');
    t
}

/// A point id as stored: tag 0 and the big-endian integer, or tag 1 and the
/// UUID's bytes, so that SQLite's memcmp order of BLOBs is [`PointId`]'s order.
#[derive(Clone, Copy)]
struct IdKey {
    bytes: [u8; 17],
    len: usize,
}

impl IdKey {
    fn new(id: PointId) -> IdKey {
        let mut bytes = [0u8; 17];
        let len = match id {
            PointId::Num(n) => {
                bytes[1..9].copy_from_slice(&n.to_be_bytes());
                9
            }
            PointId::Uuid(u) => {
                bytes[0] = 1;
                bytes[1..17].copy_from_slice(u.as_bytes());
                17
            }
        };
        IdKey { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn decode_id(bytes: &[u8]) -> Result<PointId> {
    match bytes {
        [0, rest @ ..] => <[u8; 8]>::try_from(rest)
            .ok()
            .map(|b| PointId::Num(u64::from_be_bytes(b))),
        [1, rest @ ..] => <[u8; 16]>::try_from(rest)
            .ok()
            .map(|b| PointId::Uuid(dbx_core::uuid::Uuid::from_bytes(b))),
        _ => None,
    }
    .ok_or_else(|| {
        Error::decode(format!(
            "a stored point id is malformed ({} bytes)",
            bytes.len()
        ))
    })
}

/// Append `v` as little-endian `f32`s.
fn encode_vector(v: &[f32], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Decode a stored vector into `out`, whose length is the dimension.
fn decode_into(bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let (chunks, rest) = bytes.as_chunks::<4>();
    if !rest.is_empty() || chunks.len() != out.len() {
        return Err(Error::decode(format!(
            "a stored vector has {} bytes, expected {} ({} components of 4 bytes)",
            bytes.len(),
            out.len() * 4,
            out.len()
        )));
    }
    for (x, c) in out.iter_mut().zip(chunks) {
        *x = f32::from_le_bytes(*c);
    }
    Ok(())
}

fn blob<'a>(v: ValueRef<'a>, what: &str) -> Result<&'a [u8]> {
    match v {
        ValueRef::Blob(b) => Ok(b),
        other => Err(Error::decode(format!(
            "a stored {what} is {:?}, not a BLOB",
            other.data_type()
        ))),
    }
}

fn parse_payload(v: ValueRef<'_>) -> Result<Map<String, Value>> {
    let text = match v {
        ValueRef::Text(t) => t,
        other => {
            return Err(Error::decode(format!(
                "a stored payload is {:?}, not TEXT",
                other.data_type()
            )));
        }
    };
    serde_json::from_slice(text).map_err(|e| {
        Error::decode(format!("a stored payload is not a JSON object: {e}")).with_source(e)
    })
}

/// A collection's settings from the catalog.
#[derive(Debug, Clone, Copy)]
struct Meta {
    dimension: usize,
    distance: Distance,
}

fn meta(c: &Connection, name: &str) -> Result<Option<Meta>> {
    let row: Option<(i64, String)> = c
        .prepare_cached("SELECT dimension, distance FROM dbx_vector_collections WHERE name = ?1")
        .and_then(|mut st| {
            st.query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    let Some((dimension, distance)) = row else {
        return Ok(None);
    };
    let distance = distance.parse::<Distance>().map_err(|e| {
        Error::decode(format!(
            "the catalog names an unknown distance for collection `{name}`: {}",
            e.message()
        ))
    })?;
    let dimension = usize::try_from(dimension)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| {
            Error::decode(format!(
                "the catalog has dimension {dimension} for collection `{name}`"
            ))
        })?;
    Ok(Some(Meta {
        dimension,
        distance,
    }))
}

fn require(c: &Connection, name: &str) -> Result<Meta> {
    meta(c, name)?.ok_or_else(|| collection_not_found(name))
}

fn count_all(c: &Connection, table: &str) -> Result<u64> {
    let n: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM {table}"))
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    Ok(n.max(0) as u64)
}

/// The rowids and ids of the points passing `filter`, in one scan.
fn matching(c: &Connection, table: &str, filter: &Filter) -> Result<Vec<i64>> {
    let mut st = c
        .prepare_cached(&format!("SELECT rowid, id, payload FROM {table}"))
        .map_err(map_err)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        let id = decode_id(blob(r.get_ref(1).map_err(map_err)?, "point id")?)?;
        let payload = parse_payload(r.get_ref(2).map_err(map_err)?)?;
        if filter.matches(id, &payload) {
            out.push(r.get(0).map_err(map_err)?);
        }
    }
    Ok(out)
}

/// One point that may make the result. Ordered worst first, so the top of
/// a [`BinaryHeap`] is the one to evict.
struct Candidate {
    /// Higher is better whatever the distance; never NaN, never -0.
    key: f32,
    id: PointId,
    score: f32,
    rowid: i64,
    payload: Option<Map<String, Value>>,
}

/// A score as a key where higher is better. NaN (possible only with
/// overflowing components) ranks last; -0 is made +0 so that `total_cmp`
/// agrees with `==` (which the core uses to find ties).
fn rank_key(distance: Distance, score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else if distance.higher_is_better() {
        score + 0.0
    } else {
        -score + 0.0
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Candidate {}

/// The best `limit` candidates seen so far.
struct TopK {
    heap: BinaryHeap<Candidate>,
    limit: usize,
}

impl TopK {
    fn new(limit: usize) -> TopK {
        TopK {
            heap: BinaryHeap::with_capacity(limit.min(4096) + 1),
            limit,
        }
    }

    /// Whether a candidate with this key might enter (it does when it also
    /// wins the tie on id, for a key equal to the worst kept).
    fn may_admit(&self, key: f32) -> bool {
        self.heap.len() < self.limit
            || self
                .heap
                .peek()
                .is_some_and(|w| key.total_cmp(&w.key) != CmpOrdering::Less)
    }

    /// Whether a candidate with this key and id enters.
    fn admits(&self, key: f32, id: PointId) -> bool {
        self.heap.len() < self.limit
            || self
                .heap
                .peek()
                .is_some_and(|w| key.total_cmp(&w.key).then_with(|| w.id.cmp(&id)).is_gt())
    }

    fn push(&mut self, c: Candidate) {
        if self.heap.len() >= self.limit {
            self.heap.pop();
        }
        self.heap.push(c);
    }

    /// Best first, ties by ascending id.
    fn into_best_first(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

fn search_on(c: &Connection, name: &str, search: &Search) -> Result<Vec<ScoredPoint>> {
    // One read transaction: the catalog, the scan and the reads of the
    // winners see the same snapshot.
    let tx = c.unchecked_transaction().map_err(map_err)?;
    let meta = require(&tx, name)?;
    let query = search.vector();
    if query.len() != meta.dimension {
        return Err(dimension_mismatch(name, meta.dimension, query.len()));
    }
    let distance = meta.distance;
    let query = distance.prepare(query);
    let table = table_name(name);
    let filter = search.filter_ref().filter(|f| !f.is_empty());
    let threshold = search.threshold();
    let include = search.include();
    let mut top = TopK::new(search.limit());
    {
        let sql = if filter.is_some() {
            format!("SELECT rowid, id, vector, payload FROM {table}")
        } else {
            format!("SELECT rowid, id, vector FROM {table}")
        };
        let mut st = tx.prepare_cached(&sql).map_err(map_err)?;
        let mut rows = st.raw_query();
        let mut stored = vec![0f32; meta.dimension];
        while let Some(r) = rows.next().map_err(map_err)? {
            decode_into(blob(r.get_ref(2).map_err(map_err)?, "vector")?, &mut stored)?;
            let score = distance.score(&query, &stored);
            if threshold.is_some_and(|t| !distance.within(score, t)) {
                continue;
            }
            let key = rank_key(distance, score);
            if !top.may_admit(key) {
                continue;
            }
            let id = decode_id(blob(r.get_ref(1).map_err(map_err)?, "point id")?)?;
            if !top.admits(key, id) {
                continue;
            }
            let payload = match filter {
                Some(f) => {
                    let p = parse_payload(r.get_ref(3).map_err(map_err)?)?;
                    if !f.matches(id, &p) {
                        continue;
                    }
                    include.payload.then_some(p)
                }
                None => None,
            };
            top.push(Candidate {
                key,
                id,
                score,
                rowid: r.get(0).map_err(map_err)?,
                payload,
            });
        }
    }
    let winners = top.into_best_first();
    let mut out = Vec::with_capacity(winners.len());
    let fetch = include.vectors || (include.payload && filter.is_none());
    let mut st = tx
        .prepare_cached(&format!(
            "SELECT vector, payload FROM {table} WHERE rowid = ?1"
        ))
        .map_err(map_err)?;
    for w in winners {
        let (mut payload, mut vector) = (w.payload, None);
        if fetch {
            let mut rows = st.query(params![w.rowid]).map_err(map_err)?;
            let Some(r) = rows.next().map_err(map_err)? else {
                return Err(Error::new(
                    ErrorKind::Other,
                    "a point vanished within a read transaction",
                ));
            };
            if include.vectors {
                let mut v = vec![0f32; meta.dimension];
                decode_into(blob(r.get_ref(0).map_err(map_err)?, "vector")?, &mut v)?;
                vector = Some(v);
            }
            if include.payload && payload.is_none() {
                payload = Some(parse_payload(r.get_ref(1).map_err(map_err)?)?);
            }
        }
        out.push(ScoredPoint::new(w.id, w.score, payload, vector));
    }
    drop(st);
    tx.commit().map_err(map_err)?;
    Ok(out)
}

fn upsert_on(c: &Connection, name: &str, points: &[Point]) -> Result<()> {
    let tx = write_transaction(c)?;
    let meta = require(&tx, name)?;
    if let Some(p) = points.iter().find(|p| p.vector.len() != meta.dimension) {
        return Err(dimension_mismatch(name, meta.dimension, p.vector.len()));
    }
    let table = table_name(name);
    let mut st = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} (id, vector, payload) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET vector = excluded.vector, payload = excluded.payload"
        ))
        .map_err(map_err)?;
    let mut bytes = Vec::with_capacity(meta.dimension * 4);
    let mut payload = Vec::new();
    for p in points {
        if meta.distance == Distance::Cosine {
            encode_vector(&meta.distance.prepare(&p.vector), &mut bytes);
        } else {
            encode_vector(&p.vector, &mut bytes);
        }
        payload.clear();
        serde_json::to_writer(&mut payload, &p.payload).map_err(|e| {
            Error::invalid_input(format!(
                "the payload of point {} cannot be stored: {e}",
                p.id
            ))
            .with_source(e)
        })?;
        // serde_json writes UTF-8; bound as &str so SQLite stores TEXT.
        let text = std::str::from_utf8(&payload).map_err(|e| {
            Error::invalid_input(format!("the payload of point {} is not UTF-8", p.id))
                .with_source(e)
        })?;
        st.execute(params![IdKey::new(p.id).as_slice(), bytes, text])
            .map_err(map_err)?;
    }
    drop(st);
    tx.commit().map_err(map_err)
}

fn get_on(c: &Connection, name: &str, ids: &[PointId], include: Include) -> Result<Vec<Record>> {
    let tx = c.unchecked_transaction().map_err(map_err)?;
    let meta = require(&tx, name)?;
    let table = table_name(name);
    let mut st = tx
        .prepare_cached(&format!(
            "SELECT vector, payload FROM {table} WHERE id = ?1"
        ))
        .map_err(map_err)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = st
            .query(params![IdKey::new(*id).as_slice()])
            .map_err(map_err)?;
        let Some(r) = rows.next().map_err(map_err)? else {
            continue;
        };
        let vector = if include.vectors {
            let mut v = vec![0f32; meta.dimension];
            decode_into(blob(r.get_ref(0).map_err(map_err)?, "vector")?, &mut v)?;
            Some(v)
        } else {
            None
        };
        let payload = if include.payload {
            Some(parse_payload(r.get_ref(1).map_err(map_err)?)?)
        } else {
            None
        };
        out.push(Record::new(*id, payload, vector));
    }
    drop(st);
    tx.commit().map_err(map_err)?;
    Ok(out)
}

impl SqliteVectors {
    pub(crate) fn new(pool: Arc<Pool>) -> Self {
        SqliteVectors {
            pool,
            ready: AtomicBool::new(false),
        }
    }

    /// Run `f` with the catalog in place, on a pooled connection, for a
    /// collection name checked here too (it becomes part of SQL text).
    async fn run<R, F>(&self, name: Option<&str>, f: F) -> Result<R>
    where
        F: Fn(&Connection) -> Result<R> + Send + Sync + 'static,
        R: Send + 'static,
    {
        if let Some(name) = name {
            check_collection_name(name)?;
        }
        let create = !self.ready.load(Ordering::Acquire);
        let r = self
            .pool
            .run(move |c| {
                if create {
                    c.execute_batch(CREATE_CATALOG).map_err(map_err)?;
                }
                f(c)
            })
            .await;
        if create && r.is_ok() {
            self.ready.store(true, Ordering::Release);
        }
        r
    }
}

#[async_trait::async_trait]
impl VectorStore for SqliteVectors {
    async fn create_collection(
        &self,
        name: &str,
        dimension: usize,
        distance: Distance,
    ) -> Result<()> {
        let (checked, name) = (name, name.to_owned());
        self.run(Some(checked), move |c| {
            let tx = write_transaction(c)?;
            if meta(&tx, &name)?.is_some() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("collection `{name}` already exists"),
                ));
            }
            tx.execute(
                "INSERT INTO dbx_vector_collections (name, dimension, distance) VALUES (?1, ?2, ?3)",
                params![name, dimension as i64, distance.as_str()],
            )
            .map_err(map_err)?;
            let table = table_name(&name);
            tx.execute_batch(&format!(
                "CREATE TABLE {table} (
                    id BLOB PRIMARY KEY NOT NULL,
                    vector BLOB NOT NULL,
                    payload TEXT NOT NULL
                )"
            ))
            .map_err(|e| {
                let e = map_err(e);
                if e.message().contains("already exists") {
                    Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "table {table} exists but the catalog has no collection `{name}`: drop the table or pick another name"
                        ),
                    )
                    .with_source(e)
                } else {
                    e
                }
            })?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn drop_collection(&self, name: &str) -> Result<bool> {
        let (checked, name) = (name, name.to_owned());
        self.run(Some(checked), move |c| {
            let tx = write_transaction(c)?;
            let n = tx
                .execute(
                    "DELETE FROM dbx_vector_collections WHERE name = ?1",
                    params![name],
                )
                .map_err(map_err)?;
            if n > 0 {
                tx.execute_batch(&format!("DROP TABLE IF EXISTS {}", table_name(&name)))
                    .map_err(map_err)?;
            }
            tx.commit().map_err(map_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_collections(&self) -> Result<Vec<String>> {
        self.run(None, |c| {
            let mut st = c
                .prepare_cached("SELECT name FROM dbx_vector_collections ORDER BY name")
                .map_err(map_err)?;
            let names = st
                .query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(map_err)?;
            Ok(names)
        })
        .await
    }

    async fn collection_info(&self, name: &str) -> Result<Option<CollectionInfo>> {
        let (checked, name) = (name, name.to_owned());
        self.run(Some(checked), move |c| {
            let tx = c.unchecked_transaction().map_err(map_err)?;
            let Some(m) = meta(&tx, &name)? else {
                return Ok(None);
            };
            let points = count_all(&tx, &table_name(&name))?;
            tx.commit().map_err(map_err)?;
            Ok(Some(CollectionInfo::new(m.dimension, m.distance, points)))
        })
        .await
    }

    async fn upsert(&self, collection: &str, points: &[Point]) -> Result<()> {
        let name = collection.to_owned();
        let points = points.to_vec();
        self.run(Some(collection), move |c| upsert_on(c, &name, &points))
            .await
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[PointId],
        include: Include,
    ) -> Result<Vec<Record>> {
        let name = collection.to_owned();
        let ids = ids.to_vec();
        self.run(Some(collection), move |c| get_on(c, &name, &ids, include))
            .await
    }

    async fn delete_ids(&self, collection: &str, ids: &[PointId]) -> Result<()> {
        let name = collection.to_owned();
        let ids = ids.to_vec();
        self.run(Some(collection), move |c| {
            let tx = write_transaction(c)?;
            require(&tx, &name)?;
            let mut st = tx
                .prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", table_name(&name)))
                .map_err(map_err)?;
            for id in &ids {
                st.execute(params![IdKey::new(*id).as_slice()])
                    .map_err(map_err)?;
            }
            drop(st);
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<()> {
        let name = collection.to_owned();
        let filter = filter.clone();
        self.run(Some(collection), move |c| {
            let tx = write_transaction(c)?;
            require(&tx, &name)?;
            let table = table_name(&name);
            let doomed = matching(&tx, &table, &filter)?;
            let mut st = tx
                .prepare_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"))
                .map_err(map_err)?;
            for rowid in doomed {
                st.execute(params![rowid]).map_err(map_err)?;
            }
            drop(st);
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn count(&self, collection: &str, filter: Option<&Filter>) -> Result<u64> {
        let name = collection.to_owned();
        let filter = filter.filter(|f| !f.is_empty()).cloned();
        self.run(Some(collection), move |c| {
            let tx = c.unchecked_transaction().map_err(map_err)?;
            require(&tx, &name)?;
            let table = table_name(&name);
            let n = match &filter {
                None => count_all(&tx, &table)?,
                Some(f) => matching(&tx, &table, f)?.len() as u64,
            };
            tx.commit().map_err(map_err)?;
            Ok(n)
        })
        .await
    }

    async fn search(&self, collection: &str, search: &Search) -> Result<Vec<ScoredPoint>> {
        let name = collection.to_owned();
        let search = search.clone();
        self.run(Some(collection), move |c| search_on(c, &name, &search))
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dbx_core::uuid::Uuid;

    #[test]
    fn encoded_ids_sort_as_point_ids() {
        let mut ids = vec![
            PointId::Num(0),
            PointId::Num(1),
            PointId::Num(255),
            PointId::Num(256),
            PointId::Num(u64::MAX),
            PointId::Uuid(Uuid::nil()),
            PointId::Uuid(Uuid::from_u128(1)),
            PointId::Uuid(Uuid::from_u128(u128::MAX)),
        ];
        ids.reverse();
        let mut by_bytes = ids.clone();
        by_bytes.sort_by(|a, b| IdKey::new(*a).as_slice().cmp(IdKey::new(*b).as_slice()));
        ids.sort();
        assert_eq!(by_bytes, ids);
        for id in ids {
            assert_eq!(decode_id(IdKey::new(id).as_slice()).unwrap(), id);
        }
        for bad in [&[][..], &[0, 1, 2], &[2; 9], &[1; 9]] {
            assert_eq!(decode_id(bad).unwrap_err().kind(), ErrorKind::Decode);
        }
    }

    #[test]
    fn vectors_round_trip_in_four_bytes_per_component() {
        let v = [1.5f32, -0.0, f32::MIN_POSITIVE, 3.25e10];
        let mut bytes = Vec::new();
        encode_vector(&v, &mut bytes);
        assert_eq!(bytes.len(), 16);
        let mut back = [0f32; 4];
        decode_into(&bytes, &mut back).unwrap();
        assert_eq!(back.map(f32::to_bits), v.map(f32::to_bits));
        let mut wrong = [0f32; 3];
        assert_eq!(
            decode_into(&bytes, &mut wrong).unwrap_err().kind(),
            ErrorKind::Decode
        );
        assert!(decode_into(&bytes[..15], &mut [0f32; 4]).is_err());
    }

    #[test]
    fn table_names_keep_case_apart() {
        assert_eq!(table_name("docs"), "\"dbx_vec_docs\"");
        assert_eq!(table_name("Docs"), "\"dbx_vec_^docs\"");
        assert_ne!(
            table_name("aB").to_ascii_lowercase(),
            table_name("ab").to_ascii_lowercase()
        );
        assert_eq!(table_name("a-b_C9"), "\"dbx_vec_a-b_^c9\"");
    }

    #[test]
    fn top_k_keeps_the_best_with_ties_by_id() {
        /// The ids a top-`k` keeps of `scored`, best first.
        fn best(k: usize, distance: Distance, scored: &[(u64, f32)]) -> Vec<PointId> {
            let mut top = TopK::new(k);
            for &(id, score) in scored {
                let key = rank_key(distance, score);
                if top.may_admit(key) && top.admits(key, PointId::Num(id)) {
                    top.push(Candidate {
                        key,
                        id: PointId::Num(id),
                        score,
                        rowid: 0,
                        payload: None,
                    });
                }
            }
            top.into_best_first().iter().map(|c| c.id).collect()
        }
        let scored = [
            (5u64, 0.5f32),
            (1, 0.9),
            (9, 0.9),
            (3, 0.9),
            (2, 0.1),
            (0, 0.9),
        ];
        assert_eq!(
            best(3, Distance::Cosine, &scored),
            [0u64, 1, 3].map(PointId::Num)
        );
        let scored = [(1u64, 3.0f32), (2, 1.0), (3, f32::NAN), (4, 2.0), (5, -0.0)];
        assert_eq!(
            best(2, Distance::Euclid, &scored),
            [5u64, 2].map(PointId::Num)
        );
        assert_eq!(rank_key(Distance::Euclid, 0.0).to_bits(), 0f32.to_bits());
    }
}
