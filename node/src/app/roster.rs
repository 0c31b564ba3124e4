//! The roster and rooms of a school's exam (seed 002 §8, §12): participants imported from the
//! region's lists or corrected by the organiser, rooms with their capacity, assignments within
//! capacity, attendance with acts; and at the РЦОИ, a region-wide list into every school.

use std::collections::BTreeMap;

use giasync_shared::codes::{MunicipalityCode, ParticipantId, RoomCode, SchoolCode};
use giasync_shared::content::{self, RosterRow};
use giasync_shared::exam::ExamId;
use giasync_shared::participant::Category;
use giasync_shared::room::{Attendance, Room};
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::command::{Marking, RegionRow, RosterEntry};
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
    pub category: Option<Category>,
    /// The identity document (the series may be empty).
    pub series: String,
    pub number: String,
    pub room: Option<RoomCode>,
    pub attendance: Option<Attendance>,
}

impl Entry {
    /// Reads a roster row.
    #[must_use]
    pub fn read(id: &str, row: &RosterRow) -> Self {
        let attendance = match row.get("attendance") {
            "" => None,
            word => Attendance::from_words(word, row.get("act")).ok(),
        };
        Entry {
            id: id.to_owned(),
            surname: row.get("surname").into(),
            given_name: row.get("given_name").into(),
            patronymic: row.get("patronymic").into(),
            class: row.get("class").into(),
            category: row.get("category").parse().ok(),
            series: row.get("doc_series").into(),
            number: row.get("doc_number").into(),
            room: RoomCode::new(row.get("room")).ok(),
            attendance,
        }
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

/// Records a participant's attendance.
pub fn mark(engine: &mut Engine, now_ms: i64, marking: &Marking) -> Result<(), Error> {
    let doc = require_participant(engine, marking.exam, marking.participant)?;
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
    Ok(Entry::read(participant.as_str(), row))
}

/// Every participant of the roster, by id.
pub fn entries(engine: &Engine, exam: ExamId) -> Result<Vec<Entry>, Error> {
    let doc = school_doc(engine, DocKind::Roster, exam)?;
    Ok(engine
        .doc(&doc)
        .map(content::participants)
        .unwrap_or_default()
        .iter()
        .map(|(id, row)| Entry::read(id, row))
        .collect())
}

/// At the РЦОИ: places each row in its school's roster (the school's МОУО from the row, or from
/// documents the РЦОИ already holds for the school); any row that cannot be placed refuses the
/// whole list, naming every such row.
pub fn region_import(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    rows: Vec<RegionRow>,
) -> Result<RegionImported, Error> {
    require_rcoi(engine, RcoiDuty::Import)?;
    let known: BTreeMap<SchoolCode, MunicipalityCode> = engine
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
    let mut problems = Vec::new();
    let mut by_roster: BTreeMap<DocId, Vec<RosterEntry>> = BTreeMap::new();
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
                by_roster.entry(doc).or_default().push(r.participant);
            }
            Err(problem) => problems.push(RowProblem {
                row: r.row,
                problem,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(Error::RowsRefused(problems));
    }
    let schools = by_roster.len();
    for (doc, entries) in by_roster {
        write_entries(engine, now_ms, doc, &entries)?;
    }
    Ok(RegionImported {
        exam,
        participants,
        schools,
    })
}

/// The identity documents in the rosters of `exam` this node holds, with the school listing
/// each.
fn documents_listed(
    engine: &Engine,
    exam: ExamId,
) -> BTreeMap<giasync_shared::participant::IdentityDocument, SchoolCode> {
    let mut listed = BTreeMap::new();
    for id in engine.doc_ids() {
        let DocId::School {
            kind: DocKind::Roster,
            school,
            exam: e,
            ..
        } = *id
        else {
            continue;
        };
        if e != exam {
            continue;
        }
        let Some(doc) = engine.doc(id) else { continue };
        for row in content::participants(doc).values() {
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
    let school = r.school.ok_or(RowFault::NoSchool)?;
    let municipality = match r.municipality {
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
