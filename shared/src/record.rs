//! Signed score sheets (бланк ИС): a canonical byte encoding, ed25519 signatures by the expert,
//! verification that recomputes the score from the rules, corrections that supersede by hash.
//!
//! The encoding is specified in `docs/records.md`. It has exactly one form per sheet: decoding
//! refuses anything that encoding the decoded sheet would not reproduce byte for byte, so the
//! hash of a sheet's content is its identity.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::calendar::Timestamp;
use crate::codes::{ParticipantId, PersonId, RoomCode, SchoolCode};
use crate::error::{DomainError, Field};
use crate::exam::ExamId;
use crate::participant::Category;
use crate::rules::{CriterionId, Outcome, Rules, RulesId, ScoreError};

/// The first bytes of every score sheet: separates its signatures from any other signed record.
pub const SHEET_MAGIC: &[u8; 8] = b"GIASHEET";
/// The encoding version this build writes and reads.
pub const SHEET_VERSION: u8 = 1;
/// The most attempts a participant has at one exam in a year: the main date and two additional
/// ones (§15), each with up to two same-day retakes after a bad recording (§45). Attempts follow
/// the participant's history (`crate::retake`), not the date.
pub const ATTEMPT_MAX: u8 = 9;
/// The most records one correction may supersede.
pub const SUPERSEDES_MAX: usize = 8;
/// The longest reason for a correction, in bytes.
pub const REASON_BYTES_MAX: usize = 1024;
/// The most criteria a sheet carries.
pub const SHEET_CRITERIA_MAX: usize = 32;
/// The largest encoded sheet (content and signature), in bytes; anything longer is refused
/// before it is parsed.
pub const SHEET_BYTES_MAX: usize = 4096;
/// Records verified together in one ed25519 batch. With each key's terms added up
/// ([`crate::ed25519_batch`]) a batch holds about one point per signature, and one of 4,096
/// costs per signature about a tenth less than one of 1,024 (`cargo bench -p giasync-shared
/// --bench ingest`, checks alone: 111–114k sheets/s at 1,024, 120–124k at 2,048, 125k at
/// 4,096).
pub const VERIFY_BATCH_SIZE: usize = 4096;
/// A failed batch is split in halves until this size, then checked one by one: a few bad
/// signatures among many cost a few small batches, not a thousand single verifications.
pub const VERIFY_BATCH_SPLIT_MIN: usize = 16;

const SIGNATURE_BYTES: usize = 64;

/// The SHA-256 of a sheet's content (everything but the signature): its identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordHash(pub [u8; 32]);

impl RecordHash {
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        RecordHash(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for RecordHash {
    /// Lowercase hex, 64 characters: the key a sheet and its receipt are stored under, made
    /// for every sheet the РЦОИ takes in, so written out at once rather than byte by byte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl std::str::FromStr for RecordHash {
    type Err = DomainError;
    /// 64 lowercase or uppercase hex digits.
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid(Field::RecordHash, text, "must be 64 hex digits");
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(RecordHash(out))
    }
}

// On the wire and in views: the 64 hex digits.
crate::text::serde_via_text!(RecordHash);

impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordHash({self})")
    }
}

/// Which attempt at an exam a sheet scores: 1 (main date) to [`ATTEMPT_MAX`]. On the wire, the
/// number, checked again when read.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Attempt(u8);

impl TryFrom<u8> for Attempt {
    type Error = DomainError;
    fn try_from(n: u8) -> Result<Self, DomainError> {
        Attempt::new(n)
    }
}

impl From<Attempt> for u8 {
    fn from(a: Attempt) -> u8 {
        a.0
    }
}

impl Attempt {
    /// A participant's first attempt.
    pub const FIRST: Attempt = Attempt(1);

    pub fn new(n: u8) -> Result<Self, DomainError> {
        if (1..=ATTEMPT_MAX).contains(&n) {
            Ok(Attempt(n))
        } else {
            Err(DomainError::invalid(Field::Attempt, n, "must be 1..=9"))
        }
    }
    #[must_use]
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A correction: the sheets it supersedes and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    pub supersedes: Vec<RecordHash>,
    pub reason: String,
}

/// What a sheet is about: one participant's attempt at one exam at one school.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SheetSubject {
    pub exam: ExamId,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub attempt: Attempt,
}

/// The content of a score sheet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreSheet {
    pub rules: RulesId,
    pub subject: SheetSubject,
    pub room: RoomCode,
    pub category: Category,
    /// Points per criterion, ascending by criterion id bytes.
    pub points: Vec<(CriterionId, u8)>,
    pub total: u16,
    pub outcome: Outcome,
    pub expert: PersonId,
    /// The expert's public key that signed the sheet.
    pub expert_key: [u8; 32],
    pub signed_at: Timestamp,
    /// Empty for a first sheet.
    pub correction: Option<Correction>,
}

/// Why a score sheet is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    /// The bytes are not a score sheet of this encoding.
    #[error("malformed score sheet at byte {at}: {reason}")]
    Malformed { at: usize, reason: &'static str },
    /// A field decoded but is not a valid value.
    #[error("score sheet field: {0}")]
    Field(#[from] DomainError),
    /// The sheet names rules other than the ones it is checked against.
    #[error("the sheet was scored under rules {sheet}, not {rules}")]
    RulesMismatch { sheet: String, rules: String },
    /// The points do not score under the rules.
    #[error("the points do not score: {0}")]
    Score(#[from] ScoreError),
    /// The recorded total or outcome is not what the rules give for the points.
    #[error(
        "the sheet records {recorded_total} {recorded_outcome} but the points give {total} {outcome}"
    )]
    ScoreMismatch {
        recorded_total: u16,
        recorded_outcome: Outcome,
        total: u16,
        outcome: Outcome,
    },
    /// The expert may not sign this sheet, or signed with a key not certified for them.
    #[error("signer: {0}")]
    Signer(#[from] SignerError),
    /// The signature does not verify under the expert's key.
    #[error("the signature does not verify")]
    BadSignature,
    /// The sheet is about another participant, attempt, exam or school than expected.
    #[error("the sheet is for {found}, not {expected}")]
    WrongSubject { expected: String, found: String },
    /// The РЦОИ refused the sheet when it received it (`crate::ingest::Refusal`), for a reason
    /// that depends on when that was: every node that holds its receipt counts it invalid.
    #[error("refused by the РЦОИ on receipt: {0}")]
    RefusedOnReceipt(String),
    /// The sheet verified and was received, but as things stand now it does not count: an act
    /// ended its attempt, or the register gives its participant another category
    /// (`crate::ingest::Standing`), decided after the receipt.
    #[error("does not count as things stand: {0}")]
    DoesNotCount(String),
}

/// Why an expert's key is not accepted for a sheet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The region does not know the person.
    #[error("expert {0} is not known to the region")]
    Unknown(PersonId),
    /// The person is not certified as an expert for the school.
    #[error("{expert} is not an expert of school {school}")]
    NotExpertOf {
        expert: PersonId,
        school: SchoolCode,
    },
    /// The person's certificate was revoked before the sheet was signed.
    #[error("the certificate of {expert} was revoked at {revoked_at}, before signing")]
    Revoked {
        expert: PersonId,
        revoked_at: Timestamp,
    },
    /// The sheet was signed outside the certificate's validity.
    #[error("the certificate of {expert} was not valid at {at}")]
    NotValidAt { expert: PersonId, at: Timestamp },
    /// The person is not certified in that role for that organisation.
    #[error("{person} is not certified as {role} of {org}")]
    NotCertifiedAs {
        person: PersonId,
        role: crate::codes::PersonRole,
        org: crate::codes::OrgCode,
    },
    /// The key in the sheet is not the key certified for the person.
    #[error("the key in the sheet is not the key certified for {0}")]
    KeyMismatch(PersonId),
    /// The certified key is weak: small-order, which cannot prove authorship, or with a
    /// small-order component, which a batch check would judge otherwise than one by one
    /// ([`crate::ed25519_batch::weak`]).
    #[error("the key certified for {0} is weak")]
    WeakKey(PersonId),
}

/// Who may sign score sheets: the region directory (later issues) or a fixed set in tests.
pub trait SignerDirectory {
    /// The key certified for `expert` to sign sheets of `school` at `at`, or why there is none.
    /// Implementations must refuse weak keys ([`VerifyingKey::is_weak`]), once, when a key is
    /// certified: this is called for every sheet verified. Keys with a small-order component
    /// must never be certified either ([`crate::ed25519_batch::weak`]): the region's CA refuses
    /// them when it issues, `giasync-certs`' `CaVerifier` (every node's judge of certificates:
    /// the РЦОИ's ingest, sign-in, `install-person`) when it first checks a certificate (once,
    /// then remembered), the in-memory [`FixedDirectory`] when a key is added.
    fn expert_key(
        &self,
        expert: PersonId,
        school: SchoolCode,
        at: Timestamp,
    ) -> Result<VerifyingKey, SignerError>;

    /// The key certified for `person` in `role` at `org` (an organiser of a school, an operator
    /// of the РЦОИ) at `at`, for signed statements (`crate::statement`). Directories that know
    /// only experts know nobody else.
    fn person_key(
        &self,
        role: crate::codes::PersonRole,
        person: PersonId,
        org: crate::codes::OrgCode,
        at: Timestamp,
    ) -> Result<VerifyingKey, SignerError> {
        let _ = (role, org, at);
        Err(SignerError::Unknown(person))
    }

    /// When `person`'s certificate was revoked, if it was. A signer chooses the `signed_at` its
    /// sheet claims; the РЦОИ judges revocation against when it received the sheet instead
    /// (`crate::ingest`).
    fn revoked_at(&self, person: PersonId) -> Option<Timestamp> {
        let _ = person;
        None
    }
}

/// A borrowed directory is a directory (a region-wide one need not be copied per check).
impl<T: SignerDirectory + ?Sized> SignerDirectory for &T {
    fn expert_key(
        &self,
        expert: PersonId,
        school: SchoolCode,
        at: Timestamp,
    ) -> Result<VerifyingKey, SignerError> {
        (**self).expert_key(expert, school, at)
    }

    fn revoked_at(&self, person: PersonId) -> Option<Timestamp> {
        (**self).revoked_at(person)
    }

    fn person_key(
        &self,
        role: crate::codes::PersonRole,
        person: PersonId,
        org: crate::codes::OrgCode,
        at: Timestamp,
    ) -> Result<VerifyingKey, SignerError> {
        (**self).person_key(role, person, org, at)
    }
}

/// A sheet whose encoding, score, signer and signature have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSheet {
    pub sheet: ScoreSheet,
    pub hash: RecordHash,
}

/// A signed score sheet as it travels and is stored: the canonical content and the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedSheet {
    bytes: Vec<u8>,
    /// The hash of the content, computed once: the РЦОИ needs it three times per sheet (the
    /// key it is stored under, its verdict, its receipt).
    hash: RecordHash,
}

impl fmt::Debug for SignedSheet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SignedSheet({} bytes, {})",
            self.bytes.len(),
            self.hash()
        )
    }
}

/// What an expert enters before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SheetDraft {
    pub subject: SheetSubject,
    pub room: RoomCode,
    pub category: Category,
    pub points: Vec<(CriterionId, i64)>,
    pub expert: PersonId,
    pub signed_at: Timestamp,
    pub correction: Option<Correction>,
}

impl SignedSheet {
    /// Scores `draft` under `rules` and signs it with the expert's key. Nothing inconsistent is
    /// ever signed: the same checks as verification run first.
    pub fn sign(draft: SheetDraft, rules: &Rules, key: &SigningKey) -> Result<Self, SheetError> {
        let scored = rules.score(draft.category, &draft.points)?;
        let mut points = scored.points;
        points.sort_by_key(|&(id, _)| id);
        let correction = draft.correction.map(|mut c| {
            c.supersedes.sort();
            c.supersedes.dedup();
            c
        });
        let sheet = ScoreSheet {
            rules: rules.id,
            subject: draft.subject,
            room: draft.room,
            category: draft.category,
            points,
            total: scored.total,
            outcome: scored.outcome,
            expert: draft.expert,
            expert_key: key.verifying_key().to_bytes(),
            signed_at: draft.signed_at,
            correction,
        };
        let mut bytes = encode(&sheet)?;
        let signature = key.sign(&bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        let signed = SignedSheet::with_hash(bytes);
        debug_assert!(
            decode(signed.content()).as_ref() == Ok(&sheet),
            "encoding round-trips"
        );
        Ok(signed)
    }

    /// Takes bytes as received; only the length is checked here, [`SignedSheet::verify`] checks
    /// the rest.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SheetError> {
        if bytes.len() > SHEET_BYTES_MAX {
            return Err(SheetError::Malformed {
                at: SHEET_BYTES_MAX,
                reason: "longer than the largest score sheet",
            });
        }
        if bytes.len() < SHEET_MAGIC.len() + SIGNATURE_BYTES {
            return Err(SheetError::Malformed {
                at: bytes.len(),
                reason: "too short",
            });
        }
        Ok(SignedSheet::with_hash(bytes))
    }

    /// From bytes of at least a signature's length.
    fn with_hash(bytes: Vec<u8>) -> Self {
        let content = &bytes[..bytes.len().saturating_sub(SIGNATURE_BYTES)];
        let hash = RecordHash::of(content);
        SignedSheet { bytes, hash }
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signed content: everything but the trailing signature.
    #[must_use]
    pub fn content(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_BYTES]
    }

    fn signature(&self) -> Signature {
        let mut raw = [0u8; SIGNATURE_BYTES];
        raw.copy_from_slice(&self.bytes[self.bytes.len() - SIGNATURE_BYTES..]);
        Signature::from_bytes(&raw)
    }

    /// The sheet's identity: the SHA-256 of its content.
    #[must_use]
    pub fn hash(&self) -> RecordHash {
        self.hash
    }

    /// Decodes without checking score or signature (for display of refused records).
    pub fn decode_unverified(&self) -> Result<ScoreSheet, SheetError> {
        decode(self.content())
    }

    /// Full check: canonical encoding, rules and score, signer, signature.
    pub fn verify(
        &self,
        rules: &Rules,
        directory: &dyn SignerDirectory,
    ) -> Result<VerifiedSheet, SheetError> {
        let (sheet, key) = self.check_all_but_signature(rules, directory)?;
        // By the equation the batches check, so a sheet's verdict is the same alone and in any
        // batch (`crate::ed25519_batch`).
        crate::ed25519_batch::verify_one(self.content(), &self.signature(), &key)
            .map_err(|_| SheetError::BadSignature)?;
        Ok(VerifiedSheet {
            sheet,
            hash: self.hash(),
        })
    }

    fn check_all_but_signature(
        &self,
        rules: &Rules,
        directory: &dyn SignerDirectory,
    ) -> Result<(ScoreSheet, VerifyingKey), SheetError> {
        let sheet = decode(self.content())?;
        if sheet.rules != rules.id {
            return Err(SheetError::RulesMismatch {
                sheet: sheet.rules.to_string(),
                rules: rules.id.to_string(),
            });
        }
        let (total, outcome) = rules.total(
            sheet.category,
            sheet.points.iter().map(|&(id, p)| (id, i64::from(p))),
        )?;
        if (total, outcome) != (sheet.total, sheet.outcome) {
            return Err(SheetError::ScoreMismatch {
                recorded_total: sheet.total,
                recorded_outcome: sheet.outcome,
                total,
                outcome,
            });
        }
        let key = directory.expert_key(sheet.expert, sheet.subject.school, sheet.signed_at)?;
        if key.as_bytes() != &sheet.expert_key {
            return Err(SignerError::KeyMismatch(sheet.expert).into());
        }
        Ok((sheet, key))
    }
}

/// Verifies many sheets, their signatures in ed25519 batches of [`VERIFY_BATCH_SIZE`]. The
/// verdict for each sheet is the same as [`SignedSheet::verify`]'s: a batch that fails is split
/// to find the culprits.
pub fn verify_many(
    sheets: &[SignedSheet],
    rules: &Rules,
    directory: &dyn SignerDirectory,
) -> Vec<Result<VerifiedSheet, SheetError>> {
    verify_groups(&[(sheets, directory)], rules)
        .pop()
        .unwrap_or_default()
}

/// [`verify_many`] over groups of sheets, each judged against its own directory (a protocol's
/// experts): the signatures of every group go into the same batches. The РЦОИ checks a few
/// sheets of each of many schools at once, and a batch of a thousand signatures costs per
/// signature about a quarter less than a batch of fifty does. Each batch adds up the terms of
/// each key before multiplying ([`crate::ed25519_batch`]): an expert signs dozens of sheets.
/// One verdict list per group, in order.
pub fn verify_groups(
    groups: &[(&[SignedSheet], &dyn SignerDirectory)],
    rules: &Rules,
) -> Vec<Vec<Result<VerifiedSheet, SheetError>>> {
    let all: Vec<(&SignedSheet, &dyn SignerDirectory)> = groups
        .iter()
        .flat_map(|(sheets, directory)| sheets.iter().map(move |s| (s, *directory)))
        .collect();
    let mut verdicts: Vec<Result<VerifiedSheet, SheetError>> = Vec::with_capacity(all.len());
    let group_of_all: Vec<usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, (sheets, _))| std::iter::repeat_n(g, sheets.len()))
        .collect();
    for (chunk, group_of) in all
        .chunks(VERIFY_BATCH_SIZE)
        .zip(group_of_all.chunks(VERIFY_BATCH_SIZE))
    {
        let sheets: Vec<&SignedSheet> = chunk.iter().map(|(s, _)| *s).collect();
        let mut checked: Vec<Result<(ScoreSheet, VerifyingKey), SheetError>> = chunk
            .iter()
            .map(|(s, directory)| s.check_all_but_signature(rules, *directory))
            .collect();
        let candidates: Vec<usize> = (0..chunk.len()).filter(|&i| checked[i].is_ok()).collect();
        let mut bad_signatures = Vec::new();
        find_bad_signatures(
            &sheets,
            group_of,
            &checked,
            &candidates,
            &mut bad_signatures,
        );
        for i in bad_signatures {
            checked[i] = Err(SheetError::BadSignature);
        }
        for (sheet, check) in sheets.iter().zip(checked) {
            verdicts.push(check.map(|(content, _)| VerifiedSheet {
                sheet: content,
                hash: sheet.hash(),
            }));
        }
    }
    debug_assert_eq!(verdicts.len(), all.len());
    let mut verdicts = verdicts.into_iter();
    groups
        .iter()
        .map(|(sheets, _)| verdicts.by_ref().take(sheets.len()).collect())
        .collect()
}

/// Pushes onto `bad` the indices among `candidates` whose signature does not verify.
/// `group_of` gives each sheet of `chunk` its group ([`verify_groups`]): a batch that fails is
/// split at the group boundary nearest its middle, so one school's bad signature costs the
/// checks of its own sheets rather than its neighbours', and halved within a group.
fn find_bad_signatures(
    chunk: &[&SignedSheet],
    group_of: &[usize],
    checked: &[Result<(ScoreSheet, VerifyingKey), SheetError>],
    candidates: &[usize],
    bad: &mut Vec<usize>,
) {
    let key_of = |i: usize| checked[i].as_ref().map(|(_, key)| *key).ok();
    if candidates.len() <= VERIFY_BATCH_SPLIT_MIN {
        for &i in candidates {
            let ok = key_of(i).is_some_and(|key| {
                crate::ed25519_batch::verify_one(chunk[i].content(), &chunk[i].signature(), &key)
                    .is_ok()
            });
            if !ok {
                bad.push(i);
            }
        }
        return;
    }
    let messages: Vec<&[u8]> = candidates.iter().map(|&i| chunk[i].content()).collect();
    let signatures: Vec<Signature> = candidates.iter().map(|&i| chunk[i].signature()).collect();
    let keys: Vec<VerifyingKey> = candidates.iter().filter_map(|&i| key_of(i)).collect();
    debug_assert_eq!(
        keys.len(),
        candidates.len(),
        "candidates passed every other check"
    );
    if crate::ed25519_batch::verify_batch(&messages, &signatures, &keys).is_ok() {
        return;
    }
    let (left, right) = candidates.split_at(split_point(group_of, candidates));
    find_bad_signatures(chunk, group_of, checked, left, bad);
    find_bad_signatures(chunk, group_of, checked, right, bad);
}

/// Where to split `candidates` (at least two, in order, each group's together): at the group
/// boundary nearest the middle, or the middle when they are all of one group.
fn split_point(group_of: &[usize], candidates: &[usize]) -> usize {
    let middle = candidates.len() / 2;
    let boundary = |at: usize| group_of[candidates[at - 1]] != group_of[candidates[at]];
    (0..=middle)
        .flat_map(|d| [middle - d, middle + d])
        .find(|&at| at > 0 && at < candidates.len() && boundary(at))
        .unwrap_or(middle)
}

// ---- encoding --------------------------------------------------------------------------------

fn put_str8(out: &mut Vec<u8>, text: &str) -> Result<(), SheetError> {
    let len = u8::try_from(text.len()).map_err(|_| SheetError::Malformed {
        at: out.len(),
        reason: "a short field is longer than 255 bytes",
    })?;
    out.push(len);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// Encodes `sheet` canonically (see `docs/records.md`). Refuses a sheet that has no canonical
/// form: points out of order or repeated, too many, supersession without a reason.
pub fn encode(sheet: &ScoreSheet) -> Result<Vec<u8>, SheetError> {
    let malformed = |reason| SheetError::Malformed { at: 0, reason };
    if sheet.points.is_empty() || sheet.points.len() > SHEET_CRITERIA_MAX {
        return Err(malformed("a sheet scores 1..=32 criteria"));
    }
    if !sheet.points.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(malformed("points must be strictly ascending by criterion"));
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(SHEET_MAGIC);
    out.push(SHEET_VERSION);
    put_str8(&mut out, sheet.rules.as_str())?;
    put_str8(&mut out, &sheet.subject.exam.to_string())?;
    put_str8(&mut out, sheet.subject.school.as_str())?;
    put_str8(&mut out, sheet.room.as_str())?;
    put_str8(&mut out, sheet.subject.participant.as_str())?;
    out.push(sheet.subject.attempt.get());
    put_str8(&mut out, sheet.category.id())?;
    out.push(u8::try_from(sheet.points.len()).map_err(|_| malformed("too many criteria"))?);
    for (criterion, points) in &sheet.points {
        put_str8(&mut out, criterion.as_str())?;
        out.push(*points);
    }
    out.extend_from_slice(&sheet.total.to_be_bytes());
    out.push(match sheet.outcome {
        Outcome::Fail => 0,
        Outcome::Pass => 1,
    });
    put_str8(&mut out, sheet.expert.as_str())?;
    out.extend_from_slice(&sheet.expert_key);
    out.extend_from_slice(&sheet.signed_at.unix_ms().to_be_bytes());
    match &sheet.correction {
        None => {
            out.push(0);
            out.extend_from_slice(&0u16.to_be_bytes());
        }
        Some(c) => {
            if c.supersedes.is_empty() || c.supersedes.len() > SUPERSEDES_MAX {
                return Err(malformed("a correction supersedes 1..=8 sheets"));
            }
            if !c.supersedes.windows(2).all(|w| w[0] < w[1]) {
                return Err(malformed("superseded hashes must be strictly ascending"));
            }
            check_reason(&c.reason)?;
            out.push(
                u8::try_from(c.supersedes.len()).map_err(|_| malformed("too many superseded"))?,
            );
            for hash in &c.supersedes {
                out.extend_from_slice(&hash.0);
            }
            let len = u16::try_from(c.reason.len()).map_err(|_| malformed("reason too long"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(c.reason.as_bytes());
        }
    }
    Ok(out)
}

fn check_reason(reason: &str) -> Result<(), SheetError> {
    if reason.trim().is_empty() {
        return Err(
            DomainError::invalid(Field::Reason, reason, "a correction needs a reason").into(),
        );
    }
    if reason.len() > REASON_BYTES_MAX {
        return Err(
            DomainError::invalid(Field::Reason, reason, "is longer than 1024 bytes").into(),
        );
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::invalid(Field::Reason, reason, "has control characters").into());
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn malformed(&self, reason: &'static str) -> SheetError {
        SheetError::Malformed {
            at: self.at,
            reason,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SheetError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.malformed("ends too early"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, SheetError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SheetError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn str8(&mut self) -> Result<&'a str, SheetError> {
        let len = usize::from(self.u8()?);
        let raw = self.take(len)?;
        std::str::from_utf8(raw).map_err(|_| self.malformed("text is not UTF-8"))
    }
}

/// Decodes canonical content; refuses any other form of it.
pub fn decode(content: &[u8]) -> Result<ScoreSheet, SheetError> {
    let mut r = Reader {
        bytes: content,
        at: 0,
    };
    if r.take(SHEET_MAGIC.len())? != SHEET_MAGIC {
        return Err(SheetError::Malformed {
            at: 0,
            reason: "not a score sheet",
        });
    }
    if r.u8()? != SHEET_VERSION {
        return Err(r.malformed("unsupported version"));
    }
    let rules = RulesId::new(r.str8()?)?;
    let exam: ExamId = r.str8()?.parse()?;
    let school = SchoolCode::new(r.str8()?)?;
    let room = RoomCode::new(r.str8()?)?;
    let participant = ParticipantId::new(r.str8()?)?;
    let attempt = Attempt::new(r.u8()?)?;
    let category: Category = r.str8()?.parse()?;
    let count = usize::from(r.u8()?);
    if count == 0 || count > SHEET_CRITERIA_MAX {
        return Err(r.malformed("a sheet scores 1..=32 criteria"));
    }
    let mut points = Vec::with_capacity(count);
    for _ in 0..count {
        let criterion = CriterionId::new(r.str8()?)?;
        let value = r.u8()?;
        if points.last().is_some_and(|&(prev, _)| prev >= criterion) {
            return Err(r.malformed("points must be strictly ascending by criterion"));
        }
        points.push((criterion, value));
    }
    let total = u16::from_be_bytes(r.array()?);
    let outcome = match r.u8()? {
        0 => Outcome::Fail,
        1 => Outcome::Pass,
        _ => return Err(r.malformed("outcome must be 0 or 1")),
    };
    let expert = PersonId::new(r.str8()?)?;
    let expert_key = r.array::<32>()?;
    let signed_at = Timestamp::from_unix_ms(i64::from_be_bytes(r.array()?))?;
    let superseded_count = usize::from(r.u8()?);
    if superseded_count > SUPERSEDES_MAX {
        return Err(r.malformed("a correction supersedes at most 8 sheets"));
    }
    let mut supersedes: Vec<RecordHash> = Vec::with_capacity(superseded_count);
    for _ in 0..superseded_count {
        let hash = RecordHash(r.array()?);
        if supersedes.last().is_some_and(|prev| *prev >= hash) {
            return Err(r.malformed("superseded hashes must be strictly ascending"));
        }
        supersedes.push(hash);
    }
    let reason_len = usize::from(u16::from_be_bytes(r.array()?));
    let reason =
        std::str::from_utf8(r.take(reason_len)?).map_err(|_| r.malformed("reason is not UTF-8"))?;
    if r.at != content.len() {
        return Err(r.malformed("trailing bytes"));
    }
    let correction = match (supersedes.is_empty(), reason.is_empty()) {
        (true, true) => None,
        (false, _) => {
            check_reason(reason)?;
            Some(Correction {
                supersedes,
                reason: reason.to_owned(),
            })
        }
        (true, false) => return Err(r.malformed("a reason without superseded sheets")),
    };
    Ok(ScoreSheet {
        rules,
        subject: SheetSubject {
            exam,
            school,
            participant,
            attempt,
        },
        room,
        category,
        points,
        total,
        outcome,
        expert,
        expert_key,
        signed_at,
        correction,
    })
}

impl fmt::Display for SheetSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} school {} participant {} attempt {}",
            self.exam,
            self.school,
            self.participant,
            self.attempt.get()
        )
    }
}

/// A fixed set of experts, each with a key, the schools they may score for and an optional
/// revocation time: for tests, benchmarks and the simulator. Production nodes use the region
/// directory.
#[derive(Clone, Debug, Default)]
pub struct FixedDirectory {
    experts: std::collections::HashMap<PersonId, FixedExpert>,
    people: std::collections::HashMap<
        PersonId,
        (
            crate::codes::PersonRole,
            crate::codes::OrgCode,
            VerifyingKey,
        ),
    >,
}

#[derive(Clone, Debug)]
struct FixedExpert {
    key: VerifyingKey,
    weak: bool,
    schools: Vec<SchoolCode>,
    revoked_at: Option<Timestamp>,
}

impl FixedDirectory {
    /// Certifies `expert` with `key` for `schools`.
    pub fn add(&mut self, expert: PersonId, key: VerifyingKey, schools: &[SchoolCode]) {
        self.experts.insert(
            expert,
            FixedExpert {
                key,
                weak: crate::ed25519_batch::weak(&key),
                schools: schools.to_vec(),
                revoked_at: None,
            },
        );
    }

    /// Certifies `person` in `role` at `org` (organisers, operators) with `key`.
    pub fn add_person(
        &mut self,
        person: PersonId,
        role: crate::codes::PersonRole,
        org: crate::codes::OrgCode,
        key: VerifyingKey,
    ) {
        self.people.insert(person, (role, org, key));
    }

    /// Revokes `expert` from `at` on: sheets they signed before stay valid.
    pub fn revoke(&mut self, expert: PersonId, at: Timestamp) {
        if let Some(e) = self.experts.get_mut(&expert) {
            e.revoked_at = Some(at);
        }
    }
}

impl SignerDirectory for FixedDirectory {
    fn revoked_at(&self, person: PersonId) -> Option<Timestamp> {
        self.experts.get(&person)?.revoked_at
    }

    fn expert_key(
        &self,
        expert: PersonId,
        school: SchoolCode,
        at: Timestamp,
    ) -> Result<VerifyingKey, SignerError> {
        let entry = self
            .experts
            .get(&expert)
            .ok_or(SignerError::Unknown(expert))?;
        if !entry.schools.contains(&school) {
            return Err(SignerError::NotExpertOf { expert, school });
        }
        if let Some(revoked_at) = entry.revoked_at.filter(|r| *r <= at) {
            return Err(SignerError::Revoked { expert, revoked_at });
        }
        if entry.weak {
            return Err(SignerError::WeakKey(expert));
        }
        Ok(entry.key)
    }

    fn person_key(
        &self,
        role: crate::codes::PersonRole,
        person: PersonId,
        org: crate::codes::OrgCode,
        _at: Timestamp,
    ) -> Result<VerifyingKey, SignerError> {
        match self.people.get(&person) {
            None => Err(SignerError::Unknown(person)),
            Some((r, o, key)) if *r == role && *o == org && !key.is_weak() => Ok(*key),
            Some(_) => Err(SignerError::NotCertifiedAs { person, role, org }),
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn rules() -> Rules {
        Rules::is_2024().expect("shipped rules load")
    }
    pub fn school() -> SchoolCode {
        SchoolCode::new("420101").unwrap()
    }
    pub fn expert(n: u8) -> PersonId {
        PersonId::new(&format!("exp-{n}")).unwrap()
    }
    pub fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }
    pub fn at(minute: i64) -> Timestamp {
        "2024-02-14T02:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .plus_ms(minute * 60_000)
    }
    pub fn subject(participant: &str) -> SheetSubject {
        SheetSubject {
            exam: "is-2024-02-14".parse().unwrap(),
            school: school(),
            participant: ParticipantId::new(participant).unwrap(),
            attempt: Attempt::new(1).unwrap(),
        }
    }
    /// Experts 1..=4 certified for the school.
    pub fn directory() -> FixedDirectory {
        let mut d = FixedDirectory::default();
        for n in 1..=4 {
            d.add(expert(n), key(n).verifying_key(), &[school()]);
        }
        d
    }
    /// A standard-category draft whose total is `total` (0..=20).
    pub fn draft(participant: &str, total: u16, expert_n: u8) -> SheetDraft {
        let rules = rules();
        let mut left = i64::from(total);
        let category = rules.category(Category::Standard).unwrap();
        let points = category
            .criteria(&rules)
            .map(|c| {
                let p = left.min(i64::from(c.max));
                left -= p;
                (c.id, p)
            })
            .collect();
        SheetDraft {
            subject: subject(participant),
            room: RoomCode::new("101").unwrap(),
            category: Category::Standard,
            points,
            expert: expert(expert_n),
            signed_at: at(i64::from(total)),
            correction: None,
        }
    }
    pub fn sign(draft: SheetDraft, expert_n: u8) -> SignedSheet {
        SignedSheet::sign(draft, &rules(), &key(expert_n)).unwrap()
    }
    pub fn correction(of: &[&SignedSheet], total: u16, expert_n: u8) -> SignedSheet {
        let mut d = draft("p1", total, expert_n);
        d.correction = Some(Correction {
            supersedes: of.iter().map(|s| s.hash()).collect(),
            reason: "ошибка при вводе баллов".into(),
        });
        sign(d, expert_n)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use proptest::prelude::*;

    /// Re-encodes `sheet` and attaches `signature` from another sheet: a forged edit.
    fn with_signature_of(sheet: &ScoreSheet, signed: &SignedSheet) -> SignedSheet {
        let mut bytes = encode(sheet).unwrap();
        bytes.extend_from_slice(&signed.as_bytes()[signed.as_bytes().len() - 64..]);
        SignedSheet::from_bytes(bytes).unwrap()
    }

    #[test]
    fn a_signed_sheet_verifies_and_round_trips() {
        let signed = sign(draft("p1", 14, 1), 1);
        let verified = signed.verify(&rules(), &directory()).unwrap();
        assert_eq!(
            (verified.sheet.total, verified.sheet.outcome),
            (14, Outcome::Pass)
        );
        assert_eq!(verified.hash, signed.hash());
        let again = SignedSheet::from_bytes(signed.as_bytes().to_vec()).unwrap();
        assert_eq!(again.verify(&rules(), &directory()).unwrap(), verified);
        assert_eq!(
            sign(draft("p1", 9, 1), 1)
                .decode_unverified()
                .unwrap()
                .outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn the_encoding_does_not_depend_on_the_order_points_were_entered() {
        let forward = draft("p1", 12, 1);
        let mut backward = forward.clone();
        backward.points.reverse();
        assert_eq!(sign(forward, 1).as_bytes(), sign(backward, 1).as_bytes());
    }

    #[test]
    fn signing_refuses_what_does_not_score() {
        let mut d = draft("p1", 12, 1);
        d.points.pop();
        assert!(matches!(
            SignedSheet::sign(d, &rules(), &key(1)),
            Err(SheetError::Score(ScoreError::Missing { .. }))
        ));
        let mut d = draft("p1", 12, 1);
        d.correction = Some(Correction {
            supersedes: vec![RecordHash([1; 32])],
            reason: "  ".into(),
        });
        assert!(matches!(
            SignedSheet::sign(d, &rules(), &key(1)),
            Err(SheetError::Field(DomainError::Invalid {
                field: Field::Reason,
                ..
            }))
        ));
    }

    #[test]
    fn a_recorded_total_or_outcome_that_the_points_do_not_give_is_refused() {
        let signed = sign(draft("p1", 10, 1), 1);
        let mut sheet = signed.decode_unverified().unwrap();
        sheet.outcome = Outcome::Fail;
        // Signed properly by the expert, but inconsistent with the rules.
        let mut bytes = encode(&sheet).unwrap();
        bytes.extend_from_slice(&key(1).sign(&bytes).to_bytes());
        let forged = SignedSheet::from_bytes(bytes).unwrap();
        assert!(matches!(
            forged.verify(&rules(), &directory()),
            Err(SheetError::ScoreMismatch {
                recorded_total: 10,
                recorded_outcome: Outcome::Fail,
                total: 10,
                outcome: Outcome::Pass
            })
        ));
    }

    #[test]
    fn signer_checks() {
        let signed = sign(draft("p1", 10, 1), 1);
        let mut dir = directory();
        dir.revoke(expert(1), at(100));
        assert!(
            signed.verify(&rules(), &dir).is_ok(),
            "revoked after signing: still valid"
        );
        dir.revoke(expert(1), at(0));
        assert!(matches!(
            signed.verify(&rules(), &dir),
            Err(SheetError::Signer(SignerError::Revoked { .. }))
        ));

        let mut other_school = FixedDirectory::default();
        other_school.add(
            expert(1),
            key(1).verifying_key(),
            &[SchoolCode::new("420102").unwrap()],
        );
        assert!(matches!(
            signed.verify(&rules(), &other_school),
            Err(SheetError::Signer(SignerError::NotExpertOf { .. }))
        ));
        assert!(matches!(
            signed.verify(&rules(), &FixedDirectory::default()),
            Err(SheetError::Signer(SignerError::Unknown(_)))
        ));

        // Expert 1 named in the sheet, but signed with expert 2's key.
        let impostor = SignedSheet::sign(draft("p1", 10, 1), &rules(), &key(2)).unwrap();
        assert!(matches!(
            impostor.verify(&rules(), &directory()),
            Err(SheetError::Signer(SignerError::KeyMismatch(_)))
        ));
    }

    #[test]
    fn other_rules_are_refused() {
        let signed = sign(draft("p1", 10, 1), 1);
        let other = Rules::parse(
            &crate::rules::IS_2024_TOML.replace("id = \"is-2024\"", "id = \"is-2025\""),
            "x",
        )
        .unwrap();
        assert!(matches!(
            signed.verify(&other, &directory()),
            Err(SheetError::RulesMismatch { .. })
        ));
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let signed = sign(draft("p1", 10, 1), 1);
        let sheet = signed.decode_unverified().unwrap();
        let mut content = encode(&sheet).unwrap();
        content.push(0);
        assert!(matches!(
            decode(&content),
            Err(SheetError::Malformed {
                reason: "trailing bytes",
                ..
            })
        ));
        let mut swapped = sheet.clone();
        swapped.points.swap(0, 1);
        assert!(encode(&swapped).is_err());
        assert!(SignedSheet::from_bytes(vec![0; 10]).is_err());
        assert!(SignedSheet::from_bytes(vec![0; SHEET_BYTES_MAX + 1]).is_err());
        assert!(matches!(
            decode(b"GIASHEET\x02"),
            Err(SheetError::Malformed {
                reason: "unsupported version",
                ..
            })
        ));
    }

    #[test]
    fn batch_verification_gives_the_single_verdicts() {
        let mut sheets: Vec<SignedSheet> = (0..(VERIFY_BATCH_SIZE as u16 + 600))
            .map(|i| {
                sign(
                    draft(&format!("p{i}"), i % 21, 1 + (i % 4) as u8),
                    1 + (i % 4) as u8,
                )
            })
            .collect();
        // Bad signatures spread over the batch (found by splitting it), one bad signer.
        for i in [0, 300, 301, 599, VERIFY_BATCH_SIZE + 100] {
            let mut bytes = sheets[i].as_bytes().to_vec();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            sheets[i] = SignedSheet::from_bytes(bytes).unwrap();
        }
        sheets[520] = SignedSheet::sign(draft("p520", 3, 1), &rules(), &key(3)).unwrap();
        let batch = verify_many(&sheets, &rules(), &directory());
        let single: Vec<_> = sheets
            .iter()
            .map(|s| s.verify(&rules(), &directory()))
            .collect();
        assert_eq!(batch, single);
        assert_eq!(batch.iter().filter(|r| r.is_err()).count(), 6);
    }

    #[test]
    fn a_record_hash_prints_as_lowercase_hex() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8) * 8 + 7;
        }
        assert_eq!(
            RecordHash(bytes).to_string(),
            "070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff"
        );
    }

    #[test]
    fn a_failed_batch_splits_at_the_group_boundary_nearest_its_middle() {
        let group_of = [0, 0, 0, 1, 1, 1, 1, 2, 3, 3];
        let all: Vec<usize> = (0..10).collect();
        // The middle is 5; the boundaries are at 3, 7 and 8: 3 and 7 are as near, the earlier
        // is taken.
        assert_eq!(split_point(&group_of, &all), 3);
        assert_eq!(split_point(&group_of, &all[3..]), 4, "at sheet 7");
        assert_eq!(split_point(&[0, 0, 0, 0, 0, 0, 1, 1, 1, 1], &all), 6);
        // One group: halved. Candidates skip sheets that failed other checks.
        assert_eq!(split_point(&group_of, &[3, 4, 5, 6]), 2);
        assert_eq!(split_point(&group_of, &[0, 2, 9]), 2);
    }

    /// An empty group among others takes no verdict of theirs, and a bad signature in the group
    /// after it is found.
    #[test]
    fn an_empty_group_between_others_keeps_every_verdict_in_its_place() {
        let sheets: Vec<SignedSheet> = (0..40u16)
            .map(|i| sign(draft(&format!("p{i}"), i % 21, 1), 1))
            .collect();
        let mut last = sheets[20..].to_vec();
        let mut bytes = last[19].as_bytes().to_vec();
        let end = bytes.len() - 1;
        bytes[end] ^= 1;
        last[19] = SignedSheet::from_bytes(bytes).unwrap();
        let d = directory();
        let verdicts = verify_groups(&[(&sheets[..20], &d), (&[], &d), (&last, &d)], &rules());
        assert_eq!(
            verdicts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![20, 0, 20]
        );
        assert!(verdicts[0].iter().all(Result::is_ok));
        assert!(verdicts[2][..19].iter().all(Result::is_ok));
        assert_eq!(verdicts[2][19], Err(SheetError::BadSignature));
    }

    /// Groups share batches but not directories: each sheet is judged against its own group's,
    /// and a bad signature in one group fails no sheet of another.
    #[test]
    fn grouped_verification_judges_each_group_by_its_own_directory() {
        let sheets: Vec<SignedSheet> = (0..(VERIFY_BATCH_SIZE as u16 + 40))
            .map(|i| {
                sign(
                    draft(&format!("p{i}"), i % 21, 1 + (i % 2) as u8),
                    1 + (i % 2) as u8,
                )
            })
            .collect();
        let (first, second) = sheets.split_at(700);
        let mut second = second.to_vec();
        let mut bytes = second[5].as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        second[5] = SignedSheet::from_bytes(bytes).unwrap();
        // The second group's directory certifies expert 1 only.
        let mut only_first = FixedDirectory::default();
        only_first.add(expert(1), key(1).verifying_key(), &[school()]);
        let everyone = directory();
        let verdicts = verify_groups(&[(first, &everyone), (&second, &only_first)], &rules());
        assert_eq!(verdicts.len(), 2);
        assert_eq!(
            verdicts[0],
            first
                .iter()
                .map(|s| s.verify(&rules(), &everyone))
                .collect::<Vec<_>>()
        );
        assert!(verdicts[0].iter().all(Result::is_ok));
        assert_eq!(
            verdicts[1],
            second
                .iter()
                .map(|s| s.verify(&rules(), &only_first))
                .collect::<Vec<_>>()
        );
        // Expert 2's sheets (every other one) and the damaged one fail in the second group.
        let failed: Vec<usize> = (0..second.len())
            .filter(|&i| verdicts[1][i].is_err())
            .collect();
        let expected: Vec<usize> = (0..second.len())
            .filter(|&i| i == 5 || (700 + i) % 2 == 1)
            .collect();
        assert_eq!(failed, expected);
    }

    /// Every way of changing one signed field of a sheet, keeping the original signature.
    fn mutate(sheet: &mut ScoreSheet, which: u8, n: u8) {
        let n16 = u16::from(n);
        match which % 13 {
            0 => sheet.total = sheet.total.wrapping_add(1 + n16),
            1 => {
                sheet.outcome = match sheet.outcome {
                    Outcome::Pass => Outcome::Fail,
                    Outcome::Fail => Outcome::Pass,
                }
            }
            2 => sheet.subject.participant = ParticipantId::new(&format!("q{n}")).unwrap(),
            3 => {
                sheet.subject.attempt =
                    Attempt::new(1 + (sheet.subject.attempt.get() + n % 2) % 3).unwrap()
            }
            4 => sheet.subject.school = SchoolCode::new(&format!("9{n}")).unwrap(),
            5 => sheet.room = RoomCode::new(&format!("R{n}")).unwrap(),
            6 => sheet.expert = expert(2 + n % 3),
            7 => sheet.expert_key[usize::from(n) % 32] ^= 1,
            8 => sheet.signed_at = sheet.signed_at.plus_ms(1 + i64::from(n)),
            9 => sheet.subject.exam = "is-2024-03-13".parse().unwrap(),
            10 => {
                let i = usize::from(n) % sheet.points.len();
                sheet.points[i].1 = sheet.points[i].1.wrapping_add(1);
            }
            11 => {
                sheet.correction = Some(Correction {
                    supersedes: vec![RecordHash([n; 32])],
                    reason: "x".into(),
                })
            }
            _ => sheet.category = Category::Musculoskeletal,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_changed_byte_breaks_verification(total in 0u16..=20, position in any::<prop::sample::Index>(), bit in 0u8..8) {
            let signed = sign(draft("p1", total, 1), 1);
            let mut bytes = signed.as_bytes().to_vec();
            let i = position.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let tampered = SignedSheet::from_bytes(bytes).unwrap();
            prop_assert!(tampered.verify(&rules(), &directory()).is_err());
        }

        #[test]
        fn any_changed_field_breaks_verification(total in 0u16..=20, which in 0u8..13, n in 0u8..200) {
            let signed = sign(draft("p1", total, 1), 1);
            let mut sheet = signed.decode_unverified().unwrap();
            let original = sheet.clone();
            mutate(&mut sheet, which, n);
            prop_assume!(sheet != original);
            if let Ok(content) = encode(&sheet) {
                let forged = with_signature_of(&sheet, &signed);
                prop_assert_eq!(forged.content(), &content[..]);
                prop_assert!(forged.verify(&rules(), &directory()).is_err());
            }
        }
    }
}
