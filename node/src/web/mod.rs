//! The node's web pages, served on `[node] web` (TCP; HTTPS with `[web_tls]`, see [`tls`]): a
//! school's interface, a hub's oversight of its schools — HTML in Russian, a JSON API and an SVG
//! chart — and, at the РЦОИ, the public result look-up on `[node] lookup`. Every asset is in the binary: the pages load with no network at all.
//!
//! Handlers hand the engine thread the application's typed commands ([`crate::app::Command`]),
//! as the person signed in or as a visitor, and render the typed answers: the pages show exactly
//! what the CLIs show, with the same rights checked in one place.

pub mod guard;
pub mod hub_sign_in;
pub mod lookup;
pub mod metrics;
pub mod oversight;
pub mod people;
pub mod pin_guard;
pub mod school;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

use crate::app::{Actor, Answer, Command};
use crate::run::CallError;
use giasync_shared::exam::ExamId;

/// A node's identity or a scope as people read it: «МОУО 4201», «РЦОИ 42», «ОО 420101».
pub(crate) fn russian_node(identity: &str) -> String {
    identity
        .replace("municipality", "МОУО")
        .replace("rcoi", "РЦОИ")
        .replace("school", "ОО")
        .replace("region", "регион")
}

/// What the engine thread answers a command: the application's answer, once durable.
pub type Answered = Result<Result<Answer, crate::app::Error>, CallError>;

/// Hands a command, asked by an actor, to the engine thread; the answer arrives on the receiver.
pub type Ask = Arc<dyn Fn(Actor, Command) -> oneshot::Receiver<Answered> + Send + Sync>;

/// Asks the engine and waits for the answer.
pub(crate) async fn ask(ask: &Ask, actor: Actor, command: Command) -> Result<Answer, WebError> {
    match ask(actor, command).await {
        Ok(Ok(Ok(answer))) => Ok(answer),
        Ok(Ok(Err(e))) => Err(WebError::App(e)),
        Ok(Err(e)) => Err(WebError::Call(e)),
        Err(_) => Err(WebError::Call(CallError::Stopped)),
    }
}

/// What a page cannot show.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    App(#[from] crate::app::Error),
    /// The engine answered with something the page did not ask for.
    #[error("unexpected answer")]
    Unexpected,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match self {
            WebError::Call(_) | WebError::Unexpected => StatusCode::SERVICE_UNAVAILABLE,
            WebError::App(_) => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

async fn oversight_of(ask_engine: &Ask) -> Result<giasync_shared::oversight::Oversight, WebError> {
    match ask(ask_engine, Actor::Visitor, Command::Oversight).await? {
        Answer::Oversight(o) => Ok(*o),
        _ => Err(WebError::Unexpected),
    }
}

async fn oversight_page(State(engine): State<Ask>) -> Result<Html<String>, WebError> {
    Ok(Html(oversight::page(&oversight_of(&engine).await?)))
}

async fn oversight_json(State(engine): State<Ask>) -> Result<Response, WebError> {
    let view = oversight_of(&engine).await?;
    let body = serde_json::to_string(&view).map_err(|_| WebError::Unexpected)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn oversight_chart(State(engine): State<Ask>) -> Result<Response, WebError> {
    let view = oversight_of(&engine).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        oversight::chart(&view),
    )
        .into_response())
}

/// The additional date a retakes page is for: `?exam=`, or the next additional ИС date from
/// today (the March date of the school year once both have passed).
fn retakes_exam(query: &std::collections::BTreeMap<String, String>) -> Result<ExamId, String> {
    if let Some(exam) = query.get("exam") {
        return exam
            .parse()
            .map_err(|e: giasync_shared::DomainError| e.to_string());
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let today = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms)
        .map_err(|e| e.to_string())?
        .date_at(giasync_shared::calendar::UtcOffset::UTC);
    let year = today.year() + i32::from(today.month() >= 9);
    let [_, march, april] =
        giasync_shared::calendar::is_dates(year).ok_or("no ИС dates for this year")?;
    let date = [march, april]
        .into_iter()
        .find(|d| *d >= today)
        .unwrap_or(march);
    Ok(ExamId::new(giasync_shared::exam::ExamKind::Is, date))
}

async fn retakes_of(
    engine: &Ask,
    query: &std::collections::BTreeMap<String, String>,
) -> Result<crate::app::retakes::Retakes, Response> {
    let exam = retakes_exam(query).map_err(|e| (StatusCode::BAD_REQUEST, e).into_response())?;
    match ask(engine, Actor::Visitor, Command::Retakes { exam }).await {
        Ok(Answer::Retakes(list)) => Ok(list),
        Ok(_) => Err(WebError::Unexpected.into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The exam's schools: readiness acts against their deadline and the materials opened
/// (`?exam=`, else this school year's main ИС date).
async fn readiness_page(
    State(engine): State<Ask>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    let exam = match query.get("exam") {
        Some(e) => e
            .parse()
            .map_err(|e: giasync_shared::DomainError| e.to_string()),
        None => giasync_shared::calendar::Timestamp::from_unix_ms(crate::run::now_ms())
            .map_err(|e| e.to_string())
            .and_then(|t| crate::app::default_exam(t.date_utc()).map_err(|e| e.to_string())),
    };
    let exam: ExamId = match exam {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let readiness = match ask(&engine, Actor::Visitor, Command::ReadinessSchools { exam }).await {
        Ok(Answer::Readiness(v)) => v,
        Ok(_) => return WebError::Unexpected.into_response(),
        Err(e) => return e.into_response(),
    };
    let materials = match ask(&engine, Actor::Visitor, Command::MaterialsSchools { exam }).await {
        Ok(Answer::MaterialsSchools { schools, .. }) => schools,
        Ok(_) => return WebError::Unexpected.into_response(),
        Err(e) => return e.into_response(),
    };
    Html(oversight::readiness_page(&readiness, &materials)).into_response()
}

async fn retakes_page(
    State(engine): State<Ask>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    match retakes_of(&engine, &query).await {
        Ok(list) => Html(oversight::retakes_page(&list)).into_response(),
        Err(r) => r,
    }
}

async fn retakes_csv(
    State(engine): State<Ask>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    match retakes_of(&engine, &query).await {
        Ok(list) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"retakes-{}.csv\"", list.exam),
                ),
            ],
            crate::app::retakes::csv(&list),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn retakes_xlsx(
    State(engine): State<Ask>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    let list = match retakes_of(&engine, &query).await {
        Ok(list) => list,
        Err(r) => return r,
    };
    match crate::app::retakes::xlsx(&list) {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"retakes-{}.xlsx\"", list.exam),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Не удалось составить XLSX: {e}"),
        )
            .into_response(),
    }
}

async fn retakes_need_sign_in() -> Response {
    (
        StatusCode::FORBIDDEN,
        "Список пересдач содержит персональные данные: он доступен только при входе по сертификату (oversight = \"sign-in\" в node.toml); без входа — giasync-hub retakes",
    )
        .into_response()
}

/// A hub's oversight routes, answering only requests that name the node (see [`guard`]).
pub fn hub_router(
    engine: Ask,
    names: Vec<giasync_shared::config::HostName>,
    sign_in: Option<(giasync_shared::codes::NodeRole, Vec<school::Person>)>,
) -> Router {
    let pages = Router::new()
        .route("/", get(oversight_page))
        .route("/api/oversight", get(oversight_json))
        .route("/chart.svg", get(oversight_chart))
        .route("/readiness", get(readiness_page));
    // The list of retakes carries names and the documents that excuse an absence: served only
    // behind sign-in.
    let pages = match sign_in {
        Some((hub, people)) => hub_sign_in::protect(
            pages
                .route("/retakes", get(retakes_page))
                .route("/retakes.csv", get(retakes_csv))
                .route("/retakes.xlsx", get(retakes_xlsx))
                .with_state(engine),
            hub,
            people,
        ),
        None => pages
            .route("/retakes", get(retakes_need_sign_in))
            .route("/retakes.csv", get(retakes_need_sign_in))
            .route("/retakes.xlsx", get(retakes_need_sign_in))
            .with_state(engine),
    };
    guard::apply(pages, names)
}

/// Serves `router` on `addr` until the runtime stops; returns the bound address.
pub async fn serve(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        {
            tracing::warn!(error = %e, "the web server stopped");
        }
    });
    Ok(bound)
}

pub use crate::transport::handshakes::client_key;

/// Escapes text for HTML and SVG.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
