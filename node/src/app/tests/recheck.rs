//! Re-check by another school's commission (seed 002 §71–73), end to end on in-memory engines:
//! the reviewing school's head asks, the РЦОИ grants one recording and one participant's sheets
//! (and refuses another participant's request), the reviewing commission's chair signs, and the
//! re-check's result counts at the participant's school.

use giasync_shared::blob::{BlobHash, BlobRef};
use giasync_shared::commission::{Commission, RoomCommission};
use giasync_shared::recheck::Request;
use giasync_shared::recheck::verdict::{Draft, Recheck};
use giasync_shared::recording::{Recording, Subject};
use giasync_shared::sync::DocId;

use super::*;
use crate::app::recheck::RequestState;

const REVIEWER: &str = "420102";

fn doc(kind: &str, school: &str) -> DocId {
    format!("{kind}/4201/{school}/{}", exam()).parse().unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_unix_ms(now_ms()).unwrap()
}

/// The recording of `participant`'s second attempt, as the school's protocol names it.
fn recording(participant: &str, seed: u8) -> Recording {
    Recording {
        blob: BlobRef::new(BlobHash([seed; 32]), 48_000).unwrap(),
        room: room("101"),
        subject: Subject::Participant {
            id: pid(participant),
            attempt: Attempt::new(2).unwrap(),
        },
        format: giasync_shared::audio::AudioFormat::Wav,
        duration_ms: 180_000,
        file_name: format!("{}_101_{SCHOOL}_{participant}_2.wav", exam().date()),
        added_by: None,
        added_at_ms: now_ms(),
    }
}

/// The participant's school on a retake date: p1 fails their second attempt and p2 passes it,
/// each recorded; the РЦОИ holds both recordings and has published the results.
fn the_first_school(rcoi: &mut Engine, rc: &Context) -> (Engine, Context) {
    let (mut school, sc) = school_with_roster();
    rcoi.change(now_ms(), doc("rcoi", SCHOOL), |tx| {
        for p in ["p1", "p2"] {
            giasync_shared::content::put_registered_category(tx, pid(p), Category::Standard)?;
            giasync_shared::content::put_registered_admission(
                tx,
                pid(p),
                Attempt::new(2).unwrap(),
                "fail",
            )?;
        }
        Ok(())
    })
    .unwrap();
    sync(rcoi, &mut school);
    let (expert, key, cert) = person(SCHOOL, PersonRole::Expert, 0);
    for (p, low) in [("p1", 100), ("p2", 0)] {
        let sheet = sheet_for_attempt(&expert, &key, &sc, (exam(), p, 2), low, now());
        console(
            &mut school,
            &sc,
            Command::Score {
                exam: exam(),
                sheet,
                expert: expert.id,
                expert_cert: cert.clone(),
            },
        );
    }
    school
        .change(now_ms(), doc("protocol", SCHOOL), |tx| {
            giasync_shared::recording::put_recording(tx, &recording("p1", 1))?;
            giasync_shared::recording::put_recording(tx, &recording("p2", 2))
        })
        .unwrap();
    sync(rcoi, &mut school);
    for seed in [1, 2] {
        let blob = BlobRef::new(BlobHash([seed; 32]), 48_000).unwrap();
        crate::app::recordings::receipt(rcoi, now_ms(), blob, &[doc("protocol", SCHOOL)]).unwrap();
    }
    console(rcoi, rc, Command::Publish { exam: exam() });
    sync(rcoi, &mut school);
    (school, sc)
}

/// The reviewing school's commission order: its head, and its first expert in room 201.
fn the_reviewing_commission(reviewer: &mut Engine, rv: &Context) {
    let (head, head_key, head_cert) = person(REVIEWER, PersonRole::Head, 0);
    let (expert, _, _) = person(REVIEWER, PersonRole::Expert, 0);
    let (interviewer, _, _) = person(REVIEWER, PersonRole::Interviewer, 0);
    console(
        reviewer,
        rv,
        Command::Rooms {
            exam: exam(),
            rooms: vec![(room("201"), 10)],
        },
    );
    let order = Commission {
        exam: exam(),
        school: SchoolCode::new(REVIEWER).unwrap(),
        edition: 1,
        head: head.id,
        at: now(),
        rooms: vec![RoomCommission {
            room: room("201"),
            interviewers: vec![interviewer.id],
            experts: vec![expert.id],
        }],
    };
    console(
        reviewer,
        rv,
        Command::Commission {
            exam: exam(),
            statement: order.sign(&head_key).unwrap().as_bytes().to_vec(),
            head_cert,
        },
    );
}

fn subject(participant: &str) -> SheetSubject {
    SheetSubject {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: pid(participant),
        attempt: Attempt::new(2).unwrap(),
    }
}

fn request(participant: &str) -> Command {
    let (head, key, cert) = person(REVIEWER, PersonRole::Head, 0);
    let statement = Request {
        subject: subject(participant),
        applied: "2024-03-20".parse().unwrap(),
        reviewer: SchoolCode::new(REVIEWER).unwrap(),
        head: head.id,
        at: now(),
    }
    .sign(&key)
    .unwrap();
    Command::RecheckRequest {
        statement: statement.as_bytes().to_vec(),
        cert,
    }
}

#[test]
fn a_grant_gives_one_recording_and_one_participants_sheets_and_the_recheck_counts() {
    let (mut rcoi, rc) = node("42");
    let (mut school, sc) = the_first_school(&mut rcoi, &rc);
    let (mut reviewer, rv) = node(REVIEWER);
    the_reviewing_commission(&mut reviewer, &rv);
    let (head, head_key, head_cert) = person(REVIEWER, PersonRole::Head, 0);
    let as_head = Actor::Person(head.clone());

    // The head asks for p1 (second «незачёт») and p2 (passed); an expert may not ask.
    let (expert, _, expert_cert) = person(REVIEWER, PersonRole::Expert, 0);
    assert_refused!(
        run(
            &mut reviewer,
            &rv,
            &Actor::Person(expert.clone()),
            request("p1")
        ),
        Error::Forbidden {
            action: Action::Recheck,
            ..
        }
    );
    let Answer::RecheckFiled(p1) = run(&mut reviewer, &rv, &as_head, request("p1")).unwrap() else {
        panic!("not filed");
    };
    let Answer::RecheckFiled(p2) = run(&mut reviewer, &rv, &as_head, request("p2")).unwrap() else {
        panic!("not filed");
    };
    sync(&mut rcoi, &mut reviewer);

    // The РЦОИ grants p1's and refuses p2's, naming why; it answers each once.
    let Answer::RecheckAnswered(granted) =
        console(&mut rcoi, &rc, Command::RecheckGrant { request: p1.record })
    else {
        panic!("not answered");
    };
    assert!(
        matches!(granted.state, RequestState::Granted { .. }),
        "{granted:?}"
    );
    let Answer::RecheckAnswered(refused) =
        console(&mut rcoi, &rc, Command::RecheckGrant { request: p2.record })
    else {
        panic!("not answered");
    };
    match &refused.state {
        RequestState::Refused { reason } => assert!(reason.contains("зачёт"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_refused!(
        run(
            &mut rcoi,
            &rc,
            &Actor::Console,
            Command::RecheckGrant { request: p1.record }
        ),
        Error::RecheckAnswered(_)
    );
    // A school cannot grant.
    assert_refused!(
        run(
            &mut reviewer,
            &rv,
            &Actor::Console,
            Command::RecheckGrant { request: p1.record }
        ),
        Error::NotTheRcoi { .. }
    );
    sync(&mut rcoi, &mut reviewer);

    // What the reviewing school may read: exactly p1's recording and p1's sheet, and no
    // document of the first school.
    let Answer::RecheckGrants { grants } =
        console(&mut reviewer, &rv, Command::RecheckGrants { exam: exam() })
    else {
        panic!("not grants");
    };
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].subject, subject("p1"));
    assert_eq!(grants[0].recording.hash, BlobHash([1; 32]));
    assert_eq!(grants[0].sheets.len(), 1);
    assert_eq!(grants[0].sheets[0].2, Outcome::Fail);
    assert!(grants[0].open);
    assert!(
        !reviewer
            .doc_ids()
            .any(|d| d.school() == Some(SchoolCode::new(SCHOOL).unwrap())),
        "the reviewing school holds a document of the first school"
    );
    let all: Vec<DocId> = reviewer.doc_ids().copied().collect();
    let fetched: Vec<BlobHash> = crate::app::recordings::plan(&reviewer, &all)
        .into_iter()
        .filter(|p| p.fetch && p.named)
        .map(|p| p.blob.hash)
        .collect();
    assert_eq!(fetched, vec![BlobHash([1; 32])]);
    // At the РЦОИ the grant names the recording in the reviewing school's document.
    let at_rcoi = crate::app::recordings::plan(&rcoi, &[doc("rcoi", REVIEWER)]);
    assert_eq!(at_rcoi.len(), 1);
    assert!(at_rcoi[0].named && at_rcoi[0].doc == doc("rcoi", REVIEWER));

    // The chair signs the commission's re-check: 20 points, зачёт. Naming an expert the
    // order does not name is refused.
    let recheck = |experts: Vec<PersonId>| {
        let rules = &rv.rules;
        let points = rules
            .category(Category::Standard)
            .unwrap()
            .criteria(rules)
            .map(|c| (c.id, i64::from(c.max)))
            .collect();
        Recheck::score(
            Draft {
                subject: subject("p1"),
                reviewer: SchoolCode::new(REVIEWER).unwrap(),
                grant: p1.record,
                recording: BlobHash([1; 32]),
                category: Category::Standard,
                points,
                experts,
                chair: head.id,
                at: now(),
            },
            rules,
        )
        .unwrap()
        .sign(&head_key)
        .unwrap()
        .as_bytes()
        .to_vec()
    };
    let (outsider, _, _) = person(REVIEWER, PersonRole::Expert, 1);
    assert_refused!(
        run(
            &mut reviewer,
            &rv,
            &as_head,
            Command::RecheckSign {
                statement: recheck(vec![outsider.id]),
                cert: head_cert.clone(),
            }
        ),
        Error::RecheckRefused(_)
    );
    // An expert may not hand one in, even their own signature under their own certificate.
    assert_refused!(
        run(
            &mut reviewer,
            &rv,
            &Actor::Person(expert.clone()),
            Command::RecheckSign {
                statement: recheck(vec![expert.id]),
                cert: expert_cert,
            }
        ),
        Error::Forbidden {
            action: Action::Recheck,
            ..
        }
    );
    let Answer::RecheckFiled(signed) = run(
        &mut reviewer,
        &rv,
        &as_head,
        Command::RecheckSign {
            statement: recheck(vec![expert.id]),
            cert: head_cert.clone(),
        },
    )
    .unwrap() else {
        panic!("not filed");
    };
    assert_eq!(signed.subject, subject("p1"));

    // The РЦОИ counts it, closes the grant and publishes the first school's results again.
    sync(&mut rcoi, &mut reviewer);
    assert!(crate::app::react(
        &mut rcoi,
        &rc,
        &[doc("protocol", REVIEWER)],
        now_ms()
    ));
    let Answer::Rechecks { requests: rows } = console(&mut rcoi, &rc, Command::Rechecks) else {
        panic!("not rechecks");
    };
    let states: Vec<(String, RequestState)> = rows
        .into_iter()
        .map(|r| (r.subject.participant.to_string(), r.state))
        .collect();
    assert!(
        matches!(
            &states[..],
            [
                (p1, RequestState::Rechecked { total: 20, outcome: Outcome::Pass }),
                (p2, RequestState::Refused { .. }),
            ] if p1 == "p1" && p2 == "p2"
        ),
        "{states:?}"
    );
    sync(&mut rcoi, &mut school);
    let Answer::Results(results) = console(&mut school, &sc, Command::Results { exam: exam() })
    else {
        panic!("not results");
    };
    let p1_result: Vec<(u8, u16, Outcome)> = results
        .rows
        .iter()
        .filter(|r| r.participant == pid("p1"))
        .map(|r| (r.attempt, r.total, r.outcome))
        .collect();
    assert_eq!(p1_result, vec![(2, 20, Outcome::Pass)]);

    // The grant is closed: the reviewing school no longer fetches or keeps the recording, and
    // no document names it for the school any more.
    sync(&mut rcoi, &mut reviewer);
    let plans = crate::app::recordings::plan(&reviewer, &[doc("rcoi", REVIEWER)]);
    assert_eq!(plans.len(), 1);
    assert!(
        !plans[0].named && !plans[0].fetch && !plans[0].keep,
        "{plans:?}"
    );
    // A second re-check under the closed grant is refused.
    assert_refused!(
        run(
            &mut reviewer,
            &rv,
            &as_head,
            Command::RecheckSign {
                statement: recheck(vec![expert.id]),
                cert: head_cert,
            }
        ),
        Error::NoOpenGrant { .. }
    );
}
