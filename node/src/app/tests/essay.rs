//! Итоговое сочинение (изложение) end to end on in-memory engines: the РЦОИ takes in its
//! processing's results (a row whose marks do not give its result refuses the whole file), signs
//! each school's results, the school verifies them and sees every mark; the look-up finds the
//! result by the identity document; the oversight shows the chain of seed 003 (РЦОИ → МОУО →
//! school → participants, each within one working day).

use std::collections::BTreeMap;

use giasync_shared::essay::EssayForm;
use giasync_shared::participant::IdentityDocument;

use super::*;
use crate::app::essay::EssayRow;

fn essay_exam() -> ExamId {
    format!("essay-{}", exam().date()).parse().unwrap()
}

fn marks(failed: &[&str]) -> BTreeMap<String, bool> {
    ["Т1", "Т2", "К1", "К2", "К3", "К4", "К5"]
        .iter()
        .map(|m| ((*m).to_owned(), !failed.contains(m)))
        .collect()
}

fn document(number: &str) -> IdentityDocument {
    IdentityDocument::new("3204", number).unwrap()
}

/// The participant id processing gives the holder of document 3204 `number`.
fn id(number: &str) -> ParticipantId {
    giasync_shared::import::participant_id(&document(number))
}

/// Row `n` of the file: the holder of document 3204 `number`, an сочинение failing `failed`.
fn row(n: usize, number: &str, failed: &[&str], outcome: Outcome) -> EssayRow {
    EssayRow {
        row: n,
        municipality: Some("4201".parse().unwrap()),
        school: SchoolCode::new(SCHOOL).unwrap(),
        participant: id(number),
        document: document(number),
        form: EssayForm::Essay,
        marks: marks(failed),
        outcome,
    }
}

#[test]
fn essay_results_are_taken_in_whole_signed_per_school_and_reach_the_school() {
    let (mut rcoi, rc) = node("42");
    let (mut school, sc) = node(SCHOOL);
    let exam = essay_exam();
    // e2 fails К2 (mandatory): «незачёт». A row claiming «зачёт» for those marks refuses the
    // whole file, naming its row; nothing is written.
    let bad = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::EssayImport {
            exam,
            rows: vec![
                row(2, "770001", &["К4"], Outcome::Pass),
                row(3, "770002", &["К2"], Outcome::Pass),
            ],
        },
    );
    match &bad {
        Err(Error::RowsRefused(rows)) => {
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].row, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        rcoi.doc_ids().next().is_none(),
        "a refused file wrote something"
    );
    // Into an ИС exam: refused.
    assert_refused!(
        run(
            &mut rcoi,
            &rc,
            &Actor::Console,
            Command::EssayImport {
                exam: super::exam(),
                rows: vec![row(2, "770001", &[], Outcome::Pass)],
            }
        ),
        Error::NotAnEssay(_)
    );
    // A school cannot take results in.
    assert_refused!(
        run(
            &mut school,
            &sc,
            &Actor::Console,
            Command::EssayImport {
                exam,
                rows: vec![row(2, "770001", &[], Outcome::Pass)],
            }
        ),
        Error::NotTheRcoi { .. }
    );
    let Answer::EssayImported(imported) = console(
        &mut rcoi,
        &rc,
        Command::EssayImport {
            exam,
            rows: vec![
                row(2, "770001", &["К4"], Outcome::Pass),
                row(3, "770002", &["К2"], Outcome::Fail),
            ],
        },
    ) else {
        panic!("not imported");
    };
    assert_eq!(
        (imported.participants, imported.schools, imported.passed),
        (2, 1, 1)
    );
    let Answer::Published(published) = console(&mut rcoi, &rc, Command::Publish { exam }) else {
        panic!("not published");
    };
    assert_eq!(
        published.published,
        vec![(SchoolCode::new(SCHOOL).unwrap(), 2)]
    );
    assert!(published.refused.is_empty(), "{published:?}");

    // The chain of seed 003 at the РЦОИ: processing ended today, so the results are due at
    // the МОУО (published: done) and at the school within a working day each.
    let chain = |rcoi: &mut Engine| -> Vec<(String, giasync_shared::oversight::DeadlineState)> {
        let Answer::Oversight(o) = console(rcoi, &rc, Command::Oversight) else {
            panic!("not oversight");
        };
        o.deadlines
            .iter()
            .filter(|d| d.exam == exam)
            .map(|d| (d.step.clone(), d.state))
            .collect()
    };
    use giasync_shared::oversight::DeadlineState::{Done, Pending};
    assert_eq!(
        chain(&mut rcoi),
        vec![
            ("results_to_municipality".to_owned(), Done),
            ("results_to_school".to_owned(), Pending),
            ("familiarisation".to_owned(), Pending),
        ]
    );

    // The school verifies the РЦОИ's signature and sees each mark.
    sync(&mut rcoi, &mut school);
    let Answer::Results(results) = console(&mut school, &sc, Command::Results { exam }) else {
        panic!("not results");
    };
    let e2 = results
        .rows
        .iter()
        .find(|r| r.participant == id("770002"))
        .unwrap();
    assert_eq!((e2.total, e2.outcome), (6, Outcome::Fail));
    assert_eq!(
        e2.marks.iter().find(|(m, _)| m == "К2"),
        Some(&("К2".to_owned(), false))
    );
    // The school's node notes when the results first verified there; back at the РЦОИ that
    // step is done.
    let changed: Vec<giasync_shared::sync::DocId> = school.doc_ids().copied().collect();
    assert!(crate::app::react(&mut school, &sc, &changed, now_ms()));
    sync(&mut rcoi, &mut school);
    assert_eq!(
        chain(&mut rcoi),
        vec![
            ("results_to_municipality".to_owned(), Done),
            ("results_to_school".to_owned(), Done),
            ("familiarisation".to_owned(), Pending),
        ]
    );
    // Processing corrects e2's document number (770002 → 770012): the new file replaces the
    // school's results whole, the old entry gone; when processing ended stays the first import.
    let processed = |rcoi: &Engine| {
        rcoi.doc(&format!("rcoi/4201/{SCHOOL}/{exam}").parse().unwrap())
            .and_then(giasync_shared::essay::stored::processed)
    };
    let first = processed(&rcoi);
    let corrected = vec![
        row(2, "770001", &["К4"], Outcome::Pass),
        row(3, "770012", &["К2"], Outcome::Fail),
    ];
    // A row whose id is not its document's, and a participant twice: refused, naming both.
    let mut wrong_id = row(4, "770013", &[], Outcome::Pass);
    wrong_id.participant = id("770001");
    let refused = run(
        &mut rcoi,
        &rc,
        &Actor::Console,
        Command::EssayImport {
            exam,
            rows: vec![
                row(2, "770001", &["К4"], Outcome::Pass),
                row(3, "770001", &["К4"], Outcome::Pass),
                wrong_id,
            ],
        },
    );
    match &refused {
        Err(Error::RowsRefused(rows)) => {
            assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), vec![3, 4]);
        }
        other => panic!("{other:?}"),
    }
    console(
        &mut rcoi,
        &rc,
        Command::EssayImport {
            exam,
            rows: corrected,
        },
    );
    let held: Vec<ParticipantId> = rcoi
        .doc(&format!("rcoi/4201/{SCHOOL}/{exam}").parse().unwrap())
        .map(giasync_shared::essay::stored::results)
        .unwrap()
        .into_keys()
        .collect();
    let mut expected = vec![id("770001"), id("770012")];
    expected.sort();
    assert_eq!(held, expected);
    assert_eq!(processed(&rcoi), first);
    // The look-up at the РЦОИ finds it by the identity document.
    let Answer::Lookup { found } = console(
        &mut rcoi,
        &rc,
        Command::Lookup(LookupQuery {
            document: document("770001"),
        }),
    ) else {
        panic!("not found");
    };
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].exam, found[0].outcome), (exam, Outcome::Pass));
}
