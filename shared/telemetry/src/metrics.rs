//! What the service measures, by name, through the `metrics` facade: the code records
//! with the functions here, and the process's exporter ([`crate::export`]) decides the
//! wire format (Prometheus text on the local gateway, CloudWatch Embedded Metric Format
//! on Lambda). Labels are route templates, window classes, plugin versions and the like:
//! never a pubkey or an event id, so the number of series stays bounded.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};

use crate::slo::Slo;

/// Time to answer one HTTP request, by `route` (its template, as routed) and `window`
/// ([`window_class`]).
pub const REQUEST_SECONDS: &str = "na_request_duration_seconds";
/// Requests answered, by `route`, `window` and `status` class (`2xx`, `4xx`, `5xx`).
pub const REQUESTS: &str = "na_requests_total";
/// From an event's arrival to its facts committed (visible to every query from then on),
/// by `since`: `received` (read from the relay's socket) or `created_at` (its author's
/// clock, floored at zero). Live events only; catch-up and backfills are not fresh.
pub const INGEST_FRESHNESS_SECONDS: &str = "na_ingest_freshness_seconds";
/// The age of the oldest fact-log row a plugin version has not applied, by `plugin`
/// (`name@version`).
pub const COMPACTION_LAG_SECONDS: &str = "na_compaction_lag_seconds";
/// Fact-log rows a plugin version has not applied, by `plugin`.
pub const COMPACTION_LAG_ROWS: &str = "na_compaction_lag_rows";
/// From a job's creation to a worker starting it, by `kind` (`query`, `backfill`).
pub const JOB_QUEUE_AGE_SECONDS: &str = "na_job_queue_age_seconds";
/// Job runs, by `kind` and `outcome`: `succeeded`, `failed` (for good) or `retried`
/// (failed, and the queue will deliver it again).
pub const JOBS: &str = "na_jobs_total";
/// Requests refused over a caller's rate limit, by rate `class`.
pub const RATE_LIMITED: &str = "na_rate_limited_total";
/// Events each SLO counts, by `slo` and `outcome` (`good`, `bad`): what the burn-rate
/// alarms and the local check read (`docs/operations.md`).
pub const SLO_EVENTS: &str = "na_slo_events_total";

/// Every metric above, with its unit and what it means, for exporters that show them.
pub fn describe() {
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "time to answer a request, by route template and window class"
    );
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "requests answered, by route, window class and status class"
    );
    describe_histogram!(
        INGEST_FRESHNESS_SECONDS,
        Unit::Seconds,
        "from a live event's arrival (received) or creation (created_at) to its facts committed"
    );
    describe_gauge!(
        COMPACTION_LAG_SECONDS,
        Unit::Seconds,
        "age of the oldest fact-log row a plugin version has not applied"
    );
    describe_gauge!(
        COMPACTION_LAG_ROWS,
        Unit::Count,
        "fact-log rows a plugin version has not applied"
    );
    describe_histogram!(
        JOB_QUEUE_AGE_SECONDS,
        Unit::Seconds,
        "from a job's creation to a worker starting it"
    );
    describe_counter!(JOBS, Unit::Count, "job runs, by kind and outcome");
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "requests refused over a rate limit, by rate class"
    );
    describe_counter!(
        SLO_EVENTS,
        Unit::Count,
        "events each SLO counts, good or bad"
    );
}

/// One answered request. A summary also counts for [`Slo::SummaryLatency`]: good when
/// answered (not a 5xx) within its threshold; refusals of the caller's request (4xx)
/// count for neither side.
pub fn request(route: impl Into<String>, window: &'static str, status: u16, took: Duration) {
    let route: String = route.into();
    let summary = route == SUMMARY_ROUTE;
    histogram!(REQUEST_SECONDS, "route" => route.clone(), "window" => window)
        .record(took.as_secs_f64());
    let class = match status {
        ..300 => "2xx",
        300..400 => "3xx",
        400..500 => "4xx",
        _ => "5xx",
    };
    counter!(REQUESTS, "route" => route, "window" => window, "status" => class).increment(1);
    if summary && class != "4xx" {
        Slo::SummaryLatency.event(class != "5xx" && took <= Slo::SummaryLatency.threshold());
    }
}

/// The summary route's template: the request SLO is on it.
pub const SUMMARY_ROUTE: &str = "/api/v2/analytics/users/{pubkey}/summary";

/// A live event's facts committed `received` seconds after it was read from the relay
/// and `created` seconds after its `created_at`; the first counts for [`Slo::Freshness`].
pub fn ingest_freshness(received: f64, created: f64) {
    histogram!(INGEST_FRESHNESS_SECONDS, "since" => "received").record(received.max(0.0));
    histogram!(INGEST_FRESHNESS_SECONDS, "since" => "created_at").record(created.max(0.0));
    Slo::Freshness.event(received <= Slo::Freshness.threshold().as_secs_f64());
}

/// Where a plugin version's compaction stands.
pub fn compaction_lag(plugin: &str, rows: i64, seconds: f64) {
    let plugin = plugin.to_owned();
    metrics::gauge!(COMPACTION_LAG_SECONDS, "plugin" => plugin.clone()).set(seconds.max(0.0));
    #[expect(
        clippy::cast_precision_loss,
        reason = "a gauge is a float; row counts are far below 2^53"
    )]
    metrics::gauge!(COMPACTION_LAG_ROWS, "plugin" => plugin).set(rows.max(0) as f64);
}

/// A worker starting a job of `kind` that was created `queued` seconds ago.
pub fn job_started(kind: &'static str, queued: f64) {
    histogram!(JOB_QUEUE_AGE_SECONDS, "kind" => kind).record(queued.max(0.0));
}

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// For good: the job row says why.
    Failed,
    /// Failed this time; the queue delivers it again.
    Retried,
}

/// A job run of `kind` ended; a final outcome counts for [`Slo::JobSuccess`].
pub fn job_finished(kind: &'static str, outcome: JobOutcome) {
    let name = match outcome {
        JobOutcome::Succeeded => "succeeded",
        JobOutcome::Failed => "failed",
        JobOutcome::Retried => "retried",
    };
    counter!(JOBS, "kind" => kind, "outcome" => name).increment(1);
    match outcome {
        JobOutcome::Succeeded => Slo::JobSuccess.event(true),
        JobOutcome::Failed => Slo::JobSuccess.event(false),
        JobOutcome::Retried => {}
    }
}

/// A request refused over its caller's limit for rate `class`.
pub fn rate_limited(class: &'static str) {
    counter!(RATE_LIMITED, "class" => class).increment(1);
}

/// A window's class, the latency label: a rolling window by its name (`24h`, `7d`, …), a
/// custom one by its length (`custom-day` up to a day, `custom-month` up to 31 days,
/// `custom-year` up to 366 days, `custom-longer`); `none` where a request names no
/// window, `invalid` where it names one that is refused.
#[must_use]
pub fn window_class(rolling: Option<&'static str>, custom_seconds: Option<i64>) -> &'static str {
    const DAY: i64 = 86_400;
    match (rolling, custom_seconds) {
        (Some(name), _) => name,
        (None, Some(s)) if s <= DAY => "custom-day",
        (None, Some(s)) if s <= 31 * DAY => "custom-month",
        (None, Some(s)) if s <= 366 * DAY => "custom-year",
        (None, Some(_)) => "custom-longer",
        (None, None) => "none",
    }
}
