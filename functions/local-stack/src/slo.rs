//! `nostr-analytics slo`: each SLO read from a running stack's `/metrics` (Prometheus
//! text, parsed by openmetrics-parser), as the alarms read them deployed: the share of
//! good events against the objective, with the percentile the objective names, and the
//! compaction lag against its bound.

use std::collections::BTreeMap;

use anyhow::Context;
use na_telemetry::metrics as m;
use na_telemetry::slo::{COMPACTION_LAG_MAX, Slo};
use openmetrics_parser::PrometheusValue;
use serde::Serialize;

/// One SLO as it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    pub slo: &'static str,
    /// What must hold, in words.
    pub objective: String,
    /// Good and counted events (latency, freshness, jobs); none for compaction lag.
    pub good: Option<f64>,
    pub total: Option<f64>,
    /// The percentile the objective names, or the worst lag, in seconds.
    pub seconds: Option<f64>,
    /// Holds, or no events to hold it against yet.
    pub met: bool,
}

/// Every SLO from the text of one scrape.
///
/// # Errors
/// The text is not the Prometheus format.
pub fn read(text: &str) -> anyhow::Result<Vec<Reading>> {
    let samples = parse(text)?;
    let events = |slo: Slo, outcome: &str| -> f64 {
        sum(&samples, m::SLO_EVENTS, |s| {
            s.label("slo") == Some(slo.name()) && s.label("outcome") == Some(outcome)
        })
    };
    let mut readings = Vec::new();
    for slo in Slo::ALL {
        let (good, bad) = (events(slo, "good"), events(slo, "bad"));
        let total = good + bad;
        let met = total == 0.0 || good / total >= slo.objective();
        let percent = slo.objective() * 100.0;
        let (objective, seconds) = match slo {
            Slo::SummaryLatency => (
                format!(
                    "{percent}% of summaries answered within {} s",
                    slo.threshold().as_secs_f64()
                ),
                quantile(&samples, m::REQUEST_SECONDS, slo.objective(), |s| {
                    s.label("route") == Some(m::SUMMARY_ROUTE)
                }),
            ),
            Slo::Freshness => (
                format!(
                    "{percent}% of live events visible within {} s of being received",
                    slo.threshold().as_secs_f64()
                ),
                quantile(
                    &samples,
                    m::INGEST_FRESHNESS_SECONDS,
                    slo.objective(),
                    |s| s.label("since") == Some("received"),
                ),
            ),
            Slo::JobSuccess => (format!("{percent}% of jobs succeed"), None),
        };
        readings.push(Reading {
            slo: slo.name(),
            objective,
            good: Some(good),
            total: Some(total),
            seconds,
            met,
        });
    }
    let worst = samples
        .iter()
        .filter(|s| s.metric == m::COMPACTION_LAG_SECONDS)
        .filter_map(|s| match &s.value {
            Measured::Scalar(v) => Some(*v),
            Measured::Buckets(_) => None,
        })
        .reduce(f64::max);
    readings.push(Reading {
        slo: "compaction_lag",
        objective: format!(
            "every plugin version's compaction within {} s",
            COMPACTION_LAG_MAX.as_secs()
        ),
        good: None,
        total: None,
        seconds: worst,
        met: worst.is_none_or(|w| w <= COMPACTION_LAG_MAX.as_secs_f64()),
    });
    Ok(readings)
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    metric: String,
    labels: Vec<(String, String)>,
    value: Measured,
}

#[derive(Debug, Clone, PartialEq)]
enum Measured {
    /// A counter's or a gauge's value.
    Scalar(f64),
    /// A histogram's cumulative counts by upper bound.
    Buckets(Vec<(f64, f64)>),
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a scrape, each with its labels by name.
fn parse(text: &str) -> anyhow::Result<Vec<Sample>> {
    // Nothing recorded yet is an empty answer, which the grammar does not take.
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let exposition = openmetrics_parser::prometheus::parse_prometheus(text).map_err(|e| {
        let why = format!("{e:?}");
        anyhow::anyhow!(
            "the answer is not Prometheus text: {}",
            why.chars().take(300).collect::<String>()
        )
    })?;
    let mut samples = Vec::new();
    for (name, family) in exposition.families {
        for sample in family.iter_samples() {
            let labels = sample
                .get_labelset()
                .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match &sample.value {
                PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => {
                    Measured::Scalar(n.as_f64())
                }
                PrometheusValue::Counter(c) => Measured::Scalar(c.value.as_f64()),
                PrometheusValue::Histogram(h) => {
                    let mut buckets: Vec<(f64, f64)> = h
                        .buckets
                        .iter()
                        .map(|b| (b.upper_bound, b.count.as_f64()))
                        .collect();
                    if let Some(count) = h.count
                        && !buckets.iter().any(|(bound, _)| bound.is_infinite())
                    {
                        #[expect(
                            clippy::cast_precision_loss,
                            reason = "counts are far below 2^53"
                        )]
                        buckets.push((f64::INFINITY, count as f64));
                    }
                    Measured::Buckets(buckets)
                }
                PrometheusValue::Summary(_) => continue,
            };
            samples.push(Sample {
                metric: name.clone(),
                labels,
                value,
            });
        }
    }
    Ok(samples)
}

/// The sum of the counters named `metric` whose labels `pick` takes.
fn sum(samples: &[Sample], metric: &str, pick: impl Fn(&Sample) -> bool) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric && pick(s))
        .filter_map(|s| match s.value {
            Measured::Scalar(v) => Some(v),
            Measured::Buckets(_) => None,
        })
        .sum()
}

/// The `q` quantile of the histograms named `metric` whose labels `pick` takes, merged,
/// interpolated within its bucket as Prometheus's `histogram_quantile` does; `None`
/// without observations.
fn quantile(
    samples: &[Sample],
    metric: &str,
    q: f64,
    pick: impl Fn(&Sample) -> bool,
) -> Option<f64> {
    // Cumulative counts by upper bound, in thousandths of a millisecond to key a map.
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.metric == metric && pick(s)) {
        if let Measured::Buckets(counts) = &s.value {
            for &(bound, count) in counts {
                let key = if bound.is_finite() {
                    (bound * 1e6) as u64
                } else {
                    u64::MAX
                };
                buckets.entry(key).or_insert((bound, 0.0)).1 += count;
            }
        }
    }
    let total = buckets.values().last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in buckets.into_values() {
        if count >= rank {
            if !bound.is_finite() {
                return Some(lower);
            }
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * share);
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

/// `nostr-analytics slo`: scrapes `url`'s `/metrics` and prints each SLO, as a table or
/// as JSON; fails when one is not met.
///
/// # Errors
/// The stack does not answer, or an SLO is not met.
pub async fn check(url: &str, json: bool) -> anyhow::Result<()> {
    let metrics = format!("{}/metrics", url.trim_end_matches('/'));
    let answer = reqwest::get(&metrics)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("no metrics at {metrics}: is the stack running there?"))?;
    let kind = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        kind.starts_with("text/plain"),
        "{metrics} answered {kind:?}, not Prometheus text: give the stack's gateway \
         (http://host:port), not a path under it"
    );
    let text = answer.text().await?;
    let readings = read(&text)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&readings)?);
    } else {
        for r in &readings {
            let counted = match (r.good, r.total) {
                (Some(good), Some(total)) if total > 0.0 => {
                    format!("{:.2}% good of {total}", good / total * 100.0)
                }
                (Some(_), Some(_)) => "no events yet".to_owned(),
                _ => String::new(),
            };
            let seconds = r
                .seconds
                .map_or_else(String::new, |s| format!("{:.3} s", s));
            println!(
                "{:<16} {:<8} {:<12} {:<24} {}",
                r.slo,
                if r.met { "met" } else { "NOT MET" },
                seconds,
                counted,
                r.objective
            );
        }
    }
    let missed: Vec<&str> = readings.iter().filter(|r| !r.met).map(|r| r.slo).collect();
    anyhow::ensure!(missed.is_empty(), "not met: {}", missed.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use na_telemetry::metrics::JobOutcome;

    use super::*;

    /// The text a recorder renders after `record`.
    fn rendered(record: impl FnOnce()) -> String {
        let (recorder, prometheus) = na_telemetry::Prometheus::build().unwrap();
        metrics::with_local_recorder(&recorder, record);
        prometheus.render()
    }

    fn reading<'a>(readings: &'a [Reading], slo: &str) -> &'a Reading {
        readings.iter().find(|r| r.slo == slo).unwrap()
    }

    #[test]
    fn each_slo_is_read_against_its_objective() {
        let text = rendered(|| {
            for i in 0..100 {
                let took = if i < 98 { 10 } else { 1500 };
                m::request(m::SUMMARY_ROUTE, "30d", 200, Duration::from_millis(took));
            }
            // Other routes count for no SLO.
            m::request(
                "/api/v2/analytics/status",
                "none",
                500,
                Duration::from_secs(9),
            );
            for _ in 0..20 {
                m::ingest_freshness(0.04, 1.0);
            }
            m::compaction_lag("core@1", 10, 12.0);
            m::compaction_lag("likes@2", 900, 400.0);
            m::job_finished("query", JobOutcome::Succeeded);
            m::job_finished("query", JobOutcome::Retried);
        });
        let readings = read(&text).unwrap();
        let latency = reading(&readings, "summary_latency");
        assert_eq!((latency.good, latency.total), (Some(98.0), Some(100.0)));
        assert!(!latency.met, "98% is under 99%");
        // The 99th of 100 observations lies in the (1 s, 2 s] bucket, which holds two.
        let p99 = latency.seconds.unwrap();
        assert!((p99 - 1.5).abs() < 1e-9, "{p99}");
        let fresh = reading(&readings, "freshness");
        assert!(fresh.met);
        assert_eq!(fresh.total, Some(20.0));
        let p95 = fresh.seconds.unwrap();
        assert!(p95 > 0.025 && p95 <= 0.05, "{p95}");
        let lag = reading(&readings, "compaction_lag");
        assert_eq!(lag.seconds, Some(400.0));
        assert!(!lag.met);
        let jobs = reading(&readings, "job_success");
        assert_eq!(
            (jobs.good, jobs.total, jobs.met),
            (Some(1.0), Some(1.0), true)
        );
    }

    #[test]
    fn with_nothing_recorded_every_slo_holds() {
        let readings = read(&rendered(|| {})).unwrap();
        assert_eq!(readings.len(), 4);
        assert!(
            readings.iter().all(|r| r.met && r.seconds.is_none()),
            "{readings:?}"
        );
    }
}
