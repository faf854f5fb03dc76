//! Hostile input, generated: whatever a caller sends to any route — instants over the whole
//! `i64` range, far-future and inverted windows, unknown names, huge numbers, garbage in
//! every parameter and in the path — the answer is a 2xx or a 4xx problem body that the
//! OpenAPI document describes, within a time bound: never a hang, a panic or a 5xx.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;

use common::*;

/// Cases per route; each is a real request against a database with data in it.
const CASES: usize = 150;

/// The longest any one request may take, in a debug build on a busy machine.
const BOUND: Duration = Duration::from_secs(20);

fn instant() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-2_000_000_000i64..5_000_000_000).prop_map(|n| n.to_string()),
        Just("9000000000000000".to_owned()),
        Just("9000000000086400".to_owned()),
        Just(i64::MIN.to_string()),
        Just(i64::MAX.to_string()),
        Just("0".to_owned()),
        "[0-9]{19,30}",
        (0i32..10_000, 1u32..13, 1u32..29, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z")),
        Just("+262143-12-31T23:59:59Z".to_owned()),
        "\\PC{0,16}",
    ]
    .boxed()
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..200).prop_map(|n| n.to_string()),
        "[0-9]{20,40}",
        "\\PC{0,8}",
    ]
    .boxed()
}

fn word(valid: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(valid).prop_map(str::to_owned),
        1 => "\\PC{0,24}",
    ]
    .boxed()
}

const METRICS: &[&str] = &[
    "reactions_received",
    "unique_engagers",
    "follower_count",
    "zap_msats_received@1",
    "reactions_received@99",
    "reactions_received,follower_count,unique_zappers",
];

/// A query string: any of the parameters the routes take, repeated or not, plus strangers.
fn query() -> BoxedStrategy<Vec<(String, String)>> {
    let param = prop_oneof![
        word(&["24h", "7d", "30d", "90d", "365d", "2w", ""]).prop_map(|v| ("window".into(), v)),
        instant().prop_map(|v| ("from".into(), v)),
        instant().prop_map(|v| ("to".into(), v)),
        word(METRICS).prop_map(|v| ("metrics".into(), v)),
        word(METRICS).prop_map(|v| ("metric".into(), v)),
        word(&["minute", "hour", "day", "month", "week"]).prop_map(|v| ("granularity".into(), v)),
        word(&["content", "class", "lnurl"]).prop_map(|v| ("dimension".into(), v)),
        number().prop_map(|v| ("top".into(), v)),
        word(&["points", "compact", "csv"]).prop_map(|v| ("format".into(), v)),
        ("\\PC{1,8}", "\\PC{0,8}"),
    ];
    proptest::collection::vec(param, 0..5).boxed()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One request must answer within the bound, documented, and never with a 5xx. A request
/// that hangs ends the process: a spinning handler would keep the runtime from shutting down.
async fn probe(env: &Env, method: &'static str, path_and_query: String, body: Option<Value>) {
    let app = env.app.clone();
    let what = format!("{method} {path_and_query} {body:?}");
    let task =
        tokio::spawn(async move { call(&app, method, &path_and_query, body.as_ref()).await });
    let (status, answer) = match tokio::time::timeout(BOUND, task).await {
        Ok(Ok(answered)) => answered,
        Ok(Err(panicked)) => panic!("{what} panicked: {panicked}"),
        Err(_) => {
            eprintln!("{what} took longer than {BOUND:?}: the service hangs on it");
            std::process::exit(1);
        }
    };
    assert!(
        status.is_success() || status.is_client_error(),
        "{what} answered {status}: {answer:#}"
    );
    if status.is_client_error() {
        assert!(answer["detail"].is_string(), "{what}: {answer:#}");
    }
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_request_hangs_panics_or_fails_the_server() {
    let env = setup(20_000).await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    compact_all(&env.compactor).await;
    let target = data.target.to_hex();
    let note = data
        .distinct()
        .iter()
        .find(|e| e.pubkey == data.target && e.kind == nostr::Kind::TextNote)
        .unwrap()
        .id
        .to_hex();
    let mut runner = TestRunner::deterministic();
    let mut sample =
        |s: &BoxedStrategy<Vec<(String, String)>>| s.new_tree(&mut runner).unwrap().current();
    let key = prop_oneof![
        3 => Just(target.clone()),
        1 => "[0-9a-f]{64}",
        1 => "\\PC{1,70}",
    ]
    .boxed();
    let mut keys = TestRunner::deterministic();
    let strategy = query();
    for route in ["summary", "timeseries", "breakdown", "engagers", "note"] {
        for _ in 0..CASES {
            let params = sample(&strategy);
            let qs = params
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let path = if route == "note" {
                let id = if qs.len() % 3 == 0 {
                    note.clone()
                } else {
                    key.new_tree(&mut keys).unwrap().current()
                };
                format!("/api/v2/analytics/notes/{}", encode(&id))
            } else {
                let pk = key.new_tree(&mut keys).unwrap().current();
                format!("/api/v2/analytics/users/{}/{route}", encode(&pk))
            };
            probe(&env, "GET", format!("{path}?{qs}"), None).await;
            // The same parameters as an async job.
            let mut body = serde_json::Map::new();
            body.insert("route".into(), route.into());
            body.insert(
                if route == "note" {
                    "event_id"
                } else {
                    "pubkey"
                }
                .into(),
                if route == "note" {
                    note.clone()
                } else {
                    target.clone()
                }
                .into(),
            );
            for (k, v) in params {
                let value = v.parse::<i64>().map_or(Value::String(v), Value::from);
                body.insert(k, value);
            }
            probe(
                &env,
                "POST",
                "/api/v2/analytics/jobs".into(),
                Some(Value::Object(body)),
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requests_that_stopped_the_service_are_refused_at_once() {
    let env = setup(20_000).await;
    let pk = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
    for qs in [
        "from=9000000000000000&to=9000000000086400",
        "from=-9223372036854775808&to=9223372036854775807",
        "from=0&to=9223372036854775807",
        "from=4102444800&to=4102444801",
        "from=4102444799&to=4102444800",
    ] {
        for route in ["summary", "timeseries", "breakdown", "engagers"] {
            let path = format!(
                "/api/v2/analytics/users/{pk}/{route}?{qs}&metric=reactions_received&dimension=content"
            );
            let path = if route == "breakdown" {
                path
            } else {
                path.replace("&metric=reactions_received&dimension=content", "")
            };
            probe(&env, "GET", path.clone(), None).await;
            let (status, body) = get(&env.app, &path).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status.is_success(),
                "{path}: {status} {body:#}"
            );
        }
    }
    // The far-future window says what is wrong with it.
    let (status, body) = get(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/summary?from=9000000000000000&to=9000000000086400"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("outside the instants answered"),
        "{body:#}"
    );
}

/// `likes@2` as published, until its facts reach `after`: then it fails every batch (as a
/// version that passed its trial and recompute, and breaks on later data, would).
struct BreaksLater {
    inner: na_plugin_registry::NativeMapper<likes_metrics::Likes>,
    after: i64,
}

impl na_plugin_registry::FactMapper for BreaksLater {
    fn info(&self) -> &na_metrics_abi::PluginInfo {
        self.inner.info()
    }

    fn map(
        &self,
        facts: &[na_metrics_abi::Fact],
    ) -> Result<na_metrics_abi::Contributions, na_plugin_host::PluginError> {
        if facts.iter().any(|f| f.created_at >= self.after) {
            return Err(na_plugin_host::PluginError::new(
                "likes@2".into(),
                na_plugin_host::PluginFailure::Trap("unreachable executed".into()),
            ));
        }
        self.inner.map(facts)
    }
}

#[tokio::test]
async fn a_failing_plugin_version_fails_only_its_own_metrics_and_is_quarantined() {
    let env = setup(20_000).await;
    let data = small_dataset();
    let events = data.distinct();
    let (early, late) = events.split_at(events.len() / 2);
    store_events(&env.db, early).await;
    compact_all(&env.compactor).await;
    publish(&env.registry, "likes-metrics").await;
    let (tx, _) = tokio::sync::watch::channel(na_compaction::RecomputeProgress::default());
    env.compactor.recompute("likes", 2, &tx).await.unwrap();
    env.db.activate_plugin("likes", 2).await.unwrap();
    // From here on, likes@2 breaks on anything newer than what it has seen.
    let after = early
        .iter()
        .map(|e| e.created_at.as_secs() as i64)
        .max()
        .unwrap()
        + 1;
    for plugins in [env.compactor.plugins(), env.engine.plugins()] {
        plugins.use_mapper(
            "likes",
            2,
            std::sync::Arc::new(BreaksLater {
                inner: na_plugin_registry::NativeMapper::default(),
                after,
            }),
        );
    }
    store_events(&env.db, late).await;
    let pk = data.target.to_hex();
    let summary_url = format!("/api/v2/analytics/users/{pk}/summary?window=30d");

    // The live delta holds the late facts: likes@2 fails there, core@1 still answers.
    let s = get_ok(&env.app, &summary_url).await;
    let metrics = s["metrics"].as_array().unwrap();
    let likes = metrics
        .iter()
        .find(|m| m["id"] == "likes_received@2")
        .unwrap();
    assert!(
        likes["value"].is_null() && likes["exact"] == false,
        "{likes:#}"
    );
    assert!(
        likes["error"]
            .as_str()
            .unwrap()
            .contains("unreachable executed"),
        "{likes:#}"
    );
    let reactions = metrics
        .iter()
        .find(|m| m["id"] == "reactions_received@1")
        .unwrap();
    assert!(reactions["error"].is_null());
    assert!(reactions["value"].as_i64().unwrap() > 0, "{reactions:#}");
    assert_eq!(s["completeness"]["exact"], false);
    // A series of it alone answers with the error instead of points.
    let series = get_ok(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/timeseries?window=7d&granularity=day&metrics=likes_received,reactions_received"),
    )
    .await;
    assert!(series["series"][0]["error"].is_string(), "{series:#}");
    assert_eq!(series["series"][0]["points"], serde_json::json!([]));
    assert!(series["series"][1]["error"].is_null());

    // Compaction keeps going for core@1; likes@2 fails batch after batch, then is
    // quarantined and no longer run.
    // (Runs until both hold: rows of other tests' transactions, txids being server-wide,
    // can keep a run from taking anything for a moment.)
    let started = std::time::Instant::now();
    let status = loop {
        env.compactor.run(None).await.unwrap();
        let status = get_ok(&env.app, "/api/v2/analytics/status").await;
        let settled = status["compaction"].as_array().unwrap().iter().all(|l| {
            (l["plugin"] == "core@1" && l["rows"] == 0)
                || (l["plugin"] == "likes@2" && l["quarantined_at"].is_string())
        });
        if settled || started.elapsed() > Duration::from_secs(60) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lag = |plugin: &str| {
        status["compaction"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["plugin"] == plugin)
            .unwrap()
            .clone()
    };
    assert_eq!(lag("core@1")["rows"], 0, "core@1 caught up: {status:#}");
    assert!(lag("likes@2")["quarantined_at"].is_string(), "{status:#}");
    assert!(
        lag("likes@2")["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    let catalog = get_ok(&env.app, "/api/v2/analytics/metrics").await;
    let entry = catalog["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "likes_received@2")
        .unwrap()
        .clone();
    assert!(entry["quarantined"]["since"].is_string(), "{entry:#}");
    let s = get_ok(&env.app, &summary_url).await;
    let likes = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "likes_received@2")
        .unwrap()
        .clone();
    assert!(
        likes["error"].as_str().unwrap().contains("quarantined"),
        "{likes:#}"
    );

    // Released: it runs again (and fails again until fixed); releasing twice is a 409.
    let (status, body) = call(
        &env.app,
        "POST",
        "/api/v2/admin/plugins/likes/2/release",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, body) = call(
        &env.app,
        "POST",
        "/api/v2/admin/plugins/likes/2/release",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    let (status, _) = call(
        &env.app,
        "POST",
        "/api/v2/admin/plugins/nope/9/release",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_names_a_stalled_component_and_status_shows_it() {
    let env = setup(20_000).await;
    let (status, body) = get(&env.app, "/health").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    // Compaction reported (setup ran it): working.
    env.compactor.run(None).await.unwrap();
    let (status, body) = get(&env.app, "/health").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["components"][0]["component"], "compaction");
    // Ingest last worked ten minutes ago and has failed since.
    env.db
        .report_health("ingest", Some("no relay is connected (ws://x: refused)"))
        .await
        .unwrap();
    let conn = env.db.conn().await.unwrap();
    conn.execute(
        "UPDATE component_health SET first_at = now() - interval '10 minutes' WHERE component = 'ingest'",
        &[],
    )
    .await
    .unwrap();
    let (status, body) = get(&env.app, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("ingest") && detail.contains("refused"),
        "{detail}"
    );
    let status = get_ok(&env.app, "/api/v2/analytics/status").await;
    let ingest = status["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "ingest")
        .unwrap()
        .clone();
    assert_eq!(ingest["stalled"], true, "{status:#}");
    // It works again: healthy again.
    env.db.report_health("ingest", None).await.unwrap();
    let (status, body) = get(&env.app, "/health").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

#[tokio::test]
async fn a_request_past_its_time_limit_is_a_503_problem() {
    let env = setup_with(
        20_000,
        query::QueryPolicy {
            request_timeout: Duration::from_nanos(1),
            ..query::QueryPolicy::default()
        },
    )
    .await;
    let pk = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
    let (status, body) = get(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/summary?window=30d"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("took longer than"),
        "{body:#}"
    );
}

/// Every statement the query function sends, not only a query's snapshot (the access
/// layer's key and rate-limit lookups, job and key writes, the catalog), runs on
/// connections whose statements stop at the snapshot's limit.
#[tokio::test]
async fn every_statement_of_the_query_path_has_a_time_limit() {
    let env = setup(20_000).await;
    let conn = env.db.conn().await.unwrap();
    let limit: String = conn
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        limit,
        format!("{}s", na_analytics::STATEMENT_TIMEOUT.as_secs())
    );
}

/// SQL in every parameter, every path segment and every body field of every route: each
/// is refused as a value or stored as one, never run. A canary table outlives them all, no
/// payload delays an answer (`pg_sleep`), and the free text that is stored (an API key's
/// name, a plugin's publisher) reads back exactly as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_string_in_every_parameter_reaches_the_database_only_as_a_value() {
    let env = setup(20_000).await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    compact_all(&env.compactor).await;
    let conn = env.db.conn().await.unwrap();
    conn.batch_execute("CREATE TABLE canary (x int); INSERT INTO canary VALUES (1)")
        .await
        .unwrap();
    let pk = data.target.to_hex();
    let payloads = [
        "'; DROP TABLE canary; --",
        "1' OR '1'='1",
        "x'); DROP TABLE canary; --",
        "$$; DROP TABLE canary; $$",
        "\\'; DROP TABLE canary; --",
        "' || (SELECT pg_sleep(5))::text || '",
        "1; SELECT pg_sleep(5)",
        "\"; DROP TABLE canary; --",
        "reactions_received'--",
        "content') OR 1=1 --",
    ];
    let routes: [(&str, &[&str]); 5] = [
        ("summary", &["window", "from", "to", "metrics"]),
        ("engagers", &["window", "from", "to", "metric", "top"]),
        (
            "timeseries",
            &["window", "from", "to", "metrics", "granularity"],
        ),
        (
            "breakdown",
            &["window", "from", "to", "metric", "dimension", "top"],
        ),
        (
            "note",
            &["window", "from", "to", "metrics", "granularity", "top"],
        ),
    ];
    let started = std::time::Instant::now();
    for p in payloads {
        let e = encode(p);
        for (route, params) in routes {
            for param in params {
                let mut query = format!("{param}={e}");
                if route == "breakdown" && *param != "metric" {
                    query.push_str("&metric=reactions_received");
                }
                let path = if route == "note" {
                    format!("/api/v2/analytics/notes/{}?{query}", "a".repeat(64))
                } else {
                    format!("/api/v2/analytics/users/{pk}/{route}?{query}")
                };
                probe(&env, "GET", path, None).await;
            }
        }
        for path in [
            format!("/api/v2/analytics/users/{e}/summary"),
            format!("/api/v2/analytics/users/{e}/engagers"),
            format!("/api/v2/analytics/notes/{e}"),
            format!("/api/v2/analytics/jobs/{e}"),
            format!("/api/v2/admin/jobs/{e}"),
            format!("/api/v2/admin/keys/{e}/revoke"),
            format!("/api/v2/admin/plugins/{e}/1/activate"),
        ] {
            let method = if path.contains("/revoke") || path.contains("/activate") {
                "POST"
            } else {
                "GET"
            };
            probe(&env, method, path, None).await;
        }
        for body in [
            serde_json::json!({ "route": "summary", "pubkey": pk, "metrics": p }),
            serde_json::json!({ "route": "breakdown", "pubkey": pk, "metric": p, "dimension": p }),
            serde_json::json!({ "route": p, "pubkey": p }),
        ] {
            probe(&env, "POST", "/api/v2/analytics/jobs".into(), Some(body)).await;
        }
        probe(
            &env,
            "POST",
            "/api/v2/admin/backfills".into(),
            Some(serde_json::json!({ "pubkey": p })),
        )
        .await;
        // Free text that is stored: it comes back exactly as sent.
        let (status, made) = call(
            &env.app,
            "POST",
            "/api/v2/admin/keys",
            Some(&serde_json::json!({ "name": p, "scopes": ["read"] })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{p}: {made:#}");
        assert_eq!(made["name"], p);
        let stored: String = conn
            .query_one(
                "SELECT name FROM api_keys WHERE id = $1",
                &[&made["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored, p);
    }
    let canary: i32 = conn
        .query_one("SELECT x FROM canary", &[])
        .await
        .expect("the canary table is gone: a payload ran as SQL")
        .get(0);
    assert_eq!(canary, 1);
    // Two payloads sleep 5 s wherever they run; the ~360 requests take seconds in all.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
