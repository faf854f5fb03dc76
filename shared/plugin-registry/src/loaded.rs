//! Stored plugin versions loaded for mapping facts, kept between batches and queries: the
//! compactor, the recompute job and the query path (live delta, edges, note drilldowns)
//! all map through this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use na_metrics_abi::{Aggregation, Contributions, Fact};
use na_plugin_host::{PluginError, PluginHost};
use na_storage::compaction_state::{self, Series};
use na_storage::facts::FactRow;

use crate::convert::to_fact;
use crate::mapper::{FactMapper, WasmMapper};

/// Why a stored version could not be loaded for mapping facts (callers match both).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Storage(#[from] na_storage::Error),
    /// The stored component does not load (the error names `plugin@version`).
    #[error(transparent)]
    Plugin(PluginError),
}

/// A plugin version's metrics, by contribution metric index.
#[derive(Debug, Clone)]
pub struct SeriesMap(Vec<(i32, Aggregation)>);

impl SeriesMap {
    /// Pairs the registry's series ids with the plugin's own description.
    pub fn new(series: &[Series], declared: &[na_metrics_abi::MetricInfo]) -> Self {
        SeriesMap(
            declared
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let s = series.iter().find(|s| s.metric_index == i as i32)?;
                    Some((s.series, m.aggregation))
                })
                .collect(),
        )
    }

    /// The series id and aggregation of the plugin's metric at this index.
    pub fn get(&self, metric: u16) -> Option<(i32, Aggregation)> {
        self.0.get(usize::from(metric)).copied()
    }
}

/// A version ready to map facts.
#[derive(Clone)]
pub struct LoadedVersion {
    hash: Vec<u8>,
    pub mapper: Arc<dyn FactMapper>,
    pub series: SeriesMap,
    /// Fact classes the plugin reads (empty: all).
    pub classes: Vec<u16>,
    /// Fact classes each declared metric reads, by metric index (empty: all).
    metric_classes: Vec<Vec<u16>>,
}

impl std::fmt::Debug for LoadedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedVersion")
            .field("plugin", &self.mapper.info().id())
            .finish_non_exhaustive()
    }
}

impl LoadedVersion {
    pub fn reads(&self, class: i16) -> bool {
        self.classes.is_empty()
            || self
                .classes
                .iter()
                .any(|c| i32::from(*c) == i32::from(class))
    }

    /// The fact classes the metrics of `series` read (empty: all).
    pub fn classes_of(&self, series: &[i32]) -> Vec<i16> {
        let mut out: Vec<i16> = Vec::new();
        for (i, classes) in self.metric_classes.iter().enumerate() {
            let Some((s, _)) = u16::try_from(i).ok().and_then(|i| self.series.get(i)) else {
                continue;
            };
            if !series.contains(&s) {
                continue;
            }
            if classes.is_empty() {
                return Vec::new();
            }
            out.extend(classes.iter().map(|c| *c as i16));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The facts among `rows` logged with `sign` that the plugin reads, in its shape.
    pub fn facts(&self, rows: &[FactRow], sign: i16) -> Vec<Fact> {
        rows.iter()
            .filter(|r| r.sign == sign && self.reads(r.class))
            .map(to_fact)
            .collect()
    }

    /// # Errors
    /// The plugin's failure, naming it.
    pub fn map(&self, facts: &[Fact]) -> Result<Contributions, PluginError> {
        if facts.is_empty() {
            return Ok(Contributions::default());
        }
        self.mapper.map(facts)
    }
}

/// Loaded plugin versions, by name and version; one per process.
pub struct PluginSet {
    host: Arc<PluginHost>,
    loaded: Mutex<HashMap<(String, i32), LoadedVersion>>,
    /// Mappers that replace a version's WASM (the native baseline of the benchmark).
    overrides: Mutex<HashMap<(String, i32), Arc<dyn FactMapper>>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet").finish_non_exhaustive()
    }
}

impl PluginSet {
    pub fn new(host: Arc<PluginHost>) -> Self {
        PluginSet {
            host,
            loaded: Mutex::default(),
            overrides: Mutex::default(),
        }
    }

    /// The host plugins run in (share it: one engine per process).
    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// Runs `name@version` with `mapper` instead of its published component.
    pub fn use_mapper(&self, name: &str, version: i32, mapper: Arc<dyn FactMapper>) {
        if let Ok(mut o) = self.overrides.lock() {
            o.insert((name.to_owned(), version), mapper);
        }
        if let Ok(mut l) = self.loaded.lock() {
            l.remove(&(name.to_owned(), version));
        }
    }

    /// A version's mapper, loading its component when it is new or changed (`hash`, when
    /// given, is the content hash the caller expects), through `client`: a caller that
    /// holds a connection passes it, so a load never waits for a second one (with every
    /// pooled connection held by such callers, that wait would never end).
    ///
    /// # Errors
    /// Database errors; a component the host cannot load.
    pub async fn load(
        &self,
        client: &impl tokio_postgres::GenericClient,
        name: &str,
        version: i32,
        hash: Option<&[u8]>,
    ) -> Result<LoadedVersion, LoadError> {
        let key = (name.to_owned(), version);
        if let Some(l) = self.loaded.lock().ok().and_then(|l| l.get(&key).cloned())
            && hash.is_none_or(|h| h == l.hash)
        {
            return Ok(l);
        }
        let overridden = self
            .overrides
            .lock()
            .ok()
            .and_then(|o| o.get(&key).cloned());
        let (mapper, hash): (Arc<dyn FactMapper>, Vec<u8>) = match overridden {
            Some(m) => (m, hash.map(<[u8]>::to_vec).unwrap_or_default()),
            None => {
                let artifact = na_storage::plugins::artifact(client, name, version).await?;
                let plugin = self.host.load(&artifact).map_err(LoadError::Plugin)?;
                let hash = plugin.hash.to_vec();
                let mapper = WasmMapper {
                    host: Arc::clone(&self.host),
                    plugin,
                };
                (Arc::new(mapper), hash)
            }
        };
        let series = compaction_state::series_of(client, name, version).await?;
        let info = mapper.info();
        let loaded = LoadedVersion {
            hash,
            series: SeriesMap::new(&series, &info.metrics),
            // One metric reading every class makes the plugin read every class.
            classes: if info.metrics.iter().any(|m| m.fact_classes.is_empty()) {
                Vec::new()
            } else {
                info.metrics
                    .iter()
                    .flat_map(|m| m.fact_classes.iter().copied())
                    .collect()
            },
            metric_classes: info
                .metrics
                .iter()
                .map(|m| m.fact_classes.clone())
                .collect(),
            mapper,
        };
        if let Ok(mut l) = self.loaded.lock() {
            l.insert(key, loaded.clone());
        }
        Ok(loaded)
    }
}
