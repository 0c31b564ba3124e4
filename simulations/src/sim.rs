//! The `run` and `sweep` commands.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use giasync_sim::scenario::Scenario;
use indicatif::{ProgressBar, ProgressStyle};

/// `giasync-sim run`: true when every invariant held.
pub fn run(
    path: &Path,
    (seed, random_faults, sabotage, threads): (
        Option<u64>,
        bool,
        giasync_sim::sabotage::Sabotage,
        Option<u8>,
    ),
    json: Option<&Path>,
    svg: Option<&Path>,
) -> anyhow::Result<bool> {
    let scenario = Scenario::load(path)?;
    let seed = seed.unwrap_or(scenario.seed);
    let threads = threads.map_or_else(
        || {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(2)
        },
        usize::from,
    );
    // Drawn on the terminal only (indicatif hides itself when stderr is not one).
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulated {msg} [{bar:40}] {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (report, faults) = giasync_sim::simulate_sabotaged(
        &scenario,
        seed,
        random_faults,
        (sabotage, threads),
        |now, end| {
            let minutes = now / 60_000;
            bar.set_message(format!("{:02}:{:02}", minutes / 60 % 24, minutes % 60));
            let done = (now.max(0) as f64 / end.max(1) as f64 * 1000.0).min(1000.0);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    println!("{}", report.human());
    if let Some(path) = json {
        std::fs::write(path, report.json()? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = svg {
        std::fs::write(path, report.svg(&faults))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.ok())
}

/// `giasync-sim sweep`: true when every seed passed.
pub fn sweep(path: &Path, first: u64, count: u64, jobs: Option<usize>) -> anyhow::Result<bool> {
    let scenario = Scenario::load(path)?;
    let started = Instant::now();
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let next = AtomicU64::new(first);
    let end = first.saturating_add(count);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("seeds [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let broke = match giasync_sim::simulate(&scenario, seed, true, |_, _| {}) {
                        Ok((report, _)) => report
                            .failures()
                            .map(|i| format!("{}: {}", i.name, i.detail))
                            .collect::<Vec<_>>()
                            .join("; "),
                        Err(e) => e.to_string(),
                    };
                    if !broke.is_empty()
                        && let Ok(mut f) = failures.lock()
                    {
                        f.push((seed, broke));
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    for (seed, broke) in &failures {
        println!("seed {seed} FAILED: {broke}");
        println!(
            "  replay: giasync-sim run {} --seed {seed} --random-faults",
            path.display()
        );
    }
    println!(
        "{} seeds ({}..{}) of {}: {} failed, {:.1} s",
        count,
        first,
        end.saturating_sub(1),
        path.display(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(failures.is_empty())
}
