//! Working days by the production calendar (`shared/rules/calendar.toml`): the deadlines the
//! orders count «в течение N рабочих дней» (seed 003 §2.2–2.7) skip weekends, the Labour Code's
//! holidays and the days off the government moves each year, and count the Saturdays it makes
//! working days.
//!
//! A year the file does not list falls back to the Labour Code alone ([`Date::is_working_day`]);
//! [`ProductionCalendar::covers`] tells callers so they can warn.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::calendar::{Date, Weekday};
use crate::datafile::{self, DataFileError};

/// The format version of calendar files this build reads.
pub const CALENDAR_FORMAT: i64 = 1;
/// The shipped production calendar.
pub const CALENDAR_TOML: &str = include_str!("../rules/calendar.toml");
/// The most working days a deadline counts.
pub const WORKING_DAYS_MAX: u32 = 60;
/// The most days off a year may list (the holidays and a few moves are about 15).
const DAYS_OFF_PER_YEAR_MAX: usize = 40;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Checked by `datafile::parse` before the rest.
    #[serde(rename = "format")]
    _format: i64,
    id: String,
    year: Vec<RawYear>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i32,
    source: String,
    days_off: Vec<Date>,
    working_days: Vec<Date>,
}

/// One year's exceptions to «Monday to Friday».
#[derive(Clone, Debug, PartialEq, Eq)]
struct YearDays {
    source: String,
    days_off: BTreeSet<Date>,
    working_days: BTreeSet<Date>,
}

/// The production calendar: per year, the weekdays that are not working days and the weekend
/// days that are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductionCalendar {
    pub id: String,
    years: BTreeMap<i32, YearDays>,
}

fn weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl ProductionCalendar {
    /// The shipped calendar.
    pub fn shipped() -> Result<Self, DataFileError> {
        Self::parse(CALENDAR_TOML, "shared/rules/calendar.toml")
    }

    /// Reads and validates the calendar file at `path`.
    pub fn load(path: &Path) -> Result<Self, DataFileError> {
        let (text, file) = datafile::read(path)?;
        Self::parse(&text, &file)
    }

    /// Validates a calendar file's `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, DataFileError> {
        let raw: RawFile = datafile::parse(text, file, CALENDAR_FORMAT)?;
        let bad = |message: String| DataFileError::invalid(file, message);
        if raw.id.trim().is_empty() {
            return Err(bad("id is empty".into()));
        }
        let mut years = BTreeMap::new();
        for y in raw.year {
            let year = y.year;
            if y.source.trim().is_empty() {
                return Err(bad(format!("{year}: source (the decree) is empty")));
            }
            if y.days_off.len() > DAYS_OFF_PER_YEAR_MAX {
                return Err(bad(format!(
                    "{year}: {} days off (at most {DAYS_OFF_PER_YEAR_MAX})",
                    y.days_off.len()
                )));
            }
            let mut days_off = BTreeSet::new();
            for d in y.days_off {
                if d.year() != year {
                    return Err(bad(format!("{year}: day off {d} is not in {year}")));
                }
                if weekend(d) {
                    return Err(bad(format!(
                        "{year}: day off {d} is a {:?}, a day off anyway (list Monday–Friday dates only)",
                        d.weekday()
                    )));
                }
                if !days_off.insert(d) {
                    return Err(bad(format!("{year}: day off {d} twice")));
                }
            }
            let mut working_days = BTreeSet::new();
            for d in y.working_days {
                if d.year() != year {
                    return Err(bad(format!("{year}: working day {d} is not in {year}")));
                }
                if !weekend(d) {
                    return Err(bad(format!(
                        "{year}: working day {d} is a {:?}, a working day anyway (list moved Saturdays and Sundays only)",
                        d.weekday()
                    )));
                }
                if !working_days.insert(d) {
                    return Err(bad(format!("{year}: working day {d} twice")));
                }
            }
            let days = YearDays {
                source: y.source.trim().to_owned(),
                days_off,
                working_days,
            };
            if years.insert(year, days).is_some() {
                return Err(bad(format!("year {year} twice")));
            }
        }
        Ok(ProductionCalendar { id: raw.id, years })
    }

    /// Whether the file lists `year` (else the Labour Code alone counts it).
    #[must_use]
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The years the file lists, ascending, with the decree each follows.
    pub fn years(&self) -> impl Iterator<Item = (i32, &str)> {
        self.years.iter().map(|(y, d)| (*y, d.source.as_str()))
    }

    /// Whether `date` is a working day.
    #[must_use]
    pub fn is_working_day(&self, date: Date) -> bool {
        match self.years.get(&date.year()) {
            Some(y) if weekend(date) => y.working_days.contains(&date),
            Some(y) => !y.days_off.contains(&date),
            None => date.is_working_day(),
        }
    }

    /// The `n`-th working day after `date` («в течение N рабочих дней»: the last day it may be
    /// done). `n` is at most [`WORKING_DAYS_MAX`].
    pub fn plus_working_days(&self, date: Date, n: u32) -> Result<Date, crate::DomainError> {
        let mut at = date;
        let mut left = n.min(WORKING_DAYS_MAX);
        while left > 0 {
            at = at.add_days(1)?;
            if self.is_working_day(at) {
                left -= 1;
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        text.parse().unwrap()
    }

    /// Days off of 2024 counted by hand from the decree (№ 1314): the expectation is written out
    /// here, not derived from the file.
    #[test]
    fn the_shipped_2024_calendar_moves_days_as_the_decree_says() {
        let c = ProductionCalendar::shipped().unwrap();
        assert!(c.covers(2024) && c.covers(2023) && !c.covers(2031));
        // Saturday 27 April 2024 is a working day; Monday 29 and Tuesday 30 April are not.
        assert!(c.is_working_day(d("2024-04-27")));
        assert!(!c.is_working_day(d("2024-04-29")));
        assert!(!c.is_working_day(d("2024-04-30")));
        assert!(!c.is_working_day(d("2024-05-10")));
        assert!(c.is_working_day(d("2024-05-08")));
        // The Labour Code alone gets these wrong: the proof that the file is read.
        assert!(d("2024-04-29").is_working_day());
        assert!(!d("2024-04-27").is_working_day());
        // 2025: 23 February fell on a Sunday and was moved to 8 May, so 24 February works.
        assert!(c.is_working_day(d("2025-02-24")));
        assert!(!c.is_working_day(d("2025-05-08")));
        assert!(!c.is_working_day(d("2025-06-13")));
    }

    /// A check of the data: every holiday of the Labour Code that falls on a weekday is a day
    /// off in every year the shipped file lists (a typo in a date would break it).
    #[test]
    fn every_shipped_year_keeps_the_labour_code_holidays() {
        let c = ProductionCalendar::shipped().unwrap();
        let holidays = [
            (1, 1),
            (1, 2),
            (1, 3),
            (1, 4),
            (1, 5),
            (1, 6),
            (1, 7),
            (1, 8),
            (2, 23),
            (3, 8),
            (5, 1),
            (5, 9),
            (6, 12),
            (11, 4),
        ];
        for (year, _) in c.years() {
            for (month, day) in holidays {
                let date = Date::new(year, month, day).unwrap();
                if !weekend(date) {
                    assert!(!c.is_working_day(date), "{date} is a holiday");
                }
            }
        }
    }

    /// The number of working days of each shipped year, as the published production calendars
    /// give them (a five-day week): a date missing or misplaced in the file changes its count.
    #[test]
    fn each_shipped_year_has_its_published_number_of_working_days() {
        let c = ProductionCalendar::shipped().unwrap();
        for (year, published) in [(2023, 247), (2024, 248), (2025, 247), (2026, 247)] {
            let first = Date::new(year, 1, 1).unwrap();
            let days = (0..)
                .map(|n| first.add_days(n).unwrap())
                .take_while(|d| d.year() == year)
                .filter(|d| c.is_working_day(*d))
                .count();
            assert_eq!(days, published, "{year}");
        }
    }

    #[test]
    fn working_day_deadlines_cross_holiday_weekends() {
        let c = ProductionCalendar::shipped().unwrap();
        // Results finished on Friday 26 April 2024: Saturday 27 is a working day.
        assert_eq!(
            c.plus_working_days(d("2024-04-26"), 1).unwrap(),
            d("2024-04-27")
        );
        // Finished on Saturday 27 April: the next working day is Thursday 2 May (29 April –
        // 1 May off).
        assert_eq!(
            c.plus_working_days(d("2024-04-27"), 1).unwrap(),
            d("2024-05-02")
        );
        // Finished Wednesday 8 May: 9–12 May off, so Monday 13 May.
        assert_eq!(
            c.plus_working_days(d("2024-05-08"), 1).unwrap(),
            d("2024-05-13")
        );
        // Over the New Year of 2023/24: 29 December 2023 (Friday) + 1 → 9 January 2024.
        assert_eq!(
            c.plus_working_days(d("2023-12-29"), 1).unwrap(),
            d("2024-01-09")
        );
        assert_eq!(
            c.plus_working_days(d("2024-02-21"), 2).unwrap(),
            d("2024-02-26")
        );
        assert_eq!(
            c.plus_working_days(d("2024-02-21"), 0).unwrap(),
            d("2024-02-21")
        );
    }

    #[test]
    fn a_year_not_listed_counts_by_the_labour_code() {
        let c = ProductionCalendar::shipped().unwrap();
        assert!(!c.covers(2030));
        assert!(!c.is_working_day(d("2030-01-03")));
        assert!(c.is_working_day(d("2030-01-09")));
    }

    #[test]
    fn a_bad_calendar_is_refused_naming_the_problem() {
        let file = |years: &str| format!("format = 1\nid = \"t\"\n{years}");
        let year = |days_off: &str, working: &str| {
            format!(
                "[[year]]\nyear = 2024\nsource = \"decree\"\ndays_off = [{days_off}]\nworking_days = [{working}]\n"
            )
        };
        let cases = [
            (year("\"2024-04-27\"", ""), "2024-04-27 is a Saturday"),
            (year("", "\"2024-04-29\""), "2024-04-29 is a Monday"),
            (year("\"2025-01-01\"", ""), "2025-01-01 is not in 2024"),
            (
                year("\"2024-04-29\", \"2024-04-29\"", ""),
                "2024-04-29 twice",
            ),
            (
                format!("{}{}", year("", ""), year("", "")),
                "year 2024 twice",
            ),
            (year("\"2024-02-30\"", ""), "2024-02-30"),
        ];
        for (years, expected) in cases {
            let err = ProductionCalendar::parse(&file(&years), "cal.toml")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("cal.toml: "), "{err}");
            assert!(err.contains(expected), "{err} should name {expected}");
        }
        let err = ProductionCalendar::parse("format = 2\nid = \"t\"\nyear = []", "cal.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format 2 is not supported"), "{err}");
    }
}
