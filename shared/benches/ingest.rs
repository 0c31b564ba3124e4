//! Verification on ingest at the РЦОИ for a region's whole day at once, on one core.
//!
//! `cargo bench -p giasync-shared --bench ingest` builds a Kuzbass-sized region's protocols
//! (34 municipalities, 610 schools, 32,000 signed sheets by 3 experts per school, one change per
//! sheet as a school's day makes them), loads them into the РЦОИ's engine as they stand after a
//! catch-up, then times [`receipt_new_sheets_of`] over every protocol at once, as the РЦОИ
//! receipts the protocols a batch of changes touched: each sheet's signer and recomputed total
//! checked against its own protocol's experts, the signatures of all schools in shared ed25519
//! batches, and the verdicts written as one receipt change per school. It prints sheets per
//! second for that whole pass and, beside it, for the checks alone (`verify_groups` on the same
//! sheets), so the cost of the receipt changes shows.
//! `INGEST_BENCH_SHEETS` changes the sheet count.
//!
//! Then the same pass on the production certificate path: every protocol carries its experts'
//! real X.509 certificates (issued by a region CA made for the run, `giasync_certs::pki`), and
//! the directory is the РЦОИ's `CaVerifier` over them, as `giasync-node` builds it (the
//! certificates it has not seen checked against the CA together, in one batch of the CA's
//! signatures, then remembered). The node attestations of the
//! documents are checked by the stand-in CA (`FixedCa`) in both: they are judged when a
//! document arrives, not at ingest.
//!
//! Last, the trickle on that path: a РЦОИ that has receipted every sheet but each school's last,
//! then takes the last sheets as they arrive, in receipt passes of 1, 4, 16 and 64 schools'
//! arrivals (`TRICKLE_PER_PASS`); only the passes are timed. A pass of one is what the
//! simulator's `ingest_sheets_per_s` measures through its day (each arriving sheet pays for a
//! receipt change of its own); larger passes are what the node's engine thread makes of frames
//! queued behind one while it is busy (`BATCH_FRAMES_MAX` in `node/src/run.rs`). Each school's
//! receipts live in its own РЦОИ document, so a pass still makes one receipt change per school.
//! Beside them, the checks alone of the same arriving sheets, each by itself: the signature check
//! that cannot be batched with others, without the receipt change.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use giasync_certs::PersonIdentity;
use giasync_certs::keyfile::{self, KdfParams, Pin};
use giasync_certs::pki::{Pki, Validity};
use giasync_certs::show::certs_from_pem;
use giasync_certs::verify::CaVerifier;
use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::{
    MunicipalityCode, NodeRole, OrgCode, ParticipantId, PersonId, PersonRole, RegionCode, RoomCode,
    SchoolCode,
};
use giasync_shared::content;
use giasync_shared::ingest::{RECEIPT_VERIFIED, receipt_new_sheets_of, receipts_of};
use giasync_shared::participant::Category;
use giasync_shared::record::{
    Attempt, FixedDirectory, SheetDraft, SheetSubject, SignedSheet, SignerDirectory, verify_groups,
};
use giasync_shared::rules::Rules;
use giasync_shared::sync::{DocId, DocKind, Engine, FixedCa, NodeIdentity, Output, Persist};
use time::OffsetDateTime;

const REGION: &str = "42";
const EXAM: &str = "is-2024-02-14";
const MUNICIPALITIES: usize = 34;
const SCHOOLS: usize = 610;
const EXPERTS_PER_SCHOOL: usize = 3;

/// An expert of a school: id, signing key and certificate (DER).
type Expert = (PersonId, SigningKey, Vec<u8>);

fn key(seed: u64, salt: u8) -> SigningKey {
    let mut bytes = [salt; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    SigningKey::from_bytes(&bytes)
}

/// A node's attestation of a document as the store keeps it: (certificate, attestation).
type Endorsement = (Vec<u8>, Vec<u8>);

/// One school's protocol as its node made it: the saved document and its attestation.
struct Protocol {
    doc: DocId,
    saved: Vec<u8>,
    endorsement: Endorsement,
    /// The document and its attestation before the last sheet, for the trickle (a protocol of
    /// at least two sheets).
    before_last: Option<(Vec<u8>, Endorsement)>,
    sheets: Vec<SignedSheet>,
    /// The experts' certificates the protocol lists, by person id.
    expert_certs: BTreeMap<String, Vec<u8>>,
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
    experts: &[Expert],
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
    let start: Timestamp = "2024-02-14T02:15:00Z".parse()?;
    let mut signed = Vec::with_capacity(sheets);
    let mut endorsement = None;
    let mut before_last = None;
    for i in 0..sheets {
        if i == sheets - 1 && i > 0 {
            let saved = engine.doc(&doc).ok_or("no protocol")?.save();
            before_last = endorsement.clone().map(|e| (saved, e));
        }
        let (expert, expert_key, expert_cert) = &experts[i % experts.len()];
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
            content::put_sheet(tx, &sheet, *expert, expert_cert)
        })?;
        signed.push(sheet);
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
    }
    let saved = engine.doc(&doc).ok_or("no protocol")?.save();
    Ok(Protocol {
        doc,
        saved,
        endorsement: endorsement.ok_or("the school attested nothing")?,
        before_last,
        sheets: signed,
        expert_certs: experts
            .iter()
            .map(|(id, _, cert)| (id.to_string(), cert.clone()))
            .collect(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The year's data and calendar are read here, not in a timed pass.
    let _ = signing_time();
    let sheets_total: usize = std::env::var("INGEST_BENCH_SHEETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32_000);
    if sheets_total < SCHOOLS {
        return Err(format!("INGEST_BENCH_SHEETS: at least {SCHOOLS} (a sheet a school)").into());
    }
    let ca = FixedCa::default();
    let rules = Rules::is_2024()?;
    let region = RegionCode::new(REGION)?;

    let t = Instant::now();
    let pki_dir = tempfile::tempdir()?;
    let made = OffsetDateTime::from_unix_timestamp(1_704_067_200)?; // 2024-01-01
    let mut pki = Pki::init(pki_dir.path(), region, "Бенч", made)?;
    let pin = Pin::new("свет-ручей-1357".into())?;
    let mut directory = FixedDirectory::default();
    let mut protocols = Vec::with_capacity(SCHOOLS);
    for school in 0..SCHOOLS {
        let m = MunicipalityCode::new(&format!("42{:02}", school % MUNICIPALITIES + 1))?;
        let s = SchoolCode::new(&format!("{m}{:02}", school / MUNICIPALITIES + 1))?;
        let experts: Vec<Expert> = (0..EXPERTS_PER_SCHOOL)
            .map(|e| {
                let id = PersonId::new(&format!("exp-{s}-{e}"))?;
                let (k, cert) = issue_expert(&mut pki, &pin, id, s, made)?;
                directory.add(id, k.verifying_key(), &[s]);
                Ok((id, k, cert))
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
        "{sheets_total} sheets in {SCHOOLS} schools' protocols ({:.1} MiB saved), built with {} expert certificates in {:.1} s",
        saved_bytes as f64 / (1024.0 * 1024.0),
        SCHOOLS * EXPERTS_PER_SCHOOL,
        t.elapsed().as_secs_f64()
    );

    let rcoi_identity = NodeIdentity {
        region,
        org: OrgCode::parse(NodeRole::Rcoi, REGION)?,
        municipality: None,
    };
    let t = Instant::now();
    let mut rcoi = rcoi_holding(&ca, rcoi_identity, &protocols, Stage::Whole)?;
    println!(
        "loaded at the РЦОИ (attestations checked) in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // The checks alone, batched over every protocol as ingest batches them.
    let t = Instant::now();
    let verified = checks_alone(&protocols, |_| &directory, &rules);
    let checks_s = t.elapsed().as_secs_f64();
    assert_eq!(verified, sheets_total, "every generated sheet verifies");
    black_box(verified);

    // The whole ingest pass: decode from the documents, check, receipt.
    let now_ms = "2024-02-14T10:00:00Z".parse::<Timestamp>()?.unix_ms();
    let t = Instant::now();
    let receipted = receipt_all(&mut rcoi, &protocols, &rules, |_| &directory, now_ms)?;
    let ingest_s = t.elapsed().as_secs_f64();
    assert_eq!(receipted, sheets_total, "every sheet receipted once");
    let verdicts_ok = receipts_verified(&rcoi, &protocols);
    assert_eq!(verdicts_ok, sheets_total, "every receipt says verified");
    // A second pass finds nothing new.
    let again = receipt_all(&mut rcoi, &protocols, &rules, |_| &directory, now_ms)?;
    assert_eq!(again, 0);

    // The production certificate path: a fresh РЦОИ, the directory its `CaVerifier` builds from
    // the certificates each protocol lists.
    let verifier = CaVerifier::from_pem(
        pki.ca_cert_pem().as_bytes(),
        pki.crl_pem()?.as_bytes(),
        region,
    )?;
    let mut rcoi = rcoi_holding(&ca, rcoi_identity, &protocols, Stage::Whole)?;
    let t = Instant::now();
    let receipted = receipt_all(
        &mut rcoi,
        &protocols,
        &rules,
        |certs| verifier.experts(certs),
        now_ms,
    )?;
    let production_s = t.elapsed().as_secs_f64();
    assert_eq!(
        receipted, sheets_total,
        "every sheet receipted once (X.509 path)"
    );
    let verdicts_ok = receipts_verified(&rcoi, &protocols);
    assert_eq!(
        verdicts_ok, sheets_total,
        "every receipt says verified (X.509 path)"
    );
    // The checks alone on that path, the directory built per protocol as ingest builds it.
    let t = Instant::now();
    let directories: Vec<_> = protocols
        .iter()
        .map(|p| verifier.experts(&p.expert_certs))
        .collect();
    let verified = checks_alone(&protocols, |i| &directories[i], &rules);
    let production_checks_s = t.elapsed().as_secs_f64();
    assert_eq!(verified, sheets_total, "every sheet verifies (X.509 path)");

    println!(
        "checks alone (verify_groups, every protocol at once): {:.0} sheets/s ({:.2} s)",
        sheets_total as f64 / checks_s,
        checks_s
    );
    println!(
        "ingest pass (decode, check, receipt change per school): {:.0} sheets/s ({:.2} s for the region's day)",
        sheets_total as f64 / ingest_s,
        ingest_s
    );
    println!(
        "production certificate path (CaVerifier over X.509): checks alone {:.0} sheets/s ({:.2} s), ingest pass {:.0} sheets/s ({:.2} s)",
        sheets_total as f64 / production_checks_s,
        production_checks_s,
        sheets_total as f64 / production_s,
        production_s
    );

    // The trickle, on the production certificate path: arrivals one school at a time, and in
    // passes of several schools' arrivals together.
    if protocols.iter().all(|p| p.before_last.is_some()) {
        let mut rates = Vec::new();
        for per_pass in TRICKLE_PER_PASS {
            let timed = trickle(
                &ca,
                rcoi_identity,
                &protocols,
                &rules,
                |certs| verifier.experts(certs),
                now_ms,
                per_pass,
            )?;
            rates.push(format!(
                "{per_pass}: {:.0} sheets/s ({:.0} µs a sheet)",
                SCHOOLS as f64 / timed,
                timed * 1e6 / SCHOOLS as f64
            ));
        }
        println!(
            "trickle (X.509 path): each school's last sheet arriving, receipt passes of this many schools' arrivals: {}",
            rates.join("; ")
        );
        // The checks alone of the same arrivals, each sheet by itself (its directory built
        // as a pass builds it, the certificates already checked): what a trickling sheet's
        // verification costs without its receipt change.
        let t = Instant::now();
        let verified = protocols
            .iter()
            .filter(|p| {
                let directory = verifier.experts(&p.expert_certs);
                let last = &p.sheets[p.sheets.len() - 1..];
                verify_groups(&[(last, &directory as &dyn SignerDirectory)], &rules)
                    .iter()
                    .flatten()
                    .all(Result::is_ok)
            })
            .count();
        let alone_s = t.elapsed().as_secs_f64();
        assert_eq!(verified, SCHOOLS, "every arriving sheet verifies alone");
        println!(
            "trickle, checks alone (X.509 path, each arriving sheet by itself, no receipt): {:.0} sheets/s ({:.0} µs a sheet)",
            SCHOOLS as f64 / alone_s,
            alone_s * 1e6 / SCHOOLS as f64
        );
    } else {
        println!("trickle: skipped (it needs at least two sheets a school)");
    }
    Ok(())
}

/// How many schools' arrivals a receipt pass of the trickle takes: one (a pass per arriving
/// sheet, as the simulator's РЦОИ makes them), and more (as the node's engine thread takes the
/// frames queued behind one into one batch when it is busy, `BATCH_FRAMES_MAX`).
const TRICKLE_PER_PASS: [usize; 4] = [1, 4, 16, 64];

/// The trickle: a РЦОИ that holds every protocol as it stood before its last sheet and has
/// receipted all of it; then each school's last sheet arrives, `per_pass` schools' at a time,
/// and each pass receipts them (`receipt_new_sheets_of` over those schools' protocols). Times
/// only the passes, the figure the simulator's `ingest_sheets_per_s` gives, not the taking in
/// of the changes (each arrival is loaded into the РЦОИ outside the timing). Seconds in all.
fn trickle<D: SignerDirectory>(
    ca: &FixedCa,
    identity: NodeIdentity,
    protocols: &[Protocol],
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D + Copy,
    now_ms: i64,
    per_pass: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut rcoi = rcoi_holding(ca, identity, protocols, Stage::AllButLast)?;
    let sheets_total: usize = protocols.iter().map(|p| p.sheets.len()).sum();
    let first = receipt_all(&mut rcoi, protocols, rules, directory_for, now_ms)?;
    assert_eq!(first, sheets_total - protocols.len(), "all but the last");
    while rcoi.poll_output().is_some() {}
    let mut timed = 0.0;
    for arrivals in protocols.chunks(per_pass) {
        for p in arrivals {
            rcoi.load_doc(p.doc, &p.saved, std::slice::from_ref(&p.endorsement))?;
        }
        while rcoi.poll_output().is_some() {}
        let t = Instant::now();
        let receipted = receipt_all(&mut rcoi, arrivals, rules, directory_for, now_ms)?;
        timed += t.elapsed().as_secs_f64();
        assert_eq!(receipted, arrivals.len(), "each pass receipts its arrivals");
        while rcoi.poll_output().is_some() {}
    }
    assert_eq!(
        receipts_verified(&rcoi, protocols),
        sheets_total,
        "every receipt of the trickle says verified"
    );
    Ok(timed)
}

/// How far each protocol is loaded into the РЦОИ.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Every sheet.
    Whole,
    /// Every sheet but the last (the trickle's start).
    AllButLast,
}

/// A РЦОИ engine holding every protocol at `stage` as it stands after a catch-up (attestations
/// checked).
fn rcoi_holding(
    ca: &FixedCa,
    identity: NodeIdentity,
    protocols: &[Protocol],
    stage: Stage,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let rcoi_key = key(u64::MAX, 3);
    let rcoi_cert = ca.issue(identity, &rcoi_key);
    let mut rcoi = Engine::new(identity, rcoi_key, rcoi_cert, Box::new(ca.clone()));
    for p in protocols {
        let (saved, endorsement) = match (&p.before_last, stage) {
            (Some((saved, endorsement)), Stage::AllButLast) => (saved, endorsement),
            _ => (&p.saved, &p.endorsement),
        };
        rcoi.load_doc(p.doc, saved, std::slice::from_ref(endorsement))?;
        // The register the РЦОИ imported before the day: each participant's category of
        // record, which the ingest checks every sheet against.
        let register = receipts_of(p.doc).ok_or("not a protocol")?;
        rcoi.change(0, register, |tx| {
            p.sheets
                .iter()
                .try_for_each(|s| match s.decode_unverified() {
                    Ok(sheet) => content::put_registered_category(
                        tx,
                        sheet.subject.participant,
                        Category::Standard,
                    ),
                    Err(_) => Ok(()),
                })
        })?;
    }
    while rcoi.poll_output().is_some() {}
    Ok(rcoi)
}

/// The checks alone over every protocol at once, as ingest batches them, each protocol's sheets
/// against `directory_of` its index: how many verify.
fn checks_alone<'a, D: SignerDirectory + 'a>(
    protocols: &[Protocol],
    directory_of: impl Fn(usize) -> &'a D,
    rules: &Rules,
) -> usize {
    let groups: Vec<(&[SignedSheet], &dyn SignerDirectory)> = protocols
        .iter()
        .enumerate()
        .map(|(i, p)| (p.sheets.as_slice(), directory_of(i) as &dyn SignerDirectory))
        .collect();
    verify_groups(&groups, rules)
        .iter()
        .flatten()
        .filter(|r| r.is_ok())
        .count()
}

/// The checks of time on UTC with the shipped year's scoring days, read once (`main` reads
/// them before anything is timed).
fn signing_time() -> giasync_shared::ingest::SigningTime<'static> {
    static YEAR: std::sync::LazyLock<giasync_shared::year::YearData> =
        std::sync::LazyLock::new(|| {
            giasync_shared::year::YearData::year_2024().expect("the shipped year's data")
        });
    static CALENDAR: std::sync::LazyLock<giasync_shared::workdays::ProductionCalendar> =
        std::sync::LazyLock::new(|| {
            giasync_shared::workdays::ProductionCalendar::shipped().expect("the shipped calendar")
        });
    giasync_shared::ingest::SigningTime {
        clock: UtcOffset::UTC,
        year: &YEAR,
        calendar: &CALENDAR,
    }
}

/// One ingest pass over every protocol at once, the directory built for each from the
/// certificates it lists; how many sheets it receipted.
fn receipt_all<D: SignerDirectory>(
    rcoi: &mut Engine,
    protocols: &[Protocol],
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    now_ms: i64,
) -> Result<usize, Box<dyn std::error::Error>> {
    let docs: Vec<DocId> = protocols.iter().map(|p| p.doc).collect();
    let mut receipted = 0;
    for (_, outcome) in
        receipt_new_sheets_of(rcoi, &docs, rules, directory_for, signing_time(), now_ms)
    {
        receipted += outcome?;
    }
    Ok(receipted)
}

/// The receipts at the РЦОИ that say verified.
fn receipts_verified(rcoi: &Engine, protocols: &[Protocol]) -> usize {
    protocols
        .iter()
        .filter_map(|p| rcoi.doc(&receipts_of(p.doc)?))
        .flat_map(|d| content::receipts(d).into_values())
        .filter(|v| v == RECEIPT_VERIFIED)
        .count()
}

/// An expert's certificate from the region CA (its key file sealed at a low cost: the bench
/// times verification, not sign-in), valid through the exam day.
fn issue_expert(
    pki: &mut Pki,
    pin: &Pin,
    id: PersonId,
    school: SchoolCode,
    made: OffsetDateTime,
) -> Result<(SigningKey, Vec<u8>), Box<dyn std::error::Error>> {
    let identity = PersonIdentity {
        region: pki.region(),
        role: PersonRole::Expert,
        id,
        org: OrgCode::School(school),
    };
    let fast = KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };
    let credentials = pki.issue_person(
        &identity,
        "Эксперт",
        Validity::days_from(made, 365)?,
        pin,
        fast,
    )?;
    let key = keyfile::open(&credentials.key_file, pin)?;
    let cert = certs_from_pem(credentials.cert_pem.as_bytes())?
        .into_iter()
        .next()
        .ok_or("no certificate issued")?;
    Ok((key, cert))
}
