//! A bundle: a school's recordings (and, if asked, its documents) on removable media, for a
//! school with no link at all (seed 000 §4.5, §5.4: materials go to the РЦОИ). A folder:
//!
//! | file | what |
//! |---|---|
//! | `manifest` | text: `giasync bundle 1`, `node URI`, `made MS`, then `blob HASH BYTES` and `doc N DOCID SHA256 BYTES` lines |
//! | `manifest.sig` | ed25519 signature by the node's key over [`crate::sync::BUNDLE_SIGNATURE_LABEL`] and the manifest |
//! | `node.crt` | the node's certificate (DER) |
//! | `blobs/HASH` | each recording's bytes |
//! | `docs/N` | each document as one sync frame (`crate::sync::Engine::bundle_frame`) |
//!
//! A hub reads nothing of it before the signature, the certificate (the region's CA, not
//! revoked) and every file's hash and length are checked; then documents are judged like frames
//! received from that node, and recordings taken in like any file.

use std::fmt::Write as _;

use crate::blob::{BlobHash, BlobRef};
use crate::identity::NodeIdentity;
use crate::sync::DocId;

pub const MANIFEST_FILE: &str = "manifest";
pub const SIGNATURE_FILE: &str = "manifest.sig";
pub const CERT_FILE: &str = "node.crt";
pub const BLOBS_DIR: &str = "blobs";
pub const DOCS_DIR: &str = "docs";
const HEADER: &str = "giasync bundle 1";
/// The most entries a manifest may list.
pub const ENTRIES_MAX: usize = 1_000_000;
/// The largest manifest read (a million entries of about 100 bytes); a larger file is refused
/// before it is read.
pub const MANIFEST_BYTES_MAX: u64 = 128 * 1024 * 1024;

/// What a bundle holds, as its manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub node: NodeIdentity,
    pub made_ms: i64,
    pub blobs: Vec<BlobRef>,
    /// (file number under `docs/`, document, SHA-256 of the file, its length).
    pub docs: Vec<(usize, DocId, [u8; 32], u64)>,
}

/// A bundle that is refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the bundle is refused: {0}")]
pub struct BundleError(pub String);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Manifest {
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{HEADER}\nnode {}\nmade {}\n",
            self.node.to_uri(),
            self.made_ms
        );
        for b in &self.blobs {
            let _ = writeln!(out, "blob {} {}", b.hash, b.bytes);
        }
        for (n, doc, sha, len) in &self.docs {
            let _ = writeln!(out, "doc {n} {doc} {} {len}", hex(sha));
        }
        out
    }

    /// Reads a manifest; any line out of form refuses the whole.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let bad = |line: usize, why: &str| BundleError(format!("manifest line {line}: {why}"));
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        if lines.next().map(|(_, l)| l) != Some(HEADER) {
            return Err(bad(1, "not a giasync bundle of version 1"));
        }
        let (mut node, mut made_ms) = (None, None);
        let (mut blobs, mut docs) = (Vec::new(), Vec::new());
        for (n, line) in lines {
            if blobs.len() + docs.len() > ENTRIES_MAX {
                return Err(bad(n, "too many entries"));
            }
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["node", uri] => {
                    match crate::identity::Identity::parse_uri(uri)
                        .map_err(|e| bad(n, &e.to_string()))?
                    {
                        crate::identity::Identity::Node(id) => node = Some(id),
                        crate::identity::Identity::Person(_) => {
                            return Err(bad(n, "a person, not a node"));
                        }
                    }
                }
                ["made", ms] => made_ms = Some(ms.parse().map_err(|_| bad(n, "not a time"))?),
                ["blob", hash, bytes] => {
                    let hash: BlobHash = hash.parse().map_err(|_| bad(n, "not a blob hash"))?;
                    let bytes = bytes.parse().map_err(|_| bad(n, "not a length"))?;
                    blobs.push(BlobRef::new(hash, bytes).map_err(|e| bad(n, &e.to_string()))?);
                }
                ["doc", number, doc, sha, len] => {
                    let number = number.parse().map_err(|_| bad(n, "not a file number"))?;
                    let doc: DocId = doc.parse().map_err(|_| bad(n, "not a document id"))?;
                    let sha = unhex(sha).ok_or_else(|| bad(n, "not a SHA-256"))?;
                    let len = len.parse().map_err(|_| bad(n, "not a length"))?;
                    docs.push((number, doc, sha, len));
                }
                _ => return Err(bad(n, "not a line of a manifest")),
            }
        }
        Ok(Self {
            node: node.ok_or_else(|| BundleError("the manifest names no node".into()))?,
            made_ms: made_ms.ok_or_else(|| BundleError("the manifest has no time".into()))?,
            blobs,
            docs,
        })
    }
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Checks the manifest's signature by `key` (the node's, from its certificate).
pub fn verify_signature(
    manifest: &[u8],
    signature: &[u8],
    key: &[u8; 32],
) -> Result<(), BundleError> {
    let refused = |why: &str| BundleError(format!("the manifest's signature: {why}"));
    let key = ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| refused("not a key"))?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| refused("not 64 bytes"))?;
    let mut signed = crate::sync::BUNDLE_SIGNATURE_LABEL.to_vec();
    signed.extend_from_slice(manifest);
    key.verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&signature))
        .map_err(|_| refused("does not verify"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;
    use crate::codes::{MunicipalityCode, NodeRole, OrgCode, RegionCode};

    fn manifest() -> Manifest {
        Manifest {
            node: NodeIdentity::new(
                RegionCode::new("42").unwrap(),
                OrgCode::parse(NodeRole::School, "420101").unwrap(),
                Some(MunicipalityCode::new("4201").unwrap()),
            )
            .unwrap(),
            made_ms: 1_707_900_000_000,
            blobs: vec![BlobRef::new(BlobHash([3; 32]), 12_345).unwrap()],
            docs: vec![(
                0,
                "protocol/4201/420101/is-2024-02-14".parse().unwrap(),
                [7; 32],
                999,
            )],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written_and_a_bad_line_refuses_it() {
        let m = manifest();
        assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
        let bad = m.to_text().replace("blob ", "blob x");
        assert!(Manifest::parse(&bad).unwrap_err().0.contains("line 4"));
        assert!(Manifest::parse("hello\n").is_err());
    }

    #[test]
    fn the_signature_covers_every_byte_of_the_manifest() {
        use ed25519_dalek::Signer as _;
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let text = manifest().to_text();
        let mut signed = crate::sync::BUNDLE_SIGNATURE_LABEL.to_vec();
        signed.extend_from_slice(text.as_bytes());
        let sig = key.sign(&signed).to_bytes();
        let public = key.verifying_key().to_bytes();
        assert!(verify_signature(text.as_bytes(), &sig, &public).is_ok());
        let changed = text.replace("12345", "12346");
        assert!(verify_signature(changed.as_bytes(), &sig, &public).is_err());
        let other = ed25519_dalek::SigningKey::from_bytes(&[6; 32])
            .verifying_key()
            .to_bytes();
        assert!(verify_signature(text.as_bytes(), &sig, &other).is_err());
    }
}
