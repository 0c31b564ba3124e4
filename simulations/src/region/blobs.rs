//! Recordings in the simulated region (scenario `[audio]`): the production blob transfer machine
//! ([`giasync_shared::blob::transfer`]) beside each node's engine, fed by the node's own planner
//! and receipting ([`giasync_node::app::recordings`]), over a second lane of each connection
//! that the documents' frames go before, as the node gives its blob stream a lower priority.
//!
//! Recordings are **sized, not made**: a region's 250–500 GB is not generated. A recording's
//! name is a hash the simulator draws, and a piece travels as a 16-byte token standing for its
//! bytes, while the link is charged the piece's real size with its proof. The transfer machine
//! checks each token as a node checks a piece against BLAKE3 ([`piece_check`], given to it with
//! [`Transfers::with_check`]); everything else it does (who is asked for what, how much is in
//! flight, what a peer may be given, a spoiled piece refused and asked again) is the node's.
//! BLAKE3 itself, and the bytes, are tested over real QUIC in `tests/tests/recordings.rs`.
//!
//! The link model: the blob lane sends only when the documents' lane is idle, at the link's
//! speed or a school's `audio_kbit_s` if lower. A document frame that comes while a recording
//! is being sent does not wait for the piece, but does wait behind the recording's packets
//! already in the network: a congestion window's worth (one bandwidth-delay product, at least
//! QUIC's initial window) when the recording is sent as fast as the link goes, one packet when
//! the node paces it below the link's speed (no queue builds up). Loss costs a piece its
//! retransmitted packets' bytes and time; it is not drawn per packet.

use std::collections::BTreeMap;

use giasync_shared::blob::transfer::{BlobOutput, Transfers};
use giasync_shared::blob::wire::BlobFrame;
use giasync_shared::blob::{BlobError, BlobHash, BlobRef, GROUP_BYTES, PIECE_BYTES, Piece};
use giasync_shared::record::Attempt;
use giasync_shared::recording::{self, Recording, Subject};
use giasync_shared::sync::{DocId, DocKind};
use sha2::{Digest, Sha256};

use super::{Event, Made, PACKET_OVERHEAD_BYTES, PACKET_PAYLOAD_BYTES, Region, wire_bytes};
use crate::plan::{Entry, Kind};
use crate::sabotage::Sabotage;

/// QUIC's initial congestion window: what is in the network ahead of a frame at the least.
const INITIAL_WINDOW_BYTES: u64 = 10 * (PACKET_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES);
/// A piece frame's own bytes beside the piece and its proof (kind, hash, index, lengths).
const PIECE_FRAME_HEADER_BYTES: u64 = 48;
/// The token a piece travels as.
const TOKEN_BYTES: usize = 16;

/// The token standing for piece `index` of `blob`.
fn token(blob: BlobRef, index: u32) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"giasync-sim piece");
    h.update(blob.hash.0);
    h.update(index.to_be_bytes());
    h.update(blob.bytes.to_be_bytes());
    h.finalize()[..TOKEN_BYTES].to_vec()
}

/// The simulator's stand-in for checking a piece against its blob's name: the token must be the
/// one of that blob and piece. A piece's bytes are not made, so none are given back.
fn piece_check(blob: BlobRef, index: u32, encoded: &[u8]) -> Result<Piece, BlobError> {
    let pieces = blob.pieces();
    if index >= pieces {
        return Err(BlobError::NoSuchPiece { index, pieces });
    }
    if encoded != token(blob, index).as_slice() {
        return Err(BlobError::Mismatch {
            index,
            reason: "the piece's token is not its blob's".into(),
        });
    }
    Ok(Piece {
        bytes: Vec::new(),
        hashes: Vec::new(),
    })
}

/// Bytes a piece takes in its frame: the piece, the hash pairs from the root down to it (one a
/// level of the blob's tree of 16 KiB groups) and the frame's own.
fn piece_frame_bytes(blob: BlobRef, index: u32) -> u64 {
    let len = blob.piece(index).map_or(0, |(_, len)| len as u64);
    let groups = blob.bytes.div_ceil(GROUP_BYTES).max(1);
    let levels = u64::from(groups.next_power_of_two().trailing_zeros());
    len + 64 * levels + PIECE_FRAME_HEADER_BYTES
}

/// What a recording of the plan is: its subject, room index and length.
fn recording_of(region: &Region, s: usize, entry: Entry) -> Option<(Subject, usize, i64)> {
    let school = &region.plan.schools[s];
    match entry {
        Entry::Recording {
            participant,
            attempt,
            duration_ms,
        } => {
            let p = school.participants.get(participant)?;
            let attempt = Attempt::new(attempt).ok()?;
            Some((
                Subject::Participant { id: p.id, attempt },
                p.room,
                duration_ms,
            ))
        }
        Entry::RoomStream { room, duration_ms } => Some((Subject::Room, room, duration_ms)),
        _ => None,
    }
}

impl Region {
    /// A school takes in a recording (`giasync-node audio add` or its watched folder): kept in
    /// its blob store, then named in its protocol.
    pub(super) fn make_recording(
        &mut self,
        s: usize,
        entry: Entry,
    ) -> Result<Made, Box<dyn std::error::Error>> {
        let audio = self
            .plan
            .audio
            .ok_or("a recording in a scenario without [audio]")?;
        let (subject, room, duration_ms) =
            recording_of(self, s, entry).ok_or("a recording of nobody in the plan")?;
        let school = &self.plan.schools[s];
        let bytes = u64::from(audio.kbit_s) * duration_ms.max(1) as u64 / 8;
        let mut h = Sha256::new();
        h.update(b"giasync-sim recording");
        h.update(self.plan.seed.to_be_bytes());
        h.update(school.code.as_str());
        h.update(format!("{subject:?} {room}"));
        let blob = BlobRef::new(BlobHash(h.finalize().into()), bytes)?;
        let room = school.rooms[room];
        let protocol = self.doc(s, DocKind::Protocol);
        let now = self.now_ms;
        let node = school.node;
        let n = &mut self.nodes[node];
        let engine = n.engine.as_mut().ok_or("the node is down")?;
        n.store.blobs.insert(blob.hash, blob);
        n.transfers.hold(now, blob);
        let named = engine
            .doc(&protocol)
            .is_some_and(|d| recording::names(d, &blob.hash));
        if !named {
            let r = Recording {
                blob,
                room,
                subject,
                format: giasync_shared::audio::AudioFormat::Mp3,
                duration_ms: duration_ms.max(1) as u64,
                file_name: format!("{}_{room}_{}.mp3", self.plan.exam.date(), school.code),
                added_by: None,
                added_at_ms: self.plan.midnight_ms + now,
            };
            engine.change(now, protocol, |tx| recording::put_recording(tx, &r))?;
        }
        Ok(Made::Recording { blob })
    }

    /// The РЦОИ names the exam's materials package in the region directory when it first starts
    /// (`giasync-hub materials add`: the package sealed, held, and its signed statement), so
    /// every МОУО and school fetches it before the day. The package is sized, not made, like a
    /// recording; its statement and the directory entry are the production ones.
    pub(super) fn name_materials(&mut self, node: usize) {
        let Some(materials) = self.plan.materials else {
            return;
        };
        if self.observed.materials.is_some() {
            return;
        }
        let mut h = Sha256::new();
        h.update(b"giasync-sim materials");
        h.update(self.plan.seed.to_be_bytes());
        h.update(self.plan.exam.to_string());
        let Ok(blob) = BlobRef::new(BlobHash(h.finalize().into()), materials.bytes) else {
            return;
        };
        let mut h = Sha256::new();
        h.update(b"giasync-sim materials code");
        h.update(self.plan.seed.to_be_bytes());
        let mut entropy = [0u8; giasync_shared::materials::RELEASE_CODE_BYTES];
        entropy.copy_from_slice(&h.finalize()[..giasync_shared::materials::RELEASE_CODE_BYTES]);
        let code = giasync_shared::materials::ReleaseCode::from_entropy(entropy);
        let exam = self.plan.exam;
        let at_ms = self.plan.midnight_ms + self.now_ms;
        let clock = self.plan.clock;
        let now = self.now_ms;
        let withheld = self.sabotage == Sabotage::MaterialsWithheld;
        let n = &mut self.nodes[node];
        let Some(engine) = n.engine.as_mut() else {
            return;
        };
        let made = (|| -> Result<(), Box<dyn std::error::Error>> {
            let package = giasync_shared::materials::Package::new(
                exam,
                blob,
                "kim.zip",
                4,
                &code,
                [0; giasync_shared::materials::SALT_BYTES],
                giasync_shared::materials::release_time(exam.date(), clock)?,
                giasync_shared::calendar::Timestamp::from_unix_ms(at_ms)?,
            )?;
            let statement = engine.node_statement(
                giasync_shared::statement::StatementKind::Materials,
                &package.fields(),
            )?;
            let cert = engine.node_cert().to_vec();
            engine.change(now, DocId::Directory, |tx| {
                giasync_shared::content::put_package(tx, exam, &statement, &cert)
            })?;
            Ok(())
        })();
        if let Err(e) = made {
            self.observed
                .entry_errors
                .push(format!("the РЦОИ cannot name the materials: {e}"));
            return;
        }
        if !withheld {
            n.store.blobs.insert(blob.hash, blob);
            n.transfers.hold(now, blob);
        }
        self.observed.materials = Some((blob, now));
        self.drain(node);
    }

    /// A node (re)starts: its transfers hold what its blob store holds whole, and it plans
    /// from every document it holds, as the node does at start.
    pub(super) fn start_blobs(&mut self, node: usize) {
        let on = self.blobs_on();
        let n = &mut self.nodes[node];
        n.transfers = Transfers::with_check(piece_check);
        n.named_in.clear();
        n.reported.clear();
        n.blob_tick_at = None;
        if !on {
            return;
        }
        for blob in n.store.blobs.values() {
            n.transfers.hold(self.now_ms, *blob);
        }
        let docs: Vec<DocId> = n
            .engine
            .as_ref()
            .map(|e| e.doc_ids().copied().collect())
            .unwrap_or_default();
        self.plan_blobs(node, &docs);
    }

    /// After a batch changed `docs`: what the node fetches and keeps, as `run_blobs` applies
    /// the planner's answer.
    pub(super) fn plan_blobs(&mut self, node: usize, docs: &[DocId]) {
        if !self.blobs_on() || docs.is_empty() {
            return;
        }
        let now = self.now_ms;
        let Some(engine) = self.nodes[node].engine.as_ref() else {
            return;
        };
        let mut plans = giasync_node::app::recordings::plan(engine, docs);
        plans.extend(giasync_node::app::materials::plan(engine, docs));
        let mut completed = Vec::new();
        let n = &mut self.nodes[node];
        for plan in plans {
            let hash = plan.blob.hash;
            let named_in = n.named_in.entry(hash).or_default();
            if !plan.named {
                named_in.retain(|d| *d != plan.doc);
                n.transfers.unnamed(now, &hash, plan.doc);
            } else {
                if !named_in.contains(&plan.doc) {
                    named_in.push(plan.doc);
                }
                n.transfers.named(now, plan.blob, plan.doc);
            }
            if plan.fetch && n.transfers.holds(&hash) && n.reported.insert(hash) {
                completed.push(plan.blob);
            }
            if plan.fetch {
                let have = n
                    .store
                    .partial
                    .get(&hash)
                    .cloned()
                    .unwrap_or_else(|| giasync_shared::blob::transfer::no_pieces(&plan.blob));
                n.transfers.want(now, plan.blob, have);
            } else if n.transfers.wants(&hash) {
                n.transfers.unwant(now, &hash);
            }
            if !plan.keep && n.transfers.holds(&hash) {
                // A МОУО drops its copy once the РЦОИ holds it.
                n.transfers.release(&hash);
                n.store.blobs.remove(&hash);
                n.store.partial.remove(&hash);
            }
        }
        for blob in completed {
            self.blob_whole(node, blob);
        }
        self.drain_blobs(node);
    }

    /// Carries out what a node's transfers ask.
    pub(super) fn drain_blobs(&mut self, node: usize) {
        while let Some(output) = self.nodes[node].transfers.poll_output() {
            match output {
                BlobOutput::Send { peer, frame } => {
                    self.send_blob_frame(node, peer, &frame, None);
                }
                BlobOutput::Serve { peer, blob, index } => {
                    let held = self.nodes[node].store.blobs.get(&blob.hash) == Some(&blob)
                        && !(self.sabotage == Sabotage::LostRecording
                            && self.first_recording_of_school(node) == Some(blob.hash));
                    let frame = if held {
                        let mut encoded = token(blob, index);
                        if self.sabotage == Sabotage::SpoiledPieces
                            && self.first_recording_of_school(node) == Some(blob.hash)
                        {
                            encoded[0] ^= 1;
                        }
                        BlobFrame::Piece {
                            hash: blob.hash,
                            index,
                            encoded,
                        }
                    } else {
                        BlobFrame::NotHeld { hash: blob.hash }
                    };
                    let size = held.then(|| piece_frame_bytes(blob, index));
                    self.send_blob_frame(node, peer, &frame, size);
                }
                BlobOutput::Store { blob, index, .. } => {
                    let bits = self.nodes[node]
                        .store
                        .partial
                        .entry(blob.hash)
                        .or_insert_with(|| giasync_shared::blob::transfer::no_pieces(&blob));
                    if let Some(word) = bits.get_mut(index as usize / 64) {
                        *word |= 1 << (index % 64);
                    }
                    if let Some(&(s, _)) = self.observed.recording_blobs.get(&blob.hash) {
                        self.observed.last_piece_ms_by_school.insert(s, self.now_ms);
                    }
                }
                BlobOutput::Complete { blob } => {
                    if self.observed.materials.is_some_and(|(m, _)| m == blob)
                        && let Some(s) = self.school_of(node)
                    {
                        self.observed
                            .materials_at_school_ms
                            .entry(s)
                            .or_insert(self.now_ms);
                    }
                    let n = &mut self.nodes[node];
                    n.store.partial.remove(&blob.hash);
                    n.store.blobs.insert(blob.hash, blob);
                    n.transfers.hold(self.now_ms, blob);
                    if n.reported.insert(blob.hash) {
                        self.blob_whole(node, blob);
                    }
                }
                BlobOutput::Refused { .. } => self.observed.blob_pieces_refused += 1,
            }
        }
        let n = &mut self.nodes[node];
        if let Some(t) = n.transfers.poll_timeout()
            && n.blob_tick_at.is_none_or(|at| t < at)
        {
            n.blob_tick_at = Some(t.max(self.now_ms));
            self.schedule(t, Event::BlobTick { node });
        }
    }

    /// A blob was made whole at `node` (or found whole when first named): the РЦОИ receipts it
    /// in its document for each school whose protocol names it.
    fn blob_whole(&mut self, node: usize, blob: BlobRef) {
        if self.nodes[node].kind != Kind::Rcoi {
            return;
        }
        self.observed
            .recordings_at_rcoi_ms
            .entry(blob.hash)
            .or_insert(self.now_ms);
        let docs = self.nodes[node]
            .named_in
            .get(&blob.hash)
            .cloned()
            .unwrap_or_default();
        let now = self.now_ms;
        if let Some(engine) = self.nodes[node].engine.as_mut()
            && let Err(e) = giasync_node::app::recordings::receipt(engine, now, blob, &docs)
        {
            self.observed
                .entry_errors
                .push(format!("the РЦОИ's receipt of blob {}: {e}", blob.hash));
        }
        self.drain(node);
    }

    /// At the first school's node: the hash of the first recording it made, for the sabotages.
    fn first_recording_of_school(&self, node: usize) -> Option<BlobHash> {
        let s = self.school_of(node).filter(|&s| s == 0)?;
        self.observed
            .recordings
            .iter()
            .find(|r| r.0 == s)
            .map(|r| r.1.hash)
    }

    fn send_blob_frame(
        &mut self,
        node: usize,
        peer: giasync_shared::sync::PeerId,
        frame: &BlobFrame,
        size: Option<u64>,
    ) {
        let Some(&c) = self.nodes[node].peers.get(&peer) else {
            return;
        };
        let end = usize::from(self.conns[c].ends[1] == node);
        let bytes = frame.encode();
        let framed = size.unwrap_or(bytes.len() as u64) + 4;
        self.send_blob(c, end, bytes, framed);
    }

    /// Puts a blob frame of `framed` bytes on the wire from `from`, on the connection's blob
    /// lane: after whatever the documents' lane has to send, at the link's speed or the
    /// nodes' `audio_kbit_s`.
    fn send_blob(&mut self, c: usize, from: usize, bytes: Vec<u8>, framed: u64) {
        let cap = self.send_cap(c, from);
        let conn = &mut self.conns[c];
        let p = conn.profile;
        let packets = framed.div_ceil(PACKET_PAYLOAD_BYTES);
        let lost = (packets as f64 * p.loss).round() as u64;
        let wire = wire_bytes(framed) + lost * (PACKET_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES);
        self.observed.audio_bytes_on_wire += wire;
        if !conn.alive {
            return;
        }
        let rate = cap.map_or(p.bandwidth_kbit_s, |cap| cap.min(p.bandwidth_kbit_s));
        let latency = i64::from(p.latency_ms);
        let docs_free = conn.lanes[from].free_at_ms;
        let lane = &mut conn.blob_lanes[from];
        let start = self.now_ms.max(lane.free_at_ms).max(docs_free);
        lane.free_at_ms = start + (wire * 8).div_ceil(u64::from(rate)) as i64;
        let retransmits = if lost > 0 {
            2 * latency + super::RETRANSMIT_EXTRA_MS
        } else {
            0
        };
        let arrive = (lane.free_at_ms + latency + retransmits).max(lane.delivered_at_ms);
        lane.delivered_at_ms = arrive;
        self.schedule(
            arrive,
            Event::DeliverBlob {
                conn: c,
                to: 1 - from,
                bytes,
            },
        );
    }

    /// How long a document frame sent from `from` now waits behind recording bytes already in
    /// the network, and the blob lane is set back by the frame's `serialise_ms` (the documents
    /// go first).
    pub(super) fn behind_blobs_ms(&mut self, c: usize, from: usize, serialise_ms: i64) -> i64 {
        let cap = self.send_cap(c, from);
        let now = self.now_ms;
        let conn = &mut self.conns[c];
        let p = conn.profile;
        let lane = &mut conn.blob_lanes[from];
        if lane.free_at_ms <= now {
            return 0;
        }
        lane.free_at_ms += serialise_ms;
        let paced = cap.is_some_and(|cap| cap < p.bandwidth_kbit_s);
        let ahead_bytes = if paced {
            PACKET_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES
        } else {
            let rtt_ms = 2 * u64::from(p.latency_ms);
            (u64::from(p.bandwidth_kbit_s) * rtt_ms / 8).max(INITIAL_WINDOW_BYTES)
        };
        // No more than the recordings still had to send.
        let left_ms = lane.free_at_ms - serialise_ms - now;
        ((ahead_bytes * 8).div_ceil(u64::from(p.bandwidth_kbit_s)) as i64).min(left_ms)
    }

    /// The most end `from` of connection `c` sends of recordings, kbit/s: a school's
    /// `audio_kbit_s` (`[audio] send_kbit_s`); hubs send as fast as their link goes.
    fn send_cap(&self, c: usize, from: usize) -> Option<u32> {
        let sender = self.conns[c].ends[from];
        (self.nodes[sender].kind == Kind::School)
            .then(|| self.plan.audio.and_then(|a| a.send_kbit_s))
            .flatten()
    }

    pub(super) fn deliver_blob(&mut self, c: usize, to: usize, bytes: &[u8]) {
        if !self.conns[c].alive {
            return;
        }
        let node = self.conns[c].ends[to];
        let peer = self.conns[c].peer[to];
        self.observed.trace.update(self.now_ms.to_be_bytes());
        self.observed.trace.update((c as u64).to_be_bytes());
        self.observed.trace.update(bytes);
        if self.nodes[node].up() {
            if self.nodes[node].kind == Kind::Rcoi {
                self.note_piece_at_rcoi(bytes);
            }
            self.nodes[node]
                .transfers
                .received(self.now_ms, peer, bytes);
            self.drain_blobs(node);
        }
    }

    /// Records a piece of a recording that reached the РЦОИ as its school made it: the
    /// report's own evidence that every piece arrived, beside the transfer machine's word.
    fn note_piece_at_rcoi(&mut self, bytes: &[u8]) {
        let Ok(BlobFrame::Piece {
            hash,
            index,
            encoded,
        }) = BlobFrame::decode(bytes)
        else {
            return;
        };
        let Some(&(_, blob)) = self.observed.recording_blobs.get(&hash) else {
            return;
        };
        if encoded != token(blob, index) {
            return;
        }
        let words = blob.bytes.div_ceil(PIECE_BYTES).div_ceil(64) as usize;
        let bits = self
            .observed
            .pieces_at_rcoi
            .entry(hash)
            .or_insert_with(|| vec![0; words]);
        if let Some(word) = bits.get_mut(index as usize / 64) {
            *word |= 1 << (index % 64);
        }
    }

    pub(super) fn blob_tick(&mut self, node: usize) {
        if self.nodes[node].blob_tick_at != Some(self.now_ms) {
            return;
        }
        self.nodes[node].blob_tick_at = None;
        if self.nodes[node].up() {
            self.nodes[node].transfers.tick(self.now_ms);
            self.drain_blobs(node);
        }
    }

    /// Recordings entered that the РЦОИ does not hold whole.
    pub(super) fn recordings_pending(&self) -> usize {
        let held = &self.nodes[0].store.blobs;
        self.observed
            .recordings
            .iter()
            .filter(|r| held.get(&r.1.hash) != Some(&r.1))
            .count()
    }

    /// Every recording the РЦОИ holds whole, by hash: what the report checks the entered ones
    /// against.
    #[must_use]
    pub fn recordings_held_at_rcoi(&self) -> &BTreeMap<BlobHash, BlobRef> {
        &self.nodes[0].store.blobs
    }
}
