//! A school's exam day as its pages show it: the roster with rooms, attendance and the room log,
//! every participant's score sheets with their state and whether the РЦОИ holds them, and the
//! node's sync state. Read from the engine in one pass, as typed values the pages render.

use std::collections::BTreeMap;

use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::{OrgCode, ParticipantId, PersonId, RoomCode, SchoolCode};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::record::{RecordHash, SheetSubject, SignedSheet};
use giasync_shared::resolve::{Resolution, Verdict};
use giasync_shared::retake;
use giasync_shared::room::Variant;
use giasync_shared::rules::Outcome;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::roster::Entry;
use super::{Context, Error, default_exam, timestamp};

/// A room and how many participants it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRoom {
    pub code: RoomCode,
    /// Seats, as declared (0 for a room only named by an assignment).
    pub capacity: i64,
    pub assigned: usize,
}

/// Where a sheet stands among the participant's sheets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SheetState {
    /// The sheet that counts.
    Current,
    /// One of two or more sheets that count with nothing between them.
    Conflict,
    /// The sheet a settlement chose.
    Settled,
    /// A sheet a settlement set aside.
    SetAside,
    /// Replaced by a correction.
    Superseded,
    /// Refused by the checks, with why.
    Invalid(String),
}

/// What the РЦОИ said of a sheet (its receipt comes back down in the results document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Receipt {
    /// The РЦОИ does not hold it yet.
    NotYet,
    /// Held and verified.
    Verified,
    /// Held and refused, with why.
    Invalid(String),
}

impl Receipt {
    /// Reads a receipt as the results document stores it (`verified` or `invalid: REASON`).
    #[must_use]
    pub fn read(stored: Option<&str>) -> Self {
        match stored {
            None => Receipt::NotYet,
            Some(giasync_shared::ingest::RECEIPT_VERIFIED) => Receipt::Verified,
            Some(other) => {
                Receipt::Invalid(other.strip_prefix("invalid: ").unwrap_or(other).to_owned())
            }
        }
    }
}

/// One score sheet of a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySheet {
    pub hash: RecordHash,
    pub expert: PersonId,
    pub total: u16,
    pub outcome: Outcome,
    pub signed_at: Timestamp,
    pub state: SheetState,
    pub at_rcoi: Receipt,
    /// Points by criterion, as signed (the expert's protocol prints them).
    #[serde(default)]
    pub points: Vec<(String, u8)>,
}

/// Where a participant's scoring stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayVerdict {
    Unscored,
    Current,
    Conflict,
    Settled,
}

impl DayVerdict {
    /// Whether a sheet counts now, so a new sheet must be a correction.
    #[must_use]
    pub fn scored(self) -> bool {
        self != DayVerdict::Unscored
    }
}

/// A participant's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayParticipant {
    pub entry: Entry,
    /// The start, end, interviewer and variant of the open attempt's answer; once the day's
    /// attempt is closed, of the latest answer.
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub interviewer: Option<PersonId>,
    #[serde(default)]
    pub variant: Option<Variant>,
    pub verdict: DayVerdict,
    /// The counting total and outcome, when one counts.
    pub result: Option<(u16, Outcome)>,
    pub sheets: Vec<DaySheet>,
    /// The signed act that ended the participant's latest ended attempt, if one verifies here.
    #[serde(default)]
    pub act: Option<DayAct>,
    /// Every act on this date that verifies here, in attempt order (the last is [`Self::act`]).
    #[serde(default)]
    pub acts: Vec<DayAct>,
    /// The attempt open on this date (`giasync_shared::retake`): the first of the date, or the
    /// next after an act for a bad recording; `None` when another act ended the day's attempt.
    /// What the expert scores and an act ends.
    #[serde(default)]
    pub attempt: Option<u8>,
    /// Every answer of the room log on this date, in attempt order.
    #[serde(default)]
    pub answers: Vec<DayAnswer>,
    /// The operator's signed approval that set the category of record, when one verifies here.
    #[serde(default)]
    pub approval: Option<DayApproval>,
}

/// An operator's approval of a category of record as the pages show it
/// (`giasync_shared::approval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayApproval {
    pub category: giasync_shared::participant::Category,
    pub basis: String,
    pub operator: PersonId,
    pub at: Timestamp,
}

/// One answer of the room log (seed 002 §42): a participant has one per attempt they began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayAnswer {
    /// `None` for an answer logged before the log kept attempts when the date's first attempt
    /// is not known here.
    pub attempt: Option<u8>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub interviewer: Option<PersonId>,
    pub variant: Option<Variant>,
}

impl DayAnswer {
    /// A participant's answers in attempt order; `first` is the date's first attempt, which an
    /// answer logged before the log kept attempts belongs to.
    fn all(log: &content::ParticipantLog, first: Option<u8>) -> Vec<DayAnswer> {
        let read = |attempt: Option<u8>, l: &content::LogEntry| DayAnswer {
            attempt,
            start: l.start_ms.and_then(|ms| Timestamp::from_unix_ms(ms).ok()),
            end: l.end_ms.and_then(|ms| Timestamp::from_unix_ms(ms).ok()),
            interviewer: l.interviewer.as_deref().and_then(|i| PersonId::new(i).ok()),
            variant: l.variant,
        };
        let unnumbered = log
            .unnumbered
            .as_ref()
            .filter(|_| first.is_none_or(|f| !log.attempts.contains_key(&f)))
            .map(|l| read(first, l));
        let mut out: Vec<DayAnswer> = unnumbered.into_iter().collect();
        out.extend(log.attempts.iter().map(|(a, l)| read(Some(*a), l)));
        out.sort_by_key(|a| a.attempt);
        out
    }
}

/// An act as the pages show and print it (`giasync_shared::act::Act`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayAct {
    pub attempt: u8,
    pub room: RoomCode,
    pub kind: giasync_shared::act::ActKind,
    pub text: String,
    pub number: giasync_shared::room::ActNumber,
    pub organiser: PersonId,
    pub at: Timestamp,
}

impl DayParticipant {
    /// How long the answer took longer than allowed (seed 002 §14, §59), when it ended past its
    /// time: the room log flags it.
    #[must_use]
    pub fn overrun_ms(&self) -> Option<i64> {
        let took = self.end?.unix_ms() - self.start?.unix_ms();
        let over = took - self.entry.allowed_ms();
        (over > 0).then_some(over)
    }
}

/// Whether it is safe to close the day: what the node has not yet handed upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// Connected to an upstream (the МОУО hub or, as a fallback, the РЦОИ) now.
    pub online: bool,
    /// How, while online: `tcp` when the school's network drops UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<giasync_shared::sync::Link>,
    pub upstream: String,
    pub last_contact: Option<Timestamp>,
    /// Documents the upstream has not confirmed holding.
    pub docs_pending: usize,
    pub sheets: usize,
    /// Sheets the РЦОИ has receipted as verified.
    pub sheets_at_rcoi: usize,
}

impl SyncState {
    /// Everything is at the РЦОИ: the day can be closed.
    #[must_use]
    pub fn safe_to_close(&self) -> bool {
        self.online && self.docs_pending == 0 && self.sheets_at_rcoi == self.sheets
    }
}

/// The whole day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolDay {
    pub school: SchoolCode,
    pub exam: ExamId,
    pub rooms: Vec<DayRoom>,
    pub participants: Vec<DayParticipant>,
    pub sync: SyncState,
    /// The РЦОИ has published this school's results and their signature verifies here.
    pub results_published: bool,
    /// Familiarisation records held (signed by the organiser).
    pub familiarised: usize,
    /// The region's clock, on which the pages show times.
    pub utc_offset: UtcOffset,
    /// The newest edition of the head's commission order that verifies here, if any.
    #[serde(default)]
    pub commission: Option<DayCommission>,
    /// The recordings the protocol names, by room, each with whether the РЦОИ holds it.
    #[serde(default)]
    pub recordings: Vec<DayRecording>,
}

/// A recording as the pages show it (`giasync_shared::recording`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRecording {
    pub hash: String,
    pub room: RoomCode,
    /// `None`: the room's stream for the day.
    pub participant: Option<ParticipantId>,
    pub attempt: Option<u8>,
    pub format: String,
    pub mime: String,
    pub duration_ms: u64,
    pub bytes: u64,
    pub file_name: String,
    /// The РЦОИ's receipt: it holds the recording whole and checked.
    pub at_rcoi: bool,
}

/// The commission order as the pages show it (`giasync_shared::commission`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCommission {
    pub edition: u32,
    pub head: PersonId,
    pub at: Timestamp,
    pub rooms: Vec<giasync_shared::commission::RoomCommission>,
}

impl SchoolDay {
    /// The rooms the current order names `expert` for; `None` when no order is in force.
    #[must_use]
    pub fn rooms_of_expert(&self, expert: PersonId) -> Option<Vec<RoomCode>> {
        self.rooms_naming(|r| r.experts.contains(&expert))
    }

    /// The rooms the current order names `interviewer` for; `None` when no order is in force.
    #[must_use]
    pub fn rooms_of_interviewer(&self, interviewer: PersonId) -> Option<Vec<RoomCode>> {
        self.rooms_naming(|r| r.interviewers.contains(&interviewer))
    }

    fn rooms_naming(
        &self,
        names: impl Fn(&giasync_shared::commission::RoomCommission) -> bool,
    ) -> Option<Vec<RoomCode>> {
        let order = self.commission.as_ref()?;
        Some(
            order
                .rooms
                .iter()
                .filter(|r| names(r))
                .map(|r| r.room)
                .collect(),
        )
    }
}

impl SchoolDay {
    /// The participant with this id.
    #[must_use]
    pub fn participant(&self, id: &str) -> Option<&DayParticipant> {
        self.participants.iter().find(|p| p.entry.id == id)
    }
}

/// The day of `exam`, or of the latest exam this school has a roster for (or this year's main
/// ИС date on the region's clock).
pub fn read_or_latest(
    engine: &Engine,
    context: &Context,
    exam: Option<ExamId>,
    now_ms: i64,
) -> Result<SchoolDay, Error> {
    let exam = match exam.or_else(|| latest_roster_exam(engine)) {
        Some(exam) => exam,
        None => default_exam(timestamp(now_ms)?.date_at(context.clock))?,
    };
    read(engine, context, exam)
}

/// The latest exam this node holds a roster for.
fn latest_roster_exam(engine: &Engine) -> Option<ExamId> {
    engine
        .doc_ids()
        .filter_map(|d| match d {
            DocId::School {
                kind: DocKind::Roster,
                exam,
                ..
            } => Some(*exam),
            DocId::School { .. } | DocId::Directory => None,
        })
        .max()
}

/// A participant's scoring: verdict, counting result, and each sheet with its state.
struct Scoring {
    verdict: DayVerdict,
    result: Option<(u16, Outcome)>,
    sheets: Vec<DaySheet>,
}

fn scoring_of(
    subject: &SheetSubject,
    r: &Resolution,
    all: &[SignedSheet],
    receipts: &BTreeMap<String, String>,
) -> Scoring {
    let total = |v: &giasync_shared::record::VerifiedSheet| Some((v.sheet.total, v.sheet.outcome));
    let (verdict, result) = match &r.verdict {
        Verdict::Unscored => (DayVerdict::Unscored, None),
        Verdict::Current(v) => (DayVerdict::Current, total(v)),
        Verdict::Conflict(_) => (DayVerdict::Conflict, None),
        Verdict::Settled { current, .. } => (DayVerdict::Settled, total(current)),
    };
    let state_of = |hash: &RecordHash| match &r.verdict {
        Verdict::Current(v) if v.hash == *hash => SheetState::Current,
        Verdict::Conflict(heads) if heads.iter().any(|h| h.hash == *hash) => SheetState::Conflict,
        Verdict::Settled { current, .. } if current.hash == *hash => SheetState::Settled,
        Verdict::Settled { set_aside, .. } if set_aside.contains(hash) => SheetState::SetAside,
        _ => SheetState::Superseded,
    };
    let mut sheets = Vec::new();
    for s in all {
        let Ok(sheet) = s.decode_unverified() else {
            continue;
        };
        if sheet.subject != *subject {
            continue;
        }
        let hash = s.hash();
        let whole = RecordHash::of(s.as_bytes());
        let state = match r.invalid.iter().find(|(h, _)| *h == whole) {
            Some((_, e)) => SheetState::Invalid(e.to_string()),
            None => state_of(&hash),
        };
        sheets.push(DaySheet {
            hash,
            expert: sheet.expert,
            total: sheet.total,
            outcome: sheet.outcome,
            signed_at: sheet.signed_at,
            state,
            at_rcoi: Receipt::read(receipts.get(&hash.to_string()).map(String::as_str)),
            points: sheet
                .points
                .iter()
                .map(|(id, p)| (id.to_string(), *p))
                .collect(),
        });
    }
    sheets.sort_by_key(|s| s.signed_at);
    Scoring {
        verdict,
        result,
        sheets,
    }
}

/// Reads the day of `exam` at this school's node.
pub fn read(engine: &Engine, context: &Context, exam: ExamId) -> Result<SchoolDay, Error> {
    let me = engine.identity();
    let (OrgCode::School(school), Some(municipality)) = (me.org, me.municipality) else {
        return Err(Error::NotASchool { node: me });
    };
    let id = |kind| DocId::School {
        kind,
        municipality,
        school,
        exam,
    };
    let roster = engine.doc(&id(DocKind::Roster));
    let protocol = engine.doc(&id(DocKind::Protocol));
    let results = engine.doc(&id(DocKind::Results));
    let logs = protocol.map(content::logs).unwrap_or_default();
    let rcoi = engine.doc(&id(DocKind::Rcoi));
    let receipts = rcoi.map(content::receipts).unwrap_or_default();
    let mut approvals = rcoi
        .map(|r| giasync_shared::approval::approvals(r, |certs| context.verifier.experts(certs)))
        .unwrap_or_default();
    let mut scoring: BTreeMap<SheetSubject, Scoring> = BTreeMap::new();
    let mut sheets_total = 0;
    let mut acts: BTreeMap<String, Vec<DayAct>> = BTreeMap::new();
    let mut ended = BTreeMap::new();
    if let Some(protocol) = protocol {
        let settled = giasync_shared::settlement::resolve_protocol(
            protocol,
            rcoi,
            context.resolving(),
            |certs| context.verifier.experts(certs),
        );
        let all = content::sheets(protocol);
        sheets_total = all.len();
        for (subject, r) in &settled.resolution.subjects {
            scoring.insert(*subject, scoring_of(subject, r, &all, &receipts));
        }
        ended.clone_from(&settled.acts);
        // In attempt order: the acts map is ordered by subject.
        for (subject, act) in settled.acts {
            acts.entry(subject.participant.to_string())
                .or_default()
                .push(DayAct {
                    attempt: act.attempt.get(),
                    room: act.room,
                    kind: act.kind,
                    text: act.text,
                    number: act.number,
                    organiser: act.organiser,
                    at: act.at,
                });
        }
    }
    let mut rooms: BTreeMap<RoomCode, DayRoom> = roster
        .map(content::rooms)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(code, capacity)| {
            let code = RoomCode::new(&code).ok()?;
            Some((
                code,
                DayRoom {
                    code,
                    capacity,
                    assigned: 0,
                },
            ))
        })
        .collect();
    let rows = roster.map(content::participants).unwrap_or_default();
    let mut participants = Vec::with_capacity(rows.len());
    for (pid, row) in &rows {
        let entry = Entry::read(pid, row, rcoi);
        if let Some(room) = entry.room {
            rooms
                .entry(room)
                .or_insert(DayRoom {
                    code: room,
                    capacity: 0,
                    assigned: 0,
                })
                .assigned += 1;
        }
        let log = logs.get(pid).cloned().unwrap_or_default();
        let first = ParticipantId::new(pid).ok().and_then(|participant| {
            super::retakes::first_attempt_here(engine, id(DocKind::Protocol), participant, exam)
                .ok()
                .map(|first| (participant, first))
        });
        let attempt = first.and_then(|(participant, first)| {
            retake::open_attempt(first, &retake::acts_of(&ended, (exam, school), participant))
        });
        let answers = DayAnswer::all(&log, first.map(|(_, f)| f.get()));
        // The room log's columns show the open attempt's answer (none yet on a same-day retake
        // before it starts); once the day's attempt is closed, the latest answer.
        // An answer still under way comes first (an act may end its attempt before the
        // interviewer logs its end, and the end goes to it), then the open attempt's, and once
        // the day's attempt is closed the latest.
        let under_way = answers
            .iter()
            .rfind(|a| a.start.is_some() && a.end.is_none());
        let shown = under_way.or(match attempt {
            Some(open) => answers.iter().find(|a| a.attempt == Some(open.get())),
            None => answers.last(),
        });
        // The open attempt's sheets; when the day is closed, the latest attempt's that has any.
        let s = scoring
            .keys()
            .rfind(|k| k.participant.as_str() == pid && attempt.is_none_or(|a| k.attempt == a))
            .copied()
            .and_then(|k| scoring.remove(&k))
            .unwrap_or(Scoring {
                verdict: DayVerdict::Unscored,
                result: None,
                sheets: Vec::new(),
            });
        participants.push(DayParticipant {
            entry,
            start: shown.and_then(|a| a.start),
            end: shown.and_then(|a| a.end),
            interviewer: shown.and_then(|a| a.interviewer),
            variant: shown.and_then(|a| a.variant),
            verdict: s.verdict,
            result: s.result,
            sheets: s.sheets,
            act: acts.get(pid).and_then(|a| a.last()).cloned(),
            acts: acts.remove(pid).unwrap_or_default(),
            attempt: attempt.map(giasync_shared::record::Attempt::get),
            answers,
            approval: ParticipantId::new(pid)
                .ok()
                .and_then(|p| approvals.remove(&p))
                .map(|a| DayApproval {
                    category: a.category,
                    basis: a.basis,
                    operator: a.operator,
                    at: a.at,
                }),
        });
    }
    participants.sort_by(|a, b| {
        (&a.entry.surname, &a.entry.given_name, &a.entry.id).cmp(&(
            &b.entry.surname,
            &b.entry.given_name,
            &b.entry.id,
        ))
    });
    let upstream = engine
        .peer_reports()
        .into_iter()
        .filter(|r| !matches!(r.identity.org, OrgCode::School(_)))
        .max_by_key(|r| (r.connected, r.last_contact_ms));
    let sync = SyncState {
        online: upstream.as_ref().is_some_and(|u| u.connected),
        link: upstream.as_ref().and_then(|u| u.link),
        upstream: upstream
            .as_ref()
            .map(|u| u.identity.to_string())
            .unwrap_or_default(),
        last_contact: upstream
            .as_ref()
            .and_then(|u| u.last_contact_ms)
            .and_then(|ms| Timestamp::from_unix_ms(ms).ok()),
        docs_pending: upstream.as_ref().map_or(0, |u| u.docs_pending),
        sheets: sheets_total,
        sheets_at_rcoi: receipts
            .values()
            .filter(|v| *v == giasync_shared::ingest::RECEIPT_VERIFIED)
            .count(),
    };
    let results_published =
        rcoi.is_some_and(|r| super::results::verified_results(r, context, exam, school).is_ok());
    let at_rcoi = rcoi
        .map(giasync_shared::recording::blob_receipts)
        .unwrap_or_default();
    let mut recordings: Vec<DayRecording> = protocol
        .map(giasync_shared::recording::recordings)
        .unwrap_or_default()
        .into_values()
        .map(|r| {
            let (participant, attempt) = match r.subject {
                giasync_shared::recording::Subject::Room => (None, None),
                giasync_shared::recording::Subject::Participant { id, attempt } => {
                    (Some(id), Some(attempt.get()))
                }
            };
            DayRecording {
                hash: r.blob.hash.to_string(),
                room: r.room,
                participant,
                attempt,
                format: r.format.to_string(),
                mime: r.format.mime().to_owned(),
                duration_ms: r.duration_ms,
                bytes: r.blob.bytes,
                file_name: r.file_name,
                at_rcoi: at_rcoi.contains_key(&r.blob.hash),
            }
        })
        .collect();
    recordings.sort_by(|a, b| {
        (a.room, a.participant, a.attempt, &a.file_name).cmp(&(
            b.room,
            b.participant,
            b.attempt,
            &b.file_name,
        ))
    });
    Ok(SchoolDay {
        results_published,
        familiarised: results.map_or(0, |r| content::acks(r).len()),
        school,
        exam,
        rooms: rooms.into_values().collect(),
        participants,
        sync,
        utc_offset: context.clock,
        commission: super::commission::orders(engine, context, id(DocKind::Protocol))
            .current()
            .map(|o| DayCommission {
                edition: o.edition,
                head: o.head,
                at: o.at,
                rooms: o.rooms.clone(),
            }),
        recordings,
    })
}
