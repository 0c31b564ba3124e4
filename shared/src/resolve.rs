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
    /// A conflict a РЦОИ operator settled with a signed record (`crate::settlement`): the sheet
    /// that counts, the settlement's hash, and the heads it set aside (kept, not dropped).
    Settled {
        current: Box<VerifiedSheet>,
        settlement: RecordHash,
        set_aside: Vec<RecordHash>,
    },
}

impl Verdict {
    /// The sheet that counts, if one does.
    #[must_use]
    pub fn current(&self) -> Option<&VerifiedSheet> {
        match self {
            Verdict::Current(v) | Verdict::Settled { current: v, .. } => Some(v),
            Verdict::Unscored | Verdict::Conflict(_) => None,
        }
    }
}

/// The verdict, and every record that was not counted with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub verdict: Verdict,
    /// Valid sheets replaced by a correction, ascending by hash.
    pub superseded: Vec<RecordHash>,
    /// Refused records, each named by the SHA-256 of its whole bytes (content and signature: a
    /// tampered copy shares its content with the genuine record), ascending.
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
    let checked = records
        .iter()
        .zip(verify_many(records, rules, directory))
        .map(|(record, result)| {
            let result = result.and_then(|v| {
                if v.sheet.subject == subject {
                    Ok(v)
                } else {
                    Err(SheetError::WrongSubject {
                        expected: subject.to_string(),
                        found: v.sheet.subject.to_string(),
                    })
                }
            });
            (RecordHash::of(record.as_bytes()), result)
        });
    settle(checked)
}

/// Every participant's resolution in a set of records (a protocol's sheets), verifying each
/// record once. Records whose content does not even decode name no participant: they are
/// returned apart, by the SHA-256 of their bytes.
#[must_use]
pub fn resolve_all(
    records: &[SignedSheet],
    rules: &Rules,
    directory: &dyn SignerDirectory,
) -> ProtocolResolution {
    resolve_all_receipted(records, rules, directory, &BTreeMap::new())
}

/// As [`resolve_all`], with sheets that verify counted invalid all the same when `refused` maps
/// their hash (as a receipt names it) to why: the РЦОИ refused them on receipt
/// ([`SheetError::RefusedOnReceipt`]), or as things stand they do not count
/// ([`SheetError::DoesNotCount`]).
#[must_use]
pub fn resolve_all_receipted(
    records: &[SignedSheet],
    rules: &Rules,
    directory: &dyn SignerDirectory,
    refused: &BTreeMap<String, SheetError>,
) -> ProtocolResolution {
    type Checked = Vec<(RecordHash, Result<VerifiedSheet, SheetError>)>;
    let mut by_subject: BTreeMap<SheetSubject, Checked> = BTreeMap::new();
    let mut unattributed = BTreeMap::new();
    for (record, result) in records.iter().zip(verify_many(records, rules, directory)) {
        let result = match result {
            Ok(_) if !refused.is_empty() => match refused.get(&record.hash().to_string()) {
                Some(why) => Err(why.clone()),
                None => result,
            },
            other => other,
        };
        let whole = RecordHash::of(record.as_bytes());
        let subject = match &result {
            Ok(v) => Some(v.sheet.subject),
            Err(_) => record.decode_unverified().ok().map(|s| s.subject),
        };
        match subject {
            Some(subject) => by_subject.entry(subject).or_default().push((whole, result)),
            None => {
                if let Err(e) = result {
                    unattributed.insert(whole, e);
                }
            }
        }
    }
    ProtocolResolution {
        subjects: by_subject
            .into_iter()
            .map(|(subject, checked)| (subject, settle(checked)))
            .collect(),
        unattributed: unattributed.into_iter().collect(),
    }
}

/// The resolutions of every participant named in a set of records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolResolution {
    pub subjects: BTreeMap<SheetSubject, Resolution>,
    /// Records that do not decode, with the reason, ascending by the SHA-256 of their bytes.
    pub unattributed: Vec<(RecordHash, SheetError)>,
}

impl ProtocolResolution {
    /// The participants whose valid sheets conflict.
    pub fn conflicts(&self) -> impl Iterator<Item = (&SheetSubject, &[VerifiedSheet])> {
        self.subjects.iter().filter_map(|(s, r)| match &r.verdict {
            Verdict::Conflict(heads) => Some((s, heads.as_slice())),
            _ => None,
        })
    }
}

/// The verdict over checked records of one subject: (SHA-256 of the record's bytes, check).
fn settle(
    checked: impl IntoIterator<Item = (RecordHash, Result<VerifiedSheet, SheetError>)>,
) -> Resolution {
    let mut valid: BTreeMap<RecordHash, VerifiedSheet> = BTreeMap::new();
    let mut invalid: BTreeMap<RecordHash, SheetError> = BTreeMap::new();
    for (whole, result) in checked {
        match result {
            Ok(v) => {
                valid.insert(v.hash, v);
            }
            Err(e) => {
                invalid.insert(whole, e);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::fixtures::*;
    use crate::record::{Attempt, SignerError};
    use proptest::prelude::*;

    fn run(records: &[SignedSheet]) -> Resolution {
        resolve(subject("p1"), records, &rules(), &directory())
    }

    fn current_total(r: &Resolution) -> u16 {
        match &r.verdict {
            Verdict::Current(v) => v.sheet.total,
            other => panic!("expected a current sheet, got {other:?}"),
        }
    }

    fn tampered(s: &SignedSheet) -> SignedSheet {
        let mut bytes = s.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        SignedSheet::from_bytes(bytes).unwrap()
    }

    #[test]
    fn nothing_is_unscored() {
        assert_eq!(run(&[]).verdict, Verdict::Unscored);
    }

    #[test]
    fn resolve_all_agrees_with_resolving_each_participant() {
        // The fixtures' corrections are about p1.
        let p1 = sign(draft("p1", 8, 1), 1);
        let p1_fixed = correction(&[&p1], 12, 1);
        let p2_a = sign(draft("p2", 9, 1), 1);
        let p2_b = sign(draft("p2", 10, 2), 2);
        let p3_bad = tampered(&sign(draft("p3", 7, 1), 1));
        let garbage = SignedSheet::from_bytes(vec![1, 2, 3]);
        let mut all = vec![
            p2_a.clone(),
            p1.clone(),
            p2_b.clone(),
            p1_fixed.clone(),
            p3_bad,
        ];
        all.extend(garbage.ok());
        let whole = resolve_all(&all, &rules(), &directory());
        assert_eq!(
            whole.subjects[&subject("p1")],
            resolve(subject("p1"), &[p1, p1_fixed], &rules(), &directory())
        );
        assert_eq!(
            whole.subjects[&subject("p2")],
            resolve(subject("p2"), &[p2_a, p2_b], &rules(), &directory())
        );
        assert_eq!(whole.subjects[&subject("p3")].verdict, Verdict::Unscored);
        assert_eq!(whole.subjects[&subject("p3")].invalid.len(), 1);
        assert_eq!(whole.conflicts().count(), 1);
        assert_eq!(whole.subjects.len(), 3);
    }

    #[test]
    fn a_correction_replaces_what_it_supersedes() {
        let first = sign(draft("p1", 8, 1), 1);
        let fixed = correction(&[&first], 11, 1);
        let r = run(&[fixed.clone(), first.clone()]);
        assert_eq!(current_total(&r), 11);
        assert_eq!(r.superseded, vec![first.hash()]);
        assert!(r.invalid.is_empty());
    }

    #[test]
    fn two_sheets_without_supersession_are_a_conflict_until_settled() {
        let a = sign(draft("p1", 8, 1), 1);
        let b = sign(draft("p1", 12, 2), 2);
        let r = run(&[a.clone(), b.clone()]);
        let Verdict::Conflict(heads) = &r.verdict else {
            panic!("expected a conflict, got {:?}", r.verdict)
        };
        let mut expected = vec![a.hash(), b.hash()];
        expected.sort();
        assert_eq!(heads.iter().map(|h| h.hash).collect::<Vec<_>>(), expected);
        // A later sheet is not a winner by time: it is one more head.
        let c = sign(draft("p1", 15, 3), 3);
        let Verdict::Conflict(heads) = run(&[a.clone(), b.clone(), c]).verdict else {
            panic!()
        };
        assert_eq!(heads.len(), 3);
        // A signed record superseding both settles it.
        let settle = correction(&[&a, &b], 12, 4);
        assert_eq!(current_total(&run(&[a, b, settle])), 12);
    }

    #[test]
    fn invalid_records_are_listed_and_never_count() {
        let first = sign(draft("p1", 8, 1), 1);
        let bad_fix = tampered(&correction(&[&first], 15, 1));
        let other = sign(draft("p2", 20, 1), 1);
        let mut dir = directory();
        dir.revoke(crate::record::fixtures::expert(2), at(-1));
        let by_revoked = sign(draft("p1", 20, 2), 2);
        let r = resolve(
            subject("p1"),
            &[
                first.clone(),
                bad_fix.clone(),
                other.clone(),
                by_revoked.clone(),
            ],
            &rules(),
            &dir,
        );
        assert_eq!(
            current_total(&r),
            8,
            "a tampered correction supersedes nothing"
        );
        let reasons: BTreeMap<RecordHash, SheetError> = r.invalid.into_iter().collect();
        assert_eq!(reasons.len(), 3);
        let id = |s: &SignedSheet| RecordHash::of(s.as_bytes());
        assert_eq!(reasons[&id(&bad_fix)], SheetError::BadSignature);
        assert!(matches!(
            reasons[&id(&other)],
            SheetError::WrongSubject { .. }
        ));
        assert!(matches!(
            reasons[&id(&by_revoked)],
            SheetError::Signer(SignerError::Revoked { .. })
        ));
    }

    #[test]
    fn another_attempt_is_another_subject() {
        let mut d = draft("p1", 12, 1);
        d.subject.attempt = Attempt::new(2).unwrap();
        let retake = sign(d, 1);
        let r = run(&[retake]);
        assert_eq!(r.verdict, Verdict::Unscored);
        assert_eq!(r.invalid.len(), 1);
    }

    /// A history of up to 6 sheets for p1: first sheets by different experts, corrections of
    /// earlier ones, tampered copies and a record about someone else.
    fn history() -> impl Strategy<Value = Vec<SignedSheet>> {
        prop::collection::vec(
            (0u8..4, 0u16..=20, 1u8..=4, any::<prop::sample::Index>()),
            1..6,
        )
        .prop_map(|steps| {
            let mut out: Vec<SignedSheet> = Vec::new();
            for (kind, total, expert_n, pick) in steps {
                let sheet = match (kind, out.is_empty()) {
                    (0, _) | (_, true) => sign(draft("p1", total, expert_n), expert_n),
                    (1, false) => {
                        let target = out[pick.index(out.len())].clone();
                        correction(&[&target], total, expert_n)
                    }
                    (2, false) => tampered(&out[pick.index(out.len())]),
                    _ => sign(draft("p2", total, expert_n), expert_n),
                };
                out.push(sheet);
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arrival_order_and_repetition_never_change_the_verdict(
            (records, shuffled) in history().prop_flat_map(|h| {
                let mut doubled = h.clone();
                doubled.extend(h.iter().take(2).cloned());
                (Just(h), Just(doubled).prop_shuffle())
            })
        ) {
            prop_assert_eq!(run(&records), run(&shuffled));
        }
    }
}
