//! The hubs' work at the РЦОИ: settling a conflict by an operator's signed record, publishing
//! results signed by the РЦОИ, exports, and the receipts written on ingest.

use giasync_shared::codes::SchoolCode;
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::record::{RecordHash, SheetSubject};
use giasync_shared::settlement::Settlement;
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::scoring::{protocols_of, settled_protocol};
use super::{Actor, Context, Error, RcoiDuty, require_rcoi, statement_claiming, timestamp};

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
    let built = giasync_shared::export::build(docs, exam, &context.rules, |certs| {
        context.verifier.experts(certs)
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

/// At the РЦОИ: stores an operator's signed settlement in the school's results document, after
/// checking the signature and that it settles an open conflict whose every sheet it names.
pub fn settle(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    statement: Vec<u8>,
    operator_cert: &[u8],
) -> Result<Settled, Error> {
    require_rcoi(engine, RcoiDuty::Settle)?;
    let (statement, operator) =
        statement_claiming(statement, StatementKind::Settlement, "operator")?;
    let directory = context.one_signer(&operator, operator_cert);
    let settlement =
        Settlement::verify(&statement, &directory).map_err(Error::SettlementRefused)?;
    actor.may_hand_in(settlement.operator)?;
    let subject = settlement.subject;
    let protocol = protocols_of(engine, subject.exam)
        .into_iter()
        .find(|d| d.school() == Some(subject.school))
        .ok_or(Error::NoProtocol {
            school: subject.school,
            exam: subject.exam,
        })?;
    let mut settled = settled_protocol(engine, context, protocol);
    let stale = giasync_shared::settlement::apply(
        &mut settled.resolution,
        &[(statement.hash(), settlement.clone())],
    );
    if !stale.is_empty() {
        return Err(Error::NoSuchConflict(subject));
    }
    let DocId::School { municipality, .. } = protocol else {
        return Err(Error::NoProtocol {
            school: subject.school,
            exam: subject.exam,
        });
    };
    let results = DocId::School {
        kind: DocKind::Results,
        municipality,
        school: subject.school,
        exam: subject.exam,
    };
    engine.change(now_ms, results, |tx| {
        content::put_settlement(tx, &statement, settlement.operator, operator_cert)
    })?;
    Ok(Settled {
        subject,
        chosen: settlement.chosen,
        settlement: statement.hash(),
    })
}

/// At the РЦОИ: closes an exam's processing by signing each school's results into its results
/// document. A school with open conflicts is not published; the answer names it.
pub fn publish(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
) -> Result<Publication, Error> {
    require_rcoi(engine, RcoiDuty::Publish)?;
    let at = timestamp(now_ms)?;
    let mut publication = Publication {
        exam,
        published: Vec::new(),
        refused: Vec::new(),
    };
    for protocol in protocols_of(engine, exam) {
        let DocId::School {
            municipality,
            school,
            ..
        } = protocol
        else {
            continue;
        };
        let settled = settled_protocol(engine, context, protocol);
        let results =
            match giasync_shared::publish::Published::from_protocol(&settled, exam, school, at) {
                Ok(r) => r,
                Err(e) => {
                    publication.refused.push((school, e.to_string()));
                    continue;
                }
            };
        let statement = engine.node_statement(StatementKind::Results, &results.fields())?;
        let cert = engine.node_cert().to_vec();
        let doc = DocId::School {
            kind: DocKind::Results,
            municipality,
            school,
            exam,
        };
        engine.change(now_ms, doc, |tx| {
            content::put_published(tx, &statement, &cert)
        })?;
        publication.published.push((school, results.rows.len()));
    }
    Ok(publication)
}

/// At the РЦОИ: verifies the sheets of a school's protocol and writes a receipt for each one not
/// yet receipted into that school's results document, so the school sees what the РЦОИ holds.
/// Returns how many receipts were written.
pub fn write_receipts(
    engine: &mut Engine,
    context: &Context,
    protocol: DocId,
    now_ms: i64,
) -> usize {
    giasync_shared::ingest::receipt_new_sheets(
        engine,
        protocol,
        &context.rules,
        |certs| context.verifier.experts(certs),
        now_ms,
    )
    .unwrap_or(0)
}
