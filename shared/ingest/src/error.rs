use thiserror::Error;

/// Errors of an ingest run or a backfill.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("relay {relay}: {message}")]
    Relay { relay: String, message: String },
    #[error("the ingest pipeline stopped")]
    PipelineStopped,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<na_storage::Error> for Error {
    fn from(e: na_storage::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
