//! Readiness of an exam point: the checks a technician runs before an exam, as data per exam
//! kind (a per-year file, `shared/rules/readiness-2024.toml`), and the readiness act that signs
//! their outcome (seed 002 §26 for итоговое собеседование; seeds 001 and 004 for the ЕГЭ's
//! technical readiness and rehearsals).
//!
//! The act is a statement signed by the school's technician (`crate::statement`), stored in the
//! school's protocol, so it flows up to the МОУО and the РЦОИ like every record of the school.
//! A hub judges each school's latest act: ready (every check passed), not ready (which failed),
//! or not reported, against the act's deadline ([`ExamReadiness::due`]).

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::Deserialize;

use crate::calendar::{Timestamp, UtcOffset};
use crate::codes::{OrgCode, PersonId, PersonRole, SchoolCode};
use crate::exam::{ExamId, ExamKind};
use crate::record::SignerDirectory;
use crate::statement::{Fields, Statement, StatementError, StatementKind};

/// The format version of readiness files this build reads.
pub const READINESS_FORMAT: i64 = 1;
/// The shipped checks of 2024.
pub const READINESS_2024_TOML: &str = include_str!("../rules/readiness-2024.toml");
/// The longest check id, in bytes.
pub const CHECK_ID_BYTES_MAX: usize = 32;
/// The longest check title, in characters.
pub const CHECK_TITLE_CHARS_MAX: usize = 300;
/// The longest note a technician adds to a check, in characters.
pub const NOTE_CHARS_MAX: usize = 200;
/// The most days before the exam an act may be due.
pub const DAYS_BEFORE_MAX: u8 = 14;
/// The most checks of one exam kind.
pub const CHECKS_MAX: usize = 32;

/// A check the node runs by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCheck {
    /// Its upstream answers.
    Link,
    /// Its clock agrees with its upstream's.
    Clock,
    /// The exam's materials package is held whole.
    Materials,
    /// A test recording is taken in and reads back.
    Recording,
}

impl AutoCheck {
    /// As the file names it.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            AutoCheck::Link => "link",
            AutoCheck::Clock => "clock",
            AutoCheck::Materials => "materials",
            AutoCheck::Recording => "recording",
        }
    }

    fn from_id(id: &str) -> Option<Self> {
        [
            AutoCheck::Link,
            AutoCheck::Clock,
            AutoCheck::Materials,
            AutoCheck::Recording,
        ]
        .into_iter()
        .find(|a| a.id() == id)
    }
}

/// One check of an exam kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub id: String,
    pub title: String,
    /// What the node checks by itself; `None`: the technician confirms it.
    pub auto: Option<AutoCheck>,
}

/// The checks of one exam kind and when the act is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExamReadiness {
    pub kind: ExamKind,
    pub title: String,
    pub days_before: u8,
    pub source: String,
    pub checks: Vec<Check>,
}

impl ExamReadiness {
    /// When the act of `exam` is due: the start of the exam day on the region's clock, less
    /// `days_before - 1` days (1: by the end of the day before).
    pub fn due(&self, exam: ExamId, clock: UtcOffset) -> Result<Timestamp, crate::DomainError> {
        let date = exam
            .date()
            .add_days(1 - i64::from(self.days_before.max(1)))?;
        Timestamp::from_unix_ms(date.day_window_ms(clock).start)
    }

    /// `Ok` when `act` reports every check of this kind exactly once and nothing else.
    pub fn conforms(&self, act: &ReadinessAct) -> Result<(), StatementError> {
        let expected: Vec<&str> = self.checks.iter().map(|c| c.id.as_str()).collect();
        let reported: Vec<&str> = act.checks.iter().map(|c| c.id.as_str()).collect();
        if expected != reported {
            return Err(invalid(format!(
                "the act reports checks {reported:?}; {} has {expected:?}",
                self.kind
            )));
        }
        Ok(())
    }
}

/// A readiness file that does not load. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadinessError {
    #[error("{file}: cannot read the file")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error(
        "{file}: format {format} is not supported (this build reads format {READINESS_FORMAT})"
    )]
    UnsupportedFormat { file: String, format: i64 },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: i64,
    id: String,
    exam: Vec<RawExam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExam {
    kind: String,
    title: String,
    days_before: u8,
    source: String,
    check: Vec<RawCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    id: String,
    title: String,
    auto: Option<String>,
}

/// The year's readiness checks of every exam kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessRules {
    pub id: String,
    exams: BTreeMap<ExamKind, ExamReadiness>,
}

fn valid_check_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= CHECK_ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn one_line(text: &str, max: usize) -> bool {
    let n = text.trim().chars().count();
    n > 0 && n <= max && !text.contains(['\n', '\r'])
}

impl ReadinessRules {
    /// Reads and validates the readiness file at `path`.
    pub fn load(path: &Path) -> Result<Self, ReadinessError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReadinessError::Io {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text, &file)
    }

    /// The shipped checks of 2024.
    pub fn year_2024() -> Result<Self, ReadinessError> {
        Self::parse(READINESS_2024_TOML, "shared/rules/readiness-2024.toml")
    }

    /// Validates a readiness file's `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ReadinessError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ReadinessError::Parse {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        if raw.format != READINESS_FORMAT {
            return Err(ReadinessError::UnsupportedFormat {
                file: file.to_owned(),
                format: raw.format,
            });
        }
        let bad = |message: String| ReadinessError::Invalid {
            file: file.to_owned(),
            message,
        };
        if raw.id.trim().is_empty() {
            return Err(bad("id is empty".into()));
        }
        let mut exams = BTreeMap::new();
        for e in raw.exam {
            let kind: ExamKind = e
                .kind
                .parse()
                .map_err(|err: crate::DomainError| bad(format!("exam kind {:?}: {err}", e.kind)))?;
            if !one_line(&e.title, CHECK_TITLE_CHARS_MAX)
                || !one_line(&e.source, CHECK_TITLE_CHARS_MAX)
            {
                return Err(bad(format!(
                    "{kind}: title and source are one line each, 1..={CHECK_TITLE_CHARS_MAX} characters"
                )));
            }
            if e.days_before == 0 || e.days_before > DAYS_BEFORE_MAX {
                return Err(bad(format!(
                    "{kind}: days_before {} (1..={DAYS_BEFORE_MAX})",
                    e.days_before
                )));
            }
            if e.check.is_empty() || e.check.len() > CHECKS_MAX {
                return Err(bad(format!("{kind}: 1..={CHECKS_MAX} checks")));
            }
            let mut checks = Vec::new();
            for c in e.check {
                if !valid_check_id(&c.id) {
                    return Err(bad(format!(
                        "{kind}: check id {:?}: a-z, 0-9 and -, at most {CHECK_ID_BYTES_MAX}",
                        c.id
                    )));
                }
                if checks.iter().any(|x: &Check| x.id == c.id) {
                    return Err(bad(format!("{kind}: check {} twice", c.id)));
                }
                if !one_line(&c.title, CHECK_TITLE_CHARS_MAX) {
                    return Err(bad(format!(
                        "{kind}: check {}: the title is one line, 1..={CHECK_TITLE_CHARS_MAX} characters",
                        c.id
                    )));
                }
                let auto = match c.auto.as_deref() {
                    None => None,
                    Some(a) => Some(AutoCheck::from_id(a).ok_or_else(|| {
                        bad(format!(
                            "{kind}: check {}: auto {a:?} (link, clock, materials or recording)",
                            c.id
                        ))
                    })?),
                };
                checks.push(Check {
                    id: c.id,
                    title: c.title.trim().to_owned(),
                    auto,
                });
            }
            let exam = ExamReadiness {
                kind,
                title: e.title.trim().to_owned(),
                days_before: e.days_before,
                source: e.source.trim().to_owned(),
                checks,
            };
            if exams.insert(kind, exam).is_some() {
                return Err(bad(format!("exam kind {kind} twice")));
            }
        }
        Ok(ReadinessRules { id: raw.id, exams })
    }

    /// The checks of `kind`, if the year has any.
    #[must_use]
    pub fn of(&self, kind: ExamKind) -> Option<&ExamReadiness> {
        self.exams.get(&kind)
    }

    /// Every exam kind's checks.
    pub fn exams(&self) -> impl Iterator<Item = &ExamReadiness> {
        self.exams.values()
    }
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

/// The outcome of one check in an act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub id: String,
    pub ok: bool,
    /// What the technician or the node noted (may be empty).
    pub note: String,
}

/// A technician's signed readiness act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessAct {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub technician: PersonId,
    pub at: Timestamp,
    pub checks: Vec<CheckOutcome>,
}

impl ReadinessAct {
    /// Whether every check passed.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The ids of the checks that failed.
    #[must_use]
    pub fn failed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.id.clone())
            .collect()
    }

    fn check(&self) -> Result<(), StatementError> {
        if self.checks.is_empty() || self.checks.len() > CHECKS_MAX {
            return Err(invalid(format!("an act reports 1..={CHECKS_MAX} checks")));
        }
        for c in &self.checks {
            if !valid_check_id(&c.id) {
                return Err(invalid(format!("check id {:?}", c.id)));
            }
            if c.note.chars().count() > NOTE_CHARS_MAX || c.note.contains(['\n', '\r']) {
                return Err(invalid(format!(
                    "check {}: a note is one line of at most {NOTE_CHARS_MAX} characters",
                    c.id
                )));
            }
        }
        Ok(())
    }

    /// Signs the act with the technician's key.
    pub fn sign(&self, key: &SigningKey) -> Result<Statement, StatementError> {
        self.check()?;
        let mut fields = Fields::new()
            .with("exam", self.exam)
            .with("school", self.school)
            .with("technician", self.technician)
            .with("at", self.at);
        for c in &self.checks {
            let outcome = if c.ok { "ok" } else { "fail" };
            let line = if c.note.trim().is_empty() {
                format!("{} {outcome}", c.id)
            } else {
                format!("{} {outcome} {}", c.id, c.note.trim())
            };
            fields = fields.with("check", line);
        }
        Statement::sign(StatementKind::Readiness, &fields, key)
    }

    /// Checks a stored act: its fields, and its signature by a technician the directory
    /// certifies for the school at the time it names.
    pub fn verify(
        statement: &Statement,
        directory: &dyn SignerDirectory,
    ) -> Result<ReadinessAct, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Readiness)?;
        let checks = fields
            .all("check")
            .map(|line| {
                let mut parts = line.splitn(3, ' ');
                let (Some(id), Some(outcome)) = (parts.next(), parts.next()) else {
                    return Err(invalid(format!("check {line:?}")));
                };
                let ok = match outcome {
                    "ok" => true,
                    "fail" => false,
                    _ => return Err(invalid(format!("check {line:?}: ok or fail"))),
                };
                Ok(CheckOutcome {
                    id: id.to_owned(),
                    ok,
                    note: parts.next().unwrap_or("").to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let act = ReadinessAct {
            exam: fields.parse("exam")?,
            school: SchoolCode::new(fields.get("school")?).map_err(|e| invalid(e.to_string()))?,
            technician: PersonId::new(fields.get("technician")?)
                .map_err(|e| invalid(e.to_string()))?,
            at: fields.parse("at")?,
            checks,
        };
        act.check()?;
        let key = directory
            .person_key(
                PersonRole::Technician,
                act.technician,
                OrgCode::School(act.school),
                act.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::Readiness, &key)?;
        Ok(act)
    }
}

/// A school's readiness as a hub judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The latest act passed every check.
    Ready { at: Timestamp },
    /// The latest act failed these checks.
    NotReady { at: Timestamp, failed: Vec<String> },
    /// No act that verifies and conforms.
    NotReported,
}

/// The standing of a school from its acts that verified: the latest that conforms to `rules`
/// decides.
#[must_use]
pub fn standing(acts: &[ReadinessAct], rules: &ExamReadiness) -> Standing {
    match acts
        .iter()
        .filter(|a| rules.conforms(a).is_ok())
        .max_by_key(|a| a.at)
    {
        None => Standing::NotReported,
        Some(a) if a.ready() => Standing::Ready { at: a.at },
        Some(a) => Standing::NotReady {
            at: a.at,
            failed: a.failed(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;
    use crate::record::FixedDirectory;
    use crate::record::fixtures::{at, key, school};

    fn rules() -> ReadinessRules {
        ReadinessRules::year_2024().unwrap()
    }

    fn act(ok: &[bool]) -> ReadinessAct {
        let is = rules();
        let is = is.of(ExamKind::Is).unwrap();
        ReadinessAct {
            exam: "is-2024-02-14".parse().unwrap(),
            school: school(),
            technician: PersonId::new("tech-1").unwrap(),
            at: at(5),
            checks: is
                .checks
                .iter()
                .zip(ok.iter().chain(std::iter::repeat(&true)))
                .map(|(c, ok)| CheckOutcome {
                    id: c.id.clone(),
                    ok: *ok,
                    note: if *ok {
                        String::new()
                    } else {
                        "нет бумаги".into()
                    },
                })
                .collect(),
        }
    }

    fn directory(role: PersonRole) -> FixedDirectory {
        let mut d = FixedDirectory::default();
        d.add_person(
            PersonId::new("tech-1").unwrap(),
            role,
            OrgCode::School(school()),
            key(9).verifying_key(),
        );
        d
    }

    #[test]
    fn the_shipped_file_has_the_orders_checks() {
        let r = rules();
        let is = r.of(ExamKind::Is).unwrap();
        // Seed 002 §26, written out: printer and paper, internet, a test recording; and the
        // materials of §30.
        let ids: Vec<&str> = is.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "link",
                "clock",
                "materials",
                "recording",
                "internet",
                "printer"
            ]
        );
        assert_eq!(is.days_before, 1);
        let ege = r.of(ExamKind::Ege).unwrap();
        for id in ["printing", "scanning", "video", "materials"] {
            assert!(ege.checks.iter().any(|c| c.id == id), "{id}");
        }
        assert!(r.of(ExamKind::Oge).is_none());
    }

    #[test]
    fn the_act_is_due_by_the_end_of_the_day_before() {
        let r = rules();
        let is = r.of(ExamKind::Is).unwrap();
        let kuzbass = UtcOffset::from_minutes(7 * 60).unwrap();
        // 14 Feb 00:00 at UTC+7 is 13 Feb 17:00 UTC, written out.
        assert_eq!(
            is.due("is-2024-02-14".parse().unwrap(), kuzbass).unwrap(),
            "2024-02-13T17:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn bad_files_are_refused_naming_the_problem() {
        let good = READINESS_2024_TOML;
        for (bad, says) in [
            (good.replace("format = 1", "format = 2"), "format 2"),
            (good.replace("kind = \"ege\"", "kind = \"is\""), "twice"),
            (
                good.replace("id = \"printer\"", "id = \"link\""),
                "check link twice",
            ),
            (
                good.replace("auto = \"clock\"", "auto = \"sundial\""),
                "sundial",
            ),
            (
                good.replace("days_before = 1", "days_before = 0"),
                "days_before 0",
            ),
            (
                good.replace("id = \"printer\"", "id = \"Принтер\""),
                "check id",
            ),
            (
                good.replace("id = \"printer\"", "id = \"printer\"\ncolour = 1"),
                "colour",
            ),
        ] {
            let e = ReadinessRules::parse(&bad, "x.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says) && e.starts_with("x.toml"), "{says}: {e}");
        }
    }

    #[test]
    fn a_technicians_act_verifies_and_nothing_else_does() {
        let a = act(&[true, true, true, true, true, false]);
        let signed = a.sign(&key(9)).unwrap();
        let back = ReadinessAct::verify(&signed, &directory(PersonRole::Technician)).unwrap();
        assert_eq!(back, a);
        assert!(!back.ready());
        assert_eq!(back.failed(), ["printer"]);
        // Another key, or a person certified in another role: refused.
        let forged = a.sign(&key(8)).unwrap();
        assert!(ReadinessAct::verify(&forged, &directory(PersonRole::Technician)).is_err());
        assert!(ReadinessAct::verify(&signed, &directory(PersonRole::Organiser)).is_err());
        // The text is what was signed: a failed check turned ok fails the signature.
        let text =
            String::from_utf8_lossy(signed.as_bytes()).replace("printer fail", "printer ok  ");
        let changed = Statement::from_bytes(text.into_bytes()).unwrap();
        assert!(ReadinessAct::verify(&changed, &directory(PersonRole::Technician)).is_err());
    }

    #[test]
    fn the_latest_conforming_act_decides() {
        let r = rules();
        let is = r.of(ExamKind::Is).unwrap();
        assert_eq!(standing(&[], is), Standing::NotReported);
        let failed = act(&[true, true, false]);
        let mut fixed = act(&[]);
        fixed.at = at(30);
        assert_eq!(
            standing(std::slice::from_ref(&failed), is),
            Standing::NotReady {
                at: at(5),
                failed: vec!["materials".into()]
            }
        );
        assert_eq!(
            standing(&[fixed.clone(), failed.clone()], is),
            Standing::Ready { at: at(30) }
        );
        // An act that leaves a check out does not count, however late.
        let mut partial = act(&[]);
        partial.at = at(60);
        partial.checks.pop();
        assert_eq!(
            standing(&[failed, partial], is),
            Standing::NotReady {
                at: at(5),
                failed: vec!["materials".into()]
            }
        );
    }
}
