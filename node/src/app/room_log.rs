//! The room log (ведомость учёта проведения ИС в аудитории, seed 002 §8): when each
//! participant's answer started and ended, and the interviewer who kept it.

use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonId};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::sync::{DocKind, Engine};
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
}

/// Writes a start or end of a participant of the roster into the room log, at a time within the
/// exam day on the region's clock.
pub fn log(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
    entry: &Logged,
) -> Result<(), Error> {
    super::roster::require_participant(engine, exam, entry.participant)?;
    if entry.at.date_at(context.clock) != exam.date() {
        return Err(Error::OutsideExamDay {
            at: entry.at,
            exam,
            clock: context.clock,
        });
    }
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    engine.change(now_ms, protocol, |tx| {
        content::log_time(
            tx,
            entry.participant,
            entry.interviewer,
            entry.at,
            entry.end,
        )
    })?;
    Ok(())
}
