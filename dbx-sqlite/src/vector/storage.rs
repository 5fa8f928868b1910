//! The tables: names, the encoding of ids, vectors and payloads, the
//! catalog, and writing and reading points.

use super::*;

pub(crate) const CREATE_CATALOG: &str = "CREATE TABLE IF NOT EXISTS dbx_vector_collections (
    name TEXT PRIMARY KEY NOT NULL,
    dimension INTEGER NOT NULL,
    distance TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
)";

/// Give a catalog made before the `generation` column its column (0 for
/// every collection). Two processes may race here: the loser's "duplicate
/// column" is success.
pub(crate) fn upgrade_catalog(c: &Connection) -> Result<()> {
    if c.prepare("SELECT generation FROM dbx_vector_collections LIMIT 0")
        .is_ok()
    {
        return Ok(());
    }
    match c.execute_batch(
        "ALTER TABLE dbx_vector_collections ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
    ) {
        Err(e) if e.to_string().contains("duplicate column") => Ok(()),
        r => r.map_err(map_err),
    }
}

/// The generation a new collection starts at: random (below 2^62, so that
/// increments never overflow), so that a collection dropped and created
/// again under the same name does not repeat the generations of the old one.
pub(crate) const FIRST_GENERATION_SQL: &str = "random() & 4611686018427387903";

/// Mark a change of `name`'s points, in the transaction that makes it: every
/// write bumps the generation, which vector mirrors compare at search time.
pub(crate) fn bump_generation(c: &Connection, name: &str) -> Result<()> {
    c.prepare_cached(
        "UPDATE dbx_vector_collections SET generation = generation + 1 WHERE name = ?1",
    )
    .and_then(|mut st| st.execute(params![name]))
    .map_err(map_err)?;
    Ok(())
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
pub(crate) struct IdKey {
    pub(crate) bytes: [u8; 17],
    pub(crate) len: usize,
}

impl IdKey {
    pub(crate) fn new(id: PointId) -> IdKey {
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

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

pub(crate) fn decode_id(bytes: &[u8]) -> Result<PointId> {
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
pub(crate) fn encode_vector(v: &[f32], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Decode a stored vector into `out`, whose length is the dimension.
pub(crate) fn decode_into(bytes: &[u8], out: &mut [f32]) -> Result<()> {
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

pub(crate) fn blob<'a>(v: ValueRef<'a>, what: &str) -> Result<&'a [u8]> {
    match v {
        ValueRef::Blob(b) => Ok(b),
        other => Err(Error::decode(format!(
            "a stored {what} is {:?}, not a BLOB",
            other.data_type()
        ))),
    }
}

pub(crate) fn parse_payload(v: ValueRef<'_>) -> Result<Map<String, Value>> {
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
pub(crate) struct Meta {
    pub(crate) dimension: usize,
    pub(crate) distance: Distance,
    /// Bumped by every write of the collection's points.
    pub(crate) generation: i64,
}

pub(crate) fn meta(c: &Connection, name: &str) -> Result<Option<Meta>> {
    let row: Option<(i64, String, i64)> = c
        .prepare_cached(
            "SELECT dimension, distance, generation FROM dbx_vector_collections WHERE name = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(map_err)?;
    let Some((dimension, distance, generation)) = row else {
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
        generation,
    }))
}

pub(crate) fn require(c: &Connection, name: &str) -> Result<Meta> {
    meta(c, name)?.ok_or_else(|| collection_not_found(name))
}

pub(crate) fn count_all(c: &Connection, table: &str) -> Result<u64> {
    let n: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM {table}"))
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    Ok(n.max(0) as u64)
}

/// The rowids and ids of the points passing `filter`, in one scan.
pub(crate) fn matching(c: &Connection, table: &str, filter: &Filter) -> Result<Vec<i64>> {
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

pub(crate) fn upsert_on(c: &Connection, name: &str, points: &[Point]) -> Result<()> {
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
    bump_generation(&tx, name)?;
    tx.commit().map_err(map_err)
}

pub(crate) fn get_on(
    c: &Connection,
    name: &str,
    ids: &[PointId],
    include: Include,
) -> Result<Vec<Record>> {
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
