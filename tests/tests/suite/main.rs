//! Runs the conformance suite against every backend, plus backend-specific
//! tests. One test binary, so the workspace links once.
#![allow(clippy::unwrap_used, clippy::panic)]

#[cfg(all(feature = "cache", feature = "postgres", feature = "redis"))]
mod cache;
mod memory;
#[cfg(all(feature = "migrate", feature = "sqlite", feature = "postgres"))]
mod migrate;
#[cfg(feature = "mongo")]
mod mongo;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_replica;
#[cfg(feature = "qdrant")]
mod qdrant;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "redis")]
mod redis_sentinel;
#[cfg(feature = "sqlite")]
mod sqlite;
