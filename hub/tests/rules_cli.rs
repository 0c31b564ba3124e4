//! `giasync-hub rules check|score` as an operator runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn hub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_giasync-hub"))
        .args(args)
        .output()
        .expect("giasync-hub runs")
}

fn shipped_rules() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/rules/is-2024.toml");
    path.to_str().expect("utf-8 path").to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_prints_every_category_of_the_shipped_rules() {
    let out = hub(&["rules", "check", &shipped_rules()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("rules is-2024"), "{stdout}");
    for line in [
        "standard             max 20  зачёт from 10",
        "deaf                 max  9  зачёт from  5",
        "blind-braille        max 19  зачёт from  9",
        "autism               max  6  зачёт from  3  Ч1(1) М1(2) М2(1) Д1(2)",
        "delayed-development  max 10  зачёт from  5",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    assert_eq!(stdout.lines().count(), 11, "a header and ten categories");
}

#[test]
fn check_refuses_the_seed_typo_naming_file_category_and_criterion() {
    let dir = std::env::temp_dir().join(format!("giasync-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("typo.toml");
    let shipped = std::fs::read_to_string(shipped_rules()).unwrap();
    std::fs::write(
        &file,
        shipped.replace("\"М2\", \"Д1\"]\nmax = 10", "\"М2\", \"Д2\"]\nmax = 10"),
    )
    .unwrap();
    let out = hub(&["rules", "check", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "typo.toml: category delayed-development: criterion \"Д2\" is not defined by the exam"
        ),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn score_prints_total_and_result() {
    let rules = shipped_rules();
    let out = hub(&[
        "rules",
        "score",
        &rules,
        "--category",
        "autism",
        "--points",
        "Ч1=1,М1=1,М2=0,Д1=1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "3 of 6: зачёт (зачёт from 3)");
    let out = hub(&[
        "rules",
        "score",
        &rules,
        "--category",
        "autism",
        "--points",
        "Ч1=0,М1=1,М2=0,Д1=1",
    ]);
    assert_eq!(text(&out.stdout).trim(), "2 of 6: незачёт (зачёт from 3)");
}

#[test]
fn score_refuses_bad_input_with_a_clear_error() {
    let rules = shipped_rules();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--category", "autism", "--points", "Ч1=1,М1=3,М2=0,Д1=1"],
            "М1: 3 points is over its maximum of 2",
        ),
        (
            &["--category", "autism", "--points", "Ч1=1,М1=1,М2=0"],
            "criterion Д1 of category autism has no points",
        ),
        (
            &[
                "--category",
                "autism",
                "--points",
                "Ч1=1,М1=1,М2=0,Д1=1,П1=1",
            ],
            "criterion П1 is not scored for category autism",
        ),
        (
            &["--category", "autism", "--points", "Ч1=-1,М1=1,М2=0,Д1=1"],
            "Ч1: -1 points is negative",
        ),
        (
            &["--category", "blind", "--points", "Ч1=1"],
            "--category: invalid participant category \"blind\"",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["rules", "score", rules.as_str()];
        all.extend_from_slice(args);
        let out = hub(&all);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn help_says_what_each_command_does() {
    for args in [
        &["--help"][..],
        &["rules", "--help"],
        &["rules", "check", "--help"],
        &["rules", "score", "--help"],
    ] {
        let out = hub(args);
        assert!(out.status.success(), "{args:?}");
        assert!(!text(&out.stdout).trim().is_empty());
    }
    assert!(text(&hub(&["rules", "score", "--help"]).stdout).contains("зачёт/незачёт"));
}
