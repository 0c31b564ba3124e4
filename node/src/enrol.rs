//! The node's side of enrolment (`giasync_certs::enrol`): `giasync-node enrol` makes the node's
//! key where `node.toml` keeps it and writes a certificate request for the identity
//! `node.toml` gives; `giasync-node install-cert` checks the certificate the РЦОИ issued for it
//! and puts it, the CA certificate and the revocation list where `node.toml` names them. The
//! key never leaves the node's machine.

use std::path::Path;

use giasync_certs::enrol::EnrolError;
use giasync_certs::identity::NodeIdentity;
use giasync_certs::pki::{node_key_public, write_atomic};
use giasync_certs::verify::CaVerifier;
use giasync_shared::config::NodeConfig;
use giasync_shared::sync::CertVerifier as _;

/// What went wrong enrolling a node or a person (`crate::enrol_person`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error(transparent)]
    Person(#[from] giasync_certs::enrol_person::EnrolPersonError),
    #[error("node.toml: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// The certificate does not fit this node, or the person enrolled here.
    #[error("{0}: nothing was installed")]
    Refused(String),
}

/// A file that could not be read or written, and why.
pub(crate) fn file_error(path: &Path, message: impl ToString) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The highest number of the revocation lists in a `crl.pem` (0 when none says).
fn crl_number(pem: &[u8]) -> u64 {
    giasync_certs::show::crls_from_pem(pem)
        .unwrap_or_default()
        .iter()
        .filter_map(|der| giasync_certs::show::summarize_crl_der(der).ok()?.number)
        .max()
        .unwrap_or(0)
}

/// The bytes of `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| file_error(path, e))
}

/// The identity `config` gives the node.
fn identity_of(config: &NodeConfig) -> Result<NodeIdentity, Error> {
    let org = config.org().map_err(|e| Error::Config(e.to_string()))?;
    NodeIdentity::new(config.node.region, org, config.node.municipality)
        .map_err(|e| Error::Config(e.to_string()))
}

/// Makes the node's key at `[tls] key` (never over an existing one) and returns the
/// certificate request (PEM) for the node `config` describes, reached at `host`.
pub fn request(config: &NodeConfig, host: &str) -> Result<(NodeIdentity, String), Error> {
    let identity = identity_of(config)?;
    let request = giasync_certs::enrol::request(&config.tls.key, identity, host)?;
    Ok((identity, request))
}

/// The certificate request (PEM) for the node's existing key: renewal before expiry.
pub fn renewal(config: &NodeConfig, host: &str) -> Result<(NodeIdentity, String), Error> {
    let identity = identity_of(config)?;
    let request = giasync_certs::enrol::renewal(&config.tls.key, identity, host)?;
    Ok((identity, request))
}

/// Installs the certificate in `from` (`node.crt`, `ca.crt`, `crl.pem`, as `giasync-certs sign`
/// writes them) for the node of `config`, after checking that the CA issued it and has not
/// revoked it, that it is for this node's key and for the identity `node.toml` gives, and
/// that the node does not already trust another CA. Writes nothing if any check fails.
pub fn install(config: &NodeConfig, from: &Path) -> Result<NodeIdentity, Error> {
    let cert_pem = read(&from.join("node.crt"))?;
    let ca_pem = read(&from.join("ca.crt"))?;
    let crl_pem = read(&from.join("crl.pem"))?;
    let cert_der = giasync_certs::show::certs_from_pem(&cert_pem)
        .map_err(|e| Error::Refused(format!("node.crt: {e}")))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Refused("node.crt holds no certificate".into()))?;
    let verifier = CaVerifier::from_pem(&ca_pem, &crl_pem, config.node.region)
        .map_err(|e| Error::Refused(format!("ca.crt and crl.pem: {e}")))?;
    let (identity, public) = verifier
        .node_key(&cert_der)
        .map_err(|e| Error::Refused(format!("node.crt: {e}")))?;
    let key_pem = String::from_utf8(read(&config.tls.key)?).map_err(|_| Error::File {
        path: config.tls.key.display().to_string(),
        message: "not PEM".into(),
    })?;
    let ours = node_key_public(&key_pem).map_err(|e| Error::File {
        path: config.tls.key.display().to_string(),
        message: e.to_string(),
    })?;
    if public != ours {
        return Err(Error::Refused(format!(
            "node.crt is for another key than {}",
            config.tls.key.display()
        )));
    }
    let expected = identity_of(config)?;
    if identity != expected {
        return Err(Error::Refused(format!(
            "node.crt is for {identity}, node.toml describes {expected}"
        )));
    }
    if let Ok(trusted) = std::fs::read(&config.tls.ca)
        && trusted != ca_pem
    {
        return Err(Error::Refused(format!(
            "{} holds another CA than the one that issued node.crt",
            config.tls.ca.display()
        )));
    }
    // The revocation list the node has may be newer than the folder's (a revocation since the
    // folder was signed): the certificate must pass it too, and it is never replaced by an
    // older one.
    let mut crl_pem = crl_pem;
    if let Ok(held) = std::fs::read(&config.tls.crl) {
        let held_verifier = CaVerifier::from_pem(&ca_pem, &held, config.node.region)
            .map_err(|e| Error::Refused(format!("{}: {e}", config.tls.crl.display())))?;
        held_verifier.node_key(&cert_der).map_err(|e| {
            Error::Refused(format!(
                "node.crt, by the node's own {}: {e}",
                config.tls.crl.display()
            ))
        })?;
        if crl_number(&held) > crl_number(&crl_pem) {
            crl_pem = held;
        }
    }
    for (path, bytes) in [
        (&config.tls.ca, &ca_pem),
        (&config.tls.crl, &crl_pem),
        (&config.tls.cert, &cert_pem),
    ] {
        write_atomic(path, bytes, false).map_err(EnrolError::from)?;
    }
    Ok(identity)
}
