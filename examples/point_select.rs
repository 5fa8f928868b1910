//! SQLite point selects through dbx and through rusqlite used directly, side
//! by side in one process: the number to read on a small board (or under
//! qemu) is the ratio, since both sides run on the same CPU at the same time.
//!
//! ```text
//! cargo run -p examples --release --example point_select           # 7 rounds of 5,000 each
//! cargo run -p examples --release --example point_select -- 20000  # ops per round
//! ```
//!
//! Both sides read `SELECT id, v FROM t WHERE id = ?` from a 10,000-row
//! table in an in-memory database on SQLite's memdb VFS (the kind dbx's
//! `sqlite::memory:` opens, which a pool's connections can share); dbx runs
//! on a current-thread runtime. Rounds alternate between the two; the
//! medians are printed.

use dbx::{Dbx, params};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROWS: i64 = 10_000;
const ROUNDS: usize = 7;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ops: u32 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("ops per round: not a number: {n:?}"))?,
        None => 5_000,
    };
    let fill = "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT x, 'value-' || x FROM c";

    let raw = rusqlite::Connection::open_with_flags(
        "file:/dbx-point-select-raw?vfs=memdb",
        rusqlite::OpenFlags::default(),
    )?;
    raw.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")?;
    raw.execute(fill, [ROWS])?;

    let db = Dbx::connect("sqlite::memory:").await?;
    let sql = db.sql()?;
    sql.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        params![],
    )
    .await?;
    sql.execute(&fill.replace("?1", "$1"), params![ROWS])
        .await?;

    let (mut dbx_times, mut raw_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for k in 0..i64::from(ops) {
            let mut st = raw.prepare_cached("SELECT id, v FROM t WHERE id = ?1")?;
            let row: (i64, String) =
                st.query_row([k % ROWS + 1], |r| Ok((r.get(0)?, r.get(1)?)))?;
            black_box(row);
        }
        raw_times.push(started.elapsed() / ops);

        let started = Instant::now();
        for k in 0..i64::from(ops) {
            let row: (i64, String) = sql
                .query_one_as("SELECT id, v FROM t WHERE id = $1", params![k % ROWS + 1])
                .await?;
            black_box(row);
        }
        dbx_times.push(started.elapsed() / ops);
    }
    let (d, r) = (median(&mut dbx_times), median(&mut raw_times));
    println!("point select, median of {ROUNDS} rounds of {ops}:");
    println!("  dbx      {d:>10.2?} per op");
    println!("  rusqlite {r:>10.2?} per op");
    println!(
        "  dbx / rusqlite = {:.2}x the time",
        d.as_secs_f64() / r.as_secs_f64()
    );
    db.close().await;
    println!("done");
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
