//! A cache in front of a resolver: answers are kept long, failures briefly, and concurrent
//! lookups of one URL share a single fetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use moka::Expiry;
use moka::future::Cache;

use crate::{Lookup, NostrPubkeyResolver};

/// How long [`CachedResolver`] keeps what.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// URLs kept at most (least recently used go first).
    pub capacity: u64,
    /// For an answer (a key, or no Nostr support): endpoints change keys rarely.
    pub answer_ttl: Duration,
    /// For a failure: short, so an outage does not outlive itself by much.
    pub failure_ttl: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            capacity: 100_000,
            answer_ttl: Duration::from_secs(24 * 3600),
            failure_ttl: Duration::from_secs(600),
        }
    }
}

struct ByOutcome(CacheOptions);

impl Expiry<String, Lookup> for ByOutcome {
    fn expire_after_create(&self, _: &String, value: &Lookup, _: Instant) -> Option<Duration> {
        Some(match value {
            Lookup::Failed(_) => self.0.failure_ttl,
            _ => self.0.answer_ttl,
        })
    }
}

/// Caches the lookups of an inner resolver.
#[derive(Clone)]
pub struct CachedResolver {
    inner: Arc<dyn NostrPubkeyResolver>,
    cache: Cache<String, Lookup>,
}

impl std::fmt::Debug for CachedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedResolver")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl CachedResolver {
    pub fn new(inner: Arc<dyn NostrPubkeyResolver>, options: CacheOptions) -> Self {
        CachedResolver {
            inner,
            cache: Cache::builder()
                .max_capacity(options.capacity)
                .expire_after(ByOutcome(options))
                .build(),
        }
    }
}

impl NostrPubkeyResolver for CachedResolver {
    fn lookup<'a>(&'a self, pay_url: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(
            self.cache
                .get_with(pay_url.to_owned(), self.inner.lookup(pay_url)),
        )
    }
}
