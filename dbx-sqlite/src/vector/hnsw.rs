//! The opt-in approximate index (cargo feature `hnsw`, URL parameter
//! `vector_index=hnsw`): an HNSW graph ([`hnsw_rs`]) per collection, beside
//! its mirror, whose answers are candidates that are scored again exactly.
//!
//! # Staying correct
//!
//! A graph holds its own copy of the vectors it was given, each under a
//! *slot* number; its book says which SQLite rowid (and which vector, by a
//! hash) each slot was made for. A [`View`] pairs a graph with one loaded
//! [`Mirror`]: for every slot, the mirror position holding that rowid with
//! that same vector, or [`DEAD`]. A search uses a view only with the very
//! mirror it was made for (so only at the generation the search read), takes
//! the graph's nearest slots, maps them to mirror positions and scores those
//! positions' vectors exactly, so scores, ids and payloads always come from
//! the snapshot the search reads; only which points are considered is
//! approximate.
//!
//! When a search finds the view made for an older mirror (any write, by this
//! process or any other, bumps the generation and so reloads the mirror),
//! the new mirror is compared with the book by rowid and vector hash: points
//! already in the graph keep their slots, deleted and overwritten ones
//! become tombstones, new and overwritten ones are inserted. This one path
//! serves writes through this handle and writes by other processes alike (no
//! hook on the write path, no full rebuild because another process wrote
//! one point). A graph with more than [`MAX_DEAD`] of its slots dead is
//! built again from scratch instead.
//!
//! # Never blocking a search on a build
//!
//! Up to [`INLINE_INSERTS`] insertions are made within the search that found
//! the view stale. More (a first build, a rebuild, a bulk upsert) are made
//! on a background thread; until that thread installs its view, searches of
//! the collection scan the mirror exactly, as without the index. One
//! reconciliation per collection runs at a time.
//!
//! # Memory
//!
//! A graph holds, per point, its own copy of the vector (4 bytes per
//! component), its links (up to `2 * hnsw_m` on the bottom layer, more for
//! the few points on upper layers, each link a reference-counted
//! allocation in hnsw_rs) and the book: about `4 * dimension + 2.6 KB` per
//! point with the default `hnsw_m = 16` (measured: see the crate README). It is not counted in
//! `vector_mirror_max_bytes`; a graph whose mirror was evicted is dropped at
//! the next index lookup.

use super::*;
use hnsw_rs::anndists::dist::Distance as AnnDistance;
use hnsw_rs::hnsw::Hnsw;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, Weak};

/// A slot whose point is no longer in the collection (or was overwritten).
const DEAD: u32 = u32::MAX;
/// At most this many insertions are made within a search.
const INLINE_INSERTS: usize = 64;
/// A graph with more than this fraction of dead slots is built again.
const MAX_DEAD: f64 = 0.25;
/// Layers of the graph (hnsw_rs caps it at 16).
const MAX_LAYERS: usize = 16;
/// Above this many points, a search that would ask the graph for half the
/// collection or more scans the mirror exactly instead (cheaper, and exact).
const WALK_ALL_BELOW: usize = 1024;

/// A distance as hnsw_rs needs it: smaller is closer, never negative, never
/// NaN. Each is a strictly increasing function of the collection's own
/// distance (so the graph ranks and prunes exactly as that distance would):
/// euclid and manhattan as they are, cosine as `1 - similarity`, dot as
/// `pi/2 - atan(dot)` (a dot product may be any real number).
#[derive(Debug, Clone, Copy)]
struct Kernel(Distance);

impl AnnDistance<f32> for Kernel {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        let s = self.0.score(va, vb);
        let d = if self.0 == Distance::Cosine {
            1.0 - s
        } else if self.0.higher_is_better() {
            (std::f64::consts::FRAC_PI_2 - f64::from(s).atan()) as f32
        } else {
            s
        };
        if d.is_nan() { f32::MAX } else { d.max(0.0) }
    }
}

/// One collection's HNSW graph.
struct Graph {
    hnsw: Hnsw<'static, f32, Kernel>,
    dimension: usize,
    distance: Distance,
    /// Changed only by the one reconciliation in progress.
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// Per slot: the rowid and the vector hash it was inserted for.
    slots: Vec<(i64, u64)>,
    /// Live rowids and their slots.
    by_rowid: HashMap<i64, u32>,
}

impl Graph {
    fn new(config: &IndexConfig, key: MirrorKey, points: usize) -> Graph {
        Graph {
            hnsw: Hnsw::new(
                config.m,
                points.max(1),
                MAX_LAYERS,
                config.ef_construction,
                Kernel(key.distance),
            ),
            dimension: key.dimension,
            distance: key.distance,
            book: Mutex::new(Book::default()),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A graph as seen through one mirror.
pub(crate) struct View {
    mirror: Weak<Mirror>,
    graph: Arc<Graph>,
    /// Per slot: the mirror position of its point, or [`DEAD`]. Slots added
    /// after this view was made are past its end: dead to it.
    positions: Vec<u32>,
    live: usize,
}

impl View {
    fn is_for(&self, m: &Arc<Mirror>) -> bool {
        std::ptr::eq(self.mirror.as_ptr(), Arc::as_ptr(m))
    }
}

/// What a reconciliation is to do.
struct Plan {
    graph: Arc<Graph>,
    positions: Vec<u32>,
    live: usize,
    /// Mirror positions to insert, with their vectors' hashes.
    inserts: Vec<(usize, u64)>,
    fresh: bool,
}

fn vector_hash(v: &[f32]) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x9e37_79b9).build_hasher();
    for x in v {
        h.write_u32(x.to_bits());
    }
    h.finish()
}

/// Compare `m` with `old`'s book (if it can be kept) and say what to insert.
fn plan(config: &IndexConfig, old: Option<Arc<Graph>>, m: &Mirror) -> Plan {
    let dim = m.key.dimension;
    let n = m.ids.len();
    if let Some(graph) = old.filter(|g| g.dimension == dim && g.distance == m.key.distance) {
        let mut book = graph.book();
        let mut positions = vec![DEAD; book.slots.len()];
        let mut inserts = Vec::new();
        let mut live = 0;
        for (i, v) in m.vectors.chunks_exact(dim).enumerate() {
            let h = vector_hash(v);
            match book.by_rowid.get(&m.rowids[i]) {
                Some(&s) if book.slots.get(s as usize).is_some_and(|e| e.1 == h) => {
                    positions[s as usize] = i as u32;
                    live += 1;
                }
                _ => inserts.push((i, h)),
            }
        }
        let slots = book.slots.len() + inserts.len();
        let dead = slots - live - inserts.len();
        if (dead as f64) <= MAX_DEAD * slots as f64 {
            book.by_rowid.retain(|_, s| positions[*s as usize] != DEAD);
            drop(book);
            return Plan {
                graph,
                positions,
                live,
                inserts,
                fresh: false,
            };
        }
    }
    Plan {
        graph: Arc::new(Graph::new(config, m.key, n)),
        positions: Vec::with_capacity(n),
        live: 0,
        inserts: m
            .vectors
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| (i, vector_hash(v)))
            .collect(),
        fresh: true,
    }
}

/// Make the plan's insertions and return the view of `m` they give.
fn apply(plan: Plan, m: &Arc<Mirror>) -> View {
    let Plan {
        graph,
        mut positions,
        mut live,
        inserts,
        ..
    } = plan;
    let dim = m.key.dimension;
    let mut batch = Vec::with_capacity(inserts.len());
    {
        let mut book = graph.book();
        for &(i, h) in &inserts {
            let slot = book.slots.len();
            let rowid = m.rowids[i];
            book.slots.push((rowid, h));
            book.by_rowid.insert(rowid, slot as u32);
            positions.push(i as u32);
            batch.push((&m.vectors[i * dim..(i + 1) * dim], slot));
        }
    }
    live += batch.len();
    if batch.len() > INLINE_INSERTS {
        graph.hnsw.parallel_insert_slice(&batch);
    } else {
        for (v, slot) in batch {
            graph.hnsw.insert_slice((v, slot));
        }
    }
    View {
        mirror: Arc::downgrade(m),
        graph,
        positions,
        live,
    }
}

/// The approximate indexes of one database.
pub(crate) struct Indexes {
    config: IndexConfig,
    registry: Mutex<Registry>,
    /// Searches answered through a graph (for tests and the curious).
    answered: AtomicU64,
    /// Graphs built from scratch.
    built: AtomicU64,
}

impl std::fmt::Debug for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexes")
            .field("config", &self.config)
            .field("answered", &self.answered)
            .field("built", &self.built)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Registry {
    slots: HashMap<String, Slot>,
    next_epoch: u64,
}

struct Slot {
    view: Option<Arc<View>>,
    /// Set while a reconciliation runs.
    busy: bool,
    /// Tells a reconciliation whether its collection was forgotten meanwhile.
    epoch: u64,
}

/// Clears a slot's `busy` when a reconciliation ends, however it ends.
struct Busy<'a> {
    indexes: &'a Indexes,
    name: &'a str,
    epoch: u64,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.indexes.registry().slots.get_mut(self.name)
            && slot.epoch == self.epoch
        {
            slot.busy = false;
        }
    }
}

impl Indexes {
    pub(crate) fn new(config: IndexConfig) -> Indexes {
        Indexes {
            config,
            registry: Mutex::new(Registry::default()),
            answered: AtomicU64::new(0),
            built: AtomicU64::new(0),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Searches answered through a graph so far.
    pub(crate) fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Graphs built from scratch so far.
    pub(crate) fn built(&self) -> u64 {
        self.built.load(Ordering::Relaxed)
    }

    /// Points (live and tombstones) in the graphs held now, and how many of
    /// those are live in their current views.
    pub(crate) fn points(&self) -> (u64, u64) {
        let reg = self.registry();
        reg.slots
            .values()
            .filter_map(|s| s.view.as_ref())
            .fold((0, 0), |(all, live), v| {
                (
                    all + v.graph.hnsw.get_nb_point() as u64,
                    live + v.live as u64,
                )
            })
    }

    /// Forget a dropped collection's graph.
    pub(crate) fn forget(&self, name: &str) {
        self.registry().slots.remove(name);
    }

    /// The view to search `m` through, if one is ready; otherwise start
    /// making one (in this call if it is small work, else on a thread) and
    /// return `None`, and the caller scans the mirror.
    pub(crate) fn view(self: &Arc<Self>, name: &str, m: &Arc<Mirror>) -> Option<Arc<View>> {
        let (old, epoch) = {
            let mut reg = self.registry();
            // Graphs of evicted mirrors go.
            reg.slots.retain(|n, s| {
                n == name || s.busy || s.view.as_ref().is_none_or(|v| v.mirror.strong_count() > 0)
            });
            if !reg.slots.contains_key(name) {
                let epoch = reg.next_epoch;
                reg.next_epoch += 1;
                let slot = Slot {
                    view: None,
                    busy: false,
                    epoch,
                };
                reg.slots.insert(name.to_owned(), slot);
            }
            let slot = reg.slots.get_mut(name)?;
            if let Some(v) = slot.view.as_ref().filter(|v| v.is_for(m)) {
                return Some(v.clone());
            }
            if m.ids.len() < self.config.min_points {
                slot.view = None;
                return None;
            }
            if slot.busy {
                return None;
            }
            slot.busy = true;
            (slot.view.as_ref().map(|v| v.graph.clone()), slot.epoch)
        };
        let busy = Busy {
            indexes: self,
            name,
            epoch,
        };
        let plan = plan(&self.config, old, m);
        if plan.fresh {
            self.built.fetch_add(1, Ordering::Relaxed);
        }
        if plan.inserts.len() <= INLINE_INSERTS {
            let view = Arc::new(apply(plan, m));
            self.install(name, epoch, view.clone());
            drop(busy);
            return Some(view);
        }
        let (this, owned, mirror) = (self.clone(), name.to_owned(), m.clone());
        let inserts = plan.inserts.len();
        tracing::debug!(
            target: "dbx",
            collection = name,
            points = mirror.ids.len(),
            inserts,
            fresh = plan.fresh,
            "dbx: building the HNSW index in the background; exact search until it is ready"
        );
        let spawned = std::thread::Builder::new()
            .name("dbx-hnsw".to_owned())
            .spawn(move || {
                let busy = Busy {
                    indexes: &this,
                    name: &owned,
                    epoch,
                };
                let view = Arc::new(apply(plan, &mirror));
                this.install(&owned, epoch, view);
                drop(busy);
                tracing::debug!(
                    target: "dbx",
                    collection = owned.as_str(),
                    inserts,
                    "dbx: HNSW index ready"
                );
            });
        match spawned {
            // The thread clears `busy` itself.
            Ok(_) => std::mem::forget(busy),
            Err(e) => tracing::warn!(
                target: "dbx",
                collection = name,
                error = %e,
                "dbx: could not start the HNSW build thread; searching exactly"
            ),
        }
        None
    }

    fn install(&self, name: &str, epoch: u64, view: Arc<View>) {
        if let Some(slot) = self.registry().slots.get_mut(name)
            && slot.epoch == epoch
        {
            slot.view = Some(view);
        }
    }

    /// The best `limit` points of `m` among the graph's nearest candidates,
    /// scored exactly; `false` (and nothing pushed) where an exact scan
    /// should answer instead. `ef`: the search's own candidate list
    /// ([`Search::hnsw_ef`](dbx_core::vector::Search::hnsw_ef)), else the
    /// URL's `hnsw_ef_search`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search(
        &self,
        name: &str,
        view: &View,
        m: &Mirror,
        query: &[f32],
        threshold: Option<f32>,
        ef: Option<usize>,
        top: &mut TopK,
    ) -> bool {
        let limit = top.limit;
        let ef_search = ef.unwrap_or(self.config.ef_search);
        let slots = view.positions.len().max(1);
        // Tombstones take places among the graph's answers: ask for more.
        let want = limit.saturating_mul(4).max(ef_search).saturating_mul(slots) / view.live.max(1);
        if view.live > WALK_ALL_BELOW && want.saturating_mul(2) >= view.live {
            return false;
        }
        let ef = want.max(ef_search);
        let found = view.graph.hnsw.search(query, want, ef);
        let (distance, dim) = (m.key.distance, m.key.dimension);
        for n in &found {
            let Some(&p) = view.positions.get(n.d_id) else {
                continue;
            };
            if p == DEAD {
                continue;
            }
            let i = p as usize;
            let score = distance.score(query, &m.vectors[i * dim..(i + 1) * dim]);
            let Some(key) = admissible(top, distance, threshold, score) else {
                continue;
            };
            let id = m.ids[i];
            if !top.admits(key, id) {
                continue;
            }
            top.push(Candidate {
                key,
                id,
                score,
                rowid: m.rowids[i],
                payload: None,
            });
        }
        self.answered.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target: "dbx",
            collection = name,
            vector_index = "hnsw",
            candidates = found.len(),
            "dbx: vector search answered through the HNSW index"
        );
        true
    }
}
