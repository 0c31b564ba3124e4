//! Verification on ingest at the РЦОИ for a region's whole day at once, on one core.
//!
//! `cargo bench -p giasync-shared --bench ingest` builds a Kuzbass-sized region's protocols
//! (34 municipalities, 610 schools, 32,000 signed sheets by 3 experts per school, one change per
//! sheet as a school's day makes them), loads them into the РЦОИ's engine as they stand after a
//! catch-up, then times [`receipt_new_sheets`] over every protocol: each sheet's signature,
//! signer and recomputed total checked in batches, and the verdicts written as one receipt change
//! per school. It prints sheets per second for that whole pass and, beside it, for the checks
//! alone (`verify_many` on the same sheets), so the cost of the receipt changes shows.
//! `INGEST_BENCH_SHEETS` changes the sheet count.
//!
//! The simulator's `ingest_sheets_per_s` is the other figure: the same function as sheets trickle
//! in one or a few at a time through the day, where each pass pays for a receipt change.

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::{
    MunicipalityCode, NodeRole, OrgCode, ParticipantId, PersonId, RegionCode, RoomCode, SchoolCode,
};
use giasync_shared::content;
use giasync_shared::ingest::{RECEIPT_VERIFIED, receipt_new_sheets, receipts_of};
use giasync_shared::participant::Category;
use giasync_shared::record::{
    Attempt, FixedDirectory, SheetDraft, SheetSubject, SignedSheet, verify_many,
};
use giasync_shared::rules::Rules;
use giasync_shared::sync::{DocId, DocKind, Engine, FixedCa, NodeIdentity, Output, Persist};

const REGION: &str = "42";
const EXAM: &str = "is-2024-02-14";
const MUNICIPALITIES: usize = 34;
const SCHOOLS: usize = 610;
const EXPERTS_PER_SCHOOL: usize = 3;
/// What an expert's certificate costs in a protocol (the simulator's size of a real one).
const EXPERT_CERT_BYTES: usize = 420;

fn key(seed: u64, salt: u8) -> SigningKey {
    let mut bytes = [salt; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    SigningKey::from_bytes(&bytes)
}

/// One school's protocol as its node made it: the saved document and its attestation.
struct Protocol {
    doc: DocId,
    saved: Vec<u8>,
    endorsement: (Vec<u8>, Vec<u8>),
    sheets: Vec<SignedSheet>,
}

#[allow(clippy::too_many_arguments)]
fn school_protocol(
    ca: &FixedCa,
    region: RegionCode,
    m: MunicipalityCode,
    s: SchoolCode,
    sheets: usize,
    first_participant: usize,
    rules: &Rules,
    experts: &[(PersonId, SigningKey)],
    seed: u64,
) -> Result<Protocol, Box<dyn std::error::Error>> {
    let identity = NodeIdentity {
        region,
        org: OrgCode::School(s),
        municipality: Some(m),
    };
    let node_key = key(seed, 1);
    let cert = ca.issue(identity, &node_key);
    let mut engine = Engine::new(identity, node_key, cert, Box::new(ca.clone()));
    let doc = DocId::School {
        kind: DocKind::Protocol,
        municipality: m,
        school: s,
        exam: EXAM.parse()?,
    };
    let standard = rules.category(Category::Standard)?;
    let expert_cert = vec![7u8; EXPERT_CERT_BYTES];
    let start: Timestamp = "2024-02-14T02:15:00Z".parse()?;
    let mut signed = Vec::with_capacity(sheets);
    for i in 0..sheets {
        let (expert, expert_key) = &experts[i % experts.len()];
        let n = first_participant + i;
        let signed_at = start.plus_ms(i64::try_from(i)? * 60_000);
        let draft = SheetDraft {
            subject: SheetSubject {
                exam: EXAM.parse()?,
                school: s,
                participant: ParticipantId::new(&format!("p{n:05}"))?,
                attempt: Attempt::new(1)?,
            },
            room: RoomCode::new(["101", "102", "103"][i % 3])?,
            category: Category::Standard,
            points: standard
                .criteria(rules)
                .enumerate()
                .map(|(j, c)| {
                    (
                        c.id,
                        i64::from(c.max) - i64::from((n + j).is_multiple_of(2)),
                    )
                })
                .collect(),
            expert: *expert,
            signed_at,
            correction: None,
        };
        let sheet = SignedSheet::sign(draft, rules, expert_key)?;
        engine.change(signed_at.unix_ms(), doc, |tx| {
            content::put_sheet(tx, &sheet, *expert, &expert_cert)
        })?;
        signed.push(sheet);
    }
    let mut endorsement = None;
    while let Some(output) = engine.poll_output() {
        if let Output::Persist(Persist::Attestation {
            doc: d,
            cert,
            bytes,
            ..
        }) = output
            && d == doc
        {
            endorsement = Some((cert, bytes));
        }
    }
    let saved = engine.doc(&doc).ok_or("no protocol")?.save();
    Ok(Protocol {
        doc,
        saved,
        endorsement: endorsement.ok_or("the school attested nothing")?,
        sheets: signed,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sheets_total: usize = std::env::var("INGEST_BENCH_SHEETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32_000);
    let ca = FixedCa::default();
    let rules = Rules::is_2024()?;
    let region = RegionCode::new(REGION)?;

    let t = Instant::now();
    let mut directory = FixedDirectory::default();
    let mut protocols = Vec::with_capacity(SCHOOLS);
    for school in 0..SCHOOLS {
        let m = MunicipalityCode::new(&format!("42{:02}", school % MUNICIPALITIES + 1))?;
        let s = SchoolCode::new(&format!("{m}{:02}", school / MUNICIPALITIES + 1))?;
        let experts: Vec<(PersonId, SigningKey)> = (0..EXPERTS_PER_SCHOOL)
            .map(|e| {
                let id = PersonId::new(&format!("exp-{s}-{e}"))?;
                let k = key(u64::try_from(school * EXPERTS_PER_SCHOOL + e)?, 2);
                directory.add(id, k.verifying_key(), &[s]);
                Ok((id, k))
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?;
        // Spread the sheets evenly: the first schools take the remainder.
        let sheets = sheets_total / SCHOOLS + usize::from(school < sheets_total % SCHOOLS);
        protocols.push(school_protocol(
            &ca,
            region,
            m,
            s,
            sheets,
            school * 1000,
            &rules,
            &experts,
            u64::try_from(school)?,
        )?);
    }
    let saved_bytes: usize = protocols.iter().map(|p| p.saved.len()).sum();
    println!(
        "{sheets_total} sheets in {SCHOOLS} schools' protocols ({:.1} MiB saved), built in {:.1} s",
        saved_bytes as f64 / (1024.0 * 1024.0),
        t.elapsed().as_secs_f64()
    );

    let rcoi_identity = NodeIdentity {
        region,
        org: OrgCode::parse(NodeRole::Rcoi, REGION)?,
        municipality: None,
    };
    let rcoi_key = key(u64::MAX, 3);
    let rcoi_cert = ca.issue(rcoi_identity, &rcoi_key);
    let mut rcoi = Engine::new(rcoi_identity, rcoi_key, rcoi_cert, Box::new(ca.clone()));
    let t = Instant::now();
    for p in &protocols {
        rcoi.load_doc(p.doc, &p.saved, std::slice::from_ref(&p.endorsement))?;
    }
    println!(
        "loaded at the РЦОИ (attestations checked) in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // The checks alone, batched per protocol as ingest batches them.
    let t = Instant::now();
    let mut verified = 0usize;
    for p in &protocols {
        verified += verify_many(&p.sheets, &rules, &directory)
            .iter()
            .filter(|r| r.is_ok())
            .count();
    }
    let checks_s = t.elapsed().as_secs_f64();
    assert_eq!(verified, sheets_total, "every generated sheet verifies");
    black_box(verified);

    // The whole ingest pass: decode from the documents, check, receipt.
    let now_ms = "2024-02-14T10:00:00Z".parse::<Timestamp>()?.unix_ms();
    let t = Instant::now();
    let mut receipted = 0usize;
    for p in &protocols {
        receipted += receipt_new_sheets(
            &mut rcoi,
            p.doc,
            &rules,
            |_| &directory,
            UtcOffset::UTC,
            now_ms,
        )?;
    }
    let ingest_s = t.elapsed().as_secs_f64();
    assert_eq!(receipted, sheets_total, "every sheet receipted once");
    let verdicts_ok = protocols
        .iter()
        .filter_map(|p| rcoi.doc(&receipts_of(p.doc)?))
        .flat_map(|d| content::receipts(d).into_values())
        .filter(|v| v == RECEIPT_VERIFIED)
        .count();
    assert_eq!(verdicts_ok, sheets_total, "every receipt says verified");
    // A second pass finds nothing new.
    let again: usize = protocols
        .iter()
        .map(|p| {
            receipt_new_sheets(
                &mut rcoi,
                p.doc,
                &rules,
                |_| &directory,
                UtcOffset::UTC,
                now_ms,
            )
        })
        .sum::<Result<_, _>>()?;
    assert_eq!(again, 0);

    println!(
        "checks alone (verify_many per protocol): {:.0} sheets/s ({:.2} s)",
        sheets_total as f64 / checks_s,
        checks_s
    );
    println!(
        "ingest pass (decode, check, receipt change per school): {:.0} sheets/s ({:.2} s for the region's day)",
        sheets_total as f64 / ingest_s,
        ingest_s
    );
    Ok(())
}
