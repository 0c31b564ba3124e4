//! Two or three nodes' transfers joined by a test driver that moves frames and keeps blobs in
//! memory. The expectations are written out (bytes, counts of pieces), not asked of the machine.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;

use super::*;
use crate::blob::{PIECE_BYTES, encode_piece, outboard};
use crate::test_ids::{moyo, rcoi, school};

fn protocol(municipality: &str, code: &str) -> DocId {
    format!("protocol/{municipality}/{code}/is-2024-02-14")
        .parse()
        .unwrap()
}

/// A blob's bytes and outboard, as a node holds them.
#[derive(Clone)]
struct Held {
    data: Vec<u8>,
    outboard: Vec<u8>,
}

fn recording(len: usize, seed: u8) -> (BlobRef, Held) {
    let data: Vec<u8> = (0..len)
        .map(|i| u8::try_from((i * 13 + usize::from(seed)) % 256).unwrap())
        .collect();
    let mut ob = Vec::new();
    let blob = outboard(&data[..], len as u64, &mut ob).unwrap();
    (blob, Held { data, outboard: ob })
}

/// One node: its transfers, the blobs it holds whole, the pieces it stored.
struct Node {
    identity: NodeIdentity,
    t: Transfers,
    held: BTreeMap<BlobHash, Held>,
    stored: BTreeMap<(BlobHash, u32), Vec<u8>>,
    completed: Vec<BlobRef>,
    refused: Vec<String>,
}

impl Node {
    fn new(identity: NodeIdentity) -> Self {
        Self {
            identity,
            t: Transfers::new(),
            held: BTreeMap::new(),
            stored: BTreeMap::new(),
            completed: Vec::new(),
            refused: Vec::new(),
        }
    }
}

/// Nodes joined by links (peer ids: `1000 * from + to`), a clock, and a way to spoil pieces.
struct Net {
    nodes: Vec<Node>,
    links: Vec<(usize, usize)>,
    now: i64,
    /// Pieces flipped on the wire: (blob, index) spoiled once.
    spoil: Vec<(BlobHash, u32)>,
    /// Pieces asked, by (node asked, blob, index).
    asked: Vec<(usize, BlobHash, u32)>,
    queue: Vec<(usize, PeerId, Vec<u8>)>,
}

fn peer_id(from: usize, to: usize) -> PeerId {
    (1000 * from + to) as PeerId
}

impl Net {
    fn new(identities: &[NodeIdentity]) -> Self {
        Self {
            nodes: identities.iter().map(|i| Node::new(*i)).collect(),
            links: Vec::new(),
            now: 0,
            spoil: Vec::new(),
            asked: Vec::new(),
            queue: Vec::new(),
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        self.links.push((a, b));
        let (ia, ib) = (self.nodes[a].identity, self.nodes[b].identity);
        self.nodes[a].t.connected(self.now, peer_id(a, b), ib);
        self.nodes[b].t.connected(self.now, peer_id(b, a), ia);
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        self.links.retain(|l| *l != (a, b) && *l != (b, a));
        self.queue.retain(|(to, from, _)| {
            !((*to == b && *from == peer_id(b, a)) || (*to == a && *from == peer_id(a, b)))
        });
        self.nodes[a].t.disconnected(self.now, peer_id(a, b));
        self.nodes[b].t.disconnected(self.now, peer_id(b, a));
    }

    fn add(&mut self, node: usize, blob: BlobRef, held: Held, doc: DocId) {
        self.nodes[node].held.insert(blob.hash, held);
        self.nodes[node].t.named(self.now, blob, doc);
        self.nodes[node].t.hold(self.now, blob);
    }

    /// Runs the outputs of every node, moving frames, until nothing moves or `budget` frames
    /// were delivered.
    fn run(&mut self, mut budget: usize) {
        loop {
            for n in 0..self.nodes.len() {
                while let Some(out) = self.nodes[n].t.poll_output() {
                    self.handle(n, out);
                }
            }
            if self.queue.is_empty() || budget == 0 {
                return;
            }
            let (to, from, bytes) = self.queue.remove(0);
            budget -= 1;
            self.nodes[to].t.received(self.now, from, &bytes);
        }
    }

    fn send(&mut self, n: usize, peer: PeerId, frame: &BlobFrame) {
        let to = (peer as usize) % 1000;
        if let BlobFrame::Want { blob, pieces } = frame {
            for &i in pieces {
                self.asked.push((to, blob.hash, i));
            }
        }
        self.queue.push((to, peer_id(to, n), frame.encode()));
    }

    fn handle(&mut self, n: usize, out: BlobOutput) {
        match out {
            BlobOutput::Send { peer, frame } => self.send(n, peer, &frame),
            BlobOutput::Serve { peer, blob, index } => {
                let held = self.nodes[n].held[&blob.hash].clone();
                let mut encoded =
                    encode_piece(blob, &held.data[..], &held.outboard[..], index).unwrap();
                if let Some(at) = self.spoil.iter().position(|s| *s == (blob.hash, index)) {
                    self.spoil.remove(at);
                    let last = encoded.len() - 1;
                    encoded[last] ^= 0xff;
                }
                let frame = BlobFrame::Piece {
                    hash: blob.hash,
                    index,
                    encoded,
                };
                self.send(n, peer, &frame);
            }
            BlobOutput::Store { blob, index, piece } => {
                self.nodes[n].stored.insert((blob.hash, index), piece.bytes);
            }
            BlobOutput::Complete { blob } => {
                let node = &mut self.nodes[n];
                let data: Vec<u8> = (0..blob.pieces())
                    .flat_map(|i| node.stored[&(blob.hash, i)].clone())
                    .collect();
                let mut ob = Vec::new();
                let again = outboard(&data[..], data.len() as u64, &mut ob).unwrap();
                assert_eq!(again, blob, "the stored pieces are not the blob");
                node.held.insert(blob.hash, Held { data, outboard: ob });
                node.completed.push(blob);
                node.t.hold(self.now, blob);
            }
            BlobOutput::Refused { reason, .. } => self.nodes[n].refused.push(reason),
        }
    }

    fn asked_of(&self, node: usize, hash: BlobHash) -> usize {
        self.asked
            .iter()
            .filter(|(n, h, _)| *n == node && *h == hash)
            .count()
    }
}

#[test]
fn a_hub_fetches_a_schools_recording_piece_by_piece() {
    let (school_node, hub) = (0, 1);
    let mut net = Net::new(&[school("4201", "420101"), moyo("4201")]);
    let doc = protocol("4201", "420101");
    let (blob, held) = recording(5 * PIECE_BYTES as usize + 777, 1);
    net.add(school_node, blob, held.clone(), doc);
    net.nodes[hub].t.named(0, blob, doc);
    net.nodes[hub].t.want(0, blob, no_pieces(&blob));
    net.connect(hub, school_node);
    net.run(10_000);
    assert_eq!(net.nodes[hub].completed, vec![blob]);
    assert_eq!(net.nodes[hub].held[&blob.hash].data, held.data);
    assert_eq!(
        net.asked_of(school_node, blob.hash),
        6,
        "each piece asked once"
    );
    assert!(net.nodes[hub].t.holds(&blob.hash));
    assert!(!net.nodes[hub].t.wants(&blob.hash));
    assert_eq!(net.nodes[hub].t.stats().wanted_bytes_left, 0);
}

#[test]
fn a_school_is_never_given_another_schools_recording() {
    let (hub, other) = (0, 1);
    let mut net = Net::new(&[moyo("4201"), school("4201", "420102")]);
    let doc = protocol("4201", "420101");
    let (blob, held) = recording(PIECE_BYTES as usize * 2, 2);
    net.add(hub, blob, held, doc);
    // The other school names the blob in its own document (a school writes its protocol), the
    // hub learns so from that document, and the school asks for it.
    net.nodes[hub].t.named(0, blob, protocol("4201", "420102"));
    net.nodes[other]
        .t
        .named(0, blob, protocol("4201", "420102"));
    net.nodes[other].t.want(0, blob, no_pieces(&blob));
    net.connect(other, hub);
    net.run(1000);
    assert!(net.nodes[other].completed.is_empty());
    assert!(
        net.nodes[other].stored.is_empty(),
        "a piece reached the other school"
    );
    // It asked, was told no, and is not asking again.
    assert_eq!(net.asked_of(hub, blob.hash), 2);
    assert!(net.queue.is_empty());
}

#[test]
fn a_grant_gives_a_reviewing_school_one_recording_until_it_ends() {
    let (rcoi_node, reviewer) = (0, 1);
    let mut net = Net::new(&[rcoi(), school("4202", "420202")]);
    // The participant's school is 420101; its recording and another participant's are at the
    // РЦОИ, named in that school's protocol.
    let (granted, held) = recording(PIECE_BYTES as usize * 2 + 5, 3);
    let (other, other_held) = recording(PIECE_BYTES as usize, 4);
    net.add(rcoi_node, granted, held.clone(), protocol("4201", "420101"));
    net.add(rcoi_node, other, other_held, protocol("4201", "420101"));
    // The grant names the first in the РЦОИ's document for the reviewing school.
    let grant_doc: DocId = "rcoi/4202/420202/is-2024-02-14".parse().unwrap();
    net.nodes[rcoi_node].t.named(0, granted, grant_doc);
    for blob in [granted, other] {
        net.nodes[reviewer].t.named(0, blob, grant_doc);
        net.nodes[reviewer].t.want(0, blob, no_pieces(&blob));
    }
    net.connect(reviewer, rcoi_node);
    net.run(10_000);
    assert_eq!(net.nodes[reviewer].completed, vec![granted]);
    assert_eq!(net.nodes[reviewer].held[&granted.hash].data, held.data);
    assert!(
        !net.nodes[reviewer]
            .stored
            .keys()
            .any(|(h, _)| *h == other.hash),
        "a piece of a recording not granted reached the reviewing school"
    );
    // The grant ends: asked again (a copy lost), the РЦОИ gives nothing.
    net.nodes[rcoi_node].t.unnamed(0, &granted.hash, grant_doc);
    net.disconnect(reviewer, rcoi_node);
    let fresh = school("4202", "420202");
    net.nodes[reviewer] = Node::new(fresh);
    net.nodes[reviewer].t.named(0, granted, grant_doc);
    net.nodes[reviewer].t.want(0, granted, no_pieces(&granted));
    net.connect(reviewer, rcoi_node);
    net.run(10_000);
    assert!(net.nodes[reviewer].completed.is_empty());
    assert!(
        net.nodes[reviewer].stored.is_empty(),
        "a piece reached the reviewing school after the grant ended"
    );
}

#[test]
fn a_spoiled_piece_is_refused_and_fetched_again() {
    let (school_node, hub) = (0, 1);
    let mut net = Net::new(&[school("4201", "420101"), moyo("4201")]);
    let doc = protocol("4201", "420101");
    let (blob, held) = recording(3 * PIECE_BYTES as usize, 3);
    net.add(school_node, blob, held.clone(), doc);
    net.spoil.push((blob.hash, 1));
    net.nodes[hub].t.named(0, blob, doc);
    net.nodes[hub].t.want(0, blob, no_pieces(&blob));
    net.connect(hub, school_node);
    net.run(10_000);
    assert_eq!(
        net.nodes[hub].refused.len(),
        1,
        "{:?}",
        net.nodes[hub].refused
    );
    assert!(net.nodes[hub].refused[0].contains("piece 1"));
    assert_eq!(net.nodes[hub].held[&blob.hash].data, held.data);
    assert_eq!(
        net.asked_of(school_node, blob.hash),
        4,
        "piece 1 asked twice"
    );
}

#[test]
fn after_a_break_only_what_is_missing_is_asked_again() {
    let (school_node, hub) = (0, 1);
    let mut net = Net::new(&[school("4201", "420101"), moyo("4201")]);
    let doc = protocol("4201", "420101");
    let pieces = 40u32;
    let (blob, held) = recording(pieces as usize * PIECE_BYTES as usize, 4);
    net.add(school_node, blob, held.clone(), doc);
    net.nodes[hub].t.named(0, blob, doc);
    net.nodes[hub].t.want(0, blob, no_pieces(&blob));
    net.connect(hub, school_node);
    // Deliver frames until half the pieces are stored, then cut the link.
    while net.nodes[hub].stored.len() < (pieces / 2) as usize {
        net.run(1);
    }
    net.disconnect(hub, school_node);
    let stored_at_cut = net.nodes[hub].stored.len();
    // The hub restarts: a new machine told which pieces its store holds.
    let mut have = no_pieces(&blob);
    for &(_, i) in net.nodes[hub].stored.keys() {
        have[i as usize / 64] |= 1 << (i % 64);
    }
    net.nodes[hub].t = Transfers::new();
    net.nodes[hub].t.named(0, blob, doc);
    net.nodes[hub].t.want(0, blob, have);
    let asked_before = net.asked_of(school_node, blob.hash);
    net.connect(hub, school_node);
    net.run(100_000);
    let asked_after = net.asked_of(school_node, blob.hash) - asked_before;
    assert_eq!(
        asked_after,
        pieces as usize - stored_at_cut,
        "asked again what was stored"
    );
    assert_eq!(net.nodes[hub].held[&blob.hash].data, held.data);
    // What crossed before the cut: the stored pieces plus at most those in flight.
    assert!(asked_before <= stored_at_cut + PIECES_IN_FLIGHT_PER_PEER);
}

#[test]
fn a_relay_that_lacks_a_blob_says_so_and_says_again_once_it_holds_it() {
    let (school_node, relay, rcoi_node) = (0, 1, 2);
    let mut net = Net::new(&[school("4201", "420101"), moyo("4201"), rcoi()]);
    let doc = protocol("4201", "420101");
    let (blob, held) = recording(2 * PIECE_BYTES as usize + 1, 5);
    net.add(school_node, blob, held.clone(), doc);
    for n in [relay, rcoi_node] {
        net.nodes[n].t.named(0, blob, doc);
        net.nodes[n].t.want(0, blob, no_pieces(&blob));
    }
    // The РЦОИ reaches the relay first; the relay does not hold it yet.
    net.connect(rcoi_node, relay);
    net.run(1000);
    assert!(net.nodes[rcoi_node].completed.is_empty());
    // The school reaches its hub; the relay fetches, then tells the РЦОИ, which fetches.
    net.connect(relay, school_node);
    net.run(100_000);
    assert_eq!(net.nodes[relay].completed, vec![blob]);
    assert_eq!(net.nodes[rcoi_node].completed, vec![blob]);
    assert_eq!(net.nodes[rcoi_node].held[&blob.hash].data, held.data);
}

#[test]
fn a_silent_source_is_left_for_another() {
    let (school_node, relay, rcoi_node) = (0, 1, 2);
    let mut net = Net::new(&[school("4201", "420101"), moyo("4201"), rcoi()]);
    let doc = protocol("4201", "420101");
    let (blob, held) = recording(PIECE_BYTES as usize, 6);
    net.add(school_node, blob, held.clone(), doc);
    net.add(relay, blob, held, doc);
    net.nodes[rcoi_node].t.named(0, blob, doc);
    net.nodes[rcoi_node].t.want(0, blob, no_pieces(&blob));
    net.connect(rcoi_node, relay);
    // The relay's answers are lost: it asked and hears nothing.
    for n in 0..3 {
        while let Some(out) = net.nodes[n].t.poll_output() {
            net.handle(n, out);
        }
    }
    net.queue.clear();
    net.connect(rcoi_node, school_node);
    net.run(1000);
    assert!(
        net.nodes[rcoi_node].completed.is_empty(),
        "asked the school while the relay was asked"
    );
    net.now = SOURCE_SILENT_MS;
    net.nodes[rcoi_node].t.tick(net.now);
    net.run(1000);
    assert_eq!(net.nodes[rcoi_node].completed, vec![blob]);
}
