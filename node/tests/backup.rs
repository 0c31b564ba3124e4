//! Back up a running school node while staff enter data, lose the node (`kill -9`), enrol a
//! new key, restore the backup: the node catches up with its МОУО hub and holds everything it
//! acknowledged, including what it entered after the backup, and what it enters next reaches
//! the hub without a conflict.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use giasync_certs::enrol::{Register, sign};
use giasync_certs::pki::{Pki, Validity};
use giasync_node::admin;
use giasync_node::app::{Command as Request, Context};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::ExamId;

mod common;
use common::{demo_region, node, row, start};

/// Enters participants `ids` at the running school one request each, as staff do; the ids
/// the node acknowledged (all of them, or the test fails).
fn enter(school: &NodeConfig, exam: ExamId, ids: std::ops::Range<usize>) -> Vec<usize> {
    ids.inspect(|&i| {
        let r = admin::send_to_running(
            school,
            &Request::RosterImport {
                exam,
                rows: vec![row(i)],
            },
        )
        .unwrap();
        assert!(r.ok, "{}", r.message);
    })
    .collect()
}

/// Waits until the school's hub is connected and has confirmed every shared document.
fn until_hub_holds_all(school: &NodeConfig) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = admin::send_to_running(school, &Request::Status)
            .ok()
            .and_then(|r| r.status);
        let synced = status.as_ref().is_some_and(|s| {
            s.peers
                .iter()
                .any(|p| p.peer.contains("4201") && p.connected && p.docs_pending == 0)
        });
        if synced {
            return;
        }
        assert!(Instant::now() < deadline, "never in sync: {status:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restored_node_catches_up_and_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let region = dir.path().join("region");
    demo_region(&region, 49_400, 1);
    let school_path = region.join("420101").join("node.toml");
    let school = NodeConfig::load(&school_path).unwrap();
    let context = Context::load(&school).unwrap();
    let exam: ExamId = "is-2025-02-12".parse().unwrap();
    // The МОУО hub runs in this process (its binary is giasync-hub's); the school is a process
    // of its own, to be killed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hub_config = NodeConfig::load(&region.join("4201").join("node.toml")).unwrap();
    let hub = runtime
        .block_on(giasync_node::service::start(hub_config.clone()))
        .unwrap();
    let mut node_process = start(&school_path);

    // Staff enter participants one at a time; the backup is taken halfway, the node running.
    let writer = {
        let school = school.clone();
        std::thread::spawn(move || enter(&school, exam, 0..200))
    };
    std::thread::sleep(Duration::from_millis(300));
    let backup = dir.path().join("school.backup");
    let (ok, said) = node(&[
        "backup",
        "--config",
        school_path.to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    let mut acknowledged = writer.join().unwrap();
    acknowledged.extend(enter(&school, exam, 200..220));
    until_hub_holds_all(&school);
    // The machine is lost.
    node_process.kill().unwrap();
    node_process.wait().unwrap();

    // The backup holds fewer than were acknowledged: the rest must come back from the hub.
    let (ok, said) = node(&[
        "restore",
        "--config",
        school_path.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert!(
        !ok && said.contains("new key"),
        "restored under the old key: {said}"
    );

    // A new key for the school, enrolled as a new machine would be.
    let key = school.tls.key.clone();
    std::fs::rename(&key, key.with_extension("key.lost")).unwrap();
    let request = dir.path().join("request.csr");
    let (ok, said) = node(&[
        "enrol",
        "--config",
        school_path.to_str().unwrap(),
        "--out",
        request.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    let mut pki = Pki::open(&region.join("pki")).unwrap();
    let register_file = dir.path().join("register.csv");
    std::fs::write(&register_file, "school,420101,4201\n").unwrap();
    let register = Register::read(&register_file, pki.region()).unwrap();
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 365).unwrap();
    let (_, _, cert) = sign(
        &mut pki,
        &std::fs::read_to_string(&request).unwrap(),
        &register,
        validity,
    )
    .unwrap();
    let issued = dir.path().join("issued");
    std::fs::create_dir(&issued).unwrap();
    std::fs::write(issued.join("node.crt"), cert).unwrap();
    std::fs::copy(&school.tls.ca, issued.join("ca.crt")).unwrap();
    std::fs::copy(&school.tls.crl, issued.join("crl.pem")).unwrap();
    let (ok, said) = node(&[
        "install-cert",
        "--config",
        school_path.to_str().unwrap(),
        "--from",
        issued.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");

    let (ok, said) = node(&[
        "restore",
        "--config",
        school_path.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("the store it replaced is at"), "{said}");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let restored = admin::execute(&school, &context, &Request::Roster { exam }, now()).unwrap();
    let held_after_restore = acknowledged
        .iter()
        .filter(|i| restored.fields.contains_key(&format!("p{i:05}")))
        .count();
    assert!(
        held_after_restore < acknowledged.len(),
        "the backup was taken after every entry: nothing to catch up ({held_after_restore})"
    );

    eprintln!(
        "{held_after_restore} of {} acknowledged participants in the backup",
        acknowledged.len()
    );
    // Started again, it catches up with the hub, and what it enters now reaches the hub.
    let mut node_process = start(&school_path);
    until_hub_holds_all(&school);
    acknowledged.extend(enter(&school, exam, 5000..5005));
    until_hub_holds_all(&school);
    let hub_status = admin::send_to_running(&hub_config, &Request::Status)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(hub_status.quarantined, 0, "{hub_status:?}");
    node_process.kill().unwrap();
    node_process.wait().unwrap();
    hub.stop();
    drop(runtime);

    let roster = admin::execute(&school, &context, &Request::Roster { exam }, now()).unwrap();
    for i in &acknowledged {
        assert!(
            roster.fields.contains_key(&format!("p{i:05}")),
            "acknowledged participant p{i:05} is missing after the restore"
        );
    }
}
