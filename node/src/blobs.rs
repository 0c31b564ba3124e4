//! The node's blob store: recordings' bytes in files beside the redb store, their index in it.
//!
//! | where | what |
//! |---|---|
//! | `STORE.blobs/HASH.data`, `HASH.obao` | a blob held whole, and its outboard (the bao tree's hash pairs) |
//! | `STORE.blobs/partial/HASH.data` | a blob being fetched: its pieces written where they belong |
//! | `STORE.blobs/intake/` | a file being taken in: copied, checked and named, then moved |
//! | table `blobs` | hash → (bytes, held since ms): the blobs held whole; nothing else is visible |
//! | table `blob_pieces` | hash → (bytes, one bit per piece stored) for a blob being fetched |
//!
//! **kill -9 safe.** A piece's bit is committed only after its bytes are synced to the partial
//! file, so a crash loses at most the pieces not yet committed, which are asked for again. A
//! blob becomes visible (a row in `blobs`) only after its file and outboard are synced and moved
//! into place and the folder synced; a crash before that commit leaves a partial blob whose
//! pieces are all marked, finished again at the next start ([`BlobStore::open`]). Files in
//! `intake/` are never referenced and are removed at start. Memory stays flat: files are copied
//! and hashed through a fixed buffer, pieces written one at a time.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use giasync_shared::audio::{self, AudioError, AudioInfo};
use giasync_shared::blob::{self, BlobError, BlobHash, BlobRef};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const BLOBS: TableDefinition<&[u8; 32], (u64, i64)> = TableDefinition::new("blobs");
const PIECES: TableDefinition<&[u8; 32], (u64, &[u8])> = TableDefinition::new("blob_pieces");
/// The blobs held whole in the snapshot `rx` (for `crate::backup`).
pub fn held_in(rx: &redb::ReadTransaction) -> Result<Vec<BlobRef>, BlobStoreError> {
    let Ok(table) = rx.open_table(BLOBS) else {
        // A store that never held a blob has no such table.
        return Ok(Vec::new());
    };
    table
        .iter()
        .map_err(index_err)?
        .map(|row| {
            let (hash, value) = row.map_err(index_err)?;
            Ok(BlobRef {
                hash: BlobHash(*hash.value()),
                bytes: value.value().0,
            })
        })
        .collect()
}

/// The copy buffer.
const COPY_BUFFER_BYTES: usize = 1024 * 1024;

/// What went wrong in the blob store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobStoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the blob index: {0}")]
    Index(String),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{path}: {source}")]
    Audio { path: String, source: AudioError },
    #[error("blob {0} is not held here")]
    NotHeld(BlobHash),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlobStoreError + '_ {
    move |source| BlobStoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn index_err(e: impl std::fmt::Display) -> BlobStoreError {
    BlobStoreError::Index(e.to_string())
}

/// The blob store of a node.
#[derive(Debug, Clone)]
pub struct BlobStore {
    db: Arc<Database>,
    dir: PathBuf,
}

/// What the store held when opened.
#[derive(Debug, Default)]
pub struct Opened {
    pub held: Vec<BlobRef>,
    /// Blobs being fetched, with the pieces stored (bits, as `Transfers::want` takes them).
    pub partial: Vec<(BlobRef, Vec<u64>)>,
}

/// The folder beside a store file where its blobs live.
#[must_use]
pub fn dir_beside(store: &Path) -> PathBuf {
    store.with_extension("blobs")
}

fn sync_dir(dir: &Path) -> Result<(), BlobStoreError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

impl BlobStore {
    /// Opens the store's blob folder and index, finishing blobs a crash left whole but not yet
    /// visible, and clearing what was being taken in.
    pub fn open(
        db: Arc<Database>,
        dir: &Path,
        now_ms: i64,
    ) -> Result<(Self, Opened), BlobStoreError> {
        for sub in [dir.to_path_buf(), dir.join("partial"), dir.join("intake")] {
            std::fs::create_dir_all(&sub).map_err(io_err(&sub))?;
        }
        let intake = dir.join("intake");
        for entry in std::fs::read_dir(&intake)
            .map_err(io_err(&intake))?
            .flatten()
        {
            let _ = std::fs::remove_file(entry.path());
        }
        let tx = db.begin_write().map_err(index_err)?;
        tx.open_table(BLOBS).map_err(index_err)?;
        tx.open_table(PIECES).map_err(index_err)?;
        tx.commit().map_err(index_err)?;
        let store = Self {
            db,
            dir: dir.to_path_buf(),
        };
        let mut opened = Opened::default();
        let rx = store.db.begin_read().map_err(index_err)?;
        for row in rx
            .open_table(BLOBS)
            .map_err(index_err)?
            .iter()
            .map_err(index_err)?
        {
            let (k, v) = row.map_err(index_err)?;
            opened
                .held
                .push(BlobRef::new(BlobHash(*k.value()), v.value().0)?);
        }
        let mut whole = Vec::new();
        for row in rx
            .open_table(PIECES)
            .map_err(index_err)?
            .iter()
            .map_err(index_err)?
        {
            let (k, v) = row.map_err(index_err)?;
            let (bytes, bits) = v.value();
            let blob = BlobRef::new(BlobHash(*k.value()), bytes)?;
            let bits = words(bits);
            if (0..blob.pieces()).all(|i| has(&bits, i)) {
                whole.push(blob);
            } else {
                opened.partial.push((blob, bits));
            }
        }
        drop(rx);
        for blob in whole {
            match store.finish(&blob, now_ms) {
                Ok(()) => opened.held.push(blob),
                Err(e) => {
                    tracing::warn!(blob = %blob.hash, error = %e, "a fetched blob did not finish; fetching it again");
                    store.restart(&blob)?;
                    opened
                        .partial
                        .push((blob, blob::transfer::no_pieces(&blob)));
                }
            }
        }
        Ok((store, opened))
    }

    fn data_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(format!("{hash}.data"))
    }

    fn outboard_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(format!("{hash}.obao"))
    }

    fn partial_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join("partial").join(format!("{hash}.data"))
    }

    /// Whether the blob is held whole.
    pub fn holds(&self, hash: &BlobHash) -> Result<bool, BlobStoreError> {
        let rx = self.db.begin_read().map_err(index_err)?;
        let table = rx.open_table(BLOBS).map_err(index_err)?;
        Ok(table.get(&hash.0).map_err(index_err)?.is_some())
    }

    /// The blob files, for the work done beside the index (taking a file in, playing one).
    #[must_use]
    pub fn files(&self) -> BlobFiles {
        BlobFiles {
            dir: self.dir.clone(),
        }
    }

    /// Takes in a recording file ([`BlobFiles::prepare`], then [`BlobStore::keep`]).
    pub fn intake(
        &self,
        source: &Path,
        now_ms: i64,
    ) -> Result<(BlobRef, AudioInfo), BlobStoreError> {
        let (prepared, info) = self.files().prepare(source)?;
        Ok((self.keep(prepared, now_ms)?, info))
    }

    /// Makes a prepared blob visible: its files moved into place, the folder synced, then its
    /// row committed. A blob already held is kept as it was (the prepared copy is dropped).
    pub fn keep(&self, mut prepared: Prepared, now_ms: i64) -> Result<BlobRef, BlobStoreError> {
        let blob = prepared.blob;
        if self.holds(&blob.hash)? {
            return Ok(blob);
        }
        let (data, ob) = (self.data_path(&blob.hash), self.outboard_path(&blob.hash));
        std::fs::rename(&prepared.data, &data).map_err(io_err(&data))?;
        std::fs::rename(&prepared.outboard, &ob).map_err(io_err(&ob))?;
        prepared.kept = true;
        sync_dir(&self.dir)?;
        let tx = self.db.begin_write().map_err(index_err)?;
        {
            let mut table = tx.open_table(BLOBS).map_err(index_err)?;
            table
                .insert(&blob.hash.0, (blob.bytes, now_ms))
                .map_err(index_err)?;
            tx.open_table(PIECES)
                .map_err(index_err)?
                .remove(&blob.hash.0)
                .map_err(index_err)?;
        }
        tx.commit().map_err(index_err)?;
        Ok(blob)
    }

    /// Writes a checked piece of a blob being fetched (not yet durable: see
    /// [`BlobStore::commit_pieces`]).
    pub fn write_piece(
        &self,
        files: &mut Partials,
        blob: &BlobRef,
        index: u32,
        piece: &blob::Piece,
    ) -> Result<(), BlobStoreError> {
        let (start, _) = blob.piece(index)?;
        let path = self.partial_path(&blob.hash);
        let ob_path = path.with_extension("obao");
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(path)
                .map_err(io_err(path))
        };
        let (file, outboard) = match files.open.entry(blob.hash) {
            std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((open(&path)?, open(&ob_path)?))
            }
        };
        file.write_all_at(&piece.bytes, start)
            .map_err(io_err(&path))?;
        for (at, pair) in &piece.hashes {
            outboard.write_all_at(pair, *at).map_err(io_err(&ob_path))?;
        }
        files
            .pending
            .entry(blob.hash)
            .or_insert((*blob, Vec::new()))
            .1
            .push(index);
        files
            .pending_since
            .get_or_insert_with(std::time::Instant::now);
        Ok(())
    }

    /// Makes the pieces written since the last call durable: syncs their files, then marks
    /// them in one transaction.
    pub fn commit_pieces(&self, files: &mut Partials) -> Result<(), BlobStoreError> {
        if files.pending.is_empty() {
            return Ok(());
        }
        for hash in files.pending.keys() {
            if let Some((data, outboard)) = files.open.get(hash) {
                let path = self.partial_path(hash);
                data.sync_data().map_err(io_err(&path))?;
                outboard
                    .sync_data()
                    .map_err(io_err(&path.with_extension("obao")))?;
            }
        }
        files.pending_since = None;
        let tx = self.db.begin_write().map_err(index_err)?;
        {
            let mut table = tx.open_table(PIECES).map_err(index_err)?;
            for (hash, (blob, indices)) in std::mem::take(&mut files.pending) {
                let mut bits = match table.get(&hash.0).map_err(index_err)? {
                    Some(v) => words(v.value().1),
                    None => blob::transfer::no_pieces(&blob),
                };
                for i in indices {
                    if let Some(w) = bits.get_mut(i as usize / 64) {
                        *w |= 1 << (i % 64);
                    }
                }
                let raw: Vec<u8> = bits.iter().flat_map(|w| w.to_le_bytes()).collect();
                table
                    .insert(&hash.0, (blob.bytes, raw.as_slice()))
                    .map_err(index_err)?;
            }
        }
        tx.commit().map_err(index_err)?;
        Ok(())
    }

    /// Makes a fetched blob whole and visible: the partial file is hashed again whole (it must
    /// give the blob's name: a failed write or a disk that lost a piece is caught here, not at
    /// the next node), its outboard written, both moved into place, the row committed.
    pub fn finish(&self, blob: &BlobRef, now_ms: i64) -> Result<(), BlobStoreError> {
        if self.holds(&blob.hash)? {
            return Ok(());
        }
        let path = self.partial_path(&blob.hash);
        let len = std::fs::metadata(&path).map_err(io_err(&path))?.len();
        if len != blob.bytes {
            return Err(BlobStoreError::Index(format!(
                "{}: {len} bytes, the blob has {}",
                path.display(),
                blob.bytes
            )));
        }
        // Hashed again whole: a piece whose write failed, or a disk that lost one, must not
        // become a blob held (and receipted) under a name its bytes do not give.
        let (kept, outboard) = outboard_beside(&path, len)?;
        if kept != *blob {
            let _ = std::fs::remove_file(&outboard);
            return Err(BlobStoreError::Index(format!(
                "the pieces of {} make {} on disk",
                blob.hash, kept.hash
            )));
        }
        self.keep(
            Prepared {
                blob: kept,
                data: path,
                outboard,
                kept: false,
            },
            now_ms,
        )?;
        Ok(())
    }

    /// Deletes a blob held whole (its row first, so it is never visible without its bytes),
    /// and any partial copy. Deleting a blob not held does nothing.
    pub fn remove(&self, hash: &BlobHash) -> Result<(), BlobStoreError> {
        let tx = self.db.begin_write().map_err(index_err)?;
        {
            tx.open_table(BLOBS)
                .map_err(index_err)?
                .remove(&hash.0)
                .map_err(index_err)?;
            tx.open_table(PIECES)
                .map_err(index_err)?
                .remove(&hash.0)
                .map_err(index_err)?;
        }
        tx.commit().map_err(index_err)?;
        let partial = self.partial_path(hash);
        for path in [
            self.data_path(hash),
            self.outboard_path(hash),
            partial.with_extension("obao"),
            partial,
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        sync_dir(&self.dir)
    }

    /// Forgets a partial blob's pieces (to fetch it again from nothing).
    pub fn restart(&self, blob: &BlobRef) -> Result<(), BlobStoreError> {
        let path = self.partial_path(&blob.hash);
        let _ = std::fs::remove_file(path.with_extension("obao"));
        let _ = std::fs::remove_file(path);
        let tx = self.db.begin_write().map_err(index_err)?;
        tx.open_table(PIECES)
            .map_err(index_err)?
            .remove(&blob.hash.0)
            .map_err(index_err)?;
        tx.commit().map_err(index_err)?;
        Ok(())
    }

    /// Piece `index` of a held blob, encoded for the wire (checked against the outboard as read).
    pub fn encode_piece(&self, blob: &BlobRef, index: u32) -> Result<Vec<u8>, BlobStoreError> {
        let (data, ob) = (self.data_path(&blob.hash), self.outboard_path(&blob.hash));
        let data_file = File::open(&data).map_err(io_err(&data))?;
        let ob_file = File::open(&ob).map_err(io_err(&ob))?;
        Ok(blob::encode_piece(*blob, &data_file, &ob_file, index)?)
    }
}

/// Hashes the file at `path` (of `len` bytes) into an outboard written beside it
/// (`PATH.obao`, synced); gives the blob's name and the outboard's path.
fn outboard_beside(path: &Path, len: u64) -> Result<(BlobRef, PathBuf), BlobStoreError> {
    let ob_tmp = path.with_extension("obao");
    let data = BufReader::with_capacity(COPY_BUFFER_BYTES, File::open(path).map_err(io_err(path))?);
    let ob_file = File::create(&ob_tmp).map_err(io_err(&ob_tmp))?;
    let mut out = BufWriter::new(ob_file);
    let blob = blob::outboard(data, len, &mut out)?;
    let ob_file = out.into_inner().map_err(|e| BlobStoreError::Io {
        path: ob_tmp.display().to_string(),
        source: e.into_error(),
    })?;
    ob_file.sync_all().map_err(io_err(&ob_tmp))?;
    Ok((blob, ob_tmp))
}

/// A blob's files without its index: copying a file in and opening one held, done beside the
/// blob thread (which alone writes the index).
#[derive(Debug, Clone)]
pub struct BlobFiles {
    dir: PathBuf,
}

/// A file copied in, checked and hashed, not yet visible ([`BlobStore::keep`]); its files are
/// removed if it is dropped before.
#[derive(Debug)]
pub struct Prepared {
    pub blob: BlobRef,
    data: PathBuf,
    outboard: PathBuf,
    kept: bool,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.data);
            let _ = std::fs::remove_file(&self.outboard);
        }
    }
}

/// Tells copies taken in at once apart.
static INTAKES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl BlobFiles {
    /// Copies a recording file into the store's intake folder (through a fixed buffer), checks
    /// its container and duration, and hashes it. The file checked and hashed is the copy, so
    /// what is kept is what was checked.
    pub fn prepare(&self, source: &Path) -> Result<(Prepared, AudioInfo), BlobStoreError> {
        let prepared = self.prepare_with(|to, tmp| {
            let mut from = File::open(source).map_err(io_err(source))?;
            let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
            loop {
                let n = from.read(&mut buffer).map_err(io_err(source))?;
                if n == 0 {
                    return Ok(());
                }
                to.write_all(&buffer[..n]).map_err(io_err(tmp))?;
            }
        })?;
        let mut check = BufReader::new(File::open(&prepared.data).map_err(io_err(&prepared.data))?);
        let info =
            audio::probe(&mut check, prepared.blob.bytes).map_err(|e| BlobStoreError::Audio {
                path: source.display().to_string(),
                source: e,
            })?;
        Ok((prepared, info))
    }

    /// Writes a file into the store's intake folder with `fill` (given the file and its path),
    /// syncs and hashes it: a blob made here, such as a sealed materials package.
    pub fn prepare_with(
        &self,
        fill: impl FnOnce(&mut File, &Path) -> Result<(), BlobStoreError>,
    ) -> Result<Prepared, BlobStoreError> {
        let n = INTAKES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join("intake")
            .join(format!("{}-{n}.data", std::process::id()));
        let mut prepared = Prepared {
            blob: BlobRef {
                hash: BlobHash([0; 32]),
                bytes: 0,
            },
            outboard: tmp.with_extension("obao"),
            data: tmp.clone(),
            kept: false,
        };
        let mut to = File::create(&tmp).map_err(io_err(&tmp))?;
        fill(&mut to, &tmp)?;
        to.sync_all().map_err(io_err(&tmp))?;
        let len = to.metadata().map_err(io_err(&tmp))?.len();
        let (blob, outboard) = outboard_beside(&tmp, len)?;
        prepared.blob = blob;
        prepared.outboard = outboard;
        Ok(prepared)
    }

    /// The file of a blob held whole, to play or copy.
    pub fn held(&self, hash: &BlobHash) -> Result<File, BlobStoreError> {
        let path = self.dir.join(format!("{hash}.data"));
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BlobStoreError::NotHeld(*hash),
            _ => BlobStoreError::Io {
                path: path.display().to_string(),
                source: e,
            },
        })
    }
}

/// The partial files open for writing and the pieces written but not yet committed.
#[derive(Debug, Default)]
pub struct Partials {
    /// Each blob's partial data file and outboard.
    open: HashMap<BlobHash, (File, File)>,
    pending: BTreeMap<BlobHash, (BlobRef, Vec<u32>)>,
    pending_since: Option<std::time::Instant>,
}

impl Partials {
    /// Pieces written and not yet committed.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.values().map(|(_, p)| p.len()).sum()
    }

    /// When the oldest piece not yet committed was written.
    #[must_use]
    pub fn pending_since(&self) -> Option<std::time::Instant> {
        self.pending_since
    }

    /// Closes a blob's partial file (it is finished or given up).
    pub fn close(&mut self, hash: &BlobHash) {
        self.open.remove(hash);
    }

    /// A disk that refuses to sync: the blob's partial files, as open, become `/dev/null`,
    /// which cannot be synced (`fdatasync` fails with `EINVAL`), as a failing disk's files
    /// fail. For tests of what a refused commit does.
    #[cfg(test)]
    pub(crate) fn refuse_sync(&mut self, hash: &BlobHash) {
        let null = || File::open("/dev/null").unwrap();
        if let Some(files) = self.open.get_mut(hash) {
            *files = (null(), null());
        }
    }
}

fn words(raw: &[u8]) -> Vec<u64> {
    raw.chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

fn has(bits: &[u64], i: u32) -> bool {
    bits.get(i as usize / 64)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use super::*;

    fn wav(seconds: u32) -> Vec<u8> {
        let data_len = 32_000 * seconds;
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&[1, 0, 1, 0]);
        out.extend_from_slice(&16_000u32.to_le_bytes());
        out.extend_from_slice(&32_000u32.to_le_bytes());
        out.extend_from_slice(&[2, 0, 16, 0]);
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        out.extend((0..data_len).map(|i| u8::try_from(i % 251).unwrap()));
        out
    }

    fn open(dir: &Path) -> (BlobStore, Opened) {
        let db = Arc::new(Database::create(dir.join("store.redb")).unwrap());
        BlobStore::open(db, &dir.join("store.blobs"), 1).unwrap()
    }

    #[test]
    fn a_recording_taken_in_is_held_under_its_hash_and_a_bad_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (store, opened) = open(dir.path());
        assert!(opened.held.is_empty());
        let file = dir.path().join("2024-02-14_101_420101.wav");
        std::fs::write(&file, wav(10)).unwrap();
        let (blob, info) = store.intake(&file, 5).unwrap();
        assert_eq!(info.duration_ms, 10_000);
        assert_eq!(blob.hash.0, *bao_tree::blake3::hash(&wav(10)).as_bytes());
        let mut held = Vec::new();
        store
            .files()
            .held(&blob.hash)
            .unwrap()
            .read_to_end(&mut held)
            .unwrap();
        assert_eq!(held, wav(10));
        // Cut short: refused, and nothing of it is held or left in intake.
        let short = dir.path().join("short.wav");
        std::fs::write(&short, &wav(10)[..50_000]).unwrap();
        let err = store.intake(&short, 6).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("store.blobs/intake"))
                .unwrap()
                .count(),
            0
        );
        let files = std::fs::read_dir(dir.path().join("store.blobs"))
            .unwrap()
            .count();
        assert_eq!(files, 4, "partial, intake and the one blob's two files");
    }

    /// Pieces written but not committed are lost with a crash; committed ones stay; a blob
    /// whose pieces were all committed but which was not made whole is finished at start.
    #[test]
    fn pieces_count_only_once_committed_and_a_whole_blob_is_finished_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let data = wav(30); // ~960 KB: 4 pieces
        let mut ob = Vec::new();
        let blob = blob::outboard(&data[..], data.len() as u64, &mut ob).unwrap();
        let piece = |i: u32| {
            blob::verify_piece_with_hashes(
                blob,
                i,
                &blob::encode_piece(blob, &data[..], &ob[..], i).unwrap(),
            )
            .unwrap()
        };
        {
            let (store, _) = open(dir.path());
            let mut files = Partials::default();
            store.write_piece(&mut files, &blob, 0, &piece(0)).unwrap();
            store.write_piece(&mut files, &blob, 1, &piece(1)).unwrap();
            store.commit_pieces(&mut files).unwrap();
            store.write_piece(&mut files, &blob, 2, &piece(2)).unwrap();
            // "Crash": dropped without committing piece 2.
        }
        {
            let (store, opened) = open(dir.path());
            assert!(opened.held.is_empty());
            assert_eq!(opened.partial.len(), 1);
            let (_, bits) = &opened.partial[0];
            assert_eq!(bits[0], 0b011, "pieces 0 and 1 only");
            let mut files = Partials::default();
            for i in 2..blob.pieces() {
                store.write_piece(&mut files, &blob, i, &piece(i)).unwrap();
            }
            store.commit_pieces(&mut files).unwrap();
            // "Crash" before finish.
        }
        let (store, opened) = open(dir.path());
        assert_eq!(opened.held, vec![blob]);
        assert!(opened.partial.is_empty());
        let mut held = Vec::new();
        store
            .files()
            .held(&blob.hash)
            .unwrap()
            .read_to_end(&mut held)
            .unwrap();
        assert_eq!(held, data);
        // It is served, and what is served verifies.
        let encoded = store.encode_piece(&blob, 3).unwrap();
        assert_eq!(
            blob::verify_piece(blob, 3, &encoded).unwrap(),
            piece(3).bytes
        );
    }
}
