//! The hubs' work at the РЦОИ: publishing results signed by the РЦОИ, exports, and the receipts
//! written on ingest. (Conflicts are settled at the school, `super::settlement`.)

use giasync_shared::codes::SchoolCode;
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::record::{RecordHash, SheetSubject};
use giasync_shared::settlement::Settlement;
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::scoring::{protocols_of, settled_protocol};
use super::{Context, Error, RcoiDuty, require_rcoi, timestamp};

/// An export file as the node built it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFile {
    pub name: String,
    pub text: String,
    pub rows: usize,
}

/// An exam's export files (unsigned: the caller signs the manifest with the node key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub exam: ExamId,
    pub files: Vec<ExportedFile>,
}

/// A conflict settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub subject: SheetSubject,
    /// The sheet that counts.
    pub chosen: RecordHash,
    /// The settlement record's own hash.
    pub settlement: RecordHash,
}

/// What a publication did: the schools published (with how many results) and those refused
/// (with why). Only a publication with nothing refused is whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub exam: ExamId,
    pub published: Vec<(SchoolCode, usize)>,
    pub refused: Vec<(SchoolCode, String)>,
}

/// At the РЦОИ: an exam's results and score sheets as export files.
pub fn export(engine: &Engine, context: &Context, exam: ExamId) -> Result<Export, Error> {
    require_rcoi(engine, RcoiDuty::Export)?;
    let docs: Vec<(DocId, &automerge::Automerge)> = engine
        .doc_ids()
        .filter_map(|id| Some((*id, engine.doc(id)?)))
        .collect();
    let mut built =
        giasync_shared::export::build(docs.iter().copied(), exam, context.resolving(), |certs| {
            context.verifier.experts(certs)
        });
    // The federal exchange's shape of the same results (`docs/exports.md`).
    let region = engine.identity().region;
    let (federal, participants) = giasync_shared::federal::build(
        docs,
        (region.as_str(), exam),
        context.resolving(),
        |certs| context.verifier.experts(certs),
    );
    built.push(giasync_shared::export::ExportFile {
        name: "federal.xml".into(),
        bytes: federal,
        rows: participants,
    });
    let mut files = Vec::with_capacity(built.len());
    for f in built {
        files.push(ExportedFile {
            text: String::from_utf8(f.bytes).map_err(|e| Error::Export(e.to_string()))?,
            name: f.name,
            rows: f.rows,
        });
    }
    Ok(Export { exam, files })
}

/// An operator's settlement is no longer taken anywhere (the school's commission settles,
/// `super::settlement`); the ones stored before keep verifying wherever they are read.
pub fn settle() -> Result<Settled, Error> {
    Err(Error::SettledAtSchool)
}

/// At the РЦОИ: closes an exam's processing by signing each school's results into its РЦОИ
/// document, as the next edition after any published before. A school with open conflicts is
/// not published; the answer names it.
pub fn publish(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
) -> Result<Publication, Error> {
    require_rcoi(engine, RcoiDuty::Publish)?;
    timestamp(now_ms)?;
    let mut publication = Publication {
        exam,
        published: Vec::new(),
        refused: Vec::new(),
    };
    let schools: Vec<DocId> = if exam.kind() == giasync_shared::exam::ExamKind::Essay {
        // The schools the processing gave results for (no protocol: no school experts).
        engine
            .doc_ids()
            .filter(
                |d| matches!(d, DocId::School { kind: DocKind::Rcoi, exam: e, .. } if *e == exam),
            )
            .filter(|d| {
                engine
                    .doc(d)
                    .and_then(giasync_shared::essay::stored::processed)
                    .is_some()
            })
            .filter_map(|d| d.sibling(DocKind::Protocol))
            .collect()
    } else {
        protocols_of(engine, exam)
    };
    for protocol in schools {
        let Some(school) = protocol.school() else {
            continue;
        };
        match publish_school(engine, context, now_ms, protocol)? {
            Ok(rows) => publication.published.push((school, rows)),
            Err(e) => publication.refused.push((school, e.to_string())),
        }
    }
    Ok(publication)
}

/// At the РЦОИ: signs the results of the school of `protocol` into its РЦОИ document as the
/// next edition. The inner error says why they are not published (open conflicts); the outer,
/// that the document could not be written. Returns how many results were published.
pub fn publish_school(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    protocol: DocId,
) -> Result<Result<usize, giasync_shared::publish::PublishError>, Error> {
    let at = timestamp(now_ms)?;
    let (DocId::School { school, exam, .. }, Some(doc)) =
        (protocol, protocol.sibling(DocKind::Rcoi))
    else {
        return Err(Error::NoExam);
    };
    let edition = engine.doc(&doc).map_or(1, content::next_edition);
    let results = if exam.kind() == giasync_shared::exam::ExamKind::Essay {
        // From the РЦОИ's processing (`super::essay`), not from school experts' sheets.
        let processed = engine
            .doc(&doc)
            .map(giasync_shared::essay::stored::results)
            .unwrap_or_default();
        if processed.is_empty() {
            return Ok(Err(giasync_shared::publish::PublishError::NothingProcessed));
        }
        giasync_shared::publish::Published::from_essay(&processed, exam, school, edition, at)
    } else {
        let settled = settled_protocol(engine, context, protocol);
        match giasync_shared::publish::Published::from_protocol(&settled, exam, school, edition, at)
        {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        }
    };
    let statement = engine.node_statement(StatementKind::Results, &results.fields())?;
    let cert = engine.node_cert().to_vec();
    engine.change(now_ms, doc, |tx| {
        content::put_published(tx, edition, &statement, &cert)
    })?;
    Ok(Ok(results.rows.len()))
}

/// At the РЦОИ: verifies the sheets of schools' protocols (their signatures in shared batches)
/// and writes a receipt for each one not yet receipted into its school's РЦОИ document, so the
/// school sees what the РЦОИ holds. Returns how many receipts were written; a school whose
/// receipts could not be written is logged and its sheets wait for the next change.
pub fn write_receipts(
    engine: &mut Engine,
    context: &Context,
    protocols: &[DocId],
    now_ms: i64,
) -> usize {
    giasync_shared::ingest::receipt_new_sheets_of(
        engine,
        protocols,
        &context.rules,
        |certs| context.verifier.experts(certs),
        context.signing_time(),
        now_ms,
    )
    .into_iter()
    .map(|(doc, outcome)| {
        outcome.unwrap_or_else(|e| {
            tracing::warn!(doc = %doc, "receipts not written: {e}");
            0
        })
    })
    .sum()
}

/// What the РЦОИ carried over from layout 1 at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedOver {
    /// Settlements copied from schools' results documents into their РЦОИ documents.
    pub settlements: usize,
    /// Publications copied (as edition 1) where the РЦОИ document held none.
    pub publications: usize,
    /// Sheets receipted in the РЦОИ documents (verified again).
    pub receipts: usize,
}

/// At the РЦОИ, at every start: brings stores of layout 1 to layout 2. Layout 1 kept the
/// РЦОИ's settlements, publication and receipts in the school's results document, which the
/// school may write too; layout 2 reads them only from the school's РЦОИ document. Settlements
/// and the publication are signed, so those that verify are copied over as they are (a school
/// cannot forge one, only keep back or restore an older one: publishing again makes a newer
/// edition); receipts are not signed, so every sheet layout 1 receipted is verified again. A
/// sheet with no receipt at all (stored, then the node stopped before receipting it) is judged
/// as arriving now, and so is every sheet receipted invalid (`giasync_shared::ingest`: what it
/// was judged against is not kept across starts). On a store already at layout 2 and fully receipted this writes nothing.
/// Returns what it wrote.
pub fn carry_over_layout_1(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
) -> Result<CarriedOver, Error> {
    let mut carried = CarriedOver::default();
    if require_rcoi(engine, RcoiDuty::Publish).is_err() {
        return Ok(carried);
    }
    let held: Vec<DocId> = engine.doc_ids().copied().collect();
    for results in held.iter().filter(|d| d.kind() == Some(DocKind::Results)) {
        let (Some(rcoi), DocId::School { school, exam, .. }) =
            (results.sibling(DocKind::Rcoi), *results)
        else {
            continue;
        };
        let Some(old) = engine.doc(results) else {
            continue;
        };
        let (statements, certs) = content::legacy_settlements(old);
        let directory = context.verifier.experts(&certs);
        let present = engine
            .doc(&rcoi)
            .map(content::settlements)
            .unwrap_or_default();
        let settlements: Vec<_> = statements
            .into_iter()
            .filter(|s| !present.contains(s))
            .filter_map(|s| {
                let verified = Settlement::verify(&s, &directory).ok()?;
                let cert = certs.get(verified.operator.as_str())?.clone();
                Some((s, verified.operator, cert))
            })
            .collect();
        let publication = content::legacy_published(old)
            .filter(|_| {
                engine
                    .doc(&rcoi)
                    .is_none_or(|r| content::publications(r).is_empty())
            })
            .filter(|(s, cert)| {
                giasync_shared::publish::Published::verify(s, cert, &context.verifier, exam, school)
                    .is_ok_and(|p| p.edition == 1)
            });
        if settlements.is_empty() && publication.is_none() {
            continue;
        }
        engine.change(now_ms, rcoi, |tx| {
            for (s, operator, cert) in &settlements {
                content::put_settlement(tx, s, *operator, cert)?;
            }
            if let Some((s, cert)) = &publication {
                content::put_published(tx, 1, s, cert)?;
            }
            Ok(())
        })?;
        carried.settlements += settlements.len();
        carried.publications += usize::from(publication.is_some());
    }
    let protocols: Vec<DocId> = held
        .iter()
        .filter(|d| d.kind() == Some(DocKind::Protocol))
        .copied()
        .collect();
    for protocol in &protocols {
        carried.receipts += giasync_shared::ingest::receipt_carried_over(
            engine,
            *protocol,
            &context.rules,
            |certs| context.verifier.experts(certs),
            now_ms,
        )
        .unwrap_or_else(|e| {
            tracing::warn!(doc = %protocol, "receipts carried over not written: {e}");
            0
        });
    }
    // Sheets stored but not receipted before the node stopped: judged as arriving now.
    carried.receipts += write_receipts(engine, context, &protocols, now_ms);
    Ok(carried)
}
