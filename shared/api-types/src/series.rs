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
