//! `hostile@1`: counts facts like a plain metric, unless the first fact's class asks it to
//! misbehave (see [`Behaviour`]). The host's tests use it to show that each misbehaviour
//! fails that call with a clear error and leaves the host working.

use na_metrics_sdk::{
    ABI_VERSION, Aggregation, ContributionWriter, FactBatch, MetricInfo, Plugin, PluginInfo,
};

/// What a batch whose first fact has this class makes the plugin do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Behaviour {
    Loop = 900,
    Panic = 901,
    HogMemory = 902,
    Garbage = 903,
    Flood = 904,
    UndeclaredMetric = 905,
    Refuse = 906,
}

#[derive(Debug)]
pub struct Hostile;

impl Plugin for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: 1,
            abi: ABI_VERSION,
            metrics: vec![MetricInfo::new(
                "facts_seen",
                1,
                Aggregation::Count,
                "facts",
                &[],
                "Every fact, credited to its actor.",
            )],
        }
    }

    fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
        match facts.iter().next().map(|f| f.class) {
            Some(c) if c == Behaviour::Loop as u16 => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some(c) if c == Behaviour::Panic as u16 => panic!("asked to panic"),
            Some(c) if c == Behaviour::HogMemory as u16 => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hog);
                }
            }
            // The export below turns this into bytes that are not a contribution batch.
            Some(c) if c == Behaviour::Garbage as u16 => Err(GARBAGE.into()),
            Some(c) if c == Behaviour::Flood as u16 => {
                for f in facts.iter() {
                    for _ in 0..1000 {
                        out.push(0, f.actor, f.created_at, 1, b"", &[]);
                    }
                }
                Ok(())
            }
            Some(c) if c == Behaviour::UndeclaredMetric as u16 => {
                out.push(7, &[0; 32], 0, 1, b"", &[]);
                Ok(())
            }
            Some(c) if c == Behaviour::Refuse as u16 => Err("this batch is not for me".into()),
            _ => {
                for f in facts.iter() {
                    out.push(0, f.actor, f.created_at, 1, b"", &[]);
                }
                Ok(())
            }
        }
    }
}

const GARBAGE: &str = "__garbage__";

// Exported by hand (not `export_plugin!`) to return what the SDK never would.
#[cfg(target_arch = "wasm32")]
mod export {
    use na_metrics_sdk::{Plugin, bindings};

    struct Exported;

    impl bindings::Guest for Exported {
        fn describe() -> bindings::nostr_analytics::metrics::types::PluginInfo {
            na_metrics_sdk::to_wit(super::Hostile::describe())
        }

        fn map_batch(facts: Vec<u8>) -> Result<Vec<u8>, String> {
            match na_metrics_sdk::run_packed::<super::Hostile>(&facts) {
                Err(m) if m == super::GARBAGE => Ok(b"this is not a contribution batch".to_vec()),
                other => other,
            }
        }
    }

    bindings::export_bindings!(Exported with_types_in na_metrics_sdk::bindings);
}
