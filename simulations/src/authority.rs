//! Who may write each document and who holds it, written out from the design's table
//! (`docs/design.md`, "Documents and rights") to judge a run by — not by calling the engine's
//! rules (`DocId::writable_by`, `readable_by`), which are what the simulator is here to check.
//! A document is read by its text form (`roster/4201/420101/is-2024-02-14`), a node by its
//! organisation's code.
//!
//! | document | written by | held by |
//! |---|---|---|
//! | `directory` | РЦОИ | everyone |
//! | `roster/M/S/EXAM` | РЦОИ, school S | school S, МОУО M, РЦОИ |
//! | `protocol/M/S/EXAM` | school S | school S, МОУО M, РЦОИ |
//! | `results/M/S/EXAM` | school S | school S, МОУО M, РЦОИ |
//! | `rcoi/M/S/EXAM` | РЦОИ | school S, МОУО M, РЦОИ |
//!
//! (The engine also lets the РЦОИ write `results/…`, so that stores made before the РЦОИ's own
//! document existed keep loading; nothing in a simulated day writes there, so the table keeps
//! the design's stricter rule and a run in which the РЦОИ did would fail.)

use giasync_shared::codes::OrgCode;
use giasync_shared::identity::NodeIdentity;
use giasync_shared::sync::DocId;

/// Who a row of the table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Rcoi,
    /// The school the document belongs to.
    TheSchool,
    /// The МОУО of that school.
    ItsMunicipality,
}

/// The table: document kind (the first part of its id), who writes it, who holds it.
const TABLE: [(&str, &[Party], &[Party]); 4] = [
    (
        "roster",
        &[Party::Rcoi, Party::TheSchool],
        &[Party::TheSchool, Party::ItsMunicipality, Party::Rcoi],
    ),
    (
        "protocol",
        &[Party::TheSchool],
        &[Party::TheSchool, Party::ItsMunicipality, Party::Rcoi],
    ),
    (
        "results",
        &[Party::TheSchool],
        &[Party::TheSchool, Party::ItsMunicipality, Party::Rcoi],
    ),
    (
        "rcoi",
        &[Party::Rcoi],
        &[Party::TheSchool, Party::ItsMunicipality, Party::Rcoi],
    ),
];

/// A school's document as its id reads: kind, municipality code, school code.
fn parts(doc: &DocId) -> Option<(String, String, String)> {
    let text = doc.to_string();
    let mut it = text.split('/');
    let (kind, municipality, school) = (it.next()?, it.next()?, it.next()?);
    it.next()?;
    Some((kind.to_owned(), municipality.to_owned(), school.to_owned()))
}

/// Whether `node` is `party` for the school `school` of municipality `municipality`.
fn is(node: &NodeIdentity, party: Party, municipality: &str, school: &str) -> bool {
    match (party, node.org) {
        (Party::Rcoi, OrgCode::Rcoi(_)) => true,
        (Party::TheSchool, OrgCode::School(code)) => {
            code.to_string() == school
                && node
                    .municipality
                    .is_some_and(|m| m.to_string() == municipality)
        }
        (Party::ItsMunicipality, OrgCode::Municipality(code)) => code.to_string() == municipality,
        _ => false,
    }
}

fn judged(node: &NodeIdentity, doc: &DocId, column: impl Fn(usize) -> &'static [Party]) -> bool {
    if doc.to_string() == "directory" {
        return true;
    }
    let Some((kind, municipality, school)) = parts(doc) else {
        return false;
    };
    TABLE
        .iter()
        .position(|row| row.0 == kind)
        .is_some_and(|row| {
            column(row)
                .iter()
                .any(|party| is(node, *party, &municipality, &school))
        })
}

/// May `author` write `doc`, by the design's table?
#[must_use]
pub fn may_write(author: &NodeIdentity, doc: &DocId) -> bool {
    if doc.to_string() == "directory" {
        return matches!(author.org, OrgCode::Rcoi(_));
    }
    judged(author, doc, |row| TABLE[row].1)
}

/// Does `node` hold `doc`, by the design's table?
#[must_use]
pub fn holds(node: &NodeIdentity, doc: &DocId) -> bool {
    judged(node, doc, |row| TABLE[row].2)
}

/// The school a document belongs to (its code as the id reads), if it is a school's.
#[must_use]
pub fn school_of(doc: &DocId) -> Option<String> {
    parts(doc).map(|(_, _, school)| school)
}

#[cfg(test)]
mod tests {
    use super::*;
    use giasync_shared::codes::{MunicipalityCode, RegionCode, SchoolCode};

    fn rcoi() -> NodeIdentity {
        let region = RegionCode::new("42").unwrap();
        NodeIdentity {
            region,
            org: OrgCode::Rcoi(region),
            municipality: None,
        }
    }
    fn moyo(code: &str) -> NodeIdentity {
        NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org: OrgCode::Municipality(MunicipalityCode::new(code).unwrap()),
            municipality: None,
        }
    }
    fn school(m: &str, code: &str) -> NodeIdentity {
        NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org: OrgCode::School(SchoolCode::new(code).unwrap()),
            municipality: Some(MunicipalityCode::new(m).unwrap()),
        }
    }
    fn doc(text: &str) -> DocId {
        text.parse().unwrap()
    }

    /// The table, case by case, as the design states it.
    #[test]
    fn the_design_table_case_by_case() {
        let (r, m, s, other, elsewhere) = (
            rcoi(),
            moyo("4201"),
            school("4201", "420101"),
            school("4201", "420102"),
            moyo("4202"),
        );
        let cases = [
            (
                "roster/4201/420101/is-2024-02-14",
                [true, false, true, false, false],
            ),
            (
                "protocol/4201/420101/is-2024-02-14",
                [false, false, true, false, false],
            ),
            (
                "results/4201/420101/is-2024-02-14",
                [false, false, true, false, false],
            ),
            (
                "rcoi/4201/420101/is-2024-02-14",
                [true, false, false, false, false],
            ),
            ("directory", [true, false, false, false, false]),
        ];
        for (id, writers) in cases {
            let d = doc(id);
            let got = [&r, &m, &s, &other, &elsewhere].map(|n| may_write(n, &d));
            assert_eq!(got, writers, "writers of {id}");
            let holders = [&r, &m, &s, &other, &elsewhere].map(|n| holds(n, &d));
            let expected = if id == "directory" {
                [true; 5]
            } else {
                [true, true, true, false, false]
            };
            assert_eq!(holders, expected, "holders of {id}");
        }
        // A school of the same code under another municipality is not the school.
        let impostor = school("4202", "420101");
        assert!(!may_write(
            &impostor,
            &doc("protocol/4201/420101/is-2024-02-14")
        ));
        assert_eq!(
            school_of(&doc("rcoi/4201/420101/is-2024-02-14")).as_deref(),
            Some("420101")
        );
        assert_eq!(school_of(&doc("directory")), None);
    }

    /// The engine enforces the same table, except where the module says it is looser (the
    /// РЦОИ may still write `results/…`).
    #[test]
    fn the_engine_agrees_with_the_table() {
        let nodes = [
            rcoi(),
            moyo("4201"),
            moyo("4202"),
            school("4201", "420101"),
            school("4201", "420102"),
            school("4202", "420101"),
        ];
        for kind in ["roster", "protocol", "results", "rcoi"] {
            let d = doc(&format!("{kind}/4201/420101/is-2024-02-14"));
            for n in &nodes {
                let legacy = kind == "results" && matches!(n.org, OrgCode::Rcoi(_));
                if !legacy {
                    assert_eq!(d.writable_by(n), may_write(n, &d), "{n} writing {d}");
                }
                assert_eq!(d.readable_by(n), holds(n, &d), "{n} holding {d}");
            }
        }
    }
}
