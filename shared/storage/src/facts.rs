//! Reads of the `events` and `facts` tables: a user's facts in the edge ranges of a window,
//! an event and the facts about it (a note drilldown), the raw scan the benchmarks compare
//! against, and a recompute's scan of every fact. (Writes go through `events`.)

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient as Cached;
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, IsolationLevel, Portal, Row, Transaction};

use crate::Result;

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

/// Every stored fact, read in one snapshot a page at a time: for comparing whole datasets
/// (tests, the plugin harness's equivalence check).
///
/// # Errors
/// Database errors.
pub async fn all_facts(db: &crate::Db) -> Result<Vec<FactRow>> {
    let mut conn = db.conn().await?;
    let (tx, portal, _) = scan_facts(&mut conn, None).await?;
    let mut out = Vec::new();
    loop {
        let rows = next_facts(&tx, &portal, 5_000).await?;
        if rows.is_empty() {
            return Ok(out);
        }
        out.extend(rows);
    }
}

/// The stored facts of `classes` (empty: all) whose actor or subject is `subject`, with
/// `created_at` in one of `ranges` (`[from, to)` Unix seconds, sorted and disjoint): the
/// parts of a window no kept bucket covers, or a whole window counted exactly. Read in the
/// query's snapshot, they are the current state, live delta included.
///
/// # Errors
/// Database errors.
pub async fn facts_in(
    client: &impl Cached,
    subject: &[u8],
    classes: &[i16],
    ranges: &[(i64, i64)],
) -> Result<Vec<FactRow>> {
    // One statement per range, its bounds plain parameters: planned for their values (the
    // query snapshot plans every statement so), PostgreSQL prunes to the partitions the
    // range touches. Ranges hidden in an array would plan every partition (~2 ms each time).
    // The statements are sent together and the connection pipelines them.
    let statement = client
        .prepare_cached(&of_subject_in_range(FACT_COLUMNS))
        .await?;
    let all = all_classes(classes);
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        ranges.iter().map(|r| (at(r.0), at(r.1))).collect();
    let params: Vec<[&(dyn ToSql + Sync); 5]> = bounds
        .iter()
        .map(|(from, to)| [&subject as &(dyn ToSql + Sync), &all, &classes, from, to])
        .collect();
    let reads = params.iter().map(|p| client.query(&statement, p));
    let parts = futures_util::future::try_join_all(reads).await?;
    Ok(parts
        .iter()
        .flatten()
        .map(|r| fact_row(r, 1, 0, 0, 0))
        .collect())
}

/// The statement [`facts_in`] reads one range with, selecting `columns`: `$1` the
/// subject, `$2` its classes (every class spelled out), `$3` the classes as asked (empty:
/// all), `[$4, $5)` the range.
fn of_subject_in_range(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM facts
         WHERE subject = $1 AND class = ANY($2) AND created_at >= $4 AND created_at < $5
         UNION ALL
         SELECT {columns} FROM facts
         WHERE actor = $1 AND subject IS DISTINCT FROM $1
           AND (cardinality($3::int2[]) = 0 OR class = ANY($3))
           AND created_at >= $4 AND created_at < $5"
    )
}

/// How many facts [`facts_in`] would read for `subject` and `classes` in `[from, to)`,
/// counted up to `cap` (a read's cost, known before it is made).
///
/// # Errors
/// Database errors.
pub async fn fact_count_in(
    client: &impl Cached,
    subject: &[u8],
    classes: &[i16],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    cap: i64,
) -> Result<i64> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT count(*) FROM ({} LIMIT $6) capped",
            of_subject_in_range("1")
        ))
        .await?;
    let all = all_classes(classes);
    Ok(client
        .query_one(&statement, &[&subject, &all, &classes, &from, &to, &cap])
        .await?
        .get(0))
}

/// `classes`, or every class when empty: the subject side then ranges over its index on
/// (subject, class, created_at) once per class instead of over all of a subject's facts.
fn all_classes(classes: &[i16]) -> Vec<i16> {
    if classes.is_empty() {
        na_domain::FactClass::ALL
            .iter()
            .map(|c| c.as_i16())
            .collect()
    } else {
        classes.to_vec()
    }
}

/// The facts whose subject is `subject` in `[from, to)`: what a query without buckets (the
/// legacy raw scan the benchmark compares against) aggregates at query time.
///
/// # Errors
/// Database errors.
pub async fn facts_about(
    client: &impl GenericClient,
    subject: &[u8],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<FactRow>> {
    let rows = client
        .query(
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts
                 WHERE subject = $1 AND created_at >= $2 AND created_at < $3"
            ),
            &[&subject, &from, &to],
        )
        .await?;
    Ok(rows.iter().map(|r| fact_row(r, 1, 0, 0, 0)).collect())
}
/// A stored event, as interactions with it are attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteHead {
    pub author: Vec<u8>,
    pub kind: i32,
    pub created_at: DateTime<Utc>,
}

/// The author, kind and time of the stored event `id`; `None` when it is not stored.
///
/// # Errors
/// Database errors.
pub async fn note_head(client: &impl GenericClient, id: &[u8]) -> Result<Option<NoteHead>> {
    Ok(client
        .query_opt(
            "SELECT pubkey, kind, created_at FROM event_authors WHERE id = $1",
            &[&id],
        )
        .await?
        .map(|r| NoteHead {
            author: r.get(0),
            kind: r.get(1),
            created_at: r.get(2),
        }))
}

/// How many facts target `id` in `[from, to)`, counted up to `cap` (a drilldown's cost).
///
/// # Errors
/// Database errors.
pub async fn note_fact_count(
    client: &impl GenericClient,
    id: &[u8],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cap: i64,
) -> Result<i64> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM (
                 SELECT 1 FROM facts
                 WHERE target_event = $1 AND created_at >= $2 AND created_at < $3
                 LIMIT $4) capped",
            &[&id, &from, &to, &cap],
        )
        .await?
        .get(0))
}

/// The facts of `classes` (empty: all) that target `id` in `[from, to)`.
///
/// # Errors
/// Database errors.
pub async fn note_facts(
    client: &impl GenericClient,
    id: &[u8],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    classes: &[i16],
) -> Result<Vec<FactRow>> {
    let rows = client
        .query(
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts
                 WHERE target_event = $1 AND created_at >= $2 AND created_at < $3
                   AND (cardinality($4::int2[]) = 0 OR class = ANY($4))"
            ),
            &[&id, &from, &to, &classes],
        )
        .await?;
    Ok(rows.iter().map(|r| fact_row(r, 1, 0, 0, 0)).collect())
}
