//! Applying and reverting migrations on a database, exactly once however
//! many processes run them at the same time.

use crate::source::{Dialect, Migration, Migrations};
use crate::sqltext;
use dbx_core::{Database, Error, ErrorKind, Result, SqlTransaction, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default bookkeeping table.
pub const DEFAULT_TABLE: &str = "dbx_migrations";

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// Applying a migration.
    Up,
    /// Reverting one.
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "up",
            Direction::Down => "down",
        })
    }
}

/// One step a run takes (or, for a dry run, would take).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// The migration's version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Applying or reverting.
    pub direction: Direction,
    /// The script that runs.
    pub sql: String,
    /// Whether it runs in a transaction with its bookkeeping row.
    pub transactional: bool,
}

/// A step that was taken, with how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Done {
    /// The migration's version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Applied or reverted.
    pub direction: Direction,
    /// How long its script and bookkeeping took.
    pub elapsed: Duration,
}

/// What a run reports while it works (for progress bars and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Waiting for other migrators (the lock), then reading the table.
    Locking,
    /// The steps this run will take, once it holds the lock.
    Planned(usize),
    /// A step starts.
    Started {
        /// The migration's version.
        version: u64,
        /// Its name.
        name: String,
        /// Applying or reverting.
        direction: Direction,
    },
    /// A step is done.
    Finished(Done),
}

/// Where one migration stands on a database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Not applied yet.
    Pending,
    /// Applied, and its file is as it was then.
    Applied {
        /// When (RFC 3339, UTC).
        at: String,
    },
    /// Applied, but its file was edited since (the checksums differ).
    Edited {
        /// When it was applied.
        at: String,
    },
    /// Applied, but no file has its version any more.
    Missing {
        /// When it was applied.
        at: String,
    },
}

/// One line of [`Migrator::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The version.
    pub version: u64,
    /// The name (the file's, or the table's for a missing file).
    pub name: String,
    /// Where it stands.
    pub state: State,
}

/// A row of the bookkeeping table.
#[derive(Debug, Clone)]
struct AppliedRow {
    name: String,
    checksum: String,
    at: String,
}

type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Runs a set of [`Migrations`] on SQLite and PostgreSQL databases.
///
/// Each migration runs in one transaction with its row in the bookkeeping
/// table (`dbx_migrations` unless [`table`](Migrator::table) says
/// otherwise), so a failure rolls back that migration only. Several
/// processes may run the same migrations at once (replicas starting
/// together): each migration is applied exactly once. On PostgreSQL a run
/// holds a transaction-level advisory lock for its whole length; on SQLite
/// each migration takes the database's write lock and checks again that
/// no other process applied it meanwhile.
///
/// ```no_run
/// # async fn demo(db: &dbx_core::Database) -> dbx_core::Result<()> {
/// use dbx_migrate::{Migrations, Migrator};
/// let migrator = Migrator::new(Migrations::from_dir("migrations")?);
/// for done in migrator.up(db).await? {
///     println!("applied {} {} in {:?}", done.version, done.name, done.elapsed);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Migrator {
    migrations: Migrations,
    table: String,
    observer: Option<Observer>,
}

impl fmt::Debug for Migrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrator")
            .field("migrations", &self.migrations)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Migrator {
    /// A migrator of `migrations`, with the default table.
    pub fn new(migrations: Migrations) -> Migrator {
        Migrator {
            migrations,
            table: DEFAULT_TABLE.to_owned(),
            observer: None,
        }
    }

    /// Keep the bookkeeping in `name` (`table` or `schema.table`: letters,
    /// digits and `_`, not starting with a digit, at most 63 bytes each).
    pub fn table(mut self, name: &str) -> Result<Migrator> {
        let ok_part = |p: &str| {
            !p.is_empty()
                && p.len() <= 63
                && !p.as_bytes()[0].is_ascii_digit()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
            return Err(Error::invalid_config(format!(
                "migrations table {:?} is not a table name (letters, digits and _, optionally schema.table)",
                name.chars().take(80).collect::<String>()
            )));
        }
        self.table = name.to_owned();
        Ok(self)
    }

    /// Call `f` with each [`Event`] of a run.
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Migrator {
        self.observer = Some(Arc::new(f));
        self
    }

    /// The migrations it runs.
    pub fn migrations(&self) -> &Migrations {
        &self.migrations
    }

    fn emit(&self, e: Event) {
        if let Some(f) = &self.observer {
            f(&e);
        }
    }

    /// Every migration, in version order, with where it stands; applied
    /// versions that have no file any more are listed as
    /// [`State::Missing`]. Creates nothing on the database.
    pub async fn status(&self, db: &Database) -> Result<Vec<Status>> {
        let dialect = Dialect::of_backend(db.backend_name())?;
        let local = self.migrations.for_dialect(dialect)?;
        let applied = self.read_applied_if_exists(db).await?;
        Ok(status_of(&local, &applied))
    }

    /// Check that every applied migration still has its file, unchanged,
    /// and that no migration was left out below an applied one. A
    /// [`Conflict`](ErrorKind::Conflict) error names each problem.
    pub async fn verify(&self, db: &Database) -> Result<()> {
        let dialect = Dialect::of_backend(db.backend_name())?;
        let local = self.migrations.for_dialect(dialect)?;
        let applied = self.read_applied_if_exists(db).await?;
        check(&local, &applied, &self.table)
    }

    /// Apply every pending migration.
    pub async fn up(&self, db: &Database) -> Result<Vec<Done>> {
        self.run(db, Direction::Up, None, false).await.map(|r| r.0)
    }

    /// Apply the pending migrations up to `version`, included.
    pub async fn up_to(&self, db: &Database, version: u64) -> Result<Vec<Done>> {
        self.run(db, Direction::Up, Some(version), false)
            .await
            .map(|r| r.0)
    }

    /// Revert the last applied migration.
    pub async fn down(&self, db: &Database) -> Result<Vec<Done>> {
        self.run(db, Direction::Down, None, false)
            .await
            .map(|r| r.0)
    }

    /// Revert every applied migration above `version` (0: all of them),
    /// newest first. Each needs a down file.
    pub async fn down_to(&self, db: &Database, version: u64) -> Result<Vec<Done>> {
        self.run(db, Direction::Down, Some(version), false)
            .await
            .map(|r| r.0)
    }

    /// The steps [`up`](Migrator::up) (or [`up_to`](Migrator::up_to) with
    /// `to`) would take now, with their SQL, changing nothing but creating
    /// the bookkeeping table if it is missing.
    pub async fn plan_up(&self, db: &Database, to: Option<u64>) -> Result<Vec<Step>> {
        self.run(db, Direction::Up, to, true).await.map(|r| r.1)
    }

    /// The steps [`down`](Migrator::down) (`to: None`) or
    /// [`down_to`](Migrator::down_to) would take now, with their SQL.
    pub async fn plan_down(&self, db: &Database, to: Option<u64>) -> Result<Vec<Step>> {
        self.run(db, Direction::Down, to, true).await.map(|r| r.1)
    }

    async fn run(
        &self,
        db: &Database,
        direction: Direction,
        to: Option<u64>,
        dry_run: bool,
    ) -> Result<(Vec<Done>, Vec<Step>)> {
        let dialect = Dialect::of_backend(db.backend_name())?;
        let local = self.migrations.for_dialect(dialect)?;
        if let Some(v) = to
            && direction == Direction::Up
            && !local.iter().any(|m| m.version == v)
        {
            return Err(Error::invalid_input(format!(
                "there is no migration {v} to migrate up to (the versions are {})",
                versions_list(&local)
            )));
        }
        self.ensure_table(db, dialect).await?;
        self.emit(Event::Locking);
        let sql = db.sql()?;
        // PostgreSQL: one advisory lock for the whole run, held by a
        // transaction of its own; the migrations run on other connections.
        let lock = match dialect {
            Dialect::Postgres => {
                let mut tx = sql.begin().await?;
                tx.execute_script(&self.lock_sql()).await?;
                Some(tx)
            }
            Dialect::Sqlite => None,
        };
        // Read on another connection: the lock's transaction must hold no
        // snapshot, or CREATE INDEX CONCURRENTLY in a no-transaction
        // migration would wait for it to end, and it waits for the run.
        let applied = self.read_applied(db).await?;
        check(&local, &applied, &self.table)?;
        let steps = plan(&local, &applied, direction, to)?;
        self.emit(Event::Planned(steps.len()));
        if dry_run {
            release(lock).await;
            return Ok((Vec::new(), steps));
        }
        let mut done = Vec::with_capacity(steps.len());
        for step in &steps {
            self.emit(Event::Started {
                version: step.version,
                name: step.name.clone(),
                direction: step.direction,
            });
            let start = Instant::now();
            let checksum = local
                .iter()
                .find(|m| m.version == step.version)
                .map(|m| m.checksum.clone())
                .unwrap_or_default();
            let ran = match dialect {
                Dialect::Postgres => self.step_postgres(db, step, &checksum).await,
                Dialect::Sqlite => self.step_sqlite(db, step, &checksum).await,
            };
            match ran {
                Ok(true) => {
                    let d = Done {
                        version: step.version,
                        name: step.name.clone(),
                        direction: step.direction,
                        elapsed: start.elapsed(),
                    };
                    tracing::info!(target: "dbx_migrate", version = d.version, name = %d.name, direction = %d.direction, elapsed = ?d.elapsed, "migration done");
                    self.emit(Event::Finished(d.clone()));
                    done.push(d);
                }
                // Another process applied (or reverted) it meanwhile.
                Ok(false) => {}
                Err(e) => {
                    release(lock).await;
                    return Err(Error::new(
                        e.kind(),
                        format!(
                            "migration {} {} ({}) failed, nothing of it was kept{}: {}",
                            step.version,
                            step.name,
                            step.direction,
                            if step.transactional {
                                ""
                            } else {
                                " but what its statements before the failure did (it runs without a transaction)"
                            },
                            e.message()
                        ),
                    )
                    .with_source(e));
                }
            }
        }
        release(lock).await;
        Ok((done, steps))
    }

    /// The statement that takes the advisory lock. The simple protocol, so
    /// that the lock's transaction is left holding no snapshot (a statement
    /// through the extended protocol left one, seen in `pg_stat_activity`,
    /// and CREATE INDEX CONCURRENTLY waits for every older snapshot).
    fn lock_sql(&self) -> String {
        format!("SELECT pg_advisory_xact_lock({})", self.lock_key())
    }

    /// A 64-bit key of the advisory lock, from the table name.
    fn lock_key(&self) -> i64 {
        let h = sqltext::fnv64(&[b"dbx-migrate:", self.table.as_bytes()]);
        i64::from_ne_bytes(h.to_ne_bytes())
    }

    async fn ensure_table(&self, db: &Database, dialect: Dialect) -> Result<()> {
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             checksum TEXT NOT NULL, applied_at TEXT NOT NULL, execution_ms BIGINT NOT NULL)",
            self.table
        );
        let sql = db.sql()?;
        let mut tx = sql.begin().await?;
        if dialect == Dialect::Postgres {
            // Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL
            // (a unique violation in its catalog): one at a time.
            tx.execute_script(&self.lock_sql()).await?;
        }
        tx.execute(&ddl, &[]).await?;
        tx.commit().await
    }

    async fn read_applied_if_exists(&self, db: &Database) -> Result<BTreeMap<u64, AppliedRow>> {
        match self.read_applied(db).await {
            Ok(rows) => Ok(rows),
            // No table yet: nothing applied.
            Err(e) if e.kind() == ErrorKind::Query || e.kind() == ErrorKind::NotFound => {
                let exists = self.table_exists(db).await?;
                if exists { Err(e) } else { Ok(BTreeMap::new()) }
            }
            Err(e) => Err(e),
        }
    }

    async fn table_exists(&self, db: &Database) -> Result<bool> {
        let sql = db.sql()?;
        let (schema, table) = match self.table.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, self.table.as_str()),
        };
        let rows = match Dialect::of_backend(db.backend_name())? {
            Dialect::Sqlite => {
                sql.query(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
                    &[Value::from(table)],
                )
                .await?
            }
            Dialect::Postgres => {
                sql.query(
                    "SELECT 1 FROM information_schema.tables WHERE table_name = $1 \
                     AND table_schema = COALESCE($2, current_schema())",
                    &[Value::from(table), schema.map_or(Value::Null, Value::from)],
                )
                .await?
            }
        };
        Ok(!rows.is_empty())
    }

    async fn read_applied(&self, db: &Database) -> Result<BTreeMap<u64, AppliedRow>> {
        let q = format!(
            "SELECT version, name, checksum, applied_at FROM {} ORDER BY version",
            self.table
        );
        let rows = db.sql()?.query(&q, &[]).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (version, name, checksum, at): (i64, String, String, String) = row.decode()?;
            let version = u64::try_from(version).map_err(|_| {
                Error::decode(format!(
                    "{} holds version {version}, which is not a migration version",
                    self.table
                ))
            })?;
            out.insert(version, AppliedRow { name, checksum, at });
        }
        Ok(out)
    }

    /// One step on PostgreSQL (the run holds the advisory lock).
    async fn step_postgres(&self, db: &Database, step: &Step, checksum: &str) -> Result<bool> {
        let sql = db.sql()?;
        if step.transactional {
            let mut tx = sql.begin().await?;
            tx.execute_script(&step.sql).await?;
            self.book(&mut tx, step, checksum, Duration::ZERO).await?;
            tx.commit().await?;
        } else {
            // Statements such as CREATE INDEX CONCURRENTLY refuse to run in
            // a transaction, and a multi-statement script is one: each on
            // its own.
            let start = Instant::now();
            for statement in sqltext::split(&step.sql) {
                sql.execute_script(&statement).await?;
            }
            let mut tx = sql.begin().await?;
            self.book(&mut tx, step, checksum, start.elapsed()).await?;
            tx.commit().await?;
        }
        Ok(true)
    }

    /// One step on SQLite: under the database's write lock (`BEGIN
    /// IMMEDIATE`), checking first that no other process took it.
    async fn step_sqlite(&self, db: &Database, step: &Step, checksum: &str) -> Result<bool> {
        let sql = db.sql()?;
        let mut tx = sql.begin().await?;
        let present = !tx
            .query(
                &format!("SELECT 1 FROM {} WHERE version = $1", self.table),
                &[version_value(step.version)?],
            )
            .await?
            .is_empty();
        let wanted = match step.direction {
            Direction::Up => !present,
            Direction::Down => present,
        };
        if !wanted {
            tx.rollback().await?;
            return Ok(false);
        }
        if step.transactional {
            tx.execute_script(&step.sql).await?;
            self.book(&mut tx, step, checksum, Duration::ZERO).await?;
            tx.commit().await?;
        } else {
            // Claim it under the lock, run it outside any transaction, and
            // give the claim back if it fails.
            self.book(&mut tx, step, checksum, Duration::ZERO).await?;
            tx.commit().await?;
            if let Err(e) = sql.execute_script(&step.sql).await {
                let mut undo = sql.begin().await?;
                let revert = Step {
                    direction: match step.direction {
                        Direction::Up => Direction::Down,
                        Direction::Down => Direction::Up,
                    },
                    ..step.clone()
                };
                self.book(&mut undo, &revert, checksum, Duration::ZERO)
                    .await?;
                undo.commit().await?;
                return Err(e);
            }
        }
        Ok(true)
    }

    /// Record (up) or remove (down) a migration's row.
    async fn book(
        &self,
        tx: &mut SqlTransaction,
        step: &Step,
        checksum: &str,
        elapsed: Duration,
    ) -> Result<()> {
        let version = version_value(step.version)?;
        match step.direction {
            Direction::Up => {
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                tx.execute(
                    &format!(
                        "INSERT INTO {} (version, name, checksum, applied_at, execution_ms) \
                         VALUES ($1, $2, $3, $4, $5)",
                        self.table
                    ),
                    &[
                        version,
                        Value::from(step.name.as_str()),
                        Value::from(checksum),
                        Value::from(at),
                        Value::Int(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)),
                    ],
                )
                .await?;
            }
            Direction::Down => {
                tx.execute(
                    &format!("DELETE FROM {} WHERE version = $1", self.table),
                    &[version],
                )
                .await?;
            }
        }
        Ok(())
    }
}

fn version_value(v: u64) -> Result<Value> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| Error::invalid_input(format!("version {v} is too large for the table")))
}

async fn release(lock: Option<SqlTransaction>) {
    if let Some(tx) = lock {
        // Rolling back ends the transaction and releases the lock.
        let _ = tx.rollback().await;
    }
}

fn versions_list(local: &[Migration]) -> String {
    if local.is_empty() {
        return "none".to_owned();
    }
    local
        .iter()
        .map(|m| m.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_of(local: &[Migration], applied: &BTreeMap<u64, AppliedRow>) -> Vec<Status> {
    let mut out: BTreeMap<u64, Status> = BTreeMap::new();
    for m in local {
        let state = match applied.get(&m.version) {
            None => State::Pending,
            Some(row) if row.checksum == m.checksum => State::Applied { at: row.at.clone() },
            Some(row) => State::Edited { at: row.at.clone() },
        };
        out.insert(
            m.version,
            Status {
                version: m.version,
                name: m.name.clone(),
                state,
            },
        );
    }
    for (v, row) in applied {
        out.entry(*v).or_insert_with(|| Status {
            version: *v,
            name: row.name.clone(),
            state: State::Missing { at: row.at.clone() },
        });
    }
    out.into_values().collect()
}

/// The rules `verify` checks, and every run checks before it changes
/// anything.
fn check(local: &[Migration], applied: &BTreeMap<u64, AppliedRow>, table: &str) -> Result<()> {
    let mut problems = Vec::new();
    let by_version: BTreeMap<u64, &Migration> = local.iter().map(|m| (m.version, m)).collect();
    for (v, row) in applied {
        match by_version.get(v) {
            None => problems.push(format!(
                "migration {v} {} is applied ({table}) but has no file",
                row.name
            )),
            Some(m) if m.checksum != row.checksum => problems.push(format!(
                "migration {v} {} was edited after it was applied (checksum {} in {table}, {} now); \
                 comments and whitespace do not count: revert the edit, or write a new migration",
                m.name, row.checksum, m.checksum
            )),
            Some(_) => {}
        }
    }
    if let Some(&max) = applied.keys().next_back() {
        for m in local {
            if m.version < max && !applied.contains_key(&m.version) {
                problems.push(format!(
                    "migration {} {} is not applied, but {max} is: migrations must be applied in order \
                     (give it a version above {max})",
                    m.version, m.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Conflict, problems.join("; ")))
    }
}

/// The steps of a run, from what is applied.
fn plan(
    local: &[Migration],
    applied: &BTreeMap<u64, AppliedRow>,
    direction: Direction,
    to: Option<u64>,
) -> Result<Vec<Step>> {
    match direction {
        Direction::Up => Ok(local
            .iter()
            .filter(|m| !applied.contains_key(&m.version))
            .filter(|m| to.is_none_or(|t| m.version <= t))
            .map(|m| Step {
                version: m.version,
                name: m.name.clone(),
                direction,
                sql: m.up.clone(),
                transactional: m.transactional,
            })
            .collect()),
        Direction::Down => {
            let targets: Vec<u64> = match to {
                None => applied.keys().next_back().copied().into_iter().collect(),
                Some(t) => applied.keys().rev().copied().filter(|v| *v > t).collect(),
            };
            targets
                .into_iter()
                .map(|v| {
                    let m = local.iter().find(|m| m.version == v).ok_or_else(|| {
                        Error::new(
                            ErrorKind::Conflict,
                            format!("migration {v} is applied but has no file"),
                        )
                    })?;
                    let down = m.down.clone().ok_or_else(|| {
                        Error::invalid_input(format!(
                            "migration {v} {} has no down file ({v}_{}.down.sql), so it cannot be reverted",
                            m.name, m.name
                        ))
                    })?;
                    Ok(Step {
                        version: v,
                        name: m.name.clone(),
                        direction,
                        transactional: !sqltext::has_no_transaction_marker(&down),
                        sql: down,
                    })
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn local() -> Vec<Migration> {
        Migrations::embedded(&[
            ("1_a.sql", "CREATE TABLE a (x int);"),
            ("1_a.down.sql", "DROP TABLE a;"),
            ("2_b.sql", "CREATE TABLE b (x int);"),
            ("3_c.sql", "CREATE TABLE c (x int);"),
            ("3_c.down.sql", "DROP TABLE c;"),
        ])
        .unwrap()
        .for_dialect(Dialect::Sqlite)
        .unwrap()
    }

    fn row(m: &Migration) -> AppliedRow {
        AppliedRow {
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            at: "2026-12-05T00:00:00Z".into(),
        }
    }

    #[test]
    fn plans_and_checks() {
        let l = local();
        let mut applied = BTreeMap::new();
        let up = plan(&l, &applied, Direction::Up, None).unwrap();
        assert_eq!(up.iter().map(|s| s.version).collect::<Vec<_>>(), [1, 2, 3]);
        let up = plan(&l, &applied, Direction::Up, Some(2)).unwrap();
        assert_eq!(up.len(), 2);
        applied.insert(1, row(&l[0]));
        applied.insert(3, row(&l[2]));
        let e = check(&l, &applied, "t").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(
            e.message()
                .contains("migration 2 b is not applied, but 3 is"),
            "{e}"
        );
        applied.insert(2, row(&l[1]));
        check(&l, &applied, "t").unwrap();
        let down = plan(&l, &applied, Direction::Down, None).unwrap();
        assert_eq!((down.len(), down[0].version), (1, 3));
        assert_eq!(down[0].sql, "DROP TABLE c;");
        let e = plan(&l, &applied, Direction::Down, Some(0)).unwrap_err();
        assert!(
            e.message().contains("migration 2 b has no down file"),
            "{e}"
        );
        // Edited and missing files.
        applied.get_mut(&1).unwrap().checksum = "0000000000000000".into();
        applied.insert(
            7,
            AppliedRow {
                name: "gone".into(),
                checksum: "x".into(),
                at: "t".into(),
            },
        );
        let e = check(&l, &applied, "t").unwrap_err();
        assert!(e.message().contains("migration 1 a was edited"), "{e}");
        assert!(
            e.message()
                .contains("migration 7 gone is applied (t) but has no file"),
            "{e}"
        );
        let st = status_of(&l, &applied);
        assert_eq!(st.len(), 4);
        assert!(matches!(st[0].state, State::Edited { .. }));
        assert!(matches!(st[1].state, State::Applied { .. }));
        assert!(matches!(st[3].state, State::Missing { .. }));
    }

    #[test]
    fn table_names_are_checked() {
        let m = || Migrator::new(Migrations::embedded(&[]).unwrap());
        assert_eq!(
            m().table("app.schema_migrations").unwrap().table,
            "app.schema_migrations"
        );
        for bad in ["", "1x", "a.b.c", "t; DROP TABLE users", "a-b", "\"t\""] {
            let e = m().table(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
        }
    }
}
