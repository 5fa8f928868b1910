#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod databases;

use std::fmt;
use std::time::Duration;

pub use databases::Databases;

use dbx_core::driver::Driver;
/// The user API of `dbx-core`, re-exported whole (so nothing can drift out
/// of the facade): handles, errors, values, options, policy, the `params!`
/// macro, and the modules (`dbx::kv`, `dbx::vector`, `dbx::driver` for
/// writing drivers...).
pub use dbx_core::*;

/// The core crate: traits and types for writing drivers.
pub use dbx_core as core;

/// The SQLite driver (feature `sqlite`).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use dbx_sqlite as sqlite;

/// The Redis driver (feature `redis`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use dbx_redis as redis;

/// The PostgreSQL driver (feature `postgres`).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use dbx_postgres as postgres;

/// The MongoDB driver (feature `mongo`).
#[cfg(feature = "mongo")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongo")))]
pub use dbx_mongo as mongo;

/// The Qdrant driver (feature `qdrant`).
#[cfg(feature = "qdrant")]
#[cfg_attr(docsrs, doc(cfg(feature = "qdrant")))]
pub use dbx_qdrant as qdrant;

/// Schema migrations on SQLite and PostgreSQL (feature `migrate`).
#[cfg(feature = "migrate")]
#[cfg_attr(docsrs, doc(cfg(feature = "migrate")))]
pub use dbx_migrate as migrate;

/// Embed a directory of SQL migrations at compile time (feature `migrate`):
/// `dbx::migrations!("migrations")` is a `dbx::Result<dbx::migrate::Migrations>`.
#[cfg(feature = "migrate")]
#[cfg_attr(docsrs, doc(cfg(feature = "migrate")))]
pub use dbx_macros::migrations;

/// Every scheme dbx knows, with the cargo feature that brings its driver.
const FEATURES: &[(&str, &str)] = &[
    ("sqlite", "sqlite"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis+unix", "redis"),
    ("redis+cluster", "redis"),
    ("rediss+cluster", "redis"),
    ("redis+sentinel", "redis"),
    ("rediss+sentinel", "redis"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
    ("mongodb", "mongo"),
    ("mongodb+srv", "mongo"),
    ("qdrant", "qdrant"),
    ("qdrants", "qdrant"),
];

/// The registry of the drivers this build of dbx includes, chosen by cargo
/// features. A scheme whose feature is off fails with an error naming it.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    #[cfg(feature = "sqlite")]
    r.register(dbx_sqlite::SqliteDriver);
    #[cfg(feature = "redis")]
    r.register(dbx_redis::RedisDriver);
    #[cfg(feature = "postgres")]
    r.register(dbx_postgres::PostgresDriver);
    #[cfg(feature = "mongo")]
    r.register(dbx_mongo::MongoDriver);
    #[cfg(feature = "qdrant")]
    r.register(dbx_qdrant::QdrantDriver);
    for (scheme, feature) in FEATURES {
        r.hint_feature(scheme, feature);
    }
    r
}

/// A connected database: the entry point of dbx.
///
/// Cheap to clone and `Send + Sync`; clones share the pools. See the
/// [crate docs](crate) for an example.
#[derive(Clone)]
pub struct Dbx {
    db: Database,
}

impl fmt::Debug for Dbx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.db, f)
    }
}

impl Dbx {
    /// Connect to the database a URL names, with the drivers enabled by cargo features.
    pub async fn connect(url: &str) -> Result<Dbx> {
        Dbx::builder(url).connect().await
    }

    /// Connect with prepared options.
    pub async fn connect_with(options: ConnectOptions) -> Result<Dbx> {
        let db = registry().connect_with(options).await?;
        Ok(Dbx { db })
    }

    /// A builder, to adjust options or add drivers before connecting.
    pub fn builder(url: &str) -> DbxBuilder {
        DbxBuilder {
            options: ConnectOptions::from_url(url),
            registry: registry(),
            #[cfg(feature = "cache")]
            shared_cache: None,
        }
    }

    /// The result cache, or [`ErrorKind::InvalidConfig`] when it is off for
    /// this database (see the [`cache` module](crate::cache)).
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub fn cache(&self) -> Result<&dbx_core::cache::Cache> {
        self.db.cache()
    }

    /// The SQL capability, or [`ErrorKind::Unsupported`] naming the backend.
    pub fn sql(&self) -> Result<&Sql> {
        self.db.sql()
    }

    /// The key-value capability, or [`ErrorKind::Unsupported`] naming the backend.
    pub fn kv(&self) -> Result<&Kv> {
        self.db.kv()
    }

    /// The document capability, or [`ErrorKind::Unsupported`] naming the backend.
    pub fn docs(&self) -> Result<&Docs> {
        self.db.docs()
    }

    /// The vector capability, or [`ErrorKind::Unsupported`] naming the backend.
    pub fn vectors(&self) -> Result<&Vectors> {
        self.db.vectors()
    }

    /// One real round trip: latency and pool state.
    pub async fn health(&self) -> Result<Health> {
        self.db.health().await
    }

    /// Shut down gracefully: new operations fail with [`ErrorKind::Closed`],
    /// operations in flight get up to `close_timeout` (default 10s) to
    /// finish, then the pools close. Idempotent; `false` if it gave up waiting.
    pub async fn close(&self) -> bool {
        self.db.close().await
    }

    /// [`close`](Dbx::close) with an explicit deadline for operations in flight.
    pub async fn close_within(&self, deadline: Duration) -> bool {
        self.db.close_within(deadline).await
    }

    /// Where the circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.db.breaker_state()
    }

    /// A snapshot of this database's activity, for users without a metrics
    /// stack: operations, errors by kind, retries, breaker, pool, latency.
    pub fn stats(&self) -> Stats {
        self.db.stats()
    }

    /// Whether [`close`](Dbx::close) was called.
    pub fn is_closed(&self) -> bool {
        self.db.is_closed()
    }

    /// Backend name (`"sqlite"`...).
    pub fn backend_name(&self) -> &'static str {
        self.db.backend_name()
    }

    /// The options in use (prints with secrets redacted).
    pub fn options(&self) -> &ConnectOptions {
        self.db.options()
    }

    /// Pool figures, where the backend pools connections.
    pub fn pool_status(&self) -> Option<PoolStatus> {
        self.db.pool_status()
    }

    /// Redis-specific access (raw commands, pipelines, exclusive
    /// connections), or [`ErrorKind::Unsupported`] if this is not Redis.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(&self) -> Result<&dbx_redis::RedisBackend> {
        self.db.check_open()?;
        self.db
            .backend_as::<dbx_redis::RedisBackend>()
            .ok_or_else(|| {
                Error::unsupported(format!("{} is not a Redis database", self.backend_name()))
                    .with_backend(self.backend_name())
            })
    }

    /// MongoDB-specific access (the official driver's client and
    /// database), or [`ErrorKind::Unsupported`] if this is not MongoDB.
    #[cfg(feature = "mongo")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mongo")))]
    pub fn mongo(&self) -> Result<&dbx_mongo::MongoBackend> {
        self.db.check_open()?;
        self.db
            .backend_as::<dbx_mongo::MongoBackend>()
            .ok_or_else(|| {
                Error::unsupported(format!("{} is not a MongoDB database", self.backend_name()))
                    .with_backend(self.backend_name())
            })
    }

    /// Qdrant-specific access (the official client), or
    /// [`ErrorKind::Unsupported`] if this is not Qdrant.
    #[cfg(feature = "qdrant")]
    #[cfg_attr(docsrs, doc(cfg(feature = "qdrant")))]
    pub fn qdrant(&self) -> Result<&dbx_qdrant::QdrantBackend> {
        self.db.check_open()?;
        self.db
            .backend_as::<dbx_qdrant::QdrantBackend>()
            .ok_or_else(|| {
                Error::unsupported(format!("{} is not a Qdrant database", self.backend_name()))
                    .with_backend(self.backend_name())
            })
    }

    /// The underlying [`Database`].
    pub fn database(&self) -> &Database {
        &self.db
    }
}

impl From<Dbx> for Database {
    fn from(d: Dbx) -> Database {
        d.db
    }
}

/// Adjusts options and drivers before connecting; from [`Dbx::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbx::Result<()> {
/// use std::time::Duration;
/// let db = dbx::Dbx::builder("sqlite::memory:")
///     .pool_max_size(4)
///     .timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// assert_eq!(db.options().pool_max_size(), Some(4));
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct DbxBuilder {
    options: Result<ConnectOptions>,
    registry: Registry,
    #[cfg(feature = "cache")]
    shared_cache: Option<Kv>,
}

impl fmt::Debug for DbxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbxBuilder")
            .field("options", &self.options)
            .field("registry", &self.registry)
            .finish()
    }
}

impl DbxBuilder {
    fn update(mut self, f: impl FnOnce(&mut ConnectOptions) -> Result<()>) -> Self {
        if let Ok(o) = &mut self.options
            && let Err(e) = f(o)
        {
            self.options = Err(e);
        }
        self
    }

    /// Most connections the pool may open.
    pub fn pool_max_size(self, n: usize) -> Self {
        self.update(|o| o.set_pool_max_size(n).map(drop))
    }

    /// Deadline of one operation attempt.
    pub fn timeout(self, d: Duration) -> Self {
        self.update(|o| o.set_timeout(d).map(drop))
    }

    /// Deadline of opening a connection.
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.update(|o| o.set_connect_timeout(d).map(drop))
    }

    /// Longest wait for a free pooled connection.
    pub fn acquire_timeout(self, d: Duration) -> Self {
        self.update(|o| o.set_acquire_timeout(d).map(drop))
    }

    /// The user name (instead of putting it in the URL).
    pub fn username(self, user: &str) -> Self {
        self.update(|o| {
            o.set_username(user);
            Ok(())
        })
    }

    /// The password (instead of putting it in the URL); never printed.
    pub fn password(self, password: &str) -> Self {
        self.update(|o| {
            o.set_password(password);
            Ok(())
        })
    }

    /// The whole resilience policy.
    pub fn policy(self, policy: Policy) -> Self {
        self.update(|o| {
            *o.policy_mut() = policy;
            Ok(())
        })
    }

    /// Retry settings ([`RetryConfig::disabled`] turns retries off).
    pub fn retry(self, retry: RetryConfig) -> Self {
        self.update(|o| {
            o.policy_mut().retry = retry;
            Ok(())
        })
    }

    /// Circuit breaker settings ([`BreakerConfig::disabled`] turns it off).
    pub fn circuit_breaker(self, breaker: BreakerConfig) -> Self {
        self.update(|o| {
            o.policy_mut().breaker = breaker;
            Ok(())
        })
    }

    /// Most operations in flight at once (a bulkhead); more wait up to the acquire timeout.
    pub fn max_concurrency(self, n: usize) -> Self {
        self.update(|o| {
            o.policy_mut().limit.max_concurrency = Some(n);
            Ok(())
        })
    }

    /// Most operations started per second, with a burst allowance.
    pub fn rate_limit(self, per_second: f64, burst: u32) -> Self {
        self.update(|o| {
            let limit = &mut o.policy_mut().limit;
            limit.rate_per_sec = Some(per_second);
            limit.rate_burst = burst;
            Ok(())
        })
    }

    /// Probe the database in the background every `every` while the breaker
    /// is not closed, so recovery is noticed before user traffic.
    pub fn health_check_interval(self, every: Duration) -> Self {
        self.update(|o| {
            o.policy_mut().health_check_interval = Some(every);
            Ok(())
        })
    }

    /// A URL parameter, common or backend-specific.
    pub fn param(self, name: &str, value: &str) -> Self {
        self.update(|o| o.set_param(name, value).map(drop))
    }

    /// Add a driver; it takes precedence over built-in ones for its schemes.
    pub fn driver(mut self, driver: impl Driver) -> Self {
        self.registry.register(driver);
        self
    }

    /// Turn the result cache on (with the settings given, or its
    /// defaults) and give it a shared second tier on `kv`, the key-value
    /// store of another database (Redis, typically): instances of a service
    /// built the same way share cached results and invalidations. See
    /// the [`cache` module](crate::cache).
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub fn shared_cache(mut self, kv: &Kv) -> Self {
        self.shared_cache = Some(kv.clone());
        if let Ok(o) = &self.options
            && o.param("cache").is_none()
        {
            return self.param("cache", "true");
        }
        self
    }

    /// Connect. Invalid options from any earlier step surface here.
    pub async fn connect(self) -> Result<Dbx> {
        let db = self.registry.connect_with(self.options?).await?;
        #[cfg(feature = "cache")]
        if let Some(kv) = self.shared_cache {
            match db.cache() {
                Ok(cache) => cache.set_shared_tier(kv)?,
                Err(e) => {
                    db.close().await;
                    return Err(e);
                }
            }
        }
        Ok(Dbx { db })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbx_core::driver::Backend;

    /// The table of schemes and cargo features matches what the drivers
    /// register: every scheme a driver serves is in the table under that
    /// driver's feature, and every scheme of an enabled feature is served.
    #[cfg(all(
        feature = "sqlite",
        feature = "redis",
        feature = "postgres",
        feature = "mongo",
        feature = "qdrant"
    ))]
    #[test]
    fn scheme_table_matches_the_drivers() {
        let drivers: Vec<(&str, std::sync::Arc<dyn Driver>)> = vec![
            ("sqlite", std::sync::Arc::new(dbx_sqlite::SqliteDriver)),
            ("redis", std::sync::Arc::new(dbx_redis::RedisDriver)),
            (
                "postgres",
                std::sync::Arc::new(dbx_postgres::PostgresDriver),
            ),
            ("mongo", std::sync::Arc::new(dbx_mongo::MongoDriver)),
            ("qdrant", std::sync::Arc::new(dbx_qdrant::QdrantDriver)),
        ];
        let mut served = Vec::new();
        for (feature, driver) in &drivers {
            for scheme in driver.schemes() {
                assert!(
                    FEATURES.contains(&(*scheme, *feature)),
                    "scheme `{scheme}` of the {} driver is missing from FEATURES under `{feature}`",
                    driver.name()
                );
                served.push(*scheme);
            }
        }
        for (scheme, feature) in FEATURES {
            assert!(
                served.contains(scheme),
                "FEATURES names `{scheme}` (feature `{feature}`), which no driver serves"
            );
        }
        let mut registered = registry().schemes();
        registered.sort_unstable();
        served.sort_unstable();
        assert_eq!(registered, served, "registry() registers every driver");
    }

    /// Items users name are reachable from the facade (they once drifted
    /// out of a hand-kept list).
    #[test]
    fn facade_reexports_the_user_api() {
        let _: Option<Include> = None;
        let _: Option<MatchValue> = None;
        let _: Option<Range> = None;
        let _: Option<Box<dyn Backend>> = None;
        let _ = Filter::new();
        let _ = vector::MAX_DIMENSION;
        let _ = params![1];
    }

    #[test]
    fn dbx_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<Dbx>();
        assert_send_sync::<Sql>();
        assert_send_sync::<Kv>();
        assert_eq!(std::mem::size_of::<Dbx>(), std::mem::size_of::<usize>());
    }

    #[tokio::test]
    async fn builder_errors_surface_at_connect() {
        let e = Dbx::builder("sqlite::memory:")
            .pool_max_size(0)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("pool_max_size"), "{e}");
        let e = Dbx::builder("::")
            .timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    }

    /// A user's own driver, here an alias scheme over SQLite in memory.
    #[cfg(feature = "sqlite")]
    #[derive(Debug)]
    struct Scratch;

    #[cfg(feature = "sqlite")]
    #[dbx_core::driver::async_trait]
    impl Driver for Scratch {
        fn name(&self) -> &'static str {
            "scratch"
        }
        fn schemes(&self) -> &'static [&'static str] {
            &["scratch"]
        }
        async fn connect(&self, _: &ConnectOptions) -> Result<std::sync::Arc<dyn Backend>> {
            let sqlite = ConnectOptions::from_url("sqlite::memory:")?;
            dbx_sqlite::SqliteDriver.connect(&sqlite).await
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn users_can_register_their_own_driver() {
        let e = Dbx::connect("scratch://x").await.unwrap_err();
        assert!(e.to_string().contains("unknown scheme `scratch`"), "{e}");
        let db = Dbx::builder("scratch://x")
            .driver(Scratch)
            .connect()
            .await
            .unwrap();
        db.kv().unwrap().set("k", b"v", None).await.unwrap();
        assert!(db.kv().unwrap().exists("k").await.unwrap());
    }

    #[cfg(not(feature = "sqlite"))]
    #[tokio::test]
    async fn disabled_feature_is_named() {
        let e = Dbx::connect("sqlite::memory:").await.unwrap_err();
        assert!(e.to_string().contains("cargo feature `sqlite`"), "{e}");
    }
}

/// The project README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
