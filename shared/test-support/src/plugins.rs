//! The metric plugin components `scripts/build-plugins` built, as the tests and benchmarks
//! load them.

use std::path::PathBuf;

/// `NA_PLUGIN_DIR` (as `scripts/env.sh` sets it), else where the build script writes.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("NA_PLUGIN_DIR").map_or_else(
        || PathBuf::from(na_plugin_host::DEFAULT_PLUGIN_DIR),
        PathBuf::from,
    )
}

/// The component built from plugin crate `name`.
///
/// # Errors
/// A message naming the missing file and the command that builds it.
pub fn built_component(name: &str) -> Result<Vec<u8>, String> {
    na_plugin_host::read_built_component(&plugin_dir(), name)
}
