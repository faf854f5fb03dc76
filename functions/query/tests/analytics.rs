//! `/api/v2/analytics` user routes end to end: against a real PostgreSQL with the real
//! core@1 component, compacted and not; every response checked against the OpenAPI
//! document, every value against a from-scratch computation over the stored facts.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use na_metrics_abi::Plugin;
use na_queue::JobMessage;
use nostr::nips::nip19::ToBech32;
use query::QueryPolicy;
use serde_json::{Value, json};

use common::*;

#[tokio::test]
async fn snapshot_plus_delta_equals_from_scratch_at_every_step_of_compaction() {
    let env = setup(700).await;
    let data = small_dataset();
    let events = data.distinct();
    let end = data.end as i64;
    let windows = [
        format!("from={}&to={}", end - 31 * 86_400, end + 3_600),
        "window=24h".to_owned(),
        "window=7d".to_owned(),
        // Unaligned edges: minutes and hours at both ends, days inside.
        format!(
            "from={}&to={}",
            end - 10 * 86_400 + 37 * 60 + 5,
            end - 2 * 86_400 + 3 * 3_600 + 11 * 60
        ),
        // Edges at any second: facts at both ends, then minutes, hours and days.
        format!(
            "from={}&to={}",
            end - 9 * 86_400 + 13 * 3_600 + 7 * 60 + 43,
            end - 86_400 - 2 * 3_600 - 29
        ),
        // Inside one minute: all facts, no bucket.
        format!(
            "from={}&to={}",
            end - 3 * 86_400 + 11,
            end - 3 * 86_400 + 52
        ),
    ];
    let (mut saw_delta, mut saw_mixed) = (false, false);
    for chunk in events.chunks(events.len() / 5 + 1) {
        store_events(&env.db, chunk).await;
        na_test_support::wait_for_safe_horizon(&env.db.conn().await.unwrap()).await;
        // One batch: part of what was stored is compacted, the rest is live delta.
        env.compactor.run_batch().await.unwrap();
        for w in &windows {
            let s = assert_summary_is_exact(&env, &data.target, w).await;
            let delta = s["watermarks"][0]["delta_rows"].as_u64().unwrap();
            let applied = s["watermarks"][0]["applied_rows"].as_u64().unwrap();
            saw_delta |= delta > 0;
            saw_mixed |= delta > 0 && applied > 0;
            assert!(compaction_lag(&env).await >= delta, "status shows the lag");
        }
    }
    assert!(saw_delta && saw_mixed, "the delta path was never exercised");
    compact_all(&env.compactor).await;
    assert_eq!(compaction_lag(&env).await, 0);
    for w in &windows {
        let s = assert_summary_is_exact(&env, &data.target, w).await;
        assert_eq!(s["watermarks"][0]["delta_rows"], 0, "all compacted: {s:#}");
    }
    let first = values(&assert_summary_is_exact(&env, &data.target, &windows[0]).await);
    assert!(
        first["reactions_received"].0 > 100 && first["unique_engagers"].0 > 5,
        "the dataset engages the target: {first:?}"
    );
}

/// Log rows core@1 has not applied, as `/status` reports them.
async fn compaction_lag(env: &Env) -> u64 {
    let status = get_ok(&env.app, "/api/v2/analytics/status").await;
    let lag = status["compaction"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["plugin"] == "core@1")
        .unwrap_or_else(|| panic!("no core@1 lag in {status:#}"));
    lag["rows"].as_u64().unwrap()
}

#[tokio::test]
async fn a_summary_is_the_sum_of_its_time_series_and_of_its_breakdown() {
    let env = setup(20_000).await;
    let data = small_dataset();
    let events = data.distinct();
    let (compacted, live) = events.split_at(events.len() * 2 / 3);
    store_events(&env.db, compacted).await;
    compact_all(&env.compactor).await;
    store_events(&env.db, live).await;
    let pk = data.target.to_hex();
    let end = data.end as i64;
    let (from, to) = (end - end % 86_400 - 20 * 86_400, end - end % 3_600 + 3_600);
    let window = format!("from={from}&to={to}");
    let summary = values(
        &get_ok(
            &env.app,
            &format!("/api/v2/analytics/users/{pk}/summary?{window}"),
        )
        .await,
    );
    // Months: the calendar months around the dataset's 30 days, so the summary is tiled
    // with whole month buckets (and the live delta lands in one of them).
    use na_domain::Granularity;
    for g in [Granularity::Hour, Granularity::Day, Granularity::Month] {
        let granularity = g.name();
        let (from, to) = match g {
            Granularity::Month => (g.bucket(from), g.ceil(to)),
            _ => (from, g.ceil(to)),
        };
        let w = format!("from={from}&to={to}");
        let series = get_ok(
            &env.app,
            &format!("/api/v2/analytics/users/{pk}/timeseries?{w}&granularity={granularity}"),
        )
        .await;
        let answer = get_ok(
            &env.app,
            &format!("/api/v2/analytics/users/{pk}/summary?{w}"),
        )
        .await;
        if g == Granularity::Month {
            assert!(
                answer["window"]["tiles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|t| t["granularity"] == "month"),
                "whole months are read from month buckets: {:#}",
                answer["window"]
            );
        }
        let day_summary = values(&answer);
        for s in series["series"].as_array().unwrap() {
            let metric = s["metric"].as_str().unwrap();
            let points: Vec<i64> = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_i64().unwrap())
                .collect();
            assert_eq!(points.len() as i64, g.count(from, to));
            match s["aggregation"].as_str().unwrap() {
                "count" | "sum" => assert_eq!(
                    points.iter().sum::<i64>(),
                    day_summary[metric].0,
                    "{metric} by {granularity}"
                ),
                "gauge" => assert_eq!(*points.last().unwrap(), day_summary[metric].0, "{metric}"),
                _ => {}
            }
        }
    }
    assert!(summary["reactions_received"].0 > 0, "{summary:?}");

    let breakdown = get_ok(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/breakdown?{window}&metric=reactions_received&dimension=content&top=100"),
    )
    .await;
    assert_eq!(breakdown["others"], 0);
    let rows = breakdown["rows"].as_array().unwrap();
    let totals: Vec<i64> = rows.iter().map(|r| r["total"].as_i64().unwrap()).collect();
    assert_eq!(totals.iter().sum::<i64>(), summary["reactions_received"].0);
    assert!(
        totals.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {totals:?}"
    );
    let top2 = get_ok(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/breakdown?{window}&metric=reactions_received&dimension=content&top=2"),
    )
    .await;
    assert_eq!(top2["rows"].as_array().unwrap().len(), 2.min(rows.len()));
    assert_eq!(
        top2["others"].as_u64().unwrap() as usize,
        rows.len().saturating_sub(2)
    );
}

#[tokio::test]
async fn bad_input_gets_a_problem_that_says_what_to_change() {
    let env = setup(20_000).await;
    let pk = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
    let user = format!("/api/v2/analytics/users/{pk}");
    for (path, says) in [
        (
            "/api/v2/analytics/users/npub1nope/summary".to_owned(),
            "not a hex public key, npub or nprofile",
        ),
        (
            format!("{user}/summary?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            "must be before",
        ),
        (
            format!("{user}/summary?from=0&to=2000000000"),
            "at most 3653 days",
        ),
        (format!("{user}/summary?from=yesterday"), "RFC 3339"),
        (
            format!("{user}/summary?window=2w"),
            "24h, 7d, 30d, 90d, 365d",
        ),
        (format!("{user}/summary?window=7d&from=1"), "not both"),
        (
            format!("{user}/summary?metrics=nope"),
            "unknown metric \"nope\"",
        ),
        (
            format!(
                "{user}/summary?metrics={}",
                ["notes_published"; 65].join(",")
            ),
            "metrics= names 65 metrics: at most 64 per call",
        ),
        (
            format!("{user}/summary?metrics=reactions_received@9"),
            "no version 9 of reactions_received",
        ),
        (
            format!("{user}/summary?metric=reactions_received"),
            "unknown query parameter \"metric\"",
        ),
        (
            format!("{user}/timeseries?granularity=week"),
            "minute, hour, day",
        ),
        (
            format!("{user}/timeseries?format=csv"),
            "format=\"csv\" is not one of points, compact",
        ),
        (
            format!("{user}/timeseries?granularity=minute&window=30d"),
            "points asked for",
        ),
        (
            format!("{user}/breakdown?metric=reactions_received"),
            "dimension= is required",
        ),
        (
            format!("{user}/breakdown?metric=reactions_received&dimension=colour"),
            "its dimensions: [class, content]",
        ),
        (
            format!("{user}/breakdown?metric=follower_count&dimension=x"),
            "is a gauge",
        ),
        (
            format!("{user}/breakdown?metric=reactions_received&dimension=content&top=0"),
            "from 1 to 100",
        ),
        (
            format!("{user}/engagers?metric=reactions_received"),
            "reactions_received@1 is not a distinct count of pubkeys; engagers are listed for one of [",
        ),
        (
            format!("{user}/engagers?metric=unique_engagers,unique_zappers"),
            "exactly one metric",
        ),
        (format!("{user}/engagers?top=101"), "from 1 to 100"),
        (
            format!("{user}/engagers?dimension=content"),
            "unknown query parameter \"dimension\"",
        ),
    ] {
        let (status, problem) = get(&env.app, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {problem:#}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(says),
            "{path}: {detail:?} should say {says:?}"
        );
    }

    // A version published but not recomputed has no buckets: a conflict, not a 500.
    publish(&env.registry, "likes-metrics").await;
    let (status, problem) = get(
        &env.app,
        &format!("{user}/summary?metrics=likes_received@2"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem:#}");
    assert!(
        problem["detail"].as_str().unwrap().contains("recompute"),
        "{problem:#}"
    );
}

#[tokio::test]
async fn catalog_document_and_backfill_of_an_unknown_user() {
    let env = setup(20_000).await;
    let catalog = get_ok(&env.app, "/api/v2/analytics/metrics").await;
    let ids: Vec<&str> = catalog["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["queryable"] == true && m["state"] == "active")
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), core_metrics::Core::describe().metrics.len());
    assert!(ids.contains(&"unique_engagers@1"), "{ids:?}");

    let doc = get_ok(&env.app, "/api/v2/analytics/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, openapi());

    // Nobody ever asked for this user: the answer says so, and reading starts nothing.
    let user = nostr::Keys::generate().public_key();
    let path = format!(
        "/api/v2/analytics/users/{}/summary?window=7d",
        user.to_bech32().unwrap()
    );
    let first = get_ok(&env.app, &path).await;
    assert_eq!(first["completeness"]["backfill"], "never", "{first:#}");
    assert!(values(&first).values().all(|(v, exact)| *v == 0 && *exact));
    let nothing =
        tokio::time::timeout(std::time::Duration::from_millis(300), env.jobs.recv()).await;
    assert!(nothing.is_err(), "a read enqueued {nothing:?}");
    // Asked for (the stack's admin here): enqueued once, then said in every answer.
    let ask = format!("/api/v2/analytics/users/{}/backfill", user.to_hex());
    let (status, accepted) = call(&env.app, "POST", &ask, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let job = accepted["job_id"].as_str().unwrap().to_owned();
    let delivered = env.jobs.recv().await.unwrap();
    assert_eq!(
        delivered.message,
        JobMessage::Backfill {
            job_id: job.parse().unwrap()
        }
    );
    let second = get_ok(&env.app, &path).await;
    assert_eq!(second["completeness"]["backfill"], "queued");
    assert_eq!(second["completeness"]["backfill_job"], job.as_str());
}

#[tokio::test]
async fn a_query_over_the_sync_budget_becomes_a_job_that_runs_once_and_expires() {
    let env = setup_with(
        20_000,
        QueryPolicy {
            max_sync_rows: 1_000,
            ..QueryPolicy::default()
        },
    )
    .await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    let pk = data.target.to_hex();
    let jobs = jobs::JobsState::new(
        env.db.clone(),
        jobs::JobSettings::default(),
        Arc::clone(&env.compactor),
    );

    // 24 hours of minutes for 20 metrics is over 1,000 rows: a job, not an answer.
    let (status, accepted) = get(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/timeseries?window=24h&granularity=minute"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    assert!(
        accepted["reason"]
            .as_str()
            .unwrap()
            .contains("more than the 1000")
    );
    let url = accepted["status_url"].as_str().unwrap().to_owned();
    let (_, queued) = get(&env.app, &url).await;
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["result"], Value::Null);

    let delivery = env.jobs.recv().await.unwrap();
    jobs::run_job(&jobs, &delivery.message).await.unwrap();
    let done = get_ok(&env.app, &url).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let series = done["result"]["series"].as_array().unwrap();
    assert_eq!(series.len(), core_metrics::Core::describe().metrics.len());
    let points = series[0]["points"].as_array().unwrap().len();
    assert!((1_440..=1_441).contains(&points), "{points} minutes in 24h");
    assert!(done["expires_at"].is_string());

    // Delivered again (SQS is at least once): nothing runs twice.
    let updated = done["updated_at"].clone();
    jobs::run_job(&jobs, &delivery.message).await.unwrap();
    let again = get_ok(&env.app, &url).await;
    assert_eq!(
        (again["attempts"].clone(), again["updated_at"].clone()),
        (json!(1), updated)
    );

    // An explicit async request, checked before it is enqueued.
    let (status, bad) = call(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({ "route": "summary", "pubkey": pk, "metrics": "nope" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:#}");
    let (status, accepted) = call(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({ "route": "summary", "pubkey": pk, "window": "7d" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let delivery = env.jobs.recv().await.unwrap();
    jobs::run_job(&jobs, &delivery.message).await.unwrap();
    let url = accepted["status_url"].as_str().unwrap();
    let done = get_ok(&env.app, url).await;
    let summary = &done["result"];
    assert_eq!(summary["window"]["rolling"], "7d");
    let (from, to) = (ts(&summary["window"]["from"]), ts(&summary["window"]["to"]));
    let want = expected(
        &contributions_from_scratch(&env.db, &data.target, |_| true).await,
        from,
        to,
    );
    for (metric, (value, _)) in values(summary) {
        assert_eq!(Some(&value), want.get(&metric), "{metric}");
    }

    // Past its expiry the result is gone.
    let id: uuid::Uuid = accepted["job_id"].as_str().unwrap().parse().unwrap();
    env.db
        .expire_job_at(id, Utc::now() - chrono::TimeDelta::seconds(1))
        .await
        .unwrap();
    let (status, gone) = get(&env.app, url).await;
    assert_eq!(status, StatusCode::GONE, "{gone:#}");
    let (status, _) = get(&env.app, "/api/v2/analytics/jobs/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Engagers are never a job (its result would be readable by id): over the budget, a
    // 400 that names it; within it, an answer.
    let (status, problem) = get(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/engagers?window=365d"),
    )
    .await;
    assert_refused(
        (status, &problem),
        StatusCode::BAD_REQUEST,
        "more than 1000 facts to read (NA_QUERY_MAX_SYNC_ROWS)",
    );
    let enqueued = tokio::time::timeout(Duration::from_millis(200), env.jobs.recv()).await;
    assert!(enqueued.is_err(), "nothing enqueued: {enqueued:?}");
    let few = get_ok(
        &env.app,
        &format!("/api/v2/analytics/users/{pk}/engagers?window=24h"),
    )
    .await;
    assert_eq!(few["id"], "unique_engagers@1");
}

#[tokio::test]
async fn a_compact_series_is_the_same_answer_several_times_smaller_at_once_and_as_a_job() {
    let env = setup(20_000).await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    compact_all(&env.compactor).await;
    let pk = data.target.to_hex();
    let end = data.end as i64;
    let q = format!(
        "/api/v2/analytics/users/{pk}/timeseries?from={}&to={end}&granularity=hour",
        end - 7 * 86_400 - 1_234
    );
    let points = get_ok(&env.app, &q).await;
    let compact = get_ok(&env.app, &format!("{q}&format=compact")).await;
    let typed: na_api_types::CompactTimeSeries = serde_json::from_value(compact.clone()).unwrap();
    let from_points: na_api_types::CompactTimeSeries =
        serde_json::from_value::<na_api_types::TimeSeries>(points.clone())
            .unwrap()
            .into();
    assert_eq!(typed.t, from_points.t);
    assert_eq!(typed.series, from_points.series);
    assert_eq!(typed.window, from_points.window);
    // By hand, for one metric: the i-th value is the i-th point's, at the i-th start.
    let first = &points["series"][0]["points"];
    for (i, p) in first.as_array().unwrap().iter().enumerate() {
        assert_eq!(compact["t"][i].as_i64().unwrap(), ts(&p["at"]));
        assert_eq!(compact["series"][0]["values"][i], p["value"]);
    }
    assert!(
        typed
            .series
            .iter()
            .any(|s| s.values.iter().any(|v| *v > Some(0))),
        "the week has data"
    );
    let (plain, small) = (points.to_string().len(), compact.to_string().len());
    println!("a week of hours, every metric: points {plain} bytes, compact {small} bytes");
    assert!(small * 3 <= plain, "{small} of {plain}");

    // As a job, the result is stored and served compact.
    let jobs = jobs::JobsState::new(
        env.db.clone(),
        jobs::JobSettings::default(),
        Arc::clone(&env.compactor),
    );
    let (status, accepted) = call(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({
            "route": "timeseries", "pubkey": pk, "from": end - 7 * 86_400 - 1_234, "to": end,
            "granularity": "hour", "format": "compact"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let delivery = env.jobs.recv().await.unwrap();
    jobs::run_job(&jobs, &delivery.message).await.unwrap();
    let done = get_ok(&env.app, accepted["status_url"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["result"]["t"], compact["t"]);
    assert_eq!(done["result"]["series"], compact["series"]);
}

#[tokio::test]
async fn a_job_answer_over_the_body_limit_comes_in_pages_that_join_back_to_it() {
    let env = setup_with(
        20_000,
        QueryPolicy {
            max_body_bytes: 100_000,
            ..QueryPolicy::default()
        },
    )
    .await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    compact_all(&env.compactor).await;
    let pk = data.target.to_hex();
    let end = data.end as i64;
    let from = end - 7 * 86_400 - 1_234;
    let worker = |max_body_bytes| {
        jobs::JobsState::new(
            env.db.clone(),
            jobs::JobSettings {
                max_body_bytes,
                ..jobs::JobSettings::default()
            },
            Arc::clone(&env.compactor),
        )
    };
    // A job run by `jobs`: its status once done.
    let run = async |format: &str, jobs: &jobs::JobsState| {
        let (status, accepted) = call(
            &env.app,
            "POST",
            "/api/v2/analytics/jobs",
            Some(&json!({
                "route": "timeseries", "pubkey": pk, "from": from, "to": end,
                "granularity": "hour", "format": format
            })),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
        let status_url = accepted["status_url"].as_str().unwrap();
        // Not run yet: its answer is not there to read.
        let (status, problem) = get(&env.app, &format!("{status_url}/result")).await;
        assert_refused((status, &problem), StatusCode::CONFLICT, "is queued");
        let delivery = env.jobs.recv().await.unwrap();
        jobs::run_job(jobs, &delivery.message).await.unwrap();
        let done = get_ok(&env.app, status_url).await;
        assert_eq!(done["state"], "succeeded", "{done:#}");
        done
    };
    // Too large at once: the refusal says a job's answer comes in pages.
    let q =
        format!("/api/v2/analytics/users/{pk}/timeseries?from={from}&to={end}&granularity=hour");
    let (status, problem) = get(&env.app, &q).await;
    assert_refused(
        (status, &problem),
        StatusCode::BAD_REQUEST,
        "served in pages",
    );

    // Limits under a third of each form's size (258 kB of points, 14 kB compact).
    for (format, limit) in [("points", 80_000), ("compact", 9_000)] {
        let done = run(format, &worker(limit)).await;
        assert_eq!(done["result"], Value::Null, "too large to be inline");
        let pages = done["result_pages"].as_u64().unwrap();
        assert!(pages >= 3, "{format}: {pages} pages");
        let page_url = format!(
            "{}/result",
            done["job_id"]
                .as_str()
                .map(|id| format!("/api/v2/analytics/jobs/{id}"))
                .unwrap()
        );
        assert_eq!(done["result_url"], format!("{page_url}?page=1"));

        // Following `next` from the first page reads every page once, in order, none over
        // the limit, each linked by its header too.
        let mut answers = Vec::new();
        let mut next = Some(done["result_url"].as_str().unwrap().to_owned());
        while let Some(url) = next {
            let (status, headers, page) = call_full(&env.app, "GET", &url, None, None).await;
            assert_eq!(status, StatusCode::OK, "{url}: {page:#}");
            let bytes = page.to_string().len();
            assert!(bytes <= limit, "{url}: {bytes} bytes");
            assert_eq!(page["page"].as_u64().unwrap(), answers.len() as u64 + 1);
            assert_eq!(page["pages"].as_u64().unwrap(), pages);
            next = page["next"].as_str().map(str::to_owned);
            let link = headers.get("link").map(|l| l.to_str().unwrap().to_owned());
            assert_eq!(link, next.as_ref().map(|n| format!("<{n}>; rel=\"next\"")));
            answers.push(serde_json::from_value(page["result"].clone()).unwrap());
        }
        assert_eq!(answers.len() as u64, pages);
        let joined = serde_json::to_value(na_api_types::QueryAnswer::join_pages(answers)).unwrap();

        // Joined, they are the answer of the same job with room for it in one body.
        let whole = run(format, &worker(na_analytics::DEFAULT_MAX_BODY_BYTES)).await;
        assert_eq!(whole["result_pages"], 1);
        for field in ["window", "series", "t", "pubkey"] {
            assert_eq!(joined[field], whole["result"][field], "{format}: {field}");
        }

        // Pages that are not there, and parameters that are not pages.
        for (query, status, says) in [
            (
                format!("page={}", pages + 1),
                StatusCode::NOT_FOUND,
                "there is no page",
            ),
            (
                "page=0".into(),
                StatusCode::BAD_REQUEST,
                "a whole number from 1",
            ),
            (
                "page=-1".into(),
                StatusCode::BAD_REQUEST,
                "a whole number from 1",
            ),
            (
                "page=99999999999".into(),
                StatusCode::BAD_REQUEST,
                "a whole number from 1",
            ),
            (
                "pages=2".into(),
                StatusCode::BAD_REQUEST,
                "unknown query parameter",
            ),
        ] {
            let (got, problem) = get(&env.app, &format!("{page_url}?{query}")).await;
            assert_refused((got, &problem), status, says);
        }
    }

    // A summary is one page, inline in the status and page 1 of its result.
    let (_, accepted) = call(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({ "route": "summary", "pubkey": pk, "window": "7d" })),
    )
    .await;
    let delivery = env.jobs.recv().await.unwrap();
    jobs::run_job(&worker(100_000), &delivery.message)
        .await
        .unwrap();
    let done = get_ok(&env.app, accepted["status_url"].as_str().unwrap()).await;
    assert_eq!(done["result_pages"], 1);
    let page = get_ok(&env.app, done["result_url"].as_str().unwrap()).await;
    assert_eq!(page["result"], done["result"]);
    assert_eq!(page.get("next"), None);
}

#[tokio::test]
async fn an_answer_over_the_body_limit_is_refused_saying_how_to_ask_for_less() {
    let limit = 200_000;
    let env = setup_with(
        20_000,
        QueryPolicy {
            max_body_bytes: limit,
            ..QueryPolicy::default()
        },
    )
    .await;
    let pk = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
    let q = format!("/api/v2/analytics/users/{pk}/timeseries?window=24h&granularity=minute");
    let (status, problem) = get(&env.app, &q).await;
    for says in ["NA_QUERY_MAX_BODY_BYTES", "format=compact"] {
        assert_refused((status, &problem), StatusCode::BAD_REQUEST, says);
    }
    let compact = get_ok(&env.app, &format!("{q}&format=compact")).await;
    assert!(compact.to_string().len() <= limit);
    // A day of minutes: one more point when the window's edges fall inside minutes.
    let unaligned = ts(&compact["window"]["from"]) % 60 != 0;
    assert_eq!(
        compact["t"].as_array().unwrap().len(),
        1_440 + usize::from(unaligned)
    );
}

#[tokio::test]
async fn a_new_metric_version_is_queryable_by_name_through_its_rollout() {
    let env = setup(20_000).await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    compact_all(&env.compactor).await;
    publish(&env.registry, "likes-metrics").await;
    let end = data.end as i64;
    let summary = |metrics: &str| {
        format!(
            "/api/v2/analytics/users/{}/summary?from={}&to={}&metrics={metrics}",
            data.target.to_hex(),
            end - 30 * 86_400,
            end + 3_600
        )
    };

    // Published, in shadow, not recomputed: no buckets to answer from yet.
    let (status, problem) = get(&env.app, &summary("likes_received@2")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem:#}");

    // Recomputed: answered by name@version while still in shadow, beside @1's definition.
    let (tx, _) = tokio::sync::watch::channel(na_compaction::RecomputeProgress::default());
    env.compactor.recompute("likes", 2, &tx).await.unwrap();
    let shadow = get_ok(&env.app, &summary("likes_received@2,reactions_received")).await;
    let (from, to) = (ts(&shadow["window"]["from"]), ts(&shadow["window"]["to"]));
    let likes = &shadow["metrics"][0];
    assert_eq!(likes["id"], "likes_received@2");
    let value = likes["value"].as_i64().unwrap();
    let want = liked_pairs(&env, &data.target, from, to).await;
    match likes["relative_error"].as_f64() {
        None => assert_eq!(value, want, "exact: one like per reactor per note"),
        Some(e) => assert!(
            (value - want).abs() as f64 <= 4.0 * e * want as f64,
            "{value} is {want} within ±{e}"
        ),
    }
    assert!(value > 0 && value <= shadow["metrics"][1]["value"].as_i64().unwrap());
    let (status, problem) = get(&env.app, &summary("likes_received")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem:#}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no active version")
    );

    // Activated: the plain name is @2.
    env.db.activate_plugin("likes", 2).await.unwrap();
    let active = get_ok(&env.app, &summary("likes_received")).await;
    assert_eq!(active["metrics"][0]["id"], "likes_received@2");
    assert_eq!(active["metrics"][0]["value"], likes["value"]);
}

/// Distinct (reactor, note) likes of `author`'s events by others in `[from, to)`, natively.
async fn liked_pairs(env: &Env, author: &nostr::PublicKey, from: i64, to: i64) -> i64 {
    use na_plugin_registry::{FactMapper, NativeMapper};
    let facts: Vec<_> = stored_facts(&env.db)
        .await
        .iter()
        .map(na_plugin_registry::to_fact)
        .collect();
    let keys: std::collections::BTreeSet<Vec<u8>> = NativeMapper::<likes_metrics::Likes>::default()
        .map(&facts)
        .unwrap()
        .iter()
        .filter(|c| *c.subject == author.to_bytes() && (from..to).contains(&c.at))
        .map(|c| c.key.to_vec())
        .collect();
    keys.len() as i64
}
