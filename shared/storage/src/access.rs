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
    /// Its own requests per minute (`costly=100,jobs=5`), over the deployment's key limits.
    pub rate_limits: Option<String>,
}

/// A stored key with its hash, for checking a presented one.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub key: ApiKey,
    pub hash: Vec<u8>,
}

/// What [`Db::create_api_key`] stores.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub hash: &'a [u8; 32],
    pub scopes: &'a [&'a str],
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limits: Option<&'a str>,
}

const KEY_COLUMNS: &str =
    "id, name, scopes, created_at, expires_at, revoked_at, last_used_at, rate_limits, key_hash";

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
            rate_limits: row.get(7),
        },
        hash: row.get(8),
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
    pub async fn create_api_key(&self, new: &NewKey<'_>) -> Result<ApiKey> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                &format!(
                    "INSERT INTO api_keys (id, name, key_hash, scopes, expires_at, rate_limits)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
                ),
                &[
                    &new.id,
                    &new.name,
                    &new.hash.as_slice(),
                    &new.scopes,
                    &new.expires_at,
                    &new.rate_limits,
                ],
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

    /// Records a NIP-98 event id as used; `false` when it was used before (a replay). For a
    /// caller with no rate limit: [`Db::take_token`] records it with the token otherwise.
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
        Ok(conn.execute(&statement, &[&event_id.as_slice()]).await? == 1)
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
    /// one statement; concurrent requests of one key take turns on its row only). With
    /// `nip98`, the request's NIP-98 event id is recorded in the same statement, and `None`
    /// answers that it was used before (a replay, which takes no token).
    ///
    /// # Errors
    /// Any database error.
    pub async fn take_token(
        &self,
        key: &str,
        interval_ms: f64,
        burst: u32,
        nip98: Option<&[u8; 32]>,
    ) -> Result<Option<Taken>> {
        let conn = self.conn().await?;
        let statement = conn
            .prepare_cached(
                "WITH seen AS (
                     INSERT INTO nip98_seen (event_id) SELECT $4::bytea WHERE $4 IS NOT NULL
                     ON CONFLICT (event_id) DO NOTHING
                     RETURNING 1),
                 fresh AS (SELECT $4::bytea IS NULL OR EXISTS (SELECT 1 FROM seen) AS yes),
                 prev AS (SELECT tat FROM rate_limits WHERE key = $1),
                 taken AS (
                     INSERT INTO rate_limits AS r (key, tat)
                     SELECT $1, now() + $2 * interval '1 millisecond' FROM fresh WHERE yes
                     ON CONFLICT (key) DO UPDATE
                        SET tat = greatest(r.tat, now()) + $2 * interval '1 millisecond'
                      WHERE greatest(r.tat, now()) + $2 * interval '1 millisecond'
                            <= now() + $3 * interval '1 millisecond'
                     RETURNING tat)
                 SELECT (SELECT yes FROM fresh),
                        extract(epoch FROM (SELECT tat FROM taken) - now())::float8,
                        extract(epoch FROM (SELECT tat FROM prev) - now())::float8",
            )
            .await?;
        let capacity_ms = interval_ms * f64::from(burst);
        let event_id = nip98.map(<[u8; 32]>::as_slice);
        let row = conn
            .query_one(&statement, &[&key, &interval_ms, &capacity_ms, &event_id])
            .await?;
        let (fresh, taken, prev): (bool, Option<f64>, Option<f64>) =
            (row.get(0), row.get(1), row.get(2));
        if !fresh {
            return Ok(None);
        }
        let interval = interval_ms / 1000.0;
        Ok(Some(match taken {
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
        }))
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
