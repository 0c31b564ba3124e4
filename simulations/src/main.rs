//! `giasync-sim`: rehearse exam day.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sim;

/// The allocator (why, and why only here: the workspace Cargo.toml, beside `mimalloc`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rehearse exam day for a region.
#[derive(Debug, Parser)]
#[command(name = "giasync-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bring up a demo region on this machine (a РЦОИ hub, two МОУО hubs, four schools as
    /// separate processes with their own stores), import rosters, enter signed scores while
    /// one school is offline and one МОУО hub is down, restore them, and report how many sheets
    /// the РЦОИ holds verified. Exits 0 only if nothing was lost.
    Demo {
        /// Where the region's files go (replaced on every run).
        #[arg(long, default_value = "target/demo-region")]
        out: PathBuf,
        /// The РЦОИ's UDP port; the other nodes take the ports after it.
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
        /// Leave the region running and print each node's address and the demo people.
        #[arg(long)]
        keep: bool,
    },
    /// Simulate a region's exam day from a scenario file, deterministically: the production
    /// sync engine over a simulated network and clock. Prints a summary, checks the invariants
    /// and exits non-zero if any fails.
    Run {
        /// The scenario file (format: simulations/scenarios/README.md).
        scenario: PathBuf,
        /// The seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Add faults drawn from the seed, as `sweep` does (replays a sweep's seed).
        #[arg(long)]
        random_faults: bool,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a plot of sheets entered and verified at the РЦОИ over the day here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Break the simulator on purpose (giasync_sim::sabotage): for the tests that show
        /// each invariant can fail.
        #[arg(long, hide = true, default_value = "none")]
        sabotage: giasync_sim::sabotage::Sabotage,
        /// Threads the region may run on: 1 or 2 (default: 2 where the machine has two
        /// cores). The engine work of events at different nodes close together (less than the
        /// shortest link latency apart: frames, timers, entries) is then done side by side;
        /// the run and its report are the same whatever the count. A scenario with [audio]
        /// runs on one: its run without recordings takes the other core.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        threads: Option<u8>,
    },
    /// Run a scenario under many seeds with faults drawn from each seed; print every failing
    /// seed with the invariant it broke and the command that replays it.
    Sweep {
        /// The scenario file (format: simulations/scenarios/README.md).
        scenario: PathBuf,
        /// How many seeds.
        #[arg(long)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// Runs at once (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Run one node of the demo region (used by `demo` for each of its processes).
    #[command(hide = true)]
    Node {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    giasync_node::init_logging();
    let result = match Cli::parse().command {
        Command::Demo {
            out,
            base_port,
            keep,
        } => giasync_sim::demo::run(&giasync_sim::demo::DemoArgs {
            out,
            base_port,
            keep,
        }),
        Command::Run {
            scenario,
            seed,
            random_faults,
            json,
            svg,
            sabotage,
            threads,
        } => sim::run(
            &scenario,
            (seed, random_faults, sabotage, threads),
            json.as_deref(),
            svg.as_deref(),
        ),
        Command::Sweep {
            scenario,
            seeds,
            first_seed,
            jobs,
        } => sim::sweep(&scenario, first_seed, seeds, jobs),
        Command::Node { config } => {
            let hub = giasync_shared::config::NodeConfig::load(&config)
                .map(|c| c.node.role != giasync_shared::codes::NodeRole::School)
                .unwrap_or(false);
            giasync_node::service::run_until_stopped(&config, hub).map(|()| true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
