//! A region's nodes in one process over real QUIC on loopback, each with its own redb store:
//! a school's changes reach the РЦОИ through its МОУО hub, a school falls back to the РЦОИ when
//! its hub is down, and a restarted node resumes from its store.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use giasync_node::run::NodeHandle;
use giasync_shared::config::NodeConfig;
use giasync_shared::sync::DocId;

fn region(dir: &Path) {
    giasync_tests::demo_region(dir, 46_000, 2);
}

fn config(dir: &Path, code: &str, upstreams: &[SocketAddr]) -> NodeConfig {
    giasync_tests::node_config(dir, code, upstreams)
}

fn protocol() -> DocId {
    "protocol/4201/420101/is-2024-02-14".parse().unwrap()
}

async fn eventually_reads(node: &NodeHandle, doc: DocId, key: &str, expected: &str) {
    for _ in 0..200 {
        if let Some(d) = node.read(doc).await
            && d.get(ROOT, key)
                .ok()
                .flatten()
                .and_then(|(v, _)| v.as_str().map(str::to_owned))
                == Some(expected.to_owned())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never read {key} = {expected} in {doc}", node.identity);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schools_sheet_reaches_the_rcoi_through_its_hub_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    region(dir.path());
    let rcoi = giasync_node::service::start(config(dir.path(), "42", &[]))
        .await
        .unwrap();
    let rcoi_addr = rcoi.listen.unwrap();
    let hub = giasync_node::service::start(config(dir.path(), "4201", &[rcoi_addr]))
        .await
        .unwrap();
    let hub_addr = hub.listen.unwrap();
    let school = giasync_node::service::start(config(dir.path(), "420101", &[hub_addr, rcoi_addr]))
        .await
        .unwrap();
    school
        .change(protocol(), |tx| {
            tx.put(ROOT, "sheet-1", "14 зачёт").map(|_| ())
        })
        .await
        .unwrap();
    eventually_reads(&hub, protocol(), "sheet-1", "14 зачёт").await;
    eventually_reads(&rcoi, protocol(), "sheet-1", "14 зачёт").await;
    // The other school never receives it, though it syncs through the same hub: the РЦОИ
    // writes into the other school's roster, which reaches it through the hub that holds the
    // first school's protocol, and the other school's own sheet reaches the hub.
    let other = giasync_node::service::start(config(dir.path(), "420102", &[hub_addr]))
        .await
        .unwrap();
    let other_roster: DocId = "roster/4201/420102/is-2024-02-14".parse().unwrap();
    let other_protocol: DocId = "protocol/4201/420102/is-2024-02-14".parse().unwrap();
    rcoi.change(other_roster, |tx| {
        tx.put(ROOT, "note", "из РЦОИ").map(|_| ())
    })
    .await
    .unwrap();
    other
        .change(other_protocol, |tx| {
            tx.put(ROOT, "sheet-2", "11 зачёт").map(|_| ())
        })
        .await
        .unwrap();
    eventually_reads(&other, other_roster, "note", "из РЦОИ").await;
    eventually_reads(&hub, other_protocol, "sheet-2", "11 зачёт").await;
    assert!(other.read(protocol()).await.is_none());
    assert_eq!(rcoi.status().await.unwrap().quarantined, 0);

    // Restart the РЦОИ from its store on a new address: the sheet is there.
    rcoi.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restarted = giasync_node::service::start(config(dir.path(), "42", &[]))
        .await
        .unwrap();
    eventually_reads(&restarted, protocol(), "sheet-1", "14 зачёт").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_falls_back_to_the_rcoi_when_its_hub_is_down() {
    let dir = tempfile::tempdir().unwrap();
    region(dir.path());
    let rcoi = giasync_node::service::start(config(dir.path(), "42", &[]))
        .await
        .unwrap();
    let rcoi_addr = rcoi.listen.unwrap();
    // Nothing answers at the hub's address.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let school = giasync_node::service::start(config(
        dir.path(),
        "420101",
        &[silent.local_addr().unwrap(), rcoi_addr],
    ))
    .await
    .unwrap();
    school
        .change(protocol(), |tx| {
            tx.put(ROOT, "sheet-1", "9 незачёт").map(|_| ())
        })
        .await
        .unwrap();
    eventually_reads(&rcoi, protocol(), "sheet-1", "9 незачёт").await;
}
