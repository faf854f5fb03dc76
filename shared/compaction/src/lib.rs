//! Compaction: turns the fact log into minute, hour, day and month buckets through every plugin
//! version being compacted, exactly once (docs/compaction.md).
//!
//! - [`Compactor`] applies the log in batches; each batch's bucket changes and each
//!   version's new position commit in one transaction, under a lease that keeps a second
//!   compactor out. Retractions (the -1 rows of deletions, expirations, re-attributions)
//!   take contributions back out of buckets already written.
//! - [`recompute`](Compactor::recompute) builds a new version's buckets from the retained
//!   facts and hands the version to the compactor at exactly the snapshot it read.

mod aggregate;
mod compactor;
mod months;
mod recompute;

pub use aggregate::Aggregate;
pub use compactor::{BatchReport, Compactor, CompactorConfig, RunReport, VersionBatch};
pub use recompute::{RecomputeProgress, RecomputeReport};

/// Why compaction stopped.
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error(transparent)]
    Storage(#[from] na_storage::Error),
    #[error(transparent)]
    Plugin(na_plugin_host::PluginError),
    #[error(transparent)]
    Sketch(#[from] na_sketch::SketchError),
    /// The request cannot be done as asked (the caller's mistake).
    #[error("{0}")]
    Refused(String),
}

impl From<na_plugin_registry::LoadError> for CompactionError {
    fn from(e: na_plugin_registry::LoadError) -> Self {
        match e {
            na_plugin_registry::LoadError::Storage(e) => CompactionError::Storage(e),
            na_plugin_registry::LoadError::Plugin(e) => CompactionError::Plugin(e),
        }
    }
}

impl From<tokio_postgres::Error> for CompactionError {
    fn from(e: tokio_postgres::Error) -> Self {
        CompactionError::Storage(e.into())
    }
}
