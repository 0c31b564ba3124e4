//! The exam materials (КИМ) over real QUIC: the РЦОИ seals two packages, every school fetches
//! both through its МОУО hub before the day; the one whose 07:30 has passed (by the РЦОИ's
//! clock) is released and opens by itself at each school, the one whose 07:30 has not stays
//! shut; the reserve code of the wrong exam is refused and counted, the right one opens only
//! its exam's package; the hubs see who opened what and the wrong codes.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use giasync_node::admin;
use giasync_node::app::materials::ExamMaterials;
use giasync_node::app::{Answer, Command};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::ExamId;

/// Its 07:30 passed long ago: released as soon as it is named.
const PAST: &str = "is-2024-02-14";
/// Its 07:30 is decades away: never released during the test.
const FUTURE: &str = "is-2099-02-11";

async fn ask(config: &NodeConfig, command: Command) -> admin::Response {
    giasync_tests::ask(config, command).await
}

async fn materials(config: &NodeConfig) -> Vec<ExamMaterials> {
    match ask(config, Command::Materials).await.answer {
        Some(Answer::Materials { exams }) => exams,
        other => panic!("{other:?}"),
    }
}

async fn of(config: &NodeConfig, exam: &str) -> Option<ExamMaterials> {
    let exam: ExamId = exam.parse().unwrap();
    materials(config).await.into_iter().find(|m| m.exam == exam)
}

/// Waits until `done` holds of the node's view of `exam`.
async fn until(
    config: &NodeConfig,
    exam: &str,
    done: impl Fn(&ExamMaterials) -> bool,
) -> ExamMaterials {
    for _ in 0..300 {
        if let Some(m) = of(config, exam).await
            && done(&m)
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{exam} never got there: {:?}", of(config, exam).await);
}

fn code_kept(dir: &Path, exam: &str) -> String {
    giasync_tests::kept_code(dir, exam)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materials_open_only_when_the_rcoi_releases_them_or_with_their_own_code() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 48_300, 2);
    let (nodes, configs) =
        giasync_tests::start_region(dir.path(), &["420101", "420102"], |_| {}).await;
    let (rcoi_config, hub_config, schools) = (&configs[0], &configs[1], &configs[2..]);
    for school in schools {
        for exam in [PAST, FUTURE] {
            for command in giasync_tests::room_101_with(
                exam,
                vec![giasync_tests::roster_row("P1", "Иванова", "100001")],
            ) {
                let answer = ask(school, command).await;
                assert!(answer.ok, "{}", answer.message);
            }
        }
    }

    // A school cannot name materials: that is the РЦОИ's.
    let kim = dir.path().join("kim-past.txt");
    std::fs::write(&kim, "Вариант 1. Текст для чтения вслух: …").unwrap();
    let refused = ask(
        &schools[0],
        Command::MaterialsAdd {
            exam: PAST.parse().unwrap(),
            file: kim.clone(),
            variants: 4,
        },
    )
    .await;
    assert!(
        !refused.ok && refused.message.contains("not the РЦОИ"),
        "{}",
        refused.message
    );

    for (exam, file, text) in [
        (PAST, "kim-past.txt", "Вариант 1. Текст для чтения вслух: …"),
        (FUTURE, "kim-future.txt", "Вариант 7. Будущий текст."),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let added = ask(
            rcoi_config,
            Command::MaterialsAdd {
                exam: exam.parse().unwrap(),
                file: path,
                variants: 4,
            },
        )
        .await;
        assert!(added.ok, "{}", added.message);
    }

    // The past exam: released by the РЦОИ, opened by itself at each school, the file whole.
    for school in schools {
        let m = until(school, PAST, |m| m.opened.is_some()).await;
        assert_eq!(m.opened_by.as_deref(), Some("release"));
        assert!(m.held && m.released.is_some());
        let folder = school.node.store.with_extension("materials");
        assert_eq!(
            std::fs::read_to_string(folder.join(PAST).join("kim-past.txt")).unwrap(),
            "Вариант 1. Текст для чтения вслух: …"
        );
    }

    // A released package is not replaced: schools have opened it.
    let again = ask(
        rcoi_config,
        Command::MaterialsAdd {
            exam: PAST.parse().unwrap(),
            file: dir.path().join("kim-past.txt"),
            variants: 4,
        },
    )
    .await;
    assert!(
        !again.ok && again.message.contains("are released"),
        "{}",
        again.message
    );

    // The room log gives a participant one of the materials' variants (4 here), no other.
    let log = |variant: u16| Command::Log {
        exam: PAST.parse().unwrap(),
        participant: giasync_shared::codes::ParticipantId::new("P1").unwrap(),
        interviewer: None,
        at: "2024-02-14T03:00:00Z".parse().unwrap(),
        end: false,
        variant: Some(giasync_shared::room::Variant::new(variant).unwrap()),
    };
    let refused = ask(&schools[0], log(5)).await;
    assert!(
        !refused.ok && refused.message.contains("hold variants 1 to 4, not 5"),
        "{}",
        refused.message
    );
    let logged = ask(&schools[0], log(4)).await;
    assert!(logged.ok, "{}", logged.message);

    // The future exam: every school holds its package, and none has the key or opened it.
    for school in schools {
        let m = until(school, FUTURE, |m| m.held).await;
        assert_eq!((m.released, m.opened), (None, None), "{m:?}");
        let folder = school.node.store.with_extension("materials");
        assert!(!folder.join(FUTURE).exists());
    }
    // The РЦОИ does not tell the code before 07:30 of the exam day.
    let early = ask(
        rcoi_config,
        Command::MaterialsCode {
            exam: FUTURE.parse().unwrap(),
        },
    )
    .await;
    assert!(
        !early.ok && early.message.contains("not before"),
        "{}",
        early.message
    );
    // ... and tells the past exam's.
    let told = ask(
        rcoi_config,
        Command::MaterialsCode {
            exam: PAST.parse().unwrap(),
        },
    )
    .await;
    assert!(told.ok, "{}", told.message);
    let past_code = code_kept(dir.path(), PAST);
    assert!(told.message.contains(&past_code), "{}", told.message);

    // The reserve scheme at the first school: the past exam's code does not open the future
    // exam's package, nor does a made-up one; each is counted.
    for (n, typed) in [past_code.as_str(), "0000-0000-0000-0000"]
        .iter()
        .enumerate()
    {
        let wrong = ask(
            &schools[0],
            Command::MaterialsOpen {
                exam: FUTURE.parse().unwrap(),
                code: typed.parse().unwrap(),
            },
        )
        .await;
        assert!(!wrong.ok, "{}", wrong.message);
        assert!(
            wrong.message.contains(&format!("({} wrong codes", n + 1)),
            "{}",
            wrong.message
        );
    }
    let m = of(&schools[0], FUTURE).await.unwrap();
    assert_eq!((m.wrong_codes, m.opened), (2, None));
    // Its own code opens it (as the РЦОИ would read it out on the day).
    let future_code = code_kept(dir.path(), FUTURE);
    let opened = ask(
        &schools[0],
        Command::MaterialsOpen {
            exam: FUTURE.parse().unwrap(),
            code: future_code
                .to_lowercase()
                .replace('-', " ")
                .parse()
                .unwrap(),
        },
    )
    .await;
    assert!(opened.ok, "{}", opened.message);
    let folder = schools[0].node.store.with_extension("materials");
    assert_eq!(
        std::fs::read_to_string(folder.join(FUTURE).join("kim-future.txt")).unwrap(),
        "Вариант 7. Будущий текст."
    );
    let m = of(&schools[0], FUTURE).await.unwrap();
    assert_eq!(m.opened_by.as_deref(), Some("code"));

    // Up the chain: the РЦОИ sees both schools opened the past exam's materials, the first
    // school the future one by its reserve code after two wrong codes, the second not at all.
    let mut seen = false;
    for _ in 0..300 {
        let future = ask(
            rcoi_config,
            Command::MaterialsSchools {
                exam: FUTURE.parse().unwrap(),
            },
        )
        .await;
        let past = ask(
            hub_config,
            Command::MaterialsSchools {
                exam: PAST.parse().unwrap(),
            },
        )
        .await;
        if let (
            Some(Answer::MaterialsSchools { schools: f, .. }),
            Some(Answer::MaterialsSchools { schools: p, .. }),
        ) = (future.answer, past.answer)
            && p.len() == 2
            && p.iter().all(|s| s.opened.is_some())
            && f.iter().any(|s| {
                s.school.as_str() == "420101"
                    && s.wrong_codes == 2
                    && s.opened_by.as_deref() == Some("code")
            })
            && f.iter()
                .any(|s| s.school.as_str() == "420102" && s.opened.is_none())
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !seen {
        for (c, e) in [(rcoi_config, FUTURE), (hub_config, PAST)] {
            let a = ask(
                c,
                Command::MaterialsSchools {
                    exam: e.parse().unwrap(),
                },
            )
            .await;
            eprintln!("{e}: {}", a.message);
        }
    }
    assert!(seen, "the hubs never saw who opened the materials");
    for node in &nodes {
        node.stop();
    }
}
