//! The re-check protocol (seed 002 §72): the reviewing commission's scores from the recording,
//! signed by the reviewing school's head as chair of its commission, naming the experts who
//! listened. It is kept in the reviewing school's protocol (`recheck/HASH`, the head's
//! certificate under `head/ID`), and the РЦОИ copies it, once checked, into its document for the
//! participant's school (`recheck/HASH`, the certificate as `recheck_cert/HASH`), where its
//! result counts over the original sheets' ([`counted`]).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ROOT, ReadDoc, ScalarValue};
use ed25519_dalek::SigningKey;

use super::invalid;
use crate::blob::BlobHash;
use crate::calendar::Timestamp;
use crate::codes::{OrgCode, PersonId, PersonRole, SchoolCode};
use crate::commission::Orders;
use crate::participant::Category;
use crate::record::{RecordHash, SheetSubject, SignerDirectory};
use crate::rules::{CriterionId, Outcome, Rules, RulesId};
use crate::statement::{Statement, StatementError, StatementKind};

/// The experts a re-check may name at most.
pub const EXPERTS_MAX: usize = 8;

/// A re-check protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recheck {
    /// The attempt re-checked, at the participant's own school.
    pub subject: SheetSubject,
    pub reviewer: SchoolCode,
    /// The grant it was made under (the request's hash).
    pub grant: RecordHash,
    /// The recording listened to.
    pub recording: BlobHash,
    pub rules: RulesId,
    pub category: Category,
    /// Points per criterion, in the rules' order for the category.
    pub points: Vec<(CriterionId, u8)>,
    pub total: u16,
    pub outcome: Outcome,
    /// The reviewing commission's experts who listened, ascending, each once.
    pub experts: Vec<PersonId>,
    /// The reviewing school's head, chair of its commission, who signs.
    pub chair: PersonId,
    pub at: Timestamp,
}

/// What the reviewing commission enters before the chair signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub subject: SheetSubject,
    pub reviewer: SchoolCode,
    pub grant: RecordHash,
    pub recording: BlobHash,
    pub category: Category,
    pub points: Vec<(CriterionId, i64)>,
    pub experts: Vec<PersonId>,
    pub chair: PersonId,
    pub at: Timestamp,
}

impl Recheck {
    /// Scores a draft by `rules`; nothing inconsistent is ever signed.
    pub fn score(draft: Draft, rules: &Rules) -> Result<Recheck, StatementError> {
        let scored = rules
            .score(draft.category, &draft.points)
            .map_err(|e| invalid(e.to_string()))?;
        let mut experts = draft.experts;
        experts.sort();
        experts.dedup();
        let recheck = Recheck {
            subject: draft.subject,
            reviewer: draft.reviewer,
            grant: draft.grant,
            recording: draft.recording,
            rules: rules.id,
            category: draft.category,
            points: scored.points,
            total: scored.total,
            outcome: scored.outcome,
            experts,
            chair: draft.chair,
            at: draft.at,
        };
        recheck.check(rules)?;
        Ok(recheck)
    }

    /// Signs the protocol with the chair's person key.
    pub fn sign(&self, key: &SigningKey) -> Result<Statement, StatementError> {
        let mut fields = crate::statement::Fields::new()
            .with_subject(self.subject)
            .with("reviewer", self.reviewer)
            .with("grant", self.grant)
            .with("recording", self.recording)
            .with("rules", self.rules)
            .with("category", self.category.id());
        for (id, p) in &self.points {
            fields = fields.with("point", format!("{id} {p}"));
        }
        fields = fields
            .with("total", self.total)
            .with("outcome", self.outcome.id());
        for e in &self.experts {
            fields = fields.with("expert", e);
        }
        let fields = fields.with("chair", self.chair).with("at", self.at);
        Statement::sign(StatementKind::Recheck, &fields, key)
    }

    /// What the record says by itself: another school's commission, at least one expert and
    /// no more than [`EXPERTS_MAX`], each once, and the score the rules give its points.
    fn check(&self, rules: &Rules) -> Result<(), StatementError> {
        if self.reviewer == self.subject.school {
            return Err(invalid(format!(
                "school {} re-checks its own participant: the re-check is by another school's commission (§71)",
                self.reviewer
            )));
        }
        if self.experts.is_empty() || self.experts.len() > EXPERTS_MAX {
            return Err(invalid(format!(
                "a re-check names 1..={EXPERTS_MAX} experts of the commission, not {}",
                self.experts.len()
            )));
        }
        if !self.experts.windows(2).all(|w| w[0] < w[1]) {
            return Err(invalid("the experts are listed ascending, each once"));
        }
        if self.rules != rules.id {
            return Err(invalid(format!(
                "scored by rules {}, these are {}",
                self.rules, rules.id
            )));
        }
        let (total, outcome) = rules
            .total(
                self.category,
                self.points.iter().map(|&(id, p)| (id, i64::from(p))),
            )
            .map_err(|e| invalid(e.to_string()))?;
        if (total, outcome) != (self.total, self.outcome) {
            return Err(invalid(format!(
                "the protocol says {} {}, its points give {total} {}",
                self.total,
                self.outcome.id(),
                outcome.id()
            )));
        }
        Ok(())
    }

    /// The attempt a stored protocol claims to re-check, before anything is verified.
    pub fn claimed_subject(statement: &Statement) -> Result<SheetSubject, StatementError> {
        statement
            .fields_unverified(StatementKind::Recheck)?
            .subject()
    }

    /// The chair a stored protocol claims, before anything is verified.
    pub fn claimed(statement: &Statement) -> Result<PersonId, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Recheck)?;
        PersonId::new(fields.get("chair")?).map_err(|e| invalid(e.to_string()))
    }

    /// Checks a stored protocol: its fields and score by `rules`, and the signature by a
    /// person the region's CA certifies as head of the reviewing school at the time it names.
    pub fn verify(
        statement: &Statement,
        heads: &dyn SignerDirectory,
        rules: &Rules,
    ) -> Result<Recheck, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Recheck)?;
        let points = fields
            .all("point")
            .map(|line| {
                let (id, p) = line
                    .split_once(' ')
                    .ok_or_else(|| invalid(format!("point {line:?}: CRITERION POINTS")))?;
                let id = CriterionId::new(id).map_err(|e| invalid(e.to_string()))?;
                let p: u8 = p
                    .parse()
                    .map_err(|_| invalid(format!("point {line:?}: points 0..=255")))?;
                Ok((id, p))
            })
            .collect::<Result<Vec<_>, StatementError>>()?;
        let experts = fields
            .all("expert")
            .map(|e| PersonId::new(e).map_err(|e| invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let recheck = Recheck {
            subject: fields.subject()?,
            reviewer: SchoolCode::new(fields.get("reviewer")?)
                .map_err(|e| invalid(e.to_string()))?,
            grant: fields.parse("grant")?,
            recording: fields.parse("recording")?,
            rules: fields.parse("rules")?,
            category: fields.parse("category")?,
            points,
            total: fields.parse("total")?,
            outcome: fields.parse("outcome")?,
            experts,
            chair: Self::claimed(statement)?,
            at: fields.parse("at")?,
        };
        recheck.check(rules)?;
        let key = heads
            .person_key(
                PersonRole::Head,
                recheck.chair,
                OrgCode::School(recheck.reviewer),
                recheck.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::Recheck, &key)?;
        Ok(recheck)
    }

    /// Checks the protocol against the reviewing school's commission orders for exams of the
    /// same kind (the reviewing school need not have held the participant's date): the order in
    /// force when it was signed (the newest dated no later; of one date, the latest edition) was
    /// signed by the chair and names every expert it lists, in any room.
    pub fn check_commission(&self, orders: &Orders) -> Result<(), StatementError> {
        let kind = self.subject.exam.kind();
        let in_force = orders
            .editions
            .iter()
            .filter(|o| o.exam.kind() == kind && o.school == self.reviewer)
            .filter(|o| o.at <= self.at)
            .max_by_key(|o| (o.at, o.exam, o.edition))
            .ok_or_else(|| {
                invalid(format!(
                    "school {} has no commission order for {kind} in force at {}",
                    self.reviewer, self.at
                ))
            })?;
        if in_force.head != self.chair {
            return Err(invalid(format!(
                "the commission order in force (edition {}) was signed by head {}, not {}",
                in_force.edition, in_force.head, self.chair
            )));
        }
        for expert in &self.experts {
            if !in_force.rooms.iter().any(|r| r.experts.contains(expert)) {
                return Err(invalid(format!(
                    "the commission order in force (edition {}) of school {} does not name {expert} an expert",
                    in_force.edition, self.reviewer
                )));
            }
        }
        Ok(())
    }
}

/// Adds the chair's signed protocol to the reviewing school's protocol, with the chair's
/// certificate under `head/ID`.
pub fn put_signed(
    tx: &mut impl Transactable,
    statement: &Statement,
    chair: PersonId,
    cert: &[u8],
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("recheck/{}", statement.hash()),
        ScalarValue::Bytes(statement.as_bytes().to_vec()),
    )?;
    tx.put(
        ROOT,
        format!("head/{chair}"),
        ScalarValue::Bytes(cert.to_vec()),
    )?;
    Ok(())
}

/// At the РЦОИ: copies a checked protocol into its document for the participant's school, with
/// the certificate it was signed under.
pub fn put_counted(
    tx: &mut impl Transactable,
    statement: &Statement,
    cert: &[u8],
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("recheck/{}", statement.hash()),
        ScalarValue::Bytes(statement.as_bytes().to_vec()),
    )?;
    tx.put(
        ROOT,
        format!("recheck_cert/{}", statement.hash()),
        ScalarValue::Bytes(cert.to_vec()),
    )?;
    Ok(())
}

/// The re-check protocols under `recheck/` in a document (a reviewing school's protocol, or the
/// РЦОИ's document for the participant's school), undecodable ones skipped.
pub fn stored(doc: &impl ReadDoc) -> Vec<Statement> {
    doc.map_range(ROOT, crate::recording::range_of("recheck/"))
        .filter_map(|item| Statement::from_bytes(crate::content::bytes(doc, &item.key)?).ok())
        .collect()
}

/// Whether a document holds the re-check protocol `hash`.
#[must_use]
pub fn holds(doc: &impl ReadDoc, hash: RecordHash) -> bool {
    crate::content::bytes(doc, &format!("recheck/{hash}")).is_some()
}

/// The re-checks that count, by attempt, each with its hash.
pub type Counted = BTreeMap<SheetSubject, (RecordHash, Recheck)>;

/// The re-checks whose result counts at a school: the protocols in the РЦОИ's document for it
/// that verify under the certificate kept with each, by attempt. Of two for one attempt (two
/// grants), the later counts, then the greater hash. Those that do not verify are returned apart.
pub fn counted<D: SignerDirectory>(
    rcoi: &impl ReadDoc,
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
) -> (Counted, crate::settlement::Refused) {
    let (mut counted, mut refused) = (BTreeMap::new(), Vec::new());
    for statement in stored(rcoi) {
        let hash = statement.hash();
        let cert = crate::content::bytes(rcoi, &format!("recheck_cert/{hash}"));
        let checked = Recheck::claimed(&statement).and_then(|chair| {
            let certs = cert
                .map(|c| BTreeMap::from([(chair.as_str().to_owned(), c)]))
                .unwrap_or_default();
            Recheck::verify(&statement, &directory_for(&certs), rules)
        });
        match checked {
            Ok(r) => {
                let newer = counted
                    .get(&r.subject)
                    .is_none_or(|(h, old): &(RecordHash, Recheck)| (r.at, hash) > (old.at, *h));
                if newer {
                    counted.insert(r.subject, (hash, r));
                }
            }
            Err(e) => refused.push((hash, e)),
        }
    }
    (counted, refused)
}
