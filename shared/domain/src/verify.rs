//! NIP-01 identity: the id is the sha256 of a canonical serialization, signed with BIP-340.

use secp256k1::{Message, SECP256K1, XOnlyPublicKey, schnorr::Signature};
use sha2::{Digest, Sha256};

use crate::MAX_FUTURE_SKEW_SECS;
use crate::event::RawEvent;

/// Why an event was not accepted. Each variant is an ingest counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("id does not match the event's content")]
    BadId,
    #[error("signature does not verify")]
    BadSignature,
    #[error("created_at is more than 15 minutes in the future")]
    TooFarInFuture,
}

impl Rejection {
    /// The counter name this rejection is tallied under.
    pub fn outcome(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::BadId => "bad_id",
            Rejection::BadSignature => "bad_signature",
            Rejection::TooFarInFuture => "future",
        }
    }
}

/// An event whose id and signature verified and whose time is acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent(RawEvent);

impl VerifiedEvent {
    pub fn into_inner(self) -> RawEvent {
        self.0
    }
}

impl std::ops::Deref for VerifiedEvent {
    type Target = RawEvent;
    fn deref(&self) -> &RawEvent {
        &self.0
    }
}

/// Checks time, id and signature, cheapest first.
///
/// # Errors
/// The first [`Rejection`] that applies.
pub fn verify(ev: RawEvent, now: i64) -> Result<VerifiedEvent, Rejection> {
    verify_known(ev, now, None)
}

/// As [`verify`], but skips the Schnorr check when `known_sig` is the signature this id
/// verified with before. The recomputed id commits to pubkey, time, kind, tags and
/// content, so the same id with the same signature bytes is the same signed event; a
/// tampered copy changes the id (caught) or the signature (checked in full).
///
/// # Errors
/// The first [`Rejection`] that applies.
pub fn verify_known(
    ev: RawEvent,
    now: i64,
    known_sig: Option<&[u8; 64]>,
) -> Result<VerifiedEvent, Rejection> {
    precheck(&ev, now)?;
    if known_sig != Some(&ev.sig) && !signature_valid(&ev) {
        return Err(Rejection::BadSignature);
    }
    Ok(VerifiedEvent(ev))
}

/// The cheap checks: time, then the id against the NIP-01 serialization.
///
/// # Errors
/// [`Rejection::TooFarInFuture`] or [`Rejection::BadId`].
pub fn precheck(ev: &RawEvent, now: i64) -> Result<(), Rejection> {
    if ev.created_at > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
        return Err(Rejection::TooFarInFuture);
    }
    if canonical_id(ev) != ev.id {
        return Err(Rejection::BadId);
    }
    Ok(())
}

/// The BIP-340 signature of `ev.id` by `ev.pubkey` (the expensive part, ~30 µs).
pub fn signature_valid(ev: &RawEvent) -> bool {
    let (Ok(key), Ok(sig)) = (
        XOnlyPublicKey::from_slice(&ev.pubkey),
        Signature::from_slice(&ev.sig),
    ) else {
        return false;
    };
    SECP256K1
        .verify_schnorr(&sig, &Message::from_digest(ev.id), &key)
        .is_ok()
}

/// Parses and verifies one event object.
///
/// # Errors
/// [`Rejection::Malformed`] when it does not parse, else as [`verify`].
pub fn verify_json(json: &str, now: i64) -> Result<VerifiedEvent, Rejection> {
    let ev = RawEvent::from_json(json).map_err(|e| Rejection::Malformed(e.to_string()))?;
    verify(ev, now)
}

/// sha256 of `[0,pubkey,created_at,kind,tags,content]`, serialized as NIP-01 prescribes: no
/// white space, and only `" \ \n \r \t \b \f` escaped. serde_json would also escape other
/// control characters as `\u00XX`, which changes the id of events that contain them.
pub fn canonical_id(ev: &RawEvent) -> [u8; 32] {
    let mut buf = String::with_capacity(160 + ev.content.len() + 80 * ev.tags.len());
    buf.push_str("[0,\"");
    buf.push_str(&hex::encode(ev.pubkey));
    buf.push_str("\",");
    buf.push_str(&ev.created_at.to_string());
    buf.push(',');
    buf.push_str(&ev.kind.to_string());
    buf.push_str(",[");
    for (i, tag) in ev.tags.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push('[');
        for (j, v) in tag.iter().enumerate() {
            if j > 0 {
                buf.push(',');
            }
            push_json_string(&mut buf, v);
        }
        buf.push(']');
    }
    buf.push_str("],");
    push_json_string(&mut buf, &ev.content);
    buf.push(']');
    Sha256::digest(buf.as_bytes()).into()
}

fn push_json_string(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            '\u{8}' => buf.push_str("\\b"),
            '\u{c}' => buf.push_str("\\f"),
            c => buf.push(c),
        }
    }
    buf.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use nostr_sdk::prelude::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};

    fn signed(content: &str) -> RawEvent {
        let keys = Keys::generate();
        let ev = EventBuilder::new(Kind::TextNote, content)
            .tag(Tag::parse(["t", "nostr"]).unwrap())
            .custom_created_at(Timestamp::from(1_700_000_000))
            .sign_with_keys(&keys)
            .unwrap();
        RawEvent::from_json(&ev.as_json()).unwrap()
    }

    #[test]
    fn genuine_events_verify() {
        for content in [
            "hello",
            "quote \" backslash \\ nl \n tab \t",
            "é ✓ \u{2028} 🦀",
        ] {
            let ev = signed(content);
            assert_eq!(canonical_id(&ev), ev.id, "id of {content:?}");
            assert!(verify(ev, 1_700_000_000).is_ok());
        }
    }

    #[test]
    fn tampering_is_caught() {
        let mut ev = signed("hello");
        ev.content.push('!');
        assert_eq!(verify(ev.clone(), 1_700_000_000), Err(Rejection::BadId));

        // A consistent id over forged content still fails the signature.
        ev.id = canonical_id(&ev);
        assert_eq!(verify(ev, 1_700_000_000), Err(Rejection::BadSignature));
    }

    #[test]
    fn a_known_signature_skips_only_the_schnorr_check() {
        let ev = signed("hello");
        let sig = ev.sig;
        assert!(verify_known(ev.clone(), 1_700_000_000, Some(&sig)).is_ok());

        let mut forged = ev.clone();
        forged.sig[0] ^= 1;
        assert_eq!(
            verify_known(forged, 1_700_000_000, Some(&sig)),
            Err(Rejection::BadSignature)
        );

        let mut tampered = ev;
        tampered.content.push('!');
        assert_eq!(
            verify_known(tampered, 1_700_000_000, Some(&sig)),
            Err(Rejection::BadId)
        );
    }

    #[test]
    fn future_limit_is_fifteen_minutes() {
        let ev = signed("x");
        let t = ev.created_at;
        assert!(verify(ev.clone(), t - MAX_FUTURE_SKEW_SECS).is_ok());
        assert_eq!(
            verify(ev, t - MAX_FUTURE_SKEW_SECS - 1),
            Err(Rejection::TooFarInFuture)
        );
    }

    #[test]
    fn control_characters_stay_verbatim() {
        // NIP-01 escapes only seven characters; U+0001 must be hashed as the raw byte.
        let mut ev = signed("a\u{1}b");
        let mut expected = String::from("[0,\"");
        expected.push_str(&hex::encode(ev.pubkey));
        expected.push_str("\",1700000000,1,[[\"t\",\"nostr\"]],\"a\u{1}b\"]");
        let want: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
        assert_eq!(canonical_id(&ev), want);
        ev.id = want;
        assert_ne!(verify(ev, 1_700_000_000), Err(Rejection::BadId));
    }
}
