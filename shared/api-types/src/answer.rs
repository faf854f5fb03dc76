//! What every query answer carries besides its values, and the answers as one type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Breakdown, CompactTimeSeries, NoteDrilldown, Summary, TimeSeries};

/// How far compaction had got for a plugin version, and what the live delta added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginWatermark {
    pub plugin: String,
    /// When compaction last applied rows of this version.
    pub compacted_at: DateTime<Utc>,
    /// Fact-log rows applied to its buckets so far.
    pub applied_rows: i64,
    /// Fact-log rows of this subject read live (not compacted yet).
    pub delta_rows: usize,
    /// Recomputed after raw retention had dropped older facts: its buckets start here.
    pub facts_from: Option<DateTime<Utc>>,
}

/// What every answer carries besides its values (flattened into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub as_of: DateTime<Utc>,
    /// Read on a read replica: the commit time of the last transaction it had replayed,
    /// which the answer is as of (`as_of` minus this is the replica's lag). Absent when
    /// read on the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_to: Option<DateTime<Utc>>,
    pub watermarks: Vec<PluginWatermark>,
    pub completeness: Completeness,
}

/// A subject's history backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backfill {
    /// Only live ingest since it began; a route that answers enqueues one.
    Never,
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// How complete the data behind an answer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    pub backfill: Backfill,
    pub backfill_job: Option<Uuid>,
    /// The backfill job's own progress report, as it writes it.
    pub backfill_progress: Option<serde_json::Value>,
    /// Every value in the answer is exact.
    pub exact: bool,
    /// The window starts before data some value covers: a metric version recomputed after
    /// raw retention (see its watermark's `facts_from`), or a note's facts past the raw
    /// horizon. Values count nothing before this instant.
    pub missing_before: Option<DateTime<Utc>>,
}

/// A metric's identity in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricRef {
    /// `name@version`.
    pub id: String,
    pub metric: String,
    pub version: i32,
    /// The plugin version computing it, `name@version`.
    pub plugin: String,
    pub aggregation: String,
    pub unit: String,
}

/// Any query route's answer: what a query job stores as its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueryAnswer {
    Summary(Summary),
    TimeSeries(TimeSeries),
    CompactTimeSeries(CompactTimeSeries),
    Breakdown(Breakdown),
    Note(NoteDrilldown),
}

impl QueryAnswer {
    /// The answer's common part.
    pub fn answer_mut(&mut self) -> &mut Answer {
        match self {
            QueryAnswer::Summary(a) => &mut a.answer,
            QueryAnswer::TimeSeries(a) => &mut a.answer,
            QueryAnswer::CompactTimeSeries(a) => &mut a.answer,
            QueryAnswer::Breakdown(a) => &mut a.answer,
            QueryAnswer::Note(a) => &mut a.answer,
        }
    }

    /// The pubkey whose history the answer depends on (hex): the user, or the note's
    /// author.
    pub fn subject(&self) -> &str {
        match self {
            QueryAnswer::Summary(a) => &a.pubkey,
            QueryAnswer::TimeSeries(a) => &a.pubkey,
            QueryAnswer::CompactTimeSeries(a) => &a.pubkey,
            QueryAnswer::Breakdown(a) => &a.pubkey,
            QueryAnswer::Note(a) => &a.author,
        }
    }
}
