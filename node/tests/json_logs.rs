//! `GIASYNC_LOG=json`: a running node logs JSON lines, one object a line, with the event's
//! fields at the top level and the node's identity among them, for a log collector to read.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use giasync_certs::demo::{DemoOptions, demo};
use giasync_certs::keyfile::KdfParams;

#[test]
fn a_node_asked_for_json_logs_writes_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    demo(
        &DemoOptions {
            out: dir.path().to_path_buf(),
            municipalities: 1,
            schools_per_municipality: 1,
            base_port: 48_500,
            kdf: KdfParams {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
            https: false,
            utc_offset: None,
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    // A school (its hub is not running: it keeps dialling); its store loads and it says so.
    let mut child = Command::new(env!("CARGO_BIN_EXE_giasync-node"))
        .args(["run", "--config"])
        .arg(dir.path().join("420101/node.toml"))
        .env("GIASYNC_LOG", "json")
        .env("RUST_LOG", "info,automerge=off")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut loaded = None;
    while started.elapsed() < Duration::from_secs(20) && loaded.is_none() {
        let Ok(line) = got.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if value["message"] == "store loaded" {
            loaded = Some(value.clone());
        }
        seen.push(value);
    }
    let _ = child.kill();
    let _ = child.wait();
    let loaded = loaded.unwrap_or_else(|| panic!("no \"store loaded\" line in {seen:?}"));
    assert_eq!(loaded["level"], "INFO", "{loaded}");
    assert!(loaded["timestamp"].is_string(), "{loaded}");
    assert!(
        loaded["node"]
            .as_str()
            .is_some_and(|n| n.contains("420101")),
        "the node's identity as a field: {loaded}"
    );
}
