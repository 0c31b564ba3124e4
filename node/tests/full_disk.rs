//! A school node whose disk refuses to grow its store while staff enter data: the node stops by
//! itself with a non-zero exit naming the failure (so the service manager starts it again), and
//! everything it acknowledged before is in its store.
//!
//! The disk is made to refuse through the process's file-size limit (`prlimit --fsize`), set to
//! the store's size once it exists plus [`ROOM_BYTES`]: redb grows its file in steps (doubling
//! it while it is small), and the write of the step that crosses the limit fails with `EFBIG`,
//! as a full disk fails one with `ENOSPC`. `SIGXFSZ`, which the kernel would send instead, is
//! ignored by the shell that starts the node, and an ignored signal stays ignored across
//! `exec`.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use giasync_node::admin;
use giasync_node::app::Command as Request;
use giasync_shared::config::NodeConfig;

mod common;
use common::{demo_region, row, row_id, start, stored_participants};

/// How much the store may grow before the disk refuses: room for some participants first.
const ROOM_BYTES: u64 = 1 << 20;
/// The most participants the test enters, and the longest it enters them: far more than that
/// room holds (1,300 to 1,600 fit here, in about 2 s).
const ROWS_MAX: usize = 20_000;
const ENTERING_MAX: Duration = Duration::from_secs(120);

/// The node's process, killed if the test ends before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_node_whose_disk_refuses_a_write_stops_non_zero_keeping_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    demo_region(dir.path(), 48_600, 1);
    let config_path = dir.path().join("420101").join("node.toml");
    let config = NodeConfig::load(&config_path).unwrap();
    let exam: giasync_shared::exam::ExamId = "is-2025-02-12".parse().unwrap();

    // The store made by a first run, stopped cleanly: what the limit is set to.
    let mut first = start(&config_path);
    Command::new("kill")
        .arg(first.id().to_string())
        .status()
        .unwrap();
    assert!(first.wait().unwrap().success());
    let limit_bytes = std::fs::metadata(&config.node.store).unwrap().len() + ROOM_BYTES;

    let mut node = Running(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; exec prlimit --fsize={limit_bytes} \"$0\" run --config \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_giasync-node"))
            .arg(&config_path)
            // Few lines, read as they come: a full pipe would stop the node.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr_pipe = node.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let socket = admin::socket_path(&config.node.store);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the limited node did not start");
        if let Some(status) = node.0.try_wait().unwrap() {
            panic!(
                "the node ended at start with {status}: {}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Participants one request at a time, until one is not acknowledged.
    let mut acknowledged = Vec::new();
    let mut refused = None;
    // The participant whose import was answered "not saved", if the answer came.
    let mut not_saved = None;
    let entering_until = Instant::now() + ENTERING_MAX;
    for i in 0..ROWS_MAX {
        assert!(
            Instant::now() < entering_until,
            "{} participants entered in {ENTERING_MAX:?} and no refusal",
            acknowledged.len()
        );
        let import = Request::RosterImport {
            exam,
            rows: vec![row(i)],
        };
        match admin::send_to_running(&config, &import) {
            Ok(answer) if answer.ok => acknowledged.push(i),
            Ok(answer) => {
                not_saved = Some(i);
                refused = Some(answer.message);
                break;
            }
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("the store grew without bound: the limit did not hold");
    if not_saved.is_some() {
        assert!(refused.contains("not saved"), "{refused}");
    }
    assert!(
        !acknowledged.is_empty(),
        "nothing was acknowledged before the refusal ({refused}): the test tests nothing"
    );

    // The node stops by itself, with an exit code (not killed by a signal) that is not 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node runs on after its store refused a write ({refused})"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = stderr.join().unwrap();
    assert!(
        matches!(status.code(), Some(code) if code != 0),
        "the node ended with {status}: {stderr}"
    );
    // It stopped for its store, and for the limit: not for another reason.
    assert!(stderr.contains("420101"), "{stderr}");
    assert!(stderr.contains("stopped: store:"), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    eprintln!(
        "{} participants acknowledged, then refused ({refused}); the node said: {}",
        acknowledged.len(),
        stderr.trim()
    );

    // Opened again without the limit, the store holds every acknowledged participant.
    let held = stored_participants(&config, exam);
    for &i in &acknowledged {
        assert!(
            held.contains(&row_id(i)),
            "acknowledged participant {} is missing after the refusal",
            row_id(i)
        );
    }
    if let Some(i) = not_saved {
        assert!(
            !held.contains(&row_id(i)),
            "{} was answered not saved, and is in the store",
            row_id(i)
        );
    }
}
