//! [`Database`]: one connected database with its capabilities and policy.

use crate::document::Docs;
use crate::driver::{Backend, NodeStatus};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::Kv;
use crate::options::ConnectOptions;
use crate::policy::BreakerState;
use crate::policy::ConcurrencyLimit;
use crate::policy::engine::{Ctx, PoolProbe};
use crate::sql::Sql;
use crate::telemetry::{Latency, PoolStatus, Stats, publish_pool};
use crate::vector::Vectors;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    /// Each server of a multi-server topology, probed (empty for one
    /// server): its role, whether it answered, and why not.
    pub nodes: Vec<NodeStatus>,
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
        let ctx = Arc::new(Ctx::new(
            backend.name(),
            &options,
            backend.enforces_timeouts(),
        ));
        let weak: std::sync::Weak<dyn Backend> = Arc::downgrade(&backend);
        ctx.set_pool_probe(PoolProbe(Box::new(move || {
            weak.upgrade().and_then(|b| b.pool_status())
        })));
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

    /// The result cache, or [`InvalidConfig`](ErrorKind::InvalidConfig)
    /// when it is off (turn it on with `cache=true` or another cache
    /// setting; see [`crate::cache`]).
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub fn cache(&self) -> Result<&crate::cache::Cache> {
        self.inner.ctx.cache().map(|c| &**c).ok_or_else(|| {
            Error::invalid_config(
                "the result cache is off for this database; open it with `cache=true` (or a [cache] table in dbx.toml)",
            )
            .with_backend(self.backend_name())
        })
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
        let latency = start.elapsed();
        // Each node's probe is bounded by the timeout; the whole, twice it.
        let limit = self.timeout().saturating_mul(2);
        let nodes = match tokio::time::timeout(limit, backend.probe_nodes()).await {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(e)) => {
                tracing::warn!(target: "dbx", system = self.inner.ctx.backend, error = %e, "dbx: could not list the topology's nodes");
                backend.nodes()
            }
            Err(_) => {
                tracing::warn!(target: "dbx", system = self.inner.ctx.backend, "dbx: probing the topology's nodes did not finish within {limit:?}");
                backend.nodes()
            }
        };
        Ok(Health {
            backend: self.backend_name(),
            latency,
            pool: self.pool_status(),
            breaker: self.breaker_state(),
            nodes,
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
            nodes: self.inner.backend.nodes(),
            #[cfg(feature = "cache")]
            cache: ctx.cache().map(|c| c.stats()),
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
