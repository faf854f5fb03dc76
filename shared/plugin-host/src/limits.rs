//! Per-call limits: the memory cap, and reading a failed call back as a [`PluginFailure`].

use wasmtime::{ResourceLimiter, Store, Trap};

use crate::{HostConfig, PluginFailure};

/// The store data of one call.
pub(crate) struct CallState {
    pub(crate) memory: MemoryCap,
    /// The call's fuel budget (the store only knows what is left).
    pub(crate) fuel: u64,
}

/// Refuses memory growth past a cap and remembers that it did, so the failure can say so
/// (a bare trap would only say that growth failed).
pub(crate) struct MemoryCap {
    limit: usize,
    hit: bool,
}

impl MemoryCap {
    pub(crate) fn new(limit: usize) -> Self {
        MemoryCap { limit, hit: false }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded",
                self.limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The failure a call's error means.
pub(crate) fn failure(
    store: &Store<CallState>,
    error: wasmtime::Error,
    config: &HostConfig,
) -> PluginFailure {
    if store.data().memory.hit {
        return PluginFailure::OutOfMemory(config.memory_limit);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => PluginFailure::OutOfFuel(store.data().fuel),
        Some(trap) => PluginFailure::Trap(trap.to_string()),
        None => PluginFailure::Trap(format!("{error:#}")),
    }
}
