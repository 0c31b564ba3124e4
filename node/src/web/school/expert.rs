//! The expert's pages: who is to be scored, the category's criteria with a live total, signing
//! (or correcting) a score sheet.

use std::collections::BTreeMap;

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::ParticipantId;
use giasync_shared::record::{
    Attempt, Correction, RecordHash, SheetDraft, SheetSubject, SignedSheet,
};

use super::layout::{
    absent, back, error_page, full_name, message_block, now_ms, page, receipt_name, room_text,
    state_name, time_of, url_encode,
};
use super::sign_in::gate;
use super::{SchoolWeb, russian};
use crate::app::day::{DayVerdict, SheetState};
use crate::app::{Answer, Command};
use crate::web::{WebError, escape};

pub(super) async fn score_list(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "score", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = message_block(&query);
    // With a commission order in force, an expert scores the participants of their rooms only.
    let mine = day.rooms_of_expert(who.person.id);
    let protocol_link = |r: &giasync_shared::codes::RoomCode| {
        format!(
            "{r} (<a href=\"/print/protocol/{r}\">протокол</a>)",
            r = escape(r.as_str())
        )
    };
    let links: Vec<String> = match &mine {
        Some(rooms) => rooms.iter().map(protocol_link).collect(),
        None => day.rooms.iter().map(|r| protocol_link(&r.code)).collect(),
    };
    let links = if links.is_empty() {
        "нет".to_owned()
    } else {
        links.join(", ")
    };
    b.push_str(&if mine.is_some() {
        format!("<p id=\"my-rooms\">Ваши аудитории по приказу о составе комиссии: {links}</p>")
    } else {
        format!("<p id=\"my-rooms\">Аудитории: {links}</p>")
    });
    b.push_str("<table id=\"to-score\"><tr><th>Участник</th><th>Аудитория</th><th>Ответ</th><th>Результат</th><th></th></tr>");
    let in_my_rooms = |p: &&crate::app::day::DayParticipant| {
        mine.as_ref()
            .is_none_or(|rooms| p.entry.room.is_some_and(|r| rooms.contains(&r)))
    };
    for p in day
        .participants
        .iter()
        .filter(|p| !absent(p))
        .filter(in_my_rooms)
    {
        let (class, state) = match (p.verdict, p.result) {
            (DayVerdict::Conflict, _) => (" class=\"conflict\"", "конфликт бланков".to_owned()),
            (DayVerdict::Current | DayVerdict::Settled, Some((total, outcome))) => (
                " class=\"done\"",
                format!("{total} {}", outcome.display_name()),
            ),
            _ => ("", "не оценён".to_owned()),
        };
        b.push_str(&format!(
            "<tr{class}><td>{}<div class=\"conditions\">{}</div></td><td>{}</td><td>{}–{}</td><td>{}</td><td><a href=\"/score/{id}\">Оценить</a></td></tr>",
            escape(&full_name(p)),
            escape(&super::layout::conditions(p)),
            escape(&room_text(p.entry.room)),
            time_of(p.start, day.utc_offset),
            time_of(p.end, day.utc_offset),
            escape(&state),
            id = escape(&p.entry.id)
        ));
    }
    b.push_str("</table>");
    page("Оценивание", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn score_form(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "score", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(p) = day.participant(&pid) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такого участника");
    };
    let Some(category) = p.entry.category else {
        return error_page(
            StatusCode::CONFLICT,
            Some(&who),
            "У участника нет категории",
        );
    };
    let Ok(rules) = web.0.rules.category(category) else {
        return error_page(StatusCode::CONFLICT, Some(&who), "Категории нет в правилах");
    };
    let mut b = message_block(&query);
    // The attempt open today (seed 002 §45): none after an act other than for a bad recording.
    let Some(attempt) = p.attempt else {
        b.push_str(&match &p.act {
            Some(act) => format!(
                "<p class=\"err\" id=\"closed\">{}: попытка завершена актом № {}, её не оценивают.</p>",
                escape(&full_name(p)),
                escape(act.number.as_str())
            ),
            None => "<p class=\"err\" id=\"closed\">Региональный реестр этой даты ещё не получен школой: номер попытки участника неизвестен, бланк пока не подписать.</p>".to_owned(),
        });
        return page("Оценивание участника", Some(&who), Some(&day), &b).into_response();
    };
    let retake = match &p.act {
        Some(act) if act.attempt < attempt => format!(
            "<p id=\"retake\">Попытка {attempt}: повторное прохождение в день экзамена после акта № {} (некачественная аудиозапись) — с другим вариантом КИМ.</p>",
            escape(act.number.as_str())
        ),
        _ => String::new(),
    };
    b.push_str(&retake);
    let conditions = super::layout::conditions(p);
    if !conditions.is_empty() {
        b.push_str(&format!(
            "<p id=\"conditions\" class=\"msg\">Особые условия: {}</p>",
            escape(&conditions)
        ));
    }
    // The answer's recording, for scoring afterwards (РАС, §60 «д») or checking a score.
    if let Some(r) = day.recordings.iter().find(|r| {
        r.participant.as_ref().map(|x| x.as_str()) == Some(p.entry.id.as_str())
            && r.attempt == Some(attempt)
    }) {
        b.push_str(&format!(
            "<p id=\"recording\">Аудиозапись ответа: <audio controls preload=\"metadata\" src=\"/recording/{}\"></audio></p>",
            escape(&r.hash)
        ));
    }
    b.push_str(&format!(
        "<p>{} — {}, аудитория {}</p><p>Категория: <b>{}</b>{}; максимум {} баллов, зачёт от {}.</p>",
        escape(&full_name(p)),
        escape(&p.entry.class),
        escape(&room_text(p.entry.room)),
        escape(&rules.name),
        if p.entry.registered {
            ""
        } else {
            " (не подтверждена региональным реестром: РЦОИ не примет бланк, пока реестр её не подтвердит)"
        },
        rules.max,
        rules.pass_from
    ));
    if !p.sheets.is_empty() {
        b.push_str("<h2>Бланки</h2><table id=\"sheets\"><tr><th>Эксперт</th><th>Баллы</th><th>Подписан</th><th>Состояние</th><th>В РЦОИ</th></tr>");
        for s in &p.sheets {
            let class = if s.state == SheetState::Conflict {
                " class=\"conflict\""
            } else {
                ""
            };
            b.push_str(&format!(
                "<tr{class}><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(s.expert.as_str()),
                s.total,
                s.outcome.display_name(),
                s.signed_at.at_offset(day.utc_offset).ru(),
                escape(&state_name(&s.state)),
                escape(&receipt_name(&s.at_rcoi))
            ));
        }
        b.push_str("</table>");
        if p.verdict == DayVerdict::Conflict {
            b.push_str("<p class=\"err\" id=\"conflict\">Конфликт: два бланка без исправления между ними. Исправление ниже заменит оба; иначе конфликт урегулирует комиссия школы (председатель подписывает решение: <code>giasync-node settle</code>).</p>");
        }
    }
    let correcting = p.verdict.scored();
    b.push_str(&format!(
        "<form method=\"post\" action=\"/score/{}\" id=\"score\" data-pass=\"{}\"><input type=\"hidden\" name=\"attempt\" value=\"{attempt}\"><table><tr><th>Критерий</th><th>Задание</th><th>Баллы</th></tr>",
        escape(&p.entry.id),
        rules.pass_from
    ));
    for c in rules.criteria(&web.0.rules) {
        let id = c.id.to_string();
        b.push_str(&format!(
            "<tr><td>{id}</td><td>{}</td><td><input type=\"number\" name=\"c_{id}\" data-max=\"{max}\" min=\"0\" max=\"{max}\" required> из {max}</td></tr>",
            escape(&c.task),
            max = c.max,
            id = escape(&id)
        ));
    }
    b.push_str(&format!(
        "</table><p>Итого: <span id=\"total\">0</span> из {} — <span id=\"outcome\"></span></p>",
        rules.max
    ));
    if correcting {
        b.push_str("<p><label>Причина исправления <input name=\"reason\" size=\"50\" required></label></p>");
    }
    b.push_str(&format!(
        "<p><button type=\"submit\">{}</button></p></form>",
        if correcting {
            "Подписать исправление"
        } else {
            "Подписать бланк"
        }
    ));
    page("Оценивание участника", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn score_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "score") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let day = web.day(&who, None).await?;
        let p = day.participant(&pid).ok_or("Нет такого участника")?;
        let category = p.entry.category.ok_or("У участника нет категории")?;
        let points = form
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("c_")?, v)))
            .map(|(id, v)| -> Result<_, String> {
                Ok((
                    id.parse()
                        .map_err(|e: giasync_shared::DomainError| e.to_string())?,
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| format!("{id}: не число"))?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        // A correction replaces every sheet that counts now (or every sheet of a conflict).
        let heads: Vec<RecordHash> = p
            .sheets
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    SheetState::Current | SheetState::Conflict | SheetState::Settled
                )
            })
            .map(|s| s.hash)
            .collect();
        let correction = if heads.is_empty() {
            None
        } else {
            let reason = form
                .get("reason")
                .map(|r| r.trim().to_owned())
                .unwrap_or_default();
            if reason.is_empty() {
                return Err("Исправление требует причины".to_owned());
            }
            Some(Correction {
                supersedes: heads,
                reason,
            })
        };
        let draft = SheetDraft {
            subject: SheetSubject {
                exam: day.exam,
                school: day.school,
                participant: ParticipantId::new(&p.entry.id).map_err(|e| e.to_string())?,
                attempt: Attempt::new(same_attempt(p.attempt, &form)?)
                    .map_err(|e| e.to_string())?,
            },
            room: p.entry.room.ok_or("Участник не назначен в аудиторию")?,
            category,
            points,
            expert: who.person.id,
            signed_at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
            correction,
        };
        let sheet = SignedSheet::sign(draft, &web.0.rules, &who.key).map_err(|e| e.to_string())?;
        let command = Command::Score {
            exam: day.exam,
            sheet: sheet.as_bytes().to_vec(),
            expert: who.person.id,
            expert_cert: who.cert_der.clone(),
        };
        match web.apply(&who, command).await? {
            Answer::Scored(s) => Ok(format!(
                "Бланк подписан и сохранён: {} — {} баллов, {}",
                full_name(p),
                s.total,
                s.outcome.display_name()
            )),
            _ => Err(russian(&WebError::Unexpected)),
        }
    }
    .await;
    match result {
        Ok(m) => back("/score", Ok(m)),
        Err(e) => back(&format!("/score/{}", url_encode(&pid)), Err(e)),
    }
}

/// The attempt a form was shown for, when it is still the participant's open attempt: an act
/// between showing and submitting (a bad recording ends it, another act closes the day) must
/// not move a sheet or an act onto another attempt.
pub(super) fn same_attempt(
    open: Option<u8>,
    form: &BTreeMap<String, String>,
) -> Result<u8, String> {
    let open = open.ok_or("Попытка участника завершена актом: её не оценивают")?;
    match form.get("attempt").map(|a| a.parse::<u8>()) {
        Some(Ok(shown)) if shown == open => Ok(open),
        Some(_) => Err(format!(
            "Попытка участника изменилась (теперь открыта попытка {open}): откройте страницу заново"
        )),
        None => Ok(open),
    }
}
