//! The plugin host against real components built by `scripts/build-plugins`.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use core_metrics::Core;
use hostile_plugin::Behaviour;
use na_metrics_abi::{Fact, Plugin, run_native};
use na_plugin_host::{HostConfig, LoadedPlugin, PluginFailure, PluginHost, read_built_component};
use rand::{Rng, SeedableRng};

/// Built by `scripts/build-plugins` into `NA_PLUGIN_DIR` (as `scripts/env.sh` sets it).
fn component(name: &str) -> Vec<u8> {
    let dir = std::env::var("NA_PLUGIN_DIR")
        .unwrap_or_else(|_| na_plugin_host::DEFAULT_PLUGIN_DIR.into());
    read_built_component(std::path::Path::new(&dir), name).unwrap_or_else(|e| panic!("{e}"))
}

fn host() -> PluginHost {
    PluginHost::new(HostConfig::default()).unwrap()
}

/// Facts of every class with every flag, from a seed.
fn facts(n: usize, seed: u64) -> Vec<Fact> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let pk = |rng: &mut rand_chacha::ChaCha20Rng| [rng.gen_range(0..8u8); 32];
            Fact {
                created_at: 1_700_000_000 + i as i64,
                event_id: [(i % 251) as u8; 32],
                seq: 0,
                class: rng.gen_range(1..=14),
                flags: if rng.gen_bool(0.2) {
                    1 << rng.gen_range(0..8)
                } else {
                    0
                },
                actor: pk(&mut rng),
                subject: rng.gen_bool(0.9).then(|| pk(&mut rng)),
                target_event: Some([9; 32]),
                target_coord: None,
                amount_msats: Some(rng.gen_range(1_000..10_000_000)),
                expires_at: None,
                dims: vec![
                    ("class".into(), "like".into()),
                    ("content".into(), "+".into()),
                    ("lnurl".into(), "verified".into()),
                ],
            }
        })
        .collect()
}

#[test]
fn the_core_catalog_gives_the_same_contributions_in_wasm_as_natively() {
    let host = host();
    let core = host.load(&component("core-metrics")).unwrap();
    assert_eq!(core.id(), "core@1");
    assert_eq!(
        core.info,
        Core::describe(),
        "describe crosses the boundary intact"
    );
    for (n, seed) in [(1, 1), (100, 2), (5_000, 3)] {
        let batch = facts(n, seed);
        let wasm = host.run(&core, &batch).unwrap();
        assert!(!wasm.is_empty() || n == 1);
        assert_eq!(wasm, run_native::<Core>(&batch).unwrap(), "batch of {n}");
        assert_eq!(host.run(&core, &batch).unwrap(), wasm, "deterministic");
    }
}

fn failure_of(
    host: &PluginHost,
    plugin: &LoadedPlugin,
    behaviour: Behaviour,
) -> (String, PluginFailure) {
    let mut batch = facts(10, 7);
    batch[0].class = behaviour as u16;
    let err = host.run(plugin, &batch).unwrap_err();
    (err.to_string(), err.failure)
}

/// A misbehaviour, how its failure must read, and words its message must hold.
type HostileCase = (Behaviour, fn(&PluginFailure) -> bool, &'static str);

#[test]
fn a_misbehaving_plugin_fails_its_call_with_a_clear_error_and_nothing_else() {
    let host = PluginHost::new(HostConfig {
        memory_limit: 16 << 20,
        ..HostConfig::default()
    })
    .unwrap();
    let hostile = host.load(&component("hostile-plugin")).unwrap();
    let core = host.load(&component("core-metrics")).unwrap();
    let good = facts(50, 9);
    let core_before = host.run(&core, &good).unwrap();

    let cases: [HostileCase; 7] = [
        (
            Behaviour::Loop,
            |f| matches!(f, PluginFailure::OutOfFuel(_)),
            "ran out of fuel",
        ),
        (
            Behaviour::Panic,
            |f| matches!(f, PluginFailure::Trap(_)),
            "trapped",
        ),
        (
            Behaviour::HogMemory,
            |f| matches!(f, PluginFailure::OutOfMemory(n) if *n == 16 << 20),
            "memory limit of 16777216 bytes",
        ),
        (
            Behaviour::Garbage,
            |f| matches!(f, PluginFailure::Garbage(_)),
            "garbage",
        ),
        (
            Behaviour::Flood,
            |f| matches!(f, PluginFailure::TooMuch(_)),
            "too much",
        ),
        (
            Behaviour::UndeclaredMetric,
            |f| matches!(f, PluginFailure::Garbage(m) if m.contains("metric #7")),
            "metric #7",
        ),
        (
            Behaviour::Refuse,
            |f| matches!(f, PluginFailure::Rejected(m) if m == "this batch is not for me"),
            "refused the batch",
        ),
    ];
    for (behaviour, expected, words) in cases {
        let started = std::time::Instant::now();
        let (message, failure) = failure_of(&host, &hostile, behaviour);
        assert!(expected(&failure), "{behaviour:?}: {failure:?}");
        assert!(message.starts_with("plugin hostile@1: "), "{message}");
        assert!(message.contains(words), "{behaviour:?}: {message}");
        // Stopped by fuel or the cap, not by a wall clock: well under the test's patience.
        assert!(
            started.elapsed().as_secs() < 30,
            "{behaviour:?} took {:?}",
            started.elapsed()
        );
        // The same plugin and every other one carry on.
        assert_eq!(
            host.run(&hostile, &good).unwrap().len(),
            good.len(),
            "after {behaviour:?}"
        );
        assert_eq!(
            host.run(&core, &good).unwrap(),
            core_before,
            "after {behaviour:?}"
        );
    }
}

#[test]
fn a_large_batch_split_across_threads_gives_one_call_s_answer_and_failures() {
    let on = |threads| {
        PluginHost::new(HostConfig {
            threads,
            ..HostConfig::default()
        })
        .unwrap()
    };
    let (one, two) = (on(1), on(2));
    let batch = facts(9_000, 21);
    let core = (
        one.load(&component("core-metrics")).unwrap(),
        two.load(&component("core-metrics")).unwrap(),
    );
    let whole = one.run(&core.0, &batch).unwrap();
    assert_eq!(
        two.run(&core.1, &batch).unwrap(),
        whole,
        "same contributions, same order"
    );

    // hostile@1 refuses a batch whose first fact asks it to: here the second part's.
    let mut batch = facts(6_000, 22);
    for f in &mut batch {
        f.class = 1;
    }
    batch[3_000].class = Behaviour::Refuse as u16;
    let hostile = (
        one.load(&component("hostile-plugin")).unwrap(),
        two.load(&component("hostile-plugin")).unwrap(),
    );
    assert_eq!(one.run(&hostile.0, &batch).unwrap().len(), 6_000);
    let err = two.run(&hostile.1, &batch).unwrap_err();
    assert!(
        matches!(&err.failure, PluginFailure::Rejected(m) if m == "this batch is not for me"),
        "{err}"
    );
    assert!(err.to_string().starts_with("plugin hostile@1: "), "{err}");
    // The first part (mapped on the calling thread) failing fails the batch too, and the
    // host carries on with the next batch.
    batch[3_000].class = 1;
    batch[0].class = Behaviour::Refuse as u16;
    assert!(two.run(&hostile.1, &batch).is_err());
    batch[0].class = 1;
    assert_eq!(two.run(&hostile.1, &batch).unwrap().len(), 6_000);
}

#[test]
fn the_wrong_interface_is_refused_at_load() {
    let host = host();
    let cases = [
        (
            "a core module",
            wat::parse_str("(module)").unwrap(),
            "not a loadable WASM component",
        ),
        (
            "an empty component",
            wat::parse_str("(component)").unwrap(),
            "does not implement",
        ),
        (
            "a component that imports WASI",
            wat::parse_str(r#"(component (import "wasi:cli/environment@0.2.0" (instance)))"#)
                .unwrap(),
            "does not implement",
        ),
        (
            "not wasm at all",
            b"\0asm garbage".to_vec(),
            "not a loadable WASM component",
        ),
    ];
    for (what, bytes, words) in cases {
        let err = host.load(&bytes).unwrap_err().to_string();
        assert!(err.starts_with("plugin sha256:"), "{what}: {err}");
        assert!(err.contains(words), "{what}: {err}");
    }
}

#[test]
fn precompiled_artifacts_are_cached_by_content_and_a_bad_one_is_replaced() {
    let dir = std::env::temp_dir().join(format!("na-plugin-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(dir.clone()),
        ..HostConfig::default()
    })
    .unwrap();
    let bytes = component("core-metrics");
    let first = host.load(&bytes).unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1);
    let name = artifacts[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with(&hex::encode(first.hash)), "{name}");
    let batch = facts(100, 4);
    let from_cache = host.load(&bytes).unwrap();
    assert_eq!(
        host.run(&from_cache, &batch).unwrap(),
        host.run(&first, &batch).unwrap()
    );
    std::fs::write(&artifacts[0], b"not an artifact").unwrap();
    let recompiled = host.load(&bytes).unwrap();
    assert_eq!(
        host.run(&recompiled, &batch).unwrap().len(),
        host.run(&first, &batch).unwrap().len()
    );
    assert_ne!(
        std::fs::read(&artifacts[0]).unwrap(),
        b"not an artifact",
        "rewritten"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
