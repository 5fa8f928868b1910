//! The document capability: the [`DocStore`] trait drivers implement and
//! the [`Docs`] / [`Collection`] handles applications use.
//!
//! # The contract
//!
//! - **Documents** are JSON objects ([`serde_json::Value`]), with MongoDB
//!   Extended JSON v2 for the types JSON lacks: `{"$oid": "..."}`,
//!   `{"$date": "2024-01-01T00:00:00Z"}`, `{"$numberLong": "1"}`,
//!   `{"$numberDecimal": "1.5"}`, `{"$binary": {...}}`, `{"$uuid": "..."}`...
//!   Documents come back in relaxed Extended JSON. Field names are non-empty,
//!   contain no NUL, do not start with `$` and contain no `.` (such fields
//!   cannot be addressed by queries); nesting is at most [`MAX_DEPTH`] deep;
//!   the encoded document is at most [`MAX_DOCUMENT_LEN`] bytes (checked by
//!   the driver before sending). A document without `_id` gets one (an
//!   ObjectId) and the insert returns it.
//! - **Filters** are MongoDB query documents (`{"age": {"$gte": 18}}`);
//!   **updates** are update-operator documents (`{"$set": {...}, "$inc":
//!   {...}}`) or aggregation pipelines (an array of `$set`/`$unset`/...
//!   stages); **projections** and **sorts** are MongoDB documents too.
//!   Everything that can be checked without the server is checked before
//!   sending: unknown `$` operators, operators mixed with field names,
//!   `$and`/`$or`/`$nor` that are not arrays of documents, `$in` without an
//!   array, bad sort directions, malformed Extended JSON. Failures are
//!   [`InvalidInput`](crate::ErrorKind::InvalidInput) errors naming the
//!   problem; nothing is sent, so nothing is half-written.
//! - **Collection names** are non-empty, at most [`MAX_COLLECTION_LEN`]
//!   bytes, without NUL or `$`, and do not start with `system.`.
//! - **Duplicate keys** (unique indexes, `_id`) are
//!   [`Conflict`](crate::ErrorKind::Conflict).
//! - **find** streams: documents are fetched in batches as the stream is
//!   consumed; each batch is bounded by the operation timeout.

mod handles;
mod validate;

pub use handles::{Collection, DocTransaction, Docs};
pub use validate::*;

use crate::policy::engine::{Changed, Ctx, Op};
use crate::util::{json_type, short};
use crate::{Error, ErrorKind, Result};
use async_trait::async_trait;
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Largest encoded document, in bytes (MongoDB's 16 MiB).
pub const MAX_DOCUMENT_LEN: usize = 16 * 1024 * 1024;
/// Deepest nesting of documents and arrays.
pub const MAX_DEPTH: usize = 100;
/// Longest collection name, in bytes.
pub const MAX_COLLECTION_LEN: usize = 200;

/// A stream of documents from [`Collection::find`].
pub type DocStream = Pin<Box<dyn Stream<Item = Result<Value>> + Send + 'static>>;
/// A stream of typed documents from [`Collection::find_as`].
pub type TypedDocStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send + 'static>>;

/// How [`find`](Collection::find) selects and orders documents.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct FindOptions {
    /// Fields to include or exclude (`{"name": 1, "_id": 0}`).
    pub projection: Option<Value>,
    /// Sort order (`{"age": -1, "name": 1}`).
    pub sort: Option<Value>,
    /// Most documents to return.
    pub limit: Option<u64>,
    /// Documents to skip first.
    pub skip: Option<u64>,
    /// Documents per round trip (the driver's default if unset).
    pub batch_size: Option<u32>,
}

impl FindOptions {
    /// No projection, sort, limit or skip.
    pub fn new() -> Self {
        FindOptions::default()
    }
    /// Set the projection.
    pub fn projection(mut self, projection: Value) -> Self {
        self.projection = Some(projection);
        self
    }
    /// Set the sort order.
    pub fn sort(mut self, sort: Value) -> Self {
        self.sort = Some(sort);
        self
    }
    /// Set the limit.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Set the number of documents to skip.
    pub fn skip(mut self, skip: u64) -> Self {
        self.skip = Some(skip);
        self
    }
    /// Set the batch size.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }
}

/// What an update or replace did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct UpdateResult {
    /// Documents the filter matched.
    pub matched: u64,
    /// Documents changed.
    pub modified: u64,
    /// The `_id` of the document an upsert inserted.
    pub upserted_id: Option<Value>,
}

impl UpdateResult {
    /// A result.
    pub fn new(matched: u64, modified: u64, upserted_id: Option<Value>) -> Self {
        UpdateResult {
            matched,
            modified,
            upserted_id,
        }
    }
}

/// An index to create: its keys and options.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IndexSpec {
    /// Keys in order, with directions or kinds (`{"email": 1}`, `{"loc": "2dsphere"}`).
    pub keys: Value,
    /// Index name (the server derives one from the keys if unset).
    pub name: Option<String>,
    /// Reject documents that repeat the key.
    pub unique: bool,
    /// Remove documents this long after the date in the (single) key field.
    pub expire_after: Option<Duration>,
}

impl IndexSpec {
    /// An index on `keys`.
    pub fn new(keys: Value) -> Self {
        IndexSpec {
            keys,
            name: None,
            unique: false,
            expire_after: None,
        }
    }
    /// Name the index.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Make it unique.
    pub fn unique(mut self, unique: bool) -> Self {
        self.unique = unique;
        self
    }
    /// Make it a TTL index.
    pub fn expire_after(mut self, after: Duration) -> Self {
        self.expire_after = Some(after);
        self
    }
}

/// Document storage, as a driver implements it.
///
/// Applications use [`Docs`] and [`Collection`], which validate collection
/// names, documents, filters, updates, projections, sorts and index keys
/// against the [contract](self) before calling these methods.
#[async_trait]
pub trait DocStore: Send + Sync + fmt::Debug + 'static {
    /// Insert one document; returns its `_id`.
    async fn insert_one(&self, collection: &str, doc: &Value) -> Result<Value>;
    /// Insert documents in order, stopping at the first failure; returns their `_id`s.
    async fn insert_many(&self, collection: &str, docs: &[Value]) -> Result<Vec<Value>>;
    /// Open a cursor over the matching documents.
    async fn find(
        &self,
        collection: &str,
        filter: &Value,
        options: &FindOptions,
    ) -> Result<DocStream>;
    /// The first matching document.
    async fn find_one(
        &self,
        collection: &str,
        filter: &Value,
        options: &FindOptions,
    ) -> Result<Option<Value>>;
    /// Apply an update to the first (or every, with `many`) matching document.
    async fn update(
        &self,
        collection: &str,
        filter: &Value,
        update: &Value,
        many: bool,
        upsert: bool,
    ) -> Result<UpdateResult>;
    /// Replace the first matching document.
    async fn replace_one(
        &self,
        collection: &str,
        filter: &Value,
        replacement: &Value,
        upsert: bool,
    ) -> Result<UpdateResult>;
    /// Delete the first (or every, with `many`) matching document; returns the count.
    async fn delete(&self, collection: &str, filter: &Value, many: bool) -> Result<u64>;
    /// Count matching documents.
    async fn count(&self, collection: &str, filter: &Value) -> Result<u64>;
    /// Create an index; returns its name.
    async fn create_index(&self, collection: &str, index: &IndexSpec) -> Result<String>;
    /// Drop an index by name.
    async fn drop_index(&self, collection: &str, name: &str) -> Result<()>;
    /// Names of the collection's indexes.
    async fn list_indexes(&self, collection: &str) -> Result<Vec<String>>;
    /// Drop the collection with its documents and indexes (no error if missing).
    async fn drop_collection(&self, collection: &str) -> Result<()>;
    /// Start a multi-document transaction. The default is
    /// [`Unsupported`](ErrorKind::Unsupported).
    async fn begin(&self) -> Result<Box<dyn DocTx>> {
        Err(Error::unsupported(
            "this backend does not support document transactions",
        ))
    }
}

/// A multi-document transaction, as a driver implements it.
#[async_trait]
pub trait DocTx: Send + fmt::Debug {
    /// Insert one document; returns its `_id`.
    async fn insert_one(&mut self, collection: &str, doc: &Value) -> Result<Value>;
    /// The first matching document.
    async fn find_one(&mut self, collection: &str, filter: &Value) -> Result<Option<Value>>;
    /// Apply an update.
    async fn update(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
        many: bool,
        upsert: bool,
    ) -> Result<UpdateResult>;
    /// Delete matching documents.
    async fn delete(&mut self, collection: &str, filter: &Value, many: bool) -> Result<u64>;
    /// Count matching documents.
    async fn count(&mut self, collection: &str, filter: &Value) -> Result<u64>;
    /// Commit.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Abort.
    async fn rollback(self: Box<Self>) -> Result<()>;
}

#[cfg(test)]
mod tests;
