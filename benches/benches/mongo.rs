//! MongoDB `find_one` by `_id` through dbx against the official `mongodb`
//! crate used directly, on the same connection model (the driver's own pool,
//! `maxPoolSize` 10 on both sides), side by side in one run.
//!
//! A scratch collection named per run is filled with 1000 small documents
//! (integer `_id`s; 50 in test mode, under `cargo test --all-targets`) and
//! dropped at the end. `c1` is one operation at a time (latency); `c50` is 50
//! concurrent tasks (time per operation = 1 / throughput). dbx takes and
//! returns JSON (`find_one(&json!({"_id": id}))`); the raw line sends a
//! `doc!` filter and gets a BSON `Document` back, as an application on the
//! driver would.
//!
//! The server is `DBX_BENCH_MONGO_URL`, else `DBX_TEST_MONGO_URL`, else
//! `mongodb://127.0.0.1:27018` (the SecantusDB of `scripts/start-mongo.sh`);
//! skips with a message when it is not reachable.
//!
//! `cargo bench -p benches --bench mongo`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use benches::bench_shared;
use criterion::{Criterion, criterion_group, criterion_main};
use dbx::Dbx;
use dbx::serde_json::json;
use mongodb::bson::{Document, doc};

/// Connections per server on both sides (the driver's and dbx's default).
const POOL: u32 = 10;

/// Documents in the scratch collection: 1000 under `cargo bench`, 50 once in
/// test mode.
fn docs() -> u64 {
    if benches::bench_mode() { 1000 } else { 50 }
}

fn mongo(c: &mut Criterion) {
    let url = benches::mongo_url();
    if !benches::reachable(&url, 27017) {
        println!(
            "skipping the MongoDB benches: no server reachable at {url} \
             (set DBX_BENCH_MONGO_URL, or start one with `bash scripts/start-mongo.sh`)"
        );
        return;
    }
    let n = docs();
    let url = benches::with_param(&url, "maxPoolSize", POOL);
    let name = format!(
        "dbx_bench_find_one_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, coll, raw) = rt.block_on(async {
        let db = Dbx::connect(&url).await.unwrap();
        let coll = db.docs().unwrap().collection(&name);
        let batch: Vec<_> = (0..n)
            .map(|i| json!({"_id": i, "name": format!("document {i}"), "n": i, "tags": ["a", "b"]}))
            .collect();
        coll.insert_many(&batch).await.unwrap();
        let client = benches::raw_mongo(&url).await.unwrap();
        let database = client
            .default_database()
            .unwrap_or_else(|| client.database(dbx::mongo::DEFAULT_DATABASE));
        let raw = database.collection::<Document>(&name);
        (db, coll, raw)
    });

    for tasks in [1usize, 50] {
        let mut g = c.benchmark_group(format!("mongo/find_one/c{tasks}"));
        bench_shared(
            &mut g,
            &rt,
            "dbx",
            tasks,
            &coll,
            move |coll, i| async move {
                let id = i % n;
                match coll.find_one(&json!({"_id": id})).await {
                    Ok(Some(d)) => {
                        std::hint::black_box(d);
                        Ok(())
                    }
                    Ok(None) => Err(format!("no document with _id {id}")),
                    Err(e) => Err(e.to_string()),
                }
            },
        );
        bench_shared(
            &mut g,
            &rt,
            "raw_mongodb",
            tasks,
            &raw,
            move |raw, i| async move {
                let id = (i % n) as i32;
                match raw.find_one(doc! {"_id": id}).await {
                    Ok(Some(d)) => {
                        std::hint::black_box(d);
                        Ok(())
                    }
                    Ok(None) => Err(format!("no document with _id {id}")),
                    Err(e) => Err(e.to_string()),
                }
            },
        );
        g.finish();
    }

    rt.block_on(async {
        coll.drop().await.unwrap();
        db.close().await;
    });
}

criterion_group! {
    name = benches;
    config = benches::criterion_config();
    targets = mongo
}
criterion_main!(benches);
