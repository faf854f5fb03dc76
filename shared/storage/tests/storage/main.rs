//! The canonical write path against a real PostgreSQL.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

mod bounded;
mod replaceable;
mod write_path;

use chrono::Utc;
use na_storage::{Db, NewEvent};
use nostr_sdk::prelude::*;
use tokio_postgres::NoTls;

pub async fn setup() -> (Db, tokio_postgres::Client, String) {
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 2).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    (db, client, url)
}

pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// What the ingest pipeline hands storage (na-ingest's `prepare`, which depends on this
/// crate): the event verified, with its facts.
pub fn to_new(ev: &Event, relay: i16) -> NewEvent {
    let raw = na_domain::RawEvent::from_json(&ev.as_json()).unwrap();
    let event = na_domain::verify(raw, Utc::now().timestamp()).unwrap();
    NewEvent {
        facts: na_domain::normalize(&event),
        event,
        relays: vec![relay],
    }
}

/// The facts table, and the fact log netted per row: the two must always agree.
pub const FACTS: &str =
    "SELECT event_id, seq, class, actor, subject, flags FROM facts ORDER BY event_id, seq";
pub const NET_LOG: &str = "SELECT event_id, seq, class, actor, subject, flags FROM fact_log
                       GROUP BY event_id, seq, class, actor, subject, flags HAVING sum(sign) = 1
                       ORDER BY event_id, seq";

pub fn small_dataset() -> na_datagen::Dataset {
    na_datagen::generate(
        na_datagen::Tier::Small,
        5,
        Utc::now().timestamp() as u64 - 60,
    )
    .unwrap()
}

pub type FactRow = (Vec<u8>, i16, i16, Vec<u8>, Option<Vec<u8>>, i32);

pub async fn fact_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<FactRow> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}
