//! The SQL files under `migrations/`, embedded in every binary.

use tokio_postgres::Client;

use crate::Result;

refinery::embed_migrations!("../../migrations");

/// Applies pending migrations. A database that has migrations this binary does not know
/// (a newer schema) or whose applied files differ from ours is refused.
pub(crate) async fn run(client: &mut Client) -> Result<usize> {
    let report = migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await?;
    Ok(report.applied_migrations().len())
}
