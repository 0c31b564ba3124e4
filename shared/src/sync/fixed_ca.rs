//! A CA kept in memory, for tests, benchmarks and the simulator; production nodes check X.509
//! certificates against the region's CA (`giasync_certs::verify::CaVerifier`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use ed25519_dalek::SigningKey;

use super::{CertCheck, CertVerifier, NodeIdentity};

/// Bytes of a certificate it issues: about those of a real ed25519 node certificate, so byte
/// counts on simulated links stay honest.
pub const FIXED_CERT_BYTES: usize = 420;

type Issued = HashMap<Vec<u8>, (NodeIdentity, [u8; 32])>;

/// Vouches for exactly the certificates it issued. Clones share what was issued.
#[derive(Clone, Debug, Default)]
pub struct FixedCa {
    issued: Arc<Mutex<Issued>>,
}

impl FixedCa {
    /// A certificate for `identity` with `key`'s public half: a tag, the identity URI and the
    /// key, padded to [`FIXED_CERT_BYTES`]. The same identity and key give the same bytes.
    pub fn issue(&self, identity: NodeIdentity, key: &SigningKey) -> Vec<u8> {
        self.issue_again(identity, key, 0)
    }

    /// As [`FixedCa::issue`], the `renewal`th certificate for the same identity and key (a node
    /// renewing its certificate keeps its key): other bytes for each, the 0th [`issue`]'s.
    ///
    /// [`issue`]: FixedCa::issue
    pub fn issue_again(&self, identity: NodeIdentity, key: &SigningKey, renewal: u8) -> Vec<u8> {
        let public = key.verifying_key().to_bytes();
        let mut cert = b"FIXEDCA ".to_vec();
        cert.extend_from_slice(identity.to_uri().as_bytes());
        cert.push(0);
        cert.extend_from_slice(&public);
        cert.resize(FIXED_CERT_BYTES.max(cert.len() + 1), 0);
        if let Some(last) = cert.last_mut() {
            *last = renewal;
        }
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cert.clone(), (identity, public));
        cert
    }

    /// Stops vouching for `cert`, as a revocation would.
    pub fn withdraw(&self, cert: &[u8]) {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cert);
    }
}

impl CertVerifier for FixedCa {
    fn node_key(&self, cert_der: &[u8]) -> CertCheck {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cert_der)
            .copied()
            .ok_or_else(|| "not issued by the region's CA".to_owned())
    }
}
