//! The Python classes: `Dbx` and its capability handles.

use std::sync::Arc;
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use serde_json::Value as Json;

use dbx::{Distance, Filter, FindOptions, Include, Point, PointId, Search};

use crate::convert::{self, from_json, map_to_dict, to_json, to_params};
use crate::errors::{invalid_input, new_err, to_py};
use crate::runtime::{runtime, spawn};

/// The connected database and the process it was connected in.
struct Shared {
    pid: u32,
    db: Option<dbx::Dbx>,
}

impl Shared {
    /// The database, unless this is a child process of the one that
    /// connected it: its pools and runtime did not survive `fork()`.
    fn db(&self) -> PyResult<dbx::Dbx> {
        if self.pid != std::process::id() {
            return Err(new_err(
                dbx::ErrorKind::Closed,
                format!(
                    "this dbx handle was connected in process {} before fork(); \
                     call dbx.Dbx.connect() again in this process",
                    self.pid
                ),
            ));
        }
        self.db
            .clone()
            .ok_or_else(|| new_err(dbx::ErrorKind::Closed, "the database was dropped"))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        if self.pid != std::process::id() {
            // Its connections belong to the parent's runtime, whose threads
            // do not exist here: dropping them could wait forever.
            std::mem::forget(db);
            return;
        }
        // Dropping pools may need the runtime's context (timers, sockets).
        match runtime() {
            Ok(rt) => {
                let _enter = rt.enter();
                drop(db);
            }
            Err(_) => drop(db),
        }
    }
}

type Db = Arc<Shared>;

/// Seconds (int, float or timedelta) as a Duration.
fn duration(what: &str, ob: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = if ob.hasattr("total_seconds")? {
        ob.call_method0("total_seconds")?.extract()?
    } else {
        ob.extract().map_err(|_| {
            invalid_input(format!(
                "{what} must be seconds (int or float) or a timedelta"
            ))
        })?
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(invalid_input(format!(
            "{what} must be a positive number of seconds, not {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| invalid_input(format!("{what}: {e}")))
}

fn opt_duration(what: &str, ob: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    match ob {
        Some(ob) if !ob.is_none() => duration(what, ob).map(Some),
        _ => Ok(None),
    }
}

fn none(py: Python<'_>, (): ()) -> PyResult<Bound<'_, PyAny>> {
    Ok(py.None().into_bound(py))
}

fn to_obj<T>(py: Python<'_>, v: T) -> PyResult<Bound<'_, PyAny>>
where
    T: for<'py> IntoPyObject<'py>,
{
    v.into_bound_py_any(py)
}

/// A connected database.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct Dbx {
    db: Db,
}

#[pymethods]
impl Dbx {
    /// Connect to the database a URL names.
    #[staticmethod]
    #[pyo3(signature = (url, *, timeout=None, connect_timeout=None, pool_max_size=None))]
    fn connect<'py>(
        py: Python<'py>,
        url: &str,
        timeout: Option<&Bound<'py, PyAny>>,
        connect_timeout: Option<&Bound<'py, PyAny>>,
        pool_max_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut builder = dbx::Dbx::builder(url);
        if let Some(t) = opt_duration("timeout", timeout)? {
            builder = builder.timeout(t);
        }
        if let Some(t) = opt_duration("connect_timeout", connect_timeout)? {
            builder = builder.connect_timeout(t);
        }
        if let Some(n) = pool_max_size {
            builder = builder.pool_max_size(n);
        }
        let pid = std::process::id();
        spawn(
            py,
            async move { builder.connect().await.map_err(to_py) },
            move |py, db| {
                let db = Arc::new(Shared { pid, db: Some(db) });
                Ok(Bound::new(py, Dbx { db })?.into_any())
            },
        )
    }

    /// The backend's name: "sqlite", "redis", "postgresql", "mongodb" or "qdrant".
    #[getter]
    fn backend(&self) -> PyResult<&'static str> {
        Ok(self.db.db()?.backend_name())
    }

    /// SQL, or `dbx.Unsupported`.
    #[getter]
    fn sql(&self) -> PyResult<Sql> {
        self.db.db()?.sql().map_err(to_py)?;
        Ok(Sql {
            db: Arc::clone(&self.db),
        })
    }

    /// Key-value, or `dbx.Unsupported`.
    #[getter]
    fn kv(&self) -> PyResult<Kv> {
        self.db.db()?.kv().map_err(to_py)?;
        Ok(Kv {
            db: Arc::clone(&self.db),
        })
    }

    /// Documents, or `dbx.Unsupported`.
    #[getter]
    fn docs(&self) -> PyResult<Docs> {
        self.db.db()?.docs().map_err(to_py)?;
        Ok(Docs {
            db: Arc::clone(&self.db),
        })
    }

    /// Vector collections, or `dbx.Unsupported`.
    #[getter]
    fn vectors(&self) -> PyResult<Vectors> {
        self.db.db()?.vectors().map_err(to_py)?;
        Ok(Vectors {
            db: Arc::clone(&self.db),
        })
    }

    /// One real round trip: {"backend", "latency" (seconds), "breaker", "pool"?}.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move { db.health().await.map_err(to_py) },
            |py, h| {
                let d = PyDict::new(py);
                d.set_item("backend", h.backend)?;
                d.set_item("latency", h.latency.as_secs_f64())?;
                d.set_item("breaker", format!("{:?}", h.breaker).to_lowercase())?;
                if let Some(p) = h.pool {
                    let pool = PyDict::new(py);
                    pool.set_item("max_size", p.max_size)?;
                    pool.set_item("size", p.size)?;
                    pool.set_item("idle", p.idle)?;
                    pool.set_item("in_use", p.in_use)?;
                    pool.set_item("waiting", p.waiting)?;
                    d.set_item("pool", pool)?;
                }
                Ok(d.into_any())
            },
        )
    }

    /// Shut down gracefully (idempotent); True unless it gave up waiting
    /// for operations in flight.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(py, async move { Ok(db.close().await) }, to_obj)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> PyResult<bool> {
        Ok(self.db.db()?.is_closed())
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.unbind();
        spawn(py, async move { Ok(this) }, |py, this| {
            Ok(this.into_bound(py).into_any())
        })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.close().await;
                Ok(())
            },
            |py, ()| Ok(pyo3::types::PyBool::new(py, false).to_owned().into_any()),
        )
    }

    fn __repr__(&self) -> String {
        match self.db.db() {
            Ok(db) => format!("<dbx.Dbx {}>", db.backend_name()),
            Err(_) => "<dbx.Dbx (from a parent process)>".to_owned(),
        }
    }
}

/// SQL: `query` returns a list of dicts, `execute` the rows affected.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct Sql {
    db: Db,
}

#[pymethods]
impl Sql {
    #[pyo3(signature = (sql, params=None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.sql()
                    .map_err(to_py)?
                    .query(&sql, &params)
                    .await
                    .map_err(to_py)
            },
            convert::rows,
        )
    }

    #[pyo3(signature = (sql, params=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.sql()
                    .map_err(to_py)?
                    .execute(&sql, &params)
                    .await
                    .map_err(to_py)
            },
            to_obj,
        )
    }

    /// Several statements separated by `;`, without parameters.
    fn execute_script<'py>(&self, py: Python<'py>, script: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.sql()
                    .map_err(to_py)?
                    .execute_script(&script)
                    .await
                    .map_err(to_py)
            },
            none,
        )
    }
}

fn kv_bytes(ob: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = ob.cast::<PyString>() {
        return Ok(s.extract::<String>()?.into_bytes());
    }
    match convert::to_value(ob) {
        Ok(dbx::Value::Bytes(b)) => Ok(b),
        _ => Err(invalid_input(format!(
            "a key-value value must be bytes or str, not {}",
            ob.get_type().name()?
        ))),
    }
}

/// Key-value: values are bytes.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct Kv {
    db: Db,
}

#[pymethods]
impl Kv {
    fn get<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move { db.kv().map_err(to_py)?.get(&key).await.map_err(to_py) },
            |py, v| {
                Ok(match v {
                    Some(b) => PyBytes::new(py, &b).into_any(),
                    None => py.None().into_bound(py),
                })
            },
        )
    }

    /// Store a value (bytes, or str as UTF-8), with an optional TTL in
    /// seconds or as a timedelta.
    #[pyo3(signature = (key, value, ttl=None))]
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: String,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = kv_bytes(value)?;
        let ttl = opt_duration("ttl", ttl)?;
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.kv()
                    .map_err(to_py)?
                    .set(&key, value, ttl)
                    .await
                    .map_err(to_py)
            },
            none,
        )
    }

    /// True if the key existed.
    fn delete<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move { db.kv().map_err(to_py)?.delete(&key).await.map_err(to_py) },
            to_obj,
        )
    }

    fn exists<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move { db.kv().map_err(to_py)?.exists(&key).await.map_err(to_py) },
            to_obj,
        )
    }

    /// Add `delta` to the integer stored at `key` (0 when absent); the new value.
    #[pyo3(signature = (key, delta=1))]
    fn incr<'py>(&self, py: Python<'py>, key: String, delta: i64) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.kv()
                    .map_err(to_py)?
                    .incr(&key, delta)
                    .await
                    .map_err(to_py)
            },
            to_obj,
        )
    }

    /// Set a new TTL on an existing key; True if the key exists.
    fn expire<'py>(
        &self,
        py: Python<'py>,
        key: String,
        ttl: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ttl = duration("ttl", ttl)?;
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                db.kv()
                    .map_err(to_py)?
                    .expire(&key, ttl)
                    .await
                    .map_err(to_py)
            },
            to_obj,
        )
    }

    /// Every key starting with `prefix`, sorted.
    #[pyo3(signature = (prefix=String::new()))]
    fn scan<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move {
                let mut keys = db
                    .kv()
                    .map_err(to_py)?
                    .scan_keys(&prefix)
                    .await
                    .map_err(to_py)?;
                keys.sort();
                Ok(keys)
            },
            to_obj,
        )
    }
}

/// Documents: `collection(name)`.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct Docs {
    db: Db,
}

#[pymethods]
impl Docs {
    fn collection(&self, name: String) -> Collection {
        Collection {
            db: Arc::clone(&self.db),
            name,
        }
    }
}

fn filter_json(filter: Option<&Bound<'_, PyAny>>) -> PyResult<Json> {
    match filter {
        Some(f) if !f.is_none() => to_json(f, 0),
        _ => Ok(Json::Object(Default::default())),
    }
}

fn update_result<'py>(py: Python<'py>, r: dbx::UpdateResult) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("matched", r.matched)?;
    d.set_item("modified", r.modified)?;
    d.set_item(
        "upserted_id",
        match &r.upserted_id {
            Some(id) => from_json(py, id)?,
            None => py.None().into_bound(py),
        },
    )?;
    Ok(d.into_any())
}

/// One document collection; documents are dicts.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct Collection {
    db: Db,
    name: String,
}

impl Collection {
    fn handle(&self) -> PyResult<dbx::Collection> {
        Ok(self.db.db()?.docs().map_err(to_py)?.collection(&self.name))
    }
}

#[pymethods]
impl Collection {
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Insert one document; its `_id`.
    fn insert_one<'py>(
        &self,
        py: Python<'py>,
        doc: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let doc = to_json(doc, 0)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.insert_one(&doc).await.map_err(to_py) },
            |py, id| from_json(py, &id),
        )
    }

    /// Insert documents; their `_id`s.
    fn insert_many<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut all = Vec::new();
        for d in docs.try_iter()? {
            all.push(to_json(&d?, 0)?);
        }
        let c = self.handle()?;
        spawn(
            py,
            async move { c.insert_many(&all).await.map_err(to_py) },
            |py, ids| from_json(py, &Json::Array(ids)),
        )
    }

    /// The documents matching `filter` (all when None), as a list.
    #[pyo3(signature = (filter=None, *, sort=None, projection=None, limit=None, skip=None))]
    fn find<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
        sort: Option<&Bound<'py, PyAny>>,
        projection: Option<&Bound<'py, PyAny>>,
        limit: Option<u64>,
        skip: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = filter_json(filter)?;
        let mut options = FindOptions::new();
        if let Some(s) = sort.filter(|s| !s.is_none()) {
            options = options.sort(to_json(s, 0)?);
        }
        if let Some(p) = projection.filter(|p| !p.is_none()) {
            options = options.projection(to_json(p, 0)?);
        }
        if let Some(n) = limit {
            options = options.limit(n);
        }
        if let Some(n) = skip {
            options = options.skip(n);
        }
        let c = self.handle()?;
        spawn(
            py,
            async move { c.find_all(&filter, options).await.map_err(to_py) },
            |py, docs| from_json(py, &Json::Array(docs)),
        )
    }

    /// The first document matching `filter`, or None.
    #[pyo3(signature = (filter=None))]
    fn find_one<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = filter_json(filter)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.find_one(&filter).await.map_err(to_py) },
            |py, doc| match doc {
                Some(d) => from_json(py, &d),
                None => Ok(py.None().into_bound(py)),
            },
        )
    }

    /// How many documents match `filter` (all when None).
    #[pyo3(signature = (filter=None))]
    fn count<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = filter_json(filter)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.count(&filter).await.map_err(to_py) },
            to_obj,
        )
    }

    /// Apply `update` (operators such as `$set`) to the first match.
    fn update_one<'py>(
        &self,
        py: Python<'py>,
        filter: &Bound<'py, PyAny>,
        update: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (filter, update) = (to_json(filter, 0)?, to_json(update, 0)?);
        let c = self.handle()?;
        spawn(
            py,
            async move { c.update_one(&filter, &update).await.map_err(to_py) },
            update_result,
        )
    }

    /// Apply `update` to every match.
    fn update_many<'py>(
        &self,
        py: Python<'py>,
        filter: &Bound<'py, PyAny>,
        update: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (filter, update) = (to_json(filter, 0)?, to_json(update, 0)?);
        let c = self.handle()?;
        spawn(
            py,
            async move { c.update_many(&filter, &update).await.map_err(to_py) },
            update_result,
        )
    }

    /// Delete the first match; how many were deleted (0 or 1).
    fn delete_one<'py>(
        &self,
        py: Python<'py>,
        filter: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = to_json(filter, 0)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.delete_one(&filter).await.map_err(to_py) },
            to_obj,
        )
    }

    /// Delete every match; how many were deleted.
    fn delete_many<'py>(
        &self,
        py: Python<'py>,
        filter: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = to_json(filter, 0)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.delete_many(&filter).await.map_err(to_py) },
            to_obj,
        )
    }

    /// Drop the collection.
    fn drop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.handle()?;
        spawn(py, async move { c.drop().await.map_err(to_py) }, none)
    }
}

/// Vector collections: `collection(name)`, `list()`.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct Vectors {
    db: Db,
}

#[pymethods]
impl Vectors {
    fn collection(&self, name: String) -> VectorCollection {
        VectorCollection {
            db: Arc::clone(&self.db),
            name,
        }
    }

    /// The collections' names.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.db()?;
        spawn(
            py,
            async move { db.vectors().map_err(to_py)?.list().await.map_err(to_py) },
            to_obj,
        )
    }
}

fn point_id(ob: &Bound<'_, PyAny>) -> PyResult<PointId> {
    if let Ok(n) = ob.extract::<u64>() {
        return Ok(PointId::Num(n));
    }
    if let Ok(u) = ob.extract::<uuid::Uuid>() {
        return Ok(PointId::Uuid(u));
    }
    if let Ok(s) = ob.extract::<String>()
        && let Ok(u) = uuid::Uuid::parse_str(&s)
    {
        return Ok(PointId::Uuid(u));
    }
    Err(invalid_input(format!(
        "a point id must be a non-negative int or a UUID, not {}",
        ob.repr().map(|r| r.to_string()).unwrap_or_default()
    )))
}

fn point_id_py<'py>(py: Python<'py>, id: PointId) -> PyResult<Bound<'py, PyAny>> {
    match id {
        PointId::Num(n) => to_obj(py, n),
        PointId::Uuid(u) => to_obj(py, u),
    }
}

fn point(ob: &Bound<'_, PyAny>) -> PyResult<Point> {
    let d = ob
        .cast::<PyDict>()
        .map_err(|_| invalid_input("a point is a dict {\"id\", \"vector\", \"payload\"?}"))?;
    let id = d
        .get_item("id")?
        .ok_or_else(|| invalid_input("a point needs an \"id\""))?;
    let vector: Vec<f32> = d
        .get_item("vector")?
        .ok_or_else(|| invalid_input("a point needs a \"vector\""))?
        .extract()
        .map_err(|_| invalid_input("a point's \"vector\" must be a list of floats"))?;
    let p = Point::new(point_id(&id)?, vector);
    match d.get_item("payload")? {
        Some(payload) if !payload.is_none() => p.with_payload(to_json(&payload, 0)?).map_err(to_py),
        _ => Ok(p),
    }
}

fn opt_filter(filter: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Filter>> {
    match filter {
        Some(f) if !f.is_none() => Ok(Some(Filter::from_json(&to_json(f, 0)?).map_err(to_py)?)),
        _ => Ok(None),
    }
}

fn record_dict<'py>(
    py: Python<'py>,
    id: PointId,
    score: Option<f32>,
    payload: Option<serde_json::Map<String, Json>>,
    vector: Option<Vec<f32>>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("id", point_id_py(py, id)?)?;
    if let Some(s) = score {
        d.set_item("score", s)?;
    }
    d.set_item(
        "payload",
        match payload {
            Some(p) => map_to_dict(py, &p)?.into_any(),
            None => py.None().into_bound(py),
        },
    )?;
    d.set_item("vector", vector)?;
    Ok(d.into_any())
}

/// One vector collection.
#[pyclass(module = "dbx._native", frozen)]
pub(crate) struct VectorCollection {
    db: Db,
    name: String,
}

impl VectorCollection {
    fn handle(&self) -> PyResult<dbx::VectorCollection> {
        Ok(self
            .db
            .db()?
            .vectors()
            .map_err(to_py)?
            .collection(&self.name))
    }
}

fn distance(name: &str) -> PyResult<Distance> {
    name.parse::<Distance>().map_err(to_py)
}

#[pymethods]
impl VectorCollection {
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Create the collection (`dbx.Conflict` if it exists).
    #[pyo3(signature = (dimension, distance="cosine"))]
    fn create<'py>(
        &self,
        py: Python<'py>,
        dimension: usize,
        distance: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = self::distance(distance)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.create(dimension, d).await.map_err(to_py) },
            none,
        )
    }

    /// Create the collection unless it exists; True if this call created it.
    #[pyo3(signature = (dimension, distance="cosine"))]
    fn create_if_missing<'py>(
        &self,
        py: Python<'py>,
        dimension: usize,
        distance: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = self::distance(distance)?;
        let c = self.handle()?;
        spawn(
            py,
            async move { c.create_if_missing(dimension, d).await.map_err(to_py) },
            to_obj,
        )
    }

    /// Drop the collection; True if it existed.
    fn drop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.handle()?;
        spawn(py, async move { c.drop().await.map_err(to_py) }, to_obj)
    }

    /// Insert or replace points: dicts {"id", "vector", "payload"?}.
    fn upsert<'py>(
        &self,
        py: Python<'py>,
        points: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if points.is_instance_of::<PyDict>() {
            return Err(invalid_input("upsert takes a list of points"));
        }
        let mut all = Vec::new();
        for p in points.try_iter()? {
            all.push(point(&p?)?);
        }
        let c = self.handle()?;
        spawn(py, async move { c.upsert(&all).await.map_err(to_py) }, none)
    }

    /// The `limit` points nearest to `vector`: dicts {"id", "score",
    /// "payload", "vector"}, best first.
    #[pyo3(signature = (vector, limit=10, *, filter=None, score_threshold=None, with_payload=true, with_vectors=false))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        vector: Vec<f32>,
        limit: usize,
        filter: Option<&Bound<'py, PyAny>>,
        score_threshold: Option<f32>,
        with_payload: bool,
        with_vectors: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut s = Search::new(vector, limit)
            .with_payload(with_payload)
            .with_vectors(with_vectors);
        if let Some(f) = opt_filter(filter)? {
            s = s.filter(f);
        }
        if let Some(t) = score_threshold {
            s = s.score_threshold(t);
        }
        let c = self.handle()?;
        spawn(
            py,
            async move { c.search(&s).await.map_err(to_py) },
            |py, hits| {
                let list = PyList::empty(py);
                for h in hits {
                    list.append(record_dict(py, h.id, Some(h.score), h.payload, h.vector)?)?;
                }
                Ok(list.into_any())
            },
        )
    }

    /// The points with these ids that exist: dicts {"id", "payload", "vector"}.
    #[pyo3(signature = (ids, *, with_payload=true, with_vectors=false))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        with_payload: bool,
        with_vectors: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut all = Vec::new();
        for id in ids.try_iter()? {
            all.push(point_id(&id?)?);
        }
        let include = Include::new(with_payload, with_vectors);
        let c = self.handle()?;
        spawn(
            py,
            async move { c.get_with(&all, include).await.map_err(to_py) },
            |py, records| {
                let list = PyList::empty(py);
                for r in records {
                    list.append(record_dict(py, r.id, None, r.payload, r.vector)?)?;
                }
                Ok(list.into_any())
            },
        )
    }

    /// Delete points by id.
    fn delete<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let mut all = Vec::new();
        for id in ids.try_iter()? {
            all.push(point_id(&id?)?);
        }
        let c = self.handle()?;
        spawn(py, async move { c.delete(&all).await.map_err(to_py) }, none)
    }

    /// How many points (matching `filter`, a JSON filter, when given).
    #[pyo3(signature = (filter=None))]
    fn count<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = opt_filter(filter)?;
        let c = self.handle()?;
        spawn(
            py,
            async move {
                match filter {
                    Some(f) => c.count_where(&f).await,
                    None => c.count().await,
                }
                .map_err(to_py)
            },
            to_obj,
        )
    }
}
