//! The compaction function: each scheduled invocation applies the fact log to the buckets
//! until it is caught up or its deadline nears (`na-compaction` does the work).

use std::time::Instant;

use na_compaction::{Compactor, RunReport};

/// One scheduled run, ending before `deadline` (the Lambda's, when there is one).
///
/// # Errors
/// Database failures (what was committed stays; the next run carries on).
pub async fn handle_scheduled(
    compactor: &Compactor,
    deadline: Option<Instant>,
) -> anyhow::Result<RunReport> {
    Ok(compactor.run(deadline).await?)
}
