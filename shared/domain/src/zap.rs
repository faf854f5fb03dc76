//! NIP-57 zap receipts: when one counts, who sent it, and how much.

use std::collections::BTreeSet;

use bitcoin_hashes::Hash as _;
use lightning_invoice::{Currency, SignedRawBolt11Invoice};
use sha2::{Digest, Sha256};

use crate::event::{Pubkey, RawEvent, parse_hex32};
use crate::facts::Target;
use crate::kinds;

/// Why a receipt does not count. Stored with the receipt's fact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZapFailure {
    #[error("receipt has no p tag")]
    NoRecipient,
    #[error("receipt has no description tag")]
    NoDescription,
    #[error("description is not a zap request event: {0}")]
    RequestMalformed(String),
    #[error("zap request is kind {0}, not 9734")]
    RequestWrongKind(u16),
    #[error("zap request id or signature does not verify")]
    RequestUnverified,
    #[error("zap request must have exactly one p tag, has {0}")]
    RequestRecipients(usize),
    #[error("zap request p tag differs from the receipt's")]
    RecipientMismatch,
    #[error("zap request e/a tags differ from the receipt's")]
    TargetMismatch,
    #[error("receipt has no bolt11 tag")]
    NoInvoice,
    #[error("bolt11 does not parse: {0}")]
    InvoiceUnparseable(String),
    #[error("bolt11 currency is not bc, tb, tbs or bcrt")]
    UnsupportedCurrency,
    #[error("bolt11 has no amount")]
    NoAmount,
    #[error("bolt11 amount has no unit multiplier (it would mean whole bitcoins)")]
    NoMultiplier,
    #[error("bolt11 pico-bitcoin amount is not a multiple of 10")]
    ImpreciseAmount,
    #[error("bolt11 amount is zero")]
    ZeroAmount,
    #[error("zap request amount tag differs from the invoice amount")]
    AmountMismatch,
    #[error("bolt11 description hash is not sha256 of the description")]
    DescriptionHashMismatch,
}

impl ZapFailure {
    /// A stable machine-readable name, stored as a fact dimension.
    pub fn code(&self) -> &'static str {
        match self {
            ZapFailure::NoRecipient => "no_recipient",
            ZapFailure::NoDescription => "no_description",
            ZapFailure::RequestMalformed(_) => "request_malformed",
            ZapFailure::RequestWrongKind(_) => "request_wrong_kind",
            ZapFailure::RequestUnverified => "request_unverified",
            ZapFailure::RequestRecipients(_) => "request_recipients",
            ZapFailure::RecipientMismatch => "recipient_mismatch",
            ZapFailure::TargetMismatch => "target_mismatch",
            ZapFailure::NoInvoice => "no_invoice",
            ZapFailure::InvoiceUnparseable(_) => "invoice_unparseable",
            ZapFailure::UnsupportedCurrency => "unsupported_currency",
            ZapFailure::NoAmount => "no_amount",
            ZapFailure::NoMultiplier => "no_multiplier",
            ZapFailure::ImpreciseAmount => "imprecise_amount",
            ZapFailure::ZeroAmount => "zero_amount",
            ZapFailure::AmountMismatch => "amount_mismatch",
            ZapFailure::DescriptionHashMismatch => "description_hash_mismatch",
        }
    }
}

/// A receipt that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidZap {
    pub recipient: Pubkey,
    /// The zap request's author (a throwaway key for anonymous zaps).
    pub sender: Pubkey,
    pub amount_msats: u64,
    /// Duplicate receipts for one payment count once.
    pub payment_hash: [u8; 32],
    pub target: Option<Target>,
}

/// Checks a receipt whose own id and signature have already verified.
///
/// # Errors
/// The first [`ZapFailure`] that applies, in the order NOSTR-SEMANTICS.md lists them.
pub fn validate(receipt: &RawEvent) -> Result<ValidZap, ZapFailure> {
    let recipient = tag_values(receipt, "p")
        .next()
        .and_then(parse_hex32)
        .ok_or(ZapFailure::NoRecipient)?;
    let description = receipt
        .tag_value("description")
        .ok_or(ZapFailure::NoDescription)?;
    let request = RawEvent::from_json(description)
        .map_err(|e| ZapFailure::RequestMalformed(e.to_string()))?;
    if request.kind != kinds::ZAP_REQUEST {
        return Err(ZapFailure::RequestWrongKind(request.kind));
    }
    // The request's own time is not judged: only its identity.
    crate::verify::verify(request.clone(), i64::MAX / 2)
        .map_err(|_| ZapFailure::RequestUnverified)?;
    let request_recipients: Vec<&str> = tag_values(&request, "p").collect();
    if request_recipients.len() != 1 {
        return Err(ZapFailure::RequestRecipients(request_recipients.len()));
    }
    if parse_hex32(request_recipients[0]) != Some(recipient) {
        return Err(ZapFailure::RecipientMismatch);
    }
    for name in ["e", "a"] {
        let ours: BTreeSet<&str> = tag_values(receipt, name).collect();
        let theirs: BTreeSet<&str> = tag_values(&request, name).collect();
        if ours != theirs {
            return Err(ZapFailure::TargetMismatch);
        }
    }

    let bolt11 = receipt
        .tag_value("bolt11")
        .ok_or(ZapFailure::NoInvoice)?
        .trim()
        .to_lowercase();
    let amount_msats = invoice_amount(&bolt11)?;
    // Parsed, checksum verified, but the node's signature is not recovered: NIP-57 does not
    // ask for it, and recovery costs more than the rest of the zap check together.
    let signed: SignedRawBolt11Invoice = bolt11
        .parse()
        .map_err(|e| ZapFailure::InvoiceUnparseable(format!("{e:?}")))?;
    let invoice = signed.raw_invoice();
    if !matches!(
        invoice.currency(),
        Currency::Bitcoin | Currency::BitcoinTestnet | Currency::Signet | Currency::Regtest
    ) {
        return Err(ZapFailure::UnsupportedCurrency);
    }
    if invoice.amount_pico_btc().map(|p| p / 10) != Some(amount_msats) {
        return Err(ZapFailure::InvoiceUnparseable(
            "amount does not read back".into(),
        ));
    }
    let payment_hash = invoice
        .payment_hash()
        .ok_or_else(|| ZapFailure::InvoiceUnparseable("no payment hash".into()))?
        .0
        .to_byte_array();
    if let Some(tag) = request.tag_value("amount")
        && tag.trim().parse::<u64>().ok() != Some(amount_msats)
    {
        return Err(ZapFailure::AmountMismatch);
    }
    if let Some(hash) = invoice.description_hash() {
        let want: [u8; 32] = Sha256::digest(description.as_bytes()).into();
        if hash.0.to_byte_array() != want {
            return Err(ZapFailure::DescriptionHashMismatch);
        }
    }
    let target = tag_values(receipt, "e")
        .next()
        .and_then(parse_hex32)
        .map(Target::Event)
        .or_else(|| {
            tag_values(receipt, "a")
                .next()
                .map(|a| Target::Coordinate(a.to_owned()))
        });
    Ok(ValidZap {
        recipient,
        sender: request.pubkey,
        amount_msats,
        payment_hash,
        target,
    })
}

fn tag_values<'a>(ev: &'a RawEvent, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    ev.tags
        .iter()
        .filter(move |t| t[0] == name)
        .filter_map(|t| t.get(1))
        .map(String::as_str)
}

/// The amount from the invoice's human-readable part, in millisats. BOLT11 reads an amount
/// without a multiplier as whole bitcoins; a zap never means that, so it is refused rather
/// than read as 100,000,000 sats.
pub fn invoice_amount(bolt11: &str) -> Result<u64, ZapFailure> {
    let hrp = bolt11
        .rfind('1')
        .map(|i| &bolt11[..i])
        .ok_or_else(|| ZapFailure::InvoiceUnparseable("no separator".into()))?;
    let rest = hrp
        .strip_prefix("ln")
        .ok_or_else(|| ZapFailure::InvoiceUnparseable("not a lightning invoice".into()))?;
    let amount = ["bcrt", "bc", "tbs", "tb"]
        .iter()
        .find_map(|c| rest.strip_prefix(c))
        .ok_or(ZapFailure::UnsupportedCurrency)?;
    let (digits, multiplier) = match amount.chars().last() {
        None => return Err(ZapFailure::NoAmount),
        Some(c) if c.is_ascii_digit() => return Err(ZapFailure::NoMultiplier),
        Some(c) => (&amount[..amount.len() - 1], c),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| ZapFailure::InvoiceUnparseable(format!("amount {amount:?}")))?;
    // Millisats per unit: 1 BTC = 10^11 msat.
    let msats = match multiplier {
        'm' => value.checked_mul(100_000_000),
        'u' => value.checked_mul(100_000),
        'n' => value.checked_mul(100),
        'p' if !value.is_multiple_of(10) => return Err(ZapFailure::ImpreciseAmount),
        'p' => Some(value / 10),
        other => {
            return Err(ZapFailure::InvoiceUnparseable(format!(
                "multiplier {other:?}"
            )));
        }
    }
    .ok_or_else(|| ZapFailure::InvoiceUnparseable("amount overflows".into()))?;
    if msats == 0 {
        return Err(ZapFailure::ZeroAmount);
    }
    Ok(msats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin_hashes::sha256;
    use lightning_invoice::{InvoiceBuilder, PaymentSecret};
    use nostr_sdk::prelude::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
    use secp256k1::{Message, SECP256K1, SecretKey};

    struct Zap {
        sender: Keys,
        recipient: Keys,
        service: Keys,
        note: String,
    }

    impl Zap {
        fn new() -> Self {
            Zap {
                sender: Keys::generate(),
                recipient: Keys::generate(),
                service: Keys::generate(),
                note: "ab".repeat(32),
            }
        }

        fn request(&self, amount: Option<&str>, extra_p: bool) -> String {
            let mut b = EventBuilder::new(Kind::ZapRequest, "great post")
                .tag(Tag::parse(["relays", "wss://r.example"]).unwrap())
                .tag(Tag::parse(["p", &self.recipient.public_key().to_hex()]).unwrap())
                .tag(Tag::parse(["e", &self.note]).unwrap());
            if let Some(a) = amount {
                b = b.tag(Tag::parse(["amount", a]).unwrap());
            }
            if extra_p {
                b = b.tag(Tag::parse(["p", &Keys::generate().public_key().to_hex()]).unwrap());
            }
            b.custom_created_at(Timestamp::from(1_700_000_000))
                .sign_with_keys(&self.sender)
                .unwrap()
                .as_json()
        }

        fn receipt(&self, p: &str, bolt11: &str, description: &str) -> RawEvent {
            let ev = EventBuilder::new(Kind::ZapReceipt, "")
                .tag(Tag::parse(["p", p]).unwrap())
                .tag(Tag::parse(["e", &self.note]).unwrap())
                .tag(Tag::parse(["bolt11", bolt11]).unwrap())
                .tag(Tag::parse(["description", description]).unwrap())
                .custom_created_at(Timestamp::from(1_700_000_100))
                .sign_with_keys(&self.service)
                .unwrap();
            RawEvent::from_json(&ev.as_json()).unwrap()
        }

        fn valid(&self, msats: u64) -> RawEvent {
            let request = self.request(Some(&msats.to_string()), false);
            self.receipt(
                &self.recipient.public_key().to_hex(),
                &invoice(msats, &request, Currency::Bitcoin),
                &request,
            )
        }
    }

    /// A signed invoice for `btc` whole bitcoins written with no multiplier (`lnbc2…`),
    /// which InvoiceBuilder never produces but wallets and forgers can.
    fn invoice_without_multiplier(btc: u64, description: &str) -> String {
        let mut raw = raw_invoice(btc * 100_000_000_000, description, Currency::Bitcoin);
        raw.hrp.raw_amount = Some(btc);
        raw.hrp.si_prefix = None;
        sign(raw)
    }

    fn invoice(msats: u64, description: &str, currency: Currency) -> String {
        sign(raw_invoice(msats, description, currency))
    }

    fn sign(raw: lightning_invoice::RawBolt11Invoice) -> String {
        let node = SecretKey::from_slice(&[9; 32]).unwrap();
        raw.sign::<_, ()>(|h: &Message| Ok(SECP256K1.sign_ecdsa_recoverable(h, &node)))
            .unwrap()
            .to_string()
    }

    fn raw_invoice(
        msats: u64,
        description: &str,
        currency: Currency,
    ) -> lightning_invoice::RawBolt11Invoice {
        InvoiceBuilder::new(currency)
            .description_hash(sha256::Hash::hash(description.as_bytes()))
            .payment_hash(sha256::Hash::hash(&msats.to_be_bytes()))
            .payment_secret(PaymentSecret([3; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(1_700_000_000))
            .min_final_cltv_expiry_delta(144)
            .amount_milli_satoshis(msats)
            .build_raw()
            .unwrap()
    }

    #[test]
    fn a_proper_zap_counts_with_the_invoice_amount() {
        let z = Zap::new();
        let zap = validate(&z.valid(21_000)).unwrap();
        assert_eq!(zap.amount_msats, 21_000);
        assert_eq!(zap.sender, z.sender.public_key().to_bytes());
        assert_eq!(zap.recipient, z.recipient.public_key().to_bytes());
        assert_eq!(zap.target, parse_hex32(&z.note).map(Target::Event));
        // Over 1M sats is just a big zap.
        assert_eq!(
            validate(&z.valid(5_000_000_000)).unwrap().amount_msats,
            5_000_000_000
        );
    }

    #[test]
    fn each_rule_rejects_its_case() {
        let z = Zap::new();
        let me = z.recipient.public_key().to_hex();
        let req = z.request(Some("21000"), false);
        let inv = invoice(21_000, &req, Currency::Bitcoin);
        let cases: Vec<(&str, RawEvent, ZapFailure)> = vec![
            (
                "forged: p differs from the request",
                z.receipt(&Keys::generate().public_key().to_hex(), &inv, &req),
                ZapFailure::RecipientMismatch,
            ),
            (
                "request with a bad signature",
                z.receipt(&me, &inv, &req.replace("great post", "GREAT POST")),
                ZapFailure::RequestUnverified,
            ),
            (
                "request with two recipients",
                {
                    let r = z.request(None, true);
                    z.receipt(&me, &invoice(21_000, &r, Currency::Bitcoin), &r)
                },
                ZapFailure::RequestRecipients(2),
            ),
            (
                "no multiplier: whole bitcoins",
                {
                    let r = z.request(None, false);
                    let inv = invoice_without_multiplier(2, &r);
                    assert!(inv.starts_with("lnbc21"), "{inv}");
                    z.receipt(&me, &inv, &r)
                },
                ZapFailure::NoMultiplier,
            ),
            (
                "amount tag mismatch",
                {
                    let r = z.request(Some("1000"), false);
                    z.receipt(&me, &invoice(21_000, &r, Currency::Bitcoin), &r)
                },
                ZapFailure::AmountMismatch,
            ),
            (
                "non-integer amount tag",
                {
                    let r = z.request(Some("21k"), false);
                    z.receipt(&me, &invoice(21_000, &r, Currency::Bitcoin), &r)
                },
                ZapFailure::AmountMismatch,
            ),
            (
                "description hash mismatch",
                {
                    let r = z.request(None, false);
                    z.receipt(
                        &me,
                        &invoice(21_000, "something else", Currency::Bitcoin),
                        &r,
                    )
                },
                ZapFailure::DescriptionHashMismatch,
            ),
            (
                "simnet currency",
                {
                    let r = z.request(None, false);
                    z.receipt(&me, &invoice(21_000, &r, Currency::Simnet), &r)
                },
                ZapFailure::UnsupportedCurrency,
            ),
            (
                "not a request",
                z.receipt(&me, &inv, "{}"),
                ZapFailure::RequestMalformed(String::new()),
            ),
        ];
        for (name, receipt, want) in cases {
            let got = validate(&receipt).unwrap_err();
            assert_eq!(got.code(), want.code(), "{name}: {got}");
        }
    }

    #[test]
    fn invoice_amounts_by_multiplier() {
        for (hrp, want) in [
            ("lnbc1m1x", Ok(100_000_000)),
            ("lnbc25u1x", Ok(2_500_000)),
            ("lnbc10n1x", Ok(1_000)),
            ("lnbc10p1x", Ok(1)),
            ("lntbs5u1x", Ok(500_000)),
            ("lnbcrt2m1x", Ok(200_000_000)),
            ("lnbc15p1x", Err(ZapFailure::ImpreciseAmount)),
            ("lnbc21x", Err(ZapFailure::NoMultiplier)),
            ("lnbc1x", Err(ZapFailure::NoAmount)),
            ("lnbc0n1x", Err(ZapFailure::ZeroAmount)),
            ("lnsb1m1x", Err(ZapFailure::UnsupportedCurrency)),
        ] {
            assert_eq!(invoice_amount(hrp), want, "{hrp}");
        }
    }
}
