//! The exam materials (КИМ): a package the РЦОИ distributes encrypted before the day and opens
//! at 07:30 local time on it (seed 002 §30: «не ранее 07.30 часов по местному времени»).
//!
//! - The package is an [age](https://age-encryption.org/v1) file encrypted with a passphrase,
//!   the exam's **release code**: sixteen characters a person can read over the phone
//!   ([`ReleaseCode`], 80 bits). It travels as a blob, named in the region directory by the
//!   РЦОИ's signed [`Package`] statement, which carries a **commitment** to the code (a salted
//!   hash) and not the code.
//! - At the release time the РЦОИ signs a [`Release`] naming the code into the directory, which
//!   every node reads and only the РЦОИ may write: a school's clock never decides, and a school
//!   cannot open its package before the РЦОИ lets it.
//! - **Reserve scheme** (§26, §30): a school offline at 07:30 types the code read to it by phone
//!   or sent by e-mail. Its node checks the code against the commitment first ([`Package::opens_with`]):
//!   a wrong code is refused (and counted by the school), and a code of another exam never
//!   matches, since the commitment hashes the exam with the code.
//!
//! No IO here: encrypting and decrypting are the node's (it holds the files).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::blob::{BlobHash, BlobRef};
use crate::calendar::{Date, Timestamp, UtcOffset};
use crate::codes::NodeRole;
use crate::exam::ExamId;
use crate::statement::{Fields, Statement, StatementError, StatementKind};
use crate::sync::CertVerifier;

/// The minute of the exam day, local time, before which nothing opens: 07:30 (seed 002 §30).
pub const RELEASE_LOCAL_MIN: i64 = 7 * 60 + 30;
/// Characters of a release code (Crockford base 32, 5 bits each: 80 bits).
pub const RELEASE_CODE_CHARS: usize = 16;
/// Random bytes a release code is made from.
pub const RELEASE_CODE_BYTES: usize = RELEASE_CODE_CHARS * 5 / 8;
/// Bytes of the salt hashed with a code into its commitment.
pub const SALT_BYTES: usize = 16;
/// The longest file name of a package, in characters.
pub const PACKAGE_NAME_CHARS_MAX: usize = 100;
/// Crockford's base 32: no I, L, O or U, so what is read aloud is not misheard as another.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const COMMITMENT_DOMAIN: &[u8] = b"giasync materials release code v1\0";

/// Why materials are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaterialsError {
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error("the signer's certificate: {0}")]
    Certificate(String),
    #[error("signed by {0}, not by the РЦОИ")]
    NotRcoi(String),
    #[error("the statement is about {found}, not {expected}")]
    WrongExam { expected: ExamId, found: ExamId },
    #[error("the release names package {found}, the directory holds {expected}")]
    WrongPackage { expected: BlobHash, found: BlobHash },
    #[error("the code does not open the materials of {0}")]
    WrongCode(ExamId),
    #[error("released at {at}, before the release time {release_at}")]
    BeforeReleaseTime {
        at: Timestamp,
        release_at: Timestamp,
    },
    #[error(
        "{0:?} is not a release code: {RELEASE_CODE_CHARS} letters and digits, e.g. K7QM-2XHP-9RTA-W4NC"
    )]
    BadCode(String),
    #[error(
        "the package's file name must be 1..={PACKAGE_NAME_CHARS_MAX} characters, without / or a line break"
    )]
    BadName,
    #[error("the materials hold 1..={max} variants, not {0}", max = crate::room::VARIANT_MAX)]
    BadVariants(u16),
}

/// An exam's release code: what opens its package (the age passphrase).
#[derive(Clone, PartialEq, Eq)]
pub struct ReleaseCode([u8; RELEASE_CODE_CHARS]);

impl ReleaseCode {
    /// The code of `entropy` (random bytes from the operating system).
    #[must_use]
    pub fn from_entropy(entropy: [u8; RELEASE_CODE_BYTES]) -> Self {
        let mut bits: u128 = 0;
        for b in entropy {
            bits = (bits << 8) | u128::from(b);
        }
        let mut chars = [0u8; RELEASE_CODE_CHARS];
        for (i, c) in chars.iter_mut().enumerate() {
            let shift = 5 * (RELEASE_CODE_CHARS - 1 - i);
            *c = ALPHABET[((bits >> shift) & 31) as usize];
        }
        ReleaseCode(chars)
    }

    /// The passphrase the package is encrypted with: the code as printed, with its dashes.
    #[must_use]
    pub fn passphrase(&self) -> String {
        self.to_string()
    }
}

// On the admin socket: its text form.
crate::text::serde_via_text!(ReleaseCode);

/// Never in logs by accident: a code is a key.
impl fmt::Debug for ReleaseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReleaseCode(…)")
    }
}

/// In four groups of four: `K7QM-2XHP-9RTA-W4NC`.
impl fmt::Display for ReleaseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            for &c in group {
                write!(f, "{}", char::from(c))?;
            }
        }
        Ok(())
    }
}

/// As a person types what they heard: any case, with or without dashes and spaces; O is read
/// as 0 and I or L as 1 (Crockford's rule).
impl FromStr for ReleaseCode {
    type Err = MaterialsError;
    fn from_str(text: &str) -> Result<Self, MaterialsError> {
        let bad = || MaterialsError::BadCode(text.chars().take(40).collect());
        let mut chars = [0u8; RELEASE_CODE_CHARS];
        let mut n = 0;
        for c in text.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let byte = u8::try_from(c).map_err(|_| bad())?;
            if !ALPHABET.contains(&byte) || n == RELEASE_CODE_CHARS {
                return Err(bad());
            }
            chars[n] = byte;
            n += 1;
        }
        if n != RELEASE_CODE_CHARS {
            return Err(bad());
        }
        Ok(ReleaseCode(chars))
    }
}

/// The commitment to `code` for `exam`: what a school checks a typed code against.
#[must_use]
pub fn commitment(exam: ExamId, salt: &[u8; SALT_BYTES], code: &ReleaseCode) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(COMMITMENT_DOMAIN);
    hash.update(exam.to_string().as_bytes());
    hash.update([0]);
    hash.update(salt);
    hash.update(code.0);
    hash.finalize().into()
}

/// When an exam's materials open: 07:30 of its date on the region's clock.
pub fn release_time(date: Date, clock: UtcOffset) -> Result<Timestamp, crate::DomainError> {
    Timestamp::from_unix_ms(date.day_window_ms(clock).start + RELEASE_LOCAL_MIN * 60_000)
}

/// How a school opened its package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenedBy {
    /// With the code of the РЦОИ's release, as it arrived through the network.
    Release,
    /// With the reserve code typed in at the school.
    ReserveCode,
}

impl OpenedBy {
    /// As the school's protocol stores it.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            OpenedBy::Release => "release",
            OpenedBy::ReserveCode => "code",
        }
    }

    /// Read back; `None` for text no version wrote.
    #[must_use]
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "release" => Some(OpenedBy::Release),
            "code" => Some(OpenedBy::ReserveCode),
            _ => None,
        }
    }
}

fn hex<const N: usize>(bytes: &[u8; N]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(key: &str, text: &str) -> Result<[u8; N], StatementError> {
    let bad = || StatementError::Invalid(format!("{key}: {N} bytes in hexadecimal"));
    if text.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

/// The РЦОИ's key from its certificate, refused unless the region's CA vouches for a РЦОИ.
fn rcoi_key(rcoi_cert: &[u8], verifier: &dyn CertVerifier) -> Result<VerifyingKey, MaterialsError> {
    let (identity, key) = verifier
        .node_key(rcoi_cert)
        .map_err(MaterialsError::Certificate)?;
    if identity.org.role() != NodeRole::Rcoi {
        return Err(MaterialsError::NotRcoi(identity.to_string()));
    }
    VerifyingKey::from_bytes(&key).map_err(|e| MaterialsError::Certificate(e.to_string()))
}

/// The РЦОИ's statement that a package holds an exam's materials: which blob, under what file
/// name, when it opens, and the commitment to its code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub exam: ExamId,
    pub blob: BlobRef,
    /// The file the package opens into, e.g. `kim-2024-02-14.zip`.
    pub name: String,
    /// How many КИМ variants the materials hold (numbered 1..=variants): the room log gives a
    /// participant one of them (seed 002 §42).
    pub variants: u16,
    pub salt: [u8; SALT_BYTES],
    pub commitment: [u8; 32],
    /// Not before this may the РЦОИ release the code (07:30 of the exam day, its clock).
    pub release_at: Timestamp,
    pub at: Timestamp,
}

impl Package {
    /// A package for `exam` that `code` opens.
    #[allow(clippy::too_many_arguments)] // each is one fact of the package
    pub fn new(
        exam: ExamId,
        blob: BlobRef,
        name: &str,
        variants: u16,
        code: &ReleaseCode,
        salt: [u8; SALT_BYTES],
        release_at: Timestamp,
        at: Timestamp,
    ) -> Result<Self, MaterialsError> {
        check_name(name)?;
        check_variants(variants)?;
        Ok(Package {
            exam,
            blob,
            name: name.to_owned(),
            variants,
            salt,
            commitment: commitment(exam, &salt, code),
            release_at,
            at,
        })
    }

    /// Whether `code` is this package's code.
    #[must_use]
    pub fn opens_with(&self, code: &ReleaseCode) -> bool {
        commitment(self.exam, &self.salt, code) == self.commitment
    }

    /// The statement's fields, to be signed by the РЦОИ's node key.
    #[must_use]
    pub fn fields(&self) -> Fields {
        Fields::new()
            .with("exam", self.exam)
            .with("blob", self.blob.hash)
            .with("bytes", self.blob.bytes)
            .with("name", &self.name)
            .with("variants", self.variants)
            .with("salt", hex(&self.salt))
            .with("commitment", hex(&self.commitment))
            .with("release_at", self.release_at)
            .with("at", self.at)
    }

    /// Checks a package statement: signed by the РЦОИ (`rcoi_cert`, vouched for by
    /// `verifier`) and about `exam`.
    pub fn verify(
        statement: &Statement,
        rcoi_cert: &[u8],
        verifier: &dyn CertVerifier,
        exam: ExamId,
    ) -> Result<Package, MaterialsError> {
        let key = rcoi_key(rcoi_cert, verifier)?;
        let fields = statement.verify(StatementKind::Materials, &key)?;
        let package = Package {
            exam: fields.parse("exam")?,
            blob: BlobRef {
                hash: fields.parse("blob")?,
                bytes: fields.parse("bytes")?,
            },
            name: fields.get("name")?.to_owned(),
            variants: fields.parse("variants")?,
            salt: unhex("salt", fields.get("salt")?)?,
            commitment: unhex("commitment", fields.get("commitment")?)?,
            release_at: fields.parse("release_at")?,
            at: fields.parse("at")?,
        };
        check_name(&package.name)?;
        check_variants(package.variants)?;
        if package.exam != exam {
            return Err(MaterialsError::WrongExam {
                expected: exam,
                found: package.exam,
            });
        }
        Ok(package)
    }
}

/// Whether a package may be named `name` and hold `variants` variants: what [`Package::new`]
/// checks, to ask before anything is sealed.
pub fn check_facts(name: &str, variants: u16) -> Result<(), MaterialsError> {
    check_name(name)?;
    check_variants(variants)
}

fn check_variants(variants: u16) -> Result<(), MaterialsError> {
    if variants == 0 || variants > crate::room::VARIANT_MAX {
        return Err(MaterialsError::BadVariants(variants));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), MaterialsError> {
    let n = name.chars().count();
    if n == 0
        || n > PACKAGE_NAME_CHARS_MAX
        || name.contains(['/', '\\', '\n', '\r'])
        || name == "."
        || name == ".."
    {
        return Err(MaterialsError::BadName);
    }
    Ok(())
}

/// The РЦОИ's statement that an exam's materials are open: the code, for every school to open
/// its copy of the package with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub exam: ExamId,
    pub package: BlobHash,
    pub code: ReleaseCode,
    pub at: Timestamp,
}

impl Release {
    /// The statement's fields, to be signed by the РЦОИ's node key.
    #[must_use]
    pub fn fields(&self) -> Fields {
        Fields::new()
            .with("exam", self.exam)
            .with("package", self.package)
            .with("code", &self.code)
            .with("at", self.at)
    }

    /// Checks a release: signed by the РЦОИ, for `package` (already checked), with the code
    /// the package's commitment names, and made no earlier than the package's release time.
    pub fn verify(
        statement: &Statement,
        rcoi_cert: &[u8],
        verifier: &dyn CertVerifier,
        package: &Package,
    ) -> Result<Release, MaterialsError> {
        let key = rcoi_key(rcoi_cert, verifier)?;
        let fields = statement.verify(StatementKind::MaterialsRelease, &key)?;
        let release = Release {
            exam: fields.parse("exam")?,
            package: fields.parse("package")?,
            code: fields.get("code")?.parse()?,
            at: fields.parse("at")?,
        };
        if release.exam != package.exam {
            return Err(MaterialsError::WrongExam {
                expected: package.exam,
                found: release.exam,
            });
        }
        if release.package != package.blob.hash {
            return Err(MaterialsError::WrongPackage {
                expected: package.blob.hash,
                found: release.package,
            });
        }
        if !package.opens_with(&release.code) {
            return Err(MaterialsError::WrongCode(package.exam));
        }
        if release.at < package.release_at {
            return Err(MaterialsError::BeforeReleaseTime {
                at: release.at,
                release_at: package.release_at,
            });
        }
        Ok(release)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;
    use crate::codes::{OrgCode, RegionCode};
    use crate::identity::NodeIdentity;
    use crate::sync::FixedCa;
    use ed25519_dalek::SigningKey;

    fn exam(text: &str) -> ExamId {
        text.parse().unwrap()
    }

    fn node(role: NodeRole, code: &str) -> NodeIdentity {
        NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org: OrgCode::parse(role, code).unwrap(),
            municipality: None,
        }
    }

    fn code(seed: u8) -> ReleaseCode {
        ReleaseCode::from_entropy([seed; RELEASE_CODE_BYTES])
    }

    fn package(code: &ReleaseCode) -> Package {
        let exam = exam("is-2024-02-14");
        Package::new(
            exam,
            BlobRef {
                hash: BlobHash([7; 32]),
                bytes: 1000,
            },
            "kim.zip",
            4,
            code,
            [3; SALT_BYTES],
            release_time(exam.date(), UtcOffset::from_minutes(7 * 60).unwrap()).unwrap(),
            "2024-02-10T00:00:00Z".parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_code_reads_back_as_typed_by_a_person() {
        // 80 bits, the first and last five written out by hand: 0x00.. gives zeros.
        assert_eq!(
            ReleaseCode::from_entropy([0; RELEASE_CODE_BYTES]).to_string(),
            "0000-0000-0000-0000"
        );
        let mut entropy = [0; RELEASE_CODE_BYTES];
        entropy[RELEASE_CODE_BYTES - 1] = 0b0001_1111;
        assert_eq!(
            ReleaseCode::from_entropy(entropy).to_string(),
            "0000-0000-0000-000Z"
        );
        entropy = [0; RELEASE_CODE_BYTES];
        entropy[0] = 0b1111_1000;
        assert_eq!(
            ReleaseCode::from_entropy(entropy).to_string(),
            "Z000-0000-0000-0000"
        );
        let c = code(0xA5);
        let printed = c.to_string();
        assert_eq!(printed.len(), 19);
        assert_eq!(printed.parse::<ReleaseCode>().unwrap(), c);
        // Lower case, spaces instead of dashes, O for 0 and l for 1.
        let typed = printed.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(typed.parse::<ReleaseCode>().unwrap(), c);
        assert_eq!(
            "0000 0000 0000 000l".parse::<ReleaseCode>().unwrap(),
            "0000-0000-0000-0001".parse().unwrap()
        );
        for bad in [
            "",
            "0000-0000-0000-000",
            "0000-0000-0000-00000",
            "0000-0000-0000-000U",
            "ЖЖЖЖ-0000-0000-0000",
        ] {
            assert!(bad.parse::<ReleaseCode>().is_err(), "{bad:?}");
        }
        assert!(!format!("{c:?}").contains(&printed[..4]));
    }

    #[test]
    fn the_release_time_is_half_past_seven_on_the_regions_clock() {
        let kuzbass = UtcOffset::from_minutes(7 * 60).unwrap();
        let date: Date = "2024-02-14".parse().unwrap();
        // 07:30 at UTC+7 is 00:30 UTC, written out.
        assert_eq!(
            release_time(date, kuzbass).unwrap(),
            "2024-02-14T00:30:00Z".parse().unwrap()
        );
        let moscow = UtcOffset::from_minutes(3 * 60).unwrap();
        assert_eq!(
            release_time(date, moscow).unwrap(),
            "2024-02-14T04:30:00Z".parse().unwrap()
        );
    }

    #[test]
    fn only_the_exams_own_code_matches_its_commitment() {
        let right = code(1);
        let p = package(&right);
        assert!(p.opens_with(&right));
        assert!(!p.opens_with(&code(2)));
        // The same code committed for another exam (or with another salt) is another hash.
        let other = exam("is-2024-03-13");
        assert_ne!(commitment(other, &p.salt, &right), p.commitment);
        assert_ne!(commitment(p.exam, &[4; SALT_BYTES], &right), p.commitment);
    }

    #[test]
    fn a_package_and_its_release_verify_only_as_the_rcoi_signed_them() {
        let ca = FixedCa::default();
        let rcoi_key = SigningKey::from_bytes(&[50; 32]);
        let rcoi_cert = ca.issue(node(NodeRole::Rcoi, "42"), &rcoi_key);
        let right = code(1);
        let p = package(&right);
        let signed = Statement::sign(StatementKind::Materials, &p.fields(), &rcoi_key).unwrap();
        assert_eq!(
            Package::verify(&signed, &rcoi_cert, &ca, p.exam).unwrap(),
            p
        );
        assert!(matches!(
            Package::verify(&signed, &rcoi_cert, &ca, exam("is-2024-03-13")),
            Err(MaterialsError::WrongExam { .. })
        ));
        let release = |code: ReleaseCode, at: Timestamp, package: BlobHash| Release {
            exam: p.exam,
            package,
            code,
            at,
        };
        let sign = |r: &Release, key: &SigningKey| {
            Statement::sign(StatementKind::MaterialsRelease, &r.fields(), key).unwrap()
        };
        let good = release(right.clone(), p.release_at, p.blob.hash);
        assert_eq!(
            Release::verify(&sign(&good, &rcoi_key), &rcoi_cert, &ca, &p).unwrap(),
            good
        );
        // A school, or a МОУО hub, signing a release with its own certified key: refused.
        let hub_key = SigningKey::from_bytes(&[51; 32]);
        let hub_cert = ca.issue(node(NodeRole::Municipality, "4201"), &hub_key);
        assert!(matches!(
            Release::verify(&sign(&good, &hub_key), &hub_cert, &ca, &p),
            Err(MaterialsError::NotRcoi(_))
        ));
        // The РЦОИ's certificate beside another key's signature: refused.
        assert!(Release::verify(&sign(&good, &hub_key), &rcoi_cert, &ca, &p).is_err());
        // A release signed before 07:30, for another package, or with a wrong code: refused.
        let early = release(right.clone(), p.release_at.plus_ms(-1), p.blob.hash);
        assert!(matches!(
            Release::verify(&sign(&early, &rcoi_key), &rcoi_cert, &ca, &p),
            Err(MaterialsError::BeforeReleaseTime { .. })
        ));
        let elsewhere = release(right, p.release_at, BlobHash([8; 32]));
        assert!(matches!(
            Release::verify(&sign(&elsewhere, &rcoi_key), &rcoi_cert, &ca, &p),
            Err(MaterialsError::WrongPackage { .. })
        ));
        let wrong = release(code(2), p.release_at, p.blob.hash);
        assert!(matches!(
            Release::verify(&sign(&wrong, &rcoi_key), &rcoi_cert, &ca, &p),
            Err(MaterialsError::WrongCode(_))
        ));
        // A package statement is not a release, and the other way round.
        assert!(Release::verify(&signed, &rcoi_cert, &ca, &p).is_err());
    }

    #[test]
    fn a_package_names_a_plain_file() {
        for name in [
            "",
            "a/b",
            "..",
            "x\ny",
            &"я".repeat(PACKAGE_NAME_CHARS_MAX + 1),
        ] {
            assert_eq!(
                Package::new(
                    exam("is-2024-02-14"),
                    BlobRef {
                        hash: BlobHash([7; 32]),
                        bytes: 1
                    },
                    name,
                    4,
                    &code(1),
                    [0; SALT_BYTES],
                    "2024-02-14T00:30:00Z".parse().unwrap(),
                    "2024-02-10T00:00:00Z".parse().unwrap(),
                )
                .unwrap_err(),
                MaterialsError::BadName,
                "{name:?}"
            );
        }
    }
}
