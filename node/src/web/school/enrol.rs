//! A person's first sign-in (`/enrol`), opened by the signed-in technical specialist (or the
//! head) for a colleague at the same screen: with the enrolment code the РЦОИ gave them
//! (`giasync-certs enrol-person`), the colleague chooses their PIN or passphrase on this page.
//! The node makes their key on this machine, sealed with it, into the people folder, and writes
//! the request for the РЦОИ (`crate::enrol_person`). The page shows the key's fingerprint and
//! offers the request for download. Only the request travels. Once the certificate comes back
//! (`giasync-node install-person`) and the node restarts, the colleague signs in as anyone
//! else. The page is behind sign-in because the school cannot check a code (only the РЦОИ
//! can): open to the network, anyone could make keys under real colleagues' ids.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use giasync_certs::keyfile::{KdfParams, Pin};
use giasync_shared::codes::{OrgCode, PersonId, PersonRole, RegionCode};

use super::SchoolWeb;
use super::layout::{back, message_block, page};
use super::sign_in::gate;
use crate::web::escape;

/// What first sign-in needs: who the school is, where its people's keys go, and how keys are
/// sealed.
#[derive(Debug, Clone)]
pub struct Enrolling {
    pub region: RegionCode,
    pub org: OrgCode,
    pub people: PathBuf,
    pub kdf: KdfParams,
}

/// The roles a school's staff enrol in, with their names on the page.
const ROLES: [(PersonRole, &str); 5] = [
    (PersonRole::Expert, "эксперт"),
    (PersonRole::Interviewer, "собеседник"),
    (PersonRole::Organiser, "организатор"),
    (PersonRole::Technician, "технический специалист"),
    (PersonRole::Head, "руководитель ОО"),
];

pub(super) async fn enrol_form(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "enrol") {
        Ok(who) => who,
        Err(response) => return *response,
    };
    if web.0.enrolling.is_none() {
        return not_offered();
    }
    let roles: String = ROLES
        .iter()
        .map(|(role, name)| format!("<option value=\"{}\">{name}</option>", role.id()))
        .collect();
    let body = format!(
        "{}<form method=\"post\" action=\"/enrol\" id=\"enrol\">\
         <p><label>Ваш идентификатор <input name=\"id\" required autocomplete=\"off\"></label></p>\
         <p><label>Роль <select name=\"role\">{roles}</select></label></p>\
         <p><label>Код регистрации из РЦОИ <input type=\"password\" name=\"code\" required autocomplete=\"off\"></label></p>\
         <p><label>Новый PIN или пароль <input type=\"password\" name=\"pin\" required autocomplete=\"new-password\"></label></p>\
         <p><label>Ещё раз <input type=\"password\" name=\"pin2\" required autocomplete=\"new-password\"></label></p>\
         <p><button type=\"submit\">Создать ключ</button></p></form>\
         <p class=\"muted\">Ключ для подписи создаётся на этом компьютере и не покидает его; \
         в РЦОИ уходит только запрос. Экспертам и руководителю нужен пароль не короче 12 знаков.</p>",
        message_block(&query)
    );
    page("Первый вход", Some(&who), None, &body).into_response()
}

pub(super) async fn enrol_submit(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "enrol") {
        Ok(who) => who,
        Err(response) => return *response,
    };
    let Some(enrolling) = web.0.enrolling.clone() else {
        return not_offered();
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("").trim();
    let Ok(id) = PersonId::new(field("id")) else {
        return back(
            "/enrol",
            Err("Идентификатор: латинские буквы, цифры, «.», «_», «-»".into()),
        );
    };
    let Some((role, _)) = ROLES.iter().find(|(r, _)| r.id() == field("role")) else {
        return back("/enrol", Err("Нет такой роли".into()));
    };
    let pin = form.get("pin").cloned().unwrap_or_default();
    if form.get("pin2") != Some(&pin) {
        return back("/enrol", Err("PIN и повтор не совпадают".into()));
    }
    let Ok(pin) = Pin::new(pin) else {
        return back(
            "/enrol",
            Err(format!(
                "PIN: от {} до {} знаков",
                giasync_certs::keyfile::PIN_CHARS_MIN,
                giasync_certs::keyfile::PIN_CHARS_MAX
            )),
        );
    };
    // One key derivation at a time: it is meant to be slow. The turn goes with the work, so a
    // client that hangs up does not free it while the derivation runs on.
    let Ok(turn) = web.0.enrolments.clone().try_acquire_owned() else {
        return back(
            "/enrol",
            Err("Узел создаёт другой ключ: повторите через несколько секунд".into()),
        );
    };
    let identity = giasync_certs::identity::PersonIdentity {
        region: enrolling.region,
        role: *role,
        id,
        org: enrolling.org,
    };
    let code = field("code").to_owned();
    let made = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        crate::enrol_person::enrol(identity, &enrolling.people, &code, &pin, enrolling.kdf)
    })
    .await;
    let enrolled = match made {
        Ok(Ok(enrolled)) => enrolled,
        Ok(Err(e)) => return back("/enrol", Err(russian(&e))),
        Err(_) => {
            return back(
                "/enrol",
                Err("Ключ не создан: внутренняя ошибка узла".into()),
            );
        }
    };
    let id = enrolled.identity.id;
    let body = format!(
        "<p class=\"msg\" id=\"message\">Ключ создан на этом компьютере и защищён вашим PIN.</p>\
         <p>Отпечаток ключа: <strong id=\"fingerprint\">{}</strong> — продиктуйте его в РЦОИ.</p>\
         <p><a id=\"request\" href=\"/enrol/request/{id}\" download=\"{id}.request\">Запрос на сертификат ({id}.request)</a> \
         — передайте его в РЦОИ (через МОУО или на носителе). Ключ остаётся здесь.</p>\
         <p class=\"muted\">Когда сертификат вернётся, технический специалист установит его \
         (<code>giasync-node install-person</code>), и вы войдёте со своим PIN.</p>",
        escape(&enrolled.fingerprint)
    );
    page("Первый вход", Some(&who), None, &body).into_response()
}

/// The request a first sign-in wrote, for download: only public data (identity, public key,
/// the HMAC under the code, the key's signature).
pub(super) async fn request(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = gate(&web, &headers, "enrol") {
        return *response;
    }
    let Some(enrolling) = &web.0.enrolling else {
        return not_offered();
    };
    let Ok(id) = PersonId::new(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match std::fs::read(enrolling.people.join(format!("{id}.request"))) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}.request\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn not_offered() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(
            page(
                "Первый вход",
                None,
                None,
                "<p>На этом узле первый вход не настроен (нет папки сотрудников, <code>[node] people</code>): \
                 ключ создаёт технический специалист командой <code>giasync-node enrol-person</code>.</p>",
            )
            .0,
        ),
    )
        .into_response()
}

/// What went wrong, as staff read it.
fn russian(error: &crate::enrol_person::Error) -> String {
    use crate::enrol_person::Error;
    use giasync_certs::enrol_person::EnrolPersonError;
    use giasync_certs::keyfile::KeyFileError;
    match error {
        Error::File { message, .. } if message.contains("exists already") => {
            "Для этого сотрудника ключ на этом компьютере уже есть".into()
        }
        Error::Person(EnrolPersonError::CodeFormat) => {
            "Код регистрации — 16 знаков: цифры и латинские буквы (дефисы можно не вводить)".into()
        }
        Error::Person(EnrolPersonError::Key(KeyFileError::PassphraseTooShort(_))) => format!(
            "Для этой роли нужен пароль не короче {} знаков",
            giasync_certs::keyfile::PASSPHRASE_CHARS_MIN
        ),
        other => format!("Ключ не создан: {other}"),
    }
}
