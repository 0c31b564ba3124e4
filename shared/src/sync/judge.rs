//! What the engine makes of the changes a sync message carries, before automerge applies any:
//! the message taken apart into its changes, and each new change judged against its author's
//! write right and attestation. A change passes, is refused (with every change built on it), or
//! waits: a parent or a head its author attested has not arrived yet, so it cannot be judged
//! yet. Changes that wait are held by the engine, not handed to automerge's queue, where they
//! would apply unjudged when their parent came.

use std::collections::{BTreeSet, HashMap, HashSet};

use automerge::sync;
use automerge::{Automerge, ChangeHash, LoadOptions, OnPartialLoad, ReadDoc};

use super::{DocId, Endorsement};

/// What judging needs of a change: its hash, parents and author.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeHash>,
    pub actor: automerge::ActorId,
}

impl Meta {
    fn of(change: &automerge::Change) -> Self {
        Self {
            hash: change.hash(),
            deps: change.deps().to_vec(),
            actor: change.actor_id().clone(),
        }
    }
}

/// The changes a message carries (with those waiting from the peer's earlier messages), parsed
/// whole: change chunks one by one, and document chunks (a large catch-up) loaded, so that a
/// document whose every change passes is applied as it came, without rebuilding its changes.
pub(super) struct Carried {
    changes: HashMap<ChangeHash, automerge::Change>,
    docs: Vec<Automerge>,
    pub metas: Vec<Meta>,
    /// Whether the message's chunks, as they came, are exactly the changes carried.
    pub as_sent: bool,
}

impl Carried {
    pub fn parse(message: &sync::Message) -> Result<Self, String> {
        let mut carried = Self {
            changes: HashMap::new(),
            docs: Vec::new(),
            metas: Vec::new(),
            as_sent: true,
        };
        for (i, chunk) in message.changes.iter().enumerate() {
            if let Some(these) = chunk_changes(i, chunk)? {
                for change in these {
                    carried.metas.push(Meta::of(&change));
                    carried.changes.insert(change.hash(), change);
                }
                continue;
            }
            // A document (a large catch-up), possibly with changes after it in the same chunk,
            // as automerge saves a document whose queue holds changes: each piece is taken
            // apart, so the changes after the document are judged like any other (automerge
            // would apply them, or queue them, with the document).
            let pieces = chunk_pieces(chunk)
                .ok_or_else(|| format!("chunk {i} is not a sequence of automerge chunks"))?;
            for (kind, piece) in pieces {
                if kind != 0 {
                    let change = automerge::Change::try_from(piece)
                        .map_err(|e| format!("chunk {i} does not parse: a change in it: {e}"))?;
                    let change = checked(i, piece, change)?;
                    carried.metas.push(Meta::of(&change));
                    carried.changes.insert(change.hash(), change);
                    continue;
                }
                let options = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
                let doc = Automerge::load_with_options(piece, options)
                    .map_err(|e| format!("chunk {i} does not parse: {e}"))?;
                if !doc.get_missing_deps(&[]).is_empty() {
                    return Err(format!(
                        "chunk {i}: a document whose changes name parents it does not hold"
                    ));
                }
                carried
                    .metas
                    .extend(doc.get_changes_meta(&[]).into_iter().map(|m| Meta {
                        hash: m.hash,
                        deps: m.deps,
                        actor: m.actor.into_owned(),
                    }));
                carried.docs.push(doc);
            }
        }
        Ok(carried)
    }

    /// Adds changes that waited from earlier messages.
    pub fn add(&mut self, waiting: Vec<automerge::Change>) {
        if !waiting.is_empty() {
            self.as_sent = false;
        }
        for change in waiting {
            self.metas.push(Meta::of(&change));
            self.changes.insert(change.hash(), change);
        }
    }

    /// A carried change's bytes as they came, unless it came inside a document.
    pub fn raw_change(&self, hash: &ChangeHash) -> Option<&[u8]> {
        self.changes.get(hash).map(automerge::Change::raw_bytes)
    }

    /// A carried change, whole (rebuilt from its document when it came in one).
    pub fn change(&self, hash: &ChangeHash) -> Option<automerge::Change> {
        self.changes
            .get(hash)
            .cloned()
            .or_else(|| self.docs.iter().find_map(|d| d.get_change_by_hash(hash)))
    }
}

/// Whether `doc` holds (has applied) the change `hash`, by automerge's index of hashes:
/// `get_change_meta_by_hash` builds the change's whole metadata from the change graph's
/// columns first (2 % of a region's simulated day). A change waiting in automerge's queue would
/// count as held here; nothing waits there (see the module's comment), which debug builds check.
pub(super) fn holds(doc: &Automerge, hash: &ChangeHash) -> bool {
    let held = !doc
        .get_missing_deps(std::slice::from_ref(hash))
        .contains(hash);
    debug_assert_eq!(held, doc.get_change_meta_by_hash(hash).is_some());
    held
}

/// A change refused, with its dependencies (to leave it out of the peer's heads) and why.
#[derive(Debug, Clone)]
pub(super) struct Refused {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeHash>,
    pub why: String,
}

/// What becomes of the changes judged together.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    /// To apply now, parents first.
    pub pass: Vec<ChangeHash>,
    /// Not judged yet: a parent, or a head their author attested, has not arrived.
    pub wait: Vec<ChangeHash>,
    pub refused: Vec<Refused>,
    /// How many of the changes judged this node did not hold.
    pub new: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Wait,
    Refused,
}

/// The new changes an author's attested heads reach, walking back through `new` from the heads;
/// `complete` is false when the walk met a change neither held nor among `new` (so a change it
/// did not reach may still be covered once that one arrives).
struct Cover {
    reached: HashSet<ChangeHash>,
    complete: bool,
}

fn cover_of(
    e: &Endorsement,
    new: &HashMap<ChangeHash, &Meta>,
    known: &impl Fn(&ChangeHash) -> bool,
) -> Cover {
    let mut cover = Cover {
        reached: HashSet::new(),
        complete: true,
    };
    let mut stack = e.attestation.heads.clone();
    while let Some(h) = stack.pop() {
        if known(&h) {
            continue;
        }
        match new.get(&h) {
            Some(m) => {
                if cover.reached.insert(h) {
                    stack.extend(m.deps.iter().copied());
                }
            }
            None => cover.complete = false,
        }
    }
    cover
}

/// The hashes of `new`, every change after the changes of `new` it depends on.
fn parents_first(new: &HashMap<ChangeHash, &Meta>, arrival: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut out = Vec::with_capacity(new.len());
    let mut entered = HashSet::with_capacity(new.len());
    for &root in arrival {
        let mut stack = vec![(root, false)];
        while let Some((h, expanded)) = stack.pop() {
            if expanded {
                out.push(h);
                continue;
            }
            // Hashes name their dependencies, so the graph has no cycle: a change entered
            // before is done, or is an ancestor on the stack (impossible), and is skipped.
            if !entered.insert(h) {
                continue;
            }
            stack.push((h, true));
            if let Some(m) = new.get(&h) {
                stack.extend(
                    m.deps
                        .iter()
                        .filter(|d| new.contains_key(*d) && !entered.contains(*d))
                        .map(|d| (*d, false)),
                );
            }
        }
    }
    out
}

/// Judges the changes `metas` describe (a message's, with those waiting from earlier messages of
/// the same peer) for document `id`: a new change passes when it is by an author who may write
/// `id`, its parents are held or pass, and it is an ancestor of that author's attested heads (the
/// latest attestation in `by_actor`). It is refused when refused before in the session
/// (`refused_before`), built on a refused change, by no such author, or outside the heads of an
/// attestation whose history is all here; it waits when a parent or part of the attested
/// history has not arrived.
///
/// An author's changes pass only together with every head its attestation names that is not
/// held or refused: were one to pass while another head waits, this node would hold (and
/// forward, under the attestation it stores) a change that no stored attestation covers, and a
/// node behind it would refuse it. So while a head waits, the author's changes wait with it.
pub(super) fn judge(
    doc: &Automerge,
    id: DocId,
    by_actor: &HashMap<automerge::ActorId, &Endorsement>,
    metas: &[Meta],
    refused_before: &HashMap<ChangeHash, Vec<ChangeHash>>,
) -> Verdict {
    let known = |h: &ChangeHash| holds(doc, h);
    let mut held_back: HashSet<[u8; 32]> = HashSet::new();
    loop {
        let verdict = judge_once(doc, id, by_actor, metas, refused_before, &held_back);
        let pass: HashSet<&ChangeHash> = verdict.pass.iter().collect();
        let refused: HashSet<&ChangeHash> = verdict.refused.iter().map(|r| &r.hash).collect();
        let authors_passing: HashSet<&automerge::ActorId> = metas
            .iter()
            .filter(|m| pass.contains(&m.hash))
            .map(|m| &m.actor)
            .collect();
        let more: Vec<[u8; 32]> = by_actor
            .iter()
            .filter(|(actor, e)| {
                authors_passing.contains(actor)
                    && !held_back.contains(&e.attestation.author)
                    && e.attestation
                        .heads
                        .iter()
                        .any(|h| !known(h) && !pass.contains(h) && !refused.contains(h))
            })
            .map(|(_, e)| e.attestation.author)
            .collect();
        if more.is_empty() {
            return verdict;
        }
        held_back.extend(more);
    }
}

/// One judging pass; the changes of authors in `held_back` wait.
fn judge_once(
    doc: &Automerge,
    id: DocId,
    by_actor: &HashMap<automerge::ActorId, &Endorsement>,
    metas: &[Meta],
    refused_before: &HashMap<ChangeHash, Vec<ChangeHash>>,
    held_back: &HashSet<[u8; 32]>,
) -> Verdict {
    // The change graph's hash index ([`holds`]), not `get_change_by_hash`, which rebuilds the
    // whole change from the op set (a tenth of a region's simulated day went there).
    let known = |h: &ChangeHash| holds(doc, h);
    let mut new: HashMap<ChangeHash, &Meta> = HashMap::with_capacity(metas.len());
    let mut arrival = Vec::with_capacity(metas.len());
    for meta in metas {
        if !new.contains_key(&meta.hash) && !known(&meta.hash) {
            arrival.push(meta.hash);
            new.insert(meta.hash, meta);
        }
    }
    let order = parents_first(&new, &arrival);
    let mut covers: HashMap<[u8; 32], Cover> = HashMap::new();
    let mut status: HashMap<ChangeHash, Status> = HashMap::with_capacity(new.len());
    let mut verdict = Verdict {
        new: new.len(),
        ..Verdict::default()
    };
    for hash in order {
        let meta = new[&hash];
        let refused_dep = meta
            .deps
            .iter()
            .find(|d| refused_before.contains_key(d) || status.get(d) == Some(&Status::Refused));
        let judged = if refused_before.contains_key(&hash) {
            Err(format!("change {hash} was refused before"))
        } else if let Some(d) = refused_dep {
            Err(format!("change {hash} is built on refused change {d}"))
        } else {
            match author_of(meta, id, by_actor) {
                Err(why) => Err(why),
                Ok(_)
                    if meta
                        .deps
                        .iter()
                        .any(|d| !known(d) && status.get(d) != Some(&Status::Pass)) =>
                {
                    Ok(Status::Wait)
                }
                Ok(e) if held_back.contains(&e.attestation.author) => Ok(Status::Wait),
                Ok(e) => {
                    let cover = covers
                        .entry(e.attestation.author)
                        .or_insert_with(|| cover_of(e, &new, &known));
                    if cover.reached.contains(&hash) {
                        Ok(Status::Pass)
                    } else if cover.complete {
                        Err(format!(
                            "change {hash} is not covered by {}'s attestation",
                            e.identity
                        ))
                    } else {
                        Ok(Status::Wait)
                    }
                }
            }
        };
        let judged = judged.unwrap_or_else(|why| {
            verdict.refused.push(Refused {
                hash,
                deps: meta.deps.clone(),
                why,
            });
            Status::Refused
        });
        match judged {
            Status::Pass => verdict.pass.push(hash),
            Status::Wait => verdict.wait.push(hash),
            Status::Refused => {}
        }
        status.insert(hash, judged);
    }
    verdict
}

/// The automerge chunks laid back to back in `bytes`, with their types (0 a document, 1 a
/// change, 2 a compressed change), split by automerge's container format: magic, checksum, type,
/// uLEB128 length, contents. `None` when `bytes` is not a whole sequence of chunks.
fn chunk_pieces(bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    const HEADER_BYTES: usize = 9;
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = rest.get(..HEADER_BYTES)?;
        if header[..4] != MAGIC || !matches!(header[8], 0..=2) {
            return None;
        }
        let (len, used) = uleb128(&rest[HEADER_BYTES..])?;
        let end = HEADER_BYTES
            .checked_add(used)?
            .checked_add(usize::try_from(len).ok()?)?;
        out.push((header[8], rest.get(..end)?));
        rest = &rest[end..];
    }
    (!out.is_empty()).then_some(out)
}

/// The change chunks laid back to back in `bytes`, as a v2 sync message carries several changes
/// in one chunk. `None` when `bytes` is anything else (a document, or not a whole sequence of
/// chunks).
pub(super) fn change_chunks(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let pieces = chunk_pieces(bytes)?;
    pieces
        .iter()
        .all(|(kind, _)| *kind != 0)
        .then(|| pieces.into_iter().map(|(_, piece)| piece).collect())
}

/// An unsigned LEB128 number and the bytes it took.
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The changes of one chunk of a message when it holds changes only (one, or several back to
/// back); `None` for a document chunk; an error when a change does not parse whole.
pub(super) fn chunk_changes(
    i: usize,
    chunk: &[u8],
) -> Result<Option<Vec<automerge::Change>>, String> {
    // A single change parses whole on its own (ops and all) far cheaper than loading a
    // document.
    if let Ok(change) = automerge::Change::try_from(chunk) {
        return checked(i, chunk, change).map(|c| Some(vec![c]));
    }
    let Some(pieces) = change_chunks(chunk) else {
        return Ok(None);
    };
    pieces
        .into_iter()
        .map(|piece| {
            let change = automerge::Change::try_from(piece)
                .map_err(|e| format!("chunk {i} does not parse: a change in it: {e}"))?;
            checked(i, piece, change)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `change`, parsed from `piece`, if its checksum (the first 4 bytes of its hash, which
/// `Change::try_from` does not check) matches; automerge's loader stops at the first that does
/// not, silently dropping the rest of the message.
fn checked(i: usize, piece: &[u8], change: automerge::Change) -> Result<automerge::Change, String> {
    if piece.get(4..8) == Some(&change.hash().0[..4]) {
        Ok(change)
    } else {
        Err(format!(
            "chunk {i}: change {} has a wrong checksum",
            change.hash()
        ))
    }
}

/// A peer's advertised heads with its refused changes left out: each refused head is replaced
/// by its dependencies (themselves, if refused, by theirs), and a replacement that `doc` shows
/// to be an ancestor of another head is dropped. Once the peer's other changes are applied,
/// the heads equal this node's and automerge's exchange ends instead of asking for the refused
/// changes in a loop.
pub(super) fn heads_without(
    heads: &[ChangeHash],
    refused: &HashMap<ChangeHash, Vec<ChangeHash>>,
    doc: &Automerge,
) -> Vec<ChangeHash> {
    if !heads.iter().any(|h| refused.contains_key(h)) {
        return heads.to_vec();
    }
    let mut out = BTreeSet::new();
    let (mut stack, mut seen) = (heads.to_vec(), HashSet::new());
    while let Some(h) = stack.pop() {
        if !seen.insert(h) {
            continue;
        }
        match refused.get(&h) {
            Some(deps) => stack.extend(deps.iter().copied()),
            None => {
                out.insert(h);
            }
        }
    }
    // Strict ancestors of the candidates, as far as this node holds them.
    let mut ancestors = HashSet::new();
    let mut stack: Vec<ChangeHash> = out
        .iter()
        .filter_map(|h| doc.get_change_meta_by_hash(h))
        .flat_map(|m| m.deps)
        .collect();
    while let Some(h) = stack.pop() {
        if ancestors.insert(h)
            && let Some(meta) = doc.get_change_meta_by_hash(&h)
        {
            stack.extend(meta.deps);
        }
    }
    out.into_iter().filter(|h| !ancestors.contains(h)).collect()
}

/// The endorsement of a change's author, if that author may write `id`.
fn author_of<'e>(
    meta: &Meta,
    id: DocId,
    by_actor: &HashMap<automerge::ActorId, &'e Endorsement>,
) -> Result<&'e Endorsement, String> {
    let Some(e) = by_actor.get(&meta.actor) else {
        return Err(format!(
            "change {} has no attestation by its author",
            meta.hash
        ));
    };
    if !id.writable_by(&e.identity) {
        return Err(format!(
            "change {} is by {}, who may not write {id}",
            meta.hash, e.identity
        ));
    }
    Ok(e)
}
