//! Pages: what one subscription delivered, collected until the batch holding its last
//! event has committed.

use std::collections::HashMap;
use std::sync::Mutex;

use na_domain::EventId;
use nostr_sdk::RelayUrl;
use tokio::sync::oneshot;

use crate::Result;
use crate::relay_key;

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

    pub(super) fn record(&self, relay: &str, sub: &str, item: Option<(EventId, i64)>) {
        if let Some(slot) = self.lock().get_mut(&(relay.to_owned(), sub.to_owned())) {
            slot.page.delivered += 1;
            slot.page.items.extend(item);
        }
    }

    pub(super) fn complete(&self, relay: &str, sub: &str, outcome: Result<(), String>) {
        if let Some(slot) = self.lock().get_mut(&(relay.to_owned(), sub.to_owned()))
            && let Some(tx) = slot.done.take()
        {
            let _ = tx.send(outcome.map(|()| std::mem::take(&mut slot.page)));
        }
    }

    pub(super) fn fail_all(&self, why: &str) {
        for slot in self.lock().values_mut() {
            if let Some(tx) = slot.done.take() {
                let _ = tx.send(Err(why.to_owned()));
            }
        }
    }

    pub(super) fn fail_relay(&self, relay: &str, why: &str) {
        for ((r, _), slot) in self.lock().iter_mut() {
            if r == relay
                && let Some(tx) = slot.done.take()
            {
                let _ = tx.send(Err(why.to_owned()));
            }
        }
    }
}
