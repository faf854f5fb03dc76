//! Async queries: `POST /api/v2/analytics/jobs`, `GET /api/v2/analytics/jobs/{id}`, and the
//! 202 a query over the synchronous budget gets. The job row holds the query (with `now`
//! fixed when it was asked), its state and its result until it expires.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use na_analytics::{QueryError, QueryParams};
use na_api_types::{JobAccepted, JobResultPage, QueryJob};
use na_queue::JobMessage;
use serde_json::Value;
use uuid::Uuid;

use crate::ids::parse_uuid;
use crate::request::{Params, RawParams, allowed, query_params, whole_number};
use crate::{ApiError, AppState};

/// The one way a job is enqueued: its row recorded, then [`send`]. Returns the job's id.
///
/// # Errors
/// Database errors; the queue's refusal (503).
pub(crate) async fn enqueue(
    db: &na_storage::Db,
    queue: &dyn na_queue::JobQueue,
    kind: &str,
    params: &Value,
    message: fn(Uuid) -> JobMessage,
) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    db.create_job(id, kind, params).await?;
    send(db, queue, id, message).await?;
    Ok(id)
}

/// Sends a recorded job's message (`message` of its id), and marks the row failed when the
/// queue refuses, so that no row claims a job that will never run.
///
/// # Errors
/// Database errors; the queue's refusal (503).
pub(crate) async fn send(
    db: &na_storage::Db,
    queue: &dyn na_queue::JobQueue,
    id: Uuid,
    message: fn(Uuid) -> JobMessage,
) -> Result<(), ApiError> {
    if let Err(e) = queue.send(message(id)).await {
        db.finish_job(id, Err(&format!("could not be enqueued: {e}")))
            .await?;
        return Err(e.into());
    }
    Ok(())
}

/// Records `query` as a job, enqueues it, and answers 202 with where to follow it; `over`
/// is the estimate and budget that sent a synchronous request here.
pub(crate) async fn accepted(
    state: &AppState,
    query: &QueryParams,
    over: Option<(u64, u64)>,
) -> Result<Response, ApiError> {
    let params = serde_json::to_value(query).map_err(|e| ApiError::Internal(e.into()))?;
    let id = enqueue(
        &state.db,
        state.queue.as_ref(),
        "query",
        &params,
        |job_id| JobMessage::Query { job_id },
    )
    .await?;
    let url = format!("/api/v2/analytics/jobs/{id}");
    let body = JobAccepted {
        job_id: id,
        status_url: url.clone(),
        state: "queued".into(),
        reason: over.map(|(estimate, budget)| {
            format!(
                "this answer would read about {estimate} rows, more than the {budget} answered at once"
            )
        }),
    };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], Json(body)).into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let shape = "body must be {\"route\": \"summary|timeseries|breakdown\", \"pubkey\": \"…\" \
                 (or \"route\": \"note\", \"event_id\": \"…\"), and the route's parameters \
                 (window or from/to, metrics, granularity, metric, dimension, top)}";
    let Json(body) = body.map_err(|e| ApiError::from_json_rejection(&e, shape))?;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request(shape));
    };
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required; {shape}")))
    };
    let route = text("route")?;
    let target_field = if route == "note" {
        "event_id"
    } else {
        "pubkey"
    };
    let target = text(target_field)?;
    let mut raw = HashMap::new();
    for (name, value) in fields {
        if name == "route" || name == target_field {
            continue;
        }
        // The types the OpenAPI document gives them, and no others.
        let value = match (name.as_str(), value) {
            ("top" | "from" | "to", Value::Number(n)) if n.is_u64() => n.to_string(),
            ("top", _) => {
                return Err(ApiError::bad_request("top must be a whole number"));
            }
            ("from" | "to", Value::String(s)) => s.clone(),
            ("from" | "to", _) => {
                return Err(ApiError::bad_request(format!(
                    "{name} must be Unix seconds (a whole number) or an RFC 3339 string"
                )));
            }
            (_, Value::String(s)) => s.clone(),
            _ => {
                return Err(ApiError::bad_request(format!("{name} must be a string")));
            }
        };
        raw.insert(name.clone(), value);
    }
    let query = query_params(route, target, &Params::new(raw, allowed(route))?)?;
    // Checked as a synchronous request would be (metrics, window) without running it: with
    // no budget, the engine stops at its first estimate.
    match state.engine.run(&query, Some(0)).await {
        Ok(_) | Err(QueryError::TooCostly { .. }) => accepted(&state, &query, None).await,
        Err(e) => Err(e.into()),
    }
}

/// The query job `id` names, unless its result expired (410).
async fn query_job(state: &AppState, id: &str) -> Result<na_storage::Job, ApiError> {
    let uuid = parse_uuid("job", id)?;
    let not_found = || ApiError::NotFound {
        detail: format!("no query job {id}"),
    };
    let job = state.db.job(uuid).await.map_err(|e| match e {
        na_storage::Error::JobNotFound(_) => not_found(),
        e => e.into(),
    })?;
    if job.kind != "query" {
        return Err(not_found());
    }
    if let Some(at) = job.expires_at
        && at <= Utc::now()
    {
        return Err(ApiError::Gone {
            detail: format!("job {id}'s result expired at {at}; ask again"),
        });
    }
    Ok(job)
}

/// How many pages a succeeded job's answer is in (one for a job that finished before
/// answers were cut).
fn pages_of(job: &na_storage::Job) -> Option<u32> {
    (job.state == na_storage::JobState::Succeeded).then(|| {
        job.result_pages
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
    })
}

fn page_url(id: Uuid, page: u32) -> String {
    format!("/api/v2/analytics/jobs/{id}/result?page={page}")
}

pub(crate) async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueryJob>, ApiError> {
    let job = query_job(&state, &id).await?;
    let result_pages = pages_of(&job);
    Ok(Json(QueryJob {
        job_id: job.id,
        state: job.state.as_str().into(),
        progress: job.progress,
        result: job.result,
        result_pages,
        result_url: result_pages.map(|_| page_url(job.id, 1)),
        error: job.error,
        attempts: job.attempts,
        created_at: job.created_at,
        updated_at: job.updated_at,
        expires_at: job.expires_at,
    }))
}

/// `GET /api/v2/analytics/jobs/{id}/result?page=N`: one page of a succeeded job's answer
/// (`N` from 1, 1 when absent), with a `Link` to the next.
pub(crate) async fn result_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    let page = match Params::from_query(raw, &["page"])?.get("page") {
        None => 1,
        Some(v) => whole_number(v)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p >= 1)
            .ok_or_else(|| {
                ApiError::bad_request(format!("page={v}: must be a whole number from 1"))
            })?,
    };
    let job = query_job(&state, &id).await?;
    let Some(pages) = pages_of(&job) else {
        return Err(ApiError::Conflict {
            detail: format!(
                "job {id} is {}: it has no answer{}",
                job.state.as_str(),
                if job.state == na_storage::JobState::Failed {
                    ""
                } else {
                    " yet; follow its status_url"
                }
            ),
        });
    };
    let not_found = || ApiError::NotFound {
        detail: format!("job {id}'s answer has {pages} page(s); there is no page {page}"),
    };
    if page > pages {
        return Err(not_found());
    }
    let result = state
        .db
        .job_result_page(job.id, i32::try_from(page).unwrap_or(i32::MAX))
        .await?
        .ok_or_else(not_found)?;
    let next = (page < pages).then(|| page_url(job.id, page + 1));
    let link = next
        .as_ref()
        .map(|url| [(header::LINK, format!("<{url}>; rel=\"next\""))]);
    let body = Json(JobResultPage {
        job_id: job.id,
        page,
        pages,
        next,
        result,
    });
    Ok((link, body).into_response())
}

/// `GET /api/v2/admin/jobs/{id}`: any job (backfills, recomputes, queries) as stored.
pub(crate) async fn admin_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_uuid("job", &id)?;
    let job = state.db.job(id).await?;
    Ok(Json(
        serde_json::to_value(job).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}
