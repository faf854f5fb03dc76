//! Replaceable and addressable events: follow-list flows (NIP-02), article publications
//! (NIP-23), and the latest-wins heads (NIP-01).

use na_storage::IngestBatch;
use nostr_sdk::prelude::*;

use crate::{FACTS, NET_LOG, count, fact_rows, setup, to_new};

fn follow_list(keys: &Keys, at: u64, tags: Vec<Tag>) -> Event {
    EventBuilder::new(Kind::ContactList, "")
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(keys)
        .unwrap()
}

async fn store_each(db: &na_storage::Db, batches: &[Vec<&Event>]) {
    let r = db.relay_id("ws://a").await.unwrap();
    for events in batches {
        db.store_batch(&IngestBatch {
            events: events.iter().map(|e| to_new(e, r)).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

/// The winning version of `kind` (one author per test), as hex.
async fn head_of(client: &tokio_postgres::Client, kind: i32, d: &str) -> String {
    client
        .query_one(
            "SELECT encode(event_id, 'hex') FROM replaceable_heads WHERE kind = $1 AND d = $2",
            &[&kind, &d],
        )
        .await
        .unwrap()
        .get(0)
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[tokio::test]
async fn follow_lists_become_flows_with_a_baseline_a_stale_list_and_a_wipe() {
    let now = Timestamp::now().as_secs();
    let follower = Keys::generate();
    let [a, b, c, d] = [(); 4].map(|()| Keys::generate().public_key());
    let p = |pk: &PublicKey| Tag::public_key(*pk);
    let older = follow_list(&follower, now - 1000, vec![p(&a), p(&d)]);
    let first = follow_list(
        &follower,
        now - 900,
        vec![
            p(&a),
            p(&b),
            p(&b),
            p(&follower.public_key()),
            Tag::parse(["p", "npub1notahexkey"]).unwrap(),
            Tag::parse(["p", &a.to_hex().to_uppercase()]).unwrap(),
        ],
    );
    let second = follow_list(&follower, now - 800, vec![p(&b), p(&c)]);
    let wipe = follow_list(&follower, now - 700, vec![]);
    let restored = follow_list(&follower, now - 600, vec![p(&b), p(&c), p(&d)]);
    let arrival = [&first, &second, &older, &wipe, &restored];

    let mut seen = Vec::new();
    for one_batch in [false, true] {
        let (db, client, _) = setup().await;
        let batches: Vec<Vec<&Event>> = if one_batch {
            vec![arrival.to_vec()]
        } else {
            arrival.iter().map(|e| vec![*e]).collect()
        };
        store_each(&db, &batches).await;

        let rows = client
            .query(
                "SELECT f.event_id, c.name, f.subject, f.dims->>'verdict'
                 FROM facts f JOIN fact_classes c ON c.id = f.class
                 WHERE f.class BETWEEN 11 AND 14 ORDER BY f.created_at, f.seq",
                &[],
            )
            .await
            .unwrap();
        let got: Vec<(String, String, Option<String>, Option<String>)> = rows
            .iter()
            .map(|r| {
                (
                    hex(r.get::<_, &[u8]>(0)),
                    r.get(1),
                    r.get::<_, Option<&[u8]>>(2).map(hex),
                    r.get(3),
                )
            })
            .collect();
        let fact = |ev: &Event, class: &str, who: Option<&PublicKey>, verdict: Option<&str>| {
            (
                ev.id.to_hex(),
                class.to_owned(),
                who.map(PublicKey::to_hex),
                verdict.map(str::to_owned),
            )
        };
        // Within one list: baseline/gained before lost, each in key order.
        let sorted = |mut keys: Vec<PublicKey>| {
            keys.sort_by_key(|k| k.to_hex());
            keys
        };
        let mut want = vec![fact(&older, "follow_list", None, Some("stale"))];
        want.push(fact(&first, "follow_list", None, Some("baseline")));
        for k in sorted(vec![a, b]) {
            want.push(fact(&first, "follow_baseline", Some(&k), None));
        }
        want.push(fact(&second, "follow_list", None, Some("update")));
        want.push(fact(&second, "follow_gained", Some(&c), None));
        want.push(fact(&second, "follow_lost", Some(&a), None));
        want.push(fact(&wipe, "follow_list", None, Some("wipe")));
        want.push(fact(&restored, "follow_list", None, Some("update")));
        want.push(fact(&restored, "follow_gained", Some(&d), None));
        assert_eq!(got, want, "one batch: {one_batch}");

        // The edges are what the flows add up to, each since the list that added it.
        let edges: Vec<(String, i64)> = client
            .query(
                "SELECT encode(followee, 'hex'), extract(epoch FROM since)::bigint
                 FROM follow_edges ORDER BY since, followee",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            edges,
            vec![
                (b.to_hex(), (now - 900) as i64),
                (c.to_hex(), (now - 800) as i64),
                (d.to_hex(), (now - 600) as i64),
            ]
        );
        let netted = count(
            &client,
            "SELECT count(*) FROM (
                 SELECT subject FROM facts GROUP BY subject
                 HAVING sum(CASE class WHEN 12 THEN 1 WHEN 13 THEN 1 WHEN 14 THEN -1 ELSE 0 END) = 1
             ) s",
        )
        .await;
        assert_eq!(netted, 3, "flows net to the edges");
        let head: Vec<u8> = client
            .query_one(
                "SELECT h.event_id FROM replaceable_heads h JOIN follow_lists l
                   ON l.follower = h.pubkey AND l.event_id = h.event_id WHERE h.kind = 3",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(hex(&head), restored.id.to_hex());
        assert_eq!(
            fact_rows(&client, FACTS).await,
            fact_rows(&client, NET_LOG).await
        );
        seen.push(fact_rows(&client, FACTS).await);
    }
    assert_eq!(seen[0], seen[1], "batching does not change the facts");
}

#[tokio::test]
async fn a_deleted_follow_list_keeps_its_flows() {
    let now = Timestamp::now().as_secs();
    let follower = Keys::generate();
    let followee = Keys::generate().public_key();
    let list = follow_list(&follower, now - 100, vec![Tag::public_key(followee)]);
    let deletion = EventBuilder::new(Kind::EventDeletion, "")
        .tag(Tag::event(list.id))
        .custom_created_at(Timestamp::from(now - 50))
        .sign_with_keys(&follower)
        .unwrap();
    let (db, client, _) = setup().await;
    store_each(&db, &[vec![&list], vec![&deletion]]).await;
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM facts WHERE class = 11 AND flags & 8 = 8"
        )
        .await,
        1,
        "the list itself is deleted"
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM facts WHERE class = 12 AND flags & 8 = 0"
        )
        .await,
        1,
        "its baseline stays, or follower_count would go negative at the next list"
    );
}

#[tokio::test]
async fn an_article_is_published_by_the_first_version_to_arrive() {
    let now = Timestamp::now().as_secs();
    let author = Keys::generate();
    let version = |content: &str, at: u64| {
        EventBuilder::new(Kind::LongFormTextNote, content)
            .tag(Tag::identifier("post"))
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(&author)
            .unwrap()
    };
    let (v1, v2) = (version("v1", now - 500), version("v2", now - 100));
    let other = EventBuilder::new(Kind::LongFormTextNote, "another")
        .tag(Tag::identifier("other"))
        .custom_created_at(Timestamp::from(now - 100))
        .sign_with_keys(&author)
        .unwrap();
    let cases: [(&str, Vec<Vec<&Event>>, &Event); 3] = [
        ("in order", vec![vec![&v1], vec![&v2, &other]], &v1),
        ("edit first", vec![vec![&v2], vec![&other, &v1]], &v2),
        ("one batch", vec![vec![&v2, &other, &v1]], &v2),
    ];
    for (name, batches, publication) in cases {
        let (db, client, _) = setup().await;
        store_each(&db, &batches).await;
        let published: Vec<String> = client
            .query(
                "SELECT encode(event_id, 'hex') FROM facts
                 WHERE class = 9 AND flags & 32 = 0 ORDER BY target_coord",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut want = vec![publication.id.to_hex(), other.id.to_hex()];
        // target_coord order: "…:other" < "…:post".
        want.reverse();
        assert_eq!(published, want, "{name}");
        let head = head_of(&client, 30023, "post").await;
        assert_eq!(
            head,
            v2.id.to_hex(),
            "{name}: the latest version is the head"
        );
    }
}

#[tokio::test]
async fn heads_take_the_latest_version_and_the_lowest_id_on_a_tie() {
    let now = Timestamp::now().as_secs();
    let keys = Keys::generate();
    let profile = |name: &str, at: u64| {
        EventBuilder::new(Kind::Metadata, format!(r#"{{"name":"{name}"}}"#))
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(&keys)
            .unwrap()
    };
    let (x, y, old) = (
        profile("x", now - 10),
        profile("y", now - 10),
        profile("old", now - 20),
    );
    let lowest = std::cmp::min(x.id, y.id).to_hex();
    for order in [[&x, &y, &old], [&old, &y, &x], [&y, &old, &x]] {
        let (db, client, _) = setup().await;
        let batches: Vec<Vec<&Event>> = order.iter().map(|e| vec![*e]).collect();
        store_each(&db, &batches).await;
        let head = head_of(&client, 0, "").await;
        assert_eq!(head, lowest);
    }
    // Within one batch as well.
    let (db, client, _) = setup().await;
    store_each(&db, &[vec![&old, &x, &y]]).await;
    let head = head_of(&client, 0, "").await;
    assert_eq!(head, lowest);
}
