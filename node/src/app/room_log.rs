//! The room log (ведомость учёта проведения ИС в аудитории, seed 002 §8, §42): when each
//! participant's answer started and ended, the КИМ variant they answered and the interviewer
//! who kept it. An answer belongs to the participant's open attempt, so a same-day retake after
//! a bad recording (§45) is a second answer beside the first, with another variant.

use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonId};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::record::Attempt;
use giasync_shared::retake;
use giasync_shared::room::Variant;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Context, Error, school_doc};

/// A start or end written in the room log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    pub participant: ParticipantId,
    /// The interviewer who kept the log (a signed-in interviewer always names themselves).
    pub interviewer: Option<PersonId>,
    pub at: Timestamp,
    /// `false` for the start of the answer, `true` for its end.
    pub end: bool,
    /// The КИМ variant given at the start (§42); absent in scripts written before variants.
    #[serde(default)]
    pub variant: Option<Variant>,
    /// The attempt the answer belongs to, as the node decided it (ignored when asked).
    #[serde(default)]
    pub attempt: Option<u8>,
}

/// `Ok` when `interviewer` may work with `participant`: once the head signed a commission order,
/// the interviewers of a room are those its newest edition names for it (§22, §37), and the
/// participant's room is the roster's.
pub fn require_interviewer_of_room(
    engine: &Engine,
    context: &Context,
    exam: ExamId,
    interviewer: PersonId,
    participant: ParticipantId,
) -> Result<(), Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let school = protocol.school().ok_or(Error::NoExam)?;
    let orders = super::commission::orders(engine, context, protocol);
    if !orders.any() {
        return Ok(());
    }
    let room = super::roster::entry(engine, exam, participant)?.room;
    if room.is_some_and(|room| orders.interviews_now((exam, school), interviewer, room)) {
        Ok(())
    } else {
        Err(Error::InterviewerNotOfRoom {
            interviewer,
            participant,
            room,
        })
    }
}

/// Writes a start or end of a participant of the roster into the room log, at a time within the
/// exam day on the region's clock, and returns the attempt it was written for.
///
/// A start belongs to the attempt open now (`giasync_shared::retake`); none is open once an act
/// other than for a bad recording ended the day's attempt. An end belongs to the answer under
/// way: the open attempt's once it started, else the latest answer with a start and no end (an
/// act may end an attempt while its answer goes on); with none, it is refused. A log written
/// before attempts were kept is moved to the first attempt's keys by the first write. A variant the participant already answered
/// on this date is refused (§45). Once the head signed a commission order, a named interviewer
/// must be one the newest edition names for the participant's room.
pub fn log(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
    entry: &Logged,
) -> Result<Attempt, Error> {
    super::roster::require_participant(engine, exam, entry.participant)?;
    if entry.at.date_at(context.clock) != exam.date() {
        return Err(Error::OutsideExamDay {
            at: entry.at,
            exam,
            clock: context.clock,
        });
    }
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    if let Some(interviewer) = entry.interviewer {
        require_interviewer_of_room(engine, context, exam, interviewer, entry.participant)?;
    }
    let (first, open) = open_attempt(engine, context, protocol, exam, entry.participant)?;
    let log = engine
        .doc(&protocol)
        .and_then(|doc| content::logs(doc).remove(entry.participant.as_str()))
        .unwrap_or_default();
    let under_way = |a: Attempt| {
        log.answer(a.get(), first.get())
            .is_some_and(|l| l.start_ms.is_some() && l.end_ms.is_none())
    };
    let started = |a: Attempt| {
        log.answer(a.get(), first.get())
            .is_some_and(|l| l.start_ms.is_some())
    };
    let participant = entry.participant;
    let attempt = if entry.end {
        open.filter(|a| started(*a))
            .or_else(|| {
                log.attempts
                    .keys()
                    .rev()
                    .filter_map(|a| Attempt::new(*a).ok())
                    .chain(std::iter::once(first))
                    .find(|a| under_way(*a))
            })
            .ok_or(Error::NoAnswerUnderWay { participant })?
    } else {
        open.ok_or(Error::NoAttemptOpen { participant })?
    };
    if let Some(variant) = entry.variant
        && let Some(variants) = super::materials::variants(engine, context, exam)
        && variant.get() > variants
    {
        return Err(Error::VariantNotInMaterials { variant, variants });
    }
    if let Some(variant) = entry.variant {
        let answered = log.attempts.iter().map(|(a, l)| (*a, l)).chain(
            log.unnumbered
                .as_ref()
                .filter(|_| !log.attempts.contains_key(&first.get()))
                .map(|l| (first.get(), l)),
        );
        for (earlier, l) in answered {
            if earlier != attempt.get() && l.variant == Some(variant) {
                return Err(Error::VariantAnswered {
                    participant: entry.participant,
                    variant,
                    attempt: earlier,
                });
            }
        }
    }
    engine.change(now_ms, protocol, |tx| {
        // A log written before attempts were kept becomes the first attempt's, in this change.
        if let Some(legacy) = &log.unnumbered {
            content::number_legacy_log(
                tx,
                entry.participant,
                first,
                legacy,
                log.attempts.get(&first.get()),
            )?;
        }
        content::log_time(
            tx,
            entry.participant,
            attempt,
            entry.interviewer,
            entry.at,
            entry.end,
        )?;
        match entry.variant {
            Some(variant) => content::put_variant(tx, entry.participant, attempt, variant),
            None => Ok(()),
        }
    })?;
    Ok(attempt)
}

/// The date's first attempt of `participant` at this school and the attempt open now (none once
/// an act other than for a bad recording ended the day's attempt).
pub(crate) fn open_attempt(
    engine: &Engine,
    context: &Context,
    protocol: DocId,
    exam: ExamId,
    participant: ParticipantId,
) -> Result<(Attempt, Option<Attempt>), Error> {
    let school = protocol.school().ok_or(Error::NoExam)?;
    let ended = super::acts::ended(engine, context, protocol);
    let first = super::retakes::first_attempt_here(engine, protocol, participant, exam)?;
    let acts = retake::acts_of(&ended, (exam, school), participant);
    Ok((first, retake::open_attempt(first, &acts)))
}
