use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Answer, MetricRef, ResolvedWindow};

/// One of a pubkey's events, with a metric's value over the interactions with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopNote {
    /// Hex; `GET …/notes/{event_id}` drills into it.
    pub event_id: String,
    /// `null` when the event itself is not stored (interactions with it are).
    pub kind: Option<i32>,
    pub created_at: Option<DateTime<Utc>>,
    pub value: Option<i64>,
    pub exact: bool,
}

/// `GET /api/v2/analytics/users/{pubkey}/notes`: the pubkey's events that others
/// interacted with in the window, ranked by one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopNotes {
    /// Hex.
    pub pubkey: String,
    pub window: ResolvedWindow,
    /// What the notes are ranked by.
    #[serde(flatten)]
    pub metric: MetricRef,
    /// How many events have a value over zero.
    pub total: usize,
    /// Largest first (ties: by id).
    pub notes: Vec<TopNote>,
    /// Events with a value not listed (past `top`).
    pub others: usize,
    #[serde(flatten)]
    pub answer: Answer,
}
