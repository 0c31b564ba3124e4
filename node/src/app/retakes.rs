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

/// What one school's documents of the dates before `exam` hold, by participant and date.
fn history(
    engine: &Engine,
    context: &Context,
    municipality: MunicipalityCode,
    school: SchoolCode,
    exam: ExamId,
) -> BTreeMap<ParticipantId, BTreeMap<Date, DayRecord>> {
    let mut out: BTreeMap<ParticipantId, BTreeMap<Date, DayRecord>> = BTreeMap::new();
    let Some(dates) = year_dates(exam) else {
        return out;
    };
    for date in dates.into_iter().filter(|d| *d < exam.date()) {
        let earlier = ExamId::new(exam.kind(), date);
        let doc = |kind| DocId::School {
            kind,
            municipality,
            school,
            exam: earlier,
        };
        let register = engine.doc(&doc(DocKind::Rcoi));
        let published = register.and_then(|r| {
            giasync_shared::publish::latest(
                &content::publications(r),
                &context.verifier,
                earlier,
                school,
            )
            .ok()
        });
        let ended = super::acts::ended(engine, context, doc(DocKind::Protocol));
        let day = DayDocs {
            register,
            roster: engine.doc(&doc(DocKind::Roster)),
            ended: &ended,
            published: published.as_ref(),
        };
        for (participant, record) in day.records() {
            out.entry(participant).or_default().insert(date, record);
        }
    }
    out
}

/// Whether each of `participants` of `school` is admitted to `exam` (an additional date).
pub(crate) fn admissions(
    engine: &Engine,
    context: &Context,
    municipality: MunicipalityCode,
    school: SchoolCode,
    exam: ExamId,
    participants: impl IntoIterator<Item = ParticipantId>,
) -> BTreeMap<ParticipantId, Result<Admitted, NotAdmitted>> {
    let history = history(engine, context, municipality, school, exam);
    let additional: Vec<Date> = year_dates(exam).map_or_else(Vec::new, |[_, m, a]| vec![m, a]);
    let none = BTreeMap::new();
    participants
        .into_iter()
        .map(|p| {
            let earlier = history.get(&p).unwrap_or(&none);
            (p, retake::admission(p, earlier, &additional))
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
    let schools: std::collections::BTreeSet<(MunicipalityCode, SchoolCode)> = engine
        .doc_ids()
        .filter_map(|d| match d {
            DocId::School {
                municipality,
                school,
                ..
            } => Some((*municipality, *school)),
            DocId::Directory => None,
        })
        .collect();
    let mut rows = Vec::new();
    for (municipality, school) in schools {
        let history = history(engine, context, municipality, school, exam);
        let fields = fields_of(engine, municipality, school, exam);
        let additional: Vec<Date> = year_dates(exam).map_or_else(Vec::new, |[_, m, a]| vec![m, a]);
        for (participant, earlier) in &history {
            let (admission, attempt, refused) =
                match retake::admission(*participant, earlier, &additional) {
                    Ok(a) => (a.admission, Some(a.first_attempt.get()), None),
                    Err(
                        e
                        @ (NotAdmitted::AbsentWithoutReason { .. } | NotAdmitted::NoResult { .. }),
                    ) => (None, None, Some(e.to_string())),
                    Err(_) => continue,
                };
            rows.push(RetakeRow {
                municipality,
                school,
                participant: *participant,
                fields: fields.get(participant).cloned().unwrap_or_default(),
                admission,
                attempt,
                refused,
            });
        }
    }
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

/// The list as CSV in the columns of a region-wide participant list (`giasync-hub import`
/// reads it back), with the reason and the attempt after them. Only admitted participants.
#[must_use]
pub fn csv(retakes: &Retakes) -> String {
    use giasync_shared::export::csv_line;
    let mut out = String::new();
    csv_line(
        &mut out,
        &[
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
        ],
    );
    for row in &retakes.rows {
        let (Some(admission), Some(attempt)) = (&row.admission, row.attempt) else {
            continue;
        };
        let f = |k: &str| row.fields.get(k).map_or("", String::as_str);
        let disabled = if f("disabled") == "yes" {
            "да"
        } else {
            "нет"
        };
        let (municipality, school) = (row.municipality.to_string(), row.school.to_string());
        let (reason, attempt) = (admission.describe(), attempt.to_string());
        csv_line(
            &mut out,
            &[
                f("surname"),
                f("given_name"),
                f("patronymic"),
                f("doc_series"),
                f("doc_number"),
                f("class"),
                f("category"),
                disabled,
                &municipality,
                &school,
                &reason,
                &attempt,
            ],
        );
    }
    out
}
