//! The SQL files under `migrations/`, embedded in every binary.

use tokio_postgres::Client;

use crate::Result;

refinery::embed_migrations!("../../migrations");

/// Applies pending migrations. A database that has migrations this binary does not know
/// (a newer schema) or whose applied files differ from ours is refused.
pub(crate) async fn run(client: &mut Client) -> Result<usize> {
    // A migration may take as long as it needs, whatever the connection's default limit;
    // RESET brings that default back for the pooled connection's next user.
    client.batch_execute("SET statement_timeout = 0").await?;
    let report = migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await;
    client.batch_execute("RESET statement_timeout").await?;
    Ok(report?.applied_migrations().len())
}
