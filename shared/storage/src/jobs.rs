//! Job rows: what was asked, its state, progress and result. The queue only carries ids.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient as Cached;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{Db, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    fn parse(s: &str) -> Self {
        match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => JobState::Queued,
        }
    }

    /// As stored, and as the API says it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub params: Value,
    pub state: JobState,
    pub progress: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When its result is dropped (query jobs).
    pub expires_at: Option<DateTime<Utc>>,
    /// How many pages a query job's answer is in ([`Db::job_result_page`]); with one,
    /// `result` holds it.
    pub result_pages: Option<i32>,
}

pub(crate) const JOB_COLUMNS: &str = "id, kind, params, state, progress, result, error, attempts, created_at, updated_at, expires_at, result_pages";

pub(crate) fn job_of(row: &tokio_postgres::Row) -> Job {
    Job {
        id: row.get(0),
        kind: row.get(1),
        params: row.get(2),
        state: JobState::parse(row.get(3)),
        progress: row.get(4),
        result: row.get(5),
        error: row.get(6),
        attempts: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
        expires_at: row.get(10),
        result_pages: row.get(11),
    }
}

impl Db {
    /// Records a new queued job.
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_job(&self, id: Uuid, kind: &str, params: &Value) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO jobs (id, kind, params) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&id, &kind, params],
        )
        .await?;
        Ok(())
    }

    /// Records a queued backfill of `pubkey_hex` (`params` holds it) unless one is queued,
    /// or running and heard from in the last 15 minutes; requests for one pubkey take turns
    /// (an advisory lock), so two at once make one job. Returns the job's id and `None` when it
    /// is new, or the state it was found in (queued or running, then).
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_backfill_once(
        &self,
        id: Uuid,
        pubkey_hex: &str,
        params: &Value,
    ) -> Result<(Uuid, Option<JobState>)> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('backfill:' || $1, 0))",
            &[&pubkey_hex],
        )
        .await?;
        let active = tx
            .query_opt(
                "SELECT id, state FROM jobs WHERE kind = 'backfill' AND params->>'pubkey' = $1
                   AND (state = 'queued'
                        OR (state = 'running' AND updated_at > now() - interval '15 minutes'))
                 ORDER BY created_at DESC LIMIT 1",
                &[&pubkey_hex],
            )
            .await?;
        if let Some(row) = active {
            return Ok((row.get(0), Some(JobState::parse(row.get(1)))));
        }
        tx.execute(
            "INSERT INTO jobs (id, kind, params) VALUES ($1, 'backfill', $2)",
            &[&id, params],
        )
        .await?;
        tx.commit().await?;
        Ok((id, None))
    }

    /// # Errors
    /// [`Error::JobNotFound`], or any database error.
    pub async fn job(&self, id: Uuid) -> Result<Job> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                &[&id],
            )
            .await?
            .ok_or(Error::JobNotFound(id))?;
        Ok(job_of(&row))
    }

    /// Claims a job for running. Returns `None` when it already finished, so a job
    /// delivered twice runs its effect once.
    ///
    /// # Errors
    /// [`Error::JobNotFound`], or any database error.
    pub async fn start_job(&self, id: Uuid) -> Result<Option<Job>> {
        let conn = self.conn().await?;
        let n = conn
            .execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = now()
                 WHERE id = $1 AND state IN ('queued', 'running', 'failed')",
                &[&id],
            )
            .await?;
        if n == 0 {
            // Either unknown (an error) or already succeeded (nothing to do).
            self.job(id).await?;
            return Ok(None);
        }
        self.job(id).await.map(Some)
    }

    /// # Errors
    /// Any database error.
    pub async fn job_progress(&self, id: Uuid, progress: &Value) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute(
            "UPDATE jobs SET progress = $2, updated_at = now() WHERE id = $1",
            &[&id, progress],
        )
        .await?;
        Ok(())
    }

    /// Sets when a job's result is dropped.
    ///
    /// # Errors
    /// Any database error.
    pub async fn expire_job_at(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute("UPDATE jobs SET expires_at = $2 WHERE id = $1", &[&id, &at])
            .await?;
        Ok(())
    }

    /// Deletes jobs whose result expired before `before`; returns how many.
    ///
    /// # Errors
    /// Any database error.
    pub async fn delete_expired_jobs(&self, before: DateTime<Utc>) -> Result<u64> {
        let conn = self.conn().await?;
        Ok(conn
            .execute("DELETE FROM jobs WHERE expires_at < $1", &[&before])
            .await?)
    }

    /// Records a query job's answer, cut into `pages` (at least one), and when it expires;
    /// a page stored by an earlier attempt is replaced.
    ///
    /// # Errors
    /// Any database error.
    pub async fn finish_query_job(
        &self,
        id: Uuid,
        pages: &[Value],
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute("DELETE FROM job_result_pages WHERE job_id = $1", &[&id])
            .await?;
        let count = i32::try_from(pages.len()).unwrap_or(i32::MAX);
        let inline = match pages {
            [one] => Some(one),
            _ => {
                let insert = tx
                    .prepare(
                        "INSERT INTO job_result_pages (job_id, page, body) VALUES ($1, $2, $3)",
                    )
                    .await?;
                for (page, body) in (1..).zip(pages) {
                    tx.execute(&insert, &[&id, &page, body]).await?;
                }
                None
            }
        };
        tx.execute(
            "UPDATE jobs SET state = 'succeeded', result = $2, result_pages = $3, error = NULL,
                             expires_at = $4, updated_at = now()
             WHERE id = $1",
            &[&id, &inline, &count, &expires_at],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Page `page` (from 1) of a succeeded job's answer, if it has one.
    ///
    /// # Errors
    /// Any database error.
    pub async fn job_result_page(&self, id: Uuid, page: i32) -> Result<Option<Value>> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                "SELECT body FROM job_result_pages WHERE job_id = $1 AND page = $2
                 UNION ALL
                 SELECT result FROM jobs WHERE id = $1 AND $2 = 1 AND result IS NOT NULL",
                &[&id, &page],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// # Errors
    /// Any database error.
    pub async fn finish_job(&self, id: Uuid, result: Result<&Value, &str>) -> Result<()> {
        let conn = self.conn().await?;
        match result {
            Ok(value) => {
                conn.execute(
                    "UPDATE jobs SET state = 'succeeded', result = $2, error = NULL, updated_at = now() WHERE id = $1",
                    &[&id, value],
                )
                .await?
            }
            Err(message) => {
                conn.execute(
                    "UPDATE jobs SET state = 'failed', error = $2, updated_at = now() WHERE id = $1",
                    &[&id, &message],
                )
                .await?
            }
        };
        Ok(())
    }
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
