//! [`Database`]: one connected database with its capabilities and policy, and
//! the [`Backend`] trait a driver's connection implements.

use crate::document::{Docs, DocumentStore};
use crate::kv::{KeyValueStore, Kv};
use crate::policy::breaker_pass::{Outcome, Pass};
use crate::policy::{Breaker, BreakerState, ConcurrencyLimit, Policy, RateLimit, RetryBudget};
use crate::sql::{Sql, SqlDatabase};
use crate::telemetry::{Counters, Latency, Stats, publish_pool, record_success};
use crate::vector::{VectorStore, Vectors};
use crate::{ConnectOptions, Error, ErrorKind, Result};
use async_trait::async_trait;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

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

/// The result of [`Database::health`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Health {
    /// Backend name (`"sqlite"`...).
    pub backend: &'static str,
    /// Time of the round trip.
    pub latency: Duration,
    /// Pool figures, where the backend has a pool.
    pub pool: Option<PoolStatus>,
    /// Where the circuit breaker stands.
    pub breaker: BreakerState,
}

/// A connected database, as a driver implements it: its capabilities,
/// a health probe, its pool and shutdown.
///
/// `Backend` has `Any` as a supertrait, so a driver's own type can be reached
/// from a [`Database`] with [`Database::backend_as`] for backend-specific
/// escape hatches (raw commands and the like).
#[async_trait]
pub trait Backend: std::any::Any + Send + Sync + fmt::Debug + 'static {
    /// Backend name, as in `db.system.name` (`"sqlite"`, `"redis"`, `"postgresql"`...).
    fn name(&self) -> &'static str;
    /// The SQL capability, if offered.
    fn sql(&self) -> Option<Arc<dyn SqlDatabase>> {
        None
    }
    /// The key-value capability, if offered.
    fn kv(&self) -> Option<Arc<dyn KeyValueStore>> {
        None
    }
    /// The document capability, if offered.
    fn documents(&self) -> Option<Arc<dyn DocumentStore>> {
        None
    }
    /// The vector capability, if offered.
    fn vectors(&self) -> Option<Arc<dyn VectorStore>> {
        None
    }
    /// One real round trip to the database.
    async fn ping(&self) -> Result<()>;
    /// Close the pools; later operations fail.
    async fn close(&self);
    /// Pool figures, if the backend pools connections.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
    /// Whether the backend enforces the operation timeout itself (SQLite
    /// interrupts a running statement at its deadline), so the core need not
    /// wrap each call in a timer.
    fn enforces_timeouts(&self) -> bool {
        false
    }
}

/// What the policy needs to know about one operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    /// `db.operation.name`-style name: `kv.get`, `sql.query`...
    pub(crate) name: &'static str,
    /// Safe to repeat after an ambiguous failure.
    pub(crate) idempotent: bool,
}

impl Op {
    /// A read or an idempotent write: retried on transient errors.
    pub(crate) const fn idempotent(name: &'static str) -> Op {
        Op {
            name,
            idempotent: true,
        }
    }

    /// A write that must not be applied twice: retried only when the error
    /// proves the request never reached the server.
    pub(crate) const fn once(name: &'static str) -> Op {
        Op {
            name,
            idempotent: false,
        }
    }

    pub(crate) const fn forced(self, idempotent: bool) -> Op {
        Op {
            name: self.name,
            idempotent: self.idempotent || idempotent,
        }
    }
}

/// Per-database state shared by the handles: name, policy, breaker, limits,
/// in-flight count and the closed flag. Everything on the success path is
/// an atomic: no lock is shared by all tasks.
#[derive(Debug)]
pub(crate) struct Ctx {
    backend: &'static str,
    timeout: Duration,
    acquire_timeout: Duration,
    self_timed: bool,
    closed: AtomicBool,
    policy: Policy,
    breaker: Breaker,
    budget: RetryBudget,
    concurrency: Option<ConcurrencyLimit>,
    rate: Option<RateLimit>,
    in_flight: crate::shard::ShardedCounter,
    idle: tokio::sync::Notify,
    retries: AtomicU64,
    counters: Counters,
    labels: Labels,
    log_statements: bool,
    /// Reads pool figures for the connection gauges.
    pool_probe: std::sync::OnceLock<std::sync::Weak<dyn Backend>>,
}

/// Span attributes of one operation, beyond the ones every operation has.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Attrs<'a> {
    /// The statement text (recorded only with `log_statements=true`).
    pub(crate) text: Option<&'a str>,
    /// `db.vector.query.top_k` of a vector search.
    pub(crate) top_k: Option<u64>,
    /// `db.vector.dimension_count` of a vector operation.
    pub(crate) dimensions: Option<u64>,
}

/// Span attributes fixed for one database.
#[derive(Debug, Default)]
struct Labels {
    namespace: Option<String>,
    address: Option<String>,
    port: Option<u16>,
}

/// Counts an operation in flight until dropped (also when its future is dropped).
struct InFlight<'a>(&'a Ctx);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.add(-1);
        if self.0.closed.load(Ordering::SeqCst) && self.0.in_flight.sum() <= 0 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Ctx {
    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::new(
                ErrorKind::Closed,
                "the database handle was closed",
            ))
        } else {
            Ok(())
        }
    }

    /// Check an operation's input before the policy sees it: a refusal
    /// takes no concurrency slot or rate-limit token, and is no outcome for
    /// the circuit breaker. It is counted in the stats' errors by kind.
    pub(crate) fn check<T>(&self, op: Op, checked: Result<T>) -> Result<T> {
        checked.map_err(|e| {
            self.counters.record_error(e.kind());
            e.with_backend(self.backend).with_operation(op.name)
        })
    }

    fn enter(&self) -> Result<InFlight<'_>> {
        self.in_flight.add(1);
        let guard = InFlight(self);
        self.check_open()?;
        Ok(guard)
    }

    /// One attempt, bounded by the operation timeout from now.
    async fn attempt<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if self.self_timed {
            return fut.await;
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        self.bounded(deadline, false, fut).await
    }

    /// One attempt of an operation that began at `started`, begun at `now`:
    /// bounded by the operation timeout and by what remains of the
    /// operation's total time (`retry_max_elapsed`), whichever ends first.
    async fn attempt_within<T>(
        &self,
        started: tokio::time::Instant,
        now: tokio::time::Instant,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let total = started + self.policy.retry.max_elapsed;
        let own = now + self.timeout;
        if own <= total {
            if self.self_timed {
                // The backend enforces the operation timeout itself.
                return fut.await;
            }
            self.bounded(own, false, fut).await
        } else {
            self.bounded(total, true, fut).await
        }
    }

    async fn bounded<T>(
        &self,
        deadline: tokio::time::Instant,
        total: bool,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(r) => r,
            Err(_) if total => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "operation did not finish within its total limit of {:?} (retry_max_elapsed, retries included)",
                    self.policy.retry.max_elapsed
                ),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("operation did not finish within {:?}", self.timeout),
            )),
        }
    }

    /// Run one logical operation: the single place where policy applies.
    /// `attempt` builds one attempt; the retry policy may call it again.
    pub(crate) async fn run<T, F, Fut>(&self, op: Op, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.run_attrs(op, Attrs::default(), attempt).await
    }

    /// [`run`](Ctx::run) for a statement whose text may be recorded on the
    /// span (only with `log_statements=true`; placeholders, never values).
    pub(crate) async fn run_text<T, F, Fut>(
        &self,
        op: Op,
        text: Option<&str>,
        attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let attrs = Attrs {
            text,
            ..Attrs::default()
        };
        self.run_attrs(op, attrs, attempt).await
    }

    /// [`run`](Ctx::run) with extra span attributes.
    pub(crate) async fn run_attrs<T, F, Fut>(
        &self,
        op: Op,
        attrs: Attrs<'_>,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let span = tracing::info_span!(
            target: "dbx",
            "db.operation",
            db.system.name = self.backend,
            db.operation.name = op.name,
            db.namespace = self.labels.namespace.as_deref(),
            server.address = self.labels.address.as_deref(),
            server.port = self.labels.port,
            db.query.text = tracing::field::Empty,
            db.vector.query.top_k = attrs.top_k,
            db.vector.dimension_count = attrs.dimensions,
            error.type = tracing::field::Empty,
            dbx.attempts = tracing::field::Empty,
        );
        if self.log_statements
            && let Some(text) = attrs.text
        {
            span.record("db.query.text", text);
        }
        let started = tokio::time::Instant::now();
        // Without limits nothing waits before the first attempt, so it
        // starts at the reading just taken (one clock read less).
        let first_at = (self.concurrency.is_none() && self.rate.is_none()).then_some(started);
        // Set once the breaker lets the operation through; its outcome is
        // then recorded there. (Kept out of the body's output, so the result
        // moves through the layers as a plain `Result<T>`.)
        let mut passed = None;
        let body = async {
            let _in_flight = self.enter()?;
            let _slot = match &self.concurrency {
                Some(limit) => Some(limit.acquire(self.acquire_timeout).await?),
                None => None,
            };
            if let Some(rate) = &self.rate {
                rate.wait(self.timeout).await?;
            }
            let pass = self.breaker.allow()?;
            passed = Some(pass);
            // A half-open probe gets one attempt: it is a question, not a load.
            let max_attempts = if pass == Pass::Probe {
                1
            } else {
                self.policy.retry.max_attempts
            };
            self.retry_loop(op, max_attempts, started, first_at, &mut attempt)
                .await
        };
        // With no subscriber interested the span is disabled: skip the
        // wrapper (and the move of the whole future into it).
        let result = if span.is_disabled() {
            body.await
        } else {
            body.instrument(span.clone()).await
        };
        // One clock read serves the breaker, the duration and the gauges.
        let ended = tokio::time::Instant::now();
        let now_ms = self.breaker.ms_at(ended);
        if let Some(pass) = passed {
            self.breaker.record(pass, Outcome::of(&result), now_ms);
        }
        self.finish(op, &span, ended - started, now_ms, result.as_ref().err());
        result.map_err(|e| e.with_backend(self.backend).with_operation(op.name))
    }

    /// Record the outcome of an operation: span fields, metrics, stats.
    fn finish(
        &self,
        op: Op,
        span: &tracing::Span,
        elapsed: Duration,
        now_ms: u64,
        error: Option<&Error>,
    ) {
        let kind = error.map(Error::kind);
        self.counters.record(elapsed, kind);
        match error {
            None => record_success(self.backend, op.name, elapsed.as_secs_f64()),
            Some(e) => {
                span.record("error.type", e.kind().as_str());
                if e.attempts() > 1 {
                    span.record("dbx.attempts", e.attempts());
                }
                metrics::histogram!(
                    "db.client.operation.duration",
                    "db.system.name" => self.backend,
                    "db.operation.name" => op.name,
                    "error.type" => e.kind().as_str()
                )
                .record(elapsed.as_secs_f64());
                if e.kind() == ErrorKind::PoolTimeout {
                    metrics::counter!("db.client.connection.timeouts", "db.system.name" => self.backend).increment(1);
                    tracing::warn!(target: "dbx", parent: span, system = self.backend, error = %e, "dbx: no connection or slot became free in time");
                }
            }
        }
        if self.counters.gauges_due(now_ms)
            && let Some(backend) = self.pool_probe.get().and_then(std::sync::Weak::upgrade)
        {
            if let Some(pool) = backend.pool_status() {
                publish_pool(self.backend, &pool);
            }
            metrics::gauge!("dbx.client.breaker.state", "db.system.name" => self.backend).set(
                if self.breaker.state() == BreakerState::Closed {
                    0.0
                } else {
                    1.0
                },
            );
        }
    }

    async fn retry_loop<T, F, Fut>(
        &self,
        op: Op,
        max_attempts: u32,
        started: tokio::time::Instant,
        first_at: Option<tokio::time::Instant>,
        attempt: &mut F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = None;
        let mut n = 1u32;
        let mut at = first_at;
        loop {
            let now = at.take().unwrap_or_else(tokio::time::Instant::now);
            match self.attempt_within(started, now, attempt()).await {
                Ok(v) => {
                    self.budget.on_success();
                    return Ok(v);
                }
                Err(e) => {
                    let safe = op.idempotent || e.is_never_sent();
                    if !(e.is_transient() && safe) || n >= max_attempts {
                        return Err(e.set_attempts(n));
                    }
                    let delay = backoff
                        .get_or_insert_with(|| self.policy.retry.backoff())
                        .next();
                    let Some(delay) = delay.map(|d| d.min(self.policy.retry.max_backoff)) else {
                        return Err(e.set_attempts(n));
                    };
                    if started.elapsed() + delay > self.policy.retry.max_elapsed
                        || !self.budget.try_withdraw()
                    {
                        return Err(e.set_attempts(n));
                    }
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("dbx.client.retries", "db.system.name" => self.backend, "db.operation.name" => op.name)
                        .increment(1);
                    tracing::debug!(
                        target: "dbx",
                        system = self.backend,
                        operation = op.name,
                        attempt = n,
                        ?delay,
                        error = %e,
                        "dbx: retrying after a transient error"
                    );
                    tokio::time::sleep(delay).await;
                    n += 1;
                }
            }
        }
    }

    /// Run one attempt that must never be repeated (statements in a
    /// transaction): closed check and timeout only.
    pub(crate) async fn run_once<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = async {
            let _in_flight = self.enter()?;
            self.attempt(fut).await
        }
        .await;
        result.map_err(|e| e.with_backend(self.backend).with_operation(op))
    }
}

/// One connected database: its capabilities behind one policy.
///
/// Cheap to clone (one `Arc`); all clones share the pools. Get the
/// capabilities with [`sql`](Database::sql) and [`kv`](Database::kv).
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    ctx: Arc<Ctx>,
    sql: Option<Sql>,
    kv: Option<Kv>,
    docs: Option<Docs>,
    vectors: Option<Vectors>,
    options: ConnectOptions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The health probe task may be waiting for the breaker to open:
        // wake it so it sees the database is gone and ends.
        self.ctx.breaker.opened_signal().notify_one();
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.inner.backend.name())
            .field("url", &format_args!("{}", self.inner.options))
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Database {
    /// Wrap a connected backend with the policy from `options`.
    pub fn new(backend: Arc<dyn Backend>, options: ConnectOptions) -> Self {
        let policy = options.policy().clone();
        let ctx = Arc::new(Ctx {
            backend: backend.name(),
            timeout: options.timeout(),
            acquire_timeout: options.acquire_timeout(),
            self_timed: backend.enforces_timeouts(),
            closed: AtomicBool::new(false),
            breaker: Breaker::new(backend.name(), policy.breaker.clone()),
            budget: RetryBudget::new(&policy.retry),
            concurrency: policy.limit.max_concurrency.map(ConcurrencyLimit::new),
            rate: policy
                .limit
                .rate_per_sec
                .map(|r| RateLimit::new(r, policy.limit.rate_burst)),
            in_flight: Default::default(),
            idle: tokio::sync::Notify::new(),
            retries: AtomicU64::new(0),
            counters: Counters::default(),
            labels: Labels {
                namespace: Some(options.path().trim_start_matches('/'))
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
                address: Some(options.host())
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned),
                port: options.port(),
            },
            log_statements: options
                .param("log_statements")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            pool_probe: std::sync::OnceLock::new(),
            policy,
        });
        let weak: std::sync::Weak<dyn Backend> = Arc::downgrade(&backend);
        let _ = ctx.pool_probe.set(weak);
        let sql = backend.sql().map(|db| Sql::new(db, ctx.clone()));
        let kv = backend.kv().map(|store| Kv::new(store, ctx.clone()));
        let docs = backend
            .documents()
            .map(|store| Docs::new(store, ctx.clone()));
        let vectors = backend
            .vectors()
            .map(|store| Vectors::new(store, ctx.clone()));
        let db = Database {
            inner: Arc::new(Inner {
                backend,
                ctx,
                sql,
                kv,
                docs,
                vectors,
                options,
            }),
        };
        db.spawn_health_probe();
        db
    }

    /// While the breaker is open, a background task pings the database every
    /// `health_check_interval` (default 100ms; `off` disables it) and closes
    /// the breaker as soon as a ping succeeds, so a recovered server is
    /// noticed before user traffic finds out. While the breaker is closed the
    /// task sleeps on a signal the breaker gives when it opens: no timer runs.
    /// It holds only a weak reference and ends with the database.
    fn spawn_health_probe(&self) {
        let Some(every) = self.inner.ctx.policy.health_check_interval else {
            return;
        };
        if !self.inner.ctx.policy.breaker.enabled {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "dbx: no Tokio runtime; the health probe of an open circuit breaker does not run"
            );
            return;
        };
        let opened = self.inner.ctx.breaker.opened_signal();
        let weak = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            loop {
                opened.notified().await;
                // Probe until the breaker is closed (by this task, a user
                // call's probe, or `health()`).
                loop {
                    tokio::time::sleep(every).await;
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.ctx.closed.load(Ordering::Acquire) {
                        return;
                    }
                    if inner.ctx.breaker.state() == BreakerState::Closed {
                        break;
                    }
                    match inner.ctx.attempt(inner.backend.ping()).await {
                        Ok(()) => {
                            tracing::info!(target: "dbx", system = inner.ctx.backend, "dbx: health probe succeeded; closing the circuit breaker");
                            inner.ctx.breaker.close();
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(target: "dbx", system = inner.ctx.backend, error = %e, not_ready = e.is_not_ready(), "dbx: health probe failed")
                        }
                    }
                }
            }
        });
    }

    fn unsupported(&self, capability: &str) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "the {} backend does not offer the {capability} capability",
                self.backend_name()
            ),
        )
        .with_backend(self.backend_name())
    }

    /// The SQL capability, or [`Unsupported`](ErrorKind::Unsupported).
    pub fn sql(&self) -> Result<&Sql> {
        self.inner
            .sql
            .as_ref()
            .ok_or_else(|| self.unsupported("sql"))
    }

    /// The key-value capability, or [`Unsupported`](ErrorKind::Unsupported).
    pub fn kv(&self) -> Result<&Kv> {
        self.inner.kv.as_ref().ok_or_else(|| self.unsupported("kv"))
    }

    /// The document capability, or [`Unsupported`](ErrorKind::Unsupported).
    pub fn docs(&self) -> Result<&Docs> {
        self.inner
            .docs
            .as_ref()
            .ok_or_else(|| self.unsupported("document"))
    }

    /// The vector capability, or [`Unsupported`](ErrorKind::Unsupported).
    pub fn vectors(&self) -> Result<&Vectors> {
        self.inner
            .vectors
            .as_ref()
            .ok_or_else(|| self.unsupported("vector"))
    }

    /// Backend name (`"sqlite"`...).
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// The options this database was opened with (prints redacted).
    pub fn options(&self) -> &ConnectOptions {
        &self.inner.options
    }

    /// Pool figures, where the backend pools connections.
    pub fn pool_status(&self) -> Option<PoolStatus> {
        self.inner.backend.pool_status()
    }

    /// The driver's backend object.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// The driver's backend as its concrete type, for backend-specific
    /// escape hatches; `None` if this database uses another driver.
    pub fn backend_as<T: Backend>(&self) -> Option<&T> {
        let any: &dyn std::any::Any = &*self.inner.backend;
        any.downcast_ref::<T>()
    }

    /// Fail with [`ErrorKind::Closed`] if the handle was closed; for escape
    /// hatches that bypass the handles.
    pub fn check_open(&self) -> Result<()> {
        self.inner
            .ctx
            .check_open()
            .map_err(|e| e.with_backend(self.backend_name()))
    }

    /// The deadline of one operation attempt configured for this database.
    pub fn timeout(&self) -> Duration {
        self.inner.ctx.timeout
    }

    /// Make one real round trip, past the circuit breaker and without
    /// retries, and report its latency, the pool and the breaker state.
    /// A successful round trip closes an open breaker: the server answers,
    /// so user calls go through again at once.
    pub async fn health(&self) -> Result<Health> {
        let start = Instant::now();
        let backend = &self.inner.backend;
        self.inner.ctx.run_once("health", backend.ping()).await?;
        let breaker = &self.inner.ctx.breaker;
        if breaker.state() != BreakerState::Closed {
            tracing::info!(target: "dbx", system = self.inner.ctx.backend, "dbx: health check succeeded; closing the circuit breaker");
            breaker.close();
        }
        Ok(Health {
            backend: self.backend_name(),
            latency: start.elapsed(),
            pool: self.pool_status(),
            breaker: self.breaker_state(),
        })
    }

    /// Where the circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.ctx.breaker.state()
    }

    /// Operations in flight right now.
    pub fn in_flight(&self) -> usize {
        self.inner.ctx.in_flight.sum().max(0) as usize
    }

    /// Retries made since connecting.
    pub fn retries(&self) -> u64 {
        self.inner.ctx.retries.load(Ordering::Relaxed)
    }

    /// How many times the circuit breaker has opened since connecting.
    pub fn breaker_opened(&self) -> u64 {
        self.inner.ctx.breaker.opened_total()
    }

    /// A snapshot of this database's activity: operations, errors by kind,
    /// retries, breaker, pool and latency percentiles.
    pub fn stats(&self) -> Stats {
        let ctx = &self.inner.ctx;
        let errors_by_kind = crate::telemetry::ERROR_KINDS
            .iter()
            .zip(ctx.counters.errors.iter())
            .filter_map(|(k, n)| {
                let n = n.load(Ordering::Relaxed);
                (n > 0).then_some((*k, n))
            })
            .collect();
        let p = ctx.counters.latency.percentiles(&[0.5, 0.9, 0.99]);
        let pool = self.pool_status();
        if let Some(pool) = &pool {
            publish_pool(ctx.backend, pool);
        }
        Stats {
            backend: ctx.backend,
            operations: ctx.counters.latency.count(),
            errors_by_kind,
            retries: self.retries(),
            in_flight: self.in_flight(),
            breaker: self.breaker_state(),
            breaker_opened: self.breaker_opened(),
            pool,
            latency: Latency {
                p50: p[0],
                p90: p[1],
                p99: p[2],
            },
        }
    }

    /// Operations holding a concurrency-limit slot, if a limit is set.
    pub fn concurrency_in_use(&self) -> Option<usize> {
        self.inner
            .ctx
            .concurrency
            .as_ref()
            .map(ConcurrencyLimit::in_use)
    }

    /// Whether [`close`](Database::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.ctx.closed.load(Ordering::Acquire)
    }

    /// Shut down gracefully: new operations fail with
    /// [`Closed`](ErrorKind::Closed) at once, operations in flight get up to
    /// the policy's `close_timeout` (default 10s) to finish, then the pools
    /// close. Idempotent; returns `false` if it gave up waiting.
    pub async fn close(&self) -> bool {
        self.close_within(self.inner.ctx.policy.close_timeout).await
    }

    /// [`close`](Database::close) with an explicit deadline for operations in flight.
    pub async fn close_within(&self, deadline: Duration) -> bool {
        let ctx = &self.inner.ctx;
        if ctx.closed.swap(true, Ordering::SeqCst) {
            return true;
        }
        let drained = tokio::time::timeout(deadline, async {
            loop {
                let notified = ctx.idle.notified();
                if ctx.in_flight.sum() <= 0 {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                system = ctx.backend,
                in_flight = ctx.in_flight.sum(),
                "dbx: closing with operations still in flight after {deadline:?}"
            );
        }
        self.inner.backend.close().await;
        drained
    }
}
