//! Admin routes of the plugin registry: publish a component, list versions, activate,
//! retire, release from quarantine. Publishing takes the component as the raw request body
//! (`application/wasm`). The admin layer has checked the caller before any body is read.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use na_plugin_registry::PublishError;
use na_storage::{PluginRecord, Published};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Largest component accepted (the built-in catalog is ~40 KB).
pub const MAX_COMPONENT_BYTES: usize = 16 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishQuery {
    published_by: Option<String>,
}

fn to_json(record: &PluginRecord) -> Result<Value, ApiError> {
    serde_json::to_value(record).map_err(|e| ApiError::Internal(e.into()))
}

pub(crate) async fn publish(
    State(state): State<AppState>,
    query: Result<Query<PublishQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(|e| ApiError::Refused {
        status: e.status(),
        detail: format!(
            "the body must be a plugin's WASM component of at most {} MiB: {}",
            MAX_COMPONENT_BYTES >> 20,
            e.body_text()
        ),
    })?;
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "query must be ?published_by=<who>: {}",
            e.body_text()
        ))
    })?;
    let by = query.published_by.unwrap_or_default();
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body must be the plugin's WASM component (scripts/build-plugins makes it)",
        ));
    }
    match state.registry.publish(body.to_vec(), &by).await {
        Ok(Published::Created(r)) => Ok((StatusCode::CREATED, Json(to_json(&r)?))),
        Ok(Published::Unchanged(r)) => Ok((StatusCode::OK, Json(to_json(&r)?))),
        Err(PublishError::BadRequest(detail)) => {
            Err(ApiError::bad_request(if by.trim().is_empty() {
                format!("{detail}: add ?published_by=<who>")
            } else {
                detail
            }))
        }
        Err(e @ (PublishError::Invalid(_) | PublishError::Trial(_))) => {
            Err(ApiError::Unprocessable {
                detail: e.to_string(),
            })
        }
        Err(PublishError::Storage(e)) => Err(e.into()),
    }
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let plugins = state.registry.list().await?;
    Ok(Json(json!({
        "plugins": plugins.iter().map(to_json).collect::<Result<Vec<_>, _>>()?
    })))
}

/// `name@version` or `name`/`version` path parts, checked.
fn version(raw: &str) -> Result<i32, ApiError> {
    crate::request::whole_number(raw)
        .and_then(|v| i32::try_from(v).ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!("version {raw:?} is not a positive whole number"))
        })
}

pub(crate) async fn activate(
    State(state): State<AppState>,
    Path((name, v)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = state.registry.activate(&name, version(&v)?).await?;
    Ok(Json(to_json(&record)?))
}

pub(crate) async fn retire(
    State(state): State<AppState>,
    Path((name, v)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = state.registry.retire(&name, version(&v)?).await?;
    Ok(Json(to_json(&record)?))
}

/// Enqueues the recompute job that fills a shadow version's buckets (then it can be
/// activated). 202 with the job's status URL; 404 for an unknown version; 409 for one that
/// is not in shadow.
pub(crate) async fn recompute(
    State(state): State<AppState>,
    Path((name, v)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let version = version(&v)?;
    let record = state.db.plugin(&name, version).await?;
    if record.state != "shadow" {
        return Err(ApiError::Conflict {
            detail: format!(
                "{name}@{version} is {}: only a shadow version is recomputed; publish a new version",
                record.state
            ),
        });
    }
    let params = serde_json::json!({ "plugin": name, "version": version });
    let id = crate::jobs::enqueue(
        &state.db,
        state.queue.as_ref(),
        "recompute",
        &params,
        |job_id| na_queue::JobMessage::Recompute { job_id },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "job_id": id, "status_url": format!("/api/v2/admin/jobs/{id}") })),
    ))
}

/// Lets a quarantined version run again: compaction retries its failed batch at its next
/// run. 404 for an unknown version; 409 for one that is not quarantined.
pub(crate) async fn release(
    State(state): State<AppState>,
    Path((name, v)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = version(&v)?;
    let record = state.db.plugin(&name, version).await?;
    let conn = state.db.conn().await?;
    if !na_storage::compaction_state::release(&**conn, &name, version).await? {
        return Err(ApiError::Conflict {
            detail: format!("{name}@{version} is not quarantined"),
        });
    }
    tracing::info!(plugin = %format!("{name}@{version}"), "released from quarantine");
    Ok(Json(to_json(&record)?))
}
