//! The school node: mutually authenticated QUIC between nodes (`transport`) and the readiness
//! check (`doctor`). The store (redb), the sync drivers and `giasync-node run` arrive with the
//! sync issue; the web UI with the school UI issue. Hubs reuse all of it.

pub mod admin;
pub mod doctor;
pub mod export;
pub mod import;
pub mod person;
pub mod run;
pub mod school_day;
pub mod store;
pub mod transport;
pub mod web;

/// Logs to stderr, filtered by `RUST_LOG` (default `warn` for the operators' commands).
pub fn init_logging() {
    // automerge logs every error it returns at ERROR (e.g. "change's deps should already be in
    // the document" when the engine test-parses a single change chunk, which is expected):
    // the engine reports what matters itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,automerge=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
