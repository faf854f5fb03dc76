//! The rollout's tables: flags (`rollout_flags`, each change in `rollout_flag_changes`)
//! and the dual run's comparisons (`drift_observations`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::{Db, Result};

/// A flag as stored (`mode` one of `legacy`, `dual`, `v2`; the table checks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagRecord {
    pub key: String,
    pub mode: String,
    pub percent: i16,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What a change sets; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagChange {
    pub mode: Option<String>,
    pub percent: Option<i16>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

const FLAG_COLUMNS: &str = "key, mode, percent, allow, deny, revision, updated_at, updated_by";

fn flag_of(row: &tokio_postgres::Row) -> FlagRecord {
    FlagRecord {
        key: row.get(0),
        mode: row.get(1),
        percent: row.get(2),
        allow: row.get(3),
        deny: row.get(4),
        revision: row.get(5),
        updated_at: row.get(6),
        updated_by: row.get(7),
    }
}

/// A dual-run comparison to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObservation<'a> {
    pub flag: &'a str,
    pub pubkey: &'a str,
    pub cohort: i16,
    pub window_class: &'a str,
    pub window: (DateTime<Utc>, DateTime<Utc>),
    pub cutoff: DateTime<Utc>,
    pub live_edge: bool,
    /// `{"metric": {"legacy": n, "v2": n, "threshold": x}}`.
    pub metrics: serde_json::Value,
    pub differs: bool,
}

/// A recorded comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub observed_at: DateTime<Utc>,
    pub pubkey: String,
    pub cohort: i16,
    pub window_class: String,
    pub window: (DateTime<Utc>, DateTime<Utc>),
    pub cutoff: DateTime<Utc>,
    pub live_edge: bool,
    pub metrics: serde_json::Value,
}

/// Every flag, by key.
///
/// # Errors
/// Database errors.
pub async fn flags(client: &impl GenericClient) -> Result<Vec<FlagRecord>> {
    Ok(client
        .query(
            &format!("SELECT {FLAG_COLUMNS} FROM rollout_flags ORDER BY key"),
            &[],
        )
        .await?
        .iter()
        .map(flag_of)
        .collect())
}

impl Db {
    /// Applies `change` to flag `key` in one transaction, its revision counted up and the
    /// change recorded with `by`; `None` when there is no such flag.
    ///
    /// # Errors
    /// Database errors, a check the table refuses (a bad mode or percent) among them.
    pub async fn change_flag(
        &self,
        key: &str,
        change: &FlagChange,
        by: &str,
    ) -> Result<Option<FlagRecord>> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let Some(before) = tx
            .query_opt(
                &format!("SELECT {FLAG_COLUMNS} FROM rollout_flags WHERE key = $1 FOR UPDATE"),
                &[&key],
            )
            .await?
            .map(|r| flag_of(&r))
        else {
            return Ok(None);
        };
        let after = flag_of(
            &tx.query_one(
                &format!(
                    "UPDATE rollout_flags SET
                         mode = coalesce($2, mode),
                         percent = coalesce($3, percent),
                         allow = coalesce($4, allow),
                         deny = coalesce($5, deny),
                         revision = revision + 1,
                         updated_at = now(),
                         updated_by = $6
                     WHERE key = $1
                     RETURNING {FLAG_COLUMNS}"
                ),
                &[
                    &key,
                    &change.mode,
                    &change.percent,
                    &change.allow,
                    &change.deny,
                    &by,
                ],
            )
            .await?,
        );
        let json = |f: &FlagRecord| serde_json::to_value(f).unwrap_or_default();
        tx.execute(
            "INSERT INTO rollout_flag_changes (key, revision, changed_by, before, after)
             VALUES ($1, $2, $3, $4, $5)",
            &[&key, &after.revision, &by, &json(&before), &json(&after)],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(after))
    }

    /// Records a dual-run comparison.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_observation(&self, o: &NewObservation<'_>) -> Result<()> {
        self.conn()
            .await?
            .execute(
                "INSERT INTO drift_observations (flag, pubkey, cohort, window_class, window_from,
                     window_to, cutoff, live_edge, metrics, differs)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &o.flag,
                    &o.pubkey,
                    &o.cohort,
                    &o.window_class,
                    &o.window.0,
                    &o.window.1,
                    &o.cutoff,
                    &o.live_edge,
                    &o.metrics,
                    &o.differs,
                ],
            )
            .await?;
        Ok(())
    }

    /// Deletes the comparisons recorded before `before` (retention); how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_observations(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(self
            .conn()
            .await?
            .execute(
                "DELETE FROM drift_observations WHERE observed_at < $1",
                &[&before],
            )
            .await?)
    }

    /// The comparisons of `flag` recorded since `since`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn observations(
        &self,
        flag: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Observation>> {
        Ok(self
            .conn()
            .await?
            .query(
                "SELECT observed_at, pubkey, cohort, window_class, window_from, window_to,
                        cutoff, live_edge, metrics
                 FROM drift_observations
                 WHERE flag = $1 AND observed_at >= $2
                 ORDER BY observed_at, id
                 LIMIT $3",
                &[&flag, &since, &limit],
            )
            .await?
            .iter()
            .map(|r| Observation {
                observed_at: r.get(0),
                pubkey: r.get(1),
                cohort: r.get(2),
                window_class: r.get(3),
                window: (r.get(4), r.get(5)),
                cutoff: r.get(6),
                live_edge: r.get(7),
                metrics: r.get(8),
            })
            .collect())
    }
}
