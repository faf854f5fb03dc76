//! The query path (docs/query-api.md): a window is resolved to whole buckets and tiled with
//! the coarsest buckets retention kept; the snapshot comes from those buckets, the live
//! delta from the fact-log rows compaction has not applied yet, run through the same plugin
//! version; both are read in one repeatable-read snapshot, so an answer counts every fact
//! exactly once however far compaction has got.

mod engine;
mod error;
mod merge;
mod note;
mod params;
mod selection;
pub mod window;

pub use engine::{
    Answer, Breakdown, BreakdownRequest, BreakdownRow, Completeness, Engine, MAX_POINTS, MetricRef,
    MetricSeries, MetricValue, PluginWatermark, Point, SeriesRequest, Summary, SummaryRequest,
    TimeSeries,
};
pub use error::QueryError;
pub use note::{DimensionBreakdown, NoteDrilldown, NoteMetric, NoteRequest};
pub use params::{QueryParams, WindowParams};
pub use selection::select_metrics;
pub use window::{ResolvedWindow, SeriesWindow, WindowRequest};
