//! TLS for tokio-postgres over rustls with the `ring` provider.
//!
//! `sslmode` follows libpq: `prefer` and `require` encrypt without checking
//! the server's certificate (unless `sslrootcert` is given, which makes
//! `require` behave like `verify-ca`, as in libpq); `verify-ca` checks the
//! chain against the roots; `verify-full` also checks the host name. Roots
//! are the `sslrootcert` PEM file, or else the Mozilla roots of `webpki-roots`.

use dbx_core::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// The TLS part of the URL.
pub(crate) struct TlsSettings {
    pub(crate) mode: &'static str,
    pub(crate) root_cert: Option<String>,
    pub(crate) client_cert: Option<String>,
    pub(crate) client_key: Option<String>,
}

/// tokio-postgres's TLS connector over rustls; `None` when TLS is disabled.
#[derive(Clone)]
pub(crate) struct MakeTls {
    config: Option<Arc<ClientConfig>>,
    mode: &'static str,
}

impl fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sslmode={}", self.mode)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_roots(path: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            Error::invalid_config(format!("sslrootcert {path:?} cannot be read: {e}"))
                .with_source(e)
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid_config(format!("sslrootcert {path:?} is not valid PEM: {e}"))
                .with_source(e)
        })?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::invalid_config(format!(
            "sslrootcert {path:?} holds no usable CA certificate"
        )));
    }
    Ok(roots)
}

impl MakeTls {
    /// Build the connector, reading any certificate files now, so a bad
    /// path is an `InvalidConfig` error at connect time.
    pub(crate) fn new(s: &TlsSettings) -> Result<MakeTls> {
        if s.mode == "disable" {
            return Ok(MakeTls {
                config: None,
                mode: s.mode,
            });
        }
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_config(format!("TLS setup failed: {e}")).with_source(e))?;
        let roots = match &s.root_cert {
            Some(path) => Some(load_roots(path)?),
            None if matches!(s.mode, "verify-ca" | "verify-full") => Some(
                RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            ),
            None => None,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            None => Arc::new(NoVerification(provider.clone())),
            Some(roots) => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::invalid_config(format!(
                                "TLS root certificates are unusable: {e}"
                            ))
                            .with_source(e)
                        })?;
                if s.mode == "verify-full" {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&s.client_cert, &s.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        Error::invalid_config(format!("sslcert {cert:?} cannot be read: {e}"))
                            .with_source(e)
                    })?;
                if chain.is_empty() {
                    return Err(Error::invalid_config(format!(
                        "sslcert {cert:?} holds no certificate"
                    )));
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    Error::invalid_config(format!(
                        "sslkey {key:?} cannot be read as an unencrypted PEM private key: {e}"
                    ))
                    .with_source(e)
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::invalid_config(format!("sslcert/sslkey are unusable: {e}"))
                        .with_source(e)
                })?
            }
            _ => {
                return Err(Error::invalid_config(
                    "sslcert and sslkey must be given together",
                ));
            }
        };
        Ok(MakeTls {
            config: Some(Arc::new(config)),
            mode: s.mode,
        })
    }
}

/// `channel_binding=require` needs TLS: with the `tls` feature, the URL's
/// `sslmode` decides (as in libpq).
pub(crate) fn channel_binding_possible() -> Result<()> {
    Ok(())
}

/// `prefer`/`require` without roots: encryption without authentication, as
/// libpq does. Handshake signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // webpki checks the name only after the chain verified.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl MakeTlsConnect<Socket> for MakeTls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // The name is checked when (and if) TLS is actually negotiated:
        // Unix sockets pass an empty one and never use TLS.
        Ok(RustlsConnect {
            config: self.config.clone(),
            domain: domain.to_owned(),
        })
    }
}

/// One TLS handshake to do.
pub(crate) struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    domain: String,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let config = self
                .config
                .ok_or_else(|| io::Error::other("TLS is disabled (sslmode=disable)"))?;
            let name = ServerName::try_from(self.domain.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} is not a valid TLS server name: {e}", self.domain),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// An established TLS connection.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, conn) = self.0.get_ref();
        conn.peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| server_end_point(cert.as_ref()))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// RFC 5929 `tls-server-end-point`: the hash of the server certificate with
/// the hash function of its signature algorithm (SHA-256 for MD5 and SHA-1).
/// `None` for algorithms without a defined hash (Ed25519, RSA-PSS), where
/// SCRAM then runs without channel binding.
fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use ring::digest;
    let oid = signature_algorithm_oid(cert)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    let alg = match oid {
        [rsa @ .., n] if rsa == RSA => match n {
            0x04 | 0x05 | 0x0b => &digest::SHA256,
            0x0c => &digest::SHA384,
            0x0d => &digest::SHA512,
            _ => return None,
        },
        [ec @ .., n] if ec == ECDSA => match n {
            0x02 => &digest::SHA256,
            0x03 => &digest::SHA384,
            0x04 => &digest::SHA512,
            _ => return None,
        },
        _ => return None,
    };
    Some(digest::digest(alg, cert).as_ref().to_vec())
}

/// The OID bytes of `Certificate.signatureAlgorithm.algorithm` in a DER
/// certificate: SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, ... }, ... }.
fn signature_algorithm_oid(cert: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = der_item(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_tbs) = der_item(body)?;
    let (tag, alg, _) = der_item(after_tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_item(alg)?;
    (tag == 0x06).then_some(oid)
}

/// One DER item: (tag, contents, the bytes after it).
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_finds_the_signature_algorithm() {
        // SEQUENCE { SEQUENCE {}, SEQUENCE { OID 1.2.840.113549.1.1.11 }, BIT STRING }
        let cert = [
            0x30, 0x12, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 0x0b, 0x03, 0x01, 0x00,
        ];
        assert_eq!(
            signature_algorithm_oid(&cert),
            Some(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b][..])
        );
        assert_eq!(server_end_point(&cert).map(|h| h.len()), Some(32));
        assert_eq!(signature_algorithm_oid(&[0x30, 0x05, 0x01]), None);
        assert_eq!(signature_algorithm_oid(&[]), None);
    }

    #[test]
    fn bad_files_are_invalid_config() {
        for s in [
            TlsSettings {
                mode: "verify-full",
                root_cert: Some("/nonexistent/root.pem".into()),
                client_cert: None,
                client_key: None,
            },
            TlsSettings {
                mode: "require",
                root_cert: None,
                client_cert: Some("/nonexistent/c.pem".into()),
                client_key: None,
            },
        ] {
            let e = MakeTls::new(&s).unwrap_err();
            assert_eq!(e.kind(), dbx_core::ErrorKind::InvalidConfig, "{e}");
        }
    }
}
