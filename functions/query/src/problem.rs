//! One error type for HTTP: every failure is an RFC 9457 problem body with one status.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use na_api_types::Problem;

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
    /// No credential, where one is needed: a 401 with `WWW-Authenticate`.
    Unauthorized {
        detail: String,
    },
    /// A credential that does not allow this.
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
    /// The metric asked for cannot be computed now: its plugin version fails.
    MetricFailed {
        detail: String,
    },
    /// A component (ingest, compaction) is stalled: `/health`'s answer while it lasts.
    Degraded {
        detail: String,
        components: Vec<na_api_types::Component>,
    },
    /// Refused at the HTTP level: a method the route does not take (405), a body too large
    /// (413) or of the wrong type (415), a URI (414) or headers (431) too long, a request
    /// that ran out of time (503).
    Refused {
        status: StatusCode,
        detail: String,
    },
    /// Over the caller's rate limit for the route's class: a 429 with `Retry-After` and the
    /// `RateLimit-*` headers.
    RateLimited {
        detail: String,
        limit: u32,
        retry_after_secs: f64,
        reset_secs: f64,
    },
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
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable | ApiError::MetricFailed { .. } | ApiError::Degraded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Refused { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the problem body's `detail` says (for an internal error, the error itself,
    /// which the body never shows).
    pub fn detail(&self) -> String {
        match self {
            ApiError::BadRequest { detail }
            | ApiError::NotFound { detail }
            | ApiError::Unauthorized { detail }
            | ApiError::Forbidden { detail }
            | ApiError::Conflict { detail }
            | ApiError::Gone { detail }
            | ApiError::Unprocessable { detail }
            | ApiError::MetricFailed { detail }
            | ApiError::Degraded { detail, .. }
            | ApiError::Refused { detail, .. }
            | ApiError::RateLimited { detail, .. } => detail.clone(),
            ApiError::Unavailable => "a dependency is unavailable; retry later".into(),
            ApiError::Internal(e) => format!("{e:#}"),
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad-request",
            ApiError::NotFound { .. } => "not-found",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Gone { .. } => "gone",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Unavailable => "unavailable",
            ApiError::MetricFailed { .. } => "metric-failed",
            ApiError::Degraded { .. } => "degraded",
            ApiError::Refused { status, .. } => match *status {
                StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
                StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
                StatusCode::URI_TOO_LONG => "uri-too-long",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers-too-large",
                StatusCode::SERVICE_UNAVAILABLE => "timeout",
                _ => "refused",
            },
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<na_storage::Error> for ApiError {
    fn from(e: na_storage::Error) -> Self {
        match e {
            e if e.is_timeout() => {
                tracing::warn!(error = %e, "statement timed out");
                ApiError::Refused {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    detail: "the database took too long to answer; narrow the request, or ask \
                             it as a job (POST /api/v2/analytics/jobs)"
                        .into(),
                }
            }
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
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let detail = match &self {
            ApiError::Internal(_) => "internal error".into(),
            other => other.detail(),
        };
        let challenge = matches!(self, ApiError::Unauthorized { .. });
        let rate = match &self {
            ApiError::RateLimited {
                limit,
                retry_after_secs,
                reset_secs,
                ..
            } => Some((*limit, *retry_after_secs, *reset_secs)),
            _ => None,
        };
        let body = Problem {
            kind: format!("https://nostr-analytics.dev/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("error").into(),
            status: status.as_u16(),
            detail,
            components: match self {
                ApiError::Degraded { components, .. } => Some(components),
                _ => None,
            },
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(body),
        )
            .into_response();
        if let Some((limit, retry_after, reset)) = rate {
            let headers = response.headers_mut();
            crate::access::rate_headers(headers, limit, 0, reset);
            headers.insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after.ceil().max(1.0) as u64),
            );
        }
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"nostr-analytics\", Nostr"),
            );
        }
        response
    }
}

impl ApiError {
    /// A JSON body that could not be taken: too large (413), not JSON (415), or malformed
    /// (400, after `shape`, which says what the body should be).
    pub(crate) fn from_json_rejection(
        e: &axum::extract::rejection::JsonRejection,
        shape: &str,
    ) -> Self {
        match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::Refused {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                detail: format!(
                    "the body is over {} bytes, the most this route reads",
                    crate::guards::MAX_JSON_BODY_BYTES
                ),
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::Refused {
                status: e.status(),
                detail: format!("{shape}: {}", e.body_text()),
            },
            _ => ApiError::bad_request(format!("{shape}: {}", e.body_text())),
        }
    }
}
