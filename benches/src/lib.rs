//! Shared pieces of the dbx benches and the `dbx-load` load generator: the
//! raw clients dbx is compared with (on the same connection model), a
//! concurrent runner, and server set-up.
//!
//! Connection models compared:
//!
//! | backend    | dbx                                   | raw, same model                         | reference                          |
//! |------------|---------------------------------------|-----------------------------------------|------------------------------------|
//! | Redis      | one shared multiplexed connection     | one redis-rs `ConnectionManager`        | deadpool-redis, exclusive checkout |
//! | PostgreSQL | `shared_clients` pipelined clients (2) | as many tokio-postgres clients, round robin | deadpool-postgres, exclusive checkout |
//! | MongoDB    | the driver's own pool (`maxPoolSize`)  | one `mongodb::Client`, same `maxPoolSize` | –                                  |
//! | Qdrant     | the client's gRPC channels (3)        | one `qdrant_client::Qdrant`, same channels | –                                 |

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Redis the benches talk to (`DBX_BENCH_REDIS_URL` overrides).
pub fn redis_url() -> String {
    std::env::var("DBX_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// PostgreSQL the benches talk to (`DBX_BENCH_PG_URL` overrides).
pub fn pg_url() -> String {
    std::env::var("DBX_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/dbx_bench".into())
}

/// MongoDB the benches talk to: `DBX_BENCH_MONGO_URL`, else
/// `DBX_TEST_MONGO_URL`, else the SecantusDB of `scripts/start-mongo.sh`.
pub fn mongo_url() -> String {
    std::env::var("DBX_BENCH_MONGO_URL")
        .or_else(|_| std::env::var("DBX_TEST_MONGO_URL"))
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018".into())
}

/// Qdrant the benches talk to (`qdrant://host:port`): `DBX_BENCH_QDRANT_URL`,
/// else `DBX_TEST_QDRANT_URL`; `None` when neither is set (there is no
/// default server).
pub fn qdrant_url() -> Option<String> {
    ["DBX_BENCH_QDRANT_URL", "DBX_TEST_QDRANT_URL"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
}

/// `url` with the query parameter `name=value` added, unless `url` already
/// sets `name`.
pub fn with_param(url: &str, name: &str, value: impl std::fmt::Display) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|kv| kv.split('=').next() == Some(name))
    {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

/// Raw `mongodb` on dbx's model: one client (its own connection pool, the
/// `maxPoolSize` of `url`) shared by every task, with the timeouts and the
/// application name dbx sets by default. What dbx adds on top is not here:
/// its pool-event handler, the operation timeout, retries, spans and the
/// JSON conversions.
pub async fn raw_mongo(url: &str) -> mongodb::error::Result<mongodb::Client> {
    let mut options = mongodb::options::ClientOptions::parse(url).await?;
    let connect = dbx::core::options::DEFAULT_CONNECT_TIMEOUT;
    options.connect_timeout = Some(connect);
    options.server_selection_timeout = Some(connect.min(dbx::core::options::DEFAULT_TIMEOUT));
    options.app_name = Some("dbx".to_owned());
    mongodb::Client::with_options(options)
}

/// Raw `qdrant-client` on dbx's model, for a `qdrant://[:KEY@]host:port`
/// URL (parameters are ignored): one client with dbx's defaults (3 gRPC
/// channels, the same timeouts, no compatibility check).
pub fn raw_qdrant(url: &str) -> Result<qdrant_client::Qdrant, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("qdrants://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("qdrant://") {
        ("http", rest)
    } else {
        return Err(format!("not a qdrant:// URL: {url}"));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let (key, hostport) = match authority.rsplit_once('@') {
        Some((user, host)) => (user.split_once(':').map(|(_, k)| k), host),
        None => (None, authority),
    };
    let port = if hostport.contains(':') { "" } else { ":6334" };
    let mut builder = qdrant_client::Qdrant::from_url(&format!("{scheme}://{hostport}{port}"))
        .timeout(dbx::core::options::DEFAULT_TIMEOUT)
        .connect_timeout(dbx::core::options::DEFAULT_CONNECT_TIMEOUT)
        .skip_compatibility_check();
    builder.set_pool_size(dbx::qdrant::DEFAULT_POOL_SIZE);
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        builder.set_api_key(key);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Create the database `url` names if it does not exist yet (connecting to
/// the `postgres` database of the same server to do so).
pub async fn ensure_pg_database(url: &str) -> Result<(), tokio_postgres::Error> {
    let config: tokio_postgres::Config = url.parse()?;
    let Some(name) = config.get_dbname().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, conn) = admin.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // A concurrent creator wins the race: that is fine.
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
            && e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
            && e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Whether criterion runs for real (`cargo bench`) rather than once in test
/// mode (`cargo test --all-targets`): decides the data sizes.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Whether something listens at `host:port` (a quick TCP connect, 500 ms).
pub fn reachable(url: &str, default_port: u16) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let addr = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:{default_port}")
    };
    use std::net::ToSocketAddrs;
    let Ok(mut addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// Run `total` calls of `op` spread over `tasks` Tokio tasks (the call
/// number is the argument) and return the wall time of the whole batch.
/// Panics if an operation fails: a benchmark of failures is meaningless.
pub async fn concurrent<F, Fut, E>(tasks: usize, total: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Debug,
{
    let tasks = tasks.max(1) as u64;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks as usize);
    for t in 0..tasks {
        let n = total / tasks + u64::from(t < total % tasks);
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..n {
                if let Err(e) = op(t * 1_000_003 + i).await {
                    panic!("benchmark operation failed: {e:?}");
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("benchmark task panicked");
    }
    start.elapsed()
}

/// The criterion settings of every bench: 1 s of warm-up, 3 s of measurement.
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// One contender of an "N tasks share a handle" comparison: `tasks` tasks
/// on `rt` share clones of `handle` and run `op(handle, n)` for their share
/// of criterion's iterations (`n` numbers the operation); the time is that
/// of all of them. Every dbx / raw / pool comparison of the benches is
/// written with this, so the contenders are measured alike.
pub fn bench_shared<H, F, Fut, E>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    tasks: usize,
    handle: &H,
    op: F,
) where
    H: Clone + Send + Sync + 'static,
    F: Fn(H, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Debug,
{
    g.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (handle, op) = (handle.clone(), op.clone());
            concurrent(tasks, iters, move |n| op(handle.clone(), n))
        })
    });
}

/// A redis-benchmark style key: `key:` and 12 digits, `n` modulo `keyspace`.
pub fn redis_key(n: u64, keyspace: u64) -> String {
    format!("key:{:012}", n % keyspace.max(1))
}

/// The value `SET` writes, like redis-benchmark's default `-d 3`.
pub const REDIS_VALUE: &[u8] = b"xxx";

/// The point select pgbench -S runs, in dbx's placeholder syntax (the same on
/// both sides).
pub const PG_SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

/// redis-rs's own async cluster client on the seeds of a
/// `redis+cluster://h1:p1,h2:p2` URL, configured as dbx configures it:
/// `TCP_NODELAY` on (see [`raw_redis`] for why both sides must agree on it),
/// and each request bounded by one overall response timer of the URL's
/// `timeout` (dbx's default, 5 s) with the URL's `connect_timeout`. Without
/// the timer, redis-rs arms none per request; dbx always bounds a call, so
/// the raw contender bounds it too (measured with callgrind: the timer is
/// about 1,500 instructions of a 26,000-instruction GET).
pub async fn raw_redis_cluster(
    url: &str,
) -> redis::RedisResult<redis::cluster_async::ClusterConnection> {
    let options = dbx::ConnectOptions::from_url(url).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "bad URL",
            e.to_string(),
        ))
    })?;
    let rest = url.strip_prefix("redis+cluster://").unwrap_or(url);
    let hosts = rest.split(['/', '?']).next().unwrap_or_default();
    let seeds: Vec<String> = hosts.split(',').map(|h| format!("redis://{h}")).collect();
    redis::cluster::ClusterClientBuilder::new(seeds)
        .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true))
        .connection_timeout(options.connect_timeout())
        .overall_response_timeout(Some(options.timeout()))
        .build()?
        .get_async_connection()
        .await
}

/// Raw redis-rs on dbx's model: one `ConnectionManager` (a multiplexed,
/// self-reconnecting connection) shared by every task, with the same
/// timeouts and TCP settings dbx configures: `TCP_NODELAY` on, unless the
/// URL says `tcp_nodelay=false` (dbx's parameter; redis-rs's own default is
/// off, which on a saturated loopback connection alone is worth ~25% of
/// throughput, so both sides must agree for the ratio to mean anything).
pub async fn raw_redis(url: &str) -> redis::RedisResult<redis::aio::ConnectionManager> {
    // Read with dbx's own parameter check; redis-rs ignores the parameter.
    let nodelay = dbx::ConnectOptions::from_url(url)
        .and_then(|o| o.param_bool("tcp_nodelay"))
        .map_err(|e| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "bad tcp_nodelay",
                e.to_string(),
            ))
        })?
        .unwrap_or(true);
    let info = redis::IntoConnectionInfo::into_connection_info(url)?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(nodelay));
    let client = redis::Client::open(info)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    client.get_connection_manager_with_config(config).await
}

/// deadpool-redis with `size` exclusive connections (the reference line).
pub fn redis_pool(url: &str, size: usize) -> Result<deadpool_redis::Pool, String> {
    let manager = deadpool_redis::Manager::new(url).map_err(|e| e.to_string())?;
    deadpool_redis::Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_redis::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| e.to_string())
}

/// Raw tokio-postgres on dbx's model: `n` clients, each with the statement
/// prepared once, shared round robin by every task (requests of many tasks
/// pipeline on one connection).
#[derive(Clone)]
pub struct RawPg {
    clients: Arc<[(tokio_postgres::Client, tokio_postgres::Statement)]>,
    next: Arc<AtomicUsize>,
}

impl RawPg {
    /// Open `n` clients and prepare `sql` on each (`sql` uses `$1..$N`).
    pub async fn connect(url: &str, n: usize, sql: &str) -> Result<RawPg, tokio_postgres::Error> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let stmt = client.prepare(sql).await?;
            clients.push((client, stmt));
        }
        Ok(RawPg {
            clients: clients.into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Run the prepared statement on the next client; rows returned.
    pub async fn query(
        &self,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        let (client, stmt) = &self.clients[i];
        client.query(stmt, params).await
    }
}

/// deadpool-postgres with `size` exclusive connections (the reference line).
pub fn pg_pool(url: &str, size: usize) -> Result<deadpool_postgres::Pool, String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| e.to_string())?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| e.to_string())
}

/// Make sure `pgbench_accounts` (the table pgbench -S reads) exists with at
/// least `rows` rows; pgbench's own `pgbench -i` table is used when present.
pub async fn ensure_pg_accounts(url: &str, rows: i64) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS pgbench_accounts \
             (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
        )
        .await?;
    client
        .execute(
            "INSERT INTO pgbench_accounts (aid, bid, abalance, filler) \
             SELECT g, 1, 0, '' FROM generate_series(1, $1::int) g ON CONFLICT (aid) DO NOTHING",
            &[&(rows as i32)],
        )
        .await?;
    Ok(())
}

/// Latency percentiles of a set of samples (nanoseconds), sorted in place.
pub fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1])
}
