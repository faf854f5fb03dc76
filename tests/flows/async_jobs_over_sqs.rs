//! An async query through the real SQS protocol (the AWS SDK against `moto_server` on
//! loopback): enqueued over HTTP, delivered to the jobs function as a Lambda SQS event,
//! read back over HTTP; delivered twice and run once; a poison message redelivered, then
//! moved to the dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jobs::JobsState;
use na_compaction::{Compactor, CompactorConfig, RecomputeProgress};
use na_plugin_host::{HostConfig, PluginHost};
use na_queue::{JobMessage, JobQueue, SqsQueue, SqsSettings};
use na_storage::Db;
use nostr_sdk::prelude::*;
use query::{AdminAccess, AppState};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// What Lambda's SQS event source does once: receive a batch, hand it to the function as an
/// `SqsEvent`, delete what succeeded (failures stay, to come back after the visibility
/// timeout). Returns the bodies received and the ids reported failed.
async fn pump(
    client: &aws_sdk_sqs::Client,
    url: &str,
    state: &JobsState,
) -> (Vec<String>, Vec<String>) {
    let received = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap_or_default();
    let mut event = SqsEvent::default();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.attributes = m
            .attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect::<HashMap<_, _>>();
        event.records.push(record);
    }
    let response = jobs::handle_sqs(state, event, None).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for m in &messages {
        if !failed.contains(m.message_id.as_ref().unwrap()) {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    (
        messages.iter().filter_map(|m| m.body.clone()).collect(),
        failed,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_query_runs_once_through_sqs_and_poison_goes_to_the_dead_letter_queue() {
    na_telemetry::init(&na_telemetry::LogSettings::from_lookup(&|k| {
        std::env::var(k).ok()
    }));
    let moto = na_test_support::MotoServer::start().await;
    let client = SqsSettings {
        aws: na_aws::AwsEnv {
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            session_token: None,
        },
        endpoint: Some(moto.endpoint()),
    }
    .client();
    let dlq = client
        .create_queue()
        .queue_name("jobs-dlq")
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url.unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let url = client
        .create_queue()
        .queue_name("jobs")
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2" }).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    // A database with core@1 active and a small dataset, part of it compacted.
    let db = Db::connect(&na_test_support::fresh_database_url().await, 4)
        .await
        .unwrap();
    assert_eq!(db.relay_id("ws://test").await.unwrap(), 1);
    let host = Arc::new(PluginHost::new(HostConfig::default()).unwrap());
    let registry = na_plugin_registry::Registry::new(db.clone(), host.clone());
    registry
        .publish(
            na_test_support::built_component("core-metrics").unwrap(),
            "tests",
        )
        .await
        .unwrap();
    let compactor = Arc::new(Compactor::new(
        db.clone(),
        host,
        CompactorConfig {
            batch_rows: 1_000,
            ..Default::default()
        },
    ));
    let (tx, _) = tokio::sync::watch::channel(RecomputeProgress::default());
    compactor.recompute("core", 1, &tx).await.unwrap();
    db.activate_plugin("core", 1).await.unwrap();
    let data =
        na_datagen::generate(na_datagen::Tier::Small, 11, Timestamp::now().as_secs() - 60).unwrap();
    let now = chrono::Utc::now().timestamp();
    let batch =
        na_ingest::prepare::batch_from_json(data.distinct().iter().map(|e| e.as_json()), 1, now);
    db.store_batch(&batch.unwrap()).await.unwrap();
    compactor.run_batch().await.unwrap();

    let queue = SqsQueue::new(client.clone(), &url);
    let app = query::app(AppState::new(
        db.clone(),
        Arc::new(queue.clone()),
        AdminAccess::Open,
        registry,
    ));
    let jobs = JobsState::new(db.clone(), jobs::JobSettings::default(), compactor);

    // The target's history was backfilled, so its answers say so.
    let pk = data.target.to_hex();
    let backfill = uuid::Uuid::new_v4();
    db.create_job(backfill, "backfill", &json!({ "pubkey": pk }))
        .await
        .unwrap();
    db.finish_job(backfill, Ok(&json!({}))).await.unwrap();

    // Enqueued over HTTP, delivered over SQS, answered over HTTP.
    let (status, accepted) = call(
        &app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(json!({ "route": "summary", "pubkey": pk, "window": "30d" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let status_url = accepted["status_url"].as_str().unwrap().to_owned();
    let job_id: uuid::Uuid = accepted["job_id"].as_str().unwrap().parse().unwrap();
    let (bodies, failed) = pump(&client, &url, &jobs).await;
    assert_eq!(bodies, [JobMessage::Query { job_id }.to_body()]);
    assert!(failed.is_empty());
    let (_, done) = call(&app, "GET", &status_url, None).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let (_, sync) = call(
        &app,
        "GET",
        &format!("/api/v2/analytics/users/{pk}/summary?window=30d"),
        None,
    )
    .await;
    let reactions = |v: &Value| {
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "reactions_received")
            .unwrap()["value"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(sync["completeness"]["backfill"], "succeeded", "{sync:#}");
    assert!(reactions(&done["result"]) > 0);
    assert_eq!(
        reactions(&done["result"]),
        reactions(&sync),
        "the job answers what the route would"
    );

    // SQS delivers at least once: the same message again runs nothing.
    queue.send(JobMessage::Query { job_id }).await.unwrap();
    let (bodies, failed) = pump(&client, &url, &jobs).await;
    assert_eq!((bodies.len(), failed.len()), (1, 0));
    let (_, again) = call(&app, "GET", &status_url, None).await;
    assert_eq!(again["attempts"], 1, "{again:#}");
    assert_eq!(again["updated_at"], done["updated_at"]);

    // A poison message fails, comes back after the visibility timeout, then goes to the DLQ.
    let poison = r#"{"type":"nope"}"#;
    client
        .send_message()
        .queue_url(&url)
        .message_body(poison)
        .send()
        .await
        .unwrap();
    for receive in 1..=2 {
        let (bodies, failed) = pump(&client, &url, &jobs).await;
        assert_eq!(
            (bodies.as_slice(), failed.len()),
            ([poison.to_owned()].as_slice(), 1),
            "receive {receive}"
        );
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let (bodies, _) = pump(&client, &url, &jobs).await;
    assert!(
        bodies.is_empty(),
        "after 2 receives it left the queue: {bodies:?}"
    );
    let dead = client
        .receive_message()
        .queue_url(&dlq_url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(
        dead.iter()
            .filter_map(|m| m.body.as_deref())
            .collect::<Vec<_>>(),
        [poison]
    );
}
