//! What a backend is connected to: one server (`redis://`, `rediss://`,
//! `redis+unix://`), a Redis Cluster (`redis+cluster://`) or the primary
//! that Redis Sentinel names (`redis+sentinel://`). The key-value
//! store and the raw-command API go through this one type, so each of their
//! methods is written once for both.

use crate::cluster::Cluster;
use crate::conn::Shared;
use crate::error::BACKEND;
use crate::sentinel::Sentinel;
use dbx_core::{Error, ErrorKind, Result};
use redis::{Cmd, FromRedisValue, Pipeline};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) enum Topology {
    Single(Arc<Shared>),
    Cluster(Arc<Cluster>),
    Sentinel(Arc<Sentinel>),
}

impl Topology {
    /// One command: on the shared connection, or to the cluster node that
    /// serves its keys.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        match self {
            Topology::Single(s) => s.query(cmd).await,
            Topology::Cluster(c) => c.query(cmd).await,
            Topology::Sentinel(s) => s.query(cmd).await,
        }
    }

    /// A command that only reads: on a replica when the URL asks for
    /// replica reads (Sentinel's `replica_reads=true`), else as `query`.
    pub(crate) async fn read<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        match self {
            Topology::Sentinel(s) => s.read(cmd).await,
            _ => self.query(cmd).await,
        }
    }

    /// A pipeline (atomic or not) in one round trip.
    pub(crate) async fn query_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        match self {
            Topology::Single(s) => s.query_pipeline(pipe).await,
            Topology::Cluster(c) => c.query_pipeline(pipe).await,
            Topology::Sentinel(s) => s.query_pipeline(pipe).await,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Topology::Single(s) => s.is_closed(),
            Topology::Cluster(c) => c.is_closed(),
            Topology::Sentinel(s) => s.is_closed(),
        }
    }

    pub(crate) fn close(&self) {
        match self {
            Topology::Single(s) => s.close(),
            Topology::Cluster(c) => c.close(),
            Topology::Sentinel(s) => s.close(),
        }
    }

    /// The deadline of one operation.
    pub(crate) fn timeout(&self) -> Duration {
        match self {
            Topology::Single(s) => s.config.timeout,
            Topology::Cluster(c) => c.timeout(),
            Topology::Sentinel(s) => s.timeout(),
        }
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(crate::error::closed())
        } else {
            Ok(())
        }
    }

    /// Bound `fut` by `limit` and name the operation.
    pub(crate) async fn timed<T>(
        &self,
        op: &'static str,
        limit: Duration,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.check_open().map_err(|e| e.with_operation(op))?;
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("operation did not finish within {limit:?}"),
            )
            .with_backend(BACKEND)),
        }
        .map_err(|e| e.with_operation(op))
    }
}
