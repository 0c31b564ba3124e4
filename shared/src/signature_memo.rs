//! A node's memory of the ed25519 signatures it has already found good.
//!
//! Whether a signature verifies is a function of the key, the message and the signature alone,
//! so a node that checked one need not check it again. The РЦОИ re-reads a school's commission
//! orders and acts at every sheet that arrives from it (`crate::ingest`), and each order is a
//! signed statement: without the memory, every arriving sheet pays for the order's signature
//! again. What depends on time (whether the signer's certificate was valid, or revoked, when it
//! counts) is judged by the caller every time; only the arithmetic is remembered.
//!
//! Only good signatures are remembered, under the SHA-256 of key, signature and message, so a
//! bad one is checked, and refused, every time. Each node keeps its own memory (the engine holds
//! it: [`crate::sync::Engine::signatures`]); the simulator's nodes share nothing through it.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use ed25519_dalek::{Signature, SignatureError, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Good signatures remembered; the memory is cleared when full (a region's day makes a few
/// thousand signed statements; 65,536 digests take about 4 MiB in the set).
pub const SIGNATURES_REMEMBERED_MAX: usize = 65_536;

/// Good signatures a node has checked, by digest (see the module's comment).
#[derive(Debug, Default)]
pub struct SignatureMemo {
    good: Mutex<HashSet<[u8; 32]>>,
}

impl SignatureMemo {
    /// `key.verify(message, signature)`, remembered when good.
    pub fn verify(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update(signature.to_bytes());
        h.update(message);
        let digest: [u8; 32] = h.finalize().into();
        if self.good().contains(&digest) {
            return Ok(());
        }
        // Checked without the lock held: another thread may check the same one meanwhile.
        key.verify(message, signature)?;
        let mut good = self.good();
        if good.len() >= SIGNATURES_REMEMBERED_MAX {
            good.clear();
        }
        good.insert(digest);
        Ok(())
    }

    /// How many good signatures are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.good().len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn good(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.good.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    #[test]
    fn a_good_signature_is_remembered_and_a_bad_one_refused_every_time() {
        let memo = SignatureMemo::default();
        let key = SigningKey::from_bytes(&[5; 32]);
        let signature = key.sign(b"order 1");
        let public = key.verifying_key();
        assert!(memo.verify(&public, b"order 1", &signature).is_ok());
        assert_eq!(memo.len(), 1);
        assert!(memo.verify(&public, b"order 1", &signature).is_ok());
        assert_eq!(memo.len(), 1, "checked once, remembered once");
        // The same signature on another message, or under another key, is not the one
        // remembered: refused, however often asked, and never remembered.
        for _ in 0..2 {
            assert!(memo.verify(&public, b"order 2", &signature).is_err());
            let other = SigningKey::from_bytes(&[6; 32]).verifying_key();
            assert!(memo.verify(&other, b"order 1", &signature).is_err());
        }
        assert_eq!(memo.len(), 1);
    }
}
