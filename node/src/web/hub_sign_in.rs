//! Sign-in to a hub's oversight pages (`[node] oversight = "sign-in"`, the default). The pages
//! and the JSON name schools, counts and conflicts, so only a person of the hub's own
//! organisation sees them: a РЦОИ operator at the РЦОИ, a МОУО coordinator at a МОУО hub
//! (certificates and PIN-sealed keys in `[node] people`). The PIN opens the person's key file,
//! as at a school, with the same guard against guessing ([`crate::web::pin_guard`]); the key is
//! dropped at once (the pages sign nothing), and the session is a random token in an
//! `HttpOnly; SameSite=Strict` cookie that ends after [`SESSION_IDLE_MS`] without a request, and
//! [`SESSION_LONGEST_MS`] after sign-in (the oversight page reloads itself).
//! Without a session a page answers with the sign-in form, the JSON and the chart with 401.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use giasync_shared::codes::{NodeRole, PersonRole};
use giasync_shared::identity::PersonIdentity;

use super::escape;
use super::people::{Locked, Person, Sessions, options, unlock};
use super::pin_guard::{PinGuard, Refusal};

/// A session ends after this long without a request.
pub const SESSION_IDLE_MS: u64 = 2 * 60 * 60 * 1000;
/// A session ends this long after sign-in whatever the person does.
pub const SESSION_LONGEST_MS: u64 = 12 * 60 * 60 * 1000;
const COOKIE: &str = "giasync_hub_session";

/// The role whose people may see the oversight of a hub of `hub` role.
#[must_use]
pub fn overseer(hub: NodeRole) -> Option<PersonRole> {
    match hub {
        NodeRole::Rcoi => Some(PersonRole::Operator),
        NodeRole::Municipality => Some(PersonRole::Coordinator),
        NodeRole::School => None,
    }
}

struct Inner {
    people: Vec<Person>,
    sessions: Sessions<PersonIdentity>,
    attempts: Arc<Mutex<PinGuard>>,
}

#[derive(Clone)]
struct HubPeople(Arc<Inner>);

/// `pages` behind sign-in by `people` (only those of `hub`'s overseeing role are offered).
pub fn protect(pages: Router, hub: NodeRole, people: Vec<Person>) -> Router {
    let role = overseer(hub);
    let people = people
        .into_iter()
        .filter(|p| Some(p.identity.role) == role)
        .collect();
    let state = HubPeople(Arc::new(Inner {
        people,
        sessions: Sessions::new(
            COOKIE,
            Duration::from_millis(SESSION_IDLE_MS),
            Duration::from_millis(SESSION_LONGEST_MS),
        ),
        attempts: Arc::default(),
    }));
    let sign_in = Router::new()
        .route("/login", get(form).post(login))
        .route("/logout", post(logout))
        .with_state(state.clone());
    pages
        .route_layer(axum::middleware::from_fn_with_state(state, require))
        .merge(sign_in)
}

async fn require(State(hub): State<HubPeople>, request: Request, next: Next) -> Response {
    if hub.0.sessions.get(request.headers()).is_some() {
        return next.run(request).await;
    }
    if request.uri().path() == "/" {
        return Redirect::to("/login").into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        "sign in at /login as a person of this hub",
    )
        .into_response()
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <title>Вход — мониторинг</title></head><body><h1>Вход в мониторинг</h1>{body}</body></html>"
    ))
}

async fn form(
    State(hub): State<HubPeople>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Html<String> {
    let options = options(&hub.0.people);
    let message = query
        .get("error")
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(&format!(
        "{message}<form method=\"post\" action=\"/login\" id=\"login\">\
         <p><label>Кто вы <select name=\"person\">{options}</select></label></p>\
         <p><label>PIN или пароль <input type=\"password\" name=\"pin\" autocomplete=\"off\" required></label></p>\
         <p><button type=\"submit\">Войти</button></p></form>"
    ))
}

fn back(error: &str) -> Response {
    let mut to = String::from("/login?error=");
    for b in error.bytes() {
        if b.is_ascii_alphanumeric() {
            to.push(char::from(b));
        } else {
            to.push_str(&format!("%{b:02X}"));
        }
    }
    Redirect::to(&to).into_response()
}

async fn login(
    State(hub): State<HubPeople>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let wanted = form.get("person").map(String::as_str).unwrap_or("");
    let Some(person) = hub
        .0
        .people
        .iter()
        .find(|p| p.identity.id.as_str() == wanted)
        .cloned()
    else {
        return back("Нет такого сотрудника");
    };
    let pin = form.get("pin").cloned().unwrap_or_default();
    match unlock(&hub.0.attempts, client.ip(), &person, pin).await {
        // The pages sign nothing: the key is dropped at once.
        Ok(_) => {}
        Err(Locked::Refused(Refusal::Locked(wait))) => {
            return back(&format!(
                "Слишком много неверных PIN: попробуйте через {} с",
                wait.as_secs().max(1)
            ));
        }
        Err(Locked::Refused(_)) => {
            return back("Вход уже проверяется: повторите через несколько секунд");
        }
        Err(Locked::WrongPin) => return back("Неверный PIN"),
    }
    let cookie = hub.0.sessions.start(person.identity);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

async fn logout(State(hub): State<HubPeople>, headers: HeaderMap) -> Response {
    let cookie = hub.0.sessions.end(&headers);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
