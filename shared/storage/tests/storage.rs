//! The canonical write path against a real PostgreSQL.
#![allow(clippy::unwrap_used)] // a test or benchmark reports failure by panicking

use chrono::{DateTime, Utc};
use na_domain::{RawEvent, normalize, verify};
use na_storage::{Db, IngestBatch, NewEvent, Tally};
use nostr_sdk::prelude::*;
use tokio_postgres::NoTls;

async fn setup() -> (Db, tokio_postgres::Client, String) {
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 2).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    (db, client, url)
}

fn new_event(keys: &Keys, content: &str, at: u64, relay: i16) -> NewEvent {
    let ev = EventBuilder::text_note(content)
        .tag(Tag::public_key(Keys::generate().public_key()))
        .tag(Tag::expiration(Timestamp::from(at + 3600)))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap();
    let raw = RawEvent::from_json(&ev.as_json()).unwrap();
    let event = verify(raw, Utc::now().timestamp()).unwrap();
    let facts = normalize(&event);
    NewEvent {
        event,
        facts,
        relays: vec![relay],
    }
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn replaying_a_batch_stores_nothing_twice_and_merges_provenance() {
    let (db, client, _) = setup().await;
    let (a, b) = (
        db.relay_id("ws://a").await.unwrap(),
        db.relay_id("ws://b").await.unwrap(),
    );
    assert_eq!(
        db.relay_id("ws://a").await.unwrap(),
        a,
        "relay ids are stable"
    );
    let keys = Keys::generate();
    let now = Utc::now().timestamp() as u64;
    let events: Vec<NewEvent> = (0..10)
        .map(|i| new_event(&keys, &format!("n{i}"), now - i * 100, a))
        .collect();
    let batch = IngestBatch {
        events: events.clone(),
        rejected: vec![Tally {
            relay_id: a,
            outcome: "bad_signature",
            count: 2,
        }],
        watermarks: vec![(a, DateTime::from_timestamp(now as i64, 0).unwrap())],
    };
    let first = db.store_batch(&batch).await.unwrap();
    assert_eq!(
        (first.inserted.len(), first.duplicates, first.facts),
        (10, 0, 20)
    );

    // The same events again, from another relay and twice within one batch.
    let mut again: Vec<NewEvent> = events
        .iter()
        .cloned()
        .map(|mut e| {
            e.relays = vec![b];
            e
        })
        .collect();
    again.push(again[0].clone());
    let second = db
        .store_batch(&IngestBatch {
            events: again,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (second.inserted.len(), second.duplicates, second.facts),
        (0, 11, 0)
    );
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 10);
    assert_eq!(count(&client, "SELECT count(*) FROM facts").await, 20);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM facts WHERE expires_at = created_at + interval '1 hour'"
        )
        .await,
        20,
        "NIP-40 expiration is stored with every fact"
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM events WHERE seen_on = '{{{a},{b}}}'")
        )
        .await,
        10
    );
    assert_eq!(db.counter("ws://a", "accepted").await.unwrap(), 10);
    assert_eq!(db.counter("ws://a", "bad_signature").await.unwrap(), 2);
    assert_eq!(db.counter("ws://b", "duplicate").await.unwrap(), 11);

    // Watermarks never move backwards.
    let earlier = IngestBatch {
        watermarks: vec![(a, DateTime::from_timestamp(1, 0).unwrap())],
        ..Default::default()
    };
    db.store_batch(&earlier).await.unwrap();
    assert_eq!(
        db.watermark(a).await.unwrap().unwrap().timestamp(),
        now as i64
    );
    let status = db.ingest_status().await.unwrap();
    assert_eq!(status.len(), 2);
    assert_eq!(status[0].counters["accepted"], 10);
}

#[tokio::test]
async fn late_events_get_partitions_of_their_own_month() {
    let (db, client, _) = setup().await;
    let r = db.relay_id("ws://a").await.unwrap();
    let keys = Keys::generate();
    // 2019 (archive), May 2022, and now.
    let times = [
        1_560_000_000u64,
        1_652_000_000,
        Utc::now().timestamp() as u64,
    ];
    let events: Vec<NewEvent> = times
        .iter()
        .map(|t| new_event(&keys, "late", *t, r))
        .collect();
    db.store_batch(&IngestBatch {
        events,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 3);
    assert_eq!(
        count(&client, "SELECT count(*) FROM events_archive").await,
        1
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM events_2022_05").await,
        1
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts_2022_05").await,
        2
    );
    db.ensure_partitions_ahead(2).await.unwrap();
    let ahead = Utc::now()
        .checked_add_months(chrono::Months::new(2))
        .unwrap()
        .format("events_%Y_%m")
        .to_string();
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM pg_class WHERE relname = '{ahead}'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused() {
    let (_db, client, url) = setup().await;
    client
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             SELECT 999, 'from_the_future', applied_on, checksum FROM refinery_schema_history WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = Db::connect(&url, 1).await.unwrap_err();
    assert!(err.to_string().contains("migrations"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_in_the_error() {
    let err = Db::connect("postgres://postgres@127.0.0.1:1/x", 1)
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    let bad = Db::connect("not a url", 1).await.unwrap_err();
    assert!(bad.to_string().contains("DATABASE_URL"), "{bad}");
}
