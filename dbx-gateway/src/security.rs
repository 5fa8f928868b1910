//! Bearer tokens (JWT) and role-based access: what a request may do.
//!
//! Built from the `[auth]` and `[roles.*]` of the gateway file; rebuilt on
//! SIGHUP (the old one stays when the new one is invalid).

use crate::config::{AuthConfig, ConfigError, GatewayConfig, KeyConfig, err};
use crate::error::ApiError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A capability of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    Sql,
    Kv,
    Docs,
    Vectors,
}

impl Capability {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Capability::Sql => "sql",
            Capability::Kv => "kv",
            Capability::Docs => "docs",
            Capability::Vectors => "vectors",
        }
    }
}

/// Read or write (write includes read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    Read,
    Write,
}

impl Access {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// Who made a request, from a verified token.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// `sub`, or `anonymous`.
    pub(crate) subject: String,
    /// Role names from the roles claim.
    pub(crate) roles: Vec<String>,
}

struct Key {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Grant {
    databases: Vec<String>,
    capabilities: Vec<String>,
    access: Access,
}

#[derive(Debug, Clone)]
struct Role {
    grants: Vec<Grant>,
    postgres_role: Option<String>,
}

/// The verification keys, claim rules and roles in force.
#[derive(Debug)]
pub(crate) struct Security {
    keys: Vec<Key>,
    issuer: Option<Vec<String>>,
    audience: Option<Vec<String>>,
    leeway: u64,
    roles_claim: String,
    roles: BTreeMap<String, Role>,
    verified: VerifiedTokens,
}

/// Tokens verified already, each with the principal it names and the second
/// its `exp` (plus leeway) passes: a client sending the same token on every
/// request pays for the signature check and the claims parsing once. Only
/// successes are kept, keyed by the whole token (so by its signature too);
/// an entry is dropped once expired. It lives in [`Security`], so a SIGHUP
/// reload (new keys, new rules) starts with an empty one.
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<Box<str>, (Principal, u64)>>);

/// At most this many tokens are remembered (a few hundred bytes each).
const VERIFIED_MAX: usize = 4096;

impl fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens themselves.
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("VerifiedTokens").field("len", &n).finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl VerifiedTokens {
    fn get(&self, token: &str) -> Option<Principal> {
        let mut map = self.0.lock().ok()?;
        let (p, until) = map.get(token)?;
        if unix_now() < *until {
            return Some(p.clone());
        }
        map.remove(token);
        None
    }

    fn put(&self, token: &str, p: &Principal, until: u64) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= VERIFIED_MAX {
            let now = unix_now();
            map.retain(|_, (_, u)| now < *u);
            if map.len() >= VERIFIED_MAX {
                map.clear();
            }
        }
        map.insert(token.into(), (p.clone(), until));
    }
}

fn read_secret(k: &KeyConfig, at: &str) -> Result<Vec<u8>, ConfigError> {
    match (&k.secret_file, &k.secret_env) {
        (Some(p), None) => {
            let mut s = std::fs::read(p).map_err(|e| {
                err(format!(
                    "{at}: cannot read secret_file {}: {e}",
                    p.display()
                ))
            })?;
            while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                s.pop();
            }
            Ok(s)
        }
        (None, Some(var)) => std::env::var(var).map(String::into_bytes).map_err(|_| {
            err(format!(
                "{at}: environment variable {var} (secret_env) is not set"
            ))
        }),
        _ => Err(err(format!(
            "{at}: an HMAC key needs exactly one of secret_file or secret_env"
        ))),
    }
}

fn load_key(k: &KeyConfig, at: &str) -> Result<Key, ConfigError> {
    let alg = Algorithm::from_str(&k.algorithm).map_err(|_| {
        err(format!(
            "{at}.algorithm: `{}` is not a JWT algorithm",
            k.algorithm
        ))
    })?;
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            if k.public_key_file.is_some() {
                return Err(err(format!(
                    "{at}: {alg:?} takes a secret, not public_key_file"
                )));
            }
            let secret = read_secret(k, at)?;
            if secret.len() < 32 {
                return Err(err(format!(
                    "{at}: the HMAC secret must be at least 32 bytes"
                )));
            }
            DecodingKey::from_secret(&secret)
                .map_err(|e| err(format!("{at}: unusable secret: {e}")))?
        }
        _ => {
            if k.secret_file.is_some() || k.secret_env.is_some() {
                return Err(err(format!(
                    "{at}: {alg:?} takes public_key_file, not a secret"
                )));
            }
            let Some(p) = &k.public_key_file else {
                return Err(err(format!("{at}: {alg:?} needs public_key_file")));
            };
            let pem = std::fs::read(p).map_err(|e| {
                err(format!(
                    "{at}: cannot read public_key_file {}: {e}",
                    p.display()
                ))
            })?;
            let parsed = match alg {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                _ => DecodingKey::from_rsa_pem(&pem),
            };
            parsed.map_err(|e| {
                err(format!(
                    "{at}: {} is not a {alg:?} public key in PEM: {e}",
                    p.display()
                ))
            })?
        }
    };
    Ok(Key {
        alg,
        kid: k.kid.clone(),
        key,
    })
}

fn load_jwks(path: &std::path::Path) -> Result<Vec<Key>, ConfigError> {
    let at = format!("auth.jwks_file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("{at}: {e}")))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| err(format!("{at}: not a JWKS: {e}")))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let Some(ka) = jwk.common.key_algorithm else {
            return Err(err(format!("{at}: key {i} has no `alg`")));
        };
        // KeyAlgorithm's names are the JWS ones (`RS256`...).
        let alg = Algorithm::from_str(&format!("{ka:?}"))
            .map_err(|_| err(format!("{at}: key {i}: unsupported `alg` {ka:?}")))?;
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(err(format!(
                "{at}: key {i} is a shared secret; a JWKS file holds public keys only"
            )));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| err(format!("{at}: key {i}: {e}")))?;
        keys.push(Key {
            alg,
            kid: jwk.common.key_id.clone(),
            key,
        });
    }
    Ok(keys)
}

fn valid_pg_role(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

impl Security {
    /// Build from the gateway file; errors name the field.
    pub(crate) fn from_config(
        cfg: &GatewayConfig,
        db_names: &[String],
    ) -> Result<Security, ConfigError> {
        let auth: &AuthConfig = &cfg.auth;
        let mut keys = Vec::new();
        for (i, k) in auth.keys.iter().enumerate() {
            keys.push(load_key(k, &format!("auth.keys[{i}]"))?);
        }
        if let Some(p) = &auth.jwks_file {
            keys.extend(load_jwks(p)?);
        }
        if keys.is_empty() {
            return Err(err(
                "auth: no verification keys (give [[auth.keys]] or auth.jwks_file)",
            ));
        }
        let mut roles = BTreeMap::new();
        for (name, r) in &cfg.roles {
            let mut grants = Vec::new();
            for (i, g) in r.grants.iter().enumerate() {
                let at = format!("roles.{name}.grants[{i}]");
                let access = match g.access.as_str() {
                    "read" => Access::Read,
                    "write" => Access::Write,
                    other => {
                        return Err(err(format!(
                            "{at}.access: `{other}` is not `read` or `write`"
                        )));
                    }
                };
                for c in &g.capabilities {
                    if !matches!(c.as_str(), "sql" | "kv" | "docs" | "vectors" | "*") {
                        return Err(err(format!(
                            "{at}.capabilities: `{c}` is not sql, kv, docs, vectors or *"
                        )));
                    }
                }
                for d in &g.databases {
                    if d != "*" && !db_names.iter().any(|n| n == d) {
                        return Err(err(format!(
                            "{at}.databases: no database named `{d}`; configured: {}",
                            db_names.join(", ")
                        )));
                    }
                }
                grants.push(Grant {
                    databases: g.databases.clone(),
                    capabilities: g.capabilities.clone(),
                    access,
                });
            }
            if let Some(pg) = &r.postgres_role
                && !valid_pg_role(pg)
            {
                return Err(err(format!(
                    "roles.{name}.postgres_role: `{pg}` is not a plain identifier (letters, digits, _)"
                )));
            }
            roles.insert(
                name.clone(),
                Role {
                    grants,
                    postgres_role: r.postgres_role.clone(),
                },
            );
        }
        Ok(Security {
            keys,
            issuer: auth.issuer.as_ref().map(|v| v.to_vec()),
            audience: auth.audience.as_ref().map(|v| v.to_vec()),
            leeway: auth.leeway_secs,
            roles_claim: auth.roles_claim.clone(),
            roles,
            verified: VerifiedTokens::default(),
        })
    }

    /// Verify a bearer token: signature, algorithm, `exp`, `nbf`, `iss`, `aud`.
    /// A token verified before and not yet expired is taken from the cache.
    pub(crate) fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        if let Some(p) = self.verified.get(token) {
            return Ok(p);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ApiError::unauthorized(format!("malformed token: {e}")))?;
        let mut last = None;
        for k in self.keys.iter().filter(|k| {
            k.alg == header.alg
                && match (&k.kid, &header.kid) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        }) {
            let mut v = Validation::new(k.alg);
            v.leeway = self.leeway;
            v.validate_exp = true;
            v.validate_nbf = true;
            let mut required = vec!["exp"];
            if let Some(iss) = &self.issuer {
                v.set_issuer(iss);
                required.push("iss");
            }
            if let Some(aud) = &self.audience {
                v.set_audience(aud);
                required.push("aud");
            } else {
                v.validate_aud = false;
            }
            v.set_required_spec_claims(&required);
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                token, &k.key, &v,
            ) {
                Ok(data) => {
                    // `exp` is required, so present and a number here.
                    let exp = data.claims.get("exp").and_then(serde_json::Value::as_f64);
                    let p = self.principal(data.claims);
                    if let Some(exp) = exp.filter(|e| e.is_finite() && *e >= 0.0) {
                        // Cast saturates; the leeway is the one decode allowed.
                        self.verified
                            .put(token, &p, (exp as u64).saturating_add(self.leeway));
                    }
                    return Ok(p);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => ApiError::unauthorized(format!("token rejected: {e}")),
            None => ApiError::unauthorized(format!(
                "no configured key for algorithm {:?}{}",
                header.alg,
                header
                    .kid
                    .as_deref()
                    .map(|k| format!(" and kid `{k}`"))
                    .unwrap_or_default()
            )),
        })
    }

    fn principal(&self, claims: serde_json::Map<String, serde_json::Value>) -> Principal {
        let subject = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or("unknown")
            .to_owned();
        let roles = match claims.get(&self.roles_claim) {
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Principal { subject, roles }
    }

    /// Whether the principal may use `cap` of `db` for `access`; on success
    /// the PostgreSQL role to switch to, if the granting role names one.
    pub(crate) fn authorize(
        &self,
        p: &Principal,
        db: &str,
        cap: Capability,
        access: Access,
    ) -> Result<Option<String>, ApiError> {
        let mut allowed = false;
        let mut pg_role = None;
        for name in &p.roles {
            let Some(role) = self.roles.get(name) else {
                continue;
            };
            let grants = role.grants.iter().any(|g| {
                g.access >= access
                    && g.databases.iter().any(|d| d == "*" || d == db)
                    && g.capabilities.iter().any(|c| c == "*" || c == cap.as_str())
            });
            if grants {
                if !allowed || (pg_role.is_none() && role.postgres_role.is_some()) {
                    pg_role = role.postgres_role.clone();
                }
                allowed = true;
                if pg_role.is_some() {
                    break;
                }
            }
        }
        if allowed {
            Ok(pg_role)
        } else {
            Err(ApiError::forbidden(format!(
                "no role of `{}` grants {} {} on database `{db}`",
                p.subject,
                access.as_str(),
                cap.as_str()
            )))
        }
    }

    /// Whether the principal has any grant on `db` (for its health).
    pub(crate) fn any_grant(&self, p: &Principal, db: &str) -> bool {
        p.roles.iter().filter_map(|r| self.roles.get(r)).any(|r| {
            r.grants
                .iter()
                .any(|g| g.databases.iter().any(|d| d == "*" || d == db))
        })
    }
}

/// Quote a PostgreSQL identifier (already checked to be plain).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
