//! Late events, deletions after compaction, distinct counts, failing plugins.

use std::sync::Arc;

use chrono::DurationRound;
use na_domain::Granularity;
use na_metrics_abi::{Contributions, Fact, PluginInfo};
use na_plugin_host::{PluginError, PluginFailure};
use na_plugin_registry::FactMapper;
use nostr_sdk::prelude::*;

use crate::*;

async fn rows_at(env: &Env, table: &str, metric: &str, subject: &PublicKey, at: u64) -> Vec<i64> {
    let s = series(&env.client, metric).await;
    let g = match table {
        "buckets_minute" => Granularity::Minute,
        "buckets_hour" => Granularity::Hour,
        "buckets_day" => Granularity::Day,
        _ => Granularity::Month,
    };
    let bucket = chrono::DateTime::from_timestamp(g.bucket(at as i64), 0).unwrap();
    env.client
        .query(
            &format!(
                "SELECT value FROM {table} WHERE series = $1 AND subject = $2 AND bucket = $3"
            ),
            &[&s, &subject.to_bytes().to_vec(), &bucket],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_late_event_lands_in_its_past_bucket() {
    let env = setup(1_000).await;
    let (author, fan) = (Keys::generate(), Keys::generate());
    let post = note(&author, now() - 20 * 86_400);
    store(&env.db, &[&post, &reaction(&fan, &post, "+", now() - 60)]).await;
    compact(&env).await;
    assert_eq!(
        day_total(&env.client, "reactions_received", &post.pubkey).await,
        1
    );

    // Arrives now, written three days ago.
    let late_at = now() - 3 * 86_400 - 7;
    store(
        &env.db,
        &[&reaction(&Keys::generate(), &post, "🤙", late_at)],
    )
    .await;
    compact(&env).await;
    for table in ["buckets_minute", "buckets_hour", "buckets_day"] {
        assert_eq!(
            rows_at(&env, table, "reactions_received", &post.pubkey, late_at).await,
            vec![1],
            "{table}"
        );
    }
    // Its month may hold the first reaction too (another row: other content).
    let same_month =
        Granularity::Month.bucket(late_at as i64) == Granularity::Month.bucket(now() as i64 - 60);
    assert_eq!(
        rows_at(
            &env,
            "buckets_month",
            "reactions_received",
            &post.pubkey,
            late_at
        )
        .await,
        if same_month { vec![1, 1] } else { vec![1] }
    );
    assert_eq!(
        day_total(&env.client, "reactions_received", &post.pubkey).await,
        2
    );
    assert_equals_recompute(&env).await;
}

#[tokio::test]
async fn a_deletion_after_compaction_takes_the_contribution_back() {
    let env = setup(1_000).await;
    let (author, fan, other) = (Keys::generate(), Keys::generate(), Keys::generate());
    let post = note(&author, now() - 3_600);
    let like = reaction(&fan, &post, "+", now() - 1_800);
    let kept = reaction(&other, &post, "+", now() - 1_700);
    store(&env.db, &[&post, &like, &kept]).await;
    compact(&env).await;
    assert_eq!(
        day_total(&env.client, "reactions_received", &post.pubkey).await,
        2
    );
    assert_eq!(
        day_total(&env.client, "unique_engagers", &post.pubkey).await,
        2
    );

    store(&env.db, &[&deletion(&fan, &like, now() - 60)]).await;
    compact(&env).await;
    assert_eq!(
        day_total(&env.client, "reactions_received", &post.pubkey).await,
        1
    );
    // The distinct count is exact here: the retracted engager is gone, not just counted.
    assert_eq!(
        day_total(&env.client, "unique_engagers", &post.pubkey).await,
        1
    );
    let unapplied: i64 = env
        .client
        .query_one(
            "SELECT coalesce(sum(unapplied), 0)::bigint FROM buckets_day",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unapplied, 0);

    // The deleter's own reaction count loses it too, and no empty rows are left behind.
    assert_eq!(
        day_total(&env.client, "reactions_published", &fan.public_key()).await,
        0
    );
    let fan_rows: i64 = env
        .client
        .query_one(
            "SELECT count(*) FROM buckets_minute WHERE subject = $1",
            &[&fan.public_key().to_bytes().to_vec()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fan_rows, 0);
    assert_equals_recompute(&env).await;
}

/// Fails every batch, like a plugin that traps.
#[derive(Debug)]
struct Broken(PluginInfo);

impl FactMapper for Broken {
    fn info(&self) -> &PluginInfo {
        &self.0
    }
    fn map(&self, _: &[Fact]) -> Result<Contributions, PluginError> {
        Err(PluginError::new(
            self.0.id(),
            PluginFailure::Trap("unreachable executed".into()),
        ))
    }
}

#[tokio::test]
async fn a_failing_plugin_stops_only_itself() {
    let env = setup(1_000).await;
    publish(&env.registry, "likes-metrics").await;
    recompute(&env, "likes", 2).await;
    let likes = na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::default())
        .unwrap()
        .load(&na_test_support::built_component("likes-metrics").unwrap())
        .unwrap()
        .info;
    env.compactor
        .use_mapper("likes", 2, Arc::new(Broken(likes)));

    let (author, fan) = (Keys::generate(), Keys::generate());
    let post = note(&author, now() - 600);
    store(&env.db, &[&post, &reaction(&fan, &post, "+", now() - 60)]).await;
    let run = loop {
        let run = env.compactor.run(None).await.unwrap();
        if run.caught_up {
            break run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(run.failures.len(), 1, "{run:?}");
    assert!(run.failures[0].contains("likes@2"), "{}", run.failures[0]);
    // core@1 went on.
    assert_eq!(
        day_total(&env.client, "reactions_received", &post.pubkey).await,
        1
    );
    let row = env
        .client
        .query_one(
            "SELECT applied_rows, last_error FROM compaction_state WHERE plugin_name = 'likes'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "likes@2 did not move");
    assert!(
        row.get::<_, Option<String>>(1)
            .unwrap()
            .contains("unreachable")
    );
    let lag = run.lag.iter().find(|l| l.plugin == "likes@2").unwrap();
    assert!(lag.rows >= 2, "{lag:?}");
}

/// follower_count at an instant, as the query engine answers it (its level at exactly a
/// window's `to`, in every retention state): equal to counting the flows before it in the
/// facts.
#[tokio::test]
async fn a_gauge_at_any_instant_is_its_level_minus_later_flows() {
    let env = setup(1_000).await;
    let data = small_dataset(15);
    store(&env.db, &data.events.iter().collect::<Vec<_>>()).await;
    compact(&env).await;
    let target = data.target.to_bytes();
    let engine = na_analytics::Engine::new(env.db.clone(), Arc::clone(env.registry.host()));
    let now = chrono::Utc::now();
    let reading = |at: chrono::DateTime<chrono::Utc>| {
        let engine = &engine;
        async move {
            let req = na_analytics::SummaryRequest {
                subject: target,
                window: na_analytics::WindowRequest::Custom {
                    from: at.timestamp() - 86_400,
                    to: at.timestamp(),
                },
                metrics: Some("follower_count@1".into()),
                now: now.timestamp(),
                budget: None,
            };
            let answer = engine.summary(&req).await.unwrap();
            assert_eq!(
                answer.window.to, at,
                "answered at exactly the instant asked"
            );
            answer.metrics[0].value.unwrap()
        }
    };
    let expected = |at: chrono::DateTime<chrono::Utc>| {
        let (client, target) = (&env.client, target.to_vec());
        async move {
            client
                .query_one(
                    "SELECT coalesce(sum(CASE class WHEN 14 THEN -1 ELSE 1 END), 0)::bigint
                     FROM facts WHERE class IN (12, 13, 14) AND subject = $1
                       AND flags & (8|64) = 0 AND created_at < $2",
                    &[&target, &at],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let instants: Vec<_> = (0..=32)
        .map(|d| now - chrono::TimeDelta::days(d) - chrono::TimeDelta::seconds(d * 2_237))
        .map(|t| t.duration_trunc(chrono::TimeDelta::seconds(1)).unwrap())
        .collect();
    let mut distinct_values = std::collections::HashSet::new();
    for at in &instants {
        let value = reading(*at).await;
        assert_eq!(value, expected(*at).await, "at {at}");
        distinct_values.insert(value);
    }
    assert!(
        distinct_values.len() > 5,
        "the follower count moves: {distinct_values:?}"
    );

    // Past the retention horizons (minutes, then hours pruned), still exact.
    let minute_from = now - chrono::TimeDelta::days(8);
    let hour_from = now - chrono::TimeDelta::days(20);
    let pruned = env
        .db
        .prune_buckets(
            minute_from
                .duration_trunc(chrono::TimeDelta::hours(1))
                .unwrap(),
            hour_from
                .duration_trunc(chrono::TimeDelta::days(1))
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(pruned.minute_rows > 0, "{pruned:?}");
    for at in &instants {
        assert_eq!(reading(*at).await, expected(*at).await, "at {at}");
    }
}
