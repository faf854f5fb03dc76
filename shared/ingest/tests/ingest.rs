//! Ingest against a real PostgreSQL and real websocket relays on loopback.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use common::{config, count, db, run_until_caught_up};
use na_test_support::{ScriptedRelay, forge_signature, start_relay};
use nostr_sdk::prelude::*;

fn note(keys: &Keys, content: &str, at: u64) -> Event {
    EventBuilder::text_note(content)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap()
}

fn expected_facts(events: &[&Event]) -> i64 {
    events
        .iter()
        .map(|e| {
            na_domain::normalize(&na_domain::RawEvent::from_json(&e.as_json()).unwrap()).len()
                as i64
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_from_two_relays_is_stored_once() {
    let (db, client) = db().await;
    let data =
        na_datagen::generate(na_datagen::Tier::Small, 11, Timestamp::now().as_secs() - 60).unwrap();
    // The relay itself applies replaceable, addressable and deletion semantics and would not
    // serve every event; regular kinds make the count exact.
    let distinct: Vec<&Event> = data
        .distinct()
        .into_iter()
        .filter(|e| e.kind.is_regular() && e.kind != Kind::EventDeletion)
        .collect();
    let shared: Vec<Event> = distinct[..distinct.len() - 20]
        .iter()
        .map(|e| (*e).clone())
        .collect();
    let mut only_a = shared.clone();
    only_a.extend(
        distinct[distinct.len() - 20..distinct.len() - 10]
            .iter()
            .map(|e| (*e).clone()),
    );
    let mut only_b = shared.clone();
    only_b.extend(distinct[distinct.len() - 10..].iter().map(|e| (*e).clone()));
    let (a, b) = (
        start_relay(&only_a, None).await,
        start_relay(&only_b, None).await,
    );
    let urls = vec![a.url().await.to_string(), b.url().await.to_string()];
    let keys: Vec<String> = urls.iter().map(|u| na_ingest::relay_key_of(u)).collect();

    let started = Utc::now();
    let report = run_until_caught_up(&db, &client, &config(&urls), started).await;

    let stored = count(&client, "SELECT count(*) FROM events").await;
    assert_eq!(stored, distinct.len() as i64);
    assert_eq!(report.stats.stored, distinct.len() as u64);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM events WHERE cardinality(seen_on) = 2"
        )
        .await,
        shared.len() as i64,
        "events delivered by both relays remember both"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts").await,
        expected_facts(&distinct)
    );
    let accepted = db.counter(&keys[0], "accepted").await.unwrap()
        + db.counter(&keys[1], "accepted").await.unwrap();
    assert_eq!(accepted, distinct.len() as i64);
    let duplicates = db.counter(&keys[0], "duplicate").await.unwrap()
        + db.counter(&keys[1], "duplicate").await.unwrap();
    assert!(duplicates >= shared.len() as i64, "{duplicates} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_dropped_and_counted_and_never_stop_the_stream() {
    let (db, client) = db().await;
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    let first = note(&keys, "oldest and fine", now - 500);
    let forged = note(&keys, "forged signature", now - 400);
    let future = note(&keys, "from the future", now + 3600);
    let tampered = note(&keys, "original", now - 300);
    let last = note(&keys, "after all the garbage", now - 200);
    let tampered_json = tampered.as_json().replace("\"original\"", "\"changed\"");
    let script = vec![
        first.as_json(),
        forge_signature(&forged),
        "not json at all".into(),
        r#"{"id":"zz","kind":1}"#.into(),
        future.as_json(),
        tampered_json,
        r#"{"id":"ABCDEF"}"#.into(),
        last.as_json(),
    ];
    let relay = ScriptedRelay::start(script).await;

    let started = Utc::now();
    run_until_caught_up(
        &db,
        &client,
        &config(std::slice::from_ref(&relay.url)),
        started,
    )
    .await;

    let ids: HashSet<Vec<u8>> = client
        .query("SELECT id FROM events", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: HashSet<Vec<u8>> = [&first, &last]
        .iter()
        .map(|e| e.id.to_bytes().to_vec())
        .collect();
    assert_eq!(ids, want, "only the two genuine events are stored");
    let key = na_ingest::relay_key_of(&relay.url);
    let c = |o: &'static str| db.counter(&key, o);
    assert_eq!(c("accepted").await.unwrap(), 2);
    assert_eq!(c("bad_signature").await.unwrap(), 1);
    assert_eq!(c("bad_id").await.unwrap(), 1);
    assert_eq!(c("future").await.unwrap(), 1);
    assert_eq!(c("malformed").await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_watermark_with_nothing_lost_or_twice() {
    let (db, client) = db().await;
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    let before: Vec<Event> = (0..50)
        .map(|i| note(&keys, &format!("before {i}"), now - 3000 + i * 10))
        .collect();
    let relay = start_relay(&before, None).await;
    let url = relay.url().await.to_string();
    let key = na_ingest::relay_key_of(&url);
    let cfg = config(std::slice::from_ref(&url));

    let first_run = Utc::now();
    run_until_caught_up(&db, &client, &cfg, first_run).await;
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 50);
    let watermark = db
        .watermark(db.relay_id(&key).await.unwrap())
        .await
        .unwrap()
        .expect("watermark set");
    assert!(watermark >= first_run);

    // While ingest is down: new events, and one published late with an old created_at
    // (inside the overlap window) — the re-scan must pick both up.
    let publisher = Client::default();
    publisher.add_relay(&url).await.unwrap();
    publisher.connect().await;
    // The last is dated a day back, far behind the watermark minus the overlap: only the
    // NIP-77 reconciliation can find it.
    let mut while_down = vec![
        note(&keys, "published while down", now),
        note(&keys, "backdated, late", now - 120),
        note(&keys, "backdated by a day", now - 86_400),
    ];
    for ev in &while_down {
        publisher.send_event(ev).await.unwrap();
    }

    // Second run; once caught up, publish live: a new note and one dated two days ago,
    // which a live filter with `since` would silently drop.
    let second_run = Utc::now();
    let live = [
        note(&keys, "live and new", Timestamp::now().as_secs()),
        note(&keys, "live but dated two days ago", now - 2 * 86_400),
    ];
    let (stop_tx, run) = common::spawn_run(&db, &cfg);
    common::wait_for_watermark(&client, second_run).await;
    for ev in &live {
        publisher.send_event(ev).await.unwrap();
    }
    common::wait_for(&client, "SELECT count(*) = 55 FROM events").await;
    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();

    while_down.extend(live);
    let all: Vec<&Event> = before.iter().chain(&while_down).collect();
    assert_eq!(
        count(&client, "SELECT count(*) FROM events").await,
        all.len() as i64
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts").await,
        expected_facts(&all),
        "no fact twice"
    );
    assert_eq!(
        db.counter(&key, "accepted").await.unwrap(),
        all.len() as i64
    );
    assert!(
        db.counter(&key, "duplicate").await.unwrap() > 0,
        "the overlap re-scan re-delivered events"
    );
    let later = db
        .watermark(db.relay_id(&key).await.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(later > watermark);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_pages_across_a_second_fuller_than_the_relay_limit() {
    let (db, client) = db().await;
    let target = Keys::generate();
    let fans: Vec<Keys> = (0..5).map(|_| Keys::generate()).collect();
    let now = Timestamp::now().as_secs();
    let mut events: Vec<Event> = (0..40)
        .map(|i| note(&target, &format!("own {i}"), now - 10_000 + i * 7))
        .collect();
    let busy = now - 5_000;
    let tp = target.public_key();
    let anchor = events[0].clone();
    for (i, fan) in fans.iter().enumerate() {
        // 45 events in one second, 15 of each of three kinds; the relay returns 20 per REQ.
        for j in 0..15 {
            let content = format!("{i}-{j}");
            let reply = EventBuilder::text_note(&content)
                .tag(Tag::event(anchor.id))
                .tag(Tag::public_key(tp));
            let reaction = EventBuilder::new(Kind::Reaction, "+")
                .tag(Tag::event(anchor.id))
                .tag(Tag::public_key(tp))
                .tag(Tag::hashtag(&content)); // otherwise all 15 would be one event
            let repost = EventBuilder::new(Kind::Repost, &content)
                .tag(Tag::event(anchor.id))
                .tag(Tag::public_key(tp));
            if i < 3 {
                let builder = [reply, reaction, repost].into_iter().nth(i).unwrap();
                events.push(
                    builder
                        .custom_created_at(Timestamp::from(busy))
                        .sign_with_keys(fan)
                        .unwrap(),
                );
            }
        }
        // Unrelated chatter that must not be fetched.
        events.push(note(fan, "unrelated", now - 100));
    }
    let relay = start_relay(&events, Some(20)).await;
    let url = relay.url().await.to_string();
    let mut cfg = config(std::slice::from_ref(&url));
    cfg.page_limit = 20;

    let (progress, watch) = tokio::sync::watch::channel(Default::default());
    let params = na_ingest::backfill::BackfillParams {
        pubkey: tp.to_hex(),
        since: None,
    };
    let done = na_ingest::backfill::backfill(&db, &cfg, &params, &progress)
        .await
        .unwrap();
    assert!(done.done && done.errors.is_empty(), "{done:?}");
    assert!(watch.borrow().done);
    for walk in done.walks.values() {
        assert!(walk.truncated_seconds.is_empty(), "{walk:?}");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 40 + 45);
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM events WHERE created_at = to_timestamp({busy})")
        )
        .await,
        45
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_caught_up_after_the_reconnect() {
    let (db, client) = db().await;
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    let before: Vec<Event> = (0..30)
        .map(|i| note(&keys, &format!("before {i}"), now - 2000 + i * 10))
        .collect();
    let relay = start_relay(&before, None).await;
    let relay_url = relay.url().await.to_string();
    let proxy = na_test_support::CuttableProxy::start(upstream_of(&relay).await).await;
    let mut cfg = config(std::slice::from_ref(&proxy.url));
    cfg.reconnect = Duration::from_secs(1);
    let key = na_ingest::relay_key_of(&proxy.url);

    let (stop_tx, run) = common::spawn_run(&db, &cfg);
    let started = Utc::now();
    common::wait_for_watermark(&client, started).await;
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 30);
    let before_cut = db
        .watermark(db.relay_id(&key).await.unwrap())
        .await
        .unwrap()
        .unwrap();

    // The link drops; meanwhile the relay receives events, one of them backdated.
    proxy.cut().await;
    let publisher = Client::default();
    publisher.add_relay(&relay_url).await.unwrap();
    publisher.connect().await;
    let during = [
        note(&keys, "during the outage", now),
        note(&keys, "during, backdated", now - 300),
    ];
    for ev in &during {
        publisher.send_event(ev).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count(&client, "SELECT count(*) FROM events").await,
        30,
        "nothing gets through a cut link"
    );
    proxy.restore();

    // The client reconnects, re-sends the live filter, and the catch-up fetches the gap.
    common::wait_for(&client, "SELECT count(*) = 32 FROM events").await;
    let after = Utc::now();
    common::wait_for_watermark(&client, after).await;
    // Caught up: what is published now comes only through the live subscription, which the
    // reconnected session must have sent again; the watermark moves on with it.
    let live = note(
        &keys,
        "live after the reconnect",
        Timestamp::now().as_secs(),
    );
    let published = Utc::now();
    publisher.send_event(&live).await.unwrap();
    common::wait_for(&client, "SELECT count(*) = 33 FROM events").await;
    common::wait_for_watermark(&client, published).await;
    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();

    let all: Vec<&Event> = before.iter().chain(&during).chain([&live]).collect();
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts").await,
        expected_facts(&all)
    );
    assert_eq!(db.counter(&key, "accepted").await.unwrap(), 33);
    assert!(
        db.watermark(db.relay_id(&key).await.unwrap())
            .await
            .unwrap()
            .unwrap()
            > before_cut
    );
}

/// An `lnurl` tag (LUD-01) for a pay URL.
fn lnurl(url: &str) -> String {
    bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("lnurl").unwrap(), url.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zap_receipts_get_the_verdict_of_the_recipients_lnurl_server() {
    use na_test_support::{LnurlAnswer, LnurlServer};
    let (db, client) = db().await;
    let (wallet, impostor, sender, bob) = (
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
    );
    let server = LnurlServer::start(std::collections::HashMap::from([
        (
            "alice".to_owned(),
            LnurlAnswer::Nostr(wallet.public_key().to_hex()),
        ),
        (
            "bob".to_owned(),
            LnurlAnswer::Nostr(impostor.public_key().to_hex()),
        ),
    ]))
    .await;
    let (alice, carol) = (Keys::generate().public_key(), Keys::generate().public_key());
    let now = Timestamp::now().as_secs();
    let lnurl_tag = |name: &str| Tag::parse(["lnurl", &lnurl(&server.pay_url(name))]).unwrap();
    let zap = |to: &PublicKey, tags: Vec<Tag>, at: u64| {
        na_datagen::zap_receipt(&sender, &wallet, to, tags, 21_000, at).unwrap()
    };
    // Alice's request names her endpoint, which names the wallet: verified.
    let to_alice = zap(&alice, vec![lnurl_tag("alice")], now - 50);
    // Bob's request names none; his stored profile's endpoint names another key: mismatch.
    let to_bob = zap(&bob.public_key(), vec![], now - 40);
    let bob_profile = EventBuilder::new(
        Kind::Metadata,
        format!(
            r#"{{"name":"bob","lud06":"{}"}}"#,
            lnurl(&server.pay_url("bob"))
        ),
    )
    .custom_created_at(Timestamp::from(now - 100))
    .sign_with_keys(&bob)
    .unwrap();
    // Carol's endpoint does not exist: unverified, and still a valid zap.
    let to_carol = zap(&carol, vec![lnurl_tag("carol")], now - 30);

    let profile = ScriptedRelay::start(vec![bob_profile.as_json()]).await;
    run_until_caught_up(
        &db,
        &client,
        &config(std::slice::from_ref(&profile.url)),
        Utc::now(),
    )
    .await;
    let relay = ScriptedRelay::start(vec![
        to_alice.as_json(),
        to_bob.as_json(),
        to_carol.as_json(),
    ])
    .await;
    let mut cfg = config(std::slice::from_ref(&relay.url));
    cfg.lnurl = Some(na_ingest::config::lnurl_resolver(Duration::from_secs(2), true).unwrap());
    run_until_caught_up(&db, &client, &cfg, Utc::now()).await;

    let verdicts: std::collections::HashMap<String, (Option<String>, i32)> = client
        .query(
            "SELECT encode(subject, 'hex'), dims->>'lnurl', flags FROM facts WHERE class = 8",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let valid = |verdict: &str| Some((Some(verdict.to_owned()), 0));
    assert_eq!(verdicts.get(&alice.to_hex()).cloned(), valid("verified"));
    assert_eq!(
        verdicts.get(&bob.public_key().to_hex()).cloned(),
        valid("mismatch")
    );
    assert_eq!(verdicts.get(&carol.to_hex()).cloned(), valid("unverified"));
    assert_eq!(server.hits(), 3, "one lookup per endpoint");
}

/// The address of a relay started by `start_relay`.
async fn upstream_of(relay: &nostr_relay_builder::LocalRelay) -> std::net::SocketAddr {
    relay
        .url()
        .await
        .to_string()
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_down_at_start_is_subscribed_and_caught_up_once_it_is_up_and_one_never_up_is_reported()
 {
    let (db, client) = db().await;
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    let stored: Vec<Event> = (0..20)
        .map(|i| note(&keys, &format!("stored {i}"), now - 1000 + i * 10))
        .collect();
    let relay = start_relay(&stored, None).await;
    let relay_url = relay.url().await.to_string();
    let proxy = na_test_support::CuttableProxy::start(upstream_of(&relay).await).await;
    proxy.cut().await;
    // A second relay that never answers: its proxy leads to a relay that is never there.
    let never = na_test_support::CuttableProxy::start("127.0.0.1:9".parse().unwrap()).await;
    never.cut().await;
    let mut cfg = config(&[proxy.url.clone(), never.url.clone()]);
    cfg.reconnect = Duration::from_secs(1);
    cfg.request_timeout = Duration::from_secs(3);
    let (stop_tx, run) = common::spawn_run(&db, &cfg);

    // Down: nothing ingested, and both relays and ingest itself say so.
    common::wait_for(
        &client,
        "SELECT count(*) = 2 FROM relay_health WHERE NOT connected AND error IS NOT NULL",
    )
    .await;
    common::wait_for(
        &client,
        "SELECT EXISTS (SELECT 1 FROM component_health
                        WHERE component = 'ingest' AND error LIKE 'no relay is connected%')",
    )
    .await;
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 0);

    // Up: subscribed live, caught up from the start, watermark set.
    let up = Utc::now();
    proxy.restore();
    common::wait_for(&client, "SELECT count(*) = 20 FROM events").await;
    let key = na_ingest::relay_key_of(&proxy.url);
    let id = db.relay_id(&key).await.unwrap();
    common::wait_for(
        &client,
        &format!(
            "SELECT EXISTS (SELECT 1 FROM ingest_watermarks WHERE relay_id = {id} AND watermark >= '{}')",
            up.to_rfc3339()
        ),
    )
    .await;
    // The live subscription works on a relay that was down when the run began.
    let publisher = Client::default();
    publisher.add_relay(&relay_url).await.unwrap();
    publisher.connect().await;
    let live = note(&keys, "live after the outage", Timestamp::now().as_secs());
    publisher.send_event(&live).await.unwrap();
    common::wait_for(&client, "SELECT count(*) = 21 FROM events").await;
    common::wait_for(
        &client,
        &format!("SELECT connected FROM relay_health WHERE relay_id = {id}"),
    )
    .await;
    common::wait_for(
        &client,
        "SELECT ok_at > error_at FROM component_health WHERE component = 'ingest'",
    )
    .await;
    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();

    // The relay that never came up: no watermark, its error kept.
    let never_id = db
        .relay_id(&na_ingest::relay_key_of(&never.url))
        .await
        .unwrap();
    assert!(db.watermark(never_id).await.unwrap().is_none());
    let error: Option<String> = client
        .query_one(
            "SELECT error FROM relay_health WHERE relay_id = $1",
            &[&never_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(error.is_some());
    assert_eq!(db.counter(&key, "accepted").await.unwrap(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_connection_killed_mid_batch_heals_with_nothing_lost_or_twice() {
    let (db, client) = db().await;
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    let stored: Vec<Event> = (0..30)
        .map(|i| note(&keys, &format!("stored {i}"), now - 1000 + i * 10))
        .collect();
    let relay = start_relay(&stored, None).await;
    let url = relay.url().await.to_string();
    let cfg = config(std::slice::from_ref(&url));
    let (stop_tx, run) = common::spawn_run(&db, &cfg);
    let started = Utc::now();
    common::wait_for_watermark(&client, started).await;
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 30);

    // Hold the writers' lock, so the next batch waits inside its transaction; then kill the
    // connection it waits on.
    client
        .execute("SELECT pg_advisory_lock(7413001)", &[])
        .await
        .unwrap();
    let publisher = Client::default();
    publisher.add_relay(&url).await.unwrap();
    publisher.connect().await;
    let live: Vec<Event> = (0..10)
        .map(|i| note(&keys, &format!("live {i}"), Timestamp::now().as_secs() - i))
        .collect();
    for ev in &live[..5] {
        publisher.send_event(ev).await.unwrap();
    }
    common::wait_for(
        &client,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                        AND wait_event_type = 'Lock' AND pid <> pg_backend_pid())",
    )
    .await;
    let killed = count(
        &client,
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND pid <> pg_backend_pid()) k",
    )
    .await;
    assert!(killed >= 1);
    for ev in &live[5..] {
        publisher.send_event(ev).await.unwrap();
    }
    // The failure is visible while it lasts...
    common::wait_for(
        &client,
        "SELECT EXISTS (SELECT 1 FROM component_health
                        WHERE component = 'ingest' AND error LIKE 'writing events fails%')",
    )
    .await;
    client
        .execute("SELECT pg_advisory_unlock(7413001)", &[])
        .await
        .unwrap();
    // ...and heals: every event stored, once.
    common::wait_for(&client, "SELECT count(*) = 40 FROM events").await;
    common::wait_for(
        &client,
        "SELECT ok_at > error_at FROM component_health WHERE component = 'ingest'",
    )
    .await;
    stop_tx.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    let all: Vec<&Event> = stored.iter().chain(&live).collect();
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts").await,
        expected_facts(&all)
    );
    assert_eq!(
        db.counter(&na_ingest::relay_key_of(&url), "accepted")
            .await
            .unwrap(),
        40,
        "nothing counted twice"
    );
    assert_eq!(
        report.restarts, 0,
        "the pipeline retried its batch: {report:?}"
    );
}

/// Lines of a relay dump with every kind of trouble: good events (one twice), a forged
/// signature, a tampered copy, an event from the future, garbage, and a blank line.
fn dump(keys: &Keys, now: u64, n: u64) -> (Vec<String>, Vec<Event>) {
    let good: Vec<Event> = (0..n)
        .map(|i| note(keys, &format!("dumped {i}"), now - 5000 + i))
        .collect();
    let forged = note(keys, "forged", now - 10);
    let tampered = note(keys, "original", now - 9)
        .as_json()
        .replace("\"original\"", "\"changed\"");
    let future = note(keys, "from the future", now + 3600);
    let mut lines: Vec<String> = good.iter().map(JsonUtil::as_json).collect();
    lines.push(good[0].as_json());
    lines.push(forge_signature(&forged));
    lines.push(tampered);
    lines.push(future.as_json());
    lines.push("not json".into());
    lines.push(String::new());
    lines.push(r#"{"kind":1}"#.into());
    (lines, good)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_checks_every_line_counts_each_reason_and_resumes_where_it_stopped() {
    let (db, client) = db().await;
    let keys = Keys::generate();
    let now = Timestamp::now().as_secs();
    let (lines, good) = dump(&keys, now, 300);
    let dir = std::env::temp_dir().join(format!("na-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dump.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    // Interrupted after its first committed batch...
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let mut first_tx = Some(first_tx);
    tokio::select! {
        _ = na_ingest::import::import_file(&db, &path, 100, None, |_| {
            if let Some(tx) = first_tx.take() {
                let _ = tx.send(());
            }
        }) => panic!("the import should have been interrupted"),
        _ = first_rx => {}
    }
    let partial = count(&client, "SELECT count(*) FROM events").await;
    assert!(partial > 0 && partial < 300, "{partial}");
    // ...then run again: it resumes after the committed lines.
    let report = na_ingest::import::import_file(&db, &path, 100, None, |_| {})
        .await
        .unwrap();
    assert!(report.resumed_at_line >= 100, "{report:?}");
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 300);
    let all: Vec<&Event> = good.iter().collect();
    assert_eq!(
        count(&client, "SELECT count(*) FROM facts").await,
        expected_facts(&all)
    );
    let source = report.source.clone();
    let c = |o: &'static str| db.counter(&source, o);
    assert_eq!(c("accepted").await.unwrap(), 300, "each event counted once");
    assert_eq!(c("duplicate").await.unwrap(), 1);
    assert_eq!(c("bad_signature").await.unwrap(), 1);
    assert_eq!(c("bad_id").await.unwrap(), 1);
    assert_eq!(c("future").await.unwrap(), 1);
    assert_eq!(c("malformed").await.unwrap(), 2);

    // Done: a third run reads nothing; lines appended later are read on the next.
    let again = na_ingest::import::import_file(&db, &path, 100, None, |_| {})
        .await
        .unwrap();
    assert_eq!((again.lines, again.accepted), (0, 0), "{again:?}");
    let late = note(&keys, "appended", now - 1);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, format!("{}\n", late.as_json()).as_bytes()).unwrap();
    let more = na_ingest::import::import_file(&db, &path, 100, None, |_| {})
        .await
        .unwrap();
    assert_eq!((more.lines, more.accepted), (1, 1), "{more:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
