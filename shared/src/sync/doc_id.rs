//! Document ids and who may read and write each document (DESIGN.md §2).
//!
//! A school's documents name the school's municipality in their id, so authorisation is a pure
//! function of the id and the peer's certified identity: a school can only write documents whose
//! id names its own code and municipality, and a МОУО hub reads exactly the documents of its
//! municipality.

use std::fmt;
use std::str::FromStr;

use crate::codes::{MunicipalityCode, OrgCode, SchoolCode};
use crate::error::{DomainError, Field};
use crate::exam::ExamId;

use super::NodeIdentity;

/// The longest document id text, in bytes.
pub const DOC_ID_BYTES_MAX: usize = 64;

/// What a document holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    /// Participants, categories, room assignment, attendance: written by the РЦОИ and the school.
    Roster,
    /// Room logs, acts, signed score sheets: written by the school only.
    Protocol,
    /// The school's side of its results: when they reached it, familiarisation records. Written
    /// by the school. Before layout 2 the РЦОИ also wrote its receipts, settlements and
    /// publication here; those keys are no longer read (see [`DocKind::Rcoi`]), and the РЦОИ may
    /// still author changes here only so that stores made before then keep loading.
    Results,
    /// What the РЦОИ vouches for about a school: receipts for its sheets, settlements,
    /// numbered publications of its results. Written by the РЦОИ only, so a school can neither
    /// receipt its own sheets nor roll its results back (layout 2).
    Rcoi,
}

impl DocKind {
    fn id(self) -> &'static str {
        match self {
            DocKind::Roster => "roster",
            DocKind::Protocol => "protocol",
            DocKind::Results => "results",
            DocKind::Rcoi => "rcoi",
        }
    }
}

/// The id of a replicated document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    /// The region directory: municipalities, schools, rooms, staff, revocations. Written by the
    /// РЦОИ, read by everyone.
    Directory,
    /// A school's document for one exam.
    School {
        kind: DocKind,
        municipality: MunicipalityCode,
        school: SchoolCode,
        exam: ExamId,
    },
}

impl DocId {
    /// May `who` hold and read this document?
    #[must_use]
    pub fn readable_by(&self, who: &NodeIdentity) -> bool {
        match self {
            DocId::Directory => true,
            DocId::School {
                municipality,
                school,
                ..
            } => match who.org {
                OrgCode::Rcoi(_) => true,
                OrgCode::Municipality(m) => m == *municipality,
                OrgCode::School(s) => s == *school && who.municipality == Some(*municipality),
            },
        }
    }

    /// May `who` author changes to this document?
    #[must_use]
    pub fn writable_by(&self, who: &NodeIdentity) -> bool {
        match self {
            DocId::Directory => matches!(who.org, OrgCode::Rcoi(_)),
            DocId::School {
                kind,
                municipality,
                school,
                ..
            } => {
                let is_the_school =
                    who.org == OrgCode::School(*school) && who.municipality == Some(*municipality);
                let is_the_rcoi = matches!(who.org, OrgCode::Rcoi(_));
                match kind {
                    DocKind::Protocol => is_the_school,
                    DocKind::Roster | DocKind::Results => is_the_school || is_the_rcoi,
                    DocKind::Rcoi => is_the_rcoi,
                }
            }
        }
    }

    /// The school's document of `kind` for the same exam as this one; `None` for the directory.
    #[must_use]
    pub fn sibling(&self, kind: DocKind) -> Option<DocId> {
        match *self {
            DocId::Directory => None,
            DocId::School {
                municipality,
                school,
                exam,
                ..
            } => Some(DocId::School {
                kind,
                municipality,
                school,
                exam,
            }),
        }
    }

    /// The kind of a school's document; `None` for the directory.
    #[must_use]
    pub fn kind(&self) -> Option<DocKind> {
        match self {
            DocId::Directory => None,
            DocId::School { kind, .. } => Some(*kind),
        }
    }

    /// The school a document belongs to, if any.
    #[must_use]
    pub fn school(&self) -> Option<SchoolCode> {
        match self {
            DocId::Directory => None,
            DocId::School { school, .. } => Some(*school),
        }
    }
}

// In views and on the admin socket: its text form.
crate::text::serde_via_text!(DocId);

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Directory => f.write_str("directory"),
            DocId::School {
                kind,
                municipality,
                school,
                exam,
            } => write!(f, "{}/{municipality}/{school}/{exam}", kind.id()),
        }
    }
}

impl FromStr for DocId {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, DomainError> {
        if text == "directory" {
            return Ok(DocId::Directory);
        }
        let bad = || {
            DomainError::invalid(
                Field::DocId,
                text,
                "must be directory or KIND/MUNICIPALITY/SCHOOL/EXAM",
            )
        };
        if text.len() > DOC_ID_BYTES_MAX {
            return Err(bad());
        }
        let mut parts = text.splitn(4, '/');
        let (Some(kind), Some(municipality), Some(school), Some(exam)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let kind = match kind {
            "roster" => DocKind::Roster,
            "protocol" => DocKind::Protocol,
            "results" => DocKind::Results,
            "rcoi" => DocKind::Rcoi,
            _ => return Err(bad()),
        };
        Ok(DocId::School {
            kind,
            municipality: MunicipalityCode::new(municipality)?,
            school: SchoolCode::new(school)?,
            exam: exam.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{NodeRole, RegionCode};

    fn node(role: NodeRole, code: &str, municipality: Option<&str>) -> NodeIdentity {
        NodeIdentity {
            region: RegionCode::new("42").unwrap(),
            org: OrgCode::parse(role, code).unwrap(),
            municipality: municipality.map(|m| MunicipalityCode::new(m).unwrap()),
        }
    }

    fn doc(kind: &str) -> DocId {
        format!("{kind}/4201/420101/is-2024-02-14").parse().unwrap()
    }

    #[test]
    fn ids_round_trip() {
        for text in [
            "directory",
            "roster/4201/420101/is-2024-02-14",
            "results/01/1/is-2024-04-15",
            "rcoi/4201/420101/is-2024-02-14",
        ] {
            assert_eq!(text.parse::<DocId>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "roster",
            "roster/4201/420101",
            "minutes/4201/420101/is-2024-02-14",
            "roster/x/420101/is-2024-02-14",
        ] {
            assert!(bad.parse::<DocId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_design_table_of_rights() {
        let rcoi = node(NodeRole::Rcoi, "42", None);
        let own_moyo = node(NodeRole::Municipality, "4201", None);
        let other_moyo = node(NodeRole::Municipality, "4202", None);
        let school = node(NodeRole::School, "420101", Some("4201"));
        let other_school = node(NodeRole::School, "420102", Some("4201"));
        let misfiled = node(NodeRole::School, "420101", Some("4202"));
        for kind in ["roster", "protocol", "results", "rcoi"] {
            let d = doc(kind);
            assert!(
                d.readable_by(&rcoi) && d.readable_by(&own_moyo) && d.readable_by(&school),
                "{kind}"
            );
            assert!(
                !d.readable_by(&other_moyo)
                    && !d.readable_by(&other_school)
                    && !d.readable_by(&misfiled),
                "{kind}"
            );
            assert!(
                !d.writable_by(&own_moyo)
                    && !d.writable_by(&other_school)
                    && !d.writable_by(&misfiled),
                "a hub never writes a school's document"
            );
        }
        // Written out from the design table, not from the rule: (kind, school, РЦОИ).
        for (kind, by_school, by_rcoi) in [
            ("roster", true, true),
            ("protocol", true, false),
            ("results", true, true),
            ("rcoi", false, true),
        ] {
            assert_eq!(
                doc(kind).writable_by(&school),
                by_school,
                "{kind} by the school"
            );
            assert_eq!(doc(kind).writable_by(&rcoi), by_rcoi, "{kind} by the РЦОИ");
        }
        assert!(DocId::Directory.readable_by(&other_school) && DocId::Directory.writable_by(&rcoi));
        assert!(!DocId::Directory.writable_by(&own_moyo) && !DocId::Directory.writable_by(&school));
    }
}
