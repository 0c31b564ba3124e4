//! The school's web interface for exam day, in Russian, served by `giasync-node run` on
//! `[node] web`. Every page is rendered here and every asset (the style and one small script)
//! is in the binary: it works with no internet at all.
//!
//! A person signs in by choosing themselves among the school's people (certificates in
//! `[node] people`) and entering their PIN, which unlocks their PIN-sealed signing key for the
//! session; the key never leaves the node's memory and is dropped at sign-out, after
//! [`SESSION_IDLE_MS`] without a request of the person's (a page's own polling for changes does
//! not count), or [`SESSION_LONGEST_MS`] after sign-in. Pages and actions follow the person's role (seed 002 §8):
//!
//! | role | pages |
//! |---|---|
//! | ответственный организатор | `/roster` rooms, assignment, attendance «Н»; `/act/ID` a signed act ending an attempt; `/print/ROOM` |
//! | собеседник | `/log` the room log: next participant, start and end, «Н» and early completion |
//! | эксперт | `/score` and `/score/ID`: the category's criteria, live total, signing; corrections |
//! | руководитель ОО | `/commission` the commission order; `/recheck` re-checks of other schools' participants: the request to the РЦОИ, the granted recording, the signed re-check |
//! | everyone | `/sync`: online or not, what the hub has not confirmed, sheets the РЦОИ holds |
//!
//! Two people on one node see each other's changes: each page asks `/api/version` every few
//! seconds and reloads when the day changed and nothing is being typed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use ed25519_dalek::SigningKey;
use giasync_shared::codes::PersonRole;
use giasync_shared::config::HostName;
use giasync_shared::identity::PersonIdentity;
use giasync_shared::rules::Rules;

use super::{Ask, WebError, ask};
use crate::app::day::SchoolDay;
use crate::app::{Action, Actor, Answer, Command};

mod corridor;
mod enrol;
mod everyone;
mod expert;
mod forms;
mod head;
mod interviewer;
mod layout;
mod organiser;
mod recheck;
mod recordings;
pub use super::pin_guard;
mod sign_in;
mod technician;

use self::layout::error_page;
use self::sign_in::gate;

/// A session ends after this long without a request.
pub const SESSION_IDLE_MS: u64 = 2 * 60 * 60 * 1000;
/// A session ends this long after sign-in whatever the person does (an exam day, with its
/// preparation): the signing key it holds is not kept unlocked longer.
pub const SESSION_LONGEST_MS: u64 = 12 * 60 * 60 * 1000;
pub use pin_guard::{PIN_FAILURES_MAX, PIN_LOCK_MS};
/// How often pages ask whether the day changed.
pub const POLL_MS: u32 = 3000;
const COOKIE: &str = "giasync_session";

use crate::web::people::Sessions;
pub use crate::web::people::{Person, load_people};
pub use enrol::Enrolling;

struct Inner {
    engine: Ask,
    people: Vec<Person>,
    rules: Rules,
    /// The signed-in person and their unlocked key.
    sessions: Sessions<(Person, SigningKey)>,
    attempts: Arc<Mutex<pin_guard::PinGuard>>,
    /// The node's recordings, to play them (none in tests of the pages alone).
    blobs: Option<crate::blobs::BlobFiles>,
    /// First sign-in (`/enrol`), where the node has a people folder.
    enrolling: Option<Enrolling>,
    /// One key made at a time at first sign-in.
    enrolments: Arc<tokio::sync::Semaphore>,
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

impl SchoolWeb {
    fn who(&self, headers: &HeaderMap) -> Option<Who> {
        Self::who_of(self.0.sessions.get(headers)?)
    }

    /// As [`Self::who`] for a page's own polling: the idle time goes on ([`Sessions::peek`]).
    fn who_polling(&self, headers: &HeaderMap) -> Option<Who> {
        Self::who_of(self.0.sessions.peek(headers)?)
    }

    fn who_of((person, key): (Person, SigningKey)) -> Option<Who> {
        Some(Who {
            person: person.identity,
            cert_der: person.cert_der,
            key,
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
            Error::ResultsChangedSince { .. } => {
                "Результаты изменились (новая публикация РЦОИ), пока страница была открыта: ознакомьте участника с результатом заново".into()
            }
            Error::NotASchool { .. } => "Этот узел — не узел ОО".into(),
            Error::SheetForEndedAttempt { number, .. } => format!(
                "Бланк не принят: попытка завершена актом № {}, её не оценивают",
                number.as_str()
            ),
            Error::SheetAttemptNotOfTheDate { subject, first } => format!(
                "Бланк не принят: попытка {} — не попытка этого дня; здесь у участника первая попытка {first}, следующую открывает только акт о некачественной аудиозаписи",
                subject.attempt.get()
            ),
            Error::SheetCategoryNotOfRecord { of_record, .. } => format!(
                "Бланк не принят: категория участника в региональном реестре — {}; другую категорию должен утвердить РЦОИ",
                of_record.display_name()
            ),
            Error::RecordRefused(e) => format!("Запись не принята: {e}"),
            Error::ExpertNotOfRoom {
                participant,
                room,
                why: crate::app::NotOfRoom::NotNamed,
                ..
            } => format!(
                "Бланк не принят: по приказу о составе комиссии вы не эксперт аудитории {room} (участник {participant})"
            ),
            Error::ExpertNotOfRoom {
                participant, room, ..
            } => format!("Бланк не принят: участник {participant} по списку не в аудитории {room}"),
            Error::NotAbsent { participant } => {
                format!(
                    "Участник {participant} не отмечен «Н»: причину отсутствия указывают только для неявки"
                )
            }
            Error::ActOutsideExamDay { .. } => {
                "Акт не принят: он датирован не днём проведения экзамена".into()
            }
            Error::ActAfterScoring { last, .. } => format!(
                "Акт не принят: проверка и оценивание закончились {}",
                last.ru()
            ),
            Error::ActForAttemptNotOpen { open: None, .. } => {
                "Акт не принят: попытка участника на этот день уже завершена актом".into()
            }
            Error::ActForAttemptNotOpen {
                attempt,
                open: Some(open),
                ..
            } => format!("Акт не принят: открыта попытка {open}, а не {attempt}"),
            Error::VariantAnswered {
                variant, attempt, ..
            } => format!(
                "Вариант {variant} участник уже выполнял сегодня (попытка {attempt}): при повторном прохождении выдают другой вариант КИМ (п. 45)"
            ),
            Error::InterviewerNotOfRoom {
                room: Some(room), ..
            } => format!(
                "По приказу о составе комиссии вы не собеседник аудитории {room}"
            ),
            Error::InterviewerNotOfRoom { room: None, .. } => {
                "Участник не распределён в аудиторию: по приказу о составе комиссии собеседник с ним не работает".into()
            }
            Error::ActNumberTaken {
                number,
                participant,
            } => format!(
                "Акт № {} уже составлен на другого участника ({participant})",
                number.as_str()
            ),
            Error::NoAttemptOpen { .. } => {
                "Попытка участника на этот день завершена актом: новый ответ не начинают".into()
            }
            Error::VariantNotInMaterials { variant, variants } => format!(
                "В материалах экзамена варианты с 1 по {variants}: варианта {variant} нет"
            ),
            Error::WrongReleaseCode { wrong_codes, .. } => format!(
                "Код не подходит к материалам этого экзамена и отклонён (неверных кодов: {wrong_codes}); сверьте код с РЦОИ"
            ),
            Error::MaterialsNotHeld { .. } => {
                "Пакет материалов ещё не получен узлом ОО: проверьте связь".into()
            }
            Error::NoMaterials { .. } => "РЦОИ ещё не направил материалы этого экзамена".into(),
            Error::NoAnswerUnderWay { .. } => {
                "У участника нет начатого ответа: сначала отметьте начало".into()
            }
            other => other.to_string(),
        },
    }
}

/// The right a page needs (the application's table: [`Action::allowed`]).
fn page_action(page: &str) -> Action {
    match page {
        "roster" | "assign" | "rooms" | "print" | "edit" => Action::EditRoster,
        "results" => Action::Familiarise,
        "act" => Action::WriteAct,
        "mark" => Action::Mark,
        "log" => Action::Log,
        "score" => Action::Score,
        "commission" => Action::SignCommission,
        "recheck" => Action::Recheck,
        "recordings" | "tech" => Action::AddRecording,
        "materials" => Action::OpenMaterials,
        "readiness" => Action::SignReadiness,
        "enrol" => Action::EnrolPerson,
        "protocol" | "queue" => Action::Read,
        _ => Action::Read,
    }
}

/// What a page may do for a role. A recording is heard by those who take recordings in and by
/// the experts, who score from it afterwards.
fn allowed(role: PersonRole, page: &str) -> bool {
    match page {
        "recording" => Action::AddRecording.allowed(role) || Action::Score.allowed(role),
        // The reviewing commission listens: its chair and its experts.
        "recheck-recording" => Action::Recheck.allowed(role) || Action::Score.allowed(role),
        _ => page_action(page).allowed(role),
    }
}

/// The school's interface.
pub fn router(
    engine: Ask,
    people: Vec<Person>,
    rules: Rules,
    names: Vec<HostName>,
    blobs: Option<crate::blobs::BlobFiles>,
    enrolling: Option<Enrolling>,
) -> Router {
    let state = SchoolWeb(Arc::new(Inner {
        engine,
        people,
        rules,
        sessions: Sessions::new(
            COOKIE,
            Duration::from_millis(SESSION_IDLE_MS),
            Duration::from_millis(SESSION_LONGEST_MS),
        ),
        attempts: Arc::default(),
        blobs,
        enrolling,
        enrolments: Arc::new(tokio::sync::Semaphore::new(1)),
    }));
    let router = Router::new()
        .route("/", get(sign_in::home))
        .route("/login", get(sign_in::login_form).post(sign_in::login))
        .route("/logout", post(sign_in::logout))
        .route("/enrol", get(enrol::enrol_form).post(enrol::enrol_submit))
        .route("/enrol/request/{id}", get(enrol::request))
        .route("/roster", get(organiser::roster))
        .route(
            "/roster/{participant}",
            get(organiser::edit_form).post(organiser::edit_submit),
        )
        .route("/rooms", post(organiser::add_room))
        .route(
            "/results",
            get(organiser::results_page).post(organiser::familiarise),
        )
        .route("/assign", post(organiser::assign))
        .route("/mark", post(organiser::mark))
        .route("/absence", post(organiser::absence))
        .route("/queue", get(corridor::queue))
        .route(
            "/commission",
            get(head::commission).post(head::commission_submit),
        )
        .route("/print/{room}", get(organiser::print_room))
        .route("/print/act/{participant}", get(organiser::print_act))
        .route("/print/log/{room}", get(forms::print_log))
        .route("/print/protocol/{room}", get(forms::print_protocol))
        .route("/print/familiarisation", get(forms::print_familiarisation))
        .route(
            "/act/{participant}",
            get(organiser::act_form).post(organiser::act_submit),
        )
        .route(
            "/log",
            get(interviewer::room_log).post(interviewer::log_entry),
        )
        .route("/score", get(expert::score_list))
        .route(
            "/score/{participant}",
            get(expert::score_form).post(expert::score_submit),
        )
        .route("/tech", get(technician::technician))
        .route("/tech/materials", post(technician::reserve_code))
        .route("/tech/readiness", post(technician::sign_readiness))
        .route("/recordings", get(recordings::page_of_recordings))
        .route("/recheck", get(recheck::recheck_page))
        .route("/recheck/request", post(recheck::request_submit))
        .route("/recheck/sign", post(recheck::sign_submit))
        .route("/recheck/recording/{hash}", get(recheck::recording))
        .route("/recording/{hash}", get(recordings::recording))
        .route("/sync", get(everyone::sync_page))
        .route("/api/version", get(everyone::version))
        .with_state(state);
    super::guard::apply(router, names)
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
        assert!(allowed(PersonRole::Technician, "recordings"));
        assert!(!allowed(PersonRole::Expert, "recordings"));
        assert!(allowed(PersonRole::Expert, "recording"));
        assert!(!allowed(PersonRole::Interviewer, "recording"));
        assert!(!allowed(PersonRole::Corridor, "recording"));
    }

    /// First sign-in on the page: the key is made here under the PIN chosen here, the request
    /// downloads and the РЦОИ's CA issues for it; a second attempt, or a PIN too short for an
    /// expert, makes nothing.
    #[tokio::test]
    async fn a_first_sign_in_makes_the_key_here_and_offers_the_request() {
        use tower::ServiceExt as _;
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let region = giasync_shared::codes::RegionCode::new("42").unwrap();
        let school = giasync_shared::codes::OrgCode::School(
            giasync_shared::codes::SchoolCode::new("420101").unwrap(),
        );
        let mut pki =
            giasync_certs::pki::Pki::init(&dir.path().join("ca"), region, "РЦОИ", now).unwrap();
        let expert = PersonIdentity {
            region,
            role: PersonRole::Expert,
            id: giasync_shared::codes::PersonId::new("exp-1").unwrap(),
            org: school,
        };
        let code = giasync_certs::enrol_person::issue_code(
            &pki,
            &expert,
            "Иванова Анна",
            now + time::Duration::days(1),
        )
        .unwrap();
        let people = dir.path().join("people");
        let fast = giasync_certs::keyfile::KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        // The technical specialist, who opens first sign-in, signs in as usual.
        let technician = PersonIdentity {
            region,
            role: PersonRole::Technician,
            id: giasync_shared::codes::PersonId::new("tech-1").unwrap(),
            org: school,
        };
        let tech_pin = giasync_certs::keyfile::Pin::new("246810".into()).unwrap();
        let validity = giasync_certs::pki::Validity::days_from(now, 365).unwrap();
        let issued = pki
            .issue_person(&technician, "Техник", validity, &tech_pin, fast)
            .unwrap();
        std::fs::create_dir_all(&people).unwrap();
        std::fs::write(people.join("tech-1.key"), &issued.key_file).unwrap();
        std::fs::write(people.join("tech-1.crt"), &issued.cert_pem).unwrap();
        let engine: Ask = Arc::new(|_, _| tokio::sync::oneshot::channel().1);
        let app = router(
            engine,
            load_people(&people, school),
            Rules::is_2024().unwrap(),
            Vec::new(),
            None,
            Some(Enrolling {
                region,
                org: school,
                people: people.clone(),
                kdf: fast,
            }),
        );
        let send = |method: &str, path: &str, body: String, cookie: Option<&str>| {
            let mut request = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header(axum::http::header::HOST, "127.0.0.1:7480")
                .header(
                    axum::http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                // What the server gives handlers: the client's address (sign-in's guard counts
                // by it).
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    50_000,
                ))));
            if let Some(cookie) = cookie {
                request = request.header(axum::http::header::COOKIE, cookie);
            }
            request.body(axum::body::Body::from(body)).unwrap()
        };
        let text = |r: Response| async move {
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        let location = |r: &Response| {
            r.headers()[axum::http::header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let form = |pin: &str| format!("id=exp-1&role=expert&code={code}&pin={pin}&pin2={pin}");
        // Not signed in: the page and its form send to sign-in, and nothing is made.
        for (method, body) in [
            ("GET", String::new()),
            ("POST", form("correct+horse+battery")),
        ] {
            let r = app
                .clone()
                .oneshot(send(method, "/enrol", body, None))
                .await
                .unwrap();
            assert_eq!(location(&r), "/login", "{method}");
        }
        assert!(!people.join("exp-1.key").exists());
        let signed_in = app
            .clone()
            .oneshot(send(
                "POST",
                "/login",
                "person=tech-1&pin=246810".into(),
                None,
            ))
            .await
            .unwrap();
        let cookie = signed_in.headers()[axum::http::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let cookie = Some(cookie.as_str());
        let page = app
            .clone()
            .oneshot(send("GET", "/enrol", String::new(), cookie))
            .await
            .unwrap();
        assert!(text(page).await.contains("id=\"enrol\""));
        // A PIN is too short for an expert: nothing is made.
        let short = app
            .clone()
            .oneshot(send("POST", "/enrol", form("123456"), cookie))
            .await
            .unwrap();
        assert!(
            location(&short).starts_with("/enrol?error="),
            "{}",
            location(&short)
        );
        assert!(!people.join("exp-1.key").exists());
        let made = app
            .clone()
            .oneshot(send(
                "POST",
                "/enrol",
                form("correct+horse+battery"),
                cookie,
            ))
            .await
            .unwrap();
        assert_eq!(made.status(), StatusCode::OK);
        let shown = text(made).await;
        assert!(shown.contains("id=\"fingerprint\""), "{shown}");
        assert!(people.join("exp-1.key").exists());
        // The request downloads, and the CA issues for it.
        let download = app
            .clone()
            .oneshot(send("GET", "/enrol/request/exp-1", String::new(), cookie))
            .await
            .unwrap();
        assert_eq!(download.status(), StatusCode::OK);
        let request =
            giasync_certs::enrol_person::PersonRequest::parse(&text(download).await).unwrap();
        let (identity, _, _) =
            giasync_certs::enrol_person::sign(&mut pki, &request, now, validity).unwrap();
        assert_eq!(identity, expert);
        // The key is there already: a second first sign-in makes nothing, and says why.
        let key = std::fs::read(people.join("exp-1.key")).unwrap();
        let again = app
            .oneshot(send(
                "POST",
                "/enrol",
                form("another+long+passphrase"),
                cookie,
            ))
            .await
            .unwrap();
        let said = {
            let raw = location(&again);
            let mut bytes = Vec::new();
            let mut rest = raw.as_bytes();
            while let Some((&b, tail)) = rest.split_first() {
                if b == b'%' && tail.len() >= 2 {
                    let hex = std::str::from_utf8(&tail[..2]).unwrap();
                    bytes.push(u8::from_str_radix(hex, 16).unwrap());
                    rest = &tail[2..];
                } else {
                    bytes.push(b);
                    rest = tail;
                }
            }
            String::from_utf8(bytes).unwrap()
        };
        assert!(said.contains("ключ на этом компьютере уже есть"), "{said}");
        assert_eq!(std::fs::read(people.join("exp-1.key")).unwrap(), key);
    }

    #[tokio::test]
    async fn a_post_from_another_sites_page_is_refused() {
        use tower::ServiceExt as _;
        let engine: Ask = Arc::new(|_, _| tokio::sync::oneshot::channel().1);
        let app = router(
            engine,
            Vec::new(),
            Rules::is_2024().unwrap(),
            Vec::new(),
            None,
            None,
        );
        let post = |origin: Option<&str>| {
            let mut r = axum::http::Request::post("/logout")
                .header(axum::http::header::HOST, "127.0.0.1:7480");
            if let Some(o) = origin {
                r = r.header(axum::http::header::ORIGIN, o);
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
}
