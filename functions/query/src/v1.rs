//! `/api/v1`: the legacy analytics route, kept answering during the rollout
//! (docs/rollout.md). Its flag decides per pubkey which path answers: `legacy` (the
//! window's facts aggregated now), `v2` (the summary through the response adapter) or
//! `dual` (both in one snapshot, the legacy answer served and every difference recorded).
//! The `x-analytics-path` header says which did.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use na_analytics::window::ROLLING;
use na_analytics::{LegacyRequest, QueryError, SummaryRequest, WindowRequest};
use na_api_types::{AnalyticsV1, Mode, V1_METRICS};
use na_rollout::{Evaluation, LIVE_EDGE_SECONDS, V1_SUMMARY_FLAG, compare, evaluate};
use na_storage::rollout::NewObservation;

use crate::ids::parse_pubkey;
use crate::request::{Params, RawParams, whole_number};
use crate::{ApiError, AppState};

/// The header every `/api/v1` answer carries: the path that produced it.
pub const PATH_HEADER: &str = "x-analytics-path";

/// What the dual run compares: the legacy fields' metrics, and the distinct counts whose
/// sketches v2 may estimate from.
const DUAL_METRICS: [&str; 11] = [
    V1_METRICS[0],
    V1_METRICS[1],
    V1_METRICS[2],
    V1_METRICS[3],
    V1_METRICS[4],
    V1_METRICS[5],
    V1_METRICS[6],
    V1_METRICS[7],
    V1_METRICS[8],
    "unique_engagers",
    "unique_zappers",
];

/// Days when neither `days` nor `since` is given.
const DEFAULT_DAYS: i64 = 7;

/// The window a v1 request asks for.
struct V1Window {
    from: i64,
    to: i64,
    days: Option<i64>,
}

impl V1Window {
    /// `days=N` (ending now), or `since=` and `until=` (Unix seconds; `until` defaults to
    /// now), each checked as a v2 custom window is.
    fn parse(params: &Params, now: i64) -> Result<Self, ApiError> {
        let number = |name: &str| {
            params
                .get(name)
                .map(|v| {
                    whole_number(v)
                        .and_then(|n| i64::try_from(n).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!("{name}={v:?} is not a whole number"))
                        })
                })
                .transpose()
        };
        let (days, since, until) = (number("days")?, number("since")?, number("until")?);
        let (from, to, days) = match (days, since, until) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either days= or since=/until=, not both",
                ));
            }
            (None, None, Some(_)) => {
                return Err(ApiError::bad_request("until= needs since="));
            }
            (None, Some(since), until) => (since, until.unwrap_or(now), None),
            (days, None, None) => {
                let days = days.unwrap_or(DEFAULT_DAYS);
                let max = na_analytics::window::MAX_WINDOW_SECONDS / 86_400;
                if !(1..=max).contains(&days) {
                    return Err(ApiError::bad_request(format!(
                        "days={days} is not between 1 and {max}"
                    )));
                }
                (now - days * 86_400, now, Some(days))
            }
        };
        let (from, to) = WindowRequest::Custom { from, to }.bounds(now)?;
        Ok(V1Window { from, to, days })
    }

    /// Its class, as the latency metrics and the drift report group windows: a rolling
    /// window's name for `days` of one, else the custom classes.
    fn class(&self) -> &'static str {
        let rolling = self.days.and_then(|d| {
            ROLLING
                .iter()
                .find(|(_, len)| *len == d * 86_400)
                .map(|(name, _)| *name)
        });
        na_telemetry::metrics::window_class(rolling, Some(self.to - self.from))
    }
}

/// The class of the window a v1 request names (`invalid` for one it refuses): its latency
/// label, as `request::window_class` gives v2's.
pub(crate) fn window_class(params: &Params) -> &'static str {
    V1Window::parse(params, Utc::now().timestamp()).map_or("invalid", |w| w.class())
}

/// `GET /api/v1/analytics/{pubkey}`.
pub(crate) async fn analytics(
    State(state): State<AppState>,
    Path(pubkey): Path<String>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    let params = Params::from_query(raw, &["days", "since", "until"])?;
    let subject = parse_pubkey(&pubkey)?;
    let hex = subject.to_hex();
    let now = Utc::now().timestamp();
    let window = V1Window::parse(&params, now)?;
    let evaluation = match state.flags.flag(V1_SUMMARY_FLAG).await? {
        Some(flag) => evaluate(&flag, &hex),
        // No flag row (a database migrated by hand?): the legacy path, as before v2.
        None => Evaluation {
            mode: Mode::Legacy,
            reason: na_rollout::Reason::Default,
            cohort: na_rollout::cohort(V1_SUMMARY_FLAG, &hex),
        },
    };
    let budget = state.policy.max_sync_rows;
    let legacy = LegacyRequest {
        subject: subject.to_bytes(),
        from: window.from,
        to: window.to,
        budget: Some(budget),
    };
    let v2 = |metrics: &[&str]| SummaryRequest {
        subject: subject.to_bytes(),
        window: WindowRequest::Custom {
            from: window.from,
            to: window.to,
        },
        metrics: Some(metrics.join(",")),
        now,
        budget: Some(budget),
    };
    let from_legacy = |values: &std::collections::BTreeMap<String, i64>| {
        AnalyticsV1::from_metrics(hex.clone(), (window.from, window.to), window.days, |m| {
            values.get(m).copied()
        })
    };
    let (answer, path) = match evaluation.mode {
        Mode::Legacy => (
            from_legacy(&within(state.engine.legacy(&legacy).await, budget)?.values),
            Mode::Legacy,
        ),
        Mode::V2 => (
            AnalyticsV1::from_summary(
                &within(state.engine.summary(&v2(&V1_METRICS)).await, budget)?,
                window.days,
            ),
            Mode::V2,
        ),
        Mode::Dual => match state.engine.dual(&legacy, &v2(&DUAL_METRICS)).await {
            Ok((old, new)) => {
                let compared = compare(&DUAL_METRICS, &old.values, &new);
                let cutoff = new.answer.as_of;
                let observation = NewObservation {
                    flag: V1_SUMMARY_FLAG,
                    pubkey: &hex,
                    cohort: i16::from(evaluation.cohort),
                    window_class: window.class(),
                    window: (new.window.requested_from, new.window.requested_to),
                    cutoff,
                    live_edge: window.to > cutoff.timestamp() - LIVE_EDGE_SECONDS,
                    metrics: compared.metrics,
                    differs: compared.differs,
                };
                // The user is answered whether or not the comparison could be kept.
                if let Err(e) = state.db.record_observation(&observation).await {
                    tracing::warn!(error = %e, "a dual-run comparison was not recorded");
                }
                (from_legacy(&old.values), Mode::Dual)
            }
            // The pair failed (v2's side, or both together over the budget): the user is
            // answered by the legacy path alone, as before the rollout, and says so.
            Err(e) => {
                tracing::warn!(error = %e, "the dual run failed; answered by the legacy path alone");
                (
                    from_legacy(&within(state.engine.legacy(&legacy).await, budget)?.values),
                    Mode::Legacy,
                )
            }
        },
    };
    let mut response = Json(answer).into_response();
    response
        .headers_mut()
        .insert(PATH_HEADER, HeaderValue::from_static(path.as_str()));
    Ok(response)
}

/// An answer of the v1 route, which is never a job: over the budget, a 400 asking for a
/// shorter window.
fn within<T>(answer: Result<T, QueryError>, budget: u64) -> Result<T, ApiError> {
    answer.map_err(|e| match e {
        QueryError::TooCostly { .. } => ApiError::bad_request(format!(
            "this window holds more than {budget} facts to read (NA_QUERY_MAX_SYNC_ROWS): \
             ask for fewer days"
        )),
        e => e.into(),
    })
}
