//! The deadpool pool of exclusive connections: how one is opened, checked
//! on return and reported when none can be had.

use super::*;

/// Opens one connection and drives it on a Tokio task.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) tls: MakeRustls,
}

pub(crate) type ConnectFuture<'a> = Pin<
    Box<dyn Future<Output = Result<(Client, JoinHandle<()>), tokio_postgres::Error>> + Send + 'a>,
>;

impl Connector {
    pub(crate) fn open(&self, config: &tokio_postgres::Config) -> ConnectFuture<'static> {
        let tls = self.tls.clone();
        let config = config.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "postgres connection ended with an error");
                }
            });
            Ok((client, task))
        })
    }
}

impl deadpool_postgres::Connect for Connector {
    fn connect(&self, config: &tokio_postgres::Config) -> ConnectFuture<'_> {
        self.open(config)
    }
}

/// A pooled connection.
pub(crate) struct PgConn {
    pub(crate) client: ClientWrapper,
    pub(crate) stmts: StmtCache,
    pub(crate) created: Instant,
    pub(crate) idle_since: Instant,
}

impl fmt::Debug for PgConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.client.is_closed())
            .field("age", &self.created.elapsed())
            .finish()
    }
}

/// deadpool manager: deadpool-postgres's, plus `max_lifetime` and
/// `idle_timeout`. Recycling verifies each connection with a round trip.
pub(crate) struct PgManager {
    pub(crate) inner: deadpool_postgres::Manager,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl PgManager {
    /// Whether a connection has outlived `max_lifetime` or sat idle past `idle_timeout`.
    pub(crate) fn expired(&self, c: &PgConn) -> Option<&'static str> {
        if self.max_lifetime.is_some_and(|m| c.created.elapsed() >= m) {
            Some("max_lifetime reached")
        } else if self
            .idle_timeout
            .is_some_and(|m| c.idle_since.elapsed() >= m)
        {
            Some("idle_timeout reached")
        } else {
            None
        }
    }
}

impl managed::Manager for PgManager {
    type Type = PgConn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<PgConn, tokio_postgres::Error> {
        let client = managed::Manager::create(&self.inner).await?;
        let now = Instant::now();
        Ok(PgConn {
            client,
            stmts: StmtCache::default(),
            created: now,
            idle_since: now,
        })
    }

    async fn recycle(
        &self,
        conn: &mut PgConn,
        metrics: &Metrics,
    ) -> managed::RecycleResult<tokio_postgres::Error> {
        if let Some(why) = self.expired(conn) {
            return Err(RecycleError::message(why));
        }
        managed::Manager::recycle(&self.inner, &mut conn.client, metrics).await
    }

    fn detach(&self, conn: &mut PgConn) {
        managed::Manager::detach(&self.inner, &mut conn.client);
    }
}

pub(crate) fn pool_error(e: PoolError<tokio_postgres::Error>, s: &Settings) -> Error {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => Error::new(
            ErrorKind::PoolTimeout,
            format!(
                "no pooled connection became free within {:?} (pool_max_size {})",
                s.acquire_timeout, s.pool_max_size
            ),
        ),
        PoolError::Timeout(_) => Error::new(
            ErrorKind::Connect,
            format!(
                "connecting to {} did not finish within {:?}",
                s.target, s.connect_timeout
            ),
        )
        .set_transient(true),
        // Only creating a connection fails with a backend error.
        PoolError::Backend(e) => connect_error(s, map_err(e)),
        PoolError::Closed => Error::new(ErrorKind::Closed, "the connection pool was closed"),
        other => Error::new(
            ErrorKind::Other,
            format!("connection pool failure: {other}"),
        ),
    }
    .with_backend(BACKEND)
}

/// A failure to connect, naming where to.
pub(crate) fn connect_error(s: &Settings, e: Error) -> Error {
    Error::new(
        e.kind(),
        format!("connecting to {}: {}", s.target, e.message()),
    )
    .set_transient(e.is_transient())
    .with_source(e)
    .with_backend(BACKEND)
}
