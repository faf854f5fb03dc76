//! One error type for HTTP: every failure is an RFC 9457 problem body with one status.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is wrong; `detail` says what to change.
    BadRequest {
        detail: String,
    },
    NotFound {
        detail: String,
    },
    Forbidden {
        detail: String,
    },
    /// The request conflicts with the current state (a version already taken, a version
    /// not yet recomputed).
    Conflict {
        detail: String,
    },
    /// It existed, but is no more (an expired job result).
    Gone {
        detail: String,
    },
    /// Well formed, but what it carries is unusable (a component that is not a plugin).
    Unprocessable {
        detail: String,
    },
    /// A dependency (the database) is down; worth retrying.
    Unavailable,
    /// Anything else. The body says only "internal error"; the log has the rest.
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad-request",
            ApiError::NotFound { .. } => "not-found",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Gone { .. } => "gone",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<na_storage::Error> for ApiError {
    fn from(e: na_storage::Error) -> Self {
        match e {
            na_storage::Error::JobNotFound(id) => ApiError::NotFound {
                detail: format!("no job {id}"),
            },
            na_storage::Error::Refused(r @ na_storage::RegistryRefusal::NotFound(_)) => {
                ApiError::NotFound {
                    detail: r.to_string(),
                }
            }
            na_storage::Error::Refused(r) => ApiError::Conflict {
                detail: r.to_string(),
            },
            e if e.is_retryable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            e => ApiError::Internal(e.into()),
        }
    }
}

impl From<na_queue::Error> for ApiError {
    fn from(e: na_queue::Error) -> Self {
        tracing::warn!(error = %e, "job queue unavailable");
        ApiError::Unavailable
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let detail = match &self {
            ApiError::BadRequest { detail }
            | ApiError::NotFound { detail }
            | ApiError::Forbidden { detail }
            | ApiError::Conflict { detail }
            | ApiError::Gone { detail }
            | ApiError::Unprocessable { detail } => detail.clone(),
            ApiError::Unavailable => "a dependency is unavailable; retry later".into(),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error".into()
            }
        };
        let body = json!({
            "type": format!("https://nostr-analytics.dev/problems/{}", self.slug()),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(body),
        )
            .into_response()
    }
}
