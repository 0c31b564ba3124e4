//! Calendar dates and instants, with the arithmetic the exam calendar needs.
//!
//! Dates are proleptic Gregorian civil dates; instants are milliseconds since the Unix epoch
//! (UTC). The conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`.
//! Nothing here reads the clock: callers pass `now`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Field};

/// The earliest year a date may have: giasync has no business before it.
pub const YEAR_MIN: i32 = 2000;
/// The latest year a date may have.
pub const YEAR_MAX: i32 = 2199;

/// A civil date (year, month, day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn month_days(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

impl Date {
    /// A validated date between [`YEAR_MIN`] and [`YEAR_MAX`].
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DomainError> {
        let text = || format!("{year:04}-{month:02}-{day:02}");
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
            return Err(DomainError::invalid(
                Field::Date,
                text(),
                "year is out of range 2000..=2199",
            ));
        }
        if !(1..=12).contains(&month) {
            return Err(DomainError::invalid(
                Field::Date,
                text(),
                "month is not 1..=12",
            ));
        }
        if day == 0 || day > month_days(year, month) {
            return Err(DomainError::invalid(
                Field::Date,
                text(),
                "no such day in that month",
            ));
        }
        Ok(Date { year, month, day })
    }

    #[must_use]
    pub fn year(self) -> i32 {
        self.year
    }
    #[must_use]
    pub fn month(self) -> u8 {
        self.month
    }
    #[must_use]
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01.
    #[must_use]
    pub fn days_since_epoch(self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The instants (ms since 1970, UTC) of this whole day on a clock at `offset`: from its
    /// 00:00 to the next day's 00:00, excluded.
    #[must_use]
    pub fn day_window_ms(self, offset: UtcOffset) -> std::ops::Range<i64> {
        const DAY_MS: i64 = 86_400_000;
        let start = self.days_since_epoch() * DAY_MS - i64::from(offset.minutes()) * 60_000;
        start..start + DAY_MS
    }

    /// The date `days` days since 1970-01-01; an error outside the supported years.
    pub fn from_days_since_epoch(days: i64) -> Result<Self, DomainError> {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let out_of_range = || DomainError::invalid(Field::Date, days, "is out of range");
        Date::new(
            i32::try_from(year).map_err(|_| out_of_range())?,
            u8::try_from(month).map_err(|_| out_of_range())?,
            u8::try_from(day).map_err(|_| out_of_range())?,
        )
    }

    /// The date `days` later (or earlier, when negative).
    pub fn add_days(self, days: i64) -> Result<Self, DomainError> {
        Date::from_days_since_epoch(self.days_since_epoch() + days)
    }

    #[must_use]
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        match (self.days_since_epoch() + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    /// A working day: Monday to Friday and not a federal non-working holiday (Labour Code
    /// art. 112: 1–8 January, 23 February, 8 March, 1 and 9 May, 12 June, 4 November). The
    /// government's yearly transfers of days off are not known here: a transferred working
    /// Saturday counts as a day off, a bridged Monday as a working day.
    #[must_use]
    pub fn is_working_day(self) -> bool {
        let holiday = matches!(
            (self.month, self.day),
            (1, 1..=8) | (2, 23) | (3, 8) | (5, 1) | (5, 9) | (6, 12) | (11, 4)
        );
        !holiday && !matches!(self.weekday(), Weekday::Saturday | Weekday::Sunday)
    }

    /// The date as people read it in Russia and the regional systems print it: `dd.MM.yyyy`.
    #[must_use]
    pub fn ru(self) -> String {
        format!("{:02}.{:02}.{:04}", self.day, self.month, self.year)
    }

    /// The `n`-th working day after this date (deadlines «в течение N рабочих дней»).
    pub fn plus_working_days(self, n: u32) -> Result<Self, DomainError> {
        let mut date = self;
        let mut left = n;
        while left > 0 {
            date = date.add_days(1)?;
            if date.is_working_day() {
                left -= 1;
            }
        }
        Ok(date)
    }

    /// The `n`-th (1-based) `weekday` of a month, skipping the days `skip` accepts.
    fn nth_weekday(
        year: i32,
        month: u8,
        weekday: Weekday,
        n: u8,
        skip: impl Fn(Date) -> bool,
    ) -> Option<Date> {
        let mut seen = 0;
        for day in 1..=month_days(year, month) {
            let date = Date::new(year, month, day).ok()?;
            if date.weekday() == weekday && !skip(date) {
                seen += 1;
                if seen == n {
                    return Some(date);
                }
            }
        }
        None
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = DomainError;
    /// Parses `YYYY-MM-DD`.
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid(Field::Date, text, "must be YYYY-MM-DD");
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, DomainError> {
            let part = text.get(range).ok_or_else(bad)?;
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let year = i32::try_from(number(0..4)?).map_err(|_| bad())?;
        let month = u8::try_from(number(5..7)?).map_err(|_| bad())?;
        let day = u8::try_from(number(8..10)?).map_err(|_| bad())?;
        Date::new(year, month, day)
    }
}

crate::text::serde_via_text!(Date);

/// The dates of итоговое собеседование in the school year that ends in `year` (DESIGN.md §1,
/// seed 002 §15): main — the second Wednesday of February; additional — the second working
/// Wednesday of March (8 March is a public holiday) and the third Monday of April.
#[must_use]
pub fn is_dates(year: i32) -> Option<[Date; 3]> {
    let main = Date::nth_weekday(year, 2, Weekday::Wednesday, 2, |_| false)?;
    let march = Date::nth_weekday(year, 3, Weekday::Wednesday, 2, |d| d.day() == 8)?;
    let april = Date::nth_weekday(year, 4, Weekday::Monday, 3, |_| false)?;
    Some([main, march, april])
}

/// The most a region's clocks may be ahead of UTC (UTC+14) and behind it (UTC−12), in minutes.
pub const UTC_OFFSET_MIN_MAX: i32 = 14 * 60;
pub const UTC_OFFSET_MIN_MIN: i32 = -12 * 60;

/// A region's offset from UTC, `+07:00` for Кузбасс. Russia keeps no summer time (since 2014),
/// so one offset per region serves all year. Deadlines of the orders count the region's own
/// calendar days, and its people read its own clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UtcOffset {
    minutes: i16,
}

impl UtcOffset {
    pub const UTC: UtcOffset = UtcOffset { minutes: 0 };

    /// An offset of `minutes` east of Greenwich, within UTC−12..=UTC+14.
    pub fn from_minutes(minutes: i32) -> Result<Self, DomainError> {
        if !(UTC_OFFSET_MIN_MIN..=UTC_OFFSET_MIN_MAX).contains(&minutes) {
            return Err(DomainError::invalid(
                Field::UtcOffset,
                minutes,
                "must be between -12:00 and +14:00",
            ));
        }
        let minutes = i16::try_from(minutes)
            .map_err(|_| DomainError::invalid(Field::UtcOffset, minutes, "is out of range"))?;
        Ok(UtcOffset { minutes })
    }

    #[must_use]
    pub fn minutes(self) -> i32 {
        i32::from(self.minutes)
    }

    fn ms(self) -> i64 {
        i64::from(self.minutes) * 60_000
    }
}

impl fmt::Display for UtcOffset {
    /// `+07:00`, `-03:30`, `+00:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

impl FromStr for UtcOffset {
    type Err = DomainError;
    /// `±HH:MM`, as in RFC 3339.
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid(Field::UtcOffset, text, "must be ±HH:MM, e.g. +07:00");
        let (sign, rest) = match text.split_at_checked(1) {
            Some(("+", rest)) => (1, rest),
            Some(("-", rest)) => (-1, rest),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let two = |t: &str| {
            (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<i32>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (h, m) = (two(h)?, two(m)?);
        if m > 59 {
            return Err(bad());
        }
        UtcOffset::from_minutes(sign * (h * 60 + m))
    }
}

crate::text::serde_via_text!(UtcOffset);

/// An instant as read on a clock at some offset: RFC 3339 with that offset,
/// `2024-02-14T09:00:00+07:00` (so in JSON); on pages [`LocalTime::ru`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    at: Timestamp,
    offset: UtcOffset,
}

impl LocalTime {
    /// As people read a time in Russia, on this clock: `05.12.2026 18:59`.
    #[must_use]
    pub fn ru(self) -> String {
        format!("{} {}", self.at.date_at(self.offset).ru(), self.hh_mm())
    }

    /// The instant.
    #[must_use]
    pub fn instant(self) -> Timestamp {
        self.at
    }

    /// `HH:MM` on that clock.
    #[must_use]
    pub fn hh_mm(self) -> String {
        let ms_of_day = (self.at.0 + self.offset.ms()).rem_euclid(Timestamp::MS_PER_DAY);
        format!(
            "{:02}:{:02}",
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60
        )
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.at.0 + self.offset.ms();
        let ms_of_day = local.rem_euclid(Timestamp::MS_PER_DAY);
        let (h, m, s, ms) = (
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000,
        );
        write!(f, "{}T{h:02}:{m:02}:{s:02}", self.at.date_at(self.offset))?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        if self.offset == UtcOffset::UTC {
            f.write_str("Z")
        } else {
            write!(f, "{}", self.offset)
        }
    }
}

impl FromStr for LocalTime {
    type Err = DomainError;
    /// Parses what [`LocalTime`]'s `Display` writes: RFC 3339 as [`Timestamp`] reads it (with
    /// the `T`), the instant kept on the clock of its offset.
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let at: Timestamp = text.parse()?;
        let offset = match text.strip_suffix('Z') {
            Some(_) => UtcOffset::UTC,
            None => text
                .get(text.len().saturating_sub(6)..)
                .unwrap_or_default()
                .parse()?,
        };
        if text.get(10..11) != Some("T") {
            return Err(DomainError::invalid(
                Field::Timestamp,
                text,
                "must be RFC 3339, e.g. 2024-02-14T09:00:00+07:00",
            ));
        }
        Ok(at.at_offset(offset))
    }
}

crate::text::serde_via_text!(LocalTime);

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    const MS_PER_DAY: i64 = 86_400_000;

    /// A validated instant within the supported years.
    pub fn from_unix_ms(ms: i64) -> Result<Self, DomainError> {
        Date::from_days_since_epoch(ms.div_euclid(Self::MS_PER_DAY))
            .map_err(|_| DomainError::invalid(Field::Timestamp, ms, "is out of range"))?;
        Ok(Timestamp(ms))
    }

    #[must_use]
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// The UTC date of this instant.
    #[must_use]
    pub fn date_utc(self) -> Date {
        // Checked on construction: the day is within the supported years.
        Date::from_days_since_epoch(self.0.div_euclid(Self::MS_PER_DAY)).unwrap_or(Date {
            year: YEAR_MIN,
            month: 1,
            day: 1,
        })
    }

    /// The date of this instant on a clock at `offset` (the region's calendar day).
    #[must_use]
    pub fn date_at(self, offset: UtcOffset) -> Date {
        Timestamp(self.0.saturating_add(offset.ms())).date_utc()
    }

    /// This instant as read on a clock at `offset`.
    #[must_use]
    pub fn at_offset(self, offset: UtcOffset) -> LocalTime {
        LocalTime { at: self, offset }
    }

    /// The instant `ms` later, saturating at the ends of the supported range.
    #[must_use]
    pub fn plus_ms(self, ms: i64) -> Self {
        Timestamp::from_unix_ms(self.0.saturating_add(ms)).unwrap_or(self)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with milliseconds when there are any: `2024-02-14T02:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.at_offset(UtcOffset::UTC), f)
    }
}

impl FromStr for Timestamp {
    type Err = DomainError;
    /// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.mmm](Z|±HH:MM)`.
    fn from_str(text: &str) -> Result<Self, DomainError> {
        let bad = || {
            DomainError::invalid(
                Field::Timestamp,
                text,
                "must be YYYY-MM-DDTHH:MM:SS[.mmm] followed by Z or ±HH:MM",
            )
        };
        let date: Date = text.get(..10).ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let rest = text.get(10..).ok_or_else(bad)?;
        let rest = rest.strip_prefix(['T', ' ']).ok_or_else(bad)?;
        let two = |s: &str| -> Result<i64, DomainError> {
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (h, m, s) = (
            two(rest.get(0..2).ok_or_else(bad)?)?,
            two(rest.get(3..5).ok_or_else(bad)?)?,
            two(rest.get(6..8).ok_or_else(bad)?)?,
        );
        if rest.get(2..3) != Some(":") || rest.get(5..6) != Some(":") || h > 23 || m > 59 || s > 59
        {
            return Err(bad());
        }
        let mut rest = rest.get(8..).ok_or_else(bad)?;
        let mut ms = 0;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits != 3 {
                return Err(bad());
            }
            ms = frac
                .get(..3)
                .ok_or_else(bad)?
                .parse::<i64>()
                .map_err(|_| bad())?;
            rest = frac.get(3..).ok_or_else(bad)?;
        }
        let offset_min = match rest {
            "Z" => 0,
            _ => {
                let sign = match rest.get(..1) {
                    Some("+") => 1,
                    Some("-") => -1,
                    _ => return Err(bad()),
                };
                if rest.len() != 6 || rest.get(3..4) != Some(":") {
                    return Err(bad());
                }
                sign * (two(rest.get(1..3).ok_or_else(bad)?)? * 60
                    + two(rest.get(4..6).ok_or_else(bad)?)?)
            }
        };
        let ms_total = date.days_since_epoch() * Self::MS_PER_DAY
            + ((h * 60 + m - offset_min) * 60 + s) * 1000
            + ms;
        Timestamp::from_unix_ms(ms_total).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local time reads back from what it writes, and people read it as `dd.MM.yyyy HH:MM`.
    #[test]
    fn a_local_time_reads_back_and_is_written_for_people() {
        let offset: UtcOffset = "+07:00".parse().unwrap();
        // 2026-12-05T11:59:43.177Z is 18:59 in Кемерово.
        let at = Timestamp::from_unix_ms(1_764_935_983_177)
            .unwrap()
            .at_offset(offset);
        assert_eq!(at.to_string(), "2025-12-05T18:59:43.177+07:00");
        assert_eq!(at.ru(), "05.12.2025 18:59");
        for text in [
            "2025-12-05T18:59:43.177+07:00",
            "2025-12-05T11:59:43Z",
            "2024-02-14T09:00:00-03:30",
        ] {
            let read: LocalTime = text.parse().unwrap();
            assert_eq!(read.to_string(), text);
        }
        let read: LocalTime = "2025-12-05T18:59:43.177+07:00".parse().unwrap();
        assert_eq!(read, at);
        for bad in [
            "2025-12-05 18:59:43+07:00",
            "2025-12-05T18:59+07:00",
            "2025-12-05T24:00:00Z",
            "2025-12-05T18:59:43.1+07:00",
            "2025-12-05T18:59:43",
            "T18:59:43Z",
        ] {
            assert!(bad.parse::<LocalTime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_regions_clock_has_its_own_date_and_reads_back_as_the_same_instant() {
        let kuzbass: UtcOffset = "+07:00".parse().unwrap();
        assert_eq!(kuzbass.minutes(), 420);
        assert_eq!(kuzbass.to_string(), "+07:00");
        // 18:30 UTC on the 15th is 01:30 on the 16th in Кемерово.
        let t: Timestamp = "2027-02-15T18:30:00Z".parse().unwrap();
        assert_eq!(t.date_utc().to_string(), "2027-02-15");
        assert_eq!(t.date_at(kuzbass).to_string(), "2027-02-16");
        let local = t.at_offset(kuzbass).to_string();
        assert_eq!(local, "2027-02-16T01:30:00+07:00");
        assert_eq!(local.parse::<Timestamp>().unwrap(), t);
        assert_eq!(t.at_offset(kuzbass).hh_mm(), "01:30");
        assert_eq!(t.at_offset(UtcOffset::UTC).to_string(), t.to_string());
        let west: UtcOffset = "-03:30".parse().unwrap();
        assert_eq!(t.at_offset(west).to_string(), "2027-02-15T15:00:00-03:30");
        for bad in [
            "07:00", "+7:00", "+15:00", "-12:30", "+07:60", "+07", "", "+0a:00",
        ] {
            assert!(bad.parse::<UtcOffset>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let d = |t: &str| t.parse::<Date>().unwrap();
        // Friday → Monday.
        assert_eq!(
            d("2027-02-12").plus_working_days(1).unwrap(),
            d("2027-02-15")
        );
        // Monday 22 February 2027 → Wednesday 24 (23 February is a holiday).
        assert_eq!(
            d("2027-02-22").plus_working_days(1).unwrap(),
            d("2027-02-24")
        );
        assert_eq!(
            d("2027-12-30").plus_working_days(2).unwrap(),
            d("2028-01-10")
        );
        assert!(!d("2027-11-04").is_working_day());
        assert!(d("2027-02-10").is_working_day());
    }

    #[test]
    fn dates_validate_and_round_trip() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(2024, 13, 1).is_err());
        assert!(Date::new(1999, 1, 1).is_err());
        let date: Date = "2024-02-14".parse().unwrap();
        assert_eq!(date.to_string(), "2024-02-14");
        assert_eq!(date.weekday(), Weekday::Wednesday);
        assert!("2024-2-14".parse::<Date>().is_err());
        assert!("2024-02-30".parse::<Date>().is_err());
        for days in [0, 1, 59, 60, 365, 19_000, 73_048] {
            let d = Date::from_days_since_epoch(10_957 + days).unwrap();
            assert_eq!(d.days_since_epoch(), 10_957 + days);
        }
        assert_eq!(Date::new(2000, 1, 1).unwrap().days_since_epoch(), 10_957);
        assert!(
            Date::from_days_since_epoch(10_956).is_err(),
            "1999-12-31 is out of range"
        );
        assert_eq!(
            Date::from_days_since_epoch(10_957 + 73_048)
                .unwrap()
                .to_string(),
            "2199-12-31"
        );
    }

    #[test]
    fn is_dates_match_the_published_calendars() {
        // 2024 (seed 002): 14 February, 13 March, 15 April.
        let [main, march, april] = is_dates(2024).unwrap();
        assert_eq!(
            (main.to_string(), march.to_string(), april.to_string()),
            (
                "2024-02-14".into(),
                "2024-03-13".into(),
                "2024-04-15".into()
            )
        );
        // 2023: 8 March was a Wednesday, so the additional date moved to the 15th.
        let [_, march, _] = is_dates(2023).unwrap();
        assert_eq!(march.to_string(), "2023-03-15");
    }

    #[test]
    fn timestamps_parse_offsets_and_print_utc() {
        let t: Timestamp = "2024-02-14T09:00:00+07:00".parse().unwrap();
        assert_eq!(t.to_string(), "2024-02-14T02:00:00Z");
        let t: Timestamp = "2024-02-14T02:00:00.250Z".parse().unwrap();
        assert_eq!(t.to_string(), "2024-02-14T02:00:00.250Z");
        assert_eq!(t.plus_ms(750).to_string(), "2024-02-14T02:00:01Z");
        for bad in [
            "2024-02-14",
            "2024-02-14T25:00:00Z",
            "2024-02-14T09:00:00",
            "2024-02-14T09:00:00.5Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_exam_day_on_the_regions_clock_runs_from_its_local_midnight() {
        let day: Date = "2024-02-14".parse().unwrap();
        let kemerovo: UtcOffset = "+07:00".parse().unwrap();
        let window = day.day_window_ms(kemerovo);
        let start: Timestamp = "2024-02-13T17:00:00Z".parse().unwrap();
        let end: Timestamp = "2024-02-14T17:00:00Z".parse().unwrap();
        assert_eq!(window, start.unix_ms()..end.unix_ms());
    }
}
