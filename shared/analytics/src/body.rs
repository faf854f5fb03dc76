//! How large one response may be: an answer sent at once, or one page of a job's answer.
//! The query function and the job worker read the same variable.

/// Under the 6 MB a Lambda behind API Gateway may return.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5_000_000;

/// Room left in a page of a job's answer for what is sent around it (the job's status or
/// the page's own fields).
const PAGE_ENVELOPE_BYTES: usize = 4_096;

/// `NA_QUERY_MAX_BODY_BYTES`, else [`DEFAULT_MAX_BODY_BYTES`].
///
/// # Errors
/// A value that is not a positive number, naming the variable.
pub fn max_body_bytes(var: &dyn Fn(&str) -> Option<String>) -> Result<usize, String> {
    match var("NA_QUERY_MAX_BODY_BYTES") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > PAGE_ENVELOPE_BYTES)
            .ok_or_else(|| {
                format!("NA_QUERY_MAX_BODY_BYTES={v}: not a number over {PAGE_ENVELOPE_BYTES}")
            }),
        None => Ok(DEFAULT_MAX_BODY_BYTES),
    }
}

/// The largest page of a job's answer when no response may be over `max_body_bytes`.
pub fn page_bytes(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_sub(PAGE_ENVELOPE_BYTES).max(1)
}
