//! A query as data: what a request or an async job asks the engine for. Jobs store it, so
//! a job answers the window as it was when it was asked (`now` is fixed at enqueue time).

use na_domain::Granularity;
use serde::{Deserialize, Serialize};

use crate::engine::{BreakdownRequest, Engine, SeriesRequest, SummaryRequest};
use crate::note::NoteRequest;
use crate::{QueryError, WindowRequest};

/// A window as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowParams {
    /// A rolling window's name (`24h`, `7d`, …), or `None` for `[from, to)`.
    pub rolling: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The instant a rolling window ends at.
    pub now: i64,
}

impl WindowParams {
    /// # Errors
    /// [`QueryError::BadRequest`] for an unknown rolling window or missing bounds.
    pub fn request(&self) -> Result<WindowRequest, QueryError> {
        match (&self.rolling, self.from, self.to) {
            (Some(r), None, None) => WindowRequest::rolling(r),
            (None, Some(from), Some(to)) => Ok(WindowRequest::Custom { from, to }),
            _ => Err(QueryError::bad(
                "a window is either rolling or from and to, not both",
            )),
        }
    }

    /// As [`WindowParams::request`], `None` when no window was given.
    ///
    /// # Errors
    /// As [`WindowParams::request`].
    pub fn request_if_any(&self) -> Result<Option<WindowRequest>, QueryError> {
        if self.rolling.is_none() && self.from.is_none() && self.to.is_none() {
            return Ok(None);
        }
        self.request().map(Some)
    }
}

/// What to answer, as stored in a query job's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "route", rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryParams {
    Summary {
        /// Hex.
        pubkey: String,
        window: WindowParams,
        metrics: Option<String>,
    },
    Timeseries {
        pubkey: String,
        window: WindowParams,
        metrics: Option<String>,
        granularity: Granularity,
    },
    Breakdown {
        pubkey: String,
        window: WindowParams,
        metric: String,
        dimension: String,
        top: usize,
    },
    Note {
        /// Hex.
        event_id: String,
        /// No bounds: the note's lifetime.
        window: WindowParams,
        metrics: Option<String>,
        granularity: Option<Granularity>,
        top: usize,
    },
}

fn subject(hex_key: &str) -> Result<[u8; 32], QueryError> {
    hex32(hex_key, "pubkey")
}

fn hex32(hex_key: &str, what: &str) -> Result<[u8; 32], QueryError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut out)
        .map_err(|_| QueryError::bad(format!("{what} {hex_key:?} is not 64 hex digits")))?;
    Ok(out)
}

impl Engine {
    /// Answers `params` as JSON, within `budget` (see [`QueryError::TooCostly`]).
    ///
    /// # Errors
    /// As [`Engine::summary`], [`Engine::timeseries`], [`Engine::breakdown`], [`Engine::note`].
    pub async fn run(
        &self,
        params: &QueryParams,
        budget: Option<u64>,
    ) -> Result<serde_json::Value, QueryError> {
        let json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| QueryError::bad(format!("unserializable answer: {e}")))
        };
        match params {
            QueryParams::Summary {
                pubkey,
                window,
                metrics,
            } => {
                let req = SummaryRequest {
                    subject: subject(pubkey)?,
                    window: window.request()?,
                    metrics: metrics.clone(),
                    now: window.now,
                    budget,
                };
                json(serde_json::to_value(self.summary(&req).await?))
            }
            QueryParams::Timeseries {
                pubkey,
                window,
                metrics,
                granularity,
            } => {
                let req = SeriesRequest {
                    subject: subject(pubkey)?,
                    window: window.request()?,
                    metrics: metrics.clone(),
                    granularity: *granularity,
                    now: window.now,
                    budget,
                };
                json(serde_json::to_value(self.timeseries(&req).await?))
            }
            QueryParams::Breakdown {
                pubkey,
                window,
                metric,
                dimension,
                top,
            } => {
                let req = BreakdownRequest {
                    subject: subject(pubkey)?,
                    window: window.request()?,
                    metric: metric.clone(),
                    dimension: dimension.clone(),
                    top: *top,
                    now: window.now,
                    budget,
                };
                json(serde_json::to_value(self.breakdown(&req).await?))
            }
            QueryParams::Note {
                event_id,
                window,
                metrics,
                granularity,
                top,
            } => {
                let req = NoteRequest {
                    event_id: hex32(event_id, "event id")?,
                    window: window.request_if_any()?,
                    metrics: metrics.clone(),
                    granularity: *granularity,
                    top: *top,
                    now: window.now,
                    budget,
                };
                json(serde_json::to_value(self.note(&req).await?))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_as_job_parameters() {
        let p = QueryParams::Timeseries {
            pubkey: "ab".repeat(32),
            window: WindowParams {
                rolling: Some("7d".into()),
                from: None,
                to: None,
                now: 1_800_000_000,
            },
            metrics: None,
            granularity: Granularity::Hour,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["route"], "timeseries");
        assert_eq!(v["granularity"], "hour");
        assert_eq!(serde_json::from_value::<QueryParams>(v).unwrap(), p);
        assert!(subject("zz").is_err());
    }
}
