//! The rollout's admin surface: `GET /api/v2/admin/flags`, `PATCH …/flags/{key}` (a change
//! reaches every instance within the flag TTL) and `GET …/drift` (the dual run's report).
//! The `na-rollout` command does the same against the database.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::{DateTime, TimeDelta, Utc};
use na_api_types::{DriftReport, Flag, FlagUpdate, Flags};
use na_auth::Principal;
use na_storage::Db;
use na_storage::rollout::FlagChange;

use crate::access::Caller;
use crate::ids::parse_pubkey;
use crate::request::{Params, RawParams, whole_number};
use crate::{ApiError, AppState};

/// The most pubkeys an allow or deny list holds: every instance reads them every few
/// seconds; a larger cohort is a percentage.
pub const MAX_LISTED: usize = 1_000;

/// The most comparisons a drift report reads, oldest first.
pub const MAX_OBSERVATIONS: i64 = 100_000;

/// The longest flag key.
pub const MAX_KEY_CHARS: usize = 200;

/// How many comparisons over threshold a report lists.
pub const EXAMPLES: usize = 10;

/// Checks `update` (pubkeys in any form become hex) and applies it to flag `key`,
/// recording `by`.
///
/// # Errors
/// A percentage over 100, a bad or too long list (400); no such flag (404); the database.
pub async fn change_flag(
    db: &Db,
    key: &str,
    update: &FlagUpdate,
    by: &str,
) -> Result<Flag, ApiError> {
    if let Some(p) = update.percent.filter(|p| *p > 100) {
        return Err(ApiError::bad_request(format!(
            "percent={p} is not between 0 and 100"
        )));
    }
    let list = |name: &str, list: &Option<Vec<String>>| {
        list.as_ref()
            .map(|keys| {
                if keys.len() > MAX_LISTED {
                    return Err(ApiError::bad_request(format!(
                        "{name} holds {} pubkeys; at most {MAX_LISTED} (use percent for more)",
                        keys.len()
                    )));
                }
                let mut hex = keys
                    .iter()
                    .map(|k| parse_pubkey(k).map(|p| p.to_hex()))
                    .collect::<Result<Vec<_>, _>>()?;
                hex.sort();
                hex.dedup();
                Ok(hex)
            })
            .transpose()
    };
    let change = FlagChange {
        mode: update.mode.map(|m| m.as_str().to_owned()),
        percent: update.percent.map(i16::from),
        allow: list("allow", &update.allow)?,
        deny: list("deny", &update.deny)?,
    };
    let flag = db
        .change_flag(key, &change, by)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            detail: format!("no flag {key:?} (GET /api/v2/admin/flags lists them)"),
        })?;
    tracing::info!(
        flag = key,
        mode = flag.mode,
        percent = flag.percent,
        revision = flag.revision,
        by,
        "flag changed"
    );
    Ok(na_rollout::flag_of(flag))
}

/// The drift report of flag `key` over the comparisons recorded since `since`.
///
/// # Errors
/// The database.
pub async fn drift_report(
    db: &Db,
    key: &str,
    since: DateTime<Utc>,
) -> Result<DriftReport, ApiError> {
    let observations = db.observations(key, since, MAX_OBSERVATIONS).await?;
    Ok(na_rollout::report(
        &observations,
        since,
        Utc::now(),
        EXAMPLES,
    ))
}

/// Who a change is recorded as made by.
fn changed_by(caller: Option<&Caller>) -> String {
    match caller.map(|c| &c.principal) {
        Some(Principal::Key { id, .. }) => format!("key:{id}"),
        Some(Principal::User(pk)) => format!("user:{}", pk.to_hex()),
        Some(Principal::Bootstrap) => "bootstrap-token".into(),
        Some(Principal::Anonymous) | None => "local".into(),
    }
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Flags>, ApiError> {
    let conn = state.db.conn().await?;
    let flags = na_storage::rollout::flags(&**conn).await?;
    Ok(Json(Flags {
        flags: flags.into_iter().map(na_rollout::flag_of).collect(),
        propagation_seconds: state.flags.ttl().as_secs_f64(),
    }))
}

pub(crate) async fn change(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(key): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Flag>, ApiError> {
    const SHAPE: &str = "body must be {\"mode\": \"legacy\"|\"dual\"|\"v2\", \"percent\": 0-100, \
                         \"allow\": [pubkey, …], \"deny\": [pubkey, …]}, every field optional";
    let Json(body) = body.map_err(|e| ApiError::from_json_rejection(&e, SHAPE))?;
    // An object only (serde would take a struct from an array too), and no field null
    // (which serde would read as left out).
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request(SHAPE));
    };
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.is_null()) {
        return Err(ApiError::bad_request(format!(
            "{name} is null: leave it out to keep it as it is"
        )));
    }
    let update: FlagUpdate =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("{SHAPE}: {e}")))?;
    let by = changed_by(caller.as_ref().map(|Extension(c)| c));
    let flag = change_flag(&state.db, &key, &update, &by).await?;
    // This instance answers by it at once; the others within their TTL.
    state.flags.invalidate().await;
    Ok(Json(flag))
}

/// `GET /api/v2/admin/drift?flag=…&hours=N` (default: the v1 flag, 24 hours).
pub(crate) async fn drift(
    State(state): State<AppState>,
    raw: RawParams,
) -> Result<Json<DriftReport>, ApiError> {
    let params = Params::from_query(raw, &["flag", "hours"])?;
    let flag = params.get("flag").unwrap_or(na_rollout::V1_SUMMARY_FLAG);
    if flag.is_empty() || flag.len() > MAX_KEY_CHARS {
        return Err(ApiError::bad_request(format!(
            "flag must be 1 to {MAX_KEY_CHARS} characters"
        )));
    }
    let hours = match params.get("hours") {
        None => 24,
        Some(h) => whole_number(h)
            .filter(|h| (1..=24 * 366).contains(h))
            .ok_or_else(|| ApiError::bad_request(format!("hours={h:?}: give 1 to 8784")))?,
    };
    let since = Utc::now() - TimeDelta::hours(i64::try_from(hours).unwrap_or(24));
    Ok(Json(drift_report(&state.db, flag, since).await?))
}
