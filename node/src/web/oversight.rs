//! The oversight page (HTML in Russian, no scripts, no external assets) and its progress chart
//! (SVG), rendered from [`Oversight`].

use std::fmt::Write as _;

use giasync_shared::calendar::{LocalTime, Timestamp};
use giasync_shared::oversight::{DeadlineState, Oversight, Progress};

use super::escape;

/// Seconds between the page's automatic reloads.
pub const REFRESH_S: u32 = 30;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
td,th{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}
th{background:#eee;font-size:.9em}.num{text-align:right}
abbr{text-decoration:none;cursor:help}
.overdue{background:#fdd}.done{background:#dfd}.pending{background:#ffd}
.offline{color:#a00}.online{color:#070}.muted{color:#666}
.warning{background:#fdd;border:1px solid #c66;padding:.4em .6em}
.summary span{display:inline-block;margin-right:1.5em}
code{font-size:.85em}";

fn lag(seconds: Option<i64>) -> String {
    match seconds {
        None => "—".into(),
        Some(s) if s < 60 => format!("{s} с"),
        Some(s) if s < 3600 => format!("{} мин", s / 60),
        Some(s) if s < 86_400 => format!("{} ч {} мин", s / 3600, s % 3600 / 60),
        Some(s) => format!("{} дн", s / 86_400),
    }
}

fn progress_cells(out: &mut String, p: &Progress) {
    for n in [p.registered, p.present, p.absent, p.finished, p.scored] {
        let _ = write!(out, "<td class=\"num\">{n}</td>");
    }
}

/// Abbreviated so a school's row fits a 1,366-px screen; the full name shows on hover.
const PROGRESS_HEAD: &str = "<th><abbr title=\"Зарегистрировано\">Зарег.</abbr></th><th>Явились</th>\
<th><abbr title=\"Не явились («Н»)\">«Н»</abbr></th><th>Завершили</th><th>Оценено</th>";

fn state_name(state: DeadlineState) -> (&'static str, &'static str) {
    match state {
        DeadlineState::Done => ("done", "выполнено"),
        DeadlineState::Pending => ("pending", "в работе"),
        DeadlineState::Overdue => ("overdue", "просрочено"),
    }
}

/// The whole page.
#[must_use]
pub fn page(o: &Oversight) -> String {
    let mut h = String::new();
    let scope = escape(&super::russian_node(&o.scope));
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">\
         <title>Мониторинг ГИА — {scope}</title><style>{STYLE}</style></head><body>\
         <h1>Мониторинг ГИА — {scope}</h1>\
         <p class=\"muted\">Узел {} · данные на {} (время региона: UTC{}) · страница обновляется каждые {REFRESH_S} с · \
         <a href=\"/api/oversight\">JSON</a> · <a href=\"/retakes\">Пересдачи</a> · \
         <a href=\"/readiness\">Готовность ОО и материалы</a></p>",
        escape(&super::russian_node(&o.node)),
        o.generated_at.ru(),
        o.utc_offset
    );
    if let Some(expires) = o.certificate_expires {
        let _ = write!(
            h,
            "<p class=\"warning\" id=\"certificate\">Сертификат узла {}: {}. Выпустите новый сертификат узла в РЦОИ и замените его (docs/operations.md, «Renew»).</p>",
            if expires.instant() <= o.generated_at.instant() {
                "истёк"
            } else {
                "истекает"
            },
            expires.ru()
        );
    }
    let open = o
        .conflicts
        .iter()
        .filter(|c| c.settled_by.is_none())
        .count();
    let _ = write!(
        h,
        "<p class=\"summary\"><span>Школ: <b>{}</b></span><span>Просроченных сроков: <b id=\"overdue-count\">{}</b></span>\
         <span>Открытых конфликтов: <b id=\"conflict-count\">{open}</b></span>\
         <span>Недействительных записей: <b>{}</b></span><span>Отклонённых сообщений синхронизации: <b>{}</b></span></p>",
        o.schools.len(),
        o.overdue,
        o.invalid.len(),
        o.quarantined
    );

    deadlines(&mut h, o);
    schools(&mut h, o);
    conflicts(&mut h, o);
    category_requests(&mut h, o);
    invalid(&mut h, o);
    // Chart.
    h.push_str("<h2 id=\"progress\">Ход дня</h2>");
    h.push_str(&chart(o));
    h.push_str("</body></html>");
    h
}

/// The orders' deadlines, overdue first.
fn deadlines(h: &mut String, o: &Oversight) {
    h.push_str("<h2 id=\"deadlines\">Сроки по приказам</h2>");
    if o.deadlines.is_empty() {
        h.push_str("<p class=\"muted\">Нет данных об экзаменах.</p>");
    } else {
        h.push_str("<table><tr><th>Экзамен</th><th>ОО</th><th>Этап</th><th>Срок (включительно)</th><th>Состояние</th><th>Подробности</th></tr>");
        let mut rows: Vec<_> = o.deadlines.iter().collect();
        rows.sort_by_key(|d| (d.state != DeadlineState::Overdue, d.due, d.school.clone()));
        for d in rows {
            let (class, name) = state_name(d.state);
            let _ = write!(
                h,
                "<tr class=\"{class}\" data-step=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{name}</td><td>{}</td></tr>",
                escape(&d.step),
                escape(&d.exam.name_ru()),
                escape(&d.school),
                escape(&d.title),
                d.due.ru(),
                escape(&d.detail)
            );
        }
        h.push_str("</table>");
    }
}

/// Each school: contact, documents, progress; then each room.
fn schools(h: &mut String, o: &Oversight) {
    h.push_str("<h2 id=\"schools\">Школы</h2>");
    if o.schools.is_empty() {
        h.push_str("<p class=\"muted\">Пока нет данных ни от одной школы.</p>");
    } else {
        let _ = write!(
            h,
            "<table id=\"schools-table\"><tr><th>ОО</th><th>МОУО</th><th>Связь</th><th>Последний контакт</th><th>Задержка</th>\
             <th><abbr title=\"Документов не синхронизировано\">Не синхр.</abbr></th>{PROGRESS_HEAD}\
             <th><abbr title=\"Конфликты: открыто / урегулировано\">Конфликты</abbr></th>\
             <th><abbr title=\"Недействительные записи\">Недейств.</abbr></th>\
             <th>Результаты</th><th>Ознакомлено</th></tr>"
        );
        for s in &o.schools {
            let link = if s.connected && s.link == Some(giasync_shared::sync::Link::Tcp) {
                "<span class=\"online\" title=\"UDP не проходит: связь через TCP\">на связи (TCP)</span>"
            } else if s.connected {
                "<span class=\"online\">на связи</span>"
            } else if s.last_contact.is_some() {
                "<span class=\"offline\">нет связи</span>"
            } else {
                "<span class=\"muted\">через МОУО</span>"
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{link}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>",
                escape(&s.school),
                escape(&s.municipality),
                s.last_contact
                    .or(s.last_activity)
                    .map_or_else(|| "—".to_owned(), LocalTime::ru),
                lag(s.lag_s),
                s.docs_pending
            );
            progress_cells(h, &s.progress);
            let results = match (&s.results_delivered, s.results_published) {
                (Some(at), _) => format!("получены школой {}", at.ru()),
                (None, true) => "опубликованы РЦОИ".into(),
                (None, false) => "—".into(),
            };
            let _ = write!(
                h,
                "<td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td>{results}</td><td class=\"num\">{}</td></tr>",
                s.conflicts_open, s.conflicts_settled, s.sheets_invalid, s.familiarised
            );
        }
        h.push_str("</table>");
        let with_recordings: Vec<_> = o
            .schools
            .iter()
            .filter(|s| s.recordings.named > 0)
            .collect();
        let moving = o.blobs.as_ref().filter(|b| b.held + b.fetching > 0);
        if !with_recordings.is_empty() || moving.is_some() {
            h.push_str("<h2 id=\"recordings\">Аудиозаписи</h2>");
        }
        if let Some(b) = moving {
            let eta = match (b.fetching, b.eta_s) {
                (0, _) => "всё получено".to_owned(),
                (_, Some(s)) => format!("осталось примерно {}", lag(i64::try_from(s).ok())),
                (_, None) => "сейчас ничего не поступает".to_owned(),
            };
            let _ = write!(
                h,
                "<p id=\"blobs\">На этом узле: {} записей ({:.1} МБ). Получается: {}, осталось {:.1} МБ, \
                 скорость {:.1} КБ/с, {eta}.</p>",
                b.held,
                b.held_bytes as f64 / 1_000_000.0,
                b.fetching,
                b.bytes_left as f64 / 1_000_000.0,
                b.rate_bytes_s as f64 / 1_000.0,
            );
        }
        if !with_recordings.is_empty() {
            h.push_str("<table><tr><th>ОО</th><th>Записей</th><th>Объём</th><th>В РЦОИ</th><th>Уничтожено ОО</th><th>Уничтожено РЦОИ</th><th>Срок хранения истёк, не уничтожено ОО</th></tr>");
            for s in with_recordings {
                let r = &s.recordings;
                let _ = write!(
                    h,
                    "<tr id=\"rec-{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1} МБ</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num{}\">{}</td></tr>",
                    escape(&s.school),
                    escape(&s.school),
                    r.named,
                    r.bytes as f64 / 1_000_000.0,
                    r.at_rcoi,
                    r.destroyed_by_school,
                    r.destroyed_by_rcoi,
                    if r.due_not_destroyed > 0 {
                        " overdue"
                    } else {
                        ""
                    },
                    r.due_not_destroyed
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<h2 id=\"rooms\">Аудитории</h2><table><tr><th>ОО</th><th>Экзамен</th><th>Аудитория</th>");
        h.push_str(PROGRESS_HEAD);
        h.push_str("</tr>");
        for s in &o.schools {
            for r in &s.rooms {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td>",
                    escape(&s.school),
                    escape(&r.exam.name_ru()),
                    escape(&r.room)
                );
                progress_cells(h, &r.progress);
                h.push_str("</tr>");
            }
        }
        h.push_str("</table>");
    }
}

/// Conflicting sheets, open and settled.
fn conflicts(h: &mut String, o: &Oversight) {
    h.push_str("<h2 id=\"conflicts\">Конфликты бланков</h2>");
    if o.conflicts.is_empty() {
        h.push_str("<p class=\"muted\">Конфликтов нет.</p>");
    } else {
        h.push_str("<p class=\"muted\">Два и более подписанных бланка одного участника без исправления между ними. Урегулирует комиссия школы подписанной записью председателя (или эксперта аудитории, если так установлено на год): <code>giasync-node settle</code> в школе; МОУО и РЦОИ видят открытые конфликты и сроки.</p>");
        h.push_str("<table><tr><th>Экзамен</th><th>ОО</th><th>Участник</th><th>Попытка</th><th>Бланки (эксперт: балл, результат, подписан)</th><th>Состояние</th></tr>");
        for c in &o.conflicts {
            let sheets: Vec<String> = c
                .sheets
                .iter()
                .map(|s| {
                    format!(
                        "{}: {} ({}), {} <code>{}</code>",
                        escape(&s.expert),
                        s.total,
                        escape(&s.result),
                        s.signed_at.ru(),
                        escape(s.hash.get(..12).unwrap_or(&s.hash))
                    )
                })
                .collect();
            let state = match &c.settled_by {
                Some(h) => format!(
                    "урегулирован <code>{}</code>",
                    escape(h.get(..12).unwrap_or(h))
                ),
                None => "<b>открыт</b>".into(),
            };
            let _ = write!(
                h,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{state}</td></tr>",
                if c.settled_by.is_some() {
                    "done"
                } else {
                    "overdue"
                },
                escape(&c.exam.name_ru()),
                escape(&c.school),
                escape(&c.participant),
                c.attempt,
                sheets.join("<br>")
            );
        }
        h.push_str("</table>");
    }
}

/// Records refused by the checks.
fn category_requests(h: &mut String, o: &Oversight) {
    h.push_str("<h2 id=\"category-requests\">Запросы на изменение категории участника</h2>");
    if o.category_requests.is_empty() {
        h.push_str("<p class=\"muted\">Запросов нет.</p>");
        return;
    }
    h.push_str(
        "<p>Категория из регионального реестра действует, пока РЦОИ не утвердит другую \
         (<code>giasync-hub approve-category</code>).</p>\
         <table><tr><th>Экзамен</th><th>ОО</th><th>Участник</th><th>В реестре</th><th>Запрошено</th></tr>",
    );
    for r in &o.category_requests {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&r.exam.name_ru()),
            escape(&r.school),
            escape(&r.participant),
            escape(&r.of_record),
            escape(&r.requested)
        );
    }
    h.push_str("</table>");
}

fn invalid(h: &mut String, o: &Oversight) {
    h.push_str("<h2 id=\"invalid\">Недействительные и отклонённые данные</h2>");
    let _ = write!(
        h,
        "<p>Сообщений синхронизации отклонено (карантин): <b>{}</b></p>",
        o.quarantined
    );
    if o.invalid.is_empty() {
        h.push_str("<p class=\"muted\">Недействительных записей нет.</p>");
    } else {
        h.push_str("<table><tr><th>Экзамен</th><th>ОО</th><th>Запись</th><th>Причина</th></tr>");
        for i in &o.invalid {
            let _ = write!(
                h,
                "<tr class=\"overdue\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&i.exam.name_ru()),
                escape(&i.school),
                escape(&i.record),
                escape(&i.reason)
            );
        }
        h.push_str("</table>");
    }
}

/// A line of the chart: its name, colour and value at a point.
type Series = (
    &'static str,
    &'static str,
    fn(&giasync_shared::oversight::TimelinePoint) -> usize,
);

const CHART_W: i64 = 720;
const CHART_H: i64 = 260;
const MARGIN: i64 = 40;

/// The day's progress of the latest exam: participants started, finished and scored, cumulative.
#[must_use]
pub fn chart(o: &Oversight) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_W}\" height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"Ход дня\">\
         <rect width=\"{CHART_W}\" height=\"{CHART_H}\" fill=\"#fff\"/>"
    );
    let points = &o.timeline;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        let _ = write!(
            s,
            "<text x=\"20\" y=\"40\" font-family=\"sans-serif\" font-size=\"14\">Нет данных за день</text></svg>"
        );
        return s;
    };
    let max = points
        .iter()
        .map(|p| p.started.max(p.finished).max(p.scored))
        .max()
        .unwrap_or(0)
        .max(1);
    let span = (last.at_ms - first.at_ms).max(1);
    let (w, h) = (CHART_W - 2 * MARGIN, CHART_H - 2 * MARGIN);
    let x = |at: i64| MARGIN + (at - first.at_ms) * w / span;
    let y =
        |n: usize| MARGIN + h - i64::try_from(n).unwrap_or(0) * h / i64::try_from(max).unwrap_or(1);
    let _ = write!(
        s,
        "<line x1=\"{MARGIN}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\
         <line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{}\" stroke=\"#999\"/>\
         <text x=\"4\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\">{max}</text>\
         <text x=\"4\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\">0</text>",
        MARGIN + h,
        MARGIN + w,
        MARGIN + h,
        MARGIN + h,
        MARGIN + 4,
        MARGIN + h
    );
    for (at, anchor) in [(first.at_ms, "start"), (last.at_ms, "end")] {
        let label = giasync_shared::calendar::Timestamp::from_unix_ms(at)
            .map(|t| t.at_offset(o.utc_offset).hh_mm())
            .unwrap_or_default();
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" font-family=\"sans-serif\" font-size=\"11\">{}</text>",
            x(at),
            MARGIN + h + 16,
            escape(&label)
        );
    }
    let series: [Series; 3] = [
        ("начали", "#1f77b4", |p| p.started),
        ("завершили", "#ff7f0e", |p| p.finished),
        ("оценено", "#2ca02c", |p| p.scored),
    ];
    for (i, (name, colour, value)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{},{}", x(p.at_ms), y(value(p))))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <rect x=\"{}\" y=\"12\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"22\" font-family=\"sans-serif\" font-size=\"12\">{name}: {}</text>",
            path.join(" "),
            MARGIN + i64::try_from(i).unwrap_or(0) * 160,
            MARGIN + 16 + i64::try_from(i).unwrap_or(0) * 160,
            value(last)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-family=\"sans-serif\" font-size=\"11\">{} (UTC{})</text></svg>",
        MARGIN + w,
        CHART_H - 4,
        escape(&o.timeline_exam.map(|e| e.name_ru()).unwrap_or_default()),
        o.utc_offset
    );
    s
}

/// Who must be registered for an additional date, with the reason (seed 002 §70), and who waits
/// for an absence's reason or a result; the admitted download as CSV for `giasync-hub import`.
pub fn retakes_page(list: &crate::app::retakes::Retakes) -> String {
    let mut h = String::new();
    let exam = list.exam.to_string();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <title>Пересдачи: {n}</title><style>{STYLE}</style></head><body>\
         <h1>Допуск к дополнительной дате: {n}</h1>\
         <p class=\"muted\"><a href=\"/\">Мониторинг</a> · Скачать список: <a id=\"csv\" href=\"/retakes.csv?exam={e}\">CSV</a>, <a id=\"xlsx\" href=\"/retakes.xlsx?exam={e}\">XLSX</a> — \
         его читает <code>giasync-hub import</code></p>",
        e = escape(&exam),
        n = escape(&list.exam.name_ru())
    );
    let admitted: Vec<_> = list.rows.iter().filter(|r| r.admission.is_some()).collect();
    let waiting: Vec<_> = list.rows.iter().filter(|r| r.refused.is_some()).collect();
    let name = |r: &crate::app::retakes::RetakeRow| {
        let f = |k: &str| r.fields.get(k).map_or("", String::as_str);
        format!("{} {} {}", f("surname"), f("given_name"), f("patronymic"))
            .trim()
            .to_owned()
    };
    let _ = write!(
        h,
        "<h2>Должны быть зарегистрированы: {}</h2>",
        admitted.len()
    );
    h.push_str("<table id=\"admitted\"><tr><th>МОУО</th><th>ОО</th><th>Участник</th><th>Класс</th><th>Основание</th><th>Попытка</th></tr>");
    for r in &admitted {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.municipality,
            r.school,
            escape(&name(r)),
            escape(r.fields.get("class").map_or("", String::as_str)),
            escape(
                &r.admission
                    .as_ref()
                    .map(|a| a.describe())
                    .unwrap_or_default()
            ),
            r.attempt.unwrap_or_default()
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2>Ждут причины отсутствия или результата: {}</h2>",
        waiting.len()
    );
    h.push_str("<table id=\"waiting\"><tr><th>МОУО</th><th>ОО</th><th>Участник</th><th>Почему пока не допущен</th></tr>");
    for r in &waiting {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.municipality,
            r.school,
            escape(&name(r)),
            escape(r.refused.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table></body></html>");
    h
}

/// The hub's page of an exam's schools: each one's readiness act against the deadline (seed 002
/// §26) and when it opened the materials (§30).
pub fn readiness_page(
    r: &crate::app::readiness::ReadinessView,
    materials: &[crate::app::materials::SchoolOpened],
) -> String {
    let mut h = String::new();
    let exam = r.exam.name_ru();
    let time = |t: Timestamp| t.at_offset(r.clock).ru();
    let count = |name: &str| r.schools.iter().filter(|s| s.standing == name).count();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <title>Готовность: {e}</title><style>{STYLE}</style></head><body>\
         <h1>Готовность ОО и материалы: {e}</h1>\
         <p class=\"muted\"><a href=\"/\">Мониторинг</a> · {t} ({src}); акты — до {due}</p>\
         <p id=\"readiness-summary\">Готовы: {ready} · не готовы: {not_ready} · не представили акт: {missing} · с истёкшим сроком: {overdue}</p>",
        e = escape(&exam),
        t = escape(&r.title),
        src = escape(&r.source),
        due = time(r.due),
        ready = count("ready"),
        not_ready = count("not-ready"),
        missing = count("not-reported"),
        overdue = r.schools.iter().filter(|s| s.overdue).count(),
    );
    h.push_str("<table id=\"readiness\"><tr><th>ОО</th><th>Готовность</th><th>Акт</th><th>Не пройдены</th><th>Материалы открыты</th><th>Неверных кодов</th></tr>");
    for s in &r.schools {
        let opened = materials.iter().find(|m| m.school == s.school);
        let standing = match s.standing.as_str() {
            "ready" => "готова",
            "not-ready" => "не готова",
            _ => "акт не представлен",
        };
        let _ = write!(
            h,
            "<tr id=\"school-{code}\" class=\"{class}\"><td>{code}</td><td class=\"standing\">{standing}{late}</td><td>{at}</td><td>{failed}</td><td class=\"opened\">{opened_at}</td><td>{wrong}</td></tr>",
            code = s.school,
            class = if s.overdue { "overdue" } else { "" },
            late = if s.overdue {
                " — срок прошёл"
            } else if s.late {
                " (акт после срока)"
            } else {
                ""
            },
            at = s.at.map_or_else(String::new, time),
            failed = escape(&s.failed.join(", ")),
            opened_at = opened
                .and_then(|o| o.opened.map(|t| format!(
                    "{} ({})",
                    time(t),
                    if o.opened_by.as_deref() == Some("code") {
                        "резервный код"
                    } else {
                        "ключ РЦОИ"
                    }
                ) + if o.early {
                    " — РАНЬШЕ 07:30"
                } else {
                    ""
                }))
                .unwrap_or_else(|| "нет".to_owned()),
            wrong = opened.map_or(0, |o| o.wrong_codes),
        );
    }
    h.push_str("</table></body></html>");
    h
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod tests {
    use giasync_shared::oversight::{BlobsView, Oversight, SchoolView};

    use super::page;

    #[test]
    fn the_page_says_what_the_hub_holds_and_fetches_and_when_it_will_be_done() {
        let mut o = Oversight {
            node: "municipality:4201".into(),
            scope: "municipality 4201".into(),
            utc_offset: "+07:00".parse().unwrap(),
            generated_at: "2024-02-14T12:00:00+07:00".parse().unwrap(),
            schools: vec![SchoolView {
                school: "420101".into(),
                ..SchoolView::default()
            }],
            conflicts: Vec::new(),
            invalid: Vec::new(),
            category_requests: Vec::new(),
            quarantined: 0,
            deadlines: Vec::new(),
            overdue: 0,
            timeline_exam: None,
            timeline: Vec::new(),
            blobs: None,
            certificate_expires: None,
        };
        // Times and exams as people read them.
        assert!(
            page(&o).contains("данные на 14.02.2024 12:00"),
            "{}",
            page(&o)
        );
        // The hub's certificate: named only when it expires soon, or expired.
        assert!(!page(&o).contains("id=\"certificate\""));
        o.certificate_expires = Some("2024-03-01T10:00:00+07:00".parse().unwrap());
        assert!(
            page(&o).contains("Сертификат узла истекает: 01.03.2024 10:00"),
            "{}",
            page(&o)
        );
        o.certificate_expires = Some("2024-02-14T11:00:00+07:00".parse().unwrap());
        assert!(page(&o).contains("Сертификат узла истёк: 14.02.2024 11:00"));
        o.certificate_expires = None;
        assert!(!page(&o).contains("id=\"blobs\""), "nothing to say");
        o.blobs = Some(BlobsView::default());
        assert!(
            !page(&o).contains("id=\"blobs\""),
            "nothing held or fetched"
        );
        o.blobs = Some(BlobsView {
            held: 12,
            held_bytes: 90_000_000,
            fetching: 3,
            bytes_left: 21_000_000,
            rate_bytes_s: 125_000,
            eta_s: Some(168),
        });
        let fetching = page(&o);
        assert!(fetching.contains("<h2 id=\"recordings\">"), "{fetching}");
        assert!(
            fetching.contains(
                "На этом узле: 12 записей (90.0 МБ). Получается: 3, осталось 21.0 МБ, \
                 скорость 125.0 КБ/с, осталось примерно 2 мин."
            ),
            "{fetching}"
        );
        o.blobs = Some(BlobsView {
            eta_s: None,
            rate_bytes_s: 0,
            ..o.blobs.clone().unwrap()
        });
        assert!(page(&o).contains("сейчас ничего не поступает"));
        o.blobs = Some(BlobsView {
            held: 12,
            held_bytes: 90_000_000,
            ..BlobsView::default()
        });
        assert!(page(&o).contains("всё получено"));
    }
}
