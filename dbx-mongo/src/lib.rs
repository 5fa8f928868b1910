#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod conn;
mod docs;
mod error;
mod kv;

use crate::config::MongoConfig;
use crate::conn::*;
use crate::docs::MongoDocs;
use crate::error::{BACKEND, map_err};
use crate::kv::MongoKv;
use dbx_core::driver::{Backend, DocStore, Driver, KvStore};
use dbx_core::{ConnectOptions, Error, ErrorKind, PoolStatus, Result};
use mongodb::bson::doc;
use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::sdam::SdamEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;

pub use crate::config::{DEFAULT_DATABASE, DEFAULT_KV_COLLECTION, DEFAULT_POOL_SIZE, DEFAULT_PORT};
/// The official MongoDB driver underneath (its `bson` is `mongodb::bson`),
/// for everything dbx does not cover: aggregation, change streams, GridFS.
pub use mongodb;

/// The MongoDB driver: serves `mongodb://` and `mongodb+srv://`.
#[derive(Debug, Default, Clone, Copy)]
pub struct MongoDriver;

#[async_trait::async_trait]
impl Driver for MongoDriver {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["mongodb", "mongodb+srv"]
    }

    fn params(&self) -> &'static [&'static str] {
        config::PARAMS
    }

    async fn connect(&self, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(MongoBackend::open(options).await?))
    }
}

/// A connected MongoDB deployment and database: documents and key-value
/// storage for dbx, and the official driver's client for everything else.
///
/// Reach it from a `dbx::Dbx` with `db.mongo()?`, from a
/// [`Database`](dbx_core::Database) with `db.backend_as::<MongoBackend>()`,
/// or open one directly with [`MongoBackend::connect`].
#[derive(Debug)]
pub struct MongoBackend {
    shared: Arc<Shared>,
    kv: Arc<MongoKv>,
    docs: Arc<MongoDocs>,
    /// The options it was opened with (for [`with_options`](Self::with_options)).
    options: ConnectOptions,
}

impl MongoBackend {
    /// Connect with options (see the crate docs for URLs and parameters).
    /// The whole connect is bounded by `connect_timeout`.
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        Self::open(options)
            .await
            .map_err(|e| e.with_backend(BACKEND).with_operation("connect"))
    }

    /// Parse `url` and [`connect`](Self::connect).
    pub async fn connect_url(url: &str) -> Result<Self> {
        Self::connect(&ConnectOptions::from_url(url)?).await
    }

    async fn open(options: &ConnectOptions) -> Result<Self> {
        let limit = options.connect_timeout();
        match tokio::time::timeout(limit, Self::open_unbounded(options)).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("connecting did not finish within {limit:?}"),
            )
            .with_backend(BACKEND)),
        }
    }

    async fn open_unbounded(options: &ConnectOptions) -> Result<Self> {
        let mut config = MongoConfig::from_options(options).await?;
        let pool = Arc::new(PoolCounters::default());
        let counters = pool.clone();
        config.client.cmap_event_handler = Some(EventHandler::callback(move |ev: CmapEvent| {
            counters.on(&ev)
        }));
        let (seeds, unreachable) = SeedWatch::install(&mut config.client);
        let client = mongodb::Client::with_options(config.client).map_err(map_err)?;
        let db = client.database(&config.database);
        // One real round trip: the server answers and tells what it is.
        // The driver's server selection waits out its whole timeout even
        // when every seed refused the connection at once; the seeds'
        // monitors say so sooner, and with the driver's reason.
        let hello = tokio::select! {
            hello = db.run_command(doc! { "hello": 1 }) => hello.map_err(map_err)?,
            Ok(failure) = unreachable => {
                seeds.disarm();
                return Err(Error::new(
                    ErrorKind::Connect,
                    format!("cannot reach {}: {}", config.target, map_err(failure.clone()).message()),
                )
                .set_transient(true)
                .set_never_sent(true)
                .with_source(failure)
                .with_backend(BACKEND));
            }
        };
        seeds.disarm();
        let transactions =
            hello.contains_key("setName") || hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
        tracing::debug!(target: "dbx", system = BACKEND, target_addr = %config.target, transactions, "dbx: connected");
        let shared = Arc::new(Shared {
            client,
            db,
            timeout: config.timeout,
            transactions,
            closed: AtomicBool::new(false),
            pool,
            pool_max_size: config.pool_max_size,
            target: config.target,
            owns_client: true,
        });
        Ok(MongoBackend::over(
            shared,
            config.kv_collection,
            options.clone(),
        ))
    }

    fn over(shared: Arc<Shared>, kv_collection: String, options: ConnectOptions) -> Self {
        MongoBackend {
            kv: Arc::new(MongoKv {
                shared: shared.clone(),
                collection: kv_collection,
                ttl_index: tokio::sync::OnceCell::new(),
            }),
            docs: Arc::new(MongoDocs {
                shared: shared.clone(),
            }),
            shared,
            options,
        }
    }

    /// A second database handle on the same client and connection pool
    /// whose documents and key-value operations use `options`: a read
    /// preference, read concern and write concern for one part of an
    /// application (reports reading from secondaries, a write that must
    /// reach a majority). Settings it leaves unset come from the URL. The
    /// handle has its own policy (retries, breaker) from the URL's
    /// parameters; closing it does not close the client, closing the
    /// original does (the handle's calls then fail with `Closed` errors from
    /// the driver).
    ///
    /// ```no_run
    /// # async fn demo(db: &dbx_core::Database) -> dbx_core::Result<()> {
    /// use dbx_mongo::MongoBackend;
    /// use dbx_mongo::mongodb::options::{
    ///     Acknowledgment, DatabaseOptions, ReadConcern, ReadPreference, SelectionCriteria,
    ///     WriteConcern,
    /// };
    /// let mongo = db.backend_as::<MongoBackend>().expect("a MongoDB database");
    /// let reports = mongo.with_options(
    ///     DatabaseOptions::builder()
    ///         .selection_criteria(SelectionCriteria::ReadPreference(
    ///             ReadPreference::SecondaryPreferred { options: None },
    ///         ))
    ///         .read_concern(ReadConcern::majority())
    ///         .write_concern(WriteConcern::builder().w(Acknowledgment::Majority).build())
    ///         .build(),
    /// )?;
    /// let n = reports.docs()?.collection("orders").count(&dbx_core::serde_json::json!({})).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_options(
        &self,
        options: mongodb::options::DatabaseOptions,
    ) -> Result<dbx_core::Database> {
        let s = &self.shared;
        s.check_open()?;
        let db = s.client.database_with_options(s.db.name(), options);
        let shared = Arc::new(Shared {
            client: s.client.clone(),
            db,
            timeout: s.timeout,
            transactions: s.transactions,
            closed: AtomicBool::new(false),
            pool: s.pool.clone(),
            pool_max_size: s.pool_max_size,
            target: s.target.clone(),
            owns_client: false,
        });
        let backend = MongoBackend::over(shared, self.kv.collection.clone(), self.options.clone());
        Ok(dbx_core::Database::new(
            Arc::new(backend),
            self.options.clone(),
        ))
    }

    /// The official driver's client (shares the pool).
    pub fn client(&self) -> Result<&mongodb::Client> {
        self.shared.check_open()?;
        Ok(&self.shared.client)
    }

    /// The database the URL names (`test` if none).
    pub fn database(&self) -> Result<&mongodb::Database> {
        self.shared.check_open()?;
        Ok(&self.shared.db)
    }

    /// Whether the server supports multi-document transactions (a replica
    /// set member or mongos).
    pub fn supports_transactions(&self) -> bool {
        self.shared.transactions
    }

    /// One `ping` round trip, bounded by the operation timeout.
    pub async fn ping(&self) -> Result<()> {
        self.shared.check_open()?;
        let t = self.shared.timeout;
        match tokio::time::timeout(t, self.shared.db.run_command(doc! { "ping": 1 })).await {
            Ok(r) => r.map(drop).map_err(map_err),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("ping did not finish within {t:?}"),
            )
            .with_backend(BACKEND)),
        }
    }

    /// Connection figures of the driver's pool, from its pool events
    /// (`max_size` is per server).
    pub fn pool_status(&self) -> PoolStatus {
        let p = &self.shared.pool;
        let size = PoolCounters::get(&p.size);
        let in_use = PoolCounters::get(&p.in_use).min(size);
        PoolStatus::new(
            self.shared.pool_max_size as usize,
            size,
            size - in_use,
            in_use,
            PoolCounters::get(&p.waiting),
        )
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Refuse new work ([`ErrorKind::Closed`]) and shut the client down
    /// (bounded by the operation timeout). Idempotent.
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) || !self.shared.owns_client {
            return;
        }
        let shutdown = self.shared.client.clone().shutdown().immediate(true);
        if tokio::time::timeout(self.shared.timeout, shutdown)
            .await
            .is_err()
        {
            tracing::warn!(target: "dbx", system = BACKEND, "dbx: the MongoDB client did not shut down in time");
        }
    }
}

#[async_trait::async_trait]
impl Backend for MongoBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(self.kv.clone())
    }

    fn documents(&self) -> Option<Arc<dyn DocStore>> {
        Some(self.docs.clone())
    }

    async fn ping(&self) -> Result<()> {
        MongoBackend::ping(self).await
    }

    async fn close(&self) {
        MongoBackend::close(self).await;
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(MongoBackend::pool_status(self))
    }
}
