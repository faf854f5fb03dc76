//! NIP-57's LNURL check at ingest: for each valid zap receipt, find the recipient's
//! LNURL-pay URL (the zap request's `lnurl` tag, else the recipient's stored profile), ask the
//! resolver for its `nostrPubkey`, and store the verdict in the fact's `lnurl` dimension.
//! It never drops or invalidates a zap: anything that cannot be checked stays `unverified`.

use std::collections::HashMap;

use futures_util::StreamExt;
use na_domain::lnurl::{LnurlVerdict, pay_url};
use na_domain::{FactClass, FactFlags, Pubkey, kinds};
use na_lnurl::{Lookup, NostrPubkeyResolver};
use na_storage::{Db, NewEvent};
use tracing::{debug, warn};

/// Lookups in flight at once.
const CONCURRENT_LOOKUPS: usize = 16;

/// Sets the LNURL verdict of the valid zap receipts among `events`.
pub(crate) async fn annotate(resolver: &dyn NostrPubkeyResolver, db: &Db, events: &mut [NewEvent]) {
    let zaps: Vec<(usize, Pubkey)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event.kind == kinds::ZAP_RECEIPT)
        .filter_map(|(i, e)| {
            let zap = e
                .facts
                .iter()
                .find(|f| f.class == FactClass::Zap && !f.flags.has(FactFlags::INVALID))?;
            Some((i, zap.subject?))
        })
        .collect();
    if zaps.is_empty() {
        return;
    }
    let mut urls: Vec<Option<String>> = zaps
        .iter()
        .map(|(i, _)| pay_url(&events[*i].event, None))
        .collect();
    let without: Vec<Pubkey> = zaps
        .iter()
        .zip(&urls)
        .filter(|(_, url)| url.is_none())
        .map(|((_, recipient), _)| *recipient)
        .collect();
    if !without.is_empty() {
        let profiles = db.latest_profiles(&without).await.unwrap_or_else(|e| {
            warn!(error = %e, "recipient profiles unavailable; their zaps stay unverified");
            HashMap::new()
        });
        for ((i, recipient), url) in zaps.iter().zip(urls.iter_mut()) {
            if url.is_none() {
                *url = pay_url(
                    &events[*i].event,
                    profiles.get(recipient).map(String::as_str),
                );
            }
        }
    }

    let mut distinct: Vec<String> = urls.iter().flatten().cloned().collect();
    distinct.sort_unstable();
    distinct.dedup();
    // Futures built up front: a closure inside the stream would not be provably Send.
    let pending: Vec<_> = distinct
        .into_iter()
        .map(|url| async move {
            let lookup = resolver.lookup(&url).await;
            (url, lookup)
        })
        .collect();
    let lookups: HashMap<String, Lookup> = futures_util::stream::iter(pending)
        .buffer_unordered(CONCURRENT_LOOKUPS)
        .collect()
        .await;
    let mut verdicts = Vec::with_capacity(zaps.len());
    for ((i, _), url) in zaps.iter().zip(&urls) {
        let lookup = url.as_ref().and_then(|u| lookups.get(u));
        if let Some(Lookup::Failed(why)) = lookup {
            debug!(
                url = url.as_deref().unwrap_or(""),
                why, "LNURL lookup failed"
            );
        }
        let signer = events[*i].event.pubkey;
        verdicts.push((
            *i,
            LnurlVerdict::of(&signer, lookup.and_then(Lookup::nostr_pubkey)),
        ));
    }
    for (i, verdict) in verdicts {
        for f in events[i]
            .facts
            .iter_mut()
            .filter(|f| f.class == FactClass::Zap)
        {
            if let Some(dims) = f.dims.as_mut().and_then(|d| d.as_object_mut()) {
                dims.insert("lnurl".into(), verdict.name().into());
            }
        }
    }
}
