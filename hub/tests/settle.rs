//! `giasync-hub settle` end to end: two experts' conflicting sheets reach the running РЦОИ over
//! QUIC, the operator settles the conflict from the command line with their key (the sheet
//! chosen by a hash prefix, the PIN from GIASYNC_PIN), the РЦОИ's conflicts list no longer holds
//! it, and a second settlement, a wrong prefix or a wrong PIN are refused.
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
async fn an_operator_settles_a_conflict_from_the_command_line() {
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
    let operator = region
        .people
        .iter()
        .find(|p| p.id.as_str() == "op-42-1")
        .unwrap();
    let pin = operator.pin.clone();
    let key = operator.key.clone();
    let chosen = heads[0].to_string();
    let path = dir.path().to_path_buf();
    let run = move |choose: String, pin: String| {
        let (path, key) = (path.clone(), key.clone());
        tokio::task::spawn_blocking(move || settle(&path, Path::new(&key), exam, &choose, &pin))
    };
    // A prefix shorter than 8 digits, and a wrong PIN: refused, nothing settled.
    let (ok, out) = run(chosen[..6].to_owned(), pin.clone()).await.unwrap();
    assert!(!ok, "{out}");
    let (ok, out) = run(chosen[..12].to_owned(), "wrong wrong wrong wrong".into())
        .await
        .unwrap();
    assert!(!ok, "{out}");
    // The operator's settlement, by a 12-digit prefix.
    let (ok, out) = run(chosen[..12].to_owned(), pin.clone()).await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("settled"), "{out}");
    let config = rcoi_config.clone();
    let open = tokio::task::spawn_blocking(move || conflicts(&config, exam))
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
    // Settled once: a second settlement finds no open conflict.
    let (ok, out) = run(chosen[..12].to_owned(), pin).await.unwrap();
    assert!(!ok && out.contains("no open conflict"), "{out}");
    for node in &nodes {
        node.stop();
    }
}
