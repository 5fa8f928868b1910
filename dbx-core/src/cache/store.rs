//! The in-process tier (moka, bounded by entries and bytes), tag versions,
//! one load per key, stale-while-revalidate, and the link to the shared tier.

use super::tier::Tier;
use super::{CacheConfig, CacheStats, Payload, Resolved, SLOTS, Tag, TagKind};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::Kv;
use crate::shard::ShardedCounter;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// One cached result.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) payload: Payload,
    /// Its size as the weigher counts it (without the key).
    size: usize,
    loaded_at: Instant,
    ttl: Duration,
    swr: Duration,
    refreshing: AtomicBool,
}

type Flight = Shared<BoxFuture<'static, std::result::Result<Arc<Entry>, Arc<Error>>>>;

/// One cached read, as a handle describes it.
#[derive(Debug)]
pub(crate) struct Read<'a> {
    /// `db.operation.name` of the read (`sql.query`...).
    pub(crate) op: &'static str,
    /// The read's own key: what it asks, encoded.
    pub(crate) key: Vec<u8>,
    /// Whether it is a SQL read (dropped by any unknown SQL write).
    pub(crate) sql: bool,
    /// Tags dbx derived: tables, a key, a collection.
    pub(crate) tags: &'a [Tag],
    /// The policy, checked.
    pub(crate) policy: &'a Resolved,
}

/// Figures behind [`CacheStats`].
#[derive(Debug, Default)]
struct Counters {
    hits: ShardedCounter,
    stale_hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    evictions: Arc<AtomicU64>,
    invalidations: AtomicU64,
    tier_hits: AtomicU64,
    tier_misses: AtomicU64,
    tier_errors: AtomicU64,
}

/// The metric keys of one database's cache, built once.
struct Keys {
    hit: metrics::Key,
    stale: metrics::Key,
    miss: metrics::Key,
    bypass: metrics::Key,
    loads: metrics::Key,
    load_errors: metrics::Key,
    tier_errors: metrics::Key,
}

impl Keys {
    fn new(system: &'static str) -> Keys {
        let key = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![metrics::Label::from_static_parts("db.system.name", system)];
            if let Some((k, v)) = extra {
                labels.push(metrics::Label::from_static_parts(k, v));
            }
            metrics::Key::from_parts(name, labels)
        };
        let req = |r| key("dbx.client.cache.requests", Some(("dbx.cache.result", r)));
        Keys {
            hit: req("hit"),
            stale: req("stale"),
            miss: req("miss"),
            bypass: req("bypass"),
            loads: key("dbx.client.cache.loads", None),
            load_errors: key("dbx.client.cache.loads", Some(("error.type", "load"))),
            tier_errors: key("dbx.client.cache.tier.errors", None),
        }
    }
}

fn count(key: &metrics::Key) {
    static METADATA: metrics::Metadata<'static> =
        metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
    metrics::with_recorder(|r| r.register_counter(key, &METADATA)).increment(1);
}

/// The hasher of the cache's keys: rapidhash with a random seed (SipHash,
/// std's default, was a tenth of a hit's instructions, measured with
/// callgrind; a random seed keeps crafted parameters from colliding).
pub(crate) type Hasher = rapidhash::quality::RandomState;

/// The result cache of one database: `db.cache()?`.
///
/// See the [module docs](crate::cache) for what it caches and when it
/// drops entries.
pub struct Cache {
    l1: moka::sync::Cache<Box<[u8]>, Arc<Entry>, Hasher>,
    inflight: Mutex<HashMap<Box<[u8]>, Flight>>,
    slots: Box<[AtomicU64]>,
    config: CacheConfig,
    backend: &'static str,
    counters: Counters,
    keys: Keys,
    tier: OnceLock<Tier>,
    /// Names this cache in the threads' [`L0`]s (never reused).
    id: u64,
    /// The tags every entry, and every SQL entry, carries.
    all: Tag,
    all_sql: Tag,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend)
            .field("config", &self.config)
            .field("shared_tier", &self.tier.get().is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The same error again, for every reader of a shared load (the cause
/// chain stays with the first).
fn duplicate(e: &Error) -> Error {
    let mut d = Error::new(e.kind(), e.message().to_owned());
    if let Some(b) = e.backend() {
        d = d.with_backend(b);
    }
    if let Some(o) = e.operation() {
        d = d.with_operation(o);
    }
    if let Some(c) = e.code() {
        d = d.with_code(c.to_owned());
    }
    d.copy_flags_from(e)
}

impl Cache {
    /// A cache with `config`'s capacity, for the database of `backend`.
    pub(crate) fn new(backend: &'static str, config: CacheConfig) -> Arc<Cache> {
        let counters = Counters::default();
        let evictions = counters.evictions.clone();
        let system = backend;
        // Charge every entry at least max_bytes / max_entries, so the one
        // weighted capacity bounds both the bytes and the entries.
        let floor = (config.max_bytes / config.max_entries.max(1)).max(1);
        // moka hands the weigher `&K`, here `&Box<[u8]>`.
        #[allow(clippy::borrowed_box)]
        let l1 = moka::sync::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(move |k: &Box<[u8]>, e: &Arc<Entry>| {
                let size = (k.len() + 160 + e.size) as u64;
                u32::try_from(size.max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(Expiry)
            .eviction_listener(move |_, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    evictions.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("dbx.client.cache.evictions", "db.system.name" => system)
                        .increment(1);
                }
            })
            .build_with_hasher(Hasher::new());
        Arc::new(Cache {
            l1,
            inflight: Mutex::new(HashMap::new()),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            keys: Keys::new(backend),
            config,
            backend,
            counters,
            tier: OnceLock::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            all: Tag::new(TagKind::All, ""),
            all_sql: Tag::new(TagKind::AllSql, ""),
        })
    }

    /// The settings this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Add a shared second tier on `kv` (another database's key-value
    /// store, Redis typically), so the instances of a service that open
    /// the same database share results and invalidations. Once per cache;
    /// a second call is [`InvalidConfig`](ErrorKind::InvalidConfig).
    pub fn set_shared_tier(&self, kv: Kv) -> Result<()> {
        let tier = Tier::new(kv, &self.config);
        self.tier
            .set(tier)
            .map_err(|_| Error::invalid_config("this database's cache already has a shared tier"))
    }

    /// What the cache has done so far, and what it holds.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let stats = CacheStats {
            hits: c.hits.sum().max(0) as u64,
            stale_hits: n(&c.stale_hits),
            misses: n(&c.misses),
            bypasses: n(&c.bypasses),
            loads: n(&c.loads),
            load_errors: n(&c.load_errors),
            evictions: n(&c.evictions),
            invalidations: n(&c.invalidations),
            entries: self.l1.entry_count(),
            bytes: self.l1.weighted_size(),
            tier_hits: n(&c.tier_hits),
            tier_misses: n(&c.tier_misses),
            tier_errors: n(&c.tier_errors),
        };
        metrics::gauge!("dbx.client.cache.size", "db.system.name" => self.backend)
            .set(stats.bytes as f64);
        metrics::gauge!("dbx.client.cache.entries", "db.system.name" => self.backend)
            .set(stats.entries as f64);
        stats
    }

    /// Settle pending removals and evictions now (moka applies them
    /// lazily), so [`stats`](Cache::stats) shows exact figures.
    pub fn run_pending_tasks(&self) {
        self.l1.run_pending_tasks();
    }

    /// Drop every entry tagged `tag` by a [`CachePolicy`](super::CachePolicy).
    pub async fn invalidate_tag(&self, tag: &str) {
        self.invalidate(&[Tag::new(TagKind::User, tag)]).await;
    }

    /// Drop every SQL result that reads `table` (compared case-insensitively;
    /// a qualified name by its last part).
    pub async fn invalidate_table(&self, table: &str) {
        let name = table.rsplit('.').next().unwrap_or(table);
        let name = name.trim_matches(|c| c == '"' || c == '`').to_lowercase();
        self.invalidate(&[Tag::new(TagKind::Table, &name)]).await;
    }

    /// Drop the cached gets of the key-value `key`.
    pub async fn invalidate_key(&self, key: &str) {
        self.invalidate(&[Tag::new(TagKind::Key, key)]).await;
    }

    /// Drop every entry of this database.
    pub async fn invalidate_all(&self) {
        self.invalidate(&[Tag::new(TagKind::All, "")]).await;
        self.l1.invalidate_all();
    }

    /// Bump the versions of `tags` here and in the shared tier.
    pub(crate) async fn invalidate(&self, tags: &[Tag]) {
        if tags.is_empty() {
            return;
        }
        for t in tags {
            self.slots[t.slot as usize].fetch_add(1, Ordering::AcqRel);
        }
        self.counters
            .invalidations
            .fetch_add(tags.len() as u64, Ordering::Relaxed);
        if let Some(tier) = self.tier.get()
            && let Err(e) = tier.bump(tags).await
        {
            self.tier_failed(&e, "invalidate");
        }
    }

    fn tier_failed(&self, e: &Error, what: &str) {
        if e.code() == Some(super::tier::RESTING) {
            // Resting after a failure: counted once, when it failed.
            return;
        }
        self.counters.tier_errors.fetch_add(1, Ordering::Relaxed);
        count(&self.keys.tier_errors);
        tracing::debug!(target: "dbx", system = self.backend, error = %e, "dbx: the cache's shared tier failed to {what}; going to the database");
    }

    /// Count a read that a cached handle ran uncached.
    pub(crate) fn bypass(&self) {
        self.counters.bypasses.fetch_add(1, Ordering::Relaxed);
        count(&self.keys.bypass);
    }

    /// Serve `read` from the cache, or load it once with `load` (whose
    /// future must own what it uses: it may outlive the caller, finishing
    /// for the readers that joined it or as a background refresh), and
    /// answer with `view` of the result (`None`: the entry holds another
    /// kind of result).
    ///
    /// Without a shared tier a hit is answered without awaiting anything,
    /// and a hit on an entry this thread read recently without writing to
    /// any memory another thread reads (see [`L0`]).
    pub(crate) async fn read<F, V, T>(
        self: &Arc<Self>,
        read: Read<'_>,
        load: F,
        view: V,
    ) -> Result<T>
    where
        F: FnOnce() -> BoxFuture<'static, Result<Payload>>,
        V: FnOnce(&Payload) -> Option<T>,
    {
        let span = tracing::info_span!(
            target: "dbx",
            "dbx.cache",
            db.system.name = self.backend,
            db.operation.name = read.op,
            dbx.cache.result = tracing::field::Empty,
        );
        let op = read.op;
        let sql = read.sql.then_some(&self.all_sql);
        let tags = || {
            std::iter::once(&self.all)
                .chain(sql)
                .chain(read.tags)
                .chain(read.policy.tags.iter())
        };
        let base_len = read.key.len();
        let mut key = read.key;
        key.reserve(8 * (2 + read.tags.len() + read.policy.tags.len()));
        for t in tags() {
            let v = self.slots[t.slot as usize].load(Ordering::Acquire);
            key.extend_from_slice(&v.to_le_bytes());
        }
        let apply = |view: V, e: &Entry| {
            view(&e.payload).ok_or_else(|| {
                Error::new(
                    ErrorKind::Other,
                    "the cache holds another kind of result for this read",
                )
                .with_backend(self.backend)
                .with_operation(op)
            })
        };
        let mut shared = None;
        if let Some(tier) = self.tier.get() {
            let tokens = tier.tokens(tags()).instrument(span.clone()).await;
            match tokens {
                Ok(tokens) => {
                    let local = key.len();
                    for t in &tokens {
                        key.extend_from_slice(&t.to_le_bytes());
                    }
                    shared = Some(tier.entry_key(&key[..base_len], &tokens, &key[base_len..local]));
                }
                Err(e) => {
                    // Versions unknown: nothing cached can be trusted.
                    self.tier_failed(&e, "read versions");
                    span.record("dbx.cache.result", "bypass");
                    self.bypass();
                    key.push(0xff);
                    let flight = {
                        let _in = span.enter();
                        self.start(key.into(), base_len, load, read.policy, None, None, false)
                    };
                    let entry = flight.instrument(span).await.map_err(|e| duplicate(&e))?;
                    return apply(view, &entry);
                }
            }
        }
        let flight = {
            let _in = span.enter();
            let mut view = Some(view);
            if let Some(t) = L0::get(self.id, &key, &mut view) {
                self.counters.hits.add(1);
                count(&self.keys.hit);
                span.record("dbx.cache.result", "hit");
                return t.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Other,
                        "the cache holds another kind of result for this read",
                    )
                    .with_backend(self.backend)
                    .with_operation(op)
                });
            }
            let Some(view) = view else {
                return Err(Error::new(ErrorKind::Other, "the cache lost a read's view"));
            };
            match self.lookup(&key, base_len, load, read.policy, shared, &span) {
                Ok(entry) => {
                    L0::put(self.id, key, &entry);
                    return apply(view, &entry);
                }
                Err(flight) => (flight, view),
            }
        };
        let (flight, view) = flight;
        let entry = flight.instrument(span).await.map_err(|e| duplicate(&e))?;
        apply(view, &entry)
    }

    /// The entry of `key` if fresh or stale (a stale one starts a refresh),
    /// or else the load that will fill it.
    #[allow(clippy::too_many_arguments)]
    fn lookup<F>(
        self: &Arc<Self>,
        key: &[u8],
        base_len: usize,
        load: F,
        policy: &Resolved,
        shared: Option<String>,
        span: &tracing::Span,
    ) -> std::result::Result<Arc<Entry>, Flight>
    where
        F: FnOnce() -> BoxFuture<'static, Result<Payload>>,
    {
        if let Some(e) = self.l1.get(key) {
            let age = Instant::now().saturating_duration_since(e.loaded_at);
            if age < e.ttl {
                self.counters.hits.add(1);
                count(&self.keys.hit);
                span.record("dbx.cache.result", "hit");
                return Ok(e);
            }
            if age < e.ttl.saturating_add(e.swr) {
                self.counters.stale_hits.fetch_add(1, Ordering::Relaxed);
                count(&self.keys.stale);
                span.record("dbx.cache.result", "stale");
                if !e.refreshing.swap(true, Ordering::AcqRel) {
                    // One refresh; readers go on with the stale value.
                    drop(self.start(
                        key.into(),
                        base_len,
                        load,
                        policy,
                        shared,
                        Some(e.clone()),
                        true,
                    ));
                }
                return Ok(e);
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        count(&self.keys.miss);
        span.record("dbx.cache.result", "miss");
        Err(self.start(key.into(), base_len, load, policy, shared, None, true))
    }

    /// The load of `key`: the one in flight, or a new one in a task of
    /// its own (so a reader that gives up does not cancel it for the others).
    #[allow(clippy::too_many_arguments)]
    fn start<F>(
        self: &Arc<Self>,
        key: Box<[u8]>,
        base_len: usize,
        load: F,
        policy: &Resolved,
        shared: Option<String>,
        stale: Option<Arc<Entry>>,
        keep: bool,
    ) -> Flight
    where
        F: FnOnce() -> BoxFuture<'static, Result<Payload>>,
    {
        let mut inflight = lock(&self.inflight);
        if let Some(f) = inflight.get(&key) {
            return f.clone();
        }
        // A load that ended between the caller's look and this lock has
        // stored its entry (it stores before it leaves the map): use it.
        if keep
            && stale.is_none()
            && let Some(e) = self.l1.get(&key)
            && Instant::now().saturating_duration_since(e.loaded_at) < e.ttl
        {
            return futures_util::future::ready(Ok(e)).boxed().shared();
        }
        let fut = load();
        let this = self.clone();
        let (ttl, swr) = (policy.ttl, policy.swr);
        let k = key.clone();
        let task = tokio::spawn(
            async move {
                // Leaves the map when the load ends, also if it panics (a
                // key left there would hand every later reader the panic).
                let _done = Done(&this, &k);
                this.fill(&k, base_len, fut, ttl, swr, shared, stale, keep)
                    .await
            }
            .in_current_span(),
        );
        let flight = async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(Arc::new(Error::new(
                    ErrorKind::Other,
                    format!("the cache's load task ended abnormally: {e}"),
                ))),
            }
        }
        .boxed()
        .shared();
        inflight.insert(key, flight.clone());
        flight
    }

    #[allow(clippy::too_many_arguments)]
    async fn fill(
        self: &Arc<Self>,
        key: &[u8],
        base_len: usize,
        load: BoxFuture<'static, Result<Payload>>,
        ttl: Duration,
        swr: Duration,
        shared: Option<String>,
        stale: Option<Arc<Entry>>,
        keep: bool,
    ) -> std::result::Result<Arc<Entry>, Arc<Error>> {
        let tier = self.tier.get().filter(|_| keep);
        if let (Some(tier), Some(shared), None) = (tier, &shared, &stale) {
            match tier.get(shared, &key[..base_len], ttl, swr).await {
                Ok(Some((payload, age))) => {
                    self.counters.tier_hits.fetch_add(1, Ordering::Relaxed);
                    let loaded_at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                    let entry = Arc::new(Entry::new(payload, loaded_at, ttl, swr));
                    self.l1.insert(key.into(), entry.clone());
                    return Ok(entry);
                }
                Ok(None) => {
                    self.counters.tier_misses.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.tier_failed(&e, "read"),
            }
        }
        let started = Instant::now();
        self.counters.loads.fetch_add(1, Ordering::Relaxed);
        count(&self.keys.loads);
        match load.await {
            Ok(payload) => {
                let entry = Arc::new(Entry::new(payload, started, ttl, swr));
                if keep {
                    self.l1.insert(key.into(), entry.clone());
                    if let (Some(tier), Some(shared)) = (tier, shared) {
                        let (tier, entry) = (tier.clone(), entry.clone());
                        let base = key[..base_len].to_vec();
                        let this = self.clone();
                        tokio::spawn(
                            async move {
                                if let Err(e) =
                                    tier.put(&shared, &base, &entry.payload, ttl, swr).await
                                {
                                    this.tier_failed(&e, "store a result");
                                }
                            }
                            .in_current_span(),
                        );
                    }
                }
                Ok(entry)
            }
            Err(e) => {
                self.counters.load_errors.fetch_add(1, Ordering::Relaxed);
                count(&self.keys.load_errors);
                if let Some(old) = stale {
                    // Let a later read try again.
                    old.refreshing.store(false, Ordering::Release);
                }
                Err(Arc::new(e))
            }
        }
    }
}

/// Removes a finished load from the map of loads in flight.
struct Done<'a>(&'a Cache, &'a [u8]);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        lock(&self.0.inflight).remove(self.1);
    }
}

impl Entry {
    fn new(payload: Payload, loaded_at: Instant, ttl: Duration, swr: Duration) -> Entry {
        Entry {
            size: payload.approx_size(),
            payload,
            loaded_at,
            ttl,
            swr,
            refreshing: AtomicBool::new(false),
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Each thread's last few fresh hits, by key: a hot key read again on the
/// same thread is answered from here without touching memory other threads
/// write (moka's read log and the entry's reference count), which two cores
/// reading one hot key otherwise bounce between them (measured: 50 tasks on
/// 2 threads alternated between 200 and 500 ns per hit). Set-associative,
/// [`L0_SLOTS`] slots in sets of [`L0_WAYS`] (a direct-mapped front let two
/// hot keys that shared a slot evict each other on every read: with 8 hot
/// keys that happened to about a third of key sets); only entries up to
/// [`L0_MAX_SIZE`] bytes, so it holds at most that much per slot and thread
/// past the cache's own bounds. Versions are in the key and freshness is
/// checked on every read, so it serves nothing the cache itself would not.
struct L0;

const L0_SLOTS: usize = 64;
const L0_WAYS: usize = 4;
const L0_MAX_SIZE: usize = 4096;

type L0Slot = Option<(u64, Box<[u8]>, Arc<Entry>)>;

thread_local! {
    static L0_SLOTS_OF_THREAD: std::cell::RefCell<Vec<L0Slot>> =
        std::cell::RefCell::new((0..L0_SLOTS).map(|_| None).collect());
}

/// The first slot of `key`'s set.
fn l0_set(cache: u64, key: &[u8]) -> usize {
    // The whole key: reads of one statement differ only in their parameters.
    // A fixed hash is fine: a collision only costs a miss here.
    let h = rapidhash::v3::rapidhash_v3(key) ^ cache.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 40) as usize % (L0_SLOTS / L0_WAYS)) * L0_WAYS
}

impl L0 {
    /// `view` of this thread's fresh entry of `key`, if it has one
    /// (`view` is taken only then).
    fn get<V, T>(cache: u64, key: &[u8], view: &mut Option<V>) -> Option<Option<T>>
    where
        V: FnOnce(&Payload) -> Option<T>,
    {
        L0_SLOTS_OF_THREAD
            .try_with(|slots| {
                let slots = slots.borrow();
                let set = l0_set(cache, key);
                let (_, _, e) = slots[set..set + L0_WAYS]
                    .iter()
                    .flatten()
                    .find(|(c, k, _)| *c == cache && **k == *key)?;
                if Instant::now().saturating_duration_since(e.loaded_at) >= e.ttl {
                    return None;
                }
                Some(view.take()?(&e.payload))
            })
            .ok()
            .flatten()
    }

    /// Puts `key`'s entry first in its set; the set's last (least recently
    /// put) entry, or an older entry of the same key, makes room.
    fn put(cache: u64, key: Vec<u8>, entry: &Arc<Entry>) {
        if entry.size > L0_MAX_SIZE {
            return;
        }
        let _ = L0_SLOTS_OF_THREAD.try_with(|slots| {
            if let Ok(mut slots) = slots.try_borrow_mut() {
                let set = l0_set(cache, &key);
                let ways = &mut slots[set..set + L0_WAYS];
                let room = ways
                    .iter()
                    .position(|w| matches!(w, Some((c, k, _)) if *c == cache && **k == *key))
                    .unwrap_or(L0_WAYS - 1);
                ways[..=room].rotate_right(1);
                ways[0] = Some((cache, key.into_boxed_slice(), entry.clone()));
            }
        });
    }
}

/// Frees an entry's memory once its TTL and stale window have passed
/// (by the wall clock; freshness itself is judged by Tokio's clock).
struct Expiry;

impl moka::Expiry<Box<[u8]>, Arc<Entry>> for Expiry {
    fn expire_after_create(
        &self,
        _: &Box<[u8]>,
        e: &Arc<Entry>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(e.ttl.saturating_add(e.swr))
    }

    fn expire_after_update(
        &self,
        _: &Box<[u8]>,
        e: &Arc<Entry>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(e.ttl.saturating_add(e.swr))
    }
}

#[cfg(test)]
mod l0_tests {
    use super::*;

    fn entry(n: u64) -> Arc<Entry> {
        Arc::new(Entry::new(
            Payload::Count(n),
            Instant::now(),
            Duration::from_secs(60),
            Duration::ZERO,
        ))
    }

    fn read(cache: u64, key: &[u8]) -> Option<u64> {
        let mut view = Some(|p: &Payload| match p {
            Payload::Count(n) => Some(*n),
            _ => None,
        });
        L0::get(cache, key, &mut view).flatten()
    }

    /// Keys of one cache that fall in one set: up to L0_WAYS of them are held
    /// side by side, each answering with its own entry, and one more evicts the
    /// least recently put.
    #[test]
    fn keys_sharing_a_set_do_not_evict_each_other_until_the_set_is_full() {
        let cache = u64::MAX - 7;
        let set = l0_set(cache, b"k0");
        let keys: Vec<Vec<u8>> = (0u32..)
            .map(|i| format!("k{i}").into_bytes())
            .filter(|k| l0_set(cache, k) == set)
            .take(L0_WAYS + 1)
            .collect();
        for (n, k) in keys[..L0_WAYS].iter().enumerate() {
            L0::put(cache, k.clone(), &entry(n as u64));
        }
        for (n, k) in keys[..L0_WAYS].iter().enumerate() {
            assert_eq!(read(cache, k), Some(n as u64), "key {n}");
        }
        // Putting a key again keeps the others and replaces its own entry.
        L0::put(cache, keys[0].clone(), &entry(100));
        assert_eq!(read(cache, &keys[0]), Some(100));
        assert_eq!(read(cache, &keys[1]), Some(1));
        // A fifth key evicts the least recently put one (keys[1] now).
        L0::put(cache, keys[L0_WAYS].clone(), &entry(200));
        assert_eq!(read(cache, &keys[L0_WAYS]), Some(200));
        assert_eq!(read(cache, &keys[1]), None);
        assert_eq!(read(cache, &keys[0]), Some(100));
        // Another cache never sees these entries.
        assert_eq!(read(cache - 1, &keys[0]), None);
    }
}
