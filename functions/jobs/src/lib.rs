//! The async job consumer. Jobs arrive as [`JobMessage`]s — from SQS in production (with
//! partial batch failure reporting, so one bad message does not redeliver its batch-mates)
//! or from the in-process queue of the local stack — and their state lives in the `jobs`
//! table, so a redelivered job that already succeeded does nothing.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use na_analytics::{Engine, ExactDistinct, QueryError, QueryParams};
use na_compaction::{CompactionError, Compactor, RecomputeProgress};
use na_ingest::IngestConfig;
use na_ingest::backfill::{BackfillParams, BackfillProgress, backfill};
use na_queue::{InProcessReceiver, JobMessage};
use na_storage::{Db, Job, JobState};
use na_telemetry::metrics::{self, JobOutcome};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span, warn};

/// What job handlers need, built once per process.
#[derive(Debug, Clone)]
pub struct JobsState {
    pub db: Db,
    pub ingest: IngestConfig,
    /// Runs recompute jobs (and keeps their plugins loaded between jobs).
    pub compactor: Arc<Compactor>,
    /// Answers query jobs.
    pub engine: Arc<Engine>,
    /// How long a query job's result is kept.
    pub result_ttl: chrono::TimeDelta,
    /// No page of a query job's answer is sent in a larger response.
    pub max_body_bytes: usize,
    /// A message of an SQS batch is started only with this much of the invocation left.
    pub min_time_left: Duration,
}

/// The longest one statement of a query job may run.
const JOB_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a query job's result is kept unless `NA_QUERY_RESULT_TTL_SECONDS` says otherwise.
pub const DEFAULT_RESULT_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What the job handlers are told.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Backfills read relays as ingest does.
    pub ingest: IngestConfig,
    /// Up to how many contributions a query job counts a distinct metric exactly.
    pub exact_distinct: ExactDistinct,
    /// How long a query job's result is kept.
    pub result_ttl: chrono::TimeDelta,
    /// No page of a query job's answer is sent in a larger response (the query function's
    /// limit, `NA_QUERY_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// A message of an SQS batch is started only with this much of the invocation left
    /// (`NA_JOB_MIN_SECONDS_LEFT`).
    pub min_time_left: Duration,
}

/// How much of an invocation a job message needs left to be started, unless
/// `NA_JOB_MIN_SECONDS_LEFT` says otherwise: a third of the jobs function's 900 s.
pub const DEFAULT_MIN_TIME_LEFT: Duration = Duration::from_secs(300);

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            ingest: IngestConfig::default(),
            exact_distinct: ExactDistinct::DEFAULT,
            result_ttl: DEFAULT_RESULT_TTL,
            max_body_bytes: na_analytics::DEFAULT_MAX_BODY_BYTES,
            min_time_left: DEFAULT_MIN_TIME_LEFT,
        }
    }
}

impl JobSettings {
    /// Ingest's variables, `NA_QUERY_EXACT_DISTINCT_ROWS`, `NA_JOB_EXACT_DISTINCT_ROWS`,
    /// `NA_QUERY_RESULT_TTL_SECONDS`, `NA_QUERY_MAX_BODY_BYTES` and
    /// `NA_JOB_MIN_SECONDS_LEFT`, over the defaults.
    ///
    /// # Errors
    /// A variable that does not parse, naming it.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let result_ttl = match var("NA_QUERY_RESULT_TTL_SECONDS") {
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .map(chrono::TimeDelta::seconds)
                .ok_or_else(|| {
                    anyhow::anyhow!("NA_QUERY_RESULT_TTL_SECONDS={v}: not a positive number")
                })?,
            None => DEFAULT_RESULT_TTL,
        };
        Ok(JobSettings {
            ingest: IngestConfig::from_lookup(var)?,
            exact_distinct: ExactDistinct::from_lookup(var).map_err(anyhow::Error::msg)?,
            result_ttl,
            max_body_bytes: na_analytics::max_body_bytes(var).map_err(anyhow::Error::msg)?,
            min_time_left: match var("NA_JOB_MIN_SECONDS_LEFT") {
                Some(v) => v.parse().map(Duration::from_secs).map_err(|_| {
                    anyhow::anyhow!("NA_JOB_MIN_SECONDS_LEFT={v}: not a number of seconds")
                })?,
                None => DEFAULT_MIN_TIME_LEFT,
            },
        })
    }
}

impl JobsState {
    /// Sharing `compactor` (and its plugin host) with the caller.
    pub fn new(db: Db, settings: JobSettings, compactor: Arc<Compactor>) -> Self {
        let mut engine = Engine::new(db.clone(), Arc::clone(compactor.host()));
        engine.exact_distinct = settings.exact_distinct;
        // A job is the answer for what is too heavy for a request: it may take its time.
        engine.statement_timeout = JOB_STATEMENT_TIMEOUT;
        JobsState {
            compactor,
            engine: Arc::new(engine),
            result_ttl: settings.result_ttl,
            max_body_bytes: settings.max_body_bytes,
            min_time_left: settings.min_time_left,
            db,
            ingest: settings.ingest,
        }
    }
}

/// How often progress is written to the job row at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs one job to completion.
///
/// # Errors
/// When the job failed in a way worth retrying (relays or database); the job row says
/// `failed` with the reason. A job with parameters that can never work, or that the rules
/// refuse, is marked failed and not retried (Ok).
pub async fn run_job(state: &JobsState, message: &JobMessage) -> anyhow::Result<()> {
    let job_id = message.job_id();
    let Some(job) = state.db.start_job(job_id).await? else {
        info!(%job_id, "job already succeeded; nothing to do");
        return Ok(());
    };
    let kind = message.kind();
    if job.attempts == 1 {
        let queued = chrono::Utc::now() - job.created_at;
        metrics::job_started(kind, queued.as_seconds_f64());
    }
    let outcome = run_started(state, message, &job).await;
    let ended = match &outcome {
        Err(_) => JobOutcome::Retried,
        Ok(()) if state.db.job(job_id).await?.state == JobState::Succeeded => JobOutcome::Succeeded,
        Ok(()) => JobOutcome::Failed,
    };
    metrics::job_finished(kind, ended);
    outcome
}

/// [`run_job`] once the job row says it is running: `Ok` when it ended (succeeded, or
/// failed for good), an error when another delivery should try again.
async fn run_started(state: &JobsState, message: &JobMessage, job: &Job) -> anyhow::Result<()> {
    let job_id = job.id;
    match message {
        JobMessage::Backfill { .. } => {
            let Some(params) = params::<BackfillParams>(state, job).await? else {
                return Ok(());
            };
            with_progress(
                state,
                job_id,
                BackfillProgress::default(),
                |tx| async move {
                    backfill(&state.db, &state.ingest, &params, &tx)
                        .await
                        .map_err(|e| Failure::Retry(e.into()))
                },
            )
            .await
        }
        JobMessage::Recompute { .. } => {
            let Some(params) = params::<RecomputeParams>(state, job).await? else {
                return Ok(());
            };
            with_progress(
                state,
                job_id,
                RecomputeProgress::default(),
                |tx| async move {
                    state
                        .compactor
                        .recompute(&params.plugin, params.version, &tx)
                        .await
                        .map_err(|e| match e {
                            CompactionError::Refused(why) => Failure::Final(why),
                            CompactionError::Plugin(e) => Failure::Final(e.to_string()),
                            other => Failure::Retry(other.into()),
                        })
                },
            )
            .await
        }
        JobMessage::Query { .. } => {
            let Some(query) = params::<QueryParams>(state, job).await? else {
                return Ok(());
            };
            match state.engine.run(&query, None).await {
                Ok(answer) => {
                    match answer.into_pages(na_analytics::page_bytes(state.max_body_bytes)) {
                        Ok(pages) => {
                            let pages = pages
                                .iter()
                                .map(serde_json::to_value)
                                .collect::<Result<Vec<_>, _>>()?;
                            let expires_at = chrono::Utc::now() + state.result_ttl;
                            state
                                .db
                                .finish_query_job(job_id, &pages, expires_at)
                                .await?;
                            Ok(())
                        }
                        Err(too_large) => {
                            state
                                .db
                                .finish_job(job_id, Err(&too_large.to_string()))
                                .await?;
                            Ok(())
                        }
                    }
                }
                Err(e @ (QueryError::Storage(_) | QueryError::Sketch(_))) => {
                    state.db.finish_job(job_id, Err(&e.to_string())).await?;
                    Err(e.into())
                }
                // The query can never be answered as asked (or its plugin fails on it).
                Err(e) => {
                    state.db.finish_job(job_id, Err(&e.to_string())).await?;
                    Ok(())
                }
            }
        }
        other => anyhow::bail!("this consumer does not handle {other:?}"),
    }
}

/// The parameters of a recompute job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecomputeParams {
    pub plugin: String,
    pub version: i32,
}

/// How a job failed: worth another delivery, or never going to work.
enum Failure {
    Retry(anyhow::Error),
    Final(String),
}

/// The job's parameters, or `None` when they can never work (the job is marked failed).
async fn params<P: serde::de::DeserializeOwned>(
    state: &JobsState,
    job: &na_storage::Job,
) -> anyhow::Result<Option<P>> {
    match serde_json::from_value(job.params.clone()) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            let why = format!("bad {} parameters: {e}", job.kind);
            state.db.finish_job(job.id, Err(&why)).await?;
            Ok(None)
        }
    }
}

/// Runs `work` with a progress channel whose latest value is written to the job row (at
/// most every [`PROGRESS_EVERY`]), then records the result.
async fn with_progress<P, R, F, Fut>(
    state: &JobsState,
    id: uuid::Uuid,
    initial: P,
    work: F,
) -> anyhow::Result<()>
where
    P: Serialize + Send + Sync + 'static,
    R: Serialize,
    F: FnOnce(watch::Sender<P>) -> Fut,
    Fut: std::future::Future<Output = Result<R, Failure>>,
{
    let (tx, mut rx) = watch::channel(initial);
    let db = state.db.clone();
    let writer = tokio::spawn(async move {
        let mut last: Option<std::time::Instant> = None;
        while rx.changed().await.is_ok() {
            if last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
                continue; // the final state is written when the job ends
            }
            last = Some(std::time::Instant::now());
            let progress = serde_json::to_value(&*rx.borrow_and_update()).unwrap_or_default();
            if let Err(e) = db.job_progress(id, &progress).await {
                warn!(error = %e, "could not record job progress");
            }
        }
    });
    let outcome = work(tx).await;
    let _ = writer.await;
    match outcome {
        Ok(done) => {
            let result = serde_json::to_value(&done)?;
            state.db.job_progress(id, &result).await?;
            state.db.finish_job(id, Ok(&result)).await?;
            Ok(())
        }
        Err(Failure::Final(why)) => {
            state.db.finish_job(id, Err(&why)).await?;
            Ok(())
        }
        Err(Failure::Retry(e)) => {
            state.db.finish_job(id, Err(&e.to_string())).await?;
            Err(e)
        }
    }
}

/// The SQS handler: each record runs on its own; failed ones are reported so SQS redelivers
/// only them (and moves them to the DLQ after the queue's maxReceiveCount). A record is
/// started only with at least `state.min_time_left` before the invocation's `deadline`:
/// the rest are reported unstarted, for another invocation, rather than cut off midway
/// with the batch.
pub async fn handle_sqs(
    state: &JobsState,
    event: SqsEvent,
    deadline: Option<std::time::Instant>,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut records = event.records.into_iter();
    while let Some(record) = records.next() {
        let id = record.message_id.clone().unwrap_or_default();
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if left.is_some_and(|left| left < state.min_time_left) {
            let unstarted: Vec<String> = std::iter::once(id)
                .chain(records.map(|r| r.message_id.unwrap_or_default()))
                .collect();
            warn!(
                left_ms = left.map(|l| l.as_millis()).unwrap_or_default(),
                unstarted = unstarted.len(),
                "too little time left in this invocation: the rest of the batch is redelivered"
            );
            failures.extend(unstarted.into_iter().map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            }));
            break;
        }
        let outcome = async {
            let body = record.body.as_deref().unwrap_or_default();
            let message = JobMessage::from_body(body)?;
            run_job(state, &message).await
        }
        .instrument(info_span!("sqs_message", message_id = %id))
        .await;
        if let Err(e) = outcome {
            error!(message_id = %id, error = %e, "job message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// The local stack's worker: takes deliveries until the queue closes, retrying failures
/// up to the queue's receive limit.
pub async fn run_in_process(state: JobsState, receiver: InProcessReceiver) {
    while let Some(delivery) = receiver.recv().await {
        let span = info_span!("job", job_id = %delivery.message.job_id(), receive = delivery.receive_count);
        if let Err(e) = run_job(&state, &delivery.message).instrument(span).await {
            let job_id = delivery.message.job_id();
            if receiver.retry(delivery) {
                warn!(%job_id, error = %e, "job failed; will retry");
            } else {
                error!(%job_id, error = %e, "job failed for the last time");
            }
        }
    }
}
