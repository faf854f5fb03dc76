//! The canonical domain of nostr-analytics: what a verified Nostr event is, how its id and
//! signature are checked (NIP-01), and how an event becomes interaction facts. Pure code,
//! no I/O, so every rule can be tested exhaustively and reused by ingest and query alike.

pub mod event;
pub mod facts;
pub mod follows;
pub mod granularity;
pub mod kinds;
pub mod lnurl;
pub mod normalize;
pub mod verify;
pub mod zap;

pub use event::{EventId, Pubkey, RawEvent, Tag};
pub use facts::{Fact, FactClass, FactFlags};
pub use granularity::{BucketRange, Granularity, TimeRange};
pub use normalize::normalize;
pub use verify::{Rejection, VerifiedEvent, verify, verify_known};

/// Events dated further than this past the receiver's clock are rejected (NOSTR-SEMANTICS.md).
pub const MAX_FUTURE_SKEW_SECS: i64 = 15 * 60;
