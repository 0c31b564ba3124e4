//! Backups of a node's store, and restoring one.
//!
//! `giasync-node backup --to FILE` writes one consistent snapshot: every table of the store read
//! in one redb read transaction (the running node takes it on its own database, so entering
//! sheets goes on meanwhile), and the recordings and packages the snapshot holds whole, into a
//! new redb file written beside FILE and renamed into place once durable. The file records
//! whose node it is (identity and node key).
//!
//! `giasync-node restore FILE` puts it back onto a stopped node: the backup must be this node's
//! identity, and the node must hold a **new key** (enrolled again: `giasync-node enrol`,
//! `install-cert`). A node writes its automerge changes under an actor derived from its key; a
//! store put back under the same key would number its next changes as it numbered those it made
//! after the backup, which its hub holds, and the two could never be merged. Under a new key
//! nothing collides: the node catches up with its hub, which sends back everything it had sent
//! it after the backup. The store being replaced is moved aside, never deleted.

use std::path::{Path, PathBuf};

use giasync_shared::blob::BlobRef;
use giasync_shared::identity::NodeIdentity;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::store::{
    ATTESTATIONS, AUDIT, CHANGES, META, QUARANTINE, QUARANTINE_V2, SCHEMA_KEY, STORE_SCHEMA,
    StoreError, db_err,
};

/// name → value: `identity` (the node's identity URI), `key` (its node key, 32 bytes),
/// `made_at_ms` (8 bytes, big-endian).
const BACKUP: TableDefinition<&str, &[u8]> = TableDefinition::new("backup");
/// (blob hash, piece) → the piece's bytes: the blobs held whole, in [`BLOB_PIECE_BYTES`].
const BACKUP_BLOBS: TableDefinition<(&[u8; 32], u64), &[u8]> = TableDefinition::new("backup_blobs");
/// The size of a blob's pieces in a backup.
pub const BLOB_PIECE_BYTES: usize = 1024 * 1024;

/// What went wrong backing up or restoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    #[error("{0} is not a giasync backup")]
    NotABackup(String),
    /// The backup is another node's.
    #[error("the backup is of {backup}, this node is {node}: nothing was restored")]
    OtherNode { backup: String, node: String },
    /// The node's key has already written this node's documents (in the backup, or in the
    /// store the restore would replace).
    #[error(
        "this node's key has already written its documents ({0}): a restored store must write under a key that never has, or its next changes would collide with those its hub already holds. Enrol a new key first (giasync-node enrol, giasync-certs sign, giasync-node install-cert, with the old key moved aside), then restore. Nothing was restored"
    )]
    SameKey(&'static str),
    /// The node is running.
    #[error("{0} is in use (is the node running?): stop the node, then restore")]
    InUse(String),
    #[error("blob {hash}: {message}")]
    Blob { hash: String, message: String },
}

fn file_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDone {
    pub file: PathBuf,
    pub changes: u64,
    pub blobs: u64,
    pub bytes: u64,
}

/// What was restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub changes: u64,
    pub blobs: u64,
    /// Where the store that was replaced was moved, if there was one.
    pub set_aside: Option<PathBuf>,
}

/// The schema of the store `rx` reads (1 when it records none).
fn schema_in(rx: &redb::ReadTransaction) -> u64 {
    rx.open_table(META)
        .ok()
        .and_then(|m| m.get(SCHEMA_KEY).ok().flatten().map(|v| v.value()))
        .unwrap_or(1)
}

/// Whether node key `key` has written any document of the store `rx` reads: it authored an
/// attestation there (a node stores its own attestation with every change it makes).
fn has_written(rx: &redb::ReadTransaction, key: &[u8; 32]) -> Result<bool, StoreError> {
    let table = match rx.open_table(ATTESTATIONS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(db_err(e)),
    };
    for row in table.iter().map_err(db_err)? {
        let (k, _) = row.map_err(db_err)?;
        if k.value().1 == key {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads until `buffer` is full or the file ends; how many bytes.
fn read_full(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read as _;
    let mut n = 0;
    while n < buffer.len() {
        match file.read(&mut buffer[n..])? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

/// Makes a rename in `path`'s folder durable.
fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(file_err(dir))
}

/// Copies `table` from `from` to `to` (nothing when `from` has no such table).
fn copy_table<K, V>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    let source = match from.open_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(db_err(e)),
    };
    let mut target = to.open_table(table).map_err(db_err)?;
    let mut rows = 0;
    for row in source.iter().map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        target.insert(k.value(), v.value()).map_err(db_err)?;
        rows += 1;
    }
    Ok(rows)
}

/// Copies every table of a store (and a schema-1 store's old quarantine) from `from` to `to`;
/// how many change chunks.
fn copy_store(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
) -> Result<u64, StoreError> {
    let changes = copy_table(from, to, CHANGES)?;
    copy_table(from, to, ATTESTATIONS)?;
    copy_table(from, to, QUARANTINE)?;
    copy_table(from, to, QUARANTINE_V2)?;
    copy_table(from, to, AUDIT)?;
    copy_table(from, to, META)?;
    Ok(changes)
}

/// Writes a backup of the store `db` (blobs in `blobs_dir`) of node `identity` with node key
/// `key` to `to`, from one read transaction.
pub fn backup(
    db: &impl ReadableDatabase,
    blobs_dir: &Path,
    (identity, key): (NodeIdentity, [u8; 32]),
    now_ms: i64,
    to: &Path,
) -> Result<BackupDone, BackupError> {
    if to.exists() {
        return Err(BackupError::Exists(to.display().to_string()));
    }
    // A name of its own: two backups at once never share their unfinished file.
    static BACKUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = to.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        BACKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let rx = db.begin_read().map_err(db_err)?;
    let schema = schema_in(&rx);
    if schema > STORE_SCHEMA {
        return Err(StoreError::NewerSchema {
            path: "the store".into(),
            found: schema,
        }
        .into());
    }
    let out = Database::create(&tmp).map_err(db_err)?;
    let tx = out.begin_write().map_err(db_err)?;
    let changes = copy_store(&rx, &tx)?;
    let held = crate::blobs::held_in(&rx).map_err(|e| BackupError::Blob {
        hash: "index".into(),
        message: e.to_string(),
    })?;
    let mut blobs = 0;
    {
        let mut pieces = tx.open_table(BACKUP_BLOBS).map_err(db_err)?;
        let mut buffer = vec![0u8; BLOB_PIECE_BYTES];
        for blob in &held {
            let path = blobs_dir.join(format!("{}.data", blob.hash));
            let mut file = match std::fs::File::open(&path) {
                Ok(file) => file,
                // Removed since the snapshot (a recording destroyed): not in the backup.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(file_err(&path)(e)),
            };
            // Piece by piece: a recording may be larger than the memory a node can spare.
            for i in 0u64.. {
                let n = read_full(&mut file, &mut buffer).map_err(file_err(&path))?;
                if n == 0 {
                    break;
                }
                pieces
                    .insert((&blob.hash.0, i), &buffer[..n])
                    .map_err(db_err)?;
            }
            blobs += 1;
        }
        let mut meta = tx.open_table(BACKUP).map_err(db_err)?;
        meta.insert("identity", identity.to_uri().as_bytes())
            .map_err(db_err)?;
        meta.insert("key", &key[..]).map_err(db_err)?;
        meta.insert("made_at_ms", &now_ms.to_be_bytes()[..])
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    drop(out);
    drop(rx);
    put_in_place(&tmp, to, |from, to| std::fs::hard_link(from, to))?;
    sync_parent(to)?;
    let bytes = std::fs::metadata(to).map_err(file_err(to))?.len();
    Ok(BackupDone {
        file: to.to_path_buf(),
        changes,
        blobs,
        bytes,
    })
}

/// Restores the backup `from` as the store at `store` (blobs in `blobs_dir`) of node
/// `identity`, whose node key is now `key`. The new store is made whole, blobs included,
/// before the present one is moved aside.
pub fn restore(
    store: &Path,
    blobs_dir: &Path,
    (identity, key): (NodeIdentity, [u8; 32]),
    from: &Path,
    now_ms: i64,
) -> Result<Restored, BackupError> {
    let backup = redb::ReadOnlyDatabase::open(from)
        .map_err(|_| BackupError::NotABackup(from.display().to_string()))?;
    let rx = backup.begin_read().map_err(db_err)?;
    let meta = rx
        .open_table(BACKUP)
        .map_err(|_| BackupError::NotABackup(from.display().to_string()))?;
    let field = |name: &str| -> Result<Vec<u8>, BackupError> {
        Ok(meta
            .get(name)
            .map_err(db_err)?
            .ok_or_else(|| BackupError::NotABackup(from.display().to_string()))?
            .value()
            .to_vec())
    };
    let of = String::from_utf8_lossy(&field("identity")?).into_owned();
    if of != identity.to_uri() {
        return Err(BackupError::OtherNode {
            backup: of,
            node: identity.to_uri(),
        });
    }
    if field("key")? == key || has_written(&rx, &key)? {
        return Err(BackupError::SameKey("in the backup"));
    }
    let schema = schema_in(&rx);
    if schema > STORE_SCHEMA {
        return Err(StoreError::NewerSchema {
            path: from.display().to_string(),
            found: schema,
        }
        .into());
    }
    // The node must be stopped: its store is locked while it runs. A store that does not open
    // for another reason (damaged: why one restores) is replaced all the same.
    if store.exists() {
        // A key that wrote the store being replaced (after an earlier restore) has written
        // changes its hub holds.
        let written = match redb::ReadOnlyDatabase::open(store) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(BackupError::InUse(store.display().to_string()));
            }
            Ok(current) => has_written(&current.begin_read().map_err(db_err)?, &key)?,
            // Not closed cleanly (the node crashed or lost power: when one restores), so it
            // opens only for writing, which repairs it first; the check must not be skipped
            // for that.
            Err(redb::DatabaseError::RepairAborted) => match Database::open(store) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(BackupError::InUse(store.display().to_string()));
                }
                Ok(current) => has_written(&current.begin_read().map_err(db_err)?, &key)?,
                Err(_) => false,
            },
            Err(_) => false,
        };
        if written {
            return Err(BackupError::SameKey("in the store this would replace"));
        }
    }
    let restoring = store.with_extension("redb.restoring");
    let _ = std::fs::remove_file(&restoring);
    let changes;
    {
        let db = Database::create(&restoring).map_err(db_err)?;
        let tx = db.begin_write().map_err(db_err)?;
        changes = copy_store(&rx, &tx)?;
        tx.commit().map_err(db_err)?;
    }
    let blobs = restore_blobs(&rx, &restoring, blobs_dir, now_ms)?;
    let aside = store.with_extension(format!("redb.before-restore-{now_ms}"));
    // The restored store says so in its own audit log, as every write the node makes does.
    let said = format!(
        "restored from the backup {} ({changes} changes, {blobs} recordings){}",
        from.display(),
        if store.exists() {
            format!("; the store it replaced is at {}", aside.display())
        } else {
            String::new()
        }
    );
    crate::store::Store::open(&restoring)?.apply(&[giasync_shared::sync::Persist::Audit {
        at_ms: now_ms,
        text: said,
    }])?;
    let set_aside = if store.exists() {
        std::fs::rename(store, &aside).map_err(file_err(store))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&restoring, store).map_err(|e| BackupError::File {
        path: store.display().to_string(),
        message: format!(
            "{e}; the restored store is at {}{}",
            restoring.display(),
            set_aside
                .as_ref()
                .map(|a| format!(", the one it replaces at {}", a.display()))
                .unwrap_or_default()
        ),
    })?;
    sync_parent(store)?;
    Ok(Restored {
        changes,
        blobs,
        set_aside,
    })
}

/// Puts the backup's blobs into the blob folder and the index of the store at `restoring`,
/// each checked against its hash as it is kept (the folder holds files by hash: a blob the
/// present store holds too is the same file).
fn restore_blobs(
    rx: &redb::ReadTransaction,
    restoring: &Path,
    blobs_dir: &Path,
    now_ms: i64,
) -> Result<u64, BackupError> {
    let opened = crate::store::Store::open(restoring)?;
    let (blob_store, _) = crate::blobs::BlobStore::open(opened.database(), blobs_dir, now_ms)
        .map_err(|e| BackupError::Blob {
            hash: "store".into(),
            message: e.to_string(),
        })?;
    let pieces = rx.open_table(BACKUP_BLOBS).map_err(db_err)?;
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    for row in pieces.iter().map_err(db_err)? {
        let (k, _) = row.map_err(db_err)?;
        let (hash, _) = k.value();
        if hashes.last() != Some(hash) {
            hashes.push(*hash);
        }
    }
    let mut blobs = 0;
    for hash in hashes {
        let wanted = giasync_shared::blob::BlobHash(hash);
        let blob_err = |message: String| BackupError::Blob {
            hash: wanted.to_string(),
            message,
        };
        let io = |path: &Path, e: String| crate::blobs::BlobStoreError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        };
        let prepared = blob_store
            .files()
            .prepare_with(|file, path| {
                use std::io::Write as _;
                let rows = pieces
                    .range((&hash, 0)..=(&hash, u64::MAX))
                    .map_err(|e| io(path, e.to_string()))?;
                for row in rows {
                    let (_, piece) = row.map_err(|e| io(path, e.to_string()))?;
                    file.write_all(piece.value())
                        .map_err(|e| io(path, e.to_string()))?;
                }
                Ok(())
            })
            .map_err(|e| blob_err(e.to_string()))?;
        if prepared.blob.hash != wanted {
            return Err(blob_err(
                "its bytes in the backup do not match its hash".into(),
            ));
        }
        let kept: BlobRef = blob_store
            .keep(prepared, now_ms)
            .map_err(|e| blob_err(e.to_string()))?;
        debug_assert_eq!(kept.hash, wanted);
        blobs += 1;
    }
    // The disk may have survived with recordings taken in after the backup (not yet at the
    // РЦОИ: what a backup is for): each whole file whose bytes match its name is held again.
    let entries = std::fs::read_dir(blobs_dir).map_err(file_err(blobs_dir))?;
    for entry in entries {
        let path = entry.map_err(file_err(blobs_dir))?.path();
        let Some(hash) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".data"))
            .and_then(|h| h.parse::<giasync_shared::blob::BlobHash>().ok())
        else {
            continue;
        };
        let held = blob_store.holds(&hash).map_err(|e| BackupError::Blob {
            hash: hash.to_string(),
            message: e.to_string(),
        })?;
        if held {
            continue;
        }
        let prepared = blob_store.files().prepare_with(|file, tmp| {
            let mut from =
                std::fs::File::open(&path).map_err(|e| crate::blobs::BlobStoreError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?;
            std::io::copy(&mut from, file).map(|_| ()).map_err(|e| {
                crate::blobs::BlobStoreError::Io {
                    path: tmp.display().to_string(),
                    source: e,
                }
            })
        });
        // A file whose bytes do not match its name is left where it is, not held.
        if let Ok(prepared) = prepared
            && prepared.blob.hash == hash
        {
            blob_store
                .keep(prepared, now_ms)
                .map_err(|e| BackupError::Blob {
                    hash: hash.to_string(),
                    message: e.to_string(),
                })?;
            blobs += 1;
        }
    }
    Ok(blobs)
}

/// Moves the finished backup `tmp` to `to`, only if nothing took the name meanwhile: by a hard
/// `link`, which fails on an existing file. The FAT and exFAT file systems of most USB sticks
/// have no hard links (the link fails with "operation not permitted"): there the name is checked
/// free, then `tmp` renamed (a rename would replace a file of that name).
fn put_in_place(
    tmp: &Path,
    to: &Path,
    link: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<(), BackupError> {
    let exists = || BackupError::Exists(to.display().to_string());
    match link(tmp, to) {
        Ok(()) => std::fs::remove_file(tmp).map_err(file_err(tmp)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists()),
        Err(_) if to.symlink_metadata().is_ok() => Err(exists()),
        Err(_) => std::fs::rename(tmp, to).map_err(file_err(to)),
    }
}

#[cfg(test)]
mod tests {
    use giasync_shared::codes::{MunicipalityCode, OrgCode, RegionCode, SchoolCode};
    use giasync_shared::sync::Persist;

    use super::*;

    fn school(code: &str) -> NodeIdentity {
        NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org: OrgCode::School(SchoolCode::new(code).unwrap()),
            municipality: Some(MunicipalityCode::new("4201").unwrap()),
        }
    }

    /// A backup goes back only onto its own node, under a new key, over a store not in use;
    /// what it held comes back, and the store it replaces is kept aside.
    #[test]
    fn a_backup_is_restored_only_onto_its_node_under_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("store.redb");
        let blobs = crate::blobs::dir_beside(&store_path);
        let store = crate::store::Store::open(&store_path).unwrap();
        store
            .apply(&[Persist::Audit {
                at_ms: 1,
                text: "before the backup".into(),
            }])
            .unwrap();
        // A blob held whole (2.5 pieces of a backup), and its bytes.
        let blob_bytes: Vec<u8> = (0..BLOB_PIECE_BYTES * 5 / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let blob = {
            let (blob_store, _) =
                crate::blobs::BlobStore::open(store.database(), &blobs, 1).unwrap();
            let prepared = blob_store
                .files()
                .prepare_with(|file, _| {
                    use std::io::Write as _;
                    file.write_all(&blob_bytes).unwrap();
                    Ok(())
                })
                .unwrap();
            blob_store.keep(prepared, 1).unwrap()
        };
        let backup_file = dir.path().join("backup");
        let me = school("420101");
        let done = backup(&*store.database(), &blobs, (me, [1; 32]), 5, &backup_file).unwrap();
        assert_eq!(done.file, backup_file);
        assert_eq!(done.blobs, 1);
        // A second backup to the same file is refused.
        assert!(matches!(
            backup(&*store.database(), &blobs, (me, [1; 32]), 6, &backup_file),
            Err(BackupError::Exists(_))
        ));
        store
            .apply(&[Persist::Audit {
                at_ms: 2,
                text: "after the backup".into(),
            }])
            .unwrap();
        // In use: refused.
        let in_use = restore(&store_path, &blobs, (me, [2; 32]), &backup_file, 7);
        assert!(matches!(in_use, Err(BackupError::InUse(_))), "{in_use:?}");
        drop(store);
        let other = restore(
            &store_path,
            &blobs,
            (school("420102"), [2; 32]),
            &backup_file,
            7,
        );
        assert!(
            matches!(other, Err(BackupError::OtherNode { .. })),
            "{other:?}"
        );
        let same_key = restore(&store_path, &blobs, (me, [1; 32]), &backup_file, 7);
        assert!(
            matches!(same_key, Err(BackupError::SameKey(_))),
            "{same_key:?}"
        );
        let not_one = restore(&store_path, &blobs, (me, [2; 32]), &store_path, 7);
        assert!(
            matches!(not_one, Err(BackupError::NotABackup(_))),
            "{not_one:?}"
        );
        // Nothing above touched the store.
        let lines = |path: &Path| -> Vec<String> {
            crate::store::Store::open(path)
                .unwrap()
                .audit_tail(10)
                .unwrap()
                .into_iter()
                .map(|(_, t)| t)
                .collect()
        };
        assert_eq!(
            lines(&store_path),
            ["before the backup", "after the backup"]
        );

        // The machine is lost with its recordings.
        std::fs::remove_dir_all(&blobs).unwrap();
        let restored = restore(&store_path, &blobs, (me, [2; 32]), &backup_file, 7).unwrap();
        assert_eq!(restored.blobs, 1);
        let after = lines(&store_path);
        assert_eq!(after[0], "before the backup");
        assert!(
            after.len() == 2
                && after[1].starts_with("restored from the backup ")
                && after[1].contains("the store it replaced is at "),
            "{after:?}"
        );
        let reopened = crate::store::Store::open(&store_path).unwrap();
        let (blob_store, _) =
            crate::blobs::BlobStore::open(reopened.database(), &blobs, 8).unwrap();
        assert!(blob_store.holds(&blob.hash).unwrap());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut blob_store.files().held(&blob.hash).unwrap(), &mut back)
            .unwrap();
        assert!(back == blob_bytes, "the blob came back changed");
        drop((blob_store, reopened));
        let aside = restored.set_aside.unwrap();
        assert_eq!(lines(&aside), ["before the backup", "after the backup"]);

        // The node then writes under its new key; restoring the old backup again under that
        // key would collide with what it wrote: refused, until yet another key.
        crate::store::Store::open(&store_path)
            .unwrap()
            .apply(&[Persist::Attestation {
                doc: "protocol/4201/420101/is-2024-02-14".parse().unwrap(),
                author: [2; 32],
                cert: vec![1],
                bytes: vec![2],
            }])
            .unwrap();
        let again = restore(&store_path, &blobs, (me, [2; 32]), &backup_file, 9);
        assert!(
            matches!(
                again,
                Err(BackupError::SameKey("in the store this would replace"))
            ),
            "{again:?}"
        );
        restore(&store_path, &blobs, (me, [3; 32]), &backup_file, 10).unwrap();
    }

    /// Where the file system has no hard links (a FAT or exFAT stick), the backup is renamed
    /// into place instead, and still never replaces a file of its name.
    #[test]
    fn without_hard_links_a_backup_is_renamed_into_place_and_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let no_links = |_: &Path, _: &Path| -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(1)) // EPERM, as vfat answers link(2)
        };
        let tmp = dir.path().join("backup.partial");
        let to = dir.path().join("backup");
        std::fs::write(&tmp, b"the backup").unwrap();
        put_in_place(&tmp, &to, no_links).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"the backup");
        assert!(!tmp.exists());
        std::fs::write(&tmp, b"another").unwrap();
        let again = put_in_place(&tmp, &to, no_links);
        assert!(matches!(again, Err(BackupError::Exists(_))), "{again:?}");
        assert_eq!(std::fs::read(&to).unwrap(), b"the backup");
        assert!(tmp.exists(), "the partial file is left for the operator");
    }

    /// The same check when the store to replace was not closed cleanly (the machine crashed
    /// or lost power, which is when one restores): it opens only after a repair, and the key
    /// that wrote it is refused all the same.
    #[test]
    fn a_key_that_wrote_a_store_not_closed_cleanly_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("store.redb");
        let blobs = crate::blobs::dir_beside(&store_path);
        let me = school("420101");
        let backup_file = dir.path().join("backup");
        let store = crate::store::Store::open(&store_path).unwrap();
        backup(&*store.database(), &blobs, (me, [1; 32]), 5, &backup_file).unwrap();
        store
            .apply(&[Persist::Attestation {
                doc: "protocol/4201/420101/is-2024-02-14".parse().unwrap(),
                author: [2; 32],
                cert: vec![1],
                bytes: vec![2],
            }])
            .unwrap();
        // The disk as a crash leaves it: what was committed, the store never closed.
        let crashed = dir.path().join("crashed.redb");
        std::fs::copy(&store_path, &crashed).unwrap();
        drop(store);
        assert!(matches!(
            redb::ReadOnlyDatabase::open(&crashed),
            Err(redb::DatabaseError::RepairAborted)
        ));
        let again = restore(&crashed, &blobs, (me, [2; 32]), &backup_file, 9);
        assert!(
            matches!(
                again,
                Err(BackupError::SameKey("in the store this would replace"))
            ),
            "{again:?}"
        );
        restore(&crashed, &blobs, (me, [3; 32]), &backup_file, 10).unwrap();
    }

    /// A recording taken in after the backup, on a disk that survived, is held again after the
    /// restore (it is what a backup protects: not yet at the РЦОИ); a file whose bytes do not
    /// match its name is not.
    #[test]
    fn recordings_taken_in_after_the_backup_are_held_again_when_the_disk_survived() {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("store.redb");
        let blobs = crate::blobs::dir_beside(&store_path);
        let me = school("420101");
        let backup_file = dir.path().join("backup");
        let later = {
            let store = crate::store::Store::open(&store_path).unwrap();
            backup(&*store.database(), &blobs, (me, [1; 32]), 5, &backup_file).unwrap();
            let (blob_store, _) =
                crate::blobs::BlobStore::open(store.database(), &blobs, 6).unwrap();
            let prepared = blob_store
                .files()
                .prepare_with(|file, _| {
                    use std::io::Write as _;
                    file.write_all(b"taken in after the backup").unwrap();
                    Ok(())
                })
                .unwrap();
            blob_store.keep(prepared, 6).unwrap()
        };
        // A stray file named as a blob it is not.
        let stray = giasync_shared::blob::BlobHash([7; 32]);
        std::fs::write(blobs.join(format!("{stray}.data")), b"not that").unwrap();
        let restored = restore(&store_path, &blobs, (me, [2; 32]), &backup_file, 7).unwrap();
        assert_eq!(restored.blobs, 1);
        let store = crate::store::Store::open(&store_path).unwrap();
        let (blob_store, _) = crate::blobs::BlobStore::open(store.database(), &blobs, 8).unwrap();
        assert!(blob_store.holds(&later.hash).unwrap());
        assert!(!blob_store.holds(&stray).unwrap());
    }
}
