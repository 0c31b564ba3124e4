//! A recording as the school's protocol names it, and the file names recording software writes.
//!
//! Seed 002 §39: each room records one stream for the whole day and, with the specialised
//! software, one recording per participant; §52: the file's name holds the date, the room and
//! the school's code. The bytes are a blob ([`crate::blob`]); the protocol holds what the
//! recording is, under its hash, written once in one change (the node's attestation covers it
//! like any change):
//!
//! | key | value |
//! |---|---|
//! | `rec/HASH/bytes` | the blob's length (integer) |
//! | `rec/HASH/room` | room code |
//! | `rec/HASH/participant`, `rec/HASH/attempt` | whose answer, which attempt; absent for the room's stream |
//! | `rec/HASH/format`, `rec/HASH/duration_ms` | `wav`, `mp3`, `ogg` or `mp4`; the duration read from the file |
//! | `rec/HASH/file` | the file's name as it was taken in |
//! | `rec/HASH/by`, `rec/HASH/at` | who took it in (a person's id, or `console`) and when (ms) |
//!
//! The РЦОИ's receipt, once it holds the blob whole and checked, is `blob/HASH` → when (ms) in
//! its document for the school, which only it writes. A node that destroyed its copy after the
//! keeping period records it as `destroyed/HASH` → when (ms): the school in its protocol, the
//! РЦОИ in its document for the school ([`put_destroyed`]).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ROOT, ReadDoc, ScalarValue, ScalarValueRef, ValueRef};

use crate::audio::AudioFormat;
use crate::blob::{BlobHash, BlobRef};
use crate::calendar::Date;
use crate::codes::{ParticipantId, PersonId, RoomCode, SchoolCode};
use crate::record::Attempt;

/// Whose answer a recording holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// The room's stream for the whole day (§39).
    Room,
    /// One participant's answer in one attempt.
    Participant { id: ParticipantId, attempt: Attempt },
}

/// A recording named in a school's protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    pub blob: BlobRef,
    pub room: RoomCode,
    pub subject: Subject,
    pub format: AudioFormat,
    pub duration_ms: u64,
    pub file_name: String,
    /// The person who took it in; `None` for the node's console or its watched folder.
    pub added_by: Option<PersonId>,
    pub added_at_ms: i64,
}

/// The longest file name kept (bytes).
pub const FILE_NAME_BYTES_MAX: usize = 255;

/// What a file's name says, by the convention `DATE_ROOM_SCHOOL[_PARTICIPANT[_ATTEMPT]].EXT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    pub date: Date,
    pub room: RoomCode,
    pub school: SchoolCode,
    /// The participant (and attempt, when the name gives one) for a participant's recording.
    pub participant: Option<(ParticipantId, Option<Attempt>)>,
}

/// A file name that does not follow the convention.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?}: {reason}; a recording's file is named DATE_ROOM_SCHOOL.EXT for a room's stream or DATE_ROOM_SCHOOL_PARTICIPANT[_ATTEMPT].EXT for one answer (DATE as 2024-02-14 or 14.02.2024)"
)]
pub struct BadFileName {
    pub name: String,
    pub reason: String,
}

impl FileName {
    /// Reads a file's name (without its folder).
    pub fn parse(name: &str) -> Result<Self, BadFileName> {
        let bad = |reason: &str| BadFileName {
            name: name.chars().take(120).collect(),
            reason: reason.to_owned(),
        };
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        let parts: Vec<&str> = stem.split('_').collect();
        if !(3..=5).contains(&parts.len()) {
            return Err(bad("it does not have 3 to 5 parts separated by '_'"));
        }
        let date = parse_date(parts[0]).ok_or_else(|| bad("it does not start with a date"))?;
        let room = RoomCode::new(parts[1]).map_err(|e| bad(&format!("room: {e}")))?;
        let school = SchoolCode::new(parts[2]).map_err(|e| bad(&format!("school: {e}")))?;
        let participant = match parts.get(3) {
            None => None,
            Some(id) => {
                let id = ParticipantId::new(id).map_err(|e| bad(&format!("participant: {e}")))?;
                let attempt = match parts.get(4) {
                    None => None,
                    Some(n) => Some(
                        n.parse::<u8>()
                            .ok()
                            .and_then(|n| Attempt::new(n).ok())
                            .ok_or_else(|| bad("the attempt is not a number from 1"))?,
                    ),
                };
                Some((id, attempt))
            }
        };
        Ok(Self {
            date,
            room,
            school,
            participant,
        })
    }
}

/// `2024-02-14` or `14.02.2024`.
fn parse_date(text: &str) -> Option<Date> {
    if let Ok(date) = text.parse() {
        return Some(date);
    }
    let mut it = text.split('.');
    let (d, m, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || d.len() != 2 || m.len() != 2 || y.len() != 4 {
        return None;
    }
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

fn key(hash: &BlobHash, field: &str) -> String {
    format!("rec/{hash}/{field}")
}

/// The first day an exam's recordings may be destroyed: `months` after the exam's date (the
/// same day of the month, or the month's last day; seed 002 §55 keeps them at least 4 months).
#[must_use]
pub fn kept_until(exam: crate::exam::ExamId, months: u32) -> Date {
    let date = exam.date();
    let total = date.year() * 12 + i32::from(date.month()) - 1 + i32::try_from(months).unwrap_or(0);
    let (year, month) = (
        total.div_euclid(12),
        u8::try_from(total.rem_euclid(12) + 1).unwrap_or(12),
    );
    (1..=date.day())
        .rev()
        .find_map(|day| Date::new(year, month, day).ok())
        .unwrap_or(date)
}

/// Names a recording in a protocol.
pub fn put_recording(tx: &mut impl Transactable, r: &Recording) -> Result<(), AutomergeError> {
    let h = &r.blob.hash;
    let int = |n: u64| ScalarValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
    tx.put(ROOT, key(h, "bytes"), int(r.blob.bytes))?;
    tx.put(ROOT, key(h, "room"), r.room.as_str())?;
    if let Subject::Participant { id, attempt } = r.subject {
        tx.put(ROOT, key(h, "participant"), id.as_str())?;
        tx.put(
            ROOT,
            key(h, "attempt"),
            ScalarValue::Int(i64::from(attempt.get())),
        )?;
    }
    tx.put(ROOT, key(h, "format"), r.format.as_str())?;
    tx.put(ROOT, key(h, "duration_ms"), int(r.duration_ms))?;
    tx.put(ROOT, key(h, "file"), r.file_name.as_str())?;
    let by = r.added_by.as_ref().map_or("console", PersonId::as_str);
    tx.put(ROOT, key(h, "by"), by)?;
    tx.put(ROOT, key(h, "at"), ScalarValue::Int(r.added_at_ms))?;
    Ok(())
}

/// The recordings a protocol names, by hash; entries that do not read as one are left out.
/// Read in one ordered pass over the `rec/` keys, a recording's fields one after another (a
/// node plans its fetches from this after every batch, and a protocol holds many other keys).
pub fn recordings(protocol: &impl ReadDoc) -> BTreeMap<BlobHash, Recording> {
    let mut out = BTreeMap::new();
    let mut current: Option<(BlobHash, Fields)> = None;
    let mut current_text = String::new();
    for item in protocol.map_range(ROOT, range_of("rec/")) {
        let Some((hash, field)) = item
            .key
            .strip_prefix("rec/")
            .and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        if hash != current_text {
            if let Some((h, fields)) = current.take()
                && let Some(r) = fields.recording(h)
            {
                out.insert(h, r);
            }
            hash.clone_into(&mut current_text);
            // Only the key a recording is written under (lower-case hex), as `names` reads.
            current = hash
                .parse::<BlobHash>()
                .ok()
                .filter(|h| h.to_string() == hash)
                .map(|h| (h, Fields::default()));
        }
        if let Some((_, fields)) = current.as_mut() {
            fields.set(field, &item.value);
        }
    }
    if let Some((h, fields)) = current
        && let Some(r) = fields.recording(h)
    {
        out.insert(h, r);
    }
    out
}

/// Whether the protocol names the blob as a recording.
#[must_use]
pub fn names(protocol: &impl ReadDoc, hash: &BlobHash) -> bool {
    protocol
        .get(ROOT, key(hash, "bytes"))
        .ok()
        .flatten()
        .is_some()
}

/// The root keys that start with `prefix` (which ends in '/'): from it to the first string
/// after all of them, '/' + 1 being '0'.
pub(crate) fn range_of(prefix: &str) -> std::ops::Range<String> {
    let stem = prefix.strip_suffix('/').unwrap_or(prefix);
    prefix.to_owned()..format!("{stem}0")
}

/// A recording's fields as read.
#[derive(Debug, Default)]
struct Fields {
    bytes: Option<i64>,
    room: Option<String>,
    participant: Option<String>,
    attempt: Option<i64>,
    format: Option<String>,
    duration_ms: Option<i64>,
    file: Option<String>,
    by: Option<String>,
    at: Option<i64>,
}

impl Fields {
    fn set(&mut self, field: &str, value: &ValueRef<'_>) {
        let text = || match value {
            ValueRef::Scalar(ScalarValueRef::Str(t)) => Some(t.to_string()),
            _ => None,
        };
        let int = || match value {
            ValueRef::Scalar(ScalarValueRef::Int(n)) => Some(*n),
            _ => None,
        };
        match field {
            "bytes" => self.bytes = int(),
            "room" => self.room = text(),
            "participant" => self.participant = text(),
            "attempt" => self.attempt = int(),
            "format" => self.format = text(),
            "duration_ms" => self.duration_ms = int(),
            "file" => self.file = text(),
            "by" => self.by = text(),
            "at" => self.at = int(),
            _ => {}
        }
    }

    fn recording(self, h: BlobHash) -> Option<Recording> {
        let blob = BlobRef::new(h, u64::try_from(self.bytes?).ok()?).ok()?;
        let subject = match self.participant {
            None => Subject::Room,
            Some(id) => Subject::Participant {
                id: ParticipantId::new(&id).ok()?,
                attempt: Attempt::new(u8::try_from(self.attempt?).ok()?).ok()?,
            },
        };
        let by = self.by?;
        Some(Recording {
            blob,
            room: RoomCode::new(&self.room?).ok()?,
            subject,
            format: AudioFormat::parse(&self.format?)?,
            duration_ms: u64::try_from(self.duration_ms?).ok()?,
            file_name: self.file?,
            added_by: if by == "console" {
                None
            } else {
                Some(PersonId::new(&by).ok()?)
            },
            added_at_ms: self.at?,
        })
    }
}

/// Records that this node destroyed its copy of a recording (seed 002 §55, §69: the act of
/// destruction): `destroyed/HASH` → when (ms), in the school's protocol at the school, in the
/// РЦОИ's document for the school at the РЦОИ. The entries one node writes at once are its act,
/// signed by its attestation like every change.
pub fn put_destroyed(
    tx: &mut impl Transactable,
    hash: &BlobHash,
    at_ms: i64,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, format!("destroyed/{hash}"), ScalarValue::Int(at_ms))?;
    Ok(())
}

/// The recordings a document records as destroyed, with when.
pub fn destroyed(doc: &impl ReadDoc) -> BTreeMap<BlobHash, i64> {
    int_entries(doc, "destroyed/")
}

fn int_entries(doc: &impl ReadDoc, prefix: &str) -> BTreeMap<BlobHash, i64> {
    doc.map_range(ROOT, range_of(prefix))
        .filter_map(|item| {
            let hash: BlobHash = item.key.strip_prefix(prefix)?.parse().ok()?;
            match item.value {
                ValueRef::Scalar(ScalarValueRef::Int(n)) => Some((hash, n)),
                _ => None,
            }
        })
        .collect()
}

/// The РЦОИ's receipt: it holds the blob whole and checked against its name.
pub fn put_blob_receipt(
    tx: &mut impl Transactable,
    hash: &BlobHash,
    at_ms: i64,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, format!("blob/{hash}"), ScalarValue::Int(at_ms))?;
    Ok(())
}

/// The blobs the РЦОИ has receipted in its document for a school, with when.
pub fn blob_receipts(rcoi: &impl ReadDoc) -> BTreeMap<BlobHash, i64> {
    int_entries(rcoi, "blob/")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;
    use automerge::AutoCommit;

    #[test]
    fn recordings_are_kept_the_months_after_the_exam_to_the_day_or_the_months_end() {
        let until = |exam: &str, months| kept_until(exam.parse().unwrap(), months).to_string();
        assert_eq!(until("is-2024-02-14", 4), "2024-06-14");
        assert_eq!(until("is-2024-10-31", 4), "2025-02-28");
        assert_eq!(until("is-2023-10-31", 4), "2024-02-29");
        assert_eq!(until("is-2024-04-15", 12), "2025-04-15");
    }

    #[test]
    fn file_names_by_the_convention_are_read() {
        let room_stream = FileName::parse("2024-02-14_101_420101.wav").unwrap();
        assert_eq!(room_stream.date.to_string(), "2024-02-14");
        assert_eq!(room_stream.room.as_str(), "101");
        assert_eq!(room_stream.school.as_str(), "420101");
        assert_eq!(room_stream.participant, None);
        let answer = FileName::parse("14.02.2024_2Б_420101_P-0007_2.mp3").unwrap();
        assert_eq!(answer.room.as_str(), "2Б");
        let (id, attempt) = answer.participant.unwrap();
        assert_eq!(
            (id.as_str(), attempt.map(Attempt::get)),
            ("P-0007", Some(2))
        );
        for bad in [
            "recording.wav",
            "2024-02-30_101_420101.wav",
            "2024-02-14_101.wav",
            "2024-02-14_101_42O101.wav",
            "2024-02-14_101_420101_P1_0.wav",
            "2024-02-14_101_420101_P1_2_x.wav",
        ] {
            let err = FileName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("DATE_ROOM_SCHOOL"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_recording_is_read_back_as_written() {
        let mut doc = AutoCommit::new();
        let r = Recording {
            blob: BlobRef::new(BlobHash([9; 32]), 1_234_567).unwrap(),
            room: RoomCode::new("101").unwrap(),
            subject: Subject::Participant {
                id: ParticipantId::new("P1").unwrap(),
                attempt: Attempt::new(2).unwrap(),
            },
            format: AudioFormat::Mp3,
            duration_ms: 900_000,
            file_name: "2024-02-14_101_420101_P1.mp3".into(),
            added_by: Some(PersonId::new("tech-420101").unwrap()),
            added_at_ms: 1_707_900_000_000,
        };
        let stream = Recording {
            blob: BlobRef::new(BlobHash([8; 32]), 99).unwrap(),
            subject: Subject::Room,
            added_by: None,
            ..r.clone()
        };
        // Keys beside the range read, which must not be taken for recordings.
        doc.put(ROOT, "rec", 1).unwrap();
        doc.put(ROOT, "rec0", 1).unwrap();
        doc.put(ROOT, "receipt/abc", "verified").unwrap();
        doc.put(ROOT, format!("rec/{}/", BlobHash([7; 32])), 3)
            .unwrap();
        put_recording(&mut doc, &r).unwrap();
        put_recording(&mut doc, &stream).unwrap();
        let read = recordings(&doc);
        assert_eq!(read.len(), 2);
        assert_eq!(read[&r.blob.hash], r);
        assert_eq!(read[&stream.blob.hash], stream);
        assert!(names(&doc, &r.blob.hash));
        assert!(!names(&doc, &BlobHash([1; 32])));
        let mut rcoi = AutoCommit::new();
        rcoi.put(ROOT, "blob", 1).unwrap();
        rcoi.put(ROOT, "blob0", 1).unwrap();
        rcoi.put(ROOT, "blob/not-a-hash", 1).unwrap();
        put_blob_receipt(&mut rcoi, &r.blob.hash, 5).unwrap();
        put_destroyed(&mut rcoi, &stream.blob.hash, 6).unwrap();
        assert_eq!(
            blob_receipts(&rcoi).into_iter().collect::<Vec<_>>(),
            vec![(r.blob.hash, 5)]
        );
        assert_eq!(
            destroyed(&rcoi).into_iter().collect::<Vec<_>>(),
            vec![(stream.blob.hash, 6)]
        );
    }
}
