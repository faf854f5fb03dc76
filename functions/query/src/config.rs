//! The query function's settings: read from its environment once, at start (the README
//! lists every variable); the libraries it calls take them as values.

use na_plugin_host::HostConfig;
use na_telemetry::LogSettings;

use crate::{AccessConfig, QueryPolicy};

#[derive(Debug)]
pub struct Config {
    /// `DATABASE_URL`, with `DATABASE_SECRET_ARN`'s credentials when it is set.
    pub database: na_aws::Database,
    /// `DATABASE_READ_URL`: a read replica the analytics reads go to (with the same
    /// secret's credentials); `None`: everything on `database`.
    pub read_database: Option<na_aws::Database>,
    pub log: LogSettings,
    pub host: HostConfig,
    pub access: AccessConfig,
    pub policy: QueryPolicy,
    /// `NA_JOBS_QUEUE_URL`'s queue; `None`: enqueuing answers 503.
    pub queue: Option<na_queue::SqsQueue>,
    /// `NA_DASHBOARD_DIR`: the built dashboard, served at `/`.
    pub dashboard: Option<std::path::PathBuf>,
}

impl Config {
    /// # Errors
    /// A variable that does not parse, naming it; a queue without credentials.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// # Errors
    /// As [`Config::from_env`].
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        Ok(Config {
            database: na_aws::Database::from_lookup(var, na_storage::database_url(var))?,
            read_database: var("DATABASE_READ_URL")
                .filter(|u| !u.is_empty())
                .map(|url| na_aws::Database::from_lookup(var, url))
                .transpose()?,
            log: LogSettings::from_lookup(var),
            host: HostConfig::from_lookup(var),
            access: AccessConfig::from_lookup(var).map_err(anyhow::Error::msg)?,
            policy: QueryPolicy::from_lookup(var).map_err(anyhow::Error::msg)?,
            queue: na_queue::SqsQueue::from_lookup(var)?,
            dashboard: crate::dashboard::dir_from_lookup(var).map_err(anyhow::Error::msg)?,
        })
    }
}
