use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Answer, BreakdownRow, MetricRef, Point, SeriesWindow};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionBreakdown {
    pub dimension: String,
    /// The top values, largest first.
    pub rows: Vec<BreakdownRow>,
    /// Values beyond the top.
    pub others: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteMetric {
    #[serde(flatten)]
    pub metric: MetricRef,
    /// Over the whole window.
    pub value: Option<i64>,
    pub exact: bool,
    pub relative_error: Option<f64>,
    pub points: Vec<Point>,
    /// One per dimension the metric declares.
    pub breakdowns: Vec<DimensionBreakdown>,
    /// Why the metric has no value: its plugin version failed (the others still answer).
    pub error: Option<String>,
}

/// `GET /api/v2/analytics/notes/{event_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteDrilldown {
    /// Hex.
    pub event_id: String,
    /// Hex.
    pub author: String,
    pub kind: i32,
    pub created_at: DateTime<Utc>,
    pub window: SeriesWindow,
    /// Stored facts that target the event within the window.
    pub facts_read: usize,
    pub metrics: Vec<NoteMetric>,
    /// `watermarks` is empty: facts are read directly, nothing waits for compaction.
    /// `completeness` is the author's backfill.
    #[serde(flatten)]
    pub answer: Answer,
}
