//! Signed statements: the small records people and the РЦОИ sign besides score sheets — an
//! operator's settlement of a conflict, the РЦОИ's published results of a school, a participant's
//! familiarisation with them.
//!
//! A statement is UTF-8 text, one `key value` pair a line, in a fixed order per kind, followed by
//! a 64-byte ed25519 signature over a per-kind domain tag and the text. Values never hold a line
//! break, so the text has exactly one reading; the kind's first line (`kind NAME`) and the domain
//! tag keep a signature for one kind from being accepted as another. Format: `docs/records.md`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::record::RecordHash;

/// The largest statement (text and signature), in bytes: a school's published results carry a
/// line per participant (a school has at most a few thousand).
pub const STATEMENT_BYTES_MAX: usize = 1 << 20;
const SIGNATURE_BYTES: usize = 64;

/// The kinds of statement; each signs under its own domain tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// A РЦОИ operator settles a conflict between score sheets.
    Settlement,
    /// The РЦОИ publishes a school's results for an exam.
    Results,
    /// A school's organiser records that a participant has seen their result.
    Familiarisation,
    /// A school's organiser ends an attempt with an act (`crate::act`).
    Act,
    /// The head of a school signs its commission order (`crate::commission`).
    Commission,
    /// A РЦОИ operator approves a participant's category of record (`crate::approval`).
    CategoryApproval,
    /// The РЦОИ names an exam's materials package (`crate::materials`).
    Materials,
    /// The РЦОИ releases the code of an exam's materials (`crate::materials`).
    MaterialsRelease,
    /// A school's technician signs its readiness act (`crate::readiness`).
    Readiness,
    /// A school's commission settles a conflict between score sheets
    /// (`crate::settlement::commission`).
    CommissionSettlement,
    /// The head of a school asks the РЦОИ for a participant's recording to re-check
    /// (`crate::recheck`).
    RecheckRequest,
    /// A school's commission re-checks another school's participant from the recording
    /// (`crate::recheck::verdict`).
    Recheck,
}

impl StatementKind {
    fn name(self) -> &'static str {
        match self {
            StatementKind::Settlement => "settlement",
            StatementKind::Results => "results",
            StatementKind::Familiarisation => "familiarisation",
            StatementKind::Act => "act",
            StatementKind::Commission => "commission",
            StatementKind::CategoryApproval => "category-approval",
            StatementKind::Materials => "materials",
            StatementKind::MaterialsRelease => "materials-release",
            StatementKind::Readiness => "readiness",
            StatementKind::CommissionSettlement => "commission-settlement",
            StatementKind::RecheckRequest => "recheck-request",
            StatementKind::Recheck => "recheck",
        }
    }

    fn domain(self) -> Vec<u8> {
        format!("giasync {} statement v1\0", self.name()).into_bytes()
    }
}

/// Why a statement is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    #[error("the statement is {0} bytes, more than {STATEMENT_BYTES_MAX}")]
    TooLong(usize),
    #[error("the statement is too short to hold a signature")]
    TooShort,
    #[error("the statement's text is not UTF-8")]
    NotUtf8,
    #[error("line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("a {expected} statement was expected, this is {found:?}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("the value of {key} holds a line break")]
    LineBreak { key: String },
    #[error("the signature does not match the signer's key")]
    BadSignature,
    #[error("{0}")]
    Invalid(String),
}

/// A statement's fields in order (the first is always `kind`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    #[must_use]
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    /// Appends `key value`.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.0.push((key.to_owned(), value.to_string()));
        self
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Result<&str, StatementError> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| StatementError::Invalid(format!("no {key}")))
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Appends the attempt a record is about: `exam`, `school`, `participant`, `attempt`.
    #[must_use]
    pub fn with_subject(self, subject: crate::record::SheetSubject) -> Self {
        self.with("exam", subject.exam)
            .with("school", subject.school)
            .with("participant", subject.participant)
            .with("attempt", subject.attempt.get())
    }

    /// The attempt a record is about, from its `exam`, `school`, `participant`, `attempt`.
    pub fn subject(&self) -> Result<crate::record::SheetSubject, StatementError> {
        let invalid = |e: crate::DomainError| StatementError::Invalid(e.to_string());
        let attempt: u8 = self.parse("attempt")?;
        Ok(crate::record::SheetSubject {
            exam: self.parse("exam")?,
            school: crate::codes::SchoolCode::new(self.get("school")?).map_err(invalid)?,
            participant: crate::codes::ParticipantId::new(self.get("participant")?)
                .map_err(invalid)?,
            attempt: crate::record::Attempt::new(attempt).map_err(invalid)?,
        })
    }

    /// `get` parsed, the error naming the field.
    pub fn parse<T>(&self, key: &str) -> Result<T, StatementError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.get(key)?;
        text.parse()
            .map_err(|e| StatementError::Invalid(format!("{key} {text:?}: {e}")))
    }
}

/// A signed statement as stored and sent: text, then the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Statement {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Statement({} bytes)", self.bytes.len())
    }
}

impl Statement {
    /// Signs `fields` as a statement of `kind`.
    pub fn sign(
        kind: StatementKind,
        fields: &Fields,
        key: &SigningKey,
    ) -> Result<Self, StatementError> {
        let mut text = format!("kind {}\n", kind.name());
        for (k, v) in &fields.0 {
            if v.contains(['\n', '\r']) || k.contains([' ', '\n', '\r']) || k.is_empty() {
                return Err(StatementError::LineBreak { key: k.clone() });
            }
            text.push_str(k);
            text.push(' ');
            text.push_str(v);
            text.push('\n');
        }
        let mut bytes = text.into_bytes();
        let signature = key.sign(&[kind.domain().as_slice(), &bytes].concat());
        bytes.extend_from_slice(&signature.to_bytes());
        if bytes.len() > STATEMENT_BYTES_MAX {
            return Err(StatementError::TooLong(bytes.len()));
        }
        Ok(Statement { bytes })
    }

    /// Takes bytes as received; [`Statement::verify`] checks them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, StatementError> {
        if bytes.len() > STATEMENT_BYTES_MAX {
            return Err(StatementError::TooLong(bytes.len()));
        }
        if bytes.len() < SIGNATURE_BYTES {
            return Err(StatementError::TooShort);
        }
        Ok(Statement { bytes })
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The SHA-256 of the whole statement: its identity.
    #[must_use]
    pub fn hash(&self) -> RecordHash {
        RecordHash(Sha256::digest(&self.bytes).into())
    }

    fn split(&self) -> (&[u8], &[u8]) {
        self.bytes.split_at(self.bytes.len() - SIGNATURE_BYTES)
    }

    /// The fields, unverified: to learn who claims to have signed before looking up their key.
    pub fn fields_unverified(&self, kind: StatementKind) -> Result<Fields, StatementError> {
        let text = std::str::from_utf8(self.split().0).map_err(|_| StatementError::NotUtf8)?;
        let mut fields = Vec::new();
        for (i, line) in text.split_terminator('\n').enumerate() {
            let (k, v) = line
                .split_once(' ')
                .ok_or_else(|| StatementError::Malformed {
                    line: i + 1,
                    message: "not `key value`".into(),
                })?;
            if line.contains('\r') {
                return Err(StatementError::Malformed {
                    line: i + 1,
                    message: "a carriage return".into(),
                });
            }
            fields.push((k.to_owned(), v.to_owned()));
        }
        if !text.ends_with('\n') {
            return Err(StatementError::Malformed {
                line: fields.len(),
                message: "the text does not end with a line break".into(),
            });
        }
        let mut fields = fields.into_iter();
        match fields.next() {
            Some((k, v)) if k == "kind" && v == kind.name() => {}
            Some((_, v)) => {
                return Err(StatementError::WrongKind {
                    expected: kind.name(),
                    found: v,
                });
            }
            None => return Err(StatementError::TooShort),
        }
        Ok(Fields(fields.collect()))
    }

    /// Checks the signature by `key` and returns the fields.
    pub fn verify(
        &self,
        kind: StatementKind,
        key: &VerifyingKey,
    ) -> Result<Fields, StatementError> {
        self.verify_remembered(kind, key, None)
    }

    /// [`Statement::verify`], the signature looked up in (and, when good, added to) `memo` when
    /// given: a node that re-reads the same statements checks each signature once.
    pub fn verify_remembered(
        &self,
        kind: StatementKind,
        key: &VerifyingKey,
        memo: Option<&crate::signature_memo::SignatureMemo>,
    ) -> Result<Fields, StatementError> {
        let fields = self.fields_unverified(kind)?;
        let (text, signature) = self.split();
        let signature =
            Signature::from_slice(signature).map_err(|_| StatementError::BadSignature)?;
        let message = [kind.domain().as_slice(), text].concat();
        match memo {
            Some(memo) => memo.verify(key, &message, &signature),
            None => key.verify(&message, &signature),
        }
        .map_err(|_| StatementError::BadSignature)?;
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_verifies_and_any_changed_byte_fails() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let fields = Fields::new()
            .with("exam", "is-2026-02-11")
            .with("line", "a b c");
        let s = Statement::sign(StatementKind::Results, &fields, &key).unwrap();
        let back = s
            .verify(StatementKind::Results, &key.verifying_key())
            .unwrap();
        assert_eq!(back, fields);
        assert_eq!(back.get("line").unwrap(), "a b c");
        for i in 0..s.as_bytes().len() {
            let mut bytes = s.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let changed = Statement::from_bytes(bytes).unwrap();
            assert!(
                changed
                    .verify(StatementKind::Results, &key.verifying_key())
                    .is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_signature_for_one_kind_or_key_is_not_accepted_for_another() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let s = Statement::sign(StatementKind::Settlement, &Fields::new(), &key).unwrap();
        assert!(matches!(
            s.verify(StatementKind::Results, &key.verifying_key()),
            Err(StatementError::WrongKind { .. })
        ));
        assert_eq!(
            s.verify(StatementKind::Settlement, &other.verifying_key()),
            Err(StatementError::BadSignature)
        );
        let broken = Fields::new().with("reason", "two\nlines");
        assert!(matches!(
            Statement::sign(StatementKind::Settlement, &broken, &key),
            Err(StatementError::LineBreak { .. })
        ));
    }
}
