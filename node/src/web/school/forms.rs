//! The printable forms of the room (seed 002 §8, §43, §54): the room log («ведомость учёта
//! проведения итогового собеседования в аудитории») and the expert's protocol («протокол
//! эксперта по оцениванию ответов участников итогового собеседования»), on A4 with what the
//! node holds filled in; the lines for handwritten signatures are left blank. `docs/school-ui.md`
//! says where each field comes from.

use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use giasync_shared::codes::RoomCode;

use super::SchoolWeb;
use super::layout::{full_name, page, time_of};
use crate::app::day::{DayParticipant, SchoolDay, SheetState};
use crate::web::escape;

/// The participants the roster places in `room`, in the roster's order.
fn in_room<'d>(day: &'d SchoolDay, room: &str) -> Vec<&'d DayParticipant> {
    day.participants
        .iter()
        .filter(|p| p.entry.room.is_some_and(|r| r.as_str() == room))
        .collect()
}

/// The people the current commission order names for `room` in one role, or those the room's
/// data names (the interviewers of its log, the experts of its sheets) when there is no order.
fn people(
    day: &SchoolDay,
    room: &str,
    expert: bool,
    from_data: impl Iterator<Item = String>,
) -> String {
    let named = day.commission.as_ref().and_then(|o| {
        o.rooms.iter().find(|r| r.room.as_str() == room).map(|r| {
            let list = if expert { &r.experts } else { &r.interviewers };
            list.iter().map(ToString::to_string).collect::<Vec<_>>()
        })
    });
    let mut list = named.unwrap_or_else(|| from_data.collect());
    list.sort();
    list.dedup();
    list.join(", ")
}

/// The mark the room log carries for a participant: «Н», early completion or removal with the
/// act's number.
fn mark(p: &DayParticipant) -> String {
    use giasync_shared::room::Attendance;
    match &p.entry.attendance {
        Some(Attendance::Absent) => "Н".to_owned(),
        Some(Attendance::FinishedEarly { act }) => format!("досрочно, акт № {}", act.as_str()),
        Some(Attendance::Removed { act }) => format!("удалён, акт № {}", act.as_str()),
        Some(Attendance::Present) | None => String::new(),
    }
}

/// A line of the printed room log: an attempt, its answer if one was logged, and its mark.
struct LogLine<'a> {
    attempt: Option<u8>,
    answer: Option<&'a crate::app::day::DayAnswer>,
    mark: String,
}

/// A participant's lines in the printed room log: one per attempt they answered or an act
/// ended on this date, so a same-day retake after a bad recording (§45) is a second line with
/// its own variant; one line with the participant's mark when nothing was logged.
fn log_lines(p: &DayParticipant) -> Vec<LogLine<'_>> {
    let retake = p
        .attempt
        .filter(|open| p.act.as_ref().is_some_and(|act| act.attempt < *open));
    let mut attempts: std::collections::BTreeSet<u8> = p
        .answers
        .iter()
        .filter_map(|a| a.attempt.or(p.attempt))
        .collect();
    attempts.extend(p.acts.iter().map(|a| a.attempt));
    attempts.extend(retake);
    let last = attempts.last().copied();
    if attempts.is_empty() {
        return vec![LogLine {
            attempt: p.attempt,
            answer: p.answers.last(),
            mark: mark(p),
        }];
    }
    attempts
        .into_iter()
        .map(|attempt| {
            let ended = p.acts.iter().find(|a| a.attempt == attempt);
            let mark = match ended {
                Some(act) => match act.kind {
                    giasync_shared::act::ActKind::Removal => {
                        format!("удалён, акт № {}", act.number.as_str())
                    }
                    giasync_shared::act::ActKind::Early(_) => {
                        format!("досрочно, акт № {}", act.number.as_str())
                    }
                },
                None if p.acts.iter().any(|a| a.attempt < attempt) => {
                    "повторно, другой вариант КИМ".to_owned()
                }
                None if Some(attempt) == last => mark(p),
                None => String::new(),
            };
            LogLine {
                attempt: Some(attempt),
                answer: p
                    .answers
                    .iter()
                    .find(|a| a.attempt.or(p.attempt) == Some(attempt)),
                mark,
            }
        })
        .collect()
}

/// Form header: the school, the date, the room.
fn header(title: &str, day: &SchoolDay, room: &str, role: &str, names: &str) -> String {
    format!(
        "<p class=\"title\">{title}</p>\
         <table class=\"fields\"><tr><th>Образовательная организация (код)</th><td>{}</td></tr>\
         <tr><th>Дата проведения</th><td>{}</td></tr><tr><th>Аудитория</th><td>{}</td></tr>\
         <tr><th>{role}</th><td>{}</td></tr></table>",
        day.school,
        day.exam.date().ru(),
        escape(room),
        escape(names)
    )
}

/// The signed-in person allowed on `page`, the day, and the room the URL names.
async fn open_room(
    web: &SchoolWeb,
    headers: &HeaderMap,
    page: &str,
    room: &str,
) -> Result<(super::Who, SchoolDay, RoomCode), Box<Response>> {
    let (who, day) = web.open(headers, page, None).await?;
    match RoomCode::new(room) {
        Ok(room) => Ok((who, day, room)),
        Err(_) => Err(Box::new(super::layout::error_page(
            axum::http::StatusCode::NOT_FOUND,
            Some(&who),
            "Нет такой аудитории",
        ))),
    }
}

pub(super) async fn print_log(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(room): UrlPath<String>,
) -> Response {
    let (who, day, room) = match open_room(&web, &headers, "print", &room).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let room = room.as_str();
    let participants = in_room(&day, room);
    let interviewers = people(
        &day,
        room,
        false,
        participants
            .iter()
            .filter_map(|p| p.interviewer.map(|i| i.to_string())),
    );
    let mut b = format!(
        "<div class=\"form\" id=\"log-form\">{}",
        header(
            "Ведомость учёта проведения итогового собеседования в аудитории",
            &day,
            room,
            "Собеседник",
            &interviewers
        )
    );
    b.push_str("<table class=\"rows\"><tr><th>№</th><th>Участник (ФИО)</th><th>Класс</th><th>Попытка</th><th>Вариант КИМ</th><th>Начало ответа</th><th>Окончание ответа</th><th>Отметка</th><th>Подпись участника</th></tr>");
    for (n, p) in participants.iter().enumerate() {
        for line in log_lines(p) {
            let answer = line.answer;
            b.push_str(&format!(
                "<tr id=\"line-{}-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"variant\">{}</td><td>{}</td><td>{}</td><td class=\"mark\">{}</td><td class=\"line\"></td></tr>",
                escape(&p.entry.id),
                line.attempt.unwrap_or(0),
                n + 1,
                escape(&full_name(p)),
                escape(&p.entry.class),
                line.attempt.map_or_else(String::new, |a| a.to_string()),
                answer
                    .and_then(|a| a.variant)
                    .map_or_else(|| "—".to_owned(), |v| v.to_string()),
                time_of(answer.and_then(|a| a.start), day.utc_offset),
                time_of(answer.and_then(|a| a.end), day.utc_offset),
                escape(&line.mark),
            ));
        }
    }
    b.push_str("</table><table class=\"signatures\"><tr><th>Собеседник</th><td></td><td class=\"line\"></td></tr>\
        <tr><th>Ответственный организатор</th><td></td><td class=\"line\"></td></tr></table></div>");
    b.push_str(super::layout::PRINT_BUTTON);
    page(&format!("Ведомость аудитории {room}"), Some(&who), None, &b).into_response()
}

pub(super) async fn print_protocol(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(room): UrlPath<String>,
) -> Response {
    let (who, day, room) = match open_room(&web, &headers, "protocol", &room).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let room = room.as_str();
    let participants = in_room(&day, room);
    let counting = |p: &DayParticipant| {
        p.sheets
            .iter()
            .rfind(|s| matches!(s.state, SheetState::Current | SheetState::Settled))
            .cloned()
    };
    let experts = people(
        &day,
        room,
        true,
        participants
            .iter()
            .filter_map(|p| counting(p).map(|s| s.expert.to_string())),
    );
    let criteria: Vec<String> = web
        .0
        .rules
        .criteria()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    let mut b = format!(
        "<div class=\"form\" id=\"protocol-form\">{}",
        header(
            "Протокол эксперта по оцениванию ответов участников итогового собеседования",
            &day,
            room,
            "Эксперт",
            &experts
        )
    );
    b.push_str(
        "<table class=\"rows\"><tr><th>№</th><th>Участник (ФИО)</th><th>Класс</th><th>Попытка</th>",
    );
    for c in &criteria {
        b.push_str(&format!("<th>{}</th>", escape(c)));
    }
    b.push_str("<th>Итого</th><th>Результат</th><th>Эксперт</th></tr>");
    for (n, p) in participants.iter().enumerate() {
        let sheet = counting(p);
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            n + 1,
            escape(&full_name(p)),
            escape(&p.entry.class),
            p.attempt.map_or_else(String::new, |a| a.to_string()),
        ));
        for c in &criteria {
            let points = sheet.as_ref().and_then(|s| {
                s.points
                    .iter()
                    .find(|(id, _)| id == c)
                    .map(|(_, v)| v.to_string())
            });
            b.push_str(&format!(
                "<td>{}</td>",
                points.unwrap_or_else(|| "—".to_owned())
            ));
        }
        let (total, outcome, expert) = match &sheet {
            Some(s) => (
                s.total.to_string(),
                s.outcome.display_name().to_owned(),
                s.expert.to_string(),
            ),
            None => (String::new(), mark(p), String::new()),
        };
        b.push_str(&format!(
            "<td>{total}</td><td>{}</td><td>{}</td></tr>",
            escape(&outcome),
            escape(&expert)
        ));
    }
    b.push_str("</table><p class=\"note\">Баллы — из бланков, подписанных электронной подписью эксперта («—»: критерий не оценивается для категории участника или бланка нет).</p>\
        <table class=\"signatures\"><tr><th>Эксперт</th><td></td><td class=\"line\"></td></tr></table></div>");
    b.push_str(super::layout::PRINT_BUTTON);
    page(
        &format!("Протокол эксперта, аудитория {room}"),
        Some(&who),
        None,
        &b,
    )
    .into_response()
}

/// The familiarisation list for signatures (seed 002 §74, seed 003 §2.7): each participant
/// with a published result, the result, and when and by whom their familiarisation was
/// recorded; the participant signs on paper in the last column.
pub(super) async fn print_familiarisation(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
) -> Response {
    let (who, day) = match web.open(&headers, "results", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let results = match web
        .apply(&who, crate::app::Command::Results { exam: day.exam })
        .await
    {
        Ok(crate::app::Answer::Results(r)) => r,
        Ok(_) => {
            return super::layout::error_page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                Some(&who),
                &super::russian(&crate::web::WebError::Unexpected),
            );
        }
        Err(e) => {
            return super::layout::error_page(
                axum::http::StatusCode::NOT_FOUND,
                Some(&who),
                &format!("Результатов пока нет: {e}"),
            );
        }
    };
    let signed_at = format!(
        "{} {}",
        results.at.date_at(day.utc_offset).ru(),
        time_of(Some(results.at), day.utc_offset)
    );
    let mut b = format!(
        "<div class=\"form\" id=\"familiarisation-form\"><p class=\"title\">Ведомость ознакомления участников итогового собеседования с результатами</p>\
         <table class=\"fields\"><tr><th>Образовательная организация (код)</th><td>{}</td></tr>\
         <tr><th>Дата проведения</th><td>{}</td></tr>\
         <tr><th>Ознакомить не позднее</th><td>{}</td></tr>\
         <tr><th>Результаты подписаны РЦОИ</th><td>{}</td></tr></table>",
        day.school,
        day.exam.date().ru(),
        results.familiarise_by.map(|d| d.ru()).unwrap_or_default(),
        signed_at
    );
    b.push_str("<table class=\"rows\"><tr><th>№</th><th>Участник (ФИО)</th><th>Класс</th><th>Документ</th><th>Попытка</th><th>Результат</th><th>Ознакомлен (дата, время)</th><th>Удостоверил</th><th>Подпись участника</th></tr>");
    for (n, row) in results.rows.iter().enumerate() {
        let pid = row.participant.as_str();
        let p = day.participant(pid);
        b.push_str(&format!(
            "<tr id=\"f-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td class=\"line\"></td></tr>",
            escape(pid),
            n + 1,
            escape(&p.map_or_else(|| pid.to_owned(), full_name)),
            escape(p.map_or("", |p| p.entry.class.as_str())),
            escape(&p.map_or_else(String::new, |p| format!(
                "{} {}",
                p.entry.series, p.entry.number
            ))),
            row.attempt,
            row.outcome.display_name(),
            row.total,
            row.familiarised
                .map(|at| format!(
                    "{} {}",
                    at.date_at(day.utc_offset).ru(),
                    time_of(Some(at), day.utc_offset)
                ))
                .unwrap_or_default(),
            row.familiarised_by.map(|p| p.to_string()).unwrap_or_default(),
        ));
    }
    let informed = results
        .rows
        .iter()
        .filter(|r| r.familiarised.is_some())
        .count();
    b.push_str(&format!(
        "</table><p class=\"note\" id=\"informed\">Ознакомлено {informed} из {}. Участник расписывается в ведомости; запись об ознакомлении подписывает электронной подписью ответственный организатор.</p>\
         <table class=\"signatures\"><tr><th>Ответственный организатор</th><td></td><td class=\"line\"></td></tr></table></div>",
        results.rows.len()
    ));
    b.push_str(super::layout::PRINT_BUTTON);
    page("Ведомость ознакомления", Some(&who), None, &b).into_response()
}
