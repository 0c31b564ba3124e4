//! `kill -9` of a running school node while staff enter data: everything the node acknowledged
//! is in its store after a restart.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use giasync_certs::demo::{DemoOptions, demo};
use giasync_certs::keyfile::KdfParams;
use giasync_node::admin;
use giasync_node::app::Command as Request;
use giasync_shared::config::NodeConfig;

mod common;
use common::{row, row_id, start, stored_participants};

#[test]
fn what_a_node_acknowledged_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        out: dir.path().join("region"),
        municipalities: 1,
        schools_per_municipality: 1,
        base_port: 48_400,
        kdf: KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        https: false,
        utc_offset: None,
    };
    demo(&options, time::OffsetDateTime::now_utc()).unwrap();
    let config_path = options.out.join("420101").join("node.toml");
    let config = NodeConfig::load(&config_path).unwrap();
    let exam: giasync_shared::exam::ExamId = "is-2025-02-12".parse().unwrap();

    let mut acknowledged = Vec::new();
    let mut next = 0usize;
    for round in 0..4 {
        let mut node = start(&config_path);
        // Enter participants one request at a time from another thread, and kill the node
        // while requests are in flight.
        let (cfg, ex) = (config.clone(), exam);
        let first = next;
        let writer = std::thread::spawn(move || {
            let mut done = Vec::new();
            for i in first..first + 2000 {
                match admin::send_to_running(
                    &cfg,
                    &Request::RosterImport {
                        exam: ex,
                        rows: vec![row(i)],
                    },
                ) {
                    Ok(r) if r.ok => done.push(i),
                    _ => break,
                }
            }
            done
        });
        std::thread::sleep(Duration::from_millis(150 + 100 * round));
        node.kill().unwrap(); // SIGKILL
        node.wait().unwrap();
        let done = writer.join().unwrap();
        next = first + 2000;
        acknowledged.extend(done);
    }
    assert!(
        acknowledged.len() > 20,
        "the node acknowledged too little to test: {}",
        acknowledged.len()
    );
    eprintln!(
        "{} participants acknowledged across 4 kills",
        acknowledged.len()
    );
    // Opened again (directly: no node runs), the store holds every acknowledged participant.
    let held = stored_participants(&config, exam);
    for &i in &acknowledged {
        assert!(
            held.contains(&row_id(i)),
            "acknowledged participant {} is missing after kill -9",
            row_id(i)
        );
    }
}
