//! NIP-01 replaceable and addressable events: which version of each (pubkey, kind, d)
//! currently wins. Latest `created_at` wins, the lowest id on a tie, whatever the arrival
//! order (the same rule as `na_domain::kinds::supersedes`).

use chrono::{DateTime, Utc};
use na_domain::kinds;

use crate::Result;
use crate::batch::NewEvent;
use crate::timestamp;

const UPSERT_HEADS: &str = "
    INSERT INTO replaceable_heads (pubkey, kind, d, event_id, created_at)
    SELECT DISTINCT ON (pubkey, kind, d) *
    FROM unnest($1::bytea[], $2::int[], $3::text[], $4::bytea[], $5::timestamptz[])
         AS u(pubkey, kind, d, event_id, created_at)
    ORDER BY pubkey, kind, d, created_at DESC, event_id
    ON CONFLICT (pubkey, kind, d) DO UPDATE
        SET event_id = EXCLUDED.event_id, created_at = EXCLUDED.created_at
        WHERE (EXCLUDED.created_at, replaceable_heads.event_id)
            > (replaceable_heads.created_at, EXCLUDED.event_id)";

/// Moves the heads the new events supersede.
pub(crate) async fn update(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&NewEvent],
) -> Result<()> {
    let versions: Vec<&NewEvent> = events
        .iter()
        .filter(|e| kinds::is_replaceable(e.event.kind) || kinds::is_addressable(e.event.kind))
        .copied()
        .collect();
    if versions.is_empty() {
        return Ok(());
    }
    let pubkeys: Vec<&[u8]> = versions.iter().map(|e| &e.event.pubkey[..]).collect();
    let kinds: Vec<i32> = versions.iter().map(|e| i32::from(e.event.kind)).collect();
    let ds: Vec<&str> = versions
        .iter()
        .map(|e| {
            if kinds::is_addressable(e.event.kind) {
                e.event.tag_value("d").unwrap_or("")
            } else {
                ""
            }
        })
        .collect();
    let ids: Vec<&[u8]> = versions.iter().map(|e| &e.event.id[..]).collect();
    let times: Vec<DateTime<Utc>> = versions
        .iter()
        .map(|e| timestamp(e.event.created_at))
        .collect();
    let stmt = tx.prepare_cached(UPSERT_HEADS).await?;
    tx.execute(&stmt, &[&pubkeys, &kinds, &ds, &ids, &times])
        .await?;
    Ok(())
}

impl crate::Db {
    /// The content of each pubkey's current profile (kind 0), where one is stored.
    ///
    /// # Errors
    /// Any database error.
    pub async fn latest_profiles(
        &self,
        pubkeys: &[na_domain::Pubkey],
    ) -> Result<std::collections::HashMap<na_domain::Pubkey, String>> {
        let conn = self.conn().await?;
        let keys: Vec<&[u8]> = pubkeys.iter().map(|p| &p[..]).collect();
        let rows = conn
            .query(
                "SELECT h.pubkey, e.content FROM replaceable_heads h
                 JOIN events e ON e.created_at = h.created_at AND e.id = h.event_id
                 WHERE h.kind = 0 AND h.d = '' AND h.pubkey = ANY($1)",
                &[&keys],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let pk = na_domain::Pubkey::try_from(r.get::<_, &[u8]>(0)).ok()?;
                Some((pk, r.get(1)))
            })
            .collect())
    }
}
