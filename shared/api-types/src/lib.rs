//! What the HTTP API answers, route by route, as serde types. The engine builds these, the
//! query function sends them, and `functions/query/src/openapi.json` describes them; a
//! client (or a test) reads them back with the same types. Nothing here does I/O.
//!
//! | route | type |
//! |---|---|
//! | `GET …/users/{pubkey}/summary` | [`Summary`] |
//! | `GET …/users/{pubkey}/timeseries` | [`TimeSeries`], or with `format=compact` [`CompactTimeSeries`] |
//! | `GET …/users/{pubkey}/breakdown` | [`Breakdown`] |
//! | `GET …/users/{pubkey}/engagers` | [`Engagers`] |
//! | `GET …/users/{pubkey}/notes` | [`TopNotes`] |
//! | `GET …/notes/{event_id}` | [`NoteDrilldown`] |
//! | any of those, as a job's result | [`QueryAnswer`] |
//! | `GET …/metrics` | [`Catalog`] |
//! | `GET …/status`, `GET /health` | [`Status`], [`Health`] |
//! | `POST …/jobs`, a 202 | [`JobAccepted`] |
//! | `GET …/jobs/{id}` | [`QueryJob`] |
//! | `GET …/jobs/{id}/result?page=N` | [`JobResultPage`] |
//! | `POST …/users/{pubkey}/backfill`, a 202 | [`JobAccepted`] |
//! | `POST /api/v2/admin/keys`, `GET …/keys`, `POST …/keys/{id}/revoke` | [`ApiKeyCreated`], [`ApiKeys`], [`ApiKeyInfo`] |
//! | `GET /api/v1/analytics/{pubkey}` | [`AnalyticsV1`] |
//! | `GET /api/v2/admin/flags`, `PATCH …/flags/{key}` | [`Flags`], [`Flag`] (body [`FlagUpdate`]) |
//! | `GET /api/v2/admin/drift` | [`DriftReport`] |
//! | every error | [`Problem`] |

mod answer;
mod breakdown;
mod catalog;
mod engagers;
mod job;
mod keys;
mod note;
mod pages;
mod problem;
mod rollout;
mod series;
mod status;
mod summary;
mod top_notes;
mod v1;
mod window;

pub use answer::{Answer, Backfill, Completeness, MetricRef, PluginWatermark, QueryAnswer};
pub use breakdown::{Breakdown, BreakdownRow};
pub use catalog::{Catalog, CatalogEntry, Quarantine};
pub use engagers::{Engager, Engagers};
pub use job::{JobAccepted, QueryJob};
pub use keys::{ApiKeyCreated, ApiKeyInfo, ApiKeys, NewApiKey};
pub use note::{DimensionBreakdown, NoteDrilldown, NoteMetric};
pub use pages::{JobResultPage, TooLarge};
pub use problem::Problem;
pub use rollout::{DriftExample, DriftReport, Flag, FlagUpdate, Flags, MetricDrift, Mode};
pub use series::{CompactSeries, CompactTimeSeries, MetricSeries, Point, SeriesFormat, TimeSeries};
pub use status::{CompactionLag, Component, Health, Relay, RelayLive, Status};
pub use summary::{MetricValue, Summary};
pub use top_notes::{TopNote, TopNotes};
pub use v1::{AnalyticsV1, V1_METRICS};
pub use window::{ResolvedWindow, Rounded, SeriesWindow};
