//! The one error of the application layer. Its `Display` is the English an operator reads at
//! the console; the pages put their own Russian on the variants they expect
//! (`web::school`).

use std::fmt;

use giasync_shared::DomainError;
use giasync_shared::codes::{ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode};
use giasync_shared::exam::ExamId;
use giasync_shared::identity::NodeIdentity;
use giasync_shared::publish::PublishError;
use giasync_shared::record::{SheetError, SheetSubject};
use giasync_shared::statement::StatementError;
use giasync_shared::sync::{DocId, EngineError};

use super::actor::Action;

/// Where an operation belongs when it is asked of the wrong node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcoiDuty {
    Import,
    Publish,
    Export,
    Lookup,
    ApproveCategory,
    Materials,
}

impl std::fmt::Display for RcoiDuty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RcoiDuty::Import => "region-wide lists are imported there (a school imports its own)",
            RcoiDuty::Publish => "results are published there",
            RcoiDuty::Export => "exports are made there",
            RcoiDuty::Lookup => "results are looked up there",
            RcoiDuty::Materials => "exam materials are named and released there",
            RcoiDuty::ApproveCategory => {
                "the regional register, and so a participant's category, is kept there"
            }
        })
    }
}

/// A row of a region-wide list that cannot be placed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The row in the file (1-based, the header is row 1).
    pub row: usize,
    pub problem: RowFault,
}

/// Why a row of a region-wide list cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowFault {
    #[error("no school code (код ОО)")]
    NoSchool,
    #[error("school {school} belongs to МОУО {known}, the list says {listed}")]
    OtherMunicipality {
        school: SchoolCode,
        known: giasync_shared::codes::MunicipalityCode,
        listed: giasync_shared::codes::MunicipalityCode,
    },
    #[error("school {0} is not known to the РЦОИ yet: add its МОУО (код МОУО column)")]
    UnknownSchool(SchoolCode),
    /// One identity document may stand for one participant of one school per exam: the
    /// look-up shows the results of whoever holds it.
    #[error("identity document {} {} is already in the list of school {school} for this exam", document.series(), document.number())]
    DocumentInAnotherSchool {
        document: giasync_shared::participant::IdentityDocument,
        school: SchoolCode,
    },
    /// An essay result whose marks do not give the outcome it states, or that the year's rules
    /// do not read (`[node] essay`).
    #[error("the marks: {0}")]
    EssayMarks(String),
    /// A row whose participant id is not the one its identity document gives.
    #[error(
        "participant {participant} is not the id the row's identity document gives ({expected})"
    )]
    NotTheDocumentsId {
        participant: giasync_shared::codes::ParticipantId,
        expected: giasync_shared::codes::ParticipantId,
    },
    /// A participant twice in one file.
    #[error("participant {participant} is in the file already (row {first})")]
    Twice {
        participant: giasync_shared::codes::ParticipantId,
        first: usize,
    },
    /// On an additional date only the participants §70 admits may be registered.
    #[error("not admitted to an additional date: {0}")]
    NotAdmitted(giasync_shared::retake::NotAdmitted),
}

/// Why an expert may not score a participant in a room (seed 002 §22, §37).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOfRoom {
    /// No edition of the commission order names the expert for the room.
    NotNamed,
    /// The roster places the participant in another room than the sheet's.
    ParticipantElsewhere,
}

impl fmt::Display for NotOfRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotOfRoom::NotNamed => "the commission order does not name them for that room",
            NotOfRoom::ParticipantElsewhere => "the roster places the participant in another room",
        })
    }
}

/// The most row problems a refused import lists (the count says how many there were).
pub const IMPORT_ERRORS_SHOWN_MAX: usize = 100;

/// Why a command was refused. Nothing was written when a command answers with one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{node} is not a school: data entry happens on a school's node")]
    NotASchool { node: NodeIdentity },
    #[error("{node} is a school: oversight is served by hubs")]
    NotAHub { node: NodeIdentity },
    #[error("{node} is not the РЦОИ: {duty}")]
    NotTheRcoi { node: NodeIdentity, duty: RcoiDuty },
    /// The signed-in person's role (or somebody not signed in: `None`) may not do this
    /// (seed 002 §8).
    #[error("{} may not {action}", role.map_or("somebody not signed in".to_owned(), |r| format!("a {}", r.id())))]
    Forbidden {
        role: Option<PersonRole>,
        action: Action,
    },
    /// A person handed in a record signed by somebody else.
    #[error("{person} may not hand in a record signed by {signer}")]
    NotTheSigner { person: PersonId, signer: PersonId },
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("no participant {participant} in {doc}")]
    UnknownParticipant {
        participant: ParticipantId,
        doc: DocId,
    },
    /// A room-log time that is not on the exam's day in the region's calendar.
    #[error("{} is not on the day of {exam} (the region's clock is UTC{clock})", at.at_offset(*clock))]
    OutsideExamDay {
        at: giasync_shared::calendar::Timestamp,
        exam: ExamId,
        clock: giasync_shared::calendar::UtcOffset,
    },
    /// A score sheet for another exam or school than the protocol it is handed in to.
    #[error("the sheet is for {subject:?}, not for {doc}")]
    SheetForAnotherProtocol {
        subject: giasync_shared::record::SheetSubject,
        doc: DocId,
    },
    /// A score sheet signed before the exam's day or after the last day of its scoring (the
    /// year's data: for итоговое собеседование the exam day + 5 calendar days, seed 002 §67), in
    /// the region's calendar.
    #[error("the sheet is signed at {}, not between the day of {exam} and the last day of its scoring {last} (the region's clock is UTC{clock})", signed_at.at_offset(*clock))]
    SheetOutsideExamDay {
        signed_at: giasync_shared::calendar::Timestamp,
        exam: ExamId,
        clock: giasync_shared::calendar::UtcOffset,
        last: giasync_shared::calendar::Date,
    },
    /// A score sheet by an expert whose certificate is revoked, whatever time it claims.
    #[error(
        "expert {expert}'s certificate was revoked at {revoked_at}: their sheets are no longer taken"
    )]
    SheetSignerRevoked {
        expert: PersonId,
        revoked_at: giasync_shared::calendar::Timestamp,
    },
    /// A score sheet signed later than now, by more than clocks differ.
    #[error("the sheet is signed at {signed_at}, later than now ({now}); check the clock")]
    SheetSignedAhead {
        signed_at: giasync_shared::calendar::Timestamp,
        now: giasync_shared::calendar::Timestamp,
    },
    /// A score sheet whose category is not the participant's category of record: the criteria
    /// and the pass mark would not be the register's.
    #[error(
        "the sheet scores participant {participant} as {sheet}, but their category of record is {of_record}: a change of category needs the РЦОИ's approval first"
    )]
    SheetCategoryNotOfRecord {
        participant: ParticipantId,
        sheet: giasync_shared::participant::Category,
        of_record: giasync_shared::participant::Category,
    },
    /// A score sheet for an attempt an act ended.
    #[error("{subject}: the attempt was ended by act № {}: it is not scored", number.as_str())]
    SheetForEndedAttempt {
        subject: SheetSubject,
        number: giasync_shared::room::ActNumber,
    },
    /// A score sheet for an attempt that is not the participant's on this date.
    #[error(
        "{subject}: not an attempt of this date: the participant's attempts here open with {first}, and only an act for a bad recording opens the next"
    )]
    SheetAttemptNotOfTheDate { subject: SheetSubject, first: u8 },
    /// A commission order signed as another edition than the next.
    #[error("the order is signed as edition {signed}; the next edition is {next}")]
    CommissionEdition { signed: u32, next: u32 },
    /// A commission order dated too far from when it was handed in.
    #[error("the order is dated {at}, more than 10 minutes from now: sign it again")]
    CommissionOutOfTime {
        at: giasync_shared::calendar::Timestamp,
    },
    /// A commission order under which sheets that count now would no longer count.
    #[error("the order would stop {} sheets that count from counting (name their experts for their rooms): {}", sheets.len(), sheets.join("; "))]
    CommissionUnscores { sheets: Vec<String> },
    /// A commission order naming a room the roster does not declare.
    #[error("room {room} is not declared in the roster: declare it before the order names it")]
    CommissionRoomUnknown { room: RoomCode },
    /// A sheet by an expert the commission order does not name for the sheet's room, or for a
    /// participant the roster places in another room.
    #[error("{expert} may not score {participant} in room {room}: {why}")]
    ExpertNotOfRoom {
        expert: PersonId,
        participant: ParticipantId,
        room: RoomCode,
        why: NotOfRoom,
    },
    /// A category approval without the operator's signed record.
    #[error(
        "an approval of a category is signed by the operator who makes it: give the operator's key (giasync-hub approve-category --key ID.key --basis …)"
    )]
    ApprovalUnsigned,
    /// A signed approval of another participant or category than asked.
    #[error("the signed approval is of participant {} as {}, but participant {} as {} was asked", signed.0, signed.1.id(), asked.0, asked.1.id())]
    ApprovalForOther {
        signed: (ParticipantId, giasync_shared::participant::Category),
        asked: (ParticipantId, giasync_shared::participant::Category),
    },
    /// A signed approval naming another region's РЦОИ.
    #[error("the signed approval is for the РЦОИ of region {rcoi}, not this one")]
    ApprovalOfAnotherRcoi {
        rcoi: giasync_shared::codes::RegionCode,
    },
    /// A signed approval no newer than the participant's latest stored one (handed in again).
    #[error("the participant's latest approval is of {latest}; this one is not newer")]
    ApprovalNotNewer {
        latest: giasync_shared::calendar::Timestamp,
    },
    /// A signed approval dated too far from when it was handed in.
    #[error(
        "the approval is dated {at}, more than 10 minutes from now: the operator signs it as it is handed in"
    )]
    ApprovalOutOfTime {
        at: giasync_shared::calendar::Timestamp,
    },
    /// No materials package of the exam in the region directory (yet, at this node).
    #[error("the region directory names no materials package for {exam} (yet, at this node)")]
    NoMaterials { exam: ExamId },
    /// A released package is not replaced: schools may already have opened it.
    #[error("the materials of {exam} are released: a released package is not replaced")]
    MaterialsReleased { exam: ExamId },
    /// The release time of the exam's materials has not come on the РЦОИ's clock.
    #[error(
        "the materials of {exam} open at {release_at} (07:30 local time on the exam day, seed 002 §30), not before"
    )]
    MaterialsNotYet {
        exam: ExamId,
        release_at: giasync_shared::calendar::Timestamp,
    },
    /// A package whose release time is not 07:30 of the exam day on this node's clock.
    #[error(
        "the materials of {exam} are named to open at {named}; 07:30 of the exam day on this region's clock is {expected} ([node] utc_offset of the РЦОИ and this node)"
    )]
    MaterialsReleaseTime {
        exam: ExamId,
        named: giasync_shared::calendar::Timestamp,
        expected: giasync_shared::calendar::Timestamp,
    },
    /// A reserve code that does not open the exam's package (counted in the protocol).
    #[error(
        "the code does not open the materials of {exam}: refused ({wrong_codes} wrong codes typed at this school so far); check it with the РЦОИ"
    )]
    WrongReleaseCode { exam: ExamId, wrong_codes: u32 },
    /// The package has not reached this node yet.
    #[error("the materials package of {exam} has not reached this node yet")]
    MaterialsNotHeld { exam: ExamId },
    /// A package that could not be sealed or opened (its file, its encryption).
    #[error("the materials of {exam}: {message}")]
    MaterialsFile { exam: ExamId, message: String },
    #[error("the materials: {0}")]
    Materials(#[from] giasync_shared::materials::MaterialsError),
    /// A readiness act dated too far from when it was handed in.
    #[error(
        "the readiness act is dated {at}, more than 10 minutes from now: the technician signs it as it is handed in"
    )]
    ReadinessOutOfTime {
        at: giasync_shared::calendar::Timestamp,
    },
    /// The year's readiness file has no checks for this exam kind.
    #[error("the year's readiness checks have none for {}", kind.display_name())]
    NoReadinessChecks {
        kind: giasync_shared::exam::ExamKind,
    },
    /// The start of an answer for a participant whose day an act closed.
    #[error("participant {participant}: no attempt is open: an act ended the day's attempt")]
    NoAttemptOpen { participant: ParticipantId },
    /// The end of an answer for a participant with none begun and not ended.
    #[error("participant {participant}: no answer is under way to end (log its start first)")]
    NoAnswerUnderWay { participant: ParticipantId },
    /// A room log entry by an interviewer the newest commission order does not name for the
    /// participant's room (seed 002 §22, §37).
    #[error("{interviewer} is not an interviewer of {} in the school's commission order (participant {participant})", room.map_or("the participant's room (the roster places them in none)".to_owned(), |r| format!("room {r}")))]
    InterviewerNotOfRoom {
        interviewer: PersonId,
        participant: ParticipantId,
        room: Option<RoomCode>,
    },
    /// A variant the participant already answered on this date (seed 002 §45: a retake is with a
    /// variant the participant has not worked with).
    #[error(
        "participant {participant} already answered variant {variant} on this date (attempt {attempt}): a retake is with another variant"
    )]
    VariantAnswered {
        participant: ParticipantId,
        variant: giasync_shared::room::Variant,
        attempt: u8,
    },
    /// A variant the exam's materials do not hold.
    #[error("the materials of this exam hold variants 1 to {variants}, not {variant}")]
    VariantNotInMaterials {
        variant: giasync_shared::room::Variant,
        variants: u16,
    },
    /// An act dated on another day than its exam's, in the region's calendar.
    #[error("the act is dated {}, not on the day of {exam} (the region's clock is UTC{clock})", at.at_offset(*clock))]
    ActOutsideExamDay {
        at: giasync_shared::calendar::Timestamp,
        exam: ExamId,
        clock: giasync_shared::calendar::UtcOffset,
    },
    /// An act handed in after the last day of its exam's scoring.
    #[error("the scoring of {exam} ended on {last}: an act is no longer taken")]
    ActAfterScoring {
        exam: ExamId,
        last: giasync_shared::calendar::Date,
    },
    /// An act for an attempt that is not the participant's open one.
    #[error("participant {participant}: an act ends the attempt open now, {}, not attempt {attempt}", open.map_or("and none is (an act ended the day's attempt)".to_owned(), |a| format!("attempt {a}")))]
    ActForAttemptNotOpen {
        participant: ParticipantId,
        attempt: u8,
        open: Option<u8>,
    },
    /// On an additional date the attempt comes from the РЦОИ's register, which has not reached
    /// this school yet.
    #[error(
        "the regional register of {exam} has not reached this school yet: on an additional date it gives each participant's attempt"
    )]
    NoRegisterYet { exam: ExamId },
    /// An act, or a mark naming an act, numbered as another attempt's act (signed, or marked in
    /// the roster).
    #[error("act № {} is already participant {participant}'s (a signed act or a mark in the roster)", number.as_str())]
    ActNumberTaken {
        number: giasync_shared::room::ActNumber,
        participant: ParticipantId,
    },
    /// A reason for an absence, for a participant not marked absent.
    #[error(
        "participant {participant} is not marked absent («Н»): there is no absence to give a reason for"
    )]
    NotAbsent { participant: ParticipantId },
    /// Retakes are listed for an additional date only.
    #[error(
        "{exam} is not an additional date of итоговое собеседование: retakes are for the second working Wednesday of March and the third Monday of April"
    )]
    NotAnAdditionalDate { exam: ExamId },
    /// The РЦОИ holds no document of the school for the exam.
    #[error("the РЦОИ holds nothing of school {school} for {exam}")]
    SchoolNotHeld { school: SchoolCode, exam: ExamId },
    /// The participant is not in the regional register of the school.
    #[error(
        "participant {participant} is not in the register of school {school}: import them with the region's list first"
    )]
    NotRegistered {
        participant: ParticipantId,
        school: SchoolCode,
    },
    #[error("room {room} is full: {capacity} seats")]
    RoomFull { room: RoomCode, capacity: i64 },
    #[error("the sheet is refused: {0}")]
    SheetRefused(SheetError),
    #[error("no results for {exam} yet")]
    NoResults { exam: ExamId },
    #[error("the published results are refused: {0}")]
    ResultsRefused(PublishError),
    #[error("the record is refused: {0}")]
    RecordRefused(StatementError),
    #[error("the record is for {school} {exam}")]
    RecordForOther { school: SchoolCode, exam: ExamId },
    #[error("participant {0} has no published result")]
    NoPublishedResult(ParticipantId),
    /// A familiarisation record for another edition of the results than the newest here: the
    /// results changed (a re-check) since the page that made it was loaded.
    #[error(
        "the record is for edition {shown} of the results, but edition {now} is in force: show the participant the results again"
    )]
    ResultsChangedSince { shown: u32, now: u32 },
    #[error("the settlement is refused: {0}")]
    SettlementRefused(StatementError),
    /// A settlement dated too far from when it was handed in.
    #[error("the settlement is dated {at}, more than 10 minutes from now: sign it again")]
    SettlementOutOfTime {
        at: giasync_shared::calendar::Timestamp,
    },
    /// A commission member may not settle a conflict of their own sheets.
    #[error(
        "{signer} signed one of the conflicting sheets: another member of the commission settles it"
    )]
    SettlementByParty { signer: PersonId },
    /// A room expert's settlement covers their room's sheets only.
    #[error(
        "the conflicting sheets were signed in rooms {}: a room's expert settles only their room's sheets; the chair settles a conflict across rooms",
        rooms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    SettlementRooms { rooms: Vec<RoomCode> },
    /// The РЦОИ no longer settles conflicts: the school's commission does.
    #[error(
        "conflicts are settled at the school by its commission now (seed 002 §22, §64-67): the chair or a room's expert signs with `giasync-node settle` at the school; the hubs see open conflicts and flag them. Settlements an operator made before keep counting"
    )]
    SettledAtSchool,
    #[error("no protocol of school {school} for {exam}")]
    NoProtocol { school: SchoolCode, exam: ExamId },
    /// A re-check request or protocol that does not verify, or is not for this school and exam.
    #[error("the re-check record is refused: {0}")]
    RecheckRefused(StatementError),
    /// The year's data has no re-check terms.
    #[error(
        "the year's data ({year}) sets no re-check terms ([recheck] in the year file): no re-check is taken"
    )]
    RecheckNoTerms { year: String },
    /// The participant applied after the year's deadline.
    #[error(
        "the application is dated {applied}, after the year's last day to apply, {apply_by} (seed 002 §71)"
    )]
    RecheckLate {
        applied: giasync_shared::calendar::Date,
        apply_by: giasync_shared::calendar::Date,
    },
    /// A familiarisation record dated too far from when it was handed in.
    #[error(
        "the familiarisation record is dated {at}, more than 10 minutes from now: sign it again"
    )]
    FamiliarisedOutOfTime {
        at: giasync_shared::calendar::Timestamp,
    },
    /// A request or re-check dated too far from when it was handed in.
    #[error("the record is dated {at}, more than 10 minutes from now: sign it again")]
    RecheckOutOfTime {
        at: giasync_shared::calendar::Timestamp,
    },
    /// A school the РЦОИ holds no document of.
    #[error("school {0} is not known to the РЦОИ: import its list first")]
    UnknownSchool(SchoolCode),
    /// Essay results for an exam of another kind.
    #[error(
        "{0} is not итоговое сочинение (изложение): its results go to an essay-YYYY-MM-DD exam"
    )]
    NotAnEssay(ExamId),
    #[error("no re-check request {0} is held here")]
    NoSuchRequest(giasync_shared::record::RecordHash),
    #[error("the request {0} is answered already (see giasync-hub recheck list)")]
    RecheckAnswered(giasync_shared::record::RecordHash),
    /// A re-check signed for an attempt this school holds no open grant for.
    #[error(
        "this school holds no open grant for {subject} with that recording: the РЦОИ grants it on the head's request, until the re-check is signed or the term passes"
    )]
    NoOpenGrant { subject: SheetSubject },
    #[error(
        "{0}: no open conflict whose every sheet the settlement names (see the exam's conflicts)"
    )]
    NoSuchConflict(SheetSubject),
    #[error("{}", rows_refused(.0))]
    RowsRefused(Vec<RowProblem>),
    #[error("no exam yet: name one")]
    NoExam,
    /// A recording for a room the roster does not declare.
    #[error("room {room} is not declared in the roster: a recording names a room of the exam")]
    RecordingRoomUnknown { room: RoomCode },
    /// A participant's recording named for another room than the roster's.
    #[error("participant {participant} is placed in room {}, the recording names room {room}", placed.as_deref().unwrap_or("(none)"))]
    RecordingRoomNotTheParticipants {
        participant: ParticipantId,
        room: RoomCode,
        placed: Option<String>,
    },
    /// Recordings asked to be destroyed before their keeping period is over.
    #[error(
        "the recordings of {exam} are kept until {until} (seed 002 §55: at least 4 months after the exam; [node] audio_keep_months)"
    )]
    RecordingsKept {
        exam: ExamId,
        until: giasync_shared::calendar::Date,
    },
    /// A recording file that is not taken in, and why (its container, its name).
    #[error("the recording is refused: {0}")]
    RecordingRefused(String),
    /// A recording's bytes are taken in and deleted by the node's driver, not here.
    #[error(
        "recordings, bundles and materials are handled by the running node itself (giasync-node audio add|destroy, bundle write, materials; giasync-hub bundle read, materials)"
    )]
    RecordingNotTakenIn,
    /// A backup that could not be written (`crate::backup`).
    #[error("backup: {0}")]
    Backup(String),
    /// A bundle refused, or one that could not be written.
    #[error(transparent)]
    Bundle(#[from] giasync_shared::bundle::BundleError),
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("an export file is not UTF-8: {0}")]
    Export(String),
}

fn rows_refused(rows: &[RowProblem]) -> String {
    let mut message = format!("{} bad rows: nothing was imported", rows.len());
    for r in rows.iter().take(IMPORT_ERRORS_SHOWN_MAX) {
        message.push_str(&format!("\n  row {}: {}", r.row, r.problem));
    }
    message
}
