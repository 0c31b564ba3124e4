//! Rehearsing exam day.
//!
//! - [`demo`]: a demo region of separate processes on loopback QUIC (`giasync-sim demo`).
//! - The deterministic region simulator (`giasync-sim run`, `sweep`): [`scenario`] files become
//!   a [`plan`], which [`region`] runs through the production sans-IO sync engine over a
//!   simulated network and clock; [`report`] checks the invariants and reports, judging who may
//!   write and hold what by [`authority`], the design's table written out.

pub mod authority;
pub mod demo;
pub mod plan;
pub mod region;
pub mod report;
pub mod rng;
pub mod sabotage;
pub mod scenario;

use std::time::Instant;

use giasync_shared::rules::Rules;

use crate::plan::Plan;
use crate::region::Region;
use crate::report::Report;
use crate::sabotage::Sabotage;
use crate::scenario::{Scenario, ScenarioError};

/// Runs `scenario` under `seed` (with faults drawn from the seed too when `random_faults`);
/// `progress(simulated_ms, scripted_end_ms)` is called now and then. What `sweep` runs: one
/// region, no run without recordings beside it.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    random_faults: bool,
    progress: impl FnMut(i64, i64),
) -> Result<(Report, Vec<report::FaultWindow>), ScenarioError> {
    simulate_with(
        scenario,
        seed,
        random_faults,
        (Sabotage::None, 1),
        false,
        progress,
    )
}

/// What `run` runs: [`simulate`] with, for a scenario with recordings, the same scenario and
/// seed run again without them beside it (`receipt_latency_p99_ms_without_audio`); and the
/// simulator itself broken as `sabotage` says (for the tests that show each invariant can
/// fail). The region runs on `threads` ([`Region::threads`]; one while the run without
/// recordings takes the other core).
pub fn simulate_sabotaged(
    scenario: &Scenario,
    seed: u64,
    random_faults: bool,
    (sabotage, threads): (Sabotage, usize),
    progress: impl FnMut(i64, i64),
) -> Result<(Report, Vec<report::FaultWindow>), ScenarioError> {
    simulate_with(
        scenario,
        seed,
        random_faults,
        (sabotage, threads),
        true,
        progress,
    )
}

fn simulate_with(
    scenario: &Scenario,
    seed: u64,
    random_faults: bool,
    (sabotage, threads): (Sabotage, usize),
    baseline: bool,
    progress: impl FnMut(i64, i64),
) -> Result<(Report, Vec<report::FaultWindow>), ScenarioError> {
    let started = Instant::now();
    // The same scenario and seed without recordings, beside (the two regions share nothing):
    // the delay the recordings add to sheets.
    let without_audio = scenario.audio.filter(|_| baseline).map(|_| Scenario {
        audio: None,
        materials: None,
        ..scenario.clone()
    });
    let (region, baseline) = std::thread::scope(|scope| {
        let baseline = without_audio.as_ref().map(|quiet| {
            scope.spawn(move || {
                let plan = Plan::new(quiet, seed, random_faults)?;
                let mut region = Region::new(plan, rules()?, sabotage)?;
                region.run(|_, _| {});
                Ok::<_, ScenarioError>(region.observed().receipt_latency_ms.clone())
            })
        });
        let region = (|| {
            let plan = Plan::new(scenario, seed, random_faults)?;
            let mut region = Region::new(plan, rules()?, sabotage)?;
            region.threads = if baseline.is_some() { 1 } else { threads };
            region.run(progress);
            region.after_the_day();
            Ok::<_, ScenarioError>(region)
        })();
        let baseline = baseline.map(|handle| {
            handle.join().unwrap_or_else(|_| {
                Err(ScenarioError::Invalid {
                    field: "audio".into(),
                    message: "the run without recordings failed".into(),
                })
            })
        });
        (region, baseline.transpose())
    });
    let (region, baseline) = (region?, baseline?);
    let wall_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let mut report = Report::of(&region, wall_s, report::peak_memory_mib());
    report.receipt_latency_p99_ms_without_audio =
        baseline.and_then(|latencies| report::percentile(&latencies, 99));
    Ok((report, report::fault_windows(&region)))
}

/// The year's scoring rules the simulated region judges by.
fn rules() -> Result<Rules, ScenarioError> {
    Rules::is_2024().map_err(|e| ScenarioError::Invalid {
        field: "rules".into(),
        message: e.to_string(),
    })
}
