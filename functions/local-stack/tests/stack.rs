//! The `nostr-analytics` binary as the README runs it: demo relay, ingest, gateway.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn the_stack_serves_its_demo_data_offline() {
    let database_url = na_test_support::fresh_database_url().await;
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--run-for", "120"])
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn");
    let _stack = Stack::spawn(command);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let accepted = loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the stack did not ingest its demo data"
        );
        if let Some(status) = get_json(&format!("{base}/api/v2/analytics/status")).await
            && let Some(n) = status["relays"][0]["counters"]["accepted"].as_u64()
            && n > 3000
            && !status["relays"][0]["watermark"].is_null()
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(accepted < 10_000, "{accepted}");
    assert_eq!(
        get_json(&format!("{base}/health")).await.unwrap()["status"],
        "ok"
    );
    built_plugin("core-metrics");
    let plugins = get_json(&format!("{base}/api/v2/admin/plugins"))
        .await
        .unwrap();
    assert_eq!(
        plugins["plugins"][0]["name"], "core",
        "the built-in catalog: {plugins}"
    );
    assert_eq!(plugins["plugins"][0]["published_by"], "built-in");
    assert_eq!(plugins["plugins"][0]["state"], "active", "{plugins}");

    // The stack compacts on its own schedule until nothing is left behind.
    let lag = loop {
        assert!(
            started.elapsed() < Duration::from_secs(110),
            "compaction did not catch up"
        );
        let status = get_json(&format!("{base}/api/v2/analytics/status")).await;
        if let Some(lag) = status.as_ref().map(|s| s["compaction"][0].clone())
            && lag["plugin"] == "core@1"
            && lag["rows"] == 0
        {
            break lag;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (db, conn) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let reactions: i64 = db
        .query_one(
            "SELECT coalesce(sum(b.value), 0)::bigint FROM buckets_day b
             JOIN plugin_metrics m ON m.series = b.series WHERE m.metric = 'reactions_received'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        reactions > 100,
        "{reactions} reactions in day buckets ({lag})"
    );
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .args(["--listen", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            "postgres://postgres:secret@127.0.0.1:1/nostr_analytics",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PostgreSQL is needed at postgres://postgres@127.0.0.1:1/nostr_analytics"),
        "{err}"
    );
    assert!(
        err.contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the password is not printed: {err}"
    );
}

#[tokio::test]
async fn the_plugin_cli_publishes_lists_and_explains_refusals() {
    let database_url = na_test_support::fresh_database_url().await;
    // The CLIs work on a migrated database (the stack's, a deploy's); they migrate nothing.
    na_storage::migrate(&database_url, na_storage::CreateDatabase::Never)
        .await
        .unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_na-plugins"))
            .args(args)
            .env("DATABASE_URL", &database_url)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let component = built_plugin("likes-metrics");
    let (code, out, err) = cli(&["publish", &component, "--by", "team-a"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("published likes@2\tshadow"), "{out}");
    let (code, out, _) = cli(&["publish", &component, "--by", "team-a"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("unchanged"), "{out}");
    let (_, out, _) = cli(&["list"]);
    assert!(out.contains("likes_received@2"), "{out}");

    let (code, _, err) = cli(&["activate", "likes@2"]);
    assert_eq!(code, Some(1), "refused: {err}");
    assert!(err.contains("recompute"), "{err}");
    let (code, out, err) = cli(&["recompute", "likes@2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("recomputed likes@2"), "{out}");
    let (code, out, err) = cli(&["activate", "likes@2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\tactive\t"), "{out}");
    let (code, _, err) = cli(&["recompute", "likes@2"]);
    assert_eq!(code, Some(1), "an active version is not rebuilt: {err}");
    assert!(err.contains("only a shadow version"), "{err}");
    let (code, _, err) = cli(&["activate", "likes"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("name@version"), "{err}");
    let garbage = std::env::temp_dir().join(format!("not-a-plugin-{}.wasm", std::process::id()));
    std::fs::write(&garbage, b"nope").unwrap();
    let (code, _, err) = cli(&["publish", garbage.to_str().unwrap(), "--by", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a loadable WASM component"), "{err}");
    let (code, out, _) = cli(&["retire", "likes@2"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("retired"), "{out}");
}

/// The path of a built component (`scripts/build-plugins`), failing loudly when missing.
fn built_plugin(name: &str) -> String {
    na_test_support::built_component(name).unwrap_or_else(|e| panic!("{e}"));
    na_test_support::plugin_dir()
        .join(format!("{name}.wasm"))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn help_never_prints_a_database_password() {
    let out = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .arg("--help")
        .env(
            "DATABASE_URL",
            "postgres://u:hunter2@127.0.0.1:5432/nostr_analytics",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--database-url"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
}

#[tokio::test]
async fn a_restarted_stack_does_not_count_its_demo_data_twice() {
    let database_url = na_test_support::fresh_database_url().await;
    let (db, conn) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Events of the demo dataset: everything before its end (the trickle of live reactions
    // comes after).
    let demo_events = "SELECT count(*) FROM events
                       WHERE created_at < (SELECT end_at FROM demo_datasets)";
    let (first, _, first_relay) = start_until_ingested(&database_url, &[], &[]).await;
    let once: i64 = db.query_one(demo_events, &[]).await.unwrap().get(0);
    drop(first);
    let (_second, _, second_relay) =
        start_until_ingested(&database_url, &[], std::slice::from_ref(&first_relay)).await;
    let twice: i64 = db.query_one(demo_events, &[]).await.unwrap().get(0);
    assert!(once > 3000, "{once}");
    assert_eq!(once, twice, "the same signed events, stored once");
    // The second run's relay delivered them again, and none was new.
    let demo_accepted: i64 = db
        .query_one(
            "SELECT count(*) FROM events e JOIN relays r ON r.id = e.seen_on[1]
             WHERE r.url = $1 AND e.created_at < (SELECT end_at FROM demo_datasets)",
            &[&second_relay],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(demo_accepted, 0, "no demo event was new to the second run");
}

/// Schemathesis (PyPI; `scripts/setup` installs it) over the served OpenAPI document with
/// every check, against the stack with its demo data and admin routes guarded by a token:
/// no 5xx, no answer the document does not describe, nothing it forbids accepted.
#[tokio::test]
async fn the_served_api_passes_schemathesis_with_every_check() {
    let database_url = na_test_support::fresh_database_url().await;
    let token = "schemathesis-admin";
    let (_stack, base, _) =
        start_until_ingested(&database_url, &[("ADMIN_TOKEN", token)], &[]).await;
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/schemathesis/schemathesis.toml"
    );
    let out = tokio::task::spawn_blocking(move || {
        // Its cache of found failures goes to the working directory: not the source tree.
        let scratch = std::env::temp_dir().join(format!("na-schemathesis-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let out = Command::new("schemathesis")
            .current_dir(&scratch)
            .args(["--config-file", config, "run"])
            .arg(format!("{base}/api/v2/analytics/openapi.json"))
            .args(["--url", &base, "--checks", "all", "--max-examples", "25"])
            .args(["--phases", "examples,coverage,fuzzing", "--seed", "1"])
            .args(["--request-timeout", "30", "--max-response-time", "20"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--no-color", "--suppress-health-check", "all"])
            .output()
            .unwrap_or_else(|e| {
                panic!("schemathesis did not run ({e}): scripts/setup installs it from PyPI")
            });
        let _ = std::fs::remove_dir_all(&scratch);
        out
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    let summary = report.split("SUMMARY").nth(1).unwrap_or_default();
    assert!(
        summary.contains("Tested: 31"),
        "every operation was tested: {report}"
    );
    println!("schemathesis{summary}");
}

/// The deploy's migrate step as a deploy runs it, twice at once on a database that does
/// not exist yet: both succeed, one applies every migration, the other waits and applies
/// none. Without `--create-database`, a missing database is an error and none is made.
#[test]
fn two_migrate_steps_at_once_apply_each_migration_once() {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("na_test_migrate_{}", std::process::id());
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([admin.as_str(), "-qAtc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    let step = |create: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"));
        c.args(["--database-url", &url, "migrate"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if create {
            c.arg("--create-database");
        }
        c
    };
    let out = step(false).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("does not exist"), "{said}");
    assert_eq!(
        psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        )),
        "0"
    );

    let (a, b) = (step(true).spawn().unwrap(), step(true).spawn().unwrap());
    let outputs: Vec<String> = [a, b]
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    let latest = na_storage::schema_version();
    let all: Vec<String> = (1..=latest).map(|v| format!("V{v}")).collect();
    let mut reports = outputs.clone();
    reports.sort();
    assert_eq!(
        reports,
        vec![
            format!("schema at V{latest}; applied now: {}\n", all.join(", ")),
            format!("schema at V{latest}; applied now: none\n"),
        ],
        "{outputs:?}"
    );
    assert_eq!(
        psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        )),
        "1"
    );
    // Tidying only: a drop refused by a busy server is swept up by a later run.
    let _ = Command::new("psql")
        .args([
            admin.as_str(),
            "-qAtc",
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ])
        .output();
}
