#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod config;
mod conn;
mod error;
mod kv;

use crate::config::{PARAMS, RedisConfig};
use crate::conn::{Shared, shared_refusal};
use crate::error::BACKEND;
use crate::kv::RedisKv;
use dbx_core::driver::{Backend, Driver, KvStore};
use dbx_core::{ConnectOptions, Error, ErrorKind, PoolStatus, Result};
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{DEFAULT_POOL_SIZE, DEFAULT_PORT};
pub use crate::conn::ExclusiveConnection;
/// redis-rs, the client underneath, for everything not re-exported below
/// (without matching its version yourself).
pub use redis;
/// What raw commands need, under one path: build a command with [`cmd`] or a
/// pipeline with [`pipe`], run it with [`RedisBackend::cmd`] or
/// [`RedisBackend::pipeline`], and read the reply as any
/// [`FromRedisValue`] type or as a raw [`Value`].
pub use redis::{Cmd, FromRedisValue, Pipeline, PushInfo, ToRedisArgs, Value, cmd, pipe};

/// The Redis driver: serves `redis://`, `rediss://` (TLS) and `redis+unix://`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedisDriver;

#[async_trait::async_trait]
impl Driver for RedisDriver {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["redis", "rediss", "redis+unix"]
    }

    fn params(&self) -> &'static [&'static str] {
        PARAMS
    }

    async fn connect(&self, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(RedisBackend::open(options).await?))
    }
}

/// A connected Redis server: key-value storage for dbx, and raw commands,
/// pipelines and exclusive connections for everything else Redis does.
///
/// Reach it from a `dbx::Dbx` with `db.redis()?`, from a
/// [`Database`](dbx_core::Database) with
/// `db.backend_as::<RedisBackend>()`, or open one directly with
/// [`RedisBackend::connect`].
#[derive(Debug)]
pub struct RedisBackend {
    shared: Arc<Shared>,
    kv: Arc<RedisKv>,
}

impl RedisBackend {
    /// Connect with options (see the crate docs for URLs and parameters).
    /// The whole connect is bounded by `connect_timeout`.
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        let limit = options.connect_timeout();
        match tokio::time::timeout(limit, Self::open(options)).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("connecting did not finish within {limit:?}"),
            )),
        }
        .map_err(|e| e.with_backend(BACKEND).with_operation("connect"))
    }

    /// Parse `url` and [`connect`](Self::connect).
    pub async fn connect_url(url: &str) -> Result<Self> {
        Self::connect(&ConnectOptions::from_url(url)?).await
    }

    async fn open(options: &ConnectOptions) -> Result<Self> {
        options.check_params(BACKEND, PARAMS)?;
        let config = RedisConfig::from_options(options)?;
        let shared = Arc::new(Shared::open(config).await?);
        Ok(RedisBackend {
            kv: Arc::new(RedisKv {
                shared: shared.clone(),
            }),
            shared,
        })
    }

    /// Run one command on the shared multiplexed connection and convert the
    /// reply to `T`, bounded by the operation `timeout`, with dbx's error
    /// mapping.
    ///
    /// Commands that change the connection's state (MULTI, WATCH, SELECT,
    /// SUBSCRIBE...) or block it (BLPOP, XREAD BLOCK...) are refused with
    /// [`ErrorKind::InvalidInput`]: the shared connection carries every
    /// task's commands. Run those on an [`exclusive`](Self::exclusive)
    /// connection.
    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        let shared = &self.shared;
        shared
            .timed("redis.cmd", shared.config.timeout, async {
                if let Some(why) = shared_refusal(cmd) {
                    return Err(Error::invalid_input(why).with_backend(BACKEND));
                }
                shared.query(cmd.clone()).await
            })
            .await
    }

    /// Run a pipeline on the shared connection in one round trip; with
    /// [`Pipeline::atomic`](redis::Pipeline::atomic) it runs as one
    /// MULTI/EXEC transaction. The same commands as in [`cmd`](Self::cmd)
    /// are refused.
    pub async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        let shared = &self.shared;
        shared
            .timed("redis.pipeline", shared.config.timeout, async {
                if let Some(why) = pipe.cmd_iter().find_map(shared_refusal) {
                    return Err(Error::invalid_input(why).with_backend(BACKEND));
                }
                shared.query_pipeline(pipe).await
            })
            .await
    }

    /// Check out a connection of the pool for this caller alone (MULTI/WATCH
    /// transactions, blocking commands). Waiting for one is bounded by
    /// `acquire_timeout` ([`ErrorKind::PoolTimeout`]), opening one by
    /// `connect_timeout`.
    pub async fn exclusive(&self) -> Result<ExclusiveConnection> {
        let conn = self
            .shared
            .checkout()
            .await
            .map_err(|e| e.with_operation("redis.exclusive"))?;
        Ok(ExclusiveConnection::new(conn, self.shared.clone()))
    }

    /// Open a dedicated publish/subscribe connection (not pooled: it lives as
    /// long as you keep it), bounded by `connect_timeout`.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub> {
        let shared = &self.shared;
        let c = &shared.config;
        shared
            .timed("redis.pubsub", c.connect_timeout, async {
                shared
                    .client()
                    .get_async_pubsub()
                    .await
                    .map_err(|e| error::map_connect_err(e, &c.target, c.db))
            })
            .await
    }

    /// The shared connection itself, for redis-rs's typed command API
    /// (`redis::AsyncCommands`). It reconnects by itself and bounds each reply
    /// by the operation `timeout`; its errors are redis-rs's own. Never send
    /// connection-state or blocking commands on it.
    pub fn shared_connection(&self) -> Result<redis::aio::ConnectionManager> {
        self.shared.manager()
    }

    /// One PING round trip on the shared connection, bounded by `timeout`.
    pub async fn ping(&self) -> Result<()> {
        let shared = &self.shared;
        shared
            .timed("ping", shared.config.timeout, async {
                let pong: String = shared.query(redis::cmd("PING")).await?;
                if pong == "PONG" {
                    Ok(())
                } else {
                    Err(Error::decode(format!("PING answered {pong:?}")).with_backend(BACKEND))
                }
            })
            .await
    }

    /// Figures of the pool of exclusive connections (the shared connection
    /// is not counted).
    pub fn pool_status(&self) -> PoolStatus {
        self.shared.pool_status()
    }

    /// The deadline of one operation (`timeout`).
    pub fn timeout(&self) -> Duration {
        self.shared.config.timeout
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Refuse new work ([`ErrorKind::Closed`]), close the pool and the shared
    /// connection. Idempotent.
    pub fn close(&self) {
        self.shared.close();
    }
}

#[async_trait::async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(self.kv.clone())
    }

    async fn ping(&self) -> Result<()> {
        RedisBackend::ping(self).await
    }

    async fn close(&self) {
        RedisBackend::close(self);
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(RedisBackend::pool_status(self))
    }

    /// redis-rs already bounds each command on the shared connection with
    /// its response timeout, set to the operation timeout. When a reconnect
    /// also fits within it (the default: two 10 s connects and a pause
    /// within 30 s), the core's own per-attempt timer would only repeat that
    /// timer: measured with callgrind, about 900 instructions of a 12,000
    /// instruction GET (registering, re-registering and cancelling a timer
    /// entry). With a connect timeout too long for that, the core times
    /// each attempt as for any backend.
    fn enforces_timeouts(&self) -> bool {
        self.shared.bounds_commands()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changing_and_blocking_commands_are_refused_on_the_shared_connection() {
        for c in [
            redis::cmd("MULTI"),
            redis::cmd("watch").arg("k").clone(),
            redis::cmd("SELECT").arg(1).clone(),
            redis::cmd("blpop").arg("k").arg(0).clone(),
            redis::cmd("XREAD")
                .arg("block")
                .arg(0)
                .arg("STREAMS")
                .arg("s")
                .arg("$")
                .clone(),
            redis::cmd("CLIENT").arg("REPLY").arg("OFF").clone(),
            redis::cmd("SUBSCRIBE").arg("ch").clone(),
        ] {
            let why = shared_refusal(&c).expect("refused");
            assert!(why.contains("exclusive"), "{why}");
        }
        for c in [
            redis::cmd("GET").arg("MULTI").clone(),
            redis::cmd("XREAD").arg("STREAMS").arg("s").arg("0").clone(),
            redis::cmd("CLIENT").arg("ID").clone(),
            redis::cmd("HSET").arg("h").arg("f").arg("v").clone(),
        ] {
            assert_eq!(shared_refusal(&c), None);
        }
    }
}
