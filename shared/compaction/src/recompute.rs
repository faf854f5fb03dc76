//! Recomputing a new plugin version: its buckets from the retained facts, then its position
//! in the log at exactly the snapshot those facts were read in, so the compactor carries on
//! from there with nothing missed or applied twice.

use na_storage::{buckets, compaction_state, facts};
use serde::Serialize;
use tokio::sync::watch;
use tracing::info;

use crate::CompactionError;
use crate::aggregate::Aggregate;
use crate::compactor::{Compactor, write};
use na_domain::granularity::Horizons;
use na_plugin_registry::to_fact;

/// Facts read per step (one bucket write transaction each).
const STEP_FACTS: i32 = 20_000;

/// Where a recompute is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecomputeProgress {
    pub facts_done: i64,
    pub facts_total: i64,
    pub contributions: u64,
}

/// What a recompute did.
#[derive(Debug, Clone, Serialize)]
pub struct RecomputeReport {
    pub plugin: String,
    pub facts: i64,
    pub contributions: u64,
    pub seconds: f64,
    /// Time spent in the plugin.
    pub plugin_seconds: f64,
}

impl Compactor {
    /// Fills `name@version`'s buckets from the retained facts and hands it to the compactor;
    /// the version can then be activated. Starts over if a previous attempt stopped midway.
    ///
    /// # Errors
    /// [`CompactionError::Refused`] for a version that does not exist, is retired or active
    /// (active versions are kept current, never rebuilt under their readers), or is being
    /// recomputed by another job; the plugin's failure; database failures.
    #[tracing::instrument(skip(self, progress))]
    pub async fn recompute(
        &self,
        name: &str,
        version: i32,
        progress: &watch::Sender<RecomputeProgress>,
    ) -> Result<RecomputeReport, CompactionError> {
        let started = std::time::Instant::now();
        let id = format!("{name}@{version}");
        let record = match self.db().plugin(name, version).await {
            Err(na_storage::Error::Refused(r)) => {
                return Err(CompactionError::Refused(r.to_string()));
            }
            other => other?,
        };
        if record.state != "shadow" {
            return Err(CompactionError::Refused(format!(
                "{id} is {}: only a shadow version is recomputed (publish a new version)",
                record.state
            )));
        }
        let mut writer = self.db().conn().await?;
        let loaded = self.plugins().load(&**writer, name, version, None).await?;
        if !compaction_state::try_lock_recompute(&writer, name, version).await? {
            return Err(CompactionError::Refused(format!(
                "{id} is being recomputed by another job"
            )));
        }
        let outcome = async {
            let tx = writer.transaction().await?;
            compaction_state::reset_version(&tx, name, version).await?;
            tx.commit().await?;

            let classes: Vec<i16> = loaded.classes.iter().map(|c| *c as i16).collect();
            let classes = (!classes.is_empty()).then_some(classes.as_slice());
            let mut reader = self.db().conn().await?;
            let (scan_tx, portal, scan) = facts::scan_facts(&mut reader, classes).await?;
            let horizons = Horizons::from_stored(&buckets::horizons(&*scan_tx).await?);
            let mut state = RecomputeProgress {
                facts_done: 0,
                facts_total: scan.total,
                contributions: 0,
            };
            progress.send_replace(state.clone());
            let mut plugin_seconds = 0.0;
            loop {
                let rows = facts::next_facts(&scan_tx, &portal, STEP_FACTS).await?;
                if rows.is_empty() {
                    break;
                }
                let facts: Vec<_> = rows.iter().map(to_fact).collect();
                let mapping = std::time::Instant::now();
                let contributions = loaded.mapper.map(&facts).map_err(CompactionError::Plugin)?;
                plugin_seconds += mapping.elapsed().as_secs_f64();
                let mut aggregate = Aggregate::default();
                aggregate.add(&loaded.series, &horizons, 1, &contributions);
                let tx = writer.transaction().await?;
                write(&tx, &aggregate).await?;
                tx.commit().await?;
                self.config().crash_point("recompute-step");
                state.facts_done += rows.len() as i64;
                state.contributions += aggregate.contributions;
                progress.send_replace(state.clone());
            }
            // Installed while the scan's snapshot is still open, so fact-log pruning (which
            // spares rows an open snapshot does not see) cannot take rows this version needs.
            let tx = writer.transaction().await?;
            compaction_state::install_position(&tx, name, version, &scan, state.facts_done).await?;
            tx.commit().await?;
            scan_tx.commit().await?;
            Ok::<_, CompactionError>((state, plugin_seconds))
        }
        .await;
        // A lock that cannot be released goes with its connection.
        if compaction_state::release_recompute(&writer, name, version)
            .await
            .is_err()
        {
            drop(deadpool_postgres::Object::take(writer));
        }
        let (state, plugin_seconds) = outcome?;
        let report = RecomputeReport {
            plugin: id,
            facts: state.facts_done,
            contributions: state.contributions,
            seconds: started.elapsed().as_secs_f64(),
            plugin_seconds,
        };
        info!(plugin = %report.plugin, facts = report.facts, seconds = report.seconds, "recomputed");
        Ok(report)
    }
}
