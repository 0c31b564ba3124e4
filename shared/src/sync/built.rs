//! Many puts into a document's root map as one change built whole and applied, instead of put
//! one by one in a transaction.
//!
//! automerge 0.12 writes a transaction's put into its op columns at once: each put seeks its key
//! and splices every column, about 7.5 µs here whatever the map's size. A change applied from
//! outside goes the other way: the ops are merged into the map in one walk of it from the first
//! key (about 0.2 µs per op already in the map), then about 1.5 µs per new op. So a few puts are
//! cheaper in a transaction and many in a built change: measured on this machine with 52 puts
//! into a map of 400 ops, 7.3 µs a put against 3.4 µs; with one put, 20 µs against 87 µs.
//! [`worth_building`] picks between the two.
//!
//! The change is the one a transaction would commit, byte for byte (the tests below hold the two
//! side by side, hashes included): the node's actor, the next sequence number of that actor, the
//! next op counter, the document's heads (and the actor's own last change, when another's change
//! built on it since) as dependencies, each put naming as predecessors the values the key holds
//! now (all of them when they conflict), a value the key shows already not put again, the time
//! given. automerge encodes it (`ExpandedChange` into `Change`), so the bytes are its own. The
//! actor's sequence and the op counter are read from every change's metadata, as a transaction
//! reads them from automerge's change graph (not public): a cost per built change that grows with
//! the document's history, small beside the puts it saves.

use std::num::NonZeroU64;

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::{
    Automerge, AutomergeError, Change, ExpandedChange, ObjId, ROOT, ReadDoc, ScalarValue, Value,
};

/// Ops already in the document per put at which a built change costs about what a transaction
/// costs (the walk of the map against the seek of each key; see the module's comment).
const MAP_OPS_PER_PUT_BREAK_EVEN: usize = 32;

/// Whether `puts` puts into `doc` are cheaper as a built change than in a transaction.
pub(crate) fn worth_building(doc: &Automerge, puts: usize) -> bool {
    let ops = usize::try_from(doc.stats().num_ops).unwrap_or(usize::MAX);
    puts.saturating_mul(MAP_OPS_PER_PUT_BREAK_EVEN) >= ops
}

/// The change that puts each of `entries` (key, value) into the root map of `doc`, made by the
/// document's actor at `now_ms`. `None` when two entries name the same key or one is a counter
/// (a transaction then puts them in turn), or when there is nothing to put (none, or every key
/// shows its value already).
pub(crate) fn root_puts(
    doc: &Automerge,
    entries: &[(String, ScalarValue)],
    now_ms: i64,
) -> Result<Option<Change>, AutomergeError> {
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    // Counters are left to a transaction: a put over one is judged by its counted value.
    let counter = entries
        .iter()
        .any(|(_, v)| matches!(v, ScalarValue::Counter(_)));
    if keys.len() != entries.len() || entries.is_empty() || counter {
        return Ok(None);
    }
    // The actor's last change and the highest op counter, from every change's metadata (a
    // transaction reads them from automerge's change graph, which is not public).
    let actor = doc.get_actor();
    let (mut last, mut max_op) = (None, 0);
    for meta in doc.get_changes_meta(&[]) {
        max_op = max_op.max(meta.max_op);
        if meta.actor.as_ref() == actor && last.is_none_or(|(seq, _)| seq < meta.seq) {
            last = Some((meta.seq, meta.hash));
        }
    }
    // As a transaction: the heads, and the actor's own last change when another's change built
    // on it since, sorted.
    let mut deps = doc.get_heads();
    if let Some((_, hash)) = last
        && !deps.contains(&hash)
    {
        deps.push(hash);
    }
    deps.sort_unstable();
    let seq = last.map_or(0, |(seq, _)| seq);
    let mut operations = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let held = doc.get_all(ROOT, key.as_str())?;
        let winner = doc.get(ROOT, key.as_str())?;
        let ids = |skip: Option<&ObjId>| -> Vec<OpId> {
            held.iter()
                .filter(|(_, id)| Some(id) != skip)
                .filter_map(|(_, id)| match id {
                    ObjId::Id(counter, actor, _) => Some(OpId(*counter, actor.clone())),
                    ObjId::Root => None,
                })
                .collect()
        };
        // As a transaction's put: the value the key shows already is not put again; the values
        // beside it (a conflict) are deleted instead.
        let (action, pred) = match &winner {
            Some((Value::Scalar(shown), id)) if shown.as_ref() == value => {
                let losers = ids(Some(id));
                if losers.is_empty() {
                    continue;
                }
                (OpType::Delete, losers)
            }
            _ => (OpType::Put(value.clone()), ids(None)),
        };
        operations.push(Op {
            action,
            obj: ObjectId::Root,
            key: Key::Map(key.as_str().into()),
            pred: SortedVec::from(pred),
            insert: false,
        });
    }
    if operations.is_empty() {
        return Ok(None);
    }
    let start_op = NonZeroU64::new(max_op.saturating_add(1)).unwrap_or(NonZeroU64::MIN);
    Ok(Some(Change::from(ExpandedChange {
        operations,
        actor_id: actor.clone(),
        hash: None,
        seq: seq + 1,
        start_op,
        time: now_ms,
        message: None,
        deps,
        extra_bytes: Vec::new(),
        author: None,
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use automerge::ActorId;
    use automerge::transaction::{CommitOptions, Transactable};
    use proptest::prelude::*;

    use super::*;

    /// Every key of the root map with every value it holds (conflicts included), as read.
    fn root(doc: &Automerge) -> Vec<(String, Vec<String>)> {
        doc.keys(ROOT)
            .map(|k| {
                let mut values: Vec<String> = doc
                    .get_all(ROOT, k.as_str())
                    .unwrap()
                    .into_iter()
                    .map(|(v, _)| match v {
                        Value::Scalar(s) => s.to_string(),
                        Value::Object(o) => format!("{o:?}"),
                    })
                    .collect();
                values.sort();
                (k, values)
            })
            .collect()
    }

    fn doc_of(actor: u8) -> Automerge {
        Automerge::new().with_actor(ActorId::from(vec![actor; 16]))
    }

    /// `entries` put over `base` by actor 1 at `time` both ways: (in a transaction, as a built
    /// change applied, the built change if there was one).
    fn both_ways(
        base: &Automerge,
        entries: &[(String, ScalarValue)],
        time: i64,
    ) -> (Automerge, Automerge, Option<Change>) {
        let mut by_tx = base.fork().with_actor(ActorId::from(vec![1; 16]));
        let mut tx = by_tx.transaction();
        for (k, v) in entries {
            tx.put(ROOT, k.as_str(), v.clone()).unwrap();
        }
        tx.commit_with(CommitOptions::default().with_time(time));
        let mut built = base.fork().with_actor(ActorId::from(vec![1; 16]));
        let change = root_puts(&built, entries, time).unwrap();
        if let Some(change) = &change {
            built.apply_changes([change.clone()]).unwrap();
        }
        (by_tx, built, change)
    }

    /// The same puts in a transaction and as a built change give the same document, and the
    /// next change of either continues the actor's sequence (a transaction after a built change
    /// is taken by a peer that holds both).
    #[test]
    fn a_built_change_makes_what_a_transaction_makes() {
        let mut base = doc_of(1);
        let mut tx = base.transaction();
        tx.put(ROOT, "a", "old").unwrap();
        tx.put(ROOT, "m", 3).unwrap();
        tx.commit();
        // Another node's value beside ours at "m": a conflict both must overwrite.
        let mut other = doc_of(2);
        let mut tx = other.transaction();
        tx.put(ROOT, "m", "theirs").unwrap();
        tx.commit();
        base.merge(&mut other).unwrap();
        assert_eq!(base.get_all(ROOT, "m").unwrap().len(), 2);

        let entries = vec![
            ("m".to_owned(), ScalarValue::from("mine")),
            ("z".to_owned(), ScalarValue::from("new")),
            ("a".to_owned(), ScalarValue::Int(7)),
        ];
        let (by_tx, mut built, change) = both_ways(&base, &entries, 5);
        let change = change.unwrap();

        assert_eq!(root(&built), root(&by_tx));
        assert_eq!(built.get_heads(), vec![change.hash()]);
        // Byte for byte the change the transaction committed.
        assert_eq!(by_tx.get_heads(), vec![change.hash()]);
        assert_eq!(change.seq(), 2);
        assert_eq!(change.timestamp(), 5);
        // A peer holding the base takes the built change, then the builder's next transaction.
        let mut tx = built.transaction();
        tx.put(ROOT, "after", true).unwrap();
        tx.commit();
        let mut peer = base.fork();
        peer.apply_changes(built.get_changes(&base.get_heads()))
            .unwrap();
        assert_eq!(root(&peer), root(&built));
        assert!(peer.get_missing_deps(&[]).is_empty());
    }

    #[test]
    fn the_same_key_twice_or_no_entry_is_left_to_a_transaction() {
        let doc = doc_of(1);
        let twice = vec![
            ("k".to_owned(), ScalarValue::from("a")),
            ("k".to_owned(), ScalarValue::from("b")),
        ];
        assert!(root_puts(&doc, &twice, 0).unwrap().is_none());
        assert!(root_puts(&doc, &[], 0).unwrap().is_none());
    }

    #[test]
    fn many_puts_into_a_small_map_are_built_and_one_into_a_large_map_is_not() {
        let mut doc = doc_of(1);
        let mut tx = doc.transaction();
        for i in 0..400 {
            tx.put(ROOT, format!("k{i}"), i).unwrap();
        }
        tx.commit();
        assert!(!worth_building(&doc, 1));
        assert!(worth_building(&doc, 52));
    }

    /// Values of several kinds and lengths, as receipts and registers hold.
    fn value(n: u8) -> ScalarValue {
        match n % 6 {
            0 => ScalarValue::from("verified"),
            1 => ScalarValue::from("invalid: подпись эксперта не сходится с листом"),
            2 => ScalarValue::from(""),
            3 => ScalarValue::Int(i64::from(n)),
            4 => ScalarValue::Boolean(n.is_multiple_of(2)),
            _ => ScalarValue::from("refused on receipt: акт о досрочном завершении"),
        }
    }

    proptest! {
        /// Puts over a map already written by the node and by another (concurrently, and after
        /// taking the node's changes, so the node's last change need not be a head), in a
        /// transaction and as a built change: the same keys and values, and the same change.
        #[test]
        fn built_and_transacted_puts_agree(
            before in proptest::collection::vec((0u8..24, 0u8..12, 0u8..3), 0..40),
            puts in proptest::collection::btree_map(0u8..24, 0u8..12, 1..40),
        ) {
            let mut base = doc_of(1);
            let mut other = doc_of(2);
            for (key, v, who) in &before {
                let doc = match who {
                    0 => &mut base,
                    1 => &mut other,
                    _ => {
                        // The other node takes ours first and writes after it.
                        other.merge(&mut base).unwrap();
                        &mut other
                    }
                };
                let mut tx = doc.transaction();
                tx.put(ROOT, format!("k{key}"), value(*v)).unwrap();
                tx.commit();
            }
            base.merge(&mut other).unwrap();
            let entries: Vec<(String, ScalarValue)> = puts
                .iter()
                .map(|(k, v)| (format!("k{k}"), value(*v)))
                .collect();
            // No built change: nothing to put, and the transaction committed nothing either.
            let (by_tx, built, _) = both_ways(&base, &entries, 1_707_876_000_000);
            prop_assert_eq!(root(&built), root(&by_tx));
            prop_assert_eq!(built.get_heads(), by_tx.get_heads());
        }
    }
}
