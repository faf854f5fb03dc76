use lambda_runtime::{LambdaEvent, service_fn};
use na_ingest::IngestConfig;
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The function's settings: read from its environment once, at start (the README lists
/// every variable).
struct Config {
    database: na_aws::Database,
    log: na_telemetry::LogSettings,
    ingest: IngestConfig,
}

impl Config {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        Ok(Config {
            database: na_aws::Database::from_lookup(&var, na_storage::database_url(&var))?,
            log: na_telemetry::LogSettings::from_lookup(&var),
            ingest: IngestConfig::from_lookup(var)?,
        })
    }
}

/// How often a long invocation writes its metrics out.
const METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let Config {
        database,
        log,
        ingest: cfg,
    } = Config::from_env()?;
    na_telemetry::init(&log);
    let emf = na_telemetry::Emf::install(&|name| std::env::var(name).ok())?;
    let db = Db::open(&database.url().await?, 4).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (db, cfg, emf) = (&db, &cfg, &emf);
        async move {
            let deadline = na_telemetry::deadline(event.context.deadline);
            // A run lasts minutes: its metrics go out every minute, and the rest at its end.
            let flushing = emf.periodic(&event.context.request_id, METRICS_EVERY);
            let report = na_ingest::handle_scheduled(db, cfg, Some(deadline)).await;
            drop(flushing);
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report?)?)
        }
    }))
    .await
}
