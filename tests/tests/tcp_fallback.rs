//! A school whose network drops UDP (a content filter that passes only TCP): QUIC to its МОУО
//! hub never connects, so the school takes the TCP fallback by itself (`[node] listen_tcp` on
//! the hub, `tcp` on the school's upstream), and its signed sheets reach the РЦОИ, verified, and
//! the receipts come back, while status and the metrics say the link is TCP.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
        std::iter::once(giasync_tests::import(exam, rows()))
            .chain(
                [("P1", POINTS_FULL), ("P2", POINTS_LOW)].map(|(p, points)| {
                    giasync_tests::score_request(
                        dir.path(),
                        &rules,
                        expert,
                        exam,
                        "420101",
                        p,
                        points,
                    )
                }),
            )
            .collect(),
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

/// A UDP relay to `hub` that drops every datagram until its switch is turned on: a school's
/// filter that starts passing UDP again.
async fn relay(hub: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicBool>) {
    let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    back.connect(hub).await.unwrap();
    let addr = front.local_addr().unwrap();
    let open = Arc::new(AtomicBool::new(false));
    let school: Arc<std::sync::Mutex<Option<std::net::SocketAddr>>> = Arc::default();
    let (up_front, up_back, up_open, up_school) =
        (front.clone(), back.clone(), open.clone(), school.clone());
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65_536];
        while let Ok((n, from)) = up_front.recv_from(&mut buffer).await {
            if up_open.load(Ordering::Relaxed) {
                *up_school.lock().unwrap() = Some(from);
                let _ = up_back.send(&buffer[..n]).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65_536];
        while let Ok(n) = back.recv(&mut buffer).await {
            let to = *school.lock().unwrap();
            if let Some(to) = to {
                let _ = front.send_to(&buffer[..n], to).await;
            }
        }
    });
    (addr, open)
}

/// The school's upstream link as its status says: connected, and how.
async fn upstream_link(config: &giasync_shared::config::NodeConfig) -> Option<Link> {
    let status = giasync_tests::ask(config, Command::Status).await.status?;
    status
        .peers
        .iter()
        .find(|p| p.peer == "municipality 4201" && p.connected)
        .and_then(|p| p.link)
}

/// On TCP, the school tries QUIC again (`[node] quic_probe_s`); once the filter passes UDP, it
/// moves to QUIC, and documents go on flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_on_tcp_moves_back_to_quic_when_udp_passes_again() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 49_520, 1);
    let mut rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    rcoi_config.node.web = None;
    let rcoi = giasync_node::service::start(rcoi_config).await.unwrap();
    let mut hub_config = giasync_tests::node_config(dir.path(), "4201", &[rcoi.listen.unwrap()]);
    hub_config.node.web = None;
    hub_config.node.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    let hub = giasync_node::service::start(hub_config).await.unwrap();
    let (udp, open) = relay(hub.listen.unwrap()).await;
    let mut school_config = giasync_tests::node_config(dir.path(), "420101", &[udp]);
    school_config.upstreams[0].tcp = hub.listen_tcp;
    school_config.node.web = None;
    school_config.node.quic_probe_s = Some(1);
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();
    let until = |want: Link, within: Duration| {
        let config = school_config.clone();
        async move {
            let deadline = Instant::now() + within;
            while upstream_link(&config).await != Some(want) {
                assert!(Instant::now() < deadline, "never connected over {want}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    until(Link::Tcp, Duration::from_secs(30)).await;
    // UDP passes again: within a probe (1 s) and an attempt, the school is on QUIC.
    open.store(true, Ordering::Relaxed);
    until(Link::Quic, Duration::from_secs(20)).await;
    // And a change made now reaches the hub over it.
    let protocol: giasync_shared::sync::DocId =
        "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    school
        .change(protocol, |tx| {
            automerge::transaction::Transactable::put(tx, automerge::ROOT, "after", "quic")
                .map(|_| ())
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held = hub.read(protocol).await.is_some_and(|d| {
            automerge::ReadDoc::get(&d, automerge::ROOT, "after")
                .ok()
                .flatten()
                .is_some()
        });
        if held {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change never reached the hub over QUIC"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(upstream_link(&school_config).await, Some(Link::Quic));
    school.stop();
    hub.stop();
    rcoi.stop();
}
