//! The year's data (`shared/rules/year-2024.toml`): what the orders of a school year set and the
//! choices they leave to the region. Who may settle a conflict at the school
//! (`crate::settlement::Settler`), and the chains of deadlines by which results reach
//! participants, per exam kind and route, counted in calendar days or in working days by the
//! production calendar (`crate::workdays`).
//!
//! A chain only says when each step is due; whether a step is done is read from the documents
//! (`crate::oversight`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::calendar::Date;
use crate::codes::id_enum;
use crate::datafile::{self, DataFileError};
use crate::exam::{ExamId, ExamKind};
use crate::settlement::Settler;
use crate::workdays::{ProductionCalendar, WORKING_DAYS_MAX};

/// The format version of year files this build reads.
pub const YEAR_FORMAT: i64 = 1;
/// The shipped data of the 2023/24 school year.
pub const YEAR_2024_TOML: &str = include_str!("../rules/year-2024.toml");
/// The longest title or source, in characters.
pub const TITLE_CHARS_MAX: usize = 300;

id_enum!(
    /// A step of a chain of deadlines; what marks it done is fixed in code (`crate::oversight`).
    ChainStep, crate::Field::YearData, {
        /// The commission has scored every participant who attended.
        Scoring = "scoring", "проверка и оценивание";
        /// The РЦОИ's signed results are with the МОУО.
        ResultsToMunicipality = "results_to_municipality", "результаты в МОУО";
        /// The results have reached the school.
        ResultsToSchool = "results_to_school", "результаты в ОО";
        /// Every scored participant has been informed under signature.
        Familiarisation = "familiarisation", "ознакомление под подпись";
    }
);

id_enum!(
    /// How a step's days are counted.
    DayCount, crate::Field::YearData, {
        /// Calendar days.
        Calendar = "calendar", "календарных дней";
        /// Working days by the production calendar.
        Working = "working", "рабочих дней";
    }
);

id_enum!(
    /// The way results take to a school (seed 003 §2.2–2.5).
    Route, crate::Field::YearData, {
        /// Through the school's МОУО.
        Municipal = "municipal", "через МОУО";
        /// From the РЦОИ straight to a state school or college of the Ministry, on removable
        /// media.
        Direct = "direct", "из РЦОИ напрямую";
    }
);

/// What a step's days count from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The exam day.
    Exam,
    /// The day the РЦОИ finished processing.
    Processed,
    /// The day an earlier step was done, or its last day while it is not.
    Step(ChainStep),
}

/// One step of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub step: ChainStep,
    pub title: String,
    pub after: Anchor,
    pub days: u32,
    pub count: DayCount,
}

impl Step {
    /// The step's last day, counted from `anchor`.
    pub fn due(&self, anchor: Date, calendar: &ProductionCalendar) -> Date {
        let due = match self.count {
            DayCount::Calendar => anchor.add_days(i64::from(self.days)),
            DayCount::Working => calendar.plus_working_days(anchor, self.days),
        };
        // Past the end of the calendar's range (2199) a deadline stays on its anchor.
        due.unwrap_or(anchor)
    }
}

/// The deadlines of one exam kind on one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub kind: ExamKind,
    pub route: Option<Route>,
    pub source: String,
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Checked by `datafile::parse` before the rest.
    #[serde(rename = "format")]
    _format: i64,
    id: String,
    settled_by: Vec<Settler>,
    recheck: Option<RawRecheck>,
    chain: Vec<RawChain>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecheck {
    apply_by: String,
    grant_days: u32,
    familiarise_days: u32,
}

/// The terms of a re-check by another school's commission (seed 002 §71–73, `crate::recheck`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecheckTerms {
    /// The last day a participant may apply (§71: 1 April 2024).
    pub apply_by: Date,
    /// How many calendar days the reviewing school may read the recording from the grant (the
    /// region's choice: the orders set no term).
    pub grant_days: u32,
    /// Within how many calendar days of the re-check the applicant is informed (§73: 3).
    pub familiarise_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    exam: ExamKind,
    route: Option<Route>,
    source: String,
    step: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    step: ChainStep,
    title: String,
    after: String,
    days: u32,
    count: DayCount,
}

/// A school year's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearData {
    pub id: String,
    /// Who may sign a commission's settlement, at least one.
    pub settled_by: BTreeSet<Settler>,
    /// The re-check's terms; a year without them takes no re-check requests.
    pub recheck: Option<RecheckTerms>,
    chains: BTreeMap<(ExamKind, Option<Route>), Chain>,
}

fn one_line(text: &str) -> bool {
    let n = text.trim().chars().count();
    n > 0 && n <= TITLE_CHARS_MAX && !text.contains(['\n', '\r'])
}

impl YearData {
    /// The shipped data of 2023/24.
    pub fn year_2024() -> Result<Self, DataFileError> {
        Self::parse(YEAR_2024_TOML, "shared/rules/year-2024.toml")
    }

    /// Reads and validates the year file at `path`.
    pub fn load(path: &Path) -> Result<Self, DataFileError> {
        let (text, file) = datafile::read(path)?;
        Self::parse(&text, &file)
    }

    /// Validates a year file's `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, DataFileError> {
        let raw: RawFile = datafile::parse(text, file, YEAR_FORMAT)?;
        let bad = |message: String| DataFileError::invalid(file, message);
        if raw.id.trim().is_empty() {
            return Err(bad("id is empty".into()));
        }
        let settled_by: BTreeSet<Settler> = raw.settled_by.iter().copied().collect();
        if settled_by.is_empty() || settled_by.len() != raw.settled_by.len() {
            return Err(bad(
                "settled_by names \"chair\", \"room-expert\" or both, each once".into(),
            ));
        }
        let recheck = match raw.recheck {
            None => None,
            Some(r) => {
                let apply_by: Date = r.apply_by.parse().map_err(|e| {
                    bad(format!(
                        "recheck: apply_by {:?} is not a date (YYYY-MM-DD): {e}",
                        r.apply_by
                    ))
                })?;
                for (name, days) in [
                    ("grant_days", r.grant_days),
                    ("familiarise_days", r.familiarise_days),
                ] {
                    if days == 0 || days > WORKING_DAYS_MAX {
                        return Err(bad(format!(
                            "recheck: {name} {days} (1..={WORKING_DAYS_MAX})"
                        )));
                    }
                }
                Some(RecheckTerms {
                    apply_by,
                    grant_days: r.grant_days,
                    familiarise_days: r.familiarise_days,
                })
            }
        };
        let mut chains = BTreeMap::new();
        for c in raw.chain {
            let name = match c.route {
                Some(r) => format!("chain {} ({r})", c.exam),
                None => format!("chain {}", c.exam),
            };
            if !one_line(&c.source) {
                return Err(bad(format!(
                    "{name}: source is one line of 1..={TITLE_CHARS_MAX} characters"
                )));
            }
            if c.step.is_empty() {
                return Err(bad(format!("{name}: no step")));
            }
            let mut steps: Vec<Step> = Vec::new();
            for s in c.step {
                let step = s.step;
                if steps.iter().any(|x| x.step == step) {
                    return Err(bad(format!("{name}: step {step} twice")));
                }
                if !one_line(&s.title) {
                    return Err(bad(format!(
                        "{name}: step {step}: the title is one line of 1..={TITLE_CHARS_MAX} characters"
                    )));
                }
                if s.days == 0 || s.days > WORKING_DAYS_MAX {
                    return Err(bad(format!(
                        "{name}: step {step}: days {} (1..={WORKING_DAYS_MAX})",
                        s.days
                    )));
                }
                let after = match s.after.as_str() {
                    "exam" => Anchor::Exam,
                    "processed" => Anchor::Processed,
                    other => {
                        let earlier = other
                            .parse::<ChainStep>()
                            .ok()
                            .filter(|a| steps.iter().any(|x| x.step == *a));
                        Anchor::Step(earlier.ok_or_else(|| {
                            bad(format!(
                                "{name}: step {step}: after {other:?} is not \"exam\", \"processed\" or an earlier step of the chain"
                            ))
                        })?)
                    }
                };
                steps.push(Step {
                    step,
                    title: s.title.trim().to_owned(),
                    after,
                    days: s.days,
                    count: s.count,
                });
            }
            let chain = Chain {
                kind: c.exam,
                route: c.route,
                source: c.source.trim().to_owned(),
                steps,
            };
            if chains.insert((c.exam, c.route), chain).is_some() {
                return Err(bad(format!("{name} twice")));
            }
        }
        // A kind has one chain for every school, or one per route.
        let kinds: BTreeSet<ExamKind> = chains.keys().map(|(k, _)| *k).collect();
        for kind in kinds {
            let has = |r: Option<Route>| chains.contains_key(&(kind, r));
            let per_route = has(Some(Route::Municipal)) || has(Some(Route::Direct));
            if has(None) && per_route {
                return Err(bad(format!(
                    "chain {kind}: either one chain without a route or one per route, not both"
                )));
            }
            if per_route && !(has(Some(Route::Municipal)) && has(Some(Route::Direct))) {
                return Err(bad(format!(
                    "chain {kind}: a chain per route needs both \"municipal\" and \"direct\""
                )));
            }
        }
        Ok(YearData {
            id: raw.id,
            settled_by,
            recheck,
            chains,
        })
    }

    /// The chain a school on `route` follows for an exam of `kind`, if the year has one.
    #[must_use]
    pub fn chain(&self, kind: ExamKind, route: Route) -> Option<&Chain> {
        self.chains
            .get(&(kind, None))
            .or_else(|| self.chains.get(&(kind, Some(route))))
    }

    /// The last day the sheets of `exam` may be signed: the last day of its chain's scoring step
    /// when that counts from the exam day (for итоговое собеседование the exam day + 5 calendar
    /// days, seed 002 §67: participants with РАС are scored from the recording after the day,
    /// §60), else the exam day.
    #[must_use]
    pub fn last_scoring_day(&self, exam: ExamId, calendar: &ProductionCalendar) -> Date {
        self.chain(exam.kind(), Route::Municipal)
            .and_then(|chain| chain.steps.iter().find(|s| s.step == ChainStep::Scoring))
            .filter(|step| step.after == Anchor::Exam)
            .map_or(exam.date(), |step| step.due(exam.date(), calendar))
    }

    /// Every chain.
    pub fn chains(&self) -> impl Iterator<Item = &Chain> {
        self.chains.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn sheets_of_an_interview_may_be_signed_until_its_scoring_steps_last_day() {
        let y = YearData::year_2024().unwrap();
        let calendar = ProductionCalendar::shipped().unwrap();
        let is: ExamId = "is-2024-02-14".parse().unwrap();
        assert_eq!(y.last_scoring_day(is, &calendar), d("2024-02-19"));
        // The essay's chain has no scoring step counted from the exam day.
        let essay: ExamId = "essay-2024-12-04".parse().unwrap();
        assert_eq!(y.last_scoring_day(essay, &calendar), d("2024-12-04"));
    }

    #[test]
    fn the_shipped_year_gives_each_exam_kind_its_own_chain() {
        let y = YearData::year_2024().unwrap();
        assert_eq!(y.settled_by, BTreeSet::from([Settler::Chair]));
        let is = y.chain(ExamKind::Is, Route::Municipal).unwrap();
        let steps: Vec<_> = is.steps.iter().map(|s| s.step).collect();
        // ИС: no 1-working-day transfers (those are the сочинение's, seed 003).
        assert_eq!(steps, [ChainStep::Scoring, ChainStep::Familiarisation]);
        assert!(
            is.steps
                .iter()
                .all(|s| s.after == Anchor::Exam && s.days == 5 && s.count == DayCount::Calendar)
        );
        let essay = y.chain(ExamKind::Essay, Route::Municipal).unwrap();
        let steps: Vec<_> = essay.steps.iter().map(|s| (s.step, s.after)).collect();
        assert_eq!(
            steps,
            [
                (ChainStep::ResultsToMunicipality, Anchor::Processed),
                (
                    ChainStep::ResultsToSchool,
                    Anchor::Step(ChainStep::ResultsToMunicipality)
                ),
                (
                    ChainStep::Familiarisation,
                    Anchor::Step(ChainStep::ResultsToMunicipality)
                ),
            ]
        );
        let direct = y.chain(ExamKind::Essay, Route::Direct).unwrap();
        assert_eq!(direct.steps[0].step, ChainStep::ResultsToSchool);
        assert_eq!(direct.steps[0].after, Anchor::Processed);
        assert!(y.chain(ExamKind::Oge, Route::Municipal).is_none());
    }

    #[test]
    fn a_working_day_step_skips_a_holiday_weekend() {
        let y = YearData::year_2024().unwrap();
        let calendar = ProductionCalendar::shipped().unwrap();
        let essay = y.chain(ExamKind::Essay, Route::Municipal).unwrap();
        // Processing finished on Thursday 22 February 2024: Friday 23 is a holiday, so the МОУО
        // has the results by Monday 26, the schools by Tuesday 27.
        let to_municipality = essay.steps[0].due(d("2024-02-22"), &calendar);
        assert_eq!(to_municipality, d("2024-02-26"));
        assert_eq!(
            essay.steps[1].due(to_municipality, &calendar),
            d("2024-02-27")
        );
        // ИС counts calendar days: 14 February + 5 = 19 February, a Monday, holiday or not.
        let is = y.chain(ExamKind::Is, Route::Municipal).unwrap();
        assert_eq!(is.steps[0].due(d("2024-02-14"), &calendar), d("2024-02-19"));
    }

    #[test]
    fn a_bad_year_file_is_refused_naming_the_problem() {
        let base = YearData::year_2024().map(|_| YEAR_2024_TOML).unwrap();
        let cases = [
            (
                base.replace("settled_by = [\"chair\"]", "settled_by = []"),
                "settled_by names",
            ),
            (
                base.replace(
                    "settled_by = [\"chair\"]",
                    "settled_by = [\"chair\", \"chair\"]",
                ),
                "settled_by names",
            ),
            (
                base.replace("settled_by = [\"chair\"]", "settled_by = [\"operator\"]"),
                "operator",
            ),
            (
                base.replacen("after = \"processed\"", "after = \"familiarisation\"", 1),
                "after \"familiarisation\" is not",
            ),
            (base.replacen("days = 5", "days = 0", 1), "days 0"),
            (
                base.replacen("count = \"calendar\"", "count = \"weekly\"", 1),
                "weekly",
            ),
            (
                base.replacen("route = \"direct\"", "route = \"municipal\"", 1),
                "chain essay (municipal) twice",
            ),
            (
                base.replacen("step = \"familiarisation\"", "step = \"scoring\"", 1),
                "step scoring twice",
            ),
        ];
        for (text, expected) in cases {
            assert_ne!(text, base, "the case for {expected} changed nothing");
            let err = YearData::parse(&text, "year.toml").unwrap_err().to_string();
            assert!(err.starts_with("year.toml"), "{err}");
            assert!(err.contains(expected), "{err} should name {expected}");
        }
    }
}
