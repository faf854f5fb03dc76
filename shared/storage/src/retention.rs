//! Retention's statements: minute and hour buckets pruned past their horizons (day buckets
//! are kept), and fact-log rows every compacted version has applied.

use chrono::{DateTime, Utc};

use crate::compaction::wait_for_lease;
use crate::{Db, Result};

/// What a pruning removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    pub minute_rows: u64,
    pub hour_rows: u64,
    /// Where minute and hour buckets are complete from now.
    pub minute_from: Option<DateTime<Utc>>,
    pub hour_from: Option<DateTime<Utc>>,
}

impl Db {
    /// Moves the minute and hour horizons forward (never back) to `minute_from` and
    /// `hour_from` and deletes the buckets before them, in one transaction under the
    /// compactor's lease, so no batch writes a bucket the horizon has passed meanwhile.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_buckets(
        &self,
        minute_from: DateTime<Utc>,
        hour_from: DateTime<Utc>,
    ) -> Result<Pruned> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        wait_for_lease(&tx).await?;
        let mut pruned = Pruned::default();
        for (level, table, from) in [
            ("minute", "buckets_minute", minute_from),
            ("hour", "buckets_hour", hour_from),
        ] {
            let row = tx
                .query_one(
                    "UPDATE bucket_horizons
                     SET complete_from = greatest(coalesce(complete_from, $2), $2)
                     WHERE granularity = $1 RETURNING complete_from",
                    &[&level, &from],
                )
                .await?;
            let horizon: DateTime<Utc> = row.get(0);
            let deleted = tx
                .execute(
                    &format!("DELETE FROM {table} WHERE bucket < $1"),
                    &[&horizon],
                )
                .await?;
            if level == "minute" {
                (pruned.minute_rows, pruned.minute_from) = (deleted, Some(horizon));
            } else {
                (pruned.hour_rows, pruned.hour_from) = (deleted, Some(horizon));
            }
        }
        tx.commit().await?;
        Ok(pruned)
    }

    /// Deletes up to `limit` fact-log rows that every version being compacted has applied
    /// (none while no version is) and that every open snapshot sees — a recompute reading
    /// `facts` in an older snapshot will need the rows it does not see. Returns how many
    /// went.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_fact_log(&self, limit: i64) -> Result<u64> {
        let conn = self.conn().await?;
        Ok(conn
            .execute(
                "DELETE FROM fact_log WHERE id IN (
                     SELECT l.id FROM fact_log l
                     WHERE EXISTS (SELECT 1 FROM compaction_state)
                       AND l.txid < (
                           SELECT least(
                               pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                               pg_snapshot_xmax(pg_current_snapshot())::text::bigint
                                   - coalesce(max(age(backend_xmin)), 0))
                           FROM pg_stat_activity)::text::xid8
                       AND NOT EXISTS (
                           SELECT 1 FROM compaction_state s
                           JOIN plugins p ON p.name = s.plugin_name AND p.version = s.plugin_version
                           WHERE p.state <> 'retired'
                             AND NOT pg_visible_in_snapshot(l.txid, s.base)
                             AND (l.txid, l.id) > (s.cursor_txid, s.cursor_id))
                     ORDER BY l.txid, l.id
                     LIMIT $1)",
                &[&limit],
            )
            .await?)
    }
}
