//! Guards around every route: a request's URI and headers are bounded, it ends within a
//! time limit, and a method a route does not take or a panic is a problem body like every
//! other refusal (never a plain-text answer or a dropped connection).

use std::any::Any;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// The longest URI read (path and query string).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most header bytes (names and values) read.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The largest JSON body read (job and backfill requests); plugin uploads have their own.
pub const MAX_JSON_BODY_BYTES: usize = 2 << 20;

/// The default of [`crate::QueryPolicy::request_timeout`]: under API Gateway's 29 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(25);

/// Refuses oversized URIs and headers, and ends a request that outlives the time limit.
pub(crate) async fn bounded(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Err(ApiError::Refused {
            status: StatusCode::URI_TOO_LONG,
            detail: format!(
                "the URI is {uri} bytes; at most {MAX_URI_BYTES} are read (POST a job \
                 (/api/v2/analytics/jobs) for long parameter lists)"
            ),
        });
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(ApiError::Refused {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail: format!("the headers are {headers} bytes; at most {MAX_HEADER_BYTES} are read"),
        });
    }
    let limit = state.policy.request_timeout;
    tokio::time::timeout(limit, next.run(request))
        .await
        .map_err(|_| ApiError::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: format!(
                "the request took longer than {} s; narrow it, or ask it as a job \
                 (POST /api/v2/analytics/jobs)",
                limit.as_secs()
            ),
        })
}

/// A method the route does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::Refused {
        status: StatusCode::METHOD_NOT_ALLOWED,
        detail: "this route does not take that method; /api/v2/analytics/openapi.json lists \
                 each route's methods"
            .into(),
    }
}

/// A handler that panicked: a 500 problem body (the log has the panic), and the service
/// carries on.
pub(crate) fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into());
    ApiError::Internal(anyhow::anyhow!("a handler panicked: {message}")).into_response()
}

/// The span every request is handled in: its method, path and id (`x-request-id`).
pub(crate) fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}
