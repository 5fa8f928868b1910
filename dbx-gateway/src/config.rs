//! The gateway's configuration file: listen address, TLS, limits, auth,
//! roles, CORS, rate limits, logging, and the `[databases.*]` of a dbx.toml
//! (embedded, or a path to one).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole gateway file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewayConfig {
    /// Address to listen on (`127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub(crate) listen: String,
    pub(crate) tls: Option<TlsConfig>,
    #[serde(default)]
    pub(crate) limits: Limits,
    pub(crate) auth: AuthConfig,
    #[serde(default)]
    pub(crate) roles: BTreeMap<String, RoleConfig>,
    pub(crate) cors: Option<CorsConfig>,
    #[serde(default)]
    pub(crate) rate_limit: RateLimitConfig,
    #[serde(default)]
    pub(crate) log: LogConfig,
    #[serde(default)]
    pub(crate) shutdown: ShutdownConfig,
    /// Path of a dbx.toml holding the `[databases.*]` (relative to this file).
    pub(crate) dbx_toml: Option<PathBuf>,
    /// Or the `[databases.*]` tables themselves.
    pub(crate) databases: Option<toml::Table>,
    /// Database passwords read from files: database name → file. Given to
    /// dbx as `DBX_DATABASES__<NAME>__PASSWORD`, never printed.
    #[serde(default)]
    pub(crate) password_files: BTreeMap<String, PathBuf>,
    /// Whether /metrics needs no token (default true: scrapers rarely carry one).
    #[serde(default = "yes")]
    pub(crate) public_metrics: bool,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn yes() -> bool {
    true
}

/// `[tls]`: PEM files of the certificate chain and the private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    /// Largest request body (413 beyond).
    pub(crate) max_body_bytes: usize,
    /// Most rows a JSON (non-streamed) query returns; more are cut and `truncated` is set.
    pub(crate) max_rows: usize,
    /// Most rows an NDJSON stream sends.
    pub(crate) max_stream_rows: usize,
    /// Most statements in one transaction request.
    pub(crate) max_statements: usize,
    /// Deadline of one request, in seconds (504 beyond).
    pub(crate) request_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_rows: 10_000,
            max_stream_rows: 1_000_000,
            max_statements: 100,
            request_timeout_secs: 30,
        }
    }
}

/// `[auth]`: how bearer tokens are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthConfig {
    /// Accepted issuers (`iss`); when set, the claim is required.
    #[serde(default)]
    pub(crate) issuer: Option<StringOrList>,
    /// Accepted audiences (`aud`); when set, the claim is required.
    #[serde(default)]
    pub(crate) audience: Option<StringOrList>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub(crate) leeway_secs: u64,
    /// The claim carrying the principal's role names (a string or a list).
    #[serde(default = "default_roles_claim")]
    pub(crate) roles_claim: String,
    /// Verification keys.
    #[serde(default)]
    pub(crate) keys: Vec<KeyConfig>,
    /// A JWKS file (public keys, chosen by `kid`).
    pub(crate) jwks_file: Option<PathBuf>,
}

fn default_leeway() -> u64 {
    30
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// One string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    pub(crate) fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s.clone()],
            StringOrList::Many(v) => v.clone(),
        }
    }
}

/// `[[auth.keys]]`: one verification key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyConfig {
    /// `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`...,
    /// `ES256`, `ES384`, `EdDSA`.
    pub(crate) algorithm: String,
    /// Key id; when set, only tokens naming it (`kid`) use this key.
    pub(crate) kid: Option<String>,
    /// HMAC secret, read from this file (trailing newline dropped).
    pub(crate) secret_file: Option<PathBuf>,
    /// HMAC secret, read from this environment variable.
    pub(crate) secret_env: Option<String>,
    /// Public key (PEM) for RSA, EC and Ed25519 algorithms.
    pub(crate) public_key_file: Option<PathBuf>,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("secret_file", &self.secret_file)
            .field("secret_env", &self.secret_env)
            .field("public_key_file", &self.public_key_file)
            .finish()
    }
}

/// `[roles.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleConfig {
    #[serde(default)]
    pub(crate) grants: Vec<GrantConfig>,
    /// PostgreSQL only: run this role's SQL inside a transaction after
    /// `SET LOCAL ROLE <name>`, so row-level security applies.
    pub(crate) postgres_role: Option<String>,
}

/// One grant: databases × capabilities × access.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantConfig {
    /// Database names, or `"*"`.
    pub(crate) databases: Vec<String>,
    /// `sql`, `kv`, `docs`, `vectors`, or `"*"`.
    pub(crate) capabilities: Vec<String>,
    /// `read` or `write` (write includes read).
    pub(crate) access: String,
}

/// `[cors]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorsConfig {
    /// Origins allowed (`"*"` for any).
    pub(crate) allow_origins: Vec<String>,
    #[serde(default)]
    pub(crate) max_age_secs: Option<u64>,
}

/// `[rate_limit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitConfig {
    pub(crate) per_principal: Option<Rate>,
    pub(crate) per_ip: Option<Rate>,
    /// A key-value database (Redis, typically) among the configured ones:
    /// when set, limits are fixed windows counted there, shared by every
    /// replica, instead of in this process.
    pub(crate) shared_database: Option<String>,
    /// Prefix of the window counters' keys in the shared database.
    #[serde(default = "default_rl_prefix")]
    pub(crate) key_prefix: String,
}

fn default_rl_prefix() -> String {
    "dbx-gateway:rl:".into()
}

/// `requests` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rate {
    pub(crate) requests: u32,
    #[serde(default = "one")]
    pub(crate) per_secs: u64,
}

fn one() -> u64 {
    1
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// `text` or `json`.
    pub(crate) format: String,
    /// A tracing filter (`info`, `dbx_gateway=debug,info`); `RUST_LOG` overrides it.
    pub(crate) filter: String,
    /// Log each span as it closes (the request's, and dbx's operation spans
    /// under it), with its duration.
    pub(crate) span_events: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            filter: "info".into(),
            span_events: false,
        }
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ShutdownConfig {
    /// How long requests in flight get to finish after SIGTERM/SIGINT.
    pub(crate) drain_timeout_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout_secs: 30,
        }
    }
}

/// A configuration problem, naming the file and the field.
#[derive(Debug)]
pub(crate) struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

impl GatewayConfig {
    /// Read and parse the gateway file.
    pub(crate) fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let mut cfg: GatewayConfig =
            toml::from_str(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate()
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(t) = &mut self.tls {
            fix(&mut t.cert_file);
            fix(&mut t.key_file);
        }
        if let Some(p) = &mut self.dbx_toml {
            fix(p);
        }
        for p in self.password_files.values_mut() {
            fix(p);
        }
        if let Some(p) = &mut self.auth.jwks_file {
            fix(p);
        }
        for k in &mut self.auth.keys {
            if let Some(p) = &mut k.secret_file {
                fix(p);
            }
            if let Some(p) = &mut k.public_key_file {
                fix(p);
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.dbx_toml.is_some() == self.databases.is_some() {
            return Err(err(
                "give the databases either as `dbx_toml = \"path\"` or as [databases.*] tables (exactly one)",
            ));
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_rows", l.max_rows),
            ("limits.max_stream_rows", l.max_stream_rows),
            ("limits.max_statements", l.max_statements),
        ] {
            if v == 0 {
                return Err(err(format!("{name} must be at least 1")));
            }
        }
        if l.request_timeout_secs == 0 {
            return Err(err("limits.request_timeout_secs must be at least 1"));
        }
        for (name, r) in [
            ("rate_limit.per_principal", &self.rate_limit.per_principal),
            ("rate_limit.per_ip", &self.rate_limit.per_ip),
        ] {
            if let Some(r) = r
                && (r.requests == 0 || r.per_secs == 0)
            {
                return Err(err(format!(
                    "{name}: requests and per_secs must be at least 1"
                )));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(err(format!(
                "log.format: `{}` is not `text` or `json`",
                self.log.format
            )));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(err(format!(
                "listen: `{}` is not an address such as 127.0.0.1:8080",
                self.listen
            )));
        }
        Ok(())
    }

    /// The environment dbx reads its overrides from: the process's, plus
    /// the passwords of `password_files`.
    pub(crate) fn database_env(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        for (name, path) in &self.password_files {
            let text = std::fs::read_to_string(path).map_err(|e| {
                err(format!(
                    "password_files.{name}: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let password = text.trim_end_matches(['\n', '\r']).to_owned();
            env.push((
                format!("DBX_DATABASES__{}__PASSWORD", name.to_uppercase()),
                password,
            ));
        }
        Ok(env)
    }

    /// The `[databases.*]` as dbx.toml text, and the name to use in errors.
    pub(crate) fn databases_toml(
        &self,
        gateway_path: &Path,
    ) -> Result<(String, String), ConfigError> {
        if let Some(p) = &self.dbx_toml {
            let text = std::fs::read_to_string(p)
                .map_err(|e| err(format!("cannot read {}: {e}", p.display())))?;
            return Ok((text, p.display().to_string()));
        }
        let mut root = toml::Table::new();
        root.insert(
            "databases".into(),
            toml::Value::Table(self.databases.clone().unwrap_or_default()),
        );
        let text = toml::to_string(&root)
            .map_err(|e| err(format!("{}: [databases]: {e}", gateway_path.display())))?;
        Ok((text, gateway_path.display().to_string()))
    }
}
