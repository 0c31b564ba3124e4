//! `giasync-node`: the school's node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The school's node of giasync: runs the node, and checks its readiness.
#[derive(Debug, Parser)]
#[command(name = "giasync-node", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the school's node: sync its documents with its upstreams (its МОУО hub first, the
    /// РЦОИ when the hub is down) until Ctrl-C or SIGTERM.
    Run {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// The readiness check for the day before the exam: store, certificate and key, expiry,
    /// CA and revocation list, each upstream reachable and proving its identity, clock skew.
    /// One line per check; exits non-zero if any fails.
    Doctor {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// How long to wait for each upstream, in milliseconds.
        #[arg(long, default_value_t = giasync_node::doctor::UPSTREAM_TIMEOUT_MS)]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    giasync_node::init_logging();
    match Cli::parse().command {
        Command::Run { config } => match giasync_node::run::run_until_stopped(&config, false) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Doctor { config, timeout_ms } => match giasync_node::doctor::report(
            &config,
            std::time::Duration::from_millis(timeout_ms),
        ) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
