//! What a sign-in costs, and what guessing a stolen key file's PIN costs: the time and memory
//! of one Argon2id derivation (opening a person's key file) at several cost settings, on one
//! core. The default ([`KdfParams::DEFAULT`]) must open within [`SIGN_IN_MS_MAX`] here.
//!
//! `cargo bench -p giasync-certs --bench keyfile` (release). `KEYFILE_BENCH_OPENS` sets how many
//! opens are timed per setting (default 5).

use std::time::Instant;

use ed25519_dalek::SigningKey;
use giasync_certs::keyfile::{KdfParams, Pin, open, seal};

/// The longest a right sign-in may spend in the key derivation on this machine.
const SIGN_IN_MS_MAX: f64 = 1_000.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opens: u32 = std::env::var("KEYFILE_BENCH_OPENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let key = SigningKey::from_bytes(&[7; 32]);
    let pin = Pin::new("482913".into())?;
    let settings = [
        (
            "OWASP minimum (before)",
            KdfParams {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1,
            },
        ),
        (
            "64 MiB, 3 passes",
            KdfParams {
                memory_kib: 65_536,
                iterations: 3,
                parallelism: 1,
            },
        ),
        ("default", KdfParams::DEFAULT),
        (
            "256 MiB, 3 passes",
            KdfParams {
                memory_kib: 262_144,
                iterations: 3,
                parallelism: 1,
            },
        ),
    ];
    let mut default_ms = f64::MAX;
    for (name, params) in settings {
        let file = seal(&key, &pin, params)?;
        let started = Instant::now();
        for _ in 0..opens {
            let opened = open(&file, &pin)?;
            assert_eq!(opened.to_bytes(), key.to_bytes());
        }
        let ms = started.elapsed().as_secs_f64() * 1_000.0 / f64::from(opens);
        // A 6-digit PIN is 10^6 guesses; a 12-character passphrase of lower-case Cyrillic and
        // digits about 43^12.
        let pin_hours = ms * 1e6 / 3_600_000.0;
        println!(
            "{name:>24}: {} MiB, {} passes: {ms:7.1} ms per open; all 6-digit PINs: {pin_hours:8.0} core-hours",
            params.memory_kib / 1024,
            params.iterations
        );
        if name == "default" {
            default_ms = ms;
        }
    }
    assert!(
        default_ms <= SIGN_IN_MS_MAX,
        "the default takes {default_ms:.0} ms per sign-in, more than {SIGN_IN_MS_MAX} ms"
    );
    Ok(())
}
