//! Recurring meetup series: rules such as "second Thursday of each month at 16:00
//! Europe/London" and the occurrences they generate.
//!
//! This module is pure: no I/O, no clock, no database. The app stores a [`Rule`] (as plain
//! columns, see below), calls [`Rule::check`] when an organiser saves it, and calls
//! [`Rule::occurrences_between`] to create real event rows for a rolling window (e.g. the next
//! six months). Everything else (persistence, permissions, rendering) lives elsewhere.
//!
//! # Time model
//!
//! A meetup is planned in the organiser's *local wall-clock time* plus an IANA time zone,
//! because that is what people agree on ("16:00 in London"), and it must stay 16:00 local when
//! the clocks change. Each occurrence is therefore computed from the rule's local time first and
//! only then turned into UTC instants, so its UTC instant moves by an hour across a
//! daylight-saving change while the local time does not. Occurrences are always computed from
//! the rule's first local start, never from the previous occurrence, so nothing drifts.
//!
//! Local times that do not exist or exist twice are resolved with jiff's "compatible"
//! disambiguation (the same as RFC 5545 / iCalendar and most calendar apps):
//! - a time in a spring-forward *gap* (01:30 on the last Sunday of March in Europe/London) is
//!   read with the offset in force before the gap, which lands just after it: 01:30 GMT is
//!   02:30 BST, so the meetup starts at 02:30 local;
//! - a time in a fall-back *overlap* (01:30 on the last Sunday of October) takes the earlier of
//!   the two instants (01:30 BST, i.e. 00:30 UTC).
//!
//! An occurrence's end is its start plus the duration in *real elapsed time*, so a 60-minute
//! meetup always lasts 60 minutes, even when it straddles a clock change (its local end time
//! then differs from "local start + 1 hour"; in an overlap it can even equal the local start).
//!
//! # Storage
//!
//! [`Frequency`] (de)serialises as a snake_case string. The jiff civil types are not serde types
//! in Kettle (jiff's `serde` feature is off), so store a rule as columns: `frequency` text,
//! `weekday_ordinal` nullable integer, `start` as the `Display` of [`jiff::civil::DateTime`]
//! (e.g. `2026-01-08T16:00:00`, parsed back with `str::parse`), `duration_minutes`,
//! `time_zone`, and either `until` (a [`jiff::civil::Date`] string) or `count`.
//!
//! Occurrence indices are stable for a given rule, so `(series_id, index)` is a good natural key
//! for generated rows; editing the rule changes what the indices mean.

use std::fmt;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// The `weekday_ordinal` meaning "the last such weekday of the month".
pub const LAST: i8 = -1;

/// Longest allowed meetup, in minutes: a meetup is an event, not a multi-day conference.
pub const MAX_DURATION_MINUTES: i64 = 24 * 60;

/// Most occurrences a counted series may have, so a series stays a manageable number of rows.
pub const MAX_COUNT: u32 = 200;

/// How far after the first occurrence an `Until` date may be, in years: far enough for any real
/// series, near enough that a series is always finite and cheap to expand.
pub const MAX_UNTIL_YEARS: i16 = 5;

/// Upper bound on candidate dates examined in one expansion. A valid rule needs at most a few
/// hundred (200 occurrences of "day 31" take ~345 months; five years of weekly meetups take
/// ~261 weeks), so this only guards against a rule that somehow slipped past validation.
const MAX_STEPS: i64 = 2_000;

// The storage name is identical to the serde form (`"monthly_by_weekday"`, ...).
crate::text_enum! {
    /// How often a series repeats.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
    #[serde(rename_all = "snake_case")]
    pub enum Frequency {
        /// Every 7 days, on the weekday of the first occurrence.
        Weekly => "weekly",
        /// Every 14 days, on the weekday of the first occurrence.
        Fortnightly => "fortnightly",
        /// On the same day of the month as the first occurrence. A day 29–31 *skips* months that
        /// lack it (it is not moved to the month's last day), so a "31st" meetup never lands on a
        /// date nobody chose; skipped months consume no index and do not count towards `Count`.
        MonthlyByDate => "monthly_by_date",
        /// On the n-th (1..=4) or last weekday of the month, per [`Rule::weekday_ordinal`]. A fifth
        /// weekday is not offered because most months have none; use "last" instead.
        MonthlyByWeekday => "monthly_by_weekday",
    }
}

/// When a series stops. Every series ends, so expanding one is always bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesEnd {
    /// The last local date on which an occurrence may *start* (inclusive).
    Until(Date),
    /// The total number of occurrences, counted from the first one (1..=[`MAX_COUNT`]).
    Count(u32),
}

/// A recurring series, as the organiser defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub frequency: Frequency,
    /// 1..=4 or [`LAST`] (-1). Required for [`Frequency::MonthlyByWeekday`] and must match the
    /// start date (see [`ordinal_of`]); must be `None` for the other frequencies.
    pub weekday_ordinal: Option<i8>,
    /// The first occurrence's local start. Its date fixes the weekday / day of month, its time
    /// the wall-clock time of every occurrence.
    pub start: DateTime,
    /// Length of each occurrence in real elapsed minutes (1..=[`MAX_DURATION_MINUTES`]).
    pub duration_minutes: i64,
    /// IANA time zone name, e.g. `Europe/London`.
    pub time_zone: String,
    pub end: SeriesEnd,
}

/// One generated meetup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// 0-based position in the series. It depends only on the rule, never on the window asked
    /// for, so it can key the stored row.
    pub index: u32,
    /// Wall-clock start as a clock in the series' time zone shows it. This is the rule's time,
    /// except in a spring-forward gap, where it is the resolved time (02:30, not 01:30).
    pub local_start: DateTime,
    /// Wall-clock end in the series' time zone (the local reading of `end`).
    pub local_end: DateTime,
    pub start: Timestamp,
    /// `start` plus the duration in real elapsed time.
    pub end: Timestamp,
}

/// Why a rule was rejected. `Display` gives a sentence fit to show the organiser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    UnknownTimeZone(String),
    DurationOutOfRange(i64),
    CountOutOfRange(u32),
    UntilBeforeStart {
        until: Date,
        start: Date,
    },
    UntilTooFar {
        until: Date,
        latest: Date,
    },
    OrdinalMissing,
    OrdinalOutOfRange(i8),
    /// A weekday ordinal was given for a frequency that does not use one.
    OrdinalNotAllowed,
    /// The start date is not the `ordinal` weekday of its month.
    StartNotOnOrdinal {
        start: Date,
        ordinal: i8,
    },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::UnknownTimeZone(name) => write!(f, "\"{name}\" is not a time zone we recognise."),
            RuleError::DurationOutOfRange(minutes) => {
                write!(f, "A meetup must last between 1 minute and 24 hours ({minutes} minutes was given).")
            }
            RuleError::CountOutOfRange(count) => {
                write!(f, "A series must have between 1 and {MAX_COUNT} meetups ({count} was given).")
            }
            RuleError::UntilBeforeStart { until, start } => write!(
                f,
                "The series cannot end on {} because its first meetup is on {}.",
                long_date(*until),
                long_date(*start)
            ),
            RuleError::UntilTooFar { until, latest } => write!(
                f,
                "The series cannot run until {}: it may last at most {MAX_UNTIL_YEARS} years, \
                 so the latest end date is {}.",
                long_date(*until),
                long_date(*latest)
            ),
            RuleError::OrdinalMissing => {
                f.write_str("Choose which weekday of the month the meetup is on: first, second, third, fourth or last.")
            }
            RuleError::OrdinalOutOfRange(n) => {
                write!(f, "The weekday of the month must be first, second, third, fourth or last ({n} was given).")
            }
            RuleError::OrdinalNotAllowed => f.write_str(
                "Only a series on a weekday of the month (e.g. \"second Thursday\") takes a weekday ordinal.",
            ),
            RuleError::StartNotOnOrdinal { start, ordinal } => {
                let weekday = weekday_name(start.weekday());
                let (nth, is_last) = ordinal_of(*start);
                let actual = if is_last && nth != 4 {
                    format!("the last {weekday}")
                } else if is_last {
                    format!("the fourth and last {weekday}")
                } else {
                    format!("the {} {weekday}", ordinal_word(nth).to_lowercase())
                };
                write!(
                    f,
                    "The first meetup is on {}, which is {actual} of its month, not the {} {weekday}.",
                    long_date(*start),
                    ordinal_word(*ordinal).to_lowercase()
                )
            }
        }
    }
}

impl std::error::Error for RuleError {}

/// Where `date` falls among the same weekdays of its month: `(n, is_last)` with `n` in 1..=5
/// (the 29th is always a fifth) and `is_last` true when no such weekday follows in the month.
/// A UI can use it to offer "second Thursday" and/or "last Thursday" for a chosen start date:
/// ordinal `n` is valid when `n <= 4`, [`LAST`] when `is_last`.
pub fn ordinal_of(date: Date) -> (i8, bool) {
    let day = date.day();
    ((day - 1) / 7 + 1, day + 7 > date.days_in_month())
}

impl Rule {
    /// Validates the rule, returning the first problem found. [`Rule::occurrences_between`]
    /// and [`Rule::occurrences`] produce nothing for a rule that fails this.
    pub fn check(&self) -> Result<(), RuleError> {
        if TimeZone::get(&self.time_zone).is_err() {
            return Err(RuleError::UnknownTimeZone(self.time_zone.clone()));
        }
        if !(1..=MAX_DURATION_MINUTES).contains(&self.duration_minutes) {
            return Err(RuleError::DurationOutOfRange(self.duration_minutes));
        }
        match self.end {
            SeriesEnd::Count(count) if !(1..=MAX_COUNT).contains(&count) => {
                return Err(RuleError::CountOutOfRange(count));
            }
            SeriesEnd::Count(_) => {}
            SeriesEnd::Until(until) => {
                let start = self.start.date();
                if until < start {
                    return Err(RuleError::UntilBeforeStart { until, start });
                }
                // Adding years clamps 29 February to the 28th. If the addition overflows (a
                // start near year 9999), no representable date can be too far anyway.
                if let Ok(latest) = start.checked_add(MAX_UNTIL_YEARS.years()) {
                    if until > latest {
                        return Err(RuleError::UntilTooFar { until, latest });
                    }
                }
            }
        }
        match (self.frequency, self.weekday_ordinal) {
            (Frequency::MonthlyByWeekday, None) => return Err(RuleError::OrdinalMissing),
            (Frequency::MonthlyByWeekday, Some(ordinal)) => {
                if !(ordinal == LAST || (1..=4).contains(&ordinal)) {
                    return Err(RuleError::OrdinalOutOfRange(ordinal));
                }
                let (nth, is_last) = ordinal_of(self.start.date());
                let matches = if ordinal == LAST { is_last } else { nth == ordinal };
                if !matches {
                    return Err(RuleError::StartNotOnOrdinal { start: self.start.date(), ordinal });
                }
            }
            (_, Some(_)) => return Err(RuleError::OrdinalNotAllowed),
            (_, None) => {}
        }
        Ok(())
    }

    /// All occurrences whose start instant is in `[from, to)`, honouring the series end, in
    /// order. Indices count from the series' first occurrence, so the same occurrence has the
    /// same index whatever window it is fetched in. Empty if the rule fails [`Rule::check`].
    ///
    /// The series is walked from its start (indices must be counted), which is cheap because
    /// every valid series is short: at most [`MAX_COUNT`] meetups or [`MAX_UNTIL_YEARS`] years.
    pub fn occurrences_between(&self, from: Timestamp, to: Timestamp) -> Vec<Occurrence> {
        if from >= to {
            return Vec::new();
        }
        self.expand(Some((from, to)))
    }

    /// The whole series (every valid series is finite and short). Empty if the rule fails
    /// [`Rule::check`].
    pub fn occurrences(&self) -> Vec<Occurrence> {
        self.expand(None)
    }

    fn expand(&self, window: Option<(Timestamp, Timestamp)>) -> Vec<Occurrence> {
        if self.check().is_err() {
            return Vec::new();
        }
        let Ok(tz) = TimeZone::get(&self.time_zone) else { return Vec::new() };
        let duration = Span::new().minutes(self.duration_minutes);
        let mut out = Vec::new();
        let mut index: u32 = 0;
        for step in 0..MAX_STEPS {
            if let SeriesEnd::Count(count) = self.end {
                if index >= count {
                    break;
                }
            }
            let date = match self.candidate(step) {
                Candidate::Date(date) => date,
                Candidate::Skip => continue,
                Candidate::Stop => break,
            };
            if let SeriesEnd::Until(until) = self.end {
                if date > until {
                    break;
                }
            }
            let local = date.to_datetime(self.start.time());
            let Ok(start) = tz.to_ambiguous_timestamp(local).compatible() else { break };
            let Ok(end) = start.checked_add(duration) else { break };
            if let Some((from, to)) = window {
                // Candidates are at least 7 days apart, far more than any offset change, so
                // instants increase with the index and nothing later can fall in the window.
                if start >= to {
                    break;
                }
                if start < from {
                    index += 1;
                    continue;
                }
            }
            out.push(Occurrence {
                index,
                local_start: tz.to_datetime(start),
                local_end: tz.to_datetime(end),
                start,
                end,
            });
            index += 1;
        }
        out
    }

    /// The local date of the `step`-th candidate (step 0 is the start date).
    fn candidate(&self, step: i64) -> Candidate {
        let first = self.start.date();
        let result = match self.frequency {
            Frequency::Weekly => first.checked_add((7 * step).days()).map(Some),
            Frequency::Fortnightly => first.checked_add((14 * step).days()).map(Some),
            Frequency::MonthlyByDate => first
                .first_of_month()
                .checked_add(step.months())
                .map(|month| Date::new(month.year(), month.month(), first.day()).ok()),
            Frequency::MonthlyByWeekday => {
                let ordinal = self.weekday_ordinal.unwrap_or(LAST);
                first
                    .first_of_month()
                    .checked_add(step.months())
                    .and_then(|month| month.nth_weekday_of_month(ordinal, first.weekday()))
                    .map(Some)
            }
        };
        match result {
            Ok(Some(date)) => Candidate::Date(date),
            Ok(None) => Candidate::Skip,
            Err(_) => Candidate::Stop,
        }
    }

    /// A one-line English summary, e.g. "Second Thursday of each month at 16:00
    /// (Europe/London), 12 times". Best effort for an invalid rule (it never fails).
    pub fn describe(&self) -> String {
        let weekday = weekday_name(self.start.weekday());
        let pattern = match self.frequency {
            Frequency::Weekly => format!("Every week on {weekday}"),
            Frequency::Fortnightly => format!("Every two weeks on {weekday}"),
            Frequency::MonthlyByDate => {
                let day = self.start.day();
                if day > 28 {
                    format!("Monthly on day {day} (skipping months without one)")
                } else {
                    format!("Monthly on day {day}")
                }
            }
            Frequency::MonthlyByWeekday => {
                let ordinal = self.weekday_ordinal.map_or("?", ordinal_word);
                format!("{ordinal} {weekday} of each month")
            }
        };
        let end = match self.end {
            SeriesEnd::Count(1) => "once".to_string(),
            SeriesEnd::Count(n) => format!("{n} times"),
            SeriesEnd::Until(date) => format!("until {}", long_date(date)),
        };
        format!("{pattern} at {} ({}), {end}", self.start.strftime("%H:%M"), self.time_zone)
    }
}

/// One step of the walk: a date, a month without the rule's day (skipped, consumes no index),
/// or date arithmetic out of jiff's range (ends the series).
enum Candidate {
    Date(Date),
    Skip,
    Stop,
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

fn ordinal_word(ordinal: i8) -> &'static str {
    match ordinal {
        1 => "First",
        2 => "Second",
        3 => "Third",
        4 => "Fourth",
        5 => "Fifth",
        LAST => "Last",
        _ => "?",
    }
}

/// "1 June 2027": unambiguous across British and American readers.
fn long_date(date: Date) -> String {
    date.strftime("%-d %B %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const LONDON: &str = "Europe/London";
    const NEW_YORK: &str = "America/New_York";

    fn rule(frequency: Frequency, ordinal: Option<i8>, start: &str, zone: &str, end: SeriesEnd) -> Rule {
        Rule {
            frequency,
            weekday_ordinal: ordinal,
            start: start.parse().unwrap(),
            duration_minutes: 90,
            time_zone: zone.to_string(),
            end,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn local_dates(occurrences: &[Occurrence]) -> Vec<Date> {
        occurrences.iter().map(|o| o.local_start.date()).collect()
    }

    fn indices(occurrences: &[Occurrence]) -> Vec<u32> {
        occurrences.iter().map(|o| o.index).collect()
    }

    fn starts(occurrences: &[Occurrence]) -> Vec<Timestamp> {
        occurrences.iter().map(|o| o.start).collect()
    }

    #[test]
    fn weekly_sequence() {
        let r = rule(Frequency::Weekly, None, "2026-01-06T18:30", LONDON, SeriesEnd::Count(5));
        let all = r.occurrences();
        assert_eq!(
            local_dates(&all),
            [date(2026, 1, 6), date(2026, 1, 13), date(2026, 1, 20), date(2026, 1, 27), date(2026, 2, 3)]
        );
        assert_eq!(indices(&all), [0, 1, 2, 3, 4]);
        let first = &all[0];
        assert_eq!(first.local_start, "2026-01-06T18:30".parse().unwrap());
        assert_eq!(first.local_end, "2026-01-06T20:00".parse().unwrap());
        assert_eq!(first.start, ts("2026-01-06T18:30Z"));
        assert_eq!(first.end, ts("2026-01-06T20:00Z"));
    }

    #[test]
    fn fortnightly_sequence() {
        let r = rule(Frequency::Fortnightly, None, "2026-01-07T19:00", LONDON, SeriesEnd::Count(4));
        assert_eq!(
            local_dates(&r.occurrences()),
            [date(2026, 1, 7), date(2026, 1, 21), date(2026, 2, 4), date(2026, 2, 18)]
        );
    }

    #[test]
    fn monthly_by_date_sequence() {
        let r = rule(Frequency::MonthlyByDate, None, "2026-11-15T12:00", LONDON, SeriesEnd::Count(4));
        assert_eq!(
            local_dates(&r.occurrences()),
            [date(2026, 11, 15), date(2026, 12, 15), date(2027, 1, 15), date(2027, 2, 15)]
        );
    }

    #[test]
    fn monthly_day_31_skips_short_months() {
        let r = rule(Frequency::MonthlyByDate, None, "2026-01-31T18:00", LONDON, SeriesEnd::Count(5));
        let all = r.occurrences();
        assert_eq!(
            local_dates(&all),
            [date(2026, 1, 31), date(2026, 3, 31), date(2026, 5, 31), date(2026, 7, 31), date(2026, 8, 31)]
        );
        // Skipped months consume no index.
        assert_eq!(indices(&all), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn monthly_day_29_and_30_skip_february_except_leap_years() {
        let r = rule(Frequency::MonthlyByDate, None, "2026-12-29T18:00", LONDON, SeriesEnd::Until(date(2028, 3, 31)));
        let dates = local_dates(&r.occurrences());
        assert!(!dates.iter().any(|d| d.month() == 2 && d.year() == 2027), "{dates:?}");
        assert!(dates.contains(&date(2027, 1, 29)) && dates.contains(&date(2027, 3, 29)));
        assert!(dates.contains(&date(2028, 2, 29)), "leap day is kept: {dates:?}");
        assert_eq!(dates.len(), 15); // Dec 2026 + 12 months of 2027 less February + Jan-Mar 2028.

        let r = rule(Frequency::MonthlyByDate, None, "2028-01-30T18:00", LONDON, SeriesEnd::Count(3));
        assert_eq!(local_dates(&r.occurrences()), [date(2028, 1, 30), date(2028, 3, 30), date(2028, 4, 30)]);
    }

    #[test]
    fn monthly_second_thursday() {
        let r = rule(Frequency::MonthlyByWeekday, Some(2), "2026-01-08T16:00", LONDON, SeriesEnd::Count(6));
        assert_eq!(r.check(), Ok(()));
        assert_eq!(
            local_dates(&r.occurrences()),
            [
                date(2026, 1, 8),
                date(2026, 2, 12),
                date(2026, 3, 12),
                date(2026, 4, 9),
                date(2026, 5, 14),
                date(2026, 6, 11)
            ]
        );
    }

    #[test]
    fn monthly_last_friday() {
        let r = rule(Frequency::MonthlyByWeekday, Some(LAST), "2026-01-30T18:00", LONDON, SeriesEnd::Count(7));
        assert_eq!(r.check(), Ok(()));
        assert_eq!(
            local_dates(&r.occurrences()),
            [
                date(2026, 1, 30),
                date(2026, 2, 27),
                date(2026, 3, 27),
                date(2026, 4, 24),
                date(2026, 5, 29),
                date(2026, 6, 26),
                date(2026, 7, 31)
            ]
        );
    }

    #[test]
    fn fourth_and_last_differ_when_a_month_has_five() {
        // 26 February 2026 is both the fourth and the last Thursday of February.
        let fourth = rule(Frequency::MonthlyByWeekday, Some(4), "2026-02-26T18:00", LONDON, SeriesEnd::Count(6));
        let last = Rule { weekday_ordinal: Some(LAST), ..fourth.clone() };
        assert_eq!(fourth.check(), Ok(()));
        assert_eq!(last.check(), Ok(()));
        assert_eq!(
            local_dates(&fourth.occurrences()),
            [
                date(2026, 2, 26),
                date(2026, 3, 26),
                date(2026, 4, 23),
                date(2026, 5, 28),
                date(2026, 6, 25),
                date(2026, 7, 23)
            ]
        );
        assert_eq!(
            local_dates(&last.occurrences()),
            [
                date(2026, 2, 26),
                date(2026, 3, 26),
                date(2026, 4, 30),
                date(2026, 5, 28),
                date(2026, 6, 25),
                date(2026, 7, 30)
            ]
        );
    }

    #[test]
    fn ordinal_of_dates() {
        assert_eq!(ordinal_of(date(2026, 1, 1)), (1, false));
        assert_eq!(ordinal_of(date(2026, 1, 8)), (2, false));
        assert_eq!(ordinal_of(date(2026, 1, 22)), (4, false));
        assert_eq!(ordinal_of(date(2026, 1, 29)), (5, true));
        assert_eq!(ordinal_of(date(2026, 2, 26)), (4, true));
        assert_eq!(ordinal_of(date(2026, 2, 28)), (4, true));
        assert_eq!(ordinal_of(date(2026, 1, 25)), (4, true)); // Sunday; 1 Feb is the next.
    }

    #[test]
    fn until_is_inclusive() {
        let on = rule(Frequency::Weekly, None, "2026-01-06T18:30", LONDON, SeriesEnd::Until(date(2026, 1, 27)));
        assert_eq!(
            local_dates(&on.occurrences()),
            [date(2026, 1, 6), date(2026, 1, 13), date(2026, 1, 20), date(2026, 1, 27)]
        );
        let before = Rule { end: SeriesEnd::Until(date(2026, 1, 26)), ..on.clone() };
        assert_eq!(before.occurrences().len(), 3);
        let same_day = Rule { end: SeriesEnd::Until(date(2026, 1, 6)), ..on };
        assert_eq!(local_dates(&same_day.occurrences()), [date(2026, 1, 6)]);
    }

    #[test]
    fn count_one_and_max() {
        let once = rule(Frequency::Weekly, None, "2026-01-06T18:30", LONDON, SeriesEnd::Count(1));
        assert_eq!(once.occurrences().len(), 1);
        // The slowest series: 200 meetups on the 31st take about 29 years of months.
        let r = rule(Frequency::MonthlyByDate, None, "2026-01-31T18:00", LONDON, SeriesEnd::Count(MAX_COUNT));
        let all = r.occurrences();
        assert_eq!(all.len(), 200);
        assert_eq!(all.last().unwrap().index, 199);
        assert!(all.iter().all(|o| o.local_start.day() == 31));
    }

    #[test]
    fn five_years_weekly_is_all_there() {
        let r = rule(Frequency::Weekly, None, "2026-01-06T18:30", LONDON, SeriesEnd::Until(date(2031, 1, 6)));
        assert_eq!(r.check(), Ok(()));
        let all = r.occurrences();
        assert_eq!(all.len(), 261); // 1826 days: 260 full weeks after the first meetup.
        assert_eq!(all.last().unwrap().local_start.date(), date(2030, 12, 31));
    }

    #[test]
    fn windows_give_the_same_indices_as_the_full_list() {
        let rules = [
            rule(Frequency::Weekly, None, "2026-01-06T18:30", LONDON, SeriesEnd::Count(40)),
            rule(Frequency::MonthlyByDate, None, "2026-01-31T18:00", NEW_YORK, SeriesEnd::Until(date(2028, 1, 1))),
            rule(Frequency::MonthlyByWeekday, Some(2), "2026-01-08T16:00", LONDON, SeriesEnd::Count(30)),
        ];
        for r in &rules {
            let all = r.occurrences();
            assert!(all.len() > 10);
            // A window starting exactly on an occurrence includes it; ending exactly on one excludes it.
            let windows = [
                (all[3].start, all[9].start),
                (ts("2026-03-01T00:00Z"), ts("2026-09-01T00:00Z")),
                (ts("2025-01-01T00:00Z"), ts("2040-01-01T00:00Z")),
                (all[5].start, all[5].start.checked_add(1.second()).unwrap()),
            ];
            for (from, to) in windows {
                let expected: Vec<_> = all.iter().filter(|o| o.start >= from && o.start < to).cloned().collect();
                assert_eq!(r.occurrences_between(from, to), expected);
            }
            assert_eq!(r.occurrences_between(all[3].start, all[9].start)[0].index, 3);
            assert!(r.occurrences_between(all[5].start, all[5].start).is_empty());
            assert!(r.occurrences_between(ts("2041-01-01T00:00Z"), ts("2042-01-01T00:00Z")).is_empty());
        }
        // A counted series stops at its count even in a far-reaching window.
        let counted = &rules[0];
        let w = counted.occurrences_between(ts("2026-06-01T00:00Z"), ts("2030-01-01T00:00Z"));
        assert_eq!(w.last().unwrap().index, 39);
    }

    #[test]
    fn london_keeps_16_00_local_across_both_changes() {
        // Second Thursday, all of 2026: BST runs from 29 March to 25 October.
        let r = rule(Frequency::MonthlyByWeekday, Some(2), "2026-01-08T16:00", LONDON, SeriesEnd::Count(12));
        let all = r.occurrences();
        assert!(all.iter().all(|o| o.local_start.time() == jiff::civil::time(16, 0, 0, 0)));
        let utc_hours: Vec<i8> = all.iter().map(|o| o.start.to_zoned(TimeZone::UTC).hour()).collect();
        assert_eq!(utc_hours, [16, 16, 16, 15, 15, 15, 15, 15, 15, 15, 16, 16]);

        // Last Sunday: lands on both change days themselves.
        let r = rule(Frequency::MonthlyByWeekday, Some(LAST), "2026-02-22T16:00", LONDON, SeriesEnd::Count(10));
        let all = r.occurrences();
        assert_eq!(all[1].local_start, "2026-03-29T16:00".parse().unwrap());
        assert_eq!(starts(&all[..2]), [ts("2026-02-22T16:00Z"), ts("2026-03-29T15:00Z")]);
        assert_eq!(all[8].local_start, "2026-10-25T16:00".parse().unwrap());
        assert_eq!(starts(&all[7..9]), [ts("2026-09-27T15:00Z"), ts("2026-10-25T16:00Z")]);
        assert_eq!(all[8].local_end, "2026-10-25T17:30".parse().unwrap());
    }

    #[test]
    fn london_0130_sundays_through_the_gap_and_the_overlap() {
        let mut r = rule(Frequency::Weekly, None, "2026-03-22T01:30", LONDON, SeriesEnd::Count(3));
        r.duration_minutes = 60;
        let spring = r.occurrences();
        assert_eq!(starts(&spring), [ts("2026-03-22T01:30Z"), ts("2026-03-29T01:30Z"), ts("2026-04-05T00:30Z")]);
        // 01:30 does not exist on 29 March: read as 01:30 GMT, which is 02:30 BST.
        let gap = &spring[1];
        assert_eq!(gap.local_start, "2026-03-29T02:30".parse().unwrap());
        assert_eq!(gap.end, ts("2026-03-29T02:30Z"));
        assert_eq!(gap.local_end, "2026-03-29T03:30".parse().unwrap());
        // The following week is back at the rule's 01:30 (no drift).
        assert_eq!(spring[2].local_start, "2026-04-05T01:30".parse().unwrap());

        r.start = "2026-10-18T01:30".parse().unwrap();
        let autumn = r.occurrences();
        assert_eq!(starts(&autumn), [ts("2026-10-18T00:30Z"), ts("2026-10-25T00:30Z"), ts("2026-11-01T01:30Z")]);
        // 01:30 happens twice on 25 October: the earlier (BST) one is chosen. An hour of real
        // time later the clock reads 01:30 again (GMT).
        let overlap = &autumn[1];
        assert_eq!(overlap.local_start, "2026-10-25T01:30".parse().unwrap());
        assert_eq!(overlap.end, ts("2026-10-25T01:30Z"));
        assert_eq!(overlap.local_end, "2026-10-25T01:30".parse().unwrap());
    }

    #[test]
    fn new_york_changes_on_its_own_dates() {
        // US DST 2026: 8 March to 1 November (London: 29 March to 25 October).
        let r = rule(Frequency::Weekly, None, "2026-03-01T16:00", NEW_YORK, SeriesEnd::Count(5));
        let all = r.occurrences();
        assert!(all.iter().all(|o| o.local_start.time() == jiff::civil::time(16, 0, 0, 0)));
        assert_eq!(
            starts(&all),
            [
                ts("2026-03-01T21:00Z"),
                ts("2026-03-08T20:00Z"),
                ts("2026-03-15T20:00Z"),
                ts("2026-03-22T20:00Z"),
                ts("2026-03-29T20:00Z")
            ]
        );
        let r = Rule { start: "2026-10-25T16:00".parse().unwrap(), ..r };
        assert_eq!(starts(&r.occurrences()[..2]), [ts("2026-10-25T20:00Z"), ts("2026-11-01T21:00Z")]);

        // 02:30 on 8 March does not exist (EST 02:00 jumps to EDT 03:00) -> 03:30 EDT.
        let r = rule(Frequency::Weekly, None, "2026-03-08T02:30", NEW_YORK, SeriesEnd::Count(1));
        let gap = &r.occurrences()[0];
        assert_eq!(gap.start, ts("2026-03-08T07:30Z"));
        assert_eq!(gap.local_start, "2026-03-08T03:30".parse().unwrap());
        // 01:30 on 1 November happens twice -> the earlier, EDT.
        let r = rule(Frequency::Weekly, None, "2026-11-01T01:30", NEW_YORK, SeriesEnd::Count(2));
        assert_eq!(starts(&r.occurrences()), [ts("2026-11-01T05:30Z"), ts("2026-11-08T06:30Z")]);
    }

    #[test]
    fn validation_errors() {
        let ok = rule(Frequency::MonthlyByWeekday, Some(2), "2026-01-08T16:00", LONDON, SeriesEnd::Count(12));
        assert_eq!(ok.check(), Ok(()));
        let bad = |r: Rule| {
            let err = r.check().unwrap_err();
            assert!(r.occurrences().is_empty(), "invalid rules generate nothing");
            assert!(!err.to_string().is_empty());
            err
        };

        let e = bad(Rule { time_zone: "Mars/Olympus_Mons".into(), ..ok.clone() });
        assert_eq!(e, RuleError::UnknownTimeZone("Mars/Olympus_Mons".into()));
        assert_eq!(e.to_string(), "\"Mars/Olympus_Mons\" is not a time zone we recognise.");
        bad(Rule { time_zone: String::new(), ..ok.clone() });

        assert_eq!(bad(Rule { duration_minutes: 0, ..ok.clone() }), RuleError::DurationOutOfRange(0));
        assert_eq!(bad(Rule { duration_minutes: 1441, ..ok.clone() }), RuleError::DurationOutOfRange(1441));
        assert_eq!(Rule { duration_minutes: 1, ..ok.clone() }.check(), Ok(()));
        assert_eq!(Rule { duration_minutes: 1440, ..ok.clone() }.check(), Ok(()));

        assert_eq!(bad(Rule { end: SeriesEnd::Count(0), ..ok.clone() }), RuleError::CountOutOfRange(0));
        assert_eq!(bad(Rule { end: SeriesEnd::Count(201), ..ok.clone() }), RuleError::CountOutOfRange(201));

        let e = bad(Rule { end: SeriesEnd::Until(date(2026, 1, 7)), ..ok.clone() });
        assert_eq!(e, RuleError::UntilBeforeStart { until: date(2026, 1, 7), start: date(2026, 1, 8) });
        assert_eq!(
            e.to_string(),
            "The series cannot end on 7 January 2026 because its first meetup is on 8 January 2026."
        );
        assert_eq!(Rule { end: SeriesEnd::Until(date(2031, 1, 8)), ..ok.clone() }.check(), Ok(()));
        let e = bad(Rule { end: SeriesEnd::Until(date(2031, 1, 9)), ..ok.clone() });
        assert_eq!(e, RuleError::UntilTooFar { until: date(2031, 1, 9), latest: date(2031, 1, 8) });
        assert_eq!(
            e.to_string(),
            "The series cannot run until 9 January 2031: it may last at most 5 years, so the latest end date is 8 January 2031."
        );

        assert_eq!(bad(Rule { weekday_ordinal: None, ..ok.clone() }), RuleError::OrdinalMissing);
        for n in [0, 5, -2] {
            assert_eq!(bad(Rule { weekday_ordinal: Some(n), ..ok.clone() }), RuleError::OrdinalOutOfRange(n));
        }
        let e = bad(Rule { weekday_ordinal: Some(3), ..ok.clone() });
        assert_eq!(e, RuleError::StartNotOnOrdinal { start: date(2026, 1, 8), ordinal: 3 });
        assert_eq!(
            e.to_string(),
            "The first meetup is on 8 January 2026, which is the second Thursday of its month, not the third Thursday."
        );
        let e = bad(Rule { weekday_ordinal: Some(LAST), ..ok.clone() });
        assert!(e.to_string().ends_with("not the last Thursday."), "{e}");
        // 29 January 2026 is a fifth (and last) Thursday: only "last" fits.
        let fifth = Rule { start: "2026-01-29T16:00".parse().unwrap(), ..ok.clone() };
        let e = bad(Rule { weekday_ordinal: Some(4), ..fifth.clone() });
        assert!(e.to_string().contains("which is the last Thursday of its month, not the fourth"), "{e}");
        assert_eq!(Rule { weekday_ordinal: Some(LAST), ..fifth }.check(), Ok(()));

        let weekly = rule(Frequency::Weekly, Some(2), "2026-01-08T16:00", LONDON, SeriesEnd::Count(3));
        assert_eq!(bad(weekly), RuleError::OrdinalNotAllowed);
    }

    #[test]
    fn describe_reads_naturally() {
        let r = rule(Frequency::MonthlyByWeekday, Some(2), "2026-01-08T16:00", LONDON, SeriesEnd::Count(12));
        assert_eq!(r.describe(), "Second Thursday of each month at 16:00 (Europe/London), 12 times");
        let r = rule(Frequency::Weekly, None, "2026-01-06T18:30", LONDON, SeriesEnd::Until(date(2027, 6, 1)));
        assert_eq!(r.describe(), "Every week on Tuesday at 18:30 (Europe/London), until 1 June 2027");
        let r = rule(Frequency::MonthlyByWeekday, Some(LAST), "2026-01-30T09:05", NEW_YORK, SeriesEnd::Count(1));
        assert_eq!(r.describe(), "Last Friday of each month at 09:05 (America/New_York), once");
        let r = rule(Frequency::Fortnightly, None, "2026-01-07T19:00", LONDON, SeriesEnd::Count(4));
        assert_eq!(r.describe(), "Every two weeks on Wednesday at 19:00 (Europe/London), 4 times");
        let r = rule(Frequency::MonthlyByDate, None, "2026-01-15T12:00", LONDON, SeriesEnd::Count(6));
        assert_eq!(r.describe(), "Monthly on day 15 at 12:00 (Europe/London), 6 times");
        let r = rule(Frequency::MonthlyByDate, None, "2026-01-31T12:00", LONDON, SeriesEnd::Count(6));
        assert_eq!(r.describe(), "Monthly on day 31 (skipping months without one) at 12:00 (Europe/London), 6 times");
    }

    #[test]
    fn frequency_storage_names() {
        for (f, name) in [
            (Frequency::Weekly, "weekly"),
            (Frequency::Fortnightly, "fortnightly"),
            (Frequency::MonthlyByDate, "monthly_by_date"),
            (Frequency::MonthlyByWeekday, "monthly_by_weekday"),
        ] {
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Frequency>(&format!("\"{name}\"")).unwrap(), f);
            assert_eq!(f.as_str(), name);
            assert_eq!(name.parse::<Frequency>(), Ok(f));
        }
        assert!("monthly".parse::<Frequency>().is_err());
    }
}
