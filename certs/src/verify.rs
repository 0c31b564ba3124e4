//! Checking node certificates carried inside replicated data (attestations) against the region's
//! CA and revocation list — the sync engine's [`CertVerifier`].

use std::collections::BTreeSet;

use giasync_shared::codes::RegionCode;
use giasync_shared::sync::{CertCheck, CertVerifier};
use time::OffsetDateTime;

use crate::identity::Identity;
use crate::show::{
    certs_from_pem, crls_from_pem, summarize_crl_der, summarize_der, verify_crl_issued_by,
    verify_issued_by,
};

/// The region's CA certificate and the serials its revocation list names.
#[derive(Debug, Clone)]
pub struct CaVerifier {
    ca_der: Vec<u8>,
    region: RegionCode,
    revoked: BTreeSet<u64>,
}

impl CaVerifier {
    /// From the PEM texts of the CA certificate and its revocation list.
    pub fn from_pem(ca_pem: &[u8], crl_pem: &[u8], region: RegionCode) -> Result<Self, String> {
        let ca_der = certs_from_pem(ca_pem)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or("no CA certificate")?;
        let mut revoked = BTreeSet::new();
        for crl in crls_from_pem(crl_pem).map_err(|e| e.to_string())? {
            verify_crl_issued_by(&crl, &ca_der)?;
            revoked.extend(
                summarize_crl_der(&crl)
                    .map_err(|e| e.to_string())?
                    .revoked
                    .into_iter()
                    .map(|(s, _)| s),
            );
        }
        Ok(CaVerifier {
            ca_der,
            region,
            revoked,
        })
    }
}

impl CertVerifier for CaVerifier {
    fn node_key(&self, cert_der: &[u8]) -> CertCheck {
        verify_issued_by(cert_der, &self.ca_der)?;
        let summary = summarize_der(cert_der).map_err(|e| e.to_string())?;
        let now = OffsetDateTime::now_utc();
        if now < summary.not_before || now > summary.not_after {
            return Err(format!("certificate {} is not valid now", summary.serial));
        }
        if self.revoked.contains(&summary.serial) {
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
