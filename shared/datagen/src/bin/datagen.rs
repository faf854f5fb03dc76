//! Generates (or loads) a dataset into the cache and prints what it holds.
//!
//! `cargo run --release --bin datagen -- large 1 1767225600`
//! (tier, seed, end as unix seconds; the benchmarks use seed 1 and end 1767225600).

use std::collections::BTreeMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tier: na_datagen::Tier = args.first().map_or("small", String::as_str).parse()?;
    let seed: u64 = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let end: u64 = args.get(2).map_or(Ok(1_767_225_600), |s| s.parse())?;
    let dir = na_datagen::default_cache_dir();
    let started = Instant::now();
    let data = na_datagen::load_or_generate(tier, seed, end, &dir)?;
    let mut kinds: BTreeMap<u16, usize> = BTreeMap::new();
    for ev in data.distinct() {
        *kinds.entry(ev.kind.as_u16()).or_default() += 1;
    }
    println!(
        "{} seed {seed} end {end}: {} deliveries, {} distinct, target {} ({:.1} s, cached in {})",
        tier.name(),
        data.events.len(),
        kinds.values().sum::<usize>(),
        data.target,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    for (kind, n) in kinds {
        println!("  kind {kind:>5}: {n}");
    }
    Ok(())
}
