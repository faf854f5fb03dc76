//! The legacy computation the rollout compares v2 against (docs/rollout.md): a window's
//! stored facts about the user read and aggregated at request time through `core@1`, no
//! buckets, no live delta, as the backend answered before v2. A level (`follower_count`)
//! is every change before the window's end, so its follows are read from the start.
//!
//! [`Engine::dual`] answers both ways in one snapshot, so they count the same facts and a
//! difference between them is drift, never ingest racing the comparison.

use std::collections::{BTreeMap, HashSet};

use na_api_types::Summary;
use na_domain::FactClass;
use na_metrics_abi::Aggregation;
use na_storage::Transaction;
use na_storage::facts;

use crate::window::{EARLIEST, time};
use crate::{Engine, QueryError, SummaryRequest};

/// The plugin version whose definitions the legacy fields have.
pub const LEGACY_PLUGIN: (&str, i32) = ("core", 1);

/// The legacy computation's window: `[from, to)`, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyRequest {
    pub subject: [u8; 32],
    pub from: i64,
    pub to: i64,
    /// The most facts it may read ([`QueryError::TooCostly`] beyond); `None`: no limit.
    pub budget: Option<u64>,
}

/// What the legacy computation found: each metric of [`LEGACY_PLUGIN`] that counts, sums,
/// counts distinct keys or keeps a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAnswer {
    pub values: BTreeMap<String, i64>,
}

impl Engine {
    /// The legacy computation over `req`'s window, in a snapshot of its own.
    ///
    /// # Errors
    /// [`QueryError::TooCostly`] past the budget; the plugin or the database failing.
    pub async fn legacy(&self, req: &LegacyRequest) -> Result<LegacyAnswer, QueryError> {
        let mut conn = self.db().conn().await?;
        let tx = na_storage::snapshot(&mut conn, self.statement_timeout).await?;
        let answer = self.legacy_in(&tx, req).await?;
        tx.commit().await?;
        Ok(answer)
    }

    /// The legacy computation and the v2 summary, read in one snapshot.
    ///
    /// # Errors
    /// As [`Engine::legacy`] and [`Engine::summary`].
    pub async fn dual(
        &self,
        legacy: &LegacyRequest,
        v2: &SummaryRequest,
    ) -> Result<(LegacyAnswer, Summary), QueryError> {
        let mut conn = self.db().conn().await?;
        let (snapshot, catalog, kept) = self.begin(&mut conn).await?;
        let summary = self.summary_in(&snapshot, &catalog, &kept, v2).await?;
        let answer = self.legacy_in(&snapshot, legacy).await?;
        snapshot.commit().await?;
        Ok((answer, summary))
    }

    async fn legacy_in(
        &self,
        tx: &Transaction<'_>,
        req: &LegacyRequest,
    ) -> Result<LegacyAnswer, QueryError> {
        let (name, version) = LEGACY_PLUGIN;
        let follows = [
            FactClass::FollowBaseline.as_i16(),
            FactClass::FollowGained.as_i16(),
            FactClass::FollowLost.as_i16(),
        ];
        let window = (time(req.from), time(req.to));
        let before = (time(EARLIEST), time(req.from));
        if let Some(budget) = req.budget {
            let cap = i64::try_from(budget).unwrap_or(i64::MAX).saturating_add(1);
            let (inside, earlier) = tokio::try_join!(
                facts::fact_count_in(tx, &req.subject, &[], window, cap),
                facts::fact_count_in(tx, &req.subject, &follows, before, cap),
            )?;
            let estimate = u64::try_from(inside + earlier).unwrap_or(u64::MAX);
            if estimate > budget {
                return Err(QueryError::TooCostly { estimate, budget });
            }
        }
        let loaded = self.plugins().load(&**tx, name, version, None).await?;
        let (in_window, before_it) = ([(req.from, req.to)], [(EARLIEST, req.from)]);
        let (inside, earlier) = tokio::try_join!(
            facts::facts_in(tx, &req.subject, &[], &in_window),
            facts::facts_in(tx, &req.subject, &follows, &before_it),
        )?;
        let info = loaded.mapper.info().clone();
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        let mut keys: BTreeMap<String, HashSet<Vec<u8>>> = BTreeMap::new();
        for m in &info.metrics {
            match m.aggregation {
                Aggregation::Count | Aggregation::Sum | Aggregation::Gauge => {
                    sums.insert(m.name.clone(), 0);
                }
                Aggregation::Distinct => {
                    keys.insert(m.name.clone(), HashSet::new());
                }
                Aggregation::Min | Aggregation::Max => {}
            }
        }
        let facts: Vec<_> = inside.into_iter().chain(earlier).collect();
        // In batches, as compaction maps them: one call over a long window would pass the
        // plugin's memory cap.
        for batch in loaded.facts(&facts, 1).chunks(10_000) {
            for c in loaded.map(batch).map_err(QueryError::Plugin)?.iter() {
                if c.subject != &req.subject {
                    continue;
                }
                let m = &info.metrics[usize::from(c.metric)];
                let inside = (req.from..req.to).contains(&c.at);
                match m.aggregation {
                    Aggregation::Gauge if c.at < req.to => {
                        *sums.entry(m.name.clone()).or_default() += c.value;
                    }
                    Aggregation::Count | Aggregation::Sum if inside => {
                        *sums.entry(m.name.clone()).or_default() += c.value;
                    }
                    Aggregation::Distinct if inside => {
                        keys.entry(m.name.clone())
                            .or_default()
                            .insert(c.key.to_vec());
                    }
                    _ => {}
                }
            }
        }
        let mut values = sums;
        for (name, set) in keys {
            values.insert(name, set.len() as i64);
        }
        Ok(LegacyAnswer { values })
    }
}
