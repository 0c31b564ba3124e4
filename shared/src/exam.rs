//! Exams: kind, date, main or additional day.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::calendar::{Date, is_dates};
use crate::codes::id_enum;
use crate::error::{DomainError, Field};

id_enum!(
    /// The kind of an exam. итоговое собеседование is the one served end to end first.
    ExamKind, Field::ExamKind, {
        /// Итоговое собеседование по русскому языку (admission to ГИА-9).
        Is = "is", "итоговое собеседование";
        /// Итоговое сочинение (изложение) (admission to ГИА-11).
        Essay = "essay", "итоговое сочинение";
        /// ОГЭ (ГИА-9).
        Oge = "oge", "ОГЭ";
        /// ЕГЭ (ГИА-11).
        Ege = "ege", "ЕГЭ";
    }
);

id_enum!(
    /// Whether an exam day is the main date or an additional (retake) date.
    ExamSession, Field::ExamDate, {
        /// The main date.
        Main = "main", "основной срок";
        /// An additional date (retakes, valid absences).
        Additional = "additional", "дополнительный срок";
    }
);

/// One exam day of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Exam {
    kind: ExamKind,
    date: Date,
    session: ExamSession,
}

impl Exam {
    /// An exam day. For итоговое собеседование the date must be one of the year's dates (see
    /// [`is_dates`]) and agree with `session`; other kinds are not checked against a calendar yet.
    pub fn new(kind: ExamKind, date: Date, session: ExamSession) -> Result<Self, DomainError> {
        if kind == ExamKind::Is {
            let [main, march, april] = is_dates(date.year())
                .ok_or_else(|| DomainError::invalid(Field::ExamDate, date, "year out of range"))?;
            let fits = match session {
                ExamSession::Main => date == main,
                ExamSession::Additional => date == march || date == april,
            };
            if !fits {
                return Err(DomainError::invalid(
                    Field::ExamDate,
                    date,
                    match session {
                        ExamSession::Main => {
                            "the main date of итоговое собеседование is the second Wednesday of February"
                        }
                        ExamSession::Additional => {
                            "additional dates of итоговое собеседование are the second working Wednesday of March and the third Monday of April"
                        }
                    },
                ));
            }
        }
        Ok(Exam {
            kind,
            date,
            session,
        })
    }

    #[must_use]
    pub fn kind(self) -> ExamKind {
        self.kind
    }
    #[must_use]
    pub fn date(self) -> Date {
        self.date
    }
    #[must_use]
    pub fn session(self) -> ExamSession {
        self.session
    }
    #[must_use]
    pub fn id(self) -> ExamId {
        ExamId {
            kind: self.kind,
            date: self.date,
        }
    }
}

/// The id of an exam day: its kind and date, written `is-2024-02-14`. Used in document ids and
/// signed records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExamId {
    kind: ExamKind,
    date: Date,
}

impl ExamId {
    #[must_use]
    pub fn new(kind: ExamKind, date: Date) -> Self {
        ExamId { kind, date }
    }
    #[must_use]
    pub fn kind(self) -> ExamKind {
        self.kind
    }
    #[must_use]
    pub fn date(self) -> Date {
        self.date
    }
}

impl ExamId {
    /// The exam as pages name it: «Итоговое собеседование, 14.02.2024».
    #[must_use]
    pub fn name_ru(self) -> String {
        let kind = match self.kind {
            ExamKind::Is => "Итоговое собеседование",
            ExamKind::Essay => "Итоговое сочинение (изложение)",
            ExamKind::Oge => "ОГЭ",
            ExamKind::Ege => "ЕГЭ",
        };
        format!("{kind}, {}", self.date.ru())
    }
}

impl fmt::Display for ExamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind, self.date)
    }
}

impl FromStr for ExamId {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let (kind, date) = text.split_once('-').ok_or_else(|| {
            DomainError::invalid(Field::ExamKind, text, "must be KIND-YYYY-MM-DD")
        })?;
        Ok(ExamId {
            kind: kind.parse()?,
            date: date.parse()?,
        })
    }
}

crate::text::serde_via_text!(ExamId);

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn an_exam_is_named_as_people_read_it() {
        let is: ExamId = "is-2024-02-14".parse().unwrap();
        assert_eq!(is.name_ru(), "Итоговое собеседование, 14.02.2024");
        let essay: ExamId = "essay-2023-12-06".parse().unwrap();
        assert_eq!(
            essay.name_ru(),
            "Итоговое сочинение (изложение), 06.12.2023"
        );
    }

    #[test]
    fn is_dates_are_checked_against_the_session() {
        assert!(Exam::new(ExamKind::Is, date("2024-02-14"), ExamSession::Main).is_ok());
        assert!(Exam::new(ExamKind::Is, date("2024-03-13"), ExamSession::Additional).is_ok());
        assert!(Exam::new(ExamKind::Is, date("2024-04-15"), ExamSession::Additional).is_ok());
        let err = Exam::new(ExamKind::Is, date("2024-03-13"), ExamSession::Main).unwrap_err();
        assert!(
            matches!(err, DomainError::Invalid { field: Field::ExamDate, ref value, .. } if value == "2024-03-13")
        );
        assert!(Exam::new(ExamKind::Is, date("2024-02-15"), ExamSession::Main).is_err());
        // Other kinds are not tied to a calendar yet.
        assert!(Exam::new(ExamKind::Ege, date("2024-05-23"), ExamSession::Main).is_ok());
    }

    #[test]
    fn exam_id_round_trips() {
        let exam = Exam::new(ExamKind::Is, date("2024-02-14"), ExamSession::Main).unwrap();
        assert_eq!(exam.id().to_string(), "is-2024-02-14");
        assert_eq!("is-2024-02-14".parse::<ExamId>().unwrap(), exam.id());
        assert!("xx-2024-02-14".parse::<ExamId>().is_err());
        assert!("is-2024-02-31".parse::<ExamId>().is_err());
        assert!("is".parse::<ExamId>().is_err());
    }
}
