//! The rollout flags over the OpenFeature Remote Evaluation Protocol (OFREP), so a
//! frontend reads them with a stock OpenFeature OFREP provider: `POST
//! /ofrep/v1/evaluate/flags/{key}` (one flag), `POST /ofrep/v1/evaluate/flags` (every flag,
//! with an `ETag` for polling) and `GET /ofrep/v1/configuration`. The evaluation context's
//! `targetingKey` is the pubkey (hex, npub or nprofile); a flag's value is the path that
//! answers that pubkey: `legacy`, `dual` or `v2`. Errors are OFREP's bodies
//! (`errorCode`, `errorDetails`), not problem documents, as its clients read them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use na_api_types::Flag;
use na_rollout::evaluate;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ids::parse_pubkey;
use crate::{ApiError, AppState};

/// An OFREP error: its status and body.
struct Failure {
    status: StatusCode,
    code: &'static str,
    details: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, details: impl Into<String>) -> Self {
        Failure {
            status,
            code,
            details: details.into(),
        }
    }

    fn response(self, key: Option<&str>) -> Response {
        let mut body = json!({"errorCode": self.code, "errorDetails": self.details});
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        (self.status, Json(body)).into_response()
    }
}

/// The pubkey (hex) an evaluation request's context targets.
fn targeting_key(body: &[u8]) -> Result<String, Failure> {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "PARSE_ERROR",
                format!("the body is not JSON: {e}"),
            )
        })?
    };
    let context = match request.get("context") {
        None => &Value::Null,
        Some(c) if c.is_object() => c,
        Some(_) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "INVALID_CONTEXT",
                "context must be an object",
            ));
        }
    };
    let key = match context.get("targetingKey") {
        Some(Value::String(k)) if !k.is_empty() => k,
        Some(_) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "INVALID_CONTEXT",
                "targetingKey must be a pubkey (hex, npub or nprofile)",
            ));
        }
        None => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "TARGETING_KEY_MISSING",
                "the context needs a targetingKey: the pubkey whose analytics are shown",
            ));
        }
    };
    parse_pubkey(key).map(|p| p.to_hex()).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
            format!("targetingKey: {}", e.detail()),
        )
    })
}

/// One flag's evaluation for `pubkey`, as OFREP states a success.
fn evaluation(flag: &Flag, pubkey: &str) -> Value {
    let e = evaluate(flag, pubkey);
    json!({
        "key": flag.key,
        "value": e.mode.as_str(),
        "variant": e.mode.as_str(),
        "reason": e.reason.as_str(),
        "metadata": {"cohort": e.cohort, "revision": flag.revision},
    })
}

/// The request's body, or a problem for one too large to read (the layers' limit).
fn read(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError::Refused {
        status: e.status(),
        detail: format!(
            "the body could not be read ({}): an evaluation request is a small JSON object",
            e.body_text()
        ),
    })
}

pub(crate) async fn evaluate_one(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read(body)?;
    let pubkey = match targeting_key(&body) {
        Ok(p) => p,
        Err(f) => return Ok(f.response(Some(&key))),
    };
    let Some(flag) = state.flags.flag(&key).await? else {
        return Ok(Failure::new(
            StatusCode::NOT_FOUND,
            "FLAG_NOT_FOUND",
            format!("no flag {key:?}"),
        )
        .response(Some(&key)));
    };
    let mut answer = evaluation(&flag, &pubkey);
    // An instance answers by flags at most the TTL old; a provider should ask again.
    answer["cacheable"] = json!(false);
    Ok(Json(answer).into_response())
}

pub(crate) async fn evaluate_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read(body)?;
    let pubkey = match targeting_key(&body) {
        Ok(p) => p,
        Err(f) => return Ok(f.response(None)),
    };
    let flags = state.flags.flags().await?;
    let answer = json!({
        "flags": flags.iter().map(|f| evaluation(f, &pubkey)).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&answer).map_err(|e| ApiError::Internal(e.into()))?;
    let tag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..12]));
    let unchanged = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == tag)
        });
    let tag = HeaderValue::from_str(&tag).map_err(|e| ApiError::Internal(e.into()))?;
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, tag)]).into_response());
    }
    Ok((
        [
            (ETAG, tag),
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let ttl_ms = state.flags.ttl().as_millis();
    Json(json!({
        "name": "nostr-analytics",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": ttl_ms}},
            "flagEvaluation": {"supportedTypes": ["string"]},
        },
    }))
}
