//! The public result look-up at the РЦОИ (seed 003: participants look up their results by the
//! series and number of their identity document), served on `[node] lookup`.
//!
//! - `GET /` a form in Russian; `POST /` (form fields `series`, `number`) the answer as HTML;
//!   `POST /api/lookup` (JSON `{"series", "number"}`) the answer as JSON.
//! - Only results the РЦОИ has published and signed are shown, and only the asking document's.
//! - A participant unknown to the region and one whose results are not published yet get the
//!   same answer, byte for byte, and every answer leaves at [`LOOKUP_RESPONSE_MS`] after the
//!   request arrived, so neither the body nor the timing tells them apart.
//! - Each client address may ask [`LOOKUP_BURST`] times at once and then one more time every
//!   [`LOOKUP_REFILL_MS`]; beyond that, `429 Too Many Requests` with `Retry-After`. With about
//!   10^10 possible documents, enumeration at that rate is hopeless. An IPv6 client is its /64;
//!   all clients together get [`LOOKUP_GLOBAL_BURST`] and one more every
//!   [`LOOKUP_GLOBAL_REFILL_MS`]; when [`LOOKUP_CLIENTS_MAX`] clients are remembered, the one idle
//!   longest is forgotten (nobody is refused for the table being full). Behind a reverse proxy
//!   the client address is the proxy's: run the look-up directly or rate-limit at the proxy.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::client_key;
use super::{Ask, ask, escape};
use crate::app::command::LookupQuery;
use crate::app::{Actor, Command};

/// Every answer about a document leaves this long after its request arrived.
pub const LOOKUP_RESPONSE_MS: u64 = 300;
/// Requests a client may make at once.
pub const LOOKUP_BURST: u32 = 5;
/// One more request is allowed this often.
pub const LOOKUP_REFILL_MS: u64 = 12_000;
/// Clients remembered at once; when full, the one idle longest is forgotten.
pub const LOOKUP_CLIENTS_MAX: usize = 10_000;
/// Requests all clients together may make at once …
pub const LOOKUP_GLOBAL_BURST: u32 = 200;
/// … and one more of them this often (20 a second): enumeration from many addresses stays as
/// hopeless as from one.
pub const LOOKUP_GLOBAL_REFILL_MS: u64 = 50;
/// Look-ups in flight at once: the rest wait (the engine thread also serves sync).
pub const LOOKUP_CONCURRENT_MAX: usize = 4;
/// The longest series or number accepted, in bytes.
const FIELD_BYTES_MAX: usize = 64;

/// A token bucket: `burst` tokens, one more every `refill`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    refilled: Instant,
    used: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            refilled: now,
            used: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is free.
    fn take(&mut self, burst: u32, refill: Duration, now: Instant) -> Result<(), Duration> {
        let periods =
            now.saturating_duration_since(self.refilled).as_millis() / refill.as_millis().max(1);
        let periods = u32::try_from(periods).unwrap_or(u32::MAX);
        if periods > 0 {
            self.tokens = self.tokens.saturating_add(periods).min(burst);
            self.refilled = if self.tokens == burst {
                now
            } else {
                self.refilled + refill * periods
            };
        }
        if self.tokens == 0 {
            return Err((self.refilled + refill).saturating_duration_since(now));
        }
        self.tokens -= 1;
        self.used = now;
        Ok(())
    }
}

#[derive(Debug)]
struct Buckets {
    clients: HashMap<IpAddr, Bucket>,
    all: Bucket,
}

/// Per-client and region-wide rate limits.
#[derive(Debug)]
pub struct Limiter {
    buckets: Mutex<Buckets>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            buckets: Mutex::new(Buckets {
                clients: HashMap::new(),
                all: Bucket::full(LOOKUP_GLOBAL_BURST, Instant::now()),
            }),
        }
    }
}

impl Limiter {
    /// Takes a token for `client` (and one of everyone's), or says how long until one is free.
    /// A request refused for everyone's tokens does not spend the client's own.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = client_key(client);
        if !b.clients.contains_key(&key) && b.clients.len() >= LOOKUP_CLIENTS_MAX {
            let idlest = b
                .clients
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| *k);
            if let Some(idlest) = idlest {
                b.clients.remove(&idlest);
            }
        }
        let refill = Duration::from_millis(LOOKUP_REFILL_MS);
        let mut bucket = b
            .clients
            .get(&key)
            .copied()
            .unwrap_or_else(|| Bucket::full(LOOKUP_BURST, now));
        let before = bucket;
        let mine = bucket.take(LOOKUP_BURST, refill, now);
        if mine.is_ok() {
            let everyone = b.all.take(
                LOOKUP_GLOBAL_BURST,
                Duration::from_millis(LOOKUP_GLOBAL_REFILL_MS),
                now,
            );
            if everyone.is_err() {
                bucket = before;
            }
            b.clients.insert(key, bucket);
            return everyone;
        }
        b.clients.insert(key, bucket);
        mine
    }
}

#[derive(Clone)]
struct LookupState {
    engine: Ask,
    limiter: Arc<Limiter>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// A query.
#[derive(Debug, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub series: String,
    pub number: String,
}

/// One published result.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Found {
    pub exam: String,
    pub attempt: u8,
    pub total: u16,
    /// `pass` (зачёт) or `fail` (незачёт).
    pub result: String,
}

/// The answer: the document's published results (empty when none are published for it, or it
/// is unknown), or why the query itself is wrong.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Answer {
    pub results: Vec<Found>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

async fn answer(state: &LookupState, query: Query) -> Answer {
    if query.series.len() > FIELD_BYTES_MAX || query.number.len() > FIELD_BYTES_MAX {
        return Answer {
            results: Vec::new(),
            error: Some("слишком длинные серия или номер".into()),
        };
    }
    let Ok(_permit) = state.in_flight.acquire().await else {
        return Answer {
            results: Vec::new(),
            error: Some("сервис остановлен".into()),
        };
    };
    let Ok(document) =
        giasync_shared::participant::IdentityDocument::new(&query.series, &query.number)
    else {
        return Answer {
            results: Vec::new(),
            error: Some("проверьте серию и номер документа".into()),
        };
    };
    let command = Command::Lookup(LookupQuery { document });
    match ask(&state.engine, Actor::Visitor, command).await {
        Ok(crate::app::Answer::Lookup { found }) => Answer {
            results: found
                .into_iter()
                .map(|f| Found {
                    exam: f.exam.to_string(),
                    attempt: f.attempt,
                    total: f.total,
                    result: f.outcome.id().to_owned(),
                })
                .collect(),
            error: None,
        },
        Ok(_) => Answer {
            results: Vec::new(),
            error: Some("проверьте серию и номер документа".into()),
        },
        Err(e) => Answer {
            results: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// Rate-limits, answers, and holds the answer until [`LOOKUP_RESPONSE_MS`] after arrival.
async fn limited(
    state: &LookupState,
    client: SocketAddr,
    query: Query,
) -> Result<Answer, Response> {
    let arrived = Instant::now();
    if let Err(wait) = state.limiter.take(client.ip(), arrived) {
        let seconds = wait.as_secs().max(1).to_string();
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds)],
            "Слишком много запросов: повторите позже.",
        )
            .into_response());
    }
    let result = answer(state, query).await;
    tokio::time::sleep_until((arrived + Duration::from_millis(LOOKUP_RESPONSE_MS)).into()).await;
    Ok(result)
}

async fn api(
    State(state): State<LookupState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    axum::Json(query): axum::Json<Query>,
) -> Response {
    match limited(&state, client, query).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(refused) => refused,
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:40em;color:#222}
label{display:block;margin:.6em 0}input{font-size:1.1em;padding:.2em}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em}";

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <title>Результаты итогового собеседования</title><style>{STYLE}</style></head><body>\
         <h1>Результаты итогового собеседования</h1>{body}\
         <form method=\"post\" action=\"/\">\
         <label>Серия документа, удостоверяющего личность <input name=\"series\" maxlength=\"10\" autocomplete=\"off\"></label>\
         <label>Номер документа <input name=\"number\" maxlength=\"20\" required autocomplete=\"off\"></label>\
         <button type=\"submit\">Узнать результат</button></form></body></html>"
    ))
}

async fn form() -> Html<String> {
    page("")
}

async fn form_answer(
    State(state): State<LookupState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    axum::Form(query): axum::Form<Query>,
) -> Response {
    let answer = match limited(&state, client, query).await {
        Ok(answer) => answer,
        Err(refused) => return refused,
    };
    let body = if let Some(error) = &answer.error {
        format!("<p><b>{}</b></p>", escape(error))
    } else if answer.results.is_empty() {
        "<p id=\"none\">Результаты по этому документу не найдены или ещё не опубликованы.</p>"
            .into()
    } else {
        let rows: String = answer
            .results
            .iter()
            .map(|f| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&f.exam),
                    f.attempt,
                    f.total,
                    if f.result == "pass" {
                        "зачёт"
                    } else {
                        "незачёт"
                    }
                )
            })
            .collect();
        format!(
            "<table id=\"results\"><tr><th>Экзамен</th><th>Попытка</th><th>Баллы</th><th>Результат</th></tr>{rows}</table>"
        )
    };
    page(&body).into_response()
}

/// The look-up routes.
pub fn router(engine: Ask) -> Router {
    let state = LookupState {
        engine,
        limiter: Arc::new(Limiter::default()),
        in_flight: Arc::new(tokio::sync::Semaphore::new(LOOKUP_CONCURRENT_MAX)),
    };
    Router::new()
        .route("/", get(form).post(form_answer))
        .route("/api/lookup", post(api))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests refused because everyone's tokens are gone spend none of the client's own:
    /// once one of everyone's comes back, the client is served.
    #[test]
    fn a_request_refused_for_everyones_tokens_spends_none_of_the_clients() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let per_client = LOOKUP_BURST;
        for n in 0..LOOKUP_GLOBAL_BURST / per_client {
            let other: IpAddr = format!("10.1.{}.{}", n / 256, n % 256).parse().unwrap();
            for _ in 0..per_client {
                assert!(limiter.take(other, t0).is_ok());
            }
        }
        let late: IpAddr = "10.9.9.9".parse().unwrap();
        for _ in 0..2 * per_client {
            assert!(
                limiter.take(late, t0).is_err(),
                "everyone's tokens are gone"
            );
        }
        let t1 = t0 + Duration::from_millis(LOOKUP_GLOBAL_REFILL_MS);
        assert!(
            limiter.take(late, t1).is_ok(),
            "one of everyone's is back, and the client's own are all there"
        );
    }

    #[test]
    fn a_client_gets_its_burst_then_one_request_per_refill() {
        let limiter = Limiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..LOOKUP_BURST {
            assert!(limiter.take(a, t0).is_ok());
        }
        let wait = limiter.take(a, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(LOOKUP_REFILL_MS));
        // Another client is not affected.
        assert!(limiter.take(b, t0).is_ok());
        // One refill period later, exactly one more.
        let t1 = t0 + Duration::from_millis(LOOKUP_REFILL_MS);
        assert!(limiter.take(a, t1).is_ok());
        assert!(limiter.take(a, t1).is_err());
        // Long idle: back to a full burst, not more.
        let t2 = t1 + Duration::from_millis(LOOKUP_REFILL_MS * 100);
        for _ in 0..LOOKUP_BURST {
            assert!(limiter.take(a, t2).is_ok());
        }
        assert!(limiter.take(a, t2).is_err());
    }

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn an_ipv6_network_is_one_client() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let address = |low: u16| -> IpAddr { format!("2001:db8:1:2::{low:x}").parse().unwrap() };
        for low in 0..LOOKUP_BURST {
            assert!(
                limiter
                    .take(address(u16::try_from(low).unwrap() + 1), t0)
                    .is_ok()
            );
        }
        // A sixth address of the same /64 finds the burst spent; another /64 does not.
        assert!(limiter.take(address(999), t0).is_err());
        assert!(limiter.take("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
    }

    #[test]
    fn a_full_table_forgets_the_idlest_client_instead_of_refusing_everyone() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        // Clients enough to fill the table at once (the region-wide cap refuses most of them,
        // but each is remembered).
        for n in 0..u32::try_from(LOOKUP_CLIENTS_MAX).unwrap() {
            let _ = limiter.take(v4(n), t0);
        }
        // A second later a new client is served.
        let later = t0 + Duration::from_secs(1);
        assert!(limiter.take(v4(1_000_000), later).is_ok());
    }

    #[test]
    fn all_clients_together_are_capped() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let served = (0..300)
            .filter(|n| limiter.take(v4(*n), t0).is_ok())
            .count();
        assert_eq!(served, usize::try_from(LOOKUP_GLOBAL_BURST).unwrap());
        let later = t0 + Duration::from_millis(LOOKUP_GLOBAL_REFILL_MS);
        assert!(limiter.take(v4(5000), later).is_ok());
        assert!(limiter.take(v4(5001), later).is_err());
    }
}
