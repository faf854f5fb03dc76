//! `/api/v2/analytics`: summaries, time series, breakdowns and the metric catalog, answered
//! by [`na_analytics::Engine`] (snapshot buckets + live delta in one read). A read has no
//! side effect: a pubkey never backfilled is answered from what is stored, and its
//! `completeness.backfill` says `never` (backfills are asked for: `backfills.rs`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use na_analytics::{QueryError, QueryParams};
use na_api_types::{Catalog, CatalogEntry, Engagers, Quarantine, TopNotes};

use na_auth::RateClass;

use crate::access::Caller;
use crate::request::{
    Params, RawParams, allowed, engagers_request, query_params, top_notes_request,
};
use crate::{ApiError, AppState};

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(detail) => ApiError::BadRequest { detail },
            QueryError::NotQueryable(detail) => ApiError::Conflict { detail },
            QueryError::NotFound(detail) => ApiError::NotFound { detail },
            QueryError::MetricFailed(detail) => ApiError::MetricFailed { detail },
            e @ QueryError::TooCostly { .. } => ApiError::bad_request(e.to_string()),
            QueryError::Storage(e) => e.into(),
            e => ApiError::Internal(e.into()),
        }
    }
}

/// Answers at once when the estimated cost is within the policy, else enqueues the same
/// query as a job and answers 202 with where to find it.
async fn answer(
    state: &AppState,
    caller: Option<&Caller>,
    params: QueryParams,
) -> Result<Response, ApiError> {
    match state
        .engine
        .run(&params, Some(state.policy.max_sync_rows))
        .await
    {
        Ok(answer) => sized(&answer, state.policy.max_body_bytes),
        Err(QueryError::TooCostly { estimate, budget }) => {
            // A job it becomes, and a job it counts as, on top of the read.
            if let Some(caller) = caller {
                crate::access::spend(state, caller, RateClass::Jobs).await?;
            }
            crate::jobs::accepted(state, &params, Some((estimate, budget))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `answer` as JSON when it is at most `max` bytes; else a 400 saying how to ask for less.
fn sized(answer: &na_api_types::QueryAnswer, max: usize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(answer).map_err(|e| ApiError::Internal(e.into()))?;
    if body.len() > max {
        let compact = matches!(answer, na_api_types::QueryAnswer::TimeSeries(_));
        let series = matches!(
            answer,
            na_api_types::QueryAnswer::TimeSeries(_)
                | na_api_types::QueryAnswer::CompactTimeSeries(_)
        );
        return Err(ApiError::bad_request(format!(
            "this answer is {} bytes, more than the {max} one response carries \
             (NA_QUERY_MAX_BODY_BYTES): ask for {}fewer metrics, a coarser granularity or a \
             shorter window{}",
            body.len(),
            if compact { "format=compact, " } else { "" },
            if series {
                ", or ask for it as a job (POST /api/v2/analytics/jobs): a job's answer is \
                 served in pages"
            } else {
                ""
            }
        )));
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// A query route: its parameters checked, then answered (or enqueued when too costly).
async fn serve(
    state: &AppState,
    caller: Option<Extension<Caller>>,
    route: &str,
    target: &str,
    raw: RawParams,
) -> Result<Response, ApiError> {
    let params = Params::from_query(raw, allowed(route))?;
    let caller = caller.map(|Extension(c)| c);
    answer(
        state,
        caller.as_ref(),
        query_params(route, target, &params)?,
    )
    .await
}

pub(crate) async fn summary(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(pubkey): Path<String>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    serve(&state, caller, "summary", &pubkey, raw).await
}

pub(crate) async fn timeseries(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(pubkey): Path<String>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    serve(&state, caller, "timeseries", &pubkey, raw).await
}

pub(crate) async fn breakdown(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(pubkey): Path<String>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    serve(&state, caller, "breakdown", &pubkey, raw).await
}

/// Who engaged with the pubkey (a personal route: the layer lets in only that user or a
/// `read` key). Answered at once or not at all: its answer is not for a job, which anyone
/// holding its id could read.
pub(crate) async fn engagers(
    State(state): State<AppState>,
    Path(pubkey): Path<String>,
    raw: RawParams,
) -> Result<Json<Engagers>, ApiError> {
    let params = Params::from_query(raw, allowed("engagers"))?;
    let budget = state.policy.max_sync_rows;
    let req = engagers_request(&pubkey, &params, budget)?;
    at_once(
        state.engine.engagers(&req).await,
        budget,
        "engagers are listed at once only, so ask for a shorter window",
    )
}

/// An answer of a route that is never a job: over the budget, a 400 saying `instead`.
fn at_once<T>(
    answer: Result<T, QueryError>,
    budget: u64,
    instead: &str,
) -> Result<Json<T>, ApiError> {
    match answer {
        Ok(answer) => Ok(Json(answer)),
        Err(QueryError::TooCostly { .. }) => Err(ApiError::bad_request(format!(
            "this window holds more than {budget} facts to read (NA_QUERY_MAX_SYNC_ROWS): \
             {instead}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `GET …/users/{pubkey}/notes`: the pubkey's events ranked by one metric over a window.
/// Answered at once, or a 400 asking for a shorter window.
pub(crate) async fn top_notes(
    State(state): State<AppState>,
    Path(pubkey): Path<String>,
    raw: RawParams,
) -> Result<Json<TopNotes>, ApiError> {
    let params = Params::from_query(raw, allowed("notes"))?;
    let budget = state.policy.max_sync_rows;
    let req = top_notes_request(&pubkey, &params, budget)?;
    at_once(
        state.engine.top_notes(&req).await,
        budget,
        "ask for a shorter window",
    )
}

pub(crate) async fn note(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(event_id): Path<String>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    serve(&state, caller, "note", &event_id, raw).await
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Json<Catalog>, ApiError> {
    let catalog = state.engine.catalog().await?;
    let metrics = catalog
        .into_iter()
        .map(|m| CatalogEntry {
            id: m.id(),
            plugin: m.plugin_id(),
            queryable: m.recomputed && m.state != "retired",
            quarantined: m
                .quarantined
                .map(|(since, error)| Quarantine { since, error }),
            metric: m.metric,
            version: m.version,
            state: m.state,
            aggregation: m.aggregation,
            unit: m.unit,
            description: m.description,
            dimensions: m.dimensions,
        })
        .collect();
    Ok(Json(Catalog { metrics }))
}

/// The OpenAPI 3.1 document describing this API.
pub const OPENAPI: &str = include_str!("openapi.json");

pub(crate) async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}
