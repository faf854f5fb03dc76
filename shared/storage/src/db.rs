use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use tokio_postgres::{Config, IsolationLevel};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::info;

use crate::partitions::PartitionCache;
use crate::{Error, Result};

/// Where the local stack and the tests look when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/nostr_analytics";

/// `DATABASE_URL`, or [`DEFAULT_DATABASE_URL`].
pub fn database_url(var: &dyn Fn(&str) -> Option<String>) -> String {
    var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

/// A connection pool plus the little state the write path keeps between batches.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    pub(crate) partitions: Arc<PartitionCache>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl Db {
    /// For the local stack, the tests and the command-line tools: the migrate step
    /// ([`crate::migrate`], creating the database when it is missing), then [`Db::open`].
    ///
    /// # Errors
    /// As [`crate::migrate`] and [`Db::open`].
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        crate::migrate(url, crate::CreateDatabase::IfMissing).await?;
        Self::open(url, pool_size).await
    }

    /// For a deployed function: a pool on a database the migrate step brought to this
    /// build's schema. Creates and migrates nothing; a missing database or another schema
    /// is refused, saying what to do.
    ///
    /// # Errors
    /// [`Error::NoDatabase`], [`Error::Schema`], [`Error::Unreachable`], [`Error::BadUrl`].
    pub async fn open(url: &str, pool_size: usize) -> Result<Self> {
        Self::pool(url, pool_size, None).await
    }

    /// As [`Db::open`], for a request path: no statement on these connections runs longer
    /// than `statement_timeout` unless its transaction sets a limit of its own ([`snapshot`]
    /// does), so no caller holds the database past it.
    ///
    /// # Errors
    /// As [`Db::open`].
    pub async fn open_bounded(
        url: &str,
        pool_size: usize,
        statement_timeout: std::time::Duration,
    ) -> Result<Self> {
        Self::pool(url, pool_size, Some(statement_timeout)).await
    }

    async fn pool(
        url: &str,
        pool_size: usize,
        statement_timeout: Option<std::time::Duration>,
    ) -> Result<Self> {
        let (mut config, tls, _) = crate::tls::connection(url)?;
        // JIT spends ~80 ms compiling any statement whose estimated cost is high (a range
        // over a large fact log is estimated at millions of rows even when the index finds
        // none); every statement here is short, so it is pure overhead.
        let mut options = format!("{} -c jit=off", config.get_options().unwrap_or_default());
        if let Some(limit) = statement_timeout {
            options.push_str(&format!(
                " -c statement_timeout={}",
                limit.as_millis().max(1)
            ));
        }
        config.options(options.trim());
        let settings = config.clone();
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Nobody waits for ever: a pool exhausted or a server that stopped answering is an
        // error (retryable) after a few seconds, not a request that hangs.
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        // The first connection says plainly what is wrong (no database, another schema),
        // then serves the first request from the pool.
        let first = pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => connect_error(&settings, e),
            other => Error::Pool(other.to_string()),
        })?;
        crate::migrate::check(&first).await?;
        drop(first);
        Ok(Db {
            pool,
            partitions: Arc::default(),
        })
    }

    /// A pooled connection.
    ///
    /// # Errors
    /// When the pool cannot open a connection.
    pub async fn conn(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }
}

/// The longest wait for a pooled connection, a new one, or a check of an idle one.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn target(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// A failed connection as the caller can act on it: no such database, the server's
/// refusal, or no server.
pub(crate) fn connect_error(config: &Config, e: tokio_postgres::Error) -> Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) {
        return Error::NoDatabase(config.get_dbname().unwrap_or_default().to_owned());
    }
    if e.as_db_error().is_some() {
        return Error::Postgres(e);
    }
    Error::Unreachable {
        target: target(config),
        source: e,
    }
}

/// Creates the configured database through the `postgres` maintenance database if missing.
pub(crate) async fn ensure_database(config: &Config, tls: &MakeRustlsConnect) -> Result<()> {
    match config.connect(tls.clone()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {
            let name = config
                .get_dbname()
                .ok_or_else(|| Error::BadUrl("no database name".into()))?;
            let mut admin = config.clone();
            admin.dbname("postgres");
            let (client, conn) = admin
                .connect(tls.clone())
                .await
                .map_err(|e| connect_error(&admin, e))?;
            tokio::spawn(conn);
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match client
                .batch_execute(&format!("CREATE DATABASE {quoted}"))
                .await
            {
                Ok(()) => info!(database = name, "created database"),
                // Another process created it first (or is creating it: the catalog's
                // unique index says so).
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                        || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                }
                Err(e) => return Err(e.into()),
            }
            Ok(())
        }
        Err(e) => Err(connect_error(config, e)),
    }
}

/// On a read replica, the commit time of the last transaction it had replayed: what a
/// snapshot opened on it is as of. `None` on the primary (and on a replica that has
/// replayed nothing since it started).
///
/// # Errors
/// Database errors.
pub async fn replayed_to(tx: &Transaction<'_>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let row = tx
        .query_one(
            &tx.prepare_cached(
                "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END",
            )
            .await?,
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Opens the snapshot a query reads everything in; no statement in it may run longer than
/// `statement_timeout` (then it fails with [`crate::Error::is_timeout`]).
///
/// # Errors
/// Database errors.
pub async fn snapshot(
    conn: &mut Object,
    statement_timeout: std::time::Duration,
) -> Result<Transaction<'_>> {
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // Every read here is a few index ranges: starting parallel workers costs more (ms)
    // than it could save. Statements are prepared once per connection (a round trip saved
    // per statement) but planned for their values each time: a generic plan cannot see
    // how few log rows lie past a cursor and scans the whole log.
    tx.batch_execute(&format!(
        "SET LOCAL max_parallel_workers_per_gather = 0; \
         SET LOCAL plan_cache_mode = force_custom_plan; \
         SET LOCAL statement_timeout = {}",
        statement_timeout.as_millis().max(1)
    ))
    .await?;
    Ok(tx)
}
