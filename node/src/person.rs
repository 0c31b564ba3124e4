//! Keys: the node's own key (which signs its attestations and statements and derives its QUIC
//! endpoint keys), and a person's signing credentials on the operators' command line: their
//! certificate and their PIN-sealed key (as `giasync-certs` issues them), unlocked with the PIN
//! from the terminal or `GIASYNC_PIN`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
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
    unlock_as(key, cert, &[role])
}

/// [`unlock`] for a person of any of `roles`.
pub fn unlock_as(
    key: &Path,
    cert: Option<PathBuf>,
    roles: &[PersonRole],
) -> anyhow::Result<Credentials> {
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
    if !roles.contains(&person.role) {
        let names: Vec<&str> = roles.iter().map(|r| r.display_name()).collect();
        bail!(
            "{} is the certificate of {person}, not of a {}",
            cert_path.display(),
            names.join(" or ")
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

/// A node key that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyError {
    pub path: String,
    pub message: String,
}

/// Reads a node's ed25519 key (PKCS#8 PEM, as `giasync-certs` writes it).
pub fn load_node_key(path: &Path) -> Result<SigningKey, KeyError> {
    let fail = |message: String| KeyError {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| fail(e.to_string()))
}
