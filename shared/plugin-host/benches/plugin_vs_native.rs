//! Facts/s through the core@1 plugin in WASM vs the same code compiled natively, at batch
//! sizes 1, 100 and 10,000, and the cost of loading a precompiled artifact and running it.
//! Facts come from the generator's small tier, normalized as ingest does.
//!
//! `scripts/build-plugins && cargo bench --workspace --bench plugin_vs_native`
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::time::{Duration, Instant};

use core_metrics::Core;
use na_metrics_abi::{Fact, encode_facts, run_packed};
use na_plugin_host::{HostConfig, PluginHost, read_built_component};
use nostr_sdk::JsonUtil;

/// The functions' allocator, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every fact of the small tier, as the plugins see them.
fn dataset_facts() -> Vec<Fact> {
    let data = na_datagen::generate(na_datagen::Tier::Small, 1, 1_764_000_000).unwrap();
    data.distinct()
        .into_iter()
        .flat_map(|e| {
            let raw = na_domain::RawEvent::from_json(&e.as_json()).unwrap();
            let created_at = raw.created_at;
            let id = raw.id;
            na_domain::normalize(&raw)
                .into_iter()
                .map(move |f| f.to_contract(created_at, id))
        })
        .collect()
}

/// Facts per second of `run` over batches of `size`, run for about `budget`.
fn rate(size: usize, budget: Duration, mut run: impl FnMut() -> usize) -> f64 {
    for _ in 0..3 {
        run();
    }
    let started = Instant::now();
    let mut facts = 0usize;
    while started.elapsed() < budget {
        facts += run();
    }
    let _ = size;
    facts as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let all = dataset_facts();
    println!("facts in the small tier: {}", all.len());
    let bytes = component("core-metrics");
    let cache = std::env::temp_dir().join(format!("na-bench-cache-{}", std::process::id()));
    // One thread per call for the table; the split across cores is measured after it.
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(cache.clone()),
        threads: 1,
        ..HostConfig::default()
    })
    .unwrap();
    let split_host = PluginHost::new(HostConfig {
        cache_dir: Some(cache.clone()),
        ..HostConfig::default()
    })
    .unwrap();
    let plugin = host.load(&bytes).unwrap();
    let budget = Duration::from_millis(1500);

    println!(
        "\n| batch | native (facts/s) | WASM packed call (facts/s) | WASM incl. encode+decode (facts/s) | WASM / native |"
    );
    println!("|---|---|---|---|---|");
    for size in [1usize, 100, 10_000] {
        let batch: Vec<Fact> = all.iter().cycle().take(size).cloned().collect();
        let mut packed = Vec::new();
        encode_facts(&batch, &mut packed);
        let native = rate(size, budget, || {
            std::hint::black_box(run_packed::<Core>(std::hint::black_box(&packed)).unwrap());
            size
        });
        let wasm = rate(size, budget, || {
            std::hint::black_box(host.run_packed(&plugin, &packed, size).unwrap());
            size
        });
        let full = rate(size, budget, || {
            std::hint::black_box(host.run(&plugin, &batch).unwrap());
            size
        });
        println!(
            "| {size} | {:.1} M | {:.1} M | {:.1} M | {:.0}% |",
            native / 1e6,
            wasm / 1e6,
            full / 1e6,
            100.0 * wasm / native
        );
    }

    // Both cores: one batch per thread, the instances of one loaded plugin shared.
    let size = 10_000;
    let batch: Vec<Fact> = all.iter().cycle().take(size).cloned().collect();
    let mut packed = Vec::new();
    encode_facts(&batch, &mut packed);
    let out = host.run_packed(&plugin, &packed, size).unwrap();
    println!(
        "\nbatch {size}: {:.0} bytes in and {:.0} bytes out per fact",
        packed.len() as f64 / size as f64,
        out.len() as f64 / size as f64
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut facts = 0;
                    while started.elapsed() < budget {
                        std::hint::black_box(host.run_packed(&plugin, &packed, size).unwrap());
                        facts += size;
                    }
                    facts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    println!(
        "WASM packed call, batch {size}, {threads} threads: {:.1} M facts/s",
        done as f64 / started.elapsed().as_secs_f64() / 1e6
    );
    // What the compactor calls: one batch, split across the host's threads, with the host's
    // encode and decode.
    let split_plugin = split_host.load(&bytes).unwrap();
    let one_thread = rate(size, budget, || {
        std::hint::black_box(host.run(&plugin, &batch).unwrap());
        size
    });
    let split = rate(size, budget, || {
        std::hint::black_box(split_host.run(&split_plugin, &batch).unwrap());
        size
    });
    println!(
        "WASM incl. encode+decode, batch {size}: {:.1} M facts/s on one thread, {:.1} M split across {} threads ({:.1}x)",
        one_thread / 1e6,
        split / 1e6,
        split_host.config().threads,
        split / one_thread
    );

    // The floor: a plugin that only decodes each fact and writes one contribution for it.
    let floor = host.load(&component("hostile-plugin")).unwrap();
    println!("\n| batch | trivial plugin native (facts/s) | trivial plugin WASM (facts/s) |");
    println!("|---|---|---|");
    for size in [100usize, 10_000] {
        let batch: Vec<Fact> = all.iter().cycle().take(size).cloned().collect();
        let mut packed = Vec::new();
        encode_facts(&batch, &mut packed);
        let native = rate(size, budget, || {
            std::hint::black_box(run_packed::<hostile_plugin::Hostile>(&packed).unwrap());
            size
        });
        let wasm = rate(size, budget, || {
            std::hint::black_box(host.run_packed(&floor, &packed, size).unwrap());
            size
        });
        println!("| {size} | {:.1} M | {:.1} M |", native / 1e6, wasm / 1e6);
    }

    // Load from the precompiled artifact (a cold function start), then one call.
    let one: Vec<Fact> = all.iter().take(1).cloned().collect();
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        let p = host.load(&bytes).unwrap();
        std::hint::black_box(host.run(&p, &one).unwrap());
    }
    let per = started.elapsed() / rounds;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(host.run(&plugin, &one).unwrap());
    }
    let call = started.elapsed() / rounds;
    let started = Instant::now();
    let compiled = PluginHost::new(HostConfig::default())
        .unwrap()
        .load(&bytes)
        .unwrap();
    let compile = started.elapsed();
    std::hint::black_box(compiled);
    println!("\nload from precompiled artifact + describe + one call of 1 fact: {per:?}");
    println!("instantiate + one call of 1 fact (already loaded): {call:?}");
    println!("compile from .wasm (no cache): {compile:?}");
    let _ = std::fs::remove_dir_all(cache);
}

/// Built by `scripts/build-plugins` into `NA_PLUGIN_DIR` (as `scripts/env.sh` sets it).
fn component(name: &str) -> Vec<u8> {
    let dir = std::env::var("NA_PLUGIN_DIR")
        .unwrap_or_else(|_| na_plugin_host::DEFAULT_PLUGIN_DIR.into());
    read_built_component(std::path::Path::new(&dir), name).unwrap_or_else(|e| panic!("{e}"))
}
