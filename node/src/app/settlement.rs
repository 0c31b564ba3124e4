//! Settling a conflict at the school (seed 002 §22, §62–67): a member of the school's commission
//! — the chair, or an expert of the room, as the year's data allows — signs which of two
//! experts' concurrent sheets counts (`giasync_shared::settlement::commission`), and the record
//! goes into the school's protocol, from where it flows up. The hubs only see open conflicts and
//! flag them; the РЦОИ's earlier operator settlements keep counting.

use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::settlement::commission::{CommissionSettlement, Signers};
use giasync_shared::statement::Statement;
use giasync_shared::sync::{DocKind, Engine};

use super::hub::Settled;
use super::{Actor, Context, Error, school_doc};

/// How far from when it is handed in a settlement may be dated, in ms.
pub const SETTLEMENT_AT_MS_MAX: i64 = 10 * 60_000;

/// Checks a commission member's signed settlement (signature, certificate, the capacity the
/// year allows, this school and exam, dated now, an open conflict whose every sheet it names in
/// its room) and stores it in the school's protocol.
pub fn settle(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    exam: ExamId,
    statement: Vec<u8>,
    cert: &[u8],
) -> Result<Settled, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let school = protocol.school().ok_or(Error::NoExam)?;
    let statement = Statement::from_bytes(statement).map_err(Error::SettlementRefused)?;
    let (signer, capacity) =
        CommissionSettlement::claimed(&statement).map_err(Error::SettlementRefused)?;
    let directory = context.one_signer(signer.as_str(), cert);
    let signers = Signers {
        heads: &directory,
        experts: &directory,
    };
    let orders = super::commission::orders(engine, context, protocol);
    let settlement =
        CommissionSettlement::verify(&statement, &signers, &orders, &context.year.settled_by)
            .map_err(Error::SettlementRefused)?;
    actor.may_hand_in(signer)?;
    let subject = settlement.subject;
    if subject.exam != exam || subject.school != school {
        return Err(Error::RecordForOther {
            school: subject.school,
            exam: subject.exam,
        });
    }
    // Signed now: a record dated hours away is refused (a revoked member cannot backdate one).
    if (settlement.at.unix_ms() - now_ms).abs() > SETTLEMENT_AT_MS_MAX {
        return Err(Error::SettlementOutOfTime { at: settlement.at });
    }
    let mut settled = super::scoring::settled_protocol(engine, context, protocol);
    // What the record cannot settle, said plainly before `apply` finds it stale.
    if let Some(heads) = settled
        .resolution
        .subjects
        .get(&subject)
        .and_then(|r| match &r.verdict {
            giasync_shared::resolve::Verdict::Conflict(heads) => Some(heads),
            _ => None,
        })
    {
        if heads.iter().any(|h| h.sheet.expert == signer) {
            return Err(Error::SettlementByParty { signer });
        }
        let rooms: std::collections::BTreeSet<_> = heads.iter().map(|h| h.sheet.room).collect();
        if capacity == giasync_shared::settlement::Settler::RoomExpert
            && rooms.iter().any(|r| *r != settlement.room)
        {
            return Err(Error::SettlementRooms {
                rooms: rooms.into_iter().collect(),
            });
        }
    }
    let stale = giasync_shared::settlement::apply(
        &mut settled.resolution,
        [(statement.hash(), settlement.decision())],
    );
    if !stale.is_empty() {
        return Err(Error::NoSuchConflict(subject));
    }
    engine.change(now_ms, protocol, |tx| {
        content::put_commission_settlement(tx, &statement, (signer, capacity), cert)
    })?;
    Ok(Settled {
        subject,
        chosen: settlement.chosen,
        settlement: statement.hash(),
    })
}
