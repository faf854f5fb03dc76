//! The ingest pipeline: relay messages in, committed batches out.
//!
//! Events are verified and normalized in parallel (rayon, off the async runtime) while the
//! previous batch is being written, so both cores stay busy. Batches commit in order, and
//! anything that depends on "everything before this message is stored" (the end of a page,
//! a watermark) is acted on only after the batch holding those events has committed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use na_domain::{EventId, RawEvent, Rejection};
use na_storage::{BatchOutcome, Db, IngestBatch, NewEvent, Tally};
use nostr_sdk::RelayUrl;
use rayon::prelude::*;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::relay_key;
use crate::tap::TapMessage;
use crate::{Error, Result};

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

/// Totals over the life of a pipeline.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub facts: AtomicU64,
    pub batches: AtomicU64,
    /// Wall time spent verifying + normalizing, and writing (they overlap).
    pub verify_micros: AtomicU64,
    pub store_micros: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub facts: u64,
    pub batches: u64,
    pub verify_micros: u64,
    pub store_micros: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            stored: get(&self.stored),
            duplicates: get(&self.duplicates),
            rejected: get(&self.rejected),
            facts: get(&self.facts),
            batches: get(&self.batches),
            verify_micros: get(&self.verify_micros),
            store_micros: get(&self.store_micros),
        }
    }
}

/// What one subscription delivered: every parseable event (valid or not) and the raw count.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Page {
    pub delivered: usize,
    pub items: Vec<(EventId, i64)>,
}

/// A finished page, or why the relay did not finish it.
pub type PageResult = Result<Page, String>;

#[derive(Debug)]
struct Slot {
    page: Page,
    done: Option<oneshot::Sender<PageResult>>,
}

/// Subscriptions whose events are being collected into a [`Page`], keyed by (relay, id).
#[derive(Debug, Default)]
pub struct PageRegistry {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl PageRegistry {
    /// Starts collecting; the receiver resolves once the page is complete and committed.
    pub fn register(&self, relay: &RelayUrl, sub: &str) -> oneshot::Receiver<PageResult> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            (relay_key(relay), sub.to_owned()),
            Slot {
                page: Page::default(),
                done: Some(tx),
            },
        );
        rx
    }

    pub fn remove(&self, relay: &RelayUrl, sub: &str) {
        self.lock().remove(&(relay_key(relay), sub.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, relay: &str, sub: &str, item: Option<(EventId, i64)>) {
        if let Some(slot) = self.lock().get_mut(&(relay.to_owned(), sub.to_owned())) {
            slot.page.delivered += 1;
            slot.page.items.extend(item);
        }
    }

    fn complete(&self, relay: &str, sub: &str, outcome: Result<(), String>) {
        if let Some(slot) = self.lock().get_mut(&(relay.to_owned(), sub.to_owned()))
            && let Some(tx) = slot.done.take()
        {
            let _ = tx.send(outcome.map(|()| std::mem::take(&mut slot.page)));
        }
    }

    fn fail_all(&self, why: &str) {
        for slot in self.lock().values_mut() {
            if let Some(tx) = slot.done.take() {
                let _ = tx.send(Err(why.to_owned()));
            }
        }
    }

    fn fail_relay(&self, relay: &str, why: &str) {
        for ((r, _), slot) in self.lock().iter_mut() {
            if r == relay
                && let Some(tx) = slot.done.take()
            {
                let _ = tx.send(Err(why.to_owned()));
            }
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

#[derive(Debug)]
struct RelayState {
    id: i16,
    epoch: u64,
    caught_up: bool,
    /// The connection epoch whose live EOSE was signalled (the REQ may be sent twice: by
    /// the client's own re-subscription and by the driver).
    live_epoch: u64,
    /// When the last event taken from this relay was read: everything it sent before is
    /// taken too.
    taken_at: Option<DateTime<Utc>>,
}

struct Pending {
    relay: String,
    relay_id: i16,
    text: String,
}

/// One delivery on its way through the checks, computed on the rayon pool.
struct Delivery<T> {
    relay: String,
    relay_id: i16,
    sub: Option<String>,
    /// Id and time of anything that parsed as an event, valid or not (for paging).
    item: Option<(EventId, i64)>,
    result: Result<T, Rejection>,
}

impl<T> Delivery<T> {
    fn and_then<U>(self, f: impl FnOnce(T) -> Result<U, Rejection>) -> Delivery<U> {
        Delivery {
            relay: self.relay,
            relay_id: self.relay_id,
            sub: self.sub,
            item: self.item,
            result: self.result.and_then(f),
        }
    }
}

/// Parsed, with time and id checked: only the signature is left.
type Parsed = Delivery<RawEvent>;
/// Fully checked and normalized.
type Checked = Delivery<NewEvent>;

struct Worker {
    db: Db,
    options: PipelineOptions,
    registry: Arc<PageRegistry>,
    stats: Arc<Stats>,
    closing: Arc<AtomicBool>,
    signals: mpsc::UnboundedSender<RelaySignal>,
    relays: HashMap<String, RelayState>,
    pending: Vec<Pending>,
    in_flight: Option<JoinHandle<na_storage::Result<BatchOutcome>>>,
    /// Recently verified events (id -> signature). The same event arrives from several
    /// relays and again in every overlap re-scan; a copy with the same signed bytes needs
    /// no second Schnorr check, which is most of the CPU cost of ingest.
    verified: Arc<HashMap<EventId, [u8; 64]>>,
    /// When a watermark was last written; a quiet connection writes one every few seconds.
    marked: std::time::Instant,
}

/// How often a quiet, caught-up relay's watermark is written without any events.
const WATERMARK_EVERY: Duration = Duration::from_secs(5);

/// Entries kept in the verified-signature cache before it starts over (~10 MB).
const VERIFIED_CACHE_CAP: usize = 100_000;

impl Worker {
    async fn run(
        mut self,
        mut messages: mpsc::Receiver<TapMessage>,
        mut commands: mpsc::Receiver<Command>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(self.options.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::CaughtUp { relay, epoch }) => {
                        if let Some(state) = self.relays.get_mut(&relay_key(&relay))
                            && state.epoch == epoch
                        {
                            state.caught_up = true;
                            info!(relay = %relay, epoch, "relay caught up; watermark follows live ingest");
                            // Everything the catch-up paged is committed: the first
                            // watermark goes with the next write, now.
                            let cut = self.cut(messages.is_empty());
                            self.flush(Some(cut)).await?;
                            self.marked = std::time::Instant::now();
                        }
                    }
                    Some(Command::Flush { done }) => {
                        // Take in what has already arrived, then write with a watermark cut
                        // taken before draining: every message received before it is stored.
                        let cut = watermark_cut();
                        let mut drained = Ok(());
                        while let Ok(msg) = messages.try_recv() {
                            if let Err(e) = self.handle(msg).await {
                                drained = Err(e);
                                break;
                            }
                        }
                        let result = match drained {
                            Ok(()) => self.flush_and_wait(Some(Cut::All(cut))).await,
                            Err(e) => Err(e),
                        };
                        let failed = result.as_ref().err().map(ToString::to_string);
                        let _ = done.send(result);
                        if let Some(e) = failed {
                            return Err(Error::Storage(e));
                        }
                    }
                    None => return self.flush_and_wait(None).await,
                },
                msg = messages.recv() => match msg {
                    Some(msg) => self.handle(msg).await?,
                    None => return self.flush_and_wait(None).await,
                },
                _ = tick.tick() => {
                    let cut = self.cut(messages.is_empty());
                    let mark_due = self.any_caught_up() && self.marked.elapsed() >= WATERMARK_EVERY;
                    if !self.pending.is_empty() || mark_due {
                        self.flush(Some(cut)).await?;
                        self.marked = std::time::Instant::now();
                    }
                }
            }
        }
    }

    fn any_caught_up(&self) -> bool {
        self.options.track_watermarks && self.relays.values().any(|r| r.caught_up)
    }

    /// Where watermarks may move to now: with nothing waiting in the channel, to just
    /// before the clock; otherwise each relay to just before its last event taken.
    fn cut(&self, idle: bool) -> Cut {
        if idle {
            Cut::All(watermark_cut())
        } else {
            Cut::PerRelay
        }
    }

    async fn relay_id(&mut self, relay: &RelayUrl) -> Result<i16> {
        let key = relay_key(relay);
        if let Some(state) = self.relays.get(&key) {
            return Ok(state.id);
        }
        let (db, name) = (self.db.clone(), key.clone());
        let id = retrying(&self.signals, &self.closing, || {
            let (db, name) = (db.clone(), name.clone());
            async move { db.relay_id(&name).await }
        })
        .await?;
        self.relays.insert(
            key,
            RelayState {
                id,
                epoch: 0,
                caught_up: false,
                live_epoch: 0,
                taken_at: None,
            },
        );
        Ok(id)
    }

    async fn handle(&mut self, msg: TapMessage) -> Result<()> {
        match msg {
            TapMessage::Event { relay, text, at } => {
                let relay_id = self.relay_id(&relay).await?;
                if let Some(state) = self.relays.get_mut(&relay_key(&relay)) {
                    state.taken_at = Some(at);
                }
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                self.pending.push(Pending {
                    relay: relay_key(&relay),
                    relay_id,
                    text,
                });
                if self.pending.len() >= self.options.batch_size {
                    self.flush(None).await?;
                }
            }
            TapMessage::Control { relay, text } => {
                self.relay_id(&relay).await?;
                let Some(control) = Control::parse(&text) else {
                    warn!(relay = %relay, text, "unparseable EOSE/CLOSED");
                    return Ok(());
                };
                // Everything the relay sent before this message must be committed first.
                self.flush_and_wait(None).await?;
                match control {
                    Control::Eose(sub) if sub == LIVE_SUBSCRIPTION => {
                        if let Some(state) = self.relays.get_mut(&relay_key(&relay))
                            && state.live_epoch != state.epoch
                        {
                            state.live_epoch = state.epoch;
                            let epoch = state.epoch;
                            let _ = self.signals.send(RelaySignal::Live { relay, epoch });
                        }
                    }
                    Control::Eose(sub) => self.registry.complete(&relay_key(&relay), &sub, Ok(())),
                    Control::Closed(sub, why) => {
                        warn!(relay = %relay, sub, why, "relay closed a subscription");
                        self.registry.complete(
                            &relay_key(&relay),
                            &sub,
                            Err(format!("relay closed it: {why}")),
                        );
                    }
                }
            }
            TapMessage::Connected { relay } => {
                self.relay_id(&relay).await?;
                if let Some(state) = self.relays.get_mut(&relay_key(&relay)) {
                    state.epoch += 1;
                    state.caught_up = false;
                    state.taken_at = None;
                    debug!(relay = %relay, epoch = state.epoch, "connected");
                    let epoch = state.epoch;
                    let _ = self.signals.send(RelaySignal::Connected { relay, epoch });
                }
            }
            TapMessage::Unreachable { relay, error } => {
                debug!(relay = %relay, error, "connection attempt failed");
                let _ = self.signals.send(RelaySignal::Lost { relay, error });
            }
            TapMessage::Disconnected { relay } => {
                self.flush_and_wait(None).await?;
                if let Some(state) = self.relays.get_mut(&relay_key(&relay)) {
                    state.caught_up = false;
                }
                self.registry
                    .fail_relay(&relay_key(&relay), "relay disconnected");
                info!(relay = %relay, "disconnected; watermark held until the next catch-up");
                let _ = self.signals.send(RelaySignal::Lost {
                    relay,
                    error: "the connection closed".into(),
                });
            }
        }
        Ok(())
    }

    /// [`Worker::flush`], then waits until the database has committed it.
    async fn flush_and_wait(&mut self, watermark_at: Option<Cut>) -> Result<()> {
        self.flush(watermark_at).await?;
        self.drain().await
    }

    /// Verifies and normalizes the pending events and hands the batch to the writer, with
    /// the caught-up relays' watermarks at `watermark_at`.
    async fn flush(&mut self, watermark_at: Option<Cut>) -> Result<()> {
        let watermarks: Vec<(i16, DateTime<Utc>)> = match watermark_at {
            Some(cut) if self.options.track_watermarks => self
                .relays
                .values()
                .filter(|r| r.caught_up)
                .filter_map(|r| match cut {
                    Cut::All(at) => Some((r.id, at)),
                    Cut::PerRelay => r.taken_at.map(|t| (r.id, t - WATERMARK_MARGIN)),
                })
                .collect(),
            _ => Vec::new(),
        };
        if self.pending.is_empty() && watermarks.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let now = Utc::now().timestamp();
        let started = std::time::Instant::now();
        let known = self.verified.clone();
        let checked: Vec<Checked> =
            tokio::task::spawn_blocking(move || check_batch(pending, now, &known))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
        let cache = Arc::make_mut(&mut self.verified);
        if cache.len() > VERIFIED_CACHE_CAP {
            cache.clear();
        }
        cache.extend(
            checked
                .iter()
                .filter_map(|c| c.result.as_ref().ok())
                .map(|e| (e.event.id, e.event.sig)),
        );
        self.stats
            .verify_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);

        let mut batch = IngestBatch {
            watermarks,
            ..Default::default()
        };
        let mut rejected: HashMap<(i16, &'static str), i64> = HashMap::new();
        for c in checked {
            if let Some(sub) = &c.sub {
                self.registry.record(&c.relay, sub, c.item);
            }
            match c.result {
                Ok(event) => batch.events.push(event),
                Err(rejection) => {
                    debug!(relay = c.relay, %rejection, "rejected event");
                    *rejected
                        .entry((c.relay_id, rejection.outcome()))
                        .or_default() += 1;
                }
            }
        }
        let rejected_total: i64 = rejected.values().sum();
        self.stats
            .rejected
            .fetch_add(rejected_total as u64, Ordering::Relaxed);
        batch.rejected = rejected
            .into_iter()
            .map(|((relay_id, outcome), count)| Tally {
                relay_id,
                outcome,
                count,
            })
            .collect();
        self.submit(batch).await
    }

    /// Waits for the batch in flight, then starts writing this one.
    async fn submit(&mut self, mut batch: IngestBatch) -> Result<()> {
        self.drain().await?;
        let (db, stats) = (self.db.clone(), self.stats.clone());
        let (signals, closing) = (self.signals.clone(), self.closing.clone());
        let lnurl = self.options.lnurl.clone();
        self.in_flight = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            if let Some(resolver) = &lnurl {
                crate::zap_check::annotate(resolver, &db, &mut batch.events).await;
            }
            let batch = Arc::new(batch);
            let outcome = retrying(&signals, &closing, || {
                let (db, batch) = (db.clone(), batch.clone());
                async move { db.store_batch(&batch).await }
            })
            .await?;
            stats
                .store_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            stats
                .stored
                .fetch_add(outcome.inserted.len() as u64, Ordering::Relaxed);
            stats
                .duplicates
                .fetch_add(outcome.duplicates, Ordering::Relaxed);
            stats.facts.fetch_add(outcome.facts, Ordering::Relaxed);
            stats.batches.fetch_add(1, Ordering::Relaxed);
            Ok(outcome)
        }));
        Ok(())
    }

    /// Waits until every submitted batch has committed.
    async fn drain(&mut self) -> Result<()> {
        if let Some(task) = self.in_flight.take() {
            task.await.map_err(|e| Error::Internal(e.to_string()))??;
        }
        Ok(())
    }
}

/// How far watermarks may move in a write.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Every caught-up relay to this instant (nothing was waiting in the channel).
    All(DateTime<Utc>),
    /// Each caught-up relay to just before the last event taken from it.
    PerRelay,
}

/// A message read from the socket just before a cut may not be in the channel yet; the
/// catch-up overlap covers far more than this.
const WATERMARK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

fn watermark_cut() -> DateTime<Utc> {
    Utc::now() - WATERMARK_MARGIN
}

/// The longest wait between two tries of a database write.
const RETRY_AT_MOST: Duration = Duration::from_secs(30);

/// Tries `write` until it succeeds: a write is idempotent, and one that fails (the
/// database restarting, a connection killed) is retried with backoff for as long as it
/// fails, saying so through `signals`. Only once the pipeline is closing does it give up,
/// after a few more tries: nothing was committed, so the watermark still says where the
/// next run's catch-up must start.
async fn retrying<T, F, Fut>(
    signals: &mpsc::UnboundedSender<RelaySignal>,
    closing: &AtomicBool,
    mut write: F,
) -> na_storage::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = na_storage::Result<T>>,
{
    let mut wait = Duration::from_millis(200);
    let (mut failed, mut tries_closing) = (false, 0);
    loop {
        match write().await {
            Ok(v) => {
                if failed {
                    info!("database writes work again");
                    let _ = signals.send(RelaySignal::Storage { error: None });
                }
                return Ok(v);
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?wait, "database write failed; retrying");
                failed = true;
                let _ = signals.send(RelaySignal::Storage {
                    error: Some(e.to_string()),
                });
                if closing.load(Ordering::Relaxed) {
                    tries_closing += 1;
                    if tries_closing > 3 {
                        return Err(e);
                    }
                    wait = wait.min(Duration::from_secs(1));
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_AT_MOST);
            }
        }
    }
}

/// `["EVENT", <sub>, <event>]`; the tap has already read the first element.
#[derive(Deserialize)]
struct EventMessage<'a>(
    serde::de::IgnoredAny,
    String,
    #[serde(borrow)] &'a serde_json::value::RawValue,
);

fn parse(p: Pending, now: i64) -> Parsed {
    let (sub, item, result) = match serde_json::from_str::<EventMessage<'_>>(&p.text) {
        Err(e) => (None, None, Err(Rejection::Malformed(e.to_string()))),
        Ok(EventMessage(_, sub, raw)) => match RawEvent::from_json(raw.get()) {
            Err(e) => (Some(sub), None, Err(Rejection::Malformed(e.to_string()))),
            Ok(ev) => (
                Some(sub),
                Some((ev.id, ev.created_at)),
                na_domain::verify::precheck(&ev, now).map(|()| ev),
            ),
        },
    };
    Parsed {
        relay: p.relay,
        relay_id: p.relay_id,
        sub,
        item,
        result,
    }
}

/// Verifies and normalizes events given as their JSON, one per item, all from `relay_id`,
/// by the same checks as relay ingest: the events to store, and the rejections by outcome
/// (bad id, bad signature, future, malformed). Runs on the rayon pool; call it off the
/// async runtime.
pub(crate) fn check_events(
    events: Vec<String>,
    relay: &str,
    relay_id: i16,
    now: i64,
) -> (Vec<NewEvent>, Vec<Tally>) {
    let pending = events
        .into_iter()
        .map(|json| Pending {
            relay: relay.to_owned(),
            relay_id,
            text: format!("[\"EVENT\",\"import\",{json}]"),
        })
        .collect();
    let mut stored = Vec::new();
    let mut rejected: HashMap<&'static str, i64> = HashMap::new();
    for c in check_batch(pending, now, &HashMap::new()) {
        match c.result {
            Ok(event) => stored.push(event),
            Err(rejection) => *rejected.entry(rejection.outcome()).or_default() += 1,
        }
    }
    let tallies = rejected
        .into_iter()
        .map(|(outcome, count)| Tally {
            relay_id,
            outcome,
            count,
        })
        .collect();
    (stored, tallies)
}

/// Verifies a batch on the rayon pool. The Schnorr check — nearly all of the cost — runs
/// once per distinct (id, signature) in the batch and not at all for pairs verified
/// before: the same event arrives from several relays, often within one batch.
fn check_batch(
    pending: Vec<Pending>,
    now: i64,
    known: &HashMap<EventId, [u8; 64]>,
) -> Vec<Checked> {
    let parsed: Vec<Parsed> = pending.into_par_iter().map(|p| parse(p, now)).collect();
    let mut distinct: HashMap<(EventId, [u8; 64]), usize> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        if let Ok(ev) = &p.result
            && known.get(&ev.id) != Some(&ev.sig)
        {
            distinct.entry((ev.id, ev.sig)).or_insert(i);
        }
    }
    let good: HashSet<(EventId, [u8; 64])> = distinct
        .into_par_iter()
        .filter(|(_, i)| {
            parsed[*i]
                .result
                .as_ref()
                .is_ok_and(na_domain::verify::signature_valid)
        })
        .map(|(pair, _)| pair)
        .collect();
    parsed
        .into_par_iter()
        .map(|p| {
            let relay_id = p.relay_id;
            p.and_then(|ev| {
                let proven = known.get(&ev.id) == Some(&ev.sig) || good.contains(&(ev.id, ev.sig));
                let sig = ev.sig;
                if !proven {
                    return Err(Rejection::BadSignature);
                }
                let event = na_domain::verify_known(ev, now, Some(&sig))?;
                Ok(NewEvent::normalized(event, vec![relay_id]))
            })
        })
        .collect()
}

enum Control {
    Eose(String),
    Closed(String, String),
}

impl Control {
    fn parse(text: &str) -> Option<Self> {
        let v: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
        let sub = v.get(1)?.as_str()?.to_owned();
        match v.first()?.as_str()? {
            "EOSE" => Some(Control::Eose(sub)),
            "CLOSED" => Some(Control::Closed(
                sub,
                v.get(2).and_then(|m| m.as_str()).unwrap_or("").to_owned(),
            )),
            _ => None,
        }
    }
}
