//! Result cache conformance: cached reads of each capability, written once
//! and run on every backend that offers the capability, opened with
//! `cache=true`. What counts as a backend call is read from the database's
//! own `stats().operations` (every backend call is one operation), so "one
//! call" is measured, not assumed.

use crate::{expect_kind, prefix, table};
use dbx::cache::CachePolicy;
use dbx::serde_json::json;
use dbx::vector::{Distance, Point, Search};
use dbx::{Dbx, ErrorKind, FindOptions, params};
use std::time::Duration;

fn policy() -> CachePolicy {
    CachePolicy::ttl(Duration::from_secs(300))
}

fn ops(db: &Dbx) -> u64 {
    db.stats().operations
}

fn loads(db: &Dbx) -> u64 {
    db.cache().unwrap().stats().loads
}

async fn users(db: &Dbx, test: &str) -> String {
    let t = table(test);
    let sql = db.sql().unwrap();
    sql.execute(
        &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT NOT NULL)"),
        params![],
    )
    .await
    .unwrap();
    for (id, name) in [(1, "ada"), (2, "grace")] {
        sql.execute(
            &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
            params![id, name],
        )
        .await
        .unwrap();
    }
    t
}

async fn name_of(c: &dbx::cache::CachedSql, t: &str, id: i64) -> Option<String> {
    c.query_optional_as::<String>(&format!("SELECT name FROM {t} WHERE id = $1"), params![id])
        .await
        .unwrap()
}

/// A cached read is answered once by the database; writes through the same
/// database (plain statements and committed transactions) are read back.
pub async fn sql_reads_are_cached_and_writes_read_back(db: &Dbx) {
    let t = users(db, "cache_sql_ryw").await;
    let sql = db.sql().unwrap();
    let c = sql.cached(policy());
    let before = ops(db);
    for _ in 0..5 {
        assert_eq!(name_of(&c, &t, 1).await.as_deref(), Some("ada"));
    }
    assert_eq!(ops(db) - before, 1, "five reads, one query");
    let s = db.cache().unwrap().stats();
    assert!(s.hits >= 4, "{s:?}");

    sql.execute(
        &format!("UPDATE {t} SET name = $1 WHERE id = $2"),
        params!["lovelace", 1],
    )
    .await
    .unwrap();
    assert_eq!(name_of(&c, &t, 1).await.as_deref(), Some("lovelace"));
    sql.execute(&format!("DELETE FROM {t} WHERE id = $1"), params![1])
        .await
        .unwrap();
    assert_eq!(name_of(&c, &t, 1).await, None);
    // A missing row is a cached answer too; an insert replaces it.
    assert_eq!(name_of(&c, &t, 3).await, None);
    sql.execute(
        &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
        params![3, "hopper"],
    )
    .await
    .unwrap();
    assert_eq!(name_of(&c, &t, 3).await.as_deref(), Some("hopper"));
    let all: Vec<(i64, String)> = c
        .query_as(&format!("SELECT id, name FROM {t} ORDER BY id"), params![])
        .await
        .unwrap();
    assert_eq!(all, [(2, "grace".to_owned()), (3, "hopper".to_owned())]);

    // In a transaction: nothing is dropped before the commit, all of it after.
    assert_eq!(name_of(&c, &t, 2).await.as_deref(), Some("grace"));
    let mut tx = sql.begin().await.unwrap();
    tx.execute(
        &format!("UPDATE {t} SET name = $1 WHERE id = $2"),
        params!["g", 2],
    )
    .await
    .unwrap();
    assert_eq!(name_of(&c, &t, 2).await.as_deref(), Some("grace"));
    tx.commit().await.unwrap();
    assert_eq!(name_of(&c, &t, 2).await.as_deref(), Some("g"));
    // A rolled-back transaction changed nothing: the entry stays.
    assert_eq!(name_of(&c, &t, 2).await.as_deref(), Some("g"));
    let before = loads(db);
    let mut tx = sql.begin().await.unwrap();
    tx.execute(
        &format!("UPDATE {t} SET name = $1 WHERE id = $2"),
        params!["x", 2],
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(name_of(&c, &t, 2).await.as_deref(), Some("g"));
    assert_eq!(loads(db), before, "the read after the rollback was a hit");
    // A script may write anything: every SQL entry goes.
    sql.execute_script(&format!(
        "UPDATE {t} SET name = 'script' WHERE id = 2; SELECT 1"
    ))
    .await
    .unwrap();
    assert_eq!(name_of(&c, &t, 2).await.as_deref(), Some("script"));
    sql.execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Statements that are not plain reads run uncached, every time, and the
/// writes among them drop what they change.
pub async fn sql_writes_and_volatile_reads_are_never_cached(db: &Dbx) {
    let t = users(db, "cache_sql_bypass").await;
    let c = db.sql().unwrap().cached(policy());
    assert_eq!(name_of(&c, &t, 1).await.as_deref(), Some("ada"));
    let bypasses = db.cache().unwrap().stats().bypasses;
    // A write through the cached handle runs (twice: never cached) ...
    for n in ["a1", "a2"] {
        let rows = c
            .query(
                &format!("UPDATE {t} SET name = $1 WHERE id = $2 RETURNING name"),
                params![n, 1],
            )
            .await
            .unwrap();
        assert_eq!(rows[0].get::<String>(0).unwrap(), n);
    }
    // ... and drops the table's entries.
    assert_eq!(name_of(&c, &t, 1).await.as_deref(), Some("a2"));
    let before = ops(db);
    let volatile = format!("SELECT name, CURRENT_TIMESTAMP AS at FROM {t} WHERE id = $1");
    c.query(&volatile, params![1]).await.unwrap();
    c.query(&volatile, params![1]).await.unwrap();
    assert_eq!(ops(db) - before, 2, "a clock read is never cached");
    assert_eq!(db.cache().unwrap().stats().bypasses - bypasses, 4);
    db.sql()
        .unwrap()
        .execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Injection strings are parameters: stored and cached verbatim, and they
/// never reach the statement text or the cache's own keys as code.
pub async fn sql_injection_strings_are_cached_as_data(db: &Dbx) {
    let t = users(db, "cache_sql_inject").await;
    let sql = db.sql().unwrap();
    let c = sql.cached(policy());
    let evil = format!("x'); DROP TABLE {t}; --");
    sql.execute(
        &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
        params![7, evil.clone()],
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let id: Option<i64> = c
            .query_optional_as(
                &format!("SELECT id FROM {t} WHERE name = $1"),
                params![evil.clone()],
            )
            .await
            .unwrap();
        assert_eq!(id, Some(7));
        assert_eq!(name_of(&c, &t, 7).await.as_deref(), Some(evil.as_str()));
    }
    let n: i64 = sql
        .query_one_as(&format!("SELECT count(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 3, "the table is intact");
    sql.execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// 1,000 concurrent reads of one missing key make one database call.
pub async fn sql_concurrent_misses_make_one_query(db: &Dbx) {
    let t = users(db, "cache_sql_stampede").await;
    let c = db.sql().unwrap().cached(policy());
    let q = format!("SELECT name FROM {t} WHERE id = $1");
    let before = ops(db);
    let loads_before = loads(db);
    let p = params![2];
    let reads = (0..1000).map(|_| c.query_one_as::<String>(&q, p));
    let all = futures_util::future::join_all(reads).await;
    assert!(all.iter().all(|r| r.as_deref().ok() == Some("grace")));
    assert_eq!(ops(db) - before, 1, "one query for 1,000 reads");
    assert_eq!(loads(db) - loads_before, 1);
    db.sql()
        .unwrap()
        .execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Gets are cached, including misses; every kind of write is read back.
pub async fn kv_gets_are_cached_and_writes_read_back(db: &Dbx) {
    let p = prefix("cache_kv");
    let kv = db.kv().unwrap();
    let c = kv.cached(policy());
    let k = format!("{p}a");
    assert_eq!(c.get(&k).await.unwrap(), None);
    let before = ops(db);
    assert_eq!(c.get(&k).await.unwrap(), None, "a miss is cached");
    assert_eq!(ops(db), before);
    kv.set(&k, "1", None).await.unwrap();
    assert_eq!(c.get(&k).await.unwrap().as_deref(), Some(&b"1"[..]));
    let before = ops(db);
    for _ in 0..5 {
        assert_eq!(c.get(&k).await.unwrap().as_deref(), Some(&b"1"[..]));
    }
    assert_eq!(ops(db), before, "hits make no call");
    kv.incr(&k, 41).await.unwrap();
    assert_eq!(c.get(&k).await.unwrap().as_deref(), Some(&b"42"[..]));
    kv.mset(&[(k.as_str(), "m")], None).await.unwrap();
    assert_eq!(c.get(&k).await.unwrap().as_deref(), Some(&b"m"[..]));
    let evil = "'; DEL *; --\0\u{1F600}";
    kv.set(&k, evil, None).await.unwrap();
    assert_eq!(c.get(&k).await.unwrap().as_deref(), Some(evil.as_bytes()));
    kv.set_json(&k, &json!({"n": 1}), None).await.unwrap();
    assert_eq!(
        c.get_json::<dbx::serde_json::Value>(&k).await.unwrap(),
        Some(json!({"n": 1}))
    );
    let other = format!("{p}b");
    kv.set(&other, "b", None).await.unwrap();
    assert_eq!(
        c.mget(&[k.as_str(), other.as_str()]).await.unwrap(),
        vec![Some(br#"{"n":1}"#.to_vec()), Some(b"b".to_vec())]
    );
    kv.delete(&other).await.unwrap();
    assert_eq!(
        c.mget(&[k.as_str(), other.as_str()]).await.unwrap()[1],
        None
    );
    assert!(kv.delete(&k).await.unwrap());
    assert_eq!(c.get(&k).await.unwrap(), None);
    expect_kind(c.get("").await, ErrorKind::InvalidInput);
}

/// 1,000 concurrent gets of one key make one call.
pub async fn kv_concurrent_misses_make_one_call(db: &Dbx) {
    let k = format!("{}hot", prefix("cache_kv_stampede"));
    let kv = db.kv().unwrap();
    kv.set(&k, "hot", None).await.unwrap();
    let c = kv.cached(policy());
    let before = ops(db);
    let all = futures_util::future::join_all((0..1000).map(|_| c.get(&k))).await;
    assert!(
        all.iter()
            .all(|r| r.as_ref().unwrap().as_deref() == Some(&b"hot"[..]))
    );
    assert_eq!(ops(db) - before, 1, "one call for 1,000 gets");
    kv.delete(&k).await.unwrap();
}

/// Finds and counts are cached; writes to the collection are read back.
pub async fn docs_finds_are_cached_and_writes_read_back(db: &Dbx) {
    let coll = db.docs().unwrap().collection(&table("cache_docs"));
    coll.insert_many(&[json!({"n": 1, "tag": "a"}), json!({"n": 2, "tag": "b"})])
        .await
        .unwrap();
    let c = coll.cached(policy());
    let opts = || {
        FindOptions::new()
            .sort(json!({"n": 1}))
            .projection(json!({"_id": 0}))
    };
    let before = ops(db);
    for _ in 0..3 {
        let docs = c.find_all(&json!({}), opts()).await.unwrap();
        assert_eq!(
            docs,
            [json!({"n": 1, "tag": "a"}), json!({"n": 2, "tag": "b"})]
        );
    }
    assert_eq!(c.count(&json!({"tag": "a"})).await.unwrap(), 1);
    assert_eq!(c.count(&json!({"tag": "a"})).await.unwrap(), 1);
    assert_eq!(ops(db) - before, 2, "one find, one count");
    coll.insert_one(&json!({"n": 3, "tag": "a"})).await.unwrap();
    assert_eq!(c.count(&json!({"tag": "a"})).await.unwrap(), 2);
    assert_eq!(c.find_all(&json!({}), opts()).await.unwrap().len(), 3);
    coll.update_one(&json!({"n": 1}), &json!({"$set": {"tag": "z"}}))
        .await
        .unwrap();
    let one = c.find_one(&json!({"n": 1})).await.unwrap().unwrap();
    assert_eq!(one["tag"], "z");
    coll.delete_many(&json!({"tag": "a"})).await.unwrap();
    assert_eq!(c.count(&json!({"tag": "a"})).await.unwrap(), 0);
    let evil = "'; db.dropDatabase(); '$where";
    assert_eq!(c.count(&json!({"q": evil})).await.unwrap(), 0);
    coll.drop().await.unwrap();
    assert_eq!(
        c.find_all(&json!({}), FindOptions::new()).await.unwrap(),
        Vec::<dbx::serde_json::Value>::new()
    );
}

/// Searches are cached; upserts and deletes are read back.
pub async fn vector_searches_are_cached_and_writes_read_back(db: &Dbx) {
    let coll = db.vectors().unwrap().collection(&table("cache_vec"));
    coll.create(3, Distance::Cosine).await.unwrap();
    coll.upsert(&[
        Point::new(1u64, vec![1.0, 0.0, 0.0]),
        Point::new(2u64, vec![0.0, 1.0, 0.0]),
    ])
    .await
    .unwrap();
    let c = coll.cached(policy());
    let query = Search::new(vec![0.0, 0.9, 0.1], 1);
    let before = ops(db);
    for _ in 0..3 {
        let hits = c.search(&query).await.unwrap();
        assert_eq!(hits[0].id, 2u64.into());
    }
    assert_eq!(ops(db) - before, 1, "one search");
    coll.upsert_one(Point::new(3u64, vec![0.0, 0.9, 0.1]))
        .await
        .unwrap();
    assert_eq!(c.search(&query).await.unwrap()[0].id, 3u64.into());
    coll.delete(&[3u64.into()]).await.unwrap();
    assert_eq!(c.search(&query).await.unwrap()[0].id, 2u64.into());
    coll.drop().await.unwrap();
}

/// Bounded reads are cached per bound, keep the bound and the truncated
/// flag, and are dropped by writes like whole results.
pub async fn sql_bounded_reads_are_cached_per_bound(db: &Dbx) {
    let t = users(db, "cache_sql_bounded").await;
    let sql = db.sql().unwrap();
    let c = sql.cached(policy());
    let q = format!("SELECT name FROM {t} ORDER BY id");
    let names = |b: &dbx::BoundedRows| -> Vec<String> {
        b.rows.iter().map(|r| r.get::<String>(0).unwrap()).collect()
    };
    let before = ops(db);
    for _ in 0..3 {
        let b = c.query_bounded(&q, params![], 1).await.unwrap();
        assert_eq!((names(&b), b.truncated), (vec!["ada".to_owned()], true));
    }
    assert_eq!(ops(db) - before, 1, "three reads, one query");
    // Another bound is another entry, not a cut of the first.
    let b = c.query_bounded(&q, params![], 2).await.unwrap();
    assert_eq!(
        (names(&b), b.truncated),
        (vec!["ada".to_owned(), "grace".to_owned()], false)
    );
    let b = c.query_bounded(&q, params![], 0).await.unwrap();
    assert_eq!((b.rows.len(), b.truncated), (0, true));
    assert_eq!(ops(db) - before, 3);
    // A write drops them.
    sql.execute(&format!("DELETE FROM {t} WHERE id = $1"), params![1])
        .await
        .unwrap();
    let b = c.query_bounded(&q, params![], 1).await.unwrap();
    assert_eq!((names(&b), b.truncated), (vec!["grace".to_owned()], false));
    // Errors are typed and not cached.
    expect_kind(
        c.query_bounded("SELECT * FROM no_such_table_cb", params![], 1)
            .await,
        ErrorKind::Query,
    );
    sql.execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Cached SQL reads on a backend with the SQL capability.
#[macro_export]
macro_rules! cache_sql_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            cache,
            [
                sql_reads_are_cached_and_writes_read_back,
                sql_writes_and_volatile_reads_are_never_cached,
                sql_injection_strings_are_cached_as_data,
                sql_concurrent_misses_make_one_query,
                sql_bounded_reads_are_cached_per_bound,
            ]
        );
    };
}

/// Cached gets on a backend with the key-value capability.
#[macro_export]
macro_rules! cache_kv_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            cache,
            [
                kv_gets_are_cached_and_writes_read_back,
                kv_concurrent_misses_make_one_call
            ]
        );
    };
}

/// Cached finds on a backend with the document capability.
#[macro_export]
macro_rules! cache_docs_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            cache,
            [docs_finds_are_cached_and_writes_read_back]
        );
    };
}

/// Cached searches on a backend with the vector capability.
#[macro_export]
macro_rules! cache_vector_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            cache,
            [vector_searches_are_cached_and_writes_read_back]
        );
    };
}
