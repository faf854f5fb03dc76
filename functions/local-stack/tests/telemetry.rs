//! The local gateway's `/metrics` as Prometheus scrapes it (read back by a parser made for
//! the format), and `nostr-analytics slo` reading every SLO from a running stack.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nostr_sdk::prelude::*;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

async fn scrape(base: &str) -> Exposition {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("{e:?}: {text}"))
}

/// The values of `metric`'s samples with `labels` (a histogram's: its count).
fn values(exposition: &Exposition, metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let Some(family) = exposition.families.get(metric) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .filter(|s| {
            let set = s.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(g) => g.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap() as f64,
            other => panic!("{metric} is {other:?}"),
        })
        .collect()
}

fn total(exposition: &Exposition, metric: &str, labels: &[(&str, &str)]) -> f64 {
    values(exposition, metric, labels).iter().sum()
}

#[tokio::test]
async fn the_gateway_exposes_prometheus_metrics_and_the_slo_check_reads_them() {
    let database_url = na_test_support::fresh_database_url().await;
    let (stack, base, relay) = start_until_ingested(&database_url, &[], &[]).await;
    let summary = stack.banner("analytics").await;
    for _ in 0..3 {
        let answer = get_json(&summary).await.unwrap();
        assert!(answer["metrics"].is_array(), "{answer}");
    }
    // A query job, run by the stack's worker.
    let target = summary
        .split("/users/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let asked = reqwest::Client::new()
        .post(format!("{base}/api/v2/analytics/jobs"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"route": "summary", "pubkey": target, "window": "7d"}).to_string())
        .send()
        .await
        .unwrap();
    let job: serde_json::Value = serde_json::from_str(&asked.text().await.unwrap()).unwrap();
    let job_url = format!(
        "{base}/api/v2/analytics/jobs/{}",
        job["job_id"].as_str().unwrap_or_else(|| panic!("{job}"))
    );
    // Live events published now, each measured from its arrival to its commit.
    let client = Client::default();
    client.add_relay(&relay).await.unwrap();
    client.connect().await;
    for i in 0..5 {
        let note = EventBuilder::text_note(format!("telemetry probe {i}"))
            .sign_with_keys(&Keys::generate())
            .unwrap();
        client.send_event(&note).await.unwrap();
    }

    let started = Instant::now();
    let samples = loop {
        let samples = scrape(&base).await;
        let fresh = total(
            &samples,
            "na_ingest_freshness_seconds",
            &[("since", "received")],
        );
        let state = get_json(&job_url).await.unwrap()["state"].clone();
        if fresh >= 5.0 && state == "succeeded" {
            break samples;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{fresh} fresh events measured, the job {state}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let route = "/api/v2/analytics/users/{pubkey}/summary";
    assert_eq!(
        total(
            &samples,
            "na_request_duration_seconds",
            &[("route", route), ("window", "30d")]
        ),
        3.0
    );
    assert_eq!(
        total(
            &samples,
            "na_requests_total",
            &[("route", route), ("window", "30d"), ("status", "2xx")]
        ),
        3.0
    );
    assert!(
        !samples.to_string().contains(target),
        "a pubkey is never a label"
    );
    assert_eq!(
        total(
            &samples,
            "na_jobs_total",
            &[("kind", "query"), ("outcome", "succeeded")]
        ),
        1.0
    );
    assert_eq!(
        total(&samples, "na_job_queue_age_seconds", &[("kind", "query")]),
        1.0
    );
    assert_eq!(
        values(
            &samples,
            "na_compaction_lag_seconds",
            &[("plugin", "core@1")]
        )
        .len(),
        1,
        "the compaction lag of core@1"
    );
    assert!(total(&samples, "na_slo_events_total", &[("slo", "freshness")]) >= 5.0);

    // The check reads the same scrape: every SLO, each met on this idle stack.
    let out = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .args(["slo", "--url", &base, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| {
        readings
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["slo"] == name)
            .unwrap_or_else(|| panic!("no {name} in {readings:#}"))
            .clone()
    };
    let latency = by_name("summary_latency");
    assert!(latency["total"].as_f64().unwrap() >= 3.0, "{latency}");
    assert!(
        latency["seconds"].as_f64().unwrap() > 0.0,
        "the p99: {latency}"
    );
    let freshness = by_name("freshness");
    assert!(freshness["total"].as_f64().unwrap() >= 5.0, "{freshness}");
    assert_eq!(by_name("job_success")["good"], 1.0);
    assert!(by_name("compaction_lag")["seconds"].is_number());
    assert!(
        readings
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["met"] == true),
        "{readings:#}"
    );

    // Another method: a problem body, as on every route.
    let refused = reqwest::Client::new()
        .post(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 405);
    let problem: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(problem["status"], 405);

    // Against nothing, the check fails and says where it looked.
    let out = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .args(["slo", "--url", &format!("http://127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the stack running there?"));
}
