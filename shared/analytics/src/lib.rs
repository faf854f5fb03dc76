//! The query path (docs/query-api.md): a window is answered exactly at second precision.
//! Its inside is tiled with the coarsest buckets retention kept; the snapshot comes from
//! those buckets, the live delta from the fact-log rows compaction has not applied yet, and
//! the parts at the edges that no kept bucket covers from the stored facts, all run through
//! the same plugin version and read in one repeatable-read snapshot, so an answer counts
//! every fact exactly once however far compaction has got.

mod body;
mod engagers;
mod engine;
mod error;
mod facts;
mod failures;
mod legacy;
mod merge;
mod note;
mod params;
mod selection;
mod top_notes;
pub mod window;

pub use body::{DEFAULT_MAX_BODY_BYTES, max_body_bytes, page_bytes};
pub use engagers::{DEFAULT_ENGAGERS_METRIC, EngagersRequest};
pub use engine::{
    BreakdownRequest, Engine, ExactDistinct, MAX_POINTS, STATEMENT_TIMEOUT, SeriesRequest,
    SummaryRequest,
};
pub use error::QueryError;
pub use legacy::{LEGACY_PLUGIN, LegacyAnswer, LegacyRequest};
pub use note::NoteRequest;
pub use params::{Hex32, QueryParams, WindowParams};
pub use selection::select_metrics;
pub use top_notes::{DEFAULT_TOP_NOTES_METRIC, TopNotesRequest};
pub use window::WindowRequest;
