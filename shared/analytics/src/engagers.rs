//! Who engaged with a pubkey: the members of a distinct metric of pubkeys
//! (`unique_engagers`, `unique_zappers`), each with how many contributions they made in the
//! window. It is the exact count's own reading — the window's stored facts through the
//! metric's plugin version ([`Engine::map_facts`]) — so the list is as long as the metric's
//! exact value. What it names (other users' actions) is for the pubkey itself or a `read`
//! key: the HTTP layer's access class says so, this module only answers.

use std::collections::HashMap;

use na_api_types::{Engager, Engagers};
use na_domain::TimeRange;
use na_metrics_abi::{Aggregation, Contribution};
use na_storage::{facts, plugins};

use crate::QueryError;
use crate::engine::{Engine, hex, metric_ref};
use crate::failures::Failures;
use crate::merge::aggregation;
use crate::note::lifetime;
use crate::selection::select_one;
use crate::window::{WindowRequest, read_whole, time};

/// The metric an engagers list is of unless one is named.
pub const DEFAULT_ENGAGERS_METRIC: &str = "unique_engagers";

/// The unit of a distinct metric whose keys are pubkeys.
const PUBKEYS: &str = "pubkeys";

/// A user's engagers are over 30 days unless a window is given.
const DEFAULT_WINDOW: &str = "30d";

#[derive(Debug, Clone)]
pub struct EngagersRequest {
    pub subject: [u8; 32],
    /// Only those who engaged with this event of the subject's.
    pub note: Option<[u8; 32]>,
    /// `None`: 30 days, or the note's lifetime.
    pub window: Option<WindowRequest>,
    /// A distinct metric of pubkeys (`name` or `name@version`).
    pub metric: String,
    /// Engagers listed; the rest are counted in `others`.
    pub top: usize,
    pub now: i64,
    /// The most facts read for an answer; past it, a [`QueryError::TooCostly`].
    pub budget: Option<u64>,
}

impl Engine {
    /// The time of the stored event `id`, which must be `subject`'s.
    async fn note_of(
        &self,
        tx: &na_storage::Transaction<'_>,
        id: &[u8; 32],
        subject: &[u8; 32],
    ) -> Result<i64, QueryError> {
        let Some(head) = facts::note_head(&**tx, id).await? else {
            return Err(QueryError::NotFound(format!(
                "event {} is not stored; interactions are attributed once it is ingested",
                hex(id)
            )));
        };
        if head.author.as_slice() != subject.as_slice() {
            return Err(QueryError::bad(format!(
                "note={} is by {}, not by {}: ask for its author's engagers",
                hex(id),
                hex::encode(&head.author),
                hex(subject)
            )));
        }
        Ok(head.created_at.timestamp())
    }

    /// # Errors
    /// A metric that is not a distinct count of pubkeys, a bad window;
    /// [`QueryError::TooCostly`] when the window holds more facts than the budget;
    /// [`QueryError::MetricFailed`] when the metric's plugin version fails; database errors.
    #[tracing::instrument(skip_all, fields(subject = %hex::encode(req.subject), metric = %req.metric))]
    pub async fn engagers(&self, req: &EngagersRequest) -> Result<Engagers, QueryError> {
        let mut conn = self.db().conn().await?;
        let snapshot = na_storage::snapshot(&mut conn, self.statement_timeout).await?;
        let tx = &snapshot;
        let catalog = plugins::catalog(tx).await?;
        let metrics = [select_one(
            &catalog,
            &req.metric,
            "engagers are listed for",
        )?];
        let m = &metrics[0];
        if aggregation(&m.aggregation) != Aggregation::Distinct || m.unit != PUBKEYS {
            let of_pubkeys: Vec<String> = catalog
                .iter()
                .filter(|c| c.aggregation == "distinct" && c.unit == PUBKEYS)
                .map(|c| c.metric.clone())
                .collect();
            return Err(QueryError::bad(format!(
                "{} is not a distinct count of pubkeys; engagers are listed for one of [{}]",
                m.id(),
                of_pubkeys.join(", ")
            )));
        }
        let note = match &req.note {
            Some(id) => Some((id, self.note_of(tx, id, &req.subject).await?)),
            None => None,
        };
        let window = match (&req.window, &note) {
            (Some(w), _) => w.clone(),
            (None, Some((_, created_at))) => lifetime(*created_at, req.now),
            (None, None) => WindowRequest::rolling(DEFAULT_WINDOW)?,
        };
        let (from, to) = window.bounds(req.now)?;
        let loaded = self
            .plugins()
            .load(&**tx, &m.plugin, m.plugin_version, None)
            .await?;
        let classes = loaded.classes_of(&[m.series]);
        if let Some(budget) = req.budget {
            let cap = i64::try_from(budget).unwrap_or(i64::MAX).saturating_add(1);
            let span = (time(from), time(to));
            let count = match &note {
                Some((id, _)) => facts::note_fact_count(&**tx, *id, span.0, span.1, cap).await?,
                None => facts::fact_count_in(tx, &req.subject, &classes, span, cap).await?,
            };
            let estimate = u64::try_from(count).unwrap_or(0);
            if estimate > budget {
                return Err(QueryError::TooCostly { estimate, budget });
            }
        }
        let range = TimeRange { from, to };
        let mut failed = Failures::default();
        let contributions: Vec<Contribution> = match &note {
            // The facts about the event, mapped as the drilldown maps them.
            Some((id, _)) => {
                let rows = facts::note_facts(&**tx, *id, time(from), time(to), &classes).await?;
                match loaded.map(&loaded.facts(&rows, 1)) {
                    Ok(mapped) => mapped
                        .iter()
                        .filter(|c| *c.subject == req.subject && range.contains(c.at))
                        .filter(|c| loaded.series.get(c.metric).map(|(s, _)| s) == Some(m.series))
                        .map(|c| c.to_owned())
                        .collect(),
                    Err(e) => {
                        failed.record(&m.plugin, m.plugin_version, &e);
                        Vec::new()
                    }
                }
            }
            None => self
                .map_facts(tx, metrics.as_slice(), &req.subject, &[range], &mut failed)
                .await?
                .remove(&m.series)
                .unwrap_or_default(),
        };
        if let Some(e) = failed.of(m) {
            return Err(QueryError::MetricFailed(e));
        }
        let mut by_key: HashMap<&[u8], i64> = HashMap::new();
        for c in &contributions {
            *by_key.entry(c.key.as_slice()).or_default() += 1;
        }
        let mut engagers: Vec<Engager> = by_key
            .into_iter()
            .map(|(key, n)| Engager {
                pubkey: hex::encode(key),
                contributions: n,
            })
            .collect();
        engagers.sort_unstable_by(|a, b| {
            b.contributions
                .cmp(&a.contributions)
                .then_with(|| a.pubkey.cmp(&b.pubkey))
        });
        let total = engagers.len();
        engagers.truncate(req.top);
        let answer = self
            .answer_from_facts(tx, &req.subject, (from, req.now), true)
            .await?;
        snapshot.commit().await?;
        Ok(Engagers {
            pubkey: hex(&req.subject),
            window: read_whole(&window, range),
            metric: metric_ref(m),
            total,
            others: total - engagers.len(),
            engagers,
            answer,
        })
    }
}
