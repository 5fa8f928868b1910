//! The connections: one shared, self-reconnecting multiplexed connection for
//! single commands, and a deadpool pool of exclusive connections for what
//! needs a connection to itself.

use crate::batch::Link;
use crate::config::RedisConfig;
use crate::error::{BACKEND, is_select_refused, map_connect_err, map_err};
use dbx_core::{Error, ErrorKind, PoolStatus, Result};
use deadpool_redis::{Manager, Pool, PoolError, Runtime, TimeoutType};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Reconnect attempts of the shared connection after the first one fails,
/// before the waiting commands get the error (the next command starts over).
const RECONNECT_RETRIES: usize = 1;
/// Longest pause between two reconnect attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

impl Shared {
    /// Whether redis-rs alone bounds every command on the shared connection
    /// by the operation timeout: each command by its response timeout (the
    /// operation timeout), and a reconnect a command may wait for by
    /// `RECONNECT_RETRIES + 1` connect timeouts and one pause, which must
    /// fit within the operation timeout too.
    pub(crate) fn bounds_commands(&self) -> bool {
        let c = &self.config;
        let attempts = u32::try_from(RECONNECT_RETRIES + 1).unwrap_or(u32::MAX);
        c.connect_timeout
            .checked_mul(attempts)
            .and_then(|d| d.checked_add(RECONNECT_MAX_DELAY))
            .is_some_and(|reconnect| reconnect <= c.timeout)
    }
}

/// State shared by the backend, the key-value store and exclusive connections.
pub(crate) struct Shared {
    pub(crate) config: RedisConfig,
    client: redis::Client,
    /// The shared connection, with its generation (bumped when it is
    /// replaced) and its queue of commands; `None` once closed.
    link: RwLock<Option<Arc<Link>>>,
    pool: Pool,
    closed: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("pool", &self.pool.status())
            .field("closed", &self.is_closed())
            .finish()
    }
}

fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(RECONNECT_MAX_DELAY)
}

impl Shared {
    /// Open the pool, check address, credentials and database on one pooled
    /// connection (its errors are precise: no reconnect loop in between),
    /// then open the shared connection.
    pub(crate) async fn open(config: RedisConfig) -> Result<Self> {
        let client = config.client()?;
        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.timeout));
        let manager =
            Manager::new_with_config(client.get_connection_info().clone(), connection_config)
                .map_err(|e| map_connect_err(e, &config.target, config.db))?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_max_size)
            .wait_timeout(Some(config.acquire_timeout))
            .create_timeout(Some(config.connect_timeout))
            // The recycling check is one PING round trip: as quick as a connect.
            .recycle_timeout(Some(config.timeout.min(config.connect_timeout)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::invalid_config(format!("cannot build the Redis pool: {e}")))?;
        let mut first = pool.get().await.map_err(|e| pool_error(e, &config))?;
        // The handshake sends no command when there is no password, no
        // database and nothing else to set up: a PING makes sure the server
        // speaks Redis and serves us (NOAUTH when it wants a password).
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut *first).await;
        pong.map_err(|e| map_connect_err(e, &config.target, config.db))?;
        drop(first);
        let shared = ConnectionManager::new_with_config(client.clone(), manager_config(&config))
            .await
            .map_err(|e| map_connect_err(e, &config.target, config.db))?;
        tracing::debug!(target: "dbx_redis", server = %config.target, db = config.db, "connected");
        Ok(Shared {
            config,
            client,
            link: RwLock::new(Some(Arc::new(Link::new(0, shared)))),
            pool,
            closed: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(crate::error::closed())
        } else {
            Ok(())
        }
    }

    /// The shared connection of the current generation (an `Arc` clone).
    fn current(&self) -> Result<Arc<Link>> {
        self.check_open()?;
        let guard = self.link.read().unwrap_or_else(|p| p.into_inner());
        guard.clone().ok_or_else(crate::error::closed)
    }

    /// A handle on the shared connection (an `Arc` clone).
    pub(crate) fn manager(&self) -> Result<ConnectionManager> {
        self.current().map(|link| link.manager.clone())
    }

    /// Map an error of the shared connection of generation `generation`.
    ///
    /// A handshake that fails while reconnecting (a rotated password, a
    /// database the server no longer has) stays cached in redis-rs's
    /// connection manager, which only retries I/O errors: every later
    /// command would get the same error forever. So that manager is replaced
    /// by a fresh one (once, however many commands saw the error) and the
    /// next command connects again.
    fn shared_error(&self, generation: u64, e: redis::RedisError) -> Error {
        let handshake = e.kind() == redis::ErrorKind::AuthenticationFailed || is_select_refused(&e);
        if !handshake {
            return map_err(e);
        }
        let mut guard = self.link.write().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = guard.as_ref()
            && current.generation == generation
        {
            match ConnectionManager::new_lazy_with_config(
                self.client.clone(),
                manager_config(&self.config),
            ) {
                Ok(fresh) => {
                    tracing::warn!(
                        target: "dbx_redis",
                        server = %self.config.target,
                        error = %e,
                        "reconnecting the shared connection failed its handshake; the next command connects again"
                    );
                    *guard = Some(Arc::new(Link::new(generation + 1, fresh)));
                }
                Err(err) => tracing::warn!(
                    target: "dbx_redis",
                    error = %err,
                    "cannot replace the shared connection"
                ),
            }
        }
        drop(guard);
        map_connect_err(e, &self.config.target, self.config.db)
    }

    /// Run one command on the shared connection, pipelined with the other
    /// tasks' commands of the same turn of the scheduler (no timeout of its
    /// own: the caller bounds it).
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        let link = self.current()?;
        let value = link
            .query(cmd)
            .await
            .map_err(|e| self.shared_error(link.generation, e))?;
        redis::from_redis_value(value).map_err(|e| map_err(e.into()))
    }

    /// Run a pipeline (atomic or not) on the shared connection.
    pub(crate) async fn query_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        let link = self.current()?;
        let mut conn = link.manager.clone();
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| self.shared_error(link.generation, e))
    }

    /// Check out an exclusive connection: waiting for a free one is bounded by
    /// `acquire_timeout`, opening one by `connect_timeout`, and the recycling
    /// check (UNWATCH + PING round trip) by the smaller of `timeout` and
    /// `connect_timeout`; the whole checkout by `acquire_timeout +
    /// connect_timeout`.
    pub(crate) async fn checkout(&self) -> Result<deadpool_redis::Connection> {
        self.check_open()?;
        let c = &self.config;
        let limit = c.acquire_timeout + c.connect_timeout;
        match tokio::time::timeout(limit, self.pool.get()).await {
            Ok(r) => r.map_err(|e| pool_error(e, c)),
            Err(_) => Err(Error::new(
                ErrorKind::PoolTimeout,
                format!("no pooled Redis connection became usable within {limit:?}"),
            )
            .with_backend(BACKEND)),
        }
    }

    pub(crate) fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        let in_use = s.size.saturating_sub(s.available);
        PoolStatus::new(
            self.config.pool_max_size,
            s.size,
            s.available,
            in_use,
            s.waiting,
        )
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Refuse new work, close the pool and drop the shared connection (it
    /// closes once commands still in flight have finished).
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pool.close();
        let taken = self.link.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
        tracing::debug!(target: "dbx_redis", server = %self.config.target, "closed");
    }
}

fn pool_error(e: PoolError, c: &RedisConfig) -> Error {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => Error::new(
            ErrorKind::PoolTimeout,
            format!(
                "no pooled Redis connection became free within {:?} (pool_max_size {})",
                c.acquire_timeout, c.pool_max_size
            ),
        ),
        PoolError::Timeout(TimeoutType::Create) => Error::new(
            ErrorKind::Timeout,
            format!(
                "connecting to {} did not finish within {:?}",
                c.target, c.connect_timeout
            ),
        ),
        PoolError::Timeout(TimeoutType::Recycle) => Error::new(
            ErrorKind::Timeout,
            format!("checking a pooled connection to {} timed out", c.target),
        ),
        PoolError::Backend(e) => map_connect_err(e, &c.target, c.db),
        PoolError::Closed => Error::new(ErrorKind::Closed, "the Redis connection pool was closed"),
        other => Error::new(ErrorKind::Other, format!("Redis pool: {other}")),
    }
    .with_backend(BACKEND)
}

/// Commands that change the state of the connection they run on, or block
/// it: on the shared connection they would leak into (or stall) every other
/// task's commands, so they run on an exclusive connection only.
pub(crate) fn shared_refusal(cmd: &Cmd) -> Option<String> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = String::from_utf8_lossy(args.next()?).to_ascii_uppercase();
    const STATEFUL: &[&str] = &[
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH",
        "UNWATCH",
        "SELECT",
        "AUTH",
        "HELLO",
        "RESET",
        "QUIT",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
        "MONITOR",
        "SYNC",
        "PSYNC",
        "READONLY",
        "READWRITE",
    ];
    const BLOCKING: &[&str] = &[
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "WAIT",
        "WAITAOF",
    ];
    let blocking = BLOCKING.contains(&name.as_str())
        || (matches!(name.as_str(), "XREAD" | "XREADGROUP")
            && args
                .by_ref()
                .take_while(|a| !a.eq_ignore_ascii_case(b"STREAMS"))
                .any(|a| a.eq_ignore_ascii_case(b"BLOCK")));
    let stateful = STATEFUL.contains(&name.as_str())
        || (name == "CLIENT"
            && args.next().is_some_and(|sub| {
                [
                    &b"REPLY"[..],
                    b"TRACKING",
                    b"SETNAME",
                    b"NO-EVICT",
                    b"NO-TOUCH",
                ]
                .iter()
                .any(|s| sub.eq_ignore_ascii_case(s))
            }));
    let why = if stateful {
        "changes the state of the connection it runs on"
    } else if blocking {
        "blocks the connection it runs on"
    } else {
        return None;
    };
    Some(format!(
        "{name} {why}, and the shared connection carries every task's commands: \
         run it on an exclusive connection (RedisBackend::exclusive)"
    ))
}

/// A pooled connection for this caller alone, from
/// [`RedisBackend::exclusive`](crate::RedisBackend::exclusive): for
/// MULTI/WATCH transactions, blocking commands and anything else that needs a
/// connection to itself. It goes back to the pool when dropped (and is
/// checked with an UNWATCH + PING round trip before anyone else gets it).
///
/// Every call is bounded by the operation `timeout` (use
/// [`cmd_with_timeout`](Self::cmd_with_timeout) for blocking commands that
/// wait longer). A connection whose command timed out may still receive that
/// reply later, so it is discarded instead of going back to the pool.
pub struct ExclusiveConnection {
    conn: Option<deadpool_redis::Connection>,
    shared: std::sync::Arc<Shared>,
    broken: bool,
}

impl std::fmt::Debug for ExclusiveConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExclusiveConnection")
            .field("server", &self.shared.config.target)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl ExclusiveConnection {
    pub(crate) fn new(conn: deadpool_redis::Connection, shared: std::sync::Arc<Shared>) -> Self {
        ExclusiveConnection {
            conn: Some(conn),
            shared,
            broken: false,
        }
    }

    fn conn(&mut self) -> Result<&mut deadpool_redis::Connection> {
        self.shared.check_open()?;
        self.conn.as_mut().ok_or_else(|| {
            Error::new(ErrorKind::Closed, "the exclusive connection was released")
                .with_backend(BACKEND)
        })
    }

    /// Run one command and convert its reply to `T`.
    pub async fn cmd<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T> {
        let limit = self.shared.config.timeout;
        self.cmd_with_timeout(cmd, limit).await
    }

    /// Run one command with a deadline of its own, for blocking commands such
    /// as `BLPOP key 30`: give the command's own (server-side) timeout plus a
    /// margin for the round trip.
    pub async fn cmd_with_timeout<T: FromRedisValue>(
        &mut self,
        cmd: &Cmd,
        limit: Duration,
    ) -> Result<T> {
        if limit.is_zero() {
            return Err(
                Error::invalid_input("the timeout of a command must be above zero")
                    .with_backend(BACKEND)
                    .with_operation("redis.exclusive.cmd"),
            );
        }
        let default = self.shared.config.timeout;
        let result = {
            let conn = self
                .conn()
                .map_err(|e| e.with_operation("redis.exclusive.cmd"))?;
            conn.set_response_timeout(limit);
            let r = tokio::time::timeout(
                limit + Duration::from_millis(100),
                cmd.query_async(&mut **conn),
            )
            .await;
            conn.set_response_timeout(default);
            r
        };
        self.settle(result, limit, "redis.exclusive.cmd")
    }

    /// Run a pipeline; with [`Pipeline::atomic`] it is sent as MULTI ... EXEC.
    pub async fn pipeline<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> Result<T> {
        let limit = self.shared.config.timeout;
        let result = {
            let conn = self
                .conn()
                .map_err(|e| e.with_operation("redis.exclusive.pipeline"))?;
            tokio::time::timeout(
                limit + Duration::from_millis(100),
                pipe.query_async(&mut **conn),
            )
            .await
        };
        self.settle(result, limit, "redis.exclusive.pipeline")
    }

    /// The redis-rs connection itself, for its typed command API
    /// (`redis::AsyncCommands`). Calls made this way are bounded by the
    /// connection's response timeout (the operation `timeout`) but their
    /// errors are redis-rs's own.
    pub fn raw(&mut self) -> Result<&mut redis::aio::MultiplexedConnection> {
        Ok(&mut **self.conn()?)
    }

    fn settle<T>(
        &mut self,
        result: std::result::Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
        limit: Duration,
        op: &'static str,
    ) -> Result<T> {
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_timeout() || e.is_unrecoverable_error() || e.is_io_error() {
                    self.broken = true;
                }
                Err(map_err(e).with_operation(op))
            }
            Err(_) => {
                self.broken = true;
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply from Redis within {limit:?}"),
                )
                .with_backend(BACKEND)
                .with_operation(op))
            }
        }
    }
}

impl Drop for ExclusiveConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.broken
        {
            // Out of the pool for good: a late reply must not reach the next user.
            drop(deadpool_redis::Connection::take(conn));
        }
    }
}
