//! The exam's results in the shape of the federal exchange (`docs/exports.md`, "federal.xml"):
//! one `Participant` element per attempt with a result that counts, with the fields the
//! regional information system (РИС) passes on to the federal one for итоговое собеседование —
//! the participant as the school's roster holds them (name, identity document; the school and
//! МОУО codes), the category the counting sheet was scored by, the exam's date as `dd.MM.yyyy`, the attempt, «зачет»/«незачет», the total and
//! the points per criterion — modelled on the data set Рособрнадзор's order № 831 of 18.06.2018
//! sets for replication between РИС and ФИС. Attempts in conflict are left out (they have no
//! result yet) and counted in the root's `conflicts` attribute, so a reader knows the file is not
//! whole. UTF-8, elements in a fixed order, participants by МОУО, school, participant and
//! attempt: the same documents give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use automerge::Automerge;

use crate::content;
use crate::exam::ExamId;
use crate::record::SignerDirectory;
use crate::resolve::Verdict;
use crate::rules::{Outcome, Rules};
use crate::settlement::Settler;
use crate::sync::{DocId, DocKind};

/// The layout's name and version, in the root element.
pub const FEDERAL_FORMAT: &str = "giasync-federal-1";

/// `text` with the five characters XML reserves escaped, and those XML 1.0 does not allow at
/// all (control characters but tab and line ends, U+FFFE, U+FFFF) replaced by U+FFFD, so a
/// damaged roster value cannot make the file ill-formed.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What counts for an attempt: its current sheet's, or a counted re-check's.
struct Counted<'a> {
    category: crate::participant::Category,
    points: &'a [(crate::rules::CriterionId, u8)],
    total: u16,
    outcome: Outcome,
    rules: &'a crate::rules::RulesId,
}

fn element(out: &mut String, indent: &str, name: &str, value: &str) {
    let _ = writeln!(out, "{indent}<{name}>{}</{name}>", escaped(value));
}

/// The exam's results as `federal.xml`, and how many participants it holds.
pub fn build<'a, D: SignerDirectory>(
    docs: impl IntoIterator<Item = (DocId, &'a Automerge)>,
    (region, exam): (&str, ExamId),
    rules: (&Rules, &BTreeSet<Settler>),
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
) -> (Vec<u8>, usize) {
    let docs: BTreeMap<DocId, &Automerge> = docs
        .into_iter()
        .filter(|(id, _)| matches!(id, DocId::School { exam: e, .. } if *e == exam))
        .collect();
    let mut body = String::new();
    let (mut participants, mut conflicts) = (0, 0);
    for (id, doc) in &docs {
        let DocId::School {
            kind: DocKind::Protocol,
            municipality,
            school,
            ..
        } = *id
        else {
            continue;
        };
        let sibling = |kind| {
            docs.get(&DocId::School {
                kind,
                municipality,
                school,
                exam,
            })
            .copied()
        };
        let roster = sibling(DocKind::Roster)
            .map(content::participants)
            .unwrap_or_default();
        // The identity document from the regional register, as the look-up takes it: the
        // roster is the school's to write, and must not tie a result to another document.
        let register = sibling(DocKind::Rcoi)
            .map(content::registered)
            .unwrap_or_default();
        let settled = crate::settlement::resolve_protocol(
            *doc,
            sibling(DocKind::Rcoi),
            rules,
            &directory_for,
        );
        // Each attempt as the publication counts it: a counted re-check's result over the
        // sheets' (of this school's exam only; a conflict stays a conflict).
        for subject in settled.attempts(school, exam) {
            let verdict = settled.resolution.subjects.get(subject).map(|r| &r.verdict);
            let sheet = match (settled.recheck_over_sheets(subject), verdict) {
                (Some((_, recheck)), _) => Counted {
                    category: recheck.category,
                    points: &recheck.points,
                    total: recheck.total,
                    outcome: recheck.outcome,
                    rules: &recheck.rules,
                },
                (None, Some(Verdict::Current(v) | Verdict::Settled { current: v, .. })) => {
                    Counted {
                        category: v.sheet.category,
                        points: &v.sheet.points,
                        total: v.sheet.total,
                        outcome: v.sheet.outcome,
                        rules: &v.sheet.rules,
                    }
                }
                (None, Some(Verdict::Conflict(_))) => {
                    conflicts += 1;
                    continue;
                }
                (None, Some(Verdict::Unscored) | None) => continue,
            };
            let row = roster.get(subject.participant.as_str());
            let field = |name: &str| row.map_or("", |r| r.get(name));
            let registered = register.get(subject.participant.as_str());
            let document = |name: &str| registered.map_or("", |r| r.get(name));
            let i = "    ";
            body.push_str("  <Participant>\n");
            element(&mut body, i, "MunicipalityCode", municipality.as_str());
            element(&mut body, i, "SchoolCode", school.as_str());
            element(&mut body, i, "ParticipantID", subject.participant.as_str());
            element(&mut body, i, "Surname", field("surname"));
            element(&mut body, i, "Name", field("given_name"));
            element(&mut body, i, "SecondName", field("patronymic"));
            element(&mut body, i, "DocumentSeries", document("doc_series"));
            element(&mut body, i, "DocumentNumber", document("doc_number"));
            element(&mut body, i, "Category", sheet.category.id());
            element(&mut body, i, "ExamDate", &exam.date().ru());
            element(&mut body, i, "Attempt", &subject.attempt.get().to_string());
            element(
                &mut body,
                i,
                "Result",
                match sheet.outcome {
                    Outcome::Pass => "зачет",
                    Outcome::Fail => "незачет",
                },
            );
            element(&mut body, i, "Mark", &sheet.total.to_string());
            body.push_str("    <Criteria>\n");
            for (criterion, points) in sheet.points {
                let _ = writeln!(
                    body,
                    "      <Criterion code=\"{}\">{points}</Criterion>",
                    escaped(criterion.as_str())
                );
            }
            body.push_str("    </Criteria>\n");
            element(&mut body, i, "Rules", sheet.rules.as_str());
            body.push_str("  </Participant>\n");
            participants += 1;
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<ResultsExchange format=\"{FEDERAL_FORMAT}\" region=\"{}\" exam=\"{}\" kind=\"{}\" date=\"{}\" participants=\"{participants}\" conflicts=\"{conflicts}\">",
        escaped(region),
        exam,
        exam.kind(),
        exam.date().ru(),
    );
    out.push_str(&body);
    out.push_str("</ResultsExchange>\n");
    (out.into_bytes(), participants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::fixtures::{directory, draft, rules, sign};

    /// A current sheet and a conflict: the file holds the one participant with a result, in the
    /// layout written out here by hand, and counts the conflict; markup in a name is escaped.
    #[test]
    fn the_federal_file_holds_each_counting_result_in_the_documented_layout() {
        use automerge::transaction::Transactable as _;
        let mut protocol = Automerge::new();
        let mut roster = Automerge::new();
        let current = sign(draft("p1", 15, 1), 1);
        let a = sign(draft("p2", 8, 1), 1);
        let b = sign(draft("p2", 12, 2), 2);
        let mut tx = protocol.transaction();
        for s in [&current, &a, &b] {
            let expert = s.decode_unverified().unwrap().expert;
            content::put_sheet(&mut tx, s, expert, &[]).unwrap();
        }
        tx.commit();
        let mut tx = roster.transaction();
        for (k, v) in [
            ("p/p1/surname", "О'Нил <Анна>\u{1}"),
            ("p/p1/given_name", "Анна"),
            ("p/p1/patronymic", ""),
            // The school's roster names another document than the register: not taken.
            ("p/p1/doc_series", "9999"),
            ("p/p1/doc_number", "999999"),
        ] {
            tx.put(automerge::ROOT, k, v).unwrap();
        }
        tx.commit();
        let mut rcoi = Automerge::new();
        let mut tx = rcoi.transaction();
        for (k, v) in [
            ("reg/p1/category", "standard"),
            ("reg/p1/doc_series", "3204"),
            ("reg/p1/doc_number", "111111"),
            ("reg/p2/category", "standard"),
        ] {
            tx.put(automerge::ROOT, k, v).unwrap();
        }
        for s in [&current, &a, &b] {
            content::put_receipt(&mut tx, &s.hash(), crate::ingest::RECEIPT_VERIFIED).unwrap();
        }
        tx.commit();
        let exam: ExamId = "is-2024-02-14".parse().unwrap();
        let id = |kind: &str| -> DocId { format!("{kind}/4201/420101/{exam}").parse().unwrap() };
        let chair = BTreeSet::from([Settler::Chair]);
        let (bytes, n) = build(
            [
                (id("protocol"), &protocol),
                (id("roster"), &roster),
                (id("rcoi"), &rcoi),
            ],
            ("42", exam),
            (&rules(), &chair),
            |_| directory(),
        );
        assert_eq!(n, 1);
        let text = String::from_utf8(bytes).unwrap();
        let points: String = current
            .decode_unverified()
            .unwrap()
            .points
            .iter()
            .map(|(c, p)| format!("      <Criterion code=\"{c}\">{p}</Criterion>\n"))
            .collect();
        let expected = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <ResultsExchange format=\"giasync-federal-1\" region=\"42\" exam=\"is-2024-02-14\" kind=\"is\" date=\"14.02.2024\" participants=\"1\" conflicts=\"1\">\n  \
             <Participant>\n    \
             <MunicipalityCode>4201</MunicipalityCode>\n    \
             <SchoolCode>420101</SchoolCode>\n    \
             <ParticipantID>p1</ParticipantID>\n    \
             <Surname>О&apos;Нил &lt;Анна&gt;\u{fffd}</Surname>\n    \
             <Name>Анна</Name>\n    \
             <SecondName></SecondName>\n    \
             <DocumentSeries>3204</DocumentSeries>\n    \
             <DocumentNumber>111111</DocumentNumber>\n    \
             <Category>standard</Category>\n    \
             <ExamDate>14.02.2024</ExamDate>\n    \
             <Attempt>1</Attempt>\n    \
             <Result>зачет</Result>\n    \
             <Mark>15</Mark>\n    \
             <Criteria>\n{points}    </Criteria>\n    \
             <Rules>is-2024</Rules>\n  \
             </Participant>\n\
             </ResultsExchange>\n"
        );
        assert_eq!(text, expected);
    }
}
