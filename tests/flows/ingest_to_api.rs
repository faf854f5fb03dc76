//! Relay -> ingest -> database -> HTTP API, and a backfill enqueued over HTTP, run by the
//! job worker, and read back over HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jobs::JobsState;
use na_ingest::IngestConfig;
use na_queue::InProcessQueue;
use na_storage::Db;
use nostr_sdk::prelude::*;
use query::{AdminAccess, AppState};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    (
        status,
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_flows_from_relay_to_api_and_a_backfill_runs_as_a_job() {
    na_telemetry::init(&na_telemetry::LogSettings::from_lookup(&|k| {
        std::env::var(k).ok()
    }));
    let data =
        na_datagen::generate(na_datagen::Tier::Small, 3, Timestamp::now().as_secs() - 10).unwrap();
    let relay = na_test_support::start_relay(&data.events, Some(200)).await;
    let url = relay.url().await.to_string();
    let db = Db::connect(&na_test_support::fresh_database_url().await, 4)
        .await
        .unwrap();
    let cfg = IngestConfig {
        relays: vec![url.clone()],
        lookback: None,
        page_limit: 200,
        request_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let host = Arc::new(
        na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::from_lookup(&|_| None))
            .unwrap(),
    );
    let (queue, receiver) = InProcessQueue::new(3);
    let worker = tokio::spawn(jobs::run_in_process(
        JobsState::new(
            db.clone(),
            jobs::JobSettings {
                ingest: cfg.clone(),
                ..Default::default()
            },
            Arc::new(na_compaction::Compactor::new(
                db.clone(),
                Arc::clone(&host),
                na_compaction::CompactorConfig::default(),
            )),
        ),
        receiver,
    ));
    let app = query::app(AppState::new(
        db.clone(),
        Arc::new(queue),
        AdminAccess::Open,
        na_plugin_registry::Registry::new(
            db.clone(),
            Arc::new(
                na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::from_lookup(&|_| None))
                    .unwrap(),
            ),
        ),
    ));

    // Ingest until the relay's watermark shows up in the API.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = {
        let (db, cfg) = (db.clone(), cfg.clone());
        tokio::spawn(async move {
            na_ingest::live::run_until(&db, &cfg, async {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    let status = loop {
        let (code, body) = get(&app, "/api/v2/analytics/status").await;
        assert_eq!(code, StatusCode::OK);
        if !body["relays"][0]["watermark"].is_null() {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop_tx.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    let accepted = status["relays"][0]["counters"]["accepted"]
        .as_u64()
        .unwrap();
    assert_eq!(
        accepted, report.stats.stored,
        "the API reports what ingest stored"
    );
    assert!(
        accepted as usize > data.distinct().len() * 9 / 10,
        "{accepted} of {}",
        data.distinct().len()
    );

    // A backfill of the target over HTTP: nothing new to store, every page re-read.
    let body = json!({ "pubkey": data.target.to_bech32().unwrap() }).to_string();
    let req = Request::post("/api/v2/admin/backfills")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let accepted_job: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let status_url = accepted_job["status_url"].as_str().unwrap().to_owned();
    let job = loop {
        let (code, job) = get(&app, &status_url).await;
        assert_eq!(code, StatusCode::OK);
        if job["state"] == "succeeded" || job["state"] == "failed" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["result"]["stats"]["stored"], 0,
        "everything was already ingested"
    );
    assert!(job["result"]["stats"]["duplicates"].as_u64().unwrap() > 0);
    drop(app);
    worker.abort();
}
