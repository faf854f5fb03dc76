//! The harness of the API tests: a fresh database with core@1 active, events stored and
//! compacted, requests sent as API Gateway events through lambda_http's conversion and the
//! router, every response checked against the OpenAPI document, and from-scratch values
//! computed natively over the stored facts.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use na_compaction::{Compactor, CompactorConfig, RecomputeProgress};
use na_metrics_abi::{Aggregation, Plugin};
use na_plugin_host::{HostConfig, PluginHost};
use na_plugin_registry::Registry;
use na_plugin_registry::{FactMapper, NativeMapper};
use na_queue::{InProcessQueue, InProcessReceiver};
use na_storage::Db;
use na_storage::facts;
use na_storage::facts::FactRow;
use nostr::{JsonUtil, PublicKey};
use query::{AccessConfig, AdminAccess, AppState, OPENAPI, QueryPolicy, app};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Env {
    pub app: axum::Router,
    pub db: Db,
    pub registry: Registry,
    pub compactor: Arc<Compactor>,
    /// The router's engine (its plugin set can be given test mappers).
    pub engine: Arc<na_analytics::Engine>,
    pub jobs: InProcessReceiver,
}

/// A fresh database with core@1 published, recomputed (over no facts) and active.
pub async fn setup(batch_rows: i64) -> Env {
    setup_with(batch_rows, QueryPolicy::default()).await
}

pub async fn setup_with(batch_rows: i64, policy: QueryPolicy) -> Env {
    setup_as(batch_rows, policy, AdminAccess::Open.into()).await
}

/// [`setup_with`], callers let in as `access` says.
pub async fn setup_as(batch_rows: i64, policy: QueryPolicy, access: AccessConfig) -> Env {
    let url = na_test_support::fresh_database_url().await;
    setup_at(&url, batch_rows, policy, access).await
}

/// [`setup_as`] on the database at `url` (created when missing).
pub async fn setup_at(
    url: &str,
    batch_rows: i64,
    policy: QueryPolicy,
    access: AccessConfig,
) -> Env {
    let url = url.to_owned();
    na_storage::migrate(&url, na_storage::CreateDatabase::IfMissing)
        .await
        .unwrap();
    let db = query::connect_db(&url, 4).await.unwrap();
    assert_eq!(
        db.relay_id("ws://test").await.unwrap(),
        1,
        "events are stored as from relay 1"
    );
    let host = Arc::new(PluginHost::new(HostConfig::default()).unwrap());
    let registry = Registry::new(db.clone(), host.clone());
    publish(&registry, "core-metrics").await;
    let compactor = Arc::new(Compactor::new(
        db.clone(),
        host,
        CompactorConfig {
            batch_rows,
            ..Default::default()
        },
    ));
    let (tx, _) = tokio::sync::watch::channel(RecomputeProgress::default());
    compactor.recompute("core", 1, &tx).await.unwrap();
    db.activate_plugin("core", 1).await.unwrap();
    let (queue, jobs) = InProcessQueue::new(3);
    let state = AppState::new(db.clone(), Arc::new(queue), access, registry.clone());
    let state = state.with_policy(policy);
    let engine = state.engine.clone();
    let app = app(state);
    Env {
        app,
        db,
        registry,
        compactor,
        engine,
        jobs,
    }
}

pub async fn publish(registry: &Registry, component: &str) {
    let bytes = na_test_support::built_component(component).unwrap_or_else(|e| panic!("{e}"));
    registry.publish(bytes, "tests").await.unwrap();
}

pub async fn store_events(db: &Db, events: &[&nostr::Event]) {
    let now = Utc::now().timestamp();
    for chunk in events.chunks(500) {
        let batch =
            na_ingest::prepare::batch_from_json(chunk.iter().map(|e| e.as_json()), 1, now).unwrap();
        db.store_batch(&batch).await.unwrap();
    }
}

/// Compaction until nothing is left (other tests' transactions can hold rows back a moment).
pub async fn compact_all(compactor: &Compactor) {
    let report = compactor.catch_up(Duration::from_secs(60)).await.unwrap();
    assert!(report.caught_up, "compaction never caught up: {report:?}");
}

// ---- calling the API as API Gateway does, and checking responses against the document --

pub fn openapi() -> Value {
    serde_json::from_str(OPENAPI).unwrap()
}

/// The operation of `doc` whose path template matches `path`.
pub fn operation<'d>(doc: &'d Value, method: &str, path: &str) -> &'d Value {
    let segments: Vec<&str> = path.split('/').collect();
    let (_, item) = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, _)| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || t.starts_with('{'))
        })
        .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
    &item[method.to_lowercase()]
}

/// Fails unless `body` is what the document says `path` answers with `status`.
pub fn check_against_openapi(
    method: &str,
    path: &str,
    status: StatusCode,
    ctype: &str,
    body: &Value,
) {
    let doc = openapi();
    let op = operation(&doc, method, path);
    let response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    let media = response["content"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(m, _)| ctype.starts_with(m.as_str()))
        .unwrap_or_else(|| panic!("{method} {path} {status}: content type {ctype} not documented"));
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": media.1["schema"]["$ref"].as_str().map_or_else(|| "#/$defs/inline".to_owned(), str::to_owned),
        "$defs": { "inline": media.1["schema"].clone() },
        "components": doc["components"].clone(),
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match the document: {errors:#?}\n{body:#}"
    );
}

/// GET `path_and_query` as an API Gateway HTTP API event, through lambda_http's request
/// conversion and the router.
pub async fn get(app: &axum::Router, path_and_query: &str) -> (StatusCode, Value) {
    call(app, "GET", path_and_query, None).await
}

pub async fn call(
    app: &axum::Router,
    method: &str,
    path_and_query: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    call_as(app, method, path_and_query, body, None).await
}

/// [`call`] with `Authorization: <authorization>`.
pub async fn call_as(
    app: &axum::Router,
    method: &str,
    path_and_query: &str,
    body: Option<&Value>,
    authorization: Option<&str>,
) -> (StatusCode, Value) {
    let (status, _, body) = call_full(app, method, path_and_query, body, authorization).await;
    (status, body)
}

/// [`call_as`], with the answer's headers.
pub async fn call_full(
    app: &axum::Router,
    method: &str,
    path_and_query: &str,
    body: Option<&Value>,
    authorization: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut headers = json!({ "accept": "application/json", "host": "api.example",
                              "content-type": "application/json" });
    if let Some(value) = authorization {
        headers["authorization"] = value.into();
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example",
            "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1",
                      "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "26/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_i64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let ctype = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    check_against_openapi(method, path, status, &ctype, &body);
    check_against_api_types(path, status, &body);
    (status, headers, body)
}

/// The body reads back as its route's type in `na_api_types` and writes out again as
/// sent: the types say everything the route answers.
pub fn check_against_api_types(path: &str, status: StatusCode, body: &Value) {
    fn same<T: serde::de::DeserializeOwned + serde::Serialize>(path: &str, body: &Value) {
        let typed: T = serde_json::from_value(body.clone()).unwrap_or_else(|e| {
            panic!(
                "{path}: not a {}: {e}\n{body:#}",
                std::any::type_name::<T>()
            )
        });
        assert_eq!(
            &serde_json::to_value(&typed).unwrap(),
            body,
            "{path}: {} loses or changes a field",
            std::any::type_name::<T>()
        );
    }
    use na_api_types as api;
    if path.starts_with("/ofrep/") {
        // OFREP's own bodies, errors included: the document's schemas hold them.
        return;
    }
    if status.is_client_error() || status.is_server_error() {
        return same::<api::Problem>(path, body);
    }
    if status == StatusCode::ACCEPTED && path.starts_with("/api/v2/analytics/") {
        return same::<api::JobAccepted>(path, body);
    }
    let analytics = |route: &str| path.starts_with("/api/v2/analytics/") && path.ends_with(route);
    if path.starts_with("/api/v2/analytics/users/") && analytics("/summary") {
        same::<api::Summary>(path, body);
    } else if path.starts_with("/api/v2/analytics/users/") && analytics("/timeseries") {
        if body.get("t").is_some() {
            same::<api::CompactTimeSeries>(path, body);
        } else {
            same::<api::TimeSeries>(path, body);
        }
    } else if path.starts_with("/api/v2/analytics/users/") && analytics("/breakdown") {
        same::<api::Breakdown>(path, body);
    } else if path.starts_with("/api/v2/analytics/users/") && analytics("/engagers") {
        same::<api::Engagers>(path, body);
    } else if path.starts_with("/api/v2/analytics/users/") && analytics("/notes") {
        same::<api::TopNotes>(path, body);
    } else if path.starts_with("/api/v2/analytics/notes/") {
        same::<api::NoteDrilldown>(path, body);
    } else if path == "/api/v2/analytics/metrics" {
        same::<api::Catalog>(path, body);
    } else if path == "/api/v2/analytics/status" {
        same::<api::Status>(path, body);
    } else if path.starts_with("/api/v1/analytics/") {
        same::<api::AnalyticsV1>(path, body);
    } else if path == "/api/v2/admin/flags" {
        same::<api::Flags>(path, body);
    } else if path.starts_with("/api/v2/admin/flags/") {
        same::<api::Flag>(path, body);
    } else if path == "/api/v2/admin/drift" {
        same::<api::DriftReport>(path, body);
    } else if path == "/health" {
        same::<api::Health>(path, body);
    } else if path == "/api/v2/admin/keys" && status == StatusCode::CREATED {
        same::<api::ApiKeyCreated>(path, body);
    } else if path == "/api/v2/admin/keys" {
        same::<api::ApiKeys>(path, body);
    } else if path.starts_with("/api/v2/admin/keys/") {
        same::<api::ApiKeyInfo>(path, body);
    } else if path.starts_with("/api/v2/analytics/jobs/") && path.ends_with("/result") {
        same::<api::JobResultPage>(path, body);
        same::<api::QueryAnswer>(path, &body["result"]);
    } else if path.starts_with("/api/v2/analytics/jobs/") {
        same::<api::QueryJob>(path, body);
        if !body["result"].is_null() {
            same::<api::QueryAnswer>(path, &body["result"]);
        }
    }
}

pub async fn get_ok(app: &axum::Router, path_and_query: &str) -> Value {
    let (status, body) = get(app, path_and_query).await;
    assert_eq!(status, StatusCode::OK, "{path_and_query}: {body:#}");
    body
}

// ---- the from-scratch answer --------------------------------------------------------

/// Every stored fact.
pub async fn stored_facts(db: &Db) -> Vec<FactRow> {
    facts::all_facts(db).await.unwrap()
}

/// Every contribution core@1 makes to `subject` from the stored facts `keep` selects,
/// computed natively (not through the WASM component the API uses).
pub async fn contributions_from_scratch(
    db: &Db,
    subject: &PublicKey,
    keep: impl Fn(&FactRow) -> bool,
) -> Vec<na_metrics_abi::Contribution> {
    let facts: Vec<_> = stored_facts(db)
        .await
        .iter()
        .filter(|f| keep(f))
        .map(na_plugin_registry::to_fact)
        .collect();
    let mapper = NativeMapper::<core_metrics::Core>::default();
    let mut out = mapper.map(&facts).unwrap().to_vec();
    out.retain(|c| c.subject == subject.to_bytes());
    out
}

/// Each core@1 metric's value over `[from, to)`: sums, distinct keys, gauge levels at `to`.
pub fn expected(
    contributions: &[na_metrics_abi::Contribution],
    from: i64,
    to: i64,
) -> BTreeMap<String, i64> {
    let info = core_metrics::Core::describe();
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    let mut keys: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for m in &info.metrics {
        sums.insert(m.name.clone(), 0);
    }
    for c in contributions {
        let m = &info.metrics[usize::from(c.metric)];
        let inside = (from..to).contains(&c.at);
        match m.aggregation {
            Aggregation::Gauge if c.at < to => *sums.get_mut(&m.name).unwrap() += c.value,
            Aggregation::Distinct if inside => {
                keys.entry(m.name.clone())
                    .or_default()
                    .insert(c.key.clone());
            }
            Aggregation::Count | Aggregation::Sum if inside => {
                *sums.get_mut(&m.name).unwrap() += c.value;
            }
            _ => {}
        }
    }
    for (name, k) in keys {
        sums.insert(name, k.len() as i64);
    }
    sums
}

/// Who a distinct metric of pubkeys counts over `[from, to)`, from scratch: each key (hex)
/// with its contributions.
pub fn engagers_from_scratch(
    contributions: &[na_metrics_abi::Contribution],
    metric: &str,
    from: i64,
    to: i64,
) -> BTreeMap<String, i64> {
    let index = core_metrics::Core::describe()
        .metrics
        .iter()
        .position(|m| m.name == metric)
        .unwrap();
    let mut by_key: BTreeMap<String, i64> = BTreeMap::new();
    for c in contributions {
        if usize::from(c.metric) == index && (from..to).contains(&c.at) {
            *by_key.entry(hex::encode(&c.key)).or_default() += 1;
        }
    }
    by_key
}

/// An engagers answer's list, in its order: (pubkey, contributions).
pub fn listed_engagers(answer: &Value) -> Vec<(String, i64)> {
    answer["engagers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pubkey"].as_str().unwrap().to_owned(),
                e["contributions"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A refusal: `status` with a problem whose `detail` says `says`.
#[track_caller]
pub fn assert_refused(got: (StatusCode, &Value), status: StatusCode, says: &str) {
    let (got_status, problem) = got;
    assert_eq!(got_status, status, "{problem:#}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(says), "{detail:?} should say {says:?}");
}

pub fn ts(v: &Value) -> i64 {
    v.as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap()
        .timestamp()
}

pub fn values(summary: &Value) -> BTreeMap<String, (i64, bool)> {
    summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["metric"].as_str().unwrap().to_owned(),
                (
                    m["value"].as_i64().unwrap_or_default(),
                    m["exact"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

/// The summary equals the from-scratch values over the window it says it answered.
pub async fn assert_summary_is_exact(env: &Env, subject: &PublicKey, query: &str) -> Value {
    let summary = get_ok(
        &env.app,
        &format!(
            "/api/v2/analytics/users/{}/summary?{query}",
            subject.to_hex()
        ),
    )
    .await;
    let (from, to) = (ts(&summary["window"]["from"]), ts(&summary["window"]["to"]));
    let want = expected(
        &contributions_from_scratch(&env.db, subject, |_| true).await,
        from,
        to,
    );
    let got = values(&summary);
    for (metric, (value, exact)) in &got {
        assert!(exact, "{metric} is not exact in {summary:#}");
        assert_eq!(
            Some(value),
            want.get(metric),
            "{metric} over {query}; watermarks {}",
            summary["watermarks"]
        );
    }
    assert_eq!(got.len(), want.len(), "every active metric answers");
    summary
}

pub fn small_dataset() -> na_datagen::Dataset {
    na_datagen::generate(
        na_datagen::Tier::Small,
        7,
        Utc::now().timestamp() as u64 - 60,
    )
    .unwrap()
}
