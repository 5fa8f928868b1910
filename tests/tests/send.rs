//! Every public future of dbx is `Send`, so users can `tokio::spawn` it.
//!
//! The checks are made by the compiler: each function below builds futures
//! (never polled) and hands them to [`send`], which only accepts `Send`
//! values. A future that stops being `Send` breaks the build of this test.
//! The tests at the bottom also spawn the ones a user hit, and run them.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use dbx::serde_json::{self, Value as Json};
use dbx::{
    ConnectOptions, Databases, Dbx, Distance, Filter, FindOptions, IndexSpec, Point, PointId,
    Registry, Search, TransactionOptions, params,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

fn send<T: Send>(_: T) {}

#[derive(Serialize, Deserialize)]
struct Doc {
    name: String,
}

fn connecting(registry: &Registry) {
    send(Dbx::connect("sqlite::memory:"));
    send(Dbx::connect_with(ConnectOptions::new("sqlite")));
    send(Dbx::builder("sqlite::memory:").connect());
    send(Databases::from_file("dbx.toml"));
    send(Databases::from_toml(
        "[databases.a]\nurl = \"sqlite::memory:\"\n",
    ));
    let not_send_env = std::env::vars();
    send(Databases::from_toml_with(
        "",
        "dbx.toml",
        not_send_env,
        registry,
    ));
    send(registry.connect("sqlite::memory:"));
    send(registry.connect_with(ConnectOptions::new("sqlite")));
}

fn database(db: &Dbx, dbs: &Databases) {
    send(db.health());
    send(db.close());
    send(db.close_within(Duration::from_secs(1)));
    send(db.database().health());
    send(dbs.close());
}

fn kv(db: &Dbx) {
    let kv = db.kv().unwrap();
    send(kv.get("k"));
    send(kv.set("k", b"v", None));
    send(kv.set_nx("k", b"v", None));
    send(kv.delete("k"));
    send(kv.exists("k"));
    send(kv.incr("k", 1));
    send(kv.mget(&["a", "b"]));
    send(kv.mset(&[("a", "1")], None));
    send(kv.expire("k", Duration::from_secs(1)));
    send(kv.ttl("k"));
    send(kv.get_json::<Doc>("k"));
    send(kv.set_json("k", &Doc { name: "x".into() }, None));
    send(kv.scan("p"));
    send(kv.scan_keys("p"));
}

fn sql(db: &Dbx) {
    let sql = db.sql().unwrap();
    send(sql.execute("SELECT 1", params![]));
    send(sql.query("SELECT 1", params![]));
    send(sql.query_one("SELECT 1", params![]));
    send(sql.query_optional("SELECT 1", params![]));
    send(sql.query_as::<i64>("SELECT 1", params![]));
    send(sql.query_one_as::<i64>("SELECT 1", params![]));
    send(sql.query_optional_as::<i64>("SELECT 1", params![]));
    send(sql.query_stream("SELECT 1", params![]));
    send(sql.begin());
    // The closure moves what it needs (see `Sql::transaction`).
    let name = String::from("ada");
    send(sql.transaction(async move |tx| {
        tx.execute("INSERT INTO t (name) VALUES ($1)", params![name.clone()])
            .await
    }));
    send(
        sql.transaction_with(TransactionOptions::default(), async move |tx| {
            tx.query("SELECT 1", params![]).await
        }),
    );
}

async fn sql_transaction(db: &Dbx) {
    let mut tx = db.sql().unwrap().begin().await.unwrap();
    send(tx.execute("SELECT 1", params![]));
    send(tx.query("SELECT 1", params![]));
    send(tx.query_one("SELECT 1", params![]));
    send(tx.query_optional("SELECT 1", params![]));
    send(tx.query_as::<i64>("SELECT 1", params![]));
    send(tx.commit());
    let tx = db.sql().unwrap().begin().await.unwrap();
    send(tx.rollback());
}

fn docs(db: &Dbx, filter: &Json) {
    let docs = db.docs().unwrap();
    send(docs.begin());
    let c = docs.collection("c");
    send(c.insert_one(filter));
    send(c.insert(&Doc { name: "x".into() }));
    send(c.insert_many(std::slice::from_ref(filter)));
    send(c.insert_all(&[Doc { name: "x".into() }]));
    send(c.find(filter, FindOptions::default()));
    send(c.find_as::<Doc>(filter, FindOptions::default()));
    send(c.find_all(filter, FindOptions::default()));
    send(c.find_one(filter));
    send(c.find_one_with(filter, FindOptions::default()));
    send(c.find_one_as::<Doc>(filter));
    send(c.update_one(filter, filter));
    send(c.update_many(filter, filter));
    send(c.upsert_one(filter, filter));
    send(c.replace_one(filter, filter, false));
    send(c.replace(filter, &Doc { name: "x".into() }, false));
    send(c.delete_one(filter));
    send(c.delete_many(filter));
    send(c.count(filter));
    send(c.create_index(IndexSpec::new(serde_json::json!({"name": 1}))));
    send(c.drop_index("name_1"));
    send(c.list_indexes());
    send(c.drop());
}

async fn doc_transaction(db: &Dbx, filter: &Json) {
    let mut tx = db.docs().unwrap().begin().await.unwrap();
    send(tx.insert_one("c", filter));
    send(tx.find_one("c", filter));
    send(tx.update_one("c", filter, filter));
    send(tx.update_many("c", filter, filter));
    send(tx.delete_many("c", filter));
    send(tx.count("c", filter));
    send(tx.commit());
    let tx = db.docs().unwrap().begin().await.unwrap();
    send(tx.rollback());
}

fn vectors(db: &Dbx) {
    let v = db.vectors().unwrap();
    send(v.list());
    let c = v.collection("c");
    send(c.create(3, Distance::Cosine));
    send(c.create_if_missing(3, Distance::Cosine));
    send(c.drop());
    send(c.info());
    let points = [Point::new(1u64, vec![0.0, 1.0, 0.0])];
    send(c.upsert(&points));
    send(c.upsert_one(Point::new(1u64, vec![0.0, 1.0, 0.0])));
    let ids = [PointId::from(1u64)];
    send(c.get(&ids));
    send(c.get_one(1u64));
    send(c.delete(&ids));
    let filter = Filter::new();
    send(c.delete_where(&filter));
    send(c.count());
    send(c.count_where(&filter));
    let search = Search::new(vec![0.0, 1.0, 0.0], 3);
    send(c.search(&search));
}

#[cfg(feature = "redis")]
async fn redis(db: &Dbx) {
    let r = db.redis().unwrap();
    send(r.cmd::<dbx::redis::Value>(&dbx::redis::cmd("PING")));
    send(r.pipeline::<()>(&dbx::redis::pipe()));
    send(r.exclusive());
    send(r.pubsub());
    send(r.ping());
    let mut conn = r.exclusive().await.unwrap();
    send(conn.cmd::<()>(&dbx::redis::cmd("PING")));
    send(conn.pipeline::<()>(&dbx::redis::pipe()));
}

#[cfg(feature = "mongo")]
fn mongo(db: &Dbx) {
    let m = db.mongo().unwrap();
    send(m.ping());
    send(m.close());
}

#[cfg(feature = "qdrant")]
fn qdrant(db: &Dbx) {
    let q = db.qdrant().unwrap();
    send(q.ping());
    send(q.close());
}

/// The case a user hit: loading `dbx.toml` inside a spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_load_inside_a_spawned_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dbx.toml");
    std::fs::write(
        &path,
        "[databases.local]\nurl = \"sqlite::memory:\"\n[databases.local.retry]\nmax_attempts = 2\n",
    )
    .unwrap();
    let dbs = tokio::spawn(Databases::from_file(path))
        .await
        .unwrap()
        .unwrap();
    let local = dbs.get("local").unwrap();
    assert_eq!(local.options().policy().retry.max_attempts, 2);
    let kv = local.kv().unwrap();
    kv.set("k", b"v", None).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let dbs2 = tokio::spawn(Databases::from_toml(
        "[databases.a]\nurl = \"sqlite::memory:\"\n",
    ))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(dbs2.names().collect::<Vec<_>>(), ["a"]);
    dbs.close().await;
    dbs2.close().await;
}

/// A transaction whose closure moves a clone of a local, run in a spawned
/// task (the documented form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_run_inside_a_spawned_task() {
    let db = Dbx::connect("sqlite::memory:").await.unwrap();
    db.sql()
        .unwrap()
        .execute("CREATE TABLE t (name TEXT NOT NULL)", params![])
        .await
        .unwrap();
    let names = vec!["ada".to_owned(), "grace".to_owned()];
    let task_db = db.clone();
    let inserted = tokio::spawn(async move {
        task_db
            .sql()?
            .transaction(async move |tx| {
                let mut n = 0;
                for name in &names {
                    n += tx
                        .execute("INSERT INTO t (name) VALUES ($1)", params![name.clone()])
                        .await?;
                }
                Ok(n)
            })
            .await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(inserted, 2);
    let stored: Vec<String> = db
        .sql()
        .unwrap()
        .query_as("SELECT name FROM t ORDER BY name", params![])
        .await
        .unwrap();
    assert_eq!(stored, ["ada", "grace"]);
}
