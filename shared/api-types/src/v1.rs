//! The legacy answer, `GET /api/v1/analytics/{pubkey}`, and the response adapter that
//! makes it from a v2 summary: one function the server uses for the `v2` path, mirrored by
//! `toV1` in the TypeScript client (`clients/typescript/src/legacy.ts`), so a client moved
//! to v2 shows the same fields.

use serde::{Deserialize, Serialize};

use crate::Summary;

/// The catalog metrics the legacy fields are read from, in the order [`AnalyticsV1`]
/// lists them: what a v2 summary must be asked for to be adapted.
pub const V1_METRICS: [&str; 9] = [
    "notes_published",
    "replies_received",
    "reactions_received",
    "reposts_received",
    "zaps_received",
    "zap_msats_received",
    "follower_count",
    "followers_gained",
    "followers_lost",
];

/// `GET /api/v1/analytics/{pubkey}`: the fields clients showed before v2, over
/// `[since, until)`. A field is `null` when its metric failed (its plugin version fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsV1 {
    /// Hex.
    pub pubkey: String,
    /// The window in days: as asked (`days=N`), else its length rounded up.
    pub days: i64,
    /// Unix seconds, inclusive.
    pub since: i64,
    /// Unix seconds, exclusive.
    pub until: i64,
    /// Kind 1 notes by the pubkey that are not replies (`notes_published`).
    pub notes: Option<i64>,
    /// Replies to the pubkey's events by others (`replies_received`).
    pub replies: Option<i64>,
    /// Reactions to the pubkey's events by others (`reactions_received`).
    pub reactions: Option<i64>,
    /// Reposts of the pubkey's events by others (`reposts_received`).
    pub reposts: Option<i64>,
    /// Counted zap receipts to the pubkey (`zaps_received`).
    pub zaps: Option<i64>,
    /// Their amount in whole sats: `zap_msats_received` / 1000, rounded down.
    pub zap_sats: Option<i64>,
    /// Followers at the end of the window (`follower_count`).
    pub followers: Option<i64>,
    pub followers_gained: Option<i64>,
    pub followers_lost: Option<i64>,
}

impl AnalyticsV1 {
    /// The legacy fields from the catalog's values (`value(metric)`: `None` for a metric
    /// that failed).
    pub fn from_metrics(
        pubkey: String,
        (since, until): (i64, i64),
        days: Option<i64>,
        value: impl Fn(&str) -> Option<i64>,
    ) -> Self {
        AnalyticsV1 {
            pubkey,
            days: days.unwrap_or_else(|| (until - since + 86_399).div_euclid(86_400)),
            since,
            until,
            notes: value("notes_published"),
            replies: value("replies_received"),
            reactions: value("reactions_received"),
            reposts: value("reposts_received"),
            zaps: value("zaps_received"),
            zap_sats: value("zap_msats_received").map(|m| m.div_euclid(1000)),
            followers: value("follower_count"),
            followers_gained: value("followers_gained"),
            followers_lost: value("followers_lost"),
        }
    }

    /// The response adapter: the legacy fields from a v2 summary of the [`V1_METRICS`]
    /// (its window's days, when it was asked for as `days`).
    pub fn from_summary(summary: &Summary, days: Option<i64>) -> Self {
        Self::from_metrics(
            summary.pubkey.clone(),
            summary.window.bounds(),
            days,
            |name| {
                summary
                    .metrics
                    .iter()
                    .find(|m| m.metric.metric == name)
                    .and_then(|m| m.value)
            },
        )
    }
}
