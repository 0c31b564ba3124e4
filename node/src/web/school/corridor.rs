//! The queue of each room, for the organiser in the corridor («организатор проведения», seed
//! 002 §46; the instruction for that organiser): who is answering now, who is next, who waits,
//! who is back for a same-day retake with another variant after a bad recording (§45), and «Н»
//! for a participant who did not come.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use giasync_shared::room::Attendance;

use super::SchoolWeb;
use super::layout::{full_name, message_block, page, time_of};
use crate::app::day::DayParticipant;
use crate::web::escape;

/// Where a participant stands in their room's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Answering now: the log has a start and no end.
    Answering,
    /// Their attempt was ended by an act for a bad recording and the next one is open: back in
    /// the queue for a same-day retake.
    Retake,
    /// Not called yet.
    Waiting,
    /// Answered, ended by an act, or absent.
    Done,
}

fn place(p: &DayParticipant) -> Place {
    // Back for a same-day retake: an act for a bad recording opened the next attempt; the room
    // log's columns are that attempt's answer.
    if let (Some(act), Some(open)) = (&p.act, p.attempt)
        && act.attempt < open
    {
        return match (p.start, p.end) {
            (None, _) => Place::Retake,
            (Some(_), None) => Place::Answering,
            (Some(_), Some(_)) => Place::Done,
        };
    }
    match (&p.entry.attendance, p.start, p.end) {
        (Some(Attendance::Absent | Attendance::Removed { .. }), _, _) => Place::Done,
        (Some(Attendance::FinishedEarly { .. }), _, _) => Place::Done,
        (_, Some(_), None) => Place::Answering,
        (_, Some(_), Some(_)) => Place::Done,
        (_, None, _) => Place::Waiting,
    }
}

pub(super) async fn queue(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "queue", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let may_mark = super::allowed(who.person.role, "mark");
    let mut b = message_block(&query);
    for room in &day.rooms {
        let code = escape(room.code.as_str());
        let of_room: Vec<(&DayParticipant, Place)> = day
            .participants
            .iter()
            .filter(|p| p.entry.room == Some(room.code))
            .map(|p| (p, place(p)))
            .collect();
        let names = |wanted: Place| -> Vec<&DayParticipant> {
            of_room
                .iter()
                .filter(|(_, at)| *at == wanted)
                .map(|(p, _)| *p)
                .collect()
        };
        let answering = names(Place::Answering);
        // Retakes go first: the participant is already at school and waiting.
        let mut next: Vec<&DayParticipant> = names(Place::Retake);
        next.extend(names(Place::Waiting));
        let done = names(Place::Done).len();
        b.push_str(&format!(
            "<section class=\"queue\" id=\"queue-{code}\"><h2>Аудитория {code}</h2>"
        ));
        for p in &answering {
            b.push_str(&format!(
                "<p class=\"answering\">Сейчас отвечает: <b>{}</b> (с {})</p>",
                escape(&full_name(p)),
                time_of(p.start, day.utc_offset)
            ));
        }
        match next.first() {
            Some(p) => b.push_str(&format!(
                "<p class=\"next\">Следующий: <b>{}</b>{}</p>",
                escape(&full_name(p)),
                if place(p) == Place::Retake {
                    " — повторно, с другим вариантом КИМ (акт о некачественной аудиозаписи)"
                } else {
                    ""
                }
            )),
            None => b.push_str("<p class=\"next\">Все участники аудитории прошли.</p>"),
        }
        if !next.is_empty() {
            b.push_str("<table class=\"waiting\"><tr><th>Ждут</th><th></th></tr>");
            for p in &next {
                let id = escape(&p.entry.id);
                let mark = if may_mark && place(p) == Place::Waiting {
                    format!(
                        "<form class=\"inline\" method=\"post\" action=\"/mark\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"exam\" value=\"{}\"><input type=\"hidden\" name=\"back\" value=\"/queue\"><button name=\"status\" value=\"absent\">Н</button></form>",
                        day.exam
                    )
                } else {
                    String::new()
                };
                b.push_str(&format!(
                    "<tr id=\"wait-{id}\"><td>{}</td><td>{mark}</td></tr>",
                    escape(&full_name(p))
                ));
            }
            b.push_str("</table>");
        }
        b.push_str(&format!(
            "<p class=\"muted\">Прошли или отмечены: {done}</p></section>"
        ));
    }
    page("Очередь в аудитории", Some(&who), Some(&day), &b).into_response()
}
