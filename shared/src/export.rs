//! Exports for the federal system and for offices: an exam's results and score sheets as CSV,
//! with a manifest signed by the РЦОИ node key (format: `docs/exports.md`).
//!
//! Building the files and checking a copy are pure functions over bytes: the hub reads its
//! documents and writes the files; `giasync-hub export verify DIR` reads them back anywhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use automerge::Automerge;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::content;
use crate::exam::ExamId;
use crate::record::SignerDirectory;
use crate::resolve::Verdict;
use crate::rules::Rules;
use crate::sync::{DocId, DocKind};

/// The manifest's first line: the format and its version.
pub const MANIFEST_MAGIC: &str = "giasync export manifest v1";
/// The file holding the manifest.
pub const MANIFEST_FILE: &str = "manifest.txt";
/// The file holding the signature over the manifest's exact bytes.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// What the signature covers before the manifest's bytes, so that it can never be taken for an
/// attestation or any other signature of a node key.
const SIGNATURE_DOMAIN: &[u8] = b"giasync export manifest signature v1\0";

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Data rows (without the header).
    pub rows: usize,
}

/// What an export or its check could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("the manifest is malformed at line {line}: {reason}")]
    Manifest { line: usize, reason: String },
    #[error("the signature file is malformed: {0}")]
    SignatureFile(String),
    #[error("the manifest's signature does not verify with the key it names")]
    BadSignature,
    #[error("{name} is missing")]
    Missing { name: String },
    #[error("{name} is not listed in the manifest")]
    Unlisted { name: String },
    #[error("{name} has changed: {what}")]
    Changed { name: String, what: String },
}

fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r', ';']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Appends one CSV line (`,`-separated, CRLF-ended, quoted where a field needs it).
pub fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

/// The results and score sheets of `exam` from the protocols among `docs` (a РЦОИ's documents):
/// `results.csv` (one row per participant scored: the current sheet's total and result, or the
/// conflict) and `sheets.csv` (every sheet, with its verdict). Rows are ordered by school,
/// participant and sheet hash, so the same documents give the same bytes.
pub fn build<'a, D: SignerDirectory>(
    docs: impl IntoIterator<Item = (DocId, &'a Automerge)>,
    exam: ExamId,
    rules: (
        &Rules,
        &std::collections::BTreeSet<crate::settlement::Settler>,
    ),
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
) -> Vec<ExportFile> {
    let mut results = String::new();
    let mut sheets = String::new();
    csv_line(
        &mut results,
        &[
            "municipality",
            "school",
            "exam",
            "participant",
            "attempt",
            "status",
            "total",
            "result",
            "sheet",
        ],
    );
    csv_line(
        &mut sheets,
        &[
            "municipality",
            "school",
            "exam",
            "participant",
            "attempt",
            "sheet",
            "expert",
            "signed_at",
            "category",
            "total",
            "result",
            "supersedes",
            "verdict",
        ],
    );
    let (mut result_rows, mut sheet_rows) = (0, 0);
    let docs: BTreeMap<DocId, &Automerge> = docs
        .into_iter()
        .filter(|(id, _)| matches!(id, DocId::School { exam: e, .. } if *e == exam))
        .collect();
    for (id, doc) in &docs {
        let DocId::School {
            kind: DocKind::Protocol,
            municipality,
            school,
            ..
        } = *id
        else {
            continue;
        };
        let rcoi_doc = docs
            .get(&DocId::School {
                kind: DocKind::Rcoi,
                municipality,
                school,
                exam,
            })
            .copied();
        let municipality = municipality.to_string();
        let records = content::sheets(*doc);
        let settled = crate::settlement::resolve_protocol(*doc, rcoi_doc, rules, &directory_for);
        // One result row per attempt scored or re-checked, as the publication counts it
        // (`SettledProtocol::counted`, `publish::Published::from_protocol`): a counted
        // re-check's result over the sheets', of this school's exam only; a conflict stays a
        // conflict (the publication waits for it to be settled).
        for subject in settled.attempts(school, exam) {
            let verdict = settled.resolution.subjects.get(subject).map(|r| &r.verdict);
            let row = match (settled.recheck_over_sheets(subject), verdict) {
                (Some((hash, recheck)), _) => Some((
                    "rechecked",
                    recheck.total.to_string(),
                    recheck.outcome.id(),
                    format!("recheck {hash}"),
                )),
                (None, Some(Verdict::Current(v))) => Some((
                    "current",
                    v.sheet.total.to_string(),
                    v.sheet.outcome.id(),
                    v.hash.to_string(),
                )),
                (
                    None,
                    Some(Verdict::Settled {
                        current,
                        settlement,
                        ..
                    }),
                ) => Some((
                    "settled",
                    current.sheet.total.to_string(),
                    current.sheet.outcome.id(),
                    format!("{} settlement {settlement}", current.hash),
                )),
                (None, Some(Verdict::Conflict(heads))) => Some((
                    "conflict",
                    String::new(),
                    "",
                    heads
                        .iter()
                        .map(|v| v.hash.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                )),
                (None, Some(Verdict::Unscored) | None) => None,
            };
            if let Some((status, total, result, sheet)) = row {
                csv_line(
                    &mut results,
                    &[
                        &municipality,
                        &subject.school.to_string(),
                        &subject.exam.to_string(),
                        subject.participant.as_str(),
                        &subject.attempt.get().to_string(),
                        status,
                        &total,
                        result,
                        &sheet,
                    ],
                );
                result_rows += 1;
            }
        }
        for (subject, r) in &settled.resolution.subjects {
            let (school, participant, attempt) = (
                subject.school.to_string(),
                subject.participant.to_string(),
                subject.attempt.get().to_string(),
            );
            let exam_text = subject.exam.to_string();
            let set_aside: &[crate::record::RecordHash] = match &r.verdict {
                Verdict::Settled { set_aside, .. } => set_aside,
                _ => &[],
            };
            let verdict_of = |hash: &str| -> String {
                if r.superseded.iter().any(|h| h.to_string() == hash) {
                    "superseded".into()
                } else if set_aside.iter().any(|h| h.to_string() == hash) {
                    "set aside by settlement".into()
                } else {
                    "verified".into()
                }
            };
            // Valid sheets: the current one, the superseded and the conflicting.
            let mut valid: Vec<&crate::record::VerifiedSheet> = match &r.verdict {
                Verdict::Current(v) => vec![v.as_ref()],
                Verdict::Conflict(heads) => heads.iter().collect(),
                Verdict::Settled { current, .. } => vec![current.as_ref()],
                Verdict::Unscored => Vec::new(),
            };
            let superseded: Vec<crate::record::VerifiedSheet> = records
                .iter()
                .filter(|s| r.superseded.contains(&s.hash()) || set_aside.contains(&s.hash()))
                .filter_map(|s| {
                    s.decode_unverified()
                        .ok()
                        .map(|sheet| crate::record::VerifiedSheet {
                            sheet,
                            hash: s.hash(),
                        })
                })
                .collect();
            valid.extend(superseded.iter());
            valid.sort_by_key(|v| v.hash);
            valid.dedup_by_key(|v| v.hash);
            // One row: who, then the sheet's hash, its fields (empty for an invalid record) and
            // the verdict.
            let mut sheet_row = |hash: String, fields: [String; 6], verdict: String| {
                let mut row = vec![
                    municipality.clone(),
                    school.clone(),
                    exam_text.clone(),
                    participant.clone(),
                    attempt.clone(),
                    hash,
                ];
                row.extend(fields);
                row.push(verdict);
                let row: Vec<&str> = row.iter().map(String::as_str).collect();
                csv_line(&mut sheets, &row);
                sheet_rows += 1;
            };
            for v in valid {
                let hash = v.hash.to_string();
                let supersedes: Vec<String> = v
                    .sheet
                    .correction
                    .iter()
                    .flat_map(|c| c.supersedes.iter().map(ToString::to_string))
                    .collect();
                let verdict = verdict_of(&hash);
                sheet_row(
                    hash,
                    [
                        v.sheet.expert.to_string(),
                        v.sheet.signed_at.to_string(),
                        v.sheet.category.id().to_owned(),
                        v.sheet.total.to_string(),
                        v.sheet.outcome.id().to_owned(),
                        supersedes.join(" "),
                    ],
                    verdict,
                );
            }
            for (hash, error) in &r.invalid {
                sheet_row(
                    hash.to_string(),
                    Default::default(),
                    format!("invalid: {error}"),
                );
            }
        }
    }
    vec![
        ExportFile {
            name: "results.csv".into(),
            bytes: results.into_bytes(),
            rows: result_rows,
        },
        ExportFile {
            name: "sheets.csv".into(),
            bytes: sheets.into_bytes(),
            rows: sheet_rows,
        },
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The manifest over `files` (exact bytes, one line per fact) and its signature file.
#[must_use]
pub fn sign_manifest(
    files: &[ExportFile],
    region: &str,
    exam: ExamId,
    created: &str,
    signer: &str,
    key: &SigningKey,
) -> (Vec<u8>, Vec<u8>) {
    let mut manifest = String::new();
    let _ = writeln!(manifest, "{MANIFEST_MAGIC}");
    let _ = writeln!(manifest, "region {region}");
    let _ = writeln!(manifest, "exam {exam}");
    let _ = writeln!(manifest, "created {created}");
    let _ = writeln!(manifest, "signer {signer}");
    let _ = writeln!(manifest, "key {}", hex(&key.verifying_key().to_bytes()));
    for f in files {
        let _ = writeln!(
            manifest,
            "file {} {} {} {}",
            f.name,
            hex(&Sha256::digest(&f.bytes)),
            f.bytes.len(),
            f.rows
        );
    }
    let mut signed = SIGNATURE_DOMAIN.to_vec();
    signed.extend_from_slice(manifest.as_bytes());
    let signature = key.sign(&signed);
    let sig = format!("ed25519 {}\n", hex(&signature.to_bytes()));
    (manifest.into_bytes(), sig.into_bytes())
}

/// A manifest whose signature and files check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedExport {
    pub region: String,
    pub exam: String,
    pub created: String,
    /// The signer's identity as the manifest names it (check its certificate to trust it).
    pub signer: String,
    pub key: [u8; 32],
    /// (name, rows) of every file.
    pub files: Vec<(String, usize)>,
}

/// Checks a copy of an export: the signature over the manifest (with the key it names), and
/// every listed file's size, hash and rows; `files` must be exactly the listed ones.
pub fn verify(
    manifest: &[u8],
    signature: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<VerifiedExport, ExportError> {
    let text = std::str::from_utf8(manifest).map_err(|_| ExportError::Manifest {
        line: 0,
        reason: "not UTF-8".into(),
    })?;
    let bad = |line: usize, reason: &str| ExportError::Manifest {
        line: line + 1,
        reason: reason.into(),
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, MANIFEST_MAGIC)) => {}
        _ => return Err(bad(0, "not a giasync export manifest v1")),
    }
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut listed: Vec<(usize, &str, &str, &str, &str)> = Vec::new();
    for (n, line) in lines {
        let (word, rest) = line.split_once(' ').ok_or_else(|| bad(n, "no value"))?;
        if word == "file" {
            let parts: Vec<&str> = rest.split(' ').collect();
            let [name, hash, size, rows] = parts[..] else {
                return Err(bad(n, "a file line is: file NAME SHA256 BYTES ROWS"));
            };
            listed.push((n, name, hash, size, rows));
        } else if fields.insert(word, rest).is_some() {
            return Err(bad(n, "repeated field"));
        }
    }
    let field = |name: &str| {
        fields
            .get(name)
            .copied()
            .ok_or_else(|| bad(0, &format!("no `{name}` line")))
    };
    let key_bytes: [u8; 32] = unhex(field("key")?).ok_or_else(|| bad(0, "bad key"))?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| bad(0, "bad key"))?;
    let sig_text = std::str::from_utf8(signature)
        .map_err(|_| ExportError::SignatureFile("not UTF-8".into()))?;
    let sig_hex = sig_text
        .trim_end()
        .strip_prefix("ed25519 ")
        .ok_or_else(|| ExportError::SignatureFile("expected `ed25519 HEX`".into()))?;
    let sig: [u8; 64] =
        unhex(sig_hex).ok_or_else(|| ExportError::SignatureFile("bad signature hex".into()))?;
    let mut signed = SIGNATURE_DOMAIN.to_vec();
    signed.extend_from_slice(manifest);
    key.verify(&signed, &Signature::from_bytes(&sig))
        .map_err(|_| ExportError::BadSignature)?;
    for name in files.keys() {
        if !listed.iter().any(|l| l.1 == name) {
            return Err(ExportError::Unlisted { name: name.clone() });
        }
    }
    let mut out = Vec::new();
    for (n, name, hash, size, rows) in listed {
        let bytes = files.get(name).ok_or_else(|| ExportError::Missing {
            name: name.to_owned(),
        })?;
        let changed = |what: String| ExportError::Changed {
            name: name.to_owned(),
            what,
        };
        if size != bytes.len().to_string() {
            return Err(changed(format!(
                "{} bytes, the manifest says {size}",
                bytes.len()
            )));
        }
        if hash != hex(&Sha256::digest(bytes)) {
            return Err(changed("its SHA-256 differs from the manifest's".into()));
        }
        let rows: usize = rows.parse().map_err(|_| bad(n, "bad row count"))?;
        // Rows are counted in the CSV tables; other files (the XLSX copies) are checked by
        // size and hash.
        if name.ends_with(".csv") {
            let data_rows = bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
                .saturating_sub(1);
            if rows != data_rows {
                return Err(changed(format!(
                    "{data_rows} rows, the manifest says {rows}"
                )));
            }
        }
        out.push((name.to_owned(), rows));
    }
    Ok(VerifiedExport {
        region: field("region")?.to_owned(),
        exam: field("exam")?.to_owned(),
        created: field("created")?.to_owned(),
        signer: field("signer")?.to_owned(),
        key: key_bytes,
        files: out,
    })
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;

    use super::*;
    use crate::record::fixtures::{correction, directory, draft, expert, rules, sign, subject};

    fn protocol_doc() -> (DocId, Automerge) {
        let first = sign(draft("p1", 8, 1), 1);
        let fixed = correction(&[&first], 12, 1);
        let a = sign(draft("p2", 9, 1), 1);
        let b = sign(draft("p2", 10, 2), 2);
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        for s in [&first, &fixed, &a, &b] {
            content::put_sheet(&mut tx, s, expert(1), b"cert").unwrap();
        }
        tx.put(automerge::ROOT, "log/p1/start", 1).unwrap();
        tx.commit();
        let id = format!(
            "protocol/4201/{}/{}",
            subject("p1").school,
            subject("p1").exam
        )
        .parse()
        .unwrap();
        (id, doc)
    }

    fn export() -> (Vec<ExportFile>, Vec<u8>, Vec<u8>) {
        let (id, doc) = protocol_doc();
        let chair = std::collections::BTreeSet::from([crate::settlement::Settler::Chair]);
        let files = build([(id, &doc)], subject("p1").exam, (&rules(), &chair), |_| {
            directory()
        });
        let key = SigningKey::from_bytes(&[7; 32]);
        let (manifest, sig) = sign_manifest(
            &files,
            "42",
            subject("p1").exam,
            "2024-02-20T10:00:00Z",
            "giasync://42/node/rcoi",
            &key,
        );
        (files, manifest, sig)
    }

    fn as_map(files: &[ExportFile]) -> BTreeMap<String, Vec<u8>> {
        files
            .iter()
            .map(|f| (f.name.clone(), f.bytes.clone()))
            .collect()
    }

    #[test]
    fn an_export_lists_results_and_sheets_and_round_trips() {
        let (files, manifest, sig) = export();
        let results = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert_eq!(files[0].rows, 2, "{results}");
        assert!(results.contains(",p1,1,current,12,pass,"), "{results}");
        assert!(results.contains(",p2,1,conflict,,,"), "{results}");
        let sheets = String::from_utf8(files[1].bytes.clone()).unwrap();
        assert_eq!(files[1].rows, 4, "{sheets}");
        assert!(sheets.contains(",superseded\r\n"), "{sheets}");
        let checked = verify(&manifest, &sig, &as_map(&files)).unwrap();
        assert_eq!(
            checked.files,
            vec![("results.csv".into(), 2), ("sheets.csv".into(), 4)]
        );
        assert_eq!(checked.signer, "giasync://42/node/rcoi");
        // The same documents give the same bytes.
        assert_eq!(export().0, files);
    }

    #[test]
    fn any_changed_byte_fails_the_check() {
        let (files, manifest, sig) = export();
        let files = as_map(&files);
        for (name, bytes) in &files {
            for i in 0..bytes.len() {
                let mut changed = files.clone();
                if let Some(b) = changed.get_mut(name) {
                    b[i] ^= 0x01;
                }
                assert!(
                    verify(&manifest, &sig, &changed).is_err(),
                    "{name} byte {i}"
                );
            }
        }
        for i in 0..manifest.len() {
            let mut m = manifest.clone();
            m[i] ^= 0x01;
            assert!(verify(&m, &sig, &files).is_err(), "manifest byte {i}");
        }
        for i in 0..sig.len() - 1 {
            let mut s = sig.clone();
            s[i] ^= 0x01;
            assert!(verify(&manifest, &s, &files).is_err(), "signature byte {i}");
        }
        let mut extra = files.clone();
        extra.insert("notes.txt".into(), b"x".to_vec());
        assert_eq!(
            verify(&manifest, &sig, &extra),
            Err(ExportError::Unlisted {
                name: "notes.txt".into()
            })
        );
        let mut missing = files.clone();
        missing.remove("sheets.csv");
        assert!(matches!(
            verify(&manifest, &sig, &missing),
            Err(ExportError::Missing { .. })
        ));
    }
}
