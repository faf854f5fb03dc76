//! What a write batch carries: verified events with their facts and the state changes
//! they imply, relay provenance, watermarks and counters; and what writing it did.

use chrono::{DateTime, Utc};
use na_domain::{EventId, Fact, VerifiedEvent};

use crate::Result;
use crate::ingest_state::Tally;

/// A verified event with its facts and the relays that delivered it in this batch.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: VerifiedEvent,
    pub facts: Vec<Fact>,
    pub relays: Vec<i16>,
}

impl NewEvent {
    /// A verified event with its facts, as seen on `relays`.
    pub fn normalized(event: VerifiedEvent, relays: Vec<i16>) -> Self {
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
    pub fn from_json(json: &str, relay: i16, now: i64) -> Result<Self, na_domain::Rejection> {
        let raw = na_domain::RawEvent::from_json(json)
            .map_err(|e| na_domain::Rejection::Malformed(e.to_string()))?;
        Ok(NewEvent::normalized(
            na_domain::verify(raw, now)?,
            vec![relay],
        ))
    }
}

/// Everything one ingest step commits atomically.
#[derive(Debug, Default)]
pub struct IngestBatch {
    pub events: Vec<NewEvent>,
    /// Rejected events per relay and outcome (verification happens before the batch).
    pub rejected: Vec<Tally>,
    /// Watermarks this batch justifies: (relay, everything before this time is stored).
    pub watermarks: Vec<(i16, DateTime<Utc>)>,
    /// How far the bulk import that read this batch has got, with it.
    pub import: Option<ImportProgress>,
}

/// Where a bulk import stands once its batch is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProgress {
    /// The file, as its canonical path.
    pub source: String,
    /// Bytes of it read: the next import starts here.
    pub offset: i64,
    pub lines: i64,
    /// The file has been read to its end.
    pub finished: bool,
}

impl IngestBatch {
    /// A batch of events given as JSON, all from `relay`, verified at `now` (tests,
    /// benchmarks and the demo data; live ingest builds batches as relays deliver).
    ///
    /// # Errors
    /// The first event refused, and why.
    pub fn from_json<S: AsRef<str>>(
        events: impl IntoIterator<Item = S>,
        relay: i16,
        now: i64,
    ) -> Result<Self, na_domain::Rejection> {
        Ok(IngestBatch {
            events: events
                .into_iter()
                .map(|e| NewEvent::from_json(e.as_ref(), relay, now))
                .collect::<Result<_, _>>()?,
            ..Default::default()
        })
    }
}

/// What the batch changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events stored for the first time.
    pub inserted: Vec<EventId>,
    /// Deliveries of events that were already stored (or repeated in the batch).
    pub duplicates: u64,
    pub facts: u64,
}
