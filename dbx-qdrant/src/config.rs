//! Connection URLs and parameters, checked before anything touches the network.

use crate::error::BACKEND;
use dbx_core::{ConnectOptions, Error, Result, Secret};
use qdrant_client::qdrant as q;
use std::fmt;
use std::time::Duration;

/// Default gRPC port of `qdrant://` and `qdrants://` URLs.
pub const DEFAULT_PORT: u16 = 6334;
/// Default number of gRPC connections (HTTP/2 channels) the client opens.
pub const DEFAULT_POOL_SIZE: usize = 3;

/// Backend-specific URL parameters.
pub(crate) const PARAMS: &[&str] = &["read_consistency", "write_ordering", "shard_key"];

/// Where and how to connect, parsed and checked.
pub(crate) struct QdrantConfig {
    /// Each server of the URL: `http(s)://host:port` for the client (never
    /// has the API key) and `host:port` for messages.
    pub(crate) nodes: Vec<(String, String)>,
    /// `host:port[,host:port...]`, for messages.
    pub(crate) target: String,
    /// `read_consistency`: how many replicas a read asks (a Qdrant cluster).
    pub(crate) read_consistency: Option<q::ReadConsistency>,
    /// `write_ordering`: which replica orders writes (a Qdrant cluster).
    pub(crate) write_ordering: Option<q::WriteOrdering>,
    /// `shard_key`: the shard key of every point operation.
    pub(crate) shard_key: Option<q::ShardKeySelector>,
    pub(crate) tls: bool,
    pub(crate) api_key: Option<Secret>,
    pub(crate) pool_size: usize,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for QdrantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QdrantConfig")
            .field("nodes", &self.nodes)
            .field("read_consistency", &self.read_consistency)
            .field("write_ordering", &self.write_ordering)
            .field("shard_key", &self.shard_key)
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
        let mut nodes = Vec::new();
        for (host, port) in options.hosts(DEFAULT_PORT)? {
            if host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
            {
                return Err(Error::invalid_config(format!(
                    "{scheme} URL host {:?} is not a host name or address",
                    host.chars().take(60).collect::<String>()
                )));
            }
            let target = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let uri = format!("{}://{target}", if tls { "https" } else { "http" });
            // Check the address as the client will parse it, so a bad one is
            // a configuration error here rather than at the first request.
            uri.parse::<tonic::transport::Uri>().map_err(|e| {
                Error::invalid_config(format!("{scheme} URL host {target:?} is not valid: {e}"))
            })?;
            nodes.push((uri, target));
        }
        let target = nodes
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let api_key = options
            .password()
            .filter(|p| !p.expose().is_empty())
            .cloned();
        Ok(QdrantConfig {
            nodes,
            target,
            read_consistency: options
                .param("read_consistency")
                .map(read_consistency)
                .transpose()?,
            write_ordering: options
                .param("write_ordering")
                .map(write_ordering)
                .transpose()?,
            shard_key: options.param("shard_key").map(shard_key).transpose()?,
            tls,
            api_key,
            pool_size: options.pool_max_size().unwrap_or(DEFAULT_POOL_SIZE),
            timeout: options.timeout(),
            connect_timeout: options.connect_timeout(),
        })
    }
}

/// `all`, `majority`, `quorum` or a number of replicas (at least 1).
fn read_consistency(v: &str) -> Result<q::ReadConsistency> {
    use q::read_consistency::Value;
    let value = match v {
        "all" => Value::Type(q::ReadConsistencyType::All as i32),
        "majority" => Value::Type(q::ReadConsistencyType::Majority as i32),
        "quorum" => Value::Type(q::ReadConsistencyType::Quorum as i32),
        n => match n.parse::<u64>() {
            Ok(n) if n >= 1 => Value::Factor(n),
            _ => {
                return Err(Error::invalid_config(format!(
                    "read_consistency must be all, majority, quorum or a number of replicas (1 or more), got {:?}",
                    v.chars().take(40).collect::<String>()
                )));
            }
        },
    };
    Ok(q::ReadConsistency { value: Some(value) })
}

/// `weak`, `medium` or `strong`.
fn write_ordering(v: &str) -> Result<q::WriteOrdering> {
    let t = match v {
        "weak" => q::WriteOrderingType::Weak,
        "medium" => q::WriteOrderingType::Medium,
        "strong" => q::WriteOrderingType::Strong,
        _ => {
            return Err(Error::invalid_config(format!(
                "write_ordering must be weak, medium or strong, got {:?}",
                v.chars().take(40).collect::<String>()
            )));
        }
    };
    Ok(q::WriteOrdering { r#type: t as i32 })
}

/// A keyword, or a number written `#N` (Qdrant's two kinds of shard key).
fn shard_key(v: &str) -> Result<q::ShardKeySelector> {
    use q::shard_key::Key;
    let key = match v.strip_prefix('#') {
        Some(n) => Key::Number(n.parse().map_err(|_| {
            Error::invalid_config(format!(
                "shard_key {v:?}: a numeric shard key is `#` and a number (#12); a keyword is written as is"
            ))
        })?),
        None if v.is_empty() => {
            return Err(Error::invalid_config("shard_key is empty"));
        }
        None => Key::Keyword(v.to_owned()),
    };
    Ok(q::ShardKeySelector {
        shard_keys: vec![q::ShardKey { key: Some(key) }],
        fallback: None,
    })
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
        assert_eq!(c.nodes[0].0, "http://localhost:6334");
        assert!(!c.tls && c.api_key.is_none());
        assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
        let c = parse("qdrants://:s3cret@db.example.com:7000/?timeout=3s&pool_max_size=5").unwrap();
        assert_eq!(c.nodes[0].0, "https://db.example.com:7000");
        assert!(c.tls);
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.pool_size, 5);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            parse("qdrant://[::1]:6334").unwrap().nodes[0].0,
            "http://[::1]:6334"
        );
    }

    #[test]
    fn several_hosts_and_consistency_options() {
        let c = parse(
            "qdrant://a:6334,b,[::1]:7000?read_consistency=majority&write_ordering=strong&shard_key=tenant-1",
        )
        .unwrap();
        let uris: Vec<&str> = c.nodes.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            uris,
            ["http://a:6334", "http://b:6334", "http://[::1]:7000"]
        );
        assert_eq!(c.target, "a:6334,b:6334,[::1]:7000");
        assert_eq!(
            c.read_consistency.unwrap().value,
            Some(q::read_consistency::Value::Type(
                q::ReadConsistencyType::Majority as i32
            ))
        );
        assert_eq!(
            c.write_ordering.unwrap().r#type,
            q::WriteOrderingType::Strong as i32
        );
        assert_eq!(
            c.shard_key.unwrap().shard_keys[0].key,
            Some(q::shard_key::Key::Keyword("tenant-1".into()))
        );
        let c = parse("qdrant://a?read_consistency=2&shard_key=%2312").unwrap();
        assert_eq!(
            c.read_consistency.unwrap().value,
            Some(q::read_consistency::Value::Factor(2))
        );
        assert_eq!(
            c.shard_key.unwrap().shard_keys[0].key,
            Some(q::shard_key::Key::Number(12))
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
            ("qdrant://a,a:6334", "twice"),
            ("qdrant://a,,b", "empty"),
            ("qdrant://h?read_consistency=0", "read_consistency"),
            ("qdrant://h?read_consistency=most", "read_consistency"),
            ("qdrant://h?write_ordering=fast", "write_ordering"),
            ("qdrant://h?shard_key=", "shard_key"),
            ("qdrant://h?shard_key=%23x", "shard_key"),
        ] {
            let e = parse(url).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(e.message().contains(says), "{url}: {e}");
            assert!(!e.to_string().contains("=k"), "{e}");
        }
    }
}
