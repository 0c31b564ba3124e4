//! The exam materials (КИМ) at each node (`giasync_shared::materials`, seed 002 §26, §30):
//!
//! - the РЦОИ names an exam's encrypted package in the region directory ([`announce`]) and, at
//!   07:30 of the exam day on its own clock, releases the code there ([`release`], [`due`]);
//! - every hub and school fetches the package as a blob named by the directory ([`plan`]);
//! - a school opens its copy with the released code ([`to_open`]) or, offline, with the reserve
//!   code read to it ([`check_code`]: a wrong code is refused and counted in its protocol), and
//!   records when and how ([`record_opened`]).
//!
//! Decrypting and encrypting are the driver's (`crate::materials`): here is what is decided.

use giasync_shared::blob::BlobRef;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::NodeRole;
use giasync_shared::content::{self, StoredMaterials};
use giasync_shared::exam::ExamId;
use giasync_shared::materials::{
    OpenedBy, Package, Release, ReleaseCode, SALT_BYTES, release_time,
};
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Context, Error, RcoiDuty, require_rcoi, school_doc, timestamp};
use crate::run_blobs::BlobPlan;

/// An exam's materials as a node sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamMaterials {
    pub exam: ExamId,
    /// The package, once the directory names one that verifies.
    pub package: Option<PackageLine>,
    /// Why the directory's package or release does not verify, if it does not.
    pub problem: Option<String>,
    /// When the РЦОИ released the code.
    pub released: Option<Timestamp>,
    /// At a school: when and how it opened its copy.
    pub opened: Option<Timestamp>,
    pub opened_by: Option<String>,
    /// At a school: reserve codes typed here that did not match.
    pub wrong_codes: u32,
    /// Whether this node holds the package whole (filled in by the driver).
    pub held: bool,
}

/// What a package statement says, for the pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageLine {
    pub blob: BlobRef,
    pub name: String,
    pub variants: u16,
    pub release_at: Timestamp,
    pub at: Timestamp,
}

/// A package the РЦОИ named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub exam: ExamId,
    pub blob: BlobRef,
    pub release_at: Timestamp,
}

/// A release the РЦОИ made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub exam: ExamId,
    pub at: Timestamp,
}

/// A package a school may open now, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub exam: ExamId,
    pub package: Package,
    pub code: ReleaseCode,
    pub by: OpenedBy,
}

fn stored(engine: &Engine) -> std::collections::BTreeMap<ExamId, StoredMaterials> {
    engine
        .doc(&DocId::Directory)
        .map(content::materials)
        .unwrap_or_default()
}

/// The verified package and release of `exam`, if the directory holds them.
fn verified(
    context: &Context,
    exam: ExamId,
    entry: &StoredMaterials,
) -> Result<(Package, Option<Release>), Error> {
    let package = Package::verify(&entry.package, &entry.package_cert, &context.verifier, exam)?;
    // 07:30 of the exam day on this node's clock, not only the РЦОИ's word for it: a РЦОИ
    // with a wrong clock zone would otherwise release the region early.
    let expected = release_time(exam.date(), context.clock)?;
    if package.release_at != expected {
        return Err(Error::MaterialsReleaseTime {
            exam,
            named: package.release_at,
            expected,
        });
    }
    let release = match &entry.release {
        Some((statement, cert)) => Some(Release::verify(
            statement,
            cert,
            &context.verifier,
            &package,
        )?),
        None => None,
    };
    Ok((package, release))
}

fn package_of(
    engine: &Engine,
    context: &Context,
    exam: ExamId,
) -> Result<(Package, Option<Release>), Error> {
    let entry = stored(engine)
        .remove(&exam)
        .ok_or(Error::NoMaterials { exam })?;
    verified(context, exam, &entry)
}

/// At the РЦОИ: whether a package for `exam` may be named now: not once a release of the exam
/// is in the directory (whether or not it still verifies: schools may have opened it).
pub fn may_announce(engine: &Engine, exam: ExamId) -> Result<(), Error> {
    require_rcoi(engine, RcoiDuty::Materials)?;
    if stored(engine)
        .get(&exam)
        .is_some_and(|e| e.release.is_some())
    {
        return Err(Error::MaterialsReleased { exam });
    }
    Ok(())
}

/// At the РЦОИ: names `blob`, the package encrypted with `code`, as `exam`'s materials in the
/// region directory, to open at 07:30 of the exam day on this node's clock. A package not yet
/// released may be replaced; a released one may not.
#[allow(clippy::too_many_arguments)] // each is one fact of the package
pub fn announce(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
    blob: BlobRef,
    (name, variants): (&str, u16),
    code: &ReleaseCode,
    salt: [u8; SALT_BYTES],
) -> Result<Announced, Error> {
    may_announce(engine, exam)?;
    let release_at = release_time(exam.date(), context.clock)?;
    let package = Package::new(
        exam,
        blob,
        name,
        variants,
        code,
        salt,
        release_at,
        timestamp(now_ms)?,
    )?;
    let statement = engine.node_statement(StatementKind::Materials, &package.fields())?;
    let cert = engine.node_cert().to_vec();
    engine.change(now_ms, DocId::Directory, |tx| {
        content::put_package(tx, exam, &statement, &cert)
    })?;
    Ok(Announced {
        exam,
        blob,
        release_at,
    })
}

/// The number of КИМ variants of `exam`'s materials, once the directory names a package that
/// verifies: the room log gives a participant one of them.
#[must_use]
pub fn variants(engine: &Engine, context: &Context, exam: ExamId) -> Option<u16> {
    package_of(engine, context, exam)
        .ok()
        .map(|(p, _)| p.variants)
}

/// At the РЦОИ: the exams whose package is named, not released, and due by this node's clock.
#[must_use]
pub fn due(engine: &Engine, context: &Context, now_ms: i64) -> Vec<(ExamId, BlobRef)> {
    if engine.identity().role() != NodeRole::Rcoi {
        return Vec::new();
    }
    stored(engine)
        .into_iter()
        .filter(|(_, entry)| entry.release.is_none())
        .filter_map(|(exam, entry)| {
            let (package, _) = verified(context, exam, &entry).ok()?;
            (package.release_at.unix_ms() <= now_ms).then_some((exam, package.blob))
        })
        .collect()
}

/// At the РЦОИ: releases `exam`'s code into the directory. Refused before the release time on
/// this node's clock, and for a code the package does not commit to.
pub fn release(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
    code: ReleaseCode,
) -> Result<Released, Error> {
    require_rcoi(engine, RcoiDuty::Materials)?;
    let (package, released) = package_of(engine, context, exam)?;
    if let Some(r) = released {
        return Ok(Released { exam, at: r.at });
    }
    let at = timestamp(now_ms)?;
    if at < package.release_at {
        return Err(Error::MaterialsNotYet {
            exam,
            release_at: package.release_at,
        });
    }
    if !package.opens_with(&code) {
        return Err(giasync_shared::materials::MaterialsError::WrongCode(exam).into());
    }
    let release = Release {
        exam,
        package: package.blob.hash,
        code,
        at,
    };
    let statement = engine.node_statement(StatementKind::MaterialsRelease, &release.fields())?;
    let cert = engine.node_cert().to_vec();
    engine.change(now_ms, DocId::Directory, |tx| {
        content::put_release(tx, exam, &statement, &cert)
    })?;
    Ok(Released { exam, at })
}

/// At the РЦОИ: whether the code of `exam` may be read out to a school now (the reserve
/// scheme): only once the release time has come on this node's clock.
pub fn may_tell_code(
    engine: &Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
) -> Result<Package, Error> {
    require_rcoi(engine, RcoiDuty::Materials)?;
    let (package, _) = package_of(engine, context, exam)?;
    if timestamp(now_ms)? < package.release_at {
        return Err(Error::MaterialsNotYet {
            exam,
            release_at: package.release_at,
        });
    }
    Ok(package)
}

/// The materials of every exam the directory names, as this node sees them.
#[must_use]
pub fn view(engine: &Engine, context: &Context) -> Vec<ExamMaterials> {
    stored(engine)
        .into_iter()
        .map(|(exam, entry)| {
            let protocol = school_doc(engine, DocKind::Protocol, exam)
                .ok()
                .and_then(|d| engine.doc(&d));
            let opened = protocol.and_then(content::opened);
            let mut line = ExamMaterials {
                exam,
                package: None,
                problem: None,
                released: None,
                opened: opened.map(|o| o.at),
                opened_by: opened.and_then(|o| o.by).map(|b| b.id().to_owned()),
                wrong_codes: protocol.map_or(0, content::wrong_codes),
                held: false,
            };
            match verified(context, exam, &entry) {
                Ok((package, release)) => {
                    // An opening of a package named before this one is not this one's.
                    if opened.is_some_and(|o| o.package.is_some_and(|h| h != package.blob.hash)) {
                        line.opened = None;
                        line.opened_by = None;
                    }
                    line.package = Some(PackageLine {
                        blob: package.blob,
                        name: package.name,
                        variants: package.variants,
                        release_at: package.release_at,
                        at: package.at,
                    });
                    line.released = release.map(|r| r.at);
                }
                Err(e) => line.problem = Some(e.to_string()),
            }
            line
        })
        .collect()
}

/// At a school: the packages released and not yet opened here, with the released code.
#[must_use]
pub fn to_open(engine: &Engine, context: &Context) -> Vec<Opening> {
    if engine.identity().role() != NodeRole::School {
        return Vec::new();
    }
    stored(engine)
        .into_iter()
        .filter_map(|(exam, entry)| {
            let protocol = school_doc(engine, DocKind::Protocol, exam).ok()?;
            // An exam this school holds nothing of is not its exam.
            let roster = protocol.sibling(DocKind::Roster)?;
            if engine.doc(&roster).is_none() && engine.doc(&protocol).is_none() {
                return None;
            }
            let (package, release) = verified(context, exam, &entry).ok()?;
            let opened = engine.doc(&protocol).and_then(content::opened);
            if opened.is_some_and(|o| o.package.is_none_or(|h| h == package.blob.hash)) {
                return None;
            }
            Some(Opening {
                exam,
                package,
                code: release?.code,
                by: OpenedBy::Release,
            })
        })
        .collect()
}

/// At a school: checks a reserve code typed here (the РЦОИ read it out by phone or sent it by
/// e-mail). A code that does not match the exam's package is refused and counted in the
/// school's protocol; one that matches is the opening to make.
pub fn check_code(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
    code: ReleaseCode,
) -> Result<Result<Opening, Error>, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let (package, _) = package_of(engine, context, exam)?;
    if package.opens_with(&code) {
        return Ok(Ok(Opening {
            exam,
            package,
            code,
            by: OpenedBy::ReserveCode,
        }));
    }
    let wrong_codes = engine.doc(&protocol).map_or(0, content::wrong_codes) + 1;
    engine.change(now_ms, protocol, |tx| {
        content::put_wrong_codes(tx, wrong_codes)
    })?;
    Ok(Err(Error::WrongReleaseCode { exam, wrong_codes }))
}

/// At a school: records that it opened `exam`'s materials (the first opening counts).
pub fn record_opened(
    engine: &mut Engine,
    now_ms: i64,
    exam: ExamId,
    by: OpenedBy,
    package: &giasync_shared::blob::BlobHash,
) -> Result<Timestamp, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    if let Some(o) = engine.doc(&protocol).and_then(content::opened)
        && o.package.is_none_or(|h| h == *package)
    {
        return Ok(o.at);
    }
    let at = timestamp(now_ms)?;
    engine.change(now_ms, protocol, |tx| {
        content::put_opened(tx, at, by, package)
    })?;
    Ok(at)
}

/// Which packages the documents `docs` name and whether this node fetches them: every hub and
/// school fetches and keeps each package the directory names (the РЦОИ holds its own); a
/// school fetches it before the day, so that 07:30 needs nothing but the code.
#[must_use]
pub fn plan(engine: &Engine, docs: &[DocId]) -> Vec<BlobPlan> {
    if !docs.contains(&DocId::Directory) {
        return Vec::new();
    }
    let fetch = engine.identity().role() != NodeRole::Rcoi;
    stored(engine)
        .into_values()
        .filter_map(|entry| {
            // The blob's name is read without the signature here; what is fetched is checked
            // against that name piece by piece, and opened only under a verified package.
            let fields = entry
                .package
                .fields_unverified(StatementKind::Materials)
                .ok()?;
            Some(BlobPlan {
                blob: BlobRef {
                    hash: fields.parse("blob").ok()?,
                    bytes: fields.parse("bytes").ok()?,
                },
                doc: DocId::Directory,
                fetch,
                keep: true,
                named: true,
            })
        })
        .collect()
}

/// Whether a school opened an exam's materials, as a hub sees it in the school's protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolOpened {
    pub school: giasync_shared::codes::SchoolCode,
    pub opened: Option<Timestamp>,
    pub opened_by: Option<String>,
    pub wrong_codes: u32,
    /// Opened before the package's release time (by a reserve code given out early).
    pub early: bool,
}

/// On a hub: every school of `exam` it holds a roster or protocol of, and whether and when it
/// opened the materials (a school that wrote nothing yet has no protocol, and has not).
#[must_use]
pub fn opened_by_school(engine: &Engine, context: &Context, exam: ExamId) -> Vec<SchoolOpened> {
    let release_at = package_of(engine, context, exam)
        .ok()
        .map(|(p, _)| p.release_at);
    super::scoring::schools_of(engine, exam)
        .into_iter()
        .filter_map(|d| {
            let doc = engine.doc(&d);
            let opened = doc.and_then(content::opened);
            Some(SchoolOpened {
                school: d.school()?,
                opened: opened.map(|o| o.at),
                opened_by: opened.and_then(|o| o.by).map(|b| b.id().to_owned()),
                wrong_codes: doc.map_or(0, content::wrong_codes),
                early: opened.is_some_and(|o| release_at.is_some_and(|r| o.at < r)),
            })
        })
        .collect()
}
