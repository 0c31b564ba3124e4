//! What a run found: the invariants, the figures operators asked for, a human summary, JSON and
//! an SVG plot of the day.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::content;
use giasync_shared::ingest::{self, RECEIPT_VERIFIED};
use giasync_shared::participant::Category;
use giasync_shared::record::SheetSubject;
use giasync_shared::resolve::Verdict;
use serde::Serialize;
use sha2::Digest;

use crate::plan::{Fault, Kind, MINUTE_MS, SheetKind};
use crate::region::Region;
use crate::scenario::AdversaryKind;

/// What the recordings came to.
struct Recordings {
    invariant: Invariant,
    at_rcoi: usize,
    queued_bytes: u64,
}

/// How long before the end of a run a node (a МОУО, or the РЦОИ) must still have been storing
/// pieces of recordings for those the РЦОИ lacks to count as on their way, not stuck.
const RECORDINGS_MOVING_MS: i64 = 60_000;

/// Every recording a school took in (as the run made it: its hash and length) reached the РЦОИ
/// piece by piece as the school sent it (the run's own record, by the simulator's token, not
/// the transfer machine's check), is held whole there and receipted in the РЦОИ's document for
/// that school, unless the run's end came while its school's recordings were still moving:
/// then the bytes still queued are said. Judged against what the schools made, not what the
/// planner asked for.
/// What the materials check found.
struct MaterialsFound {
    invariant: Invariant,
    holding: usize,
    median_s: Option<f64>,
    all_s: Option<f64>,
}

/// Every school holds the materials package the РЦОИ named: judged by what each school's blob
/// transfers completed (the production machine's `Complete`, once every piece was checked),
/// counted against the plan's schools.
fn materials_check(region: &Region) -> MaterialsFound {
    let observed = region.observed();
    let schools = region.plan().schools.len();
    let name = "every school holds the exam materials package by 07:30";
    let Some((blob, named_ms)) = observed.materials else {
        return MaterialsFound {
            invariant: Invariant {
                name,
                ok: true,
                detail: "no package named".into(),
            },
            holding: 0,
            median_s: None,
            all_s: None,
        };
    };
    // 07:30 of the exam day, in the run's time (ms since the region's midnight), written out
    // here (seed 002 §30) rather than read from the package or the engine.
    let opens_ms: i64 = 7 * 3_600_000 + 30 * 60_000;
    let late: Vec<String> = observed
        .materials_at_school_ms
        .iter()
        .filter(|&(_, &at)| at >= opens_ms)
        .take(5)
        .map(|(&s, _)| region.plan().schools[s].code.to_string())
        .collect();
    let mut waits: Vec<i64> = observed
        .materials_at_school_ms
        .values()
        .map(|&at| at - named_ms)
        .collect();
    waits.sort_unstable();
    let holding = waits.len();
    let all_s = (holding == schools)
        .then(|| waits.last().map(|&w| w as f64 / 1000.0))
        .flatten();
    let median_s = waits.get(holding / 2).map(|&w| w as f64 / 1000.0);
    let missing: Vec<String> = (0..schools)
        .filter(|s| !observed.materials_at_school_ms.contains_key(s))
        .take(5)
        .map(|s| region.plan().schools[s].code.to_string())
        .collect();
    MaterialsFound {
        invariant: Invariant {
            name,
            ok: holding == schools && late.is_empty(),
            detail: if !late.is_empty() {
                format!("held only after 07:30 at: {}", late.join(", "))
            } else if holding == schools {
                format!(
                    "{holding} of {schools} schools, {} bytes, all within {:.1} s of the РЦОИ naming it",
                    blob.bytes,
                    all_s.unwrap_or(0.0)
                )
            } else {
                format!(
                    "{holding} of {schools} schools hold it; not: {}",
                    missing.join(", ")
                )
            },
        },
        holding,
        median_s,
        all_s,
    }
}

fn recordings_check(region: &Region) -> Recordings {
    let observed = region.observed();
    let held = region.recordings_held_at_rcoi();
    let mut receipts: BTreeMap<usize, BTreeSet<giasync_shared::blob::BlobHash>> = BTreeMap::new();
    if let Some(rcoi) = region.rcoi() {
        for s in 0..region.plan().schools.len() {
            let doc = ingest::receipts_of(region.protocol_of(s)).and_then(|r| rcoi.doc(&r));
            receipts.insert(
                s,
                doc.map(giasync_shared::recording::blob_receipts)
                    .unwrap_or_default()
                    .into_keys()
                    .collect(),
            );
        }
    }
    // Pieces of a blob of `bytes`, written out here: 256 KiB each, the last one shorter.
    let pieces = |bytes: u64| bytes.div_ceil(256 * 1024);
    let every_piece_arrived = |blob: &giasync_shared::blob::BlobRef| {
        let bits = observed.pieces_at_rcoi.get(&blob.hash);
        (0..pieces(blob.bytes)).all(|i| {
            bits.and_then(|b| b.get((i / 64) as usize))
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
        })
    };
    // A recording the РЦОИ lacks when the run ends (it ends early only once the РЦОИ holds
    // them all) counts as on its way if pieces of its school's recordings were still being
    // stored somewhere in the run's last minute; a school whose recordings stopped moving
    // (a file lost, pieces spoiled) breaks the invariant.
    let moving = |s: usize| {
        observed
            .last_piece_ms_by_school
            .get(&s)
            .is_some_and(|&at| observed.end_ms - at <= RECORDINGS_MOVING_MS)
    };
    let (mut missing, mut stuck) = (0, Vec::new());
    let mut queued_bytes = 0;
    for (s, blob, _) in &observed.recordings {
        let whole = held.get(&blob.hash) == Some(blob);
        let arrived = every_piece_arrived(blob);
        let receipted = receipts.get(s).is_some_and(|r| r.contains(&blob.hash));
        if whole && arrived && receipted {
            continue;
        }
        missing += 1;
        queued_bytes += blob.bytes;
        if !moving(*s) {
            stuck.push(format!(
                "{} of school {} ({} bytes): {}",
                blob.hash,
                region.plan().schools[*s].code,
                blob.bytes,
                if !arrived {
                    "not every piece reached the РЦОИ"
                } else if !whole {
                    "not held whole"
                } else {
                    "not receipted"
                }
            ));
        }
    }
    let at_rcoi = observed.recordings.len() - missing;
    let ok = stuck.is_empty();
    let detail = if missing == 0 {
        format!(
            "{} recordings taken in, each at the РЦОИ piece by piece, held whole and receipted",
            observed.recordings.len()
        )
    } else if ok {
        format!(
            "the run ended with {missing} recordings on their way, {queued_bytes} bytes still queued"
        )
    } else {
        format!(
            "{} of {} not at the РЦОИ, their school's recordings not moving at the end: {}",
            stuck.len(),
            observed.recordings.len(),
            stuck.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        )
    };
    Recordings {
        invariant: Invariant {
            name: "every recording made is at the РЦОИ and hash-verified",
            ok,
            detail,
        },
        at_rcoi,
        queued_bytes,
    }
}

/// One invariant checked at the end of a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Invariant {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// A point of the day's progress: local time (minutes since midnight), sheets entered so far,
/// sheets verified at the РЦОИ so far.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Point {
    pub minute: i64,
    pub entered: usize,
    pub safe_at_rcoi: usize,
}

/// The real time (ms) to build the РЦОИ's oversight view of the whole region at `at_ms` from
/// nothing, then again from the first build's cache; `None` if the РЦОИ is down at the end.
fn oversight_build_ms(region: &Region, at_ms: i64, clock: UtcOffset) -> [Option<f64>; 2] {
    let (Some(rcoi), Ok(now)) = (region.rcoi(), Timestamp::from_unix_ms(at_ms)) else {
        return [None, None];
    };
    let mut cache = giasync_shared::oversight::Cache::default();
    let (Ok(year), Ok(calendar)) = (
        giasync_shared::year::YearData::year_2024(),
        giasync_shared::workdays::ProductionCalendar::shipped(),
    ) else {
        return [None, None];
    };
    let mut timed = || {
        let started = std::time::Instant::now();
        let view = giasync_shared::oversight::build_cached(
            giasync_shared::oversight::Inputs {
                node: rcoi.identity().to_string(),
                municipality: None,
                region: rcoi.identity().region.to_string(),
                docs: rcoi
                    .doc_ids()
                    .filter_map(|id| Some((*id, rcoi.doc(id)?)))
                    .collect(),
                unread: Vec::new(),
                contacts: BTreeMap::new(),
                quarantined: 0,
                now,
                utc_offset: clock,
                rules: region.rules(),
                year: &year,
                calendar: &calendar,
                routes: Default::default(),
                directory_for: |_: &BTreeMap<String, Vec<u8>>| region.directory(),
                verifier: region.ca(),
            },
            &mut cache,
        );
        let ms = (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
        (view, ms)
    };
    let (cold, cold_ms) = timed();
    let (warm, warm_ms) = timed();
    debug_assert_eq!(cold, warm, "a cached build shows what a fresh one does");
    std::hint::black_box((cold, warm));
    [Some(cold_ms), Some(warm_ms)]
}

/// What the hostile nodes of one kind tried (`[[adversaries]]`) and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdversaryOutcome {
    pub kind: AdversaryKind,
    /// Attempts made: forged changes sent on a live connection, old frames sent again, floods
    /// of fragments sent, or sheets entered that must not count.
    pub made: u64,
    /// Of them, refused: forged changes whose refusal a receiver stored (at most 32 per sender
    /// and hour), floods whose connection the receiver closed, sheets the РЦОИ receipted
    /// invalid for the reason they were made invalid. `None` for replays: an old frame is not
    /// refused, it changes nothing (the run's other checks hold that).
    pub refused: Option<u64>,
    /// Forged changes held anywhere (each node's copy counted: one forgery held by a hub and
    /// the РЦОИ counts 2), or sheets the РЦОИ receipted verified or counts: must be 0. `None`
    /// for replays and floods, which carry no change of their own.
    pub applied: Option<u64>,
}

/// The kind of adversary that enters a sheet of `kind`, if one does.
fn adversary_of(kind: SheetKind) -> Option<AdversaryKind> {
    match kind {
        SheetKind::OtherCategory => Some(AdversaryKind::CategoryChange),
        SheetKind::AfterAct => Some(AdversaryKind::SheetAfterAct),
        SheetKind::OutsideRoom => Some(AdversaryKind::ExpertOutsideRoom),
        SheetKind::OtherAttempt => Some(AdversaryKind::WrongAttempt),
        SheetKind::First
        | SheetKind::Correction
        | SheetKind::Conflicting
        | SheetKind::Tampered
        | SheetKind::ByRevokedExpert => None,
    }
}

/// The words the РЦОИ's receipt of a sheet made invalid as `kind` must hold: written out here,
/// not taken from the verifier.
fn reason_expected(kind: SheetKind) -> &'static str {
    match kind {
        SheetKind::Tampered => "the signature does not verify",
        SheetKind::OtherCategory => "but the category of record is",
        SheetKind::AfterAct => "was ended by act",
        SheetKind::OutsideRoom => "is not an expert of room",
        SheetKind::OtherAttempt => "is not an attempt of this date",
        SheetKind::ByRevokedExpert => "was revoked",
        // Sheets that count: no reason of refusal is expected of them.
        SheetKind::First | SheetKind::Correction | SheetKind::Conflicting => "",
    }
}

/// Whether a receipt's text says invalid for the reason a sheet made invalid as `kind` is.
fn invalid_for(receipt: &str, kind: SheetKind) -> bool {
    receipt.starts_with("invalid") && receipt.contains(reason_expected(kind))
}

/// The adversaries that send forged changes: counted together in `attacks_made`,
/// `attacks_refused` and `attacks_applied`.
const FORGERIES: [AdversaryKind; 3] = [
    AdversaryKind::ForeignWrite,
    AdversaryKind::ForgedReceipt,
    AdversaryKind::HubForgery,
];

/// The report of one run. Everything but `wall_s`, `peak_memory_mib`, `ingest_sheets_per_s`,
/// `oversight_build_ms`, `oversight_rebuild_ms` (measurements of this machine),
/// `frames_side_by_side` and `entries_side_by_side` (how many threads ran it) is the same for
/// the same scenario and seed, byte for byte, whatever the thread count.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub random_faults: bool,
    pub municipalities: usize,
    pub schools: usize,
    pub participants: usize,
    pub sheets_entered: usize,
    pub sheets_verified_at_rcoi: usize,
    pub sheets_invalid_at_rcoi: usize,
    /// Sheets made invalid on purpose (a damaged signature, a revoked expert, a category a
    /// hostile school gave its participant).
    pub sheets_invalid_entered: usize,
    pub lost: usize,
    pub unauthorised_applied: u64,
    /// Attempts hostile nodes made (`[[adversaries]]`), the refusals of them the receivers
    /// stored, and their changes held anywhere (must stay 0).
    pub attacks_made: u64,
    pub attacks_refused: u64,
    pub attacks_applied: u64,
    /// The same for every kind of adversary the plan has, in the order of
    /// [`AdversaryKind`], replays and floods and hostile sheets included.
    pub adversaries: Vec<AdversaryOutcome>,
    /// Batches lost whole to in-commit crashes (`[[crashes]] in_commit`): never sent nor
    /// acknowledged, entered again after the restart.
    pub batches_lost_in_commit: u64,
    /// Old frames sent again and floods of unfinished fragments (`replay`, `fragment-flood`
    /// adversaries), and connections engines closed for a broken protocol.
    pub replays_made: u64,
    pub floods_made: u64,
    pub closed_for_protocol: u64,
    /// Sheet latency as the school feels it: from the expert's signature to the school holding
    /// the РЦОИ's receipt, for sheets signed while the school was connected upstream (simulated
    /// ms; `receipts_timed` of them).
    pub receipts_timed: usize,
    pub receipt_latency_p50_ms: Option<i64>,
    pub receipt_latency_p99_ms: Option<i64>,
    /// After a school's network or process came back with sheets not receipted back: simulated
    /// ms until all were (`catchups_timed` of them; the median and the longest).
    pub catchups_timed: usize,
    pub catchup_p50_ms: Option<i64>,
    pub catchup_max_ms: Option<i64>,
    pub foreign_data_at_schools: u64,
    pub messages_quarantined: u64,
    pub conflicts_entered: usize,
    pub conflicts_surfaced: usize,
    pub converged: bool,
    /// Simulated seconds from the last fault healing (or the last entry, if later) to the last
    /// change any node applied before every replica agreed.
    pub convergence_s: Option<f64>,
    /// Bytes on the wire: frames with QUIC/UDP/IP overhead, retransmissions, duplicates and
    /// handshakes.
    pub bytes_total: u64,
    /// Of `bytes_total`, the catch-up exchanges after each (re)connect.
    pub reconnect_bytes: u64,
    /// What a naive design would send in all: the same live traffic, but every catch-up
    /// re-sending every document whole (`bytes_total - reconnect_bytes + naive_reconnect_bytes`).
    pub naive_bytes_total: u64,
    pub naive_reconnect_bytes: u64,
    pub bytes_by_kind: crate::region::BytesByKind,
    pub frames_total: u64,
    pub connections: u64,
    pub faults: usize,
    /// Local time the run ended.
    pub simulated_end: String,
    pub events: u64,
    /// SHA-256 over every frame delivered, with its time and connection: equal digests, equal
    /// runs.
    pub trace_digest: String,
    pub invariants: Vec<Invariant>,
    pub timeline: Vec<Point>,
    pub wall_s: f64,
    pub peak_memory_mib: Option<u64>,
    /// Frames lent out in batches to be taken in by their engines side by side, by whichever
    /// of two threads claims each first (`giasync-sim run --threads 2`); 0 on one thread, and
    /// in a run with `[audio]`, whose run without recordings takes the other core.
    pub frames_side_by_side: u64,
    /// Entries whose changes were made so; 0 on one thread.
    pub entries_side_by_side: u64,
    /// Sheets the РЦОИ verified and receipted per second of the real time it spent doing so
    /// (signature, signer, rules, receipt change), measured on this machine, with the
    /// simulator's allocator (mimalloc; the node keeps the system allocator, about a fifth
    /// slower here on this pass).
    pub ingest_sheets_per_s: Option<f64>,
    /// Real time to build the РЦОИ's oversight view (`giasync_shared::oversight`) of the whole
    /// region at the end of the day, in ms: what one page load of the РЦОИ dashboard costs its
    /// engine thread.
    pub oversight_build_ms: Option<f64>,
    /// The same view built again with the sections the first build left in its cache and
    /// nothing changed since, in ms: what each further page load costs while the day is quiet.
    pub oversight_rebuild_ms: Option<f64>,
    /// Recordings (scenario `[audio]`): their bit rate; how many the schools took in and their
    /// bytes; how many the РЦОИ holds whole, every piece checked, and has receipted; the bytes
    /// of those it does not hold when the run ends (still queued); the blob streams' bytes on
    /// the wire (not in `bytes_total`); pieces refused; when the last recording reached the
    /// РЦОИ (local time).
    pub audio_kbit_s: Option<u32>,
    pub recordings_entered: usize,
    pub recordings_at_rcoi: usize,
    pub audio_bytes: u64,
    pub audio_bytes_queued: u64,
    pub audio_bytes_on_wire: u64,
    pub audio_pieces_refused: u64,
    pub last_recording_at_rcoi: Option<String>,
    /// `receipt_latency_p99_ms` of the same scenario and seed run without recordings: what
    /// the recordings added to the sheets' delay is the difference.
    pub receipt_latency_p99_ms_without_audio: Option<i64>,
    /// The exam materials package (scenario `[materials]`): its size; how many schools hold it
    /// whole; the median and the longest time from the РЦОИ naming it to a school holding it
    /// (the longest only once every school holds it).
    pub materials_bytes: Option<u64>,
    pub materials_schools: usize,
    pub materials_median_s: Option<f64>,
    pub materials_all_schools_s: Option<f64>,
}

impl Report {
    /// Checks the invariants of a finished run and gathers its figures.
    #[must_use]
    pub fn of(region: &Region, wall_s: f64, peak_memory_mib: Option<u64>) -> Report {
        let plan = region.plan();
        let observed = region.observed();
        let mut invariants = Vec::new();

        // Every sheet entered is at the РЦОИ exactly once and verifies.
        let mut at_rcoi: BTreeSet<String> = BTreeSet::new();
        let mut receipts: BTreeMap<String, String> = BTreeMap::new();
        let mut surfaced = BTreeSet::new();
        // Sheets that count at the РЦОИ: the current sheet of each attempt, or the heads of
        // its conflict.
        let mut counted: BTreeSet<String> = BTreeSet::new();
        // Each verified sheet's category and participant, for the category of record below.
        let mut verified_categories: Vec<(usize, String, Category)> = Vec::new();
        // Each verified sheet's attempt, for the acts below.
        let mut verified_subjects: BTreeSet<SheetSubject> = BTreeSet::new();
        // Each verified sheet's expert and participant, for the commission below.
        let mut verified_rooms: Vec<(
            usize,
            giasync_shared::codes::PersonId,
            giasync_shared::codes::ParticipantId,
        )> = Vec::new();
        // The region's nodes settle conflicts by the shipped year's data.
        let settled_by = giasync_shared::year::YearData::year_2024()
            .map(|y| y.settled_by)
            .unwrap_or_default();
        if let Some(rcoi) = region.rcoi() {
            for s in 0..plan.schools.len() {
                let protocol = region.protocol_of(s);
                let Some(doc) = rcoi.doc(&protocol) else {
                    continue;
                };
                let sheets = content::sheets(doc);
                at_rcoi.extend(sheets.iter().map(|s| s.hash().to_string()));
                let school_receipts = ingest::receipts_of(protocol)
                    .and_then(|r| rcoi.doc(&r))
                    .map(content::receipts)
                    .unwrap_or_default();
                receipts.extend(school_receipts);
                // What counts at the РЦОИ: its refusals on receipt and, as things stand, acts
                // and the register decide (the same resolution its publication uses).
                let rcoi_doc = ingest::receipts_of(protocol).and_then(|r| rcoi.doc(&r));
                let resolution = giasync_shared::settlement::resolve_protocol(
                    doc,
                    rcoi_doc,
                    (region.rules(), &settled_by),
                    |_| region.directory(),
                )
                .resolution;
                surfaced.extend(resolution.conflicts().map(|(subject, _)| *subject));
                let mut counted_here = BTreeSet::new();
                for r in resolution.subjects.values() {
                    match &r.verdict {
                        Verdict::Conflict(heads) => {
                            counted_here.extend(heads.iter().map(|h| h.hash.to_string()));
                        }
                        verdict => {
                            counted_here.extend(verdict.current().map(|v| v.hash.to_string()));
                        }
                    }
                }
                // Sheets the РЦОИ receipted verified or counts: each must score by the category
                // of record and not be for an attempt an act ended.
                for sheet in &sheets {
                    let hash = sheet.hash().to_string();
                    let verified = receipts.get(&hash).is_some_and(|v| v == RECEIPT_VERIFIED);
                    if let (true, Ok(decoded)) = (
                        verified || counted_here.contains(&hash),
                        sheet.decode_unverified(),
                    ) {
                        verified_subjects.insert(decoded.subject);
                        verified_rooms.push((s, decoded.expert, decoded.subject.participant));
                        verified_categories.push((
                            s,
                            decoded.subject.participant.to_string(),
                            decoded.category,
                        ));
                    }
                }
                counted.extend(counted_here);
            }
        }
        let entered: BTreeSet<String> =
            observed.sheets.iter().map(|s| s.hash.to_string()).collect();
        let lost = entered.iter().filter(|h| !at_rcoi.contains(*h)).count();
        let verified = entered
            .iter()
            .filter(|h| receipts.get(*h).is_some_and(|v| v == RECEIPT_VERIFIED))
            .count();
        let invalid = receipts.values().filter(|v| *v != RECEIPT_VERIFIED).count();
        let must_not_count: BTreeSet<String> = observed
            .invalid_sheets
            .iter()
            .map(|(s, _)| s.hash.to_string())
            .collect();
        let unexpected = at_rcoi
            .iter()
            .filter(|h| !entered.contains(*h) && !must_not_count.contains(*h))
            .count();
        invariants.push(Invariant {
            name: "every sheet entered is at the РЦОИ exactly once and verifies",
            ok: lost == 0
                && unexpected == 0
                && verified == entered.len()
                && entered.len() == observed.sheets.len(),
            detail: format!(
                "{} entered ({} distinct), {} at the РЦОИ, {lost} lost, {unexpected} not entered \
                 by any school, {verified} verified, {invalid} invalid",
                observed.sheets.len(),
                entered.len(),
                at_rcoi.len()
            ),
        });

        // Each sheet that must not count: at the РЦОИ, receipted invalid for the reason it was
        // made invalid (written out here, not taken from the verifier), and counted nowhere.
        let wrong: Vec<String> = observed
            .invalid_sheets
            .iter()
            .filter_map(|(sheet, kind)| {
                let hash = sheet.hash.to_string();
                let expected = reason_expected(*kind);
                let receipt = receipts.get(&hash);
                let problem = if !at_rcoi.contains(&hash) {
                    "not at the РЦОИ".to_owned()
                } else if !receipt.is_some_and(|r| invalid_for(r, *kind)) {
                    format!("receipted {receipt:?}, not invalid for {expected:?}")
                } else if counted.contains(&hash) {
                    "counted".to_owned()
                } else {
                    return None;
                };
                Some(format!("{hash} ({kind:?}, {}): {problem}", sheet.subject))
            })
            .collect();
        invariants.push(Invariant {
            name: "every sheet that must not count was receipted invalid and never counted",
            ok: wrong.is_empty(),
            detail: if wrong.is_empty() {
                format!(
                    "{} entered (damaged signatures, revoked experts, categories not of record, attempts ended by acts, experts outside their rooms, attempts not of the date), each receipted invalid with its reason",
                    observed.invalid_sheets.len()
                )
            } else {
                wrong.join("; ")
            },
        });

        // Per kind of adversary: what its nodes tried, what was refused, what was held or counted.
        let authorship = region.authorship();
        let forgeries = observed.tally_of(&FORGERIES);
        let mut hostile_sheets: BTreeMap<AdversaryKind, (u64, u64, u64)> = BTreeMap::new();
        for (sheet, kind) in &observed.invalid_sheets {
            let Some(adversary) = adversary_of(*kind) else {
                continue;
            };
            let hash = sheet.hash.to_string();
            let receipt = receipts.get(&hash);
            let (made, refused, applied) = hostile_sheets.entry(adversary).or_default();
            *made += 1;
            if receipt.is_some_and(|r| invalid_for(r, *kind)) {
                *refused += 1;
            }
            if receipt.is_some_and(|r| r == RECEIPT_VERIFIED) || counted.contains(&hash) {
                *applied += 1;
            }
        }
        let planned_kinds: BTreeSet<AdversaryKind> = plan.attacks.iter().map(|a| a.kind).collect();
        let adversaries: Vec<AdversaryOutcome> = planned_kinds
            .into_iter()
            .map(|kind| {
                let tally = observed
                    .attacks_by_kind
                    .get(&kind)
                    .copied()
                    .unwrap_or_default();
                let sheets = hostile_sheets.get(&kind).copied().unwrap_or_default();
                let forged = authorship.by_hostile_kind.get(&kind).copied().unwrap_or(0);
                let (made, refused, applied) = match kind {
                    AdversaryKind::ForeignWrite
                    | AdversaryKind::ForgedReceipt
                    | AdversaryKind::HubForgery => (tally.made, Some(tally.refused), Some(forged)),
                    AdversaryKind::Replay => (tally.made, None, None),
                    AdversaryKind::FragmentFlood => (tally.made, Some(tally.refused), None),
                    AdversaryKind::CategoryChange
                    | AdversaryKind::SheetAfterAct
                    | AdversaryKind::ExpertOutsideRoom
                    | AdversaryKind::WrongAttempt => (sheets.0, Some(sheets.1), Some(sheets.2)),
                };
                AdversaryOutcome {
                    kind,
                    made,
                    refused,
                    applied,
                }
            })
            .collect();

        // Every sheet the РЦОИ verified scores its participant by the category the region's list
        // gives them (the plan, which the РЦОИ's register was written from): compared here
        // with the plan, not with the register the engine judged by.
        let of_the_list = |s: usize, participant: &str| {
            plan.schools[s]
                .participants
                .iter()
                .find(|p| p.id.as_str() == participant)
                .map(|p| p.category)
        };
        let other_category: Vec<String> = verified_categories
            .iter()
            .filter(|(s, participant, category)| of_the_list(*s, participant) != Some(*category))
            .map(|(s, participant, category)| {
                format!(
                    "school {} participant {participant}: verified as {}, listed as {}",
                    plan.schools[*s].code,
                    category.id(),
                    of_the_list(*s, participant).map_or("nothing", |c| c.id())
                )
            })
            .collect();
        invariants.push(Invariant {
            name: "every sheet verified scores by the category of record",
            ok: other_category.is_empty(),
            detail: if other_category.is_empty() {
                format!(
                    "{} sheets verified or counted at the РЦОИ, each by its participant's listed category",
                    verified_categories.len()
                )
            } else {
                other_category.join("; ")
            },
        });

        // Every sheet verified or counted is by an expert of its participant's room as the plan
        // places them and as the plan's heads ordered it (written out here: a room's own expert,
        // and the next room's, who scores the conflicting second sheets), not as the engine
        // reads the orders or the room a sheet names.
        let outside_room: Vec<String> = verified_rooms
            .iter()
            .filter(|(s, expert, participant)| {
                let school = &plan.schools[*s];
                let n = school.rooms.len();
                !school
                    .participants
                    .iter()
                    .find(|p| p.id == *participant)
                    .is_some_and(|p| {
                        *expert == school.experts[p.room]
                            || *expert == school.experts[(p.room + 1) % n]
                    })
            })
            .map(|(s, expert, participant)| {
                format!(
                    "school {} participant {participant}: a sheet by {expert}",
                    plan.schools[*s].code
                )
            })
            .collect();
        invariants.push(Invariant {
            name: "every sheet counted is by an expert of its room",
            ok: outside_room.is_empty(),
            detail: if outside_room.is_empty() {
                format!(
                    "{} sheets verified or counted at the РЦОИ, each by an expert the school's commission order names for its room",
                    verified_rooms.len()
                )
            } else {
                outside_room.join("; ")
            },
        });

        // Every sheet verified or counted is for the attempt the participant's history gives
        // (the plan's: 1 on the main date, one more than the attempts used before on an
        // additional date, and one more again after a same-day retake), not the attempt the
        // register says or the engine reads.
        let planned_attempt = |subject: &SheetSubject| {
            plan.schools
                .iter()
                .find(|s| s.code == subject.school)
                .and_then(|s| s.participants.iter().find(|p| p.id == subject.participant))
                .map(|p| p.first_attempt + u8::from(p.retake))
        };
        let other_attempt: Vec<String> = verified_subjects
            .iter()
            .filter(|subject| !observed.acts_made.contains(subject))
            .filter(|subject| planned_attempt(subject) != Some(subject.attempt.get()))
            .map(|subject| {
                format!(
                    "{subject}: the participant's history gives attempt {}",
                    planned_attempt(subject).map_or("none".to_owned(), |a| a.to_string())
                )
            })
            .collect();
        let later_attempts = verified_subjects
            .iter()
            .filter(|subject| subject.attempt.get() > 1)
            .count();
        invariants.push(Invariant {
            name: "every sheet counted is for the attempt the participant's history gives",
            ok: other_attempt.is_empty(),
            detail: if other_attempt.is_empty() {
                format!(
                    "{} attempts verified or counted at the РЦОИ, {later_attempts} of them past the first, each the attempt the plan's history gives",
                    verified_subjects.len()
                )
            } else {
                other_attempt.join("; ")
            },
        });

        // No attempt a hostile school's organiser ended with an act (what the run wrote, not
        // what the engine read back) has a sheet the РЦОИ verified or counts.
        let scored_after_act: Vec<String> = observed
            .acts_made
            .intersection(&verified_subjects)
            .map(ToString::to_string)
            .collect();
        invariants.push(Invariant {
            name: "no sheet counted for an attempt with an act",
            ok: scored_after_act.is_empty(),
            detail: if scored_after_act.is_empty() {
                format!(
                    "{} attempts ended by an act, none with a sheet verified or counted",
                    observed.acts_made.len()
                )
            } else {
                format!("verified after an act: {}", scored_after_act.join(", "))
            },
        });

        let converged = region.converged();
        invariants.push(Invariant {
            name: "all replicas of each document converge",
            ok: converged.is_ok() && observed.converged_at_ms.is_some(),
            detail: match (&converged, observed.converged_at_ms) {
                (Ok(()), Some(_)) => "every holder of every document has the same heads".into(),
                (Ok(()), None) => "the replicas agree, but changes were still arriving".into(),
                (Err(e), _) => e.clone(),
            },
        });

        let (unauthorised, examples) = (authorship.unauthorised, authorship.examples);
        invariants.push(Invariant {
            name: "no unauthorised change was applied anywhere",
            ok: unauthorised == 0,
            detail: if examples.is_empty() {
                format!(
                    "every change is by a node that may write its document; {} messages \
                     quarantined{}",
                    region.quarantined(),
                    observed
                        .quarantine_reasons
                        .first()
                        .map(|r| format!(", the first: {r}"))
                        .unwrap_or_default()
                )
            } else {
                examples.join("; ")
            },
        });

        let foreign = region.foreign_data_at_schools();
        invariants.push(Invariant {
            name: "no school received another school's personal data",
            ok: foreign == 0,
            detail: format!("{foreign} documents of other schools seen at schools"),
        });

        let missed: Vec<String> = observed
            .conflicts_entered
            .difference(&surfaced)
            .map(ToString::to_string)
            .collect();
        invariants.push(Invariant {
            name: "every conflict entered was surfaced",
            ok: missed.is_empty(),
            detail: if missed.is_empty() {
                format!(
                    "{} entered, {} surfaced at the РЦОИ",
                    observed.conflicts_entered.len(),
                    surfaced.len()
                )
            } else {
                format!("not surfaced: {}", missed.join(", "))
            },
        });

        let extra: Vec<String> = surfaced
            .difference(&observed.conflicts_entered)
            .map(ToString::to_string)
            .collect();
        invariants.push(Invariant {
            name: "nothing but the conflicts entered was surfaced",
            ok: extra.is_empty(),
            detail: if extra.is_empty() {
                "every conflict surfaced was entered as one".into()
            } else {
                format!("surfaced, not entered as conflicts: {}", extra.join(", "))
            },
        });

        // What each school entered against what its plan scheduled: a school that stalls
        // (entering nothing more, with no error) fails here.
        let short: Vec<String> = plan
            .schools
            .iter()
            .zip(&observed.entries_made)
            .filter(|(school, made)| **made != school.entries.len())
            .map(|(school, made)| {
                format!("school {}: {made} of {}", school.code, school.entries.len())
            })
            .collect();
        let planned: usize = plan.schools.iter().map(|s| s.entries.len()).sum();
        invariants.push(Invariant {
            name: "every planned entry was made",
            ok: short.is_empty(),
            detail: if short.is_empty() {
                format!("{planned} entries planned and made")
            } else {
                format!("made short of the plan: {}", short.join(", "))
            },
        });

        invariants.push(Invariant {
            name: "every entry could be made",
            ok: observed.entry_errors.is_empty(),
            detail: observed
                .entry_errors
                .first()
                .cloned()
                .unwrap_or_else(|| "no errors".into()),
        });

        let audio = recordings_check(region);
        invariants.push(audio.invariant.clone());
        let materials = materials_check(region);
        invariants.push(materials.invariant.clone());

        let last_entry = observed.sheets.iter().map(|s| s.at_ms).max().unwrap_or(0);
        let reference = plan.last_heal().max(last_entry);
        let convergence_s = observed
            .converged_at_ms
            .map(|at| (at - reference).max(0) as f64 / 1000.0);

        let oversight_ms =
            oversight_build_ms(region, plan.midnight_ms + observed.end_ms, plan.clock);
        Report {
            scenario: plan.name.clone(),
            seed: plan.seed,
            random_faults: plan.random_faults,
            municipalities: plan.nodes.iter().filter(|n| n.kind == Kind::Moyo).count(),
            schools: plan.schools.len(),
            participants: plan.participants,
            sheets_entered: observed.sheets.len(),
            sheets_verified_at_rcoi: verified,
            sheets_invalid_at_rcoi: invalid,
            sheets_invalid_entered: observed.invalid_sheets.len(),
            lost,
            unauthorised_applied: unauthorised,
            attacks_made: forgeries.made,
            attacks_refused: forgeries.refused,
            attacks_applied: authorship.by_hostile,
            adversaries,
            batches_lost_in_commit: observed.batches_lost_in_commit,
            replays_made: observed.tally_of(&[AdversaryKind::Replay]).made,
            floods_made: observed.tally_of(&[AdversaryKind::FragmentFlood]).made,
            closed_for_protocol: observed.closed_for_protocol,
            receipts_timed: observed.receipt_latency_ms.len(),
            receipt_latency_p50_ms: percentile(&observed.receipt_latency_ms, 50),
            receipt_latency_p99_ms: percentile(&observed.receipt_latency_ms, 99),
            catchups_timed: observed.catchup_ms.len(),
            catchup_p50_ms: percentile(&observed.catchup_ms, 50),
            catchup_max_ms: observed.catchup_ms.iter().copied().max(),
            foreign_data_at_schools: foreign,
            messages_quarantined: region.quarantined(),
            conflicts_entered: observed.conflicts_entered.len(),
            conflicts_surfaced: surfaced.len(),
            converged: converged.is_ok() && observed.converged_at_ms.is_some(),
            convergence_s,
            bytes_total: observed.bytes_total,
            reconnect_bytes: observed.reconnect_bytes,
            naive_bytes_total: observed.bytes_total - observed.reconnect_bytes
                + observed.naive_reconnect_bytes,
            naive_reconnect_bytes: observed.naive_reconnect_bytes,
            bytes_by_kind: observed.bytes_by_kind,
            frames_total: observed.frames_total,
            connections: observed.connections,
            faults: plan.faults.len(),
            simulated_end: clock(observed.end_ms),
            events: observed.events,
            trace_digest: hex(&observed.trace.clone().finalize()),
            invariants,
            timeline: timeline(region),
            wall_s,
            peak_memory_mib,
            frames_side_by_side: observed.frames_side_by_side,
            entries_side_by_side: observed.entries_side_by_side,
            oversight_build_ms: oversight_ms[0],
            oversight_rebuild_ms: oversight_ms[1],
            ingest_sheets_per_s: {
                let receipted: usize = observed.receipted_at_rcoi.iter().map(|r| r.1).sum();
                let secs = observed.ingest_wall.as_secs_f64();
                (receipted > 0 && secs > 0.0).then(|| (receipted as f64 / secs).round())
            },
            audio_kbit_s: plan.audio.map(|a| a.kbit_s),
            recordings_entered: observed.recordings.len(),
            recordings_at_rcoi: audio.at_rcoi,
            audio_bytes: observed.recordings.iter().map(|r| r.1.bytes).sum(),
            audio_bytes_queued: audio.queued_bytes,
            audio_bytes_on_wire: observed.audio_bytes_on_wire,
            audio_pieces_refused: observed.blob_pieces_refused,
            last_recording_at_rcoi: observed
                .recordings_at_rcoi_ms
                .values()
                .max()
                .map(|&ms| clock(ms)),
            receipt_latency_p99_ms_without_audio: None,
            materials_bytes: plan.materials.map(|m| m.bytes),
            materials_schools: materials.holding,
            materials_median_s: materials.median_s,
            materials_all_schools_s: materials.all_s,
        }
    }

    /// True when every invariant holds.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.invariants.iter().all(|i| i.ok)
    }

    /// The invariants that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Invariant> {
        self.invariants.iter().filter(|i| !i.ok)
    }

    /// The summary for a person.
    #[must_use]
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} seed {}{}: {} municipalities, {} schools, {} participants, {} faults",
            self.scenario,
            self.seed,
            if self.random_faults {
                " (random faults)"
            } else {
                ""
            },
            self.municipalities,
            self.schools,
            self.participants,
            self.faults
        );
        let _ = writeln!(
            out,
            "sheets entered: {}, verified at the РЦОИ: {}, invalid: {} (of {} made invalid on \
             purpose), lost: {}",
            self.sheets_entered,
            self.sheets_verified_at_rcoi,
            self.sheets_invalid_at_rcoi,
            self.sheets_invalid_entered,
            self.lost
        );
        let _ = writeln!(
            out,
            "conflicts entered: {}, surfaced: {}; unauthorised changes applied: {}; messages \
             quarantined: {}; attacks made: {}, refused: {}, applied: {}; replays: {}, \
             fragment floods: {}, links closed for a broken protocol: {}; batches lost in a \
             commit: {}",
            self.conflicts_entered,
            self.conflicts_surfaced,
            self.unauthorised_applied,
            self.messages_quarantined,
            self.attacks_made,
            self.attacks_refused,
            self.attacks_applied,
            self.replays_made,
            self.floods_made,
            self.closed_for_protocol,
            self.batches_lost_in_commit
        );
        if !self.adversaries.is_empty() {
            let kinds: Vec<String> = self
                .adversaries
                .iter()
                .map(|a| {
                    let mut line = format!("{} made {}", a.kind, a.made);
                    if let Some(refused) = a.refused {
                        let _ = write!(line, ", refused {refused}");
                    }
                    if let Some(applied) = a.applied {
                        let _ = write!(line, ", applied {applied}");
                    }
                    line
                })
                .collect();
            let _ = writeln!(out, "adversaries: {}", kinds.join("; "));
        }
        if let (Some(p50), Some(p99)) = (self.receipt_latency_p50_ms, self.receipt_latency_p99_ms) {
            let _ = writeln!(
                out,
                "sheet to receipt at the school, signed while connected: p50 {:.2} s, p99 {:.2} s \
                 ({} sheets)",
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0,
                self.receipts_timed
            );
        }
        if let (Some(p50), Some(max)) = (self.catchup_p50_ms, self.catchup_max_ms) {
            let _ = writeln!(
                out,
                "a school back online until all its sheets are receipted back: median {:.1} s, \
                 longest {:.1} s ({} times)",
                p50 as f64 / 1000.0,
                max as f64 / 1000.0,
                self.catchups_timed
            );
        }
        if let Some(bytes) = self.materials_bytes {
            let _ = writeln!(
                out,
                "materials package of {}: at {} schools, median {} after the РЦОИ named it, the last {}",
                mib(bytes),
                self.materials_schools,
                self.materials_median_s
                    .map_or_else(|| "—".to_owned(), |s| format!("{s:.1} s")),
                self.materials_all_schools_s
                    .map_or_else(|| "never".to_owned(), |s| format!("{s:.1} s")),
            );
        }
        if let Some(kbit_s) = self.audio_kbit_s {
            let _ = writeln!(
                out,
                "recordings at {kbit_s} kbit/s: {} taken in ({}), {} at the РЦОИ, the last at {}; \
                 {} still queued; {} on the wire, {} pieces refused",
                self.recordings_entered,
                mib(self.audio_bytes),
                self.recordings_at_rcoi,
                self.last_recording_at_rcoi.as_deref().unwrap_or("—"),
                mib(self.audio_bytes_queued),
                mib(self.audio_bytes_on_wire),
                self.audio_pieces_refused
            );
            if let (Some(with), Some(without)) = (
                self.receipt_latency_p99_ms,
                self.receipt_latency_p99_ms_without_audio,
            ) {
                let _ = writeln!(
                    out,
                    "sheet to receipt p99 with recordings {:.2} s, without {:.2} s ({:+.1} %)",
                    with as f64 / 1000.0,
                    without as f64 / 1000.0,
                    (with - without) as f64 * 100.0 / without.max(1) as f64
                );
            }
        }
        let _ = writeln!(
            out,
            "converged: {}{}; simulated day ended {}",
            if self.converged { "yes" } else { "NO" },
            self.convergence_s
                .map(|s| format!(", {s:.1} s after the last fault healed"))
                .unwrap_or_default(),
            self.simulated_end
        );
        let _ = writeln!(
            out,
            "bytes on the wire: {} ({} frames, {} connections), of which catch-up after \
             (re)connects {}; re-sending whole documents at every reconnect instead: {} for the \
             catch-ups ({:.1}×), {} in all",
            mib(self.bytes_total),
            self.frames_total,
            self.connections,
            mib(self.reconnect_bytes),
            mib(self.naive_reconnect_bytes),
            self.naive_reconnect_bytes as f64 / self.reconnect_bytes.max(1) as f64,
            mib(self.naive_bytes_total),
        );
        for i in &self.invariants {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if i.ok { "ok  " } else { "FAIL" },
                i.name,
                i.detail
            );
        }
        let _ = write!(
            out,
            "wall time {:.1} s{}{}",
            self.wall_s,
            self.peak_memory_mib
                .map(|m| format!(", peak memory {m} MiB"))
                .unwrap_or_default(),
            self.ingest_sheets_per_s
                .map(|r| format!(", РЦОИ ingest {r:.0} sheets/s"))
                .unwrap_or_default()
        );
        if let (Some(cold), Some(warm)) = (self.oversight_build_ms, self.oversight_rebuild_ms) {
            let _ = write!(
                out,
                ", РЦОИ oversight view {cold:.0} ms ({warm:.1} ms again from its cache)"
            );
        }
        out
    }

    /// The JSON report (pretty, one field a line).
    pub fn json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// An SVG plot of sheets entered and sheets verified at the РЦОИ over the day, with the
    /// faults' windows shaded. No external assets.
    #[must_use]
    pub fn svg(&self, faults: &[FaultWindow]) -> String {
        let (w, h) = (900.0f64, 420.0f64);
        let (left, right, top, bottom) = (70.0, 20.0, 40.0, 60.0);
        let first = self.timeline.first().map_or(0, |p| p.minute);
        let last = self
            .timeline
            .last()
            .map_or(60, |p| p.minute)
            .max(first + 60);
        let max = self
            .timeline
            .iter()
            .map(|p| p.entered.max(p.safe_at_rcoi))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let x = |minute: i64| {
            left + (minute - first) as f64 / (last - first) as f64 * (w - left - right)
        };
        let y = |count: usize| top + (1.0 - count as f64 / max) * (h - top - bottom);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r#"<title>{}: листы, введённые в ОО и проверенные в РЦОИ</title><rect width="100%" height="100%" fill="white"/>"#,
            escape(&self.scenario)
        );
        for (label, from, to) in faults {
            let (fx, tx) = (
                x(from / MINUTE_MS).max(left),
                x(to / MINUTE_MS).min(w - right),
            );
            if tx > fx {
                let _ = writeln!(
                    svg,
                    r##"<rect x="{fx:.1}" y="{top}" width="{:.1}" height="{:.1}" fill="#f4d6d6" opacity="0.5"><title>{}</title></rect>"##,
                    tx - fx,
                    h - top - bottom,
                    escape(label)
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{0}" stroke="black"/>"#,
            h - bottom,
            w - right
        );
        let mut hour = (first / 60 + 1) * 60;
        while hour <= last {
            let hx = x(hour);
            let _ = writeln!(
                svg,
                r#"<line x1="{hx:.1}" y1="{0}" x2="{hx:.1}" y2="{1}" stroke="black"/><text x="{hx:.1}" y="{2}" text-anchor="middle">{3:02}:00</text>"#,
                h - bottom,
                h - bottom + 5.0,
                h - bottom + 20.0,
                hour / 60
            );
            hour += 60;
        }
        for frac in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let count = (max * frac).round() as usize;
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{count}</text>"#,
                left - 6.0,
                y(count) + 4.0
            );
        }
        for (series, colour, label, dy) in [
            (0usize, "#1f5fbf", "введено листов в ОО", 0.0),
            (1, "#2e9e44", "проверено в РЦОИ", 16.0),
        ] {
            let points: Vec<String> = self
                .timeline
                .iter()
                .map(|p| {
                    let count = if series == 0 {
                        p.entered
                    } else {
                        p.safe_at_rcoi
                    };
                    format!("{:.1},{:.1}", x(p.minute), y(count))
                })
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            let _ = writeln!(
                svg,
                r#"<rect x="{0}" y="{1}" width="14" height="4" fill="{colour}"/><text x="{2}" y="{3}">{label}</text>"#,
                left + 10.0,
                12.0 + dy,
                left + 30.0,
                17.0 + dy
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{0}" y="{1}" text-anchor="end">{2} · seed {3} · сходимость: {4}</text>"#,
            w - right,
            17.0,
            escape(&self.scenario),
            self.seed,
            if self.converged { "да" } else { "НЕТ" }
        );
        svg.push_str("</svg>\n");
        svg
    }
}

/// A labelled window of time (ms since local midnight) to shade on the plot.
pub type FaultWindow = (String, i64, i64);

/// The faults of a plan as labelled windows for the plot (hubs and the РЦОИ only; school
/// outages would cover the plot).
#[must_use]
pub fn fault_windows(region: &Region) -> Vec<FaultWindow> {
    let plan = region.plan();
    plan.faults
        .iter()
        .filter_map(|f| match *f {
            Fault::Down { node, from, to } if plan.nodes[node].kind != Kind::School => Some((
                format!("{} недоступен", plan.nodes[node].identity),
                from,
                to,
            )),
            _ => None,
        })
        .collect()
}

/// Sheets entered and verified at the РЦОИ, every 10 simulated minutes.
fn timeline(region: &Region) -> Vec<Point> {
    const STEP_MIN: i64 = 10;
    let observed = region.observed();
    let mut entered: Vec<i64> = observed.sheets.iter().map(|s| s.at_ms).collect();
    entered.sort_unstable();
    let safe = &observed.receipted_at_rcoi;
    let start = entered.first().copied().unwrap_or(0) / MINUTE_MS / STEP_MIN * STEP_MIN;
    let end = observed.end_ms / MINUTE_MS + STEP_MIN;
    let mut points = Vec::new();
    let (mut e, mut s, mut safe_count) = (0usize, 0usize, 0usize);
    let mut minute = start;
    while minute <= end {
        let t = minute * MINUTE_MS;
        while e < entered.len() && entered[e] <= t {
            e += 1;
        }
        while s < safe.len() && safe[s].0 <= t {
            safe_count += safe[s].1;
            s += 1;
        }
        points.push(Point {
            minute,
            entered: e,
            safe_at_rcoi: safe_count,
        });
        minute += STEP_MIN;
    }
    points
}

/// The nearest-rank `p`th percentile of `values` (`None` when there are none).
pub fn percentile(values: &[i64], p: usize) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn clock(ms: i64) -> String {
    let minutes = ms.div_euclid(MINUTE_MS);
    let (days, minute_of_day) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
    let text = format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60);
    if days == 0 {
        text
    } else {
        format!("{text} (+{days} d)")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The process's peak resident memory, from Linux's `/proc/self/status` (None elsewhere).
#[must_use]
pub fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(super::percentile(&values, 50), Some(50));
        assert_eq!(super::percentile(&values, 99), Some(99));
        assert_eq!(super::percentile(&[7], 99), Some(7));
        assert_eq!(super::percentile(&[], 50), None);
        assert_eq!(super::percentile(&[5, 1, 3], 50), Some(3));
    }
}
