//! Recordings of answers (seed 002 §39, §42, §52): the school names each recording it took in
//! in its protocol; hubs fetch what their documents name until the РЦОИ receipts it; the РЦОИ
//! receipts each recording once it holds it whole and checked against its hash.
//!
//! The bytes are the driver's (`crate::blobs`, `crate::run_blobs`): a file is taken in there
//! (container and duration checked, copied, hashed) and then named here with
//! [`name`]. What a node fetches is [`plan`]'s answer, asked after each batch of changes.

use giasync_shared::audio::AudioInfo;
use giasync_shared::blob::{BlobHash, BlobRef};
use giasync_shared::codes::{NodeRole, ParticipantId, RoomCode};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::recheck;
use giasync_shared::record::Attempt;
use giasync_shared::recording::{self, FileName, Recording, Subject};
use giasync_shared::retake;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Actor, Context, Error, school_doc};
use crate::run_blobs::BlobPlan;

/// A recording taken in by the node, to name in the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenIn {
    pub exam: ExamId,
    pub blob: BlobRef,
    pub info: AudioInfo,
    pub file_name: String,
    /// `None`: the room the file's name gives.
    pub room: Option<RoomCode>,
    /// `None`: the participant the file's name gives, if any.
    pub participant: Option<ParticipantId>,
    /// `None`: the attempt the file's name gives, else the one the participant is on now.
    pub attempt: Option<Attempt>,
    /// The room's stream for the day, whatever the name says.
    pub stream: bool,
}

/// The room, participant and attempt of a recording: as given, else as its file's name says
/// (a name that gives another school or date is refused).
fn resolve(
    engine: &Engine,
    taken: &TakenIn,
) -> Result<(RoomCode, Option<ParticipantId>, Option<Attempt>), Error> {
    let given_enough = taken.room.is_some() && (taken.stream || taken.participant.is_some());
    let parsed = match FileName::parse(&taken.file_name) {
        Ok(parsed) => {
            let me = engine.identity().org.school();
            if me.is_some_and(|s| s != parsed.school) || parsed.date != taken.exam.date() {
                return Err(Error::RecordingRefused(format!(
                    "{:?} names school {} on {}; this is {} on {}",
                    taken.file_name,
                    parsed.school,
                    parsed.date,
                    me.map_or_else(String::new, |s| s.to_string()),
                    taken.exam.date()
                )));
            }
            Some(parsed)
        }
        Err(_) if given_enough => None,
        Err(e) => return Err(Error::RecordingRefused(e.to_string())),
    };
    let room = taken
        .room
        .or(parsed.as_ref().map(|p| p.room))
        .ok_or_else(|| Error::RecordingRefused("no room given".into()))?;
    let from_name = parsed.and_then(|p| p.participant);
    let participant = if taken.stream {
        None
    } else {
        taken.participant.or(from_name.map(|(id, _)| id))
    };
    let attempt = taken.attempt.or(from_name.and_then(|(_, a)| a));
    Ok((room, participant, attempt))
}

/// A recording named in the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub hash: BlobHash,
    pub bytes: u64,
    pub room: RoomCode,
    pub participant: Option<ParticipantId>,
    pub attempt: Option<u8>,
    pub format: String,
    pub duration_ms: u64,
    /// It was named before (the same file taken in again).
    pub again: bool,
}

/// Names a recording the node took in: a room the roster declares, and for a participant's
/// answer a participant the roster places in that room, on the attempt given or the one open
/// now.
pub fn name(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    taken: TakenIn,
) -> Result<Named, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, taken.exam)?;
    let roster = school_doc(engine, DocKind::Roster, taken.exam)?;
    let (room, participant, attempt) = resolve(engine, &taken)?;
    let rooms = engine.doc(&roster).map(content::rooms).unwrap_or_default();
    if !rooms.contains_key(room.as_str()) {
        return Err(Error::RecordingRoomUnknown { room });
    }
    let subject = match participant {
        None => Subject::Room,
        Some(id) => {
            super::roster::require_participant(engine, taken.exam, id)?;
            let placed = engine
                .doc(&roster)
                .and_then(|d| content::participants(d).remove(id.as_str()))
                .map(|row| row.get("room").to_owned())
                .filter(|room| !room.is_empty());
            if placed.as_deref() != Some(room.as_str()) {
                return Err(Error::RecordingRoomNotTheParticipants {
                    participant: id,
                    room,
                    placed,
                });
            }
            let attempt = match attempt {
                Some(a) => a,
                None => open_attempt(engine, context, protocol, id, taken.exam)?,
            };
            Subject::Participant { id, attempt }
        }
    };
    let again = engine
        .doc(&protocol)
        .is_some_and(|d| recording::names(d, &taken.blob.hash));
    if !again {
        let r = Recording {
            blob: taken.blob,
            room,
            subject,
            format: taken.info.format,
            duration_ms: taken.info.duration_ms,
            file_name: taken
                .file_name
                .chars()
                .take(recording::FILE_NAME_BYTES_MAX)
                .collect(),
            added_by: match actor {
                Actor::Person(p) => Some(p.id),
                _ => None,
            },
            added_at_ms: now_ms,
        };
        engine.change(now_ms, protocol, |tx| recording::put_recording(tx, &r))?;
    }
    let (participant, attempt) = match subject {
        Subject::Room => (None, None),
        Subject::Participant { id, attempt } => (Some(id), Some(attempt.get())),
    };
    Ok(Named {
        hash: taken.blob.hash,
        bytes: taken.blob.bytes,
        room,
        participant,
        attempt,
        format: taken.info.format.to_string(),
        duration_ms: taken.info.duration_ms,
        again,
    })
}

/// The attempt a participant is on now: the one open, else the last the day's chain reached.
fn open_attempt(
    engine: &Engine,
    context: &Context,
    protocol: DocId,
    participant: ParticipantId,
    exam: ExamId,
) -> Result<Attempt, Error> {
    let first = super::retakes::first_attempt_here(engine, protocol, participant, exam)?;
    let school = protocol.school().ok_or(Error::NoExam)?;
    let ended = super::acts::ended(engine, context, protocol);
    let acts = retake::acts_of(&ended, (exam, school), participant);
    Ok(retake::open_attempt(first, &acts)
        .or_else(|| retake::on_chain(first, &acts).keys().next_back().copied())
        .unwrap_or(first))
}

/// Which blobs the documents `docs` name and whether this node fetches and keeps them: the РЦОИ
/// fetches and keeps every recording its schools' protocols name; a МОУО, a relay, fetches one
/// only until the РЦОИ has receipted it and then drops its copy; a school fetches none of its
/// own (they are its own) and keeps them.
///
/// A re-check's grant (`giasync_shared::recheck`) names one recording in the РЦОИ's document
/// for the reviewing school: while it is open the reviewing school and its МОУО fetch and keep
/// it and the РЦОИ gives it; once closed, that document no longer names it, and they drop it.
#[must_use]
pub fn plan(engine: &Engine, docs: &[DocId]) -> Vec<BlobPlan> {
    let role = engine.identity().role();
    // Recordings an open grant names anywhere here: a relay keeps them whichever document
    // changed (the same МОУО may carry the participant's school too).
    // Read on first need only: it walks every РЦОИ document here, and most batches (a sheet at
    // a МОУО, anything at a school) never ask.
    let open = std::cell::LazyCell::new(|| match role {
        NodeRole::Rcoi => Default::default(),
        NodeRole::Municipality | NodeRole::School => open_grants(engine),
    });
    let granted = |hash: &BlobHash| open.contains(hash);
    let mut plans = grant_plans(engine, docs, role, &granted);
    let mut protocols: Vec<DocId> = docs
        .iter()
        .filter_map(|d| match d.kind() {
            Some(DocKind::Protocol) => Some(*d),
            Some(DocKind::Rcoi) => d.sibling(DocKind::Protocol),
            _ => None,
        })
        .collect();
    protocols.sort();
    protocols.dedup();
    for doc in protocols {
        let Some(protocol) = engine.doc(&doc) else {
            continue;
        };
        // Most protocols name no recording (a region without them, a room log's entry): the
        // РЦОИ document's receipts and acts are read only for one that does.
        let recordings = recording::recordings(protocol);
        if recordings.is_empty() {
            continue;
        }
        let rcoi = doc.sibling(DocKind::Rcoi).and_then(|r| engine.doc(&r));
        let receipts = rcoi.map(recording::blob_receipts).unwrap_or_default();
        // What this node destroyed it neither fetches again nor keeps: its act is in its own
        // document (the РЦОИ's for the school; the school's protocol).
        let destroyed = match role {
            NodeRole::Rcoi => rcoi.map(recording::destroyed).unwrap_or_default(),
            NodeRole::School => recording::destroyed(protocol),
            NodeRole::Municipality => Default::default(),
        };
        for (hash, r) in recordings {
            let (fetch, keep) = match role {
                _ if destroyed.contains_key(&hash) => (false, false),
                NodeRole::Rcoi => (true, true),
                NodeRole::Municipality => {
                    let carried = !receipts.contains_key(&hash) || granted(&hash);
                    (carried, carried)
                }
                NodeRole::School => (false, true),
            };
            plans.push(BlobPlan {
                blob: r.blob,
                doc,
                fetch,
                keep,
                named: true,
            });
        }
    }
    plans
}

/// The recordings named by a grant not yet closed, in any РЦОИ document this node holds.
fn open_grants(engine: &Engine) -> std::collections::BTreeSet<BlobHash> {
    engine
        .doc_ids()
        .filter(|d| d.kind() == Some(DocKind::Rcoi))
        .filter_map(|d| engine.doc(d))
        .flat_map(recheck::grant::grants)
        .filter(|(g, _)| g.closed.is_none())
        .map(|(g, _)| g.recording.blob.hash)
        .collect()
}

/// The plans for the recordings granted in the changed РЦОИ documents, one per recording and
/// document (two grants may name one recording: an expired one and the next): named there
/// while a grant is open; a school or МОУО fetches and keeps it while an open grant anywhere
/// here names it. The РЦОИ holds it already through the participant's protocol, whose plan
/// decides whether it keeps it (a destroyed recording is not fetched again for a grant).
fn grant_plans(
    engine: &Engine,
    docs: &[DocId],
    role: NodeRole,
    granted: &impl Fn(&BlobHash) -> bool,
) -> Vec<BlobPlan> {
    let mut plans: Vec<BlobPlan> = Vec::new();
    for doc in docs.iter().filter(|d| d.kind() == Some(DocKind::Rcoi)) {
        let Some(rcoi) = engine.doc(doc) else {
            continue;
        };
        let mut named: std::collections::BTreeMap<BlobHash, (BlobRef, bool)> =
            std::collections::BTreeMap::new();
        for (grant, _) in recheck::grant::grants(rcoi) {
            let entry = named
                .entry(grant.recording.blob.hash)
                .or_insert((grant.recording.blob, false));
            entry.1 |= grant.closed.is_none();
        }
        for (hash, (blob, open)) in named {
            let (fetch, keep) = match role {
                NodeRole::Rcoi => (false, true),
                NodeRole::Municipality | NodeRole::School => {
                    let wanted = open || granted(&hash);
                    (wanted, wanted)
                }
            };
            plans.push(BlobPlan {
                blob,
                doc: *doc,
                fetch,
                keep,
                named: open,
            });
        }
    }
    plans
}

/// At the РЦОИ: receipts a blob it now holds whole, in its document for each school whose
/// protocol names it. Returns how many receipts it wrote.
pub fn receipt(
    engine: &mut Engine,
    now_ms: i64,
    blob: BlobRef,
    docs: &[DocId],
) -> Result<usize, Error> {
    if engine.identity().role() != NodeRole::Rcoi {
        return Ok(0);
    }
    let mut written = 0;
    // Only a protocol names a school's own recording; a grant names one of another school's.
    for doc in docs.iter().filter(|d| d.kind() == Some(DocKind::Protocol)) {
        let names = engine
            .doc(doc)
            .and_then(|d| recording::recordings(d).remove(&blob.hash))
            .is_some_and(|r| r.blob == blob);
        let Some(rcoi) = doc.sibling(DocKind::Rcoi) else {
            continue;
        };
        let receipted = engine
            .doc(&rcoi)
            .is_some_and(|d| recording::blob_receipts(d).contains_key(&blob.hash));
        if names && !receipted {
            engine.change(now_ms, rcoi, |tx| {
                recording::put_blob_receipt(tx, &blob.hash, now_ms)
            })?;
            written += 1;
        }
    }
    Ok(written)
}

/// What `audio destroy` found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destroyed {
    pub exam: ExamId,
    pub recordings: usize,
    pub bytes: u64,
    /// Recordings held here and due that a school keeps because the РЦОИ does not hold them
    /// yet: destroying them would lose the only copy.
    pub kept_not_at_rcoi: usize,
}

/// A recording and the document naming it.
pub type NamedIn = (DocId, BlobRef);

/// The recordings of `exam` this node may destroy now, each with the document naming it: the
/// keeping period is over (else the refusal says until when), and at a school the РЦОИ holds
/// them. The second list: those a school keeps because the РЦОИ does not hold them yet.
pub fn due(
    engine: &Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
) -> Result<(Vec<NamedIn>, Vec<BlobRef>), Error> {
    let until = recording::kept_until(exam, context.audio_keep_months);
    let today = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms)?.date_at(context.clock);
    if today < until {
        return Err(Error::RecordingsKept { exam, until });
    }
    let school = engine.identity().role() == NodeRole::School;
    let (mut due, mut kept) = (Vec::new(), Vec::new());
    for doc in engine.doc_ids().copied().collect::<Vec<_>>() {
        let DocId::School {
            kind: DocKind::Protocol,
            exam: of,
            ..
        } = doc
        else {
            continue;
        };
        if of != exam {
            continue;
        }
        let Some(protocol) = engine.doc(&doc) else {
            continue;
        };
        // As in `plan`: the РЦОИ document's receipts are read only for a protocol naming a
        // recording.
        let recordings = recording::recordings(protocol);
        if recordings.is_empty() {
            continue;
        }
        let rcoi = doc.sibling(DocKind::Rcoi).and_then(|r| engine.doc(&r));
        let receipts = rcoi.map(recording::blob_receipts).unwrap_or_default();
        for r in recordings.into_values() {
            if school && !receipts.contains_key(&r.blob.hash) {
                kept.push(r.blob);
            } else {
                due.push((doc, r.blob));
            }
        }
    }
    Ok((due, kept))
}

/// Records the destruction of the recordings the driver deleted: at a school in its protocol,
/// at the РЦОИ in its document for each school (a МОУО, a relay, records nothing).
pub fn record_destruction(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    destroyed: &[(DocId, BlobRef)],
    kept_not_at_rcoi: usize,
) -> Result<Destroyed, Error> {
    let role = engine.identity().role();
    let mut by_doc: std::collections::BTreeMap<DocId, Vec<BlobRef>> = Default::default();
    for (doc, blob) in destroyed {
        let target = match role {
            NodeRole::School => Some(*doc),
            NodeRole::Rcoi => doc.sibling(DocKind::Rcoi),
            NodeRole::Municipality => None,
        };
        if let Some(target) = target {
            by_doc.entry(target).or_default().push(*blob);
        }
    }
    for (doc, blobs) in &by_doc {
        let already = engine
            .doc(doc)
            .map(recording::destroyed)
            .unwrap_or_default();
        let new: Vec<&BlobRef> = blobs
            .iter()
            .filter(|b| !already.contains_key(&b.hash))
            .collect();
        if new.is_empty() {
            continue;
        }
        engine.change(now_ms, *doc, |tx| {
            for b in &new {
                recording::put_destroyed(tx, &b.hash, now_ms)?;
            }
            Ok(())
        })?;
    }
    Ok(Destroyed {
        exam,
        recordings: destroyed.len(),
        bytes: destroyed.iter().map(|(_, b)| b.bytes).sum(),
        kept_not_at_rcoi,
    })
}

/// At the РЦОИ: receipts a blob it holds, in its document for every school whose protocol it
/// holds names it (a blob taken in from a bundle, not fetched).
pub fn receipt_held(engine: &mut Engine, now_ms: i64, blob: BlobRef) -> Result<usize, Error> {
    let naming: Vec<DocId> = engine
        .doc_ids()
        .copied()
        .filter(|d| d.kind() == Some(DocKind::Protocol))
        .filter(|d| {
            engine
                .doc(d)
                .is_some_and(|p| recording::names(p, &blob.hash))
        })
        .collect();
    receipt(engine, now_ms, blob, &naming)
}
