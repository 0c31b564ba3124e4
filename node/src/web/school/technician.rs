//! The technical specialist's page (seed 002 §26, §30, §52): on one screen, what the technician
//! answers for on the day and the day before — the node's link to its МОУО and the РЦОИ, the
//! node's clock against the exam's date, and per room the recordings taken in against the
//! answers given and what of them the РЦОИ holds. The recordings themselves are heard and
//! checked on `/recordings`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::SchoolWeb;
use super::layout::{now_ms, page};
use crate::app::day::SchoolDay;
use crate::web::escape;

/// A room's line: its stream, the answers given, those recorded and those at the РЦОИ.
struct RoomLine {
    stream: bool,
    answered: usize,
    recorded: usize,
    at_rcoi: usize,
}

fn room_line(day: &SchoolDay, room: giasync_shared::codes::RoomCode) -> RoomLine {
    let of_room = || day.recordings.iter().filter(move |r| r.room == room);
    // An answer is a participant's attempt with a start in the room log.
    let answers: Vec<(String, Option<u8>)> = day
        .participants
        .iter()
        .filter(|p| p.entry.room == Some(room))
        .flat_map(|p| {
            p.answers
                .iter()
                .filter(|a| a.start.is_some())
                .map(|a| (p.entry.id.clone(), a.attempt))
        })
        .collect();
    let recorded = answers
        .iter()
        .filter(|(id, attempt)| {
            of_room()
                .any(|r| r.participant.is_some_and(|p| p.as_str() == id) && r.attempt == *attempt)
        })
        .count();
    RoomLine {
        stream: of_room().any(|r| r.participant.is_none()),
        answered: answers.len(),
        recorded,
        at_rcoi: of_room().filter(|r| r.at_rcoi).count(),
    }
}

pub(super) async fn technician(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
    let (who, day) = match web.open(&headers, "tech", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = String::new();
    // The link.
    let s = &day.sync;
    let link = if s.online {
        format!(
            "на связи ({})",
            escape(&crate::web::russian_node(&s.upstream))
        )
    } else {
        "нет связи".to_owned()
    };
    let last = s.last_contact.map_or_else(
        || "ни разу".to_owned(),
        |t| {
            format!(
                "{} {}",
                t.date_at(day.utc_offset),
                t.at_offset(day.utc_offset).hh_mm()
            )
        },
    );
    b.push_str(&format!(
        "<h2>Связь</h2><p id=\"tech-link\">Узел ОО: <b>{link}</b>; последний обмен: {last}; не передано документов: {}; бланков в РЦОИ: {} из {}.</p>",
        s.docs_pending, s.sheets_at_rcoi, s.sheets
    ));
    // The clock.
    let now = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms()).ok();
    if let Some(now) = now {
        let today = now.date_at(day.utc_offset);
        let when = if today == day.exam.date() {
            "сегодня день проведения".to_owned()
        } else {
            format!("день проведения — {}", day.exam.date())
        };
        b.push_str(&format!(
            "<h2>Часы</h2><p id=\"tech-clock\">На часах узла {today} {} по местному времени региона; {when}.</p>",
            now.at_offset(day.utc_offset).hh_mm()
        ));
    }
    // The recordings, per room.
    b.push_str("<h2>Аудиозаписи</h2><table id=\"tech-recordings\"><tr><th>Аудитория</th><th>Общая запись</th><th>Ответов</th><th>Записано ответов</th><th>В РЦОИ (записей)</th></tr>");
    for room in &day.rooms {
        let line = room_line(&day, room.code);
        b.push_str(&format!(
            "<tr id=\"tech-room-{code}\"><td>{code}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            if line.stream { "есть" } else { "нет" },
            line.answered,
            if line.recorded < line.answered {
                "missing"
            } else {
                "ok"
            },
            line.recorded,
            line.at_rcoi,
            code = escape(room.code.as_str()),
        ));
    }
    b.push_str("</table><p><a href=\"/recordings\">Прослушать и проверить записи</a> · <a href=\"/sync\">Синхронизация</a></p>");
    page("Технический специалист", Some(&who), Some(&day), &b).into_response()
}
