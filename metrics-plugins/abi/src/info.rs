//! What a plugin declares (mirrors `types` in the WIT package).

/// How a metric's contributions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregation {
    Count,
    Sum,
    Min,
    Max,
    Distinct,
    Gauge,
}

impl Aggregation {
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Count => "count",
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Distinct => "distinct",
            Aggregation::Gauge => "gauge",
        }
    }
}

/// One metric a plugin computes, addressed as `name@version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: String,
    pub version: u32,
    pub aggregation: Aggregation,
    pub unit: String,
    pub description: String,
    pub fact_classes: Vec<u16>,
    pub dimensions: Vec<String>,
}

impl MetricInfo {
    /// A metric with no dimensions; add them with [`MetricInfo::dims`].
    pub fn new(
        name: &str,
        version: u32,
        aggregation: Aggregation,
        unit: &str,
        fact_classes: &[u16],
        description: &str,
    ) -> Self {
        MetricInfo {
            name: name.to_owned(),
            version,
            aggregation,
            unit: unit.to_owned(),
            description: description.to_owned(),
            fact_classes: fact_classes.to_vec(),
            dimensions: Vec::new(),
        }
    }

    pub fn dims(mut self, dims: &[&str]) -> Self {
        self.dimensions = dims.iter().map(|d| (*d).to_owned()).collect();
        self
    }

    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A plugin: its registry key and its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: u32,
    pub abi: u32,
    pub metrics: Vec<MetricInfo>,
}

impl PluginInfo {
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Why this description cannot be registered, if anything: names and versions well
    /// formed, metric names unique, the layout known.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name_ok = |n: &str, extra: u8| {
            !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == extra)
        };
        if !name_ok(&self.name, b'-') {
            out.push(format!(
                "plugin name {:?} is not lowercase [a-z0-9-], 1-64 characters",
                self.name
            ));
        }
        if self.version == 0 {
            out.push("plugin version must be 1 or more".into());
        }
        if self.abi != crate::ABI_VERSION {
            out.push(format!(
                "batch layout {} is not supported (this host reads {})",
                self.abi,
                crate::ABI_VERSION
            ));
        }
        if self.metrics.is_empty() {
            out.push("declares no metrics".into());
        }
        if self.metrics.len() > usize::from(u16::MAX) {
            out.push("declares too many metrics".into());
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.metrics {
            if !name_ok(&m.name, b'_') {
                out.push(format!(
                    "metric name {:?} is not lowercase [a-z0-9_], 1-64 characters",
                    m.name
                ));
            }
            if m.version == 0 {
                out.push(format!("metric {} has version 0", m.name));
            }
            if !seen.insert(&m.name) {
                out.push(format!("metric {} is declared twice", m.name));
            }
        }
        out
    }
}
