#![doc = include_str!("../README.md")]

mod config;
mod conn;
mod convert;
mod error;
mod kv;
mod lex;
mod sql;
mod tls;

use crate::config::{PARAMS, Settings};
use crate::conn::Conns;
use crate::error::{BACKEND, map_err};
use crate::kv::PgKv;
use crate::sql::PgSql;
use dbx_core::driver::{Backend, Driver, KvStore, SqlStore};
use dbx_core::{ConnectOptions, PoolStatus, Result};
use std::fmt;
use std::sync::Arc;

pub use crate::config::{
    DEFAULT_APPLICATION_NAME, DEFAULT_IDLE_TIMEOUT, DEFAULT_KV_TABLE, DEFAULT_MAX_LIFETIME,
    DEFAULT_POOL_SIZE, DEFAULT_SHARED_CLIENTS, DEFAULT_STATEMENT_CACHE_CAPACITY,
    MAX_SHARED_CLIENTS,
};
pub use crate::sql::STREAM_FETCH;

/// The PostgreSQL driver: serves the `postgres` and `postgresql` schemes.
#[derive(Debug, Default, Clone, Copy)]
pub struct PostgresDriver;

#[async_trait::async_trait]
impl Driver for PostgresDriver {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["postgres", "postgresql"]
    }

    fn params(&self) -> &'static [&'static str] {
        PARAMS
    }

    async fn connect(&self, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(PostgresBackend::connect(options).await?))
    }
}

/// A connected PostgreSQL database: shared pipelined clients for single
/// statements, a pool of exclusive connections for transactions and streams.
pub struct PostgresBackend {
    conns: Arc<Conns>,
    sql: Arc<PgSql>,
    kv: Arc<PgKv>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("conns", &self.conns)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Connect as the options say (see the crate docs for URLs and
    /// parameters). One connection is opened now, so a wrong address,
    /// password or database name fails here.
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        options.check_params(BACKEND, PARAMS)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(dbx_core::Error::unsupported(
                "the postgres driver runs on Tokio: connect from inside a Tokio runtime",
            )
            .with_backend(BACKEND));
        }
        let settings = Settings::from_options(options)?;
        let conns = Conns::open(settings).await?;
        Ok(PostgresBackend {
            sql: Arc::new(PgSql {
                conns: conns.clone(),
            }),
            kv: Arc::new(PgKv::new(conns.clone())),
            conns,
        })
    }

    /// Where this database connects (`host:port/database`, no credentials).
    pub fn target(&self) -> &str {
        &self.conns.settings.target
    }
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn sql(&self) -> Option<Arc<dyn SqlStore>> {
        Some(self.sql.clone())
    }

    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(self.kv.clone())
    }

    async fn ping(&self) -> Result<()> {
        let handle = self.conns.handle().await?;
        let guard = handle.guard();
        let r = handle.client().simple_query("").await;
        if let Some(g) = guard {
            g.disarm();
        }
        r.map(drop).map_err(map_err)
    }

    async fn close(&self) {
        self.conns.close();
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(self.conns.status())
    }
}
