//! Redis GET and SET through dbx against raw redis-rs on the same connection
//! model (one shared `ConnectionManager`), with deadpool-redis exclusive
//! checkout (pool of 16) as a reference line, side by side in one run.
//!
//! `c1` is one operation at a time (latency); `c50` is 50 concurrent tasks
//! (time per operation = 1 / throughput). Skips with a message when Redis is
//! not reachable at `DBX_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`).
//!
//! `cargo bench -p benches --bench redis`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use benches::{REDIS_VALUE, bench_shared, redis_key};
use criterion::{Criterion, criterion_group, criterion_main};
use dbx::Dbx;

const KEYS: u64 = 1000;
const POOL: usize = 16;

fn redis(c: &mut Criterion) {
    let url = benches::redis_url();
    if !benches::reachable(&url, 6379) {
        println!(
            "skipping the Redis benches: no server reachable at {url} (set DBX_BENCH_REDIS_URL)"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (kv, manager, pool) = rt.block_on(async {
        let db = Dbx::connect(&url).await.unwrap();
        let kv = db.kv().unwrap().clone();
        for n in 0..KEYS {
            kv.set(&redis_key(n, KEYS), REDIS_VALUE, None)
                .await
                .unwrap();
        }
        let manager = benches::raw_redis(&url).await.unwrap();
        let pool = benches::redis_pool(&url, POOL).unwrap();
        (kv, manager, pool)
    });

    for op in ["get", "set"] {
        for tasks in [1usize, 50] {
            let mut g = c.benchmark_group(format!("redis/{op}/c{tasks}"));
            bench_shared(&mut g, &rt, "dbx", tasks, &kv, move |kv, n| async move {
                let key = redis_key(n, KEYS);
                if op == "get" {
                    std::hint::black_box(kv.get(&key).await?);
                    Ok::<(), dbx::Error>(())
                } else {
                    kv.set(&key, REDIS_VALUE, None).await
                }
            });
            bench_shared(
                &mut g,
                &rt,
                "raw_redis_rs",
                tasks,
                &manager,
                move |mut m, n| async move { raw_command(op, &redis_key(n, KEYS), &mut m).await },
            );
            bench_shared(
                &mut g,
                &rt,
                "deadpool_redis",
                tasks,
                &pool,
                move |pool, n| async move {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    raw_command(op, &redis_key(n, KEYS), &mut *conn)
                        .await
                        .map_err(|e| e.to_string())
                },
            );
            g.finish();
        }
    }
}

/// GET or SET through redis-rs on any of its async connections.
async fn raw_command(
    op: &str,
    key: &str,
    conn: &mut impl redis::aio::ConnectionLike,
) -> redis::RedisResult<()> {
    if op == "get" {
        let v = redis::cmd("GET")
            .arg(key)
            .query_async::<Option<Vec<u8>>>(conn)
            .await?;
        std::hint::black_box(v);
        Ok(())
    } else {
        redis::cmd("SET")
            .arg(key)
            .arg(REDIS_VALUE)
            .query_async::<()>(conn)
            .await
    }
}

criterion_group! {
    name = benches;
    config = benches::criterion_config();
    targets = redis
}
criterion_main!(benches);
