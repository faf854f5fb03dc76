//! A seeded, deterministic generator of properly signed Nostr datasets for the demo, the
//! tests and the benchmarks: one target user, the people who interact with it (reactions,
//! replies, zaps with signed bolt11 invoices, reposts, quotes, comments, follows,
//! deletions) and unrelated traffic, delivered with some duplicates and out of order.
//!
//! Same tier, seed and end time => the same events, byte for byte (signatures use seeded
//! auxiliary randomness), so a dataset can be cached on disk and signed once.

mod cache;
mod invoice;
mod plan;
mod zaps;

use nostr_sdk::prelude::*;

pub use cache::{BENCH_END, bench_dataset, default_cache_dir, load_or_generate};
pub use plan::generate;
pub use zaps::zap_receipt;

/// Dataset sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// A few thousand events over 30 days: the demo and most tests.
    Small,
    /// ~100k inbound events for the target over a year.
    Medium,
    /// ~1M inbound events for the target over a year, plus as many unrelated events.
    Large,
    /// A few thousand events over 430 days: every retention state (minute, hour and raw
    /// horizons) has data on both sides.
    Long,
}

/// The size of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub users: usize,
    pub inbound: usize,
    pub unrelated: usize,
    pub span_days: u64,
}

impl Tier {
    pub fn spec(self) -> Spec {
        match self {
            Tier::Small => Spec {
                users: 40,
                inbound: 3_000,
                unrelated: 600,
                span_days: 30,
            },
            Tier::Medium => Spec {
                users: 2_000,
                inbound: 100_000,
                unrelated: 10_000,
                span_days: 365,
            },
            Tier::Large => Spec {
                users: 20_000,
                inbound: 1_000_000,
                unrelated: 1_000_000,
                span_days: 365,
            },
            Tier::Long => Spec {
                users: 60,
                inbound: 5_000,
                unrelated: 600,
                span_days: 430,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Medium => "medium",
            Tier::Large => "large",
            Tier::Long => "long",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "small" => Ok(Tier::Small),
            "medium" => Ok(Tier::Medium),
            "large" => Ok(Tier::Large),
            "long" => Ok(Tier::Long),
            other => Err(format!(
                "unknown tier {other:?} (small, medium, large, long)"
            )),
        }
    }
}

/// A generated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub tier: Tier,
    pub seed: u64,
    /// Every generated `created_at` is before this.
    pub end: u64,
    /// The user whose analytics the dataset is about.
    pub target: PublicKey,
    /// In delivery order: mostly by time, partly shuffled, with some events twice.
    pub events: Vec<Event>,
}

impl Dataset {
    /// The events without the repeated deliveries.
    pub fn distinct(&self) -> Vec<&Event> {
        let mut seen = std::collections::HashSet::with_capacity(self.events.len());
        self.events.iter().filter(|e| seen.insert(e.id)).collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("dataset cache {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing: {0}")]
    Signing(String),
}
