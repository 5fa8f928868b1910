//! Connections: a few shared, pipelined clients for single statements and a
//! deadpool pool of exclusive connections for transactions and streams.

mod exec;
mod lease;
mod pool;
mod shared;
mod stmt_cache;

pub(crate) use exec::*;
pub(crate) use lease::*;
pub(crate) use pool::*;
pub(crate) use shared::*;
pub(crate) use stmt_cache::*;

use crate::config::{SessionAttrs, Settings};
use crate::convert::{self, Param};
use crate::error::{BACKEND, map_err, sqlstate};
use crate::lex;
use crate::tls::MakeTls;
use dbx_core::{
    BoundedRows, Error, ErrorKind, NodeRole, NodeState, NodeStatus, PoolStatus, Result, Row, Value,
};
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

impl Conns {
    /// Build the pool and, when `eager`, open the first connection, so that
    /// a wrong address, password or database fails here.
    pub(crate) async fn open(settings: Settings, eager: bool) -> Result<Arc<Conns>> {
        let connector = Connector {
            tls: settings.tls.clone(),
            hosts: settings.hosts.clone().into(),
            session: settings.session,
            load_balance: settings.load_balance,
            last_host: Arc::default(),
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
            connector: connector.clone(),
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
        if eager {
            if conns.shared.is_empty() {
                drop(conns.acquire().await?);
            } else {
                conns.connect_slot(0).await?;
                // The others in the background: until they are up, the first
                // one and the pool serve.
                for i in 1..conns.shared.len() {
                    conns.kick(i);
                }
            }
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

    /// The host connections go to: the one host, or with several, the
    /// one the last connection went to (`None` before any).
    pub(crate) fn host(&self) -> Option<String> {
        if self.connector.hosts.len() == 1 {
            self.connector.hosts.first().map(pool::host_name)
        } else {
            self.connector.last_host()
        }
    }

    /// Every host of the URL, probed (see [`Connector::probe_hosts`]).
    pub(crate) async fn probe_hosts(&self) -> Vec<NodeStatus> {
        self.connector
            .probe_hosts(self.settings.connect_timeout.min(self.settings.timeout))
            .await
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

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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

    /// Where a single statement runs: the least busy shared client that is
    /// not stalled (see [`SharedConn::stalled`]); when every live one is
    /// stalled, or with `shared_clients=0`, an exclusive pooled connection.
    pub(crate) async fn handle(self: &Arc<Self>) -> Result<Handle> {
        if !self.shared.is_empty() {
            self.check_open()?;
            if let Some(c) = self.shared_client().await? {
                return Ok(Handle::Shared(c));
            }
        }
        // Boxed: deadpool's checkout future is about 2 KB, which would
        // otherwise size every statement's future (see `run`).
        Ok(Handle::Exclusive(Box::new(Box::pin(self.acquire()).await?)))
    }

    /// A live shared client for one statement: an idle one if any (looked
    /// for from a rotating start), else the one with the fewest statements
    /// in flight among those not stalled; `None` when every live one is
    /// stalled. Slots without a live client are reconnected in the
    /// background meanwhile; when none is live, the caller waits for one
    /// reconnect (bounded by `connect_timeout`).
    async fn shared_client(self: &Arc<Self>) -> Result<Option<InFlight>> {
        let n = self.shared.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let stall = self.settings.shared_stall;
        let mut best: Option<(usize, Arc<SharedConn>)> = None;
        let mut live = false;
        for k in 0..n {
            let i = (start + k) % n;
            let Some(c) = self.shared[i].live() else {
                self.kick(i);
                continue;
            };
            live = true;
            if self
                .settings
                .max_lifetime
                .is_some_and(|m| c.created.elapsed() >= m)
            {
                self.kick(i);
            }
            let load = c.load();
            if load == 0 {
                return Ok(Some(c.enter()));
            }
            if stall.is_some_and(|s| c.stalled(s)) {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| load < *b) {
                best = Some((load, c));
            }
        }
        match best {
            Some((_, c)) => Ok(Some(c.enter())),
            None if live => Ok(None),
            None => Ok(Some(self.connect_slot(start).await?.enter())),
        }
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
        let result = tokio::time::timeout(limit, self.connector.connect()).await;
        slot.attempts.fetch_add(1, Ordering::AcqRel);
        let error = match result {
            Ok(Ok((client, task))) => {
                let conn = Arc::new(SharedConn::new(
                    ClientWrapper::new(client, task),
                    self.settings.timeout,
                ));
                if self.closed.load(Ordering::Acquire) {
                    return Err(
                        Error::new(ErrorKind::Closed, "the database handle was closed")
                            .with_backend(BACKEND),
                    );
                }
                slot.set(Some(conn.clone()));
                return Ok(conn);
            }
            Ok(Err(e)) => connect_error(&self.settings, e),
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
    Shared(InFlight),
    Exclusive(Box<Lease>),
}

impl Handle {
    pub(crate) fn client(&self) -> &ClientWrapper {
        match self {
            Handle::Shared(c) => &c.conn.client,
            Handle::Exclusive(l) => l.client(),
        }
    }

    pub(crate) fn stmts(&self) -> &StmtCache {
        match self {
            Handle::Shared(c) => &c.conn.stmts,
            Handle::Exclusive(l) => l.stmts(),
        }
    }

    /// Armed while a statement runs; dropped armed (the operation was
    /// dropped midway), it cancels the statement on an exclusive connection
    /// (see [`Lease::abandon`]), and on a shared one keeps the client counted
    /// busy until the server is done with the statement (a cancel request
    /// there could hit another caller's statement; `statement_timeout`
    /// bounds those).
    pub(crate) fn guard(&self) -> StmtGuard<'_> {
        StmtGuard {
            handle: self,
            armed: true,
        }
    }
}

/// See [`Handle::guard`].
pub(crate) struct StmtGuard<'a> {
    handle: &'a Handle,
    armed: bool,
}

impl StmtGuard<'_> {
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    /// The statement's answer was left partly unread (a bounded read that
    /// stopped early): the connection reads and discards the rest. A shared
    /// client stays counted busy until the server is done (as for an
    /// abandoned statement, without any cancel); an exclusive connection
    /// goes back to the pool, where its next statement waits behind the
    /// rest of the answer.
    pub(crate) fn left_unread(mut self) {
        if matches!(self.handle, Handle::Exclusive(_)) {
            self.armed = false;
        }
    }
}

impl Drop for StmtGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            match self.handle {
                Handle::Shared(c) => c.abandoned.store(true, Ordering::Release),
                Handle::Exclusive(l) => l.abandon(),
            }
        }
    }
}
