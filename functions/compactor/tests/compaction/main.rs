//! Compaction against a real PostgreSQL, through the real core@1 component (built by
//! `scripts/build-plugins`): exactly once whatever repeats, races or crashes.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod crash;
mod exactly_once;
mod semantics;

use std::sync::Arc;

use chrono::Utc;
use na_compaction::{Compactor, CompactorConfig, RecomputeProgress, RunReport};
use na_plugin_host::{HostConfig, PluginHost};
use na_plugin_registry::Registry;
use na_storage::Db;
use nostr_sdk::prelude::*;
use tokio_postgres::NoTls;

#[allow(
    missing_debug_implementations,
    reason = "the test harness holds clients that are not Debug"
)]
pub struct Env {
    pub db: Db,
    pub client: tokio_postgres::Client,
    pub url: String,
    pub registry: Registry,
    pub compactor: Compactor,
}

/// A fresh database with core@1 published and recomputed (in shadow, so tests can
/// recompute it again and compare).
pub async fn setup(batch_rows: i64) -> Env {
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 4).await.unwrap();
    assert_eq!(db.relay_id("ws://test").await.unwrap(), 1);
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let host = Arc::new(PluginHost::new(HostConfig::default()).unwrap());
    let registry = Registry::new(db.clone(), host.clone());
    publish(&registry, "core-metrics").await;
    let compactor = Compactor::new(
        db.clone(),
        host,
        CompactorConfig {
            batch_rows,
            ..Default::default()
        },
    );
    let env = Env {
        db,
        client,
        url,
        registry,
        compactor,
    };
    recompute(&env, "core", 1).await;
    env
}

pub async fn publish(registry: &Registry, component: &str) {
    let bytes = na_test_support::built_component(component).unwrap_or_else(|e| panic!("{e}"));
    registry.publish(bytes, "tests").await.unwrap();
}

pub async fn recompute(env: &Env, name: &str, version: i32) -> RecomputeProgress {
    let (tx, rx) = tokio::sync::watch::channel(RecomputeProgress::default());
    env.compactor.recompute(name, version, &tx).await.unwrap();
    rx.borrow().clone()
}

/// Runs the compactor until nothing is left (other tests' transactions on the server can
/// hold rows back for a moment: txids are server-wide).
pub async fn compact(env: &Env) -> RunReport {
    let report = env
        .compactor
        .catch_up(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        report.caught_up && report.failures.is_empty(),
        "compaction never caught up: {report:?}"
    );
    report
}

pub async fn store(db: &Db, events: &[&Event]) {
    let now = Utc::now().timestamp();
    let batch =
        na_ingest::prepare::batch_from_json(events.iter().map(|e| e.as_json()), 1, now).unwrap();
    db.store_batch(&batch).await.unwrap();
}

/// Every bucket row and gauge level, as text, in a fixed order.
pub async fn dump(client: &tokio_postgres::Client) -> Vec<String> {
    let mut sql = String::new();
    for g in ["minute", "hour", "day", "month"] {
        sql.push_str(&format!(
            "SELECT '{g}' || ' ' || series || ' ' || encode(subject, 'hex') || ' ' || bucket
                    || ' ' || dims::text || ' ' || value || ' ' || contributions || ' '
                    || coalesce(encode(sketch, 'hex'), '-') || ' '
                    || coalesce(encode(key_counts, 'hex'), '-') || ' ' || unapplied
             FROM buckets_{g} UNION ALL "
        ));
    }
    sql.push_str(
        "SELECT 'level ' || series || ' ' || encode(subject, 'hex') || ' ' || level
         FROM gauge_levels ORDER BY 1",
    );
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The buckets compaction left equal the buckets a recompute of the same facts builds.
pub async fn assert_equals_recompute(env: &Env) {
    let compacted = dump(&env.client).await;
    assert!(!compacted.is_empty(), "nothing was compacted");
    recompute(env, "core", 1).await;
    let rebuilt = dump(&env.client).await;
    if compacted != rebuilt {
        let only_c: Vec<_> = compacted
            .iter()
            .filter(|r| !rebuilt.contains(r))
            .take(5)
            .collect();
        let only_r: Vec<_> = rebuilt
            .iter()
            .filter(|r| !compacted.contains(r))
            .take(5)
            .collect();
        panic!(
            "compacted {} rows, recomputed {}; only compacted: {only_c:#?}; only recomputed: {only_r:#?}",
            compacted.len(),
            rebuilt.len()
        );
    }
}

/// The series id of a core@1 metric.
pub async fn series(client: &tokio_postgres::Client, metric: &str) -> i32 {
    client
        .query_one(
            "SELECT series FROM plugin_metrics WHERE metric = $1 AND metric_version = 1",
            &[&metric],
        )
        .await
        .unwrap()
        .get(0)
}

/// A metric's total for a subject over its day buckets.
pub async fn day_total(client: &tokio_postgres::Client, metric: &str, subject: &PublicKey) -> i64 {
    let s = series(client, metric).await;
    client
        .query_one(
            "SELECT coalesce(sum(value), 0)::bigint FROM buckets_day WHERE series = $1 AND subject = $2",
            &[&s, &subject.to_bytes().to_vec()],
        )
        .await
        .unwrap()
        .get(0)
}

pub fn small_dataset(seed: u64) -> na_datagen::Dataset {
    na_datagen::generate(
        na_datagen::Tier::Small,
        seed,
        Utc::now().timestamp() as u64 - 60,
    )
    .unwrap()
}

pub fn note(keys: &Keys, at: u64) -> Event {
    EventBuilder::text_note(format!("note at {at}"))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap()
}

pub fn reaction(keys: &Keys, to: &Event, content: &str, at: u64) -> Event {
    EventBuilder::new(Kind::Reaction, content)
        .tag(Tag::event(to.id))
        .tag(Tag::public_key(to.pubkey))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap()
}

pub fn deletion(keys: &Keys, of: &Event, at: u64) -> Event {
    EventBuilder::new(Kind::EventDeletion, "")
        .tag(Tag::event(of.id))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap()
}

pub fn now() -> u64 {
    Utc::now().timestamp() as u64
}
