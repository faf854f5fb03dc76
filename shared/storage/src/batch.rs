//! What a write batch carries: verified events with their facts and the state changes
//! they imply, relay provenance, watermarks and counters; and what writing it did.

use chrono::{DateTime, Utc};
use na_domain::{EventId, Fact, VerifiedEvent};

use crate::ingest_state::Tally;

/// A verified event with its facts and the relays that delivered it in this batch (made by
/// the ingest pipeline: `na_ingest::prepare`).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: VerifiedEvent,
    pub facts: Vec<Fact>,
    pub relays: Vec<i16>,
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

/// What the batch changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events stored for the first time.
    pub inserted: Vec<EventId>,
    /// Deliveries of events that were already stored (or repeated in the batch).
    pub duplicates: u64,
    pub facts: u64,
}
