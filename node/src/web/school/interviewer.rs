//! The interviewer's page: the room log, the next participant, start and end of each answer.

use std::collections::BTreeMap;

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, RoomCode};
use giasync_shared::room::Variant;

use super::SchoolWeb;
use super::layout::{
    absent, attendance_name, back, full_name, message_block, now_ms, page, time_of, url_encode,
};
use super::sign_in::gate;
use crate::app::Command;
use crate::app::day::DayParticipant;
use crate::web::escape;

pub(super) async fn room_log(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "log", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // The interviewer's own rooms by the head's order come first (§22, §37).
    let mine = day.rooms_of_interviewer(who.person.id);
    let room = query
        .get("room")
        .and_then(|r| RoomCode::new(r).ok())
        .or_else(|| mine.as_ref().and_then(|m| m.first().copied()))
        .or_else(|| day.rooms.first().map(|r| r.code));
    let mut b = message_block(&query);
    if let Some(mine) = &mine {
        let rooms: Vec<&str> = mine.iter().map(RoomCode::as_str).collect();
        b.push_str(&format!(
            "<p id=\"my-rooms\">Ваши аудитории по приказу о составе комиссии: {}</p>",
            escape(&if rooms.is_empty() {
                "нет".to_owned()
            } else {
                rooms.join(", ")
            })
        ));
    }
    b.push_str("<form method=\"get\" action=\"/log\">Аудитория <select name=\"room\">");
    for r in &day.rooms {
        b.push_str(&format!(
            "<option value=\"{c}\"{}>{c}</option>",
            if Some(r.code) == room {
                " selected"
            } else {
                ""
            },
            c = escape(r.code.as_str())
        ));
    }
    b.push_str("</select> <button>Открыть</button></form>");
    let in_room: Vec<&DayParticipant> = day
        .participants
        .iter()
        .filter(|p| room.is_some() && p.entry.room == room)
        .collect();
    let next = in_room
        .iter()
        .find(|p| p.start.is_none() && p.entry.attendance.is_none())
        .map(|p| p.entry.id.clone());
    if let Some(next) = &next
        && let Some(p) = in_room.iter().find(|p| &p.entry.id == next)
    {
        b.push_str(&format!(
            "<p id=\"next\" class=\"msg\">Следующий участник: <b>{}</b></p>",
            escape(&full_name(p))
        ));
    }
    let room = room.map(|r| r.to_string()).unwrap_or_default();
    let back_to = format!("/log?room={}", url_encode(&room));
    b.push_str("<table id=\"log\"><tr><th>Участник</th><th>Попытка</th><th>Время на ответ</th><th>Вариант</th><th>Начало</th><th>Окончание</th><th>Явка</th><th></th></tr>");
    for p in &in_room {
        let id = escape(&p.entry.id);
        let class = if Some(&p.entry.id) == next.as_ref() {
            " class=\"next\""
        } else {
            ""
        };
        let action = match (p.start, p.end) {
            (None, _) if !absent(p) => format!(
                "<form class=\"inline start\" method=\"post\" action=\"/log\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"room\" value=\"{r}\">вариант КИМ <input name=\"variant\" type=\"number\" min=\"1\" max=\"{max}\" required size=\"3\"> <button name=\"at\" value=\"start\">Начало ответа</button></form>",
                r = escape(&room),
                max = giasync_shared::room::VARIANT_MAX,
            ),
            (Some(_), None) => format!(
                "<form class=\"inline\" method=\"post\" action=\"/log\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"room\" value=\"{r}\"><button name=\"at\" value=\"end\">Окончание ответа</button></form>",
                r = escape(&room)
            ),
            _ => String::new(),
        };
        let allowed_ms = p.entry.allowed_ms();
        // A running clock while the answer goes on (the page's script counts it down); an
        // overrun once it ended past its time.
        let clock = match (p.start, p.end, p.overrun_ms()) {
            (Some(start), None, _) => format!(
                " <span class=\"clock\" data-start=\"{}\" data-allowed=\"{allowed_ms}\"></span>",
                start.unix_ms()
            ),
            (_, _, Some(over)) => format!(
                " <span class=\"overrun\">превышение на {} мин</span>",
                (over + 59_999) / 60_000
            ),
            _ => String::new(),
        };
        let allowed = format!(
            "{} мин{}{clock}",
            allowed_ms / 60_000,
            if allowed_ms > giasync_shared::room::ANSWER_MS {
                " (+30: ОВЗ или инвалидность)"
            } else {
                ""
            }
        );
        b.push_str(&format!(
            "<tr id=\"log-{id}\"{class}><td>{}<div class=\"conditions\">{}</div></td><td class=\"attempt\">{}</td><td class=\"allowed\">{allowed}</td><td class=\"variant\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action} \
             <form class=\"inline\" method=\"post\" action=\"/mark\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"back\" value=\"{bt}\">\
             <button name=\"status\" value=\"absent\">Н</button> акт <input name=\"act\" size=\"5\"> <button name=\"status\" value=\"early\">Досрочно</button></form></td></tr>",
            escape(&full_name(p)),
            escape(&super::layout::conditions(p)),
            attempt_text(p),
            p.variant.map_or_else(|| "—".to_owned(), |v| v.to_string()),
            time_of(p.start, day.utc_offset),
            time_of(p.end, day.utc_offset),
            escape(&attendance_name(p)),
            bt = escape(&back_to),
        ));
    }
    b.push_str("</table>");
    page("Журнал аудитории", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn log_entry(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "log") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let room = form.get("room").cloned().unwrap_or_default();
    let end = form.get("at").map(String::as_str) == Some("end");
    let result = async {
        let participant = ParticipantId::new(form.get("participant").map_or("", String::as_str))
            .map_err(|e| format!("Неверное значение: {e}"))?;
        // The variant is said into the recording at the start (§42); a same-day retake needs
        // another one (§45), so the page asks for it.
        let variant = if end {
            None
        } else {
            let text = form.get("variant").map_or("", String::as_str);
            if text.trim().is_empty() {
                return Err("Укажите номер варианта КИМ, выданного участнику".to_owned());
            }
            Some(
                text.parse::<Variant>()
                    .map_err(|e| format!("Неверный номер варианта: {e}"))?,
            )
        };
        let at = Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?;
        let day = web.day(&who, None).await?;
        let command = Command::Log {
            exam: day.exam,
            participant,
            interviewer: Some(who.person.id),
            at,
            end,
            variant,
        };
        web.apply(&who, command).await
    }
    .await;
    back(
        &format!("/log?room={}", url_encode(&room)),
        result.map(|_| {
            if end {
                "Окончание ответа записано".to_owned()
            } else {
                "Начало ответа записано".to_owned()
            }
        }),
    )
}

/// The attempt the row's columns are of: an answer under way, else the open one, else the last
/// answered once the day's attempt is closed; «2 (повторно)» for a same-day retake.
fn attempt_text(p: &DayParticipant) -> String {
    let under_way = p
        .answers
        .iter()
        .rfind(|a| a.start.is_some() && a.end.is_none())
        .and_then(|a| a.attempt);
    let attempt = under_way
        .or(p.attempt)
        .or_else(|| p.answers.last().and_then(|a| a.attempt));
    match attempt {
        Some(a) if p.act.as_ref().is_some_and(|act| act.attempt < a) => format!("{a} (повторно)"),
        Some(a) => a.to_string(),
        None => "—".to_owned(),
    }
}
