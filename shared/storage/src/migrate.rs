//! The SQL files under `migrations/`, embedded in every binary, and the one step that
//! applies them: a deploy runs it once (`nostr-analytics migrate`, or the `migrate`
//! function), under an advisory lock, so two at once apply each file once. A deployed
//! function only checks, at start, that the schema is the one it was built for.

use tokio_postgres::Client;

use crate::tls::connection;
use crate::{Error, Result};

refinery::embed_migrations!("../../migrations");

/// Whether migrating may create the database when it does not exist: the local stack and
/// the tests do; a deploy does not, so a mistyped name is an error, not a new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDatabase {
    IfMissing,
    Never,
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The versions applied now, in order (none when another run had applied them).
    pub applied: Vec<i32>,
    /// The schema's version now: this build's.
    pub version: i32,
}

/// Every run of the step takes this lock first: `hashtext('nostr-analytics migrations')`.
const LOCK: i64 = 0x6e61_6d69_6772_6174;

/// The oldest schema a release may have been built for and still run against this
/// build's: every migration after it only adds (tables, nullable or defaulted columns,
/// indexes), which `tests/migrate.rs` checks of each file. A release whose migrations
/// drop, rename or retype anything sets this to its own version, and rolling back across
/// it then needs the older schema back.
pub const OLDEST_COMPATIBLE_SCHEMA: i32 = 16;

/// The newest migration this build carries.
pub fn schema_version() -> i32 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Brings the database of `url` to this build's schema. Runs one at a time across
/// processes (a PostgreSQL advisory lock): a second run waits for the first, then finds
/// nothing to apply. A database with migrations this build does not know (a newer schema),
/// or whose applied files differ from ours, is refused.
///
/// # Errors
/// [`Error::NoDatabase`] (with [`CreateDatabase::Never`]), [`Error::Unreachable`],
/// [`Error::BadUrl`], [`Error::Migration`].
pub async fn migrate(url: &str, create: CreateDatabase) -> Result<Migrated> {
    let (config, tls, _) = connection(url)?;
    if create == CreateDatabase::IfMissing {
        crate::db::ensure_database(&config, &tls).await?;
    }
    let (mut client, conn) = config
        .connect(tls)
        .await
        .map_err(|e| crate::db::connect_error(&config, e))?;
    let connection = tokio::spawn(conn);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let applied = match run(&mut client).await {
        // The schema is this build's now: say which releases may run against it.
        Ok(applied) => client
            .execute(
                "UPDATE schema_compatibility SET readable_from = $1",
                &[&OLDEST_COMPATIBLE_SCHEMA],
            )
            .await
            .map(|_| applied)
            .map_err(Error::from),
        Err(e) => Err(e),
    };
    // Also released when the session ends, should the unlock not arrive.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await?;
    drop(client);
    let _ = connection.await;
    Ok(Migrated {
        applied: applied?,
        version: schema_version(),
    })
}

/// Applies pending migrations on `client`, returning their versions.
async fn run(client: &mut Client) -> Result<Vec<i32>> {
    // A migration may take as long as it needs, whatever the connection's default limit.
    client.batch_execute("SET statement_timeout = 0").await?;
    let report = migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.version())
        .collect())
}

/// Refuses a database whose schema is not this build's: not migrated yet (or older), or
/// migrated by a newer release that does not let this build run on it (its
/// [`OLDEST_COMPATIBLE_SCHEMA`] is past this build's schema).
///
/// # Errors
/// [`Error::Schema`], or any database error.
pub(crate) async fn check(client: &Client) -> Result<()> {
    let migrated: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    let found: Option<i32> = if migrated {
        client
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])
            .await?
            .get(0)
    } else {
        None
    };
    let expected = schema_version();
    let readable_from: Option<i32> = match found {
        Some(v) if v > expected => client
            .query_opt("SELECT readable_from FROM schema_compatibility", &[])
            .await?
            .map(|row| row.get(0)),
        _ => None,
    };
    match found {
        Some(v) if v == expected => Ok(()),
        Some(v) if v > expected && readable_from.is_some_and(|from| from <= expected) => {
            tracing::warn!(
                schema = v,
                built_for = expected,
                "running on a newer schema a later release migrated (a rollback within its \
                 compatibility window)"
            );
            Ok(())
        }
        _ => Err(Error::Schema {
            found,
            expected,
            readable_from,
        }),
    }
}
