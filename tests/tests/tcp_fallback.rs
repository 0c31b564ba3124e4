//! A school whose network drops UDP (a content filter that passes only TCP): QUIC to its МОУО
//! hub never connects, so the school takes the TCP fallback by itself (`[node] listen_tcp` on
//! the hub, `tcp` on the school's upstream), and its signed sheets reach the РЦОИ, verified, and
//! the receipts come back, while status and the metrics say the link is TCP.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use giasync_node::app::Command;
use giasync_shared::sync::Link;
use giasync_tests::{POINTS_FULL, POINTS_LOW, roster_row};

/// A UDP socket that takes every datagram and answers none, counting them: the school's
/// filter, as its QUIC packets meet it.
fn black_hole() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let swallowed = Arc::new(AtomicU64::new(0));
    let count = swallowed.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        while socket.recv_from(&mut buffer).is_ok() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    (addr, swallowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_whose_udp_is_dropped_syncs_its_sheets_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 49_500, 1);
    // Today: the РЦОИ accepts sheets signed on their exam's day only.
    let exam: &'static str = Box::leak(giasync_tests::todays_exam().into_boxed_str());
    let rules = giasync_shared::rules::Rules::is_2024().unwrap();
    let expert = giasync_tests::experts_of(&region, "420101")[0];
    let rows = || {
        vec![
            roster_row("P1", "Иванова", "100001"),
            roster_row("P2", "Петрова", "100002"),
        ]
    };
    // The school reaches its hub only: QUIC to it is swallowed, TCP gets through.
    let (udp, swallowed) = black_hole();
    let mut school_config = giasync_tests::node_config(dir.path(), "420101", &[udp]);
    giasync_tests::apply_all(
        &school_config,
        vec![
            giasync_tests::import(exam, rows()),
            giasync_tests::score_request(
                dir.path(),
                &rules,
                expert,
                exam,
                "420101",
                "P1",
                POINTS_FULL,
            ),
            giasync_tests::score_request(
                dir.path(),
                &rules,
                expert,
                exam,
                "420101",
                "P2",
                POINTS_LOW,
            ),
        ],
    );
    let mut rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    giasync_tests::apply_all(
        &rcoi_config,
        vec![giasync_tests::register(exam, "420101", "4201", rows())],
    );
    rcoi_config.node.web = None;
    let rcoi = giasync_node::service::start(rcoi_config.clone())
        .await
        .unwrap();
    let mut hub_config = giasync_tests::node_config(dir.path(), "4201", &[rcoi.listen.unwrap()]);
    hub_config.node.web = None;
    hub_config.node.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    let hub = giasync_node::service::start(hub_config.clone())
        .await
        .unwrap();
    let hub_tcp = hub.listen_tcp.expect("the hub listens on TCP");

    school_config.upstreams[0].tcp = Some(hub_tcp);
    school_config.node.web = None;
    school_config.node.metrics = Some("127.0.0.1:0".parse().unwrap());
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();

    // Both sheets verified at the РЦОИ, and the receipts back at the school.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (at_rcoi, at_school) = loop {
        let rcoi_status = giasync_tests::ask(&rcoi_config, Command::Status).await;
        let school_status = giasync_tests::ask(&school_config, Command::Status).await;
        let verified: usize = rcoi_status
            .status
            .as_ref()
            .map_or(0, |s| s.schools.iter().map(|s| s.sheets_verified).sum());
        let receipted: usize = school_status
            .status
            .as_ref()
            .map_or(0, |s| s.schools.iter().map(|s| s.sheets_at_rcoi).sum());
        if verified == 2 && receipted == 2 {
            break (rcoi_status.status.unwrap(), school_status.status.unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "the sheets did not make it over TCP: {verified} verified at the РЦОИ, {receipted} receipted at the school"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        at_rcoi.schools.iter().all(|s| s.sheets_invalid == 0),
        "{at_rcoi:?}"
    );
    // The school tried QUIC first, and the filter dropped it.
    assert!(
        swallowed.load(Ordering::Relaxed) > 0,
        "the school never tried QUIC"
    );
    // Status says how the school is connected, at the school and at the hub.
    let upstream = at_school
        .peers
        .iter()
        .find(|p| p.peer == "municipality 4201" && p.connected)
        .unwrap_or_else(|| panic!("the school is not connected to its hub: {at_school:?}"));
    assert_eq!(upstream.link, Some(Link::Tcp), "{upstream:?}");
    let hub_status = giasync_tests::ask(&hub_config, Command::Status).await;
    let hub_status = hub_status.status.unwrap();
    let school_at_hub = hub_status
        .peers
        .iter()
        .find(|p| p.peer.starts_with("school 420101"))
        .unwrap_or_else(|| panic!("the hub does not see the school: {hub_status:?}"));
    assert_eq!(
        (school_at_hub.connected, school_at_hub.link),
        (true, Some(Link::Tcp))
    );
    let rcoi_at_hub = hub_status
        .peers
        .iter()
        .find(|p| p.peer == "rcoi 42")
        .map(|p| p.link);
    assert_eq!(rcoi_at_hub, Some(Some(Link::Quic)), "{hub_status:?}");
    // And the metrics.
    let metrics = school.metrics.unwrap();
    let (_, text) =
        tokio::task::spawn_blocking(move || giasync_tests::http_get(metrics, "/metrics").unwrap())
            .await
            .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("giasync_peer_over_tcp{") && l.ends_with(" 1")),
        "{text}"
    );
    school.stop();
    hub.stop();
    rcoi.stop();
}
