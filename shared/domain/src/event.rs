//! The wire form of an event, parsed once into fixed-size binary fields.

use serde::Deserialize;
use serde::de::Error as _;

/// A 32-byte event id (sha256 of the NIP-01 serialization).
pub type EventId = [u8; 32];
/// A 32-byte x-only public key.
pub type Pubkey = [u8; 32];
/// A tag: a non-empty list of strings; `tag[0]` is its name.
pub type Tag = Vec<String>;

/// An event as a relay sent it: parsed, but neither id nor signature checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub id: EventId,
    pub pubkey: Pubkey,
    pub created_at: i64,
    pub kind: u16,
    pub tags: Vec<Tag>,
    pub content: String,
    pub sig: [u8; 64],
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(borrow)]
    pubkey: &'a str,
    created_at: i64,
    kind: u16,
    tags: Vec<Tag>,
    content: String,
    #[serde(borrow)]
    sig: &'a str,
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        if w.created_at < 0 {
            return Err(D::Error::custom("negative created_at"));
        }
        if w.tags.iter().any(Vec::is_empty) {
            return Err(D::Error::custom("empty tag"));
        }
        Ok(RawEvent {
            id: decode_hex(w.id, "id")?,
            pubkey: decode_hex(w.pubkey, "pubkey")?,
            created_at: w.created_at,
            kind: w.kind,
            tags: w.tags,
            content: w.content,
            sig: decode_hex(w.sig, "sig")?,
        })
    }
}

/// Lowercase hex of exactly `N` bytes, as NIP-01 requires for ids, keys and signatures.
fn decode_hex<const N: usize, E: serde::de::Error>(s: &str, field: &str) -> Result<[u8; N], E> {
    let mut out = [0u8; N];
    if s.len() != 2 * N || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(E::custom(format!(
            "{field}: expected {} lowercase hex characters",
            2 * N
        )));
    }
    hex::decode_to_slice(s, &mut out).map_err(|e| E::custom(format!("{field}: {e}")))?;
    Ok(out)
}

impl RawEvent {
    /// Parses one event object.
    ///
    /// # Errors
    /// When the JSON is not a NIP-01 event (missing or mistyped fields, bad hex, empty tags).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The first value of the first tag named `name`.
    pub fn tag_value(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t[0] == name)
            .and_then(|t| t.get(1))
            .map(String::as_str)
    }

    /// Serializes back to NIP-01 JSON (field order of the spec).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "id": hex::encode(self.id),
            "pubkey": hex::encode(self.pubkey),
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": self.tags,
            "content": self.content,
            "sig": hex::encode(self.sig),
        })
        .to_string()
    }
}

/// Parses a 64-character lowercase hex string into 32 bytes; `None` when it is anything else.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    decode_hex::<32, serde_json::Error>(s, "value").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"id":"a9663055164ab8b30d9524656370c4bf93393bb051b7edf4556f40c5298dc0c7","pubkey":"79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798","created_at":1700000000,"kind":1,"tags":[["p","79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"]],"content":"hi","sig":"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}"#;

    #[test]
    fn parses_and_round_trips() {
        let ev = RawEvent::from_json(SAMPLE).unwrap();
        assert_eq!(ev.kind, 1);
        assert_eq!(ev.created_at, 1_700_000_000);
        assert_eq!(ev.tag_value("p").map(str::len), Some(64));
        assert_eq!(RawEvent::from_json(&ev.to_json()).unwrap(), ev);
    }

    #[test]
    fn rejects_malformed_fields() {
        for (from, to) in [
            ("\"kind\":1", "\"kind\":\"1\""),
            ("\"created_at\":1700000000", "\"created_at\":-5"),
            ("\"id\":\"a966", "\"id\":\"A966"),
            ("\"id\":\"a966", "\"id\":\"a96"),
            ("[[\"p\"", "[[],[\"p\""),
        ] {
            let bad = SAMPLE.replacen(from, to, 1);
            assert_ne!(bad, SAMPLE, "replacement {from} did not apply");
            assert!(RawEvent::from_json(&bad).is_err(), "accepted {to}");
        }
    }
}
