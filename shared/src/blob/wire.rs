//! The frames of a connection's blob stream (version 1), beside the documents' stream.
//!
//! Every frame: version byte, type byte, body; integers big-endian. A node asks for pieces of a
//! blob it wants ([`BlobFrame::Want`]); the peer answers each with the piece, encoded with the
//! hashes that prove it ([`BlobFrame::Piece`]), or says it cannot give the blob
//! ([`BlobFrame::NotHeld`]) and later, once it holds it, that it can ([`BlobFrame::Have`]).

use super::{BlobHash, BlobRef, PIECE_BYTES};

/// The blob stream's wire version.
pub const BLOB_WIRE_VERSION: u8 = 1;
/// The most pieces one want may ask for.
pub const WANT_PIECES_MAX: usize = 64;
/// The largest encoded piece: its bytes and the hashes down a tree of the largest blob.
pub const PIECE_FRAME_BYTES_MAX: usize = PIECE_BYTES as usize + 64 * 64;
/// The largest blob frame on the wire.
pub const BLOB_FRAME_BYTES_MAX: usize = PIECE_FRAME_BYTES_MAX + 64;

const TYPE_WANT: u8 = 1;
const TYPE_PIECE: u8 = 2;
const TYPE_NOT_HELD: u8 = 3;
const TYPE_HAVE: u8 = 4;

/// One frame of the blob stream.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobFrame {
    /// Send these pieces of this blob.
    Want { blob: BlobRef, pieces: Vec<u32> },
    /// A piece, encoded by [`super::encode_piece`].
    Piece {
        hash: BlobHash,
        index: u32,
        encoded: Vec<u8>,
    },
    /// The blob is not held here whole, or not for this peer.
    NotHeld { hash: BlobHash },
    /// The blob asked for earlier is now held whole.
    Have { blob: BlobRef },
}

impl std::fmt::Debug for BlobFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Want { blob, pieces } => write!(f, "Want({}, {pieces:?})", blob.hash),
            Self::Piece {
                hash,
                index,
                encoded,
            } => write!(f, "Piece({hash}, {index}, {} bytes)", encoded.len()),
            Self::NotHeld { hash } => write!(f, "NotHeld({hash})"),
            Self::Have { blob } => write!(f, "Have({})", blob.hash),
        }
    }
}

/// A blob frame that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed blob frame at byte {at}: {reason}")]
pub struct BlobWireError {
    pub at: usize,
    pub reason: &'static str,
}

impl BlobFrame {
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![BLOB_WIRE_VERSION];
        match self {
            Self::Want { blob, pieces } => {
                out.push(TYPE_WANT);
                put_blob(&mut out, blob);
                let count = pieces.len().min(WANT_PIECES_MAX);
                out.extend_from_slice(&u32::try_from(count).unwrap_or(0).to_be_bytes());
                for p in pieces.iter().take(count) {
                    out.extend_from_slice(&p.to_be_bytes());
                }
            }
            Self::Piece {
                hash,
                index,
                encoded,
            } => {
                out.push(TYPE_PIECE);
                out.extend_from_slice(&hash.0);
                out.extend_from_slice(&index.to_be_bytes());
                let len = u32::try_from(encoded.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(encoded);
            }
            Self::NotHeld { hash } => {
                out.push(TYPE_NOT_HELD);
                out.extend_from_slice(&hash.0);
            }
            Self::Have { blob } => {
                out.push(TYPE_HAVE);
                put_blob(&mut out, blob);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, BlobWireError> {
        let mut r = Reader { bytes, at: 0 };
        if r.u8()? != BLOB_WIRE_VERSION {
            return Err(r.error("unsupported blob wire version"));
        }
        let frame = match r.u8()? {
            TYPE_WANT => {
                let blob = r.blob()?;
                let count = r.u32()? as usize;
                if count == 0 || count > WANT_PIECES_MAX {
                    return Err(r.error("piece count out of range"));
                }
                let mut pieces = Vec::with_capacity(count);
                for _ in 0..count {
                    let index = r.u32()?;
                    if index >= blob.pieces() {
                        return Err(r.error("piece past the blob's end"));
                    }
                    pieces.push(index);
                }
                Self::Want { blob, pieces }
            }
            TYPE_PIECE => {
                let hash = BlobHash(r.array()?);
                let index = r.u32()?;
                let len = r.u32()? as usize;
                if len > PIECE_FRAME_BYTES_MAX {
                    return Err(r.error("piece too long"));
                }
                Self::Piece {
                    hash,
                    index,
                    encoded: r.take(len)?.to_vec(),
                }
            }
            TYPE_NOT_HELD => Self::NotHeld {
                hash: BlobHash(r.array()?),
            },
            TYPE_HAVE => Self::Have { blob: r.blob()? },
            _ => return Err(r.error("unknown blob frame type")),
        };
        if r.at != bytes.len() {
            return Err(r.error("bytes after the frame"));
        }
        Ok(frame)
    }
}

fn put_blob(out: &mut Vec<u8>, blob: &BlobRef) {
    out.extend_from_slice(&blob.hash.0);
    out.extend_from_slice(&blob.bytes.to_be_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> BlobWireError {
        BlobWireError {
            at: self.at,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BlobWireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.error("frame ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlobWireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, BlobWireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, BlobWireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn blob(&mut self) -> Result<BlobRef, BlobWireError> {
        let hash = BlobHash(self.array()?);
        let bytes = u64::from_be_bytes(self.array()?);
        BlobRef::new(hash, bytes).map_err(|_| self.error("blob size out of range"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;

    fn blob() -> BlobRef {
        BlobRef::new(BlobHash([7; 32]), 3 * PIECE_BYTES + 1).unwrap()
    }

    #[test]
    fn every_frame_decodes_to_itself() {
        let frames = [
            BlobFrame::Want {
                blob: blob(),
                pieces: vec![0, 3],
            },
            BlobFrame::Piece {
                hash: blob().hash,
                index: 2,
                encoded: vec![1, 2, 3],
            },
            BlobFrame::NotHeld { hash: blob().hash },
            BlobFrame::Have { blob: blob() },
        ];
        for frame in frames {
            assert_eq!(BlobFrame::decode(&frame.encode()).unwrap(), frame);
        }
    }

    #[test]
    fn a_want_past_the_blob_or_of_no_pieces_and_trailing_bytes_are_refused() {
        let past = BlobFrame::Want {
            blob: blob(),
            pieces: vec![4],
        };
        assert!(BlobFrame::decode(&past.encode()).is_err());
        let none = BlobFrame::Want {
            blob: blob(),
            pieces: vec![],
        };
        assert!(BlobFrame::decode(&none.encode()).is_err());
        let mut trailing = BlobFrame::NotHeld { hash: blob().hash }.encode();
        trailing.push(0);
        assert!(BlobFrame::decode(&trailing).is_err());
        let mut empty_blob = BlobFrame::Have { blob: blob() }.encode();
        let n = empty_blob.len();
        empty_blob[n - 8..].fill(0);
        assert!(BlobFrame::decode(&empty_blob).is_err(), "a blob of 0 bytes");
    }
}
