//! dbx on a current-thread runtime, the way small devices (a Raspberry Pi,
//! a RISC-V board) usually run it: one thread, every capability the URL's
//! backend has, and what it cost.
//!
//! ```text
//! cargo run -p examples --example edge                                   # SQLite in memory
//! cargo run -p examples --example edge --features redis -- redis://127.0.0.1:6379
//! cargo run -p examples --example edge --features postgres -- postgres://postgres@127.0.0.1/test
//! cargo run -p examples --example edge --features mongo -- mongodb://127.0.0.1:27018/edge
//! cargo run -p examples --example edge --features qdrant -- qdrant://127.0.0.1:6334
//! ```
//!
//! It prints the time from `connect` to a ready database, the mean time of
//! each operation it runs (SQL point selects, KV gets, document finds,
//! vector searches: whichever the backend has), and the process's peak
//! resident memory (`VmHWM`; under qemu-user that is the emulator's, which
//! includes its translated code). Everything it writes is named `edge_*`
//! or `edge:*` and removed at the end.

use dbx::serde_json::json;
use dbx::vector::{Distance, Point, Search};
use dbx::{Dbx, ErrorKind, params};
use std::time::{Duration, Instant};

/// Operations timed per capability.
const OPS: u32 = 200;

/// Prints `label: mean per op over OPS runs of f`.
macro_rules! timed {
    ($label:expr, $op:expr) => {{
        let started = Instant::now();
        for i in 0..OPS {
            let _ = i;
            $op(i).await?;
        }
        println!("{:<28} {:>9.1?} per op", $label, started.elapsed() / OPS);
    }};
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "sqlite::memory:".to_owned());
    let started = Instant::now();
    let db = Dbx::builder(&url)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await?;
    println!(
        "connected to {} ({}) in {:.1?}",
        db.options(),
        db.backend_name(),
        started.elapsed()
    );

    match db.sql() {
        Ok(sql) => {
            sql.execute("DROP TABLE IF EXISTS edge_readings", params![])
                .await?;
            sql.execute(
                "CREATE TABLE edge_readings (id BIGINT PRIMARY KEY, sensor TEXT NOT NULL, value DOUBLE PRECISION NOT NULL)",
                params![],
            )
            .await?;
            let mut tx = sql.begin().await?;
            for id in 0..100i64 {
                tx.execute(
                    "INSERT INTO edge_readings (id, sensor, value) VALUES ($1, $2, $3)",
                    params![id, format!("sensor-{}", id % 4), id as f64 * 0.5],
                )
                .await?;
            }
            tx.commit().await?;
            timed!("sql: point select", |i: u32| async move {
                sql.query_one_as::<f64>(
                    "SELECT value FROM edge_readings WHERE id = $1",
                    params![i64::from(i % 100)],
                )
                .await
            });
            sql.execute("DROP TABLE edge_readings", params![]).await?;
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("sql: not on this backend"),
        Err(e) => return Err(e.into()),
    }

    match db.kv() {
        Ok(kv) => {
            let minute = Some(Duration::from_secs(60));
            for i in 0..10 {
                kv.set(&format!("edge:{i}"), b"21.5", minute).await?;
            }
            timed!("kv: get", |i: u32| async move {
                kv.get(&format!("edge:{}", i % 10)).await
            });
            for i in 0..10 {
                kv.delete(&format!("edge:{i}")).await?;
            }
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("kv: not on this backend"),
        Err(e) => return Err(e.into()),
    }

    match db.docs() {
        Ok(docs) => {
            let readings = docs.collection("edge_readings");
            readings.drop().await?;
            let all: Vec<_> = (0..100)
                .map(|i| json!({"n": i, "sensor": format!("sensor-{}", i % 4)}))
                .collect();
            readings.insert_many(&all).await?;
            timed!("docs: find_one", |i: u32| {
                let readings = &readings;
                async move { readings.find_one(&json!({"n": i % 100})).await }
            });
            readings.drop().await?;
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("docs: not on this backend"),
        Err(e) => return Err(e.into()),
    }

    match db.vectors() {
        Ok(vectors) => {
            let c = vectors.collection("edge_vectors");
            c.drop().await?;
            c.create(64, Distance::Cosine).await?;
            let vector = |i: u64| -> Vec<f32> {
                (0..64u64)
                    .map(|d| ((i * 31 + d * 17) % 97) as f32 / 97.0 - 0.5)
                    .collect()
            };
            let points: Vec<Point> = (0..1000).map(|i| Point::new(i, vector(i))).collect();
            c.upsert(&points).await?;
            timed!("vectors: search top 10 of 1k", |i: u32| {
                let (c, q) = (&c, vector(u64::from(i) + 5000));
                async move { c.search(&Search::new(q, 10)).await }
            });
            c.drop().await?;
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("vectors: not on this backend"),
        Err(e) => return Err(e.into()),
    }

    db.close().await;
    if let Some(peak) = peak_rss_kib() {
        println!("peak RSS {:.1} MiB", peak as f64 / 1024.0);
    }
    println!("done");
    Ok(())
}

/// `VmHWM` of this process, in KiB (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
