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
