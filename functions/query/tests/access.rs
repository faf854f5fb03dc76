//! Access control over HTTP: the access matrix cell by cell (anonymous, NIP-98 users, API
//! keys by scope, the bootstrap token, against each class of route), every way a NIP-98
//! event is refused (replays across two instances sharing the database included), and API
//! keys made, used, revoked and expired.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use na_auth::{Limits, RateLimits};
use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
use query::{AccessConfig, AdminAccess, AppState, QueryPolicy, app};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PUBLIC_URL: &str = "https://api.example";
const BOOTSTRAP: &str = "bootstrap-s3cret";

async fn guarded() -> Env {
    setup_as(
        20_000,
        QueryPolicy::default(),
        AccessConfig {
            admin: AdminAccess::Token(BOOTSTRAP.into()),
            rate: RateLimits::DEFAULT,
            public_url: Some(PUBLIC_URL.into()),
            cors: Default::default(),
        },
    )
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `Authorization: Nostr …` for `method` on `url`, made at `at`, with `payload` when given.
fn nip98_at(keys: &Keys, method: &str, url: &str, payload: Option<&[u8]>, at: i64) -> String {
    // Two requests alike within a second would make the same event (the same id): each
    // gets a nonce, as a client sending such requests must.
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut tags = vec![
        Tag::parse(["u", url]).unwrap(),
        Tag::parse(["method", method]).unwrap(),
        Tag::parse(["nonce", nonce.as_str()]).unwrap(),
    ];
    if let Some(body) = payload {
        tags.push(Tag::parse(["payload", &hex::encode(Sha256::digest(body))]).unwrap());
    }
    let event = EventBuilder::new(Kind::HttpAuth, "")
        .tags(tags)
        .custom_created_at(Timestamp::from(u64::try_from(at).unwrap()))
        .sign_with_keys(keys)
        .unwrap();
    format!(
        "Nostr {}",
        base64::engine::general_purpose::STANDARD.encode(event.as_json())
    )
}

/// A fresh NIP-98 header for exactly this request.
fn nip98(keys: &Keys, method: &str, path: &str) -> String {
    nip98_at(keys, method, &format!("{PUBLIC_URL}{path}"), None, now())
}

/// `method` `path` (no body) signed by `keys` with a fresh NIP-98 event.
async fn call_signed(
    app: &axum::Router,
    keys: &Keys,
    method: &str,
    path: &str,
) -> (StatusCode, Value) {
    call_as(app, method, path, None, Some(&nip98(keys, method, path))).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A key with `scopes`, made through the admin route with the bootstrap token.
async fn key(env: &Env, scopes: &[&str]) -> (String, String) {
    let (status, made) = call_as(
        &env.app,
        "POST",
        "/api/v2/admin/keys",
        Some(&json!({ "name": format!("test {scopes:?}"), "scopes": scopes })),
        Some(&bearer(BOOTSTRAP)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made:#}");
    (
        made["key"].as_str().unwrap().to_owned(),
        made["id"].as_str().unwrap().to_owned(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    Own,
    OtherUser,
    ReadKey,
    BackfillKey,
    AdminKey,
    Bootstrap,
}

impl Caller {
    /// In the order of the matrix's columns.
    const ALL: [Caller; 7] = [
        Caller::Anonymous,
        Caller::Own,
        Caller::OtherUser,
        Caller::ReadKey,
        Caller::BackfillKey,
        Caller::AdminKey,
        Caller::Bootstrap,
    ];
}

#[tokio::test]
async fn the_access_matrix_cell_by_cell() {
    let env = guarded().await;
    let me = Keys::generate();
    let other = Keys::generate();
    let (read, _) = key(&env, &["read"]).await;
    let (backfill, _) = key(&env, &["backfill"]).await;
    let (admin, _) = key(&env, &["admin"]).await;
    let pk = me.public_key().to_hex();
    let summary = format!("/api/v2/analytics/users/{pk}/summary?window=7d");
    let ask_backfill = format!("/api/v2/analytics/users/{pk}/backfill");
    let engagers = format!("/api/v2/analytics/users/{pk}/engagers?window=7d");
    // (method, route, allowed: [Anonymous, Own, OtherUser, ReadKey, BackfillKey, AdminKey,
    // Bootstrap]); a public route of each kind, the personal route, the backfill route, an
    // admin route.
    let routes: [(&str, &str, [bool; 7]); 7] = [
        ("GET", &summary, [true; 7]),
        ("GET", "/api/v2/analytics/metrics", [true; 7]),
        ("GET", "/health", [true; 7]),
        (
            "GET",
            &engagers,
            [false, true, false, true, false, true, true],
        ),
        (
            "POST",
            &ask_backfill,
            [false, true, false, false, true, true, true],
        ),
        (
            "GET",
            "/api/v2/admin/keys",
            [false, false, false, false, false, true, true],
        ),
        (
            "GET",
            "/api/v2/admin/plugins",
            [false, false, false, false, false, true, true],
        ),
    ];
    use Caller::*;
    for (method, path, allowed) in routes {
        for (caller, allowed) in Caller::ALL.into_iter().zip(allowed) {
            let auth = match caller {
                Anonymous => None,
                Own => Some(nip98(&me, method, path)),
                OtherUser => Some(nip98(&other, method, path)),
                ReadKey => Some(bearer(&read)),
                BackfillKey => Some(bearer(&backfill)),
                AdminKey => Some(bearer(&admin)),
                Bootstrap => Some(bearer(BOOTSTRAP)),
            };
            let (status, body) = call_as(&env.app, method, path, None, auth.as_deref()).await;
            if allowed {
                assert!(
                    status.is_success(),
                    "{caller:?} {method} {path}: {status} {body:#}"
                );
                continue;
            }
            let expected = if caller == Anonymous {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{caller:?} {method} {path}: {body:#}");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("API key with the"),
                "{caller:?} {method} {path}: the refusal names what would work: {detail}"
            );
            if path == ask_backfill || path == engagers {
                assert!(
                    detail.contains(&pk),
                    "names the signer that would do: {detail}"
                );
            }
        }
    }
}

#[tokio::test]
async fn reads_start_nothing_and_a_backfill_is_asked_for_once_per_pubkey() {
    let env = guarded().await;
    let me = Keys::generate();
    let pk = me.public_key().to_hex();
    let summary = format!("/api/v2/analytics/users/{pk}/summary?window=7d");
    for _ in 0..2 {
        let body = get_ok(&env.app, &summary).await;
        assert_eq!(body["completeness"]["backfill"], "never", "{body:#}");
        assert_eq!(body["completeness"]["backfill_job"], Value::Null);
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), env.jobs.recv()).await;
    assert!(nothing.is_err(), "a read enqueued {nothing:?}");

    let path = format!("/api/v2/analytics/users/{pk}/backfill");
    let (status, first) = call_signed(&env.app, &me, "POST", &path).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first:#}");
    assert_eq!(first["state"], "queued");
    assert_eq!(first["reason"], Value::Null);
    let job = first["job_id"].as_str().unwrap().to_owned();
    let delivered = env.jobs.recv().await.unwrap();
    assert_eq!(delivered.message.job_id().to_string(), job);

    // Asked again (a new signature, so not a replay) while it is queued: the same job, not
    // a second one.
    let (status, again) = call_signed(&env.app, &me, "POST", &path).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["job_id"], job.as_str());
    assert!(again["reason"].as_str().unwrap().contains("already"));
    let nothing = tokio::time::timeout(Duration::from_millis(300), env.jobs.recv()).await;
    assert!(nothing.is_err(), "a second backfill was enqueued");
    // Ten at once: still one job.
    let asks = (0..10).map(|_| {
        let app = env.app.clone();
        let auth = nip98(&me, "POST", &path);
        let path = path.clone();
        async move { call_as(&app, "POST", &path, None, Some(&auth)).await }
    });
    for (status, body) in futures_util::future::join_all(asks).await {
        assert_eq!(
            (status, body["job_id"].as_str()),
            (StatusCode::ACCEPTED, Some(job.as_str()))
        );
    }

    let body = get_ok(&env.app, &summary).await;
    assert_eq!(body["completeness"]["backfill"], "queued");
    assert_eq!(body["completeness"]["backfill_job"], job.as_str());
}

#[tokio::test]
async fn every_bad_nip98_event_is_refused_and_each_is_accepted_once() {
    let env = guarded().await;
    let me = Keys::generate();
    let pk = me.public_key().to_hex();
    let path = format!("/api/v2/analytics/users/{pk}/backfill");
    let url = format!("{PUBLIC_URL}{path}");
    let body = json!({ "note": "a body the payload must cover" });
    let body_bytes = body.to_string().into_bytes();
    let refused = |auth: String, body: Option<Value>, why: &'static str| {
        let app = env.app.clone();
        let path = path.clone();
        async move {
            let (status, problem) = call_as(&app, "POST", &path, body.as_ref(), Some(&auth)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {problem:#}");
            let detail = problem["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains(why), "{why}: {detail}");
        }
    };
    refused(
        nip98_at(&me, "POST", &format!("{url}?x=1"), None, now()),
        None,
        "not this request's URL",
    )
    .await;
    refused(
        nip98_at(&me, "POST", &url.replace("https", "http"), None, now()),
        None,
        "not this request's URL",
    )
    .await;
    refused(nip98_at(&me, "GET", &url, None, now()), None, "method").await;
    refused(
        nip98_at(&me, "POST", &url, None, now()),
        Some(body.clone()),
        "no \"payload\" tag",
    )
    .await;
    refused(
        nip98_at(&me, "POST", &url, Some(b"{}"), now()),
        Some(body.clone()),
        "payload tag is not the SHA-256",
    )
    .await;
    // Past the 60 s either way, with room for the moment between signing and checking.
    refused(
        nip98_at(&me, "POST", &url, None, now() - 65),
        None,
        "more than 60 s",
    )
    .await;
    refused(
        nip98_at(&me, "POST", &url, None, now() + 65),
        None,
        "more than 60 s",
    )
    .await;
    // Signed by one key, claimed by another.
    let signed = nip98_at(&me, "POST", &url, None, now());
    let json = base64::engine::general_purpose::STANDARD
        .decode(signed.strip_prefix("Nostr ").unwrap())
        .unwrap();
    let mut event: Value = serde_json::from_slice(&json).unwrap();
    event["pubkey"] = Keys::generate().public_key().to_hex().into();
    let forged = format!(
        "Nostr {}",
        base64::engine::general_purpose::STANDARD.encode(event.to_string())
    );
    refused(forged, None, "does not verify").await;
    refused("Nostr %%%".into(), None, "not base64").await;

    // A good one with its payload: accepted once, on this instance or any other.
    let good = nip98_at(&me, "POST", &url, Some(&body_bytes), now());
    let (status, accepted) = call_as(&env.app, "POST", &path, Some(&body), Some(&good)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    refused(good.clone(), Some(body.clone()), "used before").await;
    let (queue, _rx) = na_queue::InProcessQueue::new(1);
    let second = app(AppState::new(
        env.db.clone(),
        Arc::new(queue),
        AccessConfig {
            admin: AdminAccess::KeysOnly,
            rate: RateLimits::DEFAULT,
            public_url: Some(PUBLIC_URL.into()),
            cors: Default::default(),
        },
        env.registry.clone(),
    ));
    let (status, problem) = call_as(&second, "POST", &path, Some(&body), Some(&good)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "replayed on another instance: {problem:#}"
    );
    // The replays took nothing from the signer's bucket: the next signed request finds
    // only the first one spent (or none, refilled since), not three.
    let next = nip98_at(&me, "POST", &url, Some(&body_bytes), now());
    let (status, headers, _) = call_full(&env.app, "POST", &path, Some(&body), Some(&next)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let remaining: u32 = headers["ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        remaining >= RateLimits::DEFAULT.user.jobs - 2,
        "{remaining}"
    );

    // A server without a public URL takes no NIP-98 at all, and says so.
    let (queue, _rx) = na_queue::InProcessQueue::new(1);
    let no_url = app(AppState::new(
        env.db.clone(),
        Arc::new(queue),
        AdminAccess::KeysOnly,
        env.registry.clone(),
    ));
    let (status, problem) = call_signed(&no_url, &me, "POST", &path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("NA_PUBLIC_URL")
    );
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_without_secrets_and_refused_once_revoked_or_expired() {
    let env = guarded().await;
    let (admin, admin_id) = key(&env, &["admin"]).await;
    let (read, read_id) = key(&env, &["read", "read"]).await;
    let list = |auth: String| {
        let app = env.app.clone();
        async move { call_as(&app, "GET", "/api/v2/admin/keys", None, Some(&auth)).await }
    };
    let (status, listed) = list(bearer(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        !listed.to_string().contains(&read[40..]),
        "no secret listed"
    );
    let read_entry = keys.iter().find(|k| k["id"] == read_id.as_str()).unwrap();
    assert_eq!(read_entry["scopes"], json!(["read"]));
    assert!(read_entry["last_used_at"].is_null(), "{read_entry:#}");

    let metrics_as = |token: &str| {
        let (app, auth) = (env.app.clone(), bearer(token));
        async move { call_as(&app, "GET", "/api/v2/analytics/metrics", None, Some(&auth)).await }
    };
    // Used: recorded; a read key on the public routes is fine.
    get_ok(&env.app, "/api/v2/analytics/metrics").await;
    let (status, _) = metrics_as(&read).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = list(bearer(&admin)).await;
    let used = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == read_id.as_str())
        .unwrap()
        .clone();
    assert!(used["last_used_at"].is_string(), "{used:#}");

    // Tampered with: the same id, another secret.
    let mut tampered = read.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    for wrong in [tampered.as_str(), "na_nonsense", "some-other-token"] {
        let (status, problem) = metrics_as(wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}: {problem:#}");
    }

    // Revoked: refused on the very next request.
    let (status, revoked) = call_as(
        &env.app,
        "POST",
        &format!("/api/v2/admin/keys/{read_id}/revoke"),
        None,
        Some(&bearer(&admin)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked:#}");
    assert!(revoked["revoked_at"].is_string());
    let (status, problem) = metrics_as(&read).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"].as_str().unwrap().contains("revoked"),
        "{problem:#}"
    );
    let (status, _) = call_as(
        &env.app,
        "POST",
        &format!("/api/v2/admin/keys/{}/revoke", uuid::Uuid::new_v4()),
        None,
        Some(&bearer(&admin)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Expired: refused, saying when.
    let (status, made) = call_as(
        &env.app,
        "POST",
        "/api/v2/admin/keys",
        Some(&json!({ "name": "short-lived", "scopes": ["admin"], "expires_in_days": 1 })),
        Some(&bearer(&admin)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(made["expires_at"].is_string());
    let conn = env.db.conn().await.unwrap();
    conn.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        &[&made["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()],
    )
    .await
    .unwrap();
    let (status, problem) = list(bearer(made["key"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem:#}"
    );
    // The admin key that made it still works; it is listed as made.
    let (status, listed) = list(bearer(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 3);
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == admin_id.as_str())
    );

    // Bad requests for keys, each a 400 that names the field.
    for (body, says) in [
        (json!({ "name": "", "scopes": ["read"] }), "name"),
        (json!({ "name": "x", "scopes": [] }), "scopes"),
        (json!({ "name": "x", "scopes": ["root"] }), "not a scope"),
        (
            json!({ "name": "x", "scopes": ["read"], "expires_in_days": 0 }),
            "expires_in_days",
        ),
        (
            json!({ "name": "x", "scopes": ["read"], "extra": 1 }),
            "extra",
        ),
        (
            json!({ "name": "x", "scopes": ["read"], "rate_limits": "pricey=1" }),
            "rate_limits",
        ),
        (
            json!({ "name": "x", "scopes": ["read"], "rate_limits": "costly=many" }),
            "rate_limits",
        ),
    ] {
        let (status, problem) = call_as(
            &env.app,
            "POST",
            "/api/v2/admin/keys",
            Some(&body),
            Some(&bearer(&admin)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem:#}");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{body}: {problem:#}"
        );
    }
}

#[tokio::test]
async fn a_burst_over_the_limit_gets_429_across_instances_and_others_are_unaffected() {
    let limits = RateLimits {
        anonymous: Limits {
            cheap: 100,
            costly: 4,
            jobs: 0,
            admin: 0,
        },
        ..RateLimits::DEFAULT
    };
    let access = AccessConfig {
        admin: AdminAccess::Token(BOOTSTRAP.into()),
        rate: limits,
        public_url: Some(PUBLIC_URL.into()),
        cors: Default::default(),
    };
    let policy = QueryPolicy {
        max_sync_rows: 10_000,
        ..QueryPolicy::default()
    };
    let env = setup_as(20_000, policy, access.clone()).await;
    let (queue, _rx) = na_queue::InProcessQueue::new(1);
    let other_instance = app(AppState::new(
        env.db.clone(),
        Arc::new(queue),
        access,
        env.registry.clone(),
    ));
    let me = Keys::generate();
    let summary = format!(
        "/api/v2/analytics/users/{}/summary?window=24h",
        me.public_key().to_hex()
    );
    // A read too costly to answer at once becomes a job, and counts as one (as well as a
    // costly read): jobs are closed to anonymous callers here.
    let heavy = format!(
        "/api/v2/analytics/users/{}/timeseries?window=24h&granularity=minute",
        me.public_key().to_hex()
    );
    let (status, problem) = call_as(&env.app, "GET", &heavy, None, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem:#}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("jobs requests")
    );
    let (status, accepted) = call_signed(&env.app, &me, "GET", &heavy).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    // Three more at once are the rest of the burst, spent on either instance: one caller,
    // one bucket.
    for (i, app) in [&env.app, &other_instance, &env.app]
        .into_iter()
        .enumerate()
    {
        let (status, headers, body) = call_full(app, "GET", &summary, None, None).await;
        assert_eq!(status, StatusCode::OK, "{i}: {body:#}");
        assert_eq!(headers["ratelimit-limit"], "4");
        assert_eq!(
            headers["ratelimit-remaining"].to_str().unwrap(),
            (2 - i).to_string()
        );
    }
    let (status, headers, problem) = call_full(&other_instance, "GET", &summary, None, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem:#}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one request comes back every 20 s: {retry}"
    );
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("4 costly requests a minute")
    );
    // The same caller's cheap reads have their own bucket; jobs are closed to it (0).
    get_ok(&env.app, "/api/v2/analytics/metrics").await;
    let (status, _) = call_as(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({ "route": "summary", "pubkey": me.public_key().to_hex() })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another principal is not held back by the first one's bucket.
    let (status, headers, _) = call_full(
        &env.app,
        "GET",
        &summary,
        None,
        Some(&nip98(&me, "GET", &summary)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["ratelimit-limit"].to_str().unwrap(),
        RateLimits::DEFAULT.user.costly.to_string()
    );
    // The operator's bootstrap token is not limited.
    for _ in 0..5 {
        let (status, _) = call_as(&env.app, "GET", &summary, None, Some(&bearer(BOOTSTRAP))).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A key made with limits of its own is held to them, on every instance; a key made
    // without has the deployment's.
    let (status, made) = call_as(
        &env.app,
        "POST",
        "/api/v2/admin/keys",
        Some(&json!({ "name": "small", "scopes": ["read"], "rate_limits": "costly=2" })),
        Some(&bearer(BOOTSTRAP)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made:#}");
    assert_eq!(made["rate_limits"], "costly=2");
    let small = bearer(made["key"].as_str().unwrap());
    for app in [&env.app, &other_instance] {
        let (status, headers, _) = call_full(app, "GET", &summary, None, Some(&small)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["ratelimit-limit"], "2");
    }
    let (status, _, problem) = call_full(&env.app, "GET", &summary, None, Some(&small)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem:#}");
    let (status, headers, _) = call_full(&env.app, "GET", &summary, None, Some(&small)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["ratelimit-limit"], "2");
    // Its cheap reads keep the deployment's key limit.
    let (status, headers, _) = call_full(
        &env.app,
        "GET",
        "/api/v2/analytics/metrics",
        None,
        Some(&small),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["ratelimit-limit"].to_str().unwrap(),
        RateLimits::DEFAULT.key.cheap.to_string()
    );
    let (plain, _) = key(&env, &["read"]).await;
    let (status, headers, _) =
        call_full(&env.app, "GET", &summary, None, Some(&bearer(&plain))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["ratelimit-limit"].to_str().unwrap(),
        RateLimits::DEFAULT.key.costly.to_string()
    );
}
