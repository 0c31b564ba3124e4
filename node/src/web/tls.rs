//! HTTPS for the pages (`[web_tls]`): a P-256 certificate from the region's pages CA
//! (`giasync-certs web`), served with rustls on every connection the web listener accepts.
//!
//! Handshakes run beside each other, each under [`HANDSHAKE_TIMEOUT_MS`]: a client that opens
//! connections and never finishes a handshake holds a slot for ten seconds, not the listener.
//! One client (an IPv4 address, an IPv6 /64) holds at most [`HANDSHAKES_PER_CLIENT_MAX`] slots and all clients at most
//! [`HANDSHAKES_IN_FLIGHT_MAX`]; a connection beyond either is closed at once, so one machine
//! stalling handshakes does not keep the other browsers of the school out. Every cookie a page sets over HTTPS
//! is marked `Secure`, so a browser never sends the session back over plain HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::transport::handshakes::HandshakeSlots;

/// The most TLS handshakes in progress at once; connections beyond it are closed at once.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 256;
/// The most TLS handshakes in progress at once from one client (an IPv4 address, an IPv6 /64).
pub const HANDSHAKES_PER_CLIENT_MAX: usize = 8;
/// How long a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT_MS: u64 = 30_000;
/// How long the listener rests after `accept` fails (out of file descriptors, say).
const ACCEPT_RETRY_MS: u64 = 50;

/// Why the pages' certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WebTlsError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: holds no certificate")]
    NoCertificate { file: String },
    #[error("the pages' certificate and key do not go together: {0}")]
    Mismatch(String),
}

/// The pages' TLS configuration from `cert` (the certificate, then its CA; PEM) and `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, WebTlsError> {
    let file_error = |path: &Path| {
        let file = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| WebTlsError::File {
            file,
            message: e.to_string(),
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(file_error(cert))?
        .collect::<Result<_, _>>()
        .map_err(file_error(cert))?;
    if chain.is_empty() {
        return Err(WebTlsError::NoCertificate {
            file: cert.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(file_error(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebTlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| WebTlsError::Mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over HTTPS on `addr` until the runtime stops; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    config: Arc<rustls::ServerConfig>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let router = router.layer(axum::middleware::from_fn(secure_cookies));
    tokio::spawn(accept_loop(listener, router, TlsAcceptor::from(config)));
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, router: Router, acceptor: TlsAcceptor) {
    let handshakes = HandshakeSlots::new(HANDSHAKES_IN_FLIGHT_MAX, HANDSHAKES_PER_CLIENT_MAX);
    loop {
        let (tcp, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "the pages could not accept a connection");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let Some(slot) = handshakes.take(client.ip()) else {
            tracing::debug!(%client, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(
                Duration::from_millis(HANDSHAKE_TIMEOUT_MS),
                acceptor.accept(tcp),
            );
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%client, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%client, "TLS handshake timed out");
                    return;
                }
            };
            drop(slot);
            // What `axum::serve` gives handlers on plain HTTP: the client's address.
            let service = TowerToHyperService::new(router.layer(Extension(ConnectInfo(client))));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%client, error = %e, "HTTPS connection ended");
            }
        });
    }
}

/// Marks every cookie set over HTTPS `Secure`.
async fn secure_cookies(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let cookies: Vec<HeaderValue> = response
        .headers_mut()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            let mut bytes = v.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Secure");
            HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| v.clone())
        })
        .collect();
    if !cookies.is_empty() {
        response.headers_mut().remove(header::SET_COOKIE);
        for cookie in cookies {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}
