//! `GET /api/v2/analytics/status` and `GET /health`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a component (ingest, compaction) last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub component: String,
    /// Its first report.
    pub first_at: DateTime<Utc>,
    /// The last time it worked.
    pub ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// It has not worked for longer than the stall threshold.
    pub stalled: bool,
}

impl Component {
    /// What `/health` says of it when it is stalled.
    pub fn stall_report(&self) -> String {
        format!(
            "{} has not worked since {} (last error: {})",
            self.component,
            self.ok_at
                .map_or_else(|| "it started".to_owned(), |t| t.to_rfc3339()),
            self.last_error.as_deref().unwrap_or("none recorded")
        )
    }
}

/// The live ingest session's view of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayLive {
    pub connected: bool,
    pub connected_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A relay ingest reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub url: String,
    /// Everything the relay published before this is stored.
    pub watermark: Option<DateTime<Utc>>,
    /// Events by outcome (`accepted`, `duplicate`, a rejection reason).
    pub counters: BTreeMap<String, i64>,
    /// What the live ingest session last said of it (`None`: no session has yet).
    pub live: Option<RelayLive>,
}

/// How far behind compaction is for a plugin version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionLag {
    /// `name@version`.
    pub plugin: String,
    /// Fact-log rows not applied yet.
    pub rows: i64,
    /// The age of the oldest of them.
    pub seconds: f64,
    /// The plugin's last failure on a batch (cleared by the next batch it applies).
    pub last_error: Option<String>,
    /// When it was quarantined (compaction no longer runs it), if it is.
    pub quarantined_at: Option<DateTime<Utc>>,
}

/// `GET /api/v2/analytics/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub as_of: DateTime<Utc>,
    pub components: Vec<Component>,
    pub relays: Vec<Relay>,
    pub compaction: Vec<CompactionLag>,
}

/// `GET /health` while nothing is stalled (else a 503 [`crate::Problem`] with the
/// components).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub components: Vec<Component>,
}
