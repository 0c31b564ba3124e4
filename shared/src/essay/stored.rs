//! The РЦОИ's processed results of итоговое сочинение (изложение), kept in its document for each
//! school (which only the РЦОИ writes) until it publishes them:
//!
//! | key | value |
//! |---|---|
//! | `essay/ID/form` | `essay` or `summary` |
//! | `essay/ID/mark/MARK` | `pass` or `fail`, per requirement and criterion the processing gave |
//! | `essay/ID/outcome` | `pass` or `fail`, as the year's rules give it from the marks |
//! | `processed` | when the РЦОИ took in the processing's results for the school (ms): the anchor of the informing chain (seed 003 §2.2) |
//!
//! An import replaces a participant's marks whole (a correction from processing).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ROOT, ReadDoc, ScalarValue};

use super::EssayForm;
use crate::calendar::Timestamp;
use crate::codes::ParticipantId;
use crate::rules::Outcome;

/// A participant's processed result as the РЦОИ keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEssay {
    pub form: EssayForm,
    /// «зачёт» (true) or «незачёт» per mark id.
    pub marks: BTreeMap<String, bool>,
    pub outcome: Outcome,
}

fn key(participant: ParticipantId, field: &str) -> String {
    format!("essay/{participant}/{field}")
}

fn pass(yes: bool) -> &'static str {
    if yes { "pass" } else { "fail" }
}

/// Writes a participant's result, removing marks an earlier import gave that this one does not.
pub fn put(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    result: &StoredEssay,
) -> Result<(), AutomergeError> {
    let prefix = key(participant, "mark/");
    let old: Vec<String> = tx
        .map_range(ROOT, crate::recording::range_of(&prefix))
        .map(|item| item.key.to_string())
        .collect();
    for k in old {
        let id = k.strip_prefix(&prefix).unwrap_or_default();
        if !result.marks.contains_key(id) {
            tx.delete(ROOT, k.as_str())?;
        }
    }
    tx.put(ROOT, key(participant, "form"), result.form.id())?;
    for (id, yes) in &result.marks {
        tx.put(ROOT, format!("{prefix}{id}"), pass(*yes))?;
    }
    tx.put(ROOT, key(participant, "outcome"), result.outcome.id())?;
    Ok(())
}

/// Removes a participant's result (and the identity document the import wrote for them): the
/// processing's new file for the school no longer holds them.
pub fn remove(
    tx: &mut impl Transactable,
    participant: ParticipantId,
) -> Result<(), AutomergeError> {
    let prefix = format!("essay/{participant}/");
    let keys: Vec<String> = tx
        .map_range(ROOT, crate::recording::range_of(&prefix))
        .map(|item| item.key.to_string())
        .collect();
    for k in keys.into_iter().chain([
        format!("reg/{participant}/doc_series"),
        format!("reg/{participant}/doc_number"),
    ]) {
        tx.delete(ROOT, k.as_str())?;
    }
    Ok(())
}

/// Records when the РЦОИ first took in the processing's results for the school: a correction
/// taken in later does not move the chain's anchor (nor hide that the chain ran late).
pub fn put_processed(tx: &mut impl Transactable, at: Timestamp) -> Result<(), AutomergeError> {
    if crate::content::int(tx, "processed").is_none() {
        tx.put(ROOT, "processed", ScalarValue::Int(at.unix_ms()))?;
    }
    Ok(())
}

/// When the РЦОИ took in the processing's results for the school, if it did.
#[must_use]
pub fn processed(rcoi: &impl ReadDoc) -> Option<Timestamp> {
    Timestamp::from_unix_ms(crate::content::int(rcoi, "processed")?).ok()
}

/// Every participant's result kept in a РЦОИ document; an entry that does not read whole is
/// left out (and so never published).
pub fn results(rcoi: &impl ReadDoc) -> BTreeMap<ParticipantId, StoredEssay> {
    let mut fields: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in rcoi.map_range(ROOT, crate::recording::range_of("essay/")) {
        let Some((id, field)) = item
            .key
            .strip_prefix("essay/")
            .and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        if let Some(text) = crate::content::text(rcoi, &item.key) {
            fields
                .entry(id.to_owned())
                .or_default()
                .insert(field.to_owned(), text);
        }
    }
    fields
        .into_iter()
        .filter_map(|(id, f)| {
            let participant = ParticipantId::new(&id).ok()?;
            let marks = f
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("mark/")?.to_owned(), v)))
                .map(|(k, v)| match v.as_str() {
                    "pass" => Some((k, true)),
                    "fail" => Some((k, false)),
                    _ => None,
                })
                .collect::<Option<BTreeMap<String, bool>>>()?;
            Some((
                participant,
                StoredEssay {
                    form: f.get("form")?.parse().ok()?,
                    marks,
                    outcome: f.get("outcome")?.parse().ok()?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use automerge::AutoCommit;

    use super::*;

    fn result(marks: &[(&str, bool)], outcome: Outcome) -> StoredEssay {
        StoredEssay {
            form: EssayForm::Essay,
            marks: marks.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            outcome,
        }
    }

    #[test]
    fn a_result_reads_back_and_a_new_import_replaces_it_whole() {
        let p = ParticipantId::new("e1").unwrap();
        let mut doc = AutoCommit::new();
        let first = result(&[("Т1", true), ("К1", true), ("К2", false)], Outcome::Fail);
        put(&mut doc, p, &first).unwrap();
        put_processed(
            &mut doc,
            Timestamp::from_unix_ms(1_700_000_000_000).unwrap(),
        )
        .unwrap();
        assert_eq!(results(&doc).get(&p), Some(&first));
        assert_eq!(
            processed(&doc).map(Timestamp::unix_ms),
            Some(1_700_000_000_000)
        );
        let second = result(&[("Т1", true), ("К1", true)], Outcome::Pass);
        put(&mut doc, p, &second).unwrap();
        assert_eq!(
            results(&doc).get(&p),
            Some(&second),
            "К2 of the first is gone"
        );
        // A damaged mark leaves the participant out rather than read wrong.
        doc.put(ROOT, "essay/e1/mark/К1", "maybe").unwrap();
        assert!(results(&doc).is_empty());
    }
}
