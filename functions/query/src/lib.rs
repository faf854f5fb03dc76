//! The HTTP API served by the `query` function (lambda_http) and by the local stack
//! (axum directly): one [`axum::Router`] for both. `/api/v2/analytics` (summaries, time
//! series, breakdowns, the metric catalog, status, the OpenAPI document) and the admin
//! routes (backfills, jobs, the plugin registry). docs/query-api.md describes them.

mod admin;
mod analytics;
pub mod ids;
mod jobs;
mod plugins;
mod problem;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use na_analytics::Engine;
use na_queue::JobQueue;
use na_storage::Db;
use serde_json::{Value, json};

pub use admin::{AdminAccess, enqueue_backfill};
pub use analytics::OPENAPI;
pub use problem::ApiError;

/// What handlers share; built once per process.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub queue: Arc<dyn JobQueue>,
    pub admin: AdminAccess,
    pub registry: na_plugin_registry::Registry,
    /// Answers analytics queries (plugins run in the registry's host).
    pub engine: Arc<Engine>,
    pub policy: QueryPolicy,
}

/// When a query is answered at once and when it becomes a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryPolicy {
    /// The most rows (bucket rows of the tiles, times the metrics, plus fact-log rows of the
    /// live delta) a request may read before it is answered with 202 and a job instead.
    pub max_sync_rows: u64,
}

impl QueryPolicy {
    pub const DEFAULT_MAX_SYNC_ROWS: u64 = 200_000;

    /// `NA_QUERY_MAX_SYNC_ROWS`, else the default.
    ///
    /// # Errors
    /// A value that is not a number.
    pub fn from_env() -> Result<Self, String> {
        let max_sync_rows = match std::env::var("NA_QUERY_MAX_SYNC_ROWS") {
            Ok(v) => v
                .parse()
                .map_err(|_| format!("NA_QUERY_MAX_SYNC_ROWS={v}: not a number"))?,
            Err(_) => Self::DEFAULT_MAX_SYNC_ROWS,
        };
        Ok(QueryPolicy { max_sync_rows })
    }
}

impl Default for QueryPolicy {
    fn default() -> Self {
        QueryPolicy {
            max_sync_rows: Self::DEFAULT_MAX_SYNC_ROWS,
        }
    }
}

impl AppState {
    pub fn new(
        db: Db,
        queue: Arc<dyn JobQueue>,
        admin: AdminAccess,
        registry: na_plugin_registry::Registry,
    ) -> Self {
        let engine = Arc::new(Engine::new(db.clone(), Arc::clone(registry.host())));
        AppState {
            db,
            queue,
            admin,
            registry,
            engine,
            policy: QueryPolicy::default(),
        }
    }
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v2/analytics/status", get(status))
        .route("/api/v2/analytics/metrics", get(analytics::metrics))
        .route("/api/v2/analytics/openapi.json", get(analytics::openapi))
        .route("/api/v2/analytics/jobs", post(jobs::create))
        .route("/api/v2/analytics/jobs/{id}", get(jobs::status))
        .route("/api/v2/analytics/notes/{event_id}", get(analytics::note))
        .route(
            "/api/v2/analytics/users/{pubkey}/summary",
            get(analytics::summary),
        )
        .route(
            "/api/v2/analytics/users/{pubkey}/timeseries",
            get(analytics::timeseries),
        )
        .route(
            "/api/v2/analytics/users/{pubkey}/breakdown",
            get(analytics::breakdown),
        )
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
