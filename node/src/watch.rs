//! The watched folder (`[node] audio_watch`): the recording software writes each room's stream
//! and each answer there, and the node takes every file in once it has not changed for 30 s, as
//! `giasync-node audio add` would, by the name's convention. A file taken in moves to `taken/`
//! beside it; a refused one to `refused/` with the reason in `NAME.txt`. Nothing is deleted: the
//! technician keeps the files (seed 002 §52 has them copied to removable media too).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use giasync_shared::exam::{ExamId, ExamKind};
use giasync_shared::recording::FileName;
use tracing::{info, warn};

use crate::app::{Actor, Command, Context};
use crate::run::NodeHandle;

/// How often the folder is looked at.
pub const WATCH_INTERVAL_MS: u64 = 2_000;
/// How long a file's size and time must stay the same before it is taken: recorders at a low
/// bit rate write their buffer out every 15 s or so, and an MP3 cut between frames reads as
/// whole.
pub const WATCH_SETTLE_MS: u64 = 30_000;

/// A file's size and modification time: unchanged over an interval, it is finished.
type Seen = (u64, Option<SystemTime>);

/// Watches `dir` until the runtime stops.
pub fn spawn(dir: PathBuf, handle: NodeHandle, context: Arc<Context>) {
    tokio::spawn(async move {
        for sub in ["taken", "refused"] {
            if let Err(e) = std::fs::create_dir_all(dir.join(sub)) {
                warn!(dir = %dir.display(), error = %e, "the watched folder cannot be used");
                return;
            }
        }
        info!(dir = %dir.display(), "watching for recordings");
        // Each file as last seen, and since when it has looked so.
        let mut seen: HashMap<PathBuf, (Seen, std::time::Instant)> = HashMap::new();
        loop {
            tokio::time::sleep(Duration::from_millis(WATCH_INTERVAL_MS)).await;
            let mut now_seen = HashMap::new();
            for (path, state) in files(&dir) {
                let since = match seen.get(&path) {
                    Some((before, since)) if *before == state => *since,
                    _ => std::time::Instant::now(),
                };
                if since.elapsed() >= Duration::from_millis(WATCH_SETTLE_MS) {
                    take(&dir, &path, &handle, &context).await;
                } else {
                    now_seen.insert(path, (state, since));
                }
            }
            seen = now_seen;
        }
    });
}

/// The plain files of the folder (not hidden, not partial downloads), with what they look like.
fn files(dir: &Path) -> Vec<(PathBuf, Seen)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata().ok()?;
            let skip = !meta.is_file()
                || name.starts_with('.')
                || name.ends_with(".part")
                || name.ends_with(".tmp");
            (!skip).then(|| (e.path(), (meta.len(), meta.modified().ok())))
        })
        .collect()
}

async fn take(dir: &Path, path: &Path, handle: &NodeHandle, context: &Arc<Context>) {
    let name = crate::service::file_name(path);
    let outcome = match FileName::parse(&name) {
        Err(e) => Err(e.to_string()),
        Ok(parsed) => {
            let command = Command::AddRecording {
                exam: ExamId::new(ExamKind::Is, parsed.date),
                file: path.to_path_buf(),
                room: None,
                participant: None,
                attempt: None,
                stream: false,
            };
            match crate::service::add_recording(handle, context.clone(), Actor::Console, command)
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match outcome {
        Ok(()) => {
            info!(file = %name, "recording taken in");
            let _ = std::fs::rename(path, dir.join("taken").join(&name));
        }
        Err(why) => {
            warn!(file = %name, %why, "recording refused");
            let refused = dir.join("refused");
            let _ = std::fs::rename(path, refused.join(&name));
            let _ = std::fs::write(refused.join(format!("{name}.txt")), format!("{why}\n"));
        }
    }
}
