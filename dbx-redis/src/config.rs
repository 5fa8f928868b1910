//! Connection URLs and parameters, checked before anything touches the network.

use dbx_core::{ConnectOptions, Error, Result};
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo,
};
use std::path::PathBuf;
use std::time::Duration;

/// Default `pool_max_size`: exclusive connections in the pool.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Default port of `redis://` and `rediss://` URLs.
pub const DEFAULT_PORT: u16 = 6379;

/// The URL schemes the driver serves.
pub(crate) const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis+unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
];

/// Default port of the sentinels in `redis+sentinel://` URLs.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Backend-specific URL parameters (besides the common ones).
pub(crate) const PARAMS: &[&str] = &[
    "db",
    "protocol",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_insecure",
    "tcp_nodelay",
    "sentinel_username",
    "sentinel_password",
    "replica_reads",
];

/// Where and how to connect, parsed and checked.
#[derive(Clone)]
pub(crate) struct RedisConfig {
    /// Address and handshake (credentials, database, protocol) for redis-rs;
    /// of the first seed for a cluster.
    pub(crate) info: ConnectionInfo,
    /// The seed nodes of a `redis+cluster://` URL (the same handshake for
    /// each); `None` for a single server.
    pub(crate) cluster: Option<Vec<ConnectionInfo>>,
    /// The sentinels and master name of a `redis+sentinel://` URL; `info`
    /// is then the template of the primary's connection (its address is
    /// asked of the sentinels).
    pub(crate) sentinel: Option<SentinelSpec>,
    /// TLS material to load at connect time, for `rediss://`.
    pub(crate) tls: Option<TlsFiles>,
    /// `host:port` or the socket path, for messages (never has credentials).
    pub(crate) target: String,
    pub(crate) db: i64,
    pub(crate) pool_max_size: usize,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) acquire_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("target", &self.target)
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("pool_max_size", &self.pool_max_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

/// Where the sentinels are and which master they watch.
#[derive(Clone)]
pub(crate) struct SentinelSpec {
    /// The master's name, as in `sentinel monitor <name> ...`.
    pub(crate) master: String,
    /// The sentinels, with their own credentials (`sentinel_username`,
    /// `sentinel_password`; none by default).
    pub(crate) nodes: Vec<ConnectionInfo>,
    /// `replica_reads=true`: key-value reads on a replica.
    pub(crate) replica_reads: bool,
}

/// Certificate files named by the `tls_*` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
}

impl RedisConfig {
    pub(crate) fn from_options(options: &ConnectOptions) -> Result<Self> {
        let scheme = options.scheme();
        if !SCHEMES.contains(&scheme) {
            return Err(Error::invalid_config(format!(
                "the redis driver serves {} URLs, not {scheme}:",
                SCHEMES
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let cluster = scheme.ends_with("+cluster");
        let sentinel = scheme.ends_with("+sentinel");
        if !options.has_authority() {
            return Err(Error::invalid_config(format!(
                "write {scheme}://{}",
                if scheme == "redis+unix" {
                    "/path/to/redis.sock"
                } else {
                    "host[:port][/db]"
                }
            )));
        }
        let tls = scheme.starts_with("rediss");
        let unix = scheme == "redis+unix";
        if !cluster && !sentinel && options.host().contains(',') {
            return Err(Error::invalid_config(format!(
                "{scheme}:// names one server, not a list: write {scheme}+cluster://h1:p1,h2:p2 \
                 for a Redis Cluster, or {scheme}+sentinel://s1,s2,s3/master for Sentinel"
            )));
        }
        if !sentinel
            && (options.param("sentinel_username").is_some()
                || options.param("sentinel_password").is_some()
                || options.param("replica_reads").is_some())
        {
            return Err(Error::invalid_config(
                "sentinel_username, sentinel_password and replica_reads apply to redis+sentinel:// URLs only",
            ));
        }

        let (master, path_db) = if unix {
            (None, None)
        } else if sentinel {
            let (master, db) = parse_sentinel_path(scheme, options.path())?;
            (Some(master), db)
        } else {
            (None, parse_path_db(options.path())?)
        };
        let param_db = options.param("db").map(parse_db).transpose()?;
        let db = match (path_db, param_db) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_config(
                    "the database index is given twice, in the URL path and as `db`; give it once",
                ));
            }
            (a, b) => a.or(b).unwrap_or(0),
        };
        if cluster && db != 0 {
            return Err(Error::invalid_config(format!(
                "a Redis Cluster has database 0 only, not {db}: drop the database from the URL"
            )));
        }

        let (addrs, target) = if unix {
            if !options.host().is_empty() || options.port().is_some() {
                return Err(Error::invalid_config(
                    "redis+unix URLs name a socket path, not a host: write redis+unix:///path/to/redis.sock",
                ));
            }
            let path = options.path();
            if path.is_empty() || path == "/" || path.ends_with('/') {
                return Err(Error::invalid_config(
                    "redis+unix URL names no socket: write redis+unix:///path/to/redis.sock",
                ));
            }
            (
                vec![ConnectionAddr::Unix(PathBuf::from(path))],
                path.to_owned(),
            )
        } else {
            if options.host().is_empty() {
                return Err(Error::invalid_config(if cluster {
                    format!("{scheme} URL names no node: write {scheme}://host:port[,host:port...]")
                } else if sentinel {
                    format!(
                        "{scheme} URL names no sentinel: write {scheme}://s1:26379,s2:26379/master"
                    )
                } else {
                    format!("{scheme} URL names no host: write {scheme}://host[:port][/db]")
                }));
            }
            let insecure = options.param_bool("tls_insecure")?.unwrap_or(false);
            let mut addrs = Vec::new();
            let mut names = Vec::new();
            let default_port = if sentinel {
                DEFAULT_SENTINEL_PORT
            } else {
                DEFAULT_PORT
            };
            for (host, port) in options.hosts(default_port)? {
                names.push(if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                });
                addrs.push(if tls {
                    ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(host, port)
                });
            }
            (addrs, names.join(","))
        };

        let tls_files = TlsFiles {
            ca_file: options.param("tls_ca_file").map(PathBuf::from),
            cert_file: options.param("tls_cert_file").map(PathBuf::from),
            key_file: options.param("tls_key_file").map(PathBuf::from),
        };
        let any_tls_param =
            tls_files != TlsFiles::default() || options.param("tls_insecure").is_some();
        if any_tls_param && !tls {
            return Err(Error::invalid_config(
                "the tls_* parameters apply to rediss:// URLs only",
            ));
        }
        if tls_files.cert_file.is_some() != tls_files.key_file.is_some() {
            return Err(Error::invalid_config(
                "tls_cert_file and tls_key_file go together (a client certificate and its key)",
            ));
        }
        if tls_files.ca_file.is_some() && options.param_bool("tls_insecure")? == Some(true) {
            return Err(Error::invalid_config(
                "tls_insecure=true turns certificate verification off, so tls_ca_file would be ignored; give one of them",
            ));
        }
        for (name, file) in [
            ("tls_ca_file", &tls_files.ca_file),
            ("tls_cert_file", &tls_files.cert_file),
            ("tls_key_file", &tls_files.key_file),
        ] {
            if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
                return Err(Error::invalid_config(format!(
                    "parameter `{name}` is empty"
                )));
            }
        }

        let protocol = match options
            .param("protocol")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("resp2") | Some("2") => ProtocolVersion::RESP2,
            Some("resp3") | Some("3") => ProtocolVersion::RESP3,
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "parameter `protocol` must be resp2 or resp3, got {:?}",
                    short(other)
                )));
            }
        };

        let mut redis = RedisConnectionInfo::default()
            .set_db(db)
            .set_protocol(protocol);
        match (options.username(), options.password()) {
            (Some(_), None) => {
                return Err(Error::invalid_config(
                    "the URL has a user name but no password: write redis://user:password@host (ACL user) \
                     or redis://:password@host (password only)",
                ));
            }
            (user, Some(password)) => {
                if let Some(user) = user {
                    redis = redis.set_username(user);
                }
                redis = redis.set_password(password.expose());
            }
            (None, None) => {}
        }
        let tcp = tcp_settings(
            options.timeout(),
            options.param_bool("tcp_nodelay")?.unwrap_or(true),
        );
        let mut infos = addrs
            .into_iter()
            .map(|addr| {
                addr.into_connection_info()
                    .map(|info| {
                        info.set_redis_settings(redis.clone())
                            .set_tcp_settings(tcp.clone())
                    })
                    .map_err(|e| Error::invalid_config(format!("invalid Redis address: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let sentinel = match master {
            Some(master) => {
                let mut auth = RedisConnectionInfo::default();
                match (
                    options.param("sentinel_username"),
                    options.param("sentinel_password"),
                ) {
                    (Some(_), None) => {
                        return Err(Error::invalid_config(
                            "sentinel_username needs sentinel_password",
                        ));
                    }
                    (user, Some(password)) => {
                        if let Some(user) = user {
                            auth = auth.set_username(user);
                        }
                        auth = auth.set_password(password);
                    }
                    (None, None) => {}
                }
                let nodes = infos
                    .iter()
                    .map(|i| i.clone().set_redis_settings(auth.clone()))
                    .collect();
                Some(SentinelSpec {
                    master,
                    nodes,
                    replica_reads: options.param_bool("replica_reads")?.unwrap_or(false),
                })
            }
            None => None,
        };
        let info = infos.remove(0);
        let cluster = cluster.then(|| {
            let mut seeds = vec![info.clone()];
            seeds.append(&mut infos);
            seeds
        });

        Ok(RedisConfig {
            info,
            cluster,
            sentinel,
            tls: tls.then_some(tls_files),
            target,
            db,
            pool_max_size: options.pool_max_size().unwrap_or(DEFAULT_POOL_SIZE),
            timeout: options.timeout(),
            connect_timeout: options.connect_timeout(),
            acquire_timeout: options.acquire_timeout(),
        })
    }

    /// The redis-rs client, with certificates loaded for `rediss://`.
    pub(crate) fn client(&self) -> Result<redis::Client> {
        self.client_for(&self.info)
    }

    /// A redis-rs client for `info` (a sentinel, a primary) with this
    /// configuration's certificates.
    pub(crate) fn client_for(&self, info: &ConnectionInfo) -> Result<redis::Client> {
        #[cfg(feature = "tls")]
        if let Some(certs) = self.certificates()? {
            return redis::Client::build_with_tls(info.clone(), certs).map_err(|e| {
                Error::invalid_config(format!("the TLS certificate files are not usable PEM: {e}"))
                    .with_source(e)
            });
        }
        self.require_tls_support()?;
        redis::Client::open(info.clone())
            .map_err(|e| Error::invalid_config(format!("invalid Redis address: {e}")))
    }

    /// The redis-rs cluster client's builder for the seeds of a
    /// `redis+cluster://` URL, with timeouts, TCP settings and certificates.
    pub(crate) fn cluster_client(&self) -> Result<redis::cluster::ClusterClientBuilder> {
        self.require_tls_support()?;
        let seeds = self
            .cluster
            .clone()
            .unwrap_or_else(|| vec![self.info.clone()]);
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))] // no certificates to add
        let mut builder = redis::cluster::ClusterClientBuilder::new(seeds)
            .connection_timeout(self.connect_timeout)
            // One timer per request, over its attempts, redirections and
            // retries together; a dead node's connection is cut by the TCP
            // user timeout.
            .overall_response_timeout(Some(self.timeout))
            .tcp_settings(self.info.tcp_settings().clone());
        #[cfg(feature = "tls")]
        if let Some(certs) = self.certificates()? {
            builder = builder.certs(certs);
        }
        Ok(builder)
    }

    /// The URL's scheme, for messages.
    fn scheme(&self) -> &'static str {
        match (
            self.tls.is_some(),
            self.cluster.is_some(),
            self.sentinel.is_some(),
        ) {
            (true, true, _) => "rediss+cluster",
            (true, false, true) => "rediss+sentinel",
            (true, false, false) => "rediss",
            (false, true, _) => "redis+cluster",
            (false, false, true) => "redis+sentinel",
            (false, false, false) => "redis",
        }
    }

    /// Whether this build can serve the URL: a TLS URL (`rediss...://`, and
    /// so any `tls_*` parameter) without the `tls` feature is refused here,
    /// before anything touches the network, never sent in plaintext.
    pub(crate) fn require_tls_support(&self) -> Result<()> {
        if self.tls.is_some() && !cfg!(feature = "tls") {
            return Err(Error::invalid_config(format!(
                "{}:// needs dbx-redis's `tls` feature (dbx: `tls`), which this build leaves out",
                self.scheme()
            )));
        }
        Ok(())
    }

    /// The certificate files of `tls_ca_file`/`tls_cert_file`/`tls_key_file`,
    /// read and checked; `None` without TLS or without files (the system's
    /// roots). Installs the `ring` crypto provider for TLS URLs.
    #[cfg(feature = "tls")]
    pub(crate) fn certificates(&self) -> Result<Option<redis::TlsCertificates>> {
        let Some(files) = &self.tls else {
            return Ok(None);
        };
        // rustls needs a process-wide crypto provider; make it `ring` unless
        // the application installed one already (then that one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        if files.ca_file.is_none() && files.cert_file.is_none() {
            return Ok(None);
        }
        let read = |name: &str, path: &PathBuf, marker: &str| {
            let bytes = std::fs::read(path).map_err(|e| {
                Error::invalid_config(format!(
                    "cannot read parameter `{name}` file {}: {e}",
                    path.display()
                ))
                .with_source(e)
            })?;
            // An empty trust store would fail every handshake with a vague
            // certificate error; say what is wrong instead.
            if !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                return Err(Error::invalid_config(format!(
                    "parameter `{name}` file {} holds no PEM {}",
                    path.display(),
                    if marker.contains("CERTIFICATE") {
                        "certificate"
                    } else {
                        "private key"
                    }
                )));
            }
            Ok(bytes)
        };
        let root_cert = files
            .ca_file
            .as_ref()
            .map(|p| read("tls_ca_file", p, "-----BEGIN CERTIFICATE-----"))
            .transpose()?;
        let client_tls = match (&files.cert_file, &files.key_file) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read("tls_cert_file", cert, "-----BEGIN CERTIFICATE-----")?,
                client_key: read("tls_key_file", key, "PRIVATE KEY-----")?,
            }),
            _ => None,
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

/// Commands are small and pipelined on a shared connection: by default they
/// are sent at once (`tcp_nodelay=true`: no Nagle delay behind a command
/// still unacknowledged, which on a real network costs up to a round trip).
/// With `tcp_nodelay=false` the kernel coalesces the commands of many tasks
/// into fewer packets: more throughput when the connection is saturated,
/// more latency when it is not (measured on loopback: at 50 tasks 23% more
/// GETs per second, at 8 tasks 11% fewer). On Linux, a write the server does
/// not acknowledge within the operation timeout (a server that vanished
/// without closing the connection) breaks the connection, so it is replaced
/// instead of timing out every command.
fn tcp_settings(timeout: Duration, nodelay: bool) -> redis::io::tcp::TcpSettings {
    let settings = redis::io::tcp::TcpSettings::default().set_nodelay(nodelay);
    #[cfg(any(target_os = "android", target_os = "linux"))]
    let settings = settings.set_user_timeout(timeout);
    #[cfg(not(any(target_os = "android", target_os = "linux")))]
    let _ = timeout;
    settings
}

/// The path of a Sentinel URL: `/master` or `/master/db`.
fn parse_sentinel_path(scheme: &str, path: &str) -> Result<(String, Option<i64>)> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (name, db) = match rest.split_once('/') {
        Some((name, db)) => (name, parse_path_db(&format!("/{db}"))?),
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(Error::invalid_config(format!(
            "{scheme} URL names no master: write {scheme}://s1:26379,s2:26379/<master name>[/db]"
        )));
    }
    Ok((name.to_owned(), db))
}

/// The database index in a URL path: empty, `/` or `/N`.
fn parse_path_db(path: &str) -> Result<Option<i64>> {
    match path.strip_prefix('/') {
        None if path.is_empty() => Ok(None),
        Some("") => Ok(None),
        Some(index) => parse_db(index).map(Some),
        None => Err(Error::invalid_config(format!(
            "the URL path {:?} is not a database index",
            short(path)
        ))),
    }
}

/// A database index: a whole number from 0 (the server decides how many it has,
/// 16 by default; one it lacks fails at connect).
fn parse_db(text: &str) -> Result<i64> {
    text.parse::<u32>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| i32::try_from(*n).is_ok())
        .map(i64::from)
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "the database index must be a whole number from 0 (e.g. redis://host/0), got {:?}",
                short(text)
            ))
        })
}

pub(crate) fn short(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbx_core::ErrorKind;

    fn cfg(url: &str) -> Result<RedisConfig> {
        RedisConfig::from_options(&ConnectOptions::from_url(url).unwrap())
    }

    #[test]
    fn tcp_urls() {
        let c = cfg("redis://127.0.0.1").unwrap();
        assert_eq!((c.target.as_str(), c.db), ("127.0.0.1:6379", 0));
        assert_eq!(c.pool_max_size, DEFAULT_POOL_SIZE);
        assert!(c.tls.is_none());
        let c = cfg("redis://cache.local:6380/3").unwrap();
        assert_eq!((c.target.as_str(), c.db), ("cache.local:6380", 3));
        assert_eq!(c.info.redis_settings().db(), 3);
        let c = cfg("redis://[::1]:7000/").unwrap();
        assert_eq!(c.target, "[::1]:7000");
        let c = cfg("redis://h?db=5&pool_max_size=4").unwrap();
        assert_eq!((c.db, c.pool_max_size), (5, 4));
    }

    #[test]
    fn credentials() {
        let c = cfg("redis://ada:s%40cret@h/1").unwrap();
        let r = c.info.redis_settings();
        assert_eq!((r.username(), r.password()), (Some("ada"), Some("s@cret")));
        let c = cfg("redis://:pw@h").unwrap();
        let r = c.info.redis_settings();
        assert_eq!((r.username(), r.password()), (None, Some("pw")));
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw"), "{shown}");
    }

    #[test]
    fn tls_and_unix_urls() {
        let c = cfg("rediss://h?tls_ca_file=/etc/ca.pem").unwrap();
        assert_eq!(
            c.tls.as_ref().unwrap().ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(matches!(
            c.info.addr(),
            ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ));
        let c = cfg("rediss://h?tls_insecure=true").unwrap();
        assert!(matches!(
            c.info.addr(),
            ConnectionAddr::TcpTls { insecure: true, .. }
        ));
        let c = cfg("redis+unix:///run/redis.sock?db=2").unwrap();
        assert_eq!((c.target.as_str(), c.db), ("/run/redis.sock", 2));
        assert!(matches!(c.info.addr(), ConnectionAddr::Unix(_)));
        let c = cfg("redis://h?protocol=resp3").unwrap();
        assert_eq!(c.info.redis_settings().protocol(), ProtocolVersion::RESP3);
    }

    #[test]
    fn tcp_nodelay_is_on_unless_turned_off() {
        let on = format!("{:?}", cfg("redis://h").unwrap().info.tcp_settings());
        let off = format!(
            "{:?}",
            cfg("redis://h?tcp_nodelay=false")
                .unwrap()
                .info
                .tcp_settings()
        );
        assert!(on.contains("nodelay: true"), "{on}");
        assert!(off.contains("nodelay: false"), "{off}");
    }

    #[test]
    fn bad_urls_are_invalid_config() {
        for (url, needle) in [
            ("redis://h/abc", "database index"),
            ("redis://h/-1", "database index"),
            ("redis://h/+1", "database index"),
            ("redis://h/1/2", "database index"),
            ("redis://h/99999999999", "database index"),
            ("redis://h?db=x", "database index"),
            ("redis://h/1?db=1", "twice"),
            ("redis://", "no host"),
            ("redis:h", "write redis://"),
            ("redis://user@h", "no password"),
            ("redis://h?tls_ca_file=/x.pem", "rediss"),
            ("redis://h?tls_insecure=true", "rediss"),
            ("rediss://h?tls_cert_file=/c.pem", "go together"),
            (
                "rediss://h?tls_ca_file=/x.pem&tls_insecure=1",
                "tls_insecure",
            ),
            ("rediss://h?tls_insecure=maybe", "tls_insecure"),
            ("redis://h?tcp_nodelay=sometimes", "tcp_nodelay"),
            ("rediss://h?tls_ca_file=", "empty"),
            ("redis://h?protocol=resp4", "protocol"),
            ("redis+unix://host/sock", "socket path"),
            ("redis+unix:///", "no socket"),
        ] {
            let e = cfg(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn cluster_and_sentinel_urls() {
        let c = cfg("redis+cluster://:pw@a:7000,b:7001,c").unwrap();
        let seeds = c.cluster.as_ref().unwrap();
        assert_eq!(seeds.len(), 3);
        assert_eq!(c.target, "a:7000,b:7001,c:6379");
        assert!(
            seeds
                .iter()
                .all(|s| s.redis_settings().password() == Some("pw"))
        );
        assert!(c.sentinel.is_none());
        let c = cfg("rediss+cluster://a:1,b:2").unwrap();
        assert!(matches!(
            c.cluster.unwrap()[1].addr(),
            ConnectionAddr::TcpTls { port: 2, .. }
        ));

        let c = cfg("redis+sentinel://:pw@s1,s2:26380/mymaster/2?sentinel_password=spw").unwrap();
        let spec = c.sentinel.as_ref().unwrap();
        assert_eq!(spec.master, "mymaster");
        assert_eq!(c.db, 2);
        assert_eq!(c.target, "s1:26379,s2:26380");
        // The primary gets the URL's credentials, the sentinels their own.
        assert_eq!(c.info.redis_settings().password(), Some("pw"));
        assert_eq!(c.info.redis_settings().db(), 2);
        assert!(
            spec.nodes
                .iter()
                .all(|n| n.redis_settings().password() == Some("spw")
                    && n.redis_settings().db() == 0)
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw"), "{shown}");
        assert_eq!(
            cfg("redis+sentinel://s/m")
                .unwrap()
                .sentinel
                .unwrap()
                .master,
            "m"
        );

        for (url, needle) in [
            ("redis+cluster://a:1/2", "database 0 only"),
            ("redis+cluster://a:1?db=1", "database 0 only"),
            ("redis://a:1,b:2", "redis+cluster://"),
            ("redis+sentinel://s1", "no master"),
            ("redis+sentinel://s1/m/x", "database index"),
            ("redis+sentinel:///m", "no sentinel"),
            ("redis://h?sentinel_password=x", "redis+sentinel"),
            (
                "redis+sentinel://s/m?sentinel_username=u",
                "sentinel_password",
            ),
            ("redis+cluster://a,a", "twice"),
            ("valkey://h", "redis+cluster://"),
        ] {
            let e = cfg(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn missing_certificate_file_is_named() {
        let c = cfg("rediss://h?tls_ca_file=/nonexistent/dbx-ca.pem").unwrap();
        let e = c.client().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("/nonexistent/dbx-ca.pem"), "{e}");
    }
}
