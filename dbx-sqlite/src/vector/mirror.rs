//! Vector mirrors: a collection's vectors in one contiguous `f32` array
//! (with their ids and rowids), loaded from the table once and scanned
//! instead of the rows while the collection does not change.
//!
//! # Staying correct
//!
//! Every write of a collection's points (upsert, delete by id, delete by
//! filter) bumps the collection's `generation` in the catalog, in the same
//! transaction (see [`bump_generation`]); a new collection starts at a
//! random generation, so one dropped and created again under the same name
//! does not repeat the old one's. A search reads the generation inside its
//! read transaction and uses a mirror only if it was loaded at that
//! generation (and for the same dimension and distance); otherwise it loads
//! the mirror again from that same snapshot. So a write by any connection,
//! any `Dbx` on the same file or any other process running this version of
//! dbx is seen by the next search. Writes to a collection's table made
//! around dbx (raw SQL, or an older dbx that does not bump the generation)
//! are not: they must bump `generation` too.
//!
//! # Memory
//!
//! The mirrors of one database hold at most `vector_mirror_max_bytes`
//! together (vectors, ids and rowids; default
//! [`DEFAULT_VECTOR_MIRROR_MAX_BYTES`](crate::DEFAULT_VECTOR_MIRROR_MAX_BYTES), 0 turns mirrors
//! off). Loading one evicts the least recently searched others as needed; a
//! collection too large to fit on its own is searched by scanning its rows,
//! as without mirrors (and no load is tried again until it changes). A stale
//! mirror is dropped before its replacement is loaded, so a reload does not
//! hold both (a search still running on the old one keeps it alive until
//! it ends).
//!
//! Loads of one collection are serialised: searches that find it stale
//! wait for one load instead of each making its own.

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// A collection's vectors as of one generation.
#[derive(Debug)]
pub(crate) struct Mirror {
    pub(crate) key: MirrorKey,
    /// `ids.len() * dimension` components, point after point.
    pub(crate) vectors: Vec<f32>,
    pub(crate) ids: Vec<PointId>,
    pub(crate) rowids: Vec<i64>,
}

/// What a mirror was loaded for: it serves only a search that reads the
/// same from the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MirrorKey {
    pub(crate) generation: i64,
    pub(crate) dimension: usize,
    pub(crate) distance: Distance,
}

impl MirrorKey {
    pub(crate) fn of(meta: &Meta) -> MirrorKey {
        MirrorKey {
            generation: meta.generation,
            dimension: meta.dimension,
            distance: meta.distance,
        }
    }
}

/// Bytes a mirror of `points` points of `dimension` components holds.
pub(crate) fn mirror_bytes(points: u64, dimension: usize) -> u64 {
    let per_point =
        (dimension * std::mem::size_of::<f32>() + std::mem::size_of::<PointId>() + 8) as u64;
    points.saturating_mul(per_point)
}

impl Mirror {
    pub(crate) fn bytes(&self) -> u64 {
        mirror_bytes(self.ids.len() as u64, self.key.dimension)
    }

    /// Load `table`'s `points` points (counted in the same transaction).
    fn load(c: &Connection, table: &str, key: MirrorKey, points: u64) -> Result<Mirror> {
        let n = usize::try_from(points).unwrap_or(usize::MAX);
        let dim = key.dimension;
        let mut m = Mirror {
            key,
            vectors: Vec::with_capacity(n.saturating_mul(dim)),
            ids: Vec::with_capacity(n),
            rowids: Vec::with_capacity(n),
        };
        let mut st = c
            .prepare_cached(&format!("SELECT rowid, id, vector FROM {table}"))
            .map_err(map_err)?;
        let mut rows = st.raw_query();
        while let Some(r) = rows.next().map_err(map_err)? {
            let at = m.vectors.len();
            m.vectors.resize(at + dim, 0.0);
            decode_into(
                blob(r.get_ref(2).map_err(map_err)?, "vector")?,
                &mut m.vectors[at..],
            )?;
            m.ids.push(decode_id(blob(
                r.get_ref(1).map_err(map_err)?,
                "point id",
            )?)?);
            m.rowids.push(r.get(0).map_err(map_err)?);
        }
        Ok(m)
    }
}

/// The mirrors of one database (one [`SqliteVectors`]).
#[derive(Debug)]
pub(crate) struct Mirrors {
    max_bytes: u64,
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    slots: HashMap<String, Slot>,
    /// Advances on every use: a slot's last use orders evictions.
    clock: u64,
}

#[derive(Debug, Default)]
struct Slot {
    mirror: Option<Arc<Mirror>>,
    /// Bytes set aside for a load in progress.
    reserved: u64,
    /// A key found too large for the bound: searched by rows until the
    /// collection changes.
    too_big: Option<MirrorKey>,
    last_use: u64,
    /// Held while loading.
    loading: Arc<Mutex<()>>,
}

/// What the registry says about a collection.
enum Found {
    Fresh(Arc<Mirror>),
    TooBig,
    Stale(Arc<Mutex<()>>),
}

impl Registry {
    fn find(&mut self, name: &str, key: MirrorKey) -> Found {
        self.clock += 1;
        let clock = self.clock;
        let slot = self.slots.entry(name.to_owned()).or_default();
        match &slot.mirror {
            Some(m) if m.key == key => {
                slot.last_use = clock;
                Found::Fresh(m.clone())
            }
            _ if slot.too_big == Some(key) => Found::TooBig,
            _ => Found::Stale(slot.loading.clone()),
        }
    }

    fn held(&self) -> u64 {
        self.slots
            .values()
            .map(|s| s.reserved + s.mirror.as_ref().map_or(0, |m| m.bytes()))
            .sum()
    }
}

impl Mirrors {
    pub(crate) fn new(max_bytes: u64) -> Mirrors {
        Mirrors {
            max_bytes,
            inner: Mutex::new(Registry::default()),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // The registry stays consistent across a panic (plain fields set
        // one at a time): take it back.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes the mirrors hold now (loads in progress included).
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        self.registry().held()
    }

    /// Forget a dropped collection's mirror.
    pub(crate) fn forget(&self, name: &str) {
        self.registry().slots.remove(name);
    }

    /// The mirror of `name` as of `meta` (read in the transaction `c` is
    /// in), loaded now if it is missing or stale; `None` where mirrors are
    /// off or the collection does not fit.
    pub(crate) fn get(
        &self,
        c: &Connection,
        name: &str,
        table: &str,
        meta: &Meta,
    ) -> Result<Option<Arc<Mirror>>> {
        if self.max_bytes == 0 {
            return Ok(None);
        }
        let key = MirrorKey::of(meta);
        let loading = match self.registry().find(name, key) {
            Found::Fresh(m) => return Ok(Some(m)),
            Found::TooBig => return Ok(None),
            Found::Stale(loading) => loading,
        };
        let _loading = loading.lock().unwrap_or_else(|e| e.into_inner());
        // Another search may have loaded it while this one waited.
        match self.registry().find(name, key) {
            Found::Fresh(m) => return Ok(Some(m)),
            Found::TooBig => return Ok(None),
            Found::Stale(_) => {}
        }
        let points = count_all(c, table)?;
        let need = mirror_bytes(points, meta.dimension);
        {
            let mut reg = self.registry();
            let slot = reg.slots.entry(name.to_owned()).or_default();
            slot.mirror = None;
            if need > self.max_bytes {
                slot.too_big = Some(key);
                tracing::debug!(
                    target: "dbx",
                    collection = name,
                    bytes = need,
                    max_bytes = self.max_bytes,
                    "dbx: vector collection larger than vector_mirror_max_bytes; searching its rows"
                );
                return Ok(None);
            }
            let mut held = reg.held();
            while held + need > self.max_bytes {
                let victim = reg
                    .slots
                    .iter()
                    .filter(|(n, s)| n.as_str() != name && s.mirror.is_some())
                    .min_by_key(|(_, s)| s.last_use)
                    .map(|(n, _)| n.clone());
                let Some(victim) = victim else {
                    // The rest is set aside for loads in progress: scan
                    // the rows this time.
                    return Ok(None);
                };
                if let Some(m) = reg.slots.get_mut(&victim).and_then(|s| s.mirror.take()) {
                    held -= m.bytes();
                }
            }
            if let Some(slot) = reg.slots.get_mut(name) {
                slot.reserved = need;
            }
        }
        let loaded = Mirror::load(c, table, key, points).map(Arc::new);
        let mut reg = self.registry();
        reg.clock += 1;
        let clock = reg.clock;
        let slot = reg.slots.entry(name.to_owned()).or_default();
        slot.reserved = 0;
        let m = loaded?;
        slot.mirror = Some(m.clone());
        slot.too_big = None;
        slot.last_use = clock;
        Ok(Some(m))
    }
}

/// Every how many points a mirror scan checks the operation's deadline.
const DEADLINE_STRIDE: usize = 4096;

/// The best `limit` points of a mirror (see [`search_on`]): scored from the
/// array, payloads read by rowid only for would-be winners when there is a
/// filter. Stops with `Timeout` at the operation's deadline, like a scan of
/// the rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_mirror(
    c: &Conn,
    tx: &Connection,
    table: &str,
    m: &Mirror,
    query: &[f32],
    filter: Option<&Filter>,
    threshold: Option<f32>,
    include: Include,
    top: &mut TopK,
) -> Result<()> {
    let distance = m.key.distance;
    let mut payloads = match filter {
        Some(_) => Some(
            tx.prepare_cached(&format!("SELECT payload FROM {table} WHERE rowid = ?1"))
                .map_err(map_err)?,
        ),
        None => None,
    };
    for (i, stored) in m.vectors.chunks_exact(m.key.dimension).enumerate() {
        if i % DEADLINE_STRIDE == 0 && i > 0 && c.past_deadline() {
            return Err(Error::new(
                ErrorKind::Timeout,
                "vector search interrupted at its deadline",
            )
            .set_transient(true)
            .with_backend(crate::error::BACKEND));
        }
        let score = distance.score(query, stored);
        let Some(key) = admissible(top, distance, threshold, score) else {
            continue;
        };
        let id = m.ids[i];
        if !top.admits(key, id) {
            continue;
        }
        let rowid = m.rowids[i];
        let Some(payload) = filtered(filter, include, id, || {
            let st = payloads.as_mut().ok_or_else(vanished)?;
            let mut rows = st.query(params![rowid]).map_err(map_err)?;
            let r = rows.next().map_err(map_err)?.ok_or_else(vanished)?;
            parse_payload(r.get_ref(0).map_err(map_err)?)
        })?
        else {
            continue;
        };
        top.push(Candidate {
            key,
            id,
            score,
            rowid,
            payload,
        });
    }
    Ok(())
}

pub(crate) fn vanished() -> Error {
    Error::new(
        ErrorKind::Other,
        "a point vanished within a read transaction",
    )
}
