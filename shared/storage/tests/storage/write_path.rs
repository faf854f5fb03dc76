//! Storing batches: idempotency, partitions, schema guard, resolution, deletions, payments.

use chrono::{DateTime, Utc};
use na_storage::{Db, IngestBatch, NewEvent, Tally};
use nostr_sdk::prelude::*;

use crate::{FACTS, NET_LOG, count, fact_rows, setup, small_dataset, to_new};

fn new_event(keys: &Keys, content: &str, at: u64, relay: i16) -> NewEvent {
    let ev = EventBuilder::text_note(content)
        .tag(Tag::public_key(Keys::generate().public_key()))
        .tag(Tag::expiration(Timestamp::from(at + 3600)))
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap();
    to_new(&ev, relay)
}

#[tokio::test]
async fn replaying_a_batch_stores_nothing_twice_and_merges_provenance() {
    let (db, client, _) = setup().await;
    let (a, b) = (
        db.relay_id("ws://a").await.unwrap(),
        db.relay_id("ws://b").await.unwrap(),
    );
    assert_eq!(
        db.relay_id("ws://a").await.unwrap(),
        a,
        "relay ids are stable"
    );
    let keys = Keys::generate();
    let now = Utc::now().timestamp() as u64;
    let events: Vec<NewEvent> = (0..10)
        .map(|i| new_event(&keys, &format!("n{i}"), now - i * 100, a))
        .collect();
    let batch = IngestBatch {
        events: events.clone(),
        rejected: vec![Tally {
            relay_id: a,
            outcome: "bad_signature",
            count: 2,
        }],
        watermarks: vec![(a, DateTime::from_timestamp(now as i64, 0).unwrap())],
        import: None,
    };
    let first = db.store_batch(&batch).await.unwrap();
    assert_eq!(
        (first.inserted.len(), first.duplicates, first.facts),
        (10, 0, 20)
    );

    // The same events again, from another relay and twice within one batch.
    let mut again: Vec<NewEvent> = events
        .iter()
        .cloned()
        .map(|mut e| {
            e.relays = vec![b];
            e
        })
        .collect();
    again.push(again[0].clone());
    let second = db
        .store_batch(&IngestBatch {
            events: again,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (second.inserted.len(), second.duplicates, second.facts),
        (0, 11, 0)
    );
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 10);
    assert_eq!(count(&client, "SELECT count(*) FROM facts").await, 20);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM facts WHERE expires_at = created_at + interval '1 hour'"
        )
        .await,
        20,
        "NIP-40 expiration is stored with every fact"
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM events WHERE seen_on = '{{{a},{b}}}'")
        )
        .await,
        10
    );
    assert_eq!(db.counter("ws://a", "accepted").await.unwrap(), 10);
    assert_eq!(db.counter("ws://a", "bad_signature").await.unwrap(), 2);
    assert_eq!(db.counter("ws://b", "duplicate").await.unwrap(), 11);

    // Watermarks never move backwards.
    let earlier = IngestBatch {
        watermarks: vec![(a, DateTime::from_timestamp(1, 0).unwrap())],
        ..Default::default()
    };
    db.store_batch(&earlier).await.unwrap();
    assert_eq!(
        db.watermark(a).await.unwrap().unwrap().timestamp(),
        now as i64
    );
    let status = db.ingest_status().await.unwrap();
    assert_eq!(status.len(), 2);
    assert_eq!(status[0].counters["accepted"], 10);
}

#[tokio::test]
async fn late_events_get_partitions_of_their_own_month() {
    let (db, client, _) = setup().await;
    let r = db.relay_id("ws://a").await.unwrap();
    let keys = Keys::generate();
    // 2019 (archive), May 2022, and now.
    let times = [
        1_560_000_000u64,
        1_652_000_000,
        Utc::now().timestamp() as u64,
    ];
    let events: Vec<NewEvent> = times
        .iter()
        .map(|t| new_event(&keys, "late", *t, r))
        .collect();
    db.store_batch(&IngestBatch {
        events,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 3);
    assert_eq!(
        count(&client, "SELECT count(*) FROM events_archive").await,
        1
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM events_2022_05").await,
        1
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts_2022_05").await,
        2
    );
    db.ensure_partitions_ahead(2).await.unwrap();
    let ahead = Utc::now()
        .checked_add_months(chrono::Months::new(2))
        .unwrap()
        .format("events_%Y_%m")
        .to_string();
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM pg_class WHERE relname = '{ahead}'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused() {
    let (_db, client, url) = setup().await;
    client
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             SELECT 999, 'from_the_future', applied_on, checksum FROM refinery_schema_history WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = Db::connect(&url, 1).await.unwrap_err();
    assert!(err.to_string().contains("migrations"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_in_the_error() {
    let err = Db::connect("postgres://postgres@127.0.0.1:1/x", 1)
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    let bad = Db::connect("not a url", 1).await.unwrap_err();
    assert!(bad.to_string().contains("DATABASE_URL"), "{bad}");
}

#[tokio::test]
async fn an_interaction_is_re_attributed_when_its_target_arrives() {
    let (db, client, _) = setup().await;
    let r = db.relay_id("ws://a").await.unwrap();
    let (author, fan) = (Keys::generate(), Keys::generate());
    let now = Utc::now().timestamp() as u64;
    let note = EventBuilder::text_note("hello")
        .custom_created_at(Timestamp::from(now - 100))
        .sign_with_keys(&author)
        .unwrap();
    // No p tag: nothing hints at the author.
    let like = EventBuilder::new(Kind::Reaction, "+")
        .tag(Tag::event(note.id))
        .custom_created_at(Timestamp::from(now - 50))
        .sign_with_keys(&fan)
        .unwrap();
    let own = EventBuilder::text_note("me too")
        .tag(Tag::event(note.id))
        .custom_created_at(Timestamp::from(now - 40))
        .sign_with_keys(&author)
        .unwrap();

    db.store_batch(&IngestBatch {
        events: vec![to_new(&like, r), to_new(&own, r)],
        ..Default::default()
    })
    .await
    .unwrap();
    let sql = "SELECT count(*) FROM facts WHERE flags & 1 = 1 AND subject IS NULL";
    assert_eq!(
        count(&client, sql).await,
        2,
        "unknown target: no subject yet"
    );

    db.store_batch(&IngestBatch {
        events: vec![to_new(&note, r)],
        ..Default::default()
    })
    .await
    .unwrap();
    let pk = author.public_key().to_hex();
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM facts WHERE subject = '\\x{pk}' AND flags & 1 = 0")
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM facts WHERE class = 2 AND flags & 2 = 2"
        )
        .await,
        1,
        "the author's own reply is a self-interaction"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM fact_log WHERE sign = -1").await,
        2,
        "old rows retracted"
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT sum(sign)::bigint FROM fact_log WHERE subject = '\\x{pk}'")
        )
        .await,
        2
    );
}

#[tokio::test]
async fn facts_do_not_depend_on_arrival_order() {
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    let data = small_dataset();
    let distinct: Vec<Event> = data.distinct().into_iter().cloned().collect();
    let mut results = Vec::new();
    for order in 0..3u64 {
        let (db, client, _) = setup().await;
        let r = db.relay_id("ws://a").await.unwrap();
        let mut events = distinct.clone();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(order);
        match order {
            0 => {}
            1 => events.reverse(),
            _ => events.shuffle(&mut rng),
        }
        keep_version_order(&mut events);
        let mut rest = &events[..];
        while !rest.is_empty() {
            let n = rng.gen_range(1..400).min(rest.len());
            let batch = IngestBatch {
                events: rest[..n].iter().map(|e| to_new(e, r)).collect(),
                ..Default::default()
            };
            db.store_batch(&batch).await.unwrap();
            rest = &rest[n..];
        }
        let facts = fact_rows(&client, FACTS).await;
        assert_eq!(
            fact_rows(&client, NET_LOG).await,
            facts,
            "order {order}: the log nets to the table"
        );
        assert_eq!(
            count(&client, "SELECT count(*) FROM facts f JOIN event_authors a ON a.id = f.target_event WHERE f.flags & 1 = 1").await,
            0,
            "order {order}: every fact whose target is stored is resolved"
        );
        if order == 1 {
            assert!(
                count(&client, "SELECT count(*) FROM fact_log WHERE sign = -1").await > 0,
                "reversed order re-attributes"
            );
        }
        assert!(
            count(&client, "SELECT count(*) FROM facts WHERE flags & 8 = 8").await > 0,
            "order {order}: the dataset's deletions apply"
        );
        assert!(
            count(&client, "SELECT count(*) FROM facts WHERE flags & 16 = 16").await > 0,
            "order {order}: repeated receipts of one payment are flagged"
        );
        for (what, sql) in [
            (
                "follows gained",
                "SELECT count(*) FROM facts WHERE class = 13",
            ),
            (
                "follows lost",
                "SELECT count(*) FROM facts WHERE class = 14",
            ),
            (
                "article edits",
                "SELECT count(*) FROM facts WHERE flags & 32 = 32",
            ),
        ] {
            assert!(count(&client, sql).await > 0, "order {order}: {what}");
        }
        let state = client
            .query(
                "SELECT encode(pubkey || event_id, 'hex') FROM replaceable_heads
                 UNION ALL SELECT encode(followee || follower, 'hex') || since FROM follow_edges
                 ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>();
        results.push((facts, state));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

/// Two rules follow arrival order by definition (NOSTR-SEMANTICS.md): an older version of a
/// replaceable event arriving late is ignored (follow lists), and the first version of an
/// article to arrive is its publication. So versions of one (pubkey, kind, d) keep their
/// `created_at` order among themselves; everything else is shuffled.
fn keep_version_order(events: &mut [Event]) {
    use std::collections::HashMap;
    let mut slots: HashMap<(PublicKey, Kind, String), Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind.is_replaceable() || e.kind.is_addressable() {
            let d = e.tags.identifier().unwrap_or_default().to_owned();
            slots.entry((e.pubkey, e.kind, d)).or_default().push(i);
        }
    }
    for positions in slots.values().filter(|p| p.len() > 1) {
        let mut versions: Vec<Event> = positions.iter().map(|&i| events[i].clone()).collect();
        versions.sort_by_key(|e| (e.created_at, std::cmp::Reverse(e.id)));
        for (&i, v) in positions.iter().zip(versions) {
            events[i] = v;
        }
    }
}

#[tokio::test]
async fn deletions_apply_to_the_authors_own_events_in_either_order() {
    let now = Utc::now().timestamp() as u64;
    let (author, other) = (Keys::generate(), Keys::generate());
    let note = EventBuilder::text_note("to be deleted")
        .custom_created_at(Timestamp::from(now - 500))
        .sign_with_keys(&author)
        .unwrap();
    let kept = EventBuilder::text_note("kept")
        .custom_created_at(Timestamp::from(now - 490))
        .sign_with_keys(&author)
        .unwrap();
    let delete = |keys: &Keys, ids: &[EventId], at: u64| {
        let mut b = EventBuilder::new(Kind::EventDeletion, "");
        for id in ids {
            b = b.tag(Tag::event(*id));
        }
        b.custom_created_at(Timestamp::from(at))
            .sign_with_keys(keys)
            .unwrap()
    };
    let by_author = delete(&author, &[note.id], now - 400);
    let by_other = delete(&other, &[kept.id], now - 400);
    let of_deletion = delete(&author, &[by_author.id], now - 300);
    // Article versions: a coordinate deletion covers versions up to its own time.
    let article = |content: &str, at: u64| {
        EventBuilder::new(Kind::LongFormTextNote, content)
            .tag(Tag::identifier("post"))
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(&author)
            .unwrap()
    };
    let (v1, v2) = (article("v1", now - 450), article("v2", now - 100));
    let coord = format!("30023:{}:post", author.public_key().to_hex());
    let by_coord = EventBuilder::new(Kind::EventDeletion, "")
        .tag(Tag::parse(["a", &coord]).unwrap())
        .custom_created_at(Timestamp::from(now - 200))
        .sign_with_keys(&author)
        .unwrap();
    let all = [
        note,
        kept,
        by_author.clone(),
        by_other,
        of_deletion,
        v1.clone(),
        v2.clone(),
        by_coord,
    ];

    for reversed in [false, true] {
        let (db, client, _) = setup().await;
        let r = db.relay_id("ws://a").await.unwrap();
        let mut events: Vec<&Event> = all.iter().collect();
        if reversed {
            events.reverse();
        }
        for ev in events {
            db.store_batch(&IngestBatch {
                events: vec![to_new(ev, r)],
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let deleted: Vec<Vec<u8>> = client
            .query(
                "SELECT DISTINCT event_id FROM facts WHERE flags & 8 = 8 ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut want: Vec<Vec<u8>> = [all[0].id, v1.id]
            .iter()
            .map(|id| id.to_bytes().to_vec())
            .collect();
        want.sort();
        // Not: `kept` (deleted by someone else), the deleted deletion, v2 (newer than the deletion).
        assert_eq!(deleted, want, "reversed: {reversed}");
        assert_eq!(
            fact_rows(&client, FACTS).await,
            fact_rows(&client, NET_LOG).await,
            "the log nets to the table"
        );
    }
}

#[tokio::test]
async fn a_payment_counts_once_for_its_earliest_receipt() {
    let data = small_dataset();
    // Two receipts of one payment (the generator repeats some, 5 s apart).
    let receipts: Vec<&Event> = data
        .distinct()
        .into_iter()
        .filter(|e| e.kind == Kind::ZapReceipt)
        .collect();
    let bolt11 = |e: &Event| {
        e.tags
            .iter()
            .find(|t| t.kind() == TagKind::custom("bolt11"))
            .and_then(|t| t.content())
            .map(str::to_owned)
    };
    let (first, second) = receipts
        .iter()
        .find_map(|a| {
            let b = receipts
                .iter()
                .find(|b| b.id != a.id && bolt11(b) == bolt11(a))?;
            (a.created_at < b.created_at).then_some((*a, *b))
        })
        .expect("the dataset repeats a receipt");
    let (db, client, _) = setup().await;
    let r = db.relay_id("ws://a").await.unwrap();
    for ev in [second, first] {
        db.store_batch(&IngestBatch {
            events: vec![to_new(ev, r)],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let flagged = |id: EventId| {
        let client = &client;
        async move {
            let hex = id.to_hex();
            count(
                client,
                &format!(
                    "SELECT count(*) FROM facts WHERE event_id = '\\x{hex}' AND flags & 16 = 16"
                ),
            )
            .await
        }
    };
    assert_eq!(flagged(first.id).await, 0, "the earliest receipt counts");
    assert_eq!(
        flagged(second.id).await,
        1,
        "the later one, stored first, is now the duplicate"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM fact_log WHERE sign = -1").await,
        1
    );
}

#[tokio::test]
async fn expired_events_are_flagged_on_arrival_or_by_the_sweep() {
    let (db, client, _) = setup().await;
    let r = db.relay_id("ws://a").await.unwrap();
    let keys = Keys::generate();
    let now = Utc::now().timestamp() as u64;
    let expiring = |content: &str, expires: u64| {
        EventBuilder::text_note(content)
            .tag(Tag::expiration(Timestamp::from(expires)))
            .custom_created_at(Timestamp::from(now - 100))
            .sign_with_keys(&keys)
            .unwrap()
    };
    let (gone, later) = (expiring("gone", now - 10), expiring("later", now + 60));
    db.store_batch(&IngestBatch {
        events: vec![to_new(&gone, r), to_new(&later, r)],
        ..Default::default()
    })
    .await
    .unwrap();
    let expired = "SELECT count(*) FROM facts WHERE flags & 64 = 64";
    assert_eq!(
        count(&client, expired).await,
        1,
        "already expired on arrival"
    );
    assert_eq!(
        db.expire_due(Utc::now()).await.unwrap(),
        0,
        "nothing due yet"
    );
    let due = DateTime::from_timestamp((now + 60) as i64, 0).unwrap();
    assert_eq!(db.expire_due(due).await.unwrap(), 1);
    assert_eq!(
        db.expire_due(due).await.unwrap(),
        0,
        "a second sweep changes nothing"
    );
    assert_eq!(count(&client, expired).await, 2);
    assert_eq!(
        count(&client, "SELECT count(*) FROM fact_log WHERE sign = -1").await,
        1,
        "the sweep retracts the counted row"
    );
    assert_eq!(
        fact_rows(&client, FACTS).await,
        fact_rows(&client, NET_LOG).await
    );
}

#[tokio::test]
async fn a_mention_of_the_replied_to_author_is_not_a_mention_in_either_order() {
    let now = Utc::now().timestamp() as u64;
    let (author, other, replier) = (Keys::generate(), Keys::generate(), Keys::generate());
    let note = EventBuilder::text_note("root")
        .custom_created_at(Timestamp::from(now - 100))
        .sign_with_keys(&author)
        .unwrap();
    // The reply's `e` tag hints at the wrong author; it `p`-tags both, as NIP-10 asks.
    let reply = EventBuilder::text_note("reply")
        .tag(
            Tag::parse([
                "e",
                &note.id.to_hex(),
                "",
                "reply",
                &other.public_key().to_hex(),
            ])
            .unwrap(),
        )
        .tag(Tag::public_key(author.public_key()))
        .tag(Tag::public_key(other.public_key()))
        .custom_created_at(Timestamp::from(now - 50))
        .sign_with_keys(&replier)
        .unwrap();
    let flagged = "SELECT encode(subject, 'hex') FROM facts WHERE class = 7 AND flags & 128 = 128";
    for note_first in [true, false] {
        let (db, client, _) = setup().await;
        let r = db.relay_id("ws://a").await.unwrap();
        let order = if note_first {
            [&note, &reply]
        } else {
            [&reply, &note]
        };
        db.store_batch(&IngestBatch {
            events: vec![to_new(order[0], r)],
            ..Default::default()
        })
        .await
        .unwrap();
        if !note_first {
            let before: String = client.query_one(flagged, &[]).await.unwrap().get(0);
            assert_eq!(before, other.public_key().to_hex(), "by the hint, at first");
        }
        db.store_batch(&IngestBatch {
            events: vec![to_new(order[1], r)],
            ..Default::default()
        })
        .await
        .unwrap();
        let now_flagged: Vec<String> = client
            .query(flagged, &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(
            now_flagged,
            vec![author.public_key().to_hex()],
            "note first: {note_first}"
        );
        assert_eq!(
            fact_rows(&client, FACTS).await,
            fact_rows(&client, NET_LOG).await
        );
    }
}
