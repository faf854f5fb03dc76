//! What the query path reads, all inside one read-only repeatable-read transaction so that
//! buckets, each version's position and the log rows after it are one consistent state:
//! the catalog, bucket aggregates over a tiling, distinct sketches, gauge levels, and the
//! log rows compaction has not applied yet (the live delta).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient as Cached;
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, IsolationLevel, Row};

use crate::Result;
use crate::compaction::{
    FACT_COLUMNS, FactRow, Granularity, POSITIONS, VersionPosition, fact_row, log_row, position_of,
};

/// Opens the snapshot a query reads everything in; no statement in it may run longer than
/// `statement_timeout` (then it fails with [`crate::Error::is_timeout`]).
///
/// # Errors
/// Database errors.
pub async fn snapshot(
    conn: &mut Object,
    statement_timeout: std::time::Duration,
) -> Result<Transaction<'_>> {
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // Every read here is a few index ranges: starting parallel workers costs more (ms)
    // than it could save. Statements are prepared once per connection (a round trip saved
    // per statement) but planned for their values each time: a generic plan cannot see
    // how few log rows lie past a cursor and scans the whole log.
    tx.batch_execute(&format!(
        "SET LOCAL max_parallel_workers_per_gather = 0; \
         SET LOCAL plan_cache_mode = force_custom_plan; \
         SET LOCAL statement_timeout = {}",
        statement_timeout.as_millis().max(1)
    ))
    .await?;
    Ok(tx)
}

/// A metric version as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogMetric {
    pub metric: String,
    pub version: i32,
    pub plugin: String,
    pub plugin_version: i32,
    /// The plugin version's state: shadow, active or retired.
    pub state: String,
    #[serde(skip)]
    pub series: i32,
    pub aggregation: String,
    pub unit: String,
    pub description: String,
    pub dimensions: Vec<String>,
    /// Its buckets cover the retained facts (a recompute finished).
    pub recomputed: bool,
    /// Its plugin version is quarantined (compaction stopped running it): since when, and
    /// its last failure.
    pub quarantined: Option<(DateTime<Utc>, String)>,
}

impl CatalogMetric {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.metric, self.version)
    }

    pub fn plugin_id(&self) -> String {
        format!("{}@{}", self.plugin, self.plugin_version)
    }
}

/// Every metric version, ordered by plugin, then declaration.
///
/// # Errors
/// Database errors.
pub async fn catalog(client: &impl Cached) -> Result<Vec<CatalogMetric>> {
    let rows = client
        .query(
            &client
                .prepare_cached(
                    "SELECT m.metric, m.metric_version, m.plugin_name, m.plugin_version, p.state,
                    m.series, m.aggregation, coalesce(d->>'unit', ''),
                    coalesce(d->>'description', ''),
                    coalesce(ARRAY(SELECT jsonb_array_elements_text(d->'dimensions')), '{}'),
                    p.recomputed_at IS NOT NULL, s.quarantined_at, coalesce(s.last_error, '')
             FROM plugin_metrics m
             JOIN plugins p ON p.name = m.plugin_name AND p.version = m.plugin_version
             LEFT JOIN compaction_state s
               ON s.plugin_name = m.plugin_name AND s.plugin_version = m.plugin_version
             LEFT JOIN LATERAL (
                 SELECT d FROM jsonb_array_elements(p.description->'metrics') d
                 WHERE d->>'name' = m.metric AND (d->>'version')::int = m.metric_version
             ) x ON true
             ORDER BY m.plugin_name, m.plugin_version, m.metric_index",
                )
                .await?,
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CatalogMetric {
            metric: r.get(0),
            version: r.get(1),
            plugin: r.get(2),
            plugin_version: r.get(3),
            state: r.get(4),
            series: r.get(5),
            aggregation: r.get(6),
            unit: r.get(7),
            description: r.get(8),
            dimensions: r.get(9),
            recomputed: r.get(10),
            quarantined: r
                .get::<_, Option<DateTime<Utc>>>(11)
                .map(|at| (at, r.get(12))),
        })
        .collect())
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

/// Bucket starts `[from, to)` of one granularity (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BucketRange {
    pub granularity: Granularity,
    pub from: i64,
    pub to: i64,
}

/// How bucket rows are grouped within a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// One row per series.
    Nothing,
    /// One row per series and bucket start.
    Bucket,
    /// One row per series and value of this dimension (`None`: rows without it).
    Dimension(String),
}

/// The group a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    All,
    Bucket(i64),
    Dimension(Option<String>),
}

/// Bucket rows of one series and group, combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub series: i32,
    pub group: Group,
    /// Sum of values (count, sum, gauge changes).
    pub sum: i64,
    pub least: i64,
    pub greatest: i64,
    /// Net contributions.
    pub contributions: i64,
    /// Retractions that could not be applied (min, max, approximate distinct).
    pub unapplied: i64,
}

/// A distinct bucket row's stored sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSketch {
    pub series: i32,
    pub group: Group,
    pub sketch: Vec<u8>,
    pub key_counts: Option<Vec<u8>>,
    pub unapplied: i64,
    /// Net contributions.
    pub contributions: i64,
}

impl GroupBy {
    /// The SQL for a row's group; `dim` is the parameter holding the dimension name.
    fn sql(&self, dim: &str) -> String {
        match self {
            GroupBy::Nothing => "NULL::text".into(),
            GroupBy::Bucket => "extract(epoch FROM bucket)::bigint::text".into(),
            GroupBy::Dimension(_) => format!("dims->>{dim}"),
        }
    }

    fn group(&self, value: Option<String>) -> Group {
        match self {
            GroupBy::Nothing => Group::All,
            GroupBy::Bucket => {
                Group::Bucket(value.and_then(|v| v.parse().ok()).unwrap_or_default())
            }
            GroupBy::Dimension(_) => Group::Dimension(value),
        }
    }
}

/// Bucket rows of `series` for `subject` over `ranges`: `select` is applied to the `UNION
/// ALL` of the rows (`series, g, value, contributions, unapplied, sketch, key_counts`,
/// `g` the row's group as text).
async fn over_ranges(
    client: &impl Cached,
    select: &str,
    series: &[i32],
    subject: &[u8],
    ranges: &[BucketRange],
    group: &GroupBy,
) -> Result<Vec<Row>> {
    if ranges.is_empty() || series.is_empty() {
        return Ok(Vec::new());
    }
    let bounds: Vec<DateTime<Utc>> = ranges
        .iter()
        .flat_map(|r| [r.from, r.to])
        .map(|t| DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MAX_UTC))
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&series, &subject];
    params.extend(bounds.iter().map(|b| b as &(dyn ToSql + Sync)));
    let group_sql = group.sql(&format!("${}", params.len() + 1));
    if let GroupBy::Dimension(d) = group {
        params.push(d);
    }
    let union = ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "SELECT series, {group_sql} AS g, value, contributions, unapplied, sketch,
                        key_counts
                 FROM buckets_{} WHERE series = ANY($1) AND subject = $2
                 AND bucket >= ${} AND bucket < ${}",
                r.granularity.name(),
                3 + 2 * i,
                4 + 2 * i
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let sql = select.replace("$ROWS", &format!("({union}) AS rows"));
    Ok(client
        .query(&client.prepare_cached(&sql).await?, &params)
        .await?)
}

/// Sums, extremes and contributions of the bucket rows of `series` for `subject` in
/// `ranges`, per series and `group`.
///
/// # Errors
/// Database errors.
pub async fn totals(
    client: &impl Cached,
    series: &[i32],
    subject: &[u8],
    ranges: &[BucketRange],
    group: &GroupBy,
) -> Result<Vec<Totals>> {
    let rows = over_ranges(
        client,
        "SELECT series, g, sum(value)::bigint, min(value), max(value),
                sum(contributions)::bigint, sum(unapplied)::bigint
         FROM $ROWS GROUP BY series, g",
        series,
        subject,
        ranges,
        group,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Totals {
            series: r.get(0),
            group: group.group(r.get(1)),
            sum: r.get(2),
            least: r.get(3),
            greatest: r.get(4),
            contributions: r.get(5),
            unapplied: r.get(6),
        })
        .collect())
}

/// The stored sketches of the distinct bucket rows of `series` for `subject` in `ranges`.
///
/// # Errors
/// Database errors.
pub async fn sketches(
    client: &impl Cached,
    series: &[i32],
    subject: &[u8],
    ranges: &[BucketRange],
    group: &GroupBy,
) -> Result<Vec<StoredSketch>> {
    let rows = over_ranges(
        client,
        "SELECT series, g, sketch, key_counts, unapplied, contributions FROM $ROWS
         WHERE sketch IS NOT NULL",
        series,
        subject,
        ranges,
        group,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| StoredSketch {
            series: r.get(0),
            group: group.group(r.get(1)),
            sketch: r.get(2),
            key_counts: r.get(3),
            unapplied: i64::from(r.get::<_, i32>(4)),
            contributions: r.get(5),
        })
        .collect())
}

/// The level compaction has reached for each gauge series of `subject`.
///
/// # Errors
/// Database errors.
pub async fn gauge_levels(
    client: &impl Cached,
    series: &[i32],
    subject: &[u8],
) -> Result<Vec<(i32, i64)>> {
    let rows = client
        .query(
            &client.prepare_cached("SELECT series, level FROM gauge_levels WHERE series = ANY($1) AND subject = $2").await?,
            &[&series, &subject],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The state of the newest backfill job of a pubkey (hex), if any.
///
/// # Errors
/// Database errors.
pub async fn latest_backfill(client: &impl Cached, pubkey_hex: &str) -> Result<Option<crate::Job>> {
    let row = client
        .query_opt(
            &client
                .prepare_cached(&format!(
                    "SELECT {} FROM jobs WHERE kind = 'backfill' AND params->>'pubkey' = $1
                 ORDER BY created_at DESC LIMIT 1",
                    crate::jobs::JOB_COLUMNS
                ))
                .await?,
            &[&pubkey_hex],
        )
        .await?;
    Ok(row.as_ref().map(crate::jobs::job_of))
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
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let froms: Vec<DateTime<Utc>> = ranges.iter().map(|r| at(r.0)).collect();
    let tos: Vec<DateTime<Utc>> = ranges.iter().map(|r| at(r.1)).collect();
    // Two index ranges per window part: by subject (facts_subject) and by actor
    // (facts_actor), the actor side without the rows the subject side has.
    let rows = client
        .query(
            &client
                .prepare_cached(&format!(
                    "SELECT {FACT_COLUMNS} FROM unnest($1::timestamptz[], $2::timestamptz[]) r(f, t)
                     CROSS JOIN LATERAL (
                         SELECT {FACT_COLUMNS} FROM facts
                         WHERE subject = $3 AND class = ANY($4)
                           AND created_at >= r.f AND created_at < r.t
                         UNION ALL
                         SELECT {FACT_COLUMNS} FROM facts
                         WHERE actor = $3 AND subject IS DISTINCT FROM $3
                           AND (cardinality($5::int2[]) = 0 OR class = ANY($5))
                           AND created_at >= r.f AND created_at < r.t
                     ) x"
                ))
                .await?,
            &[&froms, &tos, &subject, &all_classes(classes), &classes],
        )
        .await?;
    Ok(rows.iter().map(|r| fact_row(r, 1, 0, 0, 0)).collect())
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
