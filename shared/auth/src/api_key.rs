//! API keys for services: `na_<key id>_<secret>`, shown once when made and stored only as
//! the SHA-256 of the whole key. A key is 256 random bits, so a plain hash is enough (slow
//! password hashes guard guessable secrets; these are not), and the id lets the server find
//! the one row to compare without a scan.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Every key starts with this (secret scanners can match it).
pub const PREFIX: &str = "na_";

/// What a key may do, beyond what anonymous callers may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Reads, at the key's rate, including what names other users' actions.
    Read,
    /// Backfills of any pubkey.
    Backfill,
    /// The admin routes (plugins, backfills, jobs, API keys).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Backfill, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Backfill => "backfill",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a scope (read, backfill, admin)"))
    }
}

/// A key as presented: its id, and the hash to compare with the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: Uuid,
    pub hash: [u8; 32],
}

/// A new key: the text to show once, and what to store.
#[derive(Clone)]
pub struct NewKey {
    pub id: Uuid,
    pub token: String,
    pub hash: [u8; 32],
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A fresh key from the operating system's random source.
pub fn generate() -> NewKey {
    let id = Uuid::new_v4();
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!("{PREFIX}{}_{}", id.simple(), hex::encode(secret));
    let hash = hash(&token);
    NewKey { id, token, hash }
}

/// The key in `token`, when it has a key's shape (else it is some other bearer token).
pub fn parse(token: &str) -> Option<PresentedKey> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(PresentedKey {
        id: Uuid::try_parse(id).ok()?,
        hash: hash(token),
    })
}

/// Compares two hashes in time that does not depend on where they differ.
pub fn same_hash(a: &[u8; 32], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

    use super::*;

    #[test]
    fn a_generated_key_parses_to_its_id_and_hash_and_nothing_else_does() {
        let key = generate();
        assert!(key.token.starts_with(PREFIX));
        let presented = parse(&key.token).unwrap();
        assert_eq!(presented.id, key.id);
        assert!(same_hash(&presented.hash, &key.hash));
        assert!(
            !format!("{key:?}").contains(&key.token[40..]),
            "never logged"
        );

        let other = generate();
        assert_ne!(other.token, key.token);
        assert!(!same_hash(&other.hash, &key.hash));
        // One character changed: the same id, a different hash.
        let mut flipped = key.token.clone();
        let last = if flipped.ends_with('0') { "1" } else { "0" };
        flipped.replace_range(flipped.len() - 1.., last);
        let tampered = parse(&flipped).unwrap();
        assert_eq!(tampered.id, key.id);
        assert!(!same_hash(&tampered.hash, &key.hash));

        for not_a_key in [
            "",
            "na_",
            "s3cret",
            &key.token[..key.token.len() - 1],
            &key.token.replace("na_", "xx_"),
        ] {
            assert_eq!(parse(not_a_key), None, "{not_a_key:?}");
        }
        assert!(!same_hash(&key.hash, &key.hash[..31]));
    }

    #[test]
    fn scopes_read_back_from_their_names() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("root".parse::<Scope>().is_err());
    }
}
