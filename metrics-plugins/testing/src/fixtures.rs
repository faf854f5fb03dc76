//! The fixture files shipped with the product (`metrics-plugins/fixtures/`): signed events
//! covering every fact class and flag, which `na-plugins new` copies into a new crate.

/// `events.jsonl`: one NIP-01 event per line, in arrival order.
pub const EVENTS: &str = include_str!("../../fixtures/events.jsonl");
