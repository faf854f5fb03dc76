//! Summary latency, server-side: the v2 query path (buckets + live delta) against the legacy
//! raw scan (the same facts read and aggregated through the same plugin at query time), for
//! 24h, 30d and 365d windows and three custom windows with edges at odd seconds, in one run
//! over one database, with retention's horizons applied at the dataset's end (minute buckets
//! 8 days, hour buckets 400 days by default; `NA_RETENTION_MINUTE_DAYS` and
//! `NA_RETENTION_HOUR_DAYS` as the retention function reads them), so each edge is read as
//! it would be live. Retention only moves forward: measure a shorter hour horizon on a copy
//! of the database (`NA_BENCH_DATABASE`).
//!
//! `scripts/build-plugins core-metrics && cargo bench --workspace --bench summary_latency`
//! (tier: `NA_BENCH_TIER=small|medium|large`, default large; `NA_BENCH_RUNS`, default 300;
//! `NA_BENCH_WINDOWS=365d` for some windows only, as when profiling).
//! The dataset is ingested through the real write path and compacted once into a database
//! kept for the next run (`na_bench_query_<tier>`, or `NA_BENCH_DATABASE`); drop it to start
//! over. With
//! `NA_BENCH_REPORT=<file>` it also writes the windows, values and times as JSON, which
//! `scripts/duckdb_baseline.py` reads to time DuckDB over the same facts (`scripts/bench-summary`
//! runs both).
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark reports failure by panicking"
)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Request;
use chrono::Utc;
use http_body_util::BodyExt;
use na_analytics::{Engine, SummaryRequest, WindowRequest};
use na_compaction::{Compactor, CompactorConfig, RecomputeProgress};
use na_metrics_abi::Aggregation;
use na_plugin_host::{HostConfig, PluginHost};
use na_plugin_registry::PluginSet;
use na_queue::Unconfigured;
use na_storage::Db;
use nostr::JsonUtil;
use query::{AccessConfig, AdminAccess, AppState, app};
use tower::ServiceExt;

/// The functions' allocator, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The rolling windows, then custom ones (start and end before the clock, in seconds) whose
/// edges fall at odd seconds.
const WINDOWS: [(&str, i64, i64); 6] = [
    ("24h", 0, 0),
    ("30d", 0, 0),
    ("365d", 0, 0),
    ("odd-3d", 3 * 86_400 + 4_321, 1_234),
    (
        "odd-45d",
        47 * 86_400 + 3 * 3_600 + 59,
        2 * 86_400 + 17 * 60 + 3,
    ),
    (
        "odd-200d",
        300 * 86_400 + 11 * 3_600 + 7 * 60 + 13,
        100 * 86_400 + 1_777,
    ),
];

/// The clock of every window: 7 h 17 min 23 s before the dataset's last second, so that no
/// rolling window's edge falls on a bucket boundary (as a live user's clock does not).
const CLOCK_BEFORE_END: i64 = 7 * 3_600 + 17 * 60 + 23;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = tokio::task::spawn_blocking(|| na_datagen::bench_dataset(na_datagen::Tier::Large))
        .await?
        .map_err(anyhow::Error::msg)?;
    let runs: usize = std::env::var("NA_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let base = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = std::env::var("NA_BENCH_DATABASE")
        .unwrap_or_else(|_| format!("na_bench_query_{}", data.tier.name()));
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let db = Db::connect(&url, 4).await?;
    let host = Arc::new(PluginHost::new(HostConfig::default())?);
    prepare(&db, &host, &data).await?;
    // The functions' own settings, from the same variables.
    let env = |name: &str| std::env::var(name).ok();
    // Retention's bucket horizons at the dataset's end (raw facts all kept).
    let end = chrono::DateTime::from_timestamp(data.end as i64, 0).unwrap();
    let retention = retention::RetentionConfig {
        raw_days: None,
        ..retention::RetentionConfig::from_lookup(&env)?
    };
    println!(
        "bucket horizons: minutes {} days, hours {} days",
        retention.minute_days, retention.hour_days
    );
    retention::run(&db, &retention, end, None).await?;
    // What the horizons keep, beside what the facts take.
    let sizes = db
        .conn()
        .await?
        .query(
            "SELECT t, coalesce((SELECT sum(pg_total_relation_size(relid))
                                 FROM pg_partition_tree(t::regclass) WHERE isleaf),
                                pg_total_relation_size(t::regclass))::int8
             FROM unnest(ARRAY['buckets_minute', 'buckets_hour', 'buckets_day',
                               'buckets_month', 'facts']) t",
            &[],
        )
        .await?;
    for r in &sizes {
        println!(
            "  {:<15} {:>8.1} MB",
            r.get::<_, String>(0),
            r.get::<_, i64>(1) as f64 / 1e6
        );
    }

    // The query function's own settings (NA_QUERY_EXACT_DISTINCT_ROWS and the rest), so a
    // run measures what a deployment with the same environment answers.
    let policy = query::QueryPolicy::from_lookup(&env).map_err(anyhow::Error::msg)?;
    let mut engine = Engine::new(db.clone(), host.clone());
    engine.exact_distinct = policy.exact_distinct;
    let registry = na_plugin_registry::Registry::new(db.clone(), host.clone());
    // The deployed access layers; the route's column below calls with the bootstrap token
    // (a hash compare: no lookup, not rate-limited), the access lines at the end with an API
    // key and with NIP-98.
    let access = AccessConfig {
        admin: AdminAccess::Token(BENCH_TOKEN.into()),
        // Limits high enough for every run: a bucket costs the same statement at any limit.
        rate: na_auth::RateLimits {
            user: UNLIMITED,
            key: UNLIMITED,
            ..na_auth::RateLimits::DEFAULT
        },
        public_url: Some(BENCH_URL.into()),
        cors: Default::default(),
    };
    let app = app(
        AppState::new(db.clone(), Arc::new(Unconfigured), access, registry).with_policy(policy),
    );
    let bootstrap = format!("Bearer {BENCH_TOKEN}");
    let subject = data.target.to_bytes();
    // The dataset's instants: windows end near where it ends, as "now" would for a live user.
    let now = data.end as i64 - CLOCK_BEFORE_END;
    let plugins = PluginSet::new(host.clone());

    println!(
        "summary of every active core@1 metric for the {} tier's target ({runs} runs per window; server-side times):",
        data.tier.name()
    );
    println!(
        "  {:<6} {:>11} {:>11} {:>11} {:>11} {:>13} {:>13} {:>9}",
        "window",
        "engine p50",
        "engine p99",
        "route p50",
        "route p99",
        "raw scan p50",
        "raw scan p99",
        "speed-up"
    );
    let mut report = Vec::new();
    let mut access_uri = None;
    let only = std::env::var("NA_BENCH_WINDOWS").ok();
    for (w, back_from, back_to) in WINDOWS {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|x| x == w))
        {
            continue;
        }
        let window = match WindowRequest::rolling(w) {
            Ok(rolling) => rolling,
            Err(_) => WindowRequest::Custom {
                from: now - back_from,
                to: now - back_to,
            },
        };
        let req = SummaryRequest {
            subject,
            window,
            metrics: None,
            now,
            // As a request is answered (a job, with no budget, counts more exactly).
            budget: Some(policy.max_sync_rows),
        };
        let answer = engine.summary(&req).await?;
        let raw = raw_scan(&db, &plugins, &subject, &answer.window).await;
        // Both paths give the same counts and sums over the same resolved window.
        for m in &answer.metrics {
            if let Some(v) = raw.get(&m.metric.metric) {
                assert_eq!(Some(*v), m.value, "{} over {w}", m.metric.id);
            }
        }
        let engine_times = time(runs, || async { engine.summary(&req).await.unwrap() }).await;
        // The same window through the route: its clock is the wall clock, not the dataset's.
        let uri = format!(
            "/api/v2/analytics/users/{}/summary?from={}&to={}",
            data.target.to_hex(),
            answer.window.requested_from.timestamp(),
            answer.window.requested_to.timestamp()
        );
        let route_times = time(runs, || get_as(&app, &uri, &bootstrap)).await;
        access_uri.get_or_insert_with(|| uri.clone());
        let raw_runs = (runs / 10).clamp(5, 50);
        let raw_times = time(raw_runs, || async {
            raw_scan(&db, &plugins, &subject, &answer.window).await
        })
        .await;
        let (e50, e99) = percentiles(&engine_times);
        let (r50, r99) = percentiles(&route_times);
        let (s50, s99) = percentiles(&raw_times);
        println!(
            "  {w:<6} {:>8.2} ms {:>8.2} ms {:>8.2} ms {:>8.2} ms {:>10.1} ms {:>10.1} ms {:>8.0}x",
            ms(e50),
            ms(e99),
            ms(r50),
            ms(r99),
            ms(s50),
            ms(s99),
            s50.as_secs_f64() / r50.as_secs_f64()
        );
        report.push(serde_json::json!({
            "window": w,
            "from": answer.window.from.timestamp(),
            "to": answer.window.to.timestamp(),
            "values": answer.metrics.iter().map(|m| (m.metric.metric.clone(), serde_json::json!({
                "value": m.value, "relative_error": m.relative_error,
            }))).collect::<BTreeMap<_, _>>(),
            "route_ms": [ms(r50), ms(r99)],
            "raw_scan_ms": [ms(s50), ms(s99)],
        }));
    }
    if let Some(uri) = access_uri {
        access_cost(&db, &app, &uri, runs, &bootstrap).await?;
    }
    if let Ok(path) = std::env::var("NA_BENCH_REPORT") {
        let doc = serde_json::json!({
            "tier": data.tier.name(),
            "target": data.target.to_hex(),
            "database_url": url,
            "windows": report,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    }
    println!(
        "(speed-up: raw scan p50 / route p50; the raw scan reads only facts whose subject is the user)"
    );
    Ok(())
}

const BENCH_TOKEN: &str = "bench-bootstrap";
const UNLIMITED: na_auth::Limits = na_auth::Limits {
    cheap: 1_000_000,
    costly: 1_000_000,
    jobs: 1_000_000,
    admin: 1_000_000,
};
const BENCH_URL: &str = "https://bench.example";

/// GETs `uri` through the router with `Authorization: <authorization>`; it must succeed.
async fn get_as(app: &axum::Router, uri: &str, authorization: &str) -> axum::body::Bytes {
    let res = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header("authorization", authorization)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(res.status().is_success(), "{uri}: {}", res.status());
    res.into_body().collect().await.unwrap().to_bytes()
}

/// What the access layers add to one summary request (issue 19's measure), in one run
/// against the same route: the bootstrap token (a hash compare, not limited) against an API
/// key (its row read, a rate-limit bucket taken: two statements) and a NIP-98 event (its
/// signature checked, its id recorded, a bucket taken).
async fn access_cost(
    db: &Db,
    app: &axum::Router,
    uri: &str,
    runs: usize,
    bootstrap: &str,
) -> anyhow::Result<()> {
    let made = query::keys::create_key(
        db,
        &na_api_types::NewApiKey {
            name: "summary benchmark".into(),
            scopes: vec!["read".into()],
            expires_in_days: Some(1),
            rate_limits: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.detail()))?;
    let key = format!("Bearer {}", made.key);
    let keys = nostr::Keys::generate();
    let url = format!("{BENCH_URL}{uri}");
    // One event per request (each id is accepted once), signed beforehand.
    let signed: Vec<String> = (0..runs + 20)
        .map(|i| {
            let event = nostr::EventBuilder::new(nostr::Kind::HttpAuth, "")
                .tags([
                    nostr::Tag::parse(["u", url.as_str()]).unwrap(),
                    nostr::Tag::parse(["method", "GET"]).unwrap(),
                    nostr::Tag::parse(["nonce", &i.to_string()]).unwrap(),
                ])
                .sign_with_keys(&keys)
                .unwrap();
            format!(
                "Nostr {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    nostr::JsonUtil::as_json(&event)
                )
            )
        })
        .collect();
    // The check alone (decode, kind, tags, id and BIP-340 signature), no I/O: the part of
    // NIP-98's cost that is arithmetic.
    let checked: Vec<Duration> = signed
        .iter()
        .map(|token| {
            let t = Instant::now();
            let token = token.strip_prefix("Nostr ").unwrap_or(token);
            let expected = na_auth::nip98::Expected {
                url: &url,
                method: "GET",
                body: None,
                now: Utc::now().timestamp(),
            };
            std::hint::black_box(na_auth::nip98::verify(token, &expected).unwrap());
            t.elapsed()
        })
        .collect();
    // Interleaved, request by request, so the machine's drift falls on all three alike.
    let mut signed = signed.into_iter();
    let (mut base, mut with_key, mut with_nip98) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 20 {
        let nip98 = signed.next().unwrap();
        for (auth, times) in [
            (bootstrap, &mut base),
            (key.as_str(), &mut with_key),
            (nip98.as_str(), &mut with_nip98),
        ] {
            let t = Instant::now();
            std::hint::black_box(get_as(app, uri, auth).await);
            // The first 20 warm caches and connections.
            if i >= 20 {
                times.push(t.elapsed());
            }
        }
    }
    let (b50, b99) = percentiles(&base);
    println!("access layers on the first window's summary route ({runs} runs each, one run):");
    println!(
        "  bootstrap token (no lookup, not limited)  p50 {:>6.2} ms  p99 {:>6.2} ms",
        ms(b50),
        ms(b99)
    );
    for (name, times) in [
        ("API key (row read + rate limit)          ", &with_key),
        ("NIP-98 (signature + replay + rate limit) ", &with_nip98),
    ] {
        let (p50, p99) = percentiles(times);
        println!(
            "  {name} p50 {:>6.2} ms  p99 {:>6.2} ms  (+{:.2} ms p50)",
            ms(p50),
            ms(p99),
            ms(p50) - ms(b50)
        );
    }
    let (c50, c99) = percentiles(&checked);
    println!(
        "  of which the NIP-98 check alone (no I/O)   p50 {:>6.3} ms  p99 {:>6.3} ms",
        ms(c50),
        ms(c99)
    );
    Ok(())
}

/// Ingests and compacts the dataset once; later runs find it ready.
async fn prepare(
    db: &Db,
    host: &Arc<PluginHost>,
    data: &na_datagen::Dataset,
) -> anyhow::Result<()> {
    let conn = db.conn().await?;
    conn.execute("CREATE TABLE IF NOT EXISTS bench_ready (target text)", &[])
        .await?;
    let ready: i64 = conn
        .query_one(
            "SELECT count(*) FROM bench_ready WHERE target = $1",
            &[&data.target.to_hex()],
        )
        .await?
        .get(0);
    let compactor = Compactor::new(db.clone(), host.clone(), CompactorConfig::default());
    if ready > 0 {
        // Anything a newer schema asks of the compactor (month buckets rolled up from day
        // buckets after migration V8) happens here, once.
        let started = Instant::now();
        let report = compactor.catch_up(Duration::from_secs(600)).await?;
        anyhow::ensure!(report.caught_up, "compaction never caught up: {report:?}");
        println!(
            "dataset already ingested and compacted in this database (compactor run: {:.1} s)",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let started = Instant::now();
    let registry = na_plugin_registry::Registry::new(db.clone(), host.clone());
    registry
        .publish(
            na_test_support::built_component("core-metrics").map_err(anyhow::Error::msg)?,
            "bench",
        )
        .await?;
    let (progress, _) = tokio::sync::watch::channel(RecomputeProgress::default());
    compactor.recompute("core", 1, &progress).await?;
    db.activate_plugin("core", 1).await?;
    let relay = db.relay_id("ws://bench").await?;
    let now = Utc::now().timestamp();
    let distinct = data.distinct();
    for (i, chunk) in distinct.chunks(5_000).enumerate() {
        let batch =
            na_ingest::prepare::batch_from_json(chunk.iter().map(|e| e.as_json()), relay, now)?;
        db.store_batch(&batch).await?;
        // Compact as ingest goes, as the deployed compactor does, so the log stays short.
        if i % 20 == 19 {
            compactor.run(None).await?;
            eprintln!(
                "  ingested {} of {} events",
                (i + 1) * 5_000,
                distinct.len()
            );
        }
    }
    let report = compactor.catch_up(Duration::from_secs(600)).await?;
    anyhow::ensure!(report.caught_up, "compaction never caught up: {report:?}");
    conn.execute(
        "INSERT INTO bench_ready VALUES ($1)",
        &[&data.target.to_hex()],
    )
    .await?;
    println!(
        "ingested and compacted {} events in {:.0} s",
        distinct.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The legacy path: the window's facts about the user, read and aggregated at query time
/// through the same plugin.
async fn raw_scan(
    db: &Db,
    plugins: &PluginSet,
    subject: &[u8; 32],
    window: &na_api_types::ResolvedWindow,
) -> BTreeMap<String, i64> {
    let conn = db.conn().await.unwrap();
    let rows = na_storage::facts::facts_about(&**conn, subject, window.from, window.to)
        .await
        .unwrap();
    let core = plugins.load(&**conn, "core", 1, None).await.unwrap();
    let info = core.mapper.info().clone();
    let (from, to) = (window.from.timestamp(), window.to.timestamp());
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    let mut keys: BTreeMap<String, HashSet<Vec<u8>>> = BTreeMap::new();
    let facts = core.facts(&rows, 1);
    // In batches, as the compactor maps them (one call over a year would pass the plugin's
    // memory cap).
    for batch in facts.chunks(10_000) {
        for c in core.map(batch).unwrap().iter() {
            if c.subject != subject || !(from..to).contains(&c.at) {
                continue;
            }
            let m = &info.metrics[usize::from(c.metric)];
            match m.aggregation {
                Aggregation::Count | Aggregation::Sum => {
                    *sums.entry(m.name.clone()).or_default() += c.value;
                }
                Aggregation::Distinct => {
                    keys.entry(m.name.clone())
                        .or_default()
                        .insert(c.key.to_vec());
                }
                _ => {}
            }
        }
    }
    // Metrics credited to the subject as actor are not in this scan: the legacy scan reads
    // the facts whose subject is the user.
    sums.retain(|name, _| name.ends_with("_received"));
    sums
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..runs.min(20) {
        f().await; // warm caches and connections
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f().await);
        times.push(t.elapsed());
    }
    times
}

fn percentiles(times: &[Duration]) -> (Duration, Duration) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    (at(0.50), at(0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
