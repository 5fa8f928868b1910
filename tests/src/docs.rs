//! Document conformance: the contract of `dbx_core::document`, written once.

use crate::{expect_kind, table};
use dbx::serde_json::{Value, json};
use dbx::{Collection, Dbx, ErrorKind, FindOptions, IndexSpec};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

fn coll(db: &Dbx, test: &str) -> Collection {
    db.docs().unwrap().collection(&table(test))
}

pub async fn insert_and_find_one_roundtrip(db: &Dbx) {
    let c = coll(db, "roundtrip");
    let doc = json!({
        "name": "Ada",
        "age": 36,
        "big": {"$numberLong": "9007199254740993"},
        "born": {"$date": "1815-12-10T00:00:00Z"},
        "ref": {"$oid": "65a1b2c3d4e5f6a7b8c9d0e1"},
        "tags": ["math", "engines"],
        "nested": {"a": {"b": [1, {"c": null}]}},
        "ratio": 0.5,
        "ok": true,
    });
    let id = c.insert_one(&doc).await.unwrap();
    assert!(
        id.get("$oid").is_some(),
        "generated _id is an ObjectId: {id}"
    );
    let back = c.find_one(&json!({"_id": id})).await.unwrap().unwrap();
    assert_eq!(back["_id"], id);
    assert_eq!(back["name"], "Ada");
    assert_eq!(back["age"], 36);
    assert_eq!(back["big"], json!(9007199254740993i64));
    assert_eq!(back["ref"], json!({"$oid": "65a1b2c3d4e5f6a7b8c9d0e1"}));
    assert!(back["born"].get("$date").is_some(), "{}", back["born"]);
    assert_eq!(back["tags"], json!(["math", "engines"]));
    assert_eq!(back["nested"], json!({"a": {"b": [1, {"c": null}]}}));
    assert_eq!(back["ratio"], 0.5);
    assert_eq!(back["ok"], true);
    // A date filter in Extended JSON matches the stored date.
    let n = c
        .count(&json!({"born": {"$lt": {"$date": "1900-01-01T00:00:00Z"}}}))
        .await
        .unwrap();
    assert_eq!(n, 1);
    // A given _id is kept and returned.
    let id = c.insert_one(&json!({"_id": "mine", "x": 1})).await.unwrap();
    assert_eq!(id, json!("mine"));
    assert_eq!(c.find_one(&json!({"nope": 1})).await.unwrap(), None);
    c.drop().await.unwrap();
}

pub async fn insert_many_returns_ids_in_order(db: &Dbx) {
    let c = coll(db, "insert_many");
    let docs: Vec<Value> = (0..5).map(|i| json!({"_id": i * 10, "i": i})).collect();
    let ids = c.insert_many(&docs).await.unwrap();
    assert_eq!(
        ids,
        vec![json!(0), json!(10), json!(20), json!(30), json!(40)]
    );
    let generated = c
        .insert_many(&[json!({"a": 1}), json!({"a": 2})])
        .await
        .unwrap();
    assert_eq!(generated.len(), 2);
    assert_ne!(generated[0], generated[1]);
    assert_eq!(c.insert_many(&[]).await.unwrap(), Vec::<Value>::new());
    assert_eq!(c.count(&json!({})).await.unwrap(), 7);
    c.drop().await.unwrap();
}

pub async fn find_with_filter_projection_sort_limit_skip(db: &Dbx) {
    let c = coll(db, "find");
    let docs: Vec<Value> = (0..10)
        .map(|i| json!({"i": i, "even": i % 2 == 0, "name": format!("n{i}")}))
        .collect();
    c.insert_many(&docs).await.unwrap();
    let found = c
        .find_all(
            &json!({"even": true, "i": {"$gte": 2}}),
            FindOptions::new()
                .projection(json!({"_id": 0, "i": 1}))
                .sort(json!({"i": -1}))
                .skip(1)
                .limit(2),
        )
        .await
        .unwrap();
    assert_eq!(found, vec![json!({"i": 6}), json!({"i": 4})]);
    let or = c
        .find_all(
            &json!({"$or": [{"i": 1}, {"name": {"$in": ["n3", "n5"]}}]}),
            FindOptions::new()
                .sort(json!({"i": 1}))
                .projection(json!({"i": 1, "_id": 0})),
        )
        .await
        .unwrap();
    assert_eq!(or, vec![json!({"i": 1}), json!({"i": 3}), json!({"i": 5})]);
    let first = c
        .find_one_with(&json!({}), FindOptions::new().sort(json!({"i": -1})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first["i"], 9);
    c.drop().await.unwrap();
}

pub async fn find_streams_in_batches(db: &Dbx) {
    let c = coll(db, "stream");
    let docs: Vec<Value> = (0..250).map(|i| json!({"i": i})).collect();
    c.insert_many(&docs).await.unwrap();
    let mut stream = c
        .find(
            &json!({}),
            FindOptions::new().sort(json!({"i": 1})).batch_size(7),
        )
        .await
        .unwrap();
    let mut next = 0;
    while let Some(doc) = stream.next().await {
        assert_eq!(doc.unwrap()["i"], next);
        next += 1;
    }
    assert_eq!(next, 250);
    // Dropping a stream half-way is fine.
    let mut stream = c
        .find(&json!({}), FindOptions::new().batch_size(5))
        .await
        .unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    assert_eq!(c.count(&json!({})).await.unwrap(), 250);
    c.drop().await.unwrap();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
    #[serde(default)]
    tags: Vec<String>,
}

pub async fn typed_documents_through_serde(db: &Dbx) {
    let c = coll(db, "typed");
    let ada = User {
        name: "Ada".into(),
        age: 36,
        tags: vec!["math".into()],
    };
    c.insert(&ada).await.unwrap();
    c.insert_all(&[
        User {
            name: "Bob".into(),
            age: 20,
            tags: vec![],
        },
        User {
            name: "Cy".into(),
            age: 50,
            tags: vec![],
        },
    ])
    .await
    .unwrap();
    let got: User = c
        .find_one_as(&json!({"name": "Ada"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ada);
    let older: Vec<User> = c
        .find_as::<User>(
            &json!({"age": {"$gt": 30}}),
            FindOptions::new()
                .sort(json!({"age": 1}))
                .projection(json!({"_id": 0})),
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["Ada", "Cy"]
    );
    // A document of another shape is a Decode error, not a panic.
    c.insert_one(&json!({"name": 5})).await.unwrap();
    let e = expect_kind(
        c.find_one_as::<User>(&json!({"name": 5})).await,
        ErrorKind::Decode,
    );
    assert!(e.to_string().contains("docs.find_one"), "{e}");
    c.drop().await.unwrap();
}

pub async fn update_operators_and_upsert(db: &Dbx) {
    let c = coll(db, "update");
    c.insert_many(&[
        json!({"_id": 1, "n": 1, "tmp": "x", "list": [1]}),
        json!({"_id": 2, "n": 5}),
        json!({"_id": 3, "n": 9}),
    ])
    .await
    .unwrap();
    let r = c
        .update_one(
            &json!({"_id": 1}),
            &json!({"$set": {"name": "one", "deep.x": 1}, "$inc": {"n": 10}, "$unset": {"tmp": ""}, "$push": {"list": 2}}),
        )
        .await
        .unwrap();
    assert_eq!((r.matched, r.modified, r.upserted_id), (1, 1, None));
    let one = c.find_one(&json!({"_id": 1})).await.unwrap().unwrap();
    assert_eq!(
        one,
        json!({"_id": 1, "n": 11, "list": [1, 2], "name": "one", "deep": {"x": 1}})
    );
    let r = c
        .update_many(&json!({"n": {"$gte": 5}}), &json!({"$inc": {"n": 1}}))
        .await
        .unwrap();
    assert_eq!((r.matched, r.modified), (3, 3));
    let r = c
        .update_one(&json!({"_id": 99}), &json!({"$set": {"n": 0}}))
        .await
        .unwrap();
    assert_eq!((r.matched, r.modified, r.upserted_id), (0, 0, None));
    let r = c
        .upsert_one(&json!({"_id": 99}), &json!({"$set": {"n": 0}}))
        .await
        .unwrap();
    assert_eq!(r.upserted_id, Some(json!(99)));
    assert_eq!(
        c.find_one(&json!({"_id": 99})).await.unwrap(),
        Some(json!({"_id": 99, "n": 0}))
    );
    // Upserting again updates.
    let r = c
        .upsert_one(&json!({"_id": 99}), &json!({"$inc": {"n": 2}}))
        .await
        .unwrap();
    assert_eq!((r.matched, r.upserted_id), (1, None));
    assert_eq!(c.count(&json!({"n": 2})).await.unwrap(), 1);
    c.drop().await.unwrap();
}

pub async fn replace_keeps_id_and_upserts(db: &Dbx) {
    let c = coll(db, "replace");
    c.insert_one(&json!({"_id": "a", "x": 1, "y": 2}))
        .await
        .unwrap();
    let r = c
        .replace_one(&json!({"_id": "a"}), &json!({"z": 3}), false)
        .await
        .unwrap();
    assert_eq!((r.matched, r.modified), (1, 1));
    assert_eq!(
        c.find_one(&json!({"_id": "a"})).await.unwrap(),
        Some(json!({"_id": "a", "z": 3}))
    );
    let r = c
        .replace_one(&json!({"_id": "b"}), &json!({"z": 4}), false)
        .await
        .unwrap();
    assert_eq!(r.matched, 0);
    assert_eq!(c.count(&json!({})).await.unwrap(), 1);
    let r = c
        .replace(&json!({"_id": "b"}), &json!({"z": 4}), true)
        .await
        .unwrap();
    assert_eq!(r.upserted_id, Some(json!("b")));
    assert_eq!(c.count(&json!({})).await.unwrap(), 2);
    c.drop().await.unwrap();
}

pub async fn delete_and_count(db: &Dbx) {
    let c = coll(db, "delete");
    let docs: Vec<Value> = (0..6).map(|i| json!({"i": i, "g": i % 3})).collect();
    c.insert_many(&docs).await.unwrap();
    assert_eq!(c.count(&json!({})).await.unwrap(), 6);
    assert_eq!(c.count(&json!({"g": 0})).await.unwrap(), 2);
    assert_eq!(c.delete_one(&json!({"g": 0})).await.unwrap(), 1);
    assert_eq!(c.count(&json!({"g": 0})).await.unwrap(), 1);
    assert_eq!(
        c.delete_many(&json!({"g": {"$in": [0, 1]}})).await.unwrap(),
        3
    );
    assert_eq!(c.delete_one(&json!({"g": 7})).await.unwrap(), 0);
    assert_eq!(c.delete_many(&json!({})).await.unwrap(), 2);
    assert_eq!(c.count(&json!({})).await.unwrap(), 0);
    // A collection that was never written is empty, not an error.
    let empty = coll(db, "never");
    assert_eq!(empty.count(&json!({})).await.unwrap(), 0);
    assert_eq!(empty.find_one(&json!({})).await.unwrap(), None);
    assert_eq!(empty.list_indexes().await.unwrap(), Vec::<String>::new());
    empty.drop().await.unwrap();
    c.drop().await.unwrap();
}

pub async fn unique_indexes_and_duplicate_keys(db: &Dbx) {
    let c = coll(db, "unique");
    let name = c
        .create_index(
            IndexSpec::new(json!({"email": 1}))
                .unique(true)
                .name("by_email"),
        )
        .await
        .unwrap();
    assert_eq!(name, "by_email");
    // Creating the same index again is fine.
    c.create_index(
        IndexSpec::new(json!({"email": 1}))
            .unique(true)
            .name("by_email"),
    )
    .await
    .unwrap();
    let plain = c
        .create_index(IndexSpec::new(json!({"age": -1, "name": 1})))
        .await
        .unwrap();
    let mut names = c.list_indexes().await.unwrap();
    names.sort();
    let mut want = vec!["_id_".to_owned(), "by_email".to_owned(), plain.clone()];
    want.sort();
    assert_eq!(names, want);
    c.insert_one(&json!({"email": "a@x"})).await.unwrap();
    let e = expect_kind(
        c.insert_one(&json!({"email": "a@x"})).await,
        ErrorKind::Conflict,
    );
    assert!(!e.is_transient(), "{e}");
    assert_eq!(e.operation(), Some("docs.insert_one"));
    assert_eq!(
        e.code(),
        Some("11000"),
        "MongoDB's duplicate key code: {e:?}"
    );
    // Duplicate _id too, and through an update.
    c.insert_one(&json!({"_id": 1, "email": "b@x"}))
        .await
        .unwrap();
    expect_kind(c.insert_one(&json!({"_id": 1})).await, ErrorKind::Conflict);
    expect_kind(
        c.update_one(&json!({"_id": 1}), &json!({"$set": {"email": "a@x"}}))
            .await,
        ErrorKind::Conflict,
    );
    // insert_many stops at the duplicate; the documents before it stay.
    let e = expect_kind(
        c.insert_many(&[
            json!({"email": "c@x"}),
            json!({"email": "a@x"}),
            json!({"email": "d@x"}),
        ])
        .await,
        ErrorKind::Conflict,
    );
    assert!(e.message().contains("document 1"), "{e}");
    assert_eq!(c.count(&json!({"email": "c@x"})).await.unwrap(), 1);
    assert_eq!(c.count(&json!({"email": "d@x"})).await.unwrap(), 0);
    c.drop_index("by_email").await.unwrap();
    c.insert_one(&json!({"email": "a@x"})).await.unwrap();
    expect_kind(c.drop_index("by_email").await, ErrorKind::NotFound);
    c.drop().await.unwrap();
}

pub async fn malformed_filters_are_rejected_before_sending(db: &Dbx) {
    let c = coll(db, "bad_filter");
    c.insert_one(&json!({"a": 1})).await.unwrap();
    for (filter, why) in [
        (json!([1, 2]), "JSON object"),
        (json!("a"), "JSON object"),
        (json!({"$where2": 1}), "$where2"),
        (json!({"a": {"$gt": 1, "b": 2}}), "mixes"),
        (json!({"a": {"$nope": 1}}), "$nope"),
        (json!({"$or": {"a": 1}}), "$or"),
        (json!({"$and": []}), "non-empty"),
        (json!({"a": {"$in": 3}}), "array"),
        (json!({"_id": {"$oid": "not-hex"}}), "Extended JSON"),
        (json!({"d": {"$date": {"bad": 1}}}), "Extended JSON"),
        (json!({"n": {"$numberLong": "x"}}), "Extended JSON"),
    ] {
        let e = expect_kind(c.find_one(&filter).await, ErrorKind::InvalidInput);
        assert!(e.message().contains(why), "{filter}: {e}");
        expect_kind(c.count(&filter).await, ErrorKind::InvalidInput);
        expect_kind(
            c.find(&filter, FindOptions::new()).await.map(drop),
            ErrorKind::InvalidInput,
        );
        expect_kind(c.delete_many(&filter).await, ErrorKind::InvalidInput);
        expect_kind(
            c.update_many(&filter, &json!({"$set": {"a": 2}})).await,
            ErrorKind::InvalidInput,
        );
    }
    for (update, why) in [
        (json!({}), "at least one"),
        (json!({"a": 2}), "not an operator"),
        (json!({"$sett": {"a": 2}}), "$sett"),
        (json!({"$set": 5}), "document of fields"),
        (json!({"$set": {"$a": 1}}), "field path"),
        (json!([]), "at least one stage"),
    ] {
        let e = expect_kind(
            c.update_many(&json!({}), &update).await,
            ErrorKind::InvalidInput,
        );
        assert!(e.message().contains(why), "{update}: {e}");
    }
    for opts in [
        FindOptions::new().sort(json!({"a": 2})),
        FindOptions::new().sort(json!(["a"])),
        FindOptions::new().projection(json!(1)),
    ] {
        expect_kind(
            c.find(&json!({}), opts).await.map(drop),
            ErrorKind::InvalidInput,
        );
    }
    for bad in [
        IndexSpec::new(json!({})),
        IndexSpec::new(json!({"a": 2})),
        IndexSpec::new(json!(["a"])),
        IndexSpec::new(json!({"a": 1, "b": 1})).expire_after(std::time::Duration::from_secs(1)),
    ] {
        expect_kind(c.create_index(bad).await, ErrorKind::InvalidInput);
    }
    // Nothing changed.
    assert_eq!(
        c.find_all(&json!({}), FindOptions::new().projection(json!({"_id": 0})))
            .await
            .unwrap(),
        vec![json!({"a": 1})]
    );
    c.drop().await.unwrap();
}

/// A value whose `Serialize` fails, as serde allows.
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to serialize"))
    }
}

pub async fn bad_documents_are_rejected_and_nothing_written(db: &Dbx) {
    let c = coll(db, "bad_docs");
    for (doc, why) in [
        (json!(5), "JSON object"),
        (json!([{"a": 1}]), "JSON object"),
        (json!({"$set": 1}), "`$`"),
        (json!({"a.b": 1}), "`.`"),
        (json!({"a": {"$x": 1}}), "a.$x"),
        (json!({"a": [{"b.c": 1}]}), "b.c"),
        (json!({"": 1}), "empty"),
        (json!({"a\u{0}b": 1}), "NUL"),
        (json!({"_id": [1, 2]}), "array"),
        (json!({"d": {"$date": "yesterday"}}), "Extended JSON"),
    ] {
        let e = expect_kind(c.insert_one(&doc).await, ErrorKind::InvalidInput);
        assert!(e.message().contains(why), "{doc}: {e}");
        expect_kind(
            c.replace_one(&json!({}), &doc, true).await,
            ErrorKind::InvalidInput,
        );
    }
    // Over 16 MiB once encoded.
    let big = json!({"blob": "x".repeat(16 * 1024 * 1024)});
    let e = expect_kind(c.insert_one(&big).await, ErrorKind::InvalidInput);
    assert!(e.message().contains("16777216"), "{e}");
    // A batch with one bad document writes none of them.
    let e = expect_kind(
        c.insert_many(&[json!({"ok": 1}), json!({"ok": 2}), big.clone()])
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(e.message().contains("document 2"), "{e}");
    let e = expect_kind(
        c.insert_many(&[json!({"ok": 1}), json!({"bad.name": 2})])
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(e.message().contains("document 1"), "{e}");
    // Values serde cannot serialize.
    let mut by_tuple = HashMap::new();
    by_tuple.insert((1, 2), "x");
    let e = expect_kind(c.insert(&by_tuple).await, ErrorKind::InvalidInput);
    assert!(e.message().contains("serialized"), "{e}");
    expect_kind(c.insert(&Unserializable).await, ErrorKind::InvalidInput);
    expect_kind(c.insert(&5u8).await, ErrorKind::InvalidInput);
    expect_kind(
        c.insert_all(&[Unserializable, Unserializable]).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        c.replace(&json!({}), &Unserializable, true).await,
        ErrorKind::InvalidInput,
    );
    // Too deep.
    let mut deep = json!(1);
    for _ in 0..120 {
        deep = json!({ "a": deep });
    }
    expect_kind(c.insert_one(&deep).await, ErrorKind::InvalidInput);
    assert_eq!(c.count(&json!({})).await.unwrap(), 0);
    c.drop().await.unwrap();
}

pub async fn invalid_collection_names_are_rejected(db: &Dbx) {
    let docs = db.docs().unwrap();
    let long = "c".repeat(300);
    for name in ["", "a$b", "system.users", "a\u{0}b", long.as_str()] {
        let c = docs.collection(name);
        expect_kind(
            c.insert_one(&json!({"a": 1})).await,
            ErrorKind::InvalidInput,
        );
        expect_kind(c.find_one(&json!({})).await, ErrorKind::InvalidInput);
        expect_kind(c.count(&json!({})).await, ErrorKind::InvalidInput);
        expect_kind(c.drop().await, ErrorKind::InvalidInput);
    }
}

pub async fn transactions_commit_and_roll_back(db: &Dbx) {
    let docs = db.docs().unwrap();
    let name = table("tx");
    let c = docs.collection(&name);
    // Create the collection outside the transaction first.
    c.insert_one(&json!({"_id": 0, "n": 0})).await.unwrap();
    let mut tx = match docs.begin().await {
        Ok(tx) => tx,
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("SKIPPED ASSERTION: this server has no transactions ({e})");
            c.drop().await.unwrap();
            return;
        }
        Err(e) => panic!("begin: {e}"),
    };
    tx.insert_one(&name, &json!({"_id": 1})).await.unwrap();
    tx.update_one(&name, &json!({"_id": 0}), &json!({"$inc": {"n": 1}}))
        .await
        .unwrap();
    assert_eq!(tx.count(&name, &json!({})).await.unwrap(), 2);
    tx.commit().await.unwrap();
    assert_eq!(c.count(&json!({})).await.unwrap(), 2);
    let mut tx = docs.begin().await.unwrap();
    tx.insert_one(&name, &json!({"_id": 2})).await.unwrap();
    tx.delete_many(&name, &json!({"_id": 0})).await.unwrap();
    assert_eq!(
        tx.find_one(&name, &json!({"_id": 2})).await.unwrap(),
        Some(json!({"_id": 2}))
    );
    tx.rollback().await.unwrap();
    assert_eq!(c.count(&json!({})).await.unwrap(), 2);
    assert_eq!(
        c.find_one(&json!({"_id": 0})).await.unwrap(),
        Some(json!({"_id": 0, "n": 1}))
    );
    // Bad input inside a transaction is rejected like outside.
    let mut tx = docs.begin().await.unwrap();
    expect_kind(
        tx.insert_one(&name, &json!({"$x": 1})).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        tx.find_one(&name, &json!({"$bad": 1})).await,
        ErrorKind::InvalidInput,
    );
    tx.rollback().await.unwrap();
    c.drop().await.unwrap();
}

pub async fn closed_database_refuses_document_operations(db: &Dbx) {
    let c = coll(db, "closed");
    c.insert_one(&json!({"a": 1})).await.unwrap();
    db.close().await;
    expect_kind(c.insert_one(&json!({"a": 2})).await, ErrorKind::Closed);
    expect_kind(c.find_one(&json!({})).await, ErrorKind::Closed);
    expect_kind(
        c.find(&json!({}), FindOptions::new()).await.map(drop),
        ErrorKind::Closed,
    );
    expect_kind(
        db.docs().unwrap().begin().await.map(drop),
        ErrorKind::Closed,
    );
}

/// One `#[tokio::test]` per document conformance test, on both runtime
/// flavors, against the database `$connect` opens.
#[macro_export]
macro_rules! docs_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            docs,
            [
                insert_and_find_one_roundtrip,
                insert_many_returns_ids_in_order,
                find_with_filter_projection_sort_limit_skip,
                find_streams_in_batches,
                typed_documents_through_serde,
                update_operators_and_upsert,
                replace_keeps_id_and_upserts,
                delete_and_count,
                unique_indexes_and_duplicate_keys,
                malformed_filters_are_rejected_before_sending,
                bad_documents_are_rejected_and_nothing_written,
                invalid_collection_names_are_rejected,
                transactions_commit_and_roll_back,
                closed_database_refuses_document_operations,
            ]
        );
    };
}
