//! Ingest throughput against a bare binary COPY of the same rows, in one run.
//!
//! `cargo bench --workspace --bench ingest_vs_copy` (tier: `NA_BENCH_TIER=small|medium|large`,
//! default medium). Ours: every delivered event (duplicates included) goes through the real
//! pipeline — parse, id + signature verification, normalization, batched transactional
//! writes of events, facts, provenance and counters. Baseline: the distinct event rows,
//! decoded ahead of time, loaded with `COPY ... (FORMAT binary)` into the same table.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::pin_mut;
use na_ingest::pipeline::{Pipeline, PipelineOptions, StatsSnapshot};
use na_ingest::tap::TapMessage;
use na_storage::Db;
use nostr_sdk::prelude::*;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, Type};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let data = tokio::task::spawn_blocking(|| na_datagen::bench_dataset(na_datagen::Tier::Medium))
        .await?
        .map_err(anyhow::Error::msg)?;
    let tier = data.tier;
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

    // Ours: as delivered by one relay, then by three relays (each event three times,
    // the copies a little apart, as they arrive in practice).
    let one: Vec<(usize, String)> = data.events.iter().map(|e| (0, e.as_json())).collect();
    let (ours, stats) = run_pipeline(&one).await?;
    assert_eq!(
        stats.stored as usize,
        distinct.len(),
        "every distinct event stored: {stats:?}"
    );
    let mut three: Vec<(usize, String)> = Vec::with_capacity(one.len() * 3);
    for (i, (_, json)) in one.iter().enumerate() {
        three.push((0, json.clone()));
        if i >= 100 {
            three.push((1, one[i - 100].1.clone()));
        }
        if i >= 300 {
            three.push((2, one[i - 300].1.clone()));
        }
    }
    three.extend(
        one[one.len().saturating_sub(100)..]
            .iter()
            .map(|(_, j)| (1, j.clone())),
    );
    three.extend(
        one[one.len().saturating_sub(300)..]
            .iter()
            .map(|(_, j)| (2, j.clone())),
    );
    drop(one);
    let (ours3, stats3) = run_pipeline(&three).await?;
    assert_eq!(stats3.stored as usize, distinct.len(), "{stats3:?}");

    // Baseline: the same rows, decoded beforehand, with binary COPY.
    let url = na_test_support::fresh_database_url().await;
    let baseline_db = Db::connect(&url, 1).await?;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    client
        .execute(
            "SELECT ensure_month_partitions($1, $2)",
            &[
                &ts(na_datagen::BENCH_END - 400 * 86_400),
                &ts(na_datagen::BENCH_END),
            ],
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
    let ours3_rate = distinct.len() as f64 / ours3;
    let copy_rate = copied as f64 / copy;
    let pct = |rate: f64| 100.0 * rate / copy_rate;
    println!("binary COPY      : {copy_rate:>9.0} rows/s    ({copied} rows, {copy:.2} s)");
    println!(
        "ingest, 1 relay  : {ours_rate:>9.0} events/s  ({} events, {} facts, {ours:.2} s) = {:.0}% of COPY (target >= 50%)",
        stats.stored,
        stats.facts,
        pct(ours_rate)
    );
    println!(
        "ingest, 3 relays : {ours3_rate:>9.0} events/s  ({} deliveries, {ours3:.2} s) = {:.0}% of COPY",
        three.len(),
        pct(ours3_rate)
    );
    for (name, s) in [("1 relay", &stats), ("3 relays", &stats3)] {
        println!(
            "{name}, inside the pipeline: verify+normalize {:.2} s, writes {:.2} s (they overlap)",
            s.verify_micros as f64 / 1e6,
            s.store_micros as f64 / 1e6
        );
    }
    println!(
        "verify+normalize alone, {} threads: {:>9.0} events/s = {:.0}% of COPY (the ceiling for ingest here)",
        rayon::current_num_threads(),
        verified as f64 / verify_secs,
        pct(verified as f64 / verify_secs)
    );
    Ok(())
}

/// Feeds `(relay index, event json)` deliveries through a fresh pipeline on a fresh database.
async fn run_pipeline(deliveries: &[(usize, String)]) -> anyhow::Result<(f64, StatsSnapshot)> {
    let db = Db::connect(&na_test_support::fresh_database_url().await, 4).await?;
    let relays: Vec<RelayUrl> = (0..3)
        .map(|i| RelayUrl::parse(&format!("wss://bench-{i}.invalid")))
        .collect::<Result<_, _>>()?;
    let frames: Vec<(RelayUrl, String)> = deliveries
        .iter()
        .map(|(r, json)| (relays[*r].clone(), format!("[\"EVENT\",\"bench\",{json}]")))
        .collect();
    let (tx, rx) = mpsc::channel(20_000);
    let (signals, _keep) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    let pipeline = Pipeline::spawn(db, rx, signals, PipelineOptions::default());
    for (relay, text) in frames {
        tx.send(TapMessage::Event {
            relay,
            text,
            at: chrono::Utc::now(),
        })
        .await?;
    }
    drop(tx);
    let stats = pipeline.finish().await?;
    Ok((t0.elapsed().as_secs_f64(), stats))
}

fn ts(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs as i64, 0).unwrap_or_default()
}
