//! The school's web interface end to end, in headless Chromium driven by chromedriver, against a
//! school node and its МОУО hub running over QUIC: the organiser adds a room and assigns
//! participants, the interviewer logs a participant, the expert scores and signs, and the sheet
//! reaches the hub. A wrong PIN signs nobody in; an expert cannot open the organiser's page;
//! two browsers on one node see each other's changes. Screenshots: `target/screenshots/`.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use giasync_certs::demo::Region;
use giasync_node::app::Command as Request;
use giasync_shared::sync::DocId;
use giasync_tests::roster_row;
use giasync_tests::webdriver::Browser;

fn pin(region: &Region, id: &str) -> String {
    region
        .people
        .iter()
        .find(|p| p.id.as_str() == id)
        .unwrap()
        .pin
        .clone()
}

/// Signs in; returns once the browser has left the sign-in form (or shows its error).
fn sign_in(browser: &Browser, base: &str, person: &str, pin: &str) {
    browser.open(&format!("{base}/login"));
    browser.click(&format!("select[name=person] option[value='{person}']"));
    browser.type_into("input[name=pin]", pin);
    browser.click("#login button");
    browser.wait_for(15, "past the sign-in form", |b| {
        !b.url().ends_with("/login") || b.has("#error")
    });
}

/// Signs out; returns once the browser is back at the sign-in form.
fn sign_out(browser: &Browser) {
    browser.click("header form button");
    browser.wait_for(15, "signed out", |b| b.url().ends_with("/login"));
}

/// Waits until the page (reloading itself) shows `text` where `css` selects.
fn eventually_shows(browser: &Browser, css: &str, text: &str) {
    browser.wait_for(15, &format!("showing {text:?} in {css}"), |b| {
        b.try_text(css).is_some_and(|t| t.contains(text))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exam_day_in_the_browser_reaches_the_hub() {
    // Today's exam: the interviewer's clicks stamp the time now, and the room log takes only
    // times on the exam's day.
    let exam = giasync_tests::todays_exam();
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 46_700, 1);
    let school_config = giasync_tests::node_config(dir.path(), "420101", &[]);
    let rows = vec![
        // Disabled (инвалид), of the standard category: 46 minutes, not 16.
        giasync_node::app::command::RosterEntryWire {
            room: None,
            disabled: true,
            ..roster_row("p1", "Андреева", "000001")
        },
        giasync_node::app::command::RosterEntryWire {
            room: None,
            ..roster_row("p2", "Борисов", "000002")
        },
        // Answers in writing, on the ПМПК's recommendation (§61).
        giasync_node::app::command::RosterEntryWire {
            room: None,
            written: true,
            ..roster_row("p3", "Власова", "000003")
        },
    ];
    giasync_tests::apply_all(
        &school_config,
        vec![giasync_tests::import(&exam, rows.clone())],
    );
    // The РЦОИ lists them too: the register gives their category of record.
    let rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    giasync_tests::apply_all(
        &rcoi_config,
        vec![giasync_tests::register(&exam, "420101", "4201", rows)],
    );
    let rcoi = giasync_node::service::start(rcoi_config.clone())
        .await
        .unwrap();
    let hub = giasync_node::service::start(giasync_tests::node_config(
        dir.path(),
        "4201",
        &[rcoi.listen.unwrap()],
    ))
    .await
    .unwrap();
    let school = giasync_node::service::start(giasync_tests::node_config(
        dir.path(),
        "420101",
        &[hub.listen.unwrap()],
    ))
    .await
    .unwrap();
    let base = format!("http://{}", school.web.unwrap());
    let protocol: DocId = format!("protocol/4201/420101/{exam}").parse().unwrap();

    let region_ = region.clone();
    tokio::task::spawn_blocking(move || {
        let region = region_;
        let browser = Browser::start();
        browser.open(&format!("{base}/login"));
        browser.screenshot("school-login");

        // The organiser: a room, both participants in it.
        sign_in(&browser, &base, "org-420101", &pin(&region, "org-420101"));
        assert!(browser.url().ends_with("/roster"), "{}", browser.url());
        browser.type_into("#add-room input[name=room]", "101");
        browser.type_into("#add-room input[name=capacity]", "10");
        browser.click("#add-room button");
        eventually_shows(&browser, "#rooms", "101");
        for p in ["p1", "p2", "p3"] {
            browser.click(&format!("#p-{p} select[name=room] option[value='101']"));
            browser.click(&format!("#p-{p} button[value=assign]"));
            eventually_shows(&browser, "#message", "назначен в аудиторию 101");
        }
        assert!(
            browser.text("#rooms").contains("10 3"),
            "{}",
            browser.text("#rooms")
        );
        // Categories as the rules name them, not their ids.
        assert!(
            browser.text("#p-p1").contains("Участники без ОВЗ"),
            "{}",
            browser.text("#p-p1")
        );
        browser.screenshot("school-organiser");
        sign_out(&browser);

        // The head of the school signs the commission order: room 101's interviewer and expert.
        sign_in(&browser, &base, "head-420101", &pin(&region, "head-420101"));
        assert!(browser.url().ends_with("/commission"), "{}", browser.url());
        browser.click("#room-101 input[name='i:101'][value='int-420101-1']");
        browser.click("#room-101 input[name='e:101'][value='exp-420101-1']");
        browser.screenshot("school-commission");
        browser.click("#commission button");
        eventually_shows(&browser, "#message", "Приказ подписан: редакция 1");
        eventually_shows(&browser, "#order", "редакция 1");
        sign_out(&browser);

        // The interviewer: the next participant is p1; start and end of the answer.
        sign_in(
            &browser,
            &base,
            "int-420101-1",
            &pin(&region, "int-420101-1"),
        );
        browser.open(&format!("{base}/log"));
        eventually_shows(&browser, "#my-rooms", "по приказу о составе комиссии: 101");
        eventually_shows(&browser, "#next", "Андреева");
        // The start names the КИМ variant handed out (§42).
        browser.type_into("#log-p1 input[name=variant]", "1");
        browser.click("#log-p1 button[value=start]");
        eventually_shows(&browser, "#message", "Начало ответа записано");
        // A +30 minutes participant: her time and a running clock.
        eventually_shows(&browser, "#log-p1 .allowed", "46 мин (+30");
        eventually_shows(&browser, "#log-p1 .clock", "осталось 4");
        browser.screenshot("school-interviewer-clock");
        // The corridor's queue follows the room log.
        browser.open(&format!("{base}/queue"));
        eventually_shows(&browser, "#queue-101 .answering", "Андреева");
        eventually_shows(&browser, "#queue-101 .next", "Борисов");
        browser.open(&format!("{base}/log?room=101"));
        browser.click("#log-p1 button[value=end]");
        eventually_shows(&browser, "#message", "Окончание ответа записано");
        eventually_shows(&browser, "#next", "Борисов");
        browser.screenshot("school-interviewer");
        browser.open(&format!("{base}/queue"));
        eventually_shows(&browser, "#queue-101 .next", "Борисов");
        browser.screenshot("school-queue");
        browser.open(&format!("{base}/log?room=101"));
        sign_out(&browser);

        // The technician takes p1's recording in (the file the recorder wrote, named by the
        // convention) and plays it on the recordings page: the audio element reads its duration.
        let date = exam.trim_start_matches("is-");
        // Taken in at the node's console, as `giasync-node audio add FILE` does.
        let take_in = |name: String, seconds| {
            let file = giasync_tests::spoken_answer(dir.path(), &name, seconds);
            let added = giasync_node::admin::execute(
                &school_config,
                &giasync_node::app::Context::load(&school_config).unwrap(),
                &Request::AddRecording {
                    exam: exam.parse().unwrap(),
                    file,
                    room: None,
                    participant: None,
                    attempt: None,
                    stream: false,
                },
                giasync_tests::now_ms(),
            )
            .unwrap();
            assert!(added.ok, "{}", added.message);
        };
        take_in(format!("{date}_101_420101_p1.wav"), 3);
        sign_in(&browser, &base, "tech-420101", &pin(&region, "tech-420101"));
        // The technician lands on their page: the link, the clock, the recordings per room
        // (p1 answered once and is recorded; p2 and p3 have not answered yet).
        assert!(browser.url().ends_with("/tech"), "{}", browser.url());
        eventually_shows(&browser, "#tech-link", "на связи (МОУО 4201)");
        eventually_shows(&browser, "#tech-clock", "сегодня день проведения");
        eventually_shows(&browser, "#tech-room-101", "101 нет 1 1");
        browser.screenshot("school-technician");

        // The materials (seed 002 §30). The РЦОИ seals today's package (its 07:30 has passed
        // on the demo region's clock unless the test runs before 07:30 there) and one for a
        // date years ahead, whose 07:30 has not come.
        let ask_rcoi = |command: Request| {
            giasync_node::admin::execute(
                &rcoi_config,
                &giasync_node::app::Context::load(&rcoi_config).unwrap(),
                &command,
                giasync_tests::now_ms(),
            )
            .unwrap()
        };
        let future = "is-2099-02-11";
        for (e, name, text) in [
            (exam.as_str(), "kim.txt", "КИМ сегодня"),
            (future, "kim-future.txt", "КИМ будущего"),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, text).unwrap();
            let added = ask_rcoi(Request::MaterialsAdd {
                exam: e.parse().unwrap(),
                file,
                variants: 4,
            });
            assert!(added.ok, "{}", added.message);
        }
        // Before 07:30: the package is held, the key is not given, nothing is opened.
        let row = format!("#materials-{future}");
        // The page shows what the node holds when it is loaded: loaded again until the package
        // has arrived.
        browser.wait_for(30, "the future package held", |b| {
            b.open(&format!("{base}/tech?exam={future}"));
            b.try_text(&format!("{row} .held"))
                .is_some_and(|t| t == "да")
        });
        assert_eq!(browser.text(&format!("{row} .released")), "не выдан");
        assert_eq!(browser.text(&format!("{row} .opened")), "нет");
        browser.screenshot("school-technician-materials-before");
        // The reserve scheme: a wrong code is refused and counted.
        browser.type_into("#reserve-code input[name=code]", "0000-0000-0000-0000");
        browser.click("#reserve-code button");
        eventually_shows(&browser, "#error", "Код не подходит");
        assert_eq!(browser.text(&format!("{row} .wrong")), "1");
        browser.screenshot("school-technician-wrong-code");
        // The code the РЦОИ reads out by phone opens it (typed as heard: lower case, spaces).
        let code = giasync_tests::kept_code(dir.path(), future);
        browser.type_into(
            "#reserve-code input[name=code]",
            &code.trim().to_lowercase().replace('-', " "),
        );
        browser.click("#reserve-code button");
        eventually_shows(&browser, "#message", "Материалы открыты по резервному коду");
        eventually_shows(&browser, &format!("{row} .opened"), "по резервному коду");
        browser.screenshot("school-technician-reserve-code");
        // Today's package: the РЦОИ's key released it and the node opened it by itself.
        if giasync_tests::now_ms()
            >= giasync_shared::materials::release_time(
                exam.parse::<giasync_shared::exam::ExamId>().unwrap().date(),
                "+07:00".parse().unwrap(),
            )
            .unwrap()
            .unix_ms()
        {
            browser.open(&format!("{base}/tech"));
            let row = format!("#materials-{exam}");
            browser.wait_for(30, "today's materials opened", |b| {
                b.open(&format!("{base}/tech"));
                b.try_text(&format!("{row} .opened"))
                    .is_some_and(|t| t.contains("по ключу РЦОИ"))
            });
            assert!(
                browser
                    .text(&format!("{row} .released"))
                    .starts_with("выдан")
            );
            browser.screenshot("school-technician-materials-released");
        }

        // The readiness act (seed 002 §26) for today's exam: the node's own checks, a test
        // recording on this computer read back, and the technician's word for the printer and
        // the internet; signed with the technician's key.
        browser.open(&format!("{base}/tech"));
        eventually_shows(&browser, "#check-link .auto", "проверено узлом: да");
        eventually_shows(&browser, "#readiness-standing", "акт не подписан");
        let test_recording = giasync_tests::spoken_answer(dir.path(), "test-recording.wav", 2);
        browser.type_into(
            "#readiness input[name=recording]",
            &test_recording.display().to_string(),
        );
        browser.click("#readiness input[name=ok-internet]");
        browser.type_into("#readiness input[name=note-printer]", "нет бумаги");
        browser.screenshot("school-technician-readiness-form");
        browser.click("#readiness button");
        eventually_shows(&browser, "#error, #message", "НЕ ГОТОВА");
        eventually_shows(&browser, "#readiness-standing", "не пройдены: printer");
        browser.click("#readiness input[name=ok-internet]");
        browser.click("#readiness input[name=ok-printer]");
        browser.type_into(
            "#readiness input[name=recording]",
            &test_recording.display().to_string(),
        );
        browser.click("#readiness button");
        eventually_shows(&browser, "#message", "все проверки пройдены");
        eventually_shows(&browser, "#readiness-standing", "готовность подтверждена");
        browser.screenshot("school-technician-readiness");
        browser.open(&format!("{base}/recordings"));
        eventually_shows(&browser, ".recording", "Андреева");
        eventually_shows(&browser, ".missing", "общая запись аудитории");
        browser.wait_for(10, "the recording's duration", |b| {
            b.script("return document.querySelector('.recording audio').duration")
                .as_f64()
                .is_some_and(|d| d > 1.0)
        });
        browser.screenshot("school-recordings");
        browser.open(&format!("{base}/sync"));
        eventually_shows(&browser, "#recordings-sync", "в РЦОИ: 1");
        sign_out(&browser);

        // A wrong PIN signs nobody in, so nobody can sign.
        sign_in(&browser, &base, "exp-420101-1", "000000");
        eventually_shows(&browser, "#error", "Неверный PIN");
        browser.open(&format!("{base}/score/p1"));
        assert!(browser.url().ends_with("/login"), "{}", browser.url());
        assert!(!browser.source().contains("Подписать"));

        // The expert: not the organiser's page; the category's criteria, a live total, signing.
        sign_in(
            &browser,
            &base,
            "exp-420101-1",
            &pin(&region, "exp-420101-1"),
        );
        browser.open(&format!("{base}/roster"));
        assert!(browser.source().contains("Недостаточно прав"));
        browser.open(&format!("{base}/score"));
        eventually_shows(&browser, "#my-rooms", "по приказу о составе комиссии: 101");
        browser.open(&format!("{base}/score/p1"));
        // Once everything is at the hub the page stops reloading itself under the typing.
        eventually_shows(&browser, "#pending", ": 0");
        let points = [
            ("Ч1", "1"),
            ("Ч2", "1"),
            ("Ч3", "1"),
            ("П1", "2"),
            ("П2", "1"),
            ("П3", "1"),
            ("М1", "2"),
            ("М2", "1"),
            ("Д1", "2"),
            ("Р1", "2"),
            ("Р2", "1"),
            ("Р3", "1"),
            ("Р4", "0"),
            ("Р5", "0"),
        ];
        for (criterion, value) in points {
            browser.type_into(&format!("input[name='c_{criterion}']"), value);
        }
        assert_eq!(browser.text("#total"), "16");
        assert_eq!(browser.text("#outcome"), "зачёт");
        browser.screenshot("school-expert");
        browser.click("#score button[type=submit]");
        eventually_shows(&browser, "#message", "16 баллов, зачёт");
        browser.open(&format!("{base}/sync"));
        eventually_shows(&browser, "#sheet-sync", "exp-420101-1");
        browser.screenshot("school-sync");

        // Two browsers on one node: the organiser's page shows the interviewer's «Н».
        let second = Browser::start();
        sign_in(&second, &base, "org-420101", &pin(&region, "org-420101"));
        sign_out(&browser);
        sign_in(
            &browser,
            &base,
            "int-420101-1",
            &pin(&region, "int-420101-1"),
        );
        browser.open(&format!("{base}/log?room=101"));
        browser.click("#log-p2 button[value=absent]");
        eventually_shows(&browser, "#message", "Отметка сохранена");
        eventually_shows(&second, "#p-p2", "Н (не явился)");
        // The «Н» gains its reason (§70: a valid one admits p2 to an additional date).
        second.type_into("#p-p2 .absence input[name=document]", "справка № 7");
        second.click("#p-p2 .absence button[value=yes]");
        eventually_shows(&second, "#message", "Причина отсутствия сохранена");
        eventually_shows(&second, "#p-p2", "уважительная причина: справка № 7");
        // p3 answers with variant 2.
        browser.open(&format!("{base}/log?room=101"));
        browser.type_into("#log-p3 input[name=variant]", "2");
        browser.click("#log-p3 button[value=start]");
        eventually_shows(&browser, "#message", "Начало ответа записано");
        browser.click("#log-p3 button[value=end]");
        eventually_shows(&browser, "#message", "Окончание ответа записано");

        // p3's answer was recorded (attempt 1), and listening back finds it bad.
        take_in(format!("{date}_101_420101_p3_1.wav"), 2);
        // The organiser ends p3's attempt with a signed act (a bad recording, §45); p3 sits
        // again the same day with another variant, and the expert scores that attempt, 2.
        second.open(&format!("{base}/act/p3"));
        eventually_shows(&second, ".act-recording", "_p3_1.wav");
        second.click("#act input[value=bad-recording]");
        second.type_into("#act input[name=number]", "5");
        second.screenshot("school-act");
        second.click("#act button");
        eventually_shows(&second, "#message", "Акт по участнику p3 подписан");
        // The act prints with what the system holds.
        eventually_shows(&second, "#act-form", "Власова Анна");
        assert!(
            second
                .text("#act-form")
                .contains("некачественная аудиозапись ответа"),
            "{}",
            second.text("#act-form")
        );
        eventually_shows(&second, "#act-recording", "_p3_1.wav (0 мин 0");
        second.screenshot("school-act-print");
        // The act page lists the signed act; its print link names the attempt.
        second.open(&format!("{base}/act/p3"));
        eventually_shows(&second, "#acts", "№ 5 (попытка 1)");
        second.click("#acts a");
        eventually_shows(&second, "#act-form", "Власова Анна");
        second.open(&format!("{base}/roster"));
        eventually_shows(&second, "#p-p3", "досрочно завершил, акт 5");
        // p3 is back in the corridor's queue for the retake.
        second.open(&format!("{base}/queue"));
        eventually_shows(&second, "#queue-101 .next", "Власова Анна — повторно");
        // The interviewer starts her retake: attempt 2, and variant 2 again is refused.
        browser.open(&format!("{base}/log?room=101"));
        eventually_shows(&browser, "#log-p3 .attempt", "2 (повторно)");
        browser.type_into("#log-p3 input[name=variant]", "2");
        browser.click("#log-p3 button[value=start]");
        eventually_shows(
            &browser,
            "#error",
            "Вариант 2 участник уже выполнял сегодня",
        );
        browser.type_into("#log-p3 input[name=variant]", "3");
        browser.click("#log-p3 button[value=start]");
        eventually_shows(&browser, "#message", "Начало ответа записано");
        eventually_shows(&browser, "#log-p3 .variant", "3");
        browser.screenshot("school-interviewer-retake");
        eventually_shows(&second, "#queue-101 .answering", "Власова");
        browser.click("#log-p3 button[value=end]");
        eventually_shows(&browser, "#message", "Окончание ответа записано");
        sign_out(&browser);
        sign_in(
            &browser,
            &base,
            "exp-420101-1",
            &pin(&region, "exp-420101-1"),
        );
        browser.open(&format!("{base}/score/p3"));
        eventually_shows(&browser, "#retake", "Попытка 2: повторное прохождение");
        eventually_shows(&browser, "#conditions", "письменная форма (§61)");
        eventually_shows(&browser, "#pending", ": 0");
        for (criterion, value) in points {
            browser.type_into(&format!("input[name='c_{criterion}']"), value);
        }
        browser.screenshot("school-expert-retake");
        browser.click("#score button[type=submit]");
        eventually_shows(&browser, "#message", "Власова Анна — 16 баллов, зачёт");

        // The room's forms print with what the node holds.
        second.open(&format!("{base}/print/log/101"));
        eventually_shows(&second, "#log-form", "Андреева Анна");
        let log_form = second.text("#log-form");
        assert!(log_form.contains("int-420101-1"), "{log_form}");
        // p3's two answers, each on its line with its variant and mark.
        assert_eq!(second.text("#line-p3-1 .variant"), "2");
        assert_eq!(second.text("#line-p3-1 .mark"), "досрочно, акт № 5");
        assert_eq!(second.text("#line-p3-2 .variant"), "3");
        assert_eq!(
            second.text("#line-p3-2 .mark"),
            "повторно, другой вариант КИМ"
        );
        second.screenshot("school-print-log");
        browser.open(&format!("{base}/print/protocol/101"));
        eventually_shows(&browser, "#protocol-form", "exp-420101-1");
        let protocol_form = browser.text("#protocol-form");
        assert!(protocol_form.contains("16"), "{protocol_form}");
        assert!(protocol_form.contains("зачёт"), "{protocol_form}");
        browser.screenshot("school-print-protocol");

        // Once the РЦОИ holds the sheet the day is safe to close; it publishes, the school
        // verifies the РЦОИ's signature, the organiser records familiarisation.
        browser.open(&format!("{base}/sync"));
        eventually_shows(&browser, "#safe", "день можно закрывать");
        eventually_shows(&browser, "#sheet-sync", "получен, подпись проверена");
        second.open(&format!("{base}/results"));
        eventually_shows(&second, "#not-published", "Результатов пока нет");
        let context = giasync_node::app::Context::load(&rcoi_config).unwrap();
        let published = giasync_node::admin::execute(
            &rcoi_config,
            &context,
            &Request::Publish {
                exam: exam.parse().unwrap(),
            },
            giasync_tests::now_ms(),
        )
        .unwrap();
        assert!(published.ok, "{}", published.message);
        // The page reloads itself when the results arrive.
        eventually_shows(&second, "#published", "подпись РЦОИ проверена");
        eventually_shows(&second, "#r-p1", "16 зачёт");
        eventually_shows(&second, "#r-p3", "16 зачёт");
        second.screenshot("school-results");
        eventually_shows(&second, "#to-inform", "ознакомлено 0 из 2, осталось 2");
        second.click("#r-p1 button");
        eventually_shows(&second, "#message", "Ознакомление подписано");
        eventually_shows(&second, "#r-p1", "ознакомлен");
        eventually_shows(&second, "#r-p1", "удостоверил org-420101");
        eventually_shows(&second, "#to-inform", "ознакомлено 1 из 2, осталось 1");
        // The list the participants sign on paper: p1's familiarisation recorded, by whom;
        // p3 still to sign.
        second.open(&format!("{base}/print/familiarisation"));
        eventually_shows(&second, "#familiarisation-form", "Ведомость ознакомления");
        let p1 = second.text("#f-p1");
        assert!(
            p1.contains("зачёт (16)") && p1.contains("org-420101"),
            "{p1}"
        );
        let p3 = second.text("#f-p3");
        assert!(
            p3.contains("зачёт (16)") && !p3.contains("org-420101"),
            "{p3}"
        );
        assert!(
            second.text("#informed").contains("Ознакомлено 1 из 2"),
            "{}",
            second.text("#informed")
        );
        second.screenshot("school-familiarisation-list");
    })
    .await
    .unwrap();

    // The signed sheets (p1's, p3's retake) reached the МОУО hub.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sheets = hub
            .read(protocol)
            .await
            .map(|d| giasync_shared::content::sheets(&d).len())
            .unwrap_or(0);
        if sheets == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sheets never reached the hub"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    school.stop();
    hub.stop();
    rcoi.stop();
}
