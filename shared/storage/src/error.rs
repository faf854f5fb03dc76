use thiserror::Error;

/// Errors from the storage layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot reach PostgreSQL at {target}: {source}")]
    Unreachable {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("invalid DATABASE_URL: {0}")]
    BadUrl(String),
    #[error("database error: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("migrations: {0}")]
    Migration(#[from] refinery::Error),
    #[error("job {0} not found")]
    JobNotFound(uuid::Uuid),
    /// A registry change the rules do not allow (the caller's mistake, not a fault).
    #[error("{0}")]
    Refused(#[from] crate::plugins::RegistryRefusal),
}

impl Error {
    /// Worth retrying as is: the connection or the server failed, not the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Pool(_) => true,
            Error::Postgres(e) => {
                e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("40"))
            }
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::Postgres(e),
            other => Error::Pool(other.to_string()),
        }
    }
}

/// tokio-postgres prints only "db error"; the server's message and detail are what matter.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str(": ");
                s.push_str(detail);
            }
            s
        }
        None => e.to_string(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
