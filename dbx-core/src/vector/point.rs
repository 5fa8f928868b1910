//! Points, their ids and payloads, and what reads return.

use super::*;

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

pub(crate) fn payload_object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(invalid(format!(
            "a payload must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

pub(crate) fn decode_payload<T: DeserializeOwned>(
    payload: Option<&Map<String, Value>>,
) -> Result<T> {
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
