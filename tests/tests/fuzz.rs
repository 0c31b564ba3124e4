//! Fuzz targets: every decoder that takes bytes from the network, the disk or a file, fed
//! mutations of valid inputs by the stable-Rust fuzzer in `tests/src/fuzz.rs`. Each target
//! asserts only that the decoder does not panic, and, where a decoder accepts, what must then
//! hold (a frame that decodes encodes back to itself; a sheet that verifies decodes).
//!
//! CI runs `GIASYNC_FUZZ_CASES` cases per target (10,000 by default). For longer runs:
//! `GIASYNC_FUZZ_SECONDS=60 cargo nextest run -p giasync-tests --test fuzz --no-capture`
//! (each target for 60 s; `-E 'test(wire)'` picks targets by name).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use giasync_certs::demo::{DemoOptions, Region, demo};
use giasync_certs::keyfile::{KdfParams, Pin};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{
    MunicipalityCode, OrgCode, PersonId, RegionCode, RoomCode, SchoolCode,
};
use giasync_shared::exam::ExamId;
use giasync_shared::identity::NodeIdentity;
use giasync_shared::participant::Category;
use giasync_shared::publish::{Familiarisation, Published, ResultRow};
use giasync_shared::record::{Attempt, FixedDirectory, SheetDraft, SheetSubject, SignedSheet};
use giasync_shared::rules::{Outcome, Rules};
use giasync_shared::settlement::Settlement;
use giasync_shared::statement::{Statement, StatementKind};
use giasync_shared::sync::attest::Attestation;
use giasync_shared::sync::wire::Frame;
use giasync_shared::sync::{DocId, Engine, FixedCa, Input, Output};
use giasync_tests::fuzz;

fn report(r: &fuzz::Report) {
    println!("{r}");
}

/// A demo region on disk (certificates, CRL, node.toml files, people's key files), made once.
fn region() -> &'static (tempfile::TempDir, Region) {
    static REGION: OnceLock<(tempfile::TempDir, Region)> = OnceLock::new();
    REGION.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let options = DemoOptions {
            out: dir.path().to_path_buf(),
            municipalities: 1,
            schools_per_municipality: 1,
            base_port: 48_700,
            kdf: KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            https: false,
            utc_offset: None,
        };
        let region = demo(&options, giasync_tests::now()).unwrap();
        (dir, region)
    })
}

fn region_file(path: &str) -> Vec<u8> {
    let (dir, _) = region();
    std::fs::read(dir.path().join(path)).unwrap()
}

fn school() -> SchoolCode {
    SchoolCode::new("420101").unwrap()
}

fn exam() -> ExamId {
    "is-2024-02-14".parse().unwrap()
}

fn identity(org: OrgCode, municipality: Option<&str>) -> NodeIdentity {
    NodeIdentity {
        region: RegionCode::new("42").unwrap(),
        org,
        municipality: municipality.map(|m| MunicipalityCode::new(m).unwrap()),
    }
}

/// A valid score sheet by expert `e-1` (key `[1; 32]`) and the directory that certifies them.
fn sheet() -> (SignedSheet, FixedDirectory, Rules) {
    let rules = Rules::is_2024().unwrap();
    let key = SigningKey::from_bytes(&[1; 32]);
    let expert = PersonId::new("e-1").unwrap();
    let mut directory = FixedDirectory::default();
    directory.add(expert, key.verifying_key(), &[school()]);
    let points = rules
        .category(Category::Standard)
        .unwrap()
        .criteria(&rules)
        .map(|c| (c.id, i64::from(c.max)))
        .collect();
    let draft = SheetDraft {
        subject: SheetSubject {
            exam: exam(),
            school: school(),
            participant: "p1".parse().unwrap(),
            attempt: Attempt::new(1).unwrap(),
        },
        room: RoomCode::new("101").unwrap(),
        category: Category::Standard,
        points,
        expert,
        signed_at: "2024-02-14T03:00:00Z".parse().unwrap(),
        correction: None,
    };
    let sheet = SignedSheet::sign(draft, &rules, &key).unwrap();
    (sheet, directory, rules)
}

#[test]
fn wire_frames() {
    let doc: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    let seeds: Vec<Vec<u8>> = [
        Frame::Summary {
            digest: [3; 32],
            docs: 12,
        },
        Frame::Buckets {
            digests: vec![[1; 8], [2; 8]],
        },
        Frame::DocList {
            bucket_count: 4,
            buckets: vec![0, 3],
            entries: vec![(doc, [5; 8]), (DocId::Directory, [6; 8])],
        },
        Frame::Sync {
            doc,
            message: vec![0x42, 1, 2, 3],
            attestations: vec![(vec![9; 40], vec![8; 120])],
        },
        Frame::Fragment {
            id: 7,
            index: 1,
            total: 3,
            bytes: vec![4; 100],
        },
    ]
    .iter()
    .map(Frame::encode)
    .collect();
    report(&fuzz::run("wire_frames", &seeds, |bytes| {
        if let Ok(frame) = Frame::decode(bytes) {
            assert_eq!(Frame::decode(&frame.encode()).unwrap(), frame);
        }
    }));
}

/// The frames a school sends its hub when it connects with one change: real automerge sync
/// messages and attestations, the seeds of [`engine_input`].
fn school_session() -> Vec<Vec<u8>> {
    let ca = FixedCa::default();
    let key = SigningKey::from_bytes(&[2; 32]);
    let me = identity(OrgCode::School(school()), Some("4201"));
    let mut school = Engine::new(me, key.clone(), ca.issue(me, &key), Box::new(ca));
    let protocol: DocId = "protocol/4201/420101/is-2024-02-14".parse().unwrap();
    school
        .change(1_000, protocol, |tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "log/p1/start", 5_i64).map(|_| ())
        })
        .unwrap();
    school.handle(
        2_000,
        Input::Connected {
            peer: 1,
            identity: identity(
                OrgCode::Municipality(MunicipalityCode::new("4201").unwrap()),
                None,
            ),
            wire: giasync_shared::sync::wire::WIRE_VERSION,
            link: giasync_shared::sync::Link::Quic,
        },
    );
    // The hub's opening for the protocol, so the school answers with its changes.
    let opening = automerge::sync::SyncDoc::generate_sync_message(
        &automerge::Automerge::new(),
        &mut automerge::sync::State::new(),
    )
    .unwrap()
    .encode();
    school.handle(
        3_000,
        Input::Received {
            peer: 1,
            bytes: &Frame::Sync {
                doc: protocol,
                message: opening,
                attestations: vec![],
            }
            .encode(),
        },
    );
    std::iter::from_fn(|| school.poll_output())
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .collect()
}

#[test]
fn engine_input() {
    let seeds = school_session();
    assert!(
        seeds.iter().any(|s| matches!(
            Frame::decode(s),
            Ok(Frame::Sync { attestations, .. }) if !attestations.is_empty()
        )),
        "the session carries a change with its attestation"
    );
    let ca = FixedCa::default();
    let hub_key = SigningKey::from_bytes(&[3; 32]);
    let hub_id = identity(
        OrgCode::Municipality(MunicipalityCode::new("4201").unwrap()),
        None,
    );
    let hub_cert = ca.issue(hub_id, &hub_key);
    let school_id = identity(OrgCode::School(school()), Some("4201"));
    report(&fuzz::run("engine_input", &seeds, |bytes| {
        let mut hub = Engine::new(
            hub_id,
            hub_key.clone(),
            hub_cert.clone(),
            Box::new(ca.clone()),
        );
        hub.handle(
            1,
            Input::Connected {
                peer: 1,
                identity: school_id,
                wire: giasync_shared::sync::wire::WIRE_VERSION,
                link: giasync_shared::sync::Link::Quic,
            },
        );
        hub.handle(2, Input::Received { peer: 1, bytes });
        while hub.poll_output().is_some() {}
    }));
}

#[test]
fn score_sheets() {
    let (sheet, directory, rules) = sheet();
    report(&fuzz::run(
        "score_sheets",
        &[sheet.as_bytes().to_vec()],
        |bytes| {
            let Ok(s) = SignedSheet::from_bytes(bytes.to_vec()) else {
                return;
            };
            let _ = s.decode_unverified();
            if let Ok(v) = s.verify(&rules, &directory) {
                assert_eq!(s.decode_unverified().unwrap(), v.sheet);
            }
        },
    ));
}

#[test]
fn signed_statements() {
    let operator_key = SigningKey::from_bytes(&[4; 32]);
    let organiser_key = SigningKey::from_bytes(&[5; 32]);
    let ca = FixedCa::default();
    let rcoi_key = SigningKey::from_bytes(&[6; 32]);
    let rcoi_cert = ca.issue(
        identity(OrgCode::Rcoi("42".parse().unwrap()), None),
        &rcoi_key,
    );
    let (sheet, _, _) = sheet();
    let hash = sheet.hash();
    let other = giasync_shared::record::RecordHash::of(b"another sheet");
    let settlement = Settlement {
        subject: sheet.decode_unverified().unwrap().subject,
        settles: if hash < other {
            vec![hash, other]
        } else {
            vec![other, hash]
        },
        chosen: hash,
        reason: "ошибка ввода".into(),
        operator: PersonId::new("op-1").unwrap(),
        rcoi: RegionCode::new("42").unwrap(),
        at: "2024-02-15T03:00:00Z".parse().unwrap(),
    }
    .sign(&operator_key)
    .unwrap();
    let published = Published {
        exam: exam(),
        school: school(),
        edition: 2,
        at: "2024-02-20T03:00:00Z".parse().unwrap(),
        rows: vec![ResultRow {
            participant: "p1".parse().unwrap(),
            attempt: 1,
            total: 15,
            outcome: Outcome::Pass,
            marks: Vec::new(),
        }],
    };
    let published =
        Statement::sign(StatementKind::Results, &published.fields(), &rcoi_key).unwrap();
    let familiarised = Familiarisation {
        exam: exam(),
        school: school(),
        participant: "p1".parse().unwrap(),
        organiser: PersonId::new("org-1").unwrap(),
        at: "2024-02-21T03:00:00Z".parse::<Timestamp>().unwrap(),
        edition: Some(1),
    }
    .sign(&organiser_key)
    .unwrap();
    let seeds: Vec<Vec<u8>> = [&settlement, &published, &familiarised]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let directory = FixedDirectory::default();
    report(&fuzz::run("signed_statements", &seeds, |bytes| {
        let Ok(s) = Statement::from_bytes(bytes.to_vec()) else {
            return;
        };
        for kind in [
            StatementKind::Settlement,
            StatementKind::Results,
            StatementKind::Familiarisation,
        ] {
            let _ = s.fields_unverified(kind);
        }
        let _ = Settlement::verify(&s, &directory);
        let _ = Familiarisation::verify(&s, &directory);
        let _ = Published::verify(&s, &rcoi_cert, &ca, exam(), school());
    }));
}

#[test]
fn attestations() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let doc: DocId = "roster/4201/420101/is-2024-02-14".parse().unwrap();
    let heads = vec![
        automerge::ChangeHash([1; 32]),
        automerge::ChangeHash([2; 32]),
    ];
    let seeds = vec![
        Attestation::sign(doc, heads, 1_707_876_000_000, &key)
            .as_bytes()
            .to_vec(),
    ];
    report(&fuzz::run("attestations", &seeds, |bytes| {
        let _ = Attestation::decode_verified(bytes);
    }));
}

#[test]
fn text_ids_and_times() {
    let seeds: Vec<Vec<u8>> = [
        "protocol/4201/420101/is-2024-02-14",
        "rcoi/4201/420101/is-2024-02-14",
        "directory",
        "2024-02-14T03:00:00Z",
        "2024-02-14T10:00:00+07:00",
        "giasync://42/node/school/420101?municipality=4201",
        "giasync://42/person/expert/e-1?org=420101",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    report(&fuzz::run("text_ids_and_times", &seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(d) = text.parse::<DocId>() {
            assert_eq!(d.to_string().parse::<DocId>().unwrap(), d);
        }
        let _ = text.parse::<ExamId>();
        let _ = text.parse::<Timestamp>();
        if let Ok(who) = giasync_shared::identity::Identity::parse_uri(&text) {
            let _ = who.to_string();
        }
    }));
}

#[test]
fn csv_lists() {
    let seeds = vec![
        "Код МОУО;Код ОО;ID;Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория;Аудитория\n\
         4201;420101;p1;Иванова;Анна;Петровна;3204;123456;9А;standard;101\n"
            .as_bytes()
            .to_vec(),
        "id,surname,name,patronymic,series,number,class,category,room\n\
         p1,Петров,Иван,,3204,654321,9Б,autism,\n"
            .as_bytes()
            .to_vec(),
    ];
    report(&fuzz::run("csv_lists", &seeds, |bytes| {
        let _ = giasync_shared::import::parse_csv(&String::from_utf8_lossy(bytes));
    }));
}

/// Writes `bytes` to a file named `name` in a fresh folder and runs the node's list reader.
fn read_list_file(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let _ = giasync_node::import::read_list(&path);
}

#[test]
fn xlsx_lists() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in [
        ["Код МОУО", "Код ОО", "ID", "Фамилия", "Имя"],
        ["4201", "420101", "p1", "Иванова", "Анна"],
    ]
    .iter()
    .enumerate()
    {
        for (c, text) in row.iter().enumerate() {
            sheet
                .write_string(u32::try_from(r).unwrap(), u16::try_from(c).unwrap(), *text)
                .unwrap();
        }
    }
    let seeds = vec![book.save_to_buffer().unwrap()];
    let dir = tempfile::tempdir().unwrap();
    report(&fuzz::run("xlsx_lists", &seeds, |bytes| {
        read_list_file(dir.path(), "list.xlsx", bytes);
    }));
}

#[test]
fn node_config_files() {
    let (_, r) = region();
    let seeds: Vec<Vec<u8>> = r
        .nodes
        .iter()
        .map(|n| region_file(&format!("{}/node.toml", n.dir)))
        .collect();
    report(&fuzz::run("node_config_files", &seeds, |bytes| {
        let _ =
            giasync_shared::config::NodeConfig::parse(&String::from_utf8_lossy(bytes), "node.toml");
    }));
}

#[test]
fn rules_files() {
    let seeds = vec![
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/rules/is-2024.toml"))
            .unwrap(),
    ];
    report(&fuzz::run("rules_files", &seeds, |bytes| {
        let _ = Rules::parse(&String::from_utf8_lossy(bytes), "is-2024.toml");
    }));
}

#[test]
fn scenario_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulations/scenarios");
    let seeds: Vec<Vec<u8>> = ["small.toml", "kuzbass.toml"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    report(&fuzz::run("scenario_files", &seeds, |bytes| {
        let _ = giasync_sim::scenario::Scenario::parse(&String::from_utf8_lossy(bytes), "fuzz");
    }));
}

#[test]
fn admin_requests() {
    let seeds: Vec<Vec<u8>> = [
        r#"{"v":2,"op":"status"}"#,
        r#"{"v":2,"op":"log","exam":"is-2024-02-14","participant":"p1","at":"2024-02-14T03:00:00Z","end":false}"#,
        r#"{"v":2,"op":"rooms","exam":"is-2024-02-14","rooms":[["101",2]]}"#,
        r#"{"v":1,"op":"mark","exam":"is-2024-02-14","participant":"p1","attendance":"absent"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    report(&fuzz::run("admin_requests", &seeds, |bytes| {
        let _ = giasync_node::admin::parse_request(&String::from_utf8_lossy(bytes));
    }));
}

#[test]
fn certificates_and_revocation_lists() {
    let (_, r) = region();
    let ca_pem = region_file(&format!("{}/ca.crt", r.pki));
    let crl_pem = region_file(&format!("{}/crl.pem", r.pki));
    let mut seeds: Vec<Vec<u8>> = r
        .nodes
        .iter()
        .map(|n| region_file(&format!("{}/node.crt", n.dir)))
        .chain(r.people.iter().map(|p| region_file(&p.cert)))
        .flat_map(|pem| giasync_certs::show::certs_from_pem(&pem).unwrap())
        .collect();
    seeds.push(crl_pem.clone());
    let verifier = giasync_certs::verify::CaVerifier::from_pem(
        &ca_pem,
        &crl_pem,
        RegionCode::new("42").unwrap(),
    )
    .unwrap();
    report(&fuzz::run(
        "certificates_and_revocation_lists",
        &seeds,
        |bytes| {
            let _ = giasync_certs::identity::from_cert_der(bytes);
            let _ = giasync_certs::show::summarize_der(bytes);
            let _ = giasync_certs::show::certs_from_pem(bytes);
            let _ = giasync_shared::sync::CertVerifier::node_key(&verifier, bytes);
            let _ = verifier.experts(&BTreeMap::from([("e-1".to_owned(), bytes.to_vec())]));
            let _ = giasync_certs::verify::CaVerifier::from_pem(
                &ca_pem,
                bytes,
                RegionCode::new("42").unwrap(),
            );
        },
    ));
}

#[test]
fn person_key_files() {
    let (_, r) = region();
    let seeds: Vec<Vec<u8>> = r
        .people
        .iter()
        .take(2)
        .map(|p| region_file(&p.key))
        .collect();
    let pin = Pin::new(r.people[0].pin.clone()).unwrap();
    report(&fuzz::run("person_key_files", &seeds, |bytes| {
        let _ = giasync_certs::keyfile::open(bytes, &pin);
    }));
}

#[test]
fn export_manifests() {
    let key = SigningKey::from_bytes(&[8; 32]);
    let files = vec![giasync_shared::export::ExportFile {
        name: "results.csv".into(),
        bytes: b"exam;school;participant\nis-2024-02-14;420101;p1\n".to_vec(),
        rows: 1,
    }];
    let (manifest, signature) = giasync_shared::export::sign_manifest(
        &files,
        "42",
        exam(),
        "2024-02-20T03:00:00Z",
        "giasync:node:42:rcoi:42",
        &key,
    );
    let by_name: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|f| (f.name.clone(), f.bytes.clone()))
        .collect();
    report(&fuzz::run(
        "export_manifests",
        std::slice::from_ref(&manifest),
        |bytes| {
            let _ = giasync_shared::export::verify(bytes, &signature, &by_name);
        },
    ));
}
