//! The simulated region: every node's sync engine (the production one), an in-memory store per
//! node, a simulated network and clock, all driven by one event queue.
//!
//! - **Nodes** dial their upstreams like `giasync-node run` does (same timeouts, backoff and
//!   fallback constants): a school its МОУО hub, falling back to the РЦОИ; a hub the РЦОИ.
//! - **Links** carry the engine's frames in order per connection, as the production QUIC stream
//!   does. Packet loss, duplication and reordering cost time and bytes, never order (QUIC hides
//!   them from the application); bandwidth queues frames behind each other.
//! - **Faults**: a school offline keeps working; a node down loses everything not persisted (the
//!   engine persists before it sends, like the production driver) and restarts from its store.
//!   An in-commit crash strikes inside a batch's commit: the batch is lost whole, unsent and
//!   unacknowledged, and an entry in it is made again after the restart.
//!   A broken connection is noticed after the QUIC idle timeout, or at once by a peer that
//!   restarted (its stateless reset).
//! - The РЦОИ verifies and receipts sheets on ingest with [`giasync_shared::ingest`], as the
//!   production node does, over real X.509 certificates of the region's people and the
//!   production `CaVerifier` (`people`); the nodes' own certificates are the stand-in CA's.
//!
//! Time is simulated: nothing sleeps. The same plan gives the same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use ed25519_dalek::SigningKey;
use giasync_shared::blob::transfer::Transfers;
use giasync_shared::blob::{BlobHash, BlobRef};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::PersonId;
use giasync_shared::content;
use giasync_shared::ingest;
use giasync_shared::participant::{FullName, IdentityDocument, Participant, SchoolClass};
use giasync_shared::record::{
    Attempt, Correction, FixedDirectory, RecordHash, SheetDraft, SheetSubject, SignedSheet,
};
use giasync_shared::room::{Attendance, Room, Variant};
use giasync_shared::rules::Rules;
use giasync_shared::sync::attest::{Attestation, actor_for};
use giasync_shared::sync::wire::{self, Frame};
use giasync_shared::sync::{
    CloseReason, DocId, DocKind, Engine, FixedCa, Input, NodeIdentity, Output,
    PEER_FRAGMENTED_FRAMES_MAX, PeerId, Persist,
};
use sha2::{Digest, Sha256};

use crate::authority;
use crate::plan::{Attack, Entry, Fault, Kind, Plan, SheetKind};
use crate::rng::Rng;
use crate::sabotage::Sabotage;
use crate::scenario::LinkProfile;
use crate::scenario::{AdversaryKind, ScenarioError};

mod blobs;
mod helper;
mod people;

/// QUIC and the hello both take a round trip before the engines see the connection.
const HANDSHAKE_ROUND_TRIPS: i64 = 2;
/// Bytes of a connection's handshake on the wire (both certificate chains, hello).
const HANDSHAKE_BYTES: u64 = 3_000;
/// Payload bytes a packet carries.
const PACKET_PAYLOAD_BYTES: u64 = 1_200;
/// Header, AEAD tag, UDP and IP bytes per packet.
const PACKET_OVERHEAD_BYTES: u64 = 52;
/// The wait before QUIC retransmits a lost packet, beyond one round trip.
const RETRANSMIT_EXTRA_MS: i64 = 25;
/// How often the run checks, once scripted events are over, whether the region converged.
const CONVERGENCE_CHECK_MS: i64 = 10_000;
/// The most events one batch takes ([`Region::arriving_with`]); more wait for the next.
const BATCH_EVENTS_MAX: usize = 64;

/// A node's certificate in the simulation: the identity URI and the key, padded to the size of
/// a real one. The simulated CA knows every certificate it issued; nothing else verifies.
/// A key derived from the seed and a label: the same run signs the same bytes.
fn derived_key(seed: u64, label: &str) -> SigningKey {
    let digest = Sha256::new()
        .chain_update(b"giasync-sim key")
        .chain_update(seed.to_be_bytes())
        .chain_update(label.as_bytes())
        .finalize();
    SigningKey::from_bytes(&digest.into())
}

/// What an entry made, recorded by the run once its batch is durable.
#[derive(Debug)]
enum Made {
    /// A roster, mark or room-log time.
    Other,
    /// A score sheet, of the plan's participant.
    Sheet {
        participant: usize,
        entered: EnteredSheet,
        kind: SheetKind,
    },
    /// A recording taken in and named.
    Recording { blob: BlobRef },
}

/// The changes an entry makes, in order: each a document and what is written to it; and the
/// error the entry ends with once they are made, when a step after them failed (the roster
/// stays written when the head's order cannot be signed).
#[derive(Debug, Default)]
struct Writes {
    changes: Vec<(DocId, Write)>,
    then_failed: Option<String>,
}

/// What one change of an entry writes (`giasync_shared::content`).
#[derive(Debug)]
enum Write {
    /// The rooms, and each participant in their room.
    Roster {
        rooms: Vec<Room>,
        assigned: Vec<(Participant, giasync_shared::codes::RoomCode)>,
    },
    /// The head's signed commission order.
    Commission {
        signed: giasync_shared::statement::Statement,
        head: PersonId,
        cert: Vec<u8>,
    },
    Mark {
        id: giasync_shared::codes::ParticipantId,
        mark: Attendance,
    },
    /// An answer's start (with its variant) or end in the room log.
    Time {
        participant: giasync_shared::codes::ParticipantId,
        attempt: Attempt,
        interviewer: PersonId,
        at: Timestamp,
        variant: Option<Variant>,
    },
    Act {
        subject: SheetSubject,
        signed: giasync_shared::statement::Statement,
        organiser: PersonId,
        cert: Vec<u8>,
    },
    Sheet {
        sheet: SignedSheet,
        expert: PersonId,
        cert: Vec<u8>,
    },
}

impl Writes {
    fn push(&mut self, doc: DocId, write: Write) {
        self.changes.push((doc, write));
    }

    /// Makes the changes on `engine` at `now_ms`, in order; stops at the first refused (those
    /// before it stay made, as the entry's batch commits what it holds). The error is the
    /// refusal's text, or `then_failed`.
    fn apply(&self, engine: &mut Engine, now_ms: i64) -> Result<(), String> {
        for (doc, write) in &self.changes {
            engine
                .change(now_ms, *doc, |tx| match write {
                    Write::Roster { rooms, assigned } => {
                        for r in rooms {
                            content::put_room(tx, *r)?;
                        }
                        for (p, room) in assigned {
                            content::put_participant(tx, p)?;
                            content::assign(tx, p.id, *room)?;
                        }
                        Ok(())
                    }
                    Write::Commission { signed, head, cert } => {
                        content::put_commission(tx, 1, signed, *head, cert)
                    }
                    Write::Mark { id, mark } => content::mark(tx, *id, mark),
                    Write::Time {
                        participant,
                        attempt,
                        interviewer,
                        at,
                        variant,
                    } => {
                        content::log_time(
                            tx,
                            *participant,
                            *attempt,
                            Some(*interviewer),
                            *at,
                            variant.is_none(),
                        )?;
                        match variant {
                            Some(v) => content::put_variant(tx, *participant, *attempt, *v),
                            None => Ok(()),
                        }
                    }
                    Write::Act {
                        subject,
                        signed,
                        organiser,
                        cert,
                    } => content::put_act(
                        tx,
                        subject.participant,
                        subject.attempt,
                        signed,
                        *organiser,
                        cert,
                    ),
                    Write::Sheet {
                        sheet,
                        expert,
                        cert,
                    } => content::put_sheet(tx, sheet, *expert, cert),
                })
                .map_err(|e| e.to_string())?;
        }
        self.then_failed.clone().map_or(Ok(()), Err)
    }
}

/// An event of a batch, with its place in the queue and whether its engine work is lent out.
struct Queued {
    at: i64,
    id: u64,
    event: Event,
    lent: bool,
}

/// The event `work` for `node` came from, not lent after all.
fn unlent(work: helper::Work, node: usize) -> Event {
    match work {
        helper::Work::Frame {
            conn, to, bytes, ..
        } => Event::Deliver { conn, to, bytes },
        helper::Work::Tick => Event::Tick { node },
        helper::Work::Entry { school, .. } => Event::Entry { school },
    }
}

/// What a node persisted: what it restarts from.
#[derive(Debug, Default)]
struct Store {
    docs: BTreeMap<DocId, StoredDoc>,
    /// Its blob store: blobs held whole, and the pieces stored of those being fetched.
    blobs: BTreeMap<BlobHash, BlobRef>,
    partial: BTreeMap<BlobHash, Vec<u64>>,
}

#[derive(Debug, Default)]
struct StoredDoc {
    changes: Vec<u8>,
    attestations: BTreeMap<[u8; 32], (Vec<u8>, Vec<u8>)>,
}

struct Node {
    identity: NodeIdentity,
    kind: Kind,
    key: SigningKey,
    cert: Vec<u8>,
    engine: Option<Engine>,
    /// Its engine is lent out to do an event's work beside others' (a batch, [`helper`]): the
    /// node is up, the engine back in its event's turn.
    lent: bool,
    store: Store,
    /// Network cuts in force (a school offline).
    offline: u32,
    /// Down windows in force.
    down: u32,
    upstreams: Vec<usize>,
    link: LinkProfile,
    dial: Dialer,
    /// The engine's peer ids and their connections.
    peers: BTreeMap<PeerId, usize>,
    tick_at: Option<i64>,
    quarantined: u64,
    /// Changes persisted for documents of another school (must stay 0).
    foreign_docs: u64,
    /// Documents the design's table says it holds ([`authority::holds`]), once asked: the
    /// answer does not change, and a school persists a change of one at every entry.
    holds_checked: BTreeSet<DocId>,
    /// An in-commit crash armed: the node dies while committing its next batch (at a school,
    /// the next holding a score sheet) and is down this long.
    crash_in_commit: Option<i64>,
    /// The first sync frame with changes the node sent: what a replay sends again.
    first_sync_sent: Option<Vec<u8>>,
    /// Its blob transfers, the documents naming each blob, the blobs reported whole, and when
    /// the transfers' next tick is due.
    transfers: Transfers,
    named_in: BTreeMap<BlobHash, Vec<DocId>>,
    reported: BTreeSet<BlobHash>,
    blob_tick_at: Option<i64>,
}

impl Node {
    fn up(&self) -> bool {
        self.engine.is_some() || self.lent
    }
}

#[derive(Debug, Default)]
struct Dialer {
    generation: u64,
    rank: usize,
    backoff_ms: i64,
    /// When the current connection attempt began: it fails [`giasync_node::run::CONNECT_TIMEOUT_MS`]
    /// after.
    attempt_from_ms: i64,
}

/// One direction of a connection.
#[derive(Debug, Default, Clone, Copy)]
struct Lane {
    /// When the link is free to start serialising the next frame.
    free_at_ms: i64,
    /// When the previous frame was delivered: frames arrive in order.
    delivered_at_ms: i64,
}

struct Conn {
    /// `ends[0]` dialled `ends[1]`.
    ends: [usize; 2],
    peer: [PeerId; 2],
    profile: LinkProfile,
    /// Frames still flow.
    alive: bool,
    established: bool,
    /// The engine at each end has been told the connection ended (or is gone).
    closed: [bool; 2],
    lanes: [Lane; 2],
    /// Each direction's lane for blobs, below the documents' (`blobs`).
    blob_lanes: [Lane; 2],
    /// The dialer's rank for this upstream (0: the preferred one).
    rank: usize,
    /// Frames sent and not yet delivered or dropped.
    in_flight: u32,
    /// From the handshake until the first moment no frame is in flight: the catch-up
    /// exchange after a (re)connect.
    catching_up: bool,
}

#[derive(Debug)]
enum Event {
    Entry {
        school: usize,
    },
    Deliver {
        conn: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Dial {
        node: usize,
        generation: u64,
    },
    /// The `send`th time a connection attempt sends its first packet (QUIC resends it with
    /// backoff until it is answered): the handshake goes on if the upstream is reachable now.
    Probe {
        node: usize,
        generation: u64,
        send: usize,
    },
    Handshake {
        conn: usize,
    },
    DialFailed {
        node: usize,
        generation: u64,
    },
    Lost {
        conn: usize,
        end: usize,
    },
    FallbackExpired {
        conn: usize,
    },
    Tick {
        node: usize,
    },
    /// A frame of the blob stream arrives.
    DeliverBlob {
        conn: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    BlobTick {
        node: usize,
    },
    FaultStart(usize),
    FaultEnd(usize),
    /// A node that crashed in a commit starts again.
    Restart {
        node: usize,
    },
    /// A hostile node's attempt (`Plan::attacks`).
    Attack(usize),
    Check,
}

/// A sheet as the school entered it.
#[derive(Debug, Clone)]
pub struct EnteredSheet {
    pub school: usize,
    pub hash: RecordHash,
    pub subject: SheetSubject,
    pub at_ms: i64,
}

/// What the adversaries of one kind did during the run: attempts made and refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub made: u64,
    pub refused: u64,
}

/// What the run observed, for the report.
#[derive(Debug, Default)]
pub struct Observed {
    pub sheets: Vec<EnteredSheet>,
    /// Subjects scored by two experts without supersession.
    pub conflicts_entered: BTreeSet<SheetSubject>,
    /// (time, sheets the РЦОИ verified and receipted in that batch).
    pub receipted_at_rcoi: Vec<(i64, usize)>,
    pub bytes_total: u64,
    /// Bytes of the catch-up exchanges: on each connection, from the handshake to the first
    /// moment nothing is in flight.
    pub reconnect_bytes: u64,
    /// What the catch-ups would take if each side re-sent, whole, every document the other
    /// may read (the naive design), in packets like ours.
    pub naive_reconnect_bytes: u64,
    pub frames_total: u64,
    pub connections: u64,
    pub last_progress_ms: i64,
    pub converged_at_ms: Option<i64>,
    pub end_ms: i64,
    pub trace: Sha256,
    pub events: u64,
    /// Frames whose engines took them in side by side with another's ([`Region::threads`]):
    /// how the run was carried out, not what happened in it.
    pub frames_side_by_side: u64,
    /// Entries whose changes were made side by side with another event's engine work.
    pub entries_side_by_side: u64,
    pub bytes_by_kind: BytesByKind,
    /// Real time the РЦОИ spent verifying and receipting sheets on ingest (a measurement of
    /// this machine, not part of the deterministic report).
    pub ingest_wall: std::time::Duration,
    /// The first messages quarantined and why.
    pub quarantine_reasons: Vec<String>,
    /// Entries that could not be made (an engine or domain error): must stay 0.
    pub entry_errors: Vec<String>,
    /// Per school: the entries of its plan it made.
    pub entries_made: Vec<usize>,
    /// Sheets entered that must not count (tampered, by a revoked expert, by a category a
    /// hostile school gave its participant, for an attempt an act ended), with their kind.
    pub invalid_sheets: Vec<(EnteredSheet, SheetKind)>,
    /// The attempts organisers ended with an act (the plan's same-day retakes, hostile
    /// schools' sheets after an act).
    pub acts_made: BTreeSet<SheetSubject>,
    /// (hostile node's identity URI, document) of each attempt made, with its kind: what a
    /// refusal is matched against.
    pub attacked: BTreeMap<(String, DocId), AdversaryKind>,
    /// Per kind of adversary: the forged changes sent on a live connection upstream and the
    /// refusals of them the receivers stored (at most 32 per sender and hour), the floods sent
    /// and the connections closed on them, the replays sent (nothing to refuse). The report's
    /// totals are sums of these. Sheets that must not count are judged at the end, from the
    /// РЦОИ's receipts.
    pub attacks_by_kind: BTreeMap<AdversaryKind, Tally>,
    /// The connections a flood was sent on and not yet closed for it.
    pub flooded: BTreeSet<usize>,
    /// Batches an in-commit crash lost (`[[crashes]] in_commit`).
    pub batches_lost_in_commit: u64,
    /// Connections an engine closed because the peer broke the protocol.
    pub closed_for_protocol: u64,
    /// For each sheet signed while its school was connected upstream: simulated ms from the
    /// expert's signature to the school holding the РЦОИ's receipt of it.
    pub receipt_latency_ms: Vec<i64>,
    /// For each time a school came back (network or process) with sheets not receipted back:
    /// simulated ms until every one of them was.
    pub catchup_ms: Vec<i64>,
    /// Recordings the schools took in (school, blob, when), as the run made them.
    pub recordings: Vec<(usize, BlobRef, i64)>,
    /// When the РЦОИ first held each recording whole.
    pub recordings_at_rcoi_ms: BTreeMap<BlobHash, i64>,
    /// The exam materials package the РЦОИ named, and when.
    pub materials: Option<(BlobRef, i64)>,
    /// When each school (by index in the plan) first held the materials package whole.
    pub materials_at_school_ms: BTreeMap<usize, i64>,
    /// When a node last stored a piece of a recording of each school.
    pub last_piece_ms_by_school: BTreeMap<usize, i64>,
    /// The school and blob of each recording taken in, by hash.
    pub recording_blobs: BTreeMap<BlobHash, (usize, BlobRef)>,
    /// The pieces of each recording that reached the РЦОИ as the school sent them (judged by
    /// the simulator's own token, not the transfer machine's check), one bit each.
    pub pieces_at_rcoi: BTreeMap<BlobHash, Vec<u64>>,
    /// Bytes of the blob streams on the wire (not in `bytes_total`, which is the documents').
    pub audio_bytes_on_wire: u64,
    /// Pieces refused by the transfers' check.
    pub blob_pieces_refused: u64,
}

/// Bytes on the wire of a frame of `framed` bytes: packets with their overhead.
fn wire_bytes(framed: u64) -> u64 {
    framed + framed.div_ceil(PACKET_PAYLOAD_BYTES).max(1) * PACKET_OVERHEAD_BYTES
}

/// Where the bytes on the wire went, by frame kind.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct BytesByKind {
    pub summaries: u64,
    pub summary_frames: u64,
    pub doc_lists: u64,
    pub sync_changes: u64,
    pub sync_attestations: u64,
    pub fragments: u64,
    pub handshakes: u64,
}

impl Observed {
    fn tally(&mut self, kind: AdversaryKind) -> &mut Tally {
        self.attacks_by_kind.entry(kind).or_default()
    }

    /// What the adversaries of `kinds` did, added up.
    pub fn tally_of(&self, kinds: &[AdversaryKind]) -> Tally {
        kinds
            .iter()
            .filter_map(|k| self.attacks_by_kind.get(k))
            .fold(Tally::default(), |sum, t| Tally {
                made: sum.made + t.made,
                refused: sum.refused + t.refused,
            })
    }

    fn count_frame(&mut self, frame: &[u8], wire: u64) {
        use giasync_shared::sync::wire::Frame;
        let b = &mut self.bytes_by_kind;
        match Frame::decode(frame) {
            Ok(Frame::Summary { .. }) => {
                b.summaries += wire;
                b.summary_frames += 1;
            }
            Ok(Frame::Buckets { .. } | Frame::DocList { .. }) => b.doc_lists += wire,
            Ok(Frame::Sync { attestations, .. }) => {
                let proofs: u64 = attestations
                    .iter()
                    .map(|(c, a)| (c.len() + a.len()) as u64)
                    .sum();
                b.sync_attestations += proofs;
                b.sync_changes += wire.saturating_sub(proofs);
            }
            Ok(Frame::Fragment { .. }) | Err(_) => b.fragments += wire,
        }
    }
}

/// What [`Region::authorship`] found.
#[derive(Debug, Default)]
pub struct Authorship {
    /// Changes held anywhere whose author (or an unknown actor) may not write their document.
    pub unauthorised: u64,
    /// Those of them made by the plan's hostile nodes (`Plan::attacks`).
    pub by_hostile: u64,
    /// `by_hostile` by the kind of attempt that wrote them: the kind sent by that node into
    /// that document, or else the node's first planned forgery (a node that plans none is in
    /// `by_hostile` alone).
    pub by_hostile_kind: BTreeMap<AdversaryKind, u64>,
    /// The first few, for the report.
    pub examples: Vec<String>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.identity)
    }
}

/// The region being simulated.
pub struct Region {
    plan: Plan,
    rules: Rules,
    /// The shipped year's data and production calendar: the days sheets may be signed on.
    year: (
        giasync_shared::year::YearData,
        giasync_shared::workdays::ProductionCalendar,
    ),
    /// The region's people, keys and certificates: the РЦОИ verifies over real X.509.
    people: people::People,
    nodes: Vec<Node>,
    conns: Vec<Conn>,
    queue: BinaryHeap<Reverse<(i64, u64)>>,
    events: HashMap<u64, Event>,
    next_event: u64,
    next_peer: PeerId,
    now_ms: i64,
    rng: Rng,
    ca: FixedCa,
    /// Per school: the next entry to make.
    cursor: Vec<usize>,
    /// Per school and participant: the hash of the latest sheet entered.
    latest_sheet: Vec<BTreeMap<usize, RecordHash>>,
    /// Per school: sheets acknowledged whose receipt the school does not hold yet, with when
    /// they were signed and whether the school was connected upstream then.
    awaiting_receipt: Vec<BTreeMap<RecordHash, (i64, bool)>>,
    /// Per school: since when it is back online with sheets not yet receipted back.
    catching_up_since: Vec<Option<i64>>,
    /// Actor id → the identity of the node key behind it.
    actors: HashMap<Vec<u8>, NodeIdentity>,
    observed: Observed,
    /// The simulator broken on purpose, for the tests that show an invariant can fail.
    pub sabotage: Sabotage,
    /// Threads the run may use: with two, the engine work of events due close together at
    /// different nodes (frames, ticks, entries) is done side by side ([`helper`]). The run is
    /// the same either way.
    pub threads: usize,
    /// The shortest latency of any link: nothing a node does reaches another node sooner (a
    /// frame, a connection's close, a handshake), so the events of a batch may be taken from
    /// this span of simulated time ([`Region::arriving_with`]). At least 1 (one millisecond).
    lookahead_ms: i64,
    /// The size of each node's documents saved whole, at the heads each was last saved at:
    /// what the naive design would re-send at a reconnect
    /// ([`Observed::naive_reconnect_bytes`]). A node's document at the same heads saves to the
    /// same bytes, and most have not changed since the node's last reconnect, so a handshake
    /// need not save them again. (Two nodes at the same heads need not: automerge saves the
    /// change graph in the order each node applied it.)
    saved_bytes: HashMap<(usize, DocId), (Vec<automerge::ChangeHash>, usize)>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Region({}, {} nodes)", self.plan.name, self.nodes.len())
    }
}

impl Region {
    /// Sets up the region of `plan`: keys, certificates, experts, engines.
    pub fn new(plan: Plan, rules: Rules, sabotage: Sabotage) -> Result<Region, ScenarioError> {
        let ca = FixedCa::default();
        let mut actors = HashMap::new();
        let mut nodes = Vec::new();
        for p in &plan.nodes {
            let key = derived_key(plan.seed, &p.identity.to_uri());
            let cert = ca.issue(p.identity, &key);
            actors.insert(
                actor_for(&key.verifying_key().to_bytes())
                    .to_bytes()
                    .to_vec(),
                p.identity,
            );
            nodes.push(Node {
                identity: p.identity,
                kind: p.kind,
                key,
                cert,
                engine: None,
                lent: false,
                store: Store::default(),
                offline: 0,
                down: 0,
                upstreams: p.upstreams.clone(),
                link: p.link,
                dial: Dialer::default(),
                peers: BTreeMap::new(),
                tick_at: None,
                quarantined: 0,
                crash_in_commit: None,
                first_sync_sent: None,
                foreign_docs: 0,
                holds_checked: BTreeSet::new(),
                transfers: Transfers::new(),
                named_in: BTreeMap::new(),
                reported: BTreeSet::new(),
                blob_tick_at: None,
            });
        }
        let people = people::certify(&plan)?;
        let schools = plan.schools.len();
        let rng = Rng::new(plan.seed).fork(99);
        let shipped = |e: giasync_shared::datafile::DataFileError| ScenarioError::Invalid {
            field: "the shipped year's data".into(),
            message: e.to_string(),
        };
        let year = (
            giasync_shared::year::YearData::year_2024().map_err(shipped)?,
            giasync_shared::workdays::ProductionCalendar::shipped().map_err(shipped)?,
        );
        // A connection runs on its dialer's link (`Region::probe`). The span stays below the
        // convergence check's period (the check is never due inside a batch) and so below the
        // idle timeout after which a crashed node's peers learn it is gone.
        const _: () =
            assert!(CONVERGENCE_CHECK_MS < giasync_node::transport::IDLE_TIMEOUT_MS as i64);
        let lookahead_ms = nodes
            .iter()
            .filter(|n| !n.upstreams.is_empty())
            .map(|n| i64::from(n.link.latency_ms))
            .min()
            .unwrap_or(0)
            .clamp(1, CONVERGENCE_CHECK_MS);
        let mut region = Region {
            lookahead_ms,
            rules,
            year,
            people,
            nodes,
            conns: Vec::new(),
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            saved_bytes: HashMap::new(),
            next_peer: 1,
            now_ms: 0,
            rng,
            ca,
            cursor: vec![0; schools],
            latest_sheet: vec![BTreeMap::new(); schools],
            awaiting_receipt: vec![BTreeMap::new(); schools],
            catching_up_since: vec![None; schools],
            actors,
            observed: Observed {
                trace: Sha256::new(),
                entries_made: vec![0; schools],
                ..Observed::default()
            },
            plan,
            sabotage,
            threads: 1,
        };
        // Nodes start a while before the first scripted event.
        region.now_ms = region.plan.starts_at();
        for i in 0..region.nodes.len() {
            region.start_node(i);
        }
        region.register();
        for s in 0..schools {
            if let Some(&(at, _)) = region.plan.schools[s].entries.first() {
                region.schedule(at, Event::Entry { school: s });
            }
        }
        for (i, f) in region.plan.faults.clone().iter().enumerate() {
            region.schedule(f.start(), Event::FaultStart(i));
            // An in-commit crash restarts its node by itself (`Event::Restart`).
            if !matches!(f, Fault::CrashInCommit { .. }) {
                region.schedule(f.end(), Event::FaultEnd(i));
            }
        }
        for i in 0..region.plan.attacks.len() {
            region.schedule(region.plan.attacks[i].at, Event::Attack(i));
        }
        let quiet = region.plan.quiet_from();
        region.schedule(quiet, Event::Check);
        Ok(region)
    }

    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs to convergence (or the settle deadline); `progress` is called now and then with
    /// the simulated time and the time the scripted day ends. On [`Region::threads`].
    pub fn run(&mut self, progress: impl FnMut(i64, i64)) {
        if self.threads > 1 {
            std::thread::scope(|scope| {
                let helper = helper::Helper::start(scope);
                self.run_with(Some(&helper), progress);
            });
        } else {
            self.run_with(None, progress);
        }
    }

    /// [`Region::run`], the engine work of events due together done beside `helper` when
    /// there is one ([`Region::arriving_with`]).
    fn run_with(&mut self, helper: Option<&helper::Helper>, mut progress: impl FnMut(i64, i64)) {
        let deadline = self.plan.quiet_from() + self.plan.settle_ms;
        let quiet = self.plan.quiet_from();
        while let Some(Reverse((at, id))) = self.queue.pop() {
            let Some(event) = self.events.remove(&id) else {
                continue;
            };
            debug_assert!(at >= self.now_ms, "time never goes back");
            self.now_ms = at;
            if at > deadline {
                break;
            }
            self.counted(&mut progress, quiet);
            // Events of the kinds a batch holds start one; any other is handled alone.
            let event = match helper.zip(self.joins(&event, &[])) {
                Some((helper, (node, lent))) => {
                    let first = Queued {
                        at,
                        id,
                        event,
                        lent,
                    };
                    let batch = self.arriving_with(first, node, deadline, &mut progress, quiet);
                    self.handle_batch(helper, batch, &mut progress, quiet);
                    continue;
                }
                None => event,
            };
            if self.handle(event) {
                break;
            }
        }
        self.observed.end_ms = self.now_ms;
        progress(self.now_ms, quiet);
    }

    /// Counts an event taken from the queue; `progress` now and then.
    fn counted(&mut self, progress: &mut impl FnMut(i64, i64), quiet: i64) {
        self.observed.events += 1;
        if self.observed.events.is_multiple_of(4096) {
            progress(self.now_ms, quiet);
        }
    }

    /// Whether a frame on `conn` for its end `to` reaches an engine now. (Asked before any
    /// engine is lent: while one is, its node's engine is out and [`Node::lent`] says so; a
    /// turn must not read another node's engine.)
    fn lendable(&self, conn: usize, to: usize) -> bool {
        self.conns[conn].alive && self.nodes[self.conns[conn].ends[to]].engine.is_some()
    }

    /// Whether `event`, queued next within a batch's span ([`Region::lookahead_ms`]) and asked
    /// at its own time, may join a batch whose events touch `nodes`, and how:
    /// `Some((node, lent))`, `node` the one it touches, `lent` when its engine's work (a frame
    /// taken in, a tick, an entry's changes) may be done beside the others'. What an event's
    /// turn does (its node's outputs carried out, which may close that node's connections or
    /// crash it; an entry acknowledged) touches its own node and school only, and an event
    /// handled whole in the batch touches no more than [`Region::touches`] says, all of which
    /// are in `nodes`; so an event joins when its node is none of the batch's and, for a
    /// frame, neither end of its connection is: then nothing done before it in the batch
    /// changes whether it happens or what its engine holds, and nothing lent after it touches
    /// what its turn reads. What a turn sends another node arrives after the batch's span.
    fn joins(&self, event: &Event, nodes: &[usize]) -> Option<(usize, bool)> {
        match *event {
            Event::Deliver { conn, to, .. } => {
                let ends = self.conns[conn].ends;
                (self.lendable(conn, to) && !nodes.iter().any(|n| ends.contains(n)))
                    .then_some((ends[to], true))
            }
            Event::Tick { node } => (!nodes.contains(&node)).then(|| {
                let live = self.nodes[node].tick_at == Some(self.now_ms) && self.nodes[node].up();
                (node, live)
            }),
            Event::Entry { school } => {
                let node = self.plan.schools[school].node;
                (!nodes.contains(&node)).then(|| (node, self.entry_lendable(school).is_some()))
            }
            _ => None,
        }
    }

    /// The entry school `s` makes now when its changes may be made on a lent engine: an
    /// entry of the documents (not a recording), in a run not broken on purpose.
    fn entry_lendable(&self, s: usize) -> Option<Entry> {
        self.entry_due(s)
            .filter(|e| !matches!(e, Entry::Recording { .. } | Entry::RoomStream { .. }))
            .filter(|_| self.sabotage == Sabotage::None)
    }

    /// `first` (with its node, as [`Region::joins`] said) and the events queued next that may
    /// join it, taken from the queue in its order, up to [`BATCH_EVENTS_MAX`], from the span of
    /// [`Region::lookahead_ms`] that starts at `first` (and not past `deadline`): nothing any
    /// of them does reaches another node within it. An event [`Region::joins`] takes is lent
    /// when it said so; any other that touches only its own node or connection
    /// ([`Region::touches`]) is handled whole in its turn, and what it touches may not be lent
    /// after it. The first event that may touch anything (a fault, a restart, an attack, the
    /// check) ends the batch.
    fn arriving_with(
        &mut self,
        first: Queued,
        node: usize,
        deadline: i64,
        progress: &mut impl FnMut(i64, i64),
        quiet: i64,
    ) -> Vec<Queued> {
        let until = first.at + self.lookahead_ms;
        let mut nodes = vec![node];
        let mut batch = vec![first];
        while batch.len() < BATCH_EVENTS_MAX {
            let Some(&Reverse((at, id))) = self.queue.peek() else {
                break;
            };
            if at >= until || at > deadline {
                break;
            }
            let Some(event) = self.events.get(&id) else {
                // Gone: the main loop would pass over it too.
                self.queue.pop();
                continue;
            };
            // Asked as of the event's own time.
            self.now_ms = at;
            let (touched, lent) = match self.joins(event, &nodes) {
                Some((node, lent)) => (vec![node], lent),
                None => match self.touches(event) {
                    Some(touched) => (touched, false),
                    None => break,
                },
            };
            self.queue.pop();
            // There: just looked up.
            let Some(event) = self.events.remove(&id) else {
                break;
            };
            self.counted(progress, quiet);
            nodes.extend(touched);
            batch.push(Queued {
                at,
                id,
                event,
                lent,
            });
        }
        batch
    }

    /// For an event of a kind [`Region::joins`] does not take, the nodes it may touch when
    /// handled whole inside a batch: its own, or both ends of its connection. `None` for one
    /// that may touch any node (a fault, a restart, an attack, the check), and for the kinds
    /// `joins` takes: one of those that cannot join ends the batch, so that it may be lent in
    /// the next.
    fn touches(&self, event: &Event) -> Option<Vec<usize>> {
        match *event {
            Event::Handshake { conn }
            | Event::Lost { conn, .. }
            | Event::FallbackExpired { conn }
            | Event::DeliverBlob { conn, .. } => Some(self.conns[conn].ends.to_vec()),
            Event::Dial { node, .. }
            | Event::Probe { node, .. }
            | Event::DialFailed { node, .. }
            | Event::BlobTick { node } => Some(vec![node]),
            Event::Deliver { .. }
            | Event::Entry { .. }
            | Event::Tick { .. }
            | Event::FaultStart(_)
            | Event::FaultEnd(_)
            | Event::Restart { .. }
            | Event::Attack(_)
            | Event::Check => None,
        }
    }

    /// Handles a batch ([`Region::arriving_with`]): the engines of the events lent out do
    /// their work side by side (when there are two or more), each at its event's time; then
    /// every event has its turn in queue order (a lent one's node's outputs carried out and an
    /// entry acknowledged; any other handled whole), each after the events its predecessors'
    /// turns scheduled before it ([`Region::due_before`]).
    fn handle_batch(
        &mut self,
        helper: &helper::Helper,
        batch: Vec<Queued>,
        progress: &mut impl FnMut(i64, i64),
        quiet: i64,
    ) {
        // A batch holds no `Check`, the one event whose handling ends a run: what `handle`
        // returns is false for all it holds.
        let lending = batch.iter().filter(|q| q.lent).count() >= 2;
        // In queue order: `None` where the next lent job's turn comes.
        let mut turns = Vec::with_capacity(batch.len());
        let mut jobs = Vec::new();
        for Queued {
            at,
            id,
            event,
            lent,
        } in batch
        {
            self.now_ms = at;
            match self.lend(event, lending && lent) {
                Ok(job) => {
                    jobs.push(job);
                    turns.push((at, id, None));
                }
                Err(event) => turns.push((at, id, Some(event))),
            }
        }
        // The turns begin as soon as the first event's work is done, the helper going on with
        // the later jobs meanwhile.
        let mut posted = (!jobs.is_empty()).then(|| helper.post(jobs));
        for (at, id, turn) in turns {
            self.due_before((at, id), progress, quiet);
            self.now_ms = at;
            match turn {
                Some(event) => {
                    self.handle(event);
                }
                None => {
                    if let Some(job) = posted.as_mut().and_then(helper::Posted::take) {
                        let node = &mut self.nodes[job.node];
                        node.engine = Some(job.engine);
                        node.lent = false;
                        self.lent_turn(job.node, job.work);
                    }
                }
            }
        }
    }

    /// Handles, whole and in queue order, the events the turns of a batch scheduled that are
    /// due before `next` (the time and id of its next event): a node's own events (a timer, a
    /// redial, its restart after a crash with no time down), never another node's within the
    /// batch's span. They come first when one thread does it all, so they do here.
    fn due_before(&mut self, next: (i64, u64), progress: &mut impl FnMut(i64, i64), quiet: i64) {
        while let Some(&Reverse((at, id))) = self.queue.peek()
            && (at, id) < next
        {
            self.queue.pop();
            let Some(event) = self.events.remove(&id) else {
                continue;
            };
            self.now_ms = at;
            self.counted(progress, quiet);
            let over = self.handle(event);
            debug_assert!(!over, "the check is never due inside a batch");
        }
    }

    /// The job that does `event`'s engine work on its node's engine, lent out of the node,
    /// when `lent` and its engine is there; else the event, to be handled whole in its turn.
    fn lend(&mut self, event: Event, lent: bool) -> Result<helper::Job, Event> {
        if !lent {
            return Err(event);
        }
        let (node, work) = match event {
            Event::Deliver { conn, to, bytes } => (
                self.conns[conn].ends[to],
                helper::Work::Frame {
                    conn,
                    to,
                    peer: self.conns[conn].peer[to],
                    bytes,
                },
            ),
            Event::Tick { node } => (node, helper::Work::Tick),
            Event::Entry { school } => match self.entry_work(school) {
                Some(work) => (self.plan.schools[school].node, work),
                None => return Err(event),
            },
            event => return Err(event),
        };
        let Some(engine) = self.nodes[node].engine.take() else {
            return Err(unlent(work, node));
        };
        self.nodes[node].lent = true;
        let now_ms = self.now_ms;
        match work {
            helper::Work::Frame { .. } => self.observed.frames_side_by_side += 1,
            helper::Work::Entry { .. } => self.observed.entries_side_by_side += 1,
            helper::Work::Tick => {}
        }
        Ok(helper::Job {
            node,
            engine,
            work,
            now_ms,
        })
    }

    /// School `school`'s due entry with its changes worked out, to be made on its lent engine;
    /// `None` when it is not one to lend or cannot be worked out (it is then made whole in its
    /// turn, which meets the same error). Asked while the engine is still in its node.
    fn entry_work(&self, school: usize) -> Option<helper::Work> {
        let entry = self.entry_lendable(school)?;
        let (writes, made) = self.entry_writes(school, entry).ok()?;
        Some(helper::Work::Entry {
            school,
            entry,
            made,
            writes,
            outcome: None,
        })
    }

    /// A lent event's turn, its node's engine back and its `work` done: the node's outputs
    /// carried out, an entry noted and acknowledged.
    fn lent_turn(&mut self, node: usize, work: helper::Work) {
        match work {
            helper::Work::Frame {
                conn, to, bytes, ..
            } => self.delivered(conn, to, &bytes),
            helper::Work::Tick => {
                self.nodes[node].tick_at = None;
                self.drain(node);
            }
            helper::Work::Entry {
                school,
                entry,
                made,
                writes,
                outcome,
            } => {
                let made = match outcome {
                    Some(Ok(())) => {
                        self.made(&writes);
                        Ok(Some(made))
                    }
                    Some(Err(e)) => Err(e),
                    None => Err("the entry's changes were not made".to_owned()),
                };
                self.entry_done(school, entry, made);
            }
        }
    }

    fn schedule(&mut self, at: i64, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at.max(self.now_ms), id)));
    }

    /// Handles one event; true when the run is over.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Entry { school } => self.entry(school),
            Event::Deliver { conn, to, bytes } => self.deliver(conn, to, &bytes),
            Event::Dial { node, generation } => self.dial(node, generation),
            Event::Probe {
                node,
                generation,
                send,
            } => self.probe(node, generation, send),
            Event::Handshake { conn } => self.handshake(conn),
            Event::DialFailed { node, generation } => self.dial_failed(node, generation),
            Event::Lost { conn, end } => self.lost(conn, end),
            Event::FallbackExpired { conn } => {
                // The dialer (end 0) lets its fallback connection go.
                if self.conns[conn].alive {
                    self.close(conn, 0);
                }
            }
            Event::Tick { node } => self.tick(node),
            Event::DeliverBlob { conn, to, bytes } => self.deliver_blob(conn, to, &bytes),
            Event::BlobTick { node } => self.blob_tick(node),
            Event::FaultStart(i) => self.fault(i, true),
            Event::FaultEnd(i) => self.fault(i, false),
            Event::Restart { node } => self.up_again(node),
            Event::Attack(i) => self.attack(i),
            Event::Check => return self.check(),
        }
        false
    }

    // ---- nodes -------------------------------------------------------------------------

    /// Starts (or restarts) a node's engine from its store and starts dialling.
    fn start_node(&mut self, i: usize) {
        // Loaded again from its store, a document may save to other bytes at the same heads.
        self.saved_bytes.retain(|(node, _), _| *node != i);
        let node = &mut self.nodes[i];
        let mut engine = Engine::new(
            node.identity,
            node.key.clone(),
            node.cert.clone(),
            Box::new(self.ca.clone()),
        );
        for (doc, stored) in &mut node.store.docs {
            let endorsements: Vec<(Vec<u8>, Vec<u8>)> =
                stored.attestations.values().cloned().collect();
            if let Err(e) = engine.load_doc(*doc, &stored.changes, &endorsements) {
                self.observed
                    .entry_errors
                    .push(format!("{} cannot load {doc}: {e}", node.identity));
                continue;
            }
            // Compacted, as the production store does on start.
            if let Some(am) = engine.doc(doc) {
                stored.changes = am.save();
            }
        }
        node.engine = Some(engine);
        self.start_blobs(i);
        if self.nodes[i].kind == Kind::Rcoi {
            self.name_materials(i);
        }
        let node = &mut self.nodes[i];
        node.dial = Dialer {
            generation: node.dial.generation + 1,
            rank: 0,
            backoff_ms: giasync_node::run::RETRY_BACKOFF_MS_MIN as i64,
            attempt_from_ms: self.now_ms,
        };
        node.tick_at = None;
        let generation = node.dial.generation;
        if !node.upstreams.is_empty() {
            self.schedule(
                self.now_ms,
                Event::Dial {
                    node: i,
                    generation,
                },
            );
        }
        // Peers still holding a connection to the old process learn at their next packet
        // (keep-alive) that it is gone: the stateless reset.
        for c in 0..self.conns.len() {
            if let Some(end) = self.conns[c].ends.iter().position(|&e| e == i) {
                let other = 1 - end;
                if !self.conns[c].closed[other] {
                    let latency = i64::from(self.conns[c].profile.latency_ms);
                    let keep_alive = giasync_node::transport::KEEP_ALIVE_MS;
                    let at = self.now_ms + latency + self.rng.below(keep_alive) as i64;
                    self.schedule(
                        at,
                        Event::Lost {
                            conn: c,
                            end: other,
                        },
                    );
                }
            }
        }
    }

    fn stop_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.engine = None;
        // What its transfers had yet to do dies with the process.
        node.transfers = Transfers::new();
        node.peers.clear();
        node.dial.generation += 1;
        node.tick_at = None;
        self.break_links_of(i);
        for conn in &mut self.conns {
            if let Some(end) = conn.ends.iter().position(|&e| e == i) {
                conn.closed[end] = true;
            }
        }
    }

    /// Every live connection of node `i` stops carrying frames; both ends notice after the
    /// idle timeout.
    fn break_links_of(&mut self, i: usize) {
        let idle = giasync_node::transport::IDLE_TIMEOUT_MS as i64;
        for c in 0..self.conns.len() {
            let conn = &mut self.conns[c];
            if !conn.ends.contains(&i) || !conn.alive {
                continue;
            }
            conn.alive = false;
            let closed = conn.closed;
            for end in (0..2).filter(|&end| !closed[end]) {
                self.schedule(self.now_ms + idle, Event::Lost { conn: c, end });
            }
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        na.up() && nb.up() && na.offline == 0 && nb.offline == 0
    }

    fn fault(&mut self, i: usize, start: bool) {
        match self.plan.faults[i] {
            Fault::Offline { node, .. } => {
                if start {
                    self.nodes[node].offline += 1;
                    self.break_links_of(node);
                } else {
                    self.nodes[node].offline = self.nodes[node].offline.saturating_sub(1);
                    if self.nodes[node].offline == 0 {
                        self.back_online(node);
                    }
                }
            }
            Fault::Down { node, .. } => {
                // Windows may overlap: the node is back when the last of them ends.
                if start {
                    self.nodes[node].down += 1;
                    if self.nodes[node].down == 1 {
                        self.stop_node(node);
                    }
                } else {
                    self.up_again(node);
                }
            }
            Fault::CrashInCommit { node, down, .. } => {
                self.nodes[node].crash_in_commit = Some(down);
            }
        }
    }

    /// The end of one down window of a node: it restarts from its store when it was the last.
    fn up_again(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.down = n.down.saturating_sub(1);
        if n.down == 0 {
            self.start_node(node);
            self.back_online(node);
            if let Some(s) = self.school_of(node) {
                // Staff go on from where they had to stop.
                self.schedule(self.now_ms, Event::Entry { school: s });
            }
        }
    }

    /// Whether blobs move in this run: recordings, or the materials package.
    fn blobs_on(&self) -> bool {
        self.plan.audio.is_some() || self.plan.materials.is_some()
    }

    fn school_of(&self, node: usize) -> Option<usize> {
        self.plan.schools.iter().position(|s| s.node == node)
    }

    // ---- connections -------------------------------------------------------------------

    /// Starts a connection attempt to the node's current upstream.
    fn dial(&mut self, node: usize, generation: u64) {
        let n = &mut self.nodes[node];
        if !n.up() || n.dial.generation != generation {
            return;
        }
        n.dial.attempt_from_ms = self.now_ms;
        self.probe(node, generation, 0);
    }

    /// The attempt's `send`th first packet: when the upstream is reachable the handshake
    /// completes; otherwise QUIC sends it again at its next probe time, and the attempt fails
    /// at the connect timeout. A link that returns during an attempt is so noticed at the next
    /// send, as on a real network, not at the attempt's end.
    fn probe(&mut self, node: usize, generation: u64, send: usize) {
        let n = &self.nodes[node];
        if !n.up() || n.dial.generation != generation {
            return;
        }
        let Some(&target) = n.upstreams.get(n.dial.rank) else {
            return;
        };
        let from = n.dial.attempt_from_ms;
        let timeout = giasync_node::run::CONNECT_TIMEOUT_MS as i64;
        let rtt = 2 * i64::from(n.link.latency_ms);
        let sent_at = self.now_ms - from;
        if self.reachable(node, target) && sent_at + HANDSHAKE_ROUND_TRIPS * rtt < timeout {
            let profile = n.link;
            let rank = n.dial.rank;
            let conn = self.conns.len();
            self.conns.push(Conn {
                ends: [node, target],
                peer: [0, 0],
                profile,
                alive: true,
                established: false,
                closed: [false, false],
                lanes: [Lane::default(); 2],
                blob_lanes: [Lane::default(); 2],
                rank,
                in_flight: 0,
                catching_up: true,
            });
            self.schedule(
                self.now_ms + HANDSHAKE_ROUND_TRIPS * rtt + 1,
                Event::Handshake { conn },
            );
            return;
        }
        match giasync_node::transport::first_packet_sends_ms()
            .nth(send + 1)
            .map(|at| at as i64)
            .filter(|&at| at < timeout)
        {
            Some(at) => self.schedule(
                from + at,
                Event::Probe {
                    node,
                    generation,
                    send: send + 1,
                },
            ),
            None => self.schedule(from + timeout, Event::DialFailed { node, generation }),
        }
    }

    fn handshake(&mut self, c: usize) {
        let [a, b] = self.conns[c].ends;
        let generation = self.nodes[a].dial.generation;
        if !self.conns[c].alive || !self.reachable(a, b) {
            // The handshake never completes: the dialer gives up at its timeout.
            self.conns[c].alive = false;
            self.conns[c].closed = [true, true];
            let timeout = giasync_node::run::CONNECT_TIMEOUT_MS as i64;
            self.schedule(
                self.nodes[a].dial.attempt_from_ms + timeout,
                Event::DialFailed {
                    node: a,
                    generation,
                },
            );
            return;
        }
        let (pa, pb) = (self.next_peer, self.next_peer + 1);
        self.next_peer += 2;
        let conn = &mut self.conns[c];
        conn.peer = [pa, pb];
        conn.established = true;
        self.observed.connections += 1;
        self.observed.bytes_total += HANDSHAKE_BYTES;
        self.observed.bytes_by_kind.handshakes += HANDSHAKE_BYTES;
        self.nodes[a].peers.insert(pa, c);
        self.nodes[b].peers.insert(pb, c);
        self.nodes[a].dial.backoff_ms = giasync_node::run::RETRY_BACKOFF_MS_MIN as i64;
        if self.conns[c].rank > 0 {
            let hold = giasync_node::run::FALLBACK_HOLD_MS as i64;
            self.schedule(self.now_ms + hold, Event::FallbackExpired { conn: c });
        }
        // The naive design's catch-up: each side re-sends every document the other may read,
        // whole, in packets like ours.
        for (me, other) in [(a, b), (b, a)] {
            let peer = self.nodes[other].identity;
            if let Some(engine) = &self.nodes[me].engine {
                for doc in engine.doc_ids() {
                    if doc.readable_by(&peer)
                        && let Some(am) = engine.doc(doc)
                    {
                        let heads = am.get_heads();
                        let saved = match self.saved_bytes.get(&(me, *doc)) {
                            Some((at, len)) if *at == heads => *len,
                            _ => {
                                let len = am.save().len();
                                self.saved_bytes.insert((me, *doc), (heads, len));
                                len
                            }
                        };
                        self.observed.naive_reconnect_bytes += wire_bytes(saved as u64);
                    }
                }
            }
        }
        let (ia, ib) = (self.nodes[a].identity, self.nodes[b].identity);
        // As TLS's ALPN agrees: the newest version both speak.
        let versions = |n: usize| {
            self.nodes[n]
                .engine
                .as_ref()
                .map_or(&[][..], |e| e.wire_versions())
                .to_vec()
        };
        let wire = wire::agree(&versions(a), &versions(b)).unwrap_or(wire::WIRE_VERSION);
        for (node, peer, identity) in [(a, pa, ib), (b, pb, ia)] {
            if let Some(engine) = self.nodes[node].engine.as_mut() {
                engine.handle(
                    self.now_ms,
                    Input::Connected {
                        peer,
                        identity,
                        wire,
                        link: giasync_shared::sync::Link::Quic,
                    },
                );
            }
            self.drain(node);
            if self.blobs_on() {
                self.nodes[node]
                    .transfers
                    .connected(self.now_ms, peer, identity);
                self.drain_blobs(node);
            }
        }
    }

    fn dial_failed(&mut self, node: usize, generation: u64) {
        let n = &mut self.nodes[node];
        if !n.up() || n.dial.generation != generation {
            return;
        }
        n.dial.rank += 1;
        if n.dial.rank < n.upstreams.len() {
            self.schedule(self.now_ms, Event::Dial { node, generation });
            return;
        }
        n.dial.rank = 0;
        let backoff = n.dial.backoff_ms;
        n.dial.backoff_ms = (backoff * 2).min(giasync_node::run::RETRY_BACKOFF_MS_MAX as i64);
        let jitter = self.rng.below(backoff as u64 / 2 + 1) as i64;
        self.schedule(
            self.now_ms + backoff + jitter,
            Event::Dial { node, generation },
        );
    }

    /// One end learns its connection is gone.
    fn lost(&mut self, c: usize, end: usize) {
        if self.conns[c].closed[end] {
            return;
        }
        self.conns[c].alive = false;
        self.conns[c].closed[end] = true;
        let node = self.conns[c].ends[end];
        let peer = self.conns[c].peer[end];
        if !self.conns[c].established {
            return;
        }
        if let Some(engine) = self.nodes[node].engine.as_mut() {
            engine.handle(self.now_ms, Input::Disconnected { peer });
            self.nodes[node].peers.remove(&peer);
            self.drain(node);
            self.nodes[node].transfers.disconnected(self.now_ms, peer);
            self.drain_blobs(node);
            if end == 0 {
                // The dialer's loop goes round again at once, from its preferred upstream.
                let n = &mut self.nodes[node];
                n.dial.generation += 1;
                n.dial.rank = 0;
                let generation = n.dial.generation;
                self.schedule(self.now_ms, Event::Dial { node, generation });
            }
        }
    }

    /// Closes a connection deliberately from its end `by`: that end knows at once, the other
    /// one latency later (when the close reaches it). Nothing a node does reaches another node
    /// sooner ([`Region::lookahead_ms`]).
    fn close(&mut self, c: usize, by: usize) {
        self.conns[c].alive = false;
        let latency = i64::from(self.conns[c].profile.latency_ms);
        self.schedule(self.now_ms, Event::Lost { conn: c, end: by });
        self.schedule(
            self.now_ms + latency,
            Event::Lost {
                conn: c,
                end: 1 - by,
            },
        );
    }

    /// Puts a frame on the wire from `from` (an end of `c`).
    fn send(&mut self, c: usize, from: usize, bytes: Vec<u8>) {
        let conn = &mut self.conns[c];
        let p = conn.profile;
        let framed = bytes.len() as u64 + 4;
        let packets = framed.div_ceil(PACKET_PAYLOAD_BYTES);
        let mut wire = wire_bytes(framed);
        let packet_bytes = PACKET_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES;
        let latency = i64::from(p.latency_ms);
        let mut extra_ms = 0i64;
        for _ in 0..packets {
            let mut delay = 0;
            while self.rng.chance(p.loss) {
                wire += packet_bytes;
                delay += 2 * latency + RETRANSMIT_EXTRA_MS;
            }
            if self.rng.chance(p.duplication) {
                wire += packet_bytes;
            }
            if self.rng.chance(p.reordering) {
                delay += self.rng.below(latency as u64 + 1) as i64;
            }
            extra_ms = extra_ms.max(delay);
        }
        let serialise_ms = (wire * 8).div_ceil(u64::from(p.bandwidth_kbit_s)) as i64;
        self.observed.bytes_total += wire;
        self.observed.frames_total += 1;
        self.observed.count_frame(&bytes, wire);
        if conn.catching_up {
            self.observed.reconnect_bytes += wire;
        }
        if !conn.alive {
            return;
        }
        conn.in_flight += 1;
        // Recording bytes already in the network go first (frames queued before this one waited
        // for them already); the recordings wait for this frame.
        let behind_ms = self.behind_blobs_ms(c, from, serialise_ms);
        let conn = &mut self.conns[c];
        let lane = &mut conn.lanes[from];
        lane.free_at_ms = lane.free_at_ms.max(self.now_ms + behind_ms) + serialise_ms;
        let arrive = (lane.free_at_ms + latency + extra_ms).max(lane.delivered_at_ms);
        lane.delivered_at_ms = arrive;
        self.schedule(
            arrive,
            Event::Deliver {
                conn: c,
                to: 1 - from,
                bytes,
            },
        );
    }

    fn deliver(&mut self, c: usize, to: usize, bytes: &[u8]) {
        if !self.conns[c].alive {
            return;
        }
        let node = self.conns[c].ends[to];
        let peer = self.conns[c].peer[to];
        if let Some(engine) = self.nodes[node].engine.as_mut() {
            engine.handle(self.now_ms, Input::Received { peer, bytes });
        }
        self.delivered(c, to, bytes);
    }

    /// The rest of [`Region::deliver`] once the engine (if its node is up) has taken the
    /// frame in: the trace, and the node's outputs carried out.
    fn delivered(&mut self, c: usize, to: usize, bytes: &[u8]) {
        self.conns[c].in_flight = self.conns[c].in_flight.saturating_sub(1);
        let node = self.conns[c].ends[to];
        self.observed.trace.update(self.now_ms.to_be_bytes());
        self.observed.trace.update((c as u64).to_be_bytes());
        self.observed.trace.update(bytes);
        if self.nodes[node].engine.is_some() {
            self.drain(node);
        }
        if self.conns[c].in_flight == 0 {
            self.conns[c].catching_up = false;
        }
    }

    fn tick(&mut self, node: usize) {
        if self.nodes[node].tick_at != Some(self.now_ms) {
            return;
        }
        self.nodes[node].tick_at = None;
        if let Some(engine) = self.nodes[node].engine.as_mut() {
            engine.handle(self.now_ms, Input::Tick);
            self.drain(node);
        }
    }

    /// Carries out a node's outputs: persist everything first, then send (as production does),
    /// and at the РЦОИ verify and receipt the sheets that arrived.
    fn drain(&mut self, node: usize) {
        self.commit(node, false);
    }

    /// [`Region::drain`], as one batch committed to the store; `sheet` when the batch holds a
    /// score sheet staff entered. True when the batch became durable; false when an armed
    /// in-commit crash struck it (or the node is down): then nothing of it was persisted, sent
    /// or may be acknowledged.
    fn commit(&mut self, node: usize, sheet: bool) -> bool {
        let mut sends = Vec::new();
        let mut records = Vec::new();
        let mut protocols = BTreeSet::new();
        loop {
            let outputs: Vec<Output> = match self.nodes[node].engine.as_mut() {
                Some(engine) => std::iter::from_fn(|| engine.poll_output()).collect(),
                None => return false,
            };
            if outputs.is_empty() {
                if self.nodes[node].kind == Kind::Rcoi && !protocols.is_empty() {
                    self.receipt(node, std::mem::take(&mut protocols));
                    continue;
                }
                break;
            }
            for output in outputs {
                match output {
                    Output::Send { peer, bytes } => sends.push((peer, Ok(bytes))),
                    Output::Close { peer, reason } => sends.push((peer, Err(reason))),
                    Output::Persist(record) => {
                        if let Persist::Changes {
                            doc:
                                doc @ DocId::School {
                                    kind: DocKind::Protocol,
                                    ..
                                },
                            ..
                        } = &record
                        {
                            protocols.insert(*doc);
                        }
                        records.push(record);
                    }
                }
            }
        }
        let n = &self.nodes[node];
        let strikes = n.crash_in_commit.is_some()
            && if n.kind == Kind::School {
                sheet
            } else {
                records.iter().any(|r| matches!(r, Persist::Changes { .. }))
            };
        if let Some(down) = n.crash_in_commit.filter(|_| strikes) {
            // `kill -9` before `commit` returns: the batch is lost whole, nothing of it sent.
            self.nodes[node].crash_in_commit = None;
            self.nodes[node].down += 1;
            self.observed.batches_lost_in_commit += 1;
            self.stop_node(node);
            self.schedule(self.now_ms + down, Event::Restart { node });
            return false;
        }
        let changed: Vec<DocId> = records
            .iter()
            .filter_map(|r| match r {
                Persist::Changes { doc, .. } => Some(*doc),
                _ => None,
            })
            .collect();
        let receipts_changed = records.iter().any(|r| {
            matches!(
                r,
                Persist::Changes {
                    doc: DocId::School {
                        kind: DocKind::Rcoi,
                        ..
                    },
                    ..
                }
            )
        });
        for record in records {
            self.persist(node, record);
        }
        if receipts_changed && let Some(s) = self.school_of(node) {
            self.receipts_seen(s);
        }
        for (peer, bytes) in sends {
            let Some(&c) = self.nodes[node].peers.get(&peer) else {
                continue;
            };
            let end = usize::from(self.conns[c].ends[1] == node);
            match bytes {
                Ok(bytes) => {
                    if self.nodes[node].first_sync_sent.is_none()
                        && matches!(
                            Frame::decode(&bytes),
                            Ok(Frame::Sync { ref attestations, .. }) if !attestations.is_empty()
                        )
                    {
                        self.nodes[node].first_sync_sent = Some(bytes.clone());
                    }
                    self.send(c, end, bytes);
                }
                // The engine closed the connection: the peer broke the protocol, or a newer
                // connection from the same node replaced it.
                Err(reason) => {
                    self.observed.closed_for_protocol += 1;
                    // A flood refused: the connection it was sent on, closed for too many
                    // unfinished fragmented frames.
                    if reason == CloseReason::FragmentedFrames && self.observed.flooded.remove(&c) {
                        self.observed.tally(AdversaryKind::FragmentFlood).refused += 1;
                    }
                    self.close(c, end);
                }
            }
        }
        // What the batch changed may name recordings to fetch, or receipt them.
        self.plan_blobs(node, &changed);
        if let Some(t) = self.nodes[node]
            .engine
            .as_ref()
            .and_then(Engine::poll_timeout)
            && self.nodes[node].tick_at.is_none_or(|at| t < at)
        {
            self.nodes[node].tick_at = Some(t.max(self.now_ms));
            self.schedule(t, Event::Tick { node });
        }
        true
    }

    /// The РЦОИ verifies the sheets new in `protocols` and receipts them.
    fn receipt(&mut self, node: usize, protocols: BTreeSet<DocId>) {
        let started = std::time::Instant::now();
        let mut verified = 0;
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let protocols: Vec<DocId> = protocols.into_iter().collect();
        if self.sabotage == Sabotage::ApproveEveryRequest {
            for doc in &protocols {
                approve_every_request(engine, *doc, self.now_ms);
            }
        }
        let verifier = &self.people.verifier;
        // The РЦОИ judges time on the region's clock: the simulated day starts at midnight.
        let received_ms = self.plan.midnight_ms + self.now_ms;
        for (doc, outcome) in ingest::receipt_new_sheets_of(
            engine,
            &protocols,
            &self.rules,
            |certs| verifier.experts(certs),
            ingest::SigningTime {
                clock: self.plan.clock,
                year: &self.year.0,
                calendar: &self.year.1,
            },
            received_ms,
        ) {
            match outcome {
                Ok(n) => verified += n,
                Err(e) => self
                    .observed
                    .entry_errors
                    .push(format!("receipts for {doc}: {e}")),
            }
        }
        if verified > 0 {
            self.observed
                .receipted_at_rcoi
                .push((self.now_ms, verified));
        }
        self.observed.ingest_wall += started.elapsed();
    }

    fn persist(&mut self, node: usize, record: Persist) {
        let n = &mut self.nodes[node];
        match record {
            Persist::Changes { doc, bytes } => {
                if n.kind == Kind::School && !n.holds_checked.contains(&doc) {
                    if authority::holds(&n.identity, &doc) {
                        n.holds_checked.insert(doc);
                    } else {
                        n.foreign_docs += 1;
                    }
                }
                self.observed.last_progress_ms = self.now_ms;
                n.store
                    .docs
                    .entry(doc)
                    .or_default()
                    .changes
                    .extend_from_slice(&bytes);
            }
            Persist::Attestation {
                doc,
                author,
                cert,
                bytes,
            } => {
                n.store
                    .docs
                    .entry(doc)
                    .or_default()
                    .attestations
                    .insert(author, (cert, bytes));
            }
            Persist::Quarantine {
                doc, peer, reason, ..
            } => {
                n.quarantined += 1;
                if let Some(&kind) = self.observed.attacked.get(&(peer.to_uri(), doc)) {
                    self.observed.tally(kind).refused += 1;
                }
                if self.observed.quarantine_reasons.len() < 5 {
                    self.observed.quarantine_reasons.push(format!(
                        "{} refused {doc} from {peer}: {reason}",
                        n.identity
                    ));
                }
            }
            Persist::Audit { .. } => {}
        }
    }

    // ---- data entry --------------------------------------------------------------------

    fn entry(&mut self, s: usize) {
        if let Some(entry) = self.entry_due(s) {
            let made = self.entry_made(s, entry);
            self.entry_done(s, entry, made);
        }
    }

    /// The entry school `s` makes now, if its node is up and one is due.
    fn entry_due(&self, s: usize) -> Option<Entry> {
        let node = self.plan.schools[s].node;
        if !self.nodes[node].up() {
            // Resumed when the node restarts.
            return None;
        }
        let &(at, entry) = self.plan.schools[s].entries.get(self.cursor[s])?;
        // Later: a duplicate wake-up (after a restart), the entry's own event still queued.
        (at <= self.now_ms).then_some(entry)
    }

    /// Makes school `s`'s due `entry` (or, under sabotage, does not).
    fn entry_made(&mut self, s: usize, entry: Entry) -> Result<Option<Made>, String> {
        let index = self.cursor[s];
        let stalled = self.sabotage == Sabotage::StalledSchool && s == 0 && index >= 10;
        if self.sabotage == Sabotage::BrokenEntry && s == 0 && index == 5 {
            Err("broken on purpose".to_owned())
        } else if stalled {
            Ok(None)
        } else {
            self.make_entry(s, entry)
                .map(Some)
                .map_err(|e| e.to_string())
        }
    }

    /// School `s`'s `entry`, `made`, committed: acknowledged to the staff (and counted by the
    /// run) once its batch is durable (a batch lost in a crash is entered again after the
    /// restart), and the next entry scheduled.
    fn entry_done(&mut self, s: usize, entry: Entry, made: Result<Option<Made>, String>) {
        let node = self.plan.schools[s].node;
        let sheet = matches!(made, Ok(Some(Made::Sheet { .. })));
        if self.sabotage == Sabotage::AckBeforeDurable {
            self.cursor[s] += 1;
            self.acknowledge(s, entry, made);
            if !self.commit(node, sheet) {
                return;
            }
        } else {
            if !self.commit(node, sheet) {
                return;
            }
            self.cursor[s] += 1;
            self.acknowledge(s, entry, made);
        }
        if let Some(&(next, _)) = self.plan.schools[s].entries.get(self.cursor[s]) {
            self.schedule(next.max(self.now_ms), Event::Entry { school: s });
        }
    }

    /// A school's network or process is back: the time until every sheet it acknowledged is
    /// receipted back at it is its catch-up.
    fn back_online(&mut self, node: usize) {
        if let Some(s) = self.school_of(node)
            && !self.awaiting_receipt[s].is_empty()
        {
            self.catching_up_since[s] = Some(self.now_ms);
        }
    }

    /// The sheets of school `s` whose receipt its node now holds: their latency is recorded.
    fn receipts_seen(&mut self, s: usize) {
        if self.awaiting_receipt[s].is_empty() {
            return;
        }
        let rcoi = self.doc(s, DocKind::Rcoi);
        let node = self.plan.schools[s].node;
        let Some(doc) = self.nodes[node].engine.as_ref().and_then(|e| e.doc(&rcoi)) else {
            return;
        };
        let seen: Vec<RecordHash> = self.awaiting_receipt[s]
            .keys()
            .filter(|h| {
                matches!(
                    automerge::ReadDoc::get(doc, automerge::ROOT, format!("receipt/{h}")),
                    Ok(Some(_))
                )
            })
            .copied()
            .collect();
        for hash in seen {
            if let Some((signed_ms, true)) = self.awaiting_receipt[s].remove(&hash) {
                self.observed
                    .receipt_latency_ms
                    .push(self.now_ms - signed_ms);
            }
        }
        if self.awaiting_receipt[s].is_empty()
            && let Some(since) = self.catching_up_since[s].take()
        {
            self.observed.catchup_ms.push(self.now_ms - since);
        }
    }

    /// Records what an entry made, as the staff are told it is saved.
    fn acknowledge(&mut self, s: usize, entry: Entry, made: Result<Option<Made>, String>) {
        let made = match made {
            Ok(Some(made)) => made,
            // Not made (the stalled school): nothing to record.
            Ok(None) => return,
            Err(e) => {
                let code = self.plan.schools[s].code;
                self.observed
                    .entry_errors
                    .push(format!("school {code}: {entry:?}: {e}"));
                return;
            }
        };
        self.observed.entries_made[s] += 1;
        if let Made::Recording { blob } = made {
            self.observed.recordings.push((s, blob, self.now_ms));
            self.observed.recording_blobs.insert(blob.hash, (s, blob));
            return;
        }
        if let Made::Sheet {
            participant,
            entered,
            kind,
        } = made
        {
            let node = self.plan.schools[s].node;
            let connected = self.nodes[node].peers.values().any(|&c| {
                let conn = &self.conns[c];
                conn.alive && conn.established
            });
            self.awaiting_receipt[s].insert(entered.hash, (entered.at_ms, connected));
            match kind {
                SheetKind::Tampered
                | SheetKind::ByRevokedExpert
                | SheetKind::OtherCategory
                | SheetKind::AfterAct
                | SheetKind::OutsideRoom
                | SheetKind::OtherAttempt => {
                    self.observed.invalid_sheets.push((entered, kind));
                    return;
                }
                SheetKind::Conflicting => {
                    self.observed.conflicts_entered.insert(entered.subject);
                }
                SheetKind::First | SheetKind::Correction => {
                    self.latest_sheet[s].insert(participant, entered.hash);
                }
            }
            self.observed.sheets.push(entered);
        }
    }

    fn doc(&self, s: usize, kind: DocKind) -> DocId {
        DocId::School {
            kind,
            municipality: self.plan.schools[s].municipality,
            school: self.plan.schools[s].code,
            exam: self.plan.exam,
        }
    }

    /// The РЦОИ's register, written before the day from the region's list (the plan): each
    /// school's participants with their category of record, in the school's РЦОИ document.
    fn register(&mut self) {
        let now = self.now_ms;
        for s in 0..self.plan.schools.len() {
            let doc = self.doc(s, DocKind::Rcoi);
            let Some(engine) = self.nodes[0].engine.as_mut() else {
                return;
            };
            let school = &self.plan.schools[s];
            // On an additional date the register also gives each participant's first attempt
            // and why they are admitted (§70), as the РЦОИ's list import writes them.
            let admissions = school
                .participants
                .iter()
                .map(|p| match &p.admitted {
                    Some(why) if self.sabotage != Sabotage::AttemptsByDate => {
                        Attempt::new(p.first_attempt).map(|first| Some((first, why.as_str())))
                    }
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>();
            let written = people_of(school)
                .and_then(|people| Ok((people, admissions?)))
                .map_err(|e| e.to_string())
                .and_then(|(people, admissions)| {
                    engine
                        .change(now, doc, |tx| {
                            for (person, admission) in people.iter().zip(&admissions) {
                                content::put_registered(tx, person)?;
                                if let Some((first, why)) = admission {
                                    content::put_registered_admission(tx, person.id, *first, why)?;
                                }
                            }
                            Ok(())
                        })
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                self.observed
                    .entry_errors
                    .push(format!("the register of {doc}: {e}"));
            }
        }
        self.commit(0, false);
    }

    fn make_entry(&mut self, s: usize, entry: Entry) -> Result<Made, Box<dyn std::error::Error>> {
        if matches!(entry, Entry::Recording { .. } | Entry::RoomStream { .. }) {
            return self.make_recording(s, entry);
        }
        let (writes, made) = self.entry_writes(s, entry)?;
        let node = self.plan.schools[s].node;
        let engine = self.nodes[node].engine.as_mut().ok_or("the node is down")?;
        writes.apply(engine, self.now_ms)?;
        self.made(&writes);
        Ok(made)
    }

    /// What an entry made of school `s` records: the writes to its documents, and what it
    /// made. Reads only the school's own part of the region: its plan, its node, its latest
    /// sheets (`latest_sheet[s]`, written in its own turns only) and the acts made for its
    /// participants (`acts_made` is the region's, but its subjects name their school, and
    /// only the school's own turns add them). So it may be worked out before the entry's turn,
    /// while other schools' turns are still to come ([`Region::handle_batch`]).
    fn entry_writes(
        &self,
        s: usize,
        entry: Entry,
    ) -> Result<(Writes, Made), Box<dyn std::error::Error>> {
        let at = Timestamp::from_unix_ms(self.plan.midnight_ms + self.now_ms)?;
        let roster = self.doc(s, DocKind::Roster);
        let protocol = self.doc(s, DocKind::Protocol);
        let school = &self.plan.schools[s];
        let node = school.node;
        if !self.nodes[node].up() {
            return Err("the node is down".into());
        }
        let mut writes = Writes::default();
        match entry {
            Entry::Roster => {
                let people = people_of(school)?;
                let rooms = school
                    .rooms
                    .iter()
                    .map(|r| Room::new(*r, 30))
                    .collect::<Result<Vec<_>, _>>()?;
                let assigned = people
                    .into_iter()
                    .zip(&school.participants)
                    .map(|(p, plan)| (p, school.rooms[plan.room]))
                    .collect();
                writes.push(roster, Write::Roster { rooms, assigned });
                // The head signs the commission order with the roster (seed 002 §22). Should
                // that fail, the roster is still written and the entry then fails.
                match self.commission_write(school, at) {
                    Ok(commission) => writes.push(protocol, commission),
                    Err(e) => writes.then_failed = Some(e.to_string()),
                }
            }
            Entry::Present(i) | Entry::Absent(i) => {
                let mark = if matches!(entry, Entry::Present(_)) {
                    Attendance::Present
                } else {
                    Attendance::Absent
                };
                let id = school.participants[i].id;
                writes.push(roster, Write::Mark { id, mark });
            }
            Entry::Start(i) | Entry::End(i) => {
                let p = &school.participants[i];
                let interviewer = school.interviewers[p.room];
                let end = matches!(entry, Entry::End(_));
                // The answer after an act for a bad recording is the next attempt, with another
                // variant (§45).
                let first = SheetSubject {
                    exam: self.plan.exam,
                    school: school.code,
                    participant: p.id,
                    attempt: Attempt::new(first_attempt(self.sabotage, self.plan.exam, p))?,
                };
                let retake = self.observed.acts_made.contains(&first);
                let attempt = Attempt::new(first.attempt.get() + u8::from(retake))?;
                let variant = Variant::new(1 + u16::try_from(i % 4)? + u16::from(retake))?;
                writes.push(
                    protocol,
                    Write::Time {
                        participant: p.id,
                        attempt,
                        interviewer,
                        at,
                        variant: (!end).then_some(variant),
                    },
                );
            }
            Entry::Act(i) => {
                let p = &school.participants[i];
                let organiser = organiser_of(school)?;
                let act = giasync_shared::act::Act {
                    exam: self.plan.exam,
                    school: school.code,
                    participant: p.id,
                    attempt: Attempt::new(first_attempt(self.sabotage, self.plan.exam, p))?,
                    room: school.rooms[p.room],
                    kind: giasync_shared::act::ActKind::Early(
                        giasync_shared::act::EarlyReason::BadRecording,
                    ),
                    text: String::new(),
                    number: giasync_shared::room::ActNumber::new(&format!("R-{}", i + 1))?,
                    organiser,
                    at,
                };
                let signed = act.sign(&derived_key(self.plan.seed, organiser.as_str()))?;
                let cert = self
                    .people
                    .certs
                    .get(&organiser)
                    .ok_or("the organiser has no certificate")?;
                writes.push(
                    protocol,
                    Write::Act {
                        subject: act.subject(),
                        signed,
                        organiser,
                        cert: cert.clone(),
                    },
                );
            }
            // Taken in by `make_recording`.
            Entry::Recording { .. } | Entry::RoomStream { .. } => {}
            Entry::Sheet {
                participant,
                expert,
                variant,
                kind,
            } => {
                let p = &school.participants[participant];
                let expert_id = if kind == SheetKind::ByRevokedExpert {
                    school.revoked_expert
                } else {
                    school.experts[expert]
                };
                let category = self.rules.category(p.category)?;
                let points = category
                    .criteria(&self.rules)
                    .enumerate()
                    .map(|(k, c)| {
                        let max = i64::from(c.max);
                        let base = (participant + k) as i64 % (max + 1);
                        (c.id, (base + i64::from(variant)) % (max + 1))
                    })
                    .collect();
                let latest = &self.latest_sheet[s];
                let replacing_latest = || Correction {
                    supersedes: latest.get(&participant).copied().into_iter().collect(),
                    reason: "ошибка при вводе баллов".into(),
                };
                let correction = match kind {
                    // Sabotage: the correction forgets to name what it replaces.
                    SheetKind::Correction if self.sabotage == Sabotage::CorrectionAsConflict => {
                        None
                    }
                    SheetKind::Correction => Some(replacing_latest()),
                    // Sabotage: the conflicting sheet replaces the first.
                    SheetKind::Conflicting
                        if self.sabotage == Sabotage::ConflictAsCorrection
                            && latest.contains_key(&participant) =>
                    {
                        Some(replacing_latest())
                    }
                    SheetKind::First
                    | SheetKind::Conflicting
                    | SheetKind::Tampered
                    | SheetKind::ByRevokedExpert
                    | SheetKind::OtherCategory
                    | SheetKind::AfterAct
                    | SheetKind::OutsideRoom
                    | SheetKind::OtherAttempt => None,
                };
                let subject = SheetSubject {
                    exam: self.plan.exam,
                    school: school.code,
                    participant: p.id,
                    attempt: Attempt::new(
                        first_attempt(self.sabotage, self.plan.exam, p) + u8::from(p.retake),
                    )?,
                };
                let draft = SheetDraft {
                    subject,
                    room: school.rooms[p.room],
                    category: p.category,
                    points,
                    expert: expert_id,
                    signed_at: at,
                    correction,
                };
                let key = self
                    .people
                    .expert_keys
                    .get(&expert_id)
                    .ok_or("the expert has no key")?;
                let mut sheet = SignedSheet::sign(draft, &self.rules, key)?;
                if kind == SheetKind::Tampered {
                    // One bit of the signature (the record's last bytes) flipped after signing.
                    let mut bytes = sheet.as_bytes().to_vec();
                    if let Some(last) = bytes.last_mut() {
                        *last ^= 1;
                    }
                    sheet = SignedSheet::from_bytes(bytes)?;
                }
                let cert = self
                    .people
                    .certs
                    .get(&expert_id)
                    .ok_or("the expert has no certificate")?;
                let entered = EnteredSheet {
                    school: s,
                    hash: sheet.hash(),
                    subject,
                    at_ms: self.now_ms,
                };
                writes.push(
                    protocol,
                    Write::Sheet {
                        sheet,
                        expert: expert_id,
                        cert: cert.clone(),
                    },
                );
                return Ok((
                    writes,
                    Made::Sheet {
                        participant,
                        entered,
                        kind,
                    },
                ));
            }
        }
        Ok((writes, Made::Other))
    }

    /// The head's signed commission order for `school`, made with its roster at `at`.
    fn commission_write(
        &self,
        school: &crate::plan::SchoolPlan,
        at: Timestamp,
    ) -> Result<Write, Box<dyn std::error::Error>> {
        let head = head_of(school)?;
        let order = giasync_shared::commission::Commission {
            exam: self.plan.exam,
            school: school.code,
            edition: 1,
            head,
            at,
            rooms: school.commission(),
        };
        // Sabotage: a key nobody certified, so the order verifies nowhere.
        let salt = if self.sabotage == Sabotage::UncertifiedHeads {
            "uncertified "
        } else {
            ""
        };
        let signed = order.sign(&derived_key(self.plan.seed, &format!("{salt}{head}")))?;
        let cert = self
            .people
            .certs
            .get(&head)
            .ok_or("the head has no certificate")?;
        Ok(Write::Commission {
            signed,
            head,
            cert: cert.clone(),
        })
    }

    /// Notes what entry `writes`, applied, made: the acts.
    fn made(&mut self, writes: &Writes) {
        for (_, write) in &writes.changes {
            if let Write::Act { subject, .. } = write {
                self.observed.acts_made.insert(*subject);
            }
        }
    }

    // ---- adversaries ---------------------------------------------------------------------

    /// A hostile node sends a change it may not make, under its own key and with its own valid
    /// attestation, on its live connection (none: no attempt).
    fn attack(&mut self, i: usize) {
        let attack = self.plan.attacks[i];
        let node = attack.node;
        if matches!(
            attack.kind,
            AdversaryKind::CategoryChange
                | AdversaryKind::SheetAfterAct
                | AdversaryKind::ExpertOutsideRoom
                | AdversaryKind::WrongAttempt
        ) {
            self.write_wrongly(node, attack.kind);
            return;
        }
        // Sent upstream: a hub's forgery to the РЦОИ (which judges it), a school's to the hub
        // or РЦОИ it is connected to; on a connection whose frames still flow.
        let wanted = |other: usize| match attack.kind {
            AdversaryKind::HubForgery => other == 0,
            AdversaryKind::CategoryChange
            | AdversaryKind::SheetAfterAct
            | AdversaryKind::ExpertOutsideRoom
            | AdversaryKind::WrongAttempt => false,
            AdversaryKind::ForeignWrite
            | AdversaryKind::ForgedReceipt
            | AdversaryKind::Replay
            | AdversaryKind::FragmentFlood => self.nodes[node].upstreams.contains(&other),
        };
        let Some(c) = self.nodes[node].peers.values().copied().find(|&c| {
            let conn = &self.conns[c];
            let other = conn.ends[usize::from(conn.ends[0] == node)];
            conn.alive && wanted(other)
        }) else {
            return;
        };
        let end = usize::from(self.conns[c].ends[1] == node);
        match attack.kind {
            AdversaryKind::Replay => {
                if let Some(frame) = self.nodes[node].first_sync_sent.clone() {
                    self.observed.tally(attack.kind).made += 1;
                    self.send(c, end, frame);
                }
                return;
            }
            AdversaryKind::FragmentFlood => {
                self.observed.tally(attack.kind).made += 1;
                self.observed.flooded.insert(c);
                let opened = u32::try_from(PEER_FRAGMENTED_FRAMES_MAX).unwrap_or(u32::MAX);
                for id in 0..=opened {
                    let fragment = Frame::Fragment {
                        id: u32::MAX - id,
                        index: 0,
                        total: 2,
                        bytes: vec![0; 16],
                    };
                    self.send(c, end, fragment.encode());
                }
                return;
            }
            AdversaryKind::ForeignWrite
            | AdversaryKind::ForgedReceipt
            | AdversaryKind::HubForgery
            | AdversaryKind::CategoryChange
            | AdversaryKind::SheetAfterAct
            | AdversaryKind::ExpertOutsideRoom
            | AdversaryKind::WrongAttempt => {}
        }
        let Some((doc, base, key, value)) = self.target_of(attack) else {
            return;
        };
        let n = &self.nodes[node];
        let mut forged = base;
        forged.set_actor(actor_for(&n.key.verifying_key().to_bytes()));
        let mut tx = forged.transaction();
        if automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, key, value).is_err()
        {
            return;
        }
        tx.commit();
        let Some(change) = forged.get_last_local_change() else {
            return;
        };
        let message = automerge::sync::Message {
            heads: forged.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![change.raw_bytes().to_vec()].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        }
        .encode();
        let at_ms = self.plan.midnight_ms + self.now_ms;
        let attestation = Attestation::sign(doc, forged.get_heads(), at_ms, &n.key);
        let frame = Frame::Sync {
            doc,
            message,
            attestations: vec![(n.cert.clone(), attestation.as_bytes().to_vec())],
        }
        .encode();
        self.observed.tally(attack.kind).made += 1;
        self.observed
            .attacked
            .insert((n.identity.to_uri(), doc), attack.kind);
        self.send(c, end, frame);
    }

    /// A hostile school (`node`) writes what it may write but must not count: a sheet by a
    /// category it gave its participant ([`Region::sign_by_another_category`]) or for an
    /// attempt its organiser ended with an act ([`Region::sign_after_act`]).
    fn write_wrongly(&mut self, node: usize, kind: AdversaryKind) {
        let Some(s) = self.school_of(node) else {
            return;
        };
        if !self.nodes[node].up() {
            return;
        }
        // An expert outside the order needs an order: none is written before the roster.
        if kind == AdversaryKind::ExpertOutsideRoom
            && self.nodes[node]
                .engine
                .as_ref()
                .and_then(|e| e.doc(&self.protocol_of(s)))
                .is_none_or(|d| content::commissions(d).is_empty())
        {
            return;
        }
        let (written, sheet_kind) = match kind {
            AdversaryKind::SheetAfterAct => (self.sign_after_act(s), SheetKind::AfterAct),
            AdversaryKind::ExpertOutsideRoom => (self.sign_outside_room(s), SheetKind::OutsideRoom),
            AdversaryKind::WrongAttempt => (self.sign_other_attempt(s), SheetKind::OtherAttempt),
            _ => (self.sign_by_another_category(s), SheetKind::OtherCategory),
        };
        match written {
            // Not a sheet staff entered: an armed in-commit crash waits for one of those.
            Ok(entered) if self.commit(node, false) => {
                if sheet_kind == SheetKind::AfterAct {
                    self.observed.acts_made.insert(entered.subject);
                }
                self.observed.invalid_sheets.push((entered, sheet_kind));
            }
            Ok(_) => {}
            Err(e) => self
                .observed
                .entry_errors
                .push(format!("the {kind:?} at school {s}: {e}")),
        }
    }

    /// The writes of [`AdversaryKind::SheetAfterAct`]: the organiser's act ending the last
    /// participant's first attempt (a bad recording; the plan has that participant absent, so no
    /// honest sheet meets the act), then the expert's sheet for that attempt. The attempt after it would
    /// be refused whatever the act, as no act opened it (`giasync_shared::retake`).
    fn sign_after_act(&mut self, s: usize) -> Result<EnteredSheet, Box<dyn std::error::Error>> {
        use giasync_shared::act::{Act, ActKind, EarlyReason};
        let now = self.now_ms;
        let at = Timestamp::from_unix_ms(self.plan.midnight_ms + now)?;
        let protocol = self.doc(s, DocKind::Protocol);
        let school = &self.plan.schools[s];
        let p = school
            .participants
            .last()
            .ok_or("the school has no participants")?;
        let organiser = organiser_of(school)?;
        let subject = SheetSubject {
            exam: self.plan.exam,
            school: school.code,
            participant: p.id,
            attempt: Attempt::new(first_attempt(self.sabotage, self.plan.exam, p))?,
        };
        let act = Act {
            exam: subject.exam,
            school: subject.school,
            participant: subject.participant,
            attempt: subject.attempt,
            room: school.rooms[p.room],
            kind: ActKind::Early(EarlyReason::BadRecording),
            text: String::new(),
            number: giasync_shared::room::ActNumber::new("A-1")?,
            organiser,
            at,
        };
        // Sabotage: a key nobody certified, so the act verifies nowhere.
        let salt = if self.sabotage == Sabotage::UncertifiedOrganisers {
            "uncertified "
        } else {
            ""
        };
        let organiser_key = derived_key(self.plan.seed, &format!("{salt}{organiser}"));
        let signed_act = act.sign(&organiser_key)?;
        let expert = *school.experts.first().ok_or("the school has no expert")?;
        let (sheet, cert) =
            self.sign_hostile_sheet(s, school.participants.len() - 1, expert, None)?;
        let school = &self.plan.schools[s];
        let organiser_cert = self
            .people
            .certs
            .get(&organiser)
            .ok_or("the organiser has no certificate")?;
        let engine = self.nodes[school.node]
            .engine
            .as_mut()
            .ok_or("the node is down")?;
        engine.change(now, protocol, |tx| {
            content::put_act(
                tx,
                subject.participant,
                subject.attempt,
                &signed_act,
                organiser,
                organiser_cert,
            )?;
            content::put_sheet(tx, &sheet, expert, &cert)
        })?;
        Ok(EnteredSheet {
            school: s,
            hash: sheet.hash(),
            subject,
            at_ms: now,
        })
    }

    /// The writes of [`AdversaryKind::ExpertOutsideRoom`]: a sheet for the first participant, in
    /// their room and by their category of record, by the school's expert whom the commission
    /// order names for no room.
    fn sign_outside_room(&mut self, s: usize) -> Result<EnteredSheet, Box<dyn std::error::Error>> {
        let expert = self.plan.schools[s].unassigned_expert;
        let (sheet, cert) = self.sign_hostile_sheet(s, 0, expert, None)?;
        self.store_hostile_sheet(s, &sheet, expert, &cert)
    }

    /// The writes of [`AdversaryKind::WrongAttempt`]: a sheet for the school's second
    /// participant (the first and last are other adversaries'), by their room's expert and
    /// category of record, for the attempt after the last their plan gives on the date, which
    /// no act opened.
    fn sign_other_attempt(&mut self, s: usize) -> Result<EnteredSheet, Box<dyn std::error::Error>> {
        let school = &self.plan.schools[s];
        let p = usize::from(school.participants.len() > 2);
        let participant = school.participants.get(p).ok_or("no such participant")?;
        let expert = *school
            .experts
            .get(participant.room)
            .ok_or("the room has no expert")?;
        let attempt = participant.first_attempt + u8::from(participant.retake) + 1;
        let (sheet, cert) = self.sign_hostile_sheet_for(s, p, expert, None, attempt)?;
        self.store_hostile_sheet(s, &sheet, expert, &cert)
    }

    /// Stores a hostile school's `sheet` by `expert` in its protocol, as its node would.
    fn store_hostile_sheet(
        &mut self,
        s: usize,
        sheet: &SignedSheet,
        expert: PersonId,
        cert: &[u8],
    ) -> Result<EnteredSheet, Box<dyn std::error::Error>> {
        let now = self.now_ms;
        let protocol = self.doc(s, DocKind::Protocol);
        let subject = sheet.decode_unverified()?.subject;
        let engine = self.nodes[self.plan.schools[s].node]
            .engine
            .as_mut()
            .ok_or("the node is down")?;
        engine.change(now, protocol, |tx| {
            content::put_sheet(tx, sheet, expert, cert)
        })?;
        Ok(EnteredSheet {
            school: s,
            hash: sheet.hash(),
            subject,
            at_ms: now,
        })
    }

    /// A sheet by `expert` for participant `p` of school `s`, their first attempt of the date, signed now: by the
    /// participant's category of record with every criterion at its maximum, or by `scored`
    /// (another category and its points); with the expert's certificate. What hostile
    /// schools hand in.
    fn sign_hostile_sheet(
        &self,
        s: usize,
        p: usize,
        expert: PersonId,
        scored: Option<(giasync_shared::participant::Category, &str)>,
    ) -> Result<(SignedSheet, Vec<u8>), Box<dyn std::error::Error>> {
        let participant = self.plan.schools[s]
            .participants
            .get(p)
            .ok_or("no such participant")?;
        let attempt = first_attempt(self.sabotage, self.plan.exam, participant);
        self.sign_hostile_sheet_for(s, p, expert, scored, attempt)
    }

    /// [`Region::sign_hostile_sheet`] for `attempt`.
    fn sign_hostile_sheet_for(
        &self,
        s: usize,
        p: usize,
        expert: PersonId,
        scored: Option<(giasync_shared::participant::Category, &str)>,
        attempt: u8,
    ) -> Result<(SignedSheet, Vec<u8>), Box<dyn std::error::Error>> {
        let school = &self.plan.schools[s];
        let participant = school.participants.get(p).ok_or("no such participant")?;
        let (category, points) = match scored {
            Some((category, points)) => (category, giasync_shared::rules::parse_points(points)?),
            None => (
                participant.category,
                self.rules
                    .category(participant.category)?
                    .criteria(&self.rules)
                    .map(|c| (c.id, i64::from(c.max)))
                    .collect(),
            ),
        };
        let draft = SheetDraft {
            subject: SheetSubject {
                exam: self.plan.exam,
                school: school.code,
                participant: participant.id,
                attempt: Attempt::new(attempt)?,
            },
            room: school.rooms[participant.room],
            category,
            points,
            expert,
            signed_at: Timestamp::from_unix_ms(self.plan.midnight_ms + self.now_ms)?,
            correction: None,
        };
        let key = self
            .people
            .expert_keys
            .get(&expert)
            .ok_or("the expert has no key")?;
        let cert = self
            .people
            .certs
            .get(&expert)
            .ok_or("the expert has no certificate")?;
        Ok((SignedSheet::sign(draft, &self.rules, key)?, cert.clone()))
    }

    /// The writes of [`Region::change_category`]: the roster's category and a sheet by it.
    fn sign_by_another_category(
        &mut self,
        s: usize,
    ) -> Result<EnteredSheet, Box<dyn std::error::Error>> {
        let now = self.now_ms;
        let roster = self.doc(s, DocKind::Roster);
        let protocol = self.doc(s, DocKind::Protocol);
        let school = &self.plan.schools[s];
        let p = school
            .participants
            .first()
            .ok_or("the school has no participants")?;
        let (category, points) = if p.category == giasync_shared::participant::Category::Autism {
            (
                giasync_shared::participant::Category::Standard,
                "Ч1=1,Ч2=1,Ч3=1,П1=2,П2=1,П3=1,М1=2,М2=1,Д1=0,Р1=0,Р2=0,Р3=0,Р4=0,Р5=0",
            )
        } else {
            (
                giasync_shared::participant::Category::Autism,
                "Ч1=1,М1=2,М2=0,Д1=0",
            )
        };
        let expert = *school.experts.first().ok_or("the school has no expert")?;
        let participant = p.id;
        let (sheet, cert) = self.sign_hostile_sheet(s, 0, expert, Some((category, points)))?;
        let subject = sheet.decode_unverified()?.subject;
        let school = &self.plan.schools[s];
        let engine = self.nodes[school.node]
            .engine
            .as_mut()
            .ok_or("the node is down")?;
        engine.change(now, roster, |tx| {
            automerge::transaction::Transactable::put(
                tx,
                automerge::ROOT,
                format!("p/{participant}/category"),
                category.id(),
            )
        })?;
        engine.change(now, protocol, |tx| {
            content::put_sheet(tx, &sheet, expert, &cert)
        })?;
        Ok(EnteredSheet {
            school: s,
            hash: sheet.hash(),
            subject,
            at_ms: now,
        })
    }

    /// What `attack` writes into: the document, what the attacker starts from, key and value.
    fn target_of(&self, attack: Attack) -> Option<(DocId, automerge::Automerge, String, String)> {
        let own = self.school_of(attack.node);
        let engine = self.nodes[attack.node].engine.as_ref()?;
        match attack.kind {
            AdversaryKind::ForeignWrite => {
                let own = own?;
                let other = (0..self.plan.schools.len()).find(|&s| {
                    s != own
                        && self.plan.schools[s].municipality == self.plan.schools[own].municipality
                })?;
                let doc = self.doc(other, DocKind::Roster);
                Some((
                    doc,
                    automerge::Automerge::new(),
                    "forged".into(),
                    "by another school".into(),
                ))
            }
            AdversaryKind::ForgedReceipt => {
                let own = own?;
                let doc = self.doc(own, DocKind::Rcoi);
                let base = engine.doc(&doc).cloned().unwrap_or_default();
                // A sheet of its own that must not count (vouching for it is the point of the
                // forgery), else one the РЦОИ has not receipted yet, else one made up; never
                // one receipted verified: `verified` put over `verified` is no change at all
                // in automerge, and the attempt would never be made.
                let receipted = content::receipts(&base);
                let invalid = self
                    .observed
                    .invalid_sheets
                    .iter()
                    .filter(|(e, _)| e.school == own);
                let hash = invalid
                    .map(|(e, _)| e.hash.to_string())
                    .chain(self.latest_sheet[own].values().map(ToString::to_string))
                    .find(|h| {
                        receipted
                            .get(h)
                            .is_none_or(|r| r != ingest::RECEIPT_VERIFIED)
                    })
                    .unwrap_or_else(|| {
                        let made_up = format!("forged by {} at {}", attack.node, self.now_ms);
                        RecordHash::of(made_up.as_bytes()).to_string()
                    });
                Some((
                    doc,
                    base,
                    format!("receipt/{hash}"),
                    ingest::RECEIPT_VERIFIED.into(),
                ))
            }
            AdversaryKind::HubForgery => {
                let identity = self.nodes[attack.node].identity;
                let school = (0..self.plan.schools.len()).find(|&s| {
                    authority::holds(&identity, &self.protocol_of(s))
                        && engine.doc(&self.protocol_of(s)).is_some()
                })?;
                let doc = self.protocol_of(school);
                let base = engine.doc(&doc)?.clone();
                Some((doc, base, "forged".into(), "by the МОУО".into()))
            }
            // Not forgeries: sent as they are by `attack`, or written by the school's own
            // engine (`change_category`).
            AdversaryKind::Replay
            | AdversaryKind::FragmentFlood
            | AdversaryKind::CategoryChange
            | AdversaryKind::SheetAfterAct
            | AdversaryKind::ExpertOutsideRoom
            | AdversaryKind::WrongAttempt => None,
        }
    }

    // ---- the end -----------------------------------------------------------------------

    /// What the sabotage does once the day is over (see [`Sabotage`]).
    pub fn after_the_day(&mut self) {
        match self.sabotage {
            Sabotage::TamperedStore => self.tamper_store(),
            Sabotage::ForeignRoster => self.give_foreign_roster(),
            Sabotage::InvalidReceiptedVerified => self.receipt_everything_verified(),
            Sabotage::None
            | Sabotage::StalledSchool
            | Sabotage::CorrectionAsConflict
            | Sabotage::ConflictAsCorrection
            | Sabotage::BrokenEntry
            | Sabotage::AckBeforeDurable
            | Sabotage::ApproveEveryRequest
            | Sabotage::UncertifiedOrganisers
            | Sabotage::UncertifiedHeads
            | Sabotage::LostRecording
            | Sabotage::SpoiledPieces
            | Sabotage::AttemptsByDate
            | Sabotage::MaterialsWithheld => {}
        }
    }

    /// The first МОУО restarts from a store holding a change of its own to a school's protocol.
    fn tamper_store(&mut self) {
        let Some(moyo) = (0..self.nodes.len()).find(|&i| self.nodes[i].kind == Kind::Moyo) else {
            return;
        };
        let Some(school) = (0..self.plan.schools.len())
            .find(|&s| authority::holds(&self.nodes[moyo].identity, &self.protocol_of(s)))
        else {
            return;
        };
        let doc = self.protocol_of(school);
        self.stop_node(moyo);
        let actor = actor_for(&self.nodes[moyo].key.verifying_key().to_bytes());
        if let Some(stored) = self.nodes[moyo].store.docs.get_mut(&doc)
            && let Ok(mut am) = automerge::Automerge::load(&stored.changes)
        {
            am.set_actor(actor);
            let mut tx = am.transaction();
            let forged = automerge::transaction::Transactable::put(
                &mut tx,
                automerge::ROOT,
                "forged",
                "by the МОУО",
            );
            if forged.is_ok() {
                tx.commit();
                stored.changes = am.save();
            }
        }
        self.start_node(moyo);
    }

    /// The first school's node loads the second school's roster, as the РЦОИ holds it.
    fn give_foreign_roster(&mut self) {
        if self.plan.schools.len() < 2 {
            return;
        }
        let roster = self.doc(1, DocKind::Roster);
        let saved = self.rcoi().and_then(|e| e.doc(&roster)).map(|d| d.save());
        let node = self.plan.schools[0].node;
        if let (Some(bytes), Some(engine)) = (saved, self.nodes[node].engine.as_mut()) {
            let _ = engine.load_doc(roster, &bytes, &[]);
        }
    }

    /// The РЦОИ writes `verified` for every sheet of every protocol it holds.
    fn receipt_everything_verified(&mut self) {
        let now = self.now_ms;
        for s in 0..self.plan.schools.len() {
            let protocol = self.protocol_of(s);
            let Some(vouched) = ingest::receipts_of(protocol) else {
                continue;
            };
            let Some(engine) = self.nodes.first_mut().and_then(|n| n.engine.as_mut()) else {
                return;
            };
            let hashes: Vec<RecordHash> = engine
                .doc(&protocol)
                .map(|d| content::sheets(d).iter().map(SignedSheet::hash).collect())
                .unwrap_or_default();
            let _ = engine.change(now, vouched, |tx| {
                for hash in &hashes {
                    content::put_receipt(tx, hash, ingest::RECEIPT_VERIFIED)?;
                }
                Ok(())
            });
        }
    }

    /// Once the scripted day is over: stop when nothing changed for a while and every replica
    /// agrees.
    fn check(&mut self) -> bool {
        let quiet_since = self.now_ms - self.observed.last_progress_ms;
        // Staff may still have entries to make (a school back from a fault at the last minute
        // catches up at once): the day is not over until they are made.
        let entries_done = self
            .cursor
            .iter()
            .zip(&self.plan.schools)
            .all(|(cursor, school)| *cursor >= school.entries.len());
        if quiet_since >= CONVERGENCE_CHECK_MS && entries_done && self.converged().is_ok() {
            self.observed.converged_at_ms = Some(self.observed.last_progress_ms);
            // With recordings, the day is not over until the РЦОИ holds them all.
            if self.recordings_pending() == 0 {
                return true;
            }
        } else {
            // Converged once, then changed again (a recording's receipt): not converged yet.
            self.observed.converged_at_ms = None;
        }
        self.schedule(self.now_ms + CONVERGENCE_CHECK_MS, Event::Check);
        false
    }

    /// The nodes that should hold `doc` by the design's table ([`authority::holds`]): a
    /// school's documents at the school, its МОУО and the РЦОИ.
    fn holders(&self, doc: &DocId) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| authority::holds(&self.nodes[i].identity, doc))
            .collect()
    }

    /// Ok when every document is held at the same heads by every node that should hold it;
    /// otherwise the first that is not.
    pub fn converged(&self) -> Result<(), String> {
        let mut docs = BTreeSet::new();
        for n in &self.nodes {
            if let Some(e) = &n.engine {
                docs.extend(e.doc_ids().copied());
            }
        }
        for doc in &docs {
            let mut heads = None;
            for i in self.holders(doc) {
                let h = self.nodes[i]
                    .engine
                    .as_ref()
                    .and_then(|e| e.doc(doc))
                    .map(|d| {
                        let mut h = d.get_heads();
                        h.sort();
                        h
                    });
                let Some(h) = h else {
                    return Err(format!("{} does not hold {doc}", self.nodes[i].identity));
                };
                match &heads {
                    None => heads = Some(h),
                    Some(first) if *first != h => {
                        return Err(format!("{doc} differs at {}", self.nodes[i].identity));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Who wrote the changes held anywhere, judged by the design's table
    /// ([`authority::may_write`]), not by the engine's rule: one walk over every change's
    /// author at every node up.
    #[must_use]
    pub fn authorship(&self) -> Authorship {
        let hostile: Vec<NodeIdentity> = self
            .plan
            .attacks
            .iter()
            .map(|a| self.plan.nodes[a.node].identity)
            .collect();
        let mut found = Authorship::default();
        for n in &self.nodes {
            let Some(engine) = &n.engine else { continue };
            for doc in engine.doc_ids() {
                let Some(am) = engine.doc(doc) else { continue };
                // The changes' metadata only: their actors, without building each change.
                for change in am.get_changes_meta(&[]) {
                    let author = self.actors.get(change.actor.to_bytes());
                    if author.is_some_and(|a| authority::may_write(a, doc)) {
                        continue;
                    }
                    found.unauthorised += 1;
                    if let Some(a) = author.filter(|a| hostile.contains(a)) {
                        found.by_hostile += 1;
                        if let Some(kind) = self.forgery_kind(a, doc) {
                            *found.by_hostile_kind.entry(kind).or_default() += 1;
                        }
                    }
                    if found.examples.len() < 5 {
                        found.examples.push(format!(
                            "{} holds a change to {doc} by {}",
                            n.identity,
                            author.map_or("an unknown actor".to_owned(), ToString::to_string)
                        ));
                    }
                }
            }
        }
        found
    }

    /// The kind of forgery `author` sent into `doc`, or else the first forgery the plan gives
    /// that node (a change of a hostile node held where it sent none).
    fn forgery_kind(&self, author: &NodeIdentity, doc: &DocId) -> Option<AdversaryKind> {
        let sent = self
            .observed
            .attacked
            .get(&(author.to_uri(), *doc))
            .copied();
        sent.or_else(|| {
            self.plan
                .attacks
                .iter()
                .find(|a| {
                    self.plan.nodes[a.node].identity == *author
                        && matches!(
                            a.kind,
                            AdversaryKind::ForeignWrite
                                | AdversaryKind::ForgedReceipt
                                | AdversaryKind::HubForgery
                        )
                })
                .map(|a| a.kind)
        })
    }

    /// Documents of other schools held or ever persisted at schools (by the design's table).
    pub fn foreign_data_at_schools(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.kind == Kind::School)
            .map(|n| {
                let held = n.engine.as_ref().map_or(0, |e| {
                    e.doc_ids()
                        .filter(|d| !authority::holds(&n.identity, d))
                        .count() as u64
                });
                held + n.foreign_docs
            })
            .sum()
    }

    /// The РЦОИ's engine (None if it is down at the end).
    #[must_use]
    pub fn rcoi(&self) -> Option<&Engine> {
        self.nodes.first().and_then(|n| n.engine.as_ref())
    }

    #[must_use]
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    #[must_use]
    pub fn directory(&self) -> &FixedDirectory {
        &self.people.directory
    }

    /// The CA that vouches for the simulated nodes' certificates.
    #[must_use]
    pub fn ca(&self) -> &FixedCa {
        &self.ca
    }

    #[must_use]
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    #[must_use]
    pub fn quarantined(&self) -> u64 {
        self.nodes.iter().map(|n| n.quarantined).sum()
    }

    /// The protocol document of school `s`.
    #[must_use]
    pub fn protocol_of(&self, s: usize) -> DocId {
        self.doc(s, DocKind::Protocol)
    }
}

/// Sabotage: the РЦОИ approves whatever category a school scores by: before receipting a
/// protocol it sets each new sheet's participant's category of record to the sheet's.
fn approve_every_request(engine: &mut Engine, protocol: DocId, now_ms: i64) {
    let Some(register) = protocol.sibling(DocKind::Rcoi) else {
        return;
    };
    let Some(doc) = engine.doc(&protocol) else {
        return;
    };
    let asked: Vec<(
        giasync_shared::codes::ParticipantId,
        giasync_shared::participant::Category,
    )> = content::sheets_not_receipted(doc, engine.doc(&register))
        .iter()
        .filter_map(|s| s.decode_unverified().ok())
        .map(|s| (s.subject.participant, s.category))
        .collect();
    let _ = engine.change(now_ms, register, |tx| {
        asked
            .iter()
            .try_for_each(|(id, category)| content::put_registered_category(tx, *id, *category))
    });
}

/// The head of a school.
fn head_of(school: &crate::plan::SchoolPlan) -> Result<PersonId, giasync_shared::DomainError> {
    PersonId::new(&format!("head-{}", school.code))
}

/// The responsible organiser of a school.
fn organiser_of(school: &crate::plan::SchoolPlan) -> Result<PersonId, giasync_shared::DomainError> {
    PersonId::new(&format!("org-{}", school.code))
}

/// The first attempt a school scores `p` by on `exam`'s date: the plan's (1, or on an additional
/// date from their history), or under [`Sabotage::AttemptsByDate`] the date's old number.
fn first_attempt(
    sabotage: Sabotage,
    exam: giasync_shared::exam::ExamId,
    p: &crate::plan::ParticipantPlan,
) -> u8 {
    if sabotage == Sabotage::AttemptsByDate {
        giasync_shared::retake::attempt_by_date(exam).get()
    } else {
        p.first_attempt
    }
}

/// A school's participants as the region's list has them (every one named alike; documents
/// numbered in the school's order).
fn people_of(
    school: &crate::plan::SchoolPlan,
) -> Result<Vec<Participant>, giasync_shared::DomainError> {
    school
        .participants
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(Participant {
                id: p.id,
                name: FullName::new("Иванова", "Анна", "Сергеевна")?,
                document: IdentityDocument::new("3204", &format!("{:06}", i + 1))?,
                class: SchoolClass::new("9А")?,
                category: p.category,
            })
        })
        .collect()
}
