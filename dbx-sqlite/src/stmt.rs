//! Statements: the per-connection cache of prepared statements, binding
//! `$N` placeholders, and the driver's write transactions.

use crate::convert::{Bind, Columns};
use crate::error::map_err;
use dbx_core::{Error, Value};
use rusqlite::Statement;

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

/// The parameter number `N` of each `$N` placeholder of `stmt`, by
/// position. Placeholders are part of the SQL text, so this is computed once
/// per statement text (see [`StmtCache`]).
pub(crate) fn placeholders(stmt: &Statement<'_>) -> Result<Box<[usize]>, Error> {
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
pub(crate) fn bind_numbered(
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
pub(crate) struct Cached<'c> {
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
pub(crate) fn counts(stmt: &Statement<'_>) -> (i32, i32) {
    use rusqlite::StatementStatus;
    (
        stmt.get_status(StatementStatus::Run),
        stmt.get_status(StatementStatus::RePrepare),
    )
}
