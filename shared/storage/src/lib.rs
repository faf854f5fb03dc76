//! PostgreSQL access for every function; nothing else in the workspace writes SQL. One
//! module per table family:
//!
//! - `db` and `migrate`: the migrate step (once per deploy, under a lock; creating the
//!   database only when asked), connecting a function to a database of its own schema, the
//!   pool, and the read-only snapshot a query reads everything in; `tls`: `sslmode`;
//! - `batch` and `events`: the canonical write path — verified events, their facts and the
//!   state NIP rules need (replaceable heads, follow lists, tombstones), one transaction per
//!   batch, every change to `facts` logged to `fact_log` (`fact_changes`);
//! - `facts`: reads of events and facts (a window's edges, a note's facts, a recompute's scan);
//! - `fact_log`: the change stream compaction applies and queries merge as the live delta;
//! - `buckets`: minute/hour/day/month buckets, distinct sketches and gauge levels;
//! - `compaction_state`: each plugin version's position in the log, leases, quarantines;
//! - `plugins`: the plugin registry and the metric catalog;
//! - `jobs`: async job rows; `ingest_state` and `health`: relays, watermarks, counters,
//!   imports, component health; `retention`: partitions and horizons;
//! - `access`: API keys (hashes only) and the NIP-98 replay cache;
//! - `rollout`: the rollout's flags, their changes, and the dual run's comparisons.

pub mod access;
mod batch;
pub mod buckets;
pub mod compaction_state;
mod db;
mod error;
mod events;
mod fact_changes;
pub mod fact_log;
pub mod facts;
mod follow_lists;
pub mod health;
pub mod ingest_state;
pub mod jobs;
mod migrate;
mod partitions;
pub mod plugins;
mod replaceable_heads;
pub mod retention;
pub mod rollout;
pub mod tls;

pub use batch::{BatchOutcome, ImportProgress, IngestBatch, NewEvent};
pub use db::{DEFAULT_DATABASE_URL, Db, database_url, replayed_to, snapshot};
pub use deadpool_postgres::{Object, Transaction};
pub use error::{Error, Result};
pub use health::{ComponentHealth, RelayHealth};
pub use ingest_state::{RelayStatus, Tally};
pub use jobs::{Job, JobState};
pub use migrate::{CreateDatabase, Migrated, OLDEST_COMPATIBLE_SCHEMA, migrate, schema_version};
pub use plugins::{NewPlugin, PluginRecord, Published, RegistryRefusal};

/// A stored `timestamptz` of Unix seconds (instants are checked long before they get here;
/// one out of chrono's range becomes its minimum).
pub(crate) fn timestamp(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}
