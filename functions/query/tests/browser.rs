//! The gateway as a browser app on another origin meets it: CORS preflights and headers for
//! the configured origins only, compressed answers, `ETag` revalidation and
//! `Cache-Control` that says what each answer is.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use query::browser::CorsOrigins;
use query::{AccessConfig, AdminAccess, QueryPolicy};
use serde_json::Value;
use tower::ServiceExt;

use common::*;

const APP: &str = "https://app.example";
const PK: &str = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";

async fn env_with(cors: &str) -> Env {
    setup_as(
        20_000,
        QueryPolicy::default(),
        AccessConfig {
            cors: CorsOrigins::parse(cors).unwrap(),
            ..AdminAccess::Open.into()
        },
    )
    .await
}

/// `method` `uri` with `headers`: the status, the headers and the body's bytes as sent.
async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, wanted: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap()
            .split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(wanted))
    })
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_may_call_and_read_and_no_other_may() {
    let env = env_with(&format!("{APP}, http://127.0.0.1:5173")).await;
    let summary = format!("/api/v2/analytics/users/{PK}/summary?window=24h");
    let preflight = |origin: &'static str| {
        let (app, uri) = (env.app.clone(), summary.clone());
        async move {
            send(
                &app,
                "OPTIONS",
                &uri,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
            )
            .await
        }
    };
    let (status, headers, _) = preflight(APP).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    assert!(header_has(
        &headers,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "authorization"
    ));
    assert!(header_has(
        &headers,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "GET"
    ));
    assert!(headers.contains_key(header::ACCESS_CONTROL_MAX_AGE));
    let (_, headers, _) = preflight("https://evil.example").await;
    assert!(
        !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "{headers:?}"
    );

    // The call itself: allowed, its rate-limit and id headers readable by the script.
    let (status, headers, _) = send(&env.app, "GET", &summary, &[("origin", APP)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    assert!(header_has(&headers, header::VARY, "origin"), "{headers:?}");
    for exposed in ["x-request-id", "ratelimit-remaining", "retry-after", "etag"] {
        assert!(
            header_has(&headers, header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed),
            "{exposed}: {headers:?}"
        );
    }
    // A refusal too, so the page can read the problem.
    let (status, headers, body) = send(
        &env.app,
        "GET",
        &format!("/api/v2/analytics/users/{PK}/summary?window=2w"),
        &[("origin", APP)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert!(problem["detail"].is_string());

    // Any origin, when the deployment says so.
    let any = env_with("*").await;
    let (_, headers, _) = send(
        &any.app,
        "GET",
        "/api/v2/analytics/metrics",
        &[("origin", "https://elsewhere.example")],
    )
    .await;
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn without_origins_configured_there_is_no_cors_and_a_preflight_is_a_problem() {
    let env = setup(20_000).await;
    let (status, headers, _) = send(
        &env.app,
        "GET",
        "/api/v2/analytics/metrics",
        &[("origin", APP)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    let (status, headers, body) = send(
        &env.app,
        "OPTIONS",
        "/api/v2/analytics/metrics",
        &[("origin", APP), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert!(problem["detail"].is_string(), "{problem:#}");
    // A body that is not JSON where JSON is read: 415, a problem too.
    let (status, headers, body) = send(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("route"),
        "{problem:#}"
    );
}

#[tokio::test]
async fn answers_are_compressed_revalidated_and_say_how_long_they_keep() {
    let env = setup(20_000).await;
    let doc = "/api/v2/analytics/openapi.json";
    let (status, headers, plain) = send(&env.app, "GET", doc, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::CONTENT_ENCODING));
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=3600");
    let tag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");

    // gzip and br, each at least 4 times smaller, each the same document once decoded.
    let (_, headers, gz) = send(&env.app, "GET", doc, &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert!(header_has(&headers, header::VARY, "accept-encoding"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
    assert!(
        gz.len() * 4 < plain.len(),
        "{} of {}",
        gz.len(),
        plain.len()
    );
    let (_, headers, br) = send(&env.app, "GET", doc, &[("accept-encoding", "br")]).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "br");
    assert!(
        br.len() * 4 < plain.len(),
        "{} of {}",
        br.len(),
        plain.len()
    );
    println!(
        "openapi.json: {} bytes, gzip {}, br {}",
        plain.len(),
        gz.len(),
        br.len()
    );

    // Asked again with its tag: 304, no body, the same tag.
    let (status, headers, body) =
        send(&env.app, "GET", doc, &[("if-none-match", tag.as_str())]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers[header::ETAG], tag.as_str());
    let (status, _, _) = send(&env.app, "GET", doc, &[("if-none-match", "W/\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);

    // An answer over a megabyte (a day of minutes, every metric) is sent whole and
    // compressed, without a tag.
    let series = format!("/api/v2/analytics/users/{PK}/timeseries?window=24h&granularity=minute");
    let (status, headers, big) = send(&env.app, "GET", &series, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(big.len() > 1 << 20, "{} bytes", big.len());
    assert!(!headers.contains_key(header::ETAG));
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=5");
    let (_, headers, big_gz) = send(&env.app, "GET", &series, &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    println!(
        "24h of minutes, every metric: {} bytes, gzip {}",
        big.len(),
        big_gz.len()
    );

    // Answers keep a few seconds, public to anonymous callers and private to those who
    // sent credentials; refusals, admin reads and jobs accepted are not kept.
    let summary = format!("/api/v2/analytics/users/{PK}/summary?window=24h");
    let (_, headers, _) = send(&env.app, "GET", &summary, &[]).await;
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=5");
    let (status, made) = call_as(
        &env.app,
        "POST",
        "/api/v2/admin/keys",
        Some(&serde_json::json!({ "name": "browser", "scopes": ["read"] })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made:#}");
    let bearer = format!("Bearer {}", made["key"].as_str().unwrap());
    let (status, headers, _) = send(
        &env.app,
        "GET",
        &summary,
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "private, max-age=5");
    // A job accepted says when to look at it first, and is not kept.
    let (status, headers, accepted) = call_full(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&serde_json::json!({ "route": "summary", "pubkey": PK })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    assert_eq!(
        headers[header::RETRY_AFTER],
        query::browser::JOB_POLL_AFTER_SECS.to_string().as_str()
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    for (method, uri) in [
        (
            "GET",
            format!("/api/v2/analytics/users/{PK}/summary?window=2w"),
        ),
        ("GET", "/api/v2/admin/plugins".to_owned()),
        ("GET", "/health".to_owned()),
        ("GET", "/no/such/route".to_owned()),
    ] {
        let (_, headers, _) = send(&env.app, method, &uri, &[]).await;
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{method} {uri}");
    }
}

/// The dashboard (`NA_DASHBOARD_DIR`): its page at `/` and `/u/{npub}`, its assets, under a
/// policy that allows its own origin only; a missing file is a problem; without a
/// directory there is no page.
#[tokio::test]
async fn the_dashboard_is_served_from_its_directory_under_its_policy() {
    let env = env_with("").await;
    let (status, _, _) = send(&env.app, "GET", "/", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no dashboard configured");

    let dir = std::env::temp_dir().join(format!("na-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>d</title>").unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    let lookup = |name: &str| (name == "NA_DASHBOARD_DIR").then(|| dir.display().to_string());
    let found = query::dashboard::dir_from_lookup(&lookup).unwrap();
    let (queue, _jobs) = na_queue::InProcessQueue::new(3);
    let app = query::app(
        query::AppState::new(
            env.db.clone(),
            std::sync::Arc::new(queue),
            AdminAccess::Open,
            env.registry.clone(),
        )
        .with_dashboard(found),
    );
    for path in [
        "/",
        "/u/npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6",
    ] {
        let (status, headers, body) = send(&app, "GET", path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, b"<!doctype html><title>d</title>", "{path}");
        assert!(
            header_has(&headers, header::CONTENT_TYPE, "text/html"),
            "{path}"
        );
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.starts_with("default-src 'self'"), "{policy}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let (status, headers, _) = send(&app, "GET", "/assets/app.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header_has(
        &headers,
        header::CONTENT_TYPE,
        "text/javascript"
    ));
    let (status, headers, body) = send(&app, "GET", "/assets/nope.js", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(header_has(
        &headers,
        header::CONTENT_TYPE,
        "application/problem+json"
    ));
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 404);
    // The API beside it is unchanged.
    let (status, _, _) = send(&app, "GET", "/api/v2/analytics/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);

    // A directory without a built page is refused at start.
    std::fs::remove_file(dir.join("index.html")).unwrap();
    let err = query::dashboard::dir_from_lookup(&lookup).unwrap_err();
    assert!(err.contains("no index.html"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
