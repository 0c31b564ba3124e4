//! Re-check by another school's commission (seed 002 §71–73).
//!
//! A participant whose second attempt ended in «незачёт» may apply, by the year's deadline
//! (`crate::year::RecheckTerms::apply_by`, 1 April in 2024), to a school of their choice to have
//! the recording of their answer checked by that school's commission. The way through the
//! documents, each record written where only its author may write:
//!
//! 1. **The request** ([`Request`]): the head of the chosen (reviewing) school signs it into its
//!    own protocol (`recheck_request/HASH`, the head's certificate under `head/ID`).
//! 2. **The grant** ([`grant::Grant`]): the РЦОИ checks the request against what it holds — the
//!    participant's counted result for that attempt is «незачёт», it is not their first attempt,
//!    the application is in time, the РЦОИ holds the participant's recording — and writes into
//!    *its* document for the reviewing school (`grant/ID/…`, ID the request's hash) that one
//!    recording (named as a protocol names it, `rec/HASH/…`), that participant's sheets of the
//!    attempt with their experts' certificates, the category of record and the grant's term.
//!    The reviewing school reads its РЦОИ document, and a blob is given only to a peer that may
//!    read a document naming it ([`crate::blob::transfer`]): so the reviewing school, and the
//!    МОУО that carries the recording to it, may fetch that recording and no other of the first
//!    school's. A refused request gets `grant/ID/refused` with the reason, and nothing else.
//! 3. **The re-check protocol** ([`verdict::Recheck`]): the reviewing school's head, as chair of
//!    its commission, signs the scores the commission gave from the recording, naming the experts
//!    who listened, into the reviewing school's protocol (`recheck/HASH`).
//! 4. **What counts**: the РЦОИ verifies the protocol (the chair's certificate, the experts named
//!    in the reviewing school's commission order in force, the scores by the rules, a live grant
//!    for the same attempt) and copies it into its document for the participant's own school
//!    (`recheck/HASH`, the chair's certificate as `recheck_cert/HASH`), where the school's
//!    resolution takes its result over the original sheets' ([`counted`]), and closes the grant
//!    (`grant/ID/closed`). The applicant is informed under signature within
//!    `RecheckTerms::familiarise_days` (3, §73) of the re-check.
//!
//! A grant also ends when its term passes: the РЦОИ closes it, and from then on no node gives
//! the recording to the reviewing school and the reviewing school drops its copy.

pub mod grant;
pub mod verdict;

use ed25519_dalek::SigningKey;

use crate::calendar::{Date, Timestamp};
use crate::codes::{OrgCode, PersonId, PersonRole, SchoolCode};
use crate::record::{SheetSubject, SignerDirectory};
use crate::statement::{Fields, Statement, StatementError, StatementKind};

pub use grant::Grant;
pub use verdict::{Recheck, counted};

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

fn parsed<T: std::str::FromStr>(fields: &Fields, key: &str) -> Result<T, StatementError>
where
    T::Err: std::fmt::Display,
{
    fields.parse(key)
}

/// The head of the reviewing school asks the РЦОИ for a participant's recording (§71: «по
/// письменному запросу руководителя образовательной организации, в которую было подано
/// заявление»).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The attempt to be re-checked, at the participant's own school.
    pub subject: SheetSubject,
    /// The day the participant filed the application at the reviewing school.
    pub applied: Date,
    /// The school the participant chose.
    pub reviewer: SchoolCode,
    /// Its head, who signs.
    pub head: PersonId,
    pub at: Timestamp,
}

impl Request {
    /// Signs the request with the head's person key.
    pub fn sign(&self, key: &SigningKey) -> Result<Statement, StatementError> {
        self.check()?;
        let fields = Fields::new()
            .with_subject(self.subject)
            .with("applied", self.applied)
            .with("reviewer", self.reviewer)
            .with("head", self.head)
            .with("at", self.at);
        Statement::sign(StatementKind::RecheckRequest, &fields, key)
    }

    fn check(&self) -> Result<(), StatementError> {
        if self.reviewer == self.subject.school {
            return Err(invalid(format!(
                "school {} cannot re-check its own participant: the re-check is by another school's commission (§71)",
                self.reviewer
            )));
        }
        Ok(())
    }

    /// The head a stored request claims, before anything is verified.
    pub fn claimed(statement: &Statement) -> Result<PersonId, StatementError> {
        let fields = statement.fields_unverified(StatementKind::RecheckRequest)?;
        PersonId::new(fields.get("head")?).map_err(|e| invalid(e.to_string()))
    }

    /// What a stored request says, its signature not checked (a grant's copy, which the РЦОИ
    /// checked before granting).
    pub fn read_unverified(statement: &Statement) -> Result<Request, StatementError> {
        let fields = statement.fields_unverified(StatementKind::RecheckRequest)?;
        let request = Request {
            subject: fields.subject()?,
            applied: parsed(&fields, "applied")?,
            reviewer: SchoolCode::new(fields.get("reviewer")?)
                .map_err(|e| invalid(e.to_string()))?,
            head: PersonId::new(fields.get("head")?).map_err(|e| invalid(e.to_string()))?,
            at: fields.parse("at")?,
        };
        request.check()?;
        Ok(request)
    }

    /// Checks a stored request: its fields, and the signature by a person the region's CA
    /// certifies as head of the reviewing school at the time the request names.
    pub fn verify(
        statement: &Statement,
        heads: &dyn SignerDirectory,
    ) -> Result<Request, StatementError> {
        let request = Self::read_unverified(statement)?;
        let key = heads
            .person_key(
                PersonRole::Head,
                request.head,
                OrgCode::School(request.reviewer),
                request.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::RecheckRequest, &key)?;
        Ok(request)
    }
}

/// The requests under `recheck_request/` in a reviewing school's protocol, undecodable ones
/// skipped.
pub fn stored_requests(protocol: &impl automerge::ReadDoc) -> Vec<Statement> {
    protocol
        .map_range(
            automerge::ROOT,
            crate::recording::range_of("recheck_request/"),
        )
        .filter_map(|item| Statement::from_bytes(crate::content::bytes(protocol, &item.key)?).ok())
        .collect()
}

/// Adds the head's signed request to the reviewing school's protocol, with the head's
/// certificate under `head/ID`.
pub fn put_request(
    tx: &mut impl automerge::transaction::Transactable,
    statement: &Statement,
    head: PersonId,
    cert: &[u8],
) -> Result<(), automerge::AutomergeError> {
    use automerge::{ROOT, ScalarValue};
    tx.put(
        ROOT,
        format!("recheck_request/{}", statement.hash()),
        ScalarValue::Bytes(statement.as_bytes().to_vec()),
    )?;
    tx.put(
        ROOT,
        format!("head/{head}"),
        ScalarValue::Bytes(cert.to_vec()),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
