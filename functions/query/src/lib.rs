//! The HTTP API served by the `query` function (lambda_http) and by the local stack
//! (axum directly): one [`axum::Router`] for both. For now: health, ingest status, and the
//! admin routes that enqueue a backfill, read a job, and manage the plugin registry.

mod admin;
mod plugins;
mod problem;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use na_queue::JobQueue;
use na_storage::Db;
use serde_json::{Value, json};

pub use admin::{AdminAccess, enqueue_backfill};
pub use problem::ApiError;

/// What handlers share; built once per process.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub queue: Arc<dyn JobQueue>,
    pub admin: AdminAccess,
    pub registry: na_plugin_registry::Registry,
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v2/analytics/status", get(status))
        .route("/api/v2/admin/backfills", post(admin::create_backfill))
        .route("/api/v2/admin/jobs/{id}", get(admin::job))
        .route(
            "/api/v2/admin/plugins",
            get(plugins::list)
                .post(plugins::publish)
                .layer(DefaultBodyLimit::max(plugins::MAX_COMPONENT_BYTES)),
        )
        .route(
            "/api/v2/admin/plugins/{name}/{version}/activate",
            post(plugins::activate),
        )
        .route(
            "/api/v2/admin/plugins/{name}/{version}/recompute",
            post(plugins::recompute),
        )
        .route(
            "/api/v2/admin/plugins/{name}/{version}/retire",
            post(plugins::retire),
        )
        .fallback(|| async {
            ApiError::NotFound {
                detail: "no such route".into(),
            }
        })
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let conn = state.db.conn().await?;
    conn.query_one("SELECT 1", &[])
        .await
        .map_err(na_storage::Error::from)?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let relays = state.db.ingest_status().await?;
    let conn = state.db.conn().await?;
    let compaction = na_storage::compaction::lag(&**conn).await?;
    Ok(Json(
        json!({ "as_of": Utc::now(), "relays": relays, "compaction": compaction }),
    ))
}
