use lambda_runtime::{LambdaEvent, service_fn};
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// On Lambda: one run per scheduled event. `compactor --once` runs once here and prints
/// the report (the crash tests and operators use it).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    na_telemetry::init();
    let db = Db::connect(&na_storage::database_url_from_env(), 2).await?;
    let compactor = na_compaction::Compactor::from_env(db)?;
    if std::env::args().any(|a| a == "--once") {
        let report = compactor::handle_scheduled(&compactor, None).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let compactor = &compactor;
        async move {
            let deadline = na_telemetry::deadline(event.context.deadline);
            let report = compactor::handle_scheduled(compactor, Some(deadline)).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
