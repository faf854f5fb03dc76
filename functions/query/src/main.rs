use std::sync::Arc;

use na_storage::Db;
use query::{AdminAccess, AppState};

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    na_telemetry::init();
    let db = Db::connect(&na_storage::database_url_from_env(), 4).await?;
    // Without a queue (NA_JOBS_QUEUE_URL unset) enqueuing answers 503 rather than pretending.
    let queue: Arc<dyn na_queue::JobQueue> = match na_queue::SqsQueue::from_env()? {
        Some(sqs) => Arc::new(sqs),
        None => Arc::new(na_queue::Unconfigured),
    };
    let registry = na_plugin_registry::Registry::with_default_host(db.clone())?;
    let state = AppState::new(db, queue, AdminAccess::from_env(), registry)
        .with_policy(query::QueryPolicy::from_env()?);
    let app = query::app(state);
    lambda_http::run(app).await
}
