//! Итоговое сочинение (изложение) at the РЦОИ (seed 003): its results come from the РЦОИ's
//! processing, not from school experts. The РЦОИ imports the processing's file — every row
//! checked again here against the year's rules (`[node] essay`), all or nothing — into its
//! document for each school (`giasync_shared::essay::stored`), with the participants' identity
//! documents for the look-up and the time processing ended for that school, which anchors the
//! informing chain. Publishing signs each school's results like any exam's
//! (`super::hub::publish_school`); they flow down through the МОУО, or go on removable media.

use std::collections::BTreeMap;

use giasync_shared::codes::{MunicipalityCode, ParticipantId, SchoolCode};
use giasync_shared::content;
use giasync_shared::essay::stored::{self, StoredEssay};
use giasync_shared::essay::{EssayForm, EssayResult};
use giasync_shared::exam::{ExamId, ExamKind};
use giasync_shared::participant::IdentityDocument;
use giasync_shared::rules::Outcome;
use giasync_shared::sync::{DocId, DocKind, Engine};
use giasync_shared::year::Route;
use serde::{Deserialize, Serialize};

use super::roster::{documents_listed_except, known_schools, place_school};
use super::{Context, Error, RcoiDuty, RowFault, RowProblem, require_rcoi, timestamp};

/// One participant's processed result as the import carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EssayRow {
    /// The row in the file (1-based, the header is row 1).
    pub row: usize,
    pub municipality: Option<MunicipalityCode>,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub document: IdentityDocument,
    pub form: EssayForm,
    pub marks: BTreeMap<String, bool>,
    pub outcome: Outcome,
}

impl From<&EssayResult> for EssayRow {
    fn from(r: &EssayResult) -> Self {
        EssayRow {
            row: r.row,
            municipality: r.municipality,
            school: r.school,
            participant: r.participant,
            document: r.document.clone(),
            form: r.form,
            marks: r.marks.clone(),
            outcome: r.outcome,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EssayImported {
    pub exam: ExamId,
    pub participants: usize,
    pub schools: usize,
    pub passed: usize,
}

/// At the РЦОИ: takes in the processing's results of `exam` (an итоговое сочинение date). Each
/// row's school is placed as a region-wide list's is, its participant id is the one its identity
/// document gives and is in the file once, the document does not stand for a participant of a
/// school the file does not cover, and its marks give its outcome by the year's rules; any bad
/// row and nothing is written, every bad row named. For each school the file covers, what the
/// РЦОИ held before is replaced whole (a participant the file no longer lists is removed: a
/// corrected document number, a row that was under another school).
pub fn import(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
    rows: Vec<EssayRow>,
) -> Result<EssayImported, Error> {
    require_rcoi(engine, RcoiDuty::Import)?;
    if exam.kind() != ExamKind::Essay {
        return Err(Error::NotAnEssay(exam));
    }
    let at = timestamp(now_ms)?;
    let known = known_schools(engine);
    let covered: std::collections::BTreeSet<SchoolCode> = rows.iter().map(|r| r.school).collect();
    // The documents of the schools the file does not cover: those it replaces do not count.
    let mut listed = documents_listed_except(engine, exam, &covered);
    let mut first_row: BTreeMap<ParticipantId, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut by_school: BTreeMap<DocId, Vec<EssayRow>> = BTreeMap::new();
    let participants = rows.len();
    let mut passed = 0;
    for r in rows {
        let expected = giasync_shared::import::participant_id(&r.document);
        let identity = if expected != r.participant {
            Err(RowFault::NotTheDocumentsId {
                participant: r.participant,
                expected,
            })
        } else if let Some(&first) = first_row.get(&r.participant) {
            Err(RowFault::Twice {
                participant: r.participant,
                first,
            })
        } else {
            first_row.insert(r.participant, r.row);
            Ok(())
        };
        let checked = identity
            .and_then(|()| place_school(&known, Some(r.school), r.municipality))
            .and_then(|placed| match context.essay.outcome(r.form, &r.marks) {
                Ok(outcome) if outcome == r.outcome => Ok(placed),
                Ok(outcome) => Err(RowFault::EssayMarks(format!(
                    "they give «{}», the row says «{}»",
                    outcome.display_name(),
                    r.outcome.display_name()
                ))),
                Err(e) => Err(RowFault::EssayMarks(e)),
            });
        let checked = checked.and_then(|(school, municipality)| match listed.get(&r.document) {
            Some(&other) if other != school => Err(RowFault::DocumentInAnotherSchool {
                document: r.document.clone(),
                school: other,
            }),
            _ => {
                listed.insert(r.document.clone(), school);
                Ok((school, municipality))
            }
        });
        match checked {
            Ok((school, municipality)) => {
                passed += usize::from(r.outcome == Outcome::Pass);
                by_school
                    .entry(DocId::School {
                        kind: DocKind::Rcoi,
                        municipality,
                        school,
                        exam,
                    })
                    .or_default()
                    .push(r);
            }
            Err(problem) => problems.push(RowProblem {
                row: r.row,
                problem,
            }),
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.row);
        return Err(Error::RowsRefused(problems));
    }
    let schools = by_school.len();
    for (doc, rows) in by_school {
        let listed_now: std::collections::BTreeSet<ParticipantId> =
            rows.iter().map(|r| r.participant).collect();
        let dropped: Vec<ParticipantId> = engine
            .doc(&doc)
            .map(stored::results)
            .unwrap_or_default()
            .into_keys()
            .filter(|p| !listed_now.contains(p))
            .collect();
        engine.change(now_ms, doc, |tx| {
            for p in &dropped {
                stored::remove(tx, *p)?;
            }
            for r in &rows {
                stored::put(
                    tx,
                    r.participant,
                    &StoredEssay {
                        form: r.form,
                        marks: r.marks.clone(),
                        outcome: r.outcome,
                    },
                )?;
                content::put_registered_document(tx, r.participant, &r.document)?;
            }
            stored::put_processed(tx, at)
        })?;
    }
    Ok(EssayImported {
        exam,
        participants,
        schools,
        passed,
    })
}

/// A school put on a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    pub school: SchoolCode,
    pub route: Route,
    pub before: Route,
}

/// At the РЦОИ: puts `school` on `route` in the region directory, which every node reads: the
/// oversight pages then judge its informing chain by that route's steps.
pub fn route(
    engine: &mut Engine,
    now_ms: i64,
    school: SchoolCode,
    route: Route,
) -> Result<Routed, Error> {
    require_rcoi(engine, RcoiDuty::Import)?;
    if !known_schools(engine).contains_key(&school) {
        return Err(Error::UnknownSchool(school));
    }
    let before = engine
        .doc(&DocId::Directory)
        .and_then(|d| content::routes(d).remove(&school))
        .unwrap_or(Route::Municipal);
    engine.change(now_ms, DocId::Directory, |tx| {
        content::put_route(tx, school, route)
    })?;
    Ok(Routed {
        school,
        route,
        before,
    })
}
