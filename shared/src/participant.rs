//! Exam participants: identity, class and category (ОВЗ categories included).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codes::{ParticipantId, id_enum};
use crate::error::{DomainError, Field};

/// The longest name part (surname, given name, patronymic), in characters.
pub const NAME_CHARS_MAX: usize = 64;
/// The longest identity document series, in characters (after removing spaces).
pub const DOCUMENT_SERIES_CHARS_MAX: usize = 10;
/// The longest identity document number, in characters (after removing spaces).
pub const DOCUMENT_NUMBER_CHARS_MAX: usize = 16;

id_enum!(
    /// The participant category that decides which criteria are scored and the зачёт threshold
    /// (seed 002, appendix 2). The ids are a contract shared with the rules file.
    ///
    /// A participant with musculoskeletal disorders *and* another condition is scored "per that
    /// condition" (appendix 2): record them under the other condition's category.
    Category, Field::Category, {
        /// No special conditions.
        Standard = "standard", "участники без ОВЗ";
        /// Deaf and late-deafened.
        Deaf = "deaf", "глухие, позднооглохшие";
        /// Hard of hearing.
        HardOfHearing = "hard-of-hearing", "слабослышащие";
        /// Severe speech disorders.
        SevereSpeech = "severe-speech", "с тяжёлыми нарушениями речи";
        /// Blind and late-blinded, reading Braille.
        BlindBraille = "blind-braille", "слепые, владеющие шрифтом Брайля";
        /// Blind and late-blinded, not reading Braille.
        BlindNoBraille = "blind-no-braille", "слепые, не владеющие шрифтом Брайля";
        /// Visually impaired.
        VisuallyImpaired = "visually-impaired", "слабовидящие";
        /// Musculoskeletal disorders with no other condition.
        Musculoskeletal = "musculoskeletal", "с нарушениями опорно-двигательного аппарата";
        /// Autism spectrum disorders.
        Autism = "autism", "с расстройствами аутистического спектра";
        /// Delayed mental development.
        DelayedDevelopment = "delayed-development", "с задержкой психического развития";
    }
);

impl Category {
    /// Whether the participant has limited health capabilities (ОВЗ): +30 minutes at ИС.
    #[must_use]
    pub fn is_ovz(self) -> bool {
        self != Category::Standard
    }
}

fn person_name(field: Field, value: &str, required: bool) -> Result<Option<String>, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return if required {
            Err(DomainError::invalid(field, value, "is empty"))
        } else {
            Ok(None)
        };
    }
    if trimmed.chars().count() > NAME_CHARS_MAX {
        return Err(DomainError::invalid(
            field,
            value,
            "is longer than 64 characters",
        ));
    }
    if !trimmed.chars().next().is_some_and(char::is_alphabetic) {
        return Err(DomainError::invalid(
            field,
            value,
            "must start with a letter",
        ));
    }
    if !trimmed
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’' | '.'))
    {
        return Err(DomainError::invalid(
            field,
            value,
            "may hold only letters, spaces, '-', apostrophes and '.'",
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// A participant's full name (ФИО). The patronymic is optional.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FullName {
    surname: String,
    given_name: String,
    patronymic: Option<String>,
}

impl FullName {
    /// Trims each part and validates it; an empty patronymic means none.
    pub fn new(surname: &str, given_name: &str, patronymic: &str) -> Result<Self, DomainError> {
        Ok(FullName {
            surname: person_name(Field::Surname, surname, true)?.unwrap_or_default(),
            given_name: person_name(Field::GivenName, given_name, true)?.unwrap_or_default(),
            patronymic: person_name(Field::Patronymic, patronymic, false)?,
        })
    }
    #[must_use]
    pub fn surname(&self) -> &str {
        &self.surname
    }
    #[must_use]
    pub fn given_name(&self) -> &str {
        &self.given_name
    }
    #[must_use]
    pub fn patronymic(&self) -> Option<&str> {
        self.patronymic.as_deref()
    }
}

impl fmt::Display for FullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.surname, self.given_name)?;
        if let Some(patronymic) = &self.patronymic {
            write!(f, " {patronymic}")?;
        }
        Ok(())
    }
}

/// An identity document's series and number, normalised: spaces removed, letters upper-cased,
/// so «32 04» and «3204» are the same series. Participants look their results up by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityDocument {
    series: String,
    number: String,
}

id_enum!(
    /// The kind of an identity document, as the federal exchange's reference list names them.
    DocumentType, Field::DocumentType, {
        /// Паспорт гражданина Российской Федерации.
        PassportRu = "passport-ru", "паспорт гражданина Российской Федерации";
        /// Свидетельство о рождении.
        BirthCertificate = "birth-certificate", "свидетельство о рождении";
        /// Паспорт иностранного гражданина.
        ForeignPassport = "foreign-passport", "паспорт иностранного гражданина";
        /// Вид на жительство.
        ResidencePermit = "residence-permit", "вид на жительство";
        /// Временное удостоверение личности гражданина Российской Федерации.
        TemporaryId = "temporary-id", "временное удостоверение личности";
        /// Иной документ.
        Other = "other", "иной документ";
    }
);

impl DocumentType {
    /// A document type by the name a list prints: the full name or a short one («паспорт»,
    /// «паспорт РФ», «свид. о рождении»), in any case, «ё» or «е».
    pub fn from_name(name: &str) -> Result<Self, DomainError> {
        let key: String = name
            .trim()
            .to_lowercase()
            .replace('ё', "е")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let short = match key.as_str() {
            "паспорт" | "паспорт рф" | "паспорт гражданина рф" => {
                Some(DocumentType::PassportRu)
            }
            "свид. о рождении" | "свидетельство о рождении рф" => {
                Some(DocumentType::BirthCertificate)
            }
            "иностранный паспорт" => Some(DocumentType::ForeignPassport),
            "временное удостоверение" => Some(DocumentType::TemporaryId),
            "другой документ" | "иной" | "другое" => {
                Some(DocumentType::Other)
            }
            _ => None,
        };
        short
            .or_else(|| {
                DocumentType::ALL
                    .iter()
                    .copied()
                    .find(|t| t.display_name().to_lowercase().replace('ё', "е") == key)
            })
            .ok_or_else(|| {
                DomainError::invalid(
                    Field::DocumentType,
                    name,
                    "is not a document type the federal reference list names",
                )
            })
    }
}

impl IdentityDocument {
    /// `series` may be empty (some documents have none); `number` may not.
    pub fn new(series: &str, number: &str) -> Result<Self, DomainError> {
        let normalise = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_uppercase)
                .collect()
        };
        let (series_norm, number_norm) = (normalise(series), normalise(number));
        if series_norm.chars().count() > DOCUMENT_SERIES_CHARS_MAX {
            return Err(DomainError::invalid(
                Field::DocumentSeries,
                series,
                "is longer than 10 characters",
            ));
        }
        if !series_norm.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err(DomainError::invalid(
                Field::DocumentSeries,
                series,
                "may hold only letters, digits and '-'",
            ));
        }
        if number_norm.is_empty() {
            return Err(DomainError::invalid(
                Field::DocumentNumber,
                number,
                "is empty",
            ));
        }
        if number_norm.chars().count() > DOCUMENT_NUMBER_CHARS_MAX {
            return Err(DomainError::invalid(
                Field::DocumentNumber,
                number,
                "is longer than 16 characters",
            ));
        }
        if !number_norm.chars().all(char::is_alphanumeric) {
            return Err(DomainError::invalid(
                Field::DocumentNumber,
                number,
                "may hold only letters and digits",
            ));
        }
        Ok(IdentityDocument {
            series: series_norm,
            number: number_norm,
        })
    }
    #[must_use]
    pub fn series(&self) -> &str {
        &self.series
    }
    #[must_use]
    pub fn number(&self) -> &str {
        &self.number
    }
}

/// A school class: the grade (1–11) and an optional letter, e.g. «9А», «9», «11Б».
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchoolClass {
    grade: u8,
    letter: String,
}

impl SchoolClass {
    pub fn new(text: &str) -> Result<Self, DomainError> {
        let text_trimmed = text.trim();
        let digits = text_trimmed
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        let grade: u8 = text_trimmed
            .get(..digits)
            .and_then(|d| d.parse().ok())
            .filter(|g| (1..=11).contains(g))
            .ok_or_else(|| {
                DomainError::invalid(Field::SchoolClass, text, "must start with a grade 1–11")
            })?;
        let letter = text_trimmed
            .get(digits..)
            .unwrap_or_default()
            .trim_start_matches([' ', '-']);
        if letter.chars().count() > 2 || !letter.chars().all(char::is_alphabetic) {
            return Err(DomainError::invalid(
                Field::SchoolClass,
                text,
                "the grade may be followed only by one or two letters",
            ));
        }
        Ok(SchoolClass {
            grade,
            letter: letter.to_uppercase(),
        })
    }
    #[must_use]
    pub fn grade(&self) -> u8 {
        self.grade
    }
}

impl fmt::Display for SchoolClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.grade, self.letter)
    }
}

/// A participant of an exam, as the roster holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: ParticipantId,
    pub name: FullName,
    pub document: IdentityDocument,
    pub class: SchoolClass,
    pub category: Category,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_and_value(err: DomainError) -> (Field, String) {
        match err {
            DomainError::Invalid { field, value, .. } => (field, value),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn names_are_trimmed_and_validated() {
        let name = FullName::new(" Иванова ", "Анна-Мария", "").unwrap();
        assert_eq!(name.to_string(), "Иванова Анна-Мария");
        assert_eq!(name.patronymic(), None);
        assert_eq!(
            field_and_value(FullName::new("", "Анна", "").unwrap_err()),
            (Field::Surname, String::new())
        );
        assert_eq!(
            field_and_value(FullName::new("Иванова", "Анна1", "").unwrap_err()),
            (Field::GivenName, "Анна1".into())
        );
        assert_eq!(
            field_and_value(FullName::new("Иванова", "Анна", "-Петровна").unwrap_err()).0,
            Field::Patronymic
        );
        let long = "Я".repeat(65);
        assert_eq!(
            field_and_value(FullName::new(&long, "Анна", "").unwrap_err()).0,
            Field::Surname
        );
    }

    #[test]
    fn documents_are_normalised() {
        let a = IdentityDocument::new("32 04", "123456").unwrap();
        let b = IdentityDocument::new("3204", " 123 456 ").unwrap();
        assert_eq!(a, b);
        let birth = IdentityDocument::new("iv-ло", "654321").unwrap();
        assert_eq!(birth.series(), "IV-ЛО");
        assert_eq!(
            field_and_value(IdentityDocument::new("3204", "").unwrap_err()).0,
            Field::DocumentNumber
        );
        assert_eq!(
            field_and_value(IdentityDocument::new("32/04", "1").unwrap_err()),
            (Field::DocumentSeries, "32/04".into())
        );
        assert!(IdentityDocument::new("", "12345678901234567").is_err());
    }

    #[test]
    fn classes_parse() {
        assert_eq!(SchoolClass::new("9а").unwrap().to_string(), "9А");
        assert_eq!(SchoolClass::new("11 Б").unwrap().to_string(), "11Б");
        assert_eq!(SchoolClass::new("9").unwrap().grade(), 9);
        for bad in ["", "А9", "12А", "0", "9АБВ", "9!"] {
            assert_eq!(
                field_and_value(SchoolClass::new(bad).unwrap_err()).0,
                Field::SchoolClass,
                "{bad}"
            );
        }
    }

    #[test]
    fn every_category_round_trips_and_only_standard_is_not_ovz() {
        assert_eq!(Category::ALL.len(), 10);
        for category in Category::ALL {
            assert_eq!(category.id().parse::<Category>().unwrap(), *category);
            assert_eq!(category.is_ovz(), *category != Category::Standard);
        }
        assert_eq!(
            field_and_value("blind".parse::<Category>().unwrap_err()),
            (Field::Category, "blind".into())
        );
    }
}
