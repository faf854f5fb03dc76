//! Contributions mapped from the stored facts: the parts at a window's edges that no kept
//! bucket covers, and whole windows small enough to count a distinct metric exactly. Read
//! in the query's snapshot, the facts are the current state (the live delta included), so
//! a part read from facts takes nothing from buckets or from the delta.

use std::collections::HashMap;
use std::hash::Hash;

use na_metrics_abi::{Aggregation, Contribution};
use na_storage::Transaction;
use na_storage::facts;
use na_storage::plugins::CatalogMetric;

use crate::QueryError;
use crate::engine::{Engine, plugin_versions};
use crate::failures::Failures;
use crate::merge::{Acc, FromFacts, aggregation};
use na_api_types::ResolvedWindow;
use na_domain::TimeRange;

impl Engine {
    /// The contributions to `subject` of the stored facts in `ranges` (disjoint, as
    /// [`union`] makes them), through the plugin versions behind `metrics`, kept for those
    /// metrics and for instants inside `ranges`. A version that fails is recorded in
    /// `failed` and skipped.
    pub(crate) async fn map_facts(
        &self,
        tx: &Transaction<'_>,
        metrics: &[CatalogMetric],
        subject: &[u8; 32],
        ranges: &[TimeRange],
        failed: &mut Failures,
    ) -> Result<FromFacts, QueryError> {
        let mut out = FromFacts::new();
        if ranges.is_empty() {
            return Ok(out);
        }
        let spans: Vec<(i64, i64)> = ranges.iter().map(|r| (r.from, r.to)).collect();
        for (name, version) in plugin_versions(metrics) {
            if failed.has(name, version) {
                continue;
            }
            let series: Vec<i32> = metrics
                .iter()
                .filter(|m| m.plugin == name && m.plugin_version == version)
                .map(|m| m.series)
                .collect();
            let loaded = self.plugins().load(&**tx, name, version, None).await?;
            let rows = facts::facts_in(tx, subject, &loaded.classes_of(&series), &spans).await?;
            let contributions = match loaded.map(&loaded.facts(&rows, 1)) {
                Ok(c) => c,
                Err(e) => {
                    failed.record(name, version, &e);
                    continue;
                }
            };
            for c in contributions.iter() {
                if c.subject != subject || !ranges.iter().any(|r| r.contains(c.at)) {
                    continue;
                }
                if let Some((s, _)) = loaded.series.get(c.metric)
                    && series.contains(&s)
                {
                    out.entry(s).or_default().push(c.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Replaces the estimated distinct counts in `accs` (by series and `key`) with exact
    /// ones, counted from the window's facts, for each distinct metric whose window holds
    /// at most `limit` contributions ([`crate::ExactDistinct::limit`]). Nothing changes where facts
    /// are past the raw horizon (a rounded window) or the counts are exact already.
    #[allow(
        clippy::too_many_arguments,
        reason = "one step of an answer, its inputs named"
    )]
    pub(crate) async fn count_exactly<K: Eq + Hash + Clone>(
        &self,
        tx: &Transaction<'_>,
        metrics: &[CatalogMetric],
        subject: &[u8; 32],
        window: &ResolvedWindow,
        accs: &mut HashMap<(i32, K), Acc>,
        key: impl Fn(&Contribution) -> K,
        failed: &mut Failures,
        limit: i64,
    ) -> Result<(), QueryError> {
        if window.rounded.from {
            return Ok(());
        }
        let worth: Vec<CatalogMetric> = metrics
            .iter()
            .filter(|m| aggregation(&m.aggregation) == Aggregation::Distinct)
            .filter(|m| failed.of(m).is_none())
            .filter(|m| {
                let of_m = || accs.iter().filter(|((s, _), _)| *s == m.series);
                let estimated = of_m().any(|(_, a)| !a.value(Aggregation::Distinct).exact);
                let contributions: i64 = of_m().map(|(_, a)| a.contributions).sum();
                estimated && contributions <= limit
            })
            .cloned()
            .collect();
        if worth.is_empty() {
            return Ok(());
        }
        let (from, to) = window.bounds();
        let counted = self
            .map_facts(tx, &worth, subject, &[TimeRange { from, to }], failed)
            .await?;
        for m in &worth {
            if failed.of(m).is_some() {
                continue;
            }
            let mut exact: HashMap<(i32, K), Acc> = HashMap::new();
            for c in counted.get(&m.series).into_iter().flatten() {
                exact
                    .entry((m.series, key(c)))
                    .or_insert_with(Acc::exact)
                    .add_contribution(Aggregation::Distinct, 1, c);
            }
            // What the live delta added stays reported; the values are the exact ones.
            accs.retain(|(s, k), acc| {
                if *s != m.series {
                    return true;
                }
                if let Some(e) = exact.get_mut(&(*s, k.clone())) {
                    e.delta = acc.delta;
                }
                false
            });
            accs.extend(exact);
        }
        Ok(())
    }
}
