//! The stand-in for `tls.rs` in a build without the `tls` feature: no TLS
//! code at all (no rustls, ring or webpki-roots).
//!
//! The URL is parsed exactly as with the feature; then, as libpq built
//! without SSL support does, `sslmode=disable` and `sslmode=prefer` (the
//! default) connect in plaintext, and a URL that needs TLS is refused with
//! `InvalidConfig` before anything touches the network: `sslmode=require`,
//! `verify-ca` or `verify-full`, a certificate file (`sslrootcert`,
//! `sslcert`, `sslkey`) with any mode but `disable` (with `disable` they are
//! ignored, as with the feature), and `channel_binding=require`.

use dbx_core::{Error, Result};
use std::convert::Infallible;
use std::fmt;
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, NoTls, NoTlsStream};

/// The TLS part of the URL.
pub(crate) struct TlsSettings {
    pub(crate) mode: &'static str,
    pub(crate) root_cert: Option<String>,
    pub(crate) client_cert: Option<String>,
    pub(crate) client_key: Option<String>,
}

/// tokio-postgres's connector that never negotiates TLS: with
/// `sslmode=prefer` tokio-postgres then skips the SSL request.
#[derive(Clone)]
pub(crate) struct MakeTls {
    mode: &'static str,
}

impl fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sslmode={} (no TLS in this build)", self.mode)
    }
}

/// The error naming what needs the feature.
fn needs_feature(what: &str) -> Error {
    Error::invalid_config(format!(
        "{what} needs dbx-postgres's `tls` feature (dbx: `tls`), which this build leaves out; \
         without TLS use sslmode=disable or sslmode=prefer (plaintext)"
    ))
}

impl MakeTls {
    /// Accept the plaintext modes; refuse what needs TLS.
    pub(crate) fn new(s: &TlsSettings) -> Result<MakeTls> {
        if s.mode == "disable" {
            return Ok(MakeTls { mode: s.mode });
        }
        if s.mode != "prefer" {
            return Err(needs_feature(&format!("sslmode={}", s.mode)));
        }
        for (name, value) in [
            ("sslrootcert", &s.root_cert),
            ("sslcert", &s.client_cert),
            ("sslkey", &s.client_key),
        ] {
            if value.is_some() {
                return Err(needs_feature(name));
            }
        }
        Ok(MakeTls { mode: s.mode })
    }
}

/// `channel_binding=require` needs TLS, which this build does not have.
pub(crate) fn channel_binding_possible() -> Result<()> {
    Err(needs_feature("channel_binding=require"))
}

impl MakeTlsConnect<Socket> for MakeTls {
    type Stream = NoTlsStream;
    type TlsConnect = NoTls;
    type Error = Infallible;

    fn make_tls_connect(&mut self, _domain: &str) -> Result<NoTls, Infallible> {
        Ok(NoTls)
    }
}
