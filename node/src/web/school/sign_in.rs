//! Sign-in with a PIN that unlocks the person's signing key for the session, sign-out, and the
//! gate every page passes: signed in, and the role may open it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use giasync_shared::codes::PersonRole;

use super::layout::{back, forbidden, message_block, page};
use super::pin_guard::Refusal;
use super::{SchoolWeb, Who, allowed};
use crate::web::people::{Locked, unlock};

pub(super) async fn login_form(
    State(web): State<SchoolWeb>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Html<String> {
    let options = crate::web::people::options(&web.0.people);
    let body = format!(
        "{}<form method=\"post\" action=\"/login\" id=\"login\">\
         <p><label>Кто вы <select name=\"person\">{options}</select></label></p>\
         <p><label>PIN или пароль <input type=\"password\" name=\"pin\" autocomplete=\"off\" required></label></p>\
         <p><button type=\"submit\">Войти</button></p></form>\
         <p class=\"muted\">PIN (у экспертов — пароль не короче 12 знаков) открывает вашу ключевую пару для подписи на время сеанса.</p>{}",
        message_block(&query),
        if web.0.enrolling.is_some() {
            "<p class=\"muted\" id=\"first-sign-in\">Нет в списке? Первый вход по коду регистрации из РЦОИ \
             открывает технический специалист (страница «Регистрация сотрудника»).</p>"
        } else {
            ""
        }
    );
    page("Вход", None, None, &body)
}

pub(super) async fn login(
    State(web): State<SchoolWeb>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
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
    let pin = form.get("pin").cloned().unwrap_or_default();
    let key = match unlock(&web.0.attempts, client.ip(), &person, pin).await {
        Ok(key) => key,
        Err(Locked::Refused(refusal)) => return back("/login", Err(refusal_text(refusal))),
        Err(Locked::WrongPin) => return back("/login", Err("Неверный PIN".into())),
    };
    let cookie = web.0.sessions.start((person, key));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// Why an attempt was not evaluated, as staff read it.
fn refusal_text(refusal: Refusal) -> String {
    match refusal {
        Refusal::Locked(wait) => format!(
            "Слишком много неверных PIN: попробуйте через {} с",
            wait.as_secs().max(1)
        ),
        Refusal::InFlight => "PIN этого сотрудника уже проверяется: подождите".into(),
        Refusal::Busy => "Узел проверяет другие входы: повторите через несколько секунд".into(),
    }
}

pub(super) async fn logout(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
    let cookie = web.0.sessions.end(&headers);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

pub(super) async fn home(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
    let Some(who) = web.who(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let to = match who.person.role {
        PersonRole::Organiser => "/roster",
        PersonRole::Interviewer => "/log",
        PersonRole::Expert => "/score",
        PersonRole::Head => "/commission",
        PersonRole::Corridor => "/queue",
        PersonRole::Technician => "/tech",
        _ => "/sync",
    };
    Redirect::to(to).into_response()
}

/// The signed-in person allowed on `page`, or the response to send instead.
pub(super) fn gate(
    web: &SchoolWeb,
    headers: &HeaderMap,
    page_name: &str,
) -> Result<Who, Box<Response>> {
    let who = web
        .who(headers)
        .ok_or_else(|| Box::new(Redirect::to("/login").into_response()))?;
    if !allowed(who.person.role, page_name) {
        return Err(Box::new(forbidden(&who)));
    }
    Ok(who)
}
