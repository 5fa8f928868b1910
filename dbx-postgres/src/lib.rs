#![doc = include_str!("../README.md")]

mod config;
mod conn;
mod convert;
mod error;
mod kv;
mod lex;
mod router;
mod sql;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;

use crate::config::{PARAMS, Settings};
use crate::conn::Conns;
use crate::error::{BACKEND, map_err};
use crate::kv::PgKv;
use crate::router::Router;
use crate::sql::PgSql;
use dbx_core::driver::{Backend, Driver, KvStore, SqlStore};
use dbx_core::{ConnectOptions, NodeRole, NodeState, NodeStatus, PoolStatus, Result};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{
    DEFAULT_APPLICATION_NAME, DEFAULT_IDLE_TIMEOUT, DEFAULT_KV_TABLE, DEFAULT_MAX_LIFETIME,
    DEFAULT_MAX_REPLICA_LAG, DEFAULT_POOL_SIZE, DEFAULT_READ_YOUR_WRITES, DEFAULT_SHARED_CLIENTS,
    DEFAULT_SHARED_STALL, DEFAULT_STATEMENT_CACHE_CAPACITY, MAX_SHARED_CLIENTS,
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
    router: Arc<Router>,
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
        let router = if settings.replica_reads {
            // The standbys' connections open when first needed: a standby
            // that is down must not keep the application from starting.
            let standbys = Conns::open(settings.for_standbys(), false).await?;
            let (window, max_lag) = (settings.read_your_writes, settings.max_replica_lag);
            let primary = Conns::open(settings, true).await?;
            Router::with_replica(primary, standbys, window, max_lag)
        } else {
            Router::primary_only(Conns::open(settings, true).await?)
        };
        let conns = router.primary.clone();
        Ok(PostgresBackend {
            sql: Arc::new(PgSql {
                router: router.clone(),
            }),
            kv: Arc::new(PgKv::new(router.clone())),
            router,
            conns,
        })
    }

    /// With `replica_reads=true`: where plain reads go (`host:port/db` of
    /// the standbys' connections) and the standby's last measured replay
    /// lag; `None` otherwise.
    pub fn replica(&self) -> Option<(&str, Duration)> {
        let standbys = self.router.replica()?;
        Some((
            &standbys.settings.target,
            self.router.replica_lag().unwrap_or_default(),
        ))
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
        guard.disarm();
        r.map(drop).map_err(map_err)
    }

    async fn close(&self) {
        self.router.close();
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(self.conns.status())
    }

    /// With several hosts: the host the primary's connections go to and,
    /// with `replica_reads`, the standby's (avoided while it lags beyond
    /// `max_replica_lag` or after it failed to answer), with its lag.
    fn nodes(&self) -> Vec<NodeStatus> {
        if self.conns.settings.hosts.len() < 2 {
            return Vec::new();
        }
        let mut nodes: Vec<NodeStatus> = self
            .conns
            .host()
            .map(|h| NodeStatus::new(h, NodeRole::Primary, NodeState::Up))
            .into_iter()
            .collect();
        if let (Some(standbys), Some((avoided, lag))) =
            (self.router.replica(), self.router.replica_state())
            && let Some(h) = standbys.host()
        {
            let node = if avoided {
                NodeStatus::new(h, NodeRole::Replica, NodeState::Avoided).with_error(
                    "it lags beyond max_replica_lag or failed to answer: reads go to the primary",
                )
            } else {
                NodeStatus::new(h, NodeRole::Replica, NodeState::Up)
            };
            nodes.push(node.with_lag(lag));
        }
        nodes
    }

    /// With several hosts: a new connection to each host, asking whether
    /// it is a standby (`pg_is_in_recovery()`).
    async fn probe_nodes(&self) -> Result<Vec<NodeStatus>> {
        if self.conns.settings.hosts.len() < 2 {
            return Ok(Vec::new());
        }
        let mut nodes = self.conns.probe_hosts().await;
        if let Some((_, lag)) = self.router.replica_state() {
            for n in nodes.iter_mut().filter(|n| n.role == NodeRole::Replica) {
                n.lag = Some(lag);
            }
        }
        Ok(nodes)
    }
}

/// A build without the `tls` feature: every URL that needs TLS is refused
/// with `InvalidConfig` before any connection is attempted, and the default
/// `sslmode=prefer` connects in plaintext
/// (`cargo test -p dbx-postgres --no-default-features --lib`).
#[cfg(all(test, not(feature = "tls")))]
mod without_tls {
    use super::*;
    use dbx_core::ErrorKind;
    use std::net::TcpListener;

    fn base_url() -> String {
        std::env::var("DBX_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    #[tokio::test]
    async fn tls_urls_are_refused_before_connecting() {
        // Listeners the URLs point at: a connection attempt would sit in
        // their accept queue once `connect` has returned.
        let listeners: Vec<TcpListener> = (0..2)
            .map(|_| {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        let a = listeners[0].local_addr().unwrap();
        let b = listeners[1].local_addr().unwrap();
        for (query, needle) in [
            ("sslmode=require", "sslmode=require"),
            ("sslmode=REQUIRE", "sslmode=require"),
            ("sslmode=verify-ca", "sslmode=verify-ca"),
            ("sslmode=verify-full", "sslmode=verify-full"),
            (
                "sslmode=verify-full&sslrootcert=/etc/ca.pem",
                "sslmode=verify-full",
            ),
            ("sslrootcert=/etc/ca.pem", "sslrootcert"),
            ("sslmode=prefer&sslrootcert=/etc/ca.pem", "sslrootcert"),
            ("sslcert=/c.pem&sslkey=/k.pem", "sslcert"),
            ("sslkey=/k.pem", "sslkey"),
            ("channel_binding=require", "channel_binding=require"),
        ] {
            for url in [
                format!("postgres://u:pw@{a}/db?{query}"),
                format!("postgresql://u:pw@{a},{b}/db?{query}&target_session_attrs=read-write"),
            ] {
                let e = PostgresBackend::connect(&ConnectOptions::from_url(&url).unwrap())
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{url} was accepted"));
                assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}: {e}");
                let text = e.to_string();
                assert!(
                    text.contains(needle) && text.contains("`tls` feature"),
                    "{url}: {text}"
                );
                assert!(!text.contains("pw"), "{url}: {text}");
                for l in &listeners {
                    assert_eq!(
                        l.accept().map(|_| ()).unwrap_err().kind(),
                        std::io::ErrorKind::WouldBlock,
                        "{url} opened a connection"
                    );
                }
            }
        }
        // The same parsing as with TLS: a bad sslmode is still its own error.
        let url = format!("postgres://u@{a}/db?sslmode=sometimes");
        let e = PostgresBackend::connect(&ConnectOptions::from_url(&url).unwrap())
            .await
            .expect_err("accepted");
        assert!(e.to_string().contains("sslmode"), "{e}");
        assert!(!e.to_string().contains("`tls` feature"), "{e}");
    }

    /// `prefer` (the default) and `disable` connect in plaintext, as libpq
    /// built without SSL does; with `disable` the certificate parameters are
    /// ignored, as with the feature.
    #[tokio::test]
    async fn prefer_and_disable_connect_in_plaintext() {
        let base = base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        for url in [
            base.clone(),
            format!("{base}{sep}sslmode=prefer"),
            format!("{base}{sep}sslmode=disable&sslrootcert=/nonexistent/ca.pem"),
        ] {
            let backend = PostgresBackend::connect(&ConnectOptions::from_url(&url).unwrap())
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let handle = backend.conns.handle().await.unwrap();
            let guard = handle.guard();
            let rows = handle
                .client()
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            guard.disarm();
            assert!(!rows.get::<_, bool>(0), "{url} negotiated TLS");
            backend.close().await;
        }
    }
}
