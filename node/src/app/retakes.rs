//! Retakes (seed 002 §15, §16, §70): reasons for absences, who is admitted to an additional date
//! and with which attempt, from the school's documents of the year's earlier dates
//! (`giasync_shared::retake` is the rule).
//!
//! The РЦОИ checks every participant of a region-wide list for an additional date against the
//! earlier dates and writes why each is admitted, and their first attempt there, into the
//! register (`roster::region_import`); a participant not admitted refuses the list. Hubs list who
//! must be registered for the next date ([`list`]).

use std::collections::BTreeMap;

use giasync_shared::calendar::Date;
use giasync_shared::codes::{MunicipalityCode, ParticipantId, SchoolCode};
use giasync_shared::content;
use giasync_shared::exam::{ExamId, ExamKind};
use giasync_shared::retake::{self, AbsenceReason, Admitted, DayDocs, DayRecord, NotAdmitted};
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Context, Error};

/// The ИС dates of `exam`'s school year: the main date and the additional ones, or nothing for
/// another kind of exam.
fn year_dates(exam: ExamId) -> Option<[Date; 3]> {
    if exam.kind() != ExamKind::Is {
        return None;
    }
    let date = exam.date();
    giasync_shared::calendar::is_dates(date.year() + i32::from(date.month() >= 9))
}

/// Whether `exam` is an additional date (retakes only).
#[must_use]
pub fn is_additional(exam: ExamId) -> bool {
    year_dates(exam).is_some_and(|[_, march, april]| exam.date() == march || exam.date() == april)
}

/// The first attempt of `participant` on `exam`'s date at the school of `protocol`
/// (`retake::first_attempt`). On an additional date it comes from the РЦОИ's register, so a
/// school whose copy of the register has not arrived cannot know it: nothing is scored or
/// ended there until it does.
pub(crate) fn first_attempt_here(
    engine: &Engine,
    protocol: DocId,
    participant: ParticipantId,
    exam: ExamId,
) -> Result<giasync_shared::record::Attempt, Error> {
    let register = protocol
        .sibling(DocKind::Rcoi)
        .and_then(|r| engine.doc(&r))
        .filter(|r| content::has_register(*r));
    if register.is_none() && is_additional(exam) {
        return Err(Error::NoRegisterYet { exam });
    }
    Ok(retake::first_attempt(register, participant, exam))
}

/// A participant's earlier dates, each with the school that held them (a participant may move
/// between dates; their id follows their identity document).
type History = BTreeMap<ParticipantId, BTreeMap<Date, (MunicipalityCode, SchoolCode, DayRecord)>>;

/// What every school's documents this node holds say of the dates before `exam`.
fn history(engine: &Engine, context: &Context, exam: ExamId) -> History {
    let mut out: History = BTreeMap::new();
    let Some(dates) = year_dates(exam) else {
        return out;
    };
    let earlier: Vec<ExamId> = dates
        .into_iter()
        .filter(|d| *d < exam.date())
        .map(|d| ExamId::new(exam.kind(), d))
        .collect();
    let registers: Vec<DocId> = engine
        .doc_ids()
        .filter(|d| {
            matches!(d, DocId::School { kind: DocKind::Rcoi, exam: e, .. } if earlier.contains(e))
        })
        .copied()
        .collect();
    for register_id in registers {
        let DocId::School {
            municipality,
            school,
            exam: earlier,
            ..
        } = register_id
        else {
            continue;
        };
        let sibling = |kind| register_id.sibling(kind).and_then(|id| engine.doc(&id));
        let register = engine.doc(&register_id);
        let published = register.and_then(|r| {
            giasync_shared::publish::latest(
                &content::publications(r),
                &context.verifier,
                earlier,
                school,
            )
            .ok()
        });
        let ended = register_id
            .sibling(DocKind::Protocol)
            .map(|p| super::acts::ended(engine, context, p))
            .unwrap_or_default();
        let day = DayDocs {
            exam: earlier,
            school,
            register,
            roster: sibling(DocKind::Roster),
            protocol: sibling(DocKind::Protocol),
            ended: &ended,
            published: published.as_ref(),
        };
        for (participant, record) in day.records() {
            let dates = out.entry(participant).or_default();
            // One identity document is in one school's list per exam; should two schools still
            // both hold the participant, the one that registered them is kept.
            match dates.get(&earlier.date()) {
                Some((_, _, held)) if held.registered && !record.registered => {}
                _ => {
                    dates.insert(earlier.date(), (municipality, school, record));
                }
            }
        }
    }
    out
}

/// The records alone, by date.
fn records_of(
    dates: &BTreeMap<Date, (MunicipalityCode, SchoolCode, DayRecord)>,
) -> BTreeMap<Date, DayRecord> {
    dates.iter().map(|(d, (_, _, r))| (*d, r.clone())).collect()
}

/// Whether each of `participants` is admitted to `exam` (an additional date), from every
/// school's earlier dates this node holds.
pub(crate) fn admissions(
    engine: &Engine,
    context: &Context,
    exam: ExamId,
    participants: impl IntoIterator<Item = ParticipantId>,
) -> BTreeMap<ParticipantId, Result<Admitted, NotAdmitted>> {
    let history = history(engine, context, exam);
    let additional: Vec<Date> = year_dates(exam).map_or_else(Vec::new, |[_, m, a]| vec![m, a]);
    participants
        .into_iter()
        .map(|p| {
            let earlier = history.get(&p).map(records_of).unwrap_or_default();
            (p, retake::admission(p, &earlier, &additional))
        })
        .collect()
}

/// An absence's reason recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsenceRecorded {
    pub exam: ExamId,
    pub participant: ParticipantId,
    pub reason: AbsenceReason,
}

/// Records why an absent participant («Н») was absent. Only a participant marked absent has
/// an absence to give a reason for.
pub fn record_absence(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    participant: ParticipantId,
    reason: AbsenceReason,
) -> Result<AbsenceRecorded, Error> {
    let doc = super::roster::require_participant(engine, exam, participant)?;
    let attendance = engine
        .doc(&doc)
        .map(content::participants)
        .and_then(|rows| {
            rows.get(participant.as_str())
                .map(|r| r.get("attendance").to_owned())
        })
        .unwrap_or_default();
    if attendance != "absent" {
        return Err(Error::NotAbsent { participant });
    }
    engine.change(now_ms, doc, |tx| {
        content::put_absence(tx, participant, &reason)
    })?;
    Ok(AbsenceRecorded {
        exam,
        participant,
        reason,
    })
}

/// One participant who must be registered for the next date, or who could be once a reason is
/// given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetakeRow {
    pub municipality: MunicipalityCode,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    /// The latest earlier register's (or roster's) fields: `surname`, `given_name`,
    /// `patronymic`, `doc_series`, `doc_number`, `class`, `category`, `disabled`.
    pub fields: BTreeMap<String, String>,
    /// Why they are admitted; `None` with `refused` set when they are not.
    pub admission: Option<retake::Admission>,
    /// Their first attempt on the date when admitted.
    pub attempt: Option<u8>,
    /// Why they are not admitted, when that is something a school can still change (an absence
    /// with no valid reason recorded, a result not published yet).
    pub refused: Option<String>,
}

/// Who must be registered for `exam` (an additional date), per school this node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retakes {
    pub exam: ExamId,
    pub rows: Vec<RetakeRow>,
}

/// The participants of the schools this node holds who are admitted to `exam`, with the reason,
/// and those who are not only for want of a reason or a result.
pub fn list(engine: &Engine, context: &Context, exam: ExamId) -> Result<Retakes, Error> {
    if !is_additional(exam) {
        return Err(Error::NotAnAdditionalDate { exam });
    }
    let history = history(engine, context, exam);
    let additional: Vec<Date> = year_dates(exam).map_or_else(Vec::new, |[_, m, a]| vec![m, a]);
    let mut fields: BTreeMap<(MunicipalityCode, SchoolCode), _> = BTreeMap::new();
    let mut rows = Vec::new();
    for (participant, dates) in &history {
        // Listed under the school of their latest registered date.
        let Some((municipality, school, _)) =
            dates.values().rev().find(|(_, _, r)| r.registered).cloned()
        else {
            continue;
        };
        let (admission, attempt, refused) =
            match retake::admission(*participant, &records_of(dates), &additional) {
                Ok(a) => (a.admission, Some(a.first_attempt.get()), None),
                Err(
                    e @ (NotAdmitted::AbsentWithoutReason { .. } | NotAdmitted::NoResult { .. }),
                ) => (None, None, Some(e.to_string())),
                Err(_) => continue,
            };
        let of_school = fields
            .entry((municipality, school))
            .or_insert_with(|| fields_of(engine, municipality, school, exam));
        rows.push(RetakeRow {
            municipality,
            school,
            participant: *participant,
            fields: of_school.get(participant).cloned().unwrap_or_default(),
            admission,
            attempt,
            refused,
        });
    }
    rows.sort_by_key(|r| (r.municipality, r.school, r.participant));
    Ok(Retakes { exam, rows })
}

/// The participants' fields from the latest earlier date's register, the roster where the
/// register holds nothing (names are in the roster only).
fn fields_of(
    engine: &Engine,
    municipality: MunicipalityCode,
    school: SchoolCode,
    exam: ExamId,
) -> BTreeMap<ParticipantId, BTreeMap<String, String>> {
    let mut out: BTreeMap<ParticipantId, BTreeMap<String, String>> = BTreeMap::new();
    let Some(dates) = year_dates(exam) else {
        return out;
    };
    for date in dates.into_iter().filter(|d| *d < exam.date()) {
        let doc = |kind| DocId::School {
            kind,
            municipality,
            school,
            exam: ExamId::new(exam.kind(), date),
        };
        let roster = engine
            .doc(&doc(DocKind::Roster))
            .map(content::participants)
            .unwrap_or_default();
        let register = engine
            .doc(&doc(DocKind::Rcoi))
            .map(content::registered)
            .unwrap_or_default();
        for (id, row) in roster {
            let Ok(p) = ParticipantId::new(&id) else {
                continue;
            };
            let mut fields = row.fields;
            // The register's category and document are of record.
            if let Some(reg) = register.get(&id) {
                fields.extend(reg.fields.clone());
            }
            out.insert(p, fields);
        }
    }
    out
}

/// The list as rows in the columns of a region-wide participant list (`giasync-hub import`
/// reads it back), with the reason and the attempt after them, the header first. Only admitted
/// participants.
#[must_use]
pub fn table(retakes: &Retakes) -> Vec<Vec<String>> {
    let header = [
        "фамилия",
        "имя",
        "отчество",
        "серия",
        "номер",
        "класс",
        "категория",
        "инвалидность",
        "код МОУО",
        "код ОО",
        "основание",
        "попытка",
    ];
    let mut out = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for row in &retakes.rows {
        let (Some(admission), Some(attempt)) = (&row.admission, row.attempt) else {
            continue;
        };
        let f = |k: &str| row.fields.get(k).cloned().unwrap_or_default();
        let disabled = if f("disabled") == "yes" {
            "да"
        } else {
            "нет"
        };
        out.push(vec![
            f("surname"),
            f("given_name"),
            f("patronymic"),
            f("doc_series"),
            f("doc_number"),
            f("class"),
            f("category"),
            disabled.to_owned(),
            row.municipality.to_string(),
            row.school.to_string(),
            admission.describe(),
            attempt.to_string(),
        ]);
    }
    out
}

/// The list as CSV ([`table`]).
#[must_use]
pub fn csv(retakes: &Retakes) -> String {
    let mut out = String::new();
    for row in table(retakes) {
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        giasync_shared::export::csv_line(&mut out, &fields);
    }
    out
}

/// The list as an XLSX workbook of one sheet ([`table`]).
pub fn xlsx(retakes: &Retakes) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    crate::export::xlsx_table(&table(retakes), "Пересдачи")
}
