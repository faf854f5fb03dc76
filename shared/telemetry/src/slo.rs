//! The service level objectives, as numbers the code, the alarms (`infra/template.yaml`)
//! and the local check (`nostr-analytics slo`) share; `docs/operations.md` explains them.

use std::time::Duration;

use metrics::counter;

use crate::metrics::SLO_EVENTS;

/// An objective over events, each good or bad, counted in [`SLO_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slo {
    /// Summaries answered within [`Slo::threshold`] (server time); 5xx answers are bad.
    SummaryLatency,
    /// Live events visible to queries within [`Slo::threshold`] of being read from a relay.
    Freshness,
    /// Jobs that end succeeded (a job retried and then succeeding is good).
    JobSuccess,
}

impl Slo {
    pub const ALL: [Slo; 3] = [Slo::SummaryLatency, Slo::Freshness, Slo::JobSuccess];

    /// The `slo` label.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Slo::SummaryLatency => "summary_latency",
            Slo::Freshness => "freshness",
            Slo::JobSuccess => "job_success",
        }
    }

    /// The share of events that must be good, over 30 days.
    #[must_use]
    pub fn objective(self) -> f64 {
        match self {
            Slo::SummaryLatency | Slo::JobSuccess => 0.99,
            Slo::Freshness => 0.95,
        }
    }

    /// What makes an event good: answered within (latency), visible within (freshness);
    /// zero where the outcome alone decides (jobs).
    #[must_use]
    pub fn threshold(self) -> Duration {
        match self {
            Slo::SummaryLatency => Duration::from_millis(300),
            Slo::Freshness => Duration::from_secs(2),
            Slo::JobSuccess => Duration::ZERO,
        }
    }

    /// One event, good or bad.
    pub fn event(self, good: bool) {
        counter!(SLO_EVENTS, "slo" => self.name(), "outcome" => if good { "good" } else { "bad" })
            .increment(1);
    }
}

/// Compaction is behind when a plugin version's oldest unapplied fact-log row is older
/// than this: its buckets lag, and queries read more of the fact log to stay exact.
pub const COMPACTION_LAG_MAX: Duration = Duration::from_secs(300);
