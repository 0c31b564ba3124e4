//! The node of every organisation (school, МОУО hub, РЦОИ), in three layers:
//!
//! - **driver**: [`run`] (the engine thread, quinn, the clock), [`transport`] (mutually
//!   authenticated QUIC), [`store`] (redb). Knows documents, not rosters or sheets.
//! - **application**: [`app`], one module per area of the exam day; typed commands over the
//!   engine, the rights of each role, typed answers and errors.
//! - **skins**: [`admin`] (the admin socket and the console), [`web`] (the pages), the CLIs in
//!   `main.rs` and `giasync-hub`, with [`import`] and [`export`] for their files and [`doctor`]
//!   for the readiness check.
//!
//! [`service`] puts them together for `giasync-node run` and `giasync-hub run`; [`person`] owns
//! key loading. `docs/design.md` ("The node's layers") says where a new command goes.

pub mod admin;
pub mod app;
pub mod backup;
pub mod blobs;
pub mod bundle;
pub mod doctor;
pub mod enrol;
pub mod enrol_person;
pub mod export;
pub mod import;
pub mod materials;
pub mod person;
pub mod progress;
pub mod run;
pub mod run_blobs;
pub mod service;
pub mod store;
pub mod transport;
pub mod watch;
pub mod web;

/// The environment variable that asks for JSON lines: `GIASYNC_LOG=json`.
pub const LOG_FORMAT_ENV: &str = "GIASYNC_LOG";

/// Logs to stderr, filtered by `RUST_LOG` (default `warn` for the operators' commands); as JSON
/// lines when `GIASYNC_LOG=json` (one object a line: `timestamp`, `level`, the event's fields
/// such as `message`, `node`, `peer`, `doc` at the top level, and the spans it happened in), for
/// a log collector to read; as text otherwise.
pub fn init_logging() {
    // automerge logs every error it returns at ERROR (e.g. "change's deps should already be in
    // the document" when the engine test-parses a single change chunk, which is expected):
    // the engine reports what matters itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,automerge=off"));
    let json = std::env::var(LOG_FORMAT_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
