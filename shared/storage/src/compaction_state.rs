//! Compaction state (`compaction_positions`, the compactor's lease, quarantines, recompute
//! locks, month roll-ups built): where each plugin version being compacted is in the fact
//! log. The compactor (`na-compaction`) calls these inside its own transaction, so a
//! batch's bucket changes and its new position commit together or not at all.
//!
//! Position of a version: every log row visible in its `base` snapshot, plus every row after
//! it in (txid, id) order up to its cursor. Rows are only taken below the current snapshot's
//! xmin, where every transaction has finished: a row committed late, under a smaller txid
//! than rows already taken, is below no cursor yet (its transaction was still running, so
//! the xmin was at or below its txid).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient as Cached;
use deadpool_postgres::Object;
use na_domain::Granularity;
use tokio_postgres::{Row, Transaction};

use crate::Result;
use crate::facts::FactScan;

/// A plugin version's series: metric index -> bucket series id and aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub metric_index: i32,
    pub series: i32,
    pub aggregation: String,
}

/// A plugin version being compacted, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPosition {
    pub plugin_name: String,
    pub plugin_version: i32,
    /// A `pg_snapshot` in its text form.
    pub base: String,
    pub cursor_txid: i64,
    pub cursor_id: i64,
    pub applied_rows: i64,
    pub content_hash: Vec<u8>,
    /// Recomputed after raw facts before this had been dropped: its buckets start here.
    pub facts_from: Option<DateTime<Utc>>,
    /// Quarantined: its plugin failed batch after batch, so compaction stopped running it
    /// (when, and the last failure).
    pub quarantined: Option<(DateTime<Utc>, String)>,
}

/// The compactor's lease: one compactor transaction at a time (the second one skips).
///
/// # Errors
/// Database errors.
pub async fn try_lease(tx: &Transaction<'_>) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock(hashtext('nostr-analytics compactor'))",
            &[],
        )
        .await?
        .get(0))
}

/// Waits for the compactor's lease (for changes that must not interleave with a batch).
///
/// # Errors
/// Database errors.
pub async fn wait_for_lease(tx: &Transaction<'_>) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('nostr-analytics compactor'))",
        &[],
    )
    .await?;
    Ok(())
}

/// Versions being compacted (those with a position, not retired).
///
/// # Errors
/// Database errors.
pub async fn positions(tx: &Transaction<'_>) -> Result<Vec<VersionPosition>> {
    let rows = tx
        .query(
            &format!(
                "{POSITIONS} WHERE p.state <> 'retired' AND s.quarantined_at IS NULL ORDER BY 1, 2"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(position_of).collect())
}

/// Positions with their plugin row (`p`), as [`position_of`] reads them, then `updated_at`.
pub(crate) const POSITIONS: &str =
    "SELECT s.plugin_name, s.plugin_version, s.base::text, s.cursor_txid::text::bigint,
            s.cursor_id, s.applied_rows, p.content_hash, s.updated_at, s.facts_from,
            s.quarantined_at, coalesce(s.last_error, '')
     FROM compaction_state s
     JOIN plugins p ON p.name = s.plugin_name AND p.version = s.plugin_version";

pub(crate) fn position_of(r: &Row) -> VersionPosition {
    VersionPosition {
        plugin_name: r.get(0),
        plugin_version: r.get(1),
        base: r.get(2),
        cursor_txid: r.get(3),
        cursor_id: r.get(4),
        applied_rows: r.get(5),
        content_hash: r.get(6),
        facts_from: r.get(8),
        quarantined: r
            .get::<_, Option<DateTime<Utc>>>(9)
            .map(|at| (at, r.get(10))),
    }
}

/// The series of a plugin version, by metric index.
///
/// # Errors
/// Database errors.
pub async fn series_of(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
    version: i32,
) -> Result<Vec<Series>> {
    let rows = client
        .query(
            "SELECT metric_index, series, aggregation FROM plugin_metrics
             WHERE plugin_name = $1 AND plugin_version = $2 ORDER BY metric_index",
            &[&name, &version],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Series {
            metric_index: r.get(0),
            series: r.get(1),
            aggregation: r.get(2),
        })
        .collect())
}

/// How far behind a version is: log rows not applied yet, and the age of the oldest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lag {
    pub plugin: String,
    pub rows: i64,
    pub seconds: f64,
    /// The plugin's last failure on a batch (cleared by the next batch it applies).
    pub last_error: Option<String>,
    /// When it was quarantined (compaction no longer runs it), if it is.
    pub quarantined_at: Option<DateTime<Utc>>,
}

/// The lag of every version being compacted.
///
/// # Errors
/// Database errors.
pub async fn lag(client: &impl tokio_postgres::GenericClient) -> Result<Vec<Lag>> {
    let rows = client
        .query(
            "SELECT s.plugin_name || '@' || s.plugin_version,
                    count(l.id),
                    coalesce(extract(epoch FROM now() - min(l.logged_at))::float8, 0),
                    s.last_error, s.quarantined_at
             FROM compaction_state s
             JOIN plugins p ON p.name = s.plugin_name AND p.version = s.plugin_version
             LEFT JOIN fact_log l
               ON l.txid >= s.cursor_txid AND (l.txid, l.id) > (s.cursor_txid, s.cursor_id)
              AND NOT pg_visible_in_snapshot(l.txid, s.base)
             WHERE p.state <> 'retired'
             GROUP BY 1, 4, 5 ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Lag {
            plugin: r.get(0),
            rows: r.get(1),
            seconds: r.get(2),
            last_error: r.get(3),
            quarantined_at: r.get(4),
        })
        .collect())
}

/// Moves a version's cursor after a batch it applied.
///
/// # Errors
/// Database errors.
pub async fn advance(
    tx: &Transaction<'_>,
    name: &str,
    version: i32,
    cursor: (i64, i64),
    rows: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE compaction_state
         SET cursor_txid = ($3::bigint)::text::xid8, cursor_id = $4,
             applied_rows = applied_rows + $5, updated_at = now(), last_error = NULL,
             failures = 0
         WHERE plugin_name = $1 AND plugin_version = $2",
        &[&name, &version, &cursor.0, &cursor.1, &rows],
    )
    .await?;
    Ok(())
}

/// Records why a version's next batch failed (its cursor stays); the `quarantine_after`th
/// failure in a row quarantines it. Returns whether it is quarantined now.
///
/// # Errors
/// Database errors.
pub async fn record_failure(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
    version: i32,
    error: &str,
    quarantine_after: i32,
) -> Result<bool> {
    let row = client
        .query_opt(
            "UPDATE compaction_state SET last_error = $3, failures = failures + 1,
                 quarantined_at = CASE WHEN failures + 1 >= $4 THEN coalesce(quarantined_at, now()) END,
                 updated_at = now()
             WHERE plugin_name = $1 AND plugin_version = $2
             RETURNING quarantined_at IS NOT NULL",
            &[&name, &version, &error, &quarantine_after],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Lets a quarantined version run again (its failures forgotten). Returns whether it was
/// quarantined.
///
/// # Errors
/// Database errors.
pub async fn release(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
    version: i32,
) -> Result<bool> {
    Ok(client
        .execute(
            "UPDATE compaction_state SET quarantined_at = NULL, failures = 0, updated_at = now()
             WHERE plugin_name = $1 AND plugin_version = $2 AND quarantined_at IS NOT NULL",
            &[&name, &version],
        )
        .await?
        == 1)
}

/// Forgets a version's buckets, gauge levels and position (a recompute starts over). Waits
/// for the compactor's lease, so no batch is applying to the version meanwhile.
///
/// # Errors
/// Database errors.
pub async fn reset_version(tx: &Transaction<'_>, name: &str, version: i32) -> Result<()> {
    wait_for_lease(tx).await?;
    let series: Vec<i32> = series_of(tx, name, version)
        .await?
        .iter()
        .map(|s| s.series)
        .collect();
    for g in Granularity::ALL {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE series = ANY($1)",
                crate::buckets::table(g)
            ),
            &[&series],
        )
        .await?;
    }
    tx.execute(
        "DELETE FROM gauge_levels WHERE series = ANY($1)",
        &[&series],
    )
    .await?;
    tx.execute(
        "DELETE FROM compaction_state WHERE plugin_name = $1 AND plugin_version = $2",
        &[&name, &version],
    )
    .await?;
    Ok(())
}

/// Makes a recomputed version compacted from here on (its buckets hold what the scan's
/// snapshot showed, facts from `scan.facts_from` on) and records it as recomputed, so it can
/// be activated.
///
/// # Errors
/// Database errors.
pub async fn install_position(
    tx: &Transaction<'_>,
    name: &str,
    version: i32,
    scan: &FactScan,
    applied_rows: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO compaction_state
             (plugin_name, plugin_version, base, cursor_txid, cursor_id, applied_rows, facts_from)
         VALUES ($1, $2, $3::text::pg_snapshot, pg_snapshot_xmin($3::text::pg_snapshot), 0, $4, $5)",
        &[&name, &version, &scan.snapshot, &applied_rows, &scan.facts_from],
    )
    .await?;
    tx.execute(
        "UPDATE plugins SET recomputed_at = now() WHERE name = $1 AND version = $2",
        &[&name, &version],
    )
    .await?;
    Ok(())
}

/// One recompute per version at a time: a session lock on `conn`, held until
/// [`release_recompute`] or until the connection closes (a crashed job frees it).
///
/// # Errors
/// Database errors.
pub async fn try_lock_recompute(conn: &Object, name: &str, version: i32) -> Result<bool> {
    Ok(conn
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('recompute ' || $1 || '@' || $2::int::text))",
            &[&name, &version],
        )
        .await?
        .get(0))
}

/// Frees the lock [`try_lock_recompute`] took.
///
/// # Errors
/// Database errors.
pub async fn release_recompute(conn: &Object, name: &str, version: i32) -> Result<()> {
    conn.execute(
        "SELECT pg_advisory_unlock(hashtext('recompute ' || $1 || '@' || $2::int::text))",
        &[&name, &version],
    )
    .await?;
    Ok(())
}

/// Versions (retired ones too) whose month buckets are not built yet.
///
/// # Errors
/// Database errors.
pub async fn versions_without_months(tx: &Transaction<'_>) -> Result<Vec<(String, i32)>> {
    let rows = tx
        .query(
            "SELECT plugin_name, plugin_version FROM compaction_state WHERE NOT months_built
             ORDER BY 1, 2",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Records that a version's month buckets are complete.
///
/// # Errors
/// Database errors.
pub async fn set_months_built(tx: &Transaction<'_>, name: &str, version: i32) -> Result<()> {
    tx.execute(
        "UPDATE compaction_state SET months_built = true
         WHERE plugin_name = $1 AND plugin_version = $2",
        &[&name, &version],
    )
    .await?;
    Ok(())
}

/// Where a version's compaction is, with when it last moved; `None` while it has no
/// buckets (no recompute has finished).
///
/// # Errors
/// Database errors.
pub async fn position(
    client: &impl Cached,
    name: &str,
    version: i32,
) -> Result<Option<(VersionPosition, DateTime<Utc>)>> {
    let row = client
        .query_opt(
            &client
                .prepare_cached(&format!(
                    "{POSITIONS} WHERE s.plugin_name = $1 AND s.plugin_version = $2"
                ))
                .await?,
            &[&name, &version],
        )
        .await?;
    Ok(row.map(|r| (position_of(&r), r.get(7))))
}

/// Whether every version's month buckets are built (migration V8's roll-up has run).
///
/// # Errors
/// Database errors.
pub async fn months_ready(client: &impl Cached) -> Result<bool> {
    Ok(client
        .query_one(
            &client
                .prepare_cached(
                    "SELECT coalesce(bool_and(months_built), true) FROM compaction_state",
                )
                .await?,
            &[],
        )
        .await?
        .get(0))
}
