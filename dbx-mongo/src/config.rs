//! Connection URLs and parameters, checked before anything touches the network.

use crate::error::{BACKEND, map_err};
use dbx_core::{ConnectOptions, Error, Result};
use mongodb::options::ClientOptions;
use std::time::Duration;

/// Default database when the URL names none (as MongoDB's own tools).
pub const DEFAULT_DATABASE: &str = "test";
/// Default collection of the key-value capability.
pub const DEFAULT_KV_COLLECTION: &str = "dbx_kv";
/// Default `pool_max_size`: connections per server (the driver's default).
pub const DEFAULT_POOL_SIZE: u32 = 10;
/// Default port of `mongodb://` URLs.
pub const DEFAULT_PORT: u16 = 27017;

/// Backend-specific URL parameters: dbx's own `kv_collection`, then the
/// MongoDB connection-string options passed through to the driver, spelled
/// as in MongoDB's documentation.
pub(crate) const PARAMS: &[&str] = &[
    "kv_collection",
    "appName",
    "authMechanism",
    "authMechanismProperties",
    "authSource",
    "compressors",
    "connectTimeoutMS",
    "directConnection",
    "heartbeatFrequencyMS",
    "journal",
    "loadBalanced",
    "localThresholdMS",
    "maxIdleTimeMS",
    "maxPoolSize",
    "minPoolSize",
    "maxConnecting",
    "maxStalenessSeconds",
    "readConcernLevel",
    "readPreference",
    "readPreferenceTags",
    "replicaSet",
    "retryReads",
    "retryWrites",
    "serverMonitoringMode",
    "serverSelectionTimeoutMS",
    "socketTimeoutMS",
    "srvMaxHosts",
    "srvServiceName",
    "ssl",
    "tls",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsCertificateKeyFilePassword",
    "tlsInsecure",
    "w",
    "wTimeoutMS",
    "zlibCompressionLevel",
];

/// dbx's own parameters of this backend.
const DBX_PARAMS: &[&str] = &["kv_collection"];

/// The MongoDB connection-string options.
fn driver_params() -> &'static [&'static str] {
    &PARAMS[1..]
}

/// Where and how to connect, parsed and checked.
pub(crate) struct MongoConfig {
    pub(crate) client: ClientOptions,
    pub(crate) database: String,
    pub(crate) kv_collection: String,
    /// `host:port` list or SRV name, for messages (never has credentials).
    pub(crate) target: String,
    pub(crate) pool_max_size: u32,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoConfig")
            .field("target", &self.target)
            .field("database", &self.database)
            .field("kv_collection", &self.kv_collection)
            .field("pool_max_size", &self.pool_max_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// Check a database name as MongoDB does.
pub(crate) fn check_database_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_config("the database name is empty"));
    }
    if name.len() >= 64 {
        return Err(Error::invalid_config(format!(
            "the database name is {} bytes long; MongoDB allows at most 63",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '/' | '\\' | '.' | ' ' | '"' | '$' | '*' | '<' | '>' | ':' | '|' | '?' | '\0'
        )
    }) {
        return Err(Error::invalid_config(format!(
            "the database name {name:?} contains {c:?}, which MongoDB does not allow"
        )));
    }
    Ok(())
}

fn check_params(options: &ConnectOptions) -> Result<()> {
    for (name, _) in options.params() {
        let known = dbx_core::settings::by_param(name).is_some()
            || DBX_PARAMS.contains(&name)
            || driver_params().iter().any(|p| p.eq_ignore_ascii_case(name));
        if !known {
            return Err(Error::invalid_config(format!(
                "unknown parameter `{}` for {BACKEND}; besides the common dbx parameters it takes kv_collection and the MongoDB connection-string options ({})",
                name.chars().take(60).collect::<String>(),
                driver_params().join(", ")
            )));
        }
    }
    Ok(())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl MongoConfig {
    pub(crate) async fn from_options(options: &ConnectOptions) -> Result<Self> {
        let scheme = options.scheme();
        if !matches!(scheme, "mongodb" | "mongodb+srv") {
            return Err(Error::invalid_config(format!(
                "the mongodb driver serves mongodb:// and mongodb+srv:// URLs, not {scheme}:"
            )));
        }
        if !options.has_authority() || options.host().is_empty() {
            return Err(Error::invalid_config(format!(
                "{scheme} URL names no host: write {scheme}://host[:port][,host2...][/database]"
            )));
        }
        check_params(options)?;
        let srv = scheme == "mongodb+srv";
        let host = options.host();
        let target = match (options.port(), srv) {
            (Some(_), true) => {
                return Err(Error::invalid_config(
                    "mongodb+srv URLs name a DNS name without a port",
                ));
            }
            (Some(p), false) if host.contains(':') && !host.contains(',') => {
                format!("[{host}]:{p}")
            }
            (Some(p), false) => format!("{host}:{p}"),
            (None, _) => host.to_owned(),
        };
        let path = options.path().trim_start_matches('/');
        let database = if path.is_empty() {
            DEFAULT_DATABASE.to_owned()
        } else {
            check_database_name(path)?;
            path.to_owned()
        };
        let kv_collection = options
            .param("kv_collection")
            .unwrap_or(DEFAULT_KV_COLLECTION)
            .to_owned();
        dbx_core::document::check_collection(&kv_collection)
            .map_err(|e| Error::invalid_config(format!("kv_collection: {}", e.message())))?;

        let has = |n: &str| options.params().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if options.pool_max_size().is_some() && has("maxPoolSize") {
            return Err(Error::invalid_config(
                "the pool size is given twice, as pool_max_size and maxPoolSize; give it once",
            ));
        }
        if options.password().is_some() && options.username().is_none() {
            return Err(Error::invalid_config(
                "a password is given without a user name",
            ));
        }
        // Rebuild the URL for the driver with the user name but without the
        // password: it is set on the parsed options below, so it never sits
        // in a string the driver might echo.
        let user = options
            .username()
            .map(|u| format!("{}@", percent_encode(u)))
            .unwrap_or_default();
        let mut url = format!("{scheme}://{user}{target}/");
        if !path.is_empty() {
            url.push_str(&percent_encode(path));
        }
        let passthrough: Vec<String> = options
            .params()
            .filter(|(k, _)| driver_params().iter().any(|p| p.eq_ignore_ascii_case(k)))
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        if !passthrough.is_empty() {
            url.push('?');
            url.push_str(&passthrough.join("&"));
        }
        let mut client = ClientOptions::parse(&url).await.map_err(|e| {
            let e = map_err(e);
            Error::invalid_config(format!("the {BACKEND} URL is not valid: {}", e.message()))
        })?;
        if let (Some(cred), Some(password)) = (client.credential.as_mut(), options.password()) {
            cred.password = Some(password.expose().to_owned());
        }
        let pool_max_size = match options.pool_max_size() {
            Some(n) => u32::try_from(n)
                .map_err(|_| Error::invalid_config(format!("pool_max_size {n} is too large")))?,
            None => client.max_pool_size.unwrap_or(DEFAULT_POOL_SIZE),
        };
        client.max_pool_size = Some(pool_max_size);
        if !has("connectTimeoutMS") {
            client.connect_timeout = Some(options.connect_timeout());
        }
        if !has("serverSelectionTimeoutMS") {
            // Waiting for a usable server is part of getting a connection.
            client.server_selection_timeout =
                Some(options.connect_timeout().min(options.timeout()));
        }
        if client.app_name.is_none() {
            client.app_name = Some("dbx".to_owned());
        }
        Ok(MongoConfig {
            client,
            database,
            kv_collection,
            target,
            pool_max_size,
            timeout: options.timeout(),
            connect_timeout: options.connect_timeout(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        check_database_name("app_1").unwrap();
        for bad in ["", "a/b", "a.b", "a b", "a$b", "a\0b", &"x".repeat(64)] {
            assert!(check_database_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(percent_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
