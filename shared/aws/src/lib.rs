//! What the functions share to call AWS: the region and credentials a Lambda function is
//! given ([`AwsEnv`]), and the database's user and password from Secrets Manager
//! ([`DatabaseSecret`]) so no credential is a template parameter or an environment value.

mod env;
mod secret;

pub use env::AwsEnv;
pub use secret::{Database, DatabaseSecret};

/// Why AWS could not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("DATABASE_SECRET_ARN={arn}: {why}")]
    Secret { arn: String, why: String },
    #[error("DATABASE_URL: {0}")]
    Url(String),
}
