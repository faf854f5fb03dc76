//! Backfills: asked for by a user of their own pubkey (or with a `backfill` key) at
//! `POST /api/v2/analytics/users/{pubkey}/backfill`, one at a time per pubkey, and by admin
//! for any pubkey from any time (`POST /api/v2/admin/backfills`). A read never starts one.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use na_api_types::JobAccepted;
use na_queue::JobMessage;
use na_storage::JobState;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ids::parse_pubkey;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackfillRequest {
    pubkey: String,
    #[serde(default)]
    since: Option<u64>,
}

fn message(job_id: Uuid) -> JobMessage {
    JobMessage::Backfill { job_id }
}

/// Records a backfill of `pubkey_hex` from `since` (default: the configured horizon) and
/// enqueues it, a new job each time (admin's, and the local stack's `--backfill`).
///
/// # Errors
/// Database or queue errors.
pub async fn enqueue_backfill(
    db: &na_storage::Db,
    queue: &dyn na_queue::JobQueue,
    pubkey_hex: &str,
    since: Option<u64>,
) -> Result<Uuid, ApiError> {
    let params = json!({ "pubkey": pubkey_hex, "since": since });
    crate::jobs::enqueue(db, queue, "backfill", &params, message).await
}

/// `POST /api/v2/admin/backfills`: any pubkey, from `since` (default: the configured
/// horizon), a new job each time.
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<BackfillRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "body must be {\"pubkey\": \"<hex|npub|nprofile>\", \"since\": <unix seconds, optional>}",
        )
    })?;
    let pubkey = parse_pubkey(&req.pubkey)?;
    let id = enqueue_backfill(&state.db, state.queue.as_ref(), &pubkey.to_hex(), req.since).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job_id": id, "status_url": format!("/api/v2/admin/jobs/{id}") })),
    ))
}

/// `POST /api/v2/analytics/users/{pubkey}/backfill` (the access layer has let only that
/// user, a `backfill` key or admin through): the pubkey's backfill over the default
/// horizon, or the one already queued or running. Followed in the summary's
/// `completeness` (`backfill`, `backfill_progress`).
pub(crate) async fn request(
    State(state): State<AppState>,
    Path(pubkey): Path<String>,
) -> Result<Response, ApiError> {
    let hex = parse_pubkey(&pubkey)?.to_hex();
    let params = json!({ "pubkey": hex, "since": null });
    let (id, found) = state
        .db
        .create_backfill_once(Uuid::new_v4(), &hex, &params)
        .await?;
    if found.is_none() {
        crate::jobs::send(&state.db, state.queue.as_ref(), id, message).await?;
    }
    let url = format!("/api/v2/analytics/users/{hex}/summary");
    let body = JobAccepted {
        job_id: id,
        status_url: url.clone(),
        // As found under the lock: the job may have finished since, which the summary's
        // completeness then says.
        state: found.unwrap_or(JobState::Queued).as_str().into(),
        reason: found
            .map(|_| "a backfill of this pubkey is already under way; this is that one".to_owned()),
    };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], Json(body)).into_response())
}
