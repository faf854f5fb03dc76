//! The event kinds the product ingests, and their NIP families.

/// Kinds that feed a metric or the state metrics need (NIP-01/02/09/10/18/22/23/25/57).
pub const INGESTED: &[u16] = &[0, 1, 3, 5, 6, 7, 16, 1111, 9735, 30023];

pub const METADATA: u16 = 0;
pub const TEXT_NOTE: u16 = 1;
pub const FOLLOW_LIST: u16 = 3;
pub const DELETION: u16 = 5;
pub const REPOST: u16 = 6;
pub const REACTION: u16 = 7;
pub const GENERIC_REPOST: u16 = 16;
pub const COMMENT: u16 = 1111;
pub const ZAP_REQUEST: u16 = 9734;
pub const ZAP_RECEIPT: u16 = 9735;
pub const ARTICLE: u16 = 30023;

/// NIP-01 replaceable: latest per (pubkey, kind).
pub fn is_replaceable(kind: u16) -> bool {
    kind == 0 || kind == 3 || (10_000..20_000).contains(&kind)
}

/// NIP-01 addressable: latest per (pubkey, kind, d).
pub fn is_addressable(kind: u16) -> bool {
    (30_000..40_000).contains(&kind)
}

/// NIP-01 "latest wins" between two versions of one replaceable or addressable event,
/// each `(created_at, id)`: later `created_at` wins; on a tie, the lower id. A version never
/// supersedes itself.
pub fn supersedes(candidate: (i64, &[u8; 32]), current: (i64, &[u8; 32])) -> bool {
    candidate.0 > current.0 || (candidate.0 == current.0 && candidate.1 < current.1)
}
