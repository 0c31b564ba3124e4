//! The recordings of the day, for the technical specialist and the responsible organiser (seed
//! 002 §39, §45, §52): per room, the room's stream and each participant's answer, each playable
//! here (served by the node, no external player) and marked when the РЦОИ holds it; what is
//! missing is listed: a room with no stream, a participant who answered with no recording.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use giasync_shared::blob::BlobHash;

use super::SchoolWeb;
use super::layout::{error_page, full_name, page};
use crate::app::day::{DayParticipant, DayRecording};
use crate::web::escape;

/// The bytes read from a recording at a time while it is served.
const SERVE_CHUNK_BYTES: usize = 64 * 1024;

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn size(bytes: u64) -> String {
    format!("{:.1} МБ", bytes as f64 / 1_000_000.0)
}

fn row(r: &DayRecording, who: &str) -> String {
    format!(
        "<tr class=\"recording\" data-hash=\"{hash}\"><td>{who}</td><td>{file}</td><td>{format}, {duration}, {size}</td><td>{rcoi}</td><td><audio controls preload=\"metadata\" src=\"/recording/{hash}\"></audio></td></tr>",
        hash = escape(&r.hash),
        who = who,
        file = escape(&r.file_name),
        format = escape(&r.format),
        duration = duration(r.duration_ms),
        size = size(r.bytes),
        rcoi = if r.at_rcoi {
            "в РЦОИ"
        } else {
            "ещё не в РЦОИ"
        },
    )
}

/// Whether a participant answered (the log has a start) on the attempt they are on.
fn answered(p: &DayParticipant) -> bool {
    p.start.is_some()
}

pub(super) async fn page_of_recordings(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
) -> Response {
    let (who, day) = match web.open(&headers, "recordings", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = String::from(
        "<p>Записи принимаются командой <code>giasync-node audio add ФАЙЛ</code> на компьютере узла (имя файла: ДАТА_АУДИТОРИЯ_КОДОО[_УЧАСТНИК[_ПОПЫТКА]]).</p>",
    );
    for room in &day.rooms {
        let of_room: Vec<&DayRecording> = day
            .recordings
            .iter()
            .filter(|r| r.room == room.code)
            .collect();
        b.push_str(&format!(
            "<h2>Аудитория {}</h2><table class=\"recordings\"><tr><th>Чья</th><th>Файл</th><th>Запись</th><th>РЦОИ</th><th>Прослушать</th></tr>",
            escape(room.code.as_str())
        ));
        for r in &of_room {
            let whose = match &r.participant {
                None => "общая запись аудитории".to_owned(),
                Some(id) => {
                    let name = day
                        .participants
                        .iter()
                        .find(|p| p.entry.id == id.as_str())
                        .map_or_else(|| id.to_string(), full_name);
                    format!("{}, попытка {}", escape(&name), r.attempt.unwrap_or(1))
                }
            };
            b.push_str(&row(r, &whose));
        }
        b.push_str("</table>");
        let mut missing = Vec::new();
        if !of_room.iter().any(|r| r.participant.is_none()) {
            missing.push("общая запись аудитории".to_owned());
        }
        for p in day
            .participants
            .iter()
            .filter(|p| p.entry.room == Some(room.code) && answered(p))
        {
            let attempt = p.attempt.unwrap_or(1);
            let has = of_room.iter().any(|r| {
                r.participant.as_ref().map(|x| x.as_str()) == Some(p.entry.id.as_str())
                    && r.attempt == Some(attempt)
            });
            if !has {
                missing.push(format!("{}, попытка {attempt}", escape(&full_name(p))));
            }
        }
        if !missing.is_empty() {
            b.push_str(&format!(
                "<p class=\"err missing\">Нет записи: {}</p>",
                missing.join("; ")
            ));
        }
    }
    page("Аудиозаписи", Some(&who), Some(&day), &b).into_response()
}

/// Serves a recording the school's protocol names, to a person allowed on the recordings page
/// or the expert's (who scores from it afterwards).
pub(super) async fn recording(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    let (who, day) = match web.open(&headers, "recording", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(r) = day.recordings.iter().find(|r| r.hash == hash) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такой записи");
    };
    let (Ok(hash), Some(files)) = (hash.parse::<BlobHash>(), web.0.blobs.as_ref()) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такой записи");
    };
    match files.held(&hash) {
        Ok(f) => stream(f, &r.mime, r.bytes),
        Err(_) => error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            "Запись названа в протоколе, но её файла на этом узле нет",
        ),
    }
}

/// A held recording's bytes as a response, read in chunks as the browser takes them: memory
/// stays flat whatever the recording's size.
pub(super) fn stream(file: std::fs::File, mime: &str, bytes: u64) -> Response {
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; SERVE_CHUNK_BYTES];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_LENGTH, bytes.to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
