//! Interaction facts: what an event did, to whom, in one normalized row each.

use na_metrics_abi::{class, flag};

use crate::event::{EventId, Pubkey};

/// What a fact records, numbered as `na_metrics_abi::class` (stored; never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i16)]
pub enum FactClass {
    /// A kind 1 that is not a reply.
    Note = class::NOTE as i16,
    /// A kind 1 reply (NIP-10); target = its parent.
    Reply = class::REPLY as i16,
    /// A kind 1111 comment (NIP-22); target = its parent.
    Comment = class::COMMENT as i16,
    /// A kind 7 reaction (NIP-25); dims: class, content.
    Reaction = class::REACTION as i16,
    /// A kind 6 or 16 repost (NIP-18).
    Repost = class::REPOST as i16,
    /// A `q` tag on kind 1/1111 (NIP-18).
    Quote = class::QUOTE as i16,
    /// A `p` tag on a kind 1 (one per distinct pubkey).
    Mention = class::MENTION as i16,
    /// A kind 9735 zap receipt (NIP-57): actor = the zap request's author, subject = the
    /// receipt's `p`, amount from the invoice; or, flagged invalid, the reason it fails.
    Zap = class::ZAP as i16,
    /// A kind 30023 article version (NIP-23); target = its coordinate.
    Article = class::ARTICLE as i16,
    /// One reference of a kind 5 deletion (NIP-09).
    Deletion = class::DELETION as i16,
    /// A kind 3 follow list (NIP-02); dims: how it was taken (`follows::ListVerdict`).
    FollowList = class::FOLLOW_LIST as i16,
    /// A follow in a follower's first list (NIP-02): counts in `follower_count`, not as a gain.
    /// actor = follower, subject = followee.
    FollowBaseline = class::FOLLOW_BASELINE as i16,
    /// A follow added since the follower's previous accepted list.
    FollowGained = class::FOLLOW_GAINED as i16,
    /// A follow removed since the follower's previous accepted list.
    FollowLost = class::FOLLOW_LOST as i16,
}

impl FactClass {
    /// Classes whose facts can target an event and credit its author: what others do to a
    /// note (its drilldown).
    pub const ABOUT_AN_EVENT: [FactClass; 6] = [
        FactClass::Reply,
        FactClass::Comment,
        FactClass::Reaction,
        FactClass::Repost,
        FactClass::Quote,
        FactClass::Zap,
    ];

    /// Every class, in id order.
    pub const ALL: [FactClass; 14] = [
        FactClass::Note,
        FactClass::Reply,
        FactClass::Comment,
        FactClass::Reaction,
        FactClass::Repost,
        FactClass::Quote,
        FactClass::Mention,
        FactClass::Zap,
        FactClass::Article,
        FactClass::Deletion,
        FactClass::FollowList,
        FactClass::FollowBaseline,
        FactClass::FollowGained,
        FactClass::FollowLost,
    ];

    pub fn as_i16(self) -> i16 {
        self as i16
    }

    /// Classes credited to the author of the target event (NOSTR-SEMANTICS.md, "Subject").
    pub fn subject_is_target_author(self) -> bool {
        matches!(
            self,
            FactClass::Reply
                | FactClass::Comment
                | FactClass::Reaction
                | FactClass::Repost
                | FactClass::Quote
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FactClass::Note => "note",
            FactClass::Reply => "reply",
            FactClass::Comment => "comment",
            FactClass::Reaction => "reaction",
            FactClass::Repost => "repost",
            FactClass::Quote => "quote",
            FactClass::Mention => "mention",
            FactClass::Zap => "zap",
            FactClass::Article => "article",
            FactClass::Deletion => "deletion",
            FactClass::FollowList => "follow_list",
            FactClass::FollowBaseline => "follow_baseline",
            FactClass::FollowGained => "follow_gained",
            FactClass::FollowLost => "follow_lost",
        }
    }
}

/// Bit flags stored with a fact (`na_metrics_abi::flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FactFlags(pub i32);

impl FactFlags {
    /// The target event is not known yet: the subject is the event's hint (or none).
    /// Storage re-attributes the fact when the target arrives.
    pub const UNRESOLVED: i32 = flag::UNRESOLVED as i32;
    /// actor == subject.
    pub const SELF: i32 = flag::SELF as i32;
    /// A zap receipt that failed NIP-57 validation (the reason is in `dims.failure`).
    pub const INVALID: i32 = flag::INVALID as i32;
    /// The event was deleted by its author (NIP-09): it counts nowhere.
    pub const DELETED: i32 = flag::DELETED as i32;
    /// A valid zap receipt for a payment another receipt with a smaller (created_at, id)
    /// already reports: a payment counts once.
    pub const DUPLICATE_PAYMENT: i32 = flag::DUPLICATE_PAYMENT as i32;
    /// An article version of a coordinate that another version already published (NIP-23):
    /// an edit, not a publication.
    pub const EDIT: i32 = flag::EDIT as i32;
    /// The event's NIP-40 expiration has passed: it counts nowhere.
    pub const EXPIRED: i32 = flag::EXPIRED as i32;
    /// A mention of the pubkey whose event the same event replies to or quotes: not counted
    /// by `mentions_received` (storage keeps it current through re-attribution).
    pub const MENTIONS_TARGET_AUTHOR: i32 = flag::MENTIONS_TARGET_AUTHOR as i32;

    pub fn has(self, bit: i32) -> bool {
        self.0 & bit != 0
    }
}

/// What an interaction points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Event(EventId),
    /// An addressable coordinate `kind:pubkey:d`.
    Coordinate(String),
}

/// One derived row. `seq` orders several facts of one event and makes them unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub class: FactClass,
    pub seq: i16,
    pub actor: Pubkey,
    pub subject: Option<Pubkey>,
    pub target: Option<Target>,
    pub amount_msats: Option<i64>,
    pub flags: FactFlags,
    pub dims: Option<serde_json::Value>,
    /// NIP-40 `expiration` of the event (unix seconds).
    pub expires_at: Option<i64>,
}

impl Fact {
    pub fn target_event(&self) -> Option<&EventId> {
        match &self.target {
            Some(Target::Event(id)) => Some(id),
            _ => None,
        }
    }

    pub fn target_coordinate(&self) -> Option<&str> {
        match &self.target {
            Some(Target::Coordinate(c)) => Some(c),
            _ => None,
        }
    }

    /// This fact of the event `event_id` created at `created_at`, as the plugin contract
    /// hands it over.
    pub fn to_contract(&self, created_at: i64, event_id: EventId) -> na_metrics_abi::Fact {
        na_metrics_abi::Fact {
            created_at,
            event_id,
            seq: self.seq,
            class: self.class.as_i16() as u16,
            flags: self.flags.0 as u32,
            actor: self.actor,
            subject: self.subject,
            target_event: self.target_event().copied(),
            target_coord: self.target_coordinate().map(str::to_owned),
            amount_msats: self.amount_msats,
            expires_at: self.expires_at,
            dims: contract_dims(self.dims.as_ref()),
        }
    }
}

/// A fact's dimensions as the plugin contract carries them: string pairs, a value that is
/// not a string (the numbers of a follow list's dims) as its JSON text.
pub fn contract_dims(dims: Option<&serde_json::Value>) -> Vec<(String, String)> {
    match dims {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => Vec::new(),
    }
}
