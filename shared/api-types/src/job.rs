//! Query jobs: `POST /api/v2/analytics/jobs` (and a query too costly to answer at once),
//! `GET /api/v2/analytics/jobs/{id}`; backfills asked for with
//! `POST /api/v2/analytics/users/{pubkey}/backfill`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A 202: the job was recorded and enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAccepted {
    pub job_id: Uuid,
    /// Where to follow it (also the `Location` header).
    pub status_url: String,
    /// `queued` (or `running`: a backfill already under way).
    pub state: String,
    /// Why a synchronous request became a job (absent for `POST …/jobs`), or that a
    /// backfill asked for again is the one already under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A query job as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryJob {
    pub job_id: Uuid,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    /// The job's own progress report.
    pub progress: serde_json::Value,
    /// The answer, once `succeeded`, when it is one page: a [`crate::QueryAnswer`].
    pub result: Option<serde_json::Value>,
    /// Once `succeeded`: how many pages the answer is in (a long time series is cut so
    /// that no response is over the body limit).
    pub result_pages: Option<u32>,
    /// Once `succeeded`: the answer's first page, a [`crate::JobResultPage`].
    pub result_url: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the result is dropped (then the job answers 410).
    pub expires_at: Option<DateTime<Utc>>,
}
