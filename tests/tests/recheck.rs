//! Re-check by another school's commission (seed 002 §71–73) over real QUIC: a participant of
//! school 420101 fails their second attempt; the head of school 420102 asks for the recording of
//! their answer; the РЦОИ grants it and refuses a request for a participant who passed; the
//! recording travels РЦОИ → МОУО → the reviewing school, and the other participant's recording
//! never does; the reviewing commission's chair signs the re-check; its result reaches the
//! participant's school in the РЦОИ's new publication; the grant closes and the reviewing school
//! drops its copy.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use giasync_node::app::Command;
use giasync_node::app::recheck::RequestState;
use giasync_shared::blob::BlobHash;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonRole, SchoolCode};
use giasync_shared::record::{Attempt, SheetSubject};
use giasync_shared::rules::Outcome;
use giasync_shared::sync::DocId;
use giasync_tests::webdriver::Browser;
use giasync_tests::{POINTS_FULL, POINTS_LOW, roster_row};

const SCHOOL: &str = "420101";
const REVIEWER: &str = "420102";

/// Polls `check` every 100 ms for up to 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s");
}

fn subject(exam: &str, participant: &str) -> SheetSubject {
    SheetSubject {
        exam: exam.parse().unwrap(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: ParticipantId::new(participant).unwrap(),
        attempt: Attempt::new(2).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_carries_one_recording_to_the_reviewing_school_and_the_recheck_counts() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 49_200, 2);
    let exam: &'static str = Box::leak(giasync_tests::todays_exam().into_boxed_str());
    let date = &exam["is-".len()..];
    let rules = giasync_shared::rules::Rules::is_2024().unwrap();
    let person = |org: &str, role: PersonRole| {
        region
            .people
            .iter()
            .find(|p| p.org == org && p.role == role)
            .unwrap()
    };
    let rows = || {
        vec![
            roster_row("P1", "Иванова", "100001"),
            roster_row("P2", "Петрова", "100002"),
        ]
    };

    // This school year's data: the shipped 2024 file with applications taken until 30 days after
    // today's exam, as a region's file for the year would set its own date; the РЦОИ and the
    // reviewing school load it (`[node] year`).
    let today: giasync_shared::calendar::Date = date.parse().unwrap();
    let year_file = dir.path().join("year.toml");
    std::fs::write(
        &year_file,
        giasync_shared::year::YEAR_2024_TOML.replace(
            "apply_by = \"2024-04-01\"",
            &format!("apply_by = \"{}\"", today.add_days(30).unwrap()),
        ),
    )
    .unwrap();
    for code in ["42", REVIEWER] {
        let path = dir.path().join(code).join("node.toml");
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "[node]\n",
            &format!("[node]\nyear = {:?}\n", year_file.display().to_string()),
            1,
        );
        std::fs::write(&path, text).unwrap();
    }

    // Stores before the nodes start: the school's roster, the РЦОИ's register, the reviewing
    // school's room and commission order (its head; its first expert in room 201).
    let rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    giasync_tests::apply_all(
        &rcoi_config,
        vec![giasync_tests::register(exam, SCHOOL, "4201", rows())],
    );
    let (head, head_key, head_cert) = {
        let p = person(REVIEWER, PersonRole::Head);
        let (key, cert) = giasync_tests::person_key(dir.path(), p);
        (p, key, cert)
    };
    let reviewing_expert = person(REVIEWER, PersonRole::Expert);
    let now = || Timestamp::from_unix_ms(giasync_tests::now_ms()).unwrap();
    let order = giasync_shared::commission::Commission {
        exam: exam.parse().unwrap(),
        school: SchoolCode::new(REVIEWER).unwrap(),
        edition: 1,
        head: head.id,
        at: now(),
        rooms: vec![giasync_shared::commission::RoomCommission {
            room: giasync_shared::codes::RoomCode::new("201").unwrap(),
            interviewers: vec![person(REVIEWER, PersonRole::Interviewer).id],
            experts: vec![reviewing_expert.id],
        }],
    };
    let (nodes, configs) =
        giasync_tests::start_region(dir.path(), &[SCHOOL, REVIEWER], |_| {}).await;
    let [rcoi, _hub, school, reviewer] = &nodes[..] else {
        panic!("four nodes: {}", nodes.len());
    };
    let (school_config, reviewer_config) = (&configs[2], &configs[3]);
    for command in giasync_tests::room_101_with(exam, rows()) {
        let answer = giasync_tests::ask(school_config, command).await;
        assert!(answer.ok, "{}", answer.message);
    }
    for command in [
        Command::Rooms {
            exam: exam.parse().unwrap(),
            rooms: vec![(giasync_shared::codes::RoomCode::new("201").unwrap(), 10)],
        },
        Command::Commission {
            exam: exam.parse().unwrap(),
            statement: order.sign(&head_key).unwrap().as_bytes().to_vec(),
            head_cert: head_cert.clone(),
        },
    ] {
        let answer = giasync_tests::ask(reviewer_config, command).await;
        assert!(answer.ok, "{}", answer.message);
    }

    // A retake date for both: the register names their second attempt (as the РЦОИ's import of
    // an additional date does from the earlier results).
    let register: DocId = format!("rcoi/4201/{SCHOOL}/{exam}").parse().unwrap();
    rcoi.call(move |engine, now_ms| {
        engine.change(now_ms, register, |tx| {
            for p in ["P1", "P2"] {
                let id = ParticipantId::new(p).unwrap();
                giasync_shared::content::put_registered_admission(
                    tx,
                    id,
                    Attempt::new(2).unwrap(),
                    "«незачёт» 2024-02-14",
                )?;
                giasync_shared::content::put_registered_admission_kind(
                    tx,
                    id,
                    &giasync_shared::retake::Admission::Failed {
                        date: "2024-02-14".parse().unwrap(),
                    },
                )?;
            }
            Ok(())
        })
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    eventually("the register at the school", || async {
        school.read(register).await.is_some_and(|d| {
            giasync_shared::content::registered_attempt(&d, "P2") == Attempt::new(2).ok()
        })
    })
    .await;

    // P1 fails the second attempt, P2 passes it; each answer is recorded.
    let expert = giasync_tests::experts_of(&region, SCHOOL)[0];
    for (p, points) in [("P1", POINTS_LOW), ("P2", POINTS_FULL)] {
        let score = giasync_tests::score_request_attempt(
            dir.path(),
            &rules,
            expert,
            (exam, SCHOOL, p, 2),
            points,
            now(),
        );
        let answer = giasync_tests::ask(school_config, score).await;
        assert!(answer.ok, "{}", answer.message);
    }
    let mut hashes = Vec::new();
    for (p, bytes) in [("P1", 300_000), ("P2", 310_000)] {
        let file = dir.path().join(format!("{date}_101_{SCHOOL}_{p}_2.wav"));
        giasync_tests::patterned_wav(&file, bytes);
        let added = giasync_tests::ask(
            school_config,
            Command::AddRecording {
                exam: exam.parse().unwrap(),
                file,
                room: None,
                participant: None,
                attempt: None,
                stream: false,
            },
        )
        .await;
        assert!(added.ok, "{}", added.message);
        hashes.push(giasync_tests::named_hash(&added));
    }
    let (granted, other): (BlobHash, BlobHash) = (hashes[0], hashes[1]);
    eventually("both recordings receipted by the РЦОИ", || async {
        school.read(register).await.is_some_and(|d| {
            let held = giasync_shared::recording::blob_receipts(&d);
            held.contains_key(&granted) && held.contains_key(&other)
        })
    })
    .await;
    let published = giasync_tests::ask(
        &rcoi_config,
        Command::Publish {
            exam: exam.parse().unwrap(),
        },
    )
    .await;
    assert!(published.ok, "{}", published.message);

    // The head of the reviewing school asks for both participants' recordings.
    let request = |p: &str| {
        let statement = giasync_shared::recheck::Request {
            subject: subject(exam, p),
            applied: today,
            reviewer: SchoolCode::new(REVIEWER).unwrap(),
            head: head.id,
            at: now(),
        }
        .sign(&head_key)
        .unwrap();
        Command::RecheckRequest {
            statement: statement.as_bytes().to_vec(),
            cert: head_cert.clone(),
        }
    };
    let mut requests = Vec::new();
    for p in ["P1", "P2"] {
        let filed = giasync_tests::ask(reviewer_config, request(p)).await;
        assert!(filed.ok, "{}", filed.message);
        let Some(giasync_node::app::Answer::RecheckFiled(f)) = filed.answer else {
            panic!("{}", filed.message);
        };
        requests.push(f.record);
    }
    eventually("both requests at the РЦОИ", || async {
        let listed = giasync_tests::ask(&rcoi_config, Command::Rechecks).await;
        matches!(listed.answer, Some(giasync_node::app::Answer::Rechecks { requests: rows }) if rows.len() == 2)
    })
    .await;
    // The РЦОИ grants P1's (a second «незачёт») and refuses P2's (passed).
    for (request, granted_expected) in [(requests[0], true), (requests[1], false)] {
        let answer = giasync_tests::ask(&rcoi_config, Command::RecheckGrant { request }).await;
        assert!(answer.ok, "{}", answer.message);
        let Some(giasync_node::app::Answer::RecheckAnswered(a)) = answer.answer else {
            panic!("{}", answer.message);
        };
        assert_eq!(
            matches!(a.state, RequestState::Granted { .. }),
            granted_expected,
            "{a:?}"
        );
    }

    // The granted recording reaches the reviewing school whole, through the МОУО.
    eventually("the granted recording at the reviewing school", || async {
        reviewer.blob_files().held(&granted).is_ok()
    })
    .await;
    let mut held = Vec::new();
    std::io::Read::read_to_end(
        &mut reviewer.blob_files().held(&granted).unwrap(),
        &mut held,
    )
    .unwrap();
    let mut source = Vec::new();
    std::io::Read::read_to_end(
        &mut school.blob_files().held(&granted).unwrap(),
        &mut source,
    )
    .unwrap();
    assert_eq!(held, source);
    // Nothing else of the first school's: not P2's recording, not its documents.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reviewer.blob_files().held(&other).is_err());
    assert_eq!(reviewer.blob_status().await.unwrap().held, 1);
    let protocol: DocId = format!("protocol/4201/{SCHOOL}/{exam}").parse().unwrap();
    assert!(reviewer.read(protocol).await.is_none());
    assert!(reviewer.read(register).await.is_none());

    // The head signs the commission's re-check on the school's page (full marks, зачёт): the
    // page lists both requests, P1's granted with the recording to play and the original
    // sheet's score, P2's refused with the reason.
    let base = format!("http://{}", reviewer.web.unwrap());
    let (head_id, head_pin) = (head.id.to_string(), head.pin.clone());
    let (grant_id, expert_id) = (requests[0].to_string(), reviewing_expert.id.to_string());
    tokio::task::spawn_blocking(move || {
        let browser = Browser::start();
        browser.open(&format!("{base}/login"));
        browser.click(&format!("select[name=person] option[value='{head_id}']"));
        browser.type_into("input[name=pin]", &head_pin);
        browser.click("#login button");
        browser.wait_for(15, "signed in", |b| !b.url().ends_with("/login"));
        browser.open(&format!("{base}/recheck"));
        let shows = |css: &str, text: &str| {
            browser.wait_for(15, &format!("{text:?} in {css}"), |b| {
                b.try_text(css).is_some_and(|t| t.contains(text))
            });
        };
        shows("#recheck-requests", "запись предоставлена до");
        shows("#recheck-requests", "отказано");
        let grant = format!("#grant-{grant_id}");
        shows(&grant, "незачёт");
        assert!(
            browser.has(&format!("{grant} audio[src^='/recheck/recording/']")),
            "no player for the granted recording"
        );
        browser.screenshot("school-recheck");
        for (criterion, points) in giasync_shared::rules::parse_points(POINTS_FULL).unwrap() {
            browser.type_into(
                &format!("{grant} input[name='c:{criterion}']"),
                &points.to_string(),
            );
        }
        browser.click(&format!("{grant} input[name=expert][value='{expert_id}']"));
        browser.click(&format!("{grant} button"));
        shows(
            "#message",
            "Протокол повторной проверки подписан: 20 баллов",
        );
        browser.screenshot("school-recheck-signed");
    })
    .await
    .unwrap();

    // Its result reaches the participant's school in the РЦОИ's new publication.
    eventually("the re-check's result at the school", || async {
        let results = giasync_tests::ask(
            school_config,
            Command::Results {
                exam: exam.parse().unwrap(),
            },
        )
        .await;
        matches!(results.answer, Some(giasync_node::app::Answer::Results(r)) if r.rows.iter().any(|row| {
            row.participant.as_str() == "P1"
                && (row.attempt, row.total, row.outcome) == (2, 20, Outcome::Pass)
        }))
    })
    .await;
    // The grant is closed: the reviewing school drops its copy.
    eventually("the reviewing school's copy dropped", || async {
        reviewer.blob_files().held(&granted).is_err()
    })
    .await;
    for node in &nodes {
        node.stop();
    }
}
