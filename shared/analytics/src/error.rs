use na_plugin_registry::LoadError;

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The request is wrong; the message says what to change.
    #[error("{0}")]
    BadRequest(String),
    /// The metric version exists but cannot be answered yet (no recompute has finished).
    #[error("{0}")]
    NotQueryable(String),
    /// What the request names is not stored.
    #[error("{0}")]
    NotFound(String),
    /// The answer would cost more than a synchronous request may: run it as a job.
    #[error("this answer would read about {estimate} rows, more than {budget} answered at once")]
    TooCostly { estimate: u64, budget: u64 },
    #[error(transparent)]
    Storage(#[from] na_storage::Error),
    /// A plugin failed outside the answer of a metric (loading, the note's defaults).
    #[error(transparent)]
    Plugin(na_plugin_host::PluginError),
    /// The one metric asked for has no value: its plugin version failed (the message says
    /// which and why).
    #[error("{0}")]
    MetricFailed(String),
    /// A stored sketch could not be read.
    #[error(transparent)]
    Sketch(#[from] na_sketch::SketchError),
}

impl QueryError {
    pub(crate) fn bad(detail: impl Into<String>) -> Self {
        QueryError::BadRequest(detail.into())
    }
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(e: tokio_postgres::Error) -> Self {
        QueryError::Storage(e.into())
    }
}

impl From<LoadError> for QueryError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Storage(e) => QueryError::Storage(e),
            LoadError::Plugin(e) => QueryError::Plugin(e),
        }
    }
}
