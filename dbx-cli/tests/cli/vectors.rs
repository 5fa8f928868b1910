//! `dbx vectors` on SQLite (always) and Qdrant (when `DBX_TEST_QDRANT_URL`
//! is set).

use crate::common::*;
use dbx::serde_json::json;
use dbx::{Distance, Point};

/// Create `collection` with four points (3 dimensions, cosine).
fn seed(url: &str, collection: &str) {
    block_on(async {
        let db = dbx::Dbx::connect(url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        let c = db.vectors().unwrap().collection(collection);
        c.create(3, Distance::Cosine).await.unwrap();
        let point = |id: u64, v: [f32; 3], title: &str, lang: &str| {
            Point::new(id, v.to_vec())
                .with_payload(json!({"title": title, "lang": lang}))
                .unwrap()
        };
        c.upsert(&[
            point(1, [0.9, 0.1, 0.0], "Rust in production", "en"),
            point(2, [0.8, 0.3, 0.1], "Async Rust", "en"),
            point(3, [0.1, 0.9, 0.2], "Cocina", "es"),
            point(4, [0.0, 0.2, 0.9], "Gardening", "en"),
        ])
        .await
        .unwrap();
        db.close().await;
    });
}

fn drop_collection(url: &str, collection: &str) {
    block_on(async {
        if let Ok(db) = dbx::Dbx::connect(url).await {
            if let Ok(v) = db.vectors() {
                let _ = v.collection(collection).drop().await;
            }
            db.close().await;
        }
    });
}

fn search_checks(url: &str, collection: &str) {
    let r = run(&[
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[1, 0.2, 0]",
        "--limit",
        "3",
    ]);
    let out = r.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].contains("ID") && lines[0].contains("SCORE") && lines[0].contains("PAYLOAD"));
    assert!(
        lines[2].trim_start().starts_with("1 ") && lines[2].contains("Rust in production"),
        "{out}"
    );
    assert!(lines[3].trim_start().starts_with("2 "), "{out}");
    assert_eq!(lines[5], "(3 points)");

    let v = run(&[
        "--json",
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[1, 0.2, 0]",
        "-n",
        "2",
    ])
    .json();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["payload"]["title"], "Rust in production");
    let (s0, s1) = (
        items[0]["score"].as_f64().unwrap(),
        items[1]["score"].as_f64().unwrap(),
    );
    assert!(s0 >= s1 && s0 <= 1.0 && s1 > 0.5, "{v}");
    assert!(items[0].get("vector").is_none());

    // A payload filter, a threshold, vectors.
    let v = run(&[
        "--json",
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[1, 0.2, 0]",
        "--filter",
        r#"{"must": [{"key": "lang", "match": {"value": "es"}}]}"#,
        "--with-vectors",
    ])
    .json();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["id"], 3);
    assert_eq!(v[0]["vector"].as_array().unwrap().len(), 3);
    let v = run(&[
        "--json",
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[0, 0, 1]",
        "--score-threshold",
        "0.9",
    ])
    .json();
    assert_eq!(
        v,
        json!([{"id": 4, "score": v[0]["score"], "payload": {"title": "Gardening", "lang": "en"}}])
    );

    // --exact and --hnsw-ef give the same points here (4 points: every
    // backend answers them exactly); a candidate list out of range is
    // dbx's InvalidInput (exit 1).
    let plain = run(&[
        "--json",
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[1, 0.2, 0]",
    ])
    .json();
    for extra in [
        &["--exact"][..],
        &["--hnsw-ef", "64"],
        &["--exact", "--hnsw-ef", "1"],
    ] {
        let mut args = vec![
            "--json",
            "vectors",
            url,
            "search",
            collection,
            "--vector",
            "[1, 0.2, 0]",
        ];
        args.extend_from_slice(extra);
        assert_eq!(run(&args).json(), plain, "{extra:?}");
    }
    run(&[
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[1, 0.2, 0]",
        "--hnsw-ef",
        "0",
    ])
    .code(1)
    .stderr_has("hnsw_ef must be between 1 and 10000");

    // list and info.
    let out = run(&["vectors", url, "list"]).ok().to_owned();
    assert!(out.lines().any(|l| l == collection), "{out}");
    let v = run(&["--json", "vectors", url, "info", collection]).json();
    assert_eq!(v["dimension"], 3);
    assert_eq!(v["distance"], "cosine");
    assert_eq!(v["points"], 4);

    // Errors: the wrong dimension and a missing collection are dbx's
    // errors (exit 1); a malformed filter is refused before connecting (2).
    run(&["vectors", url, "search", collection, "--vector", "[1, 2]"])
        .code(1)
        .stderr_has("expected 3, got 2");
    run(&[
        "vectors",
        url,
        "search",
        "no_such_collection_x",
        "--vector",
        "[1, 2, 3]",
    ])
    .code(1)
    .stderr_has("not_found");
    run(&["vectors", url, "info", "no_such_collection_x"])
        .code(1)
        .stderr_has("not found");
    run(&[
        "vectors",
        url,
        "search",
        collection,
        "--vector",
        "[1, 2, 3]",
        "--filter",
        r#"{"must": 3}"#,
    ])
    .code(2)
    .stderr_has("--filter");
}

#[test]
fn sqlite_vector_search() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("v.db").display());
    seed(&url, "articles");
    search_checks(&url, "articles");
}

#[test]
fn qdrant_vector_search() {
    let Some(url) = qdrant_url() else {
        skipped(
            "no Qdrant (set DBX_TEST_QDRANT_URL, e.g. from scripts/start-qdrant.sh): dbx vectors on Qdrant",
        );
        return;
    };
    let collection = unique("articles");
    seed(&url, &collection);
    search_checks(&url, &collection);
    drop_collection(&url, &collection);
}
