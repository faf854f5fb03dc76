use thiserror::Error;

/// Errors from the storage layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot reach PostgreSQL at {target}: {}", causes(.source))]
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
    #[error(
        "database {0:?} does not exist: check the name in DATABASE_URL, or create it with \
         the migrate step (`nostr-analytics migrate --create-database`)"
    )]
    NoDatabase(String),
    /// The schema is not the one this build was made for.
    #[error("{}", schema_mismatch(*.found, *.expected, *.readable_from))]
    Schema {
        found: Option<i32>,
        expected: i32,
        /// A newer schema's oldest compatible release (`schema_compatibility`).
        readable_from: Option<i32>,
    },
    #[error("job {0} not found")]
    JobNotFound(uuid::Uuid),
    /// A registry change the rules do not allow (the caller's mistake, not a fault).
    #[error("{0}")]
    Refused(#[from] crate::plugins::RegistryRefusal),
}

impl Error {
    /// Worth retrying as is: the connection or the server failed, not the request. That
    /// is a closed connection or I/O error, a serialization failure or deadlock (40…), a
    /// connection exception (08…), resources running out (53…), or an operator's
    /// intervention (57…: a backend terminated, the server shutting down or starting).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Pool(_) => true,
            Error::Postgres(e) => match e.code() {
                Some(c) => ["40", "08", "53", "57"]
                    .iter()
                    .any(|class| c.code().starts_with(class) && c.code() != "57014"),
                None => {
                    e.is_closed()
                        || std::error::Error::source(e)
                            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
                }
            },
            _ => false,
        }
    }

    /// A statement ran past its `statement_timeout` (57014).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Postgres(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED))
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

/// `e` and what caused it, outermost first: a TLS handshake's own error says which
/// certificate check failed.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

fn schema_mismatch(found: Option<i32>, expected: i32, readable_from: Option<i32>) -> String {
    match found {
        Some(v) if v > expected => format!(
            "the database's schema is V{v}, newer than V{expected} this build knows, and a \
             later release migrated it{}: deploy that release (or one as new)",
            readable_from.map_or_else(String::new, |from| format!(
                " for releases built for V{from} or later"
            ))
        ),
        Some(v) => format!(
            "the database's schema is V{v}, older than this build's V{expected}: run the \
             migrate step (`nostr-analytics migrate`, or the migrate function) first"
        ),
        None => format!(
            "the database has no schema yet: run the migrate step (`nostr-analytics migrate`, \
             or the migrate function) to bring it to V{expected}"
        ),
    }
}
