//! Enrolment of people: a person's signing key is made and sealed with their PIN on the school's
//! machine, at their first sign-in, and never leaves it. Only the public key travels, and the
//! certificate comes back.
//!
//! 1. At the РЦОИ, [`issue_code`] records who is to be enrolled (identity, full name) and
//!    returns a one-time enrolment code ([`CODE_CHARS`] characters, 80 bits), handed to the person
//!    on paper. The CA folder keeps only a key derived from the code ([`ENROLMENTS_FILE`]).
//! 2. At the school, [`request`] makes the key. It returns the sealed key file and a request
//!    naming the identity and the public key. The request is authenticated by an HMAC under the
//!    code, so a request changed on its way (another key, another person) is refused. It is
//!    also signed by the new key, which proves the key is held.
//! 3. At the РЦОИ, [`sign`] checks the request against the recorded enrolment: the code's
//!    HMAC, the signature, not used, not expired, the same identity. It then issues the
//!    certificate for the request's key, with the identity and name the CA recorded, and marks
//!    the code used. A second request with the same code is refused.
//! 4. At the school, the certificate is placed beside the key (`giasync-node install-person`).

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::{Identity, PersonIdentity};
use crate::keyfile::{self, KdfParams, Pin};
use crate::pki::{Pki, PkiError, Validity, write_atomic};

/// The CA folder's record of enrolment codes issued and not yet used up.
pub const ENROLMENTS_FILE: &str = "enrolments.json";
/// How many characters an enrolment code has (Crockford's base32: 5 bits each, 80 in all).
pub const CODE_CHARS: usize = 16;
/// How long an enrolment code is valid by default.
pub const CODE_VALIDITY_DAYS: i64 = 30;
/// What a request file says it is, first.
const REQUEST_KIND: &str = "giasync person enrolment request v1";
/// Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand survives.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What went wrong with an enrolment code or request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolPersonError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    /// A code of the wrong length or with characters outside the alphabet.
    #[error(
        "the enrolment code must be {CODE_CHARS} characters of 0-9 and A-Z (dashes and spaces are ignored)"
    )]
    CodeFormat,
    /// The request file does not read.
    #[error("the request: {0}")]
    Request(String),
    /// No enrolment code was issued for the identity the request names.
    #[error("no enrolment code was issued for {0}")]
    NotEnrolled(String),
    /// The request's HMAC does not verify under the code issued for it.
    #[error(
        "the request for {0} was not made with the enrolment code issued for it (or was changed on its way)"
    )]
    WrongCode(String),
    /// The request is not signed by the key it names.
    #[error("the request for {0} is not signed by the key it names")]
    BadSignature(String),
    /// The code was used already (for the certificate with this serial; 0 when its signing was
    /// cut short, for another key).
    #[error("the enrolment code for {0} was used already (certificate {1}); issue a new code")]
    Used(String, u64),
    /// The code expired.
    #[error("the enrolment code for {0} expired at {1}; issue a new code")]
    Expired(String, String),
}

/// One enrolment code issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The person's identity (a `giasync://` URI).
    identity: String,
    name: String,
    /// SHA-256 of the code (hex): the HMAC key of the request.
    code_key: String,
    /// RFC 3339.
    expires: String,
    /// The certificate issued with it, once used.
    #[serde(default)]
    used: Option<u64>,
    /// The key it was used for (hex), recorded before the certificate is issued: a signing cut
    /// short in between may be done again for that key, and for no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used_for: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Enrolments {
    codes: Vec<Pending>,
}

fn enrolments_path(pki: &Pki) -> PathBuf {
    pki.dir().join(ENROLMENTS_FILE)
}

fn load(path: &Path) -> Result<Enrolments, PkiError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| PkiError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Enrolments::default()),
        Err(e) => Err(PkiError::Io {
            path: path.display().to_string(),
            source: e,
        }),
    }
}

fn save(path: &Path, enrolments: &Enrolments) -> Result<(), PkiError> {
    let json = serde_json::to_vec_pretty(enrolments).map_err(|e| PkiError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_atomic(path, &json, true)
}

/// A code as typed: upper case, dashes and spaces dropped, the letters people confuse with
/// digits (O, I, L) read as those digits.
fn normalise(code: &str) -> Result<String, EnrolPersonError> {
    let code: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if code.len() != CODE_CHARS || !code.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err(EnrolPersonError::CodeFormat);
    }
    Ok(code)
}

/// The HMAC key a code gives.
fn code_key(code: &str) -> Result<[u8; 32], EnrolPersonError> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(b"giasync enrolment code v1\0");
    hash.update(normalise(code)?.as_bytes());
    Ok(hash.finalize().into())
}

/// What the HMAC and the signature of a request cover.
fn signed_bytes(identity_uri: &str, public_key: &[u8; 32]) -> Vec<u8> {
    let mut bytes = REQUEST_KIND.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(identity_uri.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(public_key);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], EnrolPersonError> {
    let bad = || EnrolPersonError::Request(format!("{what} is not {N} bytes of hex"));
    if text.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

/// Records an enrolment of `identity` (`name`: the full name, ФИО) valid until `expires`, and
/// returns its code, grouped by four for reading (`7K3M-Q9XA-…`). A new code for the same
/// identity replaces an unused one.
pub fn issue_code(
    pki: &Pki,
    identity: &PersonIdentity,
    name: &str,
    expires: OffsetDateTime,
) -> Result<String, EnrolPersonError> {
    if identity.region != pki.region() {
        return Err(PkiError::Corrupt {
            path: "--org".into(),
            message: format!("{identity} is not of this CA's region {}", pki.region()),
        }
        .into());
    }
    if name.trim().is_empty() {
        return Err(PkiError::Corrupt {
            path: "--name".into(),
            message: "a person's name is empty".into(),
        }
        .into());
    }
    let mut random = [0u8; CODE_CHARS];
    rand_core::OsRng.fill_bytes(&mut random);
    let code: String = random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    let path = enrolments_path(pki);
    let mut enrolments = load(&path)?;
    let uri = identity.to_uri();
    enrolments
        .codes
        .retain(|p| p.identity != uri || p.used.is_some());
    enrolments.codes.push(Pending {
        identity: uri,
        name: name.trim().to_owned(),
        code_key: hex(&code_key(&code)?),
        expires: crate::show::rfc3339(expires),
        used: None,
        used_for: None,
    });
    save(&path, &enrolments)?;
    let grouped: Vec<&str> = (0..CODE_CHARS / 4)
        .map(|i| &code[4 * i..4 * i + 4])
        .collect();
    Ok(grouped.join("-"))
}

/// A request for a person's certificate, as it travels from the school to the РЦОИ (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRequest {
    pub kind: String,
    /// The person's identity (a `giasync://` URI).
    pub identity: String,
    /// The ed25519 public key (hex).
    pub key: String,
    /// HMAC-SHA-256 under the enrolment code's key (hex).
    pub mac: String,
    /// ed25519 by the key (hex).
    pub signature: String,
}

impl PersonRequest {
    /// The identity it names.
    pub fn identity(&self) -> Result<PersonIdentity, EnrolPersonError> {
        match Identity::parse_uri(&self.identity) {
            Ok(Identity::Person(person)) => Ok(person),
            _ => Err(EnrolPersonError::Request(format!(
                "{:?} is not a person's identity",
                self.identity
            ))),
        }
    }

    /// The key it is for.
    pub fn public_key(&self) -> Result<[u8; 32], EnrolPersonError> {
        unhex(&self.key, "the key")
    }

    /// Reads a request file's text.
    pub fn parse(text: &str) -> Result<Self, EnrolPersonError> {
        let request: PersonRequest =
            serde_json::from_str(text).map_err(|e| EnrolPersonError::Request(e.to_string()))?;
        if request.kind != REQUEST_KIND {
            return Err(EnrolPersonError::Request(format!(
                "not a person's enrolment request ({:?})",
                request.kind
            )));
        }
        Ok(request)
    }

    /// The request as a file's text.
    #[must_use]
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Makes `identity`'s key, sealed with `pin` (checked strong enough for the role), and the
/// request for its certificate under the enrolment `code`: the key file's bytes, the request,
/// and the key's fingerprint (to read out by phone).
pub fn request(
    identity: &PersonIdentity,
    code: &str,
    pin: &Pin,
    kdf: KdfParams,
) -> Result<(Vec<u8>, PersonRequest, String), EnrolPersonError> {
    keyfile::check_strength(identity.role, pin)?;
    let mac_key = code_key(code)?;
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let sealed = keyfile::seal(&key, pin, kdf)?;
    let public_key = key.verifying_key().to_bytes();
    let uri = identity.to_uri();
    let bytes = signed_bytes(&uri, &public_key);
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key),
        &bytes,
    );
    let request = PersonRequest {
        kind: REQUEST_KIND.to_owned(),
        identity: uri,
        key: hex(&public_key),
        mac: hex(mac.as_ref()),
        signature: hex(&key.sign(&bytes).to_bytes()),
    };
    Ok((sealed, request, crate::enrol::fingerprint(&public_key)))
}

/// Checks `request` against the enrolment recorded for its identity (code, signature, not
/// used, not expired at `now`) and issues the certificate (PEM) with `pki`, with the identity
/// and name the CA recorded, valid for `validity`; the code is then used up.
pub fn sign(
    pki: &mut Pki,
    request: &PersonRequest,
    now: OffsetDateTime,
    validity: Validity,
) -> Result<(PersonIdentity, u64, String), EnrolPersonError> {
    let identity = request.identity()?;
    let public_key = request.public_key()?;
    let path = enrolments_path(pki);
    let mut enrolments = load(&path)?;
    let who = identity.to_string();
    let pending = enrolments
        .codes
        .iter_mut()
        .rev()
        .find(|p| p.identity == request.identity)
        .ok_or_else(|| EnrolPersonError::NotEnrolled(who.clone()))?;
    let bytes = signed_bytes(&request.identity, &public_key);
    let mac_key: [u8; 32] = unhex(&pending.code_key, "the recorded code key")?;
    let mac: [u8; 32] = unhex(&request.mac, "the HMAC")?;
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key),
        &bytes,
        &mac,
    )
    .map_err(|_| EnrolPersonError::WrongCode(who.clone()))?;
    let signature =
        ed25519_dalek::Signature::from_bytes(&unhex(&request.signature, "the signature")?);
    VerifyingKey::from_bytes(&public_key)
        .and_then(|key| key.verify_strict(&bytes, &signature))
        .map_err(|_| EnrolPersonError::BadSignature(who.clone()))?;
    if let Some(serial) = pending.used {
        return Err(EnrolPersonError::Used(who, serial));
    }
    if pending.used_for.as_ref().is_some_and(|k| *k != request.key) {
        return Err(EnrolPersonError::Used(who, 0));
    }
    let expires = time::OffsetDateTime::parse(
        &pending.expires,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| PkiError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if now > expires {
        return Err(EnrolPersonError::Expired(who, pending.expires.clone()));
    }
    // The code is spent before the certificate exists: cut short in between, the code is
    // good again only for this request's key.
    pending.used_for = Some(request.key.clone());
    let name = pending.name.clone();
    save(&path, &enrolments)?;
    let (serial, cert) = pki.issue_person_for(&identity, &name, validity, public_key)?;
    if let Some(pending) = enrolments
        .codes
        .iter_mut()
        .rev()
        .find(|p| p.identity == request.identity)
    {
        pending.used = Some(serial);
    }
    save(&path, &enrolments)?;
    Ok((identity, serial, cert))
}

#[cfg(test)]
mod tests {
    use super::*;
    use giasync_shared::codes::{OrgCode, PersonId, PersonRole, RegionCode, SchoolCode};

    const FAST: KdfParams = KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    fn expert(region: RegionCode) -> PersonIdentity {
        PersonIdentity {
            region,
            role: PersonRole::Expert,
            id: PersonId::new("exp-420101-9").unwrap(),
            org: OrgCode::School(SchoolCode::new("420101").unwrap()),
        }
    }

    /// A region's CA in `dir`.
    fn ca(dir: &std::path::Path, now: OffsetDateTime) -> Pki {
        Pki::init(&dir.join("ca"), RegionCode::new("42").unwrap(), "Тест", now).unwrap()
    }

    fn pin() -> Pin {
        Pin::new("долгий пароль эксперта".into()).unwrap()
    }

    #[test]
    fn a_code_enrols_once_and_the_certificate_carries_the_recorded_name() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let mut pki = ca(dir.path(), now);
        let who = expert(pki.region());
        let code = issue_code(
            &pki,
            &who,
            "Иванова Анна Викторовна",
            now + time::Duration::days(30),
        )
        .unwrap();
        assert_eq!(code.len(), CODE_CHARS + 3, "{code}");
        // Typed by hand: lower case, without the dashes.
        let typed = code.replace('-', "").to_lowercase();
        let (sealed, request, _) = request(&who, &typed, &pin(), FAST).unwrap();
        let validity = Validity::days_from(now, 365).unwrap();
        let travelled = PersonRequest::parse(&request.to_text()).unwrap();
        let (identity, serial, cert) = sign(&mut pki, &travelled, now, validity).unwrap();
        assert_eq!(identity, who);
        let der = crate::show::certs_from_pem(cert.as_bytes())
            .unwrap()
            .remove(0);
        let summary = crate::show::summarize_der(&der).unwrap();
        assert!(
            summary.subject.contains("Иванова Анна Викторовна"),
            "{summary:?}"
        );
        // The certificate is for the key sealed at the school, which the PIN opens.
        let key = keyfile::open(&sealed, &pin()).unwrap();
        assert_eq!(hex(&key.verifying_key().to_bytes()), request.key);
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            parsed.public_key().subject_public_key.data.as_ref(),
            key.verifying_key().to_bytes().as_slice()
        );
        // Once only.
        let again = sign(&mut pki, &travelled, now, validity).unwrap_err();
        assert!(
            matches!(again, EnrolPersonError::Used(_, s) if s == serial),
            "{again}"
        );
    }

    #[test]
    fn a_wrong_code_a_changed_request_and_an_expired_code_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let mut pki = ca(dir.path(), now);
        let who = expert(pki.region());
        let validity = Validity::days_from(now, 365).unwrap();
        let code = issue_code(&pki, &who, "Иванова Анна", now + time::Duration::days(1)).unwrap();

        let wrong = "0000-0000-0000-0000";
        let (_, request_wrong, _) = request(&who, wrong, &pin(), FAST).unwrap();
        assert!(matches!(
            sign(&mut pki, &request_wrong, now, validity),
            Err(EnrolPersonError::WrongCode(_))
        ));

        // Another key put into a genuine request on its way: the HMAC no longer matches.
        let (_, genuine, _) = request(&who, &code, &pin(), FAST).unwrap();
        let (_, other, _) = request(&who, wrong, &pin(), FAST).unwrap();
        let swapped = PersonRequest {
            key: other.key.clone(),
            ..genuine.clone()
        };
        assert!(matches!(
            sign(&mut pki, &swapped, now, validity),
            Err(EnrolPersonError::WrongCode(_))
        ));
        // Another person named: no code was issued for them.
        let mut someone = who.clone();
        someone.id = PersonId::new("exp-420101-10").unwrap();
        let renamed = PersonRequest {
            identity: someone.to_uri(),
            ..genuine.clone()
        };
        assert!(matches!(
            sign(&mut pki, &renamed, now, validity),
            Err(EnrolPersonError::NotEnrolled(_))
        ));
        // A signature that is not the key's.
        let mut forged = genuine.clone();
        forged.signature = other.signature.clone();
        assert!(matches!(
            sign(&mut pki, &forged, now, validity),
            Err(EnrolPersonError::BadSignature(_))
        ));
        // Too late.
        let later = now + time::Duration::days(2);
        assert!(matches!(
            sign(&mut pki, &genuine, later, validity),
            Err(EnrolPersonError::Expired(..))
        ));
        // Nothing above used the code up. A signing cut short after the code was spent (as if
        // the CA stopped before the certificate was written) may be done again for the same key
        // only.
        let path = enrolments_path(&pki);
        let mut enrolments = load(&path).unwrap();
        enrolments.codes[0].used_for = Some(genuine.key.clone());
        save(&path, &enrolments).unwrap();
        let (_, other_with_code, _) = request(&who, &code, &pin(), FAST).unwrap();
        assert!(matches!(
            sign(&mut pki, &other_with_code, now, validity),
            Err(EnrolPersonError::Used(_, 0))
        ));
        sign(&mut pki, &genuine, now, validity).unwrap();
        // A code typed with a letter outside the alphabet.
        assert!(matches!(
            request(&who, "UUUU-0000-0000-0000", &pin(), FAST),
            Err(EnrolPersonError::CodeFormat)
        ));
    }
}
