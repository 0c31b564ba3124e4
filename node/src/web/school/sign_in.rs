//! Sign-in with a PIN that unlocks the person's signing key for the session, sign-out, and the
//! gate every page passes: signed in, and the role may open it.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use giasync_shared::codes::PersonRole;

use super::layout::{back, forbidden, message_block, page};
use super::{
    COOKIE, PIN_FAILURES_MAX, PIN_LOCK_MS, SchoolWeb, Session, Who, allowed, new_token, token_of,
};
use crate::web::escape;

pub(super) async fn login_form(
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

pub(super) async fn login(
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

pub(super) async fn logout(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
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

pub(super) async fn home(State(web): State<SchoolWeb>, headers: HeaderMap) -> Response {
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
