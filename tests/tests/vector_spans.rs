//! Vector operations carry the OpenTelemetry vector attributes on their
//! spans: `db.vector.query.top_k` and `db.vector.dimension_count` on
//! searches, the dimension on upserts, and `db.system.name` as always.
//!
//! Its own test binary, so its global subscriber captures everything.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::panic)]

use dbx::Dbx;
use dbx::vector::{Distance, Point, Search};

use dbx_tests::Capture;

#[tokio::test]
async fn search_spans_carry_top_k_and_dimensions() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let db = Dbx::connect("sqlite::memory:").await.unwrap();
    let c = db.vectors().unwrap().collection("spans");
    c.create(4, Distance::Dot).await.unwrap();
    c.upsert(&[Point::new(1u64, vec![1.0, 0.0, 0.0, 0.0])])
        .await
        .unwrap();
    c.search(&Search::new(vec![1.0, 0.0, 0.0, 0.0], 7))
        .await
        .unwrap();

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let line = |op: &str| {
        log.lines()
            .find(|l| l.contains(&format!("db.operation.name=\"{op}\"")))
            .unwrap_or_else(|| panic!("no span closed for {op}:\n{log}"))
            .to_owned()
    };
    let search = line("vector.search");
    assert!(search.contains("db.system.name=\"sqlite\""), "{search}");
    assert!(search.contains("db.vector.query.top_k=7"), "{search}");
    assert!(search.contains("db.vector.dimension_count=4"), "{search}");
    let upsert = line("vector.upsert");
    assert!(upsert.contains("db.vector.dimension_count=4"), "{upsert}");
    assert!(!upsert.contains("top_k"), "{upsert}");
    let create = line("vector.create_collection");
    assert!(create.contains("db.vector.dimension_count=4"), "{create}");
}
