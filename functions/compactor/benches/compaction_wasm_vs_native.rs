//! Compaction end to end with the WASM `core@1` against the same plugin compiled into the
//! host, in one run over one database.
//!
//! `scripts/build-plugins core-metrics && cargo bench --workspace --bench compaction_wasm_vs_native`
//! (tier: `NA_BENCH_TIER=small|medium|large`, default large). The dataset is ingested
//! through the real write path; then the whole fact log is compacted from the start, once
//! through the WASM component and once through the native build of the same crate (the
//! position and buckets reset in between), and the two must write the same buckets. The
//! recompute path (facts table -> buckets) is timed both ways too.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark reports failure by panicking"
)]

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use na_compaction::{Compactor, CompactorConfig, RecomputeProgress, RunReport};
use na_plugin_host::{HostConfig, PluginHost};
use na_plugin_registry::NativeMapper;
use na_storage::{Db, IngestBatch, NewEvent};
use nostr_sdk::JsonUtil;
use rayon::prelude::*;
use tokio_postgres::NoTls;

/// The functions' allocator, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let data = tokio::task::spawn_blocking(|| na_datagen::bench_dataset(na_datagen::Tier::Large))
        .await?
        .map_err(anyhow::Error::msg)?;
    let tier = data.tier;
    let distinct = data.distinct();
    println!(
        "dataset {}: {} distinct events (ready in {:.1} s)",
        tier.name(),
        distinct.len(),
        started.elapsed().as_secs_f64()
    );

    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 4).await?;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    let relay = db.relay_id("ws://bench").await?;
    let host = Arc::new(PluginHost::new(HostConfig::default())?);
    let registry = na_plugin_registry::Registry::new(db.clone(), host.clone());
    registry
        .publish(
            na_test_support::built_component("core-metrics").map_err(anyhow::Error::msg)?,
            "bench",
        )
        .await?;
    let wasm = Compactor::new(db.clone(), host.clone(), CompactorConfig::default());
    let (progress, _) = tokio::sync::watch::channel(RecomputeProgress::default());
    // Positioned at the start: compaction will take the whole log.
    wasm.recompute("core", 1, &progress).await?;

    let ti = Instant::now();
    let now = Utc::now().timestamp();
    for chunk in distinct.chunks(5_000) {
        let events: Vec<NewEvent> = chunk
            .par_iter()
            .map(|e| na_ingest::prepare::event_from_json(&e.as_json(), relay, now).unwrap())
            .collect();
        db.store_batch(&IngestBatch {
            events,
            ..Default::default()
        })
        .await?;
    }
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let log_rows = count("SELECT count(*) FROM fact_log").await;
    let facts = count("SELECT count(*) FROM facts").await;
    println!(
        "ingested in {:.1} s: {facts} facts, {log_rows} fact-log rows",
        ti.elapsed().as_secs_f64()
    );

    let w = compact_all(&wasm).await;
    let wasm_buckets = buckets(&client).await;
    let wasm_unapplied = unapplied(&client).await;
    reset(&client).await;
    let native = Compactor::new(db.clone(), host.clone(), CompactorConfig::default());
    native.use_mapper(
        "core",
        1,
        Arc::new(NativeMapper::<core_metrics::Core>::default()),
    );
    let n = compact_all(&native).await;
    let native_buckets = buckets(&client).await;
    assert_eq!(
        wasm_buckets, native_buckets,
        "WASM and native wrote the same buckets"
    );

    println!();
    println!(
        "compaction of the whole fact log ({log_rows} rows, batches of {}):",
        CompactorConfig::default().batch_rows
    );
    for (name, r) in [("WASM core@1", &w), ("native core@1", &n)] {
        println!(
            "  {name:<14} {:>6.1} s  {:>8.0} rows/s  plugin stage {:>5.1} s ({:>4.1}% of the run, {:>9.0} facts/s)",
            r.seconds,
            r.rows as f64 / r.seconds,
            r.plugin_seconds,
            100.0 * r.plugin_seconds / r.seconds,
            r.rows as f64 / r.plugin_seconds.max(1e-9),
        );
    }
    println!(
        "  WASM / native throughput: {:.0}%",
        100.0 * n.seconds / w.seconds
    );

    println!("recompute from the facts table ({facts} facts):");
    let rw = wasm.recompute("core", 1, &progress).await?;
    let rn = native.recompute("core", 1, &progress).await?;
    let rebuilt = buckets(&client).await;
    assert_eq!(
        exact(&rebuilt),
        exact(&wasm_buckets),
        "a recompute writes what compaction wrote"
    );
    for (name, r) in [("WASM core@1", &rw), ("native core@1", &rn)] {
        println!(
            "  {name:<14} {:>6.1} s  {:>8.0} facts/s",
            r.seconds,
            r.facts as f64 / r.seconds
        );
    }
    println!(
        "  WASM / native throughput: {:.0}%",
        100.0 * rn.seconds / rw.seconds
    );
    println!("bucket rows and value totals after compaction: {wasm_buckets:?}");
    println!("retractions distinct sketches could not apply: {wasm_unapplied}");
    println!("after a recompute (which never sees retracted keys): {rebuilt:?}");
    Ok(())
}

async fn compact_all(c: &Compactor) -> RunReport {
    let mut total = RunReport::default();
    loop {
        let r = c.run(None).await.unwrap();
        assert!(r.failures.is_empty(), "{r:?}");
        total.batches += r.batches;
        total.rows += r.rows;
        total.seconds += r.seconds;
        total.plugin_seconds += r.plugin_seconds;
        if r.caught_up {
            return total;
        }
    }
}

/// Rows and value totals per granularity and gauge levels, over count, sum and gauge
/// series (exact whatever the order), then the distinct series' totals and the retractions
/// their sketches could not apply (once approximate, a sketch cannot take a key back out,
/// so an incremental run may count keys a recompute never sees).
async fn buckets(client: &tokio_postgres::Client) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for g in ["minute", "hour", "day", "month"] {
        for (label, distinct) in [("", false), (" distinct", true)] {
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*), coalesce(sum(value), 0)::bigint FROM buckets_{g} b
                         JOIN plugin_metrics m USING (series)
                         WHERE (m.aggregation = 'distinct') = $1"
                    ),
                    &[&distinct],
                )
                .await
                .unwrap();
            out.push((format!("{g}{label}"), row.get(0), row.get(1)));
        }
    }
    let row = client
        .query_one(
            "SELECT count(*), coalesce(sum(level), 0)::bigint FROM gauge_levels",
            &[],
        )
        .await
        .unwrap();
    out.push(("gauge levels".to_owned(), row.get(0), row.get(1)));
    out
}

/// The totals that must match exactly between any two ways of building the buckets.
fn exact(b: &[(String, i64, i64)]) -> Vec<(String, i64, i64)> {
    b.iter()
        .filter(|(n, _, _)| !n.ends_with("distinct"))
        .cloned()
        .collect()
}

async fn unapplied(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT (SELECT coalesce(sum(unapplied), 0) FROM buckets_minute)
                  + (SELECT coalesce(sum(unapplied), 0) FROM buckets_hour)
                  + (SELECT coalesce(sum(unapplied), 0) FROM buckets_day)
                  + (SELECT coalesce(sum(unapplied), 0) FROM buckets_month)",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
}

/// Back to the start of the log, buckets empty.
async fn reset(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "TRUNCATE buckets_minute, buckets_hour, buckets_day, buckets_month, gauge_levels;
             UPDATE compaction_state SET cursor_txid = pg_snapshot_xmin(base), cursor_id = 0,
                                         applied_rows = 0;",
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "VACUUM ANALYZE buckets_minute, buckets_hour, buckets_day, buckets_month, gauge_levels",
        )
        .await
        .unwrap();
}
