//! The engine on a simulated network of in-memory links: nodes are engines, frames are
//! delivered in order per link, time is a counter.

use std::collections::{HashMap, VecDeque};

use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};

use super::judge::{change_chunks, chunk_changes};
use super::*;

/// A sync message that carries `doc`'s last local change outright, as a relay could send it.
fn message_with_last_change(doc: &Automerge) -> Vec<u8> {
    let change = doc.get_last_local_change().unwrap();
    message_of(doc.get_heads(), chunks_of(&[&change]))
}

/// A sync message advertising `heads` and carrying `chunks` as they are.
fn message_of(heads: Vec<ChangeHash>, chunks: Vec<Vec<u8>>) -> Vec<u8> {
    sync::Message {
        heads,
        need: vec![],
        have: vec![],
        changes: chunks.into(),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode()
}

/// The raw bytes of `changes`, a chunk each.
fn chunks_of(changes: &[&automerge::Change]) -> Vec<Vec<u8>> {
    changes.iter().map(|c| c.raw_bytes().to_vec()).collect()
}

/// `base` with one more change putting `key` = `value`, written under the actor of `author`.
fn forge(base: &Automerge, author: &SigningKey, key: &str, value: &str) -> Automerge {
    let mut forged = base.clone();
    forged.set_actor(actor_for(&author.verifying_key().to_bytes()));
    let mut tx = forged.transaction();
    tx.put(ROOT, key, value).unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));
    forged
}

use crate::test_ids::{moyo, rcoi, school};
fn doc(kind: &str, municipality: &str, code: &str) -> DocId {
    format!("{kind}/{municipality}/{code}/is-2024-02-14")
        .parse()
        .unwrap()
}

struct Net {
    ca: FixedCa,
    nodes: Vec<Engine>,
    keys: Vec<SigningKey>,
    /// (node, peer id there) → (other node, peer id there)
    links: HashMap<(usize, PeerId), (usize, PeerId)>,
    queue: VecDeque<(usize, PeerId, Vec<u8>)>,
    persisted: Vec<Vec<Persist>>,
    next_peer: PeerId,
    now_ms: i64,
    /// Frames delivered: (to node, doc of a sync frame or None, bytes).
    delivered: Vec<(usize, Option<DocId>, usize)>,
    /// Attestations delivered: (to node, whether the certificate came with it).
    certs_carried: Vec<(usize, bool)>,
    /// (to node, wire version) of every frame delivered.
    wire_seen: BTreeSet<(usize, u8)>,
}

impl Net {
    fn new() -> Self {
        Net {
            ca: FixedCa::default(),
            nodes: Vec::new(),
            keys: Vec::new(),
            links: HashMap::new(),
            queue: VecDeque::new(),
            persisted: Vec::new(),
            next_peer: 1,
            now_ms: 1_707_876_000_000,
            delivered: Vec::new(),
            certs_carried: Vec::new(),
            wire_seen: BTreeSet::new(),
        }
    }

    fn add(&mut self, identity: NodeIdentity) -> usize {
        let seed = u8::try_from(self.nodes.len() + 1).unwrap();
        let key = SigningKey::from_bytes(&[seed; 32]);
        let cert = self.ca.issue(identity, &key);
        self.nodes.push(Engine::new(
            identity,
            key.clone(),
            cert,
            Box::new(self.ca.clone()),
        ));
        self.keys.push(key);
        self.persisted.push(Vec::new());
        self.nodes.len() - 1
    }

    fn connect(&mut self, a: usize, b: usize) -> (PeerId, PeerId) {
        let (pa, pb) = (self.next_peer, self.next_peer + 1);
        self.next_peer += 2;
        self.links.insert((a, pa), (b, pb));
        self.links.insert((b, pb), (a, pa));
        let (ia, ib) = (self.nodes[a].identity(), self.nodes[b].identity());
        // As TLS's ALPN agrees on it.
        let wire =
            crate::sync::wire::agree(self.nodes[a].wire_versions(), self.nodes[b].wire_versions())
                .expect("the two speak a common wire version");
        self.nodes[a].handle(
            self.now_ms,
            Input::Connected {
                peer: pa,
                identity: ib,
                wire,
                link: crate::sync::Link::Quic,
            },
        );
        self.nodes[b].handle(
            self.now_ms,
            Input::Connected {
                peer: pb,
                identity: ia,
                wire,
                link: crate::sync::Link::Quic,
            },
        );
        self.run();
        (pa, pb)
    }

    fn disconnect(&mut self, a: usize, pa: PeerId) {
        if let Some((b, pb)) = self.links.remove(&(a, pa)) {
            self.links.remove(&(b, pb));
            self.nodes[a].handle(self.now_ms, Input::Disconnected { peer: pa });
            self.nodes[b].handle(self.now_ms, Input::Disconnected { peer: pb });
        }
        self.queue
            .retain(|(n, p, _)| !((*n == a && *p == pa) || !self.links.contains_key(&(*n, *p))));
    }

    /// Moves outputs into the queue.
    fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(output) = self.nodes[i].poll_output() {
                match output {
                    Output::Send { peer, bytes } => {
                        if let Some(&(j, pj)) = self.links.get(&(i, peer)) {
                            self.queue.push_back((j, pj, bytes));
                        }
                    }
                    Output::Persist(p) => self.persisted[i].push(p),
                    Output::Close { reason, .. } => panic!("node {i} closed a link: {reason}"),
                }
            }
        }
    }

    /// Delivers frames until the network is quiet.
    fn run(&mut self) {
        for _ in 0..100_000 {
            self.pump();
            let Some((to, peer, bytes)) = self.queue.pop_front() else {
                return;
            };
            let doc = match Frame::decode(&bytes) {
                Ok(Frame::Sync {
                    doc, attestations, ..
                }) => {
                    self.certs_carried
                        .extend(attestations.iter().map(|(cert, _)| (to, !cert.is_empty())));
                    Some(doc)
                }
                _ => None,
            };
            self.delivered.push((to, doc, bytes.len()));
            self.wire_seen
                .insert((to, Frame::version(&bytes).unwrap_or_default()));
            self.now_ms += 1;
            self.nodes[to].handle(
                self.now_ms,
                Input::Received {
                    peer,
                    bytes: &bytes,
                },
            );
        }
        panic!("the network did not settle");
    }

    fn bytes_delivered(&self) -> usize {
        self.delivered.iter().map(|(_, _, b)| b).sum()
    }

    fn write(&mut self, node: usize, d: DocId, key: &str, value: &str) {
        self.now_ms += 1;
        self.nodes[node]
            .change(self.now_ms, d, |tx| tx.put(ROOT, key, value).map(|_| ()))
            .unwrap();
        self.run();
    }

    fn read(&self, node: usize, d: &DocId, key: &str) -> Option<String> {
        let doc = self.nodes[node].doc(d)?;
        doc.get(ROOT, key)
            .ok()
            .flatten()
            .map(|(v, _)| v.as_str().unwrap_or_default().to_owned())
    }

    fn heads(&self, node: usize, d: &DocId) -> Vec<ChangeHash> {
        self.nodes[node]
            .doc(d)
            .map(|x| x.get_heads())
            .unwrap_or_default()
    }

    /// Replaces `node`'s copy of `d` by `doc` as if its store held it (a change nobody checked:
    /// forged, or written by a bug), keeping the attestations it persisted for `d`.
    fn plant(&mut self, node: usize, d: DocId, doc: &Automerge) {
        let kept: Vec<(Vec<u8>, Vec<u8>)> = self.persisted[node]
            .iter()
            .filter_map(|p| match p {
                Persist::Attestation {
                    doc, cert, bytes, ..
                } if *doc == d => Some((cert.clone(), bytes.clone())),
                _ => None,
            })
            .collect();
        self.nodes[node].load_doc(d, &doc.save(), &kept).unwrap();
    }

    /// Hands `node` a sync frame from its peer `peer`, as if it had arrived (the net is not run).
    fn hand(
        &mut self,
        node: usize,
        peer: PeerId,
        doc: DocId,
        message: Vec<u8>,
        attestations: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        let frame = Frame::Sync {
            doc,
            message,
            attestations,
        };
        self.nodes[node].handle(
            self.now_ms,
            Input::Received {
                peer,
                bytes: &frame.encode(),
            },
        );
    }

    /// What `node` persisted of `d`: its changes appended in order, and its attestations
    /// (certificate, attestation), as a store gives them back at start.
    fn stored(&self, node: usize, d: DocId) -> (Vec<u8>, Vec<Stored>) {
        let (mut saved, mut endorsements) = (Vec::new(), Vec::new());
        for p in &self.persisted[node] {
            match p {
                Persist::Changes { doc, bytes } if *doc == d => saved.extend_from_slice(bytes),
                Persist::Attestation {
                    doc, cert, bytes, ..
                } if *doc == d => endorsements.push((cert.clone(), bytes.clone())),
                _ => {}
            }
        }
        (saved, endorsements)
    }

    /// A new engine for `node` as `identity` (same key, a fresh certificate) holding `d` as it
    /// loads from what `node` persisted.
    fn restored(&self, node: usize, identity: NodeIdentity, d: DocId) -> Engine {
        let key = self.keys[node].clone();
        let cert = self.ca.issue(identity, &key);
        let mut restored = Engine::new(identity, key, cert, Box::new(self.ca.clone()));
        let (saved, endorsements) = self.stored(node, d);
        restored.load_doc(d, &saved, &endorsements).unwrap();
        restored
    }

    fn quarantined(&self, node: usize) -> Vec<String> {
        self.persisted[node]
            .iter()
            .filter_map(|p| match p {
                Persist::Quarantine { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

/// An attestation as a store keeps it: (certificate, attestation).
type Stored = (Vec<u8>, Vec<u8>);

/// РЦОИ (0), МОУО 4201 (1), school 420101 (2), school 420102 (3).
fn region_net() -> Net {
    let mut net = Net::new();
    net.add(rcoi());
    net.add(moyo("4201"));
    net.add(school("4201", "420101"));
    net.add(school("4201", "420102"));
    net
}

#[test]
fn a_schools_changes_reach_the_rcoi_through_its_hub() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "14 зачёт");
    net.connect(2, 1);
    net.connect(1, 0);
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("14 зачёт")
    );
    // Live changes flow along connected links too.
    net.write(2, protocol, "sheet-2", "9 незачёт");
    assert_eq!(
        net.read(0, &protocol, "sheet-2").as_deref(),
        Some("9 незачёт")
    );
    assert_eq!(net.heads(0, &protocol), net.heads(2, &protocol));
    // And the РЦОИ's roster reaches the school back through the hub.
    let roster = doc("roster", "4201", "420101");
    net.write(0, roster, "participant-1", "Иванова");
    assert_eq!(
        net.read(2, &roster, "participant-1").as_deref(),
        Some("Иванова")
    );
    assert!(
        net.quarantined(0).is_empty()
            && net.quarantined(1).is_empty()
            && net.quarantined(2).is_empty()
    );
}

/// The rolling upgrade: the РЦОИ and the МОУО speak the next wire version (and this one), the
/// school only this one. Each link agrees on the newest both speak, the school's sheet and the
/// РЦОИ's roster cross both, and a frame of a version other than its connection's is refused.
#[test]
fn a_node_of_the_next_wire_version_syncs_with_one_of_this_version() {
    let next = crate::sync::wire::WIRE_VERSION + 1;
    let this = crate::sync::wire::WIRE_VERSION;
    let mut net = region_net();
    net.nodes[0].speak_wire_versions(&[this, next]);
    net.nodes[1].speak_wire_versions(&[this, next]);
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "14 зачёт");
    let (school_side, _) = net.connect(2, 1);
    net.connect(1, 0);
    net.write(2, protocol, "sheet-2", "9 незачёт");
    let roster = doc("roster", "4201", "420101");
    net.write(0, roster, "participant-1", "Иванова");
    assert_eq!(
        net.read(0, &protocol, "sheet-2").as_deref(),
        Some("9 незачёт")
    );
    assert_eq!(
        net.read(2, &roster, "participant-1").as_deref(),
        Some("Иванова")
    );
    // The school heard only this version; the РЦОИ only the next; the МОУО both.
    let seen = |node: usize| -> Vec<u8> {
        net.wire_seen
            .iter()
            .filter(|(to, _)| *to == node)
            .map(|(_, v)| *v)
            .collect()
    };
    assert_eq!(seen(2), [this]);
    assert_eq!(seen(0), [next]);
    assert_eq!(seen(1), [this, next]);

    // A frame of the next version on the school's connection of this version: refused.
    let summary = Frame::Summary {
        digest: [0; 32],
        docs: 0,
    };
    net.nodes[2].handle(
        net.now_ms,
        Input::Received {
            peer: school_side,
            bytes: &summary.encode_as(next),
        },
    );
    let outputs: Vec<Output> = std::iter::from_fn(|| net.nodes[2].poll_output()).collect();
    let closed = closes(&outputs);
    let texts: Vec<String> = closed.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        ["malformed frame at byte 0: not the wire version agreed for this connection"],
        "{closed:?}"
    );
    assert!(matches!(closed.as_slice(), [CloseReason::Malformed(_)]));
    // And a connection in a version the school does not speak is closed at once.
    net.nodes[2].handle(
        net.now_ms,
        Input::Connected {
            peer: 99,
            identity: moyo("4201"),
            wire: next,
            link: crate::sync::Link::Quic,
        },
    );
    let outputs: Vec<Output> = std::iter::from_fn(|| net.nodes[2].poll_output()).collect();
    let closed = closes(&outputs);
    assert_eq!(closed, [CloseReason::WireVersion(next)]);
}

#[test]
fn concurrent_edits_on_both_sides_of_a_partition_converge() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    net.write(2, roster, "room", "101");
    let (p, _) = net.connect(2, 0);
    net.disconnect(2, p);
    net.write(2, roster, "participant-1", "Н");
    net.write(0, roster, "participant-2", "присутствует");
    assert_ne!(net.heads(0, &roster), net.heads(2, &roster));
    net.connect(2, 0);
    assert_eq!(net.heads(0, &roster), net.heads(2, &roster));
    assert_eq!(net.read(0, &roster, "participant-1").as_deref(), Some("Н"));
    assert_eq!(
        net.read(2, &roster, "participant-2").as_deref(),
        Some("присутствует")
    );
}

#[test]
fn a_school_never_receives_another_schools_documents() {
    let mut net = region_net();
    let other = doc("roster", "4201", "420102");
    net.write(3, other, "participant-9", "Петров");
    net.connect(3, 1);
    assert!(
        net.nodes[1].doc(&other).is_some(),
        "the hub holds its schools' documents"
    );
    net.delivered.clear();
    net.connect(2, 1);
    assert!(net.nodes[2].doc(&other).is_none());
    assert!(net.delivered.iter().all(|(to, d, _)| *to != 2
        || d.is_none()
        || *d == Some(DocId::Directory)
        || d.and_then(|d| d.school()) == net.nodes[2].identity().org.school()));
    // Another МОУО does not get them either.
    let other_moyo = net.add(moyo("4202"));
    net.connect(other_moyo, 1);
    assert!(net.nodes[other_moyo].doc(&other).is_none());
}

#[test]
fn a_reconnect_with_nothing_changed_costs_under_a_kilobyte() {
    let mut net = Net::new();
    let rcoi_node = net.add(rcoi());
    let hub = net.add(moyo("4201"));
    let schools: Vec<usize> = (1..=60)
        .map(|i| net.add(school("4201", &format!("4201{i:02}"))))
        .collect();
    for (n, &s) in schools.iter().enumerate() {
        for kind in ["roster", "protocol"] {
            net.write(s, doc(kind, "4201", &format!("4201{:02}", n + 1)), "x", "y");
        }
        net.connect(s, hub);
    }
    let (link, _) = net.connect(hub, rcoi_node);
    assert_eq!(net.nodes[rcoi_node].doc_ids().count(), 120);
    net.disconnect(hub, link);
    net.delivered.clear();
    net.connect(hub, rcoi_node);
    assert!(
        net.bytes_delivered() < 1024,
        "{} bytes",
        net.bytes_delivered()
    );
    assert_eq!(net.delivered.len(), 2, "one summary each way");

    // Three schools changed while the hub was cut off from the РЦОИ: only their documents sync.
    let (link, _) = (
        net.links
            .keys()
            .find(|(n, _)| *n == hub)
            .map(|(_, p)| *p)
            .unwrap(),
        (),
    );
    let _ = link;
    let rcoi_links: Vec<PeerId> = net
        .links
        .iter()
        .filter(|((n, _), (m, _))| *n == hub && *m == rcoi_node)
        .map(|((_, p), _)| *p)
        .collect();
    for p in rcoi_links {
        net.disconnect(hub, p);
    }
    for &s in &schools[..3] {
        let code = net.nodes[s].identity().org.school().unwrap().to_string();
        net.write(s, doc("protocol", "4201", &code), "sheet", "10 зачёт");
    }
    net.delivered.clear();
    net.connect(hub, rcoi_node);
    let synced: std::collections::BTreeSet<DocId> =
        net.delivered.iter().filter_map(|(_, d, _)| *d).collect();
    assert_eq!(synced.len(), 3, "{synced:?}");
}

/// A hub that rewrites a school's document under the school's actor, and forwards it with the
/// school's genuine attestation.
#[test]
fn a_hub_that_alters_a_schools_change_is_caught_at_the_rcoi() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    net.connect(2, 1);
    // The hub forges: a change under the school's actor, on top of the school's history.
    let forged = forge(
        net.nodes[1].doc(&protocol).unwrap(),
        &net.keys[2],
        "sheet-1",
        "18 зачёт",
    );
    let school_att = net.persisted[1]
        .iter()
        .find_map(|p| match p {
            Persist::Attestation {
                doc, cert, bytes, ..
            } if *doc == protocol => Some((cert.clone(), bytes.clone())),
            _ => None,
        })
        .unwrap();
    let (to_rcoi, at_rcoi) = net.connect(1, 0);
    let _ = to_rcoi;
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("8 незачёт")
    );
    let frame = Frame::Sync {
        doc: protocol,
        message: message_with_last_change(&forged),
        attestations: vec![school_att],
    };
    net.nodes[0].handle(
        net.now_ms,
        Input::Received {
            peer: at_rcoi,
            bytes: &frame.encode(),
        },
    );
    net.run();
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("8 незачёт"),
        "not applied"
    );
    let reasons = net.quarantined(0);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("not covered by school 420101"),
        "{reasons:?}"
    );
    assert!(
        net.persisted[0]
            .iter()
            .any(|p| matches!(p, Persist::Audit { text, .. } if text.contains("quarantined")))
    );
}

/// A hub that invents a change under its own actor and signs it with its own key.
#[test]
fn a_hub_that_invents_a_change_is_caught_at_the_rcoi() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    net.connect(2, 1);
    let hub_key = net.keys[1].clone();
    let forged = forge(
        net.nodes[1].doc(&protocol).unwrap(),
        &hub_key,
        "sheet-2",
        "20 зачёт",
    );
    let hub_cert = net.ca.issue(moyo("4201"), &hub_key);
    let hub_att = Attestation::sign(protocol, forged.get_heads(), 5, &hub_key);
    let (_, at_rcoi) = net.connect(1, 0);
    let frame = Frame::Sync {
        doc: protocol,
        message: message_with_last_change(&forged),
        attestations: vec![(hub_cert, hub_att.as_bytes().to_vec())],
    };
    net.nodes[0].handle(
        net.now_ms,
        Input::Received {
            peer: at_rcoi,
            bytes: &frame.encode(),
        },
    );
    net.run();
    assert_eq!(net.read(0, &protocol, "sheet-2"), None);
    let reasons = net.quarantined(0);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("municipality 4201, who may not write")),
        "{reasons:?}"
    );
}

/// The same invented change, hidden behind an empty document in one chunk (automerge loads a
/// document chunk and queues the changes after it whose parents it lacks, so judging the
/// document's own change graph alone would never see it): refused all the same.
#[test]
fn a_change_hidden_behind_a_document_in_one_chunk_is_judged() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    net.connect(2, 1);
    let hub_key = net.keys[1].clone();
    let forged = forge(
        net.nodes[1].doc(&protocol).unwrap(),
        &hub_key,
        "sheet-2",
        "20 зачёт",
    );
    let mut chunk = Automerge::new().save();
    chunk.extend_from_slice(forged.get_last_local_change().unwrap().raw_bytes());
    let (_, at_rcoi) = net.connect(1, 0);
    net.hand(
        0,
        at_rcoi,
        protocol,
        message_of(forged.get_heads(), vec![chunk]),
        vec![],
    );
    net.run();
    assert_eq!(net.read(0, &protocol, "sheet-2"), None);
    let reasons = net.quarantined(0);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("has no attestation by its author")),
        "{reasons:?}"
    );
}

/// A hub whose store holds a change it may not have written (forged, or written by a bug) still
/// relays the school's honest changes: the forged change is refused at the school and at the
/// РЦОИ, every honest change arrives, nothing is blocked, and the exchange ends (`Net::run`
/// fails the test if it loops).
#[test]
fn a_forged_change_in_a_relays_store_does_not_hold_back_the_honest_ones() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    let (school_link, _) = net.connect(2, 1);
    net.disconnect(2, school_link);

    // The hub's store gains a change under its own key; the school's attestation is kept.
    let hub_key = net.keys[1].clone();
    let forged = forge(
        net.nodes[1].doc(&protocol).unwrap(),
        &hub_key,
        "sheet-2",
        "20 зачёт",
    );
    net.plant(1, protocol, &forged);
    let forged_hash = forged.get_heads()[0];

    // The school goes on offline, then meets the hub, then the hub meets the РЦОИ.
    net.write(2, protocol, "sheet-3", "15 зачёт");
    net.connect(2, 1);
    net.connect(1, 0);
    net.write(2, protocol, "sheet-4", "17 зачёт");

    for node in [0, 2] {
        assert_eq!(net.read(node, &protocol, "sheet-2"), None, "node {node}");
        for (sheet, score) in [
            ("sheet-1", "8 незачёт"),
            ("sheet-3", "15 зачёт"),
            ("sheet-4", "17 зачёт"),
        ] {
            assert_eq!(
                net.read(node, &protocol, sheet).as_deref(),
                Some(score),
                "{sheet} at node {node}"
            );
        }
        let reasons = net.quarantined(node);
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(&format!("change {forged_hash} has no attestation"))),
            "node {node}: {reasons:?}"
        );
    }
    assert_eq!(net.heads(0, &protocol), net.heads(2, &protocol));

    // In the same sessions, the hub's store gains a change built on its forged one; it travels
    // with the school's next sheet. It is refused as built on a refused change (rather than
    // waiting for a parent that never comes: the two sides would ask each other for it in a loop, and
    // `Net::run` would fail), and the sheet arrives.
    let on_forged = forge(
        net.nodes[1].doc(&protocol).unwrap(),
        &hub_key,
        "sheet-6",
        "19 зачёт",
    );
    net.plant(1, protocol, &on_forged);
    net.write(2, protocol, "sheet-5", "16 зачёт");
    assert_eq!(
        net.read(0, &protocol, "sheet-5").as_deref(),
        Some("16 зачёт")
    );
    assert_eq!(net.read(0, &protocol, "sheet-6"), None);
    let built_on = format!("built on refused change {forged_hash}");
    assert!(
        net.quarantined(0).iter().any(|r| r.contains(&built_on)),
        "{:?}",
        net.quarantined(0)
    );
    assert_eq!(net.heads(0, &protocol), net.heads(2, &protocol));
}

/// A v2 sync message carries several changes back to back in one chunk: they are split by the
/// container format and each parsed whole; a truncated sequence or a document is not taken for
/// changes.
#[test]
fn changes_back_to_back_in_one_chunk_are_split_and_anything_else_is_not() {
    let mut doc = Automerge::new();
    for i in 0..3 {
        let mut tx = doc.transaction();
        tx.put(ROOT, format!("k{i}"), "v").unwrap();
        tx.commit();
    }
    let changes = doc.get_changes(&[]);
    let joined: Vec<u8> = changes
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let pieces = change_chunks(&joined).unwrap();
    assert_eq!(pieces.len(), 3);
    for (piece, change) in pieces.iter().zip(&changes) {
        assert_eq!(*piece, change.raw_bytes());
    }
    let parsed = chunk_changes(0, &joined).unwrap().unwrap();
    let hashes: Vec<ChangeHash> = parsed.iter().map(automerge::Change::hash).collect();
    let expected: Vec<ChangeHash> = changes.iter().map(automerge::Change::hash).collect();
    assert_eq!(hashes, expected);
    assert!(change_chunks(&joined[..joined.len() - 1]).is_none());
    assert!(change_chunks(&doc.save()).is_none());
    assert!(change_chunks(&[]).is_none());
    // A change whose bytes are damaged inside a well-formed container does not parse.
    let mut damaged = joined.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    assert!(chunk_changes(0, &damaged).is_err());
    // Nor does one whose checksum is wrong (automerge's loader would stop there and drop the
    // rest unseen), alone or among others.
    let first_len = changes[0].raw_bytes().len();
    let mut bad_sum = joined.clone();
    bad_sum[first_len + 4] ^= 0x01;
    let err = chunk_changes(0, &bad_sum).unwrap_err();
    assert!(err.contains("wrong checksum"), "{err}");
    let mut alone = changes[0].raw_bytes().to_vec();
    alone[4] ^= 0x01;
    assert!(chunk_changes(0, &alone).is_err());
}

/// A change refused from one peer for a reason that later passes (here: it came before its
/// author's attestation had reached this node) is forgotten once this node holds it by another
/// way: that peer's later changes built on it are not refused as built on a refused change.
#[test]
fn a_refusal_is_forgotten_once_the_change_is_held() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    // A copy of the school's change reaches the РЦОИ from the hub without any attestation
    // (the hub never held it): refused, as nothing proves who wrote it.
    let (_, at_rcoi) = net.connect(1, 0);
    let first = net.nodes[2].doc(&protocol).unwrap().clone();
    let frame = Frame::Sync {
        doc: protocol,
        message: message_with_last_change(&first),
        attestations: vec![],
    };
    net.nodes[0].handle(
        net.now_ms,
        Input::Received {
            peer: at_rcoi,
            bytes: &frame.encode(),
        },
    );
    net.run();
    assert_eq!(net.read(0, &protocol, "sheet-1"), None);
    assert!(
        net.quarantined(0)
            .iter()
            .any(|r| r.contains("has no attestation by its author")),
        "{:?}",
        net.quarantined(0)
    );
    // The school reaches the РЦОИ directly (a fallback), then goes back to its hub and writes
    // on: the new change reaches the РЦОИ through the hub, built on the one refused there.
    let (direct, _) = net.connect(2, 0);
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("8 незачёт")
    );
    net.disconnect(2, direct);
    net.connect(2, 1);
    net.write(2, protocol, "sheet-2", "15 зачёт");
    assert_eq!(
        net.read(0, &protocol, "sheet-2").as_deref(),
        Some("15 зачёт")
    );
    assert!(
        !net.quarantined(0)
            .iter()
            .any(|r| r.contains("built on refused change")),
        "{:?}",
        net.quarantined(0)
    );
    assert_eq!(net.heads(0, &protocol), net.heads(2, &protocol));
}

/// A sync message for a document the receiver does not hold yet is dropped when the sender's
/// allowance of new documents for the interval is spent. Nothing is lost with it: automerge's
/// opening message carries no changes, so no attestation is marked as sent with it (a review
/// feared attestations marked sent and never sent again). When the document comes at the next
/// interval, its changes and their attestations travel together and apply.
#[test]
fn attestations_go_again_when_a_dropped_new_document_comes_later() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    // Connect the school to its hub by hand: before anything is delivered, the school's
    // allowance of new documents at the hub is spent on empty ones.
    let (pa, pb) = (net.next_peer, net.next_peer + 1);
    net.next_peer += 2;
    net.links.insert((2, pa), (1, pb));
    net.links.insert((1, pb), (2, pa));
    let (school_id, hub_id) = (net.nodes[2].identity(), net.nodes[1].identity());
    net.nodes[2].handle(
        net.now_ms,
        Input::Connected {
            peer: pa,
            identity: hub_id,
            wire: crate::sync::wire::WIRE_VERSION,
            link: crate::sync::Link::Quic,
        },
    );
    net.nodes[1].handle(
        net.now_ms,
        Input::Connected {
            peer: pb,
            identity: school_id,
            wire: crate::sync::wire::WIRE_VERSION,
            link: crate::sync::Link::Quic,
        },
    );
    let opening = automerge::sync::SyncDoc::generate_sync_message(
        &Automerge::new(),
        &mut automerge::sync::State::new(),
    )
    .unwrap()
    .encode();
    for i in 0..NEW_DOCS_PER_INTERVAL {
        let (day, month, year) = (1 + i % 28, 1 + (i / 28) % 12, 2001 + i / (28 * 12));
        let empty: DocId = format!("roster/4201/420101/is-{year}-{month:02}-{day:02}")
            .parse()
            .unwrap();
        let frame = Frame::Sync {
            doc: empty,
            message: opening.clone(),
            attestations: vec![],
        };
        net.nodes[1].handle(
            net.now_ms,
            Input::Received {
                peer: pb,
                bytes: &frame.encode(),
            },
        );
    }
    net.run();
    assert_eq!(
        net.read(1, &protocol, "sheet-1"),
        None,
        "dropped this interval"
    );
    // The next interval: summaries, doc lists, and the document comes.
    net.now_ms += SUMMARY_INTERVAL_MS;
    for node in [1, 2] {
        net.nodes[node].handle(net.now_ms, Input::Tick);
    }
    net.run();
    assert_eq!(
        net.read(1, &protocol, "sheet-1").as_deref(),
        Some("8 незачёт"),
        "{:?}",
        net.quarantined(1)
    );
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
}

/// A change under a writer's actor, built on a change this node does not hold yet, waits
/// (unjudged, held by the engine, not by automerge); when the parent arrives from an honest
/// peer, the waiting change is refused (no attestation covers it) and the parent is applied, not
/// the honest message refused whole.
#[test]
fn a_forged_change_waiting_in_the_queue_does_not_block_its_parent() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-0", "8 незачёт");
    let (school_link, _) = net.connect(2, 1);
    net.connect(1, 0);
    assert_eq!(
        net.read(0, &protocol, "sheet-0").as_deref(),
        Some("8 незачёт")
    );
    net.disconnect(2, school_link);
    // Offline, the school writes its next sheet; a change under its actor is forged on top.
    net.write(2, protocol, "sheet-1", "15 зачёт");
    let school_key = net.keys[2].clone();
    let forged = forge(
        net.nodes[2].doc(&protocol).unwrap(),
        &school_key,
        "sheet-1",
        "20 зачёт",
    );
    let at_rcoi = net
        .links
        .iter()
        .find(|((n, _), (m, _))| *n == 0 && *m == 1)
        .map(|((_, p), _)| *p)
        .unwrap();
    let frame = Frame::Sync {
        doc: protocol,
        message: message_with_last_change(&forged),
        attestations: vec![],
    };
    net.nodes[0].handle(
        net.now_ms,
        Input::Received {
            peer: at_rcoi,
            bytes: &frame.encode(),
        },
    );
    net.run();
    assert_eq!(
        net.read(0, &protocol, "sheet-1"),
        None,
        "waits, not applied"
    );
    // The school comes back: its sheet reaches the РЦОИ through the hub.
    net.connect(2, 1);
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("15 зачёт"),
        "{:?}",
        net.quarantined(0)
    );
    assert!(
        net.quarantined(0)
            .iter()
            .any(|r| r.contains(&format!("change {} is not covered", forged.get_heads()[0]))),
        "{:?}",
        net.quarantined(0)
    );
    assert_eq!(net.heads(0, &protocol), net.heads(2, &protocol));
}

#[test]
fn a_certificate_the_ca_did_not_issue_does_not_vouch() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    let (_, at_rcoi) = net.connect(1, 0);
    // A rogue key claiming to be the school, with a certificate the test CA never issued.
    let rogue = SigningKey::from_bytes(&[99; 32]);
    let rogue_cert = b"TESTCERTrogue".to_vec();
    let forged = forge(
        net.nodes[2].doc(&protocol).unwrap(),
        &rogue,
        "sheet-1",
        "20 зачёт",
    );
    let att = Attestation::sign(protocol, forged.get_heads(), 5, &rogue);
    let frame = Frame::Sync {
        doc: protocol,
        message: message_with_last_change(&forged),
        attestations: vec![(rogue_cert, att.as_bytes().to_vec())],
    };
    net.nodes[0].handle(
        net.now_ms,
        Input::Received {
            peer: at_rcoi,
            bytes: &frame.encode(),
        },
    );
    net.run();
    assert!(
        net.nodes[0]
            .doc(&protocol)
            .is_none_or(|d| d.get_heads().is_empty())
    );
    assert!(
        net.quarantined(0)
            .iter()
            .any(|r| r.contains("not issued by the region's CA")),
        "{:?}",
        net.quarantined(0)
    );
}

/// A document whose changes would make a frame larger than any peer reassembles (32 MiB) is
/// not sent: sending it would get the link closed at every reconnect. The link and the other
/// documents go on (`Net` fails the test on any close), and the audit log says what stayed.
#[test]
fn a_document_too_large_for_a_frame_stays_behind_and_the_link_goes_on() {
    let mut net = region_net();
    let big = doc("protocol", "4201", "420101");
    let small = doc("roster", "4201", "420101");
    // 33 MiB that do not compress (automerge deflates its columns).
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..33 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    net.now_ms += 1;
    net.nodes[2]
        .change(net.now_ms, big, |tx| {
            tx.put(ROOT, "audio", automerge::ScalarValue::Bytes(noise))
                .map(|_| ())
        })
        .unwrap();
    net.write(2, small, "participant-1", "Иванова");
    net.connect(2, 1);
    assert_eq!(
        net.read(1, &small, "participant-1").as_deref(),
        Some("Иванова")
    );
    assert!(
        net.heads(1, &big).is_empty(),
        "the large document stayed behind"
    );
    let audit: Vec<&String> = net.persisted[2]
        .iter()
        .filter_map(|p| match p {
            Persist::Audit { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        audit.iter().any(|t| t.contains(&big.to_string())
            && t.contains("more than a frame carries (33554432); not sent")),
        "{audit:?}"
    );
}

/// A certificate check is remembered for a while (each is an X.509 verification), but not
/// for ever: a hub that keeps running judges a certificate again at most 10 minutes after it
/// last did, so a revocation (or a list running out) reaches sessions already open.
#[test]
fn a_certificate_check_is_remembered_for_at_most_ten_minutes() {
    const MINUTE_MS: i64 = 60_000;
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.connect(2, 1);
    net.write(2, protocol, "sheet-1", "8 незачёт");
    assert_eq!(
        net.read(1, &protocol, "sheet-1").as_deref(),
        Some("8 незачёт")
    );
    let school_cert = net.ca.issue(school("4201", "420101"), &net.keys[2].clone());
    net.ca.withdraw(&school_cert);

    // Within the 10 minutes the hub still goes by its earlier check.
    net.now_ms += 5 * MINUTE_MS;
    net.write(2, protocol, "sheet-2", "9 незачёт");
    assert_eq!(
        net.read(1, &protocol, "sheet-2").as_deref(),
        Some("9 незачёт")
    );
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));

    // Past them, it asks the CA again, which no longer vouches for the school.
    net.now_ms += 6 * MINUTE_MS;
    net.write(2, protocol, "sheet-3", "20 зачёт");
    assert_eq!(net.read(1, &protocol, "sheet-3"), None);
    assert!(
        net.quarantined(1)
            .iter()
            .any(|r| r.contains("not issued by the region's CA")),
        "{:?}",
        net.quarantined(1)
    );
}

#[test]
fn a_message_with_a_corrupt_chunk_is_refused_whole() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    net.write(2, protocol, "sheet-2", "12 зачёт");
    let source = net.nodes[2].doc(&protocol).unwrap().clone();
    let changes = source.get_changes(&[]);
    assert_eq!(changes.len(), 2);
    let mut second = changes[1].raw_bytes().to_vec();
    let at = second.len() - 2;
    second[at] ^= 0xff;
    let message = sync::Message {
        heads: source.get_heads(),
        need: vec![],
        have: vec![],
        changes: vec![changes[0].raw_bytes().to_vec(), second].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    let (_, at_rcoi) = net.connect(2, 0);
    let att = net.persisted[2]
        .iter()
        .rev()
        .find_map(|p| match p {
            Persist::Attestation { cert, bytes, .. } => Some((cert.clone(), bytes.clone())),
            _ => None,
        })
        .unwrap();
    // A fresh РЦОИ that has nothing yet receives the message with one good and one bad chunk.
    let mut rcoi_engine = Engine::new(
        rcoi(),
        net.keys[0].clone(),
        net.ca.issue(rcoi(), &net.keys[0]),
        Box::new(net.ca.clone()),
    );
    rcoi_engine.handle(
        0,
        Input::Connected {
            peer: at_rcoi,
            identity: school("4201", "420101"),
            wire: crate::sync::wire::WIRE_VERSION,
            link: crate::sync::Link::Quic,
        },
    );
    let frame = Frame::Sync {
        doc: protocol,
        message: message.encode(),
        attestations: vec![att],
    };
    rcoi_engine.handle(
        1,
        Input::Received {
            peer: at_rcoi,
            bytes: &frame.encode(),
        },
    );
    assert_eq!(rcoi_engine.stats().messages_quarantined, 1);
    assert!(
        rcoi_engine
            .doc(&protocol)
            .is_none_or(|d| d.get_heads().is_empty()),
        "not even the good chunk is applied"
    );
    let mut reasons = Vec::new();
    while let Some(o) = rcoi_engine.poll_output() {
        if let Output::Persist(Persist::Quarantine { reason, .. }) = o {
            reasons.push(reason);
        }
    }
    assert!(
        reasons.iter().any(|r| r.contains("does not parse")),
        "{reasons:?}"
    );
}

#[test]
fn large_documents_travel_in_fragments_and_arrive_whole() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    let big = "я".repeat(40_000);
    for i in 0..5 {
        net.write(2, roster, &format!("participant-{i}"), &big);
    }
    net.delivered.clear();
    net.connect(2, 0);
    assert_eq!(net.heads(0, &roster), net.heads(2, &roster));
    assert!(
        net.delivered
            .iter()
            .all(|(_, _, b)| *b <= wire::FRAGMENT_BYTES + 64)
    );
    assert!(net.delivered.len() > 3);
}

#[test]
fn a_node_may_not_write_what_it_does_not_own() {
    let mut net = region_net();
    let err = net.nodes[1].change(0, doc("protocol", "4201", "420101"), |tx| {
        tx.put(ROOT, "x", "y").map(|_| ())
    });
    assert!(matches!(err, Err(EngineError::NotWritable { .. })));
    let err = net.nodes[0].change(0, doc("protocol", "4201", "420101"), |tx| {
        tx.put(ROOT, "x", "y").map(|_| ())
    });
    assert!(
        matches!(err, Err(EngineError::NotWritable { .. })),
        "the РЦОИ does not write a school's protocol"
    );
}

#[test]
fn a_restored_node_resumes_from_its_persisted_records() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "8 незачёт");
    net.connect(2, 1);
    // Rebuild the hub from what it persisted: changes appended in order, attestations.
    net.nodes[1] = net.restored(1, moyo("4201"), protocol);
    net.persisted[1].clear();
    net.connect(1, 0);
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("8 незачёт"),
        "the restored hub forwards with the school's attestation"
    );
    assert!(net.quarantined(0).is_empty(), "{:?}", net.quarantined(0));
}

/// Data entered while a school is offline and restarted before it ever connects still reaches
/// its hub: the change and its attestation are persisted together.
#[test]
fn offline_changes_survive_a_restart_with_their_attestation() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "15 зачёт");
    net.nodes[2] = net.restored(2, school("4201", "420101"), protocol);
    net.connect(2, 1);
    assert_eq!(
        net.read(1, &protocol, "sheet-1").as_deref(),
        Some("15 зачёт")
    );
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
}

#[test]
fn peer_reports_show_connection_last_contact_and_pending_documents() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "15 зачёт");
    let (link, _) = net.connect(2, 1);
    let reports = net.nodes[2].peer_reports();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].connected && reports[0].last_contact_ms.is_some());
    assert_eq!(reports[0].docs_pending, 0, "{reports:?}");
    // A change not yet delivered is pending.
    net.now_ms += 1;
    net.nodes[2]
        .change(net.now_ms, protocol, |tx| {
            tx.put(ROOT, "sheet-2", "9 незачёт").map(|_| ())
        })
        .unwrap();
    assert_eq!(net.nodes[2].peer_reports()[0].docs_pending, 1);
    net.run();
    assert_eq!(net.nodes[2].peer_reports()[0].docs_pending, 0);
    // After the link drops the hub is still listed, with its last contact.
    net.disconnect(2, link);
    let reports = net.nodes[2].peer_reports();
    assert!(!reports[0].connected && reports[0].last_contact_ms.is_some());
    // A reconnect with nothing changed confirms everything through the summaries alone.
    net.connect(2, 1);
    assert_eq!(net.nodes[2].peer_reports()[0].docs_pending, 0);
}

/// Found by the region simulator: two changes to one document within one millisecond (two rooms
/// marking attendance at 09:00) gave two attestations with the same time; the sender sent only
/// the first and the hub quarantined the second change as unproven.
#[test]
fn changes_within_one_millisecond_each_travel_with_their_proof() {
    let mut net = region_net();
    net.connect(2, 1);
    net.connect(1, 0);
    let roster = doc("roster", "4201", "420101");
    let at = net.now_ms + 1;
    for key in ["p1/attendance", "p2/attendance", "p3/attendance"] {
        net.nodes[2]
            .change(at, roster, |tx| tx.put(ROOT, key, "present").map(|_| ()))
            .unwrap();
        net.run();
    }
    // And once more with the clock set back.
    net.nodes[2]
        .change(at - 5_000, roster, |tx| {
            tx.put(ROOT, "p4/attendance", "absent").map(|_| ())
        })
        .unwrap();
    net.run();
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    assert!(net.quarantined(0).is_empty(), "{:?}", net.quarantined(0));
    assert_eq!(net.heads(0, &roster), net.heads(2, &roster));
    assert_eq!(
        net.read(0, &roster, "p4/attendance").as_deref(),
        Some("absent")
    );
}

/// Found by a sweep of the region simulator: a sync message can carry a change whose parent is
/// missing (automerge's bloom filter made the sender think the peer had it); the change waits
/// until the parent arrives in a later message, which is judged together with what waits, not
/// refused because the attestation names a head only the waiting change provides.
#[test]
fn a_change_queued_for_its_missing_parent_is_applied_when_the_parent_arrives() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    net.write(2, roster, "p1/attendance", "present");
    let (_, at_hub) = net.connect(2, 1);
    let school_key = net.keys[2].clone();
    let cert = net.ca.issue(school("4201", "420101"), &school_key);
    let b = forge(
        net.nodes[1].doc(&roster).unwrap(),
        &school_key,
        "p2/attendance",
        "present",
    );
    let c = forge(&b, &school_key, "p3/attendance", "absent");
    let attestation = Attestation::sign(roster, c.get_heads(), net.now_ms + 10, &school_key);
    let deliver = |net: &mut Net, message: Vec<u8>| {
        let frame = Frame::Sync {
            doc: roster,
            message,
            attestations: vec![(cert.clone(), attestation.as_bytes().to_vec())],
        };
        net.nodes[1].handle(
            net.now_ms,
            Input::Received {
                peer: at_hub,
                bytes: &frame.encode(),
            },
        );
        net.run();
    };
    // The child first: it waits, nothing applied, nothing refused.
    deliver(&mut net, message_with_last_change(&c));
    assert_eq!(net.read(1, &roster, "p3/attendance"), None);
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    // Then the parent: both apply.
    deliver(&mut net, message_with_last_change(&b));
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    assert_eq!(
        net.read(1, &roster, "p3/attendance").as_deref(),
        Some("absent")
    );
    assert_eq!(net.heads(1, &roster), c.get_heads());
}

/// Seed 3106 of the region sweep: a message carries a change whose parents are held, and the
/// rest of its author's attested history behind a change that has not arrived yet (a bloom
/// filter's false positive, or a change still in flight). Nothing can be judged yet, so all of
/// it waits, unapplied and unrefused; when the missing change comes, all of it passes. (Refused
/// as "the attestation names a head not in the document", the first change was remembered as
/// refused and everything built on it refused for the rest of the session: 18 sheets lost.)
#[test]
fn changes_behind_a_missing_one_wait_for_it_and_then_pass() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    net.write(2, roster, "p0/attendance", "present");
    let (_, at_hub) = net.connect(2, 1);
    // Five more changes under the school's key, one on another.
    let school_key = net.keys[2].clone();
    let mut at_school = net.nodes[1].doc(&roster).unwrap().clone();
    for p in 1..=5 {
        at_school = forge(
            &at_school,
            &school_key,
            &format!("p{p}/attendance"),
            "present",
        );
    }
    let chain = at_school.get_changes(&net.heads(1, &roster));
    assert_eq!(chain.len(), 5);
    let cert = net.ca.issue(school("4201", "420101"), &net.keys[2]);
    let attestation =
        Attestation::sign(roster, at_school.get_heads(), net.now_ms + 10, &net.keys[2]);
    let deliver = |net: &mut Net, changes: &[&automerge::Change]| {
        let message = message_of(at_school.get_heads(), chunks_of(changes));
        let attestations = vec![(cert.clone(), attestation.as_bytes().to_vec())];
        net.hand(1, at_hub, roster, message, attestations);
    };
    // The first change (its parent held) and the last three; the second is missing.
    deliver(&mut net, &[&chain[0], &chain[2], &chain[3], &chain[4]]);
    // The hub's answer asks the school for the missing change: the school's heads, with the
    // waiting changes left out, end at it.
    net.pump();
    let asked: Vec<ChangeHash> = net
        .queue
        .iter()
        .filter(|(to, _, _)| *to == 2)
        .filter_map(|(_, _, bytes)| match Frame::decode(bytes) {
            Ok(Frame::Sync { doc, message, .. }) if doc == roster => {
                sync::Message::decode(&message).ok()
            }
            _ => None,
        })
        .flat_map(|m| m.need)
        .collect();
    assert_eq!(asked, vec![chain[1].hash()]);
    net.run();
    assert_eq!(
        net.read(1, &roster, "p1/attendance"),
        None,
        "waits, not applied"
    );
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    deliver(&mut net, &[&chain[1]]);
    net.run();
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    assert_eq!(net.heads(1, &roster), at_school.get_heads());
}

/// Changes that wait are bounded: a peer sending more changes whose parent never comes than a
/// document may hold waiting has the message refused whole.
#[test]
fn changes_waiting_for_a_parent_are_bounded() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    net.write(2, roster, "p0/attendance", "present");
    let (_, at_hub) = net.connect(2, 1);
    let school_key = net.keys[2].clone();
    let base = net.nodes[1].doc(&roster).unwrap().clone();
    let mut chain = base.clone();
    chain.set_actor(actor_for(&school_key.verifying_key().to_bytes()));
    for i in 0..=WAITING_CHANGES_PER_PEER_DOC_MAX + 1 {
        let mut tx = chain.transaction();
        tx.put(ROOT, "n", i as i64).unwrap();
        tx.commit_with(CommitOptions::default().with_time(0));
    }
    let changes = chain.get_changes(&base.get_heads());
    let cert = net.ca.issue(school("4201", "420101"), &school_key);
    let attestation = Attestation::sign(roster, chain.get_heads(), net.now_ms + 10, &school_key);
    let send = |net: &mut Net, these: &[automerge::Change]| {
        let message = message_of(
            chain.get_heads(),
            these.iter().map(|c| c.raw_bytes().to_vec()).collect(),
        );
        let attestations = vec![(cert.clone(), attestation.as_bytes().to_vec())];
        net.hand(1, at_hub, roster, message, attestations);
        net.run();
    };
    // As many as may wait (the first change, their root, held back): no refusal.
    send(&mut net, &changes[2..]);
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    // One more waits: refused whole.
    send(&mut net, &changes[1..2]);
    let refused = net.quarantined(1);
    assert!(
        refused.iter().any(|r| r.contains("wait for parents")),
        "{refused:?}"
    );
    assert_eq!(net.heads(1, &roster), base.get_heads());
}

/// A relay that took in an attestation naming a change it does not hold yet keeps forwarding
/// the attestation it can prove: a node behind it gets the changes the relay holds, instead of
/// having them wait for a change the relay cannot send.
#[test]
fn a_relay_forwards_the_attestation_whose_history_it_holds() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    net.write(2, roster, "p0/attendance", "present");
    let (_, at_hub) = net.connect(2, 1);
    let school_key = net.keys[2].clone();
    let cert = net.ca.issue(school("4201", "420101"), &school_key);
    let base = net.nodes[1].doc(&roster).unwrap().clone();
    let first = forge(&base, &school_key, "p1/attendance", "present");
    let second = forge(&first, &school_key, "p2/attendance", "present");
    let third = forge(&second, &school_key, "p3/attendance", "present");
    let tail = third.get_changes(&first.get_heads());
    // `attested`: with an attestation of `at`'s heads; without, the hub judges by those it has.
    let deliver = |net: &mut Net, at: &Automerge, changes: &[&automerge::Change], attested| {
        net.now_ms += 10;
        let attestation = Attestation::sign(roster, at.get_heads(), net.now_ms, &school_key);
        let message = message_of(at.get_heads(), chunks_of(changes));
        let attestations = if attested {
            vec![(cert.clone(), attestation.as_bytes().to_vec())]
        } else {
            vec![]
        };
        net.hand(1, at_hub, roster, message, attestations);
        net.run();
    };
    // The hub takes in the first change, attested; then only the last of two more, whose
    // parent it does not hold, with an attestation naming it.
    let one = first.get_changes(&base.get_heads());
    deliver(&mut net, &first, &[&one[0]], true);
    deliver(&mut net, &third, &[&tail[1]], true);
    assert_eq!(net.heads(1, &roster), first.get_heads());
    // The РЦОИ, behind the hub, gets what the hub holds, and nothing waits there for the
    // change the hub cannot send.
    net.connect(1, 0);
    assert_eq!(
        net.read(0, &roster, "p1/attendance").as_deref(),
        Some("present")
    );
    assert_eq!(net.heads(0, &roster), first.get_heads());
    // When the missing change reaches the hub (with no attestation of its own: the one the
    // hub kept for the session covers it), the rest follows to the РЦОИ.
    deliver(&mut net, &third, &[&tail[0]], false);
    assert_eq!(net.heads(0, &roster), third.get_heads());
    for node in [0, 1] {
        assert!(
            net.quarantined(node).is_empty(),
            "{:?}",
            net.quarantined(node)
        );
    }
}

/// An author's changes pass only together with every head its attestation names: a change
/// passing while another attested head waits would be held, and forwarded, under no stored
/// attestation, and the node behind the relay would refuse it.
#[test]
fn a_change_passes_only_with_the_heads_its_attestation_names() {
    let mut net = region_net();
    let roster = doc("roster", "4201", "420101");
    net.write(2, roster, "p0/attendance", "present");
    let (_, at_hub) = net.connect(2, 1);
    let (school_key, rcoi_key) = (net.keys[2].clone(), net.keys[0].clone());
    let school_cert = net.ca.issue(school("4201", "420101"), &school_key);
    let rcoi_cert = net.ca.issue(rcoi(), &rcoi_key);
    // The school writes x1; an РЦОИ change r1 reaches the school by another way (its fallback
    // link), and the school's x2 builds on both. The school attests x2.
    let base = net.nodes[1].doc(&roster).unwrap().clone();
    let x1 = forge(&base, &school_key, "x", "1");
    let r1 = forge(&base, &rcoi_key, "r", "1");
    let mut merged = x1.clone();
    merged.merge(&mut r1.clone()).unwrap();
    let x2 = forge(&merged, &school_key, "x", "2");
    let last = |d: &Automerge| d.get_changes(&base.get_heads()).last().unwrap().clone();
    let (cx1, cr1) = (last(&x1), last(&r1));
    let cx2 = x2.get_changes(&merged.get_heads())[0].clone();
    net.now_ms += 10;
    let by_school = Attestation::sign(roster, x2.get_heads(), net.now_ms, &school_key);
    let by_rcoi = Attestation::sign(roster, r1.get_heads(), net.now_ms, &rcoi_key);
    // The message leaves r1 out (a bloom filter's false positive): x2 waits for it, x1 with it.
    let message = message_of(x2.get_heads(), chunks_of(&[&cx1, &cx2]));
    let attestation = (school_cert.clone(), by_school.as_bytes().to_vec());
    net.hand(1, at_hub, roster, message, vec![attestation]);
    net.run();
    assert_eq!(net.heads(1, &roster), base.get_heads());
    // The РЦОИ behind the hub is offered nothing it would have to refuse.
    net.connect(1, 0);
    assert!(net.quarantined(0).is_empty(), "{:?}", net.quarantined(0));
    // r1 comes, with the РЦОИ's attestation: all pass, and go on to the РЦОИ.
    let message = message_of(x2.get_heads(), chunks_of(&[&cr1]));
    let attestation = (rcoi_cert.clone(), by_rcoi.as_bytes().to_vec());
    net.hand(1, at_hub, roster, message, vec![attestation]);
    net.run();
    for node in [0, 1] {
        assert_eq!(net.heads(node, &roster), x2.get_heads(), "node {node}");
        assert!(
            net.quarantined(node).is_empty(),
            "{:?}",
            net.quarantined(node)
        );
    }
}

/// A node certificate (~420 bytes in production) crosses a link once per session and author;
/// later attestations name only the key, and the receiver uses the certificate it kept.
#[test]
fn an_authors_certificate_crosses_a_link_once_per_session() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    let (school_end, _) = net.connect(2, 1);
    for i in 0..5 {
        net.write(2, protocol, &format!("sheet-{i}"), "12 зачёт");
    }
    let to_hub: Vec<bool> = net
        .certs_carried
        .iter()
        .filter(|(to, _)| *to == 1)
        .map(|(_, with)| *with)
        .collect();
    assert_eq!(to_hub.iter().filter(|with| **with).count(), 1, "{to_hub:?}");
    assert!(to_hub.len() >= 5, "{to_hub:?}");
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    assert_eq!(net.heads(1, &protocol), net.heads(2, &protocol));
    // A new session starts without certificates: the first attestation carries it again.
    net.disconnect(2, school_end);
    net.write(2, protocol, "sheet-5", "9 незачёт");
    net.connect(2, 1);
    let with: usize = net
        .certs_carried
        .iter()
        .filter(|(to, with)| *to == 1 && *with)
        .count();
    assert_eq!(with, 2);
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    assert_eq!(net.heads(1, &protocol), net.heads(2, &protocol));
}

/// A МОУО hub engine with one school connected as peer 1; its outputs so far drained.
fn hub_with_school() -> (Engine, NodeIdentity) {
    let ca = FixedCa::default();
    let key = SigningKey::from_bytes(&[9; 32]);
    let mut hub = Engine::new(
        moyo("4201"),
        key.clone(),
        ca.issue(moyo("4201"), &key),
        Box::new(ca),
    );
    let peer = school("4201", "420101");
    hub.handle(
        1_000,
        Input::Connected {
            peer: 1,
            identity: peer,
            wire: crate::sync::wire::WIRE_VERSION,
            link: crate::sync::Link::Quic,
        },
    );
    while hub.poll_output().is_some() {}
    (hub, peer)
}

/// Feeds `frame` from peer `peer` and returns what the engine put out.
fn feed(engine: &mut Engine, peer: PeerId, now_ms: i64, frame: &Frame) -> Vec<Output> {
    engine.handle(
        now_ms,
        Input::Received {
            peer,
            bytes: &frame.encode(),
        },
    );
    std::iter::from_fn(|| engine.poll_output()).collect()
}

/// The bounds of the design (`docs/design.md`), written out: unfinished fragmented frames per
/// peer, refused messages stored per node and hour, new documents per node and interval.
const UNFINISHED_FRAMES: u32 = 8;
const STORED_PER_HOUR: u32 = 32;
const NEW_DOCS_PER_INTERVAL: usize = 4096;

fn closes(outputs: &[Output]) -> Vec<CloseReason> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Close { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Hardening item 5: empty fragments of fresh frames, and a fragment claiming a frame of 4
/// billion parts, are bounded: the peer is closed, not remembered without end.
#[test]
fn unfinished_fragments_are_bounded_by_count_as_well_as_bytes() {
    let (mut hub, _) = hub_with_school();
    let empty = |id: u32| Frame::Fragment {
        id,
        index: 0,
        total: 2,
        bytes: Vec::new(),
    };
    for id in 0..UNFINISHED_FRAMES {
        assert!(
            closes(&feed(&mut hub, 1, 2_000, &empty(id))).is_empty(),
            "{id}"
        );
    }
    let closed = closes(&feed(&mut hub, 1, 2_000, &empty(999)));
    assert_eq!(closed, [CloseReason::FragmentedFrames]);
    let (mut hub, _) = hub_with_school();
    let huge = Frame::Fragment {
        id: 1,
        index: 0,
        total: u32::MAX,
        bytes: vec![0; 16],
    };
    assert_eq!(
        closes(&feed(&mut hub, 1, 2_000, &huge)),
        [CloseReason::FragmentsPastFrameMax]
    );
}

/// Hardening item 5: a node connecting again replaces its older connection, so it never holds
/// two sessions (and two fragment budgets) at once.
#[test]
fn a_second_connection_from_the_same_node_replaces_the_first() {
    let (mut hub, school) = hub_with_school();
    hub.handle(
        2_000,
        Input::Connected {
            peer: 2,
            identity: school,
            wire: crate::sync::wire::WIRE_VERSION,
            link: crate::sync::Link::Quic,
        },
    );
    let out: Vec<Output> = std::iter::from_fn(|| hub.poll_output()).collect();
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Close {
                peer: 1,
                reason: CloseReason::Replaced
            }
        )),
        "the older connection is closed"
    );
    let connected: Vec<_> = hub.peers().collect();
    assert_eq!(connected.len(), 1, "{connected:?}");
}

/// Hardening item 5: refused messages are all refused and counted, but stored (a durable
/// write each) at most `QUARANTINES_STORED_PER_HOUR_MAX` times an hour per node, each with its
/// hash and length and no more than `QUARANTINE_KEPT_BYTES_MAX` of its bytes.
#[test]
fn refused_messages_are_stored_within_a_cap_and_named_by_their_hash() {
    let (mut hub, _) = hub_with_school();
    let roster = doc("roster", "4201", "420102");
    let refused = Frame::Sync {
        doc: roster,
        message: vec![7; 200_000],
        attestations: vec![],
    };
    let mut stored = Vec::new();
    let sent = STORED_PER_HOUR + 10;
    for i in 0..sent {
        for o in feed(&mut hub, 1, 2_000 + i64::from(i), &refused) {
            if let Output::Persist(Persist::Quarantine {
                sha256, len, bytes, ..
            }) = o
            {
                stored.push((sha256, len, bytes.len()));
            }
        }
    }
    assert_eq!(hub.stats().messages_quarantined, u64::from(sent));
    assert_eq!(stored.len(), usize::try_from(STORED_PER_HOUR).unwrap());
    let whole = vec![7; 200_000];
    let expected: [u8; 32] = Sha256::digest(&whole).into();
    assert!(
        stored
            .iter()
            .all(|s| *s == (expected, whole.len(), 64 * 1024)),
        "{:?}",
        stored.first().map(|s| (s.1, s.2))
    );
    // An hour later they are stored again, and the audit log says how many were not.
    let later = feed(&mut hub, 1, 2_000 + 3_600_000, &refused);
    assert!(
        later
            .iter()
            .any(|o| matches!(o, Output::Persist(Persist::Quarantine { .. })))
    );
    let audit: Vec<&str> = later
        .iter()
        .filter_map(|o| match o {
            Output::Persist(Persist::Audit { text, .. }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        audit.iter().any(|t| t.contains(
            ": 10 more refused messages in the hour from 2000 ms were counted, not stored"
        )),
        "{audit:?}"
    );
}

/// Hardening item 5: a doc list naming the most documents a list may costs one audit line for
/// those not shared, and starts at most `NEW_DOCS_PER_INTERVAL` new ones per summary interval.
#[test]
fn a_long_doc_list_costs_bounded_audit_and_bounded_new_documents() {
    let (mut hub, _) = hub_with_school();
    let exam_days = |n: usize| -> Vec<DocId> {
        (0..n)
            .map(|i| {
                let day = 1 + (i % 28);
                let month = 1 + (i / 28) % 12;
                let year = 2001 + i / (28 * 12);
                format!("protocol/4201/420101/is-{year}-{month:02}-{day:02}")
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let own = exam_days(NEW_DOCS_PER_INTERVAL + 500);
    let others: Vec<DocId> = (0..wire::DOC_LIST_ENTRIES_MAX - own.len())
        .map(|i| {
            format!("roster/4201/{}/is-2024-02-14", 430_000 + i)
                .parse()
                .unwrap()
        })
        .collect();
    let entries: Vec<(DocId, [u8; 8])> = own.iter().chain(&others).map(|d| (*d, [1; 8])).collect();
    let out = feed(
        &mut hub,
        1,
        2_000,
        &Frame::DocList {
            bucket_count: 1,
            buckets: vec![],
            entries,
        },
    );
    let audit_lines = out
        .iter()
        .filter(|o| matches!(o, Output::Persist(Persist::Audit { .. })))
        .count();
    assert!(audit_lines <= 2, "{audit_lines} audit lines");
    assert!(closes(&out).is_empty(), "{:?}", closes(&out));
    assert_eq!(hub.doc_ids().count(), NEW_DOCS_PER_INTERVAL);
}

/// Hardening item 5: sync messages naming documents this node does not hold count against the
/// same allowance as doc lists, by node: reconnecting does not renew it.
#[test]
fn sync_messages_for_new_documents_share_the_allowance_across_reconnects() {
    let (mut hub, school) = hub_with_school();
    let opening = automerge::sync::SyncDoc::generate_sync_message(
        &Automerge::new(),
        &mut automerge::sync::State::new(),
    )
    .unwrap()
    .encode();
    let exam_day = |i: usize| -> DocId {
        let (day, month, year) = (1 + i % 28, 1 + (i / 28) % 12, 2001 + i / (28 * 12));
        format!("roster/4201/420101/is-{year}-{month:02}-{day:02}")
            .parse()
            .unwrap()
    };
    for i in 0..NEW_DOCS_PER_INTERVAL + 300 {
        if i == NEW_DOCS_PER_INTERVAL / 2 {
            // The school reconnects halfway.
            hub.handle(
                2_000,
                Input::Connected {
                    peer: 2,
                    identity: school,
                    wire: crate::sync::wire::WIRE_VERSION,
                    link: crate::sync::Link::Quic,
                },
            );
        }
        let peer = if i < NEW_DOCS_PER_INTERVAL / 2 { 1 } else { 2 };
        let frame = Frame::Sync {
            doc: exam_day(i),
            message: opening.clone(),
            attestations: vec![],
        };
        feed(&mut hub, peer, 2_000, &frame);
    }
    assert_eq!(hub.doc_ids().count(), NEW_DOCS_PER_INTERVAL);
    // The next interval takes more.
    feed(
        &mut hub,
        2,
        2_000 + SUMMARY_INTERVAL_MS,
        &Frame::Sync {
            doc: exam_day(NEW_DOCS_PER_INTERVAL + 1),
            message: opening,
            attestations: vec![],
        },
    );
    assert_eq!(hub.doc_ids().count(), NEW_DOCS_PER_INTERVAL + 1);
}

/// A school with no link writes its protocol to removable media; the РЦОИ takes it in,
/// judged as if the school had sent it. A bundle claimed for another school, or carrying a
/// change its author cannot be shown to have written, is not taken in.
#[test]
fn a_bundled_document_is_judged_like_one_received() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "14 зачёт");
    net.write(2, protocol, "sheet-2", "9 незачёт");
    let frame = net.nodes[2].bundle_frame(&protocol).unwrap();
    let school_identity = net.nodes[2].identity();
    assert!(net.nodes[0].receive_bundled(net.now_ms, school_identity, &frame));
    assert_eq!(
        net.read(0, &protocol, "sheet-2").as_deref(),
        Some("9 незачёт")
    );
    // Read again: nothing new, still held.
    assert!(net.nodes[0].receive_bundled(net.now_ms, school_identity, &frame));

    // Another school's node may not hold this protocol: refused, nothing taken.
    let mut fresh = region_net();
    let other = fresh.nodes[3].identity();
    assert!(!fresh.nodes[0].receive_bundled(fresh.now_ms, other, &frame));
    assert_eq!(fresh.read(0, &protocol, "sheet-1"), None);

    // A change the hub invented, bundled under the school's name: not taken in.
    let hub_key = net.keys[1].clone();
    let forged = forge(
        net.nodes[2].doc(&protocol).unwrap(),
        &hub_key,
        "sheet-3",
        "20 зачёт",
    );
    let message = message_of(forged.get_heads(), vec![forged.save()]);
    let Ok(Frame::Sync { attestations, .. }) = Frame::decode(&frame) else {
        panic!("the bundle's frame");
    };
    let bad = Frame::Sync {
        doc: protocol,
        message,
        attestations,
    }
    .encode();
    let mut fresh = region_net();
    assert!(!fresh.nodes[0].receive_bundled(fresh.now_ms, school_identity, &bad));
    assert_eq!(fresh.read(0, &protocol, "sheet-3"), None);
    // What the school wrote and attested still comes in with it.
    assert_eq!(
        fresh.read(0, &protocol, "sheet-1").as_deref(),
        Some("14 зачёт")
    );
}

/// The digest a document keeps is the digest of its heads once `changed` made it again; a
/// change that skips `changed` is caught at the next read in a debug build (the tests' build).
#[test]
fn a_kept_digest_follows_the_heads_and_a_skipped_refresh_is_caught() {
    let mut state = DocState::new(DocId::Directory, Automerge::new(), Vec::new());
    let empty: [u8; 32] = Sha256::digest(b"").into();
    assert_eq!(state.digest(), empty, "no heads: the digest of nothing");
    let mut tx = state.doc.transaction();
    tx.put(ROOT, "k", "v").unwrap();
    tx.commit();
    state.changed();
    let head = state.doc.get_heads()[0];
    assert_eq!(state.digest(), <[u8; 32]>::from(Sha256::digest(head.0)));
    let mut tx = state.doc.transaction();
    tx.put(ROOT, "k", "w").unwrap();
    tx.commit();
    if cfg!(debug_assertions) {
        let skipped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.digest()));
        assert!(
            skipped.is_err(),
            "a digest not made again after a change must not pass"
        );
    }
}

/// What a document's state keeps of its id for summaries is its id's text and the bucket the
/// wire puts it in, for every bucket count: the id's text is written out here, and the bucket
/// is worked out again from it by the wire's own `bucket_of`, whose answers for two ids are
/// written out too (the first two bytes of the SHA-256 of the id's text, big-endian, modulo
/// the count: 13105 for `directory`, 31345 for the protocol, as `sha256sum` gives them).
#[test]
fn a_kept_id_is_the_id_text_and_falls_in_the_wire_bucket() {
    assert_eq!(wire::bucket_of(&DocId::Directory, 256), 13105 % 256);
    assert_eq!(wire::bucket_of(&DocId::Directory, 7), 13105 % 7);
    let protocol = doc("protocol", "4201", "420101");
    assert_eq!(wire::bucket_of(&protocol, 256), 31345 % 256);
    let ids = [
        (DocId::Directory, "directory".to_owned()),
        (
            doc("protocol", "4201", "420101"),
            "protocol/4201/420101/is-2024-02-14".to_owned(),
        ),
        (
            doc("rcoi", "4234", "423417"),
            "rcoi/4234/423417/is-2024-02-14".to_owned(),
        ),
    ];
    for (id, text) in ids {
        let state = DocState::new(id, Automerge::new(), Vec::new());
        assert_eq!(&*state.id_text, text.as_str());
        for bucket_count in [1, 2, 7, 64, 256, u16::MAX] {
            assert_eq!(
                wire::bucket_in(state.bucket_key, bucket_count),
                wire::bucket_of(&id, bucket_count),
                "{text} in {bucket_count} buckets"
            );
        }
    }
}

/// A stored document that did not load is neither written here nor taken from a peer: what
/// would be stored after its bytes would not load either, and be lost at the next start. A load
/// that succeeds (a restore) lifts that.
#[test]
fn a_document_that_did_not_load_is_neither_written_nor_taken_from_peers() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    net.write(2, protocol, "sheet-1", "14 зачёт");
    let garbage = b"not an automerge document";
    assert!(net.nodes[1].load_doc(protocol, garbage, &[]).is_err());
    net.connect(2, 1);
    assert_eq!(
        net.read(1, &protocol, "sheet-1"),
        None,
        "not taken from the school"
    );
    assert!(net.nodes[1].doc(&protocol).is_none());

    // At the school, its own protocol: the change is refused with the reason.
    let results = doc("results", "4201", "420101");
    assert!(net.nodes[2].load_doc(results, garbage, &[]).is_err());
    let refused = net.nodes[2].change(net.now_ms, results, |tx| {
        tx.put(automerge::ROOT, "familiarised/p1", "yes")
            .map(|_| ())
    });
    assert!(
        matches!(refused, Err(EngineError::Unreadable { doc }) if doc == results),
        "{refused:?}"
    );
    // Loaded whole again: written as any document.
    let whole = Automerge::new().save();
    net.nodes[2].load_doc(results, &whole, &[]).unwrap();
    net.write(2, results, "familiarised/p1", "yes");
    assert_eq!(
        net.read(2, &results, "familiarised/p1").as_deref(),
        Some("yes")
    );
}

/// A document list longer than a receiver takes is sent in frames of whole buckets, each within
/// the bound and naming its buckets, together covering every entry once; a short one stays one
/// frame as it was.
#[test]
fn a_long_document_list_goes_in_frames_a_receiver_takes() {
    let bucket_count = 8u16;
    let buckets: Vec<u16> = (0..bucket_count).collect();
    let entries: Vec<(DocId, [u8; 8])> = (0..40u32)
        .map(|i| {
            let d: DocId = format!("roster/4201/420101/is-2024-02-{:02}", 1 + i % 28)
                .replace("420101", &format!("4201{:02}", i / 28 + 1))
                .parse()
                .unwrap();
            (d, [u8::try_from(i).unwrap(); 8])
        })
        .collect();
    let whole = split_doc_list(bucket_count, &buckets, entries.clone(), 40);
    assert_eq!(whole, vec![(buckets.clone(), entries.clone())]);
    let frames = split_doc_list(bucket_count, &buckets, entries.clone(), 12);
    assert!(frames.len() > 1, "{}", frames.len());
    let mut seen_buckets = Vec::new();
    let mut seen: Vec<(DocId, [u8; 8])> = Vec::new();
    for (bs, es) in &frames {
        assert!(es.len() <= 12, "{} entries", es.len());
        for (d, _) in es {
            assert!(
                bs.contains(&wire::bucket_of(d, bucket_count)),
                "{d} outside its frame's buckets"
            );
        }
        // Each frame decodes as a receiver reads it.
        let frame = Frame::DocList {
            bucket_count,
            buckets: bs.clone(),
            entries: es.clone(),
        };
        assert_eq!(Frame::decode(&frame.encode()).unwrap(), frame);
        seen_buckets.extend(bs.iter().copied());
        seen.extend(es.iter().cloned());
    }
    seen_buckets.sort_unstable();
    assert_eq!(seen_buckets, buckets, "every bucket once");
    seen.sort();
    let mut expected = entries;
    expected.sort();
    assert_eq!(seen, expected, "every entry once");
}

/// A school renews its certificate (same key; the old one revoked). A node taking the school's
/// older documents afresh from the hub (here the РЦОИ, new) gets them with the school's current
/// certificate, which the hub learnt from the school's later writes: with the certificate they
/// were stored with, every change would be refused as having no attestation by its author.
#[test]
fn a_renewed_certificate_goes_with_the_authors_older_attestations() {
    let mut net = Net::new();
    net.add(rcoi());
    net.add(moyo("4201"));
    let identity = school("4201", "420101");
    let s = net.add(identity);
    let protocol = doc("protocol", "4201", "420101");
    net.write(s, protocol, "sheet-1", "14 зачёт");
    let (to_hub, _) = net.connect(s, 1);
    net.disconnect(s, to_hub);
    // Renewal: the same key, a new certificate; the old one revoked. Past the 10 minutes the
    // hub's checks are remembered.
    let key = net.keys[s].clone();
    let old = net.ca.issue(identity, &key);
    let renewed = net.ca.issue_again(identity, &key, 1);
    net.ca.withdraw(&old);
    net.now_ms += 11 * 60_000;
    net.nodes[s] = Engine::new(identity, key, renewed, Box::new(net.ca.clone()));
    let results = doc("results", "4201", "420101");
    net.write(s, results, "delivered", "yes");
    net.connect(s, 1);
    assert_eq!(net.read(1, &results, "delivered").as_deref(), Some("yes"));
    net.connect(1, 0);
    assert_eq!(
        net.read(0, &protocol, "sheet-1").as_deref(),
        Some("14 зачёт"),
        "quarantined at the РЦОИ: {:?}",
        net.quarantined(0)
    );
}

/// A peer sending sync frames for documents it does not share with this node, a new one each
/// time, has each refused and counted, and grows no state on its connection.
#[test]
fn sync_frames_for_documents_not_shared_grow_no_state() {
    let (mut hub, _) = hub_with_school();
    let before = hub.stats().messages_quarantined;
    for n in 0..500 {
        // Another municipality's school: not shared with the hub of 4201 or this school.
        let other: DocId = format!("protocol/4299/4299{:02}/is-2024-02-14", n % 100)
            .replace("is-2024-02-14", &format!("is-2024-02-{:02}", 1 + n / 100))
            .parse()
            .unwrap();
        feed(
            &mut hub,
            1,
            2_000 + i64::from(n),
            &Frame::Sync {
                doc: other,
                message: Vec::new(),
                attestations: Vec::new(),
            },
        );
    }
    assert_eq!(hub.stats().messages_quarantined - before, 500);
    assert!(
        hub.peers[&1].docs.is_empty(),
        "{} documents' state on the connection",
        hub.peers[&1].docs.len()
    );
}

/// The РЦОИ writes a school's receipts with [`Engine::put_root`]: a few in a transaction, many
/// as a change built whole. Either way the change reaches the school through its hub with the
/// РЦОИ's attestation, and what the РЦОИ persisted loads back to the same document, where the
/// next change continues.
#[test]
fn puts_many_or_few_reach_the_school_and_reload_from_what_was_persisted() {
    let mut net = region_net();
    net.connect(2, 1);
    let (hub_side, _) = net.connect(1, 0);
    let receipts = doc("rcoi", "4201", "420101");
    let entries = |n: usize, value: &str| -> Vec<(String, ScalarValue)> {
        (0..n)
            .map(|i| (format!("receipt/{i:04}"), ScalarValue::from(value)))
            .collect()
    };
    // 60 puts into a new document (built), one over them (a transaction: 60 ops in the map),
    // then 30 over those (built again).
    for (n, value) in [
        (60, "invalid: подпись"),
        (1, "verified"),
        (30, "invalid: подпись"),
    ] {
        net.now_ms += 1;
        net.nodes[0]
            .put_root(net.now_ms, receipts, &entries(n, value))
            .unwrap();
        net.run();
    }
    for (key, value) in [
        ("receipt/0000", "invalid: подпись"),
        ("receipt/0001", "invalid: подпись"),
        ("receipt/0059", "invalid: подпись"),
    ] {
        assert_eq!(net.read(2, &receipts, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(net.heads(2, &receipts), net.heads(0, &receipts));
    assert!(net.quarantined(1).is_empty(), "{:?}", net.quarantined(1));
    assert!(net.quarantined(2).is_empty(), "{:?}", net.quarantined(2));
    // Every key holds one value: each put replaced the one before.
    let held = net.nodes[2].doc(&receipts).unwrap();
    assert_eq!(held.get_all(ROOT, "receipt/0000").unwrap().len(), 1);

    let restored = net.restored(0, rcoi(), receipts);
    assert_eq!(
        restored.doc(&receipts).unwrap().get_heads(),
        net.heads(0, &receipts)
    );
    net.disconnect(1, hub_side);
    net.nodes[0] = restored;
    net.now_ms += 1;
    net.nodes[0]
        .put_root(net.now_ms, receipts, &entries(40, "verified"))
        .unwrap();
    net.connect(1, 0);
    assert_eq!(
        net.read(2, &receipts, "receipt/0039").as_deref(),
        Some("verified")
    );
    assert!(net.quarantined(2).is_empty(), "{:?}", net.quarantined(2));
}

/// What a hub persists of the changes it takes in (their own bytes, when they are all it holds
/// unsaved) loads back to the document it holds: a catch-up of several changes, then live ones.
#[test]
fn what_a_hub_persists_of_changes_taken_in_loads_back_to_what_it_holds() {
    let mut net = region_net();
    let protocol = doc("protocol", "4201", "420101");
    for i in 0..5 {
        net.write(2, protocol, &format!("sheet-{i}"), "14 зачёт");
    }
    net.connect(2, 1);
    net.write(2, protocol, "sheet-5", "9 незачёт");
    net.write(2, protocol, "sheet-1", "15 зачёт");
    let (saved, _) = net.stored(1, protocol);
    let loaded = Automerge::load(&saved).unwrap();
    assert!(loaded.get_missing_deps(&[]).is_empty());
    assert_eq!(loaded.get_heads(), net.heads(1, &protocol));
    assert_eq!(loaded.get_heads(), net.heads(2, &protocol));
    assert_eq!(
        loaded
            .get(ROOT, "sheet-1")
            .unwrap()
            .map(|(v, _)| v.to_string()),
        Some("\"15 зачёт\"".to_owned())
    );
}
