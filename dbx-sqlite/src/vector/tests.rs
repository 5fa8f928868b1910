//! Unit tests of the encodings and the search order.
#![allow(clippy::unwrap_used)]
use super::*;
use dbx_core::uuid::Uuid;

#[test]
fn encoded_ids_sort_as_point_ids() {
    let mut ids = vec![
        PointId::Num(0),
        PointId::Num(1),
        PointId::Num(255),
        PointId::Num(256),
        PointId::Num(u64::MAX),
        PointId::Uuid(Uuid::nil()),
        PointId::Uuid(Uuid::from_u128(1)),
        PointId::Uuid(Uuid::from_u128(u128::MAX)),
    ];
    ids.reverse();
    let mut by_bytes = ids.clone();
    by_bytes.sort_by(|a, b| IdKey::new(*a).as_slice().cmp(IdKey::new(*b).as_slice()));
    ids.sort();
    assert_eq!(by_bytes, ids);
    for id in ids {
        assert_eq!(decode_id(IdKey::new(id).as_slice()).unwrap(), id);
    }
    for bad in [&[][..], &[0, 1, 2], &[2; 9], &[1; 9]] {
        assert_eq!(decode_id(bad).unwrap_err().kind(), ErrorKind::Decode);
    }
}

#[test]
fn vectors_round_trip_in_four_bytes_per_component() {
    let v = [1.5f32, -0.0, f32::MIN_POSITIVE, 3.25e10];
    let mut bytes = Vec::new();
    encode_vector(&v, &mut bytes);
    assert_eq!(bytes.len(), 16);
    let mut back = [0f32; 4];
    decode_into(&bytes, &mut back).unwrap();
    assert_eq!(back.map(f32::to_bits), v.map(f32::to_bits));
    let mut wrong = [0f32; 3];
    assert_eq!(
        decode_into(&bytes, &mut wrong).unwrap_err().kind(),
        ErrorKind::Decode
    );
    assert!(decode_into(&bytes[..15], &mut [0f32; 4]).is_err());
}

#[test]
fn table_names_keep_case_apart() {
    assert_eq!(table_name("docs"), "\"dbx_vec_docs\"");
    assert_eq!(table_name("Docs"), "\"dbx_vec_^docs\"");
    assert_ne!(
        table_name("aB").to_ascii_lowercase(),
        table_name("ab").to_ascii_lowercase()
    );
    assert_eq!(table_name("a-b_C9"), "\"dbx_vec_a-b_^c9\"");
}

#[test]
fn top_k_keeps_the_best_with_ties_by_id() {
    /// The ids a top-`k` keeps of `scored`, best first.
    fn best(k: usize, distance: Distance, scored: &[(u64, f32)]) -> Vec<PointId> {
        let mut top = TopK::new(k);
        for &(id, score) in scored {
            let key = rank_key(distance, score);
            if top.may_admit(key) && top.admits(key, PointId::Num(id)) {
                top.push(Candidate {
                    key,
                    id: PointId::Num(id),
                    score,
                    rowid: 0,
                    payload: None,
                });
            }
        }
        top.into_best_first().iter().map(|c| c.id).collect()
    }
    let scored = [
        (5u64, 0.5f32),
        (1, 0.9),
        (9, 0.9),
        (3, 0.9),
        (2, 0.1),
        (0, 0.9),
    ];
    assert_eq!(
        best(3, Distance::Cosine, &scored),
        [0u64, 1, 3].map(PointId::Num)
    );
    let scored = [(1u64, 3.0f32), (2, 1.0), (3, f32::NAN), (4, 2.0), (5, -0.0)];
    assert_eq!(
        best(2, Distance::Euclid, &scored),
        [5u64, 2].map(PointId::Num)
    );
    assert_eq!(rank_key(Distance::Euclid, 0.0).to_bits(), 0f32.to_bits());
}

/// A backend on a fresh in-memory database with mirrors of at most `max`
/// bytes in all.
async fn backend(max: u64) -> crate::SqliteBackend {
    let url = format!("sqlite::memory:?vector_mirror_max_bytes={max}");
    crate::SqliteBackend::open(&dbx_core::ConnectOptions::from_url(&url).unwrap())
        .await
        .unwrap()
}

/// `n` points of dimension 4 with ids from `first`.
fn points(first: u64, n: u64) -> Vec<Point> {
    (first..first + n)
        .map(|i| Point::new(i, vec![i as f32, 1.0, -(i as f32), 0.5]))
        .collect()
}

async fn top_ids(v: &SqliteVectors, name: &str, k: usize) -> Vec<PointId> {
    v.search(name, &Search::new(vec![1.0, 0.0, 0.0, 0.0], k))
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_stay_within_their_bound() {
    let one = mirror_bytes(100, 4);
    // Room for one collection of 100 points, not two.
    let b = backend(one + one / 2).await;
    let v = &b.vectors;
    for name in ["a", "b", "big"] {
        v.create_collection(name, 4, Distance::Dot).await.unwrap();
    }
    v.upsert("a", &points(0, 100)).await.unwrap();
    v.upsert("b", &points(1000, 100)).await.unwrap();
    v.upsert("big", &points(5000, 200)).await.unwrap();
    assert_eq!(v.mirrors.held(), 0);
    assert_eq!(top_ids(v, "a", 2).await, [99u64, 98].map(PointId::Num));
    assert_eq!(v.mirrors.held(), one);
    // Loading b evicts a.
    assert_eq!(top_ids(v, "b", 1).await, [PointId::Num(1099)]);
    assert_eq!(v.mirrors.held(), one);
    // Too large on its own: scanned by rows, b's mirror kept.
    assert_eq!(top_ids(v, "big", 1).await, [PointId::Num(5199)]);
    assert_eq!(v.mirrors.held(), one);
    // A write to the big one is still seen (no mirror to go stale).
    v.upsert("big", &[Point::new(7u64, vec![1e6, 0.0, 0.0, 0.0])])
        .await
        .unwrap();
    assert_eq!(top_ids(v, "big", 1).await, [PointId::Num(7)]);
    // Deleting from b makes its mirror stale: reloaded, smaller.
    v.delete_ids("b", &[PointId::Num(1099)]).await.unwrap();
    assert_eq!(top_ids(v, "b", 1).await, [PointId::Num(1098)]);
    assert_eq!(v.mirrors.held(), mirror_bytes(99, 4));
    // Dropping a collection frees its mirror.
    assert!(v.drop_collection("b").await.unwrap());
    assert_eq!(v.mirrors.held(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_off_hold_nothing_and_search_the_same() {
    let off = backend(0).await;
    let on = backend(1 << 20).await;
    for b in [&off, &on] {
        let v = &b.vectors;
        v.create_collection("c", 4, Distance::Euclid).await.unwrap();
        v.upsert("c", &points(0, 300)).await.unwrap();
    }
    let q = Search::new(vec![3.0, 1.0, -3.5, 0.0], 7).with_vectors(true);
    let a = off.vectors.search("c", &q).await.unwrap();
    let b = on.vectors.search("c", &q).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(off.vectors.mirrors.held(), 0);
    assert_eq!(on.vectors.mirrors.held(), mirror_bytes(300, 4));
    // Searching with the wrong dimension is refused before any mirror.
    let e = on
        .vectors
        .search("c", &Search::new(vec![1.0; 5], 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
