//! The commission order (seed 002 §22, §37): the head of the school signs who interviews and
//! who scores in which room (`giasync_shared::commission`); it is stored in the protocol and an
//! expert then scores only in the rooms an edition names them for (`scoring::score` refuses
//! another sheet, the РЦОИ refuses one on receipt).

use giasync_shared::codes::PersonId;
use giasync_shared::commission::{Commission, Orders};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Actor, Context, Error, handed_in, school_doc};

/// How far from when it is handed in an order may be dated, in ms.
pub const ORDER_AT_MS_MAX: i64 = 10 * 60_000;

/// An edition of the order stored in the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionSigned {
    pub edition: u32,
    pub rooms: usize,
    pub head: PersonId,
}

/// The orders of the school's protocol that verify here.
pub(crate) fn orders(engine: &Engine, context: &Context, protocol: DocId) -> Orders {
    let Some(doc) = engine.doc(&protocol) else {
        return Orders::default();
    };
    Orders::read(doc, |certs| context.verifier.experts(certs))
}

/// Checks the head's signed order (signature, certificate, this school and exam, the next
/// edition, rooms the roster declares) and stores it in the protocol.
pub fn sign(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    exam: ExamId,
    statement: Vec<u8>,
    head_cert: &[u8],
) -> Result<CommissionSigned, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let school = protocol.school().ok_or(Error::NoExam)?;
    let (statement, order) = handed_in(
        context,
        actor,
        statement,
        (StatementKind::Commission, "head"),
        head_cert,
        |s, d| Commission::verify(s, d),
        |o: &Commission| (o.head, o.exam, o.school),
        (exam, school),
    )?;
    let next = orders(engine, context, protocol).next_edition();
    if order.edition != next {
        return Err(Error::CommissionEdition {
            signed: order.edition,
            next,
        });
    }
    // The head signs now: an order dated hours away from when it is handed in is refused (a
    // revoked head's key cannot backdate one).
    if (order.at.unix_ms() - now_ms).abs() > ORDER_AT_MS_MAX {
        return Err(Error::CommissionOutOfTime { at: order.at });
    }
    // Every edition counts for the sheets already signed, so a new one must not take away a
    // sheet that counts now: the first order of a day already scored, or one leaving out an
    // expert who scored, would.
    let mut after = orders(engine, context, protocol);
    after.editions.push(order.clone());
    let settled = super::scoring::settled_protocol(engine, context, protocol);
    let unscored: Vec<String> = settled
        .resolution
        .subjects
        .values()
        .filter_map(|r| r.verdict.current())
        .filter(|v| !after.may_score((exam, school), v.sheet.expert, v.sheet.room))
        .map(|v| {
            format!(
                "{} by {} in room {}",
                v.sheet.subject, v.sheet.expert, v.sheet.room
            )
        })
        .collect();
    if !unscored.is_empty() {
        return Err(Error::CommissionUnscores { sheets: unscored });
    }
    let roster = school_doc(engine, DocKind::Roster, exam)?;
    let declared = engine.doc(&roster).map(content::rooms).unwrap_or_default();
    if let Some(r) = order
        .rooms
        .iter()
        .find(|r| !declared.contains_key(r.room.as_str()))
    {
        return Err(Error::CommissionRoomUnknown { room: r.room });
    }
    engine.change(now_ms, protocol, |tx| {
        content::put_commission(tx, order.edition, &statement, order.head, head_cert)
    })?;
    Ok(CommissionSigned {
        edition: order.edition,
        rooms: order.rooms.len(),
        head: order.head,
    })
}
