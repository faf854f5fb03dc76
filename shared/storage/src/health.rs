//! Component and relay health: what /health and /status say while a fault lasts.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Db, Result};

/// How a component (ingest, compaction) last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentHealth {
    pub component: String,
    /// Its first report.
    pub first_at: DateTime<Utc>,
    /// The last time it worked.
    pub ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl ComponentHealth {
    /// It has not worked for longer than `stall` at `now` (one that never worked, since
    /// its first report).
    pub fn stalled(&self, now: DateTime<Utc>, stall: chrono::TimeDelta) -> bool {
        now - self.ok_at.unwrap_or(self.first_at) > stall
    }
}

/// The live ingest session's view of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayHealth {
    pub connected: bool,
    pub connected_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl Db {
    /// Records that `component` works now (`error` `None`) or just failed with `error`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn report_health(&self, component: &str, error: Option<&str>) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO component_health AS h (component, ok_at, error, error_at)
             VALUES ($1, CASE WHEN $2::text IS NULL THEN now() END, $2, CASE WHEN $2 IS NOT NULL THEN now() END)
             ON CONFLICT (component) DO UPDATE SET
                 ok_at = CASE WHEN $2 IS NULL THEN now() ELSE h.ok_at END,
                 error = coalesce($2, h.error),
                 error_at = CASE WHEN $2 IS NOT NULL THEN now() ELSE h.error_at END,
                 updated_at = now()",
            &[&component, &error],
        )
        .await?;
        Ok(())
    }

    /// Records what the live session knows of a relay.
    ///
    /// # Errors
    /// Database errors.
    pub async fn report_relay_health(&self, relay_id: i16, health: &RelayHealth) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO relay_health (relay_id, connected, connected_at, disconnected_at, error, error_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (relay_id) DO UPDATE SET
                 connected = $2, connected_at = $3, disconnected_at = $4, error = $5,
                 error_at = $6, updated_at = now()",
            &[
                &relay_id,
                &health.connected,
                &health.connected_at,
                &health.disconnected_at,
                &health.last_error,
                &health.last_error_at,
            ],
        )
        .await?;
        Ok(())
    }

    /// Every component's last report.
    ///
    /// # Errors
    /// Database errors.
    pub async fn components(&self) -> Result<Vec<ComponentHealth>> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT component, first_at, ok_at, error, error_at, updated_at
                 FROM component_health ORDER BY component",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ComponentHealth {
                component: r.get(0),
                first_at: r.get(1),
                ok_at: r.get(2),
                last_error: r.get(3),
                last_error_at: r.get(4),
                updated_at: r.get(5),
            })
            .collect())
    }
}

impl Db {
    /// Where the local stack's demo dataset of `seed` ends: `now` the first time the seed
    /// is used with this database, the same instant every time after.
    ///
    /// # Errors
    /// Database errors.
    pub async fn demo_end(&self, seed: u64, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let conn = self.conn().await?;
        let seed = i64::from_ne_bytes(seed.to_ne_bytes());
        let row = conn
            .query_one(
                "WITH ins AS (
                     INSERT INTO demo_datasets (seed, end_at) VALUES ($1, $2)
                     ON CONFLICT (seed) DO NOTHING RETURNING end_at)
                 SELECT end_at FROM ins UNION ALL SELECT end_at FROM demo_datasets WHERE seed = $1
                 LIMIT 1",
                &[&seed, &now],
            )
            .await?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_stalled_once_it_has_not_worked_for_the_limit() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let minutes = |m: i64| chrono::TimeDelta::minutes(m);
        let c = |ok: Option<i64>| ComponentHealth {
            component: "ingest".into(),
            first_at: t0,
            ok_at: ok.map(|m| t0 + minutes(m)),
            last_error: None,
            last_error_at: None,
            updated_at: t0,
        };
        let stall = minutes(5);
        assert!(!c(None).stalled(t0 + minutes(4), stall), "just started");
        assert!(c(None).stalled(t0 + minutes(6), stall), "never worked");
        assert!(!c(Some(10)).stalled(t0 + minutes(14), stall));
        assert!(c(Some(10)).stalled(t0 + minutes(16), stall));
    }
}
