//! Backfill of one pubkey: everything it wrote and everything that tags it, paged backwards.

use std::collections::BTreeMap;

use na_storage::Db;
use nostr_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{instrument, warn};

use crate::config::IngestConfig;
use crate::paging::{PagingProgress, page_backwards};
use crate::pipeline::{PipelineOptions, StatsSnapshot};
use crate::session::{Session, ingested_kinds};
use crate::{Error, Result};

/// The parameters of a backfill job (`jobs.params`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillParams {
    /// Hex public key.
    pub pubkey: String,
    /// Oldest `created_at` to fetch (seconds); the whole history when absent.
    #[serde(default)]
    pub since: Option<u64>,
}

/// Progress of a backfill, per relay and filter (`authored`, `inbound`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BackfillProgress {
    pub walks: BTreeMap<String, PagingProgress>,
    pub errors: Vec<String>,
    pub stats: StatsSnapshot,
    pub done: bool,
}

/// Fetches the history of `params.pubkey` from every configured relay and stores it.
///
/// # Errors
/// [`Error::Config`] for a bad pubkey or no relays; [`Error::Relay`] when every relay failed.
#[instrument(skip_all, err, fields(pubkey = %params.pubkey))]
pub async fn backfill(
    db: &Db,
    cfg: &IngestConfig,
    params: &BackfillParams,
    progress: &watch::Sender<BackfillProgress>,
) -> Result<BackfillProgress> {
    let pubkey = PublicKey::from_hex(&params.pubkey)
        .map_err(|e| Error::Config(format!("pubkey {:?}: {e}", params.pubkey)))?;
    let options = PipelineOptions {
        batch_size: cfg.batch_size,
        lnurl: cfg.lnurl.clone(),
        ..Default::default()
    };
    let (session, _signals) = Session::connect(db, cfg, options).await?;
    let filters = [
        (
            "authored",
            Filter::new().author(pubkey).kinds(ingested_kinds()),
        ),
        (
            "inbound",
            Filter::new().pubkey(pubkey).kinds(ingested_kinds()),
        ),
    ];
    let since = params.since.map(Timestamp::from);
    let mut state = BackfillProgress::default();
    let mut failed_relays = 0;
    for relay in session.relays.clone() {
        let mut relay_failed = false;
        for (name, filter) in &filters {
            let key = format!("{relay} {name}");
            let walk = page_backwards(&session, &relay, filter, since, None, cfg.page_limit, |p| {
                state.walks.insert(key.clone(), p.clone());
                state.stats = session.stats();
                progress.send_replace(state.clone());
            })
            .await;
            if let Err(e) = walk {
                warn!(error = %e, relay = %relay, "backfill walk failed");
                state.errors.push(format!("{key}: {e}"));
                relay_failed = true;
            }
        }
        failed_relays += usize::from(relay_failed);
    }
    state.stats = session.close().await?;
    state.done = true;
    progress.send_replace(state.clone());
    if failed_relays == cfg.relays.len() {
        return Err(Error::Relay {
            relay: "all".into(),
            message: state.errors.join("; "),
        });
    }
    Ok(state)
}
