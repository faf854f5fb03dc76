//! Bucket arithmetic: the minute, hour, day and calendar-month buckets that compaction
//! writes and queries tile windows with. Pure functions of Unix seconds (UTC) that saturate
//! at the ends of `i64` rather than overflow.

use chrono::DateTime;
use serde::{Deserialize, Serialize};

/// Bucket sizes, finest first. Months are calendar months (UTC); the others fixed lengths.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Minute,
    Hour,
    Day,
    Month,
}

impl Granularity {
    pub const ALL: [Granularity; 4] = [
        Granularity::Minute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Month,
    ];

    /// The length of a fixed-length bucket; `None` for months.
    pub fn seconds(self) -> Option<i64> {
        match self {
            Granularity::Minute => Some(60),
            Granularity::Hour => Some(3_600),
            Granularity::Day => Some(86_400),
            Granularity::Month => None,
        }
    }

    /// The start of the bucket holding `at` (Unix seconds, UTC). Saturates at the ends of
    /// `i64`; months past the calendar's range fall back to 31-day steps.
    pub fn bucket(self, at: i64) -> i64 {
        match self.seconds() {
            Some(s) => at.div_euclid(s).saturating_mul(s),
            None => month_start(at, 0),
        }
    }

    /// The start of the bucket after the one holding `at`: always later than `at` (but at
    /// `i64::MAX`), so a walk over bucket starts ends.
    pub fn next(self, at: i64) -> i64 {
        let next = match self.seconds() {
            Some(s) => self.bucket(at).saturating_add(s),
            None => month_start(at, 1),
        };
        next.max(at.saturating_add(1))
    }

    /// `at` rounded up to a bucket start.
    pub fn ceil(self, at: i64) -> i64 {
        if self.bucket(at) == at {
            at
        } else {
            self.next(at)
        }
    }

    /// How many buckets start in `[from, to)`, `from` a bucket start.
    pub fn count(self, from: i64, to: i64) -> i64 {
        match self.seconds() {
            Some(s) => {
                let span = to.saturating_sub(from).max(0);
                span / s + i64::from(span % s != 0)
            }
            None => self.starts(from, to).count() as i64,
        }
    }

    /// The bucket starts in `[from, to)`, `from` a bucket start.
    pub fn starts(self, from: i64, to: i64) -> impl Iterator<Item = i64> + use<> {
        std::iter::successors(Some(from), move |at| {
            (*at < i64::MAX).then(|| self.next(*at))
        })
        .take_while(move |at| *at < to)
    }

    pub fn name(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Month => "month",
        }
    }
}

/// The first instant of the month `months_ahead` after the one holding `at` (UTC).
fn month_start(at: i64, months_ahead: u32) -> i64 {
    use chrono::{Datelike, Months, NaiveDate};
    const LONGEST: i64 = 31 * 86_400;
    // Outside chrono's calendar (±262,000 years) months are 31-day steps: meaningless, but
    // every walk still moves forward (windows are checked long before they get here).
    let fallback = at
        .div_euclid(LONGEST)
        .saturating_add(i64::from(months_ahead))
        .saturating_mul(LONGEST);
    let Some(day) = DateTime::from_timestamp(at.div_euclid(86_400).saturating_mul(86_400), 0)
    else {
        return fallback;
    };
    NaiveDate::from_ymd_opt(day.year(), day.month(), 1)
        .and_then(|d| d.checked_add_months(Months::new(months_ahead)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(fallback, |d| d.and_utc().timestamp())
}

/// Where each granularity's buckets start being kept (retention has pruned before).
#[derive(Debug, Clone, Copy, Default)]
pub struct Horizons {
    pub minute: Option<i64>,
    pub hour: Option<i64>,
}

impl Horizons {
    /// From the stored horizons (storage's `buckets::horizons`).
    pub fn from_stored(stored: &[(Granularity, Option<i64>)]) -> Self {
        let get = |g| stored.iter().find(|(x, _)| *x == g).and_then(|(_, t)| *t);
        Horizons {
            minute: get(Granularity::Minute),
            hour: get(Granularity::Hour),
        }
    }

    /// Whether `granularity`'s bucket starting at `bucket` is still kept.
    pub fn keeps(&self, g: Granularity, bucket: i64) -> bool {
        let from = match g {
            Granularity::Minute => self.minute,
            Granularity::Hour => self.hour,
            Granularity::Day | Granularity::Month => None,
        };
        from.is_none_or(|f| bucket >= f)
    }
}

/// Seconds `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

impl TimeRange {
    pub fn contains(&self, at: i64) -> bool {
        (self.from..self.to).contains(&at)
    }
}

/// Bucket starts `[from, to)` of one granularity (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRange {
    pub granularity: Granularity,
    pub from: i64,
    pub to: i64,
}
