//! Attestations: a node's ed25519 signature over the heads of a document.
//!
//! An automerge change's hash covers its dependencies, so a signature over a set of heads vouches
//! for every change in their history. Each node writes its changes under one actor id derived
//! from its public key ([`actor_for`]); a receiver accepts a change only when the latest
//! attestation of the key behind the change's actor covers it. A relay can forward a school's
//! changes but cannot alter them (that changes their hashes) nor invent one under the school's
//! actor (it cannot sign for the school).
//!
//! Encoding (version 1): magic `GIASATT1`, document id (u8 length + UTF-8), the author's 32-byte
//! ed25519 key, time (i64 ms, big-endian), head count (u16) and the heads (32 bytes each,
//! ascending), then the 64-byte signature over everything before it.

use automerge::{ActorId, ChangeHash};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::DocId;

const MAGIC: &[u8; 8] = b"GIASATT1";
/// The most heads an attestation may name.
pub const ATTESTATION_HEADS_MAX: usize = 256;

/// The automerge actor id a node writes under: the first 16 bytes of SHA-256 over a domain tag
/// and its public key.
#[must_use]
pub fn actor_for(key: &[u8; 32]) -> ActorId {
    let digest = Sha256::new()
        .chain_update(b"giasync actor v1")
        .chain_update(key)
        .finalize();
    ActorId::from(&digest[..16])
}

/// A signed statement "the author holds these heads of this document".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    pub doc: DocId,
    pub author: [u8; 32],
    pub at_ms: i64,
    /// Ascending.
    pub heads: Vec<ChangeHash>,
    bytes: Vec<u8>,
}

/// An attestation that does not decode or verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    #[error("malformed attestation: {0}")]
    Malformed(&'static str),
    #[error("the attestation's signature does not verify")]
    BadSignature,
}

impl Attestation {
    /// Signs `heads` of `doc` with `key` at `at_ms`.
    #[must_use]
    pub fn sign(doc: DocId, mut heads: Vec<ChangeHash>, at_ms: i64, key: &SigningKey) -> Self {
        heads.sort();
        heads.dedup();
        heads.truncate(ATTESTATION_HEADS_MAX);
        let author = key.verifying_key().to_bytes();
        let mut bytes = Vec::with_capacity(8 + 64 + 32 * heads.len() + 110);
        bytes.extend_from_slice(MAGIC);
        let doc_text = doc.to_string();
        bytes.push(u8::try_from(doc_text.len()).unwrap_or(u8::MAX));
        bytes.extend_from_slice(doc_text.as_bytes());
        bytes.extend_from_slice(&author);
        bytes.extend_from_slice(&at_ms.to_be_bytes());
        bytes.extend_from_slice(&u16::try_from(heads.len()).unwrap_or(u16::MAX).to_be_bytes());
        for head in &heads {
            bytes.extend_from_slice(&head.0);
        }
        let signature = key.sign(&bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        Attestation {
            doc,
            author,
            at_ms,
            heads,
            bytes,
        }
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes and verifies the signature against the key it names. Whether that key belongs to
    /// a node allowed to write the document is the caller's check.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, AttestError> {
        Self::decode_verified_with(bytes, |_| None)
    }

    /// [`Attestation::decode_verified`], the author's key, decompressed already, taken from
    /// `known` when it has it (an engine keeps the keys of the authors it has met: each
    /// decompression costs about a seventh of the signature check). A key `known` gives that is
    /// not the one the 32 bytes encode is not used.
    pub fn decode_verified_with(
        bytes: &[u8],
        known: impl FnOnce(&[u8; 32]) -> Option<VerifyingKey>,
    ) -> Result<Self, AttestError> {
        let malformed = AttestError::Malformed;
        if bytes.len() < 8 + 1 + 32 + 8 + 2 + 64 || &bytes[..8] != MAGIC {
            return Err(malformed("not an attestation"));
        }
        let (body, signature) = bytes.split_at(bytes.len() - 64);
        let doc_len = usize::from(body[8]);
        let rest = body.get(9 + doc_len..).ok_or(malformed("too short"))?;
        let doc_text =
            std::str::from_utf8(&body[9..9 + doc_len]).map_err(|_| malformed("document id"))?;
        let doc: DocId = doc_text.parse().map_err(|_| malformed("document id"))?;
        if rest.len() < 32 + 8 + 2 {
            return Err(malformed("too short"));
        }
        let mut author = [0u8; 32];
        author.copy_from_slice(&rest[..32]);
        let at_ms = i64::from_be_bytes(rest[32..40].try_into().map_err(|_| malformed("time"))?);
        let count = usize::from(u16::from_be_bytes([rest[40], rest[41]]));
        let heads_bytes = &rest[42..];
        if count > ATTESTATION_HEADS_MAX || heads_bytes.len() != 32 * count {
            return Err(malformed("head count"));
        }
        let heads: Vec<ChangeHash> = heads_bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                ChangeHash(h)
            })
            .collect();
        if !heads.windows(2).all(|w| w[0] < w[1]) {
            return Err(malformed("heads not ascending"));
        }
        // A known key is taken only if it is the one the attestation names.
        let key = match known(&author).filter(|k| k.as_bytes() == &author) {
            Some(key) => key,
            None => VerifyingKey::from_bytes(&author).map_err(|_| malformed("author key"))?,
        };
        let signature =
            Signature::from_bytes(signature.try_into().map_err(|_| malformed("signature"))?);
        key.verify(body, &signature)
            .map_err(|_| AttestError::BadSignature)?;
        Ok(Attestation {
            doc,
            author,
            at_ms,
            heads,
            bytes: bytes.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_verify_and_refuse_tampering() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let doc: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
        let att = Attestation::sign(
            doc,
            vec![ChangeHash([2; 32]), ChangeHash([1; 32])],
            1000,
            &key,
        );
        let back = Attestation::decode_verified(att.as_bytes()).unwrap();
        assert_eq!(back, att);
        assert_eq!(back.heads[0], ChangeHash([1; 32]));
        for i in [0, 9, 30, 60, 75, att.as_bytes().len() - 1] {
            let mut bad = att.as_bytes().to_vec();
            bad[i] ^= 1;
            assert!(Attestation::decode_verified(&bad).is_err(), "byte {i}");
        }
    }

    /// A key given as known is used only when it is the key the attestation names: the
    /// author's own passes, another key is not taken for it (the check then decompresses the
    /// named key, and passes), and a signature that does not match fails with either.
    #[test]
    fn a_known_key_is_used_only_for_its_own_bytes() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let other = SigningKey::from_bytes(&[4; 32]);
        let doc: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
        let att = Attestation::sign(doc, vec![ChangeHash([1; 32])], 1000, &key);
        let keys = [key.verifying_key(), other.verifying_key()];
        for known in keys {
            assert_eq!(
                Attestation::decode_verified_with(att.as_bytes(), |_| Some(known)).unwrap(),
                att
            );
        }
        // The last byte of the last head: signed over, decoded without complaint.
        let mut bad = att.as_bytes().to_vec();
        let last_head_byte = bad.len() - 64 - 1;
        bad[last_head_byte] ^= 1;
        for known in keys {
            assert!(matches!(
                Attestation::decode_verified_with(&bad, |_| Some(known)),
                Err(AttestError::BadSignature)
            ));
        }
    }

    #[test]
    fn actors_are_stable_and_distinct() {
        assert_eq!(actor_for(&[1; 32]), actor_for(&[1; 32]));
        assert_ne!(actor_for(&[1; 32]), actor_for(&[2; 32]));
    }
}
