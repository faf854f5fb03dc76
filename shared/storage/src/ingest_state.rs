//! Relays, per-relay watermarks and ingest counters.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::{Db, Result};

/// A number of events from one relay with one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub relay_id: i16,
    pub outcome: &'static str,
    pub count: i64,
}

/// What the status route reports for a relay.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RelayStatus {
    pub url: String,
    pub watermark: Option<DateTime<Utc>>,
    pub counters: BTreeMap<String, i64>,
    /// What the live ingest session last said of it (`None`: no session has yet).
    pub live: Option<crate::RelayHealth>,
}

impl Db {
    /// The id of a relay URL, registering it on first use.
    ///
    /// # Errors
    /// Any database error.
    pub async fn relay_id(&self, url: &str) -> Result<i16> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "WITH ins AS (INSERT INTO relays (url) VALUES ($1) ON CONFLICT (url) DO NOTHING RETURNING id)
                 SELECT id FROM ins UNION ALL SELECT id FROM relays WHERE url = $1 LIMIT 1",
                &[&url],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Everything this relay published before the returned time is stored.
    ///
    /// # Errors
    /// Any database error.
    pub async fn watermark(&self, relay_id: i16) -> Result<Option<DateTime<Utc>>> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                "SELECT watermark FROM ingest_watermarks WHERE relay_id = $1",
                &[&relay_id],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Watermark and counters of every known relay, by URL.
    ///
    /// # Errors
    /// Any database error.
    pub async fn ingest_status(&self) -> Result<Vec<RelayStatus>> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT r.url, w.watermark, c.outcome, c.count, h.connected, h.connected_at,
                        h.disconnected_at, h.error, h.error_at
                 FROM relays r
                 LEFT JOIN ingest_watermarks w ON w.relay_id = r.id
                 LEFT JOIN ingest_counters c ON c.relay_id = r.id
                 LEFT JOIN relay_health h ON h.relay_id = r.id
                 ORDER BY r.url, c.outcome",
                &[],
            )
            .await?;
        let mut out: Vec<RelayStatus> = Vec::new();
        for row in rows {
            let url: String = row.get(0);
            if out.last().is_none_or(|s| s.url != url) {
                out.push(RelayStatus {
                    url,
                    watermark: row.get(1),
                    counters: BTreeMap::new(),
                    live: row
                        .get::<_, Option<bool>>(4)
                        .map(|connected| crate::RelayHealth {
                            connected,
                            connected_at: row.get(5),
                            disconnected_at: row.get(6),
                            last_error: row.get(7),
                            last_error_at: row.get(8),
                        }),
                });
            }
            if let (Some(outcome), Some(count), Some(status)) = (
                row.get::<_, Option<String>>(2),
                row.get::<_, Option<i64>>(3),
                out.last_mut(),
            ) {
                status.counters.insert(outcome, count);
            }
        }
        Ok(out)
    }

    /// Counters of one relay (0 for outcomes never seen).
    ///
    /// # Errors
    /// Any database error.
    pub async fn counter(&self, relay_url: &str, outcome: &str) -> Result<i64> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                "SELECT c.count FROM ingest_counters c JOIN relays r ON r.id = c.relay_id
                 WHERE r.url = $1 AND c.outcome = $2",
                &[&relay_url, &outcome],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }
}
