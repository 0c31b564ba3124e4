//! The sync engine: a sans-IO state machine that replicates automerge documents between nodes.
//!
//! Inputs are peer events (connected with a verified identity, disconnected), bytes received,
//! local changes and the time; outputs are bytes to send, records to persist and the time of the
//! next tick. No sockets, no disk, no clock: quinn and redb (in `node`) and the simulator are
//! drivers around it.
//!
//! - **Authorisation** per document from the peer's certified identity ([`DocId::readable_by`],
//!   [`DocId::writable_by`]): a peer is offered and served only documents it may read.
//! - **Authorship** end to end ([`attest`]): every change arriving is checked against an
//!   attestation by its author's node key *before* it is applied. A change that fails, and every
//!   change built on it, is refused: never applied nor forwarded, the message kept in the
//!   quarantine and audited. The message's other changes apply, so a relay holding one bad change
//!   (forged, or stored by a bug) cannot hold back the honest ones it carries; the refused
//!   changes are left out of the peer's heads for the rest of the session, so the two sides do
//!   not ask each other for them in a loop. A message that does not parse, or for a document
//!   not shared, is refused whole and that peer's session for the document held until it
//!   reconnects.
//! - **Cheap reconnects**: on connect each side sends one digest over the heads of every
//!   document both may hold; only when the digests differ do they exchange per-document head
//!   digests, and only documents that differ run automerge's sync protocol.
//! - Frames over [`wire::FRAGMENT_BYTES`] travel in fragments.

pub mod attest;
mod built;
pub mod close;
pub mod doc_id;
mod fixed_ca;
mod judge;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{Automerge, AutomergeError, ChangeHash, ReadDoc, ScalarValue};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

pub use crate::identity::NodeIdentity;
use attest::{Attestation, actor_for};
pub use close::CloseReason;
pub use doc_id::{DocId, DocKind};
pub use fixed_ca::{FIXED_CERT_BYTES, FixedCa};
use judge::{Carried, Refused, heads_without, holds, judge};
use wire::{FRAME_BYTES_MAX, Frame, WIRE_VERSION, WireError};

/// How often connected peers re-compare their summaries, in case a session stalled.
pub const SUMMARY_INTERVAL_MS: i64 = 60_000;
/// The most bytes of unfinished fragments held per peer.
pub const PEER_FRAGMENT_BYTES_MAX: usize = 2 * FRAME_BYTES_MAX;
/// What one fragment counts against [`PEER_FRAGMENT_BYTES_MAX`] at the least, whatever its
/// length: empty fragments are not free.
pub const FRAGMENT_COST_BYTES_MIN: usize = 1024;
/// The most unfinished fragmented frames held per peer (a sender finishes one before the next).
pub const PEER_FRAGMENTED_FRAMES_MAX: usize = 8;
/// Refused messages stored in the quarantine per peer node and hour; beyond, they are refused
/// all the same and counted, but not stored.
pub const QUARANTINES_STORED_PER_HOUR_MAX: u32 = 32;
/// The bytes of a refused message kept in the quarantine; the whole is named by its SHA-256 and
/// length.
pub const QUARANTINE_KEPT_BYTES_MAX: usize = 64 * 1024;
/// Documents one peer's doc lists may make this node start holding per summary interval; more
/// wait for the next interval.
pub const LISTED_NEW_DOCS_MAX: usize = 4096;
/// Changes refused from one peer for one document in a session (remembered to leave them out of
/// the peer's heads); beyond, the document is held on that link until reconnect.
pub const REFUSED_CHANGES_PER_PEER_DOC_MAX: usize = 1024;
/// Changes from one peer for one document that wait for a parent, or for part of their author's
/// attested history, to arrive; beyond, the document is held on that link until reconnect.
pub const WAITING_CHANGES_PER_PEER_DOC_MAX: usize = 1024;
/// The bytes the changes waiting from one peer may hold, over all documents.
pub const WAITING_BYTES_PER_PEER_MAX: usize = 2 * FRAME_BYTES_MAX;
/// Certificate checks remembered (by the certificate's hash); the memory is cleared when full.
pub const CERTS_CHECKED_MAX: usize = 4096;
/// How long a certificate check is remembered: a certificate that expires, or a revocation list
/// that runs out, is judged again within this.
pub const CERT_CHECK_KEPT_MS: i64 = 10 * 60_000;

/// A connection, as numbered by the driver.
pub type PeerId = u64;

/// The connection [`Engine::receive_bundled`] opens for a bundle's frame; drivers number
/// theirs from 1 and never reach it.
pub const BUNDLE_PEER: PeerId = u64::MAX;

/// What a bundle's manifest signature is made over, before the manifest.
pub const BUNDLE_SIGNATURE_LABEL: &[u8] = b"giasync bundle manifest v1\n";

/// A certificate's identity and key, or why it does not vouch for anything.
pub type CertCheck = Result<(NodeIdentity, [u8; 32]), String>;

/// Checks the node certificates that attestations carry.
pub trait CertVerifier {
    /// The identity and ed25519 key of `cert_der`, if it is a node certificate of the region's
    /// CA, valid and not revoked; otherwise why not.
    fn node_key(&self, cert_der: &[u8]) -> CertCheck;

    /// As [`CertVerifier::node_key`], judged at `at_ms` (valid then, not revoked by then): how
    /// an attestation already accepted is judged again when the store is loaded.
    fn node_key_at(&self, cert_der: &[u8], at_ms: i64) -> CertCheck {
        let _ = at_ms;
        self.node_key(cert_der)
    }
}

/// How the driver carries a connection. The engine's frames are the same on either; it only
/// reports the link, so status and pages can say a school syncs over the TCP fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// QUIC over UDP, the transport.
    Quic,
    /// TLS 1.3 over TCP, the fallback for networks that drop UDP.
    Tcp,
}

impl Link {
    /// The link's name as operators read it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Link::Quic => "QUIC",
            Link::Tcp => "TCP",
        }
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happened to the engine.
#[derive(Debug)]
pub enum Input<'a> {
    /// A peer completed the handshake; `identity` comes from its verified certificate, `wire`
    /// is the wire version the two sides agreed on ([`wire::agree`]), `link` how it is carried.
    Connected {
        peer: PeerId,
        identity: NodeIdentity,
        wire: u8,
        link: Link,
    },
    /// The connection to a peer ended.
    Disconnected { peer: PeerId },
    /// A frame arrived from a peer.
    Received { peer: PeerId, bytes: &'a [u8] },
    /// Time passed (see [`Engine::poll_timeout`]).
    Tick,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send one frame to a peer, in order with the other frames to it.
    Send { peer: PeerId, bytes: Vec<u8> },
    /// Write a record to the store.
    Persist(Persist),
    /// Close the connection: the peer broke the protocol, or a newer connection replaced it.
    Close { peer: PeerId, reason: CloseReason },
}

/// A record for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persist {
    /// Changes to append to a document (`Automerge::save_after` output).
    Changes { doc: DocId, bytes: Vec<u8> },
    /// The latest attestation of an author for a document, with the author's certificate.
    Attestation {
        doc: DocId,
        author: [u8; 32],
        cert: Vec<u8>,
        bytes: Vec<u8>,
    },
    /// A refused message, kept for the audit: its first [`QUARANTINE_KEPT_BYTES_MAX`] bytes,
    /// and the SHA-256 and length of the whole.
    Quarantine {
        doc: DocId,
        peer: NodeIdentity,
        reason: String,
        sha256: [u8; 32],
        len: usize,
        bytes: Vec<u8>,
    },
    /// A line of the append-only audit log.
    Audit { at_ms: i64, text: String },
}

/// What a local change could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// This node may not write the document.
    #[error("{me} may not write {doc}")]
    NotWritable { me: String, doc: DocId },
    /// The change itself failed.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
    /// A stored document or attestation does not load.
    #[error("stored {doc}: {reason}")]
    Load { doc: DocId, reason: String },
    /// The stored document did not load when the node started ([`Engine::load_doc`]), so
    /// nothing is written to it: a change would be stored behind the bytes that do not load,
    /// and be lost with them at the next start.
    #[error("{doc} did not load from the store; nothing is written to it until it is restored")]
    Unreadable { doc: DocId },
}

#[derive(Debug, Clone)]
struct Endorsement {
    attestation: Attestation,
    cert: Arc<Vec<u8>>,
    identity: NodeIdentity,
}

/// The certificate to send with `e`: its author's last that checked here, when it names the
/// same identity (`Engine::latest_certs`), else the one `e` was stored with.
fn cert_to_send(
    latest: &HashMap<[u8; 32], (NodeIdentity, Arc<Vec<u8>>)>,
    e: &Endorsement,
) -> Arc<Vec<u8>> {
    latest
        .get(&e.attestation.author)
        .filter(|(identity, _)| *identity == e.identity)
        .map_or_else(|| Arc::clone(&e.cert), |(_, cert)| Arc::clone(cert))
}

#[derive(Debug)]
struct DocState {
    doc: Automerge,
    /// The document's id as text, and its [`wire::bucket_key`]: what summaries and bucket
    /// digests hash for it, once a minute per peer, for every shared document.
    id_text: Box<str>,
    bucket_key: u16,
    /// The digest of `doc`'s heads ([`heads_digest`]), made again after every change to `doc`
    /// ([`DocState::changed`]): summaries read it for every shared document, once a minute per
    /// peer, and the РЦОИ shares thousands.
    digest: [u8; 32],
    saved_heads: Vec<ChangeHash>,
    /// The latest attestation of each author, by key.
    endorsements: BTreeMap<[u8; 32], Endorsement>,
}

impl DocState {
    fn new(id: DocId, doc: Automerge, saved_heads: Vec<ChangeHash>) -> DocState {
        let id_text: Box<str> = id.to_string().into();
        DocState {
            bucket_key: wire::bucket_key(&id_text),
            id_text,
            digest: heads_digest(&doc.get_heads()),
            doc,
            saved_heads,
            endorsements: BTreeMap::new(),
        }
    }

    /// Notes that `doc` may have changed: its digest is made again.
    fn changed(&mut self) {
        self.digest = heads_digest(&self.doc.get_heads());
    }

    /// The digest of the document's heads.
    fn digest(&self) -> [u8; 32] {
        debug_assert_eq!(
            self.digest,
            heads_digest(&self.doc.get_heads()),
            "every change to a document makes its digest again"
        );
        self.digest
    }
}

#[derive(Debug, Default)]
struct PeerDoc {
    state: sync::State,
    /// Set when a message was refused whole: nothing more is exchanged until reconnect.
    blocked: bool,
    /// Changes refused from this peer in this session, with their dependencies: left out of the
    /// heads the peer advertises (see [`heads_without`]).
    refused: HashMap<ChangeHash, Vec<ChangeHash>>,
    /// Changes from this peer that cannot be judged yet (see [`judge`]): judged again with its
    /// next message, dropped when the session ends.
    waiting: Vec<automerge::Change>,
    /// Attestations from this peer naming a change this node does not hold yet, by author:
    /// used to judge its later messages, and stored (and forwarded) only once every head they
    /// name is held, so that what this node forwards it can prove (see [`Engine::receive_changes`]).
    unproven: BTreeMap<[u8; 32], Endorsement>,
    /// Set when what the document needs sent makes a frame no peer reassembles: nothing more
    /// is sent of it until reconnect (what the peer sends is still taken in).
    too_large: bool,
    /// Attestations already sent, by (author, time).
    sent: BTreeSet<([u8; 32], i64)>,
}

fn bytes_of(changes: &[automerge::Change]) -> usize {
    changes.iter().map(|c| c.raw_bytes().len()).sum()
}

impl PeerDoc {
    /// Remembers `refused` for the session; more than [`REFUSED_CHANGES_PER_PEER_DOC_MAX`]
    /// refuse the message whole.
    fn remember_refused(&mut self, refused: &[Refused]) -> Result<(), String> {
        for r in refused {
            if self.refused.len() >= REFUSED_CHANGES_PER_PEER_DOC_MAX {
                return Err(format!(
                    "more than {REFUSED_CHANGES_PER_PEER_DOC_MAX} refused changes in a session; first: {}",
                    refused.first().map_or("", |r| r.why.as_str())
                ));
            }
            self.refused.insert(r.hash, r.deps.clone());
        }
        Ok(())
    }

    /// Takes the changes waiting, for judging again; `peer_bytes` counts what waits from the
    /// peer over all documents.
    fn take_waiting(&mut self, peer_bytes: &mut usize) -> Vec<automerge::Change> {
        let waiting = std::mem::take(&mut self.waiting);
        *peer_bytes = peer_bytes.saturating_sub(bytes_of(&waiting));
        waiting
    }

    /// Holds `changes` until what they wait for arrives; beyond the bounds the message is
    /// refused whole.
    fn wait_for(
        &mut self,
        changes: Vec<automerge::Change>,
        peer_bytes: &mut usize,
    ) -> Result<(), String> {
        let bytes = bytes_of(&changes);
        if changes.len() > WAITING_CHANGES_PER_PEER_DOC_MAX
            || *peer_bytes + bytes > WAITING_BYTES_PER_PEER_MAX
        {
            return Err(format!(
                "{} changes ({bytes} bytes) wait for parents or attested history that has not \
                 arrived; at most {WAITING_CHANGES_PER_PEER_DOC_MAX} changes per document and \
                 {WAITING_BYTES_PER_PEER_MAX} bytes per peer wait",
                changes.len()
            ));
        }
        *peer_bytes += bytes;
        self.waiting = changes;
        Ok(())
    }

    /// Leaves the changes refused from this peer, and those waiting, out of the heads it
    /// advertised.
    fn leave_out_unapplied(&mut self, doc: &Automerge) {
        self.refused.retain(|h, _| !holds(doc, h));
        if self.refused.is_empty() && self.waiting.is_empty() {
            return;
        }
        let mut left_out = self.refused.clone();
        left_out.extend(self.waiting.iter().map(|c| (c.hash(), c.deps().to_vec())));
        if let Some(heads) = self.state.their_heads.as_mut() {
            *heads = heads_without(heads, &left_out, doc);
        }
    }
}

/// What a sync message with changes did.
#[derive(Debug, Default)]
struct Received {
    /// Changes applied.
    applied: u64,
    /// Why some of its changes or attestations were refused, if any were.
    refused: Option<String>,
    /// The applied changes' own bytes, when they are all the document holds unsaved (what
    /// `save_after` would rebuild from the op set, which costs a walk of it).
    bytes: Option<Vec<u8>>,
}

#[derive(Debug)]
struct PeerState {
    identity: NodeIdentity,
    /// The wire version agreed with the peer: every frame to and from it carries it.
    wire: u8,
    /// How the driver carries the connection (reported, not used).
    link: Link,
    docs: BTreeMap<DocId, PeerDoc>,
    fragments: BTreeMap<u32, Unfinished>,
    /// What the unfinished fragments count against [`PEER_FRAGMENT_BYTES_MAX`].
    fragment_bytes: usize,
    next_fragment_id: u32,
    last_summary_ms: i64,
    /// Documents the peer is known to hold at the heads with this digest.
    confirmed: BTreeMap<DocId, [u8; 32]>,
    /// The certificate of each author sent to the peer in this session: later attestations by
    /// them travel without it, until the author's certificate this node sends changes.
    certs_sent: BTreeMap<[u8; 32], Arc<Vec<u8>>>,
    /// Certificates the peer sent in this session (checked against the CA), by author key.
    certs_received: BTreeMap<[u8; 32], Arc<Vec<u8>>>,
    /// What the changes waiting from the peer hold, over all documents.
    waiting_bytes: usize,
}

/// A frame arriving in fragments.
#[derive(Debug)]
struct Unfinished {
    total: u32,
    parts: BTreeMap<u32, Vec<u8>>,
    /// What its parts count against the peer's fragment budget.
    cost_bytes: usize,
}

/// What the engine knows of a peer, connected now or before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    pub identity: NodeIdentity,
    pub connected: bool,
    /// When a frame last arrived from it (ms), if ever.
    pub last_contact_ms: Option<i64>,
    /// Shared documents whose heads it has not confirmed holding (connected peers only).
    pub docs_pending: usize,
    /// How the connection is carried (connected peers only).
    pub link: Option<Link>,
}

/// Counters for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    /// Frames (and their bytes) received from connected peers, whatever became of them.
    pub frames_received: u64,
    pub bytes_received: u64,
    pub changes_applied: u64,
    pub messages_quarantined: u64,
    /// Stored attestations whose certificate no longer vouched for them when the store was
    /// loaded (each set aside, in the audit log, and the node started anyway).
    pub attestations_refused_on_load: u64,
    /// Stored documents whose bytes did not load (left in the store, not held).
    pub docs_refused_on_load: u64,
}

/// The sync engine of one node.
pub struct Engine {
    me: NodeIdentity,
    key: SigningKey,
    cert: Arc<Vec<u8>>,
    verifier: Box<dyn CertVerifier + Send>,
    docs: BTreeMap<DocId, DocState>,
    peers: BTreeMap<PeerId, PeerState>,
    out: VecDeque<Output>,
    now_ms: i64,
    /// Certificate checks by the certificate's hash, with when they were made.
    certs_checked: HashMap<[u8; 32], (CertCheck, i64)>,
    /// The last certificate of each author key that checked now, with its identity: sent with
    /// that author's attestations in place of the one they were stored with
    /// ([`cert_to_send`]). A node renewing its certificate keeps its key, and the old
    /// certificate, expired or revoked, would make every node that takes the author's older
    /// documents afresh (a school restored empty, a new hub) refuse them.
    latest_certs: HashMap<[u8; 32], (NodeIdentity, Arc<Vec<u8>>)>,
    /// The keys of the authors whose certificates checked, decompressed once: a node checks
    /// an attestation of one of a few hundred authors at nearly every change it takes in.
    /// Only keys a certificate from the region's CA vouches for are kept, so it stays as small
    /// as the region.
    author_keys: HashMap<[u8; 32], VerifyingKey>,
    stats: Stats,
    /// The last time each node was heard from, kept after it disconnects.
    last_contact: BTreeMap<String, (NodeIdentity, i64)>,
    /// Refused messages stored per peer node in the current hour: (hour started, how many).
    quarantined_by: BTreeMap<String, (i64, u32)>,
    /// Documents each peer node made this node start holding in the current summary interval:
    /// (interval started, how many). By node, not connection, so reconnecting starts no new
    /// allowance.
    new_docs_by: BTreeMap<String, (i64, usize)>,
    /// The wire versions this engine speaks ([`wire::WIRE_VERSIONS`] unless switched by
    /// [`Engine::speak_wire_versions`]).
    wire_versions: Vec<u8>,
    /// Good signatures of signed statements this node has checked ([`Engine::signatures`]).
    signatures: crate::signature_memo::SignatureMemo,
    /// Stored documents that did not load ([`EngineError::Unreadable`]): neither changed here
    /// nor taken from peers until a load succeeds.
    unreadable: BTreeSet<DocId>,
    /// What the РЦОИ's receipt passes last judged each protocol's sheets receipted invalid
    /// against ([`Engine::invalid_judged_against`]).
    invalid_judged_against: BTreeMap<DocId, [u8; 32]>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Engine({}, {} docs, {} peers)",
            self.me,
            self.docs.len(),
            self.peers.len()
        )
    }
}

/// Documents per bucket the narrowing aims at.
const DOCS_PER_BUCKET: u32 = 4;

/// How many buckets to group `docs` documents into: 1 (a plain document list) up to 16 documents,
/// then about four documents a bucket, at most [`wire::BUCKETS_MAX`].
fn bucket_count_for(docs: u32) -> u16 {
    if docs <= 4 * DOCS_PER_BUCKET {
        return 1;
    }
    let wanted = docs.div_ceil(DOCS_PER_BUCKET).next_power_of_two();
    u16::try_from(wanted.min(wire::BUCKETS_MAX as u32)).unwrap_or(1)
}

/// A document list's entry: the document and the first 8 bytes of its heads' digest.
type DocEntry = (DocId, [u8; 8]);

/// The document list for `buckets` of `bucket_count` in frames of at most `entries_max` entries
/// each, every frame naming the buckets it covers, whole: a receiver refuses a longer list
/// ([`wire::DOC_LIST_ENTRIES_MAX`]) and judges each frame by its own buckets, so a node sharing
/// more documents with a peer than one list holds (a hub whose schools made many) still syncs.
/// A bucket alone over the bound (some 400 million documents in all) is cut at it: the receiver
/// then opens sync for the documents left out, which finds them equal.
fn split_doc_list(
    bucket_count: u16,
    buckets: &[u16],
    entries: Vec<DocEntry>,
    entries_max: usize,
) -> Vec<(Vec<u16>, Vec<DocEntry>)> {
    if entries.len() <= entries_max {
        return vec![(buckets.to_vec(), entries)];
    }
    let mut by_bucket: BTreeMap<u16, Vec<DocEntry>> =
        buckets.iter().map(|b| (*b, Vec::new())).collect();
    for entry in entries {
        if let Some(list) = by_bucket.get_mut(&wire::bucket_of(&entry.0, bucket_count)) {
            list.push(entry);
        }
    }
    let mut frames: Vec<(Vec<u16>, Vec<DocEntry>)> = Vec::new();
    for (bucket, mut list) in by_bucket {
        list.truncate(entries_max);
        match frames.last_mut() {
            Some((bs, es)) if es.len() + list.len() <= entries_max => {
                bs.push(bucket);
                es.extend(list);
            }
            _ => frames.push((vec![bucket], list)),
        }
    }
    frames
}

fn heads_digest(heads: &[ChangeHash]) -> [u8; 32] {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut h = Sha256::new();
    for head in &sorted {
        h.update(head.0);
    }
    h.finalize().into()
}

fn short(digest: [u8; 32]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

impl Engine {
    /// An engine for node `me`, signing its attestations with `key` (its node key, whose
    /// certificate is `cert_der`).
    pub fn new(
        me: NodeIdentity,
        key: SigningKey,
        cert_der: Vec<u8>,
        verifier: Box<dyn CertVerifier + Send>,
    ) -> Self {
        let cert = Arc::new(cert_der);
        let own = (key.verifying_key().to_bytes(), (me, Arc::clone(&cert)));
        Engine {
            me,
            key,
            cert,
            verifier,
            docs: BTreeMap::new(),
            peers: BTreeMap::new(),
            out: VecDeque::new(),
            now_ms: 0,
            certs_checked: HashMap::new(),
            latest_certs: HashMap::from([own]),
            author_keys: HashMap::new(),
            stats: Stats::default(),
            last_contact: BTreeMap::new(),
            quarantined_by: BTreeMap::new(),
            new_docs_by: BTreeMap::new(),
            wire_versions: wire::WIRE_VERSIONS.to_vec(),
            signatures: crate::signature_memo::SignatureMemo::default(),
            unreadable: BTreeSet::new(),
            invalid_judged_against: BTreeMap::new(),
        }
    }

    /// This node's memory of good statement signatures ([`crate::signature_memo`]): what
    /// re-reads the same signed statements at every change (the РЦОИ's ingest) checks through.
    #[must_use]
    pub fn signatures(&self) -> &crate::signature_memo::SignatureMemo {
        &self.signatures
    }

    /// At the РЦОИ, by protocol: the digest of the experts' certificates its sheets receipted
    /// invalid were last judged against (`crate::ingest`), so they are judged again when the
    /// school changes them, and only then. Kept with the engine, not stored: a node that starts
    /// again judges them all again, against its CA and revocation list as they are then.
    #[must_use]
    pub fn invalid_judged_against(&self, protocol: &DocId) -> Option<[u8; 32]> {
        self.invalid_judged_against.get(protocol).copied()
    }

    /// Notes what the sheets of `protocol` receipted invalid were judged against
    /// ([`Engine::invalid_judged_against`]).
    pub fn note_invalid_judged_against(&mut self, protocol: DocId, digest: [u8; 32]) {
        self.invalid_judged_against.insert(protocol, digest);
    }

    /// The switch to another set of wire versions: how a test runs a node of the next version
    /// (speaking this one and the next) beside one of this version. The driver offers exactly
    /// these when a connection opens ([`Engine::wire_versions`]).
    pub fn speak_wire_versions(&mut self, versions: &[u8]) {
        self.wire_versions = versions.to_vec();
    }

    /// The wire versions this engine speaks, oldest first.
    #[must_use]
    pub fn wire_versions(&self) -> &[u8] {
        &self.wire_versions
    }

    /// Signs a statement with this node's key (the РЦОИ publishing results).
    pub fn node_statement(
        &self,
        kind: crate::statement::StatementKind,
        fields: &crate::statement::Fields,
    ) -> Result<crate::statement::Statement, crate::statement::StatementError> {
        crate::statement::Statement::sign(kind, fields, &self.key)
    }

    /// This node's certificate (DER), as attestations carry it.
    #[must_use]
    pub fn node_cert(&self) -> &[u8] {
        &self.cert
    }

    #[must_use]
    pub fn identity(&self) -> NodeIdentity {
        self.me
    }

    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Restores a document from the store: its saved bytes and the stored attestations
    /// (certificate, attestation). Stored data is checked like anything received, except that a
    /// certificate is judged at its attestation's own time (a node certificate that expired or
    /// was revoked since still vouches for what it attested before). An attestation that does
    /// not pass is set aside with an audit line and counted in
    /// [`Stats::attestations_refused_on_load`], and the document loads: one bad record never stops
    /// a node from starting. Only bytes that are not a document are an error.
    pub fn load_doc(
        &mut self,
        doc: DocId,
        saved: &[u8],
        endorsements: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), EngineError> {
        let load_error = |reason: String| EngineError::Load { doc, reason };
        let mut am = match Automerge::load(saved) {
            Ok(am) => am,
            Err(e) => {
                self.stats.docs_refused_on_load += 1;
                // Its store rows stay as they are (a restore, or a repair, reads them); what
                // would be written after them would not load either.
                self.unreadable.insert(doc);
                return Err(load_error(e.to_string()));
            }
        };
        // Changes whose parents are missing would wait in automerge's queue and apply unjudged
        // when a parent came: a stored document holds none (only judged changes are applied and
        // saved), and any there are left out.
        if !am.get_missing_deps(&[]).is_empty() {
            let whole = am.save_with_options(automerge::SaveOptions {
                deflate: false,
                retain_orphans: false,
            });
            am = match Automerge::load(&whole) {
                Ok(am) => am,
                Err(e) => {
                    self.stats.docs_refused_on_load += 1;
                    self.unreadable.insert(doc);
                    return Err(load_error(e.to_string()));
                }
            };
        }
        self.unreadable.remove(&doc);
        am.set_actor(actor_for(&self.key.verifying_key().to_bytes()));
        let saved_heads = am.get_heads();
        let mut state = DocState::new(doc, am, saved_heads);
        for (cert, bytes) in endorsements {
            match self.stored_endorsement(doc, cert, bytes) {
                Ok(e) => {
                    state.endorsements.insert(e.attestation.author, e);
                }
                Err(reason) => {
                    self.stats.attestations_refused_on_load += 1;
                    self.audit(format!(
                        "stored attestation of {doc} set aside on load: {reason}"
                    ));
                }
            }
        }
        self.docs.insert(doc, state);
        Ok(())
    }

    /// A document as one sync frame for removable media (a bundle): the whole document as the
    /// message's only chunk, with every author's latest attestation and certificate. A node
    /// reading the bundle judges it like any frame received ([`Engine::receive_bundled`]).
    #[must_use]
    pub fn bundle_frame(&self, doc: &DocId) -> Option<Vec<u8>> {
        let state = self.docs.get(doc)?;
        let message = sync::Message {
            heads: state.doc.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![state.doc.save()].into(),
            flags: None,
            version: sync::MessageVersion::V2,
        };
        let attestations = state
            .endorsements
            .values()
            .map(|e| {
                (
                    cert_to_send(&self.latest_certs, e).to_vec(),
                    e.attestation.as_bytes().to_vec(),
                )
            })
            .collect();
        Some(
            Frame::Sync {
                doc: *doc,
                message: message.encode(),
                attestations,
            }
            .encode(),
        )
    }

    /// Signs a bundle's manifest with this node's key, under a label of its own so the
    /// signature can stand for nothing else.
    #[must_use]
    pub fn sign_bundle(&self, manifest: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        let mut signed = BUNDLE_SIGNATURE_LABEL.to_vec();
        signed.extend_from_slice(manifest);
        self.key.sign(&signed).to_bytes()
    }

    /// Takes in a document frame from a bundle written by `identity` (its certificate checked by
    /// the caller): judged exactly as if that node had sent it over a connection, so only
    /// changes it or another node may be shown to have written pass. Returns whether this node
    /// now holds every head the frame's document had.
    pub fn receive_bundled(&mut self, now_ms: i64, identity: NodeIdentity, frame: &[u8]) -> bool {
        let Ok(Frame::Sync { doc, message, .. }) = Frame::decode(frame) else {
            return false;
        };
        let Ok(heads) = sync::Message::decode(&message).map(|m| m.heads) else {
            return false;
        };
        // A connection of its own, opened and closed around the one frame; what the engine
        // would send on it goes nowhere.
        let peer = BUNDLE_PEER;
        self.handle(
            now_ms,
            Input::Connected {
                peer,
                identity,
                wire: WIRE_VERSION,
                link: Link::Quic,
            },
        );
        self.handle(now_ms, Input::Received { peer, bytes: frame });
        self.handle(now_ms, Input::Disconnected { peer });
        self.out.retain(|o| match o {
            Output::Send { peer: p, .. } | Output::Close { peer: p, .. } => *p != peer,
            Output::Persist(_) => true,
        });
        self.docs
            .get(&doc)
            .is_some_and(|d| heads.iter().all(|h| d.doc.get_change_by_hash(h).is_some()))
    }

    /// The document, for reading.
    #[must_use]
    pub fn doc(&self, doc: &DocId) -> Option<&Automerge> {
        self.docs.get(doc).map(|d| &d.doc)
    }

    /// The identities of the connected peers.
    pub fn peers(&self) -> impl Iterator<Item = &NodeIdentity> {
        self.peers.values().map(|p| &p.identity)
    }

    /// Every peer this engine has heard from or is connected to: connection, last contact and
    /// documents it has not confirmed holding at our heads (neither the summaries matched nor
    /// automerge's session with it reached our heads).
    #[must_use]
    pub fn peer_reports(&self) -> Vec<PeerReport> {
        let mut reports: BTreeMap<String, PeerReport> = self
            .last_contact
            .iter()
            .map(|(uri, (identity, at))| {
                (
                    uri.clone(),
                    PeerReport {
                        identity: *identity,
                        connected: false,
                        last_contact_ms: Some(*at),
                        docs_pending: 0,
                        link: None,
                    },
                )
            })
            .collect();
        for p in self.peers.values() {
            let pending = self
                .shared_docs(&p.identity)
                .iter()
                .filter(|d| {
                    let ours = self.doc_digest(d);
                    let by_session = p
                        .docs
                        .get(d)
                        .is_some_and(|pd| heads_digest(&pd.state.shared_heads) == ours);
                    !by_session && p.confirmed.get(d) != Some(&ours)
                })
                .count();
            let entry = reports.entry(p.identity.to_uri()).or_insert(PeerReport {
                identity: p.identity,
                connected: true,
                last_contact_ms: None,
                docs_pending: 0,
                link: None,
            });
            entry.connected = true;
            entry.link = Some(p.link);
            entry.docs_pending = entry.docs_pending.max(pending);
        }
        reports.into_values().collect()
    }

    /// Every document held.
    pub fn doc_ids(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// Changes a document this node may write (creating it if new), persists the change and
    /// offers it to every connected peer that may read the document.
    pub fn change<F>(&mut self, now_ms: i64, doc: DocId, f: F) -> Result<(), EngineError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let state = self.writable(now_ms, doc)?;
        let mut tx = state.doc.transaction();
        f(&mut tx)?;
        tx.commit_with(CommitOptions::default().with_time(now_ms));
        self.changed_here(doc, None);
        Ok(())
    }

    /// Puts each of `entries` (key, value) into the root map of a document this node may write,
    /// as one change, persisted and offered as [`Engine::change`] does. Many puts go as a
    /// change built whole, which automerge applies in one walk of the map, few in a
    /// transaction, which seeks each key ([`built`]); the document is the same either way.
    pub fn put_root(
        &mut self,
        now_ms: i64,
        doc: DocId,
        entries: &[(String, ScalarValue)],
    ) -> Result<(), EngineError> {
        let state = self.writable(now_ms, doc)?;
        if built::worth_building(&state.doc, entries.len())
            && let Some(change) = built::root_puts(&state.doc, entries, now_ms)?
        {
            // Its bytes are the change's own, unless changes before it are not saved yet.
            let unsaved = state.saved_heads != state.doc.get_heads();
            let bytes = (!unsaved).then(|| change.raw_bytes().to_vec());
            state.doc.apply_changes([change])?;
            self.changed_here(doc, bytes);
            return Ok(());
        }
        self.change(now_ms, doc, |tx| {
            entries
                .iter()
                .try_for_each(|(k, v)| tx.put(automerge::ROOT, k.as_str(), v.clone()))
        })
    }

    /// The state of `doc` to write to at `now_ms` (made if new), if this node may write it.
    fn writable(&mut self, now_ms: i64, doc: DocId) -> Result<&mut DocState, EngineError> {
        self.now_ms = now_ms;
        if !doc.writable_by(&self.me) {
            return Err(EngineError::NotWritable {
                me: self.me.to_string(),
                doc,
            });
        }
        if self.unreadable.contains(&doc) {
            return Err(EngineError::Unreadable { doc });
        }
        let actor = actor_for(&self.key.verifying_key().to_bytes());
        Ok(self
            .docs
            .entry(doc)
            .or_insert_with(|| DocState::new(doc, Automerge::new().with_actor(actor), Vec::new())))
    }

    /// After this node changed `doc`: persists the change (`bytes`, when they are all that is
    /// unsaved; else read from the document), attests it and offers it to the peers.
    fn changed_here(&mut self, doc: DocId, bytes: Option<Vec<u8>>) {
        let Some(state) = self.docs.get_mut(&doc) else {
            return;
        };
        state.changed();
        self.persist(doc, bytes);
        self.attest(doc);
        self.offer(doc, None);
    }

    /// Persists what `doc` gained since it was last saved: `bytes`, when the caller knows them
    /// to be exactly that, else read from the document.
    fn persist(&mut self, doc: DocId, bytes: Option<Vec<u8>>) {
        match (bytes, self.docs.get_mut(&doc)) {
            (Some(bytes), Some(state)) => {
                state.saved_heads = state.doc.get_heads();
                self.out
                    .push_back(Output::Persist(Persist::Changes { doc, bytes }));
            }
            _ => self.persist_changes(doc),
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now_ms: i64, input: Input<'_>) {
        self.now_ms = now_ms;
        match input {
            Input::Connected {
                peer,
                identity,
                wire,
                link,
            } => self.connected(peer, identity, wire, link),
            Input::Disconnected { peer } => {
                self.peers.remove(&peer);
            }
            Input::Received { peer, bytes } => self.received(peer, bytes),
            Input::Tick => {
                let due: Vec<PeerId> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| now_ms - p.last_summary_ms >= SUMMARY_INTERVAL_MS)
                    .map(|(id, _)| *id)
                    .collect();
                for peer in due {
                    self.send_summary(peer);
                }
            }
        }
    }

    /// The next output for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When the engine next wants an [`Input::Tick`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<i64> {
        self.peers
            .values()
            .map(|p| p.last_summary_ms + SUMMARY_INTERVAL_MS)
            .min()
    }

    fn audit(&mut self, text: String) {
        self.note(self.now_ms, text);
    }

    /// Appends a line to the audit log at `now_ms` (who asked a node for what, from its skins).
    pub fn note(&mut self, now_ms: i64, text: String) {
        self.out.push_back(Output::Persist(Persist::Audit {
            at_ms: now_ms,
            text,
        }));
    }

    /// Documents both this node and `peer` may hold, that this node has.
    fn shared_docs(&self, peer: &NodeIdentity) -> Vec<DocId> {
        self.shared_states(peer).map(|(d, _)| *d).collect()
    }

    /// The documents both this node and `peer` may read, with their states, in id order.
    fn shared_states<'a>(
        &'a self,
        peer: &'a NodeIdentity,
    ) -> impl Iterator<Item = (&'a DocId, &'a DocState)> + 'a {
        self.docs
            .iter()
            .filter(|(d, _)| d.readable_by(peer) && d.readable_by(&self.me))
    }

    fn doc_digest(&self, doc: &DocId) -> [u8; 32] {
        self.docs.get(doc).map_or([0; 32], DocState::digest)
    }

    fn connected(&mut self, peer: PeerId, identity: NodeIdentity, wire: u8, link: Link) {
        if !self.wire_versions.contains(&wire) {
            self.audit(format!(
                "{identity} connected in wire version {wire}, which this node does not speak"
            ));
            self.out.push_back(Output::Close {
                peer,
                reason: CloseReason::WireVersion(wire),
            });
            return;
        }
        // One connection per node: a newer one replaces the older (a node that reconnects
        // before its old connection timed out), so no node holds several fragment budgets.
        let older: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.identity == identity)
            .map(|(id, _)| *id)
            .collect();
        for old in older {
            self.peers.remove(&old);
            self.audit(format!(
                "{identity} connected again: its older connection is closed"
            ));
            self.out.push_back(Output::Close {
                peer: old,
                reason: CloseReason::Replaced,
            });
        }
        self.peers.insert(
            peer,
            PeerState {
                identity,
                wire,
                link,
                docs: BTreeMap::new(),
                fragments: BTreeMap::new(),
                fragment_bytes: 0,
                next_fragment_id: 0,
                last_summary_ms: self.now_ms,
                confirmed: BTreeMap::new(),
                certs_sent: BTreeMap::new(),
                certs_received: BTreeMap::new(),
                waiting_bytes: 0,
            },
        );
        self.audit(format!("connected {identity}"));
        self.send_summary(peer);
    }

    fn summary(&self, peer: &NodeIdentity) -> ([u8; 32], u32) {
        let mut h = Sha256::new();
        let mut docs = 0usize;
        for (_, state) in self.shared_states(peer) {
            h.update(state.id_text.as_bytes());
            h.update([0]);
            h.update(state.digest());
            docs += 1;
        }
        (h.finalize().into(), u32::try_from(docs).unwrap_or(u32::MAX))
    }

    fn send_summary(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.last_summary_ms = self.now_ms;
        let identity = p.identity;
        let (digest, docs) = self.summary(&identity);
        self.send(peer, &Frame::Summary { digest, docs });
    }

    fn send(&mut self, peer: PeerId, frame: &Frame) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let id = p.next_fragment_id;
        p.next_fragment_id = p.next_fragment_id.wrapping_add(1);
        let parts = match frame.encode_fragmented(id, p.wire) {
            Ok(parts) => parts,
            Err(len) => {
                // No peer reassembles it: sending it would only get this link closed, again
                // at every reconnect. The document stays behind for this peer, said once in the
                // audit log; the link and every other document go on.
                let identity = p.identity;
                if let Frame::Sync { doc, .. } = frame {
                    p.docs.entry(*doc).or_default().too_large = true;
                    self.audit(format!(
                        "{doc}: {len} bytes of changes for {identity}, more than a frame carries ({FRAME_BYTES_MAX}); not sent"
                    ));
                } else {
                    self.audit(format!(
                        "a frame of {len} bytes for {identity}, more than a frame carries ({FRAME_BYTES_MAX}); not sent"
                    ));
                }
                return;
            }
        };
        for bytes in parts {
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += bytes.len() as u64;
            self.out.push_back(Output::Send { peer, bytes });
        }
    }

    fn received(&mut self, peer: PeerId, bytes: &[u8]) {
        let Some((identity, wire)) = self.peers.get(&peer).map(|p| (p.identity, p.wire)) else {
            return;
        };
        self.stats.frames_received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        self.last_contact
            .insert(identity.to_uri(), (identity, self.now_ms));
        let decoded = match Frame::version(bytes) {
            Some(v) if v == wire => Frame::decode(bytes),
            _ => Err(WireError {
                at: 0,
                reason: "not the wire version agreed for this connection",
            }),
        };
        let frame = match decoded {
            Ok(frame) => frame,
            Err(e) => {
                self.audit(format!("malformed frame from {identity}: {e}"));
                self.out.push_back(Output::Close {
                    peer,
                    reason: CloseReason::Malformed(e),
                });
                return;
            }
        };
        match frame {
            Frame::Fragment {
                id,
                index,
                total,
                bytes,
            } => self.fragment(peer, identity, id, index, total, bytes),
            Frame::Summary { digest, docs } => {
                let (ours, our_docs) = self.summary(&identity);
                if digest == ours {
                    let confirmed: Vec<(DocId, [u8; 32])> = self
                        .shared_docs(&identity)
                        .into_iter()
                        .map(|d| (d, self.doc_digest(&d)))
                        .collect();
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.confirmed.extend(confirmed);
                    }
                    return;
                }
                let bucket_count = bucket_count_for(docs.max(our_docs));
                if bucket_count == 1 {
                    let entries = self.doc_entries(&identity, 1, &[]);
                    self.send(
                        peer,
                        &Frame::DocList {
                            bucket_count,
                            buckets: Vec::new(),
                            entries,
                        },
                    );
                } else {
                    let digests = self.bucket_digests(&identity, bucket_count);
                    self.send(peer, &Frame::Buckets { digests });
                }
            }
            Frame::Buckets { digests } => {
                let Ok(bucket_count) = u16::try_from(digests.len()) else {
                    return;
                };
                let ours = self.bucket_digests(&identity, bucket_count);
                let buckets: Vec<u16> = (0..bucket_count)
                    .filter(|&b| ours.get(usize::from(b)) != digests.get(usize::from(b)))
                    .collect();
                let same_buckets: Vec<u16> =
                    (0..bucket_count).filter(|b| !buckets.contains(b)).collect();
                let same: Vec<(DocId, [u8; 32])> = if same_buckets.is_empty() {
                    Vec::new()
                } else {
                    self.docs_in(&identity, bucket_count, &same_buckets)
                        .into_iter()
                        .map(|d| (d, self.doc_digest(&d)))
                        .collect()
                };
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.confirmed.extend(same);
                }
                if !buckets.is_empty() {
                    let entries = self.doc_entries(&identity, bucket_count, &buckets);
                    for (buckets, entries) in
                        split_doc_list(bucket_count, &buckets, entries, wire::DOC_LIST_ENTRIES_MAX)
                    {
                        self.send(
                            peer,
                            &Frame::DocList {
                                bucket_count,
                                buckets,
                                entries,
                            },
                        );
                    }
                }
            }
            Frame::DocList {
                bucket_count,
                buckets,
                entries,
            } => {
                self.doc_list(peer, identity, bucket_count, &buckets, entries);
            }
            Frame::Sync {
                doc,
                message,
                attestations,
            } => self.sync(peer, identity, doc, &message, &attestations),
        }
    }

    fn fragment(
        &mut self,
        peer: PeerId,
        identity: NodeIdentity,
        id: u32,
        index: u32,
        total: u32,
        bytes: Vec<u8>,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let cost = bytes.len().max(FRAGMENT_COST_BYTES_MIN);
        let parts_max = FRAME_BYTES_MAX.div_ceil(wire::FRAGMENT_BYTES);
        let refusal = if usize::try_from(total).map_or(true, |t| t > parts_max) {
            Some(CloseReason::FragmentsPastFrameMax)
        } else if p.fragment_bytes + cost > PEER_FRAGMENT_BYTES_MAX {
            Some(CloseReason::FragmentBytes)
        } else if !p.fragments.contains_key(&id) && p.fragments.len() >= PEER_FRAGMENTED_FRAMES_MAX
        {
            Some(CloseReason::FragmentedFrames)
        } else if p.fragments.get(&id).is_some_and(|u| u.total != total) {
            Some(CloseReason::InconsistentFragments)
        } else {
            None
        };
        if let Some(reason) = refusal {
            p.fragments.clear();
            p.fragment_bytes = 0;
            self.audit(format!("{identity} sent {reason}; closing"));
            self.out.push_back(Output::Close { peer, reason });
            return;
        }
        p.fragment_bytes += cost;
        let unfinished = p.fragments.entry(id).or_insert_with(|| Unfinished {
            total,
            parts: BTreeMap::new(),
            cost_bytes: 0,
        });
        unfinished.cost_bytes += cost;
        unfinished.parts.insert(index, bytes);
        if unfinished.parts.len() < usize::try_from(total).unwrap_or(usize::MAX) {
            return;
        }
        let Some(done) = p.fragments.remove(&id) else {
            return;
        };
        p.fragment_bytes = p.fragment_bytes.saturating_sub(done.cost_bytes);
        let whole: Vec<u8> = done.parts.into_values().flatten().collect();
        if matches!(Frame::decode(&whole), Ok(Frame::Fragment { .. })) {
            self.out.push_back(Output::Close {
                peer,
                reason: CloseReason::NestedFragments,
            });
            return;
        }
        self.received(peer, &whole);
    }

    /// Shared documents in `buckets` of `bucket_count` (all when `buckets` is empty).
    fn docs_in(&self, identity: &NodeIdentity, bucket_count: u16, buckets: &[u16]) -> Vec<DocId> {
        self.shared_states(identity)
            .filter(|(_, state)| {
                buckets.is_empty()
                    || buckets.contains(&wire::bucket_in(state.bucket_key, bucket_count))
            })
            .map(|(d, _)| *d)
            .collect()
    }

    fn doc_entries(
        &self,
        identity: &NodeIdentity,
        bucket_count: u16,
        buckets: &[u16],
    ) -> Vec<(DocId, [u8; 8])> {
        self.docs_in(identity, bucket_count, buckets)
            .into_iter()
            .map(|d| (d, short(self.doc_digest(&d))))
            .collect()
    }

    fn bucket_digests(&self, identity: &NodeIdentity, bucket_count: u16) -> Vec<[u8; 8]> {
        let mut hashers: Vec<Sha256> = (0..bucket_count).map(|_| Sha256::new()).collect();
        for (_, state) in self.shared_states(identity) {
            let bucket = wire::bucket_in(state.bucket_key, bucket_count);
            if let Some(h) = hashers.get_mut(usize::from(bucket)) {
                h.update(state.id_text.as_bytes());
                h.update([0]);
                h.update(state.digest());
            }
        }
        hashers
            .into_iter()
            .map(|h| short(h.finalize().into()))
            .collect()
    }

    fn doc_list(
        &mut self,
        peer: PeerId,
        identity: NodeIdentity,
        bucket_count: u16,
        buckets: &[u16],
        entries: Vec<(DocId, [u8; 8])>,
    ) {
        let theirs: BTreeMap<DocId, [u8; 8]> = entries.into_iter().collect();
        let same: Vec<(DocId, [u8; 32])> = self
            .docs_in(&identity, bucket_count, buckets)
            .into_iter()
            .map(|d| (d, self.doc_digest(&d)))
            .filter(|(d, digest)| theirs.get(d) == Some(&short(*digest)))
            .collect();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.confirmed.extend(same);
        }
        let mut to_sync: Vec<DocId> = self
            .docs_in(&identity, bucket_count, buckets)
            .into_iter()
            .filter(|d| theirs.get(d) != Some(&short(self.doc_digest(d))))
            .collect();
        // Documents this node does not hold yet: at most `LISTED_NEW_DOCS_MAX` per peer and
        // summary interval (the rest come at the next), and one audit line per list for those
        // not shared, however many it names.
        let (mut not_shared, mut deferred) = (Vec::new(), 0usize);
        for doc in theirs.keys() {
            if self.docs.contains_key(doc) || self.unreadable.contains(doc) {
                continue;
            }
            if !(doc.readable_by(&self.me) && doc.readable_by(&identity)) {
                not_shared.push(*doc);
            } else if self.take_new_doc(&identity) {
                to_sync.push(*doc);
            } else {
                deferred += 1;
            }
        }
        if let Some(first) = not_shared.first() {
            self.audit(format!(
                "{identity} listed {} documents not shared with it, first {first}",
                not_shared.len()
            ));
        }
        if deferred > 0 {
            self.audit(format!(
                "{identity} listed {deferred} more new documents than taken at once; they wait"
            ));
        }
        // Both sides compute the same set; only one of them opens automerge's exchange for each
        // document. When both open it at once, each answers the other's opening as well as its
        // reply, and a whole document can cross the link twice.
        let opens = self.me.to_uri() < identity.to_uri();
        for doc in to_sync {
            self.ensure_doc(doc);
            if opens {
                self.send_sync(peer, doc);
            }
        }
    }

    /// Whether `identity` may make this node start holding one more document now
    /// ([`LISTED_NEW_DOCS_MAX`] per summary interval), counting it if so.
    fn take_new_doc(&mut self, identity: &NodeIdentity) -> bool {
        let now_ms = self.now_ms;
        let window = self
            .new_docs_by
            .entry(identity.to_uri())
            .or_insert((now_ms, 0));
        if now_ms - window.0 >= SUMMARY_INTERVAL_MS {
            *window = (now_ms, 0);
        }
        if window.1 >= LISTED_NEW_DOCS_MAX {
            return false;
        }
        window.1 += 1;
        true
    }

    fn ensure_doc(&mut self, doc: DocId) {
        let actor = actor_for(&self.key.verifying_key().to_bytes());
        self.docs
            .entry(doc)
            .or_insert_with(|| DocState::new(doc, Automerge::new().with_actor(actor), Vec::new()));
    }

    /// Signs this node's attestation over the document's current heads, keeps it and persists
    /// it with the change: a change is never stored without its proof, so changes entered while
    /// the node is offline (or written straight to its store) travel with it later.
    fn attest(&mut self, doc: DocId) {
        let Some(state) = self.docs.get_mut(&doc) else {
            return;
        };
        // An author's attestations of a document are strictly increasing in time, so "the
        // latest" is always well defined for senders and receivers: two changes within one
        // millisecond, or a clock set back, must not leave a change without its proof. Later
        // also than one of this node's own a peer offered and this node does not store yet (a
        // node restored from an older store): peers keep the later of two.
        let author = self.key.verifying_key().to_bytes();
        let offered = self
            .peers
            .values()
            .filter_map(|p| p.docs.get(&doc)?.unproven.get(&author));
        let at_ms = state
            .endorsements
            .get(&author)
            .into_iter()
            .chain(offered)
            .map(|previous| previous.attestation.at_ms.saturating_add(1))
            .fold(self.now_ms, i64::max);
        let attestation = Attestation::sign(doc, state.doc.get_heads(), at_ms, &self.key);
        debug_assert_eq!(attestation.author, author);
        self.out.push_back(Output::Persist(Persist::Attestation {
            doc,
            author,
            cert: self.cert.to_vec(),
            bytes: attestation.as_bytes().to_vec(),
        }));
        state.endorsements.insert(
            author,
            Endorsement {
                attestation,
                cert: self.cert.clone(),
                identity: self.me,
            },
        );
    }

    /// Sends the automerge sync message for (peer, doc), if automerge has one.
    fn send_sync(&mut self, peer: PeerId, doc: DocId) {
        let (Some(state), Some(p)) = (self.docs.get_mut(&doc), self.peers.get_mut(&peer)) else {
            return;
        };
        let pd = p.docs.entry(doc).or_default();
        if pd.blocked || pd.too_large {
            return;
        }
        let Some(message) = state.doc.generate_sync_message(&mut pd.state) else {
            return;
        };
        let mut attestations = Vec::new();
        if !message.changes.is_empty() {
            for e in state.endorsements.values() {
                if pd.sent.insert((e.attestation.author, e.attestation.at_ms)) {
                    let cert = cert_to_send(&self.latest_certs, e);
                    attestations.push((
                        e.attestation.author,
                        cert,
                        e.attestation.as_bytes().to_vec(),
                    ));
                }
            }
        }
        // A certificate goes once per session and author, and again when it changed; the peer
        // keeps the last it was sent for the session.
        let attestations = attestations
            .into_iter()
            .map(|(author, cert, bytes)| {
                if p.certs_sent.get(&author) == Some(&cert) {
                    (Vec::new(), bytes)
                } else {
                    p.certs_sent.insert(author, Arc::clone(&cert));
                    (cert.to_vec(), bytes)
                }
            })
            .collect();
        let frame = Frame::Sync {
            doc,
            message: message.encode(),
            attestations,
        };
        self.send(peer, &frame);
    }

    /// Offers a changed document to every connected peer that may read it (but `except`).
    fn offer(&mut self, doc: DocId, except: Option<PeerId>) {
        let peers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| Some(**id) != except && doc.readable_by(&p.identity))
            .map(|(id, _)| *id)
            .collect();
        for peer in peers {
            self.send_sync(peer, doc);
        }
    }

    fn persist_changes(&mut self, doc: DocId) {
        let Some(state) = self.docs.get_mut(&doc) else {
            return;
        };
        let heads = state.doc.get_heads();
        if heads == state.saved_heads {
            return;
        }
        let bytes = state.doc.save_after(&state.saved_heads);
        state.saved_heads = heads;
        self.out
            .push_back(Output::Persist(Persist::Changes { doc, bytes }));
    }

    /// Checks an attestation and its author's certificate. An empty `cert` means "the one I sent
    /// you earlier in this session": looked up among `peer`'s.
    fn endorsement(
        &mut self,
        doc: DocId,
        cert: &[u8],
        bytes: &[u8],
        peer: Option<PeerId>,
    ) -> Result<Endorsement, String> {
        let known = &self.author_keys;
        let attestation = Attestation::decode_verified_with(bytes, |a| known.get(a).copied())
            .map_err(|e| e.to_string())?;
        if attestation.doc != doc {
            return Err(format!(
                "an attestation for {} sent with {doc}",
                attestation.doc
            ));
        }
        let cert = if cert.is_empty() {
            peer.and_then(|p| self.peers.get(&p))
                .and_then(|p| p.certs_received.get(&attestation.author))
                .cloned()
                .ok_or("an attestation without its certificate, none sent before in this session")?
        } else {
            Arc::new(cert.to_vec())
        };
        let (identity, key) = self
            .check_cert(&cert)
            .map_err(|e| format!("author certificate: {e}"))?;
        if key != attestation.author {
            return Err("the attestation's key is not the certificate's".into());
        }
        self.latest_certs.insert(key, (identity, Arc::clone(&cert)));
        if !self.author_keys.contains_key(&key)
            && let Ok(verifying) = VerifyingKey::from_bytes(&key)
        {
            self.author_keys.insert(key, verifying);
        }
        Ok(Endorsement {
            attestation,
            cert,
            identity,
        })
    }

    /// A stored attestation, its certificate judged now (cached) or, failing that, at the
    /// attestation's own time.
    fn stored_endorsement(
        &mut self,
        doc: DocId,
        cert: &[u8],
        bytes: &[u8],
    ) -> Result<Endorsement, String> {
        match self.endorsement(doc, cert, bytes, None) {
            Ok(e) => Ok(e),
            Err(now_reason) => {
                let attestation = Attestation::decode_verified(bytes).map_err(|e| e.to_string())?;
                if attestation.doc != doc {
                    return Err(now_reason);
                }
                let (identity, key) = self
                    .verifier
                    .node_key_at(cert, attestation.at_ms)
                    .map_err(|e| format!("author certificate at the attestation's time: {e}"))?;
                if key != attestation.author {
                    return Err(now_reason);
                }
                Ok(Endorsement {
                    attestation,
                    cert: Arc::new(cert.to_vec()),
                    identity,
                })
            }
        }
    }

    /// The identity and key a certificate vouches for (each certificate checked once).
    fn check_cert(&mut self, cert: &[u8]) -> CertCheck {
        let cert_hash: [u8; 32] = Sha256::digest(cert).into();
        if let Some((result, checked_ms)) = self.certs_checked.get(&cert_hash)
            && self.now_ms - checked_ms < CERT_CHECK_KEPT_MS
        {
            return result.clone();
        }
        let result = self.verifier.node_key(cert);
        if self.certs_checked.len() >= CERTS_CHECKED_MAX {
            self.certs_checked.clear();
        }
        self.certs_checked
            .insert(cert_hash, (result.clone(), self.now_ms));
        result
    }

    fn sync(
        &mut self,
        peer: PeerId,
        identity: NodeIdentity,
        doc: DocId,
        bytes: &[u8],
        attestations: &[(Vec<u8>, Vec<u8>)],
    ) {
        if !doc.readable_by(&identity) || !doc.readable_by(&self.me) {
            // Counted and kept like any refusal, but no state is made for the document on the
            // peer's connection: nothing is ever synced of it there, and a peer naming new ones
            // frame after frame would grow that state without bound.
            let reason = format!("{doc} is not shared between {identity} and {}", self.me);
            self.keep_refused(identity, doc, bytes, reason);
            return;
        }
        // Certificates are kept for the session whatever becomes of the message: later
        // attestations by the same authors come without them.
        for (cert, _) in attestations.iter().filter(|(c, _)| !c.is_empty()) {
            if let Ok((_, key)) = self.check_cert(cert)
                && let Some(p) = self.peers.get_mut(&peer)
            {
                p.certs_received.insert(key, Arc::new(cert.clone()));
            }
        }
        let message = match sync::Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.quarantine(
                    peer,
                    identity,
                    doc,
                    bytes,
                    format!("malformed sync message: {e}"),
                );
                return;
            }
        };
        // A document this node does not hold yet counts against the peer's allowance, as
        // if listed; beyond it the message is dropped, and the document comes at a later
        // interval.
        if self.unreadable.contains(&doc) {
            self.audit(format!(
                "a sync message for {doc} from {identity} not taken: the stored document did not load here"
            ));
            return;
        }
        if !self.docs.contains_key(&doc) && !self.take_new_doc(&identity) {
            return;
        }
        self.ensure_doc(doc);
        let waiting = self
            .peers
            .get(&peer)
            .and_then(|p| p.docs.get(&doc))
            .is_some_and(|pd| !pd.waiting.is_empty());
        let verdict = if message.changes.is_empty() && !waiting {
            self.receive_without_changes(peer, doc, message)
                .map(|()| Received::default())
        } else {
            self.receive_changes(peer, doc, message, attestations)
        };
        match verdict {
            Err(reason) => self.quarantine(peer, identity, doc, bytes, reason),
            Ok(received) => {
                if let Some(reason) = received.refused {
                    self.keep_refused(identity, doc, bytes, reason);
                }
                if received.applied > 0 {
                    self.stats.changes_applied += received.applied;
                    self.persist(doc, received.bytes);
                    self.offer(doc, Some(peer));
                }
                self.send_sync(peer, doc);
            }
        }
    }

    fn receive_without_changes(
        &mut self,
        peer: PeerId,
        doc: DocId,
        message: sync::Message,
    ) -> Result<(), String> {
        let (Some(state), Some(p)) = (self.docs.get_mut(&doc), self.peers.get_mut(&peer)) else {
            return Ok(());
        };
        let pd = p.docs.entry(doc).or_default();
        if pd.blocked {
            return Ok(());
        }
        let received = state.doc.receive_sync_message(&mut pd.state, message);
        state.changed();
        received.map_err(|e| e.to_string())?;
        pd.leave_out_unapplied(&state.doc);
        Ok(())
    }

    /// Judges every new change of a message (with those waiting from the peer's earlier
    /// messages) against its author's write right and attestation ([`judge`]), applies those
    /// that pass, refuses the others and every change built on them, and holds those that
    /// cannot be judged yet.
    fn receive_changes(
        &mut self,
        peer: PeerId,
        doc: DocId,
        mut message: sync::Message,
        attestations: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Received, String> {
        // An attestation that does not check is not used; the changes that needed it are
        // refused for want of one.
        let (mut offered, mut unusable) = (BTreeMap::new(), Vec::new());
        for (cert, bytes) in attestations {
            match self.endorsement(doc, cert, bytes, Some(peer)) {
                Ok(e) => {
                    offered.insert(e.attestation.author, e);
                }
                Err(reason) => unusable.push(reason),
            }
        }
        let (Some(state), Some(p)) = (self.docs.get_mut(&doc), self.peers.get_mut(&peer)) else {
            return Ok(Received::default());
        };
        let pd = p.docs.entry(doc).or_default();
        if pd.blocked {
            return Ok(Received::default());
        }
        let mut carried = Carried::parse(&message)?;
        carried.add(pd.take_waiting(&mut p.waiting_bytes));
        // The latest attestation per author, among those stored, those this peer offered
        // earlier naming changes not held then, and those offered now.
        let mut endorsements = state.endorsements.clone();
        for (author, e) in std::mem::take(&mut pd.unproven).into_iter().chain(offered) {
            let newer = endorsements
                .get(&author)
                .is_none_or(|old| old.attestation.at_ms < e.attestation.at_ms);
            if newer {
                endorsements.insert(author, e);
            }
        }
        let by_actor: HashMap<automerge::ActorId, &Endorsement> = endorsements
            .values()
            .map(|e| (actor_for(&e.attestation.author), e))
            .collect();
        // A change refused from this peer that this node came to hold by another way is
        // forgotten.
        pd.refused.retain(|h, _| !holds(&state.doc, h));
        let verdict = judge(&state.doc, doc, &by_actor, &carried.metas, &pd.refused);
        drop(by_actor);
        pd.remember_refused(&verdict.refused)?;
        let wait = verdict.wait.iter().filter_map(|h| carried.change(h));
        pd.wait_for(wait.collect(), &mut p.waiting_bytes)?;
        // Only changes whose parents are all held reach automerge, so nothing waits in its
        // queue to apply unjudged when a parent comes. A message whose every change passes
        // goes as it came (a large catch-up stays one document).
        let applied = verdict.pass.len() as u64;
        if !(carried.as_sent && verdict.pass.len() == verdict.new) {
            message.changes = verdict
                .pass
                .iter()
                .filter_map(|h| carried.change(h).map(|c| c.raw_bytes().to_vec()))
                .collect::<Vec<_>>()
                .into();
        }
        let unsaved = state.saved_heads != state.doc.get_heads();
        let held_before = state.doc.stats().num_changes;
        let received = state.doc.receive_sync_message(&mut pd.state, message);
        state.changed();
        received.map_err(|e| e.to_string())?;
        pd.leave_out_unapplied(&state.doc);
        // The applied changes as they came, when they are exactly what the document gained.
        let gained = state.doc.stats().num_changes.checked_sub(held_before);
        let bytes = (!unsaved && gained == Some(applied))
            .then(|| {
                verdict.pass.iter().try_fold(Vec::new(), |mut bytes, h| {
                    bytes.extend_from_slice(carried.raw_change(h)?);
                    Some(bytes)
                })
            })
            .flatten();
        // Attestations are kept only of authors who may write the document, and not when they
        // name a refused change (the author's later changes would fail against it). One naming
        // a change not held yet is kept for this peer's session, and changes waiting for it are
        // judged against it when that change comes; it replaces the stored one only then. Were
        // it stored at once, this node would forward it in place of the one it replaced, and a
        // node behind it, unable to walk from its heads to the changes this node holds, would
        // have them wait for a change this node cannot send.
        for (author, e) in endorsements {
            let changed = state
                .endorsements
                .get(&author)
                .is_none_or(|old| old.attestation != e.attestation);
            let names_refused = || {
                e.attestation
                    .heads
                    .iter()
                    .any(|h| pd.refused.contains_key(h))
            };
            let all_held = || e.attestation.heads.iter().all(|h| holds(&state.doc, h));
            if !changed || !doc.writable_by(&e.identity) || names_refused() {
                continue;
            }
            if !all_held() {
                pd.unproven.insert(author, e);
            } else {
                self.out.push_back(Output::Persist(Persist::Attestation {
                    doc,
                    author,
                    cert: e.cert.to_vec(),
                    bytes: e.attestation.as_bytes().to_vec(),
                }));
                state.endorsements.insert(author, e);
            }
        }
        // A refused message is quarantined; an attestation that did not check but was needed
        // by no change (a relay forwarding one whose certificate has since expired) is not.
        let why = verdict.refused.first().map(|first| {
            let mut why = format!("refused {} changes: {}", verdict.refused.len(), first.why);
            if let Some(first) = unusable.first() {
                why.push_str(&format!(
                    "; {} attestations not used: {first}",
                    unusable.len()
                ));
            }
            why
        });
        Ok(Received {
            applied,
            refused: why,
            bytes,
        })
    }

    /// Refuses a message whole: kept in the quarantine, and the peer's session for the document
    /// held until it reconnects.
    fn quarantine(
        &mut self,
        peer: PeerId,
        identity: NodeIdentity,
        doc: DocId,
        bytes: &[u8],
        reason: String,
    ) {
        if let Some(p) = self.peers.get_mut(&peer) {
            let pd = p.docs.entry(doc).or_default();
            pd.state = sync::State::new();
            pd.blocked = true;
            pd.take_waiting(&mut p.waiting_bytes);
        }
        self.keep_refused(identity, doc, bytes, reason);
    }

    /// Counts a refused message (whole or in part) and keeps it in the quarantine.
    fn keep_refused(&mut self, identity: NodeIdentity, doc: DocId, bytes: &[u8], reason: String) {
        self.stats.messages_quarantined += 1;
        // Stored (with a durable commit) at most so many per node and hour: a peer sending
        // refused messages in a loop is refused all the same, counted, and costs no disk.
        let now_ms = self.now_ms;
        let hour = self
            .quarantined_by
            .entry(identity.to_uri())
            .or_insert((now_ms, 0));
        let mut unstored = None;
        if now_ms - hour.0 >= 3_600_000 {
            let count = hour.1.saturating_sub(QUARANTINES_STORED_PER_HOUR_MAX);
            unstored = (count > 0).then_some((count, hour.0));
            *hour = (now_ms, 0);
        }
        hour.1 += 1;
        let stored = hour.1;
        if let Some((count, since_ms)) = unstored {
            // The durable trace of what the cap kept off the disk, written with the next
            // refusal from that node (in memory until then: lost if the node stops first).
            let since = crate::calendar::Timestamp::from_unix_ms(since_ms)
                .map_or_else(|_| format!("{since_ms} ms"), |t| t.to_string());
            self.audit(format!(
                "{identity}: {count} more refused messages in the hour from {since} were counted, not stored"
            ));
        }
        if stored > QUARANTINES_STORED_PER_HOUR_MAX {
            return;
        }
        self.audit(format!(
            "quarantined a message for {doc} from {identity}: {reason}"
        ));
        if stored == QUARANTINES_STORED_PER_HOUR_MAX {
            self.audit(format!(
                "{identity}: further refused messages this hour are counted, not stored"
            ));
        }
        self.out.push_back(Output::Persist(Persist::Quarantine {
            doc,
            peer: identity,
            reason,
            sha256: Sha256::digest(bytes).into(),
            len: bytes.len(),
            bytes: bytes[..bytes.len().min(QUARANTINE_KEPT_BYTES_MAX)].to_vec(),
        }));
    }
}

#[cfg(test)]
mod tests;
