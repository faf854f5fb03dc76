//! The TypeScript client's tests (`clients/typescript`, Node's test runner) against the
//! stack as the README runs it, with answers over 200 kB sent in pages. `scripts/test`
//! installs Node's packages and builds `clients/` first.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients")
}

/// `node --test` over `dir`'s built tests, with `env`: its report, after checking it passed
/// and ran `at_least` tests.
fn node_tests(dir: &Path, script: &str, env: &[(&str, &str)], at_least: u64) -> String {
    assert!(
        dir.join("node_modules").exists() || clients_dir().join("node_modules").exists(),
        "{}: no node_modules; scripts/test installs and builds clients/ (npm ci, npm run build)",
        dir.display()
    );
    let mut command = Command::new("npm");
    command.args(["run", "--silent", script]).current_dir(dir);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm (Node.js 20 is needed): {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{report}");
    let count = |what: &str| {
        report
            .lines()
            .find_map(|l| l.trim_start_matches(['ℹ', '#', ' ']).strip_prefix(what))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {what} count in:\n{report}"))
    };
    assert_eq!(count("fail "), 0, "{report}");
    assert!(count("pass ") >= at_least, "{report}");
    assert_eq!(count("skipped "), 0, "nothing skipped:\n{report}");
    report
}

#[tokio::test]
async fn the_typescript_client_against_the_stack() {
    let database_url = na_test_support::fresh_database_url().await;
    let (stack, base, _) =
        start_until_ingested(&database_url, &[("NA_QUERY_MAX_BODY_BYTES", "200000")], &[]).await;
    let summary_url = stack.banner("analytics").await;
    let npub = summary_url
        .split("/users/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let report = node_tests(
        &clients_dir().join("typescript"),
        "test",
        &[("NA_STACK_URL", &base), ("NA_DEMO_NPUB", &npub)],
        9,
    );
    println!("{report}");
}

/// The dashboard in headless Chromium (Debian's `chromium`, which `scripts/setup`
/// installs, driven by `playwright-core`): the numbers it shows against the API's,
/// granularity switching, a screenshot, and CORS from a page on another origin.
#[tokio::test]
async fn the_dashboard_in_a_browser() {
    let database_url = na_test_support::fresh_database_url().await;
    let other_port = free_port().to_string();
    let allowed = format!("http://127.0.0.1:{other_port}");
    let dashboard = clients_dir().join("dashboard/dist");
    let (stack, base, _) = start_until_ingested(
        &database_url,
        &[
            ("NA_CORS_ORIGINS", &allowed),
            ("NA_DASHBOARD_DIR", dashboard.to_str().unwrap()),
        ],
        &[],
    )
    .await;
    let page = stack.banner("dashboard").await;
    assert!(page.starts_with(&format!("{base}/u/npub1")), "{page}");
    let npub = page.rsplit('/').next().unwrap().to_owned();
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let report = node_tests(
        &clients_dir().join("dashboard"),
        "test",
        &[
            ("NA_STACK_URL", &base),
            ("NA_DEMO_NPUB", &npub),
            ("NA_SCREENSHOT", screenshot.to_str().unwrap()),
            ("NA_OTHER_ORIGIN_PORT", &other_port),
        ],
        5,
    );
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot at {}", screenshot.display());
    println!(
        "{report}\nscreenshot: {} ({size} bytes)",
        screenshot.display()
    );
}
