//! Runs the conformance suite against every backend, plus backend-specific
//! tests. One test binary, so the workspace links once.
#![allow(clippy::unwrap_used, clippy::panic)]

mod sqlite;
