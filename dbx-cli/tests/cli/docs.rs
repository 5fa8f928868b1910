//! `dbx docs find` on the MongoDB-wire server.

use crate::common::*;
use dbx::serde_json::json;

#[test]
fn mongo_find_prints_json_lines_or_an_array() {
    let url = mongo_url();
    let collection = unique("users");
    // Seed through the library (the CLI only reads documents). A server
    // that is not up fails here, loudly.
    block_on(async {
        let db = dbx::Dbx::connect(&url).await.unwrap_or_else(|e| {
            panic!("MongoDB-wire server not reachable at {url} (start it with scripts/start-mongo.sh): {e}")
        });
        db.docs()
            .unwrap()
            .collection(&collection)
            .insert_many(&[
                json!({"_id": 1, "name": "Ada", "age": 36}),
                json!({"_id": 2, "name": "Grace", "age": 45}),
                json!({"_id": 3, "name": "Linus", "age": 17, "note": "'; DROP TABLE x; --"}),
            ])
            .await
            .unwrap();
        db.close().await;
    });
    let _cleanup = DropCollection {
        url: url.clone(),
        collection: collection.clone(),
    };

    let r = run(&[
        "docs",
        &url,
        "find",
        &collection,
        r#"{"age": {"$gte": 18}}"#,
        "--sort",
        r#"{"age": -1}"#,
    ]);
    let lines: Vec<serde_json::Value> = r
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"_id": 2, "name": "Grace", "age": 45}),
            json!({"_id": 1, "name": "Ada", "age": 36})
        ]
    );

    // --json: one array; limit, skip, projection.
    let v = run(&[
        "--json",
        "docs",
        &url,
        "find",
        &collection,
        "{}",
        "--sort",
        r#"{"_id": 1}"#,
        "--skip",
        "1",
        "--limit",
        "1",
        "--projection",
        r#"{"name": 1, "_id": 0}"#,
    ])
    .json();
    assert_eq!(v, json!([{"name": "Grace"}]));
    // The default filter matches everything; nothing matched is [].
    assert_eq!(
        run(&["docs", &url, "find", &collection])
            .ok()
            .lines()
            .count(),
        3
    );
    let v = run(&[
        "--json",
        "docs",
        &url,
        "find",
        &collection,
        r#"{"age": 99}"#,
    ])
    .json();
    assert_eq!(v, json!([]));
    let v = run(&[
        "--json",
        "docs",
        &url,
        "find",
        &collection,
        r#"{"note": "'; DROP TABLE x; --"}"#,
    ])
    .json();
    assert_eq!(v[0]["_id"], 3);

    // dbx checks filters before sending them.
    run(&[
        "docs",
        &url,
        "find",
        &collection,
        r#"{"age": {"$bogus": 1}}"#,
    ])
    .code(1)
    .stderr_has("$bogus");
}

/// Drops a collection when dropped.
struct DropCollection {
    url: String,
    collection: String,
}

impl Drop for DropCollection {
    fn drop(&mut self) {
        let (url, collection) = (self.url.clone(), self.collection.clone());
        block_on(async move {
            if let Ok(db) = dbx::Dbx::connect(&url).await {
                if let Ok(docs) = db.docs() {
                    let _ = docs.collection(&collection).drop().await;
                }
                db.close().await;
            }
        });
    }
}
