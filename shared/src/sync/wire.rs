//! The engine's frames on the wire (version 1). See `docs/design.md` for the layout.
//!
//! Every frame starts with the version byte and a type byte. Lengths are big-endian. A frame
//! longer than [`FRAGMENT_BYTES`] travels as fragments, so one large catch-up never holds up the
//! frames of other documents.

use super::DocId;

/// The wire version of frames outside a connection (bundles on removable media), and the one a
/// connection agrees on when both sides speak only it.
pub const WIRE_VERSION: u8 = 1;
/// The wire versions this build speaks, oldest first. A connection agrees on the newest both
/// sides speak when it opens (TLS's ALPN, `node/src/transport.rs`: [`alpn`]), and each of its
/// frames carries that version ([`Frame::encode_as`]); the engine refuses a frame of another.
/// A build that changes the frames adds its version here and keeps speaking the older ones
/// until no node of the region needs them (`docs/operations.md`, the upgrade order).
pub const WIRE_VERSIONS: &[u8] = &[WIRE_VERSION];

/// The ALPN protocol id of wire version `version`: `giasync/1`, …
#[must_use]
pub fn alpn(version: u8) -> Vec<u8> {
    format!("giasync/{version}").into_bytes()
}

/// The wire version an ALPN protocol id names, if it is one of [`alpn`]'s.
#[must_use]
pub fn version_of_alpn(id: &[u8]) -> Option<u8> {
    std::str::from_utf8(id)
        .ok()?
        .strip_prefix("giasync/")?
        .parse()
        .ok()
        .filter(|v| *v > 0)
}

/// The version two sides agree on: the newest both speak.
#[must_use]
pub fn agree(ours: &[u8], theirs: &[u8]) -> Option<u8> {
    ours.iter().copied().filter(|v| theirs.contains(v)).max()
}
/// Frames longer than this are split into fragments.
pub const FRAGMENT_BYTES: usize = 64 * 1024;
/// The largest frame reassembled from fragments.
pub const FRAME_BYTES_MAX: usize = 32 * 1024 * 1024;
/// The most attestations one sync frame may carry.
pub const FRAME_ATTESTATIONS_MAX: usize = 64;
/// The most entries a document list may carry.
pub const DOC_LIST_ENTRIES_MAX: usize = 100_000;

const TYPE_SUMMARY: u8 = 1;
const TYPE_DOC_LIST: u8 = 2;
const TYPE_SYNC: u8 = 3;
const TYPE_FRAGMENT: u8 = 4;
const TYPE_BUCKETS: u8 = 5;
/// The most buckets a digest frame may carry.
pub const BUCKETS_MAX: usize = 4096;

/// The bucket (of `bucket_count`) a document id falls in.
#[must_use]
pub fn bucket_of(doc: &DocId, bucket_count: u16) -> u16 {
    bucket_in(bucket_key(&doc.to_string()), bucket_count)
}

/// What [`bucket_of`] reads of a document id, given as its text: the first two bytes of its
/// SHA-256, kept by an engine for each of its documents.
#[must_use]
pub fn bucket_key(id: &str) -> u16 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]])
}

/// The bucket (of `bucket_count`) of a document id whose [`bucket_key`] is `key`.
#[must_use]
pub fn bucket_in(key: u16, bucket_count: u16) -> u16 {
    key % bucket_count.max(1)
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A digest over the heads of every document both sides may hold.
    Summary { digest: [u8; 32], docs: u32 },
    /// Digests of the shared documents' heads, grouped into `digests.len()` buckets by document
    /// id ([`bucket_of`]): sent when the summaries differ and there are many documents.
    Buckets { digests: Vec<[u8; 8]> },
    /// Each shared document of the listed buckets (all documents when `buckets` is empty) and a
    /// digest of its heads. `bucket_count` is the number of buckets the ids were grouped into.
    DocList {
        bucket_count: u16,
        buckets: Vec<u16>,
        entries: Vec<(DocId, [u8; 8])>,
    },
    /// An automerge sync message for one document, with the attestations (author certificate
    /// and signed heads) that prove who wrote the changes it carries.
    Sync {
        doc: DocId,
        message: Vec<u8>,
        attestations: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Part `index` of `total` of frame `id`.
    Fragment {
        id: u32,
        index: u32,
        total: u32,
        bytes: Vec<u8>,
    },
}

/// A frame that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame at byte {at}: {reason}")]
pub struct WireError {
    pub at: usize,
    pub reason: &'static str,
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

impl Frame {
    /// The frame in [`WIRE_VERSION`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(WIRE_VERSION)
    }

    /// The frame in wire version `version` (the layout is version 1's in every version so far).
    #[must_use]
    pub fn encode_as(&self, version: u8) -> Vec<u8> {
        let mut out = vec![version];
        match self {
            Frame::Summary { digest, docs } => {
                out.push(TYPE_SUMMARY);
                out.extend_from_slice(digest);
                out.extend_from_slice(&docs.to_be_bytes());
            }
            Frame::Buckets { digests } => {
                out.push(TYPE_BUCKETS);
                put_len(&mut out, digests.len());
                for d in digests {
                    out.extend_from_slice(d);
                }
            }
            Frame::DocList {
                bucket_count,
                buckets,
                entries,
            } => {
                out.push(TYPE_DOC_LIST);
                out.extend_from_slice(&bucket_count.to_be_bytes());
                put_len(&mut out, buckets.len());
                for b in buckets {
                    out.extend_from_slice(&b.to_be_bytes());
                }
                put_len(&mut out, entries.len());
                for (doc, digest) in entries {
                    put_str8(&mut out, &doc.to_string());
                    out.extend_from_slice(digest);
                }
            }
            Frame::Sync {
                doc,
                message,
                attestations,
            } => {
                out.push(TYPE_SYNC);
                put_str8(&mut out, &doc.to_string());
                put_len(&mut out, message.len());
                out.extend_from_slice(message);
                out.push(u8::try_from(attestations.len()).unwrap_or(u8::MAX));
                for (cert, attestation) in attestations.iter().take(usize::from(u8::MAX)) {
                    put_len(&mut out, cert.len());
                    out.extend_from_slice(cert);
                    put_len(&mut out, attestation.len());
                    out.extend_from_slice(attestation);
                }
            }
            Frame::Fragment {
                id,
                index,
                total,
                bytes,
            } => {
                out.push(TYPE_FRAGMENT);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&total.to_be_bytes());
                put_len(&mut out, bytes.len());
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// The wire version a frame carries (its first byte).
    #[must_use]
    pub fn version(bytes: &[u8]) -> Option<u8> {
        bytes.first().copied()
    }

    /// Reads a frame in the layout every version so far shares, whatever version byte it
    /// carries (not 0): the caller judges the version ([`Frame::version`]) against the one its
    /// connection agreed, as the engine does, or against [`WIRE_VERSION`] for a bundle.
    pub fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
        let mut r = Reader { bytes, at: 0 };
        if r.u8()? == 0 {
            return Err(r.error("wire version 0"));
        }
        let frame = match r.u8()? {
            TYPE_SUMMARY => Frame::Summary {
                digest: r.array()?,
                docs: u32::from_be_bytes(r.array()?),
            },
            TYPE_BUCKETS => {
                let count = r.len()?;
                if count == 0 || count > BUCKETS_MAX {
                    return Err(r.error("bucket count out of range"));
                }
                let mut digests = Vec::with_capacity(count);
                for _ in 0..count {
                    digests.push(r.array()?);
                }
                Frame::Buckets { digests }
            }
            TYPE_DOC_LIST => {
                let bucket_count = u16::from_be_bytes(r.array()?);
                let listed = r.len()?;
                if listed > BUCKETS_MAX {
                    return Err(r.error("too many buckets"));
                }
                let mut buckets = Vec::with_capacity(listed);
                for _ in 0..listed {
                    let b = u16::from_be_bytes(r.array()?);
                    if b >= bucket_count {
                        return Err(r.error("bucket out of range"));
                    }
                    buckets.push(b);
                }
                let count = r.len()?;
                if count > DOC_LIST_ENTRIES_MAX {
                    return Err(r.error("document list too long"));
                }
                let mut entries = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let doc = r.doc_id()?;
                    entries.push((doc, r.array()?));
                }
                Frame::DocList {
                    bucket_count,
                    buckets,
                    entries,
                }
            }
            TYPE_SYNC => {
                let doc = r.doc_id()?;
                let len = r.len()?;
                let message = r.take(len)?.to_vec();
                let count = usize::from(r.u8()?);
                if count > FRAME_ATTESTATIONS_MAX {
                    return Err(r.error("too many attestations"));
                }
                let mut attestations = Vec::with_capacity(count);
                for _ in 0..count {
                    let cert_len = r.len()?;
                    let cert = r.take(cert_len)?.to_vec();
                    let att_len = r.len()?;
                    attestations.push((cert, r.take(att_len)?.to_vec()));
                }
                Frame::Sync {
                    doc,
                    message,
                    attestations,
                }
            }
            TYPE_FRAGMENT => {
                let id = u32::from_be_bytes(r.array()?);
                let index = u32::from_be_bytes(r.array()?);
                let total = u32::from_be_bytes(r.array()?);
                let len = r.len()?;
                if index >= total || len > FRAGMENT_BYTES {
                    return Err(r.error("fragment out of range"));
                }
                Frame::Fragment {
                    id,
                    index,
                    total,
                    bytes: r.take(len)?.to_vec(),
                }
            }
            _ => return Err(r.error("unknown frame type")),
        };
        if r.at != bytes.len() {
            return Err(r.error("trailing bytes"));
        }
        Ok(frame)
    }

    /// The encoded frame, split into fragment frames when it is longer than [`FRAGMENT_BYTES`];
    /// `Err(length)` when it is longer than [`FRAME_BYTES_MAX`], which no peer reassembles.
    pub fn encode_fragmented(&self, id: u32, version: u8) -> Result<Vec<Vec<u8>>, usize> {
        let bytes = self.encode_as(version);
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(bytes.len());
        }
        if bytes.len() <= FRAGMENT_BYTES {
            return Ok(vec![bytes]);
        }
        let chunks: Vec<&[u8]> = bytes.chunks(FRAGMENT_BYTES).collect();
        let total = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        Ok(chunks
            .into_iter()
            .zip(0u32..)
            .map(|(chunk, index)| {
                Frame::Fragment {
                    id,
                    index,
                    total,
                    bytes: chunk.to_vec(),
                }
                .encode_as(version)
            })
            .collect())
    }
}

fn put_str8(out: &mut Vec<u8>, text: &str) {
    let len = u8::try_from(text.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> WireError {
        WireError {
            at: self.at,
            reason,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.error("ends too early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn len(&mut self) -> Result<usize, WireError> {
        let len =
            usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| self.error("length"))?;
        if len > FRAME_BYTES_MAX {
            return Err(self.error("length over the frame limit"));
        }
        Ok(len)
    }
    fn doc_id(&mut self) -> Result<DocId, WireError> {
        let len = usize::from(self.u8()?);
        let text = std::str::from_utf8(self.take(len)?)
            .map_err(|_| self.error("document id is not UTF-8"))?;
        text.parse().map_err(|_| self.error("invalid document id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_garbage() {
        let doc: DocId = "roster/4201/420101/is-2024-02-14".parse().unwrap();
        let frames = [
            Frame::Summary {
                digest: [7; 32],
                docs: 3,
            },
            Frame::DocList {
                bucket_count: 16,
                buckets: vec![3, 7],
                entries: vec![(doc, [1; 8]), (DocId::Directory, [2; 8])],
            },
            Frame::Buckets {
                digests: vec![[4; 8]; 16],
            },
            Frame::Sync {
                doc,
                message: vec![1, 2, 3],
                attestations: vec![(vec![9; 10], vec![8; 5])],
            },
            Frame::Fragment {
                id: 1,
                index: 0,
                total: 2,
                bytes: vec![5; 100],
            },
        ];
        for frame in frames {
            let bytes = frame.encode();
            assert_eq!(Frame::decode(&bytes).unwrap(), frame);
            assert!(Frame::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Frame::decode(&longer).is_err());
        }
        assert!(Frame::decode(&[0, 1]).is_err());
        assert!(Frame::decode(&[1, 9]).is_err());
    }

    /// A frame carries the version it was made in; the layout is the same in each so far.
    #[test]
    fn a_frame_carries_its_wire_version() {
        let frame = Frame::Summary {
            digest: [4; 32],
            docs: 7,
        };
        let next = frame.encode_as(2);
        assert_eq!(Frame::version(&next), Some(2));
        assert_eq!(Frame::version(&frame.encode()), Some(WIRE_VERSION));
        assert_eq!(Frame::decode(&next).unwrap(), frame);
        for part in frame.encode_fragmented(1, 3).unwrap() {
            assert_eq!(Frame::version(&part), Some(3));
        }
    }

    /// Two sides agree on the newest version both speak, and on none when they share none.
    #[test]
    fn sides_agree_on_the_newest_version_both_speak() {
        assert_eq!(agree(&[1, 2], &[1]), Some(1));
        assert_eq!(agree(&[1], &[1, 2]), Some(1));
        assert_eq!(agree(&[1, 2], &[1, 2]), Some(2));
        assert_eq!(agree(&[2], &[1]), None);
        assert_eq!(alpn(1), b"giasync/1");
        assert_eq!(version_of_alpn(&alpn(12)), Some(12));
        for other in [&b"giasync/0"[..], b"giasync/", b"h3", b"giasync/x"] {
            assert_eq!(version_of_alpn(other), None, "{other:?}");
        }
    }

    #[test]
    fn large_frames_fragment() {
        let doc: DocId = "roster/4201/420101/is-2024-02-14".parse().unwrap();
        let frame = Frame::Sync {
            doc,
            message: vec![3; FRAGMENT_BYTES * 2 + 10],
            attestations: vec![],
        };
        let parts = frame.encode_fragmented(5, WIRE_VERSION).unwrap();
        assert_eq!(parts.len(), 3);
        let mut joined = Vec::new();
        for part in &parts {
            assert!(part.len() <= FRAGMENT_BYTES + 32);
            let Frame::Fragment {
                bytes,
                total: 3,
                id: 5,
                ..
            } = Frame::decode(part).unwrap()
            else {
                panic!()
            };
            joined.extend(bytes);
        }
        assert_eq!(Frame::decode(&joined).unwrap(), frame);
    }
}
