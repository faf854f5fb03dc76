//! Retention's statements: minute and hour buckets pruned past their horizons (day buckets
//! are kept), fact-log rows every compacted version has applied, and the monthly partitions
//! of raw events and facts past the raw horizon.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use tokio_postgres::GenericClient;

use crate::compaction_state::wait_for_lease;
use crate::events::WRITER_LOCK;
use crate::{Db, Result};

/// What dropping raw partitions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DroppedRaw {
    /// Partitions of `events` and `facts` dropped.
    pub partitions: Vec<String>,
    /// Where retained events and facts start from now.
    pub raw_from: Option<DateTime<Utc>>,
    /// Nothing was dropped this time: a long reader (a recompute's scan) held a partition.
    pub busy: bool,
}

/// The first instant of `t`'s month.
fn month_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(t, |d| d.and_utc())
}

/// Where a partition made by `ensure_month_partitions` (or the archive) ends.
fn partition_end(name: &str) -> Option<DateTime<Utc>> {
    if name.ends_with("_archive") {
        return DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z")
            .ok()
            .map(|t| t.to_utc());
    }
    let (rest, month) = name.rsplit_once('_')?;
    let (_, year) = rest.rsplit_once('_')?;
    let start = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
    start
        .checked_add_months(Months::new(1))?
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
}

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

    /// Drops the partitions of `events` and `facts` that end at or before the month of
    /// `before`, and moves the raw horizon there (forward only). Buckets are untouched (they
    /// were compacted from the fact log, which keeps its own copy of every change until
    /// compaction has applied it). Under the ingest writers' lock, so no batch is between
    /// reading the horizon and writing; a reader holding a partition (a recompute's scan) makes
    /// the run give up after a few seconds (`busy`) rather than stall ingest.
    ///
    /// # Errors
    /// Database errors.
    pub async fn drop_raw_partitions(&self, before: DateTime<Utc>) -> Result<DroppedRaw> {
        let horizon = month_floor(before);
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
        let dropped = async {
            tx.execute(WRITER_LOCK, &[]).await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('ensure_month_partitions'))",
                &[],
            )
            .await?;
            let names: Vec<String> = tx
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE i.inhparent IN ('events'::regclass, 'facts'::regclass)",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut dropped: Vec<String> = names
                .into_iter()
                .filter(|n| partition_end(n).is_some_and(|end| end <= horizon))
                .collect();
            dropped.sort();
            for name in &dropped {
                tx.batch_execute(&format!("DROP TABLE \"{name}\"")).await?;
            }
            let raw_from: Option<DateTime<Utc>> = tx
                .query_one(
                    "UPDATE raw_horizon SET raw_from = greatest(coalesce(raw_from, $1), $1)
                     RETURNING raw_from",
                    &[&horizon],
                )
                .await?
                .get(0);
            Ok::<_, tokio_postgres::Error>(DroppedRaw {
                partitions: dropped,
                raw_from,
                busy: false,
            })
        }
        .await;
        match dropped {
            Ok(d) => {
                tx.commit().await?;
                Ok(d)
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Ok(DroppedRaw {
                    busy: true,
                    ..Default::default()
                })
            }
            Err(e) => Err(e.into()),
        }
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

/// Where retained events and facts start (`None`: raw retention has dropped nothing).
///
/// # Errors
/// Database errors.
pub async fn raw_from(client: &impl GenericClient) -> Result<Option<DateTime<Utc>>> {
    Ok(client
        .query_one("SELECT raw_from FROM raw_horizon", &[])
        .await?
        .get(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
mod tests {
    use super::*;

    #[test]
    fn partitions_end_where_their_month_does() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            partition_end("facts_2024_12"),
            Some(t("2025-01-01T00:00:00Z"))
        );
        assert_eq!(
            partition_end("events_2023_02"),
            Some(t("2023-03-01T00:00:00Z"))
        );
        assert_eq!(
            partition_end("events_archive"),
            Some(t("2021-01-01T00:00:00Z"))
        );
        assert_eq!(partition_end("facts_target"), None);
        assert_eq!(
            month_floor(t("2024-03-17T05:00:00Z")),
            t("2024-03-01T00:00:00Z")
        );
    }
}
