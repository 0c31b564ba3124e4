//! The application layer's commands on an in-memory engine: no socket, no store, no browser.
//! Identities, certificates and person keys come from a demo region made once (the production
//! X.509 path, with a fast key-derivation setting); expectations are written out here, not
//! computed with the code under test.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use giasync_certs::demo::{DemoOptions, Region, demo};
use giasync_certs::keyfile::{KdfParams, Pin};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::ExamId;
use giasync_shared::identity::{Identity, PersonIdentity};
use giasync_shared::participant::Category;
use giasync_shared::record::{Attempt, SheetDraft, SheetSubject, SignedSheet};
use giasync_shared::room::{ActNumber, Attendance};
use giasync_shared::rules::Outcome;
use giasync_shared::sync::Engine;

use super::command::{LookupQuery, Marking, RegionRow, RosterEntry, RosterEntryWire};
use super::day::{DayVerdict, Receipt, SheetState};
use super::{Action, Actor, Answer, Command, Context, Error, RcoiDuty, RowFault, apply};

/// Asserts that `outcome` is the refusal `pattern`, showing what it was otherwise.
macro_rules! assert_refused {
    ($outcome:expr, $pattern:pat) => {{
        let outcome = &$outcome;
        assert!(matches!(outcome, Err($pattern)), "{outcome:?}");
    }};
}

mod essay;
mod recheck;

/// The demo region's clock (Кемерово, UTC+07:00): the exam is today on it, so sheets signed now
/// are signed on the exam's day.
const CLOCK: &str = "+07:00";

/// The tests' clock: noon today on the demo region's clock, the same for every call in a test
/// (so no test sees the exam day change under it, whatever the hour it runs at). The fixture's
/// region is made the day before, so its certificates are valid then.
fn now_ms() -> i64 {
    static NOON: OnceLock<i64> = OnceLock::new();
    *NOON.get_or_init(|| {
        let clock: giasync_shared::calendar::UtcOffset = CLOCK.parse().unwrap();
        let real = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let today = Timestamp::from_unix_ms(real).unwrap().date_at(clock);
        today.day_window_ms(clock).start + 12 * 3_600_000
    })
}

/// When the fixture's region is made: the start of the day before the tests' day.
fn region_made() -> time::OffsetDateTime {
    let ms = now_ms() - 36 * 3_600_000;
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap()
}
const SCHOOL: &str = "420101";

struct Fixture {
    _dir: tempfile::TempDir,
    out: PathBuf,
    region: Region,
}

fn fixture() -> &'static Fixture {
    static REGION: OnceLock<Fixture> = OnceLock::new();
    REGION.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("region");
        let options = DemoOptions {
            out: out.clone(),
            municipalities: 1,
            schools_per_municipality: 2,
            base_port: 47_900,
            kdf: KdfParams {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
            https: false,
            utc_offset: None,
        };
        let region = demo(&options, region_made()).unwrap();
        Fixture {
            _dir: dir,
            out,
            region,
        }
    })
}

/// The engine (nothing stored yet) and context of the demo node with `code`.
fn node(code: &str) -> (Engine, Context) {
    let f = fixture();
    let n = f.region.nodes.iter().find(|n| n.code == code).unwrap();
    let config = NodeConfig::load(&f.out.join(&n.dir).join("node.toml")).unwrap();
    let context = Context::load(&config).unwrap();
    let material = crate::transport::TlsMaterial::from_config(&config.tls).unwrap();
    let key = crate::person::load_node_key(&config.tls.key).unwrap();
    let cert = material.cert_chain[0].to_vec();
    let engine = Engine::new(
        material.identity,
        key,
        cert,
        Box::new(context.verifier.clone()),
    );
    (engine, context)
}

/// A demo person of `org` with `role`, the `n`th: identity, unlocked key, certificate.
fn person(org: &str, role: PersonRole, n: usize) -> (PersonIdentity, SigningKey, Vec<u8>) {
    let f = fixture();
    let p = f
        .region
        .people
        .iter()
        .filter(|p| p.org == org && p.role == role)
        .nth(n)
        .unwrap();
    let key = giasync_certs::keyfile::open(
        &std::fs::read(f.out.join(&p.key)).unwrap(),
        &Pin::new(p.pin.clone()).unwrap(),
    )
    .unwrap();
    let cert = giasync_certs::show::certs_from_pem(&std::fs::read(f.out.join(&p.cert)).unwrap())
        .unwrap()
        .remove(0);
    let Identity::Person(identity) = giasync_certs::identity::from_cert_der(&cert).unwrap() else {
        panic!("not a person's certificate");
    };
    (identity, key, cert)
}

fn exam() -> ExamId {
    let today = Timestamp::from_unix_ms(now_ms())
        .unwrap()
        .date_at(CLOCK.parse().unwrap());
    format!("is-{today}").parse().unwrap()
}

/// `local_ms` after the start of the exam's day on the region's clock.
fn on_exam_day(local_ms: i64) -> Timestamp {
    let start = exam().date().day_window_ms(CLOCK.parse().unwrap()).start;
    Timestamp::from_unix_ms(start + local_ms).unwrap()
}

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id).unwrap()
}

fn room(code: &str) -> RoomCode {
    RoomCode::new(code).unwrap()
}

fn row(id: &str, room: Option<&str>) -> RosterEntry {
    RosterEntryWire {
        id: id.into(),
        surname: "Иванова".into(),
        name: "Анна".into(),
        patronymic: String::new(),
        series: "3204".into(),
        number: format!("{id}0"),
        class: "9А".into(),
        category: "standard".into(),
        disabled: false,
        written: false,
        room: room.map(Into::into),
    }
    .try_into()
    .unwrap()
}

fn run(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    command: Command,
) -> Result<Answer, Error> {
    apply(engine, context, actor, now_ms(), command)
}

fn console(engine: &mut Engine, context: &Context, command: Command) -> Answer {
    run(engine, context, &Actor::Console, command).unwrap()
}

/// A school with rooms 101 (2 seats) and 102, and participants p1, p2 in 101 and p3 unplaced.
fn school_with_roster() -> (Engine, Context) {
    let (mut e, c) = node(SCHOOL);
    console(
        &mut e,
        &c,
        Command::Rooms {
            exam: exam(),
            rooms: vec![(room("101"), 2), (room("102"), 30)],
        },
    );
    console(
        &mut e,
        &c,
        Command::RosterImport {
            exam: exam(),
            rows: vec![
                row("p1", Some("101")),
                row("p2", Some("101")),
                row("p3", None),
            ],
        },
    );
    (e, c)
}

/// A sheet for `participant` signed by `key` of `expert` with every criterion at its maximum
/// but `low` of them at 0.
fn sheet(
    expert: &PersonIdentity,
    key: &SigningKey,
    context: &Context,
    participant: &str,
    low: usize,
) -> Vec<u8> {
    let now = Timestamp::from_unix_ms(now_ms()).unwrap();
    sheet_signed(expert, key, context, (exam(), participant), low, now)
}

/// [`sheet`] for `participant` of `exam`, claiming to be signed at `signed_at`.
fn sheet_signed(
    expert: &PersonIdentity,
    key: &SigningKey,
    context: &Context,
    (exam, participant): (ExamId, &str),
    low: usize,
    signed_at: Timestamp,
) -> Vec<u8> {
    sheet_for_attempt(expert, key, context, (exam, participant, 1), low, signed_at)
}

/// [`sheet_signed`] for `attempt`.
fn sheet_for_attempt(
    expert: &PersonIdentity,
    key: &SigningKey,
    context: &Context,
    (exam, participant, attempt): (ExamId, &str, u8),
    low: usize,
    signed_at: Timestamp,
) -> Vec<u8> {
    let rules = context.rules.category(Category::Standard).unwrap();
    let points = rules
        .criteria(&context.rules)
        .enumerate()
        .map(|(i, c)| (c.id, if i < low { 0 } else { i64::from(c.max) }))
        .collect();
    let draft = SheetDraft {
        subject: SheetSubject {
            exam,
            school: SchoolCode::new(SCHOOL).unwrap(),
            participant: pid(participant),
            attempt: Attempt::new(attempt).unwrap(),
        },
        room: room("101"),
        category: Category::Standard,
        points,
        expert: expert.id,
        signed_at,
        correction: None,
    };
    SignedSheet::sign(draft, &context.rules, key)
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn score(
    expert: &PersonIdentity,
    key: &SigningKey,
    cert: &[u8],
    context: &Context,
    participant: &str,
    low: usize,
) -> Command {
    Command::Score {
        exam: exam(),
        sheet: sheet(expert, key, context, participant, low),
        expert: expert.id,
        expert_cert: cert.to_vec(),
    }
}

#[test]
fn the_rights_of_each_role_are_the_orders_table() {
    // Seed 002 §8, §22, written out: (action, organiser, interviewer, expert, technician,
    // operator, head, corridor).
    let table = [
        (Action::Read, [true, true, true, true, true, true, true]),
        (
            Action::EditRoster,
            [true, false, false, false, false, false, false],
        ),
        (Action::Mark, [true, true, false, false, false, false, true]),
        (
            Action::Log,
            [false, true, false, false, false, false, false],
        ),
        (
            Action::Score,
            [false, false, true, false, false, false, false],
        ),
        (
            Action::Familiarise,
            [true, false, false, false, false, false, false],
        ),
        (
            Action::WriteAct,
            [true, false, false, false, false, false, false],
        ),
        (
            Action::Operate,
            [false, false, false, false, true, false, false],
        ),
        (
            Action::SignCommission,
            [false, false, false, false, false, true, false],
        ),
        (
            Action::AddRecording,
            [true, false, false, true, false, false, false],
        ),
        (
            Action::Settle,
            [false, false, true, false, false, true, false],
        ),
    ];
    let roles = [
        PersonRole::Organiser,
        PersonRole::Interviewer,
        PersonRole::Expert,
        PersonRole::Technician,
        PersonRole::Operator,
        PersonRole::Head,
        PersonRole::Corridor,
    ];
    for (action, allowed) in table {
        for (role, expected) in roles.iter().zip(allowed) {
            assert_eq!(action.allowed(*role), expected, "{role:?} {action:?}");
        }
    }
}

#[test]
fn roster_import_writes_the_school_roster_and_a_hub_refuses_it() {
    let (mut e, c) = node(SCHOOL);
    let Answer::Imported(i) = console(
        &mut e,
        &c,
        Command::RosterImport {
            exam: exam(),
            rows: vec![row("p1", Some("101"))],
        },
    ) else {
        panic!("not an import");
    };
    assert_eq!(i.count, 1);
    assert_eq!(
        i.doc.to_string(),
        format!("roster/4201/{SCHOOL}/{}", exam())
    );
    let (mut rcoi, rc) = node("42");
    let refused = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::RosterImport {
            exam: exam(),
            rows: vec![row("p1", None)],
        },
    );
    assert_refused!(refused, Error::NotASchool { .. });
}

#[test]
fn a_roster_entry_reads_back_typed_and_an_unknown_participant_is_refused() {
    let (mut e, c) = school_with_roster();
    let Answer::Participant(p) = console(
        &mut e,
        &c,
        Command::Participant {
            exam: exam(),
            participant: pid("p1"),
        },
    ) else {
        panic!("not an entry");
    };
    assert_eq!(p.category, Some(Category::Standard));
    assert_eq!(p.room, Some(room("101")));
    assert_eq!(p.attendance, None);
    let Answer::Roster { entries } = console(&mut e, &c, Command::Roster { exam: exam() }) else {
        panic!("not a roster");
    };
    assert_eq!(
        entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["p1", "p2", "p3"]
    );
    let unknown = run(
        &mut e,
        &c,
        &Actor::Console,
        Command::Participant {
            exam: exam(),
            participant: pid("p9"),
        },
    );
    assert_refused!(unknown, Error::UnknownParticipant { .. });
}

#[test]
fn assignment_keeps_to_capacity_and_to_the_roster() {
    let (mut e, c) = school_with_roster();
    let assign = |p: &str, r: &str| Command::Assign {
        exam: exam(),
        participant: pid(p),
        room: room(r),
    };
    // Room 101 has two seats, both taken.
    let full = run(&mut e, &c, &Actor::Console, assign("p3", "101"));
    assert_refused!(full, Error::RoomFull { capacity: 2, .. });
    let Answer::Assigned(a) = console(&mut e, &c, assign("p3", "102")) else {
        panic!("not an assignment");
    };
    assert_eq!((a.participant, a.room), (pid("p3"), room("102")));
    let unknown = run(&mut e, &c, &Actor::Console, assign("p9", "102"));
    assert_refused!(unknown, Error::UnknownParticipant { .. });
    let (expert, _, _) = person(SCHOOL, PersonRole::Expert, 0);
    let forbidden = run(&mut e, &c, &Actor::Person(expert), assign("p3", "102"));
    assert_refused!(
        forbidden,
        Error::Forbidden {
            role: Some(PersonRole::Expert),
            action: Action::EditRoster
        }
    );
    // A bad capacity is refused by the domain type.
    let zero = run(
        &mut e,
        &c,
        &Actor::Console,
        Command::Rooms {
            exam: exam(),
            rooms: vec![(room("103"), 0)],
        },
    );
    assert_refused!(zero, Error::Invalid(_));
}

#[test]
fn attendance_is_marked_by_organiser_or_interviewer_only() {
    let (mut e, c) = school_with_roster();
    let mark = |p: &str, a: Attendance| {
        Command::Mark(Marking {
            exam: exam(),
            participant: pid(p),
            attendance: a,
        })
    };
    let (interviewer, _, _) = person(SCHOOL, PersonRole::Interviewer, 0);
    let early = Attendance::FinishedEarly {
        act: ActNumber::new("7").unwrap(),
    };
    run(
        &mut e,
        &c,
        &Actor::Person(interviewer),
        mark("p1", early.clone()),
    )
    .unwrap();
    let Answer::Participant(p) = console(
        &mut e,
        &c,
        Command::Participant {
            exam: exam(),
            participant: pid("p1"),
        },
    ) else {
        panic!("not an entry");
    };
    assert_eq!(p.attendance, Some(early.clone()));
    // Act № 7 is p1's: p2 cannot be marked by it; p1 may be marked by it again.
    let removed_by_7 = Attendance::Removed {
        act: ActNumber::new("7").unwrap(),
    };
    assert_refused!(
        run(&mut e, &c, &Actor::Console, mark("p2", removed_by_7)),
        Error::ActNumberTaken { .. }
    );
    console(&mut e, &c, mark("p1", early));
    // The other way round: a signed act may not take a number another participant's mark
    // carries.
    let (organiser, organiser_key, organiser_cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let act = giasync_shared::act::Act {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: pid("p2"),
        attempt: Attempt::FIRST,
        room: room("101"),
        kind: giasync_shared::act::ActKind::Removal,
        text: "телефон".into(),
        number: ActNumber::new("7").unwrap(),
        organiser: organiser.id,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
    };
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Person(organiser),
            Command::Act {
                exam: exam(),
                statement: act.sign(&organiser_key).unwrap().as_bytes().to_vec(),
                organiser_cert,
            }
        ),
        Error::ActNumberTaken { .. }
    );
    let unknown = run(&mut e, &c, &Actor::Console, mark("p9", Attendance::Absent));
    assert_refused!(unknown, Error::UnknownParticipant { .. });
    let (expert, _, _) = person(SCHOOL, PersonRole::Expert, 0);
    let forbidden = run(
        &mut e,
        &c,
        &Actor::Person(expert),
        mark("p2", Attendance::Absent),
    );
    assert_refused!(forbidden, Error::Forbidden { .. });
    // Nobody signed in writes nothing.
    let visitor = run(&mut e, &c, &Actor::Visitor, mark("p2", Attendance::Absent));
    assert_refused!(visitor, Error::Forbidden { role: None, .. });
}

#[test]
fn the_room_log_names_the_signed_in_interviewer() {
    let (mut e, c) = school_with_roster();
    let (interviewer, _, _) = person(SCHOOL, PersonRole::Interviewer, 0);
    // 09:00 on the exam's day in Кемерово (the demo region's clock, UTC+07:00).
    const HOUR_MS: i64 = 3_600_000;
    let at = on_exam_day(9 * HOUR_MS);
    let log = |p: &str, claimed: Option<PersonId>| Command::Log {
        exam: exam(),
        participant: pid(p),
        interviewer: claimed,
        at,
        end: false,
        variant: None,
    };
    // Claiming to be someone else does not work: the page's person is written.
    let other = PersonId::new("somebody-else").unwrap();
    let Answer::Logged(l) = run(
        &mut e,
        &c,
        &Actor::Person(interviewer.clone()),
        log("p1", Some(other)),
    )
    .unwrap() else {
        panic!("not a log entry");
    };
    assert_eq!(l.interviewer, Some(interviewer.id));
    let day = super::day::read(&e, &c, exam()).unwrap();
    let p1 = day.participant("p1").unwrap();
    assert_eq!(p1.start, Some(at));
    assert_eq!(p1.interviewer, Some(interviewer.id));
    // The CLI's `--at 2000-01-01…` and the last minute of the day before are both refused; the
    // day's own last minute is not.
    let last_minute_before = on_exam_day(-60_000);
    let last_minute = on_exam_day(24 * HOUR_MS - 60_000);
    for (when, refused) in [
        ("2000-01-01T00:00:00Z".parse().unwrap(), true),
        (last_minute_before, true),
        (last_minute, false),
    ] {
        let mut entry = log("p2", None);
        if let Command::Log { at, .. } = &mut entry {
            *at = when;
        }
        let outcome = run(&mut e, &c, &Actor::Console, entry);
        assert_eq!(
            matches!(outcome, Err(Error::OutsideExamDay { .. })),
            refused,
            "{when}: {outcome:?}"
        );
    }
    let unknown = run(&mut e, &c, &Actor::Console, log("p9", None));
    assert_refused!(unknown, Error::UnknownParticipant { .. });
    let (organiser, _, _) = person(SCHOOL, PersonRole::Organiser, 0);
    let forbidden = run(&mut e, &c, &Actor::Person(organiser), log("p1", None));
    assert_refused!(
        forbidden,
        Error::Forbidden {
            action: Action::Log,
            ..
        }
    );
}

#[test]
fn a_sheet_is_checked_before_it_is_stored_and_only_its_signer_hands_it_in() {
    let (mut e, c) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    let (b, _, _) = person(SCHOOL, PersonRole::Expert, 1);
    // All 14 criteria of the standard category at their maximum: 20 of 20, зачёт.
    let Answer::Scored(s) = run(
        &mut e,
        &c,
        &Actor::Person(a.clone()),
        score(&a, &a_key, &a_cert, &c, "p1", 0),
    )
    .unwrap() else {
        panic!("not a score");
    };
    assert_eq!((s.total, s.outcome), (20, Outcome::Pass));
    // Expert b hands in a's sheet.
    let other = run(
        &mut e,
        &c,
        &Actor::Person(b),
        score(&a, &a_key, &a_cert, &c, "p2", 0),
    );
    assert_refused!(other, Error::NotTheSigner { .. });
    // One changed byte of the content.
    let mut bytes = sheet(&a, &a_key, &c, "p2", 0);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let tampered = run(
        &mut e,
        &c,
        &Actor::Console,
        Command::Score {
            exam: exam(),
            sheet: bytes,
            expert: a.id,
            expert_cert: a_cert.clone(),
        },
    );
    assert_refused!(tampered, Error::SheetRefused(_));
    let (organiser, _, _) = person(SCHOOL, PersonRole::Organiser, 0);
    let forbidden = run(
        &mut e,
        &c,
        &Actor::Person(organiser),
        score(&a, &a_key, &a_cert, &c, "p2", 0),
    );
    assert_refused!(
        forbidden,
        Error::Forbidden {
            action: Action::Score,
            ..
        }
    );
    // The day shows the one sheet that counts, not yet at the РЦОИ.
    let day = super::day::read(&e, &c, exam()).unwrap();
    let p1 = day.participant("p1").unwrap();
    assert_eq!(p1.verdict, DayVerdict::Current);
    assert_eq!(p1.result, Some((20, Outcome::Pass)));
    assert_eq!(p1.sheets.len(), 1);
    assert_eq!(p1.sheets[0].state, SheetState::Current);
    assert_eq!(p1.sheets[0].at_rcoi, Receipt::NotYet);
    assert_eq!(day.participant("p2").unwrap().verdict, DayVerdict::Unscored);
}

/// The school refuses a sheet whose `signed_at` is not on the exam's day (the РЦОИ would refuse
/// it on receipt), one signed ahead of the school's clock by more than clocks differ, and one
/// for another exam than the protocol it is handed in to.
#[test]
fn a_sheet_signed_outside_the_exam_day_or_ahead_of_now_is_refused_at_the_school() {
    const MINUTE_MS: i64 = 60_000;
    let (mut e, c) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    let hand_in = |e: &mut Engine, exam: ExamId, sheet: Vec<u8>| {
        run(
            e,
            &c,
            &Actor::Person(a.clone()),
            Command::Score {
                exam,
                sheet,
                expert: a.id,
                expert_cert: a_cert.clone(),
            },
        )
    };
    let now = now_ms();
    let signed = |participant: &str, at_ms: i64| {
        // Ahead of now only: the demo's certificates are valid from an hour ago.
        let at = Timestamp::from_unix_ms(at_ms).unwrap();
        sheet_signed(&a, &a_key, &c, (exam(), participant), 0, at)
    };
    let exam_on = |days: i64| -> ExamId {
        let date = exam().date().add_days(days).unwrap();
        format!("is-{date}").parse().unwrap()
    };
    let exam_on_ago = |days: i64| exam_on(-days);
    let now_ts = Timestamp::from_unix_ms(now).unwrap();
    // Signed now (today) for tomorrow's exam, handed in to tomorrow's protocol.
    let early = sheet_signed(&a, &a_key, &c, (exam_on(1), "p1"), 0, now_ts);
    let early = hand_in(&mut e, exam_on(1), early);
    assert_refused!(early, Error::SheetOutsideExamDay { .. });
    // Scoring goes on for 5 calendar days after the exam (seed 002 §67): a sheet signed now for
    // an exam of up to 5 days ago is taken, one for an exam of 6 or more days ago is not. (An
    // additional date has attempts numbered by the register's history, which this school does
    // not hold: such days are passed over.)
    let additional = |e: ExamId| {
        giasync_shared::calendar::is_dates(e.date().year())
            .is_some_and(|dates| dates[1..].contains(&e.date()))
    };
    let within = (1..=5)
        .rev()
        .map(exam_on_ago)
        .find(|e| !additional(*e))
        .unwrap();
    let after = (6..=12).map(exam_on_ago).find(|e| !additional(*e)).unwrap();
    let taken = sheet_signed(&a, &a_key, &c, (within, "p1"), 0, now_ts);
    let taken = hand_in(&mut e, within, taken);
    assert!(taken.is_ok(), "{within}: {taken:?}");
    let late = sheet_signed(&a, &a_key, &c, (after, "p1"), 0, now_ts);
    let late = hand_in(&mut e, after, late);
    assert_refused!(late, Error::SheetOutsideExamDay { .. });
    let ahead = hand_in(&mut e, exam(), signed("p1", now + 6 * MINUTE_MS));
    assert_refused!(ahead, Error::SheetSignedAhead { .. });
    let slightly_ahead = hand_in(&mut e, exam(), signed("p1", now + 4 * MINUTE_MS));
    assert!(slightly_ahead.is_ok(), "{slightly_ahead:?}");
    // A sheet of yesterday's exam, handed in to today's protocol.
    let other = sheet_signed(&a, &a_key, &c, (exam_on(-1), "p2"), 0, now_ts);
    let misplaced = hand_in(&mut e, exam(), other);
    assert_refused!(misplaced, Error::SheetForAnotherProtocol { .. });
}

/// An expert revoked an hour ago cannot hand in a sheet dated before the revocation: the
/// school judges the revocation against its own clock, not the sheet's claim.
#[test]
fn a_revoked_expert_cannot_hand_in_a_sheet_dated_before_the_revocation() {
    const MINUTE_MS: i64 = 60_000;
    let (mut e, c) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    // The region revokes the expert an hour before now (in a copy of the fixture's CA).
    let copy = tempfile::tempdir().unwrap();
    for file in ["ca.crt", "ca.key", "index.json", "crl.pem"] {
        std::fs::copy(fixture().out.join("pki").join(file), copy.path().join(file)).unwrap();
    }
    let mut pki = giasync_certs::pki::Pki::open(copy.path()).unwrap();
    let serial = pki
        .issued()
        .iter()
        .find(|i| i.identity.contains(&format!("/{}?", a.id)))
        .unwrap()
        .serial;
    let hour_ago =
        time::OffsetDateTime::from_unix_timestamp((now_ms() - 60 * MINUTE_MS) / 1000).unwrap();
    pki.revoke(serial, "the key file was copied", hour_ago)
        .unwrap();
    let verifier = giasync_certs::verify::CaVerifier::from_pem(
        pki.ca_cert_pem().as_bytes(),
        pki.crl_pem().unwrap().as_bytes(),
        "42".parse().unwrap(),
    )
    .unwrap();
    let revoked = Context::new(verifier, CLOCK.parse().unwrap()).unwrap();
    let backdated = Timestamp::from_unix_ms(now_ms() - 90 * MINUTE_MS).unwrap();
    let sheet = sheet_signed(&a, &a_key, &c, (exam(), "p1"), 0, backdated);
    let command = || Command::Score {
        exam: exam(),
        sheet: sheet.clone(),
        expert: a.id,
        expert_cert: a_cert.clone(),
    };
    let refused = run(&mut e, &revoked, &Actor::Person(a.clone()), command());
    assert_refused!(refused, Error::SheetSignerRevoked { .. });
    // The same sheet, where the revocation is not known, is taken: the refusal is the
    // revocation's.
    assert!(run(&mut e, &c, &Actor::Person(a.clone()), command()).is_ok());
}

/// The metrics count, per school, the sheets its protocols hold and the РЦОИ's receipts of
/// them: two sheets for participants the register does not list are entered at the school and
/// receipted invalid at the РЦОИ, and the school sees those receipts once they come back.
#[test]
fn the_metrics_count_each_schools_sheets_and_the_rcois_receipts() {
    let (mut school, sc) = school_with_roster();
    let (mut rcoi, rc) = node("42");
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    console(&mut school, &sc, score(&a, &a_key, &a_cert, &sc, "p1", 0));
    console(&mut school, &sc, score(&a, &a_key, &a_cert, &sc, "p2", 3));
    let protocol =
        super::school_doc(&school, giasync_shared::sync::DocKind::Protocol, exam()).unwrap();
    let counts = |e: &Engine| {
        super::metrics::read(e)
            .schools
            .into_iter()
            .map(|(code, s)| (code.to_string(), s.entered, s.verified, s.invalid))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&school), vec![(SCHOOL.to_owned(), 2, 0, 0)]);
    sync(&mut rcoi, &mut school);
    // The РЦОИ receipts what arrived as its node does after each batch.
    super::react(&mut rcoi, &rc, &[protocol], now_ms());
    assert_eq!(counts(&rcoi), vec![(SCHOOL.to_owned(), 2, 0, 2)]);
    sync(&mut rcoi, &mut school);
    assert_eq!(counts(&school), vec![(SCHOOL.to_owned(), 2, 0, 2)]);
    let metrics = super::metrics::read(&school);
    assert_eq!(metrics.node, school.identity());
    assert!(metrics.docs >= 2, "{metrics:?}");
}

#[test]
fn two_experts_sheets_for_one_attempt_are_an_open_conflict() {
    let (mut e, c) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    let (b, b_key, b_cert) = person(SCHOOL, PersonRole::Expert, 1);
    console(&mut e, &c, score(&a, &a_key, &a_cert, &c, "p1", 0));
    console(&mut e, &c, score(&b, &b_key, &b_cert, &c, "p1", 3));
    let Answer::Conflicts(conflicts) = console(&mut e, &c, Command::Conflicts { exam: exam() })
    else {
        panic!("not conflicts");
    };
    assert_eq!(conflicts.open.len(), 1);
    assert_eq!(conflicts.open[0].subject.participant, pid("p1"));
    let mut experts: Vec<PersonId> = conflicts.open[0].heads.iter().map(|h| h.expert).collect();
    experts.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(experts, expected);
    let day = super::day::read(&e, &c, exam()).unwrap();
    assert_eq!(day.participant("p1").unwrap().verdict, DayVerdict::Conflict);
}

/// Seed 002 §22, §64-67: the school's commission settles. The head, as its chair, signs which
/// sheet counts; the record is stored in the protocol and the РЦОИ, which reads it from there,
/// sees the conflict settled. An expert posing as the chair, an organiser, and the РЦОИ are
/// refused.
#[test]
fn the_commission_settles_a_conflict_at_the_school() {
    use giasync_shared::settlement::Settler;
    use giasync_shared::settlement::commission::CommissionSettlement;
    let (mut school, sc) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    let (b, b_key, b_cert) = person(SCHOOL, PersonRole::Expert, 1);
    let (head, head_key, head_cert) = person(SCHOOL, PersonRole::Head, 0);
    console(&mut school, &sc, score(&a, &a_key, &a_cert, &sc, "p1", 0));
    console(&mut school, &sc, score(&b, &b_key, &b_cert, &sc, "p1", 3));
    let Answer::Conflicts(open) = console(&mut school, &sc, Command::Conflicts { exam: exam() })
    else {
        panic!("not conflicts");
    };
    let conflict = open.open[0].clone();
    let chosen = conflict.heads[0].hash;
    let record = |signer: PersonId, key: &SigningKey| {
        CommissionSettlement {
            subject: conflict.subject,
            room: conflict.heads[0].room,
            chosen,
            settles: conflict.heads.iter().map(|h| h.hash).collect(),
            reason: "запись ответа прослушана комиссией".into(),
            signer,
            capacity: Settler::Chair,
            at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        }
        .sign(key)
        .unwrap()
        .as_bytes()
        .to_vec()
    };
    let settle = |statement: Vec<u8>, cert: &[u8]| Command::CommissionSettle {
        exam: exam(),
        statement,
        cert: cert.to_vec(),
    };
    // Expert a signs as the chair with their own key and certificate: not a head.
    let posing = run(
        &mut school,
        &sc,
        &Actor::Person(a.clone()),
        settle(record(a.id, &a_key), &a_cert),
    );
    assert_refused!(posing, Error::SettlementRefused(_));
    // An organiser may not hand one in at all.
    let (organiser, _, _) = person(SCHOOL, PersonRole::Organiser, 0);
    let forbidden = run(
        &mut school,
        &sc,
        &Actor::Person(organiser),
        settle(record(head.id, &head_key), &head_cert),
    );
    assert_refused!(
        forbidden,
        Error::Forbidden {
            action: Action::Settle,
            ..
        }
    );
    // The head settles.
    let Answer::Settled(settled) = run(
        &mut school,
        &sc,
        &Actor::Person(head.clone()),
        settle(record(head.id, &head_key), &head_cert),
    )
    .unwrap() else {
        panic!("not settled");
    };
    assert_eq!(settled.chosen, chosen);
    let Answer::Conflicts(open) = console(&mut school, &sc, Command::Conflicts { exam: exam() })
    else {
        panic!("not conflicts");
    };
    assert!(open.open.is_empty(), "{open:?}");
    // The РЦОИ reads the record from the school's protocol and sees no open conflict; it may
    // not settle itself.
    let (mut rcoi, rc) = node("42");
    sync(&mut rcoi, &mut school);
    let Answer::Conflicts(at_rcoi) = console(&mut rcoi, &rc, Command::Conflicts { exam: exam() })
    else {
        panic!("not conflicts");
    };
    assert!(at_rcoi.open.is_empty(), "{at_rcoi:?}");
    let refused = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::Settle {
            statement: Vec::new(),
            operator_cert: Vec::new(),
        },
    );
    assert_refused!(refused, Error::SettledAtSchool);
}

#[test]
fn the_rcoi_alone_imports_publishes_exports_and_looks_up() {
    let (mut school, sc) = school_with_roster();
    let rcoi_duties = [
        (
            Command::RegionImport {
                exam: exam(),
                rows: Vec::new(),
            },
            RcoiDuty::Import,
        ),
        (Command::Publish { exam: exam() }, RcoiDuty::Publish),
        (Command::Export { exam: exam() }, RcoiDuty::Export),
        (
            Command::Lookup(LookupQuery {
                document: giasync_shared::participant::IdentityDocument::new("3204", "p10")
                    .unwrap(),
            }),
            RcoiDuty::Lookup,
        ),
    ];
    for (command, duty) in rcoi_duties {
        let refused = run(&mut school, &sc, &Actor::Console, command);
        assert!(
            matches!(refused, Err(Error::NotTheRcoi { duty: d, .. }) if d == duty),
            "{duty:?}: {refused:?}"
        );
    }
    let oversight = run(&mut school, &sc, &Actor::Console, Command::Oversight);
    assert_refused!(oversight, Error::NotAHub { .. });
    // At the РЦОИ, with nothing held: nothing to publish, two empty tables, nobody found.
    let (mut rcoi, rc) = node("42");
    let Answer::Published(p) = console(&mut rcoi, &rc, Command::Publish { exam: exam() }) else {
        panic!("not a publication");
    };
    assert!(p.published.is_empty() && p.refused.is_empty());
    let Answer::Export(x) = console(&mut rcoi, &rc, Command::Export { exam: exam() }) else {
        panic!("not an export");
    };
    assert_eq!(x.files.iter().map(|f| f.rows).sum::<usize>(), 0);
    let Answer::Lookup { found } = console(
        &mut rcoi,
        &rc,
        Command::Lookup(LookupQuery {
            document: giasync_shared::participant::IdentityDocument::new("3204", "p10").unwrap(),
        }),
    ) else {
        panic!("not a look-up");
    };
    assert!(found.is_empty());
    // A school's person cannot operate the hub.
    let (organiser, _, _) = person(SCHOOL, PersonRole::Organiser, 0);
    let forbidden = run(
        &mut rcoi,
        &rc,
        &Actor::Person(organiser),
        Command::Publish { exam: exam() },
    );
    assert_refused!(
        forbidden,
        Error::Forbidden {
            action: Action::Operate,
            ..
        }
    );
    assert!(matches!(
        console(&mut rcoi, &rc, Command::Oversight),
        Answer::Oversight(_)
    ));
}

#[test]
fn a_region_wide_list_places_rows_by_their_school_or_names_every_bad_row() {
    let (mut rcoi, rc) = node("42");
    let school = |code: &str| Some(SchoolCode::new(code).unwrap());
    let municipality = Some(giasync_shared::codes::MunicipalityCode::new("4201").unwrap());
    let bad = vec![
        RegionRow {
            row: 2,
            school: school("420101"),
            municipality,
            participant: row("p1", None),
        },
        RegionRow {
            row: 3,
            school: None,
            municipality,
            participant: row("p2", None),
        },
        RegionRow {
            row: 4,
            school: school("420199"),
            municipality: None,
            participant: row("p3", None),
        },
    ];
    let refused = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::RegionImport {
            exam: exam(),
            rows: bad,
        },
    );
    let Err(Error::RowsRefused(problems)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(problems.len(), 2);
    assert_eq!(
        (problems[0].row, &problems[0].problem),
        (3, &RowFault::NoSchool)
    );
    assert_eq!(problems[1].row, 4);
    assert!(matches!(problems[1].problem, RowFault::UnknownSchool(_)));
    // Nothing was written.
    assert_eq!(rcoi.doc_ids().count(), 0);
    let good = vec![RegionRow {
        row: 2,
        school: school("420101"),
        municipality,
        participant: row("p1", None),
    }];
    let Answer::RegionImported(i) = console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: exam(),
            rows: good,
        },
    ) else {
        panic!("not an import");
    };
    assert_eq!((i.participants, i.schools), (1, 1));
}

#[test]
fn results_and_familiarisation_wait_for_the_rcoi_signature() {
    let (mut e, c) = school_with_roster();
    let none = run(
        &mut e,
        &c,
        &Actor::Console,
        Command::Results { exam: exam() },
    );
    assert_refused!(none, Error::NoResults { .. });
    let (organiser, key, cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let record = giasync_shared::publish::Familiarisation {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: pid("p1"),
        organiser: organiser.id,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        edition: Some(1),
    };
    let statement = record.sign(&key).unwrap().as_bytes().to_vec();
    let familiarise = Command::Familiarise {
        exam: exam(),
        statement,
        organiser_cert: cert,
    };
    let early = run(&mut e, &c, &Actor::Person(organiser), familiarise.clone());
    assert_refused!(early, Error::NoResults { .. });
    let (interviewer, _, _) = person(SCHOOL, PersonRole::Interviewer, 0);
    let forbidden = run(&mut e, &c, &Actor::Person(interviewer), familiarise);
    assert_refused!(
        forbidden,
        Error::Forbidden {
            action: Action::Familiarise,
            ..
        }
    );
}

/// A participant informed of a result a re-check changed since is informed again: the record
/// names the edition shown, and counts only for rows that edition already gave.
#[test]
fn a_familiarisation_counts_for_the_edition_it_names_and_the_rows_it_gave() {
    let (mut school, sc) = school_with_roster();
    let (mut rcoi, _) = node("42");
    let (organiser, key, cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let signed = |participant: &str, edition: Option<u32>, at_ms: i64| {
        let record = giasync_shared::publish::Familiarisation {
            exam: exam(),
            school: SchoolCode::new(SCHOOL).unwrap(),
            participant: pid(participant),
            organiser: organiser.id,
            at: Timestamp::from_unix_ms(at_ms).unwrap(),
            edition,
        };
        Command::Familiarise {
            exam: exam(),
            statement: record.sign(&key).unwrap().as_bytes().to_vec(),
            organiser_cert: cert.clone(),
        }
    };
    let familiarise =
        |participant: &str, edition: u32| signed(participant, Some(edition), now_ms());
    let informed = |school: &mut Engine| {
        let Answer::Results(r) = console(school, &sc, Command::Results { exam: exam() }) else {
            panic!("not results");
        };
        r.rows
            .iter()
            .map(|row| {
                (
                    row.participant.to_string(),
                    row.familiarised.is_some(),
                    row.familiarised_earlier.is_some(),
                )
            })
            .collect::<Vec<_>>()
    };
    let by = Actor::Person(organiser.clone());
    publish_by_hand(
        &mut rcoi,
        exam(),
        &[("p1", 8, Outcome::Fail), ("p2", 14, Outcome::Pass)],
    );
    sync(&mut rcoi, &mut school);
    run(&mut school, &sc, &by, familiarise("p1", 1)).unwrap();
    run(&mut school, &sc, &by, familiarise("p2", 1)).unwrap();
    assert_eq!(
        informed(&mut school),
        [("p1".into(), true, false), ("p2".into(), true, false)]
    );
    // A re-check makes p1's 8 a 12: edition 2.
    publish_by_hand(
        &mut rcoi,
        exam(),
        &[("p1", 12, Outcome::Pass), ("p2", 14, Outcome::Pass)],
    );
    sync(&mut rcoi, &mut school);
    assert_eq!(
        informed(&mut school),
        [("p1".into(), false, true), ("p2".into(), true, false)]
    );
    // A page still showing edition 1 cannot sign for p1, whose row edition 2 changed; it can
    // for p2, whose row it did not.
    assert_refused!(
        run(&mut school, &sc, &by, familiarise("p1", 1)),
        Error::ResultsChangedSince { shown: 1, now: 2 }
    );
    run(&mut school, &sc, &by, familiarise("p2", 1)).unwrap();
    // A record naming no edition, or one beyond the newest, or dated an hour ago, is refused.
    assert_refused!(
        run(&mut school, &sc, &by, signed("p1", None, now_ms())),
        Error::RecordRefused(_)
    );
    assert_refused!(
        run(&mut school, &sc, &by, familiarise("p1", 3)),
        Error::ResultsChangedSince { shown: 3, now: 2 }
    );
    assert_refused!(
        run(
            &mut school,
            &sc,
            &by,
            signed("p1", Some(2), now_ms() - 3_600_000)
        ),
        Error::FamiliarisedOutOfTime { .. }
    );
    run(&mut school, &sc, &by, familiarise("p1", 2)).unwrap();
    assert_eq!(
        informed(&mut school),
        [("p1".into(), true, false), ("p2".into(), true, false)]
    );
}

#[test]
fn status_counts_what_the_school_holds() {
    let (mut e, c) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    console(&mut e, &c, score(&a, &a_key, &a_cert, &c, "p1", 0));
    let Answer::Status(s) = console(&mut e, &c, Command::Status) else {
        panic!("not a status");
    };
    assert_eq!(s.schools.len(), 1);
    let school = &s.schools[0];
    assert_eq!(
        (school.participants, school.sheets, school.sheets_verified),
        (3, 1, 1)
    );
    assert_eq!(school.sheet_lines.len(), 1);
    assert_eq!(school.sheet_lines[0].at_rcoi, "not yet");
}

#[test]
fn the_school_day_defaults_to_the_latest_roster() {
    let (mut e, c) = school_with_roster();
    let Answer::SchoolDay(day) = console(&mut e, &c, Command::SchoolDay { exam: None }) else {
        panic!("not a day");
    };
    assert_eq!(day.exam, exam());
    assert_eq!(day.participants.len(), 3);
    let rooms: Vec<(String, i64, usize)> = day
        .rooms
        .iter()
        .map(|r| (r.code.to_string(), r.capacity, r.assigned))
        .collect();
    assert_eq!(rooms, [("101".to_owned(), 2, 2), ("102".to_owned(), 30, 0)]);
    let (mut hub, hc) = node("4201");
    let refused = run(
        &mut hub,
        &hc,
        &Actor::Console,
        Command::SchoolDay { exam: Some(exam()) },
    );
    assert_refused!(refused, Error::NotASchool { .. });
}

#[test]
fn a_receipt_the_school_writes_in_its_results_document_counts_for_nothing() {
    let (mut e, c) = school_with_roster();
    let (a, a_key, a_cert) = person(SCHOOL, PersonRole::Expert, 0);
    console(&mut e, &c, score(&a, &a_key, &a_cert, &c, "p1", 0));
    let Answer::Status(s) = console(&mut e, &c, Command::Status) else {
        panic!("not a status");
    };
    let hash = s.schools[0].sheet_lines[0].hash.clone();
    // The school may write its results document, and writes the РЦОИ's receipt there itself.
    let results: giasync_shared::sync::DocId =
        format!("results/4201/{SCHOOL}/{}", exam()).parse().unwrap();
    e.change(now_ms(), results, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, format!("receipt/{hash}"), "verified")
            .map(|_| ())
    })
    .unwrap();
    let Answer::Status(s) = console(&mut e, &c, Command::Status) else {
        panic!("not a status");
    };
    assert_eq!(s.schools[0].sheet_lines[0].at_rcoi, "not yet");
    assert_eq!(s.schools[0].sheets_at_rcoi, 0);
}

#[test]
fn the_rcoi_carries_a_layout_1_publication_over_once() {
    let (mut rcoi, rc) = node("42");
    let results: giasync_shared::sync::DocId =
        format!("results/4201/{SCHOOL}/{}", exam()).parse().unwrap();
    let rcoi_doc = results
        .sibling(giasync_shared::sync::DocKind::Rcoi)
        .unwrap();
    // Layout 1: the publication under `published` in the results document, signed without an
    // edition.
    let fields = giasync_shared::statement::Fields::new()
        .with("exam", exam())
        .with("school", SCHOOL)
        .with("at", Timestamp::from_unix_ms(now_ms()).unwrap())
        .with("row", "p1 1 14 pass");
    let statement = rcoi
        .node_statement(giasync_shared::statement::StatementKind::Results, &fields)
        .unwrap();
    let cert = rcoi.node_cert().to_vec();
    rcoi.change(now_ms(), results, |tx| {
        use automerge::transaction::Transactable;
        tx.put(
            automerge::ROOT,
            "published",
            automerge::ScalarValue::Bytes(statement.as_bytes().to_vec()),
        )?;
        tx.put(
            automerge::ROOT,
            "rcoi_cert",
            automerge::ScalarValue::Bytes(cert.clone()),
        )
        .map(|_| ())
    })
    .unwrap();
    assert!(rcoi.doc(&rcoi_doc).is_none());
    let carried = super::hub::carry_over_layout_1(&mut rcoi, &rc, now_ms()).unwrap();
    assert_eq!((carried.publications, carried.settlements), (1, 0));
    let published = super::results::verified_results(
        rcoi.doc(&rcoi_doc).unwrap(),
        &rc,
        exam(),
        SchoolCode::new(SCHOOL).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (published.edition, published.rows[0].total),
        (1, 14),
        "{published:?}"
    );
    // Once is enough: a second start carries nothing.
    assert_eq!(
        super::hub::carry_over_layout_1(&mut rcoi, &rc, now_ms()).unwrap(),
        super::hub::CarriedOver::default()
    );
}

/// Hardening item 10: one identity document, one school per exam. The РЦОИ's region import
/// refuses a second school listing it; a look-up for a document two schools list (a school's
/// own import, which cannot see the other roster) shows neither school's result.
#[test]
fn one_identity_document_belongs_to_one_school_per_exam() {
    let (mut rcoi, rc) = node("42");
    let municipality = Some(giasync_shared::codes::MunicipalityCode::new("4201").unwrap());
    let at = |school: &str, id: &str, n: usize| RegionRow {
        row: n,
        school: Some(SchoolCode::new(school).unwrap()),
        municipality,
        participant: row(id, None),
    };
    console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: exam(),
            rows: vec![at(SCHOOL, "p1", 2)],
        },
    );
    // Row 3 gives school 420102 a participant whose document (3204 p10) 420101 already lists.
    let refused = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::RegionImport {
            exam: exam(),
            rows: vec![at("420102", "p2", 2), at("420102", "p1", 3)],
        },
    );
    let Err(Error::RowsRefused(problems)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].row, 3);
    assert!(matches!(
        &problems[0].problem,
        RowFault::DocumentInAnotherSchool { school, .. } if school.as_str() == SCHOOL
    ));
    // Results for 420101's p1, published by the РЦОИ.
    publish_by_hand(&mut rcoi, exam(), &[("p1", 14, Outcome::Pass)]);
    let look = |rcoi: &mut Engine| {
        let Answer::Lookup { found } = console(
            rcoi,
            &rc,
            Command::Lookup(LookupQuery {
                document: giasync_shared::participant::IdentityDocument::new("3204", "p10")
                    .unwrap(),
            }),
        ) else {
            panic!("not a look-up");
        };
        found.len()
    };
    assert_eq!(look(&mut rcoi), 1);
    // School 420102 lists the same document in its own roster (as its own import would): the
    // look-up goes by the register, which only the РЦОИ writes, so nothing changes.
    let participant = row("p9", None).participant;
    let participant = giasync_shared::participant::Participant {
        document: giasync_shared::participant::IdentityDocument::new("3204", "p10").unwrap(),
        ..participant
    };
    let other_roster: giasync_shared::sync::DocId =
        format!("roster/4201/420102/{}", exam()).parse().unwrap();
    rcoi.change(now_ms(), other_roster, |tx| {
        giasync_shared::content::put_participant(tx, &participant)
    })
    .unwrap();
    assert_eq!(
        look(&mut rcoi),
        1,
        "a school's roster does not move a look-up"
    );
    // Two registers listing one document (made before the import refused it): neither result
    // is shown.
    let other_register: giasync_shared::sync::DocId =
        format!("rcoi/4201/420102/{}", exam()).parse().unwrap();
    rcoi.change(now_ms(), other_register, |tx| {
        giasync_shared::content::put_registered(tx, &participant)
    })
    .unwrap();
    assert_eq!(
        look(&mut rcoi),
        0,
        "two schools list it: neither result is shown"
    );
}

/// Connects two engines and delivers their frames to each other until both are quiet.
fn sync(a: &mut Engine, b: &mut Engine) {
    use giasync_shared::sync::{Input, Output};
    let identities = [a.identity(), b.identity()];
    let mut nodes = [a, b];
    for (i, other) in [(0, 1), (1, 0)] {
        nodes[i].handle(
            now_ms(),
            Input::Connected {
                peer: 1,
                identity: identities[other],
                wire: giasync_shared::sync::wire::WIRE_VERSION,
                link: giasync_shared::sync::Link::Quic,
            },
        );
    }
    for _ in 0..100 {
        let mut quiet = true;
        for from in 0..2 {
            let frames: Vec<Vec<u8>> = std::iter::from_fn(|| nodes[from].poll_output())
                .filter_map(|o| match o {
                    Output::Send { bytes, .. } => Some(bytes),
                    _ => None,
                })
                .collect();
            for bytes in frames {
                quiet = false;
                nodes[1 - from].handle(
                    now_ms(),
                    Input::Received {
                        peer: 1,
                        bytes: &bytes,
                    },
                );
            }
        }
        if quiet {
            for node in nodes {
                node.handle(now_ms(), Input::Disconnected { peer: 1 });
            }
            return;
        }
    }
    panic!("the two engines never went quiet");
}

/// The РЦОИ's next edition of school 420101's results of `exam`, attempt 1 each (participant,
/// total, outcome), signed by its node key as `publish` signs them.
fn publish_by_hand(rcoi: &mut Engine, exam: ExamId, rows: &[(&str, u16, Outcome)]) {
    let doc: giasync_shared::sync::DocId = format!("rcoi/4201/{SCHOOL}/{exam}").parse().unwrap();
    let edition = rcoi
        .doc(&doc)
        .map_or(1, giasync_shared::content::next_edition);
    let published = giasync_shared::publish::Published {
        exam,
        school: SchoolCode::new(SCHOOL).unwrap(),
        edition,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        rows: rows
            .iter()
            .map(|&(p, total, outcome)| giasync_shared::publish::ResultRow {
                participant: pid(p),
                attempt: 1,
                total,
                outcome,
                marks: Vec::new(),
            })
            .collect(),
    };
    let statement = rcoi
        .node_statement(
            giasync_shared::statement::StatementKind::Results,
            &published.fields(),
        )
        .unwrap();
    let cert = rcoi.node_cert().to_vec();
    rcoi.change(now_ms(), doc, |tx| {
        giasync_shared::content::put_published(tx, edition, &statement, &cert)
    })
    .unwrap();
}

/// Issue 14, the category of record: the demo's finding was a participant the РЦОИ imported as
/// standard, re-imported by her school as autism and scored 3 (pass from 3 by autism's rules,
/// from 10 by the standard ones). The school's change is a request: the school's pages show it,
/// sheets go by the register until the РЦОИ approves.
#[test]
fn a_school_cannot_change_the_category_of_record_alone() {
    let (mut rcoi, rc) = node("42");
    let (mut school, sc) = node(SCHOOL);
    let (expert, key, cert) = person(SCHOOL, PersonRole::Expert, 0);
    console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: exam(),
            rows: vec![RegionRow {
                row: 2,
                school: Some(SchoolCode::new(SCHOOL).unwrap()),
                municipality: Some(giasync_shared::codes::MunicipalityCode::new("4201").unwrap()),
                participant: row("p1", Some("101")),
            }],
        },
    );
    sync(&mut rcoi, &mut school);
    // The school re-imports her as autism, and adds p2 the region's list does not have.
    let mut autism_row = row("p1", Some("101"));
    autism_row.participant.category = Category::Autism;
    console(
        &mut school,
        &sc,
        Command::RosterImport {
            exam: exam(),
            rows: vec![autism_row, row("p2", Some("101"))],
        },
    );
    let unlisted = run(
        &mut school,
        &sc,
        &Actor::Person(expert.clone()),
        score(&expert, &key, &cert, &sc, "p2", 0),
    );
    assert_refused!(unlisted, Error::NotRegistered { .. });
    let category_at = |school: &mut Engine| {
        let Answer::Participant(p) = console(
            school,
            &sc,
            Command::Participant {
                exam: exam(),
                participant: pid("p1"),
            },
        ) else {
            panic!("not a participant");
        };
        (p.category, p.registered, p.requested)
    };
    assert_eq!(
        category_at(&mut school),
        (Some(Category::Standard), true, Some(Category::Autism))
    );
    // Ч1 1, М1 2: the demo's 3 points, by autism's criteria.
    let autism_sheet = || {
        let draft = SheetDraft {
            subject: SheetSubject {
                exam: exam(),
                school: SchoolCode::new(SCHOOL).unwrap(),
                participant: pid("p1"),
                attempt: Attempt::new(1).unwrap(),
            },
            room: room("101"),
            category: Category::Autism,
            points: giasync_shared::rules::parse_points("Ч1=1,М1=2,М2=0,Д1=0").unwrap(),
            expert: expert.id,
            signed_at: Timestamp::from_unix_ms(now_ms()).unwrap(),
            correction: None,
        };
        Command::Score {
            exam: exam(),
            sheet: SignedSheet::sign(draft, &sc.rules, &key)
                .unwrap()
                .as_bytes()
                .to_vec(),
            expert: expert.id,
            expert_cert: cert.clone(),
        }
    };
    let as_expert = Actor::Person(expert.clone());
    let refused = run(&mut school, &sc, &as_expert, autism_sheet());
    assert_refused!(
        refused,
        Error::SheetCategoryNotOfRecord {
            sheet: Category::Autism,
            of_record: Category::Standard,
            ..
        }
    );
    // Only the РЦОИ approves, only a registered participant, and only on an operator's signed
    // approval of what is asked, signed now.
    let (operator, operator_key, operator_cert) = person("42", PersonRole::Operator, 0);
    let (organiser, organiser_key, organiser_cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let signed =
        |p: &str, category: Category, at_ms: i64, who: &PersonIdentity, key: &SigningKey| {
            giasync_shared::approval::CategoryApproval {
                exam: exam(),
                school: SchoolCode::new(SCHOOL).unwrap(),
                participant: pid(p),
                category,
                basis: "заключение ПМПК № 12".into(),
                operator: who.id,
                rcoi: giasync_shared::codes::RegionCode::new("42").unwrap(),
                at: Timestamp::from_unix_ms(at_ms).unwrap(),
            }
            .sign(key)
            .unwrap()
            .as_bytes()
            .to_vec()
        };
    let approve = |p: &str, category: Category, statement: Vec<u8>, cert: &[u8]| {
        Command::ApproveCategory(super::command::CategoryApproval {
            exam: exam(),
            school: SchoolCode::new(SCHOOL).unwrap(),
            participant: pid(p),
            category,
            statement,
            operator_cert: cert.to_vec(),
        })
    };
    let autism = |p: &str| {
        approve(
            p,
            Category::Autism,
            signed(p, Category::Autism, now_ms(), &operator, &operator_key),
            &operator_cert,
        )
    };
    let by_school = run(&mut school, &sc, &Actor::Console, autism("p1"));
    assert_refused!(
        by_school,
        Error::NotTheRcoi {
            duty: RcoiDuty::ApproveCategory,
            ..
        }
    );
    let unknown = run(&mut rcoi, &rc, &Actor::Console, autism("p7"));
    assert_refused!(unknown, Error::NotRegistered { .. });
    let refusals = [
        // Unsigned, as scripts wrote it before approvals were signed.
        approve("p1", Category::Autism, Vec::new(), &[]),
        // Signed by an organiser, not an operator.
        approve(
            "p1",
            Category::Autism,
            signed("p1", Category::Autism, now_ms(), &organiser, &organiser_key),
            &organiser_cert,
        ),
        // An approval of another category than asked.
        approve(
            "p1",
            Category::Autism,
            signed("p1", Category::Deaf, now_ms(), &operator, &operator_key),
            &operator_cert,
        ),
        // An approval of another participant than asked.
        approve(
            "p1",
            Category::Autism,
            signed("p2", Category::Autism, now_ms(), &operator, &operator_key),
            &operator_cert,
        ),
        // Backdated by an hour.
        approve(
            "p1",
            Category::Autism,
            signed(
                "p1",
                Category::Autism,
                now_ms() - 3_600_000,
                &operator,
                &operator_key,
            ),
            &operator_cert,
        ),
    ];
    let outcomes: Vec<String> = refusals
        .into_iter()
        .map(
            |command| match run(&mut rcoi, &rc, &Actor::Console, command) {
                Err(Error::ApprovalUnsigned) => "unsigned".to_owned(),
                Err(Error::RecordRefused(_)) => "not an operator's".to_owned(),
                Err(Error::ApprovalForOther { .. }) => "not as asked".to_owned(),
                Err(Error::ApprovalOutOfTime { .. }) => "backdated".to_owned(),
                other => format!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(
        outcomes,
        [
            "unsigned",
            "not an operator's",
            "not as asked",
            "not as asked",
            "backdated"
        ]
    );
    // Nothing refused changed the register.
    sync(&mut rcoi, &mut school);
    assert_eq!(category_at(&mut school).0, Some(Category::Standard));
    let first_approval = signed("p1", Category::Autism, now_ms(), &operator, &operator_key);
    let Answer::CategoryApproved(approved) = console(
        &mut rcoi,
        &rc,
        approve(
            "p1",
            Category::Autism,
            first_approval.clone(),
            &operator_cert,
        ),
    ) else {
        panic!("not an approval");
    };
    // The same signed approval handed in again is not newer than the one stored.
    assert_refused!(
        run(
            &mut rcoi,
            &rc,
            &Actor::Console,
            approve("p1", Category::Autism, first_approval, &operator_cert)
        ),
        Error::ApprovalNotNewer { .. }
    );
    assert_eq!(
        (approved.before, approved.category, approved.operator),
        (Category::Standard, Category::Autism, Some(operator.id))
    );
    // The signed approval is kept beside the register and verifies wherever it is read.
    let register = super::school_doc(&school, giasync_shared::sync::DocKind::Rcoi, exam()).unwrap();
    sync(&mut rcoi, &mut school);
    let approvals = giasync_shared::approval::approvals(school.doc(&register).unwrap(), |certs| {
        sc.verifier.experts(certs)
    });
    assert_eq!(
        approvals
            .get(&pid("p1"))
            .map(|a| (a.operator, a.basis.as_str())),
        Some((operator.id, "заключение ПМПК № 12"))
    );
    // The school's day shows who approved it and on which papers.
    let day = super::day::read(&school, &sc, exam()).unwrap();
    let shown = day.participant("p1").unwrap().approval.as_ref().unwrap();
    assert_eq!(
        (shown.category, shown.operator, shown.basis.as_str()),
        (Category::Autism, operator.id, "заключение ПМПК № 12")
    );
    sync(&mut rcoi, &mut school);
    assert_eq!(
        category_at(&mut school),
        (Some(Category::Autism), true, None)
    );
    let Answer::Scored(scored) = run(&mut school, &sc, &as_expert, autism_sheet()).unwrap() else {
        panic!("not a score");
    };
    assert_eq!((scored.total, scored.outcome), (3, Outcome::Pass));
    // The region's list made before the approval, imported again, puts standard back: the
    // answer names the change, and the autism sheet the РЦОИ now holds that no longer counts.
    sync(&mut rcoi, &mut school);
    let Answer::RegionImported(again) = console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: exam(),
            rows: vec![RegionRow {
                row: 2,
                school: Some(SchoolCode::new(SCHOOL).unwrap()),
                municipality: Some(giasync_shared::codes::MunicipalityCode::new("4201").unwrap()),
                participant: row("p1", Some("101")),
            }],
        },
    ) else {
        panic!("not an import");
    };
    assert_eq!(
        again.categories_changed,
        vec![super::roster::CategoryChanged {
            school: SchoolCode::new(SCHOOL).unwrap(),
            participant: pid("p1"),
            before: Category::Autism,
            after: Category::Standard,
        }]
    );
    assert_eq!(again.sheets_by_another_category, 1);
}

/// Seed 002 §45, §49: the organiser's signed act ends an attempt, the roster shows it, and the
/// attempt is not scored. Only an organiser signs acts, and only their own.
/// Seed 002 §42, §45: the room log keeps an answer per attempt with its КИМ variant; after an
/// act for a bad recording the participant answers again beside the first answer, and not with
/// the variant they already had.
#[test]
fn a_same_day_retake_is_a_second_answer_with_another_variant() {
    use giasync_shared::act::{Act, ActKind, EarlyReason};
    use giasync_shared::room::Variant;
    let (mut e, c) = school_with_roster();
    let (organiser, organiser_key, organiser_cert) = person(SCHOOL, PersonRole::Organiser, 0);
    const MINUTE_MS: i64 = 60_000;
    let nine = 9 * 60 * MINUTE_MS;
    let log = |at: i64, end: bool, variant: Option<u16>| Command::Log {
        exam: exam(),
        participant: pid("p1"),
        interviewer: None,
        at: on_exam_day(at),
        end,
        variant: variant.map(|v| Variant::new(v).unwrap()),
    };
    let logged_attempt = |answer: Answer| match answer {
        Answer::Logged(l) => l.attempt,
        other => panic!("not a log entry: {other:?}"),
    };
    assert_eq!(
        logged_attempt(console(&mut e, &c, log(nine, false, Some(3)))),
        Some(1)
    );
    assert_eq!(
        logged_attempt(console(&mut e, &c, log(nine + 16 * MINUTE_MS, true, None))),
        Some(1)
    );
    let act = |attempt: u8, kind, number: &str| {
        let act = Act {
            exam: exam(),
            school: SchoolCode::new(SCHOOL).unwrap(),
            participant: pid("p1"),
            attempt: Attempt::new(attempt).unwrap(),
            room: room("101"),
            kind,
            text: "шпаргалка".into(),
            number: ActNumber::new(number).unwrap(),
            organiser: organiser.id,
            at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        };
        Command::Act {
            exam: exam(),
            statement: act.sign(&organiser_key).unwrap().as_bytes().to_vec(),
            organiser_cert: organiser_cert.clone(),
        }
    };
    let as_organiser = Actor::Person(organiser.clone());
    run(
        &mut e,
        &c,
        &as_organiser,
        act(1, ActKind::Early(EarlyReason::BadRecording), "1"),
    )
    .unwrap();
    // The variant of the first answer is refused for the retake; another is taken.
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Console,
            log(nine + 30 * MINUTE_MS, false, Some(3))
        ),
        Error::VariantAnswered { attempt: 1, .. }
    );
    assert_eq!(
        logged_attempt(console(
            &mut e,
            &c,
            log(nine + 30 * MINUTE_MS, false, Some(4))
        )),
        Some(2)
    );
    // Correcting the retake's own variant is not a reuse.
    console(&mut e, &c, log(nine + 30 * MINUTE_MS, false, Some(5)));
    assert_eq!(
        logged_attempt(console(&mut e, &c, log(nine + 45 * MINUTE_MS, true, None))),
        Some(2)
    );
    let day = super::day::read(&e, &c, exam()).unwrap();
    let p1 = day.participant("p1").unwrap();
    let answers: Vec<_> = p1
        .answers
        .iter()
        .map(|a| (a.attempt, a.start, a.end, a.variant.map(Variant::get)))
        .collect();
    assert_eq!(
        answers,
        vec![
            (
                Some(1),
                Some(on_exam_day(nine)),
                Some(on_exam_day(nine + 16 * MINUTE_MS)),
                Some(3)
            ),
            (
                Some(2),
                Some(on_exam_day(nine + 30 * MINUTE_MS)),
                Some(on_exam_day(nine + 45 * MINUTE_MS)),
                Some(5)
            ),
        ]
    );
    // The room log's columns are the open attempt's: the retake's.
    assert_eq!(
        (p1.attempt, p1.start, p1.variant.map(Variant::get)),
        (Some(2), Some(on_exam_day(nine + 30 * MINUTE_MS)), Some(5))
    );
    // A removal ends the day: no new answer begins, and the page shows the last one.
    run(&mut e, &c, &as_organiser, act(2, ActKind::Removal, "2")).unwrap();
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Console,
            log(nine + 50 * MINUTE_MS, false, Some(6))
        ),
        Error::NoAttemptOpen { .. }
    );
    let day = super::day::read(&e, &c, exam()).unwrap();
    let p1 = day.participant("p1").unwrap();
    assert_eq!((p1.attempt, p1.variant.map(Variant::get)), (None, Some(5)));
    // Both acts stay on the day, in attempt order; the latest is the one shown first.
    let acts: Vec<(u8, &str)> = p1
        .acts
        .iter()
        .map(|a| (a.attempt, a.number.as_str()))
        .collect();
    assert_eq!(acts, vec![(1, "1"), (2, "2")]);
    assert_eq!(p1.act.as_ref().map(|a| a.attempt), Some(2));
    // p1's roster now carries act № 2, but № 1 is still p1's signed act: p2 cannot be marked
    // with it.
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Console,
            Command::Mark(Marking {
                exam: exam(),
                participant: pid("p2"),
                attendance: Attendance::FinishedEarly {
                    act: ActNumber::new("1").unwrap()
                },
            })
        ),
        Error::ActNumberTaken { .. }
    );
}

/// An act for a bad recording signed while the answer still goes on: the room log's columns stay
/// on that answer until its end is logged (the end goes to it), then show the retake's.
#[test]
fn an_answer_under_way_when_its_act_is_signed_is_ended_before_the_retake_begins() {
    use giasync_shared::act::{Act, ActKind, EarlyReason};
    let (mut e, c) = school_with_roster();
    let (organiser, organiser_key, organiser_cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let nine = 9 * 3_600_000;
    let log = |at: i64, end: bool| Command::Log {
        exam: exam(),
        participant: pid("p2"),
        interviewer: None,
        at: on_exam_day(at),
        end,
        variant: None,
    };
    console(&mut e, &c, log(nine, false));
    let act = Act {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: pid("p2"),
        attempt: Attempt::FIRST,
        room: room("101"),
        kind: ActKind::Early(EarlyReason::BadRecording),
        text: String::new(),
        number: ActNumber::new("3").unwrap(),
        organiser: organiser.id,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
    };
    run(
        &mut e,
        &c,
        &Actor::Person(organiser),
        Command::Act {
            exam: exam(),
            statement: act.sign(&organiser_key).unwrap().as_bytes().to_vec(),
            organiser_cert,
        },
    )
    .unwrap();
    let shown = |e: &Engine| {
        let day = super::day::read(e, &c, exam()).unwrap();
        let p2 = day.participant("p2").unwrap();
        (p2.attempt, p2.start.is_some(), p2.end.is_some())
    };
    // Attempt 2 is open, but attempt 1's answer is what the columns show, under way.
    assert_eq!(shown(&e), (Some(2), true, false));
    let Answer::Logged(l) = console(&mut e, &c, log(nine + 10 * 60_000, true)) else {
        panic!("not a log entry");
    };
    assert_eq!(l.attempt, Some(1));
    // Ended: the columns are the retake's, not begun.
    assert_eq!(shown(&e), (Some(2), false, false));
}

/// A room log written before the log kept attempts (`log/P/start`) reads as the date's first
/// attempt, and a later answer of that attempt takes its place.
#[test]
fn a_room_log_without_attempts_reads_as_the_first_attempt() {
    let (mut e, c) = school_with_roster();
    use automerge::transaction::Transactable;
    let protocol = super::school_doc(&e, giasync_shared::sync::DocKind::Protocol, exam()).unwrap();
    let nine = on_exam_day(9 * 3_600_000);
    e.change(now_ms(), protocol, |tx| {
        tx.put(automerge::ROOT, "log/p2/start", nine.unix_ms())?;
        tx.put(automerge::ROOT, "log/p2/interviewer", "int-1")?;
        Ok(())
    })
    .unwrap();
    let day = super::day::read(&e, &c, exam()).unwrap();
    let p2 = day.participant("p2").unwrap();
    assert_eq!(p2.answers.len(), 1);
    assert_eq!(
        (
            p2.answers[0].attempt,
            p2.start,
            p2.interviewer.map(|i| i.to_string())
        ),
        (Some(1), Some(nine), Some("int-1".to_owned()))
    );
    // The end is written for attempt 1, beside the old start.
    let Answer::Logged(l) = console(
        &mut e,
        &c,
        Command::Log {
            exam: exam(),
            participant: pid("p2"),
            interviewer: None,
            at: nine.plus_ms(16 * 60_000),
            end: true,
            variant: None,
        },
    ) else {
        panic!("not a log entry");
    };
    assert_eq!(l.attempt, Some(1));
    // The old start moved to attempt 1 beside the end: one answer, whole, in one form.
    let day = super::day::read(&e, &c, exam()).unwrap();
    let p2 = day.participant("p2").unwrap();
    let answers: Vec<_> = p2
        .answers
        .iter()
        .map(|a| {
            (
                a.attempt,
                a.start,
                a.end,
                a.interviewer.map(|i| i.to_string()),
            )
        })
        .collect();
    assert_eq!(
        answers,
        vec![(
            Some(1),
            Some(nine),
            Some(nine.plus_ms(16 * 60_000)),
            Some("int-1".to_owned())
        )]
    );
    let log = giasync_shared::content::logs(e.doc(&protocol).unwrap())
        .remove("p2")
        .unwrap();
    assert!(log.unnumbered.is_none(), "{log:?}");
    // An end with no answer under way is refused, not written to an attempt never begun.
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Console,
            Command::Log {
                exam: exam(),
                participant: pid("p1"),
                interviewer: None,
                at: nine,
                end: true,
                variant: None,
            }
        ),
        Error::NoAnswerUnderWay { .. }
    );
}

#[test]
fn an_act_ends_an_attempt_and_its_sheet_is_refused() {
    use giasync_shared::act::{Act, ActKind, EarlyReason};
    let (mut e, c) = school_with_roster();
    let (organiser, organiser_key, organiser_cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let (expert, expert_key, expert_cert) = person(SCHOOL, PersonRole::Expert, 0);
    let act = |kind, text: &str| Act {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: pid("p1"),
        attempt: Attempt::new(1).unwrap(),
        room: room("101"),
        kind,
        text: text.into(),
        number: ActNumber::new("1").unwrap(),
        organiser: organiser.id,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
    };
    let command = |act: &Act, key: &SigningKey, cert: &[u8]| Command::Act {
        exam: exam(),
        statement: act.sign(key).unwrap().as_bytes().to_vec(),
        organiser_cert: cert.to_vec(),
    };
    let bad_recording = act(ActKind::Early(EarlyReason::BadRecording), "");
    // The expert may not write acts at all; nor sign one as the organiser.
    let by_expert = run(
        &mut e,
        &c,
        &Actor::Person(expert.clone()),
        command(&bad_recording, &organiser_key, &organiser_cert),
    );
    assert_refused!(
        by_expert,
        Error::Forbidden {
            action: Action::WriteAct,
            ..
        }
    );
    let forged = run(
        &mut e,
        &c,
        &Actor::Console,
        command(&bad_recording, &expert_key, &organiser_cert),
    );
    assert_refused!(forged, Error::RecordRefused(_));
    // An act is drawn up on the exam's day (seed 002 §48–49): one dated the day before is
    // refused, and so is one handed in after the exam's scoring ended (the exam day + 5).
    let day_before = Act {
        at: Timestamp::from_unix_ms(
            exam().date().day_window_ms(CLOCK.parse().unwrap()).start - 60_000,
        )
        .unwrap(),
        ..bad_recording.clone()
    };
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Person(organiser.clone()),
            command(&day_before, &organiser_key, &organiser_cert),
        ),
        Error::ActOutsideExamDay { .. }
    );
    let six_days_on = now_ms() + 6 * 86_400_000;
    assert_refused!(
        apply(
            &mut e,
            &c,
            &Actor::Person(organiser.clone()),
            six_days_on,
            command(&bad_recording, &organiser_key, &organiser_cert),
        ),
        Error::ActAfterScoring { .. }
    );
    let Answer::ActWritten(written) = run(
        &mut e,
        &c,
        &Actor::Person(organiser.clone()),
        command(&bad_recording, &organiser_key, &organiser_cert),
    )
    .unwrap() else {
        panic!("not an act");
    };
    assert_eq!(
        (written.participant, written.attempt, written.kind),
        (pid("p1"), 1, ActKind::Early(EarlyReason::BadRecording))
    );
    let Answer::Participant(p1) = console(
        &mut e,
        &c,
        Command::Participant {
            exam: exam(),
            participant: pid("p1"),
        },
    ) else {
        panic!("not a participant");
    };
    assert_eq!(
        p1.attendance,
        Some(Attendance::FinishedEarly {
            act: ActNumber::new("1").unwrap()
        })
    );
    let as_expert = Actor::Person(expert.clone());
    let refused = run(
        &mut e,
        &c,
        &as_expert,
        score(&expert, &expert_key, &expert_cert, &c, "p1", 0),
    );
    assert_refused!(refused, Error::SheetForEndedAttempt { .. });
    // p2 has no act: scored.
    run(
        &mut e,
        &c,
        &as_expert,
        score(&expert, &expert_key, &expert_cert, &c, "p2", 0),
    )
    .unwrap();
    // §45: after the bad recording p1 sits again the same day, as attempt 2; p2, with no such
    // act, has no attempt 2 today, and neither has p1 an attempt 3.
    let second = |participant: &str, attempt: u8| Command::Score {
        exam: exam(),
        sheet: sheet_for_attempt(
            &expert,
            &expert_key,
            &c,
            (exam(), participant, attempt),
            0,
            Timestamp::from_unix_ms(now_ms()).unwrap(),
        ),
        expert: expert.id,
        expert_cert: expert_cert.clone(),
    };
    run(&mut e, &c, &as_expert, second("p1", 2)).unwrap();
    // An act ends the attempt open now: attempt 1 is ended already and attempt 2 was sat, so
    // attempt 1's act can no longer be corrected.
    let again = run(
        &mut e,
        &c,
        &Actor::Person(organiser.clone()),
        command(&bad_recording, &organiser_key, &organiser_cert),
    );
    assert_refused!(again, Error::ActForAttemptNotOpen { open: Some(2), .. });
    // An act nothing came after may be corrected (signed again for its attempt); a number
    // belongs to one act.
    let for_p3 = |kind, number: &str| Act {
        participant: pid("p3"),
        number: ActNumber::new(number).unwrap(),
        ..act(kind, "")
    };
    let as_organiser = Actor::Person(organiser.clone());
    let health = ActKind::Early(EarlyReason::Health);
    assert_refused!(
        run(
            &mut e,
            &c,
            &as_organiser,
            command(&for_p3(health, "1"), &organiser_key, &organiser_cert)
        ),
        Error::ActNumberTaken { .. }
    );
    for kind in [ActKind::Early(EarlyReason::BadRecording), health] {
        run(
            &mut e,
            &c,
            &as_organiser,
            command(&for_p3(kind, "2"), &organiser_key, &organiser_cert),
        )
        .unwrap();
    }
    assert_refused!(
        run(&mut e, &c, &as_expert, second("p2", 2)),
        Error::SheetAttemptNotOfTheDate { first: 1, .. }
    );
    assert_refused!(
        run(&mut e, &c, &as_expert, second("p1", 3)),
        Error::SheetAttemptNotOfTheDate { first: 1, .. }
    );
}

/// Seed 002 §14, §59: 16 minutes, +30 for ОВЗ and for a disabled participant whatever the
/// category; the room log flags an answer that went past its time. The register's word on a
/// disability wins over the roster's.
#[test]
fn the_time_allowed_follows_the_register_and_an_overrun_is_flagged() {
    let (mut rcoi, rc) = node("42");
    let (mut school, sc) = node(SCHOOL);
    let mut disabled = row("p1", Some("101"));
    disabled.disabled = true;
    disabled.written = true;
    let listed = |participant: RosterEntry| RegionRow {
        row: 2,
        school: Some(SchoolCode::new(SCHOOL).unwrap()),
        municipality: Some(giasync_shared::codes::MunicipalityCode::new("4201").unwrap()),
        participant,
    };
    console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: exam(),
            rows: vec![listed(disabled), listed(row("p2", Some("101")))],
        },
    );
    sync(&mut rcoi, &mut school);
    // The school says p2 is disabled too, and answers in writing: the register does not, so 16
    // minutes, orally.
    let mut claimed = row("p2", Some("101"));
    claimed.disabled = true;
    claimed.written = true;
    console(
        &mut school,
        &sc,
        Command::RosterImport {
            exam: exam(),
            rows: vec![claimed],
        },
    );
    const MINUTE_MS: i64 = 60_000;
    let nine = 9 * 60 * MINUTE_MS;
    for (p, start, end) in [
        ("p1", nine, nine + 40 * MINUTE_MS),
        ("p2", nine, nine + 20 * MINUTE_MS),
    ] {
        for (at, end) in [(start, false), (end, true)] {
            console(
                &mut school,
                &sc,
                Command::Log {
                    exam: exam(),
                    participant: pid(p),
                    interviewer: None,
                    at: on_exam_day(at),
                    end,
                    variant: None,
                },
            );
        }
    }
    let day = super::day::read(&school, &sc, exam()).unwrap();
    let p1 = day.participant("p1").unwrap();
    let p2 = day.participant("p2").unwrap();
    assert_eq!(
        (p1.entry.allowed_ms() / MINUTE_MS, p1.overrun_ms()),
        (46, None)
    );
    assert_eq!(
        (p2.entry.allowed_ms() / MINUTE_MS, p2.overrun_ms()),
        (16, Some(4 * MINUTE_MS))
    );
    // The written form (§61) is the register's word too.
    assert_eq!((p1.entry.written, p2.entry.written), (true, false));
}

/// Seed 002 §15, §70: who may come on an additional date, from the earlier dates' documents.
/// February: p1 «незачёт», p7 «зачёт» (published by the РЦОИ); p2 removed, p6 finished early
/// for health (acts); p3 absent with a valid reason, p4 absent with none given, p5 absent
/// without a valid reason. The expectations are written out from §70, not computed.
#[test]
fn the_additional_date_admits_by_section_70_and_numbers_attempts_by_history() {
    use giasync_shared::act::{Act, ActKind, EarlyReason};
    use giasync_shared::retake::{AbsenceReason, Admission, NotAdmitted};
    let feb: ExamId = "is-2024-02-14".parse().unwrap();
    let march: ExamId = "is-2024-03-13".parse().unwrap();
    let (mut rcoi, rc) = node("42");
    let (mut school, sc) = node(SCHOOL);
    let (organiser, organiser_key, organiser_cert) = person(SCHOOL, PersonRole::Organiser, 0);
    let as_organiser = Actor::Person(organiser.clone());
    let listed = |ids: &[&str]| -> Vec<RegionRow> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| RegionRow {
                row: i + 2,
                school: Some(SchoolCode::new(SCHOOL).unwrap()),
                municipality: Some(giasync_shared::codes::MunicipalityCode::new("4201").unwrap()),
                participant: row(id, Some("101")),
            })
            .collect()
    };
    console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: feb,
            rows: listed(&["p1", "p2", "p3", "p4", "p5", "p6", "p7"]),
        },
    );
    sync(&mut rcoi, &mut school);
    for id in ["p3", "p4", "p5"] {
        run(
            &mut school,
            &sc,
            &as_organiser,
            Command::Mark(Marking {
                exam: feb,
                participant: pid(id),
                attendance: Attendance::Absent,
            }),
        )
        .unwrap();
    }
    let absence = |id: &str, reason: AbsenceReason| Command::Absence {
        exam: feb,
        participant: pid(id),
        reason,
    };
    // A reason for a participant who was not absent is refused.
    assert_refused!(
        run(
            &mut school,
            &sc,
            &as_organiser,
            absence("p1", AbsenceReason::NotValid)
        ),
        Error::NotAbsent { .. }
    );
    let valid = AbsenceReason::valid("справка № 7 от 14.02.2024").unwrap();
    run(&mut school, &sc, &as_organiser, absence("p3", valid)).unwrap();
    run(
        &mut school,
        &sc,
        &as_organiser,
        absence("p5", AbsenceReason::NotValid),
    )
    .unwrap();
    for (id, kind, text) in [
        ("p2", ActKind::Removal, "мобильный телефон"),
        ("p6", ActKind::Early(EarlyReason::Health), ""),
    ] {
        let act = Act {
            exam: feb,
            school: SchoolCode::new(SCHOOL).unwrap(),
            participant: pid(id),
            attempt: Attempt::new(1).unwrap(),
            room: room("101"),
            kind,
            text: text.into(),
            number: ActNumber::new(id).unwrap(),
            organiser: organiser.id,
            at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        };
        // As the school wrote it on that day: handed in today, long after February's scoring
        // ended, the act would be refused (`Error::ActAfterScoring`), and the fixture's
        // certificates begin yesterday, so it is dated now.
        let statement = act.sign(&organiser_key).unwrap();
        let attendance = match kind {
            ActKind::Removal => Attendance::Removed {
                act: act.number.clone(),
            },
            ActKind::Early(_) => Attendance::FinishedEarly {
                act: act.number.clone(),
            },
        };
        let doc = |kind: &str| -> giasync_shared::sync::DocId {
            format!("{kind}/4201/{SCHOOL}/{feb}").parse().unwrap()
        };
        school
            .change(now_ms(), doc("protocol"), |tx| {
                giasync_shared::content::put_act(
                    tx,
                    act.participant,
                    act.attempt,
                    &statement,
                    act.organiser,
                    &organiser_cert,
                )
            })
            .unwrap();
        school
            .change(now_ms(), doc("roster"), |tx| {
                giasync_shared::content::mark(tx, act.participant, &attendance)
            })
            .unwrap();
    }
    sync(&mut rcoi, &mut school);
    // The РЦОИ's results of February.
    publish_by_hand(
        &mut rcoi,
        feb,
        &[("p1", 6, Outcome::Fail), ("p7", 15, Outcome::Pass)],
    );

    // Retakes are listed for additional dates only.
    assert_refused!(
        run(
            &mut rcoi,
            &rc,
            &Actor::Console,
            Command::Retakes { exam: feb }
        ),
        Error::NotAnAdditionalDate { .. }
    );
    let Answer::Retakes(list) = console(&mut rcoi, &rc, Command::Retakes { exam: march }) else {
        panic!("not the retakes");
    };
    let date = feb.date();
    let rows: Vec<(&str, Option<Admission>, Option<u8>, bool)> = list
        .rows
        .iter()
        .map(|r| {
            (
                r.participant.as_str(),
                r.admission.clone(),
                r.attempt,
                r.refused.is_some(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("p1", Some(Admission::Failed { date }), Some(2), false),
            ("p2", Some(Admission::Removed { date }), Some(2), false),
            (
                "p3",
                Some(Admission::AbsentWithReason {
                    date,
                    document: "справка № 7 от 14.02.2024".into()
                }),
                Some(1),
                false
            ),
            ("p4", None, None, true),
            ("p5", None, None, true),
            (
                "p6",
                Some(Admission::FinishedEarly {
                    date,
                    reason: EarlyReason::Health
                }),
                Some(2),
                false
            ),
        ]
    );
    // The CSV and the XLSX read back as a region-wide list of the four admitted (documents read
    // upper-case).
    let dir = tempfile::tempdir().unwrap();
    let written: [(&str, Vec<u8>); 2] = [
        ("retakes.csv", super::retakes::csv(&list).into_bytes()),
        ("retakes.xlsx", super::retakes::xlsx(&list).unwrap()),
    ];
    for (name, bytes) in written {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let read = crate::import::read_list(&path).unwrap().unwrap();
        let numbers: Vec<(&str, Option<String>)> = read
            .iter()
            .map(|r| {
                (
                    r.participant.document.number(),
                    r.school.map(|s| s.to_string()),
                )
            })
            .collect();
        let school_code = Some(SCHOOL.to_owned());
        assert_eq!(
            numbers,
            vec![
                ("P10", school_code.clone()),
                ("P20", school_code.clone()),
                ("P30", school_code.clone()),
                ("P60", school_code.clone())
            ],
            "{name}"
        );
    }

    // A March list with p7, who passed, and p4, with no reason, is refused naming both rows.
    let refused = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::RegionImport {
            exam: march,
            rows: listed(&["p1", "p4", "p7"]),
        },
    );
    let Err(Error::RowsRefused(problems)) = refused else {
        panic!("{refused:?}");
    };
    let problems: Vec<(usize, RowFault)> =
        problems.into_iter().map(|p| (p.row, p.problem)).collect();
    assert_eq!(
        problems,
        vec![
            (
                3,
                RowFault::NotAdmitted(NotAdmitted::AbsentWithoutReason {
                    participant: pid("p4"),
                    date
                })
            ),
            (
                4,
                RowFault::NotAdmitted(NotAdmitted::Passed {
                    participant: pid("p7"),
                    date
                })
            ),
        ]
    );
    // The admitted are registered with their first attempt of the date.
    console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: march,
            rows: listed(&["p1", "p3"]),
        },
    );
    let register = rcoi
        .doc(&giasync_shared::sync::DocId::School {
            kind: giasync_shared::sync::DocKind::Rcoi,
            municipality: giasync_shared::codes::MunicipalityCode::new("4201").unwrap(),
            school: SchoolCode::new(SCHOOL).unwrap(),
            exam: march,
        })
        .unwrap();
    let attempt =
        |id: &str| giasync_shared::content::registered_attempt(register, id).map(Attempt::get);
    assert_eq!((attempt("p1"), attempt("p3")), (Some(2), Some(1)));
    // A corrected February (p1 passes after all) does not unregister or renumber p1: the list
    // imported again takes those it already holds as they are.
    publish_by_hand(
        &mut rcoi,
        feb,
        &[("p1", 12, Outcome::Pass), ("p7", 15, Outcome::Pass)],
    );
    console(
        &mut rcoi,
        &rc,
        Command::RegionImport {
            exam: march,
            rows: listed(&["p1", "p3"]),
        },
    );
    let register = rcoi
        .doc(&giasync_shared::sync::DocId::School {
            kind: giasync_shared::sync::DocKind::Rcoi,
            municipality: giasync_shared::codes::MunicipalityCode::new("4201").unwrap(),
            school: SchoolCode::new(SCHOOL).unwrap(),
            exam: march,
        })
        .unwrap();
    assert_eq!(
        giasync_shared::content::registered_attempt(register, "p1").map(Attempt::get),
        Some(2)
    );
}

/// Seed 002 §22, §37: the head of the school signs who scores in which room; an expert's sheet
/// for a participant outside their rooms is then refused when handed in. Expectations: exp-1
/// is named for 101 (where p1 is), exp-2 for 102 only.
/// Seed 002 §22, §37: once the head signed the commission order, only the interviewers it names
/// for a participant's room keep that participant's room log.
#[test]
fn the_room_log_is_kept_by_the_interviewers_the_order_names_for_the_room() {
    use giasync_shared::commission::{Commission, RoomCommission};
    let (mut e, c) = school_with_roster();
    let (head, head_key, head_cert) = person(SCHOOL, PersonRole::Head, 0);
    let (expert, _, _) = person(SCHOOL, PersonRole::Expert, 0);
    let (int1, _, _) = person(SCHOOL, PersonRole::Interviewer, 0);
    let (int2, _, _) = person(SCHOOL, PersonRole::Interviewer, 1);
    let nine = 9 * 3_600_000;
    let log = |p: &str, at: i64| Command::Log {
        exam: exam(),
        participant: pid(p),
        interviewer: None,
        at: on_exam_day(at),
        end: false,
        variant: None,
    };
    // With no order, any interviewer keeps the log.
    run(&mut e, &c, &Actor::Person(int2.clone()), log("p1", nine)).unwrap();
    let order = Commission {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        edition: 1,
        head: head.id,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        rooms: vec![RoomCommission {
            room: room("101"),
            interviewers: vec![int1.id],
            experts: vec![expert.id],
        }],
    };
    run(
        &mut e,
        &c,
        &Actor::Person(head.clone()),
        Command::Commission {
            exam: exam(),
            statement: order.sign(&head_key).unwrap().as_bytes().to_vec(),
            head_cert: head_cert.clone(),
        },
    )
    .unwrap();
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Person(int2.clone()),
            log("p1", nine + 60_000)
        ),
        Error::InterviewerNotOfRoom { room: Some(_), .. }
    );
    run(
        &mut e,
        &c,
        &Actor::Person(int1.clone()),
        log("p1", nine + 60_000),
    )
    .unwrap();
    // p3 sits in no room: no interviewer of the order keeps her log.
    assert_refused!(
        run(&mut e, &c, &Actor::Person(int1.clone()), log("p3", nine)),
        Error::InterviewerNotOfRoom { room: None, .. }
    );
    // The console names nobody and is not judged by the order.
    console(&mut e, &c, log("p2", nine));
    // Marking attendance too: an interviewer marks the participants of their own rooms only,
    // the responsible organiser anyone's.
    let absent = |p: &str| {
        Command::Mark(Marking {
            exam: exam(),
            participant: pid(p),
            attendance: Attendance::Absent,
        })
    };
    assert_refused!(
        run(&mut e, &c, &Actor::Person(int2.clone()), absent("p1")),
        Error::InterviewerNotOfRoom { room: Some(_), .. }
    );
    assert_refused!(
        run(&mut e, &c, &Actor::Person(int1.clone()), absent("p3")),
        Error::InterviewerNotOfRoom { room: None, .. }
    );
    run(&mut e, &c, &Actor::Person(int1.clone()), absent("p1")).unwrap();
    let (organiser, _, _) = person(SCHOOL, PersonRole::Organiser, 0);
    run(&mut e, &c, &Actor::Person(organiser), absent("p3")).unwrap();
}

#[test]
fn the_heads_commission_order_keeps_experts_to_their_rooms() {
    use giasync_shared::commission::{Commission, RoomCommission};
    let (mut e, c) = school_with_roster();
    let (head, head_key, head_cert) = person(SCHOOL, PersonRole::Head, 0);
    let (exp1, key1, cert1) = person(SCHOOL, PersonRole::Expert, 0);
    let (exp2, key2, cert2) = person(SCHOOL, PersonRole::Expert, 1);
    let (int1, _, _) = person(SCHOOL, PersonRole::Interviewer, 0);
    let order = |edition: u32, rooms: &[(&str, &PersonIdentity)]| Commission {
        exam: exam(),
        school: SchoolCode::new(SCHOOL).unwrap(),
        edition,
        head: head.id,
        at: Timestamp::from_unix_ms(now_ms()).unwrap(),
        rooms: rooms
            .iter()
            .map(|(r, expert)| RoomCommission {
                room: room(r),
                interviewers: vec![int1.id],
                experts: vec![expert.id],
            })
            .collect(),
    };
    let command = |o: &Commission, key: &SigningKey| Command::Commission {
        exam: exam(),
        statement: o.sign(key).unwrap().as_bytes().to_vec(),
        head_cert: head_cert.clone(),
    };
    let as_head = Actor::Person(head.clone());
    let first = order(1, &[("101", &exp1), ("102", &exp2)]);
    // Only the head signs it: an expert may not, nor may anybody with another key.
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Person(exp1.clone()),
            command(&first, &head_key)
        ),
        Error::Forbidden {
            action: Action::SignCommission,
            ..
        }
    );
    assert_refused!(
        run(&mut e, &c, &as_head, command(&first, &key1)),
        Error::RecordRefused(_)
    );
    // The first edition is 1; a room the roster does not declare is refused.
    assert_refused!(
        run(
            &mut e,
            &c,
            &as_head,
            command(&order(2, &[("101", &exp1)]), &head_key)
        ),
        Error::CommissionEdition { signed: 2, next: 1 }
    );
    assert_refused!(
        run(
            &mut e,
            &c,
            &as_head,
            command(&order(1, &[("909", &exp1)]), &head_key)
        ),
        Error::CommissionRoomUnknown { .. }
    );
    run(&mut e, &c, &as_head, command(&first, &head_key)).unwrap();
    let Answer::SchoolDay(day) = console(&mut e, &c, Command::SchoolDay { exam: Some(exam()) })
    else {
        panic!("not the day");
    };
    assert_eq!(day.rooms_of_expert(exp2.id), Some(vec![room("102")]));

    // exp-2 is not an expert of 101: their sheet for p1 is refused; exp-1's is taken.
    let refused = run(
        &mut e,
        &c,
        &Actor::Person(exp2.clone()),
        score(&exp2, &key2, &cert2, &c, "p1", 0),
    );
    assert_refused!(
        refused,
        Error::ExpertNotOfRoom {
            why: crate::app::NotOfRoom::NotNamed,
            ..
        }
    );
    run(
        &mut e,
        &c,
        &Actor::Person(exp1.clone()),
        score(&exp1, &key1, &cert1, &c, "p1", 0),
    )
    .unwrap();
    // p3 is in no room: a sheet naming room 101 for p3 is outside the roster's placing.
    let elsewhere = run(
        &mut e,
        &c,
        &Actor::Person(exp1.clone()),
        score(&exp1, &key1, &cert1, &c, "p3", 0),
    );
    assert_refused!(
        elsewhere,
        Error::ExpertNotOfRoom {
            why: crate::app::NotOfRoom::ParticipantElsewhere,
            ..
        }
    );

    // Edition 2 moves exp-1 to 102 and exp-2 to 101: exp-1's sheet for p1 keeps counting (edition
    // 1 named them), but a new sheet of theirs in 101 is refused; exp-2 now scores there.
    run(
        &mut e,
        &c,
        &as_head,
        command(&order(2, &[("101", &exp2), ("102", &exp1)]), &head_key),
    )
    .unwrap();
    assert_refused!(
        run(
            &mut e,
            &c,
            &Actor::Person(exp1.clone()),
            score(&exp1, &key1, &cert1, &c, "p2", 0),
        ),
        Error::ExpertNotOfRoom {
            why: crate::app::NotOfRoom::NotNamed,
            ..
        }
    );
    run(
        &mut e,
        &c,
        &Actor::Person(exp2.clone()),
        score(&exp2, &key2, &cert2, &c, "p2", 0),
    )
    .unwrap();
    let Answer::SchoolDay(day) = console(&mut e, &c, Command::SchoolDay { exam: Some(exam()) })
    else {
        panic!("not the day");
    };
    assert_eq!(
        day.participant("p1").unwrap().verdict,
        DayVerdict::Current,
        "exp-1's sheet signed under edition 1 still counts"
    );

    // A first order signed after the day was scored must not take a counting sheet away.
    let (mut fresh, fc) = school_with_roster();
    run(
        &mut fresh,
        &fc,
        &Actor::Person(exp2.clone()),
        score(&exp2, &key2, &cert2, &fc, "p1", 0),
    )
    .unwrap();
    assert_refused!(
        run(
            &mut fresh,
            &fc,
            &as_head,
            command(&order(1, &[("101", &exp1)]), &head_key)
        ),
        Error::CommissionUnscores { .. }
    );
}
