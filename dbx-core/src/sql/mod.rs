//! The SQL capability: the [`SqlStore`] and [`SqlTx`] traits
//! drivers implement and the [`Sql`] and [`SqlTransaction`] handles applications use.
//!
//! Placeholders are `$1..$N` on every SQL backend and bind by number, so
//! `SELECT $2, $1` means the same everywhere. Parameters are always bound,
//! never interpolated into the statement text.
//!
//! # Which queries are retried
//!
//! [`Sql::execute`] is retried only when the error proves the statement never
//! reached the server. [`Sql::query`] and its conveniences are also retried
//! after an ambiguous failure (a connection lost after sending) when the
//! statement is a plain read, by a conservative rule:
//!
//! - it starts with `SELECT`, `VALUES`, `SHOW`, or `EXPLAIN` without
//!   `ANALYZE` (which runs the statement);
//! - it has no `INTO` (`SELECT ... INTO t` creates a table) and no locking
//!   clause (`FOR UPDATE`, `FOR SHARE`...);
//! - it calls no function outside a list of built-ins without side effects
//!   (aggregates such as `count` and `max`, `coalesce`, string, number, date
//!   and JSON helpers): `SELECT nextval('s')`, `SELECT pg_advisory_lock(1)`,
//!   `SELECT set_config(...)`, a schema-qualified or user-defined function
//!   are not reads;
//! - it is one statement.
//!
//! Text inside string literals, dollar-quoted strings and comments does not
//! count. Mark a handle [`idempotent`](Sql::idempotent) to retry every
//! statement.

pub(crate) mod reads;

use crate::policy::engine::{Changed, Ctx, Op};
use crate::{Error, ErrorKind, Result, Row, Value};
use async_trait::async_trait;
use futures_core::Stream;
use reads::is_read;
use serde::de::DeserializeOwned;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

/// Whether [`Sql::query`] treats `sql` as a plain read, retried after an
/// ambiguous failure, by the rule in the [module docs](self#which-queries-are-retried).
///
/// ```
/// use dbx_core::sql::is_plain_read;
/// assert!(is_plain_read("SELECT name FROM users WHERE id = $1"));
/// assert!(!is_plain_read("SELECT nextval('ids')"));
/// ```
pub fn is_plain_read(sql: &str) -> bool {
    is_read(sql)
}

/// A stream of rows, from [`Sql::query_stream`].
pub type RowStream = Pin<Box<dyn Stream<Item = Result<Row>> + Send + 'static>>;

/// The rows of a bounded query ([`Sql::query_bounded`]): at most the
/// maximum asked for, in the query's order, and whether the query had more.
///
/// ```
/// use dbx_core::sql::BoundedRows;
/// let b = BoundedRows::new(Vec::new(), false);
/// assert!(b.rows.is_empty() && !b.truncated);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BoundedRows {
    /// The rows kept: at most the maximum asked for.
    pub rows: Vec<Row>,
    /// The query returned more rows than the maximum; those were not kept.
    pub truncated: bool,
}

impl BoundedRows {
    /// Rows and whether more existed, as a driver reports them.
    pub fn new(rows: Vec<Row>, truncated: bool) -> Self {
        BoundedRows { rows, truncated }
    }

    /// The first `max_rows` of a whole result; `truncated` if it had more.
    pub fn cut(mut rows: Vec<Row>, max_rows: usize) -> Self {
        let truncated = rows.len() > max_rows;
        rows.truncate(max_rows);
        BoundedRows { rows, truncated }
    }
}

/// SQL, as a driver implements it.
#[async_trait]
pub trait SqlStore: Send + Sync + fmt::Debug + 'static {
    /// Run a statement; the number of rows it changed, or for a statement
    /// that changes nothing (a SELECT) the number of rows it returned.
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64>;
    /// Run a query and collect its rows.
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    /// Run a query and return its first row, if any. A driver may stop a
    /// read-only query after that row; a statement that changes data must
    /// still run to completion. The default collects every row.
    async fn query_first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }
    /// Run a query and stream its rows, without holding the whole result in
    /// memory. Dropping the stream stops the query.
    fn query_stream(&self, sql: String, params: Vec<Value>) -> RowStream;
    /// Run a query and keep at most `max_rows` of its rows, reporting
    /// whether it had more; rows past `max_rows + 1` are never held in
    /// memory. A plain read ([`is_plain_read`]) may stop once row
    /// `max_rows + 1` is seen, so an error in a later row goes unseen; any
    /// other statement runs to completion. The default streams a plain read
    /// through [`query_stream`](SqlStore::query_stream) and stops there, and
    /// runs anything else through [`query`](SqlStore::query) (which holds
    /// its whole result).
    async fn query_bounded(
        &self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        if !is_read(sql) {
            return Ok(BoundedRows::cut(self.query(sql, params).await?, max_rows));
        }
        let mut stream = self.query_stream(sql.to_owned(), params.to_vec());
        let mut rows = Vec::new();
        while let Some(row) = futures_util::StreamExt::next(&mut stream).await {
            let row = row?;
            if rows.len() == max_rows {
                return Ok(BoundedRows::new(rows, true));
            }
            rows.push(row);
        }
        Ok(BoundedRows::new(rows, false))
    }
    /// Start a transaction on a connection of its own.
    async fn begin(&self) -> Result<Box<dyn SqlTx>>;
    /// Run a script of several statements separated by `;`, without
    /// parameters, as the server's own multi-statement interface does
    /// (PostgreSQL's simple query protocol, SQLite's `execute_batch`). The
    /// default is [`Unsupported`](ErrorKind::Unsupported).
    async fn execute_script(&self, script: &str) -> Result<()> {
        let _ = script;
        Err(Error::unsupported(
            "this backend runs no multi-statement scripts",
        ))
    }
}

/// An open transaction, as a driver implements it. Dropping it without
/// [`commit`](SqlTx::commit) must roll it back.
#[async_trait]
pub trait SqlTx: Send + fmt::Debug {
    /// Run a statement inside the transaction.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;
    /// Run a query inside the transaction.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    /// Run a query inside the transaction and return its first row, as
    /// [`SqlStore::query_first`] does. The default collects every row.
    async fn query_first(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }
    /// Run a query inside the transaction and keep at most `max_rows` of its
    /// rows, as [`SqlStore::query_bounded`] does. The default collects
    /// every row and cuts the result.
    async fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        Ok(BoundedRows::cut(self.query(sql, params).await?, max_rows))
    }
    /// Make the transaction's changes permanent.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Discard the transaction's changes.
    async fn rollback(self: Box<Self>) -> Result<()>;
    /// Run a script of several statements inside the transaction, as
    /// [`SqlStore::execute_script`] does. The default is
    /// [`Unsupported`](ErrorKind::Unsupported).
    async fn execute_script(&mut self, script: &str) -> Result<()> {
        let _ = script;
        Err(Error::unsupported(
            "this backend runs no multi-statement scripts",
        ))
    }
}

/// Whether a transaction failed on a serialization failure or deadlock,
/// which drivers report as a transient [`Conflict`](ErrorKind::Conflict).
fn is_serialization_failure(e: &Error) -> bool {
    e.kind() == ErrorKind::Conflict && e.is_transient()
}

/// How [`Sql::transaction_with`] runs a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionOptions {
    /// Most runs of the whole transaction (1: never re-run).
    pub max_attempts: u32,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions { max_attempts: 1 }
    }
}

impl TransactionOptions {
    /// Re-run the whole transaction, up to `max_attempts` runs in all, when
    /// it fails on a serialization failure or deadlock (PostgreSQL SQLSTATE
    /// 40001 and 40P01). The closure must be safe to run again: everything it
    /// did in the failed run was rolled back, but effects outside the
    /// database were not.
    pub fn retry_conflicts(max_attempts: u32) -> Self {
        TransactionOptions {
            max_attempts: max_attempts.max(1),
        }
    }
}

pub(crate) fn first_row(row: Option<Row>) -> Result<Row> {
    row.ok_or_else(|| Error::new(ErrorKind::NotFound, "query returned no rows"))
}

pub(crate) fn decode_all<T: DeserializeOwned>(rows: Vec<Row>) -> Result<Vec<T>> {
    rows.iter().map(Row::decode).collect()
}

/// Conveniences shared by [`Sql`] and [`SqlTransaction`], written once.
macro_rules! query_conveniences {
    ($($mut_:tt)?) => {
        /// The first row of a query; [`NotFound`](crate::ErrorKind::NotFound) if there is none.
        /// The rows after the first are not read where the driver can
        /// stop a read-only query early (SQLite); a statement that changes
        /// data always runs to completion.
        pub async fn query_one(&$($mut_)? self, sql: &str, params: &[Value]) -> Result<Row> {
            first_row(self.query_first(sql, params).await?).map_err(|e| self.tag(e, "sql.query_one"))
        }

        /// The first row of a query, or `None`. As with
        /// [`query_one`](Self::query_one), later rows may not be read.
        pub async fn query_optional(&$($mut_)? self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
            self.query_first(sql, params).await
        }

        /// Every row decoded into `T`: a struct (fields by column name), a
        /// tuple, or a scalar for one-column results.
        pub async fn query_as<T: DeserializeOwned>(&$($mut_)? self, sql: &str, params: &[Value]) -> Result<Vec<T>> {
            decode_all(self.query(sql, params).await?).map_err(|e| self.tag(e, "sql.query_as"))
        }

        /// The first row decoded into `T`; [`NotFound`](crate::ErrorKind::NotFound) if there is none.
        pub async fn query_one_as<T: DeserializeOwned>(&$($mut_)? self, sql: &str, params: &[Value]) -> Result<T> {
            let row = self.query_one(sql, params).await?;
            row.decode().map_err(|e| self.tag(e, "sql.query_one_as"))
        }

        /// The first row decoded into `T`, or `None`.
        pub async fn query_optional_as<T: DeserializeOwned>(&$($mut_)? self, sql: &str, params: &[Value]) -> Result<Option<T>> {
            match self.query_optional(sql, params).await? {
                Some(row) => row.decode().map(Some).map_err(|e| self.tag(e, "sql.query_optional_as")),
                None => Ok(None),
            }
        }
    };
}
#[cfg(feature = "cache")]
pub(crate) use query_conveniences;

/// The SQL handle of a database: `db.sql()?`.
///
/// Cheap to clone. Statements outside a transaction run on pooled
/// connections through the database's policy (timeout, closed check).
///
/// ```
/// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
/// use dbx_core::params;
/// let sql = db.sql()?;
/// sql.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)", params![]).await?;
/// sql.execute("INSERT INTO users (id, name) VALUES ($1, $2)", params![1, "ada"]).await?;
/// #[derive(serde::Deserialize)]
/// struct User { id: i64, name: String }
/// let u: User = sql.query_one_as("SELECT id, name FROM users WHERE id = $1", params![1]).await?;
/// assert_eq!((u.id, u.name.as_str()), (1, "ada"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sql {
    db: Arc<dyn SqlStore>,
    pub(crate) ctx: Arc<Ctx>,
    force_idempotent: bool,
}

impl fmt::Debug for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sql")
            .field("backend", &self.ctx.backend())
            .finish_non_exhaustive()
    }
}

impl Sql {
    pub(crate) fn new(db: Arc<dyn SqlStore>, ctx: Arc<Ctx>) -> Self {
        Sql {
            db,
            ctx,
            force_idempotent: false,
        }
    }

    /// A handle whose statements are all safe to repeat, so `execute` is
    /// retried on transient errors too (queries always are). Use it for
    /// idempotent writes such as `UPDATE ... SET x = $1 WHERE id = $2` or
    /// `INSERT ... ON CONFLICT DO NOTHING`.
    pub fn idempotent(&self) -> Sql {
        Sql {
            force_idempotent: true,
            ..self.clone()
        }
    }

    fn tag(&self, e: Error, op: &'static str) -> Error {
        e.with_backend(self.ctx.backend()).with_operation(op)
    }

    /// Run a statement with bound parameters; the number of rows it changed
    /// (for a SELECT, the number of rows it returned).
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let r = self
            .ctx
            .run_text(
                Op::once("sql.execute").forced(self.force_idempotent),
                Some(sql),
                || self.db.execute(sql, params),
            )
            .await;
        self.ctx.changed(Changed::Sql(sql), &r).await;
        r
    }

    /// Run a script of several statements separated by `;` (a schema, a
    /// migration), without parameters: the server splits it (so quotes,
    /// comments, PostgreSQL `$$` bodies and SQLite trigger bodies are read
    /// as the server reads them). On PostgreSQL the statements of one script
    /// run in one implicit transaction (all or none); on SQLite each
    /// statement commits on its own unless the script opens a transaction.
    /// Never retried. Never pass it text from outside the program: nothing
    /// is bound, so the script is exactly what runs.
    pub async fn execute_script(&self, script: &str) -> Result<()> {
        let r = self
            .ctx
            .run_text(Op::once("sql.execute_script"), Some(script), || {
                self.db.execute_script(script)
            })
            .await;
        self.ctx.changed(Changed::Sql(script), &r).await;
        r
    }

    /// Run a query with bound parameters and collect its rows.
    ///
    /// A plain read (`SELECT`, `VALUES`, `SHOW`, `EXPLAIN` that calls no
    /// function that may write, takes no row locks and creates nothing) is
    /// retried on transient errors. Anything else (`INSERT ... RETURNING`,
    /// a `WITH` that may write, `SELECT nextval(...)`, a user function) is
    /// treated like `execute` unless the handle is
    /// [`idempotent`](Sql::idempotent). The exact rule is in the
    /// [`sql` module docs](crate::sql#which-queries-are-retried).
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let op = self.query_op(sql);
        let r = self
            .ctx
            .run_text(op, Some(sql), || self.db.query(sql, params))
            .await;
        if self.ctx.caching() && !is_read(sql) {
            self.ctx.changed(Changed::Sql(sql), &r).await;
        }
        r
    }

    /// Run a query with bound parameters and keep at most `max_rows` of its
    /// rows, with [`truncated`](BoundedRows::truncated) set when it had
    /// more: for results whose size the caller does not control (an HTTP
    /// API's queries), without the cost of a stream. Memory stays bounded
    /// by `max_rows`: a plain read stops once it sees row `max_rows + 1`
    /// (an error in a later row goes unseen); any other statement runs to
    /// completion and the rows past `max_rows` are dropped as they arrive
    /// where the driver can (SQLite, PostgreSQL).
    ///
    /// Retried, timed and recorded as [`query`](Sql::query) is. On
    /// PostgreSQL it runs on a shared pipelined connection in one round
    /// trip; the server still sends the rest of a truncated result, which
    /// the connection reads and discards (statements pipelined behind it
    /// wait for that), so a statement whose result may be far larger than
    /// `max_rows` is better given a `LIMIT`. On SQLite the rest is never
    /// computed.
    ///
    /// ```
    /// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
    /// use dbx_core::params;
    /// let sql = db.sql()?;
    /// let page = sql.query_bounded("SELECT id, name FROM users ORDER BY id", params![], 100).await?;
    /// if page.truncated {
    ///     println!("showing the first {} users", page.rows.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query_bounded(
        &self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        let op = self.query_op_named(sql, "sql.query_bounded");
        let r = self
            .ctx
            .run_text(op, Some(sql), || {
                self.db.query_bounded(sql, params, max_rows)
            })
            .await;
        if self.ctx.caching() && !is_read(sql) {
            self.ctx.changed(Changed::Sql(sql), &r).await;
        }
        r
    }

    /// The first row of a query (the rest may go unread).
    async fn query_first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let op = self.query_op(sql);
        let r = self
            .ctx
            .run_text(op, Some(sql), || self.db.query_first(sql, params))
            .await;
        if self.ctx.caching() && !is_read(sql) {
            self.ctx.changed(Changed::Sql(sql), &r).await;
        }
        r
    }

    /// How a query is run: retried only if it is a plain read (or the
    /// handle says every statement is idempotent).
    fn query_op(&self, sql: &str) -> Op {
        self.query_op_named(sql, "sql.query")
    }

    /// [`query_op`](Sql::query_op) under another operation name.
    fn query_op_named(&self, sql: &str, name: &'static str) -> Op {
        let op = if is_read(sql) {
            Op::idempotent(name)
        } else {
            Op::once(name)
        };
        op.forced(self.force_idempotent)
    }

    query_conveniences!();

    /// Stream the rows of a query, for results too large to collect. The
    /// stream holds a pooled connection until it ends or is dropped; each
    /// step is bounded by the operation timeout.
    pub fn query_stream(&self, sql: &str, params: &[Value]) -> RowStream {
        if let Err(e) = self.ctx.check_open() {
            let e = self.tag(e, "sql.query_stream");
            return Box::pin(futures_util::stream::once(async move { Err(e) }));
        }
        let backend = self.ctx.backend();
        let inner = self.db.query_stream(sql.to_owned(), params.to_vec());
        Box::pin(futures_util::StreamExt::map(inner, move |r| {
            r.map_err(|e| e.with_backend(backend).with_operation("sql.query_stream"))
        }))
    }

    /// Run `f` inside a transaction: commit when it returns `Ok`, roll back
    /// when it returns `Err` (or panics, or its future is dropped).
    ///
    /// ```
    /// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
    /// use dbx_core::params;
    /// let sql = db.sql()?;
    /// let moved = sql
    ///     .transaction(async |tx| {
    ///         tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", params![10, 1]).await?;
    ///         tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", params![10, 2]).await
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # In a spawned task: `async move`
    ///
    /// Inside `tokio::spawn`, write the closure as `async move |tx| ...` and
    /// move into it what it uses (clones, `Arc`s). A closure that *borrows*
    /// a local of the task does not compile there ("implementation of `Send`
    /// is not general enough"): today's compiler cannot prove such an async
    /// closure's futures `Send` for every lifetime of the borrow.
    ///
    /// ```
    /// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
    /// use dbx_core::params;
    /// let names = vec!["ada".to_owned(), "grace".to_owned()];
    /// let task = tokio::spawn(async move {
    ///     db.sql()?
    ///         .transaction(async move |tx| {
    ///             for name in &names {
    ///                 tx.execute("INSERT INTO users (name) VALUES ($1)", params![name.clone()]).await?;
    ///             }
    ///             Ok(names.len())
    ///         })
    ///         .await
    /// });
    /// let inserted = task.await.expect("the task ran")?;
    /// # let _ = inserted;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut SqlTransaction) -> Result<T>,
    {
        self.transaction_with(TransactionOptions::default(), f)
            .await
    }

    /// [`transaction`](Sql::transaction) with options, such as re-running
    /// the whole transaction on serialization failures
    /// ([`TransactionOptions::retry_conflicts`]).
    pub async fn transaction_with<T, F>(&self, options: TransactionOptions, mut f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut SqlTransaction) -> Result<T>,
    {
        let mut backoff = self.ctx.policy().retry.backoff_unbounded();
        let mut run = 1;
        loop {
            let mut tx = self.begin().await?;
            let outcome = match f(&mut tx).await {
                Ok(v) => tx.commit().await.map(|()| v),
                Err(e) => {
                    if let Err(rb) = tx.rollback().await {
                        tracing::debug!(error = %rb, "dbx: rollback after a failed transaction failed");
                    }
                    Err(e)
                }
            };
            match outcome {
                Err(e) if run < options.max_attempts && is_serialization_failure(&e) => {
                    tracing::debug!(attempt = run, error = %e, "dbx: re-running a transaction after a serialization failure");
                    if let Some(delay) = backoff.next() {
                        tokio::time::sleep(delay).await;
                    }
                    run += 1;
                }
                Err(e) => return Err(e.set_attempts(run)),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// Start a transaction on a connection of its own. Commit it with
    /// [`SqlTransaction::commit`]; dropping it unfinished rolls it back.
    pub async fn begin(&self) -> Result<SqlTransaction> {
        let tx = self
            .ctx
            .run(Op::idempotent("sql.begin"), || self.db.begin())
            .await?;
        Ok(SqlTransaction {
            tx: Some(tx),
            ctx: self.ctx.clone(),
            writes: Vec::new(),
        })
    }
}

/// An open transaction, from [`Sql::begin`].
///
/// Statements inside a transaction are never retried one by one. Dropping
/// the transaction without [`commit`](SqlTransaction::commit) rolls it back and
/// returns the connection to the pool clean.
pub struct SqlTransaction {
    tx: Option<Box<dyn SqlTx>>,
    ctx: Arc<Ctx>,
    /// Statements that may write, for the result cache to drop what they
    /// changed at commit (kept only while a cache is on).
    writes: Vec<String>,
}

impl fmt::Debug for SqlTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTransaction")
            .field("backend", &self.ctx.backend())
            .field("open", &self.tx.is_some())
            .finish()
    }
}

impl SqlTransaction {
    fn tag(&self, e: Error, op: &'static str) -> Error {
        e.with_backend(self.ctx.backend()).with_operation(op)
    }

    fn open(&mut self, op: &'static str) -> Result<&mut Box<dyn SqlTx>> {
        let backend = self.ctx.backend();
        self.tx.as_mut().ok_or_else(|| {
            Error::new(ErrorKind::Closed, "transaction is already finished")
                .with_backend(backend)
                .with_operation(op)
        })
    }

    /// Remember a statement that may write, for the cache at commit.
    fn wrote(&mut self, sql: &str) {
        if self.ctx.caching() && !is_read(sql) && !self.writes.iter().any(|w| w == sql) {
            self.writes.push(sql.to_owned());
        }
    }

    /// Run a statement inside the transaction.
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.wrote(sql);
        let ctx = self.ctx.clone();
        let tx = self.open("sql.tx.execute")?;
        ctx.run_once("sql.tx.execute", tx.execute(sql, params))
            .await
    }

    /// Run a script of several statements inside the transaction (see
    /// [`Sql::execute_script`]).
    pub async fn execute_script(&mut self, script: &str) -> Result<()> {
        self.wrote(script);
        let ctx = self.ctx.clone();
        let tx = self.open("sql.tx.execute_script")?;
        ctx.run_once("sql.tx.execute_script", tx.execute_script(script))
            .await
    }

    /// Run a query inside the transaction.
    pub async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.wrote(sql);
        let ctx = self.ctx.clone();
        let tx = self.open("sql.tx.query")?;
        ctx.run_once("sql.tx.query", tx.query(sql, params)).await
    }

    /// Run a query inside the transaction and keep at most `max_rows` of
    /// its rows, as [`Sql::query_bounded`] does.
    pub async fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        self.wrote(sql);
        let ctx = self.ctx.clone();
        let tx = self.open("sql.tx.query_bounded")?;
        ctx.run_once(
            "sql.tx.query_bounded",
            tx.query_bounded(sql, params, max_rows),
        )
        .await
    }

    /// The first row of a query inside the transaction (the rest may go unread).
    async fn query_first(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.wrote(sql);
        let ctx = self.ctx.clone();
        let tx = self.open("sql.tx.query")?;
        ctx.run_once("sql.tx.query", tx.query_first(sql, params))
            .await
    }

    query_conveniences!(mut);

    /// Commit the transaction; what it wrote is dropped from the result
    /// cache once the commit is through.
    pub async fn commit(mut self) -> Result<()> {
        let r = match self.tx.take() {
            Some(tx) => self.ctx.run_once("sql.tx.commit", tx.commit()).await,
            None => Ok(()),
        };
        for sql in std::mem::take(&mut self.writes) {
            self.ctx.changed(Changed::Sql(&sql), &r).await;
        }
        r
    }

    /// Roll the transaction back.
    pub async fn rollback(mut self) -> Result<()> {
        match self.tx.take() {
            Some(tx) => self.ctx.run_once("sql.tx.rollback", tx.rollback()).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A driver with only `query` and `query_stream`, over `n` fixed rows,
    /// counting the rows its streams hand out: what the default
    /// `query_bounded` is built on.
    #[derive(Debug)]
    struct Fixed {
        n: i64,
        streamed: Arc<AtomicUsize>,
    }

    impl Fixed {
        fn rows(&self) -> Vec<Row> {
            let cols: Arc<[String]> = Arc::from(vec!["n".to_owned()]);
            (0..self.n)
                .map(|i| Row::new(cols.clone(), vec![Value::Int(i)]))
                .collect()
        }
    }

    #[async_trait]
    impl SqlStore for Fixed {
        async fn execute(&self, _: &str, _: &[Value]) -> Result<u64> {
            Ok(0)
        }
        async fn query(&self, _: &str, _: &[Value]) -> Result<Vec<Row>> {
            Ok(self.rows())
        }
        fn query_stream(&self, _: String, _: Vec<Value>) -> RowStream {
            let streamed = self.streamed.clone();
            Box::pin(futures_util::StreamExt::map(
                futures_util::stream::iter(self.rows()),
                move |r| {
                    streamed.fetch_add(1, Ordering::SeqCst);
                    Ok(r)
                },
            ))
        }
        async fn begin(&self) -> Result<Box<dyn SqlTx>> {
            Err(Error::unsupported("no transactions here"))
        }
    }

    fn ns(b: &BoundedRows) -> Vec<i64> {
        b.rows
            .iter()
            .map(|r| r.get::<i64>(0).unwrap_or(-1))
            .collect()
    }

    #[tokio::test]
    async fn the_default_bounded_query_stops_a_read_one_row_past_the_bound() {
        let streamed = Arc::new(AtomicUsize::new(0));
        let db = Fixed {
            n: 10,
            streamed: streamed.clone(),
        };
        let read = "SELECT n FROM t";
        for (max, want, truncated, pulled) in [
            (3, vec![0, 1, 2], true, 4),
            (0, vec![], true, 1),
            (10, (0..10).collect(), false, 10),
            (20, (0..10).collect(), false, 10),
        ] {
            streamed.store(0, Ordering::SeqCst);
            let b = db.query_bounded(read, &[], max).await.unwrap_or_default();
            assert_eq!((ns(&b), b.truncated), (want, truncated), "max {max}");
            assert_eq!(streamed.load(Ordering::SeqCst), pulled, "max {max}");
        }
        // A statement that may write is not streamed: it runs to completion.
        streamed.store(0, Ordering::SeqCst);
        let b = db
            .query_bounded("DELETE FROM t RETURNING n", &[], 2)
            .await
            .unwrap_or_default();
        assert_eq!((ns(&b), b.truncated), (vec![0, 1], true));
        assert_eq!(streamed.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn cut_keeps_the_first_rows_and_says_whether_there_were_more() {
        let db = Fixed {
            n: 3,
            streamed: Arc::default(),
        };
        let b = BoundedRows::cut(db.rows(), 2);
        assert_eq!((ns(&b), b.truncated), (vec![0, 1], true));
        let b = BoundedRows::cut(db.rows(), 3);
        assert_eq!((ns(&b), b.truncated), (vec![0, 1, 2], false));
        let b = BoundedRows::cut(Vec::new(), 0);
        assert_eq!((ns(&b), b.truncated), (vec![], false));
    }
}
