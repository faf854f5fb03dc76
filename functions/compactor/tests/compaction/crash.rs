//! The compactor process killed between any two steps of a batch, then run again: the
//! buckets equal a recompute (nothing lost, nothing applied twice).

use std::process::Command;

use crate::*;

fn run_compactor(env: &Env, crash_at: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compactor"));
    cmd.arg("--once")
        .env("DATABASE_URL", &env.url)
        .env("NA_COMPACTOR_BATCH_ROWS", "150")
        .env("RUST_LOG", "warn");
    match crash_at {
        Some(step) => cmd.env("NA_COMPACTOR_CRASH_AT", step),
        None => cmd.env_remove("NA_COMPACTOR_CRASH_AT"),
    };
    cmd.output().unwrap()
}

#[tokio::test]
async fn killed_between_any_two_steps_then_rerun_equals_a_recompute() {
    let env = setup(1_000).await;
    let data = small_dataset(14);
    let steps = ["read", "mapped", "written", "advanced", "committed"];
    let pieces: Vec<_> = data
        .events
        .chunks(data.events.len() / steps.len() + 1)
        .collect();
    for (step, piece) in steps.iter().zip(pieces) {
        store(&env.db, &piece.iter().collect::<Vec<_>>()).await;
        na_test_support::wait_for_safe_horizon(&env.client).await;
        let killed = run_compactor(&env, Some(step));
        assert!(
            !killed.status.success(),
            "{step}: the process should have died"
        );
        assert!(
            String::from_utf8_lossy(&killed.stderr)
                .contains(&format!("NA_COMPACTOR_CRASH_AT={step}")),
            "{step}: {}",
            String::from_utf8_lossy(&killed.stderr)
        );
    }
    let done = run_compactor(&env, None);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report["caught_up"], true, "{report}");
    assert_equals_recompute(&env).await;
}
