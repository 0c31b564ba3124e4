//! Data entry and status on a node, for scripts and operators: through the running node (a Unix
//! socket beside its store, since redb lets only one process hold the file) or directly on the
//! store when the node is not running. Both paths run the same [`apply`] on the engine.
//!
//! The socket speaks one JSON request per line and answers one JSON line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use giasync_certs::verify::CaVerifier;
use giasync_shared::codes::{OrgCode, ParticipantId, PersonId, RoomCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::import::ImportedRow;
use giasync_shared::record::SignedSheet;
use giasync_shared::room::{ActNumber, Attendance, Room};
use giasync_shared::rules::Rules;
use giasync_shared::sync::{DocId, DocKind, Engine, NodeIdentity, Output, Persist};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// A request to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Adds participants (already validated) to the roster, with their rooms.
    RosterImport { exam: String, rows: Vec<ImportRow> },
    /// At the РЦОИ: a region-wide participant list into each school's roster. Rows carry their
    /// row number in the file; any row whose school cannot be placed fails the whole import.
    RegionImport { exam: String, rows: Vec<RegionRow> },
    /// Declares rooms and capacities.
    Rooms {
        exam: String,
        rooms: Vec<(String, u16)>,
    },
    Assign {
        exam: String,
        participant: String,
        room: String,
    },
    Mark {
        exam: String,
        participant: String,
        status: String,
        act: String,
    },
    Log {
        exam: String,
        participant: String,
        interviewer: Option<String>,
        at_ms: i64,
        end: bool,
    },
    /// One participant's roster fields.
    Participant { exam: String, participant: String },
    /// Every participant of the roster: id → «surname name», room and attendance.
    Roster { exam: String },
    /// Adds a signed score sheet, checked first.
    Score {
        exam: String,
        sheet: Vec<u8>,
        expert: String,
        expert_cert: Vec<u8>,
    },
    /// What the node holds and whom it talks to.
    Status,
    /// At the РЦОИ: an exam's results and score sheets as export files (unsigned: the caller
    /// signs the manifest with the node key).
    Export { exam: String },
    /// An exam's open conflicts: `fields` maps `SCHOOL/PARTICIPANT/ATTEMPT` to the conflicting
    /// sheets, `HASH:EXPERT:TOTAL` separated by spaces.
    Conflicts { exam: String },
    /// At the РЦОИ: stores an operator's signed settlement (`giasync_shared::settlement`) in the
    /// school's results document, after checking it settles an open conflict.
    Settle {
        statement: Vec<u8>,
        operator_cert: Vec<u8>,
    },
    /// At the РЦОИ: closes an exam's processing by signing each school's results into its
    /// results document (`giasync_shared::publish`). A school with open conflicts is not
    /// published, and the answer names it.
    Publish { exam: String },
    /// At a school: the published results, once their РЦОИ signature verifies; `fields` maps
    /// `PARTICIPANT/ATTEMPT` to `TOTAL OUTCOME` and, once familiarised, `; familiarised AT`.
    Results { exam: String },
    /// On a hub: the oversight view of its schools (`giasync_shared::oversight`).
    Oversight,
    /// At a school: the exam day as its web interface shows it ([`crate::school_day`]); without
    /// an exam, the latest one the school has a roster for (or this year's main ИС date).
    SchoolDay { exam: Option<String> },
    /// At the РЦОИ: a participant's published results by identity document; `fields` maps
    /// `EXAM/ATTEMPT` to `TOTAL OUTCOME`. Unknown and not yet published answer alike: empty.
    Lookup { series: String, number: String },
    /// At a school: stores an organiser's signed familiarisation record.
    Familiarise {
        exam: String,
        statement: Vec<u8>,
        organiser_cert: Vec<u8>,
    },
}

/// An export file as the node built it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFile {
    pub name: String,
    pub text: String,
    pub rows: usize,
}

/// A row of a region-wide list: where it came from in the file, the school (and its МОУО when
/// the list names it) and the participant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionRow {
    pub row: usize,
    pub school: Option<String>,
    pub municipality: Option<String>,
    pub participant: ImportRow,
}

/// A participant row on the wire (the fields the roster keeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportRow {
    pub id: String,
    pub surname: String,
    pub name: String,
    pub patronymic: String,
    pub series: String,
    pub number: String,
    pub class: String,
    pub category: String,
    pub room: Option<String>,
}

impl From<&ImportedRow> for ImportRow {
    fn from(r: &ImportedRow) -> Self {
        let p = &r.participant;
        ImportRow {
            id: p.id.to_string(),
            surname: p.name.surname().into(),
            name: p.name.given_name().into(),
            patronymic: p.name.patronymic().unwrap_or("").into(),
            series: p.document.series().into(),
            number: p.document.number().into(),
            class: p.class.to_string(),
            category: p.category.id().into(),
            room: r.room.map(|r| r.to_string()),
        }
    }
}

/// The answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub export: Vec<ExportedFile>,
    #[serde(default)]
    pub oversight: Option<Box<giasync_shared::oversight::Oversight>>,
    #[serde(default)]
    pub school_day: Option<Box<crate::school_day::SchoolDay>>,
}

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
}

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
    pub schools: Vec<SchoolStatus>,
}

fn fail(message: impl Into<String>) -> Response {
    Response {
        ok: false,
        message: message.into(),
        ..Response::default()
    }
}

fn done(message: impl Into<String>) -> Response {
    Response {
        ok: true,
        message: message.into(),
        ..Response::default()
    }
}

fn school_doc(me: &NodeIdentity, kind: DocKind, exam: &str) -> Result<DocId, String> {
    let exam: ExamId = exam
        .parse()
        .map_err(|e: giasync_shared::DomainError| e.to_string())?;
    let (OrgCode::School(school), Some(municipality)) = (me.org, me.municipality) else {
        return Err(format!(
            "{me} is not a school: data entry happens on a school's node"
        ));
    };
    Ok(DocId::School {
        kind,
        municipality,
        school,
        exam,
    })
}

/// What a node needs besides its engine to answer requests.
#[derive(Debug)]
pub struct Context {
    pub verifier: CaVerifier,
    pub rules: Rules,
    /// The region's clock (`[node] utc_offset`).
    pub clock: giasync_shared::calendar::UtcOffset,
    /// The oversight sections of the schools whose documents did not change since the last
    /// page load (they depend only on the documents, the rules and the verifier above).
    pub oversight: std::sync::Mutex<giasync_shared::oversight::Cache>,
}

/// Applies `request` to the engine (records go to the engine's outputs, for the caller to
/// persist before it answers).
pub fn apply(engine: &mut Engine, context: &Context, now_ms: i64, request: Request) -> Response {
    let me = engine.identity();
    let result: Result<Response, String> = (|| match request {
        Request::RosterImport { exam, rows } => {
            let doc = school_doc(&me, DocKind::Roster, &exam)?;
            let count = rows.len();
            let mut parsed = Vec::with_capacity(count);
            for r in &rows {
                parsed.push(roster_entry(r)?);
            }
            engine
                .change(now_ms, doc, move |tx| {
                    for (p, room) in &parsed {
                        content::put_participant(tx, p)?;
                        if let Some(room) = room {
                            content::assign(tx, p.id, *room)?;
                        }
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!("imported {count} participants into {doc}")))
        }
        Request::RegionImport { exam, rows } => region_import(engine, now_ms, &exam, rows),
        Request::Rooms { exam, rooms } => {
            let doc = school_doc(&me, DocKind::Roster, &exam)?;
            let rooms: Vec<Room> = rooms
                .iter()
                .map(|(code, capacity)| Room::new(RoomCode::new(code)?, *capacity))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let count = rooms.len();
            engine
                .change(now_ms, doc, move |tx| {
                    rooms.iter().try_for_each(|r| content::put_room(tx, *r))
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!("{count} rooms")))
        }
        Request::Assign {
            exam,
            participant,
            room,
        } => {
            let doc = school_doc(&me, DocKind::Roster, &exam)?;
            let participant = ParticipantId::new(&participant).map_err(|e| e.to_string())?;
            let room = RoomCode::new(&room).map_err(|e| e.to_string())?;
            let roster = engine
                .doc(&doc)
                .map(content::participants)
                .unwrap_or_default();
            if !roster.contains_key(participant.as_str()) {
                return Err(format!("no participant {participant} in {doc}"));
            }
            let rooms = engine.doc(&doc).map(content::rooms).unwrap_or_default();
            if let Some(&capacity) = rooms.get(room.as_str()) {
                let taken = roster
                    .iter()
                    .filter(|(id, r)| {
                        r.get("room") == room.as_str() && id.as_str() != participant.as_str()
                    })
                    .count();
                if i64::try_from(taken).unwrap_or(i64::MAX) >= capacity {
                    return Err(format!("room {room} is full: {capacity} seats"));
                }
            }
            engine
                .change(now_ms, doc, |tx| content::assign(tx, participant, room))
                .map_err(|e| e.to_string())?;
            Ok(done(format!("{participant} → room {room}")))
        }
        Request::Mark {
            exam,
            participant,
            status,
            act,
        } => {
            let doc = school_doc(&me, DocKind::Roster, &exam)?;
            let participant = ParticipantId::new(&participant).map_err(|e| e.to_string())?;
            let attendance = match status.as_str() {
                "present" => Attendance::Present,
                "absent" => Attendance::Absent,
                "early" => Attendance::FinishedEarly {
                    act: ActNumber::new(&act).map_err(|e| e.to_string())?,
                },
                "removed" => Attendance::Removed {
                    act: ActNumber::new(&act).map_err(|e| e.to_string())?,
                },
                other => {
                    return Err(format!(
                        "status {other:?} must be present, absent, early or removed"
                    ));
                }
            };
            engine
                .change(now_ms, doc, |tx| {
                    content::mark(tx, participant, &attendance)
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!("{participant}: {status}")))
        }
        Request::Log {
            exam,
            participant,
            interviewer,
            at_ms,
            end,
        } => {
            let doc = school_doc(&me, DocKind::Protocol, &exam)?;
            let participant = ParticipantId::new(&participant).map_err(|e| e.to_string())?;
            let interviewer = interviewer
                .as_deref()
                .map(PersonId::new)
                .transpose()
                .map_err(|e| e.to_string())?;
            let at = giasync_shared::calendar::Timestamp::from_unix_ms(at_ms)
                .map_err(|e| e.to_string())?;
            engine
                .change(now_ms, doc, |tx| {
                    content::log_time(tx, participant, interviewer, at, end)
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!(
                "{participant}: {} at {at}",
                if end { "end" } else { "start" }
            )))
        }
        Request::Participant { exam, participant } => {
            let doc = school_doc(&me, DocKind::Roster, &exam)?;
            let roster = engine
                .doc(&doc)
                .map(content::participants)
                .unwrap_or_default();
            let row = roster
                .get(&participant)
                .ok_or_else(|| format!("no participant {participant} in {doc}"))?;
            Ok(Response {
                ok: true,
                message: participant,
                fields: row.fields.clone(),
                status: None,
                ..Response::default()
            })
        }
        Request::Roster { exam } => {
            let doc = school_doc(&me, DocKind::Roster, &exam)?;
            let roster = engine
                .doc(&doc)
                .map(content::participants)
                .unwrap_or_default();
            let fields = roster
                .iter()
                .map(|(id, r)| {
                    let text = format!(
                        "{} {}; room {}; {}",
                        r.get("surname"),
                        r.get("given_name"),
                        r.get("room"),
                        r.get("attendance")
                    );
                    (id.clone(), text)
                })
                .collect();
            Ok(Response {
                ok: true,
                message: format!("{} participants", roster.len()),
                fields,
                status: None,
                ..Response::default()
            })
        }
        Request::Score {
            exam,
            sheet,
            expert,
            expert_cert,
        } => {
            let doc = school_doc(&me, DocKind::Protocol, &exam)?;
            let expert_id = PersonId::new(&expert).map_err(|e| e.to_string())?;
            let sheet = SignedSheet::from_bytes(sheet).map_err(|e| e.to_string())?;
            let directory = context
                .verifier
                .experts(&BTreeMap::from([(expert.clone(), expert_cert.clone())]));
            let verified = sheet
                .verify(&context.rules, &directory)
                .map_err(|e| format!("the sheet is refused: {e}"))?;
            let hash = verified.hash;
            engine
                .change(now_ms, doc, |tx| {
                    content::put_sheet(tx, &sheet, expert_id, &expert_cert)
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!(
                "sheet {hash} saved: {} {}",
                verified.sheet.total,
                verified.sheet.outcome.display_name()
            )))
        }
        Request::Status => Ok(Response {
            ok: true,
            message: String::new(),
            fields: BTreeMap::new(),
            status: Some(status(engine, context)),
            ..Response::default()
        }),
        Request::Conflicts { exam } => {
            let exam: ExamId = exam
                .parse()
                .map_err(|e: giasync_shared::DomainError| e.to_string())?;
            let mut fields = BTreeMap::new();
            for protocol in protocols_of(engine, exam) {
                let settled = settled_protocol(engine, context, protocol);
                for (subject, heads) in settled.resolution.conflicts() {
                    let heads: Vec<String> = heads
                        .iter()
                        .map(|h| format!("{}:{}:{}", h.hash, h.sheet.expert, h.sheet.total))
                        .collect();
                    fields.insert(
                        format!(
                            "{}/{}/{}",
                            subject.school,
                            subject.participant,
                            subject.attempt.get()
                        ),
                        heads.join(" "),
                    );
                }
            }
            Ok(Response {
                ok: true,
                message: format!("{} open conflicts in {exam}", fields.len()),
                fields,
                ..Response::default()
            })
        }
        Request::Settle {
            statement,
            operator_cert,
        } => {
            if !matches!(me.org, OrgCode::Rcoi(_)) {
                return Err(format!("{me} is not the РЦОИ: conflicts are settled there"));
            }
            let statement = giasync_shared::statement::Statement::from_bytes(statement)
                .map_err(|e| e.to_string())?;
            let claimed = statement
                .fields_unverified(giasync_shared::statement::StatementKind::Settlement)
                .map_err(|e| e.to_string())?;
            let operator = claimed
                .get("operator")
                .map_err(|e| e.to_string())?
                .to_owned();
            let directory = context
                .verifier
                .experts(&BTreeMap::from([(operator.clone(), operator_cert.clone())]));
            let settlement = giasync_shared::settlement::Settlement::verify(&statement, &directory)
                .map_err(|e| format!("the settlement is refused: {e}"))?;
            let subject = settlement.subject;
            let protocol = protocols_of(engine, subject.exam)
                .into_iter()
                .find(|d| d.school() == Some(subject.school))
                .ok_or_else(|| {
                    format!(
                        "no protocol of school {} for {}",
                        subject.school, subject.exam
                    )
                })?;
            let mut settled = settled_protocol(engine, context, protocol);
            let stale = giasync_shared::settlement::apply(
                &mut settled.resolution,
                &[(statement.hash(), settlement.clone())],
            );
            if !stale.is_empty() {
                return Err(format!(
                    "{subject}: no open conflict whose every sheet the settlement names (see the exam's conflicts)"
                ));
            }
            let DocId::School { municipality, .. } = protocol else {
                return Err("not a school's document".into());
            };
            let results = DocId::School {
                kind: DocKind::Results,
                municipality,
                school: subject.school,
                exam: subject.exam,
            };
            let operator = settlement.operator;
            engine
                .change(now_ms, results, |tx| {
                    content::put_settlement(tx, &statement, operator, &operator_cert)
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!(
                "{subject}: settled, sheet {} counts (settlement {})",
                settlement.chosen,
                statement.hash()
            )))
        }
        Request::Oversight => Ok(Response {
            ok: true,
            oversight: Some(Box::new(oversight(engine, context, now_ms)?)),
            ..Response::default()
        }),
        Request::SchoolDay { exam } => {
            let exam: ExamId = match exam {
                Some(e) => e
                    .parse()
                    .map_err(|e: giasync_shared::DomainError| e.to_string())?,
                None => match latest_roster_exam(engine) {
                    Some(exam) => exam,
                    None => giasync_shared::calendar::Timestamp::from_unix_ms(now_ms)
                        .ok()
                        .and_then(|t| default_exam(t.date_at(context.clock)).parse().ok())
                        .ok_or("no exam yet: name one")?,
                },
            };
            Ok(Response {
                ok: true,
                school_day: Some(Box::new(crate::school_day::read(engine, context, exam)?)),
                ..Response::default()
            })
        }
        Request::Lookup { series, number } => {
            if !matches!(me.org, OrgCode::Rcoi(_)) {
                return Err(format!("{me} is not the РЦОИ: results are looked up there"));
            }
            let document = giasync_shared::participant::IdentityDocument::new(&series, &number)
                .map_err(|e| e.to_string())?;
            let mut fields = BTreeMap::new();
            let rosters: Vec<DocId> = engine
                .doc_ids()
                .filter(|d| {
                    matches!(
                        d,
                        DocId::School {
                            kind: DocKind::Roster,
                            ..
                        }
                    )
                })
                .copied()
                .collect();
            for roster in rosters {
                let DocId::School {
                    municipality,
                    school,
                    exam,
                    ..
                } = roster
                else {
                    continue;
                };
                let Some(doc) = engine.doc(&roster) else {
                    continue;
                };
                let ids = content::find_by_document(doc, document.series(), document.number());
                if ids.is_empty() {
                    continue;
                }
                let results = DocId::School {
                    kind: DocKind::Results,
                    municipality,
                    school,
                    exam,
                };
                let Some(published) = engine
                    .doc(&results)
                    .and_then(|r| verified_results(r, context, exam, school).ok())
                else {
                    continue;
                };
                for row in published
                    .rows
                    .iter()
                    .filter(|r| ids.iter().any(|id| id == r.participant.as_str()))
                {
                    fields.insert(
                        format!("{exam}/{}", row.attempt),
                        format!("{} {}", row.total, row.outcome.id()),
                    );
                }
            }
            Ok(Response {
                ok: true,
                fields,
                ..Response::default()
            })
        }
        Request::Publish { exam } => {
            if !matches!(me.org, OrgCode::Rcoi(_)) {
                return Err(format!("{me} is not the РЦОИ: results are published there"));
            }
            let exam: ExamId = exam
                .parse()
                .map_err(|e: giasync_shared::DomainError| e.to_string())?;
            let at = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms)
                .map_err(|e| e.to_string())?;
            let (mut published, mut refused) = (Vec::new(), Vec::new());
            for protocol in protocols_of(engine, exam) {
                let DocId::School {
                    municipality,
                    school,
                    ..
                } = protocol
                else {
                    continue;
                };
                let settled = settled_protocol(engine, context, protocol);
                let results = match giasync_shared::publish::Published::from_protocol(
                    &settled, exam, school, at,
                ) {
                    Ok(r) => r,
                    Err(e) => {
                        refused.push(format!("school {school}: {e}"));
                        continue;
                    }
                };
                let statement = engine
                    .node_statement(
                        giasync_shared::statement::StatementKind::Results,
                        &results.fields(),
                    )
                    .map_err(|e| e.to_string())?;
                let cert = engine.node_cert().to_vec();
                let doc = DocId::School {
                    kind: DocKind::Results,
                    municipality,
                    school,
                    exam,
                };
                engine
                    .change(now_ms, doc, |tx| {
                        content::put_published(tx, &statement, &cert)
                    })
                    .map_err(|e| e.to_string())?;
                published.push(format!("school {school}: {} results", results.rows.len()));
            }
            let mut message = format!("{exam}: published for {} schools", published.len());
            for line in published.iter().chain(&refused) {
                message.push_str("\n  ");
                message.push_str(line);
            }
            Ok(Response {
                ok: refused.is_empty(),
                message,
                ..Response::default()
            })
        }
        Request::Results { exam } => {
            let doc = school_doc(&me, DocKind::Results, &exam)?;
            let DocId::School { school, exam, .. } = doc else {
                return Err("not a school's document".into());
            };
            let results = engine
                .doc(&doc)
                .ok_or_else(|| format!("no results for {exam} yet"))?;
            let published = verified_results(results, context, exam, school)?;
            let acks = familiarised(results, context);
            let mut fields = BTreeMap::new();
            for row in &published.rows {
                let mut text = format!("{} {}", row.total, row.outcome.display_name());
                if let Some(at) = acks.get(&row.participant.to_string()) {
                    text.push_str(&format!("; familiarised {at}"));
                }
                fields.insert(format!("{}/{}", row.participant, row.attempt), text);
            }
            Ok(Response {
                ok: true,
                message: format!(
                    "{exam}: {} results published by the РЦОИ at {}, signature verified",
                    published.rows.len(),
                    published.at
                ),
                fields,
                ..Response::default()
            })
        }
        Request::Familiarise {
            exam,
            statement,
            organiser_cert,
        } => {
            let doc = school_doc(&me, DocKind::Results, &exam)?;
            let DocId::School { school, exam, .. } = doc else {
                return Err("not a school's document".into());
            };
            let statement = giasync_shared::statement::Statement::from_bytes(statement)
                .map_err(|e| e.to_string())?;
            let claimed = statement
                .fields_unverified(giasync_shared::statement::StatementKind::Familiarisation)
                .map_err(|e| e.to_string())?;
            let organiser = claimed.get("organiser").map_err(|e| e.to_string())?;
            let directory = context.verifier.experts(&BTreeMap::from([(
                organiser.to_owned(),
                organiser_cert.clone(),
            )]));
            let record = giasync_shared::publish::Familiarisation::verify(&statement, &directory)
                .map_err(|e| format!("the record is refused: {e}"))?;
            if record.exam != exam || record.school != school {
                return Err(format!(
                    "the record is for {} {}",
                    record.school, record.exam
                ));
            }
            let results = engine
                .doc(&doc)
                .ok_or_else(|| format!("no results for {exam} yet"))?;
            let published = verified_results(results, context, exam, school)?;
            if !published
                .rows
                .iter()
                .any(|r| r.participant == record.participant)
            {
                return Err(format!(
                    "participant {} has no published result",
                    record.participant
                ));
            }
            engine
                .change(now_ms, doc, |tx| {
                    content::put_ack(
                        tx,
                        record.participant,
                        &statement,
                        record.organiser,
                        &organiser_cert,
                    )
                })
                .map_err(|e| e.to_string())?;
            Ok(done(format!(
                "{}: familiarised, signed by {}",
                record.participant, record.organiser
            )))
        }
        Request::Export { exam } => {
            if !matches!(me.org, OrgCode::Rcoi(_)) {
                return Err(format!("{me} is not the РЦОИ: exports are made there"));
            }
            let exam: ExamId = exam
                .parse()
                .map_err(|e: giasync_shared::DomainError| e.to_string())?;
            let docs: Vec<(DocId, &automerge::Automerge)> = engine
                .doc_ids()
                .filter_map(|id| Some((*id, engine.doc(id)?)))
                .collect();
            let files = giasync_shared::export::build(docs, exam, &context.rules, |certs| {
                context.verifier.experts(certs)
            });
            let mut export = Vec::new();
            for f in files {
                export.push(ExportedFile {
                    text: String::from_utf8(f.bytes).map_err(|e| e.to_string())?,
                    name: f.name,
                    rows: f.rows,
                });
            }
            Ok(Response {
                ok: true,
                message: format!("{} files for {exam}", export.len()),
                fields: BTreeMap::new(),
                status: None,
                export,
                ..Response::default()
            })
        }
    })();
    result.unwrap_or_else(fail)
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
            _ => None,
        })
        .max()
}

/// A participant and their room from a wire row.
fn roster_entry(
    r: &ImportRow,
) -> Result<(giasync_shared::participant::Participant, Option<RoomCode>), String> {
    let participant = giasync_shared::participant::Participant {
        id: ParticipantId::new(&r.id).map_err(|e| e.to_string())?,
        name: giasync_shared::participant::FullName::new(&r.surname, &r.name, &r.patronymic)
            .map_err(|e| e.to_string())?,
        document: giasync_shared::participant::IdentityDocument::new(&r.series, &r.number)
            .map_err(|e| e.to_string())?,
        class: giasync_shared::participant::SchoolClass::new(&r.class)
            .map_err(|e| e.to_string())?,
        category: r
            .category
            .parse()
            .map_err(|e: giasync_shared::DomainError| e.to_string())?,
    };
    let room = r
        .room
        .as_deref()
        .map(RoomCode::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((participant, room))
}

/// The most row errors a refused import lists (the count says how many there were).
pub const IMPORT_ERRORS_SHOWN_MAX: usize = 100;

/// At the РЦОИ: places each row in its school's roster (the school's МОУО from the row, or from
/// documents the РЦОИ already holds for the school); any row that cannot be placed refuses the
/// whole list, naming every such row.
fn region_import(
    engine: &mut Engine,
    now_ms: i64,
    exam: &str,
    rows: Vec<RegionRow>,
) -> Result<Response, String> {
    let me = engine.identity();
    if !matches!(me.org, OrgCode::Rcoi(_)) {
        return Err(format!(
            "{me} is not the РЦОИ: region-wide lists are imported there (a school imports its own)"
        ));
    }
    let exam: ExamId = exam
        .parse()
        .map_err(|e: giasync_shared::DomainError| e.to_string())?;
    let known: BTreeMap<
        giasync_shared::codes::SchoolCode,
        giasync_shared::codes::MunicipalityCode,
    > = engine
        .doc_ids()
        .filter_map(|d| match d {
            DocId::School {
                municipality,
                school,
                ..
            } => Some((*school, *municipality)),
            DocId::Directory => None,
        })
        .collect();
    let mut errors = Vec::new();
    type Entries = Vec<(giasync_shared::participant::Participant, Option<RoomCode>)>;
    let mut by_roster: BTreeMap<DocId, Entries> = BTreeMap::new();
    for r in &rows {
        let placed = (|| -> Result<(DocId, _), String> {
            let school = r.school.as_deref().ok_or("no school code (код ОО)")?;
            let school =
                giasync_shared::codes::SchoolCode::new(school).map_err(|e| e.to_string())?;
            let municipality = match r.municipality.as_deref() {
                Some(m) => {
                    let m = giasync_shared::codes::MunicipalityCode::new(m)
                        .map_err(|e| e.to_string())?;
                    if let Some(k) = known.get(&school).filter(|k| **k != m) {
                        return Err(format!(
                            "school {school} belongs to МОУО {k}, the list says {m}"
                        ));
                    }
                    m
                }
                None => *known.get(&school).ok_or_else(|| {
                    format!(
                        "school {school} is not known to the РЦОИ yet: add its МОУО (код МОУО column)"
                    )
                })?,
            };
            let doc = DocId::School {
                kind: DocKind::Roster,
                municipality,
                school,
                exam,
            };
            Ok((doc, roster_entry(&r.participant)?))
        })();
        match placed {
            Ok((doc, entry)) => by_roster.entry(doc).or_default().push(entry),
            Err(e) => errors.push(format!("row {}: {e}", r.row)),
        }
    }
    if !errors.is_empty() {
        let mut message = format!("{} bad rows: nothing was imported", errors.len());
        for e in errors.iter().take(IMPORT_ERRORS_SHOWN_MAX) {
            message.push_str("\n  ");
            message.push_str(e);
        }
        return Err(message);
    }
    let schools = by_roster.len();
    for (doc, entries) in by_roster {
        engine
            .change(now_ms, doc, move |tx| {
                for (p, room) in &entries {
                    content::put_participant(tx, p)?;
                    if let Some(room) = room {
                        content::assign(tx, p.id, *room)?;
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(done(format!(
        "imported {} participants into the rosters of {schools} schools for {exam}",
        rows.len()
    )))
}

/// The oversight view of a hub's schools (a МОУО hub: only its municipality).
pub fn oversight(
    engine: &Engine,
    context: &Context,
    now_ms: i64,
) -> Result<giasync_shared::oversight::Oversight, String> {
    let me = engine.identity();
    let municipality = match me.org {
        OrgCode::Municipality(m) => Some(m),
        OrgCode::Rcoi(_) => None,
        OrgCode::School(_) => {
            return Err(format!("{me} is a school: oversight is served by hubs"));
        }
    };
    let contacts = engine
        .peer_reports()
        .into_iter()
        .filter_map(|r| {
            let school = r.identity.org.school()?;
            Some((
                school,
                giasync_shared::oversight::Contact {
                    connected: r.connected,
                    last_contact_ms: r.last_contact_ms,
                    docs_pending: r.docs_pending,
                },
            ))
        })
        .collect();
    let mut cache = context
        .oversight
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(giasync_shared::oversight::build_cached(
        giasync_shared::oversight::Inputs {
            node: me.to_string(),
            municipality,
            region: me.region.to_string(),
            docs: engine
                .doc_ids()
                .filter_map(|id| Some((*id, engine.doc(id)?)))
                .collect(),
            contacts,
            quarantined: engine.stats().messages_quarantined,
            now: giasync_shared::calendar::Timestamp::from_unix_ms(now_ms)
                .map_err(|e| e.to_string())?,
            utc_offset: context.clock,
            rules: &context.rules,
            directory_for: |certs: &BTreeMap<String, Vec<u8>>| context.verifier.experts(certs),
            verifier: &context.verifier,
        },
        &mut cache,
    ))
}

/// The published results in a results document, if their signature verifies as the РЦОИ's.
fn verified_results(
    results: &automerge::Automerge,
    context: &Context,
    exam: ExamId,
    school: giasync_shared::codes::SchoolCode,
) -> Result<giasync_shared::publish::Published, String> {
    let (statement, cert) =
        content::published(results).ok_or_else(|| format!("no results for {exam} yet"))?;
    giasync_shared::publish::Published::verify(&statement, &cert, &context.verifier, exam, school)
        .map_err(|e| format!("the published results are refused: {e}"))
}

/// Participants familiarised with their results (verified records), with when.
fn familiarised(results: &automerge::Automerge, context: &Context) -> BTreeMap<String, String> {
    let directory = context.verifier.experts(&content::person_certs(results));
    content::acks(results)
        .iter()
        .filter_map(|s| giasync_shared::publish::Familiarisation::verify(s, &directory).ok())
        .map(|f| (f.participant.to_string(), f.at.to_string()))
        .collect()
}

/// At a school: notes in the results document when the node first verified published results
/// (the МОУО and РЦОИ see when results reached the school). Returns whether it wrote.
pub fn note_delivery(engine: &mut Engine, context: &Context, doc: DocId, now_ms: i64) -> bool {
    let DocId::School {
        kind: DocKind::Results,
        school,
        exam,
        ..
    } = doc
    else {
        return false;
    };
    if engine.identity().org != OrgCode::School(school) {
        return false;
    }
    let Some(results) = engine.doc(&doc) else {
        return false;
    };
    if content::delivered(results).is_some()
        || verified_results(results, context, exam, school).is_err()
    {
        return false;
    }
    let Ok(at) = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms) else {
        return false;
    };
    engine
        .change(now_ms, doc, |tx| content::put_delivered(tx, at))
        .is_ok()
}

/// The protocols of `exam` this node holds.
fn protocols_of(engine: &Engine, exam: ExamId) -> Vec<DocId> {
    engine
        .doc_ids()
        .filter(
            |d| matches!(d, DocId::School { kind: DocKind::Protocol, exam: e, .. } if *e == exam),
        )
        .copied()
        .collect()
}

/// A protocol's verdicts with the settlements of its school's results document applied.
fn settled_protocol(
    engine: &Engine,
    context: &Context,
    protocol: DocId,
) -> giasync_shared::settlement::SettledProtocol {
    let results = match protocol {
        DocId::School {
            municipality,
            school,
            exam,
            ..
        } => engine.doc(&DocId::School {
            kind: DocKind::Results,
            municipality,
            school,
            exam,
        }),
        DocId::Directory => None,
    };
    let empty = automerge::Automerge::new();
    giasync_shared::settlement::resolve_protocol(
        engine.doc(&protocol).unwrap_or(&empty),
        results,
        &context.rules,
        |certs| context.verifier.experts(certs),
    )
}

/// What this node holds, per school, with sheets verified against the rules and the CA.
#[must_use]
pub fn status(engine: &Engine, context: &Context) -> Status {
    let mut schools: BTreeMap<String, SchoolStatus> = BTreeMap::new();
    for id in engine.doc_ids() {
        let DocId::School {
            kind,
            municipality,
            school,
            exam,
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
                    let results = DocId::School {
                        kind: DocKind::Results,
                        municipality: *municipality,
                        school: *school,
                        exam: *exam,
                    };
                    let receipts = engine
                        .doc(&results)
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
                entry.sheets += sheets.len();
                entry.sheets_invalid += invalid;
                entry.sheets_verified += sheets.len().saturating_sub(invalid);
                entry.conflicts += r.conflicts().count();
            }
            DocKind::Results => {
                entry.sheets_at_rcoi += content::receipts(doc)
                    .values()
                    .filter(|v| *v == "verified")
                    .count();
                if let Ok(published) = verified_results(doc, context, *exam, *school) {
                    entry.results_published += published.rows.len();
                }
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
                    .and_then(|ms| giasync_shared::calendar::Timestamp::from_unix_ms(ms).ok())
                    .map(|t| t.to_string()),
                docs_pending: r.docs_pending,
            })
            .collect(),
        docs: engine.doc_ids().count(),
        quarantined: engine.stats().messages_quarantined,
        schools: schools.into_values().collect(),
    }
}

/// The admin socket of the node whose store is at `store`.
#[must_use]
pub fn socket_path(store: &Path) -> PathBuf {
    let mut name = store
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".sock");
    store.with_file_name(name)
}

/// Sends `request` to the running node of `config`; an error when it does not run (or died
/// before answering).
pub fn send_to_running(config: &NodeConfig, request: &Request) -> anyhow::Result<Response> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket_path(&config.node.store))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(serde_json::from_str(&answer)?)
}

/// Sends `request` to the running node of `config`, or, when it does not run, applies it
/// directly to its store.
pub fn execute(
    config: &NodeConfig,
    context: &Context,
    request: &Request,
    now_ms: i64,
) -> anyhow::Result<Response> {
    if std::os::unix::net::UnixStream::connect(socket_path(&config.node.store)).is_ok() {
        return send_to_running(config, request);
    }
    let store = Store::open(&config.node.store)?;
    let material = crate::transport::TlsMaterial::from_config(&config.tls)?;
    let key = crate::run::load_key(&config.tls.key)?;
    let cert = material
        .cert_chain
        .first()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let mut engine = Engine::new(
        material.identity,
        key,
        cert,
        Box::new(context.verifier.clone()),
    );
    store.load_into(&mut engine)?;
    let response = apply(&mut engine, context, now_ms, request.clone());
    let mut records: Vec<Persist> = Vec::new();
    while let Some(output) = engine.poll_output() {
        if let Output::Persist(p) = output {
            records.push(p);
        }
    }
    store.apply(&records)?;
    Ok(response)
}

impl Context {
    /// The CA, revocation list and rules a node of `config` checks data with.
    pub fn load(config: &NodeConfig) -> anyhow::Result<Self> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
        let material_region = crate::transport::TlsMaterial::from_config(&config.tls)?
            .identity
            .region;
        Ok(Context {
            verifier: CaVerifier::from_pem(
                &read(&config.tls.ca)?,
                &read(&config.tls.crl)?,
                material_region,
            )
            .map_err(|e| anyhow::anyhow!("CA: {e}"))?,
            rules: Rules::is_2024()?,
            clock: config.node.clock(),
            oversight: std::sync::Mutex::default(),
        })
    }
}

/// The exam data entry applies to when none is named: `GIASYNC_EXAM`, or the main date of
/// итоговое собеседование of the current school year.
#[must_use]
pub fn default_exam(today: giasync_shared::calendar::Date) -> String {
    if let Ok(exam) = std::env::var("GIASYNC_EXAM") {
        return exam;
    }
    let year = if today.month() >= 9 {
        today.year() + 1
    } else {
        today.year()
    };
    giasync_shared::calendar::is_dates(year)
        .map(|[main, _, _]| ExamId::new(giasync_shared::exam::ExamKind::Is, main).to_string())
        .unwrap_or_default()
}

/// Prints a status, one school a line.
#[must_use]
pub fn format_status(status: &Status) -> String {
    let mut out = format!(
        "node {}: {} documents, {} quarantined\n",
        status.node, status.docs, status.quarantined
    );
    if status.peers.is_empty() {
        out.push_str("peers: none yet\n");
    }
    for p in &status.peers {
        out.push_str(&format!(
            "peer {}: {}, last contact {}, {} documents pending\n",
            p.peer,
            if p.connected {
                "connected"
            } else {
                "not connected"
            },
            p.last_contact.as_deref().unwrap_or("never"),
            p.docs_pending
        ));
    }
    for s in &status.schools {
        out.push_str(&format!(
            "school {}: {} documents, {} participants, {} sheets ({} verified, {} invalid, {} conflicts), {} receipted by the РЦОИ\n",
            s.school, s.docs, s.participants, s.sheets, s.sheets_verified, s.sheets_invalid, s.conflicts, s.sheets_at_rcoi
        ));
        if s.results_published > 0 {
            out.push_str(&format!(
                "  results: {} published, at the school since {}, {} participants familiarised\n",
                s.results_published,
                s.results_delivered.as_deref().unwrap_or("(not yet)"),
                s.familiarised
            ));
        }
        for line in &s.sheet_lines {
            out.push_str(&format!(
                "  sheet {} participant {}: {}; at the РЦОИ: {}\n",
                line.hash.get(..12).unwrap_or(&line.hash),
                line.participant,
                line.result,
                line.at_rcoi
            ));
        }
    }
    out
}

/// At the РЦОИ: verifies the sheets of a school's protocol and writes a receipt for each one not
/// yet receipted into that school's results document, so the school sees what the РЦОИ holds.
/// Returns how many receipts were written.
pub fn write_receipts(
    engine: &mut Engine,
    context: &Context,
    protocol: DocId,
    now_ms: i64,
) -> usize {
    giasync_shared::ingest::receipt_new_sheets(
        engine,
        protocol,
        &context.rules,
        |certs| context.verifier.experts(certs),
        now_ms,
    )
    .unwrap_or(0)
}
