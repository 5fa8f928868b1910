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

use crate::policy::engine::{Attrs, Ctx, Op};
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

// --- distances ------------------------------------------------------------------

/// How a collection compares vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Distance {
    /// Cosine similarity (vectors normalised on write); higher is closer.
    Cosine,
    /// Dot product; higher is closer.
    Dot,
    /// Euclidean distance; smaller is closer.
    Euclid,
    /// Manhattan (L1) distance; smaller is closer.
    Manhattan,
}

impl Distance {
    /// The lower-case name: `cosine`, `dot`, `euclid`, `manhattan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine",
            Distance::Dot => "dot",
            Distance::Euclid => "euclid",
            Distance::Manhattan => "manhattan",
        }
    }

    /// Whether a higher score means closer (cosine, dot).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Distance::Cosine | Distance::Dot)
    }

    /// The score of `stored` against `query`, as a search reports it. For
    /// cosine both must already be [`prepare`](Distance::prepare)d.
    /// Both slices must have the same length.
    pub fn score(self, query: &[f32], stored: &[f32]) -> f32 {
        debug_assert_eq!(query.len(), stored.len());
        match self {
            Distance::Cosine | Distance::Dot => dot(query, stored),
            Distance::Euclid => {
                let mut sum = [0f32; 8];
                let (qa, qr) = query.as_chunks::<8>();
                let (sa, sr) = stored.as_chunks::<8>();
                for (q, s) in qa.iter().zip(sa) {
                    for i in 0..8 {
                        let d = q[i] - s[i];
                        sum[i] += d * d;
                    }
                }
                let mut total: f32 = sum.iter().sum();
                for (q, s) in qr.iter().zip(sr) {
                    total += (q - s) * (q - s);
                }
                total.sqrt()
            }
            Distance::Manhattan => query.iter().zip(stored).map(|(q, s)| (q - s).abs()).sum(),
        }
    }

    /// Whether score `a` ranks before score `b`.
    pub fn better(self, a: f32, b: f32) -> bool {
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }

    /// Whether `score` passes a search's score threshold.
    pub fn within(self, score: f32, threshold: f32) -> bool {
        if self.higher_is_better() {
            score >= threshold
        } else {
            score <= threshold
        }
    }

    /// The vector as the collection stores it: normalised to unit length for
    /// cosine (unless of zero or unit length, as Qdrant does), unchanged
    /// otherwise.
    pub fn prepare(self, vector: &[f32]) -> Vec<f32> {
        let mut v = vector.to_vec();
        if self == Distance::Cosine {
            let length: f32 = dot(&v, &v);
            if !(length < f32::EPSILON || (length - 1.0).abs() <= 1.0e-6) {
                let length = length.sqrt();
                v.iter_mut().for_each(|x| *x /= length);
            }
        }
        v
    }
}

/// Dot product in eight lanes, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sum = [0f32; 8];
    let (aa, ar) = a.as_chunks::<8>();
    let (ba, br) = b.as_chunks::<8>();
    for (x, y) in aa.iter().zip(ba) {
        for i in 0..8 {
            sum[i] += x[i] * y[i];
        }
    }
    let mut total: f32 = sum.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        total += x * y;
    }
    total
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Distance {
    type Err = Error;

    /// `cosine`, `dot`, `euclid` (or `euclidean`), `manhattan`, in any case.
    fn from_str(s: &str) -> Result<Distance> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Distance::Cosine),
            "dot" => Ok(Distance::Dot),
            "euclid" | "euclidean" => Ok(Distance::Euclid),
            "manhattan" => Ok(Distance::Manhattan),
            _ => Err(invalid(format!(
                "unknown distance `{}`: expected cosine, dot, euclid or manhattan",
                short(s)
            ))),
        }
    }
}

// --- points -----------------------------------------------------------------------

/// A point id: an unsigned integer or a UUID.
///
/// Ordered as the contract's tie-break: integers before UUIDs, integers by
/// value, UUIDs by their bytes. Serialises as a JSON number or a UUID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointId {
    /// An unsigned integer id.
    Num(u64),
    /// A UUID id.
    Uuid(uuid::Uuid),
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

impl From<u32> for PointId {
    fn from(n: u32) -> Self {
        PointId::Num(n.into())
    }
}

impl From<uuid::Uuid> for PointId {
    fn from(u: uuid::Uuid) -> Self {
        PointId::Uuid(u)
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => write!(f, "{u}"),
        }
    }
}

impl FromStr for PointId {
    type Err = Error;

    /// A decimal unsigned integer or a UUID.
    fn from_str(s: &str) -> Result<PointId> {
        if let Ok(n) = s.parse::<u64>() {
            return Ok(PointId::Num(n));
        }
        uuid::Uuid::parse_str(s).map(PointId::Uuid).map_err(|_| {
            invalid(format!(
                "`{}` is not a point id: expected an unsigned integer or a UUID",
                short(s)
            ))
        })
    }
}

/// A point to upsert: id, vector and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The id; an upsert replaces the point with the same id.
    pub id: PointId,
    /// The vector, of the collection's dimension.
    pub vector: Vec<f32>,
    /// The payload: a JSON object (empty by default).
    pub payload: Map<String, Value>,
}

impl Point {
    /// A point with an empty payload.
    pub fn new(id: impl Into<PointId>, vector: Vec<f32>) -> Point {
        Point {
            id: id.into(),
            vector,
            payload: Map::new(),
        }
    }

    /// Set the payload from a JSON value, which must be an object.
    pub fn with_payload(mut self, payload: Value) -> Result<Point> {
        self.payload = payload_object(payload)?;
        Ok(self)
    }

    /// Set the payload by serialising `value`, which must serialise to a
    /// JSON object.
    pub fn with_data<T: Serialize + ?Sized>(self, value: &T) -> Result<Point> {
        let v = serde_json::to_value(value)
            .map_err(|e| invalid(format!("payload cannot be serialized: {e}")).with_source(e))?;
        self.with_payload(v)
    }
}

fn payload_object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(invalid(format!(
            "a payload must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

fn decode_payload<T: DeserializeOwned>(payload: Option<&Map<String, Value>>) -> Result<T> {
    let Some(p) = payload else {
        return Err(Error::decode(
            "the payload was not requested (with_payload is off)",
        ));
    };
    T::deserialize(p).map_err(|e| {
        Error::decode(format!(
            "payload does not decode into the requested type: {e}"
        ))
        .with_source(e)
    })
}

/// A point read by id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The id.
    pub id: PointId,
    /// The payload, when requested.
    pub payload: Option<Map<String, Value>>,
    /// The vector as stored (normalised for cosine), when requested.
    pub vector: Option<Vec<f32>>,
}

impl Record {
    /// A record, for drivers.
    pub fn new(
        id: PointId,
        payload: Option<Map<String, Value>>,
        vector: Option<Vec<f32>>,
    ) -> Record {
        Record {
            id,
            payload,
            vector,
        }
    }

    /// Decode the payload into `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T> {
        decode_payload(self.payload.as_ref())
    }
}

/// One result of a search.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScoredPoint {
    /// The id.
    pub id: PointId,
    /// The score: a similarity (cosine, dot) or a distance (euclid, manhattan).
    pub score: f32,
    /// The payload, when requested.
    pub payload: Option<Map<String, Value>>,
    /// The vector as stored (normalised for cosine), when requested.
    pub vector: Option<Vec<f32>>,
}

impl ScoredPoint {
    /// A result, for drivers.
    pub fn new(
        id: PointId,
        score: f32,
        payload: Option<Map<String, Value>>,
        vector: Option<Vec<f32>>,
    ) -> ScoredPoint {
        ScoredPoint {
            id,
            score,
            payload,
            vector,
        }
    }

    /// Decode the payload into `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T> {
        decode_payload(self.payload.as_ref())
    }
}

/// A collection's settings, from [`VectorCollection::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionInfo {
    /// The vector dimension.
    pub dimension: usize,
    /// The distance.
    pub distance: Distance,
    /// The number of points (exact on SQLite, the server's figure on Qdrant).
    pub points: u64,
}

impl CollectionInfo {
    /// Collection settings, for drivers.
    pub fn new(dimension: usize, distance: Distance, points: u64) -> CollectionInfo {
        CollectionInfo {
            dimension,
            distance,
            points,
        }
    }
}

/// What a read returns beside the ids and scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Include {
    /// Return payloads.
    pub payload: bool,
    /// Return vectors.
    pub vectors: bool,
}

impl Include {
    /// Payloads and vectors as asked.
    pub fn new(payload: bool, vectors: bool) -> Include {
        Include { payload, vectors }
    }
}

// --- filters ------------------------------------------------------------------------

/// A value a payload field is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatchValue {
    /// A string, compared exactly.
    Keyword(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl MatchValue {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Keyword(k), Value::String(s)) => k == s,
            (MatchValue::Integer(i), Value::Number(n)) => n.as_i64() == Some(*i),
            (MatchValue::Bool(b), Value::Bool(x)) => b == x,
            _ => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            MatchValue::Keyword(_) => "keyword",
            MatchValue::Integer(_) => "integer",
            MatchValue::Bool(_) => "boolean",
        }
    }

    fn to_json(&self) -> Value {
        match self {
            MatchValue::Keyword(s) => Value::String(s.clone()),
            MatchValue::Integer(i) => Value::from(*i),
            MatchValue::Bool(b) => Value::Bool(*b),
        }
    }
}

impl From<&str> for MatchValue {
    fn from(s: &str) -> Self {
        MatchValue::Keyword(s.to_owned())
    }
}
impl From<String> for MatchValue {
    fn from(s: String) -> Self {
        MatchValue::Keyword(s)
    }
}
impl From<i64> for MatchValue {
    fn from(i: i64) -> Self {
        MatchValue::Integer(i)
    }
}
impl From<i32> for MatchValue {
    fn from(i: i32) -> Self {
        MatchValue::Integer(i.into())
    }
}
impl From<bool> for MatchValue {
    fn from(b: bool) -> Self {
        MatchValue::Bool(b)
    }
}

/// Bounds on a numeric payload field; unset bounds are open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    /// Greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

impl Range {
    /// No bounds yet.
    pub fn new() -> Range {
        Range::default()
    }
    /// Values greater than `v`.
    pub fn gt(mut self, v: f64) -> Range {
        self.gt = Some(v);
        self
    }
    /// Values greater than or equal to `v`.
    pub fn gte(mut self, v: f64) -> Range {
        self.gte = Some(v);
        self
    }
    /// Values less than `v`.
    pub fn lt(mut self, v: f64) -> Range {
        self.lt = Some(v);
        self
    }
    /// Values less than or equal to `v`.
    pub fn lte(mut self, v: f64) -> Range {
        self.lte = Some(v);
        self
    }

    fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

/// One condition of a [`Filter`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// The field equals the value (for an array field: any element does).
    Match {
        /// Dotted path of the payload field.
        key: String,
        /// The value.
        value: MatchValue,
    },
    /// The field equals one of the values (all of one kind).
    MatchAny {
        /// Dotted path of the payload field.
        key: String,
        /// The values.
        values: Vec<MatchValue>,
    },
    /// The field is a number within the range.
    Range {
        /// Dotted path of the payload field.
        key: String,
        /// The bounds.
        range: Range,
    },
    /// The point's id is one of these.
    HasId(Vec<PointId>),
    /// A nested filter.
    Filter(Filter),
}

impl Condition {
    /// `key` equals `value`.
    pub fn eq(key: impl Into<String>, value: impl Into<MatchValue>) -> Condition {
        Condition::Match {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `key` equals any of `values`.
    pub fn any<V: Into<MatchValue>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Condition {
        Condition::MatchAny {
            key: key.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `key` is a number within `range`.
    pub fn range(key: impl Into<String>, range: Range) -> Condition {
        Condition::Range {
            key: key.into(),
            range,
        }
    }

    /// The point id is one of `ids`.
    pub fn has_id<I: Into<PointId>>(ids: impl IntoIterator<Item = I>) -> Condition {
        Condition::HasId(ids.into_iter().map(Into::into).collect())
    }

    /// A nested filter.
    pub fn filter(filter: Filter) -> Condition {
        Condition::Filter(filter)
    }

    fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        match self {
            Condition::Match { key, value } => field_values(payload, key).any(|v| value.matches(v)),
            Condition::MatchAny { key, values } => {
                field_values(payload, key).any(|v| values.iter().any(|m| m.matches(v)))
            }
            Condition::Range { key, range } => field_values(payload, key).any(|v| {
                v.as_f64()
                    .is_some_and(|x| v.is_number() && range.contains(x))
            }),
            Condition::HasId(ids) => ids.contains(&id),
            Condition::Filter(f) => f.matches(id, payload),
        }
    }

    fn check(&self, depth: usize) -> Result<()> {
        match self {
            Condition::Match { key, .. } => check_key(key),
            Condition::MatchAny { key, values } => {
                check_key(key)?;
                let Some(first) = values.first() else {
                    return Err(invalid(format!(
                        "filter: match-any on `{}` has no values",
                        short(key)
                    )));
                };
                if matches!(first, MatchValue::Bool(_)) {
                    return Err(invalid(format!(
                        "filter: match-any on `{}` takes keywords or integers, not booleans",
                        short(key)
                    )));
                }
                if let Some(other) = values.iter().find(|v| v.kind() != first.kind()) {
                    return Err(invalid(format!(
                        "filter: match-any on `{}` mixes {} and {} values",
                        short(key),
                        first.kind(),
                        other.kind()
                    )));
                }
                Ok(())
            }
            Condition::Range { key, range } => {
                check_key(key)?;
                let bounds = [range.gt, range.gte, range.lt, range.lte];
                if bounds.iter().all(Option::is_none) {
                    return Err(invalid(format!(
                        "filter: range on `{}` has no bounds",
                        short(key)
                    )));
                }
                if bounds.iter().flatten().any(|b| !b.is_finite()) {
                    return Err(invalid(format!(
                        "filter: range on `{}` has a bound that is not a finite number",
                        short(key)
                    )));
                }
                Ok(())
            }
            Condition::HasId(_) => Ok(()),
            Condition::Filter(f) => f.check_at(depth + 1),
        }
    }
}

/// The values a dotted path reaches in a payload: the field itself, or each
/// element when the field is an array.
fn field_values<'a>(
    payload: &'a Map<String, Value>,
    key: &str,
) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    let mut parts = key.split('.');
    let first = parts.next().unwrap_or_default();
    let mut cur = payload.get(first);
    for p in parts {
        cur = cur.and_then(|v| v.as_object()).and_then(|o| o.get(p));
    }
    match cur {
        None => Box::new(std::iter::empty()),
        Some(Value::Array(items)) => Box::new(items.iter()),
        Some(v) => Box::new(std::iter::once(v)),
    }
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "filter: `{}` is not a payload key: expected dot-separated names of ASCII letters, digits, `_` and `-`",
            short(key)
        )))
    }
}

/// A payload filter, as in Qdrant: all of `must`, at least one of `should`
/// (when not empty) and none of `must_not`.
///
/// ```
/// use dbx_core::vector::{Condition, Filter, Range};
/// let f = Filter::new()
///     .must(Condition::eq("lang", "en"))
///     .must(Condition::range("year", Range::new().gte(2020.0)))
///     .must_not(Condition::any("tag", ["draft", "spam"]));
/// // the same filter in Qdrant's JSON form
/// let g = Filter::from_json(&dbx_core::serde_json::json!({
///     "must": [
///         {"key": "lang", "match": {"value": "en"}},
///         {"key": "year", "range": {"gte": 2020}}
///     ],
///     "must_not": [{"key": "tag", "match": {"any": ["draft", "spam"]}}]
/// })).unwrap();
/// assert_eq!(f, g);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Filter {
    /// Conditions that must all hold.
    pub must: Vec<Condition>,
    /// Conditions of which at least one must hold (when not empty).
    pub should: Vec<Condition>,
    /// Conditions of which none may hold.
    pub must_not: Vec<Condition>,
}

impl Filter {
    /// An empty filter, which matches every point.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Add a condition that must hold.
    pub fn must(mut self, c: Condition) -> Filter {
        self.must.push(c);
        self
    }

    /// Add a condition of which at least one must hold.
    pub fn should(mut self, c: Condition) -> Filter {
        self.should.push(c);
        self
    }

    /// Add a condition that must not hold.
    pub fn must_not(mut self, c: Condition) -> Filter {
        self.must_not.push(c);
        self
    }

    /// Whether the filter has no conditions (matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.should.is_empty() && self.must_not.is_empty()
    }

    /// Whether a point with this id and payload passes: the reference
    /// semantics every backend follows.
    pub fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, payload)))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
    }

    /// Check keys, ranges and value lists: a malformed filter is
    /// [`InvalidInput`](ErrorKind::InvalidInput).
    pub fn check(&self) -> Result<()> {
        self.check_at(1)
    }

    fn check_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_FILTER_DEPTH {
            return Err(invalid(format!(
                "filter: nested deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        for c in self.must.iter().chain(&self.should).chain(&self.must_not) {
            c.check(depth)?;
        }
        Ok(())
    }

    /// Parse a filter in Qdrant's JSON form:
    /// `{"must": [...], "should": [...], "must_not": [...]}` with conditions
    /// `{"key": k, "match": {"value": v}}`, `{"key": k, "match": {"any":
    /// [..]}}`, `{"key": k, "range": {"gt"|"gte"|"lt"|"lte": n}}`,
    /// `{"has_id": [..]}` or a nested filter. Anything else is
    /// [`InvalidInput`](ErrorKind::InvalidInput) naming the problem.
    pub fn from_json(v: &Value) -> Result<Filter> {
        let f = parse_filter(v, "filter", 1)?;
        f.check()?;
        Ok(f)
    }

    /// The filter in Qdrant's JSON form (what [`from_json`](Filter::from_json)
    /// reads).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (name, list) in [
            ("must", &self.must),
            ("should", &self.should),
            ("must_not", &self.must_not),
        ] {
            if !list.is_empty() {
                m.insert(
                    name.into(),
                    Value::Array(list.iter().map(condition_json).collect()),
                );
            }
        }
        Value::Object(m)
    }
}

fn condition_json(c: &Condition) -> Value {
    match c {
        Condition::Match { key, value } => {
            serde_json::json!({"key": key, "match": {"value": value.to_json()}})
        }
        Condition::MatchAny { key, values } => serde_json::json!({
            "key": key,
            "match": {"any": values.iter().map(MatchValue::to_json).collect::<Vec<_>>()}
        }),
        Condition::Range { key, range } => {
            let mut r = Map::new();
            for (n, b) in [
                ("gt", range.gt),
                ("gte", range.gte),
                ("lt", range.lt),
                ("lte", range.lte),
            ] {
                if let Some(b) = b {
                    r.insert(n.into(), Value::from(b));
                }
            }
            serde_json::json!({"key": key, "range": r})
        }
        Condition::HasId(ids) => serde_json::json!({ "has_id": ids }),
        Condition::Filter(f) => f.to_json(),
    }
}

fn parse_filter(v: &Value, at: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(invalid(format!(
            "filter: nested deeper than {MAX_FILTER_DEPTH} levels"
        )));
    }
    let Value::Object(m) = v else {
        return Err(invalid(format!(
            "{at}: expected an object, not {}",
            json_type(v)
        )));
    };
    let mut f = Filter::new();
    for (k, list) in m {
        let slot = match k.as_str() {
            "must" => &mut f.must,
            "should" => &mut f.should,
            "must_not" => &mut f.must_not,
            other => {
                return Err(invalid(format!(
                    "{at}: unknown clause `{}` (expected must, should or must_not)",
                    short(other)
                )));
            }
        };
        let items = match list {
            Value::Array(items) => items.as_slice(),
            // Qdrant accepts a single condition in place of a list.
            Value::Object(_) => std::slice::from_ref(list),
            other => {
                return Err(invalid(format!(
                    "{at}.{k}: expected a list of conditions, not {}",
                    json_type(other)
                )));
            }
        };
        for (i, c) in items.iter().enumerate() {
            slot.push(parse_condition(c, &format!("{at}.{k}[{i}]"), depth)?);
        }
    }
    Ok(f)
}

fn parse_condition(v: &Value, at: &str, depth: usize) -> Result<Condition> {
    let Value::Object(m) = v else {
        return Err(invalid(format!(
            "{at}: expected a condition object, not {}",
            json_type(v)
        )));
    };
    if let Some(ids) = m.get("has_id") {
        let Value::Array(ids) = ids else {
            return Err(invalid(format!("{at}.has_id: expected a list of ids")));
        };
        let ids = ids
            .iter()
            .map(|id| match id {
                Value::Number(n) => n.as_u64().map(PointId::Num).ok_or(()),
                Value::String(s) => s.parse().map_err(|_| ()),
                _ => Err(()),
            })
            .collect::<std::result::Result<Vec<_>, ()>>()
            .map_err(|()| {
                invalid(format!(
                    "{at}.has_id: ids are unsigned integers or UUID strings"
                ))
            })?;
        return Ok(Condition::HasId(ids));
    }
    if m.contains_key("must") || m.contains_key("should") || m.contains_key("must_not") {
        return parse_filter(v, at, depth + 1).map(Condition::Filter);
    }
    let Some(key) = m.get("key") else {
        return Err(invalid(format!(
            "{at}: expected `key` with `match` or `range`, `has_id`, or a nested filter"
        )));
    };
    let Value::String(key) = key else {
        return Err(invalid(format!("{at}.key: expected a string")));
    };
    let key = key.clone();
    match (m.get("match"), m.get("range")) {
        (Some(Value::Object(mm)), None) => {
            if let Some(value) = mm.get("value") {
                let value = parse_match_value(value, &format!("{at}.match.value"))?;
                Ok(Condition::Match { key, value })
            } else if let Some(Value::Array(any)) = mm.get("any") {
                let values = any
                    .iter()
                    .enumerate()
                    .map(|(i, v)| parse_match_value(v, &format!("{at}.match.any[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Condition::MatchAny { key, values })
            } else {
                Err(invalid(format!(
                    "{at}.match: expected `value` or an `any` list"
                )))
            }
        }
        (None, Some(Value::Object(r))) => {
            let mut range = Range::new();
            for (n, b) in r {
                let b = b.as_f64().ok_or_else(|| {
                    invalid(format!("{at}.range.{}: expected a number", short(n)))
                })?;
                match n.as_str() {
                    "gt" => range.gt = Some(b),
                    "gte" => range.gte = Some(b),
                    "lt" => range.lt = Some(b),
                    "lte" => range.lte = Some(b),
                    other => {
                        return Err(invalid(format!(
                            "{at}.range: unknown bound `{}` (expected gt, gte, lt or lte)",
                            short(other)
                        )));
                    }
                }
            }
            Ok(Condition::Range { key, range })
        }
        (Some(_), Some(_)) => Err(invalid(format!(
            "{at}: a condition has `match` or `range`, not both"
        ))),
        _ => Err(invalid(format!(
            "{at}: expected a `match` object or a `range` object"
        ))),
    }
}

fn parse_match_value(v: &Value, at: &str) -> Result<MatchValue> {
    match v {
        Value::String(s) => Ok(MatchValue::Keyword(s.clone())),
        Value::Bool(b) => Ok(MatchValue::Bool(*b)),
        Value::Number(n) => n.as_i64().map(MatchValue::Integer).ok_or_else(|| {
            invalid(format!(
                "{at}: match takes a string, an integer or a boolean, not {n} (use a range for fractions)"
            ))
        }),
        other => Err(invalid(format!(
            "{at}: match takes a string, an integer or a boolean, not {}",
            json_type(other)
        ))),
    }
}

// --- searches -----------------------------------------------------------------------

/// A nearest-neighbour query: [`VectorCollection::search`].
///
/// ```
/// use dbx_core::vector::{Condition, Filter, Search};
/// let q = Search::new(vec![0.1, 0.2, 0.3], 5)
///     .filter(Filter::new().must(Condition::eq("lang", "en")))
///     .score_threshold(0.5)
///     .with_vectors(true);
/// assert_eq!(q.limit(), 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    vector: Vec<f32>,
    limit: usize,
    filter: Option<Filter>,
    score_threshold: Option<f32>,
    include: Include,
}

impl Search {
    /// The `limit` points nearest to `vector`, with payloads, without vectors.
    pub fn new(vector: Vec<f32>, limit: usize) -> Search {
        Search {
            vector,
            limit,
            filter: None,
            score_threshold: None,
            include: Include::new(true, false),
        }
    }

    /// Only points passing `filter`.
    pub fn filter(mut self, filter: Filter) -> Search {
        self.filter = Some(filter).filter(|f| !f.is_empty());
        self
    }

    /// Only scores at least this similar: `>=` for cosine and dot, `<=` for
    /// the euclid and manhattan distances.
    pub fn score_threshold(mut self, threshold: f32) -> Search {
        self.score_threshold = Some(threshold);
        self
    }

    /// Return payloads (on by default).
    pub fn with_payload(mut self, on: bool) -> Search {
        self.include.payload = on;
        self
    }

    /// Return vectors (off by default).
    pub fn with_vectors(mut self, on: bool) -> Search {
        self.include.vectors = on;
        self
    }

    /// The query vector.
    pub fn vector(&self) -> &[f32] {
        &self.vector
    }

    /// The number of results asked for.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The filter, if any.
    pub fn filter_ref(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// The score threshold, if any.
    pub fn threshold(&self) -> Option<f32> {
        self.score_threshold
    }

    /// What to return beside ids and scores.
    pub fn include(&self) -> Include {
        self.include
    }

    fn check(&self) -> Result<()> {
        check_vector(&self.vector, "the query vector")?;
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(invalid(format!(
                "search limit must be between 1 and {MAX_LIMIT}, not {}",
                self.limit
            )));
        }
        if let Some(t) = self.score_threshold
            && !t.is_finite()
        {
            return Err(invalid("the score threshold must be a finite number"));
        }
        if let Some(f) = &self.filter {
            f.check()?;
        }
        Ok(())
    }
}

/// Sort results best first with ties by ascending id: the contract's order,
/// given results already ordered by score (as every backend returns them).
fn order_ties(hits: &mut [ScoredPoint]) {
    let mut start = 0;
    while start < hits.len() {
        let mut end = start + 1;
        while end < hits.len() && hits[end].score == hits[start].score {
            end += 1;
        }
        if end - start > 1 {
            hits[start..end].sort_by_key(|h| h.id);
        }
        start = end;
    }
}

// --- checks -----------------------------------------------------------------------

/// Check a collection name: 1 to [`MAX_COLLECTION_NAME_LEN`] ASCII letters,
/// digits, `_` and `-`, starting with a letter or `_`.
pub fn check_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_COLLECTION_NAME_LEN
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{}` is not a collection name: expected 1 to {MAX_COLLECTION_NAME_LEN} ASCII letters, digits, `_` or `-`, starting with a letter or `_`",
            short(name)
        )))
    }
}

/// Check a vector: not empty, at most [`MAX_DIMENSION`] components, all
/// finite.
pub fn check_vector(v: &[f32], what: &str) -> Result<()> {
    if v.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if v.len() > MAX_DIMENSION {
        return Err(invalid(format!(
            "{what} has {} components, more than the {MAX_DIMENSION} allowed",
            v.len()
        )));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(invalid(format!(
            "{what} has a component that is not a finite number ({} at index {i})",
            v[i]
        )));
    }
    Ok(())
}

/// The error for a vector of the wrong length, for drivers.
pub fn dimension_mismatch(collection: &str, expected: usize, got: usize) -> Error {
    invalid(format!(
        "vector dimension mismatch in collection `{}`: expected {expected}, got {got}",
        short(collection)
    ))
}

/// The error for a collection that does not exist, for drivers.
pub fn collection_not_found(collection: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("collection `{}` does not exist", short(collection)),
    )
}

fn check_points(points: &[Point]) -> Result<()> {
    let Some(first) = points.first() else {
        return Ok(());
    };
    for (i, p) in points.iter().enumerate() {
        check_vector(&p.vector, &format!("the vector of point {} (#{i})", p.id))?;
        if p.vector.len() != first.vector.len() {
            return Err(invalid(format!(
                "the vectors of one upsert differ in length: point {} has {}, point {} has {}",
                first.id,
                first.vector.len(),
                p.id,
                p.vector.len()
            )));
        }
    }
    Ok(())
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invalid_input(message)
}

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

fn dims(n: usize) -> Attrs<'static> {
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

    fn ctx(&self) -> &Ctx {
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
        self.ctx()
            .run(op, || self.store().drop_collection(&self.name))
            .await
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
            self.ctx()
                .run_attrs(op, attrs, || self.store().upsert(&self.name, batch))
                .await?;
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
        self.ctx()
            .run(op, || self.store().delete_ids(&self.name, ids))
            .await
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
        self.ctx()
            .run(op, || self.store().delete_where(&self.name, filter))
            .await
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

fn check_dimension(dimension: usize) -> Result<()> {
    if dimension == 0 || dimension > MAX_DIMENSION {
        return Err(invalid(format!(
            "a collection's dimension must be between 1 and {MAX_DIMENSION}, not {dimension}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn distances_parse_and_reject_unknown_names() {
        assert_eq!("Cosine".parse::<Distance>().unwrap(), Distance::Cosine);
        assert_eq!("euclidean".parse::<Distance>().unwrap(), Distance::Euclid);
        assert_eq!("DOT".parse::<Distance>().unwrap(), Distance::Dot);
        let e = "hamming".parse::<Distance>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("hamming"), "{e}");
    }

    #[test]
    fn scores_match_their_definitions() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let b = [0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -3.0, 2.0, 0.0, 1.0];
        let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((Distance::Dot.score(&a, &b) - naive_dot).abs() < 1e-4);
        let naive_l2: f32 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        assert!((Distance::Euclid.score(&a, &b) - naive_l2).abs() < 1e-4);
        let naive_l1: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        assert!((Distance::Manhattan.score(&a, &b) - naive_l1).abs() < 1e-4);
        let (na, nb) = (Distance::Cosine.prepare(&a), Distance::Cosine.prepare(&b));
        let cos = naive_dot / (dot(&a, &a).sqrt() * dot(&b, &b).sqrt());
        assert!((Distance::Cosine.score(&na, &nb) - cos).abs() < 1e-5);
    }

    #[test]
    fn cosine_prepare_normalises_but_keeps_zero_vectors() {
        assert_eq!(Distance::Cosine.prepare(&[3.0, 4.0]), vec![0.6, 0.8]);
        assert_eq!(Distance::Cosine.prepare(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(Distance::Dot.prepare(&[3.0, 4.0]), vec![3.0, 4.0]);
    }

    #[test]
    fn thresholds_follow_the_direction_of_the_score() {
        assert!(Distance::Cosine.within(0.9, 0.8));
        assert!(!Distance::Cosine.within(0.7, 0.8));
        assert!(Distance::Euclid.within(0.7, 0.8));
        assert!(!Distance::Euclid.within(0.9, 0.8));
        assert!(Distance::Dot.better(2.0, 1.0));
        assert!(Distance::Manhattan.better(1.0, 2.0));
    }

    #[test]
    fn point_ids_order_integers_before_uuids() {
        let u = uuid::Uuid::from_u128(1);
        let mut ids = vec![PointId::Uuid(u), PointId::Num(7), PointId::Num(2)];
        ids.sort();
        assert_eq!(
            ids,
            vec![PointId::Num(2), PointId::Num(7), PointId::Uuid(u)]
        );
        assert_eq!("42".parse::<PointId>().unwrap(), PointId::Num(42));
        assert_eq!(u.to_string().parse::<PointId>().unwrap(), PointId::Uuid(u));
        assert_eq!(
            "-1".parse::<PointId>().unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(serde_json::to_value(PointId::Num(3)).unwrap(), json!(3));
    }

    #[test]
    fn payloads_must_be_objects() {
        let p = Point::new(1u64, vec![1.0]);
        assert!(p.clone().with_payload(json!({"a": 1})).is_ok());
        for bad in [json!(1), json!("x"), json!([1]), json!(null)] {
            let e = p.clone().with_payload(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.message().contains("JSON object"), "{e}");
        }
        assert_eq!(
            p.with_data(&vec![1, 2]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn vectors_are_checked() {
        assert!(check_vector(&[1.0, 2.0], "v").is_ok());
        for bad in [
            vec![],
            vec![1.0, f32::NAN],
            vec![f32::INFINITY],
            vec![0.0; MAX_DIMENSION + 1],
        ] {
            assert_eq!(
                check_vector(&bad, "v").unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
        let mixed = [
            Point::new(1u64, vec![1.0, 2.0]),
            Point::new(2u64, vec![1.0]),
        ];
        let e = check_points(&mixed).unwrap_err();
        assert!(e.message().contains("differ in length"), "{e}");
    }

    #[test]
    fn collection_names_are_identifiers() {
        for ok in ["docs", "_x", "a-b_c9"] {
            assert!(check_collection_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "a b",
            "a;drop table x",
            "a/b",
            "é",
            &"x".repeat(256),
        ] {
            assert_eq!(
                check_collection_name(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn filters_follow_qdrant_semantics() {
        let p = obj(json!({
            "lang": "en", "year": 2021, "score": 0.5, "draft": false,
            "tags": ["a", "b"], "meta": {"owner": "ada", "n": [1, 5]}
        }));
        let id = PointId::Num(7);
        let yes = |f: Filter| assert!(f.matches(id, &p), "{f:?}");
        let no = |f: Filter| assert!(!f.matches(id, &p), "{f:?}");
        yes(Filter::new());
        yes(Filter::new().must(Condition::eq("lang", "en")));
        no(Filter::new().must(Condition::eq("lang", "fr")));
        yes(Filter::new().must(Condition::eq("year", 2021)));
        no(Filter::new().must(Condition::eq("year", "2021")));
        yes(Filter::new().must(Condition::eq("draft", false)));
        no(Filter::new().must(Condition::eq("draft", 0)));
        yes(Filter::new().must(Condition::eq("tags", "b")));
        yes(Filter::new().must(Condition::eq("meta.owner", "ada")));
        yes(Filter::new().must(Condition::any("meta.n", [4, 5])));
        no(Filter::new().must(Condition::any("tags", ["c", "d"])));
        yes(Filter::new().must(Condition::range("score", Range::new().gt(0.4).lte(0.5))));
        no(Filter::new().must(Condition::range("score", Range::new().gt(0.5))));
        no(Filter::new().must(Condition::range("lang", Range::new().gt(0.0))));
        no(Filter::new().must(Condition::eq("missing", "x")));
        yes(Filter::new().must_not(Condition::eq("missing", "x")));
        yes(Filter::new()
            .should(Condition::eq("lang", "fr"))
            .should(Condition::eq("lang", "en")));
        no(Filter::new().should(Condition::eq("lang", "fr")));
        no(Filter::new().must_not(Condition::has_id([7u64])));
        yes(Filter::new().must(Condition::filter(
            Filter::new().should(Condition::has_id([1u64, 7])),
        )));
    }

    #[test]
    fn json_filters_round_trip_and_malformed_ones_are_named() {
        let f = Filter::new()
            .must(Condition::eq("a", 1))
            .should(Condition::any("b", ["x", "y"]))
            .must_not(Condition::range("c", Range::new().gte(1.5)))
            .must(Condition::has_id([PointId::Num(3)]))
            .must(Condition::filter(
                Filter::new().must(Condition::eq("d", true)),
            ));
        assert_eq!(Filter::from_json(&f.to_json()).unwrap(), f);
        for (bad, says) in [
            (json!([]), "expected an object"),
            (json!({"must": 1}), "list of conditions"),
            (json!({"maybe": []}), "unknown clause"),
            (
                json!({"must": [{"key": "a"}]}),
                "`match` object or a `range`",
            ),
            (
                json!({"must": [{"key": "a", "match": {"value": 1.5}}]}),
                "range for fractions",
            ),
            (
                json!({"must": [{"key": "a", "match": {"any": []}}]}),
                "no values",
            ),
            (
                json!({"must": [{"key": "a", "match": {"any": ["x", 1]}}]}),
                "mixes",
            ),
            (json!({"must": [{"key": "a", "range": {}}]}), "no bounds"),
            (
                json!({"must": [{"key": "a", "range": {"near": 1}}]}),
                "unknown bound",
            ),
            (
                json!({"must": [{"key": "a b", "match": {"value": 1}}]}),
                "not a payload key",
            ),
            (
                json!({"must": [{"key": "", "match": {"value": 1}}]}),
                "not a payload key",
            ),
            (json!({"must": [{"has_id": [-1]}]}), "unsigned integers"),
            (
                json!({"must": [{"key": 5, "match": {"value": 1}}]}),
                "expected a string",
            ),
        ] {
            let e = Filter::from_json(&bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.message().contains(says), "{bad}: {e}");
        }
        let mut deep = json!({"must": [{"key": "a", "match": {"value": 1}}]});
        for _ in 0..40 {
            deep = json!({ "must": [deep] });
        }
        assert!(
            Filter::from_json(&deep)
                .unwrap_err()
                .message()
                .contains("deeper")
        );
        let nan = Filter::new().must(Condition::range("a", Range::new().lt(f64::NAN)));
        assert!(nan.check().is_err());
    }

    #[test]
    fn searches_are_checked() {
        assert!(Search::new(vec![1.0], 1).check().is_ok());
        assert!(Search::new(vec![], 1).check().is_err());
        assert!(Search::new(vec![1.0], 0).check().is_err());
        assert!(Search::new(vec![f32::NAN], 1).check().is_err());
        assert!(
            Search::new(vec![1.0], 1)
                .score_threshold(f32::NAN)
                .check()
                .is_err()
        );
    }

    #[test]
    fn ties_are_ordered_by_id() {
        let h = |id: u64, s: f32| ScoredPoint::new(PointId::Num(id), s, None, None);
        let mut hits = vec![h(9, 1.0), h(3, 1.0), h(5, 0.5), h(1, 0.2), h(0, 0.2)];
        order_ties(&mut hits);
        let ids: Vec<_> = hits.iter().map(|h| h.id.to_string()).collect();
        assert_eq!(ids, ["3", "9", "5", "0", "1"]);
    }
}
