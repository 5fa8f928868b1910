#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod cluster;
mod config;
mod conn;
mod error;
mod kv;
mod sentinel;
mod topology;

use crate::cluster::Cluster;
use crate::config::{PARAMS, RedisConfig, SCHEMES};
use crate::conn::{Shared, shared_refusal};
use crate::error::BACKEND;
use crate::kv::RedisKv;
use crate::sentinel::Sentinel;
use crate::topology::Topology;
use dbx_core::driver::{Backend, Driver, KvStore};
use dbx_core::{ConnectOptions, Error, ErrorKind, PoolStatus, Result};
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{DEFAULT_POOL_SIZE, DEFAULT_PORT, DEFAULT_SENTINEL_PORT};
pub use crate::conn::ExclusiveConnection;
/// redis-rs, the client underneath, for everything not re-exported below
/// (without matching its version yourself).
pub use redis;
/// What raw commands need, under one path: build a command with [`cmd`] or a
/// pipeline with [`pipe`], run it with [`RedisBackend::cmd`] or
/// [`RedisBackend::pipeline`], and read the reply as any
/// [`FromRedisValue`] type or as a raw [`Value`].
pub use redis::{Cmd, FromRedisValue, Pipeline, PushInfo, ToRedisArgs, Value, cmd, pipe};

/// The servers of a topology, from [`RedisBackend::probe_nodes`] (the same
/// types as dbx's `health()` and `stats()` show).
pub use dbx_core::{NodeRole, NodeState, NodeStatus};

/// The Redis driver: serves `redis://`, `rediss://` (TLS), `redis+unix://`,
/// and Redis Cluster as `redis+cluster://` and `rediss+cluster://`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedisDriver;

#[async_trait::async_trait]
impl Driver for RedisDriver {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
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
    topo: Topology,
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
        config.require_tls_support()?;
        let topo = if config.cluster.is_some() {
            Topology::Cluster(Arc::new(Cluster::open(config).await?))
        } else if config.sentinel.is_some() {
            Topology::Sentinel(Sentinel::open(config).await?)
        } else {
            Topology::Single(Arc::new(Shared::open(config).await?))
        };
        Ok(RedisBackend {
            kv: Arc::new(RedisKv { topo: topo.clone() }),
            topo,
        })
    }

    /// The one server's state (the current primary's with Sentinel), or
    /// Unsupported naming `what` on a cluster.
    fn single(&self, what: &str) -> Result<Arc<Shared>> {
        match &self.topo {
            Topology::Single(s) => Ok(s.clone()),
            Topology::Sentinel(s) => s.current(),
            Topology::Cluster(_) => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{what} is not available on a Redis Cluster connection: \
                     use cmd/pipeline (routed by key) or cluster_connection()"
                ),
            )
            .with_backend(BACKEND)),
        }
    }

    /// Whether this backend talks to a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        matches!(self.topo, Topology::Cluster(_))
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
    ///
    /// On a Redis Cluster each command goes to the node serving its key's
    /// slot; MGET, MSET, DEL, EXISTS, UNLINK and TOUCH over keys of several
    /// slots are split by slot and their replies merged; commands about the
    /// whole server (PING, DBSIZE, FLUSHALL, KEYS...) go to every primary and
    /// their replies are combined as redis-rs documents. SCAN is refused (it
    /// would walk one node): use the key-value handle's `scan`, which walks
    /// every primary.
    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        let topo = &self.topo;
        topo.timed("redis.cmd", topo.timeout(), async {
            if let Some(why) = shared_refusal(cmd).or_else(|| match topo {
                Topology::Cluster(_) => cluster::cluster_refusal(cmd),
                Topology::Single(_) | Topology::Sentinel(_) => None,
            }) {
                return Err(Error::invalid_input(why).with_backend(BACKEND));
            }
            topo.query(cmd.clone()).await
        })
        .await
    }

    /// Run a pipeline on the shared connection in one round trip; with
    /// [`Pipeline::atomic`](redis::Pipeline::atomic) it runs as one
    /// MULTI/EXEC transaction. The same commands as in [`cmd`](Self::cmd)
    /// are refused. On a Redis Cluster the keys of a pipeline must hash to
    /// one slot (give them a common `{hash tag}`); one over several slots is
    /// refused with [`ErrorKind::InvalidInput`] before anything is sent.
    pub async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        let topo = &self.topo;
        topo.timed("redis.pipeline", topo.timeout(), async {
            if let Some(why) = pipe.cmd_iter().find_map(shared_refusal) {
                return Err(Error::invalid_input(why).with_backend(BACKEND));
            }
            topo.query_pipeline(pipe).await
        })
        .await
    }

    /// Check out a connection of the pool for this caller alone (MULTI/WATCH
    /// transactions, blocking commands). Waiting for one is bounded by
    /// `acquire_timeout` ([`ErrorKind::PoolTimeout`]), opening one by
    /// `connect_timeout`.
    ///
    /// Not on a Redis Cluster ([`ErrorKind::Unsupported`]): a connection
    /// there reaches one node. Send a transaction as an atomic
    /// [`pipeline`](Self::pipeline) over keys of one slot instead.
    pub async fn exclusive(&self) -> Result<ExclusiveConnection> {
        let shared = self
            .single("an exclusive connection")
            .map_err(|e| e.with_operation("redis.exclusive"))?;
        let conn = shared
            .checkout()
            .await
            .map_err(|e| e.with_operation("redis.exclusive"))?;
        Ok(ExclusiveConnection::new(conn, shared))
    }

    /// Open a dedicated publish/subscribe connection (not pooled: it lives as
    /// long as you keep it), bounded by `connect_timeout`. Not on a Redis
    /// Cluster ([`ErrorKind::Unsupported`]).
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub> {
        let shared = self
            .single("a publish/subscribe connection")
            .map_err(|e| e.with_operation("redis.pubsub"))?;
        let c = &shared.config;
        self.topo
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
    /// connection-state or blocking commands on it. Not on a Redis Cluster
    /// ([`ErrorKind::Unsupported`]; see
    /// [`cluster_connection`](Self::cluster_connection)).
    pub fn shared_connection(&self) -> Result<redis::aio::ConnectionManager> {
        self.single("the shared single-server connection")?
            .manager()
    }

    /// On a Redis Cluster: redis-rs's cluster connection, for its typed
    /// command API (`redis::AsyncCommands`) and its own routing
    /// (`route_command`). Each reply is bounded by the operation `timeout`;
    /// its errors are redis-rs's own. [`ErrorKind::Unsupported`] on a single
    /// server.
    pub fn cluster_connection(&self) -> Result<redis::cluster_async::ClusterConnection> {
        match &self.topo {
            Topology::Cluster(c) => c.connection(),
            Topology::Single(_) | Topology::Sentinel(_) => Err(Error::new(
                ErrorKind::Unsupported,
                "cluster_connection is for redis+cluster:// URLs; use shared_connection",
            )
            .with_backend(BACKEND)),
        }
    }

    /// One PING round trip, bounded by `timeout`: on the shared connection,
    /// or to every node of a cluster (each must answer).
    pub async fn ping(&self) -> Result<()> {
        let topo = &self.topo;
        topo.timed("ping", topo.timeout(), async {
            match topo {
                Topology::Cluster(c) => c.ping().await,
                Topology::Single(_) | Topology::Sentinel(_) => {
                    let pong: String = topo.query(redis::cmd("PING")).await?;
                    if pong == "PONG" {
                        Ok(())
                    } else {
                        Err(Error::decode(format!("PING answered {pong:?}")).with_backend(BACKEND))
                    }
                }
            }
        })
        .await
    }

    /// Each server this backend uses and whether it answers: the one server;
    /// the primary the sentinels named (and the replica reads go to, with
    /// `replica_reads`); or every node of a cluster, from its slot map, with
    /// its role and slots. Each PING is bounded by the operation timeout; a
    /// node that fails is reported [`NodeState::Down`], not an error (the
    /// error is for a slot map that cannot be read at all).
    pub async fn probe_nodes(&self) -> Result<Vec<NodeStatus>> {
        let topo = &self.topo;
        topo.timed("redis.nodes", topo.timeout() * 2, async {
            match topo {
                Topology::Cluster(c) => c.nodes().await,
                Topology::Single(s) => Ok(vec![probe(s, NodeRole::Primary).await]),
                Topology::Sentinel(s) => {
                    let primary = s.current()?;
                    let mut nodes = vec![probe(&primary, NodeRole::Primary).await];
                    if let Some(r) = s.replica_in_use() {
                        nodes.push(probe(&r, NodeRole::Replica).await);
                    }
                    Ok(nodes)
                }
            }
        })
        .await
    }

    /// Figures of the pool of exclusive connections (the shared connection
    /// is not counted). A cluster has no such pool: all zeros.
    pub fn pool_status(&self) -> PoolStatus {
        match &self.topo {
            Topology::Single(s) => s.pool_status(),
            Topology::Sentinel(s) => s
                .current()
                .map_or(PoolStatus::new(0, 0, 0, 0, 0), |s| s.pool_status()),
            Topology::Cluster(_) => PoolStatus::new(0, 0, 0, 0, 0),
        }
    }

    /// The deadline of one operation (`timeout`).
    pub fn timeout(&self) -> Duration {
        self.topo.timeout()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.topo.is_closed()
    }

    /// Refuse new work ([`ErrorKind::Closed`]), close the pool and the shared
    /// connection. Idempotent.
    pub fn close(&self) {
        self.topo.close();
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
        match self.topo {
            Topology::Single(_) | Topology::Sentinel(_) => Some(RedisBackend::pool_status(self)),
            Topology::Cluster(_) => None,
        }
    }

    /// A Sentinel's primary (and replica); a cluster's nodes as last probed
    /// by `health()`; nothing for one server.
    fn nodes(&self) -> Vec<NodeStatus> {
        match &self.topo {
            Topology::Single(_) => Vec::new(),
            Topology::Cluster(c) => c.last_nodes(),
            Topology::Sentinel(s) => {
                let up = |shared: &Shared, role| {
                    NodeStatus::new(shared.config.target.clone(), role, NodeState::Up)
                };
                let mut nodes: Vec<_> = s
                    .current()
                    .ok()
                    .map(|p| up(&p, NodeRole::Primary))
                    .into_iter()
                    .collect();
                if let Some(r) = s.replica_in_use() {
                    nodes.push(up(&r, NodeRole::Replica));
                }
                nodes
            }
        }
    }

    async fn probe_nodes(&self) -> Result<Vec<NodeStatus>> {
        match &self.topo {
            Topology::Single(_) => Ok(Vec::new()),
            Topology::Cluster(_) | Topology::Sentinel(_) => RedisBackend::probe_nodes(self).await,
        }
    }

    /// redis-rs already bounds each command on the shared connection with
    /// its response timeout, set to the operation timeout. When a reconnect
    /// also fits within it (the default: two 10 s connects and a pause
    /// within 30 s), the core's own per-attempt timer would only repeat that
    /// timer: measured with callgrind, about 900 instructions of a 12,000
    /// instruction GET (registering, re-registering and cancelling a timer
    /// entry). With a connect timeout too long for that, the core times
    /// each attempt as for any backend.
    ///
    /// The cluster client's retries (redirections, a failover) are bounded
    /// by the core's per-attempt timer.
    fn enforces_timeouts(&self) -> bool {
        match &self.topo {
            Topology::Single(s) => s.bounds_commands(),
            // redis-rs bounds each cluster request, retries and
            // redirections included, by the operation timeout.
            Topology::Cluster(_) => true,
            Topology::Sentinel(_) => false,
        }
    }
}

/// PING one server on its shared connection, bounded by its timeout.
async fn probe(shared: &Shared, role: NodeRole) -> NodeStatus {
    let t = shared.config.timeout;
    let node = |state| NodeStatus::new(shared.config.target.clone(), role, state);
    match tokio::time::timeout(t, shared.query::<String>(redis::cmd("PING"))).await {
        Ok(Ok(_)) => node(NodeState::Up),
        Ok(Err(e)) => node(NodeState::Down).with_error(e.to_string()),
        Err(_) => node(NodeState::Down).with_error(format!("no answer within {t:?}")),
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

/// A build without the `tls` feature: every TLS URL form is refused with
/// `InvalidConfig` before any connection is attempted, and plain URLs
/// still work (`cargo test -p dbx-redis --no-default-features --lib`).
#[cfg(all(test, not(feature = "tls")))]
mod without_tls {
    use super::*;
    use std::net::TcpListener;

    #[tokio::test]
    async fn tls_urls_are_refused_before_connecting() {
        // Listeners the URLs point at: a connection attempt would sit in
        // their accept queue once `connect` has returned.
        let listeners: Vec<TcpListener> = (0..2)
            .map(|_| {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        let a = listeners[0].local_addr().unwrap();
        let b = listeners[1].local_addr().unwrap();
        for (url, scheme) in [
            (format!("rediss://{a}"), "rediss://"),
            (format!("rediss://:pw@{a}/2"), "rediss://"),
            (format!("rediss://{a}?tls_insecure=true"), "rediss://"),
            (format!("rediss://{a}?tls_ca_file=/etc/ca.pem"), "rediss://"),
            (
                format!("rediss://{a}?tls_cert_file=/c.pem&tls_key_file=/k.pem"),
                "rediss://",
            ),
            (format!("rediss+cluster://{a},{b}"), "rediss+cluster://"),
            (
                format!("rediss+sentinel://{a},{b}/mymaster"),
                "rediss+sentinel://",
            ),
        ] {
            let e = RedisBackend::connect_url(&url)
                .await
                .err()
                .unwrap_or_else(|| panic!("{url} was accepted"));
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(scheme) && text.contains("`tls` feature"),
                "{url}: {text}"
            );
            assert!(!text.contains("pw"), "{url}: {text}");
            for l in &listeners {
                assert_eq!(
                    l.accept().map(|_| ()).unwrap_err().kind(),
                    std::io::ErrorKind::WouldBlock,
                    "{url} opened a connection"
                );
            }
        }
        // The same parsing as with TLS: a TLS parameter on a plain URL is
        // still the old error, not the feature's.
        let e = RedisBackend::connect_url(&format!("redis://{a}?tls_insecure=true"))
            .await
            .expect_err("accepted");
        assert!(e.to_string().contains("rediss:// URLs only"), "{e}");
    }

    #[tokio::test]
    async fn plain_urls_still_connect() {
        let url = std::env::var("DBX_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
        let backend = RedisBackend::connect_url(&url).await.unwrap();
        let pong: String = backend.cmd(&cmd("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
    }
}
