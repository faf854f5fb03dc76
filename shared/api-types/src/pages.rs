//! A job's answer in pages no larger than a response may be (a Lambda behind API Gateway
//! returns at most 6 MB): a time series is cut into runs of whole buckets, every page a
//! valid answer of the same shape; [`QueryAnswer::join_pages`] puts them back together.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CompactSeries, CompactTimeSeries, QueryAnswer, TimeSeries};

/// `GET /api/v2/analytics/jobs/{id}/result?page=N`: one page of a job's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResultPage {
    pub job_id: Uuid,
    /// From 1.
    pub page: u32,
    pub pages: u32,
    /// The next page's URL (also the `Link: <…>; rel="next"` header); absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// A [`QueryAnswer`]: a time series holds this page's buckets only, in order.
    pub result: serde_json::Value,
}

/// An answer that no cut brings under the limit: one bucket of it, or a kind of answer
/// that is never cut (a summary, a breakdown, a note), is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub bytes: usize,
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer is {} bytes and cannot be cut into pages of at most {} bytes; ask for fewer metrics or a shorter window",
            self.bytes, self.limit
        )
    }
}

impl std::error::Error for TooLarge {}

fn size(answer: &QueryAnswer) -> usize {
    serde_json::to_vec(answer).map_or(usize::MAX, |b| b.len())
}

impl QueryAnswer {
    /// The answer as pages each serializing to at most `limit` bytes, in order; itself
    /// alone when it fits.
    ///
    /// # Errors
    /// [`TooLarge`] when no cut fits: the answer is not a time series, or one of its
    /// buckets alone is over `limit`.
    pub fn into_pages(self, limit: usize) -> Result<Vec<QueryAnswer>, TooLarge> {
        let bytes = size(&self);
        if bytes <= limit {
            return Ok(vec![self]);
        }
        let buckets = match &self {
            QueryAnswer::TimeSeries(ts) => ts.series.iter().map(|s| s.points.len()).max(),
            QueryAnswer::CompactTimeSeries(ts) => Some(ts.t.len()),
            _ => None,
        }
        .unwrap_or(0);
        // Buckets weigh about the same: start from the even cut the size asks for, and cut
        // finer until every page fits.
        let mut count = bytes.div_ceil(limit).max(2);
        while count <= buckets {
            let per_page = buckets.div_ceil(count);
            let pages: Vec<QueryAnswer> = (0..buckets)
                .step_by(per_page)
                .map(|start| self.buckets(start..(start + per_page).min(buckets)))
                .collect();
            match pages.iter().map(size).max() {
                Some(largest) if largest <= limit => return Ok(pages),
                _ if per_page == 1 => break,
                _ => count = (count * 2).min(buckets),
            }
        }
        Err(TooLarge { bytes, limit })
    }

    /// The same answer with only the buckets in `range` (a time series).
    fn buckets(&self, range: std::ops::Range<usize>) -> QueryAnswer {
        match self {
            QueryAnswer::TimeSeries(ts) => {
                let mut page = ts.clone();
                for s in &mut page.series {
                    s.points = s.points.get(range.clone()).unwrap_or_default().to_vec();
                }
                QueryAnswer::TimeSeries(page)
            }
            QueryAnswer::CompactTimeSeries(ts) => {
                let series = ts
                    .series
                    .iter()
                    .map(|s| {
                        let (inexact, relative_errors) = s
                            .inexact
                            .iter()
                            .zip(&s.relative_errors)
                            .filter(|(i, _)| range.contains(i))
                            .map(|(i, e)| (i - range.start, *e))
                            .unzip();
                        CompactSeries {
                            metric: s.metric.clone(),
                            values: s.values.get(range.clone()).unwrap_or_default().to_vec(),
                            inexact,
                            relative_errors,
                            error: s.error.clone(),
                        }
                    })
                    .collect();
                QueryAnswer::CompactTimeSeries(CompactTimeSeries {
                    pubkey: ts.pubkey.clone(),
                    window: ts.window.clone(),
                    t: ts.t[range].to_vec(),
                    series,
                    answer: ts.answer.clone(),
                })
            }
            other => other.clone(),
        }
    }

    /// The answer the pages of [`QueryAnswer::into_pages`] were cut from: the first page
    /// with every later page's buckets appended. `None` for no pages.
    pub fn join_pages(pages: impl IntoIterator<Item = QueryAnswer>) -> Option<QueryAnswer> {
        let mut pages = pages.into_iter();
        let mut whole = pages.next()?;
        for page in pages {
            match (&mut whole, page) {
                (QueryAnswer::TimeSeries(whole), QueryAnswer::TimeSeries(page)) => {
                    append_points(whole, page);
                }
                (QueryAnswer::CompactTimeSeries(whole), QueryAnswer::CompactTimeSeries(page)) => {
                    let offset = whole.t.len();
                    whole.t.extend(page.t);
                    for (s, p) in whole.series.iter_mut().zip(page.series) {
                        s.values.extend(p.values);
                        s.inexact.extend(p.inexact.into_iter().map(|i| i + offset));
                        s.relative_errors.extend(p.relative_errors);
                    }
                }
                _ => {}
            }
        }
        Some(whole)
    }
}

fn append_points(whole: &mut TimeSeries, page: TimeSeries) {
    for (s, p) in whole.series.iter_mut().zip(page.series) {
        s.points.extend(p.points);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use chrono::{TimeZone, Utc};
    use na_domain::Granularity;

    use super::*;
    use crate::{
        Answer, Backfill, Completeness, MetricRef, MetricSeries, Point, ResolvedWindow, Rounded,
        SeriesWindow,
    };

    fn series(buckets: i64, metrics: usize) -> TimeSeries {
        let start = Utc.timestamp_opt(1_700_000_000 / 60 * 60, 0).unwrap();
        let metric = |i: usize| MetricRef {
            id: format!("m{i}@1"),
            metric: format!("m{i}"),
            version: 1,
            plugin: "core@1".into(),
            aggregation: "sum".into(),
            unit: "count".into(),
        };
        TimeSeries {
            pubkey: "ab".repeat(32),
            window: SeriesWindow {
                resolved: ResolvedWindow {
                    from: start,
                    to: start + chrono::TimeDelta::minutes(buckets),
                    rolling: None,
                    requested_from: start,
                    requested_to: start + chrono::TimeDelta::minutes(buckets),
                    rounded: Rounded::default(),
                    tiles: Vec::new(),
                    facts: Vec::new(),
                },
                granularity: Granularity::Minute,
                points: buckets,
            },
            series: (0..metrics)
                .map(|m| MetricSeries {
                    metric: metric(m),
                    // Every seventh point an estimate, one metric failed.
                    points: if m == 1 {
                        Vec::new()
                    } else {
                        (0..buckets)
                            .map(|i| Point {
                                at: start + chrono::TimeDelta::minutes(i),
                                value: (i % 5 != 0).then_some(i * (m as i64 + 1)),
                                exact: i % 7 != 0,
                                relative_error: (i % 7 == 0).then_some(0.01),
                            })
                            .collect()
                    },
                    error: (m == 1).then(|| "plugin failed".to_owned()),
                })
                .collect(),
            answer: Answer {
                as_of: start,
                replayed_to: None,
                watermarks: Vec::new(),
                completeness: Completeness {
                    backfill: Backfill::Succeeded,
                    backfill_job: None,
                    backfill_progress: None,
                    exact: false,
                    missing_before: None,
                },
            },
        }
    }

    #[test]
    fn pages_fit_the_limit_and_join_back_to_the_answer() {
        let points = QueryAnswer::TimeSeries(series(1_000, 4));
        let compact = QueryAnswer::CompactTimeSeries(series(1_000, 4).into());
        for whole in [points, compact] {
            let bytes = size(&whole);
            for limit in [bytes, bytes / 2, bytes / 7, 2_000] {
                let pages = whole.clone().into_pages(limit).unwrap();
                assert!(pages.iter().all(|p| size(p) <= limit), "limit {limit}");
                assert_eq!(pages.len() == 1, limit >= bytes, "limit {limit}");
                assert_eq!(
                    QueryAnswer::join_pages(pages).unwrap(),
                    whole,
                    "limit {limit}"
                );
            }
        }
    }

    #[test]
    fn a_compact_page_indexes_its_own_estimates() {
        let whole = QueryAnswer::CompactTimeSeries(series(100, 1).into());
        let pages = whole.into_pages(1_000).unwrap();
        let QueryAnswer::CompactTimeSeries(second) = &pages[1] else {
            panic!("not compact");
        };
        let s = &second.series[0];
        assert_eq!(s.inexact.len(), s.relative_errors.len());
        for i in &s.inexact {
            // A page's index is into its own t: the point at t[i] is one of every seventh.
            let minute = (second.t[*i] - second.window.resolved.from.timestamp()) / 60;
            assert_eq!(minute % 7, 0, "index {i}");
        }
    }

    #[test]
    fn what_cannot_be_cut_is_too_large() {
        let whole = QueryAnswer::TimeSeries(series(10, 64));
        let one_bucket = size(&whole.clone().into_pages(usize::MAX).unwrap()[0]) / 10;
        let err = whole.into_pages(one_bucket / 4).unwrap_err();
        assert!(
            err.to_string().contains("cannot be cut into pages"),
            "{err}"
        );
    }
}
