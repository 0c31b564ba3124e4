//! The public result look-up at the РЦОИ, over HTTP against a region running over QUIC: a
//! participant sees only their own published results; an unknown document and a participant
//! whose results are not published yet get the same answer after the same fixed delay; a client
//! past its burst is refused with 429.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use giasync_node::admin;
use giasync_node::app::Command as Request;
use giasync_node::web::lookup::{Answer, Found, LOOKUP_BURST, LOOKUP_RESPONSE_MS};
use giasync_tests::{POINTS_FULL, POINTS_LOW, roster_row};

fn ask(addr: std::net::SocketAddr, series: &str, number: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let (status, body) = giasync_tests::http_post_json(
        addr,
        "/api/lookup",
        &format!(r#"{{"series":"{series}","number":"{number}"}}"#),
    )
    .unwrap();
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_shows_only_ones_own_published_results_and_holds_its_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 46_500, 2);
    // Today: the РЦОИ accepts sheets signed on their exam's day only.
    let exam: &'static str = Box::leak(giasync_tests::todays_exam().into_boxed_str());
    let rules = giasync_shared::rules::Rules::is_2024().unwrap();
    // School 420101: two participants scored. School 420102: a participant with two conflicting
    // sheets, so its results cannot be published yet.
    let a = giasync_tests::experts_of(&region, "420101");
    let b = giasync_tests::experts_of(&region, "420102");
    let score = |expert, school, participant, points| {
        giasync_tests::score_request(
            dir.path(),
            &rules,
            expert,
            exam,
            school,
            participant,
            points,
        )
    };
    let school_a = giasync_tests::node_config(dir.path(), "420101", &[]);
    giasync_tests::apply_all(
        &school_a,
        vec![
            giasync_tests::import(
                exam,
                vec![
                    roster_row("p-mine", "Иванова", "111111"),
                    roster_row("p-other", "Петрова", "222222"),
                ],
            ),
            score(a[0], "420101", "p-mine", POINTS_FULL),
            score(a[0], "420101", "p-other", POINTS_LOW),
        ],
    );
    let school_b = giasync_tests::node_config(dir.path(), "420102", &[]);
    giasync_tests::apply_all(
        &school_b,
        vec![
            giasync_tests::import(exam, vec![roster_row("p-waiting", "Сидорова", "333333")]),
            score(b[0], "420102", "p-waiting", POINTS_FULL),
            score(b[1], "420102", "p-waiting", POINTS_LOW),
        ],
    );

    let mut rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    // The РЦОИ's list: the register the look-up goes by, and each category of record.
    giasync_tests::apply_all(
        &rcoi_config,
        vec![
            giasync_tests::register(
                exam,
                "420101",
                "4201",
                vec![
                    roster_row("p-mine", "Иванова", "111111"),
                    roster_row("p-other", "Петрова", "222222"),
                ],
            ),
            giasync_tests::register(
                exam,
                "420102",
                "4201",
                vec![roster_row("p-waiting", "Сидорова", "333333")],
            ),
        ],
    );
    rcoi_config.node.web = None;
    rcoi_config.node.lookup = Some("127.0.0.1:0".parse().unwrap());
    let rcoi = giasync_node::service::start(rcoi_config.clone())
        .await
        .unwrap();
    let lookup = rcoi.lookup.unwrap();
    let rcoi_addr = rcoi.listen.unwrap();
    let mut hub_config = giasync_tests::node_config(dir.path(), "4201", &[rcoi_addr]);
    hub_config.node.web = None;
    let hub = giasync_node::service::start(hub_config).await.unwrap();
    let hub_addr = hub.listen.unwrap();
    let _a = giasync_node::service::start(giasync_tests::node_config(
        dir.path(),
        "420101",
        &[hub_addr],
    ))
    .await
    .unwrap();
    let _b = giasync_node::service::start(giasync_tests::node_config(
        dir.path(),
        "420102",
        &[hub_addr],
    ))
    .await
    .unwrap();

    // Wait for the four sheets at the РЦОИ, then publish: 420101 is, 420102 (conflict) is not.
    let context = giasync_node::app::Context::load(&rcoi_config).unwrap();
    let rcoi_config_ = rcoi_config.clone();
    let published = tokio::task::spawn_blocking(move || {
        for _ in 0..200 {
            let status = admin::execute(&rcoi_config_, &context, &Request::Status, 0)
                .unwrap()
                .status
                .unwrap();
            if status
                .schools
                .iter()
                .map(|s| s.sheets_verified)
                .sum::<usize>()
                == 4
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        admin::execute(
            &rcoi_config_,
            &context,
            &Request::Publish {
                exam: exam.parse().unwrap(),
            },
            giasync_tests::now_ms(),
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert!(!published.ok, "420102 has an open conflict");
    assert!(
        published.message.contains("school 420101: 2 results")
            && published
                .message
                .contains("school 420102: 1 open conflicts"),
        "{}",
        published.message
    );

    let answers = tokio::task::spawn_blocking(move || {
        vec![
            ask(lookup, "3204", "111111"),
            // The same document written with a space and lower case is the same document.
            ask(lookup, " 32 04", "111 111"),
            ask(lookup, "3204", "333333"),
            ask(lookup, "3204", "999999"),
            ask(lookup, "3204", "222222"),
            ask(lookup, "3204", "111111"),
        ]
    })
    .await
    .unwrap();
    let floor = Duration::from_millis(LOOKUP_RESPONSE_MS);
    // Only the asking participant's result, none of the other participant's.
    let (status, body, took) = &answers[0];
    assert_eq!(*status, 200, "{body}");
    assert!(*took >= floor);
    let mine: Answer = serde_json::from_str(body).unwrap();
    assert_eq!(
        mine.results,
        vec![Found {
            exam: exam.into(),
            attempt: 1,
            total: 20,
            result: "pass".into(),
        }]
    );
    assert_eq!(answers[1].1, answers[0].1);
    // Not published yet and unknown: the same bytes, both held to the same delay.
    let (waiting, unknown) = (&answers[2], &answers[3]);
    assert_eq!((waiting.0, unknown.0), (200, 200));
    assert_eq!(waiting.1, unknown.1);
    assert_eq!(waiting.1, r#"{"results":[]}"#);
    assert!(waiting.2 >= floor && unknown.2 >= floor);
    // And no later than the floor by more than a loaded machine's jitter: an answer that took
    // longer for some documents than for others would tell them apart. (Written out: every
    // answer about a document leaves 300 ms after its request; 500 ms of slack for a busy CI.)
    assert_eq!(floor, Duration::from_millis(300));
    let ceiling = floor + Duration::from_millis(500);
    for (i, (_, _, took)) in answers[..5].iter().enumerate() {
        assert!(*took < ceiling, "answer {i} took {took:?}");
    }
    assert!(
        waiting.2.abs_diff(unknown.2) < Duration::from_millis(250),
        "not published {:?}, unknown {:?}",
        waiting.2,
        unknown.2
    );
    let other: Answer = serde_json::from_str(&answers[4].1).unwrap();
    assert_eq!(other.results[0].total, 9);
    // The client has used its burst: the next request is refused, and says when to retry.
    assert_eq!(answers.len(), usize::try_from(LOOKUP_BURST).unwrap() + 1);
    assert_eq!(answers[5].0, 429, "{}", answers[5].1);
    assert!(answers[5].2 < floor, "a refusal does not wait");
    let (status, _) = tokio::task::spawn_blocking(move || giasync_tests::http_get(lookup, "/"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "the form is served without spending a token");
    rcoi.stop();
}
