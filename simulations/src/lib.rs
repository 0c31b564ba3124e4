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
/// `progress(simulated_ms, scripted_end_ms)` is called now and then.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    random_faults: bool,
    progress: impl FnMut(i64, i64),
) -> Result<(Report, Vec<report::FaultWindow>), ScenarioError> {
    simulate_sabotaged(scenario, seed, random_faults, Sabotage::None, progress)
}

/// [`simulate`] with the simulator itself broken as `sabotage` says (for the tests that show
/// each invariant can fail).
pub fn simulate_sabotaged(
    scenario: &Scenario,
    seed: u64,
    random_faults: bool,
    sabotage: Sabotage,
    progress: impl FnMut(i64, i64),
) -> Result<(Report, Vec<report::FaultWindow>), ScenarioError> {
    let started = Instant::now();
    let plan = Plan::new(scenario, seed, random_faults)?;
    let rules = Rules::is_2024().map_err(|e| ScenarioError::Invalid {
        field: "rules".into(),
        message: e.to_string(),
    })?;
    let mut region = Region::new(plan, rules);
    region.sabotage = sabotage;
    region.run(progress);
    region.after_the_day();
    let wall_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let report = Report::of(&region, wall_s, report::peak_memory_mib());
    Ok((report, report::fault_windows(&region)))
}
