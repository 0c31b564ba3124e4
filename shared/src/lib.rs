//! giasync's shared core: the exam domain, scoring rules as data and signed score records.
//!
//! Nothing here does IO or reads the clock; callers pass `now`. Later the sans-IO sync engine
//! lives here too, driven by quinn and redb in `node`/`hub` and by the simulator.

pub mod calendar;
pub mod codes;
pub mod config;
pub mod error;
pub mod exam;
pub mod identity;
pub mod participant;
pub mod record;
pub mod resolve;
pub mod room;
pub mod rules;
mod text;

pub use error::{DomainError, Field};
