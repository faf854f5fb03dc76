//! The flags an instance answers by: read again from PostgreSQL once older than the TTL,
//! so a change reaches every instance within it, with no redeploy and no restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use na_api_types::Flag;
use na_storage::Db;
use tokio::sync::Mutex;

use crate::flags::flag_of;

/// How long an instance answers by the flags it read: a change takes at most this (plus
/// one read) to reach every instance.
pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// The flags last read, and when.
type Held = Option<(Instant, Arc<Vec<Flag>>)>;

/// The flags, shared by an instance's requests.
#[derive(Debug, Clone)]
pub struct FlagCache {
    db: Db,
    ttl: Duration,
    held: Arc<Mutex<Held>>,
}

impl FlagCache {
    pub fn new(db: Db, ttl: Duration) -> Self {
        FlagCache {
            db,
            ttl,
            held: Arc::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Every flag, at most [`FlagCache::ttl`] old. One request reads them again when they
    /// are older; the others wait for that read rather than each making their own.
    ///
    /// # Errors
    /// The database failing (the last flags are not served past their TTL: a stale
    /// rollback would keep answering by the flags it undid).
    pub async fn flags(&self) -> Result<Arc<Vec<Flag>>, na_storage::Error> {
        let mut held = self.held.lock().await;
        if let Some((at, flags)) = held.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(flags));
        }
        let conn = self.db.conn().await?;
        let flags: Arc<Vec<Flag>> = Arc::new(
            na_storage::rollout::flags(&**conn)
                .await?
                .into_iter()
                .map(flag_of)
                .collect(),
        );
        *held = Some((Instant::now(), Arc::clone(&flags)));
        Ok(flags)
    }

    /// The flag `key`, at most [`FlagCache::ttl`] old.
    ///
    /// # Errors
    /// As [`FlagCache::flags`].
    pub async fn flag(&self, key: &str) -> Result<Option<Flag>, na_storage::Error> {
        Ok(self.flags().await?.iter().find(|f| f.key == key).cloned())
    }

    /// Forgets the flags this instance holds: its next request reads them again (after a
    /// change made through this instance, so it answers by it at once).
    pub async fn invalidate(&self) {
        *self.held.lock().await = None;
    }
}
