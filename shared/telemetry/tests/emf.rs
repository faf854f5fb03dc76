//! The EMF recorder's documents are what CloudWatch reads: each line checked against the
//! format's schema and rules, counters as their increase, histograms split at 100 values.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use na_telemetry::emf::EmfRecorder;
use na_telemetry::metrics::{self as m, JobOutcome};
use serde_json::Value;

fn flush(recorder: &EmfRecorder) -> Vec<Value> {
    let mut out = Vec::new();
    recorder.flush(&[("requestId", "req-1")], &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| na_test_support::emf::check(line).unwrap())
        .collect()
}

/// The documents whose dimensions are exactly `labels`.
fn with_labels<'a>(docs: &'a [Value], labels: &[(&str, &str)]) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| {
            let dims = &d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
            dims.as_array().unwrap().len() == labels.len()
                && labels.iter().all(|(k, v)| d[*k] == *v)
        })
        .collect()
}

#[test]
fn every_document_is_valid_emf_and_holds_what_was_recorded() {
    let recorder = EmfRecorder::new("NostrAnalyticsTest");
    metrics::with_local_recorder(&recorder, || {
        m::describe();
        for i in 0..250 {
            m::request(m::SUMMARY_ROUTE, "24h", 200, Duration::from_millis(i));
        }
        m::request(m::SUMMARY_ROUTE, "24h", 503, Duration::from_millis(5));
        m::request(
            "/api/v2/analytics/users/{pubkey}/timeseries",
            "custom-day",
            400,
            Duration::from_millis(1),
        );
        m::ingest_freshness(0.5, 3.0);
        m::ingest_freshness(2.5, 4.0);
        m::compaction_lag("likes@1", 120, 42.0);
        m::job_started("query", 1.5);
        m::job_finished("query", JobOutcome::Succeeded);
        m::job_finished("backfill", JobOutcome::Retried);
        m::rate_limited("costly");
    });
    let docs = flush(&recorder);
    assert!(docs.iter().all(|d| d["requestId"] == "req-1"));
    assert!(
        docs.iter()
            .all(|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "NostrAnalyticsTest")
    );

    // 250 latencies over three documents (100, 100, 50), in seconds.
    let summary = with_labels(&docs, &[("route", m::SUMMARY_ROUTE), ("window", "24h")]);
    let latencies: Vec<f64> = summary
        .iter()
        .filter_map(|d| d[m::REQUEST_SECONDS].as_array())
        .flat_map(|v| v.iter().map(|x| x.as_f64().unwrap()))
        .collect();
    assert_eq!(latencies.len(), 251);
    assert_eq!(summary.len(), 3, "{summary:#?}");
    assert!(latencies.contains(&0.249));
    let unit = summary[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Name"] == m::REQUEST_SECONDS)
        .unwrap()["Unit"]
        .clone();
    assert_eq!(unit, "Seconds");

    let count = |labels: &[(&str, &str)], name: &str| -> Option<f64> {
        with_labels(&docs, labels)
            .iter()
            .find_map(|d| d[name].as_f64())
    };
    let ok = [
        ("route", m::SUMMARY_ROUTE),
        ("window", "24h"),
        ("status", "2xx"),
    ];
    assert_eq!(count(&ok, m::REQUESTS), Some(250.0));
    // The summary SLO: every answer within 300 ms is good, the 503 bad, the 400 neither.
    let slo =
        |name: &str, outcome: &str| count(&[("slo", name), ("outcome", outcome)], m::SLO_EVENTS);
    assert_eq!(slo("summary_latency", "good"), Some(250.0));
    assert_eq!(slo("summary_latency", "bad"), Some(1.0));
    assert_eq!(slo("freshness", "good"), Some(1.0));
    assert_eq!(slo("freshness", "bad"), Some(1.0));
    assert_eq!(slo("job_success", "good"), Some(1.0));
    assert_eq!(
        slo("job_success", "bad"),
        None,
        "a retry is not a failure for good"
    );
    assert_eq!(
        count(&[("plugin", "likes@1")], m::COMPACTION_LAG_SECONDS),
        Some(42.0)
    );
    assert_eq!(
        count(&[("plugin", "likes@1")], m::COMPACTION_LAG_ROWS),
        Some(120.0)
    );
    assert_eq!(
        count(&[("kind", "backfill"), ("outcome", "retried")], m::JOBS),
        Some(1.0)
    );
    assert_eq!(count(&[("class", "costly")], m::RATE_LIMITED), Some(1.0));
    let fresh = with_labels(&docs, &[("since", "created_at")]);
    assert_eq!(
        fresh[0][m::INGEST_FRESHNESS_SECONDS],
        serde_json::json!([3.0, 4.0])
    );

    // The next flush has only what changed since: the gauges as they stand.
    metrics::with_local_recorder(&recorder, || m::rate_limited("costly"));
    let again = flush(&recorder);
    let names: Vec<String> = again
        .iter()
        .flat_map(|d| {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["Name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [
            m::COMPACTION_LAG_ROWS,
            m::COMPACTION_LAG_SECONDS,
            m::RATE_LIMITED
        ]
    );
}

#[test]
fn the_checker_refuses_what_cloudwatch_would_not_read() {
    let valid = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["route"]],"Metrics":[{"Name":"x","Unit":"Seconds"}]}]},"route":"/a","x":[1,2]}"#;
    na_test_support::emf::check(valid).unwrap();
    for bad in [
        // no Timestamp
        r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[]}]}}"#,
        // a unit CloudWatch does not have
        r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"x","Unit":"Parsecs"}]}]},"x":1}"#,
        // a dimension that is not a member
        r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["route"]],"Metrics":[{"Name":"x"}]}]},"x":1}"#,
        // a metric value that is not a number
        r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"x"}]}]},"x":"1"}"#,
    ] {
        assert!(na_test_support::emf::check(bad).is_err(), "{bad}");
    }
    let many: Vec<u32> = (0..101).collect();
    let too_many = format!(
        r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"N","Dimensions":[[]],"Metrics":[{{"Name":"x"}}]}}]}},"x":{}}}"#,
        serde_json::to_string(&many).unwrap()
    );
    assert!(na_test_support::emf::check(&too_many).is_err());
}

/// Writes into a shared buffer, as standard output would.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn documents(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| na_test_support::emf::check(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_long_invocation_writes_its_metrics_every_period_and_the_rest_at_its_end() {
    let emf = na_telemetry::Emf::install(&|_| None).unwrap();
    let sink = Sink::default();
    let out = sink.clone();
    let flushing = emf.periodic_to("inv-1", Duration::from_millis(100), move || {
        Box::new(out.clone())
    });
    m::rate_limited("costly");
    // Written while the invocation still runs.
    let started = std::time::Instant::now();
    while sink.documents().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "never flushed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = sink.documents();
    assert_eq!(first[0][m::RATE_LIMITED], 1);
    assert_eq!(first[0]["requestId"], "inv-1");
    m::rate_limited("costly");
    m::rate_limited("costly");
    drop(flushing);
    // Whatever a tick had not written yet, the end wrote: every increment once.
    let total: u64 = sink
        .documents()
        .iter()
        .filter_map(|d| d[m::RATE_LIMITED].as_u64())
        .sum();
    assert_eq!(total, 3);
    m::rate_limited("costly");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: u64 = sink
        .documents()
        .iter()
        .filter_map(|d| d[m::RATE_LIMITED].as_u64())
        .sum();
    assert_eq!(after, 3, "nothing is written once the invocation has ended");
}
