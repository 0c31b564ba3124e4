//! A hub restarted after a school's certificate was revoked (issue 17, item 6). Before, loading
//! the store re-checked every stored attestation against today's revocation list and aborted on
//! the first failure: revoking one compromised school stopped every hub holding its changes
//! from starting. Now the hub starts, keeps the school's documents, sets the attestation aside
//! with an audit line, and says so in `status`. (An attestation made before the revocation still
//! counts: stored attestations are judged at their own time.)
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use giasync_node::admin;
use giasync_node::app::{Command, Context};
use giasync_shared::codes::RoomCode;
use giasync_shared::sync::DocId;

const EXAM: &str = "is-2024-02-14";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_starts_after_a_school_it_holds_was_revoked() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 47_600, 1);
    let hub_config = giasync_tests::node_config(dir.path(), "4201", &[]);
    let hub = giasync_node::service::start(hub_config.clone())
        .await
        .unwrap();
    let school_config = giasync_tests::node_config(dir.path(), "420101", &[hub.listen.unwrap()]);
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();
    let school_ = school_config.clone();
    tokio::task::spawn_blocking(move || {
        let rooms = Command::Rooms {
            exam: EXAM.parse().unwrap(),
            rooms: vec![(RoomCode::new("101").unwrap(), 30)],
        };
        assert!(admin::send_to_running(&school_, &rooms).unwrap().ok);
    })
    .await
    .unwrap();
    let roster: DocId = format!("roster/4201/420101/{EXAM}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Until the hub holds the room (a document it only heard of is held empty).
    let has_room = |doc: Option<automerge::Automerge>| {
        doc.is_some_and(|d| giasync_shared::content::rooms(&d).contains_key("101"))
    };
    while !has_room(hub.read(roster).await) {
        assert!(
            Instant::now() < deadline,
            "the roster never reached the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    school.stop();
    hub.stop();

    // The region revokes the school's certificate as of an hour ago (its machine was stolen
    // then), so even judged at their own time the school's attestations no longer count, and
    // hands the hub the new list.
    let school_cert =
        giasync_certs::show::certs_from_pem(&std::fs::read(&school_config.tls.cert).unwrap())
            .unwrap()
            .remove(0);
    let serial = giasync_certs::show::summarize_der(&school_cert)
        .unwrap()
        .serial;
    let mut pki = giasync_certs::pki::Pki::open(&dir.path().join("pki")).unwrap();
    let stolen_at = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    pki.revoke(serial, "the school's machine was stolen", stolen_at)
        .unwrap();
    std::fs::copy(dir.path().join("pki").join("crl.pem"), &hub_config.tls.crl).unwrap();

    // The hub starts again (once the old engine thread let the store go) and holds the roster.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hub = loop {
        match giasync_node::service::start(hub_config.clone()).await {
            Ok(hub) => break hub,
            Err(e) => {
                assert!(Instant::now() < deadline, "the hub does not start: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let held = has_room(hub.read(roster).await);
    let hub_ = hub_config.clone();
    let status = tokio::task::spawn_blocking(move || {
        let context = Context::load(&hub_).unwrap();
        admin::execute(&hub_, &context, &Command::Status, giasync_tests::now_ms()).unwrap()
    })
    .await
    .unwrap()
    .status
    .unwrap();
    assert!(status.refused_on_load >= 1, "{status:?}");
    assert!(held, "the school's roster was dropped");
    hub.stop();
}
