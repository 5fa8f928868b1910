//! The connection state shared by the backend and its vectors: one gRPC
//! client per server of the URL, which of them calls go to, the request
//! options of the URL and the closed flag.
//!
//! With several servers (`qdrant://h1:6334,h2:6334`, nodes of one Qdrant
//! cluster, each of which serves any request), calls go to the first server
//! in the URL's order that is not avoided. A server whose call fails
//! because it cannot be reached is avoided for [`AVOID_AFTER_FAILURE`]: the
//! error is marked partial ([`Error::set_partial`]) while another server is
//! left, so the circuit breaker does not stop the healthy servers' calls,
//! and the policy's retry goes to the next server.

use super::*;
use dbx_core::{NodeRole, NodeState, NodeStatus};
use qdrant_client::qdrant as q;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// How long calls avoid a server that could not be reached.
pub(crate) const AVOID_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// One server of the URL.
pub(crate) struct Node {
    pub(crate) client: qdrant_client::Qdrant,
    /// `host:port` (never the API key).
    pub(crate) target: String,
    /// Milliseconds after `Shared::started` until which calls avoid it.
    avoid_until: AtomicU64,
    /// Why it is avoided.
    last_error: Mutex<Option<String>>,
}

impl Node {
    pub(crate) fn new(client: qdrant_client::Qdrant, target: String) -> Self {
        Node {
            client,
            target,
            avoid_until: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

/// State shared by the backend and its vector capability.
pub(crate) struct Shared {
    pub(crate) nodes: Box<[Node]>,
    started: Instant,
    pub(crate) closed: AtomicBool,
    pub(crate) timeout: Duration,
    /// `host:port[,host:port...]`, for messages (never has the API key).
    pub(crate) target: String,
    pub(crate) server_version: String,
    pub(crate) read_consistency: Option<q::ReadConsistency>,
    pub(crate) write_ordering: Option<q::WriteOrdering>,
    pub(crate) shard_key: Option<q::ShardKeySelector>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("target", &self.target)
            .field("server_version", &self.server_version)
            .field("closed", &self.closed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The request options of the URL, copied into each request.
pub(crate) struct RequestOptions {
    pub(crate) read_consistency: Option<q::ReadConsistency>,
    pub(crate) write_ordering: Option<q::WriteOrdering>,
    pub(crate) shard_key: Option<q::ShardKeySelector>,
}

impl Shared {
    pub(crate) fn new(
        nodes: Vec<Node>,
        timeout: Duration,
        target: String,
        server_version: String,
        options: RequestOptions,
    ) -> Self {
        Shared {
            nodes: nodes.into(),
            started: Instant::now(),
            closed: AtomicBool::new(false),
            timeout,
            target,
            server_version,
            read_consistency: options.read_consistency,
            write_ordering: options.write_ordering,
            shard_key: options.shard_key,
        }
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::new(ErrorKind::Closed, "the Qdrant client was closed").with_backend(BACKEND))
        } else {
            Ok(())
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The server calls go to now: the first that is not avoided, or when
    /// all are, the one whose avoidance ends first.
    pub(crate) fn pick(&self) -> Result<&Node> {
        self.check_open()?;
        if let [only] = &*self.nodes {
            return Ok(only);
        }
        let now = self.now_ms();
        let first_free = self
            .nodes
            .iter()
            .find(|n| n.avoid_until.load(Ordering::Relaxed) <= now);
        Ok(first_free.unwrap_or_else(|| {
            self.nodes
                .iter()
                .min_by_key(|n| n.avoid_until.load(Ordering::Relaxed))
                .unwrap_or(&self.nodes[0])
        }))
    }

    /// After a call to `node` failed with `e`: with several servers, one
    /// that cannot be reached is avoided for a while, and the error is
    /// marked partial while another server is left to try.
    pub(crate) fn failed(&self, node: &Node, e: Error) -> Error {
        if self.nodes.len() < 2 || !matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout) {
            return e;
        }
        let now = self.now_ms();
        let until = now + u64::try_from(AVOID_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX);
        node.avoid_until.fetch_max(until, Ordering::Relaxed);
        *node.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.message().to_owned());
        let others = self
            .nodes
            .iter()
            .any(|n| !std::ptr::eq(n, node) && n.avoid_until.load(Ordering::Relaxed) <= now);
        tracing::debug!(target: "dbx", system = BACKEND, node = %node.target, error = %e, "dbx: Qdrant server avoided");
        e.set_partial(others)
    }

    /// Each server as calls see it now (several servers only).
    pub(crate) fn node_states(&self) -> Vec<NodeStatus> {
        if self.nodes.len() < 2 {
            return Vec::new();
        }
        let now = self.now_ms();
        self.nodes
            .iter()
            .map(|n| {
                if n.avoid_until.load(Ordering::Relaxed) > now {
                    let why = n
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                        .unwrap_or_default();
                    NodeStatus::new(n.target.clone(), NodeRole::Peer, NodeState::Avoided)
                        .with_error(why)
                } else {
                    NodeStatus::new(n.target.clone(), NodeRole::Peer, NodeState::Up)
                }
            })
            .collect()
    }

    /// A health check of each server (several servers only), each bounded
    /// by the operation timeout; one that fails is avoided as after a
    /// failed call.
    pub(crate) async fn probe(&self) -> Vec<NodeStatus> {
        if self.nodes.len() < 2 {
            return Vec::new();
        }
        let t = self.timeout;
        let probes = self.nodes.iter().map(|n| async move {
            let down = |why: String| {
                NodeStatus::new(n.target.clone(), NodeRole::Peer, NodeState::Down).with_error(why)
            };
            match tokio::time::timeout(t, n.client.health_check()).await {
                Ok(Ok(_)) => NodeStatus::new(n.target.clone(), NodeRole::Peer, NodeState::Up),
                Ok(Err(e)) => {
                    let e = self.failed(n, crate::error::map_err(e, None));
                    down(e.message().to_owned())
                }
                Err(_) => {
                    let e = Error::new(ErrorKind::Timeout, format!("no answer within {t:?}"));
                    down(self.failed(n, e).message().to_owned())
                }
            }
        });
        futures_util::future::join_all(probes).await
    }
}
