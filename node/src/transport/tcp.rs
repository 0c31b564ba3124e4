//! The fallback for networks that drop UDP: the same mutual TLS 1.3 as QUIC (the same
//! certificates, revocation lists, identity checks and ALPN wire versions), over TCP.
//!
//! School networks often sit behind filters that pass only TCP (to port 443): QUIC then never
//! connects. A hub that sets `[node] listen_tcp` also accepts its nodes there, and a node whose
//! upstream names a `tcp` address dials it when QUIC cannot reach the upstream (`crate::run`).
//!
//! One TLS stream carries what QUIC carries on its streams. After the TLS handshake the client
//! sends the hello and the server answers it, as over QUIC (with TLS 1.3 a client learns that
//! the server refused its certificate only when it reads). Then each side writes records
//! `[channel: u8][length: u32, big-endian][bytes]`: [`Channel::Docs`] the engine's frames,
//! [`Channel::Blobs`] the blob transfers' frames, [`Channel::KeepAlive`] nothing, written after
//! [`super::KEEP_ALIVE_MS`] without a record. A side that hears nothing for
//! [`super::IDLE_TIMEOUT_MS`] ends the connection, as QUIC's idle timeout does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use giasync_certs::identity::NodeIdentity;
use giasync_shared::codes::OrgCode;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use tracing::{info, warn};

use super::{
    HELLO_BYTES, HELLO_TIMEOUT_MS, TlsMaterial, TransportError, alert_reason, describe_tls_failure,
    hello_bytes, identity_of, parse_hello, rustls_client_config, rustls_server_config, unix_ms_now,
    wire_of_alpn,
};

/// The bytes of a record's header: channel and length.
pub const RECORD_HEADER_BYTES: usize = 1 + 4;

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A frame of the sync engine (QUIC's first stream).
    Docs = 0,
    /// A frame of the blob transfers (QUIC's second stream).
    Blobs = 1,
    /// Nothing: the writer is alive.
    KeepAlive = 2,
}

impl Channel {
    fn of(byte: u8) -> Option<Channel> {
        match byte {
            0 => Some(Channel::Docs),
            1 => Some(Channel::Blobs),
            2 => Some(Channel::KeepAlive),
            _ => None,
        }
    }
}

/// A record's header.
#[must_use]
pub fn record_header(channel: Channel, len: u32) -> [u8; RECORD_HEADER_BYTES] {
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0] = channel as u8;
    header[1..].copy_from_slice(&len.to_be_bytes());
    header
}

/// Reads the next record's header: its channel and length. `Ok(None)` when the peer sent a
/// channel this build does not know (the connection must end: its bytes cannot be skipped
/// safely by a reader that does not know what they are).
pub async fn read_record_header<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<(Channel, usize)>> {
    let mut header = [0u8; RECORD_HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[1..]);
    let len = u32::from_be_bytes(len) as usize;
    Ok(Channel::of(header[0]).map(|c| (c, len)))
}

/// A connected, authenticated peer over TCP.
#[derive(Debug)]
pub struct TcpPeer {
    pub identity: NodeIdentity,
    pub stream: TlsStream<TcpStream>,
    /// The peer's clock minus ours, estimated at the hello (client side only).
    pub clock_skew_ms: Option<i64>,
    /// The hello's round trip (client side only).
    pub hello_rtt: Option<Duration>,
    /// The wire version agreed in the handshake.
    pub wire: u8,
}

/// Accepts the region's nodes on `listener`'s connections: its TLS.
pub fn acceptor(material: &TlsMaterial) -> Result<TlsAcceptor, TransportError> {
    Ok(TlsAcceptor::from(Arc::new(rustls_server_config(material)?)))
}

/// Opens the TCP listener of `[node] listen_tcp`.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, TransportError> {
    Ok(TcpListener::bind(addr).await?)
}

/// Sets up an opened or accepted TCP connection: no delay for small frames, and a peer gone
/// in the middle of a record noticed within [`super::IDLE_TIMEOUT_MS`], as QUIC's idle timeout
/// would: sent data unacknowledged that long ends the connection (`TCP_USER_TIMEOUT`; the
/// keep-alive records keep data in flight), and so does an idle link whose keep-alive probes,
/// every [`super::KEEP_ALIVE_MS`], go unanswered.
fn tune(tcp: &TcpStream) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let every = Duration::from_millis(super::KEEP_ALIVE_MS);
    let idle = Duration::from_millis(super::IDLE_TIMEOUT_MS);
    let keep_alive = socket2::TcpKeepalive::new()
        .with_time(every)
        .with_interval(every)
        .with_retries(KEEP_ALIVE_PROBES);
    let socket = socket2::SockRef::from(tcp);
    socket.set_tcp_keepalive(&keep_alive)?;
    socket.set_tcp_user_timeout(Some(idle))
}

/// Unanswered keep-alive probes after which an idle link is dead: with the first after
/// [`super::KEEP_ALIVE_MS`] and then one every [`super::KEEP_ALIVE_MS`], 20 s in all.
const KEEP_ALIVE_PROBES: u32 = 3;

/// What a TLS failure on a TCP stream means: the peer's alert says it refused our certificate;
/// a certificate error raised here says we refused theirs (`refusal` holds our reason, when
/// our verifier recorded one).
fn classify(error: std::io::Error, refusal: Option<String>) -> TransportError {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => TransportError::RefusedByPeer {
            reason: alert_reason(u8::from(*alert)),
        },
        Some(
            e @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_)),
        ) => TransportError::PeerRefused {
            reason: refusal.unwrap_or_else(|| describe_tls_failure(&e.to_string())),
        },
        Some(e) => TransportError::Hello(e.to_string()),
        None => TransportError::Io(error),
    }
}

fn peer_of(stream: &TlsStream<TcpStream>) -> Result<(NodeIdentity, u8), TransportError> {
    let (_, state) = stream.get_ref();
    let certs = state
        .peer_certificates()
        .ok_or_else(|| TransportError::PeerRefused {
            reason: "no certificate".into(),
        })?;
    Ok((identity_of(certs)?, wire_of_alpn(state.alpn_protocol())?))
}

/// Dials `addr` over TCP, expecting the node `expected` that presents `host` in its
/// certificate, and completes the hello. Refusals are logged with their reason.
pub async fn connect(
    material: &TlsMaterial,
    addr: SocketAddr,
    host: &str,
    expected: OrgCode,
) -> Result<TcpPeer, TransportError> {
    let result = connect_inner(material, addr, host, expected).await;
    match &result {
        Ok(peer) => info!(peer = %peer.identity, %addr, link = "tcp", "connected"),
        Err(error) => {
            warn!(expected = %expected, %addr, %error, link = "tcp", "connection refused or failed");
        }
    }
    result
}

async fn connect_inner(
    material: &TlsMaterial,
    addr: SocketAddr,
    host: &str,
    expected: OrgCode,
) -> Result<TcpPeer, TransportError> {
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let recorded = || refusal.lock().ok().and_then(|r| r.clone());
    let config = rustls_client_config(material, expected, refusal.clone())?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| TransportError::Config(format!("host {host}: {e}")))?;
    let exchange = async {
        let tcp = TcpStream::connect(addr).await?;
        tune(&tcp)?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| classify(e, recorded()))?;
        let mut stream = TlsStream::from(tls);
        let (identity, wire) = peer_of(&stream)?;
        let sent_at = Instant::now();
        let ours_ms = unix_ms_now();
        stream
            .write_all(&hello_bytes(ours_ms))
            .await
            .map_err(|e| classify(e, None))?;
        stream.flush().await.map_err(|e| classify(e, None))?;
        let mut reply = [0u8; HELLO_BYTES];
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|e| classify(e, None))?;
        let rtt = sent_at.elapsed();
        let theirs_ms = parse_hello(&reply)?;
        let rtt_ms = i64::try_from(rtt.as_millis()).unwrap_or(i64::MAX);
        Ok::<_, TransportError>(TcpPeer {
            identity,
            stream,
            clock_skew_ms: Some(theirs_ms - (ours_ms + rtt_ms / 2)),
            hello_rtt: Some(rtt),
            wire,
        })
    };
    tokio::time::timeout(Duration::from_millis(HELLO_TIMEOUT_MS), exchange)
        .await
        .map_err(|_| TransportError::Hello("no reply in time".into()))?
}

/// Completes the TLS handshake and the hello of a connection `listener` accepted. Refusals are
/// logged with their reason.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
) -> Result<TcpPeer, TransportError> {
    let result = accept_inner(acceptor, tcp).await;
    match &result {
        Ok(peer) => info!(peer = %peer.identity, %remote, link = "tcp", "accepted"),
        // A certificate refused is for the operator; the rest, on a port open to the internet,
        // is mostly scanners.
        Err(
            error @ (TransportError::PeerRefused { .. } | TransportError::RefusedByPeer { .. }),
        ) => {
            warn!(%remote, %error, link = "tcp", "incoming connection refused");
        }
        Err(error) => {
            tracing::debug!(%remote, %error, link = "tcp", "incoming connection failed");
        }
    }
    result
}

async fn accept_inner(acceptor: &TlsAcceptor, tcp: TcpStream) -> Result<TcpPeer, TransportError> {
    let exchange = async {
        tune(&tcp)?;
        let tls = acceptor.accept(tcp).await.map_err(|e| classify(e, None))?;
        let mut stream = TlsStream::from(tls);
        let (identity, wire) = peer_of(&stream)?;
        let mut hello = [0u8; HELLO_BYTES];
        stream
            .read_exact(&mut hello)
            .await
            .map_err(|e| classify(e, None))?;
        parse_hello(&hello)?;
        stream
            .write_all(&hello_bytes(unix_ms_now()))
            .await
            .map_err(|e| classify(e, None))?;
        stream.flush().await.map_err(|e| classify(e, None))?;
        Ok::<_, TransportError>(TcpPeer {
            identity,
            stream,
            clock_skew_ms: None,
            hello_rtt: None,
            wire,
        })
    };
    tokio::time::timeout(Duration::from_millis(HELLO_TIMEOUT_MS), exchange)
        .await
        .map_err(|_| TransportError::Hello("no hello in time".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_record_header_reads_back_and_an_unknown_channel_is_named() {
        let mut bytes = record_header(Channel::Blobs, 70_000).to_vec();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1]);
        let mut reader = bytes.as_slice();
        let first = read_record_header(&mut reader).await.expect("first header");
        assert_eq!(first, Some((Channel::Blobs, 70_000)));
        let second = read_record_header(&mut reader)
            .await
            .expect("second header");
        assert_eq!(second, None, "channel 9 is not one of this build's");
        assert!(read_record_header(&mut reader).await.is_err(), "at the end");
    }

    #[test]
    fn channels_keep_their_numbers_on_the_wire() {
        // The numbers are the wire format: a peer of another build reads them.
        assert_eq!(record_header(Channel::Docs, 1)[0], 0);
        assert_eq!(record_header(Channel::Blobs, 1)[0], 1);
        assert_eq!(record_header(Channel::KeepAlive, 0)[0], 2);
        assert_eq!(record_header(Channel::Docs, 0x0102_0304)[1..], [1, 2, 3, 4]);
    }
}
