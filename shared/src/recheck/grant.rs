//! The РЦОИ's grant of one recording and one participant's sheets to a reviewing school, kept in
//! the РЦОИ's document for that school, which only the РЦОИ writes and the school reads:
//!
//! | key | value |
//! |---|---|
//! | `grant/ID/request` | the head's signed request (bytes); ID is its hash |
//! | `grant/ID/recording` | the hash of the recording granted, named beside it as a protocol names it (`rec/HASH/…`, [`crate::recording`]) |
//! | `grant/ID/category` | the participant's category of record (the register's) |
//! | `grant/ID/sheet/HASH` | each of the participant's sheets of the attempt (bytes), as the school signed them |
//! | `grant/ID/cert/PERSON` | the certificate of each expert who signed one (DER) |
//! | `grant/ID/granted_at`, `grant/ID/until` | when the grant was made and when its term ends (ms) |
//! | `grant/ID/closed` | when it ended: the re-check arrived, or the term passed (ms); the sheets and certificates are taken out then |
//! | `grant/ID/refused` | instead of all of the above but the request: why the РЦОИ refused it (text) |

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ROOT, ReadDoc, ScalarValue};

use super::Request;
use crate::blob::BlobHash;
use crate::calendar::Timestamp;
use crate::participant::Category;
use crate::record::{RecordHash, SignedSheet};
use crate::recording::Recording;
use crate::statement::Statement;

/// A grant as the РЦОИ writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The request's hash: the grant's id.
    pub id: RecordHash,
    pub request: Statement,
    pub recording: Recording,
    pub category: Category,
    pub sheets: Vec<SignedSheet>,
    /// The certificates of the sheets' experts, by person id.
    pub certs: BTreeMap<String, Vec<u8>>,
    pub granted_at: Timestamp,
    pub until: Timestamp,
    pub closed: Option<Timestamp>,
}

impl Grant {
    /// Whether the reviewing school may read the recording at `now`.
    #[must_use]
    pub fn live(&self, now: Timestamp) -> bool {
        self.closed.is_none() && now < self.until
    }
}

/// What the РЦОИ answered to a request, as its document for the reviewing school holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Granted(Box<Grant>),
    Refused { request: Statement, reason: String },
}

fn key(id: RecordHash, field: &str) -> String {
    format!("grant/{id}/{field}")
}

fn ms(t: Timestamp) -> ScalarValue {
    ScalarValue::Int(t.unix_ms())
}

/// Writes a grant (the recording named beside it).
pub fn put(tx: &mut impl Transactable, g: &Grant) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        key(g.id, "request"),
        ScalarValue::Bytes(g.request.as_bytes().to_vec()),
    )?;
    crate::recording::put_recording(tx, &g.recording)?;
    tx.put(
        ROOT,
        key(g.id, "recording"),
        g.recording.blob.hash.to_string(),
    )?;
    tx.put(ROOT, key(g.id, "category"), g.category.id())?;
    for sheet in &g.sheets {
        tx.put(
            ROOT,
            key(g.id, &format!("sheet/{}", sheet.hash())),
            ScalarValue::Bytes(sheet.as_bytes().to_vec()),
        )?;
    }
    for (person, der) in &g.certs {
        tx.put(
            ROOT,
            key(g.id, &format!("cert/{person}")),
            ScalarValue::Bytes(der.clone()),
        )?;
    }
    tx.put(ROOT, key(g.id, "granted_at"), ms(g.granted_at))?;
    tx.put(ROOT, key(g.id, "until"), ms(g.until))?;
    Ok(())
}

/// Records that the РЦОИ refused a request, and why.
pub fn put_refused(
    tx: &mut impl Transactable,
    request: &Statement,
    reason: &str,
) -> Result<(), AutomergeError> {
    let id = request.hash();
    tx.put(
        ROOT,
        key(id, "request"),
        ScalarValue::Bytes(request.as_bytes().to_vec()),
    )?;
    tx.put(ROOT, key(id, "refused"), reason)?;
    Ok(())
}

/// Ends a grant at `at`, and takes the participant's sheets and their experts' certificates out
/// of the document's current state: the reviewing school reads them only while the grant is
/// open. (Automerge keeps history: a node that held the document keeps the old values in it;
/// nothing shows or uses them.)
pub fn put_closed(
    tx: &mut impl Transactable,
    id: RecordHash,
    at: Timestamp,
) -> Result<(), AutomergeError> {
    let copies: Vec<String> = ["sheet/", "cert/"]
        .iter()
        .flat_map(|field| {
            tx.map_range(ROOT, crate::recording::range_of(&key(id, field)))
                .map(|item| item.key.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for k in copies {
        tx.delete(ROOT, k.as_str())?;
    }
    tx.put(ROOT, key(id, "closed"), ms(at))?;
    Ok(())
}

/// Every answer in a РЦОИ document, by request hash. An entry that does not read whole (a
/// field missing or damaged) is left out: the reviewing school is given nothing by it.
pub fn answers(rcoi: &impl ReadDoc) -> BTreeMap<RecordHash, Answer> {
    let mut ids: Vec<RecordHash> = rcoi
        .map_range(ROOT, crate::recording::range_of("grant/"))
        .filter_map(|item| {
            let rest = item.key.strip_prefix("grant/")?;
            let (id, field) = rest.split_once('/')?;
            (field == "request").then(|| id.parse().ok()).flatten()
        })
        .collect();
    ids.dedup();
    if ids.is_empty() {
        return BTreeMap::new();
    }
    let recordings = crate::recording::recordings(rcoi);
    ids.into_iter()
        .filter_map(|id| Some((id, read(rcoi, id, &recordings)?)))
        .collect()
}

fn read(
    rcoi: &impl ReadDoc,
    id: RecordHash,
    recordings: &BTreeMap<BlobHash, Recording>,
) -> Option<Answer> {
    use crate::content::{bytes, int, text};
    let request = Statement::from_bytes(bytes(rcoi, &key(id, "request"))?).ok()?;
    if request.hash() != id {
        return None;
    }
    if let Some(reason) = text(rcoi, &key(id, "refused")) {
        return Some(Answer::Refused { request, reason });
    }
    let hash: BlobHash = text(rcoi, &key(id, "recording"))?.parse().ok()?;
    let recording = recordings.get(&hash)?.clone();
    let category = text(rcoi, &key(id, "category"))?.parse().ok()?;
    let at = |field: &str| Timestamp::from_unix_ms(int(rcoi, &key(id, field))?).ok();
    let sheet_prefix = key(id, "sheet/");
    let cert_prefix = key(id, "cert/");
    let mut sheets = Vec::new();
    let mut certs = BTreeMap::new();
    for item in rcoi.map_range(ROOT, crate::recording::range_of(&key(id, ""))) {
        if item.key.starts_with(&sheet_prefix) {
            let sheet = bytes(rcoi, &item.key).and_then(|b| SignedSheet::from_bytes(b).ok())?;
            sheets.push(sheet);
        } else if let Some(person) = item.key.strip_prefix(&cert_prefix) {
            certs.insert(person.to_owned(), bytes(rcoi, &item.key)?);
        }
    }
    Some(Answer::Granted(Box::new(Grant {
        id,
        request,
        recording,
        category,
        sheets,
        certs,
        granted_at: at("granted_at")?,
        until: at("until")?,
        closed: at("closed"),
    })))
}

/// The grants in a РЦОИ document with the request each answers (the РЦОИ checked it before
/// granting, and only the РЦОИ writes the document).
pub fn grants(rcoi: &impl ReadDoc) -> Vec<(Grant, Request)> {
    answers(rcoi)
        .into_values()
        .filter_map(|a| match a {
            Answer::Granted(g) => {
                let request = Request::read_unverified(&g.request).ok()?;
                Some((*g, request))
            }
            Answer::Refused { .. } => None,
        })
        .collect()
}
