//! The one place where MongoDB driver errors become dbx errors.

use dbx_core::{Error, ErrorKind};
use mongodb::error::{
    ErrorKind as MongoKind, RETRYABLE_ERROR, RETRYABLE_WRITE_ERROR, TRANSIENT_TRANSACTION_ERROR,
    WriteFailure,
};

/// Backend name, as in `db.system.name`.
pub(crate) const BACKEND: &str = "mongodb";

/// Server error codes that mean "the server or the way to it is not
/// available right now" (mongod's not-primary, shutting down, network).
const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// Kind and transience of a server error code.
fn by_code(code: i32, message: &str) -> (ErrorKind, bool) {
    match code {
        11000 | 11001 | 12582 => (ErrorKind::Conflict, false),
        112 => (ErrorKind::Conflict, true),       // WriteConflict
        85 | 86 => (ErrorKind::Conflict, false),  // index options / key specs conflict
        251 => (ErrorKind::Conflict, true),       // NoSuchTransaction
        18 | 13 | 11 => (ErrorKind::Auth, false), // AuthenticationFailed, Unauthorized, UserNotFound
        26 | 27 => (ErrorKind::NotFound, false),  // NamespaceNotFound, IndexNotFound
        50 => (ErrorKind::Timeout, true),         // MaxTimeMSExpired
        73 => (ErrorKind::InvalidInput, false),   // InvalidNamespace
        10334 | 17419 => (ErrorKind::InvalidInput, false), // BSONObjectTooLarge
        20 if message.contains("Transaction numbers") || message.contains("transaction") => {
            (ErrorKind::Unsupported, false)
        }
        c if TRANSIENT_CODES.contains(&c) => (ErrorKind::Connect, true),
        _ => (ErrorKind::Query, false),
    }
}

fn server(code: i32, name: Option<&str>, message: &str) -> (ErrorKind, bool, String) {
    let (kind, transient) = by_code(code, message);
    let text = match name {
        Some(n) if !n.is_empty() => format!("server error {code} ({n}): {message}"),
        _ => format!("server error {code}: {message}"),
    };
    (kind, transient, text)
}

/// Map a driver error: network errors and the RetryableWriteError label are
/// transient, duplicate keys a conflict, authentication permanent.
pub(crate) fn map_err(e: mongodb::error::Error) -> Error {
    let labelled = e.contains_label(RETRYABLE_WRITE_ERROR)
        || e.contains_label(TRANSIENT_TRANSACTION_ERROR)
        || e.contains_label(RETRYABLE_ERROR);
    let mut never_sent = false;
    let (kind, transient, message) = match e.kind.as_ref() {
        MongoKind::Io(io) => (ErrorKind::Connect, true, format!("network error: {io}")),
        MongoKind::ConnectionPoolCleared { message, .. } => {
            never_sent = true;
            (ErrorKind::Connect, true, message.clone())
        }
        MongoKind::ServerSelection { message, .. } => {
            never_sent = true;
            (
                ErrorKind::Connect,
                true,
                format!("no usable server: {message}"),
            )
        }
        MongoKind::DnsResolve { message, .. } => {
            never_sent = true;
            (
                ErrorKind::Connect,
                true,
                format!("DNS resolution failed: {message}"),
            )
        }
        MongoKind::Authentication { message, .. } => (
            ErrorKind::Auth,
            false,
            format!("authentication failed: {message}"),
        ),
        MongoKind::InvalidTlsConfig { message, .. } => (
            ErrorKind::InvalidConfig,
            false,
            format!("TLS configuration: {message}"),
        ),
        MongoKind::InvalidArgument { message, .. } => {
            never_sent = true;
            (ErrorKind::InvalidInput, false, message.clone())
        }
        MongoKind::BsonSerialization(s) => {
            never_sent = true;
            (
                ErrorKind::InvalidInput,
                false,
                format!("cannot encode as BSON: {s}"),
            )
        }
        MongoKind::BsonDeserialization(s) => (
            ErrorKind::Decode,
            false,
            format!("cannot decode the reply: {s}"),
        ),
        MongoKind::Command(c) => server(c.code, Some(&c.code_name), &c.message),
        MongoKind::Write(WriteFailure::WriteError(w)) => {
            server(w.code, w.code_name.as_deref(), &w.message)
        }
        MongoKind::Write(WriteFailure::WriteConcernError(w)) => {
            server(w.code, Some(&w.code_name), &w.message)
        }
        MongoKind::InsertMany(m) => match (&m.write_errors, &m.write_concern_error) {
            (Some(errs), _) if !errs.is_empty() => {
                let w = &errs[0];
                let (kind, t, text) = server(w.code, w.code_name.as_deref(), &w.message);
                (kind, t, format!("document {}: {text}", w.index))
            }
            (_, Some(w)) => server(w.code, Some(&w.code_name), &w.message),
            _ => (ErrorKind::Other, false, "insert_many failed".to_owned()),
        },
        MongoKind::Transaction { message, .. } => (ErrorKind::InvalidInput, false, message.clone()),
        MongoKind::SessionsNotSupported => (
            ErrorKind::Unsupported,
            false,
            "the server does not support sessions".to_owned(),
        ),
        MongoKind::IncompatibleServer { message, .. } => {
            (ErrorKind::Unsupported, false, message.clone())
        }
        MongoKind::Shutdown => (
            ErrorKind::Closed,
            false,
            "the client was shut down".to_owned(),
        ),
        MongoKind::InvalidResponse { message, .. } => (
            ErrorKind::Other,
            false,
            format!("invalid server response: {message}"),
        ),
        other => (ErrorKind::Other, false, other.to_string()),
    };
    let transient = transient || labelled;
    let mut error = Error::new(kind, message)
        .set_transient(transient && kind != ErrorKind::Auth)
        .set_never_sent(never_sent);
    if let Some(code) = server_code(&e) {
        error = error.with_code(code.to_string());
    }
    error.with_source(e).with_backend(BACKEND)
}

/// The server's error code, when the server answered with one.
fn server_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        MongoKind::Command(c) => Some(c.code),
        MongoKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        MongoKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        MongoKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code)
            .or_else(|| m.write_concern_error.as_ref().map(|w| w.code)),
        _ => None,
    }
}

/// Whether the error is a duplicate key.
pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        MongoKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        MongoKind::Command(c) => c.code == 11000,
        MongoKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|w| w.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(by_code(11000, "dup"), (ErrorKind::Conflict, false));
        assert_eq!(by_code(18, "auth"), (ErrorKind::Auth, false));
        assert_eq!(by_code(10107, "not primary"), (ErrorKind::Connect, true));
        assert_eq!(
            by_code(
                20,
                "Transaction numbers are only allowed on a replica set member or mongos"
            ),
            (ErrorKind::Unsupported, false)
        );
        assert_eq!(by_code(2, "bad value"), (ErrorKind::Query, false));
    }
}
