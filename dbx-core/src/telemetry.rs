//! Observability: `tracing` spans, `metrics` facade calls and the
//! [`Stats`] snapshot, named by the OpenTelemetry database conventions.
//!
//! dbx never installs a tracing subscriber or a metrics recorder; with none
//! installed, a span is a disabled callsite check and a metric a no-op call.
//!
//! # Spans
//!
//! One span per logical operation, covering all its attempts, named
//! `db.operation`, target `dbx`, level INFO, with the fields
//! `db.system.name`, `db.operation.name`, `db.namespace`, `server.address`,
//! `server.port`, `db.query.text` (SQL with placeholders, never parameter
//! values, only with the `log_statements=true` parameter), and at the end
//! `error.type` (an [`ErrorKind`] name) on failure and `dbx.attempts`.
//! Events: a DEBUG event per retry, WARN when the circuit breaker opens,
//! INFO when it closes, WARN when a pool or concurrency wait times out.
//!
//! # Metrics
//!
//! | name | type | unit | labels |
//! |------|------|------|--------|
//! | `db.client.operation.duration` | histogram | s | `db.system.name`, `db.operation.name`, `error.type` (failures only) |
//! | `db.client.connection.count` | gauge | {connection} | `db.system.name`, `db.client.connection.state` = `idle` \| `used` |
//! | `db.client.connection.max` | gauge | {connection} | `db.system.name` |
//! | `db.client.connection.pending_requests` | gauge | {request} | `db.system.name` |
//! | `db.client.connection.timeouts` | counter | {timeout} | `db.system.name` |
//! | `dbx.client.retries` | counter | {retry} | `db.system.name`, `db.operation.name` |
//! | `dbx.client.breaker.transitions` | counter | {transition} | `db.system.name`, `state` = `open` \| `closed` |
//! | `dbx.client.breaker.state` | gauge | 1 = open | `db.system.name` |
//! | `dbx.client.cache.requests` | counter | {request} | `db.system.name`, `dbx.cache.result` = `hit` \| `stale` \| `miss` \| `bypass` |
//! | `dbx.client.cache.loads` | counter | {load} | `db.system.name`, `error.type` (failures only) |
//! | `dbx.client.cache.evictions` | counter | {entry} | `db.system.name` |
//! | `dbx.client.cache.tier.errors` | counter | {error} | `db.system.name` |
//! | `dbx.client.cache.size` | gauge | By | `db.system.name` |
//! | `dbx.client.cache.entries` | gauge | {entry} | `db.system.name` |
//!
//! The cache rows exist with the `cache` feature (see [`crate::cache`]).
//!
//! Connection gauges are refreshed at most once a second, by the operations
//! themselves (no background task). `db.client.connection.wait_time` is not
//! reported yet: pools do not expose their wait times to the core.

use crate::error::{Error, ErrorKind};
use crate::shard::{SHARDS, shard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Every [`ErrorKind`], in the order of [`Stats::errors_by_kind`].
pub const ERROR_KINDS: [ErrorKind; 16] = [
    ErrorKind::InvalidConfig,
    ErrorKind::InvalidInput,
    ErrorKind::Unsupported,
    ErrorKind::Connect,
    ErrorKind::Auth,
    ErrorKind::Timeout,
    ErrorKind::PoolTimeout,
    ErrorKind::CircuitOpen,
    ErrorKind::NotFound,
    ErrorKind::Query,
    ErrorKind::Conflict,
    ErrorKind::WrongType,
    ErrorKind::OutOfRange,
    ErrorKind::Decode,
    ErrorKind::Closed,
    ErrorKind::Other,
];

fn kind_index(kind: ErrorKind) -> usize {
    ERROR_KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(ERROR_KINDS.len() - 1)
}

/// Sub-buckets per power of two in the latency histogram.
const SUB: u32 = 4;
/// Buckets: 1 µs up to about 2^40 µs (12 days).
const BUCKETS: usize = 41 * SUB as usize;

/// A lock-free log-linear latency histogram (relative error below 19%),
/// one set of buckets per thread shard so recording never contends.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    shards: Box<[Box<[AtomicU64]>]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            shards: (0..SHARDS)
                .map(|_| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect())
                .collect(),
        }
    }
}

impl LatencyHistogram {
    fn index(d: Duration) -> usize {
        let us = (d.as_micros() as u64).max(1);
        let exp = 63 - us.leading_zeros();
        let sub = if exp >= 2 {
            ((us >> (exp - 2)) & 0b11) as u32
        } else {
            ((us << (2 - exp)) & 0b11) as u32
        };
        ((exp * SUB + sub) as usize).min(BUCKETS - 1)
    }

    /// Upper bound of a bucket.
    fn bound(i: usize) -> Duration {
        let exp = i as u32 / SUB;
        let sub = u64::from(i as u32 % SUB);
        let base = 1u64 << exp;
        let step = (base / u64::from(SUB)).max(1);
        Duration::from_micros(base + (sub + 1) * step)
    }

    pub(crate) fn record(&self, d: Duration) {
        self.shards[shard()][Self::index(d)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.shards
            .iter()
            .flat_map(|s| s.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn percentiles(&self, ps: &[f64]) -> Vec<Option<Duration>> {
        let counts: Vec<u64> = (0..BUCKETS)
            .map(|i| {
                self.shards
                    .iter()
                    .map(|s| s[i].load(Ordering::Relaxed))
                    .sum()
            })
            .collect();
        let total: u64 = counts.iter().sum();
        ps.iter()
            .map(|p| {
                if total == 0 {
                    return None;
                }
                let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                counts.iter().enumerate().find_map(|(i, c)| {
                    seen += c;
                    (seen >= rank).then(|| Self::bound(i))
                })
            })
            .collect()
    }
}

/// Counters behind [`Stats`]. Completed operations are counted by the
/// latency histogram (one entry each): no counter of their own to bump.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) errors: [AtomicU64; ERROR_KINDS.len()],
    pub(crate) latency: LatencyHistogram,
    last_gauges_ms: AtomicU64,
}

impl Counters {
    pub(crate) fn record(&self, elapsed: Duration, error: Option<ErrorKind>) {
        self.latency.record(elapsed);
        if let Some(kind) = error {
            self.record_error(kind);
        }
    }

    /// Count an error alone (an operation refused before it ran).
    pub(crate) fn record_error(&self, kind: ErrorKind) {
        self.errors[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the connection gauges are due (at most once a second).
    pub(crate) fn gauges_due(&self, now_ms: u64) -> bool {
        let last = self.last_gauges_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= 1000
            && self
                .last_gauges_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// The `db.client.operation.duration` key of one operation (its
/// `db.system.name` and `db.operation.name` labels), built once and kept for
/// the whole process. Building a `metrics::Key` hashes its name and labels,
/// and the `metrics` macros also allocate a label vector per call for
/// non-literal label values, even with no recorder installed: measured with
/// callgrind that was about 200 instructions of a ~2000-instruction
/// operation. Both names are `&'static str` from a fixed set, so the
/// interned keys are few.
fn op_key(system: &'static str, op: &'static str) -> &'static metrics::Key {
    type Entry = (&'static str, &'static str, &'static metrics::Key);
    fn intern(system: &'static str, op: &'static str) -> &'static metrics::Key {
        static ALL: std::sync::Mutex<Vec<Entry>> = std::sync::Mutex::new(Vec::new());
        let mut all = ALL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, _, k)) = all.iter().find(|(s, o, _)| *s == system && *o == op) {
            return k;
        }
        let labels: &'static [metrics::Label] = Box::leak(Box::new([
            metrics::Label::from_static_parts("db.system.name", system),
            metrics::Label::from_static_parts("db.operation.name", op),
        ]));
        let key: &'static metrics::Key = Box::leak(Box::new(metrics::Key::from_static_labels(
            "db.client.operation.duration",
            labels,
        )));
        all.push((system, op, key));
        key
    }
    thread_local! {
        static SEEN: std::cell::RefCell<Vec<Entry>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SEEN.with(|seen| {
        let found = seen
            .borrow()
            .iter()
            .find(|(s, o, _)| std::ptr::eq(*s, system) && std::ptr::eq(*o, op))
            .map(|(_, _, k)| *k);
        found.unwrap_or_else(|| {
            let k = intern(system, op);
            seen.borrow_mut().push((system, op, k));
            k
        })
    })
}

/// Record a successful operation's duration as `db.client.operation.duration`.
pub(crate) fn record_success(system: &'static str, op: &'static str, seconds: f64) {
    static METADATA: metrics::Metadata<'static> =
        metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
    let key = op_key(system, op);
    metrics::with_recorder(|r| r.register_histogram(key, &METADATA)).record(seconds);
}

/// Publish the pool figures as OpenTelemetry connection gauges.
pub(crate) fn publish_pool(system: &'static str, pool: &PoolStatus) {
    metrics::gauge!("db.client.connection.count", "db.system.name" => system, "db.client.connection.state" => "idle")
        .set(pool.idle as f64);
    metrics::gauge!("db.client.connection.count", "db.system.name" => system, "db.client.connection.state" => "used")
        .set(pool.in_use as f64);
    metrics::gauge!("db.client.connection.max", "db.system.name" => system)
        .set(pool.max_size as f64);
    metrics::gauge!("db.client.connection.pending_requests", "db.system.name" => system)
        .set(pool.waiting as f64);
}

/// Latency percentiles of completed operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// Median.
    pub p50: Option<Duration>,
    /// 90th percentile.
    pub p90: Option<Duration>,
    /// 99th percentile.
    pub p99: Option<Duration>,
}

/// A snapshot of one database's activity, for users without a metrics stack:
/// `db.stats()`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Backend name.
    pub backend: &'static str,
    /// Logical operations completed (each counts once, whatever its retries).
    pub operations: u64,
    /// Failed operations, by kind (only kinds that occurred).
    pub errors_by_kind: Vec<(ErrorKind, u64)>,
    /// Retries made.
    pub retries: u64,
    /// Operations in flight now.
    pub in_flight: usize,
    /// Circuit breaker state.
    pub breaker: crate::BreakerState,
    /// Times the breaker opened.
    pub breaker_opened: u64,
    /// Pool figures, where the backend pools connections.
    pub pool: Option<PoolStatus>,
    /// Latency percentiles (log-bucketed: upper bounds, within 19%).
    pub latency: Latency,
    /// Each server of a multi-server topology as the client sees it now
    /// (empty for one server).
    pub nodes: Vec<crate::driver::NodeStatus>,
    /// The result cache's figures, when it is on.
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub cache: Option<crate::cache::CacheStats>,
}

impl Stats {
    /// Failed operations of all kinds.
    pub fn errors(&self) -> u64 {
        self.errors_by_kind.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_bound_their_values() {
        for us in [
            1u64,
            2,
            3,
            5,
            7,
            100,
            999,
            1000,
            1001,
            65_535,
            1_000_000,
            123_456_789,
        ] {
            let d = Duration::from_micros(us);
            let i = LatencyHistogram::index(d);
            let bound = LatencyHistogram::bound(i);
            assert!(bound >= d, "{us}us -> bucket {i} bound {bound:?}");
            assert!(
                bound.as_micros() as f64 <= us as f64 * 1.26 + 2.0,
                "{us}us -> {bound:?}"
            );
        }
    }

    /// A recorder that remembers which histograms were recorded, with labels.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);

    struct Sink;
    impl metrics::HistogramFn for Sink {
        fn record(&self, _: f64) {}
    }

    impl metrics::Recorder for Seen {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::noop()
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", key.name(), labels.join(",")));
            metrics::Histogram::from_arc(std::sync::Arc::new(Sink))
        }
    }

    #[test]
    fn success_durations_carry_both_labels_on_every_thread() {
        let seen = Seen::default();
        metrics::with_local_recorder(&seen, || {
            record_success("sqlite", "kv.get", 0.001);
            record_success("sqlite", "kv.get", 0.002);
            record_success("redis", "kv.set", 0.001);
        });
        std::thread::scope(|s| {
            s.spawn(|| {
                metrics::with_local_recorder(&seen, || record_success("sqlite", "kv.get", 0.1))
            });
        });
        let got = seen.0.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                "db.client.operation.duration db.system.name=sqlite,db.operation.name=kv.get",
                "db.client.operation.duration db.system.name=sqlite,db.operation.name=kv.get",
                "db.client.operation.duration db.system.name=redis,db.operation.name=kv.set",
                "db.client.operation.duration db.system.name=sqlite,db.operation.name=kv.get",
            ]
        );
    }

    #[test]
    fn percentiles() {
        let h = LatencyHistogram::default();
        assert_eq!(h.percentiles(&[0.5]), vec![None]);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p = h.percentiles(&[0.5, 0.9, 0.99]);
        let within = |got: Option<Duration>, want_ms: u64| {
            let got = got.unwrap().as_secs_f64() * 1000.0;
            got >= want_ms as f64 && got <= want_ms as f64 * 1.26
        };
        assert!(within(p[0], 50), "{p:?}");
        assert!(within(p[1], 90), "{p:?}");
        assert!(within(p[2], 99), "{p:?}");
    }
}

/// What a pool holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Most connections the pool may open.
    pub max_size: usize,
    /// Connections open now (idle and in use).
    pub size: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out by operations.
    pub in_use: usize,
    /// Operations waiting for a connection.
    pub waiting: usize,
}

impl PoolStatus {
    /// A status snapshot.
    pub fn new(max_size: usize, size: usize, idle: usize, in_use: usize, waiting: usize) -> Self {
        PoolStatus {
            max_size,
            size,
            idle,
            in_use,
            waiting,
        }
    }
}

/// Record one finished operation: the span's error fields, the duration
/// histogram, and a warning for pool timeouts.
pub(crate) fn record_operation(
    backend: &'static str,
    op: &'static str,
    span: &tracing::Span,
    elapsed: std::time::Duration,
    error: Option<&Error>,
) {
    match error {
        None => record_success(backend, op, elapsed.as_secs_f64()),
        Some(e) => {
            span.record("error.type", e.kind().as_str());
            if e.attempts() > 1 {
                span.record("dbx.attempts", e.attempts());
            }
            metrics::histogram!(
                "db.client.operation.duration",
                "db.system.name" => backend,
                "db.operation.name" => op,
                "error.type" => e.kind().as_str()
            )
            .record(elapsed.as_secs_f64());
            if e.kind() == ErrorKind::PoolTimeout {
                metrics::counter!("db.client.connection.timeouts", "db.system.name" => backend)
                    .increment(1);
                tracing::warn!(target: "dbx", parent: span, system = backend, error = %e, "dbx: no connection or slot became free in time");
            }
        }
    }
}

/// Publish the connection gauges (when the backend has a pool) and the
/// breaker gauge.
pub(crate) fn publish_gauges(backend: &'static str, pool: Option<&PoolStatus>, breaker_open: bool) {
    if let Some(pool) = pool {
        publish_pool(backend, pool);
    }
    metrics::gauge!("dbx.client.breaker.state", "db.system.name" => backend).set(if breaker_open {
        1.0
    } else {
        0.0
    });
}
