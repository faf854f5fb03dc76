//! The numbers a fact's `class` and `flags` are stored and packed as: the one definition
//! that ingest (`na-domain`), storage's statements, the host and every plugin read.
//! Stored numbers are never reused (docs/metric-semantics.md says what each means).

/// Fact classes.
pub mod class {
    /// A kind 1 that is not a reply.
    pub const NOTE: u16 = 1;
    /// A kind 1 reply (NIP-10).
    pub const REPLY: u16 = 2;
    /// A kind 1111 comment (NIP-22).
    pub const COMMENT: u16 = 3;
    /// A kind 7 reaction (NIP-25).
    pub const REACTION: u16 = 4;
    /// A kind 6 or 16 repost (NIP-18).
    pub const REPOST: u16 = 5;
    /// A `q` tag on kind 1/1111 (NIP-18).
    pub const QUOTE: u16 = 6;
    /// A `p` tag on a kind 1.
    pub const MENTION: u16 = 7;
    /// A kind 9735 zap receipt (NIP-57), valid or flagged invalid.
    pub const ZAP: u16 = 8;
    /// A kind 30023 article version (NIP-23).
    pub const ARTICLE: u16 = 9;
    /// One reference of a kind 5 deletion (NIP-09).
    pub const DELETION: u16 = 10;
    /// A kind 3 follow list (NIP-02).
    pub const FOLLOW_LIST: u16 = 11;
    /// A follow in a follower's first list: in `follower_count`, not a gain.
    pub const FOLLOW_BASELINE: u16 = 12;
    /// A follow added since the follower's previous accepted list.
    pub const FOLLOW_GAINED: u16 = 13;
    /// A follow removed since the follower's previous accepted list.
    pub const FOLLOW_LOST: u16 = 14;
}

/// Fact flags (bits).
pub mod flag {
    /// The target event is not known yet: the subject is the event's hint (or none).
    pub const UNRESOLVED: u32 = 1;
    /// actor == subject.
    pub const SELF: u32 = 2;
    /// A zap receipt that failed NIP-57 validation (`dims.failure` says why).
    pub const INVALID: u32 = 4;
    /// Deleted by its author (NIP-09): counts nowhere.
    pub const DELETED: u32 = 8;
    /// A valid zap receipt for a payment another receipt with a smaller (created_at, id)
    /// already reports: a payment counts once.
    pub const DUPLICATE_PAYMENT: u32 = 16;
    /// An article version of a coordinate another version already published: an edit.
    pub const EDIT: u32 = 32;
    /// The event's NIP-40 expiration has passed: counts nowhere.
    pub const EXPIRED: u32 = 64;
    /// A mention of the pubkey whose event the same event replies to or quotes.
    pub const MENTIONS_TARGET_AUTHOR: u32 = 128;
}
