//! What compaction reads and writes: the fact log in (txid, id) order below the safe
//! horizon, each plugin version's position in it, bucket rows, gauge levels. The compactor
//! (`na-compaction`) calls these inside its own transaction, so a batch's bucket changes and
//! its new position commit together or not at all.
//!
//! Position of a version: every log row visible in its `base` snapshot, plus every row after
//! it in (txid, id) order up to its cursor. Rows are only taken below the current snapshot's
//! xmin, where every transaction has finished: a row committed late, under a smaller txid
//! than rows already taken, is below no cursor yet (its transaction was still running, so
//! the xmin was at or below its txid).

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Portal, Row, Transaction};

use crate::Result;
use crate::events::timestamp;

/// Bucket sizes, finest first. Months are calendar months (UTC); the others fixed lengths.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Minute,
    Hour,
    Day,
    Month,
}

impl Granularity {
    pub const ALL: [Granularity; 4] = [
        Granularity::Minute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Month,
    ];

    /// The length of a fixed-length bucket; `None` for months.
    pub fn seconds(self) -> Option<i64> {
        match self {
            Granularity::Minute => Some(60),
            Granularity::Hour => Some(3_600),
            Granularity::Day => Some(86_400),
            Granularity::Month => None,
        }
    }

    /// The start of the bucket holding `at` (Unix seconds, UTC). Saturates at the ends of
    /// `i64`; months past the calendar's range fall back to 31-day steps.
    pub fn bucket(self, at: i64) -> i64 {
        match self.seconds() {
            Some(s) => at.div_euclid(s).saturating_mul(s),
            None => month_start(at, 0),
        }
    }

    /// The start of the bucket after the one holding `at`: always later than `at` (but at
    /// `i64::MAX`), so a walk over bucket starts ends.
    pub fn next(self, at: i64) -> i64 {
        let next = match self.seconds() {
            Some(s) => self.bucket(at).saturating_add(s),
            None => month_start(at, 1),
        };
        next.max(at.saturating_add(1))
    }

    /// `at` rounded up to a bucket start.
    pub fn ceil(self, at: i64) -> i64 {
        if self.bucket(at) == at {
            at
        } else {
            self.next(at)
        }
    }

    /// How many buckets start in `[from, to)`, `from` a bucket start.
    pub fn count(self, from: i64, to: i64) -> i64 {
        match self.seconds() {
            Some(s) => {
                let span = to.saturating_sub(from).max(0);
                span / s + i64::from(span % s != 0)
            }
            None => self.starts(from, to).count() as i64,
        }
    }

    /// The bucket starts in `[from, to)`, `from` a bucket start.
    pub fn starts(self, from: i64, to: i64) -> impl Iterator<Item = i64> + use<> {
        std::iter::successors(Some(from), move |at| {
            (*at < i64::MAX).then(|| self.next(*at))
        })
        .take_while(move |at| *at < to)
    }

    pub fn name(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Month => "month",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Granularity::Minute => "buckets_minute",
            Granularity::Hour => "buckets_hour",
            Granularity::Day => "buckets_day",
            Granularity::Month => "buckets_month",
        }
    }
}

/// The first instant of the month `months_ahead` after the one holding `at` (UTC).
fn month_start(at: i64, months_ahead: u32) -> i64 {
    use chrono::{Datelike, Months, NaiveDate};
    const LONGEST: i64 = 31 * 86_400;
    // Outside chrono's calendar (±262,000 years) months are 31-day steps: meaningless, but
    // every walk still moves forward (windows are checked long before they get here).
    let fallback = at
        .div_euclid(LONGEST)
        .saturating_add(i64::from(months_ahead))
        .saturating_mul(LONGEST);
    let Some(day) = DateTime::from_timestamp(at.div_euclid(86_400).saturating_mul(86_400), 0)
    else {
        return fallback;
    };
    NaiveDate::from_ymd_opt(day.year(), day.month(), 1)
        .and_then(|d| d.checked_add_months(Months::new(months_ahead)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(fallback, |d| d.and_utc().timestamp())
}

/// A fact as compaction reads it: from the log (with its sign and position) or, for a
/// recompute, from `facts` (sign +1, position 0).
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow {
    pub sign: i16,
    pub txid: i64,
    pub id: i64,
    pub created_at: i64,
    pub event_id: Vec<u8>,
    pub seq: i16,
    pub class: i16,
    pub actor: Vec<u8>,
    pub subject: Option<Vec<u8>>,
    pub target_event: Option<Vec<u8>>,
    pub target_coord: Option<String>,
    pub amount_msats: Option<i64>,
    pub flags: i32,
    pub dims: Option<serde_json::Value>,
    pub expires_at: Option<i64>,
}

pub(crate) const FACT_COLUMNS: &str = "created_at, event_id, seq, class, actor, subject, target_event, \
                            target_coord, amount_msats, flags, dims, expires_at";

/// A fact-log row selected as `txid::text::bigint, id, sign, {FACT_COLUMNS}`.
pub(crate) fn log_row(row: &Row) -> FactRow {
    fact_row(row, row.get(2), row.get(0), row.get(1), 3)
}

pub(crate) fn fact_row(row: &Row, sign: i16, txid: i64, id: i64, at: usize) -> FactRow {
    let ts = |i: usize| row.get::<_, DateTime<Utc>>(i).timestamp();
    FactRow {
        sign,
        txid,
        id,
        created_at: ts(at),
        event_id: row.get(at + 1),
        seq: row.get(at + 2),
        class: row.get(at + 3),
        actor: row.get(at + 4),
        subject: row.get(at + 5),
        target_event: row.get(at + 6),
        target_coord: row.get(at + 7),
        amount_msats: row.get(at + 8),
        flags: row.get(at + 9),
        dims: row.get(at + 10),
        expires_at: row
            .get::<_, Option<DateTime<Utc>>>(at + 11)
            .map(|t| t.timestamp()),
    }
}

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

/// Where each granularity's buckets are complete from (retention prunes before it).
///
/// # Errors
/// Database errors.
pub async fn horizons(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<(Granularity, Option<i64>)>> {
    let rows = client
        .query(
            "SELECT granularity, complete_from FROM bucket_horizons",
            &[],
        )
        .await?;
    Ok(Granularity::ALL
        .iter()
        .map(|g| {
            let from = rows
                .iter()
                .find(|r| r.get::<_, &str>(0) == g.name())
                .and_then(|r| r.get::<_, Option<DateTime<Utc>>>(1))
                .map(|t| t.timestamp());
            (*g, from)
        })
        .collect())
}

/// Identifies a bucket row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    pub series: i32,
    pub subject: [u8; 32],
    /// Bucket start, Unix seconds.
    pub bucket: i64,
    /// Dimension values as a JSON object (`{}` for none).
    pub dims: String,
}

/// How a bucket's value combines with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combine {
    Add,
    Least,
    Greatest,
}

/// A change to a count, sum, gauge, min or max bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketChange {
    pub key: BucketKey,
    pub combine: Combine,
    pub value: i64,
    pub contributions: i64,
    pub unapplied: i32,
}

/// A distinct bucket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctBucket {
    pub key: BucketKey,
    pub value: i64,
    pub contributions: i64,
    pub sketch: Vec<u8>,
    pub key_counts: Option<Vec<u8>>,
    pub unapplied: i32,
}

struct KeyColumns<'a> {
    series: Vec<i32>,
    subjects: Vec<&'a [u8]>,
    buckets: Vec<DateTime<Utc>>,
    dims: Vec<&'a str>,
}

impl<'a> KeyColumns<'a> {
    fn of(keys: impl Iterator<Item = &'a BucketKey>) -> Self {
        let mut c = KeyColumns {
            series: Vec::new(),
            subjects: Vec::new(),
            buckets: Vec::new(),
            dims: Vec::new(),
        };
        for k in keys {
            c.series.push(k.series);
            c.subjects.push(&k.subject);
            c.buckets.push(timestamp(k.bucket));
            c.dims.push(&k.dims);
        }
        c
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.series, &self.subjects, &self.buckets, &self.dims]
    }
}

const KEY_UNNEST: &str = "unnest($1::int[], $2::bytea[], $3::timestamptz[], $4::text[]::jsonb[])";
const KEY_MATCH: &str = "b.series = k.series AND b.subject = k.subject AND b.bucket = k.bucket \
                         AND b.dims = k.dims";

/// Applies changes to count, sum, gauge, min and max buckets; rows left with no
/// contributions are deleted (as a recompute would never have written them).
///
/// # Errors
/// Database errors.
pub async fn apply_changes(
    tx: &Transaction<'_>,
    granularity: Granularity,
    changes: &[BucketChange],
) -> Result<()> {
    let table = granularity.table();
    for combine in [Combine::Add, Combine::Least, Combine::Greatest] {
        let part: Vec<&BucketChange> = changes.iter().filter(|c| c.combine == combine).collect();
        if part.is_empty() {
            continue;
        }
        let value = match combine {
            Combine::Add => "b.value + EXCLUDED.value",
            Combine::Least => "least(b.value, EXCLUDED.value)",
            Combine::Greatest => "greatest(b.value, EXCLUDED.value)",
        };
        let keys = KeyColumns::of(part.iter().map(|c| &c.key));
        let values: Vec<i64> = part.iter().map(|c| c.value).collect();
        let contributions: Vec<i64> = part.iter().map(|c| c.contributions).collect();
        let unapplied: Vec<i32> = part.iter().map(|c| c.unapplied).collect();
        let [a, b, c, d] = keys.params();
        tx.execute(
            &format!(
                "INSERT INTO {table} AS b (series, subject, bucket, dims, value, contributions, unapplied)
                 SELECT * FROM unnest($1::int[], $2::bytea[], $3::timestamptz[], $4::text[]::jsonb[],
                                      $5::bigint[], $6::bigint[], $7::int[])
                 ON CONFLICT (series, subject, bucket, dims) DO UPDATE
                 SET value = {value}, contributions = b.contributions + EXCLUDED.contributions,
                     unapplied = b.unapplied + EXCLUDED.unapplied"
            ),
            &[a, b, c, d, &values, &contributions, &unapplied],
        )
        .await?;
        if part.iter().any(|c| c.contributions <= 0) {
            tx.execute(
                &format!(
                    "DELETE FROM {table} b USING {KEY_UNNEST} AS k(series, subject, bucket, dims)
                     WHERE {KEY_MATCH} AND b.contributions = 0"
                ),
                &keys.params(),
            )
            .await?;
        }
    }
    Ok(())
}

/// The stored distinct buckets among `keys`, locked for this transaction, with the index of
/// the key each answers.
///
/// # Errors
/// Database errors.
pub async fn lock_distinct(
    tx: &Transaction<'_>,
    granularity: Granularity,
    keys: &[BucketKey],
) -> Result<Vec<(usize, DistinctBucket)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let cols = KeyColumns::of(keys.iter());
    let rows = tx
        .query(
            &format!(
                "SELECT k.ord, b.value, b.contributions, b.sketch, b.key_counts, b.unapplied
                 FROM {} b
                 JOIN unnest($1::int[], $2::bytea[], $3::timestamptz[], $4::text[]::jsonb[])
                      WITH ORDINALITY AS k(series, subject, bucket, dims, ord) ON {KEY_MATCH}
                 FOR UPDATE OF b",
                granularity.table()
            ),
            &cols.params(),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let i = (r.get::<_, i64>(0) - 1) as usize;
            (
                i,
                DistinctBucket {
                    key: keys[i].clone(),
                    value: r.get(1),
                    contributions: r.get(2),
                    sketch: r.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
                    key_counts: r.get(4),
                    unapplied: r.get(5),
                },
            )
        })
        .collect())
}

/// Writes distinct buckets whole; a bucket with no contributions left is deleted.
///
/// # Errors
/// Database errors.
pub async fn store_distinct(
    tx: &Transaction<'_>,
    granularity: Granularity,
    rows: &[DistinctBucket],
) -> Result<()> {
    let table = granularity.table();
    let (keep, gone): (Vec<&DistinctBucket>, Vec<&DistinctBucket>) =
        rows.iter().partition(|r| r.contributions != 0);
    if !keep.is_empty() {
        let keys = KeyColumns::of(keep.iter().map(|r| &r.key));
        let values: Vec<i64> = keep.iter().map(|r| r.value).collect();
        let contributions: Vec<i64> = keep.iter().map(|r| r.contributions).collect();
        let sketches: Vec<&[u8]> = keep.iter().map(|r| r.sketch.as_slice()).collect();
        let counts: Vec<Option<&[u8]>> = keep.iter().map(|r| r.key_counts.as_deref()).collect();
        let unapplied: Vec<i32> = keep.iter().map(|r| r.unapplied).collect();
        let [a, b, c, d] = keys.params();
        tx.execute(
            &format!(
                "INSERT INTO {table} AS b
                     (series, subject, bucket, dims, value, contributions, sketch, key_counts, unapplied)
                 SELECT * FROM unnest($1::int[], $2::bytea[], $3::timestamptz[], $4::text[]::jsonb[],
                                      $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[], $9::int[])
                 ON CONFLICT (series, subject, bucket, dims) DO UPDATE
                 SET value = EXCLUDED.value, contributions = EXCLUDED.contributions,
                     sketch = EXCLUDED.sketch, key_counts = EXCLUDED.key_counts,
                     unapplied = EXCLUDED.unapplied"
            ),
            &[a, b, c, d, &values, &contributions, &sketches, &counts, &unapplied],
        )
        .await?;
    }
    if !gone.is_empty() {
        let keys = KeyColumns::of(gone.iter().map(|r| &r.key));
        tx.execute(
            &format!(
                "DELETE FROM {table} b USING {KEY_UNNEST} AS k(series, subject, bucket, dims)
                 WHERE {KEY_MATCH}"
            ),
            &keys.params(),
        )
        .await?;
    }
    Ok(())
}

/// Adds level changes to gauges; a level back at zero is deleted.
///
/// # Errors
/// Database errors.
pub async fn add_gauge_levels(
    tx: &Transaction<'_>,
    changes: &[(i32, [u8; 32], i64)],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let series: Vec<i32> = changes.iter().map(|c| c.0).collect();
    let subjects: Vec<Vec<u8>> = changes.iter().map(|c| c.1.to_vec()).collect();
    let deltas: Vec<i64> = changes.iter().map(|c| c.2).collect();
    tx.execute(
        "INSERT INTO gauge_levels AS g (series, subject, level)
         SELECT * FROM unnest($1::int[], $2::bytea[], $3::bigint[])
         ON CONFLICT (series, subject) DO UPDATE SET level = g.level + EXCLUDED.level",
        &[&series, &subjects, &deltas],
    )
    .await?;
    tx.execute(
        "DELETE FROM gauge_levels g USING unnest($1::int[], $2::bytea[]) AS k(series, subject)
         WHERE g.series = k.series AND g.subject = k.subject AND g.level = 0",
        &[&series, &subjects],
    )
    .await?;
    Ok(())
}

/// A recompute's read side: a read-only repeatable-read transaction (it takes no txid, so
/// it holds back no compactor) over the facts of some classes, and the snapshot it reads.
#[derive(Debug)]
pub struct FactScan {
    /// The snapshot, as text: the version's `base` once the recompute is done.
    pub snapshot: String,
    /// Facts the scan will return.
    pub total: i64,
    /// Where retained facts start (raw retention dropped those before).
    pub facts_from: Option<DateTime<Utc>>,
}

/// Opens a scan of the facts of `classes` (`None`: all) on `conn`; read them with
/// [`next_facts`].
///
/// # Errors
/// Database errors.
pub async fn scan_facts<'c>(
    conn: &'c mut Object,
    classes: Option<&[i16]>,
) -> Result<(deadpool_postgres::Transaction<'c>, Portal, FactScan)> {
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let row = tx
        .query_one(
            "SELECT pg_current_snapshot()::text, count(*),
                    (SELECT raw_from FROM raw_horizon)
             FROM facts WHERE $1::smallint[] IS NULL OR class = ANY($1)",
            &[&classes],
        )
        .await?;
    let scan = FactScan {
        snapshot: row.get(0),
        total: row.get(1),
        facts_from: row.get(2),
    };
    let portal = tx
        .bind(
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts WHERE $1::smallint[] IS NULL OR class = ANY($1)"
            ),
            &[&classes],
        )
        .await?;
    Ok((tx, portal, scan))
}

/// The next `n` facts of a scan (empty at the end).
///
/// # Errors
/// Database errors.
pub async fn next_facts(tx: &Transaction<'_>, portal: &Portal, n: i32) -> Result<Vec<FactRow>> {
    let rows = tx.query_portal(portal, n).await?;
    Ok(rows.iter().map(|r| fact_row(r, 1, 0, 0, 0)).collect())
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
            &format!("DELETE FROM {} WHERE series = ANY($1)", g.table()),
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

/// Rebuilds the month buckets of a version's count, sum, gauge, min and max series from its
/// day buckets (the one-time roll-up of a version compacted before month buckets existed;
/// under the compactor's lease, so no batch writes meanwhile). Its distinct series are
/// rolled up by the caller from [`scan_distinct_days`], whose sketches need merging.
/// Returns the month rows written.
///
/// # Errors
/// Database errors.
pub async fn roll_up_additive_months(tx: &Transaction<'_>, series: &[i32]) -> Result<u64> {
    tx.execute(
        "DELETE FROM buckets_month WHERE series = ANY($1)",
        &[&series],
    )
    .await?;
    Ok(tx
        .execute(
            "INSERT INTO buckets_month (series, subject, bucket, dims, value, contributions, unapplied)
             SELECT d.series, d.subject, date_trunc('month', d.bucket, 'UTC'), d.dims,
                    CASE m.aggregation WHEN 'min' THEN min(d.value) WHEN 'max' THEN max(d.value)
                                       ELSE sum(d.value)::bigint END,
                    sum(d.contributions)::bigint, sum(d.unapplied)::int
             FROM buckets_day d JOIN plugin_metrics m ON m.series = d.series
             WHERE d.series = ANY($1) AND d.sketch IS NULL
             GROUP BY d.series, d.subject, date_trunc('month', d.bucket, 'UTC'), d.dims,
                      m.aggregation",
            &[&series],
        )
        .await?)
}

/// The distinct day buckets of `series`, each keyed by its month, ordered by that key: read
/// with [`next_distinct_days`].
///
/// # Errors
/// Database errors.
pub async fn scan_distinct_days(tx: &Transaction<'_>, series: &[i32]) -> Result<Portal> {
    Ok(tx
        .bind(
            "SELECT series, subject, extract(epoch FROM date_trunc('month', bucket, 'UTC'))::bigint,
                    dims::text, value, contributions, sketch, key_counts, unapplied
             FROM buckets_day WHERE series = ANY($1) AND sketch IS NOT NULL
             ORDER BY 1, 2, 3, 4",
            &[&series],
        )
        .await?)
}

/// The next `n` rows of a [`scan_distinct_days`] (empty at the end).
///
/// # Errors
/// Database errors.
pub async fn next_distinct_days(
    tx: &Transaction<'_>,
    portal: &Portal,
    n: i32,
) -> Result<Vec<DistinctBucket>> {
    let rows = tx.query_portal(portal, n).await?;
    Ok(rows
        .iter()
        .map(|r| DistinctBucket {
            key: BucketKey {
                series: r.get(0),
                subject: r.get::<_, &[u8]>(1).try_into().unwrap_or([0; 32]),
                bucket: r.get(2),
                dims: r.get(3),
            },
            value: r.get(4),
            contributions: r.get(5),
            sketch: r.get::<_, Option<Vec<u8>>>(6).unwrap_or_default(),
            key_counts: r.get(7),
            unapplied: r.get(8),
        })
        .collect())
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
