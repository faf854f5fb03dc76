//! Ingest settings, read once from the environment.

use std::time::Duration;

use crate::{Error, Result};

/// How ingest talks to relays and writes batches. Every field has an environment variable.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// `INGEST_RELAYS`: comma-separated relay URLs.
    pub relays: Vec<String>,
    /// `INGEST_OVERLAP_SECS` (3600): catch-up re-scans this far behind each watermark, which
    /// recovers events that reached the relay late or while ingest was down.
    pub overlap: Duration,
    /// `INGEST_LOOKBACK_SECS` (3600; `all` for the whole history): where catch-up starts
    /// for a relay that has no watermark yet.
    pub lookback: Option<Duration>,
    /// `INGEST_PAGE_LIMIT` (500): `limit` of each catch-up or backfill request.
    pub page_limit: usize,
    /// `INGEST_BATCH_SIZE` (2000): events per write transaction.
    pub batch_size: usize,
    /// `INGEST_RUN_SECS` (840): how long one run keeps its live subscription (a Lambda run
    /// must end within 15 minutes; the next scheduled run carries on from the watermark).
    pub run_for: Duration,
    /// `INGEST_REQUEST_TIMEOUT_SECS` (30): longest wait for one page.
    pub request_timeout: Duration,
    /// `INGEST_RECONNECT_SECS` (10): wait between reconnection attempts to a lost relay.
    pub reconnect: Duration,
    /// `INGEST_NEGENTROPY_SECS` (172800; 0 turns it off): after each catch-up, reconcile
    /// this far back with NIP-77 where the relay supports it. It finds what time-based
    /// re-scans cannot: events published while ingest was down with a `created_at` older
    /// than the overlap.
    pub negentropy_window: Option<Duration>,
    /// `INGEST_LNURL_CHECK` (`on`; `off`): NIP-57's check that a zap receipt was signed by
    /// the recipient's LNURL server, stored as the zap's `lnurl` dimension. Lookups time out
    /// after `INGEST_LNURL_TIMEOUT_SECS` (5) and are cached (answers 24 h, failures 10 min);
    /// private and loopback addresses are refused unless `INGEST_LNURL_ALLOW_PRIVATE=true`
    /// (local development only). `IngestConfig::default()` leaves the check off.
    pub lnurl: Option<na_lnurl::CachedResolver>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            relays: Vec::new(),
            overlap: Duration::from_secs(3600),
            lookback: Some(Duration::from_secs(3600)),
            page_limit: 500,
            batch_size: 2000,
            run_for: Duration::from_secs(840),
            request_timeout: Duration::from_secs(30),
            reconnect: Duration::from_secs(10),
            negentropy_window: Some(Duration::from_secs(2 * 86_400)),
            lnurl: None,
        }
    }
}

impl IngestConfig {
    /// From the function's variables (`INGEST_*`, as the README lists them) over the
    /// defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that does not parse.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = IngestConfig::default();
        let num = |key: &str, default: u64| -> Result<u64> {
            get(key).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::Config(format!("{key}={v:?} is not a whole number")))
            })
        };
        let flag = |key: &str, default: bool| -> Result<bool> {
            match get(key).as_deref().map(str::trim) {
                None => Ok(default),
                Some("on" | "true" | "1") => Ok(true),
                Some("off" | "false" | "0") => Ok(false),
                Some(v) => Err(Error::Config(format!("{key}={v:?} is not on or off"))),
            }
        };
        let relays = get("INGEST_RELAYS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let lookback = match get("INGEST_LOOKBACK_SECS") {
            Some(v) if v.trim() == "all" => None,
            _ => Some(Duration::from_secs(num("INGEST_LOOKBACK_SECS", 3600)?)),
        };
        Ok(IngestConfig {
            relays,
            overlap: Duration::from_secs(num("INGEST_OVERLAP_SECS", d.overlap.as_secs())?),
            lookback,
            page_limit: num("INGEST_PAGE_LIMIT", d.page_limit as u64)?.max(1) as usize,
            batch_size: num("INGEST_BATCH_SIZE", d.batch_size as u64)?.max(1) as usize,
            run_for: Duration::from_secs(num("INGEST_RUN_SECS", d.run_for.as_secs())?),
            request_timeout: Duration::from_secs(num(
                "INGEST_REQUEST_TIMEOUT_SECS",
                d.request_timeout.as_secs(),
            )?),
            reconnect: Duration::from_secs(
                num("INGEST_RECONNECT_SECS", d.reconnect.as_secs())?.max(1),
            ),
            negentropy_window: match num("INGEST_NEGENTROPY_SECS", 2 * 86_400)? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            lnurl: match flag("INGEST_LNURL_CHECK", true)? {
                false => None,
                true => Some(lnurl_resolver(
                    Duration::from_secs(num("INGEST_LNURL_TIMEOUT_SECS", 5)?.max(1)),
                    flag("INGEST_LNURL_ALLOW_PRIVATE", false)?,
                )?),
            },
        })
    }
}

/// The LNURL resolver ingest uses: HTTP behind a cache.
///
/// # Errors
/// [`Error::Config`] when the HTTP client cannot be built.
pub fn lnurl_resolver(timeout: Duration, allow_private: bool) -> Result<na_lnurl::CachedResolver> {
    let http = na_lnurl::HttpResolver::new(na_lnurl::HttpOptions {
        timeout,
        allow_private,
        ..Default::default()
    })
    .map_err(|e| Error::Config(format!("LNURL HTTP client: {e}")))?;
    Ok(na_lnurl::CachedResolver::new(
        std::sync::Arc::new(http),
        na_lnurl::CacheOptions::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_names_bad_variables() {
        let cfg = IngestConfig::from_lookup(|k| match k {
            "INGEST_RELAYS" => Some("ws://a, ws://b,".into()),
            "INGEST_LOOKBACK_SECS" => Some("all".into()),
            "INGEST_PAGE_LIMIT" => Some("50".into()),
            "INGEST_NEGENTROPY_SECS" => Some("0".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.relays, ["ws://a", "ws://b"]);
        assert_eq!(cfg.lookback, None);
        assert_eq!(cfg.page_limit, 50);
        assert_eq!(cfg.negentropy_window, None);
        assert!(cfg.lnurl.is_some(), "the LNURL check is on by default");
        let off = IngestConfig::from_lookup(|k| (k == "INGEST_LNURL_CHECK").then(|| "off".into()));
        assert!(off.unwrap().lnurl.is_none());
        let err =
            IngestConfig::from_lookup(|k| (k == "INGEST_LNURL_CHECK").then(|| "maybe".into()))
                .unwrap_err();
        assert!(err.to_string().contains("INGEST_LNURL_CHECK"), "{err}");
        assert_eq!(
            IngestConfig::from_lookup(|_| None)
                .unwrap()
                .negentropy_window,
            Some(Duration::from_secs(172_800))
        );
        let err = IngestConfig::from_lookup(|k| (k == "INGEST_BATCH_SIZE").then(|| "lots".into()))
            .unwrap_err();
        assert!(err.to_string().contains("INGEST_BATCH_SIZE"), "{err}");
    }
}
