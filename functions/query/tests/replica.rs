//! The analytics reads on a real streaming replica (`pg_basebackup` of a server of the
//! test's own, following its WAL): answers are exact as of what the replica has replayed
//! and say so (`replayed_to`), while everything else goes to the primary.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use na_test_support::{PgServer, PgSetup};
use query::{AdminAccess, AppState, QueryPolicy};

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Waits until the replica has replayed everything the primary has written.
async fn caught_up(primary: &tokio_postgres::Client, replica: &tokio_postgres::Client) {
    let written: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let started = Instant::now();
    loop {
        let behind: bool = replica
            .query_one(
                "SELECT pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn()) > 0",
                &[&written],
            )
            .await
            .unwrap()
            .get(0);
        if !behind {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the replica did not replay to {written}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The replica's pool, once it accepts connections (it starts recovering first).
async fn open_replica(url: &str) -> na_storage::Db {
    let started = Instant::now();
    loop {
        match query::connect_db(url, 2).await {
            Ok(db) => return db,
            Err(e) if started.elapsed() < Duration::from_secs(60) => {
                eprintln!("replica not ready: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the replica never opened: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_on_a_replica_are_exact_as_of_what_it_replayed() {
    let primary = PgServer::start("primary", &PgSetup::default());
    let url = primary.url("nostr_analytics");
    let env = setup_at(&url, 700, QueryPolicy::default(), AdminAccess::Open.into()).await;
    let data = small_dataset();
    let events = data.distinct();
    let (first, rest) = events.split_at(events.len() / 2);
    store_events(&env.db, first).await;
    compact_all(&env.compactor).await;

    let replica = PgServer::replica_of(&primary, "replica");
    let read = open_replica(&replica.url("nostr_analytics")).await;
    let (queue, _jobs) = na_queue::InProcessQueue::new(1);
    let state = AppState::new(
        env.db.clone(),
        Arc::new(queue),
        AdminAccess::Open,
        env.registry.clone(),
    );
    let on_replica = query::app(state.with_read(read));
    let (to_primary, to_replica) = (
        client(&url).await,
        client(&replica.url("nostr_analytics")).await,
    );
    // A commit after the copy, as ingest makes every few seconds: the replica has replayed
    // one, and knows when it was.
    to_primary
        .batch_execute("CREATE TABLE replica_probe (); DROP TABLE replica_probe")
        .await
        .unwrap();
    caught_up(&to_primary, &to_replica).await;

    let end = data.end as i64;
    let window = format!("from={}&to={}", end - 31 * 86_400, end + 3_600);
    let path = format!(
        "/api/v2/analytics/users/{}/summary?{window}",
        data.target.to_hex()
    );
    let before = assert_summary_is_exact(&env, &data.target, &window).await;
    assert!(before.get("replayed_to").is_none(), "read on the primary");
    let replicated = get_ok(&on_replica, &path).await;
    assert_eq!(values(&replicated), values(&before));
    let replayed = replicated["replayed_to"].clone();
    assert!(replayed.is_string(), "{replicated:#}");

    // Replay paused: the primary moves on, the replica answers as of where it stopped,
    // and says so.
    to_replica
        .execute("SELECT pg_wal_replay_pause()", &[])
        .await
        .unwrap();
    let started = Instant::now();
    while to_replica
        .query_one("SELECT pg_get_wal_replay_pause_state()", &[])
        .await
        .unwrap()
        .get::<_, String>(0)
        != "paused"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replay never paused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // In one transaction, so the replica holds either none of it or all of it.
    let now = chrono::Utc::now().timestamp();
    let batch = na_ingest::prepare::batch_from_json(
        rest.iter().map(|e| nostr::JsonUtil::as_json(*e)),
        1,
        now,
    )
    .unwrap();
    env.db.store_batch(&batch).await.unwrap();
    let after = assert_summary_is_exact(&env, &data.target, &window).await;
    assert_ne!(values(&after), values(&before), "the second half counts");
    let paused = get_ok(&on_replica, &path).await;
    assert_eq!(values(&paused), values(&before));
    let lagging = paused["replayed_to"].as_str().unwrap();
    assert!(lagging <= paused["as_of"].as_str().unwrap(), "{paused:#}");

    // Resumed: it replays the rest and answers what the primary answers (the new events
    // as live delta, read from the replica's fact log in the same snapshot as its buckets).
    to_replica
        .execute("SELECT pg_wal_replay_resume()", &[])
        .await
        .unwrap();
    caught_up(&to_primary, &to_replica).await;
    // Until the replayed commits show in its snapshots, the replica answers what it
    // answered before, never anything in between.
    let started = Instant::now();
    let resumed = loop {
        let answer = get_ok(&on_replica, &path).await;
        if values(&answer) == values(&after) {
            break answer;
        }
        assert_eq!(values(&answer), values(&before), "as of a replay point");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        resumed["replayed_to"].as_str().unwrap() > lagging,
        "{} then {}",
        lagging,
        resumed["replayed_to"]
    );
}
