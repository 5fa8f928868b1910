//! Mapping between dbx and SQLite: errors, placeholders, values and rows.

use dbx_core::chrono::{DateTime, NaiveDateTime, Utc};
use dbx_core::{Error, ErrorKind, Row, Value};
use rusqlite::ffi::ErrorCode;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Statement, ToSql};
use std::sync::Arc;

pub(crate) const BACKEND: &str = "sqlite";

/// A write transaction (`BEGIN IMMEDIATE`: the write lock up front) for a
/// driver job. rusqlite's checked `transaction_with_behavior` wants
/// `&mut Connection`, but a pooled connection is reached by `&` (it is held
/// together with its cached statements); a job always starts on a
/// connection in autocommit mode, so no transaction is nested.
pub(crate) fn write_transaction(
    c: &rusqlite::Connection,
) -> Result<rusqlite::Transaction<'_>, Error> {
    rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)
        .map_err(map_err)
}

/// The one place where rusqlite errors become dbx errors, from SQLite's own codes.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    let (kind, transient) = match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => (ErrorKind::Conflict, false),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (ErrorKind::Timeout, true),
            ErrorCode::OperationInterrupted => (ErrorKind::Timeout, true),
            ErrorCode::CannotOpen | ErrorCode::NotADatabase => (ErrorKind::Connect, false),
            ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied => {
                (ErrorKind::Auth, false)
            }
            ErrorCode::TooBig => (ErrorKind::InvalidInput, false),
            ErrorCode::TypeMismatch => (ErrorKind::Conflict, false),
            ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::OutOfMemory => {
                (ErrorKind::Other, true)
            }
            ErrorCode::SchemaChanged => (ErrorKind::Query, true),
            _ => (ErrorKind::Query, false),
        },
        E::SqlInputError { .. } => (ErrorKind::Query, false),
        E::QueryReturnedNoRows => (ErrorKind::NotFound, false),
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..) => (ErrorKind::Decode, false),
        E::InvalidParameterCount(..)
        | E::InvalidParameterName(..)
        | E::NulError(..)
        | E::MultipleStatement
        | E::InvalidPath(..)
        | E::ToSqlConversionFailure(..) => (ErrorKind::InvalidInput, false),
        _ => (ErrorKind::Other, false),
    };
    let message = match &e {
        E::SqliteFailure(f, Some(msg)) if f.code == ErrorCode::OperationInterrupted => {
            format!("statement interrupted at its deadline ({msg})")
        }
        E::SqliteFailure(f, _) if f.code == ErrorCode::OperationInterrupted => {
            "statement interrupted at its deadline".to_owned()
        }
        E::SqliteFailure(f, _)
            if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked =>
        {
            format!("{e} (the busy timeout elapsed)")
        }
        E::MultipleStatement => {
            "the SQL text holds more than one statement; send one per call".to_owned()
        }
        _ => e.to_string(),
    };
    let mut error = Error::new(kind, message).set_transient(transient);
    if let E::SqliteFailure(f, _) = &e {
        error = error.with_code(f.extended_code.to_string());
    }
    error.with_source(e).with_backend(BACKEND)
}

/// The parameter number `N` of each `$N` placeholder of `stmt`, by
/// position. Placeholders are part of the SQL text, so this is computed once
/// per statement text (see [`StmtCache`]).
fn placeholders(stmt: &Statement<'_>) -> Result<Box<[usize]>, Error> {
    (1..=stmt.parameter_count())
        .map(|i| match stmt.parameter_name(i) {
            Some(name) => name
                .strip_prefix('$')
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "placeholder `{name}` is not supported; use $1..$N"
                    ))
                }),
            None => Err(Error::invalid_input(
                "placeholder `?` is not supported; use $1..$N",
            )),
        })
        .collect()
}

/// Bind `params` to `stmt` by number: `$N` takes `params[N-1]`, wherever and
/// however often it appears (`numbers` are the statement's placeholders, by
/// position). SQLite itself numbers `$N` names by first appearance, so
/// binding by position would swap values in `SELECT $2, $1`.
fn bind_numbered(
    stmt: &mut Statement<'_>,
    numbers: &[usize],
    params: &[Value],
) -> Result<(), Error> {
    let mut highest = 0usize;
    for (i, &n) in numbers.iter().enumerate() {
        let value = params.get(n - 1).ok_or_else(|| {
            Error::invalid_input(format!(
                "statement uses ${n} but {} parameter{} given",
                params.len(),
                if params.len() == 1 { " was" } else { "s were" }
            ))
        })?;
        highest = highest.max(n);
        stmt.raw_bind_parameter(i + 1, Bind(value))
            .map_err(map_err)?;
    }
    if params.len() > highest {
        return Err(Error::invalid_input(format!(
            "{} parameters were given but the statement uses {}",
            params.len(),
            if highest == 0 {
                "none".to_owned()
            } else {
                format!("only $1..${highest}")
            }
        )));
    }
    Ok(())
}

/// A dbx value as a SQLite value.
struct Bind<'a>(&'a Value);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Float(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) | Value::Decimal(s) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Json(j) => ToSqlOutput::Owned(rusqlite::types::Value::Text(j.to_string())),
            Value::Timestamp(t) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Text(Value::timestamp_text(t)))
            }
            Value::Uuid(u) => ToSqlOutput::Owned(rusqlite::types::Value::Text(u.to_string())),
            // `Value` is non-exhaustive for users; every variant is covered above.
            #[allow(unreachable_patterns)]
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("unsupported value {other:?}").into(),
                ));
            }
        })
    }
}

/// How a column's declared type refines what SQLite's storage class says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decl {
    Plain,
    Bool,
    Json,
    Uuid,
    Timestamp,
    Decimal,
}

/// Whether `hay` contains `needle` (uppercase ASCII), ignoring ASCII case.
fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl Decl {
    fn of(decltype: Option<&str>) -> Decl {
        let Some(t) = decltype else {
            return Decl::Plain;
        };
        if contains_ci(t, "BOOL") {
            Decl::Bool
        } else if contains_ci(t, "JSON") {
            Decl::Json
        } else if contains_ci(t, "UUID") {
            Decl::Uuid
        } else if contains_ci(t, "TIMESTAMP") || contains_ci(t, "DATETIME") {
            Decl::Timestamp
        } else if contains_ci(t, "DECIMAL") || contains_ci(t, "NUMERIC") {
            Decl::Decimal
        } else {
            Decl::Plain
        }
    }
}

/// The application's prepared statements on one connection, each with what
/// dbx learns about its text: its placeholder numbers (fixed by the text)
/// and its result columns (names and declared types, shared by the rows).
///
/// dbx keeps these statements itself rather than in rusqlite's statement
/// cache: a statement is found with one hash of its text, the lookup dbx
/// needs anyway for the entry, instead of rusqlite's second lookup and the
/// re-insertion when the statement is given back (measured with callgrind:
/// about 1,100 instructions of a point select). Least recently used
/// statements are finalized beyond the capacity (`statement_cache_capacity`;
/// 0 prepares every statement afresh).
///
/// Columns depend on the schema, so a cached description is trusted only
/// as long as SQLite has not re-prepared the statement. That is told by the
/// statement's own counters: every run goes through its entry, which records
/// the statement's run count (`SQLITE_STMTSTATUS_RUN`, which SQLite
/// increments on the first step of each run) and re-prepare count
/// (`SQLITE_STMTSTATUS_REPREPARE`, incremented whenever a schema change made
/// SQLite prepare it again). When, after the first step of a run, the run
/// count is one more than recorded and the re-prepare count unchanged, the
/// description holds. Otherwise (a failed run leaves its count unrecorded)
/// names and declared types are compared with the statement's, so a schema
/// change cannot make a description stale.
pub(crate) struct StmtCache<'c> {
    map: hashlink::LruCache<Box<str>, Cached<'c>, foldhash::fast::RandomState>,
}

/// One cached statement and what dbx knows about it.
struct Cached<'c> {
    prepared: Prepared,
    stmt: Statement<'c>,
}

impl Cached<'_> {
    fn run<R>(
        &mut self,
        f: impl FnOnce(&mut Prepared, &mut Statement<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let r = f(&mut self.prepared, &mut self.stmt);
        // Values stay bound until the next run otherwise: let go of them.
        self.stmt.clear_bindings();
        r
    }
}

/// What [`StmtCache`] keeps for one statement text.
pub(crate) struct Prepared {
    placeholders: Box<[usize]>,
    columns: Option<Columns>,
    /// Run and re-prepare counts of the statement after the step at which
    /// `columns` was last confirmed (or the statement last ran unchanged).
    seen: Option<(i32, i32)>,
}

impl<'c> StmtCache<'c> {
    /// An empty cache of at most `capacity` statements.
    pub(crate) fn new(capacity: usize) -> Self {
        StmtCache {
            map: hashlink::LruCache::with_hasher(capacity, Default::default()),
        }
    }

    /// Call `f` with the entry and prepared statement of `sql` on `conn`,
    /// preparing it first if it is not cached (one hash lookup when it is).
    pub(crate) fn with<R>(
        &mut self,
        conn: &'c rusqlite::Connection,
        sql: &str,
        f: impl FnOnce(&mut Prepared, &mut Statement<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if let Some(cached) = self.map.get_mut(sql) {
            return cached.run(f);
        }
        let stmt = conn.prepare(sql).map_err(map_err)?;
        let mut fresh = Cached {
            prepared: Prepared {
                placeholders: placeholders(&stmt)?,
                columns: None,
                seen: None,
            },
            stmt,
        };
        if self.map.capacity() == 0 {
            return fresh.run(f);
        }
        if self.map.len() >= self.map.capacity() {
            // Finalized here: never while it runs.
            self.map.remove_lru();
        }
        self.map.entry(sql.into()).or_insert(fresh).run(f)
    }
}

impl Prepared {
    /// Bind `params` to `stmt` by number (see [`bind_numbered`]).
    pub(crate) fn bind(&self, stmt: &mut Statement<'_>, params: &[Value]) -> Result<(), Error> {
        bind_numbered(stmt, &self.placeholders, params)
    }

    /// The result columns of `stmt`, from the cache when they still match.
    /// Call it after the first step: a statement re-prepared after a schema
    /// change only shows its new columns once it has run.
    pub(crate) fn columns(&mut self, stmt: &Statement<'_>) -> &Columns {
        let now = counts(stmt);
        let same = self.is_next_run(now);
        self.seen = Some(now);
        if !self
            .columns
            .as_ref()
            .is_some_and(|c| same || c.matches(stmt))
        {
            self.columns = None;
        }
        self.columns.get_or_insert_with(|| Columns::of(stmt))
    }

    /// Record a run of `stmt` that did not ask for its columns (a statement
    /// without rows, or one run for its count).
    pub(crate) fn ran(&mut self, stmt: &Statement<'_>) {
        let now = counts(stmt);
        self.seen = self.is_next_run(now).then_some(now);
    }

    /// Whether `now` are the counts of the statement last seen, one run later
    /// and not re-prepared.
    fn is_next_run(&self, now: (i32, i32)) -> bool {
        self.seen
            .is_some_and(|(run, reprepared)| now == (run.wrapping_add(1), reprepared))
    }
}

/// The run and re-prepare counts of a statement (see [`StmtCache`]).
fn counts(stmt: &Statement<'_>) -> (i32, i32) {
    use rusqlite::StatementStatus;
    (
        stmt.get_status(StatementStatus::Run),
        stmt.get_status(StatementStatus::RePrepare),
    )
}

/// Column names and declared types of a prepared statement, shared by its rows.
pub(crate) struct Columns {
    pub(crate) names: Arc<[String]>,
    decl_types: Vec<Option<Box<str>>>,
    decls: Vec<Decl>,
}

impl Columns {
    fn matches(&self, stmt: &Statement<'_>) -> bool {
        stmt.column_count() == self.names.len()
            && stmt
                .columns()
                .zip(self.names.iter().zip(&self.decl_types))
                .all(|(c, (name, decl_type))| {
                    c.name() == name && c.decl_type() == decl_type.as_deref()
                })
    }

    pub(crate) fn of(stmt: &Statement<'_>) -> Columns {
        let cols = stmt.columns();
        let mut names = Vec::with_capacity(cols.len());
        let mut decl_types = Vec::with_capacity(cols.len());
        let mut decls = Vec::with_capacity(cols.len());
        for c in cols {
            names.push(c.name().to_owned());
            decl_types.push(c.decl_type().map(Box::from));
            decls.push(Decl::of(c.decl_type()));
        }
        Columns {
            names: names.into(),
            decl_types,
            decls,
        }
    }

    pub(crate) fn row(&self, r: &rusqlite::Row<'_>) -> Result<Row, Error> {
        let mut values = Vec::with_capacity(self.decls.len());
        for (i, decl) in self.decls.iter().enumerate() {
            let v = r.get_ref(i).map_err(map_err)?;
            values.push(to_value(v, *decl).map_err(|msg| {
                Error::decode(format!("column {:?}: {msg}", self.names[i])).with_backend(BACKEND)
            })?);
        }
        Ok(Row::new(self.names.clone(), values))
    }
}

fn to_value(v: ValueRef<'_>, decl: Decl) -> Result<Value, String> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if decl == Decl::Bool && (i == 0 || i == 1) => Value::Bool(i == 1),
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(bytes) => {
            let s =
                std::str::from_utf8(bytes).map_err(|e| format!("text is not valid UTF-8 ({e})"))?;
            match decl {
                Decl::Json => {
                    serde_json::from_str(s).map_or_else(|_| Value::Text(s.to_owned()), Value::Json)
                }
                Decl::Uuid => s
                    .parse()
                    .map_or_else(|_| Value::Text(s.to_owned()), Value::Uuid),
                Decl::Timestamp => {
                    parse_timestamp(s).map_or_else(|| Value::Text(s.to_owned()), Value::Timestamp)
                }
                Decl::Decimal => Value::decimal(s).unwrap_or_else(|_| Value::Text(s.to_owned())),
                Decl::Plain | Decl::Bool => Value::Text(s.to_owned()),
            }
        }
        ValueRef::Blob(b) if decl == Decl::Uuid && b.len() == 16 => {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(b);
            Value::Uuid(dbx_core::uuid::Uuid::from_bytes(raw))
        }
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}

/// RFC 3339, or SQLite's own `YYYY-MM-DD HH:MM:SS[.fff]` (taken as UTC).
fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decltypes() {
        assert!(Decl::of(Some("boolean")) == Decl::Bool);
        assert!(Decl::of(Some("JSONB")) == Decl::Json);
        assert!(Decl::of(Some("TEXT")) == Decl::Plain);
        assert!(Decl::of(None) == Decl::Plain);
        assert!(Decl::of(Some("decimal(10,2)")) == Decl::Decimal);
    }

    #[test]
    fn timestamps() {
        assert!(parse_timestamp("2024-01-02 03:04:05").is_some());
        assert!(parse_timestamp("2024-01-02T03:04:05.123456Z").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
