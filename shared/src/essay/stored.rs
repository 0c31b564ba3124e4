//! The РЦОИ's processed results of итоговое сочинение (изложение), kept in its document for each
//! school (which only the РЦОИ writes) until it publishes them:
//!
//! | key | value |
//! |---|---|
//! | `essay/ID/form` | `essay` or `summary` |
//! | `essay/ID/mark/MARK` | `pass` or `fail`, per requirement and criterion the processing gave |
//! | `essay/ID/outcome` | `pass` or `fail`, as the year's rules give it from the marks |
//! | `processed` | when the РЦОИ first took in the processing's results for the school (ms): the anchor of the informing chain (seed 003 §2.2) |
//! | `processed_last` | when it last did (a correction; ms): a publication from before it does not carry it |
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

/// Removes a participant's result: the processing's new file for the school no longer holds
/// them. The identity document the import wrote into the register goes too, unless a
/// region-wide list registered the participant (it gave a category of record), whose entry stays
/// whole.
pub fn remove(
    tx: &mut impl Transactable,
    participant: ParticipantId,
) -> Result<(), AutomergeError> {
    let prefix = format!("essay/{participant}/");
    let mut keys: Vec<String> = tx
        .map_range(ROOT, crate::recording::range_of(&prefix))
        .map(|item| item.key.to_string())
        .collect();
    if crate::content::registered_category(tx, participant.as_str()).is_none() {
        keys.push(format!("reg/{participant}/doc_series"));
        keys.push(format!("reg/{participant}/doc_number"));
    }
    for k in keys {
        tx.delete(ROOT, k.as_str())?;
    }
    Ok(())
}

/// Records when the РЦОИ took in the processing's results for the school: `processed`, the
/// first time (a correction taken in later neither moves the chain's anchor nor hides that the
/// chain ran late), and `processed_last`, this time (a publication from before it does not
/// carry the correction).
pub fn put_processed(tx: &mut impl Transactable, at: Timestamp) -> Result<(), AutomergeError> {
    if crate::content::int(tx, "processed").is_none() {
        tx.put(ROOT, "processed", ScalarValue::Int(at.unix_ms()))?;
    }
    tx.put(ROOT, "processed_last", ScalarValue::Int(at.unix_ms()))?;
    Ok(())
}

/// When the РЦОИ last took in the processing's results for the school, if it did.
#[must_use]
pub fn processed_last(rcoi: &impl ReadDoc) -> Option<Timestamp> {
    Timestamp::from_unix_ms(crate::content::int(rcoi, "processed_last")?).ok()
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
    crate::content::for_each_field(rcoi, "essay/", |id, field, value| {
        if let Some(text) = crate::content::text_of(value) {
            fields
                .entry(id.to_owned())
                .or_default()
                .insert(field.to_owned(), text.to_owned());
        }
    });
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
        // Removed: the result and the document the import wrote go; a participant a list
        // registered (a category of record) keeps their register entry whole.
        let q = ParticipantId::new("e2").unwrap();
        let document = crate::participant::IdentityDocument::new("3204", "000002").unwrap();
        put(&mut doc, q, &second).unwrap();
        for who in [p, q] {
            crate::content::put_registered_document(&mut doc, who, &document).unwrap();
        }
        crate::content::put_registered_category(
            &mut doc,
            q,
            crate::participant::Category::Standard,
        )
        .unwrap();
        remove(&mut doc, p).unwrap();
        remove(&mut doc, q).unwrap();
        assert!(results(&doc).is_empty());
        let registered = crate::content::registered(&doc);
        assert!(!registered.contains_key("e1"), "{registered:?}");
        assert_eq!(registered["e2"].get("doc_number"), "000002");
        put(&mut doc, p, &second).unwrap();
        // A damaged mark leaves the participant out rather than read wrong.
        doc.put(ROOT, "essay/e1/mark/К1", "maybe").unwrap();
        assert!(results(&doc).is_empty());
    }
}
