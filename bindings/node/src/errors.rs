//! dbx errors as JavaScript `Error` objects carrying `kind` (the
//! `ErrorKind` name, as in the Python binding), `transient`, `backend`,
//! `operation` and `code`. `index.js` gives each the prototype of its
//! `DbxError` subclass; the properties are set here so that `err.kind`
//! holds even for code that talks to the addon directly.

use napi::bindgen_prelude::*;

use dbx::ErrorKind;

/// What the JavaScript error needs from a dbx error; `Send`, so a future
/// can carry it to the JavaScript thread.
#[derive(Debug)]
pub(crate) struct Failure {
    kind: ErrorKind,
    message: String,
    transient: bool,
    backend: Option<&'static str>,
    operation: Option<String>,
    code: Option<String>,
}

impl From<dbx::Error> for Failure {
    fn from(e: dbx::Error) -> Self {
        Failure {
            kind: e.kind(),
            // dbx's Display never shows credentials (URLs are redacted).
            message: e.to_string(),
            transient: e.is_transient(),
            backend: e.backend(),
            operation: e.operation().map(str::to_owned),
            code: e.code().map(str::to_owned),
        }
    }
}

impl Failure {
    /// A failure of `kind` found by the binding itself (bad arguments...).
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure::from(dbx::Error::new(kind, message.into()))
    }

    /// The JavaScript error, as a `napi::Error` that throws or rejects
    /// with exactly that object.
    pub(crate) fn into_napi(self, env: &Env) -> Error {
        match self.build(env) {
            Ok(obj) => Error::from(obj.to_unknown()),
            // Could not even make an object (the environment is going
            // away): a plain error still carries the message.
            Err(_) => Error::new(Status::GenericFailure, self.message),
        }
    }

    fn build<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, &self.message))?;
        obj.set("name", "DbxError")?;
        obj.set("kind", self.kind.as_str())?;
        obj.set("transient", self.transient)?;
        obj.set("backend", self.backend)?;
        obj.set("operation", self.operation.as_deref())?;
        obj.set("code", self.code.as_deref())?;
        Ok(obj)
    }
}

/// `InvalidInput` naming the problem.
pub(crate) fn invalid_input(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::InvalidInput, message)
}

/// The result type of the conversions and the futures: a dbx-shaped
/// failure, turned into a JavaScript error on the JavaScript thread.
pub(crate) type Res<T> = std::result::Result<T, Failure>;

impl Failure {
    /// The same failure with `what: ` before its message (which argument).
    pub(crate) fn prefixed(mut self, what: &str) -> Self {
        self.message = format!("{what} {}", self.message);
        self
    }
}
