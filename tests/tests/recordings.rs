//! Recordings of answers over real QUIC: a school takes in a spoken answer (espeak-ng and sox
//! make it), its МОУО hub fetches it, the РЦОИ fetches it from the hub, checks it against its
//! hash and receipts it back down; another school of the same hub never receives it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::time::Duration;

use giasync_node::admin;
use giasync_node::app::Command;
use giasync_node::run::NodeHandle;
use giasync_shared::blob::BlobHash;
use giasync_shared::codes::RoomCode;
use giasync_shared::config::NodeConfig;
use giasync_shared::recording;
use giasync_shared::sync::DocId;

const EXAM: &str = "is-2024-02-14";

/// A spoken answer in Russian as WAV (espeak-ng), made longer and resampled as a recorder's
/// file would be (sox): what the technician's software writes.
pub fn spoken_answer(dir: &Path, name: &str, repeats: usize) -> PathBuf {
    let text = "Иванова Анна Викторовна, вариант пять, код работы сто один. ".repeat(repeats);
    let raw = dir.join(format!("{name}.raw.wav"));
    let out = dir.join(name);
    let spoke = std::process::Command::new("espeak-ng")
        .args(["-v", "ru", "-w"])
        .arg(&raw)
        .arg(&text)
        .status()
        .expect("espeak-ng (the test command installs it)");
    assert!(spoke.success());
    let converted = std::process::Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox (the test command installs it)");
    assert!(converted.success());
    out
}

fn config(dir: &Path, code: &str, upstreams: &[std::net::SocketAddr]) -> NodeConfig {
    giasync_tests::node_config(dir, code, upstreams)
}

async fn ask(config: &NodeConfig, command: Command) -> admin::Response {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let context = giasync_node::app::Context::load(&config).unwrap();
        admin::execute(&config, &context, &command, giasync_tests::now_ms()).unwrap()
    })
    .await
    .unwrap()
}

async fn receipted(node: &NodeHandle, rcoi_doc: DocId, hash: BlobHash) -> bool {
    node.read(rcoi_doc)
        .await
        .is_some_and(|d| recording::blob_receipts(&d).contains_key(&hash))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_reaches_the_rcoi_is_receipted_and_no_other_school_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 47_900, 2);
    let rcoi = giasync_node::service::start(config(dir.path(), "42", &[]))
        .await
        .unwrap();
    let rcoi_addr = rcoi.listen.unwrap();
    let hub = giasync_node::service::start(config(dir.path(), "4201", &[rcoi_addr]))
        .await
        .unwrap();
    let hub_addr = hub.listen.unwrap();
    let school_config = config(dir.path(), "420101", &[hub_addr]);
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();
    let other = giasync_node::service::start(config(dir.path(), "420102", &[hub_addr]))
        .await
        .unwrap();

    let rooms = Command::Rooms {
        exam: EXAM.parse().unwrap(),
        rooms: vec![(RoomCode::new("101").unwrap(), 30)],
    };
    assert!(ask(&school_config, rooms).await.ok);
    let roster = giasync_tests::import(
        EXAM,
        vec![giasync_tests::roster_row("P1", "Иванова", "100001")],
    );
    assert!(ask(&school_config, roster).await.ok);

    let answer = spoken_answer(dir.path(), "2024-02-14_101_420101_P1.wav", 20);
    let source = std::fs::read(&answer).unwrap();
    let added = ask(
        &school_config,
        Command::AddRecording {
            exam: EXAM.parse().unwrap(),
            file: answer.clone(),
            room: None,
            participant: None,
            attempt: None,
            stream: false,
        },
    )
    .await;
    assert!(added.ok, "{}", added.message);
    assert!(
        added
            .message
            .contains("participant P1, attempt 1, room 101"),
        "{}",
        added.message
    );
    let hash: BlobHash = added
        .message
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(hash.0, *bao_tree::blake3::hash(&source).as_bytes());

    // The РЦОИ's receipt comes back down to the school.
    let rcoi_doc: DocId = "rcoi/4201/420101/is-2024-02-14".parse().unwrap();
    let mut arrived = false;
    for _ in 0..300 {
        if receipted(&school, rcoi_doc, hash).await {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        arrived,
        "no receipt at the school: {:?}",
        rcoi.blob_status().await
    );
    // What the РЦОИ holds is the file, byte for byte.
    let blob = giasync_shared::blob::BlobRef::new(hash, source.len() as u64).unwrap();
    let mut held = Vec::new();
    std::io::Read::read_to_end(&mut rcoi.blob_files().held(&blob.hash).unwrap(), &mut held)
        .unwrap();
    assert_eq!(held, source);
    let at_rcoi = rcoi.blob_status().await.unwrap();
    assert_eq!((at_rcoi.held, at_rcoi.wanted), (1, 0));
    assert_eq!(at_rcoi.pieces_refused, 0);
    // The other school, on the same hub, holds nothing of it.
    let other_status = other.blob_status().await.unwrap();
    assert_eq!(other_status.held, 0);
    assert!(other.blob_files().held(&blob.hash).is_err());
    // The hub relayed it and wants nothing more once the РЦОИ has receipted it.
    let mut settled = false;
    for _ in 0..100 {
        if hub.blob_status().await.unwrap().wanted == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled);

    // A file cut short is refused with the reason, and nothing is named.
    let short = dir.path().join("2024-02-14_101_420101_P1_2.wav");
    std::fs::write(&short, &source[..source.len() / 2]).unwrap();
    let refused = ask(
        &school_config,
        Command::AddRecording {
            exam: EXAM.parse().unwrap(),
            file: short,
            room: None,
            participant: None,
            attempt: None,
            stream: false,
        },
    )
    .await;
    assert!(!refused.ok);
    assert!(refused.message.contains("cut short"), "{}", refused.message);
    let protocol: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    let named = recording::recordings(&school.read(protocol).await.unwrap());
    assert_eq!(named.len(), 1);
}
