//! The people of a simulated region and their certificates.
//!
//! Every expert, organiser and head the plan names signs with an ed25519 key derived from the
//! seed, and holds a real X.509 certificate from a region CA that is itself made from the seed
//! (`giasync_certs::pki`): the same run issues the same certificates byte for byte, so the
//! protocols that carry them replicate the same bytes. The РЦОИ's ingest judges sheets, acts and
//! commission orders over those certificates with the production `CaVerifier`, as
//! `giasync-node` does; the run's own checks (`crate::report`) judge with an in-memory
//! directory built here from the plan, apart from the path they check. The expert each school
//! loses is revoked at the exam day's midnight on both.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use giasync_certs::PersonIdentity;
use giasync_certs::pki::{Pki, Validity};
use giasync_certs::show::certs_from_pem;
use giasync_certs::verify::CaVerifier;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{OrgCode, PersonId, PersonRole};
use giasync_shared::record::FixedDirectory;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::{derived_key, head_of, organiser_of};
use crate::plan::Plan;
use crate::scenario::ScenarioError;

/// How long before the exam day the rehearsal's CA and certificates are made.
const CERTIFIED_DAYS_BEFORE: i64 = 30;
/// How long the people's certificates run from then.
const PERSON_VALIDITY_DAYS: i64 = 365;

/// The region's people: their keys and certificates, the РЦОИ's verifier over them, and the
/// run's own directory of them.
#[derive(Debug)]
pub(super) struct People {
    /// Judges at the РЦОИ's ingest: the region CA's certificate and revocation list.
    pub verifier: CaVerifier,
    /// Judges in the run's checks: the same people, keys and revocations, in memory.
    pub directory: FixedDirectory,
    /// The experts' signing keys.
    pub expert_keys: BTreeMap<PersonId, SigningKey>,
    /// Every person's certificate (DER), as protocols carry them.
    pub certs: BTreeMap<PersonId, Vec<u8>>,
}

fn failed(e: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::Certificates(e.to_string())
}

/// Certifies every person of `plan` (its CA in a temporary folder, gone when this returns).
pub(super) fn certify(plan: &Plan) -> Result<People, ScenarioError> {
    let midnight =
        OffsetDateTime::from_unix_timestamp(plan.midnight_ms.div_euclid(1000)).map_err(failed)?;
    let made = midnight - Duration::days(CERTIFIED_DAYS_BEFORE);
    let validity = Validity {
        not_before: made,
        not_after: made + Duration::days(PERSON_VALIDITY_DAYS),
    };
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"giasync-sim CA")
        .chain_update(plan.seed.to_be_bytes())
        .finalize()
        .into();
    let folder = tempfile::tempdir().map_err(failed)?;
    let mut pki =
        Pki::init_from_seed(folder.path(), plan.region, "Репетиция", made, seed).map_err(failed)?;

    // (identity, key) of everyone, and the experts each school loses.
    let mut people: Vec<(PersonIdentity, SigningKey)> = Vec::new();
    let mut revoked = std::collections::BTreeSet::new();
    for school in &plan.schools {
        let org = OrgCode::School(school.code);
        let mut add = |role: PersonRole, id: PersonId| {
            let identity = PersonIdentity {
                region: plan.region,
                role,
                id,
                org,
            };
            people.push((identity, derived_key(plan.seed, id.as_str())));
        };
        if let Ok(organiser) = organiser_of(school) {
            add(PersonRole::Organiser, organiser);
        }
        if let Ok(head) = head_of(school) {
            add(PersonRole::Head, head);
        }
        for expert in &school.experts {
            add(PersonRole::Expert, *expert);
        }
        // The school's expert whom its commission order names for no room.
        add(PersonRole::Expert, school.unassigned_expert);
        add(PersonRole::Expert, school.revoked_expert);
        revoked.insert(school.revoked_expert);
    }
    let requests: Vec<(PersonIdentity, &str, [u8; 32])> = people
        .iter()
        .map(|(identity, key)| {
            (
                identity.clone(),
                "Участник репетиции",
                key.verifying_key().to_bytes(),
            )
        })
        .collect();
    let issued = pki.issue_people_for(&requests, validity).map_err(failed)?;

    let mut directory = FixedDirectory::default();
    let mut expert_keys = BTreeMap::new();
    let mut certs = BTreeMap::new();
    let mut revoked_serials = Vec::new();
    for ((identity, key), (serial, pem)) in people.into_iter().zip(issued) {
        let der = certs_from_pem(pem.as_bytes())
            .map_err(failed)?
            .into_iter()
            .next()
            .ok_or_else(|| failed(format!("no certificate issued for {}", identity.id)))?;
        certs.insert(identity.id, der);
        match identity.role {
            PersonRole::Expert => {
                if let OrgCode::School(school) = identity.org {
                    directory.add(identity.id, key.verifying_key(), &[school]);
                }
                expert_keys.insert(identity.id, key);
            }
            role => directory.add_person(identity.id, role, identity.org, key.verifying_key()),
        }
        if revoked.contains(&identity.id) {
            revoked_serials.push(serial);
        }
    }
    pki.revoke_many(&revoked_serials, "отозван перед экзаменом", midnight)
        .map_err(failed)?;
    let at_midnight = Timestamp::from_unix_ms(plan.midnight_ms).map_err(failed)?;
    for expert in revoked {
        directory.revoke(expert, at_midnight);
    }
    let verifier = CaVerifier::from_pem(
        pki.ca_cert_pem().as_bytes(),
        pki.crl_pem().map_err(failed)?.as_bytes(),
        plan.region,
    )
    .map_err(failed)?;
    Ok(People {
        verifier,
        directory,
        expert_keys,
        certs,
    })
}
