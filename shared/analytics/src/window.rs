//! Windows: what a request asks for, and how it is read exactly. The inside of a window is
//! tiled with the coarsest buckets that cover it; the parts at each end that no bucket
//! retention kept there covers (less than a minute near now, an hour or a day further
//! back) are read from the stored facts. Only an edge older than the raw-fact horizon,
//! where no fact is left to read, is rounded outward to a bucket boundary, and the answer
//! says so for that edge.

use chrono::{DateTime, Utc};
use na_api_types::{ResolvedWindow, Rounded, SeriesWindow};
use na_domain::granularity::Horizons;
use na_domain::{BucketRange, Granularity, TimeRange};

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

/// The first instant a window may name (Nostr's `created_at` is unsigned).
pub const EARLIEST: i64 = 0;

/// The last instant a window may name (2100-01-01), later than any fact ingest accepts;
/// also the open end of "every change after".
pub const LATEST: i64 = 4_102_444_800;

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

    pub(crate) fn rolling_name(&self) -> Option<&'static str> {
        match self {
            WindowRequest::Rolling(n) => Some(n),
            WindowRequest::Custom { .. } => None,
        }
    }

    /// `[from, to)` at `now`.
    ///
    /// # Errors
    /// An instant outside [`EARLIEST`]..=[`LATEST`]; an inverted, empty or oversized window.
    pub fn bounds(&self, now: i64) -> Result<(i64, i64), QueryError> {
        let (from, to) = match self {
            WindowRequest::Rolling(name) => {
                let len = ROLLING.iter().find(|(n, _)| n == name).map_or(0, |r| r.1);
                (now.saturating_sub(len), now)
            }
            WindowRequest::Custom { from, to } => (*from, *to),
        };
        // First, so that nothing below computes with an instant no calendar holds.
        for (name, t) in [("from", from), ("to", to)] {
            if !(EARLIEST..=LATEST).contains(&t) {
                return Err(QueryError::bad(format!(
                    "{name}={t} is outside the instants answered ({} to {})",
                    iso(EARLIEST),
                    iso(LATEST)
                )));
            }
        }
        if from >= to {
            return Err(QueryError::bad(format!(
                "from ({}) must be before to ({})",
                iso(from),
                iso(to)
            )));
        }
        if to - from > MAX_WINDOW_SECONDS {
            return Err(QueryError::bad(format!(
                "the window is {} days long; at most {} days are answered",
                (to - from) / 86_400,
                MAX_WINDOW_SECONDS / 86_400
            )));
        }
        Ok((from, to))
    }
}

pub(crate) fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}
/// The window of an answer read whole from the stored facts over `range` (a list of
/// engagers, top notes): no tiles, never rounded.
pub(crate) fn read_whole(window: &WindowRequest, range: TimeRange) -> ResolvedWindow {
    ResolvedWindow {
        from: time(range.from),
        to: time(range.to),
        rolling: window.rolling_name().map(str::to_owned),
        requested_from: time(range.from),
        requested_to: time(range.to),
        rounded: Rounded::default(),
        tiles: Vec::new(),
        facts: vec![range],
    }
}

pub(crate) fn time(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Where each granularity's buckets are complete from, and where raw facts start. Minute
/// buckets are only used where hour buckets are kept too, so a tiling never needs a pruned
/// hour. Month buckets are used once every version has them (see migration V8).
#[derive(Debug, Clone, Copy, Default)]
pub struct Retained {
    minute_from: Option<i64>,
    hour_from: Option<i64>,
    months: bool,
    /// Raw facts before this were dropped (`None`: none were).
    raw_from: Option<i64>,
}

impl Retained {
    pub fn new(h: Horizons, months: bool, raw_from: Option<i64>) -> Self {
        let minute_from = match (h.minute, h.hour) {
            (Some(m), Some(hr)) => Some(m.max(hr)),
            (m, hr) => m.or(hr),
        };
        Retained {
            minute_from,
            hour_from: h.hour,
            months,
            raw_from,
        }
    }

    /// Every bucket and every fact (a note drilldown reads facts only).
    pub fn everything() -> Self {
        Retained {
            months: true,
            ..Retained::default()
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

    fn has_facts_at(&self, at: i64) -> bool {
        self.raw_from.is_none_or(|r| at >= r)
    }

    /// The window answered for `[from, to)`: each edge as asked, or rounded outward to the
    /// finest bucket kept there when its facts are past the raw horizon.
    fn answered(&self, from: i64, to: i64) -> (i64, i64, Rounded) {
        let start = if self.has_facts_at(from) {
            from
        } else {
            self.finest_at(from).bucket(from)
        };
        // An end with facts before it is exact; one past the horizon is rounded up.
        let end = if self.has_facts_at(to - 1) {
            to
        } else {
            self.finest_at(to).ceil(to)
        };
        let rounded = Rounded {
            from: start != from,
            to: end != to,
        };
        (start, end, rounded)
    }

    /// The start of the finest bucket kept at `at`: a level at `at` is the level there plus
    /// the changes in `[base, at)`, read from the facts.
    pub(crate) fn level_base(&self, at: i64) -> i64 {
        self.finest_at(at).bucket(at)
    }
}

/// How `[from, to)` is read: whole buckets, and facts for the parts no kept bucket covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub tiles: Vec<BucketRange>,
    pub facts: Vec<TimeRange>,
}

impl Plan {
    /// What `window` reads: its tiles and its parts from facts.
    pub fn of(window: &ResolvedWindow) -> Plan {
        Plan {
            tiles: window.tiles.clone(),
            facts: window.facts.clone(),
        }
    }

    /// The plan for `[from, to)`, whose facts must be retained wherever the plan reads them
    /// (an edge past the raw horizon is aligned first, by [`Retained::answered`]).
    pub fn cover(from: i64, to: i64, kept: &Retained) -> Plan {
        let mut plan = Plan::default();
        plan.add(from, to, kept);
        plan
    }

    fn add(&mut self, from: i64, to: i64, kept: &Retained) {
        if from >= to {
            return;
        }
        let inner_from = kept.finest_at(from).ceil(from);
        let inner_to = kept.finest_at(to).bucket(to);
        if inner_from >= inner_to {
            self.push_facts(from, to);
            return;
        }
        self.push_facts(from, inner_from);
        self.tiles.extend(tile(inner_from, inner_to, kept.months));
        self.push_facts(inner_to, to);
    }

    fn push_facts(&mut self, from: i64, to: i64) {
        if from >= to {
            return;
        }
        match self.facts.last_mut() {
            Some(last) if last.to == from => last.to = to,
            _ => self.facts.push(TimeRange { from, to }),
        }
    }

    /// `at` lies in a part read from facts (not from buckets or the live delta).
    pub fn in_facts(&self, at: i64) -> bool {
        self.facts.iter().any(|r| r.contains(at))
    }
}

/// Resolves a request for a summary or breakdown: exact wherever facts are retained.
///
/// # Errors
/// As [`WindowRequest::bounds`].
pub fn resolve(
    request: &WindowRequest,
    now: i64,
    kept: &Retained,
) -> Result<ResolvedWindow, QueryError> {
    let (req_from, req_to) = request.bounds(now)?;
    let (from, to, rounded) = kept.answered(req_from, req_to);
    let plan = Plan::cover(from, to, kept);
    Ok(ResolvedWindow {
        from: time(from),
        to: time(to),
        rolling: request.rolling_name().map(str::to_owned),
        requested_from: time(req_from),
        requested_to: time(req_to),
        rounded,
        tiles: plan.tiles,
        facts: plan.facts,
    })
}

/// The bucket ranges covering `[from, to)` with the fewest buckets: minutes up to the first
/// hour, hours up to the first day, days up to the first month (with `months`), months, then
/// days, hours and minutes to the end. `from` and `to` must be aligned to the granularity
/// their edge needs (as [`Plan::cover`] makes them).
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

/// The tiling of every bucket from `at` on (for gauges: the changes after an instant);
/// `at` aligned to the finest bucket kept there ([`Retained::level_base`]).
pub(crate) fn tile_after(at: i64, kept: &Retained) -> Vec<BucketRange> {
    tile(at, LATEST, kept.months)
}

/// Resolves a request for a time series of `g` points: a window at most `max_points`
/// buckets of `g` long (a window whose edges fall inside buckets touches one more).
///
/// # Errors
/// As [`WindowRequest::bounds`]; inner points before `g`'s buckets are kept; too many
/// points; month points before month buckets are built.
pub fn resolve_series(
    request: &WindowRequest,
    g: Granularity,
    now: i64,
    kept: &Retained,
    max_points: i64,
) -> Result<SeriesWindow, QueryError> {
    let (req_from, req_to) = request.bounds(now)?;
    if g == Granularity::Month && !kept.months {
        return Err(QueryError::NotQueryable(
            "month buckets are being built from day buckets (once, after an upgrade); \
             ask for day points until the compactor's next run finishes"
                .into(),
        ));
    }
    let (from, to, rounded) = kept.answered(req_from, req_to);
    let length = match g.seconds() {
        Some(s) => (to - from + s - 1) / s,
        None => g.count(g.bucket(from), to),
    };
    if length > max_points {
        return Err(QueryError::bad(format!(
            "{length} {} points asked for; at most {max_points}: shorten the window or use a coarser granularity",
            g.name()
        )));
    }
    // Whole points come from `g`'s own buckets; the points at the edges, from finer
    // buckets and facts.
    let (inner_from, inner_to) = (g.ceil(from), g.bucket(to));
    let mut plan = Plan::default();
    if inner_from < inner_to {
        if let Some(kept_from) = kept.from(g)
            && inner_from < kept_from
        {
            return Err(QueryError::bad(format!(
                "{} buckets are kept from {} on; start there or use a coarser granularity",
                g.name(),
                iso(kept_from)
            )));
        }
        plan.add(from, inner_from, kept);
        plan.tiles.push(BucketRange {
            granularity: g,
            from: inner_from,
            to: inner_to,
        });
        plan.add(inner_to, to, kept);
    } else {
        plan.add(from, to, kept);
    }
    Ok(SeriesWindow {
        resolved: ResolvedWindow {
            from: time(from),
            to: time(to),
            rolling: request.rolling_name().map(str::to_owned),
            requested_from: time(req_from),
            requested_to: time(req_to),
            rounded,
            tiles: plan.tiles,
            facts: plan.facts,
        },
        granularity: g,
        points: g.count(g.bucket(from), to),
    })
}

/// `ranges` sorted, with overlapping and touching ones joined.
pub(crate) fn union(ranges: impl IntoIterator<Item = TimeRange>) -> Vec<TimeRange> {
    let mut all: Vec<TimeRange> = ranges.into_iter().filter(|r| r.from < r.to).collect();
    all.sort_unstable_by_key(|r| (r.from, r.to));
    let mut out: Vec<TimeRange> = Vec::with_capacity(all.len());
    for r in all {
        match out.last_mut() {
            Some(last) if r.from <= last.to => last.to = last.to.max(r.to),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests;
