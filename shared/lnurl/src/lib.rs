//! NIP-57 asks that a zap receipt be signed by the `nostrPubkey` of the recipient's
//! LNURL-pay endpoint. This crate fetches that key: [`HttpResolver`] over the network
//! (refusing private addresses, so a lightning address cannot point ingest at internal
//! services), [`CachedResolver`] in front of any resolver. Ingest turns the answer into a
//! [`na_domain::lnurl::LnurlVerdict`].

mod cache;
mod http;

use futures_util::future::BoxFuture;
use na_domain::Pubkey;

pub use cache::{CacheOptions, CachedResolver};
pub use http::{HttpOptions, HttpResolver};

/// What an LNURL-pay endpoint says about Nostr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// `allowsNostr: true` with this `nostrPubkey`.
    NostrPubkey(Pubkey),
    /// The endpoint answered but does not support zaps (no or invalid `nostrPubkey`).
    NoNostr,
    /// No answer: unreachable, refused, an error status, a body that is not a pay request.
    Failed(String),
}

impl Lookup {
    pub fn nostr_pubkey(&self) -> Option<&Pubkey> {
        match self {
            Lookup::NostrPubkey(pk) => Some(pk),
            _ => None,
        }
    }
}

/// Looks up the `nostrPubkey` of an LNURL-pay URL. Implementations never fail: a failure is
/// a [`Lookup::Failed`], because a missing network must not turn valid zaps into failures.
pub trait NostrPubkeyResolver: Send + Sync {
    fn lookup<'a>(&'a self, pay_url: &'a str) -> BoxFuture<'a, Lookup>;
}
