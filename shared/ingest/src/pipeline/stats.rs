//! The pipeline's counters, and a snapshot of them for reports.

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals over the life of a pipeline.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub facts: AtomicU64,
    pub batches: AtomicU64,
    /// Wall time spent verifying + normalizing, and writing (they overlap).
    pub verify_micros: AtomicU64,
    pub store_micros: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub facts: u64,
    pub batches: u64,
    pub verify_micros: u64,
    pub store_micros: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            stored: get(&self.stored),
            duplicates: get(&self.duplicates),
            rejected: get(&self.rejected),
            facts: get(&self.facts),
            batches: get(&self.batches),
            verify_micros: get(&self.verify_micros),
            store_micros: get(&self.store_micros),
        }
    }
}
