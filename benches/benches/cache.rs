//! The result cache (`dbx::cache`, feature `cache`): cached reads against
//! the same reads uncached, on the same database, side by side in one run.
//!
//! - `cache/sql_hit/c1`: a point select (`SELECT id, name FROM t WHERE id =
//!   $1`) on SQLite in memory, one task, a handful of hot keys, every cached
//!   read a hit after the warm-up (time per op).
//! - `cache/kv_hit/c1`: a Redis GET, the same way.
//! - `cache/redis_get/c50`, `cache/pg_select/c50`: hot-key throughput at
//!   50 concurrent tasks (time per op = 1 / throughput), Redis GET and a
//!   PostgreSQL point select on a table the bench creates (with a unique
//!   name) and drops.
//! - Memory per cached entry: after caching 100,000 distinct SQLite rows
//!   (one cached query per id; 1,000 in test mode), the weigher's bytes per
//!   entry (`stats().bytes / stats().entries`) and the growth of the
//!   process's resident set per entry (`VmRSS` of `/proc/self/status`),
//!   printed before the criterion groups run.
//!
//! Every contender is run with [`benches::bench_shared`], one handle behind
//! an `Arc` on both sides, so the harness costs both the same. Redis
//! (`DBX_BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`) and PostgreSQL
//! (`DBX_BENCH_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`)
//! are skipped with a message when not reachable.
//!
//! `cargo bench -p benches --bench cache`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use benches::{REDIS_VALUE, bench_shared, with_param};
use criterion::{Criterion, criterion_group, criterion_main};
use dbx::cache::{CacheConfig, CachePolicy, CachedKv, CachedSql};
use dbx::{Dbx, Kv, Sql, params};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Hot keys: every read of the hit and throughput groups is one of these.
const HOT: u64 = 8;

/// The point select of the SQLite groups.
const SQLITE_SELECT: &str = "SELECT id, name FROM t WHERE id = $1";

/// Long enough that nothing expires during the run: every read after the
/// warm-up is a hit.
fn policy() -> CachePolicy {
    CachePolicy::ttl(Duration::from_secs(3600))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// PostgreSQL of this bench: `DBX_BENCH_PG_URL`, else the `postgres`
/// database of a local server (trust auth).
fn pg_url() -> String {
    std::env::var("DBX_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A cached and an uncached SQL handle of one database, and a statement.
struct SqlPair {
    cached: CachedSql,
    plain: Sql,
    select: String,
}

/// A cached and an uncached key-value handle of one database, and the keys.
struct KvPair {
    cached: CachedKv,
    plain: Kv,
    keys: Vec<String>,
}

/// The two SQL contenders of a group: the same point select, cached and not.
fn sql_group(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    tasks: usize,
    pair: &Arc<SqlPair>,
) {
    let mut g = c.benchmark_group(name);
    bench_shared(&mut g, rt, "cached", tasks, pair, |p, n| async move {
        let id = (n % HOT + 1) as i64;
        black_box(p.cached.query_one(&p.select, params![id]).await?);
        Ok::<(), dbx::Error>(())
    });
    bench_shared(&mut g, rt, "uncached", tasks, pair, |p, n| async move {
        let id = (n % HOT + 1) as i64;
        black_box(p.plain.query_one(&p.select, params![id]).await?);
        Ok::<(), dbx::Error>(())
    });
    g.finish();
}

/// The two key-value contenders of a group: the same GET, cached and not.
fn kv_group(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    tasks: usize,
    pair: &Arc<KvPair>,
) {
    let mut g = c.benchmark_group(name);
    bench_shared(&mut g, rt, "cached", tasks, pair, |p, n| async move {
        let key = &p.keys[(n % HOT) as usize];
        black_box(p.cached.get(key).await?);
        Ok::<(), dbx::Error>(())
    });
    bench_shared(&mut g, rt, "uncached", tasks, pair, |p, n| async move {
        let key = &p.keys[(n % HOT) as usize];
        black_box(p.plain.get(key).await?);
        Ok::<(), dbx::Error>(())
    });
    g.finish();
}

/// Read every hot key once through the cached handle, so the groups measure
/// hits only.
async fn warm_sql(p: &SqlPair) {
    for id in 1..=HOT as i64 {
        p.cached.query_one(&p.select, params![id]).await.unwrap();
    }
}

fn print_stats(what: &str, db: &Dbx) {
    let cache = db.cache().unwrap();
    cache.run_pending_tasks();
    let s = cache.stats();
    println!(
        "cache stats after {what}: hits {}, misses {}, loads {}, stale hits {}, bypasses {}, entries {}",
        s.hits, s.misses, s.loads, s.stale_hits, s.bypasses, s.entries
    );
}

/// SQLite in memory: the hit path at one task.
fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let (db, pair) = rt.block_on(async {
        let db = Dbx::connect("sqlite::memory:?cache=true").await.unwrap();
        let sql = db.sql().unwrap().clone();
        sql.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            params![],
        )
        .await
        .unwrap();
        for id in 1..=HOT as i64 {
            sql.execute(
                "INSERT INTO t (id, name) VALUES ($1, $2)",
                params![id, format!("name-{id}")],
            )
            .await
            .unwrap();
        }
        let pair = Arc::new(SqlPair {
            cached: sql.cached(policy()),
            plain: sql,
            select: SQLITE_SELECT.to_owned(),
        });
        warm_sql(&pair).await;
        (db, pair)
    });
    sql_group(c, &rt, "cache/sql_hit/c1", 1, &pair);
    print_stats("cache/sql_hit/c1", &db);
}

/// Redis: the hit path at one task and hot-key throughput at 50 tasks.
fn redis(c: &mut Criterion) {
    let url = benches::redis_url();
    if !benches::reachable(&url, 6379) {
        println!(
            "skipping the Redis cache benches: no server reachable at {url} (set DBX_BENCH_REDIS_URL)"
        );
        return;
    }
    let rt = runtime();
    let (db, pair) = rt.block_on(async {
        let db = Dbx::connect(&with_param(&url, "cache", true))
            .await
            .unwrap();
        let kv = db.kv().unwrap().clone();
        let keys: Vec<String> = (0..HOT)
            .map(|n| format!("dbx-bench-cache:{}:{n}", std::process::id()))
            .collect();
        for key in &keys {
            kv.set(key, REDIS_VALUE, None).await.unwrap();
        }
        let pair = Arc::new(KvPair {
            cached: kv.cached(policy()),
            plain: kv,
            keys,
        });
        for key in &pair.keys {
            assert_eq!(
                pair.cached.get(key).await.unwrap().as_deref(),
                Some(REDIS_VALUE)
            );
        }
        (db, pair)
    });
    kv_group(c, &rt, "cache/kv_hit/c1", 1, &pair);
    kv_group(c, &rt, "cache/redis_get/c50", 50, &pair);
    print_stats("the Redis groups", &db);
    rt.block_on(async {
        for key in &pair.keys {
            pair.plain.delete(key).await.unwrap();
        }
    });
}

/// PostgreSQL: hot-key throughput at 50 tasks, on a table of its own.
fn postgres(c: &mut Criterion) {
    let url = pg_url();
    if !benches::reachable(&url, 5432) {
        println!(
            "skipping the PostgreSQL cache benches: no server reachable at {url} (set DBX_BENCH_PG_URL)"
        );
        return;
    }
    // Plain TCP, as the postgres bench (the server offers TLS, and dbx's
    // default `sslmode=prefer` would take it).
    let url = with_param(&with_param(&url, "sslmode", "disable"), "cache", true);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let table = format!("dbx_bench_cache_{}_{stamp}", std::process::id());
    let rt = runtime();
    let (db, pair) = rt.block_on(async {
        let db = Dbx::connect(&url).await.unwrap();
        let sql = db.sql().unwrap().clone();
        sql.execute(
            &format!("CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT NOT NULL)"),
            params![],
        )
        .await
        .unwrap();
        sql.execute(
            &format!(
                "INSERT INTO {table} (id, name) SELECT g, 'name-' || g FROM generate_series(1, $1::int) g"
            ),
            params![HOT as i64],
        )
        .await
        .unwrap();
        let pair = Arc::new(SqlPair {
            cached: sql.cached(policy()),
            plain: sql,
            select: format!("SELECT id, name FROM {table} WHERE id = $1"),
        });
        warm_sql(&pair).await;
        (db, pair)
    });
    sql_group(c, &rt, "cache/pg_select/c50", 50, &pair);
    print_stats("cache/pg_select/c50", &db);
    rt.block_on(async {
        pair.plain
            .execute(&format!("DROP TABLE {table}"), params![])
            .await
            .unwrap();
    });
}

/// Resident set of this process, in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory per cached entry: cache `n` distinct small rows and compare the
/// weigher's count and the resident set before and after.
fn memory(_: &mut Criterion) {
    let n: i64 = if benches::bench_mode() {
        100_000
    } else {
        1_000
    };
    // The weigher charges every entry at least max_bytes / max_entries; with
    // these settings that floor is 10 bytes, so `bytes` is the weigher's own
    // estimate, and nothing is evicted.
    let (max_entries, max_bytes) = (100_000_000u64, 1u64 << 30);
    let rt = runtime();
    rt.block_on(async {
        let db = Dbx::connect(&format!(
            "sqlite::memory:?cache=true&cache_max_entries={max_entries}&cache_max_bytes={max_bytes}"
        ))
        .await
        .unwrap();
        let sql = db.sql().unwrap().clone();
        sql.execute(
            "CREATE TABLE m (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            params![],
        )
        .await
        .unwrap();
        sql.execute(
            "INSERT INTO m WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) SELECT x, 'name-' || x FROM c",
            params![n],
        )
        .await
        .unwrap();
        let select = "SELECT id, name FROM m WHERE id = $1";
        // Read every row once uncached first, so SQLite's page cache, the
        // statement cache and the allocator's arenas are warm before the
        // resident set is read.
        for id in 1..=n {
            black_box(sql.query_one(select, params![id]).await.unwrap());
        }
        let cached = sql.cached(policy());
        let cache = db.cache().unwrap();
        cache.run_pending_tasks();
        let before = cache.stats();
        let rss_before = rss_kib().unwrap_or(0);
        for id in 1..=n {
            black_box(cached.query_one(select, params![id]).await.unwrap());
        }
        cache.run_pending_tasks();
        let rss_after = rss_kib().unwrap_or(0);
        let s = cache.stats();
        let entries = s.entries - before.entries;
        let bytes = s.bytes - before.bytes;
        println!(
            "cache memory: {entries} entries cached ({} misses, {} evictions), {n} distinct rows `{select}`",
            s.misses - before.misses,
            s.evictions
        );
        println!(
            "cache memory: weigher {:.0} bytes/entry (stats().bytes {bytes} / entries {entries}; floor max_bytes/max_entries = {} bytes)",
            bytes as f64 / entries.max(1) as f64,
            max_bytes / max_entries
        );
        let defaults = CacheConfig::default();
        println!(
            "cache memory: with the default limits ({} entries, {} bytes) the weigher charges every entry at least {} bytes",
            defaults.max_entries,
            defaults.max_bytes,
            defaults.max_bytes / defaults.max_entries
        );
        println!(
            "cache memory: RSS growth {:.0} bytes/entry (VmRSS {rss_before} KiB before, {rss_after} KiB after, +{} KiB)",
            (rss_after.saturating_sub(rss_before) * 1024) as f64 / entries.max(1) as f64,
            rss_after.saturating_sub(rss_before)
        );
        drop(cached);
        drop(db);
    });
}

criterion_group! {
    name = benches;
    config = benches::criterion_config();
    targets = memory, sqlite, redis, postgres
}
criterion_main!(benches);
