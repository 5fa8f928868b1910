//! Cached reads carry a `dbx.cache` span whose `dbx.cache.result` says
//! what the cache did (`miss`, then `hit`), and a miss's database call is a
//! `db.operation` span inside it.
//!
//! Its own test binary, so its global subscriber captures everything.
#![cfg(all(feature = "sqlite", feature = "cache"))]
#![allow(clippy::unwrap_used, clippy::panic)]

use dbx::cache::CachePolicy;
use dbx::{Dbx, params};
use std::time::Duration;

use dbx_tests::Capture;

#[tokio::test]
async fn cached_reads_say_hit_or_miss_on_their_spans() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let db = Dbx::connect("sqlite::memory:?cache=true").await.unwrap();
    let c = db
        .sql()
        .unwrap()
        .cached(CachePolicy::ttl(Duration::from_secs(60)));
    for _ in 0..2 {
        let n: i64 = c.query_one_as("SELECT $1 + 1", params![1]).await.unwrap();
        assert_eq!(n, 2);
    }
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let cache_spans: Vec<&str> = log.lines().filter(|l| l.contains("dbx.cache{")).collect();
    assert_eq!(cache_spans.len(), 3, "{log}");
    // The miss's database call, inside the cache span.
    assert!(
        cache_spans[0].contains("dbx.cache.result=\"miss\"")
            && cache_spans[0].contains("db.operation{"),
        "{log}"
    );
    assert!(
        cache_spans
            .iter()
            .any(|l| l.contains("dbx.cache.result=\"miss\"") && !l.contains("db.operation{")),
        "{log}"
    );
    assert!(
        cache_spans
            .iter()
            .any(|l| l.contains("dbx.cache.result=\"hit\"")),
        "{log}"
    );
}
