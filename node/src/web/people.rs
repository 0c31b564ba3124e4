//! The people who sign in to a node's pages (a school's staff, a hub's operators or
//! coordinators) and what their sign-in shares: the certificates and PIN-sealed keys in
//! `[node] people`, the list they choose themselves from, unlocking a key under the guard
//! against guessing ([`super::pin_guard`]), and session tokens in a cookie.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, header};
use ed25519_dalek::SigningKey;
use giasync_shared::codes::OrgCode;
use giasync_shared::identity::{Identity, PersonIdentity};

use super::escape;
use super::pin_guard::{PinGuard, Refusal, Reservation};

/// A person who may sign in here.
#[derive(Debug, Clone)]
pub struct Person {
    pub identity: PersonIdentity,
    pub cert_der: Vec<u8>,
    pub key_file: PathBuf,
}

/// The people of `org` in `dir` (`[node] people`): every certificate of a person of `org` with a
/// key file beside it, by id.
pub fn load_people(dir: &Path, org: OrgCode) -> Vec<Person> {
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
            (identity.org == org && key_file.exists()).then_some(Person {
                identity,
                cert_der: der,
                key_file,
            })
        })
        .collect();
    people.sort_by(|a, b| a.identity.id.as_str().cmp(b.identity.id.as_str()));
    people
}

/// The `<option>`s of the sign-in form: each person by id and role.
pub fn options(people: &[Person]) -> String {
    people
        .iter()
        .map(|p| {
            format!(
                "<option value=\"{id}\">{id} — {}</option>",
                escape(p.identity.role.display_name()),
                id = escape(p.identity.id.as_str())
            )
        })
        .collect()
}

/// Why a key was not unlocked.
#[derive(Debug)]
pub enum Locked {
    /// The attempt was not evaluated (see [`Refusal`]).
    Refused(Refusal),
    /// The PIN does not open the key (or the key file could not be read).
    WrongPin,
}

/// Unlocks `person`'s key with `pin` for `client`: the attempt reserved before the slow key
/// derivation, the derivation off the async threads and settled there (a client that hangs up
/// does not free its reservation before the derivation ends).
pub async fn unlock(
    attempts: &Arc<Mutex<PinGuard>>,
    client: IpAddr,
    person: &Person,
    pin: String,
) -> Result<SigningKey, Locked> {
    let client = super::client_key(client);
    let reservation =
        Reservation::take(attempts, client, person.identity.id).map_err(Locked::Refused)?;
    let key_file = person.key_file.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let opened = (|| {
            let pin = giasync_certs::keyfile::Pin::new(pin).ok()?;
            let bytes = std::fs::read(&key_file).ok()?;
            giasync_certs::keyfile::open(&bytes, &pin).ok()
        })();
        reservation.finish(opened.is_some());
        opened
    })
    .await;
    match opened {
        Ok(Some(key)) => Ok(key),
        _ => Err(Locked::WrongPin),
    }
}

/// The session token in cookie `name`, if the request carries one.
pub fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A fresh session token: 32 random bytes, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A live session: what it holds, when it started, when the person last did something.
#[derive(Debug)]
struct Live<T> {
    value: T,
    started: std::time::Instant,
    seen: std::time::Instant,
}

/// Signed-in sessions by token, named by a cookie. Each ends after `idle` without a request
/// of the person's (a page's own polling does not count: [`Sessions::peek`]), and in any case
/// `longest` after it started: a page left open must not keep a signing key unlocked for days.
#[derive(Debug)]
pub struct Sessions<T> {
    cookie: &'static str,
    idle: std::time::Duration,
    longest: std::time::Duration,
    live: Mutex<std::collections::HashMap<String, Live<T>>>,
}

impl<T: Clone> Sessions<T> {
    pub fn new(
        cookie: &'static str,
        idle: std::time::Duration,
        longest: std::time::Duration,
    ) -> Self {
        Sessions {
            cookie,
            idle,
            longest,
            live: Mutex::default(),
        }
    }

    /// The session the request's cookie names, if it is live; its idle time starts again.
    pub fn get(&self, headers: &HeaderMap) -> Option<T> {
        self.find(headers, true)
    }

    /// As [`Sessions::get`], without starting the idle time again: for what a page asks by
    /// itself (its polling), which is not the person doing anything.
    pub fn peek(&self, headers: &HeaderMap) -> Option<T> {
        self.find(headers, false)
    }

    fn find(&self, headers: &HeaderMap, touch: bool) -> Option<T> {
        let token = cookie_token(headers, self.cookie)?;
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        live.retain(|_, l| {
            now.duration_since(l.seen) < self.idle && now.duration_since(l.started) < self.longest
        });
        let l = live.get_mut(&token)?;
        if touch {
            l.seen = now;
        }
        Some(l.value.clone())
    }

    /// Starts a session; the `Set-Cookie` value that carries it.
    pub fn start(&self, value: T) -> String {
        let token = new_token();
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                token.clone(),
                Live {
                    value,
                    started: std::time::Instant::now(),
                    seen: std::time::Instant::now(),
                },
            );
        format!("{}={token}; HttpOnly; SameSite=Strict; Path=/", self.cookie)
    }

    /// Ends the request's session, if any; the `Set-Cookie` value that clears it.
    pub fn end(&self, headers: &HeaderMap) -> String {
        if let Some(token) = cookie_token(headers, self.cookie) {
            self.live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&token);
        }
        format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
            self.cookie
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod session_tests {
    use std::time::Duration;

    use super::*;

    fn carrying(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, pair.parse().unwrap());
        headers
    }

    /// A page's polling does not keep a session alive; the person's requests do, but never
    /// past the longest a session lasts. (Sleeps a quarter of the idle time between requests,
    /// so a loaded machine oversleeping by up to three quarters does not fail it.)
    #[test]
    fn polling_keeps_no_session_alive_and_none_outlives_its_longest() {
        let idle = Duration::from_millis(800);
        let sessions = Sessions::new("s", idle, Duration::from_secs(3600));
        let polled = carrying(&sessions.start(1));
        for _ in 0..6 {
            std::thread::sleep(idle / 4);
            let _ = sessions.peek(&polled);
        }
        assert_eq!(
            sessions.peek(&polled),
            None,
            "ended: only polled for 1.5 × idle"
        );

        let used = carrying(&sessions.start(2));
        for _ in 0..6 {
            std::thread::sleep(idle / 4);
            assert_eq!(
                sessions.get(&used),
                Some(2),
                "kept alive by the person's requests"
            );
        }

        let short = Sessions::new("s", Duration::from_secs(3600), Duration::from_millis(300));
        let busy = carrying(&short.start(3));
        assert_eq!(short.get(&busy), Some(3));
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(short.get(&busy), None, "ended at its longest, however busy");
    }
}
