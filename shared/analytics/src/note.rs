//! The per-note drilldown: what others did to one event (replies, reactions, reposts,
//! quotes, zaps), over time. It reads the stored facts that target the event (always
//! current: ingest writes them synchronously) and maps them through the same plugin
//! versions as every other answer, keeping the contributions credited to the author.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use na_api_types::{DimensionBreakdown, NoteDrilldown, NoteMetric, Point, SeriesWindow};
use na_domain::FactClass;
use na_domain::Granularity;
use na_metrics_abi::Aggregation;
use na_plugin_registry::LoadedVersion;
use na_storage::{facts, plugins};

use crate::QueryError;
use crate::engine::{Engine, SeriesSet, hex, metric_ref, plugin_versions, top_rows};
use crate::failures::Failures;
use crate::merge::{Acc, aggregation};
use crate::selection::select_metrics;
use crate::window::{MAX_WINDOW_SECONDS, Retained, WindowRequest, resolve_series, time};

/// A window of at most this long is answered by the hour unless asked otherwise.
const HOURLY_UP_TO_SECONDS: i64 = 30 * 86_400;

#[derive(Debug, Clone)]
pub struct NoteRequest {
    pub event_id: [u8; 32],
    /// `None`: the note's lifetime, from its creation to `now`.
    pub window: Option<WindowRequest>,
    /// As for a summary; `None`: the active metrics about what others do to a pubkey's
    /// events (those that credit a fact's subject, not its actor), gauges aside.
    pub metrics: Option<String>,
    /// `None`: `hour` for windows up to 30 days, `day` beyond.
    pub granularity: Option<Granularity>,
    /// Rows per dimension breakdown.
    pub top: usize,
    pub now: i64,
    pub budget: Option<u64>,
}

/// One metric's values as they are folded: whole window, per bucket, per dimension value.
/// Every fact is read, so distinct counts are exact at any size.
struct Folded {
    total: Acc,
    points: HashMap<i64, Acc>,
    dims: BTreeMap<(String, Option<String>), Acc>,
}

impl Default for Folded {
    fn default() -> Self {
        Folded {
            total: Acc::exact(),
            points: HashMap::new(),
            dims: BTreeMap::new(),
        }
    }
}

impl Engine {
    /// # Errors
    /// [`QueryError::NotFound`] for an event that is not stored; bad windows, metrics
    /// (a gauge has no per-note value) or granularities; [`QueryError::TooCostly`] past
    /// the budget; database and plugin failures.
    #[tracing::instrument(skip_all, fields(event = %hex::encode(req.event_id), metrics = req.metrics.as_deref()))]
    pub async fn note(&self, req: &NoteRequest) -> Result<NoteDrilldown, QueryError> {
        let mut conn = self.db().conn().await?;
        let snapshot = na_storage::snapshot(&mut conn, self.statement_timeout).await?;
        let tx = &snapshot;
        let Some(head) = facts::note_head(&**tx, &req.event_id).await? else {
            return Err(QueryError::NotFound(format!(
                "event {} is not stored; interactions are attributed once it is ingested",
                hex(&req.event_id)
            )));
        };
        // Ingest verified the signature: the author is a 32-byte key.
        let author: [u8; 32] = head.author.as_slice().try_into().map_err(|_| {
            QueryError::NotFound(format!(
                "event {} has no valid author stored",
                hex(&req.event_id)
            ))
        })?;
        let catalog = plugins::catalog(tx).await?;
        let explicit = req.metrics.is_some();
        // Any version but a retired one: facts are read directly, so a shadow version needs
        // no recompute here.
        let mut chosen = select_metrics(&catalog, req.metrics.as_deref())?;
        if !explicit {
            chosen.retain(|m| m.aggregation != "gauge");
        }
        if let Some(g) = chosen.iter().find(|m| m.aggregation == "gauge") {
            return Err(QueryError::bad(format!(
                "{} is a gauge (a level of the pubkey, not of a note): leave it out",
                g.id()
            )));
        }
        let mut metrics = chosen;
        if !explicit {
            let mut shown: HashSet<i32> = HashSet::new();
            for (name, version) in plugin_versions(&metrics) {
                shown.extend(self.note_series(tx, name, version).await?.iter().copied());
            }
            metrics.retain(|m| shown.contains(&m.series));
        }
        let mut loaded = Vec::new();
        for (name, version) in plugin_versions(&metrics) {
            loaded.push(self.plugins().load(&**tx, name, version, None).await?);
        }

        let window = self.note_window(req, head.created_at.timestamp())?;
        let (from, to) = window.bounds();
        let points_cost = window.points as u64 * metrics.len() as u64;
        if let Some(budget) = req.budget {
            let cap = budget.saturating_sub(points_cost) as i64 + 1;
            let facts = facts::note_fact_count(
                &**tx,
                &req.event_id,
                window.resolved.from,
                window.resolved.to,
                cap,
            )
            .await?;
            let estimate = points_cost + facts as u64;
            if estimate > budget {
                return Err(QueryError::TooCostly { estimate, budget });
            }
        }

        let wanted: HashMap<i32, Aggregation> = metrics
            .iter()
            .map(|m| (m.series, aggregation(&m.aggregation)))
            .collect();
        let g = window.granularity;
        let mut folded: HashMap<i32, Folded> = HashMap::new();
        // One read for every version: all classes if any version reads all.
        let classes: Vec<i16> = if loaded.iter().any(|l| l.classes.is_empty()) {
            Vec::new()
        } else {
            loaded
                .iter()
                .flat_map(|l| l.classes.iter().map(|c| *c as i16))
                .collect()
        };
        let rows = facts::note_facts(
            &**tx,
            &req.event_id,
            window.resolved.from,
            window.resolved.to,
            &classes,
        )
        .await?;
        let mut failed = Failures::default();
        for l in &loaded {
            let contributions = match l.map(&l.facts(&rows, 1)) {
                Ok(c) => c,
                Err(e) => {
                    let info = l.mapper.info();
                    failed.record(&info.name, info.version as i32, &e);
                    continue;
                }
            };
            for c in contributions.iter() {
                let Some((series, _)) = l.series.get(c.metric) else {
                    continue;
                };
                let Some(&agg) = wanted.get(&series) else {
                    continue;
                };
                if *c.subject != author || !(from..to).contains(&c.at) {
                    continue;
                }
                // Only what is kept is copied.
                let c = c.to_owned();
                let f = folded.entry(series).or_default();
                f.total.add_contribution(agg, 1, &c);
                f.points
                    .entry(g.bucket(c.at))
                    .or_insert_with(Acc::exact)
                    .add_contribution(agg, 1, &c);
                for (k, v) in &c.dims {
                    f.dims
                        .entry((k.clone(), Some(v.clone())))
                        .or_insert_with(Acc::exact)
                        .add_contribution(agg, 1, &c);
                }
            }
        }

        let empty = Folded::default();
        let out: Vec<NoteMetric> = metrics
            .iter()
            .map(|m| {
                let agg = aggregation(&m.aggregation);
                let error = failed.of(m);
                if error.is_some() {
                    return NoteMetric {
                        metric: metric_ref(m),
                        value: None,
                        exact: false,
                        relative_error: None,
                        points: Vec::new(),
                        breakdowns: Vec::new(),
                        error,
                    };
                }
                let f = folded.get(&m.series).unwrap_or(&empty);
                let v = f.total.value(agg);
                NoteMetric {
                    metric: metric_ref(m),
                    value: v.value,
                    exact: v.exact,
                    relative_error: v.relative_error,
                    points: window
                        .starts()
                        .map(|at| {
                            let v = f
                                .points
                                .get(&at)
                                .map_or_else(|| Acc::exact().value(agg), |a| a.value(agg));
                            Point {
                                at: time(at),
                                value: v.value,
                                exact: v.exact,
                                relative_error: v.relative_error,
                            }
                        })
                        .collect(),
                    breakdowns: m
                        .dimensions
                        .iter()
                        .map(|d| breakdown(f, d, agg, req.top))
                        .collect(),
                    error: None,
                }
            })
            .collect();
        let exact = out.iter().all(|m| m.exact);
        let answer = self
            .answer_from_facts(tx, &author, (from, req.now), exact)
            .await?;
        snapshot.commit().await?;
        Ok(NoteDrilldown {
            event_id: hex(&req.event_id),
            author: hex(&author),
            kind: head.kind,
            created_at: head.created_at,
            window,
            facts_read: rows.len(),
            metrics: out,
            answer,
        })
    }

    /// The series of `name@version` a drilldown shows by default: those that credit the
    /// subject of facts about an event rather than their actor, found once by mapping those
    /// facts of the registry's trial batch (whose actors and subjects are disjoint).
    async fn note_series(
        &self,
        tx: &na_storage::Transaction<'_>,
        name: &str,
        version: i32,
    ) -> Result<SeriesSet, QueryError> {
        let key = (name.to_owned(), version);
        if let Some(s) = self
            .note_series
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(s);
        }
        let loaded = self.plugins().load(&**tx, name, version, None).await?;
        let series = Arc::new(credits_subjects(&loaded)?);
        if let Ok(mut c) = self.note_series.lock() {
            c.insert(key, Arc::clone(&series));
        }
        Ok(series)
    }

    fn note_window(&self, req: &NoteRequest, created_at: i64) -> Result<SeriesWindow, QueryError> {
        let request = req
            .window
            .clone()
            .unwrap_or_else(|| lifetime(created_at, req.now));
        let (from, to) = request.bounds(req.now)?;
        let g = req
            .granularity
            .unwrap_or(if to - from <= HOURLY_UP_TO_SECONDS {
                Granularity::Hour
            } else {
                Granularity::Day
            });
        // Facts are read whole: bucket retention does not limit a drilldown, and facts past
        // the raw horizon are said missing (`completeness.missing_before`).
        resolve_series(
            &request,
            g,
            req.now,
            &Retained::everything(),
            self.max_points,
        )
    }
}

/// A note's window when none is asked for: from its creation to `now`, as long as a window
/// may be.
pub(crate) fn lifetime(created_at: i64, now: i64) -> WindowRequest {
    let from = created_at.max(now - MAX_WINDOW_SECONDS + 86_400);
    WindowRequest::Custom {
        from,
        to: now.max(from + 1),
    }
}

/// The series of `loaded` that credit the subject of the trial batch's facts about an event.
fn credits_subjects(loaded: &LoadedVersion) -> Result<HashSet<i32>, QueryError> {
    let about: Vec<u16> = FactClass::ABOUT_AN_EVENT
        .iter()
        .map(|c| c.as_i16() as u16)
        .collect();
    let mut sample = na_plugin_registry::sample_facts();
    sample.retain(|f| about.contains(&f.class));
    let subjects: HashSet<[u8; 32]> = sample.iter().filter_map(|f| f.subject).collect();
    Ok(loaded
        .map(&sample)
        .map_err(QueryError::Plugin)?
        .iter()
        .filter(|c| subjects.contains(c.subject))
        .filter_map(|c| loaded.series.get(c.metric).map(|(s, _)| s))
        .collect())
}

fn breakdown(f: &Folded, dimension: &str, agg: Aggregation, top: usize) -> DimensionBreakdown {
    let split = f
        .dims
        .iter()
        .filter(|((d, _), _)| d == dimension)
        .map(|((_, value), acc)| (value, acc));
    let (rows, others) = top_rows(split, agg, top);
    DimensionBreakdown {
        dimension: dimension.to_owned(),
        rows,
        others,
    }
}
