//! API keys: `POST /api/v2/admin/keys` (made, shown once), `GET /api/v2/admin/keys`,
//! `POST /api/v2/admin/keys/{id}/revoke`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a new key asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// Who or what holds it (shown in lists and logs).
    pub name: String,
    /// `read`, `backfill`, `admin`.
    pub scopes: Vec<String>,
    /// Days until it stops working; none: until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// Its own requests per minute by route class (`costly=100,jobs=5`, as `NA_RATE_KEY`
    /// takes them); classes not named, or none given: the deployment's key limits.
    #[serde(default)]
    pub rate_limits: Option<String>,
}

/// A key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// To the minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Its own requests per minute by route class, over the deployment's key limits.
    pub rate_limits: Option<String>,
}

/// A 201: the new key, the only time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    /// `Authorization: Bearer <key>`; stored only as its hash, so it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKeyInfo,
}

/// `GET /api/v2/admin/keys`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeys {
    pub keys: Vec<ApiKeyInfo>,
}
