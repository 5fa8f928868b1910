//! dbx on MongoDB: documents (typed and as JSON), key-value storage, a
//! transaction, then the official driver through the escape hatch.
//!
//! ```text
//! scripts/start-mongo.sh                                              # a local SecantusDB on :27018
//! cargo run -p examples --example mongo --features mongo              # mongodb://127.0.0.1:27018/dbx_example
//! cargo run -p examples --example mongo --features mongo -- mongodb://host:27017/app
//! DBX_URL=mongodb+srv://user:pass@cluster.example.net/app cargo run -p examples --example mongo --features mongo
//! ```
//!
//! It works in the collection `example_users` (dropped at the end) and KV
//! keys starting with `example:mongo:` that expire within a minute.

use dbx::mongo::mongodb::bson::doc;
use dbx::serde_json::json;
use dbx::{Dbx, ErrorKind, FindOptions, IndexSpec};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
struct User {
    name: String,
    email: String,
    age: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "mongodb://127.0.0.1:27018/dbx_example".to_owned());
    let db = match Dbx::builder(&url)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
    {
        Ok(db) => db,
        Err(e) if matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout) => {
            println!("cannot reach MongoDB at {url}: {e}");
            println!(
                "start one (scripts/start-mongo.sh) or pass a URL: ... --example mongo -- mongodb://host:27017/db"
            );
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    println!("connected to {} ({})", db.options(), db.backend_name());

    // --- documents ---
    let users = db.docs()?.collection("example_users");
    users.drop().await?;
    users
        .create_index(IndexSpec::new(json!({"email": 1})).unique(true))
        .await?;
    let ids = users
        .insert_all(&[
            User {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                age: 36,
            },
            User {
                name: "Alan".into(),
                email: "alan@example.com".into(),
                age: 41,
            },
            User {
                name: "Grace".into(),
                email: "grace@example.com".into(),
                age: 85,
            },
        ])
        .await?;
    println!("docs: inserted {} users, first _id {}", ids.len(), ids[0]);
    let e = users
        .insert(&User {
            name: "Ada again".into(),
            email: "ada@example.com".into(),
            age: 1,
        })
        .await
        .unwrap_err();
    println!(
        "docs: a second ada@example.com is a {} error: {e}",
        e.kind()
    );
    users
        .update_one(
            &json!({"name": "Ada"}),
            &json!({"$inc": {"age": 1}, "$push": {"tags": "math"}}),
        )
        .await?;
    let mut over_40 = users
        .find_as::<User>(
            &json!({"age": {"$gt": 36}}),
            FindOptions::new()
                .sort(json!({"age": -1}))
                .projection(json!({"_id": 0})),
        )
        .await?;
    while let Some(u) = over_40.try_next().await? {
        println!("docs: {} is {}", u.name, u.age);
    }
    println!("docs: {} users in total", users.count(&json!({})).await?);

    // --- a transaction, where the server has them (replica sets, mongos) ---
    match db.docs()?.begin().await {
        Ok(mut tx) => {
            tx.update_one(
                "example_users",
                &json!({"name": "Alan"}),
                &json!({"$set": {"age": 42}}),
            )
            .await?;
            tx.insert_one(
                "example_users",
                &json!({"name": "Edsger", "email": "ewd@example.com", "age": 72}),
            )
            .await?;
            tx.commit().await?;
            println!(
                "tx: committed; {} users now",
                users.count(&json!({})).await?
            );
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => println!("tx: {e}"),
        Err(e) => return Err(e.into()),
    }

    // --- key-value, the same API as on every dbx backend ---
    let kv = db.kv()?;
    kv.set(
        "example:mongo:greeting",
        b"hello from dbx",
        Some(Duration::from_secs(60)),
    )
    .await?;
    println!(
        "kv: greeting = {:?}, ttl {:?}, visits = {}",
        kv.get("example:mongo:greeting")
            .await?
            .as_deref()
            .map(String::from_utf8_lossy),
        kv.ttl("example:mongo:greeting").await?,
        kv.incr("example:mongo:visits", 1).await?
    );
    kv.expire("example:mongo:visits", Duration::from_secs(60))
        .await?;

    // --- the official driver, for aggregation and the rest ---
    let raw = db.mongo()?;
    let reply = raw.database()?.run_command(doc! { "ping": 1 }).await?;
    println!("raw: ping -> {reply}");

    users.drop().await?;
    println!("pool: {:?}", db.pool_status());
    db.close().await;
    Ok(())
}
