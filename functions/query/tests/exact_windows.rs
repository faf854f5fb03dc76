//! Exact windows: any `[from, to)` within the raw-fact horizon, at second precision, in
//! every retention state (minute, hour and raw horizons all passed by the data), is
//! answered for exactly the window asked and equals a from-scratch computation over the
//! facts — every metric, gauges and distinct counts included. Summaries, time series and
//! breakdowns alike.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::collections::BTreeMap;

use chrono::Utc;
use na_metrics_abi::{Aggregation, Contribution, Plugin};
use nostr::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use retention::RetentionConfig;
use serde_json::Value;

use common::*;

const DAY: i64 = 86_400;

/// Crafted events at the instants where rounding used to go wrong, relative to `t`: one
/// reaction a second before a 30- and a 365-day window, one at each start, one a second
/// before the end and one at the end; a new follower at the end (not counted) and one a
/// second before (counted).
fn edge_events(target_note: &Event, t: i64) -> Vec<Event> {
    let react = |at: i64| {
        EventBuilder::new(Kind::Reaction, "+")
            .tag(Tag::event(target_note.id))
            .tag(Tag::public_key(target_note.pubkey))
            .custom_created_at(Timestamp::from(at as u64))
            .sign_with_keys(&Keys::generate())
            .unwrap()
    };
    let follow = |at: i64| {
        EventBuilder::new(Kind::ContactList, "")
            .tag(Tag::public_key(target_note.pubkey))
            .custom_created_at(Timestamp::from(at as u64))
            .sign_with_keys(&Keys::generate())
            .unwrap()
    };
    vec![
        react(t - 30 * DAY - 1),
        react(t - 30 * DAY),
        react(t - 365 * DAY - 1),
        react(t - 365 * DAY),
        react(t - 1),
        react(t),
        follow(t - 1),
        follow(t),
    ]
}

/// Each metric's value from scratch over `[from, to)`, by name.
fn truth(contributions: &[Contribution], from: i64, to: i64) -> BTreeMap<String, i64> {
    expected(contributions, from, to)
}

async fn check_summary(env: &Env, pk: &str, contributions: &[Contribution], from: i64, to: i64) {
    let q = format!("/api/v2/analytics/users/{pk}/summary?from={from}&to={to}");
    let s = get_ok(&env.app, &q).await;
    assert_eq!(
        (ts(&s["window"]["from"]), ts(&s["window"]["to"])),
        (from, to),
        "{q}: answered for exactly the window asked"
    );
    assert_eq!(s["window"]["rounded"]["from"], false, "{q}");
    let want = truth(contributions, from, to);
    for (metric, (value, exact)) in values(&s) {
        assert!(exact, "{q}: {metric} is not exact: {s:#}");
        assert_eq!(Some(&value), want.get(&metric), "{q}: {metric}");
    }
}

async fn check_series(
    env: &Env,
    pk: &str,
    contributions: &[Contribution],
    (from, to): (i64, i64),
    granularity: &str,
) {
    let q = format!(
        "/api/v2/analytics/users/{pk}/timeseries?from={from}&to={to}&granularity={granularity}"
    );
    let s = get_ok(&env.app, &q).await;
    let info = core_metrics::Core::describe();
    for series in s["series"].as_array().unwrap() {
        let name = series["metric"].as_str().unwrap();
        let points = series["points"].as_array().unwrap();
        assert_eq!(points.len() as i64, s["window"]["points"].as_i64().unwrap());
        let ends: Vec<i64> = points
            .iter()
            .skip(1)
            .map(|p| ts(&p["at"]))
            .chain([to])
            .collect();
        let gauge = info
            .metrics
            .iter()
            .any(|m| m.name == name && m.aggregation == Aggregation::Gauge);
        for (p, end) in points.iter().zip(ends) {
            let start = ts(&p["at"]).max(from);
            // A gauge's point is its level at the point's end; the others, the part of the
            // bucket inside the window.
            let want = if gauge {
                truth(contributions, 0, end)[name]
            } else {
                truth(contributions, start, end)[name]
            };
            assert_eq!(
                p["value"].as_i64().unwrap_or_default(),
                want,
                "{q}: {name} at {}",
                p["at"]
            );
            assert_eq!(p["exact"], true, "{q}: {name} at {}", p["at"]);
        }
    }
}

async fn check_breakdown(env: &Env, pk: &str, contributions: &[Contribution], from: i64, to: i64) {
    let q = format!(
        "/api/v2/analytics/users/{pk}/breakdown?from={from}&to={to}&metric=reactions_received&dimension=content&top=100"
    );
    let b = get_ok(&env.app, &q).await;
    let index = core_metrics::Core::describe()
        .metrics
        .iter()
        .position(|m| m.name == "reactions_received")
        .unwrap();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for c in contributions {
        if usize::from(c.metric) == index && (from..to).contains(&c.at) {
            let content = c.dims.iter().find(|(k, _)| k == "content").unwrap();
            *want.entry(content.1.clone()).or_default() += c.value;
        }
    }
    want.retain(|_, v| *v != 0);
    let got: BTreeMap<String, i64> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_owned(),
                r["total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want, "{q}");
}

/// Who engaged, from scratch: each pubkey a distinct metric counts in `[from, to)`, with its
/// contributions, most first (then by pubkey), as the engagers route lists them.
async fn check_engagers(
    env: &Env,
    pk: &str,
    contributions: &[Contribution],
    (from, to): (i64, i64),
    metric: &str,
) {
    let q = format!(
        "/api/v2/analytics/users/{pk}/engagers?from={from}&to={to}&metric={metric}&top=100"
    );
    let e = get_ok(&env.app, &q).await;
    let mut want: Vec<(String, i64)> = engagers_from_scratch(contributions, metric, from, to)
        .into_iter()
        .collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    assert_eq!(
        e["total"].as_u64().unwrap() as usize,
        want.len(),
        "{q}: as many as the metric's exact value"
    );
    assert_eq!(want.len() as i64, truth(contributions, from, to)[metric]);
    want.truncate(100);
    let got = listed_engagers(&e);
    assert_eq!(got, want, "{q}");
    assert_eq!(
        e["others"].as_u64().unwrap() as usize + got.len(),
        e["total"].as_u64().unwrap() as usize
    );
}

#[tokio::test]
async fn random_windows_at_second_precision_equal_a_recomputation_in_every_retention_state() {
    // The defaults keep hour buckets as long as the facts: every edge is under an hour.
    exact_in_every_retention_state(RetentionConfig::default()).await;
}

#[tokio::test]
async fn with_hours_kept_for_less_than_the_facts_edges_past_them_are_exact_too() {
    // Edges between the hour and the raw horizon read up to a day of facts.
    exact_in_every_retention_state(RetentionConfig {
        hour_days: 100,
        ..RetentionConfig::default()
    })
    .await;
}

async fn exact_in_every_retention_state(retention: RetentionConfig) {
    let env = setup(5_000).await;
    let now = Utc::now().timestamp();
    let data = na_datagen::generate(na_datagen::Tier::Long, 11, now as u64 - 600).unwrap();
    let target_note = data
        .distinct()
        .into_iter()
        .find(|e| e.pubkey == data.target && e.kind == Kind::TextNote)
        .unwrap()
        .clone();
    let t = now - 2 * DAY + 17;
    let crafted = edge_events(&target_note, t);
    let mut events = data.distinct();
    events.extend(crafted.iter());
    store_events(&env.db, &events).await;
    compact_all(&env.compactor).await;
    // The truth, from every fact, before retention drops the oldest.
    let contributions = contributions_from_scratch(&env.db, &data.target, |_| true).await;

    let report = retention::run(&env.db, &retention, Utc::now(), None)
        .await
        .unwrap();
    let raw_from = report
        .raw
        .raw_from
        .expect("facts past 400 days dropped")
        .timestamp();
    assert!(
        report.buckets.minute_rows > 0 && report.buckets.hour_rows > 0,
        "minute and hour buckets were pruned: {report:?}"
    );
    let pk = data.target.to_hex();

    // The instants rounding used to get wrong.
    let reactions = |w: &BTreeMap<String, i64>| w["reactions_received"];
    for (from, to) in [
        (t - 30 * DAY, t),
        (t - 30 * DAY - 1, t),
        (t - 365 * DAY, t),
        (t - 365 * DAY - 1, t),
        (t - 30 * DAY, t + 1),
        (t - 1, t),
        (t, t + 1),
    ] {
        check_summary(&env, &pk, &contributions, from, to).await;
    }
    let with = truth(&contributions, t - 30 * DAY - 1, t + 1);
    let without = truth(&contributions, t - 30 * DAY, t);
    assert_eq!(
        reactions(&with) - reactions(&without),
        2,
        "the edges differ by the two crafted reactions"
    );
    assert_eq!(
        with["follower_count"] - without["follower_count"],
        1,
        "a follow exactly at `to` is not yet counted"
    );

    // Random windows anywhere inside the raw horizon, any length, at any second.
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    for _ in 0..40 {
        let to = rng.gen_range(raw_from + 2..=now);
        let from = rng.gen_range(raw_from.max(to - 400 * DAY)..to);
        check_summary(&env, &pk, &contributions, from, to).await;
    }
    for _ in 0..6 {
        let to = rng.gen_range(raw_from + 2..=now);
        let from = rng.gen_range(raw_from.max(to - 400 * DAY)..to);
        check_breakdown(&env, &pk, &contributions, from, to).await;
    }
    // Engagers: the whole raw history (dozens of them), and random windows.
    check_engagers(
        &env,
        &pk,
        &contributions,
        (raw_from, now),
        "unique_engagers",
    )
    .await;
    for metric in ["unique_engagers", "unique_engagers", "unique_zappers"] {
        let to = rng.gen_range(raw_from + 2..=now);
        let from = rng.gen_range(raw_from.max(to - 400 * DAY)..to);
        check_engagers(&env, &pk, &contributions, (from, to), metric).await;
    }
    // Series: each point the part of its bucket inside the window (levels at its end).
    for (granularity, back, longest) in [
        ("minute", 7 * DAY, 3 * 3_600),
        ("hour", 99 * DAY, 20 * DAY),
        ("day", 400 * DAY, 300 * DAY),
        ("month", 400 * DAY, 390 * DAY),
    ] {
        for _ in 0..3 {
            let to = rng.gen_range(now - back + longest..=now);
            let from = rng.gen_range((to - longest).max(raw_from)..to);
            check_series(&env, &pk, &contributions, (from, to), granularity).await;
        }
    }

    // Past the raw horizon an edge is rounded outward, and the answer says so.
    let q = format!(
        "/api/v2/analytics/users/{pk}/summary?from={}&to={}",
        raw_from - 3 * DAY - 77,
        now - 5
    );
    let s = get_ok(&env.app, &q).await;
    assert_eq!(s["window"]["rounded"]["from"], true, "{s:#}");
    assert_eq!(s["window"]["rounded"]["to"], false);
    assert_eq!(ts(&s["window"]["from"]) % DAY, 0);
    assert_eq!(ts(&s["window"]["to"]), now - 5);
}

#[tokio::test]
async fn a_rolling_week_of_minutes_is_answered_and_adds_up_to_the_summary() {
    let env = setup(20_000).await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    compact_all(&env.compactor).await;
    let pk = data.target.to_hex();
    let series = get_ok(
        &env.app,
        &format!(
            "/api/v2/analytics/users/{pk}/timeseries?window=7d&granularity=minute&metrics=reactions_received"
        ),
    )
    .await;
    let points = series["series"][0]["points"].as_array().unwrap();
    assert!(
        (10_080..=10_081).contains(&points.len()),
        "{} points",
        points.len()
    );
    let (from, to) = (ts(&series["window"]["from"]), ts(&series["window"]["to"]));
    assert_eq!(to - from, 7 * DAY, "exactly a week");
    let sum: i64 = points.iter().map(|p| p["value"].as_i64().unwrap()).sum();
    let summary = get_ok(
        &env.app,
        &format!(
            "/api/v2/analytics/users/{pk}/summary?from={from}&to={to}&metrics=reactions_received"
        ),
    )
    .await;
    assert_eq!(Value::from(sum), summary["metrics"][0]["value"]);
    let want = truth(
        &contributions_from_scratch(&env.db, &data.target, |_| true).await,
        from,
        to,
    );
    assert_eq!(sum, want["reactions_received"]);
}

/// Distinct counts past the sketch's exact range (256 keys): counted exactly from the facts
/// when the window holds at most the at-once limit of contributions, estimated (and said to
/// be) beyond it, and counted exactly by a job, whose limit is far larger.
#[tokio::test]
async fn distinct_counts_are_exact_within_the_limit_and_in_jobs() {
    let author = Keys::generate();
    let now = Utc::now().timestamp();
    let note = EventBuilder::text_note("popular")
        .custom_created_at(Timestamp::from((now - 7_200) as u64))
        .sign_with_keys(&author)
        .unwrap();
    let reactions: Vec<Event> = (0..300)
        .map(|i| {
            EventBuilder::new(Kind::Reaction, "+")
                .tag(Tag::event(note.id))
                .tag(Tag::public_key(author.public_key()))
                .custom_created_at(Timestamp::from((now - 3_600 + i) as u64))
                .sign_with_keys(&Keys::generate())
                .unwrap()
        })
        .collect();
    let mut events = vec![&note];
    events.extend(reactions.iter());
    let (from, to) = (now - 7_200, now - 60);
    let q = format!(
        "/api/v2/analytics/users/{}/summary?from={from}&to={to}&metrics=unique_engagers",
        author.public_key().to_hex()
    );
    let engagers = |s: &Value| {
        let m = &s["metrics"][0];
        (m["value"].as_i64().unwrap(), m["exact"].as_bool().unwrap())
    };
    for (at_once, want_exact) in [(1_000, true), (0, false)] {
        let policy = query::QueryPolicy {
            exact_distinct: na_analytics::ExactDistinct {
                at_once,
                as_job: 1_000_000,
            },
            ..Default::default()
        };
        let env = setup_with(5_000, policy).await;
        store_events(&env.db, &events).await;
        compact_all(&env.compactor).await;
        let (value, exact) = engagers(&get_ok(&env.app, &q).await);
        assert_eq!(exact, want_exact, "at once up to {at_once}");
        if exact {
            assert_eq!(value, 300);
        } else {
            assert!((value - 300).abs() <= 30, "an estimate near 300: {value}");
        }
        // The same query as a job (no budget): exact either way.
        let params = na_analytics::QueryParams::Summary {
            pubkey: na_analytics::Hex32(author.public_key().to_bytes()),
            window: na_analytics::WindowParams {
                request: Some(na_analytics::WindowRequest::Custom { from, to }),
                now,
            },
            metrics: Some("unique_engagers".into()),
        };
        let job = env.engine.run(&params, None).await.unwrap();
        let job = serde_json::to_value(&job).unwrap();
        assert_eq!(engagers(&job), (300, true), "as a job");
    }
}
