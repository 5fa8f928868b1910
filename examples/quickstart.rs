//! A first tour of dbx: SQL and key-value on whatever database a URL names.
//!
//! ```text
//! cargo run -p examples --example quickstart                    # SQLite in memory
//! cargo run -p examples --example quickstart -- sqlite:demo.db  # a file
//! DBX_URL=sqlite:demo.db cargo run -p examples --example quickstart
//! ```
//!
//! It needs no server: without a URL it uses SQLite in memory.

use dbx::{Dbx, ErrorKind, params};
use std::time::Duration;

#[derive(Debug, serde::Deserialize)]
struct Note {
    id: i64,
    body: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "sqlite::memory:".to_owned());
    let db = Dbx::connect(&url).await?;
    println!("connected to {} ({})", db.options(), db.backend_name());

    match db.sql() {
        Ok(sql) => {
            sql.execute(
                "CREATE TABLE IF NOT EXISTS quickstart_notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
                params![],
            )
            .await?;
            sql.execute("DELETE FROM quickstart_notes", params![])
                .await?;
            for (id, body) in [
                (1, "hello from dbx"),
                (2, "bound as $2, never interpolated: ' OR 1=1 --"),
            ] {
                let n = sql
                    .execute(
                        "INSERT INTO quickstart_notes (id, body) VALUES ($1, $2)",
                        params![id, body],
                    )
                    .await?;
                println!("sql: inserted {n} row (id {id})");
            }
            let notes: Vec<Note> = sql
                .query_as(
                    "SELECT id, body FROM quickstart_notes ORDER BY id",
                    params![],
                )
                .await?;
            for note in &notes {
                println!("sql: read note {} = {:?}", note.id, note.body);
            }
            let mut tx = sql.begin().await?;
            tx.execute("DELETE FROM quickstart_notes", params![])
                .await?;
            tx.rollback().await?;
            let count: i64 = sql
                .query_one_as("SELECT COUNT(*) FROM quickstart_notes", params![])
                .await?;
            println!("sql: a rolled-back delete left {count} notes");
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("sql: {e}"),
        Err(e) => return Err(e.into()),
    }

    match db.kv() {
        Ok(kv) => {
            kv.set("quickstart:greeting", b"hi", Some(Duration::from_secs(60)))
                .await?;
            let value = kv.get("quickstart:greeting").await?;
            println!(
                "kv: quickstart:greeting = {:?} (ttl {:?})",
                value.as_deref().map(String::from_utf8_lossy),
                kv.ttl("quickstart:greeting").await?
            );
            kv.delete("quickstart:visits").await?;
            for _ in 0..3 {
                kv.incr("quickstart:visits", 1).await?;
            }
            println!(
                "kv: quickstart:visits = {}",
                kv.incr("quickstart:visits", 0).await?
            );
            let keys = kv.scan_keys("quickstart:").await?;
            println!("kv: {} keys start with quickstart:", keys.len());
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("kv: {e}"),
        Err(e) => return Err(e.into()),
    }

    let health = db.health().await?;
    println!(
        "health: round trip {:?}, pool {:?}",
        health.latency, health.pool
    );
    db.close().await;
    println!("done");
    Ok(())
}
