//! URL options to a `tokio_postgres::Config` plus the driver's own settings.

use crate::tls::{MakeTls, TlsSettings};
use dbx_core::{ConnectOptions, Error, Result};
use std::fmt;
use std::time::Duration;
use tokio_postgres::config::SslMode;

/// Default `pool_max_size`: exclusive connections for transactions and streams.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Default `shared_clients`: pipelined connections shared by single statements.
pub const DEFAULT_SHARED_CLIENTS: usize = 2;
/// Most `shared_clients` accepted.
pub const MAX_SHARED_CLIENTS: usize = 64;
/// Default `shared_stall`: a shared client that has statements in flight and
/// has answered none for this long takes no new statements until it does.
pub const DEFAULT_SHARED_STALL: Duration = Duration::from_millis(10);
/// Default key-value table name.
pub const DEFAULT_KV_TABLE: &str = "dbx_kv";
/// Default `statement_cache_capacity`: prepared statements kept per connection.
pub const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 256;
/// Default `max_lifetime` of a connection.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Default `idle_timeout` of a pooled connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default `application_name`.
pub const DEFAULT_APPLICATION_NAME: &str = "dbx";

/// Backend-specific URL parameters, besides the common ones.
pub(crate) const PARAMS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "application_name",
    "options",
    "search_path",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "channel_binding",
    "statement_timeout",
    "statement_cache",
    "statement_cache_capacity",
    "shared_clients",
    "shared_stall",
    "max_lifetime",
    "idle_timeout",
    "kv_table",
    "isolation_level",
    "read_only",
    "target_session_attrs",
    "load_balance_hosts",
    "replica_reads",
    "read_your_writes",
    "max_replica_lag",
];

/// Default `read_your_writes`: after a write, reads go to the primary this long.
pub const DEFAULT_READ_YOUR_WRITES: Duration = Duration::from_secs(2);
/// Default `max_replica_lag`: a standby further behind is not read from.
pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(10);

/// What a connection's server must be (`target_session_attrs`, as libpq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionAttrs {
    /// Any server that accepts the login (the default).
    Any,
    /// A server that accepts writes (`transaction_read_only` is off).
    ReadWrite,
    /// A server in read-only mode (`transaction_read_only` is on).
    ReadOnly,
    /// A primary (not in recovery).
    Primary,
    /// A standby (in recovery).
    Standby,
    /// A standby if any host is one, else any server.
    PreferStandby,
}

impl SessionAttrs {
    fn parse(v: &str) -> Result<SessionAttrs> {
        Ok(match v.to_ascii_lowercase().as_str() {
            "any" => SessionAttrs::Any,
            "read-write" => SessionAttrs::ReadWrite,
            "read-only" => SessionAttrs::ReadOnly,
            "primary" => SessionAttrs::Primary,
            "standby" => SessionAttrs::Standby,
            "prefer-standby" => SessionAttrs::PreferStandby,
            _ => {
                return Err(bad(
                    "target_session_attrs",
                    "one of any, read-write, read-only, primary, standby, prefer-standby",
                    v,
                ));
            }
        })
    }

    /// The parameter's value, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::ReadOnly => "read-only",
            SessionAttrs::Primary => "primary",
            SessionAttrs::Standby => "standby",
            SessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

/// Everything the driver needs to open and run connections.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) tls: MakeTls,
    /// Where we connect, for messages: `host:port/db`, never credentials.
    pub(crate) target: String,
    pub(crate) pool_max_size: usize,
    pub(crate) shared_clients: usize,
    /// `shared_stall`: how long a shared client may go without answering
    /// while busy before new statements avoid it (`None`: never).
    pub(crate) shared_stall: Option<Duration>,
    pub(crate) statement_cache: bool,
    pub(crate) statement_cache_capacity: usize,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) acquire_timeout: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) kv_table: String,
    /// `BEGIN ...` with the configured isolation level and access mode.
    pub(crate) begin_sql: String,
    /// One configuration per host of the URL, in the order written (each
    /// with its own port), for the connector to walk.
    pub(crate) hosts: Vec<tokio_postgres::Config>,
    /// `target_session_attrs`.
    pub(crate) session: SessionAttrs,
    /// `load_balance_hosts=random`: try the hosts in a random order.
    pub(crate) load_balance: bool,
    /// `replica_reads=true`: plain reads to a standby.
    pub(crate) replica_reads: bool,
    /// `read_your_writes`: after a write, reads go to the primary this long.
    pub(crate) read_your_writes: Duration,
    /// `max_replica_lag`: a standby further behind is not read from.
    pub(crate) max_replica_lag: Option<Duration>,
}

impl Settings {
    /// The settings of the standbys' connections (`replica_reads`): the same
    /// hosts, `target_session_attrs=standby`, spread at random.
    pub(crate) fn for_standbys(&self) -> Settings {
        let mut s = self.clone();
        s.session = SessionAttrs::Standby;
        s.load_balance = true;
        s.replica_reads = false;
        s
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio_postgres::Config's Debug redacts the password; ours adds nothing secret.
        f.debug_struct("Settings")
            .field("target", &self.target)
            .field("tls", &self.tls)
            .field("pool_max_size", &self.pool_max_size)
            .field("shared_clients", &self.shared_clients)
            .field("shared_stall", &self.shared_stall)
            .field("statement_cache", &self.statement_cache)
            .field("timeout", &self.timeout)
            .field("kv_table", &self.kv_table)
            .field("begin", &self.begin_sql)
            .finish_non_exhaustive()
    }
}

/// Whether `name` is a plain SQL identifier: letters, digits and `_`, not
/// starting with a digit, at most 63 bytes (PostgreSQL's limit).
pub(crate) fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn bad(name: &str, expected: &str, got: &str) -> Error {
    let shown: String = got.chars().take(60).collect();
    Error::invalid_config(format!(
        "parameter `{name}` must be {expected}, got {shown:?}"
    ))
}

/// A duration parameter that may also be `off` (or `0`) to disable it.
fn optional_duration(
    options: &ConnectOptions,
    name: &str,
    default: Option<Duration>,
) -> Result<Option<Duration>> {
    match options.param(name) {
        None => Ok(default),
        Some(v) if matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "0" | "none") => {
            Ok(None)
        }
        Some(_) => Ok(options.param_duration(name)?.filter(|d| !d.is_zero())),
    }
}

fn bounded_usize(
    options: &ConnectOptions,
    name: &str,
    range: std::ops::RangeInclusive<usize>,
    default: usize,
) -> Result<usize> {
    match options.param(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                bad(
                    name,
                    &format!("a whole number from {} to {}", range.start(), range.end()),
                    v,
                )
            }),
    }
}

/// Escape a value for the `options` startup parameter, where spaces
/// separate arguments and a backslash escapes the next character.
fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ' ' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn sslmode(options: &ConnectOptions) -> Result<&'static str> {
    let Some(v) = options.param("sslmode") else {
        return Ok("prefer");
    };
    const MODES: [&str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];
    let lower = v.to_ascii_lowercase();
    MODES.into_iter().find(|m| *m == lower).ok_or_else(|| {
        bad(
            "sslmode",
            "one of disable, prefer, require, verify-ca, verify-full",
            v,
        )
    })
}

impl Settings {
    /// Read and check every option. Errors are `InvalidConfig` and never
    /// contain the password.
    pub(crate) fn from_options(options: &ConnectOptions) -> Result<Settings> {
        let mut pg = tokio_postgres::Config::new();

        // Host: the URL's (one, or a list h1:p1,h2:p2), or the `host`
        // parameter; a path is a Unix socket directory.
        let port_param = match options.param("port") {
            Some(p) => Some(
                p.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("port", "a number from 1 to 65535", p))?,
            ),
            None => None,
        };
        let host_list: Vec<(String, u16)> = match options.param("host") {
            Some(h) if !h.is_empty() => {
                if h.contains(',') {
                    return Err(Error::invalid_config(
                        "parameter `host` names one host; write a list in the URL: postgres://h1:5432,h2:5432/db",
                    ));
                }
                vec![(h.to_owned(), port_param.or(options.port()).unwrap_or(5432))]
            }
            _ if options.host().contains(',') => {
                if port_param.is_some() {
                    return Err(Error::invalid_config(
                        "parameter `port` with a list of hosts: give each host its port in the URL (h1:5432,h2:5433)",
                    ));
                }
                options.hosts(5432)?
            }
            _ if !options.host().is_empty() => vec![(
                options.host().to_owned(),
                port_param.or(options.port()).unwrap_or(5432),
            )],
            _ => vec![("localhost".to_owned(), port_param.unwrap_or(5432))],
        };
        if host_list.len() > 1 && host_list.iter().any(|(h, _)| h.starts_with('/')) {
            return Err(Error::invalid_config(
                "a list of hosts names TCP hosts only, not Unix socket directories",
            ));
        }
        let (host, port) = host_list[0].clone();
        let unix = host.starts_with('/');

        let user = options
            .username()
            .map(str::to_owned)
            .or_else(|| options.param("user").map(str::to_owned))
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .ok_or_else(|| {
                Error::invalid_config(
                    "postgres URL names no user (write postgres://user@host/db or add ?user=...)",
                )
            })?;
        pg.user(&user);
        if let Some(p) = options.password() {
            pg.password(p.expose());
        } else if let Some(p) = options.param("password") {
            pg.password(p);
        }

        let path_db = options.path().trim_start_matches('/');
        if path_db.contains('/') {
            return Err(Error::invalid_config(format!(
                "postgres URL path {:?} is not a database name",
                options.path()
            )));
        }
        let dbname = match options.param("dbname") {
            Some(d) if !d.is_empty() => d.to_owned(),
            _ if !path_db.is_empty() => path_db.to_owned(),
            _ => user.clone(),
        };
        // The protocol's strings end at a NUL: one would cut the name short
        // or come back raw in the server's error.
        let password_nul = options
            .password()
            .map(|p| p.expose())
            .or_else(|| options.param("password"))
            .is_some_and(|p| p.contains('\0'));
        if password_nul {
            return Err(Error::invalid_config(
                "the password contains a NUL byte, which PostgreSQL does not accept",
            ));
        }
        for (what, v) in [
            ("user name", &user),
            ("database name", &dbname),
            (
                "host",
                &host_list
                    .iter()
                    .map(|(h, _)| h.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ] {
            if v.contains('\0') {
                return Err(Error::invalid_config(format!(
                    "the {what} {:?} contains a NUL byte, which PostgreSQL does not accept",
                    v.replace('\0', "")
                )));
            }
        }
        pg.dbname(&dbname);
        pg.application_name(
            options
                .param("application_name")
                .unwrap_or(DEFAULT_APPLICATION_NAME),
        );

        // Session settings travel in the startup packet, so every
        // connection, pooled or shared, starts with them.
        let mut startup: Vec<String> = Vec::new();
        if let Some(o) = options.param("options").filter(|o| !o.trim().is_empty()) {
            startup.push(o.trim().to_owned());
        }
        if let Some(sp) = options.param("search_path") {
            if sp.trim().is_empty() || sp.contains('\0') {
                return Err(bad("search_path", "a list of schema names", sp));
            }
            startup.push(format!("-c search_path={}", escape_option(sp)));
        }
        let statement_timeout =
            optional_duration(options, "statement_timeout", Some(options.timeout()))?;
        if let Some(st) = statement_timeout {
            let ms = st.as_millis().clamp(1, i32::MAX as u128);
            startup.push(format!("-c statement_timeout={ms}"));
        }
        if !startup.is_empty() {
            pg.options(startup.join(" "));
        }

        let timeout = options.timeout();
        let connect_timeout = options.connect_timeout();
        pg.connect_timeout(connect_timeout);
        // Detect dead peers: keepalives for idle connections, a user timeout
        // for unacknowledged data (a query sent into a black hole).
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(30));
        pg.keepalives_interval(Duration::from_secs(10));
        pg.keepalives_retries(3);
        pg.tcp_user_timeout(timeout.max(Duration::from_secs(10)));

        let mode = sslmode(options)?;
        let tls_settings = TlsSettings {
            mode,
            root_cert: options.param("sslrootcert").map(str::to_owned),
            client_cert: options.param("sslcert").map(str::to_owned),
            client_key: options.param("sslkey").map(str::to_owned),
        };
        pg.ssl_mode(match mode {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let tls = MakeTls::new(&tls_settings)?;
        if let Some(cb) = options.param("channel_binding") {
            use tokio_postgres::config::ChannelBinding as Cb;
            pg.channel_binding(match cb.to_ascii_lowercase().as_str() {
                "disable" => Cb::Disable,
                "prefer" => Cb::Prefer,
                "require" => {
                    crate::tls::channel_binding_possible()?;
                    Cb::Require
                }
                _ => return Err(bad("channel_binding", "disable, prefer or require", cb)),
            });
        }

        let kv_table = options
            .param("kv_table")
            .unwrap_or(DEFAULT_KV_TABLE)
            .to_owned();
        if !is_identifier(&kv_table) {
            return Err(bad(
                "kv_table",
                "a plain identifier (letters, digits, _; at most 63 bytes)",
                &kv_table,
            ));
        }

        let isolation = match options.param("isolation_level") {
            None => None,
            Some(v) => Some(
                match v.to_ascii_lowercase().replace([' ', '-'], "_").as_str() {
                    "read_committed" => "READ COMMITTED",
                    "repeatable_read" => "REPEATABLE READ",
                    "serializable" => "SERIALIZABLE",
                    _ => {
                        return Err(bad(
                            "isolation_level",
                            "read_committed, repeatable_read or serializable",
                            v,
                        ));
                    }
                },
            ),
        };
        let read_only = options.param_bool("read_only")?.unwrap_or(false);
        let mut begin_sql = "BEGIN".to_owned();
        if let Some(level) = isolation {
            begin_sql.push_str(" ISOLATION LEVEL ");
            begin_sql.push_str(level);
        }
        if read_only {
            begin_sql.push_str(" READ ONLY");
        }

        let target = if unix {
            format!("{host} (port {port})/{dbname}")
        } else {
            let names: Vec<String> = host_list
                .iter()
                .map(|(h, p)| {
                    if h.contains(':') {
                        format!("[{h}]:{p}")
                    } else {
                        format!("{h}:{p}")
                    }
                })
                .collect();
            format!("{}/{dbname}", names.join(","))
        };
        let session = options
            .param("target_session_attrs")
            .map(SessionAttrs::parse)
            .transpose()?
            .unwrap_or(SessionAttrs::Any);
        let load_balance = match options.param("load_balance_hosts") {
            None => false,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "disable" => false,
                "random" => true,
                _ => return Err(bad("load_balance_hosts", "disable or random", v)),
            },
        };
        let replica_reads = options.param_bool("replica_reads")?.unwrap_or(false);
        let session = if replica_reads {
            match session {
                SessionAttrs::Any | SessionAttrs::ReadWrite => SessionAttrs::ReadWrite,
                SessionAttrs::Primary => SessionAttrs::Primary,
                other => {
                    return Err(Error::invalid_config(format!(
                        "replica_reads=true sends writes to the primary: target_session_attrs must be \
                         any, read-write or primary, not {}",
                        other.name()
                    )));
                }
            }
        } else {
            session
        };
        if replica_reads && host_list.len() < 2 {
            return Err(Error::invalid_config(
                "replica_reads=true needs a list of hosts with the primary and its standbys \
                 (postgres://primary:5432,standby:5432/db)",
            ));
        }
        let read_your_writes =
            optional_duration(options, "read_your_writes", Some(DEFAULT_READ_YOUR_WRITES))?
                .unwrap_or(Duration::ZERO);
        let max_replica_lag =
            optional_duration(options, "max_replica_lag", Some(DEFAULT_MAX_REPLICA_LAG))?;
        if !replica_reads
            && (options.param("read_your_writes").is_some()
                || options.param("max_replica_lag").is_some())
        {
            return Err(Error::invalid_config(
                "read_your_writes and max_replica_lag apply with replica_reads=true only",
            ));
        }
        // One configuration per host, each tried on its own with a share of
        // the connect timeout (as libpq gives each host connect_timeout).
        let per_host_timeout = (connect_timeout / u32::try_from(host_list.len()).unwrap_or(1))
            .max(Duration::from_secs(1))
            .min(connect_timeout);
        let add_host = |c: &mut tokio_postgres::Config, h: &str, p: u16| {
            if h.starts_with('/') {
                c.host_path(h);
            } else {
                c.host(h);
            }
            c.port(p);
        };
        let hosts = host_list
            .iter()
            .map(|(h, p)| {
                let mut one = pg.clone();
                add_host(&mut one, h, *p);
                one.connect_timeout(per_host_timeout);
                one
            })
            .collect();
        for (h, p) in &host_list {
            add_host(&mut pg, h, *p);
        }

        Ok(Settings {
            pg,
            tls,
            target,
            hosts,
            session,
            load_balance,
            replica_reads,
            read_your_writes,
            max_replica_lag,
            pool_max_size: options.pool_max_size().unwrap_or(DEFAULT_POOL_SIZE),
            shared_clients: bounded_usize(
                options,
                "shared_clients",
                0..=MAX_SHARED_CLIENTS,
                DEFAULT_SHARED_CLIENTS,
            )?,
            shared_stall: optional_duration(options, "shared_stall", Some(DEFAULT_SHARED_STALL))?,
            statement_cache: options.param_bool("statement_cache")?.unwrap_or(true),
            statement_cache_capacity: bounded_usize(
                options,
                "statement_cache_capacity",
                1..=100_000,
                DEFAULT_STATEMENT_CACHE_CAPACITY,
            )?,
            timeout,
            connect_timeout,
            acquire_timeout: options.acquire_timeout(),
            max_lifetime: optional_duration(options, "max_lifetime", Some(DEFAULT_MAX_LIFETIME))?,
            idle_timeout: optional_duration(options, "idle_timeout", Some(DEFAULT_IDLE_TIMEOUT))?,
            kv_table,
            begin_sql,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbx_core::ErrorKind;

    const DEFAULT_CONNECT_TIMEOUT_FOR_TEST: Duration = Duration::from_secs(10);

    fn settings(url: &str) -> Result<Settings> {
        Settings::from_options(&ConnectOptions::from_url(url)?)
    }

    #[test]
    fn full_url() {
        let s = settings(
            "postgresql://app:s3cret@db.example:6543/shop?application_name=web&search_path=a%20b&statement_timeout=off&shared_clients=0&shared_stall=off&isolation_level=serializable&read_only=true&sslmode=disable",
        )
        .unwrap();
        assert_eq!(s.pg.get_user(), Some("app"));
        assert_eq!(s.pg.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(s.pg.get_dbname(), Some("shop"));
        assert_eq!(s.pg.get_ports(), &[6543]);
        assert_eq!(s.pg.get_application_name(), Some("web"));
        assert_eq!(s.pg.get_options(), Some("-c search_path=a\\ b"));
        assert_eq!(s.shared_clients, 0);
        assert_eq!(s.shared_stall, None);
        assert_eq!(s.begin_sql, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY");
        assert_eq!(s.target, "db.example:6543/shop");
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn defaults() {
        let s = settings("postgres://u@h").unwrap();
        assert_eq!(s.pg.get_dbname(), Some("u"));
        assert_eq!(s.pg.get_ports(), &[5432]);
        assert_eq!(s.pg.get_options(), Some("-c statement_timeout=5000"));
        assert_eq!(s.pool_max_size, DEFAULT_POOL_SIZE);
        assert_eq!(s.shared_clients, DEFAULT_SHARED_CLIENTS);
        assert_eq!(s.shared_stall, Some(DEFAULT_SHARED_STALL));
        assert!(s.statement_cache);
        assert_eq!(s.kv_table, DEFAULT_KV_TABLE);
        assert_eq!(s.begin_sql, "BEGIN");
        assert_eq!(s.max_lifetime, Some(DEFAULT_MAX_LIFETIME));
    }

    #[test]
    fn nul_bytes_are_refused_before_the_driver() {
        let mut o = ConnectOptions::from_url("postgres://u@h/db").unwrap();
        o.set_username("a\0b");
        let e = Settings::from_options(&o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(
            e.to_string()
                .contains("user name \"ab\" contains a NUL byte"),
            "{e}"
        );
        assert!(!e.to_string().contains('\0'), "{e:?}");
        let mut o = ConnectOptions::from_url("postgres://u@h/db").unwrap();
        o.set_password("hunter\0x");
        let e = Settings::from_options(&o).unwrap_err();
        assert!(
            e.to_string().contains("password contains a NUL byte"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter"), "{e}");
    }

    #[test]
    fn host_lists_and_session_attrs() {
        let s = settings("postgres://u@a:5433,b,[::1]:5435/db?target_session_attrs=prefer-standby")
            .unwrap();
        assert_eq!(s.target, "a:5433,b:5432,[::1]:5435/db");
        assert_eq!(s.hosts.len(), 3);
        let ports: Vec<u16> = s.hosts.iter().map(|h| h.get_ports()[0]).collect();
        assert_eq!(ports, [5433, 5432, 5435]);
        assert!(s.hosts.iter().all(|h| h.get_hosts().len() == 1));
        assert_eq!(s.pg.get_hosts().len(), 3);
        assert_eq!(s.session, SessionAttrs::PreferStandby);
        assert!(!s.load_balance);
        // Each host gets a share of the connect timeout, at least 1 s.
        assert_eq!(
            s.hosts[0].get_connect_timeout(),
            Some(&(DEFAULT_CONNECT_TIMEOUT_FOR_TEST / 3))
        );
        for v in [
            "any",
            "read-write",
            "READ-ONLY",
            "primary",
            "standby",
            "prefer-standby",
        ] {
            let s = settings(&format!("postgres://u@a,b/db?target_session_attrs={v}")).unwrap();
            assert_eq!(s.session.name(), v.to_ascii_lowercase());
        }
        assert!(
            settings("postgres://u@a,b/db?load_balance_hosts=random")
                .unwrap()
                .load_balance
        );
        let one = settings("postgres://u@a/db").unwrap();
        assert_eq!((one.hosts.len(), one.session), (1, SessionAttrs::Any));
    }

    #[test]
    fn unix_socket_hosts() {
        let s = settings("postgres://u@%2Fvar%2Frun%2Fpostgresql/db").unwrap();
        assert!(matches!(
            s.pg.get_hosts(),
            [tokio_postgres::config::Host::Unix(p)] if p.to_str() == Some("/var/run/postgresql")
        ));
        let s = settings("postgres://u@/db?host=/tmp&port=5433").unwrap();
        assert!(matches!(
            s.pg.get_hosts(),
            [tokio_postgres::config::Host::Unix(p)] if p.to_str() == Some("/tmp")
        ));
        assert_eq!(s.pg.get_ports(), &[5433]);
    }

    #[test]
    fn bad_parameters_are_invalid_config() {
        for url in [
            "postgres://u@h/db?sslmode=sometimes",
            "postgres://u@h/db?kv_table=bad-name",
            "postgres://u@h/db?kv_table=x%22%3B%20DROP%20TABLE%20y",
            "postgres://u@h/db?shared_clients=100",
            "postgres://u@h/db?shared_clients=-1",
            "postgres://u@h/db?shared_stall=soon",
            "postgres://u@h/db?statement_cache=maybe",
            "postgres://u@h/db?statement_cache_capacity=0",
            "postgres://u@h/db?max_lifetime=forever",
            "postgres://u@h/db?isolation_level=chaos",
            "postgres://u@h/db?port=0",
            "postgres://u@h/a/b",
            "postgres://u@h1,h1/db",
            "postgres://u@h1,h2/db?target_session_attrs=master",
            "postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "postgres://u:pw@h/db?sslcert=/nonexistent/c.pem",
        ] {
            let e = settings(url)
                .err()
                .unwrap_or_else(|| panic!("{url} was accepted"));
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}: {e}");
            assert!(!e.to_string().contains("pw"), "{url}: {e}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("dbx_kv"));
        assert!(is_identifier("_t1"));
        for bad in ["", "1t", "a-b", "a b", "t\"x", &"x".repeat(64)] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }
}
