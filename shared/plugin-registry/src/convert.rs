//! Stored facts as the plugin contract hands them over.

use na_metrics_abi::Fact;
use na_storage::facts::FactRow;

fn id32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = bytes.len().min(32);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// A fact row in the contract's shape.
pub fn to_fact(row: &FactRow) -> Fact {
    Fact {
        created_at: row.created_at,
        event_id: id32(&row.event_id),
        seq: row.seq,
        class: row.class as u16,
        flags: row.flags as u32,
        actor: id32(&row.actor),
        subject: row.subject.as_deref().map(id32),
        target_event: row.target_event.as_deref().map(id32),
        target_coord: row.target_coord.clone(),
        amount_msats: row.amount_msats,
        expires_at: row.expires_at,
        dims: na_domain::facts::contract_dims(row.dims.as_ref()),
    }
}
