//! Unit tests of the vector contract's pure parts.
#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn distances_parse_and_reject_unknown_names() {
    assert_eq!("Cosine".parse::<Distance>().unwrap(), Distance::Cosine);
    assert_eq!("euclidean".parse::<Distance>().unwrap(), Distance::Euclid);
    assert_eq!("DOT".parse::<Distance>().unwrap(), Distance::Dot);
    let e = "hamming".parse::<Distance>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("hamming"), "{e}");
}

#[test]
fn scores_match_their_definitions() {
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    let b = [0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -3.0, 2.0, 0.0, 1.0];
    let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!((Distance::Dot.score(&a, &b) - naive_dot).abs() < 1e-4);
    let naive_l2: f32 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt();
    assert!((Distance::Euclid.score(&a, &b) - naive_l2).abs() < 1e-4);
    let naive_l1: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
    assert!((Distance::Manhattan.score(&a, &b) - naive_l1).abs() < 1e-4);
    let (na, nb) = (Distance::Cosine.prepare(&a), Distance::Cosine.prepare(&b));
    let cos = naive_dot / (dot(&a, &a).sqrt() * dot(&b, &b).sqrt());
    assert!((Distance::Cosine.score(&na, &nb) - cos).abs() < 1e-5);
}

#[test]
fn cosine_prepare_normalises_but_keeps_zero_vectors() {
    assert_eq!(Distance::Cosine.prepare(&[3.0, 4.0]), vec![0.6, 0.8]);
    assert_eq!(Distance::Cosine.prepare(&[0.0, 0.0]), vec![0.0, 0.0]);
    assert_eq!(Distance::Dot.prepare(&[3.0, 4.0]), vec![3.0, 4.0]);
}

#[test]
fn thresholds_follow_the_direction_of_the_score() {
    assert!(Distance::Cosine.within(0.9, 0.8));
    assert!(!Distance::Cosine.within(0.7, 0.8));
    assert!(Distance::Euclid.within(0.7, 0.8));
    assert!(!Distance::Euclid.within(0.9, 0.8));
    assert!(Distance::Dot.better(2.0, 1.0));
    assert!(Distance::Manhattan.better(1.0, 2.0));
}

#[test]
fn point_ids_order_integers_before_uuids() {
    let u = uuid::Uuid::from_u128(1);
    let mut ids = vec![PointId::Uuid(u), PointId::Num(7), PointId::Num(2)];
    ids.sort();
    assert_eq!(
        ids,
        vec![PointId::Num(2), PointId::Num(7), PointId::Uuid(u)]
    );
    assert_eq!("42".parse::<PointId>().unwrap(), PointId::Num(42));
    assert_eq!(u.to_string().parse::<PointId>().unwrap(), PointId::Uuid(u));
    assert_eq!(
        "-1".parse::<PointId>().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(serde_json::to_value(PointId::Num(3)).unwrap(), json!(3));
}

#[test]
fn payloads_must_be_objects() {
    let p = Point::new(1u64, vec![1.0]);
    assert!(p.clone().with_payload(json!({"a": 1})).is_ok());
    for bad in [json!(1), json!("x"), json!([1]), json!(null)] {
        let e = p.clone().with_payload(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("JSON object"), "{e}");
    }
    assert_eq!(
        p.with_data(&vec![1, 2]).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn vectors_are_checked() {
    assert!(check_vector(&[1.0, 2.0], "v").is_ok());
    for bad in [
        vec![],
        vec![1.0, f32::NAN],
        vec![f32::INFINITY],
        vec![0.0; MAX_DIMENSION + 1],
    ] {
        assert_eq!(
            check_vector(&bad, "v").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    let mixed = [
        Point::new(1u64, vec![1.0, 2.0]),
        Point::new(2u64, vec![1.0]),
    ];
    let e = check_points(&mixed).unwrap_err();
    assert!(e.message().contains("differ in length"), "{e}");
}

#[test]
fn collection_names_are_identifiers() {
    for ok in ["docs", "_x", "a-b_c9"] {
        assert!(check_collection_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "9a",
        "a b",
        "a;drop table x",
        "a/b",
        "é",
        &"x".repeat(256),
    ] {
        assert_eq!(
            check_collection_name(bad).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad}"
        );
    }
}

#[test]
fn filters_follow_qdrant_semantics() {
    let p = obj(json!({
        "lang": "en", "year": 2021, "score": 0.5, "draft": false,
        "tags": ["a", "b"], "meta": {"owner": "ada", "n": [1, 5]}
    }));
    let id = PointId::Num(7);
    let yes = |f: Filter| assert!(f.matches(id, &p), "{f:?}");
    let no = |f: Filter| assert!(!f.matches(id, &p), "{f:?}");
    yes(Filter::new());
    yes(Filter::new().must(Condition::eq("lang", "en")));
    no(Filter::new().must(Condition::eq("lang", "fr")));
    yes(Filter::new().must(Condition::eq("year", 2021)));
    no(Filter::new().must(Condition::eq("year", "2021")));
    yes(Filter::new().must(Condition::eq("draft", false)));
    no(Filter::new().must(Condition::eq("draft", 0)));
    yes(Filter::new().must(Condition::eq("tags", "b")));
    yes(Filter::new().must(Condition::eq("meta.owner", "ada")));
    yes(Filter::new().must(Condition::any("meta.n", [4, 5])));
    no(Filter::new().must(Condition::any("tags", ["c", "d"])));
    yes(Filter::new().must(Condition::range("score", Range::new().gt(0.4).lte(0.5))));
    no(Filter::new().must(Condition::range("score", Range::new().gt(0.5))));
    no(Filter::new().must(Condition::range("lang", Range::new().gt(0.0))));
    no(Filter::new().must(Condition::eq("missing", "x")));
    yes(Filter::new().must_not(Condition::eq("missing", "x")));
    yes(Filter::new()
        .should(Condition::eq("lang", "fr"))
        .should(Condition::eq("lang", "en")));
    no(Filter::new().should(Condition::eq("lang", "fr")));
    no(Filter::new().must_not(Condition::has_id([7u64])));
    yes(Filter::new().must(Condition::filter(
        Filter::new().should(Condition::has_id([1u64, 7])),
    )));
}

#[test]
fn json_filters_round_trip_and_malformed_ones_are_named() {
    let f = Filter::new()
        .must(Condition::eq("a", 1))
        .should(Condition::any("b", ["x", "y"]))
        .must_not(Condition::range("c", Range::new().gte(1.5)))
        .must(Condition::has_id([PointId::Num(3)]))
        .must(Condition::filter(
            Filter::new().must(Condition::eq("d", true)),
        ));
    assert_eq!(Filter::from_json(&f.to_json()).unwrap(), f);
    for (bad, says) in [
        (json!([]), "expected an object"),
        (json!({"must": 1}), "list of conditions"),
        (json!({"maybe": []}), "unknown clause"),
        (
            json!({"must": [{"key": "a"}]}),
            "`match` object or a `range`",
        ),
        (
            json!({"must": [{"key": "a", "match": {"value": 1.5}}]}),
            "range for fractions",
        ),
        (
            json!({"must": [{"key": "a", "match": {"any": []}}]}),
            "no values",
        ),
        (
            json!({"must": [{"key": "a", "match": {"any": ["x", 1]}}]}),
            "mixes",
        ),
        (json!({"must": [{"key": "a", "range": {}}]}), "no bounds"),
        (
            json!({"must": [{"key": "a", "range": {"near": 1}}]}),
            "unknown bound",
        ),
        (
            json!({"must": [{"key": "a b", "match": {"value": 1}}]}),
            "not a payload key",
        ),
        (
            json!({"must": [{"key": "", "match": {"value": 1}}]}),
            "not a payload key",
        ),
        (json!({"must": [{"has_id": [-1]}]}), "unsigned integers"),
        (
            json!({"must": [{"key": 5, "match": {"value": 1}}]}),
            "expected a string",
        ),
    ] {
        let e = Filter::from_json(&bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains(says), "{bad}: {e}");
    }
    let mut deep = json!({"must": [{"key": "a", "match": {"value": 1}}]});
    for _ in 0..40 {
        deep = json!({ "must": [deep] });
    }
    assert!(
        Filter::from_json(&deep)
            .unwrap_err()
            .message()
            .contains("deeper")
    );
    let nan = Filter::new().must(Condition::range("a", Range::new().lt(f64::NAN)));
    assert!(nan.check().is_err());
}

#[test]
fn searches_are_checked() {
    assert!(Search::new(vec![1.0], 1).check().is_ok());
    assert!(Search::new(vec![], 1).check().is_err());
    assert!(Search::new(vec![1.0], 0).check().is_err());
    assert!(Search::new(vec![f32::NAN], 1).check().is_err());
    assert!(
        Search::new(vec![1.0], 1)
            .score_threshold(f32::NAN)
            .check()
            .is_err()
    );
    assert!(Search::new(vec![1.0], 1).hnsw_ef(1).check().is_ok());
    assert!(
        Search::new(vec![1.0], 1)
            .hnsw_ef(MAX_HNSW_EF)
            .check()
            .is_ok()
    );
    for bad in [0, MAX_HNSW_EF + 1] {
        let e = Search::new(vec![1.0], 1).hnsw_ef(bad).check().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("hnsw_ef"), "{e}");
    }
}

#[test]
fn ties_are_ordered_by_id() {
    let h = |id: u64, s: f32| ScoredPoint::new(PointId::Num(id), s, None, None);
    let mut hits = vec![h(9, 1.0), h(3, 1.0), h(5, 0.5), h(1, 0.2), h(0, 0.2)];
    order_ties(&mut hits);
    let ids: Vec<_> = hits.iter().map(|h| h.id.to_string()).collect();
    assert_eq!(ids, ["3", "9", "5", "0", "1"]);
}
