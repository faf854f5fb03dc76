//! The compactor: batches of the fact log, through each plugin version being compacted, into
//! buckets, with the version's new position in the same transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use na_domain::Granularity;
use na_plugin_host::PluginHost;
use na_storage::Db;
use na_storage::compaction_state::VersionPosition;
use na_storage::facts::FactRow;
use na_storage::{buckets, compaction_state, fact_log};
use serde::Serialize;
use tracing::{info, warn};

use crate::CompactionError;
use crate::aggregate::Aggregate;
use na_domain::granularity::Horizons;
use na_plugin_registry::{FactMapper, PluginSet};

/// Batch sizes and the quarantine threshold.
#[derive(Debug, Clone)]
pub struct CompactorConfig {
    /// Log rows per version per transaction: bounds a transaction's time and memory.
    pub batch_rows: i64,
    /// A version whose plugin fails this many batches in a row is quarantined.
    pub quarantine_after: i32,
    /// Aborts the process at this step of a batch (`read`, `mapped`, `written`, `advanced`,
    /// `committed`, `recompute-step`): how the crash tests kill the compactor between any
    /// two steps. `None` in production.
    pub crash_at: Option<String>,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            batch_rows: 20_000,
            quarantine_after: 3,
            crash_at: None,
        }
    }
}

impl CompactorConfig {
    /// `NA_COMPACTOR_BATCH_ROWS`, `NA_COMPACTOR_QUARANTINE_AFTER` and `NA_COMPACTOR_CRASH_AT`
    /// over the defaults.
    ///
    /// # Errors
    /// A setting that is not a positive number.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, CompactionError> {
        fn positive<T: std::str::FromStr + PartialOrd + Default>(
            var: &dyn Fn(&str) -> Option<String>,
            name: &str,
            default: T,
        ) -> Result<T, CompactionError> {
            match var(name) {
                Some(v) => v.parse().ok().filter(|n| *n > T::default()).ok_or_else(|| {
                    CompactionError::Refused(format!("{name}={v}: not a positive number"))
                }),
                None => Ok(default),
            }
        }
        let d = CompactorConfig::default();
        Ok(CompactorConfig {
            batch_rows: positive(var, "NA_COMPACTOR_BATCH_ROWS", d.batch_rows)?,
            quarantine_after: positive(var, "NA_COMPACTOR_QUARANTINE_AFTER", d.quarantine_after)?,
            crash_at: var("NA_COMPACTOR_CRASH_AT"),
        })
    }

    /// Aborts the process when `step` is [`CompactorConfig::crash_at`].
    pub(crate) fn crash_point(&self, step: &str) {
        if self.crash_at.as_deref() == Some(step) {
            eprintln!("NA_COMPACTOR_CRASH_AT={step}: aborting");
            std::process::abort();
        }
    }
}

/// The component name compaction reports its health under.
pub const COMPONENT: &str = "compaction";

/// What one version did in a batch.
#[derive(Debug, Clone, Serialize)]
pub struct VersionBatch {
    pub plugin: String,
    pub rows: usize,
    pub contributions: u64,
    /// Time spent in the plugin (mapping facts to contributions).
    pub plugin_seconds: f64,
    /// The plugin failed: its position did not move.
    pub error: Option<String>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchReport {
    /// Another compactor held the lease: nothing was done.
    pub busy: bool,
    /// Log rows are waiting for an older transaction to finish before they can be taken.
    pub waiting: bool,
    pub versions: Vec<VersionBatch>,
}

impl BatchReport {
    /// Every version took what was left (or failed), and nothing waits.
    fn caught_up(&self, batch_rows: i64) -> bool {
        !self.busy
            && !self.waiting
            && self
                .versions
                .iter()
                .all(|v| v.error.is_some() || (v.rows as i64) < batch_rows)
    }

    fn rows(&self) -> usize {
        self.versions.iter().map(|v| v.rows).sum()
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub batches: u32,
    pub rows: u64,
    pub contributions: u64,
    pub busy: bool,
    /// Time spent in plugins.
    pub plugin_seconds: f64,
    /// Nothing is left to apply. False when the run ran out of time, another compactor
    /// held the lease, or rows wait for an older transaction (the next run takes them).
    pub caught_up: bool,
    pub failures: Vec<String>,
    pub lag: Vec<compaction_state::Lag>,
    pub seconds: f64,
}

/// Runs compaction. One per process: it keeps loaded plugins between batches.
pub struct Compactor {
    db: Db,
    config: CompactorConfig,
    plugins: PluginSet,
}

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Compactor {
    pub fn new(db: Db, host: Arc<PluginHost>, config: CompactorConfig) -> Self {
        Compactor {
            plugins: PluginSet::new(host),
            db,
            config,
        }
    }

    pub fn config(&self) -> &CompactorConfig {
        &self.config
    }

    /// The host plugins run in (share it: one engine per process).
    pub fn host(&self) -> &Arc<PluginHost> {
        self.plugins.host()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The plugin versions it has loaded (and their overrides).
    pub fn plugins(&self) -> &PluginSet {
        &self.plugins
    }

    /// Runs `name@version` with `mapper` instead of its published component.
    pub fn use_mapper(&self, name: &str, version: i32, mapper: Arc<dyn FactMapper>) {
        self.plugins.use_mapper(name, version, mapper);
    }

    /// One transaction: the next batch of every version being compacted.
    ///
    /// # Errors
    /// Database failures (nothing of the batch is applied). A plugin's failure is not an
    /// error: it is reported for its version, whose position stays.
    #[tracing::instrument(skip_all)]
    pub async fn run_batch(&self) -> Result<BatchReport, CompactionError> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        if !compaction_state::try_lease(&tx).await? {
            return Ok(BatchReport {
                busy: true,
                waiting: false,
                versions: Vec::new(),
            });
        }
        crate::months::roll_up_pending(&tx).await?;
        let safe = fact_log::safe_txid(&tx).await?;
        let horizons = Horizons::from_stored(&buckets::horizons(&*tx).await?);
        let mut report = BatchReport::default();
        for position in compaction_state::positions(&tx).await? {
            let id = format!("{}@{}", position.plugin_name, position.plugin_version);
            let rows = fact_log::read_log(&tx, &position, safe, self.config.batch_rows).await?;
            if (rows.len() as i64) < self.config.batch_rows
                && fact_log::rows_waiting(&tx, &position, safe).await?
            {
                report.waiting = true;
            }
            if rows.is_empty() {
                report.versions.push(VersionBatch {
                    plugin: id,
                    rows: 0,
                    contributions: 0,
                    plugin_seconds: 0.0,
                    error: None,
                });
                continue;
            }
            self.config.crash_point("read");
            match self.fold(&tx, &position, &rows, &horizons).await {
                Ok((aggregate, plugin_seconds)) => {
                    self.config.crash_point("mapped");
                    write(&tx, &aggregate).await?;
                    self.config.crash_point("written");
                    let last = rows.last().map_or((0, 0), |r| (r.txid, r.id));
                    compaction_state::advance(
                        &tx,
                        &position.plugin_name,
                        position.plugin_version,
                        last,
                        rows.len() as i64,
                    )
                    .await?;
                    self.config.crash_point("advanced");
                    report.versions.push(VersionBatch {
                        plugin: id,
                        rows: rows.len(),
                        contributions: aggregate.contributions,
                        plugin_seconds,
                        error: None,
                    });
                }
                Err(CompactionError::Plugin(e)) => {
                    warn!(plugin = %id, error = %e, "plugin failed; its position stays");
                    let message = e.to_string();
                    let quarantined = compaction_state::record_failure(
                        &*tx,
                        &position.plugin_name,
                        position.plugin_version,
                        &message,
                        self.config.quarantine_after,
                    )
                    .await?;
                    if quarantined {
                        warn!(
                            plugin = %id,
                            failures = self.config.quarantine_after,
                            "plugin quarantined: compaction stops running it until it is released or retired"
                        );
                    }
                    report.versions.push(VersionBatch {
                        plugin: id,
                        rows: 0,
                        contributions: 0,
                        plugin_seconds: 0.0,
                        error: Some(message),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        self.config.crash_point("committed");
        Ok(report)
    }

    /// Maps a batch of log rows through a version: additions and retractions apart.
    async fn fold(
        &self,
        tx: &na_storage::Transaction<'_>,
        position: &VersionPosition,
        rows: &[FactRow],
        horizons: &Horizons,
    ) -> Result<(Aggregate, f64), CompactionError> {
        let loaded = self
            .plugins
            .load(
                &**tx,
                &position.plugin_name,
                position.plugin_version,
                Some(&position.content_hash),
            )
            .await?;
        let mut aggregate = Aggregate::default();
        let mut plugin_seconds = 0.0;
        for sign in [1i16, -1] {
            let facts = loaded.facts(rows, sign);
            if facts.is_empty() {
                continue;
            }
            let mapping = Instant::now();
            let contributions = loaded.map(&facts).map_err(CompactionError::Plugin)?;
            plugin_seconds += mapping.elapsed().as_secs_f64();
            aggregate.add(&loaded.series, horizons, i64::from(sign), &contributions);
        }
        Ok((aggregate, plugin_seconds))
    }

    /// Batches until caught up, out of time (`deadline`), or another compactor holds the
    /// lease; the outcome is reported as the `compaction` component's health.
    ///
    /// # Errors
    /// As [`Compactor::run_batch`].
    pub async fn run(&self, deadline: Option<Instant>) -> Result<RunReport, CompactionError> {
        let run = self.run_batches(deadline).await;
        let error = run.as_ref().err().map(ToString::to_string);
        if let Err(e) = self.db.report_health(COMPONENT, error.as_deref()).await {
            warn!(error = %e, "could not record compaction health");
        }
        run
    }

    async fn run_batches(&self, deadline: Option<Instant>) -> Result<RunReport, CompactionError> {
        let started = Instant::now();
        let mut run = RunReport::default();
        // A batch takes seconds at most; stop early enough to commit the last one.
        let margin = Duration::from_secs(10);
        loop {
            let batch = self.run_batch().await?;
            run.batches += 1;
            run.busy = batch.busy;
            for v in &batch.versions {
                run.rows += v.rows as u64;
                run.contributions += v.contributions;
                run.plugin_seconds += v.plugin_seconds;
                if let Some(e) = &v.error
                    && !run.failures.contains(e)
                {
                    run.failures.push(e.clone());
                }
            }
            run.caught_up = batch.caught_up(self.config.batch_rows);
            // Rows wait for an older transaction and nothing else moved: the next run.
            let stalled = batch.waiting && batch.rows() == 0;
            if batch.busy
                || run.caught_up
                || stalled
                || deadline.is_some_and(|d| Instant::now() + margin >= d)
            {
                break;
            }
        }
        let conn = self.db.conn().await?;
        run.lag = compaction_state::lag(&**conn).await?;
        for l in &run.lag {
            na_telemetry::metrics::compaction_lag(&l.plugin, l.rows, l.seconds);
        }
        run.seconds = started.elapsed().as_secs_f64();
        info!(
            batches = run.batches,
            rows = run.rows,
            contributions = run.contributions,
            caught_up = run.caught_up,
            busy = run.busy,
            "compaction run"
        );
        Ok(run)
    }

    /// Runs until nothing is left to apply, for callers that need every committed row in
    /// buckets (tests, benchmarks): rows an older transaction holds back (txids are
    /// server-wide) are waited for, up to `patience`. The report adds up the runs; its
    /// `caught_up` says whether it got there in time.
    ///
    /// # Errors
    /// As [`Compactor::run`].
    pub async fn catch_up(&self, patience: Duration) -> Result<RunReport, CompactionError> {
        let started = Instant::now();
        let mut total = RunReport::default();
        loop {
            let run = self.run(None).await?;
            total.batches += run.batches;
            total.rows += run.rows;
            total.contributions += run.contributions;
            total.plugin_seconds += run.plugin_seconds;
            total.failures.extend(run.failures);
            total.busy = run.busy;
            total.caught_up = run.caught_up;
            total.lag = run.lag;
            total.seconds = started.elapsed().as_secs_f64();
            if total.caught_up || started.elapsed() >= patience {
                return Ok(total);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Writes an aggregate's bucket and gauge changes.
pub(crate) async fn write(
    tx: &na_storage::Transaction<'_>,
    aggregate: &Aggregate,
) -> Result<(), CompactionError> {
    for g in Granularity::ALL {
        buckets::apply_changes(tx, g, &aggregate.changes(g)).await?;
        let keys = aggregate.distinct_keys(g);
        if !keys.is_empty() {
            let stored = buckets::lock_distinct(tx, g, &keys).await?;
            let rows = aggregate.merged_distinct(g, &keys, stored)?;
            buckets::store_distinct(tx, g, &rows).await?;
        }
    }
    buckets::add_gauge_levels(tx, &aggregate.gauge_changes()).await?;
    Ok(())
}
