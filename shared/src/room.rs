//! Rooms (аудитории), room assignment, attendance and the room log (ведомость учёта).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::Timestamp;
use crate::codes::{ParticipantId, PersonId, RoomCode};
use crate::error::{DomainError, Field};

/// The most seats a room may declare.
pub const ROOM_CAPACITY_MAX: u16 = 500;
/// The longest act number, in characters.
pub const ACT_NUMBER_CHARS_MAX: usize = 32;
/// The time a participant's answer at ИС may take (seed 002 §14: 15–16 minutes).
pub const ANSWER_MS: i64 = 16 * 60_000;
/// The time added for a participant with ОВЗ, and for a disabled participant (инвалид,
/// ребёнок-инвалид) whatever their category (seed 002 §14, §59).
pub const EXTRA_TIME_MS: i64 = 30 * 60_000;

/// The time a participant's answer may take: [`ANSWER_MS`], plus [`EXTRA_TIME_MS`] for ОВЗ or a
/// disability.
#[must_use]
pub fn allowed_ms(category: crate::participant::Category, disabled: bool) -> i64 {
    if category.is_ovz() || disabled {
        ANSWER_MS + EXTRA_TIME_MS
    } else {
        ANSWER_MS
    }
}

/// The longest a participant may spend in the room at ИС: 16 minutes, +30 for ОВЗ, with generous
/// slack for pauses. A log entry longer than this is a typing error.
pub const ROOM_LOG_ENTRY_MS_MAX: i64 = 3 * 60 * 60 * 1000;

/// A room and its number of seats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    code: RoomCode,
    capacity: u16,
}

impl Room {
    pub fn new(code: RoomCode, capacity: u16) -> Result<Self, DomainError> {
        if capacity == 0 || capacity > ROOM_CAPACITY_MAX {
            return Err(DomainError::invalid(
                Field::RoomCapacity,
                capacity,
                "must be 1..=500",
            ));
        }
        Ok(Room { code, capacity })
    }
    #[must_use]
    pub fn code(self) -> RoomCode {
        self.code
    }
    #[must_use]
    pub fn capacity(self) -> u16 {
        self.capacity
    }
}

/// The rooms of a school for an exam and who sits in which. Assignment respects capacity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomPlan {
    rooms: BTreeMap<RoomCode, Room>,
    assigned: BTreeMap<ParticipantId, RoomCode>,
}

impl RoomPlan {
    /// A plan with `rooms`; an error if a room code repeats.
    pub fn new(rooms: impl IntoIterator<Item = Room>) -> Result<Self, DomainError> {
        let mut plan = RoomPlan::default();
        for room in rooms {
            if plan.rooms.insert(room.code, room).is_some() {
                return Err(DomainError::DuplicateRoom {
                    room: room.code.to_string(),
                });
            }
        }
        Ok(plan)
    }

    /// How many participants sit in `room`.
    #[must_use]
    pub fn occupancy(&self, room: RoomCode) -> usize {
        self.assigned.values().filter(|r| **r == room).count()
    }

    /// Assigns (or moves) `participant` to `room`; refused when the room is unknown or full.
    /// On error the plan is unchanged.
    pub fn assign(
        &mut self,
        participant: ParticipantId,
        room: RoomCode,
    ) -> Result<(), DomainError> {
        let target = self
            .rooms
            .get(&room)
            .ok_or_else(|| DomainError::UnknownRoom {
                room: room.to_string(),
                participant: participant.to_string(),
            })?;
        if self.assigned.get(&participant) == Some(&room) {
            return Ok(());
        }
        if self.occupancy(room) >= usize::from(target.capacity) {
            return Err(DomainError::RoomFull {
                room: room.to_string(),
                capacity: target.capacity,
                participant: participant.to_string(),
            });
        }
        self.assigned.insert(participant, room);
        debug_assert!(self.occupancy(room) <= usize::from(target.capacity));
        Ok(())
    }

    #[must_use]
    pub fn room_of(&self, participant: ParticipantId) -> Option<RoomCode> {
        self.assigned.get(&participant).copied()
    }

    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }
}

/// The number of an act (акт) as written on the paper form. Read from the wire through
/// [`ActNumber::new`], so a stored or sent number is always a valid one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActNumber(String);

impl TryFrom<String> for ActNumber {
    type Error = DomainError;
    fn try_from(text: String) -> Result<Self, DomainError> {
        ActNumber::new(&text)
    }
}

impl From<ActNumber> for String {
    fn from(a: ActNumber) -> String {
        a.0
    }
}

impl ActNumber {
    pub fn new(text: &str) -> Result<Self, DomainError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid(Field::ActNumber, text, "is empty"));
        }
        if trimmed.chars().count() > ACT_NUMBER_CHARS_MAX {
            return Err(DomainError::invalid(
                Field::ActNumber,
                text,
                "is longer than 32 characters",
            ));
        }
        if !trimmed
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | '.' | '№' | ' '))
        {
            return Err(DomainError::invalid(
                Field::ActNumber,
                text,
                "may hold only letters, digits, spaces and '-', '/', '.', '№'",
            ));
        }
        Ok(ActNumber(trimmed.to_owned()))
    }
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The highest variant number a КИМ may have. The materials of one date hold a few variants; the
/// bound only stops a typing error.
pub const VARIANT_MAX: u16 = 999;

/// The number of the КИМ variant a participant answered (seed 002 §42: said into the recording
/// before the answer). A same-day retake is with a variant the participant has not worked with
/// (§45).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Variant(u16);

impl Variant {
    pub fn new(number: u16) -> Result<Self, DomainError> {
        if number == 0 || number > VARIANT_MAX {
            return Err(DomainError::invalid(
                Field::Variant,
                number,
                "must be 1..=999",
            ));
        }
        Ok(Variant(number))
    }
    #[must_use]
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for Variant {
    type Error = DomainError;
    fn try_from(number: u16) -> Result<Self, DomainError> {
        Variant::new(number)
    }
}

impl From<Variant> for u16 {
    fn from(v: Variant) -> u16 {
        v.0
    }
}

impl std::str::FromStr for Variant {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let number = text
            .trim()
            .parse::<u16>()
            .map_err(|_| DomainError::invalid(Field::Variant, text, "must be a number 1..=999"))?;
        Variant::new(number)
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a participant took part (seed 002 §8: «Н» marks, acts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Attendance {
    /// Took part.
    Present,
    /// Did not appear: «Н» in the participant list.
    Absent,
    /// Did not finish for a valid reason: акт о досрочном завершении.
    FinishedEarly { act: ActNumber },
    /// Removed for a violation of the procedure: акт об удалении.
    Removed { act: ActNumber },
}

impl Attendance {
    /// The attendance a status word (`present`, `absent`, `early`, `removed`: the words of the
    /// CLI and the admin socket) and an act number name; the act is read only for the last two.
    pub fn from_words(status: &str, act: &str) -> Result<Self, DomainError> {
        Ok(match status {
            "present" => Attendance::Present,
            "absent" => Attendance::Absent,
            "early" => Attendance::FinishedEarly {
                act: ActNumber::new(act)?,
            },
            "removed" => Attendance::Removed {
                act: ActNumber::new(act)?,
            },
            other => {
                return Err(DomainError::invalid(
                    Field::Attendance,
                    other,
                    "must be present, absent, early or removed",
                ));
            }
        })
    }

    /// The status word of [`Attendance::from_words`].
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Attendance::Present => "present",
            Attendance::Absent => "absent",
            Attendance::FinishedEarly { .. } => "early",
            Attendance::Removed { .. } => "removed",
        }
    }

    /// The act that ended the attempt, if one did.
    #[must_use]
    pub fn act(&self) -> Option<&ActNumber> {
        match self {
            Attendance::FinishedEarly { act } | Attendance::Removed { act } => Some(act),
            Attendance::Present | Attendance::Absent => None,
        }
    }

    /// The mark written in the participant list and the room log.
    #[must_use]
    pub fn mark(&self) -> &'static str {
        match self {
            Attendance::Present => "",
            Attendance::Absent => "Н",
            Attendance::FinishedEarly { .. } => "досрочно",
            Attendance::Removed { .. } => "удалён",
        }
    }
}

/// One line of the room log (ведомость учёта проведения ИС в аудитории).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomLogEntry {
    participant: ParticipantId,
    room: RoomCode,
    interviewer: PersonId,
    start: Timestamp,
    end: Timestamp,
}

impl RoomLogEntry {
    /// A log entry; `end` must be after `start` and within [`ROOM_LOG_ENTRY_MS_MAX`] of it.
    pub fn new(
        participant: ParticipantId,
        room: RoomCode,
        interviewer: PersonId,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Self, DomainError> {
        let duration_ms = end.unix_ms() - start.unix_ms();
        if duration_ms <= 0 {
            return Err(DomainError::invalid(
                Field::RoomLogEntry,
                format!("{participant}: {start} – {end}"),
                "the end must be after the start",
            ));
        }
        if duration_ms > ROOM_LOG_ENTRY_MS_MAX {
            return Err(DomainError::invalid(
                Field::RoomLogEntry,
                format!("{participant}: {start} – {end}"),
                "lasts more than 3 hours",
            ));
        }
        Ok(RoomLogEntry {
            participant,
            room,
            interviewer,
            start,
            end,
        })
    }
    #[must_use]
    pub fn participant(&self) -> ParticipantId {
        self.participant
    }
    #[must_use]
    pub fn room(&self) -> RoomCode {
        self.room
    }
    #[must_use]
    pub fn interviewer(&self) -> PersonId {
        self.interviewer
    }
    #[must_use]
    pub fn start(&self) -> Timestamp {
        self.start
    }
    #[must_use]
    pub fn end(&self) -> Timestamp {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 002 §14, §59, written out: 16 minutes; 46 for ОВЗ, and for a disabled participant of
    /// any category.
    #[test]
    fn the_time_allowed_follows_the_category_and_a_disability() {
        use crate::participant::Category;
        let minutes = |c, d| allowed_ms(c, d) / 60_000;
        assert_eq!(minutes(Category::Standard, false), 16);
        assert_eq!(minutes(Category::Standard, true), 46);
        assert_eq!(minutes(Category::Autism, false), 46);
        assert_eq!(minutes(Category::Musculoskeletal, true), 46);
    }

    fn room(code: &str, capacity: u16) -> Room {
        Room::new(RoomCode::new(code).unwrap(), capacity).unwrap()
    }
    fn pid(id: &str) -> ParticipantId {
        ParticipantId::new(id).unwrap()
    }

    #[test]
    fn capacity_is_bounded() {
        let code = RoomCode::new("101").unwrap();
        assert!(matches!(
            Room::new(code, 0),
            Err(DomainError::Invalid {
                field: Field::RoomCapacity,
                ..
            })
        ));
        assert!(Room::new(code, 501).is_err());
    }

    #[test]
    fn assignment_respects_capacity_and_known_rooms() {
        let mut plan = RoomPlan::new([room("101", 2), room("102", 1)]).unwrap();
        let (r101, r102) = (RoomCode::new("101").unwrap(), RoomCode::new("102").unwrap());
        plan.assign(pid("1"), r101).unwrap();
        plan.assign(pid("2"), r101).unwrap();
        plan.assign(pid("2"), r101).unwrap(); // re-assigning to the same room is a no-op
        let err = plan.assign(pid("3"), r101).unwrap_err();
        assert!(
            matches!(err, DomainError::RoomFull { ref participant, capacity: 2, .. } if participant == "3")
        );
        assert_eq!(
            plan.room_of(pid("3")),
            None,
            "a refused assignment leaves the plan unchanged"
        );
        plan.assign(pid("2"), r102).unwrap(); // moving frees a seat in 101
        plan.assign(pid("3"), r101).unwrap();
        assert_eq!(plan.occupancy(r101), 2);
        let err = plan
            .assign(pid("4"), RoomCode::new("999").unwrap())
            .unwrap_err();
        assert!(matches!(err, DomainError::UnknownRoom { ref room, .. } if room == "999"));
        assert!(matches!(
            RoomPlan::new([room("1", 1), room("1", 2)]),
            Err(DomainError::DuplicateRoom { .. })
        ));
    }

    #[test]
    fn acts_and_attendance() {
        assert!(ActNumber::new("  ").is_err());
        assert!(ActNumber::new("№ 12/3").is_ok());
        assert!(ActNumber::new("a;b").is_err());
        assert_eq!(Attendance::Absent.mark(), "Н");
    }

    #[test]
    fn room_log_entries_end_after_they_start() {
        let t0: Timestamp = "2024-02-14T09:00:00+07:00".parse().unwrap();
        let (p, r, i) = (
            pid("1"),
            RoomCode::new("101").unwrap(),
            PersonId::new("int-1").unwrap(),
        );
        assert!(RoomLogEntry::new(p, r, i, t0, t0.plus_ms(16 * 60_000)).is_ok());
        assert!(matches!(
            RoomLogEntry::new(p, r, i, t0, t0),
            Err(DomainError::Invalid {
                field: Field::RoomLogEntry,
                ..
            })
        ));
        assert!(RoomLogEntry::new(p, r, i, t0, t0.plus_ms(-1)).is_err());
        assert!(RoomLogEntry::new(p, r, i, t0, t0.plus_ms(ROOM_LOG_ENTRY_MS_MAX + 1)).is_err());
    }
}
