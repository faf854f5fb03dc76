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
/// hour buckets are kept too, so a tiling never needs a pruned hour.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retained {
    minute_from: Option<i64>,
    hour_from: Option<i64>,
}

impl Retained {
    pub fn new(h: Horizons) -> Self {
        let minute_from = match (h.minute, h.hour) {
            (Some(m), Some(hr)) => Some(m.max(hr)),
            (m, hr) => m.or(hr),
        };
        Retained {
            minute_from,
            hour_from: h.hour,
        }
    }

    /// Where buckets of `g` start being kept (`None`: since the beginning).
    pub fn from(&self, g: Granularity) -> Option<i64> {
        match g {
            Granularity::Minute => self.minute_from,
            Granularity::Hour => self.hour_from,
            Granularity::Day => None,
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

pub(crate) fn ceil(at: i64, g: Granularity) -> i64 {
    let f = g.bucket(at);
    if f == at { at } else { f + g.seconds() }
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
    let to = ceil(req_to, kept.finest_at(req_to));
    Ok(ResolvedWindow {
        from: time(from),
        to: time(to),
        rolling: request.rolling_name(),
        requested_from: time(req_from),
        requested_to: time(req_to),
        tiles: tile(from, to),
    })
}

/// The bucket ranges covering `[from, to)` with the fewest buckets: minutes up to the first
/// hour, hours up to the first day, days, then hours and minutes to the end. `from` and
/// `to` must be aligned to the granularity their edge needs (as [`resolve`] makes them).
pub fn tile(from: i64, to: i64) -> Vec<BucketRange> {
    use Granularity::{Day, Hour, Minute};
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
    push(Minute, ceil(at, Hour).min(to), &mut at);
    push(Hour, ceil(at, Day).min(Hour.bucket(to)), &mut at);
    push(Day, Day.bucket(to), &mut at);
    push(Hour, Hour.bucket(to), &mut at);
    push(Minute, to, &mut at);
    out
}

/// The tiling of every bucket from `at` on (for gauges: the changes after an instant).
pub(crate) fn tile_after(at: i64) -> Vec<BucketRange> {
    tile(at, END_OF_TIME)
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
/// As [`WindowRequest::bounds`]; a start before `g`'s buckets are kept; too many points.
pub fn resolve_series(
    request: &WindowRequest,
    g: Granularity,
    now: i64,
    kept: &Retained,
    max_points: i64,
) -> Result<SeriesWindow, QueryError> {
    let (req_from, req_to) = request.bounds(now)?;
    let (from, to) = (g.bucket(req_from), ceil(req_to, g));
    if let Some(kept_from) = kept.from(g)
        && from < kept_from
    {
        return Err(QueryError::bad(format!(
            "{} buckets are kept from {} on; start there or use a coarser granularity",
            g.name(),
            iso(kept_from)
        )));
    }
    let points = (to - from) / g.seconds();
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
    use Granularity::{Day, Hour, Minute};

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
    fn check(from: i64, to: i64) -> Vec<BucketRange> {
        let tiles = tile(from, to);
        let mut at = from;
        for t in &tiles {
            assert_eq!(t.from, at, "{tiles:?}");
            assert!(t.from < t.to);
            let s = t.granularity.seconds();
            assert_eq!((t.from % s, t.to % s), (0, 0), "{t:?} misaligned");
            at = t.to;
        }
        assert_eq!(at, to, "{tiles:?}");
        tiles
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
    fn edges_round_outward_to_what_retention_kept() {
        let now = T0 + 200 * DAY + 5 * 3600 + 17 * 60 + 9;
        let kept = Retained::new(Horizons {
            minute: Some(T0 + 192 * DAY + 3600),
            hour: Some(T0 + 100 * DAY),
        });
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
        let kept = Retained::new(Horizons {
            minute: Some(T0 - DAY),
            hour: None,
        });
        let e = resolve_series(&WindowRequest::Rolling("7d"), Minute, T0, &kept, 50_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("minute buckets are kept from"), "{e}");
        let w = resolve_series(&WindowRequest::Rolling("7d"), Hour, T0 + 1, &kept, 5000).unwrap();
        assert_eq!(w.points, 7 * 24 + 1);
    }
}
