//! The routes under /v1, their handlers, and the middleware around them
//! (auth, rate limits, metrics, deadlines).

use crate::config::Limits;
use crate::error::{ApiError, Body};
use crate::openapi;
use crate::ratelimit::RateLimits;
use crate::security::{Access, Capability, Principal, Security, quote_ident};
use crate::values;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::{Stream, StreamExt};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value as J, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) dbs: Arc<dbx::Databases>,
    pub(crate) security: RwLock<Arc<Security>>,
    pub(crate) limits: Limits,
    pub(crate) rate: RateLimits,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) public_metrics: bool,
    pub(crate) draining: AtomicBool,
}

pub(crate) type St = State<Arc<AppState>>;

impl AppState {
    pub(crate) fn security(&self) -> Arc<Security> {
        match self.security.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set_security(&self, s: Security) {
        let s = Arc::new(s);
        match self.security.write() {
            Ok(mut g) => *g = s,
            Err(poisoned) => *poisoned.into_inner() = s,
        }
    }

    fn db(&self, name: &str) -> Result<&dbx::Dbx, ApiError> {
        self.dbs.get(name).map_err(ApiError::from)
    }

    /// Check the grant, then find the database.
    fn allow(
        &self,
        p: &Principal,
        db: &str,
        cap: Capability,
        access: Access,
    ) -> Result<(&dbx::Dbx, Option<String>), ApiError> {
        let pg = self.security().authorize(p, db, cap, access)?;
        let d = self.db(db)?;
        // `SET LOCAL ROLE` means something only to PostgreSQL.
        let pg = pg.filter(|_| d.backend_name() == "postgresql");
        Ok((d, pg))
    }
}

/// A write, for the audit log: who, where, what; never values.
fn audit(p: &Principal, db: &str, operation: &str) {
    tracing::info!(
        target: "dbx_gateway::audit",
        principal = %p.subject,
        database = %db,
        operation = %operation,
        "write"
    );
}

// --- middleware -----------------------------------------------------------

/// The peer's address (plain TCP or TLS).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

fn peer_ip(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Bearer token → [`Principal`]; per-IP and per-principal rate limits.
pub(crate) async fn auth(
    State(st): St,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let ip = peer_ip(&req);
    st.rate.check_ip(&ip).await?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer <jwt>)")
        })?;
    let principal = st.security().verify(token)?;
    st.rate.check_principal(&principal.subject).await?;
    tracing::Span::current().record("principal", principal.subject.as_str());
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// Request counts and latencies by route and status; the request deadline.
pub(crate) async fn observe(State(st): St, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let deadline = Duration::from_secs(st.limits.request_timeout_secs);
    let resp = match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the request took longer than {}s", deadline.as_secs()),
        )
        .into_response(),
    };
    let status = resp.status().as_u16().to_string();
    metrics::counter!("dbx_gateway_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("dbx_gateway_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

// --- service endpoints --------------------------------------------------------

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "alive")))]
pub(crate) async fn healthz() -> Json<J> {
    Json(json!({"status": "ok"}))
}

/// Readiness: every database answers a round trip (503 otherwise, and while draining).
#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub(crate) async fn readyz(State(st): St) -> Response {
    if st.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    let mut all = true;
    let mut out = serde_json::Map::new();
    for name in st.dbs.names() {
        let Ok(db) = st.dbs.get(name) else { continue };
        let state = match tokio::time::timeout(Duration::from_secs(5), db.health()).await {
            Ok(Ok(_)) => "ok".to_owned(),
            Ok(Err(e)) => format!("{}: {e}", e.kind()),
            Err(_) => "timeout".to_owned(),
        };
        all &= state == "ok";
        out.insert(name.to_owned(), J::String(state));
    }
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if all {"ready"} else {"unavailable"}, "databases": out})),
    )
        .into_response()
}

/// Prometheus text format: the gateway's and dbx's metrics.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics_text(State(st): St, headers: HeaderMap) -> Response {
    if !st.public_metrics {
        let ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| st.security().verify(t.trim()).is_ok());
        if !ok {
            return ApiError::unauthorized("metrics need a bearer token").into_response();
        }
    }
    let body = st
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The databases the caller has a grant on.
#[utoipa::path(get, path = "/v1/databases", tag = "databases", security(("bearer" = [])), responses((status = 200, description = "names and backends")))]
pub(crate) async fn list_databases(State(st): St, Extension(p): Extension<Principal>) -> Json<J> {
    let sec = st.security();
    let list: Vec<J> = st
        .dbs
        .names()
        .filter(|n| sec.any_grant(&p, n))
        .filter_map(|n| {
            st.dbs
                .get(n)
                .ok()
                .map(|d| json!({"name": n, "backend": d.backend_name()}))
        })
        .collect();
    Json(json!({ "databases": list }))
}

/// One database's health: a real round trip, its pool and breaker.
#[utoipa::path(get, path = "/v1/db/{db}/health", tag = "databases", params(("db" = String, Path)), security(("bearer" = [])), responses((status = 200, description = "healthy"), (status = 503, description = "unhealthy")))]
pub(crate) async fn db_health(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path(db): Path<String>,
) -> Result<Json<J>, ApiError> {
    if !st.security().any_grant(&p, &db) {
        return Err(ApiError::forbidden(format!("no grant on database `{db}`")));
    }
    let d = st.db(&db)?;
    let h = d.health().await?;
    Ok(Json(json!({
        "database": db,
        "backend": h.backend,
        "status": "ok",
        "latency_ms": h.latency.as_secs_f64() * 1000.0,
        "breaker": h.breaker.as_str(),
        "pool": h.pool.map(|p| json!({
            "max_size": p.max_size, "size": p.size, "idle": p.idle,
            "in_use": p.in_use, "waiting": p.waiting,
        })),
    })))
}

// --- SQL ----------------------------------------------------------------------

/// A statement and its bound parameters (`$1`, `$2`...; never interpolated).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlRequest {
    /// The statement, with `$1..$N` placeholders.
    sql: String,
    /// Parameters: JSON scalars, or `{"$bytes"|"$uuid"|"$timestamp"|"$decimal"|"$json": ...}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    params: Vec<J>,
}

/// Statements run in one transaction, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TxRequest {
    statements: Vec<TxStatement>,
}

/// One statement of a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TxStatement {
    sql: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    params: Vec<J>,
    /// Return the rows (a query) instead of the count of rows changed.
    #[serde(default)]
    query: bool,
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"))
}

fn rows_json(rows: &[dbx::Row], truncated: bool) -> J {
    let columns: Vec<&String> = rows
        .first()
        .map(|r| r.columns().iter().collect())
        .unwrap_or_default();
    let data: Vec<J> = rows
        .iter()
        .map(|r| J::Array(r.values().iter().map(values::to_json).collect()))
        .collect();
    json!({"columns": columns, "rows": data, "row_count": rows.len(), "truncated": truncated})
}

/// Run statements inside a transaction, after `SET LOCAL ROLE` when a role is given.
async fn in_transaction(
    sql: &dbx::Sql,
    pg_role: Option<&str>,
    statements: Vec<(String, Vec<dbx::Value>, bool)>,
    max_rows: usize,
) -> Result<Vec<J>, ApiError> {
    let mut tx = sql.begin().await?;
    if let Some(role) = pg_role {
        tx.execute(&format!("SET LOCAL ROLE {}", quote_ident(role)), &[])
            .await?;
    }
    let mut out = Vec::with_capacity(statements.len());
    for (i, (text, params, query)) in statements.iter().enumerate() {
        let r = if *query {
            tx.query_bounded(text, params, max_rows)
                .await
                .map(|b| rows_json(&b.rows, b.truncated))
        } else {
            tx.execute(text, params)
                .await
                .map(|n| json!({"rows_affected": n}))
        };
        match r {
            Ok(v) => out.push(v),
            Err(e) => {
                let mut api = ApiError::from(e);
                api.detail = format!("statements[{i}]: {}", api.detail);
                // Dropping `tx` rolls back; say so explicitly too.
                let _ = tx.rollback().await;
                return Err(api);
            }
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Query rows. Plain reads need `read`; anything that may write needs
/// `write`. `Accept: application/x-ndjson` streams the rows.
#[utoipa::path(post, path = "/v1/db/{db}/sql/query", tag = "sql", params(("db" = String, Path)), request_body = SqlRequest, security(("bearer" = [])),
    responses((status = 200, description = "{columns, rows, row_count, truncated}, or NDJSON lines"), (status = 400, description = "bad input", content_type = "application/problem+json"), (status = 403, description = "not granted")))]
pub(crate) async fn sql_query(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path(db): Path<String>,
    headers: HeaderMap,
    Body(req): Body<SqlRequest>,
) -> Result<Response, ApiError> {
    let read = dbx::sql::is_plain_read(&req.sql);
    let access = if read { Access::Read } else { Access::Write };
    let (d, pg) = st.allow(&p, &db, Capability::Sql, access)?;
    let sql = d.sql()?;
    let params = values::params(&req.params)?;
    if !read {
        audit(&p, &db, "sql.query");
    }
    let ndjson = wants_ndjson(&headers);
    if let Some(role) = pg {
        let max = if ndjson {
            st.limits.max_stream_rows
        } else {
            st.limits.max_rows
        };
        let mut out = in_transaction(sql, Some(&role), vec![(req.sql, params, true)], max).await?;
        let v = out.pop().unwrap_or(J::Null);
        return Ok(Json(v).into_response());
    }
    if ndjson {
        let stream = sql.query_stream(&req.sql, &params);
        return Ok(ndjson_rows(stream, st.limits.max_stream_rows));
    }
    // At most `max_rows` rows held, in one round trip (no stream, which on
    // PostgreSQL takes a pooled connection and a transaction).
    let b = sql
        .query_bounded(&req.sql, &params, st.limits.max_rows)
        .await?;
    Ok(Json(rows_json(&b.rows, b.truncated)).into_response())
}

/// NDJSON: `{"columns": [...]}`, then one array per row, then
/// `{"done": true, "row_count": n, "truncated": bool}` (or `{"error": problem}`).
fn ndjson_rows(stream: dbx::RowStream, max: usize) -> Response {
    struct S {
        rows: dbx::RowStream,
        n: usize,
        done: bool,
    }
    let lines = futures_util::stream::unfold(
        S {
            rows: stream,
            n: 0,
            done: false,
        },
        move |mut s| async move {
            if s.done {
                return None;
            }
            let line = match s.rows.next().await {
                Some(Ok(row)) if s.n < max => {
                    let mut line = String::new();
                    if s.n == 0 {
                        line.push_str(&json!({"columns": row.columns()}).to_string());
                        line.push('\n');
                    }
                    s.n += 1;
                    line.push_str(
                        &J::Array(row.values().iter().map(values::to_json).collect()).to_string(),
                    );
                    line
                }
                Some(Ok(_)) => {
                    s.done = true;
                    json!({"done": true, "row_count": s.n, "truncated": true}).to_string()
                }
                Some(Err(e)) => {
                    s.done = true;
                    let e = ApiError::from(e);
                    json!({"error": {"status": e.status.as_u16(), "kind": e.kind, "detail": e.detail}})
                        .to_string()
                }
                None => {
                    s.done = true;
                    json!({"done": true, "row_count": s.n, "truncated": false}).to_string()
                }
            };
            Some((Ok::<_, std::convert::Infallible>(line + "\n"), s))
        },
    );
    ndjson_response(lines)
}

fn ndjson_response<S>(lines: S) -> Response
where
    S: Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static,
{
    let mut resp = axum::body::Body::from_stream(lines).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

/// Run one statement; the number of rows it changed.
#[utoipa::path(post, path = "/v1/db/{db}/sql/execute", tag = "sql", params(("db" = String, Path)), request_body = SqlRequest, security(("bearer" = [])),
    responses((status = 200, description = "{rows_affected}"), (status = 403, description = "not granted")))]
pub(crate) async fn sql_execute(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path(db): Path<String>,
    Body(req): Body<SqlRequest>,
) -> Result<Json<J>, ApiError> {
    let (d, pg) = st.allow(&p, &db, Capability::Sql, Access::Write)?;
    let sql = d.sql()?;
    let params = values::params(&req.params)?;
    audit(&p, &db, "sql.execute");
    if let Some(role) = pg {
        let mut out = in_transaction(sql, Some(&role), vec![(req.sql, params, false)], 0).await?;
        return Ok(Json(out.pop().unwrap_or(J::Null)));
    }
    let n = sql.execute(&req.sql, &params).await?;
    Ok(Json(json!({"rows_affected": n})))
}

/// Run statements in one transaction: committed when all succeed, rolled back otherwise.
#[utoipa::path(post, path = "/v1/db/{db}/sql/transaction", tag = "sql", params(("db" = String, Path)), request_body = TxRequest, security(("bearer" = [])),
    responses((status = 200, description = "{results: [...]}, one per statement"), (status = 403, description = "not granted")))]
pub(crate) async fn sql_transaction(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path(db): Path<String>,
    Body(req): Body<TxRequest>,
) -> Result<Json<J>, ApiError> {
    if req.statements.is_empty() {
        return Err(ApiError::bad_request("statements: empty"));
    }
    if req.statements.len() > st.limits.max_statements {
        return Err(ApiError::bad_request(format!(
            "statements: {} given, at most {} allowed",
            req.statements.len(),
            st.limits.max_statements
        )));
    }
    let read = req
        .statements
        .iter()
        .all(|s| dbx::sql::is_plain_read(&s.sql));
    let access = if read { Access::Read } else { Access::Write };
    let (d, pg) = st.allow(&p, &db, Capability::Sql, access)?;
    let sql = d.sql()?;
    let mut stmts = Vec::with_capacity(req.statements.len());
    for (i, s) in req.statements.into_iter().enumerate() {
        let params = s
            .params
            .iter()
            .enumerate()
            .map(|(j, v)| values::param(v, &format!("statements[{i}].params[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        stmts.push((s.sql, params, s.query));
    }
    if !read {
        audit(&p, &db, "sql.transaction");
    }
    let results = in_transaction(sql, pg.as_deref(), stmts, st.limits.max_rows).await?;
    Ok(Json(json!({ "results": results })))
}

// --- key-value --------------------------------------------------------------------

/// A value to store: `value` (UTF-8 text) or `value_base64`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KvSet {
    value: Option<String>,
    value_base64: Option<String>,
    /// Time to live, in milliseconds.
    ttl_ms: Option<u64>,
    /// Store only when the key is absent.
    #[serde(default)]
    if_absent: bool,
}

/// An increment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KvIncr {
    #[serde(default = "one")]
    by: i64,
}

fn one() -> i64 {
    1
}

/// A prefix scan.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct KvScan {
    #[serde(default)]
    prefix: String,
    limit: Option<usize>,
}

/// The value of a key (404 when absent).
#[utoipa::path(get, path = "/v1/db/{db}/kv/{key}", tag = "kv", params(("db" = String, Path), ("key" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "{key, value} or {key, value_base64}"), (status = 404, description = "no such key")))]
pub(crate) async fn kv_get(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, key)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Kv, Access::Read)?;
    match d.kv()?.get(&key).await? {
        Some(v) => Ok(Json(values::kv_value(&key, &v))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no key `{key}`"),
        )),
    }
}

/// Store a value, with an optional TTL.
#[utoipa::path(put, path = "/v1/db/{db}/kv/{key}", tag = "kv", params(("db" = String, Path), ("key" = String, Path)), request_body = KvSet, security(("bearer" = [])),
    responses((status = 200, description = "{key, stored}")))]
pub(crate) async fn kv_set(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, key)): Path<(String, String)>,
    Body(req): Body<KvSet>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Kv, Access::Write)?;
    let bytes = values::kv_bytes(req.value, req.value_base64)?;
    let ttl = req.ttl_ms.map(Duration::from_millis);
    audit(&p, &db, "kv.set");
    let kv = d.kv()?;
    let stored = if req.if_absent {
        kv.set_nx(&key, &bytes, ttl).await?
    } else {
        kv.set(&key, &bytes, ttl).await?;
        true
    };
    Ok(Json(json!({"key": key, "stored": stored})))
}

/// Delete a key.
#[utoipa::path(delete, path = "/v1/db/{db}/kv/{key}", tag = "kv", params(("db" = String, Path), ("key" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "{key, deleted}")))]
pub(crate) async fn kv_delete(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, key)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Kv, Access::Write)?;
    audit(&p, &db, "kv.delete");
    let deleted = d.kv()?.delete(&key).await?;
    Ok(Json(json!({"key": key, "deleted": deleted})))
}

/// Add to a counter (created at 0).
#[utoipa::path(post, path = "/v1/db/{db}/kv/{key}/incr", tag = "kv", params(("db" = String, Path), ("key" = String, Path)), request_body = KvIncr, security(("bearer" = [])),
    responses((status = 200, description = "{key, value}")))]
pub(crate) async fn kv_incr(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, key)): Path<(String, String)>,
    Body(req): Body<KvIncr>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Kv, Access::Write)?;
    audit(&p, &db, "kv.incr");
    let v = d.kv()?.incr(&key, req.by).await?;
    Ok(Json(json!({"key": key, "value": v})))
}

/// Keys starting with a prefix (at most `limit`, default and cap `max_rows`).
#[utoipa::path(get, path = "/v1/db/{db}/kv", tag = "kv", params(("db" = String, Path), KvScan), security(("bearer" = [])),
    responses((status = 200, description = "{keys, truncated}")))]
pub(crate) async fn kv_scan(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path(db): Path<String>,
    Query(q): Query<KvScan>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Kv, Access::Read)?;
    let limit = q
        .limit
        .unwrap_or(st.limits.max_rows)
        .min(st.limits.max_rows);
    let mut stream = d.kv()?.scan(&q.prefix);
    let mut keys = Vec::new();
    let mut truncated = false;
    while let Some(k) = stream.next().await {
        if keys.len() == limit {
            truncated = true;
            break;
        }
        keys.push(k?);
    }
    keys.sort();
    Ok(Json(json!({"keys": keys, "truncated": truncated})))
}

// --- documents --------------------------------------------------------------------

/// A find.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocFind {
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    filter: J,
    #[schema(value_type = Option<Object>)]
    sort: Option<J>,
    #[schema(value_type = Option<Object>)]
    projection: Option<J>,
    limit: Option<u64>,
    skip: Option<u64>,
}

/// Documents to insert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocInsert {
    #[schema(value_type = Vec<Object>)]
    documents: Vec<J>,
}

/// An update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocUpdate {
    #[schema(value_type = Object)]
    filter: J,
    /// Update operators (`{"$set": {...}}`).
    #[schema(value_type = Object)]
    update: J,
    /// Every match, not just the first.
    #[serde(default)]
    many: bool,
    /// Insert when nothing matches (one document).
    #[serde(default)]
    upsert: bool,
}

/// A delete.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocDelete {
    #[schema(value_type = Object)]
    filter: J,
    #[serde(default)]
    many: bool,
}

/// A count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocCount {
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    filter: J,
}

fn empty_object() -> J {
    json!({})
}

/// Find documents (`Accept: application/x-ndjson` streams them).
#[utoipa::path(post, path = "/v1/db/{db}/docs/{collection}/find", tag = "docs", params(("db" = String, Path), ("collection" = String, Path)), request_body = DocFind, security(("bearer" = [])),
    responses((status = 200, description = "{documents, truncated}, or NDJSON")))]
pub(crate) async fn docs_find(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    headers: HeaderMap,
    Body(req): Body<DocFind>,
) -> Result<Response, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Docs, Access::Read)?;
    let ndjson = wants_ndjson(&headers);
    let max = if ndjson {
        st.limits.max_stream_rows
    } else {
        st.limits.max_rows
    } as u64;
    let mut opts = dbx::FindOptions::new();
    // One past the cap tells whether the result was cut.
    let asked = req.limit.unwrap_or(u64::MAX);
    opts = opts.limit(asked.min(max.saturating_add(1)));
    if let Some(s) = req.skip {
        opts = opts.skip(s);
    }
    if let Some(s) = req.sort {
        opts = opts.sort(s);
    }
    if let Some(pr) = req.projection {
        opts = opts.projection(pr);
    }
    let mut stream = d.docs()?.collection(&coll).find(&req.filter, opts).await?;
    if ndjson {
        let max = max as usize;
        let lines = futures_util::stream::unfold(
            (stream, 0usize, false),
            move |(mut s, n, done)| async move {
                if done {
                    return None;
                }
                let (line, n, done) = match s.next().await {
                    Some(Ok(doc)) if n < max => (doc.to_string(), n + 1, false),
                    Some(Ok(_)) => (
                        json!({"done": true, "count": n, "truncated": true}).to_string(),
                        n,
                        true,
                    ),
                    Some(Err(e)) => {
                        let e = ApiError::from(e);
                        (json!({"error": {"status": e.status.as_u16(), "kind": e.kind, "detail": e.detail}}).to_string(), n, true)
                    }
                    None => (
                        json!({"done": true, "count": n, "truncated": false}).to_string(),
                        n,
                        true,
                    ),
                };
                Some((Ok(line + "\n"), (s, n, done)))
            },
        );
        return Ok(ndjson_response(lines));
    }
    let mut docs = Vec::new();
    let mut truncated = false;
    while let Some(doc) = stream.next().await {
        if docs.len() as u64 == max {
            truncated = true;
            break;
        }
        docs.push(doc?);
    }
    Ok(Json(json!({"documents": docs, "truncated": truncated})).into_response())
}

/// Insert documents; their ids.
#[utoipa::path(post, path = "/v1/db/{db}/docs/{collection}/insert", tag = "docs", params(("db" = String, Path), ("collection" = String, Path)), request_body = DocInsert, security(("bearer" = [])),
    responses((status = 200, description = "{ids}")))]
pub(crate) async fn docs_insert(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<DocInsert>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Docs, Access::Write)?;
    if req.documents.is_empty() {
        return Err(ApiError::bad_request("documents: empty"));
    }
    audit(&p, &db, "docs.insert");
    let ids = d
        .docs()?
        .collection(&coll)
        .insert_many(&req.documents)
        .await?;
    Ok(Json(json!({ "ids": ids })))
}

/// Update one document (or every match with `many`).
#[utoipa::path(post, path = "/v1/db/{db}/docs/{collection}/update", tag = "docs", params(("db" = String, Path), ("collection" = String, Path)), request_body = DocUpdate, security(("bearer" = [])),
    responses((status = 200, description = "{matched, modified, upserted_id}")))]
pub(crate) async fn docs_update(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<DocUpdate>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Docs, Access::Write)?;
    if req.many && req.upsert {
        return Err(ApiError::bad_request("many and upsert: choose one"));
    }
    audit(&p, &db, "docs.update");
    let c = d.docs()?.collection(&coll);
    let r = if req.upsert {
        c.upsert_one(&req.filter, &req.update).await?
    } else if req.many {
        c.update_many(&req.filter, &req.update).await?
    } else {
        c.update_one(&req.filter, &req.update).await?
    };
    Ok(Json(
        json!({"matched": r.matched, "modified": r.modified, "upserted_id": r.upserted_id}),
    ))
}

/// Delete one document (or every match with `many`).
#[utoipa::path(post, path = "/v1/db/{db}/docs/{collection}/delete", tag = "docs", params(("db" = String, Path), ("collection" = String, Path)), request_body = DocDelete, security(("bearer" = [])),
    responses((status = 200, description = "{deleted}")))]
pub(crate) async fn docs_delete(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<DocDelete>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Docs, Access::Write)?;
    audit(&p, &db, "docs.delete");
    let c = d.docs()?.collection(&coll);
    let n = if req.many {
        c.delete_many(&req.filter).await?
    } else {
        c.delete_one(&req.filter).await?
    };
    Ok(Json(json!({ "deleted": n })))
}

/// Count matching documents.
#[utoipa::path(post, path = "/v1/db/{db}/docs/{collection}/count", tag = "docs", params(("db" = String, Path), ("collection" = String, Path)), request_body = DocCount, security(("bearer" = [])),
    responses((status = 200, description = "{count}")))]
pub(crate) async fn docs_count(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<DocCount>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Docs, Access::Read)?;
    let n = d.docs()?.collection(&coll).count(&req.filter).await?;
    Ok(Json(json!({ "count": n })))
}

// --- vectors ----------------------------------------------------------------------

/// A vector collection to create (when missing).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VecCreate {
    dimension: usize,
    /// `cosine`, `dot`, `euclid` or `manhattan`.
    #[serde(default = "cosine")]
    distance: String,
}

fn cosine() -> String {
    "cosine".into()
}

/// One point.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VecPoint {
    /// An unsigned integer or a UUID.
    #[schema(value_type = Object)]
    id: dbx::PointId,
    vector: Vec<f32>,
    #[schema(value_type = Option<Object>)]
    payload: Option<J>,
}

/// Points to insert or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VecUpsert {
    points: Vec<VecPoint>,
}

/// A nearest-neighbour search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VecSearch {
    vector: Vec<f32>,
    #[serde(default = "ten")]
    limit: usize,
    /// A payload filter in Qdrant's JSON form (`must`, `should`, `must_not`).
    #[schema(value_type = Option<Object>)]
    filter: Option<J>,
    score_threshold: Option<f32>,
    #[serde(default = "yes")]
    with_payload: bool,
    #[serde(default)]
    with_vectors: bool,
}

fn ten() -> usize {
    10
}

fn yes() -> bool {
    true
}

/// Point ids to delete.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VecDelete {
    #[schema(value_type = Vec<Object>)]
    ids: Vec<dbx::PointId>,
}

/// Create a collection unless it exists.
#[utoipa::path(put, path = "/v1/db/{db}/vectors/{collection}", tag = "vectors", params(("db" = String, Path), ("collection" = String, Path)), request_body = VecCreate, security(("bearer" = [])),
    responses((status = 200, description = "{created}")))]
pub(crate) async fn vec_create(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<VecCreate>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Vectors, Access::Write)?;
    let distance: dbx::Distance = req
        .distance
        .parse()
        .map_err(|e: dbx::Error| ApiError::bad_request(format!("distance: {}", e.message())))?;
    audit(&p, &db, "vectors.create");
    let created = d
        .vectors()?
        .collection(&coll)
        .create_if_missing(req.dimension, distance)
        .await?;
    Ok(Json(json!({ "created": created })))
}

/// Insert or replace points.
#[utoipa::path(post, path = "/v1/db/{db}/vectors/{collection}/upsert", tag = "vectors", params(("db" = String, Path), ("collection" = String, Path)), request_body = VecUpsert, security(("bearer" = [])),
    responses((status = 200, description = "{upserted}")))]
pub(crate) async fn vec_upsert(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<VecUpsert>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Vectors, Access::Write)?;
    let mut points = Vec::with_capacity(req.points.len());
    for (i, pt) in req.points.into_iter().enumerate() {
        let mut point = dbx::Point::new(pt.id, pt.vector);
        if let Some(payload) = pt.payload {
            point = point.with_payload(payload).map_err(|e| {
                ApiError::bad_request(format!("points[{i}].payload: {}", e.message()))
            })?;
        }
        points.push(point);
    }
    audit(&p, &db, "vectors.upsert");
    d.vectors()?.collection(&coll).upsert(&points).await?;
    Ok(Json(json!({ "upserted": points.len() })))
}

/// The nearest points to a vector.
#[utoipa::path(post, path = "/v1/db/{db}/vectors/{collection}/search", tag = "vectors", params(("db" = String, Path), ("collection" = String, Path)), request_body = VecSearch, security(("bearer" = [])),
    responses((status = 200, description = "{points: [{id, score, payload, vector}]}")))]
pub(crate) async fn vec_search(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<VecSearch>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Vectors, Access::Read)?;
    if req.limit > st.limits.max_rows {
        return Err(ApiError::bad_request(format!(
            "limit: {} is above the gateway's max_rows ({})",
            req.limit, st.limits.max_rows
        )));
    }
    let mut search = dbx::Search::new(req.vector, req.limit)
        .with_payload(req.with_payload)
        .with_vectors(req.with_vectors);
    if let Some(f) = &req.filter {
        let filter = dbx::Filter::from_json(f)
            .map_err(|e| ApiError::bad_request(format!("filter: {}", e.message())))?;
        search = search.filter(filter);
    }
    if let Some(t) = req.score_threshold {
        search = search.score_threshold(t);
    }
    let points = d.vectors()?.collection(&coll).search(&search).await?;
    let out: Vec<J> = points
        .iter()
        .map(|pt| {
            json!({
                "id": pt.id,
                "score": pt.score,
                "payload": pt.payload,
                "vector": pt.vector,
            })
        })
        .collect();
    Ok(Json(json!({ "points": out })))
}

/// Delete points by id.
#[utoipa::path(post, path = "/v1/db/{db}/vectors/{collection}/delete", tag = "vectors", params(("db" = String, Path), ("collection" = String, Path)), request_body = VecDelete, security(("bearer" = [])),
    responses((status = 200, description = "{deleted}")))]
pub(crate) async fn vec_delete(
    State(st): St,
    Extension(p): Extension<Principal>,
    Path((db, coll)): Path<(String, String)>,
    Body(req): Body<VecDelete>,
) -> Result<Json<J>, ApiError> {
    let (d, _) = st.allow(&p, &db, Capability::Vectors, Access::Write)?;
    audit(&p, &db, "vectors.delete");
    d.vectors()?.collection(&coll).delete(&req.ids).await?;
    Ok(Json(json!({ "deleted": req.ids.len() })))
}

/// The whole application: routes, OpenAPI, docs page, middleware.
pub(crate) fn router(state: Arc<AppState>) -> axum::Router {
    openapi::router(state)
}
