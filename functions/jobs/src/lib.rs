//! The async job consumer. Jobs arrive as [`JobMessage`]s — from SQS in production (with
//! partial batch failure reporting, so one bad message does not redeliver its batch-mates)
//! or from the in-process queue of the local stack — and their state lives in the `jobs`
//! table, so a redelivered job that already succeeded does nothing.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use ingest::IngestConfig;
use ingest::backfill::{BackfillParams, BackfillProgress, backfill};
use na_queue::{InProcessReceiver, JobMessage};
use na_storage::Db;
use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span, warn};

/// What job handlers need, built once per process.
#[derive(Debug, Clone)]
pub struct JobsState {
    pub db: Db,
    pub ingest: IngestConfig,
}

/// How often progress is written to the job row at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs one job to completion.
///
/// # Errors
/// When the job failed in a way worth retrying (relays or database); the job row says
/// `failed` with the reason. A job with parameters that can never work is marked failed
/// and not retried (Ok).
pub async fn run_job(state: &JobsState, message: &JobMessage) -> anyhow::Result<()> {
    match message {
        JobMessage::Backfill { job_id } => {
            let Some(job) = state.db.start_job(*job_id).await? else {
                info!(%job_id, "job already succeeded; nothing to do");
                return Ok(());
            };
            let params: BackfillParams = match serde_json::from_value(job.params.clone()) {
                Ok(p) => p,
                Err(e) => {
                    let why = format!("bad backfill parameters: {e}");
                    state.db.finish_job(*job_id, Err(&why)).await?;
                    return Ok(());
                }
            };
            let (tx, mut rx) = watch::channel(BackfillProgress::default());
            let db = state.db.clone();
            let id = *job_id;
            let writer = tokio::spawn(async move {
                let mut last: Option<std::time::Instant> = None;
                while rx.changed().await.is_ok() {
                    if last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
                        continue; // the final state is written when the job ends
                    }
                    last = Some(std::time::Instant::now());
                    let progress =
                        serde_json::to_value(&*rx.borrow_and_update()).unwrap_or_default();
                    if let Err(e) = db.job_progress(id, &progress).await {
                        warn!(error = %e, "could not record job progress");
                    }
                }
            });
            let outcome = backfill(&state.db, &state.ingest, &params, &tx).await;
            drop(tx);
            let _ = writer.await;
            match outcome {
                Ok(done) => {
                    let result = serde_json::to_value(&done)?;
                    state.db.job_progress(id, &result).await?;
                    state.db.finish_job(id, Ok(&result)).await?;
                    Ok(())
                }
                Err(e) => {
                    state.db.finish_job(id, Err(&e.to_string())).await?;
                    Err(e.into())
                }
            }
        }
        other => anyhow::bail!("this consumer does not handle {other:?}"),
    }
}

/// The SQS handler: each record runs on its own; failed ones are reported so SQS redelivers
/// only them (and moves them to the DLQ after the queue's maxReceiveCount).
pub async fn handle_sqs(state: &JobsState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
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
