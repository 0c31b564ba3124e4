//! Readiness acts (`giasync_shared::readiness`, seed 002 §26): the technician signs the outcome
//! of the year's checks for the exam kind into the school's protocol ([`sign`]); every node that
//! holds the school's documents judges its standing against the act's deadline ([`standings`]):
//! the school itself on the technician's page, the МОУО and the РЦОИ for all their schools.

use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::{PersonId, SchoolCode};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::readiness::{ReadinessAct, Standing, standing};
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Actor, Context, Error, handed_in, school_doc, timestamp};

/// How far from the node's clock an act's time may be when it is handed in: 10 minutes.
pub const ACT_SKEW_MS_MAX: i64 = 10 * 60_000;

/// A readiness act stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessSigned {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub technician: PersonId,
    pub ready: bool,
    /// The checks that failed.
    pub failed: Vec<String>,
}

/// What the node found of one check it runs by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub ok: bool,
    pub note: String,
}

/// One check of the exam kind, for the pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLine {
    pub id: String,
    pub title: String,
    /// What the node checks by itself (`link`, `clock`, `materials`, `recording`), if anything.
    pub auto: Option<String>,
}

/// A school's readiness as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolReadiness {
    pub school: SchoolCode,
    /// `ready`, `not-ready` or `not-reported`.
    pub standing: String,
    /// When the deciding act was signed.
    pub at: Option<Timestamp>,
    pub failed: Vec<String>,
    /// Not ready, or not reported, and the deadline has passed.
    pub overdue: bool,
    /// The deciding act was signed after the deadline.
    pub late: bool,
}

/// The readiness of an exam's schools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessView {
    pub exam: ExamId,
    pub title: String,
    pub source: String,
    pub due: Timestamp,
    pub checks: Vec<CheckLine>,
    pub schools: Vec<SchoolReadiness>,
    /// The region's clock, on which pages show the times above.
    #[serde(default)]
    pub clock: UtcOffset,
}

fn rules_of(
    context: &Context,
    exam: ExamId,
) -> Result<&giasync_shared::readiness::ExamReadiness, Error> {
    context
        .readiness
        .of(exam.kind())
        .ok_or(Error::NoReadinessChecks { kind: exam.kind() })
}

/// At a school: stores the technician's signed readiness act, checked: signed by a technician of
/// this school certified by the region's CA, handed in by them, for this exam, reporting every
/// check of the exam kind and nothing else.
pub fn sign(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    exam: ExamId,
    statement: Vec<u8>,
    technician_cert: &[u8],
) -> Result<ReadinessSigned, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let school = protocol.school().ok_or(Error::NoExam)?;
    let (statement, act) = handed_in(
        context,
        actor,
        statement,
        (StatementKind::Readiness, "technician"),
        technician_cert,
        |s, d| ReadinessAct::verify(s, d),
        |a: &ReadinessAct| (a.technician, a.exam, a.school),
        (exam, school),
    )?;
    rules_of(context, exam)?
        .conforms(&act)
        .map_err(Error::RecordRefused)?;
    // Signed as it is handed in: a later date would stand above every act after it, an
    // earlier one would dodge a revocation since.
    let now = timestamp(now_ms)?;
    if (act.at.unix_ms() - now.unix_ms()).abs() > ACT_SKEW_MS_MAX {
        return Err(Error::ReadinessOutOfTime { at: act.at });
    }
    engine.change(now_ms, protocol, |tx| {
        content::put_readiness(tx, &statement, act.technician, technician_cert)
    })?;
    Ok(ReadinessSigned {
        exam,
        school,
        technician: act.technician,
        ready: act.ready(),
        failed: act.failed(),
    })
}

/// Every school of `exam` this node holds, with its readiness against the deadline.
pub fn standings(
    engine: &Engine,
    context: &Context,
    exam: ExamId,
    now_ms: i64,
) -> Result<ReadinessView, Error> {
    let rules = rules_of(context, exam)?;
    let due = rules.due(exam, context.clock)?;
    let now = timestamp(now_ms)?;
    let schools = super::scoring::schools_of(engine, exam)
        .into_iter()
        .filter_map(|doc| {
            let school = doc.school()?;
            let acts: Vec<ReadinessAct> = engine
                .doc(&doc)
                .map(|protocol| {
                    let directory = context
                        .verifier
                        .experts(&content::technician_certs(protocol));
                    content::readiness_acts(protocol)
                        .iter()
                        .filter_map(|s| ReadinessAct::verify(s, &directory).ok())
                        .filter(|a| a.exam == exam && a.school == school)
                        .collect()
                })
                .unwrap_or_default();
            let (name, at, failed) = match standing(&acts, rules) {
                Standing::Ready { at } => ("ready", Some(at), Vec::new()),
                Standing::NotReady { at, failed } => ("not-ready", Some(at), failed),
                Standing::NotReported => ("not-reported", None, Vec::new()),
            };
            Some(SchoolReadiness {
                school,
                standing: name.to_owned(),
                at,
                failed,
                overdue: name != "ready" && now >= due,
                late: at.is_some_and(|at| at > due),
            })
        })
        .collect();
    Ok(ReadinessView {
        exam,
        clock: context.clock,
        title: rules.title.clone(),
        source: rules.source.clone(),
        due,
        checks: rules
            .checks
            .iter()
            .map(|c| CheckLine {
                id: c.id.clone(),
                title: c.title.clone(),
                auto: c.auto.map(|a| a.id().to_owned()),
            })
            .collect(),
        schools,
    })
}
