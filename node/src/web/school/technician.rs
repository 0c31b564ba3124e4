//! The technical specialist's page (seed 002 §26, §30, §52): on one screen, what the technician
//! answers for on the day and the day before — the node's link to its МОУО and the РЦОИ, the
//! node's clock against the exam's date, the exam materials (package held, key released,
//! opened at, and the reserve code form), and per room the recordings taken in against the
//! answers given and what of them the РЦОИ holds. The recordings themselves are heard and
//! checked on `/recordings`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use std::collections::BTreeMap;

use axum::Form;
use giasync_shared::calendar::{Timestamp, UtcOffset};

use super::SchoolWeb;
use super::layout::{back, message_block, now_ms, page};
use super::sign_in::gate;
use crate::app::day::SchoolDay;
use crate::app::materials::ExamMaterials;
use crate::app::{Answer, Command};
use crate::web::escape;

/// A room's line: its stream, the answers given, those recorded and those at the РЦОИ.
struct RoomLine {
    stream: bool,
    answered: usize,
    recorded: usize,
    at_rcoi: usize,
}

fn room_line(day: &SchoolDay, room: giasync_shared::codes::RoomCode) -> RoomLine {
    let of_room = || day.recordings.iter().filter(move |r| r.room == room);
    // An answer is a participant's attempt with a start in the room log.
    let answers: Vec<(String, Option<u8>)> = day
        .participants
        .iter()
        .filter(|p| p.entry.room == Some(room))
        .flat_map(|p| {
            p.answers
                .iter()
                .filter(|a| a.start.is_some())
                .map(|a| (p.entry.id.clone(), a.attempt))
        })
        .collect();
    let recorded = answers
        .iter()
        .filter(|(id, attempt)| {
            of_room()
                .any(|r| r.participant.is_some_and(|p| p.as_str() == id) && r.attempt == *attempt)
        })
        .count();
    RoomLine {
        stream: of_room().any(|r| r.participant.is_none()),
        answered: answers.len(),
        recorded,
        at_rcoi: of_room().filter(|r| r.at_rcoi).count(),
    }
}

pub(super) async fn technician(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (who, day) = match web
        .open(&headers, "tech", query.get("exam").map(String::as_str))
        .await
    {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut b = message_block(&query);
    // The link.
    let s = &day.sync;
    let link = if s.online {
        format!(
            "на связи ({})",
            escape(&crate::web::russian_node(&s.upstream))
        )
    } else {
        "нет связи".to_owned()
    };
    let last = s.last_contact.map_or_else(
        || "ни разу".to_owned(),
        |t| {
            format!(
                "{} {}",
                t.date_at(day.utc_offset),
                t.at_offset(day.utc_offset).hh_mm()
            )
        },
    );
    b.push_str(&format!(
        "<h2>Связь</h2><p id=\"tech-link\">Узел ОО: <b>{link}</b>; последний обмен: {last}; не передано документов: {}; бланков в РЦОИ: {} из {}.</p>",
        s.docs_pending, s.sheets_at_rcoi, s.sheets
    ));
    // The clock.
    let now = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms()).ok();
    if let Some(now) = now {
        let today = now.date_at(day.utc_offset);
        let when = if today == day.exam.date() {
            "сегодня день проведения".to_owned()
        } else {
            format!("день проведения — {}", day.exam.date().ru())
        };
        b.push_str(&format!(
            "<h2>Часы</h2><p id=\"tech-clock\">На часах узла {today} {} по местному времени региона; {when}.</p>",
            now.at_offset(day.utc_offset).hh_mm()
        ));
    }
    // The materials.
    let exams = match web.apply(&who, Command::Materials).await {
        Ok(Answer::Materials { exams }) => exams,
        _ => Vec::new(),
    };
    b.push_str(&materials_section(&day, &exams));
    // The readiness act.
    b.push_str(&readiness_section(&web, &who, &day).await);
    // The recordings, per room.
    b.push_str("<h2>Аудиозаписи</h2><table id=\"tech-recordings\"><tr><th>Аудитория</th><th>Общая запись</th><th>Ответов</th><th>Записано ответов</th><th>В РЦОИ (записей)</th></tr>");
    for room in &day.rooms {
        let line = room_line(&day, room.code);
        b.push_str(&format!(
            "<tr id=\"tech-room-{code}\"><td>{code}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            if line.stream { "есть" } else { "нет" },
            line.answered,
            if line.recorded < line.answered {
                "missing"
            } else {
                "ok"
            },
            line.recorded,
            line.at_rcoi,
            code = escape(room.code.as_str()),
        ));
    }
    b.push_str("</table><p><a href=\"/recordings\">Прослушать и проверить записи</a> · <a href=\"/sync\">Синхронизация</a></p>");
    page("Технический специалист", Some(&who), Some(&day), &b).into_response()
}

fn local(t: Timestamp, clock: UtcOffset) -> String {
    format!("{} {}", t.date_at(clock), t.at_offset(clock).hh_mm())
}

/// The materials of each exam the region directory names, and the reserve code form for the
/// day's exam while it is not opened (seed 002 §26, §30).
fn materials_section(day: &SchoolDay, exams: &[ExamMaterials]) -> String {
    let clock = day.utc_offset;
    let mut b = String::from("<h2>Материалы (КИМ)</h2>");
    if exams.is_empty() {
        b.push_str("<p id=\"tech-materials\">РЦОИ ещё не направил материалы.</p>");
    } else {
        b.push_str("<table id=\"tech-materials\"><tr><th>Экзамен</th><th>Пакет</th><th>Получен</th><th>Открывается</th><th>Ключ РЦОИ</th><th>Открыт</th><th>Неверных кодов</th></tr>");
        for m in exams {
            let (package, opens) = m.package.as_ref().map_or_else(
                || {
                    (
                        format!(
                            "не подтверждён: {}",
                            escape(m.problem.as_deref().unwrap_or(""))
                        ),
                        String::new(),
                    )
                },
                |p| {
                    (
                        format!("{} ({} байт)", escape(&p.name), p.blob.bytes),
                        local(p.release_at, clock),
                    )
                },
            );
            let opened = m.opened.map_or_else(
                || "нет".to_owned(),
                |at| {
                    let how = match m.opened_by.as_deref() {
                        Some("code") => "по резервному коду",
                        _ => "по ключу РЦОИ",
                    };
                    format!("{} ({how})", local(at, clock))
                },
            );
            b.push_str(&format!(
                "<tr id=\"materials-{exam}\"><td>{exam}</td><td>{package}</td><td class=\"held\">{}</td><td>{opens}</td><td class=\"released\">{}</td><td class=\"opened\">{opened}</td><td class=\"wrong\">{}</td></tr>",
                if m.held { "да" } else { "нет" },
                m.released
                    .map_or_else(|| "не выдан".to_owned(), |at| format!("выдан {}", local(at, clock))),
                m.wrong_codes,
                exam = m.exam,
            ));
        }
        b.push_str("</table>");
    }
    let day_materials = exams.iter().find(|m| m.exam == day.exam);
    if day_materials.is_some_and(|m| m.opened.is_none()) {
        b.push_str(&format!(
            "<form id=\"reserve-code\" method=\"post\" action=\"/tech/materials\"><input type=\"hidden\" name=\"exam\" value=\"{}\"><p>Нет связи в 07:30? Резервная схема: введите код, который РЦОИ сообщит по телефону или электронной почте.</p><label>Код <input name=\"code\" required size=\"22\" autocomplete=\"off\" placeholder=\"XXXX-XXXX-XXXX-XXXX\"></label> <button>Открыть материалы</button></form>",
            day.exam
        ));
    }
    b
}

/// The reserve code typed by the technician.
pub(super) async fn reserve_code(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "materials") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let to = format!("/tech?exam={}", super::layout::url_encode(field("exam")));
    let result = async {
        let exam: giasync_shared::exam::ExamId =
            field("exam").parse().map_err(|_| "Не указан экзамен".to_owned())?;
        let code = field("code").parse().map_err(|_| {
            "Код состоит из 16 букв и цифр, например K7QM-2XHP-9RTA-W4NC: проверьте, что введено".to_owned()
        })?;
        web.apply(&who, Command::MaterialsOpen { exam, code })
            .await
            .map(|_| "Материалы открыты по резервному коду".to_owned())
    }
    .await;
    back(&to, result)
}

/// The readiness checks of the day's exam kind: what the node finds by itself, the checks the
/// technician confirms, the standing of the school's latest act against its deadline, and the
/// form that signs a new act (seed 002 §26).
async fn readiness_section(web: &SchoolWeb, who: &super::Who, day: &SchoolDay) -> String {
    let clock = day.utc_offset;
    let exam = day.exam;
    let mut b = String::from("<h2>Готовность</h2>");
    let view = match web.apply(who, Command::ReadinessSchools { exam }).await {
        Ok(Answer::Readiness(v)) => v,
        Ok(_) => return b,
        Err(e) => {
            b.push_str(&format!("<p id=\"readiness\">{}</p>", escape(&e)));
            return b;
        }
    };
    let findings = match web
        .apply(
            who,
            Command::ReadinessFindings {
                exam,
                test_recording: None,
            },
        )
        .await
    {
        Ok(Answer::ReadinessFindings { findings, .. }) => findings,
        _ => Vec::new(),
    };
    let mine = view.schools.first();
    let standing = match mine.map(|s| s.standing.as_str()) {
        Some("ready") => "готовность подтверждена",
        Some("not-ready") => "НЕ ГОТОВА",
        _ => "акт не подписан",
    };
    let signed = mine
        .and_then(|s| s.at)
        .map_or_else(String::new, |at| format!(" (акт от {})", local(at, clock)));
    let failed = mine
        .filter(|s| !s.failed.is_empty())
        .map_or_else(String::new, |s| {
            format!("; не пройдены: {}", escape(&s.failed.join(", ")))
        });
    let overdue = if mine.is_some_and(|s| s.overdue) {
        " <b class=\"err\">Срок прошёл.</b>"
    } else {
        ""
    };
    b.push_str(&format!(
        "<p id=\"readiness-standing\">{}: <b>{standing}</b>{signed}{failed}. Срок: до {} ({}).{overdue}</p>",
        escape(&view.title),
        local(view.due, clock),
        escape(&view.source)
    ));
    b.push_str(&format!(
        "<form id=\"readiness\" method=\"post\" action=\"/tech/readiness\"><input type=\"hidden\" name=\"exam\" value=\"{exam}\"><table><tr><th>Проверка</th><th>Результат</th><th>Примечание</th></tr>"
    ));
    for check in &view.checks {
        let row = match &check.auto {
            Some(_) => {
                let found = findings.iter().find(|f| f.id == check.id);
                let (mark, note) = match found {
                    Some(f) if f.ok => ("проверено узлом: да", escape(&f.note)),
                    Some(f) => ("проверено узлом: НЕТ", escape(&f.note)),
                    None => ("проверит узел", String::new()),
                };
                if check.auto.as_deref() == Some("recording") {
                    // Read back when the act is signed, from the file given here.
                    "<td class=\"auto\">проверит узел при подписании</td><td><label>путь к файлу тестовой записи на компьютере узла ОО <input name=\"recording\" size=\"40\"></label></td>".to_owned()
                } else {
                    format!("<td class=\"auto\">{mark}</td><td>{note}</td>")
                }
            }
            None => format!(
                "<td><label><input type=\"checkbox\" name=\"ok-{id}\"> в порядке</label></td><td><input name=\"note-{id}\" size=\"30\"></td>",
                id = escape(&check.id)
            ),
        };
        b.push_str(&format!(
            "<tr id=\"check-{}\"><td>{}</td>{row}</tr>",
            escape(&check.id),
            escape(&check.title)
        ));
    }
    b.push_str("</table><button>Подписать акт готовности</button></form>");
    b
}

/// Signs the readiness act: the node's findings (run again now, with the test recording
/// given) for its checks, the technician's word for the others.
pub(super) async fn sign_readiness(
    State(web): State<SchoolWeb>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let who = match gate(&web, &headers, "readiness") {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let to = format!("/tech?exam={}", super::layout::url_encode(field("exam")));
    let result = async {
        let exam: giasync_shared::exam::ExamId = field("exam")
            .parse()
            .map_err(|_| "Не указан экзамен".to_owned())?;
        let recording = field("recording").trim();
        let test_recording = (!recording.is_empty()).then(|| std::path::PathBuf::from(recording));
        let Answer::ReadinessFindings { findings, .. } = web
            .apply(
                &who,
                Command::ReadinessFindings {
                    exam,
                    test_recording,
                },
            )
            .await?
        else {
            return Err("Узел ответил не на тот запрос".to_owned());
        };
        let Answer::Readiness(view) = web.apply(&who, Command::ReadinessSchools { exam }).await?
        else {
            return Err("Узел ответил не на тот запрос".to_owned());
        };
        let school = view
            .schools
            .first()
            .map(|s| s.school)
            .ok_or("Этот узел не ведёт экзамен")?;
        let checks = view
            .checks
            .iter()
            .map(|c| match &c.auto {
                Some(_) => findings
                    .iter()
                    .find(|f| f.id == c.id)
                    .map(|f| giasync_shared::readiness::CheckOutcome {
                        id: f.id.clone(),
                        ok: f.ok,
                        note: f
                            .note
                            .chars()
                            .take(giasync_shared::readiness::NOTE_CHARS_MAX)
                            .collect(),
                    })
                    .ok_or_else(|| format!("Узел не проверил: {}", c.title)),
                None => Ok(giasync_shared::readiness::CheckOutcome {
                    id: c.id.clone(),
                    ok: form.contains_key(&format!("ok-{}", c.id)),
                    note: field(&format!("note-{}", c.id)).trim().to_owned(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let at = Timestamp::from_unix_ms(now_ms()).map_err(|e| e.to_string())?;
        let act = giasync_shared::readiness::ReadinessAct {
            exam,
            school,
            technician: who.person.id,
            at,
            checks,
        };
        let statement = act
            .sign(&who.key)
            .map_err(|e| format!("Акт не подписан: {e}"))?;
        match web
            .apply(
                &who,
                Command::Readiness {
                    exam,
                    statement: statement.as_bytes().to_vec(),
                    technician_cert: who.cert_der.clone(),
                },
            )
            .await?
        {
            Answer::ReadinessSigned(r) if r.ready => {
                Ok("Акт готовности подписан: все проверки пройдены".to_owned())
            }
            Answer::ReadinessSigned(r) => Ok(format!(
                "Акт подписан: ОО НЕ ГОТОВА, не пройдены: {}",
                r.failed.join(", ")
            )),
            _ => Ok("Акт подписан".to_owned()),
        }
    }
    .await;
    back(&to, result)
}
