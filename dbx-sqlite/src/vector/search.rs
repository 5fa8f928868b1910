//! Exact search: one pass over the table, keeping the best `limit`.

use super::*;

/// One point that may make the result. Ordered worst first, so the top of
/// a [`BinaryHeap`] is the one to evict.
pub(crate) struct Candidate {
    /// Higher is better whatever the distance; never NaN, never -0.
    pub(crate) key: f32,
    pub(crate) id: PointId,
    pub(crate) score: f32,
    pub(crate) rowid: i64,
    pub(crate) payload: Option<Map<String, Value>>,
}

/// A score as a key where higher is better. NaN (possible only with
/// overflowing components) ranks last; -0 is made +0 so that `total_cmp`
/// agrees with `==` (which the core uses to find ties).
pub(crate) fn rank_key(distance: Distance, score: f32) -> f32 {
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
pub(crate) struct TopK {
    pub(crate) heap: BinaryHeap<Candidate>,
    pub(crate) limit: usize,
}

impl TopK {
    pub(crate) fn new(limit: usize) -> TopK {
        TopK {
            heap: BinaryHeap::with_capacity(limit.min(4096) + 1),
            limit,
        }
    }

    /// Whether a candidate with this key might enter (it does when it also
    /// wins the tie on id, for a key equal to the worst kept).
    pub(crate) fn may_admit(&self, key: f32) -> bool {
        self.heap.len() < self.limit
            || self
                .heap
                .peek()
                .is_some_and(|w| key.total_cmp(&w.key) != CmpOrdering::Less)
    }

    /// Whether a candidate with this key and id enters.
    pub(crate) fn admits(&self, key: f32, id: PointId) -> bool {
        self.heap.len() < self.limit
            || self
                .heap
                .peek()
                .is_some_and(|w| key.total_cmp(&w.key).then_with(|| w.id.cmp(&id)).is_gt())
    }

    pub(crate) fn push(&mut self, c: Candidate) {
        if self.heap.len() >= self.limit {
            self.heap.pop();
        }
        self.heap.push(c);
    }

    /// Best first, ties by ascending id.
    pub(crate) fn into_best_first(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

pub(crate) fn search_on(
    c: &Conn,
    mirrors: &Mirrors,
    indexes: Option<&Arc<Indexes>>,
    name: &str,
    search: &Search,
) -> Result<Vec<ScoredPoint>> {
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
    #[cfg(not(feature = "hnsw"))]
    let _ = indexes;
    match mirrors.get(&tx, name, &table, &meta)? {
        // The approximate index: only without a payload filter (a filtered
        // search scans the mirror exactly) and unless the search asks for
        // an exact answer.
        #[cfg(feature = "hnsw")]
        Some(m)
            if filter.is_none()
                && !search.is_exact()
                && indexes.is_some_and(|ix| {
                    ix.view(name, &m).is_some_and(|v| {
                        ix.search(name, &v, &m, &query, threshold, search.ef(), &mut top)
                    })
                }) => {}
        Some(m) => scan_mirror(
            c, &tx, &table, &m, &query, filter, threshold, include, &mut top,
        )?,
        None => scan_rows(
            &tx, &table, &meta, &query, filter, threshold, include, &mut top,
        )?,
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
                return Err(vanished());
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

/// The rank key of `score` if a point with it may enter `top`: within the
/// search's threshold and not worse than the worst point kept.
pub(crate) fn admissible(
    top: &TopK,
    distance: Distance,
    threshold: Option<f32>,
    score: f32,
) -> Option<f32> {
    if threshold.is_some_and(|t| !distance.within(score, t)) {
        return None;
    }
    let key = rank_key(distance, score);
    top.may_admit(key).then_some(key)
}

/// `None` if the point fails the search's payload filter; else the payload
/// to keep with it (read through `payload` only when there is a filter).
pub(crate) fn filtered(
    filter: Option<&Filter>,
    include: Include,
    id: PointId,
    payload: impl FnOnce() -> Result<Map<String, Value>>,
) -> Result<Option<Option<Map<String, Value>>>> {
    let Some(f) = filter else {
        return Ok(Some(None));
    };
    let p = payload()?;
    Ok(f.matches(id, &p).then(|| include.payload.then_some(p)))
}

/// The best `limit` points by one pass over the table's rows.
#[allow(clippy::too_many_arguments)]
fn scan_rows(
    tx: &Connection,
    table: &str,
    meta: &Meta,
    query: &[f32],
    filter: Option<&Filter>,
    threshold: Option<f32>,
    include: Include,
    top: &mut TopK,
) -> Result<()> {
    let distance = meta.distance;
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
        let score = distance.score(query, &stored);
        let Some(key) = admissible(top, distance, threshold, score) else {
            continue;
        };
        let id = decode_id(blob(r.get_ref(1).map_err(map_err)?, "point id")?)?;
        if !top.admits(key, id) {
            continue;
        }
        let Some(payload) = filtered(filter, include, id, || {
            parse_payload(r.get_ref(3).map_err(map_err)?)
        })?
        else {
            continue;
        };
        top.push(Candidate {
            key,
            id,
            score,
            rowid: r.get(0).map_err(map_err)?,
            payload,
        });
    }
    Ok(())
}
