//! Enrolment: a node's key is made on its own machine and never leaves it. The node writes a
//! certificate request (PKCS #10, PEM) naming its identity and host and signed with that key
//! ([`request`]); the request travels to the РЦОИ (through the МОУО or on removable media); the
//! CA checks its signature, that the organisation is in the region's register, and issues a
//! certificate for the request's public key with the identity and usages the CA itself sets
//! ([`sign`]: nothing else of the request is copied); the node installs it beside its key
//! (`giasync-node install-cert`). `docs/operations.md`, "Identity".

use std::collections::BTreeSet;
use std::path::Path;

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, KeyPair,
    PKCS_ED25519, SanType,
};

use crate::identity::{Identity, NodeIdentity};
use crate::pki::{Pki, PkiError, Validity, write_atomic};

/// What went wrong making, reading or signing a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("certificate request: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The request does not say which node it is for, or says it twice.
    #[error(
        "the request names {0}: it must name exactly one giasync node identity (a giasync:// URI)"
    )]
    Identity(String),
    /// The request names no host, or more than one.
    #[error("the request names {0} hosts: it must name the one the node is reached at")]
    Host(usize),
    /// The request's key is not an ed25519 key.
    #[error("the request's key is not ed25519, as the region's node keys are")]
    KeyAlgorithm,
    /// The register does not list the organisation.
    #[error("{0} is not in the region's register: no certificate was issued")]
    NotRegistered(String),
    /// A register line that does not read.
    #[error("{path} line {line}: {message}")]
    Register {
        path: String,
        line: usize,
        message: String,
    },
}

/// Makes the node's key at `key_path` (mode 0600; an existing key is never overwritten) and
/// returns the certificate request for `identity`, reached at `host` (PEM).
pub fn request(key_path: &Path, identity: NodeIdentity, host: &str) -> Result<String, EnrolError> {
    if key_path.exists() {
        return Err(PkiError::Exists(key_path.display().to_string()).into());
    }
    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let csr = request_for(&key, identity, host)?;
    if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    write_atomic(key_path, key.serialize_pem().as_bytes(), true)?;
    Ok(csr)
}

/// The certificate request (PEM) for the key already at `key_path`: renewal, before the
/// certificate expires, without a new key.
pub fn renewal(key_path: &Path, identity: NodeIdentity, host: &str) -> Result<String, EnrolError> {
    let pem = std::fs::read_to_string(key_path).map_err(|source| PkiError::Io {
        path: key_path.display().to_string(),
        source,
    })?;
    request_for(&KeyPair::from_pem(&pem)?, identity, host)
}

fn request_for(key: &KeyPair, identity: NodeIdentity, host: &str) -> Result<String, EnrolError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, identity.to_string());
    params.subject_alt_names = vec![
        SanType::URI(identity.to_uri().as_str().try_into()?),
        host_san(host)?,
    ];
    Ok(params.serialize_request(key)?.pem()?)
}

fn host_san(host: &str) -> Result<SanType, rcgen::Error> {
    Ok(match host.parse::<std::net::IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(host.try_into()?),
    })
}

/// The organisations a region's register lists, as node identity URIs.
#[derive(Debug, Clone, Default)]
pub struct Register {
    identities: BTreeSet<String>,
}

impl Register {
    /// Reads a register: one organisation a line, `ROLE,CODE[,MUNICIPALITY]` (`school,420101,4201`,
    /// `municipality,4201`, `rcoi,42`), in `region`; blank lines and `#` comments skipped.
    pub fn read(
        path: &Path,
        region: giasync_shared::codes::RegionCode,
    ) -> Result<Register, EnrolError> {
        let text = std::fs::read_to_string(path).map_err(|source| PkiError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut identities = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| EnrolError::Register {
                path: path.display().to_string(),
                line: n + 1,
                message,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let (role, code, municipality) = match fields[..] {
                [role, code] => (role, code, None),
                [role, code, m] => (role, code, Some(m)),
                _ => return Err(bad("expected ROLE,CODE[,MUNICIPALITY]".into())),
            };
            let role: giasync_shared::codes::NodeRole = role
                .parse()
                .map_err(|e: giasync_shared::DomainError| bad(e.to_string()))?;
            let org = giasync_shared::codes::OrgCode::parse(role, code)
                .map_err(|e| bad(e.to_string()))?;
            let municipality = municipality
                .map(giasync_shared::codes::MunicipalityCode::new)
                .transpose()
                .map_err(|e| bad(e.to_string()))?;
            let identity =
                NodeIdentity::new(region, org, municipality).map_err(|e| bad(e.to_string()))?;
            identities.insert(identity.to_uri());
        }
        Ok(Register { identities })
    }

    /// Whether the register lists `identity`.
    #[must_use]
    pub fn lists(&self, identity: &NodeIdentity) -> bool {
        self.identities.contains(&identity.to_uri())
    }
}

/// A node key's fingerprint, to read out by phone: the node's operator reads what `enrol`
/// printed, the РЦОИ's compares it with what `sign` printed, so a request swapped on the way
/// (the МОУО carries it) is caught: `1a2b 3c4d 5e6f 7a8b` (the first 8 bytes of SHA-256 over the
/// raw ed25519 public key).
#[must_use]
pub fn fingerprint(public_key: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(public_key);
    digest[..8]
        .chunks(2)
        .map(|pair| format!("{:02x}{:02x}", pair[0], pair[1]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fingerprint of the key a request (PEM) is for; the request's signature is checked.
pub fn request_fingerprint(request_pem: &str) -> Result<String, EnrolError> {
    let request = CertificateSigningRequestParams::from_pem(request_pem)?;
    Ok(fingerprint(rcgen::PublicKeyData::der_bytes(
        &request.public_key,
    )))
}

/// Checks a node's certificate request (its signature, its one identity, its host, its key) and
/// that `register` lists the organisation, then issues the certificate (PEM) with `pki`, for
/// the request's key and with the identity, host, usages and `validity` the CA sets.
pub fn sign(
    pki: &mut Pki,
    request_pem: &str,
    register: &Register,
    validity: Validity,
) -> Result<(NodeIdentity, u64, String), EnrolError> {
    let request = CertificateSigningRequestParams::from_pem(request_pem)?;
    if !request.public_key.algorithm().eq(&PKCS_ED25519) {
        return Err(EnrolError::KeyAlgorithm);
    }
    let mut identities = Vec::new();
    let mut hosts = Vec::new();
    for san in &request.params.subject_alt_names {
        match san {
            SanType::URI(uri) => identities.push(uri.as_str().to_owned()),
            SanType::DnsName(name) => hosts.push(name.as_str().to_owned()),
            SanType::IpAddress(ip) => hosts.push(ip.to_string()),
            _ => {}
        }
    }
    let identity = match &identities[..] {
        [uri] => match Identity::parse_uri(uri) {
            Ok(Identity::Node(node)) => node,
            _ => return Err(EnrolError::Identity(format!("{uri:?}"))),
        },
        none_or_many => return Err(EnrolError::Identity(format!("{none_or_many:?}"))),
    };
    let [host] = &hosts[..] else {
        return Err(EnrolError::Host(hosts.len()));
    };
    if !register.lists(&identity) {
        return Err(EnrolError::NotRegistered(identity.to_string()));
    }
    let (serial, cert) = pki.issue_node_for(identity, host, validity, &request.public_key)?;
    Ok((identity, serial, cert))
}
