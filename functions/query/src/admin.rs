//! Admin routes: enqueue a backfill, read a job.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use na_queue::{JobMessage, JobQueue};
use na_storage::Db;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ids::parse_pubkey;
use crate::{ApiError, AppState};

/// Who may call admin routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// Anyone who can reach the server (the local stack, on loopback).
    Open,
    /// `Authorization: Bearer <token>` (`ADMIN_TOKEN` in deployments).
    Token(String),
    /// No token configured: admin routes answer 403.
    Disabled,
}

impl AdminAccess {
    /// `ADMIN_TOKEN` when set, else disabled.
    pub fn from_env() -> Self {
        match std::env::var("ADMIN_TOKEN") {
            Ok(t) if !t.is_empty() => AdminAccess::Token(t),
            _ => AdminAccess::Disabled,
        }
    }

    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let forbidden = |detail: &str| {
            Err(ApiError::Forbidden {
                detail: detail.into(),
            })
        };
        match self {
            AdminAccess::Open => Ok(()),
            AdminAccess::Disabled => forbidden("the admin API is disabled here (set ADMIN_TOKEN)"),
            AdminAccess::Token(token) => {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                // Constant-time over the token's length.
                let same = given.len() == token.len()
                    && given
                        .bytes()
                        .zip(token.bytes())
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0;
                if same {
                    Ok(())
                } else {
                    forbidden("missing or wrong admin bearer token")
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackfillRequest {
    pubkey: String,
    #[serde(default)]
    since: Option<u64>,
}

/// Records a backfill job and enqueues it; returns its id.
///
/// # Errors
/// Database or queue errors.
pub async fn enqueue_backfill(
    db: &Db,
    queue: &dyn JobQueue,
    pubkey_hex: &str,
    since: Option<u64>,
) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    let params = json!({ "pubkey": pubkey_hex, "since": since });
    db.create_job(id, "backfill", &params).await?;
    if let Err(e) = queue.send(JobMessage::Backfill { job_id: id }).await {
        // A row left queued would claim a backfill is coming.
        db.finish_job(id, Err(&format!("could not be enqueued: {e}")))
            .await?;
        return Err(e.into());
    }
    Ok(id)
}

pub(crate) async fn create_backfill(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<BackfillRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.admin.check(&headers)?;
    let Json(req) = body.map_err(|e| ApiError::bad_request(format!("body must be {{\"pubkey\": \"<hex|npub|nprofile>\", \"since\": <unix seconds, optional>}}: {}", e.body_text())))?;
    let pubkey = parse_pubkey(&req.pubkey)?;
    let id = enqueue_backfill(&state.db, state.queue.as_ref(), &pubkey.to_hex(), req.since).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job_id": id, "status_url": format!("/api/v2/admin/jobs/{id}") })),
    ))
}

pub(crate) async fn job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.admin.check(&headers)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("job id {id:?} is not a UUID")))?;
    let job = state.db.job(id).await?;
    Ok(Json(
        serde_json::to_value(job).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}
