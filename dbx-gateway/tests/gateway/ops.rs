//! Operations: health, readiness, metrics, OpenAPI and the docs page,
//! request ids, body limits and malformed JSON, rate limits (in process and
//! shared by two replicas through Redis), SIGTERM draining, SIGHUP reload,
//! TLS, and `--check`.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DB: &str = "[databases.main]\nurl = \"sqlite::memory:\"\n";

#[tokio::test]
async fn health_ready_metrics_openapi_docs_request_ids() {
    let gw = Gateway::start(DB).await;
    let admin = token("ada", &["admin"]);
    let (s, v) = gw.send(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
    let (s, v) = gw.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["databases"]["main"], "ok");
    let (s, v) = gw.get("/v1/db/main/health", &admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["backend"], "sqlite");
    let (_, v) = gw.get("/v1/databases", &admin).await;
    assert_eq!(
        v["databases"],
        json!([{"name": "main", "backend": "sqlite"}])
    );
    // Some dbx traffic, then the metrics show the gateway's and dbx's own.
    gw.ok("/v1/db/main/sql/query", &admin, json!({"sql": "SELECT 1"}))
        .await;
    gw.send(
        Method::PUT,
        "/v1/db/main/kv/m",
        Some(&admin),
        Some(&json!({"value": "1"})),
    )
    .await;
    let resp = gw.http.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("dbx_gateway_http_requests_total{method=\"POST\",route=\"/v1/db/{db}/sql/query\",status=\"200\"}"), "{text}");
    assert!(text.contains("db_client_operation_duration"), "{text}");
    // The OpenAPI description lists the routes.
    let (s, v) = gw.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/v1/db/{db}/sql/query",
        "/v1/db/{db}/sql/transaction",
        "/v1/db/{db}/kv/{key}",
        "/v1/db/{db}/docs/{collection}/find",
        "/v1/db/{db}/vectors/{collection}/search",
        "/healthz",
    ] {
        assert!(
            v["paths"].get(p).is_some(),
            "{p} missing from /openapi.json"
        );
    }
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    // The docs page and its assets come from the binary itself.
    let html = gw.http.get(gw.url("/docs/")).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    let html = html.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    let js = gw
        .http
        .get(gw.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.unwrap().len() > 100_000);
    let init = gw
        .http
        .get(gw.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
    // Request ids: made when absent, kept when given, in the logs too.
    let r = gw.http.get(gw.url("/healthz")).send().await.unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
    let r = gw
        .http
        .get(gw.url("/v1/databases"))
        .bearer_auth(&admin)
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-abc-123");
    // The log is written out by a background thread every few milliseconds.
    wait_for_log(&gw, "req-abc-123", 1).await;
}

#[tokio::test]
async fn body_limit_malformed_json_and_audit_log() {
    let gw = Gateway::start(&format!("[limits]\nmax_body_bytes = 2048\n{DB}")).await;
    let admin = token("ada", &["admin"]);
    let big = "x".repeat(4096);
    let (s, v) = gw
        .post(
            "/v1/db/main/sql/query",
            &admin,
            json!({"sql": "SELECT $1", "params": [big]}),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    // Malformed JSON: 400 naming the field.
    let raw = |body: &'static str| {
        gw.http
            .post(gw.url("/v1/db/main/sql/query"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = raw(r#"{"sql": 42}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("sql"), "{v}");
    let r = raw(r#"{"sql": "SELECT 1", "parms": []}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("parms"), "{v}");
    let r = raw(r#"{"sql": "SELECT 1", "params": [1, {"$uuid": 5}]}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("params[1]"), "{v}");
    let r = raw(r#"{"sql": "SELECT 1""#).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Writes are audited: principal, database, operation; never the value.
    let secret_value = "do-not-log-this-value";
    gw.send(
        Method::PUT,
        "/v1/db/main/kv/audited",
        Some(&admin),
        Some(&json!({"value": secret_value})),
    )
    .await;
    wait_for_log(&gw, "dbx_gateway::audit", 1).await;
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("dbx_gateway::audit") && l.contains("kv.set"))
        .unwrap_or_else(|| panic!("no audit line:\n{log}"));
    assert!(
        line.contains("principal=ada") && line.contains("database=main"),
        "{line}"
    );
    assert!(!log.contains(secret_value));
    assert!(!log.contains(SECRET));
}

#[tokio::test]
async fn rate_limit_429_with_retry_after() {
    let gw = Gateway::start(&format!(
        "[rate_limit]\nper_principal = {{ requests = 3, per_secs = 3600 }}\n{DB}"
    ))
    .await;
    let t = token(&unique("limited"), &["admin"]);
    for _ in 0..3 {
        let (s, _) = gw.get("/v1/databases", &t).await;
        assert_eq!(s, StatusCode::OK);
    }
    let r = gw
        .http
        .get(gw.url("/v1/databases"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Another principal has its own budget.
    let (s, _) = gw
        .get("/v1/databases", &token(&unique("other"), &["admin"]))
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn two_replicas_share_one_limit_through_redis() {
    // One window for the whole test (a day), and a prefix of its own.
    let prefix = format!("{}:", unique("gwrl"));
    let extra = format!(
        "[rate_limit]\nper_principal = {{ requests = 4, per_secs = 86400 }}\nshared_database = \"limits\"\nkey_prefix = \"{prefix}\"\n[databases.limits]\nurl = \"{}\"\n",
        redis_url()
    );
    let a = Gateway::start(&extra).await;
    let b = Gateway::start(&extra).await;
    let t = token(&unique("shared"), &["admin"]);
    let mut ok = 0;
    let mut limited = 0;
    for gw in [&a, &b, &a, &b, &a, &b] {
        let r = gw
            .http
            .get(gw.url("/v1/databases"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers().contains_key("retry-after"));
                limited += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    // 4 allowed across both replicas, the rest refused by either.
    assert_eq!((ok, limited), (4, 2));
}

#[tokio::test]
async fn sigterm_drains_requests_in_flight() {
    let gw = Gateway::start(&format!(
        "[databases.pg]\nurl = \"{}\"\npool_max_size = 8\n",
        postgres_url()
    ))
    .await;
    let admin = Arc::new(token("ada", &["admin"]));
    let marker = unique("gw_drain");
    let n = 4;
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = gw.http.clone();
        // A transaction: an exclusive connection each (single statements
        // share pipelined clients, where a slow one holds up the next).
        let url = gw.url("/v1/db/pg/sql/transaction");
        let admin = admin.clone();
        let sql = format!("SELECT $1::int AS i FROM pg_sleep(1.5) /* {marker} */");
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(admin.as_str())
                .json(&json!({"statements": [{"sql": sql, "params": [i], "query": true}]}))
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.json::<serde_json::Value>().await.unwrap())
        }));
    }
    // Wait (bounded) until PostgreSQL runs all of them, then SIGTERM.
    let watch = gw.http.clone();
    let q = json!({"sql": "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND query NOT LIKE '%pg_stat_activity%'",
                   "params": [format!("%{marker}%")]});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = watch
            .post(gw.url("/v1/db/pg/sql/query"))
            .bearer_auth(admin.as_str())
            .json(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["rows"][0][0].as_i64() == Some(n) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the requests never all ran: {v}\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.signal("TERM");
    let mut gw = gw;
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK, "a request in flight was lost: {v}");
        assert_eq!(v["results"][0]["row_count"], 1);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), gw.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}\n{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains("requests drained") && log.contains("databases closed"),
        "{log}"
    );
    // Nothing listens any more.
    assert!(gw.http.get(gw.url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn sighup_reload_changes_what_a_role_may_do() {
    let gw = Gateway::start(DB).await;
    let reader = token("rita", &["reader"]);
    let body = json!({"value": "v"});
    let put = || {
        gw.send(
            Method::PUT,
            "/v1/db/main/kv/reload",
            Some(&reader),
            Some(&body),
        )
    };
    assert_eq!(put().await.0, StatusCode::FORBIDDEN);
    // Grant the reader writes, and reload.
    let cfg = std::fs::read_to_string(&gw.config).unwrap();
    let granted = cfg.replace(
        r#"grants = [{ databases = ["*"], capabilities = ["sql", "kv"], access = "read" }]"#,
        r#"grants = [{ databases = ["*"], capabilities = ["sql", "kv"], access = "write" }]"#,
    );
    assert_ne!(cfg, granted);
    std::fs::write(&gw.config, &granted).unwrap();
    gw.signal("HUP");
    wait_for_log(&gw, "auth and roles reloaded", 1).await;
    assert_eq!(put().await.0, StatusCode::OK);
    // An invalid file is refused, and the last good one stays.
    std::fs::write(
        &gw.config,
        granted.replace("access = \"write\"", "access = \"sometimes\""),
    )
    .unwrap();
    gw.signal("HUP");
    wait_for_log(&gw, "keeping the old auth and roles", 1).await;
    assert!(gw.log().contains("sometimes"), "the log says why");
    assert_eq!(put().await.0, StatusCode::OK);
    // Revoke again.
    std::fs::write(&gw.config, &cfg).unwrap();
    gw.signal("HUP");
    wait_for_log(&gw, "auth and roles reloaded", 2).await;
    assert_eq!(put().await.0, StatusCode::FORBIDDEN);
}

/// Wait (bounded) until `needle` appears `times` times in the log.
async fn wait_for_log(gw: &Gateway, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while gw.log().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "never logged `{needle}`:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tls_with_rustls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    let config = format!("{BASE}\n[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n{DB}");
    let gw = Gateway::start_in(dir, &config).await;
    assert!(gw.base.starts_with("https://"), "{}", gw.base);
    let addr = gw.base.trim_start_matches("https://").to_owned();
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for c in
        rustls_pki_types::CertificateDer::pem_file_iter(gw.dir.path().join("cert.pem")).unwrap()
    {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with(r#"{"status":"ok"}"#), "{out}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = gw.http.get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn check_validates_without_connecting_and_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("secret"), SECRET).unwrap();
    let run = |config: &str| {
        std::fs::write(d.join("gw.toml"), config).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_dbx-gateway"))
            .arg("--config")
            .arg(d.join("gw.toml"))
            .arg("--check")
            .output()
            .unwrap()
    };
    // A database that is not running is fine for --check: it does not connect.
    let good = format!(
        "{BASE}\n[databases.main]\nurl = \"postgres://app:pg-password-123@127.0.0.1:1/x\"\n"
    );
    let out = run(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 database(s) (main)"), "{stdout}");
    // Or the databases of a dbx.toml beside it.
    std::fs::write(
        d.join("dbx.toml"),
        "[databases.a]\nurl = \"sqlite::memory:\"\n[databases.b]\nurl = \"sqlite::memory:\"\n",
    )
    .unwrap();
    let out = run(&format!("dbx_toml = \"dbx.toml\"\n{BASE}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 database(s) (a, b)"));
    let out = run(&format!("dbx_toml = \"dbx.toml\"\n{good}"));
    assert_eq!(out.status.code(), Some(2), "both forms at once are refused");
    let bad = [
        (
            good.replace("access = \"read\"", "access = \"maybe\""),
            "roles.reader.grants[0].access",
        ),
        (
            good.replace(
                "capabilities = [\"sql\", \"kv\"]",
                "capabilities = [\"sql\", \"files\"]",
            ),
            "capabilities",
        ),
        (
            good.replace("secret_file = \"secret\"", "secret_file = \"missing\""),
            "secret_file",
        ),
        (
            good.replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\""),
            "listen",
        ),
        (
            good.replace("url = \"postgres://", "url = \"bogus://"),
            "main",
        ),
        (
            good.replace(
                "[roles.admin]",
                "[roles.admin]\npostgres_role = \"x; DROP\"",
            ),
            "postgres_role",
        ),
        (format!("{good}\nunknown_key = 1\n"), "unknown_key"),
        (
            format!("password_files = {{ main = \"missing.pass\" }}\n{good}"),
            "password_files.main",
        ),
    ];
    for (config, needle) in bad {
        let out = run(&config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(
            !stderr.contains("pg-password-123") && !stderr.contains(SECRET),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn json_logs_nest_dbx_operation_spans_under_the_request() {
    let gw = Gateway::start(&format!(
        "[log]\nformat = \"json\"\nspan_events = true\n{DB}"
    ))
    .await;
    let admin = token("ada", &["admin"]);
    let r = gw
        .http
        .put(gw.url("/v1/db/main/kv/traced"))
        .bearer_auth(&admin)
        .header("x-request-id", "trace-me-42")
        .json(&json!({"value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = gw.log().lines().any(|l| {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                return false;
            };
            v["span"]["name"] == "db.operation"
                && v["span"]["db.operation.name"] == "kv.set"
                && v["spans"][0]["name"] == "request"
                && v["spans"][0]["request_id"] == "trace-me-42"
                && v["spans"][0]["principal"] == "ada"
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dbx span under the request:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn per_ip_limit_applies_before_auth() {
    let gw = Gateway::start(&format!(
        "[rate_limit]\nper_ip = {{ requests = 2, per_secs = 3600 }}\n{DB}"
    ))
    .await;
    // Token guessing from one address is limited too.
    for _ in 0..2 {
        let (s, _) = gw
            .send(Method::GET, "/v1/databases", Some("bogus"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = gw
        .send(
            Method::GET,
            "/v1/databases",
            Some(&token("ada", &["admin"])),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["kind"], "rate_limited");
    // The service endpoints stay reachable for probes.
    let (s, _) = gw.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let gw = Gateway::start(&format!(
        "[cors]\nallow_origins = [\"https://app.example\"]\nmax_age_secs = 600\n{DB}"
    ))
    .await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(Method::OPTIONS, gw.url("/v1/db/main/sql/query"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let r = preflight("https://app.example").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(r.headers()["access-control-max-age"], "600");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let r = preflight("https://evil.example").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}
