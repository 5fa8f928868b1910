//! The listener: plain TCP, or TLS with rustls (ring provider), the
//! handshakes done off the accept loop with a deadline.

use crate::api::PeerAddr;
use crate::config::{ConfigError, TlsConfig, err};
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Load the certificate chain and key; a rustls server config on ring.
pub(crate) fn tls_acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err(format!("tls.cert_file {}: {e}", cfg.cert_file.display())))?;
    if certs.is_empty() {
        return Err(err(format!(
            "tls.cert_file {}: no certificate found",
            cfg.cert_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| err(format!("tls.key_file {}: {e}", cfg.key_file.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            err(format!(
                "tls: certificate and key do not make a server identity: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A connection: plain or TLS.
#[derive(Debug)]
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The gateway's listener.
#[derive(Debug)]
pub(crate) enum GatewayListener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        rx: mpsc::Receiver<(Conn, SocketAddr)>,
    },
}

async fn accept_tcp(l: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match l.accept().await {
            Ok(x) => return x,
            Err(e) => {
                // Out of descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl GatewayListener {
    pub(crate) fn new(tcp: TcpListener, tls: Option<TlsAcceptor>) -> io::Result<GatewayListener> {
        let Some(acceptor) = tls else {
            return Ok(GatewayListener::Plain(tcp));
        };
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = accept_tcp(&tcp).await;
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((Conn::Tls(Box::new(tls)), addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(GatewayListener::Tls { local, rx })
    }
}

impl Listener for GatewayListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self {
            GatewayListener::Plain(l) => {
                let (s, a) = accept_tcp(l).await;
                let _ = s.set_nodelay(true);
                (Conn::Plain(s), a)
            }
            GatewayListener::Tls { rx, .. } => match rx.recv().await {
                Some(x) => x,
                // The accept task ended: nothing more will come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            GatewayListener::Plain(l) => l.local_addr(),
            GatewayListener::Tls { local, .. } => Ok(*local),
        }
    }
}

impl Connected<IncomingStream<'_, GatewayListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, GatewayListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
