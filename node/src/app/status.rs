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
    /// How the connection is carried, while connected: `quic`, or `tcp` (the fallback for
    /// networks that drop UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<giasync_shared::sync::Link>,
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
    /// Set when the node's certificate expires within [`CERT_RENEW_DAYS`], or expired: what to
    /// do about it.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// Within this many days of its expiry the node's certificate is named on `status`, `doctor`
/// and the hub's pages, so it is renewed in time (`docs/operations.md`, Renew).
pub const CERT_RENEW_DAYS: i64 = 30;

/// When the node's certificate (DER) expires, if that is within [`CERT_RENEW_DAYS`] of `now`
/// or past; `None` otherwise, or when it does not read.
#[must_use]
pub fn certificate_expiring(der: &[u8], now: Timestamp) -> Option<Timestamp> {
    let summary = giasync_certs::show::summarize_der(der).ok()?;
    let not_after_ms = i64::try_from(summary.not_after.unix_timestamp_nanos() / 1_000_000).ok()?;
    let renew_ms = CERT_RENEW_DAYS * 86_400_000;
    (not_after_ms - now.unix_ms() < renew_ms)
        .then(|| Timestamp::from_unix_ms(not_after_ms).ok())
        .flatten()
}

/// [`certificate_expiring`] as `status` says it.
fn certificate_warning(der: &[u8], now: Timestamp) -> Option<String> {
    let expires = certificate_expiring(der, now)?;
    Some(if expires <= now {
        format!(
            "the node's certificate expired at {expires}: peers refuse it; issue a new one (docs/operations.md, Renew)"
        )
    } else {
        format!(
            "the node's certificate expires at {expires}, in {} days: issue a new one before then (docs/operations.md, Renew)",
            (expires.unix_ms() - now.unix_ms()) / 86_400_000
        )
    })
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
    /// When the hub's certificate expires, if soon ([`certificate_expiring`]).
    certificate_expires: Option<Timestamp>,
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
                    link: r.link,
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
    let now = timestamp(now_ms)?;
    Ok(OversightSnapshot {
        me,
        municipality,
        contacts,
        quarantined: engine.stats().messages_quarantined,
        now,
        certificate_expires: certificate_expiring(engine.node_cert(), now),
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
    let mut view = giasync_shared::oversight::build_cached(
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
    );
    view.certificate_expires = snapshot
        .certificate_expires
        .map(|t| t.at_offset(context.clock));
    view
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
                let editions = super::results::editions(engine, context, *id);
                entry.familiarised += familiarised(doc, context, &editions).0.len();
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
                link: r.link,
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
        certificate: Timestamp::from_unix_ms(crate::run::now_ms())
            .ok()
            .and_then(|now| certificate_warning(engine.node_cert(), now)),
    }
}

#[cfg(test)]
mod certificate_tests {
    use giasync_certs::pki::{Pki, Validity};
    use giasync_shared::codes::{MunicipalityCode, OrgCode, RegionCode};
    use giasync_shared::identity::NodeIdentity;

    use super::*;

    /// A МОУО hub's certificate valid `days` from `made`, as DER, issued by a region CA.
    fn hub_cert(made: time::OffsetDateTime, days: i64) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let region = RegionCode::new("42").unwrap();
        let mut pki = Pki::init(dir.path(), region, "Тест", made).unwrap();
        let m = MunicipalityCode::new("4201").unwrap();
        let identity = NodeIdentity {
            region,
            org: OrgCode::Municipality(m),
            municipality: Some(m),
        };
        let issued = pki
            .issue_node(
                identity,
                "localhost",
                Validity::days_from(made, days).unwrap(),
            )
            .unwrap();
        giasync_certs::show::certs_from_pem(issued.cert_pem.as_bytes())
            .unwrap()
            .remove(0)
    }

    /// A certificate is named 30 days before it expires, and after; not before.
    #[test]
    fn a_certificate_is_named_from_thirty_days_before_it_expires() {
        let made = time::OffsetDateTime::from_unix_timestamp(1_707_868_800).unwrap();
        let made_ms = 1_707_868_800_000;
        let day_ms = 86_400_000;
        let der = hub_cert(made, 90);
        let at = |days: i64| Timestamp::from_unix_ms(made_ms + days * day_ms).unwrap();
        assert_eq!(certificate_expiring(&der, at(10)), None);
        assert_eq!(certificate_expiring(&der, at(59)), None);
        let expires = certificate_expiring(&der, at(61)).expect("29 days left");
        // Issued for 90 days from `made` (the CA may round to the second).
        assert!(
            (expires.unix_ms() - (made_ms + 90 * day_ms)).abs() < 1_000,
            "{expires}"
        );
        let warning = certificate_warning(&der, at(61)).unwrap();
        assert!(
            warning.contains("in 28 days") || warning.contains("in 29 days"),
            "{warning}"
        );
        let warning = certificate_warning(&der, at(91)).unwrap();
        assert!(warning.contains("expired"), "{warning}");
        assert_eq!(certificate_expiring(b"not a certificate", at(89)), None);
    }
}
