//! Ingest throughput against a bare binary COPY of the same rows, in one run.
//!
//! `cargo bench -p ingest --bench ingest_vs_copy` (tier: `NA_BENCH_TIER=small|medium|large`,
//! default medium). Ours: every delivered event (duplicates included) goes through the real
//! pipeline — parse, id + signature verification, normalization, batched transactional
//! writes of events, facts, provenance and counters. Baseline: the distinct event rows,
//! decoded ahead of time, loaded with `COPY ... (FORMAT binary)` into the same table.

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::pin_mut;
use ingest::pipeline::{Pipeline, PipelineOptions};
use ingest::tap::TapMessage;
use na_storage::Db;
use nostr_sdk::prelude::*;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, Type};

/// 2026-01-01: a fixed end keeps the cached dataset valid across runs.
const END: u64 = 1_767_225_600;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tier: na_datagen::Tier = std::env::var("NA_BENCH_TIER")
        .unwrap_or_else(|_| "medium".into())
        .parse()
        .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let data = tokio::task::spawn_blocking(move || {
        na_datagen::load_or_generate(tier, 1, END, &na_datagen::default_cache_dir())
    })
    .await??;
    let distinct = data.distinct();
    println!(
        "dataset {}: {} deliveries, {} distinct events (ready in {:.1} s)",
        tier.name(),
        data.events.len(),
        distinct.len(),
        started.elapsed().as_secs_f64()
    );

    // The CPU stage alone: parse, verify and normalize every delivery on all cores.
    let texts: Vec<String> = data.events.iter().map(|e| e.as_json()).collect();
    let tv = Instant::now();
    let verified = {
        use rayon::prelude::*;
        let now = Utc::now().timestamp();
        texts
            .par_iter()
            .filter(|t| {
                na_domain::verify::verify_json(t, now)
                    .map(|e| na_domain::normalize(&e))
                    .is_ok()
            })
            .count()
    };
    let verify_secs = tv.elapsed().as_secs_f64();
    assert_eq!(verified, texts.len());
    drop(texts);

    // Ours.
    let db = Db::connect(&na_test_support::fresh_database_url().await, 4).await?;
    let relay = RelayUrl::parse("wss://bench.invalid")?;
    let frames: Vec<String> = data
        .events
        .iter()
        .map(|e| format!("[\"EVENT\",\"bench\",{}]", e.as_json()))
        .collect();
    let (tx, rx) = mpsc::channel(20_000);
    let (signals, _keep) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    let pipeline = Pipeline::spawn(db.clone(), rx, signals, PipelineOptions::default());
    for text in frames {
        tx.send(TapMessage::Event {
            relay: relay.clone(),
            text,
        })
        .await?;
    }
    drop(tx);
    let stats = pipeline.finish().await?;
    let ours = t0.elapsed().as_secs_f64();
    assert_eq!(
        stats.stored as usize,
        distinct.len(),
        "every distinct event stored: {stats:?}"
    );

    // Baseline: the same rows, decoded beforehand, with binary COPY.
    let url = na_test_support::fresh_database_url().await;
    let baseline_db = Db::connect(&url, 1).await?;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    client
        .execute(
            "SELECT ensure_month_partitions($1, $2)",
            &[&ts(END - 400 * 86_400), &ts(END)],
        )
        .await?;
    struct Row {
        id: Vec<u8>,
        pubkey: Vec<u8>,
        created_at: DateTime<Utc>,
        kind: i32,
        tags: serde_json::Value,
        content: String,
        sig: Vec<u8>,
    }
    let rows: Vec<Row> = distinct
        .iter()
        .map(|e| Row {
            id: e.id.to_bytes().to_vec(),
            pubkey: e.pubkey.to_bytes().to_vec(),
            created_at: ts(e.created_at.as_secs()),
            kind: i32::from(e.kind.as_u16()),
            tags: serde_json::to_value(&e.tags).unwrap_or_default(),
            content: e.content.clone(),
            sig: e.sig.serialize().to_vec(),
        })
        .collect();
    let seen_on: Vec<i16> = vec![1];
    let t1 = Instant::now();
    let sink = client
        .copy_in("COPY events (id, pubkey, created_at, kind, tags, content, sig, seen_on) FROM STDIN (FORMAT binary)")
        .await?;
    let types = [
        Type::BYTEA,
        Type::BYTEA,
        Type::TIMESTAMPTZ,
        Type::INT4,
        Type::JSONB,
        Type::TEXT,
        Type::BYTEA,
        Type::INT2_ARRAY,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for r in &rows {
        writer
            .as_mut()
            .write(&[
                &r.id,
                &r.pubkey,
                &r.created_at,
                &r.kind,
                &Json(&r.tags),
                &r.content,
                &r.sig,
                &seen_on,
            ])
            .await?;
    }
    let copied = writer.finish().await?;
    let copy = t1.elapsed().as_secs_f64();
    drop(baseline_db);

    let ours_rate = distinct.len() as f64 / ours;
    let copy_rate = copied as f64 / copy;
    println!(
        "ingest pipeline : {:>9.0} events/s  ({} events, {} facts, {:.2} s)",
        ours_rate, stats.stored, stats.facts, ours
    );
    println!(
        "binary COPY     : {:>9.0} rows/s    ({copied} rows, {:.2} s)",
        copy_rate, copy
    );
    println!(
        "ratio           : {:.0}% of COPY (target >= 50%)",
        100.0 * ours_rate / copy_rate
    );
    println!(
        "inside the pipeline: verify+normalize {:.2} s, writes {:.2} s (overlapping)",
        stats.verify_micros as f64 / 1e6,
        stats.store_micros as f64 / 1e6
    );
    println!(
        "verify+normalize alone, {} threads: {:>9.0} events/s",
        rayon::current_num_threads(),
        verified as f64 / verify_secs
    );
    Ok(())
}

fn ts(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs as i64, 0).unwrap_or_default()
}
