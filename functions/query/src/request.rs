//! Where a request is parsed: query parameters read and checked once (window, instants,
//! granularity, `top`, the route's own parameters, unknown ones refused), each mistake a
//! problem body that names it, into the typed [`QueryParams`] the engine and jobs take.

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use chrono::{DateTime, Utc};
use na_analytics::{
    DEFAULT_ENGAGERS_METRIC, DEFAULT_TOP_NOTES_METRIC, EngagersRequest, Hex32, QueryParams,
    TopNotesRequest, WindowParams, WindowRequest,
};
use na_api_types::SeriesFormat;
use na_domain::Granularity;

use crate::ApiError;
use crate::ids::{parse_event_id, parse_pubkey};

pub(crate) type RawParams = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Query parameters, checked by hand so a mistake gets a problem body that names it.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn from_query(raw: RawParams, allowed: &[&str]) -> Result<Self, ApiError> {
        let Query(raw) = raw.map_err(|e| {
            ApiError::bad_request(format!("the query string is malformed: {}", e.body_text()))
        })?;
        Self::new(raw, allowed)
    }

    pub(crate) fn new(raw: HashMap<String, String>, allowed: &[&str]) -> Result<Self, ApiError> {
        if let Some(unknown) = raw.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {unknown:?}; this route takes {}",
                allowed.join(", ")
            )));
        }
        Ok(Params(raw))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `window=` (rolling) or `from=`/`to=` (custom; `to` defaults to now); when none, the
    /// rolling window `default`, or no bounds.
    fn window(&self, default: Option<&str>) -> Result<WindowParams, ApiError> {
        let now = Utc::now().timestamp();
        let request = match (self.get("window"), self.get("from"), self.get("to")) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either window= (rolling) or from=/to= (custom), not both",
                ));
            }
            (Some(w), None, None) => Some(WindowRequest::rolling(w)?),
            (None, None, None) => default.map(WindowRequest::rolling).transpose()?,
            (None, None, Some(_)) => {
                return Err(ApiError::bad_request(
                    "to= needs from= (a custom window is [from, to))",
                ));
            }
            (None, Some(from), to) => Some(WindowRequest::Custom {
                from: instant("from", from)?,
                to: to.map_or(Ok(now), |t| instant("to", t))?,
            }),
        };
        Ok(WindowParams { request, now })
    }
}

/// The window a request names, as its latency label (`na_telemetry::metrics::window_class`),
/// read by the same rules as the handlers read it; `invalid` for one they refuse.
pub(crate) fn window_class(uri: &axum::http::Uri) -> &'static str {
    let Ok(Query(raw)) = Query::<HashMap<String, String>>::try_from_uri(uri) else {
        return "invalid";
    };
    if uri.path().starts_with("/api/v1/") {
        return crate::v1::window_class(&Params(raw));
    }
    let Ok(window) = Params(raw).window(None) else {
        return "invalid";
    };
    match window.request {
        None => na_telemetry::metrics::window_class(None, None),
        Some(request) => match request.bounds(window.now) {
            Err(_) => "invalid",
            Ok((from, to)) => match request {
                WindowRequest::Rolling(name) => {
                    na_telemetry::metrics::window_class(Some(name), None)
                }
                WindowRequest::Custom { .. } => {
                    na_telemetry::metrics::window_class(None, Some(to - from))
                }
            },
        },
    }
}

/// Digits only, as a number: no sign, no spaces (what the OpenAPI document's integers and
/// patterns allow, and nothing else).
pub(crate) fn whole_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An instant as RFC 3339 or Unix seconds (digits only).
fn instant(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Some(secs) = whole_number(s) {
        return i64::try_from(secs).map_err(|_| {
            ApiError::bad_request(format!("{name}={s} is outside the instants answered"))
        });
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}={s:?} is not an instant: give RFC 3339 (2026-01-31T00:00:00Z) or Unix seconds"
            ))
        })
}

fn granularity(s: Option<&str>) -> Result<Option<Granularity>, ApiError> {
    match s {
        None => Ok(None),
        Some("minute") => Ok(Some(Granularity::Minute)),
        Some("hour") => Ok(Some(Granularity::Hour)),
        Some("day") => Ok(Some(Granularity::Day)),
        Some("month") => Ok(Some(Granularity::Month)),
        Some(other) => Err(ApiError::bad_request(format!(
            "granularity={other:?} is not one of minute, hour, day, month"
        ))),
    }
}

fn series_format(s: Option<&str>) -> Result<SeriesFormat, ApiError> {
    match s {
        None | Some("points") => Ok(SeriesFormat::Points),
        Some("compact") => Ok(SeriesFormat::Compact),
        Some(other) => Err(ApiError::bad_request(format!(
            "format={other:?} is not one of points, compact"
        ))),
    }
}

fn top(s: Option<&str>, default: usize) -> Result<usize, ApiError> {
    let Some(t) = s else {
        return Ok(default);
    };
    whole_number(t)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_TOP).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!("top={t:?} must be a number from 1 to {MAX_TOP}"))
        })
}

/// The query a route's parameters ask for; `target` is the path's pubkey, or event id for
/// `note`.
pub(crate) fn query_params(
    route: &str,
    target: &str,
    params: &Params,
) -> Result<QueryParams, ApiError> {
    let metrics = params.get("metrics").map(str::to_owned);
    if route == "note" {
        return Ok(QueryParams::Note {
            event_id: Hex32(parse_event_id(target)?.to_bytes()),
            window: params.window(None)?,
            metrics,
            granularity: granularity(params.get("granularity"))?,
            top: top(params.get("top"), 5)?,
        });
    }
    let pubkey = Hex32(parse_pubkey(target)?.to_bytes());
    let window = params.window(Some("30d"))?;
    match route {
        "summary" => Ok(QueryParams::Summary {
            pubkey,
            window,
            metrics,
        }),
        "timeseries" => Ok(QueryParams::Timeseries {
            pubkey,
            window,
            metrics,
            granularity: granularity(params.get("granularity"))?.unwrap_or(Granularity::Day),
            format: series_format(params.get("format"))?,
        }),
        "breakdown" => {
            let required = |name: &str| {
                params.get(name).map(str::to_owned).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{name}= is required (GET /api/v2/analytics/metrics lists metrics and their dimensions)"
                    ))
                })
            };
            Ok(QueryParams::Breakdown {
                pubkey,
                window,
                metric: required("metric")?,
                dimension: required("dimension")?,
                top: top(params.get("top"), 10)?,
            })
        }
        other => Err(ApiError::bad_request(format!(
            "route {other:?} is not one of summary, timeseries, breakdown, note"
        ))),
    }
}

/// `GET …/users/{pubkey}/engagers`: of `metric` (default `unique_engagers`), the `top`
/// (default 10) over the window (default 30d, or with `note=` the note's lifetime), reading
/// at most `budget` facts.
pub(crate) fn engagers_request(
    target: &str,
    params: &Params,
    budget: u64,
) -> Result<EngagersRequest, ApiError> {
    let window = params.window(None)?;
    Ok(EngagersRequest {
        subject: parse_pubkey(target)?.to_bytes(),
        note: params
            .get("note")
            .map(|id| parse_event_id(id).map(|id| id.to_bytes()))
            .transpose()?,
        window: window.request,
        metric: params
            .get("metric")
            .unwrap_or(DEFAULT_ENGAGERS_METRIC)
            .to_owned(),
        top: top(params.get("top"), 10)?,
        now: window.now,
        budget: Some(budget),
    })
}

/// `GET …/users/{pubkey}/notes`: the `top` (default 10) of the pubkey's events by `metric`
/// (default `reactions_received`) over the window (default 30d), reading at most `budget`
/// facts.
pub(crate) fn top_notes_request(
    target: &str,
    params: &Params,
    budget: u64,
) -> Result<TopNotesRequest, ApiError> {
    let window = params.window(None)?;
    Ok(TopNotesRequest {
        subject: parse_pubkey(target)?.to_bytes(),
        window: window.request,
        metric: params
            .get("metric")
            .unwrap_or(DEFAULT_TOP_NOTES_METRIC)
            .to_owned(),
        top: top(params.get("top"), 10)?,
        now: window.now,
        budget: Some(budget),
    })
}

/// The parameters each route takes.
pub(crate) fn allowed(route: &str) -> &'static [&'static str] {
    match route {
        "timeseries" => &["window", "from", "to", "metrics", "granularity", "format"],
        "breakdown" => &["window", "from", "to", "metric", "dimension", "top"],
        "engagers" => &["window", "from", "to", "metric", "top", "note"],
        "notes" => &["window", "from", "to", "metric", "top"],
        "note" => &["window", "from", "to", "metrics", "granularity", "top"],
        _ => &["window", "from", "to", "metrics"],
    }
}

/// The most rows a breakdown returns.
const MAX_TOP: usize = 100;
