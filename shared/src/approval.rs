//! A РЦОИ operator's approval of a participant's category of record (seed 002 §4, §27). The
//! category sets the criteria and the pass mark, and the РЦОИ keeps the regional register (§27:
//! «Сведения … вносятся РЦОИ в РИС»), so a school's correction of a category is only a request
//! until an operator approves it on the papers that confirm it (§4: the ПМПК's recommendations,
//! or the МСЭ's certificate of a disability). The approval is a statement signed by the operator's
//! person key (`crate::statement`), stored in the school's РЦОИ document (`approval/HASH`, the
//! operator's certificate beside it under `operator/ID`) with the register's new category, so
//! every node can show who approved the category, on which papers and when.

use ed25519_dalek::SigningKey;

use crate::calendar::Timestamp;
use crate::codes::{OrgCode, ParticipantId, PersonId, PersonRole, RegionCode, SchoolCode};
use crate::exam::ExamId;
use crate::participant::Category;
use crate::record::SignerDirectory;
use crate::statement::{Fields, Statement, StatementError, StatementKind};

/// The longest name of the papers an approval rests on, in characters.
pub const APPROVAL_BASIS_CHARS_MAX: usize = 200;

/// What an operator approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryApproval {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    /// The participant's category of record from now on.
    pub category: Category,
    /// The papers that confirm it, e.g. «заключение ПМПК № 12 от 01.02.2024».
    pub basis: String,
    pub operator: PersonId,
    pub rcoi: RegionCode,
    pub at: Timestamp,
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

fn check_basis(basis: &str) -> Result<(), StatementError> {
    let count = basis.trim().chars().count();
    if count == 0 || count > APPROVAL_BASIS_CHARS_MAX {
        return Err(invalid(format!(
            "the basis names the papers that confirm the category: 1..={APPROVAL_BASIS_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

impl CategoryApproval {
    /// Signs the approval with the operator's key.
    pub fn sign(&self, key: &SigningKey) -> Result<Statement, StatementError> {
        check_basis(&self.basis)?;
        let fields = Fields::new()
            .with("exam", self.exam)
            .with("school", self.school)
            .with("participant", self.participant)
            .with("category", self.category.id())
            .with("basis", self.basis.trim())
            .with("operator", self.operator)
            .with("rcoi", self.rcoi)
            .with("at", self.at);
        Statement::sign(StatementKind::CategoryApproval, &fields, key)
    }

    /// Checks a stored approval: its fields, and its signature by an operator the directory
    /// certifies for the РЦОИ at the time it names.
    pub fn verify(
        statement: &Statement,
        directory: &dyn SignerDirectory,
    ) -> Result<CategoryApproval, StatementError> {
        let fields = statement.fields_unverified(StatementKind::CategoryApproval)?;
        let text = |key: &str| fields.get(key);
        let approval = CategoryApproval {
            exam: fields.parse("exam")?,
            school: SchoolCode::new(text("school")?).map_err(|e| invalid(e.to_string()))?,
            participant: ParticipantId::new(text("participant")?)
                .map_err(|e| invalid(e.to_string()))?,
            category: fields.parse("category")?,
            basis: text("basis")?.to_owned(),
            operator: PersonId::new(text("operator")?).map_err(|e| invalid(e.to_string()))?,
            rcoi: RegionCode::new(text("rcoi")?).map_err(|e| invalid(e.to_string()))?,
            at: fields.parse("at")?,
        };
        check_basis(&approval.basis)?;
        let key = directory
            .person_key(
                PersonRole::Operator,
                approval.operator,
                OrgCode::Rcoi(approval.rcoi),
                approval.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::CategoryApproval, &key)?;
        Ok(approval)
    }
}

/// The latest approval of each participant that verifies, by participant, from a school's РЦОИ
/// document (`directory_for` makes a directory of the stored operators' certificates).
pub fn approvals<D: SignerDirectory>(
    rcoi: &impl automerge::ReadDoc,
    directory_for: impl Fn(&std::collections::BTreeMap<String, Vec<u8>>) -> D,
) -> std::collections::BTreeMap<ParticipantId, CategoryApproval> {
    let directory = directory_for(&crate::content::operator_certs(rcoi));
    let mut out: std::collections::BTreeMap<ParticipantId, CategoryApproval> = Default::default();
    for statement in crate::content::approvals(rcoi) {
        let Ok(approval) = CategoryApproval::verify(&statement, &directory) else {
            continue;
        };
        match out.get(&approval.participant) {
            Some(held) if held.at >= approval.at => {}
            _ => {
                out.insert(approval.participant, approval);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;
    use crate::record::FixedDirectory;
    use crate::record::fixtures::{at, key, school};

    fn approval() -> CategoryApproval {
        CategoryApproval {
            exam: "is-2024-02-14".parse().unwrap(),
            school: school(),
            participant: ParticipantId::new("p1").unwrap(),
            category: Category::Autism,
            basis: "заключение ПМПК № 12 от 01.02.2024".into(),
            operator: PersonId::new("op-1").unwrap(),
            rcoi: RegionCode::new("42").unwrap(),
            at: at(5),
        }
    }

    fn directory(role: PersonRole) -> FixedDirectory {
        let mut d = FixedDirectory::default();
        d.add_person(
            PersonId::new("op-1").unwrap(),
            role,
            OrgCode::Rcoi(RegionCode::new("42").unwrap()),
            key(9).verifying_key(),
        );
        d
    }

    #[test]
    fn an_operators_approval_verifies_and_nothing_else_does() {
        let signed = approval().sign(&key(9)).unwrap();
        assert_eq!(
            CategoryApproval::verify(&signed, &directory(PersonRole::Operator)).unwrap(),
            approval()
        );
        // Another key, or a person certified in another role, does not approve.
        let forged = approval().sign(&key(8)).unwrap();
        assert!(CategoryApproval::verify(&forged, &directory(PersonRole::Operator)).is_err());
        assert!(CategoryApproval::verify(&signed, &directory(PersonRole::Coordinator)).is_err());
        // The text is what was signed: a changed category fails the signature.
        let text = String::from_utf8_lossy(signed.as_bytes()).replace("autism", "standard");
        let changed = Statement::from_bytes(text.into_bytes()).unwrap();
        assert!(CategoryApproval::verify(&changed, &directory(PersonRole::Operator)).is_err());
    }

    #[test]
    fn an_approval_names_its_papers() {
        for basis in ["", "   ", &"я".repeat(APPROVAL_BASIS_CHARS_MAX + 1)] {
            let mut a = approval();
            a.basis = basis.to_owned();
            assert!(a.sign(&key(9)).is_err(), "{basis:?}");
        }
    }
}
