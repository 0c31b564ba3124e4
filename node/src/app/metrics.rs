//! What a node's metrics endpoint reports (`[node] metrics` in node.toml, served by
//! `crate::web::metrics`): its peers and their state, what it sent and refused, the documents it
//! holds, and per school the score sheets its protocols hold and the РЦОИ's receipts of them.
//! Read on the engine thread from what the engine and the documents hold, without verifying
//! or parsing any record: a scrape walks the protocols' `sheet/` keys and the РЦОИ documents'
//! receipts (at the РЦОИ of a region, some 32,000 of each), not signatures.

use giasync_shared::content;
use giasync_shared::identity::NodeIdentity;
use giasync_shared::ingest::Receipt;
use giasync_shared::sync::{DocKind, Engine};

/// A peer as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMetrics {
    pub peer: NodeIdentity,
    pub connected: bool,
    /// When a frame last arrived from it (ms since the epoch), if ever.
    pub last_contact_ms: Option<i64>,
    /// Shared documents it has not confirmed holding (connected peers only).
    pub docs_pending: usize,
    /// How the connection is carried (connected peers only).
    pub link: Option<giasync_shared::sync::Link>,
}

/// A school's sheets as the documents this node holds count them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolSheets {
    /// Sheets in the school's protocols (every exam held).
    pub entered: usize,
    /// The РЦОИ's receipts of them: verified, and invalid (on verification or on receipt).
    pub verified: usize,
    pub invalid: usize,
}

/// A node's metrics at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub node: NodeIdentity,
    pub peers: Vec<PeerMetrics>,
    pub docs: usize,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub frames_received: u64,
    pub bytes_received: u64,
    pub changes_applied: u64,
    pub messages_quarantined: u64,
    /// By school code, ascending.
    pub schools: Vec<(giasync_shared::codes::SchoolCode, SchoolSheets)>,
    /// The size of the store's file (set by the driver, which knows the file).
    pub store_bytes: Option<u64>,
}

/// Reads the metrics from the engine and its documents.
#[must_use]
pub fn read(engine: &Engine) -> Metrics {
    let stats = engine.stats();
    let mut schools: std::collections::BTreeMap<giasync_shared::codes::SchoolCode, SchoolSheets> =
        Default::default();
    for id in engine.doc_ids() {
        let (Some(DocKind::Protocol), Some(school)) = (id.kind(), id.school()) else {
            continue;
        };
        let Some(protocol) = engine.doc(id) else {
            continue;
        };
        let counts = schools.entry(school).or_default();
        counts.entered += content::sheet_count(protocol);
        let receipts = id
            .sibling(DocKind::Rcoi)
            .and_then(|r| engine.doc(&r))
            .map(content::receipts)
            .unwrap_or_default();
        for text in receipts.values() {
            match Receipt::read(text) {
                Receipt::Verified => counts.verified += 1,
                Receipt::Invalid(_) | Receipt::RefusedOnReceipt(_) => counts.invalid += 1,
            }
        }
    }
    Metrics {
        node: engine.identity(),
        peers: engine
            .peer_reports()
            .into_iter()
            .map(|r| PeerMetrics {
                peer: r.identity,
                connected: r.connected,
                last_contact_ms: r.last_contact_ms,
                docs_pending: r.docs_pending,
                link: r.link,
            })
            .collect(),
        docs: engine.doc_ids().count(),
        frames_sent: stats.frames_sent,
        bytes_sent: stats.bytes_sent,
        frames_received: stats.frames_received,
        bytes_received: stats.bytes_received,
        changes_applied: stats.changes_applied,
        messages_quarantined: stats.messages_quarantined,
        schools: schools.into_iter().collect(),
        store_bytes: None,
    }
}
