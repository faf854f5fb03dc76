//! The offline rules (`na_plugin_testing::ingest`) hold to storage's: the same events,
//! stored through the real write path in PostgreSQL in arrival order, give exactly the
//! facts the harness makes without it. On generated data delivered out of order and
//! repeated (deletions, follow-list changes, article edits, zaps), and on the fixtures.
#![allow(clippy::unwrap_used, reason = "a test: a failure should stop it")]

use std::collections::BTreeSet;

use na_metrics_abi::{Fact, class, flag};
use na_plugin_testing::{fixtures, ingest};
use na_storage::{Db, facts};
use nostr_sdk::JsonUtil;

async fn stored_facts(db: &Db) -> Vec<Fact> {
    let rows = facts::all_facts(db).await.unwrap();
    let mut out: Vec<Fact> = rows.iter().map(na_plugin_registry::to_fact).collect();
    out.sort_by_key(|f| (f.created_at, f.event_id, f.seq));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_facts_are_the_stored_facts() {
    let now = chrono::Utc::now().timestamp();
    let data = na_datagen::generate(na_datagen::Tier::Small, 7, now as u64 - 3_600).unwrap();
    let mut lines: Vec<String> = data.events.iter().map(|e| e.as_json()).collect();
    lines.extend(fixtures::EVENTS.lines().map(str::to_owned));

    let db = Db::connect(&na_test_support::fresh_database_url().await, 2)
        .await
        .unwrap();
    let relay = db.relay_id("ws://test").await.unwrap();
    for chunk in lines.chunks(400) {
        let batch = na_ingest::prepare::batch_from_json(chunk, relay, now).unwrap();
        db.store_batch(&batch).await.unwrap();
    }
    let stored = stored_facts(&db).await;
    let offline = ingest(&lines, now);

    assert!(offline.refused.is_empty(), "{:?}", offline.refused);
    assert!(offline.duplicates > 0, "the delivery repeats events");
    assert!(stored.len() > 3_000, "{} facts", stored.len());
    let flags: u32 = offline.facts.iter().fold(0, |acc, f| acc | f.flags);
    for bit in [
        flag::SELF,
        flag::DELETED,
        flag::EDIT,
        flag::DUPLICATE_PAYMENT,
        flag::INVALID,
    ] {
        assert_ne!(
            flags & bit,
            0,
            "no fact with flag {bit}: the test data lost its traps"
        );
    }
    if let Some((i, (s, o))) = stored
        .iter()
        .zip(&offline.facts)
        .enumerate()
        .find(|(_, (s, o))| s != o)
    {
        panic!("fact {i} differs:\nstored  {s:?}\noffline {o:?}");
    }
    assert_eq!(stored.len(), offline.facts.len());
}

#[test]
fn the_fixtures_cover_every_fact_class_and_flag() {
    let lines: Vec<&str> = fixtures::EVENTS.lines().collect();
    let got = ingest(&lines, na_plugin_testing::now());
    assert!(got.refused.is_empty(), "{:?}", got.refused);
    let classes: BTreeSet<u16> = got.facts.iter().map(|f| f.class).collect();
    let all: BTreeSet<u16> = (class::NOTE..=class::FOLLOW_LOST).collect();
    assert_eq!(classes, all);
    for bit in [
        flag::SELF,
        flag::INVALID,
        flag::DELETED,
        flag::DUPLICATE_PAYMENT,
        flag::EDIT,
        flag::EXPIRED,
        flag::MENTIONS_TARGET_AUTHOR,
    ] {
        assert!(
            got.facts.iter().any(|f| f.flags & bit != 0),
            "no fixture fact has flag {bit}"
        );
    }
}
