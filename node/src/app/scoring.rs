//! Scoring (seed 002 §8, §22): experts' signed score sheets, checked before they are stored, and
//! the conflicts between sheets that nobody has settled yet.

use giasync_shared::codes::PersonId;
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::ingest::SIGNED_AHEAD_MS_MAX;
use giasync_shared::record::{RecordHash, SheetSubject, SignedSheet, SignerDirectory as _};
use giasync_shared::retake;
use giasync_shared::rules::Outcome;
use giasync_shared::settlement::SettledProtocol;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::error::NotOfRoom;
use super::{Actor, Context, Error, school_doc};

/// A sheet stored in the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scored {
    pub hash: RecordHash,
    pub total: u16,
    pub outcome: Outcome,
}

/// One sheet of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHead {
    pub hash: RecordHash,
    pub expert: PersonId,
    pub total: u16,
    /// The room the sheet was signed in: a commission's settlement names it.
    pub room: giasync_shared::codes::RoomCode,
}

/// An attempt with two or more sheets that count and nothing settling them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConflict {
    pub subject: SheetSubject,
    pub heads: Vec<ConflictHead>,
}

/// An exam's open conflicts at this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflicts {
    pub exam: ExamId,
    pub open: Vec<OpenConflict>,
}

/// Checks a signed sheet (signature, the expert's certificate, the total against the rules) and
/// stores it in the school's protocol. A person may hand in only a sheet they signed.
#[allow(clippy::too_many_arguments)]
pub fn score(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    exam: ExamId,
    sheet: Vec<u8>,
    expert: PersonId,
    expert_cert: &[u8],
) -> Result<Scored, Error> {
    let doc = school_doc(engine, DocKind::Protocol, exam)?;
    let sheet = SignedSheet::from_bytes(sheet).map_err(Error::SheetRefused)?;
    let directory = context.one_signer(expert.as_str(), expert_cert);
    let verified = sheet
        .verify(&context.rules, &directory)
        .map_err(Error::SheetRefused)?;
    actor.may_hand_in(verified.sheet.expert)?;
    // The РЦОИ judges the time again when it receives the sheet (`ingest`); refusing here
    // tells the expert now, not after the day.
    let subject = verified.sheet.subject;
    if !matches!(doc, DocId::School { school, exam: e, .. } if school == subject.school && e == subject.exam)
    {
        return Err(Error::SheetForAnotherProtocol { subject, doc });
    }
    // An attempt an act ended is not scored (seed 002 §45, §49).
    let ended = super::acts::ended(engine, context, doc);
    if let Some(act) = ended.get(&subject) {
        return Err(Error::SheetForEndedAttempt {
            subject,
            number: act.number.clone(),
        });
    }
    // The attempt must be this date's: from the participant's first attempt here to the one a
    // same-day retake after a bad recording opened (`retake`).
    let participant = subject.participant;
    let register = doc.sibling(DocKind::Rcoi).and_then(|r| engine.doc(&r));
    let first = super::retakes::first_attempt_here(engine, doc, participant, exam)?;
    if !retake::attempt_belongs(
        subject.attempt,
        first,
        &retake::acts_of(&ended, (exam, subject.school), participant),
    ) {
        return Err(Error::SheetAttemptNotOfTheDate {
            subject,
            first: first.get(),
        });
    }
    // An expert scores only in the rooms the head's commission order names them for, and only
    // the participants the roster places there (seed 002 §22, §37).
    let orders = super::commission::orders(engine, context, doc);
    if orders.any() {
        let expert = verified.sheet.expert;
        let room = verified.sheet.room;
        let placed = super::roster::entry(engine, exam, participant)
            .ok()
            .and_then(|e| e.room);
        // A new sheet is held to the newest edition: an expert taken off a room scores there
        // no more (what they signed before keeps counting everywhere).
        let why = if !orders.names_now((exam, subject.school), expert, room) {
            Some(NotOfRoom::NotNamed)
        } else if placed != Some(room) {
            Some(NotOfRoom::ParticipantElsewhere)
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::ExpertNotOfRoom {
                expert,
                participant,
                room,
                why,
            });
        }
    }
    // A school may write its roster, so the category a sheet scores by must be the register's
    // (the РЦОИ refuses any other on receipt), and a participant the register held here does not
    // list cannot be scored. A school that holds no register yet takes the sheet and the РЦОИ
    // judges it.
    if let Some(register) = register.filter(|r| content::has_register(*r)) {
        match content::registered_category(register, participant.as_str()) {
            None => {
                return Err(Error::NotRegistered {
                    participant,
                    school: subject.school,
                });
            }
            Some(of_record) if of_record != verified.sheet.category => {
                return Err(Error::SheetCategoryNotOfRecord {
                    participant,
                    sheet: verified.sheet.category,
                    of_record,
                });
            }
            Some(_) => {}
        }
    }
    let signed_at = verified.sheet.signed_at;
    let (first, last) = context.signing_time().days(exam);
    let signed_on = signed_at.date_at(context.clock);
    if signed_on < first || signed_on > last {
        return Err(Error::SheetOutsideExamDay {
            signed_at,
            exam,
            clock: context.clock,
            last,
        });
    }
    // The certificate was judged at the sheet's own `signed_at`, a time its signer chose: a
    // revoked expert's key must not hand in a sheet dated before the revocation.
    if let Some(revoked_at) = directory
        .revoked_at(verified.sheet.expert)
        .filter(|at| at.unix_ms() <= now_ms)
    {
        return Err(Error::SheetSignerRevoked {
            expert: verified.sheet.expert,
            revoked_at,
        });
    }
    if signed_at.unix_ms() > now_ms.saturating_add(SIGNED_AHEAD_MS_MAX) {
        return Err(Error::SheetSignedAhead {
            signed_at,
            now: super::timestamp(now_ms)?,
        });
    }
    engine.change(now_ms, doc, |tx| {
        content::put_sheet(tx, &sheet, expert, expert_cert)
    })?;
    Ok(Scored {
        hash: verified.hash,
        total: verified.sheet.total,
        outcome: verified.sheet.outcome,
    })
}

/// The protocols of `exam` this node holds.
pub(crate) fn protocols_of(engine: &Engine, exam: ExamId) -> Vec<DocId> {
    engine
        .doc_ids()
        .filter(
            |d| matches!(d, DocId::School { kind: DocKind::Protocol, exam: e, .. } if *e == exam),
        )
        .copied()
        .collect()
}

/// The protocols of `exam` this node holds, or would: one per school it holds a roster or a
/// protocol of (a school that wrote nothing yet has a roster and no protocol).
pub(crate) fn schools_of(engine: &Engine, exam: ExamId) -> Vec<DocId> {
    let mut docs: Vec<DocId> = engine
        .doc_ids()
        .filter(|d| {
            matches!(d.kind(), Some(DocKind::Protocol | DocKind::Roster))
                && matches!(d, DocId::School { exam: e, .. } if *e == exam)
        })
        .filter_map(|d| d.sibling(DocKind::Protocol))
        .collect();
    docs.sort();
    docs.dedup();
    docs
}

/// A protocol's verdicts with the settlements of its school's РЦОИ document applied.
pub(crate) fn settled_protocol(
    engine: &Engine,
    context: &Context,
    protocol: DocId,
) -> SettledProtocol {
    let rcoi = protocol
        .sibling(DocKind::Rcoi)
        .and_then(|id| engine.doc(&id));
    let empty = automerge::Automerge::new();
    giasync_shared::settlement::resolve_protocol(
        engine.doc(&protocol).unwrap_or(&empty),
        rcoi,
        context.resolving(),
        |certs| context.verifier.experts(certs),
    )
}

/// The open conflicts of `exam` in every protocol this node holds.
#[must_use]
pub fn conflicts(engine: &Engine, context: &Context, exam: ExamId) -> Conflicts {
    let mut open = Vec::new();
    for protocol in protocols_of(engine, exam) {
        let settled = settled_protocol(engine, context, protocol);
        for (subject, heads) in settled.resolution.conflicts() {
            open.push(OpenConflict {
                subject: *subject,
                heads: heads
                    .iter()
                    .map(|h| ConflictHead {
                        hash: h.hash,
                        expert: h.sheet.expert,
                        total: h.sheet.total,
                        room: h.sheet.room,
                    })
                    .collect(),
            });
        }
    }
    open.sort_by_key(|c| c.subject);
    Conflicts { exam, open }
}
