//! The school's web interface for exam day, in Russian, served by `giasync-node run` on
//! `[node] web`. Every page is rendered here and every asset (the style and one small script)
//! is in the binary: it works with no internet at all.
//!
//! A person signs in by choosing themselves among the school's people (certificates in
//! `[node] people`) and entering their PIN, which unlocks their PIN-sealed signing key for the
//! session; the key never leaves the node's memory and is dropped at sign-out or after
//! [`SESSION_IDLE_MS`]. Pages and actions follow the person's role (seed 002 §8):
//!
//! | role | pages |
//! |---|---|
//! | ответственный организатор | `/roster` rooms, assignment, attendance «Н», acts; `/print/ROOM` |
//! | собеседник | `/log` the room log: next participant, start and end, «Н» and early completion |
//! | эксперт | `/score` and `/score/ID`: the category's criteria, live total, signing; corrections |
//! | everyone | `/sync`: online or not, what the hub has not confirmed, sheets the РЦОИ holds |
//!
//! Two people on one node see each other's changes: each page asks `/api/version` every few
//! seconds and reloads when the day changed and nothing is being typed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ed25519_dalek::SigningKey;
use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::{OrgCode, ParticipantId, PersonId, PersonRole, RoomCode};
use giasync_shared::identity::{Identity, PersonIdentity};
use giasync_shared::participant::{Category, FullName, IdentityDocument, Participant, SchoolClass};
use giasync_shared::record::{
    Attempt, Correction, RecordHash, SheetDraft, SheetSubject, SignedSheet,
};
use giasync_shared::room::Attendance;
use giasync_shared::rules::Rules;

use super::{Ask, WebError, ask, escape};
use crate::app::command::{Marking, RosterEntry};
use crate::app::day::{DayParticipant, DayVerdict, Receipt, SchoolDay, SheetState};
use crate::app::{Action, Actor, Answer, Command};

/// A session ends after this long without a request.
pub const SESSION_IDLE_MS: u64 = 2 * 60 * 60 * 1000;
/// Wrong PINs in a row before a person's sign-in is locked for [`PIN_LOCK_MS`].
pub const PIN_FAILURES_MAX: u32 = 5;
pub const PIN_LOCK_MS: u64 = 60_000;
/// How often pages ask whether the day changed.
pub const POLL_MS: u32 = 3000;
const COOKIE: &str = "giasync_session";

/// A person who may sign in here.
#[derive(Debug, Clone)]
pub struct Person {
    pub identity: PersonIdentity,
    pub cert_der: Vec<u8>,
    pub key_file: PathBuf,
}

/// The school's people, from `[node] people`: every certificate of a person of this school with
/// a key file beside it.
pub fn load_people(dir: &Path, school: OrgCode) -> Vec<Person> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut people: Vec<Person> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .filter_map(|path| {
            let pem = std::fs::read(&path).ok()?;
            let der = giasync_certs::show::certs_from_pem(&pem)
                .ok()?
                .into_iter()
                .next()?;
            let Ok(Identity::Person(identity)) = giasync_certs::identity::from_cert_der(&der)
            else {
                return None;
            };
            let key_file = path.with_extension("key");
            (identity.org == school && key_file.exists()).then_some(Person {
                identity,
                cert_der: der,
                key_file,
            })
        })
        .collect();
    people.sort_by(|a, b| a.identity.id.as_str().cmp(b.identity.id.as_str()));
    people
}

struct Session {
    person: Person,
    key: SigningKey,
    last_seen: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

struct Inner {
    engine: Ask,
    people: Vec<Person>,
    rules: Rules,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<PersonId, Failures>>,
}

/// The interface's state, shared by every request.
#[derive(Clone)]
pub struct SchoolWeb(Arc<Inner>);

impl std::fmt::Debug for SchoolWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SchoolWeb({} people)", self.0.people.len())
    }
}

/// Who is asking: the signed-in person, their role and their key.
struct Who {
    person: PersonIdentity,
    cert_der: Vec<u8>,
    key: SigningKey,
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SchoolWeb {
    fn who(&self, headers: &HeaderMap) -> Option<Who> {
        let token = token_of(headers)?;
        let mut sessions = self
            .0
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, s| {
            now.duration_since(s.last_seen) < Duration::from_millis(SESSION_IDLE_MS)
        });
        let session = sessions.get_mut(&token)?;
        session.last_seen = now;
        Some(Who {
            person: session.person.identity.clone(),
            cert_der: session.person.cert_der.clone(),
            key: session.key.clone(),
        })
    }

    /// The day of `exam` (text from the page's query), or of the school's latest exam.
    async fn day(&self, who: &Who, exam: Option<&str>) -> Result<SchoolDay, String> {
        let exam = exam
            .map(str::parse)
            .transpose()
            .map_err(|e: giasync_shared::DomainError| e.to_string())?;
        match ask(&self.0.engine, who.actor(), Command::SchoolDay { exam })
            .await
            .map_err(|e| russian(&e))?
        {
            Answer::SchoolDay(day) => Ok(*day),
            _ => Err(russian(&WebError::Unexpected)),
        }
    }

    /// The signed-in person allowed on `page_name` and the day, or the response to send
    /// instead (sign-in, «Недостаточно прав», or the node's error).
    async fn open(
        &self,
        headers: &HeaderMap,
        page_name: &str,
        exam: Option<&str>,
    ) -> Result<(Who, SchoolDay), Box<Response>> {
        let who = gate(self, headers, page_name)?;
        match self.day(&who, exam).await {
            Ok(day) => Ok((who, day)),
            Err(e) => Err(Box::new(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&who),
                &e,
            ))),
        }
    }

    /// Runs `command` as the signed-in person; the refusal in Russian.
    async fn apply(&self, who: &Who, command: Command) -> Result<Answer, String> {
        ask(&self.0.engine, who.actor(), command)
            .await
            .map_err(|e| russian(&e))
    }
}

impl Who {
    fn actor(&self) -> Actor {
        Actor::Person(self.person.clone())
    }
}

/// A refusal as the school's staff read it.
fn russian(e: &WebError) -> String {
    use crate::app::Error;
    match e {
        WebError::Call(crate::run::CallError::Stopped) => "Узел останавливается".into(),
        WebError::Call(crate::run::CallError::NotSaved(why)) => {
            format!("Не сохранено: {why}")
        }
        WebError::Unexpected => "Узел ответил не на тот запрос".into(),
        WebError::App(e) => match e {
            Error::Forbidden { .. } => "Недостаточно прав для этого действия".into(),
            Error::NotTheSigner { .. } => "Можно сдать только подписанное вами".into(),
            Error::UnknownParticipant { participant, .. } => {
                format!("Нет такого участника: {participant}")
            }
            Error::RoomFull { room, capacity } => {
                format!("Аудитория {room} заполнена: {capacity} мест")
            }
            Error::Invalid(e) => format!("Неверное значение: {e}"),
            Error::SheetRefused(e) => format!("Бланк не принят: {e}"),
            Error::NoResults { .. } => "Результатов пока нет".into(),
            Error::ResultsRefused(e) => {
                format!("Подпись РЦОИ под результатами не подтверждена: {e}")
            }
            Error::NoPublishedResult(p) => {
                format!("У участника {p} нет опубликованного результата")
            }
            Error::NotASchool { .. } => "Этот узел — не узел ОО".into(),
            other => other.to_string(),
        },
    }
}

/// The right a page needs (the application's table: [`Action::allowed`]).
fn page_action(page: &str) -> Action {
    match page {
        "roster" | "assign" | "rooms" | "print" | "edit" => Action::EditRoster,
        "results" => Action::Familiarise,
        "mark" => Action::Mark,
        "log" => Action::Log,
        "score" => Action::Score,
        _ => Action::Read,
    }
}

/// What a page may do for a role.
fn allowed(role: PersonRole, page: &str) -> bool {
    page_action(page).allowed(role)
}

const STYLE: &str = "body{font-family:sans-serif;margin:0;color:#222}
header{background:#234;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}
header a{color:#fff}main{padding:1em}
.sync{padding:.2em .6em;border-radius:4px}.online{background:#2a2}.offline{background:#c33}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.25em .5em;vertical-align:top}
th{background:#eee}.next{background:#ffd}.conflict{background:#fdd}.done{background:#dfd}
.msg{padding:.5em;background:#def;border:1px solid #9bd}.err{padding:.5em;background:#fdd;border:1px solid #d99}
form.inline{display:inline}input[type=number]{width:4em}
#total{font-size:1.4em;font-weight:bold}
@media print{header,nav,form,.noprint{display:none}}";

/// Reloads the page when the day changed and nobody is typing.
const SCRIPT: &str = "(function(){var v=document.body.dataset.version;var typing=false;
document.addEventListener('input',function(){typing=true});
setInterval(function(){if(typing||!v)return;fetch('/api/version'+location.search).then(function(r){return r.text()}).then(function(t){if(t&&t!==v)location.reload()}).catch(function(){})},POLL);
var f=document.getElementById('score');if(f){var upd=function(){var t=0;f.querySelectorAll('input[data-max]').forEach(function(i){var n=parseInt(i.value,10);if(!isNaN(n))t+=n});
document.getElementById('total').textContent=t;var pass=t>=parseInt(f.dataset.pass,10);var o=document.getElementById('outcome');o.textContent=pass?'зачёт':'незачёт'};
f.addEventListener('input',upd);upd()}})();";

fn version_of(day: &SchoolDay) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(day).unwrap_or_default();
    sha2::Sha256::digest(&json)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn page(title: &str, who: Option<&Who>, day: Option<&SchoolDay>, body: &str) -> Html<String> {
    let mut h = format!(
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>{} — giasync</title><style>{STYLE}</style></head><body data-version=\"{}\">",
        escape(title),
        day.map(version_of).unwrap_or_default()
    );
    h.push_str("<header>");
    if let Some(day) = day {
        h.push_str(&format!(
            "<b>ОО {}</b><span>ИС {}</span>",
            day.school, day.exam
        ));
        let s = &day.sync;
        h.push_str(&format!(
            "<span id=\"sync\" class=\"sync {}\">{}</span><span id=\"pending\">не передано документов: {}</span><span id=\"at-rcoi\">в РЦОИ: {} из {} бланков</span>",
            if s.online { "online" } else { "offline" },
            if s.online {
                format!("на связи ({})", escape(&super::russian_node(&s.upstream)))
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

fn error_page(status: StatusCode, who: Option<&Who>, message: &str) -> Response {
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

fn forbidden(who: &Who) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Some(who),
        &format!(
            "Недостаточно прав: {} не может выполнять это действие.",
            who.person.role.display_name()
        ),
    )
}

fn message_block(query: &BTreeMap<String, String>) -> String {
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
fn back(to: &str, result: Result<String, String>) -> Response {
    let (key, text) = match result {
        Ok(m) => ("ok", m),
        Err(e) => ("error", e),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}{key}={}", url_encode(&text))).into_response()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn full_name(p: &DayParticipant) -> String {
    p.entry.full_name()
}

fn attendance_name(p: &DayParticipant) -> String {
    match &p.entry.attendance {
        Some(Attendance::Present) => "явился".into(),
        Some(Attendance::Absent) => "Н (не явился)".into(),
        Some(Attendance::FinishedEarly { act }) => {
            format!("досрочно завершил, акт {}", act.as_str())
        }
        Some(Attendance::Removed { act }) => format!("удалён, акт {}", act.as_str()),
        None => "—".into(),
    }
}

fn absent(p: &DayParticipant) -> bool {
    p.entry.attendance == Some(Attendance::Absent)
}

/// A room as a page writes it («—» when none).
fn room_text(room: Option<RoomCode>) -> String {
    room.map_or_else(|| "—".to_owned(), |r| r.to_string())
}

/// `HH:MM` on the region's clock, or «—».
fn time_of(at: Option<Timestamp>, clock: UtcOffset) -> String {
    at.map_or_else(|| "—".into(), |t| t.at_offset(clock).hh_mm())
}

// ----- sign-in ---------------------------------------------------------------------------

async fn login_form(
    State(web): State<SchoolWeb>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Html<String> {
    let options: String = web
        .0
        .people
        .iter()
        .map(|p| {
            format!(
                "<option value=\"{id}\">{id} — {}</option>",
                escape(p.identity.role.display_name()),
                id = escape(p.identity.id.as_str())
            )
        })
        .collect();
    let body = format!(
        "{}<form method=\"post\" action=\"/login\" id=\"login\">\
         <p><label>Кто вы <select name=\"person\">{options}</select></label></p>\
         <p><label>PIN <input type=\"password\" name=\"pin\" autocomplete=\"off\" required></label></p>\
         <p><button type=\"submit\">Войти</button></p></form>\
         <p class=\"muted\">PIN открывает вашу ключевую пару для подписи на время сеанса.</p>",
        message_block(&query)
    );
    page("Вход", None, None, &body)
}

async fn login(
    State(web): State<SchoolWeb>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let wanted = form.get("person").map(String::as_str).unwrap_or("");
    let Some(person) = web
        .0
        .people
        .iter()
        .find(|p| p.identity.id.as_str() == wanted)
        .cloned()
    else {
        return back("/login", Err("Нет такого сотрудника".into()));
    };
    let id = person.identity.id;
    let now = Instant::now();
    {
        let failures = web
            .0
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = failures.get(&id).and_then(|f| f.locked_until)
            && until > now
        {
            return back(
                "/login",
                Err(format!(
                    "Слишком много неверных PIN: попробуйте через {} с",
                    until.duration_since(now).as_secs().max(1)
                )),
            );
        }
    }
    let pin = form.get("pin").cloned().unwrap_or_default();
    let key_file = person.key_file.clone();
    // Argon2 is deliberately slow: off the async threads.
    let opened = tokio::task::spawn_blocking(move || {
        let pin = giasync_certs::keyfile::Pin::new(pin).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&key_file).map_err(|e| e.to_string())?;
        giasync_certs::keyfile::open(&bytes, &pin).map_err(|e| e.to_string())
    })
    .await;
    let key = match opened {
        Ok(Ok(key)) => key,
        _ => {
            let mut failures = web
                .0
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let f = failures.entry(id).or_default();
            f.count += 1;
            if f.count >= PIN_FAILURES_MAX {
                f.count = 0;
                f.locked_until = Some(now + Duration::from_millis(PIN_LOCK_MS));
            }
            return back("/login", Err("Неверный PIN".into()));
        }
    };
    web.0
        .failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    let token = new_token();
    web.0
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            token.clone(),
            Session {
                person,
                key,
                last_seen: now,
            },
        );
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

async fn logout(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
    if let Some(token) = token_of(&headers) {
        web.0
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
    }
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

async fn home(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
    let Some(who) = web.who(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let to = match who.person.role {
        PersonRole::Organiser => "/roster",
        PersonRole::Interviewer => "/log",
        PersonRole::Expert => "/score",
        _ => "/sync",
    };
    Redirect::to(to).into_response()
}

/// The signed-in person allowed on `page`, or the response to send instead.
fn gate(web: &SchoolWeb, headers: &HeaderMap, page_name: &str) -> Result<Who, Box<Response>> {
    let who = web
        .who(headers)
        .ok_or_else(|| Box::new(Redirect::to("/login").into_response()))?;
    if !allowed(who.person.role, page_name) {
        return Err(Box::new(forbidden(&who)));
    }
    Ok(who)
}

// ----- organiser ---------------------------------------------------------------------------

async fn roster(
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
            "<tr><td>{code}</td><td>{}</td><td>{}</td><td><a href=\"/print/{code}\">Печать списка</a></td></tr>",
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
        b.push_str(&format!(
            "<tr id=\"p-{id}\"><td><a href=\"/roster/{id}\">{}</a></td><td>{}</td><td>{}</td>\
             <td><form class=\"inline\" method=\"post\" action=\"/assign\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><select name=\"room\">{}</select> <button name=\"do\" value=\"assign\">Назначить</button></form></td>\
             <td>{}</td>\
             <td><form class=\"inline\" method=\"post\" action=\"/mark\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"back\" value=\"/roster\">\
             <button name=\"status\" value=\"present\">Явился</button> <button name=\"status\" value=\"absent\">Н</button> \
             акт <input name=\"act\" size=\"5\"> <button name=\"status\" value=\"early\">Досрочно</button> <button name=\"status\" value=\"removed\">Удалён</button></form></td></tr>",
            escape(&full_name(p)),
            escape(&p.entry.class),
            escape(&category_name(&web.0.rules, p.entry.category)),
            room_options(p.entry.room),
            escape(&attendance_name(p)),
        ));
    }
    b.push_str("</table>");
    page("Список участников и аудитории", Some(&who), Some(&day), &b).into_response()
}

async fn edit_form(
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
                if Some(c.category) == p.category {
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
        "<p><label>Категория <select name=\"category\">{categories}</select></label></p><p><button>Сохранить</button> <a href=\"/roster\">Отмена</a></p></form>"
    ));
    page("Данные участника", Some(&who), Some(&day), &b).into_response()
}

async fn edit_submit(
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

async fn print_room(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    UrlPath(room): UrlPath<String>,
) -> Response {
    let (who, day) = match web.open(&headers, "print", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = format!(
        "<p>ОО {}, итоговое собеседование {}, аудитория {}</p><table><tr><th>№</th><th>ФИО</th><th>Класс</th><th>Подпись</th></tr>",
        day.school,
        day.exam,
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
    b.push_str(
        "</table><p class=\"noprint\"><button onclick=\"window.print()\">Печать</button></p>",
    );
    page(&format!("Список аудитории {room}"), Some(&who), None, &b).into_response()
}

async fn add_room(
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

async fn assign(
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
        let day = web.day(&who, None).await?;
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

async fn mark(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "mark") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let to = match form.get("back").map(String::as_str) {
        Some(to @ ("/roster" | "/log")) => to.to_owned(),
        Some(to) if to.starts_with("/log?room=") && !to.contains(['\r', '\n']) => to.to_owned(),
        _ => "/".to_owned(),
    };
    let result = async {
        let checked = |e: giasync_shared::DomainError| format!("Неверное значение: {e}");
        let field = |name: &str| form.get(name).map_or("", String::as_str);
        let participant = ParticipantId::new(field("participant")).map_err(checked)?;
        let attendance = Attendance::from_words(field("status"), field("act")).map_err(checked)?;
        let day = web.day(&who, None).await?;
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

/// The results the РЦОИ published, shown only once their signature verifies at this node, and
/// each participant's familiarisation, signed by the organiser.
async fn results_page(
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
                r.at.at_offset(day.utc_offset)
            ));
            b.push_str("<table id=\"results\"><tr><th>Участник</th><th>Попытка</th><th>Результат</th><th>Ознакомление</th></tr>");
            for row in &r.rows {
                let pid = row.participant.as_str();
                let name = day
                    .participant(pid)
                    .map_or_else(|| pid.to_owned(), full_name);
                let action = match row.familiarised {
                    None => format!(
                        "<form class=\"inline\" method=\"post\" action=\"/results\"><input type=\"hidden\" name=\"participant\" value=\"{}\"><button>Ознакомлен под подпись</button></form>",
                        escape(pid)
                    ),
                    Some(at) => format!("ознакомлен {}", at.at_offset(day.utc_offset)),
                };
                b.push_str(&format!(
                    "<tr id=\"r-{}\"><td>{}</td><td>{}</td><td>{} {}</td><td>{action}</td></tr>",
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

async fn familiarise(
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
        let day = web.day(&who, None).await?;
        let record = giasync_shared::publish::Familiarisation {
            exam: day.exam,
            school: day.school,
            participant,
            organiser: who.person.id,
            at: Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?,
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

// ----- interviewer -------------------------------------------------------------------------

async fn room_log(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "log", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let room = query
        .get("room")
        .and_then(|r| RoomCode::new(r).ok())
        .or_else(|| day.rooms.first().map(|r| r.code));
    let mut b = message_block(&query);
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
    b.push_str("<table id=\"log\"><tr><th>Участник</th><th>Начало</th><th>Окончание</th><th>Явка</th><th></th></tr>");
    for p in &in_room {
        let id = escape(&p.entry.id);
        let class = if Some(&p.entry.id) == next.as_ref() {
            " class=\"next\""
        } else {
            ""
        };
        let action = match (p.start, p.end) {
            (None, _) if !absent(p) => format!(
                "<form class=\"inline\" method=\"post\" action=\"/log\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"room\" value=\"{r}\"><button name=\"at\" value=\"start\">Начало ответа</button></form>",
                r = escape(&room)
            ),
            (Some(_), None) => format!(
                "<form class=\"inline\" method=\"post\" action=\"/log\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"room\" value=\"{r}\"><button name=\"at\" value=\"end\">Окончание ответа</button></form>",
                r = escape(&room)
            ),
            _ => String::new(),
        };
        b.push_str(&format!(
            "<tr id=\"log-{id}\"{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action} \
             <form class=\"inline\" method=\"post\" action=\"/mark\"><input type=\"hidden\" name=\"participant\" value=\"{id}\"><input type=\"hidden\" name=\"back\" value=\"{bt}\">\
             <button name=\"status\" value=\"absent\">Н</button> акт <input name=\"act\" size=\"5\"> <button name=\"status\" value=\"early\">Досрочно</button></form></td></tr>",
            escape(&full_name(p)),
            time_of(p.start, day.utc_offset),
            time_of(p.end, day.utc_offset),
            escape(&attendance_name(p)),
            bt = escape(&back_to),
        ));
    }
    b.push_str("</table>");
    page("Журнал аудитории", Some(&who), Some(&day), &b).into_response()
}

async fn log_entry(
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
        let at = Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?;
        let day = web.day(&who, None).await?;
        let command = Command::Log {
            exam: day.exam,
            participant,
            interviewer: Some(who.person.id),
            at,
            end,
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

// ----- expert ------------------------------------------------------------------------------

async fn score_list(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web.open(&headers, "score", None).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = message_block(&query);
    b.push_str("<table id=\"to-score\"><tr><th>Участник</th><th>Аудитория</th><th>Ответ</th><th>Результат</th><th></th></tr>");
    for p in day.participants.iter().filter(|p| !absent(p)) {
        let (class, state) = match (p.verdict, p.result) {
            (DayVerdict::Conflict, _) => (" class=\"conflict\"", "конфликт бланков".to_owned()),
            (DayVerdict::Current | DayVerdict::Settled, Some((total, outcome))) => (
                " class=\"done\"",
                format!("{total} {}", outcome.display_name()),
            ),
            _ => ("", "не оценён".to_owned()),
        };
        b.push_str(&format!(
            "<tr{class}><td>{}</td><td>{}</td><td>{}–{}</td><td>{}</td><td><a href=\"/score/{id}\">Оценить</a></td></tr>",
            escape(&full_name(p)),
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

async fn score_form(
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
    b.push_str(&format!(
        "<p>{} — {}, аудитория {}</p><p>Категория: <b>{}</b>; максимум {} баллов, зачёт от {}.</p>",
        escape(&full_name(p)),
        escape(&p.entry.class),
        escape(&room_text(p.entry.room)),
        escape(&rules.name),
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
                s.signed_at.at_offset(day.utc_offset),
                escape(&state_name(&s.state)),
                escape(&receipt_name(&s.at_rcoi))
            ));
        }
        b.push_str("</table>");
        if p.verdict == DayVerdict::Conflict {
            b.push_str("<p class=\"err\" id=\"conflict\">Конфликт: два бланка без исправления между ними. Исправление ниже заменит оба; иначе конфликт урегулирует оператор РЦОИ.</p>");
        }
    }
    let correcting = p.verdict.scored();
    b.push_str(&format!(
        "<form method=\"post\" action=\"/score/{}\" id=\"score\" data-pass=\"{}\"><table><tr><th>Критерий</th><th>Задание</th><th>Баллы</th></tr>",
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

fn state_name(state: &SheetState) -> String {
    match state {
        SheetState::Current => "действующий".into(),
        SheetState::Conflict => "конфликт".into(),
        SheetState::Settled => "действующий (урегулирован РЦОИ)".into(),
        SheetState::SetAside => "отклонён при урегулировании".into(),
        SheetState::Superseded => "заменён исправлением".into(),
        SheetState::Invalid(why) => format!("недействителен: {why}"),
    }
}

/// A category as the rules name it («Участники без ОВЗ»), or «—» when the roster has none.
fn category_name(rules: &Rules, category: Option<Category>) -> String {
    let Some(category) = category else {
        return "—".to_owned();
    };
    rules
        .categories()
        .find(|c| c.category == category)
        .map_or_else(|| category.id().to_owned(), |c| c.name.clone())
}

/// The РЦОИ's receipt of a sheet as staff read it.
fn receipt_name(receipt: &Receipt) -> String {
    match receipt {
        Receipt::NotYet => "ещё нет".to_owned(),
        Receipt::Verified => "получен, подпись проверена".to_owned(),
        Receipt::Invalid(why) => format!("недействителен: {why}"),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn score_submit(
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
                attempt: Attempt::new(attempt_of(day.exam)).map_err(|e| e.to_string())?,
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

/// The attempt an exam date is: 1 on the main date, 2 and 3 on the additional dates.
fn attempt_of(exam: giasync_shared::exam::ExamId) -> u8 {
    match giasync_shared::calendar::is_dates(
        exam.date().year() + i32::from(exam.date().month() >= 9),
    ) {
        Some([_, march, _]) if exam.date() == march => 2,
        Some([_, _, april]) if exam.date() == april => 3,
        _ => 1,
    }
}

// ----- everyone ----------------------------------------------------------------------------

async fn sync_page(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
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
            escape(&super::russian_node(&s.upstream))
        } else {
            "нет".into()
        },
        s.last_contact.map_or_else(
            || "никогда".to_owned(),
            |t| t.at_offset(day.utc_offset).to_string()
        ),
        s.docs_pending
    );
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

async fn version(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(who) = web.who(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match web.day(&who, query.get("exam").map(String::as_str)).await {
        Ok(day) => version_of(&day).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

/// Refuses a state-changing request that a page of another site sent: a browser names the page's
/// origin on every POST, and it must be this interface's own host. (The session cookie is also
/// `SameSite=Strict`; this is the second lock.)
async fn same_origin(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if let Some(origin) = origin {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if origin_host.is_none() || origin_host != host {
                return (StatusCode::FORBIDDEN, "Запрос с чужой страницы отклонён").into_response();
            }
        }
    }
    next.run(request).await
}

/// The school's interface.
pub fn router(engine: Ask, people: Vec<Person>, rules: Rules) -> Router {
    let state = SchoolWeb(Arc::new(Inner {
        engine,
        people,
        rules,
        sessions: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
    }));
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/roster", get(roster))
        .route("/roster/{participant}", get(edit_form).post(edit_submit))
        .route("/rooms", post(add_room))
        .route("/results", get(results_page).post(familiarise))
        .route("/assign", post(assign))
        .route("/mark", post(mark))
        .route("/print/{room}", get(print_room))
        .route("/log", get(room_log).post(log_entry))
        .route("/score", get(score_list))
        .route("/score/{participant}", get(score_form).post(score_submit))
        .route("/sync", get(sync_page))
        .route("/api/version", get(version))
        .layer(axum::middleware::from_fn(same_origin))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_reach_only_their_pages() {
        assert!(allowed(PersonRole::Organiser, "assign"));
        assert!(!allowed(PersonRole::Expert, "assign"));
        assert!(!allowed(PersonRole::Expert, "roster"));
        assert!(!allowed(PersonRole::Organiser, "score"));
        assert!(allowed(PersonRole::Interviewer, "mark"));
        assert!(!allowed(PersonRole::Interviewer, "score"));
        assert!(allowed(PersonRole::Technician, "sync"));
    }

    #[tokio::test]
    async fn a_post_from_another_sites_page_is_refused() {
        use tower::ServiceExt as _;
        let engine: Ask = Arc::new(|_, _| tokio::sync::oneshot::channel().1);
        let app = router(engine, Vec::new(), Rules::is_2024().unwrap());
        let post = |origin: Option<&str>| {
            let mut r = axum::http::Request::post("/logout").header(header::HOST, "127.0.0.1:7480");
            if let Some(o) = origin {
                r = r.header(header::ORIGIN, o);
            }
            r.body(axum::body::Body::empty()).unwrap()
        };
        let status = |r: Response| r.status();
        let foreign = app
            .clone()
            .oneshot(post(Some("http://evil.example")))
            .await
            .unwrap();
        assert_eq!(status(foreign), StatusCode::FORBIDDEN);
        let own = app
            .clone()
            .oneshot(post(Some("http://127.0.0.1:7480")))
            .await
            .unwrap();
        assert_eq!(status(own), StatusCode::SEE_OTHER);
        let none = app.oneshot(post(None)).await.unwrap();
        assert_eq!(status(none), StatusCode::SEE_OTHER);
    }

    #[test]
    fn the_attempt_follows_the_date() {
        let exam = |d: &str| -> giasync_shared::exam::ExamId { d.parse().unwrap() };
        assert_eq!(attempt_of(exam("is-2024-02-14")), 1);
        assert_eq!(attempt_of(exam("is-2024-03-13")), 2);
        assert_eq!(attempt_of(exam("is-2024-04-15")), 3);
    }
}
