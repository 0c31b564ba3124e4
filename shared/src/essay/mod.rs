//! Итоговое сочинение (изложение): its requirements and criteria as data
//! (`shared/rules/essay-2024.toml`), the outcome they give, and the РЦОИ's results file.
//!
//! The results come from the РЦОИ's processing, not from school experts: the РЦОИ imports the
//! file its processing system writes (CSV in UTF-8 or Windows-1251, or XLSX), one row per
//! participant with «зачёт»/«незачёт» per requirement and criterion. Every row is checked — the
//! participant, the form (сочинение or изложение), each mark, and the result when the file
//! states one (it must be the one the marks give) — and a file with any bad row imports nothing,
//! with an error per row.

pub mod stored;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::codes::{MunicipalityCode, ParticipantId, SchoolCode};
use crate::datafile::{self, DataFileError};
use crate::import::{RowError, participant_id};
use crate::participant::{FullName, IdentityDocument};
use crate::rules::Outcome;

/// The format version of essay rules files this build reads.
pub const ESSAY_FORMAT: i64 = 1;
/// The shipped rules of 2023/24.
pub const ESSAY_2024_TOML: &str = include_str!("../../rules/essay-2024.toml");
/// The most requirements or criteria of one form.
pub const MARKS_MAX: usize = 16;
/// The most rows one results file may hold.
pub const RESULT_ROWS_MAX: usize = 100_000;

crate::codes::id_enum!(
    /// The form of the work.
    EssayForm, crate::Field::YearData, {
        /// Итоговое сочинение.
        Essay = "essay", "сочинение";
        /// Итоговое изложение (for participants with disabilities and some others).
        Summary = "summary", "изложение";
    }
);

/// A requirement or criterion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub id: String,
    pub title: String,
    /// A criterion whose «незачёт» fails the work (requirements always do).
    pub mandatory: bool,
}

/// The criteria of one form and how many non-mandatory ones must pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormRules {
    pub form: EssayForm,
    pub title: String,
    pub words_min: u32,
    pub others_min: usize,
    pub criteria: Vec<Mark>,
}

/// The year's rules of итоговое сочинение (изложение).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EssayRules {
    pub id: String,
    pub title: String,
    pub requirements: Vec<Mark>,
    forms: BTreeMap<EssayForm, FormRules>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Checked by `datafile::parse` before the rest.
    #[serde(rename = "format")]
    _format: i64,
    id: String,
    exam: crate::exam::ExamKind,
    title: String,
    requirement: Vec<RawMark>,
    form: Vec<RawForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMark {
    id: String,
    title: String,
    #[serde(default)]
    mandatory: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    id: EssayForm,
    title: String,
    words_min: u32,
    others_min: usize,
    criterion: Vec<RawMark>,
}

/// A mark id: one or two capital letters (Cyrillic or Latin) and one or two digits (Т1, К5).
fn valid_mark_id(id: &str) -> bool {
    let letters = id.chars().take_while(|c| c.is_uppercase()).count();
    let digits = id
        .chars()
        .skip(letters)
        .take_while(char::is_ascii_digit)
        .count();
    (1..=2).contains(&letters)
        && (1..=2).contains(&digits)
        && letters + digits == id.chars().count()
}

impl EssayRules {
    /// The shipped rules of 2023/24.
    pub fn year_2024() -> Result<Self, DataFileError> {
        Self::parse(ESSAY_2024_TOML, "shared/rules/essay-2024.toml")
    }

    /// Reads and validates the rules file at `path`.
    pub fn load(path: &Path) -> Result<Self, DataFileError> {
        let (text, file) = datafile::read(path)?;
        Self::parse(&text, &file)
    }

    /// Validates a rules file's `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, DataFileError> {
        let raw: RawFile = datafile::parse(text, file, ESSAY_FORMAT)?;
        let bad = |message: String| DataFileError::invalid(file, message);
        if raw.exam != crate::exam::ExamKind::Essay {
            return Err(bad(format!(
                "exam {} (an essay rules file is for \"essay\")",
                raw.exam
            )));
        }
        if raw.id.trim().is_empty() || raw.title.trim().is_empty() {
            return Err(bad("id and title must not be empty".into()));
        }
        let marks = |list: Vec<RawMark>, what: &str, requirement: bool| {
            if list.is_empty() || list.len() > MARKS_MAX {
                return Err(bad(format!("{what}: 1..={MARKS_MAX} of them")));
            }
            let mut out: Vec<Mark> = Vec::new();
            for m in list {
                if !valid_mark_id(&m.id) {
                    return Err(bad(format!("{what}: id {:?} is not like К1 or Т2", m.id)));
                }
                if out.iter().any(|x| x.id == m.id) {
                    return Err(bad(format!("{what}: {} twice", m.id)));
                }
                if m.title.trim().is_empty() {
                    return Err(bad(format!("{what}: {} has no title", m.id)));
                }
                let mandatory = match (requirement, m.mandatory) {
                    (true, None | Some(true)) => true,
                    (true, Some(false)) => {
                        return Err(bad(format!(
                            "{what}: {} — every requirement must be met",
                            m.id
                        )));
                    }
                    (false, Some(m)) => m,
                    (false, None) => {
                        return Err(bad(format!(
                            "{what}: {} needs mandatory = true or false",
                            m.id
                        )));
                    }
                };
                out.push(Mark {
                    id: m.id,
                    title: m.title.trim().to_owned(),
                    mandatory,
                });
            }
            Ok(out)
        };
        let requirements = marks(raw.requirement, "requirements", true)?;
        let mut forms = BTreeMap::new();
        for f in raw.form {
            let what = format!("form {}", f.id);
            let criteria = marks(f.criterion, &what, false)?;
            if let Some(c) = criteria
                .iter()
                .find(|c| requirements.iter().any(|r| r.id == c.id))
            {
                return Err(bad(format!("{what}: {} is also a requirement", c.id)));
            }
            let others = criteria.iter().filter(|c| !c.mandatory).count();
            if !criteria.iter().any(|c| c.mandatory) || f.others_min > others {
                return Err(bad(format!(
                    "{what}: needs a mandatory criterion, and others_min {} of {others} other criteria",
                    f.others_min
                )));
            }
            if f.words_min == 0 {
                return Err(bad(format!("{what}: words_min must be above 0")));
            }
            let rules = FormRules {
                form: f.id,
                title: f.title.trim().to_owned(),
                words_min: f.words_min,
                others_min: f.others_min,
                criteria,
            };
            if forms.insert(f.id, rules).is_some() {
                return Err(bad(format!("{what} twice")));
            }
        }
        if forms.is_empty() {
            return Err(bad("no form".into()));
        }
        Ok(EssayRules {
            id: raw.id,
            title: raw.title.trim().to_owned(),
            requirements,
            forms,
        })
    }

    /// The rules of `form`, if the year has it.
    #[must_use]
    pub fn form(&self, form: EssayForm) -> Option<&FormRules> {
        self.forms.get(&form)
    }

    /// The outcome `marks` (by mark id: passed or not) give a work of `form`: «зачёт» when every
    /// requirement and every mandatory criterion passed and at least `others_min` other criteria
    /// did. `Err` names a mark missing or one the form does not have.
    pub fn outcome(
        &self,
        form: EssayForm,
        marks: &BTreeMap<String, bool>,
    ) -> Result<Outcome, String> {
        let rules = self
            .form(form)
            .ok_or_else(|| format!("the year's rules have no {}", form.display_name()))?;
        let known = self.requirements.iter().chain(&rules.criteria);
        let passed = |m: &Mark| {
            marks
                .get(&m.id)
                .copied()
                .ok_or_else(|| format!("no mark for {}", m.id))
        };
        let mut all_needed = true;
        let mut others = 0;
        for m in known {
            let ok = passed(m)?;
            if m.mandatory {
                all_needed &= ok;
            } else if ok {
                others += 1;
            }
        }
        if let Some(extra) = marks.keys().find(|id| {
            !self
                .requirements
                .iter()
                .chain(&rules.criteria)
                .any(|m| &m.id == *id)
        }) {
            return Err(format!(
                "{extra} is not a mark of the {}",
                form.display_name()
            ));
        }
        Ok(if all_needed && others >= rules.others_min {
            Outcome::Pass
        } else {
            Outcome::Fail
        })
    }
}

/// One participant's result as the РЦОИ's processing gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EssayResult {
    /// The row in the file (1-based, the header is row 1).
    pub row: usize,
    pub municipality: Option<MunicipalityCode>,
    pub school: SchoolCode,
    pub participant: ParticipantId,
    pub name: FullName,
    pub document: IdentityDocument,
    pub form: EssayForm,
    /// «зачёт» (true) or «незачёт» per requirement and criterion id.
    pub marks: BTreeMap<String, bool>,
    pub outcome: Outcome,
}

/// «зачёт»/«незачёт» as processing systems print them.
fn pass_fail(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().replace('ё', "е").as_str() {
        "зачет" | "1" | "+" | "да" | "pass" => Some(true),
        "незачет" | "0" | "-" | "нет" | "fail" => Some(false),
        _ => None,
    }
}

fn form_of(text: &str) -> Option<EssayForm> {
    let t = text.trim().to_lowercase();
    match t.as_str() {
        "сочинение" | "итоговое сочинение" | "essay" => {
            Some(EssayForm::Essay)
        }
        "изложение" | "итоговое изложение" | "summary" => {
            Some(EssayForm::Summary)
        }
        _ => None,
    }
}

/// Parses the results file's table (as read from CSV or a spreadsheet's first sheet: a header
/// row and records, each its cells or why it could not be read) against `rules`. Any bad row
/// and nothing is returned but the errors, one per bad row.
pub fn parse_results(
    rules: &EssayRules,
    headers: &[String],
    records: impl IntoIterator<Item = Result<Vec<String>, String>>,
) -> Result<Vec<EssayResult>, Vec<RowError>> {
    let header_error = |message: String| vec![RowError { row: 1, message }];
    let index: BTreeMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_lowercase(), i))
        .collect();
    // One column per field: a file with two headers for one (say «Номер» and «Номер
    // документа») is refused rather than read from either.
    let column = |key: &str, names: &[&str]| -> Result<Option<usize>, Vec<RowError>> {
        let found: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| index.contains_key(*n))
            .collect();
        match found[..] {
            [] => Ok(None),
            [one] => Ok(index.get(one).copied()),
            _ => Err(header_error(format!(
                "columns {} all give the {key} column: keep one",
                found.join(", ")
            ))),
        }
    };
    let required = [
        ("school", &["код оо", "school"][..]),
        ("surname", &["фамилия", "surname"][..]),
        ("name", &["имя", "name"][..]),
        (
            "number",
            &["номер", "номер документа", "documentnumber", "number"][..],
        ),
        ("form", &["форма", "вид", "form"][..]),
    ];
    let mut at = BTreeMap::new();
    for (key, names) in required {
        let i = column(key, names)?.ok_or_else(|| {
            header_error(format!("no {key} column (headers: {})", headers.join(", ")))
        })?;
        at.insert(key, i);
    }
    let optional = [
        ("municipality", &["код моуо", "код мсу", "municipality"][..]),
        ("patronymic", &["отчество", "secondname", "patronymic"][..]),
        (
            "series",
            &["серия", "серия документа", "documentseries", "series"][..],
        ),
        ("result", &["результат", "result"][..]),
    ];
    for (key, names) in optional {
        if let Some(i) = column(key, names)? {
            at.insert(key, i);
        }
    }
    // Every requirement and every criterion of any form has its column, by its id.
    let mut mark_ids: Vec<&str> = rules.requirements.iter().map(|m| m.id.as_str()).collect();
    for f in rules.forms.values() {
        for c in &f.criteria {
            if !mark_ids.contains(&c.id.as_str()) {
                mark_ids.push(&c.id);
            }
        }
    }
    let mut mark_at = BTreeMap::new();
    for id in &mark_ids {
        let i = index.get(&id.to_lowercase()).copied().ok_or_else(|| {
            header_error(format!("no column {id} (the rules {} have it)", rules.id))
        })?;
        mark_at.insert(id.to_string(), i);
    }
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    let mut seen: BTreeMap<ParticipantId, usize> = BTreeMap::new();
    for (i, record) in records.into_iter().enumerate() {
        let row = i + 2;
        if row > RESULT_ROWS_MAX + 1 {
            errors.push(RowError {
                row,
                message: format!("more than {RESULT_ROWS_MAX} rows"),
            });
            break;
        }
        let record = match record {
            Ok(r) if r.iter().all(|c| c.trim().is_empty()) => continue,
            Ok(r) => r,
            Err(message) => {
                errors.push(RowError { row, message });
                continue;
            }
        };
        let cell = |i: usize| record.get(i).map_or("", |c| c.trim());
        let field = |key: &str| at.get(key).map_or("", |&i| cell(i));
        let parsed = (|| -> Result<EssayResult, String> {
            let code = |t: &str| -> String {
                t.chars()
                    .filter(|c| !matches!(c, '-' | ' ' | '\u{a0}'))
                    .collect()
            };
            let school = SchoolCode::new(&code(field("school"))).map_err(|e| e.to_string())?;
            let municipality = match code(field("municipality")).as_str() {
                "" => None,
                m => Some(MunicipalityCode::new(m).map_err(|e| e.to_string())?),
            };
            let name = FullName::new(field("surname"), field("name"), field("patronymic"))
                .map_err(|e| e.to_string())?;
            let document = IdentityDocument::new(field("series"), field("number"))
                .map_err(|e| e.to_string())?;
            let form = form_of(field("form")).ok_or_else(|| {
                format!(
                    "form {:?} is neither сочинение nor изложение",
                    field("form")
                )
            })?;
            let form_rules = rules
                .form(form)
                .ok_or_else(|| format!("the rules {} have no {}", rules.id, form.display_name()))?;
            let mut marks = BTreeMap::new();
            for m in &rules.requirements {
                let text = mark_at.get(&m.id).map_or("", |&i| cell(i));
                let ok = pass_fail(text)
                    .ok_or_else(|| format!("{} {text:?} is neither «зачёт» nor «незачёт»", m.id))?;
                marks.insert(m.id.clone(), ok);
            }
            // A work that fails a requirement is not checked against the criteria: blank cells
            // there read as «незачёт».
            let checked = marks.values().all(|ok| *ok);
            for m in &form_rules.criteria {
                let text = mark_at.get(&m.id).map_or("", |&i| cell(i));
                let ok = match pass_fail(text) {
                    Some(ok) => ok,
                    None if !checked && text.is_empty() => false,
                    None => {
                        return Err(format!(
                            "{} {text:?} is neither «зачёт» nor «незачёт»",
                            m.id
                        ));
                    }
                };
                marks.insert(m.id.clone(), ok);
            }
            let outcome = rules.outcome(form, &marks)?;
            if let Some(stated) = Some(field("result")).filter(|r| !r.is_empty()) {
                let stated_pass = pass_fail(stated)
                    .ok_or_else(|| format!("result {stated:?} is neither «зачёт» nor «незачёт»"))?;
                if stated_pass != (outcome == Outcome::Pass) {
                    return Err(format!(
                        "the result says {stated:?}, the marks give «{}»",
                        outcome.display_name()
                    ));
                }
            }
            Ok(EssayResult {
                row,
                municipality,
                school,
                participant: participant_id(&document),
                name,
                document,
                form,
                marks,
                outcome,
            })
        })();
        match parsed {
            Ok(r) => match seen.insert(r.participant, row) {
                Some(first) => errors.push(RowError {
                    row,
                    message: format!("the same identity document as row {first}"),
                }),
                None => rows.push(r),
            },
            Err(message) => errors.push(RowError { row, message }),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// [`parse_results`] of a CSV text (`;` or `,`).
pub fn parse_results_csv(
    rules: &EssayRules,
    text: &str,
) -> Result<Vec<EssayResult>, Vec<RowError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = if text.lines().next().unwrap_or("").contains(';') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            return Err(vec![RowError {
                row: 1,
                message: e.to_string(),
            }]);
        }
    };
    parse_results(
        rules,
        &headers,
        crate::import::records_by_line(text, &mut reader),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// The rule written out by hand: both requirements, К1 and К2, and one of К3–К5.
    #[test]
    fn the_outcome_follows_the_requirements_and_criteria() {
        let rules = EssayRules::year_2024().unwrap();
        let all = [
            ("Т1", true),
            ("Т2", true),
            ("К1", true),
            ("К2", true),
            ("К3", false),
            ("К4", false),
            ("К5", true),
        ];
        let pass = rules.outcome(EssayForm::Essay, &marks(&all)).unwrap();
        assert_eq!(pass, Outcome::Pass);
        for (flip, expected) in [
            ("Т1", Outcome::Fail),
            ("Т2", Outcome::Fail),
            ("К1", Outcome::Fail),
            ("К2", Outcome::Fail),
            ("К5", Outcome::Fail),
            ("К3", Outcome::Pass),
        ] {
            let mut m = marks(&all);
            let v = m[flip];
            m.insert(flip.to_owned(), !v);
            assert_eq!(
                rules.outcome(EssayForm::Essay, &m).unwrap(),
                expected,
                "{flip}"
            );
        }
        let mut missing = marks(&all);
        missing.remove("К4");
        assert!(
            rules
                .outcome(EssayForm::Essay, &missing)
                .unwrap_err()
                .contains("К4")
        );
        let mut extra = marks(&all);
        extra.insert("К9".into(), true);
        assert!(
            rules
                .outcome(EssayForm::Summary, &extra)
                .unwrap_err()
                .contains("К9")
        );
    }

    #[test]
    fn a_bad_rules_file_is_refused_naming_the_problem() {
        let base = ESSAY_2024_TOML;
        for (text, named) in [
            (
                base.replacen("others_min = 1", "others_min = 4", 1),
                "others_min 4",
            ),
            (base.replacen("id = \"К3\"", "id = \"К1\"", 1), "К1 twice"),
            (
                base.replacen("\nexam = \"essay\"", "\nexam = \"is\"", 1),
                "exam is",
            ),
            (
                base.replacen("id = \"К5\"", "id = \"K-5\"", 1),
                "\"K-5\" is not like",
            ),
            (
                base.replacen("id = \"К4\"", "id = \"Т1\"", 1),
                "Т1 is also a requirement",
            ),
        ] {
            assert_ne!(text, base, "{named}");
            let err = EssayRules::parse(&text, "essay.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("essay.toml") && err.contains(named),
                "{err}"
            );
        }
    }

    const HEADER: &str =
        "Код МОУО;Код ОО;Фамилия;Имя;Отчество;Серия;Номер;Форма;Т1;Т2;К1;К2;К3;К4;К5;Результат";

    #[test]
    fn a_results_file_reads_every_row_or_names_every_bad_one() {
        let rules = EssayRules::year_2024().unwrap();
        let good = format!(
            "{HEADER}\n\
             42-01;42-01-01;Иванова;Анна;Сергеевна;3204;111111;сочинение;зачёт;зачёт;зачёт;зачёт;незачёт;незачёт;зачёт;зачёт\n\
             4201;420101;Петров;Пётр;;3204;222222;Изложение;зачет;зачет;зачет;незачет;зачет;зачет;зачет;незачет\n"
        );
        let rows = parse_results_csv(&rules, &good).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].school.as_str(), rows[0].form, rows[0].outcome),
            ("420101", EssayForm::Essay, Outcome::Pass)
        );
        assert_eq!(
            (rows[1].form, rows[1].outcome),
            (EssayForm::Summary, Outcome::Fail)
        );
        assert_eq!(
            rows[0].participant,
            participant_id(&IdentityDocument::new("3204", "111111").unwrap())
        );
        let bad = format!(
            "{HEADER}\n\
             4201;420101;Иванова;Анна;;3204;111111;сочинение;зачёт;зачёт;зачёт;зачёт;незачёт;незачёт;незачёт;зачёт\n\
             4201;420101;Петров;Пётр;;3204;222222;эссе;зачёт;зачёт;зачёт;зачёт;зачёт;зачёт;зачёт;\n\
             4201;420101;Сидоров;Иван;;3204;333333;сочинение;зачёт;?;зачёт;зачёт;зачёт;зачёт;зачёт;\n\
             4201;420101;Иванова;Анна;;3204;111111;сочинение;зачёт;зачёт;зачёт;зачёт;зачёт;зачёт;зачёт;\n"
        );
        let errors: Vec<String> = parse_results_csv(&rules, &bad)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("row 2: the result says \"зачёт\", the marks give «незачёт»"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("row 3: form \"эссе\""), "{errors:?}");
        assert!(errors[2].starts_with("row 4: Т2 \"?\""), "{errors:?}");
        // A work failing a requirement is not checked against the criteria: blanks there.
        let unchecked = format!(
            "{HEADER}\n4201;420101;Иванова;Анна;;3204;111111;сочинение;незачёт;зачёт;;;;;;незачёт\n"
        );
        let rows = parse_results_csv(&rules, &unchecked).unwrap();
        assert_eq!(rows[0].outcome, Outcome::Fail);
        let blank_but_checked = format!(
            "{HEADER}\n4201;420101;Иванова;Анна;;3204;111111;сочинение;зачёт;зачёт;;зачёт;зачёт;зачёт;зачёт;\n"
        );
        let err = parse_results_csv(&rules, &blank_but_checked).unwrap_err()[0].to_string();
        assert!(err.starts_with("row 2: К1 \"\""), "{err}");
        // Two headers for one field: refused rather than read from either.
        let twice = HEADER.replace("Номер;", "Номер;Номер документа;");
        let err = parse_results_csv(&rules, &format!("{twice}\n")).unwrap_err()[0].to_string();
        assert!(err.contains("all give the number column"), "{err}");
        let no_column =
            parse_results_csv(&rules, "Код ОО;Фамилия;Имя;Номер;Форма;Т1\n").unwrap_err();
        assert!(
            no_column[0].to_string().contains("no column Т2"),
            "{no_column:?}"
        );
    }
}
