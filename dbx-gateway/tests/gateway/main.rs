//! End-to-end tests of the `dbx-gateway` binary, run as a process over real
//! HTTP against real databases: SQLite (temporary files), PostgreSQL
//! (127.0.0.1:5432) and Redis (127.0.0.1:6379), which must be up (CI starts
//! them); MongoDB-wire and Qdrant only when `DBX_TEST_MONGO_URL` /
//! `DBX_TEST_QDRANT_URL` are set (skipped loudly otherwise). Each test uses
//! its own files, tables, key prefixes and collections. No assertion
//! depends on timing.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod auth;
mod common;
mod data;
mod ops;
mod sql;
