use serde::{Deserialize, Serialize};

use crate::{Answer, MetricRef, ResolvedWindow};

/// One pubkey among a window's engagers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engager {
    /// Hex.
    pub pubkey: String,
    /// What they did that the metric counts (replies, reactions, reposts, quotes, zaps for
    /// `unique_engagers`), each once.
    pub contributions: i64,
}

/// `GET /api/v2/analytics/users/{pubkey}/engagers`: who the pubkeys a distinct metric
/// counts are, read from the window's facts, so `total` is the metric's exact value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Engagers {
    /// Hex.
    pub pubkey: String,
    /// Read whole from the stored facts: no tiles, never rounded.
    pub window: ResolvedWindow,
    #[serde(flatten)]
    pub metric: MetricRef,
    /// How many pubkeys: the metric's value over the window, exactly.
    pub total: usize,
    /// The top engagers: most contributions first, then by pubkey.
    pub engagers: Vec<Engager>,
    /// Engagers beyond the top.
    pub others: usize,
    #[serde(flatten)]
    pub answer: Answer,
}
