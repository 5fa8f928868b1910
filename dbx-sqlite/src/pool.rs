//! A bounded pool of rusqlite connections and the way blocking work runs.
//!
//! # Execution design
//!
//! SQLite is a library call, not a network round trip: a point select takes
//! about half a microsecond. Handing each call to another thread costs far
//! more than the call itself (measured on the development machine, point
//! select by primary key on 10k rows: raw rusqlite ~0.45 us;
//! `spawn_blocking` ~25 us; a dedicated worker thread and channel ~50 us;
//! `block_in_place` ~0.6-0.75 us). So on Tokio's multi-thread runtime each
//! operation runs on the calling task's own thread inside
//! [`tokio::task::block_in_place`], which first moves the thread's other
//! tasks to another worker, so the runtime never stalls. `block_in_place`
//! panics on a current-thread runtime (the default of `#[tokio::test]`, and
//! a common choice on small devices). There a statement on a pooled
//! connection first runs inline with a budget of [`INLINE_BUDGET`]: nearly
//! every statement finishes well within it, for the price of a direct call.
//! One that does not is interrupted by the progress handler and, as SQLite
//! rolls an interrupted statement back whole in autocommit mode (and a
//! driver job's own interrupted transaction is rolled back when the job
//! drops it), run again from the start through
//! [`tokio::task::spawn_blocking`] with the rest of its timeout, provided
//! the attempt committed nothing, so the runtime's only thread is never held
//! for longer than the budget. Transactions (not in autocommit mode) go straight to
//! `spawn_blocking`, as does other work on any other flavor. Outside any
//! Tokio runtime the work runs inline.
//!
//! Long statements are stopped by SQLite's progress handler, which checks a
//! per-connection deadline every few hundred VM steps: a Tokio timer cannot
//! interrupt blocking work, but SQLite can interrupt itself.

use crate::error::{BACKEND, map_err};
use dbx_core::{Error, ErrorKind, PoolStatus, Result};
use rusqlite::{Connection, OpenFlags};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;

/// VM steps between two deadline checks.
const PROGRESS_STEPS: i32 = 1000;

/// How long a statement may hold a current-thread runtime's thread before it
/// is interrupted and moved to a blocking thread (see the module docs).
pub(crate) const INLINE_BUDGET: Duration = Duration::from_millis(2);

/// How to open one connection.
#[derive(Debug, Clone)]
pub(crate) struct OpenConfig {
    /// A path, or a `file:` URI for the shared in-memory database.
    pub(crate) target: String,
    pub(crate) memory: bool,
    pub(crate) busy_timeout: Duration,
    pub(crate) journal_mode: Option<String>,
    pub(crate) synchronous: Option<String>,
    pub(crate) foreign_keys: bool,
    pub(crate) cache_capacity: usize,
    /// `PRAGMA mmap_size`, if set: bytes of the file read through a memory map.
    pub(crate) mmap_size: Option<u64>,
}

type Statements<'c> = crate::stmt::StmtCache<'c>;

self_cell::self_cell!(
    /// A rusqlite connection and the application's statements prepared on
    /// it, which borrow it (see [`StmtCache`](crate::stmt::StmtCache)).
    /// The statements are finalized before the connection closes.
    pub(crate) struct Session {
        owner: Connection,
        #[covariant]
        dependent: Statements,
    }
);

// SAFETY: a `Session` is a connection together with every statement that
// borrows it; nothing outside holds a reference into it (self_cell gives
// out borrows only for the duration of a call on `&mut Session` or
// `&Session`). rusqlite's `Connection` is `Send`: SQLite (built
// thread-safe, as the bundled library is) lets a connection and its
// statements be used from any one thread at a time. A `Statement` is not
// `Send` only because it holds a `&Connection` (`Connection` is not `Sync`)
// and a raw statement pointer; moving the connection and all its statements
// together, as rusqlite itself does with the statements of its own cache
// inside `Connection`, keeps them on one thread at a time. `Session` stays
// `!Sync`, so no two threads can reach it at once. Measured need: keeping
// statements here rather than in rusqlite's cache saves about 1,100
// instructions of the ~8,700 of a point select (callgrind; see StmtCache).
#[allow(unsafe_code)]
unsafe impl Send for Session {}

/// One pooled connection with its deadline cell and the statements dbx
/// keeps prepared on it. Derefs to the rusqlite connection.
pub(crate) struct Conn {
    session: Session,
    deadline: Arc<AtomicU64>,
    /// The pool's deadline clock (see [`Conn::past_deadline`]).
    epoch: Instant,
    /// Transactions committed on this connection (SQLite's commit hook; a
    /// read-only transaction does not count). An inline attempt that was
    /// interrupted may run again only if this did not move.
    commits: Arc<AtomicU64>,
    /// Whether the busy timeout is off, as for inline runs (see
    /// [`Guard::with_budget`]); switched only when the mode changes.
    busy_off: bool,
}

impl Conn {
    /// Whether the deadline of the work running on this connection has
    /// passed: what the progress handler checks inside SQLite, for long
    /// work done outside it (a scan of a vector mirror).
    pub(crate) fn past_deadline(&self) -> bool {
        let d = self.deadline.load(Ordering::Relaxed);
        d != 0 && self.epoch.elapsed().as_nanos() as u64 > d
    }

    /// Run `f` with the connection and its cache of the application's
    /// prepared statements.
    pub(crate) fn with_statements<R>(
        &mut self,
        f: impl for<'c> FnOnce(&'c Connection, &mut Statements<'c>) -> R,
    ) -> R {
        self.session
            .with_dependent_mut(|conn, stmts| f(conn, stmts))
    }
}

impl std::ops::Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.session.borrow_owner()
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) struct Pool {
    /// Boxed, so checking a connection out and back in moves a pointer,
    /// not the connection with its caches.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<Conn>>>,
    /// One permit per connection slot. A checked-out [`Guard`] holds one
    /// (forgotten when taken, added back when the guard is dropped).
    permits: Semaphore,
    max_size: usize,
    open: AtomicUsize,
    waiting: AtomicUsize,
    closed: AtomicBool,
    config: OpenConfig,
    acquire_timeout: Duration,
    op_timeout: Duration,
    /// Start of this pool's deadline clock.
    epoch: Instant,
}

impl Pool {
    pub(crate) fn new(
        config: OpenConfig,
        max_size: usize,
        acquire_timeout: Duration,
        op_timeout: Duration,
    ) -> Self {
        Pool {
            idle: Mutex::new(Vec::with_capacity(max_size)),
            permits: Semaphore::new(max_size),
            max_size,
            open: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            config,
            acquire_timeout,
            op_timeout,
            epoch: Instant::now(),
        }
    }

    /// Open one connection and configure it (pragmas, deadline handler).
    pub(crate) fn open_conn(&self) -> Result<Box<Conn>> {
        let c = &self.config;
        let mut conn =
            Connection::open_with_flags(&c.target, OpenFlags::default()).map_err(|e| {
                let target = if c.memory {
                    ":memory:"
                } else {
                    c.target.as_str()
                };
                let kind = map_err(e);
                Error::new(
                    ErrorKind::Connect,
                    format!("cannot open SQLite database {target:?}: {}", kind.message()),
                )
                .with_source(kind)
            })?;
        conn.busy_timeout(c.busy_timeout).map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(c.cache_capacity);
        if let Some(mode) = &c.journal_mode {
            // Values were checked against a fixed list: never user text in SQL.
            conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()))
                .map_err(map_err)?;
        }
        if let Some(sync) = &c.synchronous {
            conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))
                .map_err(map_err)?;
        }
        if let Some(bytes) = c.mmap_size {
            // A checked whole number: never user text in SQL.
            conn.execute_batch(&format!("PRAGMA mmap_size = {bytes}"))
                .map_err(map_err)?;
        }
        conn.execute_batch(if c.foreign_keys {
            "PRAGMA foreign_keys = ON"
        } else {
            "PRAGMA foreign_keys = OFF"
        })
        .map_err(map_err)?;
        let deadline = Arc::new(AtomicU64::new(0));
        let cell = deadline.clone();
        let epoch = self.epoch;
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let d = cell.load(Ordering::Relaxed);
                d != 0 && epoch.elapsed().as_nanos() as u64 > d
            }),
        )
        .map_err(map_err)?;
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        conn.commit_hook(Some(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            false
        }))
        .map_err(map_err)?;
        self.open.fetch_add(1, Ordering::Relaxed);
        let capacity = c.cache_capacity;
        Ok(Box::new(Conn {
            session: Session::new(conn, |_| crate::stmt::StmtCache::new(capacity)),
            deadline,
            epoch,
            commits,
            busy_off: false,
        }))
    }

    /// Wait for a permit (bounded by the acquire timeout) and take an idle
    /// connection if there is one; the connection is opened later, on the
    /// blocking side, if there is none.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Guard> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let permit = match self.permits.try_acquire() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let r = tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await;
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                match r {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(closed()),
                    Err(_) => {
                        return Err(Error::new(
                            ErrorKind::PoolTimeout,
                            format!(
                                "no pooled connection became free within {:?} (pool_max_size {})",
                                self.acquire_timeout, self.max_size
                            ),
                        )
                        .with_backend(BACKEND));
                    }
                }
            }
        };
        // Given back by `Guard::drop` (no `Arc` clone per checkout).
        permit.forget();
        let conn = self.idle.lock().map(|mut v| v.pop()).unwrap_or_default();
        Ok(Guard {
            pool: self.clone(),
            conn,
        })
    }

    fn put_back(&self, c: Box<Conn>) {
        c.deadline.store(0, Ordering::Relaxed);
        if !c.is_autocommit() {
            // A transaction was left open (dropped, cancelled or failed):
            // roll it back before anyone else gets this connection.
            if let Err(e) = c.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "sqlite: rollback of an unfinished transaction failed; discarding the connection");
                self.open.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
        if self.closed.load(Ordering::Acquire) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
    }

    pub(crate) fn status(&self) -> PoolStatus {
        let idle = self.idle.lock().map(|v| v.len()).unwrap_or(0);
        let size = self.open.load(Ordering::Relaxed);
        PoolStatus::new(
            self.max_size,
            size,
            idle,
            size.saturating_sub(idle),
            self.waiting.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let drained: Vec<Box<Conn>> = self
            .idle
            .lock()
            .map(|mut v| v.drain(..).collect())
            .unwrap_or_default();
        self.open.fetch_sub(drained.len(), Ordering::Relaxed);
        drop(drained);
    }

    /// Run `f` on a pooled connection without stalling the async runtime
    /// (see the module docs for the design), bounded by the operation timeout.
    /// `f` may run twice on a current-thread runtime: after an inline attempt
    /// that SQLite interrupted, and so rolled back, at the inline budget.
    pub(crate) async fn run<R, F>(self: &Arc<Self>, f: F) -> Result<R>
    where
        F: Fn(&mut Conn) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.run_job(f).await
    }

    /// [`run`](Pool::run) for any [`Job`]: one that borrows its input is
    /// copied only if it has to move to a blocking thread.
    pub(crate) async fn run_job<J: Job>(self: &Arc<Self>, job: J) -> Result<J::Output> {
        let mut guard = self.acquire().await?;
        let timeout = self.op_timeout;
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| guard.with(timeout, |c| job.call(c)))
            }
            Ok(_) => {
                let mut rest = timeout;
                if timeout > INLINE_BUDGET {
                    match guard.with_budget(INLINE_BUDGET, &job) {
                        Inline::Done(r) => return r,
                        // At most the budget (and the checks between two
                        // progress calls) has passed.
                        Inline::OverBudget => rest = timeout - INLINE_BUDGET,
                    }
                }
                let owned = job.into_owned();
                tokio::task::spawn_blocking(move || guard.with(rest, owned))
                    .await
                    .map_err(|e| {
                        Error::new(ErrorKind::Other, "SQLite worker task failed")
                            .with_source(e)
                            .with_backend(BACKEND)
                    })?
            }
            Err(_) => guard.with(timeout, |c| job.call(c)),
        }
    }
}

/// Work for [`Pool::run_job`]: called by reference where it runs on the
/// caller's thread, turned into an owned closure where it has to move to a
/// blocking thread.
pub(crate) trait Job: Send {
    type Output: Send + 'static;
    type Owned: FnOnce(&mut Conn) -> Result<Self::Output> + Send + 'static;
    fn call(&self, conn: &mut Conn) -> Result<Self::Output>;
    fn into_owned(self) -> Self::Owned;
}

impl<R, F> Job for F
where
    F: Fn(&mut Conn) -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    type Output = R;
    type Owned = F;
    fn call(&self, conn: &mut Conn) -> Result<R> {
        self(conn)
    }
    fn into_owned(self) -> F {
        self
    }
}

/// A statement function with borrowed SQL text and parameters: they are
/// copied only when the statement moves to a blocking thread.
pub(crate) struct Stmt<'a, R> {
    pub(crate) sql: &'a str,
    pub(crate) params: &'a [dbx_core::Value],
    pub(crate) f: fn(&mut Conn, &str, &[dbx_core::Value]) -> Result<R>,
}

impl<R: Send + 'static> Job for Stmt<'_, R> {
    type Output = R;
    type Owned = Box<dyn FnOnce(&mut Conn) -> Result<R> + Send>;
    fn call(&self, conn: &mut Conn) -> Result<R> {
        (self.f)(conn, self.sql, self.params)
    }
    fn into_owned(self) -> Self::Owned {
        let (sql, params, f) = (self.sql.to_owned(), self.params.to_vec(), self.f);
        Box::new(move |conn| f(conn, &sql, &params))
    }
}

/// Run blocking work as the module docs describe: `block_in_place` on the
/// multi-thread runtime, `spawn_blocking` on any other flavor, inline outside Tokio.
pub(crate) async fn on_blocking_side<R, F>(f: F) -> Result<R>
where
    F: FnOnce() -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => tokio::task::spawn_blocking(f).await.map_err(|e| {
            Error::new(ErrorKind::Other, "SQLite worker task failed")
                .with_source(e)
                .with_backend(BACKEND)
        })?,
        Err(_) => f(),
    }
}

fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the SQLite pool is closed").with_backend(BACKEND)
}

/// A checked-out connection slot. Dropping it returns the connection to the
/// pool, rolling back any transaction it left open, and gives the slot's
/// permit back.
#[derive(Debug)]
pub(crate) struct Guard {
    pool: Arc<Pool>,
    conn: Option<Box<Conn>>,
}

impl Guard {
    /// Run `f` on this slot's connection (opened now if the slot has none),
    /// with the deadline set to `timeout` from now.
    pub(crate) fn with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&mut Conn) -> Result<R>,
    ) -> Result<R> {
        self.busy_mode(false)?;
        self.run_on(timeout, f)
    }

    /// Switch the busy timeout off (for an inline run) or back on, if it is
    /// not so already. A connection whose busy timeout cannot be restored
    /// would fail at the first lock: it is dropped, not given back.
    fn busy_mode(&mut self, off: bool) -> Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.open_conn()?);
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(closed());
        };
        if c.busy_off == off {
            return Ok(());
        }
        let timeout = if off {
            Duration::ZERO
        } else {
            self.pool.config.busy_timeout
        };
        match c.busy_timeout(timeout) {
            Ok(()) => {
                c.busy_off = off;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(target: "dbx", error = %e, "dbx: could not set the SQLite busy timeout; dropping the connection");
                self.conn = None;
                self.pool.open.fetch_sub(1, Ordering::Relaxed);
                Err(map_err(e))
            }
        }
    }

    /// Run `f` on the connection as it is, with the deadline set to
    /// `timeout` from now.
    fn run_on<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&mut Conn) -> Result<R>,
    ) -> Result<R> {
        let Some(c) = self.conn.as_mut() else {
            return Err(closed());
        };
        let deadline = (self.pool.epoch.elapsed() + timeout).as_nanos() as u64;
        c.deadline.store(deadline.max(1), Ordering::Relaxed);
        let r = f(c);
        c.deadline.store(0, Ordering::Relaxed);
        r
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.pool.op_timeout
    }

    /// Run `f` inline for at most `budget`, on a connection in autocommit
    /// mode only: there an interrupted statement is rolled back whole (an
    /// interrupted transaction too, when `f` drops it), so it can run again
    /// elsewhere, provided `f` has committed nothing before the interruption
    /// (the connection's commit count did not move). Counting commits, not
    /// changed rows, lets a job whose changes sit in a transaction that was
    /// rolled back run again. A failure otherwise (a transaction left open,
    /// a change committed before the interruption) is returned as it is,
    /// never run twice.
    fn with_budget<J: Job>(&mut self, budget: Duration, job: &J) -> Inline<J::Output> {
        let Some(before) = self
            .conn
            .as_ref()
            .filter(|c| c.is_autocommit())
            .map(|c| c.commits.load(Ordering::Relaxed))
        else {
            return Inline::OverBudget;
        };
        // Inline, a locked database fails at once instead of sleeping in
        // the busy handler on the runtime's only thread (a transaction on
        // that same thread may be what holds the lock); the blocking retry
        // waits the configured busy timeout. The connection stays in this
        // mode until a run elsewhere needs its busy timeout back.
        if self.busy_mode(true).is_err() {
            // The connection was dropped; a blocking thread opens another.
            return Inline::OverBudget;
        }
        // Only the progress handler, at the deadline, interrupts a
        // statement, and only a busy database fails with SQLITE_BUSY: a
        // Timeout here means the budget ran out or the database was busy.
        let r = self.run_on(budget, |c| job.call(c));
        match r {
            Err(e)
                if e.kind() == ErrorKind::Timeout
                    && self.conn.as_ref().is_some_and(|c| {
                        c.is_autocommit() && c.commits.load(Ordering::Relaxed) == before
                    }) =>
            {
                Inline::OverBudget
            }
            r => Inline::Done(r),
        }
    }
}

/// The outcome of an inline attempt.
enum Inline<R> {
    /// Finished (or failed for a reason of its own).
    Done(Result<R>),
    /// Interrupted at the budget and rolled back: run it again elsewhere.
    OverBudget,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.put_back(c);
        }
        self.pool.permits.add_permits(1);
    }
}
