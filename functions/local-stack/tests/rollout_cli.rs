//! `na-rollout` against a migrated database: flags changed and rolled back in one step,
//! bad input refused with its exit status, and the drift report's verdict as the exit
//! status an operator's script reads.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::process::Command;

use nostr_sdk::prelude::{Keys, ToBech32};

/// Runs `na-rollout` with `args`: (exit status, stdout, stderr).
fn rollout(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_na-rollout"))
        .args(["--database-url", url])
        .args(args)
        .env("USER", "operator")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn an_operator_moves_a_cohort_reads_drift_and_rolls_back() {
    let url = na_test_support::fresh_database_url().await;
    na_storage::migrate(&url, na_storage::CreateDatabase::Never)
        .await
        .unwrap();
    let keys = Keys::generate();
    let npub = keys.public_key().to_bech32().unwrap();
    let hex = keys.public_key().to_hex();

    let (code, out, err) = rollout(
        &url,
        &["set", "--mode", "dual", "--percent", "10", "--allow", &npub],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "analytics-v1-summary\tdual\t10%\tallow {hex}\tdeny -\trevision 2\t"
        )),
        "{out}"
    );
    assert!(out.trim_end().ends_with("by cli:operator"), "{out}");

    let (code, out, _) = rollout(&url, &["rollback"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!(
            "analytics-v1-summary\tlegacy\t10%\tallow {hex}\tdeny -\trevision 3\t"
        )),
        "rolled back in one change, the cohort kept for going forward again: {out}"
    );
    let (_, listed, _) = rollout(&url, &["flags"]);
    assert_eq!(listed, out, "flags lists it as changed");

    for (args, status, says) in [
        (&["set", "--percent", "101"][..], 2, "percent=101"),
        (
            &["set", "--mode", "everyone"],
            2,
            "not one of legacy, dual, v2",
        ),
        (&["set", "--deny", "npub1nope"], 2, "pubkey"),
        (
            &["set", "--flag", "no-such-flag", "--mode", "v2"],
            1,
            "no flag",
        ),
    ] {
        let (code, _, err) = rollout(&url, args);
        assert_eq!(code, status, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }

    let (code, out, _) = rollout(&url, &["drift", "--hours", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(0 comparisons): within threshold"), "{out}");

    // One comparison over threshold, as the dual run records it.
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db.execute(
        "INSERT INTO drift_observations (flag, pubkey, cohort, window_class, window_from,
             window_to, cutoff, live_edge, metrics, differs)
         VALUES ('analytics-v1-summary', $1, 7, '7d', now() - interval '8 days',
                 now() - interval '1 day', now(), false,
                 '{\"replies_received\": {\"legacy\": 4, \"v2\": 5, \"threshold\": 0.0},
                   \"reactions_received\": {\"legacy\": 9, \"v2\": 9, \"threshold\": 0.0}}',
                 true)",
        &[&hex],
    )
    .await
    .unwrap();
    let (code, out, _) = rollout(&url, &["drift", "--hours", "1"]);
    assert_eq!(code, 1, "over threshold fails: {out}");
    assert!(out.contains("(1 comparisons): OVER THRESHOLD"), "{out}");
    assert!(
        out.contains(&format!("pubkey {hex} cohort 7 7d"))
            && out.contains("replies_received legacy 4 v2 5"),
        "the key to bisect from: {out}"
    );
    let (code, json, _) = rollout(&url, &["drift", "--json"]);
    assert_eq!(code, 1);
    let report: na_api_types::DriftReport = serde_json::from_str(&json).unwrap();
    assert_eq!(report.observations, 1);
    assert_eq!(report.first_differences[0].metric, "replies_received");
}

mod common;

/// The stack ingesting `relays`, once it has taken at least the given number of events from
/// each.
async fn stack_on(relays: &[(&str, u64)]) -> (common::Stack, String) {
    let database_url = na_test_support::fresh_database_url().await;
    let port = common::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--run-for", "300"])
        .args(relays.iter().flat_map(|(r, _)| ["--relay", r]))
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn");
    let stack = common::Stack::spawn(command);
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    loop {
        let status = common::get_json(&format!("{base}/api/v2/analytics/status")).await;
        let accepted = |url: &str| {
            status
                .as_ref()
                .and_then(|s| s["relays"].as_array())
                .and_then(|all| all.iter().find(|r| r["url"] == url))
                .and_then(|r| r["counters"]["accepted"].as_u64())
                .unwrap_or(0)
        };
        if relays.iter().all(|(url, n)| accepted(url) >= *n) {
            return (stack, base);
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let (db, conn) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let stored: Vec<(i32, i64)> = db
                .query(
                    "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            panic!("the stack never ingested {relays:?}: stored by kind {stored:?}; {status:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

// Two workers: the relays run on the test's runtime while it waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_scan_is_set_against_v2_with_the_reasons_it_differs() {
    use nostr_sdk::prelude::{EventBuilder, Kind, Tag, Timestamp};
    let now = chrono::Utc::now().timestamp() as u64;
    let at = |ago: u64| Timestamp::from_secs(now - ago);
    let user = Keys::generate();
    let (a, b, c, zapper) = (
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
        Keys::generate(),
    );
    let p = user.public_key();
    let sign = |keys: &Keys, kind: Kind, tags: Vec<Tag>, ago: u64| {
        // Self-tagging allowed: a client p-tags the author of what it reacts to, itself too.
        EventBuilder::new(kind, "")
            .tags(tags)
            .allow_self_tagging()
            .custom_created_at(at(ago))
            .sign_with_keys(keys)
            .unwrap()
    };
    let note = |keys: &Keys, ago: u64| sign(keys, Kind::TextNote, vec![], ago);
    let notes: Vec<_> = (0..3).map(|i| note(&user, 600 - i)).collect();
    let theirs = note(&a, 590);
    let target = &notes[0];
    let on_note = || vec![Tag::event(target.id), Tag::public_key(p)];
    let reaction_b = sign(&b, Kind::Reaction, on_note(), 500);
    let wallet = Keys::generate();
    let zap = |from: &Keys, msats: u64, ago: u64| {
        na_datagen::zap_receipt(from, &wallet, &p, vec![], msats, now - ago).unwrap()
    };
    let paid = zap(&a, 21_000, 430);
    // The same payment's receipt again, from another wallet: one payment counts once.
    let again = EventBuilder::new(Kind::ZapReceipt, "")
        .tags(paid.tags.iter().cloned())
        .custom_created_at(at(425))
        .sign_with_keys(&Keys::generate())
        .unwrap();
    let events = vec![
        paid.clone(),
        again,
        // The user zapping itself: sent, not received.
        zap(&user, 5_000, 420),
        notes[0].clone(),
        notes[1].clone(),
        notes[2].clone(),
        theirs.clone(),
        // The user's own reply: a reply published, not a note.
        sign(
            &user,
            Kind::TextNote,
            vec![Tag::event(theirs.id), Tag::public_key(a.public_key())],
            580,
        ),
        // Two replies to the user's note, and a reply in someone else's thread that tags it.
        sign(&a, Kind::TextNote, on_note(), 570),
        sign(&b, Kind::TextNote, on_note(), 560),
        sign(
            &c,
            Kind::TextNote,
            vec![Tag::event(theirs.id), Tag::public_key(p)],
            550,
        ),
        // Reactions: two that count, one the user's own, one its author deleted.
        sign(&a, Kind::Reaction, on_note(), 520),
        sign(&c, Kind::Reaction, on_note(), 510),
        sign(&user, Kind::Reaction, on_note(), 505),
        reaction_b.clone(),
        sign(&a, Kind::Repost, on_note(), 480),
        // A zap receipt whose request is missing: it does not count.
        sign(
            &zapper,
            Kind::ZapReceipt,
            vec![
                Tag::public_key(p),
                Tag::parse(["bolt11", "lnbc10u1garbage"]).unwrap(),
            ],
            470,
        ),
        // Followers: a and b follow the user, c does not.
        sign(&a, Kind::ContactList, vec![Tag::public_key(p)], 460),
        sign(
            &b,
            Kind::ContactList,
            vec![Tag::public_key(p), Tag::public_key(c.public_key())],
            450,
        ),
        sign(
            &c,
            Kind::ContactList,
            vec![Tag::public_key(a.public_key())],
            440,
        ),
    ];
    // The deletion is on a second relay: a relay that holds a deletion drops what it
    // deletes, and a client reads the event from one relay and its deletion from another.
    let deletion = sign(
        &b,
        Kind::EventDeletion,
        vec![Tag::event(reaction_b.id)],
        490,
    );
    let relay = na_test_support::start_relay(&events, None).await;
    let other = na_test_support::start_relay(&[deletion], None).await;
    let (url, other_url) = (relay.url().await.to_string(), other.url().await.to_string());
    // Every event, but the deleted reaction when its deletion came first (a tombstone turns
    // it away), and the deletion.
    let relay_events = events.len() as u64;
    let (_stack, api) = stack_on(&[(&url, relay_events - 1), (&other_url, 1)]).await;
    let npub = p.to_bech32().unwrap();
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "relay-scan",
            "--pubkey",
            &npub,
            "--days",
            "1",
            "--relay",
            &url,
            "--relay",
            &other_url,
            "--relay",
            "ws://127.0.0.1:1",
            "--api",
            &api,
            "--timeout-secs",
            "3",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = rollout("postgres://unused", &args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let report = scan(&[]);
    let row = |field: &str| {
        report["differences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .unwrap()
            .clone()
    };
    let values = |field: &str| {
        let r = row(field);
        (r["relay_scan"].as_i64(), r["v2"].as_i64())
    };
    let why = |field: &str| row(field)["why"].to_string();
    assert_eq!(values("notes"), (Some(3), Some(3)), "{report:#}");
    assert_eq!(
        row("notes")["why"],
        serde_json::json!([]),
        "equal: no reasons"
    );
    assert_eq!(values("replies"), (Some(3), Some(2)));
    assert!(
        why("replies").contains("counted as replies"),
        "{}",
        why("replies")
    );
    assert_eq!(values("reactions"), (Some(4), Some(2)), "{report:#}");
    assert!(
        why("reactions").contains("1 deleted events counted"),
        "{}",
        why("reactions")
    );
    assert!(why("reactions").contains("1 of the pubkey's own events counted"));
    assert_eq!(values("reposts"), (Some(1), Some(1)));
    assert_eq!(values("zaps"), (Some(4), Some(1)));
    for reason in [
        "1 receipts counted that do not verify",
        "1 self-zaps counted",
        "1 duplicate receipts of one payment counted",
    ] {
        assert!(why("zaps").contains(reason), "{reason}: {}", why("zaps"));
        assert!(
            why("zap_sats").contains(reason),
            "{reason}: {}",
            why("zap_sats")
        );
    }
    // 21 sats paid, counted twice, 5 to itself, and the 10 µBTC of an invoice that does not
    // verify.
    assert_eq!(values("zap_sats"), (Some(21 + 21 + 5 + 1_000), Some(21)));
    assert_eq!(values("followers"), (Some(2), Some(2)));
    assert_eq!(values("followers_gained").0, None);
    assert!(why("followers_gained").contains("newest list"));
    for field in ["replies", "reactions", "zaps"] {
        assert!(
            why(field).contains("1 of 3 relays did not answer (ws://127.0.0.1:1)"),
            "{field}: {}",
            why(field)
        );
    }
    // A client that reads one page of one event: its count is capped, and says so.
    let capped = scan(&["--page-limit", "1", "--max-pages", "1"]);
    let reactions = capped["scan"]["filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filter"] == "reactions")
        .unwrap()
        .clone();
    assert_eq!(
        (reactions["pages"].as_i64(), reactions["capped"].as_bool()),
        (Some(1), Some(true))
    );
    let row = capped["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "reactions")
        .unwrap()
        .clone();
    assert_eq!(row["relay_scan"], serde_json::json!(1));
    assert!(
        row["why"].to_string().contains("1 pages of 1 read from"),
        "{row}"
    );
}
