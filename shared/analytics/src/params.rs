//! A query as data: what a request or an async job asks the engine for. Jobs store it, so
//! a job answers the window as it was when it was asked (`now` is fixed at enqueue time).

use na_api_types::{QueryAnswer, SeriesFormat};
use na_domain::Granularity;
use serde::{Deserialize, Serialize};

use crate::engine::{BreakdownRequest, Engine, SeriesRequest, SummaryRequest};
use crate::note::NoteRequest;
use crate::{QueryError, WindowRequest};

/// A window as data: checked once, when the request is parsed; stored in a job as
/// `{rolling, from, to, now}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredWindow", into = "StoredWindow")]
pub struct WindowParams {
    /// `None`: no bounds given (a note's lifetime).
    pub request: Option<WindowRequest>,
    /// The instant a rolling window ends at.
    pub now: i64,
}

/// [`WindowParams`] as a job stores it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredWindow {
    /// A rolling window's name (`24h`, `7d`, …), or `None` for `[from, to)`.
    rolling: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    now: i64,
}

impl TryFrom<StoredWindow> for WindowParams {
    type Error = QueryError;

    fn try_from(w: StoredWindow) -> Result<Self, QueryError> {
        let request = match (w.rolling, w.from, w.to) {
            (None, None, None) => None,
            (Some(r), None, None) => Some(WindowRequest::rolling(&r)?),
            (None, Some(from), Some(to)) => Some(WindowRequest::Custom { from, to }),
            _ => {
                return Err(QueryError::bad(
                    "a window is either rolling or from and to, not both",
                ));
            }
        };
        Ok(WindowParams {
            request,
            now: w.now,
        })
    }
}

impl From<WindowParams> for StoredWindow {
    fn from(w: WindowParams) -> Self {
        let (rolling, from, to) = match w.request {
            None => (None, None, None),
            Some(WindowRequest::Rolling(name)) => (Some(name.to_owned()), None, None),
            Some(WindowRequest::Custom { from, to }) => (None, Some(from), Some(to)),
        };
        StoredWindow {
            rolling,
            from,
            to,
            now: w.now,
        }
    }
}

impl WindowParams {
    /// # Errors
    /// [`QueryError::BadRequest`] when no window was given.
    pub fn request(&self) -> Result<WindowRequest, QueryError> {
        self.request
            .clone()
            .ok_or_else(|| QueryError::bad("this route needs a window"))
    }
}

/// 32 bytes (a pubkey, an event id), hex in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hex32(pub [u8; 32]);

impl TryFrom<String> for Hex32 {
    type Error = QueryError;

    fn try_from(s: String) -> Result<Self, QueryError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|_| QueryError::bad(format!("{s:?} is not 64 hex digits")))?;
        Ok(Hex32(out))
    }
}

impl From<Hex32> for String {
    fn from(h: Hex32) -> Self {
        hex::encode(h.0)
    }
}

/// What to answer, as stored in a query job's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "route", rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryParams {
    Summary {
        pubkey: Hex32,
        window: WindowParams,
        metrics: Option<String>,
    },
    Timeseries {
        pubkey: Hex32,
        window: WindowParams,
        metrics: Option<String>,
        granularity: Granularity,
        /// Absent in jobs stored before it existed: points.
        #[serde(default, skip_serializing_if = "SeriesFormat::is_points")]
        format: SeriesFormat,
    },
    Breakdown {
        pubkey: Hex32,
        window: WindowParams,
        metric: String,
        dimension: String,
        top: usize,
    },
    Note {
        event_id: Hex32,
        /// No bounds: the note's lifetime.
        window: WindowParams,
        metrics: Option<String>,
        granularity: Option<Granularity>,
        top: usize,
    },
}

impl Engine {
    /// Answers `params`, within `budget` (see [`QueryError::TooCostly`]).
    ///
    /// # Errors
    /// As [`Engine::summary`], [`Engine::timeseries`], [`Engine::breakdown`], [`Engine::note`].
    pub async fn run(
        &self,
        params: &QueryParams,
        budget: Option<u64>,
    ) -> Result<QueryAnswer, QueryError> {
        match params {
            QueryParams::Summary {
                pubkey,
                window,
                metrics,
            } => {
                let req = SummaryRequest {
                    subject: pubkey.0,
                    window: window.request()?,
                    metrics: metrics.clone(),
                    now: window.now,
                    budget,
                };
                Ok(QueryAnswer::Summary(self.summary(&req).await?))
            }
            QueryParams::Timeseries {
                pubkey,
                window,
                metrics,
                granularity,
                format,
            } => {
                let req = SeriesRequest {
                    subject: pubkey.0,
                    window: window.request()?,
                    metrics: metrics.clone(),
                    granularity: *granularity,
                    now: window.now,
                    budget,
                };
                let series = self.timeseries(&req).await?;
                Ok(match format {
                    SeriesFormat::Points => QueryAnswer::TimeSeries(series),
                    SeriesFormat::Compact => QueryAnswer::CompactTimeSeries(series.into()),
                })
            }
            QueryParams::Breakdown {
                pubkey,
                window,
                metric,
                dimension,
                top,
            } => {
                let req = BreakdownRequest {
                    subject: pubkey.0,
                    window: window.request()?,
                    metric: metric.clone(),
                    dimension: dimension.clone(),
                    top: *top,
                    now: window.now,
                    budget,
                };
                Ok(QueryAnswer::Breakdown(self.breakdown(&req).await?))
            }
            QueryParams::Note {
                event_id,
                window,
                metrics,
                granularity,
                top,
            } => {
                let req = NoteRequest {
                    event_id: event_id.0,
                    window: window.request.clone(),
                    metrics: metrics.clone(),
                    granularity: *granularity,
                    top: *top,
                    now: window.now,
                    budget,
                };
                Ok(QueryAnswer::Note(self.note(&req).await?))
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
            pubkey: Hex32([0xab; 32]),
            window: WindowParams {
                request: Some(WindowRequest::rolling("7d").unwrap()),
                now: 1_800_000_000,
            },
            metrics: None,
            granularity: Granularity::Hour,
            format: SeriesFormat::Points,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["route"], "timeseries");
        assert_eq!(v["pubkey"], "ab".repeat(32));
        assert_eq!(
            v["window"],
            serde_json::json!({"rolling": "7d", "from": null, "to": null, "now": 1_800_000_000})
        );
        assert_eq!(v["granularity"], "hour");
        assert_eq!(serde_json::from_value::<QueryParams>(v.clone()).unwrap(), p);
        // What a job row holds is checked as a request is.
        for (field, bad) in [
            ("pubkey", serde_json::json!("zz")),
            ("window", serde_json::json!({"rolling": "8d", "now": 1})),
            (
                "window",
                serde_json::json!({"rolling": "7d", "from": 1, "now": 1}),
            ),
        ] {
            let mut w = v.clone();
            w[field] = bad;
            assert!(serde_json::from_value::<QueryParams>(w).is_err(), "{field}");
        }
    }
}
