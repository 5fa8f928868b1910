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
use crate::tls::MakeRustls;
use dbx_core::{Error, ErrorKind, NodeRole, NodeState, NodeStatus, PoolStatus, Result, Row, Value};
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
        let result = tokio::time::timeout(limit, self.connector.connect()).await;
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
