//! The blob thread: runs the sans-IO blob transfers ([`giasync_shared::blob::transfer`]) with
//! the node's blob store ([`crate::blobs`]) and each connection's blob stream, beside the engine
//! thread, so reading, checking and syncing recordings to disk never holds up a document.
//!
//! - Each connection carries a second unidirectional stream each way for blobs, at a lower QUIC
//!   priority than the documents' stream ([`BLOB_STREAM_PRIORITY`]): quinn sends what is queued
//!   on the documents' stream first, so a sheet signed while audio is queued leaves at once.
//! - What to fetch comes from the application ([`BlobPlan`], made after each batch of changes).
//! - Pieces are written as they arrive and committed (file synced, then the bits) once per turn
//!   of the loop; a blob whose pieces are all committed is finished, made visible, and reported
//!   ([`OnComplete`]: the РЦОИ receipts it).
//! - A node may cap what it sends of blobs ([`BlobRate`], `[node] audio_kbit_s`), so a school's
//!   thin link keeps room for everything else.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use giasync_shared::blob::transfer::{BlobOutput, Transfers};
use giasync_shared::blob::wire::BlobFrame;
use giasync_shared::blob::{BlobHash, BlobRef};
use giasync_shared::sync::{DocId, NodeIdentity, PeerId};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::blobs::{BlobStore, Opened, Partials, Prepared};
use crate::run::{Outbox, now_ms};

/// The blob stream's QUIC priority; the documents' stream has quinn's default, 0.
pub const BLOB_STREAM_PRIORITY: i32 = -8;
/// The first bytes a blob stream carries, so it is never taken for the documents' stream.
pub const BLOB_STREAM_MAGIC: &[u8; 4] = b"GSB1";
/// Events handled before the pieces written are committed.
const EVENTS_PER_TURN_MAX: usize = 256;
/// Pieces written are committed (synced, then marked) once this many wait, or
/// [`COMMIT_INTERVAL_MS`] after the first: a commit per piece would cap a fetch at the disk's
/// syncs a second. A crash loses at most these, which are asked for again.
const COMMIT_PIECES_MAX: usize = 64;
const COMMIT_INTERVAL_MS: u64 = 50;
/// Pieces asked by one peer and not yet served; beyond, its asks are dropped.
const SERVES_PER_PEER_MAX: usize = 2 * giasync_shared::blob::transfer::PIECES_IN_FLIGHT_PER_PEER;
/// How long the loop waits before trying again a peer whose queue to the network is full.
const BLOCKED_RETRY_MS: u64 = 20;
/// Encoded pieces queued for one peer and not yet written; more asked of it wait.
const PEER_QUEUED_BYTES_MAX: usize = 8 * 1024 * 1024;

/// What the application says about a blob a document names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobPlan {
    pub blob: BlobRef,
    /// A document that names it: peers that may read it may be given the blob.
    pub doc: DocId,
    /// Whether this node should fetch it (a hub, until the РЦОИ receipts it).
    pub fetch: bool,
    /// Whether this node keeps its copy: a МОУО, a relay, drops it once the РЦОИ holds it.
    pub keep: bool,
    /// Whether `doc` still names it: `false` once a re-check's grant ended
    /// (`giasync_shared::recheck`), so peers that read only `doc` are given it no more.
    pub named: bool,
}

/// Reports a blob made whole here, with the documents naming it.
pub type OnComplete = Box<dyn Fn(BlobRef, Vec<DocId>) + Send>;

/// Told why the blob thread stopped by itself: the disk refused to make pieces durable.
pub type OnFailure = Box<dyn FnOnce(String) + Send>;

/// The most bytes a second this node sends of blobs; `None`: as fast as the link goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRate(pub Option<u64>);

/// What the blob thread stands at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobStatus {
    pub held: usize,
    pub held_bytes: u64,
    pub wanted: usize,
    pub wanted_bytes_left: u64,
    pub pieces_received: u64,
    pub pieces_refused: u64,
    pub pieces_served: u64,
    /// Pieces this node sent (asked for and read from its store).
    pub pieces_sent: u64,
    /// Bytes received in the last minute, a second.
    pub rate_bytes_s: u64,
}

pub(crate) enum BlobEvent {
    Connected {
        peer: PeerId,
        identity: NodeIdentity,
        writer: Outbox,
    },
    Frame {
        peer: PeerId,
        bytes: Vec<u8>,
        /// Its share of the peer's blob inbox, given back once handled.
        _budget: tokio::sync::OwnedSemaphorePermit,
    },
    Disconnected {
        peer: PeerId,
    },
    Plan(Vec<BlobPlan>),
    Keep {
        prepared: Prepared,
        reply: oneshot::Sender<Result<BlobRef, String>>,
    },
    /// Delete these blobs (their keeping period is over).
    Destroy {
        hashes: Vec<BlobHash>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Status(oneshot::Sender<BlobStatus>),
    Stop,
}

/// Sends and paces what the transfers ask to send.
struct Pacer {
    rate: Option<u64>,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    fn refill(&mut self) {
        if let Some(rate) = self.rate {
            let now = Instant::now();
            let gained = now.duration_since(self.last).as_secs_f64() * rate as f64;
            // At most a second's worth saved up.
            self.tokens = (self.tokens + gained).min(rate as f64);
            self.last = now;
        }
    }

    /// Whether `bytes` may go now; if so they are counted.
    fn take(&mut self, bytes: usize) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill();
        if self.tokens >= 0.0 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    /// How long until something may go.
    fn wait(&self) -> Option<Duration> {
        let rate = self.rate?;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / rate.max(1) as f64))
    }
}

struct BlobLoop {
    store: BlobStore,
    transfers: Transfers,
    partials: Partials,
    writers: HashMap<PeerId, Outbox>,
    /// The documents naming each blob, for the completion report.
    named_in: HashMap<BlobHash, Vec<DocId>>,
    serves: VecDeque<(PeerId, BlobRef, u32)>,
    pacer: Pacer,
    completed: Vec<BlobRef>,
    on_complete: OnComplete,
    received: VecDeque<(Instant, u64)>,
    pieces_sent: u64,
    /// Blobs a piece of which failed to be written in this turn: not whole, whatever follows.
    failed: Vec<BlobHash>,
    /// Set when a peer's queue to the network was full at the last serve.
    blocked: bool,
    /// Blobs held whose completion was reported this session (the РЦОИ receipts what it holds
    /// once per session, also what it held before a restart or took from a bundle).
    reported: std::collections::HashSet<BlobHash>,
}

/// Starts the blob thread over `store` (with what opening it found). Should the disk refuse to
/// make written pieces durable, the thread stops and tells `on_failure` why: the node must stop
/// as it does when its store refuses a batch, not go on to count a blob held whose bytes may
/// not be on the disk.
pub(crate) fn start(
    store: BlobStore,
    opened: Opened,
    rate: BlobRate,
    on_complete: OnComplete,
    on_failure: OnFailure,
) -> std::io::Result<std_mpsc::Sender<BlobEvent>> {
    let (events, inbox) = std_mpsc::channel();
    let mut transfers = Transfers::new();
    let now = now_ms();
    info!(
        held = opened.held.len(),
        partial = opened.partial.len(),
        "blob store opened"
    );
    for blob in opened.held {
        transfers.hold(now, blob);
    }
    let partial = opened.partial;
    let mut state = BlobLoop::new(store, transfers, rate, on_complete);
    std::thread::Builder::new()
        .name("blobs".into())
        .spawn(move || {
            // Partial blobs resume once a document names them again (the first plan).
            let mut partial: HashMap<BlobHash, (BlobRef, Vec<u64>)> = partial
                .into_iter()
                .map(|(b, bits)| (b.hash, (b, bits)))
                .collect();
            if let Err(why) = state.run(&inbox, &mut partial) {
                on_failure(why);
            }
        })?;
    Ok(events)
}

impl BlobLoop {
    fn new(
        store: BlobStore,
        transfers: Transfers,
        rate: BlobRate,
        on_complete: OnComplete,
    ) -> Self {
        BlobLoop {
            store,
            transfers,
            partials: Partials::default(),
            writers: HashMap::new(),
            named_in: HashMap::new(),
            serves: VecDeque::new(),
            pacer: Pacer {
                rate: rate.0,
                tokens: 0.0,
                last: Instant::now(),
            },
            completed: Vec::new(),
            on_complete,
            received: VecDeque::new(),
            pieces_sent: 0,
            failed: Vec::new(),
            blocked: false,
            reported: std::collections::HashSet::new(),
        }
    }

    /// Runs until told to stop (`Ok`), or until the disk refuses to make pieces durable.
    fn run(
        &mut self,
        inbox: &std_mpsc::Receiver<BlobEvent>,
        partial: &mut HashMap<BlobHash, (BlobRef, Vec<u64>)>,
    ) -> Result<(), String> {
        loop {
            let mut wait = Duration::from_secs(3600);
            if let Some(t) = self.transfers.poll_timeout() {
                wait = wait.min(Duration::from_millis(
                    u64::try_from((t - now_ms()).max(0)).unwrap_or(0),
                ));
            }
            if !self.serves.is_empty() {
                let retry = if self.blocked {
                    Duration::from_millis(BLOCKED_RETRY_MS)
                } else {
                    Duration::ZERO
                };
                wait = wait.min(self.pacer.wait().unwrap_or(retry));
            }
            if let Some(since) = self.partials.pending_since() {
                let due = since + Duration::from_millis(COMMIT_INTERVAL_MS);
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            match inbox.recv_timeout(wait) {
                Ok(BlobEvent::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(());
                }
                Ok(event) => self.handle(event, partial),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            }
            for _ in 0..EVENTS_PER_TURN_MAX {
                match inbox.try_recv() {
                    Ok(BlobEvent::Stop) => return Ok(()),
                    Ok(event) => self.handle(event, partial),
                    Err(_) => break,
                }
            }
            if self.transfers.poll_timeout().is_some_and(|t| t <= now_ms()) {
                self.transfers.tick(now_ms());
            }
            self.outputs();
            self.serve();
            self.commit()?;
        }
    }

    fn handle(&mut self, event: BlobEvent, partial: &mut HashMap<BlobHash, (BlobRef, Vec<u64>)>) {
        let now = now_ms();
        match event {
            BlobEvent::Connected {
                peer,
                identity,
                writer,
            } => {
                self.writers.insert(peer, writer);
                self.transfers.connected(now, peer, identity);
            }
            BlobEvent::Frame { peer, bytes, .. } => {
                self.received
                    .push_back((Instant::now(), bytes.len() as u64));
                self.transfers.received(now, peer, &bytes);
            }
            BlobEvent::Disconnected { peer } => {
                self.writers.remove(&peer);
                self.serves.retain(|(p, _, _)| *p != peer);
                self.transfers.disconnected(now, peer);
            }
            BlobEvent::Plan(plans) => {
                for plan in plans {
                    let docs = self.named_in.entry(plan.blob.hash).or_default();
                    if !plan.named {
                        docs.retain(|d| *d != plan.doc);
                        self.transfers.unnamed(now, &plan.blob.hash, plan.doc);
                    } else if !docs.contains(&plan.doc) {
                        docs.push(plan.doc);
                    }
                    if plan.named {
                        self.transfers.named(now, plan.blob, plan.doc);
                    }
                    if plan.fetch
                        && self.transfers.holds(&plan.blob.hash)
                        && self.reported.insert(plan.blob.hash)
                    {
                        // Held already (before a restart, from a bundle, or before a
                        // document named it): reported as if just completed.
                        (self.on_complete)(plan.blob, vec![plan.doc]);
                    }
                    if plan.fetch {
                        let have = partial
                            .remove(&plan.blob.hash)
                            .filter(|(b, _)| *b == plan.blob)
                            .map_or_else(
                                || giasync_shared::blob::transfer::no_pieces(&plan.blob),
                                |(_, bits)| bits,
                            );
                        self.transfers.want(now, plan.blob, have);
                    } else if self.transfers.wants(&plan.blob.hash) {
                        self.transfers.unwant(now, &plan.blob.hash);
                    }
                    if !plan.keep && self.transfers.holds(&plan.blob.hash) {
                        self.transfers.release(&plan.blob.hash);
                        self.partials.close(&plan.blob.hash);
                        match self.store.remove(&plan.blob.hash) {
                            Ok(()) => {
                                info!(blob = %plan.blob.hash, "the РЦОИ holds it: the relay's copy dropped")
                            }
                            Err(e) => {
                                warn!(blob = %plan.blob.hash, error = %e, "the relay's copy not dropped")
                            }
                        }
                    }
                }
            }
            BlobEvent::Keep { prepared, reply } => {
                let kept = self.store.keep(prepared, now).map_err(|e| e.to_string());
                if let Ok(blob) = kept {
                    self.transfers.hold(now, blob);
                }
                let _ = reply.send(kept);
            }
            BlobEvent::Destroy { hashes, reply } => {
                let mut result = Ok(());
                for hash in hashes {
                    self.transfers.unwant(now, &hash);
                    self.transfers.release(&hash);
                    self.partials.close(&hash);
                    if let Err(e) = self.store.remove(&hash) {
                        result = Err(e.to_string());
                        break;
                    }
                }
                let _ = reply.send(result);
            }
            BlobEvent::Stop => {}
            BlobEvent::Status(reply) => {
                let s = self.transfers.stats();
                let minute = Instant::now().checked_sub(Duration::from_secs(60));
                while let Some((at, _)) = self.received.front() {
                    if minute.is_some_and(|m| *at < m) {
                        self.received.pop_front();
                    } else {
                        break;
                    }
                }
                let bytes: u64 = self.received.iter().map(|(_, b)| b).sum();
                let _ = reply.send(BlobStatus {
                    held: s.held,
                    held_bytes: s.held_bytes,
                    wanted: s.wanted,
                    wanted_bytes_left: s.wanted_bytes_left,
                    pieces_received: s.pieces_received,
                    pieces_refused: s.pieces_refused,
                    pieces_served: s.pieces_served,
                    pieces_sent: self.pieces_sent,
                    rate_bytes_s: bytes / 60,
                });
            }
        }
    }

    fn send(&mut self, peer: PeerId, frame: &BlobFrame) {
        if let Some(w) = self.writers.get(&peer) {
            let _ = w.send(frame.encode());
        }
    }

    fn outputs(&mut self) {
        let now = now_ms();
        self.failed.clear();
        while let Some(output) = self.transfers.poll_output() {
            match output {
                BlobOutput::Send { peer, frame } => self.send(peer, &frame),
                BlobOutput::Serve { peer, blob, index } => {
                    // An honest peer asks for at most PIECES_IN_FLIGHT_PER_PEER at a time; more
                    // is dropped (it asks again after its silence).
                    let queued = self.serves.iter().filter(|(p, _, _)| *p == peer).count();
                    if queued < SERVES_PER_PEER_MAX && !self.serves.contains(&(peer, blob, index)) {
                        self.serves.push_back((peer, blob, index));
                    }
                }
                BlobOutput::Store { blob, index, piece } => {
                    if let Err(e) = self
                        .store
                        .write_piece(&mut self.partials, &blob, index, &piece)
                    {
                        warn!(blob = %blob.hash, index, error = %e, "a piece was not written; asking again");
                        self.transfers.store_failed(now, &blob.hash, index);
                        // Not whole after all, whatever was queued after this piece.
                        self.completed.retain(|b| b.hash != blob.hash);
                        self.failed.push(blob.hash);
                    }
                }
                BlobOutput::Complete { blob } => {
                    if !self.failed.contains(&blob.hash) {
                        self.completed.push(blob);
                    }
                }
                BlobOutput::Refused { peer, hash, reason } => {
                    warn!(peer, blob = %hash, %reason, "blob frame refused");
                }
            }
        }
    }

    /// Serves what was asked, as the pace allows and as the peer reads.
    fn serve(&mut self) {
        self.blocked = false;
        // One pass over the queue: a peer that reads slowly keeps its pieces waiting, not the
        // other peers'.
        for _ in 0..self.serves.len() {
            let Some((peer, blob, index)) = self.serves.pop_front() else {
                return;
            };
            let Some(writer) = self.writers.get(&peer) else {
                continue;
            };
            if writer.queued() > PEER_QUEUED_BYTES_MAX {
                self.serves.push_back((peer, blob, index));
                self.blocked = true;
                continue;
            }
            let len = blob.piece(index).map_or(0, |(_, l)| l);
            if !self.pacer.take(len) {
                self.serves.push_front((peer, blob, index));
                return;
            }
            let frame = match self.store.encode_piece(&blob, index) {
                Ok(encoded) => {
                    self.pieces_sent += 1;
                    BlobFrame::Piece {
                        hash: blob.hash,
                        index,
                        encoded,
                    }
                }
                Err(e) => {
                    warn!(blob = %blob.hash, index, error = %e, "a held blob cannot be served");
                    BlobFrame::NotHeld { hash: blob.hash }
                }
            };
            self.send(peer, &frame);
        }
    }

    /// Commits the pieces written when enough wait, or long enough, or a blob is whole; then
    /// finishes the blobs now whole. A commit the disk refused stops the thread before any
    /// blob is finished: after a failed `fsync` the written bytes may never reach the disk
    /// (and a later `fsync` need not say so), so nothing of them may be counted held.
    fn commit(&mut self) -> Result<(), String> {
        let now = now_ms();
        let due = self
            .partials
            .pending_since()
            .is_some_and(|since| since.elapsed() >= Duration::from_millis(COMMIT_INTERVAL_MS));
        if !due && self.completed.is_empty() && self.partials.pending() < COMMIT_PIECES_MAX {
            return Ok(());
        }
        if let Err(e) = self.store.commit_pieces(&mut self.partials) {
            error!(error = %e, "the disk refused to make blob pieces durable; the node stops");
            return Err(format!("blob store: {e}"));
        }
        for blob in std::mem::take(&mut self.completed) {
            self.partials.close(&blob.hash);
            match self.store.finish(&blob, now) {
                Ok(()) => {
                    info!(blob = %blob.hash, bytes = blob.bytes, "blob held whole");
                    self.transfers.hold(now, blob);
                    self.reported.insert(blob.hash);
                    let docs = self.named_in.get(&blob.hash).cloned().unwrap_or_default();
                    (self.on_complete)(blob, docs);
                }
                Err(e) => {
                    warn!(blob = %blob.hash, error = %e, "a fetched blob did not finish; fetching it again");
                    if let Err(e) = self.store.restart(&blob) {
                        warn!(blob = %blob.hash, error = %e, "the partial blob not cleared");
                    }
                    self.transfers.unwant(now, &blob.hash);
                    self.transfers.want(
                        now,
                        blob,
                        giasync_shared::blob::transfer::no_pieces(&blob),
                    );
                }
            }
        }
        self.outputs();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use giasync_shared::blob;

    use super::*;

    /// Every piece of a blob written, then the disk refuses to sync them: the commit stops the
    /// thread with the reason, the blob is not reported whole, and the store, opened again,
    /// does not hold it (its pieces are fetched again).
    #[test]
    fn a_commit_the_disk_refuses_stops_the_thread_and_finishes_no_blob() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let db = Arc::new(redb::Database::create(dir.path().join("store.redb")).unwrap());
            BlobStore::open(db, &dir.path().join("store.blobs"), 1).unwrap()
        };
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut outboard = Vec::new();
        let whole = blob::outboard(&data[..], data.len() as u64, &mut outboard).unwrap();
        assert!(whole.pieces() > 1);
        let (store, _) = open();
        let reported = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&reported);
        let mut state = BlobLoop::new(
            store,
            Transfers::new(),
            BlobRate(None),
            Box::new(move |_, _| {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        );
        for i in 0..whole.pieces() {
            let encoded = blob::encode_piece(whole, &data[..], &outboard[..], i).unwrap();
            let piece = blob::verify_piece_with_hashes(whole, i, &encoded).unwrap();
            state
                .store
                .write_piece(&mut state.partials, &whole, i, &piece)
                .unwrap();
        }
        state.completed.push(whole);
        state.partials.refuse_sync(&whole.hash);

        let why = state.commit().unwrap_err();
        assert!(why.starts_with("blob store:"), "{why}");
        assert_eq!(reported.load(Ordering::SeqCst), 0, "nothing reported whole");
        drop(state);
        let (_, opened) = open();
        assert!(opened.held.is_empty(), "the blob is not held");
    }
}
