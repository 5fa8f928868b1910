//! For driver authors: what a driver implements and the helpers it may use.
//! Applications never need this module; they use the handles ([`Sql`],
//! [`Kv`], [`Docs`], [`Vectors`]) of a [`Database`].
//!
//! A driver implements [`Driver`] (URL schemes, parameters, connect), which
//! returns a [`Backend`] (health ping, pools, close) offering one or more
//! capability traits: [`SqlStore`], [`KvStore`], [`DocStore`],
//! [`VectorStore`]. The handles in `dbx-core` wrap those with the policy,
//! telemetry and conveniences, so a driver writes none of that.
//!
//! [`Sql`]: crate::Sql
//! [`Kv`]: crate::Kv
//! [`Docs`]: crate::Docs
//! [`Vectors`]: crate::Vectors
//! [`Database`]: crate::Database

use crate::error::Result;
use crate::options::ConnectOptions;
use crate::telemetry::PoolStatus;
use std::fmt;
use std::sync::Arc;

pub use crate::document::{DocStore, DocStream, DocTx, check_collection, is_ext_json};
pub use crate::kv::{KvStore, ScanPage, add_counter, check_key, check_ttl, parse_counter};
pub use crate::sql::{BoundedRows, RowStream, SqlStore, SqlTx};
pub use crate::vector::{
    VectorStore, check_collection_name, check_vector, collection_not_found, dimension_mismatch,
};
/// Re-exported: the capability traits are `#[async_trait]` traits.
pub use async_trait::async_trait;

/// A connected database, as a driver implements it: its capabilities,
/// a health probe, its pool and shutdown.
///
/// `Backend` has `Any` as a supertrait, so a driver's own type can be reached
/// from a [`Database`](crate::Database) with
/// [`Database::backend_as`](crate::Database::backend_as) for backend-specific
/// escape hatches (raw commands and the like).
#[async_trait]
pub trait Backend: std::any::Any + Send + Sync + fmt::Debug + 'static {
    /// Backend name, as in `db.system.name` (`"sqlite"`, `"redis"`, `"postgresql"`...).
    fn name(&self) -> &'static str;
    /// The SQL capability, if offered.
    fn sql(&self) -> Option<Arc<dyn SqlStore>> {
        None
    }
    /// The key-value capability, if offered.
    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        None
    }
    /// The document capability, if offered.
    fn documents(&self) -> Option<Arc<dyn DocStore>> {
        None
    }
    /// The vector capability, if offered.
    fn vectors(&self) -> Option<Arc<dyn VectorStore>> {
        None
    }
    /// One real round trip to the database.
    async fn ping(&self) -> Result<()>;
    /// Close the pools; later operations fail.
    async fn close(&self);
    /// Pool figures, if the backend pools connections.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
    /// Whether the backend enforces the operation timeout itself (SQLite
    /// interrupts a running statement at its deadline), so the core need not
    /// wrap each call in a timer.
    fn enforces_timeouts(&self) -> bool {
        false
    }
    /// The servers of a multi-server topology (a Redis Cluster, a Sentinel
    /// primary and its replica, a PostgreSQL primary and standby, several
    /// Qdrant URLs) as the client sees them now, without I/O: shown by
    /// [`Database::stats`](crate::Database::stats). Empty for one server.
    fn nodes(&self) -> Vec<NodeStatus> {
        Vec::new()
    }
    /// Ask each server of the topology whether it answers (each bounded by
    /// the operation timeout): shown by
    /// [`Database::health`](crate::Database::health). A server that fails is
    /// reported in its [`NodeStatus`], not as an error. Defaults to
    /// [`nodes`](Backend::nodes).
    async fn probe_nodes(&self) -> Result<Vec<NodeStatus>> {
        Ok(self.nodes())
    }
}

/// What a server of a topology is, in a [`NodeStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeRole {
    /// Takes writes: the one server, a cluster primary, the primary a
    /// Sentinel or `target_session_attrs` chose.
    Primary,
    /// A replica or standby (reads only, possibly behind).
    Replica,
    /// One of several equal servers (Qdrant URLs tried in turn).
    Peer,
}

/// Where a server stands for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeState {
    /// It answers; calls go to it.
    Up,
    /// The client routes around it for now (it failed to answer, or a
    /// standby lags beyond `max_replica_lag`); it is tried again later.
    Avoided,
    /// It did not answer the probe.
    Down,
}

/// One server of a multi-server topology, from
/// [`Database::health`](crate::Database::health) (probed) or
/// [`Database::stats`](crate::Database::stats) (as the client sees it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStatus {
    /// `host:port` (never credentials).
    pub addr: String,
    /// Its role.
    pub role: NodeRole,
    /// Where it stands.
    pub state: NodeState,
    /// Why it is avoided or down.
    pub error: Option<String>,
    /// The hash slots it serves (Redis Cluster primaries), inclusive ranges.
    pub slots: Vec<(u16, u16)>,
    /// Its last measured replication lag (PostgreSQL standbys).
    pub lag: Option<std::time::Duration>,
}

impl NodeStatus {
    /// A node in `state`, without slots or lag.
    pub fn new(addr: impl Into<String>, role: NodeRole, state: NodeState) -> Self {
        NodeStatus {
            addr: addr.into(),
            role,
            state,
            error: None,
            slots: Vec::new(),
            lag: None,
        }
    }

    /// The same node with the reason it is avoided or down.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// The same node with its hash slots.
    pub fn with_slots(mut self, slots: Vec<(u16, u16)>) -> Self {
        self.slots = slots;
        self
    }

    /// The same node with its replication lag.
    pub fn with_lag(mut self, lag: std::time::Duration) -> Self {
        self.lag = Some(lag);
        self
    }

    /// Whether calls go to it ([`NodeState::Up`]).
    pub fn is_up(&self) -> bool {
        self.state == NodeState::Up
    }
}

/// A database driver: opens a [`Backend`] for the URL schemes it serves.
#[async_trait]
pub trait Driver: Send + Sync + fmt::Debug + 'static {
    /// Backend name (`"sqlite"`...).
    fn name(&self) -> &'static str;
    /// URL schemes this driver serves (`["sqlite"]`).
    fn schemes(&self) -> &'static [&'static str];
    /// Backend-specific URL parameters it understands, besides the common ones.
    fn params(&self) -> &'static [&'static str] {
        &[]
    }
    /// Open the database. Parameters were checked against
    /// [`params`](Driver::params) already.
    async fn connect(&self, options: &ConnectOptions) -> Result<Arc<dyn Backend>>;
}
