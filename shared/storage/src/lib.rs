//! PostgreSQL access for every function: connecting (and creating the database when it is
//! missing), the embedded migrations, the batched canonical write path, ingest state
//! (relays, watermarks, counters), job rows, and compaction's log reads and bucket writes. Nothing else in the workspace writes SQL.

pub mod analytics;
pub mod compaction;
mod db;
mod error;
pub mod events;
mod fact_changes;
mod follow_lists;
pub mod health;
pub mod ingest_state;
pub mod jobs;
mod migrate;
pub mod notes;
mod partitions;
pub mod plugins;
mod replaceable_heads;
pub mod retention;

pub use db::{DEFAULT_DATABASE_URL, Db, database_url_from_env};
pub use deadpool_postgres::{Object, Transaction};
pub use error::{Error, Result};
pub use events::{BatchOutcome, ImportProgress, IngestBatch, NewEvent};
pub use health::{ComponentHealth, RelayHealth};
pub use ingest_state::{RelayStatus, Tally};
pub use jobs::{Job, JobState};
pub use plugins::{NewPlugin, PluginRecord, Published, RegistryRefusal};
