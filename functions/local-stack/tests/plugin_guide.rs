//! docs/plugin-guide.md, run as written: every `sh` block, in order, in one shell, from an
//! empty directory outside the repository, against a running stack. The guide cannot rot
//! without this failing.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guide's `sh` blocks (top level, fenced with exactly ```sh), joined in order.
fn guide_script(markdown: &str) -> String {
    let mut script = String::new();
    let mut inside = false;
    for line in markdown.lines() {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, _) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    script
}

fn metric_value(answer: &serde_json::Value, id: &str) -> Option<i64> {
    answer["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == id)?["value"]
        .as_i64()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_guide_runs_as_written_from_a_directory_outside_the_repository() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let script = guide_script(&std::fs::read_to_string(root.join("docs/plugin-guide.md")).unwrap());
    for step in [
        "na-plugins new",
        "cargo test",
        "na-plugins build",
        "na-plugins test",
        "na-plugins publish",
        "na-plugins recompute",
        "na-plugins activate",
        "/summary",
    ] {
        assert!(
            script.contains(step),
            "the guide's commands lost {step:?}:\n{script}"
        );
    }

    let url = na_test_support::fresh_database_url().await;
    let (_stack, base, _) = common::start_until_ingested(&url, &[], &[]).await;

    let work = std::env::temp_dir().join(format!("na-plugin-guide-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("bin")).unwrap();
    // The binaries this test run built, where scripts/bin would build them again.
    for (name, path) in [
        ("na-plugins", env!("CARGO_BIN_EXE_na-plugins")),
        ("nostr-analytics", env!("CARGO_BIN_EXE_nostr-analytics")),
    ] {
        std::os::unix::fs::symlink(path, work.join("bin").join(name)).unwrap();
    }
    let cargo_cache = std::env::var("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).with_file_name("guide-target"))
        .unwrap_or_else(|_| work.join("target"));
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&work)
        .env("NA", &root)
        .env("NA_BINARIES", work.join("bin"))
        .env("NA_API", &base)
        .env("DATABASE_URL", &url)
        // No network in tests: the new crate resolves from cargo's local cache.
        .env("CARGO_NET_OFFLINE", "true")
        // The new crate's own build, kept between runs (it compiles the host: minutes).
        .env("CARGO_TARGET_DIR", &cargo_cache)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the guide failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("as expected (fixtures/expected.json)"),
        "{stderr}"
    );
    assert!(stdout.contains("published tips@1\tshadow"), "{stdout}");

    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let note = read(&work.join("tips/note.json"));
    assert_eq!(metric_value(&note, "tips@1"), Some(21), "{note}");
    assert_eq!(
        metric_value(&note, "zap_msats_received@1"),
        Some(21_000),
        "{note}"
    );
    let summary = read(&work.join("tips/summary.json"));
    assert_eq!(metric_value(&summary, "tips@1"), Some(21), "{summary}");
    assert_eq!(
        metric_value(&summary, "zap_msats_received@1"),
        Some(21_000),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&work);
}
