//! Hostile peers against a real РЦОИ node (its own store, real QUIC on loopback): a МОУО hub
//! that forges a change under a school's name, and a school asking for another school's roster.
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
    let message = automerge::sync::Message {
        heads: forged.get_heads(),
        need: vec![],
        have: vec![],
        changes: forged
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    let (_connection, mut send, mut recv) = connect_as(dir.path(), "4201", addr).await;
    send_frame(
        &mut send,
        &Frame::Sync {
            doc: protocol,
            message: message.encode(),
            attestations: vec![attestation],
        },
    )
    .await;
    let _ = frames_for(&mut recv, Duration::from_millis(500)).await;

    let status = rcoi.status().await.unwrap();
    assert_eq!(status.quarantined, 1, "{status:?}");
    let held = rcoi.read(protocol).await;
    assert!(
        held.is_none_or(|d| d.get(ROOT, "sheet-1").ok().flatten().is_none()),
        "nothing of the forged message is applied"
    );
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
