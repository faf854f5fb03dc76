//! The dual run's comparison: per metric, the legacy value against v2's, within a
//! threshold — 0 for counts, sums and levels; for a distinct count v2 estimated, three
//! times the relative standard error it states (99.7 % of honest estimates fall inside).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use na_api_types::{DriftExample, DriftReport, MetricDrift, Summary};
use na_storage::rollout::Observation;
use serde_json::{Value, json};

/// A window ending less than this before the snapshot it was read in is at the live edge:
/// late events and compaction are still moving it (five minutes: the compaction lag
/// objective). Its comparisons are reported apart from closed windows'.
pub const LIVE_EDGE_SECONDS: i64 = 300;

/// How many stated standard errors a distinct count's estimate may be off.
const SIGMAS: f64 = 3.0;

/// One request's comparison, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// `{"metric": {"legacy": n, "v2": n | null, "threshold": x}}`.
    pub metrics: Value,
    /// Some value differs at all.
    pub differs: bool,
}

/// Compares `metrics` as the legacy computation found them with `v2`'s summary.
pub fn compare(metrics: &[&str], legacy: &BTreeMap<String, i64>, v2: &Summary) -> Compared {
    let mut out = serde_json::Map::new();
    let mut differs = false;
    for name in metrics {
        let l = legacy.get(*name).copied().unwrap_or(0);
        let found = v2.metrics.iter().find(|m| m.metric.metric == *name);
        let v = found.and_then(|m| m.value);
        let threshold = found
            .filter(|m| !m.exact)
            .and_then(|m| m.relative_error)
            .map_or(0.0, |e| SIGMAS * e);
        differs |= v != Some(l);
        out.insert(
            (*name).to_owned(),
            json!({"legacy": l, "v2": v, "threshold": threshold}),
        );
    }
    Compared {
        metrics: Value::Object(out),
        differs,
    }
}

/// One metric's values in a recorded comparison.
struct Pair {
    legacy: i64,
    v2: Option<i64>,
    threshold: f64,
}

impl Pair {
    fn of(v: &Value) -> Pair {
        Pair {
            legacy: v["legacy"].as_i64().unwrap_or(0),
            v2: v["v2"].as_i64(),
            threshold: v["threshold"].as_f64().unwrap_or(0.0),
        }
    }

    fn difference(&self) -> i64 {
        self.v2.map_or(i64::MAX, |v| (v - self.legacy).abs())
    }

    fn over_threshold(&self) -> bool {
        match self.v2 {
            None => true,
            Some(v) => (v - self.legacy).abs() as f64 > self.threshold * self.legacy.abs() as f64,
        }
    }
}

#[derive(Default)]
struct Tally {
    compared: i64,
    differing: i64,
    over_threshold: i64,
    max_difference: i64,
    threshold: f64,
}

impl Tally {
    fn add(&mut self, p: &Pair) {
        self.compared += 1;
        if p.v2 != Some(p.legacy) {
            self.differing += 1;
        }
        if p.over_threshold() {
            self.over_threshold += 1;
        }
        self.max_difference = self.max_difference.max(p.difference());
        self.threshold = self.threshold.max(p.threshold);
    }

    fn drift(&self, metric: &str, window_class: Option<&str>) -> MetricDrift {
        MetricDrift {
            metric: metric.to_owned(),
            window_class: window_class.map(str::to_owned),
            compared: self.compared,
            differing: self.differing,
            over_threshold: self.over_threshold,
            max_difference: self.max_difference,
            threshold: self.threshold,
        }
    }
}

/// The report over `observations` (oldest first), with at most `examples` of the
/// comparisons over threshold.
pub fn report(
    observations: &[Observation],
    since: DateTime<Utc>,
    as_of: DateTime<Utc>,
    examples: usize,
) -> DriftReport {
    let mut closed: BTreeMap<String, Tally> = BTreeMap::new();
    let mut live: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_class: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut first = Vec::new();
    for o in observations {
        let Some(metrics) = o.metrics.as_object() else {
            continue;
        };
        for (metric, v) in metrics {
            let pair = Pair::of(v);
            if o.live_edge {
                live.entry(metric.clone()).or_default().add(&pair);
            } else {
                closed.entry(metric.clone()).or_default().add(&pair);
                by_class
                    .entry((metric.clone(), o.window_class.clone()))
                    .or_default()
                    .add(&pair);
            }
            if pair.over_threshold() && first.len() < examples {
                first.push(DriftExample {
                    observed_at: o.observed_at,
                    pubkey: o.pubkey.clone(),
                    cohort: u8::try_from(o.cohort).unwrap_or(0),
                    window_class: o.window_class.clone(),
                    from: o.window.0,
                    to: o.window.1,
                    cutoff: o.cutoff,
                    live_edge: o.live_edge,
                    metric: metric.clone(),
                    legacy: pair.legacy,
                    v2: pair.v2.unwrap_or(0),
                });
            }
        }
    }
    let closed: Vec<MetricDrift> = closed.iter().map(|(m, t)| t.drift(m, None)).collect();
    DriftReport {
        since,
        as_of,
        observations: observations.len() as i64,
        within_threshold: closed.iter().all(|d| d.over_threshold == 0),
        closed,
        live_edge: live.iter().map(|(m, t)| t.drift(m, None)).collect(),
        by_window_class: by_class
            .iter()
            .map(|((m, c), t)| t.drift(m, Some(c)))
            .collect(),
        first_differences: first,
    }
}
