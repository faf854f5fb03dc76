//! API keys, an admin surface: `POST /api/v2/admin/keys` makes one (shown once),
//! `GET /api/v2/admin/keys` lists them, `POST /api/v2/admin/keys/{id}/revoke` ends one at
//! once. The `na-keys` command does the same against the database.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use na_api_types::{ApiKeyCreated, ApiKeyInfo, ApiKeys, NewApiKey};
use na_auth::{RateLimits, Scope, api_key};
use na_storage::Db;
use na_storage::access::NewKey;

use crate::ids::parse_uuid;
use crate::{ApiError, AppState};

/// The longest a key's name may be.
pub const MAX_NAME_CHARS: usize = 200;

/// The longest a key's `rate_limits` may be (four classes fit many times over).
pub const MAX_RATE_LIMITS_CHARS: usize = 200;

/// The longest a key may live, when it expires.
pub const MAX_EXPIRES_IN_DAYS: u32 = 3650;

/// A stored key as the API lists it.
pub fn info(key: na_storage::access::ApiKey) -> ApiKeyInfo {
    ApiKeyInfo {
        id: key.id,
        name: key.name,
        scopes: key.scopes,
        created_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        last_used_at: key.last_used_at,
        rate_limits: key.rate_limits,
    }
}

/// Checks `new` and stores a fresh key for it; the answer holds the key, once.
///
/// # Errors
/// A bad name, scope or expiry (400); database errors.
pub async fn create_key(db: &Db, new: &NewApiKey) -> Result<ApiKeyCreated, ApiError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if new.scopes.is_empty() {
        return Err(ApiError::bad_request(
            "scopes must name at least one of read, backfill, admin",
        ));
    }
    let mut scopes = new
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>().map_err(ApiError::bad_request))
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    let expires_at = match new.expires_in_days {
        Some(days) if (1..=MAX_EXPIRES_IN_DAYS).contains(&days) => {
            Some(Utc::now() + TimeDelta::days(i64::from(days)))
        }
        Some(days) => {
            return Err(ApiError::bad_request(format!(
                "expires_in_days={days}: give 1 to {MAX_EXPIRES_IN_DAYS}, or leave it out for a key that lasts until revoked"
            )));
        }
        None => None,
    };
    let rate_limits = match new.rate_limits.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) if text.len() > MAX_RATE_LIMITS_CHARS => {
            return Err(ApiError::bad_request(format!(
                "rate_limits is at most {MAX_RATE_LIMITS_CHARS} characters"
            )));
        }
        Some(text) => {
            RateLimits::DEFAULT
                .key
                .parse_over(text)
                .map_err(|e| ApiError::bad_request(format!("rate_limits: {e}")))?;
            Some(text)
        }
    };
    let fresh = api_key::generate();
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let stored = db
        .create_api_key(&NewKey {
            id: fresh.id,
            name,
            hash: &fresh.hash,
            scopes: &scopes,
            expires_at,
            rate_limits,
        })
        .await?;
    tracing::info!(key = %fresh.id, name, ?scopes, "API key made");
    Ok(ApiKeyCreated {
        key: fresh.token,
        info: info(stored),
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<NewApiKey>, JsonRejection>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    let Json(new) = body.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "body must be {\"name\": \"…\", \"scopes\": [\"read\"|\"backfill\"|\"admin\", …], \
             \"expires_in_days\": <1-3650, optional>, \"rate_limits\": \"costly=100,jobs=5\" (optional)}",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(create_key(&state.db, &new).await?),
    ))
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<ApiKeys>, ApiError> {
    let keys = state.db.api_keys().await?;
    Ok(Json(ApiKeys {
        keys: keys.into_iter().map(info).collect(),
    }))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyInfo>, ApiError> {
    let uuid = parse_uuid("key", &id)?;
    let key = state
        .db
        .revoke_api_key(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            detail: format!("no API key {id}"),
        })?;
    tracing::info!(key = %key.id, "API key revoked");
    Ok(Json(info(key)))
}
