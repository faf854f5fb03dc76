//! Who is calling and what they may do, with no I/O: NIP-98 events checked against the
//! request ([`nip98`]), API keys made, parsed and hashed ([`api_key`]), the access
//! matrix ([`access`]) and the rate limits' buckets ([`rate`]). Stored keys and the replay cache live in `na-storage`; the HTTP
//! layer that applies all this is the query function's `access` module.

pub mod access;
pub mod api_key;
pub mod nip98;
pub mod rate;

pub use access::{Class, Principal, Refusal, decide};
pub use api_key::Scope;
pub use rate::{Limits, RateClass, RateLimits};
