//! The fact log (`fact_log`): every change to `facts` as a +1 or −1 row, in commit order.
//! Compaction reads it after a version's position below the safe horizon; a query reads
//! the rows after the position that concern its user (the live delta).

use deadpool_postgres::GenericClient as Cached;
use tokio_postgres::Transaction;

use crate::Result;
use crate::compaction_state::VersionPosition;
use crate::facts::{FACT_COLUMNS, FactRow, log_row};

/// The txid below which every transaction has finished (this snapshot's xmin).
///
/// # Errors
/// Database errors.
pub async fn safe_txid(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await?
        .get(0))
}

/// Up to `limit` log rows after `position`, below `safe_txid`, in (txid, id) order.
///
/// # Errors
/// Database errors.
pub async fn read_log(
    tx: &Transaction<'_>,
    position: &VersionPosition,
    safe_txid: i64,
    limit: i64,
) -> Result<Vec<FactRow>> {
    // `txid >= cursor` beside the row comparison: the planner can estimate a plain bound
    // (not a row comparison), so it ranges over the (txid, id) index instead of scanning
    // the whole log. The same goes for every read after a cursor.
    let rows = tx
        .query(
            &format!(
                "SELECT txid::text::bigint, id, sign, {FACT_COLUMNS} FROM fact_log
                 WHERE txid >= ($1::bigint)::text::xid8
                   AND (txid, id) > (($1::bigint)::text::xid8, $2)
                   AND txid < ($3::bigint)::text::xid8
                   AND NOT pg_visible_in_snapshot(txid, $4::text::pg_snapshot)
                 ORDER BY txid, id
                 LIMIT $5"
            ),
            &[
                &position.cursor_txid,
                &position.cursor_id,
                &safe_txid,
                &position.base,
                &limit,
            ],
        )
        .await?;
    Ok(rows.iter().map(log_row).collect())
}

/// Whether log rows wait after `position` that a batch cannot take yet: their transaction
/// ids are at or above the safe horizon because an older transaction (in any database of
/// the server: txids are server-wide) is still running.
///
/// # Errors
/// Database errors.
pub async fn rows_waiting(
    tx: &Transaction<'_>,
    position: &VersionPosition,
    safe_txid: i64,
) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (
                 SELECT 1 FROM fact_log
                 WHERE txid >= ($1::bigint)::text::xid8
                   AND NOT pg_visible_in_snapshot(txid, $2::text::pg_snapshot))",
            &[&safe_txid, &position.base],
        )
        .await?
        .get(0))
}

/// The log rows after `position` that concern `subject` (as actor or subject) and are of
/// the given classes: what a query adds to the buckets. Every contribution a plugin makes
/// is credited to its fact's actor or subject, so no other row can change this subject.
///
/// # Errors
/// Database errors.
pub async fn unapplied_rows(
    client: &impl Cached,
    position: &VersionPosition,
    subject: &[u8],
    classes: &[i16],
) -> Result<Vec<FactRow>> {
    let rows = client
        .query(
            &client
                .prepare_cached(&format!(
                    "SELECT txid::text::bigint, id, sign, {FACT_COLUMNS} FROM fact_log
                 WHERE txid >= ($1::bigint)::text::xid8
                   AND (txid, id) > (($1::bigint)::text::xid8, $2)
                   AND NOT pg_visible_in_snapshot(txid, $3::text::pg_snapshot)
                   AND (actor = $4 OR subject = $4)
                   AND (cardinality($5::int2[]) = 0 OR class = ANY($5))
                 ORDER BY txid, id"
                ))
                .await?,
            &[
                &position.cursor_txid,
                &position.cursor_id,
                &position.base,
                &subject,
                &classes,
            ],
        )
        .await?;
    Ok(rows.iter().map(log_row).collect())
}

/// How many log rows a version has not applied, counted up to `cap` (the cost of a
/// query's live delta is bounded by it).
///
/// # Errors
/// Database errors.
pub async fn unapplied_count(
    client: &impl Cached,
    position: &VersionPosition,
    cap: i64,
) -> Result<i64> {
    Ok(client
        .query_one(
            &client
                .prepare_cached(
                    "SELECT count(*) FROM (
                 SELECT 1 FROM fact_log
                 WHERE txid >= ($1::bigint)::text::xid8
                   AND (txid, id) > (($1::bigint)::text::xid8, $2)
                   AND NOT pg_visible_in_snapshot(txid, $3::text::pg_snapshot)
                 LIMIT $4) x",
                )
                .await?,
            &[
                &position.cursor_txid,
                &position.cursor_id,
                &position.base,
                &cap,
            ],
        )
        .await?
        .get(0))
}
