//! The policy engine: the one place where every operation of every handle
//! goes through the resilience layers, in the order the
//! [module docs](crate::policy) give, and is recorded.

use crate::error::{Error, ErrorKind, Result};
use crate::options::ConnectOptions;
use crate::policy::breaker::{Breaker, Outcome, Pass};
use crate::policy::{BreakerState, ConcurrencyLimit, Policy, RateLimit, RetryBudget};
use crate::telemetry::{Counters, PoolStatus, publish_gauges, record_operation};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument;

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
    pub(crate) backend: &'static str,
    pub(crate) timeout: Duration,
    acquire_timeout: Duration,
    self_timed: bool,
    pub(crate) closed: AtomicBool,
    pub(crate) policy: Policy,
    pub(crate) breaker: Breaker,
    budget: RetryBudget,
    pub(crate) concurrency: Option<ConcurrencyLimit>,
    rate: Option<RateLimit>,
    pub(crate) in_flight: crate::shard::ShardedCounter,
    pub(crate) idle: tokio::sync::Notify,
    pub(crate) retries: AtomicU64,
    pub(crate) counters: Counters,
    labels: Labels,
    log_statements: bool,
    /// Reads pool figures for the connection gauges (set by the database,
    /// which knows its backend; the engine knows no backend).
    pool_probe: std::sync::OnceLock<PoolProbe>,
    /// The result cache, when the database's settings turn it on.
    #[cfg(feature = "cache")]
    cache: Option<std::sync::Arc<crate::cache::Cache>>,
}

/// What a write changed, for the result cache to drop (nothing happens
/// without the `cache` feature or with the cache off).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
pub(crate) enum Changed<'a> {
    /// A key-value key.
    Key(&'a str),
    /// Key-value keys.
    Keys(&'a [&'a str]),
    /// A document collection.
    Docs(&'a str),
    /// A vector collection.
    Vectors(&'a str),
    /// Whatever this SQL statement writes.
    Sql(&'a str),
}

/// Reads the pool figures of a database's backend, if it still exists.
pub(crate) struct PoolProbe(pub(crate) Box<dyn Fn() -> Option<PoolStatus> + Send + Sync>);

impl std::fmt::Debug for PoolProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolProbe")
    }
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
    /// The state of one database: its policy from `options`, named
    /// `backend`; `self_timed` if the backend enforces the operation
    /// timeout itself.
    pub(crate) fn new(backend: &'static str, options: &ConnectOptions, self_timed: bool) -> Ctx {
        let policy = options.policy().clone();
        Ctx {
            backend,
            timeout: options.timeout(),
            acquire_timeout: options.acquire_timeout(),
            self_timed,
            closed: AtomicBool::new(false),
            breaker: Breaker::new(backend, policy.breaker.clone()),
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
            #[cfg(feature = "cache")]
            cache: match crate::cache::CacheConfig::from_options(options) {
                Ok(config) => config.map(|c| crate::cache::Cache::new(backend, c)),
                Err(e) => {
                    tracing::warn!(target: "dbx", system = backend, error = %e, "dbx: the result cache is off: its settings are invalid");
                    None
                }
            },
            policy,
        }
    }

    /// The result cache, if on.
    #[cfg(feature = "cache")]
    pub(crate) fn cache(&self) -> Option<&std::sync::Arc<crate::cache::Cache>> {
        self.cache.as_ref()
    }

    /// Whether a result cache is on (so writes should say what they change).
    pub(crate) fn caching(&self) -> bool {
        #[cfg(feature = "cache")]
        return self.cache.is_some();
        #[cfg(not(feature = "cache"))]
        false
    }

    /// Tell the result cache what a write changed, once it finished (or
    /// failed after it may have reached the server).
    pub(crate) async fn changed<T>(&self, what: Changed<'_>, outcome: &Result<T>) {
        #[cfg(feature = "cache")]
        if let Some(cache) = &self.cache {
            if let Err(e) = outcome
                && e.is_never_sent()
            {
                return;
            }
            // Boxed: the cache's shared tier writes through a `Kv` handle,
            // whose writes come back here (for another database).
            Box::pin(crate::cache::changed(cache, what)).await;
        }
        #[cfg(not(feature = "cache"))]
        let _ = (what, outcome);
    }

    /// Where the connection gauges read the pool figures.
    pub(crate) fn set_pool_probe(&self, probe: PoolProbe) {
        let _ = self.pool_probe.set(probe);
    }

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
    pub(crate) async fn attempt<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
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

    /// Record the outcome of an operation: span fields, metrics, stats,
    /// and the connection and breaker gauges when they are due.
    fn finish(
        &self,
        op: Op,
        span: &tracing::Span,
        elapsed: Duration,
        now_ms: u64,
        error: Option<&Error>,
    ) {
        self.counters.record(elapsed, error.map(Error::kind));
        record_operation(self.backend, op.name, span, elapsed, error);
        if self.counters.gauges_due(now_ms) {
            let pool = self.pool_probe.get().and_then(|probe| (probe.0)());
            publish_gauges(
                self.backend,
                pool.as_ref(),
                self.breaker.state() != BreakerState::Closed,
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
