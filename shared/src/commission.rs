//! The school's commission order (seed 002 §22, §37): the head of the school (руководитель ОО)
//! signs who interviews (собеседники) and who scores (эксперты) in which room. It is a signed
//! statement (`crate::statement`) in the school's protocol under `commission/EDITION`, beside
//! the head's certificate; the head signs a new edition to change it.
//!
//! An expert scores only in the rooms an order names them for: a sheet by an expert whom no
//! edition of the order names for the sheet's room is refused when handed in and on receipt
//! (`crate::ingest`). Every edition that verifies counts, so an expert replaced during the day
//! keeps the sheets they signed before; a school with no order is not judged by it.

use std::collections::{BTreeMap, BTreeSet};

use crate::calendar::Timestamp;
use crate::codes::{OrgCode, PersonId, PersonRole, RoomCode, SchoolCode};
use crate::exam::ExamId;
use crate::record::SignerDirectory;
use crate::statement::{Fields, Statement, StatementError, StatementKind};

/// The most rooms one order names.
pub const ROOMS_MAX: usize = 500;
/// The most people one room's commission names in each role.
pub const ROOM_PEOPLE_MAX: usize = 8;

/// One room's commission.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomCommission {
    pub room: RoomCode,
    pub interviewers: Vec<PersonId>,
    pub experts: Vec<PersonId>,
}

/// A commission order as the head of the school signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commission {
    pub exam: ExamId,
    pub school: SchoolCode,
    /// 1 for the first order of the school for the exam, one more for each after.
    pub edition: u32,
    pub head: PersonId,
    pub at: Timestamp,
    /// Ascending by room, each once.
    pub rooms: Vec<RoomCommission>,
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

impl Commission {
    /// Checks what the order says by itself: at least one room, each once, each with an
    /// interviewer and an expert, nobody twice in one room, within the bounds.
    pub fn check(&self) -> Result<(), StatementError> {
        if self.edition == 0 {
            return Err(invalid("an order's edition counts from 1"));
        }
        if self.rooms.is_empty() {
            return Err(invalid("the order names no room"));
        }
        if self.rooms.len() > ROOMS_MAX {
            return Err(invalid(format!(
                "the order names more than {ROOMS_MAX} rooms"
            )));
        }
        let mut seen = BTreeSet::new();
        for r in &self.rooms {
            if !seen.insert(r.room) {
                return Err(invalid(format!("room {} is named twice", r.room)));
            }
            if r.interviewers.is_empty() || r.experts.is_empty() {
                return Err(invalid(format!(
                    "room {} needs an interviewer and an expert",
                    r.room
                )));
            }
            if r.interviewers.len() > ROOM_PEOPLE_MAX || r.experts.len() > ROOM_PEOPLE_MAX {
                return Err(invalid(format!(
                    "room {} names more than {ROOM_PEOPLE_MAX} people in a role",
                    r.room
                )));
            }
            let mut people = BTreeSet::new();
            if let Some(twice) = r
                .interviewers
                .iter()
                .chain(&r.experts)
                .find(|p| !people.insert(**p))
            {
                return Err(invalid(format!("room {} names {twice} twice", r.room)));
            }
        }
        Ok(())
    }

    fn fields(&self) -> Fields {
        let mut rooms = self.rooms.clone();
        rooms.sort_by_key(|r| r.room);
        let list = |people: &[PersonId]| {
            people
                .iter()
                .map(PersonId::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut fields = Fields::new()
            .with("exam", self.exam)
            .with("school", self.school)
            .with("edition", self.edition)
            .with("head", self.head)
            .with("at", self.at);
        for r in &rooms {
            fields = fields.with(
                "room",
                format!("{} {} {}", r.room, list(&r.interviewers), list(&r.experts)),
            );
        }
        fields
    }

    /// Signs the order with the head's key.
    pub fn sign(&self, key: &ed25519_dalek::SigningKey) -> Result<Statement, StatementError> {
        self.check()?;
        Statement::sign(StatementKind::Commission, &self.fields(), key)
    }

    /// Checks a signed order: well formed, and signed by the head of the school the directory
    /// certifies at the order's time.
    pub fn verify(
        statement: &Statement,
        directory: &dyn SignerDirectory,
    ) -> Result<Commission, StatementError> {
        Self::verify_remembered(statement, directory, None)
    }

    /// [`Commission::verify`], its signature checked through `memo` when given
    /// ([`crate::signature_memo`]); the head's certificate is judged every time.
    pub fn verify_remembered(
        statement: &Statement,
        directory: &dyn SignerDirectory,
        memo: Option<&crate::signature_memo::SignatureMemo>,
    ) -> Result<Commission, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Commission)?;
        let person = |text: &str| PersonId::new(text).map_err(|e| invalid(e.to_string()));
        let people = |text: &str| -> Result<Vec<PersonId>, StatementError> {
            text.split(',').map(person).collect()
        };
        let rooms = fields
            .all("room")
            .map(|line| {
                let parts: Vec<&str> = line.split(' ').collect();
                let [room, interviewers, experts] = parts[..] else {
                    return Err(invalid(format!("room line {line:?}")));
                };
                Ok(RoomCommission {
                    room: RoomCode::new(room).map_err(|e| invalid(e.to_string()))?,
                    interviewers: people(interviewers)?,
                    experts: people(experts)?,
                })
            })
            .collect::<Result<Vec<_>, StatementError>>()?;
        let order = Commission {
            exam: fields.parse("exam")?,
            school: SchoolCode::new(fields.get("school")?).map_err(|e| invalid(e.to_string()))?,
            edition: fields.parse("edition")?,
            head: person(fields.get("head")?)?,
            at: fields.parse("at")?,
            rooms,
        };
        order.check()?;
        let key = directory
            .person_key(
                PersonRole::Head,
                order.head,
                OrgCode::School(order.school),
                order.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify_remembered(StatementKind::Commission, &key, memo)?;
        Ok(order)
    }
}

/// What the orders of a protocol say, edition by edition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Orders {
    /// The editions that verify, ascending.
    pub editions: Vec<Commission>,
}

impl Orders {
    /// The orders stored in `protocol` that verify and are stored under the edition they were
    /// signed as. Each edition is judged by the head's certificate stored with it
    /// (`commission_cert/N`; before that key existed, `head/ID`), so a head whose certificate
    /// was re-issued between editions keeps the earlier ones. `directory_for` makes a directory
    /// of certificates by person id. (A protocol is one school's for one exam; an order for
    /// another is judged by [`Orders::may_score`], which reads only the sheet's own.)
    pub fn read<D: SignerDirectory>(
        protocol: &impl automerge::ReadDoc,
        directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    ) -> Orders {
        Self::read_remembered(protocol, directory_for, None)
    }

    /// [`Orders::read`], each order's signature checked through `memo` when given
    /// ([`crate::signature_memo`]): the РЦОИ reads a school's orders at every sheet it receipts.
    pub fn read_remembered<D: SignerDirectory>(
        protocol: &impl automerge::ReadDoc,
        directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
        memo: Option<&crate::signature_memo::SignatureMemo>,
    ) -> Orders {
        let heads = crate::content::head_certs(protocol);
        let mut editions: Vec<Commission> = crate::content::commissions(protocol)
            .into_iter()
            .filter_map(|(edition, statement)| {
                let claimed = statement
                    .fields_unverified(StatementKind::Commission)
                    .ok()?
                    .get("head")
                    .ok()?
                    .to_owned();
                let cert = crate::content::commission_cert(protocol, edition)
                    .or_else(|| heads.get(&claimed).cloned())?;
                let directory = directory_for(&BTreeMap::from([(claimed, cert)]));
                let order = Commission::verify_remembered(&statement, &directory, memo).ok()?;
                (order.edition == edition).then_some(order)
            })
            .collect();
        editions.sort_by_key(|o| o.edition);
        Orders { editions }
    }

    /// The newest edition.
    #[must_use]
    pub fn current(&self) -> Option<&Commission> {
        self.editions.last()
    }

    /// Whether any order is in force (with none, nobody is judged by one).
    #[must_use]
    pub fn any(&self) -> bool {
        !self.editions.is_empty()
    }

    /// The experts any edition names for each room.
    #[must_use]
    pub fn experts_by_room(&self) -> BTreeMap<RoomCode, BTreeSet<PersonId>> {
        let mut out: BTreeMap<RoomCode, BTreeSet<PersonId>> = BTreeMap::new();
        for order in &self.editions {
            for r in &order.rooms {
                out.entry(r.room)
                    .or_default()
                    .extend(r.experts.iter().copied());
            }
        }
        out
    }

    /// Whether `expert` may score in `room` of `exam` at `school`: no order for them is in
    /// force, or an edition names the expert for that room.
    #[must_use]
    pub fn may_score(
        &self,
        (exam, school): (ExamId, SchoolCode),
        expert: PersonId,
        room: RoomCode,
    ) -> bool {
        let mut orders = self
            .editions
            .iter()
            .filter(|o| o.exam == exam && o.school == school)
            .peekable();
        orders.peek().is_none()
            || orders.any(|o| {
                o.rooms
                    .iter()
                    .any(|r| r.room == room && r.experts.contains(&expert))
            })
    }

    /// Whether the newest edition for `exam` at `school` names `expert` for `room`: what a
    /// new sheet is held to when handed in (an expert taken off a room scores there no more;
    /// the sheets they signed before keep counting by [`Orders::may_score`]). True when no
    /// order is in force.
    #[must_use]
    pub fn names_now(&self, key: (ExamId, SchoolCode), expert: PersonId, room: RoomCode) -> bool {
        self.newest_names(key, room, |r| &r.experts, expert)
    }

    /// Whether the newest edition for `exam` at `school` names `interviewer` for `room`: what a
    /// room log entry is held to. True when no order is in force.
    #[must_use]
    pub fn interviews_now(
        &self,
        key: (ExamId, SchoolCode),
        interviewer: PersonId,
        room: RoomCode,
    ) -> bool {
        self.newest_names(key, room, |r| &r.interviewers, interviewer)
    }

    /// Whether the newest edition for `exam` at `school` lists `person` for `room` in the list
    /// `of` picks; true when no order is in force.
    fn newest_names(
        &self,
        (exam, school): (ExamId, SchoolCode),
        room: RoomCode,
        of: impl Fn(&RoomCommission) -> &Vec<PersonId>,
        person: PersonId,
    ) -> bool {
        match self
            .editions
            .iter()
            .rfind(|o| o.exam == exam && o.school == school)
        {
            None => true,
            Some(o) => o
                .rooms
                .iter()
                .any(|r| r.room == room && of(r).contains(&person)),
        }
    }

    /// The next edition's number.
    #[must_use]
    pub fn next_edition(&self) -> u32 {
        self.current().map_or(1, |o| o.edition.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::record::FixedDirectory;
    use crate::record::fixtures::{at, school};

    fn person(id: &str) -> PersonId {
        PersonId::new(id).unwrap()
    }
    fn room(code: &str) -> RoomCode {
        RoomCode::new(code).unwrap()
    }
    fn order(edition: u32, rooms: &[(&str, &str, &str)]) -> Commission {
        Commission {
            exam: "is-2024-02-14".parse().unwrap(),
            school: school(),
            edition,
            head: person("head-1"),
            at: at(0),
            rooms: rooms
                .iter()
                .map(|(r, i, e)| RoomCommission {
                    room: room(r),
                    interviewers: vec![person(i)],
                    experts: vec![person(e)],
                })
                .collect(),
        }
    }
    fn head_directory(key: &SigningKey, role: PersonRole) -> FixedDirectory {
        let mut d = FixedDirectory::default();
        d.add_person(
            person("head-1"),
            role,
            OrgCode::School(school()),
            key.verifying_key(),
        );
        d
    }

    #[test]
    fn an_order_verifies_only_under_the_heads_certificate() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let o = order(1, &[("102", "int-2", "exp-2"), ("101", "int-1", "exp-1")]);
        let signed = o.sign(&key).unwrap();
        let read = Commission::verify(&signed, &head_directory(&key, PersonRole::Head)).unwrap();
        // Rooms come back in order, whatever order they were given in.
        assert_eq!(
            read.rooms
                .iter()
                .map(|r| r.room.as_str())
                .collect::<Vec<_>>(),
            vec!["101", "102"]
        );
        // The same key certified as an organiser signs no order; another key neither.
        assert!(Commission::verify(&signed, &head_directory(&key, PersonRole::Organiser)).is_err());
        let other = SigningKey::from_bytes(&[6; 32]);
        assert!(Commission::verify(&signed, &head_directory(&other, PersonRole::Head)).is_err());
    }

    #[test]
    fn an_order_names_each_room_once_with_both_roles_and_nobody_twice() {
        let key = SigningKey::from_bytes(&[5; 32]);
        assert!(order(1, &[]).sign(&key).is_err());
        assert!(
            order(1, &[("101", "int-1", "exp-1"), ("101", "int-2", "exp-2")])
                .sign(&key)
                .is_err()
        );
        assert!(order(1, &[("101", "p-1", "p-1")]).sign(&key).is_err());
        let mut no_expert = order(1, &[("101", "int-1", "exp-1")]);
        no_expert.rooms[0].experts.clear();
        assert!(no_expert.sign(&key).is_err());
        assert!(order(0, &[("101", "int-1", "exp-1")]).sign(&key).is_err());
    }

    #[test]
    fn every_edition_counts_for_who_may_score_where() {
        let editions = vec![
            order(1, &[("101", "int-1", "exp-1")]),
            order(2, &[("101", "int-1", "exp-3"), ("102", "int-2", "exp-2")]),
        ];
        let orders = Orders { editions };
        let here = (orders.editions[0].exam, school());
        // exp-1 was replaced in 101 by edition 2: the sheets they signed before still count.
        assert!(orders.may_score(here, person("exp-1"), room("101")));
        assert!(orders.may_score(here, person("exp-3"), room("101")));
        assert!(!orders.may_score(here, person("exp-2"), room("101")));
        assert!(!orders.may_score(here, person("exp-1"), room("102")));
        assert!(!orders.may_score(here, person("exp-1"), room("103")));
        assert_eq!(orders.next_edition(), 3);
        // With no order, nobody is judged by one; nor by another exam's order.
        assert!(Orders::default().may_score(here, person("exp-9"), room("999")));
        let another = ("is-2024-03-13".parse().unwrap(), school());
        assert!(orders.may_score(another, person("exp-9"), room("999")));
        // A new sheet is held to the newest edition: exp-1 no longer scores in 101.
        assert!(!orders.names_now(here, person("exp-1"), room("101")));
        assert!(orders.names_now(here, person("exp-3"), room("101")));
        assert!(orders.names_now(another, person("exp-9"), room("999")));
    }
}
