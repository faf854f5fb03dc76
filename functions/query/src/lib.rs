//! The HTTP API served by the `query` function (lambda_http) and by the local stack
//! (axum directly): one [`axum::Router`] for both. `/api/v2/analytics` (summaries, time
//! series, breakdowns, the metric catalog, status, the OpenAPI document, backfills of
//! one's own pubkey), the admin routes (backfills, jobs, the plugin registry, API keys,
//! rollout flags and drift), the legacy `/api/v1` route the rollout keeps answering (`v1`)
//! and the flags over OFREP (`ofrep`), each behind the access layers (`access`).
//! docs/query-api.md and docs/rollout.md describe them.

pub mod access;
mod analytics;
mod backfills;
pub mod browser;
mod config;
pub mod dashboard;
pub mod guards;
pub mod ids;
mod jobs;
pub mod keys;
mod observe;
mod ofrep;
mod plugins;
mod problem;
mod request;
pub mod rollout;
pub mod v1;

use std::sync::Arc;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{DefaultBodyLimit, RawPathParams, State};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use chrono::Utc;
use na_analytics::Engine;
use na_api_types::{CompactionLag, Component, Health, Relay, RelayLive, Status};
use na_auth::{Class, RateClass};
use na_queue::JobQueue;
use na_storage::Db;
use tower::util::option_layer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use access::{AccessConfig, AdminAccess};
pub use analytics::OPENAPI;
pub use backfills::enqueue_backfill;
pub use config::Config;
pub use problem::ApiError;

/// What handlers share; built once per process.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The primary: access checks, rate limits, jobs, keys, the registry, status.
    pub db: Db,
    /// Where the analytics reads go (the engine's snapshots): a read replica, or `db`.
    pub read: Db,
    pub queue: Arc<dyn JobQueue>,
    pub access: AccessConfig,
    pub registry: na_plugin_registry::Registry,
    /// Answers analytics queries (plugins run in the registry's host).
    pub engine: Arc<Engine>,
    pub policy: QueryPolicy,
    /// The built dashboard served at `/` (`NA_DASHBOARD_DIR`), if any.
    pub dashboard: Option<Arc<std::path::Path>>,
    /// The rollout flags, read from the primary at most `policy.flag_ttl` ago.
    pub flags: na_rollout::FlagCache,
}

/// When a query is answered at once and when it becomes a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryPolicy {
    /// The most rows (bucket rows of the tiles, times the metrics, plus fact-log rows of the
    /// live delta) a request may read before it is answered with 202 and a job instead.
    pub max_sync_rows: u64,
    /// Up to how many contributions a distinct count is counted exactly from the facts
    /// instead of estimated from sketches (at once, and in a job).
    pub exact_distinct: na_analytics::ExactDistinct,
    /// A component (ingest, compaction) that has not worked for this long is stalled:
    /// `/health` answers 503 naming it.
    pub stall_after: chrono::TimeDelta,
    /// A request still unanswered after this long is ended with a 503 problem.
    pub request_timeout: std::time::Duration,
    /// The largest answer sent at once, in bytes: under the 6 MB a Lambda behind API
    /// Gateway may return.
    pub max_body_bytes: usize,
    /// How long an instance answers by the rollout flags it read: a flag change reaches
    /// every instance within it.
    pub flag_ttl: std::time::Duration,
}

impl QueryPolicy {
    pub const DEFAULT_MAX_SYNC_ROWS: u64 = 200_000;
    pub const DEFAULT_STALL_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(300);
    pub const DEFAULT_MAX_BODY_BYTES: usize = na_analytics::DEFAULT_MAX_BODY_BYTES;

    /// `NA_QUERY_MAX_SYNC_ROWS`, `NA_QUERY_EXACT_DISTINCT_ROWS`, `NA_JOB_EXACT_DISTINCT_ROWS`,
    /// `NA_HEALTH_STALL_SECS`, `NA_QUERY_TIMEOUT_SECS`, `NA_QUERY_MAX_BODY_BYTES` and
    /// `NA_FLAG_TTL_MS`, else the defaults.
    ///
    /// # Errors
    /// A value that is not a number, naming the variable.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let max_sync_rows = match var("NA_QUERY_MAX_SYNC_ROWS") {
            Some(v) => v
                .parse()
                .map_err(|_| format!("NA_QUERY_MAX_SYNC_ROWS={v}: not a number"))?,
            None => Self::DEFAULT_MAX_SYNC_ROWS,
        };
        let stall_after = match var("NA_HEALTH_STALL_SECS") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|s| *s > 0)
                .map(|s| chrono::TimeDelta::seconds(i64::from(s)))
                .ok_or_else(|| format!("NA_HEALTH_STALL_SECS={v}: not a positive number"))?,
            None => Self::DEFAULT_STALL_AFTER,
        };
        let request_timeout = match var("NA_QUERY_TIMEOUT_SECS") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| format!("NA_QUERY_TIMEOUT_SECS={v}: not a positive number"))?,
            None => guards::REQUEST_TIMEOUT,
        };
        let max_body_bytes = na_analytics::max_body_bytes(var)?;
        let flag_ttl = match var("NA_FLAG_TTL_MS") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .map(std::time::Duration::from_millis)
                .ok_or_else(|| format!("NA_FLAG_TTL_MS={v}: give 1 to 60000"))?,
            None => na_rollout::DEFAULT_TTL,
        };
        Ok(QueryPolicy {
            max_sync_rows,
            exact_distinct: na_analytics::ExactDistinct::from_lookup(var)?,
            stall_after,
            request_timeout,
            max_body_bytes,
            flag_ttl,
        })
    }
}

impl Default for QueryPolicy {
    fn default() -> Self {
        QueryPolicy {
            max_sync_rows: Self::DEFAULT_MAX_SYNC_ROWS,
            exact_distinct: na_analytics::ExactDistinct::DEFAULT,
            stall_after: Self::DEFAULT_STALL_AFTER,
            request_timeout: guards::REQUEST_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            flag_ttl: na_rollout::DEFAULT_TTL,
        }
    }
}

impl AppState {
    pub fn new(
        db: Db,
        queue: Arc<dyn JobQueue>,
        access: impl Into<AccessConfig>,
        registry: na_plugin_registry::Registry,
    ) -> Self {
        let engine = Arc::new(Engine::new(db.clone(), Arc::clone(registry.host())));
        AppState {
            read: db.clone(),
            flags: na_rollout::FlagCache::new(db.clone(), na_rollout::DEFAULT_TTL),
            db,
            queue,
            access: access.into(),
            registry,
            engine,
            policy: QueryPolicy::default(),
            dashboard: None,
        }
    }

    /// The same state serving the dashboard built in `dir` (see [`dashboard`]).
    pub fn with_dashboard(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.dashboard = dir.map(Arc::from);
        self
    }

    /// The same state answering under `policy`.
    pub fn with_policy(mut self, policy: QueryPolicy) -> Self {
        self.policy = policy;
        self.flags = na_rollout::FlagCache::new(self.db.clone(), policy.flag_ttl);
        self.with_engine()
    }

    /// The same state reading analytics from `read` (a read replica of `db`): answers are
    /// as exact there, as of what the replica has replayed (their `replayed_to`).
    pub fn with_read(mut self, read: Db) -> Self {
        self.read = read;
        self.with_engine()
    }

    /// The engine over `read` under `policy`.
    fn with_engine(mut self) -> Self {
        let mut engine = Engine::new(self.read.clone(), Arc::clone(self.registry.host()));
        engine.exact_distinct = self.policy.exact_distinct;
        self.engine = Arc::new(engine);
        self
    }
}

/// The function's app as a cold start builds it from its settings: the database (checked
/// to be of this build's schema), the queue, the plugin host and registry, the router.
/// `main` and the cold-start measurement (`query-cold-start`) both start here.
///
/// # Errors
/// The database (unreachable, missing, another schema), the plugin host's settings.
pub async fn app_from_config(cfg: Config) -> anyhow::Result<Router> {
    let db = connect_db(&cfg.database.url().await?, 4).await?;
    let read = match &cfg.read_database {
        Some(replica) => Some(connect_db(&replica.url().await?, 4).await?),
        None => None,
    };
    let queue: Arc<dyn JobQueue> = match cfg.queue {
        Some(sqs) => Arc::new(sqs),
        None => Arc::new(na_queue::Unconfigured),
    };
    let host = Arc::new(na_plugin_host::PluginHost::new(cfg.host)?);
    let registry = na_plugin_registry::Registry::new(db.clone(), host);
    let mut state = AppState::new(db, queue, cfg.access, registry)
        .with_policy(cfg.policy)
        .with_dashboard(cfg.dashboard);
    if let Some(read) = read {
        state = state.with_read(read);
    }
    Ok(app(state))
}

/// The query function's database: no statement on its connections runs longer than a
/// query's snapshot may ([`na_analytics::STATEMENT_TIMEOUT`], under the request's own time
/// limit), whatever route or layer sends it — the access checks, job and key writes, the
/// catalog — so no request holds the database past its answer.
///
/// # Errors
/// As [`Db::open`]: the database must be migrated (the deploy's migrate step).
pub async fn connect_db(url: &str, pool_size: usize) -> Result<Db, na_storage::Error> {
    Db::open_bounded(url, pool_size, na_analytics::STATEMENT_TIMEOUT).await
}

/// The access layer of a sub-router whose routes are all of one access class and cost one
/// rate class: `require!(state, Class::Public, RateClass::Costly)`.
macro_rules! require {
    ($state:expr, $class:expr, $rate:expr) => {
        middleware::from_fn_with_state(
            $state.clone(),
            |State(state): State<AppState>,
             params: Result<RawPathParams, RawPathParamsRejection>,
             request: axum::extract::Request,
             next: middleware::Next| {
                access::require(state, ($class, $rate), params, request, next)
            },
        )
    };
}

/// The whole HTTP API: `/health`, then one sub-router per surface — the analytics routes
/// (`/api/v2/analytics`), the admin routes (`/api/v2/admin`), the legacy `/api/v1` and the
/// flags over OFREP (`/ofrep/v1`) — and around them all the guards (bounded requests, problem bodies for panics
/// and wrong methods), the caller's credential (`access::authenticate`) and request ids.
/// Each sub-router holds routes of one access class and checks it in one layer
/// (`access::require`), before any handler runs or any body is read. A middleware for
/// every route goes in the layers below; one for a class of routes, on its sub-router.
pub fn app(state: AppState) -> Router {
    let dashboard = state.dashboard.as_ref().map(|dir| {
        dashboard::routes(dir).route_layer(require!(state, Class::Public, RateClass::Cheap))
    });
    Router::new()
        .route("/health", get(health))
        .nest("/api/v2/analytics", analytics_routes(&state))
        .nest("/api/v2/admin", admin_routes(&state))
        .route(
            "/api/v1/analytics/{pubkey}",
            get(v1::analytics).route_layer(require!(state, Class::Public, RateClass::Costly)),
        )
        .nest("/ofrep/v1", ofrep_routes(&state))
        .merge(dashboard.unwrap_or_default())
        .fallback(|| async {
            ApiError::NotFound {
                detail: "no such route".into(),
            }
        })
        .method_not_allowed_fallback(guards::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access::authenticate,
        ))
        .layer(DefaultBodyLimit::max(guards::MAX_JSON_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guards::bounded,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            guards::panicked,
        ))
        .layer(middleware::from_fn(observe::request))
        // What browsers need (`browser.rs`): validators and caching on the whole answer,
        // then compression, and CORS outermost so refusals carry it too.
        .layer(middleware::from_fn(browser::validators))
        .layer(CompressionLayer::new())
        // Every request gets an id (the caller's `x-request-id`, else a new UUID): on every
        // log line of its span, and on its answer.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(guards::request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(option_layer(browser::cors(&state.access.cors)))
        .with_state(state)
}

/// `/api/v2/analytics`: public reads, query jobs, status and the API document (anyone), who
/// engaged with one pubkey (that user, a `read` key, admin) and backfills of one pubkey
/// (that user, a `backfill` key, admin), each group at its rate.
fn analytics_routes(state: &AppState) -> Router<AppState> {
    let cheap = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(analytics::metrics))
        .route("/openapi.json", get(analytics::openapi))
        .route("/jobs/{id}", get(jobs::status))
        .route("/jobs/{id}/result", get(jobs::result_page))
        .route_layer(require!(state, Class::Public, RateClass::Cheap));
    let costly = Router::new()
        .route("/notes/{event_id}", get(analytics::note))
        .route("/users/{pubkey}/summary", get(analytics::summary))
        .route("/users/{pubkey}/timeseries", get(analytics::timeseries))
        .route("/users/{pubkey}/breakdown", get(analytics::breakdown))
        .route("/users/{pubkey}/notes", get(analytics::top_notes))
        .route_layer(require!(state, Class::Public, RateClass::Costly));
    let jobs = Router::new()
        .route("/jobs", post(jobs::create))
        .route_layer(require!(state, Class::Public, RateClass::Jobs));
    let personal = Router::new()
        .route("/users/{pubkey}/engagers", get(analytics::engagers))
        .route_layer(require!(state, Class::Personal, RateClass::Costly));
    let backfill = Router::new()
        .route("/users/{pubkey}/backfill", post(backfills::request))
        .route_layer(require!(state, Class::Backfill, RateClass::Jobs));
    cheap
        .merge(costly)
        .merge(jobs)
        .merge(personal)
        .merge(backfill)
}

/// `/ofrep/v1`: the rollout flags evaluated for a pubkey (anyone: a flag says only which
/// path answers that pubkey).
fn ofrep_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/evaluate/flags/{key}", post(ofrep::evaluate_one))
        .route("/evaluate/flags", post(ofrep::evaluate_all))
        .route("/configuration", get(ofrep::configuration))
        .route_layer(require!(state, Class::Public, RateClass::Cheap))
}

/// `/api/v2/admin`: backfills, jobs, the plugin registry, API keys, the rollout's flags and
/// drift report, every route for an admin key (or the bootstrap token) only.
fn admin_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/backfills", post(backfills::create))
        .route("/jobs/{id}", get(jobs::admin_status))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/flags", get(rollout::list))
        .route("/flags/{key}", axum::routing::patch(rollout::change))
        .route("/drift", get(rollout::drift))
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::publish)
                .layer(DefaultBodyLimit::max(plugins::MAX_COMPONENT_BYTES)),
        )
        .route(
            "/plugins/{name}/{version}/activate",
            post(plugins::activate),
        )
        .route(
            "/plugins/{name}/{version}/recompute",
            post(plugins::recompute),
        )
        .route("/plugins/{name}/{version}/retire", post(plugins::retire))
        .route("/plugins/{name}/{version}/release", post(plugins::release))
        .route_layer(require!(state, Class::Admin, RateClass::Admin))
}

/// Every component's last report, with whether it is stalled now.
async fn components(state: &AppState) -> Result<Vec<Component>, ApiError> {
    let now = Utc::now();
    Ok(state
        .db
        .components()
        .await?
        .into_iter()
        .map(|c| Component {
            stalled: c.stalled(now, state.policy.stall_after),
            component: c.component,
            first_at: c.first_at,
            ok_at: c.ok_at,
            last_error: c.last_error,
            last_error_at: c.last_error_at,
            updated_at: c.updated_at,
        })
        .collect())
}

/// `ok` when the database answers and no component (ingest, compaction) is stalled; else a
/// 503 problem naming what is wrong.
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    // Reading the reports is the database check too.
    let components = components(&state).await?;
    let stalled: Vec<String> = components
        .iter()
        .filter(|c| c.stalled)
        .map(Component::stall_report)
        .collect();
    if !stalled.is_empty() {
        return Err(ApiError::Degraded {
            detail: stalled.join("; "),
            components,
        });
    }
    Ok(Json(Health {
        status: "ok".into(),
        components,
    }))
}

async fn status(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    let relays = state.db.ingest_status().await?;
    let components = components(&state).await?;
    // One connection at a time: a handler holding one while it waits for another could
    // wait for ever with the pool exhausted by others doing the same.
    let compaction = na_storage::compaction_state::lag(&**state.db.conn().await?).await?;
    Ok(Json(Status {
        as_of: Utc::now(),
        components,
        relays: relays
            .into_iter()
            .map(|r| Relay {
                url: r.url,
                watermark: r.watermark,
                counters: r.counters,
                live: r.live.map(|l| RelayLive {
                    connected: l.connected,
                    connected_at: l.connected_at,
                    disconnected_at: l.disconnected_at,
                    last_error: l.last_error,
                    last_error_at: l.last_error_at,
                }),
            })
            .collect(),
        compaction: compaction
            .into_iter()
            .map(|l| CompactionLag {
                plugin: l.plugin,
                rows: l.rows,
                seconds: l.seconds,
                last_error: l.last_error,
                quarantined_at: l.quarantined_at,
            })
            .collect(),
    }))
}
