//! What turns facts into contributions: a loaded WASM plugin, or (for benchmarks and the
//! native baseline) the same plugin compiled into the host.

use std::marker::PhantomData;
use std::sync::Arc;

use na_metrics_abi::{Contributions, Fact, Plugin, PluginInfo, run_native};
use na_plugin_host::{LoadedPlugin, PluginError, PluginFailure, PluginHost};

/// Maps a batch of facts to contributions.
pub trait FactMapper: Send + Sync {
    fn info(&self) -> &PluginInfo;

    /// # Errors
    /// The plugin's failure, naming it.
    fn map(&self, facts: &[Fact]) -> Result<Contributions, PluginError>;
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

    fn map(&self, facts: &[Fact]) -> Result<Contributions, PluginError> {
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

    fn map(&self, facts: &[Fact]) -> Result<Contributions, PluginError> {
        run_native::<P>(facts)
            .map_err(|e| PluginError::new(self.info.id(), PluginFailure::Rejected(e)))
    }
}
