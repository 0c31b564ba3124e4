//! The metrics endpoint of a running node (`[node] metrics`): Prometheus's text format over
//! HTTP, with the node's identity, its upstream's connection and the documents it holds.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schools_metrics_show_its_upstream_connected_and_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 48_200, 1);
    let rcoi = giasync_node::service::start(giasync_tests::node_config(dir.path(), "42", &[]))
        .await
        .unwrap();
    let hub = giasync_node::service::start(giasync_tests::node_config(
        dir.path(),
        "4201",
        &[rcoi.listen.unwrap()],
    ))
    .await
    .unwrap();
    let mut config = giasync_tests::node_config(
        dir.path(),
        "420101",
        &[hub.listen.unwrap(), rcoi.listen.unwrap()],
    );
    config.node.metrics = Some("127.0.0.1:0".parse().unwrap());
    let school = giasync_node::service::start(config).await.unwrap();
    let addr = school.metrics.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (status, text) =
            tokio::task::spawn_blocking(move || giasync_tests::http_get(addr, "/metrics").unwrap())
                .await
                .unwrap();
        assert_eq!(status, 200, "{text}");
        let up = text.lines().any(|l| {
            l.starts_with("giasync_peer_connected{")
                && l.contains("municipality 4201")
                && l.ends_with(" 1")
        });
        // Connected, and the hub's first frames counted as received.
        let received = text
            .lines()
            .find_map(|l| l.strip_prefix("giasync_bytes_received_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if up && received > 0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the РЦОИ never showed connected:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        text.contains("giasync_node_info{node=\"") && text.contains("role=\"school\"} 1"),
        "{text}"
    );
    assert!(text.contains("# TYPE giasync_bytes_sent counter"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("giasync_documents ")),
        "{text}"
    );
    // A running node reads its blob store too.
    assert!(
        text.lines().any(|l| l == "giasync_blobs_fetching 0"),
        "{text}"
    );
    // Anything but /metrics is not served there.
    let (status, _) =
        tokio::task::spawn_blocking(move || giasync_tests::http_get(addr, "/").unwrap())
            .await
            .unwrap();
    assert_eq!(status, 404);
    school.stop();
    hub.stop();
    rcoi.stop();
}
