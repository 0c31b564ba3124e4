//! The roster and rooms of a school's exam (seed 002 §8, §12): participants imported from the
//! region's lists or corrected by the organiser, rooms with their capacity, assignments within
//! capacity, attendance with acts; and at the РЦОИ, a region-wide list into every school.

use std::collections::BTreeMap;

use giasync_shared::codes::{MunicipalityCode, ParticipantId, PersonId, RoomCode, SchoolCode};
use giasync_shared::content::{self, RosterRow};
use giasync_shared::exam::ExamId;
use giasync_shared::participant::Category;
use giasync_shared::room::{Attendance, Room};
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::command::{CategoryApproval, Marking, RegionRow, RosterEntry};
use super::error::{RcoiDuty, RowFault, RowProblem};
use super::{Error, require_rcoi, school_doc};

/// Participants written into a roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub count: usize,
    pub doc: DocId,
}

/// A region-wide list written into its schools' rosters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionImported {
    pub exam: ExamId,
    pub participants: usize,
    pub schools: usize,
    /// Participants the register already held whose category of record the list changed
    /// (a list made before an approval puts the old category back: the operator must see it).
    #[serde(default)]
    pub categories_changed: Vec<CategoryChanged>,
    /// Sheets the РЦОИ already holds that score a listed participant by another category than
    /// the list's: as things stand they no longer count (a list imported after the day).
    #[serde(default)]
    pub sheets_by_another_category: usize,
}

/// A category of record a region-wide list changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryChanged {
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub before: Category,
    pub after: Category,
}

/// How far from when it is handed in an approval may be dated, in ms: the operator signs it then
/// (a revoked operator's key cannot backdate one).
pub const APPROVAL_AT_MS_MAX: i64 = 10 * 60_000;

/// A participant's category of record set at the РЦОИ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryApproved {
    pub participant: ParticipantId,
    /// The category of record before.
    pub before: Category,
    pub category: Category,
    /// The operator who signed the approval, and the papers it rests on.
    #[serde(default)]
    pub operator: Option<giasync_shared::codes::PersonId>,
    #[serde(default)]
    pub basis: String,
}

/// A participant placed in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    pub participant: ParticipantId,
    pub room: RoomCode,
}

/// A participant as the roster holds them. A damaged field reads as empty (or `None`), so it
/// never hides the row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The id as stored (a valid [`ParticipantId`] whenever the roster was written by giasync).
    pub id: String,
    pub surname: String,
    pub given_name: String,
    pub patronymic: String,
    pub class: String,
    /// The category scoring uses: the category of record when the regional register (the
    /// РЦОИ's document for the school) holds one; otherwise the roster's, which the РЦОИ will
    /// refuse on ingest unless the register agrees by then.
    pub category: Option<Category>,
    /// Whether [`Entry::category`] is the category of record.
    pub registered: bool,
    /// The roster's category when it differs from the category of record: a change the school
    /// asked for that the РЦОИ has not approved, so not used for scoring.
    pub requested: Option<Category>,
    /// A disabled participant (инвалид): as the register says when it says, else the roster.
    pub disabled: bool,
    /// Answers in writing (seed 002 §61): as the register says when it says, else the roster.
    #[serde(default)]
    pub written: bool,
    /// The identity document (the series may be empty).
    pub series: String,
    pub number: String,
    pub room: Option<RoomCode>,
    pub attendance: Option<Attendance>,
    /// Why an absent participant was absent, once the organiser recorded it (§70).
    #[serde(default)]
    pub absence: Option<giasync_shared::retake::AbsenceReason>,
}

impl Entry {
    /// Reads a roster row; what the regional register (the school's РЦОИ document, when this
    /// node holds it) says of the participant wins: the category of record, a disability, the
    /// written form.
    #[must_use]
    pub fn read(id: &str, row: &RosterRow, register: Option<&impl automerge::ReadDoc>) -> Self {
        let of_record = register.and_then(|r| content::registered_category(r, id));
        let disabled = register.and_then(|r| content::registered_disabled(r, id));
        let written = register.and_then(|r| content::registered_written(r, id));
        let attendance = match row.get("attendance") {
            "" => None,
            word => Attendance::from_words(word, row.get("act")).ok(),
        };
        let in_roster: Option<Category> = row.get("category").parse().ok();
        Entry {
            id: id.to_owned(),
            surname: row.get("surname").into(),
            given_name: row.get("given_name").into(),
            patronymic: row.get("patronymic").into(),
            class: row.get("class").into(),
            category: of_record.or(in_roster),
            registered: of_record.is_some(),
            requested: in_roster.filter(|_| of_record.is_some() && in_roster != of_record),
            disabled: disabled.unwrap_or(row.get("disabled") == "yes"),
            written: written.unwrap_or(row.get("written") == "yes"),
            series: row.get("doc_series").into(),
            number: row.get("doc_number").into(),
            room: RoomCode::new(row.get("room")).ok(),
            absence: (attendance == Some(Attendance::Absent))
                .then(|| content::absence(row))
                .flatten(),
            attendance,
        }
    }

    /// The time the participant's answer may take (seed 002 §14, §59); the standard time when
    /// the category is not known.
    #[must_use]
    pub fn allowed_ms(&self) -> i64 {
        giasync_shared::room::allowed_ms(self.category.unwrap_or(Category::Standard), self.disabled)
    }

    /// «Фамилия Имя Отчество».
    #[must_use]
    pub fn full_name(&self) -> String {
        format!("{} {} {}", self.surname, self.given_name, self.patronymic)
            .trim()
            .to_owned()
    }
}

fn write_entries(
    engine: &mut Engine,
    now_ms: i64,
    doc: DocId,
    entries: &[RosterEntry],
) -> Result<(), Error> {
    engine.change(now_ms, doc, |tx| {
        for e in entries {
            content::put_participant(tx, &e.participant)?;
            content::put_disabled(tx, e.participant.id, e.disabled)?;
            content::put_written(tx, e.participant.id, e.written, false)?;
            if let Some(room) = e.room {
                content::assign(tx, e.participant.id, room)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Adds (or corrects) participants in the school's roster, with their rooms.
pub fn import(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    rows: Vec<RosterEntry>,
) -> Result<Imported, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    write_entries(engine, now_ms, doc, &rows)?;
    Ok(Imported {
        count: rows.len(),
        doc,
    })
}

/// Declares rooms and their capacities; returns how many.
pub fn rooms(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    rooms: &[(RoomCode, u16)],
) -> Result<usize, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    let rooms: Vec<Room> = rooms
        .iter()
        .map(|(code, capacity)| Room::new(*code, *capacity))
        .collect::<Result<_, _>>()?;
    engine.change(now_ms, doc, |tx| {
        rooms.iter().try_for_each(|r| content::put_room(tx, *r))
    })?;
    Ok(rooms.len())
}

/// Places a participant of the roster in a room, within the room's capacity.
pub fn assign(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    participant: ParticipantId,
    room: RoomCode,
) -> Result<Assigned, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    let roster = engine
        .doc(&doc)
        .map(content::participants)
        .unwrap_or_default();
    if !roster.contains_key(participant.as_str()) {
        return Err(Error::UnknownParticipant { participant, doc });
    }
    let rooms = engine.doc(&doc).map(content::rooms).unwrap_or_default();
    if let Some(&capacity) = rooms.get(room.as_str()) {
        let taken = roster
            .iter()
            .filter(|(id, r)| r.get("room") == room.as_str() && id.as_str() != participant.as_str())
            .count();
        if i64::try_from(taken).unwrap_or(i64::MAX) >= capacity {
            return Err(Error::RoomFull { room, capacity });
        }
    }
    engine.change(now_ms, doc, |tx| content::assign(tx, participant, room))?;
    Ok(Assigned { participant, room })
}

/// Records a participant's attendance. An interviewer marks only the participants of their own
/// rooms (seed 002 §8: they mark who did not come to or left their room), as they keep only those
/// rooms' log (`super::room_log::require_interviewer_of_room`); organisers mark anyone's.
pub fn mark(
    engine: &mut Engine,
    context: &super::Context,
    now_ms: i64,
    marking: &Marking,
    interviewer: Option<PersonId>,
) -> Result<(), Error> {
    let doc = require_participant(engine, marking.exam, marking.participant)?;
    if let Some(interviewer) = interviewer {
        super::room_log::require_interviewer_of_room(
            engine,
            context,
            marking.exam,
            interviewer,
            marking.participant,
        )?;
    }
    // An act's number is one act's (§48, §49): the number a mark gives may not be another
    // participant's act on this date, signed or marked.
    if let Some(number) = marking.attendance.act()
        && let Some(participant) =
            super::acts::number_holder(engine, context, marking.exam, number, marking.participant)?
    {
        return Err(Error::ActNumberTaken {
            number: number.clone(),
            participant,
        });
    }
    engine.change(now_ms, doc, |tx| {
        content::mark(tx, marking.participant, &marking.attendance)
    })?;
    Ok(())
}

/// `Ok` when `participant` is in the school's roster of `exam`; the roster's id either way.
pub fn require_participant(
    engine: &Engine,
    exam: ExamId,
    participant: ParticipantId,
) -> Result<DocId, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    let known = engine
        .doc(&doc)
        .is_some_and(|d| content::participants(d).contains_key(participant.as_str()));
    if known {
        Ok(doc)
    } else {
        Err(Error::UnknownParticipant { participant, doc })
    }
}

/// One participant's roster entry.
pub fn entry(engine: &Engine, exam: ExamId, participant: ParticipantId) -> Result<Entry, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    let roster = engine
        .doc(&doc)
        .map(content::participants)
        .unwrap_or_default();
    let row = roster
        .get(participant.as_str())
        .ok_or(Error::UnknownParticipant { participant, doc })?;
    let register = doc.sibling(DocKind::Rcoi).and_then(|r| engine.doc(&r));
    Ok(Entry::read(participant.as_str(), row, register))
}

/// Every participant of the roster, by id.
pub fn entries(engine: &Engine, exam: ExamId) -> Result<Vec<Entry>, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    Ok(engine
        .doc(&doc)
        .map(content::participants)
        .unwrap_or_default()
        .iter()
        .map(|(id, row)| {
            let register = doc.sibling(DocKind::Rcoi).and_then(|r| engine.doc(&r));
            Entry::read(id, row, register)
        })
        .collect())
}

/// At the РЦОИ: sets a participant's category of record, approving a change the school asked
/// for (or correcting the register), on an operator's signed approval (seed 002 §4, §27): it must
/// verify under the operator's certificate, name this РЦОИ, the participant, the exam, the school
/// and the category asked for, and be signed now. The participant must be in the register
/// already: the register's entries come from the region's list ([`region_import`]). The approval
/// is stored beside the register's new category.
pub fn approve_category(
    engine: &mut Engine,
    actor: &super::Actor,
    context: &super::Context,
    now_ms: i64,
    approval: &CategoryApproval,
) -> Result<CategoryApproved, Error> {
    require_rcoi(engine, RcoiDuty::ApproveCategory)?;
    let register = engine
        .doc_ids()
        .find(|d| {
            matches!(d, DocId::School { kind: DocKind::Rcoi, school, exam, .. }
                if *school == approval.school && *exam == approval.exam)
        })
        .copied()
        .ok_or(Error::SchoolNotHeld {
            school: approval.school,
            exam: approval.exam,
        })?;
    let participant = approval.participant;
    let before = engine
        .doc(&register)
        .and_then(|d| content::registered_category(d, participant.as_str()))
        .ok_or(Error::NotRegistered {
            participant,
            school: approval.school,
        })?;
    if approval.statement.is_empty() {
        return Err(Error::ApprovalUnsigned);
    }
    let (statement, signed) = super::handed_in(
        context,
        actor,
        approval.statement.clone(),
        (
            giasync_shared::statement::StatementKind::CategoryApproval,
            "operator",
        ),
        &approval.operator_cert,
        |s, d| giasync_shared::approval::CategoryApproval::verify(s, d),
        |a: &giasync_shared::approval::CategoryApproval| (a.operator, a.exam, a.school),
        (approval.exam, approval.school),
    )?;
    let asked = (participant, approval.category);
    if (signed.participant, signed.category) != asked {
        return Err(Error::ApprovalForOther {
            signed: (signed.participant, signed.category),
            asked,
        });
    }
    if engine.identity().org != giasync_shared::codes::OrgCode::Rcoi(signed.rcoi) {
        return Err(Error::ApprovalOfAnotherRcoi { rcoi: signed.rcoi });
    }
    if (signed.at.unix_ms() - now_ms).abs() > APPROVAL_AT_MS_MAX {
        return Err(Error::ApprovalOutOfTime { at: signed.at });
    }
    // An approval handed in again must not put back a category a later one replaced.
    let latest = engine.doc(&register).and_then(|r| {
        giasync_shared::approval::approvals(r, |certs| context.verifier.experts(certs))
            .remove(&participant)
    });
    if let Some(latest) = latest.filter(|l| l.at >= signed.at) {
        return Err(Error::ApprovalNotNewer { latest: latest.at });
    }
    engine.change(now_ms, register, |tx| {
        content::put_registered_category(tx, participant, approval.category)?;
        content::put_approval(tx, &statement, signed.operator, &approval.operator_cert)
    })?;
    if let Some(protocol) = register.sibling(DocKind::Protocol) {
        giasync_shared::ingest::lift_category_refusals(
            engine,
            protocol,
            |certs| context.verifier.experts(certs),
            now_ms,
        )?;
    }
    Ok(CategoryApproved {
        participant,
        before,
        category: approval.category,
        operator: Some(signed.operator),
        basis: signed.basis,
    })
}

/// At the РЦОИ: places each row in its school's roster (the school's МОУО from the row, or from
/// documents the РЦОИ already holds for the school); any row that cannot be placed refuses the
/// whole list, naming every such row.
pub fn region_import(
    engine: &mut Engine,
    context: &super::Context,
    now_ms: i64,
    exam: ExamId,
    rows: Vec<RegionRow>,
) -> Result<RegionImported, Error> {
    require_rcoi(engine, RcoiDuty::Import)?;
    let known = known_schools(engine);
    let mut problems = Vec::new();
    let mut by_roster: BTreeMap<DocId, Vec<(usize, RosterEntry)>> = BTreeMap::new();
    let participants = rows.len();
    let mut listed = documents_listed(engine, exam);
    for r in rows {
        let placed = place(&known, &r).and_then(|(school, municipality)| {
            let document = r.participant.participant.document.clone();
            match listed.get(&document) {
                Some(&other) if other != school => Err(RowFault::DocumentInAnotherSchool {
                    document,
                    school: other,
                }),
                _ => {
                    listed.insert(document, school);
                    Ok((school, municipality))
                }
            }
        });
        match placed {
            Ok((school, municipality)) => {
                let doc = DocId::School {
                    kind: DocKind::Roster,
                    municipality,
                    school,
                    exam,
                };
                by_roster
                    .entry(doc)
                    .or_default()
                    .push((r.row, r.participant));
            }
            Err(problem) => problems.push(RowProblem {
                row: r.row,
                problem,
            }),
        }
    }
    let admitted = if super::retakes::is_additional(exam) {
        admit(engine, context, exam, &by_roster, &mut problems)
    } else {
        BTreeMap::new()
    };
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.row);
        return Err(Error::RowsRefused(problems));
    }
    let schools = by_roster.len();
    let mut categories_changed = Vec::new();
    let mut sheets_by_another_category = 0;
    for (doc, rows) in by_roster {
        let entries: Vec<RosterEntry> = rows.into_iter().map(|(_, e)| e).collect();
        write_entries(engine, now_ms, doc, &entries)?;
        let register = doc.sibling(DocKind::Rcoi).unwrap_or(doc);
        if let (Some(held), Some(school)) = (engine.doc(&register), doc.school()) {
            categories_changed.extend(entries.iter().filter_map(|e| {
                let p = &e.participant;
                let before = content::registered_category(held, p.id.as_str())?;
                (before != p.category).then_some(CategoryChanged {
                    school,
                    participant: p.id,
                    before,
                    after: p.category,
                })
            }));
        }
        engine.change(now_ms, register, |tx| {
            entries.iter().try_for_each(|e| {
                content::put_registered(tx, &e.participant)?;
                content::put_registered_disabled(tx, e.participant.id, e.disabled)?;
                content::put_written(tx, e.participant.id, e.written, true)?;
                match admitted.get(&e.participant.id) {
                    Some(a) => {
                        if let Some(admission) = &a.admission {
                            content::put_registered_admission_kind(
                                tx,
                                e.participant.id,
                                admission,
                            )?;
                        }
                        content::put_registered_admission(
                            tx,
                            e.participant.id,
                            a.first_attempt,
                            &a.admission
                                .as_ref()
                                .map_or_else(String::new, |a| a.describe()),
                        )
                    }
                    None => Ok(()),
                }
            })
        })?;
        if let Some(protocol) = doc.sibling(DocKind::Protocol) {
            giasync_shared::ingest::lift_category_refusals(
                engine,
                protocol,
                |certs| context.verifier.experts(certs),
                now_ms,
            )?;
            let listed: BTreeMap<ParticipantId, Category> = entries
                .iter()
                .map(|e| (e.participant.id, e.participant.category))
                .collect();
            sheets_by_another_category += engine
                .doc(&protocol)
                .map(content::sheets)
                .unwrap_or_default()
                .iter()
                .filter_map(|s| s.decode_unverified().ok())
                .filter(|s| {
                    listed
                        .get(&s.subject.participant)
                        .is_some_and(|c| *c != s.category)
                })
                .count();
        }
    }
    Ok(RegionImported {
        exam,
        participants,
        schools,
        categories_changed,
        sheets_by_another_category,
    })
}

/// On an additional date: whether each listed participant is admitted (§70), from their
/// school's documents of the earlier dates. A participant not admitted is a row problem; the
/// admitted are answered by id, for the register.
fn admit(
    engine: &Engine,
    context: &super::Context,
    exam: ExamId,
    by_roster: &BTreeMap<DocId, Vec<(usize, RosterEntry)>>,
    problems: &mut Vec<RowProblem>,
) -> BTreeMap<ParticipantId, giasync_shared::retake::Admitted> {
    // A participant the date's register already holds was admitted when first listed:
    // importing the list again neither judges nor renumbers them.
    let mut new_rows: Vec<(usize, ParticipantId)> = Vec::new();
    for (doc, rows) in by_roster {
        let held = doc
            .sibling(DocKind::Rcoi)
            .and_then(|r| engine.doc(&r))
            .map(content::registered)
            .unwrap_or_default();
        new_rows.extend(
            rows.iter()
                .filter(|(_, e)| !held.contains_key(e.participant.id.as_str()))
                .map(|(row, e)| (*row, e.participant.id)),
        );
    }
    // The history of every school is read once for the whole list.
    let found = super::retakes::admissions(engine, context, exam, new_rows.iter().map(|(_, p)| *p));
    let mut admitted = BTreeMap::new();
    for (row, participant) in new_rows {
        match found.get(&participant) {
            Some(Ok(a)) => {
                admitted.insert(participant, a.clone());
            }
            Some(Err(why)) => problems.push(RowProblem {
                row,
                problem: RowFault::NotAdmitted(why.clone()),
            }),
            None => {}
        }
    }
    admitted
}

/// The identity documents in the registers of `exam` this node holds (the РЦОИ's documents for
/// its schools), with the school listing each.
pub(super) fn documents_listed(
    engine: &Engine,
    exam: ExamId,
) -> BTreeMap<giasync_shared::participant::IdentityDocument, SchoolCode> {
    documents_listed_except(engine, exam, &std::collections::BTreeSet::new())
}

/// [`documents_listed`] but for the registers of `except` (schools whose entries are being
/// replaced).
pub(super) fn documents_listed_except(
    engine: &Engine,
    exam: ExamId,
    except: &std::collections::BTreeSet<SchoolCode>,
) -> BTreeMap<giasync_shared::participant::IdentityDocument, SchoolCode> {
    let mut listed = BTreeMap::new();
    for id in engine.doc_ids() {
        let DocId::School {
            kind: DocKind::Rcoi,
            school,
            exam: e,
            ..
        } = *id
        else {
            continue;
        };
        if e != exam || except.contains(&school) {
            continue;
        }
        let Some(doc) = engine.doc(id) else { continue };
        for row in content::registered(doc).values() {
            if let Ok(document) = giasync_shared::participant::IdentityDocument::new(
                row.get("doc_series"),
                row.get("doc_number"),
            ) {
                listed.entry(document).or_insert(school);
            }
        }
    }
    listed
}

/// The school of a region-wide row and its МОУО.
fn place(
    known: &BTreeMap<SchoolCode, MunicipalityCode>,
    r: &RegionRow,
) -> Result<(SchoolCode, MunicipalityCode), RowFault> {
    place_school(known, r.school, r.municipality)
}

/// The schools the РЦОИ holds documents of, with their МОУО.
pub(super) fn known_schools(engine: &Engine) -> BTreeMap<SchoolCode, MunicipalityCode> {
    engine
        .doc_ids()
        .filter_map(|d| match d {
            DocId::School {
                municipality,
                school,
                ..
            } => Some((*school, *municipality)),
            DocId::Directory => None,
        })
        .collect()
}

/// A row's school and its МОУО: the row's, which must agree with what the РЦОИ knows, or the
/// known one.
pub(super) fn place_school(
    known: &BTreeMap<SchoolCode, MunicipalityCode>,
    school: Option<SchoolCode>,
    municipality: Option<MunicipalityCode>,
) -> Result<(SchoolCode, MunicipalityCode), RowFault> {
    let school = school.ok_or(RowFault::NoSchool)?;
    let municipality = match municipality {
        Some(listed) => {
            if let Some(&known) = known.get(&school).filter(|k| **k != listed) {
                return Err(RowFault::OtherMunicipality {
                    school,
                    known,
                    listed,
                });
            }
            listed
        }
        None => *known.get(&school).ok_or(RowFault::UnknownSchool(school))?,
    };
    Ok((school, municipality))
}
