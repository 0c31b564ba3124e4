//! Mutually authenticated QUIC between nodes of one region (quinn + rustls, ring provider).
//!
//! Both sides present a node certificate of the region's CA; both check the other's against
//! the CA and the revocation list. A client additionally checks that the server is the node it
//! meant to reach (role and code), not merely some node of the region. After the TLS handshake
//! the client sends a `hello` on a first stream and waits for the reply: with TLS 1.3 a client
//! whose certificate the server refuses still sees the handshake complete, and learns of the
//! refusal only from the close that answers its first stream (DESIGN.md §3). A peer counts as
//! accepted only after that reply. The hello also carries each side's clock, for `doctor`.
//!
//! Timeouts, chosen for school links that drop for seconds to minutes (documented in
//! `docs/transport.md`): keep-alive every [`KEEP_ALIVE_MS`], so NAT bindings survive; idle
//! timeout [`IDLE_TIMEOUT_MS`], so a short drop keeps the connection while a dead peer (a hub
//! that crashed) is noticed quickly and the node moves on to its next upstream — a new
//! connection costs a ~1 ms handshake and an 80-byte summary exchange, so reconnecting is cheap;
//! the hello must finish within [`HELLO_TIMEOUT_MS`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use giasync_certs::identity::{IdentityError, NodeIdentity};
use giasync_shared::codes::{OrgCode, RegionCode};
use giasync_shared::sync::wire;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::{info, warn};

pub mod handshakes;
pub mod tcp;

/// The ALPN protocol id of giasync's first wire version.
pub const ALPN: &[u8] = b"giasync/1";

/// The ALPN protocol ids of the wire versions this build speaks, newest first: a client offers
/// them all and the server takes the first of its own list the client offered, so the two agree
/// on the newest both speak (`giasync_shared::sync::wire::agree`); a node of the next version
/// and one of this version agree on this one.
fn alpn_protocols() -> Vec<Vec<u8>> {
    wire::WIRE_VERSIONS
        .iter()
        .rev()
        .map(|v| wire::alpn(*v))
        .collect()
}

/// The wire version a connection's handshake agreed on.
fn agreed_wire(connection: &quinn::Connection) -> Result<u8, TransportError> {
    let protocol = connection
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    wire_of_alpn(protocol.as_deref())
}

/// The wire version an ALPN protocol id names.
fn wire_of_alpn(protocol: Option<&[u8]>) -> Result<u8, TransportError> {
    protocol
        .and_then(wire::version_of_alpn)
        .ok_or_else(|| TransportError::Hello("no giasync wire version agreed (ALPN)".into()))
}
/// How often an idle connection sends a keep-alive.
pub const KEEP_ALIVE_MS: u64 = 5_000;
/// How long a connection survives without hearing from the peer.
pub const IDLE_TIMEOUT_MS: u64 = 20_000;
/// How long the hello exchange after the TLS handshake may take.
pub const HELLO_TIMEOUT_MS: u64 = 10_000;
/// The round trip QUIC assumes before it has measured one (RFC 9002's 333 ms, set explicitly):
/// it times the resending of a connection's first packet (see [`first_packet_sends_ms`]).
pub const INITIAL_RTT_MS: u64 = 333;

/// When, from the start of a connection attempt, QUIC sends its first packet while nothing
/// answers: at once, then after each probe timeout, which starts at the initial round trip
/// plus four times half of it (quinn's `pto_base`, about 1 s) and doubles each time: 0, 1.0,
/// 3.0, 7.0 s, … A link that comes back during an attempt is so noticed at the next send; the
/// simulator times reconnects by this.
pub fn first_packet_sends_ms() -> impl Iterator<Item = u64> {
    // rtt + 4 × (rtt / 2)
    let probe_ms = 3 * INITIAL_RTT_MS;
    (0..u32::BITS).scan(0u64, move |at, k| {
        let this = *at;
        *at = at.saturating_add(probe_ms << k);
        Some(this)
    })
}
/// The size of a hello message.
const HELLO_BYTES: usize = 4 + 1 + 8;
const HELLO_MAGIC: &[u8; 4] = b"GIAH";
const HELLO_VERSION: u8 = 1;

/// What went wrong setting up or using a connection. Refusals name the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A certificate, key, CA or revocation list file could not be loaded.
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The UDP socket could not be opened.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The connection could not be started (bad address, endpoint closed).
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// This node refused the peer's certificate.
    #[error("refused the peer's certificate: {reason}")]
    PeerRefused { reason: String },
    /// The peer refused this node's certificate.
    #[error("the peer refused our certificate: {reason}")]
    RefusedByPeer { reason: String },
    /// The connection failed for another reason (unreachable, timed out, reset).
    #[error("connection: {0}")]
    Connection(quinn::ConnectionError),
    /// The hello exchange did not complete.
    #[error("hello: {0}")]
    Hello(String),
}

/// This node's TLS material: its certificate and key, the region's CA and revocation lists.
#[derive(Debug)]
pub struct TlsMaterial {
    pub identity: NodeIdentity,
    pub cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub roots: Arc<RootCertStore>,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

fn load_error(path: &Path, message: impl ToString) -> TransportError {
    TransportError::Load {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsMaterial {
    /// Loads PEM files: the node's certificate and key, the CA certificate, the revocation list.
    pub fn load(cert: &Path, key: &Path, ca: &Path, crl: &Path) -> Result<Self, TransportError> {
        let cert_chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| load_error(cert, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| load_error(cert, e))?;
        let leaf = cert_chain
            .first()
            .ok_or_else(|| load_error(cert, "no certificate in the file"))?;
        let identity =
            giasync_certs::identity::node_from_cert_der(leaf).map_err(|e| load_error(cert, e))?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| load_error(key, e))?;
        let mut roots = RootCertStore::empty();
        for ca_cert in CertificateDer::pem_file_iter(ca).map_err(|e| load_error(ca, e))? {
            roots
                .add(ca_cert.map_err(|e| load_error(ca, e))?)
                .map_err(|e| load_error(ca, e))?;
        }
        if roots.is_empty() {
            return Err(load_error(ca, "no CA certificate in the file"));
        }
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_file_iter(crl)
                .map_err(|e| load_error(crl, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| load_error(crl, e))?;
        if crls.is_empty() {
            return Err(load_error(crl, "no revocation list in the file"));
        }
        // TLS judges a certificate by the first list its CA issued (webpki), and refuses one past
        // its next update: put the freshest first, so a `crl.pem` still holding last term's
        // list beside this term's is as fresh as this term's, as it is for attestations
        // (`CaVerifier`). The CA writes every revocation into each new list.
        let mut crls = crls;
        crls.sort_by_cached_key(|der| {
            std::cmp::Reverse(
                giasync_certs::show::summarize_crl_der(der)
                    .ok()
                    .and_then(|summary| summary.next_update),
            )
        });
        Ok(TlsMaterial {
            identity,
            cert_chain,
            key: key_der,
            roots: Arc::new(roots),
            crls,
        })
    }

    /// Loads the files a node configuration names.
    pub fn from_config(tls: &giasync_shared::config::TlsSection) -> Result<Self, TransportError> {
        TlsMaterial::load(&tls.cert, &tls.key, &tls.ca, &tls.crl)
    }
}

fn config_error(error: impl std::fmt::Display) -> TransportError {
    TransportError::Config(error.to_string())
}

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config.initial_rtt(Duration::from_millis(INITIAL_RTT_MS));
    config.keep_alive_interval(Some(Duration::from_millis(KEEP_ALIVE_MS)));
    config.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_millis(IDLE_TIMEOUT_MS))
            .unwrap_or(quinn::VarInt::from_u32(20_000).into()),
    ));
    Arc::new(config)
}

/// The server side's TLS 1.3, for QUIC and the TCP fallback alike: requires a client
/// certificate of the region, not revoked, and agrees on a wire version.
fn rustls_server_config(material: &TlsMaterial) -> Result<rustls::ServerConfig, TransportError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(material.roots.clone(), provider())
        .with_crls(material.crls.clone())
        .enforce_revocation_expiration()
        .build()
        .map_err(config_error)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(material.cert_chain.clone(), material.key.clone_key())
        .map_err(config_error)?;
    tls.alpn_protocols = alpn_protocols();
    Ok(tls)
}

/// The server side: requires a client certificate of the region, not revoked.
pub fn server_config(material: &TlsMaterial) -> Result<quinn::ServerConfig, TransportError> {
    let tls = rustls_server_config(material)?;
    let quic = QuicServerConfig::try_from(tls).map_err(config_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport_config());
    Ok(config)
}

/// Checks the server's chain against the CA and revocation list (webpki), then that it is the
/// node `expected` of `region`.
#[derive(Debug)]
struct ExpectedServer {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    region: RegionCode,
    expected: OrgCode,
    /// Why the last certificate was refused, in words: rustls reports our own errors only as
    /// `Debug` text through quinn.
    refusal: Arc<Mutex<Option<String>>>,
}

impl ExpectedServer {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, (rustls::Error, String)> {
        let verified = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| {
                let reason = describe_tls_failure(&e.to_string());
                (e, reason)
            })?;
        let identity = giasync_certs::identity::node_from_cert_der(end_entity).map_err(
            |e: IdentityError| {
                let reason = e.to_string();
                (other(e), reason)
            },
        )?;
        if identity.org != self.expected || identity.region != self.region {
            let wrong = WrongNode {
                expected: self.expected,
                region: self.region,
                got: format!("{identity} of region {}", identity.region),
            };
            let reason = wrong.to_string();
            return Err((other(wrong), reason));
        }
        Ok(verified)
    }
}

/// The server is a node of the region, but not the one the client meant to reach.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected} of region {region}, the certificate is for {got}")]
struct WrongNode {
    expected: OrgCode,
    region: RegionCode,
    got: String,
}

fn other(error: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(error))))
}

impl ServerCertVerifier for ExpectedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|(error, reason)| {
                if let Ok(mut slot) = self.refusal.lock() {
                    *slot = Some(reason);
                }
                error
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client side, for reaching the node `expected` of this node's region.
pub fn client_config(
    material: &TlsMaterial,
    expected: OrgCode,
) -> Result<quinn::ClientConfig, TransportError> {
    client_config_recording(material, expected, Arc::default())
}

fn client_config_recording(
    material: &TlsMaterial,
    expected: OrgCode,
    refusal: Arc<Mutex<Option<String>>>,
) -> Result<quinn::ClientConfig, TransportError> {
    let tls = rustls_client_config(material, expected, refusal)?;
    let quic = QuicClientConfig::try_from(tls).map_err(config_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport_config());
    Ok(config)
}

/// The client side's TLS 1.3, for QUIC and the TCP fallback alike: checks that the server is
/// the node `expected` of this node's region, recording why it refused one in `refusal`.
fn rustls_client_config(
    material: &TlsMaterial,
    expected: OrgCode,
    refusal: Arc<Mutex<Option<String>>>,
) -> Result<rustls::ClientConfig, TransportError> {
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        material.roots.clone(),
        provider(),
    )
    .with_crls(material.crls.clone())
    .enforce_revocation_expiration()
    .build()
    .map_err(config_error)?;
    let verifier = Arc::new(ExpectedServer {
        inner,
        region: material.identity.region,
        expected,
        refusal,
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(material.cert_chain.clone(), material.key.clone_key())
        .map_err(config_error)?;
    tls.alpn_protocols = alpn_protocols();
    Ok(tls)
}

/// A connected, authenticated peer.
#[derive(Debug)]
pub struct Peer {
    pub identity: NodeIdentity,
    pub connection: quinn::Connection,
    /// The peer's clock minus ours, estimated at the hello (client side only).
    pub clock_skew_ms: Option<i64>,
    /// The hello's round trip (client side only).
    pub hello_rtt: Option<Duration>,
    /// The wire version agreed in the handshake.
    pub wire: u8,
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn hello_bytes(now_ms: i64) -> [u8; HELLO_BYTES] {
    let mut out = [0u8; HELLO_BYTES];
    out[..4].copy_from_slice(HELLO_MAGIC);
    out[4] = HELLO_VERSION;
    out[5..].copy_from_slice(&now_ms.to_be_bytes());
    out
}

fn parse_hello(bytes: &[u8]) -> Result<i64, TransportError> {
    if bytes.len() != HELLO_BYTES || &bytes[..4] != HELLO_MAGIC {
        return Err(TransportError::Hello("not a giasync hello".into()));
    }
    if bytes[4] != HELLO_VERSION {
        return Err(TransportError::Hello(format!(
            "hello version {} is not supported",
            bytes[4]
        )));
    }
    let mut clock = [0u8; 8];
    clock.copy_from_slice(&bytes[5..]);
    Ok(i64::from_be_bytes(clock))
}

/// Names a TLS alert the way an operator needs it.
fn alert_reason(alert: u8) -> String {
    let text = match alert {
        0x2a => "bad certificate",
        0x2b => "unsupported certificate",
        0x2c => "certificate revoked",
        0x2d => "certificate expired",
        0x2e => "certificate unknown",
        0x30 => "unknown CA (a certificate from another region's CA?)",
        0x31 => "access denied",
        0x74 => "certificate required (no certificate was sent)",
        0x78 => "no application protocol (not a giasync node?)",
        _ => "",
    };
    let name = format!("{:?}", rustls::AlertDescription::from(alert));
    if text.is_empty() {
        name
    } else {
        format!("{text} [{name}]")
    }
}

/// Puts a rustls certificate error in an operator's words, keeping the original in brackets.
fn describe_tls_failure(raw: &str) -> String {
    let known: [(&str, &str); 8] = [
        (
            "UnknownIssuer",
            "unknown CA (a certificate from another region's CA?)",
        ),
        (
            "BadSignature",
            "not signed by the region's CA (another CA of the same name?)",
        ),
        ("Revoked", "certificate revoked"),
        ("xpired", "certificate expired"),
        ("NotValidYet", "certificate not valid yet (check the clock)"),
        ("no certificates", "no certificate was sent"),
        (
            "NotValidForName",
            "certificate not issued for this host name",
        ),
        (
            "InvalidPurpose",
            "certificate not issued for node connections (a person's certificate?)",
        ),
    ];
    match known.iter().find(|(needle, _)| raw.contains(needle)) {
        Some((_, text)) => format!("{text} [{raw}]"),
        None => raw.to_owned(),
    }
}

/// Classifies a connection error: a TLS alert from the peer means it refused our certificate;
/// a TLS error raised here means we refused theirs.
fn classify(error: quinn::ConnectionError) -> TransportError {
    match &error {
        quinn::ConnectionError::ConnectionClosed(close) => {
            let code = u64::from(close.error_code);
            if (0x100..0x200).contains(&code) {
                let alert = u8::try_from(code - 0x100).unwrap_or(0);
                return TransportError::RefusedByPeer {
                    reason: alert_reason(alert),
                };
            }
            TransportError::Connection(error)
        }
        quinn::ConnectionError::TransportError(e)
            if (0x100..0x200).contains(&u64::from(e.code)) =>
        {
            TransportError::PeerRefused {
                reason: describe_tls_failure(&e.reason),
            }
        }
        _ => TransportError::Connection(error),
    }
}

fn peer_identity(connection: &quinn::Connection) -> Result<NodeIdentity, TransportError> {
    let certs = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| TransportError::PeerRefused {
            reason: "no certificate".into(),
        })?;
    identity_of(&certs)
}

/// The node identity a peer's verified certificate chain names.
fn identity_of(certs: &[CertificateDer<'_>]) -> Result<NodeIdentity, TransportError> {
    let leaf = certs.first().ok_or_else(|| TransportError::PeerRefused {
        reason: "empty certificate chain".into(),
    })?;
    giasync_certs::identity::node_from_cert_der(leaf).map_err(|e| TransportError::PeerRefused {
        reason: e.to_string(),
    })
}

/// A UDP endpoint that accepts peers (when given a server config) and dials upstreams.
pub fn endpoint(
    listen: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, TransportError> {
    let socket = std::net::UdpSocket::bind(listen)?;
    let runtime = Arc::new(quinn::TokioRuntime);
    Ok(quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        runtime,
    )?)
}

/// Dials `addr`, expecting the node `expected` that presents `host` in its certificate, and
/// completes the hello. Refusals are logged with their reason.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    material: &TlsMaterial,
    addr: SocketAddr,
    host: &str,
    expected: OrgCode,
) -> Result<Peer, TransportError> {
    let result = connect_inner(endpoint, material, addr, host, expected).await;
    log_attempt(&result, addr, expected, false);
    result
}

/// [`connect`] for trying QUIC again every minute while the TCP fallback carries the
/// connection, where a failure is the expected answer: logged at debug level, not as a warning.
pub async fn try_connect(
    endpoint: &quinn::Endpoint,
    material: &TlsMaterial,
    addr: SocketAddr,
    host: &str,
    expected: OrgCode,
) -> Result<Peer, TransportError> {
    let result = connect_inner(endpoint, material, addr, host, expected).await;
    log_attempt(&result, addr, expected, true);
    result
}

fn log_attempt(
    result: &Result<Peer, TransportError>,
    addr: SocketAddr,
    expected: OrgCode,
    failure_expected: bool,
) {
    match result {
        Ok(peer) => info!(peer = %peer.identity, %addr, "connected"),
        Err(error) if failure_expected => {
            tracing::debug!(expected = %expected, %addr, %error, "QUIC still does not connect");
        }
        Err(error) => warn!(expected = %expected, %addr, %error, "connection refused or failed"),
    }
}

async fn connect_inner(
    endpoint: &quinn::Endpoint,
    material: &TlsMaterial,
    addr: SocketAddr,
    host: &str,
    expected: OrgCode,
) -> Result<Peer, TransportError> {
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let config = client_config_recording(material, expected, refusal.clone())?;
    let connecting = endpoint.connect_with(config, addr, host)?;
    let connection = connecting.await.map_err(|e| {
        match (classify(e), refusal.lock().ok().and_then(|r| r.clone())) {
            (TransportError::PeerRefused { .. }, Some(reason)) => {
                TransportError::PeerRefused { reason }
            }
            (other, _) => other,
        }
    })?;
    let identity = peer_identity(&connection)?;
    let wire = agreed_wire(&connection)?;
    let exchange = async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(classify)?;
        let sent_at = Instant::now();
        let ours_ms = unix_ms_now();
        send.write_all(&hello_bytes(ours_ms))
            .await
            .map_err(|e| match e {
                quinn::WriteError::ConnectionLost(c) => classify(c),
                other => TransportError::Hello(other.to_string()),
            })?;
        send.finish()
            .map_err(|e| TransportError::Hello(e.to_string()))?;
        let reply = recv.read_to_end(HELLO_BYTES).await.map_err(|e| match e {
            quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(c)) => classify(c),
            other => TransportError::Hello(other.to_string()),
        })?;
        let rtt = sent_at.elapsed();
        let theirs_ms = parse_hello(&reply)?;
        let rtt_ms = i64::try_from(rtt.as_millis()).unwrap_or(i64::MAX);
        Ok::<_, TransportError>((theirs_ms - (ours_ms + rtt_ms / 2), rtt))
    };
    let (skew, rtt) = tokio::time::timeout(Duration::from_millis(HELLO_TIMEOUT_MS), exchange)
        .await
        .map_err(|_| TransportError::Hello("no reply in time".into()))??;
    Ok(Peer {
        identity,
        connection,
        clock_skew_ms: Some(skew),
        hello_rtt: Some(rtt),
        wire,
    })
}

/// Accepts one incoming connection and answers its hello. Refusals are logged with their
/// reason.
pub async fn accept(incoming: quinn::Incoming) -> Result<Peer, TransportError> {
    let remote = incoming.remote_address();
    let result = accept_inner(incoming).await;
    match &result {
        Ok(peer) => info!(peer = %peer.identity, %remote, "accepted"),
        Err(error) => warn!(%remote, %error, "incoming connection refused or failed"),
    }
    result
}

async fn accept_inner(incoming: quinn::Incoming) -> Result<Peer, TransportError> {
    let connection = incoming.await.map_err(classify)?;
    let identity = peer_identity(&connection)?;
    let wire = agreed_wire(&connection)?;
    let exchange = async {
        let (mut send, mut recv) = connection.accept_bi().await.map_err(classify)?;
        let hello = recv
            .read_to_end(HELLO_BYTES)
            .await
            .map_err(|e| TransportError::Hello(e.to_string()))?;
        parse_hello(&hello)?;
        send.write_all(&hello_bytes(unix_ms_now()))
            .await
            .map_err(|e| TransportError::Hello(e.to_string()))?;
        send.finish()
            .map_err(|e| TransportError::Hello(e.to_string()))?;
        Ok::<_, TransportError>(())
    };
    tokio::time::timeout(Duration::from_millis(HELLO_TIMEOUT_MS), exchange)
        .await
        .map_err(|_| TransportError::Hello("no hello in time".into()))??;
    Ok(Peer {
        identity,
        connection,
        clock_skew_ms: None,
        hello_rtt: None,
        wire,
    })
}
