//! The result cache beyond one database: writes it cannot see (another
//! client), a shared tier on real Redis used by two instances, a tier that
//! dies, and bad settings. The per-capability behaviour is the cache
//! conformance suite, run in each backend's module.

use dbx::cache::CachePolicy;
use dbx::{Dbx, ErrorKind, params};
use dbx_tests::fault::RedisServer;
use dbx_tests::{expect_kind, table};
use std::time::{Duration, Instant};

fn policy() -> CachePolicy {
    CachePolicy::ttl(Duration::from_secs(300))
}

async fn create(db: &Dbx, test: &str) -> String {
    let t = table(test);
    db.sql()
        .unwrap()
        .execute_script(&format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO {t} VALUES (1, 'ada'), (2, 'grace')"
        ))
        .await
        .unwrap();
    t
}

async fn name(c: &dbx::cache::CachedSql, t: &str, id: i64) -> String {
    c.query_one_as(&format!("SELECT name FROM {t} WHERE id = $1"), params![id])
        .await
        .unwrap()
}

async fn rename(db: &Dbx, t: &str, id: i64, to: &str) {
    db.sql()
        .unwrap()
        .execute(
            &format!("UPDATE {t} SET name = $1 WHERE id = $2"),
            params![to, id],
        )
        .await
        .unwrap();
}

/// What another client writes is not seen until the TTL, or until the
/// table or a tag is invalidated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_by_other_clients_are_dropped_by_table_or_tag() {
    let db = crate::postgres::connect_cached().await;
    let other = Dbx::connect(&crate::postgres::url("").await).await.unwrap();
    let t = create(&db, "cache_other").await;
    let tagged = db.sql().unwrap().cached(policy().tag("people"));
    let plain = db.sql().unwrap().cached(policy());
    assert_eq!(name(&tagged, &t, 1).await, "ada");
    assert_eq!(name(&plain, &t, 2).await, "grace");
    rename(&other, &t, 1, "ADA").await;
    rename(&other, &t, 2, "GRACE").await;
    assert_eq!(
        name(&tagged, &t, 1).await,
        "ada",
        "another client's write is not seen"
    );
    db.cache().unwrap().invalidate_tag("people").await;
    assert_eq!(name(&tagged, &t, 1).await, "ADA");
    assert_eq!(name(&plain, &t, 2).await, "grace");
    // Case-insensitive, schema-qualified names work too.
    let qualified = format!("some_schema.\"{}\"", t.to_uppercase());
    db.cache().unwrap().invalidate_table(&qualified).await;
    assert_eq!(name(&plain, &t, 2).await, "GRACE");
    db.sql()
        .unwrap()
        .execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Keys the tier holds under `namespace`.
async fn tier_keys(tier: &Dbx, namespace: &str) -> Vec<String> {
    tier.kv()
        .unwrap()
        .scan_keys(&format!("dbx:cache:{namespace}:"))
        .await
        .unwrap()
}

async fn drop_namespace(tier: &Dbx, namespace: &str) {
    for k in tier_keys(tier, namespace).await {
        tier.kv().unwrap().delete(&k).await.unwrap();
    }
}

/// Two instances of a service share results and invalidations through a
/// Redis tier: what one loaded the other reads without a query; what one
/// writes the other reads back within `cache_sync`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_results_and_invalidations_through_redis() {
    let tier = Dbx::connect(&crate::redis::url()).await.unwrap();
    let namespace = table("cache_tier");
    let url = crate::postgres::url(&format!("cache_sync=100ms&cache_namespace={namespace}")).await;
    let a = Dbx::builder(&url)
        .shared_cache(tier.kv().unwrap())
        .connect()
        .await
        .unwrap();
    let b = Dbx::builder(&url)
        .shared_cache(tier.kv().unwrap())
        .connect()
        .await
        .unwrap();
    let t = create(&a, "cache_tier").await;
    let (ca, cb) = (
        a.sql().unwrap().cached(policy()),
        b.sql().unwrap().cached(policy()),
    );

    assert_eq!(name(&ca, &t, 1).await, "ada");
    // The result reaches the tier in the background; wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tier_keys(&tier, &namespace)
        .await
        .iter()
        .any(|k| k.contains(":e:"))
    {
        assert!(Instant::now() < deadline, "nothing reached the tier");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = b.stats().operations;
    assert_eq!(name(&cb, &t, 1).await, "ada");
    assert_eq!(
        b.stats().operations,
        before,
        "b asked the tier, not PostgreSQL"
    );
    assert_eq!(b.cache().unwrap().stats().tier_hits, 1);

    // a writes: a reads its write at once; b within cache_sync.
    rename(&a, &t, 1, "lovelace").await;
    assert_eq!(name(&ca, &t, 1).await, "lovelace");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(name(&cb, &t, 1).await, "lovelace");
    // And an explicit invalidation by b reaches a.
    assert_eq!(name(&ca, &t, 2).await, "grace");
    rename(&tier_less(&url).await, &t, 2, "hopper").await;
    assert_eq!(name(&ca, &t, 2).await, "grace");
    b.cache().unwrap().invalidate_table(&t).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(name(&ca, &t, 2).await, "hopper");

    // Tier values are compact: the cached row is a few dozen bytes.
    for k in tier_keys(&tier, &namespace).await {
        if k.contains(":e:") {
            let v = tier
                .kv()
                .unwrap()
                .get(&k)
                .await
                .unwrap()
                .unwrap_or_default();
            assert!(v.len() < 200, "{k}: {} bytes", v.len());
        }
    }
    a.sql()
        .unwrap()
        .execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
    drop_namespace(&tier, &namespace).await;
}

/// The same database without a cache (another client).
async fn tier_less(url: &str) -> Dbx {
    let url = url.replace("cache_sync=100ms&", "cache=false&");
    Dbx::connect(&url).await.unwrap()
}

/// A tier that dies takes no read down: reads go to the database, writes
/// still succeed, and when the tier is back it is used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_tier_sends_reads_to_the_database() {
    let server = RedisServer::start(&[]);
    let tier = Dbx::connect(&format!(
        "redis://127.0.0.1:{}?connect_timeout=200ms&timeout=200ms",
        server.port()
    ))
    .await
    .unwrap();
    let namespace = table("cache_dead");
    let url = crate::postgres::url(&format!("cache_namespace={namespace}&cache_sync=50ms")).await;
    let db = Dbx::builder(&url)
        .shared_cache(tier.kv().unwrap())
        .connect()
        .await
        .unwrap();
    let t = create(&db, "cache_dead").await;
    let c = db.sql().unwrap().cached(policy());
    assert_eq!(name(&c, &t, 1).await, "ada");

    server.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for i in 0..20 {
        let id = 1 + (i % 2);
        let expected = if id == 1 { "ada" } else { "grace" };
        assert_eq!(name(&c, &t, id).await, expected);
    }
    rename(&db, &t, 1, "still writes").await;
    assert_eq!(name(&c, &t, 1).await, "still writes");
    let s = db.cache().unwrap().stats();
    assert!(s.tier_errors > 0, "{s:?}");
    println!(
        "20 reads and a write with the tier down took {:?} ({s:?})",
        started.elapsed()
    );

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        rename(&db, &t, 2, "back").await;
        let errors = db.cache().unwrap().stats().tier_errors;
        assert_eq!(name(&c, &t, 2).await, "back");
        if db.cache().unwrap().stats().tier_errors == errors {
            break;
        }
        assert!(Instant::now() < deadline, "the tier was not used again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.sql()
        .unwrap()
        .execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Bad settings fail at connect with InvalidConfig naming the setting.
#[tokio::test]
async fn bad_cache_settings_are_invalid_config() {
    for (params, setting) in [
        ("cache_max_entries=0", "cache_max_entries"),
        ("cache_max_bytes=0", "cache_max_bytes"),
        ("cache_max_bytes=-1MiB", "cache_max_bytes"),
        ("cache_ttl=-5s", "cache_ttl"),
        ("cache_ttl=0s", "cache_ttl"),
        ("cache_swr=soon", "cache_swr"),
        ("cache_tier_timeout=0ms", "cache_tier_timeout"),
        ("cache_namespace=a:b", "cache_namespace"),
        ("cache=perhaps", "cache"),
    ] {
        let e = expect_kind(
            Dbx::connect(&format!("sqlite::memory:?{params}")).await,
            ErrorKind::InvalidConfig,
        );
        assert!(e.to_string().contains(setting), "{params}: {e}");
    }
    let plain = Dbx::connect("sqlite::memory:").await.unwrap();
    let e = expect_kind(plain.cache().map(drop), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("cache=true"), "{e}");
    let tier = Dbx::connect("sqlite::memory:").await.unwrap();
    let e = expect_kind(
        Dbx::builder("sqlite::memory:?cache=false")
            .shared_cache(tier.kv().unwrap())
            .connect()
            .await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("cache"), "{e}");
    let db = Dbx::connect("sqlite::memory:?cache=true").await.unwrap();
    db.cache()
        .unwrap()
        .set_shared_tier(tier.kv().unwrap().clone())
        .unwrap();
    expect_kind(
        db.cache()
            .unwrap()
            .set_shared_tier(tier.kv().unwrap().clone()),
        ErrorKind::InvalidConfig,
    );
}
