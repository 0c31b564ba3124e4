//! The current score sheet of a participant's attempt, from all its records in any order.
//!
//! Records form a supersession graph: a correction names the hashes of the sheets it replaces.
//! The *heads* are the valid sheets no valid sheet supersedes. One head is the current sheet;
//! several are a **conflict** that a person must settle with a signed record. Nothing is decided
//! by arrival order or by time stamps (never last-writer-wins), so every node that holds the same
//! set of records reaches the same verdict.

use std::collections::{BTreeMap, BTreeSet};

use crate::record::{
    RecordHash, SheetError, SheetSubject, SignedSheet, SignerDirectory, VerifiedSheet, verify_many,
};
use crate::rules::Rules;

/// The verdict on one participant's attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No valid sheet yet.
    Unscored,
    /// Exactly one valid sheet is not superseded.
    Current(Box<VerifiedSheet>),
    /// Two or more valid sheets with no supersession between them, ascending by hash.
    Conflict(Vec<VerifiedSheet>),
}

/// The verdict, and every record that was not counted with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub verdict: Verdict,
    /// Valid sheets replaced by a correction, ascending by hash.
    pub superseded: Vec<RecordHash>,
    /// Refused records, ascending by the SHA-256 of their content.
    pub invalid: Vec<(RecordHash, SheetError)>,
}

/// Resolves the records of `subject`. Records about anything else are listed as invalid.
/// The result depends only on the set of records, not on their order or repetition.
pub fn resolve(
    subject: SheetSubject,
    records: &[SignedSheet],
    rules: &Rules,
    directory: &dyn SignerDirectory,
) -> Resolution {
    let mut valid: BTreeMap<RecordHash, VerifiedSheet> = BTreeMap::new();
    let mut invalid: BTreeMap<RecordHash, SheetError> = BTreeMap::new();
    for (record, result) in records.iter().zip(verify_many(records, rules, directory)) {
        let checked = result.and_then(|v| {
            if v.sheet.subject == subject {
                Ok(v)
            } else {
                Err(SheetError::WrongSubject {
                    expected: subject.to_string(),
                    found: v.sheet.subject.to_string(),
                })
            }
        });
        match checked {
            Ok(v) => {
                valid.insert(v.hash, v);
            }
            Err(e) => {
                invalid.insert(record.hash(), e);
            }
        }
    }
    let superseded_by_valid: BTreeSet<RecordHash> = valid
        .values()
        .filter_map(|v| v.sheet.correction.as_ref())
        .flat_map(|c| c.supersedes.iter().copied())
        .collect();
    let valid_count = valid.len();
    let superseded: Vec<RecordHash> = valid
        .keys()
        .filter(|h| superseded_by_valid.contains(h))
        .copied()
        .collect();
    let mut heads: Vec<VerifiedSheet> = valid
        .into_iter()
        .filter(|(h, _)| !superseded_by_valid.contains(h))
        .map(|(_, v)| v)
        .collect();
    // A hash names the content that names the hashes it supersedes, so no cycle can exist and a
    // non-empty set of valid sheets always has a head.
    debug_assert!(
        valid_count == 0 || !heads.is_empty(),
        "supersession is acyclic"
    );
    debug_assert_eq!(heads.len() + superseded.len(), valid_count);
    let verdict = match heads.len() {
        0 => Verdict::Unscored,
        1 => Verdict::Current(Box::new(heads.remove(0))),
        _ => Verdict::Conflict(heads),
    };
    Resolution {
        verdict,
        superseded,
        invalid: invalid.into_iter().collect(),
    }
}
