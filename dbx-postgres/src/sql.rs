//! `SqlStore` and `SqlTx` on PostgreSQL.

use crate::conn::{self, Conns, Lease, Mode, Output};
use crate::convert;
use crate::error::{BACKEND, map_err, reached_server};
use crate::router::Router;
use dbx_core::driver::{SqlStore, SqlTx};
use dbx_core::{BoundedRows, Error, ErrorKind, Result, Row, RowStream, Value};
use futures_util::TryStreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Rows fetched from the server per round trip of a stream.
pub const STREAM_FETCH: i32 = 256;
/// Rows buffered between a stream's producer task and its consumer.
const STREAM_BUFFER: usize = 64;

#[derive(Debug)]
pub(crate) struct PgSql {
    pub(crate) router: Arc<Router>,
}

impl PgSql {
    /// The connections a statement runs on: a plain read may go to a
    /// standby (`replica_reads`); anything else goes to the primary and
    /// starts the read-your-writes window.
    fn route(&self, sql: &str, mode: Mode) -> &Arc<Conns> {
        if !matches!(mode, Mode::Execute) && dbx_core::sql::is_plain_read(sql) {
            self.router.for_read()
        } else {
            self.router.wrote();
            &self.router.primary
        }
    }

    async fn single(&self, sql: &str, params: &[Value], mode: Mode) -> Result<Output> {
        let conns = self.route(sql, mode);
        let r = async {
            let handle = conns.handle().await?;
            let guard = handle.guard();
            let r = conn::run(
                handle.client(),
                handle.stmts(),
                &conns.settings,
                sql,
                params,
                mode,
                true,
            )
            .await;
            match (&r, mode) {
                (Ok(Output::Bounded(b)), Mode::Bounded { stop_early, .. })
                    if b.truncated && stop_early =>
                {
                    guard.left_unread();
                }
                _ => guard.disarm(),
            }
            r
        }
        .await;
        r.map_err(|e| self.router.read_failed(conns, e))
    }
}

#[async_trait::async_trait]
impl SqlStore for PgSql {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.single(sql, params, Mode::Execute)
            .await
            .map(Output::count)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.single(sql, params, Mode::Query)
            .await
            .map(Output::rows)
    }

    async fn query_first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.single(sql, params, Mode::First)
            .await
            .map(Output::first)
    }

    /// On a shared pipelined client, in one round trip, like `query`; a
    /// plain read stops reading at row `max_rows + 1` (see `Mode::Bounded`).
    async fn query_bounded(
        &self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        let mode = Mode::Bounded {
            max: max_rows,
            stop_early: dbx_core::sql::is_plain_read(sql),
        };
        self.single(sql, params, mode).await.map(Output::bounded)
    }

    fn query_stream(&self, sql: String, params: Vec<Value>) -> RowStream {
        let conns = self.route(&sql, Mode::Query).clone();
        let (tx, rx) = mpsc::channel::<Result<Row>>(STREAM_BUFFER);
        let mut producer = Some(async move {
            let r = stream_rows(&conns, &sql, &params, &tx).await;
            if let Err(e) = r {
                let _ = tx.send(Err(e)).await;
            }
        });
        Box::pin(futures_util::stream::unfold(rx, move |mut rx| {
            // The producer starts on first poll, inside the caller's runtime.
            let started = match producer.take() {
                None => Ok(()),
                Some(p) => match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        drop(rt.spawn(p));
                        Ok(())
                    }
                    Err(_) => Err(Error::new(
                        ErrorKind::Unsupported,
                        "query_stream must be polled inside a Tokio runtime",
                    )
                    .with_backend(BACKEND)),
                },
            };
            async move {
                if let Err(e) = started {
                    return Some((Err(e), rx));
                }
                rx.recv().await.map(|item| (item, rx))
            }
        }))
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>> {
        self.router.wrote();
        let conns = &self.router.primary;
        let mut lease = conns.acquire().await?;
        let guard = lease.guard();
        let r = lease
            .client()
            .batch_execute(&conns.settings.begin_sql)
            .await;
        guard.disarm();
        r.map_err(map_err)?;
        lease.in_tx = true;
        Ok(Box::new(PgTransaction {
            lease,
            conns: conns.clone(),
            router: self.router.clone(),
            failed: false,
        }))
    }

    /// On a pooled connection of the primary, with the simple query
    /// protocol (the statements run as one implicit transaction).
    async fn execute_script(&self, script: &str) -> Result<()> {
        self.router.wrote();
        let conns = &self.router.primary;
        let mut lease = conns.acquire().await?;
        // A script that opens a transaction and does not end it must not
        // hand an open transaction to the next user of the connection: the
        // lease then rolls back before returning it.
        let lower = script.to_ascii_lowercase();
        lease.in_tx = lower.contains("begin") || lower.contains("start transaction");
        let guard = lease.guard();
        let r = lease.client().batch_execute(script).await;
        guard.disarm();
        r.map_err(map_err)
    }
}

/// Bound one step of a stream by the operation timeout. On expiry the
/// step's future is dropped; the caller then abandons the connection.
async fn step<T>(
    limit: Duration,
    abandoned: &mut bool,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => {
            *abandoned = true;
            Err(Error::new(
                ErrorKind::Timeout,
                format!("a step of the row stream did not finish within {limit:?}"),
            )
            .with_backend(BACKEND))
        }
    }
}

/// The producer of `query_stream`: on an exclusive connection, inside a
/// transaction, through a portal fetched [`STREAM_FETCH`] rows at a time,
/// so memory stays bounded and each fetch is bounded by the operation
/// timeout (and by the server's `statement_timeout`).
async fn stream_rows(
    conns: &Conns,
    sql: &str,
    params: &[Value],
    out: &mpsc::Sender<Result<Row>>,
) -> Result<()> {
    let limit = conns.settings.timeout;
    let mut lease: Lease = conns.acquire().await?;
    let mut abandoned = false;
    let result = stream_on(&mut lease, conns, sql, params, out, limit, &mut abandoned).await;
    if abandoned {
        lease.abandon();
    }
    result
}

async fn stream_on(
    lease: &mut Lease,
    conns: &Conns,
    sql: &str,
    params: &[Value],
    out: &mpsc::Sender<Result<Row>>,
    limit: Duration,
    abandoned: &mut bool,
) -> Result<()> {
    let settings = &conns.settings;
    let client = lease.client_mut();
    let txn = step(limit, abandoned, async {
        client.transaction().await.map_err(map_err)
    })
    .await?;
    let stmt = step(limit, abandoned, async {
        let stmt = if settings.statement_cache {
            txn.prepare_cached(sql).await
        } else {
            txn.prepare(sql).await
        }
        .map_err(map_err)?;
        if txn.statement_cache.size() > settings.statement_cache_capacity {
            txn.statement_cache.clear();
        }
        Ok(stmt)
    })
    .await?;
    let bound = conn::bind_params(&stmt, params)?;
    conn::check_columns(&stmt)?;
    let names = convert::column_names(stmt.columns());
    let portal = step(limit, abandoned, async {
        txn.bind_raw(&stmt, conn::as_sql(&bound))
            .await
            .map_err(map_err)
    })
    .await?;
    loop {
        let fetch = async {
            let rows = txn
                .query_portal_raw(&portal, STREAM_FETCH)
                .await
                .map_err(map_err)?;
            rows.try_collect::<Vec<_>>().await.map_err(map_err)
        };
        // Stop early if the consumer went away while we fetch.
        let rows = tokio::select! {
            r = step(limit, abandoned, fetch) => r?,
            () = out.closed() => {
                *abandoned = true;
                return Ok(());
            }
        };
        let done = rows.len() < STREAM_FETCH as usize;
        for r in &rows {
            let row = convert::row(&names, r).map_err(|e| e.with_backend(BACKEND))?;
            if out.send(Ok(row)).await.is_err() {
                // The consumer dropped the stream: end the transaction cleanly.
                return step(limit, abandoned, async {
                    txn.rollback().await.map_err(map_err)
                })
                .await;
            }
        }
        if done {
            break;
        }
    }
    step(limit, abandoned, async {
        txn.commit().await.map_err(map_err)
    })
    .await
}

/// A transaction on its own pooled connection. Dropped unfinished, its lease
/// rolls it back before the connection goes back to the pool.
#[derive(Debug)]
struct PgTransaction {
    lease: Lease,
    conns: Arc<Conns>,
    /// To start the read-your-writes window again at commit.
    router: Arc<Router>,
    /// A statement failed on the server, which aborted the transaction.
    failed: bool,
}

impl PgTransaction {
    fn check(&self) -> Result<()> {
        if self.lease.is_broken() {
            return Err(Error::new(
                ErrorKind::Closed,
                "the transaction's connection was closed after a statement was abandoned \
                 (timeout or cancellation); the transaction was rolled back",
            )
            .with_backend(BACKEND));
        }
        Ok(())
    }

    async fn run(&mut self, sql: &str, params: &[Value], mode: Mode) -> Result<Output> {
        self.check()?;
        let guard = self.lease.guard();
        let r = conn::run(
            self.lease.client(),
            self.lease.stmts(),
            &self.conns.settings,
            sql,
            params,
            mode,
            false,
        )
        .await;
        guard.disarm();
        if let Err(e) = &r
            && reached_server(e)
        {
            self.failed = true;
        }
        r
    }

    async fn finish(&mut self, sql: &str) -> Result<()> {
        self.check()?;
        let guard = self.lease.guard();
        let r = self.lease.client().batch_execute(sql).await;
        guard.disarm();
        if !self.lease.client().is_closed() {
            // COMMIT and ROLLBACK end the transaction even when they fail.
            self.lease.in_tx = false;
        }
        r.map_err(map_err)
    }
}

#[async_trait::async_trait]
impl SqlTx for PgTransaction {
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(sql, params, Mode::Execute)
            .await
            .map(Output::count)
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(sql, params, Mode::Query).await.map(Output::rows)
    }

    async fn query_first(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.run(sql, params, Mode::First).await.map(Output::first)
    }

    /// Reads the whole answer (converting at most `max_rows` rows), so an
    /// error in a later row marks the transaction failed.
    async fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Value],
        max_rows: usize,
    ) -> Result<BoundedRows> {
        let mode = Mode::Bounded {
            max: max_rows,
            stop_early: false,
        };
        self.run(sql, params, mode).await.map(Output::bounded)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if self.failed {
            // PostgreSQL answers COMMIT of a failed transaction with a
            // silent ROLLBACK; say so instead of reporting success.
            self.finish("ROLLBACK").await?;
            return Err(Error::new(
                ErrorKind::Query,
                "the transaction was rolled back, not committed: a statement in it failed earlier",
            )
            .with_backend(BACKEND));
        }
        let r = self.finish("COMMIT").await;
        self.router.wrote();
        r
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.finish("ROLLBACK").await
    }

    async fn execute_script(&mut self, script: &str) -> Result<()> {
        self.check()?;
        let guard = self.lease.guard();
        let r = self.lease.client().batch_execute(script).await;
        guard.disarm();
        let r = r.map_err(map_err);
        if let Err(e) = &r
            && reached_server(e)
        {
            self.failed = true;
        }
        r
    }
}
