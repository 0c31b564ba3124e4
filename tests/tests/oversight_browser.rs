//! A МОУО hub's oversight page, checked in headless Chromium: a school's data for a past exam —
//! two experts' conflicting sheets for one participant, a participant present but never scored —
//! reaches the hub over QUIC; the page, loaded with every host name resolving to nothing, shows
//! the conflict and the overdue scoring deadline. Screenshot: `target/screenshots/`.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use giasync_certs::demo::Region;
use giasync_node::app::Command as Request;
use giasync_shared::calendar::{Date, Timestamp, UtcOffset};
use giasync_shared::config::NodeConfig;
use giasync_tests::roster_row;

/// Days between the exam and today: its scoring deadline (5 days) is over.
const DAYS_AGO: i64 = 7;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// The exam of `DAYS_AGO` days ago on the demo region's clock (Кемерово, UTC+7), and the
/// start of its day.
fn past_exam() -> (String, Date, i64) {
    let clock: UtcOffset = "+07:00".parse().unwrap();
    let today = Timestamp::from_unix_ms(giasync_tests::now_ms())
        .unwrap()
        .date_at(clock);
    let day = today.add_days(-DAYS_AGO).unwrap();
    (format!("is-{day}"), day, day.day_window_ms(clock).start)
}

/// The school's exam day, written to its store before it starts: the roster, marks, the room
/// log of the morning and two experts' sheets, signed that day.
fn school_day(dir: &Path, region: &Region, config: &NodeConfig, (exam, day_start): (&str, i64)) {
    let at = |local_ms: i64| Timestamp::from_unix_ms(day_start + local_ms).unwrap();
    let rules = giasync_shared::rules::Rules::is_2024().unwrap();
    let experts = giasync_tests::experts_of(region, "420101");
    assert!(experts.len() >= 2, "the demo school has two experts");
    let mark = |participant: &str, status: &str| {
        Request::Mark(giasync_node::app::command::Marking {
            exam: exam.parse().unwrap(),
            participant: giasync_shared::codes::ParticipantId::new(participant).unwrap(),
            attendance: giasync_shared::room::Attendance::from_words(status, "").unwrap(),
        })
    };
    // The room log of the morning: two participants answered 09:00–09:15 and 09:16–09:31 on
    // the demo region's clock (Кемерово, UTC+7), so the chart of the day has points to draw.
    let log = |participant: &str, at: Timestamp, end| Request::Log {
        exam: exam.parse().unwrap(),
        participant: giasync_shared::codes::ParticipantId::new(participant).unwrap(),
        interviewer: None,
        at,
        end,
        variant: None,
    };
    // Scored at 10:00 and 10:05 that day.
    let score = |expert, points, signed_at| {
        giasync_tests::score_request_signed(
            dir,
            &rules,
            expert,
            (exam, "420101", "p-conflict"),
            points,
            signed_at,
        )
    };
    giasync_tests::apply_all(
        config,
        vec![
            giasync_tests::import(
                exam,
                vec![
                    roster_row("p-conflict", "Конфликтова", "000001"),
                    roster_row("p-waiting", "Ожидаева", "000002"),
                    roster_row("p-absent", "Неявкина", "000003"),
                ],
            ),
            mark("p-absent", "absent"),
            mark("p-waiting", "present"),
            log("p-conflict", at(9 * HOUR_MS), false),
            log("p-conflict", at(9 * HOUR_MS + 15 * MINUTE_MS), true),
            log("p-waiting", at(9 * HOUR_MS + 16 * MINUTE_MS), false),
            log("p-waiting", at(9 * HOUR_MS + 31 * MINUTE_MS), true),
            score(experts[0], giasync_tests::POINTS_FULL, at(10 * HOUR_MS)),
            score(
                experts[1],
                giasync_tests::POINTS_LOW,
                at(10 * HOUR_MS + 5 * MINUTE_MS),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oversight_page_shows_a_conflict_and_an_overdue_deadline_with_no_network() {
    let dir = tempfile::tempdir().unwrap();
    // The region's certificates date from the day before the exam.
    let made = giasync_tests::now() - time::Duration::days(DAYS_AGO + 1);
    giasync_tests::demo_region_made(dir.path(), 46_400, 1, false, made);
    let region = giasync_tests::region_listed(dir.path());
    let (exam, day, day_start) = past_exam();
    let due = day.add_days(5).unwrap().to_string();
    let school_config = giasync_tests::node_config(dir.path(), "420101", &[]);
    school_day(dir.path(), &region, &school_config, (&exam, day_start));

    let mut hub_config = giasync_tests::node_config(dir.path(), "4201", &[]);
    hub_config.node.web = Some("127.0.0.1:0".parse().unwrap());
    // What the page shows, read by a headless browser that cannot sign in: this hub is set up
    // as one behind a proxy that signs people in (sign-in itself: `tests/tests/sign_in.rs`).
    hub_config.node.oversight = giasync_shared::config::OversightAccess::Open;
    let hub = giasync_node::service::start(hub_config).await.unwrap();
    let web = hub.web.unwrap();
    let school = giasync_node::service::start(giasync_tests::node_config(
        dir.path(),
        "420101",
        &[hub.listen.unwrap()],
    ))
    .await
    .unwrap();

    // The JSON API: wait until the hub has the school's sheets and sees the conflict.
    let mut view = serde_json::Value::Null;
    for _ in 0..200 {
        let (status, body) = tokio::task::spawn_blocking(move || {
            giasync_tests::http_get(web, "/api/oversight").unwrap()
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        view = serde_json::from_str(&body).unwrap();
        if view["conflicts"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(view["scope"], "municipality 4201");
    assert_eq!(view["conflicts"][0]["participant"], "p-conflict");
    assert_eq!(view["conflicts"][0]["sheets"].as_array().unwrap().len(), 2);
    let scoring = view["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["step"] == "scoring")
        .unwrap();
    assert_eq!(scoring["state"], "overdue");
    assert_eq!(scoring["due"], due.as_str());
    let rooms = &view["schools"][0]["rooms"][0]["progress"];
    assert_eq!(
        (&rooms["registered"], &rooms["absent"], &rooms["present"]),
        (&3.into(), &1.into(), &2.into())
    );

    // The chart of the day: both participants started and finished, none scored (the one with
    // sheets is in conflict).
    let (status, svg) =
        tokio::task::spawn_blocking(move || giasync_tests::http_get(web, "/chart.svg").unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(svg.matches("<polyline").count(), 3, "{svg}");
    // On the region's clock (Кузбасс, UTC+7): the first step ends at 09:15 local.
    for legend in [
        "начали: 2",
        "завершили: 2",
        "оценено: 0",
        ">09:15<",
        "(UTC+07:00)",
    ] {
        assert!(svg.contains(legend), "{legend} not in {svg}");
    }

    // The page in Chromium, with every host name but loopback resolving to nothing.
    let url = format!("http://{web}/");
    let shot = giasync_tests::screenshot_dir().join("oversight-hub.png");
    let dom = tokio::task::spawn_blocking(move || {
        let dom = giasync_tests::chromium(&["--dump-dom", &url]);
        // A screenshot an earlier run left must not pass for this one's.
        let _ = std::fs::remove_file(&shot);
        giasync_tests::chromium(&[&format!("--screenshot={}", shot.display()), &url]);
        let png = std::fs::read(&shot).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 1000,
            "no screenshot at {}",
            shot.display()
        );
        String::from_utf8(dom.stdout).unwrap()
    })
    .await
    .unwrap();
    assert!(dom.contains("Мониторинг ГИА — МОУО 4201"), "{dom}");
    assert!(dom.contains("Узел МОУО 4201"), "{dom}");
    // The conflict, open, with both experts' totals.
    let conflicts = dom.split("id=\"conflicts\"").nth(1).unwrap();
    assert!(conflicts.contains("p-conflict"), "{conflicts}");
    assert!(conflicts.contains("открыт"), "{conflicts}");
    assert!(conflicts.contains(": 20 (зачёт)") && conflicts.contains(": 9 (незачёт)"));
    // The overdue scoring deadline, marked as such.
    let overdue_row = dom
        .split("<tr")
        .find(|r| r.contains("data-step=\"scoring\""))
        .unwrap();
    assert!(
        overdue_row.contains("class=\"overdue\"") && overdue_row.contains("просрочено"),
        "{overdue_row}"
    );
    // Dates, times and exams as people read them; RFC 3339 stays in the JSON.
    let day_due = day.add_days(5).unwrap();
    let due_ru = format!(
        "{:02}.{:02}.{:04}",
        day_due.day(),
        day_due.month(),
        day_due.year()
    );
    assert!(overdue_row.contains(&due_ru), "{due_ru}: {overdue_row}");
    let exam_ru = format!(
        "Итоговое собеседование, {:02}.{:02}.{:04}",
        day.day(),
        day.month(),
        day.year()
    );
    assert!(overdue_row.contains(&exam_ru), "{exam_ru}: {overdue_row}");
    let body = dom.split("<body>").nth(1).unwrap_or(&dom);
    assert!(
        !body.contains(&format!(">{exam}<")),
        "the exam's id as text: {body}"
    );
    // No `…dddTdd:dd:dd…` anywhere: an RFC 3339 time left on the page.
    let bytes = body.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let rfc3339 = (2..bytes.len()).find(|&i| {
        bytes[i] == b'T'
            && digit(i - 1)
            && digit(i + 1)
            && digit(i + 2)
            && bytes.get(i + 3) == Some(&b':')
            && digit(i + 4)
            && digit(i + 5)
            && bytes.get(i + 6) == Some(&b':')
    });
    assert!(rfc3339.is_none(), "an RFC 3339 time on the page: {body}");
    // Nothing outside the page: no scripts, no stylesheets or images from elsewhere.
    for external in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(!dom.contains(external), "the page refers to {external}");
    }
    // The schools' table fits a 1,366-px screen (the browser's window is 1,300 px wide): the
    // page never scrolls sideways.
    let widths = tokio::task::spawn_blocking(move || {
        let browser = giasync_tests::webdriver::Browser::start();
        browser.open(&format!("http://{web}/"));
        browser.script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
        )
    })
    .await
    .unwrap();
    let (scroll, client) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(
        scroll <= client,
        "the page is {scroll} px wide in a {client}-px window"
    );
    school.stop();
    hub.stop();
}
