//! One-off zaps for tests: a signed zap request inside a receipt with a signed invoice.

use nostr_sdk::prelude::*;
use secp256k1::SecretKey;

use crate::Error;

/// A NIP-57 receipt signed by `wallet` for a zap of `msats` from `sender` to `recipient`,
/// with `request_tags` added to the zap request (an `lnurl` tag, say).
///
/// # Errors
/// [`Error::Signing`] when an event or the invoice cannot be signed.
pub fn zap_receipt(
    sender: &Keys,
    wallet: &Keys,
    recipient: &PublicKey,
    request_tags: Vec<Tag>,
    msats: u64,
    at: u64,
) -> Result<Event, Error> {
    let request = EventBuilder::new(Kind::ZapRequest, "")
        .tag(Tag::public_key(*recipient))
        .tag(Tag::custom(TagKind::Relays, ["wss://relay.example.com"]))
        .tag(Tag::custom(TagKind::Amount, [msats.to_string()]))
        .tags(request_tags)
        .custom_created_at(Timestamp::from(at.saturating_sub(1)))
        // A self-zap's request names its recipient too (nostr drops self p tags by default).
        .allow_self_tagging()
        .sign_with_keys(sender)
        .map_err(|e| Error::Signing(e.to_string()))?;
    let description = request.as_json();
    let node = SecretKey::from_slice(&[7; 32]).map_err(|e| Error::Signing(e.to_string()))?;
    let nonce = *request.id.as_bytes();
    let bolt11 =
        crate::invoice::bolt11(&node, msats, &description, at, nonce).map_err(Error::Signing)?;
    EventBuilder::new(Kind::ZapReceipt, "")
        .tag(Tag::public_key(*recipient))
        .tag(Tag::custom(TagKind::Bolt11, [bolt11]))
        .tag(Tag::custom(TagKind::Description, [description]))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(wallet)
        .map_err(|e| Error::Signing(e.to_string()))
}
