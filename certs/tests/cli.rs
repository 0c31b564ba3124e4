//! `giasync-certs` as an operator runs it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::{Command, Output};

fn certs(args: &[&str], pin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_giasync-certs"));
    command.args(args).env_remove("GIASYNC_PIN");
    if let Some(pin) = pin {
        command.env("GIASYNC_PIN", pin);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn init_issue_show_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = certs(
        &[
            "init",
            "--dir",
            s(&pki),
            "--region",
            "42",
            "--name",
            "ГКУ КЦМКО",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = certs(
        &["init", "--dir", s(&pki), "--region", "42", "--name", "x"],
        None,
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already holds a CA; refusing to overwrite it"),
        "{}",
        text(&again.stderr)
    );

    let node_dir = dir.path().join("4201");
    let out = certs(
        &[
            "node",
            "--dir",
            s(&pki),
            "--role",
            "municipality",
            "--code",
            "4201",
            "--host",
            "moyo.example",
            "--out",
            s(&node_dir),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&certs(&["show", s(&node_dir.join("node.crt"))], None).stdout);
    assert!(
        shown.contains("identity   node municipality 4201") && shown.contains("serial     2"),
        "{shown}"
    );
    let twice = certs(
        &[
            "node",
            "--dir",
            s(&pki),
            "--role",
            "municipality",
            "--code",
            "4201",
            "--host",
            "h",
            "--out",
            s(&node_dir),
        ],
        None,
    );
    assert!(text(&twice.stderr).contains("already exists; refusing to overwrite it"));
    let school_without_parent = certs(
        &[
            "node",
            "--dir",
            s(&pki),
            "--role",
            "school",
            "--code",
            "420101",
            "--host",
            "h",
            "--out",
            s(&dir.path().join("s")),
        ],
        None,
    );
    assert!(
        text(&school_without_parent.stderr).contains("a school must name its municipality"),
        "{}",
        text(&school_without_parent.stderr)
    );

    let people = dir.path().join("people");
    let short = certs(
        &[
            "person",
            "--dir",
            s(&pki),
            "--role",
            "expert",
            "--id",
            "exp-1",
            "--name",
            "Иванова А. П.",
            "--org",
            "420101",
            "--out",
            s(&people),
        ],
        Some("123"),
    );
    assert!(
        text(&short.stderr).contains("a PIN has 6 to 128 characters"),
        "{}",
        text(&short.stderr)
    );
    let expert = |secret: &str| {
        certs(
            &[
                "person",
                "--dir",
                s(&pki),
                "--role",
                "expert",
                "--id",
                "exp-1",
                "--name",
                "Иванова Анна Петровна",
                "--org",
                "420101",
                "--out",
                s(&people),
            ],
            Some(secret),
        )
    };
    // An expert signs what counts: a 6-digit PIN is refused, a passphrase is not.
    let pin_only = expert("314159");
    assert!(
        text(&pin_only.stderr).contains("passphrase of at least 12 characters"),
        "{}",
        text(&pin_only.stderr)
    );
    let out = expert("тёплый-март-2024");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::metadata(people.join("exp-1.key")).unwrap().len(),
        96
    );
    let shown = text(&certs(&["show", s(&people.join("exp-1.crt"))], None).stdout);
    assert!(
        shown.contains("Иванова Анна Петровна")
            && shown.contains("person expert exp-1 of school 420101"),
        "{shown}"
    );

    let unknown = certs(
        &[
            "revoke",
            "--dir",
            s(&pki),
            "--serial",
            "77",
            "--reason",
            "lost",
        ],
        None,
    );
    assert!(text(&unknown.stderr).contains("no certificate with serial 77"));
    let out = certs(
        &[
            "revoke",
            "--dir",
            s(&pki),
            "--serial",
            "3",
            "--reason",
            "ключ скомпрометирован",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let crl = text(&certs(&["show", s(&pki.join("crl.pem"))], None).stdout);
    assert!(crl.contains("revoked    3"), "{crl}");
    let not_pem = certs(&["show", s(&people.join("exp-1.key"))], None);
    assert!(!not_pem.status.success());
}

#[test]
fn demo_builds_a_region_whose_nodes_load() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let out = certs(
        &[
            "demo",
            "--out",
            s(&out_dir),
            "--municipalities",
            "2",
            "--schools-per-municipality",
            "3",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let region: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("region.json")).unwrap())
            .unwrap();
    let nodes = region["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1 + 2 + 6);
    // An operator, a coordinator per МОУО, eight people per school (the head, the responsible
    // organiser, an organiser in the corridor, two interviewers, two experts, a technician).
    assert_eq!(region["people"].as_array().unwrap().len(), 1 + 2 + 6 * 8);
    for node in nodes {
        for field in ["role", "code", "dir", "addr"] {
            assert!(node.get(field).is_some(), "{field} in {node}");
        }
        let node_dir = out_dir.join(node["dir"].as_str().unwrap());
        for file in ["node.crt", "node.key", "ca.crt", "crl.pem", "node.toml"] {
            assert!(
                node_dir.join(file).exists(),
                "{file} of {}",
                node_dir.display()
            );
        }
        let config = giasync_shared::config::NodeConfig::load(&node_dir.join("node.toml")).unwrap();
        assert_eq!(config.node.code, node["code"].as_str().unwrap());
        assert!(
            config.tls.cert.starts_with(&node_dir),
            "paths resolve relative to the file"
        );
    }
    let expert = region["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "expert")
        .unwrap();
    let key = std::fs::read(out_dir.join(expert["key"].as_str().unwrap())).unwrap();
    let pin = giasync_certs::keyfile::Pin::new(expert["pin"].as_str().unwrap().to_owned()).unwrap();
    let opened = giasync_certs::keyfile::open(&key, &pin).unwrap();
    assert_eq!(
        hex(&opened.verifying_key().to_bytes()),
        expert["public_key"].as_str().unwrap()
    );
    let again = certs(&["demo", "--out", s(&out_dir)], None);
    assert!(
        text(&again.stderr).contains("is not empty"),
        "{}",
        text(&again.stderr)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sign`: a request (made here with the library, as `giasync-node enrol` makes it) is signed
/// for a registered organisation into --out, with no key written there; an unregistered one
/// and a bad register line are refused by name.
#[test]
fn sign_issues_for_a_registered_request_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = certs(
        &["init", "--dir", s(&pki), "--region", "42", "--name", "РЦОИ"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let region = giasync_shared::codes::RegionCode::new("42").unwrap();
    let m = giasync_shared::codes::MunicipalityCode::new("4201").unwrap();
    let identity = giasync_certs::NodeIdentity::new(
        region,
        giasync_shared::codes::OrgCode::School(
            giasync_shared::codes::SchoolCode::new("420101").unwrap(),
        ),
        Some(m),
    )
    .unwrap();
    let request = giasync_certs::enrol::request(
        &dir.path().join("school").join("node.key"),
        identity,
        "school-420101.example",
    )
    .unwrap();
    let request_file = dir.path().join("request.csr");
    std::fs::write(&request_file, request).unwrap();
    let register = dir.path().join("register.csv");
    std::fs::write(&register, "municipality,4201\n").unwrap();
    let issued = dir.path().join("issued");
    // `sign`, with the fingerprint read out by phone when given.
    let sign_with = |register: &Path, fingerprint: Option<&str>| {
        let mut args = vec![
            "sign",
            "--dir",
            s(&pki),
            "--register",
            s(register),
            "--out",
            s(&issued),
        ];
        if let Some(fingerprint) = fingerprint {
            args.extend(["--fingerprint", fingerprint]);
        }
        args.push(s(&request_file));
        certs(&args, None)
    };
    let sign = |register: &Path| sign_with(register, None);
    let out = sign(&register);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("school 420101 (municipality 4201) is not in the region's register"),
        "{}",
        text(&out.stderr)
    );
    assert!(!issued.join("node.crt").exists());
    std::fs::write(&register, "municipality,4201\nschool,420101\n").unwrap();
    let out = sign(&register);
    assert!(
        text(&out.stderr).contains("line 2"),
        "a school without its municipality: {}",
        text(&out.stderr)
    );
    std::fs::write(&register, "municipality,4201\nschool,420101,4201\n").unwrap();
    // The fingerprint the node's enrol printed, read out by phone, is checked first: a request
    // swapped on the way (another key) is refused and nothing is issued or recorded.
    let index = std::fs::read(pki.join("index.json")).unwrap();
    let sign_checked = |fingerprint: &str| sign_with(&register, Some(fingerprint));
    let theirs =
        giasync_certs::enrol::request_fingerprint(&std::fs::read_to_string(&request_file).unwrap())
            .unwrap();
    let other = "00".repeat(theirs.replace([' ', ':', '-'], "").len() / 2);
    let out = sign_checked(&other);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing was issued"),
        "{}",
        text(&out.stderr)
    );
    assert!(!issued.join("node.crt").exists());
    assert_eq!(std::fs::read(pki.join("index.json")).unwrap(), index);
    let out = sign_checked(&theirs.to_uppercase());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("checked"),
        "{}",
        text(&out.stdout)
    );
    let files: Vec<String> = std::fs::read_dir(&issued)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(files, ["ca.crt", "crl.pem", "node.crt"]);
    let shown = certs(&["show", s(&issued.join("node.crt"))], None);
    let shown = text(&shown.stdout);
    assert!(shown.contains("school 420101"), "{shown}");
}

#[test]
fn enrol_person_prints_a_code_and_sign_person_issues_once_for_a_request_made_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = certs(
        &["init", "--dir", s(&pki), "--region", "42", "--name", "РЦОИ"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = certs(
        &[
            "enrol-person",
            "--dir",
            s(&pki),
            "--role",
            "expert",
            "--id",
            "exp-420101-7",
            "--name",
            "Орлова Ольга Игоревна",
            "--org",
            "420101",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let code = said
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(code.len(), 19, "{said}");
    // The CA folder keeps no code, only a key derived from it.
    let kept = std::fs::read_to_string(pki.join("enrolments.json")).unwrap();
    assert!(
        !kept.contains(&code) && !kept.contains(&code.replace('-', "")),
        "{kept}"
    );

    // The request, as the school makes it (`giasync-node enrol-person`).
    let expert = giasync_certs::PersonIdentity {
        region: giasync_shared::codes::RegionCode::new("42").unwrap(),
        role: giasync_shared::codes::PersonRole::Expert,
        id: giasync_shared::codes::PersonId::new("exp-420101-7").unwrap(),
        org: giasync_shared::codes::OrgCode::School(
            giasync_shared::codes::SchoolCode::new("420101").unwrap(),
        ),
    };
    let pin = giasync_certs::keyfile::Pin::new("пароль эксперта длинный".into()).unwrap();
    let fast = giasync_certs::keyfile::KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };
    let (_, request, fingerprint) =
        giasync_certs::enrol_person::request(&expert, &code, &pin, fast).unwrap();
    let request_file = dir.path().join("exp-420101-7.request");
    std::fs::write(&request_file, request.to_text()).unwrap();
    let issued = dir.path().join("issued");
    let sign = |fingerprint: &str| {
        certs(
            &[
                "sign-person",
                "--dir",
                s(&pki),
                "--out",
                s(&issued),
                "--fingerprint",
                fingerprint,
                s(&request_file),
            ],
            None,
        )
    };
    // The fingerprint read out by phone is not the request's key's: nothing is issued, and the
    // code is not spent.
    let out = sign("0000 0000 0000 0000");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing was issued"),
        "{}",
        text(&out.stderr)
    );
    assert!(!issued.join("exp-420101-7.crt").exists());
    let out = sign(&fingerprint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&fingerprint),
        "{}",
        text(&out.stdout)
    );
    let cert = issued.join("exp-420101-7.crt");
    let shown = certs(&["show", s(&cert)], None);
    assert!(
        text(&shown.stdout).contains("Орлова Ольга Игоревна"),
        "{}",
        text(&shown.stdout)
    );
    // Once: a second request with the code is refused, and the certificate is not replaced.
    std::fs::remove_file(&cert).unwrap();
    let out = sign(&fingerprint);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("used already"),
        "{}",
        text(&out.stderr)
    );
    assert!(!cert.exists());
}
