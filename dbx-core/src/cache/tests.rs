//! The cache's own logic (freshness, one load per key, stale-while-
//! revalidate, invalidation, errors, bad policies), driven by a scripted
//! key-value driver on Tokio's paused clock. The driver stands in for no
//! database behaviour: it counts calls, answers with a value the test
//! sets, and takes the time the test asks. The same behaviour against real
//! servers is in the `tests` crate (`suite/cache.rs`).

use super::*;
use crate::driver::Backend;
use crate::kv::{KvStore, ScanPage, Ttl};
use crate::{ConnectOptions, Database, ErrorKind};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
struct State {
    value: Mutex<Option<Vec<u8>>>,
    fail: Mutex<bool>,
    delay: Mutex<Duration>,
    gets: AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<State>);

impl Fake {
    fn set(&self, v: &str) {
        *self.0.value.lock().unwrap() = Some(v.as_bytes().to_vec());
    }
    fn gets(&self) -> usize {
        self.0.gets.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KvStore for Fake {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>> {
        self.0.gets.fetch_add(1, Ordering::SeqCst);
        let delay = *self.0.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if *self.0.fail.lock().unwrap() {
            return Err(Error::new(ErrorKind::Query, "scripted failure"));
        }
        #[allow(clippy::panic)]
        if self.0.value.lock().unwrap().as_deref() == Some(b"panic") {
            panic!("scripted panic");
        }
        Ok(self.0.value.lock().unwrap().clone())
    }
    async fn set(&self, _: &str, value: &[u8], _: Option<Duration>) -> Result<()> {
        *self.0.value.lock().unwrap() = Some(value.to_vec());
        Ok(())
    }
    async fn set_nx(&self, _: &str, _: &[u8], _: Option<Duration>) -> Result<bool> {
        Ok(false)
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        Ok(self.0.value.lock().unwrap().take().is_some())
    }
    async fn exists(&self, _: &str) -> Result<bool> {
        Ok(true)
    }
    async fn incr(&self, _: &str, _: i64) -> Result<i64> {
        Ok(1)
    }
    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(vec![None; keys.len()])
    }
    async fn mset(&self, _: &[(&str, &[u8])], _: Option<Duration>) -> Result<()> {
        Ok(())
    }
    async fn expire(&self, _: &str, _: Duration) -> Result<bool> {
        Ok(true)
    }
    async fn ttl(&self, _: &str) -> Result<Ttl> {
        Ok(Ttl::Persistent)
    }
    async fn scan_page(&self, _: &str, _: Option<&str>, _: usize) -> Result<ScanPage> {
        Ok(ScanPage::default())
    }
}

#[async_trait]
impl Backend for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(Arc::new(self.clone()))
    }
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
    async fn close(&self) {}
}

fn db(fake: &Fake, params: &str) -> Database {
    let opts = ConnectOptions::from_url(&format!("fake://x?{params}")).unwrap();
    Database::new(Arc::new(fake.clone()), opts)
}

fn text(v: Option<Vec<u8>>) -> String {
    String::from_utf8(v.unwrap_or_default()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn fresh_for_the_ttl_then_loaded_again() {
    let fake = Fake::default();
    fake.set("v1");
    let db = db(&fake, "cache=true");
    let kv = db
        .kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(10)));
    assert_eq!(text(kv.get("k").await.unwrap()), "v1");
    fake.set("v2"); // behind dbx's back: the cache cannot know
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(text(kv.get("k").await.unwrap()), "v1");
    assert_eq!(fake.gets(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(text(kv.get("k").await.unwrap()), "v2");
    assert_eq!(fake.gets(), 2);
    let s = db.cache().unwrap().stats();
    assert_eq!((s.hits, s.misses, s.loads), (1, 2, 2), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_the_old_value_during_one_refresh() {
    let fake = Fake::default();
    fake.set("v1");
    let db = db(&fake, "cache=true");
    let policy = CachePolicy::ttl(Duration::from_secs(10)).swr(Duration::from_secs(20));
    let kv = db.kv().unwrap().cached(policy);
    kv.get("k").await.unwrap();
    fake.set("v2");
    *fake.0.delay.lock().unwrap() = Duration::from_secs(1);
    tokio::time::advance(Duration::from_secs(15)).await;
    // Stale: served at once, many times, while one refresh runs.
    for _ in 0..10 {
        assert_eq!(text(kv.get("k").await.unwrap()), "v1");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.gets(), 2, "one refresh");
    assert_eq!(text(kv.get("k").await.unwrap()), "v2");
    let s = db.cache().unwrap().stats();
    assert_eq!(s.stale_hits, 10, "{s:?}");
    // Past TTL + swr nothing stale is served: the read waits for a load.
    fake.set("v3");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(text(kv.get("k").await.unwrap()), "v3");
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_misses_make_one_backend_call() {
    let fake = Fake::default();
    fake.set("v");
    *fake.0.delay.lock().unwrap() = Duration::from_millis(50);
    let db = db(&fake, "cache=true");
    let kv = db
        .kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(60)));
    let reads = (0..1000).map(|_| kv.get("hot"));
    let all = futures_util::future::join_all(reads).await;
    assert!(all.iter().all(|r| text(r.as_ref().unwrap().clone()) == "v"));
    assert_eq!(fake.gets(), 1);
    let s = db.cache().unwrap().stats();
    assert_eq!((s.misses, s.loads), (1000, 1), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn errors_are_shared_by_the_readers_of_a_load_and_never_cached() {
    let fake = Fake::default();
    *fake.0.fail.lock().unwrap() = true;
    *fake.0.delay.lock().unwrap() = Duration::from_millis(10);
    let db = db(&fake, "cache=true&retry_max_attempts=1");
    let kv = db
        .kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(60)));
    let all = futures_util::future::join_all((0..50).map(|_| kv.get("k"))).await;
    for r in &all {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Query);
        assert!(e.to_string().contains("scripted failure"), "{e}");
    }
    assert_eq!(fake.gets(), 1);
    *fake.0.fail.lock().unwrap() = false;
    fake.set("ok");
    assert_eq!(text(kv.get("k").await.unwrap()), "ok");
    assert_eq!(db.cache().unwrap().stats().load_errors, 1);
}

#[tokio::test(start_paused = true)]
async fn writes_through_the_database_and_tags_invalidate() {
    let fake = Fake::default();
    fake.set("v1");
    let db = db(&fake, "cache=true");
    let plain = db.kv().unwrap();
    let kv = plain.cached(CachePolicy::ttl(Duration::from_secs(60)).tags(["profile"]));
    assert_eq!(text(kv.get("k").await.unwrap()), "v1");
    // Read your writes: the write drops the key's entry.
    plain.set("k", "v2", None).await.unwrap();
    assert_eq!(text(kv.get("k").await.unwrap()), "v2");
    assert_eq!(fake.gets(), 2);
    fake.set("v3");
    assert_eq!(text(kv.get("k").await.unwrap()), "v2");
    db.cache().unwrap().invalidate_tag("profile").await;
    assert_eq!(text(kv.get("k").await.unwrap()), "v3");
    fake.set("v4");
    db.cache().unwrap().invalidate_key("k").await;
    assert_eq!(text(kv.get("k").await.unwrap()), "v4");
    fake.set("v5");
    db.cache().unwrap().invalidate_all().await;
    assert_eq!(text(kv.get("k").await.unwrap()), "v5");
    // A stale value is not served after an invalidation either.
    let swr = plain.cached(CachePolicy::ttl(Duration::from_secs(1)).swr(Duration::from_secs(60)));
    swr.get("s").await.unwrap();
    fake.set("v6");
    tokio::time::advance(Duration::from_secs(2)).await;
    plain.delete("s").await.unwrap();
    fake.set("v7");
    assert_eq!(text(swr.get("s").await.unwrap()), "v7");
}

#[tokio::test(start_paused = true)]
async fn a_load_that_started_before_a_write_is_not_served_after_it() {
    let fake = Fake::default();
    fake.set("old");
    *fake.0.delay.lock().unwrap() = Duration::from_millis(100);
    let db = db(&fake, "cache=true");
    let plain = db.kv().unwrap().clone();
    let kv = plain.cached(CachePolicy::ttl(Duration::from_secs(60)));
    let early = tokio::spawn({
        let kv = kv.clone();
        async move { kv.get("k").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    *fake.0.delay.lock().unwrap() = Duration::ZERO;
    plain.set("k", "new", None).await.unwrap();
    // The read after the write does not join the load begun before it.
    assert_eq!(text(kv.get("k").await.unwrap()), "new");
    let _ = early.await.unwrap();
    assert_eq!(text(kv.get("k").await.unwrap()), "new");
}

#[tokio::test]
async fn bad_policies_and_settings_are_invalid_config() {
    let fake = Fake::default();
    let db = db(&fake, "cache=true");
    let kv = db.kv().unwrap();
    for (policy, says) in [
        (CachePolicy::ttl(Duration::ZERO), "TTL must be above zero"),
        (CachePolicy::ttl(MAX_TTL * 2), "one year"),
        (
            CachePolicy::ttl(Duration::from_secs(1)).swr(MAX_TTL * 2),
            "one year",
        ),
        (CachePolicy::ttl(Duration::from_secs(1)).tag(""), "empty"),
        (
            CachePolicy::ttl(Duration::from_secs(1)).tag("x".repeat(MAX_TAG_LEN + 1)),
            "257 bytes",
        ),
    ] {
        let e = kv.cached(policy).get("k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(says), "{e}");
    }
    assert_eq!(fake.gets(), 0);
    // With the cache off, cached handles read through, and `cache()` says why.
    let off = crate::cache::tests::db(&fake, "");
    let e = off.cache().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("cache=true"), "{e}");
    off.kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(5)))
        .get("k")
        .await
        .unwrap();
    off.kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(5)))
        .get("k")
        .await
        .unwrap();
    assert_eq!(fake.gets(), 2);
}

#[tokio::test]
async fn capacity_bounds_entries_and_bytes() {
    let fake = Fake::default();
    fake.set(&"x".repeat(1000));
    let db = db(&fake, "cache_max_entries=50&cache_max_bytes=1MiB");
    let kv = db
        .kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(60)));
    for i in 0..500 {
        kv.get(&format!("k{i}")).await.unwrap();
    }
    let cache = db.cache().unwrap();
    cache.run_pending_tasks();
    let s = cache.stats();
    assert!(s.entries <= 50, "{s:?}");
    assert!(s.evictions >= 400, "{s:?}");
    let db = crate::cache::tests::db(&fake, "cache_max_entries=100000&cache_max_bytes=100KB");
    let kv = db
        .kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(60)));
    for i in 0..500 {
        kv.get(&format!("k{i}")).await.unwrap();
    }
    let cache = db.cache().unwrap();
    cache.run_pending_tasks();
    let s = cache.stats();
    assert!(s.bytes <= 100_000, "{s:?}");
    assert!(s.entries < 100, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_load_that_panics_fails_its_readers_and_not_the_next_ones() {
    let fake = Fake::default();
    fake.set("panic");
    let db = db(&fake, "cache=true");
    let kv = db
        .kv()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(60)));
    let e = kv.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other);
    assert!(e.to_string().contains("abnormally"), "{e}");
    fake.set("fine");
    assert_eq!(text(kv.get("k").await.unwrap()), "fine");
}
