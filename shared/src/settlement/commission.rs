//! The school commission's settlement of a conflict (seed 002 §22, §62–67: scores belong to
//! the school's commission). Two experts' concurrent sheets for one attempt are settled at the
//! school by a record signed by a member of its commission, in the capacity the year's data
//! allows (`crate::year::YearData::settled_by`): the head of the school as its chair, or an
//! expert the commission order names for the room the sheets were signed in.
//!
//! The record lives in the school's protocol (`settled/HASH`, the certificate it was signed under
//! as `settled_cert/HASH`, and the signer's latest under `head/ID` or `expert/ID`), which only the
//! school may write; the hubs read it and can
//! only flag open conflicts. A record signed in a capacity the year does not allow, by someone
//! who does not hold it, or for sheets of another room is refused wherever it is read.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;

use super::{Decision, Settler, checked_settles, decision_fields, invalid, read_decision};
use crate::calendar::Timestamp;
use crate::codes::{OrgCode, PersonId, PersonRole, RoomCode};
use crate::commission::Orders;
use crate::record::{RecordHash, SheetSubject, SignerDirectory};
use crate::statement::{Statement, StatementError, StatementKind};

/// What a member of the school's commission decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommissionSettlement {
    pub subject: SheetSubject,
    /// The room the conflicting sheets were signed in.
    pub room: RoomCode,
    /// The sheet that counts.
    pub chosen: RecordHash,
    /// Every sheet the settlement covers, the chosen one included, ascending.
    pub settles: Vec<RecordHash>,
    pub reason: String,
    /// Who signed, and in which capacity.
    pub signer: PersonId,
    pub capacity: Settler,
    pub at: Timestamp,
}

/// The certificates a protocol's settlements are verified under, by capacity: the heads' and
/// the experts' (a directory each, so a person's certificate in one role never vouches for the
/// other).
pub struct Signers<'a> {
    pub heads: &'a dyn SignerDirectory,
    pub experts: &'a dyn SignerDirectory,
}

impl std::fmt::Debug for Signers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signers(heads, experts)")
    }
}

impl CommissionSettlement {
    /// Signs the settlement with the signer's person key.
    pub fn sign(&self, key: &SigningKey) -> Result<Statement, StatementError> {
        let settles = self.check()?;
        let fields = decision_fields(self.subject, self.chosen, &settles).with("room", self.room);
        let fields = fields
            .with("reason", &self.reason)
            .with("signer", self.signer)
            .with("capacity", self.capacity.id())
            .with("at", self.at);
        Statement::sign(StatementKind::CommissionSettlement, &fields, key)
    }

    /// What the record says by itself; the sheets it settles, ascending and each once.
    fn check(&self) -> Result<Vec<RecordHash>, StatementError> {
        checked_settles(self.chosen, &self.settles, &self.reason)
    }

    /// The signer a stored record claims, and in which capacity, before anything is verified:
    /// which certificate to look for.
    pub fn claimed(statement: &Statement) -> Result<(PersonId, Settler), StatementError> {
        let fields = statement.fields_unverified(StatementKind::CommissionSettlement)?;
        let signer = PersonId::new(fields.get("signer")?).map_err(|e| invalid(e.to_string()))?;
        let capacity = fields
            .get("capacity")?
            .parse()
            .map_err(|e: crate::DomainError| invalid(e.to_string()))?;
        Ok((signer, capacity))
    }

    /// Checks a stored record: its fields; a capacity `allowed` this year; the signature by a
    /// person the region's CA certifies at the school, in the role the capacity needs, at the
    /// time the record names; and for a room's expert, an order of the school's commission that
    /// names them for that room.
    pub fn verify(
        statement: &Statement,
        signers: &Signers<'_>,
        orders: &Orders,
        allowed: &BTreeSet<Settler>,
    ) -> Result<CommissionSettlement, StatementError> {
        let fields = statement.fields_unverified(StatementKind::CommissionSettlement)?;
        let (signer, capacity) = Self::claimed(statement)?;
        let (subject, chosen, settles) = read_decision(&fields)?;
        let settlement = CommissionSettlement {
            subject,
            room: RoomCode::new(fields.get("room")?).map_err(|e| invalid(e.to_string()))?,
            chosen,
            settles,
            reason: fields.get("reason")?.to_owned(),
            signer,
            capacity,
            at: fields.parse("at")?,
        };
        settlement.check()?;
        if !allowed.contains(&capacity) {
            let names: Vec<&str> = allowed.iter().map(|s| s.id()).collect();
            return Err(invalid(format!(
                "this year a conflict is settled by {} (the year's data), not by {capacity}",
                names.join(" or ")
            )));
        }
        let (role, directory) = match capacity {
            Settler::Chair => (PersonRole::Head, signers.heads),
            Settler::RoomExpert => (PersonRole::Expert, signers.experts),
        };
        let school = settlement.subject.school;
        let key = directory
            .person_key(role, signer, OrgCode::School(school), settlement.at)
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::CommissionSettlement, &key)?;
        // The order in force when the record was signed: the newest edition dated no later.
        let in_force = orders
            .editions
            .iter()
            .filter(|o| o.exam == settlement.subject.exam && o.school == school)
            .filter(|o| o.at <= settlement.at)
            .max_by_key(|o| o.edition);
        match capacity {
            // With an order in force, its head chairs the commission; with none, the head of
            // the school by their certificate.
            Settler::Chair => {
                if let Some(order) = in_force
                    && order.head != signer
                {
                    return Err(invalid(format!(
                        "the commission order in force (edition {}) was signed by head {}, not {signer}",
                        order.edition, order.head
                    )));
                }
            }
            Settler::RoomExpert => {
                let named = in_force.is_some_and(|o| {
                    o.rooms
                        .iter()
                        .any(|r| r.room == settlement.room && r.experts.contains(&signer))
                });
                if !named {
                    return Err(invalid(format!(
                        "the commission order in force at {} does not name {signer} an expert of room {}",
                        settlement.at, settlement.room
                    )));
                }
            }
        }
        Ok(settlement)
    }

    /// What [`super::apply`] judges: a room expert settles only their room's sheets (the chair,
    /// any room's: a conflict across two rooms is the chair's), and nobody a conflict of their
    /// own sheets.
    #[must_use]
    pub fn decision(&self) -> Decision<'_> {
        Decision {
            subject: self.subject,
            chosen: self.chosen,
            settles: &self.settles,
            room: (self.capacity == Settler::RoomExpert).then_some(self.room),
            signer: Some(self.signer),
        }
    }
}

/// Every commission settlement stored in a school's protocol, verified; one that fails is
/// returned with the reason (shown, never silently ignored).
pub fn stored<D: SignerDirectory>(
    protocol: &impl automerge::ReadDoc,
    orders: &Orders,
    allowed: &BTreeSet<Settler>,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
) -> (Vec<(RecordHash, CommissionSettlement)>, super::Refused) {
    let heads = crate::content::head_certs(protocol);
    let experts = crate::content::expert_certs(protocol);
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for statement in crate::content::commission_settlements(protocol) {
        // The certificate it was signed under, kept with it; else the signer's latest.
        let own = crate::content::commission_settlement_cert(protocol, statement.hash());
        let claimed = CommissionSettlement::claimed(&statement);
        let certs = |of: &BTreeMap<String, Vec<u8>>| match (&own, &claimed) {
            (Some(cert), Ok((signer, _))) => {
                BTreeMap::from([(signer.as_str().to_owned(), cert.clone())])
            }
            _ => of.clone(),
        };
        let (heads, experts) = (
            directory_for(&certs(&heads)),
            directory_for(&certs(&experts)),
        );
        let signers = Signers {
            heads: &heads,
            experts: &experts,
        };
        match CommissionSettlement::verify(&statement, &signers, orders, allowed) {
            Ok(s) => ok.push((statement.hash(), s)),
            Err(e) => bad.push((statement.hash(), e)),
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::RoomCode;
    use crate::commission::{Commission, RoomCommission};
    use crate::record::fixtures::*;
    use crate::record::{FixedDirectory, SignedSheet};
    use crate::resolve::{Verdict, resolve_all};
    use crate::settlement::apply;

    fn head() -> PersonId {
        PersonId::new("head-1").unwrap()
    }

    fn room(code: &str) -> RoomCode {
        RoomCode::new(code).unwrap()
    }

    /// The head (key 50) and experts 1 to 4 (keys 1 to 4) of the school, as the CA would
    /// certify them.
    fn signers() -> (FixedDirectory, FixedDirectory) {
        let mut heads = FixedDirectory::default();
        heads.add_person(
            head(),
            PersonRole::Head,
            OrgCode::School(school()),
            key(50).verifying_key(),
        );
        let mut experts = FixedDirectory::default();
        for n in 1..=4 {
            experts.add_person(
                expert(n),
                PersonRole::Expert,
                OrgCode::School(school()),
                key(n).verifying_key(),
            );
        }
        (heads, experts)
    }

    /// An order naming expert 1 for room 101 and expert 2 for room 102.
    fn orders() -> Orders {
        let room_of = |code: &str, n: u8| RoomCommission {
            room: room(code),
            interviewers: vec![PersonId::new("int-1").unwrap()],
            experts: vec![expert(n)],
        };
        Orders {
            editions: vec![Commission {
                exam: subject("p1").exam,
                school: school(),
                edition: 1,
                head: head(),
                at: at(0),
                rooms: vec![room_of("101", 1), room_of("102", 2)],
            }],
        }
    }

    fn settle(
        of: &[&SignedSheet],
        chosen: &SignedSheet,
        (signer, capacity): (PersonId, Settler),
    ) -> CommissionSettlement {
        CommissionSettlement {
            subject: subject("p1"),
            room: room("101"),
            chosen: chosen.hash(),
            settles: of.iter().map(|s| s.hash()).collect(),
            reason: "запись прослушана комиссией".into(),
            signer,
            capacity,
            at: at(90),
        }
    }

    fn allowed(settlers: &[Settler]) -> BTreeSet<Settler> {
        settlers.iter().copied().collect()
    }

    fn verify(
        statement: &Statement,
        settlers: &[Settler],
    ) -> Result<CommissionSettlement, StatementError> {
        let (heads, experts) = signers();
        let signers = Signers {
            heads: &heads,
            experts: &experts,
        };
        CommissionSettlement::verify(statement, &signers, &orders(), &allowed(settlers))
    }

    #[test]
    fn the_chair_settles_a_conflict_of_two_experts() {
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        let statement = settle(&[&a, &b], &b, (head(), Settler::Chair))
            .sign(&key(50))
            .unwrap();
        let verified = verify(&statement, &[Settler::Chair]).unwrap();
        let mut r = resolve_all(&[a.clone(), b.clone()], &rules(), &directory());
        assert_eq!(r.conflicts().count(), 1);
        assert!(apply(&mut r, [(statement.hash(), verified.decision())]).is_empty());
        match &r.subjects[&subject("p1")].verdict {
            Verdict::Settled {
                current, set_aside, ..
            } => {
                assert_eq!(current.sheet.total, 12);
                assert_eq!(set_aside, &vec![a.hash()]);
            }
            other => panic!("not settled: {other:?}"),
        }
    }

    #[test]
    fn a_settlement_by_anyone_outside_the_commission_is_refused() {
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        // An expert claiming the chair: their key is not a head's.
        let posing = settle(&[&a, &b], &a, (expert(1), Settler::Chair))
            .sign(&key(1))
            .unwrap();
        let err = verify(&posing, &[Settler::Chair]).unwrap_err().to_string();
        assert!(err.contains("exp-1"), "{err}");
        // Someone with no certificate at the school (an operator's key, say).
        let outsider = PersonId::new("op-1").unwrap();
        let foreign = settle(&[&a, &b], &a, (outsider, Settler::Chair))
            .sign(&key(42))
            .unwrap();
        assert!(verify(&foreign, &[Settler::Chair]).is_err());
        // The head's name with another key.
        let forged = settle(&[&a, &b], &a, (head(), Settler::Chair))
            .sign(&key(7))
            .unwrap();
        assert!(verify(&forged, &[Settler::Chair]).is_err());
    }

    #[test]
    fn a_room_expert_settles_only_when_the_year_allows_and_the_order_names_them() {
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        let by_expert_1 = settle(&[&a, &b], &b, (expert(1), Settler::RoomExpert))
            .sign(&key(1))
            .unwrap();
        // The shipped year lets only the chair settle.
        let err = verify(&by_expert_1, &[Settler::Chair])
            .unwrap_err()
            .to_string();
        assert!(err.contains("the year's data"), "{err}");
        // A year that allows room experts: expert 1 is named for room 101.
        let both = [Settler::Chair, Settler::RoomExpert];
        verify(&by_expert_1, &both).unwrap();
        // Expert 2 is an expert of room 102, not of 101.
        let by_expert_2 = settle(&[&a, &b], &b, (expert(2), Settler::RoomExpert))
            .sign(&key(2))
            .unwrap();
        let err = verify(&by_expert_2, &both).unwrap_err().to_string();
        assert!(
            err.contains("does not name exp-2 an expert of room 101"),
            "{err}"
        );
    }

    /// A room's expert settles their room's sheets only: expert 2, of room 102, names room 102
    /// over a conflict signed in room 101, and the record does not apply.
    #[test]
    fn a_settlement_for_another_rooms_sheets_does_not_apply() {
        let both = [Settler::Chair, Settler::RoomExpert];
        let a = sheet_in("p1", 8, 3, "101");
        let b = sheet_in("p1", 12, 4, "101");
        let mut s = settle(&[&a, &b], &b, (expert(2), Settler::RoomExpert));
        s.room = room("102");
        let statement = s.sign(&key(2)).unwrap();
        assert!(!applies(&statement, &both, &[a.clone(), b.clone()]));
        let mut r = resolve_all(&[a, b], &rules(), &directory());
        let verified = verify(&statement, &both).unwrap();
        let stale = apply(&mut r, [(statement.hash(), verified.decision())]);
        assert_eq!(stale, vec![statement.hash()]);
        assert_eq!(r.conflicts().count(), 1, "the conflict stays open");
    }

    fn sheet_in(participant: &str, total: u16, expert_n: u8, room_code: &str) -> SignedSheet {
        let mut d = draft(participant, total, expert_n);
        d.room = room(room_code);
        sign(d, expert_n)
    }

    fn applies(statement: &Statement, settlers: &[Settler], sheets: &[SignedSheet]) -> bool {
        let verified = verify(statement, settlers).unwrap();
        let mut r = resolve_all(sheets, &rules(), &directory());
        apply(&mut r, [(statement.hash(), verified.decision())]).is_empty()
    }

    #[test]
    fn a_member_never_settles_a_conflict_of_their_own_sheets() {
        let both = [Settler::Chair, Settler::RoomExpert];
        // Experts 3 and 4 disagree in room 101; expert 1, named for 101, settles.
        let c = sheet_in("p1", 8, 3, "101");
        let d = sheet_in("p1", 12, 4, "101");
        let by_1 = settle(&[&c, &d], &d, (expert(1), Settler::RoomExpert))
            .sign(&key(1))
            .unwrap();
        assert!(applies(&by_1, &both, &[c, d]));
        // Expert 1's own sheet is in the conflict: their record does not apply.
        let a = sheet_in("p1", 8, 1, "101");
        let b = sheet_in("p1", 12, 3, "101");
        let own = settle(&[&a, &b], &a, (expert(1), Settler::RoomExpert))
            .sign(&key(1))
            .unwrap();
        assert!(!applies(&own, &both, &[a, b]));
    }

    #[test]
    fn a_conflict_across_rooms_is_the_chairs() {
        let both = [Settler::Chair, Settler::RoomExpert];
        let a = sheet_in("p1", 8, 3, "101");
        let b = sheet_in("p1", 12, 4, "102");
        let chair = settle(&[&a, &b], &b, (head(), Settler::Chair))
            .sign(&key(50))
            .unwrap();
        assert!(applies(&chair, &both, &[a.clone(), b.clone()]));
        let room_expert = settle(&[&a, &b], &b, (expert(1), Settler::RoomExpert))
            .sign(&key(1))
            .unwrap();
        assert!(!applies(&room_expert, &both, &[a, b]));
    }

    #[test]
    fn the_order_in_force_when_signed_decides_who_settles() {
        let both = [Settler::Chair, Settler::RoomExpert];
        let (heads, experts) = signers();
        let signers = Signers {
            heads: &heads,
            experts: &experts,
        };
        // Edition 2, dated minute 100, moves expert 1 out of room 101 and is signed by another
        // head (head-2, not certified here).
        let mut orders = orders();
        let mut second = orders.editions[0].clone();
        second.edition = 2;
        second.at = at(100);
        second.head = PersonId::new("head-2").unwrap();
        second.rooms[0].experts = vec![expert(3)];
        orders.editions.push(second);
        let a = sheet_in("p1", 8, 3, "101");
        let b = sheet_in("p1", 12, 4, "101");
        let signed_at = |minute: i64, who: (PersonId, Settler), k: u8| {
            let mut s = settle(&[&a, &b], &b, who);
            s.at = at(minute);
            s.sign(&key(k)).unwrap()
        };
        let check = |statement: &Statement| {
            CommissionSettlement::verify(statement, &signers, &orders, &allowed(&both))
        };
        // Under edition 1 (minute 90), expert 1 is room 101's and head-1 chairs.
        check(&signed_at(90, (expert(1), Settler::RoomExpert), 1)).unwrap();
        check(&signed_at(90, (head(), Settler::Chair), 50)).unwrap();
        // Under edition 2 (minute 110), neither is.
        let err = check(&signed_at(110, (expert(1), Settler::RoomExpert), 1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not name exp-1 an expert of room 101"),
            "{err}"
        );
        let err = check(&signed_at(110, (head(), Settler::Chair), 50))
            .unwrap_err()
            .to_string();
        assert!(err.contains("signed by head head-2, not head-1"), "{err}");
    }
}
