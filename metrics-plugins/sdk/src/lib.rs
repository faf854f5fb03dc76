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
    ABI_VERSION, Aggregation, ContributionWriter, Fact, FactBatch, FactView, MetricInfo, Plugin,
    PluginInfo, run_native, run_packed,
};

/// Fact classes and flags (docs/metric-semantics.md): the numbers facts are stored with.
pub use na_metrics_abi::{class, flag};

/// Whether a fact counts at all: not deleted (NIP-09) and not expired (NIP-40). Ingest
/// flags both, whichever of an event and its deletion arrives first.
pub fn counts(f: &FactView<'_>) -> bool {
    !f.has_flag(flag::DELETED | flag::EXPIRED)
}

/// Who received an interaction: its subject (the author of the event it targets), unless
/// the actor interacted with their own event. Self-interactions are facts, but never
/// `*_received` (NOSTR-SEMANTICS.md).
pub fn received_by<'a>(f: &FactView<'a>) -> Option<&'a [u8; 32]> {
    f.subject.filter(|_| !f.has_flag(flag::SELF))
}

/// A zap that counts, and its amount in millisatoshis: a zap receipt that passed NIP-57
/// validation (not [`flag::INVALID`]), the first receipt for its payment (not
/// [`flag::DUPLICATE_PAYMENT`]: a payment counts once), not deleted or expired. Zap facts
/// include the forged and duplicate receipts, flagged; a zap metric must not count them.
/// Self-zaps are included: they are zaps *sent*; [`zap_received`] leaves them out.
pub fn counted_zap(f: &FactView<'_>) -> Option<i64> {
    let valid =
        f.class == class::ZAP && counts(f) && !f.has_flag(flag::INVALID | flag::DUPLICATE_PAYMENT);
    f.amount_msats.filter(|_| valid)
}

/// A [`counted_zap`] someone else sent: its recipient and amount in millisatoshis.
pub fn zap_received<'a>(f: &FactView<'a>) -> Option<(&'a [u8; 32], i64)> {
    Some((received_by(f)?, counted_zap(f)?))
}

/// The generated WIT bindings; plugin crates use them through [`export_plugin!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "metric-plugin",
        path: "wit/metrics@1.0.0",
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
