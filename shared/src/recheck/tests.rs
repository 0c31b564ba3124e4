use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use ed25519_dalek::SigningKey;

use super::grant::{self, Answer, Grant};
use super::verdict::{self, Draft};
use super::*;
use crate::audio::AudioFormat;
use crate::blob::{BlobHash, BlobRef};
use crate::codes::ParticipantId;
use crate::codes::RoomCode;
use crate::commission::{Commission, Orders, RoomCommission};
use crate::participant::Category;
use crate::publish::Published;
use crate::record::Attempt;
use crate::record::fixtures::*;
use crate::record::{FixedDirectory, RecordHash};
use crate::recording::{Recording, Subject};
use crate::rules::Outcome;
use crate::settlement::{Settler, resolve_protocol};

/// The school the participant chose: not theirs.
fn reviewer() -> SchoolCode {
    SchoolCode::new("420202").unwrap()
}
fn head() -> PersonId {
    PersonId::new("head-2").unwrap()
}
fn reviewing_expert() -> PersonId {
    PersonId::new("exp-r1").unwrap()
}
fn head_key() -> SigningKey {
    SigningKey::from_bytes(&[60; 32])
}

/// The participant's school's experts 1..=4 and the reviewing school's head, as the CA would
/// certify them; the reviewing school's head also as an organiser there (a role that may not
/// sign a request or a protocol).
fn directory_with_head() -> FixedDirectory {
    let mut d = directory();
    d.add_person(
        head(),
        PersonRole::Head,
        OrgCode::School(reviewer()),
        head_key().verifying_key(),
    );
    d.add_person(
        PersonId::new("org-2").unwrap(),
        PersonRole::Organiser,
        OrgCode::School(reviewer()),
        SigningKey::from_bytes(&[61; 32]).verifying_key(),
    );
    d
}

fn attempt_2(participant: &str) -> SheetSubject {
    SheetSubject {
        attempt: Attempt::new(2).unwrap(),
        ..subject(participant)
    }
}

fn request() -> Request {
    Request {
        subject: attempt_2("p1"),
        applied: "2024-03-20".parse().unwrap(),
        reviewer: reviewer(),
        head: head(),
        at: at(100),
    }
}

fn recording() -> BlobHash {
    BlobHash([7; 32])
}

/// 15 of 20 for a standard participant: зачёт.
fn draft(total: i64) -> Draft {
    let rules = rules();
    let mut left = total;
    let points = rules
        .category(Category::Standard)
        .unwrap()
        .criteria(&rules)
        .map(|c| {
            let p = left.min(i64::from(c.max));
            left -= p;
            (c.id, p)
        })
        .collect();
    Draft {
        subject: attempt_2("p1"),
        reviewer: reviewer(),
        grant: RecordHash([9; 32]),
        recording: recording(),
        category: Category::Standard,
        points,
        experts: vec![reviewing_expert()],
        chair: head(),
        at: at(200),
    }
}

/// The reviewing school's order for another date of ИС than the participant's (it need not
/// have held theirs).
fn orders(experts: Vec<PersonId>, head_of_order: PersonId) -> Orders {
    orders_for("is-2024-03-13", experts, head_of_order)
}

fn orders_for(exam: &str, experts: Vec<PersonId>, head_of_order: PersonId) -> Orders {
    Orders {
        editions: vec![Commission {
            exam: exam.parse().unwrap(),
            school: reviewer(),
            edition: 1,
            head: head_of_order,
            at: at(0),
            rooms: vec![RoomCommission {
                room: RoomCode::new("201").unwrap(),
                interviewers: vec![PersonId::new("int-2").unwrap()],
                experts,
            }],
        }],
    }
}

#[test]
fn a_request_verifies_as_the_reviewing_heads_and_nobody_elses() {
    let d = directory_with_head();
    let signed = request().sign(&head_key()).unwrap();
    assert_eq!(Request::verify(&signed, &d).unwrap(), request());
    // Signed by another key under the head's name.
    let forged = request().sign(&SigningKey::from_bytes(&[62; 32])).unwrap();
    assert!(Request::verify(&forged, &d).is_err());
    // An organiser of the reviewing school is not its head.
    let by_organiser = Request {
        head: PersonId::new("org-2").unwrap(),
        ..request()
    }
    .sign(&SigningKey::from_bytes(&[61; 32]))
    .unwrap();
    let err = Request::verify(&by_organiser, &d).unwrap_err();
    assert!(err.to_string().contains("org-2"), "{err}");
}

#[test]
fn a_school_cannot_ask_to_recheck_its_own_participant() {
    let own = Request {
        reviewer: school(),
        ..request()
    };
    let err = own.sign(&head_key()).unwrap_err();
    assert!(err.to_string().contains("another school"), "{err}");
}

#[test]
fn a_recheck_verifies_and_its_score_is_the_rules() {
    let d = directory_with_head();
    let recheck = Recheck::score(draft(15), &rules()).unwrap();
    assert_eq!((recheck.total, recheck.outcome), (15, Outcome::Pass));
    let signed = recheck.sign(&head_key()).unwrap();
    assert_eq!(Recheck::verify(&signed, &d, &rules()).unwrap(), recheck);
    // A total its points do not give is refused, signature and all.
    let inflated = Recheck {
        total: 19,
        ..recheck.clone()
    };
    let err = Recheck::verify(&inflated.sign(&head_key()).unwrap(), &d, &rules()).unwrap_err();
    assert!(err.to_string().contains("its points give 15"), "{err}");
    // Nobody but the reviewing school's head signs it.
    let err = Recheck::verify(
        &recheck.sign(&SigningKey::from_bytes(&[62; 32])).unwrap(),
        &d,
        &rules(),
    )
    .unwrap_err();
    assert_eq!(err, StatementError::BadSignature);
    // The participant's own school cannot be the reviewer.
    let own = Draft {
        reviewer: school(),
        ..draft(15)
    };
    assert!(Recheck::score(own, &rules()).is_err());
}

#[test]
fn only_the_reviewing_commission_in_force_signs_a_recheck() {
    let recheck = Recheck::score(draft(15), &rules()).unwrap();
    recheck
        .check_commission(&orders(vec![reviewing_expert()], head()))
        .unwrap();
    let err = recheck
        .check_commission(&orders(vec![expert(1)], head()))
        .unwrap_err();
    assert!(err.to_string().contains("does not name exp-r1"), "{err}");
    let err = recheck
        .check_commission(&orders(
            vec![reviewing_expert()],
            PersonId::new("head-9").unwrap(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("head-9"), "{err}");
    let err = recheck
        .check_commission(&Orders { editions: vec![] })
        .unwrap_err();
    assert!(err.to_string().contains("no commission order"), "{err}");
    // An order for another kind of exam (an essay's commission) is not the ИС commission's.
    let err = recheck
        .check_commission(&orders_for(
            "essay-2024-02-07",
            vec![reviewing_expert()],
            head(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("no commission order"), "{err}");
}

/// A protocol holding `sheets` and the РЦОИ's document for the school holding `rechecks`.
fn documents(
    sheets: &[crate::record::SignedSheet],
    rechecks: &[Statement],
) -> (AutoCommit, AutoCommit) {
    let mut protocol = AutoCommit::new();
    for s in sheets {
        crate::content::put_sheet(&mut protocol, s, expert(1), b"cert").unwrap();
    }
    let mut rcoi = AutoCommit::new();
    // The register's first attempt of p1 on this date is their second (a retake).
    crate::content::put_registered_admission(
        &mut rcoi,
        ParticipantId::new("p1").unwrap(),
        Attempt::new(2).unwrap(),
        "fail",
    )
    .unwrap();
    for r in rechecks {
        verdict::put_counted(&mut rcoi, r, b"cert").unwrap();
    }
    (protocol, rcoi)
}

fn published(protocol: &AutoCommit, rcoi: &AutoCommit) -> Vec<(u8, u16, Outcome)> {
    let d = directory_with_head();
    let settled = resolve_protocol(
        protocol,
        Some(rcoi),
        (&rules(), &BTreeSet::from([Settler::Chair])),
        |_| &d,
    );
    let p = Published::from_protocol(&settled, subject("p1").exam, school(), 1, at(300)).unwrap();
    p.rows
        .iter()
        .map(|r| (r.attempt, r.total, r.outcome))
        .collect()
}

#[test]
fn the_recheck_result_counts_over_the_original() {
    let mut original = crate::record::fixtures::draft("p1", 4, 1);
    original.subject = attempt_2("p1");
    let sheet = sign(original, 1);
    let (protocol, rcoi) = documents(std::slice::from_ref(&sheet), &[]);
    assert_eq!(published(&protocol, &rcoi), vec![(2, 4, Outcome::Fail)]);
    let recheck = Recheck::score(draft(15), &rules())
        .unwrap()
        .sign(&head_key())
        .unwrap();
    let (protocol, rcoi) = documents(std::slice::from_ref(&sheet), &[recheck]);
    assert_eq!(published(&protocol, &rcoi), vec![(2, 15, Outcome::Pass)]);
    // A later re-check of the same attempt (a second grant) counts over the first.
    let later = Recheck::score(
        Draft {
            at: at(400),
            ..draft(9)
        },
        &rules(),
    )
    .unwrap()
    .sign(&head_key())
    .unwrap();
    let first = Recheck::score(draft(15), &rules())
        .unwrap()
        .sign(&head_key())
        .unwrap();
    let (protocol, rcoi) = documents(std::slice::from_ref(&sheet), &[later, first]);
    assert_eq!(published(&protocol, &rcoi), vec![(2, 9, Outcome::Fail)]);
    // One the РЦОИ's document holds but that does not verify counts for nothing.
    let forged = Recheck::score(draft(15), &rules())
        .unwrap()
        .sign(&SigningKey::from_bytes(&[62; 32]))
        .unwrap();
    let (protocol, rcoi) = documents(&[sheet], &[forged]);
    assert_eq!(published(&protocol, &rcoi), vec![(2, 4, Outcome::Fail)]);
}

/// The exports count an attempt as the publication does: a counted re-check's result over the
/// original sheet's, in `results.csv` (status `rechecked`) and in `federal.xml`.
#[test]
fn the_exports_give_the_recheck_result_the_publication_gives() {
    let mut original = crate::record::fixtures::draft("p1", 4, 1);
    original.subject = attempt_2("p1");
    let sheet = sign(original, 1);
    let recheck = Recheck::score(draft(15), &rules())
        .unwrap()
        .sign(&head_key())
        .unwrap();
    let recheck_hash = recheck.hash();
    let (mut protocol, mut rcoi) = documents(std::slice::from_ref(&sheet), &[recheck]);
    assert_eq!(published(&protocol, &rcoi), vec![(2, 15, Outcome::Pass)]);
    let exam = subject("p1").exam;
    let id = |kind: &str| -> crate::sync::DocId {
        format!("{kind}/4201/{}/{exam}", school()).parse().unwrap()
    };
    let (protocol, rcoi) = (protocol.document().clone(), rcoi.document().clone());
    let docs = [(id("protocol"), &protocol), (id("rcoi"), &rcoi)];
    let d = directory_with_head();
    let chair = BTreeSet::from([Settler::Chair]);
    let files = crate::export::build(docs, exam, (&rules(), &chair), |_| &d);
    let results = files.iter().find(|f| f.name == "results.csv").unwrap();
    let text = String::from_utf8(results.bytes.clone()).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        rows,
        [format!(
            "4201,{},{exam},p1,2,rechecked,15,pass,recheck {recheck_hash}",
            school()
        )]
    );
    let (xml, n) = crate::federal::build(docs, ("42", exam), (&rules(), &chair), |_| &d);
    assert_eq!(n, 1);
    let xml = String::from_utf8(xml).unwrap();
    assert!(
        xml.contains("<Result>зачет</Result>\n    <Mark>15</Mark>"),
        "{xml}"
    );
}

fn a_grant(until: Timestamp) -> Grant {
    let request = request().sign(&head_key()).unwrap();
    let mut original = crate::record::fixtures::draft("p1", 4, 1);
    original.subject = attempt_2("p1");
    Grant {
        id: request.hash(),
        request,
        recording: Recording {
            blob: BlobRef::new(recording(), 1000).unwrap(),
            room: RoomCode::new("101").unwrap(),
            subject: Subject::Participant {
                id: ParticipantId::new("p1").unwrap(),
                attempt: Attempt::new(2).unwrap(),
            },
            format: AudioFormat::Wav,
            duration_ms: 60_000,
            file_name: "2024-03-13_101_420101_p1_2.wav".into(),
            added_by: None,
            added_at_ms: at(10).unix_ms(),
        },
        category: Category::Standard,
        sheets: vec![sign(original, 1)],
        certs: [("exp-1".to_owned(), b"cert".to_vec())].into(),
        granted_at: at(150),
        until,
        closed: None,
    }
}

#[test]
fn a_grant_reads_back_whole_and_ends() {
    let g = a_grant(at(1000));
    let mut doc = AutoCommit::new();
    grant::put(&mut doc, &g).unwrap();
    let answers = grant::answers(&doc);
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers.get(&g.id),
        Some(&Answer::Granted(Box::new(g.clone())))
    );
    assert!(g.live(at(999)));
    assert!(!g.live(at(1000)), "the term is over at `until`");
    grant::put_closed(&mut doc, g.id, at(500)).unwrap();
    let (closed, read) = grant::grants(&doc).pop().unwrap();
    assert_eq!(read, request());
    assert_eq!(closed.closed, Some(at(500)));
    assert!(!closed.live(at(501)));
    // Closed, it no longer shows the participant's sheets or their experts' certificates.
    assert!(
        closed.sheets.is_empty() && closed.certs.is_empty(),
        "{closed:?}"
    );
    assert_eq!(closed.recording, g.recording);
    // A damaged field reads as no grant at all: nothing is given by it.
    doc.put(ROOT, format!("grant/{}/until", g.id), "soon")
        .unwrap();
    assert!(grant::answers(&doc).is_empty());
}

#[test]
fn a_refused_request_reads_as_refused_with_nothing_granted() {
    let request = request().sign(&head_key()).unwrap();
    let mut doc = AutoCommit::new();
    grant::put_refused(&mut doc, &request, "нет повторного «незачёта»").unwrap();
    match grant::answers(&doc).remove(&request.hash()) {
        Some(Answer::Refused { reason, .. }) => assert!(reason.contains("незачёта")),
        other => panic!("{other:?}"),
    }
    assert!(grant::grants(&doc).is_empty());
    assert!(crate::recording::recordings(&doc).is_empty());
}
