//! `VectorStore` on SQLite tables, with exact (brute-force) search.
//!
//! # Storage
//!
//! A catalog table, `dbx_vector_collections (name TEXT PRIMARY KEY,
//! dimension INTEGER, distance TEXT, generation INTEGER)`, created on first
//! use (the `generation` column added to a catalog made before it), and one table per
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
//! From the collection's mirror when it has one ([`mirror`]): its vectors in
//! one contiguous `f32` array in memory, loaded once and used while the
//! `generation` in the catalog (bumped by every write, in the write's
//! transaction) is the one it was loaded at. Otherwise (mirrors off, or the
//! collection over `vector_mirror_max_bytes`) one pass over the table
//! (`SELECT rowid, id, vector`, plus `payload` only when there is a filter),
//! reading each vector blob in place and decoding it into one reused
//! buffer. Either way each vector is scored with [`Distance::score`] and a
//! bounded heap keeps the best `limit` (ties by ascending id). A point that
//! cannot enter the heap is dropped before its id is decoded or its payload
//! parsed, so with a filter only the payloads of would-be winners are read
//! (from the row in a scan, by rowid from a mirror). Payload and vector of
//! the winners are read afterwards by rowid, in the same read transaction.
//! A long scan is stopped at the operation deadline: by the pool's progress
//! handler in SQLite, by a check every 4096 points in a mirror.

#[cfg(feature = "hnsw")]
mod hnsw;
mod mirror;
mod search;
mod storage;

#[cfg(feature = "hnsw")]
pub(crate) use hnsw::Indexes;
pub(crate) use mirror::*;
pub(crate) use search::*;
pub(crate) use storage::*;

use crate::error::map_err;
use crate::pool::{Conn, Pool};
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

/// The approximate index's settings (URL parameters `vector_index=hnsw`,
/// `hnsw_m`, `hnsw_ef_construction`, `hnsw_ef_search`,
/// `vector_index_min_points`).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "hnsw"), allow(dead_code))]
pub(crate) struct IndexConfig {
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    pub(crate) ef_search: usize,
    pub(crate) min_points: usize,
}

/// Without the `hnsw` feature there are no indexes (and no value of this type).
#[cfg(not(feature = "hnsw"))]
#[derive(Debug)]
pub(crate) enum Indexes {}

#[derive(Debug)]
pub(crate) struct SqliteVectors {
    pool: Arc<Pool>,
    /// Whether the catalog is known to exist.
    ready: AtomicBool,
    mirrors: Arc<Mirrors>,
    indexes: Option<Arc<Indexes>>,
}

impl SqliteVectors {
    /// Vectors on `pool`, with mirrors of at most `mirror_max_bytes` in all
    /// and, with the `hnsw` feature, the approximate index `index` asks for.
    pub(crate) fn new(pool: Arc<Pool>, mirror_max_bytes: u64, index: Option<IndexConfig>) -> Self {
        #[cfg(feature = "hnsw")]
        let indexes = index.map(|c| Arc::new(Indexes::new(c)));
        #[cfg(not(feature = "hnsw"))]
        let indexes = {
            let _ = index;
            None
        };
        SqliteVectors {
            pool,
            ready: AtomicBool::new(false),
            mirrors: Arc::new(Mirrors::new(mirror_max_bytes)),
            indexes,
        }
    }

    /// The approximate indexes, if the URL asked for them.
    #[cfg(feature = "hnsw")]
    pub(crate) fn indexes(&self) -> Option<&Arc<Indexes>> {
        self.indexes.as_ref()
    }

    /// Run `f` with the catalog in place, on a pooled connection, for a
    /// collection name checked here too (it becomes part of SQL text).
    async fn run<R, F>(&self, name: Option<&str>, f: F) -> Result<R>
    where
        F: Fn(&Conn) -> Result<R> + Send + Sync + 'static,
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
                    upgrade_catalog(c)?;
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
                &format!(
                    "INSERT INTO dbx_vector_collections (name, dimension, distance, generation) \
                     VALUES (?1, ?2, ?3, {FIRST_GENERATION_SQL})"
                ),
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
        .inspect(|_| {
            self.mirrors.forget(checked);
            #[cfg(feature = "hnsw")]
            if let Some(ix) = &self.indexes {
                ix.forget(checked);
            }
        })
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
            bump_generation(&tx, &name)?;
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
            bump_generation(&tx, &name)?;
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
        let mirrors = self.mirrors.clone();
        let indexes = self.indexes.clone();
        self.run(Some(collection), move |c| {
            search_on(c, &mirrors, indexes.as_ref(), &name, &search)
        })
        .await
    }
}

#[cfg(all(test, feature = "hnsw"))]
mod hnsw_tests;
#[cfg(test)]
mod tests;
