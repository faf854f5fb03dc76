//! The rollout from the legacy analytics path to v2 (docs/rollout.md).
//!
//! - `flags`: which path answers a legacy route for a pubkey ([`evaluate`]): a flag's mode
//!   for its allow list and its percentage of cohorts, `legacy` for the rest;
//! - `cache`: the flags every instance keeps, read again from PostgreSQL once they are
//!   older than [`FlagCache::ttl`], so a change reaches every instance within it;
//! - `drift`: what the dual run compares per metric, against which threshold, and the
//!   report over the recorded comparisons;
//! - `relay_scan`: what a client computes by scanning relays itself, next to v2, with the
//!   reasons they differ.

mod cache;
mod drift;
mod flags;
pub mod relay_scan;

pub use cache::{DEFAULT_TTL, FlagCache};
pub use drift::{Compared, LIVE_EDGE_SECONDS, compare, report};
pub use flags::{Evaluation, Reason, V1_SUMMARY_FLAG, cohort, evaluate, flag_of};
