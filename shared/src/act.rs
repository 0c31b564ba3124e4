//! Acts that end an attempt (seed 002 §45, §48, §49; its appendices 3 and 4): «Акт о досрочном
//! завершении итогового собеседования по уважительным причинам» and «Акт об удалении участника
//! итогового собеседования». The school's responsible organiser signs each with their person key
//! (a signed statement, `crate::statement`); it is stored in the school's protocol under
//! `act/PARTICIPANT/ATTEMPT`, beside the organiser's certificate.
//!
//! An attempt with an act is not scored: a school refuses a sheet for it when it is handed in, and
//! the РЦОИ refuses one on receipt (`crate::ingest`).

use std::collections::BTreeMap;
use std::fmt;

use crate::calendar::Timestamp;
use crate::codes::{OrgCode, ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode};
use crate::exam::ExamId;
use crate::record::{Attempt, SheetSubject, SignerDirectory};
use crate::room::ActNumber;
use crate::statement::{Fields, Statement, StatementError, StatementKind};

/// The longest text an act carries (what was violated, the other objective reason), in
/// characters.
pub const ACT_TEXT_CHARS_MAX: usize = 500;

/// Why an attempt was finished early (§45, §48): the reasons the order names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EarlyReason {
    /// The participant's health.
    Health,
    /// The recording of the answer is bad (§45: the participant may retake the same day with
    /// another variant).
    BadRecording,
    /// Another objective reason, said in the act's text.
    Other,
}

impl EarlyReason {
    pub const ALL: [EarlyReason; 3] = [
        EarlyReason::Health,
        EarlyReason::BadRecording,
        EarlyReason::Other,
    ];

    /// The id in the signed record and on the wire.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            EarlyReason::Health => "health",
            EarlyReason::BadRecording => "bad-recording",
            EarlyReason::Other => "other",
        }
    }

    /// As the act names it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EarlyReason::Health => "по состоянию здоровья",
            EarlyReason::BadRecording => "некачественная аудиозапись ответа",
            EarlyReason::Other => "иные объективные причины",
        }
    }
}

impl std::str::FromStr for EarlyReason {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        EarlyReason::ALL
            .into_iter()
            .find(|r| r.id() == text)
            .ok_or_else(|| format!("unknown reason {text:?}: health, bad-recording or other"))
    }
}

/// Which act, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "act", content = "reason", rename_all = "kebab-case")]
pub enum ActKind {
    /// «Акт о досрочном завершении по уважительным причинам» (appendix 3).
    Early(EarlyReason),
    /// «Акт об удалении» for a violation of the procedure (§49, appendix 4); the text says what
    /// was violated.
    Removal,
}

impl ActKind {
    /// The act's title.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            ActKind::Early(_) => {
                "Акт о досрочном завершении итогового собеседования по уважительным причинам"
            }
            ActKind::Removal => "Акт об удалении участника итогового собеседования",
        }
    }

    /// Whether the text must say something: what was violated, or the other reason.
    #[must_use]
    pub fn needs_text(self) -> bool {
        matches!(self, ActKind::Removal | ActKind::Early(EarlyReason::Other))
    }
}

impl fmt::Display for ActKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActKind::Early(reason) => write!(f, "early completion ({})", reason.id()),
            ActKind::Removal => f.write_str("removal"),
        }
    }
}

/// An act as the organiser signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Act {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub attempt: Attempt,
    pub room: RoomCode,
    pub kind: ActKind,
    /// What was violated (removal), the other objective reason, or any note; may be empty for
    /// health and a bad recording.
    pub text: String,
    pub number: ActNumber,
    pub organiser: PersonId,
    pub at: Timestamp,
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

impl Act {
    /// Checks what the act says by itself: a text where one is needed, within its bound, on
    /// one line.
    pub fn check(&self) -> Result<(), StatementError> {
        let text = self.text.trim();
        if self.kind.needs_text() && text.is_empty() {
            return Err(invalid(match self.kind {
                ActKind::Removal => "a removal act must say what was violated",
                _ => "an act for another objective reason must say which",
            }));
        }
        if text.chars().count() > ACT_TEXT_CHARS_MAX {
            return Err(invalid(format!(
                "the act's text is longer than {ACT_TEXT_CHARS_MAX} characters"
            )));
        }
        Ok(())
    }

    fn fields(&self) -> Fields {
        let (act, reason) = match self.kind {
            ActKind::Early(reason) => ("early", reason.id()),
            ActKind::Removal => ("removal", ""),
        };
        Fields::new()
            .with("exam", self.exam)
            .with("school", self.school)
            .with("participant", self.participant)
            .with("attempt", self.attempt.get())
            .with("room", self.room)
            .with("act", act)
            .with("reason", reason)
            .with("text", self.text.trim())
            .with("number", self.number.as_str())
            .with("organiser", self.organiser)
            .with("at", self.at)
    }

    /// Signs the act with the organiser's key.
    pub fn sign(&self, key: &ed25519_dalek::SigningKey) -> Result<Statement, StatementError> {
        self.check()?;
        Statement::sign(StatementKind::Act, &self.fields(), key)
    }

    /// Checks a signed act: well formed, and signed by an organiser the directory certifies for
    /// the school at the act's time.
    pub fn verify(
        statement: &Statement,
        directory: &dyn SignerDirectory,
    ) -> Result<Act, StatementError> {
        Self::verify_remembered(statement, directory, None)
    }

    /// [`Act::verify`], its signature checked through `memo` when given
    /// ([`crate::signature_memo`]); the organiser's certificate is judged every time.
    pub fn verify_remembered(
        statement: &Statement,
        directory: &dyn SignerDirectory,
        memo: Option<&crate::signature_memo::SignatureMemo>,
    ) -> Result<Act, StatementError> {
        let fields = statement.fields_unverified(StatementKind::Act)?;
        let kind = match (fields.get("act")?, fields.get("reason")?) {
            ("early", reason) => ActKind::Early(reason.parse().map_err(invalid)?),
            ("removal", "") => ActKind::Removal,
            (act, reason) => return Err(invalid(format!("unknown act {act:?} {reason:?}"))),
        };
        let act = Act {
            exam: fields.parse("exam")?,
            school: SchoolCode::new(fields.get("school")?).map_err(|e| invalid(e.to_string()))?,
            participant: ParticipantId::new(fields.get("participant")?)
                .map_err(|e| invalid(e.to_string()))?,
            attempt: Attempt::new(fields.parse("attempt")?).map_err(|e| invalid(e.to_string()))?,
            room: RoomCode::new(fields.get("room")?).map_err(|e| invalid(e.to_string()))?,
            kind,
            text: fields.get("text")?.to_owned(),
            number: ActNumber::new(fields.get("number")?).map_err(|e| invalid(e.to_string()))?,
            organiser: PersonId::new(fields.get("organiser")?)
                .map_err(|e| invalid(e.to_string()))?,
            at: fields.parse("at")?,
        };
        act.check()?;
        let key = directory
            .person_key(
                PersonRole::Organiser,
                act.organiser,
                OrgCode::School(act.school),
                act.at,
            )
            .map_err(|e| invalid(e.to_string()))?;
        statement.verify_remembered(StatementKind::Act, &key, memo)?;
        Ok(act)
    }
}

/// The attempts a protocol's acts end, by the attempt (as a sheet names it): only acts that
/// verify against `directory` count, and of two acts for one attempt, either ends it.
pub fn ended_attempts(
    protocol: &impl automerge::ReadDoc,
    directory: &dyn SignerDirectory,
) -> BTreeMap<SheetSubject, Act> {
    ended_attempts_remembered(protocol, directory, None)
}

/// [`ended_attempts`], each act's signature checked through `memo` when given
/// ([`crate::signature_memo`]): the РЦОИ reads a school's acts at every sheet it receipts.
pub fn ended_attempts_remembered(
    protocol: &impl automerge::ReadDoc,
    directory: &dyn SignerDirectory,
    memo: Option<&crate::signature_memo::SignatureMemo>,
) -> BTreeMap<SheetSubject, Act> {
    crate::content::acts(protocol)
        .iter()
        .filter_map(|statement| Act::verify_remembered(statement, directory, memo).ok())
        .map(|act| (act.subject(), act))
        .collect()
}

impl Act {
    /// The attempt the act ends, as a score sheet names it.
    #[must_use]
    pub fn subject(&self) -> SheetSubject {
        SheetSubject {
            exam: self.exam,
            school: self.school,
            participant: self.participant,
            attempt: self.attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::codes::RegionCode;
    use crate::record::FixedDirectory;
    use crate::record::fixtures::{at, directory, key, school, subject};

    fn organiser() -> PersonId {
        PersonId::new("org-1").unwrap()
    }

    fn organiser_key() -> SigningKey {
        SigningKey::from_bytes(&[77; 32])
    }

    fn with_organiser() -> FixedDirectory {
        let mut d = directory();
        d.add_person(
            organiser(),
            PersonRole::Organiser,
            OrgCode::School(school()),
            organiser_key().verifying_key(),
        );
        d
    }

    fn act(kind: ActKind, text: &str) -> Act {
        let s = subject("p1");
        Act {
            exam: s.exam,
            school: s.school,
            participant: s.participant,
            attempt: s.attempt,
            room: RoomCode::new("101").unwrap(),
            kind,
            text: text.into(),
            number: ActNumber::new("7").unwrap(),
            organiser: organiser(),
            at: at(20),
        }
    }

    #[test]
    fn a_signed_act_verifies_and_reads_back() {
        for (kind, text) in [
            (ActKind::Early(EarlyReason::Health), ""),
            (
                ActKind::Early(EarlyReason::BadRecording),
                "запись прервалась",
            ),
            (ActKind::Early(EarlyReason::Other), "эвакуация здания"),
            (ActKind::Removal, "пользовался телефоном"),
        ] {
            let a = act(kind, text);
            let signed = a.sign(&organiser_key()).unwrap();
            assert_eq!(Act::verify(&signed, &with_organiser()).unwrap(), a);
        }
    }

    #[test]
    fn an_act_without_its_reason_or_by_another_than_an_organiser_is_refused() {
        for kind in [ActKind::Removal, ActKind::Early(EarlyReason::Other)] {
            assert!(matches!(
                act(kind, "  ").sign(&organiser_key()),
                Err(StatementError::Invalid(_))
            ));
        }
        // An expert of the school signs an act: experts are not organisers.
        let by_expert = act(ActKind::Early(EarlyReason::Health), "")
            .sign(&key(1))
            .unwrap();
        assert!(Act::verify(&by_expert, &with_organiser()).is_err());
        // One changed byte of a signed act.
        let signed = act(ActKind::Removal, "шпаргалка")
            .sign(&organiser_key())
            .unwrap();
        let mut bytes = signed.as_bytes().to_vec();
        let i = bytes.iter().position(|b| *b == b'7').unwrap();
        bytes[i] = b'8';
        let tampered = Statement::from_bytes(bytes).unwrap();
        assert_eq!(
            Act::verify(&tampered, &with_organiser()),
            Err(StatementError::BadSignature)
        );
        // The organiser of another school.
        let mut elsewhere = with_organiser();
        elsewhere.add_person(
            PersonId::new("org-2").unwrap(),
            PersonRole::Organiser,
            OrgCode::Rcoi(RegionCode::new("42").unwrap()),
            organiser_key().verifying_key(),
        );
        let mut other = act(ActKind::Removal, "шпаргалка");
        other.organiser = PersonId::new("org-2").unwrap();
        let signed = other.sign(&organiser_key()).unwrap();
        assert!(Act::verify(&signed, &elsewhere).is_err());
    }
}
