//! Redis Cluster (`redis+cluster://` and `rediss+cluster://`), on redis-rs's
//! async cluster client: one multiplexed connection per node, shared by every
//! task (the commands of concurrent tasks are pipelined on each node's
//! connection), a slot map it keeps up to date by itself (MOVED and ASK
//! redirections, a resharded slot, a failed-over primary), multi-key
//! commands (MGET, MSET, DEL, EXISTS) split by slot and their replies merged.
//!
//! What dbx adds: a prefix scan that walks every primary in turn behind one
//! cursor, MSET with a TTL as one MULTI/EXEC per slot, health of every node,
//! refusal of what a cluster cannot do (cross-slot transactions, connection
//! state, blocking commands on the shared connections), and its error
//! mapping.

use crate::config::RedisConfig;
use crate::error::{BACKEND, map_connect_err, map_err};
use dbx_core::driver::ScanPage;
use dbx_core::{Error, ErrorKind, Result};
use dbx_core::{NodeRole, NodeState, NodeStatus};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, FromRedisValue, Pipeline, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Attempts of one command after its first one failed on a connection
/// error, a redirection or a cluster that is failing over; the waits in
/// between grow from 20 ms to at most 500 ms (about 2.5 s in all: a primary
/// is replaced after `cluster-node-timeout` plus an election, 2 s with a
/// 1 s node timeout). The operation timeout bounds them all.
const RETRIES: u32 = 8;
const MIN_RETRY_WAIT_MS: u64 = 10;
const MAX_RETRY_WAIT_MS: u64 = 500;
/// How long a success marks the cluster as answering, for failures.
const ANSWERED_WINDOW_MS: u64 = 1000;

/// A Redis Cluster, as seen from its seeds.
pub(crate) struct Cluster {
    pub(crate) config: RedisConfig,
    /// The cluster connection; `None` once closed.
    conn: RwLock<Option<ClusterConnection>>,
    /// Whether a command succeeded in the current window of
    /// [`ANSWERED_WINDOW_MS`]: a transient failure that finds it set concerns
    /// part of the cluster while the rest answers ([`Error::set_partial`]),
    /// so the circuit breaker, which would stop every slot, leaves it to the
    /// retries. When nothing answers for a whole window, failures count.
    answered: AtomicBool,
    /// When the window began, in ms after `started`.
    window_start: AtomicU64,
    started: Instant,
    /// The nodes as last probed, for `stats()`.
    last_nodes: Mutex<Vec<NodeStatus>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("config", &self.config)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A primary and the hash slots it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Primary {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Its slot ranges, inclusive, lowest first.
    pub(crate) slots: Vec<(u16, u16)>,
    /// Its replicas as `host:port`.
    pub(crate) replicas: Vec<String>,
}

impl Primary {
    fn first_slot(&self) -> u16 {
        self.slots.first().map_or(u16::MAX, |r| r.0)
    }

    fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }

    pub(crate) fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Cluster {
    /// Connect to the seeds, read the slot map and check that every primary
    /// answers.
    pub(crate) async fn open(config: RedisConfig) -> Result<Self> {
        let client = config
            .cluster_client()?
            .retries(RETRIES)
            .min_retry_wait(MIN_RETRY_WAIT_MS)
            .max_retry_wait(MAX_RETRY_WAIT_MS)
            .retry_wait_formula(10, 2)
            .build()
            .map_err(|e| {
                Error::invalid_config(format!("invalid Redis Cluster seeds: {e}")).with_source(e)
            })?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| connect_err(e, &config))?;
        let cluster = Cluster {
            config,
            conn: RwLock::new(Some(conn)),
            answered: AtomicBool::new(false),
            window_start: AtomicU64::new(0),
            started: Instant::now(),
            last_nodes: Mutex::new(Vec::new()),
        };
        cluster
            .ping()
            .await
            .map_err(|e| e.with_operation("connect"))?;
        tracing::debug!(target: "dbx_redis", seeds = %cluster.config.target, "connected to the cluster");
        Ok(cluster)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// The cluster connection (a cheap clone of a handle).
    pub(crate) fn connection(&self) -> Result<ClusterConnection> {
        self.conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(crate::error::closed)
    }

    /// Note how a command ended: a success sets `answered`; a transient
    /// failure is marked partial if something answered in this window (the
    /// first failure after a window ends starts the next one).
    fn outcome<T>(&self, r: std::result::Result<T, redis::RedisError>) -> Result<T> {
        match r {
            Ok(v) => {
                // A load first: the flag's cache line stays shared while set.
                if !self.answered.load(Ordering::Relaxed) {
                    self.answered.store(true, Ordering::Relaxed);
                }
                Ok(v)
            }
            Err(e) => {
                let e = map_err(e);
                if !e.is_transient() {
                    return Err(e);
                }
                let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let start = self.window_start.load(Ordering::Relaxed);
                let answered = if now.saturating_sub(start) >= ANSWERED_WINDOW_MS
                    && self
                        .window_start
                        .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    self.answered.swap(false, Ordering::Relaxed)
                } else {
                    self.answered.load(Ordering::Relaxed)
                };
                Err(e.set_partial(answered))
            }
        }
    }

    /// One command, routed by its keys (multi-key commands split by slot).
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        let mut conn = self.connection()?;
        let value = self.outcome(
            redis::aio::ConnectionLike::req_packed_command(&mut conn, &cmd)
                .await
                .and_then(Value::extract_error),
        )?;
        redis::from_redis_value(value).map_err(|e| map_err(e.into()))
    }

    /// One command to where `routing` says.
    pub(crate) async fn route<T: FromRedisValue>(
        &self,
        cmd: Cmd,
        routing: RoutingInfo,
    ) -> Result<T> {
        let mut conn = self.connection()?;
        let value = self.outcome(
            conn.route_command(cmd, routing)
                .await
                .and_then(Value::extract_error),
        )?;
        redis::from_redis_value(value).map_err(|e| map_err(e.into()))
    }

    /// A pipeline (atomic or not) to the node serving its keys' one slot;
    /// redis-rs refuses one over several slots before sending it (CROSSSLOT,
    /// mapped to InvalidInput).
    pub(crate) async fn query_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        let mut conn = self.connection()?;
        self.outcome(pipe.query_async(&mut conn).await)
    }

    /// PING every primary: each must answer, so every slot is served (a
    /// replica that is down shows in [`nodes`](Self::nodes), not here).
    pub(crate) async fn ping(&self) -> Result<()> {
        let routing = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllMasters,
            Some(ResponsePolicy::AllSucceeded),
        ));
        let _: Value = self.route(redis::cmd("PING"), routing).await?;
        Ok(())
    }

    /// The primaries and their slots (`CLUSTER SLOTS` of any node), lowest
    /// slot first.
    pub(crate) async fn primaries(&self) -> Result<Vec<Primary>> {
        let reply: Value = self
            .route(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        parse_slots(reply).ok_or_else(|| {
            Error::decode("CLUSTER SLOTS answered something that is not a slot map")
                .with_backend(BACKEND)
        })
    }

    /// Every node the cluster knows (`CLUSTER NODES` of any node, failed
    /// ones included), each primary followed by its replicas, each pinged:
    /// down when the ping fails or the cluster marks it failed.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeStatus>> {
        let text: String = self
            .route(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let listed = parse_nodes(&text).ok_or_else(|| {
            Error::decode("CLUSTER NODES answered something that is not a node list")
                .with_backend(BACKEND)
        })?;
        let limit = self.config.timeout;
        let pings = listed.iter().map(|n| {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: n.host.clone(),
                port: n.port,
            });
            async move {
                let probe = async {
                    let mut conn = self.connection()?;
                    match conn.route_command(redis::cmd("PING"), routing).await {
                        // The cluster client connects to replicas only when
                        // it needs them: ask the node on a connection of
                        // its own.
                        Err(e) if e.kind() == redis::ErrorKind::ClusterConnectionNotFound => {
                            self.ping_directly(&n.host, n.port).await
                        }
                        r => r.and_then(Value::extract_error).map(drop).map_err(map_err),
                    }
                };
                match tokio::time::timeout(limit, probe).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("no answer within {limit:?}")),
                }
            }
        });
        let errors = futures_util::future::join_all(pings).await;
        let nodes: Vec<NodeStatus> = listed
            .into_iter()
            .zip(errors)
            .map(|(n, error)| {
                let addr = if n.host.contains(':') {
                    format!("[{}]:{}", n.host, n.port)
                } else {
                    format!("{}:{}", n.host, n.port)
                };
                let error =
                    error.or_else(|| n.failed.then(|| "the cluster marks it failed".to_owned()));
                let node = match error {
                    None => NodeStatus::new(addr, n.role, NodeState::Up),
                    Some(e) => NodeStatus::new(addr, n.role, NodeState::Down).with_error(e),
                };
                node.with_slots(n.slots)
            })
            .collect();
        *self.last_nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes.clone();
        Ok(nodes)
    }

    /// PING `host:port` on a new connection with the seeds' settings
    /// (credentials, TLS).
    async fn ping_directly(&self, host: &str, port: u16) -> Result<()> {
        let seed = self
            .config
            .cluster
            .as_ref()
            .and_then(|s| s.first())
            .unwrap_or(&self.config.info)
            .clone();
        let addr = match seed.addr() {
            redis::ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => redis::ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => redis::ConnectionAddr::Tcp(host.to_owned(), port),
        };
        let info = seed.set_addr(addr);
        let client = self.config.client_for(&info)?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| map_connect_err(e, &format!("{host}:{port}"), 0))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The nodes as last probed by [`nodes`](Self::nodes).
    pub(crate) fn last_nodes(&self) -> Vec<NodeStatus> {
        self.last_nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One page of a prefix scan over every primary: `SCAN` on one primary
    /// until its cursor comes back to 0, then on the next one (by lowest
    /// slot). The cursor is `<slot>:<node cursor>@<host:port>`: the node
    /// that served the page and a slot it owned. If that slot has another
    /// primary by the next page (a failover, a resharding), its scan starts
    /// over on the new owner, so keys may come twice (the core drops
    /// repeats) but a key that stayed put is never missed.
    pub(crate) async fn scan_page(
        &self,
        pattern: Vec<u8>,
        prefix: &str,
        cursor: Option<&str>,
        count: usize,
    ) -> Result<ScanPage> {
        let primaries = self.primaries().await?;
        let (index, node_cursor) = match cursor {
            None => (0, 0),
            Some(c) => {
                let (slot, node_cursor, addr) = parse_cursor(c).ok_or_else(|| {
                    Error::invalid_input(format!(
                        "scan cursor {:?} is not a Redis Cluster scan cursor",
                        crate::config::short(c)
                    ))
                    .with_backend(BACKEND)
                })?;
                match primaries.iter().position(|p| p.owns(slot)) {
                    Some(i) if primaries[i].addr() == addr => (i, node_cursor),
                    Some(i) => (i, 0),
                    None => {
                        return Err(Error::new(
                            ErrorKind::Query,
                            format!("no primary serves slot {slot} of the scan cursor"),
                        )
                        .set_transient(true)
                        .with_backend(BACKEND));
                    }
                }
            }
        };
        let Some(node) = primaries.get(index) else {
            return Ok(ScanPage::new(Vec::new(), None));
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(node_cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: node.host.clone(),
            port: node.port,
        });
        let (next, raw_keys): (u64, Vec<Vec<u8>>) = self.route(scan, routing).await?;
        let keys = crate::kv::utf8_keys(raw_keys, prefix);
        let cursor = if next != 0 {
            Some(format!("{}:{next}@{}", node.first_slot(), node.addr()))
        } else {
            primaries
                .get(index + 1)
                .map(|p| format!("{}:0@{}", p.first_slot(), p.addr()))
        };
        Ok(ScanPage::new(keys, cursor))
    }

    /// Refuse new work and drop the connection (commands in flight finish).
    pub(crate) fn close(&self) {
        let taken = self.conn.write().unwrap_or_else(|p| p.into_inner()).take();
        if taken.is_some() {
            tracing::debug!(target: "dbx_redis", seeds = %self.config.target, "closed");
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.config.timeout
    }
}

/// An error of connecting to the seeds, with what only it can mean: a seed
/// that is a plain Redis server (cluster support disabled).
fn connect_err(e: redis::RedisError, config: &RedisConfig) -> Error {
    let text = e.to_string();
    if text.contains("cluster support disabled") {
        return Error::invalid_config(format!(
            "the server at {} is not in cluster mode (cluster support disabled): \
             use redis://host:port for a single server",
            config.target
        ))
        .with_source(e)
        .with_backend(BACKEND);
    }
    map_connect_err(e, &config.target, 0)
}

/// `<slot>:<cursor>@<addr>`.
fn parse_cursor(c: &str) -> Option<(u16, u64, &str)> {
    let (head, addr) = c.split_once('@')?;
    let (slot, cursor) = head.split_once(':')?;
    let slot: u16 = slot.parse().ok().filter(|s| *s < 16384)?;
    Some((slot, cursor.parse().ok()?, addr))
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, PartialEq)]
struct Listed {
    id: String,
    host: String,
    port: u16,
    role: NodeRole,
    /// The primary's id, for a replica.
    primary: Option<String>,
    slots: Vec<(u16, u16)>,
    /// Flagged `fail` by the cluster.
    failed: bool,
}

/// The reply of `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags>
/// <primary id or -> <ping> <pong> <epoch> <link> <slot>...` per line.
/// Nodes without an address (`noaddr`) or still in a handshake are left
/// out. Primaries by their first slot (those without slots last), each
/// followed by its replicas.
fn parse_nodes(text: &str) -> Option<Vec<Listed>> {
    let mut nodes = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        let flags: Vec<&str> = fields[2].split(',').collect();
        if flags.iter().any(|f| matches!(*f, "noaddr" | "handshake")) {
            continue;
        }
        let addr = fields[1].split(['@', ',']).next()?;
        let (host, port) = addr.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let slots = fields[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .map(|s| match s.split_once('-') {
                Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
                None => s.parse().ok().map(|n| (n, n)),
            })
            .collect::<Option<Vec<(u16, u16)>>>()?;
        let replica = flags.contains(&"slave");
        nodes.push(Listed {
            id: fields[0].to_owned(),
            host: host.to_owned(),
            port: port.parse().ok()?,
            role: if replica {
                NodeRole::Replica
            } else {
                NodeRole::Primary
            },
            primary: (replica && fields[3] != "-").then(|| fields[3].to_owned()),
            slots,
            failed: flags.contains(&"fail"),
        });
    }
    for n in &mut nodes {
        n.slots.sort_unstable();
    }
    let (mut primaries, replicas): (Vec<Listed>, Vec<Listed>) =
        nodes.into_iter().partition(|n| n.role == NodeRole::Primary);
    primaries.sort_by_key(|p| p.slots.first().map_or(u32::MAX, |r| u32::from(r.0)));
    let mut ordered = Vec::new();
    let mut replicas: Vec<Option<Listed>> = replicas.into_iter().map(Some).collect();
    for p in primaries {
        let id = p.id.clone();
        ordered.push(p);
        for r in replicas.iter_mut() {
            if r.as_ref()
                .is_some_and(|r| r.primary.as_deref() == Some(id.as_str()))
            {
                ordered.extend(r.take());
            }
        }
    }
    ordered.extend(replicas.into_iter().flatten());
    Some(ordered)
}

/// The reply of `CLUSTER SLOTS`: `[[start, end, [host, port, id, ...],
/// [replica...]...]...]`, grouped by primary.
fn parse_slots(reply: Value) -> Option<Vec<Primary>> {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn node(v: &Value) -> Option<(String, u16)> {
        let Value::Array(parts) = v else { return None };
        let host = text(parts.first()?)?;
        let Value::Int(port) = parts.get(1)? else {
            return None;
        };
        Some((host, u16::try_from(*port).ok()?))
    }
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut primaries: Vec<Primary> = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else {
            return None;
        };
        let (Some(Value::Int(lo)), Some(Value::Int(hi))) = (parts.first(), parts.get(1)) else {
            return None;
        };
        let (lo, hi) = (u16::try_from(*lo).ok()?, u16::try_from(*hi).ok()?);
        let (host, port) = node(parts.get(2)?)?;
        let replicas = parts[3..]
            .iter()
            .filter_map(node)
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        match primaries
            .iter_mut()
            .find(|p| p.host == host && p.port == port)
        {
            Some(p) => p.slots.push((lo, hi)),
            None => primaries.push(Primary {
                host,
                port,
                slots: vec![(lo, hi)],
                replicas,
            }),
        }
    }
    for p in &mut primaries {
        p.slots.sort_unstable();
    }
    primaries.sort_by_key(Primary::first_slot);
    Some(primaries)
}

/// Why a raw command cannot run as given on a cluster.
pub(crate) fn cluster_refusal(cmd: &Cmd) -> Option<String> {
    let name = cmd.args_iter().next().and_then(|a| match a {
        redis::Arg::Simple(b) => Some(b.to_ascii_uppercase()),
        _ => None,
    })?;
    match &name[..] {
        b"SCAN" => Some(
            "SCAN walks the keys of one node, and a Redis Cluster spreads them over \
             every primary: use the key-value handle's scan (it walks them all), or \
             cluster_connection() with route_command to SCAN one node"
                .to_owned(),
        ),
        _ => None,
    }
}

/// Where a key's slot is served: keys with equal routes share a slot (a
/// common `{hash tag}`), so one MULTI/EXEC can hold them.
pub(crate) fn route_of(key: &str) -> Route {
    Route::with_key(key.as_bytes(), SlotAddr::Master)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_are_parsed_with_failed_ones_and_grouped_by_primary() {
        let text = "\
a1 127.0.0.1:7001@17001 master - 0 1 1 connected 5461-10922
f9 127.0.0.1:7000@17000 master,fail - 0 1 1 disconnected
r2 127.0.0.1:7004@17004 slave a1 0 1 1 connected
b0 127.0.0.1:7003@17003,host-b myself,master - 0 0 4 connected 0-5460 [5461->-a1]
c2 [::1]:7002@17002 master - 0 1 3 connected 10923-16383 16000
r0 127.0.0.1:7005@17005 slave b0 0 1 4 connected
x9 :0@0 master,noaddr - 0 1 0 disconnected
";
        let nodes = parse_nodes(text).unwrap();
        let seen: Vec<(&str, u16, NodeRole, bool)> = nodes
            .iter()
            .map(|n| (n.host.as_str(), n.port, n.role, n.failed))
            .collect();
        assert_eq!(
            seen,
            [
                ("127.0.0.1", 7003, NodeRole::Primary, false),
                ("127.0.0.1", 7005, NodeRole::Replica, false),
                ("127.0.0.1", 7001, NodeRole::Primary, false),
                ("127.0.0.1", 7004, NodeRole::Replica, false),
                ("::1", 7002, NodeRole::Primary, false),
                ("127.0.0.1", 7000, NodeRole::Primary, true),
            ]
        );
        assert_eq!(nodes[0].slots, [(0, 5460)]);
        assert_eq!(nodes[4].slots, [(10923, 16383), (16000, 16000)]);
        assert_eq!(parse_nodes("garbage"), None);
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        assert_eq!(
            parse_cursor("5461:17@127.0.0.1:7001"),
            Some((5461, 17, "127.0.0.1:7001"))
        );
        assert_eq!(parse_cursor("0:0@[::1]:7000"), Some((0, 0, "[::1]:7000")));
        for bad in ["", "17", "1:2", "16384:0@h:1", "x:0@h:1", "1:-1@h:1"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn slot_map_groups_ranges_by_primary() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |lo, hi, primary: Value, replica: Value| {
            Value::Array(vec![Value::Int(lo), Value::Int(hi), primary, replica])
        };
        let reply = Value::Array(vec![
            range(10923, 16383, node("c", 3), node("f", 6)),
            range(0, 5460, node("a", 1), node("d", 4)),
            range(5461, 10000, node("b", 2), node("e", 5)),
            range(10001, 10922, node("a", 1), node("d", 4)),
        ]);
        let p = parse_slots(reply).unwrap();
        let addrs: Vec<_> = p.iter().map(Primary::addr).collect();
        assert_eq!(addrs, ["a:1", "b:2", "c:3"]);
        assert_eq!(p[0].slots, [(0, 5460), (10001, 10922)]);
        assert_eq!(p[0].replicas, ["d:4"]);
        assert!(p[0].owns(10500) && !p[1].owns(10500));
        assert_eq!(parse_slots(Value::Int(1)), None);
    }
}
