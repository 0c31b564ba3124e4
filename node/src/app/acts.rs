//! Acts that end an attempt (seed 002 §45, §48, §49): the responsible organiser signs an act of
//! early completion for a valid reason, or of removal for a violation; it is stored in the
//! protocol and the attempt is no longer scored (`scoring::score` refuses a sheet for it, the
//! РЦОИ refuses one on receipt). The roster's attendance is marked with the act's number, as
//! the interviewer's «досрочно» or «удалён» would be.

use giasync_shared::act::{Act, ActKind};
use giasync_shared::codes::{ParticipantId, PersonId};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::retake;
use giasync_shared::room::{ActNumber, Attendance};
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Actor, Context, Error, handed_in, school_doc};

/// An act stored in the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActWritten {
    pub participant: ParticipantId,
    pub attempt: u8,
    pub kind: ActKind,
    pub number: ActNumber,
    pub organiser: PersonId,
}

/// Checks an organiser's signed act (signature, certificate, this school and exam, a
/// participant of the roster) and stores it in the protocol, marking the roster's attendance.
pub fn write(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    exam: ExamId,
    statement: Vec<u8>,
    organiser_cert: &[u8],
) -> Result<ActWritten, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let school = protocol.school().ok_or(Error::NoExam)?;
    let (statement, act) = handed_in(
        context,
        actor,
        statement,
        (StatementKind::Act, "organiser"),
        organiser_cert,
        |s, d| Act::verify(s, d),
        |a: &Act| (a.organiser, a.exam, a.school),
        (exam, school),
    )?;
    // An act is drawn up while the participant leaves or is removed (seed 002 §48–49): dated on
    // the exam's day, and handed in while the exam is being scored, not after (it would turn a
    // scored or published result into «досрочное завершение»).
    if act.at.date_at(context.clock) != exam.date() {
        return Err(Error::ActOutsideExamDay {
            at: act.at,
            exam,
            clock: context.clock,
        });
    }
    let (_, last) = context.signing_time().days(exam);
    if super::timestamp(now_ms)?.date_at(context.clock) > last {
        return Err(Error::ActAfterScoring { exam, last });
    }
    let roster = super::roster::require_participant(engine, exam, act.participant)?;
    if let Some(participant) = number_holder(engine, context, exam, &act.number, act.participant)? {
        return Err(Error::ActNumberTaken {
            number: act.number.clone(),
            participant,
        });
    }
    // An act ends the attempt open now, or corrects the act of the last attempt an act ended
    // while nothing came after it; not an attempt not begun.
    let all = ended(engine, context, protocol);
    if let Some((_, taken)) = all
        .iter()
        .find(|(s, a)| a.number == act.number && **s != act.subject())
    {
        return Err(Error::ActNumberTaken {
            number: act.number.clone(),
            participant: taken.participant,
        });
    }
    let first = super::retakes::first_attempt_here(engine, protocol, act.participant, exam)?;
    let acts = retake::acts_of(&all, (exam, school), act.participant);
    let open = retake::open_attempt(first, &acts);
    let last_ended = retake::on_chain(first, &acts).keys().next_back().copied();
    let correcting = last_ended == Some(act.attempt)
        && !engine.doc(&protocol).is_some_and(|doc| {
            content::sheets(doc).iter().any(|s| {
                s.decode_unverified().is_ok_and(|s| {
                    s.subject.participant == act.participant && s.subject.attempt > act.attempt
                })
            })
        });
    if open != Some(act.attempt) && !correcting {
        return Err(Error::ActForAttemptNotOpen {
            participant: act.participant,
            attempt: act.attempt.get(),
            open: open.map(giasync_shared::record::Attempt::get),
        });
    }
    let attendance = match act.kind {
        ActKind::Early(_) => Attendance::FinishedEarly {
            act: act.number.clone(),
        },
        ActKind::Removal => Attendance::Removed {
            act: act.number.clone(),
        },
    };
    engine.change(now_ms, protocol, |tx| {
        content::put_act(
            tx,
            act.participant,
            act.attempt,
            &statement,
            act.organiser,
            organiser_cert,
        )
    })?;
    engine.change(now_ms, roster, |tx| {
        content::mark(tx, act.participant, &attendance)
    })?;
    Ok(ActWritten {
        participant: act.participant,
        attempt: act.attempt.get(),
        kind: act.kind,
        number: act.number,
        organiser: act.organiser,
    })
}

/// Another participant than `except` whose act on `exam`'s date carries `number` (§48, §49: a
/// number is one act's): by a signed act that verifies here, or by a mark of the roster
/// («досрочно» or «удалён» with the act's number, written before the act is signed).
pub(crate) fn number_holder(
    engine: &Engine,
    context: &Context,
    exam: ExamId,
    number: &ActNumber,
    except: ParticipantId,
) -> Result<Option<ParticipantId>, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    if let Some(act) = ended(engine, context, protocol)
        .into_values()
        .find(|a| a.number == *number && a.participant != except)
    {
        return Ok(Some(act.participant));
    }
    let roster = school_doc(engine, DocKind::Roster, exam)?;
    Ok(engine.doc(&roster).and_then(|roster| {
        content::participants(roster)
            .into_iter()
            .filter(|(id, _)| id != except.as_str())
            .find(|(_, row)| {
                !row.get("act").is_empty()
                    && ActNumber::new(row.get("act")).ok().as_ref() == Some(number)
            })
            .and_then(|(id, _)| ParticipantId::new(&id).ok())
    }))
}

/// The attempts the acts of the school's protocol end, by attempt: those that verify here.
pub(crate) fn ended(
    engine: &Engine,
    context: &Context,
    protocol: giasync_shared::sync::DocId,
) -> std::collections::BTreeMap<giasync_shared::record::SheetSubject, Act> {
    let Some(doc) = engine.doc(&protocol) else {
        return std::collections::BTreeMap::new();
    };
    let directory = context.verifier.experts(&content::organiser_certs(doc));
    giasync_shared::act::ended_attempts(doc, &directory)
}
