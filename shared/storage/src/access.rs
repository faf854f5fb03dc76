//! Access control's tables: API keys (`api_keys`, only each key's hash) and the NIP-98
//! replay cache (`nip98_seen`), which every instance shares.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Db, Result};

/// An API key as listed: never the key itself, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A stored key with its hash, for checking a presented one.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub key: ApiKey,
    pub hash: Vec<u8>,
}

const KEY_COLUMNS: &str =
    "id, name, scopes, created_at, expires_at, revoked_at, last_used_at, key_hash";

fn key_of(row: &tokio_postgres::Row) -> StoredKey {
    StoredKey {
        key: ApiKey {
            id: row.get(0),
            name: row.get(1),
            scopes: row.get(2),
            created_at: row.get(3),
            expires_at: row.get(4),
            revoked_at: row.get(5),
            last_used_at: row.get(6),
        },
        hash: row.get(7),
    }
}

/// How stale `last_used_at` may get: a key's use is recorded at most this often, so a busy
/// key does not write its row on every request.
const LAST_USED_EVERY_SECS: i64 = 60;

impl Db {
    /// Stores a new key (its hash only).
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_api_key(
        &self,
        id: Uuid,
        name: &str,
        hash: &[u8; 32],
        scopes: &[&str],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiKey> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                &format!(
                    "INSERT INTO api_keys (id, name, key_hash, scopes, expires_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {KEY_COLUMNS}"
                ),
                &[&id, &name, &hash.as_slice(), &scopes, &expires_at],
            )
            .await?;
        Ok(key_of(&row).key)
    }

    /// Every key, newest first, revoked and expired ones included.
    ///
    /// # Errors
    /// Any database error.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| key_of(r).key).collect())
    }

    /// The key with `id`, for checking a presented key against; its use is recorded (at
    /// most once a minute).
    ///
    /// # Errors
    /// Any database error.
    pub async fn api_key_for_check(&self, id: Uuid) -> Result<Option<StoredKey>> {
        let conn = self.conn().await?;
        let statement = conn
            .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .await?;
        let Some(row) = conn.query_opt(&statement, &[&id]).await? else {
            return Ok(None);
        };
        let stored = key_of(&row);
        let now = Utc::now();
        let stale = stored
            .key
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_EVERY_SECS);
        if stale {
            conn.execute(
                "UPDATE api_keys SET last_used_at = now() WHERE id = $1",
                &[&id],
            )
            .await?;
        }
        Ok(Some(stored))
    }

    /// Revokes a key at once (the next request with it is refused). Returns the key, or
    /// `None` when there is no such key; revoking twice keeps the first time.
    ///
    /// # Errors
    /// Any database error.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKey>> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                &format!(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                     RETURNING {KEY_COLUMNS}"
                ),
                &[&id],
            )
            .await?;
        Ok(row.map(|r| key_of(&r).key))
    }

    /// Records a NIP-98 event id as used; `false` when it was used before (a replay).
    ///
    /// # Errors
    /// Any database error.
    pub async fn first_use_of_nip98(&self, event_id: &[u8; 32]) -> Result<bool> {
        let conn = self.conn().await?;
        let statement = conn
            .prepare_cached(
                "INSERT INTO nip98_seen (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING",
            )
            .await?;
        // One transaction that does not wait for the WAL flush (a millisecond or two per
        // request here): a crash can forget only the last fraction of a second of ids, while
        // a replay needs the event within 60 s of its making. The three messages go out
        // together (tokio-postgres pipelines them), one round trip; a failed insert makes
        // the COMMIT a rollback, so the connection goes back to the pool idle either way.
        let id = event_id.as_slice();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        let (begun, inserted, committed) = tokio::join!(
            conn.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
            conn.execute(&statement, &params),
            conn.batch_execute("COMMIT"),
        );
        begun?;
        let first = inserted? == 1;
        committed?;
        Ok(first)
    }

    /// Forgets NIP-98 ids seen before `before` (events that old are refused as stale
    /// anyway). Returns how many.
    ///
    /// # Errors
    /// Any database error.
    pub async fn sweep_nip98_seen(&self, before: DateTime<Utc>) -> Result<u64> {
        let conn = self.conn().await?;
        Ok(conn
            .execute("DELETE FROM nip98_seen WHERE seen_at < $1", &[&before])
            .await?)
    }
}

/// What [`Db::take_token`] decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taken {
    pub allowed: bool,
    /// Requests left in the burst after this one.
    pub remaining: u32,
    /// Seconds until the burst is whole again.
    pub reset_secs: f64,
    /// Refused: seconds until one more request is allowed.
    pub retry_after_secs: f64,
}

impl Db {
    /// One request against the limit `key` (a principal and a route class): `burst`
    /// requests at once, refilled one every `interval_ms` (the generic cell rate algorithm,
    /// one statement; concurrent requests of one key take turns on its row only).
    ///
    /// # Errors
    /// Any database error.
    pub async fn take_token(&self, key: &str, interval_ms: f64, burst: u32) -> Result<Taken> {
        let conn = self.conn().await?;
        let statement = conn
            .prepare_cached(
                "WITH prev AS (SELECT tat FROM rate_limits WHERE key = $1),
                 taken AS (
                     INSERT INTO rate_limits AS r (key, tat)
                     VALUES ($1, now() + $2 * interval '1 millisecond')
                     ON CONFLICT (key) DO UPDATE
                        SET tat = greatest(r.tat, now()) + $2 * interval '1 millisecond'
                      WHERE greatest(r.tat, now()) + $2 * interval '1 millisecond'
                            <= now() + $3 * interval '1 millisecond'
                     RETURNING tat)
                 SELECT extract(epoch FROM (SELECT tat FROM taken) - now())::float8,
                        extract(epoch FROM (SELECT tat FROM prev) - now())::float8",
            )
            .await?;
        let capacity_ms = interval_ms * f64::from(burst);
        let row = conn
            .query_one(&statement, &[&key, &interval_ms, &capacity_ms])
            .await?;
        let (taken, prev): (Option<f64>, Option<f64>) = (row.get(0), row.get(1));
        let interval = interval_ms / 1000.0;
        Ok(match taken {
            Some(ahead) => Taken {
                allowed: true,
                remaining: ((capacity_ms / 1000.0 - ahead) / interval).floor().max(0.0) as u32,
                reset_secs: ahead.max(0.0),
                retry_after_secs: 0.0,
            },
            None => {
                let ahead = prev.unwrap_or(0.0).max(0.0);
                Taken {
                    allowed: false,
                    remaining: 0,
                    reset_secs: ahead,
                    retry_after_secs: (ahead + interval - capacity_ms / 1000.0).max(0.0),
                }
            }
        })
    }

    /// Forgets limits whose burst has been whole again since before `before`.
    ///
    /// # Errors
    /// Any database error.
    pub async fn sweep_rate_limits(&self, before: DateTime<Utc>) -> Result<u64> {
        let conn = self.conn().await?;
        Ok(conn
            .execute("DELETE FROM rate_limits WHERE tat < $1", &[&before])
            .await?)
    }
}
