//! Organisation codes, people's ids and roles.
//!
//! Codes are digit strings as the regional information system (РИС) keeps them; leading zeros
//! are significant, so they are text, not numbers. The hierarchy (school → municipality → region)
//! is not encoded in the codes: it lives in certificates and in the region directory.

use std::fmt;

use crate::error::{DomainError, Field};
use crate::text::{check_token, inline_id};

fn digits(field: Field, value: &str, len_min: usize, len_max: usize) -> Result<(), DomainError> {
    check_token(
        field,
        value,
        len_max,
        |c| c.is_ascii_digit(),
        "must be digits only",
    )?;
    if value.len() < len_min {
        return Err(DomainError::invalid(field, value, "is too short"));
    }
    Ok(())
}

inline_id!(
    /// The code of a region (субъект РФ): exactly two digits, e.g. `42` for Кузбасс.
    RegionCode,
    2,
    Field::RegionCode,
    |v| digits(Field::RegionCode, v, 2, 2)
);

inline_id!(
    /// The code of a municipality (МОУО) within its region: 1 to 8 digits.
    MunicipalityCode,
    8,
    Field::MunicipalityCode,
    |v| digits(Field::MunicipalityCode, v, 1, 8)
);

inline_id!(
    /// The code of a school (ОО) within its region: 1 to 12 digits.
    SchoolCode,
    12,
    Field::SchoolCode,
    |v| digits(Field::SchoolCode, v, 1, 12)
);

inline_id!(
    /// The id of a person who works on exam day (expert, interviewer, organiser, operator…):
    /// 1 to 32 characters of `A-Z a-z 0-9 . _ -`.
    PersonId,
    32,
    Field::PersonId,
    |v| check_token(
        Field::PersonId,
        v,
        32,
        |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
        "may hold only latin letters, digits, '.', '_' and '-'"
    )
);

inline_id!(
    /// The id of an exam participant as the РИС assigns it (a number or a UUID):
    /// 1 to 40 characters of `A-Z a-z 0-9 -`.
    ParticipantId,
    40,
    Field::ParticipantId,
    |v| check_token(
        Field::ParticipantId,
        v,
        40,
        |c| c.is_ascii_alphanumeric() || c == '-',
        "may hold only latin letters, digits and '-'"
    )
);

inline_id!(
    /// The code of a room (аудитория) in a school, e.g. `101` or `2Б`: 1 to 16 bytes of letters,
    /// digits, `-`, `.` and `/`.
    RoomCode,
    16,
    Field::RoomCode,
    |v| check_token(
        Field::RoomCode,
        v,
        16,
        |c| c.is_alphanumeric() || matches!(c, '-' | '.' | '/'),
        "may hold only letters, digits, '-', '.' and '/'"
    )
);

/// Declares a closed enum with a stable lowercase id (a contract in files, certificates and on
/// the wire) and a Russian display name.
macro_rules! id_enum {
    ($(#[$meta:meta])* $name:ident, $field:expr, { $($(#[$vmeta:meta])* $variant:ident = $id:literal, $ru:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable id used in files, certificates and on the wire.
            #[must_use]
            pub const fn id(self) -> &'static str {
                match self { $($name::$variant => $id,)+ }
            }

            /// The name shown to people (Russian).
            #[must_use]
            pub const fn display_name(self) -> &'static str {
                match self { $($name::$variant => $ru,)+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::DomainError;
            fn from_str(value: &str) -> Result<Self, $crate::error::DomainError> {
                match value {
                    $($id => Ok($name::$variant),)+
                    _ => Err($crate::error::DomainError::invalid($field, value, concat!("must be one of:", $(" ", $id,)+))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.id())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.id())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use id_enum;

id_enum!(
    /// The role of a node: what its certificate lets it read and write.
    NodeRole, Field::Role, {
        /// A school (ОО).
        School = "school", "образовательная организация";
        /// A municipal education office (МОУО) hub.
        Municipality = "municipality", "МОУО";
        /// The regional information processing centre (РЦОИ) hub.
        Rcoi = "rcoi", "РЦОИ";
    }
);

id_enum!(
    /// The role of a person on exam day (seed 002 §8) or at the РЦОИ.
    PersonRole, Field::Role, {
        /// Ответственный организатор: checks the roster, assigns rooms, marks absence, writes acts.
        Organiser = "organiser", "ответственный организатор";
        /// Собеседник: checks identity, keeps the room log.
        Interviewer = "interviewer", "собеседник";
        /// Эксперт: scores each criterion and signs the score sheet.
        Expert = "expert", "эксперт";
        /// Технический специалист: receives materials, runs the audio recording.
        Technician = "technician", "технический специалист";
        /// Руководитель ОО: signs the commission order (who interviews and scores in which room).
        Head = "head", "руководитель ОО";
        /// Организатор проведения (in the corridor): calls the next participant into each room
        /// and marks «Н» for the absent.
        Corridor = "corridor", "организатор проведения";
        /// An operator of the РЦОИ: verifies, settles conflicts, publishes results.
        Operator = "operator", "оператор РЦОИ";
        /// A coordinator of a МОУО: watches the municipality's schools on its hub's pages.
        Coordinator = "coordinator", "координатор МОУО";
    }
);

/// The code of any organisation, tagged with its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgCode {
    /// The РЦОИ of a region.
    Rcoi(RegionCode),
    /// A municipality (МОУО).
    Municipality(MunicipalityCode),
    /// A school (ОО).
    School(SchoolCode),
}

impl OrgCode {
    #[must_use]
    pub fn role(self) -> NodeRole {
        match self {
            OrgCode::Rcoi(_) => NodeRole::Rcoi,
            OrgCode::Municipality(_) => NodeRole::Municipality,
            OrgCode::School(_) => NodeRole::School,
        }
    }

    /// The school's code, for a school.
    #[must_use]
    pub fn school(self) -> Option<SchoolCode> {
        match self {
            OrgCode::School(code) => Some(code),
            _ => None,
        }
    }

    /// Parses `code` as the code of an organisation of `role`.
    pub fn parse(role: NodeRole, code: &str) -> Result<Self, DomainError> {
        Ok(match role {
            NodeRole::Rcoi => OrgCode::Rcoi(RegionCode::new(code)?),
            NodeRole::Municipality => OrgCode::Municipality(MunicipalityCode::new(code)?),
            NodeRole::School => OrgCode::School(SchoolCode::new(code)?),
        })
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrgCode::Rcoi(code) => write!(f, "rcoi:{code}"),
            OrgCode::Municipality(code) => write!(f, "municipality:{code}"),
            OrgCode::School(code) => write!(f, "school:{code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(err: DomainError) -> (Field, String, &'static str) {
        match err {
            DomainError::Invalid {
                field,
                value,
                reason,
            } => (field, value, reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn region_code_is_two_digits() {
        assert_eq!(RegionCode::new("42").unwrap().as_str(), "42");
        let (field, value, reason) = reason_of(RegionCode::new("4").unwrap_err());
        assert_eq!(
            (field, value.as_str(), reason),
            (Field::RegionCode, "4", "is too short")
        );
        let (_, _, reason) = reason_of(RegionCode::new("420").unwrap_err());
        assert_eq!(reason, "is too long");
        let (_, _, reason) = reason_of(RegionCode::new("4a").unwrap_err());
        assert_eq!(reason, "must be digits only");
        let (_, _, reason) = reason_of(RegionCode::new("").unwrap_err());
        assert_eq!(reason, "is empty");
    }

    #[test]
    fn school_and_municipality_codes_keep_leading_zeros() {
        assert_eq!(SchoolCode::new("000123").unwrap().to_string(), "000123");
        assert_eq!(MunicipalityCode::new("01").unwrap().to_string(), "01");
        assert!(SchoolCode::new("1234567890123").is_err());
        assert!(MunicipalityCode::new("12 3").is_err());
    }

    #[test]
    fn person_participant_and_room_ids_refuse_stray_characters() {
        assert!(PersonId::new("exp-4201-01.a_b").is_ok());
        let (field, value, _) = reason_of(PersonId::new("эксперт").unwrap_err());
        assert_eq!((field, value.as_str()), (Field::PersonId, "эксперт"));
        assert!(ParticipantId::new("3f2a9c1e-0000-4000-8000-000000000001").is_ok());
        assert!(ParticipantId::new("a b").is_err());
        assert!(RoomCode::new("2Б").is_ok());
        assert!(RoomCode::new("каб 5").is_err());
        assert!(
            RoomCode::new("ааааааааа").is_err(),
            "18 bytes is over the limit"
        );
    }

    #[test]
    fn roles_round_trip_through_their_ids() {
        for role in NodeRole::ALL {
            assert_eq!(role.id().parse::<NodeRole>().unwrap(), *role);
        }
        for role in PersonRole::ALL {
            assert_eq!(role.id().parse::<PersonRole>().unwrap(), *role);
        }
        let (field, value, reason) = reason_of("teacher".parse::<PersonRole>().unwrap_err());
        assert_eq!((field, value.as_str()), (Field::Role, "teacher"));
        assert!(reason.contains("expert"));
    }

    #[test]
    fn org_code_parses_by_role() {
        let code = OrgCode::parse(NodeRole::School, "420101").unwrap();
        assert_eq!(code.role(), NodeRole::School);
        assert_eq!(code.to_string(), "school:420101");
        assert!(OrgCode::parse(NodeRole::Rcoi, "420").is_err());
    }
}
