//! The bucket tables (`buckets_minute|hour|day|month`, `distinct_buckets`, `gauge_levels`):
//! what compaction writes inside its batch transaction (changes to additive buckets,
//! distinct sketches, gauge levels, month roll-ups) and what queries read in their snapshot
//! (totals over a tiling, sketches, levels), and how far retention has pruned each
//! granularity.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient as Cached;
use na_domain::{BucketRange, Granularity};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Portal, Row, Transaction};

use crate::Result;
use crate::timestamp;

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
    let table = table(granularity);
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
                table(granularity)
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
    let table = table(granularity);
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

/// The table holding `granularity`'s buckets.
pub(crate) fn table(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Minute => "buckets_minute",
        Granularity::Hour => "buckets_hour",
        Granularity::Day => "buckets_day",
        Granularity::Month => "buckets_month",
    }
}
