//! The job consumer against a real PostgreSQL and a loopback relay.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use jobs::{JobsState, handle_sqs, run_in_process};
use na_compaction::{Compactor, CompactorConfig};
use na_ingest::IngestConfig;
use na_plugin_host::{HostConfig, PluginHost};
use na_queue::{InProcessQueue, JobMessage, JobQueue};
use na_storage::{Db, JobState};
use nostr_sdk::prelude::*;
use serde_json::json;
use uuid::Uuid;

async fn state(relays: Vec<String>) -> JobsState {
    na_telemetry::init(&na_telemetry::LogSettings::from_lookup(&|k| {
        std::env::var(k).ok()
    }));
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 4).await.unwrap();
    let ingest = IngestConfig {
        relays,
        page_limit: 50,
        request_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let host = PluginHost::new(HostConfig::from_lookup(&|_| None)).unwrap();
    let compactor = Compactor::new(db.clone(), Arc::new(host), CompactorConfig::default());
    JobsState::new(
        db,
        jobs::JobSettings {
            ingest,
            ..Default::default()
        },
        Arc::new(compactor),
    )
}

async fn relay_with_history() -> (nostr_relay_builder::LocalRelay, PublicKey, usize) {
    let target = Keys::generate();
    let fan = Keys::generate();
    let now = Timestamp::now().as_secs();
    let mut events = Vec::new();
    for i in 0..120u64 {
        let note = EventBuilder::text_note(format!("note {i}"))
            .custom_created_at(Timestamp::from(now - 100_000 + i * 60))
            .sign_with_keys(&target)
            .unwrap();
        let reaction = EventBuilder::new(Kind::Reaction, "+")
            .tag(Tag::event(note.id))
            .tag(Tag::public_key(target.public_key()))
            .custom_created_at(Timestamp::from(now - 99_000 + i * 60))
            .sign_with_keys(&fan)
            .unwrap();
        events.extend([note, reaction]);
    }
    let count = events.len();
    (
        na_test_support::start_relay(&events, Some(50)).await,
        target.public_key(),
        count,
    )
}

fn sqs(bodies: &[(&str, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .map(|(id, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some((*id).to_owned());
            m.body = Some(body.clone());
            m
        })
        .collect();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_job_runs_through_the_in_process_queue_with_progress() {
    let (relay, target, count) = relay_with_history().await;
    let state = state(vec![relay.url().await.to_string()]).await;
    let (queue, receiver) = InProcessQueue::new(3);
    let worker = tokio::spawn(run_in_process(state.clone(), receiver));

    let id = Uuid::new_v4();
    state
        .db
        .create_job(id, "backfill", &json!({ "pubkey": target.to_hex() }))
        .await
        .unwrap();
    queue
        .send(JobMessage::Backfill { job_id: id })
        .await
        .unwrap();
    let job = loop {
        let job = state.db.job(id).await.unwrap();
        if matches!(job.state, JobState::Succeeded | JobState::Failed) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.progress["done"], true);
    assert_eq!(job.result.as_ref().unwrap()["stats"]["stored"], count);
    let pages: u64 = job.progress["walks"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w["pages"].as_u64().unwrap())
        .sum();
    assert!(
        pages >= 4,
        "paged through a 50-event relay limit: {pages} pages"
    );
    drop(queue);
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batches_report_only_the_failed_messages_and_redelivery_runs_once() {
    let (relay, target, count) = relay_with_history().await;
    let state = state(vec![relay.url().await.to_string()]).await;
    let good = Uuid::new_v4();
    state
        .db
        .create_job(good, "backfill", &json!({ "pubkey": target.to_hex() }))
        .await
        .unwrap();
    let bad_params = Uuid::new_v4();
    state
        .db
        .create_job(bad_params, "backfill", &json!({ "pubkey": 12 }))
        .await
        .unwrap();
    let unknown = Uuid::new_v4();

    let body = |id| JobMessage::Backfill { job_id: id }.to_body();
    let response = handle_sqs(
        &state,
        sqs(&[
            ("m1", body(good)),
            ("m2", "{not json".into()),
            ("m3", body(bad_params)),
            ("m4", body(unknown)),
        ]),
        None,
    )
    .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // Garbage and a job that does not exist are redelivered (then dead-lettered); a job
    // whose parameters can never work is failed for good and not retried.
    assert_eq!(failed, ["m2", "m4"]);
    assert_eq!(state.db.job(good).await.unwrap().state, JobState::Succeeded);
    let bad = state.db.job(bad_params).await.unwrap();
    assert_eq!(bad.state, JobState::Failed);
    assert!(bad.error.unwrap().contains("bad backfill parameters"));

    // The same message again: the job already succeeded, so nothing runs twice.
    let again = handle_sqs(&state, sqs(&[("m1", body(good))]), None).await;
    assert!(again.batch_item_failures.is_empty());
    let job = state.db.job(good).await.unwrap();
    assert_eq!(job.attempts, 1);
    assert_eq!(job.result.unwrap()["stats"]["stored"], count);
}

/// With less than `min_time_left` of the invocation left, no message of the batch starts:
/// each is reported for redelivery and its job stays queued, untouched. With enough, the
/// batch runs.
#[tokio::test]
async fn a_batch_is_not_started_past_the_invocations_deadline() {
    let (relay, target, _) = relay_with_history().await;
    let state = state(vec![relay.url().await.to_string()]).await;
    assert_eq!(state.min_time_left, jobs::DEFAULT_MIN_TIME_LEFT);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = Uuid::new_v4();
        state
            .db
            .create_job(id, "backfill", &json!({ "pubkey": target.to_hex() }))
            .await
            .unwrap();
        ids.push(id);
    }
    let records: Vec<(&str, String)> = ["a", "b", "c"]
        .into_iter()
        .zip(&ids)
        .map(|(m, id)| (m, JobMessage::Backfill { job_id: *id }.to_body()))
        .collect();

    let soon = std::time::Instant::now() + state.min_time_left - Duration::from_secs(1);
    let response = handle_sqs(&state, sqs(&records), Some(soon)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["a", "b", "c"]);
    for id in &ids {
        let job = state.db.job(*id).await.unwrap();
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Queued, 0),
            "not started"
        );
    }

    let later = std::time::Instant::now() + state.min_time_left + Duration::from_secs(60);
    let response = handle_sqs(&state, sqs(&records), Some(later)).await;
    assert!(response.batch_item_failures.is_empty());
    for id in &ids {
        assert_eq!(state.db.job(*id).await.unwrap().state, JobState::Succeeded);
    }
}

async fn finished(db: &Db, id: Uuid) -> na_storage::Job {
    loop {
        let job = db.job(id).await.unwrap();
        if matches!(job.state, JobState::Succeeded | JobState::Failed) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_recompute_job_makes_a_version_activatable_and_a_refused_one_is_not_retried() {
    let state = state(Vec::new()).await;
    let registry =
        na_plugin_registry::Registry::new(state.db.clone(), state.compactor.host().clone());
    let component =
        na_test_support::built_component("likes-metrics").unwrap_or_else(|e| panic!("{e}"));
    registry.publish(component, "tests").await.unwrap();
    let (queue, receiver) = InProcessQueue::new(3);
    let worker = tokio::spawn(run_in_process(state.clone(), receiver));

    let id = Uuid::new_v4();
    let params = json!({ "plugin": "likes", "version": 2 });
    state.db.create_job(id, "recompute", &params).await.unwrap();
    queue
        .send(JobMessage::Recompute { job_id: id })
        .await
        .unwrap();
    let job = finished(&state.db, id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(job.result.as_ref().unwrap()["plugin"], "likes@2");
    assert_eq!(job.progress["facts"], 0);
    registry.activate("likes", 2).await.unwrap();

    // Active now: a second recompute is refused once, not retried.
    let again = Uuid::new_v4();
    state
        .db
        .create_job(again, "recompute", &params)
        .await
        .unwrap();
    queue
        .send(JobMessage::Recompute { job_id: again })
        .await
        .unwrap();
    let job = finished(&state.db, again).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap()
            .contains("only a shadow version"),
        "{job:?}"
    );
    assert_eq!(job.attempts, 1);
    drop(queue);
    worker.await.unwrap();
}
