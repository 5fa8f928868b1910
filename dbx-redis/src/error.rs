//! The one place where Redis errors become dbx errors, from redis-rs's own
//! signals: its error kind, the server's error code, the I/O error kind.
//!
//! Messages are built from the redis-rs error, which never contains the
//! connection URL or password, and from the redacted target (`host:port` or a
//! socket path).

use dbx_core::{Error, ErrorKind};
use redis::{RedisError, ServerErrorKind};
use std::io;

/// Backend name, as in `db.system.name`.
pub(crate) const BACKEND: &str = "redis";

/// The error of any call after `close()`.
pub(crate) fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the Redis connection was closed").with_backend(BACKEND)
}

/// Map an error of a command (or of reconnecting while running one).
pub(crate) fn map_err(e: RedisError) -> Error {
    let (kind, transient, message) = classify(&e);
    let loading = is_loading(&e);
    with_code(
        Error::new(kind, message)
            .set_transient(transient)
            // A LOADING reply ran nothing: repeating the command is safe.
            .set_never_sent(never_sent(&e) || loading)
            .set_not_ready(loading),
        &e,
    )
    .with_source(e)
    .with_backend(BACKEND)
}

/// The server's error prefix (`WRONGTYPE`, `LOADING`...), if it sent one.
fn with_code(error: Error, e: &RedisError) -> Error {
    match e.code() {
        Some(code) => error.with_code(code.to_owned()),
        None => error,
    }
}

/// Whether the server answered `-LOADING`: it is up and loading its data
/// set into memory (after a restart), and serves again once it is done.
fn is_loading(e: &RedisError) -> bool {
    match e.kind() {
        redis::ErrorKind::Server(ServerErrorKind::BusyLoading) => true,
        redis::ErrorKind::Extension => e.code() == Some("LOADING"),
        _ => false,
    }
}

/// Whether the command provably never left: the connection it needed was
/// refused (the shared connection was reconnecting to a server that is down).
fn never_sent(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::Io
        && io_error(e).is_some_and(|io| {
            matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::AddrNotAvailable
            )
        })
}

/// Map an error of opening a connection to `target`: the same classification,
/// plus what only connecting can mean (a refused `SELECT` is a database index
/// the server does not have; an unparsable reply is a server that does not
/// speak Redis).
pub(crate) fn map_connect_err(e: RedisError, target: &str, db: i64) -> Error {
    let (kind, transient, message) = classify(&e);
    let (kind, transient, message) = if is_select_refused(&e) {
        (
            ErrorKind::InvalidConfig,
            false,
            format!("the server at {target} has no database {db}: {e}"),
        )
    } else if e.kind() == redis::ErrorKind::Parse {
        (
            ErrorKind::Connect,
            false,
            format!("the server at {target} did not answer in the Redis protocol: {e}"),
        )
    } else {
        match kind {
            ErrorKind::Connect => (
                kind,
                transient,
                format!("cannot connect to {target}: {message}"),
            ),
            ErrorKind::Auth => (
                kind,
                transient,
                format!("{target} rejected the credentials: {message}"),
            ),
            ErrorKind::Timeout => (
                kind,
                transient,
                format!("connecting to {target} timed out: {message}"),
            ),
            _ => (
                kind,
                transient,
                format!("connecting to {target}: {message}"),
            ),
        }
    };
    with_code(Error::new(kind, message).set_transient(transient), &e)
        .with_source(e)
        .with_backend(BACKEND)
}

/// Whether the server refused the `SELECT` of the connection handshake.
pub(crate) fn is_select_refused(e: &RedisError) -> bool {
    // redis-rs reports a failed SELECT during the handshake with this text.
    e.kind() == redis::ErrorKind::Server(ServerErrorKind::ResponseError)
        && e.to_string().contains("refused to switch database")
}

/// Kind, transient flag and message of a redis-rs error.
fn classify(e: &RedisError) -> (ErrorKind, bool, String) {
    use redis::ErrorKind as R;
    let text = e.to_string();
    match e.kind() {
        R::Io => match io_error(e) {
            Some(io) if is_tls_error(io) => (
                ErrorKind::Connect,
                false,
                format!("TLS handshake failed: {text}"),
            ),
            _ if e.is_timeout() => (
                ErrorKind::Timeout,
                true,
                "no reply from Redis within the timeout".to_owned(),
            ),
            _ => (
                ErrorKind::Connect,
                true,
                format!("connection failed: {text}"),
            ),
        },
        R::AuthenticationFailed => (ErrorKind::Auth, false, text),
        R::InvalidClientConfig | R::RESP3NotSupported => (ErrorKind::InvalidConfig, false, text),
        R::Client => (ErrorKind::InvalidInput, false, text),
        R::Parse | R::UnexpectedReturnType => (
            ErrorKind::Decode,
            false,
            format!("the reply does not convert to the requested type: {text}"),
        ),
        R::Server(kind) => classify_server(kind, e, text),
        R::Extension => classify_code(e.code().unwrap_or_default(), text),
        // The cluster client has no live connection to the node (it is down,
        // or the slot map has not caught up yet): a connection failure.
        R::ClusterConnectionNotFound => (
            ErrorKind::Connect,
            true,
            "no connection to that cluster node: it does not accept connections (down?) \
             or the slot map is being refreshed"
                .to_owned(),
        ),
        _ => (ErrorKind::Other, false, text),
    }
}

fn classify_server(
    kind: ServerErrorKind,
    e: &RedisError,
    text: String,
) -> (ErrorKind, bool, String) {
    use ServerErrorKind as S;
    match kind {
        S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown => {
            (ErrorKind::Query, true, text)
        }
        // A write that reached a replica (a primary just failed over): the
        // cluster client refreshes its slot map, so a later attempt goes to
        // the new primary.
        S::ReadOnly => (ErrorKind::Query, true, text),
        // A redirection the cluster client could not follow within its
        // retries (the slot map was still settling): the next attempt
        // reads the refreshed map.
        S::Moved | S::Ask => (ErrorKind::Query, true, text),
        S::CrossSlot => (ErrorKind::InvalidInput, false, cross_slot(&text)),
        S::NoPerm => (ErrorKind::Auth, false, text),
        S::ResponseError => {
            let detail = e.detail().unwrap_or_default();
            if detail.starts_with("value is not an integer") {
                (ErrorKind::WrongType, false, text)
            } else if detail.starts_with("increment or decrement would overflow") {
                (ErrorKind::OutOfRange, false, text)
            } else {
                (ErrorKind::Query, false, text)
            }
        }
        _ => (ErrorKind::Query, false, text),
    }
}

/// Why a command or pipeline whose keys span hash slots was refused.
pub(crate) fn cross_slot(text: &str) -> String {
    format!(
        "in a Redis Cluster the keys of one command, transaction or pipeline must \
         hash to one slot ({text}): give them a common hash tag, e.g. {{user1}}:a and {{user1}}:b"
    )
}

/// Error codes redis-rs does not know by name (`-CODE detail` replies).
fn classify_code(code: &str, text: String) -> (ErrorKind, bool, String) {
    match code {
        "WRONGTYPE" => (ErrorKind::WrongType, false, text),
        "NOAUTH" | "WRONGPASS" | "NOPERM" => (ErrorKind::Auth, false, text),
        // A script or module command is running; the server answers again later.
        "BUSY" | "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" => {
            (ErrorKind::Query, true, text)
        }
        "OOM" => (ErrorKind::Query, true, text),
        "CROSSSLOT" => (ErrorKind::InvalidInput, false, cross_slot(&text)),
        _ => (ErrorKind::Query, false, text),
    }
}

/// The I/O error inside a redis-rs I/O error (redis-rs keeps it behind an `Arc`).
fn io_error(e: &RedisError) -> Option<&io::Error> {
    let source = std::error::Error::source(e)?;
    source.downcast_ref::<io::Error>().or_else(|| {
        source
            .downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
            .and_then(|inner| inner.downcast_ref::<io::Error>())
    })
}

/// Whether an I/O error carries a rustls error (certificate rejected,
/// handshake failure): not something a retry fixes.
#[cfg(feature = "tls")]
fn is_tls_error(io: &io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// Without the `tls` feature no connection carries TLS.
#[cfg(not(feature = "tls"))]
fn is_tls_error(_: &io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(reply: &str) -> RedisError {
        redis::parse_redis_value(reply.as_bytes())
            .unwrap()
            .extract_error()
            .unwrap_err()
    }

    #[test]
    fn server_replies_are_classified_by_code() {
        let cases = [
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                ErrorKind::WrongType,
                false,
            ),
            (
                "-ERR value is not an integer or out of range\r\n",
                ErrorKind::WrongType,
                false,
            ),
            (
                "-ERR increment or decrement would overflow\r\n",
                ErrorKind::OutOfRange,
                false,
            ),
            (
                "-NOAUTH Authentication required.\r\n",
                ErrorKind::Auth,
                false,
            ),
            (
                "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                ErrorKind::Auth,
                false,
            ),
            (
                "-NOPERM this user has no permissions to run the 'get' command\r\n",
                ErrorKind::Auth,
                false,
            ),
            (
                "-LOADING Redis is loading the dataset in memory\r\n",
                ErrorKind::Query,
                true,
            ),
            (
                "-TRYAGAIN Multiple keys request\r\n",
                ErrorKind::Query,
                true,
            ),
            (
                "-MASTERDOWN Link with MASTER is down\r\n",
                ErrorKind::Query,
                true,
            ),
            (
                "-CLUSTERDOWN The cluster is down\r\n",
                ErrorKind::Query,
                true,
            ),
            (
                "-BUSY Redis is busy running a script.\r\n",
                ErrorKind::Query,
                true,
            ),
            ("-ERR unknown command 'NOPE'\r\n", ErrorKind::Query, false),
        ];
        for (reply, kind, transient) in cases {
            let e = map_err(server(reply));
            assert_eq!(e.kind(), kind, "{reply}: {e}");
            assert_eq!(e.is_transient(), transient, "{reply}");
            assert_eq!(e.is_not_ready(), reply.starts_with("-LOADING"), "{reply}");
            assert_eq!(e.backend(), Some("redis"));
        }
    }

    #[test]
    fn io_errors_are_transient_connect_or_timeout() {
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let e = map_connect_err(refused, "127.0.0.1:1", 0);
        assert_eq!(e.kind(), ErrorKind::Connect);
        assert!(e.is_transient());
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
        let reset = map_err(RedisError::from(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(
            (reset.kind(), reset.is_transient()),
            (ErrorKind::Connect, true)
        );
        let timed_out = map_err(RedisError::from(io::Error::from(io::ErrorKind::TimedOut)));
        assert_eq!(
            (timed_out.kind(), timed_out.is_transient()),
            (ErrorKind::Timeout, true)
        );
        #[cfg(feature = "tls")]
        {
            let tls = map_err(RedisError::from(io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            )));
            assert_eq!(
                (tls.kind(), tls.is_transient()),
                (ErrorKind::Connect, false)
            );
        }
    }

    #[test]
    fn client_side_kinds() {
        let auth = map_err(RedisError::from((
            redis::ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        )));
        assert_eq!((auth.kind(), auth.is_transient()), (ErrorKind::Auth, false));
        let select = map_connect_err(
            RedisError::from((
                ServerErrorKind::ResponseError.into(),
                "Redis server refused to switch database",
                "ERR DB index is out of range".to_owned(),
            )),
            "127.0.0.1:6379",
            99,
        );
        assert_eq!(select.kind(), ErrorKind::InvalidConfig);
        assert!(select.to_string().contains("database 99"), "{select}");
        let decode = map_err(RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "not a number",
        )));
        assert_eq!(decode.kind(), ErrorKind::Decode);
    }
}
