//! Fill a database with the small data set the dbx-cli README uses, so its
//! commands can be tried: `cargo run -p dbx-cli --example demo_data -- URL`.
//!
//! For each capability the database offers: SQL, a `users` table; key-value,
//! `demo:*` keys; documents, a `users` collection; vectors, an `articles`
//! collection (3 dimensions, cosine). Existing demo data is replaced.

use dbx::{Dbx, Distance, Point, params};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite:demo.db".to_owned());
    let db = Dbx::connect(&url).await?;
    let mut done = Vec::new();

    if let Ok(sql) = db.sql() {
        sql.execute("DROP TABLE IF EXISTS users", params![]).await?;
        sql.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, score REAL)",
            params![],
        )
        .await?;
        for (id, name, email, score) in [
            (1, "Ada", Some("ada@example.com"), Some(9.5)),
            (2, "Grace", Some("grace@example.com"), Some(8.75)),
            (3, "Linus", None, None),
        ] {
            sql.execute(
                "INSERT INTO users (id, name, email, score) VALUES ($1, $2, $3, $4)",
                params![id, name, email, score],
            )
            .await?;
        }
        done.push("sql: table users (3 rows)");
    }

    if let Ok(kv) = db.kv() {
        kv.set("demo:greeting", b"hello, world", None).await?;
        kv.set(
            "demo:session:1",
            b"token-1",
            Some(Duration::from_secs(3600)),
        )
        .await?;
        kv.set(
            "demo:session:2",
            b"token-2",
            Some(Duration::from_secs(3600)),
        )
        .await?;
        kv.set("demo:blob", [0xde_u8, 0xad, 0xbe, 0xef], None)
            .await?;
        done.push("kv: keys demo:greeting, demo:session:1, demo:session:2, demo:blob");
    }

    if let Ok(docs) = db.docs() {
        let users = docs.collection("users");
        users.delete_many(&json!({})).await?;
        users
            .insert_many(&[
                json!({"name": "Ada", "age": 36, "langs": ["en"]}),
                json!({"name": "Grace", "age": 45, "langs": ["en", "es"]}),
                json!({"name": "Linus", "age": 17}),
            ])
            .await?;
        done.push("docs: collection users (3 documents)");
    }

    if let Ok(vectors) = db.vectors() {
        let articles = vectors.collection("articles");
        articles.drop().await?;
        articles.create(3, Distance::Cosine).await?;
        articles
            .upsert(&[
                Point::new(1_u64, vec![0.9, 0.1, 0.0])
                    .with_payload(json!({"title": "Rust in production", "lang": "en"}))?,
                Point::new(2_u64, vec![0.8, 0.3, 0.1])
                    .with_payload(json!({"title": "Async Rust", "lang": "en"}))?,
                Point::new(3_u64, vec![0.1, 0.9, 0.2])
                    .with_payload(json!({"title": "Cocina española", "lang": "es"}))?,
                Point::new(4_u64, vec![0.0, 0.2, 0.9])
                    .with_payload(json!({"title": "Gardening", "lang": "en"}))?,
            ])
            .await?;
        done.push("vectors: collection articles (4 points, 3 dimensions, cosine)");
    }

    db.close().await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}:", db.options())?;
    for line in done {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}
