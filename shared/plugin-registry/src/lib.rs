//! The plugin registry: what `name@version`s exist and which are computed. Publishing
//! validates before it stores: the component must load as a `metric-plugin` (no imports),
//! describe itself validly, and map a sample of every fact class twice to the same, well
//! formed contributions. A version is immutable: the same artifact again is a no-op, a
//! different one is refused. A new version starts in shadow; it is activated once the
//! recompute job has filled its buckets, and retired when no longer wanted.
//!
//! Stored versions are loaded for mapping facts through one [`PluginSet`] per process
//! (compactor, recompute and query path alike).

mod convert;
mod loaded;
mod mapper;
mod sample;

use std::sync::Arc;

use na_metrics_abi::{Aggregation, PluginInfo};
use na_plugin_host::{PluginError, PluginHost};
use na_storage::{Db, NewPlugin, PluginRecord, Published};

pub use convert::to_fact;
pub use loaded::{LoadError, LoadedVersion, PluginSet, SeriesMap};
pub use mapper::{FactMapper, NativeMapper, WasmMapper};
pub use sample::sample_facts;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The component does not load, or its description is invalid.
    #[error(transparent)]
    Invalid(PluginError),
    /// The trial run on sample facts failed or returned something unusable.
    #[error("trial run: {0}")]
    Trial(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Storage(#[from] na_storage::Error),
}

/// Publishes and manages plugin versions.
#[derive(Debug, Clone)]
pub struct Registry {
    db: Db,
    host: Arc<PluginHost>,
}

impl Registry {
    pub fn new(db: Db, host: Arc<PluginHost>) -> Self {
        Registry { db, host }
    }

    /// The host plugins are validated in (share it: one engine per process).
    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// Validates and stores a component published by `by`.
    ///
    /// # Errors
    /// [`PublishError`]: what is wrong with the component, or the registry's refusal
    /// (a changed artifact under an existing version, a metric@version another plugin has).
    pub async fn publish(&self, artifact: Vec<u8>, by: &str) -> Result<Published, PublishError> {
        let by = by.trim();
        if by.is_empty() || by.len() > 200 {
            return Err(PublishError::BadRequest(
                "say who publishes (1-200 characters)".into(),
            ));
        }
        let host = self.host.clone();
        // Compiling takes tens of milliseconds of CPU: off the async runtime.
        let (artifact, info, hash) = tokio::task::spawn_blocking(move || {
            let plugin = host.load(&artifact).map_err(PublishError::Invalid)?;
            trial(&host, &plugin)?;
            Ok::<_, PublishError>((artifact, plugin.info.clone(), plugin.hash))
        })
        .await
        .map_err(|e| PublishError::Trial(format!("the trial run did not finish: {e}")))??;
        let description = describe(&info);
        let aggregations: Vec<&str> = info.metrics.iter().map(|m| m.aggregation.name()).collect();
        let published = self
            .db
            .publish_plugin(&NewPlugin {
                name: &info.name,
                version: i32::try_from(info.version)
                    .map_err(|_| PublishError::BadRequest("plugin version too large".into()))?,
                content_hash: &hash,
                artifact: &artifact,
                abi: i32::try_from(info.abi).unwrap_or(i32::MAX),
                description: &description,
                metrics: info
                    .metrics
                    .iter()
                    .zip(&aggregations)
                    .map(|(m, a)| {
                        (
                            m.name.as_str(),
                            i32::try_from(m.version).unwrap_or(i32::MAX),
                            *a,
                        )
                    })
                    .collect(),
                published_by: by,
            })
            .await?;
        Ok(published)
    }

    /// # Errors
    /// Any database error.
    pub async fn list(&self) -> Result<Vec<PluginRecord>, na_storage::Error> {
        self.db.list_plugins().await
    }

    /// # Errors
    /// Refused when the version does not exist, has not been recomputed, or is retired.
    pub async fn activate(
        &self,
        name: &str,
        version: i32,
    ) -> Result<PluginRecord, na_storage::Error> {
        self.db.activate_plugin(name, version).await
    }

    /// Records that the version's buckets are complete (the recompute job's last step),
    /// which makes it activatable.
    ///
    /// # Errors
    /// Refused when the version does not exist.
    pub async fn mark_recomputed(
        &self,
        name: &str,
        version: i32,
    ) -> Result<PluginRecord, na_storage::Error> {
        self.db.mark_plugin_recomputed(name, version).await
    }

    /// # Errors
    /// Refused when the version does not exist.
    pub async fn retire(
        &self,
        name: &str,
        version: i32,
    ) -> Result<PluginRecord, na_storage::Error> {
        self.db.retire_plugin(name, version).await
    }
}

/// Runs the plugin twice over the sample: both runs must succeed and agree, and every
/// contribution must suit its metric (a distinct metric needs a key) and count at the
/// instant of a fact it was given: queries read a window's edges from the facts by their
/// `created_at`, so a contribution counted at another instant would fall out of them.
fn trial(host: &PluginHost, plugin: &na_plugin_host::LoadedPlugin) -> Result<(), PublishError> {
    let sample = sample_facts();
    let first = host
        .run(plugin, &sample)
        .map_err(|e| PublishError::Trial(e.to_string()))?;
    let second = host
        .run(plugin, &sample)
        .map_err(|e| PublishError::Trial(e.to_string()))?;
    if first != second {
        return Err(PublishError::Trial(format!(
            "{} is not deterministic: two runs over the same facts differ",
            plugin.id()
        )));
    }
    check_contributions(&plugin.id(), &plugin.info, &sample, &first)
}

/// Every contribution suits its metric and counts at one of `facts`' instants.
fn check_contributions(
    id: &str,
    info: &PluginInfo,
    facts: &[na_metrics_abi::Fact],
    contributions: &na_metrics_abi::Contributions,
) -> Result<(), PublishError> {
    let instants: std::collections::HashSet<i64> = facts.iter().map(|f| f.created_at).collect();
    for c in contributions.iter() {
        let metric = &info.metrics[usize::from(c.metric)];
        if metric.aggregation == Aggregation::Distinct && c.key.is_empty() {
            return Err(PublishError::Trial(format!(
                "{id}: a contribution to the distinct metric {} has no key",
                metric.id()
            )));
        }
        if !instants.contains(&c.at) {
            return Err(PublishError::Trial(format!(
                "{id}: a contribution to {} counts at {}, which is no fact's created_at: \
                 a contribution counts at the created_at of the fact it comes from",
                metric.id(),
                c.at
            )));
        }
    }
    Ok(())
}

/// The description as stored and served (`GET /metrics`).
fn describe(info: &PluginInfo) -> serde_json::Value {
    serde_json::json!({
        "name": info.name,
        "version": info.version,
        "abi": info.abi,
        "metrics": info.metrics.iter().map(|m| serde_json::json!({
            "name": m.name,
            "version": m.version,
            "id": m.id(),
            "aggregation": m.aggregation.name(),
            "unit": m.unit,
            "description": m.description,
            "fact_classes": m.fact_classes,
            "dimensions": m.dimensions,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
mod tests {
    use super::*;
    use na_metrics_abi::{ContributionWriter, FactBatch, MetricInfo, Plugin, run_native};

    /// Counts every fact, `SHIFT` seconds after it, into a count (a distinct metric, keyless,
    /// with `DISTINCT`).
    struct Counter<const SHIFT: i64, const DISTINCT: bool>;

    impl<const SHIFT: i64, const DISTINCT: bool> Plugin for Counter<SHIFT, DISTINCT> {
        fn describe() -> PluginInfo {
            let agg = if DISTINCT {
                Aggregation::Distinct
            } else {
                Aggregation::Count
            };
            PluginInfo {
                name: "counter".into(),
                version: 1,
                abi: na_metrics_abi::ABI_VERSION,
                metrics: vec![MetricInfo::new("facts", 1, agg, "facts", &[], "Facts.")],
            }
        }

        fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
            for f in facts.iter() {
                out.push(0, f.actor, f.created_at + SHIFT, 1, b"", &[]);
            }
            Ok(())
        }
    }

    fn check<P: Plugin>() -> Result<(), PublishError> {
        let sample = sample_facts();
        let contributions = run_native::<P>(&sample).unwrap();
        check_contributions("counter@1", &P::describe(), &sample, &contributions)
    }

    #[test]
    fn a_trial_refuses_contributions_counted_elsewhere_or_without_a_key() {
        assert!(check::<Counter<0, false>>().is_ok());
        let e = check::<Counter<1, false>>().unwrap_err().to_string();
        assert!(e.contains("no fact's created_at"), "{e}");
        let e = check::<Counter<0, true>>().unwrap_err().to_string();
        assert!(e.contains("has no key"), "{e}");
    }
}
