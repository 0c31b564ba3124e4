//! The metrics endpoint (`GET /metrics` on `[node] metrics`): the node's metrics
//! (`crate::app::metrics`) and its blobs in the Prometheus text exposition format (version
//! 0.0.4), for the region's monitoring to scrape. It carries codes and counts, no personal data;
//! bind it to an address only the monitoring reaches.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
        Some((metrics, blobs)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            render(&metrics, blobs.as_ref()),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "the node is stopping\n").into_response(),
    }
}

/// A label value as the text format quotes it: backslash, double quote and line feed escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: its help and type lines, then its samples (`labels` without braces).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The metrics in the text exposition format.
#[must_use]
pub fn render(m: &Metrics, blobs: Option<&BlobsLine>) -> String {
    let mut out = String::new();
    let one = |value: String| vec![(String::new(), value)];
    family(
        &mut out,
        "giasync_node_info",
        "gauge",
        "The node's identity (always 1).",
        &[(
            format!(
                "node=\"{}\",role=\"{}\"",
                label(&m.node.to_string()),
                m.node.role().id()
            ),
            "1".into(),
        )],
    );
    let peer =
        |p: &crate::app::metrics::PeerMetrics| format!("peer=\"{}\"", label(&p.peer.to_string()));
    family(
        &mut out,
        "giasync_peer_connected",
        "gauge",
        "1 while a connection to the peer is up.",
        &m.peers
            .iter()
            .map(|p| (peer(p), u8::from(p.connected).to_string()))
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "giasync_peer_last_contact_timestamp_seconds",
        "gauge",
        "When a frame last arrived from the peer (Unix time).",
        &m.peers
            .iter()
            .filter_map(|p| {
                let ms = p.last_contact_ms?;
                Some((peer(p), format!("{}.{:03}", ms / 1000, ms % 1000)))
            })
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "giasync_peer_documents_pending",
        "gauge",
        "Shared documents a connected peer has not confirmed holding.",
        &m.peers
            .iter()
            .map(|p| (peer(p), p.docs_pending.to_string()))
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "giasync_documents",
        "gauge",
        "Documents the node holds.",
        &one(m.docs.to_string()),
    );
    for (name, help, value) in [
        (
            "giasync_frames_sent_total",
            "Sync frames sent since the node started.",
            m.frames_sent,
        ),
        (
            "giasync_bytes_sent_total",
            "Bytes of sync frames sent since the node started.",
            m.bytes_sent,
        ),
        (
            "giasync_frames_received_total",
            "Sync frames received from connected peers since the node started.",
            m.frames_received,
        ),
        (
            "giasync_bytes_received_total",
            "Bytes of sync frames received since the node started.",
            m.bytes_received,
        ),
        (
            "giasync_changes_applied_total",
            "Document changes applied since the node started.",
            m.changes_applied,
        ),
        (
            "giasync_messages_quarantined_total",
            "Frames refused and quarantined since the node started.",
            m.messages_quarantined,
        ),
    ] {
        family(&mut out, name, "counter", help, &one(value.to_string()));
    }
    let mut sheets = Vec::new();
    for (school, s) in &m.schools {
        for (state, n) in [
            ("entered", s.entered),
            ("verified", s.verified),
            ("invalid", s.invalid),
        ] {
            sheets.push((
                format!("school=\"{school}\",state=\"{state}\""),
                n.to_string(),
            ));
        }
    }
    family(
        &mut out,
        "giasync_sheets",
        "gauge",
        "Score sheets per school: entered (in its protocols held here), and the РЦОИ's receipts: verified, invalid.",
        &sheets,
    );
    if let Some(b) = blobs {
        for (name, help, value) in [
            (
                "giasync_blobs_held",
                "Blobs (recordings) held whole.",
                b.held.to_string(),
            ),
            (
                "giasync_blobs_held_bytes",
                "Bytes of the blobs held.",
                b.held_bytes.to_string(),
            ),
            (
                "giasync_blobs_fetching",
                "Blobs being fetched.",
                b.fetching.to_string(),
            ),
            (
                "giasync_blobs_bytes_left",
                "Bytes still to fetch.",
                b.bytes_left.to_string(),
            ),
            (
                "giasync_blobs_rate_bytes_per_second",
                "The current fetch rate.",
                b.rate_bytes_s.to_string(),
            ),
        ] {
            family(&mut out, name, "gauge", help, &one(value));
        }
    }
    out
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
                },
                PeerMetrics {
                    peer: school("420102"),
                    connected: false,
                    last_contact_ms: None,
                    docs_pending: 0,
                },
            ],
            docs: 8,
            frames_sent: 10,
            bytes_sent: 2048,
            frames_received: 7,
            bytes_received: 1024,
            changes_applied: 5,
            messages_quarantined: 1,
            schools: vec![(
                SchoolCode::new("420101").unwrap(),
                SchoolSheets {
                    entered: 3,
                    verified: 2,
                    invalid: 1,
                },
            )],
        };
        let text = render(&metrics, None);
        let a = school("420101").to_string();
        let b = school("420102").to_string();
        let node = metrics.node.to_string();
        for line in [
            format!("giasync_node_info{{node=\"{node}\",role=\"municipality\"}} 1"),
            format!("giasync_peer_connected{{peer=\"{a}\"}} 1"),
            format!("giasync_peer_connected{{peer=\"{b}\"}} 0"),
            format!("giasync_peer_last_contact_timestamp_seconds{{peer=\"{a}\"}} 1700000000.123"),
            format!("giasync_peer_documents_pending{{peer=\"{a}\"}} 2"),
            "giasync_documents 8".to_owned(),
            "# TYPE giasync_bytes_sent_total counter".to_owned(),
            "giasync_bytes_sent_total 2048".to_owned(),
            "giasync_frames_received_total 7".to_owned(),
            "giasync_bytes_received_total 1024".to_owned(),
            "giasync_messages_quarantined_total 1".to_owned(),
            "giasync_sheets{school=\"420101\",state=\"entered\"} 3".to_owned(),
            "giasync_sheets{school=\"420101\",state=\"verified\"} 2".to_owned(),
            "giasync_sheets{school=\"420101\",state=\"invalid\"} 1".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // Never heard from: no last-contact sample. No blobs read: no blob family.
        assert!(!text.contains(&format!("last_contact_timestamp_seconds{{peer=\"{b}\"}}")));
        assert!(!text.contains("giasync_blobs_"));
        // A label value is escaped.
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
