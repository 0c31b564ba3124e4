//! Checking node certificates carried inside replicated data (attestations) against the region's
//! CA and revocation list — the sync engine's [`CertVerifier`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use ed25519_dalek::VerifyingKey;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{OrgCode, PersonId, PersonRole, SchoolCode};
use giasync_shared::record::{SignerDirectory, SignerError};

use giasync_shared::codes::RegionCode;
use giasync_shared::sync::{CertCheck, CertVerifier};
use time::OffsetDateTime;

use crate::identity::{Identity, PersonIdentity};
use crate::show::{
    certs_from_pem, crls_from_pem, summarize_cert, summarize_crl_der, summarize_der,
    verify_crl_issued_by, verify_issued_by,
};

/// The region's CA certificate and the serials its revocation list names.
///
/// A revocation list is only as good as its date: past its `next_update` a revocation made since
/// may be missing. So a certificate judged at a time after the list's next update is refused,
/// here as in TLS (`enforce_revocation_expiration` in `giasync-node`'s transport). `doctor`
/// and `status` warn [`CRL_WARN_DAYS`] ahead; the РЦОИ re-issues the list
/// (`giasync-certs crl`), valid for 180 days, and schools copy the new `crl.pem`. What was
/// judged earlier (stored attestations, at their own time) stays as it was judged.
#[derive(Debug, Clone)]
pub struct CaVerifier {
    ca_der: Vec<u8>,
    region: RegionCode,
    /// Revoked serials and when.
    revoked: BTreeMap<u64, OffsetDateTime>,
    /// The latest next update of the lists read (a `crl.pem` that still holds an older list
    /// beside the new one is as fresh as the new one; revocations of both count).
    crl_next_update: Option<OffsetDateTime>,
    /// Expert certificates already checked against this CA and list, by the SHA-256 of their
    /// DER: every protocol carries its experts' certificates, and the РЦОИ receipts a protocol
    /// at every sheet that arrives, so each is checked once, not at every pass. Shared by the
    /// clones; a verifier for a new list starts empty.
    experts_checked: Arc<Mutex<HashMap<[u8; 32], ExpertCheck>>>,
    /// The CA's name and ed25519 key, when its key is ed25519 (as `giasync-certs init` makes
    /// it): what lets many certificates' signatures be checked in one batch
    /// ([`CaVerifier::check_experts_ahead`]).
    ca_signer: Option<CaSigner>,
}

/// The CA as the signer of the certificates it issues.
#[derive(Debug, Clone)]
struct CaSigner {
    /// Its subject name, DER: what a certificate it issued names as its issuer.
    subject: Vec<u8>,
    key: VerifyingKey,
}

/// A certificate met for the first time, ready for the batch: the hash it is remembered by, the
/// certificate as parsed, the part the CA signed, and the CA's signature.
type CaSigned<'a> = (
    [u8; 32],
    x509_parser::certificate::X509Certificate<'a>,
    Vec<u8>,
    ed25519_dalek::Signature,
);

/// The object identifier of the ed25519 signature algorithm (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// Certificates checked ahead in one batch only from this many on; one alone is checked as
/// it is asked for.
const EXPERT_CERTS_BATCH_MIN: usize = 2;

/// An expert certificate checked: whom it certifies and what, or why it does not.
type ExpertCheck = Result<(PersonIdentity, CertifiedExpert), String>;

/// Expert certificates remembered as checked; the memory is cleared when full (a region has a
/// few thousand experts).
pub const EXPERT_CERTS_CHECKED_MAX: usize = 65_536;

/// Days before a revocation list's next update from which `doctor` and `status` warn.
pub const CRL_WARN_DAYS: i64 = 30;

impl CaVerifier {
    /// From the PEM texts of the CA certificate and its revocation list.
    pub fn from_pem(ca_pem: &[u8], crl_pem: &[u8], region: RegionCode) -> Result<Self, String> {
        let ca_der = certs_from_pem(ca_pem)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or("no CA certificate")?;
        let mut revoked = BTreeMap::new();
        let mut crl_next_update: Option<OffsetDateTime> = None;
        for crl in crls_from_pem(crl_pem).map_err(|e| e.to_string())? {
            verify_crl_issued_by(&crl, &ca_der)?;
            let summary = summarize_crl_der(&crl).map_err(|e| e.to_string())?;
            revoked.extend(summary.revoked);
            if let Some(next) = summary.next_update {
                crl_next_update = Some(crl_next_update.map_or(next, |n| n.max(next)));
            }
        }
        let ca_signer = ca_signer(&ca_der);
        Ok(CaVerifier {
            ca_der,
            region,
            revoked,
            crl_next_update,
            experts_checked: Arc::default(),
            ca_signer,
        })
    }

    /// When the revocation list runs out (its next update), if it says.
    #[must_use]
    pub fn crl_next_update(&self) -> Option<OffsetDateTime> {
        self.crl_next_update
    }

    /// A warning when the revocation list runs out within [`CRL_WARN_DAYS`] of `now`, or ran out.
    #[must_use]
    pub fn crl_warning(&self, now: OffsetDateTime) -> Option<String> {
        let next = self.crl_next_update?;
        let when = crate::show::rfc3339(next);
        if next < now {
            Some(format!(
                "the revocation list ran out at {when}: connections and new attestations are refused until a fresh crl.pem from the РЦОИ is installed"
            ))
        } else if next - now < time::Duration::days(CRL_WARN_DAYS) {
            Some(format!(
                "the revocation list runs out at {when}: install a fresh crl.pem from the РЦОИ before then"
            ))
        } else {
            None
        }
    }
}

impl CertVerifier for CaVerifier {
    fn node_key(&self, cert_der: &[u8]) -> CertCheck {
        self.node_key_when(cert_der, OffsetDateTime::now_utc())
    }

    fn node_key_at(&self, cert_der: &[u8], at_ms: i64) -> CertCheck {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
            .map_err(|e| format!("time {at_ms} ms: {e}"))?;
        self.node_key_when(cert_der, at)
    }
}

impl CaVerifier {
    /// The identity and key of a node certificate valid at `when` and not revoked by then.
    fn node_key_when(&self, cert_der: &[u8], when: OffsetDateTime) -> CertCheck {
        if let Some(next) = self.crl_next_update.filter(|n| *n < when) {
            return Err(format!(
                "the revocation list is out of date since {}",
                crate::show::rfc3339(next)
            ));
        }
        verify_issued_by(cert_der, &self.ca_der)?;
        let summary = summarize_der(cert_der).map_err(|e| e.to_string())?;
        if when < summary.not_before || when > summary.not_after {
            return Err(format!(
                "certificate {} is not valid at {when}",
                summary.serial
            ));
        }
        if self
            .revoked
            .get(&summary.serial)
            .is_some_and(|revoked| *revoked <= when)
        {
            return Err(format!("certificate {} is revoked", summary.serial));
        }
        let identity = match summary.identity {
            Ok(Identity::Node(n)) => n,
            Ok(other) => return Err(format!("{other} is not a node")),
            Err(e) => return Err(e),
        };
        if identity.region != self.region {
            return Err(format!(
                "{identity} is of region {}, not {}",
                identity.region, self.region
            ));
        }
        let key = summary.ed25519_key.ok_or("not an ed25519 certificate")?;
        Ok((identity, key))
    }
}

impl CaVerifier {
    /// A signer directory over experts' certificates (as a protocol document carries them, by
    /// person id): each certificate is checked against the CA once per verifier (remembered by
    /// its hash), and against the id it is listed under every time.
    #[must_use]
    pub fn experts(&self, certs: &BTreeMap<String, Vec<u8>>) -> ExpertDirectory {
        // Each certificate hashed once, for the batch ahead and the lookup.
        let hashed: Vec<(&String, &[u8], [u8; 32])> = certs
            .iter()
            .map(|(id, der)| (id, der.as_slice(), der_hash(der)))
            .collect();
        self.check_hashed_ahead(hashed.iter().map(|(_, der, hash)| (*hash, *der)));
        let mut experts = BTreeMap::new();
        for (id, der, hash) in hashed {
            let Ok(id) = PersonId::new(id) else { continue };
            let entry = self
                .expert_check(hash, der)
                .and_then(|(person, certified)| {
                    if person.id != id || person.region != self.region {
                        return Err(format!("the certificate is for {person}"));
                    }
                    Ok(certified)
                });
            experts.insert(id, entry);
        }
        ExpertDirectory { experts }
    }

    /// The check of `der`, whose hash is `hash`: remembered, or made and remembered.
    fn expert_check(&self, hash: [u8; 32], der: &[u8]) -> ExpertCheck {
        let mut checked = self.checked();
        if let Some(check) = checked.get(&hash) {
            return check.clone();
        }
        let check = self.check_expert(der);
        remember(&mut checked, hash, check.clone());
        check
    }

    fn checked(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], ExpertCheck>> {
        self.experts_checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the expert certificates of `ders` not checked yet, the CA's signatures on all of
    /// them in one ed25519 batch (one key: the CA's), and remembers each as
    /// [`CaVerifier::experts`] would. The РЦОИ meets a region's certificates all at once when it
    /// catches up a day (after a restart, say): one by one, the signatures would cost more than
    /// the sheets'. A batch that fails (a certificate the CA did not sign is among them) is
    /// halved until the culprits are alone ([`signed_by`]); those, and a certificate that does
    /// not even name the CA as its issuer, are not remembered here: each is checked on its own
    /// when asked for, as before, and refused with its reason.
    /// Returns how many it checked and remembered.
    pub fn check_experts_ahead<'a>(&self, ders: impl IntoIterator<Item = &'a [u8]>) -> usize {
        self.check_hashed_ahead(ders.into_iter().map(|der| (der_hash(der), der)))
    }

    /// [`CaVerifier::check_experts_ahead`] of certificates given with their hashes.
    fn check_hashed_ahead<'a>(
        &self,
        ders: impl IntoIterator<Item = ([u8; 32], &'a [u8])>,
    ) -> usize {
        let Some(ca) = &self.ca_signer else { return 0 };
        let mut fresh: Vec<([u8; 32], &[u8])> = Vec::new();
        {
            let checked = self.checked();
            let mut seen = std::collections::HashSet::new();
            for (hash, der) in ders {
                if !checked.contains_key(&hash) && seen.insert(hash) {
                    fresh.push((hash, der));
                }
            }
        }
        // The CA's signature and what it signs, of each that names the CA as its issuer.
        let signed: Vec<CaSigned<'_>> = fresh
            .into_iter()
            .filter_map(|(hash, der)| {
                let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
                let by_ca = cert.issuer().as_raw() == ca.subject.as_slice()
                    && cert.signature_algorithm.algorithm.to_id_string() == ED25519_OID;
                let signature =
                    ed25519_dalek::Signature::from_slice(&cert.signature_value.data).ok()?;
                let signed_part = cert.tbs_certificate.as_ref().to_vec();
                by_ca.then_some((hash, cert, signed_part, signature))
            })
            .collect();
        if signed.len() < EXPERT_CERTS_BATCH_MIN {
            return 0;
        }
        let mut good = Vec::new();
        signed_by(&ca.key, &signed, &mut good);
        let checks: Vec<([u8; 32], ExpertCheck)> = good
            .iter()
            .map(|(hash, cert, _, _)| (*hash, self.check_expert_cert(cert)))
            .collect();
        let mut checked = self.checked();
        let remembered = checks.len();
        for (hash, check) in checks {
            remember(&mut checked, hash, check);
        }
        remembered
    }

    /// A person's certificate checked against the CA and the revocation list, and valid now:
    /// the identity and the key (what `giasync-node install-person` installs).
    pub fn person_key(&self, der: &[u8]) -> Result<(PersonIdentity, [u8; 32]), String> {
        let (person, certified) = self.check_expert(der)?;
        if certified.weak {
            return Err("a weak key (small-order, or with a small-order component)".to_owned());
        }
        if let Some(at) = certified.revoked_at {
            return Err(format!("revoked at {}", crate::show::rfc3339(at)));
        }
        let now = OffsetDateTime::now_utc();
        if now < certified.not_before || now > certified.not_after {
            return Err(format!(
                "not valid now: valid from {} to {}",
                crate::show::rfc3339(certified.not_before),
                crate::show::rfc3339(certified.not_after)
            ));
        }
        Ok((person, certified.key.to_bytes()))
    }

    /// Checks an expert certificate against the CA and the revocation list.
    fn check_expert(&self, der: &[u8]) -> ExpertCheck {
        verify_issued_by(der, &self.ca_der)?;
        self.check_expert_signed(der)
    }

    /// [`CaVerifier::check_expert`] for a certificate whose CA signature has been checked.
    fn check_expert_signed(&self, der: &[u8]) -> ExpertCheck {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        self.check_expert_cert(&cert)
    }

    /// [`CaVerifier::check_expert_signed`] of a certificate already parsed.
    fn check_expert_cert(
        &self,
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> ExpertCheck {
        let summary = summarize_cert(cert).map_err(|e| e.to_string())?;
        let Ok(Identity::Person(person)) = summary.identity else {
            return Err("not a person's certificate".to_owned());
        };
        let key = VerifyingKey::from_bytes(&summary.ed25519_key.ok_or("not ed25519")?)
            .map_err(|e| e.to_string())?;
        // A key that is small-order, or has a small-order component, which the batch checks
        // would judge differently from one by one (`giasync_shared::ed25519_batch`). `Pki`
        // refuses to certify one, but a certificate issued before it did, or by another tool
        // under the region's CA, may carry one. The test costs a scalar multiplication (about
        // 29 µs here), once per certificate: the verdict is remembered with the rest.
        let weak = giasync_shared::ed25519_batch::weak(&key);
        let certified = CertifiedExpert {
            key,
            weak,
            role: person.role,
            org: person.org,
            not_before: summary.not_before,
            not_after: summary.not_after,
            revoked_at: self.revoked.get(&summary.serial).copied(),
        };
        Ok((person, certified))
    }
}

/// Pushes onto `good` the certificates of `signed` whose CA signature verifies under `ca`, found
/// in batches: a batch that fails is halved, down to [`EXPERT_CERTS_BATCH_MIN`] and below
/// which its certificates are left to be checked one by one. So one certificate the CA did not
/// sign costs a few smaller batches, not the whole region's checks one by one.
fn signed_by<'s, 'a>(
    ca: &VerifyingKey,
    signed: &'s [CaSigned<'a>],
    good: &mut Vec<&'s CaSigned<'a>>,
) {
    if signed.len() < EXPERT_CERTS_BATCH_MIN {
        return;
    }
    let messages: Vec<&[u8]> = signed.iter().map(|s| s.2.as_slice()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = signed.iter().map(|s| s.3).collect();
    let keys = vec![*ca; signed.len()];
    if giasync_shared::ed25519_batch::verify_batch(&messages, &signatures, &keys).is_ok() {
        good.extend(signed);
        return;
    }
    let (left, right) = signed.split_at(signed.len() / 2);
    signed_by(ca, left, good);
    signed_by(ca, right, good);
}

/// The SHA-256 of a certificate's DER: what a check is remembered by.
fn der_hash(der: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .try_into()
        .unwrap_or([0; 32])
}

/// Remembers a check, clearing the memory first when it is full.
fn remember(checked: &mut HashMap<[u8; 32], ExpertCheck>, hash: [u8; 32], check: ExpertCheck) {
    if checked.len() >= EXPERT_CERTS_CHECKED_MAX {
        checked.clear();
    }
    checked.insert(hash, check);
}

/// The CA as a signer, when its key is ed25519.
fn ca_signer(ca_der: &[u8]) -> Option<CaSigner> {
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der).ok()?;
    let spki = ca.public_key();
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return None;
    }
    let key = <[u8; 32]>::try_from(spki.subject_public_key.data.as_ref()).ok()?;
    let key = VerifyingKey::from_bytes(&key).ok()?;
    // A weak CA key is checked one by one (the batch adds up its terms).
    (!giasync_shared::ed25519_batch::weak(&key)).then(|| CaSigner {
        subject: ca.subject().as_raw().to_vec(),
        key,
    })
}

#[derive(Debug, Clone)]
struct CertifiedExpert {
    key: VerifyingKey,
    /// [`giasync_shared::ed25519_batch::weak`]: nothing signed under it counts.
    weak: bool,
    role: PersonRole,
    org: OrgCode,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

/// Experts certified by the region's CA, for verifying score sheets.
#[derive(Debug, Clone, Default)]
pub struct ExpertDirectory {
    experts: BTreeMap<PersonId, Result<CertifiedExpert, String>>,
}

fn to_time(at: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.unix_ms()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t` as a timestamp; `fallback` when it is outside the supported years.
fn to_timestamp(t: OffsetDateTime, fallback: Timestamp) -> Timestamp {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .and_then(|ms| Timestamp::from_unix_ms(ms).ok())
        .unwrap_or(fallback)
}

impl SignerDirectory for ExpertDirectory {
    fn revoked_at(&self, person: PersonId) -> Option<Timestamp> {
        let certified = self.experts.get(&person)?.as_ref().ok()?;
        // A revocation dated before the supported years counts from their start.
        const YEAR_2000_MS: i64 = 946_684_800_000;
        let ms = i64::try_from(certified.revoked_at?.unix_timestamp_nanos() / 1_000_000).ok()?;
        Timestamp::from_unix_ms(ms.max(YEAR_2000_MS)).ok()
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
        let certified = entry.as_ref().map_err(|_| SignerError::Unknown(expert))?;
        if certified.role != PersonRole::Expert || certified.org != OrgCode::School(school) {
            return Err(SignerError::NotExpertOf { expert, school });
        }
        certified.key_at(expert, at)
    }

    fn person_key(
        &self,
        role: PersonRole,
        person: PersonId,
        org: OrgCode,
        at: Timestamp,
    ) -> Result<VerifyingKey, SignerError> {
        let entry = self
            .experts
            .get(&person)
            .ok_or(SignerError::Unknown(person))?;
        let certified = entry.as_ref().map_err(|_| SignerError::Unknown(person))?;
        if certified.role != role || certified.org != org {
            return Err(SignerError::NotCertifiedAs { person, role, org });
        }
        certified.key_at(person, at)
    }
}

impl CertifiedExpert {
    /// The key, if the certificate was valid and not yet revoked at `at` and the key is not weak.
    fn key_at(&self, person: PersonId, at: Timestamp) -> Result<VerifyingKey, SignerError> {
        let when = to_time(at);
        if when < self.not_before || when > self.not_after {
            return Err(SignerError::NotValidAt { expert: person, at });
        }
        if let Some(revoked) = self.revoked_at.filter(|r| *r <= when) {
            return Err(SignerError::Revoked {
                expert: person,
                revoked_at: to_timestamp(revoked, at),
            });
        }
        // Last, as `FixedDirectory` judges: a revoked weak key is refused as revoked.
        if self.weak {
            return Err(SignerError::WeakKey(person));
        }
        Ok(self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeIdentity;
    use crate::pki::{Pki, Validity};
    use giasync_shared::codes::{MunicipalityCode, OrgCode};
    use time::Duration;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    fn ms(t: OffsetDateTime) -> i64 {
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
    }

    /// Expert `exp-N` of school 420101.
    fn expert_n(region: RegionCode, n: usize) -> PersonIdentity {
        use giasync_shared::codes::{NodeRole, PersonRole};
        PersonIdentity {
            region,
            role: PersonRole::Expert,
            id: PersonId::new(&format!("exp-{n}")).unwrap(),
            org: OrgCode::parse(NodeRole::School, "420101").unwrap(),
        }
    }

    /// A verifier over `pki`'s CA and revocation list.
    fn verifier_of(pki: &Pki, region: RegionCode) -> CaVerifier {
        CaVerifier::from_pem(
            pki.ca_cert_pem().as_bytes(),
            pki.crl_pem().unwrap().as_bytes(),
            region,
        )
        .unwrap()
    }

    /// A `crl.pem` that still holds last term's list beside the new one is as fresh as the new
    /// one, in whichever order; the old list alone is out of date (180 days from its making).
    #[test]
    fn a_list_file_holding_an_old_and_a_new_list_is_as_fresh_as_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let region = RegionCode::new("42").unwrap();
        let made = now() - Duration::days(200);
        let mut pki = Pki::init(dir.path(), region, "Тест", made).unwrap();
        let school = NodeIdentity::new(
            region,
            OrgCode::parse(giasync_shared::codes::NodeRole::School, "420101").unwrap(),
            Some(MunicipalityCode::new("4201").unwrap()),
        )
        .unwrap();
        let cert = pki
            .issue_node(school, "127.0.0.1", Validity::days_from(made, 730).unwrap())
            .unwrap();
        let cert_der = certs_from_pem(cert.cert_pem.as_bytes()).unwrap().remove(0);
        let old = pki.crl_pem().unwrap();
        pki.reissue_crl(now()).unwrap();
        let new = pki.crl_pem().unwrap();
        let ca = pki.ca_cert_pem().as_bytes().to_vec();
        let judge = |crl: String| {
            CaVerifier::from_pem(&ca, crl.as_bytes(), region)
                .unwrap()
                .node_key_at(&cert_der, ms(now()))
        };
        let stale = judge(old.clone()).unwrap_err();
        assert!(stale.contains("out of date"), "{stale}");
        assert!(judge(new.clone()).is_ok());
        assert!(judge(format!("{old}{new}")).is_ok());
        assert!(judge(format!("{new}{old}")).is_ok());
    }

    /// The РЦОИ receipts a protocol at every sheet that arrives, and each pass lists the
    /// protocol's expert certificates: each is checked against the CA once per verifier, while
    /// the id it is listed under is checked every time.
    #[test]
    fn an_expert_certificate_is_checked_once_and_its_listing_every_time() {
        use crate::keyfile::{KdfParams, Pin};
        use giasync_shared::codes::{NodeRole, PersonRole};
        let dir = tempfile::tempdir().unwrap();
        let region = RegionCode::new("42").unwrap();
        let mut pki = Pki::init(dir.path(), region, "Тест", now() - Duration::days(1)).unwrap();
        let school = SchoolCode::new("420101").unwrap();
        let expert = PersonIdentity {
            region,
            role: PersonRole::Expert,
            id: PersonId::new("exp-1").unwrap(),
            org: OrgCode::parse(NodeRole::School, "420101").unwrap(),
        };
        let fast = KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let creds = pki
            .issue_person(
                &expert,
                "Иванова Анна Петровна",
                Validity::days_from(now() - Duration::days(1), 10).unwrap(),
                &Pin::new("свет-ручей-1357".into()).unwrap(),
                fast,
            )
            .unwrap();
        let der = certs_from_pem(creds.cert_pem.as_bytes()).unwrap().remove(0);
        let verifier = CaVerifier::from_pem(
            pki.ca_cert_pem().as_bytes(),
            pki.crl_pem().unwrap().as_bytes(),
            region,
        )
        .unwrap();
        let at = Timestamp::from_unix_ms(ms(now())).unwrap();
        let listed = |id: &str| BTreeMap::from([(id.to_owned(), der.clone())]);
        for _ in 0..3 {
            let key = verifier
                .experts(&listed("exp-1"))
                .expert_key(expert.id, school, at)
                .unwrap();
            assert_eq!(key.to_bytes(), creds.verifying_key);
        }
        assert_eq!(verifier.experts_checked.lock().unwrap().len(), 1);
        // The same certificate listed under another expert's id vouches for nobody.
        let other = PersonId::new("exp-2").unwrap();
        let err = verifier
            .experts(&listed("exp-2"))
            .expert_key(other, school, at)
            .unwrap_err();
        assert_eq!(err, SignerError::Unknown(other));
        // A verifier for a new list checks again (its memory starts empty).
        let fresh = CaVerifier::from_pem(
            pki.ca_cert_pem().as_bytes(),
            pki.crl_pem().unwrap().as_bytes(),
            region,
        )
        .unwrap();
        assert!(fresh.experts_checked.lock().unwrap().is_empty());
    }

    /// Certificates met together are checked in one batch, with the verdicts one by one would
    /// give: four of the CA's are all remembered at once; with a fifth from another CA of the
    /// same name among them the batch fails and is halved, the halves that pass are
    /// remembered, and the rest is judged on its own (the four good, the fifth refused).
    #[test]
    fn certificates_met_together_are_checked_in_one_batch_with_the_same_verdicts() {
        let region = RegionCode::new("42").unwrap();
        let made = now() - Duration::days(1);
        let validity = Validity::days_from(made, 10).unwrap();
        let person = |n: usize| expert_n(region, n);
        let key = |n: usize| ed25519_dalek::SigningKey::from_bytes(&[u8::try_from(n).unwrap(); 32]);
        let issue = |pki: &mut Pki, people: &[usize]| -> Vec<(String, Vec<u8>)> {
            let wanted: Vec<(PersonIdentity, &str, [u8; 32])> = people
                .iter()
                .map(|&n| (person(n), "Эксперт", key(n).verifying_key().to_bytes()))
                .collect();
            pki.issue_people_for(&wanted, validity)
                .unwrap()
                .into_iter()
                .zip(people)
                .map(|((_, pem), &n)| {
                    (
                        format!("exp-{n}"),
                        certs_from_pem(pem.as_bytes()).unwrap().remove(0),
                    )
                })
                .collect()
        };
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut ours = Pki::init(dirs[0].path(), region, "Тест", made).unwrap();
        let mut theirs = Pki::init(dirs[1].path(), region, "Тест", made).unwrap();
        let good = issue(&mut ours, &[1, 2, 3, 4]);
        let foreign = issue(&mut theirs, &[5]);
        let verifier = || verifier_of(&ours, region);
        let at = Timestamp::from_unix_ms(ms(now())).unwrap();
        let school = SchoolCode::new("420101").unwrap();
        // Each expert's key as a directory gives it: Some(key bytes) or None when refused.
        let keys_of = |directory: &ExpertDirectory| -> Vec<Option<[u8; 32]>> {
            (1..=5)
                .map(|n| {
                    directory
                        .expert_key(person(n).id, school, at)
                        .ok()
                        .map(|k| k.to_bytes())
                })
                .collect()
        };
        let expected: Vec<Option<[u8; 32]>> = (1..=5)
            .map(|n| (n <= 4).then(|| key(n).verifying_key().to_bytes()))
            .collect();

        let together = verifier();
        let four: Vec<&[u8]> = good.iter().map(|(_, der)| der.as_slice()).collect();
        assert_eq!(together.check_experts_ahead(four.iter().copied()), 4);
        assert_eq!(
            together.check_experts_ahead(four.iter().copied()),
            0,
            "all known"
        );
        let all: BTreeMap<String, Vec<u8>> = good.iter().chain(&foreign).cloned().collect();
        assert_eq!(keys_of(&together.experts(&all)), expected);

        // exp-5, the foreign one, is last: the batch of five fails and is halved; exp-1 and
        // exp-2 pass as a pair; exp-3 alone, and exp-4 and exp-5 split again, are left.
        let with_a_foreign_one = verifier();
        let remembered = || with_a_foreign_one.experts_checked.lock().unwrap().len();
        let five: Vec<&[u8]> = all.values().map(Vec::as_slice).collect();
        assert_eq!(with_a_foreign_one.check_experts_ahead(five), 2);
        assert_eq!(remembered(), 2);
        assert_eq!(keys_of(&with_a_foreign_one.experts(&all)), expected);
        assert_eq!(remembered(), 5);

        let one_by_one = verifier();
        for (id, der) in &all {
            let alone = BTreeMap::from([(id.clone(), der.clone())]);
            let directory = one_by_one.experts(&alone);
            let n: usize = id.trim_start_matches("exp-").parse().unwrap();
            assert_eq!(keys_of(&directory)[n - 1], expected[n - 1], "{id} alone");
        }
    }

    /// A certificate the region's CA signed for a key with a small-order component, or a
    /// small-order key (issued before `Pki` refused such keys, or by another tool), vouches
    /// for nothing: its expert's sheets are refused with the reason, whether the certificate
    /// is checked alone or in a batch with others, first or from memory, and it cannot be
    /// installed; an ordinary key beside it is unaffected.
    #[test]
    fn a_key_with_a_small_order_component_is_refused_whoever_issued_it() {
        let region = RegionCode::new("42").unwrap();
        // Real time: installing checks validity against the clock.
        let made = OffsetDateTime::now_utc() - Duration::days(1);
        let validity = Validity::days_from(made, 10).unwrap();
        let person = |n: usize| expert_n(region, n);
        let ordinary = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let shifted = (ed25519_dalek::SigningKey::from_bytes(&[2; 32])
            .verifying_key()
            .to_edwards()
            + curve25519_dalek::constants::EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        let dir = tempfile::tempdir().unwrap();
        let mut pki = Pki::init(dir.path(), region, "Тест", made).unwrap();
        let mut issue = |n: usize, key: [u8; 32]| {
            let pem = pki
                .issue_person_unchecked(&person(n), "Эксперт", validity, key)
                .unwrap();
            certs_from_pem(pem.as_bytes()).unwrap().remove(0)
        };
        let good = issue(1, ordinary.to_bytes());
        let torsion = issue(2, shifted);
        // A small-order key itself (a point of order 8).
        let small = issue(
            3,
            curve25519_dalek::constants::EIGHT_TORSION[1]
                .compress()
                .to_bytes(),
        );
        let verifier = || verifier_of(&pki, region);
        let at = Timestamp::from_unix_ms(ms(OffsetDateTime::now_utc())).unwrap();
        let school = SchoolCode::new("420101").unwrap();
        let all = BTreeMap::from([
            ("exp-1".to_owned(), good.clone()),
            ("exp-2".to_owned(), torsion.clone()),
            ("exp-3".to_owned(), small.clone()),
        ]);
        // Together: the CA's signatures checked in one batch, every verdict remembered.
        let together = verifier();
        assert_eq!(
            together.check_experts_ahead(all.values().map(Vec::as_slice)),
            3
        );
        // Alone: each checked one by one when first asked for.
        let one_by_one = verifier();
        for n in [2, 3] {
            let weak = Err(SignerError::WeakKey(person(n).id));
            let id = format!("exp-{n}");
            let alone = BTreeMap::from([(id.clone(), all[&id].clone())]);
            assert_eq!(
                one_by_one
                    .experts(&alone)
                    .expert_key(person(n).id, school, at),
                weak
            );
            // Asked again, from memory (nothing new to check), the same.
            assert_eq!(one_by_one.check_experts_ahead([all[&id].as_slice()]), 0);
            assert_eq!(
                one_by_one
                    .experts(&alone)
                    .expert_key(person(n).id, school, at),
                weak
            );
            assert_eq!(
                together.experts(&all).expert_key(person(n).id, school, at),
                weak
            );
        }
        assert_eq!(
            together
                .experts(&all)
                .expert_key(person(1).id, school, at)
                .map(|k| k.to_bytes()),
            Ok(ordinary.to_bytes())
        );
        for der in [&torsion, &small] {
            let refused = verifier().person_key(der).unwrap_err();
            assert!(refused.contains("weak key"), "{refused}");
        }
        assert!(verifier().person_key(&good).is_ok());
    }
}
