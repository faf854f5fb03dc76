//! `scripts/stack --help` answers at once, without building: it prints the binary's own
//! help, kept in functions/local-stack/stack-help.txt, which must be current.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_stack_script_answers_help_without_building() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // No environment: clap shows the values of the variables it reads.
    let binary = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(binary.status.success());
    let help = String::from_utf8(binary.stdout).unwrap();
    let saved = std::fs::read_to_string(here.join("stack-help.txt")).unwrap();
    assert_eq!(
        saved, help,
        "stack-help.txt is stale: env -i nostr-analytics --help > functions/local-stack/stack-help.txt"
    );

    // Only cat and dirname on PATH: no cargo, no apt, nothing that could build.
    let bin = std::env::temp_dir().join(format!("na-stack-help-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["cat", "dirname"] {
        let _ = std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), bin.join(tool));
    }
    for flag in ["--help", "-h"] {
        let out = Command::new("/bin/bash")
            .arg(here.join("../../scripts/stack"))
            .args(["--listen", "127.0.0.1:1", flag])
            .env_clear()
            .env("PATH", &bin)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flag}: {stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&help),
            "{flag}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&bin);
}
