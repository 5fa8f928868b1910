//! The one error type of dbx.
//!
//! Every fallible dbx call returns [`Error`]: an opaque value carrying an
//! [`ErrorKind`], the backend and operation it came from, a human-readable
//! message, an intact [`source`](std::error::Error::source) chain and a
//! transient flag that the driver sets from the database's own signals.
//!
//! Messages never contain credentials: drivers build them from redacted
//! options, and the [`source`](std::error::Error::source) is the native driver
//! error, which does not carry the connection URL.

use std::borrow::Cow;
use std::fmt;

/// A boxed error usable as a [`source`](std::error::Error::source).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with dbx's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms an application can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A connection URL, option or policy value is invalid.
    InvalidConfig,
    /// An argument is invalid: an empty key, a wrong parameter count, a TTL of zero...
    InvalidInput,
    /// The backend does not offer the capability or operation.
    Unsupported,
    /// Connecting to the database failed, or the connection broke.
    Connect,
    /// The database rejected the credentials.
    Auth,
    /// The operation did not finish within its timeout.
    Timeout,
    /// No pooled connection became free within the acquire timeout.
    PoolTimeout,
    /// The circuit breaker is open: the call failed fast without touching the network.
    CircuitOpen,
    /// A row, table or other object that the operation needs does not exist.
    NotFound,
    /// The database rejected or failed to run a statement (syntax error, unknown column...).
    Query,
    /// A constraint was violated (unique, foreign key, not null, check) or a write conflicted.
    Conflict,
    /// The stored value has the wrong type for the operation (for example `incr` on a
    /// value that is not an ASCII decimal integer).
    WrongType,
    /// A number does not fit: an `incr` overflow, or a value too large for its column.
    OutOfRange,
    /// A value could not be decoded into the requested Rust type.
    Decode,
    /// The database handle was closed.
    Closed,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// A short, stable, lowercase name (also used as `error.type` in telemetry).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PoolTimeout => "pool_timeout",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Query => "query",
            ErrorKind::Conflict => "conflict",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::OutOfRange => "out_of_range",
            ErrorKind::Decode => "decode",
            ErrorKind::Closed => "closed",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every dbx operation.
///
/// Cheap to move (one pointer). Inspect it with [`kind`](Error::kind),
/// [`is_transient`](Error::is_transient), [`backend`](Error::backend) and
/// [`operation`](Error::operation); its [`Display`](fmt::Display) reads like
/// `sqlite kv.incr: wrong_type: value of key "k" is not an integer`.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: Cow<'static, str>,
    backend: Option<&'static str>,
    operation: Option<&'static str>,
    transient: bool,
    never_sent: bool,
    not_ready: bool,
    partial: bool,
    attempts: u32,
    code: Option<Cow<'static, str>>,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a message. Not transient unless marked so.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                backend: None,
                operation: None,
                transient: matches!(kind, ErrorKind::Timeout | ErrorKind::PoolTimeout),
                never_sent: matches!(
                    kind,
                    ErrorKind::PoolTimeout
                        | ErrorKind::CircuitOpen
                        | ErrorKind::Closed
                        | ErrorKind::InvalidInput
                        | ErrorKind::InvalidConfig
                        | ErrorKind::Unsupported
                ),
                not_ready: false,
                partial: false,
                attempts: 1,
                code: None,
                source: None,
            }),
        }
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::InvalidConfig`].
    pub fn invalid_config(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidConfig, message)
    }

    /// Shorthand for [`ErrorKind::Decode`].
    pub fn decode(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Decode, message)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Name the backend (`"sqlite"`, `"redis"`...), unless already named.
    pub fn with_backend(mut self, backend: &'static str) -> Self {
        self.inner.backend.get_or_insert(backend);
        self
    }

    /// Name the operation (`"kv.get"`, `"sql.query"`...), unless already named.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.inner.operation.get_or_insert(operation);
        self
    }

    /// Mark whether retrying the operation may succeed.
    pub fn set_transient(mut self, transient: bool) -> Self {
        self.inner.transient = transient;
        self
    }

    /// Mark that the request provably never reached the database (connection
    /// refused, no pooled connection, rejected before sending), so repeating
    /// it cannot apply it twice. An I/O error after sending is ambiguous and
    /// must not be marked.
    pub fn set_never_sent(mut self, never_sent: bool) -> Self {
        self.inner.never_sent = never_sent;
        self
    }

    /// Mark that the server answered it is alive but not ready yet: starting
    /// up, loading its data set or recovering after a crash (Redis
    /// `LOADING`, PostgreSQL `57P03 cannot_connect_now`). Such an error is
    /// also transient; the circuit breaker then probes again soon instead of
    /// staying open for another full `breaker_open_for`.
    pub fn set_not_ready(mut self, not_ready: bool) -> Self {
        self.inner.not_ready = not_ready;
        if not_ready {
            self.inner.transient = true;
        }
        self
    }

    /// Whether the server said it is alive but not ready yet
    /// ([`set_not_ready`](Error::set_not_ready)).
    pub fn is_not_ready(&self) -> bool {
        self.inner.not_ready
    }

    /// Mark that the failure concerns one server of a multi-server topology
    /// while the others answer (a Redis Cluster primary being failed over, a
    /// standby that stopped answering). The circuit breaker does not count
    /// such a failure: opening it would stop the calls the healthy servers
    /// serve. The retry policy still applies.
    pub fn set_partial(mut self, partial: bool) -> Self {
        self.inner.partial = partial;
        self
    }

    /// Whether the failure concerns one server of several
    /// ([`set_partial`](Error::set_partial)).
    pub fn is_partial(&self) -> bool {
        self.inner.partial
    }

    /// Copy the transient, never-sent, not-ready and partial marks and
    /// the attempts of `other` (for a copy of a shared error).
    #[cfg(feature = "cache")]
    pub(crate) fn copy_flags_from(mut self, other: &Error) -> Self {
        let (to, from) = (&mut self.inner, &other.inner);
        to.transient = from.transient;
        to.never_sent = from.never_sent;
        to.not_ready = from.not_ready;
        to.partial = from.partial;
        to.attempts = from.attempts;
        self
    }

    /// Attach the backend's own error code (see [`code`](Error::code)).
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.inner.code = Some(code.into());
        self
    }

    /// The backend's own code for this error, when the database gave one:
    /// PostgreSQL's SQLSTATE (`"23505"`), the Redis error prefix
    /// (`"WRONGTYPE"`, `"LOADING"`), MongoDB's error code (`"11000"`),
    /// SQLite's extended result code (`"2067"` for a unique constraint), or
    /// the gRPC status of Qdrant (`"NotFound"`, as tonic names it).
    /// `None` for errors dbx raised itself (bad input, timeouts) and for
    /// network failures.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// Record how many attempts the operation made (set by the retry policy).
    pub fn set_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    /// Whether the request provably never reached the database.
    pub fn is_never_sent(&self) -> bool {
        self.inner.never_sent
    }

    /// How many attempts the failed operation made (1 without retries).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message, without backend, operation or kind.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The backend that raised the error, if known.
    pub fn backend(&self) -> Option<&'static str> {
        self.inner.backend
    }

    /// The operation that failed, if known.
    pub fn operation(&self) -> Option<&'static str> {
        self.inner.operation
    }

    /// Whether the same operation may succeed if tried again (a dropped
    /// connection, a busy database, a timeout). Authentication failures,
    /// constraint violations and invalid input are never transient.
    pub fn is_transient(&self) -> bool {
        self.inner.transient
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.inner.backend, self.inner.operation) {
            (Some(b), Some(o)) => write!(f, "{b} {o}: ")?,
            (Some(b), None) => write!(f, "{b}: ")?,
            (None, Some(o)) => write!(f, "{o}: ")?,
            (None, None) => {}
        }
        write!(f, "{}: {}", self.inner.kind, self.inner.message)?;
        if self.inner.attempts > 1 {
            write!(f, " (after {} attempts)", self.inner.attempts)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(b) = self.inner.backend {
            d.field("backend", &b);
        }
        if let Some(o) = self.inner.operation {
            d.field("operation", &o);
        }
        if let Some(c) = &self.inner.code {
            d.field("code", c);
        }
        d.field("transient", &self.inner.transient);
        if self.inner.never_sent {
            d.field("never_sent", &true);
        }
        if self.inner.not_ready {
            d.field("not_ready", &true);
        }
        if self.inner.partial {
            d.field("partial", &true);
        }
        if self.inner.attempts > 1 {
            d.field("attempts", &self.inner.attempts);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_names_backend_operation_kind_and_message() {
        let e = Error::new(ErrorKind::WrongType, "value is not an integer")
            .with_backend("sqlite")
            .with_operation("kv.incr");
        assert_eq!(
            e.to_string(),
            "sqlite kv.incr: wrong_type: value is not an integer"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn first_backend_and_operation_win() {
        let e = Error::invalid_input("x")
            .with_operation("kv.get")
            .with_operation("outer")
            .with_backend("sqlite")
            .with_backend("other");
        assert_eq!(e.operation(), Some("kv.get"));
        assert_eq!(e.backend(), Some("sqlite"));
    }

    #[test]
    fn source_chain_is_intact() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = Error::new(ErrorKind::Connect, "connection lost")
            .with_source(io)
            .set_transient(true);
        assert!(e.is_transient());
        let src = e.source().expect("source");
        assert_eq!(src.to_string(), "reset");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn timeouts_default_to_transient() {
        assert!(Error::new(ErrorKind::Timeout, "t").is_transient());
        assert!(Error::new(ErrorKind::PoolTimeout, "t").is_transient());
        assert!(!Error::new(ErrorKind::Auth, "t").is_transient());
    }

    #[test]
    fn error_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
