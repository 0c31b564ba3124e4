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
            giasync_shared::content::put_registered_admission_kind(tx, pid(p), &failed())?;
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

/// The year's data with re-check terms that fit the tests' exam day (applications until 30 days
/// after it): the shipped 2024 file with its `apply_by` moved, as a region's file of this year
/// would set it.
fn this_year() -> giasync_shared::year::YearData {
    let text = giasync_shared::year::YEAR_2024_TOML.replace(
        "apply_by = \"2024-04-01\"",
        &format!("apply_by = \"{}\"", exam().date().add_days(30).unwrap()),
    );
    giasync_shared::year::YearData::parse(&text, "this-year.toml").unwrap()
}

/// The РЦОИ's and the reviewing school's engines and contexts, on this year's data.
fn rcoi_and_reviewer() -> ((Engine, Context), (Engine, Context)) {
    let (rcoi, mut rc) = node("42");
    let (reviewer, mut rv) = node(REVIEWER);
    rc.year = this_year();
    rv.year = this_year();
    ((rcoi, rc), (reviewer, rv))
}

/// Admitted to this date after a «незачёт» on the main date.
fn failed() -> giasync_shared::retake::Admission {
    giasync_shared::retake::Admission::Failed {
        date: "2024-02-14".parse().unwrap(),
    }
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
    request_at(participant, 0)
}

/// A request for `participant` signed `shift_ms` from now (another request for the same
/// attempt), the application filed today.
fn request_at(participant: &str, shift_ms: i64) -> Command {
    let (head, key, cert) = person(REVIEWER, PersonRole::Head, 0);
    let statement = Request {
        subject: subject(participant),
        applied: exam().date(),
        reviewer: SchoolCode::new(REVIEWER).unwrap(),
        head: head.id,
        at: now().plus_ms(shift_ms),
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
    let ((mut rcoi, rc), (mut reviewer, rv)) = rcoi_and_reviewer();
    let (mut school, sc) = the_first_school(&mut rcoi, &rc);
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
        RequestState::Refused { reason } => assert!(reason.contains("«зачёт» (20)"), "{reason}"),
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

/// The re-check's score sheet of the reviewing commission (full marks) for p1 under `grant`, by
/// `category`, signed at `at` by the reviewing school's head.
fn recheck_record(
    rv: &Context,
    grant: giasync_shared::record::RecordHash,
    category: Category,
    at: Timestamp,
) -> giasync_shared::statement::Statement {
    let (head, head_key, _) = person(REVIEWER, PersonRole::Head, 0);
    let (expert, _, _) = person(REVIEWER, PersonRole::Expert, 0);
    let rules = &rv.rules;
    let points = rules
        .category(category)
        .unwrap()
        .criteria(rules)
        .map(|c| (c.id, i64::from(c.max)))
        .collect();
    Recheck::score(
        Draft {
            subject: subject("p1"),
            reviewer: SchoolCode::new(REVIEWER).unwrap(),
            grant,
            recording: BlobHash([1; 32]),
            category,
            points,
            experts: vec![expert.id],
            chair: head.id,
            at,
        },
        rules,
    )
    .unwrap()
    .sign(&head_key)
    .unwrap()
}

/// What the РЦОИ lists for p1's requests, in order of request.
fn states(rcoi: &mut Engine, rc: &Context) -> Vec<RequestState> {
    let Answer::Rechecks { requests } = console(rcoi, rc, Command::Rechecks) else {
        panic!("not rechecks");
    };
    requests.into_iter().map(|r| r.state).collect()
}

#[test]
fn a_grant_is_one_at_a_time_and_a_recheck_counts_only_within_it_and_by_the_register() {
    const DAY_MS: i64 = 86_400_000;
    let ((mut rcoi, rc), (mut reviewer, rv)) = rcoi_and_reviewer();
    let (mut school, sc) = the_first_school(&mut rcoi, &rc);
    the_reviewing_commission(&mut reviewer, &rv);
    let (head, _, head_cert) = person(REVIEWER, PersonRole::Head, 0);
    let as_head = Actor::Person(head.clone());
    let file = |reviewer: &mut Engine, command: Command| {
        let Answer::RecheckFiled(f) = run(reviewer, &rv, &as_head, command).unwrap() else {
            panic!("not filed");
        };
        f.record
    };
    let grant = |rcoi: &mut Engine, request| {
        let Answer::RecheckAnswered(a) = console(rcoi, &rc, Command::RecheckGrant { request })
        else {
            panic!("not answered");
        };
        a.state
    };

    // Not admitted after a «незачёт» (the register says removed): refused.
    rcoi.change(now_ms(), doc("rcoi", SCHOOL), |tx| {
        giasync_shared::content::put_registered_admission_kind(
            tx,
            pid("p1"),
            &giasync_shared::retake::Admission::Removed {
                date: "2024-02-14".parse().unwrap(),
            },
        )
    })
    .unwrap();
    let first = file(&mut reviewer, request_at("p1", 0));
    sync(&mut rcoi, &mut reviewer);
    match grant(&mut rcoi, first) {
        RequestState::Refused { reason } => assert!(reason.contains("не после"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Admitted after a «незачёт»: granted; a second request for the attempt while the grant is
    // open is refused.
    rcoi.change(now_ms(), doc("rcoi", SCHOOL), |tx| {
        giasync_shared::content::put_registered_admission_kind(tx, pid("p1"), &failed())
    })
    .unwrap();
    let second = file(&mut reviewer, request_at("p1", 1000));
    let third = file(&mut reviewer, request_at("p1", 2000));
    sync(&mut rcoi, &mut reviewer);
    assert!(matches!(
        grant(&mut rcoi, second),
        RequestState::Granted { .. }
    ));
    match grant(&mut rcoi, third) {
        RequestState::Refused { reason } => assert!(reason.contains("уже передана"), "{reason}"),
        other => panic!("{other:?}"),
    }
    sync(&mut rcoi, &mut reviewer);

    // Scored by another category than the register's (autism passes from 3 of 6): refused.
    let by_autism = recheck_record(&rv, second, Category::Autism, now());
    assert_refused!(
        run(
            &mut reviewer,
            &rv,
            &as_head,
            Command::RecheckSign {
                statement: by_autism.as_bytes().to_vec(),
                cert: head_cert.clone(),
            }
        ),
        Error::NoOpenGrant { .. }
    );

    // The term passes (7 days in the year's data): the РЦОИ closes the grant.
    let later = now_ms() + 8 * DAY_MS;
    assert_eq!(
        crate::app::recheck::close_expired(&mut rcoi, later).unwrap(),
        1
    );
    assert_eq!(
        crate::app::recheck::close_expired(&mut rcoi, later).unwrap(),
        0
    );
    // A re-check dated within the term, written straight into the reviewing school's protocol
    // (a school writes its own protocol, whatever its node checks), is not counted.
    let backdated = recheck_record(&rv, second, Category::Standard, now());
    reviewer
        .change(now_ms(), doc("protocol", REVIEWER), |tx| {
            giasync_shared::recheck::verdict::put_signed(tx, &backdated, head.id, &head_cert)
        })
        .unwrap();
    sync(&mut rcoi, &mut reviewer);
    assert!(!crate::app::react(
        &mut rcoi,
        &rc,
        &[doc("protocol", REVIEWER)],
        later
    ));
    let listed = states(&mut rcoi, &rc);
    let signed = listed
        .iter()
        .filter(|s| matches!(s, RequestState::Signed { total: 20, .. }))
        .count();
    let refused = listed
        .iter()
        .filter(|s| matches!(s, RequestState::Refused { .. }))
        .count();
    assert_eq!((listed.len(), signed, refused), (3, 1, 2), "{listed:?}");
    sync(&mut rcoi, &mut school);
    let Answer::Results(results) = console(&mut school, &sc, Command::Results { exam: exam() })
    else {
        panic!("not results");
    };
    assert!(
        results
            .rows
            .iter()
            .any(|r| r.participant == pid("p1") && r.outcome == Outcome::Fail),
        "{results:?}"
    );
}
