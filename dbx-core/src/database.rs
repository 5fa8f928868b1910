//! [`Database`]: one connected database with its capabilities and policy, and
//! the [`Backend`] trait a driver's connection implements.

use crate::kv::{KeyValueStore, Kv};
use crate::sql::{Sql, SqlDatabase};
use crate::{ConnectOptions, Error, ErrorKind, Result};
use async_trait::async_trait;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// Per-database state shared by the handles: name, policy and the closed flag.
#[derive(Debug)]
pub(crate) struct Ctx {
    backend: &'static str,
    timeout: Duration,
    self_timed: bool,
    closed: AtomicBool,
}

impl Ctx {
    pub(crate) fn backend(&self) -> &'static str {
        self.backend
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

    /// Run one logical operation: the single place where policy applies.
    /// `attempt` builds one attempt; resilience (retry) will call it again.
    pub(crate) async fn run<T, F, Fut>(&self, op: &'static str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.run_once(op, async move { attempt().await }).await
    }

    /// Run one attempt that must never be repeated (statements in a transaction).
    pub(crate) async fn run_once<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = match self.check_open() {
            Err(e) => Err(e),
            Ok(()) if self.self_timed => fut.await,
            Ok(()) => match tokio::time::timeout(self.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("operation did not finish within {:?}", self.timeout),
                )),
            },
        };
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
    options: ConnectOptions,
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
        let ctx = Arc::new(Ctx {
            backend: backend.name(),
            timeout: options.timeout(),
            self_timed: backend.enforces_timeouts(),
            closed: AtomicBool::new(false),
        });
        let sql = backend.sql().map(|db| Sql::new(db, ctx.clone()));
        let kv = backend.kv().map(|store| Kv::new(store, ctx.clone()));
        Database {
            inner: Arc::new(Inner {
                backend,
                ctx,
                sql,
                kv,
                options,
            }),
        }
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

    /// Make one real round trip and report its latency and the pool state.
    pub async fn health(&self) -> Result<Health> {
        let start = Instant::now();
        let backend = &self.inner.backend;
        self.inner.ctx.run("health", || backend.ping()).await?;
        Ok(Health {
            backend: self.backend_name(),
            latency: start.elapsed(),
            pool: self.pool_status(),
        })
    }

    /// Whether [`close`](Database::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.ctx.closed.load(Ordering::Acquire)
    }

    /// Stop accepting operations (they fail with [`Closed`](ErrorKind::Closed))
    /// and close the pools. Idempotent.
    pub async fn close(&self) {
        if !self.inner.ctx.closed.swap(true, Ordering::AcqRel) {
            self.inner.backend.close().await;
        }
    }
}
