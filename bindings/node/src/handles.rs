//! The native class behind `index.js`'s `Dbx`: one flat set of methods,
//! each returning a Promise fed by a Rust future on napi's Tokio runtime.
//! `index.js` groups them into `db.sql`, `db.kv`, `db.docs`, `db.vectors`.

use std::future::Future;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value as Json;

use dbx::{Distance, ErrorKind, Filter, FindOptions, Include, Point, PointId, Search};

use crate::convert::{self, Slot, int_js, json, json_arg, json_js, map_js};
use crate::errors::{Failure, Res, invalid_input};

/// A Promise of `fut`'s result, made a JavaScript value by `convert` on the
/// JavaScript thread; a failure rejects it with a dbx error object.
fn spawn<'env, T, F, C>(
    env: &'env Env,
    fut: F,
    convert: C,
) -> Result<PromiseRaw<'env, Unknown<'env>>>
where
    T: Send + 'static,
    F: Future<Output = Res<T>> + Send + 'static,
    C: FnOnce(&'env Env, T) -> Result<Unknown<'env>> + 'static,
{
    env.spawn_future_with_callback(async move { Ok::<_, Error>(fut.await) }, move |env, out| {
        match out {
            Ok(v) => convert(env, v),
            Err(f) => Err(f.into_napi(env)),
        }
    })
}

/// `spawn` for the calls whose arguments may already have failed to
/// convert: the failure is thrown at once (index.js makes it a rejection).
fn run<'env, T, F, C>(
    env: &'env Env,
    fut: Res<F>,
    convert: C,
) -> Result<PromiseRaw<'env, Unknown<'env>>>
where
    T: Send + 'static,
    F: Future<Output = Res<T>> + Send + 'static,
    C: FnOnce(&'env Env, T) -> Result<Unknown<'env>> + 'static,
{
    match fut {
        Ok(fut) => spawn(env, fut, convert),
        Err(f) => Err(f.into_napi(env)),
    }
}

fn undefined(env: &Env, (): ()) -> Result<Unknown<'_>> {
    ().into_unknown(env)
}

fn boolean(env: &Env, b: bool) -> Result<Unknown<'_>> {
    b.into_unknown(env)
}

fn count(env: &Env, n: u64) -> Result<Unknown<'_>> {
    int_js(env, i64::try_from(n).unwrap_or(i64::MAX))
}

/// A duration given in milliseconds.
fn millis(what: &str, ms: f64) -> Res<Duration> {
    if !ms.is_finite() || ms <= 0.0 {
        return Err(invalid_input(format!(
            "{what} must be a positive number of milliseconds, not {ms}"
        )));
    }
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| invalid_input(format!("{what}: {e}")))
}

/// A whole, non-negative number (a limit, a dimension...).
fn whole(what: &str, n: f64) -> Res<u64> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        Ok(n as u64)
    } else {
        Err(invalid_input(format!(
            "{what} must be a whole number of at least 0, not {n}"
        )))
    }
}

fn usize_of(what: &str, n: f64) -> Res<usize> {
    usize::try_from(whole(what, n)?).map_err(|_| invalid_input(format!("{what} is too large")))
}

fn obj_json(what: &str, o: Option<&Object<'_>>) -> Res<Json> {
    match o {
        Some(o) => json_arg(what, o),
        None => Ok(Json::Object(Default::default())),
    }
}

fn point_id(slot: Slot<'_, '_>) -> Res<PointId> {
    match convert::value(slot)? {
        dbx::Value::Int(i) if i >= 0 => Ok(PointId::Num(i as u64)),
        dbx::Value::Text(s) => s
            .parse::<dbx::uuid::Uuid>()
            .map(PointId::Uuid)
            .map_err(|_| invalid_input(format!("point id {s:?} is not a UUID"))),
        other => Err(invalid_input(format!(
            "a point id must be a whole number of at least 0 or a UUID string, not a {}",
            other.type_name()
        ))),
    }
}

fn point_ids(ids: &Array<'_>) -> Res<Vec<PointId>> {
    (0..ids.len())
        .map(|i| point_id(Slot::Elem(ids, i)))
        .collect()
}

fn point_id_js(env: &Env, id: PointId) -> Result<Unknown<'_>> {
    match id {
        PointId::Num(n) => count(env, n),
        PointId::Uuid(u) => u.to_string().into_unknown(env),
    }
}

/// A vector as dbx stores it (32-bit floats).
fn floats(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&f| f as f32).collect()
}

fn point(slot: Slot<'_, '_>) -> Res<Point> {
    let shape = || invalid_input("a point is an object { id, vector, payload? }");
    let obj: Object = match slot.get::<Object>() {
        Ok(Some(o)) => o,
        _ => return Err(shape()),
    };
    let id = point_id(Slot::Prop(&obj, "id"))?;
    let vector: Vec<f64> = obj
        .get("vector")
        .map_err(|_| invalid_input("a point's vector must be an array of numbers"))?
        .ok_or_else(|| invalid_input("a point needs a vector"))?;
    let p = Point::new(id, floats(&vector));
    let payload = json(Slot::Prop(&obj, "payload"), 0)?;
    match payload {
        Json::Null => Ok(p),
        payload => p.with_payload(payload).map_err(Failure::from),
    }
}

fn opt_filter(filter: Option<&Object<'_>>) -> Res<Option<Filter>> {
    match filter {
        Some(f) => Ok(Some(
            Filter::from_json(&json_arg("filter", f)?).map_err(Failure::from)?,
        )),
        None => Ok(None),
    }
}

fn record<'env>(
    env: &'env Env,
    id: PointId,
    score: Option<f32>,
    payload: Option<serde_json::Map<String, Json>>,
    vector: Option<Vec<f32>>,
) -> Result<Object<'env>> {
    let mut o = Object::new(env)?;
    o.set("id", point_id_js(env, id)?)?;
    if let Some(s) = score {
        o.set("score", f64::from(s))?;
    }
    match payload {
        Some(p) => o.set("payload", map_js(env, &p)?)?,
        None => o.set("payload", Null)?,
    }
    match vector {
        Some(v) => o.set("vector", v.into_iter().map(f64::from).collect::<Vec<_>>())?,
        None => o.set("vector", Null)?,
    }
    Ok(o)
}

fn update_result(env: &Env, r: dbx::UpdateResult) -> Result<Unknown<'_>> {
    let mut o = Object::new(env)?;
    o.set("matched", count(env, r.matched)?)?;
    o.set("modified", count(env, r.modified)?)?;
    match &r.upserted_id {
        Some(id) => o.set("upsertedId", json_js(env, id)?)?,
        None => o.set("upsertedId", Null)?,
    }
    o.into_unknown(env)
}

/// Connect to the database a URL names; times in milliseconds.
#[napi(js_name = "connect")]
pub(crate) fn connect<'env>(
    env: &'env Env,
    url: String,
    timeout_ms: Option<f64>,
    connect_timeout_ms: Option<f64>,
    pool_max_size: Option<f64>,
) -> Result<PromiseRaw<'env, Unknown<'env>>> {
    let builder = (|| {
        let mut b = dbx::Dbx::builder(&url);
        if let Some(t) = timeout_ms {
            b = b.timeout(millis("timeout", t)?);
        }
        if let Some(t) = connect_timeout_ms {
            b = b.connect_timeout(millis("connectTimeout", t)?);
        }
        if let Some(n) = pool_max_size {
            b = b.pool_max_size(usize_of("poolMaxSize", n)?);
        }
        Ok(b)
    })();
    run(
        env,
        builder.map(|b| async move {
            let db = b.connect().await.map_err(Failure::from)?;
            Ok((db, tokio::runtime::Handle::current()))
        }),
        |env, (db, rt)| NativeDbx { db: Some(db), rt }.into_unknown(env),
    )
}

/// A connected database (the native half of `Dbx`).
#[napi]
#[derive(Debug)]
pub(crate) struct NativeDbx {
    db: Option<dbx::Dbx>,
    /// napi's Tokio runtime, which the database's pools and tasks live on.
    rt: tokio::runtime::Handle,
}

impl Drop for NativeDbx {
    fn drop(&mut self) {
        // Garbage collected (or the environment is being torn down): the
        // pools are dropped on the runtime, off the JavaScript thread. When
        // the runtime is already shut down, `spawn` drops the future here
        // at once, still inside the runtime's context (drivers that spawn
        // clean-up tasks in `Drop` need one).
        if let Some(db) = self.db.take() {
            let _context = self.rt.enter();
            drop(self.rt.spawn(async move { drop(db) }));
        }
    }
}

impl NativeDbx {
    fn db(&self) -> Res<dbx::Dbx> {
        self.db
            .clone()
            .ok_or_else(|| Failure::new(ErrorKind::Closed, "the database was dropped"))
    }

    fn sql(&self) -> Res<dbx::Dbx> {
        let db = self.db()?;
        db.sql().map_err(Failure::from)?;
        Ok(db)
    }

    fn kv(&self) -> Res<dbx::Dbx> {
        let db = self.db()?;
        db.kv().map_err(Failure::from)?;
        Ok(db)
    }

    fn collection(&self, name: &str) -> Res<dbx::Collection> {
        Ok(self.db()?.docs().map_err(Failure::from)?.collection(name))
    }

    fn vectors(&self, name: &str) -> Res<dbx::VectorCollection> {
        Ok(self
            .db()?
            .vectors()
            .map_err(Failure::from)?
            .collection(name))
    }
}

// napi-rs exports only `pub` methods; the class itself is crate-private.
#[allow(unreachable_pub)]
#[napi]
impl NativeDbx {
    /// "sqlite", "redis", "postgresql", "mongodb" or "qdrant".
    #[napi(getter)]
    pub fn backend(&self, env: &Env) -> Result<&'static str> {
        self.db()
            .map(|db| db.backend_name())
            .map_err(|f| f.into_napi(env))
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self, env: &Env) -> Result<bool> {
        self.db()
            .map(|db| db.is_closed())
            .map_err(|f| f.into_napi(env))
    }

    /// Throws `unsupported` unless the backend has the capability
    /// ("sql", "kv", "docs", "vectors").
    #[napi]
    pub fn require(&self, env: &Env, capability: String) -> Result<()> {
        let check = || -> Res<()> {
            let db = self.db()?;
            match capability.as_str() {
                "sql" => db.sql().map(drop),
                "kv" => db.kv().map(drop),
                "docs" => db.docs().map(drop),
                "vectors" => db.vectors().map(drop),
                other => return Err(invalid_input(format!("no capability {other:?}"))),
            }
            .map_err(Failure::from)
        };
        check().map_err(|f| f.into_napi(env))
    }

    /// One real round trip: { backend, latencyMs, breaker, pool? }.
    #[napi]
    pub fn health<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        run(
            env,
            self.db()
                .map(|db| async move { db.health().await.map_err(Failure::from) }),
            |env, h| {
                let mut o = Object::new(env)?;
                o.set("backend", h.backend)?;
                o.set("latencyMs", h.latency.as_secs_f64() * 1000.0)?;
                o.set("breaker", format!("{:?}", h.breaker).to_lowercase())?;
                if let Some(p) = h.pool {
                    let mut pool = Object::new(env)?;
                    pool.set("maxSize", p.max_size as f64)?;
                    pool.set("size", p.size as f64)?;
                    pool.set("idle", p.idle as f64)?;
                    pool.set("inUse", p.in_use as f64)?;
                    pool.set("waiting", p.waiting as f64)?;
                    o.set("pool", pool)?;
                }
                o.into_unknown(env)
            },
        )
    }

    /// Shut down gracefully (idempotent); true unless it gave up waiting
    /// for operations in flight.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        run(
            env,
            self.db().map(|db| async move { Ok(db.close().await) }),
            boolean,
        )
    }

    // --- SQL --------------------------------------------------------------

    /// Rows as plain objects.
    #[napi]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        sql: String,
        params: Option<Array<'_>>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let params = convert::params(params.as_ref())?;
            let db = self.sql()?;
            Ok(async move {
                let sql_handle = db.sql().map_err(Failure::from)?;
                sql_handle.query(&sql, &params).await.map_err(Failure::from)
            })
        })();
        run(env, fut, |env, rows| {
            convert::rows(env, rows)?.into_unknown(env)
        })
    }

    /// Rows affected.
    #[napi]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        sql: String,
        params: Option<Array<'_>>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let params = convert::params(params.as_ref())?;
            let db = self.sql()?;
            Ok(async move {
                let sql_handle = db.sql().map_err(Failure::from)?;
                sql_handle
                    .execute(&sql, &params)
                    .await
                    .map_err(Failure::from)
            })
        })();
        run(env, fut, count)
    }

    /// Several statements separated by `;`, without parameters.
    #[napi]
    pub fn execute_script<'env>(
        &self,
        env: &'env Env,
        script: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self.sql().map(|db| async move {
            let sql_handle = db.sql().map_err(Failure::from)?;
            sql_handle
                .execute_script(&script)
                .await
                .map_err(Failure::from)
        });
        run(env, fut, undefined)
    }

    // --- key-value --------------------------------------------------------

    /// A Buffer, or null.
    #[napi]
    pub fn kv_get<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self.kv().map(|db| async move {
            let kv = db.kv().map_err(Failure::from)?;
            kv.get(&key).await.map_err(Failure::from)
        });
        run(env, fut, |env, v| match v {
            Some(b) => Buffer::from(b).into_unknown(env),
            None => Null.into_unknown(env),
        })
    }

    /// Store bytes (a string as UTF-8), with an optional TTL in milliseconds.
    #[napi]
    pub fn kv_set<'env>(
        &self,
        env: &'env Env,
        key: String,
        value: Either<String, Uint8Array>,
        ttl_ms: Option<f64>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let value = match value {
            Either::A(s) => s.into_bytes(),
            Either::B(b) => b.to_vec(),
        };
        let fut = (|| {
            let ttl = ttl_ms.map(|t| millis("ttl", t)).transpose()?;
            let db = self.kv()?;
            Ok(async move {
                let kv = db.kv().map_err(Failure::from)?;
                kv.set(&key, value, ttl).await.map_err(Failure::from)
            })
        })();
        run(env, fut, undefined)
    }

    /// True if the key existed.
    #[napi]
    pub fn kv_delete<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self.kv().map(|db| async move {
            let kv = db.kv().map_err(Failure::from)?;
            kv.delete(&key).await.map_err(Failure::from)
        });
        run(env, fut, boolean)
    }

    #[napi]
    pub fn kv_exists<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self.kv().map(|db| async move {
            let kv = db.kv().map_err(Failure::from)?;
            kv.exists(&key).await.map_err(Failure::from)
        });
        run(env, fut, boolean)
    }

    /// Add `delta` (a number or BigInt) to the integer at `key`; the new
    /// value (a BigInt beyond 2^53).
    #[napi]
    pub fn kv_incr<'env>(
        &self,
        env: &'env Env,
        key: String,
        delta: Either<f64, BigInt>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let delta = match delta {
                Either::A(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 => f as i64,
                Either::A(f) => {
                    return Err(invalid_input(format!(
                        "delta must be a whole number (a BigInt beyond 2^53), not {f}"
                    )));
                }
                Either::B(b) => match b.get_i64() {
                    (i, true) => i,
                    _ => {
                        return Err(Failure::new(
                            ErrorKind::OutOfRange,
                            "delta does not fit in 64 bits",
                        ));
                    }
                },
            };
            let db = self.kv()?;
            Ok(async move {
                let kv = db.kv().map_err(Failure::from)?;
                kv.incr(&key, delta).await.map_err(Failure::from)
            })
        })();
        run(env, fut, int_js)
    }

    /// Set a new TTL (milliseconds) on an existing key; true if it exists.
    #[napi]
    pub fn kv_expire<'env>(
        &self,
        env: &'env Env,
        key: String,
        ttl_ms: f64,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let ttl = millis("ttl", ttl_ms)?;
            let db = self.kv()?;
            Ok(async move {
                let kv = db.kv().map_err(Failure::from)?;
                kv.expire(&key, ttl).await.map_err(Failure::from)
            })
        })();
        run(env, fut, boolean)
    }

    /// Every key starting with `prefix`, sorted.
    #[napi]
    pub fn kv_scan<'env>(
        &self,
        env: &'env Env,
        prefix: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self.kv().map(|db| async move {
            let kv = db.kv().map_err(Failure::from)?;
            let mut keys = kv.scan_keys(&prefix).await.map_err(Failure::from)?;
            keys.sort();
            Ok(keys)
        });
        run(env, fut, |env, keys| keys.into_unknown(env))
    }

    // --- documents --------------------------------------------------------

    /// Insert one document; its `_id`.
    #[napi]
    pub fn doc_insert_one<'env>(
        &self,
        env: &'env Env,
        collection: String,
        doc: Object<'_>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let doc = json_arg("document", &doc)?;
            let c = self.collection(&collection)?;
            Ok(async move { c.insert_one(&doc).await.map_err(Failure::from) })
        })();
        run(env, fut, |env, id| json_js(env, &id))
    }

    /// Insert documents; their `_id`s.
    #[napi]
    pub fn doc_insert_many<'env>(
        &self,
        env: &'env Env,
        collection: String,
        docs: Array<'_>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let docs = (0..docs.len())
                .map(|i| json(Slot::Elem(&docs, i), 0))
                .collect::<Res<Vec<_>>>()?;
            let c = self.collection(&collection)?;
            Ok(async move { c.insert_many(&docs).await.map_err(Failure::from) })
        })();
        run(env, fut, |env, ids| json_js(env, &Json::Array(ids)))
    }

    /// The documents matching `filter`, as an array.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn doc_find<'env>(
        &self,
        env: &'env Env,
        collection: String,
        filter: Option<Object<'_>>,
        sort: Option<Object<'_>>,
        projection: Option<Object<'_>>,
        limit: Option<f64>,
        skip: Option<f64>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let filter = obj_json("filter", filter.as_ref())?;
            let mut options = FindOptions::new();
            if let Some(s) = &sort {
                options = options.sort(json_arg("sort", s)?);
            }
            if let Some(p) = &projection {
                options = options.projection(json_arg("projection", p)?);
            }
            if let Some(n) = limit {
                options = options.limit(whole("limit", n)?);
            }
            if let Some(n) = skip {
                options = options.skip(whole("skip", n)?);
            }
            let c = self.collection(&collection)?;
            Ok(async move { c.find_all(&filter, options).await.map_err(Failure::from) })
        })();
        run(env, fut, |env, docs| json_js(env, &Json::Array(docs)))
    }

    /// The first document matching `filter`, or null.
    #[napi]
    pub fn doc_find_one<'env>(
        &self,
        env: &'env Env,
        collection: String,
        filter: Option<Object<'_>>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let filter = obj_json("filter", filter.as_ref())?;
            let c = self.collection(&collection)?;
            Ok(async move { c.find_one(&filter).await.map_err(Failure::from) })
        })();
        run(env, fut, |env, doc| match doc {
            Some(d) => json_js(env, &d),
            None => Null.into_unknown(env),
        })
    }

    /// How many documents match `filter`.
    #[napi]
    pub fn doc_count<'env>(
        &self,
        env: &'env Env,
        collection: String,
        filter: Option<Object<'_>>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let filter = obj_json("filter", filter.as_ref())?;
            let c = self.collection(&collection)?;
            Ok(async move { c.count(&filter).await.map_err(Failure::from) })
        })();
        run(env, fut, count)
    }

    /// Apply `update` to the first match (`many`: to every match).
    #[napi]
    pub fn doc_update<'env>(
        &self,
        env: &'env Env,
        collection: String,
        filter: Object<'_>,
        update: Object<'_>,
        many: bool,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let filter = json_arg("filter", &filter)?;
            let update = json_arg("update", &update)?;
            let c = self.collection(&collection)?;
            Ok(async move {
                if many {
                    c.update_many(&filter, &update).await
                } else {
                    c.update_one(&filter, &update).await
                }
                .map_err(Failure::from)
            })
        })();
        run(env, fut, update_result)
    }

    /// Delete the first match (`many`: every match); how many were deleted.
    #[napi]
    pub fn doc_delete<'env>(
        &self,
        env: &'env Env,
        collection: String,
        filter: Object<'_>,
        many: bool,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let filter = json_arg("filter", &filter)?;
            let c = self.collection(&collection)?;
            Ok(async move {
                if many {
                    c.delete_many(&filter).await
                } else {
                    c.delete_one(&filter).await
                }
                .map_err(Failure::from)
            })
        })();
        run(env, fut, count)
    }

    /// Drop the collection.
    #[napi]
    pub fn doc_drop<'env>(
        &self,
        env: &'env Env,
        collection: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self
            .collection(&collection)
            .map(|c| async move { c.drop().await.map_err(Failure::from) });
        run(env, fut, undefined)
    }

    // --- vectors ----------------------------------------------------------

    /// The vector collections' names.
    #[napi]
    pub fn vec_list<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self.db().and_then(|db| {
            db.vectors().map_err(Failure::from)?;
            Ok(async move {
                let v = db.vectors().map_err(Failure::from)?;
                v.list().await.map_err(Failure::from)
            })
        });
        run(env, fut, |env, names| names.into_unknown(env))
    }

    /// Create the collection (`ifMissing`: unless it exists; then resolves
    /// to whether this call created it).
    #[napi]
    pub fn vec_create<'env>(
        &self,
        env: &'env Env,
        collection: String,
        dimension: f64,
        distance: String,
        if_missing: bool,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let dimension = usize_of("dimension", dimension)?;
            let d = distance.parse::<Distance>().map_err(Failure::from)?;
            let c = self.vectors(&collection)?;
            Ok(async move {
                if if_missing {
                    c.create_if_missing(dimension, d).await
                } else {
                    c.create(dimension, d).await.map(|()| true)
                }
                .map_err(Failure::from)
            })
        })();
        run(env, fut, boolean)
    }

    /// Drop the collection; true if it existed.
    #[napi]
    pub fn vec_drop<'env>(
        &self,
        env: &'env Env,
        collection: String,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = self
            .vectors(&collection)
            .map(|c| async move { c.drop().await.map_err(Failure::from) });
        run(env, fut, boolean)
    }

    /// Insert or replace points: objects { id, vector, payload? }.
    #[napi]
    pub fn vec_upsert<'env>(
        &self,
        env: &'env Env,
        collection: String,
        points: Array<'_>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let points = (0..points.len())
                .map(|i| point(Slot::Elem(&points, i)))
                .collect::<Res<Vec<_>>>()?;
            let c = self.vectors(&collection)?;
            Ok(async move { c.upsert(&points).await.map_err(Failure::from) })
        })();
        run(env, fut, undefined)
    }

    /// The `limit` nearest points: { id, score, payload, vector }, best first.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn vec_search<'env>(
        &self,
        env: &'env Env,
        collection: String,
        vector: Vec<f64>,
        limit: f64,
        filter: Option<Object<'_>>,
        score_threshold: Option<f64>,
        with_payload: bool,
        with_vectors: bool,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let mut s = Search::new(floats(&vector), usize_of("limit", limit)?)
                .with_payload(with_payload)
                .with_vectors(with_vectors);
            if let Some(f) = opt_filter(filter.as_ref())? {
                s = s.filter(f);
            }
            if let Some(t) = score_threshold {
                s = s.score_threshold(t as f32);
            }
            let c = self.vectors(&collection)?;
            Ok(async move { c.search(&s).await.map_err(Failure::from) })
        })();
        run(env, fut, |env, hits| {
            let mut arr = env.create_array(hits.len() as u32)?;
            for (i, h) in hits.into_iter().enumerate() {
                arr.set(
                    i as u32,
                    record(env, h.id, Some(h.score), h.payload, h.vector)?,
                )?;
            }
            arr.into_unknown(env)
        })
    }

    /// The points with these ids that exist: { id, payload, vector }.
    #[napi]
    pub fn vec_get<'env>(
        &self,
        env: &'env Env,
        collection: String,
        ids: Array<'_>,
        with_payload: bool,
        with_vectors: bool,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let ids = point_ids(&ids)?;
            let include = Include::new(with_payload, with_vectors);
            let c = self.vectors(&collection)?;
            Ok(async move { c.get_with(&ids, include).await.map_err(Failure::from) })
        })();
        run(env, fut, |env, records| {
            let mut arr = env.create_array(records.len() as u32)?;
            for (i, r) in records.into_iter().enumerate() {
                arr.set(i as u32, record(env, r.id, None, r.payload, r.vector)?)?;
            }
            arr.into_unknown(env)
        })
    }

    /// Delete points by id.
    #[napi]
    pub fn vec_delete<'env>(
        &self,
        env: &'env Env,
        collection: String,
        ids: Array<'_>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let ids = point_ids(&ids)?;
            let c = self.vectors(&collection)?;
            Ok(async move { c.delete(&ids).await.map_err(Failure::from) })
        })();
        run(env, fut, undefined)
    }

    /// How many points (matching `filter` when given).
    #[napi]
    pub fn vec_count<'env>(
        &self,
        env: &'env Env,
        collection: String,
        filter: Option<Object<'_>>,
    ) -> Result<PromiseRaw<'env, Unknown<'env>>> {
        let fut = (|| {
            let filter = opt_filter(filter.as_ref())?;
            let c = self.vectors(&collection)?;
            Ok(async move {
                match filter {
                    Some(f) => c.count_where(&f).await,
                    None => c.count().await,
                }
                .map_err(Failure::from)
            })
        })();
        run(env, fut, count)
    }
}
