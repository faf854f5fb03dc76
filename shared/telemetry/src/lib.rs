//! What every function's wiring shares: one tracing set-up (it honours the Lambda
//! variables `AWS_LAMBDA_LOG_FORMAT=JSON`, `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`, which
//! wins), and the invocation deadline as an [`Instant`] work can be bounded by.

use std::time::{Duration, Instant, SystemTime};

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call does nothing.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|_| "info".into());
    // nostr-relay-pool logs every rejected message at error level; ingest counts them instead.
    let default = format!(
        "{level},nostr_relay_pool=warn,nostr_relay_builder=warn,nostr_relay_pool::relay::inner=off"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
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
