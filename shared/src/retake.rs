//! Who may sit итоговое собеседование again, and which attempt a sitting is (seed 002 §15, §16,
//! §45, §48, §49, §70).
//!
//! On the main date every participant of the regional register sits. On an additional date
//! (second working Wednesday of March, third Monday of April) only those whose last date ended in
//! one of the four ways of §70 are admitted: «незачёт», removed for a violation, absent for a
//! valid reason confirmed by a document, or finished early for a valid reason; and a participant
//! retakes at most [`RETAKES_MAX`] times a year (§15). On any date a participant whose attempt
//! ended with an act for a bad recording may sit again the same day with another variant (§45).
//!
//! Attempt numbers follow the participant's history, not the date: the first attempt on a date is
//! one more than the last attempt on any earlier date (an absence uses none), and a same-day
//! retake is one more than the attempt the act ended.
//!
//! This module is the rule alone, over [`DayRecord`]s; [`history`] reads them from a school's
//! documents of the year's earlier dates.

use std::collections::BTreeMap;

use crate::act::{ActKind, EarlyReason};
use crate::calendar::Date;
use crate::codes::ParticipantId;
use crate::record::Attempt;
use crate::rules::Outcome;

/// How many times a participant may retake in a school year (§15: «не более двух раз»).
pub const RETAKES_MAX: usize = 2;

/// Why a participant did not sit, as the organiser records it after the day (a «Н» gains a
/// reason later).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "absence", rename_all = "kebab-case")]
pub enum AbsenceReason {
    /// A valid reason confirmed by a document (illness or another circumstance, §70); the
    /// document named, e.g. «справка ГБУЗ № 12 от 14.02.2024».
    Valid { document: String },
    /// No valid reason.
    NotValid,
}

/// The longest name of a document confirming an absence, in characters.
pub const ABSENCE_DOCUMENT_CHARS_MAX: usize = 200;

impl AbsenceReason {
    /// A valid reason with `document`, which must name something and not be too long.
    pub fn valid(document: &str) -> Result<Self, crate::DomainError> {
        let document = document.trim();
        if document.is_empty() {
            return Err(crate::DomainError::invalid(
                crate::Field::Attendance,
                document,
                "a valid reason names the document that confirms it",
            ));
        }
        if document.chars().count() > ABSENCE_DOCUMENT_CHARS_MAX {
            return Err(crate::DomainError::invalid(
                crate::Field::Attendance,
                document,
                "the document's name is longer than 200 characters",
            ));
        }
        Ok(AbsenceReason::Valid {
            document: document.to_owned(),
        })
    }
}

/// What the documents of one earlier exam date hold about one participant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayRecord {
    /// The participant was in that date's regional register.
    pub registered: bool,
    /// Marked «Н», with the reason when the organiser gave one.
    pub absent: Option<Option<AbsenceReason>>,
    /// The attempts that date's acts ended, and how (only acts on that date's chain of
    /// attempts: its first, and each one after an act for a bad recording).
    pub acts: BTreeMap<Attempt, ActKind>,
    /// The attempts that date's protocol holds a score sheet for: sat, whatever the sheet's
    /// fate (a same-day retake waiting for its result is an attempt made).
    pub sat: std::collections::BTreeSet<Attempt>,
    /// The published result: its attempt and outcome.
    pub result: Option<(Attempt, Outcome)>,
}

impl DayRecord {
    /// The last attempt made that day, from the acts, the sheets and the result.
    fn last_attempt(&self) -> Option<Attempt> {
        let by_act = self.acts.keys().next_back().copied();
        let by_sheet = self.sat.iter().next_back().copied();
        let by_result = self.result.map(|(a, _)| a);
        by_act.max(by_sheet).max(by_result)
    }

    /// «Н» with no valid reason and no attempt: the date decides nothing by itself (§15: a
    /// no-show is not a retake, and leaves an earlier «незачёт» standing).
    fn no_show(&self) -> bool {
        self.last_attempt().is_none()
            && matches!(self.absent, Some(None | Some(AbsenceReason::NotValid)))
    }
}

/// [`Admission::kind_id`] of an admission after a «незачёт».
pub const ADMITTED_AFTER_FAIL: &str = "failed";

/// Why a participant is admitted to an additional date (§70).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "admitted", rename_all = "kebab-case")]
pub enum Admission {
    /// «незачёт» on `date`.
    Failed { date: Date },
    /// Removed on `date` for a violation (act of removal).
    Removed { date: Date },
    /// Finished early on `date` for a valid reason (act of early completion).
    FinishedEarly { date: Date, reason: EarlyReason },
    /// Absent on `date` for a valid reason, confirmed by `document`.
    AbsentWithReason { date: Date, document: String },
}

impl Admission {
    /// The kind of admission as the register keeps it (`reg/ID/admitted_kind`).
    #[must_use]
    pub fn kind_id(&self) -> &'static str {
        match self {
            Admission::Failed { .. } => ADMITTED_AFTER_FAIL,
            Admission::Removed { .. } => "removed",
            Admission::FinishedEarly { .. } => "finished-early",
            Admission::AbsentWithReason { .. } => "absent-with-reason",
        }
    }

    /// How the list of retakes names it.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Admission::Failed { date } => format!("«незачёт» {date}"),
            Admission::Removed { date } => format!("удалён {date}"),
            Admission::FinishedEarly { date, reason } => {
                format!("досрочное завершение {date}: {}", reason.name())
            }
            Admission::AbsentWithReason { date, document } => {
                format!("не явился {date} по уважительной причине: {document}")
            }
        }
    }
}

/// Why a participant is not admitted to an additional date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    #[error("participant {0} was in no earlier date's register this year")]
    NeverRegistered(ParticipantId),
    #[error("participant {participant} passed («зачёт») on {date}")]
    Passed {
        participant: ParticipantId,
        date: Date,
    },
    #[error(
        "participant {participant} was absent on {date} without a valid reason confirmed by a document"
    )]
    AbsentWithoutReason {
        participant: ParticipantId,
        date: Date,
    },
    #[error("participant {participant} sat on {date} and has no published result for it yet")]
    NoResult {
        participant: ParticipantId,
        date: Date,
    },
    #[error(
        "participant {participant} has retaken {RETAKES_MAX} times this year, as many as §15 allows"
    )]
    RetakesUsed { participant: ParticipantId },
    #[error(
        "participant {participant} had no attempt left: the attempts of {date} used the last number"
    )]
    NoAttemptLeft {
        participant: ParticipantId,
        date: Date,
    },
}

/// A participant admitted to a date: why, and the number of their first attempt there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// `None` on the main date: the register alone admits.
    pub admission: Option<Admission>,
    pub first_attempt: Attempt,
}

/// Whether `participant` is admitted to the additional date after `earlier` (the year's earlier
/// dates, as their documents hold them, in any order; dates they were not registered on may be
/// left out), and with which first attempt.
pub fn admission(
    participant: ParticipantId,
    earlier: &BTreeMap<Date, DayRecord>,
    additional: &[Date],
) -> Result<Admitted, NotAdmitted> {
    let registered: Vec<(&Date, &DayRecord)> =
        earlier.iter().filter(|(_, day)| day.registered).collect();
    let Some(&(&latest, _)) = registered.last() else {
        return Err(NotAdmitted::NeverRegistered(participant));
    };
    // A retake is an additional date the participant sat on.
    let retaken = registered
        .iter()
        .filter(|(d, day)| additional.contains(d) && day.last_attempt().is_some())
        .count();
    if retaken >= RETAKES_MAX {
        return Err(NotAdmitted::RetakesUsed { participant });
    }
    // The latest date that decided something: a no-show leaves the date before it standing.
    let Some(&(&date, last)) = registered.iter().rev().find(|(_, day)| !day.no_show()) else {
        return Err(NotAdmitted::AbsentWithoutReason {
            participant,
            date: latest,
        });
    };
    let admission = match last.last_attempt() {
        // An act decides its attempt, whatever was published for it (the act ends it: §48).
        Some(attempt) => match (last.acts.get(&attempt), last.result) {
            (Some(ActKind::Removal), _) => Admission::Removed { date },
            (Some(ActKind::Early(reason)), _) => Admission::FinishedEarly {
                date,
                reason: *reason,
            },
            (None, Some((counted, Outcome::Pass))) if counted == attempt => {
                return Err(NotAdmitted::Passed { participant, date });
            }
            (None, Some((counted, Outcome::Fail))) if counted == attempt => {
                Admission::Failed { date }
            }
            (None, _) => return Err(NotAdmitted::NoResult { participant, date }),
        },
        None => match &last.absent {
            Some(Some(AbsenceReason::Valid { document })) => Admission::AbsentWithReason {
                date,
                document: document.clone(),
            },
            Some(_) => return Err(NotAdmitted::AbsentWithoutReason { participant, date }),
            None => return Err(NotAdmitted::NoResult { participant, date }),
        },
    };
    let used = earlier
        .values()
        .filter_map(DayRecord::last_attempt)
        .map(Attempt::get)
        .max()
        .unwrap_or(0);
    let first_attempt = used
        .checked_add(1)
        .and_then(|n| Attempt::new(n).ok())
        .ok_or(NotAdmitted::NoAttemptLeft { participant, date })?;
    Ok(Admitted {
        admission: Some(admission),
        first_attempt,
    })
}

/// The attempt open on a date, after the attempts from `first` that acts ended (`ended`, that
/// date's acts by attempt): each act for a bad recording opens the next attempt the same day
/// (§45); any other act closes the day. `None` when the day is closed, or the next number is
/// past [`crate::record::ATTEMPT_MAX`].
#[must_use]
pub fn open_attempt(first: Attempt, ended: &BTreeMap<Attempt, ActKind>) -> Option<Attempt> {
    let mut attempt = first;
    while let Some(kind) = ended.get(&attempt) {
        if *kind != ActKind::Early(EarlyReason::BadRecording) {
            return None;
        }
        attempt = Attempt::new(attempt.get().checked_add(1)?).ok()?;
    }
    Some(attempt)
}

/// Whether a sheet for `attempt` belongs on this date: from `first` to the attempt same-day
/// retakes opened ([`open_attempt`]; an attempt an act ended is refused by the act itself).
#[must_use]
pub fn attempt_belongs(
    attempt: Attempt,
    first: Attempt,
    ended: &BTreeMap<Attempt, ActKind>,
) -> bool {
    if attempt < first {
        return false;
    }
    // The last attempt the acts reach: an ended attempt is inside the day, the one after a
    // bad recording too.
    let mut last = first;
    while let Some(kind) = ended.get(&last) {
        if *kind != ActKind::Early(EarlyReason::BadRecording) {
            break;
        }
        match Attempt::new(last.get().saturating_add(1)) {
            Ok(next) => last = next,
            Err(_) => break,
        }
    }
    attempt <= last
}

/// The attempt of a sheet on `exam`'s date as it was before attempts followed history: 1 on the
/// main date, 2 and 3 on the additional ИС dates. A register that names no first attempt (the
/// main date, or one made before) is read this way, so sheets made then keep their numbers.
#[must_use]
pub fn attempt_by_date(exam: crate::exam::ExamId) -> Attempt {
    let date = exam.date();
    let year = date.year() + i32::from(date.month() >= 9);
    // The additional dates fall in March and April: a date of any other month opens with the
    // first attempt, without working out the year's calendar (this runs for every sheet the
    // РЦОИ receipts).
    let n = match date.month() {
        3 | 4 => match crate::calendar::is_dates(year) {
            Some([_, march, _]) if date == march => 2,
            Some([_, _, april]) if date == april => 3,
            _ => 1,
        },
        _ => 1,
    };
    Attempt::new(n).unwrap_or(Attempt::FIRST)
}

/// The first attempt of `participant` on `exam`'s date: the register's, else [`attempt_by_date`].
#[must_use]
pub fn first_attempt(
    register: Option<&impl automerge::ReadDoc>,
    participant: ParticipantId,
    exam: crate::exam::ExamId,
) -> Attempt {
    register
        .and_then(|r| crate::content::registered_attempt(r, participant.as_str()))
        .unwrap_or_else(|| attempt_by_date(exam))
}

/// The acts of one participant at one exam and school, from a protocol's ended attempts
/// ([`crate::act::ended_attempts`]), by attempt.
#[must_use]
pub fn acts_of(
    ended: &BTreeMap<crate::record::SheetSubject, crate::act::Act>,
    (exam, school): (crate::exam::ExamId, crate::codes::SchoolCode),
    participant: ParticipantId,
) -> BTreeMap<Attempt, ActKind> {
    ended
        .iter()
        .filter(|(s, _)| s.participant == participant && s.exam == exam && s.school == school)
        .map(|(s, act)| (s.attempt, act.kind))
        .collect()
}

/// The acts of `acts` on the date's chain of attempts from `first`: the first attempt, and
/// each one an act for a bad recording opened. An act for any other attempt ends nothing a
/// sheet could be for, and decides nothing.
#[must_use]
pub fn on_chain(first: Attempt, acts: &BTreeMap<Attempt, ActKind>) -> BTreeMap<Attempt, ActKind> {
    let mut out = BTreeMap::new();
    let mut attempt = first;
    while let Some(kind) = acts.get(&attempt) {
        out.insert(attempt, *kind);
        if *kind != ActKind::Early(EarlyReason::BadRecording) {
            break;
        }
        match attempt.get().checked_add(1).map(Attempt::new) {
            Some(Ok(next)) => attempt = next,
            _ => break,
        }
    }
    out
}

/// One earlier date's documents of a school, to read its [`DayRecord`]s from.
#[derive(Debug)]
pub struct DayDocs<'a, R> {
    pub exam: crate::exam::ExamId,
    pub school: crate::codes::SchoolCode,
    /// The school's РЦОИ document of that date (the register: only it says who was registered).
    pub register: Option<&'a R>,
    /// The school's roster of that date (attendance, absence reasons).
    pub roster: Option<&'a R>,
    /// The school's protocol of that date (the attempts sheets were signed for).
    pub protocol: Option<&'a R>,
    /// The attempts that date's acts ended (verified).
    pub ended: &'a BTreeMap<crate::record::SheetSubject, crate::act::Act>,
    /// That date's results as the РЦОИ published them (verified, for this exam and school).
    pub published: Option<&'a crate::publish::Published>,
}

impl<R: automerge::ReadDoc> DayDocs<'_, R> {
    /// Every participant the documents mention, by id.
    #[must_use]
    pub fn records(&self) -> BTreeMap<ParticipantId, DayRecord> {
        let mut out: BTreeMap<ParticipantId, DayRecord> = BTreeMap::new();
        let id = |text: &str| ParticipantId::new(text).ok();
        if let Some(register) = self.register {
            for text in crate::content::registered(register).keys() {
                if let Some(p) = id(text) {
                    out.entry(p).or_default().registered = true;
                }
            }
        }
        if let Some(roster) = self.roster {
            for (text, row) in &crate::content::participants(roster) {
                let Some(p) = id(text) else { continue };
                if row.get("attendance") == "absent" {
                    out.entry(p).or_default().absent = Some(crate::content::absence(row));
                }
            }
        }
        for sheet in self
            .protocol
            .map(crate::content::sheets)
            .unwrap_or_default()
        {
            let Ok(sheet) = sheet.decode_unverified() else {
                continue;
            };
            let s = sheet.subject;
            if s.exam == self.exam && s.school == self.school {
                out.entry(s.participant).or_default().sat.insert(s.attempt);
            }
        }
        let with_acts: std::collections::BTreeSet<ParticipantId> =
            self.ended.keys().map(|s| s.participant).collect();
        for p in with_acts {
            let acts = acts_of(self.ended, (self.exam, self.school), p);
            let first = first_attempt(self.register, p, self.exam);
            let chain = on_chain(first, &acts);
            if !chain.is_empty() {
                out.entry(p).or_default().acts = chain;
            }
        }
        for row in self.published.map_or(&[][..], |p| &p.rows[..]) {
            if let Ok(attempt) = Attempt::new(row.attempt) {
                out.entry(row.participant).or_default().result = Some((attempt, row.outcome));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;

    fn p() -> ParticipantId {
        ParticipantId::new("p1").unwrap()
    }
    fn a(n: u8) -> Attempt {
        Attempt::new(n).unwrap()
    }
    fn d(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn the_attempt_by_date_is_2_and_3_only_on_the_additional_dates() {
        // The published calendars: 2024's additional dates were 13 March and 15 April; in 2023
        // 8 March was a Wednesday, so March's moved to the 15th.
        for (exam, attempt) in [
            ("is-2024-02-14", 1),
            ("is-2024-03-13", 2),
            ("is-2024-04-15", 3),
            ("is-2024-03-14", 1),
            ("is-2024-04-16", 1),
            ("is-2024-05-15", 1),
            ("is-2023-03-15", 2),
            ("is-2023-03-08", 1),
        ] {
            assert_eq!(attempt_by_date(exam.parse().unwrap()), a(attempt), "{exam}");
        }
    }
    const FEB: &str = "2024-02-14";
    const MARCH: &str = "2024-03-13";
    const APRIL: &str = "2024-04-15";
    fn additional() -> Vec<Date> {
        vec![d(MARCH), d(APRIL)]
    }
    fn day() -> DayRecord {
        DayRecord {
            registered: true,
            ..DayRecord::default()
        }
    }
    fn sat(attempt: u8, outcome: Outcome) -> DayRecord {
        DayRecord {
            result: Some((a(attempt), outcome)),
            ..day()
        }
    }
    fn ended(attempt: u8, kind: ActKind) -> DayRecord {
        DayRecord {
            acts: [(a(attempt), kind)].into(),
            ..day()
        }
    }
    fn admit(days: &[(&str, DayRecord)]) -> Result<Admitted, NotAdmitted> {
        let earlier = days.iter().map(|(t, r)| (d(t), r.clone())).collect();
        admission(p(), &earlier, &additional())
    }

    #[test]
    fn the_four_reasons_of_section_70_admit_and_nothing_else_does() {
        let failed = admit(&[(FEB, sat(1, Outcome::Fail))]).unwrap();
        assert_eq!(failed.admission, Some(Admission::Failed { date: d(FEB) }));
        assert_eq!(failed.first_attempt, a(2));

        let removed = admit(&[(FEB, ended(1, ActKind::Removal))]).unwrap();
        assert_eq!(removed.admission, Some(Admission::Removed { date: d(FEB) }));
        assert_eq!(removed.first_attempt, a(2));

        let ill = admit(&[(FEB, ended(1, ActKind::Early(EarlyReason::Health)))]).unwrap();
        assert_eq!(
            ill.admission,
            Some(Admission::FinishedEarly {
                date: d(FEB),
                reason: EarlyReason::Health
            })
        );

        let excused = DayRecord {
            absent: Some(Some(AbsenceReason::valid("справка № 7").unwrap())),
            ..day()
        };
        let admitted = admit(&[(FEB, excused)]).unwrap();
        assert_eq!(
            admitted.admission,
            Some(Admission::AbsentWithReason {
                date: d(FEB),
                document: "справка № 7".into()
            })
        );
        // An absence uses no attempt: the first sitting is attempt 1 whatever the date.
        assert_eq!(admitted.first_attempt, a(1));

        assert_eq!(
            admit(&[(FEB, sat(1, Outcome::Pass))]),
            Err(NotAdmitted::Passed {
                participant: p(),
                date: d(FEB)
            })
        );
        for reason in [None, Some(AbsenceReason::NotValid)] {
            let absent = DayRecord {
                absent: Some(reason),
                ..day()
            };
            assert_eq!(
                admit(&[(FEB, absent)]),
                Err(NotAdmitted::AbsentWithoutReason {
                    participant: p(),
                    date: d(FEB)
                })
            );
        }
        assert_eq!(admit(&[]), Err(NotAdmitted::NeverRegistered(p())));
        assert_eq!(
            admit(&[(FEB, DayRecord::default())]),
            Err(NotAdmitted::NeverRegistered(p()))
        );
        // Sat, but nothing published (and no act): not yet known.
        let unscored = DayRecord {
            absent: None,
            ..day()
        };
        assert_eq!(
            admit(&[(FEB, unscored)]),
            Err(NotAdmitted::NoResult {
                participant: p(),
                date: d(FEB)
            })
        );
    }

    #[test]
    fn the_last_registered_date_decides_and_a_same_day_retake_counts_its_own_result() {
        // Failed in February, passed in March: not admitted in April.
        assert_eq!(
            admit(&[(FEB, sat(1, Outcome::Fail)), (MARCH, sat(2, Outcome::Pass))]),
            Err(NotAdmitted::Passed {
                participant: p(),
                date: d(MARCH)
            })
        );
        // Failed in February, did not apply in March: admitted in April, attempt 2.
        let april = admit(&[(FEB, sat(1, Outcome::Fail))]).unwrap();
        assert_eq!(april.first_attempt, a(2));
        // A bad recording, then a same-day retake that passed: the retake's result decides.
        let mut feb = sat(2, Outcome::Pass);
        feb.acts
            .insert(a(1), ActKind::Early(EarlyReason::BadRecording));
        assert!(matches!(
            admit(&[(FEB, feb.clone())]),
            Err(NotAdmitted::Passed { .. })
        ));
        // … and one that failed: admitted, after two attempts.
        feb.result = Some((a(2), Outcome::Fail));
        let march = admit(&[(FEB, feb)]).unwrap();
        assert_eq!(march.admission, Some(Admission::Failed { date: d(FEB) }));
        assert_eq!(march.first_attempt, a(3));
        // A bad recording and no retake that day: the act decides.
        let march = admit(&[(FEB, ended(1, ActKind::Early(EarlyReason::BadRecording)))]).unwrap();
        assert_eq!(
            march.admission,
            Some(Admission::FinishedEarly {
                date: d(FEB),
                reason: EarlyReason::BadRecording
            })
        );
        assert_eq!(march.first_attempt, a(2));
    }

    #[test]
    fn a_register_without_attempts_reads_the_dates_number() {
        let exam = |t: &str| -> crate::exam::ExamId { t.parse().unwrap() };
        let none: Option<&automerge::Automerge> = None;
        assert_eq!(first_attempt(none, p(), exam("is-2024-02-14")), a(1));
        assert_eq!(first_attempt(none, p(), exam("is-2024-03-13")), a(2));
        assert_eq!(first_attempt(none, p(), exam("is-2024-04-15")), a(3));
        let mut doc = automerge::AutoCommit::new();
        crate::content::put_registered_admission(&mut doc, p(), a(1), "не явился").unwrap();
        assert_eq!(first_attempt(Some(&doc), p(), exam("is-2024-04-15")), a(1));
    }

    #[test]
    fn a_retake_waiting_for_its_result_an_act_over_a_result_and_a_no_show_decide_rightly() {
        let bad = ActKind::Early(EarlyReason::BadRecording);
        // A bad recording, a same-day retake signed but not published yet: not known, and the
        // retake's number is used.
        let mut feb = ended(1, bad);
        feb.sat.insert(a(2));
        assert_eq!(
            admit(&[(FEB, feb.clone())]),
            Err(NotAdmitted::NoResult {
                participant: p(),
                date: d(FEB)
            })
        );
        feb.result = Some((a(2), Outcome::Fail));
        assert_eq!(admit(&[(FEB, feb)]).unwrap().first_attempt, a(3));
        // An act for health on an attempt with a published «зачёт»: the act decides (§48).
        let mut ill = ended(1, ActKind::Early(EarlyReason::Health));
        ill.result = Some((a(1), Outcome::Pass));
        assert_eq!(
            admit(&[(FEB, ill)]).unwrap().admission,
            Some(Admission::FinishedEarly {
                date: d(FEB),
                reason: EarlyReason::Health
            })
        );
        // «незачёт» in February, a no-show in March: the February result still admits to April,
        // and March used no attempt and no retake.
        for reason in [None, Some(AbsenceReason::NotValid)] {
            let no_show = DayRecord {
                absent: Some(reason),
                ..day()
            };
            let april = admit(&[(FEB, sat(1, Outcome::Fail)), (MARCH, no_show)]).unwrap();
            assert_eq!(april.admission, Some(Admission::Failed { date: d(FEB) }));
            assert_eq!(april.first_attempt, a(2));
        }
    }

    #[test]
    fn only_acts_on_the_dates_chain_of_attempts_count() {
        let bad = ActKind::Early(EarlyReason::BadRecording);
        let acts: BTreeMap<Attempt, ActKind> = [
            (a(1), bad),
            (a(2), ActKind::Removal),
            (a(5), ActKind::Removal),
        ]
        .into();
        assert_eq!(
            on_chain(a(1), &acts),
            [(a(1), bad), (a(2), ActKind::Removal)].into()
        );
        // A removal for attempt 2 with no bad recording before it ends nothing.
        let stray: BTreeMap<Attempt, ActKind> = [(a(2), ActKind::Removal)].into();
        assert!(on_chain(a(1), &stray).is_empty());
    }

    /// The calendar has two additional dates, so a participant admitted to the later one has
    /// sat on one at most; the bound is checked here on the rule alone, for a year whose data
    /// would give more dates.
    #[test]
    fn two_retakes_a_year_at_most() {
        // Failed on both additional dates already: a third retake is refused whatever happened.
        let days = [
            (FEB, sat(1, Outcome::Fail)),
            (MARCH, sat(2, Outcome::Fail)),
            (APRIL, sat(3, Outcome::Fail)),
        ];
        assert_eq!(
            admit(&days),
            Err(NotAdmitted::RetakesUsed { participant: p() })
        );
        // One additional date used: the second is allowed.
        assert!(admit(&days[..2]).is_ok());
        // Registered on both but sat on one (a valid absence in April): one retake made.
        let excused = DayRecord {
            absent: Some(Some(AbsenceReason::valid("справка").unwrap())),
            ..day()
        };
        assert!(admit(&[days[0].clone(), days[1].clone(), (APRIL, excused)]).is_ok());
    }

    #[test]
    fn a_bad_recording_opens_the_next_attempt_the_same_day_and_nothing_else_does() {
        let bad = ActKind::Early(EarlyReason::BadRecording);
        assert_eq!(open_attempt(a(1), &BTreeMap::new()), Some(a(1)));
        assert_eq!(open_attempt(a(1), &[(a(1), bad)].into()), Some(a(2)));
        assert_eq!(
            open_attempt(a(1), &[(a(1), bad), (a(2), bad)].into()),
            Some(a(3))
        );
        assert_eq!(
            open_attempt(a(1), &[(a(1), ActKind::Early(EarlyReason::Health))].into()),
            None
        );
        assert_eq!(open_attempt(a(1), &[(a(1), ActKind::Removal)].into()), None);
        assert_eq!(
            open_attempt(a(2), &[(a(1), ActKind::Removal)].into()),
            Some(a(2)),
            "an act of an earlier date's attempt does not close this one"
        );

        // A sheet belongs from the first attempt to the one the retakes opened.
        let acts = [(a(2), bad)].into();
        assert!(
            !attempt_belongs(a(1), a(2), &acts),
            "an earlier date's attempt"
        );
        assert!(attempt_belongs(a(2), a(2), &acts));
        assert!(attempt_belongs(a(3), a(2), &acts));
        assert!(!attempt_belongs(a(4), a(2), &acts), "not opened by any act");
        assert!(!attempt_belongs(a(3), a(2), &BTreeMap::new()));
    }
}
