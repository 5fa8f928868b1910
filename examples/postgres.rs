//! dbx on PostgreSQL: typed rows, a transaction and key-value.
//!
//! ```text
//! cargo run -p examples --example postgres --features postgres
//! DBX_URL=postgres://app:secret@db.example/app cargo run -p examples --example postgres --features postgres
//! ```
//!
//! Without `DBX_URL` (or a first argument) it uses the local server at
//! `postgres://postgres@127.0.0.1:5432/postgres`. It works in a temporary
//! table and under its own key prefix, and cleans up after itself.

use dbx::chrono::{DateTime, Utc};
use dbx::uuid::Uuid;
use dbx::{Dbx, ErrorKind, Value, params, serde_json};
use std::time::Duration;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    id: i32,
    customer: String,
    total: String,
    paid_at: Option<DateTime<Utc>>,
    tags: Vec<String>,
    ref_id: Uuid,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let db = Dbx::connect(&url).await?;
    println!("connected to {} ({})", db.options(), db.backend_name());

    let sql = db.sql()?;
    let table = format!("dbx_example_orders_{}", std::process::id());
    sql.execute(
        &format!(
            "CREATE TABLE {table} (id int4 PRIMARY KEY, customer text NOT NULL, total numeric(10, 2) NOT NULL, \
             paid_at timestamptz, tags text[] NOT NULL DEFAULT '{{}}', ref_id uuid NOT NULL)"
        ),
        params![],
    )
    .await?;
    println!("sql: created table {table}");

    // Parameters are coerced to the column types: an i64 fits int4, a decimal
    // goes to numeric exactly, a JSON array to text[].
    let insert = format!(
        "INSERT INTO {table} (id, customer, total, paid_at, tags, ref_id) VALUES ($1, $2, $3, $4, $5, $6)"
    );
    for (id, customer, total, paid) in [
        (1i32, "ada", "19.99", true),
        (2, "bob", "5.00", false),
        (3, "cy", "120.50", true),
    ] {
        let n = sql
            .execute(
                &insert,
                &[
                    Value::from(id),
                    Value::from(customer),
                    Value::decimal(total)?,
                    if paid {
                        Value::from(Utc::now())
                    } else {
                        Value::Null
                    },
                    Value::Json(serde_json::json!(["web", customer])),
                    Value::from(Uuid::from_u128(id.unsigned_abs().into())),
                ],
            )
            .await?;
        println!("sql: inserted {n} row (order {id}, {customer}, {total})");
    }

    let orders: Vec<Order> = sql
        .query_as(&format!("SELECT * FROM {table} ORDER BY id"), params![])
        .await?;
    for o in &orders {
        println!(
            "sql: order {} by {} total {} paid {} tags {:?}",
            o.id,
            o.customer,
            o.total,
            o.paid_at.map_or("no".to_owned(), |t| t.to_rfc3339()),
            o.tags
        );
    }
    let unpaid: String = sql
        .query_one_as(
            &format!("SELECT coalesce(sum(total), 0)::text FROM {table} WHERE paid_at IS NULL"),
            params![],
        )
        .await?;
    println!("sql: unpaid total {unpaid}");

    // Typed errors: a value too large for int4, a duplicate key.
    let e = sql
        .execute(
            &insert,
            params![
                i64::MAX,
                "big",
                "1",
                None::<DateTime<Utc>>,
                serde_json::json!([]),
                Uuid::nil()
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    println!("sql: rejected as expected: {e}");

    // A transaction: both updates or neither.
    let mut tx = sql.begin().await?;
    tx.execute(
        &format!("UPDATE {table} SET paid_at = now() WHERE id = $1"),
        params![2],
    )
    .await?;
    let e = tx
        .execute(
            &insert,
            params![
                1,
                "dup",
                "1",
                None::<DateTime<Utc>>,
                serde_json::json!([]),
                Uuid::nil()
            ],
        )
        .await
        .unwrap_err();
    println!("tx: duplicate id is a {} error: {e}", e.kind());
    tx.rollback().await?;
    let still_unpaid: i64 = sql
        .query_one_as(
            &format!("SELECT count(*) FROM {table} WHERE paid_at IS NULL"),
            params![],
        )
        .await?;
    println!("tx: rolled back, {still_unpaid} order still unpaid");

    sql.execute(&format!("DROP TABLE {table}"), params![])
        .await?;
    println!("sql: dropped table {table}");

    // Key-value, in the dbx_kv table.
    let kv = db.kv()?;
    let prefix = format!("example:{}:", std::process::id());
    kv.set(
        &format!("{prefix}greeting"),
        b"hello",
        Some(Duration::from_secs(60)),
    )
    .await?;
    let visits = kv.incr(&format!("{prefix}visits"), 1).await?;
    kv.set_json(
        &format!("{prefix}user"),
        &serde_json::json!({"name": "ada"}),
        None,
    )
    .await?;
    println!(
        "kv: greeting = {:?}, visits = {visits}, ttl = {:?}",
        kv.get(&format!("{prefix}greeting"))
            .await?
            .map(|v| String::from_utf8_lossy(&v).into_owned()),
        kv.ttl(&format!("{prefix}greeting")).await?
    );
    let keys = kv.scan_keys(&prefix).await?;
    println!("kv: {} keys under {prefix}", keys.len());
    for k in &keys {
        kv.delete(k).await?;
    }
    println!("kv: cleaned up");

    let health = db.health().await?;
    println!(
        "health: round trip {:?}, pool {:?}",
        health.latency, health.pool
    );
    db.close().await;
    println!("done");
    Ok(())
}
