//! The application layer: what a node does for the people and operators of exam day, as typed
//! commands over the engine. It knows rosters, room logs, sheets, results and the hubs' work;
//! it does not know sockets, pages, redb or quinn.
//!
//! Each area has one module; each command is a function `fn(&mut Engine, &Context, ..., now)`
//! with typed arguments (the domain types of `giasync-shared`) and a typed answer or an
//! [`Error`]. [`Command`] names every command as data, so the skins (the admin socket and CLI in
//! `admin`, the pages in `web`) hand the engine thread one value and get one
//! [`Answer`] back; [`apply`] is the short dispatch. Who asks ([`Actor`]) is checked against the
//! rights of their role in one place ([`actor`]), for pages and the CLI alike.
//!
//! Writes go to the engine's outputs; the driver persists them before it answers.

pub mod actor;
pub mod acts;
pub mod command;
pub mod commission;
pub mod day;
mod error;
pub mod essay;
pub mod hub;
pub mod materials;
pub mod metrics;
pub mod readiness;
pub mod recheck;
pub mod recordings;
pub mod results;
pub mod retakes;
pub mod room_log;
pub mod roster;
pub mod scoring;
pub mod settlement;
pub mod status;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use giasync_certs::verify::{CaVerifier, ExpertDirectory};
use giasync_shared::calendar::{Date, Timestamp, UtcOffset};
use giasync_shared::codes::{OrgCode, PersonId, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::{ExamId, ExamKind};
use giasync_shared::rules::Rules;
use giasync_shared::statement::{Statement, StatementError, StatementKind};
use giasync_shared::sync::{DocId, DocKind, Engine};

pub use actor::{Action, Actor};
pub use command::{Answer, Command, apply};
pub use error::{Error, IMPORT_ERRORS_SHOWN_MAX, NotOfRoom, RcoiDuty, RowFault, RowProblem};

/// What a node needs besides its engine to answer commands.
#[derive(Debug)]
pub struct Context {
    pub verifier: CaVerifier,
    pub rules: Rules,
    /// The year's readiness checks per exam kind (`shared/rules/readiness-2024.toml`).
    pub readiness: giasync_shared::readiness::ReadinessRules,
    /// The school year's deadlines and choices (`shared/rules/year-2024.toml`).
    pub year: giasync_shared::year::YearData,
    /// The requirements and criteria of итоговое сочинение (изложение)
    /// (`shared/rules/essay-2024.toml`, `[node] essay`).
    pub essay: giasync_shared::essay::EssayRules,
    /// The production calendar (`shared/rules/calendar.toml`).
    pub calendar: giasync_shared::workdays::ProductionCalendar,
    /// The region's clock (`[node] utc_offset`).
    pub clock: UtcOffset,
    /// How many months recordings are kept after their exam (`[node] audio_keep_months`).
    pub audio_keep_months: u32,
    /// The oversight sections of the schools whose documents did not change since the last
    /// page load (they depend only on the documents, the rules and the verifier above).
    /// Held from a snapshot on the engine thread until the build elsewhere is done, so two
    /// page loads never build against a cache the other changed in between.
    pub oversight: Arc<tokio::sync::Mutex<giasync_shared::oversight::Cache>>,
}

/// Why the context of a node cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("CA: {0}")]
    Ca(String),
    #[error("rules: {0}")]
    Rules(#[from] giasync_shared::rules::RulesError),
    #[error("readiness checks: {0}")]
    Readiness(#[from] giasync_shared::readiness::ReadinessError),
    #[error(transparent)]
    DataFile(#[from] giasync_shared::datafile::DataFileError),
    #[error(transparent)]
    Tls(#[from] crate::transport::TransportError),
}

impl Context {
    /// A context over `verifier` with this year's rules.
    pub fn new(verifier: CaVerifier, clock: UtcOffset) -> Result<Self, LoadError> {
        Ok(Context {
            verifier,
            rules: Rules::is_2024()?,
            readiness: giasync_shared::readiness::ReadinessRules::year_2024()?,
            year: giasync_shared::year::YearData::year_2024()?,
            essay: giasync_shared::essay::EssayRules::year_2024()?,
            calendar: giasync_shared::workdays::ProductionCalendar::shipped()?,
            clock,
            audio_keep_months: giasync_shared::config::AUDIO_KEEP_MONTHS_MIN,
            oversight: Arc::default(),
        })
    }

    /// What the checks of a sheet's time are judged on: the region's clock, and the days the
    /// year's data gives for scoring.
    #[must_use]
    pub fn signing_time(&self) -> giasync_shared::ingest::SigningTime<'_> {
        giasync_shared::ingest::SigningTime {
            clock: self.clock,
            year: &self.year,
            calendar: &self.calendar,
        }
    }

    /// The CA, revocation list and rules a node of `config` checks data with.
    pub fn load(config: &NodeConfig) -> Result<Self, LoadError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| LoadError::File {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        let region = crate::transport::TlsMaterial::from_config(&config.tls)?
            .identity
            .region;
        let verifier =
            CaVerifier::from_pem(&read(&config.tls.ca)?, &read(&config.tls.crl)?, region)
                .map_err(LoadError::Ca)?;
        let mut context = Context::new(verifier, config.node.clock())?;
        context.audio_keep_months = config.node.audio_keep_months();
        if let Some(path) = &config.node.readiness {
            context.readiness = giasync_shared::readiness::ReadinessRules::load(path)?;
        }
        if let Some(path) = &config.node.year {
            context.year = giasync_shared::year::YearData::load(path)?;
        }
        if let Some(path) = &config.node.essay {
            context.essay = giasync_shared::essay::EssayRules::load(path)?;
        }
        if let Some(path) = &config.node.calendar {
            context.calendar = giasync_shared::workdays::ProductionCalendar::load(path)?;
        }
        Ok(context)
    }
}

impl Context {
    /// What sheets resolve by: the scoring rules, and who may settle a conflict this year.
    #[must_use]
    pub fn resolving(
        &self,
    ) -> (
        &Rules,
        &std::collections::BTreeSet<giasync_shared::settlement::Settler>,
    ) {
        (&self.rules, &self.year.settled_by)
    }

    /// Whether `cert` certifies `person` now: issued by the region's CA, valid at `now_ms`, not
    /// revoked by then. The pages offer sign-in only to people it certifies.
    pub fn certifies(
        &self,
        person: &giasync_shared::identity::PersonIdentity,
        cert: &[u8],
        now_ms: i64,
    ) -> Result<(), String> {
        use giasync_shared::record::SignerDirectory as _;
        let at = Timestamp::from_unix_ms(now_ms).map_err(|e| e.to_string())?;
        self.one_signer(person.id.as_str(), cert)
            .person_key(person.role, person.id, person.org, at)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The directory of one signer: `id` as certified by `cert`, checked against the CA and the
    /// revocation list when a record is verified with it.
    #[must_use]
    pub fn one_signer(&self, id: &str, cert: &[u8]) -> ExpertDirectory {
        self.verifier.experts(&std::collections::BTreeMap::from([(
            id.to_owned(),
            cert.to_vec(),
        )]))
    }
}

/// A signed record as it arrives, and the signer it claims in `field` (only a claim until the
/// record is verified against that signer's certificate).
pub fn statement_claiming(
    bytes: Vec<u8>,
    kind: StatementKind,
    field: &str,
) -> Result<(Statement, String), Error> {
    let statement = Statement::from_bytes(bytes)?;
    let signer = statement.fields_unverified(kind)?.get(field)?.to_owned();
    Ok((statement, signer))
}

/// A person's signed record handed in at a school (an act, an order, a familiarisation): the
/// signer it claims in `field` is checked by `verify` against `cert`; only that signer may hand
/// it in, and it must be for `exam` at `school` (`about` says whose and for what it is).
#[allow(clippy::too_many_arguments)]
pub fn handed_in<T>(
    context: &Context,
    actor: &Actor,
    bytes: Vec<u8>,
    (kind, field): (StatementKind, &str),
    cert: &[u8],
    verify: impl Fn(&Statement, &ExpertDirectory) -> Result<T, StatementError>,
    about: impl Fn(&T) -> (PersonId, ExamId, SchoolCode),
    (exam, school): (ExamId, SchoolCode),
) -> Result<(Statement, T), Error> {
    let (statement, signer) = statement_claiming(bytes, kind, field)?;
    let record =
        verify(&statement, &context.one_signer(&signer, cert)).map_err(Error::RecordRefused)?;
    let (person, for_exam, for_school) = about(&record);
    actor.may_hand_in(person)?;
    if for_exam != exam || for_school != school {
        return Err(Error::RecordForOther {
            school: for_school,
            exam: for_exam,
        });
    }
    Ok((statement, record))
}

/// The school document of `kind` for `exam` on this node, which must be a school's.
pub fn school_doc(engine: &Engine, kind: DocKind, exam: ExamId) -> Result<DocId, Error> {
    let me = engine.identity();
    let (OrgCode::School(school), Some(municipality)) = (me.org, me.municipality) else {
        return Err(Error::NotASchool { node: me });
    };
    Ok(DocId::School {
        kind,
        municipality,
        school,
        exam,
    })
}

/// `Ok` on the РЦОИ's node; else the refusal saying where `duty` is done.
pub fn require_rcoi(engine: &Engine, duty: error::RcoiDuty) -> Result<(), Error> {
    let me = engine.identity();
    match me.org {
        OrgCode::Rcoi(_) => Ok(()),
        _ => Err(Error::NotTheRcoi { node: me, duty }),
    }
}

/// The region's time at `now_ms`.
pub fn timestamp(now_ms: i64) -> Result<Timestamp, Error> {
    Ok(Timestamp::from_unix_ms(now_ms)?)
}

/// The exam commands apply to when none is named: `GIASYNC_EXAM`, or the main date of
/// итоговое собеседование of the current school year.
pub fn default_exam(today: Date) -> Result<ExamId, Error> {
    if let Ok(exam) = std::env::var("GIASYNC_EXAM") {
        return Ok(exam.parse()?);
    }
    let year = if today.month() >= 9 {
        today.year() + 1
    } else {
        today.year()
    };
    giasync_shared::calendar::is_dates(year)
        .map(|[main, _, _]| ExamId::new(ExamKind::Is, main))
        .ok_or(Error::NoExam)
}

/// What the node does by itself after documents changed, before the batch is persisted: a
/// school notes when published results first verify here; the РЦОИ receipts every new sheet in
/// the school's РЦОИ document. Returns whether it wrote.
pub fn react(engine: &mut Engine, context: &Context, changed: &[DocId], now_ms: i64) -> bool {
    let mut wrote = false;
    for doc in changed {
        if doc.kind() == Some(DocKind::Rcoi) {
            wrote |= results::note_delivery(engine, context, *doc, now_ms);
        }
    }
    let protocols: Vec<DocId> = changed
        .iter()
        .filter(|d| d.kind() == Some(DocKind::Protocol))
        .copied()
        .collect();
    wrote |= hub::write_receipts(engine, context, &protocols, now_ms) > 0;
    for doc in &protocols {
        wrote |= recheck::ingest(engine, context, *doc, now_ms) > 0;
    }
    wrote
}
