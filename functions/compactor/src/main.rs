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
}

impl Config {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        Ok(Config {
            database: na_aws::Database::from_lookup(&var, na_storage::database_url(&var))?,
            log: na_telemetry::LogSettings::from_lookup(&var),
            host: HostConfig::from_lookup(&var),
            compactor: CompactorConfig::from_lookup(&var)?,
        })
    }
}

/// On Lambda: one run per scheduled event. `compactor --once` runs once here and prints
/// the report (the crash tests and operators use it).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cfg = Config::from_env()?;
    na_telemetry::init(&cfg.log);
    let host = PluginHost::new(cfg.host)?;
    let db = Db::open(&cfg.database.url().await?, 2).await?;
    let compactor = Compactor::new(db, std::sync::Arc::new(host), cfg.compactor);
    if std::env::args().any(|a| a == "--once") {
        let report = compactor::handle_scheduled(&compactor, None).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let emf = na_telemetry::Emf::install(&|name| std::env::var(name).ok())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (compactor, emf) = (&compactor, &emf);
        async move {
            let deadline = na_telemetry::deadline(event.context.deadline);
            let report = compactor::handle_scheduled(compactor, Some(deadline)).await;
            emf.flush(&event.context.request_id);
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report?)?)
        }
    }))
    .await
}
