use std::sync::Arc;

use query::AppState;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = query::Config::from_env()?;
    na_telemetry::init(&cfg.log);
    let db = query::connect_db(&cfg.database_url, 4).await?;
    let queue: Arc<dyn na_queue::JobQueue> = match cfg.queue {
        Some(sqs) => Arc::new(sqs),
        None => Arc::new(na_queue::Unconfigured),
    };
    let host = Arc::new(na_plugin_host::PluginHost::new(cfg.host)?);
    let registry = na_plugin_registry::Registry::new(db.clone(), host);
    let state = AppState::new(db, queue, cfg.access, registry)
        .with_policy(cfg.policy)
        .with_dashboard(cfg.dashboard);
    lambda_http::run(query::app(state)).await
}
