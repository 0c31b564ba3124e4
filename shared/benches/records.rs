//! Signing and verifying score sheets, one by one and in batches, on one core.
//!
//! `cargo bench -p giasync-shared --bench records` prints sheets per second for: signing; the
//! full check (decode, rules, signer, signature) one by one and batched; and plain ed25519-dalek
//! on the same messages as the baseline. Set `RECORDS_BENCH_SHEETS` to change the sheet count.

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use giasync_shared::codes::{ParticipantId, PersonId, RoomCode, SchoolCode};
use giasync_shared::participant::Category;
use giasync_shared::record::{
    Attempt, FixedDirectory, SheetDraft, SheetSubject, SignedSheet, SignerDirectory,
    VERIFY_BATCH_SIZE, verify_many,
};
use giasync_shared::rules::Rules;

const EXPERTS: u8 = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sheets_count: usize = std::env::var("RECORDS_BENCH_SHEETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let rules = Rules::is_2024()?;
    let school = SchoolCode::new("420101")?;
    let keys: Vec<SigningKey> = (1..=EXPERTS)
        .map(|n| SigningKey::from_bytes(&[n; 32]))
        .collect();
    let mut directory = FixedDirectory::default();
    for (n, key) in keys.iter().enumerate() {
        directory.add(
            PersonId::new(&format!("exp-{n}"))?,
            key.verifying_key(),
            &[school],
        );
    }
    let standard = rules.category(Category::Standard)?;
    let criteria: Vec<_> = standard.criteria(&rules).map(|c| (c.id, c.max)).collect();
    let start_ms: giasync_shared::calendar::Timestamp = "2024-02-14T02:00:00Z".parse()?;

    let drafts: Vec<(SheetDraft, usize)> = (0..sheets_count)
        .map(|i| {
            let expert = i % keys.len();
            let points = criteria
                .iter()
                .enumerate()
                .map(|(j, &(id, max))| {
                    (
                        id,
                        i64::from(u8::try_from((i + j) % 3).unwrap_or(0).min(max)),
                    )
                })
                .collect();
            let draft = SheetDraft {
                subject: SheetSubject {
                    exam: "is-2024-02-14".parse().expect("exam id"),
                    school,
                    participant: ParticipantId::new(&format!("p{i}")).expect("participant id"),
                    attempt: Attempt::new(1).expect("attempt"),
                },
                room: RoomCode::new("101").expect("room"),
                category: Category::Standard,
                points,
                expert: PersonId::new(&format!("exp-{expert}")).expect("person id"),
                signed_at: start_ms.plus_ms(i64::try_from(i).unwrap_or(0) * 1000),
                correction: None,
            };
            (draft, expert)
        })
        .collect();

    println!("{sheets_count} sheets, {EXPERTS} experts, batch size {VERIFY_BATCH_SIZE}, one core");

    let t = Instant::now();
    let sheets: Vec<SignedSheet> = drafts
        .into_iter()
        .map(|(draft, expert)| SignedSheet::sign(draft, &rules, &keys[expert]))
        .collect::<Result<_, _>>()?;
    report("sign (score + encode + ed25519 sign)", sheets_count, t);
    let bytes_total: usize = sheets.iter().map(|s| s.as_bytes().len()).sum();
    println!("  mean sheet size {} bytes", bytes_total / sheets_count);

    // What the full check adds to ed25519: decode, rules, signer look-up and the record hash.
    let t = Instant::now();
    for sheet in &sheets {
        let decoded = sheet.decode_unverified()?;
        black_box(rules.total(
            decoded.category,
            decoded.points.iter().map(|&(id, p)| (id, i64::from(p))),
        )?);
        black_box(directory.expert_key(
            decoded.expert,
            decoded.subject.school,
            decoded.signed_at,
        )?);
        black_box(sheet.hash());
    }
    report(
        "  of which: decode + rules + signer + hash",
        sheets_count,
        t,
    );

    let t = Instant::now();
    let mut ok = 0usize;
    for sheet in &sheets {
        ok += usize::from(black_box(sheet.verify(&rules, &directory)).is_ok());
    }
    report("full check, one by one", sheets_count, t);
    assert_eq!(ok, sheets_count, "every sheet verifies");

    let t = Instant::now();
    let results = black_box(verify_many(&sheets, &rules, &directory));
    report("full check, batched", sheets_count, t);
    assert!(
        results.iter().all(Result::is_ok),
        "every sheet verifies batched"
    );

    // Baselines: plain ed25519-dalek over the same messages with pre-decoded keys.
    let messages: Vec<&[u8]> = sheets
        .iter()
        .map(|s| &s.as_bytes()[..s.as_bytes().len() - 64])
        .collect();
    let signatures: Vec<Signature> = sheets
        .iter()
        .map(|s| {
            let raw: [u8; 64] = s.as_bytes()[s.as_bytes().len() - 64..]
                .try_into()
                .unwrap_or([0; 64]);
            Signature::from_bytes(&raw)
        })
        .collect();
    let vkeys: Vec<VerifyingKey> = (0..sheets_count)
        .map(|i| keys[i % keys.len()].verifying_key())
        .collect();

    let t = Instant::now();
    for i in 0..sheets_count {
        black_box(vkeys[i].verify(messages[i], &signatures[i]))?;
    }
    report("baseline: ed25519-dalek verify", sheets_count, t);

    for batch in [256usize, 1024] {
        let t = Instant::now();
        for start in (0..sheets_count).step_by(batch) {
            let end = (start + batch).min(sheets_count);
            black_box(ed25519_dalek::verify_batch(
                &messages[start..end],
                &signatures[start..end],
                &vkeys[start..end],
            ))?;
        }
        report(
            &format!("baseline: ed25519-dalek verify_batch({batch})"),
            sheets_count,
            t,
        );
    }
    Ok(())
}

fn report(what: &str, count: usize, since: Instant) {
    let s = since.elapsed().as_secs_f64();
    println!(
        "{what:<48} {:>9.0} sheets/s  ({:.2} µs each)",
        count as f64 / s,
        s * 1e6 / count as f64
    );
}
