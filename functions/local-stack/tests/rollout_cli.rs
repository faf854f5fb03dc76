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
