//! What the replicated documents hold, and how it is laid out in automerge.
//!
//! Every value sits under a flat key of the document's root map, never in nested maps: two nodes
//! that create the same nested map concurrently would each make their own, and automerge would
//! show only one of them. Flat keys merge field by field.
//!
//! | document | key | value |
//! |---|---|---|
//! | roster | `p/ID/surname`, `p/ID/given_name`, `p/ID/patronymic`, `p/ID/doc_series`, `p/ID/doc_number`, `p/ID/class`, `p/ID/category` | text |
//! | roster | `p/ID/disabled` | `yes` for a disabled participant (инвалид), else `no` |
//! | roster | `p/ID/written` | `yes` for a participant who answers in writing (§61), else `no`; the register's `reg/ID/written` wins |
//! | roster | `p/ID/room` | room code |
//! | roster | `p/ID/attendance` | `present`, `absent`, `early` or `removed`; `p/ID/act` the act's number |
//! | roster | `p/ID/absence` | why an absent participant was absent: `valid` (with `p/ID/absence_document`, the document that confirms it) or `not-valid` |
//! | roster | `room/CODE` | capacity (integer) |
//! | protocol | `sheet/HASH` | a signed score sheet (bytes), keyed by its record hash: never overwritten |
//! | protocol | `expert/ID` | the expert's certificate (DER), so any node can check the signature |
//! | protocol | `log/ID/start`, `log/ID/end` | times (ms), `log/ID/interviewer` the interviewer's id |
//! | protocol | `act/ID/ATTEMPT` | the organiser's signed act ending that attempt (`crate::act`); `organiser/ID` their certificate (DER) |
//! | protocol | `commission/N` | the head of the school's signed commission order, edition N (`crate::commission`); `commission_cert/N` the certificate it was signed under, `head/ID` the head's latest (DER) |
//! | protocol | `settled/HASH` | the commission's signed settlement of a conflict (`crate::settlement::commission`); `settled_cert/HASH` the certificate it was signed under, `head/ID` or `expert/ID` the signer's latest (DER) |
//! | protocol | `rec/HASH/…` | a recording the school took in, named by its blob's hash (`crate::recording`) |
//! | protocol | `recheck_request/HASH` | the head's signed request for another school's participant's recording, to re-check it (`crate::recheck`); `head/ID` the head's certificate |
//! | protocol | `recheck/HASH` | the re-check protocol its commission's chair signed (`crate::recheck::verdict`); `head/ID` the chair's certificate |
//! | rcoi | `receipt/HASH` | the РЦОИ's receipt for a sheet: `verified` or `invalid: REASON` |
//! | rcoi | `blob/HASH` | the РЦОИ's receipt for a recording: when it held it whole and checked (ms) |
//! | rcoi | `settlement/HASH` | a РЦОИ operator's signed settlement of a conflict, as made before the school's commission settled them (`crate::settlement`) |
//! | rcoi | `operator/ID` | the operator's certificate (DER) |
//! | rcoi | `reg/ID/category`, `reg/ID/doc_series`, `reg/ID/doc_number`, `reg/ID/disabled` | the regional register's entry for participant ID: the category of record, the identity document the look-up uses, a disability (`yes`/`no`) (text) |
//! | rcoi | `reg/ID/attempt`, `reg/ID/admitted`, `reg/ID/admitted_kind` | on an additional date: the participant's first attempt there and why they are admitted (`crate::retake`: the description, and its kind, `failed` after a «незачёт»), as the РЦОИ found them from the earlier dates (text) |
//! | rcoi | `grant/ID/…` | for a reviewing school: the РЦОИ's grant of one recording (`rec/HASH/…` beside it) and one participant's sheets for a re-check, or its refusal (`crate::recheck::grant`) |
//! | rcoi | `recheck/HASH` | for the participant's school: a re-check protocol the РЦОИ checked, whose result counts; `recheck_cert/HASH` the certificate it was signed under |
//! | rcoi | `handed_over/EDITION` | when the РЦОИ first wrote its bundle holding that edition of the school's results (removable media, the direct route; ms) |
//! | rcoi | `published/N` | the РЦОИ's signed results of the school, edition N (`crate::publish`); `rcoi_cert/N` the certificate it was signed under |
//! | directory | `route/SCHOOL` | `direct` for a school whose results the РЦОИ hands over on removable media (state schools and colleges, seed 003 §2.5); absent or `municipal`: through its МОУО |
//! | directory | `materials/EXAM/package` | the РЦОИ's signed statement naming the exam's materials package (`crate::materials`); `materials/EXAM/package_cert` the certificate it was signed under |
//! | directory | `materials/EXAM/release` | the РЦОИ's signed release of the package's code; `materials/EXAM/release_cert` its certificate |
//! | protocol | `materials/opened`, `materials/opened_by`, `materials/opened_package` | when the school opened the exam's materials (ms), how (`release` or `code`, the reserve scheme) and which package (its blob hash) |
//! | protocol | `readiness/HASH` | the technician's signed readiness act (`crate::readiness`); `technician/ID` their certificate (DER) |
//! | protocol | `materials/wrong_codes` | reserve codes typed at the school that did not match (integer) |
//! | results | `delivered` | when the school's node first verified the published results (ms) |
//! | results | `ack/ID` | the organiser's signed record that participant ID has seen the result; `organiser/ID` their certificate |
//!
//! Layout 1 kept the РЦОИ's keys (`receipt/`, `settlement/`, `operator/`, `published`,
//! `rcoi_cert`) in the results document, which the school may write too. Nothing reads them
//! there any more; the РЦОИ carries what is still worth keeping over once (`legacy_*`).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ROOT, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef};

use crate::calendar::Timestamp;
use crate::codes::{ParticipantId, PersonId, RoomCode};
use crate::participant::Participant;
use crate::record::SignedSheet;
use crate::room::{ActNumber, Attendance, Room};

pub(crate) fn text(doc: &impl ReadDoc, key: &str) -> Option<String> {
    match doc.get(ROOT, key).ok().flatten()? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn bytes(doc: &impl ReadDoc, key: &str) -> Option<Vec<u8>> {
    match doc.get(ROOT, key).ok().flatten()? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Bytes(b) => Some(b.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The root keys under `prefix` (which ends in '/'), in order, found through the map's order
/// rather than by reading every key: a protocol holds thousands of sheets, and the РЦОИ reads
/// its certificates, acts and orders after every change that arrives.
pub(crate) fn keys_under<'a>(
    doc: &'a impl ReadDoc,
    prefix: &str,
) -> impl Iterator<Item = String> + 'a {
    entries_under(doc, prefix).map(|item| item.key.into_owned())
}

/// [`keys_under`] with each key's value as it stands, read in the same walk (no lookup per key).
pub(crate) fn entries_under<'a>(
    doc: &'a impl ReadDoc,
    prefix: &str,
) -> impl Iterator<Item = automerge::iter::MapRangeItem<'a>> + 'a {
    debug_assert!(prefix.ends_with('/'), "a prefix ends in '/': {prefix}");
    doc.map_range(ROOT, crate::recording::range_of(prefix))
}

/// The root entries keyed `prefix` + `ID/FIELD` (the first '/' after the prefix ends the id),
/// each given to `visit` with its id, field and value, in key order, in one walk; keys of
/// another shape are skipped.
pub(crate) fn for_each_field<'a>(
    doc: &'a impl ReadDoc,
    prefix: &str,
    mut visit: impl FnMut(&str, &str, &ValueRef<'a>),
) {
    for item in entries_under(doc, prefix) {
        if let Some((id, field)) = item
            .key
            .strip_prefix(prefix)
            .and_then(|k| k.split_once('/'))
        {
            visit(id, field, &item.value);
        }
    }
}

/// A value that is text.
pub(crate) fn text_of<'v>(value: &'v ValueRef<'_>) -> Option<&'v str> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Str(t)) => Some(t),
        _ => None,
    }
}

/// A value that is bytes, copied out.
fn bytes_of(value: &ValueRef<'_>) -> Option<Vec<u8>> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Bytes(b)) => Some(b.to_vec()),
        _ => None,
    }
}

pub(crate) fn int(doc: &impl ReadDoc, key: &str) -> Option<i64> {
    match doc.get(ROOT, key).ok().flatten()? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Writes a participant's roster fields.
pub fn put_participant(tx: &mut impl Transactable, p: &Participant) -> Result<(), AutomergeError> {
    let id = p.id;
    tx.put(ROOT, format!("p/{id}/surname"), p.name.surname())?;
    tx.put(ROOT, format!("p/{id}/given_name"), p.name.given_name())?;
    tx.put(
        ROOT,
        format!("p/{id}/patronymic"),
        p.name.patronymic().unwrap_or(""),
    )?;
    tx.put(ROOT, format!("p/{id}/doc_series"), p.document.series())?;
    tx.put(ROOT, format!("p/{id}/doc_number"), p.document.number())?;
    tx.put(ROOT, format!("p/{id}/class"), p.class.to_string())?;
    tx.put(ROOT, format!("p/{id}/category"), p.category.id())?;
    Ok(())
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

/// Records whether a participant is disabled (инвалид): +30 minutes whatever their category.
pub fn put_disabled(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    disabled: bool,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, format!("p/{participant}/disabled"), yes_no(disabled))?;
    Ok(())
}

/// Records whether a participant answers in writing (seed 002 §61, on the ПМПК's
/// recommendation): `p/ID/written` in the roster, `reg/ID/written` in the register (`reg`).
pub fn put_written(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    written: bool,
    register: bool,
) -> Result<(), AutomergeError> {
    let prefix = if register { "reg" } else { "p" };
    tx.put(
        ROOT,
        format!("{prefix}/{participant}/written"),
        yes_no(written),
    )?;
    Ok(())
}

/// Whether the register says `participant` answers in writing; `None` when it says nothing.
pub fn registered_written(rcoi: &impl ReadDoc, participant: &str) -> Option<bool> {
    match text(rcoi, &format!("reg/{participant}/written"))?.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Records in the register whether a participant is disabled (from the МСЭ papers).
pub fn put_registered_disabled(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    disabled: bool,
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("reg/{participant}/disabled"),
        yes_no(disabled),
    )?;
    Ok(())
}

/// Whether the register says `participant` is disabled; `None` when it says nothing.
pub fn registered_disabled(rcoi: &impl ReadDoc, participant: &str) -> Option<bool> {
    match text(rcoi, &format!("reg/{participant}/disabled"))?.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Declares a room and its capacity.
pub fn put_room(tx: &mut impl Transactable, room: Room) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("room/{}", room.code()),
        i64::from(room.capacity()),
    )?;
    Ok(())
}

/// Assigns a participant to a room.
pub fn assign(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    room: RoomCode,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, format!("p/{participant}/room"), room.as_str())?;
    Ok(())
}

/// Records attendance (with the act's number for early completion and removal).
pub fn mark(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    attendance: &Attendance,
) -> Result<(), AutomergeError> {
    let act = attendance.act().map_or("", ActNumber::as_str);
    tx.put(
        ROOT,
        format!("p/{participant}/attendance"),
        attendance.word(),
    )?;
    tx.put(ROOT, format!("p/{participant}/act"), act)?;
    Ok(())
}

/// Writes the start or end of a participant's answer in `attempt` into the room log, under
/// `log/PARTICIPANT/ATTEMPT/…`: a same-day retake (seed 002 §45) is a second answer beside the
/// first, not written over it.
pub fn log_time(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    attempt: crate::record::Attempt,
    interviewer: Option<PersonId>,
    at: Timestamp,
    end: bool,
) -> Result<(), AutomergeError> {
    let which = if end { "end" } else { "start" };
    let key = |field: &str| format!("log/{participant}/{}/{field}", attempt.get());
    tx.put(ROOT, key(which), at.unix_ms())?;
    if let Some(interviewer) = interviewer {
        tx.put(ROOT, key("interviewer"), interviewer.as_str())?;
    }
    Ok(())
}

/// Moves a participant's room log written before attempts were kept (`log/P/start`, `…/end`,
/// `…/interviewer`) to the keys of the date's `first` attempt, where the numbered entry
/// (`numbered`) does not already say them, and deletes the old keys: an answer is then in one
/// form only.
pub fn number_legacy_log(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    first: crate::record::Attempt,
    legacy: &LogEntry,
    numbered: Option<&LogEntry>,
) -> Result<(), AutomergeError> {
    let key = |field: &str| format!("log/{participant}/{}/{field}", first.get());
    let held = numbered.cloned().unwrap_or_default();
    if let (Some(ms), None) = (legacy.start_ms, held.start_ms) {
        tx.put(ROOT, key("start"), ms)?;
    }
    if let (Some(ms), None) = (legacy.end_ms, held.end_ms) {
        tx.put(ROOT, key("end"), ms)?;
    }
    if let (Some(who), None) = (&legacy.interviewer, &held.interviewer) {
        tx.put(ROOT, key("interviewer"), who.as_str())?;
    }
    for field in ["start", "end", "interviewer"] {
        tx.delete(ROOT, format!("log/{participant}/{field}"))?;
    }
    Ok(())
}

/// Writes the КИМ variant a participant answered in `attempt` into the room log.
pub fn put_variant(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    attempt: crate::record::Attempt,
    variant: crate::room::Variant,
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("log/{participant}/{}/variant", attempt.get()),
        i64::from(variant.get()),
    )?;
    Ok(())
}

/// Adds a signed score sheet (and its expert's certificate) to a protocol.
pub fn put_sheet(
    tx: &mut impl Transactable,
    sheet: &SignedSheet,
    expert: PersonId,
    expert_cert: &[u8],
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("sheet/{}", sheet.hash()),
        ScalarValue::Bytes(sheet.as_bytes().to_vec()),
    )?;
    tx.put(
        ROOT,
        format!("expert/{expert}"),
        ScalarValue::Bytes(expert_cert.to_vec()),
    )?;
    Ok(())
}

/// Adds an organiser's signed act (and their certificate) to a protocol, under the attempt it
/// ends. A second act for one attempt replaces the first (the organiser corrects it).
pub fn put_act(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    attempt: crate::record::Attempt,
    statement: &crate::statement::Statement,
    organiser: PersonId,
    organiser_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("act/{participant}/{}", attempt.get()),
        statement,
        format!("organiser/{organiser}"),
        organiser_cert,
    )
}

/// Adds an edition of the head's signed commission order (and their certificate) to a protocol.
pub fn put_commission(
    tx: &mut impl Transactable,
    edition: u32,
    statement: &crate::statement::Statement,
    head: PersonId,
    head_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("commission/{edition}"),
        statement,
        format!("head/{head}"),
        head_cert,
    )?;
    tx.put(
        ROOT,
        format!("commission_cert/{edition}"),
        ScalarValue::Bytes(head_cert.to_vec()),
    )?;
    Ok(())
}

/// The head's certificate stored with edition `edition` of the commission order.
#[must_use]
pub fn commission_cert(protocol: &impl ReadDoc, edition: u32) -> Option<Vec<u8>> {
    bytes(protocol, &format!("commission_cert/{edition}"))
}

/// The commission orders of a protocol with the edition each is stored under; undecodable ones
/// skipped (verification judges the rest).
pub fn commissions(protocol: &impl ReadDoc) -> Vec<(u32, crate::statement::Statement)> {
    entries_under(protocol, "commission/")
        .filter_map(|item| {
            let edition = item.key.strip_prefix("commission/")?.parse().ok()?;
            let statement = crate::statement::Statement::from_bytes(bytes_of(&item.value)?).ok()?;
            Some((edition, statement))
        })
        .collect()
}

/// The certificates of the heads of the school who signed commission orders, by id.
pub fn head_certs(protocol: &impl ReadDoc) -> BTreeMap<String, Vec<u8>> {
    certs(protocol, "head/")
}

/// Writes a signed statement under `key` and its signer's certificate under `cert_key`.
fn put_signed(
    tx: &mut impl Transactable,
    key: String,
    statement: &crate::statement::Statement,
    cert_key: String,
    cert: &[u8],
) -> Result<(), AutomergeError> {
    tx.put(ROOT, key, ScalarValue::Bytes(statement.as_bytes().to_vec()))?;
    tx.put(ROOT, cert_key, ScalarValue::Bytes(cert.to_vec()))?;
    Ok(())
}

/// Adds a commission's signed settlement to a school's protocol, with the signer's certificate
/// under their capacity's prefix (`head/ID` for the chair, `expert/ID` for a room's expert).
pub fn put_commission_settlement(
    tx: &mut impl Transactable,
    statement: &crate::statement::Statement,
    signer: (PersonId, crate::settlement::Settler),
    cert: &[u8],
) -> Result<(), AutomergeError> {
    let prefix = match signer.1 {
        crate::settlement::Settler::Chair => "head",
        crate::settlement::Settler::RoomExpert => "expert",
    };
    put_signed(
        tx,
        format!("settled/{}", statement.hash()),
        statement,
        format!("{prefix}/{}", signer.0),
        cert,
    )?;
    tx.put(
        ROOT,
        format!("settled_cert/{}", statement.hash()),
        ScalarValue::Bytes(cert.to_vec()),
    )?;
    Ok(())
}

/// The certificate a commission settlement was signed under, kept with it.
#[must_use]
pub fn commission_settlement_cert(
    protocol: &impl ReadDoc,
    hash: crate::record::RecordHash,
) -> Option<Vec<u8>> {
    bytes(protocol, &format!("settled_cert/{hash}"))
}

/// The commission settlements of a protocol, undecodable ones skipped.
pub fn commission_settlements(protocol: &impl ReadDoc) -> Vec<crate::statement::Statement> {
    statements(protocol, "settled/")
}

/// The acts of a protocol, undecodable ones skipped (verification judges the rest).
pub fn acts(protocol: &impl ReadDoc) -> Vec<crate::statement::Statement> {
    statements(protocol, "act/")
}

/// Records in a school's РЦОИ document that the РЦОИ holds a sheet and what it found:
/// `receipt/HASH` → `verified` or `invalid: REASON`.
pub fn put_receipt(
    tx: &mut impl Transactable,
    sheet: &crate::record::RecordHash,
    verdict: &str,
) -> Result<(), AutomergeError> {
    let (key, value) = receipt_entry(sheet, verdict);
    tx.put(ROOT, key, value)?;
    Ok(())
}

/// A receipt as [`put_receipt`] writes it, as a root-map entry (key, value): what the РЦОИ's
/// ingest puts many at once (`Engine::put_root`).
#[must_use]
pub fn receipt_entry(
    sheet: &crate::record::RecordHash,
    verdict: &str,
) -> (String, automerge::ScalarValue) {
    (format!("receipt/{sheet}"), verdict.into())
}

/// Records why an absent participant was absent (seed 002 §70: a valid reason admits them to
/// an additional date).
pub fn put_absence(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    reason: &crate::retake::AbsenceReason,
) -> Result<(), AutomergeError> {
    let (word, document) = match reason {
        crate::retake::AbsenceReason::Valid { document } => ("valid", document.as_str()),
        crate::retake::AbsenceReason::NotValid => ("not-valid", ""),
    };
    tx.put(ROOT, format!("p/{participant}/absence"), word)?;
    tx.put(ROOT, format!("p/{participant}/absence_document"), document)?;
    Ok(())
}

/// The reason a roster row gives for an absence ([`put_absence`]); `None` when it gives none
/// (or one that does not read).
#[must_use]
pub fn absence(row: &RosterRow) -> Option<crate::retake::AbsenceReason> {
    match row.get("absence") {
        "valid" => crate::retake::AbsenceReason::valid(row.get("absence_document")).ok(),
        "not-valid" => Some(crate::retake::AbsenceReason::NotValid),
        _ => None,
    }
}

/// Records in the register of an additional date why a participant is admitted and their first
/// attempt there.
pub fn put_registered_admission(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    first_attempt: crate::record::Attempt,
    admitted: &str,
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("reg/{participant}/attempt"),
        first_attempt.get().to_string(),
    )?;
    tx.put(ROOT, format!("reg/{participant}/admitted"), admitted)?;
    Ok(())
}

/// Records in the register of an additional date the kind of a participant's admission
/// (`reg/ID/admitted_kind`, [`crate::retake::Admission::kind_id`]), which the re-check of a
/// second «незачёт» is judged on (`crate::recheck`).
pub fn put_registered_admission_kind(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    admission: &crate::retake::Admission,
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("reg/{participant}/admitted_kind"),
        admission.kind_id(),
    )?;
    Ok(())
}

/// Whether the register of this date admitted `participant` after a «незачёт» on an earlier
/// date (so a «незачёт» here is their second).
#[must_use]
pub fn registered_after_fail(rcoi: &impl ReadDoc, participant: &str) -> bool {
    text(rcoi, &format!("reg/{participant}/admitted_kind")).as_deref()
        == Some(crate::retake::ADMITTED_AFTER_FAIL)
}

/// The first attempt of `participant` on the register's date, when the register says one.
#[must_use]
pub fn registered_attempt(
    rcoi: &impl ReadDoc,
    participant: &str,
) -> Option<crate::record::Attempt> {
    let n: u8 = text(rcoi, &format!("reg/{participant}/attempt"))?
        .parse()
        .ok()?;
    crate::record::Attempt::new(n).ok()
}

/// Writes a participant's entry in the regional register (the school's РЦОИ document): the
/// category of record, which sets the criteria and the pass mark, and the identity document the
/// results look-up goes by. Only the РЦОИ writes that document, so a school cannot change them;
/// what a school writes in its roster is a request until the РЦОИ approves it.
pub fn put_registered(tx: &mut impl Transactable, p: &Participant) -> Result<(), AutomergeError> {
    let id = p.id;
    tx.put(ROOT, format!("reg/{id}/category"), p.category.id())?;
    tx.put(ROOT, format!("reg/{id}/doc_series"), p.document.series())?;
    tx.put(ROOT, format!("reg/{id}/doc_number"), p.document.number())?;
    Ok(())
}

/// Writes the identity document of a participant in the register (`reg/ID/doc_series`,
/// `reg/ID/doc_number`), as the results of итоговое сочинение (изложение) bring it: the look-up
/// finds their result by it.
pub fn put_registered_document(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    document: &crate::participant::IdentityDocument,
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("reg/{participant}/doc_series"),
        document.series(),
    )?;
    tx.put(
        ROOT,
        format!("reg/{participant}/doc_number"),
        document.number(),
    )?;
    Ok(())
}

/// Sets the category of record of a participant already in the register (an approved change).
pub fn put_registered_category(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    category: crate::participant::Category,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, format!("reg/{participant}/category"), category.id())?;
    Ok(())
}

/// The category of record of `participant` in a school's РЦОИ document; `None` when the register
/// holds no valid one.
pub fn registered_category(
    rcoi: &impl ReadDoc,
    participant: &str,
) -> Option<crate::participant::Category> {
    text(rcoi, &format!("reg/{participant}/category"))?
        .parse()
        .ok()
}

/// Whether a school's РЦОИ document holds any entry of the register (reads one key at most).
pub fn has_register(rcoi: &impl ReadDoc) -> bool {
    rcoi.map_range(ROOT, "reg/".to_owned().."reg0".to_owned())
        .next()
        .is_some()
}

/// Every participant of the register in a school's РЦОИ document, by id, as raw fields
/// (`category`, `doc_series`, `doc_number`).
pub fn registered(rcoi: &impl ReadDoc) -> BTreeMap<String, RosterRow> {
    rows_under(rcoi, "reg/", "reg0")
}

/// The РЦОИ's receipts in its document for a school, by sheet hash (hex).
pub fn receipts(rcoi: &impl ReadDoc) -> BTreeMap<String, String> {
    entries_under(rcoi, "receipt/")
        .filter_map(|item| {
            Some((
                item.key.strip_prefix("receipt/")?.to_owned(),
                text_of(&item.value)?.to_owned(),
            ))
        })
        .collect()
}

/// Adds a settlement (and its operator's certificate) to a school's РЦОИ document.
pub fn put_settlement(
    tx: &mut impl Transactable,
    statement: &crate::statement::Statement,
    operator: PersonId,
    operator_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_by_operator(tx, "settlement", statement, operator, operator_cert)
}

/// Adds an operator's signed approval of a category of record (and their certificate) to a
/// school's РЦОИ document (`crate::approval`).
pub fn put_approval(
    tx: &mut impl Transactable,
    statement: &crate::statement::Statement,
    operator: PersonId,
    operator_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_by_operator(tx, "approval", statement, operator, operator_cert)
}

/// A РЦОИ operator's signed record under `PREFIX/HASH`, their certificate under `operator/ID`.
fn put_by_operator(
    tx: &mut impl Transactable,
    prefix: &str,
    statement: &crate::statement::Statement,
    operator: PersonId,
    operator_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("{prefix}/{}", statement.hash()),
        statement,
        format!("operator/{operator}"),
        operator_cert,
    )
}

/// The operators' signed approvals of categories in a school's РЦОИ document.
pub fn approvals(rcoi: &impl ReadDoc) -> Vec<crate::statement::Statement> {
    statements(rcoi, "approval/")
}

/// Every signed statement under `prefix` (`settlement/`, `ack/`), undecodable ones skipped.
pub(crate) fn statements(doc: &impl ReadDoc, prefix: &str) -> Vec<crate::statement::Statement> {
    entries_under(doc, prefix)
        .filter_map(|item| crate::statement::Statement::from_bytes(bytes_of(&item.value)?).ok())
        .collect()
}

/// The settlements in a school's РЦОИ document.
pub fn settlements(rcoi: &impl ReadDoc) -> Vec<crate::statement::Statement> {
    statements(rcoi, "settlement/")
}

/// The certificates of the people under `prefix` (`operator/`, `organiser/`), by id.
fn certs(doc: &impl ReadDoc, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    entries_under(doc, prefix)
        .filter_map(|item| {
            Some((
                item.key.strip_prefix(prefix)?.to_owned(),
                bytes_of(&item.value)?,
            ))
        })
        .collect()
}

/// The operators' certificates in a school's РЦОИ document, by id.
pub fn operator_certs(rcoi: &impl ReadDoc) -> BTreeMap<String, Vec<u8>> {
    certs(rcoi, "operator/")
}

/// The organisers' certificates in a school's results document or protocol, by id.
pub fn organiser_certs(doc: &impl ReadDoc) -> BTreeMap<String, Vec<u8>> {
    certs(doc, "organiser/")
}

/// One publication of a school's results as stored: its edition (from the key), the РЦОИ's
/// signed statement and the certificate it was signed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPublication {
    pub edition: u32,
    pub statement: crate::statement::Statement,
    pub rcoi_cert: Vec<u8>,
}

/// Every publication in a school's РЦОИ document, newest edition first; undecodable ones
/// skipped (verification judges the rest).
pub fn publications(rcoi: &impl ReadDoc) -> Vec<StoredPublication> {
    let mut out: Vec<StoredPublication> = keys_under(rcoi, "published/")
        .filter_map(|k| {
            let edition: u32 = k.strip_prefix("published/")?.parse().ok()?;
            Some(StoredPublication {
                edition,
                statement: crate::statement::Statement::from_bytes(bytes(rcoi, &k)?).ok()?,
                rcoi_cert: bytes(rcoi, &format!("rcoi_cert/{edition}"))?,
            })
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.edition));
    out
}

/// The next edition to publish: one past the highest stored (1 when none is).
pub fn next_edition(rcoi: &impl ReadDoc) -> u32 {
    keys_under(rcoi, "published/")
        .filter_map(|k| k.strip_prefix("published/")?.parse::<u32>().ok())
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

/// Publishes edition `edition` of a school's results (signed by the РЦОИ node) with the node's
/// certificate. Editions are never overwritten: a reader takes the newest that verifies.
pub fn put_published(
    tx: &mut impl Transactable,
    edition: u32,
    statement: &crate::statement::Statement,
    rcoi_cert: &[u8],
) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        format!("published/{edition}"),
        ScalarValue::Bytes(statement.as_bytes().to_vec()),
    )?;
    tx.put(
        ROOT,
        format!("rcoi_cert/{edition}"),
        ScalarValue::Bytes(rcoi_cert.to_vec()),
    )?;
    Ok(())
}

/// Layout 1: the settlements and operators' certificates a results document held.
pub fn legacy_settlements(
    results: &impl ReadDoc,
) -> (Vec<crate::statement::Statement>, BTreeMap<String, Vec<u8>>) {
    (
        statements(results, "settlement/"),
        certs(results, "operator/"),
    )
}

/// Layout 1: the publication a results document held under `published`, with `rcoi_cert`.
pub fn legacy_published(results: &impl ReadDoc) -> Option<(crate::statement::Statement, Vec<u8>)> {
    let statement = crate::statement::Statement::from_bytes(bytes(results, "published")?).ok()?;
    Some((statement, bytes(results, "rcoi_cert")?))
}

/// When the school's node first verified the published results.
pub fn delivered(doc: &impl ReadDoc) -> Option<Timestamp> {
    Timestamp::from_unix_ms(int(doc, "delivered")?).ok()
}

/// Records when the school's node verified the published results.
pub fn put_delivered(tx: &mut impl Transactable, at: Timestamp) -> Result<(), AutomergeError> {
    tx.put(ROOT, "delivered", at.unix_ms())?;
    Ok(())
}

/// Adds a familiarisation record (and the organiser's certificate).
pub fn put_ack(
    tx: &mut impl Transactable,
    participant: ParticipantId,
    statement: &crate::statement::Statement,
    organiser: PersonId,
    organiser_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("ack/{participant}"),
        statement,
        format!("organiser/{organiser}"),
        organiser_cert,
    )
}

/// The familiarisation records of a results document.
pub fn acks(doc: &impl ReadDoc) -> Vec<crate::statement::Statement> {
    statements(doc, "ack/")
}

/// A participant as the roster shows them: the raw fields, so a damaged field never hides the row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterRow {
    pub fields: BTreeMap<String, String>,
}

impl RosterRow {
    #[must_use]
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }
}

/// Every participant of a roster, by id.
pub fn participants(doc: &impl ReadDoc) -> BTreeMap<String, RosterRow> {
    rows_under(doc, "p/", "p0")
}

/// The rows under `prefix` (`p/`, `reg/`): keys `PREFIXID/FIELD`, by id. `end` is the prefix
/// with its '/' replaced by '0', the next character, so the range holds exactly the prefix.
fn rows_under(doc: &impl ReadDoc, prefix: &str, end: &str) -> BTreeMap<String, RosterRow> {
    let mut out: BTreeMap<String, RosterRow> = BTreeMap::new();
    let keys: Vec<String> = doc
        .map_range(ROOT, prefix.to_owned()..end.to_owned())
        .map(|item| item.key.into_owned())
        .collect();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let Some((id, field)) = rest.split_once('/') else {
            continue;
        };
        if let Some(value) = text(doc, &key) {
            out.entry(id.to_owned())
                .or_default()
                .fields
                .insert(field.to_owned(), value);
        }
    }
    out
}

/// One answer in the room log: its start, end, interviewer and КИМ variant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogEntry {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub interviewer: Option<String>,
    pub variant: Option<crate::room::Variant>,
}

/// A participant's room log: an answer per attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParticipantLog {
    /// The answers by attempt number.
    pub attempts: BTreeMap<u8, LogEntry>,
    /// An answer logged before the log kept attempts (`log/PARTICIPANT/start`): the date's first
    /// attempt, the only one that log could hold.
    pub unnumbered: Option<LogEntry>,
}

impl ParticipantLog {
    /// The answer of `attempt`; `first` is the date's first attempt, which an unnumbered answer
    /// belongs to.
    #[must_use]
    pub fn answer(&self, attempt: u8, first: u8) -> Option<&LogEntry> {
        self.attempts
            .get(&attempt)
            .or_else(|| self.unnumbered.as_ref().filter(|_| attempt == first))
    }

    /// Every answer logged, unnumbered first.
    pub fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.unnumbered.iter().chain(self.attempts.values())
    }

    /// The answer of the highest attempt logged.
    #[must_use]
    pub fn latest(&self) -> Option<&LogEntry> {
        self.attempts
            .values()
            .next_back()
            .or(self.unnumbered.as_ref())
    }
}

/// The room log of a protocol, by participant id.
pub fn logs(doc: &impl ReadDoc) -> BTreeMap<String, ParticipantLog> {
    let mut out: BTreeMap<String, ParticipantLog> = BTreeMap::new();
    let keys: Vec<String> = doc
        .map_range(ROOT, "log/".to_owned().."log0".to_owned())
        .map(|item| item.key.into_owned())
        .collect();
    for key in keys {
        let Some(rest) = key.strip_prefix("log/") else {
            continue;
        };
        let mut parts = rest.split('/');
        let (Some(id), Some(second), third, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let attempt = match third {
            None if matches!(second, "start" | "end" | "interviewer") => None,
            Some(_) => match second.parse::<u8>() {
                Ok(attempt) if attempt > 0 => Some(attempt),
                _ => continue,
            },
            None => continue,
        };
        let log = out.entry(id.to_owned()).or_default();
        let (entry, field) = match (attempt, third) {
            (Some(attempt), Some(field)) => (log.attempts.entry(attempt).or_default(), field),
            _ => (log.unnumbered.get_or_insert_with(LogEntry::default), second),
        };
        match field {
            "start" => entry.start_ms = int(doc, &key),
            "end" => entry.end_ms = int(doc, &key),
            "interviewer" => entry.interviewer = text(doc, &key),
            "variant" => {
                entry.variant = int(doc, &key)
                    .and_then(|v| u16::try_from(v).ok())
                    .and_then(|v| crate::room::Variant::new(v).ok());
            }
            _ => {}
        }
    }
    out
}

/// The participants of the register in a school's РЦОИ document whose identity document is
/// `series` `number` (normalised as [`crate::participant::IdentityDocument`] stores them). Reads
/// every participant's document fields whether or not one matches. The roster is not read: a
/// school may write it, and must not be able to point a document at another participant's
/// results.
pub fn find_by_document(rcoi: &impl ReadDoc, series: &str, number: &str) -> Vec<String> {
    let keys: Vec<String> = rcoi
        .map_range(ROOT, "reg/".to_owned().."reg0".to_owned())
        .map(|item| item.key.into_owned())
        .filter(|k| k.ends_with("/doc_number"))
        .collect();
    let mut found = Vec::new();
    for key in keys {
        let Some(id) = key
            .strip_prefix("reg/")
            .and_then(|r| r.strip_suffix("/doc_number"))
        else {
            continue;
        };
        let number_matches = text(rcoi, &key).is_some_and(|n| n == number);
        let series_matches =
            text(rcoi, &format!("reg/{id}/doc_series")).is_some_and(|s| s == series);
        if number_matches & series_matches {
            found.push(id.to_owned());
        }
    }
    found
}

/// Every room and its capacity.
pub fn rooms(doc: &impl ReadDoc) -> BTreeMap<String, i64> {
    keys_under(doc, "room/")
        .filter_map(|k| Some((k.strip_prefix("room/")?.to_owned(), int(doc, &k)?)))
        .collect()
}

/// Every score sheet in a protocol (undecodable entries are skipped here; verification reports
/// them).
/// A sheet counts only under its own key (`sheet/` and its hash): one written under another
/// sheet's key would otherwise borrow that sheet's receipt.
pub fn sheets(doc: &impl ReadDoc) -> Vec<SignedSheet> {
    entries_under(doc, "sheet/")
        .filter_map(|item| {
            let sheet = SignedSheet::from_bytes(bytes_of(&item.value)?).ok()?;
            under_own_key(&item.key, &sheet).then_some(sheet)
        })
        .collect()
}

/// How many sheets a protocol holds under `sheet/` keys, read from the keys alone (no sheet is
/// parsed or hashed): what the metrics count on every scrape.
pub fn sheet_count(doc: &impl ReadDoc) -> usize {
    doc.map_range(ROOT, "sheet/".to_owned().."sheet0".to_owned())
        .count()
}

/// Whether `key` is `sheet/` and the sheet's own hash.
fn under_own_key(key: &str, sheet: &SignedSheet) -> bool {
    key.strip_prefix("sheet/") == Some(sheet.hash().to_string().as_str())
}

/// The score sheets of a protocol that have no receipt in the school's РЦОИ document yet; a
/// sheet whose key names a receipted hash is not even decoded (this runs at the РЦОИ after every
/// change).
pub fn sheets_not_receipted(
    protocol: &impl ReadDoc,
    rcoi: Option<&impl ReadDoc>,
) -> Vec<SignedSheet> {
    sheets_to_judge(protocol, rcoi, |_| false, false).new
}

/// The sheets of a protocol a receipt pass at the РЦОИ may judge ([`sheets_to_judge`]).
#[derive(Debug, Default)]
pub struct ToJudge {
    /// Sheets with no receipt yet.
    pub new: Vec<SignedSheet>,
    /// Receipted sheets whose receipt's text the caller picked, each with that text (when
    /// asked for).
    pub again: Vec<(SignedSheet, String)>,
    /// How many receipts the caller picked, whether or not their sheets were taken.
    pub picked: usize,
}

/// The sheets of a protocol with no receipt in the school's РЦОИ document yet, and, when
/// `take_again`, those whose receipt's text `again` picks (how many it picks is counted either
/// way). A sheet whose key names a receipted hash is decoded only when it is taken (this runs at
/// the РЦОИ after every change).
pub fn sheets_to_judge(
    protocol: &impl ReadDoc,
    rcoi: Option<&impl ReadDoc>,
    again: impl Fn(&str) -> bool,
    take_again: bool,
) -> ToJudge {
    // Both ranges are in the order of the hashes' text: one pass over each, side by side, the
    // keys read where they lie.
    let mut receipted = rcoi
        .into_iter()
        .flat_map(|r| entries_under(r, "receipt/"))
        .peekable();
    let mut found = ToJudge::default();
    for item in entries_under(protocol, "sheet/") {
        let Some(hash) = item.key.strip_prefix("sheet/") else {
            continue;
        };
        while receipted
            .next_if(|r| r.key.strip_prefix("receipt/").is_some_and(|r| r < hash))
            .is_some()
        {}
        let receipt = receipted
            .peek()
            .filter(|r| r.key.strip_prefix("receipt/") == Some(hash))
            .map(|r| text_of(&r.value).unwrap_or_default());
        if let Some(text) = receipt {
            if !again(text) {
                continue;
            }
            found.picked += 1;
            if !take_again {
                continue;
            }
        }
        let Some(sheet) = bytes_of(&item.value).and_then(|b| SignedSheet::from_bytes(b).ok())
        else {
            continue;
        };
        // Under its own key, so the receipt looked up by the key was the sheet's.
        if !under_own_key(&item.key, &sheet) {
            continue;
        }
        match receipt {
            None => found.new.push(sheet),
            Some(text) => found.again.push((sheet, text.to_owned())),
        }
    }
    found
}

/// The experts' certificates a protocol carries.
pub fn expert_certs(doc: &impl ReadDoc) -> BTreeMap<String, Vec<u8>> {
    certs(doc, "expert/")
}

/// Adds a technician's signed readiness act (and their certificate) to a school's protocol.
pub fn put_readiness(
    tx: &mut impl Transactable,
    statement: &crate::statement::Statement,
    technician: PersonId,
    technician_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("readiness/{}", statement.hash()),
        statement,
        format!("technician/{technician}"),
        technician_cert,
    )
}

/// The readiness acts of a protocol, undecodable ones skipped.
pub fn readiness_acts(protocol: &impl ReadDoc) -> Vec<crate::statement::Statement> {
    statements(protocol, "readiness/")
}

/// The technicians' certificates in a school's protocol, by id.
pub fn technician_certs(protocol: &impl ReadDoc) -> BTreeMap<String, Vec<u8>> {
    certs(protocol, "technician/")
}

/// Records in a school's РЦОИ document that the РЦОИ handed edition `edition` of its results
/// over on removable media (`handed_over/EDITION`, ms; the first time counts): the direct
/// route's results-to-school step (seed 003 §2.5).
pub fn put_handed_over(
    tx: &mut impl Transactable,
    edition: u32,
    at: Timestamp,
) -> Result<(), AutomergeError> {
    let key = format!("handed_over/{edition}");
    if int(tx, &key).is_none() {
        tx.put(ROOT, key, at.unix_ms())?;
    }
    Ok(())
}

/// When the РЦОИ first handed edition `edition` of a school's results over on removable media.
#[must_use]
pub fn handed_over(rcoi: &impl ReadDoc, edition: u32) -> Option<Timestamp> {
    Timestamp::from_unix_ms(int(rcoi, &format!("handed_over/{edition}"))?).ok()
}

/// Puts a school on a route of results (`route/SCHOOL` in the region directory, which only the
/// РЦОИ writes): through its МОУО, or straight from the РЦОИ (seed 003 §2.3, §2.5).
pub fn put_route(
    tx: &mut impl Transactable,
    school: crate::codes::SchoolCode,
    route: crate::year::Route,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, format!("route/{school}"), route.id())?;
    Ok(())
}

/// The schools the region directory puts on a route; a school not listed takes the municipal
/// one. An entry that does not read is left out.
pub fn routes(directory: &impl ReadDoc) -> BTreeMap<crate::codes::SchoolCode, crate::year::Route> {
    directory
        .map_range(ROOT, crate::recording::range_of("route/"))
        .filter_map(|item| {
            let school = crate::codes::SchoolCode::new(item.key.strip_prefix("route/")?).ok()?;
            Some((school, text(directory, &item.key)?.parse().ok()?))
        })
        .collect()
}

/// One exam's materials as the region directory holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMaterials {
    pub package: crate::statement::Statement,
    pub package_cert: Vec<u8>,
    /// The release and its certificate, once the РЦОИ made it.
    pub release: Option<(crate::statement::Statement, Vec<u8>)>,
}

/// Names an exam's materials package in the directory (replacing one not yet released).
pub fn put_package(
    tx: &mut impl Transactable,
    exam: crate::exam::ExamId,
    statement: &crate::statement::Statement,
    rcoi_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("materials/{exam}/package"),
        statement,
        format!("materials/{exam}/package_cert"),
        rcoi_cert,
    )
}

/// Writes the release of an exam's materials into the directory.
pub fn put_release(
    tx: &mut impl Transactable,
    exam: crate::exam::ExamId,
    statement: &crate::statement::Statement,
    rcoi_cert: &[u8],
) -> Result<(), AutomergeError> {
    put_signed(
        tx,
        format!("materials/{exam}/release"),
        statement,
        format!("materials/{exam}/release_cert"),
        rcoi_cert,
    )
}

/// Every exam's materials the directory names, by exam; undecodable entries are left out.
pub fn materials(directory: &impl ReadDoc) -> BTreeMap<crate::exam::ExamId, StoredMaterials> {
    let statement =
        |key: &str| crate::statement::Statement::from_bytes(bytes(directory, key)?).ok();
    keys_under(directory, "materials/")
        .filter_map(|k| {
            let exam = k.strip_prefix("materials/")?.strip_suffix("/package")?;
            let exam: crate::exam::ExamId = exam.parse().ok()?;
            let release = statement(&format!("materials/{exam}/release")).and_then(|r| {
                Some((
                    r,
                    bytes(directory, &format!("materials/{exam}/release_cert"))?,
                ))
            });
            Some((
                exam,
                StoredMaterials {
                    package: statement(&k)?,
                    package_cert: bytes(directory, &format!("materials/{exam}/package_cert"))?,
                    release,
                },
            ))
        })
        .collect()
}

/// Records in a school's protocol when and how it opened the exam's materials package
/// `package`.
pub fn put_opened(
    tx: &mut impl Transactable,
    at: Timestamp,
    by: crate::materials::OpenedBy,
    package: &crate::blob::BlobHash,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, "materials/opened", at.unix_ms())?;
    tx.put(ROOT, "materials/opened_by", by.id())?;
    tx.put(ROOT, "materials/opened_package", package.to_string())?;
    Ok(())
}

/// When and how the school opened the exam's materials, and which package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    pub at: Timestamp,
    pub by: Option<crate::materials::OpenedBy>,
    pub package: Option<crate::blob::BlobHash>,
}

/// When, how and which package the school opened of the exam's materials.
pub fn opened(protocol: &impl ReadDoc) -> Option<Opened> {
    let at = Timestamp::from_unix_ms(int(protocol, "materials/opened")?).ok()?;
    let by =
        text(protocol, "materials/opened_by").and_then(|t| crate::materials::OpenedBy::from_id(&t));
    let package = text(protocol, "materials/opened_package").and_then(|t| t.parse().ok());
    Some(Opened { at, by, package })
}

/// Records how many reserve codes typed at the school did not match.
pub fn put_wrong_codes(tx: &mut impl Transactable, count: u32) -> Result<(), AutomergeError> {
    tx.put(ROOT, "materials/wrong_codes", i64::from(count))?;
    Ok(())
}

/// How many reserve codes typed at the school did not match.
pub fn wrong_codes(protocol: &impl ReadDoc) -> u32 {
    int(protocol, "materials/wrong_codes")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::participant::{Category, FullName, IdentityDocument, SchoolClass};
    use automerge::Automerge;

    #[test]
    fn a_roster_round_trips_and_concurrent_edits_merge_field_by_field() {
        let p = Participant {
            id: ParticipantId::new("1").unwrap(),
            name: FullName::new("Иванова", "Анна", "Петровна").unwrap(),
            document: IdentityDocument::new("3204", "123456").unwrap(),
            class: SchoolClass::new("9А").unwrap(),
            category: Category::Autism,
        };
        let mut a = Automerge::new();
        let mut tx = a.transaction();
        put_participant(&mut tx, &p).unwrap();
        put_room(
            &mut tx,
            Room::new(RoomCode::new("101").unwrap(), 10).unwrap(),
        )
        .unwrap();
        tx.commit();
        let mut b = a.fork();
        let mut tx = a.transaction();
        assign(&mut tx, p.id, RoomCode::new("101").unwrap()).unwrap();
        tx.commit();
        let mut tx = b.transaction();
        mark(&mut tx, p.id, &Attendance::Absent).unwrap();
        tx.commit();
        a.merge(&mut b).unwrap();
        let rows = participants(&a);
        let row = &rows["1"];
        assert_eq!(
            (
                row.get("surname"),
                row.get("room"),
                row.get("attendance"),
                row.get("category")
            ),
            ("Иванова", "101", "absent", "autism")
        );
        assert_eq!(rooms(&a)["101"], 10);
    }

    #[test]
    fn publications_are_numbered_and_never_overwritten() {
        let mut doc = Automerge::new();
        assert_eq!(next_edition(&doc), 1);
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let statement = |n: &str| {
            crate::statement::Statement::sign(
                crate::statement::StatementKind::Results,
                &crate::statement::Fields::new().with("n", n),
                &key,
            )
            .unwrap()
        };
        for (edition, text) in [(1, "first"), (2, "second")] {
            let mut tx = doc.transaction();
            put_published(&mut tx, edition, &statement(text), b"cert").unwrap();
            tx.commit();
        }
        assert_eq!(next_edition(&doc), 3);
        let held = publications(&doc);
        assert_eq!(
            held.iter().map(|p| p.edition).collect::<Vec<_>>(),
            vec![2, 1],
            "newest first, both kept"
        );
        assert_eq!(held[1].statement, statement("first"));
    }

    /// A sheet written under another sheet's key (one the РЦОИ already receipted) is neither
    /// judged again nor counted: it would otherwise borrow that receipt.
    #[test]
    fn a_sheet_under_another_sheets_key_is_not_a_sheet() {
        use crate::record::fixtures::{draft, sign};
        let receipted = sign(draft("p1", 12, 1), 1);
        let smuggled = sign(draft("p2", 20, 2), 2);
        let mut protocol = Automerge::new();
        let mut tx = protocol.transaction();
        tx.put(
            ROOT,
            format!("sheet/{}", receipted.hash()),
            ScalarValue::Bytes(smuggled.as_bytes().to_vec()),
        )
        .unwrap();
        tx.commit();
        assert!(sheets(&protocol).is_empty());
        let none: Option<&Automerge> = None;
        assert!(sheets_not_receipted(&protocol, none).is_empty());
        // Under its own key it is a sheet.
        let mut tx = protocol.transaction();
        put_sheet(&mut tx, &smuggled, PersonId::new("e-2").unwrap(), b"cert").unwrap();
        tx.commit();
        assert_eq!(sheets(&protocol), vec![smuggled]);
    }

    /// Receipted and new sheets interleave in hash order: each new one is found, no receipted
    /// one is, and other keys of either document (a certificate, a registered row) are no sheet
    /// and no receipt.
    #[test]
    fn sheets_not_receipted_are_exactly_those_without_a_receipt() {
        use crate::record::fixtures::{draft, sign};
        let all: Vec<SignedSheet> = (0..12u8)
            .map(|i| sign(draft(&format!("p{i}"), 5 + u16::from(i), 1), 1))
            .collect();
        let mut protocol = Automerge::new();
        let mut tx = protocol.transaction();
        for sheet in &all {
            put_sheet(&mut tx, sheet, PersonId::new("e-1").unwrap(), b"cert").unwrap();
        }
        tx.commit();
        let mut rcoi = Automerge::new();
        let mut tx = rcoi.transaction();
        tx.put(ROOT, "reg/p1/category", "general").unwrap();
        // Every third sheet in the order they were made, whatever their hashes' order.
        for sheet in all.iter().step_by(3) {
            put_receipt(&mut tx, &sheet.hash(), "verified").unwrap();
        }
        tx.commit();
        let mut expected: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, s)| s.hash().to_string())
            .collect();
        expected.sort();
        let mut found: Vec<String> = sheets_not_receipted(&protocol, Some(&rcoi))
            .iter()
            .map(|s| s.hash().to_string())
            .collect();
        found.sort();
        assert_eq!(found, expected);
        let none: Option<&Automerge> = None;
        assert_eq!(sheets_not_receipted(&protocol, none).len(), all.len());
    }
}
