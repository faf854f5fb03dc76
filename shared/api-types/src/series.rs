use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Answer, MetricRef, SeriesWindow};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub value: Option<i64>,
    pub exact: bool,
    pub relative_error: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    #[serde(flatten)]
    pub metric: MetricRef,
    /// Empty when `error` is set.
    pub points: Vec<Point>,
    /// Why the metric has no points: its plugin version failed.
    pub error: Option<String>,
}

/// `GET /api/v2/analytics/users/{pubkey}/timeseries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// Hex.
    pub pubkey: String,
    pub window: SeriesWindow,
    pub series: Vec<MetricSeries>,
    #[serde(flatten)]
    pub answer: Answer,
}

/// How a time series is written out: `points` (each point an object) or `compact` (the
/// bucket starts once, and a plain array of values per metric).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesFormat {
    #[default]
    Points,
    Compact,
}

impl SeriesFormat {
    pub fn is_points(&self) -> bool {
        *self == SeriesFormat::Points
    }
}

/// One metric of a [`CompactTimeSeries`]: its value at each of the answer's `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactSeries {
    #[serde(flatten)]
    pub metric: MetricRef,
    /// One per bucket start in `t`; empty when `error` is set.
    pub values: Vec<Option<i64>>,
    /// The indexes (into `t` and `values`) of the values that are estimates; every other
    /// value is exact.
    pub inexact: Vec<usize>,
    /// The relative error of each estimate, in the order of `inexact`.
    pub relative_errors: Vec<Option<f64>>,
    pub error: Option<String>,
}

/// `GET …/timeseries?format=compact`: the same answer as [`TimeSeries`], its bucket starts
/// written once (`t`, Unix seconds) and each metric's values as one array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactTimeSeries {
    /// Hex.
    pub pubkey: String,
    pub window: SeriesWindow,
    /// The start of each point's bucket, Unix seconds.
    pub t: Vec<i64>,
    pub series: Vec<CompactSeries>,
    #[serde(flatten)]
    pub answer: Answer,
}

impl From<TimeSeries> for CompactTimeSeries {
    fn from(ts: TimeSeries) -> Self {
        // Every series has the window's points; a failed one has none.
        let t: Vec<i64> = ts
            .series
            .iter()
            .find(|s| s.error.is_none())
            .map(|s| s.points.iter().map(|p| p.at.timestamp()).collect())
            .unwrap_or_default();
        let series = ts
            .series
            .into_iter()
            .map(|s| {
                let inexact: Vec<usize> = s
                    .points
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.exact)
                    .map(|(i, _)| i)
                    .collect();
                CompactSeries {
                    relative_errors: inexact
                        .iter()
                        .map(|i| s.points[*i].relative_error)
                        .collect(),
                    inexact,
                    values: s.points.iter().map(|p| p.value).collect(),
                    metric: s.metric,
                    error: s.error,
                }
            })
            .collect();
        CompactTimeSeries {
            pubkey: ts.pubkey,
            window: ts.window,
            t,
            series,
            answer: ts.answer,
        }
    }
}
