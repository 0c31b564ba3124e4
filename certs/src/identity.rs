//! Identities read from certificates. The identity types and their URI form live in
//! `giasync_shared::identity` (the sync engine authorises by them); this module reads them out
//! of X.509 certificates.

use x509_parser::extensions::GeneralName;

pub use giasync_shared::identity::{Identity, IdentityError, NodeIdentity, PersonIdentity, SCHEME};

/// Reads the identity of a DER certificate: exactly one `giasync://` URI subject alternative
/// name. The chain and validity are *not* checked here: that is TLS's (for nodes) or the
/// directory's (for people) job.
pub fn from_cert_der(der: &[u8]) -> Result<Identity, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::NotACertificate(e.to_string()))?;
    from_cert(&cert)
}

/// [`from_cert_der`] of a certificate already parsed.
pub fn from_cert(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<Identity, IdentityError> {
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::NotACertificate(e.to_string()))?;
    let mut found = None;
    for name in sans.iter().flat_map(|ext| ext.value.general_names.iter()) {
        if let GeneralName::URI(uri) = name
            && uri.starts_with(SCHEME)
        {
            if found.is_some() {
                return Err(IdentityError::Ambiguous);
            }
            found = Some(Identity::parse_uri(uri)?);
        }
    }
    found.ok_or(IdentityError::Missing)
}

/// The node identity of a certificate; an error for a person's.
pub fn node_from_cert_der(der: &[u8]) -> Result<NodeIdentity, IdentityError> {
    match from_cert_der(der)? {
        Identity::Node(n) => Ok(n),
        Identity::Person(p) => Err(IdentityError::WrongKind {
            expected: "node",
            got: format!("person {p}"),
        }),
    }
}
