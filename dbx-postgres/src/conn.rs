//! Connections: a few shared, pipelined clients for single statements and a
//! deadpool pool of exclusive connections for transactions and streams.

use crate::config::Settings;
use crate::convert::{self, Param};
use crate::error::{BACKEND, map_err, sqlstate};
use crate::lex;
use crate::tls::MakeRustls;
use dbx_core::{Error, ErrorKind, PoolStatus, Result, Row, Value};
use deadpool::managed::{self, Metrics, Object, Pool, PoolError, RecycleError, TimeoutType};
use deadpool_postgres::{ClientWrapper, ManagerConfig, RecyclingMethod};
use futures_util::TryStreamExt;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle as Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client};

/// Opens one connection and drives it on a Tokio task.
#[derive(Clone)]
struct Connector {
    tls: MakeRustls,
}

type ConnectFuture<'a> = Pin<
    Box<dyn Future<Output = Result<(Client, JoinHandle<()>), tokio_postgres::Error>> + Send + 'a>,
>;

impl Connector {
    fn open(&self, config: &tokio_postgres::Config) -> ConnectFuture<'static> {
        let tls = self.tls.clone();
        let config = config.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "postgres connection ended with an error");
                }
            });
            Ok((client, task))
        })
    }
}

impl deadpool_postgres::Connect for Connector {
    fn connect(&self, config: &tokio_postgres::Config) -> ConnectFuture<'_> {
        self.open(config)
    }
}

/// A pooled connection.
pub(crate) struct PgConn {
    pub(crate) client: ClientWrapper,
    pub(crate) stmts: StmtCache,
    created: Instant,
    idle_since: Instant,
}

impl fmt::Debug for PgConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.client.is_closed())
            .field("age", &self.created.elapsed())
            .finish()
    }
}

/// deadpool manager: deadpool-postgres's, plus `max_lifetime` and
/// `idle_timeout`. Recycling verifies each connection with a round trip.
pub(crate) struct PgManager {
    inner: deadpool_postgres::Manager,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl PgManager {
    /// Whether a connection has outlived `max_lifetime` or sat idle past `idle_timeout`.
    fn expired(&self, c: &PgConn) -> Option<&'static str> {
        if self.max_lifetime.is_some_and(|m| c.created.elapsed() >= m) {
            Some("max_lifetime reached")
        } else if self
            .idle_timeout
            .is_some_and(|m| c.idle_since.elapsed() >= m)
        {
            Some("idle_timeout reached")
        } else {
            None
        }
    }
}

impl managed::Manager for PgManager {
    type Type = PgConn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<PgConn, tokio_postgres::Error> {
        let client = managed::Manager::create(&self.inner).await?;
        let now = Instant::now();
        Ok(PgConn {
            client,
            stmts: StmtCache::default(),
            created: now,
            idle_since: now,
        })
    }

    async fn recycle(
        &self,
        conn: &mut PgConn,
        metrics: &Metrics,
    ) -> managed::RecycleResult<tokio_postgres::Error> {
        if let Some(why) = self.expired(conn) {
            return Err(RecycleError::message(why));
        }
        managed::Manager::recycle(&self.inner, &mut conn.client, metrics).await
    }

    fn detach(&self, conn: &mut PgConn) {
        managed::Manager::detach(&self.inner, &mut conn.client);
    }
}

/// A shared client and when it was opened.
pub(crate) struct SharedConn {
    pub(crate) client: ClientWrapper,
    pub(crate) stmts: StmtCache,
    created: Instant,
}

/// The statements prepared on one connection, so a repeated statement costs
/// one map lookup: the application's, each with its result column names, and
/// apart from them the driver's own (KV), prepared with declared parameter
/// types. The driver's are a fixed handful of texts, never evicted.
#[derive(Default)]
pub(crate) struct StmtCache {
    map: Mutex<HashMap<Box<str>, Arc<Prepared>, foldhash::fast::RandomState>>,
    internal: Mutex<HashMap<Box<str>, tokio_postgres::Statement, foldhash::fast::RandomState>>,
}

/// A prepared statement of the application's, its column names and whether
/// dbx can decode every one of its result columns.
pub(crate) struct Prepared {
    pub(crate) stmt: tokio_postgres::Statement,
    pub(crate) names: Arc<[String]>,
    decodable: bool,
}

impl StmtCache {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<Prepared>, foldhash::fast::RandomState>>
    {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, sql: &str) -> Option<Arc<Prepared>> {
        self.map().get(sql).cloned()
    }

    /// Keep `prepared`, starting over when the cache holds `capacity` entries.
    fn insert(&self, sql: &str, prepared: Arc<Prepared>, capacity: usize) {
        let mut map = self.map();
        if map.len() >= capacity {
            map.clear();
        }
        map.insert(sql.into(), prepared);
    }

    fn remove(&self, sql: &str) {
        self.map().remove(sql);
    }

    /// One of the driver's own statements, prepared with `types` on first use.
    async fn internal(
        &self,
        client: &ClientWrapper,
        sql: &str,
        types: &[Type],
    ) -> Result<tokio_postgres::Statement> {
        let cached = self
            .internal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(stmt) = cached {
            return Ok(stmt);
        }
        // Boxed: the prepare future (about 1 KB) would otherwise size the
        // future of every KV operation (see `run`).
        let stmt = Box::pin(client.prepare_typed(sql, types))
            .await
            .map_err(map_err)?;
        self.internal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql.into(), stmt.clone());
        Ok(stmt)
    }
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Arc<SharedConn>>>,
    connecting: tokio::sync::Mutex<()>,
    /// Connection attempts made so far; waiters that see it move on after
    /// a failure report that failure instead of trying again one by one.
    attempts: AtomicU64,
    last_error: Mutex<Option<String>>,
    kicked: AtomicBool,
}

impl Slot {
    fn live(&self) -> Option<Arc<SharedConn>> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    fn set(&self, conn: Option<Arc<SharedConn>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = conn;
    }
}

/// All connections of one database.
pub(crate) struct Conns {
    pub(crate) settings: Settings,
    pool: Pool<PgManager>,
    connector: Connector,
    shared: Box<[Slot]>,
    next: AtomicUsize,
    closed: AtomicBool,
}

impl fmt::Debug for Conns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live = self.shared.iter().filter(|s| s.live().is_some()).count();
        f.debug_struct("Conns")
            .field("target", &self.settings.target)
            .field(
                "shared_clients",
                &format_args!("{live}/{}", self.shared.len()),
            )
            .field("pool", &self.pool.status())
            .finish()
    }
}

fn pool_error(e: PoolError<tokio_postgres::Error>, s: &Settings) -> Error {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => Error::new(
            ErrorKind::PoolTimeout,
            format!(
                "no pooled connection became free within {:?} (pool_max_size {})",
                s.acquire_timeout, s.pool_max_size
            ),
        ),
        PoolError::Timeout(_) => Error::new(
            ErrorKind::Connect,
            format!(
                "connecting to {} did not finish within {:?}",
                s.target, s.connect_timeout
            ),
        )
        .set_transient(true),
        // Only creating a connection fails with a backend error.
        PoolError::Backend(e) => connect_error(s, map_err(e)),
        PoolError::Closed => Error::new(ErrorKind::Closed, "the connection pool was closed"),
        other => Error::new(
            ErrorKind::Other,
            format!("connection pool failure: {other}"),
        ),
    }
    .with_backend(BACKEND)
}

/// A failure to connect, naming where to.
fn connect_error(s: &Settings, e: Error) -> Error {
    Error::new(
        e.kind(),
        format!("connecting to {}: {}", s.target, e.message()),
    )
    .set_transient(e.is_transient())
    .with_source(e)
    .with_backend(BACKEND)
}

impl Conns {
    /// Build the pool and open the first connection, so that a wrong
    /// address, password or database fails here.
    pub(crate) async fn open(settings: Settings) -> Result<Arc<Conns>> {
        let connector = Connector {
            tls: settings.tls.clone(),
        };
        let inner = deadpool_postgres::Manager::from_connect(
            settings.pg.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let manager = PgManager {
            inner,
            max_lifetime: settings.max_lifetime,
            idle_timeout: settings.idle_timeout,
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_max_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout.min(settings.timeout)))
            .build()
            .map_err(|e| Error::new(ErrorKind::Other, format!("building the pool failed: {e}")))?;
        let shared = (0..settings.shared_clients)
            .map(|_| Slot::default())
            .collect();
        let conns = Arc::new(Conns {
            settings,
            pool,
            connector,
            shared,
            next: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        if conns.shared.is_empty() {
            drop(conns.acquire().await?);
        } else {
            conns.connect_slot(0).await?;
        }
        conns.spawn_reaper();
        Ok(conns)
    }

    /// Close idle pooled connections past `idle_timeout` or `max_lifetime`
    /// in the background, until the pool is dropped or closed.
    fn spawn_reaper(&self) {
        let limits = [self.settings.idle_timeout, self.settings.max_lifetime];
        let Some(shortest) = limits.iter().flatten().min().copied() else {
            return;
        };
        let period = (shortest / 2).clamp(Duration::from_millis(250), Duration::from_secs(30));
        let weak = self.pool.weak();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else { break };
                if pool.is_closed() {
                    break;
                }
                let result = pool.retain(|conn, _| pool.manager().expired(conn).is_none());
                if !result.removed.is_empty() {
                    tracing::debug!(
                        closed = result.removed.len(),
                        "postgres: closed idle or old pooled connections"
                    );
                }
            }
        });
    }

    pub(crate) fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus::new(
            s.max_size,
            s.size,
            s.available,
            s.size.saturating_sub(s.available),
            s.waiting,
        )
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(
                Error::new(ErrorKind::Closed, "the database handle was closed")
                    .with_backend(BACKEND),
            )
        } else {
            Ok(())
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pool.close();
        for slot in self.shared.iter() {
            slot.set(None);
        }
    }

    /// An exclusive connection from the pool, waiting at most `acquire_timeout`.
    pub(crate) async fn acquire(&self) -> Result<Lease> {
        self.check_open()?;
        let obj = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error(e, &self.settings))?;
        Ok(Lease {
            cancel: obj.client.cancel_token(),
            obj: Some(obj),
            tls: self.settings.tls.clone(),
            timeout: self.settings.connect_timeout.min(self.settings.timeout),
            broken: AtomicBool::new(false),
            in_tx: false,
        })
    }

    /// Where a single statement runs: a shared client, or (with
    /// `shared_clients=0`) an exclusive pooled connection.
    pub(crate) async fn handle(self: &Arc<Self>) -> Result<Handle> {
        if self.shared.is_empty() {
            // Boxed: deadpool's checkout future is about 2 KB, which would
            // otherwise size every statement's future (see `run`).
            Ok(Handle::Exclusive(Box::new(Box::pin(self.acquire()).await?)))
        } else {
            self.check_open()?;
            Ok(Handle::Shared(self.shared_client().await?))
        }
    }

    /// A live shared client, round robin. A dead one is replaced in the
    /// background while the others serve; when none is live, the caller
    /// waits for one reconnect (bounded by `connect_timeout`).
    async fn shared_client(self: &Arc<Self>) -> Result<Arc<SharedConn>> {
        let n = self.shared.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for k in 0..n {
            let i = (start + k) % n;
            if let Some(c) = self.shared[i].live() {
                if k > 0 {
                    self.kick(start);
                }
                if self
                    .settings
                    .max_lifetime
                    .is_some_and(|m| c.created.elapsed() >= m)
                {
                    self.kick(i);
                }
                return Ok(c);
            }
        }
        self.connect_slot(start).await
    }

    /// Reconnect a slot in the background (once at a time).
    fn kick(self: &Arc<Self>, i: usize) {
        let Ok(rt) = Runtime::try_current() else {
            return;
        };
        if self.shared[i].kicked.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        rt.spawn(async move {
            if let Err(e) = this.connect_slot(i).await {
                tracing::debug!(error = %e, slot = i, "postgres: reconnecting a shared client failed");
            }
            this.shared[i].kicked.store(false, Ordering::Release);
        });
    }

    /// Make slot `i` hold a live, fresh client.
    async fn connect_slot(&self, i: usize) -> Result<Arc<SharedConn>> {
        let slot = &self.shared[i];
        let seen = slot.attempts.load(Ordering::Acquire);
        let _one_at_a_time = slot.connecting.lock().await;
        let fresh = |c: &Arc<SharedConn>| {
            self.settings
                .max_lifetime
                .is_none_or(|m| c.created.elapsed() < m)
        };
        if let Some(c) = slot.live().filter(fresh) {
            return Ok(c);
        }
        if slot.attempts.load(Ordering::Acquire) != seen {
            // Someone else just tried while we waited.
            if let Some(c) = slot.live() {
                return Ok(c);
            }
            let last = slot
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "connecting to {} failed just now: {last}",
                    self.settings.target
                ),
            )
            .set_transient(true)
            .with_backend(BACKEND));
        }
        self.check_open()?;
        let limit = self.settings.connect_timeout;
        let result = tokio::time::timeout(limit, self.connector.open(&self.settings.pg)).await;
        slot.attempts.fetch_add(1, Ordering::AcqRel);
        let error = match result {
            Ok(Ok((client, task))) => {
                let conn = Arc::new(SharedConn {
                    client: ClientWrapper::new(client, task),
                    stmts: StmtCache::default(),
                    created: Instant::now(),
                });
                if self.closed.load(Ordering::Acquire) {
                    return Err(
                        Error::new(ErrorKind::Closed, "the database handle was closed")
                            .with_backend(BACKEND),
                    );
                }
                slot.set(Some(conn.clone()));
                return Ok(conn);
            }
            Ok(Err(e)) => connect_error(&self.settings, map_err(e)),
            Err(_) => Error::new(
                ErrorKind::Connect,
                format!(
                    "connecting to {} did not finish within {limit:?}",
                    self.settings.target
                ),
            )
            .set_transient(true)
            .with_backend(BACKEND),
        };
        *slot.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(error.message().to_owned());
        Err(error)
    }
}

/// A connection for one operation.
pub(crate) enum Handle {
    Shared(Arc<SharedConn>),
    Exclusive(Box<Lease>),
}

impl Handle {
    pub(crate) fn client(&self) -> &ClientWrapper {
        match self {
            Handle::Shared(c) => &c.client,
            Handle::Exclusive(l) => l.client(),
        }
    }

    pub(crate) fn stmts(&self) -> &StmtCache {
        match self {
            Handle::Shared(c) => &c.stmts,
            Handle::Exclusive(l) => l.stmts(),
        }
    }

    /// Cancels the running statement if the operation is dropped midway;
    /// only for exclusive connections (on a shared one a cancel request
    /// could hit another caller's statement; `statement_timeout` bounds those).
    pub(crate) fn guard(&self) -> Option<CancelGuard<'_>> {
        match self {
            Handle::Shared(_) => None,
            Handle::Exclusive(l) => Some(l.guard()),
        }
    }
}

/// An exclusive pooled connection. Returned to the pool when dropped, unless
/// it is in an unknown state: a transaction still open is rolled back first;
/// a connection whose statement was abandoned midway is cancelled and closed.
pub(crate) struct Lease {
    obj: Option<Object<PgManager>>,
    cancel: CancelToken,
    tls: MakeRustls,
    timeout: Duration,
    broken: AtomicBool,
    pub(crate) in_tx: bool,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("in_tx", &self.in_tx)
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// Dropping it closes the connection instead of returning it to the pool,
/// unless it was taken back out after a clean rollback.
struct Discard(Option<Object<PgManager>>);

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            drop(Object::take(obj));
        }
    }
}

impl Lease {
    #[allow(clippy::expect_used)]
    pub(crate) fn client(&self) -> &ClientWrapper {
        // The object is only taken out in `drop`.
        &self
            .obj
            .as_ref()
            .expect("a lease holds its connection until dropped")
            .client
    }

    #[allow(clippy::expect_used)]
    pub(crate) fn stmts(&self) -> &StmtCache {
        // The object is only taken out in `drop`.
        &self
            .obj
            .as_ref()
            .expect("a lease holds its connection until dropped")
            .stmts
    }

    #[allow(clippy::expect_used)]
    pub(crate) fn client_mut(&mut self) -> &mut ClientWrapper {
        &mut self
            .obj
            .as_mut()
            .expect("a lease holds its connection until dropped")
            .client
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    pub(crate) fn guard(&self) -> CancelGuard<'_> {
        CancelGuard {
            lease: self,
            armed: true,
        }
    }

    /// A statement was left running: ask the server to cancel it, and never
    /// reuse this connection (a late cancel could hit the next statement).
    pub(crate) fn abandon(&self) {
        if self.broken.swap(true, Ordering::AcqRel) {
            return;
        }
        let (token, tls, limit) = (self.cancel.clone(), self.tls.clone(), self.timeout);
        if let Ok(rt) = Runtime::try_current() {
            rt.spawn(async move {
                match tokio::time::timeout(limit, token.cancel_query(tls)).await {
                    Ok(Ok(())) => tracing::debug!("postgres: cancelled an abandoned statement"),
                    Ok(Err(e)) => tracing::debug!(error = %e, "postgres: cancel request failed"),
                    Err(_) => tracing::debug!("postgres: cancel request timed out"),
                }
            });
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut obj) = self.obj.take() else {
            return;
        };
        if self.is_broken() || obj.client.is_closed() {
            drop(Object::take(obj));
            return;
        }
        if self.in_tx {
            // Roll back before anyone else gets the connection; if that
            // cannot happen, close it (the server rolls back on disconnect).
            let Ok(rt) = Runtime::try_current() else {
                drop(Object::take(obj));
                return;
            };
            let limit = self.timeout;
            let mut held = Discard(Some(obj));
            rt.spawn(async move {
                let ok = match &held.0 {
                    Some(o) => matches!(
                        tokio::time::timeout(limit, o.client.batch_execute("ROLLBACK")).await,
                        Ok(Ok(()))
                    ),
                    None => false,
                };
                if ok && let Some(mut o) = held.0.take() {
                    o.idle_since = Instant::now();
                }
            });
            return;
        }
        obj.idle_since = Instant::now();
    }
}

/// Armed while a statement runs on an exclusive connection; see [`Lease::abandon`].
pub(crate) struct CancelGuard<'a> {
    lease: &'a Lease,
    armed: bool,
}

impl CancelGuard<'_> {
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.lease.abandon();
        }
    }
}

// ---------------------------------------------------------------------------
// Running statements
// ---------------------------------------------------------------------------

/// What a statement is run for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Execute,
    Query,
    /// The first row only; the rest are still read (and any error in them
    /// reported), but not converted.
    First,
}

pub(crate) enum Output {
    Count(u64),
    Rows(Vec<Row>),
    First(Option<Row>),
}

impl Output {
    pub(crate) fn count(self) -> u64 {
        match self {
            Output::Count(n) => n,
            Output::Rows(r) => r.len() as u64,
            Output::First(r) => u64::from(r.is_some()),
        }
    }

    pub(crate) fn rows(self) -> Vec<Row> {
        match self {
            Output::Rows(r) => r,
            Output::First(r) => r.into_iter().collect(),
            Output::Count(_) => Vec::new(),
        }
    }

    pub(crate) fn first(self) -> Option<Row> {
        match self {
            Output::Rows(r) => r.into_iter().next(),
            Output::First(r) => r,
            Output::Count(_) => None,
        }
    }
}

fn count_error(expected: usize, given: usize) -> Error {
    let uses = match expected {
        0 => "no parameters".to_owned(),
        1 => "1 parameter ($1)".to_owned(),
        n => format!("{n} parameters ($1..${n})"),
    };
    Error::invalid_input(format!(
        "the statement uses {uses} but {given} {} given",
        if given == 1 { "was" } else { "were" }
    ))
    .with_backend(BACKEND)
}

/// Whether an error means the cached statement went stale (the table
/// changed shape, or the server forgot it): prepare again and retry once.
fn stale_statement(e: &Error) -> bool {
    match sqlstate(e) {
        Some("26000") => true,
        Some("0A000") => e.message().contains("cached plan"),
        _ => false,
    }
}

/// Run one statement of the user's on a client. `retry` allows one retry
/// after a stale cached statement (never inside a transaction, where the
/// failure aborted the transaction).
pub(crate) async fn run(
    client: &ClientWrapper,
    stmts: &StmtCache,
    s: &Settings,
    sql: &str,
    params: &[Value],
    mode: Mode,
    retry: bool,
) -> Result<Output> {
    // The paths taken rarely are boxed, so that the future of the common
    // one (a cached statement) stays small: drivers' futures are boxed per
    // operation, and one past glibc's per-thread cache size (1032 bytes)
    // costs several times as much to allocate and free.
    if !s.statement_cache {
        return Box::pin(run_unnamed(client, sql, params, mode)).await;
    }
    match run_prepared(client, stmts, s, sql, params, mode).await {
        Err(e) if stale_statement(&e) => {
            stmts.remove(sql);
            if !retry {
                return Err(e);
            }
            Box::pin(run_prepared(client, stmts, s, sql, params, mode)).await
        }
        r => r,
    }
}

/// Check a prepared statement against the parameters and coerce them.
pub(crate) fn bind_params<'a>(
    stmt: &tokio_postgres::Statement,
    params: &'a [Value],
) -> Result<Vec<Param<'a>>> {
    if stmt.params().len() != params.len() {
        return Err(count_error(stmt.params().len(), params.len()));
    }
    params
        .iter()
        .zip(stmt.params())
        .enumerate()
        .map(|(i, (v, ty))| convert::coerce(i + 1, v, ty).map_err(|e| e.with_backend(BACKEND)))
        .collect()
}

/// Fail before running a statement whose result columns cannot be decoded.
pub(crate) fn check_columns(stmt: &tokio_postgres::Statement) -> Result<()> {
    match stmt
        .columns()
        .iter()
        .find(|c| !convert::decodable(c.type_()))
    {
        Some(c) => Err(convert::undecodable(c.name(), c.type_()).with_backend(BACKEND)),
        None => Ok(()),
    }
}

pub(crate) fn as_sql<'a>(
    params: &'a [Param<'a>],
) -> impl ExactSizeIterator<Item = &'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync))
}

async fn run_prepared(
    client: &ClientWrapper,
    stmts: &StmtCache,
    s: &Settings,
    sql: &str,
    params: &[Value],
    mode: Mode,
) -> Result<Output> {
    let prepared = match stmts.get(sql) {
        Some(p) => p,
        None => {
            let stmt = Box::pin(client.prepare(sql)).await.map_err(map_err)?;
            let names = convert::column_names(stmt.columns());
            let decodable = check_columns(&stmt).is_ok();
            let p = Arc::new(Prepared {
                stmt,
                names,
                decodable,
            });
            stmts.insert(sql, p.clone(), s.statement_cache_capacity.max(1));
            p
        }
    };
    let stmt = &prepared.stmt;
    let bound = bind_params(stmt, params)?;
    match mode {
        Mode::Execute => {
            // tokio-postgres's `execute_raw`/`query_raw` futures hold room
            // for preparing a statement from text (about 1 KB) even when
            // handed a prepared one: boxed, they stay out of this future.
            let n = Box::pin(client.execute_raw(stmt, as_sql(&bound)))
                .await
                .map_err(map_err)?;
            // The command tag's count: rows changed, or rows returned by a SELECT.
            Ok(Output::Count(n))
        }
        Mode::Query | Mode::First => {
            if !prepared.decodable {
                check_columns(stmt)?;
            }
            let stream = Box::pin(client.query_raw(stmt, as_sql(&bound)))
                .await
                .map_err(map_err)?;
            collect(stream, Some(prepared.names.clone()), mode).await
        }
    }
}

/// Read every row of `stream`; convert them all (`Mode::Query`) or only the
/// first (`Mode::First`). The rest are read either way, so the statement runs
/// to completion and an error in a later row is still reported.
async fn collect(
    stream: tokio_postgres::RowStream,
    mut names: Option<Arc<[String]>>,
    mode: Mode,
) -> Result<Output> {
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    let mut first = None;
    while let Some(r) = stream.try_next().await.map_err(map_err)? {
        if mode == Mode::First && first.is_some() {
            continue;
        }
        let names = names.get_or_insert_with(|| convert::column_names(r.columns()));
        let row = convert::row(names, &r).map_err(|e| e.with_backend(BACKEND))?;
        if mode == Mode::First {
            first = Some(row);
        } else {
            rows.push(row);
        }
    }
    Ok(if mode == Mode::First {
        Output::First(first)
    } else {
        Output::Rows(rows)
    })
}

/// `statement_cache=false`: unnamed statements, parsed, bound and run in one
/// round trip, so they work behind PgBouncer in transaction mode.
async fn run_unnamed(
    client: &ClientWrapper,
    sql: &str,
    params: &[Value],
    mode: Mode,
) -> Result<Output> {
    let scan = lex::scan(sql);
    if scan.max_param != params.len() {
        return Err(count_error(scan.max_param, params.len()));
    }
    let typed = params
        .iter()
        .enumerate()
        .map(|(i, v)| convert::untyped(i + 1, v).map_err(|e| e.with_backend(BACKEND)))
        .collect::<Result<Vec<_>>>()?;
    let items = typed
        .iter()
        .map(|(p, t)| (p as &(dyn ToSql + Sync), t.clone()));
    let stream = client.query_typed_raw(sql, items).await.map_err(map_err)?;
    match mode {
        Mode::Execute => {
            futures_util::pin_mut!(stream);
            while stream.try_next().await.map_err(map_err)?.is_some() {}
            let n = stream.rows_affected().unwrap_or(0);
            Ok(Output::Count(n))
        }
        Mode::Query | Mode::First => collect(stream, None, mode).await,
    }
}

/// Run one of the driver's own statements, with declared parameter types.
/// tokio-postgres's futures are boxed apart, as in `run`.
pub(crate) async fn internal(
    handle: &Handle,
    s: &Settings,
    sql: &str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>> {
    let client = handle.client();
    let rows = if s.statement_cache {
        let stmt = handle.stmts().internal(client, sql, types).await?;
        Box::pin(client.query_raw(&stmt, params.iter().copied())).await
    } else {
        let typed = params.iter().copied().zip(types.iter().cloned());
        Box::pin(client.query_typed_raw(sql, typed)).await
    };
    rows.map_err(map_err)?.try_collect().await.map_err(map_err)
}

/// Like [`internal`], returning the number of rows affected.
pub(crate) async fn internal_execute(
    handle: &Handle,
    s: &Settings,
    sql: &str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let client = handle.client();
    if s.statement_cache {
        let stmt = handle.stmts().internal(client, sql, types).await?;
        Box::pin(client.execute_raw(&stmt, params.iter().copied()))
            .await
            .map_err(map_err)
    } else {
        let typed: Vec<(&(dyn ToSql + Sync), Type)> =
            params.iter().copied().zip(types.iter().cloned()).collect();
        Box::pin(client.execute_typed(sql, &typed))
            .await
            .map_err(map_err)
    }
}
