//! giasync's shared core: the exam domain, scoring rules as data, signed score records, node
//! identities and configuration, and the sans-IO sync engine (`sync`).
//!
//! Nothing here does IO or reads the clock; callers pass `now`. quinn and redb in `node`/`hub`
//! and the simulator are the drivers.

pub mod act;
pub mod approval;
pub mod audio;
pub mod blob;
pub mod bundle;
pub mod calendar;
pub mod codes;
pub mod commission;
pub mod config;
pub mod content;
pub mod datafile;
pub mod ed25519_batch;
pub mod error;
pub mod essay;
pub mod exam;
pub mod export;
pub mod federal;
pub mod identity;
pub mod import;
pub mod ingest;
pub mod materials;
pub mod oversight;
pub mod participant;
pub mod publish;
pub mod readiness;
pub mod recheck;
pub mod record;
pub mod recording;
pub mod resolve;
pub mod retake;
pub mod room;
pub mod rules;
pub mod settlement;
pub mod signature_memo;
pub mod statement;
pub mod sync;
#[cfg(test)]
mod test_ids;
mod text;
pub mod workdays;
pub mod year;

pub use error::{DomainError, Field};
