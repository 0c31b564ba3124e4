//! Errors of the domain constructors. Every error names the field and the value it refused.

use std::fmt;

/// A field of the domain model, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The code of a region (субъект РФ), two digits.
    RegionCode,
    /// The code of a municipality (МОУО).
    MunicipalityCode,
    /// The code of a school (ОО).
    SchoolCode,
    /// The id of a person who works on exam day (staff).
    PersonId,
    /// The role of a node or a person.
    Role,
    /// The id of an exam participant.
    ParticipantId,
    /// A participant's surname.
    Surname,
    /// A participant's given name.
    GivenName,
    /// A participant's patronymic.
    Patronymic,
    /// The series of an identity document.
    DocumentSeries,
    /// The number of an identity document.
    DocumentNumber,
    /// The kind of an identity document.
    DocumentType,
    /// A school class such as «9А».
    SchoolClass,
    /// The participant category (ОВЗ categories included).
    Category,
    /// The kind of an exam (ИС, ИСоч, ОГЭ, ЕГЭ).
    ExamKind,
    /// The date of an exam.
    ExamDate,
    /// A calendar date.
    Date,
    /// A point in time.
    Timestamp,
    /// A region's offset from UTC.
    UtcOffset,
    /// The code of a room (аудитория).
    RoomCode,
    /// The number of seats in a room.
    RoomCapacity,
    /// The number of an act (акт).
    ActNumber,
    /// Whether a participant took part (present, absent, early, removed).
    Attendance,
    /// A room-log entry.
    RoomLogEntry,
    /// The number of the КИМ variant a participant answered.
    Variant,
    /// The id of a scoring criterion such as «Ч1».
    Criterion,
    /// The attempt number of a participant at an exam.
    Attempt,
    /// The reason given for a correction.
    Reason,
    /// The id of a replicated document.
    DocId,
    /// The SHA-256 naming a signed record.
    RecordHash,
    /// A value of a per-year data file (`crate::year`).
    YearData,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::RegionCode => "region code",
            Field::MunicipalityCode => "municipality code",
            Field::SchoolCode => "school code",
            Field::PersonId => "person id",
            Field::Role => "role",
            Field::ParticipantId => "participant id",
            Field::Surname => "surname",
            Field::GivenName => "given name",
            Field::Patronymic => "patronymic",
            Field::DocumentSeries => "identity document series",
            Field::DocumentNumber => "identity document number",
            Field::DocumentType => "identity document type",
            Field::SchoolClass => "class",
            Field::Category => "participant category",
            Field::ExamKind => "exam kind",
            Field::ExamDate => "exam date",
            Field::Date => "date",
            Field::Timestamp => "time",
            Field::UtcOffset => "UTC offset",
            Field::RoomCode => "room code",
            Field::RoomCapacity => "room capacity",
            Field::ActNumber => "act number",
            Field::Attendance => "attendance status",
            Field::RoomLogEntry => "room log entry",
            Field::Variant => "variant",
            Field::Criterion => "criterion",
            Field::Attempt => "attempt",
            Field::Reason => "reason",
            Field::DocId => "document id",
            Field::RecordHash => "record hash",
            Field::YearData => "year data value",
        })
    }
}

/// A value refused by a domain constructor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The value does not have the shape the field requires.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: Field,
        value: String,
        reason: &'static str,
    },
    /// A room already holds as many participants as it has seats.
    #[error("room {room} is full: {capacity} seats, cannot assign participant {participant}")]
    RoomFull {
        room: String,
        capacity: u16,
        participant: String,
    },
    /// A participant was assigned to a room the plan does not have.
    #[error("unknown room {room:?} for participant {participant}")]
    UnknownRoom { room: String, participant: String },
    /// The same room code was declared twice.
    #[error("room {room:?} is declared twice")]
    DuplicateRoom { room: String },
    /// The same participant appears twice where each may appear once.
    #[error("participant {participant} appears twice")]
    DuplicateParticipant { participant: String },
}

impl DomainError {
    pub(crate) fn invalid(field: Field, value: impl fmt::Display, reason: &'static str) -> Self {
        DomainError::Invalid {
            field,
            value: value.to_string(),
            reason,
        }
    }
}
