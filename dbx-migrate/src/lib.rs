#![doc = include_str!("../README.md")]

mod migrator;
mod source;
mod sqltext;

pub use migrator::{DEFAULT_TABLE, Direction, Done, Event, Migrator, State, Status, Step};
pub use source::{Dialect, Migration, Migrations};

/// The marker line of a migration that must run outside a transaction
/// (`CREATE INDEX CONCURRENTLY`, `VACUUM`).
pub const NO_TRANSACTION_MARKER: &str = sqltext::NO_TRANSACTION;
