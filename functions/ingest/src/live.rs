//! One scheduled ingest run: live subscription plus catch-up from each relay's watermark.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use na_storage::Db;
use nostr_sdk::prelude::*;
use serde::Serialize;
use tokio::task::JoinSet;
use tracing::{info, instrument, warn};

use crate::config::IngestConfig;
use crate::paging::page_backwards;
use crate::pipeline::{PipelineOptions, RelaySignal, StatsSnapshot};
use crate::session::{Session, ingested_kinds};
use crate::{Error, Result, relay_key};

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub stats: StatsSnapshot,
    pub catch_ups_completed: u64,
    pub catch_ups_failed: u64,
}

/// Runs live ingest for `run_for`, then writes what arrived and returns. Every (re)connection
/// of a relay is followed by a catch-up from its watermark minus the overlap; only after the
/// catch-up has committed do later batches move that relay's watermark.
///
/// # Errors
/// Configuration and storage errors. A relay that fails does not fail the run; its
/// watermark stays where it was.
pub async fn run(db: &Db, cfg: &IngestConfig, run_for: Duration) -> Result<RunReport> {
    run_until(db, cfg, tokio::time::sleep(run_for)).await
}

/// As [`run`], ending when `stop` completes (the local stack's shutdown, a test's signal).
///
/// # Errors
/// As [`run`].
#[instrument(skip_all, err, fields(relays = cfg.relays.len()))]
pub async fn run_until(
    db: &Db,
    cfg: &IngestConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<RunReport> {
    db.ensure_partitions_ahead(2).await?;
    let options = PipelineOptions {
        batch_size: cfg.batch_size,
        lnurl: cfg.lnurl.clone(),
        track_watermarks: true,
        ..Default::default()
    };
    let (session, mut signals) = Session::connect(db, cfg, options).await?;
    session.subscribe_live().await?;
    let session = Arc::new(session);
    tokio::pin!(stop);
    let mut catch_ups: JoinSet<Result<()>> = JoinSet::new();
    let (mut completed, mut failed) = (0, 0);
    let mut expiry = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = expiry.tick() => match db.expire_due(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => info!(facts = n, "NIP-40: facts expired"),
                Err(e) => warn!(error = %e, "expiry sweep failed; the next one retries"),
            },
            Some(signal) = signals.recv() => match signal {
                RelaySignal::Live { relay, epoch } => {
                    catch_ups.spawn(catch_up(session.clone(), db.clone(), cfg.clone(), relay, epoch));
                }
            },
            Some(done) = catch_ups.join_next(), if !catch_ups.is_empty() => match done {
                Ok(Ok(())) => completed += 1,
                Ok(Err(e)) => { failed += 1; warn!(error = %e, "catch-up failed; watermark held"); }
                Err(e) => { failed += 1; warn!(error = %e, "catch-up task ended abnormally"); }
            },
        }
    }
    catch_ups.shutdown().await;
    let session =
        Arc::into_inner(session).ok_or_else(|| Error::Internal("session still shared".into()))?;
    let stats = session.close().await?;
    info!(?stats, completed, failed, "ingest run finished");
    Ok(RunReport {
        stats,
        catch_ups_completed: completed,
        catch_ups_failed: failed,
    })
}

/// How often a run flags facts whose NIP-40 expiration has come (queries judge expiry at
/// query time anyway; the flag lets compaction retract what it counted).
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

#[instrument(skip(session, db, cfg), err, fields(relay = %relay))]
async fn catch_up(
    session: Arc<Session>,
    db: Db,
    cfg: IngestConfig,
    relay: RelayUrl,
    epoch: u64,
) -> Result<()> {
    let relay_id = db.relay_id(&relay_key(&relay)).await?;
    let now = Utc::now();
    let since = match db.watermark(relay_id).await? {
        Some(w) => Some(w - cfg.overlap),
        None => cfg.lookback.map(|l| now - l),
    }
    .map(|t| Timestamp::from(t.timestamp().max(0) as u64));
    let base = Filter::new().kinds(ingested_kinds());
    let done = page_backwards(&*session, &relay, &base, since, None, cfg.page_limit, |p| {
        tracing::debug!(pages = p.pages, delivered = p.delivered, reached = ?p.reached, "catch-up progress");
    })
    .await?;
    info!(pages = done.pages, delivered = done.delivered, since = ?since.map(|s| s.as_secs()), "catch-up complete");
    if let Some(window) = cfg.negentropy_window {
        let from = now - window;
        let ours = db.stored_ids(na_domain::kinds::INGESTED, from).await?;
        let filter = Filter::new()
            .kinds(ingested_kinds())
            .since(Timestamp::from(from.timestamp().max(0) as u64));
        match session.reconcile(&relay, filter, ours).await {
            Ok(missing) => info!(
                missing,
                window_secs = window.as_secs(),
                "NIP-77 reconciliation complete"
            ),
            // Many relays do not speak NIP-77; the time-based re-scan above still stands.
            Err(e) => info!(error = %e, "NIP-77 reconciliation unavailable"),
        }
    }
    session.pipeline.caught_up(relay, epoch).await
}
