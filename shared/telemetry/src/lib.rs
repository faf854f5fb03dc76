//! What every function's wiring shares: one tracing set-up (from the Lambda variables
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`, which wins, as the
//! function's configuration read them), and the invocation deadline as an [`Instant`] work
//! can be bounded by; and what the service measures (`metrics`), its objectives (`slo`)
//! and where the measurements go (`export`).

pub mod emf;
pub mod export;
pub mod metrics;
pub mod slo;

pub use export::{Emf, PeriodicFlush, Prometheus};

use std::time::{Duration, Instant, SystemTime};

use tracing_subscriber::EnvFilter;

/// How logs are filtered and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// An `EnvFilter` directive.
    pub filter: String,
    /// One JSON object per line (as Lambda's JSON log format wants), else compact text.
    pub json: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            filter: default_filter("info"),
            json: false,
        }
    }
}

/// `level`, with the relay pool's per-message errors kept out (ingest counts them instead).
fn default_filter(level: &str) -> String {
    format!(
        "{level},nostr_relay_pool=warn,nostr_relay_builder=warn,nostr_relay_pool::relay::inner=off"
    )
}

impl LogSettings {
    /// `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL` (default `info`); `AWS_LAMBDA_LOG_FORMAT=JSON`.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let filter = var("RUST_LOG").unwrap_or_else(|| {
            default_filter(
                &var("AWS_LAMBDA_LOG_LEVEL").map_or_else(|| "info".into(), |l| l.to_lowercase()),
            )
        });
        LogSettings {
            filter,
            json: var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
        }
    }
}

/// Installs the global subscriber; a second call does nothing.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| EnvFilter::new(default_filter("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if settings.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// The instant an invocation must be done by, from its context's deadline (milliseconds
/// since the Unix epoch, `lambda_runtime::Context::deadline`); a deadline already past is
/// now.
pub fn deadline(epoch_millis: u64) -> Instant {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(epoch_millis);
    Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_as_far_off_as_its_epoch_instant() {
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let millis = in_a_minute
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let left = deadline(u64::try_from(millis).unwrap_or(u64::MAX)) - Instant::now();
        assert!(
            left > Duration::from_secs(59) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        assert!(deadline(0) <= Instant::now(), "a past deadline is now");
    }
}
