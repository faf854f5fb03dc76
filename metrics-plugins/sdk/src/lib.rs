//! The guest SDK: implement [`Plugin`] for a type, then `na_metrics_sdk::export_plugin!(Type);`
//! in a `cdylib` crate, and the build tool (`scripts/build-plugins`) turns it into a
//! component the host loads. The same type also runs natively (tests, benchmarks).
//!
//! ```ignore
//! use na_metrics_sdk::*;
//!
//! pub struct Likes;
//! impl Plugin for Likes {
//!     fn describe() -> PluginInfo { /* name, version, metrics */ }
//!     fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
//!         for f in facts.iter().filter(|f| f.class == class::REACTION && counts(f)) {
//!             if let Some(subject) = f.subject { out.push(0, subject, f.created_at, 1, b"", &[]); }
//!         }
//!         Ok(())
//!     }
//! }
//! na_metrics_sdk::export_plugin!(Likes);
//! ```

/// The whole contract crate, for tests that pack facts and read contributions natively.
pub use na_metrics_abi as abi;
pub use na_metrics_abi::{
    ABI_VERSION, Aggregation, ContributionWriter, FactBatch, FactView, MetricInfo, Plugin,
    PluginInfo, run_packed,
};

/// Fact classes and flags (docs/metric-semantics.md): the numbers facts are stored with.
pub use na_metrics_abi::{class, flag};

/// Whether a fact counts at all: not deleted and not expired (the host flags facts whose
/// expiration has passed before it hands them over).
pub fn counts(f: &FactView<'_>) -> bool {
    !f.has_flag(flag::DELETED | flag::EXPIRED)
}

/// The generated WIT bindings; plugin crates use them through [`export_plugin!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "metric-plugin",
        path: "../wit/metrics@1.0.0",
        default_bindings_module: "na_metrics_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
    });
}

#[doc(hidden)]
pub fn to_wit(info: PluginInfo) -> bindings::nostr_analytics::metrics::types::PluginInfo {
    use bindings::nostr_analytics::metrics::types as wit;
    wit::PluginInfo {
        name: info.name,
        version: info.version,
        abi: info.abi,
        metrics: info
            .metrics
            .into_iter()
            .map(|m| wit::MetricInfo {
                name: m.name,
                version: m.version,
                aggregation: match m.aggregation {
                    Aggregation::Count => wit::Aggregation::Count,
                    Aggregation::Sum => wit::Aggregation::Sum,
                    Aggregation::Min => wit::Aggregation::Min,
                    Aggregation::Max => wit::Aggregation::Max,
                    Aggregation::Distinct => wit::Aggregation::Distinct,
                    Aggregation::Gauge => wit::Aggregation::Gauge,
                },
                unit: m.unit,
                description: m.description,
                fact_classes: m.fact_classes,
                dimensions: m.dimensions,
            })
            .collect(),
    }
}

/// Exports a [`Plugin`] as the component's `describe` and `map-batch`. Use it once, in the
/// plugin's `cdylib` crate, for `wasm32` builds.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exported;
            impl $crate::bindings::Guest for Exported {
                fn describe() -> $crate::bindings::nostr_analytics::metrics::types::PluginInfo {
                    $crate::to_wit(<$plugin as $crate::Plugin>::describe())
                }
                fn map_batch(facts: Vec<u8>) -> Result<Vec<u8>, String> {
                    $crate::run_packed::<$plugin>(&facts)
                }
            }
    $crate::bindings::export_bindings!(Exported with_types_in $crate::bindings);
        };
    };
}
