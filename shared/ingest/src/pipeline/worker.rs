//! The pipeline's task: takes relay messages, checks them on the rayon pool while the
//! previous batch is written, commits batches in order, and acts on what needs "everything
//! before this is stored" (page ends, watermarks) only after that.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use na_domain::EventId;
use na_storage::{BatchOutcome, Db, IngestBatch, Tally};
use nostr_sdk::RelayUrl;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{Command, LIVE_SUBSCRIPTION, PageRegistry, PipelineOptions, RelaySignal, Stats};
use crate::prepare::{Checked, Pending, check_batch};
use crate::relay_key;
use crate::tap::TapMessage;
use crate::{Error, Result};

#[derive(Debug)]
pub(super) struct RelayState {
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

pub(super) struct Worker {
    pub(super) db: Db,
    pub(super) options: PipelineOptions,
    pub(super) registry: Arc<PageRegistry>,
    pub(super) stats: Arc<Stats>,
    pub(super) closing: Arc<AtomicBool>,
    pub(super) signals: mpsc::UnboundedSender<RelaySignal>,
    pub(super) relays: HashMap<String, RelayState>,
    pub(super) pending: Vec<Pending>,
    pub(super) in_flight: Option<JoinHandle<na_storage::Result<BatchOutcome>>>,
    /// Recently verified events (id -> signature). The same event arrives from several
    /// relays and again in every overlap re-scan; a copy with the same signed bytes needs
    /// no second Schnorr check, which is most of the CPU cost of ingest.
    pub(super) verified: Arc<HashMap<EventId, [u8; 64]>>,
    /// When a watermark was last written; a quiet connection writes one every few seconds.
    pub(super) marked: std::time::Instant,
}

/// How often a quiet, caught-up relay's watermark is written without any events.
const WATERMARK_EVERY: Duration = Duration::from_secs(5);

/// Entries kept in the verified-signature cache before it starts over (~10 MB).
const VERIFIED_CACHE_CAP: usize = 100_000;

impl Worker {
    pub(super) async fn run(
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
                let mut live = false;
                if let Some(state) = self.relays.get_mut(&relay_key(&relay)) {
                    state.taken_at = Some(at);
                    live = state.epoch > 0 && state.live_epoch == state.epoch;
                }
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                self.pending.push(Pending {
                    relay: relay_key(&relay),
                    relay_id,
                    text,
                    received_live: live.then_some(at),
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
        let received: Vec<Option<DateTime<Utc>>> =
            pending.iter().map(|p| p.received_live).collect();
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
        let mut live = Vec::new();
        // `check_batch` keeps the order of `pending`.
        for (c, received) in checked.into_iter().zip(received) {
            if let Some(sub) = &c.sub {
                self.registry.record(&c.relay, sub, c.item);
            }
            match c.result {
                Ok(event) => {
                    if let Some(received) = received
                        && c.sub.as_deref() == Some(LIVE_SUBSCRIPTION)
                    {
                        live.push(Arrival {
                            id: event.event.id,
                            created_at: event.event.created_at,
                            received,
                        });
                    }
                    batch.events.push(event);
                }
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
        self.submit(batch, live).await
    }

    /// Waits for the batch in flight, then starts writing this one; once it commits, the
    /// freshness of the `live` events it stored first is measured.
    async fn submit(&mut self, mut batch: IngestBatch, live: Vec<Arrival>) -> Result<()> {
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
            measure_freshness(&live, &outcome.inserted);
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

/// A live event on its way to the database.
struct Arrival {
    id: EventId,
    created_at: i64,
    received: DateTime<Utc>,
}

/// The freshness of each live event `inserted` now (a copy from a second relay, or one
/// stored before, is not measured again).
fn measure_freshness(live: &[Arrival], inserted: &[EventId]) {
    if live.is_empty() {
        return;
    }
    let committed = Utc::now();
    let mut first: std::collections::HashSet<&EventId> = inserted.iter().collect();
    for a in live {
        if first.remove(&a.id) {
            let received = (committed - a.received).as_seconds_f64();
            #[expect(
                clippy::cast_precision_loss,
                reason = "seconds since an event's creation are far below 2^53"
            )]
            let created = (committed.timestamp_millis() - a.created_at * 1000) as f64 / 1000.0;
            na_telemetry::metrics::ingest_freshness(received, created);
        }
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
