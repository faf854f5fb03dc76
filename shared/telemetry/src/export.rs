//! Where a process's metrics go: one exporter installed at start. The local stack keeps
//! them for a Prometheus scrape of its gateway's `/metrics`; a Lambda function writes them
//! to its log as CloudWatch Embedded Metric Format after each invocation, and CloudWatch
//! turns those lines into metrics (no API call, no agent).

use std::sync::Arc;
use std::time::Duration;

use crate::emf::EmfRecorder;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Histogram bucket bounds in seconds. The SLO thresholds (0.3 s, 2 s) are bounds, so the
/// share of good events is read exactly from the buckets.
const BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0,
];

/// The CloudWatch namespace, unless `NA_METRICS_NAMESPACE` names another.
pub const DEFAULT_NAMESPACE: &str = "NostrAnalytics";

/// Metrics kept in the process, rendered as Prometheus text on demand.
#[derive(Debug, Clone)]
pub struct Prometheus(PrometheusHandle);

impl Prometheus {
    /// Installs the process's recorder.
    ///
    /// # Errors
    /// Another recorder is installed already.
    pub fn install() -> Result<Self, String> {
        let (recorder, prometheus) = Self::build()?;
        metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
        crate::metrics::describe();
        Ok(prometheus)
    }

    /// A recorder not installed (for `metrics::with_local_recorder`), and its handle.
    ///
    /// # Errors
    /// None in practice: the builder refuses only an empty bucket list.
    pub fn build() -> Result<(PrometheusRecorder, Self), String> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .map_err(|e| e.to_string())?
            .build_recorder();
        let handle = recorder.handle();
        Ok((recorder, Prometheus(handle)))
    }

    /// The text format, version 0.0.4, of every metric recorded so far.
    #[must_use]
    pub fn render(&self) -> String {
        self.0.run_upkeep();
        self.0.render()
    }
}

/// Metrics collected over an invocation, written to the log as EMF documents by
/// [`Emf::flush`].
#[derive(Debug, Clone)]
pub struct Emf(EmfRecorder);

impl Emf {
    /// Installs the process's recorder, in `NA_METRICS_NAMESPACE` (else
    /// [`DEFAULT_NAMESPACE`]).
    ///
    /// # Errors
    /// Another recorder is installed already.
    pub fn install(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let namespace = var("NA_METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let recorder = EmfRecorder::new(namespace);
        metrics::set_global_recorder(recorder.clone()).map_err(|e| e.to_string())?;
        crate::metrics::describe();
        Ok(Emf(recorder))
    }

    /// Writes what was recorded since the last flush to `out`, each document with
    /// `requestId` (the invocation's, or the request's `x-request-id`) so a metric leads to
    /// its log lines.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub fn flush_to(&self, request_id: &str, out: impl std::io::Write) -> std::io::Result<()> {
        self.0.flush(&[("requestId", request_id)], out)
    }

    /// [`Emf::flush_to`] standard output, where Lambda's log is; a failed write is logged.
    pub fn flush(&self, request_id: &str) {
        write_or_warn(self.flush_to(request_id, std::io::stdout().lock()));
    }

    /// Flushes to standard output every `period` while an invocation runs for minutes
    /// (ingest, jobs), so the alarms' five-minute windows see its metrics as they happen,
    /// and once more when the returned guard is dropped, at the invocation's end.
    #[must_use]
    pub fn periodic(&self, request_id: &str, period: Duration) -> PeriodicFlush {
        self.periodic_to(request_id, period, || Box::new(std::io::stdout()))
    }

    /// [`Emf::periodic`], writing to what `out` opens each time.
    #[must_use]
    pub fn periodic_to(
        &self,
        request_id: &str,
        period: Duration,
        out: impl Fn() -> Box<dyn std::io::Write + Send> + Send + Sync + 'static,
    ) -> PeriodicFlush {
        let out: Arc<dyn Fn() -> Box<dyn std::io::Write + Send> + Send + Sync> = Arc::new(out);
        let (emf, id, sink) = (self.clone(), request_id.to_owned(), Arc::clone(&out));
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                write_or_warn(emf.flush_to(&id, sink()));
            }
        });
        PeriodicFlush {
            task,
            emf: self.clone(),
            request_id: request_id.to_owned(),
            out,
        }
    }
}

fn write_or_warn(written: std::io::Result<()>) {
    if let Err(e) = written {
        tracing::warn!(error = %e, "metrics not written");
    }
}

/// Flushing every period until dropped; dropping it flushes what is left.
pub struct PeriodicFlush {
    task: tokio::task::JoinHandle<()>,
    emf: Emf,
    request_id: String,
    out: Arc<dyn Fn() -> Box<dyn std::io::Write + Send> + Send + Sync>,
}

impl std::fmt::Debug for PeriodicFlush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicFlush")
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Drop for PeriodicFlush {
    fn drop(&mut self) {
        self.task.abort();
        write_or_warn(self.emf.flush_to(&self.request_id, (self.out)()));
    }
}
