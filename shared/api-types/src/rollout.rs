//! The rollout's admin API: flags (`GET /api/v2/admin/flags`, `PATCH …/flags/{key}`) and
//! the drift report of the dual run (`GET /api/v2/admin/drift`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which path answers a legacy route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The legacy computation: the window's facts aggregated at request time.
    Legacy,
    /// Both paths in one snapshot: the legacy answer served, every difference recorded.
    Dual,
    /// The v2 path (buckets and live delta) through the response adapter.
    V2,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Legacy, Mode::Dual, Mode::V2];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::Dual => "dual",
            Mode::V2 => "v2",
        }
    }

    /// # Errors
    /// A name that is not a mode, saying which are.
    pub fn parse(name: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| format!("mode {name:?} is not one of legacy, dual, v2"))
    }
}

/// A flag: `mode` for the pubkeys in `allow` and for the `percent` of the others whose
/// cohort is below it; `legacy` for everyone else and for every pubkey in `deny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub key: String,
    pub mode: Mode,
    /// 0–100.
    pub percent: u8,
    /// Pubkeys (hex) always given `mode`.
    pub allow: Vec<String>,
    /// Pubkeys (hex) always given `legacy`; over `allow`.
    pub deny: Vec<String>,
    /// Counts changes: an instance's copy is as new as its revision.
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// `GET /api/v2/admin/flags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flags {
    pub flags: Vec<Flag>,
    /// How long a change takes at most to reach every instance, in seconds.
    pub propagation_seconds: f64,
}

/// `PATCH /api/v2/admin/flags/{key}`: the fields to change; the others stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagUpdate {
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub percent: Option<u8>,
    /// Pubkeys (hex, npub or nprofile); replaces the list.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// As `allow`.
    #[serde(default)]
    pub deny: Option<Vec<String>>,
}

/// `GET /api/v2/admin/drift`: the dual run's comparisons since `since`, per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub since: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    /// Requests compared.
    pub observations: i64,
    /// Every metric within its threshold over closed windows.
    pub within_threshold: bool,
    /// Over windows that ended before the live edge: the verdict.
    pub closed: Vec<MetricDrift>,
    /// Over windows reaching into the last minutes (still filling), apart.
    pub live_edge: Vec<MetricDrift>,
    /// Per metric and window class, closed windows.
    pub by_window_class: Vec<MetricDrift>,
    /// The first comparisons over threshold, oldest first: where to bisect from.
    pub first_differences: Vec<DriftExample>,
}

/// One metric's drift over a set of comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDrift {
    pub metric: String,
    /// Set for [`DriftReport::by_window_class`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_class: Option<String>,
    pub compared: i64,
    /// Comparisons whose values differ at all.
    pub differing: i64,
    /// Comparisons whose difference is over the threshold.
    pub over_threshold: i64,
    /// The largest |v2 − legacy|.
    pub max_difference: i64,
    /// The allowed |v2 − legacy| relative to the legacy value: 0 for counts, sums and
    /// levels; the sketch's stated error for distinct counts.
    pub threshold: f64,
}

/// A comparison over threshold: the key to bisect from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftExample {
    pub observed_at: DateTime<Utc>,
    pub pubkey: String,
    pub cohort: u8,
    pub window_class: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The snapshot both paths read.
    pub cutoff: DateTime<Utc>,
    pub live_edge: bool,
    pub metric: String,
    pub legacy: i64,
    pub v2: i64,
}
