//! The vector capability: the [`VectorStore`] trait drivers implement and the
//! [`Vectors`] / [`VectorCollection`] handles applications use.
//!
//! The model is Qdrant's: a **collection** holds **points**, each with an id
//! (an unsigned integer or a UUID), one dense `f32` vector of the
//! collection's dimension and a JSON-object **payload**. A search returns the
//! `limit` points nearest to a query vector, optionally restricted by a
//! payload [`Filter`].
//!
//! # The contract (every backend, tested by the conformance suite)
//!
//! - **Scores.** [`Distance::Cosine`] and [`Distance::Dot`] score by
//!   similarity, higher first; [`Distance::Euclid`] and
//!   [`Distance::Manhattan`] score by distance, smaller first. Cosine
//!   collections store their vectors normalised to unit length (as Qdrant
//!   does), so vectors read back from them are the normalised ones; the
//!   cosine score is then the dot product of unit vectors. Euclid scores are
//!   the Euclidean distance itself, not its square.
//! - **Ordering.** Best score first; equal scores in ascending id order
//!   (integers before UUIDs, integers by value, UUIDs by their bytes). Which
//!   of several points tied at the last place of a result makes it in is
//!   the backend's choice (Qdrant does not break ties on the server).
//! - **Score threshold.** Keeps scores `>=` the threshold for cosine and dot,
//!   distances `<=` the threshold for euclid and manhattan.
//! - **Upsert** overwrites a point with the same id: vector and payload
//!   both. A batch is checked whole before anything is sent: empty vectors,
//!   NaN or infinite components, vectors of different lengths and payloads
//!   that are not JSON objects are [`InvalidInput`](ErrorKind::InvalidInput)
//!   and nothing is written. A vector whose length is not the collection's
//!   dimension is `InvalidInput` too, and nothing of that call is written.
//!   [`VectorCollection::upsert`] sends large slices in batches of
//!   [`UPSERT_BATCH`] points; each batch is all or nothing.
//! - **Filters** ([`Filter`]) are Qdrant's: `must` (all), `should` (at least
//!   one, when there are any) and `must_not` (none) lists of conditions;
//!   conditions match a payload field (a dotted path through objects) by
//!   equality with a keyword, an integer or a boolean, by membership in a
//!   list ([`Condition::any`]), by a numeric range, or match point ids, or
//!   nest a filter. A field holding an array matches when any element does.
//!   A missing field matches no condition. [`Filter::matches`] is the
//!   reference implementation of these rules.
//! - **Missing collections** are [`NotFound`](ErrorKind::NotFound); creating
//!   an existing one is [`Conflict`](ErrorKind::Conflict). Collection names
//!   are 1 to [`MAX_COLLECTION_NAME_LEN`] ASCII letters, digits, `_` and `-`,
//!   starting with a letter or `_`.
//! - **Get** returns the found points in the order their ids were asked for,
//!   each once; ids that do not exist are left out.

mod check;
mod distance;
mod filter;
mod filter_json;
mod point;
mod search;

pub use check::*;
pub use distance::*;
pub use filter::*;
pub(crate) use filter_json::*;
pub use point::*;
pub use search::*;

use crate::policy::engine::{Attrs, Changed, Ctx, Op};
use crate::util::{json_type, short};
use crate::{Error, ErrorKind, Result};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Largest vector dimension accepted (Qdrant's limit).
pub const MAX_DIMENSION: usize = 65_536;
/// Longest collection name, in bytes.
pub const MAX_COLLECTION_NAME_LEN: usize = 255;
/// Points sent per request by [`VectorCollection::upsert`].
pub const UPSERT_BATCH: usize = 256;
/// Deepest nesting of filters accepted.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Largest `limit` of a search.
pub const MAX_LIMIT: usize = 100_000;

// --- the driver trait ---------------------------------------------------------------

/// The vector capability as a driver implements it (no policy, no metrics).
///
/// The [`VectorCollection`] handle checks names, vectors (non-empty,
/// finite, of one length within a call), payloads and filters before
/// calling a driver, removes duplicate ids from `get`, and orders ties; a
/// driver checks the dimension against the collection, returns
/// [`collection_not_found`] for a missing collection and [`Conflict`](ErrorKind::Conflict)
/// for an existing one, and returns search results best first. An upsert
/// call is all or nothing.
#[async_trait]
pub trait VectorStore: Send + Sync + fmt::Debug + 'static {
    /// Create a collection.
    async fn create_collection(
        &self,
        name: &str,
        dimension: usize,
        distance: Distance,
    ) -> Result<()>;
    /// Drop a collection; whether it existed.
    async fn drop_collection(&self, name: &str) -> Result<bool>;
    /// The names of all collections, sorted.
    async fn list_collections(&self) -> Result<Vec<String>>;
    /// A collection's settings, or `None` if it does not exist.
    async fn collection_info(&self, name: &str) -> Result<Option<CollectionInfo>>;
    /// Insert or replace points (all of one length).
    async fn upsert(&self, collection: &str, points: &[Point]) -> Result<()>;
    /// The points with these (distinct) ids, in any order.
    async fn get(&self, collection: &str, ids: &[PointId], include: Include)
    -> Result<Vec<Record>>;
    /// Delete the points with these ids (missing ones are ignored).
    async fn delete_ids(&self, collection: &str, ids: &[PointId]) -> Result<()>;
    /// Delete the points passing a (non-empty) filter.
    async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<()>;
    /// The number of points, or of the points passing a filter; exact.
    async fn count(&self, collection: &str, filter: Option<&Filter>) -> Result<u64>;
    /// The nearest points, best first.
    async fn search(&self, collection: &str, search: &Search) -> Result<Vec<ScoredPoint>>;
}

// --- handles ------------------------------------------------------------------------

/// The vector handle of a database: `db.vectors()?`.
///
/// Cheap to clone. Pick a collection with [`collection`](Vectors::collection).
///
/// ```no_run
/// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
/// use dbx_core::serde_json::json;
/// use dbx_core::vector::{Distance, Point, Search};
/// let docs = db.vectors()?.collection("docs");
/// docs.create_if_missing(3, Distance::Cosine).await?;
/// docs.upsert(&[
///     Point::new(1u64, vec![0.1, 0.9, 0.0]).with_payload(json!({"title": "cats"}))?,
///     Point::new(2u64, vec![0.8, 0.1, 0.1]).with_payload(json!({"title": "cars"}))?,
/// ]).await?;
/// for hit in docs.search(&Search::new(vec![0.2, 0.8, 0.0], 1)).await? {
///     println!("{} {:.3} {:?}", hit.id, hit.score, hit.payload);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Vectors {
    store: Arc<dyn VectorStore>,
    ctx: Arc<Ctx>,
}

impl fmt::Debug for Vectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vectors")
            .field("backend", &self.ctx.backend())
            .finish_non_exhaustive()
    }
}

impl Vectors {
    pub(crate) fn new(store: Arc<dyn VectorStore>, ctx: Arc<Ctx>) -> Self {
        Vectors { store, ctx }
    }

    /// A handle on one collection. The name is checked by each operation.
    pub fn collection(&self, name: &str) -> VectorCollection {
        VectorCollection {
            vectors: self.clone(),
            name: Arc::from(name),
        }
    }

    /// The names of all collections, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        self.ctx
            .run(Op::idempotent("vector.list_collections"), || {
                self.store.list_collections()
            })
            .await
    }
}

/// One collection of a [`Vectors`] handle.
#[derive(Clone)]
pub struct VectorCollection {
    vectors: Vectors,
    name: Arc<str>,
}

impl fmt::Debug for VectorCollection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorCollection")
            .field("backend", &self.vectors.ctx.backend())
            .field("name", &self.name)
            .finish()
    }
}

pub(crate) fn dims(n: usize) -> Attrs<'static> {
    Attrs {
        dimensions: Some(n as u64),
        ..Attrs::default()
    }
}

impl VectorCollection {
    /// The collection name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn ctx(&self) -> &Ctx {
        &self.vectors.ctx
    }

    fn store(&self) -> &dyn VectorStore {
        &*self.vectors.store
    }

    /// Check the collection name and `checked` (the operation's other
    /// input) before the policy sees the operation.
    fn check<T>(&self, op: Op, checked: Result<T>) -> Result<T> {
        self.ctx()
            .check(op, check_collection_name(&self.name).and(checked))
    }

    /// Create the collection; [`Conflict`](ErrorKind::Conflict) if it exists.
    pub async fn create(&self, dimension: usize, distance: Distance) -> Result<()> {
        let op = Op::once("vector.create_collection");
        self.check(op, check_dimension(dimension))?;
        self.ctx()
            .run_attrs(op, dims(dimension), || {
                self.store()
                    .create_collection(&self.name, dimension, distance)
            })
            .await
    }

    /// Create the collection unless it exists; whether it was created. An
    /// existing collection with another dimension or distance is
    /// [`InvalidInput`](ErrorKind::InvalidInput).
    pub async fn create_if_missing(&self, dimension: usize, distance: Distance) -> Result<bool> {
        match self.create(dimension, distance).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::Conflict => match self.info().await? {
                Some(info) if info.dimension == dimension && info.distance == distance => Ok(false),
                Some(info) => Err(invalid(format!(
                    "collection `{}` exists with dimension {} and distance {}, not {dimension} and {distance}",
                    short(&self.name),
                    info.dimension,
                    info.distance
                ))
                .with_backend(self.ctx().backend())
                .with_operation("vector.create_collection")),
                // Dropped again in between: try once more.
                None => self.create(dimension, distance).await.map(|()| true),
            },
            Err(e) => Err(e),
        }
    }

    /// Drop the collection and its points; whether it existed.
    pub async fn drop(&self) -> Result<bool> {
        let op = Op::idempotent("vector.drop_collection");
        self.check(op, Ok(()))?;
        let r = self
            .ctx()
            .run(op, || self.store().drop_collection(&self.name))
            .await;
        self.ctx().changed(Changed::Vectors(&self.name), &r).await;
        r
    }

    /// The collection's dimension, distance and size, or `None` if it does
    /// not exist.
    pub async fn info(&self) -> Result<Option<CollectionInfo>> {
        let op = Op::idempotent("vector.collection_info");
        self.check(op, Ok(()))?;
        self.ctx()
            .run(op, || self.store().collection_info(&self.name))
            .await
    }

    /// Insert or replace points, in batches of [`UPSERT_BATCH`]. Every point
    /// is checked before anything is sent; each batch is all or nothing.
    pub async fn upsert(&self, points: &[Point]) -> Result<()> {
        let dim = points.first().map_or(0, |p| p.vector.len());
        let attrs = dims(dim);
        let op = Op::idempotent("vector.upsert");
        self.check(op, check_points(points))?;
        for batch in points.chunks(UPSERT_BATCH) {
            let r = self
                .ctx()
                .run_attrs(op, attrs, || self.store().upsert(&self.name, batch))
                .await;
            self.ctx().changed(Changed::Vectors(&self.name), &r).await;
            r?;
        }
        Ok(())
    }

    /// Insert or replace one point.
    pub async fn upsert_one(&self, point: Point) -> Result<()> {
        self.upsert(std::slice::from_ref(&point)).await
    }

    /// The points with these ids, with payloads and vectors, in the order
    /// asked (each once; missing ids are left out).
    pub async fn get(&self, ids: &[PointId]) -> Result<Vec<Record>> {
        self.get_with(ids, Include::new(true, true)).await
    }

    /// [`get`](VectorCollection::get), choosing what to return.
    pub async fn get_with(&self, ids: &[PointId], include: Include) -> Result<Vec<Record>> {
        // Position of each distinct id in the request (hashing keeps this
        // linear for large id lists).
        let mut position = std::collections::HashMap::with_capacity(ids.len());
        let mut distinct = Vec::with_capacity(ids.len());
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(e) = position.entry(*id) {
                e.insert(distinct.len());
                distinct.push(*id);
            }
        }
        let op = Op::idempotent("vector.get");
        self.check(op, Ok(()))?;
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = self
            .ctx()
            .run(op, || self.store().get(&self.name, &distinct, include))
            .await?;
        found.sort_by_key(|r| position.get(&r.id).copied().unwrap_or(usize::MAX));
        Ok(found)
    }

    /// The point with this id, with payload and vector.
    pub async fn get_one(&self, id: impl Into<PointId>) -> Result<Option<Record>> {
        Ok(self.get(&[id.into()]).await?.into_iter().next())
    }

    /// Delete the points with these ids (missing ones are ignored).
    pub async fn delete(&self, ids: &[PointId]) -> Result<()> {
        let op = Op::idempotent("vector.delete");
        self.check(op, Ok(()))?;
        if ids.is_empty() {
            return Ok(());
        }
        let r = self
            .ctx()
            .run(op, || self.store().delete_ids(&self.name, ids))
            .await;
        self.ctx().changed(Changed::Vectors(&self.name), &r).await;
        r
    }

    /// Delete the points passing `filter`. An empty filter is
    /// [`InvalidInput`](ErrorKind::InvalidInput), so that a filter built
    /// from nothing does not delete everything (drop the collection for that).
    pub async fn delete_where(&self, filter: &Filter) -> Result<()> {
        let op = Op::idempotent("vector.delete");
        let checked = filter.check().and_then(|()| {
            if filter.is_empty() {
                Err(invalid(
                    "delete_where with an empty filter would delete every point; drop the collection instead",
                ))
            } else {
                Ok(())
            }
        });
        self.check(op, checked)?;
        let r = self
            .ctx()
            .run(op, || self.store().delete_where(&self.name, filter))
            .await;
        self.ctx().changed(Changed::Vectors(&self.name), &r).await;
        r
    }

    /// The number of points (exact).
    pub async fn count(&self) -> Result<u64> {
        let op = Op::idempotent("vector.count");
        self.check(op, Ok(()))?;
        self.ctx()
            .run(op, || self.store().count(&self.name, None))
            .await
    }

    /// The number of points passing `filter` (exact).
    pub async fn count_where(&self, filter: &Filter) -> Result<u64> {
        let op = Op::idempotent("vector.count");
        self.check(op, filter.check())?;
        let filter = Some(filter).filter(|f| !f.is_empty());
        self.ctx()
            .run(op, || self.store().count(&self.name, filter))
            .await
    }

    /// The points nearest to the query, best first, ties by ascending id.
    pub async fn search(&self, search: &Search) -> Result<Vec<ScoredPoint>> {
        let attrs = Attrs {
            top_k: Some(search.limit as u64),
            dimensions: Some(search.vector.len() as u64),
            ..Attrs::default()
        };
        let op = Op::idempotent("vector.search");
        self.check(op, search.check())?;
        let mut hits = self
            .ctx()
            .run_attrs(op, attrs, || self.store().search(&self.name, search))
            .await?;
        order_ties(&mut hits);
        Ok(hits)
    }
}

pub(crate) fn check_dimension(dimension: usize) -> Result<()> {
    if dimension == 0 || dimension > MAX_DIMENSION {
        return Err(invalid(format!(
            "a collection's dimension must be between 1 and {MAX_DIMENSION}, not {dimension}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
