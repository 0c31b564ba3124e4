//! What a hub shows its coordinators: per school the last contact and what is still to sync,
//! exam-day progress per room, conflicts, invalid data, and the deadlines of the regional orders
//! with what is overdue. Computed from the replicated documents alone (plus the engine's peer
//! reports), so a МОУО hub and the РЦОИ show the same facts for the same data.
//!
//! Deadlines are the steps of the year's chain for each exam kind (`crate::year`,
//! `shared/rules/year-2024.toml`): for итоговое собеседование scoring and familiarisation within 5
//! days of the exam (seed 002 §67, §74); for итоговое сочинение the 1-working-day steps РЦОИ →
//! МОУО → school and familiarisation (seed 003 §2.2–2.7), counted by the production calendar.
//!
//! A deadline's day ends at 24:00 on the region's clock (`[node] utc_offset`), and times are
//! kept on that clock ([`LocalTime`]: RFC 3339 with its offset in JSON, `dd.MM.yyyy HH:MM` on
//! pages).

use std::collections::BTreeMap;

use automerge::{Automerge, ChangeHash};
use serde::{Deserialize, Serialize};

use crate::calendar::{Date, LocalTime, Timestamp, UtcOffset};
use crate::codes::{MunicipalityCode, SchoolCode};
use crate::content;
use crate::exam::ExamId;
use crate::record::SignerDirectory;
use crate::resolve::Verdict;
use crate::rules::Rules;
use crate::sync::{CertVerifier, DocId, DocKind};
use crate::workdays::ProductionCalendar;
use crate::year::{Anchor, Chain, ChainStep, Route, YearData};

/// Width of one step of the progress chart, in minutes.
pub const TIMELINE_STEP_MIN: i64 = 15;
/// The most points of the timeline: one exam day of steps, and one more.
pub const TIMELINE_POINTS_MAX: usize = (24 * 60 / TIMELINE_STEP_MIN) as usize + 2;

/// Counts of participants by where they are in the day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub registered: usize,
    pub present: usize,
    pub absent: usize,
    pub finished: usize,
    pub scored: usize,
}

impl Progress {
    fn add(&mut self, other: Progress) {
        self.registered += other.registered;
        self.present += other.present;
        self.absent += other.absent;
        self.finished += other.finished;
        self.scored += other.scored;
    }
}

/// A room's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomProgress {
    pub exam: ExamId,
    pub room: String,
    pub progress: Progress,
}

/// A school as the hub sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolView {
    pub school: String,
    pub municipality: String,
    /// Connected to this hub now (schools reach the РЦОИ through their МОУО hub).
    pub connected: bool,
    /// How, while connected: `tcp` when the school's network drops UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<crate::sync::Link>,
    /// When this hub last heard from the school's node directly (RFC 3339).
    pub last_contact: Option<LocalTime>,
    /// The latest time in the school's data (a room log entry or a signed sheet), RFC 3339.
    pub last_activity: Option<LocalTime>,
    /// Seconds since the last contact (or, when never direct, the last activity).
    pub lag_s: Option<i64>,
    /// Documents the school's node has not confirmed holding (direct peers only).
    pub docs_pending: usize,
    pub progress: Progress,
    pub rooms: Vec<RoomProgress>,
    pub sheets_invalid: usize,
    pub conflicts_open: usize,
    pub conflicts_settled: usize,
    pub results_published: bool,
    pub results_delivered: Option<LocalTime>,
    pub familiarised: usize,
    /// The school's recordings over its exams.
    #[serde(default)]
    pub recordings: RecordingsView,
}

/// A school's recordings (seed 002 §52, §55): named in its protocols, held by the РЦОИ, and
/// destroyed once kept long enough.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingsView {
    pub named: usize,
    pub bytes: u64,
    /// Receipted by the РЦОИ (held whole, checked against their hash).
    pub at_rcoi: usize,
    /// Destroyed by the school, and by the РЦОИ.
    pub destroyed_by_school: usize,
    pub destroyed_by_rcoi: usize,
    /// Of exams whose 4 months (the order's minimum) are over: recordings the school still
    /// keeps.
    pub due_not_destroyed: usize,
}

/// One sheet of a conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictSheet {
    pub hash: String,
    pub expert: String,
    pub total: u16,
    pub result: String,
    pub signed_at: LocalTime,
}

/// A conflict between score sheets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictView {
    pub exam: ExamId,
    pub school: String,
    pub participant: String,
    pub attempt: u8,
    pub sheets: Vec<ConflictSheet>,
    /// The settlement's hash, when an operator settled it.
    pub settled_by: Option<String>,
}

/// A category a school wrote in its roster that is not the participant's category of record: a
/// request the РЦОИ approves (`giasync-hub approve-category`) or leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRequestView {
    pub exam: ExamId,
    pub school: String,
    pub participant: String,
    pub of_record: String,
    pub requested: String,
}

/// A record the hub refuses, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidView {
    pub exam: ExamId,
    pub school: String,
    pub record: String,
    pub reason: String,
}

/// Where a deadline stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    Done,
    Pending,
    Overdue,
}

/// A deadline of the orders for one school and exam.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineView {
    pub exam: ExamId,
    pub school: String,
    /// `scoring`, `results_to_municipality`, `results_to_school`, `familiarisation`.
    pub step: String,
    /// What the orders require, in Russian.
    pub title: String,
    /// The last day (inclusive).
    pub due: Date,
    pub state: DeadlineState,
    /// What is missing or when it was done.
    pub detail: String,
}

/// One step of the day's progress, cumulative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub at_ms: i64,
    pub started: usize,
    pub finished: usize,
    pub scored: usize,
}

/// The whole view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Oversight {
    pub node: String,
    /// `municipality 4201` at a МОУО hub, `region 42` at the РЦОИ.
    pub scope: String,
    /// The region's clock, on which the times below read.
    pub utc_offset: UtcOffset,
    pub generated_at: LocalTime,
    pub schools: Vec<SchoolView>,
    pub conflicts: Vec<ConflictView>,
    pub invalid: Vec<InvalidView>,
    /// Categories schools asked for that the register does not hold yet.
    #[serde(default)]
    pub category_requests: Vec<CategoryRequestView>,
    pub quarantined: u64,
    pub deadlines: Vec<DeadlineView>,
    pub overdue: usize,
    /// The progress of the latest exam day this hub holds data for.
    pub timeline_exam: Option<ExamId>,
    pub timeline: Vec<TimelinePoint>,
    /// The hub's own recordings: held, being fetched, bytes left and the time left at the
    /// current rate (filled in by the running node; not part of what is built from documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<BlobsView>,
    /// When the hub's own certificate expires, if within 30 days or past (filled in by the
    /// node, like `blobs`): the pages say to renew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires: Option<LocalTime>,
}

/// A node's own blob store and transfers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobsView {
    /// Blobs held whole here, and their bytes.
    pub held: usize,
    pub held_bytes: u64,
    /// Blobs this node fetches, and the bytes of them still to come.
    pub fetching: usize,
    pub bytes_left: u64,
    /// Bytes received a second over the last minute.
    pub rate_bytes_s: u64,
    /// At that rate, seconds until what is fetched is here (none while nothing arrives).
    pub eta_s: Option<u64>,
}

/// A directly connected school, as the engine reports it.
#[derive(Clone, Debug, Default)]
pub struct Contact {
    pub connected: bool,
    pub last_contact_ms: Option<i64>,
    pub docs_pending: usize,
    /// How the connection is carried, while connected.
    pub link: Option<crate::sync::Link>,
}

/// What [`build`] reads.
pub struct Inputs<'a, D, F: Fn(&BTreeMap<String, Vec<u8>>) -> D> {
    pub node: String,
    /// A МОУО hub shows only its municipality.
    pub municipality: Option<MunicipalityCode>,
    pub region: String,
    pub docs: Vec<(DocId, &'a Automerge)>,
    /// Documents held but not given in `docs`, at these heads, because `cache` holds their
    /// schools' sections at those heads ([`docs_to_read`]): the view is built without reading
    /// them. Empty when `docs` holds everything.
    pub unread: Vec<(DocId, Vec<ChangeHash>)>,
    pub contacts: BTreeMap<SchoolCode, Contact>,
    pub quarantined: u64,
    pub now: Timestamp,
    /// The region's clock: deadlines count its calendar days, times are shown on it.
    pub utc_offset: UtcOffset,
    pub rules: &'a Rules,
    /// The year's chains of deadlines.
    pub year: &'a YearData,
    /// The working days those chains count.
    pub calendar: &'a ProductionCalendar,
    /// The schools the region directory puts on the direct route (results from the РЦОИ on
    /// removable media, seed 003 §2.5); the others take the municipal one.
    pub routes: BTreeMap<SchoolCode, Route>,
    pub directory_for: F,
    pub verifier: &'a dyn CertVerifier,
}

impl<D, F: Fn(&BTreeMap<String, Vec<u8>>) -> D> std::fmt::Debug for Inputs<'_, D, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Inputs({}, {} docs)", self.node, self.docs.len())
    }
}

/// An instant on the region's clock.
fn local(ms: i64, offset: UtcOffset) -> Option<LocalTime> {
    Timestamp::from_unix_ms(ms)
        .ok()
        .map(|t| t.at_offset(offset))
}

/// The documents of one school and exam.
#[derive(Default)]
struct SchoolExam<'a> {
    roster: Option<&'a Automerge>,
    protocol: Option<&'a Automerge>,
    results: Option<&'a Automerge>,
    rcoi: Option<&'a Automerge>,
}

/// What one school's documents for one exam contribute to the view: a pure function of those
/// documents (and of the node's rules and certificates), so it is kept between builds while the
/// documents' heads stay the same. Deadlines depend on the time and are judged at every build.
#[derive(Clone, Debug, Default)]
struct Section {
    progress: Progress,
    rooms: Vec<RoomProgress>,
    sheets_invalid: usize,
    conflicts_open: usize,
    conflicts_settled: usize,
    results_published: bool,
    delivered: Option<Timestamp>,
    familiarised: usize,
    recordings: RecordingsView,
    last_activity_ms: Option<i64>,
    conflicts: Vec<ConflictView>,
    invalid: Vec<InvalidView>,
    category_requests: Vec<CategoryRequestView>,
    facts: Facts,
    /// Re-checks counted for the school (`crate::recheck`): the participant, when the re-check
    /// was signed, and when the participant was last informed, if they were.
    rechecks: Vec<(crate::codes::ParticipantId, Timestamp, Option<Timestamp>)>,
    /// (time, 0 started / 1 finished / 2 scored), for the chart of the latest exam.
    events: Vec<(i64, u8)>,
}

/// The heads of a school's roster, protocol, results and РЦОИ documents for an exam.
type SectionKey = [Vec<ChangeHash>; 4];

/// The sections of earlier builds, by school and exam. A hub keeps one for its lifetime, with
/// the same rules, certificate checks and clock, so that a page load re-reads only the schools whose
/// documents changed since the last one (at the РЦОИ a whole region's sheets would otherwise be
/// verified again at every load).
#[derive(Debug, Default)]
pub struct Cache {
    sections: BTreeMap<(SchoolCode, ExamId), (SectionKey, Section)>,
}

impl Cache {
    /// How many school-and-exam sections it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// The section of each school and exam among `held` (documents by id, at their heads) within
/// `municipality`: its МОУО, its documents and its key.
fn sections_of<'d>(
    held: impl Iterator<Item = (DocId, &'d [ChangeHash])>,
    municipality: Option<MunicipalityCode>,
) -> BTreeMap<(SchoolCode, ExamId), (MunicipalityCode, Vec<DocId>, SectionKey)> {
    let mut out: BTreeMap<(SchoolCode, ExamId), (MunicipalityCode, Vec<DocId>, SectionKey)> =
        BTreeMap::new();
    for (id, heads) in held {
        let DocId::School {
            kind,
            municipality: m,
            school,
            exam,
        } = id
        else {
            continue;
        };
        if municipality.is_some_and(|wanted| wanted != m) {
            continue;
        }
        let entry = out
            .entry((school, exam))
            .or_insert_with(|| (m, Vec::new(), SectionKey::default()));
        entry.1.push(id);
        let slot = match kind {
            DocKind::Roster => 0,
            DocKind::Protocol => 1,
            DocKind::Results => 2,
            DocKind::Rcoi => 3,
        };
        entry.2[slot] = heads.to_vec();
    }
    out
}

/// Of the documents `held` (by id, at their heads), those a build must read: the documents of
/// every school and exam whose section `cache` does not hold at those heads. A hub runs this
/// where the documents live (the engine thread), hands copies of just these to
/// [`build_cached`] elsewhere, and names the rest in [`Inputs::unread`].
#[must_use]
pub fn docs_to_read(
    cache: &Cache,
    held: &[(DocId, Vec<ChangeHash>)],
    municipality: Option<MunicipalityCode>,
) -> Vec<DocId> {
    sections_of(held.iter().map(|(d, h)| (*d, h.as_slice())), municipality)
        .into_iter()
        .filter(|(k, (_, _, key))| {
            cache
                .sections
                .get(k)
                .is_none_or(|(cached, _)| cached != key)
        })
        .flat_map(|(_, (_, docs, _))| docs)
        .collect()
}

/// Builds the view from nothing.
pub fn build<D: SignerDirectory, F: Fn(&BTreeMap<String, Vec<u8>>) -> D>(
    inputs: Inputs<'_, D, F>,
) -> Oversight {
    build_cached(inputs, &mut Cache::default())
}

/// Builds the view, reading again only the schools whose documents changed since `cache` saw
/// them. The result is the same as [`build`]'s.
pub fn build_cached<D: SignerDirectory, F: Fn(&BTreeMap<String, Vec<u8>>) -> D>(
    inputs: Inputs<'_, D, F>,
    cache: &mut Cache,
) -> Oversight {
    let now_ms = inputs.now.unix_ms();
    let given: BTreeMap<DocId, &Automerge> = inputs.docs.iter().map(|(id, d)| (*id, *d)).collect();
    let heads_given: Vec<(DocId, Vec<ChangeHash>)> = inputs
        .docs
        .iter()
        .map(|(id, d)| (*id, d.get_heads()))
        .collect();
    let held = heads_given
        .iter()
        .chain(&inputs.unread)
        .map(|(d, h)| (*d, h.as_slice()));
    // (МОУО, documents, key, whether every document of the section was given)
    let mut grouped: BTreeMap<
        (SchoolCode, ExamId),
        (MunicipalityCode, SchoolExam<'_>, SectionKey, bool),
    > = BTreeMap::new();
    for (k, (municipality, ids, key)) in sections_of(held, inputs.municipality) {
        let complete = ids.iter().all(|id| given.contains_key(id));
        let mut docs = SchoolExam::default();
        for id in ids {
            let doc = given.get(&id).copied();
            match id.kind() {
                Some(DocKind::Roster) => docs.roster = doc,
                Some(DocKind::Protocol) => docs.protocol = doc,
                Some(DocKind::Results) => docs.results = doc,
                Some(DocKind::Rcoi) => docs.rcoi = doc,
                None => {}
            }
        }
        grouped.insert(k, (municipality, docs, key, complete));
    }
    // Sections of documents no longer held (or out of scope) go.
    cache.sections.retain(|k, _| grouped.contains_key(k));
    let mut out = Oversight {
        node: inputs.node.clone(),
        scope: match inputs.municipality {
            Some(m) => format!("municipality {m}"),
            None => format!("region {}", inputs.region),
        },
        utc_offset: inputs.utc_offset,
        generated_at: inputs.now.at_offset(inputs.utc_offset),
        schools: Vec::new(),
        conflicts: Vec::new(),
        invalid: Vec::new(),
        category_requests: Vec::new(),
        quarantined: inputs.quarantined,
        deadlines: Vec::new(),
        overdue: 0,
        timeline_exam: None,
        timeline: Vec::new(),
        blobs: None,
        certificate_expires: None,
    };
    let mut schools: BTreeMap<SchoolCode, SchoolView> = BTreeMap::new();
    let latest_exam = grouped.keys().map(|(_, e)| *e).max();
    let mut events: Vec<(i64, u8)> = Vec::new();
    for (&(school, exam), (municipality, docs, key, complete)) in &grouped {
        let key = key.clone();
        let uncached;
        let section = match cache.sections.get(&(school, exam)) {
            Some((k, s)) if *k == key => s,
            // A section changed since the caller chose what to read (it did not hold the cache
            // throughout): built from what was given, and not kept.
            _ if !complete => {
                uncached = section(&inputs, school, exam, docs);
                &uncached
            }
            _ => {
                let fresh = section(&inputs, school, exam, docs);
                &cache
                    .sections
                    .entry((school, exam))
                    .insert_entry((key, fresh))
                    .into_mut()
                    .1
            }
        };
        let view = schools.entry(school).or_insert_with(|| SchoolView {
            school: school.to_string(),
            municipality: municipality.to_string(),
            ..SchoolView::default()
        });
        view.progress.add(section.progress);
        view.rooms.extend(section.rooms.iter().cloned());
        view.sheets_invalid += section.sheets_invalid;
        view.conflicts_open += section.conflicts_open;
        view.conflicts_settled += section.conflicts_settled;
        view.results_published |= section.results_published;
        if let Some(d) = section.delivered {
            view.results_delivered = Some(d.at_offset(inputs.utc_offset));
        }
        view.familiarised += section.familiarised;
        let r = &section.recordings;
        let kept_until = crate::recording::kept_until(exam, crate::config::AUDIO_KEEP_MONTHS_MIN);
        let due = inputs.now.date_at(inputs.utc_offset) >= kept_until;
        view.recordings.named += r.named;
        view.recordings.bytes += r.bytes;
        view.recordings.at_rcoi += r.at_rcoi;
        view.recordings.destroyed_by_school += r.destroyed_by_school;
        view.recordings.destroyed_by_rcoi += r.destroyed_by_rcoi;
        if due {
            view.recordings.due_not_destroyed += r.named.saturating_sub(r.destroyed_by_school);
        }
        if let Some(a) = section.last_activity_ms {
            let known = view.last_activity.map(|t| t.instant().unix_ms());
            if known.is_none_or(|k| a > k) {
                view.last_activity = local(a, inputs.utc_offset);
            }
        }
        out.conflicts.extend(section.conflicts.iter().cloned());
        out.invalid.extend(section.invalid.iter().cloned());
        out.category_requests
            .extend(section.category_requests.iter().cloned());
        out.deadlines.extend(deadlines(
            exam,
            school,
            (inputs.now, inputs.utc_offset),
            section.facts,
            inputs.year.chain(
                exam.kind(),
                inputs
                    .routes
                    .get(&school)
                    .copied()
                    .unwrap_or(Route::Municipal),
            ),
            inputs.calendar,
        ));
        if let Some(terms) = inputs.year.recheck {
            out.deadlines.extend(recheck_deadlines(
                (exam, school),
                (inputs.now, inputs.utc_offset),
                &section.rechecks,
                terms.familiarise_days,
            ));
        }
        if Some(exam) == latest_exam {
            events.extend_from_slice(&section.events);
        }
    }
    debug_assert_eq!(cache.sections.len(), grouped.len());
    for (school, contact) in &inputs.contacts {
        if let Some(view) = schools.get_mut(school) {
            view.connected = contact.connected;
            view.link = contact.link;
            view.last_contact = contact
                .last_contact_ms
                .and_then(|ms| local(ms, inputs.utc_offset));
            view.docs_pending = contact.docs_pending;
        }
    }
    for view in schools.values_mut() {
        let since = view
            .last_contact
            .or(view.last_activity)
            .map(LocalTime::instant);
        view.lag_s = since.map(|t| (now_ms - t.unix_ms()).max(0) / 1000);
    }
    out.schools = schools.into_values().collect();
    out.overdue = out
        .deadlines
        .iter()
        .filter(|d| d.state == DeadlineState::Overdue)
        .count();
    out.timeline_exam = latest_exam;
    out.timeline = timeline(events);
    out
}

/// Reads one school's documents for one exam.
fn section<D: SignerDirectory, F: Fn(&BTreeMap<String, Vec<u8>>) -> D>(
    inputs: &Inputs<'_, D, F>,
    school: SchoolCode,
    exam: ExamId,
    docs: &SchoolExam<'_>,
) -> Section {
    let mut out = Section::default();
    let roster = docs.roster.map(content::participants).unwrap_or_default();
    if let Some(rcoi) = docs.rcoi {
        for (id, row) in &roster {
            let Some(of_record) = content::registered_category(rcoi, id) else {
                continue;
            };
            let requested = row.get("category");
            if !requested.is_empty() && requested != of_record.id() {
                out.category_requests.push(CategoryRequestView {
                    exam,
                    school: school.to_string(),
                    participant: id.clone(),
                    of_record: of_record.id().to_owned(),
                    requested: requested.to_owned(),
                });
            }
        }
    }
    let logs = docs.protocol.map(content::logs).unwrap_or_default();
    // Times in a school's documents are what the school wrote: the chart and the lag count
    // them within the exam day on the region's clock, so no school can stretch the timeline.
    let day = exam.date().day_window_ms(inputs.utc_offset);
    let within = |t: i64| t.clamp(day.start, day.end - 1);
    let settled = docs.protocol.map(|p| {
        crate::settlement::resolve_protocol(
            p,
            docs.rcoi,
            (inputs.rules, &inputs.year.settled_by),
            &inputs.directory_for,
        )
    });
    let invalid = |record: String, reason: String| InvalidView {
        exam,
        school: school.to_string(),
        record,
        reason,
    };
    // Participants with a counting sheet, and when it was signed.
    let mut scored: BTreeMap<String, i64> = BTreeMap::new();
    // Participants with any valid sheet (counting or in conflict): they came and finished.
    let mut with_sheets: std::collections::BTreeSet<String> = Default::default();
    if let Some(settled) = &settled {
        for (subject, r) in &settled.resolution.subjects {
            if !matches!(r.verdict, Verdict::Unscored) {
                with_sheets.insert(subject.participant.to_string());
            }
            if let Some(v) = r.verdict.current() {
                scored.insert(subject.participant.to_string(), v.sheet.signed_at.unix_ms());
            }
            for (hash, e) in &r.invalid {
                out.invalid.push(invalid(hash.to_string(), e.to_string()));
            }
            let conflict = |sheets, settled_by| ConflictView {
                exam,
                school: school.to_string(),
                participant: subject.participant.to_string(),
                attempt: subject.attempt.get(),
                sheets,
                settled_by,
            };
            match &r.verdict {
                Verdict::Conflict(heads) => {
                    out.conflicts_open += 1;
                    out.conflicts.push(conflict(
                        conflict_sheets(heads.iter(), inputs.utc_offset),
                        None,
                    ));
                }
                Verdict::Settled {
                    current,
                    settlement,
                    set_aside,
                } => {
                    let decoded: Vec<_> = docs
                        .protocol
                        .map(content::sheets)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| set_aside.contains(&s.hash()))
                        .filter_map(|s| {
                            Some(crate::record::VerifiedSheet {
                                hash: s.hash(),
                                sheet: s.decode_unverified().ok()?,
                            })
                        })
                        .collect();
                    out.conflicts_settled += 1;
                    let views = conflict_sheets(
                        std::iter::once(current.as_ref()).chain(&decoded),
                        inputs.utc_offset,
                    );
                    out.conflicts
                        .push(conflict(views, Some(settlement.to_string())));
                }
                _ => {}
            }
        }
        for (hash, e) in &settled.resolution.unattributed {
            out.invalid.push(invalid(hash.to_string(), e.to_string()));
        }
        for (hash, e) in &settled.refused {
            out.invalid
                .push(invalid(format!("settlement {hash}"), e.to_string()));
        }
        out.sheets_invalid += settled.resolution.unattributed.len()
            + settled
                .resolution
                .subjects
                .values()
                .map(|r| r.invalid.len())
                .sum::<usize>();
    }
    // Progress per room.
    let mut rooms: BTreeMap<String, Progress> = BTreeMap::new();
    for (id, row) in &roster {
        let log = logs.get(id);
        let attendance = row.get("attendance");
        // The latest answer decides (a same-day retake's, once it began).
        let latest = log.and_then(content::ParticipantLog::latest);
        let started = latest.and_then(|l| l.start_ms);
        let ended = latest.and_then(|l| l.end_ms);
        let mut p = Progress {
            registered: 1,
            ..Progress::default()
        };
        match attendance {
            "absent" => p.absent = 1,
            "early" | "removed" => {
                p.present = 1;
                p.finished = 1;
            }
            "present" => p.present = 1,
            _ if started.is_some() => p.present = 1,
            _ => {}
        }
        if ended.is_some() && p.absent == 0 {
            p.finished = 1;
        }
        // A participant with a sheet came and finished, whether or not the log says so.
        if with_sheets.contains(id) && p.absent == 0 {
            p.present = 1;
            p.finished = 1;
        }
        if let Some(&at) = scored.get(id) {
            p.scored = 1;
            out.events.push((within(at), 2));
        }
        for answer in log.iter().flat_map(|l| l.entries()) {
            out.events.extend(answer.start_ms.map(|t| (within(t), 0)));
            out.events.extend(answer.end_ms.map(|t| (within(t), 1)));
        }
        let room = row.get("room");
        rooms
            .entry(if room.is_empty() { "—" } else { room }.to_owned())
            .or_default()
            .add(p);
        out.progress.add(p);
    }
    out.rooms = rooms
        .into_iter()
        .map(|(room, progress)| RoomProgress {
            exam,
            room,
            progress,
        })
        .collect();
    out.last_activity_ms = logs
        .values()
        .flat_map(content::ParticipantLog::entries)
        .flat_map(|l| [l.start_ms, l.end_ms])
        .flatten()
        .chain(scored.values().copied())
        .max()
        .map(within);
    // Results and familiarisation.
    let editions = docs.rcoi.map_or_else(BTreeMap::new, |r| {
        crate::publish::all_verified(&content::publications(r), inputs.verifier, exam, school)
    });
    let published = editions.values().next_back();
    out.delivered = docs.results.and_then(content::delivered);
    // Only a record that informs of the rows in force counts: one of a result a re-check
    // changed since does not (`Familiarisation::informs_of`).
    let since = crate::publish::rows_since(&editions);
    let newest = editions.keys().next_back().copied().unwrap_or_default();
    let informed_by: BTreeMap<crate::codes::ParticipantId, Timestamp> = docs
        .results
        .map(|r| {
            let directory = (inputs.directory_for)(&content::organiser_certs(r));
            content::acks(r)
                .iter()
                .filter_map(|s| crate::publish::Familiarisation::verify(s, &directory).ok())
                .filter(|f| {
                    since
                        .get(&f.participant)
                        .is_some_and(|s| f.informs_of(*s, newest))
                })
                .map(|f| (f.participant, f.at))
                .collect()
        })
        .unwrap_or_default();
    let informed: Vec<Timestamp> = informed_by.values().copied().collect();
    if let Some(settled) = &settled {
        out.rechecks = settled
            .rechecks
            .values()
            .map(|(_, r)| {
                let p = r.subject.participant;
                (p, r.at, informed_by.get(&p).copied())
            })
            .collect();
    }
    out.familiarised = informed.len();
    let familiarised_last_ms = informed.iter().map(|t| t.unix_ms()).max();
    out.results_published = published.is_some();
    if let Some(protocol) = docs.protocol {
        let named = crate::recording::recordings(protocol);
        let receipts = docs
            .rcoi
            .map(crate::recording::blob_receipts)
            .unwrap_or_default();
        out.recordings = RecordingsView {
            named: named.len(),
            bytes: named.values().map(|r| r.blob.bytes).sum(),
            at_rcoi: named.keys().filter(|h| receipts.contains_key(h)).count(),
            destroyed_by_school: crate::recording::destroyed(protocol).len(),
            destroyed_by_rcoi: docs
                .rcoi
                .map_or(0, |r| crate::recording::destroyed(r).len()),
            due_not_destroyed: 0,
        };
    }
    // Deadlines are judged on these.
    let attended = out.progress.present;
    out.facts = Facts {
        attended,
        scored: out.progress.scored,
        conflicts_open: out.conflicts_open,
        scoring_done_ms: (out.progress.scored >= attended
            && attended > 0
            && out.conflicts_open == 0)
            .then(|| scored.values().copied().max())
            .flatten(),
        published_ms: published.as_ref().map(|p| p.at.unix_ms()),
        delivered_ms: out.delivered.map(Timestamp::unix_ms),
        handed_over_ms: docs
            .rcoi
            .zip(published.as_ref())
            .and_then(|(r, p)| content::handed_over(r, p.edition))
            .map(Timestamp::unix_ms),
        familiarised: out.familiarised,
        familiarised_last_ms,
    };
    // Итоговое сочинение (изложение): the participants are those the РЦОИ's processing gave
    // results for, and processing ended when the РЦОИ took them in (`crate::essay::stored`).
    if exam.kind() == crate::exam::ExamKind::Essay
        && let Some(rcoi) = docs.rcoi
    {
        let processed = crate::essay::stored::results(rcoi).len();
        out.facts.attended = processed;
        out.facts.scored = processed;
        out.facts.scoring_done_ms = crate::essay::stored::processed(rcoi).map(Timestamp::unix_ms);
        // A publication from before the processing's results (or their last correction) were
        // taken in does not carry them.
        let last = crate::essay::stored::processed_last(rcoi).map(Timestamp::unix_ms);
        if out.facts.published_ms < last.or(out.facts.scoring_done_ms) {
            out.facts.published_ms = None;
        }
    }
    out
}

fn conflict_sheets<'a>(
    sheets: impl Iterator<Item = &'a crate::record::VerifiedSheet>,
    offset: UtcOffset,
) -> Vec<ConflictSheet> {
    sheets
        .map(|v| ConflictSheet {
            hash: v.hash.to_string(),
            expert: v.sheet.expert.to_string(),
            total: v.sheet.total,
            result: v.sheet.outcome.display_name().to_owned(),
            signed_at: v.sheet.signed_at.at_offset(offset),
        })
        .collect()
}

/// What the deadlines are judged on.
#[derive(Clone, Copy, Debug, Default)]
struct Facts {
    attended: usize,
    scored: usize,
    conflicts_open: usize,
    scoring_done_ms: Option<i64>,
    published_ms: Option<i64>,
    delivered_ms: Option<i64>,
    /// When the РЦОИ handed the results over on removable media (the direct route).
    handed_over_ms: Option<i64>,
    familiarised: usize,
    /// When the last participant was informed.
    familiarised_last_ms: Option<i64>,
}

fn date_of(ms: i64, offset: UtcOffset) -> Option<Date> {
    Timestamp::from_unix_ms(ms).ok().map(|t| t.date_at(offset))
}

/// The deadlines of `exam` at `school`: the steps of the year's chain for the exam's kind (a
/// school on the municipal route; the state schools and colleges of the direct route are not
/// told apart yet), each due `days` after its anchor. A step whose anchor has not happened yet
/// (processing not finished) is not shown. Processing ends when every participant who came is
/// scored; for итоговое сочинение, whose results the РЦОИ's processing gives rather than school
/// experts, when the РЦОИ took the processing's results in.
fn deadlines(
    exam: ExamId,
    school: SchoolCode,
    clock: (Timestamp, UtcOffset),
    f: Facts,
    chain: Option<&Chain>,
    calendar: &ProductionCalendar,
) -> Vec<DeadlineView> {
    let (now, offset) = clock;
    let Some(chain) = chain else {
        return Vec::new();
    };
    let today = now.date_at(offset);
    // Processing ends when scoring is done; what marks a step done never anchors it.
    let processed = f.scoring_done_ms.and_then(|ms| date_of(ms, offset));
    // Each step's end: the day it was done, or its last day while it is not.
    let mut ends: BTreeMap<ChainStep, Date> = BTreeMap::new();
    let mut out = Vec::new();
    for step in &chain.steps {
        let anchor = match step.after {
            Anchor::Exam => Some(exam.date()),
            Anchor::Processed => processed,
            Anchor::Step(s) => ends.get(&s).copied(),
        };
        let Some(anchor) = anchor else { continue };
        let due = step.due(anchor, calendar);
        let done = match step.step {
            ChainStep::Scoring => f.scoring_done_ms,
            ChainStep::ResultsToMunicipality => f.published_ms,
            // The school noting it, or on the direct route the РЦОИ handing it over.
            ChainStep::ResultsToSchool => match (
                f.delivered_ms,
                // The handover of the edition that counts (recorded per edition).
                f.handed_over_ms,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            ChainStep::Familiarisation => (f.scored > 0 && f.familiarised >= f.scored)
                .then_some(f.familiarised_last_ms)
                .flatten(),
        };
        ends.insert(
            step.step,
            done.and_then(|ms| date_of(ms, offset)).unwrap_or(due),
        );
        let missing = match step.step {
            ChainStep::Scoring => format!(
                "оценено {} из {} участников{}",
                f.scored,
                f.attended,
                if f.conflicts_open > 0 {
                    format!(", конфликтов: {}", f.conflicts_open)
                } else {
                    String::new()
                }
            ),
            ChainStep::ResultsToMunicipality => "результаты не опубликованы".into(),
            ChainStep::ResultsToSchool => "результаты не получены школой".into(),
            ChainStep::Familiarisation => format!(
                "ознакомлено {} из {}, осталось {}",
                f.familiarised,
                f.scored,
                f.scored.saturating_sub(f.familiarised)
            ),
        };
        out.push(DeadlineView {
            exam,
            school: school.to_string(),
            step: step.step.id().to_owned(),
            title: step.title.clone(),
            due,
            state: match done {
                Some(_) => DeadlineState::Done,
                None if today > due => DeadlineState::Overdue,
                None => DeadlineState::Pending,
            },
            detail: match done.and_then(|ms| local(ms, offset)) {
                Some(at) => format!("выполнено {}", at.ru()),
                None => missing,
            },
        });
    }
    out
}

/// The step a re-check's familiarisation is listed under.
pub const RECHECK_FAMILIARISATION_STEP: &str = "recheck_familiarisation";

/// Each applicant whose re-check counts is informed under signature within `days` calendar days
/// of the re-check (seed 002 §73); done when the school's record of familiarisation with them is
/// dated no earlier than the re-check.
fn recheck_deadlines(
    (exam, school): (ExamId, SchoolCode),
    (now, offset): (Timestamp, UtcOffset),
    rechecks: &[(crate::codes::ParticipantId, Timestamp, Option<Timestamp>)],
    days: u32,
) -> Vec<DeadlineView> {
    let today = now.date_at(offset);
    rechecks
        .iter()
        .map(|&(participant, at, informed)| {
            let day = at.date_at(offset);
            let due = day.add_days(i64::from(days)).unwrap_or(day);
            let done = informed.filter(|i| *i >= at);
            DeadlineView {
                exam,
                school: school.to_string(),
                step: RECHECK_FAMILIARISATION_STEP.to_owned(),
                title: format!(
                    "Ознакомление заявителя {participant} с результатами повторной проверки под подпись (не позднее {days} дней со дня её проведения)"
                ),
                due,
                state: match done {
                    Some(_) => DeadlineState::Done,
                    None if today > due => DeadlineState::Overdue,
                    None => DeadlineState::Pending,
                },
                detail: match done {
                    Some(t) => format!("выполнено {}", t.at_offset(offset).ru()),
                    None => format!(
                        "повторная проверка {}: заявитель не ознакомлен",
                        at.at_offset(offset).ru()
                    ),
                },
            }
        })
        .collect()
}

/// Cumulative counts per [`TIMELINE_STEP_MIN`] from the first event to the last, at most
/// [`TIMELINE_POINTS_MAX`] points (the last one counts everything after).
fn timeline(mut events: Vec<(i64, u8)>) -> Vec<TimelinePoint> {
    events.sort_unstable();
    let (Some(&(first, _)), Some(&(last, _))) = (events.first(), events.last()) else {
        return Vec::new();
    };
    let step = TIMELINE_STEP_MIN * 60_000;
    let start = first - first.rem_euclid(step);
    let mut points = Vec::new();
    let mut counts = [0usize; 3];
    let mut next = 0;
    let mut at = start;
    loop {
        at += step;
        while next < events.len() && events[next].0 < at {
            counts[usize::from(events[next].1)] += 1;
            next += 1;
        }
        points.push(TimelinePoint {
            at_ms: at,
            started: counts[0],
            finished: counts[1],
            scored: counts[2],
        });
        if at > last || points.len() == TIMELINE_POINTS_MAX - 1 {
            break;
        }
    }
    if next < events.len() {
        for &(_, kind) in &events[next..] {
            counts[usize::from(kind)] += 1;
        }
        points.push(TimelinePoint {
            at_ms: at + step,
            started: counts[0],
            finished: counts[1],
            scored: counts[2],
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            attended: 10,
            scored: 10,
            ..Facts::default()
        }
    }

    fn inputs<'a>(
        docs: Vec<(DocId, &'a Automerge)>,
        rules: &'a Rules,
        ca: &'a crate::sync::FixedCa,
    ) -> Inputs<
        'a,
        crate::record::FixedDirectory,
        impl Fn(&BTreeMap<String, Vec<u8>>) -> crate::record::FixedDirectory,
    > {
        Inputs {
            node: "test".into(),
            municipality: None,
            region: "42".into(),
            docs,
            unread: Vec::new(),
            contacts: BTreeMap::new(),
            quarantined: 0,
            now: at("2027-02-10T12:00:00Z"),
            utc_offset: UtcOffset::UTC,
            rules,
            year: year(),
            calendar: calendar(),
            routes: BTreeMap::new(),
            directory_for: |_: &BTreeMap<String, Vec<u8>>| crate::record::FixedDirectory::default(),
            verifier: ca,
        }
    }

    fn exam() -> ExamId {
        "is-2027-02-10".parse().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn school() -> SchoolCode {
        SchoolCode::new("420101").unwrap()
    }

    fn year() -> &'static YearData {
        static YEAR: std::sync::OnceLock<YearData> = std::sync::OnceLock::new();
        YEAR.get_or_init(|| YearData::year_2024().unwrap())
    }

    fn calendar() -> &'static ProductionCalendar {
        static CALENDAR: std::sync::OnceLock<ProductionCalendar> = std::sync::OnceLock::new();
        CALENDAR.get_or_init(|| ProductionCalendar::shipped().unwrap())
    }

    /// The deadlines of `exam` by the shipped year's chain.
    fn of(exam: ExamId, now: Timestamp, offset: UtcOffset, f: Facts) -> Vec<DeadlineView> {
        let chain = year().chain(exam.kind(), Route::Municipal);
        deadlines(exam, school(), (now, offset), f, chain, calendar())
    }

    fn steps(d: &[DeadlineView]) -> Vec<&str> {
        d.iter().map(|d| d.step.as_str()).collect()
    }

    #[test]
    fn unscored_sheets_after_five_days_are_overdue() {
        let mut f = facts();
        f.scored = 7;
        let on_time = of(exam(), at("2027-02-15T23:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(on_time[0].state, DeadlineState::Pending);
        assert_eq!(on_time[0].due.to_string(), "2027-02-15");
        let late = of(exam(), at("2027-02-16T01:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(late[0].state, DeadlineState::Overdue);
        assert!(late[0].detail.contains("7 из 10"), "{}", late[0].detail);
    }

    #[test]
    fn a_deadline_day_ends_at_midnight_on_the_regions_clock() {
        let mut f = facts();
        f.scored = 7;
        let kuzbass: UtcOffset = "+07:00".parse().unwrap();
        // 18:00 UTC on the 15th, the last day, is already 01:00 on the 16th in Кемерово.
        let now = at("2027-02-15T18:00:00Z");
        assert_eq!(
            of(exam(), now, UtcOffset::UTC, f)[0].state,
            DeadlineState::Pending
        );
        let local = of(exam(), now, kuzbass, f);
        assert_eq!(local[0].due.to_string(), "2027-02-15");
        assert_eq!(local[0].state, DeadlineState::Overdue);
        // Scored at 00:30 local on Saturday 13th (17:30 UTC Friday 12th): when done, the time
        // reads on the region's clock.
        f.scored = 10;
        f.scoring_done_ms = Some(at("2027-02-12T17:30:00Z").unix_ms());
        let d = of(exam(), at("2027-02-13T10:00:00Z"), kuzbass, f);
        assert_eq!(d[0].detail, "выполнено 13.02.2027 00:30");
    }

    /// ИС follows its own order (seed 002 §67, §74): scoring and familiarisation within 5 days
    /// of the exam, and none of the сочинение's 1-working-day transfers.
    #[test]
    fn is_has_scoring_and_familiarisation_within_five_days_of_the_exam() {
        let mut f = facts();
        f.scoring_done_ms = Some(at("2027-02-12T10:00:00Z").unix_ms());
        f.familiarised = 6;
        let d = of(exam(), at("2027-02-16T10:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(steps(&d), ["scoring", "familiarisation"]);
        assert_eq!(d[0].state, DeadlineState::Done);
        assert_eq!(d[1].due.to_string(), "2027-02-15");
        assert_eq!(d[1].state, DeadlineState::Overdue);
        assert_eq!(d[1].detail, "ознакомлено 6 из 10, осталось 4");
        // Everyone informed on the 14th: done then, not when the page was loaded.
        f.familiarised = 10;
        f.familiarised_last_ms = Some(at("2027-02-14T09:00:00Z").unix_ms());
        let d = of(exam(), at("2027-02-16T10:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(d[1].state, DeadlineState::Done);
        assert_eq!(d[1].detail, "выполнено 14.02.2027 09:00");
    }

    /// Итоговое сочинение (seed 003 §2.2, 2.3, 2.7): two 1-working-day steps from the end of
    /// processing, counted by the production calendar over the 2024 May holidays.
    #[test]
    fn the_essay_chain_counts_two_working_day_steps_from_processing() {
        let essay: ExamId = "essay-2024-04-17".parse().unwrap();
        let mut f = facts();
        // Nothing processed yet: no step can be dated.
        assert!(of(essay, at("2024-04-20T10:00:00Z"), UtcOffset::UTC, f).is_empty());
        // Publication alone does not date processing: nothing is shown against its own fact.
        f.published_ms = Some(at("2024-04-27T10:00:00Z").unix_ms());
        assert!(of(essay, at("2024-04-28T10:00:00Z"), UtcOffset::UTC, f).is_empty());
        // Processed on Friday 26 April 2024: due at the МОУО on Saturday 27, a working Saturday.
        f.scoring_done_ms = Some(at("2024-04-26T10:00:00Z").unix_ms());
        let d = of(essay, at("2024-04-26T12:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(d[0].due.to_string(), "2024-04-27");
        // Processed on Saturday 27 April: due at the МОУО on Thursday 2 May (29 April – 1 May
        // off).
        f.scoring_done_ms = Some(at("2024-04-27T10:00:00Z").unix_ms());
        let d = of(essay, at("2024-04-27T12:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(d[0].due.to_string(), "2024-05-02");
        let now = at("2024-05-02T10:00:00Z");
        let d = of(essay, now, UtcOffset::UTC, f);
        assert_eq!(
            steps(&d),
            [
                "results_to_municipality",
                "results_to_school",
                "familiarisation"
            ]
        );
        // Published on the 27th counts as at the МОУО: done then, so the schools' day is the
        // next working day, Thursday 2 May, and familiarisation's too.
        assert_eq!(d[0].state, DeadlineState::Done);
        assert_eq!(d[1].due.to_string(), "2024-05-02");
        assert_eq!(d[2].due.to_string(), "2024-05-02");
        assert_eq!(d[1].state, DeadlineState::Pending);
        let d = of(essay, at("2024-05-03T01:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(d[1].state, DeadlineState::Overdue);
        // Delivered on Wednesday 8 May: done; familiarisation still counts from the МОУО's day.
        f.delivered_ms = Some(at("2024-05-08T10:00:00Z").unix_ms());
        let d = of(essay, at("2024-05-08T12:00:00Z"), UtcOffset::UTC, f);
        assert_eq!(d[1].state, DeadlineState::Done);
        assert_eq!(d[2].due.to_string(), "2024-05-02");
        assert_eq!(d[2].state, DeadlineState::Overdue);
    }

    /// §73: the applicant is informed within 3 days of the re-check; a record of familiarisation
    /// from before the re-check (with the original result) does not count.
    #[test]
    fn the_applicant_is_informed_within_three_days_of_the_recheck() {
        let p = crate::codes::ParticipantId::new("p1").unwrap();
        let recheck = at("2027-03-20T05:00:00Z");
        let view = |now: &str, informed: Option<&str>| {
            let d = recheck_deadlines(
                (exam(), school()),
                (at(now), UtcOffset::UTC),
                &[(p, recheck, informed.map(at))],
                3,
            );
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].due.to_string(), "2027-03-23");
            assert_eq!(d[0].step, RECHECK_FAMILIARISATION_STEP);
            d[0].state
        };
        assert_eq!(view("2027-03-23T20:00:00Z", None), DeadlineState::Pending);
        assert_eq!(view("2027-03-24T01:00:00Z", None), DeadlineState::Overdue);
        assert_eq!(
            view("2027-03-24T01:00:00Z", Some("2027-02-15T09:00:00Z")),
            DeadlineState::Overdue,
            "informed of the original result only"
        );
        assert_eq!(
            view("2027-03-24T01:00:00Z", Some("2027-03-22T09:00:00Z")),
            DeadlineState::Done
        );
    }

    /// A year file whose chains differ changes the deadlines: they are read from the data.
    #[test]
    fn deadlines_follow_the_year_file() {
        let text = crate::year::YEAR_2024_TOML.replacen("days = 5", "days = 7", 1);
        let other = YearData::parse(&text, "other.toml").unwrap();
        let chain = other.chain(crate::exam::ExamKind::Is, Route::Municipal);
        let d = deadlines(
            exam(),
            school(),
            (at("2027-02-10T10:00:00Z"), UtcOffset::UTC),
            facts(),
            chain,
            calendar(),
        );
        assert_eq!(d[0].due.to_string(), "2027-02-17");
        let none = deadlines(
            "oge-2027-05-20".parse().unwrap(),
            school(),
            (at("2027-05-20T10:00:00Z"), UtcOffset::UTC),
            facts(),
            other.chain(crate::exam::ExamKind::Oge, Route::Municipal),
            calendar(),
        );
        assert!(none.is_empty(), "the year gives ОГЭ no chain");
    }

    /// A school wrote autism for p1 and standard for p2; the register says standard for both:
    /// p1's is a request the hubs list, p2's is not.
    #[test]
    fn a_category_the_register_does_not_hold_is_listed_as_a_request() {
        use automerge::transaction::Transactable as _;
        let mut roster = Automerge::new();
        let mut tx = roster.transaction();
        for (id, category) in [("p1", "autism"), ("p2", "standard")] {
            tx.put(automerge::ROOT, format!("p/{id}/surname"), "Ф")
                .unwrap();
            tx.put(automerge::ROOT, format!("p/{id}/category"), category)
                .unwrap();
        }
        tx.commit();
        let mut rcoi = Automerge::new();
        let mut tx = rcoi.transaction();
        for id in ["p1", "p2"] {
            content::put_registered_category(
                &mut tx,
                crate::codes::ParticipantId::new(id).unwrap(),
                crate::participant::Category::Standard,
            )
            .unwrap();
        }
        tx.commit();
        let rules = Rules::is_2024().unwrap();
        let ca = crate::sync::FixedCa::default();
        let o = build(Inputs {
            node: "test".into(),
            municipality: None,
            region: "42".into(),
            docs: vec![
                ("roster/4201/420101/is-2027-02-10".parse().unwrap(), &roster),
                ("rcoi/4201/420101/is-2027-02-10".parse().unwrap(), &rcoi),
            ],
            unread: Vec::new(),
            contacts: BTreeMap::new(),
            quarantined: 0,
            now: at("2027-02-10T12:00:00Z"),
            utc_offset: UtcOffset::UTC,
            rules: &rules,
            year: year(),
            calendar: calendar(),
            routes: BTreeMap::new(),
            directory_for: |_: &BTreeMap<String, Vec<u8>>| crate::record::FixedDirectory::default(),
            verifier: &ca,
        });
        assert_eq!(
            o.category_requests,
            vec![CategoryRequestView {
                exam: "is-2027-02-10".parse().unwrap(),
                school: "420101".into(),
                participant: "p1".into(),
                of_record: "standard".into(),
                requested: "autism".into(),
            }]
        );
    }

    #[test]
    fn a_municipality_sees_only_its_own_schools() {
        let mut roster = Automerge::new();
        let mut tx = roster.transaction();
        automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "p/x/surname", "Ф")
            .unwrap();
        tx.commit();
        let doc = |m: &str, s: &str| -> DocId {
            format!("roster/{m}/{s}/is-2027-02-10").parse().unwrap()
        };
        let rules = Rules::is_2024().unwrap();
        let ca = crate::sync::FixedCa::default();
        let view = |municipality: Option<&str>| {
            build(Inputs {
                node: "test".into(),
                municipality: municipality.map(|m| MunicipalityCode::new(m).unwrap()),
                region: "42".into(),
                docs: vec![
                    (doc("4201", "420101"), &roster),
                    (doc("4202", "420201"), &roster),
                ],
                unread: Vec::new(),
                contacts: BTreeMap::new(),
                quarantined: 0,
                now: at("2027-02-10T12:00:00Z"),
                utc_offset: UtcOffset::UTC,
                rules: &rules,
                year: year(),
                calendar: calendar(),
                routes: BTreeMap::new(),
                directory_for: |_: &BTreeMap<String, Vec<u8>>| {
                    crate::record::FixedDirectory::default()
                },
                verifier: &ca,
            })
        };
        let schools = |o: &Oversight| {
            o.schools
                .iter()
                .map(|s| s.school.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(schools(&view(Some("4201"))), vec!["420101"]);
        assert_eq!(schools(&view(None)), vec!["420101", "420201"]);
        assert_eq!(view(Some("4201")).deadlines.len(), 2);
        assert!(
            view(Some("4201"))
                .deadlines
                .iter()
                .all(|d| d.school == "420101")
        );
    }

    #[test]
    fn a_cached_build_equals_a_fresh_one_and_follows_every_change() {
        let participant = |doc: &mut Automerge, id: &str| {
            let mut tx = doc.transaction();
            let key = format!("p/{id}/surname");
            automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, key, "Ф").unwrap();
            tx.commit();
        };
        let (mut a, mut b) = (Automerge::new(), Automerge::new());
        participant(&mut a, "x");
        participant(&mut b, "y");
        let doc = |s: &str| -> DocId { format!("roster/4201/{s}/is-2027-02-10").parse().unwrap() };
        let rules = Rules::is_2024().unwrap();
        let ca = crate::sync::FixedCa::default();
        let registered = |o: &Oversight| {
            o.schools
                .iter()
                .map(|s| (s.school.clone(), s.progress.registered))
                .collect::<Vec<_>>()
        };
        let mut cache = Cache::default();
        let first = build_cached(
            inputs(vec![(doc("420101"), &a), (doc("420102"), &b)], &rules, &ca),
            &mut cache,
        );
        assert_eq!(
            first,
            build(inputs(
                vec![(doc("420101"), &a), (doc("420102"), &b)],
                &rules,
                &ca
            ))
        );
        assert_eq!(cache.len(), 2);
        // Nothing changed: the same view from the cache.
        let again = build_cached(
            inputs(vec![(doc("420101"), &a), (doc("420102"), &b)], &rules, &ca),
            &mut cache,
        );
        assert_eq!(again, first);
        // A school's roster grows: its section is read again, the other's is kept.
        participant(&mut a, "z");
        let changed = build_cached(
            inputs(vec![(doc("420101"), &a), (doc("420102"), &b)], &rules, &ca),
            &mut cache,
        );
        assert_eq!(
            changed,
            build(inputs(
                vec![(doc("420101"), &a), (doc("420102"), &b)],
                &rules,
                &ca
            ))
        );
        assert_eq!(
            registered(&changed),
            vec![("420101".into(), 2), ("420102".into(), 1)]
        );
        // As a hub builds off its engine thread: only the documents of changed sections are
        // read (copied), the others named by their heads; the view is the same as from all.
        participant(&mut b, "w");
        let held = vec![
            (doc("420101"), a.get_heads()),
            (doc("420102"), b.get_heads()),
        ];
        assert_eq!(docs_to_read(&cache, &held, None), vec![doc("420102")]);
        let mut partial = inputs(vec![(doc("420102"), &b)], &rules, &ca);
        partial.unread = vec![(doc("420101"), a.get_heads())];
        let from_snapshot = build_cached(partial, &mut cache);
        assert_eq!(
            from_snapshot,
            build(inputs(
                vec![(doc("420101"), &a), (doc("420102"), &b)],
                &rules,
                &ca
            ))
        );
        assert_eq!(
            registered(&from_snapshot),
            vec![("420101".into(), 2), ("420102".into(), 2)]
        );
        // A document no longer held leaves the view and the cache.
        let fewer = build_cached(inputs(vec![(doc("420101"), &a)], &rules, &ca), &mut cache);
        assert_eq!(registered(&fewer), vec![("420101".into(), 2)]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_timeline_is_cumulative_per_step() {
        let t0 = at("2027-02-10T09:00:00Z").unix_ms();
        let points = timeline(vec![
            (t0 + 60_000, 0),
            (t0 + 16 * 60_000, 1),
            (t0 + 20 * 60_000, 0),
            (t0 + 40 * 60_000, 2),
        ]);
        let last = points.last().unwrap();
        assert_eq!((last.started, last.finished, last.scored), (2, 1, 1));
        assert_eq!(points[0].started, 1);
        assert_eq!(points[0].finished, 0);
        assert!(points.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn times_a_school_wrote_outside_the_exam_day_are_counted_within_it() {
        // A protocol whose room log starts near the beginning of time and ends near its end
        // (raw integers: what a modified node can write).
        let mut protocol = Automerge::new();
        let mut tx = protocol.transaction();
        for (key, ms) in [
            ("log/p1/start", -(1_i64 << 62)),
            ("log/p1/end", 1_i64 << 62),
        ] {
            automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, key, ms).unwrap();
        }
        tx.commit();
        let mut roster = Automerge::new();
        let mut tx = roster.transaction();
        automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "p/p1/surname", "Ф")
            .unwrap();
        tx.commit();
        let doc =
            |kind: &str| -> DocId { format!("{kind}/4201/420101/is-2027-02-10").parse().unwrap() };
        let rules = Rules::is_2024().unwrap();
        let ca = crate::sync::FixedCa::default();
        let view = build(inputs(
            vec![(doc("roster"), &roster), (doc("protocol"), &protocol)],
            &rules,
            &ca,
        ));
        assert!(
            view.timeline.len() <= TIMELINE_POINTS_MAX,
            "{}",
            view.timeline.len()
        );
        // 2027-02-10 on the test's clock (UTC): every point within that day and the next 00:00.
        let (first, last) = (
            at("2027-02-10T00:00:00Z").unix_ms(),
            at("2027-02-11T00:15:00Z").unix_ms(),
        );
        assert!(
            view.timeline
                .iter()
                .all(|p| (first..=last).contains(&p.at_ms)),
            "{:?}",
            view.timeline.first()
        );
        let end = view.timeline.last().unwrap();
        assert_eq!((end.started, end.finished), (1, 1));
    }

    #[test]
    fn the_timeline_has_at_most_its_points_and_the_last_counts_the_rest() {
        let t0 = at("2027-02-10T09:00:00Z").unix_ms();
        let year_ms = 365 * 86_400_000;
        let points = timeline(vec![(t0, 0), (t0 + year_ms, 1), (t0 + 2 * year_ms, 2)]);
        assert_eq!(points.len(), TIMELINE_POINTS_MAX);
        let last = points.last().unwrap();
        assert_eq!((last.started, last.finished, last.scored), (1, 1, 1));
    }
}
