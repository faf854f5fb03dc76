//! Admin routes: enqueue a backfill, read a job.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use na_queue::{JobMessage, JobQueue};
use na_storage::Db;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ids::parse_pubkey;
use crate::{ApiError, AppState};

/// Who may call admin routes.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// Anyone who can reach the server (the local stack, on loopback).
    Open,
    /// `Authorization: Bearer <token>` (`ADMIN_TOKEN` in deployments).
    Token(String),
    /// No token configured: admin routes answer 403.
    Disabled,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAccess::Open => f.write_str("Open"),
            AdminAccess::Token(_) => f.write_str("Token(<redacted>)"),
            AdminAccess::Disabled => f.write_str("Disabled"),
        }
    }
}

impl AdminAccess {
    /// `ADMIN_TOKEN` when set, else disabled.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Self {
        match var("ADMIN_TOKEN") {
            Some(t) if !t.is_empty() => AdminAccess::Token(t),
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
                let Some(given) = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(bearer)
                else {
                    return Err(ApiError::Unauthorized {
                        detail: "the admin API needs a credential: send Authorization: Bearer \
                                 <ADMIN_TOKEN>"
                            .into(),
                    });
                };
                if same_secret(given, token) {
                    Ok(())
                } else {
                    forbidden("wrong admin credential: send Authorization: Bearer <ADMIN_TOKEN>")
                }
            }
        }
    }
}

/// The credential of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 9110, section 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Compares two secrets in time that depends on neither: both are hashed first, so
/// neither their contents nor their lengths show in how long the comparison takes.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The admin sub-router's layer: the caller is checked before any handler runs or any body
/// is read.
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    state.admin.check(request.headers())?;
    Ok(next.run(request).await)
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
    let params = json!({ "pubkey": pubkey_hex, "since": since });
    crate::jobs::enqueue(db, queue, "backfill", &params, |job_id| {
        JobMessage::Backfill { job_id }
    })
    .await
}

pub(crate) async fn create_backfill(
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

pub(crate) async fn job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("job id {id:?} is not a UUID")))?;
    let job = state.db.job(id).await?;
    Ok(Json(
        serde_json::to_value(job).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_secrets_compare_whole() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc"), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("", "s3cret"));
        assert!(!same_secret("s3cret!", "s3cret"));
    }
}
