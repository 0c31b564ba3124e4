//! Enrolment end to end: a school's key is made on the school's machine, only its request goes
//! to the РЦОИ, the CA signs it after checking the region's register, the school installs the
//! certificate, and then proves itself to its hubs over real QUIC (`doctor`'s upstream checks).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};

use giasync_certs::enrol::{EnrolError, Register, sign};
use giasync_certs::pki::{Pki, Validity};

mod common;
use common::{demo_region, node, node_with_env, point_upstreams, serve};

/// Every file under `root` whose bytes contain `needle`.
fn files_holding(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_enrols_with_a_key_that_never_leaves_its_machine() {
    let dir = tempfile::tempdir().unwrap();
    let region = dir.path().join("region");
    demo_region(&region, 47_060, 2);
    // The school's machine holds only its node.toml: no key, no certificates yet.
    let school = region.join("420101");
    for file in ["node.key", "node.crt", "ca.crt", "crl.pem"] {
        std::fs::remove_file(school.join(file)).unwrap();
    }
    let config = school.join("node.toml");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();

    // On the school's machine: the key and the request.
    let request = media.join("request.csr");
    let (ok, said) = node(&[
        "enrol",
        "--config",
        config.to_str().unwrap(),
        "--org",
        "420101",
        "--host",
        "127.0.0.1",
        "--out",
        request.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    // The fingerprint read out by phone is the request's key's.
    let told = said
        .split("key fingerprint ")
        .nth(1)
        .and_then(|rest| rest.split(" by phone").next())
        .unwrap()
        .to_owned();
    assert_eq!(
        giasync_certs::enrol::request_fingerprint(&std::fs::read_to_string(&request).unwrap())
            .unwrap(),
        told
    );
    let key = std::fs::read_to_string(school.join("node.key")).unwrap();
    let key_body = key.lines().nth(1).unwrap().as_bytes().to_vec();
    // A second enrolment never replaces the key.
    let (again, said) = node(&[
        "enrol",
        "--config",
        config.to_str().unwrap(),
        "--out",
        media.join("again.csr").to_str().unwrap(),
    ]);
    assert!(!again && said.contains("already exists"), "{said}");
    assert_eq!(
        std::fs::read_to_string(school.join("node.key")).unwrap(),
        key
    );

    // At the РЦОИ: only the request arrives; the register lists the school.
    let register_file = dir.path().join("register.csv");
    std::fs::write(
        &register_file,
        "# the region's register\nschool,420101,4201\n",
    )
    .unwrap();
    let mut pki = Pki::open(&region.join("pki")).unwrap();
    let register = Register::read(&register_file, pki.region()).unwrap();
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 365).unwrap();
    let text = std::fs::read_to_string(&request).unwrap();
    let (identity, _, cert) = sign(&mut pki, &text, &register, validity).unwrap();
    assert_eq!(identity.to_string(), "school 420101 (municipality 4201)");
    std::fs::write(media.join("node.crt"), cert).unwrap();
    std::fs::write(media.join("ca.crt"), pki.ca_cert_pem()).unwrap();
    std::fs::write(media.join("crl.pem"), pki.crl_pem().unwrap()).unwrap();
    // A school the register does not list gets nothing.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "school,420102,4201\n").unwrap();
    let others_only = Register::read(&empty, pki.region()).unwrap();
    let refused = sign(&mut pki, &text, &others_only, validity);
    assert!(
        matches!(refused, Err(EnrolError::NotRegistered(_))),
        "{refused:?}"
    );
    // A request whose bytes were changed on the way does not verify.
    let tampered = text.replacen("MI", "MJ", 1);
    assert!(sign(&mut pki, &tampered, &register, validity).is_err());

    // The private key never left the school's folder: no other file anywhere holds it.
    assert_eq!(
        files_holding(dir.path(), &key_body),
        [school.join("node.key")],
        "the key was copied"
    );

    // A certificate for another key is refused and nothing installed.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for file in ["ca.crt", "crl.pem"] {
        std::fs::copy(media.join(file), other.join(file)).unwrap();
    }
    std::fs::copy(
        region.join("420102").join("node.crt"),
        other.join("node.crt"),
    )
    .unwrap();
    let (ok, said) = node(&[
        "install-cert",
        "--config",
        config.to_str().unwrap(),
        "--from",
        other.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("another key"), "{said}");
    assert!(!school.join("node.crt").exists());

    // The school already holds a newer revocation list than the folder's (a revocation since
    // the folder was signed): the install keeps it.
    let other_school = pki
        .issued()
        .iter()
        .find(|i| i.identity.contains("school/420102"))
        .unwrap()
        .serial;
    pki.revoke(
        other_school,
        "the machine was stolen",
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let newer = pki.crl_pem().unwrap();
    std::fs::write(school.join("crl.pem"), &newer).unwrap();

    // Back at the school: installed, then proved to both upstreams over QUIC.
    let (ok, said) = node(&[
        "install-cert",
        "--config",
        config.to_str().unwrap(),
        "--from",
        media.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    assert_eq!(
        std::fs::read_to_string(school.join("crl.pem")).unwrap(),
        newer,
        "the newer revocation list was replaced by the folder's older one"
    );
    let (_hub, hub_addr) = serve(&region.join("4201"));
    let (_rcoi, rcoi_addr) = serve(&region.join("42"));
    point_upstreams(&config, &[hub_addr, rcoi_addr]);
    let (ok, report) = tokio::task::spawn_blocking(move || {
        node(&[
            "doctor",
            "--config",
            config.to_str().unwrap(),
            "--timeout-ms",
            "1500",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{report}");
    assert!(report.contains("proved municipality 4201"), "{report}");
    assert!(report.contains("proved rcoi 42"), "{report}");

    // Renewal: a request for the same key, a new certificate, the key untouched.
    let config = school.join("node.toml");
    let renewal = dir.path().join("renewal");
    std::fs::create_dir(&renewal).unwrap();
    let (ok, said) = node(&[
        "enrol",
        "--config",
        config.to_str().unwrap(),
        "--renew",
        "--host",
        "127.0.0.1",
        "--out",
        renewal.join("request.csr").to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    let text = std::fs::read_to_string(renewal.join("request.csr")).unwrap();
    let (_, serial, cert) = sign(&mut pki, &text, &register, validity).unwrap();
    std::fs::write(renewal.join("node.crt"), cert).unwrap();
    std::fs::write(renewal.join("ca.crt"), pki.ca_cert_pem()).unwrap();
    std::fs::write(renewal.join("crl.pem"), pki.crl_pem().unwrap()).unwrap();
    let before = std::fs::read(school.join("node.crt")).unwrap();
    let (ok, said) = node(&[
        "install-cert",
        "--config",
        config.to_str().unwrap(),
        "--from",
        renewal.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    assert_ne!(std::fs::read(school.join("node.crt")).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(school.join("node.key")).unwrap(),
        key
    );
    let shown = giasync_certs::show::describe(
        &std::fs::read(school.join("node.crt")).unwrap(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert!(shown.contains(&format!("serial     {serial}\n")), "{shown}");
}

/// A person's first sign-in at the school: the РЦОИ issues a one-time code; the expert's key is
/// made on the school's machine, sealed with the passphrase chosen there; only the request
/// travels; the certificate comes back, is installed, and the key it certifies is the one the
/// passphrase opens. The sealed key never leaves the people folder.
#[test]
fn an_expert_enrols_with_a_code_and_a_key_made_at_the_school() {
    let dir = tempfile::tempdir().unwrap();
    let region = dir.path().join("region");
    demo_region(&region, 47_060, 1);
    let school = region.join("420101");
    let config = school.join("node.toml");
    let people = school.join("people");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    let now = time::OffsetDateTime::now_utc();

    // At the РЦОИ: who is to be enrolled, and the code on paper.
    let pki = Pki::open(&region.join("pki")).unwrap();
    let expert = giasync_certs::PersonIdentity {
        region: pki.region(),
        role: giasync_shared::codes::PersonRole::Expert,
        id: giasync_shared::codes::PersonId::new("exp-420101-new").unwrap(),
        org: giasync_shared::codes::OrgCode::School(
            giasync_shared::codes::SchoolCode::new("420101").unwrap(),
        ),
    };
    let code = giasync_certs::enrol_person::issue_code(
        &pki,
        &expert,
        "Сидорова Мария Петровна",
        now + time::Duration::days(30),
    )
    .unwrap();
    drop(pki);

    // At the school: the key and the request, under the code and a passphrase chosen now.
    let passphrase = "эксперт выбирает сам";
    let enrol = |code: &str, pin: &str| {
        node_with_env(
            &[
                "enrol-person",
                "--config",
                config.to_str().unwrap(),
                "--role",
                "expert",
                "--id",
                "exp-420101-new",
            ],
            &[("GIASYNC_ENROL_CODE", code), ("GIASYNC_PIN", pin)],
        )
    };
    // A PIN too short for an expert makes nothing.
    let (ok, said) = enrol(&code, "123456");
    assert!(!ok, "{said}");
    assert!(!people.join("exp-420101-new.key").exists(), "{said}");
    let (ok, said) = enrol(&code, passphrase);
    assert!(ok, "{said}");
    let key_file = people.join("exp-420101-new.key");
    let sealed = std::fs::read(&key_file).unwrap();
    let request_file = people.join("exp-420101-new.request");
    std::fs::copy(&request_file, media.join("exp-420101-new.request")).unwrap();
    // Enrolling again never replaces the key.
    let (again, said) = enrol(&code, passphrase);
    assert!(!again && said.contains("exists already"), "{said}");
    assert_eq!(std::fs::read(&key_file).unwrap(), sealed);

    // At the РЦОИ: only the request arrives.
    let mut pki = Pki::open(&region.join("pki")).unwrap();
    let request = giasync_certs::enrol_person::PersonRequest::parse(
        &std::fs::read_to_string(media.join("exp-420101-new.request")).unwrap(),
    )
    .unwrap();
    let validity = Validity::days_from(now, 365).unwrap();
    let (identity, _, cert) =
        giasync_certs::enrol_person::sign(&mut pki, &request, now, validity).unwrap();
    assert_eq!(identity, expert);
    std::fs::write(media.join("exp-420101-new.crt"), &cert).unwrap();
    // The sealed key never left the people folder.
    assert_eq!(
        files_holding(dir.path(), &sealed),
        std::slice::from_ref(&key_file),
        "the key was copied"
    );

    // A certificate for a person not enrolled on this machine is not installed here.
    let foreign = dir.path().join("foreign.crt");
    let (_, _, foreign_cert) = {
        let mut other = expert.clone();
        other.id = giasync_shared::codes::PersonId::new("exp-other").unwrap();
        let code = giasync_certs::enrol_person::issue_code(
            &pki,
            &other,
            "Кто-то Другой",
            now + time::Duration::days(1),
        )
        .unwrap();
        let pin = giasync_certs::keyfile::Pin::new(passphrase.into()).unwrap();
        let (_, request, _) =
            giasync_certs::enrol_person::request(&other, &code, &pin, common::FAST).unwrap();
        giasync_certs::enrol_person::sign(&mut pki, &request, now, validity).unwrap()
    };
    std::fs::write(&foreign, foreign_cert).unwrap();
    let (ok, said) = node(&[
        "install-person",
        "--config",
        config.to_str().unwrap(),
        "--from",
        foreign.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("no key of exp-other"), "{said}");

    // A certificate for this very person, but for a key made elsewhere (a second code, used
    // by someone else): not the key made here, so not installed.
    let elsewhere = dir.path().join("elsewhere.crt");
    let (_, _, elsewhere_cert) = {
        let code = giasync_certs::enrol_person::issue_code(
            &pki,
            &expert,
            "Сидорова Мария Петровна",
            now + time::Duration::days(1),
        )
        .unwrap();
        let pin = giasync_certs::keyfile::Pin::new(passphrase.into()).unwrap();
        let (_, request, _) =
            giasync_certs::enrol_person::request(&expert, &code, &pin, common::FAST).unwrap();
        giasync_certs::enrol_person::sign(&mut pki, &request, now, validity).unwrap()
    };
    std::fs::write(&elsewhere, elsewhere_cert).unwrap();
    let (ok, said) = node(&[
        "install-person",
        "--config",
        config.to_str().unwrap(),
        "--from",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("not for the key"), "{said}");
    assert!(!people.join("exp-420101-new.crt").exists());

    // Back at the school: installed beside the key; the request is done with.
    let (ok, said) = node(&[
        "install-person",
        "--config",
        config.to_str().unwrap(),
        "--from",
        media.join("exp-420101-new.crt").to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    assert!(people.join("exp-420101-new.crt").exists());
    assert!(!request_file.exists());
    // The passphrase chosen at the school opens the key the certificate certifies, and the
    // certificate carries the name the РЦОИ recorded.
    let key = giasync_certs::keyfile::open(
        &sealed,
        &giasync_certs::keyfile::Pin::new(passphrase.into()).unwrap(),
    )
    .unwrap();
    let der = giasync_certs::show::certs_from_pem(
        &std::fs::read(people.join("exp-420101-new.crt")).unwrap(),
    )
    .unwrap()
    .remove(0);
    let summary = giasync_certs::show::summarize_der(&der).unwrap();
    assert_eq!(summary.ed25519_key, Some(key.verifying_key().to_bytes()));
    assert!(
        summary.subject.contains("Сидорова Мария Петровна"),
        "{summary:?}"
    );
}
