//! Mapping between dbx values and PostgreSQL's binary formats: parameters
//! coerced to the types the server inferred for a statement, and result
//! columns decoded by their type.

mod numeric;
mod params;
mod rows;

pub(crate) use numeric::*;
pub(crate) use params::*;
pub(crate) use rows::*;

use bytes::{BufMut, BytesMut};
use dbx_core::chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use dbx_core::{Error, ErrorKind, Row, Value};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type};

pub(crate) type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01.
pub(crate) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between 0001-01-01 (chrono's day 1 of CE) and 2000-01-01.
pub(crate) const PG_EPOCH_DAYS_CE: i32 = 730_120;

#[cfg(test)]
mod tests;
