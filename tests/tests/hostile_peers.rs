//! Hostile peers against a real РЦОИ node (its own store, real QUIC on loopback): a МОУО hub
//! that forges a change under a school's name, a school asking for another school's roster, and
//! a school writing what the РЦОИ vouches for.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use automerge::sync::SyncDoc;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ROOT, ReadDoc};
use giasync_certs::verify::CaVerifier;
use giasync_node::person::load_node_key as load_key;
use giasync_node::transport::{self, TlsMaterial};
use giasync_shared::config::NodeConfig;
use giasync_shared::sync::attest::Attestation;
use giasync_shared::sync::attest::actor_for;
use giasync_shared::sync::wire::Frame;
use giasync_shared::sync::{DocId, Engine, Output, Persist};

fn region(dir: &Path) {
    giasync_tests::demo_region(dir, 46_500, 2);
}

fn config(dir: &Path, code: &str) -> NodeConfig {
    giasync_tests::node_config(dir, code, &[])
}

/// A bare connection to the РЦОИ as the node whose files are in `dir/code`, with its frame
/// stream each way.
async fn connect_as(
    dir: &Path,
    code: &str,
    rcoi: std::net::SocketAddr,
) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let config = config(dir, code);
    let material = TlsMaterial::from_config(&config.tls).unwrap();
    let endpoint = transport::endpoint("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let peer = transport::connect(
        &endpoint,
        &material,
        rcoi,
        "127.0.0.1",
        giasync_shared::codes::OrgCode::Rcoi("42".parse().unwrap()),
    )
    .await
    .unwrap();
    let send = peer.connection.open_uni().await.unwrap();
    let recv = peer.connection.accept_uni().await.unwrap();
    std::mem::forget(endpoint);
    (peer.connection, send, recv)
}

async fn send_frame(send: &mut quinn::SendStream, frame: &Frame) {
    let bytes = frame.encode();
    send.write_all(&u32::try_from(bytes.len()).unwrap().to_be_bytes())
        .await
        .unwrap();
    send.write_all(&bytes).await.unwrap();
}

/// An automerge sync message carrying every change of `doc` outright, as a peer (or a relay
/// forging one) could send it.
fn message_with_all_changes(doc: &automerge::Automerge) -> Vec<u8> {
    automerge::sync::Message {
        heads: doc.get_heads(),
        need: vec![],
        have: vec![],
        changes: doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode()
}

/// Frames the РЦОИ sends within `wait`.
async fn frames_for(recv: &mut quinn::RecvStream, wait: Duration) -> Vec<Frame> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut len = [0u8; 4];
        match tokio::time::timeout_at(deadline, recv.read_exact(&mut len)).await {
            Ok(Ok(())) => {}
            _ => return out,
        }
        let mut bytes = vec![0u8; u32::from_be_bytes(len) as usize];
        if recv.read_exact(&mut bytes).await.is_err() {
            return out;
        }
        out.push(Frame::decode(&bytes).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_forging_a_schools_change_is_quarantined_at_the_rcoi() {
    let dir = tempfile::tempdir().unwrap();
    region(dir.path());
    let rcoi = giasync_node::service::start(config(dir.path(), "42"))
        .await
        .unwrap();
    let addr = rcoi.listen.unwrap();

    // The school's genuine change and attestation, made by an engine holding the school's key.
    let school_config = config(dir.path(), "420101");
    let school_material = TlsMaterial::from_config(&school_config.tls).unwrap();
    let verifier = CaVerifier::from_pem(
        &std::fs::read(&school_config.tls.ca).unwrap(),
        &std::fs::read(&school_config.tls.crl).unwrap(),
        "42".parse().unwrap(),
    )
    .unwrap();
    let school_key = load_key(&school_config.tls.key).unwrap();
    let mut school = Engine::new(
        school_material.identity,
        school_key.clone(),
        school_material.cert_chain[0].to_vec(),
        Box::new(verifier),
    );
    let protocol: DocId = "protocol/4201/420101/is-2025-02-12".parse().unwrap();
    school
        .change(1_739_340_000_000, protocol, |tx| {
            tx.put(ROOT, "sheet-1", "8 незачёт").map(|_| ())
        })
        .unwrap();
    let attestation = std::iter::from_fn(|| school.poll_output())
        .find_map(|o| match o {
            Output::Persist(Persist::Attestation { cert, bytes, .. }) => Some((cert, bytes)),
            _ => None,
        })
        .unwrap();

    // The hub rewrites the sheet under the school's actor and sends both changes with the
    // school's attestation.
    let mut forged = school.doc(&protocol).unwrap().clone();
    forged.set_actor(actor_for(&school_key.verifying_key().to_bytes()));
    let mut tx = forged.transaction();
    tx.put(ROOT, "sheet-1", "18 зачёт").unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));

    let (_connection, mut send, mut recv) = connect_as(dir.path(), "4201", addr).await;
    send_frame(
        &mut send,
        &Frame::Sync {
            doc: protocol,
            message: message_with_all_changes(&forged),
            attestations: vec![attestation],
        },
    )
    .await;
    let _ = frames_for(&mut recv, Duration::from_millis(500)).await;

    // The forged change is refused and the message quarantined; the school's genuine change,
    // which the attestation covers, is applied (a change is refused, not the message).
    let status = rcoi.status().await.unwrap();
    assert_eq!(status.quarantined, 1, "{status:?}");
    let held = rcoi.read(protocol).await.unwrap();
    let value = held.get(ROOT, "sheet-1").unwrap().unwrap().0;
    assert_eq!(value.as_str(), Some("8 незачёт"));
    assert_eq!(held.get_changes(&[]).len(), 1, "only the genuine change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_asking_for_another_schools_roster_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    region(dir.path());
    let rcoi = giasync_node::service::start(config(dir.path(), "42"))
        .await
        .unwrap();
    let addr = rcoi.listen.unwrap();
    let roster: DocId = "roster/4201/420102/is-2025-02-12".parse().unwrap();
    rcoi.change(roster, |tx| {
        tx.put(ROOT, "p/1/surname", "Петров").map(|_| ())
    })
    .await
    .unwrap();

    let (_connection, mut send, mut recv) = connect_as(dir.path(), "420101", addr).await;
    // Ask outright: an automerge opening for the other school's roster, and a doc list naming it.
    let opening = automerge::Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap();
    send_frame(
        &mut send,
        &Frame::DocList {
            bucket_count: 1,
            buckets: vec![],
            entries: vec![(roster, [0; 8])],
        },
    )
    .await;
    send_frame(
        &mut send,
        &Frame::Sync {
            doc: roster,
            message: opening.encode(),
            attestations: vec![],
        },
    )
    .await;
    let frames = frames_for(&mut recv, Duration::from_millis(800)).await;
    assert!(
        !frames.is_empty(),
        "the РЦОИ talks to the school (its summary)"
    );
    for frame in &frames {
        match frame {
            Frame::Sync { doc, .. } => {
                assert_ne!(*doc, roster, "the РЦОИ sent the other school's roster")
            }
            Frame::DocList { entries, .. } => assert!(entries.iter().all(|(d, _)| *d != roster)),
            _ => {}
        }
    }
    assert_eq!(
        rcoi.status().await.unwrap().quarantined,
        1,
        "the request is quarantined and audited"
    );
}

/// Hostile-peers item 1: a school receipts its own sheet and publishes its own results, once in
/// its results document (which it may write) and once in its РЦОИ document (which only the
/// РЦОИ may write). The second is refused whole at the РЦОИ; the first is stored, and counts for
/// nothing: the РЦОИ's receipts, publications and look-up read only its own document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_writing_what_the_rcoi_vouches_for_is_refused_or_ignored() {
    let dir = tempfile::tempdir().unwrap();
    region(dir.path());
    let rcoi = giasync_node::service::start(config(dir.path(), "42"))
        .await
        .unwrap();
    let addr = rcoi.listen.unwrap();
    let school_config = config(dir.path(), "420101");
    let material = TlsMaterial::from_config(&school_config.tls).unwrap();
    let key = load_key(&school_config.tls.key).unwrap();
    let cert = material.cert_chain[0].to_vec();
    let hash = "ab".repeat(32);
    // In the results document, through the school's own engine: it may write there.
    let verifier = CaVerifier::from_pem(
        &std::fs::read(&school_config.tls.ca).unwrap(),
        &std::fs::read(&school_config.tls.crl).unwrap(),
        "42".parse().unwrap(),
    )
    .unwrap();
    let mut school = Engine::new(
        material.identity,
        key.clone(),
        cert.clone(),
        Box::new(verifier),
    );
    let results: DocId = "results/4201/420101/is-2025-02-12".parse().unwrap();
    let now = 1_739_340_000_000;
    school
        .change(now, results, |tx| {
            tx.put(ROOT, format!("receipt/{hash}"), "verified")?;
            tx.put(
                ROOT,
                "published/7",
                automerge::ScalarValue::Bytes(vec![1; 64]),
            )
            .map(|_| ())
        })
        .unwrap();
    let results_attestation = std::iter::from_fn(|| school.poll_output())
        .find_map(|o| match o {
            Output::Persist(Persist::Attestation { cert, bytes, .. }) => Some((cert, bytes)),
            _ => None,
        })
        .unwrap();
    // In the РЦОИ document: the school's engine refuses, so a modified node writes it raw and
    // attests it with the school's key.
    let rcoi_doc: DocId = "rcoi/4201/420101/is-2025-02-12".parse().unwrap();
    assert!(school.change(now, rcoi_doc, |_| Ok(())).is_err());
    let mut forged = automerge::Automerge::new();
    forged.set_actor(actor_for(&key.verifying_key().to_bytes()));
    let mut tx = forged.transaction();
    tx.put(ROOT, format!("receipt/{hash}"), "verified").unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));
    let forged_attestation = Attestation::sign(rcoi_doc, forged.get_heads(), now, &key);
    let (_connection, mut send, mut recv) = connect_as(dir.path(), "420101", addr).await;
    send_frame(
        &mut send,
        &Frame::Sync {
            doc: results,
            message: message_with_all_changes(school.doc(&results).unwrap()),
            attestations: vec![results_attestation],
        },
    )
    .await;
    send_frame(
        &mut send,
        &Frame::Sync {
            doc: rcoi_doc,
            message: message_with_all_changes(&forged),
            attestations: vec![(cert, forged_attestation.as_bytes().to_vec())],
        },
    )
    .await;
    let _ = frames_for(&mut recv, Duration::from_millis(800)).await;

    let status = rcoi.status().await.unwrap();
    assert_eq!(
        status.quarantined, 1,
        "the write into the РЦОИ document: {status:?}"
    );
    assert!(
        rcoi.read(rcoi_doc).await.is_none_or(|d| d
            .get(ROOT, format!("receipt/{hash}"))
            .ok()
            .flatten()
            .is_none()),
        "nothing of the forged РЦОИ document is applied"
    );
    let held = rcoi
        .read(results)
        .await
        .expect("the school may write its results document");
    assert!(held.get(ROOT, format!("receipt/{hash}")).unwrap().is_some());
    // What the РЦОИ reports as receipted and published is its own: none of the school's.
    let rcoi_config = config(dir.path(), "42");
    let status = tokio::task::spawn_blocking(move || {
        giasync_node::admin::send_to_running(&rcoi_config, &giasync_node::app::Command::Status)
            .unwrap()
            .status
            .unwrap()
    })
    .await
    .unwrap();
    let school_status = status
        .schools
        .iter()
        .find(|s| s.school == "420101")
        .expect("the РЦОИ holds the school's results document");
    assert_eq!(
        (
            school_status.sheets_at_rcoi,
            school_status.results_published
        ),
        (0, 0),
        "{school_status:?}"
    );
}

/// This process's resident memory now, in MiB (Linux).
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// How far the РЦОИ's memory may grow while one peer floods it: one connection's fragment budget
/// (`PEER_FRAGMENT_BYTES_MAX`, 64 MiB, room for the largest frame twice), its inbox budget
/// (`PEER_INBOX_BYTES_MAX`, about 1 MiB) and the engine's working set, with room for the
/// allocator. Without the bounds of hardening item 5 the same flood grows it by 300 MiB in 5 s.
const FLOOD_RSS_GROWTH_MIB_MAX: u64 = 128;
/// Refused messages stored per peer node and hour, written out from the design
/// (`QUARANTINES_STORED_PER_HOUR_MAX`).
const QUARANTINES_STORED_PER_HOUR: u64 = 32;

/// Hardening item 5: one school floods the РЦОИ with unfinished fragments (fresh ids, empty
/// and full) and refused messages for `GIASYNC_FLOOD_SECONDS` (5 by default), reconnecting
/// whenever it is closed. The РЦОИ's memory stays within `FLOOD_RSS_GROWTH_MIB_MAX` of where it
/// started, and refused messages are stored at most `QUARANTINES_STORED_PER_HOUR_MAX` times:
/// nothing else is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_the_rcoi_is_bounded() {
    let seconds: u64 = std::env::var("GIASYNC_FLOOD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    region(dir.path());
    let rcoi = giasync_node::service::start(config(dir.path(), "42"))
        .await
        .unwrap();
    let addr = rcoi.listen.unwrap();
    let before = rss_mib();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let other_roster: DocId = "roster/4201/420102/is-2025-02-12".parse().unwrap();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        while tokio::time::Instant::now() < deadline {
            peak = peak.max(rss_mib());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak
    });
    let (mut connections, mut frames_sent) = (0u64, 0u64);
    let (mut id, mut part) = (0u32, 0u32);
    while tokio::time::Instant::now() < deadline {
        let (connection, mut send, _recv) = connect_as(dir.path(), "420101", addr).await;
        connections += 1;
        while tokio::time::Instant::now() < deadline && connection.close_reason().is_none() {
            id = id.wrapping_add(1);
            // Connections take turns: fresh empty fragments, or filling the byte budget.
            let kind = if id % 3 == 2 { 2 } else { connections % 2 };
            let frame = match kind {
                0 => Frame::Fragment {
                    id,
                    index: 0,
                    total: 2,
                    bytes: Vec::new(),
                },
                // Parts of 8 frames of 512 fragments that never finish: the byte budget.
                1 => {
                    part = part.wrapping_add(1);
                    Frame::Fragment {
                        id: 1_000_000 + (part / 511) % 8,
                        index: part % 511,
                        total: 512,
                        bytes: vec![1; giasync_shared::sync::wire::FRAGMENT_BYTES],
                    }
                }
                _ => Frame::Sync {
                    doc: other_roster,
                    message: vec![7; 60_000],
                    attestations: vec![],
                },
            };
            let bytes = frame.encode();
            let len = u32::try_from(bytes.len()).unwrap().to_be_bytes();
            let wrote = tokio::time::timeout(Duration::from_secs(1), async {
                send.write_all(&len).await?;
                send.write_all(&bytes).await
            })
            .await;
            if !matches!(wrote, Ok(Ok(()))) {
                break;
            }
            frames_sent += 1;
        }
    }
    let peak = sampler.await.unwrap();
    let status = rcoi.status().await.unwrap();
    let growth = peak.saturating_sub(before);
    println!(
        "flood: {seconds} s, {connections} connections, {frames_sent} frames sent, \
         {} refused, RSS {before} MiB before, peak {peak} MiB (+{growth})",
        status.quarantined
    );
    assert!(
        growth <= FLOOD_RSS_GROWTH_MIB_MAX,
        "the РЦОИ grew by {growth} MiB"
    );
    assert!(frames_sent > 100 && connections > 1, "the flood ran");
    // What is stored: at most the hourly cap of refused messages for this school.
    let rcoi_config = config(dir.path(), "42");
    rcoi.stop();
    let mut store = None;
    for _ in 0..100 {
        match giasync_node::store::Store::open(&rcoi_config.node.store) {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let store = store.expect("the stopped node's store opens");
    assert!(
        store.quarantined().unwrap() <= QUARANTINES_STORED_PER_HOUR,
        "{} stored",
        store.quarantined().unwrap()
    );
}
