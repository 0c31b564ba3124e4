//! The driver: runs the sans-IO engine with quinn for the network, redb for the store and the
//! system clock, for `giasync-node run` and `giasync-hub run`.
//!
//! - One **engine thread** owns the engine and the store. It takes events from a channel, feeds
//!   them to the engine, writes every batch of records in one durable transaction *before* it
//!   sends anything or answers a local command, then hands frames to the connections.
//! - Each **connection** has one unidirectional stream each way carrying length-prefixed frames
//!   (large catch-ups are already fragmented by the engine, so documents interleave).
//! - A **dialer** keeps one upstream connection: it tries the upstreams in priority order (a
//!   school's МОУО hub, then the РЦОИ), backs off exponentially with jitter up to
//!   [`RETRY_BACKOFF_MS_MAX`], waits ever longer after connections that end at once (`Redial`),
//!   and leaves a fallback upstream after [`FALLBACK_HOLD_MS`] to try the preferred one again.
//! - What the node does with documents is not the driver's: a [`Reactor`] given at start runs
//!   after each batch of changes (the application's receipts and delivery notes), and
//!   [`NodeHandle::call`] runs a job on the engine thread (the application's commands), answering
//!   only once what it wrote is durable. The skins (socket, pages) are started by
//!   `service`.
//! - Hubs **listen**; UDP buffers are enlarged ([`UDP_BUFFER_BYTES`]) so hundreds of nodes
//!   reconnecting at once do not overflow the socket. A hub with `[node] listen_tcp` also
//!   accepts its nodes over TCP, and a node whose upstream QUIC cannot reach (a school network
//!   that drops UDP) syncs over TCP instead, trying QUIC again every [`QUIC_PROBE_MS`]: the same
//!   TLS, identity checks and frames, as records of one stream (`transport::tcp`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use automerge::AutomergeError;
use automerge::transaction::Transaction;
use ed25519_dalek::SigningKey;
use giasync_certs::verify::CaVerifier;
use giasync_shared::codes::NodeRole;
use giasync_shared::config::NodeConfig;
use giasync_shared::sync::{DocId, Engine, Input, Link, NodeIdentity, Output, PeerId, Persist};
use rand_core::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{info, warn};

use crate::blobs::{BlobFiles, BlobStore, BlobStoreError, Prepared};
use crate::person::KeyError;
use crate::run_blobs::{
    BLOB_STREAM_MAGIC, BLOB_STREAM_PRIORITY, BlobEvent, BlobPlan, BlobRate, BlobStatus, OnComplete,
};
use crate::store::{Store, StoreError};
use crate::transport::tcp::{Channel, TcpPeer};
use crate::transport::{self, TlsMaterial, TransportError};
use giasync_shared::blob::BlobRef;
use giasync_shared::blob::wire::BLOB_FRAME_BYTES_MAX;

/// The largest frame accepted from a peer (a fragment plus its header).
pub const PEER_FRAME_BYTES_MAX: usize = giasync_shared::sync::wire::FRAGMENT_BYTES + 1024;
/// Bytes of one peer's frames read but not yet handled by the engine; its reader waits beyond
/// this, and QUIC's flow control holds the sender back.
pub const PEER_INBOX_BYTES_MAX: usize = 16 * PEER_FRAME_BYTES_MAX;
/// Bytes of all peers' frames read but not yet handled by the engine.
pub const INBOX_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes queued for one peer and not yet written to it; a peer that reads slower than this is
/// disconnected (it catches up when it reconnects). Room for the largest frame, twice.
pub const PEER_OUTBOX_BYTES_MAX: usize = 2 * giasync_shared::sync::wire::FRAME_BYTES_MAX;
/// The first retry delay after every upstream failed.
pub const RETRY_BACKOFF_MS_MIN: u64 = 500;
/// The longest retry delay (plus up to half of it as jitter) after every upstream failed.
/// Together with [`CONNECT_TIMEOUT_MS`] it bounds how long a node whose network comes back
/// waits before it is connected again: within an attempt QUIC sends its first packet again at
/// 1 s and 3 s (`transport::first_packet_sends_ms`), so a link back at any moment is noticed
/// within 3.5 s at worst (the send at 3 s, then the next attempt at 5–6.5 s). With 30 s here the
/// simulator measured a median of 16 s (kuzbass) from the network's return until every sheet the
/// school had entered was receipted back. The cost: a node that reaches nothing tries each
/// upstream once per round of 5 s per upstream plus the backoff (a school with a hub and the
/// РЦОИ: every 11–11.5 s), five datagrams an attempt (quinn resends two at a time).
pub const RETRY_BACKOFF_MS_MAX: u64 = 1_000;
/// How long to stay on a fallback upstream before trying the preferred one again.
pub const FALLBACK_HOLD_MS: u64 = 300_000;
/// A connection that ended sooner than this after it was made counts as a failure of its kind:
/// the next is dialled only after a delay that doubles up to
/// [`RETRY_SHORT_LIVED_MS_MAX`] ([`Redial`]). Without it, a connection the far side accepts
/// and closes at once (two machines with one school's certificate, each replacing the other
/// at the hub) is dialled again as fast as handshakes go, with two audit rows a round.
pub const CONNECTION_STEADY_MS: u64 = 10_000;
/// The longest delay before dialling again after connections that each ended sooner than
/// [`CONNECTION_STEADY_MS`].
pub const RETRY_SHORT_LIVED_MS_MAX: u64 = 30_000;
/// After this many connections in a row to one upstream that each ended sooner than
/// [`CONNECTION_STEADY_MS`], the next round passes it over for the next upstream in order (a
/// hub that closes on something the node always sends must not keep it from the РЦОИ).
pub const SHORT_LIVED_BEFORE_NEXT: u32 = 3;
/// How often a node syncing over the TCP fallback tries QUIC again (five datagrams and at most
/// [`CONNECT_TIMEOUT_MS`] of waiting each time, while TCP carries on), unless
/// `[node] quic_probe_s` says otherwise.
pub const QUIC_PROBE_MS: u64 = 60_000;
/// How long a hub waits after its TCP listener failed to accept (out of descriptors).
const TCP_ACCEPT_PAUSE_MS: u64 = 100;
/// The most TCP fallback handshakes (TLS and hello) a hub runs at once: every school of a
/// large region reconnecting at once, and then some.
pub const TCP_HANDSHAKES_MAX: usize = 1024;
/// The most of them from one address: several schools may sit behind one municipal NAT.
pub const TCP_HANDSHAKES_PER_CLIENT_MAX: usize = 16;
/// The UDP receive and send buffer asked of the kernel.
pub const UDP_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// How long one upstream connection attempt may take, the TLS handshake and the hello both:
/// long enough for both over a satellite link (two round trips of ~0.6 s) after the first
/// packet's last resend (at 3 s), or after a resend at 1 s with a packet lost on the way (quinn
/// then waits ~1.8 s), short enough that a new attempt follows that last resend closely. With
/// 10 s, the longest wait after a link came back was 7.5 s (the sends at 7 s and 14.5 s).
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// At most this many frames go into one batch of the engine thread: the first, then those
/// already waiting behind it, handled in turn and persisted in one durable transaction, with one
/// pass of the reactor over what they changed (at the РЦОИ, the receipts of all their sheets). A
/// batch takes only what is already queued, so no frame waits for one to fill; under load it
/// saves a durable commit per frame (redb makes about 5,500 a second on the machine we measure).
pub const BATCH_FRAMES_MAX: usize = 256;
/// A batch also ends once what it made holds this many bytes (frames to send, changes to
/// write): frames to a peer are counted against its outbox (`PEER_OUTBOX_BYTES_MAX`) only when
/// they are routed after the commit, so a batch must not build far past it first.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What stopped the node from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the admin socket {path}: {message}")]
    Socket { path: String, message: String },
    #[error("the revocation list or CA: {0}")]
    Ca(String),
    #[error("the engine thread has stopped")]
    Stopped,
    #[error("the web server cannot serve on {0}")]
    Web(String),
    #[error(transparent)]
    Blobs(#[from] BlobStoreError),
}

type ChangeFn = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send>;

/// What a job answers once the batch it wrote was persisted (or refused by the store).
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// A job for the engine thread: runs on the engine at `now_ms` and hands back its reply.
type Job = Box<dyn FnOnce(&mut Engine, i64) -> Reply + Send>;

/// What the node does by itself after documents changed, before the batch is persisted (the
/// application's reactions: receipts at the РЦОИ, delivery notes at a school). It gets the
/// documents the batch changed and returns whether it wrote more.
pub type Reactor = Box<dyn FnMut(&mut Engine, &[DocId], i64) -> bool + Send>;

/// What the application says of the blobs the given documents name (which to fetch): asked
/// after each persisted batch, and at start of every document.
pub type BlobPlanner = Box<dyn FnMut(&Engine, &[DocId]) -> Vec<BlobPlan> + Send>;

/// The batch a job wrote could not be persisted: nothing of it was sent or acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the node is stopping")]
    Stopped,
    #[error("not saved: {0}")]
    NotSaved(String),
}

enum Event {
    Connected {
        peer: PeerId,
        identity: NodeIdentity,
        /// The wire version agreed in the handshake.
        wire: u8,
        link: Link,
        writer: Outbox,
    },
    Frame {
        peer: PeerId,
        bytes: Vec<u8>,
        /// Its share of the peer's and of all peers' inbox budgets, given back once handled.
        _budget: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    },
    Disconnected {
        peer: PeerId,
    },
    Change {
        doc: DocId,
        change: ChangeFn,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Read {
        doc: DocId,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
    Call(Job),
    Stop,
}

/// What a running node reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub identity: String,
    pub peers: Vec<String>,
    pub docs: Vec<(String, usize)>,
    pub quarantined: u64,
    pub frames_sent: u64,
    pub bytes_sent: u64,
}

/// A running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    events: std_mpsc::Sender<Event>,
    blobs: std_mpsc::Sender<BlobEvent>,
    blob_files: BlobFiles,
    /// The folder of the exam materials (`crate::materials`): codes kept at the РЦОИ, packages
    /// opened at a school.
    pub materials_dir: std::path::PathBuf,
    /// The upstream's clock minus this node's, measured at the last connection's hello.
    pub clock_skew_ms: Arc<std::sync::Mutex<Option<i64>>>,
    /// The address hubs listen on.
    pub listen: Option<SocketAddr>,
    /// The TCP address a hub accepts its nodes on when UDP does not reach it (`listen_tcp`).
    pub listen_tcp: Option<SocketAddr>,
    /// The address of the web pages, when served.
    pub web: Option<SocketAddr>,
    /// The address of the public result look-up (РЦОИ), when served.
    pub lookup: Option<SocketAddr>,
    /// The address of the metrics endpoint, when served.
    pub metrics: Option<SocketAddr>,
    pub identity: NodeIdentity,
    /// Why the engine thread stopped by itself, once it has (see [`NodeHandle::failed`]).
    failed: tokio::sync::watch::Receiver<Option<String>>,
    /// The store's database (weakly: the engine thread owns it, and closes it when it stops)
    /// and where its blobs are, and the node key's public half: what a backup taken while the
    /// node runs reads (`crate::backup`).
    backup_source: (
        std::sync::Weak<redb::Database>,
        std::path::PathBuf,
        [u8; 32],
    ),
}

/// The wall clock in Unix milliseconds, as the engine is given it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl NodeHandle {
    /// Waits until the engine thread stops by itself, and says why: the store refused a
    /// write, so what the engine holds in memory is ahead of the disk. The process should end
    /// (non-zero: the service manager starts it again, from what is durable). Never returns
    /// while the node runs or after it was stopped on purpose.
    pub async fn failed(&self) -> String {
        failure(self.failed.clone()).await
    }

    /// Writes a backup of the running node's store to `to`, from one read transaction on a
    /// blocking thread: the engine goes on meanwhile.
    pub async fn backup(
        &self,
        to: std::path::PathBuf,
    ) -> Result<crate::backup::BackupDone, crate::backup::BackupError> {
        let (db, blobs_dir, key) = self.backup_source.clone();
        let Some(db) = db.upgrade() else {
            return Err(crate::backup::BackupError::File {
                path: "the store".into(),
                message: "the node has stopped".into(),
            });
        };
        let identity = self.identity;
        tokio::task::spawn_blocking(move || {
            crate::backup::backup(&*db, &blobs_dir, (identity, key), now_ms(), &to)
        })
        .await
        .map_err(|e| crate::backup::BackupError::File {
            path: "backup".into(),
            message: e.to_string(),
        })?
    }

    /// Changes a document this node may write; returns once the change is durable.
    pub async fn change(
        &self,
        doc: DocId,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send + 'static,
    ) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.events
            .send(Event::Change {
                doc,
                change: Box::new(change),
                reply,
            })
            .map_err(|_| "the node stopped".to_owned())?;
        answer.await.map_err(|_| "the node stopped".to_owned())?
    }

    /// A saved copy of a document, if the node holds it.
    pub async fn read(&self, doc: DocId) -> Option<automerge::Automerge> {
        let (reply, answer) = oneshot::channel();
        self.events.send(Event::Read { doc, reply }).ok()?;
        let bytes = answer.await.ok()??;
        automerge::Automerge::load(&bytes).ok()
    }

    pub async fn status(&self) -> Option<NodeStatus> {
        let (reply, answer) = oneshot::channel();
        self.events.send(Event::Status { reply }).ok()?;
        answer.await.ok()
    }

    /// Runs `job` on the engine thread; its value arrives once what it wrote is durable.
    pub fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Engine, i64) -> T + Send + 'static,
    ) -> oneshot::Receiver<Result<T, CallError>> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |engine, now_ms| {
            let value = job(engine, now_ms);
            Box::new(move |stored: Result<(), &StoreError>| {
                let _ = reply.send(
                    stored
                        .map(|()| value)
                        .map_err(|e| CallError::NotSaved(e.to_string())),
                );
            })
        });
        // A stopped engine drops the job and with it the sender: the receiver reads `Stopped`.
        let _ = self.events.send(Event::Call(job));
        answer
    }

    /// What the blob thread stands at.
    pub async fn blob_status(&self) -> Option<BlobStatus> {
        let (reply, answer) = oneshot::channel();
        self.blobs.send(BlobEvent::Status(reply)).ok()?;
        answer.await.ok()
    }

    /// The node's blob files (to take a recording in, or to read one held).
    #[must_use]
    pub fn blob_files(&self) -> &BlobFiles {
        &self.blob_files
    }

    /// Makes a prepared blob visible in the node's store and tells the transfers it is held.
    pub async fn keep_blob(&self, prepared: Prepared) -> Result<BlobRef, String> {
        let (reply, answer) = oneshot::channel();
        self.blobs
            .send(BlobEvent::Keep { prepared, reply })
            .map_err(|_| "the node stopped".to_owned())?;
        answer.await.map_err(|_| "the node stopped".to_owned())?
    }

    /// Deletes blobs from the node's store (their keeping period is over).
    pub async fn destroy_blobs(
        &self,
        hashes: Vec<giasync_shared::blob::BlobHash>,
    ) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.blobs
            .send(BlobEvent::Destroy { hashes, reply })
            .map_err(|_| "the node stopped".to_owned())?;
        answer.await.map_err(|_| "the node stopped".to_owned())?
    }

    /// Stops the engine and blob threads (connections end with the runtime).
    pub fn stop(&self) {
        let _ = self.blobs.send(BlobEvent::Stop);
        let _ = self.events.send(Event::Stop);
    }
}

/// The endpoint's stateless-reset key and connection-id key are derived from the node's key, so
/// a node that restarts (after a crash or `kill -9`) still recognises the connection ids it
/// issued before and answers its peers' stale connections with a stateless reset at their next
/// packet: they reconnect at once instead of waiting out the idle timeout. (With quinn's random
/// defaults the restarted node drops those packets as carrying invalid ids.)
fn endpoint_config(key: &SigningKey) -> quinn::EndpointConfig {
    let derive = |label: &[u8]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(label);
        ctx.update(&key.to_bytes());
        ctx.finish()
    };
    let reset = derive(b"giasync quic stateless reset v1");
    let cid = derive(b"giasync quic connection ids v1");
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&cid.as_ref()[..8]);
    let cid_key = u64::from_be_bytes(cid_key);
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        reset.as_ref(),
    )));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

/// A UDP socket with enlarged buffers.
fn socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel may cap the sizes (net.core.rmem_max); the node runs either way.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Starts the engine, store and network of the node configured by `config` on the current tokio
/// runtime, with `reactor` run after each batch of changes, `planner` saying which blobs to
/// fetch, and `on_complete` told of each blob fetched whole.
pub async fn start(
    config: NodeConfig,
    reactor: Reactor,
    mut planner: BlobPlanner,
    on_complete: OnComplete,
) -> Result<NodeHandle, RunError> {
    let material = Arc::new(TlsMaterial::from_config(&config.tls)?);
    // The TCP fallback's listener first: a port taken or not permitted stops the start before
    // the store is opened or anything runs.
    let tcp_listener = match config.node.listen_tcp {
        Some(addr)
            if matches!(
                material.identity.role(),
                NodeRole::Municipality | NodeRole::Rcoi
            ) =>
        {
            Some((
                transport::tcp::listen(addr).await?,
                transport::tcp::acceptor(&material)?,
            ))
        }
        _ => None,
    };
    let identity = material.identity;
    let key = crate::person::load_node_key(&config.tls.key)?;
    let node_key = key.verifying_key().to_bytes();
    let endpoint_config = endpoint_config(&key);
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| RunError::Ca(format!("{}: {e}", p.display())))
    };
    let verifier = CaVerifier::from_pem(
        &read(&config.tls.ca)?,
        &read(&config.tls.crl)?,
        identity.region,
    )
    .map_err(RunError::Ca)?;
    let cert_der = material
        .cert_chain
        .first()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let mut engine = Engine::new(identity, key, cert_der, Box::new(verifier));
    let store = Store::open(&config.node.store)?;
    let backup_source = (
        Arc::downgrade(&store.database()),
        crate::blobs::dir_beside(&config.node.store),
        node_key,
    );
    let report = store.load_into(&mut engine)?;
    info!(node = %identity, docs = report.docs, chunks = report.chunks, compacted = report.compacted, "store loaded");
    let (blob_store, opened) = BlobStore::open(
        store.database(),
        &crate::blobs::dir_beside(&config.node.store),
        now_ms(),
    )?;
    let rate = BlobRate(config.node.audio_kbit_s.map(|k| u64::from(k) * 1000 / 8));
    let blob_files = blob_store.files();
    // Why the node stopped by itself: its engine thread or its blob thread says, the first wins.
    let (failing, failed) = tokio::sync::watch::channel(None);
    let failing = Arc::new(failing);
    let blobs_failing = Arc::clone(&failing);
    let on_failure: crate::run_blobs::OnFailure = Box::new(move |why| {
        blobs_failing.send_if_modified(|failed| failed.is_none() && failed.replace(why).is_none());
    });
    let blobs = crate::run_blobs::start(blob_store, opened, rate, on_complete, on_failure)
        .map_err(|_| RunError::Stopped)?;
    let all: Vec<DocId> = engine.doc_ids().copied().collect();
    let _ = blobs.send(BlobEvent::Plan(planner(&engine, &all)));

    let (events, inbox) = std_mpsc::channel::<Event>();
    let engine_blobs = blobs.clone();
    std::thread::Builder::new()
        .name(format!("engine {identity}"))
        .spawn(move || {
            if let Some(why) = engine_thread(engine, store, reactor, planner, engine_blobs, inbox) {
                failing
                    .send_if_modified(|failed| failed.is_none() && failed.replace(why).is_none());
            }
        })
        .map_err(|_| RunError::Stopped)?;

    let is_hub = matches!(identity.role(), NodeRole::Municipality | NodeRole::Rcoi);
    let server = if is_hub {
        Some(transport::server_config(&material)?)
    } else {
        None
    };
    let bind = if is_hub {
        config.node.listen
    } else {
        SocketAddr::new(config.node.listen.ip(), 0)
    };
    let endpoint = quinn::Endpoint::new(
        endpoint_config,
        server,
        socket(bind).map_err(TransportError::Io)?,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(TransportError::Io)?;
    let listen = if is_hub {
        endpoint.local_addr().ok()
    } else {
        None
    };
    let peer_ids = Arc::new(AtomicU64::new(1));
    let inbox = Inbox {
        events: events.clone(),
        blobs: blobs.clone(),
        bytes: Arc::new(Semaphore::new(INBOX_BYTES_MAX)),
    };
    if is_hub {
        let (endpoint, inbox, peer_ids) = (endpoint.clone(), inbox.clone(), peer_ids.clone());
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let (inbox, peer_ids) = (inbox.clone(), peer_ids.clone());
                tokio::spawn(async move {
                    if let Ok(peer) = transport::accept(incoming).await {
                        serve_peer(peer, peer_ids.fetch_add(1, Ordering::Relaxed), inbox).await;
                    }
                });
            }
        });
    }
    let listen_tcp = match tcp_listener {
        Some((listener, acceptor)) => {
            let local = listener.local_addr().map_err(TransportError::Io)?;
            let (inbox, peer_ids) = (inbox.clone(), peer_ids.clone());
            tokio::spawn(accept_tcp(listener, acceptor, inbox, peer_ids));
            Some(local)
        }
        None => None,
    };
    let materials_dir = crate::materials::dir_beside(&config.node.store);
    let clock_skew_ms: Arc<std::sync::Mutex<Option<i64>>> = Arc::default();
    if !config.upstreams.is_empty() {
        let skew = clock_skew_ms.clone();
        tokio::spawn(dial(config, endpoint, material, inbox, peer_ids, skew));
    }
    Ok(NodeHandle {
        events,
        blobs,
        blob_files,
        materials_dir,
        clock_skew_ms,
        listen,
        listen_tcp,
        web: None,
        lookup: None,
        metrics: None,
        identity,
        failed,
        backup_source,
    })
}

/// Accepts the region's nodes over the TCP fallback: each connection's handshake and hello run
/// beside the others', each within [`transport::HELLO_TIMEOUT_MS`], at most
/// [`TCP_HANDSHAKES_MAX`] at once and [`TCP_HANDSHAKES_PER_CLIENT_MAX`] from one address (the
/// port is open to the internet); a connection beyond either is closed at once.
async fn accept_tcp(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    inbox: Inbox,
    peer_ids: Arc<AtomicU64>,
) {
    let slots = transport::handshakes::HandshakeSlots::new(
        TCP_HANDSHAKES_MAX,
        TCP_HANDSHAKES_PER_CLIENT_MAX,
    );
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, for one: let some connections end first.
                warn!(%error, "cannot accept a TCP connection");
                tokio::time::sleep(Duration::from_millis(TCP_ACCEPT_PAUSE_MS)).await;
                continue;
            }
        };
        let Some(slot) = slots.take(remote.ip()) else {
            tracing::debug!(%remote, "too many TCP handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, inbox, peer_ids) = (acceptor.clone(), inbox.clone(), peer_ids.clone());
        tokio::spawn(async move {
            let accepted = transport::tcp::accept(&acceptor, tcp, remote).await;
            drop(slot);
            if let Ok(peer) = accepted {
                let id = peer_ids.fetch_add(1, Ordering::Relaxed);
                serve_tcp_peer(peer, id, inbox, Closer::tcp()).await;
            }
        });
    }
}

/// A connection to an upstream, over QUIC or the TCP fallback.
enum Upstreamed {
    Quic(transport::Peer),
    /// Boxed: a TLS stream holds its buffers inline.
    Tcp(Box<TcpPeer>),
}

impl Upstreamed {
    fn clock_skew_ms(&self) -> Option<i64> {
        match self {
            Upstreamed::Quic(peer) => peer.clock_skew_ms,
            Upstreamed::Tcp(peer) => peer.clock_skew_ms,
        }
    }
}

/// An upstream to dial, and what dialling it takes.
struct Target<'a> {
    endpoint: &'a quinn::Endpoint,
    material: &'a TlsMaterial,
    upstream: &'a giasync_shared::config::Upstream,
    expected: giasync_shared::codes::OrgCode,
    /// While on TCP, how often QUIC is tried again.
    probe_every: Duration,
}

impl Target<'_> {
    /// A QUIC connection to the upstream, within [`CONNECT_TIMEOUT_MS`]; a `probe` (while on
    /// TCP) logs its failure at debug level only.
    async fn quic(&self, probe: bool) -> Result<transport::Peer, Option<TransportError>> {
        let Target {
            endpoint,
            material,
            upstream,
            expected,
            ..
        } = self;
        let (addr, host) = (upstream.addr, upstream.host.as_str());
        let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        let attempt = async {
            if probe {
                transport::try_connect(endpoint, material, addr, host, *expected).await
            } else {
                transport::connect(endpoint, material, addr, host, *expected).await
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result.map_err(Some),
            Err(_) => Err(None),
        }
    }
}

/// Reaches the upstream: over QUIC, unless QUIC could not reach it before and TCP could
/// (`over_tcp`); over TCP when QUIC fails without a refusal and the upstream has a TCP address
/// (a refusal of a certificate would be the same over TCP). `over_tcp` is kept up to date.
async fn reach(target: &Target<'_>, over_tcp: &mut bool) -> Option<Upstreamed> {
    if !*over_tcp {
        match target.quic(false).await {
            Ok(peer) => return Some(Upstreamed::Quic(peer)),
            Err(Some(
                TransportError::PeerRefused { .. } | TransportError::RefusedByPeer { .. },
            )) => {
                return None;
            }
            Err(_) => {}
        }
    }
    let (addr, expected) = (target.upstream.tcp?, target.expected);
    let tcp = transport::tcp::connect(target.material, addr, &target.upstream.host, expected);
    let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
    match tokio::time::timeout(timeout, tcp).await {
        Ok(Ok(peer)) => {
            if !*over_tcp {
                warn!(upstream = %expected, %addr, "QUIC does not reach the upstream (UDP dropped?): syncing over TCP");
            }
            *over_tcp = true;
            Some(Upstreamed::Tcp(Box::new(peer)))
        }
        Ok(Err(_)) | Err(_) => {
            *over_tcp = false;
            None
        }
    }
}

/// Serves an upstream connection until it ends. On a fallback upstream (`rank` > 0) it is
/// closed after [`FALLBACK_HOLD_MS`], to try the preferred one again. Over TCP, QUIC is tried
/// again every [`QUIC_PROBE_MS`]: a QUIC connection that succeeds is returned, the TCP one
/// closed, and the caller serves it.
async fn hold(
    upstreamed: Upstreamed,
    rank: usize,
    target: &Target<'_>,
    inbox: &Inbox,
    peer_ids: &AtomicU64,
) -> Option<transport::Peer> {
    let id = peer_ids.fetch_add(1, Ordering::Relaxed);
    let (closer, serving): (Closer, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) =
        match upstreamed {
            Upstreamed::Quic(peer) => (
                Closer::Quic(peer.connection.clone()),
                Box::pin(serve_peer(peer, id, inbox.clone())),
            ),
            Upstreamed::Tcp(peer) => {
                let closer = Closer::tcp();
                let serving = serve_tcp_peer(*peer, id, inbox.clone(), closer.clone());
                (closer, Box::pin(serving))
            }
        };
    let over_tcp = matches!(closer, Closer::Tcp(_));
    let mut serving = serving;
    let held = async {
        if rank == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(FALLBACK_HOLD_MS)).await;
    };
    let probing = async {
        if !over_tcp {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(target.probe_every).await;
            if let Ok(peer) = target.quic(true).await {
                return peer;
            }
        }
    };
    let next = tokio::select! {
        // The probe first: its connection replaces this one at the hub, so both can be ready.
        biased;
        peer = probing => {
            info!(peer = %peer.identity, "QUIC reaches the upstream again: leaving TCP");
            closer.close("QUIC reaches the upstream again");
            Some(peer)
        }
        () = &mut serving => return None,
        () = held => {
            closer.close("back to the preferred upstream");
            None
        }
    };
    // The connection was closed: let it tell the engine and blob threads it ended.
    serving.await;
    next
}

/// When the dialer tries again: after a round in which no upstream answered, at
/// [`RETRY_BACKOFF_MS_MIN`] doubling to [`RETRY_BACKOFF_MS_MAX`] (a returning link is noticed
/// within seconds); after a connection that lasted [`CONNECTION_STEADY_MS`], at once; after one
/// that ended sooner, at a delay of its own doubling to [`RETRY_SHORT_LIVED_MS_MAX`], which only
/// a steady connection resets. Jitter is the caller's.
/// An upstream whose connections keep ending at once is passed over once every
/// [`SHORT_LIVED_BEFORE_NEXT`] of them ([`Redial::passes_over`]).
#[derive(Debug)]
struct Redial {
    failed_ms: u64,
    short_lived_ms: u64,
    /// Connections in a row to each upstream (by rank) that ended sooner than
    /// [`CONNECTION_STEADY_MS`].
    short_lived_in_a_row: Vec<u32>,
}

impl Redial {
    fn new(upstreams: usize) -> Self {
        Redial {
            failed_ms: RETRY_BACKOFF_MS_MIN,
            short_lived_ms: 0,
            short_lived_in_a_row: vec![0; upstreams],
        }
    }

    /// Whether this round passes over the upstream of `rank`: its last
    /// [`SHORT_LIVED_BEFORE_NEXT`] connections each ended at once and another upstream comes
    /// after it. Passing it over starts its count again.
    fn passes_over(&mut self, rank: usize) -> bool {
        let later = rank + 1 < self.short_lived_in_a_row.len();
        match self.short_lived_in_a_row.get_mut(rank) {
            Some(n) if later && *n >= SHORT_LIVED_BEFORE_NEXT => {
                *n = 0;
                true
            }
            _ => false,
        }
    }

    /// The delay before the next round after one in which no upstream answered.
    fn after_failure(&mut self) -> u64 {
        let delay = self.failed_ms;
        self.failed_ms = (self.failed_ms * 2).min(RETRY_BACKOFF_MS_MAX);
        delay
    }

    /// The delay before the next round after a connection to the upstream of `rank` that
    /// lasted `lasted_ms`.
    fn after_connection(&mut self, rank: usize, lasted_ms: u64) -> u64 {
        self.failed_ms = RETRY_BACKOFF_MS_MIN;
        let in_a_row = self.short_lived_in_a_row.get_mut(rank);
        if lasted_ms >= CONNECTION_STEADY_MS {
            if let Some(n) = in_a_row {
                *n = 0;
            }
            self.short_lived_ms = 0;
            return 0;
        }
        if let Some(n) = in_a_row {
            *n += 1;
        }
        self.short_lived_ms =
            (self.short_lived_ms * 2).clamp(RETRY_BACKOFF_MS_MAX, RETRY_SHORT_LIVED_MS_MAX);
        self.short_lived_ms
    }
}

/// Keeps one upstream connection, in priority order, with capped exponential backoff
/// ([`Redial`]); over the TCP fallback for an upstream QUIC cannot reach (see [`reach`],
/// [`hold`]).
async fn dial(
    config: NodeConfig,
    endpoint: quinn::Endpoint,
    material: Arc<TlsMaterial>,
    inbox: Inbox,
    peer_ids: Arc<AtomicU64>,
    clock_skew_ms: Arc<std::sync::Mutex<Option<i64>>>,
) {
    let mut redial = Redial::new(config.upstreams.len());
    let mut over_tcp = vec![false; config.upstreams.len()];
    loop {
        let mut connected = None;
        for (rank, upstream) in config.upstreams.iter().enumerate() {
            let Ok(expected) = upstream.org() else {
                continue;
            };
            if redial.passes_over(rank) {
                continue;
            }
            let target = Target {
                endpoint: &endpoint,
                material: &material,
                upstream,
                expected,
                probe_every: config
                    .node
                    .quic_probe_s
                    .map_or(Duration::from_millis(QUIC_PROBE_MS), |s| {
                        Duration::from_secs(u64::from(s))
                    }),
            };
            let Some(upstreamed) = reach(&target, &mut over_tcp[rank]).await else {
                continue;
            };
            let since = std::time::Instant::now();
            if let Ok(mut skew) = clock_skew_ms.lock() {
                *skew = upstreamed.clock_skew_ms();
            }
            let mut next = Some(upstreamed);
            while let Some(upstreamed) = next.take() {
                let quic = hold(upstreamed, rank, &target, &inbox, &peer_ids).await;
                if let Some(peer) = &quic {
                    over_tcp[rank] = false;
                    if let Ok(mut skew) = clock_skew_ms.lock() {
                        *skew = peer.clock_skew_ms;
                    }
                }
                next = quic.map(Upstreamed::Quic);
            }
            connected = Some((rank, since.elapsed()));
            break;
        }
        let delay_ms = match connected {
            None => redial.after_failure(),
            Some((rank, lasted)) => {
                redial.after_connection(rank, u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX))
            }
        };
        if delay_ms > 0 {
            let jitter = u64::from(rand_core::OsRng.next_u32()) % (delay_ms / 2 + 1);
            tokio::time::sleep(Duration::from_millis(delay_ms + jitter)).await;
        }
    }
}

/// The way to the engine thread, with the budget of frames read and not yet handled.
#[derive(Clone)]
struct Inbox {
    events: std_mpsc::Sender<Event>,
    blobs: std_mpsc::Sender<BlobEvent>,
    bytes: Arc<Semaphore>,
}

/// Ends a connection, over QUIC or TCP.
#[derive(Clone, Debug)]
pub(crate) enum Closer {
    Quic(quinn::Connection),
    /// Wakes the task serving the TCP connection, which then drops its stream.
    Tcp(Arc<Notify>),
}

impl Closer {
    fn tcp() -> Self {
        Closer::Tcp(Arc::new(Notify::new()))
    }

    /// Ends the connection, saying why (QUIC tells the peer; TCP only closes).
    fn close(&self, reason: &str) {
        match self {
            Closer::Quic(c) => c.close(0u32.into(), reason.as_bytes()),
            Closer::Tcp(notify) => notify.notify_one(),
        }
    }

    /// Until the connection ended or [`Closer::close`] was called.
    async fn closed(&self) {
        match self {
            Closer::Quic(c) => {
                c.closed().await;
            }
            // `notify_one` keeps the wake-up for a waiter that comes later.
            Closer::Tcp(notify) => notify.notified().await,
        }
    }
}

/// Frames for one peer, how many bytes of them are queued and not yet written, and the
/// connection, closed when the engine drops the peer (a writer stuck on a peer that reads
/// nothing would otherwise keep it, and its queue, alive).
pub(crate) struct Outbox {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    connection: Option<Closer>,
}

impl Outbox {
    /// Ends the connection, saying why.
    fn close(&self, reason: &str) {
        if let Some(c) = &self.connection {
            c.close(reason);
        }
    }
}

impl Outbox {
    /// The bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Queues `frame`, or says the peer is too far behind (more than [`PEER_OUTBOX_BYTES_MAX`]).
    pub(crate) fn send(&self, frame: Vec<u8>) -> Result<(), ()> {
        let len = frame.len();
        if self.queued_bytes.load(Ordering::Relaxed) + len > PEER_OUTBOX_BYTES_MAX {
            return Err(());
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        self.frames.send(frame).map_err(|_| ())
    }
}

/// What became of a frame the engine sent.
#[derive(Debug, PartialEq, Eq)]
enum Routed {
    Queued,
    /// The connection it was made for has ended: dropped. Peer ids are never reused (each
    /// connection takes the next), so a frame made for an earlier connection of a node never
    /// reaches its successor, which starts its own sessions.
    Ended,
    /// The peer's outbox is full.
    TooSlow,
}

/// Queues `bytes` for the connection `peer`, and that connection only.
fn route(
    writers: &std::collections::HashMap<PeerId, Outbox>,
    peer: PeerId,
    bytes: Vec<u8>,
) -> Routed {
    match writers.get(&peer) {
        None => Routed::Ended,
        Some(w) if w.send(bytes).is_err() => Routed::TooSlow,
        Some(_) => Routed::Queued,
    }
}

/// Takes `len` bytes (at least one) from the peer's budget and then from everyone's, waiting
/// while either is spent.
async fn reserve(
    peer: &Arc<Semaphore>,
    all: &Arc<Semaphore>,
    len: usize,
) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let n = u32::try_from(len.clamp(1, PEER_INBOX_BYTES_MAX)).ok()?;
    let mine = peer.clone().acquire_many_owned(n).await.ok()?;
    let shared = all.clone().acquire_many_owned(n).await.ok()?;
    Some((mine, shared))
}

/// Bytes of one peer's blob frames read but not yet handled by the blob thread.
pub const PEER_BLOB_INBOX_BYTES_MAX: usize = 4 * BLOB_FRAME_BYTES_MAX;

/// What one connection's writers take from: the frames the engine and the blob thread queued
/// for the peer, and how many bytes of each are not yet written.
struct Queues {
    docs: mpsc::UnboundedReceiver<Vec<u8>>,
    docs_queued: Arc<AtomicUsize>,
    blobs: mpsc::UnboundedReceiver<Vec<u8>>,
    blobs_queued: Arc<AtomicUsize>,
}

/// Why a reader stopped taking a peer's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The peer sent a frame over the bound: the connection is closed, saying so.
    TooLarge,
    /// The stream or the connection ended, or the node is stopping.
    Ended,
}

/// What one connection's readers hand frames to, within the peer's budgets.
struct Reader<'a> {
    id: PeerId,
    identity: NodeIdentity,
    inbox: &'a Inbox,
    docs_budget: Arc<Semaphore>,
    blobs_budget: Arc<Semaphore>,
}

impl Reader<'_> {
    fn new(id: PeerId, identity: NodeIdentity, inbox: &Inbox) -> Reader<'_> {
        Reader {
            id,
            identity,
            inbox,
            docs_budget: Arc::new(Semaphore::new(PEER_INBOX_BYTES_MAX)),
            blobs_budget: Arc::new(Semaphore::new(PEER_BLOB_INBOX_BYTES_MAX)),
        }
    }

    /// Reads a document frame of `len` bytes from `recv` and hands it to the engine thread
    /// once the budgets allow.
    async fn doc_frame<R: AsyncRead + Unpin>(&self, recv: &mut R, len: usize) -> Result<(), Stop> {
        if len > PEER_FRAME_BYTES_MAX {
            warn!(peer = %self.identity, len, "frame too large; closing");
            return Err(Stop::TooLarge);
        }
        let budget = reserve(&self.docs_budget, &self.inbox.bytes, len)
            .await
            .ok_or(Stop::Ended)?;
        let mut bytes = vec![0u8; len];
        recv.read_exact(&mut bytes).await.map_err(|_| Stop::Ended)?;
        let frame = Event::Frame {
            peer: self.id,
            bytes,
            _budget: budget,
        };
        self.inbox.events.send(frame).map_err(|_| Stop::Ended)
    }

    /// Reads a blob frame of `len` bytes from `recv` and hands it to the blob thread, as
    /// [`Reader::doc_frame`].
    async fn blob_frame<R: AsyncRead + Unpin>(&self, recv: &mut R, len: usize) -> Result<(), Stop> {
        if len > BLOB_FRAME_BYTES_MAX {
            warn!(peer = %self.identity, len, "blob frame too large; closing");
            return Err(Stop::TooLarge);
        }
        let permit = self
            .blobs_budget
            .clone()
            .acquire_many_owned(u32::try_from(len.max(1)).unwrap_or(u32::MAX))
            .await
            .map_err(|_| Stop::Ended)?;
        let mut bytes = vec![0u8; len];
        recv.read_exact(&mut bytes).await.map_err(|_| Stop::Ended)?;
        let frame = BlobEvent::Frame {
            peer: self.id,
            bytes,
            _budget: permit,
        };
        self.inbox.blobs.send(frame).map_err(|_| Stop::Ended)
    }
}

/// Tells the engine and blob threads of a new connection and gives them its outboxes; `None`
/// when the node is stopping.
fn announce(
    inbox: &Inbox,
    id: PeerId,
    identity: NodeIdentity,
    wire: u8,
    link: Link,
    closer: Closer,
) -> Option<Queues> {
    let (docs_writer, docs) = mpsc::unbounded_channel::<Vec<u8>>();
    let (blobs_writer, blobs) = mpsc::unbounded_channel::<Vec<u8>>();
    let queues = Queues {
        docs,
        docs_queued: Arc::new(AtomicUsize::new(0)),
        blobs,
        blobs_queued: Arc::new(AtomicUsize::new(0)),
    };
    let connected = Event::Connected {
        peer: id,
        identity,
        wire,
        link,
        writer: Outbox {
            frames: docs_writer,
            queued_bytes: queues.docs_queued.clone(),
            connection: Some(closer),
        },
    };
    inbox.events.send(connected).ok()?;
    let blobs_connected = BlobEvent::Connected {
        peer: id,
        identity,
        writer: Outbox {
            frames: blobs_writer,
            queued_bytes: queues.blobs_queued.clone(),
            connection: None,
        },
    };
    inbox.blobs.send(blobs_connected).ok()?;
    Some(queues)
}

/// Tells the engine and blob threads that a connection ended.
fn depart(inbox: &Inbox, id: PeerId) {
    let _ = inbox.blobs.send(BlobEvent::Disconnected { peer: id });
    let _ = inbox.events.send(Event::Disconnected { peer: id });
}

/// Writes length-prefixed frames from `frames` to `send` until either ends.
async fn write_frames(
    send: &mut quinn::SendStream,
    frames: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    queued_bytes: &AtomicUsize,
) {
    while let Some(frame) = frames.recv().await {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX).to_be_bytes();
        if send.write_all(&len).await.is_err() || send.write_all(&frame).await.is_err() {
            break;
        }
        queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
    }
}

/// Reads the peer's blob stream (its second unidirectional stream, which starts with
/// [`BLOB_STREAM_MAGIC`]) and hands its frames to the blob thread. A peer of an earlier version
/// opens none; this then waits until the connection ends.
async fn read_blobs(connection: &quinn::Connection, reader: &Reader<'_>) {
    let Ok(mut recv) = connection.accept_uni().await else {
        return;
    };
    let mut magic = [0u8; 4];
    if recv.read_exact(&mut magic).await.is_err() || &magic != BLOB_STREAM_MAGIC {
        connection.close(1u32.into(), b"not a blob stream");
        return;
    }
    loop {
        let mut len = [0u8; 4];
        if recv.read_exact(&mut len).await.is_err() {
            return;
        }
        let read = reader.blob_frame(&mut recv, u32::from_be_bytes(len) as usize);
        match read.await {
            Ok(()) => {}
            Err(Stop::TooLarge) => {
                connection.close(1u32.into(), b"blob frame too large");
                return;
            }
            // The blob stream ended: documents go on.
            Err(Stop::Ended) => return,
        }
    }
}

/// Runs one authenticated QUIC connection until it ends: one unidirectional stream each way
/// for the documents, a second, of lower priority, for the blobs.
async fn serve_peer(peer: transport::Peer, id: PeerId, inbox: Inbox) {
    let connection = peer.connection;
    let Ok(mut send) = connection.open_uni().await else {
        return;
    };
    let Ok(mut blob_send) = connection.open_uni().await else {
        return;
    };
    // quinn sends what is queued on a stream of higher priority first.
    let _ = blob_send.set_priority(BLOB_STREAM_PRIORITY);
    let closer = Closer::Quic(connection.clone());
    let Some(mut queues) = announce(&inbox, id, peer.identity, peer.wire, Link::Quic, closer)
    else {
        return;
    };
    let writing = write_frames(&mut send, &mut queues.docs, &queues.docs_queued);
    let blob_writing = async {
        if blob_send.write_all(BLOB_STREAM_MAGIC).await.is_ok() {
            write_frames(&mut blob_send, &mut queues.blobs, &queues.blobs_queued).await;
        }
        // The blob stream ended (the peer stopped reading it): documents go on.
        std::future::pending::<()>().await;
    };
    let reader = Reader::new(id, peer.identity, &inbox);
    let reading = async {
        let Ok(mut recv) = connection.accept_uni().await else {
            return;
        };
        let blob_reading = read_blobs(&connection, &reader);
        tokio::pin!(blob_reading);
        let mut blob_reading_done = false;
        loop {
            let mut len = [0u8; 4];
            let read = if blob_reading_done {
                recv.read_exact(&mut len).await
            } else {
                tokio::select! {
                    r = recv.read_exact(&mut len) => r,
                    () = &mut blob_reading => {
                        blob_reading_done = true;
                        continue;
                    }
                }
            };
            if read.is_err() {
                break;
            }
            let read = reader.doc_frame(&mut recv, u32::from_be_bytes(len) as usize);
            match read.await {
                Ok(()) => {}
                Err(Stop::TooLarge) => {
                    connection.close(1u32.into(), b"frame too large");
                    break;
                }
                Err(Stop::Ended) => break,
            }
        }
    };
    tokio::select! {
        () = writing => {}
        () = blob_writing => {}
        () = reading => {}
        _ = connection.closed() => {}
    }
    depart(&inbox, id);
}

/// Runs one authenticated connection over the TCP fallback until it ends or `closer` closes
/// it: the same frames as [`serve_peer`], as records of one TLS stream
/// ([`transport::tcp`]), the documents' before the blobs'.
async fn serve_tcp_peer(peer: TcpPeer, id: PeerId, inbox: Inbox, closer: Closer) {
    let Some(mut queues) = announce(
        &inbox,
        id,
        peer.identity,
        peer.wire,
        Link::Tcp,
        closer.clone(),
    ) else {
        return;
    };
    let (recv, send) = tokio::io::split(peer.stream);
    let reader = Reader::new(id, peer.identity, &inbox);
    tokio::select! {
        () = write_records(send, &mut queues) => {}
        () = read_records(recv, &reader) => {}
        () = closer.closed() => {}
    }
    depart(&inbox, id);
}

/// Writes the queued frames as records, the documents' first, and a keep-alive after
/// [`transport::KEEP_ALIVE_MS`] without one; flushes whenever nothing more is queued.
async fn write_records<W: AsyncWrite + Unpin>(send: W, queues: &mut Queues) {
    let mut send = tokio::io::BufWriter::new(send);
    let mut blobs_open = true;
    loop {
        let keep_alive = tokio::time::sleep(Duration::from_millis(transport::KEEP_ALIVE_MS));
        let (channel, frame) = tokio::select! {
            biased;
            frame = queues.docs.recv() => match frame {
                Some(frame) => (Channel::Docs, frame),
                None => return,
            },
            frame = queues.blobs.recv(), if blobs_open => match frame {
                Some(frame) => (Channel::Blobs, frame),
                None => {
                    blobs_open = false;
                    continue;
                }
            },
            () = keep_alive => (Channel::KeepAlive, Vec::new()),
        };
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let header = transport::tcp::record_header(channel, len);
        if send.write_all(&header).await.is_err() || send.write_all(&frame).await.is_err() {
            return;
        }
        match channel {
            Channel::Docs => queues.docs_queued.fetch_sub(frame.len(), Ordering::Relaxed),
            Channel::Blobs => queues
                .blobs_queued
                .fetch_sub(frame.len(), Ordering::Relaxed),
            Channel::KeepAlive => 0,
        };
        if queues.docs.is_empty() && queues.blobs.is_empty() && send.flush().await.is_err() {
            return;
        }
    }
}

/// Reads records and hands their frames on, until the stream ends, a record is refused, or
/// nothing is heard for [`transport::IDLE_TIMEOUT_MS`].
async fn read_records<R: AsyncRead + Unpin>(recv: R, reader: &Reader<'_>) {
    let mut recv = tokio::io::BufReader::new(recv);
    let idle = Duration::from_millis(transport::IDLE_TIMEOUT_MS);
    loop {
        let header = tokio::time::timeout(idle, transport::tcp::read_record_header(&mut recv));
        let (channel, len) = match header.await {
            Ok(Ok(Some(header))) => header,
            Ok(Ok(None)) => {
                warn!(peer = %reader.identity, "a record of an unknown channel; closing");
                return;
            }
            Ok(Err(_)) => return,
            Err(_) => {
                info!(peer = %reader.identity, "nothing heard over TCP within the idle timeout; closing");
                return;
            }
        };
        // Within a record, a link that died is noticed by TCP's keep-alive
        // (`transport::tcp`): waiting on the inbox budgets is not idleness.
        // One stream carries both: a peer's blob budget spent holds its documents back too
        // (over QUIC they have a stream of their own).
        let read = match channel {
            Channel::Docs => reader.doc_frame(&mut recv, len).await,
            Channel::Blobs => reader.blob_frame(&mut recv, len).await,
            Channel::KeepAlive if len == 0 => Ok(()),
            Channel::KeepAlive => Err(Stop::TooLarge),
        };
        if read.is_err() {
            return;
        }
    }
}

/// The documents `records` change, each once.
fn changed(records: &[Persist]) -> Vec<DocId> {
    let docs: std::collections::BTreeSet<DocId> = records
        .iter()
        .filter_map(|r| match r {
            Persist::Changes { doc, .. } => Some(*doc),
            _ => None,
        })
        .collect();
    docs.into_iter().collect()
}

/// Moves the engine's outputs into records to persist and actions to take after; true when
/// the engine closed a connection.
fn drain(engine: &mut Engine, records: &mut Vec<Persist>, actions: &mut Vec<Output>) -> bool {
    let mut closed = false;
    while let Some(output) = engine.poll_output() {
        match output {
            Output::Persist(p) => records.push(p),
            other => {
                closed |= matches!(other, Output::Close { .. });
                actions.push(other);
            }
        }
    }
    closed
}

/// After a frame was handled: handles the frames already waiting in `inbox` behind it, up to
/// [`BATCH_FRAMES_MAX`] in the batch, their outputs drained into `records` and `actions`. Stops
/// at the first event that is not a frame, and returns it to start the next batch; as soon as
/// the engine closes a connection, so that nothing more is handled before the loop tells the
/// engine the peer is gone, as it would have without the batch; and once the outputs hold
/// [`BATCH_BYTES_MAX`].
fn handle_queued_frames(
    engine: &mut Engine,
    inbox: &std_mpsc::Receiver<Event>,
    records: &mut Vec<Persist>,
    actions: &mut Vec<Output>,
) -> Option<Event> {
    // The bytes the batch's outputs hold, counted as they are drained.
    let mut held = output_bytes(records, actions);
    let mut ends_batch =
        |engine: &mut Engine, records: &mut Vec<Persist>, actions: &mut Vec<Output>| {
            let from = (records.len(), actions.len());
            let closed = drain(engine, records, actions);
            held += output_bytes(&records[from.0..], &actions[from.1..]);
            closed || held >= BATCH_BYTES_MAX
        };
    if ends_batch(engine, records, actions) {
        return None;
    }
    for _ in 1..BATCH_FRAMES_MAX {
        match inbox.try_recv() {
            Ok(Event::Frame { peer, bytes, .. }) => {
                engine.handle(
                    now_ms(),
                    Input::Received {
                        peer,
                        bytes: &bytes,
                    },
                );
                if ends_batch(engine, records, actions) {
                    return None;
                }
            }
            Ok(other) => return Some(other),
            Err(_) => return None,
        }
    }
    None
}

/// The bytes of frames to send and changes to write among `records` and `actions`.
fn output_bytes(records: &[Persist], actions: &[Output]) -> usize {
    let sends: usize = actions
        .iter()
        .map(|a| match a {
            Output::Send { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum();
    let changes: usize = records
        .iter()
        .map(|r| match r {
            Persist::Changes { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum();
    sends + changes
}

/// What [`NodeHandle::failed`] waits for: the reason the engine thread published, or never,
/// when it ended without one (told to stop).
async fn failure(mut failed: tokio::sync::watch::Receiver<Option<String>>) -> String {
    match failed.wait_for(Option::is_some).await {
        Ok(why) => why.clone().unwrap_or_default(),
        Err(_) => std::future::pending().await,
    }
}

/// Runs [`engine_loop`]; says why when it stopped by itself: the store refused a batch, or the
/// engine or the application panicked (either way the process must end and start again from
/// the disk, not stay up with no engine). `None` when it was told to stop.
fn engine_thread(
    engine: Engine,
    store: Store,
    reactor: Reactor,
    planner: BlobPlanner,
    blobs: std_mpsc::Sender<BlobEvent>,
    inbox: std_mpsc::Receiver<Event>,
) -> Option<String> {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        engine_loop(engine, store, reactor, planner, blobs, inbox)
    }));
    match ran {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the engine thread panicked (its message is in the log above)".into()),
    }
}

/// The engine thread: handles events in batches, each persisted in one durable transaction
/// before anything of it is sent or acknowledged. Returns when told to stop or when every
/// sender is gone; fails when the store refuses a batch (see the comment there).
fn engine_loop(
    mut engine: Engine,
    store: Store,
    mut reactor: Reactor,
    mut planner: BlobPlanner,
    blobs: std_mpsc::Sender<BlobEvent>,
    inbox: std_mpsc::Receiver<Event>,
) -> Result<(), StoreError> {
    let mut writers: std::collections::HashMap<PeerId, Outbox> = Default::default();
    // An event a batch of frames stopped at: the next batch starts with it.
    let mut next: Option<Event> = None;
    loop {
        let wait = engine
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(u64::try_from((t - now_ms()).max(0)).unwrap_or(0))
            });
        let event = match next.take() {
            Some(event) => Some(event),
            None => match inbox.recv_timeout(wait) {
                Ok(event) => Some(event),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            },
        };
        // Persist first, in one durable transaction; only then send and acknowledge.
        let mut records: Vec<Persist> = Vec::new();
        let mut actions: Vec<Output> = Vec::new();
        let mut reply_change = None;
        let mut reply_call: Option<Reply> = None;
        match event {
            None => engine.handle(now_ms(), Input::Tick),
            Some(Event::Stop) => return Ok(()),
            Some(Event::Connected {
                peer,
                identity,
                wire,
                link,
                writer,
            }) => {
                writers.insert(peer, writer);
                engine.handle(
                    now_ms(),
                    Input::Connected {
                        peer,
                        identity,
                        wire,
                        link,
                    },
                );
            }
            Some(Event::Frame { peer, bytes, .. }) => {
                engine.handle(
                    now_ms(),
                    Input::Received {
                        peer,
                        bytes: &bytes,
                    },
                );
                next = handle_queued_frames(&mut engine, &inbox, &mut records, &mut actions);
            }
            Some(Event::Disconnected { peer }) => {
                writers.remove(&peer);
                engine.handle(now_ms(), Input::Disconnected { peer });
            }
            Some(Event::Change { doc, change, reply }) => {
                match engine.change(now_ms(), doc, change) {
                    Ok(()) => reply_change = Some(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Some(Event::Call(job)) => reply_call = Some(job(&mut engine, now_ms())),
            Some(Event::Read { doc, reply }) => {
                let _ = reply.send(engine.doc(&doc).map(automerge::Automerge::save));
            }
            Some(Event::Status { reply }) => {
                let stats = engine.stats();
                let _ = reply.send(NodeStatus {
                    identity: engine.identity().to_string(),
                    peers: engine.peers().map(ToString::to_string).collect(),
                    docs: engine
                        .doc_ids()
                        .map(|d| {
                            (
                                d.to_string(),
                                engine.doc(d).map_or(0, |x| x.get_heads().len()),
                            )
                        })
                        .collect(),
                    quarantined: stats.messages_quarantined,
                    frames_sent: stats.frames_sent,
                    bytes_sent: stats.bytes_sent,
                });
            }
        }
        drain(&mut engine, &mut records, &mut actions);
        // What the application does by itself goes into the same batch.
        let docs = changed(&records);
        if !docs.is_empty() && reactor(&mut engine, &docs, now_ms()) {
            drain(&mut engine, &mut records, &mut actions);
        }
        let stored = store.apply(&records);
        if let Some(reply) = reply_change {
            let _ = reply.send(stored.as_ref().map(|_| ()).map_err(ToString::to_string));
        }
        if let Some(reply) = reply_call {
            reply(stored.as_ref().map(|_| ()));
        }
        // The store refused the batch: nothing of it is sent or acknowledged, but the engine
        // already holds it in memory (applied, its heads counted as saved), and a later batch
        // would offer it to peers though its user was told it was not saved. So the engine
        // stops here; the node ends and starts again from what is durable, and peers send
        // again what they sent in the batch.
        if let Err(e) = &stored {
            tracing::error!(error = %e, "the store refused a write; nothing of the batch is sent or acknowledged, and the engine stops");
        }
        stored?;
        let changed_now = changed(&records);
        if !changed_now.is_empty() {
            let plans = planner(&engine, &changed_now);
            if !plans.is_empty() {
                let _ = blobs.send(BlobEvent::Plan(plans));
            }
        }
        for action in actions {
            match action {
                Output::Send { peer, bytes } => {
                    if route(&writers, peer, bytes) == Routed::TooSlow {
                        warn!(peer, "a peer reads too slowly; disconnecting it");
                        if let Some(w) = writers.remove(&peer) {
                            w.close("reads too slowly");
                        }
                        engine.handle(now_ms(), Input::Disconnected { peer });
                    }
                }
                Output::Close { peer, reason } => {
                    warn!(peer, %reason, "closing a connection");
                    if let Some(w) = writers.remove(&peer) {
                        w.close(&reason.to_string());
                    }
                    engine.handle(now_ms(), Input::Disconnected { peer });
                }
                Output::Persist(_) => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;

    /// Failed rounds back off 0.5 s, 1 s, 1 s…; a connection that ends at once is dialled again
    /// after 1 s, 2 s, 4 s… up to 30 s, through failed rounds between; one that lasted is
    /// dialled again at once and forgets the short-lived delay.
    #[test]
    fn a_connection_that_ends_at_once_is_dialled_again_ever_later() {
        let mut r = Redial::new(1);
        assert_eq!(
            [r.after_failure(), r.after_failure(), r.after_failure()],
            [500, 1_000, 1_000]
        );
        let short: Vec<u64> = (0..7).map(|_| r.after_connection(0, 200)).collect();
        assert_eq!(short, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(r.after_failure(), 500);
        assert_eq!(r.after_connection(0, 9_999), 30_000);
        assert_eq!(r.after_connection(0, 10_000), 0);
        assert_eq!(r.after_connection(0, 10), 1_000);
        // The only upstream is never passed over.
        assert!(!r.passes_over(0));
    }

    /// A hub whose connections keep ending at once is passed over once every three of them,
    /// so the node reaches the РЦОИ after it; one steady connection starts the count again.
    #[test]
    fn an_upstream_whose_connections_end_at_once_is_passed_over_for_the_next() {
        let mut r = Redial::new(2);
        for _ in 0..2 {
            assert!(!r.passes_over(0));
            r.after_connection(0, 100);
        }
        assert!(!r.passes_over(0));
        r.after_connection(0, 100);
        assert!(r.passes_over(0), "the third in a row");
        assert!(!r.passes_over(0), "tried again in the round after");
        for _ in 0..2 {
            r.after_connection(0, 100);
        }
        r.after_connection(0, 60_000);
        r.after_connection(0, 100);
        assert!(
            !r.passes_over(0),
            "a steady connection started the count again"
        );
        // The last upstream has none after it.
        for _ in 0..5 {
            r.after_connection(1, 100);
        }
        assert!(!r.passes_over(1));
    }

    fn outbox() -> (Outbox, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (frames, written) = mpsc::unbounded_channel::<Vec<u8>>();
        let outbox = Outbox {
            frames,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            connection: None,
        };
        (outbox, written)
    }

    /// A frame the engine made for a connection that has since ended is dropped; the node's
    /// next connection (a new peer id) gets only what is made for it.
    #[test]
    fn a_frame_made_for_a_closed_connection_never_reaches_its_successor() {
        let mut writers = std::collections::HashMap::new();
        let (first, mut first_written) = outbox();
        writers.insert(7, first);
        assert_eq!(
            route(&writers, 7, b"for the first".to_vec()),
            Routed::Queued
        );
        // The connection ends; the same node connects again, as peer 8.
        writers.remove(&7);
        let (second, mut second_written) = outbox();
        writers.insert(8, second);
        assert_eq!(
            route(&writers, 7, b"late, for the first".to_vec()),
            Routed::Ended
        );
        assert_eq!(
            route(&writers, 8, b"for the second".to_vec()),
            Routed::Queued
        );
        assert_eq!(first_written.try_recv().unwrap(), b"for the first");
        assert_eq!(second_written.try_recv().unwrap(), b"for the second");
        assert!(
            second_written.try_recv().is_err(),
            "nothing else reached the second"
        );
    }

    /// A school's engine with its МОУО hub connected as peer 1 (certificates by the stand-in
    /// CA: what is tested is the loop's batching).
    fn school_with_hub() -> Engine {
        use giasync_shared::codes::{MunicipalityCode, OrgCode, RegionCode, SchoolCode};
        let ca = giasync_shared::sync::FixedCa::default();
        let region = RegionCode::new("42").unwrap();
        let m = MunicipalityCode::new("4201").unwrap();
        let school = NodeIdentity {
            region,
            org: OrgCode::School(SchoolCode::new("420101").unwrap()),
            municipality: Some(m),
        };
        let hub = NodeIdentity {
            region,
            org: OrgCode::Municipality(m),
            municipality: Some(m),
        };
        let key = SigningKey::from_bytes(&[7; 32]);
        let cert = ca.issue(school, &key);
        let mut engine = Engine::new(school, key, cert, Box::new(ca));
        engine.handle(
            0,
            Input::Connected {
                peer: 1,
                identity: hub,
                wire: giasync_shared::sync::wire::WIRE_VERSION,
                link: Link::Quic,
            },
        );
        while engine.poll_output().is_some() {}
        engine
    }

    /// A frame from peer 1 as the engine thread gets it.
    fn frame(bytes: Vec<u8>, budget: &Arc<Semaphore>) -> Event {
        Event::Frame {
            peer: 1,
            bytes,
            _budget: (
                budget.clone().try_acquire_owned().unwrap(),
                budget.clone().try_acquire_owned().unwrap(),
            ),
        }
    }

    /// A well-formed frame from the hub: the summary of an empty store.
    fn summary() -> Vec<u8> {
        giasync_shared::sync::wire::Frame::Summary {
            digest: [0; 32],
            docs: 0,
        }
        .encode()
    }

    /// The engine thread's inbox.
    type Inbox = std_mpsc::Receiver<Event>;

    /// An inbox holding `events`, in order, and its sender (to queue more).
    fn queued(events: impl IntoIterator<Item = Event>) -> (std_mpsc::Sender<Event>, Inbox) {
        let (sender, inbox) = std_mpsc::channel();
        for event in events {
            sender.send(event).unwrap();
        }
        (sender, inbox)
    }

    /// `n` summaries from the hub.
    fn summaries(n: usize, budget: &Arc<Semaphore>) -> Vec<Event> {
        (0..n).map(|_| frame(summary(), budget)).collect()
    }

    /// [`handle_queued_frames`] from empty outputs: the event it stopped at and the outputs.
    fn batch(engine: &mut Engine, inbox: &Inbox) -> (Option<Event>, Vec<Persist>, Vec<Output>) {
        let (mut records, mut actions) = (Vec::new(), Vec::new());
        let next = handle_queued_frames(engine, inbox, &mut records, &mut actions);
        (next, records, actions)
    }

    /// A local change writing a note into the school's protocol, answered on `reply`.
    fn note(reply: oneshot::Sender<Result<(), String>>) -> Event {
        Event::Change {
            doc: "protocol/4201/420101/is-2024-02-14".parse().unwrap(),
            change: Box::new(|tx: &mut Transaction<'_>| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "note", "an entry").map(|_| ())
            }),
            reply,
        }
    }

    /// The school's engine loop on its own thread, over `store` and `inbox`, with `reactor`
    /// and no blobs.
    fn spawn_loop(
        store: Store,
        inbox: Inbox,
        reactor: Reactor,
    ) -> std::thread::JoinHandle<Result<(), StoreError>> {
        let engine = school_with_hub();
        std::thread::spawn(move || {
            let (blobs, _planned) = std_mpsc::channel();
            engine_loop(
                engine,
                store,
                reactor,
                Box::new(|_, _| Vec::new()),
                blobs,
                inbox,
            )
        })
    }

    /// The frames waiting behind the first go into its batch, up to the first other event,
    /// which is handed back to start the next batch; what follows it stays queued.
    #[test]
    fn a_batch_takes_the_frames_queued_up_to_the_next_other_event() {
        let budget = Arc::new(Semaphore::new(1_000));
        let mut events = summaries(3, &budget);
        events.push(Event::Status {
            reply: oneshot::channel().0,
        });
        events.push(frame(summary(), &budget));
        let (_sender, inbox) = queued(events);
        let mut engine = school_with_hub();
        let (next, _, _) = batch(&mut engine, &inbox);
        assert!(
            matches!(next, Some(Event::Status { .. })),
            "stopped at the status"
        );
        assert_eq!(engine.stats().frames_received, 3);
        // Each handled frame gave its share of the inbox budgets back; the one queued holds its.
        assert_eq!(budget.available_permits(), 1_000 - 2);
        assert!(matches!(inbox.try_recv(), Ok(Event::Frame { .. })));
        assert!(inbox.try_recv().is_err(), "nothing else was queued");
    }

    /// A batch holds at most `BATCH_FRAMES_MAX` frames: the loop handles the first, then this
    /// takes at most `BATCH_FRAMES_MAX - 1` from the queue (here called with none handled
    /// before it, so 255 of 300 are handled and 45 stay queued).
    #[test]
    fn a_batch_holds_at_most_batch_frames_max() {
        let budget = Arc::new(Semaphore::new(10_000));
        let (_sender, inbox) = queued(summaries(300, &budget));
        let mut engine = school_with_hub();
        assert!(batch(&mut engine, &inbox).0.is_none());
        assert_eq!(engine.stats().frames_received, 255);
        assert_eq!(inbox.try_iter().count(), 45);
    }

    /// Once the engine closes a connection (a frame broke the protocol), the batch ends: the
    /// frames behind it wait until the loop has told the engine the peer is gone.
    #[test]
    fn a_batch_ends_when_the_engine_closes_a_connection() {
        let budget = Arc::new(Semaphore::new(1_000));
        let (_sender, inbox) = queued([
            frame(summary(), &budget),
            frame(vec![0xff; 8], &budget),
            frame(summary(), &budget),
            frame(summary(), &budget),
        ]);
        let mut engine = school_with_hub();
        let (next, _, actions) = batch(&mut engine, &inbox);
        assert!(next.is_none());
        assert_eq!(engine.stats().frames_received, 2);
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Output::Close { peer: 1, .. })),
            "{actions:?}"
        );
        assert_eq!(inbox.try_iter().count(), 2);
    }

    /// A frame that broke the protocol ends its batch at once: nothing queued is taken.
    #[test]
    fn a_batch_whose_first_frame_closed_a_connection_takes_nothing_more() {
        let budget = Arc::new(Semaphore::new(1_000));
        let (_sender, inbox) = queued(summaries(1, &budget));
        let mut engine = school_with_hub();
        engine.handle(
            0,
            Input::Received {
                peer: 1,
                bytes: &[0xff; 8],
            },
        );
        assert!(batch(&mut engine, &inbox).0.is_none());
        assert_eq!(engine.stats().frames_received, 1);
        assert_eq!(inbox.try_iter().count(), 1);
    }

    /// A batch whose outputs already hold `BATCH_BYTES_MAX` takes no more frames: its sends are
    /// counted against the peers' outboxes only after the commit.
    #[test]
    fn a_batch_ends_once_its_outputs_hold_batch_bytes_max() {
        let budget = Arc::new(Semaphore::new(1_000));
        let (sender, inbox) = queued(summaries(1, &budget));
        let mut engine = school_with_hub();
        let mut records = Vec::new();
        let mut actions = vec![Output::Send {
            peer: 1,
            bytes: vec![0; BATCH_BYTES_MAX - 1],
        }];
        handle_queued_frames(&mut engine, &inbox, &mut records, &mut actions);
        assert_eq!(engine.stats().frames_received, 1, "one byte short: taken");
        sender.send(frame(summary(), &budget)).unwrap();
        actions.push(Output::Send {
            peer: 1,
            bytes: vec![0; 1],
        });
        handle_queued_frames(&mut engine, &inbox, &mut records, &mut actions);
        assert_eq!(engine.stats().frames_received, 1, "full: nothing taken");
        assert_eq!(inbox.try_iter().count(), 1);
    }

    /// The event a batch of frames stopped at starts the next batch: a status queued behind
    /// three frames is answered (were it dropped, its reply would never come), and the stop
    /// behind it ends the loop.
    #[test]
    fn the_event_a_batch_stopped_at_is_handled_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let budget = Arc::new(Semaphore::new(1_000));
        // Queued before the loop starts, so the first frame's batch finds the rest waiting.
        let mut events = summaries(3, &budget);
        let (reply, status) = oneshot::channel();
        events.extend([Event::Status { reply }, Event::Stop]);
        let (_sender, inbox) = queued(events);
        let running = spawn_loop(store, inbox, Box::new(|_, _, _| false));
        let status = status.blocking_recv().expect("the status was answered");
        assert_eq!(status.peers.len(), 1, "{status:?}");
        assert!(running.join().unwrap().is_ok(), "stopped on purpose");
    }

    /// A disk that refuses every write once `full` is set (a full or failing disk).
    #[derive(Debug)]
    struct Refusing {
        disk: redb::backends::InMemoryBackend,
        full: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Refusing {
        fn check(&self) -> Result<(), std::io::Error> {
            if self.full.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("no space left on device"));
            }
            Ok(())
        }
    }

    impl redb::StorageBackend for Refusing {
        fn len(&self) -> Result<u64, std::io::Error> {
            self.disk.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            self.disk.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            self.check()?;
            self.disk.set_len(len)
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            self.check()?;
            self.disk.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            self.check()?;
            self.disk.write(offset, data)
        }
    }

    /// When the store refuses a batch, the engine thread answers that it was not saved and
    /// stops, failing: what it holds in memory is ahead of the disk. Nothing queued behind is
    /// handled (the status gets no answer).
    #[test]
    fn the_engine_thread_stops_when_the_store_refuses_a_batch() {
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = Store::open_with_backend(Refusing {
            disk: redb::backends::InMemoryBackend::new(),
            full: full.clone(),
        })
        .unwrap();
        let (saved, answer) = oneshot::channel();
        let (reply, status) = oneshot::channel();
        // No sender left: a loop that went on past the refusal would end without failing.
        let (_, inbox) = queued([note(saved), Event::Status { reply }]);
        full.store(true, Ordering::SeqCst);
        let running = spawn_loop(store, inbox, Box::new(|_, _, _| false));
        let answer = answer.blocking_recv().unwrap();
        assert!(answer.is_err(), "the change was not saved: {answer:?}");
        assert!(running.join().unwrap().is_err(), "the engine thread failed");
        assert!(status.blocking_recv().is_err(), "nothing after the refusal");
    }

    /// A panic on the engine thread (here in the application's reactor) is reported as a
    /// failure, so the process ends rather than staying up with no engine.
    #[test]
    fn a_panic_on_the_engine_thread_is_a_failure() {
        let store = Store::open_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let (_, inbox) = queued([note(oneshot::channel().0)]);
        let (blobs, _planned) = std_mpsc::channel();
        let why = engine_thread(
            school_with_hub(),
            store,
            Box::new(|_, _, _| panic!("a reactor that fails")),
            Box::new(|_, _| Vec::new()),
            blobs,
            inbox,
        );
        assert!(why.is_some_and(|w| w.contains("panicked")));
    }

    /// A stop is not a failure; a published reason is, and is waited for.
    #[test]
    fn failure_waits_for_a_reason_and_not_for_a_stop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (failing, failed) = tokio::sync::watch::channel(None);
            failing.send(Some("disk full".to_string())).unwrap();
            drop(failing);
            assert_eq!(failure(failed).await, "disk full");
            let (stopping, stopped) = tokio::sync::watch::channel::<Option<String>>(None);
            drop(stopping);
            let waited = tokio::time::timeout(Duration::from_millis(50), failure(stopped)).await;
            assert!(waited.is_err(), "a stop never reads as a failure");
        });
    }

    /// Hardening item 5: frames for a peer that reads nothing pile up only to
    /// `PEER_OUTBOX_BYTES_MAX`; the next is refused (and the engine loop then disconnects the
    /// peer). Once the writer has written some, there is room again.
    #[test]
    fn a_peer_that_does_not_read_is_queued_for_only_so_much() {
        let (frames, mut written) = mpsc::unbounded_channel::<Vec<u8>>();
        let outbox = Outbox {
            frames,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            connection: None,
        };
        let frame_bytes = giasync_shared::sync::wire::FRAGMENT_BYTES;
        let mut accepted = 0usize;
        while outbox.send(vec![0; frame_bytes]).is_ok() {
            accepted += frame_bytes;
            assert!(accepted <= 64 * 1024 * 1024, "queued past 64 MiB");
        }
        assert!(
            accepted + frame_bytes > 64 * 1024 * 1024,
            "refused early: {accepted}"
        );
        // The writer task writes one frame and gives its bytes back.
        let frame = written.try_recv().unwrap();
        outbox
            .queued_bytes
            .fetch_sub(frame.len(), Ordering::Relaxed);
        assert!(outbox.send(vec![0; frame_bytes]).is_ok());
    }
}
