//! Key-value on SQLite, Redis and PostgreSQL; vectors on SQLite (and
//! Qdrant when configured); documents on MongoDB when configured, and the
//! `unsupported` problem where a backend lacks a capability.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn kv_on_sqlite_redis_and_postgres() {
    let extra = format!(
        "[databases.lite]\nurl = \"sqlite:kv.db\"\n[databases.red]\nurl = \"{}\"\n[databases.pg]\nurl = \"{}\"\n",
        redis_url(),
        postgres_url()
    );
    let gw = Gateway::start(&extra).await;
    let admin = token("ada", &["admin"]);
    let prefix = unique("gwkv");
    for db in ["lite", "red", "pg"] {
        let key = |k: &str| format!("/v1/db/{db}/kv/{prefix}:{k}");
        let (s, v) = gw
            .send(
                Method::PUT,
                &key("a"),
                Some(&admin),
                Some(&json!({"value": "hello"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{db}: {v}");
        let (s, v) = gw.get(&key("a"), &admin).await;
        assert_eq!(s, StatusCode::OK, "{db}");
        assert_eq!(v["value"], "hello", "{db}");
        // Bytes that are not UTF-8 travel as base64.
        gw.send(
            Method::PUT,
            &key("bin"),
            Some(&admin),
            Some(&json!({"value_base64": "/wAB"})),
        )
        .await;
        let (_, v) = gw.get(&key("bin"), &admin).await;
        assert_eq!(v["value_base64"], "/wAB", "{db}");
        // if_absent.
        let (_, v) = gw
            .send(
                Method::PUT,
                &key("a"),
                Some(&admin),
                Some(&json!({"value": "x", "if_absent": true})),
            )
            .await;
        assert_eq!(v["stored"], false, "{db}");
        // Counters.
        let v = gw
            .ok(&format!("{}/incr", key("n")), &admin, json!({"by": 5}))
            .await;
        assert_eq!(v["value"], 5, "{db}");
        let v = gw
            .ok(&format!("{}/incr", key("n")), &admin, json!({}))
            .await;
        assert_eq!(v["value"], 6, "{db}");
        // A TTL is accepted.
        let (s, _) = gw
            .send(
                Method::PUT,
                &key("t"),
                Some(&admin),
                Some(&json!({"value": "ttl", "ttl_ms": 600000})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        // Scan by prefix.
        let (s, v) = gw
            .get(&format!("/v1/db/{db}/kv?prefix={prefix}:"), &admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{db}: {v}");
        let keys: Vec<String> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        let want: Vec<String> = ["a", "bin", "n", "t"]
            .iter()
            .map(|k| format!("{prefix}:{k}"))
            .collect();
        assert_eq!(keys, want, "{db}");
        let (_, v) = gw
            .get(&format!("/v1/db/{db}/kv?prefix={prefix}:&limit=2"), &admin)
            .await;
        assert_eq!(v["keys"].as_array().unwrap().len(), 2);
        assert_eq!(v["truncated"], true);
        // Delete, then 404.
        for k in ["a", "bin", "n", "t"] {
            let (s, v) = gw.send(Method::DELETE, &key(k), Some(&admin), None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v["deleted"], true, "{db} {k}");
        }
        let (s, v) = gw.get(&key("a"), &admin).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["kind"], "not_found");
        // Incrementing text is dbx's wrong_type, as a 409 problem.
        gw.send(
            Method::PUT,
            &key("s"),
            Some(&admin),
            Some(&json!({"value": "abc"})),
        )
        .await;
        let (s, v) = gw
            .post(&format!("{}/incr", key("s")), &admin, json!({}))
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{db}: {v}");
        assert_eq!(v["kind"], "wrong_type");
        gw.send(Method::DELETE, &key("s"), Some(&admin), None).await;
    }
    // An unknown database is a 404 naming the configured ones.
    let (s, v) = gw.get("/v1/db/nope/kv/x", &admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["detail"].as_str().unwrap().contains("lite"), "{v}");
}

async fn vectors_on(gw: &Gateway, db: &str) {
    let admin = token("ada", &["admin"]);
    let coll = unique("gwvec");
    let base = format!("/v1/db/{db}/vectors/{coll}");
    let (s, v) = gw
        .send(
            Method::PUT,
            &base,
            Some(&admin),
            Some(&json!({"dimension": 3, "distance": "cosine"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{db}: {v}");
    assert_eq!(v["created"], true);
    let v = gw
        .ok(
            &format!("{base}/upsert"),
            &admin,
            json!({"points": [
                {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"color": "red"}},
                {"id": 2, "vector": [0.9, 0.1, 0.0], "payload": {"color": "blue"}},
                {"id": 3, "vector": [0.0, 0.0, 1.0], "payload": {"color": "red"}},
            ]}),
        )
        .await;
    assert_eq!(v["upserted"], 3);
    let v = gw
        .ok(
            &format!("{base}/search"),
            &admin,
            json!({"vector": [1.0, 0.0, 0.0], "limit": 2}),
        )
        .await;
    let ids: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "{db}: {v}");
    assert_eq!(v["points"][0]["payload"]["color"], "red");
    let v = gw
        .ok(
            &format!("{base}/search"),
            &admin,
            json!({"vector": [1.0, 0.0, 0.0], "limit": 5,
                   "filter": {"must": [{"key": "color", "match": {"value": "red"}}]}}),
        )
        .await;
    let ids: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3], "{db}: {v}");
    let v = gw
        .ok(&format!("{base}/delete"), &admin, json!({"ids": [1]}))
        .await;
    assert_eq!(v["deleted"], 1);
    let v = gw
        .ok(
            &format!("{base}/search"),
            &admin,
            json!({"vector": [1.0, 0.0, 0.0], "limit": 5}),
        )
        .await;
    assert_eq!(v["points"].as_array().unwrap().len(), 2);
    // A malformed filter names the problem.
    let (s, v) = gw
        .post(
            &format!("{base}/search"),
            &admin,
            json!({"vector": [1.0, 0.0, 0.0], "filter": {"nope": []}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("filter"), "{v}");
    // The reader has no vectors grant.
    let (s, _) = gw
        .post(
            &format!("{base}/search"),
            &token("rita", &["reader"]),
            json!({"vector": [1.0, 0.0, 0.0]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn vectors_on_sqlite_and_qdrant() {
    let mut extra = "[databases.lite]\nurl = \"sqlite:vec.db\"\n".to_owned();
    let qdrant = std::env::var("DBX_TEST_QDRANT_URL").ok();
    if let Some(q) = &qdrant {
        extra.push_str(&format!("[databases.qd]\nurl = \"{q}\"\n"));
    }
    let gw = Gateway::start(&extra).await;
    vectors_on(&gw, "lite").await;
    match qdrant {
        Some(_) => vectors_on(&gw, "qd").await,
        None => skipped("vector endpoints on Qdrant: DBX_TEST_QDRANT_URL is not set"),
    }
}

#[tokio::test]
async fn docs_on_mongo_and_unsupported_elsewhere() {
    let mut extra = format!(
        "[databases.lite]\nurl = \"sqlite::memory:\"\n[databases.pg]\nurl = \"{}\"\n",
        postgres_url()
    );
    let mongo = std::env::var("DBX_TEST_MONGO_URL").ok();
    if let Some(m) = &mongo {
        extra.push_str(&format!("[databases.mg]\nurl = \"{m}\"\n"));
    }
    let gw = Gateway::start(&extra).await;
    let admin = token("ada", &["admin"]);
    // SQLite and PostgreSQL have no document capability: 501, kind unsupported.
    for db in ["lite", "pg"] {
        let (s, v) = gw
            .post(&format!("/v1/db/{db}/docs/c/count"), &admin, json!({}))
            .await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{db}: {v}");
        assert_eq!(v["kind"], "unsupported");
    }
    let Some(_) = mongo else {
        skipped("document endpoints on MongoDB: DBX_TEST_MONGO_URL is not set");
        return;
    };
    let coll = unique("gwdocs");
    let base = format!("/v1/db/mg/docs/{coll}");
    let v = gw
        .ok(
            &format!("{base}/insert"),
            &admin,
            json!({"documents": [
                {"name": "ada", "age": 36, "note": "'; db.dropDatabase(); '"},
                {"name": "grace", "age": 45},
                {"name": "alan", "age": 41},
            ]}),
        )
        .await;
    assert_eq!(v["ids"].as_array().unwrap().len(), 3);
    let v = gw
        .ok(
            &format!("{base}/count"),
            &admin,
            json!({"filter": {"age": {"$gt": 40}}}),
        )
        .await;
    assert_eq!(v["count"], 2);
    let v = gw
        .ok(
            &format!("{base}/find"),
            &admin,
            json!({"filter": {}, "sort": {"age": 1}, "projection": {"_id": 0, "name": 1}, "limit": 2}),
        )
        .await;
    assert_eq!(v["documents"], json!([{"name": "ada"}, {"name": "alan"}]));
    let v = gw
        .ok(
            &format!("{base}/find"),
            &admin,
            json!({"filter": {"name": "ada"}}),
        )
        .await;
    assert_eq!(v["documents"][0]["note"], "'; db.dropDatabase(); '");
    let v = gw
        .ok(
            &format!("{base}/update"),
            &admin,
            json!({"filter": {"name": "ada"}, "update": {"$inc": {"age": 1}}}),
        )
        .await;
    assert_eq!(v["matched"], 1);
    assert_eq!(v["modified"], 1);
    let v = gw
        .ok(
            &format!("{base}/delete"),
            &admin,
            json!({"filter": {"age": {"$gt": 0}}, "many": true}),
        )
        .await;
    assert_eq!(v["deleted"], 3);
}
