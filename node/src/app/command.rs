//! Every command as data, its typed answer, and the dispatch. The admin socket carries these as
//! JSON (the wire keeps the field names and string forms the socket always had; values are
//! checked by the domain types as they are read) and the pages hand them to the engine thread.

use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{
    MunicipalityCode, ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode,
};
use giasync_shared::exam::ExamId;
use giasync_shared::participant::{Category, FullName, IdentityDocument, Participant, SchoolClass};
use giasync_shared::room::Attendance;
use giasync_shared::sync::Engine;
use serde::{Deserialize, Serialize};

use super::{
    Actor, Context, Error, acts, commission, day, essay, hub, recheck, recordings, results,
    retakes, room_log, roster, scoring, settlement, status,
};

/// A participant and the room they are assigned to, as a roster import carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RosterEntryWire", into = "RosterEntryWire")]
pub struct RosterEntry {
    pub participant: Participant,
    /// A disabled participant (инвалид): +30 minutes whatever the category.
    pub disabled: bool,
    /// Answers in writing (seed 002 §61).
    pub written: bool,
    pub room: Option<RoomCode>,
}

/// A roster entry on the wire: the participant's fields as text, each checked when read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RosterEntryWire {
    pub id: String,
    pub surname: String,
    pub name: String,
    pub patronymic: String,
    pub series: String,
    pub number: String,
    pub class: String,
    pub category: String,
    /// Absent in scripts of version 1: not disabled.
    #[serde(default)]
    pub disabled: bool,
    /// Absent before the written form: answers orally.
    #[serde(default)]
    pub written: bool,
    pub room: Option<String>,
}

impl TryFrom<RosterEntryWire> for RosterEntry {
    type Error = giasync_shared::DomainError;
    fn try_from(r: RosterEntryWire) -> Result<Self, Self::Error> {
        Ok(RosterEntry {
            participant: Participant {
                id: ParticipantId::new(&r.id)?,
                name: FullName::new(&r.surname, &r.name, &r.patronymic)?,
                document: IdentityDocument::new(&r.series, &r.number)?,
                class: SchoolClass::new(&r.class)?,
                category: r.category.parse::<Category>()?,
            },
            disabled: r.disabled,
            written: r.written,
            room: r.room.as_deref().map(RoomCode::new).transpose()?,
        })
    }
}

impl From<RosterEntry> for RosterEntryWire {
    fn from(e: RosterEntry) -> Self {
        let p = &e.participant;
        RosterEntryWire {
            id: p.id.to_string(),
            surname: p.name.surname().into(),
            name: p.name.given_name().into(),
            patronymic: p.name.patronymic().unwrap_or("").into(),
            series: p.document.series().into(),
            number: p.document.number().into(),
            class: p.class.to_string(),
            category: p.category.id().into(),
            disabled: e.disabled,
            written: e.written,
            room: e.room.map(|r| r.to_string()),
        }
    }
}

impl From<&giasync_shared::import::ImportedRow> for RosterEntry {
    fn from(r: &giasync_shared::import::ImportedRow) -> Self {
        RosterEntry {
            participant: r.participant.clone(),
            disabled: r.disabled,
            written: r.written,
            room: r.room,
        }
    }
}

/// A row of a region-wide list: where it came from in the file, the school (and its МОУО when
/// the list names it) and the participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRow {
    pub row: usize,
    pub school: Option<SchoolCode>,
    pub municipality: Option<MunicipalityCode>,
    pub participant: RosterEntry,
}

impl From<&giasync_shared::import::ImportedRow> for RegionRow {
    fn from(r: &giasync_shared::import::ImportedRow) -> Self {
        RegionRow {
            row: r.row,
            school: r.school,
            municipality: r.municipality,
            participant: r.into(),
        }
    }
}

/// At the РЦОИ: a participant's new category of record (a change the school asked for, approved),
/// with the operator's signed approval (`giasync_shared::approval`) and their certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryApproval {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub category: Category,
    /// The signed approval; absent from scripts written before approvals were signed, which
    /// are refused with the reason.
    #[serde(default)]
    pub statement: Vec<u8>,
    #[serde(default)]
    pub operator_cert: Vec<u8>,
}

/// A participant's attendance as marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MarkingWire", into = "MarkingWire")]
pub struct Marking {
    pub exam: ExamId,
    pub participant: ParticipantId,
    pub attendance: Attendance,
}

/// A marking on the wire: `status` is `present`, `absent`, `early` or `removed`; `act` is the
/// act's number for the last two.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkingWire {
    pub exam: ExamId,
    pub participant: ParticipantId,
    pub status: String,
    #[serde(default)]
    pub act: String,
}

impl TryFrom<MarkingWire> for Marking {
    type Error = giasync_shared::DomainError;
    fn try_from(w: MarkingWire) -> Result<Self, Self::Error> {
        Ok(Marking {
            exam: w.exam,
            participant: w.participant,
            attendance: Attendance::from_words(&w.status, &w.act)?,
        })
    }
}

impl From<Marking> for MarkingWire {
    fn from(m: Marking) -> Self {
        MarkingWire {
            exam: m.exam,
            participant: m.participant,
            status: m.attendance.word().into(),
            act: m
                .attendance
                .act()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// An identity document to look results up by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LookupWire", into = "LookupWire")]
pub struct LookupQuery {
    pub document: IdentityDocument,
}

/// A look-up on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupWire {
    pub series: String,
    pub number: String,
}

impl TryFrom<LookupWire> for LookupQuery {
    type Error = giasync_shared::DomainError;
    fn try_from(w: LookupWire) -> Result<Self, Self::Error> {
        Ok(LookupQuery {
            document: IdentityDocument::new(&w.series, &w.number)?,
        })
    }
}

impl From<LookupQuery> for LookupWire {
    fn from(q: LookupQuery) -> Self {
        LookupWire {
            series: q.document.series().into(),
            number: q.document.number().into(),
        }
    }
}

/// A command to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Adds participants to the school's roster (or corrects them), with their rooms.
    RosterImport {
        exam: ExamId,
        rows: Vec<RosterEntry>,
    },
    /// At the РЦОИ: a region-wide participant list into each school's roster. Any row whose
    /// school cannot be placed refuses the whole list.
    RegionImport {
        exam: ExamId,
        rows: Vec<RegionRow>,
    },
    /// At the РЦОИ: sets a participant's category of record, approving a change the school
    /// asked for.
    ApproveCategory(CategoryApproval),
    /// An organiser's signed act ending an attempt (`giasync_shared::act`), with their
    /// certificate.
    Act {
        exam: ExamId,
        statement: Vec<u8>,
        organiser_cert: Vec<u8>,
    },
    /// Declares rooms and their capacities.
    Rooms {
        exam: ExamId,
        rooms: Vec<(RoomCode, u16)>,
    },
    Assign {
        exam: ExamId,
        participant: ParticipantId,
        room: RoomCode,
    },
    Mark(Marking),
    Log {
        exam: ExamId,
        participant: ParticipantId,
        interviewer: Option<PersonId>,
        #[serde(rename = "at_ms")]
        at: Timestamp,
        end: bool,
        /// The КИМ variant given at the start of the answer (seed 002 §42).
        #[serde(default)]
        variant: Option<giasync_shared::room::Variant>,
    },
    /// One participant's roster entry.
    Participant {
        exam: ExamId,
        participant: ParticipantId,
    },
    /// Every participant of the roster.
    Roster {
        exam: ExamId,
    },
    /// Adds a signed score sheet, checked first.
    Score {
        exam: ExamId,
        sheet: Vec<u8>,
        expert: PersonId,
        expert_cert: Vec<u8>,
    },
    /// What the node holds and whom it talks to.
    Status,
    /// At the РЦОИ: an exam's results and score sheets as export files (unsigned: the caller
    /// signs the manifest with the node key).
    Export {
        exam: ExamId,
    },
    /// An exam's open conflicts.
    Conflicts {
        exam: ExamId,
    },
    /// At the РЦОИ, once: an operator's signed settlement. Refused now, saying that conflicts
    /// are settled at the school (`CommissionSettle`); kept so that an older tool is told so.
    Settle {
        statement: Vec<u8>,
        operator_cert: Vec<u8>,
    },
    /// At a school: a commission member's signed settlement of a conflict
    /// (`giasync_shared::settlement::commission`), with their certificate.
    CommissionSettle {
        exam: ExamId,
        statement: Vec<u8>,
        cert: Vec<u8>,
    },
    /// At the РЦОИ: puts a school on the route its results take (seed 003 §2.3, §2.5): through
    /// its МОУО, or straight from the РЦОИ on removable media; kept in the region directory.
    SchoolRoute {
        school: SchoolCode,
        route: giasync_shared::year::Route,
    },
    /// At the РЦОИ: the processing's results of итоговое сочинение (изложение), each row checked
    /// again; any bad row and nothing is written.
    EssayImport {
        exam: ExamId,
        rows: Vec<essay::EssayRow>,
    },
    /// At the reviewing school: the head's signed request for another school's participant's
    /// recording (`giasync_shared::recheck`), with their certificate.
    RecheckRequest {
        statement: Vec<u8>,
        cert: Vec<u8>,
    },
    /// At the РЦОИ: grants a filed request, or refuses it with the reason.
    RecheckGrant {
        request: giasync_shared::record::RecordHash,
    },
    /// The re-check requests held here and where each stands.
    Rechecks,
    /// At the reviewing school: the grants the РЦОИ made it for `exam`.
    RecheckGrants {
        exam: ExamId,
    },
    /// At the reviewing school: the chair's signed re-check protocol, with their certificate.
    RecheckSign {
        statement: Vec<u8>,
        cert: Vec<u8>,
    },
    /// At the РЦОИ: signs each school's results into its results document. A school with open
    /// conflicts is not published, and the answer names it.
    Publish {
        exam: ExamId,
    },
    /// At a school: the published results, once their РЦОИ signature verifies.
    Results {
        exam: ExamId,
    },
    /// On a hub: the oversight view of its schools.
    Oversight,
    /// At a school: the exam day as its pages show it; without an exam, the latest one the
    /// school has a roster for (or this year's main ИС date).
    SchoolDay {
        exam: Option<ExamId>,
    },
    /// At the РЦОИ: a participant's published results by identity document. Unknown and not
    /// yet published answer alike: nothing.
    Lookup(LookupQuery),
    /// At a school: the head's signed commission order (`giasync_shared::commission`), with
    /// their certificate.
    Commission {
        exam: ExamId,
        statement: Vec<u8>,
        head_cert: Vec<u8>,
    },
    /// At a school: why an absent participant («Н») was absent (seed 002 §70).
    Absence {
        exam: ExamId,
        participant: ParticipantId,
        reason: giasync_shared::retake::AbsenceReason,
    },
    /// On a hub: who must be registered for an additional date, with the reason (§70).
    Retakes {
        exam: ExamId,
    },
    /// At a school: stores an organiser's signed familiarisation record.
    Familiarise {
        exam: ExamId,
        statement: Vec<u8>,
        organiser_cert: Vec<u8>,
    },
    /// At a school: takes in a recording file of the node's machine and names it in the
    /// protocol (seed 002 §52). The node's driver takes the file in (`service`, `admin`); the
    /// room and participant are given, or read from the file's name
    /// (`giasync_shared::recording::FileName`).
    AddRecording {
        exam: ExamId,
        file: std::path::PathBuf,
        room: Option<RoomCode>,
        participant: Option<ParticipantId>,
        attempt: Option<giasync_shared::record::Attempt>,
        /// The room's stream for the day, whatever the name says.
        stream: bool,
    },
    /// Deletes this node's copies of an exam's recordings once the keeping period is over
    /// (seed 002 §55, §69) and records it; the node's driver deletes the bytes.
    DestroyRecordings {
        exam: ExamId,
    },
    /// A consistent backup of the node's store and its blobs into a new file (`crate::backup`).
    /// Done by the node's driver, on its own database, while the node runs.
    Backup {
        to: std::path::PathBuf,
    },
    /// At a school with no link: writes its recordings (and with `documents` its documents) to a
    /// folder on removable media, signed by the node key (`giasync_shared::bundle`). Done by
    /// the node's driver.
    BundleWrite {
        to: std::path::PathBuf,
        documents: bool,
        /// At the РЦОИ: the bundle of its documents for this school (results on removable
        /// media for a school on the direct route, seed 003 §2.5); none: this node's own.
        #[serde(default)]
        school: Option<SchoolCode>,
    },
    /// At a hub: checks a bundle whole (signature, certificate, every file) and takes it in.
    /// Done by the node's driver.
    BundleRead {
        from: std::path::PathBuf,
    },
    /// At the РЦОИ: seals a file of this machine as the exam's materials (КИМ) with a new
    /// release code and names the package in the region directory. Done by the node's driver.
    MaterialsAdd {
        exam: ExamId,
        file: std::path::PathBuf,
        /// How many КИМ variants the materials hold.
        variants: u16,
    },
    /// At the РЦОИ: the exam's release code, to read out to a school (the reserve scheme); only
    /// from the release time on. Done by the node's driver.
    MaterialsCode {
        exam: ExamId,
    },
    /// At a school: opens the exam's materials with a reserve code typed in. Done by the
    /// node's driver.
    MaterialsOpen {
        exam: ExamId,
        code: giasync_shared::materials::ReleaseCode,
    },
    /// The materials of every exam the region directory names, as this node holds them.
    Materials,
    /// On a hub: whether and when each school opened the exam's materials.
    MaterialsSchools {
        exam: ExamId,
    },
    /// At a school: the technician's signed readiness act (`giasync_shared::readiness`), with
    /// their certificate.
    Readiness {
        exam: ExamId,
        statement: Vec<u8>,
        technician_cert: Vec<u8>,
    },
    /// At a school: what the node finds of the exam kind's automatic readiness checks (link,
    /// clock, materials, a test recording file on this machine). Done by the node's driver.
    ReadinessFindings {
        exam: ExamId,
        #[serde(default)]
        test_recording: Option<std::path::PathBuf>,
    },
    /// The readiness of every school of the exam this node holds, against the deadline.
    ReadinessSchools {
        exam: ExamId,
    },
}

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Imported(roster::Imported),
    RegionImported(roster::RegionImported),
    CategoryApproved(roster::CategoryApproved),
    ActWritten(acts::ActWritten),
    Rooms {
        count: usize,
    },
    Assigned(roster::Assigned),
    Marked(Marking),
    Logged(room_log::Logged),
    Participant(roster::Entry),
    Roster {
        entries: Vec<roster::Entry>,
    },
    Scored(scoring::Scored),
    Status(Box<status::Status>),
    Export(hub::Export),
    Conflicts(scoring::Conflicts),
    Settled(hub::Settled),
    EssayImported(essay::EssayImported),
    SchoolRouted(essay::Routed),
    RecheckFiled(recheck::Filed),
    RecheckAnswered(recheck::Answered),
    Rechecks {
        requests: Vec<recheck::RequestRow>,
    },
    RecheckGrants {
        grants: Vec<recheck::GrantView>,
    },
    Published(hub::Publication),
    Results(results::PublishedResults),
    Oversight(Box<giasync_shared::oversight::Oversight>),
    SchoolDay(Box<day::SchoolDay>),
    Lookup {
        found: Vec<results::Found>,
    },
    Familiarised(results::Familiarised),
    AbsenceRecorded(retakes::AbsenceRecorded),
    CommissionSigned(commission::CommissionSigned),
    Retakes(retakes::Retakes),
    RecordingNamed(recordings::Named),
    RecordingsDestroyed(recordings::Destroyed),
    BundleWritten(crate::bundle::BundleDone),
    BackedUp(crate::backup::BackupDone),
    BundleRead(crate::bundle::BundleDone),
    MaterialsAdded(super::materials::Announced),
    MaterialsCode {
        exam: ExamId,
        code: String,
        release_at: Timestamp,
    },
    MaterialsOpened {
        exam: ExamId,
        at: Timestamp,
        by: String,
        file: String,
    },
    Materials {
        exams: Vec<super::materials::ExamMaterials>,
    },
    MaterialsSchools {
        exam: ExamId,
        schools: Vec<super::materials::SchoolOpened>,
    },
    ReadinessSigned(super::readiness::ReadinessSigned),
    ReadinessFindings {
        exam: ExamId,
        findings: Vec<super::readiness::Finding>,
    },
    Readiness(super::readiness::ReadinessView),
}

impl Command {
    /// The command's name on the wire (`"op"`).
    #[must_use]
    pub fn op(&self) -> &'static str {
        match self {
            Command::RosterImport { .. } => "roster_import",
            Command::RegionImport { .. } => "region_import",
            Command::ApproveCategory(_) => "approve_category",
            Command::Act { .. } => "act",
            Command::Rooms { .. } => "rooms",
            Command::Assign { .. } => "assign",
            Command::Mark(_) => "mark",
            Command::Log { .. } => "log",
            Command::Participant { .. } => "participant",
            Command::Roster { .. } => "roster",
            Command::Score { .. } => "score",
            Command::Status => "status",
            Command::Export { .. } => "export",
            Command::Conflicts { .. } => "conflicts",
            Command::Settle { .. } => "settle",
            Command::CommissionSettle { .. } => "commission_settle",
            Command::EssayImport { .. } => "essay_import",
            Command::SchoolRoute { .. } => "school_route",
            Command::RecheckRequest { .. } => "recheck_request",
            Command::RecheckGrant { .. } => "recheck_grant",
            Command::Rechecks => "rechecks",
            Command::RecheckGrants { .. } => "recheck_grants",
            Command::RecheckSign { .. } => "recheck_sign",
            Command::Publish { .. } => "publish",
            Command::Results { .. } => "results",
            Command::Oversight => "oversight",
            Command::SchoolDay { .. } => "school_day",
            Command::Lookup(_) => "lookup",
            Command::Familiarise { .. } => "familiarise",
            Command::Absence { .. } => "absence",
            Command::Commission { .. } => "commission",
            Command::Retakes { .. } => "retakes",
            Command::AddRecording { .. } => "add_recording",
            Command::DestroyRecordings { .. } => "destroy_recordings",
            Command::BundleWrite { .. } => "bundle_write",
            Command::Backup { .. } => "backup",
            Command::BundleRead { .. } => "bundle_read",
            Command::MaterialsAdd { .. } => "materials_add",
            Command::MaterialsCode { .. } => "materials_code",
            Command::MaterialsOpen { .. } => "materials_open",
            Command::Materials => "materials",
            Command::MaterialsSchools { .. } => "materials_schools",
            Command::Readiness { .. } => "readiness",
            Command::ReadinessFindings { .. } => "readiness_findings",
            Command::ReadinessSchools { .. } => "readiness_schools",
        }
    }

    /// Whether the node's driver does this command (files, blobs, a blocking thread), not the
    /// engine thread alone (`crate::service`).
    #[must_use]
    pub fn by_node_driver(&self) -> bool {
        matches!(
            self,
            Command::ReadinessFindings { .. }
                | Command::MaterialsAdd { .. }
                | Command::MaterialsCode { .. }
                | Command::MaterialsOpen { .. }
                | Command::Materials
        )
    }

    /// Whether the audit log keeps who asked for it: every write, and the look-up of a
    /// person's results.
    #[must_use]
    pub fn audited(&self) -> bool {
        self.action() != super::Action::Read || matches!(self, Command::Lookup(_))
    }

    /// The right a command needs.
    #[must_use]
    pub fn action(&self) -> super::Action {
        use super::Action;
        match self {
            Command::RosterImport { .. }
            | Command::Rooms { .. }
            | Command::Assign { .. }
            | Command::Absence { .. } => Action::EditRoster,
            Command::Mark(_) => Action::Mark,
            Command::Log { .. } => Action::Log,
            Command::Score { .. } => Action::Score,
            Command::Familiarise { .. } => Action::Familiarise,
            Command::Act { .. } => Action::WriteAct,
            Command::Commission { .. } => Action::SignCommission,
            Command::CommissionSettle { .. } => Action::Settle,
            Command::RecheckRequest { .. } | Command::RecheckSign { .. } => Action::Recheck,
            Command::RecheckGrant { .. }
            | Command::EssayImport { .. }
            | Command::SchoolRoute { .. } => Action::Operate,
            Command::Rechecks | Command::RecheckGrants { .. } => Action::Read,
            Command::AddRecording { .. }
            | Command::DestroyRecordings { .. }
            | Command::BundleWrite { .. } => Action::AddRecording,
            Command::BundleRead { .. } | Command::Backup { .. } => Action::Operate,
            Command::MaterialsAdd { .. } | Command::MaterialsCode { .. } => Action::Operate,
            Command::MaterialsOpen { .. } => Action::OpenMaterials,
            Command::Materials
            | Command::MaterialsSchools { .. }
            | Command::ReadinessSchools { .. }
            | Command::ReadinessFindings { .. } => Action::Read,
            Command::Readiness { .. } => Action::SignReadiness,
            Command::RegionImport { .. }
            | Command::ApproveCategory(_)
            | Command::Export { .. }
            | Command::Settle { .. }
            | Command::Publish { .. } => Action::Operate,
            Command::Participant { .. }
            | Command::Roster { .. }
            | Command::Status
            | Command::Conflicts { .. }
            | Command::Results { .. }
            | Command::Oversight
            | Command::SchoolDay { .. }
            | Command::Lookup(_)
            | Command::Retakes { .. } => Action::Read,
        }
    }
}

/// Applies `command`, asked by `actor`, to the engine (records go to the engine's outputs, for
/// the caller to persist before it answers).
pub fn apply(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    command: Command,
) -> Result<Answer, Error> {
    actor.may(command.action())?;
    Ok(match command {
        Command::RosterImport { exam, rows } => {
            Answer::Imported(roster::import(engine, now_ms, exam, rows)?)
        }
        Command::RegionImport { exam, rows } => {
            Answer::RegionImported(roster::region_import(engine, context, now_ms, exam, rows)?)
        }
        Command::ApproveCategory(approval) => Answer::CategoryApproved(roster::approve_category(
            engine, actor, context, now_ms, &approval,
        )?),
        Command::Act {
            exam,
            statement,
            organiser_cert,
        } => Answer::ActWritten(acts::write(
            engine,
            context,
            actor,
            now_ms,
            exam,
            statement,
            &organiser_cert,
        )?),
        Command::Rooms { exam, rooms } => Answer::Rooms {
            count: roster::rooms(engine, now_ms, exam, &rooms)?,
        },
        Command::Assign {
            exam,
            participant,
            room,
        } => Answer::Assigned(roster::assign(engine, now_ms, exam, participant, room)?),
        Command::Mark(marking) => {
            let interviewer = match actor {
                Actor::Person(p) if p.role == PersonRole::Interviewer => Some(p.id),
                _ => None,
            };
            roster::mark(engine, context, now_ms, &marking, interviewer)?;
            Answer::Marked(marking)
        }
        Command::Log {
            exam,
            participant,
            interviewer,
            at,
            end,
            variant,
        } => {
            let interviewer = match actor {
                Actor::Person(p) => Some(p.id),
                Actor::Console | Actor::Visitor => interviewer,
            };
            let mut entry = room_log::Logged {
                participant,
                interviewer,
                at,
                end,
                variant,
                attempt: None,
            };
            let attempt = room_log::log(engine, context, now_ms, exam, &entry)?;
            entry.attempt = Some(attempt.get());
            Answer::Logged(entry)
        }
        Command::Participant { exam, participant } => {
            Answer::Participant(roster::entry(engine, exam, participant)?)
        }
        Command::Roster { exam } => Answer::Roster {
            entries: roster::entries(engine, exam)?,
        },
        Command::Score {
            exam,
            sheet,
            expert,
            expert_cert,
        } => Answer::Scored(scoring::score(
            engine,
            context,
            actor,
            now_ms,
            exam,
            sheet,
            expert,
            &expert_cert,
        )?),
        Command::Status => Answer::Status(Box::new(status::status(engine, context))),
        Command::Export { exam } => Answer::Export(hub::export(engine, context, exam)?),
        Command::Conflicts { exam } => Answer::Conflicts(scoring::conflicts(engine, context, exam)),
        Command::Settle { .. } => Answer::Settled(hub::settle()?),
        Command::CommissionSettle {
            exam,
            statement,
            cert,
        } => Answer::Settled(settlement::settle(
            engine, context, actor, now_ms, exam, statement, &cert,
        )?),
        Command::SchoolRoute { school, route } => {
            Answer::SchoolRouted(essay::route(engine, now_ms, school, route)?)
        }
        Command::EssayImport { exam, rows } => {
            Answer::EssayImported(essay::import(engine, context, now_ms, exam, rows)?)
        }
        Command::RecheckRequest { statement, cert } => Answer::RecheckFiled(recheck::request(
            engine, context, actor, now_ms, statement, &cert,
        )?),
        Command::RecheckGrant { request } => {
            Answer::RecheckAnswered(recheck::grant(engine, context, now_ms, request)?)
        }
        Command::Rechecks => Answer::Rechecks {
            requests: recheck::list(engine, context, now_ms)?,
        },
        Command::RecheckGrants { exam } => Answer::RecheckGrants {
            grants: recheck::grants(engine, context, now_ms, exam)?,
        },
        Command::RecheckSign { statement, cert } => Answer::RecheckFiled(recheck::sign(
            engine, context, actor, now_ms, statement, &cert,
        )?),
        Command::Publish { exam } => {
            Answer::Published(hub::publish(engine, context, now_ms, exam)?)
        }
        Command::Results { exam } => Answer::Results(results::published(engine, context, exam)?),
        Command::Oversight => {
            Answer::Oversight(Box::new(status::oversight(engine, context, now_ms)?))
        }
        Command::SchoolDay { exam } => Answer::SchoolDay(Box::new(day::read_or_latest(
            engine, context, exam, now_ms,
        )?)),
        Command::Lookup(query) => Answer::Lookup {
            found: results::lookup(engine, context, &query.document)?,
        },
        Command::Absence {
            exam,
            participant,
            reason,
        } => Answer::AbsenceRecorded(retakes::record_absence(
            engine,
            now_ms,
            exam,
            participant,
            reason,
        )?),
        Command::Retakes { exam } => Answer::Retakes(retakes::list(engine, context, exam)?),
        Command::Commission {
            exam,
            statement,
            head_cert,
        } => Answer::CommissionSigned(commission::sign(
            engine, context, actor, now_ms, exam, statement, &head_cert,
        )?),
        Command::AddRecording { .. }
        | Command::DestroyRecordings { .. }
        | Command::BundleWrite { .. }
        | Command::BundleRead { .. }
        | Command::Backup { .. }
        | Command::MaterialsAdd { .. }
        | Command::MaterialsCode { .. }
        | Command::MaterialsOpen { .. }
        | Command::Materials
        | Command::ReadinessFindings { .. } => {
            return Err(Error::RecordingNotTakenIn);
        }
        Command::Readiness {
            exam,
            statement,
            technician_cert,
        } => Answer::ReadinessSigned(super::readiness::sign(
            engine,
            context,
            actor,
            now_ms,
            exam,
            statement,
            &technician_cert,
        )?),
        Command::ReadinessSchools { exam } => {
            Answer::Readiness(super::readiness::standings(engine, context, exam, now_ms)?)
        }
        Command::MaterialsSchools { exam } => Answer::MaterialsSchools {
            exam,
            schools: super::materials::opened_by_school(engine, context, exam),
        },
        Command::Familiarise {
            exam,
            statement,
            organiser_cert,
        } => Answer::Familiarised(results::familiarise(
            engine,
            context,
            actor,
            now_ms,
            exam,
            statement,
            &organiser_cert,
        )?),
    })
}
