//! A mutational fuzzer that runs on stable Rust, for the fuzz targets in `tests/tests/fuzz.rs`.
//!
//! A target is a function of bytes that must not panic, whatever the bytes. Its inputs start
//! from valid encodings (the seeds: a real frame, sheet, certificate, workbook…) and are mutated a
//! few edits at a time (bits flipped, bytes set to boundary values, lengths overwritten, ranges
//! cut, repeated or spliced from another seed), so they reach past the first length check into
//! the decoders' depths, as coverage-guided fuzzers do with a corpus. cargo-fuzz and libFuzzer
//! need a nightly compiler, which this project's machines do not have; this needs nothing.
//!
//! How long: `GIASYNC_FUZZ_SECONDS=N` runs each target for N seconds; otherwise
//! `GIASYNC_FUZZ_CASES` cases (default [`CASES_DEFAULT`], what CI runs). `GIASYNC_FUZZ_SEED`
//! picks another sequence of inputs (default fixed, so a CI run is reproducible).
//!
//! A panic is reported with the target, the case and the input in hex: make it a regression
//! test beside the decoder, then fix the decoder.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// Cases per target when no time is given.
pub const CASES_DEFAULT: u64 = 10_000;
/// The longest input a mutation grows, in bytes beyond the longest seed.
pub const GROWTH_BYTES_MAX: usize = 256;

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub cases: u64,
    pub elapsed: Duration,
}

impl Report {
    /// Cases per second.
    #[must_use]
    pub fn per_second(&self) -> f64 {
        self.cases as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {}: {} cases in {:.1} s, {:.0} cases/s",
            self.target,
            self.cases,
            self.elapsed.as_secs_f64(),
            self.per_second()
        )
    }
}

/// splitmix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
}

const INTERESTING_BYTES: [u8; 6] = [0, 1, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U32: [u32; 7] = [0, 1, 0x7f, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/// One edit of `input`.
fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], limit: usize) {
    let len = input.len();
    match rng.below(9) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        2 if len >= 4 => {
            let at = rng.below(len - 3);
            let value = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
            let bytes = if rng.below(2) == 0 {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            input[at..at + 4].copy_from_slice(&bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(64)).min(len);
            input.drain(at..end);
        }
        4 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(64);
            let fresh: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, fresh);
        }
        5 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(64)).min(len);
            let copy = input[at..end].to_vec();
            let to = rng.below(input.len() + 1);
            input.splice(to..to, copy);
        }
        6 => input.truncate(rng.below(len + 1)),
        7 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let (cut, from) = (rng.below(len + 1), rng.below(other.len() + 1));
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        _ if len > 0 => {
            let at = rng.below(len);
            input[at] = rng.next() as u8;
        }
        _ => input.push(rng.next() as u8),
    }
    input.truncate(limit);
}

/// How long to run: a time, or a number of cases.
fn budget() -> (Option<Duration>, u64) {
    let seconds = std::env::var("GIASYNC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let cases = std::env::var("GIASYNC_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES_DEFAULT);
    (seconds.map(Duration::from_secs), cases)
}

/// Runs `target` on the seeds as they are, then on mutations of them, within the budget; panics
/// naming the input if `target` panics on any. Returns what it did (printed by the caller).
pub fn run(target: &'static str, seeds: &[Vec<u8>], check: impl Fn(&[u8])) -> Report {
    assert!(!seeds.is_empty(), "fuzz target {target} has no seeds");
    let (time, cases) = budget();
    let seed = std::env::var("GIASYNC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6961_7379_6e63);
    let mut rng = Rng(seed ^ target.len() as u64);
    let limit = seeds.iter().map(Vec::len).max().unwrap_or(0) + GROWTH_BYTES_MAX;
    let started = Instant::now();
    let mut done = 0u64;
    let try_one = |input: &[u8], case: u64| {
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!(
                "fuzz target {target} panicked on case {case} ({} bytes): {hex}",
                input.len()
            );
        }
    };
    for s in seeds {
        try_one(s, done);
        done += 1;
    }
    loop {
        let more = match time {
            Some(t) => started.elapsed() < t,
            None => done < cases,
        };
        if !more {
            break;
        }
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate_once(&mut rng, &mut input, seeds, limit);
        }
        try_one(&input, done);
        done += 1;
    }
    Report {
        target,
        cases: done,
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness finds a planted bug, a decoder that panics on one byte value past a length
    /// check, and names the input; without it the fuzz targets could pass by never looking.
    #[test]
    fn the_harness_finds_a_planted_panic() {
        let seeds = vec![vec![3, b'a', b'b', b'c']];
        let planted = |bytes: &[u8]| {
            if bytes.first() == Some(&3) && bytes.get(2) == Some(&0xff) {
                panic!("planted");
            }
        };
        let found = catch_unwind(AssertUnwindSafe(|| run("planted", &seeds, planted)));
        let message = found
            .err()
            .and_then(|e| e.downcast_ref::<String>().cloned())
            .expect("the harness reports the planted panic");
        assert!(
            message.contains("fuzz target planted panicked"),
            "{message}"
        );
    }
}
