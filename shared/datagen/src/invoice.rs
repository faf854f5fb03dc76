//! Signed BOLT11 invoices for zap receipts.

use std::time::Duration;

use bitcoin_hashes::{Hash, sha256};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use secp256k1::{Message, SECP256K1, SecretKey};

/// A mainnet invoice for `amount_msat`, committing to `description` by hash (NIP-57).
pub(crate) fn bolt11(
    node: &SecretKey,
    amount_msat: u64,
    description: &str,
    created_at: u64,
    nonce: [u8; 32],
) -> Result<String, String> {
    InvoiceBuilder::new(Currency::Bitcoin)
        .description_hash(sha256::Hash::hash(description.as_bytes()))
        .payment_hash(sha256::Hash::hash(&nonce))
        .payment_secret(PaymentSecret(nonce))
        .duration_since_epoch(Duration::from_secs(created_at))
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(amount_msat)
        .build_signed(|hash: &Message| SECP256K1.sign_ecdsa_recoverable(hash, node))
        .map(|invoice| invoice.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_invoice::Bolt11Invoice;

    #[test]
    fn invoices_parse_back_with_amount_and_hash() {
        let node = SecretKey::from_slice(&[7; 32]).unwrap();
        let text = bolt11(&node, 21_000, "{\"kind\":9734}", 1_700_000_000, [1; 32]).unwrap();
        assert!(text.starts_with("lnbc210n1"), "{text}");
        let parsed: Bolt11Invoice = text.parse().unwrap();
        assert_eq!(parsed.amount_milli_satoshis(), Some(21_000));
        let lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(hash) = parsed.description()
        else {
            panic!("expected a description hash");
        };
        assert_eq!(hash.0, sha256::Hash::hash(b"{\"kind\":9734}"));
        assert_eq!(
            bolt11(&node, 21_000, "{\"kind\":9734}", 1_700_000_000, [1; 32]).unwrap(),
            text,
            "deterministic"
        );
    }
}
