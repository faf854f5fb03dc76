//! Test a metric plugin as it will run: signed Nostr events normalized by the product's
//! own rules ([`ingest`]), the *built* component run in the production host with its
//! limits ([`Component`]), the result folded per metric and subject ([`Report`]) and
//! compared with golden values. `na-plugins test` is this library on the command line.
//!
//! ```no_run
//! use na_plugin_testing::{Component, Report, now};
//!
//! let plugin = Component::build(env!("CARGO_MANIFEST_DIR")).unwrap();
//! let (_, report) = plugin.run_events_file("fixtures/events.jsonl", now()).unwrap();
//! let expected = Report::load("fixtures/expected.json").unwrap();
//! assert_eq!(report.differences(&expected), Vec::<String>::new());
//! ```
//!
//! Hand-written facts: `na_metrics_abi::Fact::of` and its setters.

mod component;
pub mod fixtures;
mod ingest;
mod report;
pub mod scaffold;

use std::path::Path;

use anyhow::{Context, Result};

pub use component::Component;
pub use ingest::{Ingested, Refused, ingest};
pub use na_metrics_abi::{Fact, class, flag};
pub use report::{MetricReport, Report};

/// The current Unix time, for [`ingest`]'s clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// [`ingest`] over a file of events, one JSON event per line.
///
/// # Errors
/// The file cannot be read.
pub fn ingest_file(path: impl AsRef<Path>, now: i64) -> Result<Ingested> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    Ok(ingest(&lines, now))
}

impl Report {
    /// Reads a golden file (a report's JSON).
    ///
    /// # Errors
    /// It cannot be read or is not a report.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a report", path.display()))
    }

    /// Writes this report as a golden file.
    ///
    /// # Errors
    /// It cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}
