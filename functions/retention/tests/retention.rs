//! Retention against a real PostgreSQL, after real compaction through core@1.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use na_compaction::{Compactor, CompactorConfig, RecomputeProgress};
use na_storage::{Db, IngestBatch, NewEvent};
use nostr_sdk::prelude::*;
use retention::RetentionConfig;
use tokio_postgres::NoTls;

fn to_new(ev: &Event) -> NewEvent {
    na_ingest::prepare::event_from_json(&ev.as_json(), 1, Utc::now().timestamp()).unwrap()
}

async fn compact(c: &Compactor) {
    let report = c
        .catch_up(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(report.caught_up, "compaction never caught up: {report:?}");
}

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn one(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

const DAYS: &str = "SELECT series || ' ' || encode(subject, 'hex') || ' ' || bucket || ' ' \
                    || dims::text || ' ' || value || ' ' || contributions || ' ' \
                    || coalesce(encode(sketch, 'hex'), '-') FROM buckets_day ORDER BY 1";

/// Per reactions_received day: the day bucket, and the sum of its hour buckets.
const DAY_VS_HOURS: &str = "
    SELECT d.bucket::text || ' ' || d.value || ' ' || coalesce(sum(h.value), 0)
    FROM buckets_day d
    JOIN plugin_metrics m ON m.series = d.series AND m.metric = 'reactions_received'
    LEFT JOIN buckets_hour h ON h.series = d.series AND h.subject = d.subject AND h.dims = d.dims
         AND h.bucket >= d.bucket AND h.bucket < d.bucket + interval '1 day'
    WHERE d.bucket >= (SELECT complete_from FROM bucket_horizons WHERE granularity = 'hour')
    GROUP BY d.series, d.subject, d.dims, d.bucket, d.value
    HAVING d.value <> coalesce(sum(h.value), 0)";

/// A fresh database with core@1 published and recomputed (over nothing yet).
async fn setup() -> (Db, tokio_postgres::Client, Arc<Compactor>, String) {
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 4).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    db.relay_id("ws://test").await.unwrap();
    let host = Arc::new(na_plugin_host::PluginHost::new(Default::default()).unwrap());
    let registry = na_plugin_registry::Registry::new(db.clone(), host.clone());
    registry
        .publish(
            na_test_support::built_component("core-metrics").unwrap(),
            "tests",
        )
        .await
        .unwrap();
    let compactor = Compactor::new(db.clone(), host, CompactorConfig::default());
    let (tx, _) = tokio::sync::watch::channel(RecomputeProgress::default());
    compactor.recompute("core", 1, &tx).await.unwrap();
    (db, client, Arc::new(compactor), url)
}

#[tokio::test]
async fn retention_prunes_fine_buckets_and_never_changes_a_day_total() {
    let (db, client, compactor, _) = setup().await;
    let (tx, _) = tokio::sync::watch::channel(RecomputeProgress::default());

    // 30 days of interactions.
    let now = Utc::now();
    let data =
        na_datagen::generate(na_datagen::Tier::Small, 21, now.timestamp() as u64 - 60).unwrap();
    db.store_batch(&IngestBatch {
        events: data.events.iter().map(to_new).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    compact(&compactor).await;
    let days_before = rows(&client, DAYS).await;
    let minutes = one(&client, "SELECT count(*) FROM buckets_minute").await;

    let cfg = RetentionConfig {
        minute_days: 8,
        hour_days: 20,
        ..Default::default()
    };
    let (minute_from, hour_from) = cfg.horizons(now);
    let report = retention::run(&db, &cfg, now, None).await.unwrap();
    let pruned = &report.buckets;
    assert!(pruned.minute_rows > 0 && pruned.hour_rows > 0, "{report:?}");
    assert!(
        (pruned.minute_rows as i64) < minutes,
        "recent minutes are kept"
    );
    assert_eq!(
        (pruned.minute_from, pruned.hour_from),
        (Some(minute_from), Some(hour_from))
    );
    assert_eq!(minute_from.timestamp() % 3_600, 0, "on an hour boundary");
    assert_eq!(hour_from.timestamp() % 86_400, 0, "on a day boundary");
    let early = |table: &str, from: DateTime<Utc>| {
        let client = &client;
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE bucket < '{}'",
            from.to_rfc3339()
        );
        async move { one(client, &sql).await }
    };
    assert_eq!(early("buckets_minute", minute_from).await, 0);
    assert_eq!(early("buckets_hour", hour_from).await, 0);
    assert_eq!(
        rows(&client, DAYS).await,
        days_before,
        "every day bucket unchanged"
    );
    assert!(
        rows(&client, DAY_VS_HOURS).await.is_empty(),
        "kept hours still sum to their days"
    );

    // Again, and with an earlier clock: nothing more goes, no horizon moves back.
    let again = retention::run(&db, &cfg, now - chrono::TimeDelta::days(3), None)
        .await
        .unwrap();
    assert_eq!((again.buckets.minute_rows, again.buckets.hour_rows), (0, 0));
    assert_eq!(again.buckets.minute_from, Some(minute_from));

    // A late event from before the minute horizon: hour and day buckets, no minute bucket.
    let (author, fan) = (Keys::generate(), Keys::generate());
    let at = (now.timestamp() - 10 * 86_400) as u64;
    let note = EventBuilder::text_note("old")
        .custom_created_at(Timestamp::from(at - 60))
        .sign_with_keys(&author)
        .unwrap();
    let like = EventBuilder::new(Kind::Reaction, "+")
        .tag(Tag::event(note.id))
        .tag(Tag::public_key(author.public_key()))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(&fan)
        .unwrap();
    db.store_batch(&IngestBatch {
        events: vec![to_new(&note), to_new(&like)],
        ..Default::default()
    })
    .await
    .unwrap();
    compact(&compactor).await;
    let subject = author.public_key().to_bytes().to_vec();
    let count = |table: &'static str| {
        let (client, subject) = (&client, subject.clone());
        async move {
            client
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {table} b JOIN plugin_metrics m USING (series)
                              WHERE m.metric = 'reactions_received' AND b.subject = $1"
                    ),
                    &[&subject],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(
        (
            count("buckets_minute").await,
            count("buckets_hour").await,
            count("buckets_day").await
        ),
        (0, 1, 1)
    );

    // Applied fact-log rows go (other tests' open snapshots may hold some back a moment).
    let started = std::time::Instant::now();
    let mut deleted = report.fact_log_rows;
    while one(&client, "SELECT count(*) FROM fact_log").await > 0 {
        assert!(
            started.elapsed().as_secs() < 60,
            "the applied fact log was never pruned"
        );
        deleted += retention::run(&db, &cfg, now, None)
            .await
            .unwrap()
            .fact_log_rows;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(deleted > 1_000, "{deleted}");
    // And the buckets still equal a recompute from the facts (which reads no log).
    let before = rows(&client, DAYS).await;
    compactor.recompute("core", 1, &tx).await.unwrap();
    assert_eq!(rows(&client, DAYS).await, before);
}

/// A note by `author` and a like of it by `fan`, at `at`.
fn note_and_like(author: &Keys, fan: &Keys, at: u64) -> (Event, Event) {
    let note = EventBuilder::text_note("then")
        .custom_created_at(Timestamp::from(at - 60))
        .sign_with_keys(author)
        .unwrap();
    let like = like_of(&note, fan, at);
    (note, like)
}

fn like_of(note: &Event, fan: &Keys, at: u64) -> Event {
    EventBuilder::new(Kind::Reaction, "+")
        .tag(Tag::event(note.id))
        .tag(Tag::public_key(note.pubkey))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(fan)
        .unwrap()
}

async fn store(db: &Db, events: &[&Event]) -> na_storage::BatchOutcome {
    db.store_batch(&IngestBatch {
        events: events.iter().map(|e| to_new(e)).collect(),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn raw_partitions_past_the_horizon_go_whole_and_every_count_stays() {
    let (db, client, compactor, url) = setup().await;
    let now = Utc::now();
    let (author, fan, late_fan) = (Keys::generate(), Keys::generate(), Keys::generate());
    let old_at = (now.timestamp() - 500 * 86_400) as u64;
    let (old_note, old_like) = note_and_like(&author, &fan, old_at);
    let (new_note, new_like) = note_and_like(&author, &fan, now.timestamp() as u64 - 3_600);
    store(&db, &[&old_note, &old_like, &new_note, &new_like]).await;
    compact(&compactor).await;
    let days = rows(&client, DAYS).await;
    let old_month = format!(
        "{}",
        DateTime::from_timestamp(old_at as i64, 0)
            .unwrap()
            .format("%Y_%m")
    );

    // Past 400 days, the old month's partitions go; no day total changes.
    let cfg = RetentionConfig::default();
    let report = retention::run(&db, &cfg, now, None).await.unwrap();
    let raw = &report.raw;
    assert!(
        raw.partitions.contains(&format!("events_{old_month}"))
            && raw.partitions.contains(&format!("facts_{old_month}")),
        "{raw:?}"
    );
    let raw_from = raw.raw_from.unwrap();
    assert!(raw_from <= now - chrono::TimeDelta::days(400), "{raw:?}");
    assert!(raw_from > now - chrono::TimeDelta::days(432), "{raw:?}");
    for table in ["events", "facts"] {
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE created_at < '{}'",
            raw_from.to_rfc3339()
        );
        assert_eq!(one(&client, &sql).await, 0, "{table}");
    }
    assert_eq!(
        one(&client, "SELECT count(*) FROM facts").await,
        2,
        "recent facts kept"
    );
    assert_eq!(rows(&client, DAYS).await, days, "every day total unchanged");

    // The old events delivered again: known ids, duplicates, nothing logged or counted.
    let logged = one(&client, "SELECT count(*) FROM fact_log").await;
    let again = store(&db, &[&old_note, &old_like]).await;
    assert!(again.inserted.is_empty(), "{again:?}");
    assert_eq!(again.duplicates, 2);
    assert_eq!(one(&client, "SELECT count(*) FROM fact_log").await, logged);
    compact(&compactor).await;
    assert_eq!(rows(&client, DAYS).await, days, "a replay changes nothing");

    // A like of the old note that was never seen: stored (its partition comes back),
    // credited to the note's author, counted in its day; dropped again next time.
    let late = like_of(&old_note, &late_fan, old_at + 60);
    assert_eq!(store(&db, &[&late]).await.inserted.len(), 1);
    compact(&compactor).await;
    let old_day = DateTime::from_timestamp(old_at as i64 - old_at as i64 % 86_400, 0).unwrap();
    let likes_that_day = one(
        &client,
        &format!(
            "SELECT coalesce(sum(b.value), 0)::bigint FROM buckets_day b
             JOIN plugin_metrics m USING (series)
             WHERE m.metric = 'reactions_received' AND b.bucket = '{}'
               AND b.subject = '\\x{}'",
            old_day.to_rfc3339(),
            author.public_key().to_hex()
        ),
    )
    .await;
    assert_eq!(likes_that_day, 2, "the late like counts beside the first");

    // A reader of the old partition holds it: the drop gives up instead of stalling ingest.
    let (reader, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    reader.batch_execute("BEGIN").await.unwrap();
    reader
        .query_one(&format!("SELECT count(*) FROM facts_{old_month}"), &[])
        .await
        .unwrap();
    let held = db
        .drop_raw_partitions(now - chrono::TimeDelta::days(400))
        .await
        .unwrap();
    assert!(held.busy && held.partitions.is_empty(), "{held:?}");
    reader.batch_execute("COMMIT").await.unwrap();
    let report = retention::run(&db, &cfg, now, None).await.unwrap();
    assert!(
        report
            .raw
            .partitions
            .contains(&format!("facts_{old_month}")),
        "{report:?}"
    );
    assert_eq!(
        report.raw.raw_from,
        Some(raw_from),
        "the horizon only moves forward"
    );

    // A version recomputed now sees only retained facts, and answers say where they start.
    let (tx, _) = tokio::sync::watch::channel(RecomputeProgress::default());
    compactor.recompute("core", 1, &tx).await.unwrap();
    db.activate_plugin("core", 1).await.unwrap();
    let host = Arc::new(na_plugin_host::PluginHost::new(Default::default()).unwrap());
    let engine = na_analytics::Engine::new(db.clone(), host);
    let summary = engine
        .summary(&na_analytics::SummaryRequest {
            subject: author.public_key().to_bytes(),
            window: na_analytics::WindowRequest::Custom {
                from: old_at as i64 - 86_400,
                to: now.timestamp(),
            },
            metrics: Some("reactions_received".into()),
            now: now.timestamp(),
            budget: None,
        })
        .await
        .unwrap();
    assert_eq!(summary.answer.watermarks[0].facts_from, Some(raw_from));
    assert_eq!(summary.answer.completeness.missing_before, Some(raw_from));
    assert_eq!(summary.metrics[0].value, Some(1), "only the retained like");
}

#[tokio::test]
async fn dual_run_comparisons_past_their_horizon_are_deleted() {
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 2).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    for age in ["40 days", "29 days"] {
        client
            .execute(
                &format!(
                    "INSERT INTO drift_observations (observed_at, flag, pubkey, cohort,
                         window_class, window_from, window_to, cutoff, live_edge, metrics,
                         differs)
                     VALUES (now() - interval '{age}', 'analytics-v1-summary', 'ab', 1, '7d',
                             now(), now(), now(), false, '{{}}', false)"
                ),
                &[],
            )
            .await
            .unwrap();
    }
    let cfg = RetentionConfig::default();
    let report = retention::run(&db, &cfg, Utc::now(), None).await.unwrap();
    assert_eq!(report.drift_observations, 1, "the one past 30 days");
    assert_eq!(
        one(&client, "SELECT count(*) FROM drift_observations").await,
        1
    );
}
