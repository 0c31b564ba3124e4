//! Verification on ingest at the РЦОИ: every score sheet that arrives in a school's protocol is
//! checked (signature, the expert certified for that school and not revoked when signing, total
//! and result recomputed from the year's rules) in batches, and the verdict is written as a
//! receipt into the school's results document, which flows back down to the school.
//!
//! The production node and the simulator both call [`receipt_new_sheets`] after every batch of
//! changes they apply, so a sheet is verified once, when it first arrives.

use std::collections::BTreeMap;

use crate::codes::OrgCode;
use crate::content;
use crate::record::{SignerDirectory, verify_many};
use crate::rules::Rules;
use crate::sync::{DocId, DocKind, Engine, EngineError};

/// The verdict a receipt records for a sheet that verifies.
pub const RECEIPT_VERIFIED: &str = "verified";

/// The results document that belongs with `protocol`, if it is a protocol.
#[must_use]
pub fn results_of(protocol: DocId) -> Option<DocId> {
    match protocol {
        DocId::School {
            kind: DocKind::Protocol,
            municipality,
            school,
            exam,
        } => Some(DocId::School {
            kind: DocKind::Results,
            municipality,
            school,
            exam,
        }),
        _ => None,
    }
}

/// Verifies the sheets of `protocol` that have no receipt yet and receipts them in its results
/// document (`verified` or `invalid: REASON`), in one change. `directory_for` builds the signer
/// directory from the experts' certificates the protocol carries. Returns how many sheets were
/// receipted; 0 on a node other than the РЦОИ or a document other than a protocol.
pub fn receipt_new_sheets<D: SignerDirectory>(
    engine: &mut Engine,
    protocol: DocId,
    rules: &Rules,
    directory_for: impl FnOnce(&BTreeMap<String, Vec<u8>>) -> D,
    now_ms: i64,
) -> Result<usize, EngineError> {
    let Some(results) = results_of(protocol) else {
        return Ok(0);
    };
    if !matches!(engine.identity().org, OrgCode::Rcoi(_)) {
        return Ok(0);
    }
    let Some(doc) = engine.doc(&protocol) else {
        return Ok(0);
    };
    let results_doc = engine.doc(&results);
    let fresh = content::sheets_not_receipted(doc, results_doc);
    if fresh.is_empty() {
        return Ok(0);
    }
    let directory = directory_for(&content::expert_certs(doc));
    let verdicts: Vec<_> = fresh
        .iter()
        .zip(verify_many(&fresh, rules, &directory))
        .map(|(s, r)| {
            (
                s.hash(),
                r.map_or_else(|e| format!("invalid: {e}"), |_| RECEIPT_VERIFIED.to_owned()),
            )
        })
        .collect();
    engine.change(now_ms, results, |tx| {
        verdicts
            .iter()
            .try_for_each(|(h, v)| content::put_receipt(tx, h, v))
    })?;
    Ok(verdicts.len())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::codes::{MunicipalityCode, RegionCode};
    use crate::record::fixtures::{at, directory, draft, expert, rules, school, sign};
    use crate::record::{FixedDirectory, SignedSheet};
    use crate::sync::{FixedCa, Input, NodeIdentity, Output};

    fn tampered(sheet: &SignedSheet) -> SignedSheet {
        let mut bytes = sheet.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        SignedSheet::from_bytes(bytes).unwrap()
    }

    /// A school node enters `sheets` into its protocol and syncs with the РЦОИ, which receipts
    /// them against `directory`; returns the receipts as the school sees them.
    fn ingest(sheets: &[SignedSheet], directory: &FixedDirectory) -> BTreeMap<String, String> {
        let region = RegionCode::new("42").unwrap();
        let municipality = MunicipalityCode::new("4201").unwrap();
        let identities = [
            NodeIdentity {
                region,
                org: OrgCode::School(school()),
                municipality: Some(municipality),
            },
            NodeIdentity {
                region,
                org: OrgCode::Rcoi(region),
                municipality: None,
            },
        ];
        let keys = [
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        ];
        let ca = FixedCa::default();
        let certs: Vec<Vec<u8>> = (0..2).map(|i| ca.issue(identities[i], &keys[i])).collect();
        let mut nodes: Vec<Engine> = (0..2)
            .map(|i| {
                Engine::new(
                    identities[i],
                    keys[i].clone(),
                    certs[i].clone(),
                    Box::new(ca.clone()),
                )
            })
            .collect();
        let protocol = DocId::School {
            kind: DocKind::Protocol,
            municipality,
            school: school(),
            exam: crate::record::fixtures::subject("p1").exam,
        };
        let now = at(30).unix_ms();
        nodes[0]
            .change(now, protocol, |tx| {
                sheets
                    .iter()
                    .try_for_each(|s| content::put_sheet(tx, s, expert(1), b"cert"))
            })
            .unwrap();
        for (i, other) in [(0, 1), (1, 0)] {
            nodes[i].handle(
                now,
                Input::Connected {
                    peer: 1,
                    identity: identities[other],
                },
            );
        }
        // Deliver until quiet; the РЦОИ receipts after every delivery, as the drivers do.
        for _ in 0..100 {
            let mut quiet = true;
            for from in 0..2 {
                let frames: Vec<Vec<u8>> = std::iter::from_fn(|| nodes[from].poll_output())
                    .filter_map(|o| match o {
                        Output::Send { bytes, .. } => Some(bytes),
                        _ => None,
                    })
                    .collect();
                for bytes in frames {
                    quiet = false;
                    nodes[1 - from].handle(
                        now,
                        Input::Received {
                            peer: 1,
                            bytes: &bytes,
                        },
                    );
                    if 1 - from == 1 {
                        receipt_new_sheets(&mut nodes[1], protocol, &rules(), |_| directory, now)
                            .unwrap();
                    }
                }
            }
            if quiet {
                break;
            }
        }
        // Everything was receipted once: another pass finds nothing new.
        assert_eq!(
            receipt_new_sheets(&mut nodes[1], protocol, &rules(), |_| directory, now).unwrap(),
            0
        );
        nodes[0]
            .doc(&results_of(protocol).unwrap())
            .map(content::receipts)
            .unwrap_or_default()
    }

    #[test]
    fn every_sheet_is_receipted_once_with_the_reason_when_invalid() {
        let good = sign(draft("p1", 12, 1), 1);
        let forged = tampered(&sign(draft("p2", 14, 1), 1));
        let late = {
            let mut d = draft("p3", 10, 2);
            d.signed_at = at(20);
            sign(d, 2)
        };
        let mut directory = directory();
        directory.revoke(expert(2), at(10));
        let receipts = ingest(&[good.clone(), forged.clone(), late.clone()], &directory);
        assert_eq!(receipts.len(), 3, "{receipts:?}");
        assert_eq!(receipts[&good.hash().to_string()], RECEIPT_VERIFIED);
        let bad_signature = &receipts[&forged.hash().to_string()];
        assert!(bad_signature.starts_with("invalid: "), "{bad_signature}");
        assert!(bad_signature.contains("signature"), "{bad_signature}");
        let revoked = &receipts[&late.hash().to_string()];
        assert!(revoked.contains("revoked"), "{revoked}");
    }
}
