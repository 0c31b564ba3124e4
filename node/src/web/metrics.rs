//! The metrics endpoint (`GET /metrics` on `[node] metrics`): the node's metrics
//! (`crate::app::metrics`) and its blobs in the OpenMetrics text format, encoded by the
//! `prometheus-client` crate, for the region's monitoring (Prometheus) to scrape. It carries codes and counts, no personal data;
//! bind it to an address only the monitoring reaches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::app::metrics::Metrics;
use crate::app::status::BlobsLine;

/// Takes one reading of the node: its metrics and, on a running node, its blobs. `None` when
/// the engine has stopped.
pub type Scrape = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Option<(Metrics, Option<BlobsLine>)>> + Send>>
        + Send
        + Sync,
>;

/// The router of the metrics endpoint.
pub fn router(scrape: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(scrape)
}

async fn metrics(State(scrape): State<Scrape>) -> Response {
    match scrape().await {
        Some((metrics, blobs)) => match render(&metrics, blobs.as_ref()) {
            Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics did not encode\n",
            )
                .into_response(),
        },
        None => (StatusCode::SERVICE_UNAVAILABLE, "the node is stopping\n").into_response(),
    }
}

/// What the endpoint serves: OpenMetrics text, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A metric's labels, in order.
type Labels = Vec<(String, String)>;

/// Registers a gauge family with one sample per label set.
fn gauges(
    registry: &mut Registry,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, i64)>,
) {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in samples {
        family.get_or_create(&labels).set(value);
    }
    registry.register(name, help, family);
}

/// Registers one gauge without labels.
fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64, AtomicI64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// Registers one counter (its samples are named `NAME_total`).
fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64, AtomicU64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The metrics in the OpenMetrics text format, encoded by `prometheus-client`. A registry is
/// filled from one reading of the node on every scrape: the node keeps its own counts (the
/// engine's, the documents'), and the registry only writes them out.
pub fn render(m: &Metrics, blobs: Option<&BlobsLine>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    gauges(
        &mut registry,
        "giasync_node_info",
        "The node's identity (always 1).",
        [(
            vec![
                ("node".to_owned(), m.node.to_string()),
                ("role".to_owned(), m.node.role().id().to_owned()),
            ],
            1,
        )],
    );
    let peer = |p: &crate::app::metrics::PeerMetrics| vec![("peer".to_owned(), p.peer.to_string())];
    gauges(
        &mut registry,
        "giasync_peer_connected",
        "1 while a connection to the peer is up.",
        m.peers.iter().map(|p| (peer(p), i64::from(p.connected))),
    );
    gauges(
        &mut registry,
        "giasync_peer_over_tcp",
        "1 while the connection to the peer runs over the TCP fallback (UDP does not reach it).",
        m.peers.iter().map(|p| {
            let over_tcp = p.link == Some(giasync_shared::sync::Link::Tcp);
            (peer(p), i64::from(over_tcp))
        }),
    );
    let last_contact = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for p in &m.peers {
        if let Some(ms) = p.last_contact_ms {
            last_contact.get_or_create(&peer(p)).set(ms as f64 / 1000.0);
        }
    }
    registry.register(
        "giasync_peer_last_contact_timestamp_seconds",
        "When a frame last arrived from the peer (Unix time).",
        last_contact,
    );
    gauges(
        &mut registry,
        "giasync_peer_documents_pending",
        "Shared documents a connected peer has not confirmed holding.",
        m.peers.iter().map(|p| (peer(p), count(p.docs_pending))),
    );
    gauge(
        &mut registry,
        "giasync_documents",
        "Documents the node holds.",
        count(m.docs),
    );
    if let Some(bytes) = m.store_bytes {
        gauge(
            &mut registry,
            "giasync_store_bytes",
            "The size of the node's store file (the recordings are counted apart, with the blobs).",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        );
    }
    for (name, help, value) in [
        (
            "giasync_frames_sent",
            "Sync frames sent since the node started.",
            m.frames_sent,
        ),
        (
            "giasync_bytes_sent",
            "Bytes of sync frames sent since the node started.",
            m.bytes_sent,
        ),
        (
            "giasync_frames_received",
            "Sync frames received from connected peers since the node started.",
            m.frames_received,
        ),
        (
            "giasync_bytes_received",
            "Bytes of sync frames received since the node started.",
            m.bytes_received,
        ),
        (
            "giasync_changes_applied",
            "Document changes applied since the node started.",
            m.changes_applied,
        ),
        (
            "giasync_messages_quarantined",
            "Frames refused and quarantined since the node started.",
            m.messages_quarantined,
        ),
    ] {
        counter(&mut registry, name, help, value);
    }
    gauges(
        &mut registry,
        "giasync_sheets",
        "Score sheets per school: entered (in its protocols held here), and the РЦОИ's receipts: verified, invalid.",
        m.schools.iter().flat_map(|(school, s)| {
            [
                ("entered", s.entered),
                ("verified", s.verified),
                ("invalid", s.invalid),
            ]
            .into_iter()
            .map(move |(state, n)| {
                (
                    vec![
                        ("school".to_owned(), school.to_string()),
                        ("state".to_owned(), state.to_owned()),
                    ],
                    count(n),
                )
            })
        }),
    );
    if let Some(b) = blobs {
        for (name, help, value) in [
            (
                "giasync_blobs_held",
                "Blobs (recordings, materials) held whole.",
                count(b.held),
            ),
            (
                "giasync_blobs_held_bytes",
                "Bytes of the blobs held.",
                count(b.held_bytes),
            ),
            (
                "giasync_blobs_fetching",
                "Blobs being fetched.",
                count(b.fetching),
            ),
            (
                "giasync_blobs_bytes_left",
                "Bytes still to fetch.",
                count(b.bytes_left),
            ),
            (
                "giasync_blobs_rate_bytes_per_second",
                "The current fetch rate.",
                count(b.rate_bytes_s),
            ),
        ] {
            gauge(&mut registry, name, help, value);
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::metrics::{PeerMetrics, SchoolSheets};
    use giasync_shared::codes::{MunicipalityCode, OrgCode, RegionCode, SchoolCode};
    use giasync_shared::identity::NodeIdentity;

    /// The exposition of a МОУО hub with one school connected and one never heard from, written
    /// out line by line.
    #[test]
    fn the_metrics_are_written_in_the_text_format() {
        let region = RegionCode::new("42").unwrap();
        let municipality = MunicipalityCode::new("4201").unwrap();
        let school = |code: &str| NodeIdentity {
            region,
            org: OrgCode::School(SchoolCode::new(code).unwrap()),
            municipality: Some(municipality),
        };
        let metrics = Metrics {
            node: NodeIdentity {
                region,
                org: OrgCode::Municipality(municipality),
                municipality: Some(municipality),
            },
            peers: vec![
                PeerMetrics {
                    peer: school("420101"),
                    connected: true,
                    last_contact_ms: Some(1_700_000_000_123),
                    docs_pending: 2,
                    link: Some(giasync_shared::sync::Link::Tcp),
                },
                PeerMetrics {
                    peer: school("420102"),
                    connected: false,
                    last_contact_ms: None,
                    docs_pending: 0,
                    link: None,
                },
            ],
            docs: 8,
            frames_sent: 10,
            bytes_sent: 2048,
            frames_received: 7,
            bytes_received: 1024,
            changes_applied: 5,
            messages_quarantined: 1,
            store_bytes: Some(1_048_576),
            schools: vec![(
                SchoolCode::new("420101").unwrap(),
                SchoolSheets {
                    entered: 3,
                    verified: 2,
                    invalid: 1,
                },
            )],
        };
        let text = render(&metrics, None).unwrap();
        let a = school("420101").to_string();
        let b = school("420102").to_string();
        let node = metrics.node.to_string();
        for line in [
            format!("giasync_node_info{{node=\"{node}\",role=\"municipality\"}} 1"),
            format!("giasync_peer_connected{{peer=\"{a}\"}} 1"),
            format!("giasync_peer_over_tcp{{peer=\"{a}\"}} 1"),
            format!("giasync_peer_over_tcp{{peer=\"{b}\"}} 0"),
            format!("giasync_peer_connected{{peer=\"{b}\"}} 0"),
            format!("giasync_peer_last_contact_timestamp_seconds{{peer=\"{a}\"}} 1700000000.123"),
            format!("giasync_peer_documents_pending{{peer=\"{a}\"}} 2"),
            "giasync_documents 8".to_owned(),
            "# TYPE giasync_bytes_sent counter".to_owned(),
            "giasync_bytes_sent_total 2048".to_owned(),
            "giasync_frames_received_total 7".to_owned(),
            "giasync_bytes_received_total 1024".to_owned(),
            "giasync_messages_quarantined_total 1".to_owned(),
            "giasync_store_bytes 1048576".to_owned(),
            "giasync_sheets{school=\"420101\",state=\"entered\"} 3".to_owned(),
            "giasync_sheets{school=\"420101\",state=\"verified\"} 2".to_owned(),
            "giasync_sheets{school=\"420101\",state=\"invalid\"} 1".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // Never heard from: no last-contact sample. No blobs read: no blob family.
        assert!(!text.contains(&format!("last_contact_timestamp_seconds{{peer=\"{b}\"}}")));
        assert!(!text.contains("giasync_blobs_"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// Every metric the РЦОИ's Grafana dashboard (`docs/grafana-rcoi.json`) queries is one the
    /// endpoint serves: names read from the dashboard's queries, looked for among the samples
    /// of a full reading (blobs included).
    #[test]
    fn the_dashboard_asks_only_for_metrics_the_endpoint_serves() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/grafana-rcoi.json")).unwrap();
        let region = RegionCode::new("42").unwrap();
        let metrics = Metrics {
            node: NodeIdentity {
                region,
                org: OrgCode::Rcoi(region),
                municipality: None,
            },
            peers: vec![PeerMetrics {
                peer: NodeIdentity {
                    region,
                    org: OrgCode::Municipality(MunicipalityCode::new("4201").unwrap()),
                    municipality: Some(MunicipalityCode::new("4201").unwrap()),
                },
                connected: true,
                last_contact_ms: Some(1_700_000_000_000),
                docs_pending: 0,
                link: Some(giasync_shared::sync::Link::Quic),
            }],
            docs: 1,
            frames_sent: 1,
            bytes_sent: 1,
            frames_received: 1,
            bytes_received: 1,
            changes_applied: 1,
            messages_quarantined: 0,
            schools: vec![(SchoolCode::new("420101").unwrap(), SchoolSheets::default())],
            store_bytes: None,
        };
        let blobs = BlobsLine {
            held: 1,
            held_bytes: 1,
            fetching: 0,
            bytes_left: 0,
            rate_bytes_s: 0,
            eta_s: None,
        };
        let text = render(&metrics, Some(&blobs)).unwrap();
        let served: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let mut asked = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let mut rest = expr;
                while let Some(at) = rest.find("giasync_") {
                    let name: String = rest[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &rest[at + name.len()..];
                    asked.insert(name);
                }
            }
        }
        assert!(asked.len() >= 8, "{asked:?}");
        for name in &asked {
            assert!(
                served.contains(name.as_str()),
                "{name} is not served:\n{text}"
            );
        }
    }
}
