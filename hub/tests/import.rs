//! `giasync-hub import` at the РЦОИ: a region-wide list goes into each school's roster; a list
//! with a bad row imports nothing and names the row, whether the row is malformed or names a
//! school the РЦОИ cannot place.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;

const HEADER: &str = "Код МОУО;Код ОО;Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория;Аудитория";

/// Runs `giasync-hub ARGS --config 42/node.toml` (the РЦОИ; not running, so on its store).
fn hub(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_giasync-hub"))
        .args(args)
        .args(["--config", &dir.join("42/node.toml").display().to_string()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import(dir: &Path, name: &str, lines: &[&str]) -> (bool, String, String) {
    let file = dir.join(name);
    std::fs::write(&file, format!("{HEADER}\n{}\n", lines.join("\n"))).unwrap();
    let file = file.display().to_string();
    hub(dir, &["import", &file, "--exam", "is-2024-02-14"])
}

fn participants(dir: &Path) -> String {
    let (ok, out, err) = hub(dir, &["status"]);
    assert!(ok, "{err}");
    out
}

#[test]
fn a_region_list_fills_each_schools_roster_and_a_bad_row_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 46_600, 2);
    let good_a = "4201;420101;Иванова;Анна;Петровна;3204;111111;9А;standard;101";
    let good_b = "4201;420102;Петров;Пётр;;3204;222222;9Б;autism;";

    // A malformed row (unknown category): refused before anything reaches the store.
    let (ok, _, err) = import(
        dir.path(),
        "bad-category.csv",
        &[
            good_a,
            "4201;420102;Сидоров;Иван;;3204;333333;9В;blind;",
            good_b,
        ],
    );
    assert!(!ok);
    assert!(err.contains("row 3: unknown category \"blind\""), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    // A school the РЦОИ cannot place (no МОУО given, never seen): refused, all rows.
    let (ok, _, err) = import(
        dir.path(),
        "unknown-school.csv",
        &[
            good_a,
            good_b,
            ";429999;Кузнецова;Ольга;;3204;444444;9А;standard;",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("row 4: school 429999 is not known to the РЦОИ yet"),
        "{err}"
    );
    assert!(
        !participants(dir.path()).contains("school 4201"),
        "nothing was imported"
    );

    // The good list: each school's roster gets its participants, and the register (the РЦОИ's
    // document for the school) their category of record: two documents a school.
    let (ok, out, err) = import(dir.path(), "good.csv", &[good_a, good_b]);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 2 participants into the rosters of 2 schools"),
        "{out}"
    );
    let status = participants(dir.path());
    assert!(
        status.contains("school 420101: 2 documents, 1 participants"),
        "{status}"
    );
    assert!(
        status.contains("school 420102: 2 documents, 1 participants"),
        "{status}"
    );

    // Now the РЦОИ knows 420101's МОУО, so a later list may leave it out; a wrong one is refused.
    let (ok, _, err) = import(
        dir.path(),
        "later.csv",
        &[
            ";420101;Смирнова;Мария;;3204;555555;9А;standard;",
            "4202;420102;Орлов;Олег;;3204;666666;9Б;standard;",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("row 3: school 420102 belongs to МОУО 4201, the list says 4202"),
        "{err}"
    );
}

/// `giasync-hub approve-category`: an operator of the РЦОИ signs the approval with their key and
/// names the papers; without the key nothing is approved, and with another person's key the
/// approval is refused.
#[test]
fn an_operator_approves_a_category_with_their_key_and_nobody_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let region = giasync_tests::demo_region_listed(dir.path(), 46_640, 1);
    let (ok, _, err) = import(
        dir.path(),
        "list.csv",
        &["4201;420101;Иванова;Анна;Петровна;3204;111111;9А;standard;101"],
    );
    assert!(ok, "{err}");
    let participant = giasync_shared::import::participant_id(
        &giasync_shared::participant::IdentityDocument::new("3204", "111111").unwrap(),
    )
    .to_string();
    let person = |role: giasync_shared::codes::PersonRole| {
        let p = region.people.iter().find(|p| p.role == role).unwrap();
        (p.key.clone(), p.pin.clone())
    };
    let approve = |(key, pin): (String, String)| {
        let out = Command::new(env!("CARGO_BIN_EXE_giasync-hub"))
            .args(["approve-category", "--exam", "is-2024-02-14"])
            .args(["--school", "420101", "--participant", &participant])
            .args(["--category", "autism", "--basis", "заключение ПМПК № 12"])
            .args(["--key", &dir.path().join(&key).display().to_string()])
            .args([
                "--config",
                &dir.path().join("42/node.toml").display().to_string(),
            ])
            .env("GIASYNC_PIN", &pin)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Without a key the command does not run at all.
    let (ok, _, err) = hub(
        dir.path(),
        &[
            "approve-category",
            "--school",
            "420101",
            "--participant",
            &participant,
            "--category",
            "autism",
            "--basis",
            "заключение ПМПК № 12",
        ],
    );
    assert!(!ok);
    assert!(err.contains("--key"), "{err}");
    // An expert's key is not an operator's.
    let (ok, _, err) = approve(person(giasync_shared::codes::PersonRole::Expert));
    assert!(!ok);
    assert!(err.contains("not of a оператор РЦОИ"), "{err}");
    let (ok, out, err) = approve(person(giasync_shared::codes::PersonRole::Operator));
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "{participant}: category of record autism (was standard), approved by op-42-1 on «заключение ПМПК № 12»"
        )),
        "{out}"
    );
}

/// A list the regional systems exported in Windows-1251, codes printed with dashes, imports as
/// the UTF-8 one does; a file that is not text is refused naming its row, and nothing imports.
#[test]
fn a_windows_1251_list_imports_and_a_file_that_is_not_text_names_its_row() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 46_660, 2);
    let list = format!(
        "{HEADER}\n42-01;42-01-01;Иванова;Анна;Петровна;3204;111111;9А;standard;101\n\
         42-01;42-01-02;Ёлкин;Пётр;;3204;222222;9Б;autism;\n"
    );
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&list);
    assert!(!unmappable);
    let bad = dir.path().join("binary.csv");
    let mut broken = bytes.to_vec();
    broken.extend_from_slice(b"\x00\x01\x02\n");
    std::fs::write(&bad, &broken).unwrap();
    let (ok, _, err) = hub(
        dir.path(),
        &[
            "import",
            &bad.display().to_string(),
            "--exam",
            "is-2024-02-14",
        ],
    );
    assert!(!ok);
    assert!(err.contains("row 4: byte 0x00 is not text"), "{err}");
    assert!(
        !participants(dir.path()).contains("participants"),
        "nothing imported"
    );
    let file = dir.path().join("cp1251.csv");
    std::fs::write(&file, &bytes).unwrap();
    let (ok, out, err) = hub(
        dir.path(),
        &[
            "import",
            &file.display().to_string(),
            "--exam",
            "is-2024-02-14",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 2 participants into the rosters of 2 schools"),
        "{out}"
    );
}

/// A list with one bad row in the middle leaves the РЦОИ's store byte-for-byte as it was,
/// whether the row is malformed (refused while reading) or names a school the РЦОИ cannot place
/// (refused by the import on the store); and so does reading the store's status.
#[test]
fn a_refused_list_leaves_the_store_byte_for_byte_as_it_was() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 49_100, 1);
    let good = |n: usize| {
        format!(
            "4201;420101;Иванова;Анна;;3204;{:06};9А;standard;",
            100_000 + n
        )
    };
    let lines: Vec<String> = (0..20).map(good).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (ok, _, err) = import(dir.path(), "good.csv", &refs);
    assert!(ok, "{err}");
    let store = dir.path().join("42/store.redb");
    let hash = || sha2::Sha256::digest(std::fs::read(&store).unwrap());
    let before = hash();
    let (ok, _, err) = hub(dir.path(), &["status"]);
    assert!(ok, "{err}");
    assert_eq!(hash(), before, "reading the status changed the store");
    for (bad, named) in [
        (
            "4201;420101;Сидоров;Иван;;3204;999999;9В;blind;",
            "row 12: unknown category",
        ),
        (";777777;Сидоров;Иван;;3204;999998;9В;standard;", "row 12"),
    ] {
        let mut with_bad = refs.clone();
        with_bad[10] = bad;
        let (ok, _, err) = import(dir.path(), "bad.csv", &with_bad);
        assert!(!ok);
        assert!(err.contains(named), "{err}");
        assert_eq!(hash(), before, "a refused list changed the store: {err}");
    }
}

/// On a terminal the import shows its phases (the list read, the rows imported); to a pipe,
/// as in scripts and logs, it prints only its results.
#[test]
fn an_import_shows_its_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    giasync_tests::demo_region(dir.path(), 46_620, 1);
    let file = dir.path().join("list.csv");
    std::fs::write(
        &file,
        format!("{HEADER}\n4201;420101;Иванова;Анна;Петровна;3204;111111;9А;standard;101\n"),
    )
    .unwrap();
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let command = format!(
        "{} import {} --exam is-2024-02-14 --config {}",
        quote(Path::new(env!("CARGO_BIN_EXE_giasync-hub"))),
        quote(&file),
        quote(&dir.path().join("42/node.toml")),
    );
    // `script` runs the command on a pseudo-terminal and copies what it drew.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    // The phase's own words (the result printed after says "imported 1 participants").
    assert!(drawn.contains("read 1 rows of"), "{drawn}");
    // Through a pipe: the results only.
    let (ok, stdout, stderr) = import(
        dir.path(),
        "again.csv",
        &["4201;420101;Петров;Пётр;;3204;222222;9Б;standard;"],
    );
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("read 1 rows") && !stdout.contains("read 1 rows"),
        "{stdout}{stderr}"
    );
}
