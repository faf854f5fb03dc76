//! The offline demo: a loopback relay holding a generated dataset, and a trickle of new
//! reactions so the numbers move while you watch.

use std::time::Duration;

use anyhow::Context;
use nostr_relay_builder::prelude::*;
use tokio::sync::watch;
use tracing::warn;

pub struct Demo {
    pub url: String,
    pub events: usize,
    pub target_npub: String,
    /// The target's note most events refer to, as `note1…`.
    pub busiest_note: Option<String>,
    _relay: LocalRelay,
}

/// Starts the demo relay with the dataset of `seed`, ending where it ended the first time
/// this database saw the seed: the same signed events every start, so nothing counts twice.
pub async fn start(
    db: &na_storage::Db,
    seed: u64,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Demo> {
    let end = db
        .demo_end(seed, chrono::Utc::now())
        .await
        .context("the demo dataset's end")?
        .timestamp()
        .max(0) as u64;
    let data = tokio::task::spawn_blocking(move || {
        na_datagen::generate(na_datagen::Tier::Small, seed, end)
    })
    .await?
    .context("generate demo data")?;
    let database = MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: None,
    });
    for ev in &data.events {
        database.save_event(ev).await.context("seed demo relay")?;
    }
    let relay = LocalRelay::new(
        RelayBuilder::default()
            .addr([127, 0, 0, 1].into())
            .database(database)
            .rate_limit(RateLimit {
                max_reqs: 10_000,
                notes_per_minute: 1_000_000,
            }),
    );
    relay.run().await.context("start demo relay")?;
    let url = relay.url().await.to_string();
    let target = data.target;
    let notes: Vec<EventId> = data
        .events
        .iter()
        .filter(|e| e.pubkey == target && e.kind == Kind::TextNote)
        .map(|e| e.id)
        .collect();
    let mut refs: std::collections::HashMap<EventId, usize> =
        notes.iter().map(|id| (*id, 0)).collect();
    for e in &data.events {
        for id in e.tags.event_ids() {
            if let Some(n) = refs.get_mut(id) {
                *n += 1;
            }
        }
    }
    let busiest_note = refs
        .into_iter()
        .max_by_key(|(id, n)| (*n, *id))
        .and_then(|(id, _)| id.to_bech32().ok());
    tokio::spawn(trickle(url.clone(), target, notes, stop));
    Ok(Demo {
        url,
        events: data.distinct().len(),
        target_npub: target.to_bech32().unwrap_or_else(|_| target.to_hex()),
        busiest_note,
        _relay: relay,
    })
}

/// Every few seconds a new user reacts to one of the target's notes.
async fn trickle(
    url: String,
    target: PublicKey,
    notes: Vec<EventId>,
    mut stop: watch::Receiver<bool>,
) {
    let client = nostr_sdk::Client::default();
    if client.add_relay(&url).await.is_err() {
        return;
    }
    client.connect().await;
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let Some(note) = notes.get(n % notes.len().max(1)) else {
            return;
        };
        n += 1;
        let reaction = EventBuilder::new(Kind::Reaction, "+")
            .tag(Tag::event(*note))
            .tag(Tag::public_key(target))
            .sign_with_keys(&Keys::generate());
        match reaction {
            Ok(ev) => {
                if let Err(e) = client.send_event(&ev).await {
                    warn!(error = %e, "demo publisher");
                }
            }
            Err(e) => warn!(error = %e, "demo publisher"),
        }
    }
}
