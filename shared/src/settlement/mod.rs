//! Settlements of conflicts: a signed statement naming the participant's attempt, every
//! conflicting sheet it settles and the one that counts.
//!
//! Conflicts are settled at the school by its commission ([`commission`], seed 002 §22, §62–67),
//! in the school's protocol. Before that, a РЦОИ operator settled them, in the school's РЦОИ
//! document (`settlement/HASH`, the operator's certificate beside it under `operator/ID`), which
//! only the РЦОИ may write; those records are kept and keep verifying ([`Settlement`]), and
//! `giasync-hub settle` no longer makes new ones. Either replicates like everything else and
//! every node reaches the same verdict.
//!
//! A settlement applies only when it names every head of the conflict and chooses one of them: a
//! sheet that arrives later and conflicts again reopens the conflict, and nothing is dropped —
//! the set-aside sheets stay in the protocol and in the exports, marked as such.

pub mod commission;

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;

use crate::calendar::Timestamp;
use crate::codes::{OrgCode, PersonId, PersonRole, RegionCode};
use crate::record::{RecordHash, SheetSubject, SignerDirectory};
use crate::resolve::{ProtocolResolution, Verdict};
use crate::statement::{Fields, Statement, StatementError, StatementKind};

crate::codes::id_enum!(
    /// Who may sign a commission's settlement at the school (the year's data file says which,
    /// `crate::year`).
    Settler, crate::Field::YearData, {
        /// The head of the school, who chairs its commission (seed 002 §22).
        Chair = "chair", "председатель комиссии (руководитель ОО)";
        /// An expert the school's commission order names for the room the sheets were signed
        /// in (seed 002 §64).
        RoomExpert = "room-expert", "эксперт аудитории";
    }
);

/// From this instant on (2026-12-06 00:00 UTC, the release that moved settling to the school's
/// commission) an operator's settlement does not count: the ones made before keep counting, and
/// a record the РЦОИ writes later cannot override the commission.
pub const OPERATOR_SETTLEMENTS_BEFORE_MS: i64 = 1_796_515_200_000;

/// The longest reason an operator may give, in bytes.
pub const SETTLEMENT_REASON_BYTES_MAX: usize = 1024;

/// What an operator decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub subject: SheetSubject,
    /// The sheet that counts.
    pub chosen: RecordHash,
    /// Every sheet the settlement covers, the chosen one included, ascending.
    pub settles: Vec<RecordHash>,
    pub reason: String,
    pub operator: PersonId,
    pub rcoi: RegionCode,
    pub at: Timestamp,
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

/// What any settlement must say by itself, whoever signs it: the chosen sheet among at least two
/// settled, and a reason of 1..=[`SETTLEMENT_REASON_BYTES_MAX`] bytes. The sheets, ascending and
/// each once.
fn checked_settles(
    chosen: RecordHash,
    settles: &[RecordHash],
    reason: &str,
) -> Result<Vec<RecordHash>, StatementError> {
    let mut settles = settles.to_vec();
    settles.sort();
    settles.dedup();
    if !settles.contains(&chosen) {
        return Err(invalid("the chosen sheet is not among those settled"));
    }
    if settles.len() < 2 {
        return Err(invalid("a settlement covers at least two sheets"));
    }
    if reason.trim().is_empty() || reason.len() > SETTLEMENT_REASON_BYTES_MAX {
        return Err(invalid(format!(
            "the reason must be 1..={SETTLEMENT_REASON_BYTES_MAX} bytes"
        )));
    }
    Ok(settles)
}

/// The fields every settlement starts with: the attempt, the sheet chosen, every sheet settled.
fn decision_fields(subject: SheetSubject, chosen: RecordHash, settles: &[RecordHash]) -> Fields {
    let mut fields = Fields::new().with_subject(subject).with("chosen", chosen);
    for h in settles {
        fields = fields.with("settles", h);
    }
    fields
}

/// The attempt, the sheet chosen and every sheet settled, as a stored settlement names them.
fn read_decision(
    fields: &Fields,
) -> Result<(SheetSubject, RecordHash, Vec<RecordHash>), StatementError> {
    let subject = fields.subject()?;
    let settles = fields
        .all("settles")
        .map(|h| {
            h.parse()
                .map_err(|e: crate::DomainError| invalid(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok((subject, fields.parse("chosen")?, settles))
}

impl Settlement {
    /// Signs the settlement with the operator's key.
    pub fn sign(&self, key: &SigningKey) -> Result<Statement, StatementError> {
        let settles = checked_settles(self.chosen, &self.settles, &self.reason)?;
        let fields = decision_fields(self.subject, self.chosen, &settles)
            .with("reason", &self.reason)
            .with("operator", self.operator)
            .with("rcoi", self.rcoi)
            .with("at", self.at);
        Statement::sign(StatementKind::Settlement, &fields, key)
    }

    /// Checks a stored settlement: its fields, and its signature by an operator the directory
    /// certifies for the РЦОИ at the time it names.
    pub fn verify(
        statement: &Statement,
        directory: &dyn SignerDirectory,
    ) -> Result<Settlement, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Settlement)?;
        let (subject, chosen, settles) = read_decision(&fields)?;
        let settlement = Settlement {
            subject,
            chosen,
            settles,
            reason: fields.get("reason")?.to_owned(),
            operator: PersonId::new(fields.get("operator")?).map_err(|e| invalid(e.to_string()))?,
            rcoi: RegionCode::new(fields.get("rcoi")?).map_err(|e| invalid(e.to_string()))?,
            at: fields.parse("at")?,
        };
        if !settlement.settles.contains(&settlement.chosen) {
            return Err(invalid("the chosen sheet is not among those settled"));
        }
        if settlement.at.unix_ms() >= OPERATOR_SETTLEMENTS_BEFORE_MS {
            return Err(invalid(
                "an operator's settlement dated from 2026-12-06 on does not count: conflicts are settled at the school by its commission",
            ));
        }
        let key = directory
            .person_key(
                PersonRole::Operator,
                settlement.operator,
                OrgCode::Rcoi(settlement.rcoi),
                settlement.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::Settlement, &key)?;
        Ok(settlement)
    }
}

impl Settlement {
    /// What [`apply`] judges.
    #[must_use]
    pub fn decision(&self) -> Decision<'_> {
        Decision {
            subject: self.subject,
            chosen: self.chosen,
            settles: &self.settles,
            room: None,
            signer: None,
        }
    }
}

/// What a settlement decides, whoever signed it.
#[derive(Clone, Copy, Debug)]
pub struct Decision<'a> {
    pub subject: SheetSubject,
    pub chosen: RecordHash,
    pub settles: &'a [RecordHash],
    /// A room expert's settlement covers only sheets signed in their room.
    pub room: Option<crate::codes::RoomCode>,
    /// A commission member's settlement does not apply to a conflict of their own sheets.
    pub signer: Option<PersonId>,
}

/// Applies verified settlements to a protocol's resolution: a conflict whose every head a
/// settlement names (for a room expert's, every head signed in their room; for a commission
/// member's, none signed by them), choosing one of them, becomes [`Verdict::Settled`]. Settlements that do not cover the conflict as it stands now are
/// returned, so the commission sees that a conflict reopened.
pub fn apply<'a>(
    resolution: &mut ProtocolResolution,
    settlements: impl IntoIterator<Item = (RecordHash, Decision<'a>)>,
) -> Vec<RecordHash> {
    let mut stale = Vec::new();
    for (hash, s) in settlements {
        let Some(r) = resolution.subjects.get_mut(&s.subject) else {
            stale.push(hash);
            continue;
        };
        let Verdict::Conflict(heads) = &r.verdict else {
            stale.push(hash);
            continue;
        };
        let covers = heads.iter().all(|h| s.settles.contains(&h.hash));
        let Some(chosen) = heads.iter().find(|h| h.hash == s.chosen) else {
            stale.push(hash);
            continue;
        };
        let in_room = s
            .room
            .is_none_or(|room| heads.iter().all(|h| h.sheet.room == room));
        let impartial = s
            .signer
            .is_none_or(|p| heads.iter().all(|h| h.sheet.expert != p));
        if !covers || !in_room || !impartial {
            stale.push(hash);
            continue;
        }
        let set_aside = heads
            .iter()
            .filter(|h| h.hash != s.chosen)
            .map(|h| h.hash)
            .collect();
        r.verdict = Verdict::Settled {
            current: Box::new(chosen.clone()),
            settlement: hash,
            set_aside,
        };
    }
    stale
}

/// Settlements that do not verify, by hash, with the reason.
pub type Refused = Vec<(RecordHash, StatementError)>;

/// Every settlement stored in a school's РЦОИ document, verified; a settlement that fails is returned
/// with the reason (it is shown, never silently ignored).
pub fn stored(
    rcoi: &impl automerge::ReadDoc,
    directory: &dyn SignerDirectory,
) -> (Vec<(RecordHash, Settlement)>, Refused) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for statement in crate::content::settlements(rcoi) {
        match Settlement::verify(&statement, directory) {
            Ok(s) => ok.push((statement.hash(), s)),
            Err(e) => bad.push((statement.hash(), e)),
        }
    }
    (ok, bad)
}

/// A protocol's verdicts with the settlements of the school's РЦОИ document applied.
#[derive(Debug)]
pub struct SettledProtocol {
    pub resolution: ProtocolResolution,
    /// Settlements that verify but no longer cover their conflict (a new sheet reopened it).
    pub stale: Vec<RecordHash>,
    /// Settlements that do not verify, with the reason.
    pub refused: Refused,
    /// The protocol's acts that verify, by the attempt each ends (`crate::act`).
    pub acts: std::collections::BTreeMap<crate::record::SheetSubject, crate::act::Act>,
    /// Re-checks by another school's commission the РЦОИ counted for the school
    /// (`crate::recheck`), by attempt: their result counts over the sheets'.
    pub rechecks: std::collections::BTreeMap<SheetSubject, (RecordHash, crate::recheck::Recheck)>,
}

impl SettledProtocol {
    /// The attempts a result is given for (the publication's rows, the exports'): every
    /// attempt with sheets, and every attempt of `school`'s `exam` a counted re-check covers
    /// (the РЦОИ writes no other; a guard all the same).
    #[must_use]
    pub fn attempts(
        &self,
        school: crate::codes::SchoolCode,
        exam: crate::exam::ExamId,
    ) -> BTreeSet<&SheetSubject> {
        self.resolution
            .subjects
            .keys()
            .chain(
                self.rechecks
                    .keys()
                    .filter(|s| s.school == school && s.exam == exam),
            )
            .collect()
    }

    /// The counted re-check of `subject`, unless its sheets are in conflict: a conflict stays
    /// one until it is settled (the publication waits for it, and the exports show it).
    #[must_use]
    pub fn recheck_over_sheets(
        &self,
        subject: &SheetSubject,
    ) -> Option<&(RecordHash, crate::recheck::Recheck)> {
        let in_conflict = matches!(
            self.resolution.subjects.get(subject).map(|r| &r.verdict),
            Some(Verdict::Conflict(_))
        );
        self.rechecks.get(subject).filter(|_| !in_conflict)
    }

    /// The total and outcome that count for an attempt: a re-check's, else the current sheet's.
    #[must_use]
    pub fn counted(&self, subject: &SheetSubject) -> Option<(u16, crate::rules::Outcome)> {
        if let Some((_, r)) = self.rechecks.get(subject) {
            return Some((r.total, r.outcome));
        }
        let v = self.resolution.subjects.get(subject)?.verdict.current()?;
        Some((v.sheet.total, v.sheet.outcome))
    }
}

/// Resolves a protocol's sheets and applies the settlements stored in the school's РЦОИ
/// document. `directory_for` makes a directory from certificates by person id (experts from the
/// protocol, operators from the РЦОИ document; the organisers who signed acts, from the
/// protocol, in a directory of their own).
///
/// Besides the РЦОИ's refusals on receipt, a sheet does not count when, as things stand now, an
/// act ended its attempt or the register gives its participant another category
/// (`crate::ingest::Standing`): an act or an approved category that comes after a sheet was
/// receipted still decides.
pub fn resolve_protocol<D: SignerDirectory>(
    protocol: &impl automerge::ReadDoc,
    rcoi: Option<&impl automerge::ReadDoc>,
    (rules, settled_by): (&crate::rules::Rules, &BTreeSet<Settler>),
    directory_for: impl Fn(&std::collections::BTreeMap<String, Vec<u8>>) -> D,
) -> SettledProtocol {
    let directory = directory_for(&crate::content::expert_certs(protocol));
    let sheets = crate::content::sheets(protocol);
    let mut refused: std::collections::BTreeMap<String, crate::record::SheetError> = rcoi
        .map(crate::content::receipts)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(hash, text)| match crate::ingest::Receipt::read(&text) {
            crate::ingest::Receipt::RefusedOnReceipt(reason) => {
                Some((hash, crate::record::SheetError::RefusedOnReceipt(reason)))
            }
            _ => None,
        })
        .collect();
    // Acts by the organisers' certificates alone.
    let ended = crate::act::ended_attempts(
        protocol,
        &directory_for(&crate::content::organiser_certs(protocol)),
    );
    let orders = crate::commission::Orders::read(protocol, &directory_for);
    let standing = crate::ingest::Standing {
        register: rcoi,
        register_read: None,
        ended: &ended,
        orders: &orders,
    };
    for sheet in &sheets {
        if let Ok(decoded) = sheet.decode_unverified()
            && let Some(refusal) = standing.refusal(&decoded, false)
        {
            refused
                .entry(sheet.hash().to_string())
                .or_insert_with(|| crate::record::SheetError::DoesNotCount(refusal.to_string()));
        }
    }
    let mut resolution =
        crate::resolve::resolve_all_receipted(&sheets, rules, &directory, &refused);
    // The operators' settlements by the operators' certificates alone, as the РЦОИ stored
    // them: the school writes its protocol's `expert/` entries, and an entry it put under an
    // operator's id must not stand in for the operator's certificate (nor spoil it).
    let (by_operators, mut refused) = match rcoi {
        Some(rcoi) => stored(rcoi, &directory_for(&crate::content::operator_certs(rcoi))),
        None => (Vec::new(), Vec::new()),
    };
    let (by_commission, refused_here) =
        commission::stored(protocol, &orders, settled_by, &directory_for);
    refused.extend(refused_here);
    // The operators' records first: they are older, and a conflict one settled stays so.
    let decisions = by_operators
        .iter()
        .map(|(h, s)| (*h, s.decision()))
        .chain(by_commission.iter().map(|(h, s)| (*h, s.decision())));
    let stale = apply(&mut resolution, decisions);
    let rechecks = match rcoi {
        Some(rcoi) => {
            let (counted, refused_here) = crate::recheck::counted(rcoi, rules, &directory_for);
            refused.extend(refused_here);
            counted
        }
        None => Default::default(),
    };
    SettledProtocol {
        resolution,
        stale,
        refused,
        acts: ended,
        rechecks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::fixtures::*;
    use crate::record::{FixedDirectory, SignedSheet};
    use crate::resolve::resolve_all;

    fn operator_directory() -> (FixedDirectory, SigningKey) {
        let mut d = directory();
        let key = SigningKey::from_bytes(&[42; 32]);
        d.add_person(
            PersonId::new("op-1").unwrap(),
            PersonRole::Operator,
            OrgCode::Rcoi(RegionCode::new("42").unwrap()),
            key.verifying_key(),
        );
        (d, key)
    }

    fn settle(of: &[&SignedSheet], chosen: &SignedSheet) -> Settlement {
        Settlement {
            subject: subject("p1"),
            chosen: chosen.hash(),
            settles: of.iter().map(|s| s.hash()).collect(),
            reason: "протокол перепроверен".into(),
            operator: PersonId::new("op-1").unwrap(),
            rcoi: RegionCode::new("42").unwrap(),
            at: at(90),
        }
    }

    #[test]
    fn a_settlement_naming_every_head_settles_the_conflict() {
        let (d, key) = operator_directory();
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        let statement = settle(&[&a, &b], &b).sign(&key).unwrap();
        let verified = Settlement::verify(&statement, &d).unwrap();
        let mut r = resolve_all(&[a.clone(), b.clone()], &rules(), &d);
        assert_eq!(r.conflicts().count(), 1);
        let stale = apply(&mut r, [(statement.hash(), verified.decision())]);
        assert!(stale.is_empty());
        assert_eq!(r.conflicts().count(), 0);
        match &r.subjects[&subject("p1")].verdict {
            Verdict::Settled {
                current, set_aside, ..
            } => {
                assert_eq!(current.sheet.total, 12);
                assert_eq!(set_aside, &vec![a.hash()]);
            }
            other => panic!("not settled: {other:?}"),
        }

        // A third concurrent sheet reopens the conflict; the settlement is reported stale.
        let c = sign(draft("p1", 15, 3), 3);
        let mut r = resolve_all(&[a, b, c], &rules(), &d);
        let stale = apply(&mut r, [(statement.hash(), verified.decision())]);
        assert_eq!(stale, vec![statement.hash()]);
        assert_eq!(r.conflicts().count(), 1);
    }

    /// The РЦОИ cannot override the school's commission with a new record of its own.
    #[test]
    fn an_operators_settlement_dated_after_the_move_to_the_school_does_not_count() {
        let (d, key) = operator_directory();
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        let mut late = settle(&[&a, &b], &b);
        late.at = Timestamp::from_unix_ms(OPERATOR_SETTLEMENTS_BEFORE_MS).unwrap();
        let statement = late.sign(&key).unwrap();
        let err = Settlement::verify(&statement, &d).unwrap_err().to_string();
        assert!(err.contains("from 2026-12-06 on does not count"), "{err}");
        late.at = Timestamp::from_unix_ms(OPERATOR_SETTLEMENTS_BEFORE_MS - 1).unwrap();
        Settlement::verify(&late.sign(&key).unwrap(), &d).unwrap();
    }

    #[test]
    fn only_a_certified_operator_can_settle() {
        let (d, _) = operator_directory();
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        // An expert's key is not an operator's.
        let by_expert = settle(&[&a, &b], &a).sign(&key(1)).unwrap();
        assert!(Settlement::verify(&by_expert, &d).is_err());
        // The chosen sheet must be among the settled ones.
        let mut wrong = settle(&[&a, &b], &a);
        wrong.chosen = RecordHash([9; 32]);
        assert!(wrong.sign(&SigningKey::from_bytes(&[42; 32])).is_err());
    }
}

#[cfg(test)]
mod standing_tests {
    use automerge::transaction::Transactable as _;

    use super::*;
    use crate::act::{Act, ActKind, EarlyReason};
    use crate::codes::ParticipantId;
    use crate::codes::{OrgCode, PersonId, PersonRole, RoomCode};
    use crate::participant::Category;
    use crate::record::FixedDirectory;
    use crate::record::fixtures::*;

    /// A protocol holding `sheets` (and `acts`), and a РЦОИ document that receipted every sheet
    /// verified and registers `register`.
    fn docs(
        sheets: &[crate::record::SignedSheet],
        acts: &[(Act, crate::statement::Statement)],
        register: &[(&str, Category)],
    ) -> (automerge::Automerge, automerge::Automerge) {
        let mut protocol = automerge::Automerge::new();
        let mut tx = protocol.transaction();
        for s in sheets {
            crate::content::put_sheet(&mut tx, s, expert(1), b"cert").unwrap();
        }
        for (act, statement) in acts {
            crate::content::put_act(
                &mut tx,
                act.participant,
                act.attempt,
                statement,
                act.organiser,
                b"c",
            )
            .unwrap();
        }
        tx.commit();
        let mut rcoi = automerge::Automerge::new();
        let mut tx = rcoi.transaction();
        for s in sheets {
            crate::content::put_receipt(&mut tx, &s.hash(), crate::ingest::RECEIPT_VERIFIED)
                .unwrap();
        }
        for (id, category) in register {
            crate::content::put_registered_category(
                &mut tx,
                ParticipantId::new(id).unwrap(),
                *category,
            )
            .unwrap();
        }
        tx.put(automerge::ROOT, "x", 1).unwrap();
        tx.commit();
        (protocol, rcoi)
    }

    fn counted(
        protocol: &automerge::Automerge,
        rcoi: &automerge::Automerge,
        d: &FixedDirectory,
    ) -> Vec<String> {
        resolve_protocol(
            protocol,
            Some(rcoi),
            (&rules(), &BTreeSet::from([Settler::Chair])),
            |_| d,
        )
        .resolution
        .subjects
        .iter()
        .filter(|(_, r)| r.verdict.current().is_some())
        .map(|(s, _)| s.participant.to_string())
        .collect()
    }

    /// A school cannot spoil an operator's settlement by putting an entry under the operator's
    /// id among its protocol's experts: the operators' settlements are judged by the РЦОИ
    /// document's operator certificates alone. The directory reads certificates as the РЦОИ's
    /// `CaVerifier` does: one that does not check vouches for nobody.
    #[test]
    fn a_schools_entry_under_an_operators_id_does_not_stand_in_for_the_operator() {
        use ed25519_dalek::SigningKey;
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        let (mut protocol, mut rcoi) =
            docs(&[a.clone(), b.clone()], &[], &[("p1", Category::Standard)]);
        let operator = PersonId::new("op-1").unwrap();
        let operator_key = SigningKey::from_bytes(&[42; 32]);
        let region = crate::codes::RegionCode::new("42").unwrap();
        let settlement = Settlement {
            subject: subject("p1"),
            chosen: b.hash(),
            settles: vec![a.hash(), b.hash()],
            reason: "протокол перепроверен".into(),
            operator,
            rcoi: region,
            at: at(90),
        }
        .sign(&operator_key)
        .unwrap();
        let mut tx = rcoi.transaction();
        crate::content::put_settlement(&mut tx, &settlement, operator, b"operator").unwrap();
        tx.commit();
        let mut tx = protocol.transaction();
        tx.put(
            automerge::ROOT,
            "expert/op-1",
            automerge::ScalarValue::Bytes(b"not a certificate".to_vec()),
        )
        .unwrap();
        tx.commit();
        let directory_for = |certs: &std::collections::BTreeMap<String, Vec<u8>>| {
            let mut d = directory();
            if certs.get("op-1").is_some_and(|der| der == b"operator") {
                d.add_person(
                    operator,
                    PersonRole::Operator,
                    OrgCode::Rcoi(region),
                    operator_key.verifying_key(),
                );
            }
            d
        };
        let settled = resolve_protocol(
            &protocol,
            Some(&rcoi),
            (&rules(), &BTreeSet::from([Settler::Chair])),
            directory_for,
        );
        assert!(settled.refused.is_empty(), "{:?}", settled.refused);
        match &settled.resolution.subjects[&subject("p1")].verdict {
            Verdict::Settled { current, .. } => assert_eq!(current.sheet.total, 12),
            other => panic!("not settled: {other:?}"),
        }
    }

    /// Receipted verified, then the register changes (an approval) or an act ends the attempt:
    /// as things stand the sheet no longer counts, at every node that holds both documents.
    /// Expectations written out per participant: p1 standard of record, scored standard; p2
    /// scored standard, now autism of record; p3 scored, then its attempt ended by an act; p4
    /// not in the register (receipted before it existed): its receipt stands.
    #[test]
    fn what_stands_now_decides_after_the_receipt() {
        let organiser = PersonId::new("org-1").unwrap();
        let organiser_key = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
        let mut d = directory();
        d.add_person(
            organiser,
            PersonRole::Organiser,
            OrgCode::School(school()),
            organiser_key.verifying_key(),
        );
        let sheets: Vec<_> = ["p1", "p2", "p3", "p4"]
            .iter()
            .map(|p| sign(draft(p, 12, 1), 1))
            .collect();
        let s = subject("p3");
        let act = Act {
            exam: s.exam,
            school: s.school,
            participant: s.participant,
            attempt: s.attempt,
            room: RoomCode::new("101").unwrap(),
            kind: ActKind::Early(EarlyReason::Health),
            text: String::new(),
            number: crate::room::ActNumber::new("2").unwrap(),
            organiser,
            at: at(40),
        };
        let signed = act.sign(&organiser_key).unwrap();
        let register = [
            ("p1", Category::Standard),
            ("p2", Category::Autism),
            ("p3", Category::Standard),
        ];
        let (protocol, rcoi) = docs(&sheets, &[(act, signed)], &register);
        assert_eq!(counted(&protocol, &rcoi, &d), vec!["p1", "p4"]);
        // Receipted verified, they do not count as things stand; they were not refused on
        // receipt, and do not say so.
        let settled = resolve_protocol(
            &protocol,
            Some(&rcoi),
            (&rules(), &BTreeSet::from([Settler::Chair])),
            |_| &d,
        );
        let why: Vec<(String, String)> = settled
            .resolution
            .subjects
            .iter()
            .flat_map(|(s, r)| {
                r.invalid
                    .iter()
                    .map(move |(_, e)| (s.participant.to_string(), e.to_string()))
            })
            .collect();
        assert_eq!(why.len(), 2, "{why:?}");
        for (participant, reason) in &why {
            assert!(
                reason.starts_with("does not count as things stand: "),
                "{participant}: {reason}"
            );
        }
    }
}
