//! Identifiers as users paste them: hex, NIP-19 bech32, or `nostr:` URIs.

use nostr::nips::nip19::{FromBech32, Nip19Event, Nip19Profile};
use nostr::{EventId, PublicKey};

use crate::ApiError;

/// A job's or key's id (`what`) from a path.
///
/// # Errors
/// Not a UUID: a 400 naming it.
pub(crate) fn parse_uuid(what: &str, s: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s)
        .map_err(|_| ApiError::bad_request(format!("{what} id {s:?} is not a UUID")))
}

/// Without its `nostr:` prefix; refused when it has capitals, or is hex other than 64
/// digits (NIP-01's and NIP-19's forms, the only ones the OpenAPI document allows).
fn strip_uri(s: &str) -> Option<&str> {
    let bare = s.strip_prefix("nostr:").unwrap_or(s);
    let hexlike = bare.bytes().all(|b| b.is_ascii_hexdigit());
    let lowercase = !bare.bytes().any(|b| b.is_ascii_uppercase());
    (lowercase && (!hexlike || bare.len() == 64)).then_some(bare)
}

/// A pubkey given as hex, npub, nprofile or a `nostr:` URI of one, that is a BIP-340
/// x-only point on the curve (no event can be signed by anything else).
///
/// # Errors
/// [`ApiError::BadRequest`] saying which forms are accepted, or that the key is no point.
pub fn parse_pubkey(s: &str) -> Result<PublicKey, ApiError> {
    let key = strip_uri(s)
        .and_then(|bare| {
            PublicKey::parse(bare)
                .or_else(|_| Nip19Profile::from_bech32(bare).map(|p| p.public_key))
                .ok()
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "pubkey {s:?} is not a hex public key, npub or nprofile"
            ))
        })?;
    key.xonly().map_err(|_| {
        ApiError::bad_request(format!(
            "pubkey {s:?} is not a valid public key: it is not a point on secp256k1"
        ))
    })?;
    Ok(key)
}

/// An event id given as hex, note, nevent or a `nostr:` URI of one.
///
/// # Errors
/// [`ApiError::BadRequest`] saying which forms are accepted.
pub fn parse_event_id(s: &str) -> Result<EventId, ApiError> {
    strip_uri(s)
        .and_then(|bare| {
            EventId::parse(bare)
                .or_else(|_| Nip19Event::from_bech32(bare).map(|e| e.event_id))
                .ok()
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "event id {s:?} is not a hex event id, note or nevent"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
mod tests {
    use super::*;
    use nostr::nips::nip19::ToBech32;

    #[test]
    fn accepts_every_form_and_names_the_bad_one() {
        let keys = nostr::Keys::generate();
        let pk = keys.public_key();
        let profile =
            Nip19Profile::new(pk, [nostr::RelayUrl::parse("wss://relay.example").unwrap()])
                .to_bech32()
                .unwrap();
        for form in [
            pk.to_hex(),
            pk.to_bech32().unwrap(),
            profile.clone(),
            format!("nostr:{profile}"),
        ] {
            assert_eq!(parse_pubkey(&form).unwrap(), pk, "{form}");
        }
        let id = EventId::all_zeros();
        let nevent = Nip19Event::new(id).to_bech32().unwrap();
        for form in [id.to_hex(), id.to_bech32().unwrap(), nevent] {
            assert_eq!(parse_event_id(&form).unwrap(), id, "{form}");
        }
        let e = parse_pubkey("npub1nope").unwrap_err();
        assert_eq!(e.status_code(), axum::http::StatusCode::BAD_REQUEST);
        // 64 hex digits that are no point on the curve: no one can sign as them.
        assert!(
            parse_pubkey(&pk.to_hex().to_uppercase()).is_err(),
            "hex is lowercase"
        );
        for not_a_point in ["00".repeat(32), "ff".repeat(32)] {
            let e = parse_pubkey(&not_a_point).unwrap_err();
            assert_eq!(
                e.status_code(),
                axum::http::StatusCode::BAD_REQUEST,
                "{not_a_point}"
            );
        }
        assert!(
            parse_event_id(&pk.to_bech32().unwrap()).is_err(),
            "an npub is not an event id"
        );
    }
}
