use serde::{Deserialize, Serialize};

use crate::{Answer, MetricRef, ResolvedWindow};

/// A metric's value over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    #[serde(flatten)]
    pub metric: MetricRef,
    /// `null` for a min or max with nothing in the window; a gauge's level at the end.
    pub value: Option<i64>,
    pub exact: bool,
    /// Relative standard error when approximate (a distinct count past 256 keys).
    pub relative_error: Option<f64>,
    /// Contributions merged from the live delta (net).
    pub delta_contributions: i64,
    /// Why the metric has no value: its plugin version failed (the others still answer).
    pub error: Option<String>,
}

/// `GET /api/v2/analytics/users/{pubkey}/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Hex.
    pub pubkey: String,
    pub window: ResolvedWindow,
    pub metrics: Vec<MetricValue>,
    #[serde(flatten)]
    pub answer: Answer,
}
