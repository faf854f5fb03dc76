//! The ingest pipeline: relay messages in, committed batches out.
//!
//! Events are verified and normalized in parallel (rayon, off the async runtime) while the
//! previous batch is being written, so both cores stay busy. Batches commit in order, and
//! anything that depends on "everything before this message is stored" (the end of a page,
//! a watermark) is acted on only after the batch holding those events has committed.
//!
//! Here: the handle and what it tells its driver; `worker` (batching, writes, watermarks),
//! `pages` (subscriptions collected into pages), `stats`. The checks themselves (parse,
//! verify, normalize) are [`crate::prepare`]'s.

mod pages;
mod stats;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use na_storage::Db;
use nostr_sdk::RelayUrl;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::tap::TapMessage;
use crate::{Error, Result};

pub use pages::{Page, PageRegistry, PageResult};
pub use stats::{Stats, StatsSnapshot};
use worker::Worker;

/// The subscription id of the live subscription (any `created_at`, `limit: 0`).
pub const LIVE_SUBSCRIPTION: &str = "na-live";

/// How the pipeline batches.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Events per batch (one transaction each).
    pub batch_size: usize,
    /// A partial batch is written after this long.
    pub flush_interval: Duration,
    /// Advance per-relay watermarks (live ingest only; backfills leave them alone).
    pub track_watermarks: bool,
    /// NIP-57's LNURL check of zap receipts (`None`: every zap stays `unverified`).
    pub lnurl: Option<na_lnurl::CachedResolver>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            batch_size: 2000,
            flush_interval: Duration::from_millis(250),
            track_watermarks: false,
            lnurl: None,
        }
    }
}

/// What the pipeline tells the driver about relays and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelaySignal {
    /// A connection to this relay opened (connection `epoch`): it needs the live
    /// subscription, whether or not the client remembers one from before.
    Connected { relay: RelayUrl, epoch: u64 },
    /// The live subscription is active on this relay: its first EOSE in connection `epoch`.
    Live { relay: RelayUrl, epoch: u64 },
    /// A connection attempt failed, or the connection closed.
    Lost { relay: RelayUrl, error: String },
    /// Writing a batch failed and is being retried (`Some`), or works again (`None`).
    Storage { error: Option<String> },
}

#[derive(Debug)]
pub(crate) enum Command {
    /// Catch-up for this connection epoch is done: from now on, flushes advance the watermark.
    CaughtUp { relay: RelayUrl, epoch: u64 },
    /// Process what has arrived, write it, and answer.
    Flush { done: oneshot::Sender<Result<()>> },
}

/// Handle to a running pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub(crate) commands: mpsc::Sender<Command>,
    pub registry: Arc<PageRegistry>,
    pub stats: Arc<Stats>,
    /// Set when the pipeline is finishing: a batch that cannot be written is given up on
    /// after a few more tries instead of retried for as long as the database is down.
    closing: Arc<AtomicBool>,
    task: JoinHandle<Result<()>>,
}

impl Pipeline {
    /// Starts the pipeline over a stream of tap messages. `signals` receives [`RelaySignal`]s.
    pub fn spawn(
        db: Db,
        messages: mpsc::Receiver<TapMessage>,
        signals: mpsc::UnboundedSender<RelaySignal>,
        options: PipelineOptions,
    ) -> Self {
        let (commands, command_rx) = mpsc::channel(16);
        let registry = Arc::new(PageRegistry::default());
        let stats = Arc::new(Stats::default());
        let closing = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            db,
            options,
            registry: registry.clone(),
            stats: stats.clone(),
            closing: closing.clone(),
            signals,
            relays: HashMap::new(),
            pending: Vec::new(),
            in_flight: None,
            verified: Arc::default(),
            marked: std::time::Instant::now(),
        };
        let slots = registry.clone();
        let task = tokio::spawn(async move {
            let ended = worker.run(messages, command_rx).await;
            if let Err(e) = &ended {
                tracing::error!(error = %e, "ingest pipeline stopped");
                slots.fail_all(&e.to_string());
            }
            ended
        });
        Pipeline {
            commands,
            registry,
            stats,
            closing,
            task,
        }
    }

    /// The pipeline has stopped (only a fault it cannot retry stops it before `finish`).
    pub fn is_stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Writes everything received so far (advancing watermarks where justified).
    ///
    /// # Errors
    /// When a batch could not be stored; the pipeline has stopped then.
    pub async fn flush(&self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.commands
            .send(Command::Flush { done })
            .await
            .map_err(|_| Error::PipelineStopped)?;
        rx.await.map_err(|_| Error::PipelineStopped)?
    }

    pub(crate) async fn caught_up(&self, relay: RelayUrl, epoch: u64) -> Result<()> {
        self.commands
            .send(Command::CaughtUp { relay, epoch })
            .await
            .map_err(|_| Error::PipelineStopped)
    }

    /// Flushes, stops, and returns the totals.
    ///
    /// # Errors
    /// The error that stopped the pipeline, if any.
    pub async fn finish(self) -> Result<StatsSnapshot> {
        self.closing.store(true, Ordering::Relaxed);
        let flushed = self.flush().await;
        drop(self.commands);
        let ended = self
            .task
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        ended?;
        flushed?;
        Ok(self.stats.snapshot())
    }
}
