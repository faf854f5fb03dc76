//! The HTTP API through the same router lambda_http runs, against a real PostgreSQL.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use na_queue::{InProcessQueue, InProcessReceiver, JobMessage, Unconfigured};
use na_storage::{Db, IngestBatch, Tally};
use query::{AdminAccess, AppState, app};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn make_app(admin: AdminAccess) -> (axum::Router, Db, InProcessReceiver) {
    let db = Db::connect(&na_test_support::fresh_database_url().await, 2)
        .await
        .unwrap();
    let (queue, rx) = InProcessQueue::new(3);
    (
        app(AppState::new(
            db.clone(),
            Arc::new(queue),
            admin,
            na_plugin_registry::Registry::new(
                db.clone(),
                Arc::new(
                    na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::from_lookup(
                        &|_| None,
                    ))
                    .unwrap(),
                ),
            ),
        )),
        db,
        rx,
    )
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    auth: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = auth {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.unwrap_or("").to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        ctype,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const NPUB: &str = "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6";
const HEX: &str = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let (app, _db, _rx) = make_app(AdminAccess::Open).await;
    let ids: Vec<String> = futures_util::future::join_all((0..2).map(|_| {
        app.clone()
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
    }))
    .await
    .into_iter()
    .map(|r| {
        r.unwrap().headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    })
    .collect();
    assert_eq!(ids[0].len(), 36, "a UUID: {ids:?}");
    assert_ne!(ids[0], ids[1], "one per request");
    // A caller's own id is kept.
    let res = app
        .clone()
        .oneshot(
            Request::get("/nope")
                .header("x-request-id", "caller-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "caller-1");
}

#[tokio::test]
async fn concurrent_requests_never_wait_on_each_others_connections() {
    // A pool of two, four requests at once: a handler that held one connection while it
    // waited for another would wait out the pool's timeout and answer 503.
    let (app, _db, _rx) = make_app(AdminAccess::Open).await;
    for path in [
        "/health",
        "/api/v2/analytics/status",
        "/api/v2/analytics/metrics",
    ] {
        let started = std::time::Instant::now();
        let answers = futures_util::future::join_all((0..4).map(|_| {
            app.clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        }))
        .await;
        for a in answers {
            assert_eq!(a.unwrap().status(), StatusCode::OK, "{path}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{path} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn health_and_ingest_status() {
    let (app, db, _rx) = make_app(AdminAccess::Open).await;
    assert_eq!(
        call(&app, "GET", "/health", None, None).await.2,
        json!({ "status": "ok", "components": [] })
    );
    let relay = db.relay_id("ws://relay.test").await.unwrap();
    let batch = IngestBatch {
        rejected: vec![Tally {
            relay_id: relay,
            outcome: "malformed",
            count: 3,
        }],
        ..Default::default()
    };
    db.store_batch(&batch).await.unwrap();
    let (status, _, body) = call(&app, "GET", "/api/v2/analytics/status", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["relays"][0]["url"], "ws://relay.test");
    assert_eq!(body["relays"][0]["counters"]["malformed"], 3);
    assert!(body["relays"][0]["watermark"].is_null());
}

#[tokio::test]
async fn a_backfill_is_recorded_and_enqueued() {
    let (app, db, rx) = make_app(AdminAccess::Open).await;
    let (status, _, body) = call(
        &app,
        "POST",
        "/api/v2/admin/backfills",
        Some(&json!({ "pubkey": NPUB }).to_string()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id: uuid::Uuid = body["job_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        rx.recv().await.unwrap().message,
        JobMessage::Backfill { job_id: id }
    );
    let job = db.job(id).await.unwrap();
    assert_eq!(job.params["pubkey"], HEX, "npub normalized to hex");
    let (status, _, body) = call(
        &app,
        "GET",
        body["status_url"].as_str().unwrap(),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "queued");
}

#[tokio::test]
async fn bad_input_gets_a_problem_body_never_a_500() {
    let (app, _db, _rx) = make_app(AdminAccess::Open).await;
    let cases: &[(&str, &str, Option<&str>, StatusCode, &str)] = &[
        (
            "POST",
            "/api/v2/admin/backfills",
            Some("{not json"),
            StatusCode::BAD_REQUEST,
            "body must be",
        ),
        (
            "POST",
            "/api/v2/admin/backfills",
            Some(r#"{"pubkey":"abc"}"#),
            StatusCode::BAD_REQUEST,
            "not a hex public key",
        ),
        (
            "POST",
            "/api/v2/admin/backfills",
            Some(r#"{"pubkey":"x","extra":1}"#),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            "POST",
            "/api/v2/admin/backfills",
            Some(r#"{"pubkey":1}"#),
            StatusCode::BAD_REQUEST,
            "body must be",
        ),
        (
            "GET",
            "/api/v2/admin/jobs/not-a-uuid",
            None,
            StatusCode::BAD_REQUEST,
            "not a UUID",
        ),
        (
            "GET",
            "/api/v2/admin/jobs/00000000-0000-0000-0000-000000000000",
            None,
            StatusCode::NOT_FOUND,
            "no job",
        ),
        (
            "GET",
            "/nowhere",
            None,
            StatusCode::NOT_FOUND,
            "no such route",
        ),
    ];
    for (method, uri, body, want, says) in cases {
        let (status, ctype, problem) = call(&app, method, uri, *body, None).await;
        assert_eq!(status, *want, "{method} {uri} {body:?}: {problem}");
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(problem["status"], want.as_u16());
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn admin_routes_need_the_token_where_one_is_set() {
    let (app, _db, _rx) = make_app(AdminAccess::Token("s3cret".into())).await;
    let body = json!({ "pubkey": HEX }).to_string();
    // No credential: 401, saying which would work.
    let (status, _, problem) =
        call(&app, "POST", "/api/v2/admin/backfills", Some(&body), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("API key with the admin scope"),
        "{problem:#}"
    );
    // The wrong one (a prefix too, or a longer one): 401, a credential that does not check
    // out.
    for auth in ["wrong", "s3cre", "s3cret!"] {
        let (status, _, problem) = call(
            &app,
            "POST",
            "/api/v2/admin/backfills",
            Some(&body),
            Some(auth),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert!(
            problem["detail"].as_str().unwrap().contains("ADMIN_TOKEN"),
            "{problem:#}"
        );
    }
    // The challenge names both schemes.
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v2/admin/plugins")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains("Bearer") && challenge.contains("Nostr"),
        "{challenge}"
    );
    // The scheme in any case.
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/api/v2/admin/backfills")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, "bearer s3cret")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    // The caller is checked before a body is read: a 17 MiB upload without a credential is
    // a 401, not a 413.
    let (status, _) = call_bytes(
        &app,
        "/api/v2/admin/plugins?published_by=x",
        vec![0; 17 << 20],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/v2/admin/backfills",
            Some(&body),
            Some("s3cret")
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    // Without a bootstrap token, admin is by admin keys only: the token is refused.
    let (keys_only, _db, _rx) = make_app(AdminAccess::KeysOnly).await;
    let (status, _, problem) = call(
        &keys_only,
        "POST",
        "/api/v2/admin/backfills",
        Some(&body),
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(problem["detail"].as_str().unwrap().contains("API key"));
}

#[tokio::test]
async fn no_queue_means_503_not_500() {
    let db = Db::connect(&na_test_support::fresh_database_url().await, 2)
        .await
        .unwrap();
    let registry = na_plugin_registry::Registry::new(
        db.clone(),
        Arc::new(
            na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::from_lookup(&|_| None))
                .unwrap(),
        ),
    );
    let app = app(AppState::new(
        db.clone(),
        Arc::new(Unconfigured),
        AdminAccess::Open,
        registry.clone(),
    ));
    let (status, _, problem) = call(
        &app,
        "POST",
        "/api/v2/admin/backfills",
        Some(&json!({ "pubkey": HEX }).to_string()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    // A recompute the queue refuses, likewise; and no job row claims to be queued.
    let component =
        na_test_support::built_component("likes-metrics").unwrap_or_else(|e| panic!("{e}"));
    registry.publish(component, "tests").await.unwrap();
    let (status, _, problem) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/2/recompute",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    let conn = db.conn().await.unwrap();
    let states: Vec<(String, String)> = conn
        .query("SELECT kind, state FROM jobs ORDER BY kind", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        states,
        [
            ("backfill".to_owned(), "failed".to_owned()),
            ("recompute".to_owned(), "failed".to_owned())
        ]
    );
}

/// A request with a raw body (a WASM component).
async fn call_bytes(app: &axum::Router, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/wasm")
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn plugins_are_published_listed_activated_and_retired_over_http() {
    let (app, db, rx) = make_app(AdminAccess::Open).await;
    let component =
        na_test_support::built_component("likes-metrics").unwrap_or_else(|e| panic!("{e}"));
    let publish = "/api/v2/admin/plugins?published_by=team-a";

    let (status, created) = call_bytes(&app, publish, component.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "shadow");
    assert_eq!(
        created["description"]["metrics"][0]["id"],
        "likes_received@2"
    );
    let (status, _) = call_bytes(&app, publish, component.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same artifact again changes nothing"
    );

    let problems: [(&str, &str, Vec<u8>, StatusCode, &str); 4] = [
        (
            "not wasm",
            publish,
            b"hello".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a loadable WASM component",
        ),
        (
            "empty",
            publish,
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "WASM component",
        ),
        (
            "anonymous",
            "/api/v2/admin/plugins",
            component.clone(),
            StatusCode::BAD_REQUEST,
            "published_by",
        ),
        (
            "not recomputed",
            "/api/v2/admin/plugins/likes/2/activate",
            Vec::new(),
            StatusCode::CONFLICT,
            "recompute",
        ),
    ];
    for (what, uri, body, want, words) in problems {
        let (status, problem) = call_bytes(&app, uri, body).await;
        assert_eq!(status, want, "{what}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(words),
            "{what}: {problem}"
        );
    }
    let (status, _, problem) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/two/activate",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _, _) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/nope/1/retire",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The recompute job is recorded and enqueued (the jobs tests run it).
    let (status, _, job) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/2/recompute",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id: uuid::Uuid = job["job_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        rx.recv().await.unwrap().message,
        JobMessage::Recompute { job_id: id }
    );
    let row = db.job(id).await.unwrap();
    assert_eq!(
        (row.kind.as_str(), &row.params),
        ("recompute", &json!({ "plugin": "likes", "version": 2 }))
    );
    let (status, _, _) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/9/recompute",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    db.mark_plugin_recomputed("likes", 2).await.unwrap();
    let (status, _, active) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/2/activate",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, active["state"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    let (status, _, problem) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/2/recompute",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _, retired) = call(
        &app,
        "POST",
        "/api/v2/admin/plugins/likes/2/retire",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, retired["state"].as_str()),
        (StatusCode::OK, Some("retired"))
    );
    let (status, _, listed) = call(&app, "GET", "/api/v2/admin/plugins", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["plugins"].as_array().unwrap().len(), 1);

    let (locked, _, _) = make_app(AdminAccess::Token("s3cret".into())).await;
    let (status, _) = call_bytes(&locked, publish, component).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "publishing is an admin route"
    );
}

#[tokio::test]
async fn refusals_at_the_http_level_are_problem_bodies_too() {
    let (app, _db, _rx) = make_app(AdminAccess::Open).await;
    let send = |method: &'static str, uri: String, body: Vec<u8>, header: Option<String>| {
        let app = app.clone();
        async move {
            let mut req = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(h) = header {
                req = req.header("x-padding", h);
            }
            let res = app
                .oneshot(req.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = res.status();
            let ctype = res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            let problem: Value = serde_json::from_slice(&bytes).unwrap();
            (status, ctype, problem)
        }
    };
    let long_query = format!("/health?{}", "x".repeat(9_000));
    let big_json = format!(
        "{{\"route\":\"summary\",\"pad\":\"{}\"}}",
        "x".repeat(3 << 20)
    );
    for (status, ctype, problem, want) in [
        {
            let (s, c, p) = send("DELETE", "/health".into(), vec![], None).await;
            (s, c, p, StatusCode::METHOD_NOT_ALLOWED)
        },
        {
            let (s, c, p) = send(
                "POST",
                "/api/v2/analytics/jobs".into(),
                big_json.into_bytes(),
                None,
            )
            .await;
            (s, c, p, StatusCode::PAYLOAD_TOO_LARGE)
        },
        {
            let (s, c, p) = send("GET", long_query, vec![], None).await;
            (s, c, p, StatusCode::URI_TOO_LONG)
        },
        {
            let (s, c, p) = send("GET", "/health".into(), vec![], Some("y".repeat(40_000))).await;
            (s, c, p, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        },
    ] {
        assert_eq!(status, want, "{problem}");
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(problem["status"], want.as_u16());
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if want == StatusCode::PAYLOAD_TOO_LARGE {
            let limit = query::guards::MAX_JSON_BODY_BYTES.to_string();
            assert!(
                problem["detail"].as_str().unwrap().contains(&limit),
                "{problem}"
            );
        }
    }
}
