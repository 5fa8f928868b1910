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
pub use crate::sql::{RowStream, SqlStore, SqlTx};
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
