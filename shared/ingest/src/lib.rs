//! Ingest: relays -> canonical events and facts in PostgreSQL.
//!
//! A [`session::Session`] connects to relays with nostr-sdk; its transport hands every relay
//! message to the [`pipeline`], which verifies (id + signature), normalizes and writes in
//! batches. [`live::run`] is the scheduled run (live subscription + catch-up from each
//! relay's watermark); [`backfill::backfill`] pages one pubkey's history backwards;
//! [`import::import_file`] loads a relay dump through the same checks.

pub mod backfill;
pub mod config;
mod error;
pub mod import;
pub mod live;
pub mod paging;
pub mod pipeline;
pub mod prepare;
pub mod session;
pub mod tap;
mod zap_check;

use std::time::{Duration, Instant};

pub use config::IngestConfig;
pub use error::{Error, Result};

/// How a relay is named in the database and in every map: its URL without a trailing slash
/// (the pool hands the transport `ws://host/`, configuration usually says `ws://host`).
pub fn relay_key(relay: &nostr_sdk::RelayUrl) -> String {
    relay.as_str_without_trailing_slash().to_owned()
}

/// [`relay_key`] of a configured URL; the URL as given when it does not parse.
pub fn relay_key_of(url: &str) -> String {
    nostr_sdk::RelayUrl::parse(url).map_or_else(|_| url.to_owned(), |r| relay_key(&r))
}

/// Time to keep free at the end of a Lambda invocation for the final flush.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// The scheduled handler: one run bounded by both `INGEST_RUN_SECS` and the invocation deadline.
///
/// # Errors
/// As [`live::run`].
pub async fn handle_scheduled(
    db: &na_storage::Db,
    cfg: &IngestConfig,
    deadline: Option<Instant>,
) -> Result<live::RunReport> {
    let left = deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .map_or(cfg.run_for, |left| {
            left.saturating_sub(DEADLINE_MARGIN).min(cfg.run_for)
        });
    live::run(db, cfg, left).await
}
