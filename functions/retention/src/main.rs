use lambda_runtime::{LambdaEvent, service_fn};
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The function's settings: read from its environment once, at start (the README lists
/// every variable).
struct Config {
    database: na_aws::Database,
    log: na_telemetry::LogSettings,
    retention: retention::RetentionConfig,
}

impl Config {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        Ok(Config {
            database: na_aws::Database::from_lookup(&var, na_storage::database_url(&var))?,
            log: na_telemetry::LogSettings::from_lookup(&var),
            retention: retention::RetentionConfig::from_lookup(&var)?,
        })
    }
}

/// On Lambda: one run per scheduled event. `retention --once` runs once here and prints
/// the report.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let Config {
        database,
        log,
        retention: cfg,
    } = Config::from_env()?;
    na_telemetry::init(&log);
    let db = Db::open(&database.url().await?, 2).await?;
    if std::env::args().any(|a| a == "--once") {
        let report = retention::run(&db, &cfg, chrono::Utc::now(), None).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (db, cfg) = (&db, &cfg);
        async move {
            let deadline = na_telemetry::deadline(event.context.deadline);
            let report = retention::run(db, cfg, chrono::Utc::now(), Some(deadline)).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
