//! Datasets cached on disk as JSON lines, so the large tier is signed once per machine.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use nostr_sdk::prelude::*;

use crate::{Dataset, Error, Tier, generate};

/// `NA_DATASET_CACHE`, or `/var/cache/nostr-analytics/datasets`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("NA_DATASET_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/nostr-analytics/datasets"))
}

/// The end time of benchmark datasets (2026-01-01): fixed, so the cached files stay valid.
pub const BENCH_END: u64 = 1_767_225_600;

/// The benchmarks' dataset: tier `NA_BENCH_TIER` (else `default`), seed 1, ending at
/// [`BENCH_END`], from the cache.
///
/// # Errors
/// An unknown tier name, or [`Error::Cache`].
pub fn bench_dataset(default: Tier) -> Result<Dataset, String> {
    let tier = match std::env::var("NA_BENCH_TIER") {
        Ok(t) => t.parse()?,
        Err(_) => default,
    };
    load_or_generate(tier, 1, BENCH_END, &default_cache_dir()).map_err(|e| e.to_string())
}

/// Loads the dataset from `dir` if it was generated before, else generates and saves it.
///
/// # Errors
/// [`Error::Cache`] when the directory cannot be written or a cached file is corrupt.
pub fn load_or_generate(tier: Tier, seed: u64, end: u64, dir: &Path) -> Result<Dataset, Error> {
    let path = dir.join(format!("{}-{seed}-{end}-v2.jsonl", tier.name()));
    let io = |source| Error::Cache {
        path: path.display().to_string(),
        source,
    };
    if let Ok(file) = std::fs::File::open(&path) {
        let mut lines = BufReader::new(file).lines();
        let target = lines.next().transpose().map_err(io)?.unwrap_or_default();
        let target =
            PublicKey::from_hex(target.trim()).map_err(|e| io(std::io::Error::other(e)))?;
        let events = lines
            .map(|l| {
                let l = l.map_err(io)?;
                Event::from_json(&l).map_err(|e| io(std::io::Error::other(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Dataset {
            tier,
            seed,
            end,
            target,
            events,
        });
    }
    let dataset = generate(tier, seed, end)?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    writeln!(out, "{}", dataset.target.to_hex()).map_err(io)?;
    for ev in &dataset.events {
        writeln!(out, "{}", ev.as_json()).map_err(io)?;
    }
    out.flush().map_err(io)?;
    drop(out);
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(dataset)
}
