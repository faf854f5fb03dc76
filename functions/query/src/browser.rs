//! What a browser app on another origin needs from the gateway: CORS for the origins the
//! deployment names (`NA_CORS_ORIGINS`), compressed answers, and validators and caching
//! that say what an answer is. The layers are tower-http's where it has them (CORS,
//! compression); the validator is ours, as tower-http has none for generated bodies.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    self, ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderName, IF_NONE_MATCH,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The origins a browser may call the API from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin calls (no CORS headers): the default.
    #[default]
    None,
    /// Any origin (`*`): every route is readable from any page; credentials still travel
    /// only in the `Authorization` header, never as cookies.
    Any,
    /// These origins (`https://app.example`), exactly.
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or comma-separated origins (`scheme://host[:port]`, no path); empty: none.
    ///
    /// # Errors
    /// An origin that is not one, naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(CorsOrigins::None);
        }
        if text == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::new();
        for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let url = url::Url::parse(origin).map_err(|e| format!("{origin:?}: {e}"))?;
            let is_origin = matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.path() == "/"
                && !origin.ends_with('/')
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty();
            if !is_origin {
                return Err(format!(
                    "{origin:?} is not an origin: give scheme://host[:port], no path (or * for any)"
                ));
            }
            origins.push(origin.to_owned());
        }
        Ok(CorsOrigins::List(origins))
    }
}

/// The response headers a browser script may read besides the CORS-safelisted ones.
const EXPOSED: [&str; 8] = [
    "x-analytics-path",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "x-request-id",
    "etag",
    "location",
];

/// The CORS layer for `origins`: preflights answered, the methods the API takes, the
/// headers a client sends (`Authorization` for NIP-98 and API keys) and those it may read.
pub(crate) fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                ACCEPT,
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers(EXPOSED.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(PREFLIGHT_MAX_AGE_SECS)),
    )
}

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: u64 = 3_600;

/// How long an analytics answer may be reused without asking again: about a compaction
/// cycle, as live windows move on (and closed ones too: a deletion, an expiry or a late
/// event changes a past window, NOSTR-SEMANTICS).
pub const ANSWER_MAX_AGE_SECS: u32 = 5;

/// How long the API document may be reused; a deployment changes it under the same URL,
/// so it is revalidated (`ETag`) rather than immutable.
pub const DOCUMENT_MAX_AGE_SECS: u32 = 3_600;

/// How long after a `202` (a job started) a client should first look at its status.
pub const JOB_POLL_AFTER_SECS: u32 = 2;

/// The largest body given an `ETag` (hashing a multi-megabyte series costs more than the
/// revalidation saves).
const MAX_TAGGED_BYTES: usize = 1 << 20;

/// `Cache-Control` and `ETag` for every answer, and `304 Not Modified` for a GET whose
/// `If-None-Match` names the answer's tag: refusals, jobs accepted and admin routes are
/// `no-store`; answers to a caller who sent credentials are `private`. A job accepted
/// (`202`) says when to poll it (`Retry-After`).
pub(crate) async fn validators(request: Request, next: Next) -> Response {
    let is_get = request.method() == Method::GET;
    let path = request.uri().path().to_owned();
    let credentialed = request.headers().contains_key(AUTHORIZATION);
    let if_none_match = request.headers().get(IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    let cacheable = is_get
        && response.status() == StatusCode::OK
        && !path.starts_with("/api/v2/admin")
        && path != "/health";
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::ACCEPTED {
        // A job was started: when to look at its status first.
        parts
            .headers
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(JOB_POLL_AFTER_SECS));
    }
    if !cacheable {
        parts
            .headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        return Response::from_parts(parts, body);
    }
    let max_age = if path.ends_with("/openapi.json") {
        DOCUMENT_MAX_AGE_SECS
    } else {
        ANSWER_MAX_AGE_SECS
    };
    let scope = if credentialed { "private" } else { "public" };
    if let Ok(value) = HeaderValue::from_str(&format!("{scope}, max-age={max_age}")) {
        parts.headers.entry(CACHE_CONTROL).or_insert(value);
    }
    // Answers are serialized whole before they are sent, so their size is known here.
    let size = axum::body::HttpBody::size_hint(&body).exact();
    if size.is_none_or(|n| n > MAX_TAGGED_BYTES as u64) {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return crate::ApiError::Internal(anyhow::anyhow!("an answer's body failed midway"))
            .into_response();
    };
    let digest = Sha256::digest(&bytes);
    let tag = format!("W/\"{}\"", hex::encode(&digest[..12]));
    let matches = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "*" || v.split(',').any(|t| weak_eq(t.trim(), &tag)));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(ETAG, value);
    }
    if matches {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The weak comparison `If-None-Match` uses (RFC 9110 §8.8.3.2): the opaque tags, `W/` or
/// not.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

    use super::*;

    #[test]
    fn origins_are_checked_and_tags_compare_weakly() {
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::None));
        assert_eq!(CorsOrigins::parse(" * "), Ok(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse("https://a.example, http://127.0.0.1:5173"),
            Ok(CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://127.0.0.1:5173".into()
            ]))
        );
        for bad in [
            "a.example",
            "https://a.example/",
            "https://a.example/app",
            "ftp://a.example",
            "https://a.example?x=1",
        ] {
            let e = CorsOrigins::parse(bad).unwrap_err();
            assert!(e.contains("not an origin") || e.contains(bad), "{bad}: {e}");
        }
        assert!(weak_eq("W/\"abc\"", "\"abc\""));
        assert!(!weak_eq("W/\"abc\"", "W/\"abd\""));
    }
}
