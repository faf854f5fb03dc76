//! Windows: what a request asks for, resolved to whole buckets of the finest granularity
//! still retained at each edge, and tiled with the coarsest buckets that cover it exactly.

use chrono::{DateTime, Utc};
use na_compaction::Horizons;
use na_storage::analytics::BucketRange;
use na_storage::compaction::Granularity;
use serde::Serialize;

use crate::QueryError;

/// Rolling windows, ending now.
pub const ROLLING: [(&str, i64); 5] = [
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
    ("90d", 90 * 86_400),
    ("365d", 365 * 86_400),
];

/// The longest custom window answered (ten years).
pub const MAX_WINDOW_SECONDS: i64 = 3_653 * 86_400;

/// Bucket starts later than any fact: the open end of "every change after".
const END_OF_TIME: i64 = 4_102_444_800; // 2100-01-01

/// A window as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowRequest {
    /// One of [`ROLLING`], ending at the request's instant.
    Rolling(&'static str),
    /// `[from, to)`, Unix seconds, UTC.
    Custom { from: i64, to: i64 },
}

impl WindowRequest {
    /// # Errors
    /// [`QueryError::BadRequest`] for a name not in [`ROLLING`].
    pub fn rolling(name: &str) -> Result<Self, QueryError> {
        ROLLING
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| WindowRequest::Rolling(n))
            .ok_or_else(|| {
                QueryError::bad(format!(
                    "window={name:?} is not one of {}; or give from and to",
                    ROLLING.map(|r| r.0).join(", ")
                ))
            })
    }

    fn rolling_name(&self) -> Option<&'static str> {
        match self {
            WindowRequest::Rolling(n) => Some(n),
            WindowRequest::Custom { .. } => None,
        }
    }

    /// `[from, to)` at `now`.
    ///
    /// # Errors
    /// An inverted, empty or oversized custom window.
    pub fn bounds(&self, now: i64) -> Result<(i64, i64), QueryError> {
        match self {
            WindowRequest::Rolling(name) => {
                let len = ROLLING.iter().find(|(n, _)| n == name).map_or(0, |r| r.1);
                Ok((now - len, now))
            }
            WindowRequest::Custom { from, to } if from >= to => Err(QueryError::bad(format!(
                "from ({}) must be before to ({})",
                iso(*from),
                iso(*to)
            ))),
            WindowRequest::Custom { from, to } if to - from > MAX_WINDOW_SECONDS => {
                Err(QueryError::bad(format!(
                    "the window is {} days long; at most {} days are answered",
                    (to - from) / 86_400,
                    MAX_WINDOW_SECONDS / 86_400
                )))
            }
            WindowRequest::Custom { from, to } => Ok((*from, *to)),
        }
    }
}

pub(crate) fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

pub(crate) fn time(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The window an answer covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedWindow {
    /// Start, inclusive: the requested start rounded down to a bucket boundary.
    pub from: DateTime<Utc>,
    /// End, exclusive: the requested end rounded up to a bucket boundary.
    pub to: DateTime<Utc>,
    /// The rolling window's name, for a rolling request.
    pub rolling: Option<&'static str>,
    pub requested_from: DateTime<Utc>,
    pub requested_to: DateTime<Utc>,
    /// The bucket ranges that tile `[from, to)`.
    pub tiles: Vec<BucketRange>,
}

/// Where each granularity's buckets are complete from. Minute buckets are only used where
/// hour buckets are kept too, so a tiling never needs a pruned hour. Month buckets are used
/// once every version has them (see migration V8).
#[derive(Debug, Clone, Copy, Default)]
pub struct Retained {
    minute_from: Option<i64>,
    hour_from: Option<i64>,
    months: bool,
}

impl Retained {
    pub fn new(h: Horizons, months: bool) -> Self {
        let minute_from = match (h.minute, h.hour) {
            (Some(m), Some(hr)) => Some(m.max(hr)),
            (m, hr) => m.or(hr),
        };
        Retained {
            minute_from,
            hour_from: h.hour,
            months,
        }
    }

    /// Where buckets of `g` start being kept (`None`: since the beginning).
    pub fn from(&self, g: Granularity) -> Option<i64> {
        match g {
            Granularity::Minute => self.minute_from,
            Granularity::Hour => self.hour_from,
            // Months are not pruned; whether they are built yet is `months`.
            Granularity::Day | Granularity::Month => None,
        }
    }

    /// The finest granularity kept at instant `at`.
    pub fn finest_at(&self, at: i64) -> Granularity {
        [Granularity::Minute, Granularity::Hour]
            .into_iter()
            .find(|g| self.from(*g).is_none_or(|f| at >= f))
            .unwrap_or(Granularity::Day)
    }
}

/// Resolves a request for a summary: both edges rounded outward to the finest buckets kept
/// there, then tiled.
///
/// # Errors
/// As [`WindowRequest::bounds`].
pub fn resolve(
    request: &WindowRequest,
    now: i64,
    kept: &Retained,
) -> Result<ResolvedWindow, QueryError> {
    let (req_from, req_to) = request.bounds(now)?;
    let from = kept.finest_at(req_from).bucket(req_from);
    let to = kept.finest_at(req_to).ceil(req_to);
    Ok(ResolvedWindow {
        from: time(from),
        to: time(to),
        rolling: request.rolling_name(),
        requested_from: time(req_from),
        requested_to: time(req_to),
        tiles: tile(from, to, kept.months),
    })
}

/// The bucket ranges covering `[from, to)` with the fewest buckets: minutes up to the first
/// hour, hours up to the first day, days up to the first month (with `months`), months, then
/// days, hours and minutes to the end. `from` and `to` must be aligned to the granularity
/// their edge needs (as [`resolve`] makes them).
pub fn tile(from: i64, to: i64, months: bool) -> Vec<BucketRange> {
    use Granularity::{Day, Hour, Minute, Month};
    let mut out = Vec::new();
    let mut at = from;
    let mut push = |granularity, end: i64, at: &mut i64| {
        if *at < end {
            out.push(BucketRange {
                granularity,
                from: *at,
                to: end,
            });
            *at = end;
        }
    };
    push(Minute, Hour.ceil(at).min(to), &mut at);
    push(Hour, Day.ceil(at).min(Hour.bucket(to)), &mut at);
    if months {
        push(Day, Month.ceil(at).min(Day.bucket(to)), &mut at);
        push(Month, Month.bucket(to), &mut at);
    }
    push(Day, Day.bucket(to), &mut at);
    push(Hour, Hour.bucket(to), &mut at);
    push(Minute, to, &mut at);
    out
}

/// The tiling of every bucket from `at` on (for gauges: the changes after an instant).
pub(crate) fn tile_after(at: i64, kept: &Retained) -> Vec<BucketRange> {
    tile(at, END_OF_TIME, kept.months)
}

/// A window for a time series at granularity `g`: whole points of `g`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rolling: Option<&'static str>,
    pub requested_from: DateTime<Utc>,
    pub requested_to: DateTime<Utc>,
    pub granularity: Granularity,
    pub points: i64,
    #[serde(skip)]
    pub range: BucketRange,
}

/// Resolves a request for a time series of `g` points, at most `max_points`.
///
/// # Errors
/// As [`WindowRequest::bounds`]; a start before `g`'s buckets are kept; too many points;
/// month points before month buckets are built.
pub fn resolve_series(
    request: &WindowRequest,
    g: Granularity,
    now: i64,
    kept: &Retained,
    max_points: i64,
) -> Result<SeriesWindow, QueryError> {
    let (req_from, req_to) = request.bounds(now)?;
    let (from, to) = (g.bucket(req_from), g.ceil(req_to));
    if g == Granularity::Month && !kept.months {
        return Err(QueryError::NotQueryable(
            "month buckets are being built from day buckets (once, after an upgrade); \
             ask for day points until the compactor's next run finishes"
                .into(),
        ));
    }
    if let Some(kept_from) = kept.from(g)
        && from < kept_from
    {
        return Err(QueryError::bad(format!(
            "{} buckets are kept from {} on; start there or use a coarser granularity",
            g.name(),
            iso(kept_from)
        )));
    }
    let points = g.count(from, to);
    if points > max_points {
        return Err(QueryError::bad(format!(
            "{points} {} points asked for; at most {max_points}: shorten the window or use a coarser granularity",
            g.name()
        )));
    }
    Ok(SeriesWindow {
        from: time(from),
        to: time(to),
        rolling: request.rolling_name(),
        requested_from: time(req_from),
        requested_to: time(req_to),
        granularity: g,
        points,
        range: BucketRange {
            granularity: g,
            from,
            to,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Granularity::{Day, Hour, Minute, Month};

    const DAY: i64 = 86_400;
    const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn r(granularity: Granularity, from: i64, to: i64) -> BucketRange {
        BucketRange {
            granularity,
            from,
            to,
        }
    }

    /// The tiles cover [from, to) exactly, in order, each aligned to its granularity.
    fn check_tiles(from: i64, to: i64, months: bool) -> Vec<BucketRange> {
        let tiles = tile(from, to, months);
        let mut at = from;
        for t in &tiles {
            assert_eq!(t.from, at, "{tiles:?}");
            assert!(t.from < t.to);
            let g = t.granularity;
            assert_eq!(
                (g.bucket(t.from), g.bucket(t.to)),
                (t.from, t.to),
                "{t:?} misaligned"
            );
            assert!(months || g != Month, "{tiles:?}");
            at = t.to;
        }
        assert_eq!(at, to, "{tiles:?}");
        tiles
    }

    fn check(from: i64, to: i64) -> Vec<BucketRange> {
        check_tiles(from, to, false)
    }

    #[test]
    fn tiles_days_inside_hours_and_minutes_at_the_edges() {
        let from = T0 + 10 * 3600 + 30 * 60;
        let to = T0 + 40 * DAY + 14 * 3600 + 15 * 60;
        assert_eq!(
            check(from, to),
            vec![
                r(Minute, from, T0 + 11 * 3600),
                r(Hour, T0 + 11 * 3600, T0 + DAY),
                r(Day, T0 + DAY, T0 + 40 * DAY),
                r(Hour, T0 + 40 * DAY, T0 + 40 * DAY + 14 * 3600),
                r(Minute, T0 + 40 * DAY + 14 * 3600, to),
            ]
        );
    }

    #[test]
    fn tiles_short_and_aligned_windows() {
        let from = T0 + 10 * 3600 + 30 * 60;
        assert_eq!(check(from, from + 900), vec![r(Minute, from, from + 900)]);
        assert_eq!(
            check(from, T0 + 14 * 3600 + 60),
            vec![
                r(Minute, from, T0 + 11 * 3600),
                r(Hour, T0 + 11 * 3600, T0 + 14 * 3600),
                r(Minute, T0 + 14 * 3600, T0 + 14 * 3600 + 60),
            ]
        );
        assert_eq!(check(T0, T0 + 7 * DAY), vec![r(Day, T0, T0 + 7 * DAY)]);
        assert_eq!(check(T0, T0), vec![]);
        for (from, to) in [(T0 + 60, T0 + 3 * DAY + 3600), (T0 + 3600, T0 + DAY + 60)] {
            check(from, to);
        }
    }

    #[test]
    fn tiles_whole_calendar_months_when_month_buckets_are_built() {
        // 2026-01-01 + 10:30 to 2026-04-10 + 14:15: January from its second day, then
        // February and March whole, then April's first nine days.
        let from = T0 + 10 * 3600 + 30 * 60;
        let (feb, apr) = (T0 + 31 * DAY, T0 + 90 * DAY);
        let to = apr + 9 * DAY + 14 * 3600 + 15 * 60;
        assert_eq!(
            check_tiles(from, to, true),
            vec![
                r(Minute, from, T0 + 11 * 3600),
                r(Hour, T0 + 11 * 3600, T0 + DAY),
                r(Day, T0 + DAY, feb),
                r(Month, feb, apr),
                r(Day, apr, apr + 9 * DAY),
                r(Hour, apr + 9 * DAY, apr + 9 * DAY + 14 * 3600),
                r(Minute, apr + 9 * DAY + 14 * 3600, to),
            ]
        );
        // Inside one month, or without month buckets, days as before.
        assert_eq!(
            check_tiles(feb, feb + 20 * DAY, true),
            vec![r(Day, feb, feb + 20 * DAY)]
        );
        assert_eq!(check(T0, apr), vec![r(Day, T0, apr)]);
        assert_eq!(check_tiles(T0, apr, true), vec![r(Month, T0, apr)]);
        // Every rolling window, ending at every hour of a year: a whole tiling.
        for h in (0..365 * 24).step_by(7) {
            let end = T0 + h * 3600 + 17 * 60;
            for (_, len) in ROLLING {
                check_tiles(end - len, end, true);
            }
        }
    }

    #[test]
    fn months_are_calendar_months() {
        let feb = T0 + 31 * DAY;
        assert_eq!(Month.bucket(feb - 1), T0);
        assert_eq!(Month.bucket(feb), feb);
        assert_eq!(Month.next(T0 + 5), feb);
        assert_eq!(Month.next(feb), feb + 28 * DAY, "2026 is not a leap year");
        assert_eq!(Month.ceil(feb + 1), feb + 28 * DAY);
        assert_eq!(Month.count(T0, T0 + 365 * DAY), 12);
        // December rolls into January; a leap February has 29 days.
        let dec_2027 = 1_827_619_200; // 2027-12-01
        assert_eq!(Month.next(dec_2027), dec_2027 + 31 * DAY);
        let feb_2028 = dec_2027 + 62 * DAY;
        assert_eq!(Month.next(feb_2028), feb_2028 + 29 * DAY);
        assert_eq!(Month.bucket(-1), -31 * DAY, "before 1970");
        assert_eq!(Day.count(T0, T0 + DAY + 1), 2);
    }

    #[test]
    fn edges_round_outward_to_what_retention_kept() {
        let now = T0 + 200 * DAY + 5 * 3600 + 17 * 60 + 9;
        let kept = Retained::new(
            Horizons {
                minute: Some(T0 + 192 * DAY + 3600),
                hour: Some(T0 + 100 * DAY),
            },
            true,
        );
        let w = resolve(&WindowRequest::Rolling("24h"), now, &kept).unwrap();
        assert_eq!(
            w.to.timestamp(),
            now - 9 + 60,
            "the current minute is included"
        );
        assert_eq!(w.from.timestamp(), now - DAY - 9);
        // 30 days back: before the minute horizon, the start rounds down to an hour.
        let w = resolve(&WindowRequest::Rolling("30d"), now, &kept).unwrap();
        assert_eq!(w.from.timestamp(), T0 + 170 * DAY + 5 * 3600);
        // 365 days back: before the hour horizon, to a day.
        let w = resolve(&WindowRequest::Rolling("365d"), now, &kept).unwrap();
        assert_eq!(w.from.timestamp() % DAY, 0);
        assert!(w.from.timestamp() <= now - 365 * DAY);
        for t in &w.tiles {
            if let Some(f) = kept.from(t.granularity) {
                assert!(t.from >= f, "{t:?} uses pruned buckets");
            }
        }
    }

    #[test]
    fn bad_windows_are_refused_with_what_to_change() {
        let kept = Retained::default();
        for (req, says) in [
            (WindowRequest::Custom { from: 10, to: 5 }, "must be before"),
            (
                WindowRequest::Custom {
                    from: 0,
                    to: 20 * 365 * DAY,
                },
                "at most 3653 days",
            ),
        ] {
            let e = resolve(&req, T0, &kept).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        assert!(WindowRequest::rolling("2w").is_err());
        let e = resolve_series(&WindowRequest::Rolling("365d"), Minute, T0, &kept, 5000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("525600 minute points"), "{e}");
        let kept = Retained::new(
            Horizons {
                minute: Some(T0 - DAY),
                hour: None,
            },
            false,
        );
        let e = resolve_series(&WindowRequest::Rolling("7d"), Minute, T0, &kept, 50_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("minute buckets are kept from"), "{e}");
        let w = resolve_series(&WindowRequest::Rolling("7d"), Hour, T0 + 1, &kept, 5000).unwrap();
        assert_eq!(w.points, 7 * 24 + 1);
        let e = resolve_series(&WindowRequest::Rolling("365d"), Month, T0, &kept, 5000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("being built"), "{e}");
        let kept = Retained::new(Horizons::default(), true);
        let w = resolve_series(&WindowRequest::Rolling("365d"), Month, T0, &kept, 5000).unwrap();
        assert_eq!((w.points, w.from.timestamp()), (12, T0 - 365 * DAY));
    }
}
