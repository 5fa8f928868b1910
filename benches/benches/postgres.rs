//! PostgreSQL point select through dbx against raw tokio-postgres on the
//! same connection model (two pipelined clients shared by every task, round
//! robin, statement prepared once per client), with deadpool-postgres
//! exclusive checkout (pool of 8) as a reference line, side by side in one run.
//!
//! The query is pgbench -S's: `SELECT abalance FROM pgbench_accounts WHERE
//! aid = $1`. `c1`, `c8`, `c50` are 1, 8 and 50 concurrent tasks (time per
//! operation = 1 / throughput). Uses (and creates if missing) the database
//! of `DBX_BENCH_PG_URL` (default `postgres://postgres@127.0.0.1:5432/dbx_bench`);
//! skips with a message when the server is not reachable.
//!
//! `cargo bench -p benches --bench postgres`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use benches::{PG_SELECT, RawPg, bench_shared};
use criterion::{Criterion, criterion_group, criterion_main};
use dbx::{Dbx, params};

const SHARED: usize = 2;
const POOL: usize = 8;

fn postgres(c: &mut Criterion) {
    let url = benches::pg_url();
    if !benches::reachable(&url, 5432) {
        println!(
            "skipping the PostgreSQL benches: no server reachable at {url} (set DBX_BENCH_PG_URL)"
        );
        return;
    }
    let rows: u64 = if benches::bench_mode() { 100_000 } else { 100 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sql, raw, pool) = rt.block_on(async {
        benches::ensure_pg_database(&url).await.unwrap();
        benches::ensure_pg_accounts(&url, rows as i64)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        // The raw clients speak plain TCP (NoTls): so does dbx here, or the
        // comparison would be TLS against plain text (the server offers TLS
        // and dbx's default `sslmode=prefer` takes it).
        let tls = if url.contains("sslmode=") {
            ""
        } else {
            "&sslmode=disable"
        };
        let db = Dbx::connect(&format!("{url}{sep}shared_clients={SHARED}{tls}"))
            .await
            .unwrap();
        let sql = db.sql().unwrap().clone();
        let raw = RawPg::connect(&url, SHARED, PG_SELECT).await.unwrap();
        let pool = benches::pg_pool(&url, POOL).unwrap();
        (sql, raw, pool)
    });

    for tasks in [1usize, 8, 50] {
        let mut g = c.benchmark_group(format!("postgres/point_select/c{tasks}"));
        bench_shared(&mut g, &rt, "dbx", tasks, &sql, move |sql, n| async move {
            let aid = (n % rows + 1) as i64;
            let r = sql.query_one_as::<(i32,)>(PG_SELECT, params![aid]).await?;
            std::hint::black_box(r);
            Ok::<(), dbx::Error>(())
        });
        bench_shared(
            &mut g,
            &rt,
            "raw_tokio_postgres",
            tasks,
            &raw,
            move |raw, n| async move {
                let aid = (n % rows + 1) as i32;
                let rows = raw.query(&[&aid]).await?;
                std::hint::black_box(rows[0].get::<_, i32>(0));
                Ok::<(), tokio_postgres::Error>(())
            },
        );
        bench_shared(
            &mut g,
            &rt,
            "deadpool_postgres",
            tasks,
            &pool,
            move |pool, n| async move {
                let aid = (n % rows + 1) as i32;
                let c = pool.get().await.map_err(|e| e.to_string())?;
                let st = c
                    .prepare_cached(PG_SELECT)
                    .await
                    .map_err(|e| e.to_string())?;
                let rows = c.query(&st, &[&aid]).await.map_err(|e| e.to_string())?;
                std::hint::black_box(rows[0].get::<_, i32>(0));
                Ok::<(), String>(())
            },
        );
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = benches::criterion_config();
    targets = postgres
}
criterion_main!(benches);
