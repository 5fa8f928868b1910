//! Connection options: parsed from a URL, adjustable through setters, validated,
//! and redacted wherever they are printed.
//!
//! A URL has the form `scheme://[user[:password]@]host[:port][/path][?key=value&...]`
//! or, for file-based backends, `scheme:path[?...]`. Percent-encoded characters
//! are decoded in every part. Query parameters understood by every backend:
//!
//! | parameter         | meaning                                          | default |
//! |-------------------|--------------------------------------------------|---------|
//! | `pool_max_size`   | most connections the pool opens                   | per backend |
//! | `timeout`         | deadline of one operation attempt                 | 5s      |
//! | `connect_timeout` | deadline of opening one connection                | 10s     |
//! | `acquire_timeout` | longest wait for a free pooled connection         | 10s     |
//! | `log_statements`  | put SQL text (placeholders only) on spans         | false   |
//!
//! The resilience parameters are described in [`crate::policy`]; every
//! common and resilience parameter is declared once, in [`crate::settings`].
//!
//! Durations are written `250ms`, `5s`, `2m`, `1h`, or a plain number of seconds.
//! Other parameters belong to the backend and are listed in its documentation;
//! an unknown parameter is an error, not silently ignored.

use crate::policy::Policy;
use crate::util::truncate;
use crate::{Error, Result};
use std::fmt;
use std::time::Duration;

/// Default deadline of one operation attempt: far above a healthy
/// database's latency (milliseconds), short enough that a frozen server
/// costs a caller seconds, not half a minute. With the default
/// `retry_max_elapsed` (10s) a call never waits more than 10s in all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default deadline of opening one connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest wait for a free pooled connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted pool size.
pub const MAX_POOL_SIZE: usize = 10_000;

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for handing to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Whether a query parameter of this name carries a secret and must be redacted.
pub fn is_secret_param(name: &str) -> bool {
    const MARKERS: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "credential",
        "private",
    ];
    let lower = name.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
}

/// Options for connecting to one database.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectOptions {
    scheme: String,
    has_authority: bool,
    host: String,
    port: Option<u16>,
    username: Option<String>,
    password: Option<Secret>,
    path: String,
    params: Vec<(String, String)>,
    pool_max_size: Option<usize>,
    timeout: Duration,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    policy: Policy,
}

impl ConnectOptions {
    /// Empty options for a scheme, with default timeouts.
    pub fn new(scheme: impl Into<String>) -> Self {
        ConnectOptions {
            scheme: scheme.into().to_ascii_lowercase(),
            has_authority: false,
            host: String::new(),
            port: None,
            username: None,
            password: None,
            path: String::new(),
            params: Vec::new(),
            pool_max_size: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            policy: Policy::default(),
        }
    }

    /// Parse a connection URL. Errors are [`InvalidConfig`](crate::ErrorKind::InvalidConfig),
    /// name the bad part, and never repeat the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let url = url.trim();
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            Error::invalid_config(
                "connection URL has no scheme (expected e.g. `sqlite::memory:` or `redis://host`)",
            )
        })?;
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(Error::invalid_config(format!(
                "connection URL scheme {:?} is not valid",
                truncate(scheme, 40)
            )));
        }
        let mut opts = ConnectOptions::new(scheme);
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let before_query = before_query.split('#').next().unwrap_or_default();
        if let Some(after) = before_query.strip_prefix("//") {
            opts.has_authority = true;
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            opts.parse_authority(authority)?;
            opts.path = decode("path", path)?;
        } else {
            opts.path = decode("path", before_query)?;
        }
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = decode("parameter name", k)?;
                let v = decode("parameter value", v)?;
                if k.is_empty() {
                    return Err(Error::invalid_config(
                        "connection URL has a parameter with an empty name",
                    ));
                }
                if opts.params.iter().any(|(n, _)| *n == k) {
                    return Err(Error::invalid_config(format!(
                        "connection URL parameter `{k}` is given more than once"
                    )));
                }
                opts.set_param(k, v)?;
            }
        }
        Ok(opts)
    }

    fn parse_authority(&mut self, authority: &str) -> Result<()> {
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        if let Some(userinfo) = userinfo {
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                self.username = Some(decode("user name", user)?);
            }
            if let Some(p) = pass {
                // Never echo the password, not even in a decode error.
                // (decode's messages name the part, never its text.)
                let p = decode("password", p)?;
                self.password = Some(Secret(p));
            }
        }
        let bracketed = hostport.starts_with('[');
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            // [ipv6]:port
            let (h, after) = rest.split_once(']').ok_or_else(|| {
                Error::invalid_config("connection URL host has `[` without a closing `]`")
            })?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    Error::invalid_config("connection URL has text after the IPv6 host")
                })?),
            };
            (h, port)
        } else {
            // The port belongs to the last entry of a host list only
            // (`h1:p1,h2` has no port of its own).
            let last = hostport.rfind(',').map_or(0, |i| i + 1);
            match hostport[last..].rsplit_once(':') {
                Some((_, p)) => (&hostport[..hostport.len() - p.len() - 1], Some(p)),
                None => (hostport, None),
            }
        };
        let host = decode("host", host)?;
        if !bracketed {
            check_host_list(&host)?;
        }
        self.host = host;
        if let Some(p) = port {
            let port: u16 = p.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                Error::invalid_config(format!(
                    "connection URL port {:?} is not a number from 1 to 65535",
                    truncate(p, 20)
                ))
            })?;
            self.port = Some(port);
        }
        Ok(())
    }

    /// Set a parameter, as if it had been given in the URL's query. dbx's
    /// own parameters ([`crate::settings`]) are validated and applied at
    /// once; others are kept for the driver, which checks them.
    pub fn set_param(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let value = value.into();
        if name.contains('\0') || value.contains('\0') {
            return Err(Error::invalid_config(format!(
                "parameter `{}` contains a NUL byte, which no database accepts",
                truncate(&name.replace('\0', ""), 60)
            )));
        }
        if let Some(setting) = crate::settings::by_param(&name) {
            setting.apply(self, &value)?;
        }
        match self.params.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
        Ok(self)
    }

    /// Most connections the pool may open (1 to [`MAX_POOL_SIZE`]).
    pub fn set_pool_max_size(&mut self, n: usize) -> Result<&mut Self> {
        if n == 0 || n > MAX_POOL_SIZE {
            return Err(Error::invalid_config(format!(
                "pool_max_size must be from 1 to {MAX_POOL_SIZE}, got {n}"
            )));
        }
        self.pool_max_size = Some(n);
        Ok(self)
    }

    /// Deadline of one operation attempt (must be above zero).
    pub fn set_timeout(&mut self, d: Duration) -> Result<&mut Self> {
        self.timeout = nonzero("timeout", d)?;
        Ok(self)
    }

    /// Deadline of opening one connection (must be above zero).
    pub fn set_connect_timeout(&mut self, d: Duration) -> Result<&mut Self> {
        self.connect_timeout = nonzero("connect_timeout", d)?;
        Ok(self)
    }

    /// Longest wait for a free pooled connection (must be above zero).
    pub fn set_acquire_timeout(&mut self, d: Duration) -> Result<&mut Self> {
        self.acquire_timeout = nonzero("acquire_timeout", d)?;
        Ok(self)
    }

    /// Set the user name.
    pub fn set_username(&mut self, user: impl Into<String>) -> &mut Self {
        self.username = Some(user.into());
        self
    }

    /// Set the password.
    pub fn set_password(&mut self, password: impl Into<String>) -> &mut Self {
        self.password = Some(Secret(password.into()));
        self
    }

    /// The scheme, lowercase (`sqlite`, `redis`...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }
    /// Whether the URL had an authority part (`scheme://...`).
    pub fn has_authority(&self) -> bool {
        self.has_authority
    }
    /// The host, empty when none was given.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port, if given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Every host of the URL with its port, in the order written: one for
    /// `scheme://host:port`, several for a list `scheme://h1:p1,h2:p2,h3`
    /// (a Redis Cluster's seeds, a PostgreSQL primary and its replicas). An
    /// entry without a port gets `default_port`; IPv6 addresses come without
    /// their brackets.
    ///
    /// [`InvalidConfig`](crate::ErrorKind::InvalidConfig) for a URL without
    /// a host, an empty entry (`h1,,h2`) or the same host and port twice.
    ///
    /// ```
    /// # use dbx_core::ConnectOptions;
    /// let o = ConnectOptions::from_url("redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002")?;
    /// assert_eq!(
    ///     o.hosts(6379)?,
    ///     [("10.0.0.1".into(), 7000), ("10.0.0.2".into(), 6379), ("::1".into(), 7002)]
    /// );
    /// # Ok::<(), dbx_core::Error>(())
    /// ```
    pub fn hosts(&self, default_port: u16) -> Result<Vec<(String, u16)>> {
        if self.host.is_empty() {
            return Err(Error::invalid_config(format!(
                "{}: URL names no host",
                self.scheme
            )));
        }
        if !self.host.contains(',') {
            return Ok(vec![(self.host.clone(), self.port.unwrap_or(default_port))]);
        }
        let entries: Vec<&str> = self.host.split(',').collect();
        let last = entries.len() - 1;
        let mut out: Vec<(String, u16)> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            // check_host_list (at parse time) made sure every port is a number.
            let (host, port) = match entry.strip_prefix('[') {
                Some(rest) => match rest.split_once(']') {
                    Some((h, "")) => (h, None),
                    Some((h, p)) => (h, p.strip_prefix(':')),
                    None => (rest, None),
                },
                None => match entry.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (entry, None),
                },
            };
            if host.is_empty() {
                return Err(Error::invalid_config(format!(
                    "connection URL host list {:?} has an empty entry",
                    truncate(&self.host, 60)
                )));
            }
            let port = match port {
                Some(p) => p.parse::<u16>().map_err(|_| {
                    Error::invalid_config(format!(
                        "connection URL port {:?} is not a number from 1 to 65535",
                        truncate(p, 20)
                    ))
                })?,
                None if i == last => self.port.unwrap_or(default_port),
                None => default_port,
            };
            if out.iter().any(|(h, p)| h == host && *p == port) {
                return Err(Error::invalid_config(format!(
                    "connection URL names {host}:{port} twice; give each host once"
                )));
            }
            out.push((host.to_owned(), port));
        }
        Ok(out)
    }
    /// The user name, if given.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
    /// The password, if given.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }
    /// The path after the host (starting with `/`), or the whole location of
    /// a URL without authority (`sqlite:data.db` gives `data.db`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// A parameter's value, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// All parameters in the order given.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// The configured pool size, if any (the backend picks a default otherwise).
    pub fn pool_max_size(&self) -> Option<usize> {
        self.pool_max_size
    }
    /// Deadline of one operation attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// Deadline of opening one connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// Longest wait for a free pooled connection.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// The resilience policy (retry, breaker, limits), from the URL's
    /// policy parameters ([`crate::settings`]) or set directly.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Change the resilience policy; it is validated when connecting.
    pub fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }

    /// Fail with an [`InvalidConfig`](crate::ErrorKind::InvalidConfig) error
    /// naming the first parameter that is neither common nor in `known`.
    pub fn check_params(&self, backend: &str, known: &[&str]) -> Result<()> {
        for (name, _) in &self.params {
            let name_str = name.as_str();
            if crate::settings::by_param(name_str).is_none() && !known.contains(&name_str) {
                let mut all: Vec<&str> = known.to_vec();
                all.extend(crate::settings::params().map(|p| -> &str { p }));
                all.sort_unstable();
                return Err(Error::invalid_config(format!(
                    "unknown parameter `{}` for {backend}; known parameters: {}",
                    truncate(name, 60),
                    all.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// A parameter parsed as a duration, if given.
    pub fn param_duration(&self, name: &str) -> Result<Option<Duration>> {
        self.param(name)
            .map(|v| parse_duration(name, v))
            .transpose()
    }

    /// A parameter parsed as a size in bytes (`64MiB`, `512KB`, `1GB`, or a
    /// number of bytes), if given.
    pub fn param_bytes(&self, name: &str) -> Result<Option<u64>> {
        self.param(name)
            .map(|v| {
                crate::util::parse_size(v).ok_or_else(|| {
                    Error::invalid_config(format!(
                        "parameter `{name}` must be a size such as 64MiB, 512KB, 1GB or a number of bytes, got {:?}",
                        truncate(v, 40)
                    ))
                })
            })
            .transpose()
    }

    /// A parameter parsed as a boolean (`true/false/1/0/yes/no/on/off`), if given.
    pub fn param_bool(&self, name: &str) -> Result<Option<bool>> {
        self.param(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(Error::invalid_config(format!(
                    "parameter `{name}` must be true or false, got {:?}",
                    truncate(v, 40)
                ))),
            })
            .transpose()
    }
}

/// Shows the URL with the password and secret parameters replaced by `***`.
impl fmt::Display for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if self.has_authority {
            f.write_str("//")?;
            if let Some(u) = &self.username {
                f.write_str(u)?;
            }
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            if self.username.is_some() || self.password.is_some() {
                f.write_str("@")?;
            }
            // A lone IPv6 address goes in brackets; a host list (`h1:p1,h2`)
            // is kept as written, its entries already in URL form.
            if self.host.contains(':') && !self.host.contains(',') {
                write!(f, "[{}]", self.host)?;
            } else {
                f.write_str(&self.host)?;
            }
            if let Some(p) = self.port {
                write!(f, ":{p}")?;
            }
        }
        f.write_str(&self.path)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            if is_secret_param(k) {
                write!(f, "{sep}{k}=***")?;
            } else {
                write!(f, "{sep}{k}={v}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Params<'a>(&'a [(String, String)]);
        impl fmt::Debug for Params<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, v)| {
                        (
                            k,
                            if is_secret_param(k) {
                                "***"
                            } else {
                                v.as_str()
                            },
                        )
                    }))
                    .finish()
            }
        }
        f.debug_struct("ConnectOptions")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("path", &self.path)
            .field("params", &Params(&self.params))
            .field("pool_max_size", &self.pool_max_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("policy", &self.policy)
            .finish()
    }
}

fn nonzero(field: &str, d: Duration) -> Result<Duration> {
    if d.is_zero() {
        Err(Error::invalid_config(format!("{field} must be above zero")))
    } else {
        Ok(d)
    }
}

pub use crate::util::parse_duration;

/// Check the host part left once the last `:port` was split off: a
/// comma-separated list (MongoDB seeds) whose entries before the last may
/// carry their own `:port`, and IPv6 addresses only in brackets. So
/// `host:5432:5432` is refused here, naming the port, instead of failing
/// later on looking up a host called `host:5432`.
fn check_host_list(host: &str) -> Result<()> {
    let entries: Vec<&str> = host.split(',').collect();
    let last = entries.len() - 1;
    for (i, entry) in entries.iter().enumerate() {
        // `[v6]` or `[v6]:port`; the text after `]` is checked as a port.
        let (name, port) = match entry.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((_, "")) => continue,
                Some((_, after)) => ("", after.strip_prefix(':').unwrap_or(after)),
                None => {
                    return Err(Error::invalid_config(
                        "connection URL host has `[` without a closing `]`",
                    ));
                }
            },
            None => match entry.split_once(':') {
                None => continue,
                Some((name, port)) => (name, port),
            },
        };
        let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
        if i == last || !port_ok || name.contains(':') {
            return Err(Error::invalid_config(if port_ok {
                format!(
                    "connection URL host {:?} has a port already; give the port once (host:port)",
                    truncate(host, 60)
                )
            } else {
                format!(
                    "connection URL host {:?} has a `:` that is not followed by a port; write IPv6 addresses in brackets ([::1]:5432)",
                    truncate(host, 60)
                )
            }));
        }
    }
    Ok(())
}

/// Percent-decode one part of a URL. A NUL byte (`%00`) is refused in every
/// part: no database takes one in a host, user, path or parameter, and it
/// would come back raw in the driver's errors.
fn decode(part: &str, s: &str) -> Result<String> {
    let decoded = decode_percent(part, s)?;
    if decoded.contains('\0') {
        return Err(Error::invalid_config(format!(
            "connection URL {part} contains a NUL byte (%00), which no database accepts"
        )));
    }
    Ok(decoded)
}

fn decode_percent(part: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    return Err(Error::invalid_config(format!(
                        "connection URL {part} has an invalid percent-encoding"
                    )));
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        Error::invalid_config(format!(
            "connection URL {part} is not valid UTF-8 after percent-decoding"
        ))
    })
}

#[cfg(test)]
mod tests;
