//! `SqlStore` on SQLite.

use crate::error::map_err;
use crate::pool::{Conn, Guard, Job, Pool, Stmt, on_blocking_side};
use dbx_core::driver::{SqlStore, SqlTx};
use dbx_core::{BoundedRows, Error, ErrorKind, Result, Row, RowStream, Value};
use std::sync::Arc;

/// Rows buffered between the query thread and the stream's consumer.
const STREAM_BUFFER: usize = 64;

#[derive(Debug)]
pub(crate) struct SqliteSql {
    pub(crate) pool: Arc<Pool>,
}

/// Run one statement: the rows it changed or, for a statement that changes
/// nothing (a SELECT), the rows it returned, as PostgreSQL reports them.
pub(crate) fn execute_on(conn: &mut Conn, sql: &str, params: &[Value]) -> Result<u64> {
    conn.with_statements(|conn, stmts| {
        let before = conn.total_changes();
        let returned = stmts.with(conn, sql, |entry, stmt| {
            entry.bind(stmt, params)?;
            let mut rows = stmt.raw_query();
            let mut returned = 0u64;
            while rows.next().map_err(map_err)?.is_some() {
                returned += 1;
            }
            drop(rows);
            entry.ran(stmt);
            Ok(returned)
        })?;
        Ok(if conn.total_changes() == before {
            returned
        } else {
            conn.changes()
        })
    })
}

/// Run one query and collect its rows.
pub(crate) fn query_on(conn: &mut Conn, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    rows_on(conn, sql, params, usize::MAX, |row| {
        out.push(row);
        true
    })?;
    Ok(out)
}

/// Run one query and keep its first row.
pub(crate) fn query_first_on(conn: &mut Conn, sql: &str, params: &[Value]) -> Result<Option<Row>> {
    let mut first = None;
    rows_on(conn, sql, params, 1, |row| {
        first = Some(row);
        true
    })?;
    Ok(first)
}

/// Run one query and keep at most `max` rows: a read-only statement steps
/// at most `max + 1` rows (the last only to learn that there are more).
pub(crate) fn query_bounded_on(
    conn: &mut Conn,
    sql: &str,
    params: &[Value],
    max: usize,
) -> Result<BoundedRows> {
    let mut rows = Vec::new();
    rows_on(conn, sql, params, max.saturating_add(1), |row| {
        rows.push(row);
        true
    })?;
    Ok(BoundedRows::cut(rows, max))
}

/// A bounded query as a pool job, with borrowed SQL text and parameters
/// (copied only when it moves to a blocking thread), as [`Stmt`].
struct Bounded<'a> {
    sql: &'a str,
    params: &'a [Value],
    max: usize,
}

impl Job for Bounded<'_> {
    type Output = BoundedRows;
    type Owned = Box<dyn FnOnce(&mut Conn) -> Result<BoundedRows> + Send>;
    fn call(&self, conn: &mut Conn) -> Result<BoundedRows> {
        query_bounded_on(conn, self.sql, self.params, self.max)
    }
    fn into_owned(self) -> Self::Owned {
        let (sql, params, max) = (self.sql.to_owned(), self.params.to_vec(), self.max);
        Box::new(move |conn| query_bounded_on(conn, &sql, &params, max))
    }
}

/// Run one query, handing up to `limit` rows to `sink`. A read-only
/// statement stops stepping at the limit (the rest is never computed); any
/// other runs to completion, so all its changes are made, unless `sink`
/// returns `false` (no one wants more rows): then stepping stops there.
fn rows_on(
    conn: &mut Conn,
    sql: &str,
    params: &[Value],
    limit: usize,
    mut sink: impl FnMut(Row) -> bool,
) -> Result<()> {
    conn.with_statements(|conn, stmts| {
        stmts.with(conn, sql, |entry, stmt| {
            entry.bind(stmt, params)?;
            let stop_early = stmt.readonly();
            let mut rows = stmt.raw_query();
            let Some(first) = rows.next().map_err(map_err)? else {
                drop(rows);
                entry.ran(stmt);
                return Ok(());
            };
            // Described after the first step: a statement re-prepared after a
            // schema change only shows its new columns once it has run.
            let columns = entry.columns(first.as_ref());
            if !sink(columns.row(first)?) {
                return Ok(());
            }
            let mut taken = 1usize;
            while !(taken >= limit && stop_early) {
                let Some(r) = rows.next().map_err(map_err)? else {
                    break;
                };
                if taken < limit {
                    if !sink(columns.row(r)?) {
                        break;
                    }
                    taken += 1;
                }
            }
            Ok(())
        })
    })
}

#[async_trait::async_trait]
impl SqlStore for SqliteSql {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let f = execute_on;
        self.pool.run_job(Stmt { sql, params, f }).await
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let f = query_on;
        self.pool.run_job(Stmt { sql, params, f }).await
    }

    async fn query_first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let f = query_first_on;
        self.pool.run_job(Stmt { sql, params, f }).await
    }

    async fn query_bounded(
        &self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        let job = Bounded {
            sql,
            params,
            max: max_rows,
        };
        self.pool.run_job(job).await
    }

    fn query_stream(&self, sql: String, params: Vec<Value>) -> RowStream {
        let pool = self.pool.clone();
        let start = async move {
            let guard = pool.acquire().await?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Row>>(STREAM_BUFFER);
            let producer = move || stream_rows(guard, &sql, &params, &tx);
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "query_stream needs a Tokio runtime",
                ));
            }
            // The producer blocks on a bounded channel, so it gets its own
            // blocking thread whatever the runtime flavor.
            tokio::task::spawn_blocking(producer);
            Ok(rx)
        };
        Box::pin(futures_util::stream::try_unfold(
            StreamState::Start(Box::pin(start)),
            |state| async move {
                let mut rx = match state {
                    StreamState::Start(fut) => fut.await?,
                    StreamState::Running(rx) => rx,
                };
                match rx.recv().await {
                    Some(Ok(row)) => Ok(Some((row, StreamState::Running(rx)))),
                    Some(Err(e)) => Err(e),
                    None => Ok(None),
                }
            },
        ))
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>> {
        let mut guard = self.pool.acquire().await?;
        let timeout = guard.op_timeout();
        let guard = on_blocking_side(move || {
            guard.with(timeout, |c| {
                c.execute_batch("BEGIN IMMEDIATE").map_err(map_err)
            })?;
            Ok(guard)
        })
        .await?;
        Ok(Box::new(SqliteTransaction { guard: Some(guard) }))
    }

    /// On a blocking thread, once (never the inline attempt that may run a
    /// job twice: statements before an interruption would have committed).
    async fn execute_script(&self, script: &str) -> Result<()> {
        let mut guard = self.pool.acquire().await?;
        let timeout = guard.op_timeout();
        let script = script.to_owned();
        on_blocking_side(move || guard.with(timeout, |c| c.execute_batch(&script).map_err(map_err)))
            .await
    }
}

type StartFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<tokio::sync::mpsc::Receiver<Result<Row>>>> + Send>,
>;

enum StreamState {
    Start(StartFuture),
    Running(tokio::sync::mpsc::Receiver<Result<Row>>),
}

/// Producer side of `query_stream`: each row's computation has the full
/// operation timeout; waiting for the consumer does not count.
fn stream_rows(
    mut guard: Guard,
    sql: &str,
    params: &[Value],
    tx: &tokio::sync::mpsc::Sender<Result<Row>>,
) {
    let timeout = guard.op_timeout();
    // Until the last row, or until the consumer drops the stream.
    let result = guard.with(timeout, |conn| {
        rows_on(conn, sql, params, usize::MAX, |row| {
            tx.blocking_send(Ok(row)).is_ok()
        })
    });
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
}

/// An open SQLite transaction. It owns its connection slot; dropping it
/// returns the slot, and the pool rolls back what was left open.
#[derive(Debug)]
struct SqliteTransaction {
    guard: Option<Guard>,
}

impl SqliteTransaction {
    async fn on_conn<R, F>(&mut self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Conn) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let mut guard = self.guard.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Closed,
                "the transaction's connection was released after a cancelled operation; it was rolled back",
            )
        })?;
        let timeout = guard.op_timeout();
        // If this future is dropped midway, the guard is dropped with the
        // blocking work and the transaction is rolled back: never half-open.
        let (guard, r) = on_blocking_side(move || {
            let r = guard.with(timeout, f);
            Ok((guard, r))
        })
        .await?;
        self.guard = Some(guard);
        r
    }
}

#[async_trait::async_trait]
impl SqlTx for SqliteTransaction {
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.on_conn(move |c| execute_on(c, &sql, &params)).await
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.on_conn(move |c| query_on(c, &sql, &params)).await
    }

    async fn query_first(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.on_conn(move |c| query_first_on(c, &sql, &params))
            .await
    }

    async fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.on_conn(move |c| query_bounded_on(c, &sql, &params, max_rows))
            .await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.on_conn(|c| c.execute_batch("COMMIT").map_err(map_err))
            .await
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.on_conn(|c| c.execute_batch("ROLLBACK").map_err(map_err))
            .await
    }

    async fn execute_script(&mut self, script: &str) -> Result<()> {
        let script = script.to_owned();
        self.on_conn(move |c| c.execute_batch(&script).map_err(map_err))
            .await
    }
}
