//! The window an answer covers, as it says so.

use chrono::{DateTime, Utc};
use na_domain::{BucketRange, Granularity, TimeRange};
use serde::{Deserialize, Serialize};

/// Which edges of an answer were rounded outward (their facts are past the raw horizon).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rounded {
    pub from: bool,
    pub to: bool,
}

/// The window an answer covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedWindow {
    /// Start, inclusive: as asked, unless `rounded.from`.
    pub from: DateTime<Utc>,
    /// End, exclusive: as asked, unless `rounded.to`.
    pub to: DateTime<Utc>,
    /// The rolling window's name, for a rolling request.
    pub rolling: Option<String>,
    pub requested_from: DateTime<Utc>,
    pub requested_to: DateTime<Utc>,
    /// Edges rounded outward to a bucket boundary: raw facts there were dropped.
    pub rounded: Rounded,
    /// The whole buckets read.
    pub tiles: Vec<BucketRange>,
    /// The parts read from the stored facts: together with `tiles`, `[from, to)` exactly.
    pub facts: Vec<TimeRange>,
}

impl ResolvedWindow {
    /// `[from, to)` in Unix seconds.
    pub fn bounds(&self) -> (i64, i64) {
        (self.from.timestamp(), self.to.timestamp())
    }
}

/// A window for a time series at granularity `g`: one point per bucket of `g` it touches,
/// each point's value over the part of its bucket inside the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesWindow {
    /// The window; its tiles are the inner points' buckets, and finer ones inside the edge
    /// points.
    #[serde(flatten)]
    pub resolved: ResolvedWindow,
    pub granularity: Granularity,
    pub points: i64,
}

impl SeriesWindow {
    pub fn bounds(&self) -> (i64, i64) {
        self.resolved.bounds()
    }

    /// The start of every point, in order.
    pub fn starts(&self) -> impl Iterator<Item = i64> + use<> {
        let (from, to) = self.bounds();
        let g = self.granularity;
        g.starts(g.bucket(from), to)
    }
}
