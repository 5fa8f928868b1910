//! Key-value conformance: the contract of `dbx_core::kv`, written once.

use crate::{expect_kind, prefix};
use dbx::{Dbx, ErrorKind, Ttl};
use futures_util::TryStreamExt;
use std::collections::BTreeSet;
use std::time::Duration;

const SHORT: Duration = Duration::from_millis(60);
/// Long enough after `SHORT` that the key has certainly expired.
const PAST_SHORT: Duration = Duration::from_millis(200);

pub async fn get_missing_is_none(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("get_missing");
    assert_eq!(kv.get(&format!("{p}nope")).await.unwrap(), None);
    assert!(!kv.exists(&format!("{p}nope")).await.unwrap());
}

pub async fn set_then_get_roundtrips_bytes(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("roundtrip");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    for (i, value) in [
        all_bytes.clone(),
        Vec::new(),
        b"plain".to_vec(),
        vec![0; 100_000],
    ]
    .iter()
    .enumerate()
    {
        let key = format!("{p}{i}");
        kv.set(&key, value, None).await.unwrap();
        assert_eq!(
            kv.get(&key).await.unwrap().as_ref(),
            Some(value),
            "value {i}"
        );
        assert!(kv.exists(&key).await.unwrap());
    }
}

pub async fn set_overwrites_value_and_clears_ttl(db: &Dbx) {
    let kv = db.kv().unwrap();
    let key = format!("{}k", prefix("overwrite"));
    kv.set(&key, b"one", Some(Duration::from_secs(100)))
        .await
        .unwrap();
    assert!(matches!(kv.ttl(&key).await.unwrap(), Ttl::Expires(_)));
    kv.set(&key, b"two", None).await.unwrap();
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(kv.ttl(&key).await.unwrap(), Ttl::Persistent);
}

pub async fn expired_keys_are_gone_everywhere(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("expiry");
    let key = format!("{p}k");
    let set_at = std::time::Instant::now();
    kv.set(&key, b"v", Some(SHORT)).await.unwrap();
    kv.set(&format!("{p}stays"), b"v", None).await.unwrap();
    // Present until its TTL has passed; on a loaded machine the TTL may
    // already be over by the time this read runs.
    match kv.get(&key).await.unwrap() {
        Some(v) => assert_eq!(v, b"v"),
        None => assert!(
            set_at.elapsed() >= SHORT,
            "the key was gone {:?} after it was set with a TTL of {SHORT:?}",
            set_at.elapsed()
        ),
    }
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(kv.get(&key).await.unwrap(), None);
    assert!(!kv.exists(&key).await.unwrap());
    assert_eq!(kv.ttl(&key).await.unwrap(), Ttl::Missing);
    assert_eq!(kv.mget(&[key.as_str()]).await.unwrap(), vec![None]);
    assert_eq!(kv.scan_keys(&p).await.unwrap(), vec![format!("{p}stays")]);
    assert!(!kv.expire(&key, Duration::from_secs(5)).await.unwrap());
    assert!(
        !kv.delete(&key).await.unwrap(),
        "deleting an expired key reports it absent"
    );
}

pub async fn set_nx_only_when_absent_or_expired(db: &Dbx) {
    let kv = db.kv().unwrap();
    let key = format!("{}k", prefix("set_nx"));
    assert!(kv.set_nx(&key, b"first", None).await.unwrap());
    assert!(!kv.set_nx(&key, b"second", None).await.unwrap());
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(&b"first"[..]));
    kv.set(&key, b"short", Some(SHORT)).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        kv.set_nx(&key, b"third", Some(Duration::from_secs(100)))
            .await
            .unwrap()
    );
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(&b"third"[..]));
    assert!(matches!(kv.ttl(&key).await.unwrap(), Ttl::Expires(_)));
}

pub async fn set_nx_has_one_winner(db: &Dbx) {
    let kv = db.kv().unwrap().clone();
    let key = format!("{}lock", prefix("set_nx_race"));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (kv, key) = (kv.clone(), key.clone());
            tokio::spawn(async move { kv.set_nx(&key, format!("{i}"), None).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub async fn delete_reports_whether_key_existed(db: &Dbx) {
    let kv = db.kv().unwrap();
    let key = format!("{}k", prefix("delete"));
    assert!(!kv.delete(&key).await.unwrap());
    kv.set(&key, b"v", None).await.unwrap();
    assert!(kv.delete(&key).await.unwrap());
    assert_eq!(kv.get(&key).await.unwrap(), None);
    assert!(!kv.delete(&key).await.unwrap());
}

pub async fn incr_follows_redis_semantics(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("incr");
    let key = format!("{p}n");
    assert_eq!(kv.incr(&key, 1).await.unwrap(), 1);
    assert_eq!(kv.incr(&key, 41).await.unwrap(), 42);
    assert_eq!(kv.incr(&key, -50).await.unwrap(), -8);
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(&b"-8"[..]));
    // A value written by set is a counter if it is ASCII decimal.
    let set_key = format!("{p}set");
    kv.set(&set_key, b"10", None).await.unwrap();
    assert_eq!(kv.incr(&set_key, 5).await.unwrap(), 15);
    // Not an integer: WrongType, value untouched.
    let text = format!("{p}text");
    kv.set(&text, b"ten", None).await.unwrap();
    expect_kind(kv.incr(&text, 1).await, ErrorKind::WrongType);
    assert_eq!(kv.get(&text).await.unwrap().as_deref(), Some(&b"ten"[..]));
    // Overflow: OutOfRange, value untouched.
    let big = format!("{p}big");
    kv.set(&big, i64::MAX.to_string(), None).await.unwrap();
    expect_kind(kv.incr(&big, 1).await, ErrorKind::OutOfRange);
    assert_eq!(
        kv.get(&big).await.unwrap(),
        Some(i64::MAX.to_string().into_bytes())
    );
    let small = format!("{p}small");
    kv.set(&small, i64::MIN.to_string(), None).await.unwrap();
    expect_kind(kv.incr(&small, -1).await, ErrorKind::OutOfRange);
}

pub async fn incr_keeps_ttl(db: &Dbx) {
    let kv = db.kv().unwrap();
    let key = format!("{}n", prefix("incr_ttl"));
    kv.set(&key, b"1", Some(Duration::from_secs(100)))
        .await
        .unwrap();
    assert_eq!(kv.incr(&key, 1).await.unwrap(), 2);
    match kv.ttl(&key).await.unwrap() {
        Ttl::Expires(left) => {
            assert!(left <= Duration::from_secs(100) && left > Duration::from_secs(50))
        }
        other => panic!("TTL lost by incr: {other:?}"),
    }
    // An expired counter starts again from 0, without TTL.
    kv.set(&key, b"7", Some(SHORT)).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(kv.incr(&key, 1).await.unwrap(), 1);
    assert_eq!(kv.ttl(&key).await.unwrap(), Ttl::Persistent);
}

pub async fn incr_is_atomic_under_concurrency(db: &Dbx) {
    let kv = db.kv().unwrap().clone();
    let key = format!("{}n", prefix("incr_race"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (kv, key) = (kv.clone(), key.clone());
            tokio::spawn(async move {
                for _ in 0..25 {
                    kv.incr(&key, 1).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(&b"200"[..]));
}

pub async fn mget_and_mset(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("multi");
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    kv.mset(&[(a.as_str(), &b"1"[..]), (b.as_str(), &b"2"[..])], None)
        .await
        .unwrap();
    let got = kv.mget(&[&a, &c, &b, &a]).await.unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"1".to_vec()),
            None,
            Some(b"2".to_vec()),
            Some(b"1".to_vec())
        ]
    );
    assert!(kv.mget::<&str>(&[]).await.unwrap().is_empty());
    // Last entry wins for a repeated key; TTL applies to every entry.
    kv.mset(
        &[(a.as_str(), "x"), (a.as_str(), "y"), (c.as_str(), "z")],
        Some(Duration::from_secs(100)),
    )
    .await
    .unwrap();
    assert_eq!(kv.get(&a).await.unwrap().as_deref(), Some(&b"y"[..]));
    assert!(matches!(kv.ttl(&c).await.unwrap(), Ttl::Expires(_)));
    kv.mset::<&str, &[u8]>(&[], None).await.unwrap();
}

pub async fn mset_is_all_or_nothing_on_bad_input(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("mset_bad");
    let good = format!("{p}good");
    let entries = vec![
        (good.clone(), b"v".to_vec()),
        (String::new(), b"v".to_vec()),
    ];
    expect_kind(kv.mset(&entries, None).await, ErrorKind::InvalidInput);
    assert_eq!(kv.get(&good).await.unwrap(), None, "nothing half-written");
}

pub async fn expire_and_ttl(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("ttl");
    let key = format!("{p}k");
    assert_eq!(kv.ttl(&key).await.unwrap(), Ttl::Missing);
    assert!(!kv.expire(&key, Duration::from_secs(10)).await.unwrap());
    kv.set(&key, b"v", None).await.unwrap();
    assert_eq!(kv.ttl(&key).await.unwrap(), Ttl::Persistent);
    assert!(kv.expire(&key, Duration::from_secs(10)).await.unwrap());
    match kv.ttl(&key).await.unwrap() {
        Ttl::Expires(left) => {
            assert!(left <= Duration::from_secs(10), "{left:?}");
            assert!(left > Duration::from_secs(5), "{left:?}");
        }
        other => panic!("expected an expiring key, got {other:?}"),
    }
    // Millisecond resolution: a sub-second TTL is kept as such.
    kv.set(&key, b"v", Some(Duration::from_millis(1500)))
        .await
        .unwrap();
    match kv.ttl(&key).await.unwrap() {
        Ttl::Expires(left) => {
            assert!(left <= Duration::from_millis(1500) && left > Duration::from_millis(500))
        }
        other => panic!("expected an expiring key, got {other:?}"),
    }
    assert!(kv.expire(&key, SHORT).await.unwrap());
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(kv.ttl(&key).await.unwrap(), Ttl::Missing);
}

pub async fn invalid_input_is_rejected_and_nothing_stored(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("invalid");
    let key = format!("{p}k");
    expect_kind(kv.get("").await, ErrorKind::InvalidInput);
    expect_kind(kv.set("", b"v", None).await, ErrorKind::InvalidInput);
    let long = format!("{p}{}", "x".repeat(dbx::core::kv::MAX_KEY_LEN));
    expect_kind(kv.set(&long, b"v", None).await, ErrorKind::InvalidInput);
    expect_kind(kv.get(&long).await, ErrorKind::InvalidInput);
    let huge = vec![0u8; dbx::core::kv::MAX_VALUE_LEN + 1];
    expect_kind(kv.set(&key, &huge, None).await, ErrorKind::InvalidInput);
    expect_kind(
        kv.set(&key, b"v", Some(Duration::ZERO)).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        kv.set(&key, b"v", Some(Duration::MAX)).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        kv.set_nx(&key, b"v", Some(Duration::ZERO)).await,
        ErrorKind::InvalidInput,
    );
    assert_eq!(kv.get(&key).await.unwrap(), None, "nothing was stored");
    kv.set(&key, b"v", None).await.unwrap();
    expect_kind(
        kv.expire(&key, Duration::ZERO).await,
        ErrorKind::InvalidInput,
    );
    assert_eq!(
        kv.ttl(&key).await.unwrap(),
        Ttl::Persistent,
        "bad expire changed nothing"
    );
    expect_kind(kv.mget(&["ok", ""]).await, ErrorKind::InvalidInput);
    // The limit itself is fine.
    let max_key = format!("{p}{}", "k".repeat(dbx::core::kv::MAX_KEY_LEN - p.len()));
    kv.set(&max_key, b"v", None).await.unwrap();
    assert!(kv.exists(&max_key).await.unwrap());
}

pub async fn keys_are_stored_verbatim(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("verbatim");
    let odd = [
        "'; DROP TABLE dbx_kv; --",
        "\" OR 1=1 --",
        "*",
        "?",
        "[a-z]",
        "%",
        "_",
        "\\",
        "with space",
        "new\nline",
        "nul\0byte",
        "ünïcødé ✓ 🦀",
    ];
    for (i, s) in odd.iter().enumerate() {
        let key = format!("{p}{s}");
        kv.set(&key, s.as_bytes(), None).await.unwrap();
        assert_eq!(
            kv.get(&key).await.unwrap().as_deref(),
            Some(s.as_bytes()),
            "key {i}"
        );
    }
    let mut found = kv.scan_keys(&p).await.unwrap();
    found.sort();
    let mut expected: Vec<String> = odd.iter().map(|s| format!("{p}{s}")).collect();
    expected.sort();
    assert_eq!(found, expected);
}

pub async fn scan_matches_prefix_literally(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("scan_literal");
    for k in [
        "a*", "a*b", "a?", "ab", "a%", "a%x", "a_", "a_x", "a[", "a[1]", "b*",
    ] {
        kv.set(&format!("{p}{k}"), b"v", None).await.unwrap();
    }
    let p = p.as_str();
    let scan = |s: &str| {
        let full = format!("{p}{s}");
        async move {
            let mut keys: Vec<String> = kv.scan_keys(&full).await.unwrap();
            keys.sort();
            keys.into_iter()
                .map(|k| k[p.len()..].to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(scan("a*").await, vec!["a*", "a*b"]);
    assert_eq!(scan("a?").await, vec!["a?"]);
    assert_eq!(scan("a%").await, vec!["a%", "a%x"]);
    assert_eq!(scan("a_").await, vec!["a_", "a_x"]);
    assert_eq!(scan("a[").await, vec!["a[", "a[1]"]);
    assert_eq!(scan("zz").await, Vec::<String>::new());
    assert_eq!(scan("").await.len(), 11);
}

pub async fn scan_pages_yield_each_key_once(db: &Dbx) {
    let kv = db.kv().unwrap();
    let p = prefix("scan_pages");
    let expected: BTreeSet<String> = (0..53).map(|i| format!("{p}{i:03}")).collect();
    for k in &expected {
        kv.set(k, b"v", None).await.unwrap();
    }
    kv.set(&format!("{}other", prefix("scan_other")), b"v", None)
        .await
        .unwrap();
    for page in [1, 7, 53, 1000] {
        let keys: Vec<String> = kv
            .scan_with_page_size(&p, page)
            .try_collect()
            .await
            .unwrap();
        let unique: BTreeSet<String> = keys.iter().cloned().collect();
        assert_eq!(unique.len(), keys.len(), "page size {page}: duplicates");
        assert_eq!(unique, expected, "page size {page}");
    }
}

pub async fn json_helpers(db: &Dbx) {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Session {
        user: String,
        roles: Vec<String>,
    }
    let kv = db.kv().unwrap();
    let key = format!("{}s", prefix("json"));
    let s = Session {
        user: "ada".into(),
        roles: vec!["admin".into()],
    };
    kv.set_json(&key, &s, None).await.unwrap();
    assert_eq!(kv.get_json::<Session>(&key).await.unwrap(), Some(s));
    assert_eq!(
        kv.get_json::<Session>(&format!("{key}-missing"))
            .await
            .unwrap(),
        None
    );
    expect_kind(kv.get_json::<u32>(&key).await, ErrorKind::Decode);
}

pub async fn closed_database_refuses_operations(db: &Dbx) {
    let kv = db.kv().unwrap().clone();
    let key = format!("{}k", prefix("closed"));
    kv.set(&key, b"v", None).await.unwrap();
    db.close().await;
    db.close().await;
    assert!(db.is_closed());
    expect_kind(kv.get(&key).await, ErrorKind::Closed);
    expect_kind(
        db.kv().unwrap().set(&key, b"v", None).await,
        ErrorKind::Closed,
    );
    expect_kind(db.health().await, ErrorKind::Closed);
}

/// Every key-value conformance test, by name.
#[macro_export]
macro_rules! kv_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            kv,
            [
                get_missing_is_none,
                set_then_get_roundtrips_bytes,
                set_overwrites_value_and_clears_ttl,
                expired_keys_are_gone_everywhere,
                set_nx_only_when_absent_or_expired,
                set_nx_has_one_winner,
                delete_reports_whether_key_existed,
                incr_follows_redis_semantics,
                incr_keeps_ttl,
                incr_is_atomic_under_concurrency,
                mget_and_mset,
                mset_is_all_or_nothing_on_bad_input,
                expire_and_ttl,
                invalid_input_is_rejected_and_nothing_stored,
                keys_are_stored_verbatim,
                scan_matches_prefix_literally,
                scan_pages_yield_each_key_once,
                json_helpers,
                closed_database_refuses_operations,
            ]
        );
    };
}
