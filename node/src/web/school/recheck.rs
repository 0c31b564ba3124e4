//! The head's page for re-checks by the school's commission (seed 002 §71–73): file a
//! participant's application as a request to the РЦОИ; see what the РЦОИ granted — the
//! recording, playable here while the grant is open, and the original sheets' scores — and sign
//! the commission's re-check with the head's key.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use giasync_shared::blob::BlobHash;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonId, PersonRole, SchoolCode};
use giasync_shared::exam::ExamId;
use giasync_shared::recheck::Request;
use giasync_shared::recheck::verdict::{Draft, Recheck};
use giasync_shared::record::{Attempt, SheetSubject};

use super::layout::{back, error_page, message_block, now_ms, page};
use super::sign_in::gate;
use super::{SchoolWeb, Who};
use crate::app::recheck::{GrantView, RequestRow, RequestState};
use crate::app::{Answer, Command};
use crate::web::escape;

fn state(s: &RequestState, offset: giasync_shared::calendar::UtcOffset) -> String {
    match s {
        RequestState::Waiting => "ожидает решения РЦОИ".into(),
        RequestState::Granted { until } => {
            format!("запись предоставлена до {}", until.at_offset(offset).ru())
        }
        RequestState::Refused { reason } => format!("отказано: {}", escape(reason)),
        RequestState::Closed { at } => {
            format!("срок доступа истёк {}", at.at_offset(offset).ru())
        }
        RequestState::Signed { total, outcome } => format!(
            "протокол подписан: {total} баллов, «{}»",
            outcome.display_name()
        ),
        RequestState::Rechecked { total, outcome } => format!(
            "результат засчитан: {total} баллов, «{}»",
            outcome.display_name()
        ),
    }
}

async fn requests_and_grants(
    web: &SchoolWeb,
    who: &Who,
) -> Result<(Vec<RequestRow>, Vec<GrantView>), String> {
    let Answer::Rechecks { requests } = web.apply(who, Command::Rechecks).await? else {
        return Err("Узел ответил не на тот запрос".into());
    };
    let mut exams: Vec<ExamId> = requests.iter().map(|r| r.subject.exam).collect();
    exams.sort();
    exams.dedup();
    let mut grants = Vec::new();
    // An exam whose grants cannot be read here (no document of it yet) shows none.
    for exam in exams {
        if let Ok(Answer::RecheckGrants { grants: of_exam }) =
            web.apply(who, Command::RecheckGrants { exam }).await
        {
            grants.extend(of_exam);
        }
    }
    Ok((requests, grants))
}

/// The school's experts who may sit on the re-checking commission: those its commission order in
/// force names (any room), or every expert while it has none (the РЦОИ checks the order again).
fn commission_experts<'a>(
    web: &'a SchoolWeb,
    day: &'a crate::app::day::SchoolDay,
) -> impl Iterator<Item = PersonId> + 'a {
    web.0
        .people
        .iter()
        .filter(|p| p.identity.role == PersonRole::Expert)
        .map(|p| p.identity.id)
        .filter(move |id| {
            day.commission
                .as_ref()
                .is_none_or(|o| o.rooms.iter().any(|r| r.experts.contains(id)))
        })
}

fn grant_block(g: &GrantView, web: &SchoolWeb, day: &crate::app::day::SchoolDay) -> String {
    let offset = day.utc_offset;
    let mut b = format!(
        "<section class=\"grant\" id=\"grant-{id}\"><h2>Участник {p} (ОО {s}, {e}, попытка {a})</h2>",
        id = g.request,
        p = escape(g.subject.participant.as_str()),
        s = escape(g.subject.school.as_str()),
        e = g.subject.exam,
        a = g.subject.attempt.get()
    );
    b.push_str("<table class=\"original\"><tr><th>Эксперт ОО</th><th>Баллы</th><th>Результат</th><th>Подписан</th></tr>");
    for (expert, total, outcome, at) in &g.sheets {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{total}</td><td>{}</td><td>{}</td></tr>",
            escape(expert.as_str()),
            outcome.display_name(),
            at.at_offset(offset).ru()
        ));
    }
    b.push_str("</table>");
    if let Some((total, outcome)) = g.rechecked {
        b.push_str(&format!(
            "<p class=\"msg rechecked\">Повторная проверка подписана: {total} баллов, «{}».</p>",
            outcome.display_name()
        ));
    }
    if !g.open {
        b.push_str("<p class=\"closed\">Доступ к записи закрыт.</p></section>");
        return b;
    }
    b.push_str(&format!(
        "<p>Аудиозапись «{}», {} с, доступна до {}: <audio controls preload=\"metadata\" src=\"/recheck/recording/{}\"></audio></p>",
        escape(&g.file_name),
        g.duration_ms / 1000,
        g.until.at_offset(offset).ru(),
        g.recording.hash
    ));
    // The commission's scores, by the category of record, and the experts who listened.
    let Ok(rules) = web.0.rules.category(g.category) else {
        b.push_str("<p class=\"err\">Категория участника не найдена в правилах.</p></section>");
        return b;
    };
    b.push_str(&format!(
        "<form method=\"post\" action=\"/recheck/sign\" class=\"recheck-form\"><input type=\"hidden\" name=\"grant\" value=\"{}\"><p>Категория: {}</p><table><tr><th>Критерий</th><th>Баллы</th></tr>",
        g.request,
        escape(&rules.name)
    ));
    for c in rules.criteria(&web.0.rules) {
        b.push_str(&format!(
            "<tr><td>{id} {task}</td><td><input type=\"number\" min=\"0\" max=\"{max}\" name=\"c:{id}\" value=\"0\" required></td></tr>",
            id = escape(c.id.as_str()),
            task = escape(&c.task),
            max = c.max
        ));
    }
    b.push_str("</table><p>Эксперты комиссии, прослушавшие запись:</p>");
    for id in commission_experts(web, day) {
        b.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"expert\" value=\"{id}\"> {id}</label><br>",
            id = escape(id.as_str())
        ));
    }
    b.push_str("<p><button type=\"submit\">Подписать протокол повторной проверки</button></p></form></section>");
    b
}

pub(super) async fn recheck_page(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "recheck", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let offset = day.utc_offset;
    let mut b = message_block(&query);
    b.push_str(&format!(
        "<form method=\"post\" action=\"/recheck/request\" id=\"recheck-request\"><h2>Заявление участника</h2>\
         <p>Участник с повторным «незачётом» подаёт заявление о проверке аудиозаписи его ответа комиссией этой ОО (п. 71); запрос руководителя уходит в РЦОИ.</p>\
         <label>Код ОО участника <input name=\"school\" required></label> \
         <label>Участник <input name=\"participant\" required></label> \
         <label>Экзамен <input name=\"exam\" value=\"{}\" required></label> \
         <label>Попытка <input type=\"number\" name=\"attempt\" min=\"2\" value=\"2\" required></label> \
         <label>Дата заявления <input type=\"date\" name=\"applied\" value=\"{}\" required></label> \
         <button type=\"submit\">Подписать запрос в РЦОИ</button></form>",
        day.exam,
        Timestamp::from_unix_ms(now_ms()).map_or_else(|_| String::new(), |t| t.date_at(offset).to_string())
    ));
    match requests_and_grants(&web, &who).await {
        Err(e) => b.push_str(&format!("<p class=\"err\">{}</p>", escape(&e))),
        Ok((requests, grants)) => {
            b.push_str("<h2>Запросы</h2><table id=\"recheck-requests\"><tr><th>Участник</th><th>ОО</th><th>Экзамен, попытка</th><th>Заявление</th><th>Состояние</th></tr>");
            for r in &requests {
                b.push_str(&format!(
                    "<tr class=\"request\"><td>{}</td><td>{}</td><td>{}, {}</td><td>{}</td><td>{}</td></tr>",
                    escape(r.subject.participant.as_str()),
                    escape(r.subject.school.as_str()),
                    r.subject.exam,
                    r.subject.attempt.get(),
                    r.applied.ru(),
                    state(&r.state, offset)
                ));
            }
            b.push_str("</table>");
            for g in &grants {
                b.push_str(&grant_block(g, &web, &day));
            }
        }
    }
    page("Повторная проверка", Some(&who), Some(&day), &b).into_response()
}

/// Hands in a record the signed-in head signed, with their certificate.
async fn hand_in(
    web: &SchoolWeb,
    who: &Who,
    statement: &giasync_shared::statement::Statement,
    command: impl FnOnce(Vec<u8>, Vec<u8>) -> Command,
) -> Result<Answer, String> {
    web.apply(
        who,
        command(statement.as_bytes().to_vec(), who.cert_der.clone()),
    )
    .await
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .ok_or_else(|| format!("Не заполнено поле «{name}»"))
}

pub(super) async fn request_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let who = match gate(&web, &headers, "recheck") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let day = web.day(&who, None).await?;
        let bad = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let attempt: u8 = field(&form, "attempt")?
            .parse()
            .map_err(|_| "Попытка — число".to_owned())?;
        let request = Request {
            subject: SheetSubject {
                exam: field(&form, "exam")?.parse().map_err(bad)?,
                school: SchoolCode::new(field(&form, "school")?).map_err(bad)?,
                participant: ParticipantId::new(field(&form, "participant")?).map_err(bad)?,
                attempt: Attempt::new(attempt).map_err(bad)?,
            },
            applied: field(&form, "applied")?.parse().map_err(bad)?,
            reviewer: day.school,
            head: who.person.id,
            at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
        };
        let statement = request
            .sign(&who.key)
            .map_err(|e| format!("Запрос не подписан: {e}"))?;
        hand_in(&web, &who, &statement, |statement, cert| {
            Command::RecheckRequest { statement, cert }
        })
        .await?;
        Ok(format!(
            "Запрос о записи участника {} подписан и передан в РЦОИ",
            request.subject.participant
        ))
    }
    .await;
    back("/recheck", result)
}

pub(super) async fn sign_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let who = match gate(&web, &headers, "recheck") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let result = async {
        let day = web.day(&who, None).await?;
        let (_, grants) = requests_and_grants(&web, &who).await?;
        let id = field(&form, "grant")?;
        let g = grants
            .iter()
            .find(|g| g.request.to_string() == id && g.open)
            .ok_or("Доступ по этому запросу закрыт или его нет")?;
        let bad = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let mut points = Vec::new();
        let mut experts = Vec::new();
        for (k, v) in &form {
            if let Some(c) = k.strip_prefix("c:") {
                let p: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("Баллы по {c} — число"))?;
                points.push((giasync_shared::rules::CriterionId::new(c).map_err(bad)?, p));
            } else if k == "expert" {
                experts.push(PersonId::new(v).map_err(bad)?);
            }
        }
        if experts.is_empty() {
            return Err("Отметьте экспертов комиссии, прослушавших запись".to_owned());
        }
        let recheck = Recheck::score(
            Draft {
                subject: g.subject,
                reviewer: day.school,
                grant: g.request,
                recording: g.recording.hash,
                category: g.category,
                points,
                experts,
                chair: who.person.id,
                at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
            },
            &web.0.rules,
        )
        .map_err(|e| format!("Протокол не составлен: {e}"))?;
        let statement = recheck
            .sign(&who.key)
            .map_err(|e| format!("Протокол не подписан: {e}"))?;
        hand_in(&web, &who, &statement, |statement, cert| {
            Command::RecheckSign { statement, cert }
        })
        .await?;
        Ok(format!(
            "Протокол повторной проверки подписан: {} баллов, «{}»; он передан в РЦОИ",
            recheck.total,
            recheck.outcome.display_name()
        ))
    }
    .await;
    back("/recheck", result)
}

/// Serves a recording an open grant names, to the head and the school's experts.
pub(super) async fn recording(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    let (who, day) = match web.open(&headers, "recheck-recording", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // An expert hears another school's participant only as one of this school's commission.
    if who.person.role == PersonRole::Expert
        && !commission_experts(&web, &day).any(|id| id == who.person.id)
    {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(&who),
            "Запись прослушивают члены комиссии этой ОО",
        );
    }
    let Ok((_, grants)) = requests_and_grants(&web, &who).await else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&who),
            "Узел не ответил",
        );
    };
    let Some(g) = grants
        .iter()
        .find(|g| g.open && g.recording.hash.to_string() == hash)
    else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            "Нет открытого доступа к такой записи",
        );
    };
    let (Ok(hash), Some(files)) = (hash.parse::<BlobHash>(), web.0.blobs.as_ref()) else {
        return error_page(StatusCode::NOT_FOUND, Some(&who), "Нет такой записи");
    };
    match files.held(&hash) {
        Ok(f) => super::recordings::stream(f, &g.mime, g.recording.bytes),
        Err(_) => error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            "Запись ещё не получена из РЦОИ: обновите страницу позже",
        ),
    }
}
