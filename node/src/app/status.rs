//! What a node holds and whom it talks to (`status`, for the console), and a hub's oversight of
//! its schools (`giasync_shared::oversight`, for its pages).

use std::collections::BTreeMap;

use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::OrgCode;
use giasync_shared::content;
use giasync_shared::oversight::{Cache, Contact, Inputs, Oversight};
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::results::{familiarised, verified_results};
use super::scoring::settled_protocol;
use super::{Context, Error, timestamp};

/// Per school: documents held and score sheets verified here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolStatus {
    pub school: String,
    pub docs: usize,
    pub participants: usize,
    pub sheets: usize,
    pub sheets_verified: usize,
    pub sheets_invalid: usize,
    pub conflicts: usize,
    /// Sheets the РЦОИ has receipted as verified (the results document carries its receipts).
    pub sheets_at_rcoi: usize,
    /// Results the РЦОИ published for the school (rows), once their signature verifies here.
    #[serde(default)]
    pub results_published: usize,
    /// When the school's node first verified the published results (RFC 3339).
    #[serde(default)]
    pub results_delivered: Option<String>,
    /// Participants whose familiarisation with their result is signed by the organiser.
    #[serde(default)]
    pub familiarised: usize,
    /// On a school's own node: every sheet and whether the РЦОИ holds it.
    #[serde(default)]
    pub sheet_lines: Vec<SheetLine>,
    /// Recordings the school's protocols name, their bytes, and how many the РЦОИ has
    /// receipted (held whole, checked against their hash).
    #[serde(default)]
    pub recordings: usize,
    #[serde(default)]
    pub recording_bytes: u64,
    #[serde(default)]
    pub recordings_at_rcoi: usize,
    /// Recordings the school recorded as destroyed after the keeping period.
    #[serde(default)]
    pub recordings_destroyed: usize,
}

/// The node's own blob store and transfers (filled in by the running node), as the hubs'
/// oversight shows them too.
pub use giasync_shared::oversight::BlobsView as BlobsLine;

/// One score sheet as a school sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetLine {
    pub hash: String,
    pub participant: String,
    pub result: String,
    /// The РЦОИ's receipt (`verified`, `invalid: …`) or `not yet`.
    pub at_rcoi: String,
}

/// A peer as status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLine {
    pub peer: String,
    pub connected: bool,
    /// RFC 3339, if ever heard from.
    pub last_contact: Option<String>,
    pub docs_pending: usize,
}

/// A node's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    pub peers: Vec<PeerLine>,
    pub docs: usize,
    pub quarantined: u64,
    /// Stored records set aside when the node started: attestations whose certificate no
    /// longer vouched for them, documents whose bytes did not load (see the audit log).
    #[serde(default)]
    pub refused_on_load: u64,
    /// Set when the revocation list runs out within 30 days, or ran out (then connections and
    /// new attestations are refused): what to do about it.
    #[serde(default)]
    pub revocation_list: Option<String>,
    pub schools: Vec<SchoolStatus>,
    /// The running node's blobs (none when the store was read without the node).
    #[serde(default)]
    pub blobs: Option<BlobsLine>,
}

/// What a hub's oversight is built from, taken where the documents live (the engine thread):
/// copies of only the documents whose schools' sections the cache does not hold at their
/// present heads, the heads of the rest, and the peers. Building from it
/// ([`build_oversight`]) reads no engine state, so the page work (verifying a region's sheets
/// on the first load) runs off the engine thread.
#[derive(Debug)]
pub struct OversightSnapshot {
    me: giasync_shared::identity::NodeIdentity,
    municipality: Option<giasync_shared::codes::MunicipalityCode>,
    contacts: BTreeMap<giasync_shared::codes::SchoolCode, Contact>,
    quarantined: u64,
    now: Timestamp,
    docs: Vec<(DocId, automerge::Automerge)>,
    unread: Vec<(DocId, Vec<automerge::ChangeHash>)>,
    /// The schools the region directory puts on a route of results.
    routes: BTreeMap<giasync_shared::codes::SchoolCode, giasync_shared::year::Route>,
}

/// Takes what the oversight of this hub is built from, against `cache` (which the caller holds
/// until it builds).
pub fn oversight_snapshot(
    engine: &Engine,
    cache: &Cache,
    now_ms: i64,
) -> Result<OversightSnapshot, Error> {
    let me = engine.identity();
    let municipality = match me.org {
        OrgCode::Municipality(m) => Some(m),
        OrgCode::Rcoi(_) => None,
        OrgCode::School(_) => return Err(Error::NotAHub { node: me }),
    };
    let contacts = engine
        .peer_reports()
        .into_iter()
        .filter_map(|r| {
            let school = r.identity.org.school()?;
            Some((
                school,
                Contact {
                    connected: r.connected,
                    last_contact_ms: r.last_contact_ms,
                    docs_pending: r.docs_pending,
                },
            ))
        })
        .collect();
    let held: Vec<(DocId, Vec<automerge::ChangeHash>)> = engine
        .doc_ids()
        .filter_map(|id| Some((*id, engine.doc(id)?.get_heads())))
        .collect();
    let read: std::collections::BTreeSet<DocId> =
        giasync_shared::oversight::docs_to_read(cache, &held, municipality)
            .into_iter()
            .collect();
    let (to_copy, unread): (Vec<_>, Vec<_>) =
        held.into_iter().partition(|(id, _)| read.contains(id));
    Ok(OversightSnapshot {
        me,
        municipality,
        contacts,
        quarantined: engine.stats().messages_quarantined,
        now: timestamp(now_ms)?,
        routes: engine
            .doc(&DocId::Directory)
            .map(giasync_shared::content::routes)
            .unwrap_or_default(),
        docs: to_copy
            .into_iter()
            .filter_map(|(id, _)| Some((id, engine.doc(&id)?.clone())))
            .collect(),
        unread,
    })
}

/// Builds the oversight view from a snapshot, reading again only what `cache` does not hold.
pub fn build_oversight(
    snapshot: &OversightSnapshot,
    context: &Context,
    cache: &mut Cache,
) -> Oversight {
    giasync_shared::oversight::build_cached(
        Inputs {
            node: snapshot.me.to_string(),
            municipality: snapshot.municipality,
            region: snapshot.me.region.to_string(),
            docs: snapshot.docs.iter().map(|(id, d)| (*id, d)).collect(),
            unread: snapshot.unread.clone(),
            contacts: snapshot.contacts.clone(),
            quarantined: snapshot.quarantined,
            now: snapshot.now,
            utc_offset: context.clock,
            rules: &context.rules,
            year: &context.year,
            calendar: &context.calendar,
            routes: snapshot.routes.clone(),
            directory_for: |certs: &BTreeMap<String, Vec<u8>>| context.verifier.experts(certs),
            verifier: &context.verifier,
        },
        cache,
    )
}

/// The oversight view of a hub's schools (a МОУО hub: only its municipality), built here and
/// now: the admin socket's path. The pages take a snapshot on the engine thread and build
/// elsewhere (`service`).
pub fn oversight(engine: &Engine, context: &Context, now_ms: i64) -> Result<Oversight, Error> {
    let mut cache = context.oversight.blocking_lock();
    let snapshot = oversight_snapshot(engine, &cache, now_ms)?;
    Ok(build_oversight(&snapshot, context, &mut cache))
}

/// What this node holds, per school, with sheets verified against the rules and the CA.
#[must_use]
pub fn status(engine: &Engine, context: &Context) -> Status {
    let mut schools: BTreeMap<String, SchoolStatus> = BTreeMap::new();
    for id in engine.doc_ids() {
        let DocId::School {
            kind, school, exam, ..
        } = id
        else {
            continue;
        };
        let entry = schools
            .entry(school.to_string())
            .or_insert_with(|| SchoolStatus {
                school: school.to_string(),
                ..SchoolStatus::default()
            });
        entry.docs += 1;
        let Some(doc) = engine.doc(id) else { continue };
        match kind {
            DocKind::Roster => entry.participants += content::participants(doc).len(),
            DocKind::Protocol => {
                let sheets = content::sheets(doc);
                if engine.identity().org == OrgCode::School(*school) {
                    let receipts = id
                        .sibling(DocKind::Rcoi)
                        .and_then(|rcoi| engine.doc(&rcoi))
                        .map(content::receipts)
                        .unwrap_or_default();
                    for sheet in &sheets {
                        let Ok(decoded) = sheet.decode_unverified() else {
                            continue;
                        };
                        let hash = sheet.hash().to_string();
                        entry.sheet_lines.push(SheetLine {
                            at_rcoi: receipts
                                .get(&hash)
                                .cloned()
                                .unwrap_or_else(|| "not yet".into()),
                            hash,
                            participant: decoded.subject.participant.to_string(),
                            result: format!("{} {}", decoded.total, decoded.outcome.display_name()),
                        });
                    }
                }
                let settled = settled_protocol(engine, context, *id);
                let r = &settled.resolution;
                let invalid = r.unattributed.len()
                    + r.subjects.values().map(|s| s.invalid.len()).sum::<usize>();
                let named = giasync_shared::recording::recordings(doc);
                entry.recordings += named.len();
                entry.recording_bytes += named.values().map(|r| r.blob.bytes).sum::<u64>();
                entry.recordings_destroyed += giasync_shared::recording::destroyed(doc).len();
                entry.sheets += sheets.len();
                entry.sheets_invalid += invalid;
                entry.sheets_verified += sheets.len().saturating_sub(invalid);
                entry.conflicts += r.conflicts().count();
            }
            DocKind::Rcoi => {
                entry.sheets_at_rcoi += content::receipts(doc)
                    .values()
                    .filter(|v| *v == giasync_shared::ingest::RECEIPT_VERIFIED)
                    .count();
                entry.recordings_at_rcoi += giasync_shared::recording::blob_receipts(doc).len();
                if let Ok(published) = verified_results(doc, context, *exam, *school) {
                    entry.results_published += published.rows.len();
                }
            }
            DocKind::Results => {
                entry.results_delivered = content::delivered(doc).map(|t| t.to_string());
                entry.familiarised += familiarised(doc, context).len();
            }
        }
    }
    Status {
        node: engine.identity().to_string(),
        peers: engine
            .peer_reports()
            .into_iter()
            .map(|r| PeerLine {
                peer: r.identity.to_string(),
                connected: r.connected,
                last_contact: r
                    .last_contact_ms
                    .and_then(|ms| Timestamp::from_unix_ms(ms).ok())
                    .map(|t| t.to_string()),
                docs_pending: r.docs_pending,
            })
            .collect(),
        docs: engine.doc_ids().count(),
        quarantined: engine.stats().messages_quarantined,
        refused_on_load: engine.stats().attestations_refused_on_load
            + engine.stats().docs_refused_on_load,
        revocation_list: context
            .verifier
            .crl_warning(time::OffsetDateTime::now_utc()),
        schools: schools.into_values().collect(),
        blobs: None,
    }
}
