//! Readiness over real QUIC (seed 002 §26): a school's node checks what it can by itself (its
//! link, its clock against its hub's, the materials package held, a test recording file read
//! back), the technician signs the act, and the act reaches the РЦОИ, which shows that school
//! ready, the other as not reported, and overdue only once the deadline has passed. Acts not by
//! the school's technician, or leaving a check out, are refused.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use giasync_node::admin;
use giasync_node::app::readiness::{Finding, SchoolReadiness};
use giasync_node::app::{Answer, Command};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{PersonId, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::readiness::{CheckOutcome, ReadinessAct};

/// Its deadline passed long ago.
const PAST: &str = "is-2024-02-14";
/// Its deadline is decades away.
const FUTURE: &str = "is-2099-02-11";

async fn ask(config: &NodeConfig, command: Command) -> admin::Response {
    giasync_tests::ask(config, command).await
}

async fn standings(config: &NodeConfig, exam: &str) -> Vec<SchoolReadiness> {
    match ask(
        config,
        Command::ReadinessSchools {
            exam: exam.parse().unwrap(),
        },
    )
    .await
    .answer
    {
        Some(Answer::Readiness(v)) => v.schools,
        other => panic!("{other:?}"),
    }
}

/// The act of `findings` for the node's checks and `manual` for the technician's, in the
/// year's order.
fn act(findings: &[Finding], manual: &[(&str, bool, &str)], technician: &str) -> ReadinessAct {
    let rules = giasync_shared::readiness::ReadinessRules::year_2024().unwrap();
    let is = rules
        .of(giasync_shared::exam::ExamKind::Is)
        .unwrap()
        .clone();
    ReadinessAct {
        exam: FUTURE.parse().unwrap(),
        school: SchoolCode::new("420101").unwrap(),
        technician: PersonId::new(technician).unwrap(),
        at: Timestamp::from_unix_ms(giasync_tests::now_ms()).unwrap(),
        checks: is
            .checks
            .iter()
            .map(|c| match c.auto {
                Some(_) => {
                    let f = findings.iter().find(|f| f.id == c.id).unwrap();
                    CheckOutcome {
                        id: f.id.clone(),
                        ok: f.ok,
                        note: f.note.clone(),
                    }
                }
                None => {
                    let (_, ok, note) = manual.iter().find(|(id, ..)| *id == c.id).unwrap();
                    CheckOutcome {
                        id: c.id.clone(),
                        ok: *ok,
                        note: (*note).to_owned(),
                    }
                }
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_act_reaches_the_rcoi_and_a_missing_one_is_overdue_after_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 48_350, 2);
    // The hub's pages open to anyone here, to read them over plain HTTP.
    let (nodes, configs) = giasync_tests::start_region(dir.path(), &["420101", "420102"], |hub| {
        hub.node.oversight = giasync_shared::config::OversightAccess::Open;
    })
    .await;
    let (rcoi_config, schools) = (&configs[0], &configs[2..]);
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
    let kim = dir.path().join("kim.txt");
    std::fs::write(&kim, "КИМ").unwrap();
    let added = ask(
        rcoi_config,
        Command::MaterialsAdd {
            exam: FUTURE.parse().unwrap(),
            file: kim,
            variants: 4,
        },
    )
    .await;
    assert!(added.ok, "{}", added.message);

    // What the first school's node finds by itself, once the package has reached it.
    let recording = giasync_tests::spoken_answer(dir.path(), "test-recording.wav", 3);
    let mut findings = Vec::new();
    for _ in 0..300 {
        let found = ask(
            &schools[0],
            Command::ReadinessFindings {
                exam: FUTURE.parse().unwrap(),
                test_recording: Some(recording.clone()),
            },
        )
        .await;
        if let Some(Answer::ReadinessFindings { findings: f, .. }) = found.answer {
            findings = f;
            if findings.iter().all(|f| f.ok) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["link", "clock", "materials", "recording"]);
    assert!(findings.iter().all(|f| f.ok), "{findings:?}");
    // `giasync-node doctor --exam E --recording FILE` prints the same findings, a line each.
    let node_toml = dir.path().join("420101").join("node.toml");
    let readiness = giasync_node::doctor::ReadinessCheck {
        exam: FUTURE.parse().unwrap(),
        recording: Some(recording.clone()),
    };
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        giasync_node::doctor::check_readiness(&node_toml, &readiness)
            .iter()
            .map(giasync_node::doctor::Check::line)
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("readiness is-2099-02-11: materials: пакет получен")),
        "{lines:?}"
    );
    // A file that is not a recording fails its check, naming why.
    let not_audio = dir.path().join("not-audio.wav");
    std::fs::write(&not_audio, "this is text").unwrap();
    let found = ask(
        &schools[0],
        Command::ReadinessFindings {
            exam: FUTURE.parse().unwrap(),
            test_recording: Some(not_audio),
        },
    )
    .await;
    let Some(Answer::ReadinessFindings { findings: bad, .. }) = found.answer else {
        panic!("{}", found.message);
    };
    assert!(bad.iter().any(|f| f.id == "recording" && !f.ok), "{bad:?}");

    let person = |id: &str| {
        region
            .people
            .iter()
            .find(|p| p.id.as_str() == id)
            .unwrap()
            .clone()
    };
    let hand_in = |act: ReadinessAct, who: &str| {
        let (key, cert) = giasync_tests::person_key(dir.path(), &person(who));
        Command::Readiness {
            exam: FUTURE.parse().unwrap(),
            statement: act.sign(&key).unwrap().as_bytes().to_vec(),
            technician_cert: cert,
        }
    };
    let no_paper = act(
        &findings,
        &[("internet", true, ""), ("printer", false, "нет бумаги")],
        "tech-420101",
    );
    // Refused: an organiser signing as if a technician; the other school's technician; an act
    // that leaves a check out.
    let mut by_organiser = no_paper.clone();
    by_organiser.technician = PersonId::new("org-420101").unwrap();
    let refused = ask(&schools[0], hand_in(by_organiser, "org-420101")).await;
    assert!(
        !refused.ok && refused.message.contains("technician"),
        "{}",
        refused.message
    );
    // Dated an hour ahead: it would stand above every act after it.
    let mut ahead = no_paper.clone();
    ahead.at = ahead.at.plus_ms(3_600_000);
    let refused = ask(&schools[0], hand_in(ahead, "tech-420101")).await;
    assert!(
        !refused.ok && refused.message.contains("more than 10 minutes"),
        "{}",
        refused.message
    );
    let mut other = no_paper.clone();
    other.technician = PersonId::new("tech-420102").unwrap();
    let refused = ask(&schools[0], hand_in(other, "tech-420102")).await;
    assert!(!refused.ok, "{}", refused.message);
    let mut partial = no_paper.clone();
    partial.checks.retain(|c| c.id != "printer");
    let refused = ask(&schools[0], hand_in(partial, "tech-420101")).await;
    assert!(
        !refused.ok && refused.message.contains("printer"),
        "{}",
        refused.message
    );
    // The technician's act: not ready, no paper.
    let signed = ask(&schools[0], hand_in(no_paper, "tech-420101")).await;
    assert!(
        signed.ok && signed.message.contains("NOT ready (printer)"),
        "{}",
        signed.message
    );
    // Paper bought: the later act decides.
    let mut ready = act(
        &findings,
        &[("internet", true, ""), ("printer", true, "")],
        "tech-420101",
    );
    ready.at = ready.at.plus_ms(1);
    let signed = ask(&schools[0], hand_in(ready, "tech-420101")).await;
    assert!(signed.ok, "{}", signed.message);

    // At the РЦОИ: the first school ready, the second not reported, nobody overdue before 2099.
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = standings(rcoi_config, FUTURE).await;
        if seen
            .iter()
            .any(|s| s.school.as_str() == "420101" && s.standing == "ready")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let of = |code: &str| seen.iter().find(|s| s.school.as_str() == code).unwrap();
    assert_eq!(
        (of("420101").standing.as_str(), of("420101").overdue),
        ("ready", false)
    );
    assert_eq!(
        (of("420102").standing.as_str(), of("420102").overdue),
        ("not-reported", false)
    );
    // The past exam: nobody reported, and its deadline has passed.
    let past = standings(rcoi_config, PAST).await;
    assert_eq!(past.len(), 2, "{past:?}");
    assert!(
        past.iter()
            .all(|s| s.standing == "not-reported" && s.overdue),
        "{past:?}"
    );
    // The МОУО's page of the exam: the first school ready, the second with no act, and which
    // school opened the materials.
    let web = nodes[1].web.unwrap();
    let (status, page) = tokio::task::spawn_blocking(move || {
        giasync_tests::http_get(web, &format!("/readiness?exam={FUTURE}"))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status, 200, "{page}");
    let row = |code: &str| {
        let at = page.find(&format!("id=\"school-{code}\"")).unwrap();
        page[at..].split("</tr>").next().unwrap().to_owned()
    };
    assert!(row("420101").contains(">готова<"), "{}", row("420101"));
    assert!(
        row("420102").contains("акт не представлен"),
        "{}",
        row("420102")
    );
    assert!(
        page.contains("Готовы: 1 · не готовы: 0 · не представили акт: 1"),
        "{page}"
    );
    for node in &nodes {
        node.stop();
    }
}
