//! The responsible organiser's pages: roster and rooms, corrections, the printed room list,
//! attendance, published results and familiarisation.

use std::collections::BTreeMap;

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, RoomCode};
use giasync_shared::participant::{FullName, IdentityDocument, Participant, SchoolClass};
use giasync_shared::room::Attendance;

use super::layout::{
    attendance_name, back, category_name, error_page, full_name, message_block, now_ms, page,
    url_encode,
};
use super::sign_in::gate;
use super::{SchoolWeb, russian};
use crate::app::command::{Marking, RosterEntry};
use crate::app::{Answer, Command};
use crate::web::{WebError, escape};

pub(super) async fn roster(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web
        .open(&headers, "roster", query.get("exam").map(String::as_str))
        .await
    {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = message_block(&query);
    b.push_str("<h2>Аудитории</h2><table id=\"rooms\"><tr><th>Аудитория</th><th>Мест</th><th>Назначено</th><th></th></tr>");
    for r in &day.rooms {
        b.push_str(&format!(
            "<tr><td>{code}</td><td>{}</td><td>{}</td><td><a href=\"/print/{code}\">Печать списка</a> · <a href=\"/print/log/{code}\">Ведомость</a> · <a href=\"/print/protocol/{code}\">Протокол эксперта</a></td></tr>",
            r.capacity,
            r.assigned,
            code = escape(r.code.as_str())
        ));
    }
    b.push_str("</table><form method=\"post\" action=\"/rooms\" id=\"add-room\">Аудитория <input name=\"room\" size=\"6\" required> мест <input type=\"number\" name=\"capacity\" min=\"1\" max=\"500\" required> <button>Добавить</button></form>");
    b.push_str("<h2>Участники</h2><table id=\"participants\"><tr><th>Участник</th><th>Класс</th><th>Категория</th><th>Аудитория</th><th>Явка</th><th>Отметить</th></tr>");
    let room_options = |current: Option<RoomCode>| -> String {
        day.rooms
            .iter()
            .map(|r| {
                format!(
                    "<option value=\"{c}\"{}>{c} ({}/{})</option>",
                    if Some(r.code) == current {
                        " selected"
                    } else {
                        ""
                    },
                    r.assigned,
                    r.capacity,
                    c = escape(r.code.as_str())
                )
            })
            .collect()
    };
    for p in &day.participants {
        let id = escape(&p.entry.id);
        // A «Н» gains its reason later (§70: a valid one admits to an additional date).
        let absence = if super::layout::absent(p) {
            format!(
                "<form class=\"inline absence\" method=\"post\" action=\"/absence\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"exam\" value=\"{}\">\
                 документ <input name=\"document\" size=\"18\"> <button name=\"valid\" value=\"yes\">Уважительная</button> <button name=\"valid\" value=\"no\">Неуважительная</button></form>",
                day.exam
            )
        } else {
            String::new()
        };
        b.push_str(&format!(
            "<tr id=\"p-{id}\"><td><a href=\"/roster/{id}\">{}</a> <a class=\"act\" href=\"/act/{id}\">акт</a></td><td>{}</td><td>{}</td>\
             <td><form class=\"inline\" method=\"post\" action=\"/assign\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"exam\" value=\"{exam}\"><select name=\"room\">{}</select> <button name=\"do\" value=\"assign\">Назначить</button></form></td>\
             <td>{}{absence}</td>\
             <td><form class=\"inline\" method=\"post\" action=\"/mark\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"exam\" value=\"{exam}\"><input type=\"hidden\" name=\"back\" value=\"/roster\">\
             <button name=\"status\" value=\"present\">Явился</button> <button name=\"status\" value=\"absent\">Н</button> \
             акт <input name=\"act\" size=\"5\"> <button name=\"status\" value=\"early\">Досрочно</button> <button name=\"status\" value=\"removed\">Удалён</button></form></td></tr>",
            escape(&full_name(p)),
            escape(&p.entry.class),
            escape(&category_text(&web.0.rules, p)),
            room_options(p.entry.room),
            escape(&attendance_name(p)),
            exam = day.exam,
        ));
    }
    b.push_str("</table>");
    page("Список участников и аудитории", Some(&who), Some(&day), &b).into_response()
}

/// A participant's category for the roster table: the category of record, and the change the
/// school asked for while the РЦОИ has not approved it.
fn category_text(
    rules: &giasync_shared::rules::Rules,
    p: &crate::app::day::DayParticipant,
) -> String {
    let entry = &p.entry;
    let name = category_name(rules, entry.category);
    match (entry.registered, entry.requested, &p.approval) {
        (false, _, _) => format!("{name} (нет в реестре)"),
        (true, Some(asked), _) => format!(
            "{name} (запрошено: {}, ждёт утверждения РЦОИ)",
            category_name(rules, Some(asked))
        ),
        // The approval that set the category of record, while it still is the register's.
        (true, None, Some(a)) if entry.category == Some(a.category) => format!(
            "{name} (утверждена РЦОИ: {}, оператор {})",
            a.basis, a.operator
        ),
        (true, None, _) => name,
    }
}

pub(super) async fn edit_form(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "edit", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(p) = day.participant(&pid).map(|p| &p.entry) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такого участника");
    };
    let categories: String = web
        .0
        .rules
        .categories()
        .map(|c| {
            let id = c.category.id();
            format!(
                "<option value=\"{id}\"{}>{}</option>",
                if Some(c.category) == p.requested.or(p.category) {
                    " selected"
                } else {
                    ""
                },
                escape(&c.name)
            )
        })
        .collect();
    let field = |label: &str, name: &str, value: &str| {
        format!(
            "<p><label>{label} <input name=\"{name}\" value=\"{}\"></label></p>",
            escape(value)
        )
    };
    let mut b = message_block(&query);
    b.push_str(&format!(
        "<form method=\"post\" action=\"/roster/{}\" id=\"edit\">",
        escape(&p.id)
    ));
    b.push_str(&field("Фамилия", "surname", &p.surname));
    b.push_str(&field("Имя", "name", &p.given_name));
    b.push_str(&field("Отчество", "patronymic", &p.patronymic));
    b.push_str(&field("Серия документа", "series", &p.series));
    b.push_str(&field("Номер документа", "number", &p.number));
    b.push_str(&field("Класс", "class", &p.class));
    b.push_str(&format!(
        "<p><label><input type=\"checkbox\" name=\"disabled\" value=\"yes\"{}> Инвалидность (+30 минут на ответ при любой категории)</label></p>\
         <p><label><input type=\"checkbox\" name=\"written\" value=\"yes\"{}> Письменная форма (по рекомендации ПМПК, §61)</label></p>",
        if p.disabled { " checked" } else { "" },
        if p.written { " checked" } else { "" }
    ));
    b.push_str(&format!(
        "<p><label>Категория <select name=\"category\">{categories}</select></label></p>\
         <p class=\"note\">Категория из регионального реестра: {}. Другая категория здесь — запрос: \
         по ней не оценивают, пока её не утвердит РЦОИ.</p>\
         <p><button>Сохранить</button> <a href=\"/roster\">Отмена</a></p></form>",
        escape(&if p.registered {
            category_name(&web.0.rules, p.category)
        } else {
            "в реестре участника нет".to_owned()
        })
    ));
    page("Данные участника", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn edit_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "edit") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let result = async {
        let day = web.day(&who, None).await?;
        let p = day.participant(&pid).ok_or("Нет такого участника")?;
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let participant = Participant {
            id: ParticipantId::new(&p.entry.id).map_err(checked)?,
            name: FullName::new(field("surname"), field("name"), field("patronymic"))
                .map_err(checked)?,
            document: IdentityDocument::new(field("series"), field("number")).map_err(checked)?,
            class: SchoolClass::new(field("class")).map_err(checked)?,
            category: field("category").parse().map_err(checked)?,
        };
        let rows = vec![RosterEntry {
            participant,
            disabled: form.contains_key("disabled"),
            written: form.contains_key("written"),
            room: None,
        }];
        web.apply(
            &who,
            Command::RosterImport {
                exam: day.exam,
                rows,
            },
        )
        .await
    }
    .await;
    match result {
        Ok(_) => back("/roster", Ok(format!("Данные участника {pid} сохранены"))),
        Err(e) => back(&format!("/roster/{}", url_encode(&pid)), Err(e)),
    }
}

/// The form of an act ending a participant's attempt: which act, the reason, what happened,
/// its number. Signed with the organiser's key on submit.
pub(super) async fn act_form(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "act", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(p) = day.participant(&pid) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такого участника");
    };
    let reasons: String = giasync_shared::act::EarlyReason::ALL
        .iter()
        .map(|r| {
            format!(
                "<p><label><input type=\"radio\" name=\"kind\" value=\"{}\"> {}: {}</label></p>",
                r.id(),
                escape(giasync_shared::act::ActKind::Early(*r).title()),
                escape(r.name())
            )
        })
        .collect();
    let mut b = message_block(&query);
    b.push_str(&format!(
        "<p>{} — {}, аудитория {}</p><form method=\"post\" action=\"/act/{}\" id=\"act\"><input type=\"hidden\" name=\"attempt\" value=\"{}\">{reasons}\
         <p><label><input type=\"radio\" name=\"kind\" value=\"removal\"> {}</label></p>\
         <p><label>Что произошло (для удаления — что нарушено; для иной причины — какая) <input name=\"text\" size=\"60\"></label></p>\
         <p><label>Номер акта <input name=\"number\" size=\"8\"></label></p>\
         <p><button>Подписать акт</button> <a href=\"/roster\">Отмена</a></p></form>\
         <p class=\"note\">Акт подписывается вашим ключом. Попытку с актом не оценивают: бланк по ней не примут.</p>",
        escape(&full_name(p)),
        escape(&p.entry.class),
        escape(&p.entry.room.map_or_else(|| "не назначена".to_owned(), |r| r.to_string())),
        escape(&p.entry.id),
        p.attempt.unwrap_or_default(),
        escape(giasync_shared::act::ActKind::Removal.title()),
    ));
    // The recordings of the attempt the act would end: heard before an act for a bad recording.
    for r in recordings_of(&day, p, p.attempt) {
        b.push_str(&format!(
            "<p class=\"act-recording\">Запись ответа (попытка {}): {} <audio controls preload=\"metadata\" src=\"/recording/{}\"></audio></p>",
            r.attempt.unwrap_or_default(),
            escape(&r.file_name),
            escape(&r.hash)
        ));
    }
    // The acts already signed on this date, each printable.
    if !p.acts.is_empty() {
        b.push_str("<ul id=\"acts\">");
        for act in &p.acts {
            b.push_str(&format!(
                "<li>{} № {} (попытка {}) — <a href=\"/print/act/{}?attempt={}\">печать</a></li>",
                escape(act.kind.title()),
                escape(act.number.as_str()),
                act.attempt,
                url_encode(&p.entry.id),
                act.attempt
            ));
        }
        b.push_str("</ul>");
    }
    page("Акт", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn act_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    use giasync_shared::act::{Act, ActKind};
    let who = match gate(&web, &headers, "act") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let result = async {
        let day = web.day(&who, None).await?;
        let p = day.participant(&pid).ok_or("Нет такого участника")?;
        let kind = match field("kind") {
            "removal" => ActKind::Removal,
            "" => return Err("Выберите акт и причину".to_owned()),
            reason => ActKind::Early(reason.parse().map_err(|e: String| e)?),
        };
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let act = Act {
            exam: day.exam,
            school: day.school,
            participant: ParticipantId::new(&p.entry.id).map_err(checked)?,
            // The attempt open now: the one the expert's page scores.
            attempt: giasync_shared::record::Attempt::new(super::expert::same_attempt(
                p.attempt, &form,
            )?)
            .map_err(checked)?,
            room: p.entry.room.ok_or("Участник не назначен в аудиторию")?,
            kind,
            text: field("text").trim().to_owned(),
            number: giasync_shared::room::ActNumber::new(field("number")).map_err(checked)?,
            organiser: who.person.id,
            at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
        };
        let statement = act
            .sign(&who.key)
            .map_err(|e| format!("Акт не подписан: {e}"))?;
        web.apply(
            &who,
            Command::Act {
                exam: day.exam,
                statement: statement.as_bytes().to_vec(),
                organiser_cert: who.cert_der.clone(),
            },
        )
        .await
    }
    .await;
    match result {
        Ok(_) => back(
            &format!("/print/act/{}", url_encode(&pid)),
            Ok(format!("Акт по участнику {pid} подписан")),
        ),
        Err(e) => back(&format!("/act/{}", url_encode(&pid)), Err(e)),
    }
}

/// The recordings of `p`'s answer in `attempt` the school's protocol names.
fn recordings_of<'a>(
    day: &'a crate::app::day::SchoolDay,
    p: &'a crate::app::day::DayParticipant,
    attempt: Option<u8>,
) -> impl Iterator<Item = &'a crate::app::day::DayRecording> {
    day.recordings.iter().filter(move |r| {
        attempt.is_some()
            && r.attempt == attempt
            && r.participant.is_some_and(|id| id.as_str() == p.entry.id)
    })
}

/// The act as signed, on A4 for the signatures on paper: what the system holds, filled in.
/// Its fields and where each comes from: `docs/school-ui.md`.
pub(super) async fn print_act(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(pid): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "print", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(p) = day.participant(&pid) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такого участника");
    };
    // The act of `?attempt=N`, by default the latest.
    let wanted = query.get("attempt").and_then(|a| a.parse::<u8>().ok());
    let Some(act) = p
        .acts
        .iter()
        .rfind(|a| wanted.is_none_or(|w| a.attempt == w))
    else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            "У участника нет такого акта",
        );
    };
    let reason = match act.kind {
        giasync_shared::act::ActKind::Early(r) => format!("Причина: {}.", r.name()),
        giasync_shared::act::ActKind::Removal => {
            "Нарушение порядка проведения итогового собеседования.".to_owned()
        }
    };
    let at = format!(
        "{} {}",
        act.at.date_at(day.utc_offset),
        act.at.at_offset(day.utc_offset).hh_mm()
    );
    // For a bad recording, the recordings of the attempt the act ended, named by their hash.
    let recordings = if act.kind
        == giasync_shared::act::ActKind::Early(giasync_shared::act::EarlyReason::BadRecording)
    {
        let named: Vec<String> = recordings_of(&day, p, Some(act.attempt))
            .map(|r| {
                format!(
                    "{} ({} мин {:02} с), BLAKE3 {}",
                    r.file_name,
                    r.duration_ms / 60_000,
                    r.duration_ms / 1000 % 60,
                    r.hash
                )
            })
            .collect();
        format!(
            "<p id=\"act-recording\">Аудиозапись ответа: {}</p>",
            escape(&if named.is_empty() {
                "в системе не зарегистрирована".to_owned()
            } else {
                named.join("; ")
            })
        )
    } else {
        String::new()
    };
    let mut b = message_block(&query);
    b.push_str(&format!(
        "<div class=\"form\" id=\"act-form\"><p class=\"title\">{title} № {number}</p>\
         <table class=\"fields\"><tr><th>Образовательная организация (код)</th><td>{school}</td></tr>\
         <tr><th>Дата проведения</th><td>{date}</td></tr><tr><th>Аудитория</th><td>{room}</td></tr>\
         <tr><th>Участник (ФИО)</th><td>{name}</td></tr><tr><th>Класс</th><td>{class}</td></tr>\
         <tr><th>Попытка</th><td>{attempt}</td></tr><tr><th>Время составления акта</th><td>{at}</td></tr></table>\
         <p>{reason}</p>{recordings}<p>{text}</p>\
         <table class=\"signatures\"><tr><th>Ответственный организатор</th><td>{organiser} (подписано электронной подписью)</td><td class=\"line\"></td></tr>\
         <tr><th>Собеседник</th><td></td><td class=\"line\"></td></tr>\
         <tr><th>Участник итогового собеседования</th><td></td><td class=\"line\"></td></tr></table></div>",
        title = escape(act.kind.title()),
        number = escape(act.number.as_str()),
        school = day.school,
        date = day.exam.date().ru(),
        room = escape(act.room.as_str()),
        name = escape(&full_name(p)),
        class = escape(&p.entry.class),
        attempt = act.attempt,
        text = escape(&act.text),
        organiser = escape(act.organiser.as_str()),
    ));
    b.push_str(super::layout::PRINT_BUTTON);
    page("Акт", Some(&who), None, &b).into_response()
}

pub(super) async fn print_room(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(room): UrlPath<String>,
) -> Response {
    let (who, day) = match web.open(&headers, "print", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = format!(
        "<p>ОО {}, {}, аудитория {}</p><table><tr><th>№</th><th>ФИО</th><th>Класс</th><th>Подпись</th></tr>",
        day.school,
        day.exam.name_ru(),
        escape(&room)
    );
    for (n, p) in day
        .participants
        .iter()
        .filter(|p| p.entry.room.is_some_and(|r| r.as_str() == room))
        .enumerate()
    {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"width:10em\"></td></tr>",
            n + 1,
            escape(&full_name(p)),
            escape(&p.entry.class)
        ));
    }
    b.push_str("</table>");
    b.push_str(super::layout::PRINT_BUTTON);
    page(&format!("Список аудитории {room}"), Some(&who), None, &b).into_response()
}

pub(super) async fn add_room(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "rooms") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let capacity = form
            .get("capacity")
            .and_then(|c| c.trim().parse::<u16>().ok())
            .ok_or("Число мест — целое число")?;
        let room = RoomCode::new(form.get("room").map_or("", |r| r.trim()))
            .map_err(|e| format!("Неверное значение: {e}"))?;
        let day = web.day(&who, None).await?;
        let rooms = vec![(room, capacity)];
        web.apply(
            &who,
            Command::Rooms {
                exam: day.exam,
                rooms,
            },
        )
        .await
    }
    .await;
    back("/roster", result.map(|_| "Аудитория добавлена".to_owned()))
}

pub(super) async fn assign(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "assign") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let participant = ParticipantId::new(form.get("participant").map_or("", String::as_str))
            .map_err(checked)?;
        let room = RoomCode::new(form.get("room").map_or("", String::as_str)).map_err(checked)?;
        let day = web.day(&who, form.get("exam").map(String::as_str)).await?;
        let command = Command::Assign {
            exam: day.exam,
            participant,
            room,
        };
        match web.apply(&who, command).await? {
            Answer::Assigned(a) => Ok(format!(
                "Участник {} назначен в аудиторию {}",
                a.participant, a.room
            )),
            _ => Err(russian(&WebError::Unexpected)),
        }
    }
    .await;
    back("/roster", result)
}

pub(super) async fn mark(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "mark") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let to = match form.get("back").map(String::as_str) {
        Some(to @ ("/roster" | "/log" | "/queue")) => to.to_owned(),
        Some(to) if to.starts_with("/log?room=") && !to.contains(['\r', '\n']) => to.to_owned(),
        _ => "/".to_owned(),
    };
    let result = async {
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let field = |name: &str| form.get(name).map_or("", String::as_str);
        let participant = ParticipantId::new(field("participant")).map_err(checked)?;
        let attendance = Attendance::from_words(field("status"), field("act")).map_err(checked)?;
        let exam = Some(field("exam")).filter(|e| !e.is_empty());
        let day = web.day(&who, exam).await?;
        let marking = Marking {
            exam: day.exam,
            participant,
            attendance,
        };
        web.apply(&who, Command::Mark(marking)).await
    }
    .await;
    back(&to, result.map(|_| "Отметка сохранена".to_owned()))
}

/// Records why an absent participant was absent: a valid reason names its document.
pub(super) async fn absence(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    use giasync_shared::retake::AbsenceReason;
    let who = match gate(&web, &headers, "roster") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let exam: Option<giasync_shared::exam::ExamId> = field("exam").parse().ok();
    let result = async {
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let participant = ParticipantId::new(field("participant")).map_err(checked)?;
        let reason = match field("valid") {
            "yes" => AbsenceReason::valid(field("document")).map_err(checked)?,
            "no" => AbsenceReason::NotValid,
            _ => return Err("Выберите: уважительная или нет".to_owned()),
        };
        let exam = exam.ok_or("Не указан экзамен")?;
        web.apply(
            &who,
            Command::Absence {
                exam,
                participant,
                reason,
            },
        )
        .await
    }
    .await;
    let to = exam.map_or_else(|| "/roster".to_owned(), |e| format!("/roster?exam={e}"));
    back(
        &to,
        result.map(|_| "Причина отсутствия сохранена".to_owned()),
    )
}

/// The results the РЦОИ published, shown only once their signature verifies at this node, and
/// each participant's familiarisation, signed by the organiser.
pub(super) async fn results_page(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "results", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = message_block(&query);
    let exam = day.exam;
    match web.apply(&who, Command::Results { exam }).await {
        Ok(Answer::Results(r)) => {
            b.push_str(&format!(
                "<p class=\"msg\" id=\"published\">Результаты опубликованы РЦОИ, подпись РЦОИ проверена ({} результатов, подписаны {})</p>",
                r.rows.len(),
                r.at.at_offset(day.utc_offset).ru()
            ));
            let informed = r
                .rows
                .iter()
                .filter(|row| row.familiarised.is_some())
                .count();
            b.push_str(&format!(
                "<p id=\"to-inform\">Ознакомление под подпись участника{}: ознакомлено {informed} из {}, осталось {}. <a href=\"/print/familiarisation\">Ведомость ознакомления для подписей</a></p>",
                r.familiarise_by
                    .map(|d| format!(" не позднее {}", d.ru()))
                    .unwrap_or_default(),
                r.rows.len(),
                r.rows.len() - informed
            ));
            b.push_str("<table id=\"results\"><tr><th>Участник</th><th>Попытка</th><th>Результат</th><th>Ознакомление</th></tr>");
            for row in &r.rows {
                let pid = row.participant.as_str();
                let name = day
                    .participant(pid)
                    .map_or_else(|| pid.to_owned(), full_name);
                let action = match row.familiarised {
                    None => format!(
                        "{}<form class=\"inline\" method=\"post\" action=\"/results\"><input type=\"hidden\" name=\"participant\" value=\"{}\"><input type=\"hidden\" name=\"edition\" value=\"{}\"><button>Ознакомлен под подпись</button></form>",
                        row.familiarised_earlier
                            .map(|at| format!(
                                "<span class=\"err\">ознакомлен {} с прежним результатом, результат изменён</span> ",
                                at.at_offset(day.utc_offset).ru()
                            ))
                            .unwrap_or_default(),
                        escape(pid),
                        r.edition
                    ),
                    Some(at) => format!(
                        "ознакомлен {}{}",
                        at.at_offset(day.utc_offset).ru(),
                        row.familiarised_by
                            .map(|by| format!(" (удостоверил {by})"))
                            .unwrap_or_default()
                    ),
                };
                // An essay's marks, as the РЦОИ signed them: «Т1 зачёт, …, К2 незачёт».
                let marks: Vec<String> = row
                    .marks
                    .iter()
                    .map(|(id, yes)| {
                        format!("{} {}", escape(id), if *yes { "зачёт" } else { "незачёт" })
                    })
                    .collect();
                let marks = if marks.is_empty() {
                    String::new()
                } else {
                    format!("<br><small class=\"marks\">{}</small>", marks.join(", "))
                };
                b.push_str(&format!(
                    "<tr id=\"r-{}\"><td>{}</td><td>{}</td><td>{} {}{marks}</td><td>{action}</td></tr>",
                    escape(pid),
                    escape(&name),
                    row.attempt,
                    row.total,
                    row.outcome.display_name()
                ));
            }
            b.push_str("</table>");
        }
        Ok(_) => b.push_str(&format!(
            "<p class=\"err\">{}</p>",
            russian(&WebError::Unexpected)
        )),
        Err(e) => b.push_str(&format!(
            "<p class=\"err\" id=\"not-published\">Результатов пока нет: {}</p>",
            escape(&e)
        )),
    }
    page("Результаты", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn familiarise(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "results") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let participant = ParticipantId::new(form.get("participant").map_or("", String::as_str))
            .map_err(|e| format!("Неверное значение: {e}"))?;
        // The edition the page showed: refused if the results changed since.
        let edition: u32 = form
            .get("edition")
            .map_or("", String::as_str)
            .parse()
            .map_err(|_| "Неверное значение: не указана публикация результатов".to_owned())?;
        let day = web.day(&who, None).await?;
        let record = giasync_shared::publish::Familiarisation {
            exam: day.exam,
            school: day.school,
            participant,
            organiser: who.person.id,
            at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
            edition: Some(edition),
        };
        let statement = record.sign(&who.key).map_err(|e| e.to_string())?;
        let command = Command::Familiarise {
            exam: day.exam,
            statement: statement.as_bytes().to_vec(),
            organiser_cert: who.cert_der.clone(),
        };
        web.apply(&who, command)
            .await
            .map(|_| "Ознакомление подписано".to_owned())
    }
    .await;
    back("/results", result)
}
