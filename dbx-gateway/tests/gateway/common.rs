//! The harness: a gateway process on a free loopback port (it binds
//! 127.0.0.1:0 and prints the address), tokens, and HTTP helpers.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256!";
pub const ISSUER: &str = "dbx-test";
pub const AUDIENCE: &str = "dbx-gateway";

/// Auth and roles shared by most tests.
pub const BASE: &str = r#"
listen = "127.0.0.1:0"
[auth]
issuer = "dbx-test"
audience = "dbx-gateway"
leeway_secs = 0
[[auth.keys]]
algorithm = "HS256"
secret_file = "secret"
[roles.admin]
grants = [{ databases = ["*"], capabilities = ["*"], access = "write" }]
[roles.reader]
grants = [{ databases = ["*"], capabilities = ["sql", "kv"], access = "read" }]
"#;

pub fn redis_url() -> String {
    std::env::var("DBX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn postgres_url() -> String {
    std::env::var("DBX_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("\n*** SKIPPED: {what} ***\n\n").as_bytes());
}

/// A name no other run or test uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// HS256 token with the standard claims and `roles`.
pub fn token(sub: &str, roles: &[&str]) -> String {
    sign(
        &json!({"sub": sub, "roles": roles, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600}),
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
}

pub fn sign(claims: &Value, alg: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

/// A running gateway; killed when dropped.
pub struct Gateway {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Start with `BASE` plus `extra` (limits, databases...).
    pub async fn start(extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, &format!("{BASE}\n{extra}")).await
    }

    /// Start in `dir` with this whole configuration.
    pub async fn start_in(dir: tempfile::TempDir, config: &str) -> Gateway {
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dbx-gateway"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            // Relative SQLite paths land in the test's own directory.
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("gateway did not start; log:\n{}", read_log(dir.path())))
            .unwrap()
            .unwrap_or_else(|| panic!("gateway exited; log:\n{}", read_log(dir.path())));
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Gateway {
            child,
            base,
            dir,
            config: path,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = resp.text().await.unwrap();
        if !status.is_success() {
            assert_eq!(ct, "application/problem+json", "{status}: {text}");
        }
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(token), Some(&body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// POST expecting 200; the body.
    pub async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let (s, v) = self.post(path, token, body).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        v
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().unwrap();
        let st = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

pub fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
}

/// Run `openssl` with these arguments in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
