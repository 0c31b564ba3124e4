//! Pages for everyone signed in: the sync state that says whether the day can be closed, and
//! the version the pages poll to reload when the day changed.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SchoolWeb;
use super::layout::{full_name, page, receipt_name, state_name, version_of};
use crate::web::escape;

pub(super) async fn sync_page(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
    let (who, day) = match web.open(&headers, "sync", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let s = &day.sync;
    let safe = s.safe_to_close();
    let mut b = format!(
        "<p id=\"safe\" class=\"{}\">{}</p><p>Связь: {}; последний контакт: {}; документов не подтверждено: {}.</p>",
        if safe { "msg" } else { "err" },
        if safe {
            "Все бланки в РЦОИ: день можно закрывать."
        } else {
            "Не все данные переданы: не закрывайте день."
        },
        if s.online {
            escape(&crate::web::russian_node(&s.upstream))
        } else {
            "нет".into()
        },
        s.last_contact.map_or_else(
            || "никогда".to_owned(),
            |t| t.at_offset(day.utc_offset).ru()
        ),
        s.docs_pending
    );
    if !day.recordings.is_empty() {
        let waiting: Vec<_> = day.recordings.iter().filter(|r| !r.at_rcoi).collect();
        let mb = |bytes: u64| format!("{:.1} МБ", bytes as f64 / 1_000_000.0);
        b.push_str(&format!(
            "<p id=\"recordings-sync\">Аудиозаписи: {} ({}), в РЦОИ: {}; ещё не в РЦОИ: {} ({}).</p>",
            day.recordings.len(),
            mb(day.recordings.iter().map(|r| r.bytes).sum()),
            day.recordings.len() - waiting.len(),
            waiting.len(),
            mb(waiting.iter().map(|r| r.bytes).sum())
        ));
    }
    b.push_str("<table id=\"sheet-sync\"><tr><th>Участник</th><th>Эксперт</th><th>Баллы</th><th>Состояние</th><th>В РЦОИ</th></tr>");
    for p in &day.participants {
        for sh in &p.sheets {
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&full_name(p)),
                escape(sh.expert.as_str()),
                sh.total,
                escape(&state_name(&sh.state)),
                escape(&receipt_name(&sh.at_rcoi))
            ));
        }
    }
    b.push_str("</table>");
    page("Синхронизация", Some(&who), Some(&day), &b).into_response()
}

pub(super) async fn version(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(who) = web.who_polling(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match web.day(&who, query.get("exam").map(String::as_str)).await {
        Ok(day) => version_of(&day).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}
