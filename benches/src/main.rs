//! `dbx-load`: a load generator for dbx, to set beside `redis-benchmark` and
//! `pgbench` against the same servers on the same machine.
//!
//! ```text
//! dbx-load --url redis://127.0.0.1:6379 --op get --concurrency 50 --duration 10
//! dbx-load --url postgres://postgres@127.0.0.1/dbx_bench --op select --concurrency 8 --ops 200000
//! dbx-load --url redis://127.0.0.1:6379 --op get --concurrency 50 --duration 10 --client raw
//! ```
//!
//! Options: `--url` (default `sqlite::memory:`), `--op get|set|select|incr`,
//! `--concurrency N` tasks (default 50), `--duration S` seconds (default 10)
//! or `--ops N` operations in all, `--keys N` key space / rows (default
//! 100000, like `redis-benchmark -r 100000` and `pgbench -i -s 1`),
//! `--client dbx|raw|pool` (raw: the driver dbx wraps on dbx's connection
//! model; pool: deadpool exclusive checkout; a comma-separated list such as
//! `dbx,raw` runs them in one process, alternating in 250 ms slices, and
//! prints one line each; the place in the list is not neutral, `raw,raw`
//! reads the second about 5% faster than the first on PostgreSQL, so compare
//! over both orders as `scripts/bench.sh` does), `--pool N` (pool size, default
//! 16 for Redis and 8 for PostgreSQL), `--shared N` (PostgreSQL shared
//! clients of dbx and of raw, default 2), `--threads N` (runtime workers, default: cores).
//!
//! Output is one line of `key=value` pairs: throughput in operations per
//! second and latency percentiles in microseconds, plus errors and the time
//! from `connect` to ready.
//!
//! `select` reads `pgbench_accounts` by `aid` (the table `pgbench -i`
//! builds; created with `--keys` rows when missing); `get`/`set`/`incr` use
//! redis-benchmark's keys (`key:` and 12 digits).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use benches::{PG_SELECT, REDIS_VALUE, RawPg, percentile, redis_key};
use dbx::{Dbx, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Args {
    url: String,
    op: String,
    concurrency: usize,
    duration: Duration,
    ops: Option<u64>,
    keys: u64,
    client: String,
    pool: Option<usize>,
    shared: usize,
    threads: Option<usize>,
}

fn usage(msg: &str) -> ! {
    eprintln!("dbx-load: {msg}");
    eprintln!(
        "usage: dbx-load [--url URL] [--op get|set|select|incr] [--concurrency N] \
         [--duration S | --ops N] [--keys N] [--client dbx|raw|pool] [--pool N] \
         [--shared N] [--threads N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "sqlite::memory:".into(),
        op: "get".into(),
        concurrency: 50,
        duration: Duration::from_secs(10),
        ops: None,
        keys: 100_000,
        client: "dbx".into(),
        pool: None,
        shared: 2,
        threads: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            usage("a load generator for dbx");
        }
        let Some(value) = it.next() else {
            usage(&format!("{flag} needs a value"))
        };
        let num = |v: &str| -> u64 {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag} wants a whole number, got {v:?}")))
        };
        match flag.as_str() {
            "--url" => a.url = value,
            "--op" => a.op = value,
            "--concurrency" | "-c" => a.concurrency = num(&value).max(1) as usize,
            "--duration" => {
                let secs: f64 = value
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--duration wants seconds, got {value:?}")));
                a.duration = Duration::from_secs_f64(secs.max(0.001));
            }
            "--ops" | "-n" => a.ops = Some(num(&value).max(1)),
            "--keys" => a.keys = num(&value).max(1),
            "--client" => a.client = value,
            "--pool" => a.pool = Some(num(&value).max(1) as usize),
            "--shared" => a.shared = num(&value).max(1) as usize,
            "--threads" => a.threads = Some(num(&value).max(1) as usize),
            other => usage(&format!("unknown option {other}")),
        }
    }
    if !matches!(a.op.as_str(), "get" | "set" | "select" | "incr") {
        usage(&format!(
            "--op must be get, set, select or incr, got {:?}",
            a.op
        ));
    }
    if !a
        .client
        .split(',')
        .all(|c| matches!(c, "dbx" | "raw" | "pool"))
    {
        usage(&format!(
            "--client must be dbx, raw or pool, got {:?}",
            a.client
        ));
    }
    a
}

/// A client to drive, and what to run. Each call's future lives inline in
/// its task (no box per operation), as in an application.
#[derive(Clone)]
enum Client {
    DbxKv(dbx::Kv, Op),
    DbxSql(dbx::Sql),
    RawRedis(redis::aio::ConnectionManager, Op),
    RawCluster(redis::cluster_async::ClusterConnection, Op),
    PoolRedis(deadpool_redis::Pool, Op),
    RawPg(RawPg),
    PoolPg(deadpool_postgres::Pool),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Set,
    Incr,
    Select,
}

fn redis_cmd(op: Op, key: &str) -> redis::Cmd {
    let mut c = redis::cmd(match op {
        Op::Get => "GET",
        Op::Set => "SET",
        _ => "INCRBY",
    });
    c.arg(key);
    match op {
        Op::Set => {
            c.arg(REDIS_VALUE);
        }
        Op::Incr => {
            c.arg(1);
        }
        _ => {}
    }
    c
}

impl Client {
    /// Operation number `n` over a key space (or table) of `keys`.
    async fn call(&self, n: u64, keys: u64) -> Result<(), String> {
        let aid = (n % keys + 1) as i64;
        match self {
            Client::DbxKv(kv, op) => {
                let key = redis_key(n, keys);
                match op {
                    Op::Get => kv.get(&key).await.map(|v| drop(std::hint::black_box(v))),
                    Op::Set => kv.set(&key, REDIS_VALUE, None).await,
                    _ => kv.incr(&key, 1).await.map(|v| {
                        std::hint::black_box(v);
                    }),
                }
                .map_err(|e| e.to_string())
            }
            Client::DbxSql(sql) => {
                let row: (i64,) = sql
                    .query_one_as(PG_SELECT, params![aid])
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(row);
                Ok(())
            }
            Client::RawRedis(m, op) => {
                let mut m = m.clone();
                let r: redis::RedisResult<redis::Value> = redis_cmd(*op, &redis_key(n, keys))
                    .query_async(&mut m)
                    .await;
                r.map(|v| drop(std::hint::black_box(v)))
                    .map_err(|e| e.to_string())
            }
            Client::RawCluster(c, op) => {
                let mut c = c.clone();
                let r: redis::RedisResult<redis::Value> = redis_cmd(*op, &redis_key(n, keys))
                    .query_async(&mut c)
                    .await;
                r.map(|v| drop(std::hint::black_box(v)))
                    .map_err(|e| e.to_string())
            }
            Client::PoolRedis(pool, op) => {
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                let r: redis::RedisResult<redis::Value> = redis_cmd(*op, &redis_key(n, keys))
                    .query_async(&mut *conn)
                    .await;
                r.map(|v| drop(std::hint::black_box(v)))
                    .map_err(|e| e.to_string())
            }
            Client::RawPg(raw) => {
                let aid = aid as i32;
                let rows = raw.query(&[&aid]).await.map_err(|e| e.to_string())?;
                let first = rows.first().ok_or_else(|| format!("no row aid={aid}"))?;
                std::hint::black_box(first.get::<_, i32>(0));
                Ok(())
            }
            Client::PoolPg(pool) => {
                let aid = aid as i32;
                let c = pool.get().await.map_err(|e| e.to_string())?;
                let st = c
                    .prepare_cached(PG_SELECT)
                    .await
                    .map_err(|e| e.to_string())?;
                let rows = c.query(&st, &[&aid]).await.map_err(|e| e.to_string())?;
                let first = rows.first().ok_or_else(|| format!("no row aid={aid}"))?;
                std::hint::black_box(first.get::<_, i32>(0));
                Ok(())
            }
        }
    }
}

fn is_redis(url: &str) -> bool {
    url.starts_with("redis")
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

/// Connect and return the client to drive.
async fn prepare(a: &Args, connect: &mut Duration) -> Result<Client, String> {
    let keys = a.keys;
    let op = match a.op.as_str() {
        "get" => Op::Get,
        "set" => Op::Set,
        "incr" => Op::Incr,
        _ => Op::Select,
    };
    match a.client.as_str() {
        "dbx" => {
            if is_postgres(&a.url) {
                benches::ensure_pg_database(&a.url)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            // `--shared` sets dbx's shared clients as it sets raw's.
            let url = if is_postgres(&a.url) {
                benches::with_param(&a.url, "shared_clients", a.shared)
            } else {
                a.url.clone()
            };
            let started = Instant::now();
            let db = Dbx::connect(&url).await.map_err(|e| e.to_string())?;
            *connect = started.elapsed();
            if op != Op::Select {
                return Ok(Client::DbxKv(
                    db.kv().map_err(|e| e.to_string())?.clone(),
                    op,
                ));
            }
            let sql = db.sql().map_err(|e| e.to_string())?.clone();
            if is_postgres(&a.url) {
                benches::ensure_pg_accounts(&a.url, keys as i64)
                    .await
                    .map_err(|e| e.to_string())?;
            } else {
                sql.execute(
                    "CREATE TABLE IF NOT EXISTS pgbench_accounts \
                     (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler TEXT)",
                    params![],
                )
                .await
                .map_err(|e| e.to_string())?;
                sql.execute(
                    "INSERT OR IGNORE INTO pgbench_accounts \
                     WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) \
                     SELECT x, 1, 0, '' FROM c",
                    params![keys as i64],
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok(Client::DbxSql(sql))
        }
        client if is_redis(&a.url) => {
            if op == Op::Select {
                return Err("select is a SQL operation; Redis offers get, set and incr".into());
            }
            if a.url.starts_with("redis+cluster://") {
                if client == "pool" {
                    return Err("--client pool is for single Redis servers".into());
                }
                let c = benches::raw_redis_cluster(&a.url)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Client::RawCluster(c, op))
            } else if client == "pool" {
                Ok(Client::PoolRedis(
                    benches::redis_pool(&a.url, a.pool.unwrap_or(16))?,
                    op,
                ))
            } else {
                let m = benches::raw_redis(&a.url)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Client::RawRedis(m, op))
            }
        }
        client if is_postgres(&a.url) => {
            if op != Op::Select {
                return Err("--client raw|pool on PostgreSQL measures select only".into());
            }
            benches::ensure_pg_database(&a.url)
                .await
                .map_err(|e| e.to_string())?;
            benches::ensure_pg_accounts(&a.url, keys as i64)
                .await
                .map_err(|e| e.to_string())?;
            if client == "pool" {
                Ok(Client::PoolPg(benches::pg_pool(
                    &a.url,
                    a.pool.unwrap_or(8),
                )?))
            } else {
                let raw = RawPg::connect(&a.url, a.shared, PG_SELECT)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Client::RawPg(raw))
            }
        }
        _ => Err("--client raw|pool works with redis:// and postgres:// URLs".into()),
    }
}

fn main() {
    let a = parse_args();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = a.threads {
        rt.worker_threads(t);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => usage(&format!("cannot start the runtime: {e}")),
    };
    let code = rt.block_on(run(a));
    std::process::exit(code);
}

/// Samples of one client: latencies (ns), time spent, errors.
#[derive(Default)]
struct Tally {
    lat: Vec<u64>,
    elapsed: Duration,
    errors: u64,
    first_error: Option<String>,
}

/// Run `op` on `concurrency` tasks until `deadline` or, with `ops`, that
/// many operations in all; add the samples to `tally`.
async fn drive(
    op: &Client,
    concurrency: usize,
    deadline: Instant,
    ops: Option<u64>,
    keys: u64,
    base: u64,
    tally: &mut Tally,
) {
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for t in 0..concurrency as u64 {
        let op = op.clone();
        let errors = errors.clone();
        let first_error = first_error.clone();
        let quota = ops.map(|n| n / concurrency as u64 + u64::from(t < n % concurrency as u64));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(quota.unwrap_or(100_000).min(10_000_000) as usize);
            let mut i = 0u64;
            loop {
                let before = Instant::now();
                match quota {
                    Some(q) if i >= q => break,
                    None if before >= deadline => break,
                    _ => {}
                }
                if let Err(e) = op.call(base + t * 1_000_003 + i, keys).await
                    && errors.fetch_add(1, Ordering::Relaxed) == 0
                {
                    *first_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
                lat.push(before.elapsed().as_nanos() as u64);
                i += 1;
            }
            lat
        }));
    }
    for t in tasks {
        match t.await {
            Ok(lat) => tally.lat.extend(lat),
            Err(e) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("a task failed: {e}"));
            }
        }
    }
    tally.elapsed += start.elapsed();
    tally.errors += errors.load(Ordering::Relaxed);
    if let Some(e) = first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        tally.first_error.get_or_insert(e);
    }
}

async fn run(a: Args) -> i32 {
    // `--client dbx,raw` compares clients in one process: their runs
    // alternate in slices of `SLICE`, so a change in the machine's load
    // hits all of them alike.
    const SLICE: Duration = Duration::from_millis(250);
    let clients: Vec<String> = a.client.split(',').map(str::to_owned).collect();
    let mut ops = Vec::new();
    let mut connects = Vec::new();
    for client in &clients {
        let mut one = a.clone();
        one.client = client.clone();
        let connect_start = Instant::now();
        let mut connect = Duration::ZERO;
        let op = match prepare(&one, &mut connect).await {
            Ok(op) => op,
            Err(e) => {
                eprintln!(
                    "dbx-load: cannot prepare {} on {} for {client}: {e}",
                    a.op,
                    redact(&a.url)
                );
                return 1;
            }
        };
        if connect.is_zero() {
            connect = connect_start.elapsed();
        }
        // Warm up: every task's connection, statement caches, the allocator.
        for n in 0..(a.concurrency as u64 * 4) {
            if let Err(e) = op.call(n, a.keys).await {
                eprintln!("dbx-load: warm-up {} for {client} failed: {e}", a.op);
                return 1;
            }
        }
        ops.push(op);
        connects.push(connect);
    }
    let mut tallies: Vec<Tally> = clients.iter().map(|_| Tally::default()).collect();
    if clients.len() == 1 {
        let deadline = Instant::now() + a.duration;
        drive(
            &ops[0],
            a.concurrency,
            deadline,
            a.ops,
            a.keys,
            0,
            &mut tallies[0],
        )
        .await;
    } else {
        let slices = match a.ops {
            Some(_) => 1,
            None => (a.duration.as_secs_f64() / SLICE.as_secs_f64())
                .ceil()
                .max(1.0) as u64,
        };
        let slice = a.duration.div_f64(slices as f64);
        for s in 0..slices {
            // Alternate who goes first, so neither always follows the other.
            for k in 0..clients.len() {
                let i = if s % 2 == 0 { k } else { clients.len() - 1 - k };
                let deadline = Instant::now() + slice;
                drive(
                    &ops[i],
                    a.concurrency,
                    deadline,
                    a.ops,
                    a.keys,
                    s << 40,
                    &mut tallies[i],
                )
                .await;
            }
        }
    }
    let mut code = 0;
    for ((client, tally), connect) in clients.iter().zip(&mut tallies).zip(&connects) {
        tally.lat.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let secs = tally.elapsed.as_secs_f64();
        println!(
            "client={} op={} url={} concurrency={} ops={} secs={:.3} throughput={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={} connect_ms={:.2}",
            client,
            a.op,
            redact(&a.url),
            a.concurrency,
            tally.lat.len(),
            secs,
            tally.lat.len() as f64 / secs,
            us(percentile(&tally.lat, 50.0)),
            us(percentile(&tally.lat, 99.0)),
            us(percentile(&tally.lat, 99.9)),
            tally.errors,
            connect.as_secs_f64() * 1e3,
        );
        if let Some(e) = tally.first_error.take() {
            eprintln!("dbx-load: {client}: first error: {e}");
            code = 1;
        }
    }
    code
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    dbx::ConnectOptions::from_url(url)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| "<invalid url>".into())
}
