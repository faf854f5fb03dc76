//! The built component, in the production host, over the fixture events: its values must
//! be the golden ones in `fixtures/expected.json` (rewrite them with
//! `na-plugins test target/plugin/<crate>.wasm --events fixtures/events.jsonl --write-expect fixtures/expected.json`
//! when a change is meant).
#![allow(clippy::unwrap_used, reason = "a test: a failure should stop it")]

use na_plugin_testing::{Component, Report, now};

#[test]
fn the_built_component_gives_the_expected_values() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let plugin = Component::build(dir).unwrap();
    let (ingested, report) = plugin
        .run_events_file(format!("{dir}/fixtures/events.jsonl"), now())
        .unwrap();
    assert!(ingested.refused.is_empty(), "{:?}", ingested.refused);
    println!("{report}");
    let expected = Report::load(format!("{dir}/fixtures/expected.json")).unwrap();
    let differences = report.differences(&expected);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
