//! The approximate index on real SQLite databases: it is used, it finds
//! what an exact search finds, and it follows writes from another handle.
#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;
use std::time::{Duration, Instant};

async fn open(url: &str) -> crate::SqliteBackend {
    crate::SqliteBackend::open(&dbx_core::ConnectOptions::from_url(url).unwrap())
        .await
        .unwrap()
}

fn indexes(b: &crate::SqliteBackend) -> &Arc<Indexes> {
    b.vectors.indexes.as_ref().unwrap()
}

/// Deterministic noise in [-1, 1).
fn noise(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `n` points of dimension `dim` around 20 centres.
fn clustered(n: u64, dim: usize) -> Vec<Point> {
    let centres: Vec<Vec<f32>> = (0..20).map(|c| noise(1_000_000 + c, dim)).collect();
    (0..n)
        .map(|i| {
            let c = &centres[(i % 20) as usize];
            let v = noise(i, dim)
                .iter()
                .zip(c)
                .map(|(e, c)| c + 0.25 * e)
                .collect();
            Point::new(i, v)
        })
        .collect()
}

fn ids(hits: &[ScoredPoint]) -> Vec<PointId> {
    hits.iter().map(|h| h.id).collect()
}

/// Search `v` until the index answers (a build runs in the background
/// first); fails after two minutes.
async fn search_indexed(b: &crate::SqliteBackend, name: &str, q: &Search) -> Vec<ScoredPoint> {
    let ix = indexes(b);
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let before = ix.answered();
        let hits = b.vectors.search(name, q).await.unwrap();
        if ix.answered() > before {
            return hits;
        }
        assert!(Instant::now() < give_up, "the index never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_collections_are_searched_through_the_index_like_exactly() {
    let on = open("sqlite::memory:?vector_index=hnsw&vector_index_min_points=0").await;
    let off = open("sqlite::memory:").await;
    for distance in [
        Distance::Cosine,
        Distance::Dot,
        Distance::Euclid,
        Distance::Manhattan,
    ] {
        let name = distance.as_str();
        let pts = clustered(50, 8);
        for b in [&on, &off] {
            b.vectors
                .create_collection(name, 8, distance)
                .await
                .unwrap();
            b.vectors.upsert(name, &pts).await.unwrap();
        }
        for seed in 0..10 {
            let q = Search::new(noise(500 + seed, 8), 5);
            let before = indexes(&on).answered();
            let a = on.vectors.search(name, &q).await.unwrap();
            // 50 points are inserted within the search: answered at once.
            assert_eq!(indexes(&on).answered(), before + 1, "{name}");
            let e = off.vectors.search(name, &q).await.unwrap();
            assert_eq!(a, e, "{name}");
        }
        // A filtered search scans exactly.
        let before = indexes(&on).answered();
        let f = Filter::new().must(dbx_core::vector::Condition::has_id([3u64, 4]));
        let q = Search::new(noise(7, 8), 5).filter(f);
        assert_eq!(
            ids(&on.vectors.search(name, &q).await.unwrap()),
            ids(&off.vectors.search(name, &q).await.unwrap())
        );
        assert_eq!(indexes(&on).answered(), before);
    }
    assert!(indexes(&on).built() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_min_points_the_index_is_not_used() {
    let b = open("sqlite::memory:?vector_index=hnsw&vector_index_min_points=100").await;
    b.vectors
        .create_collection("c", 8, Distance::Euclid)
        .await
        .unwrap();
    b.vectors.upsert("c", &clustered(99, 8)).await.unwrap();
    b.vectors
        .search("c", &Search::new(noise(1, 8), 3))
        .await
        .unwrap();
    assert_eq!(indexes(&b).answered(), 0);
    assert_eq!(indexes(&b).built(), 0);
    b.vectors.upsert("c", &clustered(100, 8)).await.unwrap();
    search_indexed(&b, "c", &Search::new(noise(1, 8), 3)).await;
    assert_eq!(indexes(&b).built(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_10_against_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recall.db");
    let url = format!("sqlite://{}", path.display());
    let on = open(&format!(
        "{url}?vector_index=hnsw&vector_index_min_points=0"
    ))
    .await;
    let exact = open(&url).await;
    let dim = 32;
    on.vectors
        .create_collection("r", dim, Distance::Cosine)
        .await
        .unwrap();
    on.vectors.upsert("r", &clustered(4000, dim)).await.unwrap();
    let (mut found, mut asked) = (0usize, 0usize);
    for seed in 0..50 {
        let q = Search::new(noise(900_000 + seed, dim), 10);
        let approx = ids(&search_indexed(&on, "r", &q).await);
        let truth = ids(&exact.vectors.search("r", &q).await.unwrap());
        assert_eq!(truth.len(), 10);
        found += truth.iter().filter(|id| approx.contains(id)).count();
        asked += truth.len();
    }
    let recall = found as f64 / asked as f64;
    assert!(recall >= 0.9, "recall@10 {recall}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_by_another_handle_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writes.db");
    let url = format!("sqlite://{}", path.display());
    let on = open(&format!(
        "{url}?vector_index=hnsw&vector_index_min_points=0"
    ))
    .await;
    let other = open(&url).await;
    let dim = 16;
    other
        .vectors
        .create_collection("w", dim, Distance::Euclid)
        .await
        .unwrap();
    other
        .vectors
        .upsert("w", &clustered(2000, dim))
        .await
        .unwrap();
    let target = noise(77, dim);
    let q = Search::new(target.clone(), 3);
    let first = search_indexed(&on, "w", &q).await;
    assert_eq!(first.len(), 3);
    assert_eq!(indexes(&on).built(), 1);

    // An upsert of a new point right on the query.
    other
        .vectors
        .upsert("w", &[Point::new(1_000_000u64, target.clone())])
        .await
        .unwrap();
    let hits = search_indexed(&on, "w", &q).await;
    assert_eq!(hits[0].id, PointId::Num(1_000_000));
    assert_eq!(hits[0].score, 0.0);

    // Overwriting it moves it away; overwriting another brings that one in.
    let far = vec![100.0; dim];
    let near: Vec<f32> = target.iter().map(|x| x + 0.001).collect();
    other
        .vectors
        .upsert(
            "w",
            &[
                Point::new(1_000_000u64, far.clone()),
                Point::new(5u64, near.clone()),
            ],
        )
        .await
        .unwrap();
    let hits = search_indexed(&on, "w", &q).await;
    assert_eq!(hits[0].id, PointId::Num(5));
    assert!(!ids(&hits).contains(&PointId::Num(1_000_000)));
    // The old vector of 1_000_000 is a tombstone, not a result.
    let hits = search_indexed(&on, "w", &Search::new(far.clone(), 1)).await;
    assert_eq!(hits[0].id, PointId::Num(1_000_000));
    assert_eq!(hits[0].score, 0.0);

    // A delete.
    other
        .vectors
        .delete_ids("w", &[PointId::Num(5)])
        .await
        .unwrap();
    let hits = search_indexed(&on, "w", &q).await;
    assert!(!ids(&hits).contains(&PointId::Num(5)));
    let exact = other.vectors.search("w", &q).await.unwrap();
    assert_eq!(hits[0].id, exact[0].id);
    // All of that without building the graph again.
    assert_eq!(indexes(&on).built(), 1);

    // Deleting most of the collection rebuilds it.
    let doomed: Vec<PointId> = (0..1500u64).map(PointId::Num).collect();
    other.vectors.delete_ids("w", &doomed).await.unwrap();
    let hits = search_indexed(&on, "w", &Search::new(target, 5)).await;
    assert!(hits.iter().all(|h| !doomed.contains(&h.id)));
    assert_eq!(indexes(&on).built(), 2);

    // Dropping the collection forgets it.
    assert!(other.vectors.drop_collection("w").await.unwrap());
    let e = on.vectors.search("w", &q).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_searches_bypass_the_index_and_hnsw_ef_replaces_the_default() {
    let on = open("sqlite::memory:?vector_index=hnsw&vector_index_min_points=0").await;
    let off = open("sqlite::memory:").await;
    let dim = 16;
    let points = clustered(4000, dim);
    for b in [&on, &off] {
        b.vectors
            .create_collection("x", dim, Distance::Cosine)
            .await
            .unwrap();
        b.vectors.upsert("x", &points).await.unwrap();
    }
    search_indexed(&on, "x", &Search::new(noise(7, dim), 10)).await;
    for seed in 0..20 {
        let q = Search::new(noise(800_000 + seed, dim), 10);
        let truth = ids(&off.vectors.search("x", &q).await.unwrap());
        // exact(true): the mirror scan, never the graph.
        let before = indexes(&on).answered();
        let exact = on
            .vectors
            .search("x", &q.clone().exact(true))
            .await
            .unwrap();
        assert_eq!(
            indexes(&on).answered(),
            before,
            "exact(true) used the index"
        );
        assert_eq!(ids(&exact), truth);
        // A per-search hnsw_ef small enough goes through the graph ...
        let hits = on
            .vectors
            .search("x", &q.clone().hnsw_ef(100))
            .await
            .unwrap();
        assert_eq!(indexes(&on).answered(), before + 1);
        assert_eq!(hits.len(), 10);
        // ... and one asking for half the collection (the URL's default
        // would not) scans exactly instead: the search's value is the one used.
        let all = on
            .vectors
            .search("x", &q.clone().hnsw_ef(2000))
            .await
            .unwrap();
        assert_eq!(
            indexes(&on).answered(),
            before + 1,
            "hnsw_ef(2000) walked the graph"
        );
        assert_eq!(ids(&all), truth);
    }
}
