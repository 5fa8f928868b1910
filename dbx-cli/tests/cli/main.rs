//! End-to-end tests of the `dbx` binary, run as a process against real
//! databases: SQLite (temporary files), PostgreSQL (127.0.0.1:5432) and
//! Redis (127.0.0.1:6379), which must be up (CI starts them), the
//! MongoDB-wire server of `scripts/start-mongo.sh` (`DBX_TEST_MONGO_URL`,
//! else 127.0.0.1:27018, which must be up too), and Qdrant when
//! `DBX_TEST_QDRANT_URL` is set (skipped loudly otherwise). Each test uses
//! its own table, key prefix or collection and removes it. No assertion
//! depends on timing.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod common;
mod docs;
mod general;
mod kv;
mod migrate;
mod query;
mod secrets;
mod vectors;
