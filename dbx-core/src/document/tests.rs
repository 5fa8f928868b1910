//! Unit tests of the document checks.
use super::*;
use serde_json::json;

#[test]
fn filters() {
    for good in [
        json!({}),
        json!({"a": 1, "b": {"$gte": 2, "$lt": 5}}),
        json!({"$or": [{"a": 1}, {"b": {"$in": [1, 2]}}]}),
        json!({"_id": {"$oid": "65a1b2c3d4e5f6a7b8c9d0e1"}}),
        json!({"d": {"$date": "2024-01-01T00:00:00Z"}}),
        json!({"a": {"b": 1}}),
        json!({"a": {"$not": {"$gt": 1}}}),
    ] {
        check_filter(&good).unwrap();
    }
    for (bad, why) in [
        (json!([]), "JSON object"),
        (json!({"$foo": 1}), "$foo"),
        (json!({"$or": {"a": 1}}), "array"),
        (json!({"$and": []}), "non-empty"),
        (json!({"a": {"$gt": 1, "b": 2}}), "mixes"),
        (json!({"a": {"$bogus": 1}}), "$bogus"),
        (json!({"a": {"$in": 1}}), "array"),
        (json!({"$or": [{"$x": 1}]}), "$x"),
    ] {
        let e = check_filter(&bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains(why), "{bad}: {e}");
    }
}

#[test]
fn documents() {
    check_document(&json!({"a": {"b": [1, {"c": {"$date": "2024-01-01T00:00:00Z"}}]}})).unwrap();
    for (bad, why) in [
        (json!(1), "JSON object"),
        (json!({"$a": 1}), "`$`"),
        (json!({"a.b": 1}), "`.`"),
        (json!({"a": {"$b": 1}}), "a.$b"),
        (json!({"a": [{"x.y": 1}]}), "x.y"),
        (json!({"": 1}), "empty"),
        (json!({"_id": [1]}), "array"),
    ] {
        let e = check_document(&bad).unwrap_err();
        assert!(e.message().contains(why), "{bad}: {e}");
    }
    let mut deep = json!(1);
    for _ in 0..150 {
        deep = json!({ "a": deep });
    }
    assert!(
        check_document(&deep)
            .unwrap_err()
            .message()
            .contains("deeper")
    );
}

#[test]
fn updates_and_names() {
    check_update(&json!({"$set": {"a.b": 1}, "$inc": {"n": 1}})).unwrap();
    check_update(&json!([{"$set": {"a": 1}}])).unwrap();
    for bad in [
        json!({}),
        json!({"a": 1}),
        json!({"$nope": {"a": 1}}),
        json!({"$set": 1}),
        json!({"$set": {"$a": 1}}),
        json!({"$set": {"a": {"$b": 1}}}),
        json!([{"$match": {}}]),
        json!("x"),
    ] {
        assert!(check_update(&bad).is_err(), "{bad}");
    }
    assert!(update_is_idempotent(&json!({"$set": {"a": 1}})));
    assert!(!update_is_idempotent(&json!({"$inc": {"a": 1}})));
    assert!(!update_is_idempotent(&json!([{"$set": {"a": 1}}])));
    for bad in ["", "a$b", "system.x", "a\0b"] {
        assert!(check_collection(bad).is_err(), "{bad:?}");
    }
    check_collection("users.archive").unwrap();
    assert!(check_sort(&json!({"a": 2})).is_err());
    check_sort(&json!({"a": -1, "b": 1})).unwrap();
}
