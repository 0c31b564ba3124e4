//! A person's signing credentials on the operators' command line: their certificate and their
//! PIN-sealed key (as `giasync-certs` issues them), unlocked with the PIN from the terminal or
//! `GIASYNC_PIN`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ed25519_dalek::SigningKey;
use giasync_certs::keyfile::{self, Pin};
use giasync_shared::codes::PersonRole;
use giasync_shared::identity::{Identity, PersonIdentity};

/// A person's unlocked key and their certificate.
#[derive(Debug)]
pub struct Credentials {
    pub person: PersonIdentity,
    pub key: SigningKey,
    pub cert_der: Vec<u8>,
}

/// Reads the certificate (`cert`, or `ID.crt` beside the key), checks it is for `role`, and
/// unlocks the key with the PIN.
pub fn unlock(key: &Path, cert: Option<PathBuf>, role: PersonRole) -> anyhow::Result<Credentials> {
    let cert_path = cert.unwrap_or_else(|| key.with_extension("crt"));
    let cert_der = giasync_certs::show::certs_from_pem(
        &std::fs::read(&cert_path).with_context(|| cert_path.display().to_string())?,
    )?
    .into_iter()
    .next()
    .context("no certificate")?;
    let Ok(Identity::Person(person)) = giasync_certs::identity::from_cert_der(&cert_der) else {
        bail!("{} is not a person's certificate", cert_path.display());
    };
    if person.role != role {
        bail!(
            "{} is the certificate of {person}, not of a {}",
            cert_path.display(),
            role.display_name()
        );
    }
    let pin = Pin::read(&format!("PIN for {}: ", person.id), false)?;
    let key = keyfile::open(
        &std::fs::read(key).with_context(|| key.display().to_string())?,
        &pin,
    )?;
    Ok(Credentials {
        person,
        key,
        cert_der,
    })
}
