//! Hand-written facts for plugin tests: [`Fact::of`] and a chain of setters.
//!
//! ```
//! use na_metrics_abi::{Fact, class, flag};
//! let like = Fact::of(class::REACTION, [1; 32], 1_700_000_000)
//!     .subject([2; 32])
//!     .target_event([3; 32])
//!     .dim("class", "like");
//! assert_eq!(like.flags & flag::SELF, 0);
//! ```

use crate::Fact;

impl Fact {
    /// A fact of `class` by `actor` at `created_at` (Unix seconds), with no target, subject
    /// or flags. Its event id is derived from the three, so two facts built alike are one
    /// event; set [`Fact::event_id`] to tell them apart.
    pub fn of(class: u16, actor: [u8; 32], created_at: i64) -> Self {
        let mut event_id = actor;
        event_id[..8].copy_from_slice(&created_at.to_le_bytes());
        event_id[8..10].copy_from_slice(&class.to_le_bytes());
        Fact {
            created_at,
            event_id,
            class,
            actor,
            ..Fact::default()
        }
    }

    pub fn event_id(mut self, id: [u8; 32]) -> Self {
        self.event_id = id;
        self
    }

    /// Which fact of its event this is (an event with several facts numbers them 0, 1, ...).
    pub fn seq(mut self, seq: i16) -> Self {
        self.seq = seq;
        self
    }

    /// Who it is credited to: the author of the target event for an interaction, the
    /// followee for a follow flow. Sets [`flag::SELF`](crate::flag::SELF) when it is the actor,
    /// as ingest does.
    pub fn subject(mut self, subject: [u8; 32]) -> Self {
        self.subject = Some(subject);
        if subject == self.actor {
            self.flags |= crate::flag::SELF;
        } else {
            self.flags &= !crate::flag::SELF;
        }
        self
    }

    pub fn target_event(mut self, id: [u8; 32]) -> Self {
        self.target_event = Some(id);
        self
    }

    /// An addressable target, `kind:pubkey:d`.
    pub fn target_coord(mut self, coordinate: &str) -> Self {
        self.target_coord = Some(coordinate.to_owned());
        self
    }

    /// A zap's amount, in millisatoshis.
    pub fn amount_msats(mut self, msats: i64) -> Self {
        self.amount_msats = Some(msats);
        self
    }

    /// NIP-40: when the event expires (Unix seconds).
    pub fn expires_at(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Adds flag bits ([`flag`](crate::flag)).
    pub fn flag(mut self, bits: u32) -> Self {
        self.flags |= bits;
        self
    }

    /// Adds (or replaces) a dimension.
    pub fn dim(mut self, key: &str, value: &str) -> Self {
        self.dims.retain(|(k, _)| k != key);
        self.dims.push((key.to_owned(), value.to_owned()));
        self
    }
}
