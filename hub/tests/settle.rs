//! Settling a conflict, end to end: two experts' conflicting sheets reach the running РЦОИ over
//! QUIC; `giasync-hub settle` refuses, saying that conflicts are settled at the school now; the
//! head of the school, as the commission's chair, settles at the school's node; the record flows
//! up and the РЦОИ's conflicts list no longer holds it. An expert posing as the chair and a
//! second settlement are refused.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use giasync_node::admin;
use giasync_node::app::{Answer, Command as Request};
use giasync_shared::config::NodeConfig;
use giasync_tests::{POINTS_FULL, POINTS_LOW, roster_row};

/// Runs `giasync-hub settle …` against the РЦОИ of `dir` with `pin` in GIASYNC_PIN.
fn settle(dir: &Path, key: &Path, exam: &str, choose: &str, pin: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_giasync-hub"))
        .args(["settle", "--config"])
        .arg(dir.join("42/node.toml"))
        .args([
            "--exam",
            exam,
            "--school",
            "420101",
            "--participant",
            "p-conflict",
            "--choose",
            choose,
            "--reason",
            "повторное прослушивание аудиозаписи",
            "--key",
        ])
        .arg(dir.join(key))
        .env("GIASYNC_PIN", pin)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn conflicts(config: &NodeConfig, exam: &str) -> Vec<giasync_shared::record::RecordHash> {
    let context = giasync_node::app::Context::load(config).unwrap();
    let answer = admin::execute(
        config,
        &context,
        &Request::Conflicts {
            exam: exam.parse().unwrap(),
        },
        giasync_tests::now_ms(),
    )
    .unwrap();
    match answer.answer {
        Some(Answer::Conflicts(c)) => c
            .open
            .iter()
            .flat_map(|c| c.heads.iter().map(|h| h.hash))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commission_settles_at_the_school_and_the_rcoi_refuses_to() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 48_450, 1);
    let exam: &'static str = Box::leak(giasync_tests::todays_exam().into_boxed_str());
    let rules = giasync_shared::rules::Rules::is_2024().unwrap();
    let experts = giasync_tests::experts_of(&region, "420101");
    let school = giasync_tests::node_config(dir.path(), "420101", &[]);
    let score = |expert, points| {
        giasync_tests::score_request(
            dir.path(),
            &rules,
            expert,
            exam,
            "420101",
            "p-conflict",
            points,
        )
    };
    giasync_tests::apply_all(
        &school,
        vec![
            giasync_tests::import(
                exam,
                vec![roster_row("p-conflict", "Конфликтова", "000001")],
            ),
            score(experts[0], POINTS_FULL),
            score(experts[1], POINTS_LOW),
        ],
    );
    let rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    // The РЦОИ's list: the register that gives the participant's category of record.
    giasync_tests::apply_all(
        &rcoi_config,
        vec![giasync_tests::register(
            exam,
            "420101",
            "4201",
            vec![roster_row("p-conflict", "Конфликтова", "000001")],
        )],
    );
    let (nodes, _) = giasync_tests::start_region(dir.path(), &["420101"], |_| {}).await;
    let mut heads = Vec::new();
    for _ in 0..300 {
        let config = rcoi_config.clone();
        heads = tokio::task::spawn_blocking(move || conflicts(&config, exam))
            .await
            .unwrap();
        if heads.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(heads.len(), 2, "the conflict never reached the РЦОИ");
    // The РЦОИ no longer settles: the command says where it happens now.
    let path = dir.path().to_path_buf();
    let operator = region
        .people
        .iter()
        .find(|p| p.id.as_str() == "op-42-1")
        .unwrap();
    let (pin, key) = (operator.pin.clone(), operator.key.clone());
    let chosen = heads[0].to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        settle(&path, Path::new(&key), exam, &chosen[..12], &pin)
    })
    .await
    .unwrap();
    assert!(!ok, "{out}");
    assert!(
        out.contains("settled at the school") && out.contains("giasync-node settle"),
        "{out}"
    );
    // At the school, the commission's chair settles (the path `giasync-node settle` takes: the
    // node's admin socket, the node running and syncing over QUIC).
    let person = |id: &str| region.people.iter().find(|p| p.id.as_str() == id).unwrap();
    let record = |who: &str, capacity| {
        let who = person(who);
        let (key, cert) = giasync_tests::person_key(dir.path(), who);
        let statement = giasync_shared::settlement::commission::CommissionSettlement {
            subject: giasync_shared::record::SheetSubject {
                exam: exam.parse().unwrap(),
                school: "420101".parse().unwrap(),
                participant: giasync_shared::codes::ParticipantId::new("p-conflict").unwrap(),
                attempt: giasync_shared::record::Attempt::new(1).unwrap(),
            },
            room: giasync_shared::codes::RoomCode::new("101").unwrap(),
            chosen: heads[0],
            settles: heads.clone(),
            reason: "запись ответа прослушана комиссией".into(),
            signer: who.id,
            capacity,
            at: giasync_shared::calendar::Timestamp::from_unix_ms(giasync_tests::now_ms()).unwrap(),
        }
        .sign(&key)
        .unwrap();
        Request::CommissionSettle {
            exam: exam.parse().unwrap(),
            statement: statement.as_bytes().to_vec(),
            cert,
        }
    };
    use giasync_shared::settlement::Settler;
    // An expert signing as the chair is refused; nothing is stored.
    let posing = giasync_tests::ask(&school, record(experts[0].id.as_str(), Settler::Chair)).await;
    assert!(
        !posing.ok && posing.message.contains("settlement is refused"),
        "{}",
        posing.message
    );
    let settled = giasync_tests::ask(&school, record("head-420101", Settler::Chair)).await;
    assert!(settled.ok, "{}", settled.message);
    // The record flows up: the РЦОИ, verifying it itself, sees no open conflict.
    let mut open = heads.clone();
    for _ in 0..300 {
        let config = rcoi_config.clone();
        open = tokio::task::spawn_blocking(move || conflicts(&config, exam))
            .await
            .unwrap();
        if open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        open.is_empty(),
        "the settlement never reached the РЦОИ: {open:?}"
    );
    // Settled once: a second settlement finds no open conflict.
    let again = giasync_tests::ask(&school, record("head-420101", Settler::Chair)).await;
    assert!(
        !again.ok && again.message.contains("no open conflict"),
        "{}",
        again.message
    );
    for node in &nodes {
        node.stop();
    }
}
