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

use super::{Actor, Context, Error, school_doc, statement_claiming};

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
    Orders::read(doc, &context.verifier.experts(&content::head_certs(doc)))
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
    let (statement, head) = statement_claiming(statement, StatementKind::Commission, "head")?;
    let directory = context.one_signer(&head, head_cert);
    let order = Commission::verify(&statement, &directory).map_err(Error::RecordRefused)?;
    actor.may_hand_in(order.head)?;
    if order.exam != exam || order.school != school {
        return Err(Error::RecordForOther {
            school: order.school,
            exam: order.exam,
        });
    }
    let next = orders(engine, context, protocol).next_edition();
    if order.edition != next {
        return Err(Error::CommissionEdition {
            signed: order.edition,
            next,
        });
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
