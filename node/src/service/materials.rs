//! The exam materials as the running node drives them (`crate::app::materials` decides,
//! `crate::materials` holds the files):
//!
//! - [`add`]: at the РЦОИ, seals a file with a fresh release code, keeps the code, takes the
//!   package in as a blob and names it in the region directory;
//! - [`tell_code`]: at the РЦОИ, the code for the reserve scheme, from the release time on;
//! - [`open`]: at a school, checks a reserve code typed in and opens the package with it;
//! - [`spawn_clock`]: every [`MATERIALS_POLL_MS`], the РЦОИ releases what is due by its clock and
//!   a school opens what was released and has reached it.
//!
//! Sealing and opening run on blocking threads: scrypt takes about a second by design.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use giasync_shared::exam::ExamId;
use giasync_shared::materials::{RELEASE_CODE_BYTES, ReleaseCode, SALT_BYTES};
use rand_core::{OsRng, RngCore};
use tracing::{info, warn};

use crate::app::{self, Actor, Answer, Context, Error};
use crate::run::{self, NodeHandle};

/// How often the node looks for materials to release or open: a school opens within this of the
/// release reaching it.
pub const MATERIALS_POLL_MS: u64 = 2_000;

fn file_error(exam: ExamId, e: impl std::fmt::Display) -> Error {
    Error::MaterialsFile {
        exam,
        message: e.to_string(),
    }
}

/// At the РЦОИ: seals `file` as `exam`'s materials and names the package in the directory.
pub(crate) async fn add(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    exam: ExamId,
    (file, variants): (PathBuf, u16),
) -> crate::web::Answered {
    if let Err(refused) = actor.may(app::Action::Operate) {
        return Ok(Err(refused));
    }
    let name = super::file_name(&file);
    // What would refuse the package is asked before anything is sealed or kept.
    if let Err(e) = giasync_shared::materials::check_facts(&name, variants) {
        return Ok(Err(e.into()));
    }
    let refused = handle
        .call(move |engine, _| app::materials::may_announce(engine, exam))
        .await
        .map_err(|_| run::CallError::Stopped)??;
    if let Err(refused) = refused {
        return Ok(Err(refused));
    }
    let mut entropy = [0u8; RELEASE_CODE_BYTES];
    OsRng.fill_bytes(&mut entropy);
    let code = ReleaseCode::from_entropy(entropy);
    let mut salt = [0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    let files = handle.blob_files().clone();
    let sealing = code.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        files.prepare_with(|out, _| {
            crate::materials::seal(&file, &sealing, out).map_err(|e| {
                crate::blobs::BlobStoreError::Index(format!("{}: {e}", file.display()))
            })
        })
    })
    .await
    .map_err(|_| run::CallError::Stopped)?;
    let prepared = match sealed {
        Ok(p) => p,
        Err(e) => return Ok(Err(file_error(exam, e))),
    };
    // The code is kept before the package is named: a package named without its code kept
    // could never open.
    let keeping = code.clone();
    let dir = handle.materials_dir.clone();
    let package = prepared.blob.hash;
    let kept = tokio::task::spawn_blocking(move || {
        crate::materials::keep_code(&dir, exam, &package, &keeping)
    })
    .await
    .map_err(|_| run::CallError::Stopped)?;
    if let Err(e) = kept {
        return Ok(Err(file_error(exam, e)));
    }
    let blob = match handle.keep_blob(prepared).await {
        Ok(b) => b,
        Err(e) => return Ok(Err(file_error(exam, e))),
    };
    handle
        .call(move |engine, now_ms| {
            app::materials::announce(
                engine,
                &context,
                now_ms,
                exam,
                blob,
                (&name, variants),
                &code,
                salt,
            )
            .map(Answer::MaterialsAdded)
        })
        .await
        .map_err(|_| run::CallError::Stopped)?
}

/// At the РЦОИ: `exam`'s code, for the reserve scheme; refused before the release time.
pub(crate) async fn tell_code(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    exam: ExamId,
) -> crate::web::Answered {
    if let Err(refused) = actor.may(app::Action::Operate) {
        return Ok(Err(refused));
    }
    let package = handle
        .call(move |engine, now_ms| app::materials::may_tell_code(engine, &context, now_ms, exam))
        .await
        .map_err(|_| run::CallError::Stopped)??;
    let package = match package {
        Ok(p) => p,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(
        match crate::materials::read_code(&handle.materials_dir, exam, &package.blob.hash) {
            Ok(Some(code)) if package.opens_with(&code) => Ok(Answer::MaterialsCode {
                exam,
                code: code.to_string(),
                release_at: package.release_at,
            }),
            Ok(_) => Err(file_error(
                exam,
                "this node keeps no code for the package the directory names",
            )),
            Err(e) => Err(file_error(exam, e)),
        },
    )
}

/// At a school: opens `exam`'s materials with a reserve code typed in (checked and counted by
/// the application first).
pub(crate) async fn open(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    exam: ExamId,
    code: ReleaseCode,
) -> crate::web::Answered {
    if let Err(refused) = actor.may(app::Action::OpenMaterials) {
        return Ok(Err(refused));
    }
    let checked = handle
        .call(move |engine, now_ms| {
            app::materials::check_code(engine, &context, now_ms, exam, code)
        })
        .await
        .map_err(|_| run::CallError::Stopped)??;
    let opening = match checked {
        Ok(Ok(o)) => o,
        Ok(Err(refused)) | Err(refused) => return Ok(Err(refused)),
    };
    Ok(open_held(handle, opening).await)
}

/// The commands the materials driver takes (`Command::by_materials_driver`).
pub(crate) async fn drive(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    command: app::Command,
) -> crate::web::Answered {
    match command {
        app::Command::MaterialsAdd {
            exam,
            file,
            variants,
        } => add(handle, context, actor, exam, (file, variants)).await,
        app::Command::MaterialsCode { exam } => tell_code(handle, context, actor, exam).await,
        app::Command::MaterialsOpen { exam, code } => {
            open(handle, context, actor, exam, code).await
        }
        app::Command::Materials => {
            let answer = handle
                .call(move |engine, _| app::materials::view(engine, &context))
                .await
                .map_err(|_| run::CallError::Stopped)??;
            let exams = answer
                .into_iter()
                .map(|mut line| {
                    line.held = line
                        .package
                        .as_ref()
                        .is_some_and(|p| handle.blob_files().held(&p.blob.hash).is_ok());
                    line
                })
                .collect();
            Ok(Ok(Answer::Materials { exams }))
        }
        _ => Ok(Err(Error::RecordingNotTakenIn)),
    }
}

/// Opens a package this node holds and records it.
async fn open_held(handle: &NodeHandle, opening: app::materials::Opening) -> Result<Answer, Error> {
    let exam = opening.exam;
    let file = match handle.blob_files().held(&opening.package.blob.hash) {
        Ok(f) => f,
        Err(_) => return Err(Error::MaterialsNotHeld { exam }),
    };
    let dir = handle.materials_dir.clone();
    let (code, name, by) = (opening.code, opening.package.name, opening.by);
    let hash = opening.package.blob.hash;
    let opened =
        tokio::task::spawn_blocking(move || crate::materials::open(file, &code, &dir, exam, &name))
            .await
            .map_err(|_| file_error(exam, "the opening stopped"))?
            .map_err(|e| file_error(exam, e))?;
    let recorded = handle
        .call(move |engine, now_ms| app::materials::record_opened(engine, now_ms, exam, by, &hash))
        .await;
    match recorded {
        Ok(Ok(Ok(at))) => Ok(Answer::MaterialsOpened {
            exam,
            at,
            by: by.id().to_owned(),
            file: opened.display().to_string(),
        }),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(e)) => Err(file_error(exam, e)),
        Err(e) => Err(file_error(exam, e)),
    }
}

/// Releases (at the РЦОИ) and opens (at a school) what is due, every [`MATERIALS_POLL_MS`].
pub(crate) fn spawn_clock(handle: NodeHandle, context: Arc<Context>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(MATERIALS_POLL_MS)).await;
            if !tick(&handle, &context).await {
                return;
            }
        }
    });
}

/// One look; `false` once the engine stopped. The РЦОИ also closes the re-check grants whose
/// term has passed (`app::recheck::close_expired`).
async fn tick(handle: &NodeHandle, context: &Arc<Context>) -> bool {
    match handle.call(app::recheck::close_expired).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "closing the re-check grants whose term passed"),
        Err(_) => return false,
    }
    let ctx = context.clone();
    let Ok(Ok((due, to_open))) = handle
        .call(move |engine, now_ms| {
            (
                app::materials::due(engine, &ctx, now_ms),
                app::materials::to_open(engine, &ctx),
            )
        })
        .await
    else {
        return false;
    };
    for (exam, package) in due {
        let code = match crate::materials::read_code(&handle.materials_dir, exam, &package.hash) {
            Ok(Some(code)) => code,
            Ok(None) => {
                warn!(%exam, "the materials are due but this node keeps no code for them");
                continue;
            }
            Err(e) => {
                warn!(%exam, error = %e, "the materials' code");
                continue;
            }
        };
        let ctx = context.clone();
        let released = handle
            .call(move |engine, now_ms| app::materials::release(engine, &ctx, now_ms, exam, code))
            .await;
        match released {
            Ok(Ok(Ok(r))) => info!(%exam, at = %r.at, "released the materials"),
            Ok(Ok(Err(e))) => warn!(%exam, error = %e, "releasing the materials"),
            _ => return false,
        }
    }
    for opening in to_open {
        let exam = opening.exam;
        if handle
            .blob_files()
            .held(&opening.package.blob.hash)
            .is_err()
        {
            continue; // not here yet: the next look tries again
        }
        match open_held(handle, opening).await {
            Ok(Answer::MaterialsOpened { at, file, .. }) => {
                info!(%exam, %at, file, "opened the materials");
            }
            Ok(_) => {}
            Err(e) => warn!(%exam, error = %e, "opening the materials"),
        }
    }
    true
}
