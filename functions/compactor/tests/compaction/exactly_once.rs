//! Exactly once: delivered in pieces, repeated, raced, the buckets equal a recompute.

use nostr_sdk::prelude::*;

use crate::*;

#[tokio::test]
async fn incremental_compaction_equals_a_recompute() {
    let env = setup(250).await;
    let data = small_dataset(11);
    // Delivery order (late events, duplicates, deletions after their targets), compacted
    // after every piece in batches smaller than a piece.
    let mut batches = 0;
    for piece in data.events.chunks(400) {
        store(&env.db, &piece.iter().collect::<Vec<_>>()).await;
        batches += compact(&env).await.batches;
    }
    assert!(batches > 15, "{batches} batches");

    // Independent of the plugin: counts straight from the facts.
    let target = data.target.to_bytes().to_vec();
    let reactions: i64 = env
        .client
        .query_one(
            "SELECT count(*) FROM facts WHERE class = 4 AND subject = $1 AND flags & (2|8|64) = 0",
            &[&target],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reactions > 100);
    assert_eq!(
        day_total(&env.client, "reactions_received", &data.target).await,
        reactions
    );
    let followers: i64 = env
        .client
        .query_one(
            "SELECT count(*) FROM follow_edges WHERE followee = $1",
            &[&target],
        )
        .await
        .unwrap()
        .get(0);
    let level: i64 = env
        .client
        .query_one(
            "SELECT coalesce(sum(level), 0)::bigint FROM gauge_levels WHERE series = $1 AND subject = $2",
            &[&series(&env.client, "follower_count").await, &target],
        )
        .await
        .unwrap()
        .get(0);
    assert!(followers > 0);
    assert_eq!(
        level, followers,
        "follower_count's level is the follow edges"
    );

    assert_equals_recompute(&env).await;
}

/// A version compacted before month buckets existed (migration V8) gets them rolled up from
/// its day buckets on the next run: the same rows compaction writes as it goes.
#[tokio::test]
async fn month_buckets_rolled_up_from_days_equal_those_written_as_compaction_goes() {
    let env = setup(1_000).await;
    let data = small_dataset(14);
    store(&env.db, &data.events.iter().collect::<Vec<_>>()).await;
    compact(&env).await;
    let written = dump(&env.client).await;
    let months = |rows: &[String]| rows.iter().filter(|r| r.starts_with("month ")).count();
    assert!(months(&written) > 20, "{} month rows", months(&written));
    assert!(
        written
            .iter()
            .any(|r| r.starts_with("month ") && !r.contains(" - ")),
        "some month row is a distinct sketch"
    );
    // As V8 leaves a version compacted before it: no month rows, not built. A stray row
    // (say, from a batch that wrote months before the roll-up) is replaced too.
    env.client
        .batch_execute(
            "DELETE FROM buckets_month;
             INSERT INTO buckets_month (series, subject, bucket, value, contributions)
                 SELECT series, subject, date_trunc('month', bucket, 'UTC'), 999, 1
                 FROM buckets_day WHERE sketch IS NULL LIMIT 1;
             UPDATE compaction_state SET months_built = false",
        )
        .await
        .unwrap();
    let report = compact(&env).await;
    assert_eq!(report.rows, 0);
    assert_eq!(dump(&env.client).await, written);
    let built: bool = env
        .client
        .query_one("SELECT bool_and(months_built) FROM compaction_state", &[])
        .await
        .unwrap()
        .get(0);
    assert!(built);
}

#[tokio::test]
async fn a_replay_changes_nothing() {
    let env = setup(1_000).await;
    let data = small_dataset(12);
    let all: Vec<&Event> = data.events.iter().collect();
    store(&env.db, &all).await;
    compact(&env).await;
    let before = dump(&env.client).await;
    store(&env.db, &all).await;
    let again = compact(&env).await;
    assert_eq!(again.rows, 0, "a replay logs no change");
    assert_eq!(dump(&env.client).await, before);
}

#[tokio::test]
async fn two_compactors_at_once_never_double_count() {
    let env = setup(100).await;
    let data = small_dataset(13);
    store(&env.db, &data.events.iter().collect::<Vec<_>>()).await;
    let host = std::sync::Arc::new(
        na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::default()).unwrap(),
    );
    let second = na_compaction::Compactor::new(
        env.db.clone(),
        host,
        na_compaction::CompactorConfig {
            batch_rows: 100,
            ..Default::default()
        },
    );
    let (a, b) = tokio::join!(
        run_until_caught_up(&env.compactor),
        run_until_caught_up(&second)
    );
    let log_rows: i64 = env
        .client
        .query_one("SELECT count(*) FROM fact_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (a + b) as i64,
        log_rows,
        "every log row applied once, by one of the two"
    );
    assert_equals_recompute(&env).await;
}

async fn run_until_caught_up(c: &na_compaction::Compactor) -> u64 {
    let mut rows = 0;
    loop {
        let r = c.run(None).await.unwrap();
        rows += r.rows;
        if r.caught_up {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_held_lease_makes_a_second_compactor_skip() {
    let env = setup(1_000).await;
    let keys = Keys::generate();
    store(&env.db, &[&note(&keys, now() - 60)]).await;
    na_test_support::wait_for_safe_horizon(&env.client).await;
    let mut conn = env.db.conn().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    assert!(na_storage::compaction_state::try_lease(&tx).await.unwrap());
    let skipped = env.compactor.run_batch().await.unwrap();
    assert!(skipped.busy && skipped.versions.is_empty());
    tx.rollback().await.unwrap();
    let done = env.compactor.run_batch().await.unwrap();
    assert!(!done.busy);
    assert_eq!(done.versions[0].rows, 1);
}

/// A transaction that took its txid first but commits last: a bigserial or timestamp
/// watermark would skip its rows; the snapshot gate waits for it.
#[tokio::test]
async fn a_transaction_committing_late_is_not_skipped() {
    let env = setup(1_000).await;
    let author = Keys::generate();
    store(&env.db, &[&note(&author, now() - 120)]).await;
    compact(&env).await;

    let (slow, conn) = tokio_postgres::connect(&env.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    slow.batch_execute("BEGIN").await.unwrap();
    let insert = "WITH f AS (
            INSERT INTO facts (created_at, event_id, seq, class, actor, flags)
            VALUES (now() - interval '1 minute', $1, 0, 1, $2, 0) RETURNING *)
        INSERT INTO fact_log (sign, created_at, event_id, seq, class, actor, flags)
        SELECT 1, created_at, event_id, seq, class, actor, flags FROM f";
    let pk = author.public_key().to_bytes().to_vec();
    slow.execute(insert, &[&vec![7u8; 32], &pk]).await.unwrap();

    // Later transactions commit meanwhile, with larger txids and ids.
    store(&env.db, &[&note(&author, now() - 60)]).await;
    let held = env.compactor.run(None).await.unwrap();
    assert!(
        !held.caught_up,
        "rows wait for the open transaction: {held:?}"
    );
    assert_eq!(
        day_total(&env.client, "notes_published", &author.public_key()).await,
        1
    );

    slow.batch_execute("COMMIT").await.unwrap();
    compact(&env).await;
    assert_eq!(
        day_total(&env.client, "notes_published", &author.public_key()).await,
        3
    );
    assert_equals_recompute(&env).await;
}
