//! `giasync-node doctor` against a demo region, with its upstream served over real QUIC.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::process::Command;

use giasync_certs::demo::{DemoOptions, demo};
use giasync_certs::pki::Pki;
use giasync_shared::config::NodeConfig;

mod common;
use common::{FAST, point_upstreams, serve, serve_tcp};

fn demo_region() -> tempfile::TempDir {
    demo_region_serving(false)
}

fn demo_region_serving(https: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        out: dir.path().join("region"),
        municipalities: 2,
        schools_per_municipality: 1,
        base_port: 47_000,
        kdf: FAST,
        https,
        utc_offset: None,
    };
    demo(&options, time::OffsetDateTime::now_utc()).unwrap();
    dir
}

async fn doctor(config: PathBuf) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_giasync-node"))
            .args([
                "doctor",
                "--config",
                config.to_str().unwrap(),
                "--timeout-ms",
                "1500",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no line {name:?} in\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_school_passes_every_check() {
    let dir = demo_region();
    let region = dir.path().join("region");
    let (_hub, hub_addr) = serve(&region.join("4201"));
    let (_rcoi, rcoi_addr) = serve(&region.join("42"));
    let school = region.join("420101").join("node.toml");
    point_upstreams(&school, &[hub_addr, rcoi_addr]);
    let (ok, report) = doctor(school).await;
    assert!(ok, "{report}");
    assert!(
        line(&report, "upstream 1").starts_with("ok")
            && line(&report, "upstream 1").contains("proved municipality 4201"),
        "{report}"
    );
    assert!(
        line(&report, "upstream 2").contains("proved rcoi 42"),
        "{report}"
    );
    assert!(
        line(&report, "clock vs upstream 1").starts_with("ok"),
        "{report}"
    );
    assert!(
        line(&report, "certificate expiry").contains("days left"),
        "{report}"
    );
    assert!(
        line(&report, "year data").starts_with("ok    year data: year-2024, production calendar"),
        "{report}"
    );
    assert!(
        line(&report, "region clock").starts_with("ok    region clock: UTC+07:00"),
        "{report}"
    );
    assert!(report.contains("all 13 checks passed"), "{report}");
}

/// A year file that does not load fails its line, naming the file and the problem; a node
/// would not start with it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_file_that_does_not_load_fails_its_line() {
    let dir = demo_region();
    let school = dir.path().join("region").join("420101").join("node.toml");
    let year = dir.path().join("year.toml");
    std::fs::write(
        &year,
        giasync_shared::year::YEAR_2024_TOML.replace("days = 5", "days = 0"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&school).unwrap();
    let mut config = NodeConfig::parse(&text, "node.toml").unwrap();
    config.node.year = Some(year.clone());
    std::fs::write(&school, toml::to_string(&config).unwrap()).unwrap();
    let (ok, report) = doctor(school).await;
    assert!(!ok, "{report}");
    let l = line(&report, "year data");
    assert!(
        l.starts_with("FAIL") && l.contains(&year.display().to_string()) && l.contains("days 0"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_and_a_revoked_certificate_fail_their_lines() {
    let dir = demo_region();
    let region = dir.path().join("region");
    let school_dir = region.join("420101");
    std::fs::copy(
        region.join("420201").join("node.key"),
        school_dir.join("node.key"),
    )
    .unwrap();
    let mut pki = Pki::open(&region.join("pki")).unwrap();
    let serial = pki
        .issued()
        .iter()
        .find(|i| i.identity.contains("school/420101"))
        .map(|i| i.serial)
        .unwrap();
    pki.revoke(serial, "test", time::OffsetDateTime::now_utc())
        .unwrap();
    std::fs::write(school_dir.join("crl.pem"), pki.crl_pem().unwrap()).unwrap();
    let (ok, report) = doctor(school_dir.join("node.toml")).await;
    assert!(!ok, "{report}");
    assert!(
        line(&report, "key matches certificate").starts_with("FAIL"),
        "{report}"
    );
    assert!(
        line(&report, "revocation list").contains(&format!("certificate {serial} is revoked")),
        "{report}"
    );
    assert!(line(&report, "certificate:").starts_with("ok"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_node_and_a_silent_one_fail_their_upstream_lines() {
    let dir = demo_region();
    let region = dir.path().join("region");
    // The wrong МОУО answers at upstream 1's address; nothing answers at upstream 2's.
    let (_other, other_addr) = serve(&region.join("4202"));
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let school = region.join("420101").join("node.toml");
    point_upstreams(&school, &[other_addr, silent.local_addr().unwrap()]);
    let (ok, report) = doctor(school).await;
    assert!(!ok, "{report}");
    assert!(
        line(&report, "upstream 1").contains("expected municipality:4201"),
        "{report}"
    );
    assert!(
        line(&report, "upstream 2").contains("no answer within 1500 ms"),
        "{report}"
    );
    assert!(
        !report.contains("clock vs upstream"),
        "no clock without a hello: {report}"
    );
    assert!(line(&report, "store").starts_with("ok"), "{report}");
}

/// A school whose UDP is dropped: QUIC gets no answer, the TCP fallback does, and the line
/// says so and passes; with neither, it fails naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reached_over_tcp_only_passes_and_says_so() {
    let dir = demo_region();
    let region = dir.path().join("region");
    let hub_tcp = serve_tcp(&region.join("4201")).await;
    let (_rcoi, rcoi_addr) = serve(&region.join("42"));
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let school = region.join("420101").join("node.toml");
    point_upstreams(&school, &[silent.local_addr().unwrap(), rcoi_addr]);
    let with_tcp = |tcp: std::net::SocketAddr| {
        let text = std::fs::read_to_string(&school).unwrap();
        let mut config = NodeConfig::parse(&text, "node.toml").unwrap();
        config.upstreams[0].tcp = Some(tcp);
        std::fs::write(&school, toml::to_string(&config).unwrap()).unwrap();
    };
    with_tcp(hub_tcp);
    let (ok, report) = doctor(school.clone()).await;
    assert!(ok, "{report}");
    let upstream = line(&report, "upstream 1");
    assert!(
        upstream.starts_with("ok")
            && upstream.contains(&format!("reached over TCP at {hub_tcp} only"))
            && upstream.contains("proved municipality 4201")
            && upstream.contains("QUIC: no answer within 1500 ms"),
        "{report}"
    );
    assert!(
        line(&report, "clock vs upstream 1").starts_with("ok"),
        "{report}"
    );
    // The wrong МОУО answers QUIC: a refusal, on which the node does not fall back, so
    // neither does the check, though TCP reaches the right one.
    let (_other, other_addr) = serve(&region.join("4202"));
    point_upstreams(&school, &[other_addr, rcoi_addr]);
    let (ok, report) = doctor(school.clone()).await;
    assert!(!ok, "{report}");
    let upstream = line(&report, "upstream 1");
    assert!(
        upstream.starts_with("FAIL")
            && upstream.contains("expected municipality:4201")
            && upstream.contains("does not fall back on a refusal"),
        "{report}"
    );
    point_upstreams(&school, &[silent.local_addr().unwrap(), rcoi_addr]);
    // Nothing answers on TCP either: the line fails and names both.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    with_tcp(closed_addr);
    let (ok, report) = doctor(school).await;
    assert!(!ok, "{report}");
    let upstream = line(&report, "upstream 1");
    assert!(
        upstream.starts_with("FAIL")
            && upstream.contains("QUIC: no answer")
            && upstream.contains(&format!("the TCP fallback at {closed_addr}")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_certificate_must_go_with_its_key_and_name_every_web_name() {
    let dir = demo_region_serving(true);
    let region = dir.path().join("region");
    let school_dir = region.join("420101");
    let school = school_dir.join("node.toml");
    let (_, report) = doctor(school.clone()).await;
    assert!(
        line(&report, "pages certificate (HTTPS)")
            .starts_with("ok    pages certificate (HTTPS): for localhost, 127.0.0.1, 39"),
        "{report}"
    );

    // A name browsers will use that the certificate does not carry.
    let text = std::fs::read_to_string(&school).unwrap();
    let mut config = NodeConfig::parse(&text, "node.toml").unwrap();
    config.node.web_names = vec!["ou-420101.local".to_owned().try_into().unwrap()];
    std::fs::write(&school, toml::to_string(&config).unwrap()).unwrap();
    let (ok, report) = doctor(school.clone()).await;
    assert!(!ok, "{report}");
    assert!(
        line(&report, "pages certificate").starts_with("FAIL")
            && line(&report, "pages certificate").contains("does not name ou-420101.local"),
        "{report}"
    );

    // Another node's key.
    std::fs::copy(
        region.join("420201").join("web.key"),
        school_dir.join("web.key"),
    )
    .unwrap();
    let (ok, report) = doctor(school).await;
    assert!(!ok, "{report}");
    assert!(
        line(&report, "pages certificate").contains("do not go together"),
        "{report}"
    );
}

#[tokio::test]
async fn a_missing_configuration_is_one_clear_failure() {
    let (ok, report) = doctor(PathBuf::from("/nonexistent/node.toml")).await;
    assert!(!ok);
    assert!(
        report.starts_with("FAIL  configuration: /nonexistent/node.toml: cannot read the file"),
        "{report}"
    );
}

/// `doctor --exam E` asks the running node for the readiness checks; with no node running it
/// says so in one failing line rather than passing what it could not check.
#[test]
fn the_readiness_checks_need_the_running_node() {
    let dir = demo_region();
    let config = dir.path().join("region").join("420101").join("node.toml");
    let checks = giasync_node::doctor::check_readiness(
        &config,
        &giasync_node::doctor::ReadinessCheck {
            exam: "is-2024-02-14".parse().unwrap(),
            recording: None,
        },
    );
    assert_eq!(checks.len(), 1, "{checks:?}");
    let line = checks[0].line();
    assert!(
        line.starts_with("FAIL") && line.contains("the node is not running"),
        "{line}"
    );
}
