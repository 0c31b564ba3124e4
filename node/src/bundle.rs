//! Bundles on removable media (`giasync_shared::bundle`): a school writes its recordings (and,
//! with `--documents`, its documents) to a folder, signed by its node key; a hub checks the
//! signature, the certificate and every file before taking anything in.
//!
//! The work is split so that a running node never copies gigabytes on its engine thread:
//! [`collect`] and the signing read the engine; [`write_files`], [`seal`] and [`open`] do the
//! files; [`take_documents`] hands the checked frames to the engine.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use giasync_shared::blob::BlobRef;
use giasync_shared::bundle::{
    BLOBS_DIR, BundleError, CERT_FILE, DOCS_DIR, MANIFEST_FILE, Manifest, SIGNATURE_FILE,
    verify_signature,
};
use giasync_shared::identity::NodeIdentity;
use giasync_shared::recording;
use giasync_shared::sync::{CertVerifier, DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::blobs::BlobFiles;

/// What a bundle is made of, read from the engine.
#[derive(Debug, Clone)]
pub struct Collected {
    pub node: NodeIdentity,
    pub blobs: Vec<BlobRef>,
    pub docs: Vec<(DocId, Vec<u8>)>,
}

/// What was written or read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleDone {
    pub node: String,
    pub recordings: usize,
    pub documents: usize,
    pub bytes: u64,
}

fn err(path: &Path, e: impl std::fmt::Display) -> BundleError {
    BundleError(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to a new file at `path` and waits until they are on the medium.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).map_err(|e| err(path, e))?;
    file.write_all(bytes).map_err(|e| err(path, e))?;
    file.sync_all().map_err(|e| err(path, e))
}

/// Waits until the names in folder `dir` are on the medium.
fn sync_folder(dir: &Path) -> Result<(), BundleError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, e))
}

/// The recordings this node's protocols name, and with `documents` the documents it writes
/// (a school's roster, protocol and results), each as one frame. With `for_school`, at the
/// РЦОИ: its documents for that school (its results, receipts, register) and no recordings,
/// for a school on the direct route (seed 003 §2.5).
#[must_use]
pub fn collect(
    engine: &Engine,
    documents: bool,
    for_school: Option<giasync_shared::codes::SchoolCode>,
) -> Collected {
    let me = engine.identity();
    let mut blobs = Vec::new();
    let mut docs = Vec::new();
    if let Some(school) = for_school {
        for id in engine.doc_ids() {
            if id.kind() == Some(DocKind::Rcoi)
                && id.school() == Some(school)
                && id.writable_by(&me)
                && let Some(frame) = engine.bundle_frame(id)
            {
                docs.push((*id, frame));
            }
        }
        return Collected {
            node: me,
            blobs,
            docs,
        };
    }
    for id in engine.doc_ids().copied().collect::<Vec<_>>() {
        if !id.writable_by(&me) || id.kind() == Some(DocKind::Rcoi) {
            continue;
        }
        if id.kind() == Some(DocKind::Protocol)
            && let Some(doc) = engine.doc(&id)
        {
            blobs.extend(recording::recordings(doc).values().map(|r| r.blob));
        }
        if documents && let Some(frame) = engine.bundle_frame(&id) {
            docs.push((id, frame));
        }
    }
    blobs.sort();
    blobs.dedup();
    Collected {
        node: me,
        blobs,
        docs,
    }
}

/// At the РЦОИ, before writing its bundle for `school`: its documents for the school holding
/// published results. Refused at any other node, and for a school with nothing published.
pub fn to_hand_over(
    engine: &Engine,
    school: giasync_shared::codes::SchoolCode,
) -> Result<Vec<DocId>, BundleError> {
    use giasync_shared::codes::OrgCode;
    if !matches!(engine.identity().org, OrgCode::Rcoi(_)) {
        return Err(BundleError(
            "a bundle for a school is written at the РЦОИ (its results on removable media)".into(),
        ));
    }
    let published: Vec<DocId> = engine
        .doc_ids()
        .filter(|d| d.kind() == Some(DocKind::Rcoi) && d.school() == Some(school))
        .filter(|d| {
            engine
                .doc(d)
                .is_some_and(|doc| !giasync_shared::content::publications(doc).is_empty())
        })
        .copied()
        .collect();
    if published.is_empty() {
        return Err(BundleError(format!(
            "the РЦОИ holds no published results of school {school}: publish them first"
        )));
    }
    Ok(published)
}

/// At the РЦОИ, once its bundle for a school is sealed: records in each of `docs` that its
/// newest edition of results was handed over now (the direct route's "results to the school"
/// step, seed 003 §2.5; the first handover of an edition counts).
pub fn hand_over(engine: &mut Engine, now_ms: i64, docs: &[DocId]) -> Result<(), BundleError> {
    let at = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms)
        .map_err(|e| BundleError(e.to_string()))?;
    for doc in docs {
        let Some(edition) = engine
            .doc(doc)
            .map(giasync_shared::content::next_edition)
            .and_then(|next| next.checked_sub(1))
            .filter(|e| *e > 0)
        else {
            continue;
        };
        engine
            .change(now_ms, *doc, |tx| {
                giasync_shared::content::put_handed_over(tx, edition, at)
            })
            .map_err(|e| BundleError(e.to_string()))?;
    }
    Ok(())
}

/// Copies the recordings held here and writes the documents into `dir` (made if missing);
/// gives the manifest to sign. Recordings not held here (destroyed) are left out.
pub fn write_files(
    dir: &Path,
    files: &BlobFiles,
    collected: &Collected,
    now_ms: i64,
) -> Result<(Manifest, u64), BundleError> {
    for sub in [dir.join(BLOBS_DIR), dir.join(DOCS_DIR)] {
        std::fs::create_dir_all(&sub).map_err(|e| err(&sub, e))?;
    }
    let mut manifest = Manifest {
        node: collected.node,
        made_ms: now_ms,
        blobs: Vec::new(),
        docs: Vec::new(),
    };
    let mut bytes = 0;
    for blob in &collected.blobs {
        let Ok(mut from) = files.held(&blob.hash) else {
            continue;
        };
        let path = dir.join(BLOBS_DIR).join(blob.hash.to_string());
        let mut to = std::fs::File::create(&path).map_err(|e| err(&path, e))?;
        std::io::copy(&mut from, &mut to).map_err(|e| err(&path, e))?;
        to.sync_all().map_err(|e| err(&path, e))?;
        manifest.blobs.push(*blob);
        bytes += blob.bytes;
    }
    for (n, (doc, frame)) in collected.docs.iter().enumerate() {
        let path = dir.join(DOCS_DIR).join(n.to_string());
        write_synced(&path, frame)?;
        manifest
            .docs
            .push((n, *doc, Sha256::digest(frame).into(), frame.len() as u64));
        bytes += frame.len() as u64;
    }
    for sub in [dir.join(BLOBS_DIR), dir.join(DOCS_DIR)] {
        sync_folder(&sub)?;
    }
    Ok((manifest, bytes))
}

/// Writes the manifest, its signature and the node's certificate: the bundle is complete, and
/// on the medium when this returns (its hand-over is recorded then: a stick pulled out
/// without unmounting must not leave a bundle recorded as handed over that cannot be read).
pub fn seal(
    dir: &Path,
    manifest: &Manifest,
    signature: &[u8; 64],
    cert: &[u8],
) -> Result<(), BundleError> {
    for (name, bytes) in [
        (MANIFEST_FILE, manifest.to_text().into_bytes()),
        (SIGNATURE_FILE, signature.to_vec()),
        (CERT_FILE, cert.to_vec()),
    ] {
        write_synced(&dir.join(name), &bytes)?;
    }
    sync_folder(dir)?;
    // The bundle's folder may be new (`write_files` makes it): its name must reach the medium
    // too.
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_folder(parent),
        None => sync_folder(Path::new(".")),
    }
}

/// Whether a checked bundle is one `me` may take in. A hub takes in a school's bundle (the
/// engine then judges each document as if the school had sent it). A school takes in only the
/// РЦОИ's bundle of its documents for this school (the direct route, seed 003 §2.5): signed by
/// the РЦОИ, no recordings, every document this school's РЦОИ document — checked before anything
/// reaches the engine or its quarantine, so another school's bundle leaves no trace here.
pub fn fits(checked: &Checked, me: NodeIdentity) -> Result<(), BundleError> {
    use giasync_shared::codes::OrgCode;
    let OrgCode::School(school) = me.org else {
        return Ok(());
    };
    if !matches!(checked.node.org, OrgCode::Rcoi(_)) {
        return Err(BundleError(format!(
            "a school takes in only the РЦОИ's bundle for it; this one is signed by {}",
            checked.node
        )));
    }
    if !checked.blobs.is_empty() {
        return Err(BundleError(format!(
            "the bundle holds {} recordings: the РЦОИ's bundle for a school holds its documents only",
            checked.blobs.len()
        )));
    }
    for (doc, frame) in &checked.docs {
        let inside = match giasync_shared::sync::wire::Frame::decode(frame) {
            Ok(giasync_shared::sync::wire::Frame::Sync { doc, .. }) => Some(doc),
            _ => None,
        };
        let ours = |d: &DocId| {
            matches!(d, DocId::School { kind: DocKind::Rcoi, school: s, municipality, .. }
                if *s == school && Some(*municipality) == me.municipality)
        };
        if !ours(doc) || inside.as_ref() != Some(doc) {
            return Err(BundleError(format!(
                "the bundle is for another school: it holds {doc}, this is school {school}"
            )));
        }
    }
    Ok(())
}

/// A bundle whose signature, certificate and every file were checked.
#[derive(Debug)]
pub struct Checked {
    pub node: NodeIdentity,
    pub blobs: Vec<(BlobRef, PathBuf)>,
    pub docs: Vec<(DocId, Vec<u8>)>,
}

/// Checks a bundle before anything of it is taken in: the certificate is a node's of this
/// region's CA and not revoked, it is the node the manifest names, the manifest's signature is
/// its key's, and every file listed is there with its length and hash.
pub fn open(dir: &Path, verifier: &dyn CertVerifier) -> Result<Checked, BundleError> {
    let read = |name: &str| {
        let path = dir.join(name);
        let len = std::fs::metadata(&path).map_err(|e| err(&path, e))?.len();
        if len > giasync_shared::bundle::MANIFEST_BYTES_MAX {
            return Err(err(
                &path,
                format!("{len} bytes: too large for a bundle's file"),
            ));
        }
        std::fs::read(&path).map_err(|e| err(&path, e))
    };
    let (text, signature, cert) = (
        read(MANIFEST_FILE)?,
        read(SIGNATURE_FILE)?,
        read(CERT_FILE)?,
    );
    let (identity, key) = verifier
        .node_key(&cert)
        .map_err(|why| BundleError(format!("the node's certificate: {why}")))?;
    verify_signature(&text, &signature, &key)?;
    let text =
        String::from_utf8(text).map_err(|_| BundleError("the manifest is not UTF-8".into()))?;
    let manifest = Manifest::parse(&text)?;
    if manifest.node != identity {
        return Err(BundleError(format!(
            "the manifest names {}, the certificate is {identity}",
            manifest.node
        )));
    }
    let mut blobs = Vec::new();
    for blob in &manifest.blobs {
        let path = dir.join(BLOBS_DIR).join(blob.hash.to_string());
        let mut file = std::fs::File::open(&path).map_err(|e| err(&path, e))?;
        let len = file.metadata().map_err(|e| err(&path, e))?.len();
        if len != blob.bytes {
            return Err(err(
                &path,
                format!("{len} bytes, the manifest says {}", blob.bytes),
            ));
        }
        let mut hasher = bao_tree::blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|e| err(&path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if hasher.finalize().as_bytes() != &blob.hash.0 {
            return Err(err(&path, "its bytes do not hash to its name"));
        }
        blobs.push((*blob, path));
    }
    let mut docs = Vec::new();
    for (n, doc, sha, len) in &manifest.docs {
        let path = dir.join(DOCS_DIR).join(n.to_string());
        let frame = std::fs::read(&path).map_err(|e| err(&path, e))?;
        if frame.len() as u64 != *len || <[u8; 32]>::from(Sha256::digest(&frame)) != *sha {
            return Err(err(&path, "not the document the manifest lists"));
        }
        docs.push((*doc, frame));
    }
    Ok(Checked {
        node: identity,
        blobs,
        docs,
    })
}

/// Hands a checked bundle's documents to the engine, judged as frames from its node; the
/// documents not taken whole, by id.
pub fn take_documents(
    engine: &mut Engine,
    now_ms: i64,
    checked_node: NodeIdentity,
    docs: &[(DocId, Vec<u8>)],
) -> Vec<DocId> {
    docs.iter()
        .filter(|(_, frame)| !engine.receive_bundled(now_ms, checked_node, frame))
        .map(|(doc, _)| *doc)
        .collect()
}
