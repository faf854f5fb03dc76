//! What a plugin made of a set of facts: per metric, its total and its value per subject,
//! folded as queries fold buckets. Its JSON is the golden file `--expect` compares against.

use std::collections::{BTreeMap, BTreeSet};

use na_metrics_abi::{Aggregation, Contributions, PluginInfo};
use serde::{Deserialize, Serialize};

/// Per-metric results of one run, keyed `name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `name@version` of the plugin.
    pub plugin: String,
    /// Facts handed to it.
    pub facts: usize,
    pub metrics: BTreeMap<String, MetricReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricReport {
    pub aggregation: String,
    /// Contributions the plugin returned for it.
    pub contributions: usize,
    /// Over every subject: the sum of their values (count, sum, distinct, gauge), or the
    /// least or greatest (min, max); 0 when nothing contributed.
    pub total: i64,
    /// Each credited pubkey (hex) and its value over all the facts: a count or sum, its
    /// number of distinct keys, its gauge level, its min or max.
    pub by_subject: BTreeMap<String, i64>,
}

impl Report {
    /// Folds `out`, the contributions `info`'s plugin made of `facts` facts.
    pub fn new(info: &PluginInfo, facts: usize, out: &Contributions) -> Self {
        let mut metrics = BTreeMap::new();
        for (index, m) in info.metrics.iter().enumerate() {
            let mut values: BTreeMap<String, i64> = BTreeMap::new();
            let mut keys: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
            let mut contributions = 0;
            for c in out.iter().filter(|c| usize::from(c.metric) == index) {
                contributions += 1;
                let subject = hex::encode(c.subject);
                match m.aggregation {
                    Aggregation::Distinct => {
                        keys.entry(subject).or_default().insert(c.key.to_vec());
                    }
                    Aggregation::Min => {
                        let v = values.entry(subject).or_insert(c.value);
                        *v = (*v).min(c.value);
                    }
                    Aggregation::Max => {
                        let v = values.entry(subject).or_insert(c.value);
                        *v = (*v).max(c.value);
                    }
                    Aggregation::Count | Aggregation::Sum | Aggregation::Gauge => {
                        *values.entry(subject).or_default() += c.value;
                    }
                }
            }
            for (subject, set) in keys {
                values.insert(subject, set.len() as i64);
            }
            let total = match m.aggregation {
                Aggregation::Min => values.values().copied().min().unwrap_or(0),
                Aggregation::Max => values.values().copied().max().unwrap_or(0),
                _ => values.values().sum(),
            };
            metrics.insert(
                format!("{}@{}", m.name, m.version),
                MetricReport {
                    aggregation: m.aggregation.name().to_owned(),
                    contributions,
                    total,
                    by_subject: values,
                },
            );
        }
        Report {
            plugin: info.id(),
            facts,
            metrics,
        }
    }

    /// Where this report differs from `expected` (a golden file): one line per metric total
    /// or subject value that is not the expected one, and per metric only one side has.
    /// Empty when they agree.
    pub fn differences(&self, expected: &Report) -> Vec<String> {
        let mut out = Vec::new();
        let names: BTreeSet<&String> = self.metrics.keys().chain(expected.metrics.keys()).collect();
        for name in names {
            let (Some(got), Some(want)) = (self.metrics.get(name), expected.metrics.get(name))
            else {
                let side = if self.metrics.contains_key(name) {
                    "the plugin computes it; the expected file does not list it"
                } else {
                    "expected, but the plugin does not compute it"
                };
                out.push(format!("{name}: {side}"));
                continue;
            };
            if got.total != want.total {
                out.push(format!(
                    "{name}: total {} (expected {})",
                    got.total, want.total
                ));
            }
            let subjects: BTreeSet<&String> = got
                .by_subject
                .keys()
                .chain(want.by_subject.keys())
                .collect();
            for s in subjects {
                let (g, w) = (got.by_subject.get(s), want.by_subject.get(s));
                if g != w {
                    let show = |v: Option<&i64>| v.map_or("none".to_owned(), i64::to_string);
                    out.push(format!("{name}: {s}: {} (expected {})", show(g), show(w)));
                }
            }
        }
        out
    }
}

impl std::fmt::Display for Report {
    /// A table: each metric's aggregation, total and contributions, then its subjects.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {} facts", self.plugin, self.facts)?;
        for (name, m) in &self.metrics {
            writeln!(
                f,
                "  {name}  {}  total {}  ({} contributions, {} subjects)",
                m.aggregation,
                m.total,
                m.contributions,
                m.by_subject.len()
            )?;
            for (subject, value) in &m.by_subject {
                writeln!(f, "    {subject}  {value}")?;
            }
        }
        Ok(())
    }
}
