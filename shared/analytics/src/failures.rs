//! Plugin versions that failed while answering: their metrics carry the error, the others
//! answer.

use std::collections::HashMap;

use na_storage::plugins::CatalogMetric;

/// Plugin versions that failed while answering, with why: their metrics carry the error,
/// the others answer.
#[derive(Debug, Default)]
pub(crate) struct Failures(HashMap<(String, i32), String>);

impl Failures {
    pub(crate) fn record(&mut self, name: &str, version: i32, e: &dyn std::fmt::Display) {
        tracing::warn!(plugin = %format!("{name}@{version}"), error = %e, "plugin failed; its metrics answer with an error");
        self.0
            .entry((name.to_owned(), version))
            .or_insert_with(|| e.to_string());
    }

    pub(crate) fn has(&self, name: &str, version: i32) -> bool {
        self.0.contains_key(&(name.to_owned(), version))
    }

    /// Why `m` has no value, if its plugin version failed.
    pub(crate) fn of(&self, m: &CatalogMetric) -> Option<String> {
        self.0
            .get(&(m.plugin.clone(), m.plugin_version))
            .map(|e| format!("{} has no value: {e}", m.id()))
    }
}
