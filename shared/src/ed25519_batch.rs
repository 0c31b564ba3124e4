//! ed25519 batch verification with each key's terms added up before the multiplication.
//!
//! For a batch of n signatures (Rᵢ, sᵢ) by keys Aᵢ on messages Mᵢ, with hᵢ = SHA-512(Rᵢ‖Aᵢ‖Mᵢ)
//! and random 128-bit zᵢ, ed25519-dalek's `verify_batch` checks
//!
//! ```text
//!     −(Σ zᵢ·sᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢ·hᵢ)·Aᵢ = 0
//! ```
//!
//! in one multiscalar multiplication over 2n + 1 points. At the РЦОИ most signatures of a batch
//! share their key with others (an expert signs dozens of sheets), and the terms of one key add
//! up to a single term: (Σ over i with Aᵢ = A of zᵢ·hᵢ)·A. [`verify_batch`] checks the same
//! equation with the same checks (sᵢ a canonical scalar, Rᵢ a point) over n + k + 1 points for k
//! keys. Adding up is exact for a key without a small-order component: the coefficients are
//! taken modulo the group order ℓ, and ℓ·A is the identity only for such a key. A key with one
//! ([`weak`]) is never certified: the region's CA refuses it when it issues a certificate
//! (`giasync-certs`), every node's certificate check (`CaVerifier`) refuses it in a
//! certificate the CA signed anyway (an older one, or one another tool made), and the in-memory directory refuses it
//! when a key is added, so no sheet is checked against it. (With such a key, a signature that
//! fails alone can pass a batch: the expert could later disown a score the РЦОИ verified.)
//!
//! Its zᵢ are drawn from the same inputs as ed25519-dalek's, by SHA-512 rather than a merlin
//! transcript ([`weights`], cheaper). A batch holding a bad signature passes with a chance of
//! about 2⁻¹²⁸.
//!
//! **Cofactored, alone and in a batch.** The sum is checked multiplied by the cofactor 8, and a
//! signature checked alone ([`verify_one`]) by the same equation, RFC 8032 §5.1.7's
//! [8][S]B = [8]R + [8][k]A. ed25519-dalek's `verify` and `verify_batch` check it without the 8,
//! and then the verdict on a signature whose R has a small-order component added depends on how
//! it is checked: refused alone, it passes such a batch with a chance of up to ½ over the
//! weights, which are a function of the whole batch, so its signer can re-sign until the batch
//! it will be checked in passes it. A sheet's verdict would then depend on which other sheets
//! arrived with it, and differ between the РЦОИ and a school. With the 8, such a signature is
//! good alone and in any batch, as the RFC's equation says; it still needs the key (it forges
//! nothing), and an honest signer never makes one. The tests hold our verdicts beside
//! ed25519-dalek's on valid batches and broken ones, and show that the two checks here agree on
//! such a signature.
//!
//! A batch that fails still has to be split to find its bad signatures (`crate::record`).

use std::collections::HashMap;
use std::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

/// Whether `key` must not be certified: small-order (ed25519-dalek's `is_weak`), or with a
/// small-order component, which the batch's adding up of terms would not judge as
/// ed25519-dalek does (see the module's comment). A key made from a secret by ed25519 has
/// neither. This costs a scalar multiplication: it is checked once per key, when certified.
#[must_use]
pub fn weak(key: &VerifyingKey) -> bool {
    key.is_weak() || !key.to_edwards().is_torsion_free()
}

/// Why a batch does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("{messages} messages, {signatures} signatures and {keys} keys: one of each per entry")]
    Lengths {
        messages: usize,
        signatures: usize,
        keys: usize,
    },
    /// A signature's s is not a canonical scalar (below the group order).
    #[error("a signature's s is not a canonical scalar")]
    ScalarFormat,
    /// A signature's R is not a point, or the equation does not hold.
    #[error("the batch does not verify")]
    Verify,
}

/// Checks that every `signatures[i]` is `keys[i]`'s on `messages[i]`, as one batch, each key's
/// terms counted once (see the module's comment).
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> Result<(), BatchError> {
    if messages.len() != signatures.len() || keys.len() != signatures.len() {
        return Err(BatchError::Lengths {
            messages: messages.len(),
            signatures: signatures.len(),
            keys: keys.len(),
        });
    }
    let hrams: Vec<[u8; 64]> = signatures
        .iter()
        .zip(keys)
        .zip(messages)
        .map(|((signature, key), message)| {
            let mut h = Sha512::new();
            h.update(signature.r_bytes());
            h.update(key.as_bytes());
            h.update(message);
            h.finalize().into()
        })
        .collect();
    let mut zs = weights(&hrams, signatures);
    let s: Vec<Scalar> = signatures
        .iter()
        .map(|signature| Option::from(Scalar::from_canonical_bytes(*signature.s_bytes())))
        .collect::<Option<_>>()
        .ok_or(BatchError::ScalarFormat)?;
    let b_coefficient: Scalar = s.iter().zip(&zs).map(|(s, z)| s * z).sum();

    // One term per distinct key, in the order the keys first appear.
    let mut term_of: HashMap<[u8; 32], usize> = HashMap::new();
    let mut a_points: Vec<Option<EdwardsPoint>> = Vec::new();
    let mut a_coefficients: Vec<Scalar> = Vec::new();
    for ((hram, z), key) in hrams.iter().zip(&zs).zip(keys) {
        let coefficient = Scalar::from_bytes_mod_order_wide(hram) * z;
        let term = *term_of.entry(*key.as_bytes()).or_insert_with(|| {
            a_points.push(Some(key.to_edwards()));
            a_coefficients.push(Scalar::ZERO);
            a_points.len() - 1
        });
        a_coefficients[term] += coefficient;
    }

    let rs = signatures
        .iter()
        .map(|signature| CompressedEdwardsY(*signature.r_bytes()).decompress());
    let scalars = once(-b_coefficient)
        .chain(zs.drain(..))
        .chain(a_coefficients);
    let points = once(Some(ED25519_BASEPOINT_POINT))
        .chain(rs)
        .chain(a_points);
    let sum = EdwardsPoint::optional_multiscalar_mul(scalars, points).ok_or(BatchError::Verify)?;
    // Cofactored (see the module's comment): 8·sum is the identity.
    if sum.is_small_order() {
        Ok(())
    } else {
        Err(BatchError::Verify)
    }
}

/// Checks that `signature` is `key`'s on `message` by the equation [`verify_batch`] checks
/// (cofactored, RFC 8032 §5.1.7: see the module's comment), so a signature's verdict is the
/// same alone and in any batch. Also refuses an s that is not a canonical scalar and an R that
/// is not a point, as the batch does.
pub fn verify_one(
    message: &[u8],
    signature: &Signature,
    key: &VerifyingKey,
) -> Result<(), BatchError> {
    let s: Scalar = Option::from(Scalar::from_canonical_bytes(*signature.s_bytes()))
        .ok_or(BatchError::ScalarFormat)?;
    let r = CompressedEdwardsY(*signature.r_bytes())
        .decompress()
        .ok_or(BatchError::Verify)?;
    let hram: [u8; 64] = Sha512::new()
        .chain_update(signature.r_bytes())
        .chain_update(key.as_bytes())
        .chain_update(message)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&hram);
    // [s]B − [k]A − R, times 8, is the identity.
    let difference =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &s) - r;
    if difference.is_small_order() {
        Ok(())
    } else {
        Err(BatchError::Verify)
    }
}

/// The zᵢ: 128 bits each, drawn from a SHA-512 digest of the whole batch (every hᵢ, which
/// covers Rᵢ, Aᵢ and Mᵢ, then every sᵢ), so they depend on every signature and an adversary
/// cannot choose signatures for known weights. ed25519-dalek draws them from a merlin
/// transcript of the same inputs, one squeeze per signature, which cost a twentieth of the
/// РЦОИ's ingest; here one SHA-512 block gives four.
fn weights(hrams: &[[u8; 64]], signatures: &[Signature]) -> Vec<Scalar> {
    let mut seed = Sha512::new();
    seed.update(WEIGHTS_DOMAIN);
    seed.update((signatures.len() as u64).to_le_bytes());
    for hram in hrams {
        seed.update(hram);
    }
    for signature in signatures {
        seed.update(signature.s_bytes());
    }
    let seed = seed.finalize();
    let mut zs = Vec::with_capacity(signatures.len());
    for block in 0u64.. {
        if zs.len() >= signatures.len() {
            break;
        }
        let bytes = Sha512::new()
            .chain_update(seed)
            .chain_update(block.to_le_bytes())
            .finalize();
        for z in bytes.chunks_exact(16).take(signatures.len() - zs.len()) {
            let mut z16 = [0u8; 16];
            z16.copy_from_slice(z);
            zs.push(Scalar::from(u128::from_le_bytes(z16)));
        }
    }
    zs
}

/// What the weights' digest starts with, so it is never a digest made for anything else.
const WEIGHTS_DOMAIN: &[u8] = b"giasync ed25519 batch weights v1";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    use super::*;

    fn signer(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    /// `n` messages signed by `keys` signers in turn.
    fn batch(n: usize, keys: u8) -> (Vec<Vec<u8>>, Vec<Signature>, Vec<VerifyingKey>) {
        let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("лист {i}").into_bytes()).collect();
        let signers: Vec<SigningKey> = (0..keys).map(|k| signer(k + 1)).collect();
        let signatures = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % signers.len()].sign(m))
            .collect();
        let verifying = (0..n)
            .map(|i| signers[i % signers.len()].verifying_key())
            .collect();
        (messages, signatures, verifying)
    }

    /// Both verifiers' verdicts on the same batch: (ours, ed25519-dalek's).
    fn both(messages: &[Vec<u8>], signatures: &[Signature], keys: &[VerifyingKey]) -> (bool, bool) {
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        (
            verify_batch(&messages, signatures, keys).is_ok(),
            ed25519_dalek::verify_batch(&messages, signatures, keys).is_ok(),
        )
    }

    #[test]
    fn a_batch_of_few_keys_verifies_and_a_swapped_pair_of_one_key_does_not() {
        let (messages, mut signatures, keys) = batch(60, 3);
        assert_eq!(both(&messages, &signatures, &keys), (true, true));
        // Two signatures of the same key swapped between their messages: each key's terms are
        // added up, and that must not let the two errors cancel.
        signatures.swap(0, 3);
        assert_eq!(both(&messages, &signatures, &keys), (false, false));
    }

    #[test]
    fn each_kind_of_damage_fails_as_ed25519_dalek_fails_it() {
        let (messages, signatures, keys) = batch(40, 4);
        // A message changed.
        let mut m = messages.clone();
        m[7].push(b'!');
        assert_eq!(both(&m, &signatures, &keys), (false, false));
        // Another key named for one signature.
        let mut k = keys.clone();
        k[9] = signer(99).verifying_key();
        assert_eq!(both(&messages, &signatures, &k), (false, false));
        // An s that is not canonical (its top bits set, so at least the group order).
        let mut s = signatures.clone();
        let mut bytes = s[11].to_bytes();
        bytes[63] |= 0xf0;
        s[11] = Signature::from_bytes(&bytes);
        assert_eq!(
            verify_batch(
                &messages.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                &s,
                &keys
            ),
            Err(BatchError::ScalarFormat)
        );
        assert_eq!(both(&messages, &s, &keys), (false, false));
        // An R that is not a point: y = 2 has no x on the curve.
        let mut r = signatures.clone();
        let mut bytes = r[5].to_bytes();
        bytes[..32].copy_from_slice(&{
            let mut y = [0u8; 32];
            y[0] = 2;
            y
        });
        r[5] = Signature::from_bytes(&bytes);
        assert_eq!(both(&messages, &r, &keys), (false, false));
        assert_eq!(
            verify_batch(
                &messages.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                &r,
                &keys
            ),
            Err(BatchError::Verify)
        );
        // Lengths that differ.
        assert!(matches!(
            verify_batch(&[b"x".as_slice()], &signatures[..2], &keys[..2]),
            Err(BatchError::Lengths { messages: 1, .. })
        ));
        // An empty batch holds nothing false.
        assert_eq!(both(&[], &[], &[]), (true, true));
    }

    /// A signature whose R has a small-order component added (made with the key: the nonce's
    /// point plus a point of order 2, s computed for that R) gets one verdict, good, alone and
    /// in every batch, where ed25519-dalek's cofactorless `verify` refuses it; an ordinary
    /// signature is good and a damaged one bad alone as in ed25519-dalek's.
    #[test]
    fn a_signature_gets_the_same_verdict_alone_and_in_any_batch() {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
        use ed25519_dalek::Verifier as _;
        let key = signer(5);
        let message = b"lone sheet".as_slice();
        let nonce = Scalar::from(123_456_789_u64);
        let r = (&nonce * ED25519_BASEPOINT_TABLE) + EIGHT_TORSION[4];
        assert!(!r.is_torsion_free());
        let r_bytes = r.compress().to_bytes();
        let hram: [u8; 64] = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key.verifying_key().as_bytes())
            .chain_update(message)
            .finalize()
            .into();
        let s = nonce + Scalar::from_bytes_mod_order_wide(&hram) * key.to_scalar();
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r_bytes);
        bytes[32..].copy_from_slice(s.as_bytes());
        let odd = Signature::from_bytes(&bytes);
        let public = key.verifying_key();
        assert!(
            public.verify(message, &odd).is_err(),
            "cofactorless: refused"
        );
        assert_eq!(verify_one(message, &odd, &public), Ok(()));
        // In batches of every size and company (so of many different weights): good.
        let (messages, signatures, keys) = batch(24, 3);
        for n in 0..=24 {
            let mut m: Vec<&[u8]> = messages[..n].iter().map(Vec::as_slice).collect();
            let (mut sig, mut k) = (signatures[..n].to_vec(), keys[..n].to_vec());
            m.push(message);
            sig.push(odd);
            k.push(public);
            assert_eq!(verify_batch(&m, &sig, &k), Ok(()), "with {n} others");
        }
        // Ordinary and damaged signatures alone: as ed25519-dalek's `verify`.
        for (i, (m, sig)) in messages.iter().zip(&signatures).enumerate() {
            assert_eq!(verify_one(m, sig, &keys[i]), Ok(()));
            let mut changed = m.clone();
            changed.push(b'!');
            assert!(verify_one(&changed, sig, &keys[i]).is_err());
            assert!(keys[i].verify(&changed, sig).is_err());
        }
    }

    #[test]
    fn a_key_with_a_small_order_component_is_weak_and_an_ordinary_one_is_not() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let ordinary = signer(3).verifying_key();
        assert!(!weak(&ordinary));
        for (t, torsion) in EIGHT_TORSION.iter().enumerate().skip(1) {
            let shifted = ordinary.to_edwards() + torsion;
            let key = VerifyingKey::from_bytes(shifted.compress().as_bytes()).unwrap();
            assert!(weak(&key), "component of order dividing 8, index {t}");
            let small = VerifyingKey::from_bytes(torsion.compress().as_bytes()).unwrap();
            assert!(weak(&small), "small-order, index {t}");
        }
    }

    #[test]
    fn the_weights_are_one_per_signature_and_follow_every_input() {
        let (messages, signatures, keys) = batch(9, 2);
        let hrams = |signatures: &[Signature]| -> Vec<[u8; 64]> {
            signatures
                .iter()
                .zip(&keys)
                .zip(&messages)
                .map(|((s, k), m)| {
                    Sha512::new()
                        .chain_update(s.r_bytes())
                        .chain_update(k.as_bytes())
                        .chain_update(m)
                        .finalize()
                        .into()
                })
                .collect()
        };
        let zs = weights(&hrams(&signatures), &signatures);
        assert_eq!(zs.len(), 9, "two blocks of four and a third for the ninth");
        assert_eq!(
            zs,
            weights(&hrams(&signatures), &signatures),
            "the same again"
        );
        let distinct: std::collections::HashSet<[u8; 32]> =
            zs.iter().map(Scalar::to_bytes).collect();
        assert_eq!(distinct.len(), 9);
        // Each below 2^128: the upper half of every scalar is zero.
        assert!(zs.iter().all(|z| z.to_bytes()[16..] == [0; 16]));
        // One signature changed changes every weight.
        let mut other = signatures.clone();
        other[8] = signer(77).sign(&messages[8]);
        let changed = weights(&hrams(&other), &other);
        assert!(zs.iter().zip(&changed).all(|(a, b)| a != b));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any batch of up to 40 signatures by up to 5 keys, some damaged in any of three ways,
        /// gets the same verdict from both.
        #[test]
        fn the_verdict_is_ed25519_dalek_s(
            n in 1usize..40,
            keys in 1u8..6,
            damage in proptest::collection::vec((0usize..40, 0u8..3), 0..3),
        ) {
            let (mut messages, mut signatures, mut verifying) = batch(n, keys);
            for (at, how) in damage {
                let i = at % n;
                match how {
                    0 => messages[i].push(b'!'),
                    1 => verifying[i] = signer(200).verifying_key(),
                    _ => signatures[i] = signer(201).sign(&messages[i]),
                }
            }
            let (ours, theirs) = both(&messages, &signatures, &verifying);
            prop_assert_eq!(ours, theirs);
        }
    }
}
