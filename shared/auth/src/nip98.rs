//! NIP-98 HTTP auth: `Authorization: Nostr <base64 of a signed kind-27235 event>` whose `u`
//! tag is the request's absolute URL, `method` its method and, when the request has a
//! body, `payload` the SHA-256 of the body.
//!
//! The `nostr` crate parses and verifies the event (id and BIP-340 signature) and names
//! the kind and methods; its `verify_auth_header` does not fit: it returns no event id
//! (the replay cache needs one), accepts events from 30 s in the future to 60 s in the past
//! (we take ±[`MAX_SKEW_SECS`]), and compares `u` as a parsed URL, which normalises ports,
//! case and escapes, where we compare the exact string. Replays are the caller's to refuse
//! (each id accepted once, in a store every instance shares).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nostr::nips::nip98::HttpMethod;
use nostr::{Event, EventId, JsonUtil, Kind, PublicKey};
use sha2::{Digest, Sha256};

/// How far an event's `created_at` may be from the server's clock, either way.
pub const MAX_SKEW_SECS: i64 = 60;

/// The most bytes of base64 read (a NIP-98 event is a few hundred bytes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The request an event must authorize.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The absolute URL as the client addressed it: the configured public URL, the path
    /// and the query string.
    pub url: &'a str,
    pub method: &'a str,
    /// The body, when the request has one.
    pub body: Option<&'a [u8]>,
    /// Unix seconds.
    pub now: i64,
}

/// A verified NIP-98 event: who signed it, and its id for the replay cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nip98Auth {
    pub pubkey: PublicKey,
    pub event_id: EventId,
    pub created_at: i64,
}

/// Why a NIP-98 credential is refused; each says what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Nip98Error {
    #[error("the NIP-98 token is not base64 of a Nostr event ({0})")]
    Malformed(String),
    #[error("the NIP-98 token is over {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("a NIP-98 event is kind 27235, not {0}")]
    WrongKind(u16),
    #[error(
        "the NIP-98 event was made at {created_at}, more than {MAX_SKEW_SECS} s from now ({now}); sign a fresh one"
    )]
    Stale { created_at: i64, now: i64 },
    #[error("the NIP-98 event has no {0:?} tag")]
    MissingTag(&'static str),
    #[error(
        "the NIP-98 event authorizes {signed:?}, not this request's URL {expected:?} (the public URL, path and query, exactly)"
    )]
    WrongUrl { signed: String, expected: String },
    #[error("the NIP-98 event authorizes method {signed:?}, not {expected}")]
    WrongMethod { signed: String, expected: String },
    #[error("the NIP-98 event's payload tag is not the SHA-256 of this request's body")]
    WrongPayload,
    #[error("the NIP-98 event's id or signature does not verify")]
    BadSignature,
}

/// Verifies `token` (what follows `Nostr ` in the header) for the request `expected`;
/// the signature is checked last, after every cheap refusal.
///
/// # Errors
/// The first check that fails.
pub fn verify(token: &str, expected: &Expected<'_>) -> Result<Nip98Auth, Nip98Error> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Nip98Error::TooLarge);
    }
    let json = STANDARD
        .decode(token.trim())
        .map_err(|e| Nip98Error::Malformed(e.to_string()))?;
    let event = Event::from_json(&json).map_err(|e| Nip98Error::Malformed(e.to_string()))?;
    if event.kind != Kind::HttpAuth {
        return Err(Nip98Error::WrongKind(event.kind.as_u16()));
    }
    let created_at = i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX);
    if created_at.abs_diff(expected.now) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(Nip98Error::Stale {
            created_at,
            now: expected.now,
        });
    }
    let url = tag(&event, "u").ok_or(Nip98Error::MissingTag("u"))?;
    if url != expected.url {
        return Err(Nip98Error::WrongUrl {
            signed: url.to_owned(),
            expected: expected.url.to_owned(),
        });
    }
    let method = tag(&event, "method").ok_or(Nip98Error::MissingTag("method"))?;
    let same_method = method
        .parse::<HttpMethod>()
        .is_ok_and(|m| m.as_str() == expected.method);
    if !same_method {
        return Err(Nip98Error::WrongMethod {
            signed: method.to_owned(),
            expected: expected.method.to_owned(),
        });
    }
    if let Some(body) = expected.body.filter(|b| !b.is_empty()) {
        let payload = tag(&event, "payload").ok_or(Nip98Error::MissingTag("payload"))?;
        let digest = Sha256::digest(body);
        if !payload.eq_ignore_ascii_case(&hex::encode(digest)) {
            return Err(Nip98Error::WrongPayload);
        }
    }
    event.verify().map_err(|_| Nip98Error::BadSignature)?;
    Ok(Nip98Auth {
        pubkey: event.pubkey,
        event_id: event.id,
        created_at,
    })
}

/// The value of the first tag named `name`.
fn tag<'e>(event: &'e Event, name: &str) -> Option<&'e str> {
    event.tags.iter().find_map(|t| match t.as_slice() {
        [n, value, ..] if n == name => Some(value.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

    use nostr::{EventBuilder, Keys, Tag, Timestamp};

    use super::*;

    const URL: &str = "https://api.example/api/v2/analytics/users/ab/backfill";

    fn token(keys: &Keys, kind: u16, tags: &[&[&str]], at: i64) -> String {
        let tags = tags.iter().map(|t| Tag::parse(t.iter().copied()).unwrap());
        let event = EventBuilder::new(Kind::from(kind), "")
            .tags(tags)
            .custom_created_at(Timestamp::from(u64::try_from(at).unwrap()))
            .sign_with_keys(keys)
            .unwrap();
        STANDARD.encode(event.as_json())
    }

    fn expected(body: Option<&[u8]>) -> Expected<'_> {
        Expected {
            url: URL,
            method: "POST",
            body,
            now: 1_800_000_000,
        }
    }

    #[test]
    fn a_fresh_event_for_this_request_verifies_and_each_mistake_is_named() {
        let keys = Keys::generate();
        let now = 1_800_000_000;
        let body = br#"{"since":1}"#;
        let payload = hex::encode(Sha256::digest(body));
        let good: &[&[&str]] = &[&["u", URL], &["method", "POST"], &["payload", &payload]];
        let auth = verify(&token(&keys, 27235, good, now - 59), &expected(Some(body))).unwrap();
        assert_eq!(auth.pubkey, keys.public_key());
        // Without a body no payload is asked for.
        verify(&token(&keys, 27235, &good[..2], now + 60), &expected(None)).unwrap();

        let refused = |tags: &[&[&str]], kind: u16, at: i64| {
            verify(&token(&keys, kind, tags, at), &expected(Some(body))).unwrap_err()
        };
        assert_eq!(refused(good, 1, now), Nip98Error::WrongKind(1));
        assert!(matches!(
            refused(good, 27235, now - 61),
            Nip98Error::Stale { .. }
        ));
        assert!(matches!(
            refused(good, 27235, now + 61),
            Nip98Error::Stale { .. }
        ));
        let other_url = format!("{URL}?x=1");
        assert!(matches!(
            refused(
                &[
                    &["u", &other_url],
                    &["method", "POST"],
                    &["payload", &payload]
                ],
                27235,
                now
            ),
            Nip98Error::WrongUrl { .. }
        ));
        // A URL that parses the same is still not the same string.
        let with_port = URL.replace("api.example", "api.example:443");
        assert!(matches!(
            refused(
                &[
                    &["u", &with_port],
                    &["method", "POST"],
                    &["payload", &payload]
                ],
                27235,
                now
            ),
            Nip98Error::WrongUrl { .. }
        ));
        assert!(matches!(
            refused(
                &[&["u", URL], &["method", "GET"], &["payload", &payload]],
                27235,
                now
            ),
            Nip98Error::WrongMethod { .. }
        ));
        assert_eq!(
            refused(&good[..2], 27235, now),
            Nip98Error::MissingTag("payload")
        );
        let other = hex::encode(Sha256::digest(b"{}"));
        assert_eq!(
            refused(
                &[&["u", URL], &["method", "POST"], &["payload", &other]],
                27235,
                now
            ),
            Nip98Error::WrongPayload
        );
        assert!(matches!(
            verify("not base64!", &expected(None)),
            Err(Nip98Error::Malformed(_))
        ));
        assert_eq!(
            verify(&"A".repeat(MAX_TOKEN_BYTES + 1), &expected(None)),
            Err(Nip98Error::TooLarge)
        );
    }

    #[test]
    fn a_tampered_event_fails_its_signature() {
        let keys = Keys::generate();
        let now = 1_800_000_000;
        let signed = token(
            &keys,
            27235,
            &[&["u", "https://x/"], &["method", "POST"]],
            now,
        );
        let mut event: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&signed).unwrap()).unwrap();
        event["tags"][0][1] = URL.into();
        let forged = STANDARD.encode(event.to_string());
        assert_eq!(
            verify(&forged, &expected(None)),
            Err(Nip98Error::BadSignature)
        );
    }

    #[tokio::test]
    async fn the_nostr_crates_client_header_verifies_here() {
        // What a client built with the nostr crate sends (the header the TS client mirrors).
        let keys = Keys::generate();
        let header = nostr::nips::nip98::HttpData::new(URL.parse().unwrap(), HttpMethod::GET)
            .to_authorization(&keys)
            .await
            .unwrap();
        let token = header.strip_prefix("Nostr ").unwrap();
        let now = i64::try_from(Timestamp::now().as_secs()).unwrap();
        let auth = verify(
            token,
            &Expected {
                url: URL,
                method: "GET",
                body: None,
                now,
            },
        )
        .unwrap();
        assert_eq!(auth.pubkey, keys.public_key());
    }
}
