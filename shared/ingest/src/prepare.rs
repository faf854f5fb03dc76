//! From an event as delivered to what a write batch carries: parsed, verified (NIP-01 id
//! and BIP-340 signature, not too far in the future) and normalized into facts. Storage
//! writes what this makes and checks nothing itself. One event at a time here for tests,
//! benchmarks and the demo data; a relay's batch in parallel, each distinct (id, signature)
//! checked once (`check_batch`); a dump's lines alike (`check_events`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use na_domain::{EventId, RawEvent, Rejection, VerifiedEvent};
use na_storage::{IngestBatch, NewEvent, Tally};
use rayon::prelude::*;
use serde::Deserialize;

/// A verified event with its facts, as seen on `relays`.
pub fn new_event(event: VerifiedEvent, relays: Vec<i16>) -> NewEvent {
    NewEvent {
        facts: na_domain::normalize(&event),
        event,
        relays,
    }
}

/// Parses, verifies (at `now`, Unix seconds) and normalizes one event's JSON.
///
/// # Errors
/// Why the event is refused.
pub fn event_from_json(json: &str, relay: i16, now: i64) -> Result<NewEvent, Rejection> {
    let raw = RawEvent::from_json(json).map_err(|e| Rejection::Malformed(e.to_string()))?;
    Ok(new_event(na_domain::verify(raw, now)?, vec![relay]))
}

/// A batch of events given as JSON, all from `relay`, verified at `now` (tests, benchmarks
/// and the demo data; live ingest builds batches as relays deliver).
///
/// # Errors
/// The first event refused, and why.
pub fn batch_from_json<S: AsRef<str>>(
    events: impl IntoIterator<Item = S>,
    relay: i16,
    now: i64,
) -> Result<IngestBatch, Rejection> {
    Ok(IngestBatch {
        events: events
            .into_iter()
            .map(|e| event_from_json(e.as_ref(), relay, now))
            .collect::<Result<_, _>>()?,
        ..Default::default()
    })
}

pub(crate) struct Pending {
    pub(crate) relay: String,
    pub(crate) relay_id: i16,
    pub(crate) text: String,
    /// When it was read from a relay's socket, for an event sent live (after the relay's
    /// end of stored events); `None` for stored events, catch-up and file imports.
    pub(crate) received_live: Option<DateTime<Utc>>,
}

/// One delivery on its way through the checks, computed on the rayon pool.
pub(crate) struct Delivery<T> {
    pub(crate) relay: String,
    pub(crate) relay_id: i16,
    pub(crate) sub: Option<String>,
    /// Id and time of anything that parsed as an event, valid or not (for paging).
    pub(crate) item: Option<(EventId, i64)>,
    pub(crate) result: Result<T, Rejection>,
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
pub(crate) type Parsed = Delivery<RawEvent>;
/// Fully checked and normalized.
pub(crate) type Checked = Delivery<NewEvent>;

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
            received_live: None,
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
pub(crate) fn check_batch(
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
                Ok(new_event(event, vec![relay_id]))
            })
        })
        .collect()
}
