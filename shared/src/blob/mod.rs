//! Blobs: recordings and other files too large for a document, named by their content.
//!
//! A blob is named by its BLAKE3 hash, the root of a bao tree over the bytes (groups of
//! [`GROUP_BYTES`]). It moves in pieces of [`PIECE_BYTES`]; a piece travels with the hashes from
//! the root down to it, so the receiver checks every piece against the blob's name as it
//! arrives, keeps it or refuses it alone, and can ask again for any piece it lacks: resuming
//! after a break and refusing a bad piece need nothing but the name and the size.
//!
//! The sender keeps an *outboard* beside the bytes: the tree's hash pairs in post order
//! ([`outboard`]), 64 bytes for every [`GROUP_BYTES`] (0.4 %). The receiver needs none to check
//! a piece, and computes one once the blob is whole, to serve it in turn.
//!
//! No IO of its own: the functions read and write what they are given (files at a node, memory
//! in the simulator and the tests).

pub mod transfer;
pub mod wire;

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use bao_tree::io::outboard::PostOrderOutboard;
use bao_tree::io::sync::{
    DecodeResponseIter, ReadAt, encode_ranges_validated, outboard_post_order,
};
use bao_tree::io::{BaoContentItem, Leaf};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

/// The bao tree's chunk groups: 16 chunks of 1 KiB (iroh-blobs' choice). Smaller groups make a
/// larger outboard; larger ones make the smallest verifiable unit larger.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);
/// The bytes of one chunk group.
pub const GROUP_BYTES: u64 = 16 * 1024;
/// What moves, is checked and is stored as one: a break loses at most the piece in flight, and
/// a piece is small enough to check in memory before a byte of it is written.
pub const PIECE_BYTES: u64 = 256 * 1024;
/// The largest blob: a day-long room stream in uncompressed stereo WAV at 44.1 kHz is ~5 GB.
pub const BLOB_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;
/// The most pieces a blob has.
pub const PIECES_MAX: u32 = (BLOB_BYTES_MAX / PIECE_BYTES) as u32;
const CHUNK_BYTES: u64 = 1024;

/// A blob's name: the BLAKE3 (bao) root hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobHash(pub [u8; 32]);

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

/// As its hex digits, the way documents and file names spell it.
impl serde::Serialize for BlobHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BlobHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Text that is not a blob's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a blob hash (64 hexadecimal digits)")]
pub struct BadBlobHash(pub String);

impl FromStr for BlobHash {
    type Err = BadBlobHash;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadBlobHash(text.chars().take(80).collect());
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

/// A blob by name and size: all a node needs to fetch and check it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct BlobRef {
    pub hash: BlobHash,
    pub bytes: u64,
}

/// What is wrong with a blob or a piece of one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    #[error("a blob of {bytes} bytes: blobs hold 1 to {BLOB_BYTES_MAX} bytes")]
    Size { bytes: u64 },
    #[error("piece {index} of a blob of {pieces} pieces")]
    NoSuchPiece { index: u32, pieces: u32 },
    #[error("piece {index} does not match the blob's hash: {reason}")]
    Mismatch { index: u32, reason: String },
    #[error("reading the blob: {0}")]
    Io(#[from] std::io::Error),
}

impl BlobRef {
    /// A blob of `bytes`, refused when empty or larger than [`BLOB_BYTES_MAX`].
    pub fn new(hash: BlobHash, bytes: u64) -> Result<Self, BlobError> {
        if bytes == 0 || bytes > BLOB_BYTES_MAX {
            return Err(BlobError::Size { bytes });
        }
        Ok(Self { hash, bytes })
    }

    /// How many pieces the blob moves in.
    #[must_use]
    pub fn pieces(&self) -> u32 {
        u32::try_from(self.bytes.div_ceil(PIECE_BYTES)).unwrap_or(u32::MAX)
    }

    /// Where piece `index` starts and how long it is.
    pub fn piece(&self, index: u32) -> Result<(u64, usize), BlobError> {
        let pieces = self.pieces();
        if index >= pieces {
            return Err(BlobError::NoSuchPiece { index, pieces });
        }
        let start = u64::from(index) * PIECE_BYTES;
        let len = (self.bytes - start).min(PIECE_BYTES);
        Ok((start, usize::try_from(len).unwrap_or(usize::MAX)))
    }

    fn tree(&self) -> BaoTree {
        BaoTree::new(self.bytes, BLOCK_SIZE)
    }

    fn ranges(&self, index: u32) -> Result<ChunkRanges, BlobError> {
        let (start, len) = self.piece(index)?;
        let first = ChunkNum(start / CHUNK_BYTES);
        let end = ChunkNum((start + len as u64).div_ceil(CHUNK_BYTES));
        Ok(ChunkRanges::from(first..end))
    }

    /// The bytes of the outboard for a blob of this size.
    #[must_use]
    pub fn outboard_bytes(&self) -> u64 {
        self.tree().outboard_size()
    }
}

/// Reads `bytes` bytes from `data`, writes the blob's outboard (hash pairs in post order) to
/// `out`, and gives back the blob's name.
pub fn outboard(data: impl Read, bytes: u64, out: impl Write) -> Result<BlobRef, BlobError> {
    if bytes == 0 || bytes > BLOB_BYTES_MAX {
        return Err(BlobError::Size { bytes });
    }
    let root = outboard_post_order(data, BaoTree::new(bytes, BLOCK_SIZE), out)?;
    BlobRef::new(BlobHash(*root.as_bytes()), bytes)
}

/// Piece `index` of a held blob, encoded for the wire: the hashes from the root down to the
/// piece, then its bytes. The bytes are checked against the outboard as they are read, so a
/// blob damaged on this node's disk is not passed on.
pub fn encode_piece(
    blob: BlobRef,
    data: impl ReadAt,
    outboard: impl ReadAt,
    index: u32,
) -> Result<Vec<u8>, BlobError> {
    let ranges = blob.ranges(index)?;
    let outboard = PostOrderOutboard {
        root: bao_tree::blake3::Hash::from_bytes(blob.hash.0),
        tree: blob.tree(),
        data: outboard,
    };
    let mut out = Vec::with_capacity(PIECE_BYTES as usize + 2048);
    encode_ranges_validated(data, outboard, &ranges, &mut out).map_err(|e| {
        BlobError::Mismatch {
            index,
            reason: format!("the copy held here: {e}"),
        }
    })?;
    Ok(out)
}

/// A piece checked against its blob's name: its bytes, and the hash pairs that proved them, each
/// with its place in the blob's outboard. A receiver that writes every piece's pairs at their
/// places has the blob's outboard once it has every piece, without hashing the blob again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Vec<u8>,
    /// (byte offset in the outboard, left and right hash).
    pub hashes: Vec<(u64, [u8; 64])>,
}

/// Checks an encoded piece against the blob's name and gives back the piece's bytes, or why it
/// is refused (a changed byte, a hash that does not lead to the root, too few or too many bytes).
pub fn verify_piece(blob: BlobRef, index: u32, encoded: &[u8]) -> Result<Vec<u8>, BlobError> {
    Ok(verify_piece_with_hashes(blob, index, encoded)?.bytes)
}

/// [`verify_piece`], with the hash pairs that proved the piece.
pub fn verify_piece_with_hashes(
    blob: BlobRef,
    index: u32,
    encoded: &[u8],
) -> Result<Piece, BlobError> {
    let (start, len) = blob.piece(index)?;
    let ranges = blob.ranges(index)?;
    let mut reader = encoded;
    let root = bao_tree::blake3::Hash::from_bytes(blob.hash.0);
    let mut piece = Vec::with_capacity(len);
    let mut hashes = Vec::new();
    let tree = blob.tree();
    let mismatch = |reason: String| BlobError::Mismatch { index, reason };
    for item in DecodeResponseIter::new(root, tree, &mut reader, &ranges) {
        match item.map_err(|e| mismatch(e.to_string()))? {
            BaoContentItem::Parent(parent) => {
                if let Some(offset) = tree.post_order_offset(parent.node) {
                    let mut pair = [0u8; 64];
                    pair[..32].copy_from_slice(parent.pair.0.as_bytes());
                    pair[32..].copy_from_slice(parent.pair.1.as_bytes());
                    hashes.push((offset.value() * 64, pair));
                }
            }
            BaoContentItem::Leaf(Leaf { offset, data }) => {
                if offset != start + piece.len() as u64 {
                    return Err(mismatch(format!("bytes at {offset} out of order")));
                }
                piece.extend_from_slice(&data);
            }
        }
    }
    if !reader.is_empty() {
        return Err(mismatch(format!("{} bytes past the piece", reader.len())));
    }
    if piece.len() != len {
        return Err(mismatch(format!("{} bytes of {len}", piece.len())));
    }
    Ok(Piece {
        bytes: piece,
        hashes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn a_hash_travels_as_its_hex_digits_and_nothing_else_reads_as_one() {
        let hash = BlobHash([0xab; 32]);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<BlobHash>(&json).unwrap(), hash);
        for bad in ["\"ab\"", "\"zz\"", "12", "null"] {
            assert!(serde_json::from_str::<BlobHash>(bad).is_err(), "{bad}");
        }
    }

    /// Bytes that differ from piece to piece, so a piece put in another's place is noticed.
    fn bytes(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 7 + i / 1000) % 251).unwrap())
            .collect()
    }

    fn held(data: &[u8]) -> (BlobRef, Vec<u8>) {
        let mut ob = Vec::new();
        let blob = outboard(data, data.len() as u64, &mut ob).unwrap();
        (blob, ob)
    }

    #[test]
    fn every_piece_of_a_blob_verifies_and_together_they_are_the_blob() {
        // Three whole pieces and a short one, not a multiple of a group or a chunk.
        let data = bytes(3 * PIECE_BYTES as usize + 20_001);
        let (blob, ob) = held(&data);
        assert_eq!(blob.pieces(), 4);
        assert_eq!(blob.outboard_bytes(), ob.len() as u64);
        // The name is BLAKE3 of the bytes: bao's root is the plain BLAKE3 hash.
        assert_eq!(
            blob.hash.0,
            *bao_tree::blake3::hash(&data).as_bytes(),
            "the name is not BLAKE3 of the bytes"
        );
        let mut whole = Vec::new();
        // The pairs that proved the pieces, each written at its place, are the outboard bao
        // computes from the whole blob.
        let mut rebuilt = vec![0u8; ob.len()];
        for index in 0..blob.pieces() {
            let encoded = encode_piece(blob, &data[..], &ob[..], index).unwrap();
            let piece = verify_piece_with_hashes(blob, index, &encoded).unwrap();
            for (at, pair) in &piece.hashes {
                let at = usize::try_from(*at).unwrap();
                rebuilt[at..at + 64].copy_from_slice(pair);
            }
            whole.extend(piece.bytes);
        }
        assert_eq!(whole, data);
        assert_eq!(rebuilt, ob, "the outboard made of the pieces' hashes");
    }

    #[test]
    fn a_blob_smaller_than_a_group_is_one_piece_with_no_outboard() {
        let data = bytes(1000);
        let (blob, ob) = held(&data);
        assert_eq!((blob.pieces(), ob.len()), (1, 0));
        let encoded = encode_piece(blob, &data[..], &ob[..], 0).unwrap();
        assert_eq!(verify_piece(blob, 0, &encoded).unwrap(), data);
    }

    #[test]
    fn a_changed_byte_anywhere_in_a_piece_is_refused() {
        let data = bytes(2 * PIECE_BYTES as usize + 5);
        let (blob, ob) = held(&data);
        let encoded = encode_piece(blob, &data[..], &ob[..], 1).unwrap();
        // A byte of a hash on the way down, a byte of the data, the last byte.
        for at in [3, 200, encoded.len() / 2, encoded.len() - 1] {
            let mut bad = encoded.clone();
            bad[at] ^= 0x01;
            assert!(
                matches!(
                    verify_piece(blob, 1, &bad),
                    Err(BlobError::Mismatch { index: 1, .. })
                ),
                "a flipped byte at {at} passed"
            );
        }
    }

    #[test]
    fn a_piece_short_long_or_of_another_index_is_refused() {
        let data = bytes(2 * PIECE_BYTES as usize + 5);
        let (blob, ob) = held(&data);
        let encoded = encode_piece(blob, &data[..], &ob[..], 0).unwrap();
        assert!(verify_piece(blob, 0, &encoded[..encoded.len() - 1]).is_err());
        let mut long = encoded.clone();
        long.push(0);
        assert!(verify_piece(blob, 0, &long).is_err());
        assert!(verify_piece(blob, 1, &encoded).is_err(), "piece 0 as 1");
        assert!(matches!(
            verify_piece(blob, 3, &encoded),
            Err(BlobError::NoSuchPiece {
                index: 3,
                pieces: 3
            })
        ));
        // Another blob's piece of the same size does not pass under this name.
        let mut other = data.clone();
        other[0] ^= 0x01;
        let (other_blob, other_ob) = held(&other);
        assert_eq!(other_blob.bytes, blob.bytes);
        let foreign = encode_piece(other_blob, &other[..], &other_ob[..], 0).unwrap();
        assert!(
            verify_piece(blob, 0, &foreign).is_err(),
            "another blob's piece"
        );
    }

    #[test]
    fn a_held_copy_damaged_on_disk_is_not_passed_on() {
        let data = bytes(PIECE_BYTES as usize + 5);
        let (blob, ob) = held(&data);
        let mut damaged = data.clone();
        damaged[10] ^= 0x80;
        assert!(encode_piece(blob, &damaged[..], &ob[..], 0).is_err());
        // The other piece is intact and still served.
        assert!(encode_piece(blob, &damaged[..], &ob[..], 1).is_ok());
    }

    #[test]
    fn a_blob_is_named_in_hex_and_read_back() {
        let (blob, _) = held(b"abc");
        let text = blob.hash.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<BlobHash>().unwrap(), blob.hash);
        assert!("xyz".parse::<BlobHash>().is_err());
        let signed = format!("+{}", &text[1..]);
        assert!(signed.parse::<BlobHash>().is_err(), "a sign is not a digit");
        assert!(text[..63].parse::<BlobHash>().is_err());
        assert!(BlobRef::new(blob.hash, 0).is_err(), "an empty blob");
    }
}
