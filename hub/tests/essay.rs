//! Итоговое сочинение (изложение) through the РЦОИ's tools to a school on the direct route
//! (seed 003 §2.5): `giasync-hub route` puts the school on it, `giasync-hub essay import` takes
//! the processing's file in (a file with a bad row takes nothing in), `giasync-hub publish`
//! signs the school's results, `giasync-hub bundle write --school` puts them on removable media,
//! and the school's running node, with no link at all, takes the bundle in and verifies them.
//! The РЦОИ's oversight judges the school by the direct route's chain.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;

use giasync_node::app::{Answer, Command as Request};
use giasync_shared::oversight::DeadlineState;
use giasync_shared::rules::Outcome;

const HEADER: &str =
    "Код МОУО;Код ОО;Фамилия;Имя;Отчество;Серия;Номер;Форма;Т1;Т2;К1;К2;К3;К4;К5;Результат";

/// Runs `giasync-hub ARGS --config 42/node.toml` (the РЦОИ, not running: on its store).
fn hub(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_giasync-hub"))
        .args(args)
        .args(["--config", &dir.join("42/node.toml").display().to_string()])
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

/// A results file as processing systems write it: UTF-8 with a BOM, `;`-separated.
fn results_file(dir: &Path, name: &str, rows: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("\u{feff}{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn essay_results_reach_a_school_on_the_direct_route_on_removable_media() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 49_300, 2);
    let today = &giasync_tests::todays_exam()["is-".len()..];
    let exam = format!("essay-{today}");
    let passed = "4201;420101;Иванова;Анна;Сергеевна;3204;111111;сочинение;зачёт;зачёт;зачёт;зачёт;незачёт;незачёт;зачёт;зачёт";
    let failed = "4201;420101;Петров;Пётр;;3204;222222;изложение;зачёт;зачёт;зачёт;незачёт;зачёт;зачёт;зачёт;незачёт";

    // A school the РЦОИ holds nothing of cannot be put on a route.
    let route = ["route", "--school", "420101", "--route", "direct"];
    let (ok, out) = hub(dir.path(), &route);
    assert!(!ok && out.contains("not known to the РЦОИ"), "{out}");
    // A row whose marks do not give its result: nothing is taken in, the row is named.
    let wrong = "4201;420101;Сидоров;Иван;;3204;333333;сочинение;зачёт;зачёт;незачёт;зачёт;зачёт;зачёт;зачёт;зачёт";
    let file = results_file(dir.path(), "bad.csv", &[passed, wrong]);
    let (ok, out) = hub(dir.path(), &["essay", "import", &file, "--exam", &exam]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("row 3") && out.contains("nothing was taken in"),
        "{out}"
    );
    let (ok, out) = hub(dir.path(), &["publish", "--exam", &exam]);
    assert!(!ok, "published with nothing taken in: {out}");
    // The good file.
    let file = results_file(dir.path(), "results.csv", &[passed, failed]);
    let (ok, out) = hub(dir.path(), &["essay", "import", &file, "--exam", &exam]);
    assert!(ok && out.contains("2 results of 1 schools"), "{out}");
    let (ok, out) = hub(dir.path(), &route);
    assert!(ok && out.contains("straight from the РЦОИ"), "{out}");
    let (ok, out) = hub(dir.path(), &["publish", "--exam", &exam]);
    assert!(ok && out.contains("school 420101: 2 results"), "{out}");
    let media = dir.path().join("flash-420101");
    let (ok, out) = hub(
        dir.path(),
        &[
            "bundle",
            "write",
            "--school",
            "420101",
            "--to",
            &media.display().to_string(),
        ],
    );
    assert!(ok, "{out}");

    // The РЦОИ judges the school by the direct route: results due at the school within a
    // working day of processing, no МОУО step; writing the bundle is the handover.
    let rcoi_config = giasync_tests::node_config(dir.path(), "42", &[]);
    let oversight = tokio::task::spawn_blocking(move || {
        let context = giasync_node::app::Context::load(&rcoi_config).unwrap();
        giasync_node::admin::execute(
            &rcoi_config,
            &context,
            &Request::Oversight,
            giasync_tests::now_ms(),
        )
        .unwrap()
        .oversight
        .unwrap()
    })
    .await
    .unwrap();
    let steps: Vec<(String, DeadlineState)> = oversight
        .deadlines
        .iter()
        .filter(|d| d.exam.to_string() == exam && d.school == "420101")
        .map(|d| (d.step.clone(), d.state))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("results_to_school".to_owned(), DeadlineState::Done),
            ("familiarisation".to_owned(), DeadlineState::Pending),
        ]
    );

    // Another school is handed the wrong flash drive: it refuses the bundle before anything of
    // it reaches its store.
    let other_config = giasync_tests::node_config(dir.path(), "420102", &[]);
    let other = giasync_node::service::start(other_config.clone())
        .await
        .unwrap();
    let wrong = giasync_tests::ask(
        &other_config,
        Request::BundleRead {
            from: media.clone(),
        },
    )
    .await;
    assert!(
        !wrong.ok && wrong.message.contains("for another school"),
        "{}",
        wrong.message
    );
    other.stop();

    // The school, with no link at all, takes the bundle in and verifies the РЦОИ's signature.
    let school_config = giasync_tests::node_config(dir.path(), "420101", &[]);
    let school = giasync_node::service::start(school_config.clone())
        .await
        .unwrap();
    let read = giasync_tests::ask(&school_config, Request::BundleRead { from: media }).await;
    assert!(read.ok, "{}", read.message);
    let results = giasync_tests::ask(
        &school_config,
        Request::Results {
            exam: exam.parse().unwrap(),
        },
    )
    .await;
    let Some(Answer::Results(results)) = results.answer else {
        panic!("{}", results.message);
    };
    let outcomes: Vec<(u16, Outcome, usize)> = results
        .rows
        .iter()
        .map(|r| (r.total, r.outcome, r.marks.len()))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes.contains(&(5, Outcome::Pass, 7)), "{outcomes:?}");
    assert!(outcomes.contains(&(6, Outcome::Fail, 7)), "{outcomes:?}");
    school.stop();
}
