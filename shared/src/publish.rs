//! Results down and familiarisation back up.
//!
//! When the РЦОИ closes an exam's processing it signs each school's results — participant,
//! attempt, total, зачёт/незачёт — with its node key into that school's РЦОИ document, a
//! document only the РЦОИ may write (`published/N`, the РЦОИ certificate beside it as
//! `rcoi_cert/N`). Each publication has an edition number, signed with it; a new one never
//! overwrites an old one, and a reader takes the newest edition that verifies ([`latest`]), so
//! nobody can bring an older publication back in place of a newer one. The document flows down
//! through the МОУО hub. A school's node shows nothing until the signature verifies under a
//! certificate the region's CA issued to the РЦОИ; anything else signed is refused.
//!
//! The school's organiser then records each participant's familiarisation (seed 002 §74: under
//! signature, within 5 days of the exam) as a statement signed with their person key under
//! `ack/PARTICIPANT`, which flows back up.

use ed25519_dalek::VerifyingKey;

use crate::calendar::Timestamp;
use crate::codes::{NodeRole, OrgCode, ParticipantId, PersonId, PersonRole, SchoolCode};
use crate::content::StoredPublication;
use crate::exam::ExamId;
use crate::record::{Attempt, SignerDirectory};
use crate::resolve::Verdict;
use crate::rules::Outcome;
use crate::settlement::SettledProtocol;
use crate::statement::{Fields, Statement, StatementError, StatementKind};
use crate::sync::CertVerifier;

/// One participant's published result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultRow {
    pub participant: ParticipantId,
    pub attempt: u8,
    pub total: u16,
    pub outcome: Outcome,
    /// For итоговое сочинение (изложение): «зачёт» (true) or «незачёт» per requirement and
    /// criterion, ascending by id; none for an exam scored in points. Signed after the row's
    /// four fields as `ID+` or `ID-` each.
    pub marks: Vec<(String, bool)>,
}

/// A school's results for an exam, as the РЦОИ publishes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub exam: ExamId,
    pub school: SchoolCode,
    /// 1 for the first publication of a school's results for an exam, one more for each after.
    /// Publications of layout 1 carry none and read as 1.
    pub edition: u32,
    pub at: Timestamp,
    /// Ascending by participant and attempt.
    pub rows: Vec<ResultRow>,
}

/// Why results cannot be published or are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error("{0} open conflicts: settle them before publishing")]
    OpenConflicts(usize),
    #[error("the results are signed by {0}, not by the region's РЦОИ")]
    NotRcoi(String),
    #[error("the signer's certificate is refused: {0}")]
    Certificate(String),
    #[error("the results are for {found}, not {expected}")]
    WrongDocument { expected: String, found: String },
    #[error("the publication is stored as edition {stored} but signed as edition {signed}")]
    WrongEdition { stored: u32, signed: u32 },
    #[error("no results are published")]
    NonePublished,
    #[error("the РЦОИ holds no processed results of the school (giasync-hub essay import)")]
    NothingProcessed,
    #[error(transparent)]
    Statement(#[from] StatementError),
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

impl Published {
    /// Edition `edition` of the results of a protocol whose conflicts are all settled.
    pub fn from_protocol(
        settled: &SettledProtocol,
        exam: ExamId,
        school: SchoolCode,
        edition: u32,
        at: Timestamp,
    ) -> Result<Self, PublishError> {
        let open = settled.resolution.conflicts().count();
        if open > 0 {
            return Err(PublishError::OpenConflicts(open));
        }
        let rows = settled
            .attempts(school, exam)
            .into_iter()
            .filter_map(|subject| {
                // A re-check's result counts over the sheets' (`crate::recheck`).
                let (total, outcome) = settled.counted(subject)?;
                Some(ResultRow {
                    participant: subject.participant,
                    attempt: subject.attempt.get(),
                    total,
                    outcome,
                    marks: Vec::new(),
                })
            })
            .collect();
        debug_assert!(
            settled
                .resolution
                .subjects
                .values()
                .all(|r| !matches!(r.verdict, Verdict::Conflict(_)))
        );
        Ok(Published {
            exam,
            school,
            edition,
            at,
            rows,
        })
    }

    /// Edition `edition` of a school's results of итоговое сочинение (изложение), from the
    /// РЦОИ's processing (`crate::essay::stored`): one row per participant, its total the number
    /// of requirements and criteria passed.
    #[must_use]
    pub fn from_essay(
        results: &std::collections::BTreeMap<ParticipantId, crate::essay::stored::StoredEssay>,
        exam: ExamId,
        school: SchoolCode,
        edition: u32,
        at: Timestamp,
    ) -> Self {
        let rows = results
            .iter()
            .map(|(participant, r)| ResultRow {
                participant: *participant,
                attempt: 1,
                total: u16::try_from(r.marks.values().filter(|m| **m).count()).unwrap_or(u16::MAX),
                outcome: r.outcome,
                marks: r.marks.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            })
            .collect();
        Published {
            exam,
            school,
            edition,
            at,
            rows,
        }
    }

    /// The fields signed.
    #[must_use]
    pub fn fields(&self) -> Fields {
        let mut fields = Fields::new()
            .with("exam", self.exam)
            .with("school", self.school)
            .with("edition", self.edition)
            .with("at", self.at);
        for r in &self.rows {
            fields = fields.with(
                "row",
                format!(
                    "{} {} {} {}{}",
                    r.participant,
                    r.attempt,
                    r.total,
                    r.outcome.id(),
                    r.marks
                        .iter()
                        .map(|(id, yes)| format!(" {id}{}", if *yes { '+' } else { '-' }))
                        .collect::<String>()
                ),
            );
        }
        fields
    }

    /// Checks published results: signed under `rcoi_cert`, a certificate the region's CA issued
    /// to the РЦОИ (by `verifier`), and about `exam` at `school`.
    pub fn verify(
        statement: &Statement,
        rcoi_cert: &[u8],
        verifier: &dyn CertVerifier,
        exam: ExamId,
        school: SchoolCode,
    ) -> Result<Published, PublishError> {
        let (identity, key) = verifier
            .node_key(rcoi_cert)
            .map_err(PublishError::Certificate)?;
        if identity.org.role() != NodeRole::Rcoi {
            return Err(PublishError::NotRcoi(identity.to_string()));
        }
        let key =
            VerifyingKey::from_bytes(&key).map_err(|e| PublishError::Certificate(e.to_string()))?;
        let fields = statement.verify(StatementKind::Results, &key)?;
        let published = Published::parse(&fields)?;
        if published.exam != exam || published.school != school {
            return Err(PublishError::WrongDocument {
                expected: format!("{school} {exam}"),
                found: format!("{} {}", published.school, published.exam),
            });
        }
        Ok(published)
    }

    fn parse(fields: &Fields) -> Result<Published, StatementError> {
        let rows = fields
            .all("row")
            .map(|row| {
                let parts: Vec<&str> = row.split(' ').collect();
                let [participant, attempt, total, outcome, ref marks @ ..] = parts[..] else {
                    return Err(invalid(format!("row {row:?}")));
                };
                let marks = marks
                    .iter()
                    .map(|m| {
                        let (id, yes) = match (m.strip_suffix('+'), m.strip_suffix('-')) {
                            (Some(id), _) => (id, true),
                            (_, Some(id)) => (id, false),
                            _ => return Err(invalid(format!("mark {m:?} in row {row:?}"))),
                        };
                        if id.is_empty() || id.contains(['+', '-']) {
                            return Err(invalid(format!("mark {m:?} in row {row:?}")));
                        }
                        Ok((id.to_owned(), yes))
                    })
                    .collect::<Result<Vec<(String, bool)>, _>>()?;
                // Marks ascending and each once, and the total the number passed: one reading.
                if !marks.windows(2).all(|w| w[0].0 < w[1].0) {
                    return Err(invalid(format!("marks not ascending in row {row:?}")));
                }
                if !marks.is_empty()
                    && total.parse::<usize>().ok() != Some(marks.iter().filter(|m| m.1).count())
                {
                    return Err(invalid(format!(
                        "row {row:?}: the total is not the number of marks passed"
                    )));
                }
                Ok(ResultRow {
                    participant: ParticipantId::new(participant)
                        .map_err(|e| invalid(e.to_string()))?,
                    attempt: Attempt::new(
                        attempt
                            .parse()
                            .map_err(|_| invalid(format!("attempt {attempt:?}")))?,
                    )
                    .map_err(|e| invalid(e.to_string()))?
                    .get(),
                    total: total
                        .parse()
                        .map_err(|_| invalid(format!("total {total:?}")))?,
                    outcome: outcome
                        .parse()
                        .map_err(|e: crate::DomainError| invalid(e.to_string()))?,
                    marks,
                })
            })
            .collect::<Result<_, _>>()?;
        let edition = match fields.get("edition") {
            Ok(_) => fields.parse("edition")?,
            Err(_) => 1,
        };
        Ok(Published {
            exam: fields.parse("exam")?,
            school: SchoolCode::new(fields.get("school")?).map_err(|e| invalid(e.to_string()))?,
            edition,
            at: fields.parse("at")?,
            rows,
        })
    }
}

/// The newest publication that verifies (by [`Published::verify`], and signed as the edition it
/// is stored under). An edition that does not verify is passed over for an older one that does;
/// with none, the error of the newest.
pub fn latest(
    stored: &[StoredPublication],
    verifier: &dyn CertVerifier,
    exam: ExamId,
    school: SchoolCode,
) -> Result<Published, PublishError> {
    let mut newest_error = None;
    let mut by_edition: Vec<&StoredPublication> = stored.iter().collect();
    by_edition.sort_by_key(|p| std::cmp::Reverse(p.edition));
    for p in by_edition {
        let checked = Published::verify(&p.statement, &p.rcoi_cert, verifier, exam, school)
            .and_then(|published| {
                if published.edition == p.edition {
                    Ok(published)
                } else {
                    Err(PublishError::WrongEdition {
                        stored: p.edition,
                        signed: published.edition,
                    })
                }
            });
        match checked {
            Ok(published) => return Ok(published),
            Err(e) => {
                newest_error.get_or_insert(e);
            }
        }
    }
    Err(newest_error.unwrap_or(PublishError::NonePublished))
}

/// Every publication of `stored` that verifies, by edition ([`Published::verify`], its edition
/// as stored).
#[must_use]
pub fn all_verified(
    stored: &[StoredPublication],
    verifier: &dyn CertVerifier,
    exam: ExamId,
    school: SchoolCode,
) -> std::collections::BTreeMap<u32, Published> {
    stored
        .iter()
        .filter_map(|p| {
            let published = Published::verify(&p.statement, &p.rcoi_cert, verifier, exam, school)
                .ok()
                .filter(|published| published.edition == p.edition)?;
            Some((p.edition, published))
        })
        .collect()
}

/// Since when each participant's rows of the newest of `editions` have stood: the first edition,
/// and its time, from which every edition up to the newest gives the participant the same rows
/// (a re-check's new edition changes a participant's row; the others' stand since earlier).
#[must_use]
pub fn rows_since(
    editions: &std::collections::BTreeMap<u32, Published>,
) -> std::collections::BTreeMap<ParticipantId, (u32, Timestamp)> {
    // Each edition's rows by participant, read once.
    fn by_participant(p: &Published) -> std::collections::BTreeMap<ParticipantId, Vec<&ResultRow>> {
        let mut rows: std::collections::BTreeMap<ParticipantId, Vec<&ResultRow>> =
            std::collections::BTreeMap::new();
        for r in &p.rows {
            rows.entry(r.participant).or_default().push(r);
        }
        rows
    }
    let Some(newest) = editions.values().next_back() else {
        return std::collections::BTreeMap::new();
    };
    let now = by_participant(newest);
    let mut since: std::collections::BTreeMap<ParticipantId, (u32, Timestamp)> = now
        .keys()
        .map(|p| (*p, (newest.edition, newest.at)))
        .collect();
    // Going back, a participant's rows stand since an edition while each older one gives the
    // same; the first that differs ends their walk.
    let mut standing: std::collections::BTreeSet<ParticipantId> = now.keys().copied().collect();
    for older in editions.values().rev().skip(1) {
        let then = by_participant(older);
        standing.retain(|p| then.get(p) == now.get(p));
        for p in &standing {
            since.insert(*p, (older.edition, older.at));
        }
        if standing.is_empty() {
            break;
        }
    }
    since
}

/// An organiser's record that a participant has seen their result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Familiarisation {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub organiser: PersonId,
    pub at: Timestamp,
    /// The edition of the results the participant was shown ([`Published::edition`]). Records
    /// made before it was signed carry none, and are placed by their time ([`Self::informs_of`]).
    pub edition: Option<u32>,
}

impl Familiarisation {
    pub fn sign(&self, key: &ed25519_dalek::SigningKey) -> Result<Statement, StatementError> {
        let mut fields = Fields::new()
            .with("exam", self.exam)
            .with("school", self.school)
            .with("participant", self.participant)
            .with("organiser", self.organiser)
            .with("at", self.at);
        if let Some(edition) = self.edition {
            fields = fields.with("edition", edition);
        }
        Statement::sign(StatementKind::Familiarisation, &fields, key)
    }

    /// Whether the record informs its participant of rows that have stood since `since`
    /// ([`rows_since`]) up to the edition `newest`: it names one of those editions, or, naming
    /// none, was made no earlier than the first was signed. (An edition beyond the newest is
    /// none the participant was shown.)
    #[must_use]
    pub fn informs_of(&self, (edition, at): (u32, Timestamp), newest: u32) -> bool {
        match self.edition {
            Some(shown) => (edition..=newest).contains(&shown),
            None => self.at >= at,
        }
    }

    /// Checks the record: signed by an organiser the directory certifies for the school.
    pub fn verify(
        statement: &Statement,
        directory: &dyn SignerDirectory,
    ) -> Result<Familiarisation, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Familiarisation)?;
        let f = Familiarisation {
            exam: fields.parse("exam")?,
            school: SchoolCode::new(fields.get("school")?).map_err(|e| invalid(e.to_string()))?,
            participant: ParticipantId::new(fields.get("participant")?)
                .map_err(|e| invalid(e.to_string()))?,
            organiser: PersonId::new(fields.get("organiser")?)
                .map_err(|e| invalid(e.to_string()))?,
            at: fields.parse("at")?,
            edition: match fields.all("edition").next() {
                Some(_) => Some(fields.parse("edition")?),
                None => None,
            },
        };
        let key = directory
            .person_key(
                PersonRole::Organiser,
                f.organiser,
                OrgCode::School(f.school),
                f.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify(StatementKind::Familiarisation, &key)?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::RegionCode;
    use crate::identity::NodeIdentity;
    use crate::record::fixtures::*;
    use crate::sync::FixedCa;
    use ed25519_dalek::SigningKey;

    fn published() -> Published {
        Published {
            exam: subject("p1").exam,
            school: school(),
            edition: 1,
            at: at(600),
            rows: vec![ResultRow {
                participant: ParticipantId::new("p1").unwrap(),
                attempt: 1,
                total: 14,
                outcome: Outcome::Pass,
                marks: Vec::new(),
            }],
        }
    }

    fn node(role: NodeRole, code: &str) -> NodeIdentity {
        let org = OrgCode::parse(role, code).unwrap();
        NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org,
            municipality: None,
        }
    }

    /// An essay's results carry each requirement's and criterion's mark, signed with the row;
    /// an ИС row's text is what it was before marks existed.
    #[test]
    fn essay_results_carry_their_marks_under_the_signature() {
        use crate::essay::stored::StoredEssay;
        let ca = FixedCa::default();
        let rcoi_key = SigningKey::from_bytes(&[50; 32]);
        let rcoi_cert = ca.issue(node(NodeRole::Rcoi, "42"), &rcoi_key);
        let marks = [("Т1", true), ("Т2", true), ("К1", true), ("К2", false)];
        let results = std::collections::BTreeMap::from([(
            ParticipantId::new("e1").unwrap(),
            StoredEssay {
                form: crate::essay::EssayForm::Essay,
                marks: marks.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                outcome: Outcome::Fail,
            },
        )]);
        let exam: ExamId = "essay-2024-12-04".parse().unwrap();
        let p = Published::from_essay(&results, exam, school(), 1, at(600));
        assert_eq!(p.rows[0].total, 3);
        assert!(
            p.fields()
                .all("row")
                .any(|r| r == "e1 1 3 fail К1+ К2- Т1+ Т2+"),
            "{:?}",
            p.fields()
        );
        let statement = Statement::sign(StatementKind::Results, &p.fields(), &rcoi_key).unwrap();
        assert_eq!(
            Published::verify(&statement, &rcoi_cert, &ca, exam, school()).unwrap(),
            p
        );
        assert!(published().fields().all("row").any(|r| r == "p1 1 14 pass"));
        // Marks read one way only: ascending, each once, the total the number passed.
        for row in [
            "e1 1 1 fail К2- К1+",
            "e1 1 1 fail К1+ К1+",
            "e1 1 2 fail К1+ К2-",
            "e1 1 1 fail К1++",
            "e1 1 0 fail -",
        ] {
            let fields = Fields::new()
                .with("exam", exam)
                .with("school", school())
                .with("edition", 1)
                .with("at", at(600))
                .with("row", row);
            let statement = Statement::sign(StatementKind::Results, &fields, &rcoi_key).unwrap();
            assert!(
                Published::verify(&statement, &rcoi_cert, &ca, exam, school()).is_err(),
                "{row}"
            );
        }
    }

    #[test]
    fn results_signed_by_the_rcoi_verify_and_by_anyone_else_are_refused() {
        let ca = FixedCa::default();
        let rcoi_key = SigningKey::from_bytes(&[50; 32]);
        let rcoi_cert = ca.issue(node(NodeRole::Rcoi, "42"), &rcoi_key);
        let p = published();
        let statement = Statement::sign(StatementKind::Results, &p.fields(), &rcoi_key).unwrap();
        assert_eq!(
            Published::verify(&statement, &rcoi_cert, &ca, p.exam, p.school).unwrap(),
            p
        );
        // A МОУО hub signs "results" with its own certified key: refused.
        let hub_key = SigningKey::from_bytes(&[51; 32]);
        let hub_cert = ca.issue(node(NodeRole::Municipality, "4201"), &hub_key);
        let forged = Statement::sign(StatementKind::Results, &p.fields(), &hub_key).unwrap();
        assert!(matches!(
            Published::verify(&forged, &hub_cert, &ca, p.exam, p.school),
            Err(PublishError::NotRcoi(_))
        ));
        // The РЦОИ's certificate beside a signature by another key: refused.
        assert!(matches!(
            Published::verify(&forged, &rcoi_cert, &ca, p.exam, p.school),
            Err(PublishError::Statement(StatementError::BadSignature))
        ));
        // A certificate the CA never issued: refused.
        let stranger = FixedCa::default().issue(node(NodeRole::Rcoi, "42"), &hub_key);
        assert!(matches!(
            Published::verify(&forged, &stranger, &ca, p.exam, p.school),
            Err(PublishError::Certificate(_))
        ));
        // Genuine results of another school are not this school's.
        let other = SchoolCode::new("420102").unwrap();
        assert!(matches!(
            Published::verify(&statement, &rcoi_cert, &ca, p.exam, other),
            Err(PublishError::WrongDocument { .. })
        ));
    }

    #[test]
    fn the_newest_edition_that_verifies_counts_and_an_older_one_never_replaces_it() {
        let ca = FixedCa::default();
        let rcoi_key = SigningKey::from_bytes(&[50; 32]);
        let rcoi_cert = ca.issue(node(NodeRole::Rcoi, "42"), &rcoi_key);
        let edition = |n: u32, total: u16| {
            let mut p = published();
            p.edition = n;
            p.rows[0].total = total;
            p
        };
        let stored = |key: u32, p: &Published| StoredPublication {
            edition: key,
            statement: Statement::sign(StatementKind::Results, &p.fields(), &rcoi_key).unwrap(),
            rcoi_cert: rcoi_cert.clone(),
        };
        let (first, second) = (edition(1, 14), edition(2, 9));
        let (exam, school) = (first.exam, first.school);
        // In any order of storage, edition 2 is what counts.
        for held in [
            vec![stored(1, &first), stored(2, &second)],
            vec![stored(2, &second), stored(1, &first)],
        ] {
            assert_eq!(latest(&held, &ca, exam, school).unwrap(), second);
        }
        // Edition 1 stored again under a higher number is refused: the newest genuine one counts.
        let replayed = vec![stored(1, &first), stored(2, &second), stored(3, &first)];
        assert_eq!(latest(&replayed, &ca, exam, school).unwrap(), second);
        assert!(matches!(
            latest(&replayed[2..], &ca, exam, school),
            Err(PublishError::WrongEdition {
                stored: 3,
                signed: 1
            })
        ));
        // A newer edition signed by someone else does not hide the genuine one.
        let hub_key = SigningKey::from_bytes(&[51; 32]);
        let mut forged = stored(4, &edition(4, 0));
        forged.statement =
            Statement::sign(StatementKind::Results, &edition(4, 0).fields(), &hub_key).unwrap();
        let held = vec![stored(2, &second), forged];
        assert_eq!(latest(&held, &ca, exam, school).unwrap(), second);
        assert!(matches!(
            latest(&[], &ca, exam, school),
            Err(PublishError::NonePublished)
        ));
    }

    #[test]
    fn a_publication_of_layout_1_reads_as_edition_1() {
        let rcoi_key = SigningKey::from_bytes(&[50; 32]);
        let p = published();
        // Layout 1 signed the same fields without the edition.
        let mut fields = Fields::new()
            .with("exam", p.exam)
            .with("school", p.school)
            .with("at", p.at);
        fields = fields.with("row", "p1 1 14 pass");
        let statement = Statement::sign(StatementKind::Results, &fields, &rcoi_key).unwrap();
        let parsed = Published::parse(
            &statement
                .verify(StatementKind::Results, &rcoi_key.verifying_key())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(parsed, p);
    }

    /// A re-check's new edition changes one participant's row: that row stands since the new
    /// edition, the others since the first; a record informs of a row when it names an edition
    /// no earlier than the row's, or, naming none, was made no earlier than that edition.
    #[test]
    fn each_row_stands_since_the_edition_that_last_changed_it() {
        let row = |p: &str, total: u16, outcome: Outcome| ResultRow {
            participant: ParticipantId::new(p).unwrap(),
            attempt: 1,
            total,
            outcome,
            marks: Vec::new(),
        };
        let edition = |edition: u32, minute: i64, rows: Vec<ResultRow>| Published {
            edition,
            at: at(minute),
            rows,
            ..published()
        };
        let editions = std::collections::BTreeMap::from([
            (
                1,
                edition(
                    1,
                    600,
                    vec![row("p1", 8, Outcome::Fail), row("p2", 14, Outcome::Pass)],
                ),
            ),
            (
                2,
                edition(
                    2,
                    700,
                    vec![row("p1", 12, Outcome::Pass), row("p2", 14, Outcome::Pass)],
                ),
            ),
            (
                3,
                edition(
                    3,
                    800,
                    vec![row("p1", 12, Outcome::Pass), row("p2", 14, Outcome::Pass)],
                ),
            ),
        ]);
        let since = rows_since(&editions);
        let p = |id: &str| ParticipantId::new(id).unwrap();
        assert_eq!(
            since,
            std::collections::BTreeMap::from([(p("p1"), (2, at(700))), (p("p2"), (1, at(600)))])
        );
        let record = |edition: Option<u32>, minute: i64| Familiarisation {
            exam: subject("p1").exam,
            school: school(),
            participant: p("p1"),
            organiser: PersonId::new("org-1").unwrap(),
            at: at(minute),
            edition,
        };
        assert!(!record(Some(1), 900).informs_of(since[&p("p1")], 3));
        assert!(record(Some(2), 650).informs_of(since[&p("p1")], 3));
        assert!(record(Some(1), 650).informs_of(since[&p("p2")], 3));
        assert!(!record(None, 650).informs_of(since[&p("p1")], 3));
        assert!(record(None, 700).informs_of(since[&p("p1")], 3));
        // An edition beyond the newest was shown to nobody.
        assert!(!record(Some(4), 900).informs_of(since[&p("p1")], 3));
        assert!(rows_since(&std::collections::BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_familiarisation_verifies_only_under_the_schools_organiser() {
        let mut d = directory();
        let organiser_key = SigningKey::from_bytes(&[60; 32]);
        let organiser = PersonId::new("org-420101").unwrap();
        d.add_person(
            organiser,
            PersonRole::Organiser,
            OrgCode::School(school()),
            organiser_key.verifying_key(),
        );
        let f = Familiarisation {
            exam: subject("p1").exam,
            school: school(),
            participant: ParticipantId::new("p1").unwrap(),
            organiser,
            at: at(900),
            edition: Some(2),
        };
        let statement = f.sign(&organiser_key).unwrap();
        assert_eq!(Familiarisation::verify(&statement, &d).unwrap(), f);
        // A record made before the edition was signed reads back without one.
        let older = Familiarisation {
            edition: None,
            ..f.clone()
        };
        let statement = older.sign(&organiser_key).unwrap();
        assert_eq!(Familiarisation::verify(&statement, &d).unwrap(), older);
        let by_expert = f.sign(&key(1)).unwrap();
        assert!(Familiarisation::verify(&by_expert, &d).is_err());
    }
}
