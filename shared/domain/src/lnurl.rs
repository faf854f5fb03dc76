//! NIP-57's LNURL check, the pure half: where a recipient's LNURL-pay endpoint is, and what
//! its `nostrPubkey` says about a receipt. Fetching the endpoint is `na-lnurl`'s job.

use crate::event::{Pubkey, RawEvent};
use crate::kinds;

/// Whether a valid receipt was signed by the recipient's LNURL server (a dimension of the
/// zap fact; it never decides whether the zap counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LnurlVerdict {
    /// The endpoint's `nostrPubkey` signed the receipt.
    Verified,
    /// Not checked, or not checkable: no endpoint known, unreachable, no Nostr support.
    Unverified,
    /// The endpoint names a different `nostrPubkey`: someone else signed the receipt.
    Mismatch,
}

impl LnurlVerdict {
    pub fn name(self) -> &'static str {
        match self {
            LnurlVerdict::Verified => "verified",
            LnurlVerdict::Unverified => "unverified",
            LnurlVerdict::Mismatch => "mismatch",
        }
    }

    /// The verdict on a receipt signed by `signer`, given the endpoint's `nostrPubkey`
    /// (`None`: unknown).
    pub fn of(signer: &Pubkey, nostr_pubkey: Option<&Pubkey>) -> Self {
        match nostr_pubkey {
            None => LnurlVerdict::Unverified,
            Some(pk) if pk == signer => LnurlVerdict::Verified,
            Some(_) => LnurlVerdict::Mismatch,
        }
    }
}

/// The recipient's LNURL-pay URL for a receipt: the zap request's `lnurl` tag (NIP-57), else
/// the recipient's profile (`lud16` lightning address, else `lud06` bech32 LNURL).
pub fn pay_url(receipt: &RawEvent, recipient_profile: Option<&str>) -> Option<String> {
    request_lnurl(receipt)
        .and_then(|l| decode_lnurl(&l))
        .or_else(|| recipient_profile.and_then(profile_pay_url))
}

/// The `lnurl` tag of the zap request embedded in a receipt's `description`.
fn request_lnurl(receipt: &RawEvent) -> Option<String> {
    if receipt.kind != kinds::ZAP_RECEIPT {
        return None;
    }
    let request = RawEvent::from_json(receipt.tag_value("description")?).ok()?;
    request.tag_value("lnurl").map(str::to_owned)
}

fn profile_pay_url(content: &str) -> Option<String> {
    let profile: serde_json::Value = serde_json::from_str(content).ok()?;
    let field = |name: &str| profile.get(name)?.as_str().map(str::trim);
    field("lud16")
        .and_then(lightning_address_url)
        .or_else(|| field("lud06").and_then(decode_lnurl))
}

/// LUD-16: `name@domain` is served at `https://domain/.well-known/lnurlp/name`.
pub fn lightning_address_url(address: &str) -> Option<String> {
    let (name, domain) = address
        .to_lowercase()
        .split_once('@')
        .map(|(n, d)| (n.to_owned(), d.to_owned()))?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !name_ok || !domain_ok {
        return None;
    }
    // LUD-16: onion services are reached over plain HTTP.
    let scheme = if domain.ends_with(".onion") {
        "http"
    } else {
        "https"
    };
    Some(format!("{scheme}://{domain}/.well-known/lnurlp/{name}"))
}

/// LUD-01: a bech32 string with the `lnurl` prefix wrapping a URL.
pub fn decode_lnurl(text: &str) -> Option<String> {
    let text = text.trim().trim_start_matches("lightning:");
    let (hrp, data) = bech32::decode(text).ok()?;
    if !hrp.as_str().eq_ignore_ascii_case("lnurl") {
        return None;
    }
    let url = String::from_utf8(data).ok()?;
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightning_addresses_and_lnurls_become_pay_urls() {
        assert_eq!(
            lightning_address_url("Alice@Example.com").as_deref(),
            Some("https://example.com/.well-known/lnurlp/alice")
        );
        assert_eq!(
            lightning_address_url("bob@abc.onion").as_deref(),
            Some("http://abc.onion/.well-known/lnurlp/bob")
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@x.com",
            "a@x.com/evil",
        ] {
            assert_eq!(lightning_address_url(bad), None, "{bad:?}");
        }
        // The example of LUD-01.
        let lnurl = "LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56NYD3HXQURZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS";
        assert_eq!(
            decode_lnurl(lnurl).as_deref(),
            Some(
                "https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df"
            )
        );
        let other = bech32::encode::<bech32::Bech32>(
            bech32::Hrp::parse("other").unwrap(),
            b"https://service.com/api",
        )
        .unwrap();
        assert_eq!(decode_lnurl(&other), None, "wrong prefix");
        let not_a_url = bech32::encode::<bech32::Bech32>(
            bech32::Hrp::parse("lnurl").unwrap(),
            b"file:///etc/passwd",
        )
        .unwrap();
        assert_eq!(decode_lnurl(&not_a_url), None, "not http(s)");
    }

    #[test]
    fn the_profile_is_the_fallback() {
        let receipt = RawEvent {
            id: [0; 32],
            pubkey: [1; 32],
            created_at: 0,
            kind: kinds::ZAP_RECEIPT,
            tags: vec![],
            content: String::new(),
            sig: [0; 64],
        };
        assert_eq!(
            pay_url(&receipt, Some(r#"{"lud16":"carol@pay.example"}"#)).as_deref(),
            Some("https://pay.example/.well-known/lnurlp/carol")
        );
        assert_eq!(pay_url(&receipt, Some("not json")), None);
        assert_eq!(pay_url(&receipt, None), None);
    }

    #[test]
    fn verdicts() {
        let (signer, other) = ([1; 32], [2; 32]);
        assert_eq!(
            LnurlVerdict::of(&signer, Some(&signer)),
            LnurlVerdict::Verified
        );
        assert_eq!(
            LnurlVerdict::of(&signer, Some(&other)),
            LnurlVerdict::Mismatch
        );
        assert_eq!(LnurlVerdict::of(&signer, None), LnurlVerdict::Unverified);
    }
}
