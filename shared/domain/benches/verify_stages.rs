//! Where one event's verification time goes: `cargo bench --workspace --bench verify_stages`.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::time::Instant;

use na_domain::verify::canonical_id;
use na_domain::{RawEvent, normalize, verify};
use nostr_sdk::prelude::*;

fn main() {
    let keys = Keys::generate();
    let target = Keys::generate().public_key();
    let texts: Vec<String> = (0..20_000)
        .map(|i| {
            EventBuilder::new(Kind::Reaction, "+")
                .tag(Tag::event(EventId::all_zeros()))
                .tag(Tag::public_key(target))
                .custom_created_at(Timestamp::from(1_700_000_000 + i))
                .sign_with_keys(&keys)
                .unwrap()
                .as_json()
        })
        .collect();
    let n = texts.len() as f64;
    let t = Instant::now();
    let raws: Vec<RawEvent> = texts
        .iter()
        .map(|s| RawEvent::from_json(s).unwrap())
        .collect();
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ok = raws.iter().filter(|r| canonical_id(r) == r.id).count();
    let id = t.elapsed().as_secs_f64();
    assert_eq!(ok, raws.len());
    let t = Instant::now();
    let verified: Vec<_> = raws
        .into_iter()
        .map(|r| verify(r, 1_800_000_000).unwrap())
        .collect();
    let full = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let facts: usize = verified.iter().map(|e| normalize(e).len()).sum();
    let norm = t.elapsed().as_secs_f64();
    assert_eq!(facts, verified.len());
    println!(
        "one thread, per event: parse {:.2} µs, id {:.2} µs, id+signature {:.2} µs, normalize {:.2} µs",
        parse / n * 1e6,
        id / n * 1e6,
        full / n * 1e6,
        norm / n * 1e6
    );
}
