//! The pages' frame (header with the sync state, navigation, the poll script) and the
//! Russian words for the day's values, shared by every page group.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::RoomCode;
use giasync_shared::participant::Category;
use giasync_shared::room::Attendance;
use giasync_shared::rules::Rules;

use super::{POLL_MS, Who, allowed};
use crate::app::day::{DayParticipant, Receipt, SchoolDay, SheetState};
use crate::web::escape;

pub(super) const STYLE: &str = "body{font-family:sans-serif;margin:0;color:#222}
header{background:#234;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}
header a{color:#fff}main{padding:1em}
.sync{padding:.2em .6em;border-radius:4px}.online{background:#2a2}.offline{background:#c33}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.25em .5em;vertical-align:top}
th{background:#eee}.next{background:#ffd}.conflict{background:#fdd}.done{background:#dfd}
.msg{padding:.5em;background:#def;border:1px solid #9bd}.err{padding:.5em;background:#fdd;border:1px solid #d99}
form.inline{display:inline}input[type=number]{width:4em}
#total{font-size:1.4em;font-weight:bold}
.clock{font-weight:bold}.overrun{color:#c00;font-weight:bold}.conditions{font-size:.85em;color:#555}
@media print{header,nav,form,.noprint{display:none}}
@page{size:A4;margin:15mm}.form .title{font-weight:bold;text-align:center;font-size:1.1em}
.form table{width:100%}.form th{text-align:left;width:40%;background:none}.signatures td.line{width:30%;border-bottom:1px solid #000}
.form table.rows th{width:auto;text-align:center;font-size:.85em}.form table.rows td{font-size:.9em}.form table.rows td.line{width:8em}";

/// Reloads the page when the day changed and nobody is typing; keeps the score form's total and
/// the room log's clocks (time gone and left of each answer going on) up to date.
pub(super) const SCRIPT: &str = "(function(){var v=document.body.dataset.version;var typing=false;
document.addEventListener('input',function(){typing=true});
setInterval(function(){if(typing||!v)return;fetch('/api/version'+location.search).then(function(r){return r.text()}).then(function(t){if(t&&t!==v)location.reload()}).catch(function(){})},POLL);
var f=document.getElementById('score');if(f){var upd=function(){var t=0;f.querySelectorAll('input[data-max]').forEach(function(i){var n=parseInt(i.value,10);if(!isNaN(n))t+=n});
document.getElementById('total').textContent=t;var pass=t>=parseInt(f.dataset.pass,10);var o=document.getElementById('outcome');o.textContent=pass?'зачёт':'незачёт'};
f.addEventListener('input',upd);upd()}
var mmss=function(ms){var s=Math.floor(ms/1000);return Math.floor(s/60)+':'+('0'+s%60).slice(-2)};
var tick=function(){document.querySelectorAll('.clock[data-start]').forEach(function(c){var gone=Date.now()-parseInt(c.dataset.start,10);var left=parseInt(c.dataset.allowed,10)-gone;
c.textContent=left>=0?'идёт '+mmss(gone)+', осталось '+mmss(left):'превышение '+mmss(-left);c.className=left>=0?'clock':'clock overrun'})};tick();setInterval(tick,1000)})();";

pub(super) fn version_of(day: &SchoolDay) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(day).unwrap_or_default();
    sha2::Sha256::digest(&json)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn page(
    title: &str,
    who: Option<&Who>,
    day: Option<&SchoolDay>,
    body: &str,
) -> Html<String> {
    let mut h = format!(
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>{} — giasync</title><style>{STYLE}</style></head><body data-version=\"{}\">",
        escape(title),
        day.map(version_of).unwrap_or_default()
    );
    h.push_str("<header>");
    if let Some(day) = day {
        h.push_str(&format!(
            "<b>ОО {}</b><span>{}</span>",
            day.school,
            day.exam.name_ru()
        ));
        let s = &day.sync;
        h.push_str(&format!(
            "<span id=\"sync\" class=\"sync {}\">{}</span><span id=\"pending\">не передано документов: {}</span><span id=\"at-rcoi\">в РЦОИ: {} из {} бланков</span>",
            if s.online { "online" } else { "offline" },
            if s.online {
                let over = match s.link {
                    Some(giasync_shared::sync::Link::Tcp) => ", через TCP",
                    _ => "",
                };
                format!(
                    "на связи ({}{over})",
                    escape(&crate::web::russian_node(&s.upstream))
                )
            } else {
                "нет связи — данные сохраняются на узле".to_owned()
            },
            s.docs_pending,
            s.sheets_at_rcoi,
            s.sheets
        ));
    }
    if let Some(who) = who {
        let role = who.person.role;
        let mut links = Vec::new();
        if allowed(role, "roster") {
            links.push("<a href=\"/roster\">Список и аудитории</a>");
        }
        if allowed(role, "results") {
            links.push("<a href=\"/results\">Результаты</a>");
        }
        if allowed(role, "log") {
            links.push("<a href=\"/log\">Журнал аудитории</a>");
        }
        if allowed(role, "score") {
            links.push("<a href=\"/score\">Оценивание</a>");
        }
        if allowed(role, "commission") {
            links.push("<a href=\"/commission\">Состав комиссии</a>");
        }
        if allowed(role, "recheck") {
            links.push("<a href=\"/recheck\">Повторная проверка</a>");
        }
        if allowed(role, "tech") {
            links.push("<a href=\"/tech\">Техспециалист</a>");
        }
        if allowed(role, "recordings") {
            links.push("<a href=\"/recordings\">Аудиозаписи</a>");
        }
        if allowed(role, "enrol") {
            links.push("<a href=\"/enrol\">Регистрация сотрудника</a>");
        }
        links.push("<a href=\"/queue\">Очередь</a>");
        links.push("<a href=\"/sync\">Синхронизация</a>");
        h.push_str(&format!(
            "<nav>{}</nav><span id=\"who\">{} ({})</span><form class=\"inline\" method=\"post\" action=\"/logout\"><button>Выйти</button></form>",
            links.join(" · "),
            escape(who.person.id.as_str()),
            escape(role.display_name())
        ));
    }
    h.push_str("</header><main>");
    h.push_str(&format!("<h1>{}</h1>", escape(title)));
    h.push_str(body);
    h.push_str(&format!(
        "</main><script>{}</script></body></html>",
        SCRIPT.replace("POLL", &POLL_MS.to_string())
    ));
    Html(h)
}

pub(super) fn error_page(status: StatusCode, who: Option<&Who>, message: &str) -> Response {
    (
        status,
        page(
            "Ошибка",
            who,
            None,
            &format!(
                "<p class=\"err\">{}</p><p><a href=\"/\">На главную</a></p>",
                escape(message)
            ),
        ),
    )
        .into_response()
}

pub(super) fn forbidden(who: &Who) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Some(who),
        &format!(
            "Недостаточно прав: {} не может выполнять это действие.",
            who.person.role.display_name()
        ),
    )
}

pub(super) fn message_block(query: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    if let Some(m) = query.get("ok") {
        out.push_str(&format!(
            "<p class=\"msg\" id=\"message\">{}</p>",
            escape(m)
        ));
    }
    if let Some(e) = query.get("error") {
        out.push_str(&format!("<p class=\"err\" id=\"error\">{}</p>", escape(e)));
    }
    out
}

/// Back to `to` with a message: `ok` or `error` in the query.
pub(super) fn back(to: &str, result: Result<String, String>) -> Response {
    let (key, text) = match result {
        Ok(m) => ("ok", m),
        Err(e) => ("error", e),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}{key}={}", url_encode(&text))).into_response()
}

pub(super) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn full_name(p: &DayParticipant) -> String {
    p.entry.full_name()
}

pub(super) fn attendance_name(p: &DayParticipant) -> String {
    match &p.entry.attendance {
        Some(Attendance::Present) => "явился".into(),
        Some(Attendance::Absent) => match &p.entry.absence {
            None => "Н (не явился)".into(),
            Some(giasync_shared::retake::AbsenceReason::Valid { document }) => {
                format!("Н (не явился), уважительная причина: {document}")
            }
            Some(giasync_shared::retake::AbsenceReason::NotValid) => {
                "Н (не явился), без уважительной причины".into()
            }
        },
        Some(Attendance::FinishedEarly { act }) => {
            format!("досрочно завершил, акт {}", act.as_str())
        }
        Some(Attendance::Removed { act }) => format!("удалён, акт {}", act.as_str()),
        None => "—".into(),
    }
}

/// The special conditions the pages show beside a participant (seed 002 §60 «д», §61): the
/// written form, and for РАС no expert in the room, scoring afterwards from the recording.
pub(super) fn conditions(p: &DayParticipant) -> String {
    let mut out = Vec::new();
    if p.entry.written {
        out.push("письменная форма (§61)");
    }
    if p.entry.category == Some(Category::Autism) {
        out.push("РАС: эксперта в аудитории нет, оценивание после — по аудиозаписи (§60 «д»)");
    }
    out.join("; ")
}

/// The button a printable form offers (hidden when printed).
pub(super) const PRINT_BUTTON: &str =
    "<p class=\"noprint\"><button onclick=\"window.print()\">Печать</button></p>";

pub(super) fn absent(p: &DayParticipant) -> bool {
    p.entry.attendance == Some(Attendance::Absent)
}

/// A room as a page writes it («—» when none).
pub(super) fn room_text(room: Option<RoomCode>) -> String {
    room.map_or_else(|| "—".to_owned(), |r| r.to_string())
}

/// `HH:MM` on the region's clock, or «—».
pub(super) fn time_of(at: Option<Timestamp>, clock: UtcOffset) -> String {
    at.map_or_else(|| "—".into(), |t| t.at_offset(clock).hh_mm())
}

pub(super) fn state_name(state: &SheetState) -> String {
    match state {
        SheetState::Current => "действующий".into(),
        SheetState::Conflict => "конфликт".into(),
        SheetState::Settled => "действующий (конфликт урегулирован)".into(),
        SheetState::SetAside => "отклонён при урегулировании".into(),
        SheetState::Superseded => "заменён исправлением".into(),
        SheetState::Invalid(why) => format!("недействителен: {why}"),
    }
}

/// A category as the rules name it («Участники без ОВЗ»), or «—» when the roster has none.
pub(super) fn category_name(rules: &Rules, category: Option<Category>) -> String {
    let Some(category) = category else {
        return "—".to_owned();
    };
    rules
        .categories()
        .find(|c| c.category == category)
        .map_or_else(|| category.id().to_owned(), |c| c.name.clone())
}

/// The РЦОИ's receipt of a sheet as staff read it.
pub(super) fn receipt_name(receipt: &Receipt) -> String {
    match receipt {
        Receipt::NotYet => "ещё нет".to_owned(),
        Receipt::Verified => "получен, подпись проверена".to_owned(),
        Receipt::Invalid(why) => format!("недействителен: {why}"),
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
