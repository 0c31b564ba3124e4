//! The node's store (redb): documents as appended change chunks, the latest attestation of each
//! author per document, the quarantine and the append-only audit log.
//!
//! Every batch of records the engine emits is written in one durable redb transaction
//! (`Durability::Immediate`: fsync before `commit` returns). The driver acknowledges a local
//! change to its user only after that commit, so whatever a user was told is saved survives
//! `kill -9` at any moment; a crash mid-commit leaves the previous committed state, which redb
//! guarantees is readable (its commit is a copy-on-write tree swap with a checksummed header).
//! See `docs/design.md` for the layout and the crash cases.

use std::path::Path;

use giasync_shared::sync::{DocId, Engine, Persist};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

/// (document id, sequence) → a chunk of changes (`Automerge::save_after` or a full save).
pub(crate) const CHANGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("changes");
/// (document id, author key) → u32 certificate length, certificate, attestation.
pub(crate) const ATTESTATIONS: TableDefinition<(&str, &[u8; 32]), &[u8]> =
    TableDefinition::new("attestations");
/// Schema 1 only (moved into [`QUARANTINE_V2`] by the upgrade to schema 2): sequence →
/// (document id, peer identity URI, reason, refused bytes).
pub(crate) const QUARANTINE: TableDefinition<u64, (&str, &str, &str, &[u8])> =
    TableDefinition::new("quarantine");
/// sequence → (document id, peer identity URI, reason, length of the refused message, its
/// SHA-256, its first bytes up to `QUARANTINE_KEPT_BYTES_MAX`).
pub(crate) const QUARANTINE_V2: TableDefinition<u64, QuarantineRow> =
    TableDefinition::new("quarantine_v2");
/// A row of [`QUARANTINE_V2`].
pub(crate) type QuarantineRow = (
    &'static str,
    &'static str,
    &'static str,
    u64,
    &'static [u8; 32],
    &'static [u8],
);
/// sequence → (time ms, text). Append-only.
pub(crate) const AUDIT: TableDefinition<u64, (i64, &str)> = TableDefinition::new("audit");
/// name → value: the last sequence number (`seq`) and the store's schema ([`SCHEMA_KEY`]).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The schema of the store this build writes. A store of an older schema is upgraded when it
/// is opened for writing ([`Store::open`]), in one transaction, by [`UPGRADES`]; one of a newer
/// schema (written by a newer giasync) is refused, and left as it is. `docs/operations.md`
/// gives the order in which a region upgrades.
///
/// - 1: every store before the schema was recorded (it has no [`SCHEMA_KEY`]).
/// - 2: the schema is recorded; quarantined messages are kept only as [`QUARANTINE_V2`] rows
///   (hash, length, first bytes), the rows of schema 1's `quarantine` moved there.
pub const STORE_SCHEMA: u64 = 2;
/// The [`META`] key of the store's schema.
pub(crate) const SCHEMA_KEY: &str = "schema";

/// The upgrade from schema `n + 1` to `n + 2` is `UPGRADES[n]`: it runs inside the transaction
/// that then records the new schema, so a crash leaves the store at the old schema or the new.
const UPGRADES: [Upgrade; 1] = [quarantine_v1_to_v2];
/// One step of [`UPGRADES`].
type Upgrade = fn(&redb::WriteTransaction) -> Result<(), StoreError>;

/// Schema 1 → 2: each row of the schema-1 quarantine becomes a [`QUARANTINE_V2`] row under the
/// same sequence number (its hash and length over the whole refused message, its first
/// `QUARANTINE_KEPT_BYTES_MAX` bytes kept), and the old table goes.
fn quarantine_v1_to_v2(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    use sha2::Digest as _;
    let present = tx
        .list_tables()
        .map_err(db_err)?
        .any(|t| t.name() == QUARANTINE.name());
    if !present {
        return Ok(());
    }
    {
        let old = tx.open_table(QUARANTINE).map_err(db_err)?;
        let mut new = tx.open_table(QUARANTINE_V2).map_err(db_err)?;
        for row in old.iter().map_err(db_err)? {
            let (seq, value) = row.map_err(db_err)?;
            let (doc, peer, reason, bytes) = value.value();
            let sha256: [u8; 32] = sha2::Sha256::digest(bytes).into();
            let kept = &bytes[..bytes
                .len()
                .min(giasync_shared::sync::QUARANTINE_KEPT_BYTES_MAX)];
            new.insert(
                seq.value(),
                (doc, peer, reason, bytes.len() as u64, &sha256, kept),
            )
            .map_err(db_err)?;
        }
    }
    tx.delete_table(QUARANTINE).map_err(db_err)?;
    Ok(())
}

/// Documents with more stored chunks than this are rewritten as one chunk when the node starts.
pub const COMPACT_CHUNKS_MIN: usize = 64;

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened (in use by another process, damaged, unreadable).
    #[error("{path}: {message}")]
    Open { path: String, message: String },
    /// A transaction failed.
    #[error("store: {0}")]
    Db(String),
    /// A stored record does not decode.
    #[error("stored {what} is damaged: {message}")]
    Corrupt { what: String, message: String },
    /// The store changed while a command ran on a snapshot of it.
    #[error(
        "the store changed while the command ran (another command, or the node started): nothing was written; run it again"
    )]
    ChangedMeanwhile,
    /// The store was written by a newer giasync, whose format this build does not know.
    #[error(
        "{path}: the store is of schema {found}, written by a newer giasync; this build knows schemas up to {STORE_SCHEMA}. Nothing was changed: run the newer giasync (downgrading a node needs a backup from before its upgrade)"
    )]
    NewerSchema { path: String, found: u64 },
}

/// The length of redb's magic number at the start of its file.
const REDB_MAGIC_BYTES: usize = 9;

/// Whether `bytes` are what an interrupted first creation leaves: redb's magic number, which it
/// writes last when it creates a file, was never written.
#[must_use]
pub fn is_interrupted_creation(bytes: &[u8]) -> bool {
    bytes.iter().take(REDB_MAGIC_BYTES).all(|b| *b == 0)
}

/// A stored attestation: the author's certificate and the attestation bytes.
type Endorsed = (Vec<u8>, Vec<u8>);

/// The open store.
#[derive(Debug)]
pub struct Store {
    db: std::sync::Arc<Database>,
}

/// What loading found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub docs: usize,
    pub chunks: usize,
    pub attestations: usize,
    pub compacted: usize,
    /// Documents whose stored bytes did not load, with why: left on disk untouched, not held
    /// by the engine (the node starts without them and `status` says so).
    pub docs_refused: Vec<(String, String)>,
}

impl Store {
    /// Opens (or creates) the store at `path`. A file without redb's magic number is what a crash
    /// during the very first creation leaves (redb writes the magic number last): nothing was
    /// ever committed in it. It is moved aside (never deleted) and the store created again.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A store of a newer schema is refused before it is opened for writing: redb rewrites
        // the header of a database opened so when it closes.
        if let Ok(db) = redb::ReadOnlyDatabase::open(path)
            && let (_, found) = read_schema(&db)?
            && found > STORE_SCHEMA
        {
            return Err(StoreError::NewerSchema {
                path: path.display().to_string(),
                found,
            });
        }
        if let Ok(bytes) = std::fs::read(path)
            && is_interrupted_creation(&bytes)
            && Database::create(path).is_err()
        {
            let aside = path.with_extension("redb.interrupted");
            tracing::warn!(path = %path.display(), aside = %aside.display(), "the store's creation was interrupted; creating it again");
            std::fs::rename(path, &aside).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                message: format!("cannot move an interrupted store aside: {e}"),
            })?;
        }
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    "in use by another process (is the node running?)".into()
                }
                other => other.to_string(),
            },
        })?;
        Store::init(db, &path.display().to_string())
    }

    /// Opens (or creates) a store on another storage backend (tests crash it at every write).
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .create_with_backend(backend)
            .map_err(|e| StoreError::Open {
                path: "backend".into(),
                message: e.to_string(),
            })?;
        Store::init(db, "backend")
    }

    /// Creates the tables of a new store, or upgrades an older one ([`STORE_SCHEMA`]).
    fn init(db: Database, path: &str) -> Result<Self, StoreError> {
        let (present, schema) = read_schema(&db)?;
        let tables = [
            CHANGES.name(),
            ATTESTATIONS.name(),
            QUARANTINE_V2.name(),
            AUDIT.name(),
            META.name(),
        ];
        // A store of none of these tables is new: it starts at this build's schema.
        let new = !tables.iter().any(|name| present.contains(*name));
        let schema = if new { STORE_SCHEMA } else { schema };
        if schema > STORE_SCHEMA {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: schema,
            });
        }
        // A write transaction commits a new file state even when it changes nothing, so one is
        // begun only to create or upgrade: a store opened for a command that is then refused (a
        // list with a bad row) stays byte-for-byte as it was.
        let recorded = present.contains(META.name()) && schema == STORE_SCHEMA && !new;
        if recorded && tables.iter().all(|name| present.contains(*name)) {
            return Ok(Store {
                db: std::sync::Arc::new(db),
            });
        }
        let tx = db.begin_write().map_err(db_err)?;
        {
            tx.open_table(CHANGES).map_err(db_err)?;
            tx.open_table(ATTESTATIONS).map_err(db_err)?;
            tx.open_table(QUARANTINE_V2).map_err(db_err)?;
            tx.open_table(AUDIT).map_err(db_err)?;
            tx.open_table(META).map_err(db_err)?;
        }
        for upgrade in UPGRADES.iter().skip(schema.saturating_sub(1) as usize) {
            upgrade(&tx)?;
        }
        tx.open_table(META)
            .map_err(db_err)?
            .insert(SCHEMA_KEY, STORE_SCHEMA)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        if schema < STORE_SCHEMA {
            tracing::info!(path, from = schema, to = STORE_SCHEMA, "store upgraded");
        }
        Ok(Store {
            db: std::sync::Arc::new(db),
        })
    }

    /// The schema the store is of ([`STORE_SCHEMA`]).
    pub fn schema(&self) -> Result<u64, StoreError> {
        Ok(read_schema(&*self.db)?.1)
    }

    /// The database, for the tables of the blob store (`crate::blobs`), which keeps its index
    /// here beside the documents.
    #[must_use]
    pub fn database(&self) -> std::sync::Arc<Database> {
        self.db.clone()
    }

    /// Writes `records` in one durable transaction.
    pub fn apply(&self, records: &[Persist]) -> Result<(), StoreError> {
        self.apply_checked(records, None)
    }

    /// Writes `records` computed on a [`Snapshot`] that had seen records up to `seen` (its
    /// [`Snapshot::seq`]); refuses, writing nothing, if anything was written since (another
    /// command, or the node that ran in between): what was computed is out of date.
    pub fn apply_after(&self, records: &[Persist], seen: u64) -> Result<(), StoreError> {
        self.apply_checked(records, Some(seen))
    }

    fn apply_checked(&self, records: &[Persist], seen: Option<u64>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let mut seq = meta.get("seq").map_err(db_err)?.map_or(0, |v| v.value());
            if seen.is_some_and(|seen| seen != seq) {
                drop(meta);
                tx.abort().map_err(db_err)?;
                return Err(StoreError::ChangedMeanwhile);
            }
            let mut changes = tx.open_table(CHANGES).map_err(db_err)?;
            let mut attestations = tx.open_table(ATTESTATIONS).map_err(db_err)?;
            let mut quarantine = tx.open_table(QUARANTINE_V2).map_err(db_err)?;
            let mut audit = tx.open_table(AUDIT).map_err(db_err)?;
            for record in records {
                seq += 1;
                match record {
                    Persist::Changes { doc, bytes } => {
                        changes
                            .insert((doc.to_string().as_str(), seq), bytes.as_slice())
                            .map_err(db_err)?;
                    }
                    Persist::Attestation {
                        doc,
                        author,
                        cert,
                        bytes,
                    } => {
                        let mut value = Vec::with_capacity(4 + cert.len() + bytes.len());
                        value.extend_from_slice(
                            &u32::try_from(cert.len()).unwrap_or(u32::MAX).to_be_bytes(),
                        );
                        value.extend_from_slice(cert);
                        value.extend_from_slice(bytes);
                        attestations
                            .insert((doc.to_string().as_str(), author), value.as_slice())
                            .map_err(db_err)?;
                    }
                    Persist::Quarantine {
                        doc,
                        peer,
                        reason,
                        sha256,
                        len,
                        bytes,
                    } => {
                        let (doc, peer) = (doc.to_string(), peer.to_uri());
                        quarantine
                            .insert(
                                seq,
                                (
                                    doc.as_str(),
                                    peer.as_str(),
                                    reason.as_str(),
                                    u64::try_from(*len).unwrap_or(u64::MAX),
                                    sha256,
                                    bytes.as_slice(),
                                ),
                            )
                            .map_err(db_err)?;
                    }
                    Persist::Audit { at_ms, text } => {
                        audit.insert(seq, (*at_ms, text.as_str())).map_err(db_err)?;
                    }
                }
            }
            meta.insert("seq", seq).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Loads every document and its attestations into `engine`, compacting documents with many
    /// chunks first.
    pub fn load_into(&self, engine: &mut Engine) -> Result<LoadReport, StoreError> {
        load(
            &*self.db,
            engine,
            Some(&|doc, saved| self.compact(doc, saved)),
        )
    }

    /// Opens an existing store to read only: nothing on disk changes, not even the header redb
    /// rewrites when a database opened for writing closes. A command whose outcome writes
    /// nothing (a refusal, a read) leaves the store byte-for-byte as it was (`admin::execute`).
    pub fn open_read_only(path: &Path) -> Result<Snapshot, StoreError> {
        let db = redb::ReadOnlyDatabase::open(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        // An older schema reads as this one (its documents are kept alike); a newer may not.
        let (_, found) = read_schema(&db)?;
        if found > STORE_SCHEMA {
            return Err(StoreError::NewerSchema {
                path: path.display().to_string(),
                found,
            });
        }
        Ok(Snapshot { db })
    }
}

/// A store opened to read only ([`Store::open_read_only`]).
pub struct Snapshot {
    db: redb::ReadOnlyDatabase,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl Snapshot {
    /// Loads every stored document into `engine`, as [`Store::load_into`] does.
    pub fn load_into(&self, engine: &mut Engine) -> Result<LoadReport, StoreError> {
        load(&self.db, engine, None)
    }

    /// The number of the last record written, for [`Store::apply_after`].
    pub fn seq(&self) -> Result<u64, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        let meta = rx.open_table(META).map_err(db_err)?;
        Ok(meta.get("seq").map_err(db_err)?.map_or(0, |v| v.value()))
    }
}

/// The schema of the store at `path`, read without writing: for `doctor`, which reports it
/// before the node upgrades it.
pub fn schema_of(path: &Path) -> Result<u64, StoreError> {
    let db = redb::ReadOnlyDatabase::open(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(read_schema(&db)?.1)
}

/// The tables a store has, and its schema: 1 when it records none (every store before the
/// schema was recorded).
fn read_schema(
    db: &impl ReadableDatabase,
) -> Result<(std::collections::BTreeSet<String>, u64), StoreError> {
    let rx = db.begin_read().map_err(db_err)?;
    let present: std::collections::BTreeSet<String> = rx
        .list_tables()
        .map_err(db_err)?
        .map(|t| t.name().to_owned())
        .collect();
    let schema = if present.contains(META.name()) {
        rx.open_table(META)
            .map_err(db_err)?
            .get(SCHEMA_KEY)
            .map_err(db_err)?
            .map_or(1, |v| v.value())
    } else {
        1
    };
    Ok((present, schema))
}

/// Rewrites a document's chunks as one save: a store opened for writing does; a snapshot not.
type Compact<'a> = Option<&'a dyn Fn(&str, &[u8]) -> Result<(), StoreError>>;

/// Loads every document `db` holds into `engine`, compacting those of many chunks if `compact`.
fn load(
    db: &impl ReadableDatabase,
    engine: &mut Engine,
    compact: Compact<'_>,
) -> Result<LoadReport, StoreError> {
    let mut report = LoadReport::default();
    let rx = db.begin_read().map_err(db_err)?;
    let changes = rx.open_table(CHANGES).map_err(db_err)?;
    let attestations = rx.open_table(ATTESTATIONS).map_err(db_err)?;
    let mut docs: Vec<(String, Vec<u8>, usize)> = Vec::new();
    for row in changes.iter().map_err(db_err)? {
        let (key, value) = row.map_err(db_err)?;
        let (doc, _) = key.value();
        match docs.last_mut() {
            Some((last, bytes, count)) if last == doc => {
                bytes.extend_from_slice(value.value());
                *count += 1;
            }
            _ => docs.push((doc.to_owned(), value.value().to_vec(), 1)),
        }
    }
    let mut endorsements: std::collections::BTreeMap<String, Vec<Endorsed>> = Default::default();
    for row in attestations.iter().map_err(db_err)? {
        let (key, value) = row.map_err(db_err)?;
        let (doc, _) = key.value();
        let raw = value.value();
        let corrupt = |message: &str| StoreError::Corrupt {
            what: format!("attestation of {doc}"),
            message: message.into(),
        };
        let len = raw
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| corrupt("short"))?;
        let cert = raw
            .get(4..4 + len)
            .ok_or_else(|| corrupt("short"))?
            .to_vec();
        let att = raw.get(4 + len..).ok_or_else(|| corrupt("short"))?.to_vec();
        endorsements
            .entry(doc.to_owned())
            .or_default()
            .push((cert, att));
        report.attestations += 1;
    }
    drop((changes, attestations));
    drop(rx);
    for (doc_text, bytes, count) in docs {
        let doc: DocId =
            doc_text
                .parse()
                .map_err(|e: giasync_shared::DomainError| StoreError::Corrupt {
                    what: format!("document id {doc_text:?}"),
                    message: e.to_string(),
                })?;
        let loaded = engine.load_doc(
            doc,
            &bytes,
            endorsements.get(&doc_text).map_or(&[][..], Vec::as_slice),
        );
        if let Err(e) = loaded {
            tracing::warn!(doc = %doc_text, error = %e, "a stored document does not load; the node starts without it");
            report.docs_refused.push((doc_text, e.to_string()));
            continue;
        }
        report.docs += 1;
        report.chunks += count;
        if count >= COMPACT_CHUNKS_MIN
            && let (Some(compact), Some(doc_state)) = (compact, engine.doc(&doc))
        {
            compact(&doc_text, &doc_state.save())?;
            report.compacted += 1;
        }
    }
    Ok(report)
}

impl Store {
    /// Replaces a document's chunks by one full save, atomically.
    fn compact(&self, doc: &str, saved: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut changes = tx.open_table(CHANGES).map_err(db_err)?;
            changes
                .retain_in((doc, 0)..=(doc, u64::MAX), |_, _| false)
                .map_err(db_err)?;
            changes.insert((doc, 0), saved).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// The last `limit` audit lines, oldest first.
    pub fn audit_tail(&self, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        let audit = rx.open_table(AUDIT).map_err(db_err)?;
        let mut lines: Vec<(i64, String)> = audit
            .iter()
            .map_err(db_err)?
            .rev()
            .take(limit)
            .map(|row| {
                row.map(|(_, v)| {
                    let (at, text) = v.value();
                    (at, text.to_owned())
                })
                .map_err(db_err)
            })
            .collect::<Result<_, _>>()?;
        lines.reverse();
        Ok(lines)
    }

    /// How many messages were quarantined.
    pub fn quarantined(&self) -> Result<u64, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        let quarantine = rx.open_table(QUARANTINE_V2).map_err(db_err)?;
        quarantine.len().map_err(db_err)
    }
}

pub(crate) fn db_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Db(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A disk that loses every write not yet synced when it "crashes", and crashes on the
    /// `writes_left`-th write.
    #[derive(Debug, Default)]
    struct DiskState {
        durable: Vec<u8>,
        volatile: Vec<u8>,
        writes_left: Option<usize>,
        crashed: bool,
        writes: usize,
    }

    #[derive(Debug, Clone, Default)]
    struct Disk(Arc<Mutex<DiskState>>);

    fn crashed() -> std::io::Error {
        std::io::Error::other("crashed")
    }

    impl Disk {
        fn step(&self) -> Result<std::sync::MutexGuard<'_, DiskState>, std::io::Error> {
            let mut d = self.0.lock().map_err(|_| crashed())?;
            if d.crashed {
                return Err(crashed());
            }
            d.writes += 1;
            match d.writes_left {
                Some(0) => {
                    d.crashed = true;
                    Err(crashed())
                }
                Some(n) => {
                    d.writes_left = Some(n - 1);
                    Ok(d)
                }
                None => Ok(d),
            }
        }
    }

    impl redb::StorageBackend for Disk {
        fn len(&self) -> Result<u64, std::io::Error> {
            Ok(self.0.lock().map_err(|_| crashed())?.volatile.len() as u64)
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            let d = self.0.lock().map_err(|_| crashed())?;
            let start = usize::try_from(offset).map_err(|_| crashed())?;
            let slice = d
                .volatile
                .get(start..start + out.len())
                .ok_or_else(|| std::io::Error::other("read past the end"))?;
            out.copy_from_slice(slice);
            Ok(())
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            let mut d = self.step()?;
            d.volatile
                .resize(usize::try_from(len).map_err(|_| crashed())?, 0);
            Ok(())
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            let mut d = self.step()?;
            d.durable = d.volatile.clone();
            Ok(())
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            let mut d = self.step()?;
            let start = usize::try_from(offset).map_err(|_| crashed())?;
            if d.volatile.len() < start + data.len() {
                d.volatile.resize(start + data.len(), 0);
            }
            d.volatile[start..start + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    /// A disk holding `durable` bytes, as a machine finds it after a crash.
    fn disk_holding(durable: &[u8]) -> Disk {
        let disk = Disk::default();
        {
            let mut d = disk.0.lock().unwrap();
            d.volatile = durable.to_vec();
            d.durable = durable.to_vec();
        }
        disk
    }

    fn batch(i: usize) -> Vec<Persist> {
        vec![
            Persist::Audit {
                at_ms: i as i64,
                text: format!("batch {i}"),
            },
            Persist::Audit {
                at_ms: i as i64,
                text: "x".repeat(300 + i * 37),
            },
        ]
    }

    /// Runs batches on a disk that crashes at write `crash_at`; returns the batches whose
    /// commit returned, and the durable bytes left.
    fn run_until_crash(crash_at: Option<usize>) -> (Vec<usize>, Vec<u8>, usize) {
        let disk = Disk::default();
        disk.0.lock().unwrap().writes_left = crash_at;
        let mut acknowledged = Vec::new();
        if let Ok(store) = Store::open_with_backend(disk.clone()) {
            for i in 0..12 {
                if store.apply(&batch(i)).is_err() {
                    break;
                }
                acknowledged.push(i);
            }
        }
        let d = disk.0.lock().unwrap();
        (acknowledged, d.durable.clone(), d.writes)
    }

    #[test]
    fn a_crash_at_any_write_keeps_every_acknowledged_batch_and_a_readable_store() {
        let (all, _, writes_total) = run_until_crash(None);
        assert_eq!(all.len(), 12);
        let (mut interrupted, mut moved_aside) = (0, 0);
        for crash_at in 0..writes_total {
            let (acknowledged, durable, _) = run_until_crash(Some(crash_at));
            let durable_copy = durable.clone();
            let store = match Store::open_with_backend(disk_holding(&durable)) {
                Ok(store) => store,
                // A crash during the very first creation: nothing was committed. `Store::open`,
                // the production path, opens such a file from disk: it moves it aside when redb
                // cannot, and creates the store again.
                Err(_) if is_interrupted_creation(&durable_copy) && acknowledged.is_empty() => {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("store.redb");
                    std::fs::write(&path, &durable_copy).unwrap();
                    let reopened = Store::open(&path).unwrap_or_else(|e| {
                        panic!(
                            "crash at write {crash_at}: an interrupted creation does not open: {e}"
                        )
                    });
                    assert!(
                        reopened.audit_tail(10).unwrap().is_empty(),
                        "crash at write {crash_at}: a store created again holds nothing"
                    );
                    interrupted += 1;
                    moved_aside += usize::from(path.with_extension("redb.interrupted").exists());
                    continue;
                }
                Err(e) => panic!(
                    "crash at write {crash_at}: the store does not open again: {e} ({} bytes, {} non-zero, first {:?})",
                    durable_copy.len(),
                    durable_copy.iter().filter(|b| **b != 0).count(),
                    &durable_copy[..durable_copy.len().min(16)]
                ),
            };
            let audit: Vec<String> = store
                .audit_tail(1000)
                .unwrap()
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            for i in &acknowledged {
                assert!(
                    audit.contains(&format!("batch {i}")),
                    "crash at write {crash_at}: acknowledged batch {i} is lost"
                );
            }
            // Batches are whole: each batch's two lines both, or neither.
            for i in 0..12 {
                let first = audit.contains(&format!("batch {i}"));
                let second = audit.contains(&"x".repeat(300 + i * 37));
                assert_eq!(
                    first, second,
                    "crash at write {crash_at}: batch {i} is half written"
                );
            }
        }
        // The crashes during creation did happen, and went through `Store::open`.
        assert!(interrupted > 0, "no crash interrupted the store's creation");
        assert_eq!(
            moved_aside, interrupted,
            "redb reopened an interrupted creation itself: the move-aside did not run for it"
        );
    }

    /// A school's node and its protocol, with the in-memory CA that vouches for it.
    pub(super) fn school_engine(ca: &giasync_shared::sync::FixedCa) -> (Engine, DocId) {
        use giasync_shared::codes::{MunicipalityCode, OrgCode, RegionCode, SchoolCode};
        let identity = giasync_shared::sync::NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org: OrgCode::School(SchoolCode::new("420101").unwrap()),
            municipality: Some(MunicipalityCode::new("4201").unwrap()),
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let cert = ca.issue(identity, &key);
        let engine = Engine::new(identity, key, cert, Box::new(ca.clone()));
        (
            engine,
            "protocol/4201/420101/is-2024-02-14".parse().unwrap(),
        )
    }

    /// Batches as the engine makes them: batch `i` is one change putting `sheet-i` into the
    /// protocol (the engine's `Changes` and `Attestation` records), and an audit line naming it.
    fn engine_batches(count: usize) -> Vec<Vec<Persist>> {
        let ca = giasync_shared::sync::FixedCa::default();
        let (mut engine, protocol) = school_engine(&ca);
        (0..count)
            .map(|i| {
                engine
                    .change(1_707_876_000_000 + i as i64, protocol, |tx| {
                        automerge::transaction::Transactable::put(
                            tx,
                            automerge::ROOT,
                            format!("sheet-{i}"),
                            "15 зачёт",
                        )
                        .map(|_| ())
                    })
                    .unwrap();
                let mut batch: Vec<Persist> = std::iter::from_fn(|| engine.poll_output())
                    .filter_map(|o| match o {
                        giasync_shared::sync::Output::Persist(p) => Some(p),
                        _ => None,
                    })
                    .collect();
                assert!(
                    batch.iter().any(|p| matches!(p, Persist::Changes { .. }))
                        && batch
                            .iter()
                            .any(|p| matches!(p, Persist::Attestation { .. })),
                    "{batch:?}"
                );
                batch.push(Persist::Audit {
                    at_ms: i as i64,
                    text: format!("batch {i}"),
                });
                batch
            })
            .collect()
    }

    /// The engine's own batches (changes, attestations, audit) on a disk that crashes at every
    /// write in turn: after a restart every acknowledged batch is held, each batch is there
    /// whole or not at all (its change iff its audit line), the attestation checks again, and a
    /// document of many chunks is compacted into one without changing it.
    #[test]
    fn a_crash_at_any_write_keeps_every_acknowledged_change_whole_and_compacts_after() {
        let batches = engine_batches(COMPACT_CHUNKS_MIN + 2);
        let run = |crash_at: Option<usize>| {
            let disk = Disk::default();
            disk.0.lock().unwrap().writes_left = crash_at;
            let mut acknowledged = 0;
            if let Ok(store) = Store::open_with_backend(disk.clone()) {
                for batch in &batches {
                    if store.apply(batch).is_err() {
                        break;
                    }
                    acknowledged += 1;
                }
            }
            let d = disk.0.lock().unwrap();
            (acknowledged, d.durable.clone(), d.writes)
        };
        let (all, _, writes_total) = run(None);
        assert_eq!(all, batches.len());
        let reopen = |durable: &[u8]| Store::open_with_backend(disk_holding(durable));
        let mut compacted_checked = false;
        for crash_at in 0..writes_total {
            let (acknowledged, durable, _) = run(Some(crash_at));
            let Ok(store) = reopen(&durable) else {
                assert!(
                    acknowledged == 0 && is_interrupted_creation(&durable),
                    "crash at write {crash_at}: the store does not open again"
                );
                continue;
            };
            let ca = giasync_shared::sync::FixedCa::default();
            let (mut engine, protocol) = school_engine(&ca);
            let report = store.load_into(&mut engine).unwrap();
            assert!(report.docs_refused.is_empty(), "{report:?}");
            assert_eq!(engine.stats().attestations_refused_on_load, 0);
            let audit: Vec<String> = store
                .audit_tail(1000)
                .unwrap()
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            let held = |i: usize| {
                engine.doc(&protocol).is_some_and(|d| {
                    automerge::ReadDoc::get(d, automerge::ROOT, format!("sheet-{i}"))
                        .ok()
                        .flatten()
                        .is_some()
                })
            };
            let mut present = 0;
            let logged_any = audit.iter().any(|t| t.starts_with("batch "));
            assert_eq!(
                report.attestations,
                usize::from(logged_any),
                "crash at write {crash_at}: the author's attestation"
            );
            for i in 0..batches.len() {
                let logged = audit.contains(&format!("batch {i}"));
                assert_eq!(
                    held(i),
                    logged,
                    "crash at write {crash_at}: batch {i} half there"
                );
                assert!(
                    i >= acknowledged || logged,
                    "crash at write {crash_at}: acknowledged batch {i} is lost"
                );
                present += usize::from(logged);
            }
            // What is there is the acknowledged batches and perhaps the one in flight.
            assert!(present == acknowledged || present == acknowledged + 1);
            if present >= COMPACT_CHUNKS_MIN {
                assert_eq!(report.compacted, 1, "crash at write {crash_at}");
                let heads = engine.doc(&protocol).unwrap().get_heads();
                let (mut again, _) = school_engine(&ca);
                let second = store.load_into(&mut again).unwrap();
                assert_eq!((second.chunks, second.compacted), (1, 0));
                assert_eq!(again.doc(&protocol).unwrap().get_heads(), heads);
                compacted_checked = true;
            }
        }
        assert!(compacted_checked);
    }

    /// A crash during the very first creation leaves a file without redb's magic number:
    /// `Store::open` moves it aside and creates the store again, and the node goes on.
    #[test]
    fn a_store_whose_creation_was_interrupted_is_moved_aside_and_made_again() {
        // The crash points of the first creation that leave a file redb will not open.
        let (_, _, writes_total) = run_until_crash(None);
        let durable = (0..writes_total)
            .map(|crash_at| run_until_crash(Some(crash_at)).1)
            .find(|durable| {
                is_interrupted_creation(durable)
                    && Store::open_with_backend(disk_holding(durable)).is_err()
            })
            .expect("some crash during creation leaves a file redb does not open");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        std::fs::write(&path, &durable).unwrap();
        let store = Store::open(&path).unwrap();
        store.apply(&batch(0)).unwrap();
        assert!(
            store
                .audit_tail(10)
                .unwrap()
                .iter()
                .any(|(_, t)| t == "batch 0")
        );
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "node.redb")
            .collect();
        assert_eq!(
            aside.len(),
            1,
            "the interrupted file is kept aside: {aside:?}"
        );
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    fn audit(text: &str) -> Persist {
        Persist::Audit {
            at_ms: 1,
            text: text.to_owned(),
        }
    }

    /// Records computed on a snapshot are refused, and nothing written, when the store changed
    /// since (two offline commands at once, or the node ran in between); else written.
    #[test]
    fn a_write_computed_on_an_old_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        Store::open(&path)
            .unwrap()
            .apply(&[audit("first")])
            .unwrap();
        let seen = Store::open_read_only(&path).unwrap().seq().unwrap();
        assert_eq!(seen, 1);
        // Another command writes in between.
        Store::open(&path)
            .unwrap()
            .apply(&[audit("other")])
            .unwrap();
        let store = Store::open(&path).unwrap();
        let refused = store.apply_after(&[audit("late")], seen);
        assert!(
            matches!(refused, Err(StoreError::ChangedMeanwhile)),
            "{refused:?}"
        );
        let lines: Vec<String> = store
            .audit_tail(10)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(lines, ["first", "other"]);
        store.apply_after(&[audit("fresh")], 2).unwrap();
        assert_eq!(store.audit_tail(10).unwrap().len(), 3);
    }
}

#[cfg(test)]
mod schema_tests {
    use automerge::ReadDoc as _;

    use super::*;

    /// A store written by giasync before the schema was recorded (schema 1): three sheet
    /// changes of a school's protocol with their attestations and audit lines, and one
    /// quarantined message. Made by that build's `Store::apply`; kept as it wrote it.
    const SCHEMA_1_STORE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-schema-1.redb"
    );

    fn copy_of(fixture: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        std::fs::copy(fixture, &path).unwrap();
        (dir, path)
    }

    fn sheets_loaded(load: impl FnOnce(&mut Engine) -> LoadReport) -> Vec<String> {
        let ca = giasync_shared::sync::FixedCa::default();
        let (mut engine, protocol) = super::tests::school_engine(&ca);
        let report = load(&mut engine);
        assert!(report.docs_refused.is_empty(), "{report:?}");
        let doc = engine.doc(&protocol).expect("the protocol loads");
        doc.keys(automerge::ROOT).collect()
    }

    #[test]
    fn a_store_of_schema_1_is_read_as_it_is_and_upgraded_when_opened_for_writing() {
        let (_dir, path) = copy_of(SCHEMA_1_STORE);
        let before = std::fs::read(&path).unwrap();

        // A command that only reads (a snapshot) reads it without changing a byte.
        let snapshot = Store::open_read_only(&path).unwrap();
        let sheets = sheets_loaded(|e| snapshot.load_into(e).unwrap());
        assert_eq!(sheets, ["sheet-0", "sheet-1", "sheet-2"]);
        let seq = snapshot.seq().unwrap();
        drop(snapshot);
        assert!(std::fs::read(&path).unwrap() == before, "a snapshot wrote");

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema().unwrap(), STORE_SCHEMA);
        assert_eq!(
            sheets_loaded(|e| store.load_into(e).unwrap()),
            ["sheet-0", "sheet-1", "sheet-2"]
        );
        assert_eq!(store.quarantined().unwrap(), 1);
        let audit: Vec<String> = store
            .audit_tail(10)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(audit, ["batch 0", "batch 1", "batch 2"]);
        // The upgrade wrote no record: a write computed on a snapshot before it still lands.
        store
            .apply_after(
                &[Persist::Audit {
                    at_ms: 1,
                    text: "after the upgrade".into(),
                }],
                seq,
            )
            .unwrap();
        drop(store);

        // Upgraded once: opened again, it is as it was left.
        let again = Store::open(&path).unwrap();
        assert_eq!(again.schema().unwrap(), STORE_SCHEMA);
        assert_eq!(again.quarantined().unwrap(), 1);
        assert_eq!(again.audit_tail(10).unwrap().len(), 4);
    }

    /// Schema 1's quarantine rows (the whole refused message) become schema 2's (its hash and
    /// length, its first bytes), under the same sequence numbers.
    #[test]
    fn the_upgrade_to_schema_2_moves_the_old_quarantine_rows() {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let refused = vec![7u8; giasync_shared::sync::QUARANTINE_KEPT_BYTES_MAX + 100];
        {
            // As schema 1 wrote it: its tables, a message in the old quarantine, no schema.
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                tx.open_table(CHANGES).unwrap();
                tx.open_table(ATTESTATIONS).unwrap();
                tx.open_table(QUARANTINE_V2).unwrap();
                tx.open_table(AUDIT).unwrap();
                let mut meta = tx.open_table(META).unwrap();
                meta.insert("seq", 5).unwrap();
                let mut old = tx.open_table(QUARANTINE).unwrap();
                old.insert(5, ("protocol/x", "giasync://peer", "forged", &refused[..]))
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema().unwrap(), 2);
        assert_eq!(store.quarantined().unwrap(), 1);
        let rx = store.db.begin_read().unwrap();
        assert!(
            !rx.list_tables()
                .unwrap()
                .any(|t| t.name() == QUARANTINE.name())
        );
        let moved = rx.open_table(QUARANTINE_V2).unwrap();
        let row = moved
            .get(5)
            .unwrap()
            .expect("kept under its sequence number");
        let (doc, peer, reason, len, sha256, kept) = row.value();
        assert_eq!(
            (doc, peer, reason),
            ("protocol/x", "giasync://peer", "forged")
        );
        assert_eq!(len, refused.len() as u64);
        assert_eq!(*sha256, <[u8; 32]>::from(sha2::Sha256::digest(&refused)));
        assert_eq!(
            kept,
            &refused[..giasync_shared::sync::QUARANTINE_KEPT_BYTES_MAX]
        );
    }

    /// A store a newer giasync wrote is refused by name, for writing and for reading, and left
    /// byte-for-byte as it was.
    #[test]
    fn a_store_of_a_newer_schema_is_refused_and_left_as_it_is() {
        let (_dir, path) = copy_of(SCHEMA_1_STORE);
        drop(Store::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, STORE_SCHEMA + 1)
                .unwrap();
            tx.commit().unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let refused = Store::open(&path).unwrap_err();
        assert!(
            matches!(refused, StoreError::NewerSchema { found, .. } if found == STORE_SCHEMA + 1),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("newer giasync"), "{refused}");
        let refused = Store::open_read_only(&path).unwrap_err();
        assert!(
            matches!(refused, StoreError::NewerSchema { .. }),
            "{refused:?}"
        );
        assert!(
            std::fs::read(&path).unwrap() == before,
            "a refused store was written"
        );
    }
}
