//! The document capability: the [`DocumentStore`] trait drivers implement and
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

use crate::policy::engine::{Ctx, Op};
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
pub trait DocumentStore: Send + Sync + fmt::Debug + 'static {
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
    async fn begin(&self) -> Result<Box<dyn DocumentTransaction>> {
        Err(Error::unsupported(
            "this backend does not support document transactions",
        ))
    }
}

/// A multi-document transaction, as a driver implements it.
#[async_trait]
pub trait DocumentTransaction: Send + fmt::Debug {
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

// --- validation ---------------------------------------------------------------

/// Extended JSON v2 type wrappers: an object whose first key is one of these
/// is a value, not a sub-document.
const EXT_JSON_KEYS: &[&str] = &[
    "$oid",
    "$date",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$uuid",
    "$regularExpression",
    "$timestamp",
    "$symbol",
    "$code",
    "$scope",
    "$minKey",
    "$maxKey",
    "$undefined",
    "$dbPointer",
];

const TOP_LEVEL_OPERATORS: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$expr",
    "$text",
    "$where",
    "$comment",
    "$jsonSchema",
    "$alwaysTrue",
    "$alwaysFalse",
    "$sampleRate",
];

const FIELD_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$not",
    "$exists",
    "$type",
    "$mod",
    "$regex",
    "$options",
    "$all",
    "$elemMatch",
    "$size",
    "$bitsAllSet",
    "$bitsAnySet",
    "$bitsAllClear",
    "$bitsAnyClear",
    "$geoWithin",
    "$geoIntersects",
    "$near",
    "$nearSphere",
    "$maxDistance",
    "$minDistance",
    "$geometry",
    "$box",
    "$center",
    "$centerSphere",
    "$polygon",
];

const UPDATE_OPERATORS: &[&str] = &[
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$currentDate",
    "$setOnInsert",
    "$push",
    "$pull",
    "$pullAll",
    "$addToSet",
    "$pop",
    "$bit",
];

/// Update operators that give the same result when applied twice.
const IDEMPOTENT_UPDATE_OPERATORS: &[&str] = &["$set", "$unset", "$min", "$max", "$setOnInsert"];

const PIPELINE_STAGES: &[&str] = &[
    "$addFields",
    "$set",
    "$project",
    "$unset",
    "$replaceRoot",
    "$replaceWith",
];

fn invalid(message: String) -> Error {
    Error::invalid_input(message)
}

/// Whether `obj` is an Extended JSON type wrapper (`{"$oid": ...}`...).
pub fn is_ext_json(obj: &Map<String, Value>) -> bool {
    obj.keys()
        .next()
        .is_some_and(|k| EXT_JSON_KEYS.contains(&k.as_str()))
}

/// Check a collection name against the contract.
pub fn check_collection(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("collection name is empty".into()));
    }
    if name.len() > MAX_COLLECTION_LEN {
        return Err(invalid(format!(
            "collection name is {} bytes long; the limit is {MAX_COLLECTION_LEN}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(invalid(format!(
            "collection name {:?} contains a NUL character",
            short(name)
        )));
    }
    if name.contains('$') {
        return Err(invalid(format!(
            "collection name {:?} contains `$`",
            short(name)
        )));
    }
    if name.starts_with("system.") {
        return Err(invalid(format!(
            "collection name {:?} starts with `system.`, which is reserved",
            short(name)
        )));
    }
    Ok(())
}

/// Check a document to store (insert or replacement) against the contract.
pub fn check_document(doc: &Value) -> Result<()> {
    let Value::Object(obj) = doc else {
        return Err(invalid(format!(
            "a document must be a JSON object, not {}",
            json_type(doc)
        )));
    };
    if let Some(id) = obj.get("_id")
        && id.is_array()
    {
        return Err(invalid("document `_id` must not be an array".into()));
    }
    check_fields(obj, "", 1)
}

fn check_fields(obj: &Map<String, Value>, path: &str, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "document nests deeper than {MAX_DEPTH} levels"
        )));
    }
    for (k, v) in obj {
        let here = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if k.is_empty() {
            return Err(invalid(format!(
                "document has an empty field name{}",
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" under {:?}", short(path))
                }
            )));
        }
        if k.contains('\0') {
            return Err(invalid(format!(
                "field name {:?} contains a NUL character",
                short(&here)
            )));
        }
        if k.starts_with('$') {
            return Err(invalid(format!(
                "field name {:?} starts with `$`; stored field names must not (write Extended JSON such as {{\"$date\": ...}} only as a value)",
                short(&here)
            )));
        }
        if k.contains('.') {
            return Err(invalid(format!(
                "field name {:?} contains `.`; stored field names must not (nest a document instead)",
                short(k)
            )));
        }
        check_value(v, &here, depth)?;
    }
    Ok(())
}

fn check_value(v: &Value, path: &str, depth: usize) -> Result<()> {
    match v {
        Value::Object(o) if is_ext_json(o) => Ok(()),
        Value::Object(o) => check_fields(o, path, depth + 1),
        Value::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                return Err(invalid(format!(
                    "document nests deeper than {MAX_DEPTH} levels"
                )));
            }
            items
                .iter()
                .try_for_each(|i| check_value(i, path, depth + 1))
        }
        _ => Ok(()),
    }
}

/// Check a query filter against the contract.
pub fn check_filter(filter: &Value) -> Result<()> {
    check_filter_at(filter, 1)
}

fn check_filter_at(filter: &Value, depth: usize) -> Result<()> {
    let Value::Object(obj) = filter else {
        return Err(invalid(format!(
            "a filter must be a JSON object, not {}",
            json_type(filter)
        )));
    };
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "filter nests deeper than {MAX_DEPTH} levels"
        )));
    }
    for (k, v) in obj {
        if let Some(op) = k.strip_prefix('$') {
            if !TOP_LEVEL_OPERATORS.contains(&k.as_str()) {
                return Err(invalid(format!(
                    "unknown top-level filter operator `${}`",
                    short(op)
                )));
            }
            if matches!(k.as_str(), "$and" | "$or" | "$nor") {
                let Value::Array(items) = v else {
                    return Err(invalid(format!("filter `{k}` needs an array of filters")));
                };
                if items.is_empty() {
                    return Err(invalid(format!("filter `{k}` needs a non-empty array")));
                }
                for item in items {
                    check_filter_at(item, depth + 1)
                        .map_err(|e| invalid(format!("in `{k}`: {}", e.message())))?;
                }
            }
            continue;
        }
        if k.is_empty() {
            return Err(invalid("filter has an empty field name".into()));
        }
        check_condition(k, v, depth)?;
    }
    Ok(())
}

fn check_condition(field: &str, v: &Value, depth: usize) -> Result<()> {
    let Value::Object(cond) = v else {
        return Ok(());
    };
    if is_ext_json(cond) {
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "filter nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let ops = cond.keys().filter(|k| k.starts_with('$')).count();
    if ops == 0 {
        return Ok(());
    }
    if ops != cond.len() {
        return Err(invalid(format!(
            "the condition on {:?} mixes `$` operators with field names",
            short(field)
        )));
    }
    for (op, arg) in cond {
        if !FIELD_OPERATORS.contains(&op.as_str()) {
            return Err(invalid(format!(
                "unknown filter operator `{}` on {:?}",
                short(op),
                short(field)
            )));
        }
        match op.as_str() {
            "$in" | "$nin" | "$all" if !arg.is_array() => {
                return Err(invalid(format!(
                    "`{op}` on {:?} needs an array",
                    short(field)
                )));
            }
            "$elemMatch" if !arg.is_object() => {
                return Err(invalid(format!(
                    "`$elemMatch` on {:?} needs a document",
                    short(field)
                )));
            }
            "$exists" if !(arg.is_boolean() || arg.is_number()) => {
                return Err(invalid(format!(
                    "`$exists` on {:?} needs true or false",
                    short(field)
                )));
            }
            "$size" if !arg.is_u64() => {
                return Err(invalid(format!(
                    "`$size` on {:?} needs a non-negative whole number",
                    short(field)
                )));
            }
            "$not" => check_condition(field, arg, depth + 1)?,
            _ => {}
        }
    }
    Ok(())
}

/// Check an update (operators or a pipeline) against the contract.
pub fn check_update(update: &Value) -> Result<()> {
    match update {
        Value::Object(obj) => {
            if obj.is_empty() {
                return Err(invalid(
                    "an update needs at least one operator such as `$set`".into(),
                ));
            }
            for (op, fields) in obj {
                if !op.starts_with('$') {
                    return Err(invalid(format!(
                        "update key {:?} is not an operator; use `$set` to set fields, or replace_one to replace the document",
                        short(op)
                    )));
                }
                if !UPDATE_OPERATORS.contains(&op.as_str()) {
                    return Err(invalid(format!("unknown update operator `{}`", short(op))));
                }
                let Value::Object(fields) = fields else {
                    return Err(invalid(format!(
                        "update operator `{op}` needs a document of fields, not {}",
                        json_type(fields)
                    )));
                };
                for (path, value) in fields {
                    if path.is_empty() || path.starts_with('$') || path.contains('\0') {
                        return Err(invalid(format!(
                            "`{op}` names an invalid field path {:?}",
                            short(path)
                        )));
                    }
                    if op == "$set" || op == "$setOnInsert" {
                        check_value(value, path, 1).map_err(|e| {
                            invalid(format!("in `{op}` of {:?}: {}", short(path), e.message()))
                        })?;
                    }
                }
            }
            Ok(())
        }
        Value::Array(stages) => {
            if stages.is_empty() {
                return Err(invalid(
                    "an update pipeline needs at least one stage".into(),
                ));
            }
            for stage in stages {
                let ok = stage.as_object().is_some_and(|s| {
                    s.len() == 1 && s.keys().all(|k| PIPELINE_STAGES.contains(&k.as_str()))
                });
                if !ok {
                    return Err(invalid(format!(
                        "an update pipeline stage must be one of {} with its argument",
                        PIPELINE_STAGES.join(", ")
                    )));
                }
            }
            Ok(())
        }
        other => Err(invalid(format!(
            "an update must be a JSON object of operators or an array of pipeline stages, not {}",
            json_type(other)
        ))),
    }
}

/// Whether applying `update` twice gives the same result as once.
fn update_is_idempotent(update: &Value) -> bool {
    update.as_object().is_some_and(|o| {
        o.keys()
            .all(|k| IDEMPOTENT_UPDATE_OPERATORS.contains(&k.as_str()))
    })
}

fn check_sort(sort: &Value) -> Result<()> {
    let Value::Object(obj) = sort else {
        return Err(invalid(format!(
            "a sort must be a JSON object such as {{\"field\": 1}}, not {}",
            json_type(sort)
        )));
    };
    for (k, v) in obj {
        let ok = match v {
            Value::Number(n) => n.as_i64().is_some_and(|d| d == 1 || d == -1),
            Value::Object(m) => m.contains_key("$meta"),
            _ => false,
        };
        if !ok || k.is_empty() {
            return Err(invalid(format!(
                "sort direction of {:?} must be 1 or -1",
                short(k)
            )));
        }
    }
    Ok(())
}

fn check_find_options(options: &FindOptions) -> Result<()> {
    if let Some(p) = &options.projection
        && !p.is_object()
    {
        return Err(invalid(format!(
            "a projection must be a JSON object, not {}",
            json_type(p)
        )));
    }
    if let Some(s) = &options.sort {
        check_sort(s)?;
    }
    for (name, n) in [("limit", options.limit), ("skip", options.skip)] {
        if n.is_some_and(|n| n > i64::MAX as u64) {
            return Err(invalid(format!("{name} is above {}", i64::MAX)));
        }
    }
    Ok(())
}

fn check_index(index: &IndexSpec) -> Result<()> {
    let Value::Object(keys) = &index.keys else {
        return Err(invalid("index keys must be a JSON object".into()));
    };
    if keys.is_empty() {
        return Err(invalid("an index needs at least one key".into()));
    }
    for (k, v) in keys {
        let ok = match v {
            Value::Number(n) => n.as_i64().is_some_and(|d| d == 1 || d == -1),
            Value::String(s) => !s.is_empty(),
            _ => false,
        };
        if k.is_empty() || k.starts_with('$') || !ok {
            return Err(invalid(format!(
                "index key {:?} must be a field with 1, -1 or an index kind such as \"text\"",
                short(k)
            )));
        }
    }
    if let Some(name) = &index.name
        && (name.is_empty() || name.contains('\0'))
    {
        return Err(invalid("index name is empty or contains NUL".into()));
    }
    if index.expire_after.is_some() && keys.len() != 1 {
        return Err(invalid(
            "a TTL index (expire_after) must have exactly one key".into(),
        ));
    }
    Ok(())
}

fn to_document<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    let v = serde_json::to_value(value).map_err(|e| {
        Error::invalid_input(format!("document cannot be serialized: {e}")).with_source(e)
    })?;
    if !v.is_object() {
        return Err(invalid(format!(
            "a document must serialize to a JSON object, not {}",
            json_type(&v)
        )));
    }
    Ok(v)
}

fn from_document<T: DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        Error::decode(format!(
            "document does not decode into the requested type: {e}"
        ))
        .with_source(e)
    })
}

// --- handles ------------------------------------------------------------------

/// The document handle of a database: `db.docs()?`.
///
/// Cheap to clone. Pick a collection with [`collection`](Docs::collection).
///
/// ```no_run
/// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
/// use dbx_core::serde_json::json;
/// let users = db.docs()?.collection("users");
/// let id = users.insert_one(&json!({"name": "Ada", "age": 36})).await?;
/// let ada = users.find_one(&json!({"_id": id})).await?;
/// users.update_one(&json!({"name": "Ada"}), &json!({"$inc": {"age": 1}})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Docs {
    store: Arc<dyn DocumentStore>,
    ctx: Arc<Ctx>,
}

impl fmt::Debug for Docs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Docs")
            .field("backend", &self.ctx.backend())
            .finish_non_exhaustive()
    }
}

impl Docs {
    pub(crate) fn new(store: Arc<dyn DocumentStore>, ctx: Arc<Ctx>) -> Self {
        Docs { store, ctx }
    }

    /// A handle on one collection. The name is checked by each operation.
    pub fn collection(&self, name: &str) -> Collection {
        Collection {
            docs: self.clone(),
            name: Arc::from(name),
        }
    }

    /// Start a multi-document transaction, or
    /// [`Unsupported`](ErrorKind::Unsupported) where the server has none.
    /// The statements of a transaction are never retried.
    pub async fn begin(&self) -> Result<DocTransaction> {
        let tx = self
            .ctx
            .run(Op::idempotent("docs.begin"), || self.store.begin())
            .await?;
        Ok(DocTransaction {
            tx: Some(tx),
            ctx: self.ctx.clone(),
        })
    }

    fn fail(&self, e: Error, op: &'static str) -> Error {
        e.with_backend(self.ctx.backend()).with_operation(op)
    }
}

/// One collection of a [`Docs`] handle.
#[derive(Clone)]
pub struct Collection {
    docs: Docs,
    name: Arc<str>,
}

impl fmt::Debug for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collection")
            .field("backend", &self.docs.ctx.backend())
            .field("name", &self.name)
            .finish()
    }
}

impl Collection {
    /// The collection name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn ctx(&self) -> &Ctx {
        &self.docs.ctx
    }

    fn store(&self) -> &dyn DocumentStore {
        &*self.docs.store
    }

    /// Check the collection name and `checked` (the operation's other
    /// input) before the policy sees the operation.
    fn check<T>(&self, op: Op, checked: Result<T>) -> Result<T> {
        self.ctx()
            .check(op, check_collection(&self.name).and(checked))
    }

    /// Insert one document; returns its `_id` (generated if absent).
    pub async fn insert_one(&self, doc: &Value) -> Result<Value> {
        let op = Op::once("docs.insert_one");
        self.check(op, check_document(doc))?;
        self.ctx()
            .run(op, || self.store().insert_one(&self.name, doc))
            .await
    }

    /// Serialize `value` (which must serialize to an object) and insert it.
    pub async fn insert<T: Serialize + ?Sized>(&self, value: &T) -> Result<Value> {
        let doc = to_document(value).map_err(|e| self.docs.fail(e, "docs.insert_one"))?;
        self.insert_one(&doc).await
    }

    /// Insert documents in order; returns their `_id`s. Every document is
    /// checked before any is sent; a server-side failure (a duplicate key)
    /// stops at that document, the ones before it stay inserted (use a
    /// [transaction](Docs::begin) for all or none).
    pub async fn insert_many(&self, docs: &[Value]) -> Result<Vec<Value>> {
        let op = Op::once("docs.insert_many");
        let checked = docs.iter().enumerate().try_for_each(|(i, d)| {
            check_document(d).map_err(|e| invalid(format!("document {i}: {}", e.message())))
        });
        self.check(op, checked)?;
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        self.ctx()
            .run(op, || self.store().insert_many(&self.name, docs))
            .await
    }

    /// Serialize each value and [`insert_many`](Collection::insert_many).
    pub async fn insert_all<T: Serialize>(&self, values: &[T]) -> Result<Vec<Value>> {
        let docs = values
            .iter()
            .map(to_document)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| self.docs.fail(e, "docs.insert_many"))?;
        self.insert_many(&docs).await
    }

    /// Stream the documents matching `filter`, fetched in batches as consumed.
    pub async fn find(&self, filter: &Value, options: FindOptions) -> Result<DocStream> {
        let op = Op::idempotent("docs.find");
        self.check(
            op,
            check_filter(filter).and_then(|()| check_find_options(&options)),
        )?;
        self.ctx()
            .run(op, || self.store().find(&self.name, filter, &options))
            .await
    }

    /// [`find`](Collection::find), decoding each document into `T`.
    pub async fn find_as<T: DeserializeOwned + Send + 'static>(
        &self,
        filter: &Value,
        options: FindOptions,
    ) -> Result<TypedDocStream<T>> {
        use futures_util::StreamExt;
        let backend = self.ctx().backend();
        let stream = self.find(filter, options).await?;
        Ok(Box::pin(stream.map(move |r| {
            r.and_then(from_document)
                .map_err(|e| e.with_backend(backend).with_operation("docs.find"))
        })))
    }

    /// Collect every matching document (mind the size of the result).
    pub async fn find_all(&self, filter: &Value, options: FindOptions) -> Result<Vec<Value>> {
        use futures_util::TryStreamExt;
        self.find(filter, options).await?.try_collect().await
    }

    /// The first document matching `filter`.
    pub async fn find_one(&self, filter: &Value) -> Result<Option<Value>> {
        self.find_one_with(filter, FindOptions::default()).await
    }

    /// The first document matching `filter`, with a projection or sort.
    pub async fn find_one_with(
        &self,
        filter: &Value,
        options: FindOptions,
    ) -> Result<Option<Value>> {
        let op = Op::idempotent("docs.find_one");
        self.check(
            op,
            check_filter(filter).and_then(|()| check_find_options(&options)),
        )?;
        self.ctx()
            .run(op, || self.store().find_one(&self.name, filter, &options))
            .await
    }

    /// [`find_one`](Collection::find_one), decoded into `T`.
    pub async fn find_one_as<T: DeserializeOwned>(&self, filter: &Value) -> Result<Option<T>> {
        match self.find_one(filter).await? {
            None => Ok(None),
            Some(v) => from_document(v)
                .map(Some)
                .map_err(|e| self.docs.fail(e, "docs.find_one")),
        }
    }

    async fn update(
        &self,
        op: &'static str,
        filter: &Value,
        update: &Value,
        many: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let op = if update_is_idempotent(update) {
            Op::idempotent(op)
        } else {
            Op::once(op)
        };
        self.check(op, check_filter(filter).and_then(|()| check_update(update)))?;
        self.ctx()
            .run(op, || {
                self.store()
                    .update(&self.name, filter, update, many, upsert)
            })
            .await
    }

    /// Apply `update` (operators such as `$set`, `$inc`, `$unset`, `$push`,
    /// or a pipeline) to the first matching document.
    pub async fn update_one(&self, filter: &Value, update: &Value) -> Result<UpdateResult> {
        self.update("docs.update_one", filter, update, false, false)
            .await
    }

    /// Apply `update` to every matching document.
    pub async fn update_many(&self, filter: &Value, update: &Value) -> Result<UpdateResult> {
        self.update("docs.update_many", filter, update, true, false)
            .await
    }

    /// Apply `update` to the first matching document, or insert one built
    /// from the filter's equalities and the update.
    pub async fn upsert_one(&self, filter: &Value, update: &Value) -> Result<UpdateResult> {
        self.update("docs.upsert_one", filter, update, false, true)
            .await
    }

    /// Replace the first matching document (keeping its `_id`); with
    /// `upsert`, insert `replacement` if none matches.
    pub async fn replace_one(
        &self,
        filter: &Value,
        replacement: &Value,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let op = Op::idempotent("docs.replace_one");
        self.check(
            op,
            check_filter(filter).and_then(|()| check_document(replacement)),
        )?;
        self.ctx()
            .run(op, || {
                self.store()
                    .replace_one(&self.name, filter, replacement, upsert)
            })
            .await
    }

    /// Serialize `value` and [`replace_one`](Collection::replace_one).
    pub async fn replace<T: Serialize + ?Sized>(
        &self,
        filter: &Value,
        value: &T,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let doc = to_document(value).map_err(|e| self.docs.fail(e, "docs.replace_one"))?;
        self.replace_one(filter, &doc, upsert).await
    }

    /// Delete the first matching document; `1` if one was deleted.
    pub async fn delete_one(&self, filter: &Value) -> Result<u64> {
        let op = Op::once("docs.delete_one");
        self.check(op, check_filter(filter))?;
        self.ctx()
            .run(op, || self.store().delete(&self.name, filter, false))
            .await
    }

    /// Delete every matching document; returns how many.
    pub async fn delete_many(&self, filter: &Value) -> Result<u64> {
        let op = Op::idempotent("docs.delete_many");
        self.check(op, check_filter(filter))?;
        self.ctx()
            .run(op, || self.store().delete(&self.name, filter, true))
            .await
    }

    /// Count the documents matching `filter` (`{}` for all).
    pub async fn count(&self, filter: &Value) -> Result<u64> {
        let op = Op::idempotent("docs.count");
        self.check(op, check_filter(filter))?;
        self.ctx()
            .run(op, || self.store().count(&self.name, filter))
            .await
    }

    /// Create an index (no-op if the same one exists); returns its name.
    pub async fn create_index(&self, index: IndexSpec) -> Result<String> {
        let op = Op::idempotent("docs.create_index");
        self.check(op, check_index(&index))?;
        self.ctx()
            .run(op, || self.store().create_index(&self.name, &index))
            .await
    }

    /// Drop an index by name ([`NotFound`](ErrorKind::NotFound) if missing).
    pub async fn drop_index(&self, name: &str) -> Result<()> {
        let op = Op::once("docs.drop_index");
        let checked = if name.is_empty() || name == "*" {
            Err(invalid(format!("index name {name:?} is not valid")))
        } else {
            Ok(())
        };
        self.check(op, checked)?;
        self.ctx()
            .run(op, || self.store().drop_index(&self.name, name))
            .await
    }

    /// Names of the collection's indexes.
    pub async fn list_indexes(&self) -> Result<Vec<String>> {
        let op = Op::idempotent("docs.list_indexes");
        self.check(op, Ok(()))?;
        self.ctx()
            .run(op, || self.store().list_indexes(&self.name))
            .await
    }

    /// Drop the collection, its documents and indexes (no error if missing).
    pub async fn drop(&self) -> Result<()> {
        let op = Op::idempotent("docs.drop");
        self.check(op, Ok(()))?;
        self.ctx()
            .run(op, || self.store().drop_collection(&self.name))
            .await
    }
}

/// A multi-document transaction from [`Docs::begin`]. Dropped without
/// [`commit`](DocTransaction::commit), it is aborted by the server when its
/// session ends.
pub struct DocTransaction {
    tx: Option<Box<dyn DocumentTransaction>>,
    ctx: Arc<Ctx>,
}

impl fmt::Debug for DocTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocTransaction")
            .field("backend", &self.ctx.backend())
            .field("open", &self.tx.is_some())
            .finish()
    }
}

impl DocTransaction {
    fn tx(&mut self) -> Result<&mut Box<dyn DocumentTransaction>> {
        self.tx
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Closed, "the transaction has ended"))
    }

    /// Insert one document in the transaction.
    pub async fn insert_one(&mut self, collection: &str, doc: &Value) -> Result<Value> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.insert_one", async {
            check_collection(collection)?;
            check_document(doc)?;
            self.tx()?.insert_one(collection, doc).await
        })
        .await
    }

    /// The first matching document, as the transaction sees it.
    pub async fn find_one(&mut self, collection: &str, filter: &Value) -> Result<Option<Value>> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.find_one", async {
            check_collection(collection)?;
            check_filter(filter)?;
            self.tx()?.find_one(collection, filter).await
        })
        .await
    }

    /// Apply an update to the first matching document.
    pub async fn update_one(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
    ) -> Result<UpdateResult> {
        self.update(collection, filter, update, false).await
    }

    /// Apply an update to every matching document.
    pub async fn update_many(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
    ) -> Result<UpdateResult> {
        self.update(collection, filter, update, true).await
    }

    async fn update(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
        many: bool,
    ) -> Result<UpdateResult> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.update", async {
            check_collection(collection)?;
            check_filter(filter)?;
            check_update(update)?;
            self.tx()?
                .update(collection, filter, update, many, false)
                .await
        })
        .await
    }

    /// Delete every matching document.
    pub async fn delete_many(&mut self, collection: &str, filter: &Value) -> Result<u64> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.delete", async {
            check_collection(collection)?;
            check_filter(filter)?;
            self.tx()?.delete(collection, filter, true).await
        })
        .await
    }

    /// Count matching documents, as the transaction sees them.
    pub async fn count(&mut self, collection: &str, filter: &Value) -> Result<u64> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.count", async {
            check_collection(collection)?;
            check_filter(filter)?;
            self.tx()?.count(collection, filter).await
        })
        .await
    }

    /// Commit the transaction.
    pub async fn commit(mut self) -> Result<()> {
        let tx = self.tx.take();
        self.ctx
            .run_once("docs.tx.commit", async move {
                match tx {
                    Some(tx) => tx.commit().await,
                    None => Err(Error::new(ErrorKind::Closed, "the transaction has ended")),
                }
            })
            .await
    }

    /// Abort the transaction.
    pub async fn rollback(mut self) -> Result<()> {
        let tx = self.tx.take();
        self.ctx
            .run_once("docs.tx.rollback", async move {
                match tx {
                    Some(tx) => tx.rollback().await,
                    None => Ok(()),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters() {
        for good in [
            json!({}),
            json!({"a": 1, "b": {"$gte": 2, "$lt": 5}}),
            json!({"$or": [{"a": 1}, {"b": {"$in": [1, 2]}}]}),
            json!({"_id": {"$oid": "65a1b2c3d4e5f6a7b8c9d0e1"}}),
            json!({"d": {"$date": "2024-01-01T00:00:00Z"}}),
            json!({"a": {"b": 1}}),
            json!({"a": {"$not": {"$gt": 1}}}),
        ] {
            check_filter(&good).unwrap();
        }
        for (bad, why) in [
            (json!([]), "JSON object"),
            (json!({"$foo": 1}), "$foo"),
            (json!({"$or": {"a": 1}}), "array"),
            (json!({"$and": []}), "non-empty"),
            (json!({"a": {"$gt": 1, "b": 2}}), "mixes"),
            (json!({"a": {"$bogus": 1}}), "$bogus"),
            (json!({"a": {"$in": 1}}), "array"),
            (json!({"$or": [{"$x": 1}]}), "$x"),
        ] {
            let e = check_filter(&bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.message().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn documents() {
        check_document(&json!({"a": {"b": [1, {"c": {"$date": "2024-01-01T00:00:00Z"}}]}}))
            .unwrap();
        for (bad, why) in [
            (json!(1), "JSON object"),
            (json!({"$a": 1}), "`$`"),
            (json!({"a.b": 1}), "`.`"),
            (json!({"a": {"$b": 1}}), "a.$b"),
            (json!({"a": [{"x.y": 1}]}), "x.y"),
            (json!({"": 1}), "empty"),
            (json!({"_id": [1]}), "array"),
        ] {
            let e = check_document(&bad).unwrap_err();
            assert!(e.message().contains(why), "{bad}: {e}");
        }
        let mut deep = json!(1);
        for _ in 0..150 {
            deep = json!({ "a": deep });
        }
        assert!(
            check_document(&deep)
                .unwrap_err()
                .message()
                .contains("deeper")
        );
    }

    #[test]
    fn updates_and_names() {
        check_update(&json!({"$set": {"a.b": 1}, "$inc": {"n": 1}})).unwrap();
        check_update(&json!([{"$set": {"a": 1}}])).unwrap();
        for bad in [
            json!({}),
            json!({"a": 1}),
            json!({"$nope": {"a": 1}}),
            json!({"$set": 1}),
            json!({"$set": {"$a": 1}}),
            json!({"$set": {"a": {"$b": 1}}}),
            json!([{"$match": {}}]),
            json!("x"),
        ] {
            assert!(check_update(&bad).is_err(), "{bad}");
        }
        assert!(update_is_idempotent(&json!({"$set": {"a": 1}})));
        assert!(!update_is_idempotent(&json!({"$inc": {"a": 1}})));
        assert!(!update_is_idempotent(&json!([{"$set": {"a": 1}}])));
        for bad in ["", "a$b", "system.x", "a\0b"] {
            assert!(check_collection(bad).is_err(), "{bad:?}");
        }
        check_collection("users.archive").unwrap();
        assert!(check_sort(&json!({"a": 2})).is_err());
        check_sort(&json!({"a": -1, "b": 1})).unwrap();
    }
}
