//! Who fetches which piece of which blob from whom: a sans-IO state machine beside the document
//! engine, driven by the node (quinn, files) and the simulator alike.
//!
//! Blobs move by pull. A node is told what it **wants** (a hub: the recordings its documents
//! name and the РЦОИ has not receipted) and what it **holds** whole; it asks a connected peer
//! that may read a document naming the blob for up to [`PIECES_IN_FLIGHT_PER_PEER`] pieces at a
//! time, checks each piece against the blob's name as it arrives ([`super::verify_piece`]) and
//! hands it to the driver to store. A piece that fails is refused, audited and asked for again;
//! a peer that sends [`BAD_PIECES_MAX`] bad pieces of a blob is not asked for it again this
//! session. Asked for a blob, a node gives it only when it holds it whole and the asking peer
//! may read a document that names it ([`DocId::readable_by`]); otherwise it says so, and says
//! again once it holds it. A break loses only the pieces in flight: what is stored stays.
//!
//! Blobs are moved on a stream of their own, which the driver gives a lower priority than the
//! documents' stream: a sheet never waits behind a recording.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::wire::{BlobFrame, WANT_PIECES_MAX};
use super::{BlobError, BlobHash, BlobRef, Piece, verify_piece_with_hashes};
use crate::sync::{DocId, NodeIdentity, PeerId};

/// Pieces asked of one peer and not yet arrived: 4 MiB, enough to keep a fast link busy; what
/// a break loses at most, with the piece being written.
pub const PIECES_IN_FLIGHT_PER_PEER: usize = 16;
/// Blobs fetched from one peer at once.
pub const BLOBS_ACTIVE_PER_PEER: usize = 2;
/// A peer that was asked for pieces and sent none for this long is not asked for those blobs
/// again this session (a live but stuck peer; a dead one is noticed by QUIC's idle timeout).
pub const SOURCE_SILENT_MS: i64 = 120_000;
/// Bad pieces of one blob a peer may send before it is not asked for that blob again.
pub const BAD_PIECES_MAX: u32 = 3;
/// Blobs a peer asked for and this node did not hold, remembered to tell it once held.
pub const ASKED_UNHELD_PER_PEER_MAX: usize = 4096;

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutput {
    /// Send a frame on the peer's blob stream.
    Send { peer: PeerId, frame: BlobFrame },
    /// Read piece `index` of the held blob, encode it ([`super::encode_piece`]) and send it as
    /// [`BlobFrame::Piece`]; if the copy held fails its check, send [`BlobFrame::NotHeld`].
    Serve {
        peer: PeerId,
        blob: BlobRef,
        index: u32,
    },
    /// Write a checked piece and the hash pairs that proved it (at their places in the blob's
    /// outboard); report a failed write with [`Transfers::store_failed`].
    Store {
        blob: BlobRef,
        index: u32,
        piece: super::Piece,
    },
    /// Every piece of the blob was handed to the driver: make it whole (see the node's blob
    /// store), then call [`Transfers::hold`].
    Complete { blob: BlobRef },
    /// A peer sent something refused: for the audit log.
    Refused {
        peer: PeerId,
        hash: BlobHash,
        reason: String,
    },
}

#[derive(Debug)]
struct Peer {
    identity: NodeIdentity,
    /// Pieces asked of it and not arrived.
    in_flight: usize,
    /// Blobs being fetched from it.
    active: BTreeSet<BlobHash>,
    /// Blobs it said it cannot give, or sent bad pieces of, this session.
    not_held: BTreeSet<BlobHash>,
    /// Blobs it asked for that this node did not hold: told [`BlobFrame::Have`] once held.
    asked_unheld: BTreeSet<BlobHash>,
    last_piece_ms: i64,
}

#[derive(Debug)]
struct Wanted {
    blob: BlobRef,
    /// One bit per piece: held (stored or handed to the driver to store).
    have: Vec<u64>,
    /// Pieces asked for and not arrived, each of the peer asked.
    asked: BTreeMap<u32, PeerId>,
    source: Option<PeerId>,
    bad_pieces: u32,
    completed: bool,
}

impl Wanted {
    fn has(&self, index: u32) -> bool {
        self.have
            .get(index as usize / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    fn set(&mut self, index: u32, on: bool) {
        if let Some(w) = self.have.get_mut(index as usize / 64) {
            if on {
                *w |= 1 << (index % 64);
            } else {
                *w &= !(1 << (index % 64));
            }
        }
    }

    fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.blob.pieces()).filter(|&i| !self.has(i) && !self.asked.contains_key(&i))
    }

    fn whole(&self) -> bool {
        (0..self.blob.pieces()).all(|i| self.has(i))
    }

    fn bytes_left(&self) -> u64 {
        (0..self.blob.pieces())
            .filter(|&i| !self.has(i))
            .filter_map(|i| self.blob.piece(i).ok())
            .map(|(_, len)| len as u64)
            .sum()
    }
}

/// An empty set of pieces for `blob`, to fill as [`Transfers::want`]'s `have`.
#[must_use]
pub fn no_pieces(blob: &BlobRef) -> Vec<u64> {
    vec![0; (blob.pieces() as usize).div_ceil(64)]
}

/// What the transfers stand at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub wanted: usize,
    pub wanted_bytes_left: u64,
    pub held: usize,
    pub held_bytes: u64,
    pub pieces_received: u64,
    pub pieces_refused: u64,
    pub pieces_served: u64,
}

/// How a piece is checked against its blob's name as it arrives: on a node,
/// [`verify_piece_with_hashes`] (BLAKE3, the default). The simulator, which moves recordings by
/// their size without making their bytes, gives a stand-in ([`Transfers::with_check`]).
pub type PieceCheck = fn(BlobRef, u32, &[u8]) -> Result<Piece, BlobError>;

/// The blob transfers of one node.
#[derive(Debug)]
pub struct Transfers {
    peers: BTreeMap<PeerId, Peer>,
    /// The documents naming each blob: who may be given it.
    named_in: BTreeMap<BlobHash, BTreeSet<DocId>>,
    /// Wanted blobs by the documents naming them, to find what a peer can give.
    wanted_in: BTreeMap<DocId, BTreeSet<BlobHash>>,
    held: BTreeMap<BlobHash, BlobRef>,
    wanted: BTreeMap<BlobHash, Wanted>,
    outputs: VecDeque<BlobOutput>,
    stats: TransferStats,
    check: PieceCheck,
}

impl Default for Transfers {
    fn default() -> Self {
        Self::with_check(verify_piece_with_hashes)
    }
}

impl Transfers {
    /// Transfers that check pieces against BLAKE3, as a node does.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Transfers that check pieces with `check` (the simulator's stand-in).
    #[must_use]
    pub fn with_check(check: PieceCheck) -> Self {
        Self {
            peers: BTreeMap::new(),
            named_in: BTreeMap::new(),
            wanted_in: BTreeMap::new(),
            held: BTreeMap::new(),
            wanted: BTreeMap::new(),
            outputs: VecDeque::new(),
            stats: TransferStats::default(),
            check,
        }
    }

    pub fn poll_output(&mut self) -> Option<BlobOutput> {
        self.outputs.pop_front()
    }

    #[must_use]
    pub fn stats(&self) -> TransferStats {
        TransferStats {
            wanted: self.wanted.len(),
            wanted_bytes_left: self.wanted.values().map(Wanted::bytes_left).sum(),
            held: self.held.len(),
            held_bytes: self.held.values().map(|b| b.bytes).sum(),
            ..self.stats
        }
    }

    /// Whether the blob is held here whole.
    #[must_use]
    pub fn holds(&self, hash: &BlobHash) -> bool {
        self.held.contains_key(hash)
    }

    /// Whether the blob is wanted here.
    #[must_use]
    pub fn wants(&self, hash: &BlobHash) -> bool {
        self.wanted.contains_key(hash)
    }

    /// The next time [`Transfers::tick`] has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<i64> {
        self.peers
            .values()
            .filter(|p| p.in_flight > 0)
            .map(|p| p.last_piece_ms + SOURCE_SILENT_MS)
            .min()
    }

    /// `doc` names `blob`: a peer that may read `doc` may be given it, and asked for it.
    /// Told again (the node plans after every batch), it does nothing.
    pub fn named(&mut self, now_ms: i64, blob: BlobRef, doc: DocId) {
        if !self.named_in.entry(blob.hash).or_default().insert(doc) {
            return;
        }
        if self.wanted.contains_key(&blob.hash) {
            self.wanted_in.entry(doc).or_default().insert(blob.hash);
            self.schedule_all(now_ms);
        }
    }

    /// `doc` no longer names `blob` (a re-check's grant ended, `crate::recheck`): a peer that
    /// could read only `doc` is given it no more, nor asked for it.
    pub fn unnamed(&mut self, now_ms: i64, hash: &BlobHash, doc: DocId) {
        if let Some(docs) = self.named_in.get_mut(hash) {
            docs.remove(&doc);
            if docs.is_empty() {
                self.named_in.remove(hash);
            }
        }
        if let Some(hashes) = self.wanted_in.get_mut(&doc) {
            hashes.remove(hash);
            if hashes.is_empty() {
                self.wanted_in.remove(&doc);
            }
        }
        self.schedule_all(now_ms);
    }

    /// The blob is held here whole (found at start, added, or just completed).
    pub fn hold(&mut self, now_ms: i64, blob: BlobRef) {
        self.forget_wanted(&blob.hash);
        self.held.insert(blob.hash, blob);
        for (&peer, p) in &mut self.peers {
            if p.asked_unheld.remove(&blob.hash) {
                self.outputs.push_back(BlobOutput::Send {
                    peer,
                    frame: BlobFrame::Have { blob },
                });
            }
        }
        self.schedule_all(now_ms);
    }

    /// The blob is no longer held (destroyed, or dropped by a relay after the РЦОИ's receipt).
    pub fn release(&mut self, hash: &BlobHash) {
        self.held.remove(hash);
    }

    /// Fetch `blob`; `have` marks the pieces already stored ([`no_pieces`] for none).
    pub fn want(&mut self, now_ms: i64, blob: BlobRef, have: Vec<u64>) {
        if self.held.contains_key(&blob.hash) || self.wanted.contains_key(&blob.hash) {
            return;
        }
        let mut wanted = Wanted {
            blob,
            have: no_pieces(&blob),
            asked: BTreeMap::new(),
            source: None,
            bad_pieces: 0,
            completed: false,
        };
        for (word, given) in wanted.have.iter_mut().zip(have) {
            *word = given;
        }
        let whole = wanted.whole();
        self.wanted.insert(blob.hash, wanted);
        for doc in self.named_in.get(&blob.hash).into_iter().flatten() {
            self.wanted_in.entry(*doc).or_default().insert(blob.hash);
        }
        if whole {
            self.complete(blob.hash);
        }
        self.schedule_all(now_ms);
    }

    /// Stop fetching `hash` (the РЦОИ receipted it, or it is no longer named).
    pub fn unwant(&mut self, now_ms: i64, hash: &BlobHash) {
        self.forget_wanted(hash);
        self.schedule_all(now_ms);
    }

    /// The driver could not store piece `index`: it is asked for again.
    pub fn store_failed(&mut self, now_ms: i64, hash: &BlobHash, index: u32) {
        if let Some(w) = self.wanted.get_mut(hash) {
            w.set(index, false);
            w.completed = false;
        }
        self.schedule_all(now_ms);
    }

    pub fn connected(&mut self, now_ms: i64, peer: PeerId, identity: NodeIdentity) {
        self.peers.insert(
            peer,
            Peer {
                identity,
                in_flight: 0,
                active: BTreeSet::new(),
                not_held: BTreeSet::new(),
                asked_unheld: BTreeSet::new(),
                last_piece_ms: now_ms,
            },
        );
        self.schedule(now_ms, peer);
    }

    pub fn disconnected(&mut self, now_ms: i64, peer: PeerId) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        for hash in p.active {
            self.drop_source(&hash, peer);
        }
        self.schedule_all(now_ms);
    }

    /// A peer that sent no piece for [`SOURCE_SILENT_MS`] while asked is asked no more.
    pub fn tick(&mut self, now_ms: i64) {
        let silent: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.in_flight > 0 && now_ms - p.last_piece_ms >= SOURCE_SILENT_MS)
            .map(|(&id, _)| id)
            .collect();
        for peer in silent {
            let active = self
                .peers
                .get_mut(&peer)
                .map(|p| std::mem::take(&mut p.active))
                .unwrap_or_default();
            for hash in active {
                self.drop_source(&hash, peer);
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.not_held.insert(hash);
                }
            }
        }
        self.schedule_all(now_ms);
    }

    /// A frame arrived on a peer's blob stream. Only what this peer is asked for is scheduled
    /// again, unless pieces it was asked for return to be asked of others: a hub's thousands
    /// of wanted blobs are not looked over for every piece that arrives.
    pub fn received(&mut self, now_ms: i64, peer: PeerId, bytes: &[u8]) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let mut returned = false;
        match BlobFrame::decode(bytes) {
            Err(e) => self.outputs.push_back(BlobOutput::Refused {
                peer,
                hash: BlobHash([0; 32]),
                reason: e.to_string(),
            }),
            Ok(BlobFrame::Want { blob, pieces }) => self.asked(peer, blob, &pieces),
            Ok(BlobFrame::Piece {
                hash,
                index,
                encoded,
            }) => returned = self.piece(now_ms, peer, hash, index, &encoded),
            Ok(BlobFrame::NotHeld { hash }) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.not_held.insert(hash);
                    p.active.remove(&hash);
                }
                self.drop_source(&hash, peer);
                returned = true;
            }
            Ok(BlobFrame::Have { blob }) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.not_held.remove(&blob.hash);
                }
            }
        }
        if returned {
            self.schedule_all(now_ms);
        } else {
            self.schedule(now_ms, peer);
        }
    }

    /// Whether `identity` may be given `hash`: a document naming it is one it may read and
    /// did not write. A school writes its own protocol, so naming another school's recording
    /// there gives it nothing; schools fetch no recordings.
    fn may_give(&self, hash: &BlobHash, identity: &NodeIdentity) -> bool {
        self.named_in.get(hash).is_some_and(|docs| {
            docs.iter()
                .any(|d| d.readable_by(identity) && !d.writable_by(identity))
        })
    }

    fn asked(&mut self, peer: PeerId, blob: BlobRef, pieces: &[u32]) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let may = self.may_give(&blob.hash, &p.identity);
        if !(may && self.held.get(&blob.hash) == Some(&blob)) {
            // Told once held, if it may be given it then.
            if let Some(p) = self.peers.get_mut(&peer)
                && may
                && p.asked_unheld.len() < ASKED_UNHELD_PER_PEER_MAX
            {
                p.asked_unheld.insert(blob.hash);
            }
            self.outputs.push_back(BlobOutput::Send {
                peer,
                frame: BlobFrame::NotHeld { hash: blob.hash },
            });
            return;
        }
        for &index in pieces {
            self.stats.pieces_served += 1;
            self.outputs
                .push_back(BlobOutput::Serve { peer, blob, index });
        }
    }

    /// A piece arrived; true when the peer is not asked for its blob again (what was asked of
    /// it returns to be asked of others).
    fn piece(
        &mut self,
        now_ms: i64,
        peer: PeerId,
        hash: BlobHash,
        index: u32,
        encoded: &[u8],
    ) -> bool {
        let Some(w) = self.wanted.get_mut(&hash) else {
            return false; // no longer wanted: a piece already on its way
        };
        if w.asked.get(&index) != Some(&peer) {
            return false; // not asked of this peer (asked again elsewhere after a silence)
        }
        w.asked.remove(&index);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
            p.last_piece_ms = now_ms;
        }
        let blob = w.blob;
        match (self.check)(blob, index, encoded) {
            Ok(piece) => {
                self.stats.pieces_received += 1;
                w.set(index, true);
                self.outputs
                    .push_back(BlobOutput::Store { blob, index, piece });
                if w.whole() {
                    self.complete(hash);
                }
                false
            }
            Err(e) => {
                self.stats.pieces_refused += 1;
                w.bad_pieces += 1;
                let give_up = w.bad_pieces >= BAD_PIECES_MAX;
                self.outputs.push_back(BlobOutput::Refused {
                    peer,
                    hash,
                    reason: e.to_string(),
                });
                if give_up {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.not_held.insert(hash);
                        p.active.remove(&hash);
                    }
                    self.drop_source(&hash, peer);
                }
                give_up
            }
        }
    }

    fn complete(&mut self, hash: BlobHash) {
        if let Some(w) = self.wanted.get_mut(&hash)
            && !w.completed
        {
            w.completed = true;
            let blob = w.blob;
            self.outputs.push_back(BlobOutput::Complete { blob });
        }
    }

    /// The peer no longer gives `hash`: what was asked of it goes back to be asked again.
    fn drop_source(&mut self, hash: &BlobHash, peer: PeerId) {
        let Some(w) = self.wanted.get_mut(hash) else {
            return;
        };
        let before = w.asked.len();
        w.asked.retain(|_, p| *p != peer);
        let returned = before - w.asked.len();
        if w.source == Some(peer) {
            w.source = None;
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight = p.in_flight.saturating_sub(returned);
            p.active.remove(hash);
        }
    }

    fn forget_wanted(&mut self, hash: &BlobHash) {
        let Some(w) = self.wanted.remove(hash) else {
            return;
        };
        for peer in w.asked.values() {
            if let Some(p) = self.peers.get_mut(peer) {
                p.in_flight = p.in_flight.saturating_sub(1);
            }
        }
        if let Some(source) = w.source
            && let Some(p) = self.peers.get_mut(&source)
        {
            p.active.remove(hash);
        }
        for doc in self.named_in.get(hash).into_iter().flatten() {
            if let Some(set) = self.wanted_in.get_mut(doc) {
                set.remove(hash);
                if set.is_empty() {
                    self.wanted_in.remove(doc);
                }
            }
        }
    }

    fn schedule_all(&mut self, now_ms: i64) {
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.schedule(now_ms, peer);
        }
    }

    /// Asks `peer` for as many pieces as it may have in flight: first of the blobs already
    /// fetched from it, then of new ones it may give (by the documents it may read).
    fn schedule(&mut self, now_ms: i64, peer: PeerId) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if p.in_flight >= PIECES_IN_FLIGHT_PER_PEER {
            return;
        }
        // A blob with nothing left to ask and nothing asked of this peer frees its place.
        let done: Vec<BlobHash> = p
            .active
            .iter()
            .filter(|h| {
                self.wanted.get(h).is_none_or(|w| {
                    w.missing().next().is_none() && !w.asked.values().any(|a| *a == peer)
                })
            })
            .copied()
            .collect();
        for hash in &done {
            if let Some(w) = self.wanted.get_mut(hash)
                && w.source == Some(peer)
            {
                w.source = None;
            }
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        for hash in &done {
            p.active.remove(hash);
        }
        let p = &*p;
        if p.active.len() < BLOBS_ACTIVE_PER_PEER {
            let identity = p.identity;
            let room = BLOBS_ACTIVE_PER_PEER - p.active.len();
            let new: Vec<BlobHash> = self
                .wanted_in
                .iter()
                .filter(|(doc, _)| doc.readable_by(&identity))
                .flat_map(|(_, hashes)| hashes.iter())
                .filter(|h| {
                    self.wanted
                        .get(h)
                        .is_some_and(|w| w.source.is_none() && w.missing().next().is_some())
                        && !p.not_held.contains(h)
                })
                .take(room)
                .copied()
                .collect();
            for hash in new {
                if let Some(w) = self.wanted.get_mut(&hash) {
                    w.source = Some(peer);
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.active.insert(hash);
                }
            }
        }
        let active: Vec<BlobHash> = self
            .peers
            .get(&peer)
            .map(|p| p.active.iter().copied().collect())
            .unwrap_or_default();
        for hash in active {
            let Some(p) = self.peers.get(&peer) else {
                return;
            };
            let room = PIECES_IN_FLIGHT_PER_PEER.saturating_sub(p.in_flight);
            if room == 0 {
                return;
            }
            let Some(w) = self.wanted.get_mut(&hash) else {
                continue;
            };
            let pieces: Vec<u32> = w.missing().take(room.min(WANT_PIECES_MAX)).collect();
            if pieces.is_empty() {
                continue;
            }
            for &i in &pieces {
                w.asked.insert(i, peer);
            }
            let blob = w.blob;
            if let Some(p) = self.peers.get_mut(&peer) {
                if p.in_flight == 0 {
                    p.last_piece_ms = now_ms;
                }
                p.in_flight += pieces.len();
            }
            self.outputs.push_back(BlobOutput::Send {
                peer,
                frame: BlobFrame::Want { blob, pieces },
            });
        }
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
