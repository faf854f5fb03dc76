use serde::{Deserialize, Serialize};

use crate::{Answer, MetricRef, ResolvedWindow};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// The dimension's value; `null` for contributions without it.
    pub value: Option<String>,
    pub total: Option<i64>,
    pub exact: bool,
    pub relative_error: Option<f64>,
}

/// `GET /api/v2/analytics/users/{pubkey}/breakdown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Hex.
    pub pubkey: String,
    pub window: ResolvedWindow,
    #[serde(flatten)]
    pub metric: MetricRef,
    pub dimension: String,
    /// The top values, largest first.
    pub rows: Vec<BreakdownRow>,
    /// Values beyond the top.
    pub others: usize,
    #[serde(flatten)]
    pub answer: Answer,
}
