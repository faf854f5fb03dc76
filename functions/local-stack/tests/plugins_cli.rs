//! `na-plugins` without a database: `test` runs a built component over events and holds
//! it to golden values (exit 1 on a difference, 2 on an unusable component); registry
//! commands refuse a database that does not exist rather than create it.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::process::Command;

fn na_plugins(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_na-plugins"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn test_holds_a_built_component_to_golden_values() {
    let dir = std::env::temp_dir().join(format!("na-plugins-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, na_plugin_testing::fixtures::EVENTS).unwrap();
    let component = na_test_support::plugin_dir().join("likes-metrics.wasm");
    let (component, events) = (component.to_str().unwrap(), events.to_str().unwrap());
    let golden = dir.join("expected.json");
    let golden_arg = golden.to_str().unwrap();

    let (code, out, err) = na_plugins(&[
        "test",
        component,
        "--events",
        events,
        "--write-expect",
        golden_arg,
    ]);
    assert_eq!(code, 0, "{err}");
    // Bob's like of alice's note counts; alice's own like and the dislike do not.
    assert!(out.contains("likes_received@2  distinct  total 1"), "{out}");
    let (code, _, err) = na_plugins(&[
        "test", component, "--events", events, "--expect", golden_arg,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("as expected"), "{err}");

    let mut expected = na_plugin_testing::Report::load(&golden).unwrap();
    let metric = expected.metrics.get_mut("likes_received@2").unwrap();
    metric.total = 2;
    expected.save(&golden).unwrap();
    let (code, _, err) = na_plugins(&[
        "test", component, "--events", events, "--expect", golden_arg,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("differs: likes_received@2: total 1 (expected 2)"),
        "{err}"
    );

    let (code, _, err) = na_plugins(&["test", events, "--events", events]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("loading"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn registry_commands_never_create_a_database() {
    let url = na_test_support::fresh_database_url().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    let missing = format!("{base}/na_test_mistyped_{}", std::process::id());
    let (code, _, err) = na_plugins(&["--database-url", &missing, "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let name = missing.rsplit_once('/').unwrap().1;
    let found = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(found.is_none(), "na-plugins created {name}");
}
