//! `GET /api/v2/analytics/metrics`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub metrics: Vec<CatalogEntry>,
}

/// A metric version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// `name@version`.
    pub id: String,
    pub metric: String,
    pub version: i32,
    /// The plugin version computing it, `name@version`.
    pub plugin: String,
    /// The plugin version's state: `shadow`, `active` or `retired`.
    pub state: String,
    pub aggregation: String,
    pub unit: String,
    pub description: String,
    pub dimensions: Vec<String>,
    /// Recomputed and not retired: a query may name it.
    pub queryable: bool,
    /// Set while compaction no longer runs its plugin version.
    pub quarantined: Option<Quarantine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    pub since: DateTime<Utc>,
    /// The failure that quarantined it.
    pub error: String,
}
