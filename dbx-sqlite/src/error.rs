//! The one place where rusqlite errors become dbx errors.

use dbx_core::{Error, ErrorKind};
use rusqlite::ffi::ErrorCode;

/// Backend name, as in `db.system.name`.
pub(crate) const BACKEND: &str = "sqlite";

/// The one place where rusqlite errors become dbx errors, from SQLite's own codes.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    let (kind, transient) = match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => (ErrorKind::Conflict, false),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (ErrorKind::Timeout, true),
            ErrorCode::OperationInterrupted => (ErrorKind::Timeout, true),
            ErrorCode::CannotOpen | ErrorCode::NotADatabase => (ErrorKind::Connect, false),
            ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied => {
                (ErrorKind::Auth, false)
            }
            ErrorCode::TooBig => (ErrorKind::InvalidInput, false),
            ErrorCode::TypeMismatch => (ErrorKind::Conflict, false),
            ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::OutOfMemory => {
                (ErrorKind::Other, true)
            }
            ErrorCode::SchemaChanged => (ErrorKind::Query, true),
            _ => (ErrorKind::Query, false),
        },
        E::SqlInputError { .. } => (ErrorKind::Query, false),
        E::QueryReturnedNoRows => (ErrorKind::NotFound, false),
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..) => (ErrorKind::Decode, false),
        E::InvalidParameterCount(..)
        | E::InvalidParameterName(..)
        | E::NulError(..)
        | E::MultipleStatement
        | E::InvalidPath(..)
        | E::ToSqlConversionFailure(..) => (ErrorKind::InvalidInput, false),
        _ => (ErrorKind::Other, false),
    };
    let message = match &e {
        E::SqliteFailure(f, Some(msg)) if f.code == ErrorCode::OperationInterrupted => {
            format!("statement interrupted at its deadline ({msg})")
        }
        E::SqliteFailure(f, _) if f.code == ErrorCode::OperationInterrupted => {
            "statement interrupted at its deadline".to_owned()
        }
        E::SqliteFailure(f, _)
            if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked =>
        {
            format!("{e} (the busy timeout elapsed)")
        }
        E::MultipleStatement => {
            "the SQL text holds more than one statement; send one per call".to_owned()
        }
        _ => e.to_string(),
    };
    let mut error = Error::new(kind, message).set_transient(transient);
    if let E::SqliteFailure(f, _) = &e {
        error = error.with_code(f.extended_code.to_string());
    }
    error.with_source(e).with_backend(BACKEND)
}
