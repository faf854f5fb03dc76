//! A pubkey's events ranked by a metric over the interactions with each in a window: the
//! window's stored facts about the pubkey, grouped by the event they target, each group
//! through the metric's plugin version and folded as a note's drilldown folds it. So a
//! note's value here is its drilldown's over the same window, and the values of an
//! additive metric add up to at most the pubkey's own (facts about no event, a follow say,
//! belong to no note).

use std::collections::HashMap;

use na_api_types::{TopNote, TopNotes};
use na_domain::TimeRange;
use na_metrics_abi::Aggregation;
use na_storage::{facts, plugins};

use crate::QueryError;
use crate::engine::{Engine, hex, metric_ref};
use crate::failures::Failures;
use crate::merge::{Acc, aggregation};
use crate::selection::select_one;
use crate::window::{WindowRequest, read_whole, time};

/// The metric notes are ranked by unless one is named.
pub const DEFAULT_TOP_NOTES_METRIC: &str = "reactions_received";

/// Notes are ranked over 30 days unless a window is given.
const DEFAULT_WINDOW: &str = "30d";

#[derive(Debug, Clone)]
pub struct TopNotesRequest {
    pub subject: [u8; 32],
    /// `None`: 30 days.
    pub window: Option<WindowRequest>,
    /// Any metric but a gauge (`name` or `name@version`).
    pub metric: String,
    /// Notes listed; the rest are counted in `others`.
    pub top: usize,
    pub now: i64,
    /// The most facts read for an answer; past it, a [`QueryError::TooCostly`].
    pub budget: Option<u64>,
}

impl Engine {
    /// # Errors
    /// A gauge, a bad window; [`QueryError::TooCostly`] when the window holds more facts
    /// than the budget; [`QueryError::MetricFailed`] when the metric's plugin version
    /// fails; database errors.
    #[tracing::instrument(skip_all, fields(subject = %hex::encode(req.subject), metric = %req.metric))]
    pub async fn top_notes(&self, req: &TopNotesRequest) -> Result<TopNotes, QueryError> {
        let mut conn = self.db().conn().await?;
        let snapshot = na_storage::snapshot(&mut conn, self.statement_timeout).await?;
        let tx = &snapshot;
        let catalog = plugins::catalog(tx).await?;
        let m = &select_one(&catalog, &req.metric, "notes are ranked by")?;
        let how = aggregation(&m.aggregation);
        if how == Aggregation::Gauge {
            return Err(QueryError::bad(format!(
                "{} is a gauge (a level, not something done to a note); rank notes by a count, a sum or a distinct count",
                m.id()
            )));
        }
        let window = match &req.window {
            Some(w) => w.clone(),
            None => WindowRequest::rolling(DEFAULT_WINDOW)?,
        };
        let (from, to) = window.bounds(req.now)?;
        let loaded = self
            .plugins()
            .load(&**tx, &m.plugin, m.plugin_version, None)
            .await?;
        let classes = loaded.classes_of(&[m.series]);
        if let Some(budget) = req.budget {
            let cap = i64::try_from(budget).unwrap_or(i64::MAX).saturating_add(1);
            let count =
                facts::fact_count_in(tx, &req.subject, &classes, (time(from), time(to)), cap)
                    .await?;
            let estimate = u64::try_from(count).unwrap_or(0);
            if estimate > budget {
                return Err(QueryError::TooCostly { estimate, budget });
            }
        }
        let range = TimeRange { from, to };
        let rows = facts::facts_in(tx, &req.subject, &classes, &[(from, to)]).await?;
        let mut by_note: HashMap<&[u8], Vec<facts::FactRow>> = HashMap::new();
        for row in &rows {
            if let (Some(note), Some(subject)) = (&row.target_event, &row.subject)
                && subject.as_slice() == req.subject.as_slice()
            {
                by_note
                    .entry(note.as_slice())
                    .or_default()
                    .push(row.clone());
            }
        }
        let mut failed = Failures::default();
        let mut ranked = Vec::with_capacity(by_note.len());
        for (note, rows) in by_note {
            let mapped = match loaded.map(&loaded.facts(&rows, 1)) {
                Ok(mapped) => mapped,
                Err(e) => {
                    failed.record(&m.plugin, m.plugin_version, &e);
                    break;
                }
            };
            let mut acc = Acc::exact();
            for c in mapped.iter() {
                if *c.subject == req.subject
                    && range.contains(c.at)
                    && loaded.series.get(c.metric).map(|(s, _)| s) == Some(m.series)
                {
                    acc.add_contribution(how, 1, &c.to_owned());
                }
            }
            let value = acc.value(how);
            if value.value.is_some_and(|v| v > 0) {
                ranked.push((note, value));
            }
        }
        if let Some(e) = failed.of(m) {
            return Err(QueryError::MetricFailed(e));
        }
        ranked.sort_unstable_by(|(a, x), (b, y)| y.value.cmp(&x.value).then_with(|| a.cmp(b)));
        let total = ranked.len();
        let mut notes = Vec::with_capacity(req.top.min(total));
        for (id, value) in ranked.into_iter().take(req.top) {
            let head = facts::note_head(&**tx, id).await?;
            notes.push(TopNote {
                event_id: hex(id),
                kind: head.as_ref().map(|h| h.kind),
                created_at: head.map(|h| h.created_at),
                value: value.value,
                exact: value.exact,
            });
        }
        let answer = self
            .answer_from_facts(tx, &req.subject, (from, req.now), true)
            .await?;
        snapshot.commit().await?;
        Ok(TopNotes {
            pubkey: hex(&req.subject),
            window: read_whole(&window, range),
            metric: metric_ref(m),
            total,
            others: total - notes.len(),
            notes,
            answer,
        })
    }
}
