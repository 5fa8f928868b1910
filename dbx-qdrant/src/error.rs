//! The one place where Qdrant client errors become dbx errors.

use dbx_core::vector::{collection_not_found, dimension_mismatch};
use dbx_core::{Error, ErrorKind};
use qdrant_client::QdrantError;
use tonic::{Code, Status};

/// Backend name, as in `db.system.name`.
pub(crate) const BACKEND: &str = "qdrant";

/// What the client's channel pool says when it cannot open a connection
/// (it wraps the transport error in an `Internal` status).
const CONNECT_FAILED: &str = "Failed to connect to";

/// The metadata key Qdrant sets on `ResourceExhausted` when a node is out of
/// storage (as opposed to rate limited).
const INSUFFICIENT_STORAGE: &str = "qdrant-insufficient-storage";

/// Map a client error, for an operation on `collection` if it names one: gRPC
/// status codes decide the kind and whether retrying may help. A missing
/// collection becomes [`collection_not_found`] and a vector of the wrong
/// length [`dimension_mismatch`], so every backend words them alike.
pub(crate) fn map_err(e: QdrantError, collection: Option<&str>) -> Error {
    let (kind, transient, never_sent, message) = match &e {
        QdrantError::ResponseError { status } => classify(status),
        QdrantError::ResourceExhaustedError {
            status,
            retry_after_seconds,
        } => (
            ErrorKind::Query,
            true,
            false,
            format!(
                "ResourceExhausted: {} (retry after {retry_after_seconds} s)",
                status.message()
            ),
        ),
        QdrantError::InvalidUri(u) => (
            ErrorKind::InvalidConfig,
            false,
            true,
            format!("the server address is not a valid URI: {u}"),
        ),
        QdrantError::Io(io) => (ErrorKind::Connect, true, false, format!("I/O error: {io}")),
        QdrantError::ConversionError(m) => (ErrorKind::InvalidInput, false, true, m.clone()),
        QdrantError::NoSnapshotFound(m) => (
            ErrorKind::NotFound,
            false,
            false,
            format!("no snapshot found for collection {m}"),
        ),
        // Variants behind qdrant-client features this crate does not enable
        // (serde, reqwest), which another crate in the build may turn on.
        #[allow(unreachable_patterns)]
        other => (ErrorKind::Other, false, false, other.to_string()),
    };
    let refined = match (kind, collection) {
        (ErrorKind::NotFound, Some(c)) if message.contains("ollection") => {
            Some(collection_not_found(c))
        }
        (ErrorKind::InvalidInput, Some(c)) => parse_dimension_error(&message)
            .map(|(expected, got)| dimension_mismatch(c, expected, got)),
        _ => None,
    };
    let mut error = refined.unwrap_or_else(|| Error::new(kind, message));
    // The gRPC status of a reply; none for a channel that failed.
    if let QdrantError::ResponseError { status }
    | QdrantError::ResourceExhaustedError { status, .. } = &e
        && kind != ErrorKind::Connect
    {
        error = error.with_code(format!("{:?}", status.code()));
    }
    error
        .set_transient(transient && kind != ErrorKind::Auth)
        .set_never_sent(never_sent)
        .with_source(e)
        .with_backend(BACKEND)
}

/// Kind, transience, never-sent and message of a gRPC status.
fn classify(status: &Status) -> (ErrorKind, bool, bool, String) {
    let code = status.code();
    let text = status.message();
    let message = format!("{code:?}: {text}");
    let (kind, transient, never_sent) = match code {
        Code::Unavailable => (ErrorKind::Connect, true, false),
        Code::DeadlineExceeded => (ErrorKind::Timeout, true, false),
        // tonic reports its own request deadline as a cancellation.
        Code::Cancelled if text.contains("Timeout expired") => (ErrorKind::Timeout, true, false),
        Code::Cancelled => (ErrorKind::Connect, true, false),
        Code::InvalidArgument | Code::OutOfRange => (ErrorKind::InvalidInput, false, false),
        Code::NotFound => (ErrorKind::NotFound, false, false),
        Code::AlreadyExists => (ErrorKind::Conflict, false, false),
        Code::Aborted => (ErrorKind::Conflict, true, false),
        Code::Unauthenticated | Code::PermissionDenied => (ErrorKind::Auth, false, false),
        Code::ResourceExhausted if status.metadata().get(INSUFFICIENT_STORAGE).is_some() => {
            (ErrorKind::Query, false, false)
        }
        Code::ResourceExhausted => (ErrorKind::Query, true, false),
        Code::Unimplemented => (ErrorKind::Unsupported, false, false),
        // The channel could not be opened: nothing was sent. A certificate
        // the client does not trust will not be trusted on a retry either.
        Code::Internal if text.starts_with(CONNECT_FAILED) => {
            let certificate = text.to_ascii_lowercase().contains("certificate");
            (ErrorKind::Connect, !certificate, true)
        }
        // Transport failures (connection reset, broken pipe) surface as Unknown.
        Code::Unknown if is_transport_error(text) => (ErrorKind::Connect, true, false),
        Code::FailedPrecondition => (ErrorKind::Query, false, false),
        _ => (ErrorKind::Other, false, false),
    };
    (kind, transient, never_sent, message)
}

fn is_transport_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "transport error",
        "connection",
        "broken pipe",
        "h2 protocol error",
    ]
    .iter()
    .any(|m| t.contains(m))
}

/// `(expected, got)` from Qdrant's "Vector dimension error: expected dim: 3, got 2".
fn parse_dimension_error(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.find("expected dim:")? + "expected dim:".len()..];
    let (expected, rest) = rest.split_once(',')?;
    let got = rest.trim_start().strip_prefix("got")?.trim_start();
    let got: String = got.chars().take_while(char::is_ascii_digit).collect();
    Some((expected.trim().parse().ok()?, got.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn status(code: Code, message: &str) -> QdrantError {
        QdrantError::from(Status::new(code, message))
    }

    #[test]
    fn status_codes_decide_kind_and_transience() {
        for (code, message, kind, transient) in [
            (Code::Unavailable, "down", ErrorKind::Connect, true),
            (Code::DeadlineExceeded, "slow", ErrorKind::Timeout, true),
            (Code::Cancelled, "Timeout expired", ErrorKind::Timeout, true),
            (
                Code::InvalidArgument,
                "Wrong input: x",
                ErrorKind::InvalidInput,
                false,
            ),
            (Code::NotFound, "Not found: y", ErrorKind::NotFound, false),
            (Code::AlreadyExists, "exists", ErrorKind::Conflict, false),
            (
                Code::Unauthenticated,
                "Must provide an API key",
                ErrorKind::Auth,
                false,
            ),
            (Code::PermissionDenied, "denied", ErrorKind::Auth, false),
            (Code::ResourceExhausted, "rate", ErrorKind::Query, true),
            (Code::Unimplemented, "no", ErrorKind::Unsupported, false),
            (
                Code::Internal,
                "Failed to connect to http://127.0.0.1:1/: refused",
                ErrorKind::Connect,
                true,
            ),
            (
                Code::Internal,
                "Failed to connect to https://h:6334/: ConnectError(InvalidCertificate(UnknownIssuer))",
                ErrorKind::Connect,
                false,
            ),
            (
                Code::Internal,
                "Service internal error: boom",
                ErrorKind::Other,
                false,
            ),
            (Code::Unknown, "transport error", ErrorKind::Connect, true),
        ] {
            let e = map_err(status(code, message), None);
            assert_eq!(e.kind(), kind, "{code:?}");
            assert_eq!(e.is_transient(), transient, "{code:?}");
            if kind != ErrorKind::Connect {
                assert_eq!(e.code(), Some(format!("{code:?}").as_str()));
            }
            assert_eq!(e.backend(), Some(BACKEND));
            assert!(e.message().contains(message), "{e}");
        }
        let refused = map_err(
            status(
                Code::Internal,
                "Failed to connect to http://127.0.0.1:1/: x",
            ),
            None,
        );
        assert!(refused.is_never_sent());
    }

    #[test]
    fn missing_collections_and_dimensions_use_the_core_wording() {
        let e = map_err(
            status(
                Code::NotFound,
                "Not found: Collection `docs` doesn't exist!",
            ),
            Some("docs"),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.message(), collection_not_found("docs").message());
        let e = map_err(
            status(
                Code::InvalidArgument,
                "Wrong input: Vector dimension error: expected dim: 3, got 2",
            ),
            Some("docs"),
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.message(), dimension_mismatch("docs", 3, 2).message());
        assert!(!e.is_transient());
        assert_eq!(
            parse_dimension_error("expected dim: 128, got 64"),
            Some((128, 64))
        );
        assert_eq!(parse_dimension_error("expected dim: x, got 2"), None);
        assert_eq!(parse_dimension_error("other"), None);
    }
}
