//! Scoring rules as data: a versioned TOML file per exam and year, validated on load.
//!
//! The shipped file is `shared/rules/is-2024.toml`; its header documents the format. A region
//! loads the year's file; nothing about criteria or thresholds is a constant in code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::codes::id_enum;
use crate::error::{DomainError, Field};
use crate::exam::ExamKind;
use crate::participant::Category;
use crate::text::{check_token, inline_id};

/// The rules file format this build reads.
pub const RULES_FORMAT: u32 = 1;
/// The most criteria an exam may define (a category's criteria are kept in a 64-bit mask).
pub const CRITERIA_MAX: usize = 32;
/// The most points one criterion may carry.
pub const CRITERION_POINTS_MAX: u8 = 10;
/// The rules file shipped for итоговое собеседование 2024.
pub const IS_2024_TOML: &str = include_str!("../rules/is-2024.toml");

/// A capital letter of the Russian or Latin alphabet: criterion ids use nothing else, and a range
/// check is much cheaper than Unicode tables on the verification hot path.
fn is_capital(c: char) -> bool {
    c.is_ascii_uppercase() || ('А'..='Я').contains(&c) || c == 'Ё'
}

fn criterion_shape(value: &str) -> Result<(), DomainError> {
    let (mut letters, mut digits) = (0usize, 0usize);
    let mut shaped = !value.is_empty();
    for c in value.chars() {
        if is_capital(c) && digits == 0 {
            letters += 1;
        } else if c.is_ascii_digit() && letters > 0 {
            digits += 1;
        } else {
            shaped = false;
            break;
        }
    }
    if !shaped || !(1..=2).contains(&letters) || !(1..=2).contains(&digits) {
        return Err(DomainError::invalid(
            Field::Criterion,
            value,
            "must be one or two capital letters followed by one or two digits, like Ч1",
        ));
    }
    Ok(())
}

inline_id!(
    /// The id of a scoring criterion: one or two capital letters and one or two digits (`Ч1`,
    /// `П2`, `Р5`).
    CriterionId,
    8,
    Field::Criterion,
    criterion_shape
);

inline_id!(
    /// The id of a rules file, e.g. `is-2024`; signed score sheets name it, so a sheet is always
    /// checked against the rules it was scored by.
    RulesId,
    24,
    Field::Criterion,
    |v| check_token(
        Field::Criterion,
        v,
        24,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
        "may hold only a-z, 0-9 and '-'"
    )
);

id_enum!(
    /// The outcome of an exam scored by зачёт/незачёт.
    Outcome, Field::Criterion, {
        /// «зачёт»: the total reached the category's threshold.
        Pass = "pass", "зачёт";
        /// «незачёт».
        Fail = "fail", "незачёт";
    }
);

/// A criterion as the rules define it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Criterion {
    pub id: CriterionId,
    pub max: u8,
    pub task: String,
}

/// What a category scores and where зачёт starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryRules {
    pub category: Category,
    pub name: String,
    /// Indices into [`Rules::criteria`], in the rules' criterion order.
    criteria: Vec<usize>,
    /// Bit `i` set when criterion `i` is scored.
    mask: u64,
    pub max: u16,
    pub pass_from: u16,
}

impl CategoryRules {
    /// The criteria scored for this category, in the rules' order.
    pub fn criteria<'r>(&'r self, rules: &'r Rules) -> impl Iterator<Item = &'r Criterion> + 'r {
        self.criteria.iter().filter_map(|&i| rules.criteria.get(i))
    }
}

/// A validated rules file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub id: RulesId,
    pub exam: ExamKind,
    pub title: String,
    /// Where the rules came from, for messages.
    pub source: String,
    criteria: Vec<Criterion>,
    categories: BTreeMap<Category, CategoryRules>,
}

/// A rules file that does not load. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("{file}: cannot read the file")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// The `format` is not one this build reads.
    #[error("{file}: format {format} is not supported (this build reads format {RULES_FORMAT})")]
    UnsupportedFormat { file: String, format: u32 },
    /// A field of the header is not valid.
    #[error("{file}: {error}")]
    Header { file: String, error: DomainError },
    /// The file defines no criteria, or more than [`CRITERIA_MAX`].
    #[error("{file}: defines {count} criteria; an exam has 1..={CRITERIA_MAX}")]
    CriteriaCount { file: String, count: usize },
    /// A `[[criterion]]` has a malformed id or a maximum out of range.
    #[error("{file}: criterion {criterion:?}: {reason}")]
    BadCriterion {
        file: String,
        criterion: String,
        reason: String,
    },
    /// Two `[[criterion]]` entries share an id.
    #[error("{file}: criterion {criterion} is defined twice")]
    DuplicateCriterion { file: String, criterion: String },
    /// A `[[category]]` id is not one of the contract ids.
    #[error("{file}: category {category:?} is not a known category ({known})")]
    UnknownCategory {
        file: String,
        category: String,
        known: String,
    },
    /// Two `[[category]]` entries share an id.
    #[error("{file}: category {category} is defined twice")]
    DuplicateCategory { file: String, category: String },
    /// A contract category has no entry, so its participants could not be scored.
    #[error("{file}: category {category} is missing")]
    MissingCategory { file: String, category: String },
    /// A category names a criterion the exam does not define (e.g. the seed's typo «Д2(2)»).
    #[error("{file}: category {category}: criterion {criterion:?} is not defined by the exam")]
    UnknownCriterion {
        file: String,
        category: String,
        criterion: String,
    },
    /// A category names a criterion twice.
    #[error("{file}: category {category}: criterion {criterion} is listed twice")]
    RepeatedCriterion {
        file: String,
        category: String,
        criterion: String,
    },
    /// A category scores no criterion.
    #[error("{file}: category {category} scores no criterion")]
    EmptyCategory { file: String, category: String },
    /// A category's `max` is not the sum of its criteria's maxima.
    #[error(
        "{file}: category {category}: max is {declared} but its criteria {criteria} sum to {sum}"
    )]
    MaxMismatch {
        file: String,
        category: String,
        declared: u16,
        sum: u16,
        criteria: String,
    },
    /// A category's threshold is 0 or above its maximum.
    #[error("{file}: category {category}: pass_from {pass_from} must be 1..={max}")]
    BadThreshold {
        file: String,
        category: String,
        pass_from: u16,
        max: u16,
    },
}

/// Points that do not score under the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The rules have no entry for the category.
    #[error("the rules {rules} have no category {category}")]
    UnknownCategory { rules: String, category: Category },
    /// A criterion the exam does not define.
    #[error("criterion {criterion} is not defined by the rules {rules}")]
    UnknownCriterion { rules: String, criterion: String },
    /// A criterion that exists but is not scored for the category.
    #[error("criterion {criterion} is not scored for category {category}")]
    NotScored {
        category: Category,
        criterion: String,
    },
    /// A criterion of the category was given no points.
    #[error("criterion {criterion} of category {category} has no points")]
    Missing {
        category: Category,
        criterion: String,
    },
    /// The same criterion was given points twice.
    #[error("criterion {criterion} is given twice")]
    Duplicate { criterion: String },
    /// Negative points.
    #[error("criterion {criterion}: {points} points is negative")]
    Negative { criterion: String, points: i64 },
    /// More points than the criterion's maximum.
    #[error("criterion {criterion}: {points} points is over its maximum of {max}")]
    OverMax {
        criterion: String,
        points: i64,
        max: u8,
    },
}

/// A scored exam: the points per criterion in the rules' order, the total and the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scored {
    pub points: Vec<(CriterionId, u8)>,
    pub total: u16,
    pub outcome: Outcome,
}

impl fmt::Display for Scored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.total, self.outcome.display_name())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    format: u32,
    id: String,
    exam: String,
    title: String,
    #[serde(default)]
    criterion: Vec<RawCriterion>,
    #[serde(default)]
    category: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    id: String,
    max: i64,
    #[serde(default)]
    task: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: String,
    name: String,
    criteria: Vec<String>,
    max: i64,
    pass_from: i64,
}

impl Rules {
    /// Reads and validates the rules file at `path`.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            file: file.clone(),
            source,
        })?;
        Rules::parse(&text, &file)
    }

    /// The shipped rules of итоговое собеседование 2024.
    pub fn is_2024() -> Result<Self, RulesError> {
        Rules::parse(IS_2024_TOML, "shared/rules/is-2024.toml")
    }

    /// Validates rules from `text`; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, RulesError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| RulesError::Parse {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        if raw.format != RULES_FORMAT {
            return Err(RulesError::UnsupportedFormat {
                file: file.to_owned(),
                format: raw.format,
            });
        }
        let header = |error| RulesError::Header {
            file: file.to_owned(),
            error,
        };
        let id = RulesId::new(&raw.id).map_err(header)?;
        let exam: ExamKind = raw.exam.parse().map_err(header)?;
        let criteria = Self::validate_criteria(file, &raw.criterion)?;
        let categories = Self::validate_categories(file, &criteria, &raw.category)?;
        Ok(Rules {
            id,
            exam,
            title: raw.title,
            source: file.to_owned(),
            criteria,
            categories,
        })
    }

    fn validate_criteria(file: &str, raw: &[RawCriterion]) -> Result<Vec<Criterion>, RulesError> {
        if raw.is_empty() || raw.len() > CRITERIA_MAX {
            return Err(RulesError::CriteriaCount {
                file: file.to_owned(),
                count: raw.len(),
            });
        }
        let mut criteria: Vec<Criterion> = Vec::with_capacity(raw.len());
        for entry in raw {
            let bad = |reason: String| RulesError::BadCriterion {
                file: file.to_owned(),
                criterion: entry.id.clone(),
                reason,
            };
            let id = CriterionId::new(&entry.id).map_err(|e| bad(e.to_string()))?;
            let max = u8::try_from(entry.max)
                .ok()
                .filter(|m| (1..=CRITERION_POINTS_MAX).contains(m))
                .ok_or_else(|| {
                    bad(format!(
                        "max {} must be 1..={CRITERION_POINTS_MAX}",
                        entry.max
                    ))
                })?;
            if criteria.iter().any(|c| c.id == id) {
                return Err(RulesError::DuplicateCriterion {
                    file: file.to_owned(),
                    criterion: entry.id.clone(),
                });
            }
            criteria.push(Criterion {
                id,
                max,
                task: entry.task.clone(),
            });
        }
        Ok(criteria)
    }

    fn validate_categories(
        file: &str,
        criteria: &[Criterion],
        raw: &[RawCategory],
    ) -> Result<BTreeMap<Category, CategoryRules>, RulesError> {
        let mut categories = BTreeMap::new();
        for entry in raw {
            let category: Category = entry.id.parse().map_err(|_| RulesError::UnknownCategory {
                file: file.to_owned(),
                category: entry.id.clone(),
                known: Category::ALL
                    .iter()
                    .map(|c| c.id())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            if categories.contains_key(&category) {
                return Err(RulesError::DuplicateCategory {
                    file: file.to_owned(),
                    category: entry.id.clone(),
                });
            }
            let rules = Self::validate_category(file, criteria, category, entry)?;
            categories.insert(category, rules);
        }
        if let Some(missing) = Category::ALL.iter().find(|c| !categories.contains_key(c)) {
            return Err(RulesError::MissingCategory {
                file: file.to_owned(),
                category: missing.id().to_owned(),
            });
        }
        Ok(categories)
    }

    fn validate_category(
        file: &str,
        criteria: &[Criterion],
        category: Category,
        entry: &RawCategory,
    ) -> Result<CategoryRules, RulesError> {
        let (file_owned, category_owned) = (file.to_owned(), entry.id.clone());
        if entry.criteria.is_empty() {
            return Err(RulesError::EmptyCategory {
                file: file_owned,
                category: category_owned,
            });
        }
        let mut mask = 0u64;
        for name in &entry.criteria {
            // Compare the text as written: a malformed name («Ч(1)») is as unknown as «Д2».
            let index = criteria
                .iter()
                .position(|c| c.id.as_str() == name)
                .ok_or_else(|| RulesError::UnknownCriterion {
                    file: file_owned.clone(),
                    category: category_owned.clone(),
                    criterion: name.clone(),
                })?;
            if mask & (1 << index) != 0 {
                return Err(RulesError::RepeatedCriterion {
                    file: file_owned,
                    category: category_owned,
                    criterion: name.clone(),
                });
            }
            mask |= 1 << index;
        }
        let indices: Vec<usize> = (0..criteria.len())
            .filter(|i| mask & (1 << i) != 0)
            .collect();
        let sum: u16 = indices
            .iter()
            .filter_map(|&i| criteria.get(i))
            .map(|c| u16::from(c.max))
            .sum();
        let declared = u16::try_from(entry.max).unwrap_or(u16::MAX);
        if i64::from(sum) != entry.max {
            return Err(RulesError::MaxMismatch {
                file: file_owned,
                category: category_owned,
                declared,
                sum,
                criteria: indices
                    .iter()
                    .filter_map(|&i| criteria.get(i))
                    .map(|c| format!("{}({})", c.id, c.max))
                    .collect::<Vec<_>>()
                    .join(" + "),
            });
        }
        let pass_from = u16::try_from(entry.pass_from).unwrap_or(u16::MAX);
        if entry.pass_from < 1 || entry.pass_from > i64::from(sum) {
            return Err(RulesError::BadThreshold {
                file: file_owned,
                category: category_owned,
                pass_from: if entry.pass_from < 0 { 0 } else { pass_from },
                max: sum,
            });
        }
        Ok(CategoryRules {
            category,
            name: entry.name.clone(),
            criteria: indices,
            mask,
            max: sum,
            pass_from,
        })
    }

    /// Every criterion of the exam, in file order.
    #[must_use]
    pub fn criteria(&self) -> &[Criterion] {
        &self.criteria
    }

    /// The rules of `category`.
    pub fn category(&self, category: Category) -> Result<&CategoryRules, ScoreError> {
        self.categories
            .get(&category)
            .ok_or_else(|| ScoreError::UnknownCategory {
                rules: self.id.to_string(),
                category,
            })
    }

    /// Every category, in contract order.
    pub fn categories(&self) -> impl Iterator<Item = &CategoryRules> {
        self.categories.values()
    }

    /// Scores `points` for a participant of `category`: every criterion of the category exactly
    /// once, nothing else, each within 0..=its maximum.
    pub fn score(
        &self,
        category: Category,
        points: &[(CriterionId, i64)],
    ) -> Result<Scored, ScoreError> {
        let (total, outcome) = self.total(category, points.iter().copied())?;
        let category_rules = self.category(category)?;
        let points = category_rules
            .criteria(self)
            .map(|c| {
                let given = points
                    .iter()
                    .find(|(id, _)| *id == c.id)
                    .map_or(0, |&(_, p)| p);
                (c.id, u8::try_from(given).unwrap_or(0))
            })
            .collect();
        Ok(Scored {
            points,
            total,
            outcome,
        })
    }

    /// Checks `points` as [`Rules::score`] does and returns the total and outcome without
    /// allocating: the hot path of score-sheet verification.
    pub fn total(
        &self,
        category: Category,
        points: impl IntoIterator<Item = (CriterionId, i64)>,
    ) -> Result<(u16, Outcome), ScoreError> {
        let rules = self.category(category)?;
        let mut seen = 0u64;
        let mut total: u16 = 0;
        for (id, given) in points {
            let index = self
                .criteria
                .iter()
                .position(|c| c.id == id)
                .ok_or_else(|| ScoreError::UnknownCriterion {
                    rules: self.id.to_string(),
                    criterion: id.to_string(),
                })?;
            let bit = 1u64 << index;
            if rules.mask & bit == 0 {
                return Err(ScoreError::NotScored {
                    category,
                    criterion: id.to_string(),
                });
            }
            if seen & bit != 0 {
                return Err(ScoreError::Duplicate {
                    criterion: id.to_string(),
                });
            }
            seen |= bit;
            let max = self.criteria.get(index).map_or(0, |c| c.max);
            if given < 0 {
                return Err(ScoreError::Negative {
                    criterion: id.to_string(),
                    points: given,
                });
            }
            if given > i64::from(max) {
                return Err(ScoreError::OverMax {
                    criterion: id.to_string(),
                    points: given,
                    max,
                });
            }
            total += u16::try_from(given).unwrap_or(0);
        }
        let missing = rules.mask & !seen;
        if missing != 0 {
            let index = missing.trailing_zeros() as usize;
            return Err(ScoreError::Missing {
                category,
                criterion: self
                    .criteria
                    .get(index)
                    .map(|c| c.id.to_string())
                    .unwrap_or_default(),
            });
        }
        debug_assert!(total <= rules.max, "each criterion is within its maximum");
        let outcome = if total >= rules.pass_from {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        Ok((total, outcome))
    }
}

/// Parses points as an operator types them: `Ч1=1,Ч2=0,П1=2` (spaces allowed).
pub fn parse_points(text: &str) -> Result<Vec<(CriterionId, i64)>, DomainError> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                DomainError::invalid(Field::Criterion, part, "must be CRITERION=POINTS")
            })?;
            let id = CriterionId::new(name.trim())?;
            let points = value.trim().parse::<i64>().map_err(|_| {
                DomainError::invalid(Field::Criterion, part, "points must be a whole number")
            })?;
            Ok((id, points))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Rules {
        Rules::is_2024().expect("the shipped rules load")
    }

    fn all_max(rules: &Rules, category: Category) -> Vec<(CriterionId, i64)> {
        let c = rules.category(category).unwrap();
        c.criteria(rules)
            .map(|k| (k.id, i64::from(k.max)))
            .collect()
    }

    /// Points reaching exactly `total` for `category`, filling criteria in order.
    fn points_summing_to(rules: &Rules, category: Category, total: u16) -> Vec<(CriterionId, i64)> {
        let mut left = i64::from(total);
        all_max(rules, category)
            .into_iter()
            .map(|(id, max)| {
                let p = left.min(max);
                left -= p;
                (id, p)
            })
            .collect()
    }

    #[test]
    fn shipped_rules_match_design_table() {
        let rules = shipped();
        assert_eq!(rules.id.as_str(), "is-2024");
        assert_eq!(rules.criteria().len(), 14);
        let expected: [(Category, u16, u16, usize); 10] = [
            (Category::Standard, 20, 10, 14),
            (Category::Deaf, 9, 5, 6),
            (Category::HardOfHearing, 9, 5, 6),
            (Category::SevereSpeech, 9, 5, 6),
            (Category::BlindBraille, 19, 9, 13),
            (Category::BlindNoBraille, 11, 6, 6),
            (Category::VisuallyImpaired, 19, 9, 13),
            (Category::Musculoskeletal, 20, 10, 14),
            (Category::Autism, 6, 3, 4),
            (Category::DelayedDevelopment, 10, 5, 7),
        ];
        for (category, max, pass_from, count) in expected {
            let c = rules.category(category).unwrap();
            assert_eq!(
                (c.max, c.pass_from, c.criteria(&rules).count()),
                (max, pass_from, count),
                "{category}"
            );
        }
    }

    #[test]
    fn every_category_scores_its_maximum_and_threshold_edges() {
        let rules = shipped();
        for c in rules.categories() {
            let top = rules
                .score(c.category, &all_max(&rules, c.category))
                .unwrap();
            assert_eq!(
                (top.total, top.outcome),
                (c.max, Outcome::Pass),
                "{}",
                c.category
            );
            let at = rules
                .score(
                    c.category,
                    &points_summing_to(&rules, c.category, c.pass_from),
                )
                .unwrap();
            assert_eq!(
                (at.total, at.outcome),
                (c.pass_from, Outcome::Pass),
                "{}",
                c.category
            );
            let below = rules
                .score(
                    c.category,
                    &points_summing_to(&rules, c.category, c.pass_from - 1),
                )
                .unwrap();
            assert_eq!(
                (below.total, below.outcome),
                (c.pass_from - 1, Outcome::Fail),
                "{}",
                c.category
            );
            let zero = rules
                .score(c.category, &points_summing_to(&rules, c.category, 0))
                .unwrap();
            assert_eq!(
                (zero.total, zero.outcome),
                (0, Outcome::Fail),
                "{}",
                c.category
            );
        }
    }

    fn id(text: &str) -> CriterionId {
        CriterionId::new(text).unwrap()
    }

    #[test]
    fn scoring_errors_name_the_criterion() {
        let rules = shipped();
        let mut points = all_max(&rules, Category::Autism);
        points.pop();
        assert_eq!(
            rules.score(Category::Autism, &points).unwrap_err(),
            ScoreError::Missing {
                category: Category::Autism,
                criterion: "Д1".into()
            }
        );
        let mut points = all_max(&rules, Category::Autism);
        points.push((id("П1"), 1));
        assert_eq!(
            rules.score(Category::Autism, &points).unwrap_err(),
            ScoreError::NotScored {
                category: Category::Autism,
                criterion: "П1".into()
            }
        );
        let mut points = all_max(&rules, Category::Autism);
        points[0].1 = -1;
        assert_eq!(
            rules.score(Category::Autism, &points).unwrap_err(),
            ScoreError::Negative {
                criterion: "Ч1".into(),
                points: -1
            }
        );
        let mut points = all_max(&rules, Category::Autism);
        points[1].1 = 3;
        assert_eq!(
            rules.score(Category::Autism, &points).unwrap_err(),
            ScoreError::OverMax {
                criterion: "М1".into(),
                points: 3,
                max: 2
            }
        );
        let mut points = all_max(&rules, Category::Autism);
        points.push((id("Ч1"), 0));
        assert_eq!(
            rules.score(Category::Autism, &points).unwrap_err(),
            ScoreError::Duplicate {
                criterion: "Ч1".into()
            }
        );
        let mut points = all_max(&rules, Category::Autism);
        points.push((id("Д2"), 0));
        assert!(matches!(
            rules.score(Category::Autism, &points).unwrap_err(),
            ScoreError::UnknownCriterion { criterion, .. } if criterion == "Д2"
        ));
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(
            IS_2024_TOML.contains(replace),
            "fixture text {replace:?} not in the shipped file"
        );
        IS_2024_TOML.replacen(replace, by, 1)
    }

    fn load_err(text: &str) -> RulesError {
        Rules::parse(text, "test.toml").unwrap_err()
    }

    #[test]
    fn the_seed_typos_are_refused_naming_file_category_and_criterion() {
        let text = with(
            r#"criteria = ["Ч1", "Ч3", "П1""#,
            r#"criteria = ["Ч(1)", "Ч3", "П1""#,
        );
        let err = load_err(&text);
        assert!(
            matches!(&err, RulesError::UnknownCriterion { file, category, criterion }
            if file == "test.toml" && category == "blind-braille" && criterion == "Ч(1)"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            r#"test.toml: category blind-braille: criterion "Ч(1)" is not defined by the exam"#
        );

        let text = with(
            r#"criteria = ["Ч1", "П1", "П2", "П3", "М1", "М2", "Д1"]"#,
            r#"criteria = ["Ч1", "П1", "П2", "П3", "М1", "М2", "Д2"]"#,
        );
        assert!(
            matches!(load_err(&text), RulesError::UnknownCriterion { category, criterion, .. }
            if category == "delayed-development" && criterion == "Д2")
        );
    }

    #[test]
    fn each_file_error_is_typed() {
        let err = load_err(&with("max = 6\n", "max = 7\n"));
        assert!(
            matches!(&err, RulesError::MaxMismatch { category, declared: 7, sum: 6, .. } if category == "autism"),
            "{err}"
        );
        assert!(
            err.to_string().contains("Ч1(1) + М1(2) + М2(1) + Д1(2)"),
            "{err}"
        );

        let err = load_err(&with("pass_from = 3", "pass_from = 7"));
        assert!(
            matches!(&err, RulesError::BadThreshold { category, pass_from: 7, max: 6, .. } if category == "autism"),
            "{err}"
        );
        assert!(matches!(
            load_err(&with("pass_from = 3", "pass_from = 0")),
            RulesError::BadThreshold { .. }
        ));

        let err = load_err(&with(r#"id = "autism""#, r#"id = "deaf""#));
        assert!(
            matches!(&err, RulesError::DuplicateCategory { category, .. } if category == "deaf"),
            "{err}"
        );

        let err = load_err(&with(r#"id = "autism""#, r#"id = "autistic""#));
        assert!(
            matches!(&err, RulesError::UnknownCategory { category, .. } if category == "autistic"),
            "{err}"
        );

        let text = IS_2024_TOML
            .split("[[category]]\nid = \"delayed-development\"")
            .next()
            .unwrap();
        assert!(
            matches!(load_err(text), RulesError::MissingCategory { category, .. } if category == "delayed-development")
        );

        let err = load_err(&with(
            r#"criteria = ["Ч1", "М1", "М2", "Д1"]"#,
            r#"criteria = ["Ч1", "М1", "М1", "Д1"]"#,
        ));
        assert!(
            matches!(&err, RulesError::RepeatedCriterion { criterion, .. } if criterion == "М1"),
            "{err}"
        );

        let err = load_err(&with(
            r#"criteria = ["Ч1", "М1", "М2", "Д1"]"#,
            "criteria = []",
        ));
        assert!(
            matches!(&err, RulesError::EmptyCategory { category, .. } if category == "autism"),
            "{err}"
        );

        let err = load_err(&with("id = \"Ч2\"\nmax = 1", "id = \"Ч1\"\nmax = 1"));
        assert!(
            matches!(&err, RulesError::DuplicateCriterion { criterion, .. } if criterion == "Ч1"),
            "{err}"
        );

        let err = load_err(&with("id = \"Ч2\"\nmax = 1", "id = \"Ч2\"\nmax = 0"));
        assert!(
            matches!(&err, RulesError::BadCriterion { criterion, .. } if criterion == "Ч2"),
            "{err}"
        );

        let err = load_err(&with("id = \"Ч2\"\nmax = 1", "id = \"ч-2\"\nmax = 1"));
        assert!(
            matches!(&err, RulesError::BadCriterion { criterion, .. } if criterion == "ч-2"),
            "{err}"
        );

        assert!(matches!(
            load_err(&with("format = 1", "format = 2")),
            RulesError::UnsupportedFormat { format: 2, .. }
        ));
        assert!(matches!(
            load_err(&with("exam = \"is\"", "exam = \"isx\"")),
            RulesError::Header { .. }
        ));
        let err = load_err(&with("title =", "titel ="));
        assert!(
            matches!(&err, RulesError::Parse { file, .. } if file == "test.toml"),
            "{err}"
        );
        assert!(matches!(
            load_err("format = 1\nid = \"x\"\nexam = \"is\"\ntitle = \"\""),
            RulesError::CriteriaCount { count: 0, .. }
        ));
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = Rules::load(Path::new("/nonexistent/rules.toml")).unwrap_err();
        assert!(matches!(&err, RulesError::Io { file, .. } if file == "/nonexistent/rules.toml"));
    }

    #[test]
    fn points_parse_from_operator_text() {
        let points = parse_points("Ч1=1, М1 = 2,").unwrap();
        assert_eq!(points, vec![(id("Ч1"), 1), (id("М1"), 2)]);
        assert!(parse_points("Ч1").is_err());
        assert!(parse_points("Ч1=x").is_err());
        assert!(parse_points("Ч(1)=1").is_err());
        assert_eq!(parse_points("Ч1=-1").unwrap(), vec![(id("Ч1"), -1)]);
    }

    #[test]
    fn criterion_ids_have_a_shape() {
        for good in ["Ч1", "П3", "Р5", "AB12"] {
            assert!(CriterionId::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Ч", "1", "Ч(1)", "ч1", "Ч123", "ЧПР1", "Ч1Ч"] {
            assert!(CriterionId::new(bad).is_err(), "{bad}");
        }
    }
}
