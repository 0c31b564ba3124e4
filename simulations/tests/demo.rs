//! The main job as a multi-process test: a demo region of separate processes on loopback QUIC,
//! a school offline and a МОУО hub killed with `kill -9` while scores are entered, both
//! restored; every signed sheet must reach the РЦОИ verified and the conflict must surface, be
//! settled, and the published results reach every school.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Run with `--keep`, as an operator leaves it for people to try the pages, then stopped with
/// SIGTERM (as a service manager stops it): it stops every node it started.
#[test]
fn the_demo_region_loses_no_sheet_and_surfaces_the_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_giasync-sim"))
        .args(["demo", "--keep", "--base-port", "47400", "--out"])
        .arg(dir.path().join("region"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line.starts_with("the region keeps running") {
            break;
        }
    }
    assert!(stdout.contains("the region keeps running"), "{stdout}");
    // Every node answers on its admin socket while the region runs.
    let sockets = admin_sockets(&dir.path().join("region"));
    assert_eq!(sockets.len(), 7, "{sockets:?}");
    for socket in &sockets {
        assert!(
            std::os::unix::net::UnixStream::connect(socket).is_ok(),
            "{}",
            socket.display()
        );
    }
    let sent = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = demo.wait().unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(status.success(), "{stdout}{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l == "SIGTERM: stopping the region's nodes"),
        "{rest:?}"
    );
    // And no node outlived it.
    for socket in &sockets {
        assert!(
            std::os::unix::net::UnixStream::connect(socket).is_err(),
            "{} still answers",
            socket.display()
        );
    }
    assert!(
        stdout.contains(
            "\nsigned sheets entered: 49, verified at the РЦОИ: 49, invalid: 0, conflicts surfaced: 1, lost: 0\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("offline, МОУО hub 4202 down (kill -9)"),
        "{stdout}"
    );
    // Prometheus's view of the same: the РЦОИ's /metrics counts every sheet verified.
    assert!(
        stdout.contains(
            "РЦОИ metrics (http://127.0.0.1:47408/metrics): 49 sheets verified, 0 invalid"
        ),
        "{stdout}"
    );
    // The РЦОИ's export verifies against the region's CA, and any changed byte breaks it.
    assert!(stdout.contains("/export and verified"), "{stdout}");
    let export = dir.path().join("region").join("export");
    let ca = dir.path().join("region").join("42").join("ca.crt");
    assert!(giasync_node::export::verify(&export, region_trust(&ca)).unwrap());
    let results = std::fs::read_to_string(export.join("results.csv")).unwrap();
    assert!(results.lines().count() > 40, "{results}");
    // One act for a bad recording, and that participant's same-day retake counts as attempt 2.
    assert!(
        stdout.contains("act № 1 ends participant 010001's attempt 1 (bad recording)"),
        "{stdout}"
    );
    let retake: Vec<&str> = results
        .lines()
        .filter(|l| l.split(',').nth(3) == Some("010001"))
        .collect();
    assert_eq!(retake.len(), 1, "{results}");
    assert_eq!(retake[0].split(',').nth(4), Some("2"), "{results}");
    // The conflict was settled at the school by its commission's signed record, and results went down and
    // familiarisation came back up.
    assert!(results.contains(",settled,"), "{results}");
    assert!(!results.contains(",conflict,"), "{results}");
    assert!(
        stdout.contains("1 conflict settled at the school by the commission chair's signed record; the РЦОИ sees none open"),
        "{stdout}"
    );
    assert!(stdout.contains("published for 4 schools"), "{stdout}");
    assert!(
        stdout.contains(
            "results verified at 4 of 4 schools; familiarisation records back at the РЦОИ: 4"
        ),
        "{stdout}"
    );
    // Итоговое сочинение (изложение): the processing's Windows-1251 file taken in, published,
    // verified at every school (one of them from the РЦОИ's bundle on removable media), and
    // the РЦОИ sees every school's results-to-school step done.
    assert!(
        stdout.contains("8 results of 4 schools taken in (4 зачёт)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("school 420202: the РЦОИ's bundle read from removable media"),
        "{stdout}"
    );
    assert!(
        stdout.contains("results verified at 4 of 4 schools; the РЦОИ's chain (seed 003)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("school 420202: results_to_school Done, familiarisation"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "school 420101: results_to_municipality Done, results_to_school Done, familiarisation"
        ),
        "{stdout}"
    );
    // The federal exchange's layout holds the region's results, the conflict settled.
    let federal = std::fs::read_to_string(export.join("federal.xml")).unwrap();
    assert!(
        federal.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ResultsExchange format=\"giasync-federal-1\" region=\"42\"")
            && federal.contains("conflicts=\"0\"")
            && federal.contains("<Result>зачет</Result>"),
        "{federal}"
    );
    for name in [
        "results.csv",
        "sheets.csv",
        "results.xlsx",
        "sheets.xlsx",
        "federal.xml",
        "manifest.txt",
    ] {
        let path = export.join(name);
        let original = std::fs::read(&path).unwrap();
        let mut changed = original.clone();
        let middle = changed.len() / 2;
        changed[middle] ^= 0x04;
        std::fs::write(&path, &changed).unwrap();
        assert!(
            !giasync_node::export::verify(&export, region_trust(&ca)).unwrap(),
            "a changed byte in {name} went unnoticed"
        );
        std::fs::write(&path, &original).unwrap();
    }
    assert!(giasync_node::export::verify(&export, region_trust(&ca)).unwrap());
}

/// The region's CA (its revocation list beside it).
fn region_trust(ca: &std::path::Path) -> giasync_node::export::Trust<'_> {
    giasync_node::export::Trust::Region { ca, crl: None }
}

/// The admin sockets of the region's nodes (`STORE.sock` beside each store).
fn admin_sockets(region: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![region.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "sock") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
