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
//! model; pool: deadpool exclusive checkout), `--pool N` (pool size, default
//! 16 for Redis and 8 for PostgreSQL), `--shared N` (PostgreSQL shared
//! clients, default 2), `--threads N` (runtime workers, default: cores).
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
use std::future::Future;
use std::pin::Pin;
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
        usage(&format!("--op must be get, set, select or incr, got {:?}", a.op));
    }
    if !matches!(a.client.as_str(), "dbx" | "raw" | "pool") {
        usage(&format!("--client must be dbx, raw or pool, got {:?}", a.client));
    }
    a
}

type BoxFut = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
/// One operation, given its number.
type OpFn = Arc<dyn Fn(u64) -> BoxFut + Send + Sync>;

fn is_redis(url: &str) -> bool {
    url.starts_with("redis")
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

/// Connect and return the operation to run.
async fn prepare(a: &Args, connect: &mut Duration) -> Result<OpFn, String> {
    let keys = a.keys;
    let op = a.op.clone();
    match a.client.as_str() {
        "dbx" => {
            if is_postgres(&a.url) {
                benches::ensure_pg_database(&a.url).await.map_err(|e| e.to_string())?;
            }
            let started = Instant::now();
            let db = Dbx::connect(&a.url).await.map_err(|e| e.to_string())?;
            *connect = started.elapsed();
            if op == "select" {
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
                return Ok(Arc::new(move |n| {
                    let sql = sql.clone();
                    Box::pin(async move {
                        let aid = (n % keys + 1) as i64;
                        let row: (i64,) = sql
                            .query_one_as(PG_SELECT, params![aid])
                            .await
                            .map_err(|e| e.to_string())?;
                        std::hint::black_box(row);
                        Ok(())
                    })
                }));
            }
            let kv = db.kv().map_err(|e| e.to_string())?.clone();
            Ok(Arc::new(move |n| {
                let kv = kv.clone();
                let op = op.clone();
                Box::pin(async move {
                    let key = redis_key(n, keys);
                    match op.as_str() {
                        "get" => kv.get(&key).await.map(drop),
                        "set" => kv.set(&key, REDIS_VALUE, None).await,
                        _ => kv.incr(&key, 1).await.map(drop),
                    }
                    .map_err(|e| e.to_string())
                })
            }))
        }
        client if is_redis(&a.url) => {
            if op == "select" {
                return Err("select is a SQL operation; Redis offers get, set and incr".into());
            }
            let pool = if client == "pool" {
                Some(benches::redis_pool(&a.url, a.pool.unwrap_or(16))?)
            } else {
                None
            };
            let manager = if pool.is_none() {
                Some(benches::raw_redis(&a.url).await.map_err(|e| e.to_string())?)
            } else {
                None
            };
            Ok(Arc::new(move |n| {
                let op = op.clone();
                let pool = pool.clone();
                let manager = manager.clone();
                Box::pin(async move {
                    let key = redis_key(n, keys);
                    let mut c = redis::cmd(match op.as_str() {
                        "get" => "GET",
                        "set" => "SET",
                        _ => "INCRBY",
                    });
                    c.arg(&key);
                    match op.as_str() {
                        "get" => {}
                        "set" => {
                            c.arg(REDIS_VALUE);
                        }
                        _ => {
                            c.arg(1);
                        }
                    }
                    let r: redis::RedisResult<redis::Value> = match (pool, manager) {
                        (Some(pool), _) => {
                            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                            c.query_async(&mut *conn).await
                        }
                        (None, Some(mut m)) => c.query_async(&mut m).await,
                        (None, None) => unreachable!("one client is always set"),
                    };
                    r.map(drop).map_err(|e| e.to_string())
                })
            }))
        }
        client if is_postgres(&a.url) => {
            if op != "select" {
                return Err("--client raw|pool on PostgreSQL measures select only".into());
            }
            benches::ensure_pg_database(&a.url).await.map_err(|e| e.to_string())?;
            benches::ensure_pg_accounts(&a.url, keys as i64)
                .await
                .map_err(|e| e.to_string())?;
            if client == "pool" {
                let pool = benches::pg_pool(&a.url, a.pool.unwrap_or(8))?;
                Ok(Arc::new(move |n| {
                    let pool = pool.clone();
                    Box::pin(async move {
                        let aid = (n % keys + 1) as i32;
                        let c = pool.get().await.map_err(|e| e.to_string())?;
                        let st = c.prepare_cached(PG_SELECT).await.map_err(|e| e.to_string())?;
                        let rows = c.query(&st, &[&aid]).await.map_err(|e| e.to_string())?;
                        rows.first().map(|r| std::hint::black_box(r.get::<_, i32>(0))).map(|_| ()).ok_or_else(|| format!("no row aid={aid}"))
                    })
                }))
            } else {
                let raw = RawPg::connect(&a.url, a.shared, PG_SELECT)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(move |n| {
                    let raw = raw.clone();
                    Box::pin(async move {
                        let aid = (n % keys + 1) as i32;
                        let rows = raw.query(&[&aid]).await.map_err(|e| e.to_string())?;
                        rows.first().map(|r| std::hint::black_box(r.get::<_, i32>(0))).map(|_| ()).ok_or_else(|| format!("no row aid={aid}"))
                    })
                }))
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

async fn run(a: Args) -> i32 {
    let connect_start = Instant::now();
    let mut connect = Duration::ZERO;
    let op = match prepare(&a, &mut connect).await {
        Ok(op) => op,
        Err(e) => {
            eprintln!("dbx-load: cannot prepare {} on {}: {e}", a.op, redact(&a.url));
            return 1;
        }
    };
    if connect.is_zero() {
        connect = connect_start.elapsed();
    }
    // Warm up: every task's connection, statement caches, the allocator.
    for n in 0..(a.concurrency as u64 * 4) {
        if let Err(e) = op(n).await {
            eprintln!("dbx-load: warm-up {} failed: {e}", a.op);
            return 1;
        }
    }
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + a.duration;
    let mut tasks = Vec::with_capacity(a.concurrency);
    for t in 0..a.concurrency as u64 {
        let op = op.clone();
        let errors = errors.clone();
        let first_error = first_error.clone();
        let quota = a.ops.map(|n| n / a.concurrency as u64 + u64::from(t < n % a.concurrency as u64));
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
                if let Err(e) = op(t * 1_000_003 + i).await {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        *first_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    }
                }
                lat.push(before.elapsed().as_nanos() as u64);
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(lat) => all.extend(lat),
            Err(e) => {
                eprintln!("dbx-load: a task failed: {e}");
                return 1;
            }
        }
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "client={} op={} url={} concurrency={} ops={} secs={:.3} throughput={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={} connect_ms={:.2}",
        a.client,
        a.op,
        redact(&a.url),
        a.concurrency,
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        us(percentile(&all, 50.0)),
        us(percentile(&all, 99.0)),
        us(percentile(&all, 99.9)),
        errors.load(Ordering::Relaxed),
        connect.as_secs_f64() * 1e3,
    );
    if let Some(e) = first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        eprintln!("dbx-load: first error: {e}");
        return 1;
    }
    0
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    dbx::ConnectOptions::from_url(url)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| "<invalid url>".into())
}
