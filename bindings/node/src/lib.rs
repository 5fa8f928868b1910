//! The Node.js binding of dbx: the native addon behind the `dbx` npm
//! package in `bindings/node` (see its README).
//!
//! Built only on the public API of the `dbx` facade, with napi-rs. Every
//! I/O method returns a Promise fed by a Rust future on napi's Tokio
//! runtime (one per process, shared by every `Dbx` and worker thread); the
//! JavaScript thread never blocks. `index.js` wraps the native class in the
//! documented API (`db.sql`, `db.kv`, `db.docs`, `db.vectors`) and gives
//! errors their `DbxError` subclass.

// `cargo clippy --all-targets` checks this crate as a test harness too
// (even with `test = false`), and napi-rs leaves its registration code out
// under `cfg(test)`: everything exported would read as dead there.
#![cfg_attr(test, allow(dead_code))]

mod convert;
mod errors;
mod handles;
