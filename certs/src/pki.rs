//! The region's certificate authority, kept in one folder:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt` | the CA certificate (PEM); every node gets a copy |
//! | `ca.key` | the CA's ed25519 key (PKCS#8 PEM, mode 0600): keep it offline |
//! | `index.json` | the region, serial counters and every certificate issued, with revocations |
//! | `crl.pem` | the signed revocation list, re-issued on every revocation; nodes load it |
//! | `web-ca.crt`, `web-ca.key` | the pages' HTTPS CA (P-256), made by the first `web` ([`crate::web`]) |
//!
//! Serial numbers are sequential from 1 (the CA). Files are replaced atomically (write, then
//! rename), so an interrupted command leaves the previous state.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use giasync_shared::codes::RegionCode;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ED25519,
    PublicKeyData, RevocationReason, RevokedCertParams, SanType, SerialNumber, SignatureAlgorithm,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::identity::{NodeIdentity, PersonIdentity};
use crate::keyfile::{self, KdfParams, Pin};
use crate::show::rfc3339;

/// How long the CA certificate is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// The default validity of a node certificate.
pub const NODE_VALIDITY_DAYS: i64 = 730;
/// The default validity of a person's certificate: one school year and some.
pub const PERSON_VALIDITY_DAYS: i64 = 400;
/// How far back a new certificate's validity starts, to tolerate clocks that run behind.
pub const BACKDATE_MINUTES: i64 = 60;
/// How long a revocation list is declared current.
pub const CRL_VALIDITY_DAYS: i64 = 180;
/// RFC 9336 id-kp-documentSigning: people's certificates sign score sheets, never TLS.
pub const EKU_DOCUMENT_SIGNING: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 3, 36];

const INDEX_FORMAT: u32 = 1;

/// What a PKI operation could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// `init` found a CA already there.
    #[error("{0} already holds a CA; refusing to overwrite it")]
    CaExists(String),
    /// The folder holds no CA.
    #[error("{0} holds no CA (run `giasync-certs init` first)")]
    NoCa(String),
    /// Another command has the CA folder open.
    #[error(
        "{0} is in use by another giasync-certs command (waiting for a PIN?): let it finish, then run this again"
    )]
    Busy(String),
    /// A file of the PKI is damaged.
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A person's public key that is not an ed25519 point, or is weak: small-order or with a
    /// small-order component (`giasync_shared::ed25519_batch::weak`). A key made by ed25519
    /// from a secret is neither; such a key would be judged differently by batch checks.
    #[error("the public key of {0} is not a valid ed25519 key (weak, or not a point)")]
    WeakKey(String),
    /// The identity belongs to another region.
    #[error("the CA is for region {ca}, not {requested}")]
    WrongRegion { ca: String, requested: String },
    /// No certificate has this serial.
    #[error("no certificate with serial {0}")]
    UnknownSerial(u64),
    /// The certificate is already revoked.
    #[error("certificate {0} is already revoked")]
    AlreadyRevoked(u64),
    /// The reason text is empty.
    #[error("a revocation needs a reason")]
    NoReason,
    /// A validity period that ends before it starts or lasts too long.
    #[error("validity of {0} days is out of range 1..=3650")]
    Validity(i64),
    /// A key file is already there.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    /// A page certificate's name is neither a host name nor an IP address.
    #[error("{0:?} is neither a host name (letters, digits, '-', '.') nor an IP address")]
    WebName(String),
    /// A page certificate names none, or too many.
    #[error("a page certificate names 1 to {max} hosts, not {0}", max = crate::web::WEB_NAMES_MAX)]
    WebNames(usize),
    /// A page certificate's validity is out of range.
    #[error("a page certificate lasts 1 to {max} days, not {0}", max = crate::web::WEB_VALIDITY_DAYS_MAX)]
    WebValidity(i64),
    /// The system's random generator failed.
    #[error("the system's random number generator failed")]
    Random,
    /// The person key could not be sealed.
    #[error("person key: {0}")]
    KeyFile(#[from] keyfile::KeyFileError),
}

/// Names `path` in an IO error.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` atomically; `private` files get mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), PkiError> {
    let tmp = write_temporary(path, bytes, private)?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Writes `bytes` to `path` whole or not at all, and never over an existing file: a key made
/// twice at once, or made where one already is, leaves the first as it was
/// ([`PkiError::Exists`]). `private` files get mode 0600.
pub fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), PkiError> {
    let tmp = write_temporary(path, bytes, private)?;
    // A hard link fails when the name is taken, where a rename would replace it.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(PkiError::Exists(path.display().to_string()))
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes `bytes`, synced, to a new temporary file beside `path` (`NAME.tmp`, one per target
/// file, created afresh so that `private` always gives mode 0600), and returns its path.
fn write_temporary(path: &Path, bytes: &[u8], private: bool) -> Result<PathBuf, PkiError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    // A temporary file left by an interrupted write is dropped, not reused with its mode.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    Ok(tmp)
}

/// One issued certificate, as `index.json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub serial: u64,
    /// `node` or `person`.
    pub kind: String,
    /// The `giasync://` identity URI.
    pub identity: String,
    /// The certificate's common name (a person's ФИО).
    pub name: String,
    /// RFC 3339.
    pub not_after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
}

/// When and why a certificate was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// RFC 3339.
    pub at: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Index {
    format: u32,
    region: RegionCode,
    name: String,
    next_serial: u64,
    crl_number: u64,
    issued: Vec<Issued>,
}

/// The public half of an ed25519 key, for certifying a key generated elsewhere.
struct Ed25519Public([u8; 32]);

impl PublicKeyData for Ed25519Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

/// A node's new certificate and private key, both PEM.
#[derive(Debug)]
pub struct NodeCredentials {
    pub serial: u64,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A person's new certificate (PEM) and PIN-encrypted signing key.
#[derive(Debug)]
pub struct PersonCredentials {
    pub serial: u64,
    pub cert_pem: String,
    pub key_file: Vec<u8>,
    pub verifying_key: [u8; 32],
}

/// A validity window: from `not_before` for `days` days.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From [`BACKDATE_MINUTES`] before `now` to `days` days after it.
    pub fn days_from(now: OffsetDateTime, days: i64) -> Result<Self, PkiError> {
        if !(1..=CA_VALIDITY_DAYS).contains(&days) {
            return Err(PkiError::Validity(days));
        }
        Ok(Validity {
            not_before: now - Duration::minutes(BACKDATE_MINUTES),
            not_after: now + Duration::days(days),
        })
    }
}

/// An open CA folder.
pub struct Pki {
    dir: PathBuf,
    index: Index,
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// The CA folder's lock, held while this is open ([`Pki::open`]).
    _lock: fs::File,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pki({}, region {})",
            self.dir.display(),
            self.index.region
        )
    }
}

fn serial_number(serial: u64) -> SerialNumber {
    let bytes = serial.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    // A leading bit of 1 would read as negative: keep one zero byte before it.
    let start = if bytes[first] & 0x80 != 0 {
        first.saturating_sub(1)
    } else {
        first
    };
    SerialNumber::from_slice(&bytes[start..])
}

impl Pki {
    /// The folder's files.
    fn paths(dir: &Path) -> [PathBuf; 4] {
        ["ca.crt", "ca.key", "index.json", "crl.pem"].map(|f| dir.join(f))
    }

    /// Creates the region's CA in `dir`; refuses if any CA file is already there.
    pub fn init(
        dir: &Path,
        region: RegionCode,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Pki, PkiError> {
        Self::init_with(
            dir,
            region,
            name,
            now,
            KeyPair::generate_for(&PKCS_ED25519)?,
        )
    }

    /// As [`Pki::init`], the CA's key made from `seed` (an ed25519 secret key) instead of
    /// drawn fresh: a rehearsal's CA made again, certificate for certificate, from the
    /// rehearsal's own seed (the region simulator, whose runs must repeat byte for byte). A
    /// region's real CA is made by [`Pki::init`].
    pub fn init_from_seed(
        dir: &Path,
        region: RegionCode,
        name: &str,
        now: OffsetDateTime,
        seed: [u8; 32],
    ) -> Result<Pki, PkiError> {
        // PKCS#8 v1 of an Ed25519 key (RFC 8410 §7): a fixed prefix, then the 32-byte secret.
        const ED25519_PKCS8_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        Self::init_with(dir, region, name, now, KeyPair::try_from(der.as_slice())?)
    }

    fn init_with(
        dir: &Path,
        region: RegionCode,
        name: &str,
        now: OffsetDateTime,
        key: KeyPair,
    ) -> Result<Pki, PkiError> {
        if let Some(existing) = Self::paths(dir).iter().find(|p| p.exists()) {
            return Err(PkiError::CaExists(existing.display().to_string()));
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock = Self::lock(dir)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{name} — giasync CA, region {region}"),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, name);
        params.distinguished_name.push(DnType::CountryName, "RU");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(serial_number(1));
        params.not_before = now - Duration::minutes(BACKDATE_MINUTES);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        let [crt_path, key_path, _, _] = Self::paths(dir);
        // The key first: a CA certificate without its key would be useless.
        write_atomic(&key_path, key.serialize_pem().as_bytes(), true)?;
        write_atomic(&crt_path, cert.pem().as_bytes(), false)?;
        let mut pki = Pki {
            dir: dir.to_owned(),
            index: Index {
                format: INDEX_FORMAT,
                region,
                name: name.to_owned(),
                next_serial: 2,
                crl_number: 0,
                issued: Vec::new(),
            },
            ca_cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            _lock: lock,
        };
        pki.write_crl(now)?;
        Ok(pki)
    }

    /// Opens the CA in `dir`.
    pub fn open(dir: &Path) -> Result<Pki, PkiError> {
        let [crt_path, key_path, index_path, _] = Self::paths(dir);
        if !crt_path.exists() {
            return Err(PkiError::NoCa(dir.display().to_string()));
        }
        let lock = Self::lock(dir)?;
        let ca_cert_pem = fs::read_to_string(&crt_path).map_err(io(&crt_path))?;
        let key_pem = fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let corrupt = |path: &Path, message: String| PkiError::Corrupt {
            path: path.display().to_string(),
            message,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(&key_path, e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, key)
            .map_err(|e| corrupt(&crt_path, e.to_string()))?;
        let index_text = fs::read_to_string(&index_path).map_err(io(&index_path))?;
        let index: Index =
            serde_json::from_str(&index_text).map_err(|e| corrupt(&index_path, e.to_string()))?;
        if index.format != INDEX_FORMAT {
            return Err(corrupt(
                &index_path,
                format!("format {} is not supported", index.format),
            ));
        }
        Ok(Pki {
            dir: dir.to_owned(),
            index,
            ca_cert_pem,
            issuer,
            _lock: lock,
        })
    }

    /// Takes the CA folder for this command: an exclusive lock on `.lock` in it, held until the
    /// [`Pki`] is dropped. Two commands that each read the index, change it and write it back
    /// would otherwise lose one's change (a revocation undone by an issue that read the index
    /// before it, two certificates with one serial).
    fn lock(dir: &Path) -> Result<fs::File, PkiError> {
        let path = dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(PkiError::Busy(dir.display().to_string())),
            Err(fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// The CA's folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name of the institution the CA belongs to.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.index.name
    }

    #[must_use]
    pub fn region(&self) -> RegionCode {
        self.index.region
    }

    #[must_use]
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Every certificate issued, in serial order.
    #[must_use]
    pub fn issued(&self) -> &[Issued] {
        &self.index.issued
    }

    /// The current revocation list (PEM).
    pub fn crl_pem(&self) -> Result<String, PkiError> {
        let path = self.dir.join("crl.pem");
        fs::read_to_string(&path).map_err(io(&path))
    }

    fn take_serial(&mut self) -> u64 {
        let serial = self.index.next_serial;
        self.index.next_serial += 1;
        serial
    }

    fn save_index(&self) -> Result<(), PkiError> {
        let path = self.dir.join("index.json");
        let text = serde_json::to_string_pretty(&self.index).map_err(|e| PkiError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        write_atomic(&path, text.as_bytes(), false)
    }

    fn check_region(&self, region: RegionCode) -> Result<(), PkiError> {
        if region != self.index.region {
            return Err(PkiError::WrongRegion {
                ca: self.index.region.to_string(),
                requested: region.to_string(),
            });
        }
        Ok(())
    }

    fn leaf_params(
        &self,
        serial: u64,
        common_name: &str,
        uri: &str,
        validity: Validity,
    ) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, self.index.name.as_str());
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.serial_number = Some(serial_number(serial));
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        Ok(params)
    }

    /// Issues a node certificate for `identity`, reachable as `host` (DNS name or IP).
    pub fn issue_node(
        &mut self,
        identity: NodeIdentity,
        host: &str,
        validity: Validity,
    ) -> Result<NodeCredentials, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let (serial, cert_pem) = self.issue_node_for(identity, host, validity, &key)?;
        Ok(NodeCredentials {
            serial,
            cert_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a node certificate for `identity`, reachable as `host`, to the holder of
    /// `public_key` (a key made on the node's own machine: `crate::enrol`). Returns the serial
    /// and the certificate (PEM).
    pub fn issue_node_for(
        &mut self,
        identity: NodeIdentity,
        host: &str,
        validity: Validity,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<(u64, String), PkiError> {
        self.check_region(identity.region)?;
        let serial = self.take_serial();
        let name = format!("{identity}");
        let mut params = self.leaf_params(serial, &name, &identity.to_uri(), validity)?;
        params
            .subject_alt_names
            .push(match host.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.try_into()?),
            });
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(public_key, &self.issuer)?;
        self.index.issued.push(Issued {
            serial,
            kind: "node".into(),
            identity: identity.to_uri(),
            name,
            not_after: rfc3339(validity.not_after),
            revoked: None,
        });
        self.save_index()?;
        Ok((serial, cert.pem()))
    }

    /// Issues a node certificate for `identity` and writes the node's folder `dir`: `node.key`
    /// (mode 0600), `node.crt`, and copies of `ca.crt` and `crl.pem`. Returns the serial.
    pub fn write_node_files(
        &mut self,
        dir: &Path,
        identity: NodeIdentity,
        host: &str,
        validity: Validity,
    ) -> Result<u64, PkiError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let credentials = self.issue_node(identity, host, validity)?;
        write_atomic(&dir.join("node.key"), credentials.key_pem.as_bytes(), true)?;
        write_atomic(
            &dir.join("node.crt"),
            credentials.cert_pem.as_bytes(),
            false,
        )?;
        write_atomic(&dir.join("ca.crt"), self.ca_cert_pem.as_bytes(), false)?;
        write_atomic(&dir.join("crl.pem"), self.crl_pem()?.as_bytes(), false)?;
        Ok(credentials.serial)
    }

    /// Issues a person's certificate and a new signing key sealed with `pin`.
    pub fn issue_person(
        &mut self,
        identity: &PersonIdentity,
        full_name: &str,
        validity: Validity,
        pin: &Pin,
        kdf: KdfParams,
    ) -> Result<PersonCredentials, PkiError> {
        // The region and the name are checked where the certificate is made.
        keyfile::check_strength(identity.role, pin)?;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let key_file = keyfile::seal(&key, pin, kdf)?;
        let verifying_key = key.verifying_key().to_bytes();
        let (serial, cert_pem) =
            self.issue_person_for(identity, full_name, validity, verifying_key)?;
        Ok(PersonCredentials {
            serial,
            cert_pem,
            key_file,
            verifying_key,
        })
    }

    /// Issues a person's certificate to the holder of `verifying_key` (a key made and sealed
    /// on the school's machine: `crate::enrol_person`). Returns the serial and the certificate
    /// (PEM).
    pub fn issue_person_for(
        &mut self,
        identity: &PersonIdentity,
        full_name: &str,
        validity: Validity,
        verifying_key: [u8; 32],
    ) -> Result<(u64, String), PkiError> {
        let issued = self.make_person_cert(identity, full_name, validity, verifying_key)?;
        self.save_index()?;
        Ok(issued)
    }

    /// [`Pki::issue_person_for`] for many people at once, the index written once: a region's
    /// experts by the thousand (the region simulator certifies every person of its plan).
    /// Nothing is recorded when one of them is refused or the index cannot be written (it is
    /// replaced whole, so the one on disk is then the one before).
    pub fn issue_people_for(
        &mut self,
        people: &[(PersonIdentity, &str, [u8; 32])],
        validity: Validity,
    ) -> Result<Vec<(u64, String)>, PkiError> {
        let before = (self.index.issued.len(), self.index.next_serial);
        let issued = people
            .iter()
            .map(|(identity, name, key)| self.make_person_cert(identity, name, validity, *key))
            .collect::<Result<Vec<(u64, String)>, PkiError>>()
            .and_then(|issued| self.save_index().map(|()| issued));
        if issued.is_err() {
            self.index.issued.truncate(before.0);
            self.index.next_serial = before.1;
        }
        issued
    }

    /// Makes a person's certificate and records it in the index in memory (not saved).
    fn make_person_cert(
        &mut self,
        identity: &PersonIdentity,
        full_name: &str,
        validity: Validity,
        verifying_key: [u8; 32],
    ) -> Result<(u64, String), PkiError> {
        self.check_region(identity.region)?;
        let valid = ed25519_dalek::VerifyingKey::from_bytes(&verifying_key)
            .is_ok_and(|key| !giasync_shared::ed25519_batch::weak(&key));
        if !valid {
            return Err(PkiError::WeakKey(identity.to_uri()));
        }
        self.sign_person_cert(identity, full_name, validity, verifying_key)
    }

    /// [`Pki::make_person_cert`] without the check of the key: what a CA that did not check
    /// keys issued, for the tests of those who must refuse its certificates.
    #[cfg(test)]
    pub(crate) fn issue_person_unchecked(
        &mut self,
        identity: &PersonIdentity,
        full_name: &str,
        validity: Validity,
        verifying_key: [u8; 32],
    ) -> Result<String, PkiError> {
        self.sign_person_cert(identity, full_name, validity, verifying_key)
            .map(|(_, pem)| pem)
    }

    /// Signs a person's certificate for `verifying_key` and records it in the index in memory.
    fn sign_person_cert(
        &mut self,
        identity: &PersonIdentity,
        full_name: &str,
        validity: Validity,
        verifying_key: [u8; 32],
    ) -> Result<(u64, String), PkiError> {
        let full_name = full_name.trim();
        if full_name.is_empty() {
            return Err(PkiError::Corrupt {
                path: "--name".into(),
                message: "a person's name is empty".into(),
            });
        }
        let serial = self.take_serial();
        let mut params = self.leaf_params(serial, full_name, &identity.to_uri(), validity)?;
        params.key_usages.push(KeyUsagePurpose::ContentCommitment);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(
            EKU_DOCUMENT_SIGNING.to_vec(),
        )];
        let cert = params.signed_by(&Ed25519Public(verifying_key), &self.issuer)?;
        self.index.issued.push(Issued {
            serial,
            kind: "person".into(),
            identity: identity.to_uri(),
            name: full_name.to_owned(),
            not_after: rfc3339(validity.not_after),
            revoked: None,
        });
        Ok((serial, cert.pem()))
    }

    /// Revokes certificate `serial` and re-issues the revocation list.
    pub fn revoke(
        &mut self,
        serial: u64,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), PkiError> {
        self.revoke_many(&[serial], reason, now)
    }

    /// Revokes every certificate of `serials` at `now` for `reason` and re-issues the
    /// revocation list once. Nothing is revoked when one of them is unknown or revoked already.
    /// When writing fails part-way the revocations are kept (and in the index on disk if it was
    /// written before the list), as by [`Pki::revoke`]; [`Pki::reissue_crl`] writes the list.
    pub fn revoke_many(
        &mut self,
        serials: &[u64],
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), PkiError> {
        if reason.trim().is_empty() {
            return Err(PkiError::NoReason);
        }
        let mut at = Vec::with_capacity(serials.len());
        for serial in serials {
            let i = self
                .index
                .issued
                .iter()
                .position(|i| i.serial == *serial)
                .ok_or(PkiError::UnknownSerial(*serial))?;
            if self.index.issued[i].revoked.is_some() || at.contains(&i) {
                return Err(PkiError::AlreadyRevoked(*serial));
            }
            at.push(i);
        }
        for i in at {
            self.index.issued[i].revoked = Some(Revocation {
                at: rfc3339(now),
                reason: reason.trim().to_owned(),
            });
        }
        self.write_crl(now)
    }

    /// Re-issues the revocation list (a fresh `next_update`), e.g. before it runs out.
    pub fn reissue_crl(&mut self, now: OffsetDateTime) -> Result<(), PkiError> {
        self.write_crl(now)
    }

    /// Records the next CRL number in the index, then writes the list: a crash between the two
    /// leaves the previous list in place and `reissue_crl` writes it again.
    fn write_crl(&mut self, now: OffsetDateTime) -> Result<(), PkiError> {
        self.index.crl_number += 1;
        self.save_index()?;
        let parse = |text: &str| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap_or(now)
        };
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(BACKDATE_MINUTES),
            next_update: now + Duration::days(CRL_VALIDITY_DAYS),
            crl_number: SerialNumber::from(self.index.crl_number),
            issuing_distribution_point: None,
            revoked_certs: self
                .index
                .issued
                .iter()
                .filter_map(|i| {
                    i.revoked.as_ref().map(|r| RevokedCertParams {
                        serial_number: serial_number(i.serial),
                        revocation_time: parse(&r.at),
                        reason_code: Some(RevocationReason::Unspecified),
                        invalidity_date: None,
                    })
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer)?;
        write_atomic(&self.dir.join("crl.pem"), crl.pem()?.as_bytes(), false)
    }
}

/// The raw ed25519 public key of a node's private key (PKCS#8 PEM): to check that a key file
/// matches its certificate.
pub fn node_key_public(key_pem: &str) -> Result<[u8; 32], PkiError> {
    let key = KeyPair::from_pem(key_pem)?;
    <[u8; 32]>::try_from(key.public_key_raw()).map_err(|_| PkiError::Corrupt {
        path: "node key".into(),
        message: "not an ed25519 key".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::show::{certs_from_pem, crls_from_pem, summarize_crl_der, summarize_der};
    use giasync_shared::codes::{MunicipalityCode, NodeRole, OrgCode, PersonId, PersonRole};

    const FAST: KdfParams = KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }
    fn region() -> RegionCode {
        RegionCode::new("42").unwrap()
    }
    fn school() -> NodeIdentity {
        NodeIdentity::new(
            region(),
            OrgCode::parse(NodeRole::School, "420101").unwrap(),
            Some(MunicipalityCode::new("4201").unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn init_refuses_to_overwrite_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        Pki::init(dir.path(), region(), "Тест", now()).unwrap();
        let before = fs::read(dir.path().join("ca.key")).unwrap();
        assert!(matches!(
            Pki::init(dir.path(), region(), "Тест", now()),
            Err(PkiError::CaExists(_))
        ));
        assert_eq!(
            fs::read(dir.path().join("ca.key")).unwrap(),
            before,
            "the CA key is untouched"
        );
        assert!(matches!(
            Pki::open(&dir.path().join("none")),
            Err(PkiError::NoCa(_))
        ));
    }

    /// The certificates `index.json` in `dir` records, read while the CA is open.
    fn issued_on_disk(dir: &Path) -> Vec<Issued> {
        let text = fs::read_to_string(dir.join("index.json")).unwrap();
        serde_json::from_str::<Index>(&text).unwrap().issued
    }

    #[test]
    fn node_certificates_carry_identity_serial_and_validity() {
        let dir = tempfile::tempdir().unwrap();
        let mut pki = Pki::init(dir.path(), region(), "Тест", now()).unwrap();
        let creds = pki
            .issue_node(
                school(),
                "127.0.0.1",
                Validity::days_from(now(), 30).unwrap(),
            )
            .unwrap();
        let der = &certs_from_pem(creds.cert_pem.as_bytes()).unwrap()[0];
        let summary = summarize_der(der).unwrap();
        assert_eq!(summary.serial, 2);
        assert_eq!(summary.identity, Ok(Identity::Node(school())));
        assert_eq!((summary.not_after - now()).whole_days(), 30);
        assert!(!summary.is_ca);
        // Another command has the folder while this one is open; reopened from disk after it,
        // the CA goes on with the next serial.
        assert!(matches!(Pki::open(dir.path()), Err(PkiError::Busy(_))));
        drop(pki);
        let mut reopened = Pki::open(dir.path()).unwrap();
        let next = reopened
            .issue_node(
                school(),
                "school.example",
                Validity::days_from(now(), 30).unwrap(),
            )
            .unwrap();
        assert_eq!(next.serial, 3);
        let other_region = NodeIdentity::new(
            RegionCode::new("43").unwrap(),
            OrgCode::Rcoi(RegionCode::new("43").unwrap()),
            None,
        )
        .unwrap();
        assert!(matches!(
            reopened.issue_node(other_region, "h", Validity::days_from(now(), 1).unwrap()),
            Err(PkiError::WrongRegion { .. })
        ));
    }

    #[test]
    fn person_keys_open_only_with_their_pin_and_match_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut pki = Pki::init(dir.path(), region(), "Тест", now()).unwrap();
        let person = PersonIdentity {
            region: region(),
            role: PersonRole::Expert,
            id: PersonId::new("exp-1").unwrap(),
            org: OrgCode::parse(NodeRole::School, "420101").unwrap(),
        };
        // An expert's 6-digit PIN is refused: experts sign what counts.
        let short = Pin::new("135790".into()).unwrap();
        let refused = pki.issue_person(
            &person,
            "Иванова Анна Петровна",
            Validity::days_from(now(), 10).unwrap(),
            &short,
            FAST,
        );
        assert!(
            matches!(
                refused,
                Err(PkiError::KeyFile(
                    keyfile::KeyFileError::PassphraseTooShort(PersonRole::Expert)
                ))
            ),
            "{refused:?}"
        );
        let pin = Pin::new("свет-ручей-1357".into()).unwrap();
        let creds = pki
            .issue_person(
                &person,
                "Иванова Анна Петровна",
                Validity::days_from(now(), 10).unwrap(),
                &pin,
                FAST,
            )
            .unwrap();
        let key = keyfile::open(&creds.key_file, &pin).unwrap();
        let summary =
            summarize_der(&certs_from_pem(creds.cert_pem.as_bytes()).unwrap()[0]).unwrap();
        assert_eq!(summary.ed25519_key, Some(key.verifying_key().to_bytes()));
        assert_eq!(summary.subject, "Иванова Анна Петровна");
        assert_eq!(summary.identity, Ok(Identity::Person(person)));
        let wrong = Pin::new("свет-ручей-1358".into()).unwrap();
        let err = keyfile::open(&creds.key_file, &wrong).unwrap_err();
        assert_eq!(err.to_string(), "wrong PIN (or the key file was altered)");
    }

    #[test]
    fn revocation_lists_the_serial_and_refuses_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let mut pki = Pki::init(dir.path(), region(), "Тест", now()).unwrap();
        let creds = pki
            .issue_node(
                school(),
                "127.0.0.1",
                Validity::days_from(now(), 30).unwrap(),
            )
            .unwrap();
        assert!(matches!(
            pki.revoke(99, "lost", now()),
            Err(PkiError::UnknownSerial(99))
        ));
        assert!(matches!(
            pki.revoke(creds.serial, " ", now()),
            Err(PkiError::NoReason)
        ));
        pki.revoke(creds.serial, "ноутбук утерян", now()).unwrap();
        assert!(matches!(
            pki.revoke(creds.serial, "again", now()),
            Err(PkiError::AlreadyRevoked(2))
        ));
        let crl = summarize_crl_der(&crls_from_pem(pki.crl_pem().unwrap().as_bytes()).unwrap()[0])
            .unwrap();
        assert_eq!(
            crl.revoked.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(crl.number, Some(2));
        drop(pki);
        let reopened = Pki::open(dir.path()).unwrap();
        assert_eq!(
            reopened.issued()[0].revoked.as_ref().unwrap().reason,
            "ноутбук утерян"
        );
    }

    /// Many people issued at once are recorded once each, as one by one; one refused person
    /// leaves nothing recorded. Several revoked at once are listed together, or none is.
    #[test]
    fn people_issued_and_revoked_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut pki = Pki::init(dir.path(), region(), "Тест", now()).unwrap();
        let person = |id: &str, region: RegionCode| PersonIdentity {
            region,
            role: PersonRole::Expert,
            id: PersonId::new(id).unwrap(),
            org: OrgCode::parse(NodeRole::School, "420101").unwrap(),
        };
        let validity = Validity::days_from(now(), 10).unwrap();
        let other = RegionCode::new("77").unwrap();
        let keys = [
            SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes(),
            SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes(),
        ];
        let refused = pki.issue_people_for(
            &[
                (person("e-1", region()), "Первый", keys[0]),
                (person("e-2", other), "Второй", keys[1]),
            ],
            validity,
        );
        assert!(
            matches!(refused, Err(PkiError::WrongRegion { .. })),
            "{refused:?}"
        );
        // A key with a small-order component (an ordinary key plus a point of order 8) is
        // refused, and so is its batch.
        let shifted = SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_edwards()
            + curve25519_dalek::constants::EIGHT_TORSION[1];
        let refused = pki.issue_people_for(
            &[
                (person("e-1", region()), "Первый", keys[0]),
                (
                    person("e-3", region()),
                    "Третий",
                    shifted.compress().to_bytes(),
                ),
            ],
            validity,
        );
        assert!(matches!(refused, Err(PkiError::WeakKey(_))), "{refused:?}");
        assert!(issued_on_disk(dir.path()).is_empty());
        assert!(pki.issued().is_empty());
        let issued = pki
            .issue_people_for(
                &[
                    (person("e-1", region()), "Первый", keys[0]),
                    (person("e-2", region()), "Второй", keys[1]),
                ],
                validity,
            )
            .unwrap();
        let serials: Vec<u64> = issued.iter().map(|(s, _)| *s).collect();
        assert_eq!(serials, vec![2, 3], "the CA's own serial is 1");
        for ((_, pem), key) in issued.iter().zip(keys) {
            let summary = summarize_der(&certs_from_pem(pem.as_bytes()).unwrap()[0]).unwrap();
            assert_eq!(summary.ed25519_key, Some(key));
        }
        assert_eq!(issued_on_disk(dir.path()).len(), 2);
        assert!(matches!(
            pki.revoke_many(&[2, 9], "lost", now()),
            Err(PkiError::UnknownSerial(9))
        ));
        assert!(matches!(
            pki.revoke_many(&[3, 3], "lost", now()),
            Err(PkiError::AlreadyRevoked(3))
        ));
        assert!(pki.issued().iter().all(|i| i.revoked.is_none()));
        pki.revoke_many(&[3, 2], "уволены", now()).unwrap();
        let crl = summarize_crl_der(&crls_from_pem(pki.crl_pem().unwrap().as_bytes()).unwrap()[0])
            .unwrap();
        let mut listed: Vec<u64> = crl.revoked.iter().map(|(s, _)| *s).collect();
        listed.sort_unstable();
        assert_eq!(listed, vec![2, 3]);
    }

    /// A CA made from a seed is the same CA every time: its key is the seed's ed25519 key, and
    /// what it issues is the same byte for byte; another seed makes another CA.
    #[test]
    fn a_ca_from_a_seed_issues_the_same_certificates_again() {
        let person = PersonIdentity {
            region: region(),
            role: PersonRole::Expert,
            id: PersonId::new("e-1").unwrap(),
            org: OrgCode::parse(NodeRole::School, "420101").unwrap(),
        };
        let validity = Validity::days_from(now(), 10).unwrap();
        let made = |seed: [u8; 32]| {
            let dir = tempfile::tempdir().unwrap();
            let mut pki = Pki::init_from_seed(dir.path(), region(), "Тест", now(), seed).unwrap();
            let (_, cert) = pki
                .issue_person_for(
                    &person,
                    "Первый",
                    validity,
                    SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes(),
                )
                .unwrap();
            (pki.ca_cert_pem().to_owned(), cert, pki.crl_pem().unwrap())
        };
        let first = made([5; 32]);
        assert_eq!(made([5; 32]), first);
        assert_ne!(made([6; 32]).0, first.0);
        let ca = summarize_der(&certs_from_pem(first.0.as_bytes()).unwrap()[0]).unwrap();
        assert_eq!(
            ca.ed25519_key,
            Some(SigningKey::from_bytes(&[5; 32]).verifying_key().to_bytes())
        );
    }

    #[test]
    fn serials_encode_as_positive_integers() {
        assert_eq!(serial_number(1).to_bytes(), vec![1]);
        assert_eq!(serial_number(0x80).to_bytes(), vec![0, 0x80]);
        assert_eq!(serial_number(0x1234).to_bytes(), vec![0x12, 0x34]);
    }
}
