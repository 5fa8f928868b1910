#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub mod cache;
pub mod config;
pub mod database;
pub mod document;
pub mod driver;
pub mod error;
pub mod kv;
pub mod options;
pub mod policy;
pub mod registry;
pub mod row;
pub mod settings;
mod shard;
pub mod sql;
pub mod telemetry;
mod util;
pub mod value;
pub mod vector;

pub use database::{Database, Health};
pub use document::{
    Collection, DocStream, DocTransaction, Docs, FindOptions, IndexSpec, TypedDocStream,
    UpdateResult,
};
pub use driver::{NodeRole, NodeState, NodeStatus};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use kv::{KeyStream, Kv, Ttl};
pub use options::{ConnectOptions, Secret};
pub use policy::{BreakerConfig, BreakerState, LimitConfig, Policy, RetryConfig};
pub use registry::Registry;
pub use row::{ColumnIndex, Row};
pub use sql::{BoundedRows, RowStream, Sql, SqlTransaction, TransactionOptions};
pub use telemetry::{Latency, PoolStatus, Stats};
pub use value::Value;
pub use vector::{
    CollectionInfo, Condition, Distance, Filter, Include, MatchValue, Point, PointId, Range,
    Record, ScoredPoint, Search, VectorCollection, Vectors,
};

/// Re-exported for drivers and users who build timestamps and UUIDs.
pub use chrono;
/// Re-exported for JSON values.
pub use serde_json;
/// Re-exported for UUID values.
pub use uuid;
