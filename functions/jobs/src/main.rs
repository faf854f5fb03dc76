use aws_lambda_events::event::sqs::SqsEvent;
use std::sync::Arc;

use jobs::{JobSettings, JobsState};
use lambda_runtime::{LambdaEvent, service_fn};
use na_compaction::{Compactor, CompactorConfig};
use na_plugin_host::{HostConfig, PluginHost};
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The function's settings: read from its environment once, at start (the README lists
/// every variable).
struct Config {
    database: na_aws::Database,
    log: na_telemetry::LogSettings,
    host: HostConfig,
    compactor: CompactorConfig,
    jobs: JobSettings,
}

impl Config {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        Ok(Config {
            database: na_aws::Database::from_lookup(&var, na_storage::database_url(&var))?,
            log: na_telemetry::LogSettings::from_lookup(&var),
            host: HostConfig::from_lookup(&var),
            compactor: CompactorConfig::from_lookup(&var)?,
            jobs: JobSettings::from_lookup(&var)?,
        })
    }
}

/// How often a long invocation writes its metrics out.
const METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cfg = Config::from_env()?;
    na_telemetry::init(&cfg.log);
    let db = Db::open(&cfg.database.url().await?, 4).await?;
    let host = Arc::new(PluginHost::new(cfg.host)?);
    let compactor = Arc::new(Compactor::new(db.clone(), host, cfg.compactor));
    let state = JobsState::new(db, cfg.jobs, compactor);
    let emf = na_telemetry::Emf::install(&|name| std::env::var(name).ok())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let (state, emf) = (&state, &emf);
        async move {
            let deadline = na_telemetry::deadline(event.context.deadline);
            // A batch of jobs lasts minutes: metrics every minute, the rest at its end.
            let flushing = emf.periodic(&event.context.request_id, METRICS_EVERY);
            let response = jobs::handle_sqs(state, event.payload, Some(deadline)).await;
            drop(flushing);
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}
