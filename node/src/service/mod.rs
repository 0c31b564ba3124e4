//! The node as it runs: the driver ([`crate::run`]) with the application ([`crate::app`]) as its
//! reactor, and the skins over it: the admin socket ([`crate::admin`]) and the web pages
//! ([`crate::web`]). The one place that knows all three layers.

use std::sync::Arc;

use giasync_shared::codes::NodeRole;
use giasync_shared::config::NodeConfig;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use tracing::{info, warn};

mod materials;
mod readiness;

use crate::app::{self, Actor, Command, Context};
use crate::run::{self, NodeHandle, RunError};
use giasync_shared::blob::BlobRef;
use giasync_shared::sync::DocId;

/// At the РЦОИ: brings a store of layout 1 to layout 2 before anything else is asked of it
/// (`app::hub::carry_over_layout_1`), and logs what it carried. A failure is logged and the node
/// runs on: what was not carried is carried at the next start.
async fn carry_over(handle: &NodeHandle, context: &Arc<Context>) {
    let context = context.clone();
    let answer =
        handle.call(move |engine, now_ms| app::hub::carry_over_layout_1(engine, &context, now_ms));
    match answer.await {
        Ok(Ok(Ok(c))) if c == app::hub::CarriedOver::default() => {}
        Ok(Ok(Ok(c))) => info!(
            settlements = c.settlements,
            publications = c.publications,
            receipts = c.receipts,
            "carried the РЦОИ's records over from layout 1"
        ),
        Ok(Ok(Err(e))) => warn!(error = %e, "carrying over from layout 1"),
        Ok(Err(e)) => warn!(error = %e, "carrying over from layout 1"),
        Err(_) => warn!("carrying over from layout 1: the engine stopped"),
    }
}

/// The admin socket's file mode: the node's user only.
pub const ADMIN_SOCKET_MODE: u32 = 0o600;

/// Starts the node configured by `config` on the current tokio runtime: engine, store, network,
/// admin socket and, when configured, its pages.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, RunError> {
    let context = Arc::new(Context::load(&config).map_err(|e| RunError::Ca(e.to_string()))?);
    let reactor_context = context.clone();
    let reactor: run::Reactor =
        Box::new(move |engine, docs, now_ms| app::react(engine, &reactor_context, docs, now_ms));
    let planner: run::BlobPlanner = Box::new(|engine, docs| {
        let mut plans = app::recordings::plan(engine, docs);
        plans.extend(app::materials::plan(engine, docs));
        plans
    });
    // A blob made whole here: the РЦОИ receipts it (through the engine thread, once the node runs).
    let (completed, mut completions) =
        tokio::sync::mpsc::unbounded_channel::<(BlobRef, Vec<DocId>)>();
    let on_complete: crate::run_blobs::OnComplete = Box::new(move |blob, docs| {
        let _ = completed.send((blob, docs));
    });
    let mut handle = run::start(config.clone(), reactor, planner, on_complete).await?;
    let receipts = handle.clone();
    tokio::spawn(async move {
        while let Some((blob, docs)) = completions.recv().await {
            let answer = receipts
                .call(move |engine, now_ms| app::recordings::receipt(engine, now_ms, blob, &docs));
            match answer.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(blob = %blob.hash, error = %e, "the blob's receipt"),
                Err(e) => warn!(blob = %blob.hash, error = %e, "the blob's receipt"),
            }
        }
    });
    let identity = handle.identity;
    if identity.role() == NodeRole::Rcoi {
        carry_over(&handle, &context).await;
    }
    materials::spawn_clock(handle.clone(), context.clone());
    serve_admin(&config.node.store, handle.clone(), context.clone())?;
    if let Some(dir) = &config.node.audio_watch {
        crate::watch::spawn(dir.clone(), handle.clone(), context.clone());
    }
    if let Some(addr) = config.node.web {
        let ask = asker(handle.clone(), context.clone());
        let people = config
            .node
            .people
            .as_deref()
            .map(|dir| crate::web::school::load_people(dir, identity.org))
            .unwrap_or_default();
        let people = certified(people, &context);
        let router = if matches!(identity.role(), NodeRole::Municipality | NodeRole::Rcoi) {
            let sign_in = match config.node.oversight {
                giasync_shared::config::OversightAccess::SignIn => {
                    info!(node = %identity, people = people.len(), "oversight pages behind sign-in");
                    Some((identity.role(), people))
                }
                giasync_shared::config::OversightAccess::Open => {
                    warn!(node = %identity, "oversight pages open to anyone who reaches them ([node] oversight = \"open\")");
                    None
                }
            };
            crate::web::hub_router(ask, config.node.web_names.clone(), sign_in)
        } else {
            info!(node = %identity, people = people.len(), "school web interface");
            let enrolling =
                config
                    .node
                    .people
                    .clone()
                    .map(|people| crate::web::school::Enrolling {
                        region: identity.region,
                        org: identity.org,
                        people,
                        kdf: giasync_certs::keyfile::KdfParams::DEFAULT,
                    });
            crate::web::school::router(
                ask,
                people,
                context.rules.clone(),
                config.node.web_names.clone(),
                Some(handle.blob_files().clone()),
                enrolling,
            )
        };
        let served = match &config.web_tls {
            Some(tls) => {
                let tls = crate::web::tls::server_config(&tls.cert, &tls.key)
                    .map_err(|e| RunError::Web(format!("{addr}: {e}")))?;
                info!(node = %identity, %addr, "web pages over HTTPS");
                crate::web::tls::serve(addr, router, tls).await
            }
            None => crate::web::serve(addr, router).await,
        };
        handle.web = Some(served.map_err(|e| RunError::Web(format!("{addr}: {e}")))?);
    }
    if let Some(addr) = config.node.lookup
        && identity.role() == NodeRole::Rcoi
    {
        let router = crate::web::lookup::router(asker(handle.clone(), context.clone()));
        handle.lookup = Some(
            crate::web::serve(addr, router)
                .await
                .map_err(|e| RunError::Web(format!("{addr}: {e}")))?,
        );
    }
    if let Some(addr) = config.node.metrics {
        let scraped = handle.clone();
        let store = config.node.store.clone();
        let scrape: crate::web::metrics::Scrape = Arc::new(move || {
            let (handle, store) = (scraped.clone(), store.clone());
            Box::pin(async move {
                let metrics = handle.call(|engine, _| app::metrics::read(engine)).await;
                let mut metrics = metrics.ok()?.ok()?;
                metrics.store_bytes = std::fs::metadata(&store).ok().map(|m| m.len());
                Some((metrics, blobs_view(&handle).await))
            })
        });
        let router = crate::web::metrics::router(scrape);
        let served = crate::web::serve(addr, router)
            .await
            .map_err(|e| RunError::Web(format!("{addr}: {e}")))?;
        info!(node = %identity, addr = %served, "metrics endpoint");
        handle.metrics = Some(served);
    }
    Ok(handle)
}

/// The people whose certificate the region's CA vouches for today; the others are left out of
/// sign-in, each with a warning in the log (a revoked or expired person cannot sign in, even
/// with their key file and PIN).
fn certified(
    people: Vec<crate::web::people::Person>,
    context: &Context,
) -> Vec<crate::web::people::Person> {
    let now_ms = run::now_ms();
    people
        .into_iter()
        .filter(
            |p| match context.certifies(&p.identity, &p.cert_der, now_ms) {
                Ok(()) => true,
                Err(e) => {
                    warn!(person = %p.identity, error = %e, "not offered at sign-in");
                    false
                }
            },
        )
        .collect()
}

/// The pages' way to the application: a command as the signed-in person (or a visitor),
/// answered once durable.
fn asker(handle: NodeHandle, context: Arc<Context>) -> crate::web::Ask {
    Arc::new(move |actor: Actor, command: Command| {
        let context = context.clone();
        if matches!(command, Command::Oversight) {
            return oversight_off_the_engine_thread(handle.clone(), context, &actor);
        }
        if matches!(
            command,
            Command::BundleWrite { .. } | Command::BundleRead { .. }
        ) {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = reply.send(bundle(&handle, context, actor, command).await);
            });
            return answer;
        }
        if let Command::DestroyRecordings { exam } = command {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = reply.send(destroy_recordings(&handle, context, actor, exam).await);
            });
            return answer;
        }
        if command.by_node_driver() {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = reply.send(drive(&handle, context, actor, command).await);
            });
            return answer;
        }
        if matches!(command, Command::AddRecording { .. }) {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = reply.send(add_recording(&handle, context, actor, command).await);
            });
            return answer;
        }
        handle.call(move |engine, now_ms| app::apply(engine, &context, &actor, now_ms, command))
    })
}

/// The oversight view for the pages: the cache held throughout, a snapshot taken on the engine
/// thread (copies of only the documents whose sections changed), the view built on a blocking
/// thread, so verifying a region's sheets never holds up sync.
fn oversight_off_the_engine_thread(
    handle: NodeHandle,
    context: Arc<Context>,
    actor: &Actor,
) -> tokio::sync::oneshot::Receiver<crate::web::Answered> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if let Err(refused) = actor.may(Command::Oversight.action()) {
        let _ = reply.send(Ok(Err(refused)));
        return answer;
    }
    tokio::spawn(async move {
        let cache = context.oversight.clone().lock_owned().await;
        let snapshot = handle
            .call(move |engine, now_ms| {
                let taken = app::status::oversight_snapshot(engine, &cache, now_ms);
                (taken, cache)
            })
            .await;
        let answered = match snapshot {
            Err(_) => Err(run::CallError::Stopped),
            Ok(Err(e)) => Err(e),
            Ok(Ok((Err(refused), _))) => Ok(Err(refused)),
            Ok(Ok((Ok(snapshot), mut cache))) => {
                let built = tokio::task::spawn_blocking(move || {
                    app::status::build_oversight(&snapshot, &context, &mut cache)
                })
                .await;
                match built {
                    Ok(mut view) => {
                        view.blobs = blobs_view(&handle).await;
                        Ok(Ok(app::Answer::Oversight(Box::new(view))))
                    }
                    Err(_) => Err(run::CallError::Stopped),
                }
            }
        };
        let _ = reply.send(answered);
    });
    answer
}

/// Takes a recording file in through the node's blob store (off the engine thread: the copy
/// and the hash take time in proportion to the file), tells the blob thread it is held, then
/// names it in the protocol.
pub(crate) async fn add_recording(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    command: Command,
) -> crate::web::Answered {
    let Command::AddRecording {
        exam,
        file,
        room,
        participant,
        attempt,
        stream,
    } = command
    else {
        return Ok(Err(app::Error::RecordingNotTakenIn));
    };
    if let Err(refused) = actor.may(app::Action::AddRecording) {
        return Ok(Err(refused));
    }
    let files = handle.blob_files().clone();
    let path = file.clone();
    let prepared = tokio::task::spawn_blocking(move || files.prepare(&path)).await;
    let prepared = match prepared {
        Err(_) => return Err(run::CallError::Stopped),
        Ok(Err(e)) => return Ok(Err(app::Error::RecordingRefused(e.to_string()))),
        Ok(Ok(prepared)) => prepared,
    };
    let (prepared, info) = prepared;
    let blob = match handle.keep_blob(prepared).await {
        Ok(blob) => blob,
        Err(e) => return Ok(Err(app::Error::RecordingRefused(e))),
    };
    let taken = app::recordings::TakenIn {
        exam,
        blob,
        info,
        file_name: file_name(&file),
        room,
        participant,
        attempt,
        stream,
    };
    let answer = handle.call(move |engine, now_ms| {
        app::recordings::name(engine, &context, &actor, now_ms, taken)
            .map(app::Answer::RecordingNamed)
    });
    answer.await.map_err(|_| run::CallError::Stopped)?
}

/// Destroys an exam's recordings whose keeping period is over: the application says which
/// (and refuses before the period ends), the blob thread deletes the bytes, then the application
/// records the act.
async fn destroy_recordings(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    exam: giasync_shared::exam::ExamId,
) -> crate::web::Answered {
    if let Err(refused) = actor.may(app::Action::AddRecording) {
        return Ok(Err(refused));
    }
    let ctx = context.clone();
    let found = handle
        .call(move |engine, now_ms| app::recordings::due(engine, &ctx, now_ms, exam))
        .await
        .map_err(|_| run::CallError::Stopped)??;
    let (due, kept) = match found {
        Ok(found) => found,
        Err(refused) => return Ok(Err(refused)),
    };
    let hashes = due.iter().map(|(_, b)| b.hash).collect();
    if let Err(e) = handle.destroy_blobs(hashes).await {
        return Ok(Err(app::Error::RecordingRefused(e)));
    }
    let kept = kept.len();
    handle
        .call(move |engine, now_ms| {
            app::recordings::record_destruction(engine, now_ms, exam, &due, kept)
                .map(app::Answer::RecordingsDestroyed)
        })
        .await
        .map_err(|_| run::CallError::Stopped)?
}

/// Writes or reads a bundle (`crate::bundle`): the files off the engine thread, the engine's
/// part on it.
async fn bundle(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    command: Command,
) -> crate::web::Answered {
    if let Err(refused) = actor.may(command.action()) {
        return Ok(Err(refused));
    }
    let stopped = |_| run::CallError::Stopped;
    match command {
        Command::BundleWrite {
            to,
            documents,
            school,
        } => {
            let collected = handle
                .call(move |engine, _| {
                    let handed = match school {
                        Some(school) => crate::bundle::to_hand_over(engine, school)?,
                        None => Vec::new(),
                    };
                    Ok::<_, giasync_shared::bundle::BundleError>((
                        crate::bundle::collect(engine, documents, school),
                        handed,
                    ))
                })
                .await
                .map_err(stopped)??;
            let (collected, handed) = match collected {
                Ok(c) => c,
                Err(e) => return Ok(Err(e.into())),
            };
            let files = handle.blob_files().clone();
            let dir = to.clone();
            let written = tokio::task::spawn_blocking(move || {
                crate::bundle::write_files(&dir, &files, &collected, run::now_ms())
            })
            .await
            .map_err(|_| run::CallError::Stopped)?;
            let (manifest, bytes) = match written {
                Ok(w) => w,
                Err(e) => return Ok(Err(e.into())),
            };
            let text = manifest.to_text();
            let (signature, cert) = handle
                .call(move |engine, _| {
                    (
                        engine.sign_bundle(text.as_bytes()),
                        engine.node_cert().to_vec(),
                    )
                })
                .await
                .map_err(stopped)??;
            let done = crate::bundle::BundleDone {
                node: manifest.node.to_string(),
                recordings: manifest.blobs.len(),
                documents: manifest.docs.len(),
                bytes,
            };
            let sealed = tokio::task::spawn_blocking(move || {
                crate::bundle::seal(&to, &manifest, &signature, &cert)
            })
            .await
            .map_err(|_| run::CallError::Stopped)?;
            if let Err(e) = sealed {
                return Ok(Err(e.into()));
            }
            // Handed over once the bundle is whole on the media, not before.
            let handed_over = handle
                .call(move |engine, now_ms| crate::bundle::hand_over(engine, now_ms, &handed))
                .await
                .map_err(stopped)??;
            Ok(handed_over
                .map(|()| app::Answer::BundleWritten(done))
                .map_err(Into::into))
        }
        Command::BundleRead { from } => {
            let verifier = context.verifier.clone();
            let checked =
                tokio::task::spawn_blocking(move || crate::bundle::open(&from, &verifier))
                    .await
                    .map_err(|_| run::CallError::Stopped)?;
            let checked = match checked.and_then(|c| {
                crate::bundle::fits(&c, handle.identity)?;
                Ok(c)
            }) {
                Ok(c) => c,
                Err(e) => return Ok(Err(e.into())),
            };
            let node = checked.node;
            let docs = checked.docs;
            let documents = docs.len();
            let refused = handle
                .call(move |engine, now_ms| {
                    crate::bundle::take_documents(engine, now_ms, node, &docs)
                })
                .await
                .map_err(stopped)??;
            if !refused.is_empty() {
                let names: Vec<String> = refused.iter().map(ToString::to_string).collect();
                return Ok(Err(giasync_shared::bundle::BundleError(format!(
                    "documents not taken in whole (see the quarantine): {}",
                    names.join(", ")
                ))
                .into()));
            }
            for (blob, path) in &checked.blobs {
                let files = handle.blob_files().clone();
                let path = path.clone();
                let prepared = tokio::task::spawn_blocking(move || files.prepare(&path))
                    .await
                    .map_err(|_| run::CallError::Stopped)?;
                let prepared = match prepared {
                    Ok((p, _)) if p.blob == *blob => p,
                    Ok(_) => {
                        return Ok(Err(app::Error::RecordingRefused(format!(
                            "{}: changed while it was read",
                            blob.hash
                        ))));
                    }
                    Err(e) => return Ok(Err(app::Error::RecordingRefused(e.to_string()))),
                };
                if let Err(e) = handle.keep_blob(prepared).await {
                    return Ok(Err(app::Error::RecordingRefused(e)));
                }
                let blob = *blob;
                handle
                    .call(move |engine, now_ms| app::recordings::receipt_held(engine, now_ms, blob))
                    .await
                    .map_err(stopped)??
                    .map_or_else(
                        |e| warn!(blob = %blob.hash, error = %e, "the bundled blob's receipt"),
                        |_| {},
                    );
            }
            Ok(Ok(app::Answer::BundleRead(crate::bundle::BundleDone {
                node: node.to_string(),
                recordings: checked.blobs.len(),
                documents,
                bytes: checked.blobs.iter().map(|(b, _)| b.bytes).sum(),
            })))
        }
        _ => Ok(Err(app::Error::RecordingNotTakenIn)),
    }
}

/// The commands the node's driver does (`Command::by_node_driver`).
async fn drive(
    handle: &NodeHandle,
    context: Arc<Context>,
    actor: Actor,
    command: Command,
) -> crate::web::Answered {
    match command {
        Command::ReadinessFindings {
            exam,
            test_recording,
        } => {
            if let Err(refused) = actor.may(app::Action::Read) {
                return Ok(Err(refused));
            }
            readiness::findings(handle, context, exam, test_recording).await
        }
        other => materials::drive(handle, context, actor, other).await,
    }
}

/// A status answer with the running node's blobs filled in.
async fn with_blobs(
    handle: &NodeHandle,
    outcome: Result<app::Answer, app::Error>,
) -> Result<app::Answer, app::Error> {
    let Ok(app::Answer::Status(mut status)) = outcome else {
        return outcome;
    };
    status.blobs = blobs_view(handle).await;
    Ok(app::Answer::Status(status))
}

/// The running node's blob store and transfers, for status and the oversight pages.
async fn blobs_view(handle: &NodeHandle) -> Option<app::status::BlobsLine> {
    let b = handle.blob_status().await?;
    Some(app::status::BlobsLine {
        held: b.held,
        held_bytes: b.held_bytes,
        fetching: b.wanted,
        bytes_left: b.wanted_bytes_left,
        rate_bytes_s: b.rate_bytes_s,
        eta_s: (b.rate_bytes_s > 0).then(|| b.wanted_bytes_left / b.rate_bytes_s),
    })
}

/// A path's file name, as the recording's record keeps it.
pub(crate) fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Listens on the admin socket beside the store (see [`crate::admin`]): every command as the
/// console. The socket is `0600` whatever the umask, and a peer is served only when it runs as
/// the node's own user (the socket's owner) or as root; every command that writes, and every
/// look-up, is written to the audit log with the peer's uid.
fn serve_admin(
    store: &std::path::Path,
    handle: NodeHandle,
    context: Arc<Context>,
) -> Result<(), RunError> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let path = crate::admin::socket_path(store);
    // A socket file left by a node that died; the store lock already proved no node runs.
    let _ = std::fs::remove_file(&path);
    let socket_error = |e: std::io::Error| RunError::Socket {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let listener = tokio::net::UnixListener::bind(&path).map_err(socket_error)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(ADMIN_SOCKET_MODE))
        .map_err(socket_error)?;
    let owner = std::fs::metadata(&path).map_err(socket_error)?.uid();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (handle, context) = (handle.clone(), context.clone());
            tokio::spawn(async move {
                let uid = match stream.peer_cred() {
                    Ok(cred) if cred.uid() == owner || cred.uid() == 0 => cred.uid(),
                    other => {
                        let uid = other.map(|c| c.uid()).ok();
                        warn!(?uid, owner, "admin socket: a peer of another user refused");
                        let (_, mut write) = stream.into_split();
                        let refusal = crate::admin::Response::refused(
                            "the admin socket serves only the node's own user and root",
                        );
                        if let Ok(mut text) = serde_json::to_string(&refusal) {
                            text.push('\n');
                            let _ = write.write_all(text.as_bytes()).await;
                        }
                        return;
                    }
                };
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let response = match crate::admin::parse_request(&line) {
                        Ok(
                            command @ (Command::BundleWrite { .. } | Command::BundleRead { .. }),
                        ) => {
                            let op = command.op();
                            let _ = handle
                                .call(move |engine, now_ms| {
                                    engine.note(now_ms, format!("admin socket, uid {uid}: {op}"));
                                })
                                .await;
                            match bundle(&handle, context.clone(), Actor::Console, command).await {
                                Ok(outcome) => crate::admin::respond(outcome),
                                Err(e) => crate::admin::Response::refused(e.to_string()),
                            }
                        }
                        Ok(Command::Backup { to }) => {
                            let _ = handle
                                .call(move |engine, now_ms| {
                                    engine.note(now_ms, format!("admin socket, uid {uid}: backup"));
                                })
                                .await;
                            crate::admin::respond(
                                handle
                                    .backup(to)
                                    .await
                                    .map(app::Answer::BackedUp)
                                    .map_err(|e| app::Error::Backup(e.to_string())),
                            )
                        }
                        Ok(Command::DestroyRecordings { exam }) => {
                            let _ = handle
                                .call(move |engine, now_ms| {
                                    engine.note(
                                        now_ms,
                                        format!("admin socket, uid {uid}: destroy_recordings"),
                                    );
                                })
                                .await;
                            match destroy_recordings(&handle, context.clone(), Actor::Console, exam)
                                .await
                            {
                                Ok(outcome) => crate::admin::respond(outcome),
                                Err(e) => crate::admin::Response::refused(e.to_string()),
                            }
                        }
                        Ok(command) if command.by_node_driver() => {
                            let op = command.op();
                            let _ = handle
                                .call(move |engine, now_ms| {
                                    engine.note(now_ms, format!("admin socket, uid {uid}: {op}"));
                                })
                                .await;
                            match drive(&handle, context.clone(), Actor::Console, command).await {
                                Ok(outcome) => crate::admin::respond(outcome),
                                Err(e) => crate::admin::Response::refused(e.to_string()),
                            }
                        }
                        Ok(command @ Command::AddRecording { .. }) => {
                            let op = command.op();
                            let _ = handle
                                .call(move |engine, now_ms| {
                                    engine.note(now_ms, format!("admin socket, uid {uid}: {op}"));
                                })
                                .await;
                            match add_recording(&handle, context.clone(), Actor::Console, command)
                                .await
                            {
                                Ok(outcome) => crate::admin::respond(outcome),
                                Err(e) => crate::admin::Response::refused(e.to_string()),
                            }
                        }
                        Ok(Command::Oversight) => {
                            let answer = oversight_off_the_engine_thread(
                                handle.clone(),
                                context.clone(),
                                &Actor::Console,
                            );
                            match answer.await {
                                Ok(Ok(outcome)) => crate::admin::respond(outcome),
                                Ok(Err(e)) => crate::admin::Response::refused(e.to_string()),
                                Err(_) => break,
                            }
                        }
                        Ok(command) => {
                            let context = context.clone();
                            let answer = handle.call(move |engine, now_ms| {
                                if command.audited() {
                                    engine.note(
                                        now_ms,
                                        format!("admin socket, uid {uid}: {}", command.op()),
                                    );
                                }
                                app::apply(engine, &context, &Actor::Console, now_ms, command)
                            });
                            match answer.await {
                                Ok(Ok(outcome)) => {
                                    crate::admin::respond(with_blobs(&handle, outcome).await)
                                }
                                Ok(Err(e)) => crate::admin::Response::refused(e.to_string()),
                                Err(_) => break,
                            }
                        }
                        Err(refusal) => *refusal,
                    };
                    let Ok(mut text) = serde_json::to_string(&response) else {
                        break;
                    };
                    text.push('\n');
                    if write.write_all(text.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}

/// Runs the node of `config_path` until Ctrl-C or SIGTERM, or until its engine stops because the
/// store refused a write (an error: the process ends non-zero): the body of `giasync-node run` and
/// `giasync-hub run`. `hub` says which binary asks, so each refuses the other's configuration.
pub fn run_until_stopped(config_path: &std::path::Path, hub: bool) -> anyhow::Result<()> {
    let config = NodeConfig::load(config_path)?;
    let is_hub = matches!(config.node.role, NodeRole::Municipality | NodeRole::Rcoi);
    if is_hub != hub {
        anyhow::bail!(
            "{} is the configuration of a {}; run it with {}",
            config_path.display(),
            config.node.role,
            if is_hub {
                "giasync-hub run"
            } else {
                "giasync-node run"
            }
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let upstreams: Vec<String> = config
            .upstreams
            .iter()
            .map(|u| format!("{} {} at {}", u.role, u.code, u.addr))
            .collect();
        let handle = start(config).await?;
        match handle.listen {
            Some(addr) => println!("running {} on {addr}", handle.identity),
            None => println!("running {}", handle.identity),
        }
        if let Some(addr) = handle.web {
            println!("web pages at http://{addr}/");
        }
        if let Some(addr) = handle.lookup {
            println!("result look-up at http://{addr}/");
        }
        if !upstreams.is_empty() {
            println!("upstreams: {}", upstreams.join(", "));
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            // Non-zero: the service manager starts the node again, from what is durable.
            why = handle.failed() => {
                handle.stop();
                anyhow::bail!("{} stopped: {why}", handle.identity);
            }
        }
        handle.stop();
        println!("stopped {}", handle.identity);
        Ok(())
    })
}
