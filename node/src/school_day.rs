//! A school's exam day as its web interface shows it: the roster with rooms, attendance and the
//! room log, every participant's score sheets with their verdict and whether the РЦОИ holds
//! them, and the node's sync state. Read from the engine in one pass (admin request
//! `SchoolDay`).

use std::collections::BTreeMap;

use giasync_shared::codes::OrgCode;
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::resolve::Verdict;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use crate::admin::Context;

/// A room and how many participants it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRoom {
    pub code: String,
    pub capacity: i64,
    pub assigned: usize,
}

/// One score sheet of a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySheet {
    pub hash: String,
    pub expert: String,
    pub total: u16,
    /// зачёт / незачёт.
    pub outcome: String,
    pub signed_at: String,
    /// `current`, `conflict`, `settled`, `set aside`, `superseded` or `invalid: REASON`.
    pub state: String,
    /// The РЦОИ's receipt (`verified`, `invalid: …`) or empty when it does not hold it yet.
    pub at_rcoi: String,
}

/// A participant's day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayParticipant {
    pub id: String,
    pub surname: String,
    pub given_name: String,
    pub patronymic: String,
    pub class: String,
    pub category: String,
    /// The identity document (series may be empty).
    pub series: String,
    pub number: String,
    pub room: String,
    /// `present`, `absent`, `early`, `removed` or empty.
    pub attendance: String,
    pub act: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub interviewer: String,
    /// `unscored`, `current`, `conflict` or `settled`.
    pub verdict: String,
    /// The counting total and outcome, when one counts.
    pub result: String,
    pub sheets: Vec<DaySheet>,
}

/// Whether it is safe to close the day: what the node has not yet handed upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// Connected to an upstream (the МОУО hub or, as a fallback, the РЦОИ) now.
    pub online: bool,
    pub upstream: String,
    pub last_contact: Option<String>,
    /// Documents the upstream has not confirmed holding.
    pub docs_pending: usize,
    pub sheets: usize,
    /// Sheets the РЦОИ has receipted (its receipts come back down in the results document).
    pub sheets_at_rcoi: usize,
}

/// The whole day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolDay {
    pub school: String,
    pub exam: String,
    pub rooms: Vec<DayRoom>,
    pub participants: Vec<DayParticipant>,
    pub sync: SyncState,
    /// The РЦОИ has published this school's results and their signature verifies here.
    pub results_published: bool,
    /// Familiarisation records held (signed by the organiser).
    pub familiarised: usize,
    /// The region's clock, on which the pages show times.
    pub utc_offset: giasync_shared::calendar::UtcOffset,
}

/// Reads the day of `exam` at this school's node.
pub fn read(engine: &Engine, context: &Context, exam: ExamId) -> Result<SchoolDay, String> {
    let me = engine.identity();
    let (OrgCode::School(school), Some(municipality)) = (me.org, me.municipality) else {
        return Err(format!("{me} is not a school"));
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
    let rows = roster.map(content::participants).unwrap_or_default();
    let logs = protocol.map(content::logs).unwrap_or_default();
    let receipts = results.map(content::receipts).unwrap_or_default();
    let mut sheets_by_participant: BTreeMap<String, (String, String, Vec<DaySheet>)> =
        BTreeMap::new();
    let mut sheets_total = 0;
    if let Some(protocol) = protocol {
        let settled = giasync_shared::settlement::resolve_protocol(
            protocol,
            results,
            &context.rules,
            |certs| context.verifier.experts(certs),
        );
        let all = content::sheets(protocol);
        sheets_total = all.len();
        for (subject, r) in &settled.resolution.subjects {
            let (verdict, result) = match &r.verdict {
                Verdict::Unscored => ("unscored", String::new()),
                Verdict::Current(v) => (
                    "current",
                    format!("{} {}", v.sheet.total, v.sheet.outcome.display_name()),
                ),
                Verdict::Conflict(_) => ("conflict", String::new()),
                Verdict::Settled { current, .. } => (
                    "settled",
                    format!(
                        "{} {}",
                        current.sheet.total,
                        current.sheet.outcome.display_name()
                    ),
                ),
            };
            let state_of = |hash: &giasync_shared::record::RecordHash| -> &'static str {
                match &r.verdict {
                    Verdict::Current(v) if v.hash == *hash => "current",
                    Verdict::Conflict(heads) if heads.iter().any(|h| h.hash == *hash) => "conflict",
                    Verdict::Settled { current, .. } if current.hash == *hash => "settled",
                    Verdict::Settled { set_aside, .. } if set_aside.contains(hash) => "set aside",
                    _ => "superseded",
                }
            };
            let mut sheets = Vec::new();
            for s in all.iter() {
                let Ok(sheet) = s.decode_unverified() else {
                    continue;
                };
                if sheet.subject != *subject {
                    continue;
                }
                let hash = s.hash();
                let whole = giasync_shared::record::RecordHash::of(s.as_bytes());
                let state = match r.invalid.iter().find(|(h, _)| *h == whole) {
                    Some((_, e)) => format!("invalid: {e}"),
                    None => state_of(&hash).to_owned(),
                };
                sheets.push(DaySheet {
                    hash: hash.to_string(),
                    expert: sheet.expert.to_string(),
                    total: sheet.total,
                    outcome: sheet.outcome.display_name().to_owned(),
                    signed_at: sheet.signed_at.at_offset(context.clock).to_string(),
                    state,
                    at_rcoi: receipts.get(&hash.to_string()).cloned().unwrap_or_default(),
                });
            }
            sheets.sort_by(|a, b| a.signed_at.cmp(&b.signed_at));
            sheets_by_participant.insert(
                subject.participant.to_string(),
                (verdict.to_owned(), result, sheets),
            );
        }
    }
    let mut rooms: BTreeMap<String, DayRoom> = roster
        .map(content::rooms)
        .unwrap_or_default()
        .into_iter()
        .map(|(code, capacity)| {
            (
                code.clone(),
                DayRoom {
                    code,
                    capacity,
                    assigned: 0,
                },
            )
        })
        .collect();
    let mut participants = Vec::with_capacity(rows.len());
    for (pid, row) in &rows {
        let room = row.get("room").to_owned();
        if !room.is_empty() {
            rooms
                .entry(room.clone())
                .or_insert_with(|| DayRoom {
                    code: room.clone(),
                    ..DayRoom::default()
                })
                .assigned += 1;
        }
        let log = logs.get(pid).cloned().unwrap_or_default();
        let (verdict, result, sheets) = sheets_by_participant
            .remove(pid)
            .unwrap_or_else(|| ("unscored".into(), String::new(), Vec::new()));
        participants.push(DayParticipant {
            id: pid.clone(),
            surname: row.get("surname").into(),
            given_name: row.get("given_name").into(),
            patronymic: row.get("patronymic").into(),
            class: row.get("class").into(),
            category: row.get("category").into(),
            series: row.get("doc_series").into(),
            number: row.get("doc_number").into(),
            room,
            attendance: row.get("attendance").into(),
            act: row.get("act").into(),
            start_ms: log.start_ms,
            end_ms: log.end_ms,
            interviewer: log.interviewer.unwrap_or_default(),
            verdict,
            result,
            sheets,
        });
    }
    participants.sort_by(|a, b| {
        (&a.surname, &a.given_name, &a.id).cmp(&(&b.surname, &b.given_name, &b.id))
    });
    let upstream = engine
        .peer_reports()
        .into_iter()
        .filter(|r| !matches!(r.identity.org, OrgCode::School(_)))
        .max_by_key(|r| (r.connected, r.last_contact_ms));
    let sync = SyncState {
        online: upstream.as_ref().is_some_and(|u| u.connected),
        upstream: upstream
            .as_ref()
            .map(|u| u.identity.to_string())
            .unwrap_or_default(),
        last_contact: upstream
            .as_ref()
            .and_then(|u| u.last_contact_ms)
            .and_then(|ms| giasync_shared::calendar::Timestamp::from_unix_ms(ms).ok())
            .map(|t| t.at_offset(context.clock).to_string()),
        docs_pending: upstream.as_ref().map_or(0, |u| u.docs_pending),
        sheets: sheets_total,
        sheets_at_rcoi: receipts.values().filter(|v| *v == "verified").count(),
    };
    let results_published = results.is_some_and(|r| {
        content::published(r).is_some_and(|(statement, cert)| {
            giasync_shared::publish::Published::verify(
                &statement,
                &cert,
                &context.verifier,
                exam,
                school,
            )
            .is_ok()
        })
    });
    Ok(SchoolDay {
        results_published,
        familiarised: results.map_or(0, |r| content::acks(r).len()),
        school: school.to_string(),
        exam: exam.to_string(),
        rooms: rooms.into_values().collect(),
        participants,
        sync,
        utc_offset: context.clock,
    })
}
