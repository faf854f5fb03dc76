//! One scheduled ingest run: live subscription plus catch-up from each relay's watermark,
//! supervised. A relay that is down at the start, or goes down, is subscribed as soon as
//! it connects and caught up from its watermark; a failed catch-up is tried again; a
//! database that fails makes the pipeline retry its batch until it is written; a pipeline
//! that stops anyway is started again from the watermarks. Meanwhile the run reports its
//! health (`component_health`, `relay_health`) for `/health` and `/status`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use na_storage::{Db, RelayHealth};
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
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub stats: StatsSnapshot,
    pub catch_ups_completed: u64,
    pub catch_ups_failed: u64,
    /// Times the session was started again after its pipeline stopped or could not start.
    pub restarts: u64,
}

/// The component name ingest reports its health under.
pub const COMPONENT: &str = "ingest";

/// How often a run writes its health.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Runs live ingest for `run_for`, then writes what arrived and returns. Every (re)connection
/// of a relay is followed by a catch-up from its watermark minus the overlap; only after the
/// catch-up has committed do later batches move that relay's watermark.
///
/// # Errors
/// Configuration errors. Relays and the database failing do not fail the run: it recovers
/// from both and reports them while they last.
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
    if cfg.relays.is_empty() {
        return Err(Error::Config("no relays configured (INGEST_RELAYS)".into()));
    }
    tokio::pin!(stop);
    let mut report = RunReport::default();
    let mut wait = Duration::from_secs(1);
    loop {
        match session(db, cfg, &mut stop, &mut report).await {
            Ok(Ended::Stopped) => break,
            // Nothing a retry changes.
            Err(e @ Error::Config(_)) => return Err(e),
            Ok(Ended::PipelineStopped(why)) | Err(why) => {
                report.restarts += 1;
                warn!(error = %why, retry_in = ?wait, "ingest session ended; starting again");
                let _ = db.report_health(COMPONENT, Some(&why.to_string())).await;
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
    info!(?report, "ingest run finished");
    Ok(report)
}

enum Ended {
    Stopped,
    PipelineStopped(Error),
}

/// The run's view of its relays and its writes, reported every few seconds.
#[derive(Debug, Default)]
struct Health {
    relays: HashMap<String, (i16, RelayHealth)>,
    storage: Option<String>,
}

impl Health {
    fn relay(&mut self, relay: &RelayUrl, id: i16) -> &mut RelayHealth {
        &mut self
            .relays
            .entry(relay_key(relay))
            .or_insert_with(|| {
                (
                    id,
                    RelayHealth {
                        connected: false,
                        connected_at: None,
                        disconnected_at: None,
                        last_error: None,
                        last_error_at: None,
                    },
                )
            })
            .1
    }

    /// Why ingest is not working now, if it is not: failing writes, or no relay connected.
    fn problem(&self) -> Option<String> {
        if let Some(e) = &self.storage {
            return Some(format!("writing events fails: {e}"));
        }
        if self.relays.values().any(|(_, r)| r.connected) {
            return None;
        }
        let why: Vec<String> = self
            .relays
            .iter()
            .map(|(url, (_, r))| {
                format!(
                    "{url}: {}",
                    r.last_error.as_deref().unwrap_or("not connected yet")
                )
            })
            .collect();
        Some(format!("no relay is connected ({})", why.join("; ")))
    }

    async fn report(&self, db: &Db) {
        let result = async {
            for (id, r) in self.relays.values() {
                db.report_relay_health(*id, r).await?;
            }
            db.report_health(COMPONENT, self.problem().as_deref()).await
        };
        if let Err(e) = result.await {
            warn!(error = %e, "could not record ingest health");
        }
    }
}

/// One session: connections, pipeline, catch-ups, until `stop` or its pipeline stops.
async fn session(
    db: &Db,
    cfg: &IngestConfig,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    report: &mut RunReport,
) -> Result<Ended> {
    db.ensure_partitions_ahead(2).await?;
    let options = PipelineOptions {
        batch_size: cfg.batch_size,
        lnurl: cfg.lnurl.clone(),
        track_watermarks: true,
        ..Default::default()
    };
    let (session, mut signals) = Session::connect(db, cfg, options).await?;
    let session = Arc::new(session);
    let mut health = Health::default();
    for url in &session.relays {
        let id = db.relay_id(&relay_key(url)).await?;
        health.relay(url, id);
    }
    // Connection epochs as the driver last heard of them: a catch-up retried for an older
    // connection is not worth running.
    let mut epochs: HashMap<String, u64> = HashMap::new();
    let mut tasks: JoinSet<Task> = JoinSet::new();
    let mut expiry = tokio::time::interval(EXPIRY_SWEEP);
    let mut reporting = tokio::time::interval(REPORT_EVERY);
    let ended = loop {
        tokio::select! {
            () = &mut *stop => break Ended::Stopped,
            _ = expiry.tick() => match db.expire_due(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => info!(facts = n, "NIP-40: facts expired"),
                Err(e) => warn!(error = %e, "expiry sweep failed; the next one retries"),
            },
            _ = reporting.tick() => {
                if session.pipeline.is_stopped() {
                    break Ended::PipelineStopped(Error::PipelineStopped);
                }
                health.report(db).await;
            }
            Some(signal) = signals.recv() => match signal {
                RelaySignal::Connected { relay, epoch } => {
                    epochs.insert(relay_key(&relay), epoch);
                    let id = db_relay(&health, &relay);
                    let h = health.relay(&relay, id);
                    h.connected = true;
                    h.connected_at = Some(Utc::now());
                    let s = session.clone();
                    tasks.spawn(async move {
                        let result = s.subscribe_live(&relay).await;
                        Task::Subscribed { relay, result }
                    });
                }
                RelaySignal::Live { relay, epoch } => {
                    tasks.spawn(catch_up_task(session.clone(), db.clone(), cfg.clone(), relay, epoch, 0));
                }
                RelaySignal::Lost { relay, error } => {
                    let id = db_relay(&health, &relay);
                    let h = health.relay(&relay, id);
                    if h.connected {
                        h.disconnected_at = Some(Utc::now());
                    }
                    h.connected = false;
                    failed(h, error);
                }
                RelaySignal::Storage { error } => {
                    let changed = health.storage.is_some() != error.is_some();
                    health.storage = error;
                    if changed {
                        health.report(db).await;
                    }
                }
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Task::Subscribed { relay, result: Err(e) }) => {
                    warn!(relay = %relay, error = %e, "live subscription failed; the next connection tries again");
                    let id = db_relay(&health, &relay);
                    failed(health.relay(&relay, id), e.to_string());
                }
                Ok(Task::Subscribed { .. }) => {}
                Ok(Task::CaughtUp { result: Ok(()), .. }) => report.catch_ups_completed += 1,
                Ok(Task::CaughtUp { relay, epoch, attempt, result: Err(e) }) => {
                    report.catch_ups_failed += 1;
                    let id = db_relay(&health, &relay);
                    failed(health.relay(&relay, id), format!("catch-up failed: {e}"));
                    if epochs.get(&relay_key(&relay)) == Some(&epoch) {
                        warn!(relay = %relay, error = %e, attempt, "catch-up failed; trying again");
                        tasks.spawn(catch_up_task(session.clone(), db.clone(), cfg.clone(), relay, epoch, attempt + 1));
                    }
                }
                Err(e) => warn!(error = %e, "an ingest task ended abnormally"),
            },
        }
    };
    tasks.shutdown().await;
    let session =
        Arc::into_inner(session).ok_or_else(|| Error::Internal("session still shared".into()))?;
    let closed = session.close().await;
    if let Ok(stats) = &closed {
        add(&mut report.stats, stats);
    }
    for (_, r) in health.relays.values_mut() {
        r.connected = false;
    }
    if let Err(e) = &closed {
        health.storage = Some(e.to_string());
    }
    health.report(db).await;
    match (ended, closed) {
        (Ended::Stopped, Ok(_)) => Ok(Ended::Stopped),
        (Ended::Stopped, Err(e)) => {
            // The run is over; what was not written is re-read from the watermark next run.
            warn!(error = %e, "ingest ended with a batch unwritten; the next run re-reads it");
            Ok(Ended::Stopped)
        }
        (ended @ Ended::PipelineStopped(_), _) => Ok(ended),
    }
}

/// The relay id health already knows (every configured relay is registered at start).
fn db_relay(health: &Health, relay: &RelayUrl) -> i16 {
    health
        .relays
        .get(&relay_key(relay))
        .map_or(0, |(id, _)| *id)
}

fn failed(h: &mut RelayHealth, error: String) {
    h.last_error = Some(error);
    h.last_error_at = Some(Utc::now());
}

fn add(total: &mut StatsSnapshot, s: &StatsSnapshot) {
    total.received += s.received;
    total.stored += s.stored;
    total.duplicates += s.duplicates;
    total.rejected += s.rejected;
    total.facts += s.facts;
    total.batches += s.batches;
    total.verify_micros += s.verify_micros;
    total.store_micros += s.store_micros;
}

/// A finished background task of a session.
enum Task {
    Subscribed {
        relay: RelayUrl,
        result: Result<()>,
    },
    CaughtUp {
        relay: RelayUrl,
        epoch: u64,
        attempt: u32,
        result: Result<()>,
    },
}

/// How often a run flags facts whose NIP-40 expiration has come (queries judge expiry at
/// query time anyway; the flag lets compaction retract what it counted).
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

/// A catch-up, after a pause that grows with each failed attempt.
async fn catch_up_task(
    session: Arc<Session>,
    db: Db,
    cfg: IngestConfig,
    relay: RelayUrl,
    epoch: u64,
    attempt: u32,
) -> Task {
    if attempt > 0 {
        let pause = Duration::from_secs(1u64 << attempt.min(6)).min(Duration::from_secs(60));
        tokio::time::sleep(pause).await;
    }
    let result = catch_up(session, db, cfg, relay.clone(), epoch).await;
    Task::CaughtUp {
        relay,
        epoch,
        attempt,
        result,
    }
}

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
    .map(|t: DateTime<Utc>| Timestamp::from(t.timestamp().max(0) as u64));
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
