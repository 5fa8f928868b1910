//! Vector conformance: the contract of `dbx_core::vector`, written once and
//! run on every backend that offers `db.vectors()`.
//!
//! Expected scores are computed here with naive formulas, independently of
//! the library's own distance code; expected filter results come from
//! hand-written predicates over the test data.

use crate::{expect_kind, table};
use dbx::serde_json::{Value, json};
use dbx::vector::{Condition, Distance, Filter, Include, Point, PointId, Range, Search};
use dbx::{Dbx, ErrorKind, VectorCollection};
use serde::{Deserialize, Serialize};

fn coll(db: &Dbx, test: &str) -> VectorCollection {
    db.vectors().unwrap().collection(&table(test))
}

fn uuid(n: u128) -> PointId {
    PointId::Uuid(dbx::uuid::Uuid::from_u128(n))
}

/// A deterministic pseudo-random vector (xorshift), components in [-1, 1).
pub fn pseudo(seed: u64, dim: usize) -> Vec<f32> {
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

fn naive_score(distance: Distance, q: &[f32], v: &[f32]) -> f32 {
    let q: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
    let v: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let s = match distance {
        Distance::Cosine => dot(&q, &v) / (dot(&q, &q).sqrt() * dot(&v, &v).sqrt()),
        Distance::Dot => dot(&q, &v),
        Distance::Euclid => q
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt(),
        Distance::Manhattan => q.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum(),
        other => panic!("no reference score for {other}"),
    };
    s as f32
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

fn ids(hits: &[dbx::ScoredPoint]) -> Vec<PointId> {
    hits.iter().map(|h| h.id).collect()
}

const DISTANCES: [Distance; 4] = [
    Distance::Cosine,
    Distance::Dot,
    Distance::Euclid,
    Distance::Manhattan,
];

pub async fn collections_are_created_listed_described_and_dropped(db: &Dbx) {
    let c = coll(db, "lifecycle");
    assert_eq!(c.info().await.unwrap(), None);
    c.create(4, Distance::Cosine).await.unwrap();
    let info = c.info().await.unwrap().unwrap();
    assert_eq!(
        (info.dimension, info.distance, info.points),
        (4, Distance::Cosine, 0)
    );
    assert!(
        db.vectors()
            .unwrap()
            .list()
            .await
            .unwrap()
            .contains(&c.name().to_owned())
    );
    let e = expect_kind(c.create(4, Distance::Cosine).await, ErrorKind::Conflict);
    assert!(!e.is_transient(), "{e}");
    assert!(!c.create_if_missing(4, Distance::Cosine).await.unwrap());
    let e = expect_kind(
        c.create_if_missing(8, Distance::Cosine).await,
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("dimension 4"), "{e}");
    expect_kind(
        c.create_if_missing(4, Distance::Dot).await,
        ErrorKind::InvalidInput,
    );
    assert!(c.drop().await.unwrap());
    assert!(!c.drop().await.unwrap());
    assert_eq!(c.info().await.unwrap(), None);
    assert!(
        !db.vectors()
            .unwrap()
            .list()
            .await
            .unwrap()
            .contains(&c.name().to_owned())
    );
    // Every operation on a missing collection is NotFound.
    let p = Point::new(1u64, vec![1.0; 4]);
    expect_kind(c.upsert_one(p).await, ErrorKind::NotFound);
    expect_kind(
        c.search(&Search::new(vec![1.0; 4], 1)).await,
        ErrorKind::NotFound,
    );
    expect_kind(c.count().await, ErrorKind::NotFound);
    expect_kind(c.get(&[PointId::Num(1)]).await, ErrorKind::NotFound);
    expect_kind(c.delete(&[PointId::Num(1)]).await, ErrorKind::NotFound);
    let e = expect_kind(c.create(0, Distance::Dot).await, ErrorKind::InvalidInput);
    assert!(e.to_string().contains("dimension"), "{e}");
    assert!(c.create_if_missing(4, Distance::Euclid).await.unwrap());
    assert_eq!(c.info().await.unwrap().unwrap().distance, Distance::Euclid);
    c.drop().await.unwrap();
}

pub async fn points_round_trip_with_integer_and_uuid_ids(db: &Dbx) {
    let c = coll(db, "roundtrip");
    c.create(3, Distance::Dot).await.unwrap();
    let payload = json!({
        "title": "Ada",
        "year": 1843,
        "big": 9_007_199_254_740_993i64,
        "ratio": 0.25,
        "ok": true,
        "none": null,
        "tags": ["math", "engines"],
        "nested": {"a": {"b": [1, {"c": "d"}]}},
        "quote": "Robert'); DROP TABLE students;-- \"x\" \u{0}\u{1F600}",
    });
    let u = uuid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    c.upsert(&[
        Point::new(1u64, vec![0.5, -1.5, 2.0])
            .with_payload(payload.clone())
            .unwrap(),
        Point::new(u64::MAX, vec![1.0, 0.0, 0.0]),
        Point {
            id: u,
            vector: vec![0.0, 1.0, 0.0],
            payload: json!({"kind": "uuid"}).as_object().unwrap().clone(),
        },
    ])
    .await
    .unwrap();
    assert_eq!(c.count().await.unwrap(), 3);
    // In the order asked, each once, missing ids left out.
    let got = c
        .get(&[
            u,
            PointId::Num(404),
            PointId::Num(1),
            u,
            PointId::Num(u64::MAX),
        ])
        .await
        .unwrap();
    let got_ids: Vec<PointId> = got.iter().map(|r| r.id).collect();
    assert_eq!(got_ids, vec![u, PointId::Num(1), PointId::Num(u64::MAX)]);
    assert_eq!(got[1].vector.as_deref(), Some(&[0.5, -1.5, 2.0][..]));
    assert_eq!(Value::Object(got[1].payload.clone().unwrap()), payload);
    assert_eq!(got[0].payload.as_ref().unwrap()["kind"], "uuid");
    assert_eq!(got[2].payload.as_ref().unwrap().len(), 0);
    // Include switches.
    let bare = c
        .get_with(&[PointId::Num(1)], Include::new(false, false))
        .await
        .unwrap();
    assert_eq!(
        (bare[0].payload.is_none(), bare[0].vector.is_none()),
        (true, true)
    );
    let only_vec = c
        .get_with(&[PointId::Num(1)], Include::new(false, true))
        .await
        .unwrap();
    assert!(only_vec[0].payload.is_none() && only_vec[0].vector.is_some());
    assert_eq!(c.get_one(7u64).await.unwrap(), None);
    assert_eq!(c.get(&[]).await.unwrap(), vec![]);
    // Injection strings are data: an equality filter finds them verbatim.
    let quote = payload["quote"].as_str().unwrap();
    let n = c
        .count_where(&Filter::new().must(Condition::eq("quote", quote)))
        .await
        .unwrap();
    assert_eq!(n, 1);
    c.drop().await.unwrap();
}

pub async fn cosine_vectors_are_stored_normalised(db: &Dbx) {
    let c = coll(db, "normalised");
    c.create(2, Distance::Cosine).await.unwrap();
    c.upsert(&[
        Point::new(1u64, vec![3.0, 4.0]),
        Point::new(2u64, vec![0.0, 0.0]),
    ])
    .await
    .unwrap();
    let got = c.get(&[PointId::Num(1), PointId::Num(2)]).await.unwrap();
    let v = got[0].vector.clone().unwrap();
    assert!(close(v[0], 0.6) && close(v[1], 0.8), "{v:?}");
    // The score of a cosine search does not depend on the query's length.
    let a = c.search(&Search::new(vec![1.0, 0.0], 1)).await.unwrap();
    let b = c.search(&Search::new(vec![10.0, 0.0], 1)).await.unwrap();
    assert_eq!(a[0].id, PointId::Num(1));
    assert!(
        close(a[0].score, 0.6) && close(b[0].score, 0.6),
        "{a:?} {b:?}"
    );
    c.drop().await.unwrap();
}

pub async fn searches_order_and_score_like_the_reference(db: &Dbx) {
    const DIM: usize = 16;
    const N: u64 = 60;
    let vectors: Vec<Vec<f32>> = (0..N).map(|i| pseudo(i + 1, DIM)).collect();
    let query = pseudo(1000, DIM);
    for distance in DISTANCES {
        let c = coll(db, &format!("order_{distance}"));
        c.create(DIM, distance).await.unwrap();
        let points: Vec<Point> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new(i as u64, v.clone()))
            .collect();
        c.upsert(&points).await.unwrap();
        let mut expected: Vec<(u64, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, naive_score(distance, &query, v)))
            .collect();
        let higher = matches!(distance, Distance::Cosine | Distance::Dot);
        expected.sort_by(|a, b| {
            let o = a.1.total_cmp(&b.1);
            if higher { o.reverse() } else { o }
        });
        let hits = c
            .search(&Search::new(query.clone(), 10).with_payload(false))
            .await
            .unwrap();
        assert_eq!(hits.len(), 10, "{distance}");
        for (hit, (id, score)) in hits.iter().zip(&expected) {
            assert_eq!(hit.id, PointId::Num(*id), "{distance}: {hits:?}");
            assert!(
                close(hit.score, *score),
                "{distance}: {} vs {score}",
                hit.score
            );
            assert!(hit.payload.is_none() && hit.vector.is_none());
        }
        for w in hits.windows(2) {
            let ok = if higher {
                w[0].score >= w[1].score
            } else {
                w[0].score <= w[1].score
            };
            assert!(ok, "{distance}: not best first: {hits:?}");
        }
        // A limit above the size returns everything.
        let all = c.search(&Search::new(query.clone(), 500)).await.unwrap();
        assert_eq!(all.len(), N as usize, "{distance}");
        c.drop().await.unwrap();
    }
}

/// `exact(true)` gives the true nearest points on every backend (with an
/// approximate index too); a per-search `hnsw_ef`, small or large, gives
/// `limit` points best first, each scored exactly.
pub async fn exact_and_hnsw_ef_searches(db: &Dbx) {
    const DIM: usize = 16;
    const N: u64 = 300;
    let vectors: Vec<Vec<f32>> = (0..N).map(|i| pseudo(i + 7, DIM)).collect();
    let c = coll(db, "exact_ef");
    c.create(DIM, Distance::Euclid).await.unwrap();
    let points: Vec<Point> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Point::new(i as u64, v.clone()))
        .collect();
    c.upsert(&points).await.unwrap();
    for seed in 0..5 {
        let query = pseudo(5000 + seed, DIM);
        let mut truth: Vec<(u64, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, naive_score(Distance::Euclid, &query, v)))
            .collect();
        truth.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let exact = c
            .search(&Search::new(query.clone(), 10).exact(true))
            .await
            .unwrap();
        let want: Vec<PointId> = truth[..10].iter().map(|t| PointId::Num(t.0)).collect();
        assert_eq!(ids(&exact), want, "exact(true), query {seed}");
        for ef in [1, 16, 10_000] {
            let hits = c
                .search(&Search::new(query.clone(), 10).hnsw_ef(ef))
                .await
                .unwrap();
            assert_eq!(hits.len(), 10, "hnsw_ef({ef})");
            for h in &hits {
                let PointId::Num(i) = h.id else {
                    panic!("hnsw_ef({ef}): unexpected id {:?}", h.id)
                };
                let score = naive_score(Distance::Euclid, &query, &vectors[i as usize]);
                assert!(
                    close(h.score, score),
                    "hnsw_ef({ef}): {} vs {score}",
                    h.score
                );
            }
            assert!(
                hits.windows(2).all(|w| w[0].score <= w[1].score),
                "hnsw_ef({ef}): not best first: {hits:?}"
            );
        }
    }
    for bad in [0, dbx::vector::MAX_HNSW_EF + 1] {
        expect_kind(
            c.search(&Search::new(vectors[0].clone(), 1).hnsw_ef(bad))
                .await,
            ErrorKind::InvalidInput,
        );
    }
    c.drop().await.unwrap();
}

pub async fn ties_are_broken_by_id(db: &Dbx) {
    let c = coll(db, "ties");
    c.create(2, Distance::Dot).await.unwrap();
    let same = vec![1.0, 1.0];
    let u1 = uuid(1);
    let u2 = uuid(2);
    c.upsert(&[
        Point::new(30u64, same.clone()),
        Point {
            id: u2,
            vector: same.clone(),
            payload: Default::default(),
        },
        Point::new(7u64, same.clone()),
        Point {
            id: u1,
            vector: same.clone(),
            payload: Default::default(),
        },
        Point::new(500u64, same.clone()),
        Point::new(1u64, vec![2.0, 2.0]),
        Point::new(2u64, vec![0.1, 0.1]),
    ])
    .await
    .unwrap();
    let hits = c.search(&Search::new(vec![1.0, 1.0], 7)).await.unwrap();
    assert_eq!(
        ids(&hits),
        vec![
            PointId::Num(1),
            PointId::Num(7),
            PointId::Num(30),
            PointId::Num(500),
            u1,
            u2,
            PointId::Num(2)
        ]
    );
    c.drop().await.unwrap();
}

pub async fn score_thresholds_follow_the_distance(db: &Dbx) {
    for distance in DISTANCES {
        let c = coll(db, &format!("threshold_{distance}"));
        c.create(2, distance).await.unwrap();
        let vectors = [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]];
        let points: Vec<Point> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new(i as u64, v.to_vec()))
            .collect();
        c.upsert(&points).await.unwrap();
        let q = [1.0, 0.0];
        let scores: Vec<f32> = vectors
            .iter()
            .map(|v| naive_score(distance, &q, v))
            .collect();
        // A threshold between the second and third best keeps exactly two.
        let mut sorted = scores.clone();
        let higher = matches!(distance, Distance::Cosine | Distance::Dot);
        sorted.sort_by(|a, b| {
            if higher {
                b.total_cmp(a)
            } else {
                a.total_cmp(b)
            }
        });
        let threshold = (sorted[1] + sorted[2]) / 2.0;
        let hits = c
            .search(&Search::new(q.to_vec(), 10).score_threshold(threshold))
            .await
            .unwrap();
        assert_eq!(hits.len(), 2, "{distance} threshold {threshold}: {hits:?}");
        for h in &hits {
            let ok = if higher {
                h.score >= threshold
            } else {
                h.score <= threshold
            };
            assert!(ok, "{distance}: {} beyond {threshold}", h.score);
        }
        c.drop().await.unwrap();
    }
}

pub async fn upsert_overwrites_vector_and_payload(db: &Dbx) {
    let c = coll(db, "overwrite");
    c.create(2, Distance::Dot).await.unwrap();
    c.upsert_one(
        Point::new(1u64, vec![1.0, 0.0])
            .with_payload(json!({"v": 1, "old": true}))
            .unwrap(),
    )
    .await
    .unwrap();
    c.upsert_one(
        Point::new(1u64, vec![0.0, 1.0])
            .with_payload(json!({"v": 2}))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(c.count().await.unwrap(), 1);
    let r = c.get_one(1u64).await.unwrap().unwrap();
    assert_eq!(r.vector.as_deref(), Some(&[0.0, 1.0][..]));
    assert_eq!(Value::Object(r.payload.unwrap()), json!({"v": 2}));
    let hit = c.search(&Search::new(vec![0.0, 1.0], 1)).await.unwrap();
    assert!(close(hit[0].score, 1.0), "{hit:?}");
    c.drop().await.unwrap();
}

/// The filter test data: 24 points with varied payloads.
fn filter_points() -> Vec<Point> {
    let langs = ["en", "fr", "de"];
    (0..24u64)
        .map(|i| {
            let mut payload = json!({
                "lang": langs[(i % 3) as usize],
                "year": 2000 + i as i64,
                "score": i as f64 / 10.0,
                "draft": i % 4 == 0,
                "tags": if i % 2 == 0 { json!(["even", format!("t{i}")]) } else { json!(["odd"]) },
                "meta": {"owner": if i < 12 { "ada" } else { "bob" }, "level": i % 5},
            });
            if i % 6 == 5 {
                payload.as_object_mut().unwrap().remove("lang");
            }
            Point::new(i, pseudo(i + 7, 4))
                .with_payload(payload)
                .unwrap()
        })
        .collect()
}

pub async fn filters_select_like_qdrant(db: &Dbx) {
    let c = coll(db, "filters");
    c.create(4, Distance::Cosine).await.unwrap();
    c.upsert(&filter_points()).await.unwrap();
    let lang = |i: u64| (i % 6 != 5).then(|| ["en", "fr", "de"][(i % 3) as usize]);
    type Case = (Filter, Box<dyn Fn(u64) -> bool>);
    let cases: Vec<(&str, Case)> = vec![
        (
            "keyword",
            (
                Filter::new().must(Condition::eq("lang", "en")),
                Box::new(move |i| lang(i) == Some("en")),
            ),
        ),
        (
            "integer",
            (
                Filter::new().must(Condition::eq("year", 2005)),
                Box::new(|i| i == 5),
            ),
        ),
        (
            "bool",
            (
                Filter::new().must(Condition::eq("draft", true)),
                Box::new(|i| i % 4 == 0),
            ),
        ),
        (
            "array any element",
            (
                Filter::new().must(Condition::eq("tags", "even")),
                Box::new(|i| i % 2 == 0),
            ),
        ),
        (
            "match any",
            (
                Filter::new().must(Condition::any("tags", ["t4", "t10", "nope"])),
                Box::new(|i| i == 4 || i == 10),
            ),
        ),
        (
            "match any integers",
            (
                Filter::new().must(Condition::any("meta.level", [0i64, 3])),
                Box::new(|i| i % 5 == 0 || i % 5 == 3),
            ),
        ),
        (
            "range",
            (
                Filter::new().must(Condition::range("score", Range::new().gte(0.5).lt(1.2))),
                Box::new(|i| (5..12).contains(&i)),
            ),
        ),
        (
            "range on integers",
            (
                Filter::new().must(Condition::range("year", Range::new().gt(2020.0))),
                Box::new(|i| i > 20),
            ),
        ),
        (
            "nested key",
            (
                Filter::new().must(Condition::eq("meta.owner", "bob")),
                Box::new(|i| i >= 12),
            ),
        ),
        (
            "must_not",
            (
                Filter::new().must_not(Condition::eq("lang", "en")),
                Box::new(move |i| lang(i) != Some("en")),
            ),
        ),
        (
            "should",
            (
                Filter::new()
                    .should(Condition::eq("lang", "fr"))
                    .should(Condition::eq("year", 2000)),
                Box::new(move |i| lang(i) == Some("fr") || i == 0),
            ),
        ),
        (
            "must and must_not",
            (
                Filter::new()
                    .must(Condition::eq("meta.owner", "ada"))
                    .must_not(Condition::eq("draft", true)),
                Box::new(|i| i < 12 && i % 4 != 0),
            ),
        ),
        (
            "has_id",
            (
                Filter::new().must(Condition::has_id([3u64, 9, 99])),
                Box::new(|i| i == 3 || i == 9),
            ),
        ),
        (
            "nested filter",
            (
                Filter::new()
                    .must(Condition::eq("tags", "odd"))
                    .must(Condition::filter(
                        Filter::new()
                            .should(Condition::eq("lang", "de"))
                            .should(Condition::range("score", Range::new().lte(0.3))),
                    )),
                Box::new(move |i| i % 2 == 1 && (lang(i) == Some("de") || i <= 3)),
            ),
        ),
        (
            "missing field",
            (
                Filter::new().must(Condition::eq("nope", "x")),
                Box::new(|_| false),
            ),
        ),
        (
            "must_not missing field",
            (
                Filter::new().must_not(Condition::eq("nope", "x")),
                Box::new(|_| true),
            ),
        ),
        (
            "type mismatch",
            (
                Filter::new().must(Condition::eq("year", "2005")),
                Box::new(|_| false),
            ),
        ),
    ];
    for (name, (filter, expect)) in &cases {
        let mut want: Vec<PointId> = (0..24u64)
            .filter(|&i| expect(i))
            .map(PointId::Num)
            .collect();
        want.sort();
        // Search with every point in reach: the filter alone decides.
        let hits = c
            .search(&Search::new(vec![1.0, 0.0, 0.0, 0.0], 100).filter(filter.clone()))
            .await
            .unwrap();
        let mut got = ids(&hits);
        got.sort();
        assert_eq!(got, want, "search with {name} filter");
        assert_eq!(
            c.count_where(filter).await.unwrap(),
            want.len() as u64,
            "count with {name} filter"
        );
        // The same filter through Qdrant's JSON form.
        let parsed = Filter::from_json(&filter.to_json()).unwrap();
        assert_eq!(&parsed, filter, "{name}");
    }
    // A filtered search still orders by score and honours the limit.
    let f = Filter::new().must(Condition::eq("tags", "even"));
    let top = c
        .search(&Search::new(vec![1.0, 0.0, 0.0, 0.0], 3).filter(f.clone()))
        .await
        .unwrap();
    let all = c
        .search(&Search::new(vec![1.0, 0.0, 0.0, 0.0], 100).filter(f))
        .await
        .unwrap();
    assert_eq!(ids(&top), ids(&all[..3]));
    c.drop().await.unwrap();
}

pub async fn deletes_by_id_and_by_filter(db: &Dbx) {
    let c = coll(db, "deletes");
    c.create(4, Distance::Euclid).await.unwrap();
    c.upsert(&filter_points()).await.unwrap();
    c.delete(&[PointId::Num(0), PointId::Num(1), PointId::Num(777)])
        .await
        .unwrap();
    assert_eq!(c.count().await.unwrap(), 22);
    assert_eq!(c.get_one(0u64).await.unwrap(), None);
    c.delete_where(&Filter::new().must(Condition::eq("meta.owner", "bob")))
        .await
        .unwrap();
    assert_eq!(c.count().await.unwrap(), 10);
    let left = c.search(&Search::new(vec![0.0; 4], 100)).await.unwrap();
    assert!(
        left.iter()
            .all(|h| matches!(h.id, PointId::Num(i) if (2..12).contains(&i)))
    );
    // An empty filter would delete everything: refused.
    let e = expect_kind(
        c.delete_where(&Filter::new()).await,
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("empty filter"), "{e}");
    assert_eq!(c.count().await.unwrap(), 10);
    c.delete(&[]).await.unwrap();
    c.drop().await.unwrap();
}

pub async fn dimension_mismatches_are_rejected_and_nothing_written(db: &Dbx) {
    let c = coll(db, "dims");
    c.create(4, Distance::Cosine).await.unwrap();
    c.upsert_one(Point::new(1u64, vec![1.0; 4])).await.unwrap();
    // All of one wrong length: the backend refuses the whole call.
    let e = expect_kind(
        c.upsert(&[
            Point::new(2u64, vec![1.0; 3]),
            Point::new(3u64, vec![1.0; 3]),
        ])
        .await,
        ErrorKind::InvalidInput,
    );
    assert!(!e.is_transient(), "{e}");
    assert!(
        e.to_string().contains('4') && e.to_string().contains('3'),
        "{e}"
    );
    // Lengths that differ within one call are refused before sending.
    expect_kind(
        c.upsert(&[
            Point::new(4u64, vec![1.0; 4]),
            Point::new(5u64, vec![1.0; 5]),
        ])
        .await,
        ErrorKind::InvalidInput,
    );
    assert_eq!(c.count().await.unwrap(), 1);
    assert_eq!(
        c.get(&[PointId::Num(2), PointId::Num(4)]).await.unwrap(),
        vec![]
    );
    expect_kind(
        c.search(&Search::new(vec![1.0; 5], 1)).await,
        ErrorKind::InvalidInput,
    );
    c.drop().await.unwrap();
}

pub async fn bad_input_is_typed_and_nothing_written(db: &Dbx) {
    let c = coll(db, "bad_input");
    c.create(2, Distance::Dot).await.unwrap();
    let bad_vectors = [
        vec![],
        vec![f32::NAN, 1.0],
        vec![1.0, f32::INFINITY],
        vec![f32::NEG_INFINITY, 0.0],
    ];
    for v in bad_vectors {
        let shown = format!("{v:?}");
        let e = expect_kind(
            c.upsert(&[
                Point::new(1u64, vec![0.5, 0.5]),
                Point::new(2u64, v.clone()),
            ])
            .await,
            ErrorKind::InvalidInput,
        );
        assert!(
            e.to_string().contains("empty") || e.to_string().contains("finite"),
            "{shown}: {e}"
        );
        if !v.is_empty() {
            expect_kind(c.search(&Search::new(v, 1)).await, ErrorKind::InvalidInput);
        }
    }
    assert_eq!(
        c.count().await.unwrap(),
        0,
        "nothing of a rejected batch is written"
    );
    expect_kind(
        c.search(&Search::new(vec![1.0, 0.0], 0)).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        c.search(&Search::new(vec![1.0, 0.0], 1).score_threshold(f32::NAN))
            .await,
        ErrorKind::InvalidInput,
    );
    // Payloads that are not objects never become points.
    for p in [json!([1, 2]), json!("text"), json!(3), json!(null)] {
        expect_kind(
            Point::new(1u64, vec![0.0, 1.0]).with_payload(p),
            ErrorKind::InvalidInput,
        );
    }
    // Malformed filters, built or parsed.
    let bad = Filter::new().must(Condition::range("x", Range::new()));
    expect_kind(
        c.search(&Search::new(vec![1.0, 0.0], 1).filter(bad.clone()))
            .await,
        ErrorKind::InvalidInput,
    );
    expect_kind(c.count_where(&bad).await, ErrorKind::InvalidInput);
    expect_kind(c.delete_where(&bad).await, ErrorKind::InvalidInput);
    expect_kind(
        c.count_where(&Filter::new().must(Condition::eq("a'; DROP TABLE x; --", 1)))
            .await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        Filter::from_json(&json!({"must": [{"key": "a", "match": {"regex": ".*"}}]})),
        ErrorKind::InvalidInput,
    );
    expect_kind("hamming".parse::<Distance>(), ErrorKind::InvalidInput);
    // Collection names that are not identifiers.
    let vectors = db.vectors().unwrap();
    for name in ["", "1abc", "a b", "x\"; DROP TABLE y; --", "a/b", "ü"] {
        let e = expect_kind(
            vectors.collection(name).create(2, Distance::Dot).await,
            ErrorKind::InvalidInput,
        );
        assert!(e.to_string().contains("collection name"), "{name}: {e}");
        expect_kind(
            vectors
                .collection(name)
                .search(&Search::new(vec![1.0, 0.0], 1))
                .await,
            ErrorKind::InvalidInput,
        );
    }
    assert_eq!(c.count().await.unwrap(), 0);
    c.drop().await.unwrap();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    year: i64,
    tags: Vec<String>,
}

pub async fn typed_payloads_through_serde(db: &Dbx) {
    let c = coll(db, "typed");
    c.create(3, Distance::Cosine).await.unwrap();
    let docs = [
        Doc {
            title: "cats".into(),
            year: 2020,
            tags: vec!["pets".into()],
        },
        Doc {
            title: "cars".into(),
            year: 2021,
            tags: vec![],
        },
    ];
    let points: Vec<Point> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Point::new(i as u64, pseudo(i as u64 + 3, 3))
                .with_data(d)
                .unwrap()
        })
        .collect();
    c.upsert(&points).await.unwrap();
    let hits = c
        .search(&Search::new(points[1].vector.clone(), 2))
        .await
        .unwrap();
    assert_eq!(hits[0].id, PointId::Num(1));
    assert_eq!(hits[0].payload_as::<Doc>().unwrap(), docs[1]);
    let r = c.get_one(0u64).await.unwrap().unwrap();
    assert_eq!(r.payload_as::<Doc>().unwrap(), docs[0]);
    // A payload that does not fit the type is a Decode error, not a panic.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Other {
        missing: u32,
    }
    expect_kind(hits[0].payload_as::<Other>(), ErrorKind::Decode);
    // Without the payload requested, decoding says why.
    let bare = c
        .search(&Search::new(points[1].vector.clone(), 1).with_payload(false))
        .await
        .unwrap();
    expect_kind(bare[0].payload_as::<Doc>(), ErrorKind::Decode);
    c.drop().await.unwrap();
}

pub async fn search_returns_vectors_when_asked(db: &Dbx) {
    let c = coll(db, "with_vectors");
    c.create(3, Distance::Euclid).await.unwrap();
    c.upsert(&[Point::new(1u64, vec![1.0, 2.0, 3.0])
        .with_payload(json!({"a": 1}))
        .unwrap()])
        .await
        .unwrap();
    let hit = c
        .search(&Search::new(vec![1.0, 2.0, 4.0], 1).with_vectors(true))
        .await
        .unwrap();
    assert_eq!(hit[0].vector.as_deref(), Some(&[1.0, 2.0, 3.0][..]));
    assert_eq!(hit[0].payload.as_ref().unwrap()["a"], 1);
    assert!(
        close(hit[0].score, 1.0),
        "euclid score is the distance: {hit:?}"
    );
    c.drop().await.unwrap();
}

pub async fn large_upserts_go_in_batches(db: &Dbx) {
    let c = coll(db, "batches");
    c.create(8, Distance::Dot).await.unwrap();
    let n = dbx::vector::UPSERT_BATCH * 2 + 17;
    let points: Vec<Point> = (0..n as u64)
        .map(|i| {
            Point::new(i, pseudo(i + 11, 8))
                .with_payload(json!({"i": i}))
                .unwrap()
        })
        .collect();
    c.upsert(&points).await.unwrap();
    assert_eq!(c.count().await.unwrap(), n as u64);
    let info = c.info().await.unwrap().unwrap();
    assert_eq!(info.dimension, 8);
    let last = c.get_one(n as u64 - 1).await.unwrap().unwrap();
    assert_eq!(last.payload.unwrap()["i"], n as u64 - 1);
    let hit = c
        .search(&Search::new(points[300].vector.clone(), 1).with_vectors(true))
        .await
        .unwrap();
    // Dot: the best point need not be the query itself, but its score is right.
    let best = points
        .iter()
        .map(|p| naive_score(Distance::Dot, &points[300].vector, &p.vector))
        .fold(f32::MIN, f32::max);
    assert!(close(hit[0].score, best), "{} vs {best}", hit[0].score);
    c.drop().await.unwrap();
}

pub async fn closed_database_refuses_vector_operations(db: &Dbx) {
    let c = coll(db, "closed");
    c.create(2, Distance::Dot).await.unwrap();
    c.drop().await.unwrap();
    db.close().await;
    expect_kind(c.create(2, Distance::Dot).await, ErrorKind::Closed);
    expect_kind(
        c.search(&Search::new(vec![1.0, 0.0], 1)).await,
        ErrorKind::Closed,
    );
}

/// Generates the vector conformance tests for a backend.
#[macro_export]
macro_rules! vector_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            vector,
            [
                collections_are_created_listed_described_and_dropped,
                points_round_trip_with_integer_and_uuid_ids,
                cosine_vectors_are_stored_normalised,
                searches_order_and_score_like_the_reference,
                exact_and_hnsw_ef_searches,
                ties_are_broken_by_id,
                score_thresholds_follow_the_distance,
                upsert_overwrites_vector_and_payload,
                filters_select_like_qdrant,
                deletes_by_id_and_by_filter,
                dimension_mismatches_are_rejected_and_nothing_written,
                bad_input_is_typed_and_nothing_written,
                typed_payloads_through_serde,
                search_returns_vectors_when_asked,
                large_upserts_go_in_batches,
                closed_database_refuses_vector_operations,
            ]
        );
    };
}
