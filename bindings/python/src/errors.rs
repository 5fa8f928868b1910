//! dbx errors as Python exceptions: `dbx.DbxError` and one subclass per
//! `dbx::ErrorKind`, defined in `dbx/__init__.py` and looked up by name.

use pyo3::prelude::*;

use dbx::ErrorKind;

/// The Python class name of each kind (the table in the README).
pub(crate) fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidConfig => "InvalidConfig",
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::Unsupported => "Unsupported",
        ErrorKind::Connect => "ConnectError",
        ErrorKind::Auth => "AuthError",
        ErrorKind::Timeout => "Timeout",
        ErrorKind::PoolTimeout => "PoolTimeout",
        ErrorKind::CircuitOpen => "CircuitOpen",
        ErrorKind::NotFound => "NotFound",
        ErrorKind::Query => "QueryError",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::WrongType => "WrongType",
        ErrorKind::OutOfRange => "OutOfRange",
        ErrorKind::Decode => "DecodeError",
        ErrorKind::Closed => "Closed",
        _ => "OtherError",
    }
}

/// The Python exception of a dbx error, with `kind`, `transient`, `backend`,
/// `operation` and `code` set on it.
pub(crate) fn to_py(e: dbx::Error) -> PyErr {
    Python::attach(|py| match build(py, &e) {
        Ok(err) => err,
        // The package's exception classes could not be found (the module is
        // being torn down): a plain RuntimeError still carries the message.
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(e.to_string()),
    })
}

fn build(py: Python<'_>, e: &dbx::Error) -> PyResult<PyErr> {
    let kind = e.kind();
    let class = py.import("dbx")?.getattr(class_name(kind))?;
    let exc = class.call1((e.to_string(),))?;
    exc.setattr("kind", kind.as_str())?;
    exc.setattr("transient", e.is_transient())?;
    exc.setattr("backend", e.backend())?;
    exc.setattr("operation", e.operation())?;
    exc.setattr("code", e.code())?;
    Ok(PyErr::from_value(exc))
}

/// A dbx error of `kind` made by the binding itself (bad arguments...).
pub(crate) fn new_err(kind: ErrorKind, message: impl Into<String>) -> PyErr {
    to_py(dbx::Error::new(kind, message.into()))
}

/// `InvalidInput` naming the problem.
pub(crate) fn invalid_input(message: impl Into<String>) -> PyErr {
    new_err(ErrorKind::InvalidInput, message)
}
