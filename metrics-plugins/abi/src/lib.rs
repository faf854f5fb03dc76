//! The Rust side of the metric plugin contract (`metrics-plugins/sdk/wit/metrics@1.0.0/metric.wit`): what a
//! plugin declares, and the packed batch layout (abi 1) facts and contributions cross the
//! WASM boundary in. Host and guests both build on this crate, so the two ends of the
//! layout are one code. No dependencies: it compiles for `wasm32-unknown-unknown` as is.
//!
//! Layout 1, little-endian throughout:
//! - facts: `u32 abi, u32 count`, then per fact `i64 created_at, [32] event_id, i16 seq,
//!   u16 class, u32 flags, u8 present (1 subject, 2 target_event, 4 amount, 8 expires_at),
//!   [32] actor, [32] subject, [32] target_event, i64 amount_msats, i64 expires_at,
//!   u16 len + target_coord, u16 len + dims`;
//! - contributions: `u32 abi, u32 count`, then per contribution `u16 metric, i64 at,
//!   i64 value, [32] subject, u8 len + key, u16 len + dims`;
//! - dims: repeated `u8 len + key, u16 len + value` (UTF-8).

mod builder;
mod decode;
mod encode;
mod info;
mod numbers;

pub use decode::{ContributionView, Contributions, FactBatch, FactView};
pub use encode::{ContributionWriter, encode_facts};
pub use info::{Aggregation, MetricInfo, PluginInfo};
pub use numbers::{class, flag};

/// The layout this crate reads and writes.
pub const ABI_VERSION: u32 = 1;

/// Longest distinct key a contribution may carry.
pub const MAX_KEY_LEN: usize = 64;

/// A fact as the host hands it over (owned; the plugin reads [`FactView`]s).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fact {
    pub created_at: i64,
    pub event_id: [u8; 32],
    pub seq: i16,
    pub class: u16,
    pub flags: u32,
    pub actor: [u8; 32],
    pub subject: Option<[u8; 32]>,
    pub target_event: Option<[u8; 32]>,
    pub target_coord: Option<String>,
    pub amount_msats: Option<i64>,
    pub expires_at: Option<i64>,
    /// String-valued dimensions (`class`, `content`, `lnurl`, ...).
    pub dims: Vec<(String, String)>,
}

/// A contribution as the host reads it back (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// Index into the plugin's declared metrics.
    pub metric: u16,
    pub subject: [u8; 32],
    /// Unix seconds: the instant it counts at (the host picks the buckets): the `created_at`
    /// of the fact it comes from, which queries read the edges of a window by.
    pub at: i64,
    /// +1 for a count, the amount for a sum, the level change for a gauge, the value for
    /// min/max; ignored for distinct.
    pub value: i64,
    /// The distinct key (distinct metrics only), at most [`MAX_KEY_LEN`] bytes.
    pub key: Vec<u8>,
    pub dims: Vec<(String, String)>,
}

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiError(pub String);

impl std::fmt::Display for AbiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed batch: {}", self.0)
    }
}

impl std::error::Error for AbiError {}

/// A metric plugin: a description and a mapping from facts to contributions. The guest SDK
/// exports an implementation as a component; the host can also run one natively.
pub trait Plugin {
    fn describe() -> PluginInfo;

    /// Appends the contributions of `facts` to `out`. Must be deterministic.
    ///
    /// # Errors
    /// A message that fails this batch.
    fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String>;
}

/// Runs a plugin over a packed fact batch and returns the packed contributions: the body of
/// the exported `map-batch`.
///
/// # Errors
/// A malformed batch, or the plugin's own error.
pub fn run_packed<P: Plugin>(facts: &[u8]) -> Result<Vec<u8>, String> {
    let batch = FactBatch::parse(facts).map_err(|e| e.to_string())?;
    let mut out = ContributionWriter::with_capacity(batch.len());
    P::map(&batch, &mut out)?;
    batch.check().map_err(|e| e.to_string())?;
    Ok(out.finish())
}

/// Runs a plugin compiled into the caller over owned facts, its output checked as the host
/// checks a WASM plugin's: plugin tests and the native baseline.
///
/// # Errors
/// The plugin's own error, or output the host would refuse.
pub fn run_native<P: Plugin>(facts: &[Fact]) -> Result<Contributions, String> {
    let mut packed = Vec::new();
    encode_facts(facts, &mut packed);
    let out = run_packed::<P>(&packed)?;
    Contributions::decode(out, P::describe().metrics.len()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
