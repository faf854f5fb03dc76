//! What the query function emits on Lambda: every request measured by route template and
//! window class (never by pubkey), rate-limit refusals counted, the summary SLO's events,
//! all as CloudWatch Embedded Metric Format the format's schema accepts.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use axum::http::StatusCode;
use common::*;
use na_auth::{Limits, RateLimits};
use na_telemetry::metrics as m;
use nostr::Keys;
use query::{AccessConfig, AdminAccess, QueryPolicy};
use serde_json::Value;
use tower::ServiceExt;

/// The value of `metric` in the document whose dimensions are exactly `labels`.
fn value(docs: &[Value], metric: &str, labels: &[(&str, &str)]) -> Option<Value> {
    docs.iter().find_map(|d| {
        let dims = d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            .as_array()
            .unwrap();
        let exact = dims.len() == labels.len() && labels.iter().all(|(k, v)| d[*k] == *v);
        exact.then(|| d.get(metric).cloned()).flatten()
    })
}

#[tokio::test]
async fn requests_are_measured_by_route_and_window_class_as_valid_emf() {
    let emf = na_telemetry::Emf::install(&|_| None).unwrap();
    let access = AccessConfig {
        admin: AdminAccess::Token("bootstrap-s3cret".into()),
        rate: RateLimits {
            anonymous: Limits {
                cheap: 100,
                costly: 8,
                jobs: 0,
                admin: 0,
            },
            ..RateLimits::DEFAULT
        },
        public_url: None,
        cors: Default::default(),
    };
    let env = setup_as(20_000, QueryPolicy::default(), access).await;
    let pk = Keys::generate().public_key().to_hex();
    let summary = format!("/api/v2/analytics/users/{pk}/summary");
    for (class, query) in [
        ("24h", "?window=24h"),
        ("7d", "?window=7d"),
        ("custom-day", "?from=1700000000&to=1700003600"),
        ("custom-year", "?from=1700000000&to=1705000000"),
        ("invalid", "?window=2h"),
        ("invalid", "?from=1700000000&to=1600000000"),
        ("none", ""),
    ] {
        let (status, body) = get(&env.app, &format!("{summary}{query}")).await;
        let expected = if class == "invalid" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{query}: {body:#}");
    }
    // Then 30d summaries until one is refused over the limit.
    let mut answered_30d = 0;
    loop {
        let (status, body) = get(&env.app, &format!("{summary}?window=30d")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body:#}");
        answered_30d += 1;
        assert!(answered_30d < 10, "the limit is 8 a minute");
    }
    // Not a route of the API (so not `get`, which checks answers against its document).
    let request = axum::http::Request::get("/no/such/route")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = env.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let mut out = Vec::new();
    emf.flush_to("req-42", &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(&pk), "a pubkey is never a label: {text}");
    let docs: Vec<Value> = text
        .lines()
        .map(|line| na_test_support::emf::check(line).unwrap())
        .collect();
    assert!(docs.iter().all(|d| d["requestId"] == "req-42"));

    let route = m::SUMMARY_ROUTE;
    let count = |window: &str, status: &str| {
        value(
            &docs,
            m::REQUESTS,
            &[("route", route), ("status", status), ("window", window)],
        )
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
    };
    assert_eq!(count("24h", "2xx"), 1);
    assert_eq!(count("7d", "2xx"), 1);
    assert_eq!(count("custom-day", "2xx"), 1);
    assert_eq!(count("custom-year", "2xx"), 1);
    assert_eq!(count("invalid", "4xx"), 2);
    assert_eq!(count("none", "2xx"), 1);
    assert_eq!(count("30d", "2xx"), answered_30d);
    assert_eq!(count("30d", "4xx"), 1, "the refusal over the limit");
    assert_eq!(
        value(&docs, m::RATE_LIMITED, &[("class", "costly")]),
        Some(1.into())
    );
    let latencies = value(
        &docs,
        m::REQUEST_SECONDS,
        &[("route", route), ("window", "24h")],
    )
    .unwrap();
    assert_eq!(latencies.as_array().unwrap().len(), 1);
    assert_eq!(
        value(
            &docs,
            m::REQUESTS,
            &[
                ("route", "unmatched"),
                ("status", "4xx"),
                ("window", "none")
            ]
        ),
        Some(1.into())
    );
    // The answered summaries are the SLO's events; the refusals are not.
    let slo = |outcome| {
        value(
            &docs,
            m::SLO_EVENTS,
            &[("outcome", outcome), ("slo", "summary_latency")],
        )
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
    };
    assert_eq!(slo("good") + slo("bad"), 5 + answered_30d);
}
