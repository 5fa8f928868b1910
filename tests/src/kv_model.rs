//! Model-based test of the key-value contract: random sequences of
//! operations run against a real backend and against an in-memory
//! reference model, and every result must agree (proptest shrinks a
//! failing sequence to a short one).
//!
//! Time is kept out of the model: TTLs are an hour long, so a key with a
//! TTL never expires during a case; the model checks that `ttl` tells a
//! missing, a persistent and an expiring key apart, and that `set` clears a
//! TTL while `incr` keeps it.

use dbx::kv::Ttl;
use dbx::{Dbx, ErrorKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// One key-value operation. Keys are indexes into a small set, so the
/// operations of a case meet each other's keys.
#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Set(u8, Vec<u8>, bool),
    SetNx(u8, Vec<u8>),
    Delete(u8),
    Exists(u8),
    Incr(u8, i64),
    MGet(Vec<u8>),
    MSet(Vec<(u8, Vec<u8>)>, bool),
    Expire(u8),
    Ttl(u8),
    Scan,
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Counters, valid and not: incr must tell them apart alike.
        (-1000i64..1000).prop_map(|n| n.to_string().into_bytes()),
        Just(b"9223372036854775807".to_vec()),
        Just(b"01".to_vec()),
        Just(b" 1".to_vec()),
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    prop_oneof![
        key.clone().prop_map(Op::Get),
        (key.clone(), value(), any::<bool>()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        (key.clone(), value()).prop_map(|(k, v)| Op::SetNx(k, v)),
        key.clone().prop_map(Op::Delete),
        key.clone().prop_map(Op::Exists),
        (
            key.clone(),
            prop_oneof![-5i64..5, Just(i64::MAX), Just(i64::MIN)]
        )
            .prop_map(|(k, d)| Op::Incr(k, d)),
        proptest::collection::vec(key.clone(), 0..4).prop_map(Op::MGet),
        (
            proptest::collection::vec((key.clone(), value()), 0..4),
            any::<bool>()
        )
            .prop_map(|(e, t)| Op::MSet(e, t)),
        key.clone().prop_map(Op::Expire),
        key.prop_map(Op::Ttl),
        Just(Op::Scan),
    ]
}

/// The reference: a map from key to (value, has a TTL).
#[derive(Debug, Default)]
struct Model(BTreeMap<String, (Vec<u8>, bool)>);

/// What an operation returned, comparable between model and backend.
#[derive(Debug, PartialEq)]
enum Out {
    Unit,
    Bool(bool),
    Bytes(Option<Vec<u8>>),
    Many(Vec<Option<Vec<u8>>>),
    Int(i64),
    Ttl(&'static str),
    Keys(Vec<String>),
    Err(ErrorKind),
}

impl Model {
    fn apply(&mut self, op: &Op, key: &dyn Fn(u8) -> String) -> Out {
        match op {
            Op::Get(k) => Out::Bytes(self.0.get(&key(*k)).map(|e| e.0.clone())),
            Op::Set(k, v, ttl) => {
                self.0.insert(key(*k), (v.clone(), *ttl));
                Out::Unit
            }
            Op::SetNx(k, v) => match self.0.entry(key(*k)) {
                std::collections::btree_map::Entry::Occupied(_) => Out::Bool(false),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert((v.clone(), false));
                    Out::Bool(true)
                }
            },
            Op::Delete(k) => Out::Bool(self.0.remove(&key(*k)).is_some()),
            Op::Exists(k) => Out::Bool(self.0.contains_key(&key(*k))),
            Op::Incr(k, d) => {
                let k = key(*k);
                let (current, ttl) = match self.0.get(&k) {
                    None => (0, false),
                    Some((v, ttl)) => match dbx::driver::parse_counter(&k, v) {
                        Ok(n) => (n, *ttl),
                        Err(e) => return Out::Err(e.kind()),
                    },
                };
                match current.checked_add(*d) {
                    Some(n) => {
                        self.0.insert(k, (n.to_string().into_bytes(), ttl));
                        Out::Int(n)
                    }
                    None => Out::Err(ErrorKind::OutOfRange),
                }
            }
            Op::MGet(ks) => Out::Many(
                ks.iter()
                    .map(|k| self.0.get(&key(*k)).map(|e| e.0.clone()))
                    .collect(),
            ),
            Op::MSet(entries, ttl) => {
                for (k, v) in entries {
                    self.0.insert(key(*k), (v.clone(), *ttl));
                }
                Out::Unit
            }
            Op::Expire(k) => match self.0.get_mut(&key(*k)) {
                Some(e) => {
                    e.1 = true;
                    Out::Bool(true)
                }
                None => Out::Bool(false),
            },
            Op::Ttl(k) => Out::Ttl(match self.0.get(&key(*k)) {
                None => "missing",
                Some((_, false)) => "persistent",
                Some((_, true)) => "expires",
            }),
            Op::Scan => Out::Keys(self.0.keys().cloned().collect()),
        }
    }
}

async fn run(db: &Dbx, op: &Op, key: &dyn Fn(u8) -> String, prefix: &str) -> Out {
    let kv = db.kv().unwrap();
    let ttl = |t: bool| t.then_some(HOUR);
    let r = match op {
        Op::Get(k) => kv.get(&key(*k)).await.map(Out::Bytes),
        Op::Set(k, v, t) => kv.set(&key(*k), v, ttl(*t)).await.map(|()| Out::Unit),
        Op::SetNx(k, v) => kv.set_nx(&key(*k), v, None).await.map(Out::Bool),
        Op::Delete(k) => kv.delete(&key(*k)).await.map(Out::Bool),
        Op::Exists(k) => kv.exists(&key(*k)).await.map(Out::Bool),
        Op::Incr(k, d) => kv.incr(&key(*k), *d).await.map(Out::Int),
        Op::MGet(ks) => {
            let keys: Vec<String> = ks.iter().map(|k| key(*k)).collect();
            kv.mget(&keys).await.map(Out::Many)
        }
        Op::MSet(entries, t) => {
            let entries: Vec<(String, Vec<u8>)> =
                entries.iter().map(|(k, v)| (key(*k), v.clone())).collect();
            kv.mset(&entries, ttl(*t)).await.map(|()| Out::Unit)
        }
        Op::Expire(k) => kv.expire(&key(*k), HOUR).await.map(Out::Bool),
        Op::Ttl(k) => kv.ttl(&key(*k)).await.map(|t| {
            Out::Ttl(match t {
                Ttl::Missing => "missing",
                Ttl::Persistent => "persistent",
                Ttl::Expires(_) => "expires",
            })
        }),
        Op::Scan => kv.scan_keys(prefix).await.map(|mut keys| {
            keys.sort();
            Out::Keys(keys)
        }),
    };
    r.unwrap_or_else(|e| Out::Err(e.kind()))
}

/// Run `cases` random operation sequences against the database `connect`
/// opens, each under a key prefix of its own, comparing every result with
/// the model.
pub fn check<F>(name: &str, connect: F, cases: u32)
where
    F: Future<Output = Dbx>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(connect);
    let base = crate::prefix(&format!("model-{name}"));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    let outcome = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("{base}{n}:");
        let key = |k: u8| format!("{prefix}k{k}");
        let mut model = Model::default();
        rt.block_on(async {
            for (i, op) in ops.iter().enumerate() {
                let want = model.apply(op, &key);
                let got = run(&db, op, &key, &prefix).await;
                if got != want {
                    return Err(TestCaseError::fail(format!(
                        "{name}: operation {i} {op:?}: backend {got:?}, model {want:?}"
                    )));
                }
            }
            Ok(())
        })
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
