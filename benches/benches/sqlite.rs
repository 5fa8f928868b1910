//! SQLite through dbx against rusqlite used directly, side by side in one run.
//!
//! Point select by primary key and single-row insert on an in-memory table of
//! 10k rows (100 in test mode, under `cargo test --all-targets`), the same
//! kind of in-memory database on both sides (see [`raw`]), one operation at
//! a time. dbx runs on a multi-thread runtime
//! (`block_in_place`) and on a current-thread runtime (inline within a
//! budget), on the multi-thread runtime also from a spawned task (where
//! applications call from). Report ratios to the raw figure, not absolute times.
//!
//! `cargo bench -p benches --bench sqlite`

use criterion::{Criterion, criterion_group, criterion_main};
use dbx::{Dbx, params};
use std::hint::black_box;

/// Rows of the table: 10k under `cargo bench`, 100 when run once in test mode.
fn rows() -> i64 {
    if benches::bench_mode() { 10_000 } else { 100 }
}

/// rusqlite used directly on the same kind of database as dbx's
/// `sqlite::memory:`: an in-memory database on SQLite's memdb VFS, which
/// several connections can share (a pool needs that). A private
/// `Connection::open_in_memory()` serves one connection only and skips the
/// VFS's locking; it is measured too, as a reference line.
fn raw(c: &mut Criterion) {
    raw_on(c, "raw_rusqlite", || {
        rusqlite::Connection::open_with_flags(
            "file:/dbx-bench-raw?vfs=memdb",
            rusqlite::OpenFlags::default(),
        )
    });
    raw_on(
        c,
        "raw_rusqlite_private_memory",
        rusqlite::Connection::open_in_memory,
    );
}

fn raw_on(
    c: &mut Criterion,
    label: &str,
    open: impl FnOnce() -> rusqlite::Result<rusqlite::Connection>,
) {
    let rows = rows();
    let conn = open().unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    conn.execute(
        "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT x, 'value-' || x FROM c",
        [rows],
    )
    .unwrap();
    let mut i = 0i64;
    c.bench_function(&format!("sqlite/point_select/{label}"), |b| {
        b.iter(|| {
            i = i % rows + 1;
            let mut st = conn
                .prepare_cached("SELECT id, v FROM t WHERE id = ?1")
                .unwrap();
            let row: (i64, String) = st.query_row([i], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            black_box(row)
        })
    });
    let mut n = rows;
    c.bench_function(&format!("sqlite/insert/{label}"), |b| {
        b.iter(|| {
            n += 1;
            let mut st = conn
                .prepare_cached("INSERT INTO t (id, v) VALUES (?1, ?2)")
                .unwrap();
            black_box(st.execute(rusqlite::params![n, "x"]).unwrap())
        })
    });
}

fn dbx_on(c: &mut Criterion, label: &str, rt: tokio::runtime::Runtime) {
    let multi_thread = rt.handle().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
    let rows = rows();
    let db = rt.block_on(async {
        let db = Dbx::connect("sqlite::memory:").await.unwrap();
        let sql = db.sql().unwrap();
        sql.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", params![]).await.unwrap();
        sql.execute(
            "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) SELECT x, 'value-' || x FROM c",
            params![rows],
        )
        .await
        .unwrap();
        db
    });
    let sql = db.sql().unwrap().clone();
    let mut i = 0i64;
    c.bench_function(&format!("sqlite/point_select/dbx_{label}"), |b| {
        b.to_async(&rt).iter(|| {
            i = i % rows + 1;
            let sql = &sql;
            async move {
                let row: (i64, String) = sql
                    .query_one_as("SELECT id, v FROM t WHERE id = $1", params![i])
                    .await
                    .unwrap();
                black_box(row)
            }
        })
    });
    if multi_thread {
        // Where applications call from: a task spawned on a worker thread
        // (criterion's `to_async` runs the loop in `block_on`, on a thread
        // that is not a worker, where `block_in_place` has no core to hand
        // over).
        let mut i = 0i64;
        c.bench_function("sqlite/point_select/dbx_multi_thread_task", |b| {
            b.iter_custom(|iters| {
                let sql = sql.clone();
                let first = i;
                i = (i + iters as i64) % rows;
                rt.block_on(async move {
                    tokio::spawn(async move {
                        let start = std::time::Instant::now();
                        for k in 0..iters as i64 {
                            let id = (first + k) % rows + 1;
                            let row: (i64, String) = sql
                                .query_one_as("SELECT id, v FROM t WHERE id = $1", params![id])
                                .await
                                .unwrap();
                            black_box(row);
                        }
                        start.elapsed()
                    })
                    .await
                    .unwrap()
                })
            })
        });
    }
    let mut n = rows;
    c.bench_function(&format!("sqlite/insert/dbx_{label}"), |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let sql = &sql;
            async move {
                black_box(
                    sql.execute("INSERT INTO t (id, v) VALUES ($1, $2)", params![n, "x"])
                        .await
                        .unwrap(),
                )
            }
        })
    });
}

fn dbx_multi_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    dbx_on(c, "multi_thread", rt);
}

fn dbx_current_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    dbx_on(c, "current_thread", rt);
}

criterion_group!(benches, raw, dbx_multi_thread, dbx_current_thread);
criterion_main!(benches);
