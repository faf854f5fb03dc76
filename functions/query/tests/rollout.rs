//! The rollout (docs/rollout.md): `/api/v1` answered by the path its flag gives each
//! pubkey, flips reaching two app instances without a restart, the dual run's drift report
//! (0 on fixture data; an injected difference reported with its key), and the flags read
//! by a stock OpenFeature OFREP provider.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use na_api_types::{AnalyticsV1, DriftReport, Mode};
use na_rollout::{V1_SUMMARY_FLAG, cohort};
use nostr::{Keys, ToBech32};
use open_feature::EvaluationContext;
use open_feature::provider::FeatureProvider;
use query::{AdminAccess, AppState, QueryPolicy, app};
use serde_json::{Value, json};

/// Short, so a test waits little for a flip to reach the other instance.
const TTL: Duration = Duration::from_millis(300);

fn policy() -> QueryPolicy {
    QueryPolicy {
        flag_ttl: TTL,
        ..QueryPolicy::default()
    }
}

/// `/api/v1/analytics/{pk}?{query}`: the answer and the path that produced it.
async fn v1(app: &axum::Router, pk: &str, query: &str) -> (AnalyticsV1, String) {
    let (status, headers, body) = call_full(
        app,
        "GET",
        &format!("/api/v1/analytics/{pk}?{query}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body:#}");
    let path = headers[query::v1::PATH_HEADER].to_str().unwrap().to_owned();
    (serde_json::from_value(body).unwrap(), path)
}

async fn set_flag(app: &axum::Router, change: Value) -> Value {
    let (status, body) = call(
        app,
        "PATCH",
        &format!("/api/v2/admin/flags/{V1_SUMMARY_FLAG}"),
        Some(&change),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{change}: {body:#}");
    body
}

async fn drift(app: &axum::Router) -> DriftReport {
    serde_json::from_value(get_ok(app, "/api/v2/admin/drift?hours=1").await).unwrap()
}

/// A second app instance over the same database: its own engine and flag cache.
fn second_instance(env: &Env) -> axum::Router {
    let (queue, _) = na_queue::InProcessQueue::new(1);
    let state = AppState::new(
        env.db.clone(),
        Arc::new(queue),
        AdminAccess::Open,
        env.registry.clone(),
    )
    .with_policy(policy());
    app(state)
}

/// The dataset stored, two thirds compacted and the rest in the live delta.
async fn with_data() -> (Env, na_datagen::Dataset) {
    let env = setup_with(500, policy()).await;
    let data = small_dataset();
    let events = data.distinct();
    let (compacted, live) = events.split_at(events.len() * 2 / 3);
    store_events(&env.db, compacted).await;
    compact_all(&env.compactor).await;
    store_events(&env.db, live).await;
    (env, data)
}

/// The windows the paths are compared over: rolling ones, a closed one with unaligned
/// edges, and one reaching back before the data (followers from their first list on).
fn windows(end: i64) -> Vec<String> {
    vec![
        "days=1".into(),
        "days=7".into(),
        "days=30".into(),
        format!(
            "since={}&until={}",
            end - 10 * 86_400 + 37 * 60 + 5,
            end - 2 * 86_400 + 3 * 3_600
        ),
        format!("since={}&until={}", end - 400 * 86_400, end - 3 * 86_400),
    ]
}

/// The legacy fields over `answer`'s window, computed natively from every stored fact.
fn from_scratch(scratch: &[na_metrics_abi::Contribution], answer: &AnalyticsV1) -> AnalyticsV1 {
    let want = expected(scratch, answer.since, answer.until);
    AnalyticsV1::from_metrics(
        answer.pubkey.clone(),
        (answer.since, answer.until),
        Some(answer.days),
        |m| want.get(m).copied(),
    )
}

#[tokio::test]
async fn every_path_gives_the_exact_legacy_fields_and_the_dual_run_finds_no_drift() {
    let (env, data) = with_data().await;
    let pk = data.target.to_hex();
    let scratch = contributions_from_scratch(&env.db, &data.target, |_| true).await;
    let mut legacy_answers = Vec::new();
    for w in windows(data.end as i64) {
        let (answer, path) = v1(&env.app, &pk, &w).await;
        assert_eq!(path, "legacy", "the flag starts legacy for everyone");
        assert_eq!(
            answer,
            from_scratch(&scratch, &answer),
            "{w}: the legacy path against the facts"
        );
        assert!(
            answer.notes.unwrap() + answer.replies.unwrap() + answer.reactions.unwrap() > 0,
            "{w}"
        );
        legacy_answers.push((w, answer));
    }
    set_flag(&env.app, json!({"mode": "v2", "percent": 100})).await;
    for (w, legacy) in &legacy_answers {
        let (answer, path) = v1(&env.app, &pk, w).await;
        assert_eq!(path, "v2");
        // Rolling windows end at the request's instant: those against the facts again.
        if w.starts_with("since") {
            assert_eq!(&answer, legacy, "{w}: the adapter's fields");
        } else {
            assert_eq!(
                answer,
                from_scratch(&scratch, &answer),
                "{w}: the v2 path against the facts"
            );
        }
    }
    set_flag(&env.app, json!({"mode": "dual"})).await;
    for (w, _) in &legacy_answers {
        let (_, path) = v1(&env.app, &pk, w).await;
        assert_eq!(path, "dual");
    }
    let report = drift(&env.app).await;
    assert_eq!(report.observations, legacy_answers.len() as i64);
    assert!(report.within_threshold, "{report:#?}");
    assert!(report.first_differences.is_empty(), "{report:#?}");
    for d in report.closed.iter().chain(&report.live_edge) {
        assert_eq!((d.differing, d.over_threshold), (0, 0), "{d:?}");
    }
    // The rolling windows end now: at the live edge, reported apart; the others closed.
    let compared = |rows: &[na_api_types::MetricDrift]| {
        rows.iter()
            .find(|d| d.metric == "replies_received")
            .map_or(0, |d| d.compared)
    };
    assert_eq!(compared(&report.live_edge), 3);
    assert_eq!(compared(&report.closed), 2);
    assert!(
        report
            .closed
            .iter()
            .any(|d| d.metric == "unique_engagers" && d.compared == 2),
        "distinct counts are compared too: {report:#?}"
    );
}

#[tokio::test]
async fn an_injected_difference_is_reported_over_threshold_with_its_key() {
    let (env, data) = with_data().await;
    compact_all(&env.compactor).await;
    let pk = data.target.to_hex();
    let end = data.end as i64;
    let (from, to) = (end - 20 * 86_400, end - 86_400);
    // One reply to the user, removed from the facts behind compaction's back: the legacy
    // path no longer sees it, the buckets still count it.
    let conn = env.db.conn().await.unwrap();
    let removed = conn
        .execute(
            "DELETE FROM facts WHERE ctid = (
                 SELECT ctid FROM facts
                 WHERE subject = $1 AND class = $2 AND actor <> $1
                   AND created_at >= to_timestamp($3) AND created_at < to_timestamp($4)
                 LIMIT 1)",
            &[
                &data.target.to_bytes().as_slice(),
                &na_domain::FactClass::Reply.as_i16(),
                &(from as f64),
                &(to as f64),
            ],
        )
        .await
        .unwrap();
    assert_eq!(removed, 1);
    set_flag(&env.app, json!({"mode": "dual", "percent": 100})).await;
    let (served, path) = v1(&env.app, &pk, &format!("since={from}&until={to}")).await;
    assert_eq!(path, "dual");
    let report = drift(&env.app).await;
    assert!(!report.within_threshold, "{report:#?}");
    let replies = report
        .closed
        .iter()
        .find(|d| d.metric == "replies_received")
        .unwrap();
    assert_eq!((replies.differing, replies.over_threshold), (1, 1));
    assert_eq!(replies.max_difference, 1);
    assert_eq!(replies.threshold, 0.0);
    let first = &report.first_differences[0];
    assert_eq!(
        (
            first.metric.as_str(),
            first.pubkey.as_str(),
            first.from.timestamp(),
            first.to.timestamp()
        ),
        ("replies_received", pk.as_str(), from, to),
        "the key to bisect from"
    );
    assert_eq!(
        Some(first.legacy),
        served.replies,
        "the legacy answer was served"
    );
    assert_eq!(Some(first.v2 - 1), served.replies);
    assert!(!first.live_edge);
    assert_eq!(
        first.cohort,
        cohort(V1_SUMMARY_FLAG, &pk),
        "recorded with the pubkey's cohort"
    );
    // Every other metric stayed within its threshold (but the distinct count of engagers,
    // which that reply's author may have been counted in by that reply alone).
    assert!(
        report
            .closed
            .iter()
            .filter(|d| !["replies_received", "unique_engagers"].contains(&d.metric.as_str()))
            .all(|d| d.over_threshold == 0),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_dual_run_that_fails_answers_by_the_legacy_path_alone() {
    // Room for the legacy path's facts (none), not for v2's buckets over 30 days.
    let env = setup_with(
        500,
        QueryPolicy {
            max_sync_rows: 40,
            ..policy()
        },
    )
    .await;
    let pk = Keys::generate().public_key().to_hex();
    set_flag(&env.app, json!({"mode": "dual", "percent": 100})).await;
    let (answer, path) = v1(&env.app, &pk, "days=30").await;
    assert_eq!(path, "legacy", "said as it was");
    assert_eq!(answer.reactions, Some(0));
    assert_eq!(drift(&env.app).await.observations, 0, "nothing compared");
    set_flag(&env.app, json!({"mode": "v2"})).await;
    let got = get(&env.app, &format!("/api/v1/analytics/{pk}?days=30")).await;
    assert_refused(
        (got.0, &got.1),
        StatusCode::BAD_REQUEST,
        "ask for fewer days",
    );
}

/// A pubkey inside the first `percent` cohorts of the v1 flag, and one outside.
fn pubkeys_around(percent: u8) -> (String, String) {
    let mut inside = None;
    let mut outside = None;
    while inside.is_none() || outside.is_none() {
        let pk = Keys::generate().public_key().to_hex();
        if cohort(V1_SUMMARY_FLAG, &pk) < percent {
            inside.get_or_insert(pk);
        } else {
            outside.get_or_insert(pk);
        }
    }
    (inside.unwrap(), outside.unwrap())
}

#[tokio::test]
async fn flips_reach_two_instances_without_a_restart_and_roll_back_in_one_step() {
    let env = setup_with(500, policy()).await;
    let (a, b) = (env.app.clone(), second_instance(&env));
    let (inside, outside) = pubkeys_around(10);
    let paths = async |app: &axum::Router| {
        (
            v1(app, &inside, "days=7").await.1,
            v1(app, &outside, "days=7").await.1,
        )
    };
    let legacy = ("legacy".to_owned(), "legacy".to_owned());
    assert_eq!(paths(&a).await, legacy);
    assert_eq!(paths(&b).await, legacy, "b holds the flags now");
    let steps = [
        (json!({"mode": "v2", "percent": 10}), ("v2", "legacy")),
        (json!({"percent": 100}), ("v2", "v2")),
        (json!({"mode": "legacy"}), ("legacy", "legacy")),
        (json!({"mode": "dual", "percent": 10}), ("dual", "legacy")),
        (json!({"deny": [inside.clone()]}), ("legacy", "legacy")),
        (
            json!({"deny": [], "allow": [outside.clone()]}),
            ("dual", "dual"),
        ),
    ];
    for (change, (want_inside, want_outside)) in steps {
        let flag = set_flag(&a, change.clone()).await;
        let want = (want_inside.to_owned(), want_outside.to_owned());
        // The instance that made the change answers by it at once; the other once its
        // copy is a TTL old (`propagation_seconds`).
        assert_eq!(paths(&a).await, want, "{change} on a; flag {flag}");
        tokio::time::sleep(TTL + Duration::from_millis(50)).await;
        assert_eq!(paths(&b).await, want, "{change} reached b");
    }
    let flags = get_ok(&b, "/api/v2/admin/flags").await;
    assert_eq!(flags["propagation_seconds"], json!(TTL.as_secs_f64()));
    assert_eq!(
        flags["flags"][0]["revision"],
        json!(7),
        "six changes after the first"
    );
    let changes: i64 = env
        .db
        .conn()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM rollout_flag_changes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(changes, 6, "every change recorded");
}

#[tokio::test]
async fn bad_flag_changes_and_v1_requests_get_problems() {
    let env = setup_with(500, policy()).await;
    let pk = Keys::generate().public_key().to_hex();
    for (query, says) in [
        ("days=0", "days=0 is not between 1 and 3653"),
        ("days=7&since=1", "not both"),
        ("until=5", "until= needs since="),
        ("since=10&until=5", "must be before"),
        ("days=-1", "not a whole number"),
        ("window=7d", "unknown query parameter"),
    ] {
        let (status, body) = get(&env.app, &format!("/api/v1/analytics/{pk}?{query}")).await;
        assert_refused((status, &body), StatusCode::BAD_REQUEST, says);
    }
    for (change, status, says) in [
        (
            json!({"percent": 101}),
            StatusCode::BAD_REQUEST,
            "percent=101",
        ),
        (
            json!({"mode": "all"}),
            StatusCode::BAD_REQUEST,
            "unknown variant",
        ),
        (
            json!({"allow": ["nope"]}),
            StatusCode::BAD_REQUEST,
            "pubkey",
        ),
        (json!({"colour": "red"}), StatusCode::BAD_REQUEST, "colour"),
        (
            json!([null, null]),
            StatusCode::BAD_REQUEST,
            "body must be {",
        ),
    ] {
        let got = call(
            &env.app,
            "PATCH",
            &format!("/api/v2/admin/flags/{V1_SUMMARY_FLAG}"),
            Some(&change),
        )
        .await;
        assert_refused((got.0, &got.1), status, says);
    }
    let got = call(
        &env.app,
        "PATCH",
        "/api/v2/admin/flags/no-such-flag",
        Some(&json!({"mode": "v2"})),
    )
    .await;
    assert_refused((got.0, &got.1), StatusCode::NOT_FOUND, "no flag");
    let unchanged = get_ok(&env.app, "/api/v2/admin/flags").await;
    assert_eq!(
        unchanged["flags"][0]["revision"],
        json!(1),
        "nothing changed"
    );
}

/// The router served on a loopback port, as a deployed instance is reached.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_ofrep_provider_sees_a_flip_within_the_flag_ttl() {
    let env = setup_with(500, policy()).await;
    let other = serve(second_instance(&env)).await;
    let (inside, outside) = pubkeys_around(50);
    let provider = open_feature_ofrep::OfrepProvider::new(open_feature_ofrep::OfrepOptions {
        base_url: other.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let evaluate = async |pk: &str| {
        let context = EvaluationContext::default().with_targeting_key(pk);
        provider
            .resolve_string_value(V1_SUMMARY_FLAG, &context)
            .await
            .map(|r| (r.value, r.variant))
    };
    let legacy = ("legacy".to_owned(), Some("legacy".to_owned()));
    assert_eq!(evaluate(&inside).await.unwrap(), legacy);
    set_flag(&env.app, json!({"mode": "v2", "percent": 50})).await;
    tokio::time::sleep(TTL + Duration::from_millis(50)).await;
    let v2 = ("v2".to_owned(), Some("v2".to_owned()));
    assert_eq!(evaluate(&inside).await.unwrap(), v2, "within the TTL");
    assert_eq!(evaluate(&outside).await.unwrap(), legacy);
    // The provider's errors, from OFREP's bodies.
    let none = provider
        .resolve_string_value(V1_SUMMARY_FLAG, &EvaluationContext::default())
        .await
        .unwrap_err();
    assert_eq!(none.code, open_feature::EvaluationErrorCode::InvalidContext);
    let missing = provider
        .resolve_string_value(
            "no-such-flag",
            &EvaluationContext::default().with_targeting_key(inside.as_str()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        missing.code,
        open_feature::EvaluationErrorCode::FlagNotFound
    );
}

#[tokio::test]
async fn bulk_evaluation_is_polled_with_etags_and_errors_are_ofreps() {
    let env = setup_with(500, policy()).await;
    let base = serve(env.app.clone()).await;
    let client = reqwest::Client::new();
    let pk = Keys::generate().public_key();
    let bulk = async |body: String, etag: Option<&str>| {
        let mut request = client
            .post(format!("{base}/ofrep/v1/evaluate/flags"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(tag) = etag {
            request = request.header("if-none-match", tag);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let tag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        (status.as_u16(), tag, text)
    };
    let context = json!({"context": {"targetingKey": pk.to_hex()}}).to_string();
    let (status, tag, body) = bulk(context.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    let flags: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(flags["flags"][0]["key"], json!(V1_SUMMARY_FLAG));
    assert_eq!(flags["flags"][0]["value"], json!("legacy"));
    let tag = tag.unwrap();
    assert_eq!(bulk(context.clone(), Some(&tag)).await.0, 304, "unchanged");
    set_flag(
        &env.app,
        json!({"mode": "v2", "allow": [pk.to_bech32().unwrap()]}),
    )
    .await;
    let (status, new_tag, body) = bulk(context.clone(), Some(&tag)).await;
    assert_eq!(status, 200, "changed for this pubkey: {body}");
    assert_ne!(new_tag.unwrap(), tag);
    let flags: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(flags["flags"][0]["value"], json!("v2"));
    assert_eq!(flags["flags"][0]["reason"], json!("TARGETING_MATCH"));
    for (body, code) in [
        ("{".to_owned(), "PARSE_ERROR"),
        ("{}".to_owned(), "TARGETING_KEY_MISSING"),
        (
            json!({"context": {"targetingKey": "nope"}}).to_string(),
            "INVALID_CONTEXT",
        ),
        (json!({"context": 5}).to_string(), "INVALID_CONTEXT"),
    ] {
        let (status, _, text) = bulk(body.clone(), None).await;
        assert_eq!(status, 400, "{body}: {text}");
        let failure: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(failure["errorCode"], json!(code), "{body}: {text}");
    }
    // A body over the limit: a problem body, as on every route.
    let (status, _, text) = bulk("x".repeat(3_000_000), None).await;
    assert_eq!(status, 413, "{text}");
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["status"], json!(413), "{text}");
    let config: Value = serde_json::from_str(
        &client
            .get(format!("{base}/ofrep/v1/configuration"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["capabilities"]["cacheInvalidation"]["polling"]["minPollingIntervalMs"],
        json!(TTL.as_millis())
    );
    let mode = Mode::parse(flags["flags"][0]["variant"].as_str().unwrap()).unwrap();
    assert_eq!(mode, Mode::V2);
}
