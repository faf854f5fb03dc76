//! Answers: summaries, time series and breakdowns, each read in one snapshot: the whole
//! buckets of a window, the live delta over them, and the stored facts of the parts at
//! its edges that no kept bucket covers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use na_api_types::{
    Answer, Backfill, Breakdown, BreakdownRow, Completeness, MetricRef, MetricSeries, MetricValue,
    PluginWatermark, Point, Summary, TimeSeries,
};
use na_domain::granularity::Horizons;
use na_domain::{BucketRange, Granularity, TimeRange};
use na_metrics_abi::{Aggregation, Contribution};
use na_plugin_host::PluginHost;
use na_plugin_registry::PluginSet;
use na_storage::buckets::{Group, GroupBy};
use na_storage::plugins::CatalogMetric;
use na_storage::{Db, Transaction};
use na_storage::{buckets, compaction_state, fact_log, jobs, plugins, retention};

use crate::QueryError;
use crate::failures::Failures;
use crate::merge::{Acc, FromFacts, aggregation};
use crate::selection::{select_metrics, select_one};
use crate::window::{
    Plan, Retained, WindowRequest, resolve, resolve_series, tile_after, time, union,
};

/// A set of series ids, shared.
pub(crate) type SeriesSet = Arc<HashSet<i32>>;

/// Runs queries; one per process (it keeps plugin versions loaded for the live delta).
pub struct Engine {
    db: Db,
    plugins: PluginSet,
    /// Per plugin version, the series a note drilldown shows by default (versions are
    /// immutable, so this is found once).
    pub(crate) note_series: Mutex<HashMap<(String, i32), SeriesSet>>,
    /// The most points a time series answers.
    pub max_points: i64,
    /// Up to how many contributions a distinct count is counted exactly from the window's
    /// facts rather than estimated from bucket sketches.
    pub exact_distinct: ExactDistinct,
    /// The longest any one statement of an answer may run (a request's is short; a job's
    /// may be long).
    pub statement_timeout: std::time::Duration,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("max_points", &self.max_points)
            .finish_non_exhaustive()
    }
}

/// The default cap on time series points (a week of minutes is 10,080).
pub const MAX_POINTS: i64 = 10_080;

/// Up to how many contributions (about as many facts to read and map) a distinct count is
/// counted exactly from the window's facts: for an answer given at once, within the summary
/// latency target (reading and mapping costs about 3 µs a fact; BENCHMARKS.md), and for
/// one computed as a job, which may take seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactDistinct {
    pub at_once: i64,
    pub as_job: i64,
}

impl ExactDistinct {
    /// `NA_QUERY_EXACT_DISTINCT_ROWS` (answers at once) and `NA_JOB_EXACT_DISTINCT_ROWS` (jobs).
    pub const DEFAULT: ExactDistinct = ExactDistinct {
        at_once: 500,
        as_job: 1_000_000,
    };

    /// `NA_QUERY_EXACT_DISTINCT_ROWS` and `NA_JOB_EXACT_DISTINCT_ROWS`, else the defaults:
    /// the query and jobs functions answer alike.
    ///
    /// # Errors
    /// A value that is not a non-negative number, naming the variable.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let read = |name: &str, default: i64| match var(name) {
            Some(v) => v
                .parse::<u32>()
                .map(i64::from)
                .map_err(|_| format!("{name}={v}: not a non-negative number")),
            None => Ok(default),
        };
        Ok(ExactDistinct {
            at_once: read("NA_QUERY_EXACT_DISTINCT_ROWS", Self::DEFAULT.at_once)?,
            as_job: read("NA_JOB_EXACT_DISTINCT_ROWS", Self::DEFAULT.as_job)?,
        })
    }

    /// The limit for an answer with this budget (`None`: a job's).
    pub fn limit(&self, budget: Option<u64>) -> i64 {
        if budget.is_some() {
            self.at_once
        } else {
            self.as_job
        }
    }
}

impl Default for ExactDistinct {
    fn default() -> Self {
        ExactDistinct::DEFAULT
    }
}

/// The default of [`Engine::statement_timeout`]: under a synchronous request's time limit.
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A summary: one value per metric over a window.
#[derive(Debug, Clone)]
pub struct SummaryRequest {
    pub subject: [u8; 32],
    pub window: WindowRequest,
    /// `name` or `name@version`, comma-separated; `None`: every active metric.
    pub metrics: Option<String>,
    /// The instant a rolling window ends at (Unix seconds).
    pub now: i64,
    /// The most a synchronous answer may cost ([`QueryError::TooCostly`] beyond); `None`
    /// for no limit (a job).
    pub budget: Option<u64>,
}

/// A time series: each metric at every bucket of `granularity` in the window.
#[derive(Debug, Clone)]
pub struct SeriesRequest {
    pub subject: [u8; 32],
    pub window: WindowRequest,
    pub metrics: Option<String>,
    pub granularity: Granularity,
    pub now: i64,
    pub budget: Option<u64>,
}

/// One metric over a window, split by the values of one of its dimensions.
#[derive(Debug, Clone)]
pub struct BreakdownRequest {
    pub subject: [u8; 32],
    pub window: WindowRequest,
    pub metric: String,
    pub dimension: String,
    pub top: usize,
    pub now: i64,
    pub budget: Option<u64>,
}

/// A metric's identity, as answers name it.
pub(crate) fn metric_ref(m: &CatalogMetric) -> MetricRef {
    MetricRef {
        id: m.id(),
        metric: m.metric.clone(),
        version: m.version,
        plugin: m.plugin_id(),
        aggregation: m.aggregation.clone(),
        unit: m.unit.clone(),
    }
}

/// The live delta of the chosen metrics: contributions to the subject, with their sign.
struct Delta {
    by_series: HashMap<i32, Vec<(i64, Contribution)>>,
    watermarks: Vec<PluginWatermark>,
}

impl Delta {
    /// The delta's contributions to `series` that fall in `[from, to)` outside the parts
    /// read from facts (the facts already hold them).
    fn over<'a>(
        &'a self,
        series: i32,
        (from, to): (i64, i64),
        plan: &'a Plan,
    ) -> impl Iterator<Item = &'a (i64, Contribution)> + 'a {
        self.by_series
            .get(&series)
            .into_iter()
            .flatten()
            .filter(move |(_, c)| (from..to).contains(&c.at) && !plan.in_facts(c.at))
    }
}

/// The contributions of `edge` to `series` in the parts of `plan` read from facts.
fn edge_over<'a>(
    edge: &'a FromFacts,
    series: i32,
    plan: &'a Plan,
) -> impl Iterator<Item = &'a Contribution> + 'a {
    edge.get(&series)
        .into_iter()
        .flatten()
        .filter(move |c| plan.in_facts(c.at))
}

impl Engine {
    pub fn new(db: Db, host: Arc<PluginHost>) -> Self {
        Engine {
            plugins: PluginSet::new(host),
            db,
            note_series: Mutex::default(),
            max_points: MAX_POINTS,
            exact_distinct: ExactDistinct::DEFAULT,
            statement_timeout: STATEMENT_TIMEOUT,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn plugins(&self) -> &PluginSet {
        &self.plugins
    }

    /// Every metric version with its plugin and state.
    ///
    /// # Errors
    /// Database errors.
    pub async fn catalog(&self) -> Result<Vec<CatalogMetric>, QueryError> {
        let conn = self.db.conn().await?;
        Ok(plugins::catalog(&conn).await?)
    }

    /// Reads the subject's contributions from the log rows compaction has not applied, for
    /// every plugin version behind `metrics`. A version whose plugin fails is recorded in
    /// `failed`, and the others carry on.
    async fn delta(
        &self,
        tx: &Transaction<'_>,
        metrics: &[CatalogMetric],
        subject: &[u8; 32],
        mut cost: Cost,
        failed: &mut Failures,
    ) -> Result<Delta, QueryError> {
        let versions = plugin_versions(metrics);
        let wanted: Vec<i32> = metrics.iter().map(|m| m.series).collect();
        let mut delta = Delta {
            by_series: HashMap::new(),
            watermarks: Vec::new(),
        };
        for (name, version) in versions {
            let Some((position, compacted_at)) =
                compaction_state::position(tx, name, version).await?
            else {
                return Err(QueryError::NotQueryable(format!(
                    "{name}@{version} has no buckets yet: its recompute has not finished \
                     (POST /api/v2/admin/plugins/{name}/{version}/recompute)"
                )));
            };
            if let Some(budget) = cost.budget {
                let cap = budget.saturating_sub(cost.estimate) + 1;
                cost.estimate += fact_log::unapplied_count(tx, &position, cap as i64).await? as u64;
                if cost.estimate > budget {
                    return Err(QueryError::TooCostly {
                        estimate: cost.estimate,
                        budget,
                    });
                }
            }
            if let Some((since, why)) = &position.quarantined {
                failed.record(
                    name,
                    version,
                    &format!(
                        "quarantined since {since}: its plugin failed compaction batch after batch \
                         (last: {why}); an operator releases it (POST /api/v2/admin/plugins/{name}/{version}/release) or retires it"
                    ),
                );
            }
            let rows = if failed.has(name, version) {
                Vec::new()
            } else {
                let loaded = self
                    .plugins
                    .load(&**tx, name, version, Some(&position.content_hash))
                    .await?;
                let classes: Vec<i16> = loaded.classes.iter().map(|c| *c as i16).collect();
                let rows = fact_log::unapplied_rows(tx, &position, subject, &classes).await?;
                let mut mapped = Vec::new();
                for sign in [1i16, -1] {
                    match loaded.map(&loaded.facts(&rows, sign)) {
                        Ok(contributions) => mapped.push((sign, contributions)),
                        Err(e) => {
                            failed.record(name, version, &e);
                            mapped.clear();
                            break;
                        }
                    }
                }
                for (sign, contributions) in mapped {
                    for c in contributions.iter() {
                        if c.subject != subject {
                            continue;
                        }
                        if let Some((series, _)) = loaded.series.get(c.metric)
                            && wanted.contains(&series)
                        {
                            delta
                                .by_series
                                .entry(series)
                                .or_default()
                                .push((i64::from(sign), c.to_owned()));
                        }
                    }
                }
                rows
            };
            delta.watermarks.push(PluginWatermark {
                plugin: format!("{name}@{version}"),
                compacted_at,
                applied_rows: position.applied_rows,
                delta_rows: rows.len(),
                facts_from: position.facts_from,
            });
        }
        Ok(delta)
    }

    /// The snapshot, the catalog, the chosen metrics and what retention kept.
    pub(crate) async fn begin<'c>(
        &self,
        conn: &'c mut na_storage::Object,
    ) -> Result<(Transaction<'c>, Vec<CatalogMetric>, Retained), QueryError> {
        let tx = na_storage::snapshot(conn, self.statement_timeout).await?;
        // Sent together: the connection pipelines them.
        let (catalog, horizons, months, raw_from) = tokio::try_join!(
            plugins::catalog(&tx),
            buckets::horizons(&*tx),
            compaction_state::months_ready(&tx),
            retention::raw_from(&*tx),
        )?;
        let kept = Retained::new(
            Horizons::from_stored(&horizons),
            months,
            raw_from.map(|r| r.timestamp()),
        );
        Ok((tx, catalog, kept))
    }

    /// `from`: where the answered window starts.
    pub(crate) async fn answer(
        &self,
        tx: &Transaction<'_>,
        subject: &[u8; 32],
        (from, now): (i64, i64),
        watermarks: Vec<PluginWatermark>,
        exact: bool,
    ) -> Result<Answer, QueryError> {
        let pubkey = hex(subject);
        let (job, replayed_to) = tokio::try_join!(
            jobs::latest_backfill(tx, &pubkey),
            na_storage::replayed_to(tx),
        )?;
        let missing_before = watermarks
            .iter()
            .filter_map(|w| w.facts_from)
            .filter(|f| f.timestamp() > from)
            .max();
        Ok(Answer {
            as_of: time(now),
            replayed_to,
            watermarks,
            completeness: Completeness {
                backfill: job.as_ref().map_or(Backfill::Never, |j| match j.state {
                    jobs::JobState::Queued => Backfill::Queued,
                    jobs::JobState::Running => Backfill::Running,
                    jobs::JobState::Succeeded => Backfill::Succeeded,
                    jobs::JobState::Failed => Backfill::Failed,
                }),
                backfill_job: job.as_ref().map(|j| j.id),
                backfill_progress: job.map(|j| j.progress),
                exact,
                missing_before,
            },
        })
    }

    /// [`Engine::answer`] for one read whole from the stored facts (a note's drilldown, a
    /// list of engagers): no watermarks, and facts past the raw horizon said missing.
    pub(crate) async fn answer_from_facts(
        &self,
        tx: &Transaction<'_>,
        subject: &[u8; 32],
        (from, now): (i64, i64),
        exact: bool,
    ) -> Result<Answer, QueryError> {
        let mut answer = self
            .answer(tx, subject, (from, now), Vec::new(), exact)
            .await?;
        answer.completeness.missing_before = retention::raw_from(&**tx)
            .await?
            .filter(|r| r.timestamp() > from);
        Ok(answer)
    }

    /// Levels of the gauge `series` just before `at`: the level compaction reached, minus
    /// every change it applied from the finest bucket holding `at` on, plus the live delta
    /// before that bucket, plus the changes in that bucket up to `at`, from `edge` (which
    /// must hold the facts of `[kept.level_base(at), at)`).
    #[allow(clippy::too_many_arguments, reason = "one read, its inputs named")]
    async fn gauges_at(
        &self,
        tx: &Transaction<'_>,
        series: &[i32],
        subject: &[u8; 32],
        at: i64,
        delta: &Delta,
        edge: &FromFacts,
        kept: &Retained,
    ) -> Result<HashMap<i32, i64>, QueryError> {
        let mut out: HashMap<i32, i64> = series.iter().map(|s| (*s, 0)).collect();
        if series.is_empty() {
            return Ok(out);
        }
        let base = kept.level_base(at);
        for (s, level) in buckets::gauge_levels(tx, series, subject).await? {
            *out.entry(s).or_default() += level;
        }
        for t in buckets::totals(
            tx,
            series,
            subject,
            &tile_after(base, kept),
            &GroupBy::Nothing,
        )
        .await?
        {
            *out.entry(t.series).or_default() -= t.sum;
        }
        for s in series {
            for (sign, c) in delta.by_series.get(s).into_iter().flatten() {
                if c.at < base {
                    *out.entry(*s).or_default() += sign * c.value;
                }
            }
            for c in edge.get(s).into_iter().flatten() {
                if (base..at).contains(&c.at) {
                    *out.entry(*s).or_default() += c.value;
                }
            }
        }
        Ok(out)
    }

    /// The ranges to read from facts: the plan's, and the part of the finest bucket before
    /// `to` when gauges need their level there.
    fn edge_ranges(plan: &Plan, to: i64, gauges: bool, kept: &Retained) -> Vec<TimeRange> {
        let base = kept.level_base(to);
        let gauge = (gauges && base < to).then_some(TimeRange { from: base, to });
        union(plan.facts.iter().copied().chain(gauge))
    }

    /// # Errors
    /// [`QueryError::BadRequest`] for a bad window or metric; [`QueryError::NotQueryable`]
    /// for a version without buckets; database failures. A failing plugin version fails
    /// only its own metrics (their `error`).
    #[tracing::instrument(skip_all, fields(subject = %hex::encode(req.subject), metrics = req.metrics.as_deref()))]
    pub async fn summary(&self, req: &SummaryRequest) -> Result<Summary, QueryError> {
        let mut conn = self.db.conn().await?;
        let (snapshot, catalog, kept) = self.begin(&mut conn).await?;
        let summary = self.summary_in(&snapshot, &catalog, &kept, req).await?;
        snapshot.commit().await?;
        Ok(summary)
    }

    /// [`Engine::summary`] in the snapshot `tx` (which [`Engine::begin`] opened).
    pub(crate) async fn summary_in(
        &self,
        tx: &Transaction<'_>,
        catalog: &[CatalogMetric],
        kept: &Retained,
        req: &SummaryRequest,
    ) -> Result<Summary, QueryError> {
        let metrics = select_metrics(catalog, req.metrics.as_deref())?;
        let window = resolve(&req.window, req.now, kept)?;
        let (from, to) = window.bounds();
        let plan = Plan::of(&window);
        let cost = Cost::of(
            req.budget,
            bucket_count(&window.tiles) * metrics.len() as u64,
        )?;
        let mut failed = Failures::default();
        let delta = self
            .delta(tx, &metrics, &req.subject, cost, &mut failed)
            .await?;
        let (additive, distinct, gauges) = split(&metrics);
        let ranges = Self::edge_ranges(&plan, to, !gauges.is_empty(), kept);
        let edge = self
            .map_facts(tx, &metrics, &req.subject, &ranges, &mut failed)
            .await?;
        // Sent together: the connection pipelines them, so their round trips overlap.
        let (totals, sketches, levels) = tokio::try_join!(
            async {
                let t = &window.tiles;
                Ok::<_, QueryError>(
                    buckets::totals(tx, &additive, &req.subject, t, &GroupBy::Nothing).await?,
                )
            },
            async {
                let t = &window.tiles;
                Ok(buckets::sketches(tx, &distinct, &req.subject, t, &GroupBy::Nothing).await?)
            },
            self.gauges_at(tx, &gauges, &req.subject, to, &delta, &edge, kept),
        )?;
        let mut accs: HashMap<(i32, ()), Acc> = HashMap::new();
        for t in &totals {
            accs.entry((t.series, ())).or_default().add_totals(t);
        }
        for s in &sketches {
            accs.entry((s.series, ())).or_default().add_sketch(s)?;
        }
        for m in &metrics {
            let agg = aggregation(&m.aggregation);
            let acc = accs.entry((m.series, ())).or_default();
            for (sign, c) in delta.over(m.series, (from, to), &plan) {
                acc.add_delta(agg, *sign, c);
            }
            for c in edge_over(&edge, m.series, &plan) {
                acc.add_contribution(agg, 1, c);
            }
        }
        self.count_exactly(
            tx,
            &metrics,
            &req.subject,
            &window,
            &mut accs,
            |_| (),
            &mut failed,
            self.exact_distinct.limit(req.budget),
        )
        .await?;
        let mut values = Vec::with_capacity(metrics.len());
        for m in &metrics {
            let agg = aggregation(&m.aggregation);
            let acc = accs.entry((m.series, ())).or_default();
            let v = acc.value(agg);
            let error = failed.of(m);
            values.push(MetricValue {
                metric: metric_ref(m),
                value: match (&error, agg) {
                    (Some(_), _) => None,
                    (None, Aggregation::Gauge) => levels.get(&m.series).copied(),
                    (None, _) => v.value,
                },
                exact: v.exact && error.is_none(),
                relative_error: v.relative_error,
                delta_contributions: acc.delta,
                error,
            });
        }
        let exact = values.iter().all(|v| v.exact);
        let answer = self
            .answer(tx, &req.subject, (from, req.now), delta.watermarks, exact)
            .await?;
        Ok(Summary {
            pubkey: hex(&req.subject),
            window,
            metrics: values,
            answer,
        })
    }

    /// # Errors
    /// As [`Engine::summary`]; too many points.
    #[tracing::instrument(skip_all, fields(subject = %hex::encode(req.subject), metrics = req.metrics.as_deref(), granularity = ?req.granularity))]
    pub async fn timeseries(&self, req: &SeriesRequest) -> Result<TimeSeries, QueryError> {
        let mut conn = self.db.conn().await?;
        let (snapshot, catalog, kept) = self.begin(&mut conn).await?;
        let tx = &snapshot;
        let metrics = select_metrics(&catalog, req.metrics.as_deref())?;
        let window = resolve_series(
            &req.window,
            req.granularity,
            req.now,
            &kept,
            self.max_points,
        )?;
        let (from, to) = window.bounds();
        let g = req.granularity;
        let plan = Plan::of(&window.resolved);
        let cost = Cost::of(
            req.budget,
            (window.points as u64 + bucket_count_beyond(&window.resolved.tiles, g))
                * metrics.len() as u64,
        )?;
        let mut failed = Failures::default();
        let delta = self
            .delta(tx, &metrics, &req.subject, cost, &mut failed)
            .await?;
        let (mut additive, distinct, gauges) = split(&metrics);
        let ranges = Self::edge_ranges(&plan, to, !gauges.is_empty(), &kept);
        let edge = self
            .map_facts(tx, &metrics, &req.subject, &ranges, &mut failed)
            .await?;
        // A gauge's points are its level at each point's end: its changes per point,
        // walked back from the level at the window's end.
        additive.extend(&gauges);
        // Finer buckets inside the edge points fold into their point.
        let mut accs: HashMap<(i32, i64), Acc> = HashMap::new();
        let tiles = &window.resolved.tiles;
        for t in buckets::totals(tx, &additive, &req.subject, tiles, &GroupBy::Bucket).await? {
            if let Group::Bucket(b) = t.group {
                accs.entry((t.series, g.bucket(b)))
                    .or_default()
                    .add_totals(&t);
            }
        }
        for s in buckets::sketches(tx, &distinct, &req.subject, tiles, &GroupBy::Bucket).await? {
            if let Group::Bucket(b) = s.group {
                accs.entry((s.series, g.bucket(b)))
                    .or_default()
                    .add_sketch(&s)?;
            }
        }
        let levels = self
            .gauges_at(tx, &gauges, &req.subject, to, &delta, &edge, &kept)
            .await?;
        for m in &metrics {
            let agg = aggregation(&m.aggregation);
            for (sign, c) in delta.over(m.series, (from, to), &plan) {
                accs.entry((m.series, g.bucket(c.at)))
                    .or_default()
                    .add_delta(agg, *sign, c);
            }
            for c in edge_over(&edge, m.series, &plan) {
                accs.entry((m.series, g.bucket(c.at)))
                    .or_default()
                    .add_contribution(agg, 1, c);
            }
        }
        self.count_exactly(
            tx,
            &metrics,
            &req.subject,
            &window.resolved,
            &mut accs,
            |c| g.bucket(c.at),
            &mut failed,
            self.exact_distinct.limit(req.budget),
        )
        .await?;
        let mut series = Vec::with_capacity(metrics.len());
        for m in &metrics {
            let error = failed.of(m);
            if error.is_some() {
                series.push(MetricSeries {
                    metric: metric_ref(m),
                    points: Vec::new(),
                    error,
                });
                continue;
            }
            let agg = aggregation(&m.aggregation);
            let empty = Acc::default();
            let mut points: Vec<Point> = window
                .starts()
                .map(|at| {
                    let v = accs.get(&(m.series, at)).unwrap_or(&empty).value(agg);
                    Point {
                        at: time(at),
                        value: v.value,
                        exact: v.exact,
                        relative_error: v.relative_error,
                    }
                })
                .collect();
            if agg == Aggregation::Gauge {
                let mut level = levels.get(&m.series).copied().unwrap_or_default();
                for p in points.iter_mut().rev() {
                    let change = accs.get(&(m.series, p.at.timestamp())).map_or(0, Acc::sum);
                    p.value = Some(level);
                    level -= change;
                }
            }
            series.push(MetricSeries {
                metric: metric_ref(m),
                points,
                error: None,
            });
        }
        let exact = series
            .iter()
            .all(|s| s.error.is_none() && s.points.iter().all(|p| p.exact));
        let answer = self
            .answer(tx, &req.subject, (from, req.now), delta.watermarks, exact)
            .await?;
        snapshot.commit().await?;
        Ok(TimeSeries {
            pubkey: hex(&req.subject),
            window,
            series,
            answer,
        })
    }

    /// # Errors
    /// As [`Engine::summary`]; a dimension the metric does not have; a gauge;
    /// [`QueryError::MetricFailed`] when the metric's plugin version fails.
    #[tracing::instrument(skip_all, fields(subject = %hex::encode(req.subject), metric = %req.metric, dimension = %req.dimension))]
    pub async fn breakdown(&self, req: &BreakdownRequest) -> Result<Breakdown, QueryError> {
        let mut conn = self.db.conn().await?;
        let (snapshot, catalog, kept) = self.begin(&mut conn).await?;
        let tx = &snapshot;
        let m = &select_one(&catalog, &req.metric, "a breakdown is of")?;
        let agg = aggregation(&m.aggregation);
        if agg == Aggregation::Gauge {
            return Err(QueryError::bad(format!(
                "{} is a gauge (a level, not a sum of contributions): it has no breakdown",
                m.id()
            )));
        }
        if !m.dimensions.contains(&req.dimension) {
            return Err(QueryError::bad(format!(
                "{} has no dimension {:?}; its dimensions: [{}]",
                m.id(),
                req.dimension,
                m.dimensions.join(", ")
            )));
        }
        let window = resolve(&req.window, req.now, &kept)?;
        let (from, to) = window.bounds();
        let plan = Plan::of(&window);
        let cost = Cost::of(req.budget, bucket_count(&window.tiles))?;
        let mut failed = Failures::default();
        let delta = self
            .delta(tx, std::slice::from_ref(m), &req.subject, cost, &mut failed)
            .await?;
        let edge = self
            .map_facts(
                tx,
                std::slice::from_ref(m),
                &req.subject,
                &plan.facts,
                &mut failed,
            )
            .await?;
        if let Some(e) = failed.of(m) {
            return Err(QueryError::MetricFailed(e));
        }
        let group = GroupBy::Dimension(req.dimension.clone());
        let dim = |c: &Contribution| {
            c.dims
                .iter()
                .find(|(k, _)| *k == req.dimension)
                .map(|(_, v)| v.clone())
        };
        let mut accs: HashMap<(i32, Option<String>), Acc> = HashMap::new();
        if agg == Aggregation::Distinct {
            for s in buckets::sketches(tx, &[m.series], &req.subject, &window.tiles, &group).await?
            {
                if let Group::Dimension(d) = &s.group {
                    accs.entry((m.series, d.clone()))
                        .or_default()
                        .add_sketch(&s)?;
                }
            }
        } else {
            for t in buckets::totals(tx, &[m.series], &req.subject, &window.tiles, &group).await? {
                if let Group::Dimension(d) = &t.group {
                    accs.entry((m.series, d.clone()))
                        .or_default()
                        .add_totals(&t);
                }
            }
        }
        for (sign, c) in delta.over(m.series, (from, to), &plan) {
            accs.entry((m.series, dim(c)))
                .or_default()
                .add_delta(agg, *sign, c);
        }
        for c in edge_over(&edge, m.series, &plan) {
            accs.entry((m.series, dim(c)))
                .or_default()
                .add_contribution(agg, 1, c);
        }
        self.count_exactly(
            tx,
            std::slice::from_ref(m),
            &req.subject,
            &window,
            &mut accs,
            dim,
            &mut failed,
            self.exact_distinct.limit(req.budget),
        )
        .await?;
        if let Some(e) = failed.of(m) {
            return Err(QueryError::MetricFailed(e));
        }
        let split: BTreeMap<&Option<String>, &Acc> =
            accs.iter().map(|((_, d), a)| (d, a)).collect();
        let (rows, others) = top_rows(split.into_iter(), agg, req.top);
        let exact = rows.iter().all(|r| r.exact);
        let answer = self
            .answer(tx, &req.subject, (from, req.now), delta.watermarks, exact)
            .await?;
        snapshot.commit().await?;
        Ok(Breakdown {
            pubkey: hex(&req.subject),
            window,
            metric: metric_ref(m),
            dimension: req.dimension.clone(),
            rows,
            others,
            answer,
        })
    }
}

/// What an answer is estimated to read: bucket rows (tiles times metrics) and fact-log rows
/// of the live delta, in one unit (rows).
#[derive(Debug, Clone, Copy)]
struct Cost {
    budget: Option<u64>,
    estimate: u64,
}

impl Cost {
    fn of(budget: Option<u64>, buckets: u64) -> Result<Self, QueryError> {
        match budget {
            Some(b) if buckets > b => Err(QueryError::TooCostly {
                estimate: buckets,
                budget: b,
            }),
            _ => Ok(Cost {
                budget,
                estimate: buckets,
            }),
        }
    }
}

fn bucket_count(tiles: &[BucketRange]) -> u64 {
    tiles
        .iter()
        .map(|t| t.granularity.count(t.from, t.to) as u64)
        .sum()
}

/// Buckets of the tiles finer than `g` (inside a series' edge points).
fn bucket_count_beyond(tiles: &[BucketRange], g: Granularity) -> u64 {
    tiles
        .iter()
        .filter(|t| t.granularity != g)
        .map(|t| t.granularity.count(t.from, t.to) as u64)
        .sum()
}

/// The `top` non-zero values of a split, largest first (ties by value, so the order is
/// deterministic), and how many more there are.
pub(crate) fn top_rows<'a>(
    accs: impl Iterator<Item = (&'a Option<String>, &'a Acc)>,
    agg: Aggregation,
    top: usize,
) -> (Vec<BreakdownRow>, usize) {
    let mut rows: Vec<BreakdownRow> = accs
        .map(|(d, acc)| {
            let v = acc.value(agg);
            BreakdownRow {
                value: d.clone(),
                total: v.value,
                exact: v.exact,
                relative_error: v.relative_error,
            }
        })
        .filter(|r| r.total.is_some_and(|t| t != 0))
        .collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.value.cmp(&b.value)));
    let others = rows.len().saturating_sub(top);
    rows.truncate(top);
    (rows, others)
}

/// The plugin versions behind `metrics`, each once.
pub(crate) fn plugin_versions(metrics: &[CatalogMetric]) -> Vec<(&str, i32)> {
    let mut versions: Vec<(&str, i32)> = metrics
        .iter()
        .map(|m| (m.plugin.as_str(), m.plugin_version))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// Series ids by how they are read: summed, sketched, or as gauge levels.
fn split(metrics: &[CatalogMetric]) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    let (mut additive, mut distinct, mut gauges) = (Vec::new(), Vec::new(), Vec::new());
    for m in metrics {
        match aggregation(&m.aggregation) {
            Aggregation::Distinct => distinct.push(m.series),
            Aggregation::Gauge => gauges.push(m.series),
            _ => additive.push(m.series),
        }
    }
    (additive, distinct, gauges)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
