//! What turns facts into contributions: a loaded WASM plugin, or (for benchmarks and the
//! native baseline) the same plugin compiled into the host.

use std::marker::PhantomData;
use std::sync::Arc;

use na_metrics_abi::{Contribution, Fact, Plugin, PluginInfo, decode_contributions, encode_facts};
use na_plugin_host::{LoadedPlugin, PluginError, PluginFailure, PluginHost};

/// Maps a batch of facts to contributions.
pub trait FactMapper: Send + Sync {
    fn info(&self) -> &PluginInfo;

    /// # Errors
    /// The plugin's failure, naming it.
    fn map(&self, facts: &[Fact]) -> Result<Vec<Contribution>, PluginError>;
}

/// A WASM plugin in the sandboxed host.
#[derive(Debug)]
pub struct WasmMapper {
    pub host: Arc<PluginHost>,
    pub plugin: LoadedPlugin,
}

impl FactMapper for WasmMapper {
    fn info(&self) -> &PluginInfo {
        &self.plugin.info
    }

    fn map(&self, facts: &[Fact]) -> Result<Vec<Contribution>, PluginError> {
        self.host.run(&self.plugin, facts)
    }
}

/// A plugin compiled into the host: the baseline WASM is measured against.
#[derive(Debug)]
pub struct NativeMapper<P> {
    info: PluginInfo,
    plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> Default for NativeMapper<P> {
    fn default() -> Self {
        NativeMapper {
            info: P::describe(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> FactMapper for NativeMapper<P> {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn map(&self, facts: &[Fact]) -> Result<Vec<Contribution>, PluginError> {
        let fail = |f| PluginError::new(self.info.id(), f);
        let mut packed = Vec::new();
        encode_facts(facts, &mut packed);
        let out = na_metrics_abi::run_packed::<P>(&packed)
            .map_err(|e| fail(PluginFailure::Rejected(e)))?;
        let views = decode_contributions(&out, usize::MAX)
            .map_err(|e| fail(PluginFailure::Garbage(e.0)))?;
        Ok(views.iter().map(|c| c.to_owned()).collect())
    }
}
