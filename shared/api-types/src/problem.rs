//! Every error: an RFC 9457 problem body (`application/problem+json`).

use serde::{Deserialize, Serialize};

use crate::Component;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `https://nostr-analytics.dev/problems/{slug}`: what kind of problem, for programs.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong and what to change, for people.
    pub detail: String,
    /// `/health`'s 503: every component, the stalled ones marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<Component>>,
}
