//! How a plugin fails, always naming it.

/// A plugin (`name@version`, or `sha256:…` before it has described itself) failed.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {failure}")]
pub struct PluginError {
    pub plugin: String,
    pub failure: PluginFailure,
}

impl PluginError {
    pub fn new(plugin: String, failure: PluginFailure) -> Self {
        PluginError { plugin, failure }
    }

    pub(crate) fn host(message: String) -> Self {
        PluginError::new("(host)".into(), PluginFailure::Host(message))
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum PluginFailure {
    #[error("not a loadable WASM component: {0}")]
    Compile(String),
    #[error(
        "does not implement nostr-analytics:metrics/metric-plugin@1 (or imports something): {0}"
    )]
    WrongInterface(String),
    #[error("invalid description: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("ran out of fuel ({0} units): a loop, or far more work than a metric needs")]
    OutOfFuel(u64),
    #[error("exceeded its memory limit of {0} bytes")]
    OutOfMemory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("refused the batch: {0}")]
    Rejected(String),
    #[error("returned garbage: {0}")]
    Garbage(String),
    #[error("returned too much: {0}")]
    TooMuch(String),
    #[error("{0}")]
    Host(String),
}
