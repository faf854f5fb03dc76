use lambda_runtime::{LambdaEvent, service_fn};
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// On Lambda: one run per scheduled event. `retention --once` runs once here and prints
/// the report.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    na_telemetry::init();
    let cfg = retention::RetentionConfig::from_env()?;
    let db = Db::connect(&na_storage::database_url_from_env(), 2).await?;
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
