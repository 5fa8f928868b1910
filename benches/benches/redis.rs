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

use benches::{REDIS_VALUE, concurrent, redis_key};
use criterion::{Criterion, criterion_group, criterion_main};
use dbx::Dbx;
use std::time::Duration;

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
            g.bench_function("dbx", |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let kv = kv.clone();
                    async move {
                        concurrent(tasks, iters, move |n| {
                            let kv = kv.clone();
                            async move {
                                let key = redis_key(n, KEYS);
                                if op == "get" {
                                    kv.get(&key).await.map(|v| {
                                        std::hint::black_box(v);
                                    })
                                } else {
                                    kv.set(&key, REDIS_VALUE, None).await
                                }
                            }
                        })
                        .await
                    }
                })
            });
            g.bench_function("raw_redis_rs", |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let manager = manager.clone();
                    async move {
                        concurrent(tasks, iters, move |n| {
                            let mut m = manager.clone();
                            async move {
                                let key = redis_key(n, KEYS);
                                if op == "get" {
                                    redis::cmd("GET")
                                        .arg(&key)
                                        .query_async::<Option<Vec<u8>>>(&mut m)
                                        .await
                                        .map(|v| {
                                            std::hint::black_box(v);
                                        })
                                } else {
                                    redis::cmd("SET")
                                        .arg(&key)
                                        .arg(REDIS_VALUE)
                                        .query_async::<()>(&mut m)
                                        .await
                                }
                            }
                        })
                        .await
                    }
                })
            });
            g.bench_function("deadpool_redis", |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let pool = pool.clone();
                    async move {
                        concurrent(tasks, iters, move |n| {
                            let pool = pool.clone();
                            async move {
                                let key = redis_key(n, KEYS);
                                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                                if op == "get" {
                                    redis::cmd("GET")
                                        .arg(&key)
                                        .query_async::<Option<Vec<u8>>>(&mut *conn)
                                        .await
                                        .map(|v| {
                                            std::hint::black_box(v);
                                        })
                                } else {
                                    redis::cmd("SET")
                                        .arg(&key)
                                        .arg(REDIS_VALUE)
                                        .query_async::<()>(&mut *conn)
                                        .await
                                }
                                .map_err(|e| e.to_string())
                            }
                        })
                        .await
                    }
                })
            });
            g.finish();
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = redis
}
criterion_main!(benches);
