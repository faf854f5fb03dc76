//! `GET /api/v2/analytics/notes/{event_id}` end to end: what others did to one note, from
//! its stored facts through the core@1 component, against a native from-scratch
//! computation; live without compaction; ids in every form; bad input; shadow versions;
//! the async path.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use na_storage::Db;
use na_storage::facts::FactRow;
use nostr::PublicKey;
use nostr::nips::nip19::ToBech32;
use query::QueryPolicy;
use serde_json::{Value, json};

use common::*;

/// The target's event that most facts point at.
async fn busiest_note(db: &Db, author: &PublicKey) -> [u8; 32] {
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for f in stored_facts(db).await {
        if f.subject.as_deref() == Some(author.to_bytes().as_slice())
            && let Some(t) = f.target_event
        {
            *counts.entry(t).or_default() += 1;
        }
    }
    let (id, n) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .unwrap();
    assert!(n > 10, "the dataset engages the target's notes ({n} facts)");
    id.try_into().unwrap()
}

/// Each core@1 metric over `[from, to)` from the facts that target `note`, credited to
/// `author`, computed natively.
async fn expected_for_note(
    db: &Db,
    note: &[u8; 32],
    author: &PublicKey,
    from: i64,
    to: i64,
) -> BTreeMap<String, i64> {
    let about_note = |f: &FactRow| f.target_event.as_deref() == Some(note.as_slice());
    expected(
        &contributions_from_scratch(db, author, about_note).await,
        from,
        to,
    )
}

/// The answer's values equal the from-scratch ones over the window it answered, its points
/// add up to them and its breakdowns split them.
async fn assert_note_is_exact(env: &Env, note: &[u8; 32], author: &PublicKey, answer: &Value) {
    let (from, to) = (ts(&answer["window"]["from"]), ts(&answer["window"]["to"]));
    let want = expected_for_note(&env.db, note, author, from, to).await;
    for m in answer["metrics"].as_array().unwrap() {
        let name = m["metric"].as_str().unwrap();
        let value = m["value"].as_i64().unwrap();
        assert_eq!(
            value,
            want.get(name).copied().unwrap_or_default(),
            "{name} of the note over [{from}, {to})"
        );
        assert_eq!(m["exact"], true, "{name}");
        if matches!(m["aggregation"].as_str(), Some("count" | "sum")) {
            let points: i64 = m["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_i64().unwrap())
                .sum();
            assert_eq!(points, value, "{name}: points add up to the value");
            for b in m["breakdowns"].as_array().unwrap() {
                let rows: i64 = b["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["total"].as_i64().unwrap())
                    .sum();
                if b["others"] == 0 {
                    assert_eq!(rows, value, "{name} by {}", b["dimension"]);
                }
            }
        }
    }
}

fn hex_id(note: &[u8; 32]) -> String {
    nostr::EventId::from_slice(note).unwrap().to_hex()
}

fn value_of(answer: &Value, metric: &str) -> i64 {
    answer["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == metric || m["metric"] == metric)
        .unwrap_or_else(|| panic!("{metric} is not in {answer:#}"))["value"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_note_drilldown_is_what_others_did_to_it_and_is_live_without_compaction() {
    let env = setup(20_000).await;
    let data = small_dataset();
    let events = data.distinct();
    let (first, rest) = events.split_at(events.len() / 2);
    store_events(&env.db, first).await;
    compact_all(&env.compactor).await;
    let note = busiest_note(&env.db, &data.target).await;
    let path = format!("/api/v2/analytics/notes/{}", hex_id(&note));

    let before = get_ok(&env.app, &path).await;
    assert_eq!(before["author"], data.target.to_hex());
    assert_eq!(before["event_id"], hex_id(&note));
    assert_eq!(before["watermarks"], json!([]));
    assert!(before["facts_read"].as_u64().unwrap() > 10, "{before:#}");
    assert_note_is_exact(&env, &note, &data.target, &before).await;

    // The default metrics are those about what others do to the author's events.
    let ids: BTreeSet<&str> = before["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    for about in [
        "replies_received",
        "comments_received",
        "reactions_received",
        "reposts_received",
        "quotes_received",
        "zaps_received",
        "zap_msats_received",
        "unique_engagers",
    ] {
        assert!(ids.contains(about), "{about} missing from {ids:?}");
    }
    for not_about in [
        "notes_published",
        "reactions_published",
        "zaps_sent",
        "mentions_received",
        "followers_gained",
        "follower_count",
    ] {
        assert!(!ids.contains(not_about), "{not_about} in {ids:?}");
    }
    assert!(value_of(&before, "reactions_received") > 0, "{before:#}");

    // The rest arrives; nothing is compacted, the drilldown has it all the same.
    store_events(&env.db, rest).await;
    let after = get_ok(&env.app, &path).await;
    assert_note_is_exact(&env, &note, &data.target, &after).await;
    assert!(
        after["facts_read"].as_u64() >= before["facts_read"].as_u64(),
        "{after:#}"
    );

    // Who engaged with the note: the pubkeys behind its unique_engagers, each with its
    // contributions, from scratch; in any id form; refused for another author's pubkey.
    let about_note = |f: &FactRow| f.target_event.as_deref() == Some(note.as_slice());
    let (from, to) = (ts(&after["window"]["from"]), ts(&after["window"]["to"]));
    let scratch = contributions_from_scratch(&env.db, &data.target, about_note).await;
    let want = engagers_from_scratch(&scratch, "unique_engagers", from, to);
    let engagers = |note_id: String, pubkey: String| {
        let app = env.app.clone();
        async move {
            get(
                &app,
                &format!(
                    "/api/v2/analytics/users/{pubkey}/engagers?note={note_id}&from={from}&to={to}&top=100"
                ),
            )
            .await
        }
    };
    let (status, listed) = engagers(hex_id(&note), data.target.to_hex()).await;
    assert_eq!(status, StatusCode::OK, "{listed:#}");
    let got: BTreeMap<String, i64> = listed_engagers(&listed).into_iter().collect();
    assert!(want.len() > 1, "the note has engagers: {want:?}");
    assert_eq!(got, want);
    assert_eq!(
        listed["total"].as_i64().unwrap(),
        value_of(&after, "unique_engagers"),
        "as many as the drilldown counts"
    );
    let bech_note = nostr::EventId::from_slice(&note)
        .unwrap()
        .to_bech32()
        .unwrap();
    let (status, same) = engagers(bech_note, data.target.to_hex()).await;
    assert_eq!(
        (status, &same["engagers"]),
        (StatusCode::OK, &listed["engagers"])
    );
    let stranger = nostr::Keys::generate().public_key().to_hex();
    let (status, problem) = engagers(hex_id(&note), stranger).await;
    assert_refused(
        (status, &problem),
        StatusCode::BAD_REQUEST,
        "ask for its author's engagers",
    );
    let (status, _) = engagers("a".repeat(64), data.target.to_hex()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The same note as note1…, as a nostr: URI, and as a job's result.
    let bech = nostr::EventId::from_slice(&note)
        .unwrap()
        .to_bech32()
        .unwrap();
    for id in [bech.clone(), format!("nostr:{bech}")] {
        let same = get_ok(&env.app, &format!("/api/v2/analytics/notes/{id}")).await;
        assert_eq!(same["metrics"], after["metrics"], "{id}");
    }

    // A window and a granularity: a week by day, with the reaction breakdown's top 2.
    let end = data.end as i64;
    let week = get_ok(
        &env.app,
        &format!(
            "{path}?from={}&to={end}&granularity=day&top=2&metrics=reactions_received",
            end - 7 * 86_400
        ),
    )
    .await;
    let m = &week["metrics"][0];
    assert_eq!(week["metrics"].as_array().unwrap().len(), 1);
    let points = m["points"].as_array().unwrap().len();
    assert!((7..=8).contains(&points), "{points} days");
    for b in m["breakdowns"].as_array().unwrap() {
        assert!(b["rows"].as_array().unwrap().len() <= 2, "{b:#}");
    }
    assert_note_is_exact(&env, &note, &data.target, &week).await;
}

#[tokio::test]
async fn a_note_drilldown_refuses_what_it_cannot_answer() {
    let env = setup(20_000).await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    let note = busiest_note(&env.db, &data.target).await;
    let path = format!("/api/v2/analytics/notes/{}", hex_id(&note));

    let unknown = format!("/api/v2/analytics/notes/{}", "ab".repeat(32));
    let (status, problem) = get(&env.app, &unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem:#}");
    assert!(problem["detail"].as_str().unwrap().contains("not stored"));

    for (query, says) in [
        ("metrics=follower_count", "is a gauge"),
        ("metrics=nope", "unknown metric"),
        ("granularity=week", "minute, hour, day"),
        ("window=365d&granularity=minute", "points asked for"),
        ("top=0", "from 1 to 100"),
        ("dimension=content", "unknown query parameter"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "must be before",
        ),
    ] {
        let (status, problem) = get(&env.app, &format!("{path}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem:#}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(says),
            "{query}: {detail:?} should say {says:?}"
        );
    }
    let (status, problem) = get(&env.app, "/api/v2/analytics/notes/note1nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem:#}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a hex event id, note or nevent")
    );

    // A shadow version reads the same facts: no recompute needed to compare it on a note.
    publish(&env.registry, "likes-metrics").await;
    let both = get_ok(
        &env.app,
        &format!("{path}?metrics=likes_received@2,reactions_received"),
    )
    .await;
    let likes = value_of(&both, "likes_received@2");
    let liked: i64 = both["metrics"][1]["breakdowns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["dimension"] == "class")
        .unwrap()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["value"] == "like")
        .map(|r| r["total"].as_i64().unwrap())
        .sum();
    assert!(
        0 < likes && likes <= liked,
        "one like per reactor ({likes}) is at most every like ({liked})"
    );
}

#[tokio::test]
async fn a_costly_note_drilldown_becomes_a_job() {
    let env = setup_with(
        20_000,
        QueryPolicy {
            max_sync_rows: 5,
            ..QueryPolicy::default()
        },
    )
    .await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    let note = busiest_note(&env.db, &data.target).await;
    let jobs = jobs::JobsState::new(
        env.db.clone(),
        jobs::JobSettings::default(),
        std::sync::Arc::clone(&env.compactor),
    );

    let (status, accepted) = get(
        &env.app,
        &format!("/api/v2/analytics/notes/{}", hex_id(&note)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let delivery = env.jobs.recv().await.unwrap();
    jobs::run_job(&jobs, &delivery.message).await.unwrap();
    let done = get_ok(&env.app, accepted["status_url"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_note_is_exact(&env, &note, &data.target, &done["result"]).await;
    assert!(value_of(&done["result"], "reactions_received") > 0);

    // Asked for as a job, by event id.
    let (status, bad) = call(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({ "route": "note", "pubkey": data.target.to_hex() })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:#}");
    let (status, accepted) = call(
        &env.app,
        "POST",
        "/api/v2/analytics/jobs",
        Some(&json!({ "route": "note", "event_id": hex_id(&note), "granularity": "day" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted:#}");
    let delivery = env.jobs.recv().await.unwrap();
    jobs::run_job(&jobs, &delivery.message).await.unwrap();
    let done = get_ok(&env.app, accepted["status_url"].as_str().unwrap()).await;
    assert_eq!(done["result"]["window"]["granularity"], "day", "{done:#}");
    assert_note_is_exact(&env, &note, &data.target, &done["result"]).await;
}

/// `GET /users/{pubkey}/notes`: every note's value of the metric over the window, computed
/// natively from the facts about it, ranked; each listed value is also its drilldown's.
#[tokio::test]
async fn top_notes_are_the_notes_ranked_by_their_drilldown_values() {
    let env = setup_with(
        20_000,
        QueryPolicy {
            max_sync_rows: 1_000_000,
            ..QueryPolicy::default()
        },
    )
    .await;
    let data = small_dataset();
    store_events(&env.db, &data.distinct()).await;
    let pk = data.target.to_hex();
    let end = data.end as i64;
    let (from, to) = (end - 45 * 86_400 + 77, end - 86_400);
    let facts = stored_facts(&env.db).await;
    let notes: BTreeSet<[u8; 32]> = facts
        .iter()
        .filter(|f| f.subject.as_deref() == Some(data.target.to_bytes().as_slice()))
        .filter_map(|f| f.target_event.clone()?.try_into().ok())
        .collect();
    for metric in [
        "reactions_received",
        "zap_msats_received",
        "unique_engagers",
    ] {
        let mut want: Vec<(i64, String)> = Vec::new();
        for note in &notes {
            let values = expected_for_note(&env.db, note, &data.target, from, to).await;
            if let Some(v) = values.get(metric).copied().filter(|v| *v > 0) {
                want.push((v, hex_id(note)));
            }
        }
        // Largest first, then by id.
        want.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        assert!(want.len() > 5, "{metric}: the dataset engages many notes");
        let answer = get_ok(
            &env.app,
            &format!(
                "/api/v2/analytics/users/{pk}/notes?from={from}&to={to}&metric={metric}&top=5"
            ),
        )
        .await;
        let got: Vec<(i64, String)> = answer["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                assert_eq!(n["exact"], true);
                assert!(n["created_at"].is_string(), "{n}");
                (
                    n["value"].as_i64().unwrap(),
                    n["event_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, want[..5], "{metric}");
        assert_eq!(answer["total"], want.len(), "{metric}");
        assert_eq!(answer["others"], want.len() - 5, "{metric}");
        assert_eq!(answer["metric"], metric);
        // The first note's drilldown over the same window says the same.
        let drill = get_ok(
            &env.app,
            &format!(
                "/api/v2/analytics/notes/{}?from={from}&to={to}&metrics={metric}",
                got[0].1
            ),
        )
        .await;
        assert_eq!(value_of(&drill, metric), got[0].0, "{metric}");
    }

    // Without a window: 30 days; without a metric: reactions.
    let default = get_ok(&env.app, &format!("/api/v2/analytics/users/{pk}/notes")).await;
    assert_eq!(default["window"]["rolling"], "30d");
    assert_eq!(default["metric"], "reactions_received");

    let path = format!("/api/v2/analytics/users/{pk}/notes");
    for (query, says) in [
        ("metric=follower_count", "is a gauge"),
        ("metric=nope", "unknown metric"),
        (
            "metric=reactions_received,replies_received",
            "exactly one metric",
        ),
        ("top=0", "from 1 to 100"),
        ("note=abc", "unknown query parameter"),
        ("window=2w", "window"),
    ] {
        let (status, problem) = get(&env.app, &format!("{path}?{query}")).await;
        assert_refused((status, &problem), StatusCode::BAD_REQUEST, says);
    }
    let tight = setup_with(
        20_000,
        QueryPolicy {
            max_sync_rows: 10,
            ..QueryPolicy::default()
        },
    )
    .await;
    store_events(&tight.db, &data.distinct()).await;
    let (status, problem) = get(&tight.app, &format!("{path}?window=365d")).await;
    assert_refused(
        (status, &problem),
        StatusCode::BAD_REQUEST,
        "ask for a shorter window",
    );
}
