//! A connection to a set of relays: a nostr-sdk client whose transport feeds our pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use na_storage::Db;
use nostr_sdk::prelude::*;
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::IngestConfig;
use crate::paging::PageSource;
use crate::pipeline::{
    LIVE_SUBSCRIPTION, Page, Pipeline, PipelineOptions, RelaySignal, StatsSnapshot,
};
use crate::tap::TapTransport;
use crate::{Error, Result, relay_key};

/// Relay messages buffered between the sockets and the pipeline.
const TAP_CAPACITY: usize = 20_000;

/// How often, and how far apart, a connecting relay is asked for the live subscription.
const SUBSCRIBE_TRIES: u32 = 50;
const SUBSCRIBE_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Session {
    client: Client,
    pub(crate) pipeline: Pipeline,
    pub(crate) relays: Vec<RelayUrl>,
    request_timeout: Duration,
    next_sub: AtomicU64,
}

impl Session {
    /// Connects to `relays` (waiting up to `request_timeout` for the connections) and starts
    /// the pipeline. Relays that do not answer are retried by the client in the background.
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that is not a relay URL, or a storage error.
    pub async fn connect(
        db: &Db,
        cfg: &IngestConfig,
        options: PipelineOptions,
    ) -> Result<(Self, mpsc::UnboundedReceiver<RelaySignal>)> {
        let request_timeout = cfg.request_timeout;
        let urls = cfg
            .relays
            .iter()
            .map(|r| RelayUrl::parse(r).map_err(|e| Error::Config(format!("relay URL {r:?}: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        if urls.is_empty() {
            return Err(Error::Config("no relays configured (INGEST_RELAYS)".into()));
        }
        for url in &urls {
            db.relay_id(&relay_key(url)).await?;
        }
        let (transport, tap) = TapTransport::new(TAP_CAPACITY);
        let (signal_tx, signals) = mpsc::unbounded_channel();
        let pipeline = Pipeline::spawn(db.clone(), tap, signal_tx, options);
        let client = Client::builder().websocket_transport(transport).build();
        // A fixed reconnection interval: the client's default stretches it after failures,
        // which would keep a relay that came back unread for minutes.
        let relay_opts = RelayOptions::default()
            .retry_interval(cfg.reconnect)
            .adjust_retry_interval(false);
        for url in &urls {
            client
                .pool()
                .add_relay(url, relay_opts.clone())
                .await
                .map_err(|e| relay_error(url, e))?;
        }
        client.connect().await;
        client.wait_for_connection(request_timeout).await;
        let session = Session {
            client,
            pipeline,
            relays: urls,
            request_timeout,
            next_sub: AtomicU64::new(0),
        };
        Ok((session, signals))
    }

    /// Subscribes `relay` to every ingested kind with any `created_at`: `limit: 0` asks for
    /// no stored events, and no `since` (relays apply `since` to live events too and would
    /// drop backdated ones). Called on every (re)connection: the client re-sends a
    /// subscription it remembers, but it forgets one that failed while the relay was down.
    /// A relay that is still completing its handshake is asked again for a few seconds.
    ///
    /// # Errors
    /// When the relay refuses it for that long.
    pub async fn subscribe_live(&self, relay: &RelayUrl) -> Result<()> {
        let filter = Filter::new().kinds(ingested_kinds()).limit(0);
        let id = SubscriptionId::new(LIVE_SUBSCRIPTION);
        let handle = self
            .client
            .relay(relay)
            .await
            .map_err(|e| relay_error(relay, e))?;
        let mut last = String::new();
        for _ in 0..SUBSCRIBE_TRIES {
            match handle
                .subscribe_with_id(id.clone(), filter.clone(), SubscribeOptions::default())
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(SUBSCRIBE_PAUSE).await;
        }
        Err(relay_error(
            relay,
            format!("live subscription refused: {last}"),
        ))
    }

    /// Writes what has arrived, closes the connections, stops the pipeline.
    ///
    /// # Errors
    /// The error that stopped the pipeline, if any.
    pub async fn close(self) -> Result<StatsSnapshot> {
        let flushed = self.pipeline.flush().await;
        self.client.unsubscribe_all().await;
        self.client.shutdown().await;
        let stats = self.pipeline.finish().await;
        flushed?;
        stats
    }

    /// NIP-77 reconciliation with one relay: fetches the events matching `filter` that the
    /// relay has and `ours` lacks (they arrive through the pipeline like any other), then
    /// waits until they are stored. Returns how many the relay had that we did not.
    ///
    /// # Errors
    /// When the relay does not support NIP-77 or the reconciliation fails.
    pub async fn reconcile(
        &self,
        relay: &RelayUrl,
        filter: Filter,
        ours: Vec<(na_domain::EventId, i64)>,
    ) -> Result<usize> {
        let handle = self
            .client
            .relay(relay)
            .await
            .map_err(|e| relay_error(relay, e))?;
        let items: Vec<(EventId, Timestamp)> = ours
            .into_iter()
            .map(|(id, at)| {
                (
                    EventId::from_byte_array(id),
                    Timestamp::from(at.max(0) as u64),
                )
            })
            .collect();
        let opts = SyncOptions::default()
            .direction(SyncDirection::Down)
            .initial_timeout(self.request_timeout);
        let outcome = handle
            .sync_with_items(filter, items, &opts)
            .await
            .map_err(|e| relay_error(relay, e))?;
        self.pipeline.flush().await?;
        Ok(outcome.remote.len())
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.pipeline.stats.snapshot()
    }
}

impl PageSource for Session {
    async fn page(&self, relay: &RelayUrl, filter: Filter) -> Result<Page> {
        if self.pipeline.commands.is_closed() {
            return Err(Error::PipelineStopped);
        }
        let n = self.next_sub.fetch_add(1, Ordering::Relaxed);
        let id = SubscriptionId::new(format!("na-page-{n}"));
        let done = self.pipeline.registry.register(relay, id.as_str());
        let sent = self
            .client
            .subscribe_with_id_to([relay], id.clone(), filter, None)
            .await;
        let result = match sent {
            Ok(out) if out.success.contains(relay) => {
                match tokio::time::timeout(self.request_timeout, done).await {
                    Ok(Ok(Ok(page))) => Ok(page),
                    Ok(Ok(Err(message))) => Err(Error::Relay {
                        relay: relay.to_string(),
                        message,
                    }),
                    Ok(Err(_)) => Err(Error::PipelineStopped),
                    Err(_) => Err(Error::Relay {
                        relay: relay.to_string(),
                        message: "timed out waiting for EOSE".into(),
                    }),
                }
            }
            Ok(out) => Err(Error::Relay {
                relay: relay.to_string(),
                message: out
                    .failed
                    .get(relay)
                    .cloned()
                    .unwrap_or_else(|| "not connected".into()),
            }),
            Err(e) => Err(relay_error(relay, e)),
        };
        self.pipeline.registry.remove(relay, id.as_str());
        self.client.unsubscribe(&id).await;
        if let Err(e) = &result {
            warn!(error = %e, "page request failed");
        }
        result
    }
}

fn relay_error(relay: &RelayUrl, e: impl std::fmt::Display) -> Error {
    Error::Relay {
        relay: relay.to_string(),
        message: e.to_string(),
    }
}

pub(crate) fn ingested_kinds() -> impl Iterator<Item = Kind> {
    na_domain::kinds::INGESTED.iter().map(|k| Kind::from(*k))
}
