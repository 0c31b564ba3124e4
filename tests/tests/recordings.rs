//! Recordings of answers over real QUIC: a school takes in a spoken answer (espeak-ng and sox
//! make it), its МОУО hub fetches it, the РЦОИ fetches it from the hub, checks it against its
//! hash and receipts it back down; another school of the same hub never receives it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
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

fn config(dir: &Path, code: &str, upstreams: &[std::net::SocketAddr]) -> NodeConfig {
    giasync_tests::node_config(dir, code, upstreams)
}

async fn ask(config: &NodeConfig, command: Command) -> admin::Response {
    giasync_tests::ask(config, command).await
}

/// Room 101 and participant P1 at the school of `config`: what a recording is named against.
async fn room_and_participant(config: &NodeConfig, exam: &str) {
    for command in giasync_tests::room_101_with(
        exam,
        vec![giasync_tests::roster_row("P1", "Иванова", "100001")],
    ) {
        let answer = ask(config, command).await;
        assert!(answer.ok, "{}", answer.message);
    }
}

/// Destroy this node's copies of `exam`'s recordings.
fn destroy(exam: &str) -> Command {
    Command::DestroyRecordings {
        exam: exam.parse().unwrap(),
    }
}

/// A recording file taken in by what its name says.
fn add_by_name(exam: &str, file: std::path::PathBuf) -> Command {
    Command::AddRecording {
        exam: exam.parse().unwrap(),
        file,
        room: None,
        participant: None,
        attempt: None,
        stream: false,
    }
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

    room_and_participant(&school_config, EXAM).await;

    let answer = giasync_tests::spoken_answer(dir.path(), "2024-02-14_101_420101_P1.wav", 20);
    let source = std::fs::read(&answer).unwrap();
    let added = ask(&school_config, add_by_name(EXAM, answer.clone())).await;
    assert!(added.ok, "{}", added.message);
    assert!(
        added
            .message
            .contains("participant P1, attempt 1, room 101"),
        "{}",
        added.message
    );
    let hash = giasync_tests::named_hash(&added);
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
    // The hub relayed it, wants nothing more once the РЦОИ has receipted it, and drops its copy.
    let mut settled = false;
    for _ in 0..100 {
        let at_hub = hub.blob_status().await.unwrap();
        if at_hub.wanted == 0 && at_hub.held == 0 && hub.blob_files().held(&hash).is_err() {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled);

    // A file cut short is refused with the reason, and nothing is named.
    let short = dir.path().join("2024-02-14_101_420101_P1_2.wav");
    std::fs::write(&short, &source[..source.len() / 2]).unwrap();
    let refused = ask(&school_config, add_by_name(EXAM, short)).await;
    assert!(!refused.ok);
    assert!(refused.message.contains("cut short"), "{}", refused.message);
    let protocol: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    let named = recording::recordings(&school.read(protocol).await.unwrap());
    assert_eq!(named.len(), 1);

    // February 2024's recordings are past their 4 months: the РЦОИ's oversight shows the
    // school's as due. The school destroys its copy (the РЦОИ holds one), and its act reaches
    // the РЦОИ; the РЦОИ destroys its own and records it.
    let rcoi_config = config(dir.path(), "42", &[]);
    let recordings_at_rcoi = || async {
        let oversight = ask(&rcoi_config, Command::Oversight)
            .await
            .oversight
            .unwrap();
        oversight
            .schools
            .iter()
            .find(|s| s.school == "420101")
            .unwrap()
            .recordings
            .clone()
    };
    // The РЦОИ's own blobs, as its oversight shows them: the one recording held, none to fetch.
    let blobs = ask(&rcoi_config, Command::Oversight)
        .await
        .oversight
        .unwrap()
        .blobs
        .unwrap();
    assert_eq!(
        (
            blobs.held,
            blobs.held_bytes,
            blobs.fetching,
            blobs.bytes_left
        ),
        (1, source.len() as u64, 0, 0)
    );
    let before = recordings_at_rcoi().await;
    assert_eq!(
        (
            before.named,
            before.at_rcoi,
            before.destroyed_by_school,
            before.due_not_destroyed
        ),
        (1, 1, 0, 1)
    );
    let destroyed = ask(&school_config, destroy(EXAM)).await;
    assert!(destroyed.ok, "{}", destroyed.message);
    assert!(
        destroyed.message.contains("1 recordings destroyed"),
        "{}",
        destroyed.message
    );
    assert!(
        school.blob_files().held(&hash).is_err(),
        "the bytes are still there"
    );
    let mut acted = false;
    for _ in 0..200 {
        if rcoi
            .read(protocol)
            .await
            .is_some_and(|d| recording::destroyed(&d).contains_key(&hash))
        {
            acted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(acted, "the school's act did not reach the РЦОИ");
    let at_rcoi = ask(&rcoi_config, destroy(EXAM)).await;
    assert!(at_rcoi.ok, "{}", at_rcoi.message);
    assert!(rcoi.blob_files().held(&hash).is_err());
    assert!(
        recording::destroyed(&rcoi.read(rcoi_doc).await.unwrap()).contains_key(&hash),
        "the РЦОИ's act"
    );
    let after = recordings_at_rcoi().await;
    assert_eq!(
        (
            after.destroyed_by_school,
            after.destroyed_by_rcoi,
            after.due_not_destroyed
        ),
        (1, 1, 0)
    );
}

/// Seed 002's day on a thin line: a school has 500 MB of audio queued for the РЦОИ over a link
/// of 1 MB/s (a router buffer of 64 KB, the rest dropped), and an expert signs a sheet. The
/// sheet's receipt is back within seconds, while nearly all the audio is still to cross: the
/// documents' stream goes before the blob stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_signed_while_audio_is_queued_on_a_thin_link_goes_first() {
    const AUDIO_BYTES: u32 = 500 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 47_950, 1);
    let exam: &'static str = Box::leak(giasync_tests::todays_exam().into_boxed_str());
    let rules = giasync_shared::rules::Rules::is_2024().unwrap();
    let rcoi_config = config(dir.path(), "42", &[]);
    let row = || giasync_tests::roster_row("P1", "Иванова", "100001");
    giasync_tests::apply_all(
        &rcoi_config,
        vec![giasync_tests::register(exam, "420101", "4201", vec![row()])],
    );
    let rcoi = giasync_node::service::start(rcoi_config.clone())
        .await
        .unwrap();
    let link = giasync_tests::throttled_link(rcoi.listen.unwrap(), 1024 * 1024, 64 * 1024).await;
    // The school reaches the РЦОИ (its second upstream; no МОУО runs) only over the thin link.
    let mut school_config = config(dir.path(), "420101", &[link, link]);
    school_config.upstreams.remove(0);
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();
    room_and_participant(&school_config, exam).await;

    let audio = dir.path().join("room-101-stream.wav");
    giasync_tests::silent_wav(&audio, AUDIO_BYTES);
    let added = ask(
        &school_config,
        Command::AddRecording {
            exam: exam.parse().unwrap(),
            file: audio,
            room: Some(RoomCode::new("101").unwrap()),
            participant: None,
            attempt: None,
            stream: true,
        },
    )
    .await;
    assert!(added.ok, "{}", added.message);
    // The link is busy with audio.
    let mut busy = false;
    for _ in 0..400 {
        if rcoi.blob_status().await.unwrap().pieces_received >= 8 {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let protocol: DocId = format!("protocol/4201/420101/{exam}").parse().unwrap();
    assert!(
        busy,
        "no audio crossed: {:?}; the РЦОИ holds the protocol: {}; peers {:?}",
        rcoi.blob_status().await,
        rcoi.read(protocol).await.is_some(),
        rcoi.status().await.map(|s| s.peers)
    );

    let expert = giasync_tests::experts_of(&region, "420101")[0];
    let sheet = giasync_tests::score_request(
        dir.path(),
        &rules,
        expert,
        exam,
        "420101",
        "P1",
        giasync_tests::POINTS_FULL,
    );
    let signed = std::time::Instant::now();
    let scored = ask(&school_config, sheet).await;
    assert!(scored.ok, "{}", scored.message);
    let rcoi_doc: DocId = format!("rcoi/4201/420101/{exam}").parse().unwrap();
    let mut receipt_after = None;
    for _ in 0..600 {
        if rcoi
            .read(rcoi_doc)
            .await
            .is_some_and(|d| !giasync_shared::content::receipts(&d).is_empty())
        {
            receipt_after = Some(signed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let receipt_after = receipt_after.expect("the sheet reached the РЦОИ");
    let audio_left = rcoi.blob_status().await.unwrap().wanted_bytes_left;
    eprintln!(
        "sheet receipted at the РЦОИ {} ms after signing, with {} MiB of audio still to cross",
        receipt_after.as_millis(),
        audio_left / (1024 * 1024)
    );
    assert!(
        receipt_after < Duration::from_secs(5),
        "the sheet took {receipt_after:?} behind the audio"
    );
    assert!(
        audio_left > u64::from(AUDIO_BYTES) * 9 / 10,
        "the audio crossed first: {audio_left} bytes left"
    );
    // Today's recordings are kept: asking to destroy them is refused, and nothing is deleted.
    let refused = ask(&school_config, destroy(exam)).await;
    assert!(!refused.ok);
    assert!(
        refused.message.contains("kept until"),
        "{}",
        refused.message
    );
    let hash = giasync_tests::named_hash(&added);
    assert!(school.blob_files().held(&hash).is_ok());
    drop(school);
}

/// The recording software writes into the watched folder: a finished answer is taken in and
/// named; a file not named by the convention, and one cut short, are refused with the reason
/// beside them; nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watched_folder_takes_finished_recordings_in_and_sets_bad_ones_aside() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 47_980, 1);
    let watched = dir.path().join("recorder");
    std::fs::create_dir_all(&watched).unwrap();
    let mut school_config = config(dir.path(), "420101", &[]);
    school_config.node.audio_watch = Some(watched.clone());
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();
    room_and_participant(&school_config, EXAM).await;

    let made = giasync_tests::spoken_answer(dir.path(), "2024-02-14_101_420101_P1.wav", 2);
    let whole = std::fs::read(&made).unwrap();
    std::fs::rename(&made, watched.join("2024-02-14_101_420101_P1.wav")).unwrap();
    std::fs::write(watched.join("notes.txt"), "не запись").unwrap();
    std::fs::write(
        watched.join("2024-02-14_101_420101.wav"),
        &whole[..whole.len() / 3],
    )
    .unwrap();

    // A file is taken once it has not changed for 30 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let protocol: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    loop {
        let named = school
            .read(protocol)
            .await
            .map(|d| recording::recordings(&d))
            .unwrap_or_default();
        let refused = std::fs::read_dir(watched.join("refused")).map_or(0, Iterator::count);
        if named.len() == 1 && refused == 4 {
            let r = named.values().next().unwrap();
            assert!(matches!(
                r.subject,
                recording::Subject::Participant { id, .. } if id.as_str() == "P1"
            ));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "named {}, refused {refused}",
            named.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        std::fs::read(watched.join("taken").join("2024-02-14_101_420101_P1.wav")).unwrap(),
        whole
    );
    let why = |name: &str| std::fs::read_to_string(watched.join("refused").join(name)).unwrap();
    assert!(
        why("notes.txt.txt").contains("DATE_ROOM_SCHOOL"),
        "{}",
        why("notes.txt.txt")
    );
    assert!(
        why("2024-02-14_101_420101.wav.txt").contains("cut short"),
        "{}",
        why("2024-02-14_101_420101.wav.txt")
    );
    assert!(watched.join("refused").join("notes.txt").exists());
}

/// A school with no link at all: its recording and documents go on a flash drive, signed by its
/// node key. The РЦОИ refuses the bundle with one byte flipped (in a recording, or in the
/// manifest), and one signed under another region's CA; the intact one it checks and takes in:
/// the protocol that names the recording, the recording under its hash, and its receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_carries_a_schools_recordings_to_the_rcoi_and_any_change_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 47_990, 1);
    // The school is not running and reaches nobody: everything goes through its store.
    let school_config = config(dir.path(), "420101", &[]);
    room_and_participant(&school_config, EXAM).await;
    let answer = giasync_tests::spoken_answer(dir.path(), "2024-02-14_101_420101_P1.wav", 4);
    let source = std::fs::read(&answer).unwrap();
    let added = ask(&school_config, add_by_name(EXAM, answer)).await;
    assert!(added.ok, "{}", added.message);
    let hash = giasync_tests::named_hash(&added);
    let drive = dir.path().join("flash");
    let written = ask(
        &school_config,
        Command::BundleWrite {
            to: drive.clone(),
            documents: true,
            school: None,
        },
    )
    .await;
    assert!(written.ok, "{}", written.message);
    assert!(
        written.message.contains("1 recordings, 2 documents"),
        "{}",
        written.message
    );

    let rcoi = giasync_node::service::start(config(dir.path(), "42", &[]))
        .await
        .unwrap();
    let rcoi_config = config(dir.path(), "42", &[]);
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir_all(to.join("blobs")).unwrap();
        std::fs::create_dir_all(to.join("docs")).unwrap();
        for entry in walk(&drive) {
            let rel = entry.strip_prefix(&drive).unwrap();
            std::fs::copy(&entry, to.join(rel)).unwrap();
        }
        to
    };
    let flip = |path: &Path, at: usize| {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    };
    let read = |from: std::path::PathBuf| ask(&rcoi_config, Command::BundleRead { from });
    // One byte of the recording.
    let spoiled = copy("spoiled-recording");
    flip(
        &spoiled.join("blobs").join(hash.to_string()),
        source.len() / 2,
    );
    let refused = read(spoiled).await;
    assert!(!refused.ok);
    assert!(
        refused.message.contains("do not hash to its name"),
        "{}",
        refused.message
    );
    // One byte of the manifest.
    let spoiled = copy("spoiled-manifest");
    flip(&spoiled.join("manifest"), 30);
    let refused = read(spoiled).await;
    assert!(!refused.ok);
    assert!(refused.message.contains("signature"), "{}", refused.message);
    // Signed by a node of another region's CA.
    let elsewhere = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(elsewhere.path(), 47_995, 1);
    let stranger = copy("stranger");
    std::fs::copy(
        elsewhere.path().join("420101").join("node.crt"),
        stranger.join("node.crt.pem"),
    )
    .unwrap();
    let pem = std::fs::read(stranger.join("node.crt.pem")).unwrap();
    let der = giasync_certs::show::certs_from_pem(&pem).unwrap().remove(0);
    std::fs::write(stranger.join("node.crt"), der).unwrap();
    let refused = read(stranger).await;
    assert!(!refused.ok);
    assert!(
        refused.message.contains("certificate"),
        "{}",
        refused.message
    );
    // Nothing of the refused bundles was taken in.
    let protocol: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    assert!(rcoi.read(protocol).await.is_none());
    assert!(rcoi.blob_files().held(&hash).is_err());

    let taken = read(drive).await;
    assert!(taken.ok, "{}", taken.message);
    let named = recording::recordings(&rcoi.read(protocol).await.unwrap());
    assert!(named.contains_key(&hash));
    let mut held = Vec::new();
    std::io::Read::read_to_end(&mut rcoi.blob_files().held(&hash).unwrap(), &mut held).unwrap();
    assert_eq!(held, source);
    let rcoi_doc: DocId = "rcoi/4201/420101/is-2024-02-14".parse().unwrap();
    assert!(receipted(&rcoi, rcoi_doc, hash).await, "the РЦОИ's receipt");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
