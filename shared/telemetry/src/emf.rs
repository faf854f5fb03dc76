//! CloudWatch Embedded Metric Format: metrics as JSON lines in a function's log, which
//! CloudWatch Logs turns into metrics. A recorder over metrics-util's registry keeps what
//! an invocation records; [`EmfRecorder::flush`] writes one document per label set (the
//! labels are its dimensions) and starts over: counters as their increase since the last
//! flush, gauges as they stand, histograms as their values, 100 to a document at most
//! (the format's limit).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use serde_json::{Map, Value, json};

/// The most values a metric may have in one document.
pub const MAX_VALUES: usize = 100;

/// The recorder; clones share what was recorded.
#[derive(Clone)]
pub struct EmfRecorder(Arc<Inner>);

struct Inner {
    namespace: String,
    registry: Registry<Key, AtomicStorage>,
    units: Mutex<HashMap<String, Unit>>,
}

impl std::fmt::Debug for EmfRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfRecorder")
            .field("namespace", &self.0.namespace)
            .finish_non_exhaustive()
    }
}

/// One metric's record since the last flush.
enum Recorded {
    /// A counter's increase, a gauge's value.
    Scalar(Value),
    /// A histogram's values.
    Values(Vec<f64>),
}

/// What one label set recorded since the last flush.
#[derive(Default)]
struct Series {
    units: Vec<(String, Option<Unit>)>,
    scalars: Vec<(String, Value)>,
    lists: Vec<(String, Vec<f64>)>,
}

impl EmfRecorder {
    #[must_use]
    pub fn new(namespace: impl Into<String>) -> Self {
        EmfRecorder(Arc::new(Inner {
            namespace: namespace.into(),
            registry: Registry::atomic(),
            units: Mutex::new(HashMap::new()),
        }))
    }

    /// Writes what was recorded since the last flush to `out`, one JSON document a line,
    /// each with `properties` as members besides its metrics and dimensions.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub fn flush(
        &self,
        properties: &[(&str, &str)],
        mut out: impl std::io::Write,
    ) -> std::io::Result<()> {
        let units = self
            .0
            .units
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut recorded: Vec<(Key, Recorded)> = Vec::new();
        self.0.registry.visit_counters(|key, c| {
            let v = c.swap(0, Ordering::Relaxed);
            if v > 0 {
                recorded.push((key.clone(), Recorded::Scalar(Value::from(v))));
            }
        });
        self.0.registry.visit_gauges(|key, g| {
            let v = f64::from_bits(g.load(Ordering::Relaxed));
            recorded.push((key.clone(), Recorded::Scalar(json!(v))));
        });
        self.0.registry.visit_histograms(|key, h| {
            let mut values = Vec::new();
            h.clear_with(|chunk| values.extend_from_slice(chunk));
            if !values.is_empty() {
                recorded.push((key.clone(), Recorded::Values(values)));
            }
        });
        let mut by_labels: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
        for (key, r) in recorded {
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let s = by_labels.entry(labels).or_default();
            let name = key.name().to_owned();
            s.units.push((name.clone(), units.get(&name).copied()));
            match r {
                Recorded::Scalar(v) => s.scalars.push((name, v)),
                Recorded::Values(v) => s.lists.push((name, v)),
            }
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for (labels, s) in &by_labels {
            for doc in documents(&self.0.namespace, timestamp, labels, s, properties) {
                serde_json::to_writer(&mut out, &doc)?;
                writeln!(out)?;
            }
        }
        Ok(())
    }
}

/// The documents of one label set: the first with every scalar and the first
/// [`MAX_VALUES`] values of each histogram, then as many more as the longest needs.
fn documents(
    namespace: &str,
    timestamp: u64,
    labels: &[(String, String)],
    s: &Series,
    properties: &[(&str, &str)],
) -> Vec<Value> {
    let chunks = s
        .lists
        .iter()
        .map(|(_, v)| v.len().div_ceil(MAX_VALUES))
        .max()
        .unwrap_or(0)
        .max(1);
    (0..chunks)
        .filter_map(|i| {
            let mut doc = Map::new();
            for (k, v) in properties {
                doc.insert((*k).to_owned(), Value::from(*v));
            }
            for (k, v) in labels {
                doc.insert(k.clone(), Value::from(v.as_str()));
            }
            let mut names = Vec::new();
            if i == 0 {
                for (name, v) in &s.scalars {
                    doc.insert(name.clone(), v.clone());
                    names.push(name);
                }
            }
            for (name, values) in &s.lists {
                if let Some(chunk) = values.chunks(MAX_VALUES).nth(i) {
                    doc.insert(name.clone(), json!(chunk));
                    names.push(name);
                }
            }
            if names.is_empty() {
                return None;
            }
            let metrics: Vec<Value> = names
                .iter()
                .map(|name| {
                    let unit = s
                        .units
                        .iter()
                        .find(|(n, _)| n == *name)
                        .and_then(|(_, u)| *u);
                    json!({"Name": name, "Unit": unit_name(unit)})
                })
                .collect();
            let dimensions: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dimensions],
                        "Metrics": metrics,
                    }],
                }),
            );
            Some(Value::Object(doc))
        })
        .collect()
}

/// CloudWatch's name of a unit.
fn unit_name(unit: Option<Unit>) -> &'static str {
    match unit {
        Some(Unit::Seconds) => "Seconds",
        Some(Unit::Milliseconds) => "Milliseconds",
        Some(Unit::Microseconds) => "Microseconds",
        Some(Unit::Bytes) => "Bytes",
        Some(Unit::Count) => "Count",
        Some(Unit::Percent) => "Percent",
        _ => "None",
    }
}

impl Recorder for EmfRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.describe(key, unit);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .registry
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .registry
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

impl EmfRecorder {
    fn describe(&self, key: KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            self.0
                .units
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.as_str().to_owned(), unit);
        }
    }
}
