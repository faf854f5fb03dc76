//! The one-time roll-up of a version's day buckets into month buckets, for versions compacted
//! before month buckets existed (migration V8). Later batches write months as they go.

use na_domain::Granularity;
use na_sketch::DistinctSketch;
use na_storage::buckets::DistinctBucket;
use na_storage::{buckets, compaction_state};
use tracing::info;

use crate::CompactionError;

/// Distinct day rows read (and month rows written) per round trip.
const CHUNK: i32 = 5_000;

/// Rolls up every version whose month buckets are not built yet (retired ones too: queries
/// use month buckets only once every version has them). Runs in the caller's transaction,
/// under its lease.
///
/// # Errors
/// Database errors; a stored sketch that cannot be read.
pub(crate) async fn roll_up_pending(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<(), CompactionError> {
    for (name, version) in compaction_state::versions_without_months(tx).await? {
        let series: Vec<i32> = compaction_state::series_of(tx, &name, version)
            .await?
            .iter()
            .map(|s| s.series)
            .collect();
        let additive = buckets::roll_up_additive_months(tx, &series).await?;
        let distinct = roll_up_distinct(tx, &series).await?;
        compaction_state::set_months_built(tx, &name, version).await?;
        info!(plugin = %format!("{name}@{version}"), additive, distinct, "month buckets rolled up from day buckets");
    }
    Ok(())
}

/// Merges the distinct day rows of each month (they arrive ordered by month key) and writes
/// the month rows. Returns how many.
async fn roll_up_distinct(
    tx: &tokio_postgres::Transaction<'_>,
    series: &[i32],
) -> Result<u64, CompactionError> {
    let portal = buckets::scan_distinct_days(tx, series).await?;
    let mut written = 0;
    let mut open: Option<(DistinctBucket, DistinctSketch)> = None;
    let mut done = Vec::new();
    loop {
        let days = buckets::next_distinct_days(tx, &portal, CHUNK).await?;
        let end = days.is_empty();
        for day in days {
            let sketch = DistinctSketch::from_stored(&day.sketch, day.key_counts.as_deref())?;
            match &mut open {
                Some((month, merged)) if month.key == day.key => {
                    merged.merge(&sketch);
                    month.contributions += day.contributions;
                    month.unapplied = month.unapplied.saturating_add(day.unapplied);
                }
                _ => done.extend(open.replace((day, sketch)).map(finish)),
            }
        }
        if end {
            done.extend(open.take().map(finish));
        }
        if end || done.len() >= CHUNK as usize {
            buckets::store_distinct(tx, Granularity::Month, &done).await?;
            written += done.len() as u64;
            done.clear();
        }
        if end {
            return Ok(written);
        }
    }
}

fn finish((mut month, sketch): (DistinctBucket, DistinctSketch)) -> DistinctBucket {
    month.value = sketch.estimate().value as i64;
    month.sketch = sketch.to_hll_bytes();
    month.key_counts = sketch.counts_bytes();
    month
}
