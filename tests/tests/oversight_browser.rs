//! A МОУО hub's oversight page, checked in headless Chromium: a school's data for a past exam —
//! two experts' conflicting sheets for one participant, a participant present but never scored —
//! reaches the hub over QUIC; the page, loaded with every host name resolving to nothing, shows
//! the conflict and the overdue scoring deadline. Screenshot: `target/screenshots/`.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use giasync_certs::demo::{Region, RegionPerson};
use giasync_certs::keyfile::{self, Pin};
use giasync_node::admin::{self, Context, ImportRow, Request};
use giasync_node::run;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::participant::Category;
use giasync_shared::record::{Attempt, SheetDraft, SheetSubject, SignedSheet};
use giasync_shared::rules::parse_points;

/// A past exam day: its scoring deadline (5 days) is long over.
const EXAM: &str = "is-2024-02-14";

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn row(id: &str, surname: &str, number: &str) -> ImportRow {
    ImportRow {
        id: id.into(),
        surname: surname.into(),
        name: "Анна".into(),
        patronymic: String::new(),
        series: "3204".into(),
        number: number.into(),
        class: "9А".into(),
        category: Category::Standard.id().into(),
        room: Some("101".into()),
    }
}

fn sign(dir: &Path, context: &Context, expert: &RegionPerson, points: &str) -> Request {
    let key = keyfile::open(
        &std::fs::read(dir.join(&expert.key)).unwrap(),
        &Pin::new(expert.pin.clone()).unwrap(),
    )
    .unwrap();
    let cert = giasync_certs::show::certs_from_pem(&std::fs::read(dir.join(&expert.cert)).unwrap())
        .unwrap()
        .remove(0);
    let draft = SheetDraft {
        subject: SheetSubject {
            exam: EXAM.parse().unwrap(),
            school: SchoolCode::new("420101").unwrap(),
            participant: ParticipantId::new("p-conflict").unwrap(),
            attempt: Attempt::new(1).unwrap(),
        },
        room: RoomCode::new("101").unwrap(),
        category: Category::Standard,
        points: parse_points(points).unwrap(),
        expert: PersonId::new(expert.id.as_str()).unwrap(),
        signed_at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        correction: None,
    };
    let sheet = SignedSheet::sign(draft, &context.rules, &key).unwrap();
    Request::Score {
        exam: EXAM.into(),
        sheet: sheet.as_bytes().to_vec(),
        expert: expert.id.to_string(),
        expert_cert: cert,
    }
}

/// The school's exam day, written to its store before it starts.
fn school_day(dir: &Path, region: &Region, config: &NodeConfig) {
    let context = Context::load(config).unwrap();
    let mut requests = vec![
        Request::RosterImport {
            exam: EXAM.into(),
            rows: vec![
                row("p-conflict", "Конфликтова", "000001"),
                row("p-waiting", "Ожидаева", "000002"),
                row("p-absent", "Неявкина", "000003"),
            ],
        },
        Request::Mark {
            exam: EXAM.into(),
            participant: "p-absent".into(),
            status: "absent".into(),
            act: String::new(),
        },
        Request::Mark {
            exam: EXAM.into(),
            participant: "p-waiting".into(),
            status: "present".into(),
            act: String::new(),
        },
    ];
    let experts: Vec<&RegionPerson> = region
        .people
        .iter()
        .filter(|p| p.role == PersonRole::Expert && p.org == "420101")
        .collect();
    assert!(experts.len() >= 2, "the demo school has two experts");
    requests.push(sign(
        dir,
        &context,
        experts[0],
        "Ч1=1,Ч2=1,Ч3=1,П1=2,П2=1,П3=1,М1=2,М2=1,Д1=2,Р1=2,Р2=2,Р3=2,Р4=1,Р5=1",
    ));
    requests.push(sign(
        dir,
        &context,
        experts[1],
        "Ч1=0,Ч2=0,Ч3=0,П1=1,П2=1,П3=1,М1=1,М2=1,Д1=1,Р1=1,Р2=1,Р3=1,Р4=0,Р5=0",
    ));
    for request in requests {
        let response = admin::execute(config, &context, &request, now_ms()).unwrap();
        assert!(response.ok, "{request:?}: {}", response.message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oversight_page_shows_a_conflict_and_an_overdue_deadline_with_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 46_400, 1);
    let school_config = giasync_tests::node_config(dir.path(), "420101", &[]);
    school_day(dir.path(), &region, &school_config);

    let mut hub_config = giasync_tests::node_config(dir.path(), "4201", &[]);
    hub_config.node.web = Some("127.0.0.1:0".parse().unwrap());
    let hub = run::start(hub_config).await.unwrap();
    let web = hub.web.unwrap();
    let school = run::start(giasync_tests::node_config(
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
    assert_eq!(scoring["due"], "2024-02-19");
    let rooms = &view["schools"][0]["rooms"][0]["progress"];
    assert_eq!(
        (&rooms["registered"], &rooms["absent"], &rooms["present"]),
        (&3.into(), &1.into(), &2.into())
    );

    // The page in Chromium, with every host name but loopback resolving to nothing.
    let url = format!("http://{web}/");
    let shot = giasync_tests::screenshot_dir().join("oversight-hub.png");
    let dom = tokio::task::spawn_blocking(move || {
        let dom = giasync_tests::chromium(&["--dump-dom", &url]);
        giasync_tests::chromium(&[&format!("--screenshot={}", shot.display()), &url]);
        assert!(shot.exists(), "no screenshot at {}", shot.display());
        String::from_utf8(dom.stdout).unwrap()
    })
    .await
    .unwrap();
    assert!(dom.contains("Мониторинг ГИА — МОУО 4201"), "{dom}");
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
    assert!(overdue_row.contains("2024-02-19"));
    // Nothing outside the page: no scripts, no stylesheets or images from elsewhere.
    for external in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(!dom.contains(external), "the page refers to {external}");
    }
    school.stop();
    hub.stop();
}
