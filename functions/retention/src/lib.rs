//! The retention function: keeps storage bounded without changing an answer. Minute buckets
//! older than their horizon (default 8 days) and hour buckets older than theirs (default 400
//! days, the raw horizon, so an exact window edge reads at most an hour of facts) are deleted; day buckets are kept for ever, so no day total changes. Horizons only
//! move forward and are recorded (`bucket_horizons`): compaction writes no bucket before
//! them, and a query reaching past one is answered from the coarser level. Fact-log rows
//! every compacted version has applied are deleted too, and the monthly partitions of raw
//! events and facts past the raw horizon (default 400 days) are dropped whole, and the
//! rollout's dual-run comparisons past theirs (default 30 days).

use na_storage::retention::DroppedRaw;

use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use na_storage::Db;
use na_storage::retention::Pruned;
use serde::Serialize;
use tracing::info;

/// Horizons, in days before now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    pub minute_days: u32,
    pub hour_days: u32,
    /// Raw events and facts; `None` keeps them for ever.
    pub raw_days: Option<u32>,
    /// Fact-log rows deleted per statement.
    pub log_batch: i64,
    /// The dual run's recorded comparisons (`drift_observations`).
    pub drift_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            minute_days: 8,
            hour_days: 400,
            raw_days: Some(400),
            log_batch: 50_000,
            drift_days: 30,
        }
    }
}

impl RetentionConfig {
    /// `NA_RETENTION_MINUTE_DAYS`, `NA_RETENTION_HOUR_DAYS`, `NA_RETENTION_RAW_DAYS`
    /// (`never` keeps raw data for ever) and `NA_RETENTION_DRIFT_DAYS` over the defaults.
    ///
    /// # Errors
    /// A value that is not a whole number of days, minute days beyond hour days, or raw
    /// days under 366 (a recompute must see every rolling window's facts).
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut cfg = RetentionConfig::default();
        let days = |name: &str, default: u32| -> anyhow::Result<u32> {
            match var(name) {
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}={v}: expected a whole number of days")),
                None => Ok(default),
            }
        };
        cfg.minute_days = days("NA_RETENTION_MINUTE_DAYS", cfg.minute_days)?;
        cfg.hour_days = days("NA_RETENTION_HOUR_DAYS", cfg.hour_days)?;
        cfg.drift_days = days("NA_RETENTION_DRIFT_DAYS", cfg.drift_days)?;
        cfg.raw_days = match var("NA_RETENTION_RAW_DAYS") {
            Some(v) if v.trim() == "never" => None,
            Some(_) => Some(days("NA_RETENTION_RAW_DAYS", 0)?),
            None => cfg.raw_days,
        };
        if let Some(raw) = cfg.raw_days {
            anyhow::ensure!(
                raw >= MIN_RAW_DAYS,
                "NA_RETENTION_RAW_DAYS ({raw}) must be at least {MIN_RAW_DAYS}: a new metric \
                 version is recomputed from the raw facts, and must see a 365-day window whole"
            );
        }
        anyhow::ensure!(
            cfg.minute_days <= cfg.hour_days,
            "NA_RETENTION_MINUTE_DAYS ({}) must not exceed NA_RETENTION_HOUR_DAYS ({}): \
             a window past the minute horizon is answered from hours",
            cfg.minute_days,
            cfg.hour_days
        );
        Ok(cfg)
    }

    /// The horizons at `now`: the minute horizon on an hour boundary and the hour horizon on
    /// a day boundary, so the coarser level tiles exactly what the finer one no longer has.
    pub fn horizons(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let back = |days: u32, unit: TimeDelta| {
            (now - TimeDelta::days(i64::from(days)))
                .duration_trunc(unit)
                .unwrap_or(now)
        };
        (
            back(self.minute_days, TimeDelta::hours(1)),
            back(self.hour_days, TimeDelta::days(1)),
        )
    }
}

/// The shortest raw horizon: the longest rolling window (365 days) and its edge.
pub const MIN_RAW_DAYS: u32 = 366;

/// How long a NIP-98 event id is remembered: past the clock skew either way, an event is
/// refused as stale, replayed or not.
const NIP98_IDS_KEPT: TimeDelta = TimeDelta::minutes(10);

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    pub buckets: Pruned,
    pub raw: DroppedRaw,
    pub fact_log_rows: u64,
    /// Query jobs whose result had expired.
    pub expired_jobs: u64,
    /// NIP-98 event ids forgotten (too old to be accepted again anyway).
    pub nip98_ids: u64,
    /// Rate-limit buckets forgotten (whole again: a new one starts the same).
    pub rate_limits: u64,
    /// Dual-run comparisons past their horizon.
    pub drift_observations: u64,
    pub seconds: f64,
}

/// One run at `now`, stopping fact-log pruning before `deadline`.
///
/// # Errors
/// Database errors (what was committed stays; the next run carries on).
pub async fn run(
    db: &Db,
    cfg: &RetentionConfig,
    now: DateTime<Utc>,
    deadline: Option<Instant>,
) -> anyhow::Result<RetentionReport> {
    let started = Instant::now();
    let (minute_from, hour_from) = cfg.horizons(now);
    let buckets = db.prune_buckets(minute_from, hour_from).await?;
    let raw = match cfg.raw_days {
        Some(days) => {
            db.drop_raw_partitions(now - TimeDelta::days(i64::from(days)))
                .await?
        }
        None => DroppedRaw::default(),
    };
    let mut fact_log_rows = 0;
    loop {
        let n = db.prune_fact_log(cfg.log_batch).await?;
        fact_log_rows += n;
        let out_of_time = deadline.is_some_and(|d| Instant::now() + Duration::from_secs(10) >= d);
        if (n as i64) < cfg.log_batch || out_of_time {
            break;
        }
    }
    let expired_jobs = db.delete_expired_jobs(now).await?;
    let nip98_ids = db.sweep_nip98_seen(now - NIP98_IDS_KEPT).await?;
    let rate_limits = db.sweep_rate_limits(now).await?;
    let drift_observations = db
        .prune_observations(now - TimeDelta::days(i64::from(cfg.drift_days)))
        .await?;
    let report = RetentionReport {
        buckets,
        raw,
        fact_log_rows,
        expired_jobs,
        nip98_ids,
        rate_limits,
        drift_observations,
        seconds: started.elapsed().as_secs_f64(),
    };
    info!(?report, "retention run");
    Ok(report)
}
