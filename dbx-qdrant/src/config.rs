//! Connection URLs and parameters, checked before anything touches the network.

use crate::error::BACKEND;
use dbx_core::{ConnectOptions, Error, Result, Secret};
use std::fmt;
use std::time::Duration;

/// Default gRPC port of `qdrant://` and `qdrants://` URLs.
pub const DEFAULT_PORT: u16 = 6334;
/// Default number of gRPC connections (HTTP/2 channels) the client opens.
pub const DEFAULT_POOL_SIZE: usize = 3;

/// Backend-specific URL parameters: none besides the common ones.
pub(crate) const PARAMS: &[&str] = &[];

/// Where and how to connect, parsed and checked.
pub(crate) struct QdrantConfig {
    /// `http://host:port` or `https://host:port`, for the client (never has
    /// the API key).
    pub(crate) uri: String,
    /// `host:port`, for messages.
    pub(crate) target: String,
    pub(crate) tls: bool,
    pub(crate) api_key: Option<Secret>,
    pub(crate) pool_size: usize,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for QdrantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QdrantConfig")
            .field("uri", &self.uri)
            .field("tls", &self.tls)
            .field("api_key", &self.api_key)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl QdrantConfig {
    pub(crate) fn from_options(options: &ConnectOptions) -> Result<Self> {
        let scheme = options.scheme();
        let tls = match scheme {
            "qdrant" => false,
            "qdrants" => true,
            other => {
                return Err(Error::invalid_config(format!(
                    "the {BACKEND} driver serves qdrant:// and qdrants:// URLs, not {other}:"
                )));
            }
        };
        if !options.has_authority() || options.host().is_empty() {
            return Err(Error::invalid_config(format!(
                "{scheme} URL names no host: write {scheme}://[:API_KEY@]host[:port]"
            )));
        }
        if !matches!(options.path(), "" | "/") {
            return Err(Error::invalid_config(format!(
                "{scheme} URLs take no path (collections are chosen with db.vectors()?.collection(name)), got {:?}",
                options.path().chars().take(60).collect::<String>()
            )));
        }
        if options.param("api_key").is_some() {
            return Err(Error::invalid_config(format!(
                "the API key goes in the password part of the URL ({scheme}://:API_KEY@host:port) or the builder's password, not in an api_key parameter"
            )));
        }
        options.check_params(BACKEND, PARAMS)?;
        if options.username().is_some() {
            return Err(Error::invalid_config(format!(
                "Qdrant has no user names: put the API key in the password part of the URL ({scheme}://:API_KEY@host:port)"
            )));
        }
        let host = options.host();
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
        {
            return Err(Error::invalid_config(format!(
                "{scheme} URL host {:?} is not a host name or address",
                host.chars().take(60).collect::<String>()
            )));
        }
        let port = options.port().unwrap_or(DEFAULT_PORT);
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let uri = format!("{}://{target}", if tls { "https" } else { "http" });
        // Check the address as the client will parse it, so a bad one is a
        // configuration error here rather than at the first request.
        uri.parse::<tonic::transport::Uri>().map_err(|e| {
            Error::invalid_config(format!("{scheme} URL host {target:?} is not valid: {e}"))
        })?;
        let api_key = options
            .password()
            .filter(|p| !p.expose().is_empty())
            .cloned();
        Ok(QdrantConfig {
            uri,
            target,
            tls,
            api_key,
            pool_size: options.pool_max_size().unwrap_or(DEFAULT_POOL_SIZE),
            timeout: options.timeout(),
            connect_timeout: options.connect_timeout(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dbx_core::ErrorKind;

    fn parse(url: &str) -> Result<QdrantConfig> {
        QdrantConfig::from_options(&ConnectOptions::from_url(url)?)
    }

    #[test]
    fn urls_become_grpc_endpoints() {
        let c = parse("qdrant://localhost").unwrap();
        assert_eq!(c.uri, "http://localhost:6334");
        assert!(!c.tls && c.api_key.is_none());
        assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
        let c = parse("qdrants://:s3cret@db.example.com:7000/?timeout=3s&pool_max_size=5").unwrap();
        assert_eq!(c.uri, "https://db.example.com:7000");
        assert!(c.tls);
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.pool_size, 5);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            parse("qdrant://[::1]:6334").unwrap().uri,
            "http://[::1]:6334"
        );
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for (url, says) in [
            ("qdrant://", "no host"),
            ("qdrant:foo", "no host"),
            ("qdrant://h/coll", "no path"),
            ("qdrant://h?nope=1", "nope"),
            ("qdrant://h?api_key=k", "password part"),
            ("qdrant://user:k@h", "no user names"),
            ("http://h", "qdrant://"),
        ] {
            let e = parse(url).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(e.message().contains(says), "{url}: {e}");
            assert!(!e.to_string().contains("=k"), "{e}");
        }
    }
}
