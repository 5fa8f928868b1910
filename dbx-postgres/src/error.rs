//! The one place where tokio-postgres errors become dbx errors, from
//! PostgreSQL's own signals: the SQLSTATE of server errors, and the kind of
//! client-side failure otherwise.

use dbx_core::{Error, ErrorKind};
use std::error::Error as _;

/// Backend name, as in `db.system.name`.
pub(crate) const BACKEND: &str = "postgresql";

/// What a SQLSTATE means for an application: kind and whether a retry may help.
pub(crate) fn classify_sqlstate(code: &str) -> (ErrorKind, bool) {
    use ErrorKind as K;
    match code {
        // Protocol violations are the client's fault (a wrong parameter count
        // in a bind message), not a broken connection.
        "08P01" => (K::InvalidInput, false),
        c if c.starts_with("08") => (K::Connect, true),
        "53300" => (K::Connect, true), // too_many_connections
        c if c.starts_with("53") => (K::Other, true),
        "57P01" | "57P02" | "57P03" => (K::Connect, true),
        "57014" => (K::Timeout, true), // query_canceled (statement_timeout, cancel)
        "57P04" => (K::Connect, false), // database_dropped
        "40001" | "40P01" => (K::Conflict, true), // serialization failure, deadlock
        c if c.starts_with("40") => (K::Conflict, false),
        "55P03" => (K::Conflict, true),  // lock_not_available
        "55006" => (K::Conflict, false), // object_in_use
        c if c.starts_with("23") => (K::Conflict, false),
        c if c.starts_with("44") => (K::Conflict, false), // WITH CHECK OPTION violation
        c if c.starts_with("28") => (K::Auth, false),
        "3D000" => (K::Connect, false), // the database does not exist
        c if c.starts_with("42") => (K::Query, false),
        // Data exceptions: a value that does not fit is OutOfRange, any other
        // bad value (syntax, encoding, division by zero) is invalid input.
        "22003" | "22001" | "22008" | "22015" => (K::OutOfRange, false),
        c if c.starts_with("22") => (K::InvalidInput, false),
        // Program limits (an index row or a value too large).
        c if c.starts_with("54") => (K::InvalidInput, false),
        "0A000" => (K::Unsupported, false),
        "25P03" => (K::Connect, true), // idle_in_transaction_session_timeout
        c if c.starts_with("58") => (K::Other, true), // system error (I/O)
        c if c.starts_with("XX") => (K::Other, false),
        _ => (K::Query, false),
    }
}

/// The messages of an error's sources, joined: tokio-postgres's own
/// `Display` names only the kind of failure.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        next = s.source();
    }
    out
}

/// Whether a failure to connect may go away by itself: true when the cause
/// is an I/O error (refused, reset, unreachable), false when it is a TLS
/// verdict (a certificate problem) or a server that does not offer TLS.
fn network_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut io = false;
    let mut next = Some(e);
    while let Some(s) = next {
        if is_tls_error(s) {
            return false;
        }
        if let Some(ioe) = s.downcast_ref::<std::io::Error>() {
            if ioe.get_ref().is_some_and(|inner| is_tls_error(inner)) {
                return false;
            }
            io = true;
        }
        next = s.source();
    }
    io
}

/// Whether `e` is a rustls verdict (a certificate problem).
#[cfg(feature = "tls")]
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<rustls::Error>().is_some()
}

/// Without the `tls` feature no connection carries TLS.
#[cfg(not(feature = "tls"))]
fn is_tls_error(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}

/// Map a tokio-postgres error. The message never holds credentials:
/// server messages do not echo passwords, and the connection URL is not part
/// of any tokio-postgres error.
pub(crate) fn map_err(e: tokio_postgres::Error) -> Error {
    let (kind, transient, message) = if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let (kind, transient) = classify_sqlstate(code);
        let mut m = format!("{} (SQLSTATE {code})", db.message());
        if let Some(detail) = db.detail() {
            m.push_str("; ");
            m.push_str(detail);
        }
        if let Some(hint) = db.hint() {
            m.push_str("; hint: ");
            m.push_str(hint);
        }
        (kind, transient, m)
    } else if e.is_closed() {
        (
            ErrorKind::Connect,
            true,
            "the connection to the server was closed".to_owned(),
        )
    } else {
        let text = chain(&e);
        let (kind, transient) = if text.starts_with("invalid configuration: password missing")
            || text.starts_with("authentication error")
        {
            (ErrorKind::Auth, false)
        } else if text.starts_with("error performing TLS handshake")
            || text.starts_with("error connecting to server")
            || text.starts_with("error communicating with the server")
        {
            (ErrorKind::Connect, network_failure(&e))
        } else if text.starts_with("timeout waiting for server") {
            (ErrorKind::Connect, true)
        } else if text.starts_with("unexpected message from server")
            || text.starts_with("error parsing response from server")
        {
            // Whatever answered is not speaking the PostgreSQL protocol.
            (ErrorKind::Connect, false)
        } else if text.starts_with("error serializing parameter")
            || text.starts_with("expected ")
            || text.starts_with("error encoding message")
        {
            (ErrorKind::InvalidInput, false)
        } else if text.starts_with("error deserializing column") {
            (ErrorKind::Decode, false)
        } else if text.starts_with("invalid configuration") {
            (ErrorKind::InvalidConfig, false)
        } else {
            (ErrorKind::Other, false)
        };
        (kind, transient, text)
    };
    // A connection that could not be opened carried no statement: repeating
    // the operation cannot apply it twice.
    let never_sent =
        e.as_db_error().is_none() && !e.is_closed() && transient && kind == ErrorKind::Connect && {
            let text = e.to_string();
            text.starts_with("error connecting to server")
                || text.starts_with("timeout waiting for server")
        };
    // 57P03 cannot_connect_now: the server is starting up or recovering
    // from a crash. It refused the login, so nothing was run.
    let not_ready = e
        .as_db_error()
        .is_some_and(|db| db.code().code() == "57P03");
    let mut error = Error::new(kind, message)
        .set_transient(transient)
        .set_never_sent(never_sent || not_ready)
        .set_not_ready(not_ready);
    if let Some(db) = e.as_db_error() {
        error = error.with_code(db.code().code().to_owned());
    }
    error.with_source(e).with_backend(BACKEND)
}

/// Whether an error came from the server or the connection (as opposed to
/// input checks done before anything was sent).
pub(crate) fn reached_server(e: &Error) -> bool {
    e.source()
        .is_some_and(|s| s.downcast_ref::<tokio_postgres::Error>().is_some())
}

/// The SQLSTATE of an error, if the server raised it.
pub(crate) fn sqlstate(e: &Error) -> Option<&str> {
    e.source()
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .and_then(|pe| pe.as_db_error())
        .map(|db| db.code().code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        use ErrorKind as K;
        for (code, kind, transient) in [
            ("08006", K::Connect, true),
            ("08P01", K::InvalidInput, false),
            ("53300", K::Connect, true),
            ("53200", K::Other, true),
            ("57P01", K::Connect, true),
            ("57014", K::Timeout, true),
            ("40001", K::Conflict, true),
            ("40P01", K::Conflict, true),
            ("23505", K::Conflict, false),
            ("23502", K::Conflict, false),
            ("28P01", K::Auth, false),
            ("28000", K::Auth, false),
            ("42601", K::Query, false),
            ("42P01", K::Query, false),
            ("22003", K::OutOfRange, false),
            ("22001", K::OutOfRange, false),
            ("22P02", K::InvalidInput, false),
            ("22012", K::InvalidInput, false),
            ("54000", K::InvalidInput, false),
            ("0A000", K::Unsupported, false),
            ("XX000", K::Other, false),
            ("P0001", K::Query, false),
        ] {
            assert_eq!(classify_sqlstate(code), (kind, transient), "{code}");
        }
    }
}
