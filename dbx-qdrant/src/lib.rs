#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod conn;
mod convert;
mod error;
mod vectors;

use crate::config::QdrantConfig;
use crate::conn::*;
use crate::error::{BACKEND, map_err};
use crate::vectors::QdrantVectors;
use dbx_core::driver::{Backend, Driver, VectorStore};
use dbx_core::{ConnectOptions, Error, ErrorKind, NodeStatus, Result};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use crate::config::{DEFAULT_POOL_SIZE, DEFAULT_PORT};
/// The official Qdrant client underneath, for everything dbx does not cover:
/// named and sparse vectors, payload indexes, recommendations, snapshots.
pub use qdrant_client;

/// The Qdrant driver: serves `qdrant://` (plain gRPC) and `qdrants://` (TLS).
#[derive(Debug, Default, Clone, Copy)]
pub struct QdrantDriver;

#[async_trait::async_trait]
impl Driver for QdrantDriver {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["qdrant", "qdrants"]
    }

    fn params(&self) -> &'static [&'static str] {
        config::PARAMS
    }

    async fn connect(&self, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(QdrantBackend::open(options).await?))
    }
}

/// A connected Qdrant server: vector collections for dbx, and the official
/// client for everything else.
///
/// Reach it from a `dbx::Dbx` with `db.qdrant()?`, from a
/// [`Database`](dbx_core::Database) with `db.backend_as::<QdrantBackend>()`,
/// or open one directly with [`QdrantBackend::connect`].
#[derive(Debug)]
pub struct QdrantBackend {
    shared: Arc<Shared>,
    vectors: Arc<QdrantVectors>,
}

impl QdrantBackend {
    /// Connect with options (see the crate docs for URLs and parameters).
    /// The whole connect is bounded by `connect_timeout`.
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        Self::open(options)
            .await
            .map_err(|e| e.with_backend(BACKEND).with_operation("connect"))
    }

    /// Parse `url` and [`connect`](Self::connect).
    pub async fn connect_url(url: &str) -> Result<Self> {
        Self::connect(&ConnectOptions::from_url(url)?).await
    }

    async fn open(options: &ConnectOptions) -> Result<Self> {
        let config = QdrantConfig::from_options(options)?;
        let limit = config.connect_timeout;
        match tokio::time::timeout(limit, Self::open_unbounded(config)).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("connecting did not finish within {limit:?}"),
            )
            .with_backend(BACKEND)),
        }
    }

    async fn open_unbounded(config: QdrantConfig) -> Result<Self> {
        let mut nodes = Vec::with_capacity(config.nodes.len());
        for (uri, target) in &config.nodes {
            let mut builder = qdrant_client::Qdrant::from_url(uri)
                .timeout(config.timeout)
                .connect_timeout(config.connect_timeout)
                // The client's own check runs a blocking health check on a
                // thread of its own and prints to stdout; connecting below
                // does the same round trip asynchronously.
                .skip_compatibility_check();
            builder.set_pool_size(config.pool_size);
            if let Some(key) = &config.api_key {
                builder.set_api_key(key.expose());
            }
            let client = builder.build().map_err(|e| map_err(e, None))?;
            nodes.push(Node::new(client, target.clone()));
        }
        // Two real round trips to the first server that answers: the health
        // check answers without a key (it gives the version), listing
        // collections checks the key. A server that is down must not keep
        // the application from starting while another answers; a wrong key
        // is an error at once.
        let mut failures = Vec::new();
        let mut version = None;
        // Each server gets its share of the connect timeout, so one that
        // does not answer leaves time for the next.
        let share = config.connect_timeout / u32::try_from(nodes.len()).unwrap_or(1).max(1);
        for node in &nodes {
            let checked = tokio::time::timeout(share, async {
                let health = node
                    .client
                    .health_check()
                    .await
                    .map_err(|e| map_err(e, None))?;
                node.client
                    .list_collections()
                    .await
                    .map_err(|e| map_err(e, None))?;
                Ok::<_, Error>(health.version)
            })
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no answer within {share:?}"),
                ))
            });
            match checked {
                Ok(v) => {
                    version = Some(v);
                    break;
                }
                Err(e)
                    if nodes.len() > 1
                        && matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout) =>
                {
                    failures.push(format!("{}: {}", node.target, e.message()));
                }
                Err(e) => return Err(e),
            }
        }
        let Some(server_version) = version else {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "no Qdrant server of the URL answered ({})",
                    failures.join("; ")
                ),
            )
            .set_transient(true)
            .with_backend(BACKEND));
        };
        tracing::debug!(
            target: "dbx",
            system = BACKEND,
            target_addr = %config.target,
            tls = config.tls,
            server_version = %server_version,
            "dbx: connected"
        );
        let shared = Arc::new(Shared::new(
            nodes,
            config.timeout,
            config.target,
            server_version,
            RequestOptions {
                read_consistency: config.read_consistency,
                write_ordering: config.write_ordering,
                shard_key: config.shard_key,
            },
        ));
        Ok(QdrantBackend {
            vectors: Arc::new(QdrantVectors {
                shared: shared.clone(),
            }),
            shared,
        })
    }

    /// The official client (shares the connections), or
    /// [`Closed`](ErrorKind::Closed) after [`close`](Self::close).
    ///
    /// With several servers in the URL: the client of the server calls go
    /// to now (the first that is not avoided after a failure).
    pub fn client(&self) -> Result<&qdrant_client::Qdrant> {
        Ok(&self.shared.pick()?.client)
    }

    /// The server's version, as its health check reported it on connect.
    pub fn server_version(&self) -> &str {
        &self.shared.server_version
    }

    /// One health-check round trip, bounded by the operation timeout (to
    /// the server calls go to now).
    pub async fn ping(&self) -> Result<()> {
        let node = self.shared.pick()?;
        let t = self.shared.timeout;
        let e = match tokio::time::timeout(t, node.client.health_check()).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => map_err(e, None),
            Err(_) => Error::new(
                ErrorKind::Timeout,
                format!("ping did not finish within {t:?}"),
            )
            .with_backend(BACKEND),
        };
        Err(self.shared.failed(node, e))
    }

    /// With several servers in the URL: each, health-checked (each bounded
    /// by the operation timeout); empty with one.
    pub async fn probe_nodes(&self) -> Vec<NodeStatus> {
        self.shared.probe().await
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Refuse new work ([`ErrorKind::Closed`]). The client has no shutdown
    /// of its own: its connections close when the last handle is dropped.
    /// Idempotent.
    pub async fn close(&self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            tracing::debug!(target: "dbx", system = BACKEND, target_addr = %self.shared.target, "dbx: closed");
        }
    }
}

#[async_trait::async_trait]
impl Backend for QdrantBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn vectors(&self) -> Option<Arc<dyn VectorStore>> {
        Some(self.vectors.clone())
    }

    async fn ping(&self) -> Result<()> {
        QdrantBackend::ping(self).await
    }

    async fn close(&self) {
        QdrantBackend::close(self).await;
    }

    fn nodes(&self) -> Vec<NodeStatus> {
        self.shared.node_states()
    }

    async fn probe_nodes(&self) -> Result<Vec<NodeStatus>> {
        Ok(self.shared.probe().await)
    }
}
