//! A built plugin component in the production host: the same wasmtime configuration,
//! fuel, memory cap and empty linker (no imports) as compaction and queries use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use na_metrics_abi::{Contributions, Fact, PluginInfo};
use na_plugin_host::{HostConfig, LoadedPlugin, PluginHost};

use crate::{Ingested, Report};

/// A loaded component, ready to run over facts.
#[derive(Debug)]
pub struct Component {
    host: PluginHost,
    plugin: LoadedPlugin,
    path: PathBuf,
}

impl Component {
    /// Loads the component at `path` (e.g. what `na-plugins build` wrote).
    ///
    /// # Errors
    /// The file cannot be read, or the host refuses it (not a `metric-plugin`, imports
    /// something, a description that does not check).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        // Production limits; compiled in memory (no artifact cache to go stale).
        let host = PluginHost::new(HostConfig::default())?;
        let plugin = host
            .load(&bytes)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Component { host, plugin, path })
    }

    /// Builds the plugin crate at `dir` to its component (as `na-plugins build DIR` does)
    /// and loads it: what a plugin crate's own `cargo test` calls with
    /// `env!("CARGO_MANIFEST_DIR")`.
    ///
    /// # Errors
    /// The build fails, or as [`Component::load`].
    pub fn build(dir: impl AsRef<Path>) -> Result<Self> {
        let build = na_plugin_build::Build::for_crate(dir.as_ref())?;
        let built = na_plugin_build::build(&build)?;
        let first = built.first().context("the build made no component")?;
        Self::load(&first.path)
    }

    pub fn info(&self) -> &PluginInfo {
        &self.plugin.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin's contributions for `facts`, checked as the host checks them.
    ///
    /// # Errors
    /// The plugin failed (trap, fuel, memory, its own error, output the host refuses).
    pub fn contributions(&self, facts: &[Fact]) -> Result<Contributions> {
        Ok(self.host.run(&self.plugin, facts)?)
    }

    /// Runs the plugin over `facts` and folds its contributions.
    ///
    /// # Errors
    /// As [`Component::contributions`].
    pub fn run(&self, facts: &[Fact]) -> Result<Report> {
        let out = self.contributions(facts)?;
        Ok(Report::new(self.info(), facts.len(), &out))
    }

    /// Normalizes a file of events (one NIP-01 JSON event per line) by the product's rules
    /// at `now` and runs the plugin over the facts.
    ///
    /// # Errors
    /// The file cannot be read, or as [`Component::run`].
    pub fn run_events_file(&self, path: impl AsRef<Path>, now: i64) -> Result<(Ingested, Report)> {
        let ingested = crate::ingest_file(path, now)?;
        let report = self.run(&ingested.facts)?;
        Ok((ingested, report))
    }
}
